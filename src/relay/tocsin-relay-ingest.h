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

/* For every trigger: notes the answer (@status, @sentence; never a body or a secret) among the
 * channel's recent webhooks (GET /v1/channels/{id}/webhooks). */
void        tocsin_relay_ingest_note            (TocsinRelay *relay,
                                                 gint64       channel_id,
                                                 guint        status,
                                                 const char  *sentence);
/* What a trigger answers for a paused channel (HTTP 423), after noting it. */
const char *tocsin_relay_ingest_paused_sentence (void);

typedef struct
{
  gboolean    filtered;      /* the condition said no: nothing is stored */
  char       *title;
  char       *body;
  char       *link;          /* NULL: none, or dropped */
  const char *link_dropped;  /* static reason the link was dropped, or NULL */
  GPtrArray  *missing;       /* (element-type utf8) variables the templates named, absent */
  GError     *over_budget;   /* set when the templates went over their work budget: 422 */
  TocsinMessageType type;    /* from the hints: how the message rings */
  gboolean    markdown;      /* from the hints: the body is Markdown */
  /* TocsinMessageAction: the channel's actions that applied and rendered, then the sender's
   * (hints), at most TOCSIN_REQUEST_MAX_ACTIONS; NULL: none. */
  GPtrArray  *actions;
  GArray     *forwards;      /* guint indices of the channel's message forwards whose condition
                              * passed (issue 15), or NULL */
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

/* What a sender speaking another service's API (ntfy, Gotify: tocsin-relay-compat.c) said
 * besides its variables. The title, body and link stand in for the channel's templates where
 * the channel has none; type and markdown go to the message as they are. */
typedef struct
{
  const char        *title;      /* NULL or "": the channel's name, as for /t/ */
  const char        *body;
  const char        *link;       /* checked as a link template's output is */
  TocsinMessageType  type;
  gboolean           markdown;
  GPtrArray         *actions;    /* TocsinMessageAction the sender gave (ntfy's), or NULL; they
                                  * follow the channel's own, up to three in all */
} TocsinRelayIngestHints;

/* tocsin_relay_ingest_render() with @hints (NULL: none, which is tocsin_relay_ingest_render()). */
void tocsin_relay_ingest_render_with_hints (const TocsinRelayChannel     *channel,
                                            JsonObject                   *vars,
                                            SoupMessageHeaders           *headers,
                                            const char                   *body_text,
                                            const TocsinRelayIngestHints *hints,
                                            GDateTime                    *now,
                                            TocsinRelayRendered          *out);

/* What a request came to, for its answer. */
typedef struct
{
  gint64                     channel_id;
  const char                *channel_name;
  gboolean                   filtered;   /* the condition said no: nothing stored, id 0 */
  gint64                     id;
  gint64                     time_ms;
  gint64                     replaces;
  gboolean                   duplicate;
  const TocsinRelayRendered *rendered;
  guint                      subscribers;  /* connected to this process to receive it */
} TocsinRelayIngestOutcome;

/* How answers are written: /t/ writes Tocsin's own (docs/api.md); the ntfy and Gotify endpoints
 * write their service's. Every refusal goes through reply_error, every success (once durable)
 * through reply_done. */
typedef struct
{
  void (*reply_error) (SoupServerMessage *msg,
                       guint              status,
                       const char        *sentence,
                       gpointer           user_data);
  void (*reply_done)  (SoupServerMessage              *msg,
                       const TocsinRelayIngestOutcome *outcome,
                       gpointer                        user_data);
} TocsinRelayIngestDialect;

/* Another way in (tocsin-relay-compat.c): admission by @token (size, rate), render with @hints,
 * the bound, dedup and commit exactly as /t/ does, over @vars the caller decoded from the
 * request; answers through @dialect with @user_data, freed by @destroy once answered. Templates
 * read @scope_headers (NULL: none). Pauses @msg until the message is committed. */
void tocsin_relay_ingest_submit (TocsinRelay                    *relay,
                                 SoupServerMessage              *msg,
                                 const char                     *token,
                                 JsonObject                     *vars,
                                 SoupMessageHeaders             *scope_headers,
                                 const TocsinRelayIngestHints   *hints,
                                 const TocsinRelayIngestDialect *dialect,
                                 gpointer                        user_data,
                                 GDestroyNotify                  destroy);

/* The dedup key: the `eventId` variable, else Idempotency-Key, else webhook-id. NULL: none. */
char *tocsin_relay_ingest_dedup_key (JsonObject         *vars,
                                     SoupMessageHeaders *headers);
/* What the store keeps of a dedup @key (NULL: none, and both come back NULL): its hash, and the
 * hash of @vars' canonical JSON, which tells a redelivery from a replacement. */
void  tocsin_relay_ingest_dedup_hashes (const char  *key,
                                        JsonObject  *vars,
                                        char       **key_hash,
                                        char       **content_hash);

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

/* The RateLimit-Policy and RateLimit headers of an answer, for /t/ and /d/ alike. */
void tocsin_relay_ingest_set_rate_headers (SoupServerMessage *msg,
                                           TocsinRelay       *relay,
                                           guint              remaining,
                                           guint              reset);
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
/* The same, queueing deliveries of @forwards[@indices] (TocsinRelayRendered.forwards) with
 * the message (issue 15). */
void               tocsin_relay_ingest_commit_with_forwards_async (TocsinRelay         *relay,
                                                                   gint64               channel_id,
                                                                   TocsinMessage       *message,
                                                                   const char          *dedup_key,
                                                                   JsonObject          *vars,
                                                                   GPtrArray           *forwards,
                                                                   GArray              *indices,
                                                                   GAsyncReadyCallback  callback,
                                                                   gpointer             user_data);
TocsinRelayCommit *tocsin_relay_ingest_commit_finish (GAsyncResult        *result,
                                                      GError             **error);

G_END_DECLS
