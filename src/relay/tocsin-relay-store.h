/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-store.h: channels and retained messages in SQLite (WAL). Contract between the
 * store/ingest side and the hub/streams side of the relay; extend it, don't break it.
 */
#pragma once

#include <json-glib/json-glib.h>
#include "tocsin-relay.h"
#include "tocsin-message.h"
#include "tocsin-template.h"

G_BEGIN_DECLS

typedef struct
{
  gint64          id;
  char           *name;
  char           *description;
  char           *title_source, *body_source, *link_source, *condition_source;
  TocsinTemplate *title, *body, *link, *condition;  /* compiled */
  char           *trigger_token;
  char           *subscribe_token;
  gint64          created_at;   /* unix seconds */
  gint64          last_id;      /* newest message id in this channel (0: none yet) */
  gboolean        direct;       /* a direct inbox: trigger_token is its Direct key (/d/) */
  char           *email_token;  /* local part of its address, lowercase (the email trigger) */
  gint            ref_count;
  /* Signed webhooks (tocsin-relay-signature.h): "" when off. The secret is the relay's own copy,
   * never shown again after it was set, never logged. */
  char           *signature_scheme;
  char           *signature_secret;
  char           *signature_header;   /* hmac-sha256's header name */
  gboolean        paused;             /* its owner paused it: webhooks are refused (423) */
  /* Action buttons (tocsin-relay-actions.c): TocsinRequest definitions, compiled; never NULL. */
  GPtrArray      *actions;
  /* Outgoing requests (issue 15, tocsin-relay-forwards.c): the normalised definitions as stored
   * (a JSON array) and each compiled (TocsinRequest, never NULL, possibly empty). */
  char           *forwards_source;
  GPtrArray      *forwards;
} TocsinRelayChannel;

TocsinRelayChannel *tocsin_relay_channel_ref   (TocsinRelayChannel *channel);
void                tocsin_relay_channel_unref (TocsinRelayChannel *channel);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRelayChannel, tocsin_relay_channel_unref)

TocsinRelayStore   *tocsin_relay_store_open  (const char *data_dir, GError **error);
/* The same, on PostgreSQL when @database is a postgresql:// URL (issue 16; NULL: SQLite in
 * @data_dir). Every function below then runs on PostgreSQL (tocsin-relay-store-pg.c): the
 * reader and writer threads each hold a connection of their own, and calls from other threads
 * (the command line, tests) share a third under the store's lock. */
TocsinRelayStore   *tocsin_relay_store_open_database (const char  *data_dir,
                                                      const char  *database,
                                                      GError     **error);
/* PostgreSQL: the name this process speaks for as a node (presence, deliveries in flight; see
 * tocsin-relay-store-pg.h), instead of a random one: a node restarted under the same name takes
 * back its deliveries in flight at once. One live process per name. Call it before serving;
 * nothing on SQLite. */
void                tocsin_relay_store_set_node      (TocsinRelayStore *store,
                                                      const char       *node);
/* PostgreSQL: tells the other nodes that @by acknowledged @message_id of @channel_id (a
 * NOTIFY); nothing on SQLite, which has one process. */
gboolean            tocsin_relay_store_announce_ack  (TocsinRelayStore  *store,
                                                      gint64             channel_id,
                                                      gint64             message_id,
                                                      const char        *by,
                                                      GError           **error);
/* Whether the store is on PostgreSQL, and its connection string (NULL on SQLite). */
const char         *tocsin_relay_store_get_database  (TocsinRelayStore *store);
void                tocsin_relay_store_free  (TocsinRelayStore *store);

/* Constant-time token checks; NULL when unknown. Sees channels that another process (the CLI)
 * created or changed while the server runs. */
TocsinRelayChannel *tocsin_relay_store_find_by_trigger   (TocsinRelayStore *store, const char *token);
TocsinRelayChannel *tocsin_relay_store_find_by_subscribe (TocsinRelayStore *store, const char *token);
TocsinRelayChannel *tocsin_relay_store_find_by_id        (TocsinRelayStore *store, gint64 id);
/* As tocsin_relay_store_find_by_trigger(), telling the database failing (NULL with @error set:
 * PostgreSQL unreachable) from an unknown token (NULL, no error). */
TocsinRelayChannel *tocsin_relay_store_find_by_trigger_checked (TocsinRelayStore  *store,
                                                                const char        *token,
                                                                GError           **error);
TocsinRelayChannel *tocsin_relay_store_find_by_subscribe_checked (TocsinRelayStore  *store,
                                                                  const char        *token,
                                                                  GError           **error);
TocsinRelayChannel *tocsin_relay_store_find_by_email_checked (TocsinRelayStore  *store,
                                                              const char        *token,
                                                              GError           **error);
/* @token: the local part of a recipient address, lowercased by the caller. */
TocsinRelayChannel *tocsin_relay_store_find_by_email     (TocsinRelayStore *store,
                                                          const char       *token);

/* Which of a channel's secrets a token is, for tocsin_relay_store_find_channel_async(). */
typedef enum
{
  TOCSIN_RELAY_TOKEN_TRIGGER,    /* a webhook token (or a Direct key) */
  TOCSIN_RELAY_TOKEN_SUBSCRIBE,  /* a subscribe token */
  TOCSIN_RELAY_TOKEN_EMAIL,      /* a recipient's local part, lowercased by the caller */
} TocsinRelayTokenKind;

/* The one way the serving relay looks a token up: on the store's reader thread, with the
 * *_checked() functions above, so the main loop never waits on the database. The token is
 * copied, and wiped once looked up. tocsin_relay_store_find_channel_finish() returns the channel
 * (full reference), NULL for an unknown token, or NULL with @error when the database did not
 * answer (PostgreSQL unreachable), which callers answer as 503 or 451, never as "unknown". */
void                tocsin_relay_store_find_channel_async  (TocsinRelayStore      *store,
                                                            TocsinRelayTokenKind   kind,
                                                            const char            *token,
                                                            GAsyncReadyCallback    callback,
                                                            gpointer               user_data);
TocsinRelayChannel *tocsin_relay_store_find_channel_finish (TocsinRelayStore      *store,
                                                            GAsyncResult          *result,
                                                            GError               **error);

/* Replay: calls @func for each retained message of @channel_id with an id greater than
 * @after_id (-1: everything retained), in id order, with the encoded message object
 * (docs/protocol.md). When messages after @after_id are no longer retained, *gap_from..*gap_to
 * names them (both 0 when there is no gap). @func returns FALSE to stop. */
typedef gboolean (*TocsinRelayReplayFunc) (gint64 id, GBytes *message, gpointer user_data);
gboolean tocsin_relay_store_replay (TocsinRelayStore      *store,
                                    gint64                 channel_id,
                                    gint64                 after_id,
                                    TocsinRelayReplayFunc  func,
                                    gpointer               user_data,
                                    gint64                *gap_from,
                                    gint64                *gap_to,
                                    GError               **error);
/* The same, reading at most @limit messages (0: no limit) from the database: one page of a long
 * replay costs what it sends, not everything after it. The gap is computed as above. */
gboolean tocsin_relay_store_replay_page (TocsinRelayStore      *store,
                                         gint64                 channel_id,
                                         gint64                 after_id,
                                         guint                  limit,
                                         TocsinRelayReplayFunc  func,
                                         gpointer               user_data,
                                         gint64                *gap_from,
                                         gint64                *gap_to,
                                         GError               **error);

/* Off the main loop: the same page read on the store's reader thread, which has its own
 * read-only connection, so that a long replay or a slow disk never stalls the server's main loop.
 * @callback runs in the calling thread's default main context. */
typedef struct
{
  GArray    *ids;        /* gint64, in id order */
  GPtrArray *messages;   /* GBytes, the encoded message object of each id */
  gint64     gap_from;   /* both 0 when there is no gap */
  gint64     gap_to;
} TocsinRelayReplayPage;

void tocsin_relay_replay_page_free (TocsinRelayReplayPage *page);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRelayReplayPage, tocsin_relay_replay_page_free)

void                   tocsin_relay_store_replay_page_async  (TocsinRelayStore    *store,
                                                              gint64               channel_id,
                                                              gint64               after_id,
                                                              guint                limit,
                                                              GCancellable        *cancellable,
                                                              GAsyncReadyCallback  callback,
                                                              gpointer             user_data);
TocsinRelayReplayPage *tocsin_relay_store_replay_page_finish (TocsinRelayStore    *store,
                                                              GAsyncResult        *result,
                                                              GError             **error);

/* On the reader thread too: the current subscribe token of each of @ids that still exists, as a
 * GHashTable of gint64* id → token (channels that are gone are absent). */
void        tocsin_relay_store_lookup_subscribe_tokens_async  (TocsinRelayStore    *store,
                                                               const gint64        *ids,
                                                               guint                n_ids,
                                                               GCancellable        *cancellable,
                                                               GAsyncReadyCallback  callback,
                                                               gpointer             user_data);
GHashTable *tocsin_relay_store_lookup_subscribe_tokens_finish (TocsinRelayStore    *store,
                                                               GAsyncResult        *result,
                                                               GError             **error);

/* Off the main loop: runs @func, which calls this store's synchronous functions (they use the
 * main connection, under its lock) and keeps what it found in @data, on the reader thread
 * (@write FALSE: reads) or on the writer thread (@write TRUE: in order with the commits queued
 * before it, after their transaction). So the serving relay's main loop never waits on the
 * database, and the synchronous API stays one home for the command line, the tests and these
 * calls. @callback runs in the calling thread's thread-default main context; @data is the
 * caller's, left alone. tocsin_relay_store_call_finish() returns what @func returned (FALSE
 * with @error when it set one). */
typedef gboolean (*TocsinRelayStoreCallFunc) (TocsinRelayStore  *store,
                                              gpointer           data,
                                              GError           **error);
void     tocsin_relay_store_call_async  (TocsinRelayStore         *store,
                                         gboolean                  write,
                                         TocsinRelayStoreCallFunc  func,
                                         gpointer                  data,
                                         GAsyncReadyCallback       callback,
                                         gpointer                  user_data);
gboolean tocsin_relay_store_call_finish (TocsinRelayStore         *store,
                                         GAsyncResult             *result,
                                         GError                  **error);

/* Whether the store answers now, for the health endpoint (tocsin-relay-health.c), through
 * tocsin_relay_store_call_async(): a read of the database (PostgreSQL: `SELECT 1` on this
 * thread's connection, which is reopened for the next call when it was lost). */
gboolean tocsin_relay_store_ping (TocsinRelayStore  *store,
                                  GError           **error);

/* Presence, so that `tocsin-relay subscribers ID` (another process) and the owner API can list
 * who is connected. Called by the hub on connect/disconnect; must not block the main loop.
 * @conn_id is unique within this server process; @kind is "ws", "sse", "json" or "app". */
void tocsin_relay_store_note_subscriber (TocsinRelayStore *store,
                                         gint64            channel_id,
                                         guint64           conn_id,
                                         const char       *kind,
                                         const char       *peer,
                                         gboolean          connected);

/* ---- Channel management, commits, keys (store/ingest side) ---- */

#define TOCSIN_RELAY_STORE_ERROR (tocsin_relay_store_error_quark ())

typedef enum
{
  TOCSIN_RELAY_STORE_ERROR_FAILED,     /* SQLite or file system trouble */
  TOCSIN_RELAY_STORE_ERROR_NOT_FOUND,  /* no such channel */
  TOCSIN_RELAY_STORE_ERROR_INVALID,    /* a name or field a person must fix */
  TOCSIN_RELAY_STORE_ERROR_UNKNOWN,    /* PostgreSQL: COMMIT sent and the connection lost before
                                        * its answer: the write may have been stored */
} TocsinRelayStoreError;

/* How long a dedup key (eventId, Idempotency-Key, webhook-id) is remembered, as a hash. */
#define TOCSIN_RELAY_DEDUP_WINDOW_SECONDS (24 * 60 * 60)
#define TOCSIN_RELAY_CHANNEL_NAME_MAX 200
#define TOCSIN_RELAY_DESCRIPTION_MAX 2000

GQuark tocsin_relay_store_error_quark (void);

/* Messages older than @seconds are pruned and no longer replayed; 0 keeps nothing (live only).
 * The serve command sets it from TocsinRelayConfig.retention_seconds; default 86400. */
void tocsin_relay_store_set_retention (TocsinRelayStore *store, gint64 seconds);

/* Fields of a channel as a person gives them. NULL means "leave as is" for an update and
 * "empty" for a create (name is required for a create). Templates are compiled before anything
 * is written; a template that does not compile is refused with TOCSIN_TEMPLATE_ERROR. */
typedef struct
{
  const char *name;
  const char *description;
  const char *title;
  const char *body;
  const char *link;
  const char *condition;
  /* Signed webhooks: completed by tocsin_relay_signature_apply_spec() before the store sees
   * them; "" clears. */
  const char *signature;
  const char *signature_secret;
  const char *signature_header;
  gboolean    set_paused;   /* FALSE: leave `paused` as is */
  gboolean    paused;
  /* Action buttons: a JSON array of definitions (tocsin_relay_actions_normalise() checks it and
   * the store keeps it normalised); "[]" clears. */
  const char *actions;
  /* The forwards as a JSON array of request definitions (tocsin-request.h); compiled before
   * anything is written (TOCSIN_REQUEST_ERROR) and stored normalised. */
  const char *forwards;
} TocsinRelayChannelSpec;

/* Creates a channel with new tokens. *owner_key receives the owner key, which is only stored as
 * a hash and so can be shown this once. */
TocsinRelayChannel *tocsin_relay_store_create_channel   (TocsinRelayStore             *store,
                                                         const TocsinRelayChannelSpec *spec,
                                                         char                        **owner_key,
                                                         GError                      **error);
/* Creates a direct inbox (tocsin-relay-direct.c): a channel of kind "direct", named "Direct",
 * without templates, whose trigger token is the Direct key that /d/{key} takes (and /t/ does
 * not). Rotate its key with tocsin_relay_store_rotate_trigger(). */
TocsinRelayChannel *tocsin_relay_store_create_direct    (TocsinRelayStore             *store,
                                                         char                        **owner_key,
                                                         GError                      **error);
TocsinRelayChannel *tocsin_relay_store_update_channel   (TocsinRelayStore             *store,
                                                         gint64                        id,
                                                         const TocsinRelayChannelSpec *spec,
                                                         GError                      **error);
/* New trigger (or subscribe) token; the old one stops working at once, in every process. */
TocsinRelayChannel *tocsin_relay_store_rotate_trigger   (TocsinRelayStore *store,
                                                         gint64            id,
                                                         GError          **error);
TocsinRelayChannel *tocsin_relay_store_rotate_subscribe (TocsinRelayStore *store,
                                                         gint64            id,
                                                         GError          **error);
/* New email address (its token); mail to the old one is refused at once. */
TocsinRelayChannel *tocsin_relay_store_rotate_email     (TocsinRelayStore *store,
                                                         gint64            id,
                                                         GError          **error);
/* Deletes the channel, its retained messages and dedup keys. */
gboolean            tocsin_relay_store_delete_channel   (TocsinRelayStore *store,
                                                         gint64            id,
                                                         GError          **error);
/* Every channel, by id (TocsinRelayChannel*, unref'd by the array). */
GPtrArray          *tocsin_relay_store_list_channels    (TocsinRelayStore *store,
                                                         GError          **error);
/* The channel that @owner_key manages (constant-time check), or NULL. */
TocsinRelayChannel *tocsin_relay_store_find_by_owner_key (TocsinRelayStore *store,
                                                          const char       *owner_key);

/* Admin keys (`tocsin-relay key create`) may create channels on a relay that is not open and
 * manage any channel. Returned once; stored as a hash. */
char               *tocsin_relay_store_create_admin_key (TocsinRelayStore *store,
                                                         GError          **error);
gboolean            tocsin_relay_store_check_admin_key  (TocsinRelayStore *store,
                                                         const char       *key);

/* The serve command records the public URL it serves under, so that `tocsin-relay channel ...`
 * prints working URLs without being told --public-url. NULL when no server has recorded one. */
gboolean            tocsin_relay_store_set_public_url   (TocsinRelayStore *store,
                                                         const char       *public_url,
                                                         GError          **error);
char               *tocsin_relay_store_dup_public_url   (TocsinRelayStore *store);
/* The same for other settings the serve command records for the command line ("mail_domain"). */
gboolean            tocsin_relay_store_set_meta         (TocsinRelayStore *store,
                                                         const char       *key,
                                                         const char       *value,
                                                         GError          **error);
char               *tocsin_relay_store_dup_meta         (TocsinRelayStore *store,
                                                         const char       *key);

/* Who is connected to @channel_id, from every live server process on this data dir:
 * [{"kind","peer","connectedAt"}]. */
JsonArray          *tocsin_relay_store_list_presence    (TocsinRelayStore *store,
                                                         gint64            channel_id,
                                                         GError          **error);

typedef struct
{
  gint64    id;         /* the message id (the original one for a duplicate) */
  gint64    replaces;   /* 0 unless this message replaces an earlier one */
  gboolean  duplicate;  /* same dedup key and content within the window: nothing was stored */
  GBytes   *message;    /* the encoded message object (NULL for a duplicate) */
} TocsinRelayCommit;

void tocsin_relay_commit_free (TocsinRelayCommit *commit);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRelayCommit, tocsin_relay_commit_free)

/* Stores @message (taken) in @channel_id with the next id, on the store's writer thread, which
 * commits whatever is queued in one transaction (group commit). @callback runs in the calling
 * thread's default main context once the transaction is durable.
 * @dedup_key_hash/@content_hash: hex SHA-256 of the dedup key and of the request's content, or
 * NULL when the request has no dedup key. */
void               tocsin_relay_store_commit_async   (TocsinRelayStore    *store,
                                                      gint64               channel_id,
                                                      TocsinMessage       *message,
                                                      const char          *dedup_key_hash,
                                                      const char          *content_hash,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
TocsinRelayCommit *tocsin_relay_store_commit_finish  (TocsinRelayStore    *store,
                                                      GAsyncResult        *result,
                                                      GError             **error);

/* The same, also queueing in the same transaction one delivery (tocsin-relay-forwards.c) for
 * each forward of @forwards (the channel's compiled list, TocsinRequest) whose index is in
 * @indices (guint; the forwards whose condition passed). A duplicate queues nothing. */
void tocsin_relay_store_commit_with_forwards_async (TocsinRelayStore    *store,
                                                    gint64               channel_id,
                                                    TocsinMessage       *message,
                                                    const char          *dedup_key_hash,
                                                    const char          *content_hash,
                                                    GPtrArray           *forwards,
                                                    GArray              *indices,
                                                    GAsyncReadyCallback  callback,
                                                    gpointer             user_data);

/* Drops messages past retention, dedup keys past their window and presence rows of servers
 * that are gone. The writer thread runs it every minute; tests call it directly. @now_ms: the
 * clock (unix ms). */
gboolean tocsin_relay_store_prune (TocsinRelayStore *store,
                                   gint64            now_ms,
                                   GError          **error);

/* ---- Deliveries of forwards (issue 15; tocsin-relay-forwards.c, docs/actions.md) ---- */

typedef enum
{
  TOCSIN_RELAY_DELIVERY_PENDING,
  TOCSIN_RELAY_DELIVERY_DELIVERED,
  TOCSIN_RELAY_DELIVERY_FAILED,
  TOCSIN_RELAY_DELIVERY_HELD,
} TocsinRelayDeliveryState;

const char *tocsin_relay_delivery_state_to_string (TocsinRelayDeliveryState state);

typedef struct
{
  gint64      id;
  gint64      channel_id;
  gint64      message_id;
  char       *forward;        /* the forward's name */
  guint       forward_index;  /* its index in the channel's list when queued */
  char       *event;          /* "message" or "acknowledge" */
  char       *user;           /* who acknowledged ("" for a message) */
  char       *webhook_id;     /* "msg_…", the same on every attempt */
  gboolean    retry;          /* the forward's policy when queued: retry (TRUE) or none */
  TocsinRelayDeliveryState state;
  guint       attempts;       /* attempts started (an attempt in flight counts) */
  gint64      next_at_ms;     /* 0: none (finished, or in flight) */
  gint64      created_at_ms;
  GBytes     *message;        /* the encoded message it is for (NULL: not kept) */
} TocsinRelayDelivery;

void tocsin_relay_delivery_free (TocsinRelayDelivery *delivery);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRelayDelivery, tocsin_relay_delivery_free)

/* Queues deliveries of @forwards[@indices] for an event on message @message_id (whose encoded
 * form @message, may be NULL, is kept with them for rendering), on the writer thread, durably
 * before @callback runs. @event: "acknowledge"; @user: who. */
void     tocsin_relay_store_enqueue_async  (TocsinRelayStore    *store,
                                            gint64               channel_id,
                                            gint64               message_id,
                                            GBytes              *message,
                                            const char          *event,
                                            const char          *user,
                                            GPtrArray           *forwards,
                                            GArray              *indices,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
/* The number of deliveries queued. */
guint    tocsin_relay_store_enqueue_finish (TocsinRelayStore    *store,
                                            GAsyncResult        *result,
                                            GError             **error);

/* The sender's side; short statements on the main connection. */
/* Deliveries pending or held whose next_at_ms <= @now_ms, soonest first, at most @limit. */
GPtrArray *tocsin_relay_store_due_deliveries  (TocsinRelayStore *store,
                                               gint64            now_ms,
                                               guint             limit,
                                               GError          **error);
/* The soonest next_at_ms of a pending or held delivery, or 0 when there is none. */
gint64     tocsin_relay_store_next_delivery_at (TocsinRelayStore *store);
/* Marks an attempt as started: attempts + 1 (returned in *attempt), next_at_ms = NULL (in
 * flight), state pending. After a crash, such a delivery is found by
 * tocsin_relay_store_recover_deliveries(). TOCSIN_RELAY_STORE_ERROR_NOT_FOUND when the
 * delivery is not waiting (in flight already, finished, or gone). */
gboolean   tocsin_relay_store_start_attempt   (TocsinRelayStore *store,
                                               gint64            delivery_id,
                                               guint            *attempt,
                                               GError          **error);
/* Sets state and next_at_ms (0: NULL) without an attempt (held back, or retry now). */
gboolean   tocsin_relay_store_set_delivery_state (TocsinRelayStore         *store,
                                                  gint64                    delivery_id,
                                                  TocsinRelayDeliveryState  state,
                                                  gint64                    next_at_ms,
                                                  GError                  **error);

/* One attempt for the log (as TocsinAttempt, without depending on the sender's library). */
typedef struct
{
  gint64      at_ms;
  gint64      duration_ms;
  guint       attempt;
  const char *url;           /* for logs: no query, no user info */
  guint       status;
  const char *error;         /* NULL on success */
  const char *answer_start;
  const char *outcome;       /* "success", "retry", "error" */
  gint64      next_retry_at_ms;  /* 0: none */
} TocsinRelayAttemptRecord;

/* Records @record and moves the delivery to @state (next_at_ms: 0 for NULL), in one
 * transaction. */
gboolean   tocsin_relay_store_finish_attempt  (TocsinRelayStore               *store,
                                               gint64                          delivery_id,
                                               const TocsinRelayAttemptRecord *record,
                                               TocsinRelayDeliveryState        state,
                                               gint64                          next_at_ms,
                                               GError                        **error);
/* The sender's writes (tocsin-relay-forwards.c), made by the writer thread: a batch of
 * operations, one transaction, in order. The synchronous calls above stay for tests and the
 * owner API's "retry now". */
typedef enum
{
  TOCSIN_RELAY_DELIVERY_OP_START,       /* as tocsin_relay_store_start_attempt() */
  TOCSIN_RELAY_DELIVERY_OP_STATE,       /* as tocsin_relay_store_set_delivery_state() */
  TOCSIN_RELAY_DELIVERY_OP_FINISH,      /* as tocsin_relay_store_finish_attempt() */
  TOCSIN_RELAY_DELIVERY_OP_UNSENDABLE,  /* start, then finish as failed with @error */
} TocsinRelayDeliveryOpKind;

typedef struct
{
  TocsinRelayDeliveryOpKind kind;
  gint64                    delivery_id;
  TocsinRelayDeliveryState  state;        /* STATE, FINISH */
  gint64                    next_at_ms;   /* STATE, FINISH; 0: NULL */
  /* FINISH, UNSENDABLE: the attempt's record (strings owned) */
  gint64                    at_ms;
  gint64                    duration_ms;
  guint                     status;
  char                     *url;
  char                     *error;
  char                     *answer_start;
  char                     *outcome;
  gint64                    next_retry_at_ms;
  /* START: in, the attempt number after it (0 when the delivery was not waiting);
   * FINISH: in, the attempt's number */
  guint                     attempt;
} TocsinRelayDeliveryOp;

/* A GArray of TocsinRelayDeliveryOp that frees the ops' strings. */
GArray    *tocsin_relay_delivery_ops_new       (void);
TocsinRelayDeliveryOp *tocsin_relay_delivery_ops_add (GArray                    *ops,
                                                      TocsinRelayDeliveryOpKind  kind,
                                                      gint64                     delivery_id);
/* Queues @ops (a reference is kept; the results are written into it) to the writer thread;
 * @callback runs on the caller's main context once they are durable (or failed, all of them:
 * one transaction). Never touches the main connection. */
void       tocsin_relay_store_write_deliveries_async  (TocsinRelayStore    *store,
                                                       GArray              *ops,
                                                       GAsyncReadyCallback  callback,
                                                       gpointer             user_data);
gboolean   tocsin_relay_store_write_deliveries_finish (TocsinRelayStore  *store,
                                                       GAsyncResult      *result,
                                                       GError           **error);
/* For tests: how many delivery writes (start, state, finish) ran on the main connection
 * (the synchronous calls) and on the writer thread since the store opened. */
void       tocsin_relay_store_delivery_write_counts (TocsinRelayStore *store,
                                                     guint            *on_main,
                                                     guint            *on_writer);
/* At start: deliveries left in flight by a crash (next_at_ms NULL, pending) are due at
 * @now_ms, or failed when their policy is none (one attempt, already made). Returns how many. */
guint      tocsin_relay_store_recover_deliveries (TocsinRelayStore *store,
                                                  gint64            now_ms,
                                                  GError          **error);
TocsinRelayDelivery *tocsin_relay_store_get_delivery (TocsinRelayStore *store,
                                                      gint64            delivery_id,
                                                      GError          **error);
/* The owner API's and CLI's view: {"deliveries":[…],"attempts":[…]}, newest first, at most
 * @limit deliveries and their attempts (docs/api.md). */
JsonObject *tocsin_relay_store_list_deliveries (TocsinRelayStore *store,
                                                gint64            channel_id,
                                                guint             limit,
                                                GError          **error);
/* One delivery as the API shows it. */
JsonObject *tocsin_relay_delivery_to_json      (const TocsinRelayDelivery *delivery);

G_END_DECLS
