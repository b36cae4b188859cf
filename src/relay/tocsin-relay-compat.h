/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-compat.h: ntfy- and Gotify-compatible publishing (docs/api.md, "ntfy- and
 * Gotify-compatible publishing").
 *
 * Hundreds of tools publish to ntfy or Gotify. A channel's trigger token stands for the ntfy
 * topic or the Gotify application token; what the sender says (title, message, priority, tags,
 * click, actions, Markdown) becomes the template variables and, where the channel has no
 * templates, the message itself. The request then goes through the same admission, render, bound,
 * dedup and commit as /t/ (tocsin_relay_ingest_submit()), and is answered as ntfy or Gotify
 * answers.
 *
 * The reading of a request is pure (headers, query, body in; variables and hints out), so that
 * tests/fuzz/fuzz-compat.c calls what the handlers call.
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "tocsin-relay.h"
#include "tocsin-relay-ingest.h"

G_BEGIN_DECLS

#define TOCSIN_RELAY_COMPAT_ERROR (tocsin_relay_compat_error_quark ())
/* Errors of this domain carry ntfy's error code (40007: invalid priority, …): the HTTP status is
 * the code divided by 100. */
GQuark tocsin_relay_compat_error_quark (void);

typedef enum
{
  TOCSIN_RELAY_COMPAT_NONE = 0,
  TOCSIN_RELAY_COMPAT_NTFY_TOPIC,     /* PUT/POST /{topic} */
  TOCSIN_RELAY_COMPAT_NTFY_PUBLISH,   /* GET /{topic}/publish (send, trigger) */
  TOCSIN_RELAY_COMPAT_NTFY_JSON,      /* PUT/POST / with a JSON message */
  TOCSIN_RELAY_COMPAT_GOTIFY,         /* POST /message */
} TocsinRelayCompatRoute;

/* Which compatible endpoint @method and @path name, if any; *@topic (optional) gets a copy of
 * the topic of the ntfy topic routes (NULL for the others). */
TocsinRelayCompatRoute tocsin_relay_compat_match (const char  *method,
                                                  const char  *path,
                                                  char       **topic);

typedef struct
{
  gboolean                gotify;
  char                   *token;     /* the trigger token the request names */
  char                   *topic;     /* ntfy: the topic as the sender named it; else NULL */
  char                   *title;     /* as sent; "" when unsaid */
  char                   *message;   /* as sent; never NULL */
  gint64                  priority;  /* ntfy: 1..5 (3 unsaid); Gotify: as sent (0 unsaid) */
  gboolean                priority_set;
  JsonArray              *tags;      /* strings */
  char                   *click;     /* "" when unsaid */
  JsonArray              *actions;   /* ntfy's action objects */
  JsonObject             *extras;    /* Gotify's extras, or NULL */
  gboolean                markdown;
  char                   *emoji;     /* the emoji the tags name, space-separated; "" none */
  JsonObject             *vars;      /* the template variables */
  char                   *shown_title;  /* what stands in for the channel's templates */
  char                   *shown_body;
  TocsinRelayIngestHints  hints;     /* points into the fields above */
  gint64                  expires_seconds;   /* the handler's: the relay's retention */
  GPtrArray              *message_actions;   /* TocsinMessageAction: ntfy's view and http */
} TocsinRelayCompatRequest;

void tocsin_relay_compat_request_free (TocsinRelayCompatRequest *request);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRelayCompatRequest, tocsin_relay_compat_request_free)

/* Reads an ntfy publish request: @path_topic (NULL for the JSON form, whose topic is in @body),
 * the request @headers, @query (may be NULL) and @body (decoded; may be NULL), within @max_body.
 * NULL with a TOCSIN_RELAY_COMPAT_ERROR (ntfy's code) when ntfy would refuse it. */
TocsinRelayCompatRequest *tocsin_relay_compat_read_ntfy   (const char          *path_topic,
                                                           SoupMessageHeaders  *headers,
                                                           const char          *query,
                                                           GBytes              *body,
                                                           gsize                max_body,
                                                           GError             **error);
/* Reads a Gotify POST /message: token from ?token=, X-Gotify-Key or Authorization: Bearer;
 * fields from the query and a JSON or form body. */
TocsinRelayCompatRequest *tocsin_relay_compat_read_gotify (SoupMessageHeaders  *headers,
                                                           const char          *query,
                                                           GBytes              *body,
                                                           gsize                max_body,
                                                           GError             **error);

/* The emoji ntfy shows for a tag ("warning" → "⚠️"), or NULL when the tag names none. */
const char *tocsin_relay_compat_emoji (const char *tag);

/* The handlers, for route(): read, then tocsin_relay_ingest_submit(). */
void tocsin_relay_compat_handle (TocsinRelay            *relay,
                                 SoupServerMessage      *msg,
                                 TocsinRelayCompatRoute  route,
                                 const char             *path);

G_END_DECLS
