/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-store-pg.c: the relay store's PostgreSQL backend (issue 16), through libpq.
 *
 * Ids stay ordered per channel with several writers (several nodes, or several group commits in
 * flight): a batch first locks the rows of its channels (SELECT … FOR UPDATE, in id order so that
 * two batches never wait on each other in a cycle), then numbers each message with
 * `UPDATE channels SET last_id = last_id + 1 … RETURNING last_id` in the same transaction as the
 * INSERT. The row lock is held until COMMIT, so message N + 1 of a channel is numbered only after
 * the transaction holding N has committed or rolled back (then N is free again): a reader that
 * sees N committed has every committed id below it. Ids have no holes except where a rolled back
 * batch was followed by nothing.
 *
 * Dedup (eventId, Idempotency-Key, webhook-id) across nodes: the dedup row of a key is looked up
 * under the same channel lock, and written with INSERT … ON CONFLICT on its primary key
 * (channel_id, key_hash); two nodes taking the same key for a channel are serialised by the lock,
 * and the constraint holds whatever happens.
 *
 * A write is reported only once COMMIT has returned, with the server's synchronous_commit (on:
 * flushed on the primary, and on a synchronous standby when the operator has configured one).
 *
 * Schema: one idempotent script (schema[] below) that every node runs when it connects, in one
 * transaction under an advisory lock, so that nodes starting together do not race; once it has
 * run, a comment on `channels` names its checksum and later connections skip it. Every
 * statement is CREATE … IF NOT EXISTS; a later change is a statement appended at its end (ALTER
 * TABLE … ADD COLUMN IF NOT EXISTS, CREATE INDEX IF NOT EXISTS), and a statement that has shipped
 * is never edited. No version table: PostgreSQL's IF NOT EXISTS forms make the script its own
 * migration, which SQLite's ALTER TABLE cannot (hence its migrations[] and user_version).
 *
 * Nodes: SQLite tells a live server process by its pid; here each handle speaks for a node name
 * with a heartbeat in `nodes` (see the header). Presence rows carry the node, and a delivery in
 * flight the node that took it, so that a crashed node's rows are recognised by the others.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-relay-store-pg.h"

gboolean
tocsin_relay_store_pg_is_url (const char *database)
{
  return database != NULL
         && (g_str_has_prefix (database, "postgresql://")
             || g_str_has_prefix (database, "postgres://"));
}

/* The tables `tocsin-relay migrate` carries, with their columns as both backends name them. */
typedef struct
{
  const char *name;
  const char *columns;
  guint       n_columns;
  int         binary;     /* the index of its one BLOB/BYTEA column, or -1 */
} ImportTable;

static const ImportTable import_tables[TOCSIN_RELAY_STORE_PG_N_TABLES] = {
  [TOCSIN_RELAY_STORE_PG_TABLE_CHANNELS] = {
    "channels",
    "id, version, name, description, title, body, link, condition, trigger_token, trigger_hash, "
    "subscribe_token, subscribe_hash, owner_hash, created_at, last_id, kind, signature_scheme, "
    "signature_secret, signature_header, paused, email_token, email_hash, actions, forwards",
    24, -1 },
  [TOCSIN_RELAY_STORE_PG_TABLE_ADMIN_KEYS] = { "admin_keys", "hash, created_at", 2, -1 },
  [TOCSIN_RELAY_STORE_PG_TABLE_META] = { "meta", "key, value", 2, -1 },
  [TOCSIN_RELAY_STORE_PG_TABLE_MESSAGES] = {
    "messages", "channel_id, id, time_ms, data", 4, 3 },
  [TOCSIN_RELAY_STORE_PG_TABLE_DEDUP] = {
    "dedup", "channel_id, key_hash, content_hash, message_id, time_ms", 5, -1 },
  [TOCSIN_RELAY_STORE_PG_TABLE_DELIVERIES] = {
    "deliveries",
    "id, channel_id, message_id, forward, forward_index, event, vars, message, webhook_id, "
    "policy, state, attempts, next_at_ms, created_at_ms",
    14, 7 },
  [TOCSIN_RELAY_STORE_PG_TABLE_DELIVERY_ATTEMPTS] = {
    "delivery_attempts",
    "id, delivery_id, channel_id, attempt, at_ms, url, status, error, duration_ms, "
    "answer_start, outcome, next_retry_at_ms",
    12, -1 },
};

const char *
tocsin_relay_store_pg_table_name (TocsinRelayStorePgTable table)
{
  g_return_val_if_fail (table < TOCSIN_RELAY_STORE_PG_N_TABLES, NULL);
  return import_tables[table].name;
}

const char *
tocsin_relay_store_pg_table_columns (TocsinRelayStorePgTable table)
{
  g_return_val_if_fail (table < TOCSIN_RELAY_STORE_PG_N_TABLES, NULL);
  return import_tables[table].columns;
}

guint
tocsin_relay_store_pg_table_n_columns (TocsinRelayStorePgTable table)
{
  g_return_val_if_fail (table < TOCSIN_RELAY_STORE_PG_N_TABLES, 0);
  return import_tables[table].n_columns;
}

gboolean
tocsin_relay_store_pg_table_is_binary (TocsinRelayStorePgTable table,
                                       guint                   column)
{
  g_return_val_if_fail (table < TOCSIN_RELAY_STORE_PG_N_TABLES, FALSE);
  return import_tables[table].binary == (int) column;
}

#ifndef HAVE_LIBPQ

const char *
tocsin_relay_store_pg_missing (void)
{
  return _("This tocsin-relay was built without libpq: install libpq-dev and build it again to "
           "use PostgreSQL.");
}

TocsinRelayStorePg *
tocsin_relay_store_pg_open (const char  *conninfo,
                            GError     **error)
{
  g_set_error_literal (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_FAILED,
                       tocsin_relay_store_pg_missing ());
  return NULL;
}

void
tocsin_relay_store_pg_free (TocsinRelayStorePg *pg)
{
}

/* Without libpq no handle can exist, so nothing below is ever reached. */
#define UNREACHABLE(value) G_STMT_START { g_return_val_if_reached (value); } G_STMT_END

TocsinRelayChannel *
tocsin_relay_store_pg_create_channel (TocsinRelayStorePg *pg, const TocsinRelayChannelSpec *spec,
                                      const char *kind, char **owner_key, GError **error)
{ UNREACHABLE (NULL); }
TocsinRelayChannel *
tocsin_relay_store_pg_find_by_trigger (TocsinRelayStorePg *pg, const char *token, GError **error)
{ UNREACHABLE (NULL); }
TocsinRelayChannel *
tocsin_relay_store_pg_find_by_subscribe (TocsinRelayStorePg *pg, const char *token,
                                         GError **error)
{ UNREACHABLE (NULL); }
TocsinRelayChannel *
tocsin_relay_store_pg_find_by_id (TocsinRelayStorePg *pg, gint64 id, GError **error)
{ UNREACHABLE (NULL); }
TocsinRelayChannel *
tocsin_relay_store_pg_rotate_trigger (TocsinRelayStorePg *pg, gint64 id, GError **error)
{ UNREACHABLE (NULL); }
TocsinRelayChannel *
tocsin_relay_store_pg_rotate_subscribe (TocsinRelayStorePg *pg, gint64 id, GError **error)
{ UNREACHABLE (NULL); }
gboolean
tocsin_relay_store_pg_delete_channel (TocsinRelayStorePg *pg, gint64 id, GError **error)
{ UNREACHABLE (FALSE); }
gboolean
tocsin_relay_store_pg_commit (TocsinRelayStorePg *pg, const TocsinRelayStorePgWrite *writes,
                              guint n_writes, TocsinRelayCommit **commits, GError **errors,
                              GError **error)
{ UNREACHABLE (FALSE); }
TocsinRelayReplayPage *
tocsin_relay_store_pg_replay_page (TocsinRelayStorePg *pg, gint64 channel_id, gint64 after_id,
                                   guint limit, gint64 retention, GError **error)
{ UNREACHABLE (NULL); }
gboolean
tocsin_relay_store_pg_prune (TocsinRelayStorePg *pg, gint64 retention, gint64 now_ms,
                             GError **error)
{ UNREACHABLE (FALSE); }
gboolean
tocsin_relay_store_pg_listen (TocsinRelayStorePg *pg, GError **error)
{ UNREACHABLE (FALSE); }
int
tocsin_relay_store_pg_socket (TocsinRelayStorePg *pg)
{ UNREACHABLE (-1); }
gboolean
tocsin_relay_store_pg_take_notifications (TocsinRelayStorePg *pg,
                                          TocsinRelayStorePgNotifyFunc func,
                                          gpointer user_data, GError **error)
{ UNREACHABLE (FALSE); }

TocsinRelayChannel *
tocsin_relay_store_pg_create_direct (TocsinRelayStorePg *pg, char **owner_key, GError **error)
{ UNREACHABLE (NULL); }
TocsinRelayChannel *
tocsin_relay_store_pg_update_channel (TocsinRelayStorePg *pg, gint64 id,
                                      const TocsinRelayChannelSpec *spec, GError **error)
{ UNREACHABLE (NULL); }
TocsinRelayChannel *
tocsin_relay_store_pg_find_by_email (TocsinRelayStorePg *pg, const char *token, GError **error)
{ UNREACHABLE (NULL); }
TocsinRelayChannel *
tocsin_relay_store_pg_find_by_owner_key (TocsinRelayStorePg *pg, const char *owner_key,
                                         GError **error)
{ UNREACHABLE (NULL); }
GPtrArray *
tocsin_relay_store_pg_list_channels (TocsinRelayStorePg *pg, GError **error)
{ UNREACHABLE (NULL); }
GHashTable *
tocsin_relay_store_pg_lookup_subscribe_tokens (TocsinRelayStorePg *pg, const gint64 *ids,
                                               guint n_ids, GError **error)
{ UNREACHABLE (NULL); }
TocsinRelayChannel *
tocsin_relay_store_pg_rotate_email (TocsinRelayStorePg *pg, gint64 id, GError **error)
{ UNREACHABLE (NULL); }
char *
tocsin_relay_store_pg_create_admin_key (TocsinRelayStorePg *pg, GError **error)
{ UNREACHABLE (NULL); }
gboolean
tocsin_relay_store_pg_check_admin_key (TocsinRelayStorePg *pg, const char *key, GError **error)
{ UNREACHABLE (FALSE); }
gboolean
tocsin_relay_store_pg_set_meta (TocsinRelayStorePg *pg, const char *key, const char *value,
                                GError **error)
{ UNREACHABLE (FALSE); }
gboolean
tocsin_relay_store_pg_ping (TocsinRelayStorePg *pg, GError **error)
{ UNREACHABLE (FALSE); }
char *
tocsin_relay_store_pg_dup_meta (TocsinRelayStorePg *pg, const char *key, GError **error)
{ UNREACHABLE (NULL); }
gboolean
tocsin_relay_store_pg_set_public_url (TocsinRelayStorePg *pg, const char *public_url,
                                      GError **error)
{ UNREACHABLE (FALSE); }
char *
tocsin_relay_store_pg_dup_public_url (TocsinRelayStorePg *pg, GError **error)
{ UNREACHABLE (NULL); }
gboolean
tocsin_relay_store_pg_set_node (TocsinRelayStorePg *pg, const char *node, GError **error)
{ UNREACHABLE (FALSE); }
const char *
tocsin_relay_store_pg_get_node (TocsinRelayStorePg *pg)
{ UNREACHABLE (NULL); }
gboolean
tocsin_relay_store_pg_heartbeat (TocsinRelayStorePg *pg, gint64 now_ms, GError **error)
{ UNREACHABLE (FALSE); }
gboolean
tocsin_relay_store_pg_note_subscriber (TocsinRelayStorePg *pg, gint64 channel_id,
                                       guint64 conn_id, const char *kind, const char *peer,
                                       gboolean connected, GError **error)
{ UNREACHABLE (FALSE); }
JsonArray *
tocsin_relay_store_pg_list_presence (TocsinRelayStorePg *pg, gint64 channel_id, gint64 now_ms,
                                     GError **error)
{ UNREACHABLE (NULL); }
gint
tocsin_relay_store_pg_enqueue (TocsinRelayStorePg *pg, gint64 channel_id, gint64 message_id,
                               GBytes *message, const char *event, const char *user,
                               GPtrArray *forwards, GArray *indices, GError **error)
{ UNREACHABLE (-1); }
GPtrArray *
tocsin_relay_store_pg_due_deliveries (TocsinRelayStorePg *pg, gint64 now_ms, guint limit,
                                      GError **error)
{ UNREACHABLE (NULL); }
gint64
tocsin_relay_store_pg_next_delivery_at (TocsinRelayStorePg *pg, GError **error)
{ UNREACHABLE (0); }
gboolean
tocsin_relay_store_pg_start_attempt (TocsinRelayStorePg *pg, gint64 delivery_id, guint *attempt,
                                     GError **error)
{ UNREACHABLE (FALSE); }
gboolean
tocsin_relay_store_pg_set_delivery_state (TocsinRelayStorePg *pg, gint64 delivery_id,
                                          TocsinRelayDeliveryState state, gint64 next_at_ms,
                                          GError **error)
{ UNREACHABLE (FALSE); }
gboolean
tocsin_relay_store_pg_finish_attempt (TocsinRelayStorePg *pg, gint64 delivery_id,
                                      const TocsinRelayAttemptRecord *record,
                                      TocsinRelayDeliveryState state, gint64 next_at_ms,
                                      GError **error)
{ UNREACHABLE (FALSE); }
gboolean
tocsin_relay_store_pg_write_deliveries (TocsinRelayStorePg *pg, GArray *ops, GError **error)
{ UNREACHABLE (FALSE); }
gint
tocsin_relay_store_pg_recover_deliveries (TocsinRelayStorePg *pg, gint64 now_ms, GError **error)
{ UNREACHABLE (-1); }
TocsinRelayDelivery *
tocsin_relay_store_pg_get_delivery (TocsinRelayStorePg *pg, gint64 delivery_id, GError **error)
{ UNREACHABLE (NULL); }
gboolean
tocsin_relay_store_pg_prune_exclusive (TocsinRelayStorePg *pg, gint64 retention, gint64 now_ms,
                                       gint64 interval_ms, gboolean *ran, GError **error)
{ UNREACHABLE (FALSE); }
GHashTable *
tocsin_relay_store_pg_last_ids (TocsinRelayStorePg *pg, GError **error)
{ UNREACHABLE (NULL); }
gboolean
tocsin_relay_store_pg_announce_ack (TocsinRelayStorePg *pg, gint64 channel_id, gint64 message_id,
                                    const char *by, GError **error)
{ UNREACHABLE (FALSE); }
gboolean
tocsin_relay_store_pg_take_notifications_full (TocsinRelayStorePg *pg,
                                               TocsinRelayStorePgNotifyFunc func,
                                               TocsinRelayStorePgAckFunc ack_func,
                                               gpointer user_data, GError **error)
{ UNREACHABLE (FALSE); }
JsonObject *
tocsin_relay_store_pg_list_deliveries (TocsinRelayStorePg *pg, gint64 channel_id, guint limit,
                                       GError **error)
{ UNREACHABLE (NULL); }
gboolean
tocsin_relay_store_pg_import_begin (TocsinRelayStorePg *pg, GError **error)
{ UNREACHABLE (FALSE); }
gint64
tocsin_relay_store_pg_count_rows (TocsinRelayStorePg *pg, TocsinRelayStorePgTable table,
                                  GError **error)
{ UNREACHABLE (-1); }
gboolean
tocsin_relay_store_pg_import_row (TocsinRelayStorePg *pg, TocsinRelayStorePgTable table,
                                  const char * const *values, const int *lengths, GError **error)
{ UNREACHABLE (FALSE); }
gboolean
tocsin_relay_store_pg_import_set_sequence (TocsinRelayStorePg *pg, TocsinRelayStorePgTable table,
                                           gint64 last_used, GError **error)
{ UNREACHABLE (FALSE); }
gboolean
tocsin_relay_store_pg_import_commit (TocsinRelayStorePg *pg, GError **error)
{ UNREACHABLE (FALSE); }
void
tocsin_relay_store_pg_import_rollback (TocsinRelayStorePg *pg)
{
}

#else /* HAVE_LIBPQ */

#include <unistd.h>
#include <libpq-fe.h>

#include "tocsin-json.h"
#include "tocsin-request.h"
#include "tocsin-token.h"
#include "tocsin-relay-actions.h"
#include "tocsin-relay-channel-cache.h"

/* Compared against when a token is unknown, so that an unknown token costs the same. */
static const char dummy_token[] = "________________________________";

/* pg_advisory_xact_lock key of the schema creation: "tocsin" in ASCII. */
#define SCHEMA_LOCK_KEY "116111099115105110"
/* The comment the schema script leaves on `channels`, followed by the script's SHA-256. */
#define SCHEMA_COMMENT "tocsin-relay schema "

struct _TocsinRelayStorePg
{
  PGconn *conn;
  char   *node;   /* the node this handle speaks for (presence, deliveries in flight) */
  guint   imports_prepared;  /* bit N: import_tables[N]'s INSERT is prepared on conn */
  gboolean importing;        /* in pipeline mode, sending import rows */
  guint    imports_pending;  /* rows sent whose results are not read yet */
  TocsinRelayChannelCache *channels;  /* compiled channels by (id, version), this handle's */
};

const char *
tocsin_relay_store_pg_missing (void)
{
  return NULL;
}

static const char schema[] =
  "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ");"
  "CREATE TABLE IF NOT EXISTS channels ("
  "  id BIGSERIAL PRIMARY KEY,"
  "  version BIGINT NOT NULL DEFAULT 1,"
  "  name TEXT NOT NULL,"
  "  description TEXT NOT NULL DEFAULT '',"
  "  title TEXT NOT NULL DEFAULT '',"
  "  body TEXT NOT NULL DEFAULT '',"
  "  link TEXT NOT NULL DEFAULT '',"
  "  condition TEXT NOT NULL DEFAULT '',"
  "  trigger_token TEXT NOT NULL,"
  "  trigger_hash TEXT NOT NULL UNIQUE,"
  "  subscribe_token TEXT NOT NULL,"
  "  subscribe_hash TEXT NOT NULL UNIQUE,"
  "  owner_hash TEXT NOT NULL UNIQUE,"
  "  created_at BIGINT NOT NULL,"
  "  last_id BIGINT NOT NULL DEFAULT 0,"
  "  kind TEXT NOT NULL DEFAULT 'webhook',"
  "  signature_scheme TEXT NOT NULL DEFAULT '',"
  "  signature_secret TEXT NOT NULL DEFAULT '',"
  "  signature_header TEXT NOT NULL DEFAULT '',"
  "  paused BOOLEAN NOT NULL DEFAULT FALSE,"
  "  email_token TEXT,"
  "  email_hash TEXT UNIQUE,"
  "  actions TEXT NOT NULL DEFAULT '[]',"
  "  forwards TEXT NOT NULL DEFAULT '[]');"
  "CREATE TABLE IF NOT EXISTS messages ("
  "  channel_id BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,"
  "  id BIGINT NOT NULL,"
  "  time_ms BIGINT NOT NULL,"
  "  data BYTEA NOT NULL,"
  "  PRIMARY KEY (channel_id, id));"
  "CREATE INDEX IF NOT EXISTS messages_time ON messages (time_ms);"
  /* Only hashes: the key and the content a sender used are not kept. */
  "CREATE TABLE IF NOT EXISTS dedup ("
  "  channel_id BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,"
  "  key_hash TEXT NOT NULL,"
  "  content_hash TEXT NOT NULL,"
  "  message_id BIGINT NOT NULL,"
  "  time_ms BIGINT NOT NULL,"
  "  PRIMARY KEY (channel_id, key_hash));"
  "CREATE INDEX IF NOT EXISTS dedup_time ON dedup (time_ms);"
  /* Admin keys, as hashes; settings the serve command records. */
  "CREATE TABLE IF NOT EXISTS admin_keys ("
  "  hash TEXT PRIMARY KEY,"
  "  created_at BIGINT NOT NULL);"
  "CREATE TABLE IF NOT EXISTS meta ("
  "  key TEXT PRIMARY KEY,"
  "  value TEXT NOT NULL);"
  /* Nodes and who is connected to them (SQLite's presence keyed by pid). No foreign key on
   * presence: deleting a channel deletes its rows in the same statement. */
  "CREATE TABLE IF NOT EXISTS nodes ("
  "  node TEXT PRIMARY KEY,"
  "  seen_ms BIGINT NOT NULL);"
  "CREATE TABLE IF NOT EXISTS presence ("
  "  node TEXT NOT NULL,"
  "  conn_id BIGINT NOT NULL,"
  "  channel_id BIGINT NOT NULL,"
  "  kind TEXT NOT NULL,"
  "  peer TEXT NOT NULL,"
  "  connected_at BIGINT NOT NULL,"
  "  PRIMARY KEY (node, conn_id, channel_id));"
  "CREATE INDEX IF NOT EXISTS presence_channel ON presence (channel_id);"
  /* The outgoing-delivery queue and its log (issue 15), as SQLite's migration 6, plus the node
   * that took a delivery in flight. */
  "CREATE TABLE IF NOT EXISTS deliveries ("
  "  id BIGSERIAL PRIMARY KEY,"
  "  channel_id BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,"
  "  message_id BIGINT NOT NULL,"
  "  forward TEXT NOT NULL,"
  "  forward_index INTEGER NOT NULL,"
  "  event TEXT NOT NULL,"
  "  vars TEXT NOT NULL DEFAULT '{}',"
  "  message BYTEA,"
  "  webhook_id TEXT NOT NULL UNIQUE,"
  "  policy TEXT NOT NULL DEFAULT 'retry',"
  "  state TEXT NOT NULL DEFAULT 'pending',"
  "  attempts INTEGER NOT NULL DEFAULT 0,"
  "  next_at_ms BIGINT,"
  "  created_at_ms BIGINT NOT NULL,"
  "  taken_by TEXT);"
  "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_at_ms);"
  "CREATE INDEX IF NOT EXISTS deliveries_channel ON deliveries (channel_id, id);"
  "CREATE TABLE IF NOT EXISTS delivery_attempts ("
  "  id BIGSERIAL PRIMARY KEY,"
  "  delivery_id BIGINT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,"
  "  channel_id BIGINT NOT NULL,"
  "  attempt INTEGER NOT NULL,"
  "  at_ms BIGINT NOT NULL,"
  "  url TEXT NOT NULL,"
  "  status INTEGER NOT NULL,"
  "  error TEXT,"
  "  duration_ms BIGINT NOT NULL,"
  "  answer_start TEXT NOT NULL DEFAULT '',"
  "  outcome TEXT NOT NULL,"
  "  next_retry_at_ms BIGINT);"
  "CREATE INDEX IF NOT EXISTS delivery_attempts_delivery"
  "  ON delivery_attempts (delivery_id, attempt);"
  "CREATE INDEX IF NOT EXISTS delivery_attempts_time ON delivery_attempts (at_ms);";

#define CHANNEL_COLUMNS \
  "id, version, name, description, title, body, link, condition, trigger_token, " \
  "subscribe_token, created_at, last_id, kind, signature_scheme, signature_secret, " \
  "signature_header, paused, email_token, actions, forwards"

static gboolean
set_pg_error (TocsinRelayStorePg  *pg,
              const PGresult      *result,
              const char          *what,
              GError             **error)
{
  const char *message = result ? PQresultErrorMessage (result) : "";

  if (message == NULL || message[0] == '\0')
    message = PQerrorMessage (pg->conn);
  g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_FAILED,
               /* Translators: %s: what the relay was doing, then PostgreSQL's message */
               _("PostgreSQL failed while %s: %s"), what, message);
  /* A lost connection is reopened for the next call; this one has failed. */
  if (PQstatus (pg->conn) == CONNECTION_BAD)
    {
      PQreset (pg->conn);
      pg->imports_prepared = 0;
    }
  return FALSE;
}

/* Runs @sql with text parameters (NULL-terminated @params; a NULL value is SQL NULL); NULL with
 * @error unless it returned @expected. */
static PGresult *
exec_params (TocsinRelayStorePg  *pg,
             const char          *sql,
             ExecStatusType       expected,
             const char          *what,
             GError             **error,
             int                  n_params,
             const char * const  *params)
{
  PGresult *result = PQexecParams (pg->conn, sql, n_params, NULL, params, NULL, NULL, 0);

  if (PQresultStatus (result) != expected)
    {
      set_pg_error (pg, result, what, error);
      PQclear (result);
      return NULL;
    }
  return result;
}

static gboolean
exec_command (TocsinRelayStorePg  *pg,
              const char          *sql,
              const char          *what,
              GError             **error)
{
  PGresult *result = exec_params (pg, sql, PGRES_COMMAND_OK, what, error, 0, NULL);

  PQclear (result);
  return result != NULL;
}

static void
rollback (TocsinRelayStorePg *pg)
{
  PQclear (PQexec (pg->conn, "ROLLBACK"));
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PGresult, PQclear)

static char *
int64_text (gint64 value)
{
  return g_strdup_printf ("%" G_GINT64_FORMAT, value);
}

/* Runs @sql for its effect (a command, or a query whose rows are not wanted). */
static gboolean
exec_effect (TocsinRelayStorePg  *pg,
             const char          *sql,
             ExecStatusType       expected,
             const char          *what,
             GError             **error,
             int                  n_params,
             const char * const  *params)
{
  PGresult *result = exec_params (pg, sql, expected, what, error, n_params, params);

  PQclear (result);
  return result != NULL;
}

/* This process's node name unless tocsin_relay_store_pg_set_node() gives one: the host and pid
 * for whoever reads the table, and a random part, since pids repeat across machines and
 * restarts. */
static const char *
default_node (void)
{
  static char *node;
  static gsize initialised;

  if (g_once_init_enter (&initialised))
    {
      g_autofree char *uuid = g_uuid_string_random ();

      node = g_strdup_printf ("%s/%d/%.8s", g_get_host_name (), (int) getpid (), uuid);
      g_once_init_leave (&initialised, 1);
    }
  return node;
}

#define HEARTBEAT_SQL_AT(node, now) \
  "INSERT INTO nodes (node, seen_ms) VALUES (" node ", " now "::bigint) ON CONFLICT (node)" \
  " DO UPDATE SET seen_ms = GREATEST (nodes.seen_ms, EXCLUDED.seen_ms)"
#define HEARTBEAT_SQL HEARTBEAT_SQL_AT ("$1", "$2")

gboolean
tocsin_relay_store_pg_heartbeat (TocsinRelayStorePg  *pg,
                                 gint64               now_ms,
                                 GError             **error)
{
  g_autofree char *now = int64_text (now_ms);
  const char *params[] = { pg->node, now };

  g_return_val_if_fail (pg != NULL, FALSE);

  return exec_effect (pg, HEARTBEAT_SQL, PGRES_COMMAND_OK, _("noting this node"), error, 2,
                      params);
}

gboolean
tocsin_relay_store_pg_set_node (TocsinRelayStorePg  *pg,
                                const char          *node,
                                GError             **error)
{
  g_return_val_if_fail (pg != NULL, FALSE);
  g_return_val_if_fail (node != NULL && *node != '\0', FALSE);

  g_free (pg->node);
  pg->node = g_strdup (node);
  return tocsin_relay_store_pg_heartbeat (pg, g_get_real_time () / 1000, error);
}

const char *
tocsin_relay_store_pg_get_node (TocsinRelayStorePg *pg)
{
  g_return_val_if_fail (pg != NULL, NULL);
  return pg->node;
}

static void
ignore_notice (void       *data,
               const char *message)
{
  g_debug ("PostgreSQL: %s", message);
}

/* Whether this very schema script has run (and committed) on the database: the comment it leaves
 * on `channels` names its checksum. Running it again on every connection is not free: each
 * CREATE INDEX IF NOT EXISTS takes a SHARE lock on its table even when the index is there, which
 * waits for every write in flight and, taken table after table, deadlocks with a transaction that
 * writes them in another order (deleting a channel cascades through messages, dedup, presence and
 * deliveries). Connections are opened under load: the cluster's, and every one after a
 * PostgreSQL restart. Reading the comment takes no lock on the table. */
static gboolean
schema_is_current (TocsinRelayStorePg *pg)
{
  g_autofree char *checksum = g_compute_checksum_for_string (G_CHECKSUM_SHA256, schema, -1);
  g_autofree char *expected = g_strconcat (SCHEMA_COMMENT, checksum, NULL);
  PGresult *result = PQexec (pg->conn, "SELECT obj_description (to_regclass ('channels'),"
                                       " 'pg_class')");
  gboolean current;

  current = PQresultStatus (result) == PGRES_TUPLES_OK && PQntuples (result) == 1 &&
            !PQgetisnull (result, 0, 0) && g_str_equal (PQgetvalue (result, 0, 0), expected);
  PQclear (result);
  return current;
}

TocsinRelayStorePg *
tocsin_relay_store_pg_open (const char  *conninfo,
                            GError     **error)
{
  g_autoptr(TocsinRelayStorePg) pg = g_new0 (TocsinRelayStorePg, 1);
  PGresult *result;

  g_return_val_if_fail (conninfo != NULL, NULL);

  pg->channels = tocsin_relay_channel_cache_new ();
  pg->conn = PQconnectdb (conninfo);
  if (PQstatus (pg->conn) != CONNECTION_OK)
    {
      g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_FAILED,
                   _("Could not connect to PostgreSQL: %s"), PQerrorMessage (pg->conn));
      return NULL;
    }
  /* The schema script's "already exists, skipping" notices, on every connection, say nothing. */
  PQsetNoticeProcessor (pg->conn, ignore_notice, NULL);
  if (PQserverVersion (pg->conn) < 150000)
    {
      g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_FAILED,
                   _("The relay needs PostgreSQL 15 or newer; the server is version %d."),
                   PQserverVersion (pg->conn) / 10000);
      return NULL;
    }
  /* The schema's IF NOT EXISTS would print a NOTICE per table on stderr at every start. */
  PQclear (PQexec (pg->conn, "SET client_min_messages = warning"));
  if (!schema_is_current (pg))
    {
      g_autofree char *checksum = g_compute_checksum_for_string (G_CHECKSUM_SHA256, schema, -1);
      g_autofree char *script = g_strdup_printf ("%sCOMMENT ON TABLE channels IS "
                                                 "'" SCHEMA_COMMENT "%s';", schema, checksum);

      /* A multi-statement simple query is one transaction: the comment says it all ran. */
      result = PQexec (pg->conn, script);
      if (PQresultStatus (result) != PGRES_COMMAND_OK &&
          PQresultStatus (result) != PGRES_TUPLES_OK)
        {
          set_pg_error (pg, result, _("creating the schema"), error);
          PQclear (result);
          return NULL;
        }
      PQclear (result);
    }
  pg->node = g_strdup (default_node ());
  if (!tocsin_relay_store_pg_heartbeat (pg, g_get_real_time () / 1000, error))
    return NULL;
  return g_steal_pointer (&pg);
}

void
tocsin_relay_store_pg_free (TocsinRelayStorePg *pg)
{
  if (pg == NULL)
    return;
  g_clear_pointer (&pg->conn, PQfinish);
  g_clear_pointer (&pg->channels, tocsin_relay_channel_cache_free);
  g_free (pg->node);
  g_free (pg);
}

static gint64
value_int64 (const PGresult *result,
             int             row,
             int             col)
{
  return g_ascii_strtoll (PQgetvalue (result, row, col), NULL, 10);
}

/* A channel's forwards from their stored JSON text, as the SQLite backend compiles them. */
static GPtrArray *
compile_forwards (const char  *source,
                  GError     **error)
{
  return tocsin_request_list_parse ("forwards", source, TOCSIN_REQUEST_MAX_FORWARDS, error);
}

/* Builds a channel from a row of CHANNEL_COLUMNS, as the SQLite backend does. */
static TocsinRelayChannel *
channel_from_row (const PGresult *result,
                  int             row)
{
  TocsinRelayChannel *channel = g_new0 (TocsinRelayChannel, 1);
  g_autoptr(GError) error = NULL;

  channel->ref_count = 1;
  channel->id = value_int64 (result, row, 0);
  channel->name = g_strdup (PQgetvalue (result, row, 2));
  channel->description = g_strdup (PQgetvalue (result, row, 3));
  channel->title_source = g_strdup (PQgetvalue (result, row, 4));
  channel->body_source = g_strdup (PQgetvalue (result, row, 5));
  channel->link_source = g_strdup (PQgetvalue (result, row, 6));
  channel->condition_source = g_strdup (PQgetvalue (result, row, 7));
  channel->trigger_token = g_strdup (PQgetvalue (result, row, 8));
  channel->subscribe_token = g_strdup (PQgetvalue (result, row, 9));
  channel->created_at = value_int64 (result, row, 10);
  channel->last_id = value_int64 (result, row, 11);
  channel->direct = g_str_equal (PQgetvalue (result, row, 12), "direct");
  channel->signature_scheme = g_strdup (PQgetvalue (result, row, 13));
  channel->signature_secret = g_strdup (PQgetvalue (result, row, 14));
  channel->signature_header = g_strdup (PQgetvalue (result, row, 15));
  channel->paused = g_str_equal (PQgetvalue (result, row, 16), "t");
  channel->email_token = g_strdup (PQgetvalue (result, row, 17));
  channel->actions = tocsin_relay_actions_load (channel->id, PQgetvalue (result, row, 18));
  channel->forwards_source = g_strdup (PQgetvalue (result, row, 19));
  channel->forwards = compile_forwards (channel->forwards_source, &error);
  if (channel->forwards == NULL)
    {
      g_message ("Channel %" G_GINT64_FORMAT ": its saved forwards no longer compile: %s",
                 channel->id, error->message);
      g_clear_error (&error);
      channel->forwards = g_ptr_array_new ();
    }

  /* Templates were checked when they were saved; one that no longer compiles (a newer template
   * library) renders as empty rather than taking the relay down. */
  if (!(channel->title = tocsin_template_new ("title", channel->title_source, &error))
      || !(channel->body = tocsin_template_new ("body", channel->body_source, &error))
      || !(channel->link = tocsin_template_new ("link", channel->link_source, &error))
      || !(channel->condition = tocsin_template_new_condition ("condition",
                                                               channel->condition_source,
                                                               &error)))
    {
      g_message ("Channel %" G_GINT64_FORMAT ": a saved template no longer compiles: %s",
                 channel->id, error->message);
      g_clear_pointer (&channel->title, tocsin_template_unref);
      g_clear_pointer (&channel->body, tocsin_template_unref);
      g_clear_pointer (&channel->link, tocsin_template_unref);
      g_clear_pointer (&channel->condition, tocsin_template_unref);
      channel->title = tocsin_template_new ("title", NULL, NULL);
      channel->body = tocsin_template_new ("body", NULL, NULL);
      channel->link = tocsin_template_new ("link", NULL, NULL);
      channel->condition = tocsin_template_new_condition ("condition", NULL, NULL);
    }
  return channel;
}

static TocsinRelayChannel *
select_channel (TocsinRelayStorePg  *pg,
                const char          *sql,
                const char          *param,
                GError             **error)
{
  const char *params[] = { param };
  g_autoptr(PGresult) result = exec_params (pg, sql, PGRES_TUPLES_OK, _("reading a channel"),
                                            error, 1, params);
  TocsinRelayChannel *channel;

  if (result == NULL || PQntuples (result) == 0)
    return NULL;
  /* The row was read just now: the cache only saves compiling it again, and a channel another
   * node rotated, updated or deleted has a new version, or no row. */
  channel = tocsin_relay_channel_cache_lookup (pg->channels, value_int64 (result, 0, 0),
                                               value_int64 (result, 0, 1),
                                               value_int64 (result, 0, 11));
  if (channel != NULL)
    return channel;
  channel = channel_from_row (result, 0);
  tocsin_relay_channel_cache_insert (pg->channels, channel, value_int64 (result, 0, 1));
  return channel;
}

static gboolean
not_found (gint64   id,
           GError **error)
{
  g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND,
               _("There is no channel %" PRId64), id);
  return FALSE;
}

static const char *
empty_if_null (const char *text)
{
  return text ? text : "";
}

TocsinRelayChannel *
tocsin_relay_store_pg_create_channel (TocsinRelayStorePg            *pg,
                                      const TocsinRelayChannelSpec  *spec,
                                      const char                    *kind,
                                      char                         **owner_key,
                                      GError                       **error)
{
  g_autofree char *trigger = NULL, *subscribe = NULL, *owner = NULL, *email = NULL;
  g_autofree char *trigger_hash = NULL, *subscribe_hash = NULL, *owner_hash = NULL;
  g_autofree char *email_hash = NULL, *name = NULL, *created_at = NULL;
  g_autoptr(PGresult) result = NULL;
  const char *params[21];
  TocsinRelayChannel *channel;

  g_return_val_if_fail (pg != NULL, NULL);
  g_return_val_if_fail (spec != NULL && spec->name != NULL, NULL);

  if (!(trigger = tocsin_token_new (error)) ||
      !(subscribe = tocsin_token_new (error)) ||
      !(owner = tocsin_token_new (error)) ||
      !(email = tocsin_token_new_mail (error)))
    return NULL;
  trigger_hash = tocsin_token_hash (trigger);
  subscribe_hash = tocsin_token_hash (subscribe);
  owner_hash = tocsin_token_hash (owner);
  email_hash = tocsin_token_hash (email);
  name = g_strstrip (g_strdup (spec->name));
  created_at = g_strdup_printf ("%" G_GINT64_FORMAT, g_get_real_time () / G_USEC_PER_SEC);

  params[0] = name;
  params[1] = empty_if_null (spec->description);
  params[2] = empty_if_null (spec->title);
  params[3] = empty_if_null (spec->body);
  params[4] = empty_if_null (spec->link);
  params[5] = empty_if_null (spec->condition);
  params[6] = trigger;
  params[7] = trigger_hash;
  params[8] = subscribe;
  params[9] = subscribe_hash;
  params[10] = owner_hash;
  params[11] = created_at;
  params[12] = empty_if_null (kind);
  params[13] = empty_if_null (spec->signature);
  params[14] = empty_if_null (spec->signature_secret);
  params[15] = empty_if_null (spec->signature_header);
  params[16] = spec->set_paused && spec->paused ? "t" : "f";
  params[17] = email;
  params[18] = email_hash;
  params[19] = spec->actions != NULL ? spec->actions : "[]";
  params[20] = spec->forwards != NULL ? spec->forwards : "[]";
  result = exec_params (pg,
                        "WITH c AS (INSERT INTO channels (name, description, title, body, link,"
                        " condition, trigger_token, trigger_hash, subscribe_token,"
                        " subscribe_hash, owner_hash, created_at, kind, signature_scheme,"
                        " signature_secret, signature_header, paused, email_token, email_hash,"
                        " actions, forwards)"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
                        " $15, $16, $17, $18, $19, $20, $21) RETURNING " CHANNEL_COLUMNS ")"
                        " SELECT c.*, pg_notify ('tocsin_channels', c.id || ' changed') FROM c",
                        PGRES_TUPLES_OK, _("creating a channel"), error,
                        G_N_ELEMENTS (params), params);
  if (result == NULL)
    return NULL;
  channel = channel_from_row (result, 0);
  if (owner_key)
    *owner_key = g_steal_pointer (&owner);
  return channel;
}

static TocsinRelayChannel *
find_by_token (TocsinRelayStorePg  *pg,
               const char          *column,
               const char          *token,
               GError             **error)
{
  g_autofree char *hash = NULL, *sql = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(GError) local_error = NULL;
  gboolean equal;

  g_return_val_if_fail (pg != NULL, NULL);

  if (token == NULL)
    token = "";
  hash = tocsin_token_hash (token);
  sql = g_strdup_printf ("SELECT " CHANNEL_COLUMNS " FROM channels WHERE %s_hash = $1", column);
  channel = select_channel (pg, sql, hash, &local_error);
  if (local_error)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  /* The hash found the row; the token itself is compared in constant time, and an unknown token
   * costs the same comparison. */
  equal = tocsin_token_equal (channel == NULL ? dummy_token
                              : column[0] == 't' ? channel->trigger_token
                              : column[0] == 's' ? channel->subscribe_token
                              : channel->email_token, token);
  return equal ? g_steal_pointer (&channel) : NULL;
}

TocsinRelayChannel *
tocsin_relay_store_pg_find_by_trigger (TocsinRelayStorePg  *pg,
                                       const char          *token,
                                       GError             **error)
{
  return find_by_token (pg, "trigger", token, error);
}

TocsinRelayChannel *
tocsin_relay_store_pg_find_by_subscribe (TocsinRelayStorePg  *pg,
                                         const char          *token,
                                         GError             **error)
{
  return find_by_token (pg, "subscribe", token, error);
}

TocsinRelayChannel *
tocsin_relay_store_pg_find_by_id (TocsinRelayStorePg  *pg,
                                  gint64               id,
                                  GError             **error)
{
  g_autofree char *text = g_strdup_printf ("%" G_GINT64_FORMAT, id);

  g_return_val_if_fail (pg != NULL, NULL);
  return select_channel (pg, "SELECT " CHANNEL_COLUMNS " FROM channels WHERE id = $1", text,
                         error);
}

static TocsinRelayChannel *
rotate (TocsinRelayStorePg  *pg,
        gint64               id,
        const char          *column,
        GError             **error)
{
  g_autofree char *token = NULL, *hash = NULL, *sql = NULL, *text = NULL;
  g_autoptr(PGresult) result = NULL;
  const char *params[3];

  g_return_val_if_fail (pg != NULL, NULL);

  token = g_str_equal (column, "email") ? tocsin_token_new_mail (error) : tocsin_token_new (error);
  if (token == NULL)
    return NULL;
  hash = tocsin_token_hash (token);
  text = g_strdup_printf ("%" G_GINT64_FORMAT, id);
  params[0] = text;
  params[1] = token;
  params[2] = hash;
  /* One statement: the row and the notice to other nodes (sent on its commit) go together. */
  sql = g_strdup_printf ("WITH u AS (UPDATE channels SET version = version + 1, %s_token = $2,"
                         " %s_hash = $3 WHERE id = $1 RETURNING " CHANNEL_COLUMNS ")"
                         " SELECT u.*, pg_notify ('tocsin_channels', u.id || ' rotated') FROM u",
                         column, column);
  result = exec_params (pg, sql, PGRES_TUPLES_OK, _("rotating a token"), error, 3, params);
  if (result == NULL)
    return NULL;
  if (PQntuples (result) == 0)
    {
      not_found (id, error);
      return NULL;
    }
  return channel_from_row (result, 0);
}

TocsinRelayChannel *
tocsin_relay_store_pg_rotate_trigger (TocsinRelayStorePg  *pg,
                                      gint64               id,
                                      GError             **error)
{
  return rotate (pg, id, "trigger", error);
}

TocsinRelayChannel *
tocsin_relay_store_pg_rotate_subscribe (TocsinRelayStorePg  *pg,
                                        gint64               id,
                                        GError             **error)
{
  return rotate (pg, id, "subscribe", error);
}

gboolean
tocsin_relay_store_pg_delete_channel (TocsinRelayStorePg  *pg,
                                      gint64               id,
                                      GError             **error)
{
  g_autofree char *text = g_strdup_printf ("%" G_GINT64_FORMAT, id);
  const char *params[] = { text };
  g_autoptr(PGresult) result = NULL;

  g_return_val_if_fail (pg != NULL, FALSE);

  /* Its messages, dedup keys and deliveries go with it (ON DELETE CASCADE), its presence rows
   * here, and other nodes hear of it on commit, all in one statement. */
  result = exec_params (pg, "WITH d AS (DELETE FROM channels WHERE id = $1 RETURNING id),"
                        " p AS (DELETE FROM presence WHERE channel_id = $1)"
                        " SELECT pg_notify ('tocsin_channels', d.id || ' deleted') FROM d",
                        PGRES_TUPLES_OK, _("deleting a channel"), error, 1, params);
  if (result == NULL)
    return FALSE;
  tocsin_relay_channel_cache_remove (pg->channels, id);
  if (PQntuples (result) == 0)
    return not_found (id, error);
  return TRUE;
}

/* The deliveries of one event (issue 15), inside the caller's transaction, as SQLite's
 * insert_deliveries(). */
static gboolean
insert_deliveries (TocsinRelayStorePg  *pg,
                   gint64               channel_id,
                   gint64               message_id,
                   const void          *data,
                   gsize                length,
                   const char          *event,
                   const char          *user,
                   GPtrArray           *forwards,
                   GArray              *indices,
                   gint64               now_ms,
                   GError             **error)
{
  g_autofree char *vars = NULL, *channel = NULL, *message = NULL, *now = NULL;

  if (forwards == NULL || indices == NULL || indices->len == 0)
    return TRUE;
  {
    g_autoptr(GString) out = g_string_new ("{\"user\":");

    tocsin_json_append_string (out, user ? user : "");
    g_string_append_c (out, '}');
    vars = g_string_free (g_steal_pointer (&out), FALSE);
  }
  channel = int64_text (channel_id);
  message = int64_text (message_id);
  now = int64_text (now_ms);
  for (guint i = 0; i < indices->len; i++)
    {
      guint index = g_array_index (indices, guint, i);
      g_autofree char *token = NULL, *webhook_id = NULL, *index_text = NULL;
      g_autoptr(PGresult) result = NULL;
      TocsinRequest *forward;
      const char *values[11];
      int lengths[11] = { 0 };
      int formats[11] = { 0 };

      if (index >= forwards->len)
        continue;
      forward = forwards->pdata[index];
      token = tocsin_token_new (error);
      if (token == NULL)
        return FALSE;
      webhook_id = g_strconcat ("msg_", token, NULL);
      index_text = g_strdup_printf ("%u", index);
      values[0] = channel;
      values[1] = message;
      values[2] = tocsin_request_get_name (forward);
      values[3] = index_text;
      values[4] = event;
      values[5] = vars;
      values[6] = data;   /* NULL: SQL NULL */
      lengths[6] = (int) length;
      formats[6] = 1;
      values[7] = webhook_id;
      values[8] = tocsin_request_get_policy (forward) == TOCSIN_REQUEST_POLICY_NONE
                  ? "none" : "retry";
      values[9] = now;
      values[10] = now;
      result = PQexecParams (pg->conn, "INSERT INTO deliveries (channel_id, message_id, forward,"
                             " forward_index, event, vars, message, webhook_id, policy, state,"
                             " attempts, next_at_ms, created_at_ms) VALUES ($1, $2, $3, $4, $5,"
                             " $6, $7, $8, $9, 'pending', 0, $10, $11)",
                             11, NULL, values, lengths, formats, 0);
      if (PQresultStatus (result) != PGRES_COMMAND_OK)
        return set_pg_error (pg, result, _("queueing a delivery"), error);
    }
  return TRUE;
}

/* One message inside the batch's transaction, its channel locked. NULL with @error when a
 * statement failed (the transaction is then aborted). */
static TocsinRelayCommit *
write_message (TocsinRelayStorePg             *pg,
               const TocsinRelayStorePgWrite  *write,
               GError                        **error)
{
  g_autoptr(TocsinRelayCommit) commit = g_new0 (TocsinRelayCommit, 1);
  g_autoptr(PGresult) result = NULL;
  g_autofree char *channel_id = g_strdup_printf ("%" G_GINT64_FORMAT, write->channel_id);
  g_autofree char *time_ms = g_strdup_printf ("%" G_GINT64_FORMAT, write->message->time_ms);
  g_autofree char *id_text = NULL;
  g_autofree char *data = NULL;
  gsize length;

  if (write->key_hash != NULL)
    {
      g_autofree char *since = g_strdup_printf ("%" G_GINT64_FORMAT, write->message->time_ms
                                                - TOCSIN_RELAY_DEDUP_WINDOW_SECONDS * 1000);
      const char *params[] = { channel_id, write->key_hash, since };

      result = exec_params (pg, "SELECT message_id, content_hash FROM dedup"
                            " WHERE channel_id = $1 AND key_hash = $2 AND time_ms >= $3",
                            PGRES_TUPLES_OK, _("looking up a dedup key"), error, 3, params);
      if (result == NULL)
        return NULL;
      if (PQntuples (result) > 0)
        {
          gint64 previous = value_int64 (result, 0, 0);

          if (g_strcmp0 (PQgetvalue (result, 0, 1), empty_if_null (write->content_hash)) == 0)
            {
              commit->id = previous;
              commit->duplicate = TRUE;
              return g_steal_pointer (&commit);
            }
          commit->replaces = previous;
        }
      g_clear_pointer (&result, PQclear);
    }

  {
    const char *params[] = { channel_id };

    result = exec_params (pg, "UPDATE channels SET last_id = last_id + 1 WHERE id = $1"
                          " RETURNING last_id", PGRES_TUPLES_OK, _("numbering a message"),
                          error, 1, params);
    if (result == NULL)
      return NULL;
    g_assert (PQntuples (result) == 1);  /* locked by the batch: it exists */
    commit->id = value_int64 (result, 0, 0);
    g_clear_pointer (&result, PQclear);
  }

  write->message->id = commit->id;
  write->message->channel = write->channel_id;
  write->message->replaces = commit->replaces;
  data = tocsin_message_to_data (write->message, &length);
  commit->message = g_bytes_new (data, length);
  id_text = g_strdup_printf ("%" G_GINT64_FORMAT, commit->id);

  /* Live only: the id still counts up, but nothing is kept. */
  if (write->retention > 0)
    {
      const char *values[] = { channel_id, id_text, time_ms, data };
      const int lengths[] = { 0, 0, 0, (int) length };
      const int formats[] = { 0, 0, 0, 1 };

      result = PQexecParams (pg->conn, "INSERT INTO messages (channel_id, id, time_ms, data)"
                             " VALUES ($1, $2, $3, $4)", 4, NULL, values, lengths, formats, 0);
      if (PQresultStatus (result) != PGRES_COMMAND_OK)
        {
          set_pg_error (pg, result, _("storing a message"), error);
          return NULL;
        }
      g_clear_pointer (&result, PQclear);
    }

  if (write->key_hash != NULL)
    {
      const char *params[] = { channel_id, write->key_hash, empty_if_null (write->content_hash),
                               id_text, time_ms };

      result = exec_params (pg, "INSERT INTO dedup (channel_id, key_hash, content_hash,"
                            " message_id, time_ms) VALUES ($1, $2, $3, $4, $5)"
                            " ON CONFLICT (channel_id, key_hash) DO UPDATE SET"
                            " content_hash = EXCLUDED.content_hash,"
                            " message_id = EXCLUDED.message_id, time_ms = EXCLUDED.time_ms",
                            PGRES_COMMAND_OK, _("remembering a dedup key"), error, 5, params);
      if (result == NULL)
        return NULL;
    }

  /* In the message's own transaction: a message that is durable has its deliveries queued. */
  if (!insert_deliveries (pg, write->channel_id, commit->id, data, length, "message", "",
                          write->forwards, write->indices, g_get_real_time () / 1000, error))
    return NULL;
  return g_steal_pointer (&commit);
}

static int
compare_int64 (gconstpointer a,
               gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

gboolean
tocsin_relay_store_pg_commit (TocsinRelayStorePg             *pg,
                              const TocsinRelayStorePgWrite  *writes,
                              guint                           n_writes,
                              TocsinRelayCommit             **commits,
                              GError                        **errors,
                              GError                        **error)
{
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GHashTable) existing = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                                          NULL);
  g_autoptr(GHashTable) newest = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                                        NULL);
  g_autoptr(GString) array = g_string_new ("{");
  g_autoptr(PGresult) result = NULL;
  const char *params[1];

  g_return_val_if_fail (pg != NULL, FALSE);

  for (guint i = 0; i < n_writes; i++)
    {
      commits[i] = NULL;
      errors[i] = NULL;
      g_array_append_val (ids, writes[i].channel_id);
    }
  g_array_sort (ids, compare_int64);
  for (guint i = 0; i < ids->len; i++)
    g_string_append_printf (array, "%s%" G_GINT64_FORMAT, i ? "," : "",
                            g_array_index (ids, gint64, i));
  g_string_append_c (array, '}');
  params[0] = array->str;

  if (!exec_command (pg, "BEGIN", _("starting a transaction"), error))
    return FALSE;
  /* The channels' rows, locked in id order until COMMIT: see the top of the file. */
  result = exec_params (pg, "SELECT id FROM channels WHERE id = ANY ($1::bigint[])"
                        " ORDER BY id FOR UPDATE", PGRES_TUPLES_OK, _("locking channels"),
                        error, 1, params);
  if (result == NULL)
    goto fail;
  for (int row = 0; row < PQntuples (result); row++)
    {
      gint64 id = value_int64 (result, row, 0);

      g_hash_table_add (existing, g_memdup2 (&id, sizeof id));
    }

  for (guint i = 0; i < n_writes; i++)
    {
      if (!g_hash_table_contains (existing, &writes[i].channel_id))
        {
          g_set_error (&errors[i], TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND,
                       _("The channel was deleted"));
          continue;
        }
      commits[i] = write_message (pg, &writes[i], error);
      if (commits[i] == NULL)
        goto fail;
      if (!commits[i]->duplicate)
        g_hash_table_insert (newest, g_memdup2 (&writes[i].channel_id, sizeof (gint64)),
                             GINT_TO_POINTER (1));
    }
  if (g_hash_table_size (newest) > 0)
    {
      g_autoptr(GString) notices = g_string_new ("{");
      GHashTableIter iter;
      gpointer key;

      /* Each channel's newest id, read back under the lock; NOTIFY is sent only on COMMIT. */
      g_hash_table_iter_init (&iter, newest);
      while (g_hash_table_iter_next (&iter, &key, NULL))
        g_string_append_printf (notices, "%s%" G_GINT64_FORMAT, notices->len > 1 ? "," : "",
                                *(gint64 *) key);
      g_string_append_c (notices, '}');
      params[0] = notices->str;
      g_clear_pointer (&result, PQclear);
      result = exec_params (pg, "SELECT pg_notify ('tocsin_messages', id || ' ' || last_id)"
                            " FROM channels WHERE id = ANY ($1::bigint[])", PGRES_TUPLES_OK,
                            _("notifying other nodes"), error, 1, params);
      if (result == NULL)
        goto fail;
    }
  if (!exec_command (pg, "COMMIT", _("committing messages"), error))
    {
      /* The server may have committed before the connection went (a primary killed while it
       * waited for its standby, whose copy is then promoted): not "nothing was stored". */
      if (error != NULL && *error != NULL)
        (*error)->code = TOCSIN_RELAY_STORE_ERROR_UNKNOWN;
      goto fail;
    }
  return TRUE;

fail:
  rollback (pg);
  for (guint i = 0; i < n_writes; i++)
    {
      g_clear_pointer (&commits[i], tocsin_relay_commit_free);
      g_clear_error (&errors[i]);
    }
  return FALSE;
}

TocsinRelayReplayPage *
tocsin_relay_store_pg_replay_page (TocsinRelayStorePg  *pg,
                                   gint64               channel_id,
                                   gint64               after_id,
                                   guint                limit,
                                   gint64               retention,
                                   GError             **error)
{
  g_autoptr(TocsinRelayReplayPage) page = g_new0 (TocsinRelayReplayPage, 1);
  g_autoptr(PGresult) result = NULL;
  g_autofree char *channel = g_strdup_printf ("%" G_GINT64_FORMAT, channel_id);
  g_autofree char *after = g_strdup_printf ("%" G_GINT64_FORMAT, MAX (after_id, 0));
  g_autofree char *cutoff = g_strdup_printf ("%" G_GINT64_FORMAT,
                                             retention > 0
                                             ? g_get_real_time () / 1000 - retention * 1000
                                             : G_MAXINT64);
  g_autofree char *limit_text = limit > 0 ? g_strdup_printf ("%u", limit) : NULL;
  gint64 last_id, first_retained = 0;

  g_return_val_if_fail (pg != NULL, NULL);

  page->ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  page->messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);

  /* One snapshot, so that last_id and the rows agree. */
  if (!exec_command (pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                     _("starting a transaction"), error))
    return NULL;
  {
    const char *params[] = { channel };

    result = exec_params (pg, "SELECT last_id FROM channels WHERE id = $1", PGRES_TUPLES_OK,
                          _("replaying messages"), error, 1, params);
    if (result == NULL)
      goto fail;
    if (PQntuples (result) == 0)
      {
        not_found (channel_id, error);
        goto fail;
      }
    last_id = value_int64 (result, 0, 0);
    g_clear_pointer (&result, PQclear);
  }
  {
    const char *params[] = { channel, after, cutoff, limit_text };

    /* Binary results: data is BYTEA. A NULL LIMIT is no limit. */
    result = PQexecParams (pg->conn, "SELECT id, data FROM messages WHERE channel_id = $1"
                           " AND id > $2 AND time_ms >= $3 ORDER BY id LIMIT $4::bigint",
                           4, NULL, params, NULL, NULL, 1);
    if (PQresultStatus (result) != PGRES_TUPLES_OK)
      {
        set_pg_error (pg, result, _("replaying messages"), error);
        goto fail;
      }
    for (int row = 0; row < PQntuples (result); row++)
      {
        gint64 id;

        g_assert (PQgetlength (result, row, 0) == 8);
        memcpy (&id, PQgetvalue (result, row, 0), 8);
        id = GINT64_FROM_BE (id);
        if (first_retained == 0)
          first_retained = id;
        g_array_append_val (page->ids, id);
        g_ptr_array_add (page->messages, g_bytes_new (PQgetvalue (result, row, 1),
                                                      PQgetlength (result, row, 1)));
      }
  }
  exec_command (pg, "COMMIT", _("ending a transaction"), NULL);

  /* A cursor (not "everything") older than what is kept: name what can't be replayed. */
  if (after_id >= 0)
    {
      gint64 to = first_retained ? first_retained - 1 : last_id;

      if (to > after_id)
        {
          page->gap_from = after_id + 1;
          page->gap_to = to;
        }
    }
  return g_steal_pointer (&page);

fail:
  rollback (pg);
  return NULL;
}

/* A node is alive while seen within the timeout (as of $N, a cutoff in ms). */
#define NODE_IS_LIVE(node, cutoff) \
  "EXISTS (SELECT 1 FROM nodes n WHERE n.node = " node " AND n.seen_ms >= " cutoff ")"

/* Deliveries left in flight (next_at_ms NULL, pending or held): due at $1 with the retry policy
 * (attempts already counts the lost attempt, the webhook-id stays the same), failed with policy
 * none. $2: this node, $3: the liveness cutoff. */
#define RECOVER_SQL(which) \
  "UPDATE deliveries d SET state = CASE policy WHEN 'none' THEN 'failed' ELSE 'pending' END," \
  " next_at_ms = CASE policy WHEN 'none' THEN NULL ELSE $1::bigint END, taken_by = NULL" \
  " WHERE next_at_ms IS NULL AND state IN ('pending', 'held') AND " which

gboolean
tocsin_relay_store_pg_prune (TocsinRelayStorePg  *pg,
                             gint64               retention,
                             gint64               now_ms,
                             GError             **error)
{
  g_autofree char *messages = g_strdup_printf ("%" G_GINT64_FORMAT,
                                               retention > 0 ? now_ms - retention * 1000
                                               : G_MAXINT64);
  g_autofree char *keys = int64_text (now_ms - TOCSIN_RELAY_DEDUP_WINDOW_SECONDS * 1000);
  /* The deliveries log is kept as long as messages, and at least an hour (as SQLite). */
  g_autofree char *log = int64_text (now_ms - MAX (retention, 3600) * 1000);
  g_autofree char *now = int64_text (now_ms);
  g_autofree char *live = int64_text (now_ms - TOCSIN_RELAY_STORE_PG_NODE_TIMEOUT_SECONDS * 1000);
  const char *message_params[] = { messages };
  const char *key_params[] = { keys };
  const char *log_params[] = { log };
  const char *recover_params[] = { now, pg->node, live };
  const char *node_params[] = { pg->node, live };

  g_return_val_if_fail (pg != NULL, FALSE);

  /* Autocommit statements: each is safe alone, and several nodes may run them at once. */
  return exec_effect (pg, "DELETE FROM messages WHERE time_ms < $1", PGRES_COMMAND_OK,
                      _("pruning messages"), error, 1, message_params)
         && exec_effect (pg, "DELETE FROM dedup WHERE time_ms < $1", PGRES_COMMAND_OK,
                         _("pruning dedup keys"), error, 1, key_params)
         && exec_effect (pg, "DELETE FROM delivery_attempts WHERE at_ms < $1", PGRES_COMMAND_OK,
                         _("pruning the deliveries log"), error, 1, log_params)
         /* Unfinished deliveries stay. */
         && exec_effect (pg, "DELETE FROM deliveries WHERE state IN ('delivered', 'failed')"
                         " AND created_at_ms < $1", PGRES_COMMAND_OK, _("pruning deliveries"),
                         error, 1, log_params)
         /* What a node that is gone had in flight is due again (never this node's own). */
         && exec_effect (pg, RECOVER_SQL ("taken_by IS NOT NULL AND taken_by <> $2 AND NOT "
                                          NODE_IS_LIVE ("d.taken_by", "$3::bigint")),
                         PGRES_COMMAND_OK, _("recovering deliveries"), error, 3, recover_params)
         && exec_effect (pg, "DELETE FROM presence p WHERE p.node <> $1 AND NOT "
                         NODE_IS_LIVE ("p.node", "$2::bigint"), PGRES_COMMAND_OK,
                         _("pruning subscribers"), error, 2, node_params)
         && exec_effect (pg, "DELETE FROM nodes WHERE node <> $1 AND seen_ms < $2",
                         PGRES_COMMAND_OK, _("pruning subscribers"), error, 2, node_params);
}

gboolean
tocsin_relay_store_pg_listen (TocsinRelayStorePg  *pg,
                              GError             **error)
{
  g_return_val_if_fail (pg != NULL, FALSE);

  return exec_command (pg, "LISTEN tocsin_messages", _("listening for other nodes"), error)
         && exec_command (pg, "LISTEN tocsin_channels", _("listening for other nodes"), error)
         && exec_command (pg, "LISTEN tocsin_acks", _("listening for other nodes"), error);
}

int
tocsin_relay_store_pg_socket (TocsinRelayStorePg *pg)
{
  g_return_val_if_fail (pg != NULL, -1);

  return PQsocket (pg->conn);
}

gboolean
tocsin_relay_store_pg_take_notifications (TocsinRelayStorePg            *pg,
                                          TocsinRelayStorePgNotifyFunc   func,
                                          gpointer                       user_data,
                                          GError                       **error)
{
  return tocsin_relay_store_pg_take_notifications_full (pg, func, NULL, user_data, error);
}

gboolean
tocsin_relay_store_pg_take_notifications_full (TocsinRelayStorePg            *pg,
                                               TocsinRelayStorePgNotifyFunc   func,
                                               TocsinRelayStorePgAckFunc      ack_func,
                                               gpointer                       user_data,
                                               GError                       **error)
{
  PGnotify *notify;

  g_return_val_if_fail (pg != NULL, FALSE);

  if (!PQconsumeInput (pg->conn))
    return set_pg_error (pg, NULL, _("listening for other nodes"), error);
  while ((notify = PQnotifies (pg->conn)) != NULL)
    {
      g_auto(GStrv) fields = g_strsplit (notify->extra, " ", 2);
      gint64 channel_id = fields[0] ? g_ascii_strtoll (fields[0], NULL, 10) : 0;

      /* Only this file sends on these channels; anything else is ignored. */
      if (channel_id > 0 && fields[1] != NULL)
        {
          if (g_str_equal (notify->relname, "tocsin_acks"))
            {
              /* "CHANNEL_ID MESSAGE_ID BY…" (BY may hold spaces). */
              g_auto(GStrv) rest = g_strsplit (fields[1], " ", 2);

              if (ack_func != NULL && rest[0] != NULL && rest[1] != NULL)
                ack_func (channel_id, g_ascii_strtoll (rest[0], NULL, 10), rest[1], user_data);
            }
          else if (g_str_equal (notify->relname, "tocsin_messages"))
            func (TOCSIN_RELAY_STORE_PG_EVENT_MESSAGES, channel_id,
                  g_ascii_strtoll (fields[1], NULL, 10), user_data);
          else if (g_str_equal (fields[1], "deleted"))
            func (TOCSIN_RELAY_STORE_PG_EVENT_DELETED, channel_id, 0, user_data);
          else if (g_str_equal (fields[1], "rotated"))
            func (TOCSIN_RELAY_STORE_PG_EVENT_ROTATED, channel_id, 0, user_data);
          else if (g_str_equal (fields[1], "changed"))
            func (TOCSIN_RELAY_STORE_PG_EVENT_CHANGED, channel_id, 0, user_data);
        }
      PQfreemem (notify);
    }
  return TRUE;
}

/* ---- Channels: the rest of what tocsin-relay-store.h offers ---- */

TocsinRelayChannel *
tocsin_relay_store_pg_create_direct (TocsinRelayStorePg  *pg,
                                     char               **owner_key,
                                     GError             **error)
{
  const TocsinRelayChannelSpec spec = { .name = "Direct" };

  return tocsin_relay_store_pg_create_channel (pg, &spec, "direct", owner_key, error);
}

TocsinRelayChannel *
tocsin_relay_store_pg_update_channel (TocsinRelayStorePg            *pg,
                                      gint64                         id,
                                      const TocsinRelayChannelSpec  *spec,
                                      GError                       **error)
{
  g_autofree char *name = NULL, *text = NULL;
  g_autoptr(PGresult) result = NULL;
  const char *params[13];

  g_return_val_if_fail (pg != NULL, NULL);
  g_return_val_if_fail (spec != NULL, NULL);

  name = spec->name ? g_strstrip (g_strdup (spec->name)) : NULL;
  text = int64_text (id);
  params[0] = text;
  params[1] = name;
  params[2] = spec->description;
  params[3] = spec->title;
  params[4] = spec->body;
  params[5] = spec->link;
  params[6] = spec->condition;
  params[7] = spec->signature;
  params[8] = spec->signature_secret;
  params[9] = spec->signature_header;
  params[10] = spec->set_paused ? (spec->paused ? "t" : "f") : NULL;
  params[11] = spec->actions;
  params[12] = spec->forwards;
  /* NULL leaves a column as it is; the notice goes out on commit with the row. */
  result = exec_params (pg,
                        "WITH u AS (UPDATE channels SET version = version + 1,"
                        " name = coalesce ($2, name),"
                        " description = coalesce ($3, description),"
                        " title = coalesce ($4, title),"
                        " body = coalesce ($5, body),"
                        " link = coalesce ($6, link),"
                        " condition = coalesce ($7, condition),"
                        " signature_scheme = coalesce ($8, signature_scheme),"
                        " signature_secret = coalesce ($9, signature_secret),"
                        " signature_header = coalesce ($10, signature_header),"
                        " paused = coalesce ($11::boolean, paused),"
                        " actions = coalesce ($12, actions),"
                        " forwards = coalesce ($13, forwards)"
                        " WHERE id = $1 RETURNING " CHANNEL_COLUMNS ")"
                        " SELECT u.*, pg_notify ('tocsin_channels', u.id || ' changed') FROM u",
                        PGRES_TUPLES_OK, _("changing a channel"), error, G_N_ELEMENTS (params),
                        params);
  if (result == NULL)
    return NULL;
  if (PQntuples (result) == 0)
    {
      not_found (id, error);
      return NULL;
    }
  return channel_from_row (result, 0);
}

TocsinRelayChannel *
tocsin_relay_store_pg_rotate_email (TocsinRelayStorePg  *pg,
                                    gint64               id,
                                    GError             **error)
{
  return rotate (pg, id, "email", error);
}

TocsinRelayChannel *
tocsin_relay_store_pg_find_by_email (TocsinRelayStorePg  *pg,
                                     const char          *token,
                                     GError             **error)
{
  return find_by_token (pg, "email", token, error);
}

TocsinRelayChannel *
tocsin_relay_store_pg_find_by_owner_key (TocsinRelayStorePg  *pg,
                                         const char          *owner_key,
                                         GError             **error)
{
  g_autofree char *hash = NULL;
  const char *params[1];
  g_autoptr(PGresult) result = NULL;
  const char *stored = NULL;

  g_return_val_if_fail (pg != NULL, NULL);

  hash = tocsin_token_hash (owner_key ? owner_key : "");
  params[0] = hash;
  result = exec_params (pg, "SELECT " CHANNEL_COLUMNS ", owner_hash FROM channels"
                        " WHERE owner_hash = $1", PGRES_TUPLES_OK, _("reading a channel"), error,
                        1, params);
  if (result == NULL)
    return NULL;
  if (PQntuples (result) > 0)
    stored = PQgetvalue (result, 0, PQnfields (result) - 1);
  /* As SQLite: the row found by the hash is compared in constant time. */
  if (tocsin_token_equal (stored ? stored : "", hash) && stored != NULL)
    return channel_from_row (result, 0);
  return NULL;
}

GPtrArray *
tocsin_relay_store_pg_list_channels (TocsinRelayStorePg  *pg,
                                     GError             **error)
{
  g_autoptr(PGresult) result = NULL;
  GPtrArray *channels;

  g_return_val_if_fail (pg != NULL, NULL);

  result = exec_params (pg, "SELECT " CHANNEL_COLUMNS " FROM channels ORDER BY id",
                        PGRES_TUPLES_OK, _("listing channels"), error, 0, NULL);
  if (result == NULL)
    return NULL;
  channels = g_ptr_array_new_with_free_func ((GDestroyNotify) tocsin_relay_channel_unref);
  for (int row = 0; row < PQntuples (result); row++)
    g_ptr_array_add (channels, channel_from_row (result, row));
  return channels;
}

static char *
int64_array (const gint64 *ids,
             guint         n_ids)
{
  GString *array = g_string_new ("{");

  for (guint i = 0; i < n_ids; i++)
    g_string_append_printf (array, "%s%" G_GINT64_FORMAT, i ? "," : "", ids[i]);
  g_string_append_c (array, '}');
  return g_string_free (array, FALSE);
}

static void
token_free (gpointer data)
{
  char *token = data;

  explicit_bzero (token, strlen (token));
  g_free (token);
}

GHashTable *
tocsin_relay_store_pg_lookup_subscribe_tokens (TocsinRelayStorePg  *pg,
                                               const gint64        *ids,
                                               guint                n_ids,
                                               GError             **error)
{
  g_autofree char *array = NULL;
  const char *params[1];
  g_autoptr(PGresult) result = NULL;
  GHashTable *tokens;

  g_return_val_if_fail (pg != NULL, NULL);
  g_return_val_if_fail (ids != NULL || n_ids == 0, NULL);

  array = int64_array (ids, n_ids);
  params[0] = array;
  result = exec_params (pg, "SELECT id, subscribe_token FROM channels"
                        " WHERE id = ANY ($1::bigint[])", PGRES_TUPLES_OK,
                        _("checking subscribe tokens"), error, 1, params);
  if (result == NULL)
    return NULL;
  tokens = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, token_free);
  for (int row = 0; row < PQntuples (result); row++)
    {
      gint64 id = value_int64 (result, row, 0);

      g_hash_table_insert (tokens, g_memdup2 (&id, sizeof id),
                           g_strdup (PQgetvalue (result, row, 1)));
    }
  return tokens;
}

/* ---- Admin keys and settings ---- */

char *
tocsin_relay_store_pg_create_admin_key (TocsinRelayStorePg  *pg,
                                        GError             **error)
{
  g_autofree char *key = NULL, *hash = NULL, *created_at = NULL;
  const char *params[2];

  g_return_val_if_fail (pg != NULL, NULL);

  key = tocsin_token_new (error);
  if (key == NULL)
    return NULL;
  hash = tocsin_token_hash (key);
  created_at = int64_text (g_get_real_time () / G_USEC_PER_SEC);
  params[0] = hash;
  params[1] = created_at;
  if (!exec_effect (pg, "INSERT INTO admin_keys (hash, created_at) VALUES ($1, $2)",
                    PGRES_COMMAND_OK, _("storing a key"), error, 2, params))
    return NULL;
  return g_steal_pointer (&key);
}

gboolean
tocsin_relay_store_pg_check_admin_key (TocsinRelayStorePg  *pg,
                                       const char          *key,
                                       GError             **error)
{
  g_autofree char *hash = NULL;
  g_autoptr(PGresult) result = NULL;
  const char *params[1];
  const char *stored = NULL;

  g_return_val_if_fail (pg != NULL, FALSE);

  hash = tocsin_token_hash (key ? key : "");
  params[0] = hash;
  result = exec_params (pg, "SELECT hash FROM admin_keys WHERE hash = $1", PGRES_TUPLES_OK,
                        _("checking a key"), error, 1, params);
  if (result == NULL)
    return FALSE;
  if (PQntuples (result) > 0)
    stored = PQgetvalue (result, 0, 0);
  return tocsin_token_equal (stored ? stored : "", hash) && stored != NULL && key != NULL;
}

gboolean
tocsin_relay_store_pg_set_meta (TocsinRelayStorePg  *pg,
                                const char          *key,
                                const char          *value,
                                GError             **error)
{
  const char *params[] = { key, value };

  g_return_val_if_fail (pg != NULL, FALSE);
  g_return_val_if_fail (key != NULL && value != NULL, FALSE);

  return exec_effect (pg, "INSERT INTO meta (key, value) VALUES ($1, $2)"
                      " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                      PGRES_COMMAND_OK, _("recording a setting"), error, 2, params);
}

gboolean
tocsin_relay_store_pg_ping (TocsinRelayStorePg  *pg,
                            GError             **error)
{
  g_autoptr(PGresult) result = NULL;

  g_return_val_if_fail (pg != NULL, FALSE);

  result = exec_params (pg, "SELECT 1", PGRES_TUPLES_OK, _("checking the connection"), error, 0,
                        NULL);
  return result != NULL;
}

char *
tocsin_relay_store_pg_dup_meta (TocsinRelayStorePg  *pg,
                                const char          *key,
                                GError             **error)
{
  const char *params[] = { key };
  g_autoptr(PGresult) result = NULL;

  g_return_val_if_fail (pg != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);

  result = exec_params (pg, "SELECT value FROM meta WHERE key = $1", PGRES_TUPLES_OK,
                        _("reading a setting"), error, 1, params);
  if (result == NULL || PQntuples (result) == 0)
    return NULL;
  return g_strdup (PQgetvalue (result, 0, 0));
}

gboolean
tocsin_relay_store_pg_set_public_url (TocsinRelayStorePg  *pg,
                                      const char          *public_url,
                                      GError             **error)
{
  return tocsin_relay_store_pg_set_meta (pg, "public_url", public_url, error);
}

char *
tocsin_relay_store_pg_dup_public_url (TocsinRelayStorePg  *pg,
                                      GError             **error)
{
  return tocsin_relay_store_pg_dup_meta (pg, "public_url", error);
}

/* ---- Presence ---- */

/* A FROM item that makes the statement's own transaction commit asynchronously
 * (synchronous_commit off until its end): for presence rows, which say who is connected now and
 * are written again on reconnection. Each subscriber's row used to wait for its own flush to
 * disk, on the writer thread, so 10,000 subscribers connecting were 10,000 flushes and a webhook
 * arriving then waited behind them (the relay-cluster benchmark: none of 10,000 subscribers got
 * the next webhook within 15 s). Statements stay one row each: a transaction around a batch of
 * them held rows that a channel's deletion also takes, and deadlocked with it. */
#define NO_FLUSH "(SELECT set_config ('synchronous_commit', 'off', true)) AS no_flush"

gboolean
tocsin_relay_store_pg_note_subscriber (TocsinRelayStorePg  *pg,
                                       gint64               channel_id,
                                       guint64              conn_id,
                                       const char          *kind,
                                       const char          *peer,
                                       gboolean             connected,
                                       GError             **error)
{
  g_autofree char *channel = int64_text (channel_id);
  g_autofree char *conn = int64_text ((gint64) conn_id);
  g_autofree char *now = int64_text (g_get_real_time () / 1000);

  g_return_val_if_fail (pg != NULL, FALSE);

  if (connected)
    {
      const char *params[] = { pg->node, conn, channel, kind ? kind : "ws", peer ? peer : "",
                               now };

      /* The node's heartbeat and its row, in one statement, committed without waiting for
       * the disk (see NO_FLUSH). */
      return exec_effect (pg, "WITH n AS (" HEARTBEAT_SQL_AT ("$1", "$6") ")"
                          " INSERT INTO presence (node, conn_id, channel_id, kind, peer,"
                          " connected_at) SELECT $1, $2::bigint, $3::bigint, $4, $5, $6::bigint"
                          " FROM " NO_FLUSH
                          " ON CONFLICT (node, conn_id, channel_id) DO UPDATE SET"
                          " kind = EXCLUDED.kind, peer = EXCLUDED.peer,"
                          " connected_at = EXCLUDED.connected_at",
                          PGRES_COMMAND_OK, _("noting a subscriber"), error, 6, params);
    }
  else
    {
      const char *params[] = { pg->node, conn, channel };

      return exec_effect (pg, "DELETE FROM presence USING " NO_FLUSH
                          " WHERE node = $1 AND conn_id = $2 AND channel_id = $3",
                          PGRES_COMMAND_OK, _("noting a subscriber"), error, 3, params);
    }
}

JsonArray *
tocsin_relay_store_pg_list_presence (TocsinRelayStorePg  *pg,
                                     gint64               channel_id,
                                     gint64               now_ms,
                                     GError             **error)
{
  g_autofree char *channel = int64_text (channel_id);
  g_autofree char *live = int64_text (now_ms - TOCSIN_RELAY_STORE_PG_NODE_TIMEOUT_SECONDS * 1000);
  const char *params[] = { channel, live };
  g_autoptr(PGresult) result = NULL;
  JsonArray *array;

  g_return_val_if_fail (pg != NULL, NULL);

  /* A node that stopped being seen (killed, its machine gone) could not say goodbye: its rows
   * are skipped, as SQLite skips a dead pid's, and pruning drops them. */
  result = exec_params (pg, "SELECT p.kind, p.peer, p.connected_at FROM presence p"
                        " WHERE p.channel_id = $1 AND " NODE_IS_LIVE ("p.node", "$2::bigint")
                        " ORDER BY p.connected_at, p.conn_id", PGRES_TUPLES_OK,
                        _("listing subscribers"), error, 2, params);
  if (result == NULL)
    return NULL;
  array = json_array_new ();
  for (int row = 0; row < PQntuples (result); row++)
    {
      JsonObject *object = json_object_new ();
      g_autofree char *time = tocsin_format_time_ms (value_int64 (result, row, 2));

      json_object_set_string_member (object, "kind", PQgetvalue (result, row, 0));
      json_object_set_string_member (object, "peer", PQgetvalue (result, row, 1));
      json_object_set_string_member (object, "connectedAt", time);
      json_array_add_object_element (array, object);
    }
  return array;
}

/* ---- The outgoing-delivery queue ---- */

static const char *const delivery_states[] = { "pending", "delivered", "failed", "held" };

static TocsinRelayDeliveryState
delivery_state_from_string (const char *text)
{
  for (guint i = 0; i < G_N_ELEMENTS (delivery_states); i++)
    if (g_strcmp0 (text, delivery_states[i]) == 0)
      return i;
  return TOCSIN_RELAY_DELIVERY_PENDING;
}

#define DELIVERY_COLUMNS \
  "id, channel_id, message_id, forward, forward_index, event, vars, webhook_id, policy, state, " \
  "attempts, next_at_ms, created_at_ms, message"

static TocsinRelayDelivery *
delivery_from_row (const PGresult *result,
                   int             row,
                   gboolean        with_message)
{
  TocsinRelayDelivery *delivery = g_new0 (TocsinRelayDelivery, 1);
  const char *vars = PQgetvalue (result, row, 6);
  g_autoptr(JsonObject) object = tocsin_json_parse_object (vars, strlen (vars), 4096, 4, NULL);

  delivery->id = value_int64 (result, row, 0);
  delivery->channel_id = value_int64 (result, row, 1);
  delivery->message_id = value_int64 (result, row, 2);
  delivery->forward = g_strdup (PQgetvalue (result, row, 3));
  delivery->forward_index = (guint) value_int64 (result, row, 4);
  delivery->event = g_strdup (PQgetvalue (result, row, 5));
  delivery->user = g_strdup (object && json_object_has_member (object, "user")
                               ? json_object_get_string_member_with_default (object, "user", "")
                               : "");
  delivery->webhook_id = g_strdup (PQgetvalue (result, row, 7));
  delivery->retry = !g_str_equal (PQgetvalue (result, row, 8), "none");
  delivery->state = delivery_state_from_string (PQgetvalue (result, row, 9));
  delivery->attempts = (guint) value_int64 (result, row, 10);
  delivery->next_at_ms = value_int64 (result, row, 11);   /* NULL reads as "": 0 */
  delivery->created_at_ms = value_int64 (result, row, 12);
  if (with_message && !PQgetisnull (result, row, 13))
    {
      size_t length = 0;
      unsigned char *data = PQunescapeBytea ((const unsigned char *) PQgetvalue (result, row, 13),
                                             &length);

      if (data != NULL)
        {
          delivery->message = g_bytes_new (data, length);
          PQfreemem (data);
        }
    }
  return delivery;
}

gint
tocsin_relay_store_pg_enqueue (TocsinRelayStorePg  *pg,
                               gint64               channel_id,
                               gint64               message_id,
                               GBytes              *message,
                               const char          *event,
                               const char          *user,
                               GPtrArray           *forwards,
                               GArray              *indices,
                               GError             **error)
{
  gconstpointer data = NULL;
  gsize length = 0;

  g_return_val_if_fail (pg != NULL, -1);
  g_return_val_if_fail (event != NULL && forwards != NULL && indices != NULL, -1);

  if (message != NULL)
    data = g_bytes_get_data (message, &length);
  if (!exec_command (pg, "BEGIN", _("starting a transaction"), error))
    return -1;
  if (!insert_deliveries (pg, channel_id, message_id, data, length, event, user, forwards,
                          indices, g_get_real_time () / 1000, error)
      || !exec_command (pg, "COMMIT", _("queueing a delivery"), error))
    {
      rollback (pg);
      return -1;
    }
  return (gint) indices->len;
}

GPtrArray *
tocsin_relay_store_pg_due_deliveries (TocsinRelayStorePg  *pg,
                                      gint64               now_ms,
                                      guint                limit,
                                      GError             **error)
{
  g_autofree char *now = int64_text (now_ms);
  g_autofree char *limit_text = g_strdup_printf ("%u", MIN (limit, G_MAXINT));
  const char *params[] = { now, limit_text };
  g_autoptr(PGresult) result = NULL;
  GPtrArray *due;

  g_return_val_if_fail (pg != NULL, NULL);

  result = exec_params (pg, "SELECT " DELIVERY_COLUMNS " FROM deliveries"
                        " WHERE next_at_ms <= $1 AND state IN ('pending', 'held')"
                        " ORDER BY next_at_ms, id LIMIT $2", PGRES_TUPLES_OK,
                        _("reading due deliveries"), error, 2, params);
  if (result == NULL)
    return NULL;
  due = g_ptr_array_new_with_free_func ((GDestroyNotify) tocsin_relay_delivery_free);
  for (int row = 0; row < PQntuples (result); row++)
    g_ptr_array_add (due, delivery_from_row (result, row, TRUE));
  return due;
}

gint64
tocsin_relay_store_pg_next_delivery_at (TocsinRelayStorePg  *pg,
                                        GError             **error)
{
  g_autoptr(PGresult) result = NULL;

  g_return_val_if_fail (pg != NULL, 0);

  result = exec_params (pg, "SELECT min(next_at_ms) FROM deliveries"
                        " WHERE next_at_ms IS NOT NULL AND state IN ('pending', 'held')",
                        PGRES_TUPLES_OK, _("reading due deliveries"), error, 0, NULL);
  if (result == NULL || PQntuples (result) == 0 || PQgetisnull (result, 0, 0))
    return 0;
  return MAX (value_int64 (result, 0, 0), 1);
}

static gboolean
no_delivery (gint64   id,
             GError **error)
{
  g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND,
               _("There is no delivery %" PRId64), id);
  return FALSE;
}

/* Durable before the request leaves: after a crash, this attempt is known to have started, and
 * by which node. Only a delivery that is waiting can be started: of two nodes, the one whose
 * UPDATE comes second finds it in flight (READ COMMITTED re-checks the row after the lock). */
static gboolean
start_attempt (TocsinRelayStorePg  *pg,
               gint64               delivery_id,
               guint               *attempt,
               GError             **error)
{
  g_autofree char *id = int64_text (delivery_id);
  const char *params[] = { id, pg->node };
  g_autoptr(PGresult) result = NULL;

  /* No heartbeat here: the nodes row would be locked until the batch commits. */
  result = exec_params (pg, "UPDATE deliveries SET attempts = attempts + 1, next_at_ms = NULL,"
                        " state = 'pending', taken_by = $2 WHERE id = $1"
                        " AND next_at_ms IS NOT NULL AND state IN ('pending', 'held')"
                        " RETURNING attempts", PGRES_TUPLES_OK, _("updating a delivery"), error,
                        2, params);
  if (result == NULL)
    return FALSE;
  if (PQntuples (result) == 0)
    return no_delivery (delivery_id, error);
  *attempt = (guint) value_int64 (result, 0, 0);
  return TRUE;
}

static gboolean
set_state (TocsinRelayStorePg        *pg,
           gint64                     delivery_id,
           TocsinRelayDeliveryState   state,
           gint64                     next_at_ms,
           GError                   **error)
{
  g_autofree char *id = int64_text (delivery_id);
  g_autofree char *next = next_at_ms > 0 ? int64_text (next_at_ms) : NULL;
  const char *params[] = { id, tocsin_relay_delivery_state_to_string (state), next };

  return exec_effect (pg, "UPDATE deliveries SET state = $2, next_at_ms = $3::bigint"
                      " WHERE id = $1", PGRES_COMMAND_OK, _("updating a delivery"), error, 3,
                      params);
}

/* The attempt's record and the delivery's new state, inside the caller's transaction. */
static gboolean
finish_attempt (TocsinRelayStorePg              *pg,
                gint64                           delivery_id,
                const TocsinRelayAttemptRecord  *record,
                TocsinRelayDeliveryState         state,
                gint64                           next_at_ms,
                GError                         **error)
{
  g_autofree char *id = int64_text (delivery_id);
  g_autofree char *attempt = g_strdup_printf ("%u", record->attempt);
  g_autofree char *at = int64_text (record->at_ms);
  g_autofree char *status = g_strdup_printf ("%u", record->status);
  g_autofree char *duration = int64_text (record->duration_ms);
  g_autofree char *retry_at = record->next_retry_at_ms > 0
                              ? int64_text (record->next_retry_at_ms) : NULL;
  const char *params[] = { id, attempt, at, record->url ? record->url : "", status,
                           record->error, duration,
                           record->answer_start ? record->answer_start : "",
                           record->outcome, retry_at };

  /* A finished delivery keeps its copy of the message until it is pruned: "retry" needs it. */
  return exec_effect (pg, "INSERT INTO delivery_attempts (delivery_id, channel_id, attempt, at_ms,"
                      " url, status, error, duration_ms, answer_start, outcome,"
                      " next_retry_at_ms) SELECT id, channel_id, $2::integer, $3::bigint, $4,"
                      " $5::integer, $6, $7::bigint, $8, $9, $10::bigint FROM deliveries"
                      " WHERE id = $1", PGRES_COMMAND_OK, _("logging an attempt"), error,
                      G_N_ELEMENTS (params), params)
         && set_state (pg, delivery_id, state, next_at_ms, error);
}

gboolean
tocsin_relay_store_pg_start_attempt (TocsinRelayStorePg  *pg,
                                     gint64               delivery_id,
                                     guint               *attempt,
                                     GError             **error)
{
  g_return_val_if_fail (pg != NULL && attempt != NULL, FALSE);

  return start_attempt (pg, delivery_id, attempt, error);
}

gboolean
tocsin_relay_store_pg_set_delivery_state (TocsinRelayStorePg        *pg,
                                          gint64                     delivery_id,
                                          TocsinRelayDeliveryState   state,
                                          gint64                     next_at_ms,
                                          GError                   **error)
{
  g_return_val_if_fail (pg != NULL, FALSE);

  return set_state (pg, delivery_id, state, next_at_ms, error);
}

gboolean
tocsin_relay_store_pg_finish_attempt (TocsinRelayStorePg              *pg,
                                      gint64                          delivery_id,
                                      const TocsinRelayAttemptRecord *record,
                                      TocsinRelayDeliveryState        state,
                                      gint64                          next_at_ms,
                                      GError                        **error)
{
  g_return_val_if_fail (pg != NULL && record != NULL, FALSE);

  if (!exec_command (pg, "BEGIN", _("starting a transaction"), error))
    return FALSE;
  if (!finish_attempt (pg, delivery_id, record, state, next_at_ms, error)
      || !exec_command (pg, "COMMIT", _("updating a delivery"), error))
    {
      rollback (pg);
      return FALSE;
    }
  return TRUE;
}

gboolean
tocsin_relay_store_pg_write_deliveries (TocsinRelayStorePg  *pg,
                                        GArray              *ops,
                                        GError             **error)
{
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autofree char *array = NULL;
  const char *params[1];

  g_return_val_if_fail (pg != NULL && ops != NULL, FALSE);

  for (guint i = 0; i < ops->len; i++)
    g_array_append_val (ids, g_array_index (ops, TocsinRelayDeliveryOp, i).delivery_id);
  g_array_sort (ids, compare_int64);
  array = int64_array ((const gint64 *) (gpointer) ids->data, ids->len);
  params[0] = array;
  if (!exec_command (pg, "BEGIN", _("starting a transaction"), error))
    return FALSE;
  /* The batch's rows locked first, in id order, as a group commit locks its channels: two
   * batches (two nodes) never wait on each other in a cycle. */
  if (!exec_effect (pg, "SELECT id FROM deliveries WHERE id = ANY ($1::bigint[])"
                    " ORDER BY id FOR UPDATE", PGRES_TUPLES_OK, _("updating a delivery"), error,
                    1, params))
    goto fail;
  for (guint i = 0; i < ops->len; i++)
    {
      TocsinRelayDeliveryOp *op = &g_array_index (ops, TocsinRelayDeliveryOp, i);
      TocsinRelayAttemptRecord record = { 0 };
      g_autoptr(GError) local_error = NULL;

      switch (op->kind)
        {
        case TOCSIN_RELAY_DELIVERY_OP_STATE:
          if (!set_state (pg, op->delivery_id, op->state, op->next_at_ms, error))
            goto fail;
          continue;
        case TOCSIN_RELAY_DELIVERY_OP_START:
        case TOCSIN_RELAY_DELIVERY_OP_UNSENDABLE:
          op->attempt = 0;
          if (!start_attempt (pg, op->delivery_id, &op->attempt, &local_error))
            {
              op->attempt = 0;
              /* Not waiting (taken by another node, finished, gone): not ours. */
              if (g_error_matches (local_error, TOCSIN_RELAY_STORE_ERROR,
                                   TOCSIN_RELAY_STORE_ERROR_NOT_FOUND))
                continue;
              g_propagate_error (error, g_steal_pointer (&local_error));
              goto fail;
            }
          if (op->kind == TOCSIN_RELAY_DELIVERY_OP_START)
            continue;
          op->state = TOCSIN_RELAY_DELIVERY_FAILED;
          op->next_at_ms = 0;
          break;
        case TOCSIN_RELAY_DELIVERY_OP_FINISH:
        default:
          break;
        }
      record.at_ms = op->at_ms;
      record.duration_ms = op->duration_ms;
      record.attempt = op->attempt;
      record.url = op->url;
      record.status = op->status;
      record.error = op->error;
      record.answer_start = op->answer_start;
      record.outcome = op->outcome ? op->outcome : "error";
      record.next_retry_at_ms = op->next_retry_at_ms;
      if (!finish_attempt (pg, op->delivery_id, &record, op->state, op->next_at_ms, error))
        goto fail;
    }
  if (exec_command (pg, "COMMIT", _("updating a delivery"), error))
    return TRUE;

fail:
  rollback (pg);
  return FALSE;
}

gint
tocsin_relay_store_pg_recover_deliveries (TocsinRelayStorePg  *pg,
                                          gint64               now_ms,
                                          GError             **error)
{
  g_autofree char *now = int64_text (now_ms);
  g_autofree char *live = int64_text (now_ms - TOCSIN_RELAY_STORE_PG_NODE_TIMEOUT_SECONDS * 1000);
  const char *params[] = { now, pg->node, live };
  g_autoptr(PGresult) result = NULL;

  g_return_val_if_fail (pg != NULL, -1);

  /* This node's own (a restart under the same name), nobody's, or a node's that is gone; never
   * an attempt a live node is making. */
  result = exec_params (pg, RECOVER_SQL ("(taken_by IS NULL OR taken_by = $2 OR NOT "
                                         NODE_IS_LIVE ("d.taken_by", "$3::bigint") ")"),
                        PGRES_COMMAND_OK, _("recovering deliveries"), error, 3, params);
  if (result == NULL)
    return -1;
  return atoi (PQcmdTuples (result));
}

TocsinRelayDelivery *
tocsin_relay_store_pg_get_delivery (TocsinRelayStorePg  *pg,
                                    gint64               delivery_id,
                                    GError             **error)
{
  g_autofree char *id = int64_text (delivery_id);
  const char *params[] = { id };
  g_autoptr(PGresult) result = NULL;

  g_return_val_if_fail (pg != NULL, NULL);

  result = exec_params (pg, "SELECT " DELIVERY_COLUMNS " FROM deliveries WHERE id = $1",
                        PGRES_TUPLES_OK, _("reading a delivery"), error, 1, params);
  if (result == NULL)
    return NULL;
  if (PQntuples (result) == 0)
    {
      no_delivery (delivery_id, error);
      return NULL;
    }
  return delivery_from_row (result, 0, TRUE);
}

static void
set_time_or_null (JsonObject *object,
                  const char *member,
                  gint64      ms)
{
  if (ms > 0)
    {
      g_autofree char *text = tocsin_format_time_ms (ms);

      json_object_set_string_member (object, member, text);
    }
  else
    json_object_set_null_member (object, member);
}

JsonObject *
tocsin_relay_store_pg_list_deliveries (TocsinRelayStorePg  *pg,
                                       gint64               channel_id,
                                       guint                limit,
                                       GError             **error)
{
  g_autoptr(JsonObject) reply = json_object_new ();
  JsonArray *deliveries = json_array_new ();
  JsonArray *attempts = json_array_new ();
  g_autofree char *channel = int64_text (channel_id);
  g_autofree char *limit_text = g_strdup_printf ("%u", MIN (limit, G_MAXINT));
  g_autofree char *oldest_text = NULL;
  g_autoptr(PGresult) result = NULL;
  gint64 oldest = G_MAXINT64;

  g_return_val_if_fail (pg != NULL, NULL);

  json_object_set_array_member (reply, "deliveries", deliveries);
  json_object_set_array_member (reply, "attempts", attempts);
  {
    const char *params[] = { channel, limit_text };

    result = exec_params (pg, "SELECT " DELIVERY_COLUMNS " FROM deliveries"
                          " WHERE channel_id = $1 ORDER BY id DESC LIMIT $2", PGRES_TUPLES_OK,
                          _("listing deliveries"), error, 2, params);
    if (result == NULL)
      return NULL;
    for (int row = 0; row < PQntuples (result); row++)
      {
        g_autoptr(TocsinRelayDelivery) delivery = delivery_from_row (result, row, FALSE);

        oldest = MIN (oldest, delivery->id);
        json_array_add_object_element (deliveries, tocsin_relay_delivery_to_json (delivery));
      }
    g_clear_pointer (&result, PQclear);
  }
  oldest_text = int64_text (oldest);
  {
    const char *params[] = { channel, oldest_text };

    result = exec_params (pg, "SELECT a.id, a.delivery_id, d.forward, d.event, a.attempt,"
                          " a.at_ms, a.url, a.status, a.error, a.duration_ms, a.answer_start,"
                          " a.outcome, a.next_retry_at_ms FROM delivery_attempts a"
                          " JOIN deliveries d ON d.id = a.delivery_id"
                          " WHERE a.channel_id = $1 AND a.delivery_id >= $2"
                          " ORDER BY a.at_ms DESC, a.id DESC", PGRES_TUPLES_OK,
                          _("listing attempts"), error, 2, params);
    if (result == NULL)
      return NULL;
    for (int row = 0; row < PQntuples (result); row++)
      {
        JsonObject *attempt = json_object_new ();

        json_object_set_int_member (attempt, "id", value_int64 (result, row, 0));
        json_object_set_int_member (attempt, "delivery_id", value_int64 (result, row, 1));
        json_object_set_string_member (attempt, "forward", PQgetvalue (result, row, 2));
        json_object_set_string_member (attempt, "event", PQgetvalue (result, row, 3));
        json_object_set_int_member (attempt, "attempt", value_int64 (result, row, 4));
        set_time_or_null (attempt, "at", value_int64 (result, row, 5));
        json_object_set_string_member (attempt, "url", PQgetvalue (result, row, 6));
        json_object_set_int_member (attempt, "status", value_int64 (result, row, 7));
        if (PQgetisnull (result, row, 8))
          json_object_set_null_member (attempt, "error");
        else
          json_object_set_string_member (attempt, "error", PQgetvalue (result, row, 8));
        json_object_set_int_member (attempt, "duration_ms", value_int64 (result, row, 9));
        json_object_set_string_member (attempt, "answer_start", PQgetvalue (result, row, 10));
        json_object_set_string_member (attempt, "outcome", PQgetvalue (result, row, 11));
        set_time_or_null (attempt, "next_retry_at", value_int64 (result, row, 12));
        json_array_add_object_element (attempts, attempt);
      }
  }
  return g_steal_pointer (&reply);
}

/* ---- Moving a SQLite relay's data in (tocsin-relay migrate) ---- */

static char *
import_name (TocsinRelayStorePgTable table)
{
  return g_strdup_printf ("tocsin_import_%s", import_tables[table].name);
}

gboolean
tocsin_relay_store_pg_import_begin (TocsinRelayStorePg  *pg,
                                    GError             **error)
{
  g_return_val_if_fail (pg != NULL, FALSE);
  g_return_val_if_fail (!pg->importing, FALSE);

  if (!exec_command (pg, "BEGIN", _("starting a transaction"), error))
    return FALSE;
  /* Other nodes may read, not write, until the copy is committed or rolled back. */
  if (!exec_command (pg, "LOCK TABLE channels, admin_keys, meta, messages, dedup, deliveries,"
                     " delivery_attempts IN EXCLUSIVE MODE", _("locking the tables"), error))
    goto fail;
  /* Prepared here: pipeline mode (import_row) cannot. */
  for (guint table = 0; table < TOCSIN_RELAY_STORE_PG_N_TABLES; table++)
    {
      const ImportTable *spec = &import_tables[table];
      g_autoptr(GString) sql = g_string_new (NULL);
      g_autoptr(PGresult) result = NULL;
      g_autofree char *name = NULL;

      if ((pg->imports_prepared & (1u << table)) != 0)
        continue;
      name = import_name (table);
      g_string_printf (sql, "INSERT INTO %s (%s) VALUES (", spec->name, spec->columns);
      for (guint i = 0; i < spec->n_columns; i++)
        g_string_append_printf (sql, "%s$%u", i ? ", " : "", i + 1);
      g_string_append_c (sql, ')');
      result = PQprepare (pg->conn, name, sql->str, (int) spec->n_columns, NULL);
      if (PQresultStatus (result) != PGRES_COMMAND_OK)
        {
          set_pg_error (pg, result, _("preparing to copy rows"), error);
          goto fail;
        }
      pg->imports_prepared |= 1u << table;
    }
  return TRUE;

fail:
  rollback (pg);
  return FALSE;
}

/* Reads the results of the rows sent since the last call: the first error, if any, is the one
 * to report (the rows after it were skipped, the transaction being aborted). */
static gboolean
import_flush (TocsinRelayStorePg  *pg,
              GError             **error)
{
  g_autoptr(GError) first = NULL;
  guint nulls = 0;

  if (!pg->importing || pg->imports_pending == 0)
    return TRUE;
  if (!PQpipelineSync (pg->conn))
    return set_pg_error (pg, NULL, _("copying rows"), error);
  for (;;)
    {
      g_autoptr(PGresult) result = PQgetResult (pg->conn);
      ExecStatusType status;

      if (result == NULL)
        {
          /* One NULL ends each row's results; more than that is a connection gone. */
          if (++nulls > pg->imports_pending + 1 || PQstatus (pg->conn) == CONNECTION_BAD)
            {
              pg->imports_pending = 0;
              pg->importing = FALSE;
              if (first != NULL)
                break;
              return set_pg_error (pg, NULL, _("copying rows"), error);
            }
          continue;
        }
      status = PQresultStatus (result);
      if (status == PGRES_PIPELINE_SYNC)
        break;
      if (status != PGRES_COMMAND_OK && status != PGRES_PIPELINE_ABORTED && first == NULL)
        set_pg_error (pg, result, _("copying rows"), &first);
    }
  pg->imports_pending = 0;
  if (first != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&first));
      return FALSE;
    }
  return TRUE;
}

/* Back to one statement at a time (count, setval, COMMIT): reads what is pending first. */
static gboolean
import_end_pipeline (TocsinRelayStorePg  *pg,
                     GError             **error)
{
  gboolean ok;

  if (!pg->importing)
    return TRUE;
  ok = import_flush (pg, error);
  if (pg->importing && !PQexitPipelineMode (pg->conn) && ok)
    ok = set_pg_error (pg, NULL, _("copying rows"), error);
  pg->importing = FALSE;
  return ok;
}

gint64
tocsin_relay_store_pg_count_rows (TocsinRelayStorePg       *pg,
                                  TocsinRelayStorePgTable   table,
                                  GError                  **error)
{
  g_autofree char *sql = NULL;
  g_autoptr(PGresult) result = NULL;

  g_return_val_if_fail (pg != NULL, -1);
  g_return_val_if_fail (table < TOCSIN_RELAY_STORE_PG_N_TABLES, -1);

  if (!import_end_pipeline (pg, error))
    return -1;
  sql = g_strdup_printf ("SELECT count(*) FROM %s", import_tables[table].name);
  result = exec_params (pg, sql, PGRES_TUPLES_OK, _("counting rows"), error, 0, NULL);
  if (result == NULL)
    return -1;
  return value_int64 (result, 0, 0);
}

/* Rows sent before their results are read: one round trip per this many rows instead of one
 * each. Their results (about 30 bytes each) fit the socket's buffer, so neither side waits on
 * the other with a full buffer. */
#define IMPORT_PIPELINE_DEPTH 256

gboolean
tocsin_relay_store_pg_import_row (TocsinRelayStorePg       *pg,
                                  TocsinRelayStorePgTable   table,
                                  const char * const       *values,
                                  const int                *lengths,
                                  GError                  **error)
{
  const ImportTable *spec;
  g_autofree char *name = NULL;
  int formats[32] = { 0 };

  g_return_val_if_fail (pg != NULL, FALSE);
  g_return_val_if_fail (table < TOCSIN_RELAY_STORE_PG_N_TABLES, FALSE);
  g_return_val_if_fail ((pg->imports_prepared & (1u << table)) != 0, FALSE);

  spec = &import_tables[table];
  g_assert (spec->n_columns <= G_N_ELEMENTS (formats));
  name = import_name (table);
  if (spec->binary >= 0)
    formats[spec->binary] = 1;
  if (!pg->importing)
    {
      if (!PQenterPipelineMode (pg->conn))
        return set_pg_error (pg, NULL, _("copying rows"), error);
      pg->importing = TRUE;
    }
  /* libpq copies the values into its buffer here: the caller's may change after. */
  if (!PQsendQueryPrepared (pg->conn, name, (int) spec->n_columns, values, lengths, formats, 0))
    {
      g_autofree char *what = g_strdup_printf (_("copying a row of %s"), spec->name);

      import_end_pipeline (pg, NULL);
      return set_pg_error (pg, NULL, what, error);
    }
  pg->imports_pending++;
  if (pg->imports_pending >= IMPORT_PIPELINE_DEPTH)
    return import_flush (pg, error);
  return TRUE;
}

gboolean
tocsin_relay_store_pg_import_set_sequence (TocsinRelayStorePg       *pg,
                                           TocsinRelayStorePgTable   table,
                                           gint64                    last_used,
                                           GError                  **error)
{
  g_autofree char *sql = NULL;
  g_autofree char *last = int64_text (last_used);
  const char *params[] = { last };

  g_return_val_if_fail (pg != NULL, FALSE);
  g_return_val_if_fail (table == TOCSIN_RELAY_STORE_PG_TABLE_CHANNELS
                        || table == TOCSIN_RELAY_STORE_PG_TABLE_DELIVERIES
                        || table == TOCSIN_RELAY_STORE_PG_TABLE_DELIVERY_ATTEMPTS, FALSE);

  if (!import_end_pipeline (pg, error))
    return FALSE;
  /* Nothing to follow: the sequence stays as new (its first id is 1). */
  sql = g_strdup_printf ("SELECT setval (pg_get_serial_sequence ('%s', 'id'), v)"
                         " FROM (SELECT GREATEST ($1::bigint, COALESCE (MAX (id), 0)) AS v"
                         " FROM %s) AS s WHERE v > 0",
                         import_tables[table].name, import_tables[table].name);
  return exec_effect (pg, sql, PGRES_TUPLES_OK, _("setting the next id"), error, 1, params);
}

gboolean
tocsin_relay_store_pg_import_commit (TocsinRelayStorePg  *pg,
                                     GError             **error)
{
  g_return_val_if_fail (pg != NULL, FALSE);

  if (!import_end_pipeline (pg, error))
    {
      rollback (pg);
      return FALSE;
    }
  if (!exec_command (pg, "COMMIT", _("committing the copy"), error))
    {
      rollback (pg);
      return FALSE;
    }
  return TRUE;
}

void
tocsin_relay_store_pg_import_rollback (TocsinRelayStorePg *pg)
{
  g_return_if_fail (pg != NULL);
  import_end_pipeline (pg, NULL);
  rollback (pg);
}

/* ---- Serving nodes (tocsin-relay-store.c's writer thread, tocsin-relay-cluster.c) ---- */

/* pg_try_advisory_lock key of retention: "prune" in ASCII. */
#define PRUNE_LOCK_KEY "112114117110101"

gboolean
tocsin_relay_store_pg_prune_exclusive (TocsinRelayStorePg  *pg,
                                       gint64               retention,
                                       gint64               now_ms,
                                       gint64               interval_ms,
                                       gboolean            *ran,
                                       GError             **error)
{
  g_autoptr(PGresult) result = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autofree char *last = NULL, *now = NULL;
  gboolean ok = TRUE;

  g_return_val_if_fail (pg != NULL, FALSE);

  if (ran)
    *ran = FALSE;
  result = exec_params (pg, "SELECT pg_try_advisory_lock (" PRUNE_LOCK_KEY ")",
                        PGRES_TUPLES_OK, _("pruning"), error, 0, NULL);
  if (result == NULL)
    return FALSE;
  /* Another node is pruning right now. */
  if (!g_str_equal (PQgetvalue (result, 0, 0), "t"))
    return TRUE;

  /* Whoever pruned last, recently enough: not again yet. */
  last = tocsin_relay_store_pg_dup_meta (pg, "pruned_at_ms", &local_error);
  if (local_error == NULL
      && (last == NULL || now_ms - g_ascii_strtoll (last, NULL, 10) >= interval_ms / 2))
    {
      now = int64_text (now_ms);
      ok = tocsin_relay_store_pg_prune (pg, retention, now_ms, error)
           && tocsin_relay_store_pg_set_meta (pg, "pruned_at_ms", now, error);
      if (ok && ran)
        *ran = TRUE;
    }
  else if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      ok = FALSE;
    }
  /* A session lock: released here, or with the session if the connection is gone. */
  PQclear (PQexec (pg->conn, "SELECT pg_advisory_unlock (" PRUNE_LOCK_KEY ")"));
  return ok;
}

gboolean
tocsin_relay_store_pg_announce_ack (TocsinRelayStorePg  *pg,
                                    gint64               channel_id,
                                    gint64               message_id,
                                    const char          *by,
                                    GError             **error)
{
  g_autofree char *payload = NULL;
  const char *params[1];

  g_return_val_if_fail (pg != NULL && by != NULL, FALSE);

  payload = g_strdup_printf ("%" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %s", channel_id,
                             message_id, by);
  params[0] = payload;
  return exec_effect (pg, "SELECT pg_notify ('tocsin_acks', $1)", PGRES_TUPLES_OK,
                      _("telling other nodes of an acknowledgement"), error, 1, params);
}

GHashTable *
tocsin_relay_store_pg_last_ids (TocsinRelayStorePg  *pg,
                                GError             **error)
{
  g_autoptr(GHashTable) ids = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                                     g_free);
  g_autoptr(PGresult) result = NULL;

  g_return_val_if_fail (pg != NULL, NULL);

  result = exec_params (pg, "SELECT id, last_id FROM channels", PGRES_TUPLES_OK,
                        _("reading channels"), error, 0, NULL);
  if (result == NULL)
    return NULL;
  for (int row = 0; row < PQntuples (result); row++)
    {
      gint64 id = value_int64 (result, row, 0), last_id = value_int64 (result, row, 1);

      g_hash_table_insert (ids, g_memdup2 (&id, sizeof id), g_memdup2 (&last_id, sizeof last_id));
    }
  return g_steal_pointer (&ids);
}

#endif /* HAVE_LIBPQ */
