/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-ingest.h: the pure steps of a webhook, between its decoded variables and the
 * store: render (condition, title, body, link) and build the message to store, within the size
 * every subscriber can take. No I/O: tests/fuzz/fuzz-ingest.c calls them as the handler does.
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "tocsin-message.h"
#include "tocsin-relay.h"
#include "tocsin-relay-store.h"

G_BEGIN_DECLS

/* /t/{token}: GET, POST, PUT. Pauses @msg until the message is committed. */
void tocsin_relay_ingest_handle (TocsinRelay       *relay,
                                 SoupServerMessage *msg,
                                 const char        *token);

typedef struct
{
  gboolean    filtered;      /* the condition said no: nothing is stored */
  char       *title;
  char       *body;
  char       *link;          /* NULL: none, or dropped */
  const char *link_dropped;  /* static reason the link was dropped, or NULL */
  GPtrArray  *missing;       /* (element-type utf8) variables the templates named, absent */
  GError     *over_budget;   /* set when the templates went over their work budget: 422 */
} TocsinRelayRendered;

void tocsin_relay_rendered_clear (TocsinRelayRendered *rendered);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (TocsinRelayRendered, tocsin_relay_rendered_clear)

/* Evaluates @channel's condition and renders its title, body and link over @vars, the request
 * @headers (may be NULL) and the text body (may be NULL). @now: the templates' clock (NULL:
 * the real time). */
void tocsin_relay_ingest_render (const TocsinRelayChannel *channel,
                                 JsonObject               *vars,
                                 SoupMessageHeaders       *headers,
                                 const char               *body_text,
                                 GDateTime                *now,
                                 TocsinRelayRendered      *out);

/* The dedup key: the `eventId` variable, else Idempotency-Key, else webhook-id. NULL: none. */
char *tocsin_relay_ingest_dedup_key (JsonObject         *vars,
                                     SoupMessageHeaders *headers);

/* The largest message the relay stores, encoded, when subscribers may each fall
 * @max_queue_bytes behind: a quarter of it, so that a message answered 200 always fits a
 * subscriber's queue with room for the frame around it and the one before it. */
gsize tocsin_relay_ingest_max_message (gsize max_queue_bytes);

/* The message to store for @rendered; NULL with a 413 sentence in @error when, encoded, it
 * would be larger than @max_message bytes. */
TocsinMessage *tocsin_relay_ingest_build_message (const TocsinRelayChannel  *channel,
                                                  JsonObject                *vars,
                                                  const TocsinRelayRendered *rendered,
                                                  gint64                     time_ms,
                                                  gsize                      max_message,
                                                  GError                   **error);

/* The commit step of another trigger (the email trigger): stores @message (taken) in
 * @channel_id, deduplicated by @dedup_key (may be NULL) over the content of @vars, and
 * publishes it to subscribers once durable. @callback runs once the message is durable, or
 * with the store's error (TOCSIN_RELAY_STORE_ERROR_NOT_FOUND: the channel was deleted). */
void               tocsin_relay_ingest_commit_async  (TocsinRelay         *relay,
                                                      gint64               channel_id,
                                                      TocsinMessage       *message,
                                                      const char          *dedup_key,
                                                      JsonObject          *vars,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
TocsinRelayCommit *tocsin_relay_ingest_commit_finish (GAsyncResult        *result,
                                                      GError             **error);

G_END_DECLS
