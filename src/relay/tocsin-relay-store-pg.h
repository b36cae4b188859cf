/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-store-pg.h: the relay store's PostgreSQL backend (issue 16), through libpq.
 *
 * Every function blocks on the network to the database: call them only on the store's own
 * thread (as the SQLite writer thread does), never on the main loop. A handle is one connection
 * and is not shared between threads; several handles (several nodes) on one database are what
 * it is made for: dedup and per-channel id order hold across them (see the .c).
 *
 * It covers what tocsin-relay-store.h offers a serving relay, with the same semantics and error
 * sentences; what differs is said at each function. tocsin-relay-store.c calls it when the store
 * was opened with a postgresql:// URL (tocsin_relay_store_open_database()).
 */
#pragma once

#include "tocsin-relay-store.h"

G_BEGIN_DECLS

typedef struct _TocsinRelayStorePg TocsinRelayStorePg;

/* Whether @database names PostgreSQL ("postgresql://…" or "postgres://…"). */
gboolean            tocsin_relay_store_pg_is_url      (const char *database);
/* A sentence saying what `serve --database=postgresql://…` cannot do (this build has no libpq);
 * NULL when it can. */
const char         *tocsin_relay_store_pg_missing     (void);

/* Connects and creates the schema if it is not there (under an advisory lock, so that nodes
 * starting together do not race). TOCSIN_RELAY_STORE_ERROR_FAILED with libpq's message. */
TocsinRelayStorePg *tocsin_relay_store_pg_open        (const char  *conninfo,
                                                       GError     **error);
void                tocsin_relay_store_pg_free        (TocsinRelayStorePg *pg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRelayStorePg, tocsin_relay_store_pg_free)

/* Channels. @spec has been checked and its actions normalised by the caller (the store's
 * public function does both before it picks a backend). */
TocsinRelayChannel *tocsin_relay_store_pg_create_channel (TocsinRelayStorePg           *pg,
                                                          const TocsinRelayChannelSpec *spec,
                                                          const char                   *kind,
                                                          char                        **owner_key,
                                                          GError                      **error);
/* A direct inbox (tocsin_relay_store_create_direct()): kind "direct", named "Direct". */
TocsinRelayChannel *tocsin_relay_store_pg_create_direct  (TocsinRelayStorePg           *pg,
                                                          char                        **owner_key,
                                                          GError                      **error);
/* As tocsin_relay_store_update_channel(): NULL fields are left as they are. @spec has been
 * checked and its actions normalised by the caller. Other nodes hear "CHANNEL_ID changed". */
TocsinRelayChannel *tocsin_relay_store_pg_update_channel (TocsinRelayStorePg           *pg,
                                                          gint64                        id,
                                                          const TocsinRelayChannelSpec *spec,
                                                          GError                      **error);
/* NULL without @error set when no channel has that token (or id). */
TocsinRelayChannel *tocsin_relay_store_pg_find_by_trigger   (TocsinRelayStorePg  *pg,
                                                             const char          *token,
                                                             GError             **error);
TocsinRelayChannel *tocsin_relay_store_pg_find_by_subscribe (TocsinRelayStorePg  *pg,
                                                             const char          *token,
                                                             GError             **error);
TocsinRelayChannel *tocsin_relay_store_pg_find_by_id        (TocsinRelayStorePg  *pg,
                                                             gint64               id,
                                                             GError             **error);
/* @token: the local part of a recipient address, lowercased by the caller. */
TocsinRelayChannel *tocsin_relay_store_pg_find_by_email     (TocsinRelayStorePg  *pg,
                                                             const char          *token,
                                                             GError             **error);
TocsinRelayChannel *tocsin_relay_store_pg_find_by_owner_key (TocsinRelayStorePg  *pg,
                                                             const char          *owner_key,
                                                             GError             **error);
/* Every channel, by id. */
GPtrArray          *tocsin_relay_store_pg_list_channels     (TocsinRelayStorePg  *pg,
                                                             GError             **error);
/* The current subscribe token of each of @ids that still exists: gint64* id → token. */
GHashTable         *tocsin_relay_store_pg_lookup_subscribe_tokens (TocsinRelayStorePg  *pg,
                                                                   const gint64        *ids,
                                                                   guint                n_ids,
                                                                   GError             **error);
/* TOCSIN_RELAY_STORE_ERROR_NOT_FOUND when there is no channel @id. */
TocsinRelayChannel *tocsin_relay_store_pg_rotate_trigger    (TocsinRelayStorePg  *pg,
                                                             gint64               id,
                                                             GError             **error);
TocsinRelayChannel *tocsin_relay_store_pg_rotate_subscribe  (TocsinRelayStorePg  *pg,
                                                             gint64               id,
                                                             GError             **error);
TocsinRelayChannel *tocsin_relay_store_pg_rotate_email      (TocsinRelayStorePg  *pg,
                                                             gint64               id,
                                                             GError             **error);
/* Its messages, dedup keys, presence rows, deliveries and their attempts go with it. */
gboolean            tocsin_relay_store_pg_delete_channel    (TocsinRelayStorePg  *pg,
                                                             gint64               id,
                                                             GError             **error);

/* Admin keys: returned once, stored as a hash, checked in constant time. A FALSE check with
 * @error set is the database failing, not a wrong key. */
char               *tocsin_relay_store_pg_create_admin_key  (TocsinRelayStorePg  *pg,
                                                             GError             **error);
gboolean            tocsin_relay_store_pg_check_admin_key   (TocsinRelayStorePg  *pg,
                                                             const char          *key,
                                                             GError             **error);
/* Settings the serve command records ("public_url", "mail_domain"); one value per database,
 * so every node sees the last one set. dup: NULL without @error when there is none. */
gboolean            tocsin_relay_store_pg_set_meta          (TocsinRelayStorePg  *pg,
                                                             const char          *key,
                                                             const char          *value,
                                                             GError             **error);
/* `SELECT 1`: whether the server answers on this handle (a lost connection is reopened for the
 * next call). The health endpoint's check (tocsin-relay-health.c). */
gboolean            tocsin_relay_store_pg_ping              (TocsinRelayStorePg  *pg,
                                                             GError             **error);
char               *tocsin_relay_store_pg_dup_meta          (TocsinRelayStorePg  *pg,
                                                             const char          *key,
                                                             GError             **error);
gboolean            tocsin_relay_store_pg_set_public_url    (TocsinRelayStorePg  *pg,
                                                             const char          *public_url,
                                                             GError             **error);
char               *tocsin_relay_store_pg_dup_public_url    (TocsinRelayStorePg  *pg,
                                                             GError             **error);

/* ---- Nodes and presence ----
 *
 * SQLite tells a live server process by its pid; nodes on several machines cannot. Each handle
 * speaks for a node (by default one random name per process; tocsin_relay_store_pg_set_node()
 * gives a stable one, such as a pod's name) that is alive while it has been seen within
 * TOCSIN_RELAY_STORE_PG_NODE_TIMEOUT_SECONDS: a serving node calls
 * tocsin_relay_store_pg_heartbeat() well within that (every minute is the writer's pace: 30 s
 * leaves room). Presence rows and deliveries in flight of a node not seen for that long are
 * treated as a crashed process's are on SQLite. */
#define TOCSIN_RELAY_STORE_PG_NODE_TIMEOUT_SECONDS 120

/* Names this handle's node and records it as seen now. */
gboolean    tocsin_relay_store_pg_set_node        (TocsinRelayStorePg  *pg,
                                                   const char          *node,
                                                   GError             **error);
const char *tocsin_relay_store_pg_get_node        (TocsinRelayStorePg  *pg);
gboolean    tocsin_relay_store_pg_heartbeat       (TocsinRelayStorePg  *pg,
                                                   gint64               now_ms,
                                                   GError             **error);
/* As tocsin_relay_store_note_subscriber(), synchronously (call it on the store's thread):
 * @conn_id is unique within this node. Also counts as a heartbeat. */
gboolean    tocsin_relay_store_pg_note_subscriber (TocsinRelayStorePg  *pg,
                                                   gint64               channel_id,
                                                   guint64              conn_id,
                                                   const char          *kind,
                                                   const char          *peer,
                                                   gboolean             connected,
                                                   GError             **error);
/* Who is connected to @channel_id on every node alive as of @now_ms:
 * [{"kind","peer","connectedAt"}], as tocsin_relay_store_list_presence(). */
JsonArray  *tocsin_relay_store_pg_list_presence   (TocsinRelayStorePg  *pg,
                                                   gint64               channel_id,
                                                   gint64               now_ms,
                                                   GError             **error);

/* One message to store, as tocsin_relay_store_commit_async() takes it. */
typedef struct
{
  gint64         channel_id;
  TocsinMessage *message;        /* borrowed; its id, channel and replaces are set */
  const char    *key_hash;       /* or NULL */
  const char    *content_hash;   /* or NULL */
  gint64         retention;      /* seconds; 0: live only (numbered, not kept) */
  /* As tocsin_relay_store_commit_with_forwards_async(): the channel's compiled forwards
   * (TocsinRequest) and the indices (guint) of those to queue a delivery for, in the message's
   * own transaction; NULL for none. A duplicate queues nothing. */
  GPtrArray     *forwards;
  GArray        *indices;
} TocsinRelayStorePgWrite;

/* Group commit: all of @writes in one transaction. Returns FALSE with @error when the
 * transaction failed (nothing of it is stored); otherwise, once COMMIT has returned,
 * commits[i] holds the result of writes[i], or NULL with errors[i] set (a deleted channel). */
gboolean tocsin_relay_store_pg_commit (TocsinRelayStorePg            *pg,
                                       const TocsinRelayStorePgWrite *writes,
                                       guint                          n_writes,
                                       TocsinRelayCommit            **commits,
                                       GError                       **errors,
                                       GError                       **error);

/* As tocsin_relay_store_replay_page(): messages of @channel_id after @after_id (-1: all
 * retained), at most @limit (0: no limit), and the gap a cursor older than retention leaves. */
TocsinRelayReplayPage *tocsin_relay_store_pg_replay_page (TocsinRelayStorePg  *pg,
                                                          gint64               channel_id,
                                                          gint64               after_id,
                                                          guint                limit,
                                                          gint64               retention,
                                                          GError             **error);
/* Drops messages past @retention seconds, dedup keys past their window, the deliveries log
 * (finished deliveries and attempts) past MAX (@retention, 1 hour) as SQLite does, and the
 * presence rows of nodes not seen for TOCSIN_RELAY_STORE_PG_NODE_TIMEOUT_SECONDS; deliveries
 * such a node left in flight are due again at @now_ms (as tocsin_relay_store_pg_recover_deliveries
 * does). Safe on several nodes at once (each statement alone). */
gboolean tocsin_relay_store_pg_prune (TocsinRelayStorePg  *pg,
                                      gint64               retention,
                                      gint64               now_ms,
                                      GError             **error);

/* Fan-out between nodes, the first part: each committed batch notifies (NOTIFY, sent only on
 * COMMIT) channel "tocsin_messages" with "CHANNEL_ID LAST_ID" for each channel it wrote to, and
 * deleting or rotating a channel notifies "tocsin_channels" with "CHANNEL_ID deleted" or
 * "CHANNEL_ID rotated" (an email address too), and creating or updating one "CHANNEL_ID
 * changed". A node LISTENs on its own handle, waits for its socket to be readable (on the store's
 * thread), takes what arrived, and reads the new rows in id order with
 * tocsin_relay_store_pg_replay_page() from its cursor. */
typedef enum
{
  TOCSIN_RELAY_STORE_PG_EVENT_MESSAGES,  /* @id: the channel's newest committed id */
  TOCSIN_RELAY_STORE_PG_EVENT_DELETED,
  TOCSIN_RELAY_STORE_PG_EVENT_ROTATED,
  TOCSIN_RELAY_STORE_PG_EVENT_CHANGED,   /* created or updated (templates, forwards, pause…) */
} TocsinRelayStorePgEvent;

typedef void (*TocsinRelayStorePgNotifyFunc) (TocsinRelayStorePgEvent  event,
                                              gint64                   channel_id,
                                              gint64                   id,
                                              gpointer                 user_data);

gboolean tocsin_relay_store_pg_listen               (TocsinRelayStorePg  *pg,
                                                     GError             **error);
/* The connection's socket, to poll for reading; -1 when there is no connection. */
int      tocsin_relay_store_pg_socket               (TocsinRelayStorePg  *pg);
/* Without blocking: reads what the server sent and calls @func for each notification. */
gboolean tocsin_relay_store_pg_take_notifications   (TocsinRelayStorePg            *pg,
                                                     TocsinRelayStorePgNotifyFunc   func,
                                                     gpointer                       user_data,
                                                     GError                       **error);

/* ---- Serving nodes ---- */

/* Retention for the whole cluster, by one node at a time: when no other node holds the prune
 * lock (pg_try_advisory_lock) and no node pruned within @interval_ms / 2 (recorded in meta),
 * runs tocsin_relay_store_pg_prune(). *ran (may be NULL) says whether it did. */
gboolean    tocsin_relay_store_pg_prune_exclusive (TocsinRelayStorePg  *pg,
                                                   gint64               retention,
                                                   gint64               now_ms,
                                                   gint64               interval_ms,
                                                   gboolean            *ran,
                                                   GError             **error);
/* Every channel's newest committed id: gint64* id → gint64* last_id. A listening node reads it
 * once it LISTENs (and again after its connection came back), so that nothing committed before
 * or while it was not listening is missed. */
GHashTable *tocsin_relay_store_pg_last_ids        (TocsinRelayStorePg  *pg,
                                                   GError             **error);
/* A subscriber acknowledged message @message_id of @channel_id on this node: other nodes hear
 * "CHANNEL_ID MESSAGE_ID BY" on "tocsin_acks" (@by: at most 64 characters, no control
 * characters, as the hub checks; NOTIFY payloads take 8000 bytes). */
gboolean    tocsin_relay_store_pg_announce_ack    (TocsinRelayStorePg  *pg,
                                                   gint64               channel_id,
                                                   gint64               message_id,
                                                   const char          *by,
                                                   GError             **error);
/* As tocsin_relay_store_pg_take_notifications(), also handing @ack_func the acknowledgements
 * announced by any node (this one's too). */
typedef void (*TocsinRelayStorePgAckFunc) (gint64      channel_id,
                                           gint64      message_id,
                                           const char *by,
                                           gpointer    user_data);
gboolean    tocsin_relay_store_pg_take_notifications_full (TocsinRelayStorePg            *pg,
                                                           TocsinRelayStorePgNotifyFunc   func,
                                                           TocsinRelayStorePgAckFunc      ack_func,
                                                           gpointer                       user_data,
                                                           GError                       **error);

/* ---- The outgoing-delivery queue (issue 15), as tocsin-relay-store.h's ---- */

/* Deliveries of @forwards[@indices] for an event on message @message_id (an acknowledgement),
 * in one transaction; returns the number queued, -1 with @error. */
gint                 tocsin_relay_store_pg_enqueue            (TocsinRelayStorePg  *pg,
                                                               gint64               channel_id,
                                                               gint64               message_id,
                                                               GBytes              *message,
                                                               const char          *event,
                                                               const char          *user,
                                                               GPtrArray           *forwards,
                                                               GArray              *indices,
                                                               GError             **error);
GPtrArray           *tocsin_relay_store_pg_due_deliveries     (TocsinRelayStorePg  *pg,
                                                               gint64               now_ms,
                                                               guint                limit,
                                                               GError             **error);
/* The soonest next_at_ms of a pending or held delivery, 0 when there is none (or on error). */
gint64               tocsin_relay_store_pg_next_delivery_at   (TocsinRelayStorePg  *pg,
                                                               GError             **error);
/* Takes the delivery for this node: of two nodes starting the same delivery, one gets the
 * attempt and the other TOCSIN_RELAY_STORE_ERROR_NOT_FOUND (a row lock decides). */
gboolean             tocsin_relay_store_pg_start_attempt      (TocsinRelayStorePg  *pg,
                                                               gint64               delivery_id,
                                                               guint               *attempt,
                                                               GError             **error);
gboolean tocsin_relay_store_pg_set_delivery_state (TocsinRelayStorePg        *pg,
                                                   gint64                     delivery_id,
                                                   TocsinRelayDeliveryState   state,
                                                   gint64                     next_at_ms,
                                                   GError                   **error);
gboolean tocsin_relay_store_pg_finish_attempt     (TocsinRelayStorePg              *pg,
                                                   gint64                          delivery_id,
                                                   const TocsinRelayAttemptRecord *record,
                                                   TocsinRelayDeliveryState        state,
                                                   gint64                          next_at_ms,
                                                   GError                        **error);
/* @ops (TocsinRelayDeliveryOp) in one transaction, in order, results written into them, as the
 * SQLite writer thread does for tocsin_relay_store_write_deliveries_async(). */
gboolean             tocsin_relay_store_pg_write_deliveries   (TocsinRelayStorePg  *pg,
                                                               GArray              *ops,
                                                               GError             **error);
/* Deliveries in flight that this node (after a restart under the same name) or a node that is
 * gone left: due at @now_ms, or failed when their policy is none. Returns how many, -1 on
 * error. A live node's attempts in flight are left alone. */
gint                 tocsin_relay_store_pg_recover_deliveries (TocsinRelayStorePg  *pg,
                                                               gint64               now_ms,
                                                               GError             **error);
TocsinRelayDelivery *tocsin_relay_store_pg_get_delivery       (TocsinRelayStorePg  *pg,
                                                               gint64               delivery_id,
                                                               GError             **error);
JsonObject          *tocsin_relay_store_pg_list_deliveries    (TocsinRelayStorePg  *pg,
                                                               gint64               channel_id,
                                                               guint                limit,
                                                               GError             **error);

/* ---- Moving a single relay's SQLite data in (`tocsin-relay migrate`) ----
 *
 * Rows go in as they are stored: ids, tokens, hashes, times and per-channel last_id unchanged,
 * so that every webhook URL, subscribe link, owner key, Direct key, email address and
 * subscriber's cursor stays valid. Presence is not carried (it names live connections). */
typedef enum
{
  TOCSIN_RELAY_STORE_PG_TABLE_CHANNELS,
  TOCSIN_RELAY_STORE_PG_TABLE_ADMIN_KEYS,
  TOCSIN_RELAY_STORE_PG_TABLE_META,
  TOCSIN_RELAY_STORE_PG_TABLE_MESSAGES,
  TOCSIN_RELAY_STORE_PG_TABLE_DEDUP,
  TOCSIN_RELAY_STORE_PG_TABLE_DELIVERIES,
  TOCSIN_RELAY_STORE_PG_TABLE_DELIVERY_ATTEMPTS,
  TOCSIN_RELAY_STORE_PG_N_TABLES,
} TocsinRelayStorePgTable;

/* The table's name, and its columns (comma-separated) as both backends name them. */
const char *tocsin_relay_store_pg_table_name      (TocsinRelayStorePgTable table);
const char *tocsin_relay_store_pg_table_columns   (TocsinRelayStorePgTable table);
guint       tocsin_relay_store_pg_table_n_columns (TocsinRelayStorePgTable table);
/* Whether column @column of @table is binary (BLOB, BYTEA). */
gboolean    tocsin_relay_store_pg_table_is_binary (TocsinRelayStorePgTable table,
                                                   guint                   column);

/* Begins the transaction and locks the tables against other nodes' writes until
 * tocsin_relay_store_pg_import_commit() or _rollback(). */
gboolean tocsin_relay_store_pg_import_begin        (TocsinRelayStorePg       *pg,
                                                    GError                  **error);
/* The number of rows in @table; -1 with @error. */
gint64   tocsin_relay_store_pg_count_rows          (TocsinRelayStorePg       *pg,
                                                    TocsinRelayStorePgTable   table,
                                                    GError                  **error);
/* One row as it is: @values[i] for column i of tocsin_relay_store_pg_table_columns() in
 * PostgreSQL's text form (NULL: SQL NULL), except binary columns, which are @lengths[i] bytes.
 * Rows are sent in batches (libpq's pipeline mode) and copied at once, so @values may change
 * after the call; a row's error may be reported by a later call (count, set_sequence, commit). */
gboolean tocsin_relay_store_pg_import_row          (TocsinRelayStorePg       *pg,
                                                    TocsinRelayStorePgTable   table,
                                                    const char * const       *values,
                                                    const int                *lengths,
                                                    GError                  **error);
/* Makes the next id of @table (channels, deliveries, delivery attempts) follow both its largest
 * id and @last_used (SQLite's sqlite_sequence: ids of deleted rows are not given again). */
gboolean tocsin_relay_store_pg_import_set_sequence (TocsinRelayStorePg       *pg,
                                                    TocsinRelayStorePgTable   table,
                                                    gint64                    last_used,
                                                    GError                  **error);
gboolean tocsin_relay_store_pg_import_commit       (TocsinRelayStorePg       *pg,
                                                    GError                  **error);
void     tocsin_relay_store_pg_import_rollback     (TocsinRelayStorePg       *pg);

G_END_DECLS
