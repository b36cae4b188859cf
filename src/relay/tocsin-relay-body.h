/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-body.h: a webhook's query and body, decoded into template variables.
 *
 * Pure functions (no server, no store): the ingest handler and tests/fuzz call them alike.
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* Adds WWW-form pairs ("a=1&b=2") from @data to @vars as strings; @where ("query string",
 * "body") names the part in the error sentence. */
gboolean tocsin_relay_body_add_form_pairs (JsonObject  *vars,
                                           const char  *data,
                                           gssize       length,
                                           const char  *where,
                                           GError     **error);

/* Reads a request body into @vars (or *@body_text for text/plain) according to the
 * Content-Type in @headers. On failure sets *@status (400 or 415) and @error to a sentence
 * the sender can act on. */
gboolean tocsin_relay_body_read (SoupMessageHeaders  *headers,
                                 GBytes              *bytes,
                                 JsonObject          *vars,
                                 char               **body_text,
                                 guint               *status,
                                 GError             **error);

G_END_DECLS
