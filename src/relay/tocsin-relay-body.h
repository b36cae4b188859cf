/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-body.h: what a peer sends the relay in a request, decoded.
 *
 * A webhook's query and body become template variables; an owner API body becomes a channel
 * spec. Pure functions (no server, no store): the handlers, the tests and tests/fuzz call the
 * same code. Every refusal sets a status (400, 413 or 415) and a sentence the sender can act on.
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "tocsin-relay-store.h"

G_BEGIN_DECLS

/* json-glib parses recursively: JSON a peer sends may nest this deep and no deeper. */
#define TOCSIN_RELAY_BODY_MAX_DEPTH 64
/* Fields a multipart/form-data body may have (docs/configuration.md). */
#define TOCSIN_RELAY_BODY_MAX_PARTS 256

/* Adds the text fields of a multipart/form-data body (@data, @length; the boundary from
 * @headers' Content-Type) to @form as strings, through libsoup's SoupMultipart given a padded
 * copy (its parser reads past a body's end). At most TOCSIN_RELAY_BODY_MAX_PARTS fields (else
 * 413 in *@status); a part that is not UTF-8 text, or has no form-data name, is 400. */
gboolean tocsin_relay_body_read_multipart (SoupMessageHeaders  *headers,
                                           const char          *data,
                                           gsize                length,
                                           JsonObject          *form,
                                           guint               *status,
                                           GError             **error);

/* Adds application/x-www-form-urlencoded pairs ("a=1&b=2") from @data to @vars as strings,
 * decoded as a browser's URLSearchParams does: `+` is a space, an invalid %-escape stays as it
 * is, a name without `=` is the empty string, empty pairs are skipped, the last of a repeated
 * name wins. Refuses (400) text that is not UTF-8 once decoded, and NUL bytes; @where ("query
 * string", "body") names the part in the sentence. @length -1: NUL-terminated. */
gboolean tocsin_relay_body_add_form_pairs (JsonObject  *vars,
                                           const char  *data,
                                           gssize       length,
                                           const char  *where,
                                           GError     **error);

/* Undoes the request's Content-Encoding (none, identity, gzip, x-gzip or deflate; anything else
 * is 415), never producing or allocating more than @max_body bytes (413 past it). Returns the
 * body as sent before compression. */
GBytes *tocsin_relay_body_decode (SoupMessageHeaders  *headers,
                                  GBytes              *bytes,
                                  gsize                max_body,
                                  guint               *status,
                                  GError             **error);

/* Reads a webhook body into @vars (and *@body_text for text/plain) according to the
 * Content-Type and Content-Encoding in @headers, within @max_body after decompression:
 * a JSON object gives its members, a JSON array the variable `body`; a urlencoded or
 * multipart/form-data form its fields, or, when its one field holds JSON (GitHub's `payload=`),
 * that JSON's; a text/plain body `bodyAsText`, and its variables too when it is JSON. */
gboolean tocsin_relay_body_read (SoupMessageHeaders  *headers,
                                 GBytes              *bytes,
                                 gsize                max_body,
                                 JsonObject          *vars,
                                 char               **body_text,
                                 guint               *status,
                                 GError             **error);

/* Parses an owner API body (a JSON object of string fields; empty means {}) into @spec, whose
 * strings point into the returned object. */
JsonObject *tocsin_relay_body_parse_channel_spec (const char              *data,
                                                  gsize                    length,
                                                  gsize                    max_bytes,
                                                  TocsinRelayChannelSpec  *spec,
                                                  guint                   *status,
                                                  GError                 **error);

G_END_DECLS
