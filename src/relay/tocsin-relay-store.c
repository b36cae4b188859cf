/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-store.c: channels, retained messages, dedup keys, admin keys and presence in one
 * SQLite database (WAL) under the data dir.
 *
 * Two connections: the main one (reads, channel management; guarded by a mutex so the CLI, the
 * server's main thread and the tests can share the code) and the writer thread's, which takes
 * every queued message commit and presence change and writes them in one transaction (group
 * commit). A webhook is answered only after its transaction has committed.
 *
 * Durability: journal_mode=WAL with synchronous=FULL. With WAL, synchronous=NORMAL already
 * survives a kill -9 of the relay (the WAL frames are in the OS's page cache when COMMIT
 * returns), which is what the relay promises; FULL also fsyncs the WAL at each commit so that an
 * acknowledged message survives a power cut too. Group commit pays that fsync once per batch.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <inttypes.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "tocsin-json.h"
#include "tocsin-request.h"
#include "tocsin-token.h"
#include "tocsin-relay-actions.h"
#include "tocsin-relay-channel-cache.h"
#include "tocsin-relay-store.h"
#include "tocsin-relay-store-pg.h"

#define DB_NAME "relay.db"
#define BUSY_TIMEOUT_MS 10000
#define PRUNE_INTERVAL_US (60 * G_USEC_PER_SEC)
#define MAX_BATCH 512
/* PostgreSQL: each node says it is alive this often (TOCSIN_RELAY_STORE_PG_NODE_TIMEOUT_SECONDS
 * is four times longer). */
#define HEARTBEAT_INTERVAL_US (30 * G_USEC_PER_SEC)

/* Compared against when a token is unknown, so that an unknown token costs the same. */
static const char dummy_token[] = "________________________________";

typedef enum
{
  JOB_COMMIT,
  JOB_PRESENCE,
  JOB_ENQUEUE,     /* deliveries of an event other than a message (acknowledge) */
  JOB_DELIVERIES,  /* the sender's writes: attempts started, states, attempts' records */
  JOB_CALL,        /* tocsin_relay_store_call_async(): a synchronous call, between batches */
  JOB_STOP,
} JobKind;

typedef struct
{
  JobKind        kind;
  gint64         channel_id;

  /* JOB_COMMIT */
  GTask         *task;
  TocsinMessage *message;
  char          *key_hash;
  char          *content_hash;
  gint64         retention;
  /* JOB_COMMIT, JOB_ENQUEUE: deliveries to queue (issue 15) */
  GPtrArray     *forwards;      /* the channel's TocsinRequest list */
  GArray        *indices;       /* guint */
  char          *event;
  char          *user;
  gint64         message_id;    /* JOB_ENQUEUE */
  GBytes        *message_data;  /* JOB_ENQUEUE */
  GArray        *delivery_ops;  /* JOB_DELIVERIES: TocsinRelayDeliveryOp */

  /* JOB_PRESENCE */
  guint64        conn_id;
  char          *conn_kind;
  char          *peer;
  gboolean       connected;
  gint64         time_ms;

  /* JOB_CALL (and READ_CALL) */
  TocsinRelayStoreCallFunc call_func;
  gpointer                 call_data;
} Job;

/* The reader thread's jobs. */
typedef enum
{
  READ_REPLAY,
  READ_TOKENS,
  READ_CALL,
  READ_STOP,
} ReadKind;

typedef struct
{
  ReadKind  kind;
  GTask    *task;
  gint64    channel_id;
  gint64    after_id;
  guint     limit;
  GArray   *ids;         /* READ_TOKENS */
  TocsinRelayStoreCallFunc call_func;  /* READ_CALL */
  gpointer                 call_data;
} ReadJob;

struct _TocsinRelayStore
{
  char         *data_dir;
  char         *path;

  GMutex        lock;        /* guards db and channels */
  sqlite3      *db;
  GHashTable   *stmts;       /* db's kept statements (see prepare_cached) */
  TocsinRelayChannelCache *channels; /* compiled channels by (id, version) */
  GHashTable   *by_trigger;  /* trigger token hash → gint64 id (see find_by_token) */
  GHashTable   *by_subscribe;/* subscribe token hash → gint64 id */
  GHashTable   *by_email;    /* email token hash → gint64 id */

  GThread      *writer;
  GAsyncQueue  *jobs;

  GThread      *reader;      /* started on first use; its own connection, only reads */
  GAsyncQueue  *reads;
  GMutex        reader_lock; /* guards starting the reader: not `lock`, which the reader's
                              * calls hold while they read, so the main loop never waits on it */
  sqlite3      *wdb;         /* the writer thread's alone */
  GHashTable   *wstmts;      /* wdb's kept statements */
  gint          retention;   /* seconds; atomic, the writer thread reads it */
  gint          delivery_writes_main;    /* atomic; for tests */
  gint          delivery_writes_writer;  /* atomic; for tests */

  /* PostgreSQL (issue 16): db and wdb are NULL, and every public function runs on a handle
   * from pg_enter(). */
  char               *conninfo;  /* NULL: SQLite */
  TocsinRelayStorePg *pg;        /* the shared handle, under `lock` */
  char               *node;      /* atomic; set once: the node name, or NULL (a random one) */
};

/* ---- PostgreSQL: which connection a call uses ----
 *
 * The reader and writer threads each hold a handle of their own (their ThreadPg), so a replay
 * page never waits behind a group commit and libpq only ever runs on the store's threads when
 * the relay serves. A synchronous call from any other thread (the command line, the tests, the
 * serve command before its main loop runs) takes the shared handle under the store's lock. */
typedef struct
{
  TocsinRelayStore   *store;
  TocsinRelayStorePg *pg;    /* NULL until connected (the database may be down at first) */
  gboolean            named; /* pg speaks for store->node */
} ThreadPg;

static GPrivate thread_pg;   /* ThreadPg *, set by the store's threads on a PostgreSQL store */

static TocsinRelayStorePg *
pg_enter (TocsinRelayStore *store)
{
  ThreadPg *mine = g_private_get (&thread_pg);

  if (mine != NULL && mine->store == store && mine->pg != NULL)
    return mine->pg;
  g_mutex_lock (&store->lock);
  return store->pg;
}

static void
pg_leave (TocsinRelayStore   *store,
          TocsinRelayStorePg *pg)
{
  if (pg == store->pg)
    g_mutex_unlock (&store->lock);
}

/* A thread's own handle, connected on first use and after a failed connection. */
static void
pg_thread_connect (ThreadPg *mine)
{
  g_autoptr(GError) error = NULL;

  const char *node = g_atomic_pointer_get (&mine->store->node);

  if (mine->pg == NULL)
    {
      mine->named = FALSE;
      mine->pg = tocsin_relay_store_pg_open (mine->store->conninfo, &error);
      if (mine->pg == NULL)
        {
          g_message ("%s", error->message);
          return;
        }
    }
  if (node != NULL && !mine->named)
    {
      if (tocsin_relay_store_pg_set_node (mine->pg, node, &error))
        mine->named = TRUE;
      else
        g_message ("%s", error->message);
    }
}

/* On a PostgreSQL store, returns what @expr gives, run with `pg` bound to this thread's handle.
 * For the functions whose callers take no GError, @expr reports into `pg_error`, logged here. */
#define PG_RETURN(store, type, expr)                                 \
  G_STMT_START {                                                     \
    if ((store)->conninfo != NULL)                                   \
      {                                                              \
        TocsinRelayStorePg *pg = pg_enter (store);                   \
        g_autoptr(GError) pg_error = NULL;                           \
        type pg_value = (expr);                                      \
                                                                     \
        pg_leave (store, pg);                                        \
        if (pg_error != NULL)                                        \
          g_message ("%s", pg_error->message);                       \
        return pg_value;                                             \
      }                                                              \
  } G_STMT_END


G_DEFINE_QUARK (tocsin-relay-store-error-quark, tocsin_relay_store_error)

static void
job_free (Job *job)
{
  g_clear_object (&job->task);
  g_clear_pointer (&job->message, tocsin_message_free);
  g_free (job->key_hash);
  g_free (job->content_hash);
  g_free (job->conn_kind);
  g_free (job->peer);
  g_clear_pointer (&job->forwards, g_ptr_array_unref);
  g_clear_pointer (&job->indices, g_array_unref);
  g_free (job->event);
  g_free (job->user);
  g_clear_pointer (&job->message_data, g_bytes_unref);
  g_clear_pointer (&job->delivery_ops, g_array_unref);
  g_free (job);
}

void
tocsin_relay_commit_free (TocsinRelayCommit *commit)
{
  if (commit == NULL)
    return;
  g_clear_pointer (&commit->message, g_bytes_unref);
  g_free (commit);
}

/* ---- channels ---- */

TocsinRelayChannel *
tocsin_relay_channel_ref (TocsinRelayChannel *channel)
{
  g_return_val_if_fail (channel != NULL, NULL);
  g_atomic_int_inc (&channel->ref_count);
  return channel;
}

void
tocsin_relay_channel_unref (TocsinRelayChannel *channel)
{
  if (channel == NULL || !g_atomic_int_dec_and_test (&channel->ref_count))
    return;
  g_free (channel->name);
  g_free (channel->description);
  g_free (channel->title_source);
  g_free (channel->body_source);
  g_free (channel->link_source);
  g_free (channel->condition_source);
  g_clear_pointer (&channel->title, tocsin_template_unref);
  g_clear_pointer (&channel->body, tocsin_template_unref);
  g_clear_pointer (&channel->link, tocsin_template_unref);
  g_clear_pointer (&channel->condition, tocsin_template_unref);
  if (channel->trigger_token)
    explicit_bzero (channel->trigger_token, strlen (channel->trigger_token));
  if (channel->subscribe_token)
    explicit_bzero (channel->subscribe_token, strlen (channel->subscribe_token));
  if (channel->email_token)
    explicit_bzero (channel->email_token, strlen (channel->email_token));
  g_free (channel->trigger_token);
  g_free (channel->subscribe_token);
  g_free (channel->signature_scheme);
  if (channel->signature_secret)
    explicit_bzero (channel->signature_secret, strlen (channel->signature_secret));
  g_free (channel->signature_secret);
  g_free (channel->signature_header);
  g_free (channel->email_token);
  g_clear_pointer (&channel->actions, g_ptr_array_unref);
  g_free (channel->forwards_source);
  g_clear_pointer (&channel->forwards, g_ptr_array_unref);
  g_free (channel);
}

static gboolean
compile_templates (const char      *title,
                   const char      *body,
                   const char      *link,
                   const char      *condition,
                   TocsinTemplate **out_title,
                   TocsinTemplate **out_body,
                   TocsinTemplate **out_link,
                   TocsinTemplate **out_condition,
                   GError         **error)
{
  g_autoptr(TocsinTemplate) t = NULL, b = NULL, l = NULL, c = NULL;

  if (!(t = tocsin_template_new ("title", title, error)) ||
      !(b = tocsin_template_new ("body", body, error)) ||
      !(l = tocsin_template_new ("link", link, error)) ||
      !(c = tocsin_template_new_condition ("condition", condition, error)))
    return FALSE;

  if (out_title)
    *out_title = g_steal_pointer (&t);
  if (out_body)
    *out_body = g_steal_pointer (&b);
  if (out_link)
    *out_link = g_steal_pointer (&l);
  if (out_condition)
    *out_condition = g_steal_pointer (&c);
  return TRUE;
}

static const char *
column_text (sqlite3_stmt *stmt,
             int           col)
{
  const char *text = (const char *) sqlite3_column_text (stmt, col);

  return text ? text : "";
}

#define CHANNEL_COLUMNS \
  "id, version, name, description, title, body, link, condition, trigger_token, " \
  "subscribe_token, created_at, last_id, kind, signature_scheme, signature_secret, " \
  "signature_header, paused, email_token, actions, forwards"

/* A channel's forwards from their stored JSON text; NULL with @error when they do not compile. */
static GPtrArray *
compile_forwards (const char  *source,
                  GError     **error)
{
  return tocsin_request_list_parse ("forwards", source, TOCSIN_REQUEST_MAX_FORWARDS, error);
}

/* Builds a channel from a row of CHANNEL_COLUMNS. Templates were checked when they were saved;
 * if one no longer compiles (a newer template library), it renders as empty rather than taking
 * the relay down. */
static TocsinRelayChannel *
channel_from_row (sqlite3_stmt *stmt)
{
  TocsinRelayChannel *channel = g_new0 (TocsinRelayChannel, 1);
  g_autoptr(GError) error = NULL;

  channel->ref_count = 1;
  channel->id = sqlite3_column_int64 (stmt, 0);
  channel->name = g_strdup (column_text (stmt, 2));
  channel->description = g_strdup (column_text (stmt, 3));
  channel->title_source = g_strdup (column_text (stmt, 4));
  channel->body_source = g_strdup (column_text (stmt, 5));
  channel->link_source = g_strdup (column_text (stmt, 6));
  channel->condition_source = g_strdup (column_text (stmt, 7));
  channel->trigger_token = g_strdup (column_text (stmt, 8));
  channel->subscribe_token = g_strdup (column_text (stmt, 9));
  channel->created_at = sqlite3_column_int64 (stmt, 10);
  channel->last_id = sqlite3_column_int64 (stmt, 11);
  channel->direct = g_str_equal (column_text (stmt, 12), "direct");
  channel->signature_scheme = g_strdup (column_text (stmt, 13));
  channel->signature_secret = g_strdup (column_text (stmt, 14));
  channel->signature_header = g_strdup (column_text (stmt, 15));
  channel->paused = sqlite3_column_int (stmt, 16) != 0;
  channel->email_token = g_strdup (column_text (stmt, 17));
  channel->actions = tocsin_relay_actions_load (channel->id, column_text (stmt, 18));
  channel->forwards_source = g_strdup (column_text (stmt, 19));
  channel->forwards = compile_forwards (channel->forwards_source, &error);
  if (channel->forwards == NULL)
    {
      g_message ("Channel %" G_GINT64_FORMAT ": its saved forwards no longer compile: %s",
                 channel->id, error->message);
      g_clear_error (&error);
      channel->forwards = g_ptr_array_new ();
    }

  if (!compile_templates (channel->title_source, channel->body_source, channel->link_source,
                          channel->condition_source, &channel->title, &channel->body,
                          &channel->link, &channel->condition, &error))
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

/* ---- SQLite helpers ---- */

static gboolean
set_sqlite_error (sqlite3     *db,
                  int          rc,
                  const char  *what,
                  GError     **error)
{
  g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_FAILED,
               _("The relay's database failed while %s: %s"), what,
               db ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
  return FALSE;
}

static gboolean
exec_sql (sqlite3     *db,
          const char  *sql,
          GError     **error)
{
  char *msg = NULL;
  int rc = sqlite3_exec (db, sql, NULL, NULL, &msg);

  if (rc != SQLITE_OK)
    {
      g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_FAILED,
                   _("The relay's database failed: %s"), msg ? msg : sqlite3_errstr (rc));
      sqlite3_free (msg);
      return FALSE;
    }
  return TRUE;
}

static sqlite3_stmt *
prepare (sqlite3     *db,
         const char  *sql,
         GError     **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL);

  if (rc != SQLITE_OK)
    {
      set_sqlite_error (db, rc, "preparing a query", error);
      return NULL;
    }
  return stmt;
}

typedef sqlite3_stmt Stmt;
static void
stmt_finalize (Stmt *stmt)
{
  sqlite3_finalize (stmt);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Stmt, stmt_finalize)

/* Statements kept compiled, one table per connection (SQL text → sqlite3_stmt): compiling
 * was a quarter of the instructions of a webhook. A table belongs to its connection's thread
 * (the main connection's to whoever holds the lock). prepare_cached lends a statement; the
 * borrower gives it back with stmt_release (CachedStmt's cleanup), which resets it, so that no
 * statement keeps a read transaction open (that would hide other processes' changes). */
static void
stmt_free (gpointer stmt)
{
  sqlite3_finalize (stmt);
}

static GHashTable *
stmt_cache_new (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, stmt_free);
}

static sqlite3_stmt *
prepare_cached (GHashTable  *stmts,
                sqlite3     *db,
                const char  *sql,
                GError     **error)
{
  sqlite3_stmt *stmt = g_hash_table_lookup (stmts, sql);
  int rc;

  if (stmt != NULL)
    {
      /* Lent twice at once would mix two users' bindings and rows. */
      g_assert (!sqlite3_stmt_busy (stmt));
      return stmt;
    }
  rc = sqlite3_prepare_v3 (db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
  if (rc != SQLITE_OK)
    {
      set_sqlite_error (db, rc, "preparing a query", error);
      return NULL;
    }
  g_hash_table_insert (stmts, g_strdup (sql), stmt);
  return stmt;
}

typedef sqlite3_stmt CachedStmt;
static void
stmt_release (CachedStmt *stmt)
{
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CachedStmt, stmt_release)

/* exec_sql for a statement without rows (BEGIN, COMMIT, SAVEPOINT...) that runs often. */
static gboolean
exec_cached (GHashTable  *stmts,
             sqlite3     *db,
             const char  *sql,
             GError     **error)
{
  g_autoptr(CachedStmt) stmt = prepare_cached (stmts, db, sql, error);
  int rc;

  if (stmt == NULL)
    return FALSE;
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    return set_sqlite_error (db, rc, "running a query", error);
  return TRUE;
}

static const char schema[] =
  "CREATE TABLE IF NOT EXISTS channels ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  version INTEGER NOT NULL DEFAULT 1,"
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
  "  created_at INTEGER NOT NULL,"
  "  last_id INTEGER NOT NULL DEFAULT 0);"
  "CREATE TABLE IF NOT EXISTS messages ("
  "  channel_id INTEGER NOT NULL,"
  "  id INTEGER NOT NULL,"
  "  time_ms INTEGER NOT NULL,"
  "  data BLOB NOT NULL,"
  "  PRIMARY KEY (channel_id, id)) WITHOUT ROWID;"
  "CREATE INDEX IF NOT EXISTS messages_time ON messages (time_ms);"
  /* Only hashes: the key and the content a sender used are not kept. */
  "CREATE TABLE IF NOT EXISTS dedup ("
  "  channel_id INTEGER NOT NULL,"
  "  key_hash TEXT NOT NULL,"
  "  content_hash TEXT NOT NULL,"
  "  message_id INTEGER NOT NULL,"
  "  time_ms INTEGER NOT NULL,"
  "  PRIMARY KEY (channel_id, key_hash)) WITHOUT ROWID;"
  "CREATE INDEX IF NOT EXISTS dedup_time ON dedup (time_ms);"
  "CREATE TABLE IF NOT EXISTS admin_keys ("
  "  hash TEXT PRIMARY KEY,"
  "  created_at INTEGER NOT NULL) WITHOUT ROWID;"
  "CREATE TABLE IF NOT EXISTS meta ("
  "  key TEXT PRIMARY KEY,"
  "  value TEXT NOT NULL) WITHOUT ROWID;"
  "CREATE TABLE IF NOT EXISTS presence ("
  "  pid INTEGER NOT NULL,"
  "  conn_id INTEGER NOT NULL,"
  "  channel_id INTEGER NOT NULL,"
  "  kind TEXT NOT NULL,"
  "  peer TEXT NOT NULL,"
  "  connected_at INTEGER NOT NULL,"
  "  PRIMARY KEY (pid, conn_id, channel_id)) WITHOUT ROWID;";

/* What changed since the first schema, in order: entry i takes a database from version i + 1 to
 * version i + 2, in the same transaction as the schema. Append only; an entry that has shipped
 * is never edited. The NULL that ends the list makes SCHEMA_VERSION the list's length. */
static const char *const migrations[] = {
  /* 2: Direct keys (tocsin-relay-direct.c). A direct inbox is a channel of kind 'direct' whose
   * trigger token is the Direct key. */
  "ALTER TABLE channels ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook';",
  /* 3: signed webhooks and pausing (issue 14) */
  "ALTER TABLE channels ADD COLUMN signature_scheme TEXT NOT NULL DEFAULT '';"
  "ALTER TABLE channels ADD COLUMN signature_secret TEXT NOT NULL DEFAULT '';"
  "ALTER TABLE channels ADD COLUMN signature_header TEXT NOT NULL DEFAULT '';"
  "ALTER TABLE channels ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;",
  /* 4: the email trigger's address, <email_token>@<mail domain>; backfill_email_tokens() gives
   * channels of an older database theirs. */
  "ALTER TABLE channels ADD COLUMN email_token TEXT;"
  "ALTER TABLE channels ADD COLUMN email_hash TEXT;"
  "CREATE UNIQUE INDEX IF NOT EXISTS channels_email_hash ON channels (email_hash);",
  /* 5: action buttons (issue 15, tocsin-relay-actions.c): normalised request definitions. */
  "ALTER TABLE channels ADD COLUMN actions TEXT NOT NULL DEFAULT '[]';",
  /* 6: outgoing requests (issue 15, tocsin-relay-forwards.c): each channel's forwards, the
   * durable queue of their deliveries (queued in the message's own transaction) and the log of
   * every attempt. A delivery keeps the encoded message it renders from, since the message
   * itself may be pruned (or never kept: retention 0) before it is sent. */
  "ALTER TABLE channels ADD COLUMN forwards TEXT NOT NULL DEFAULT '[]';"
  "CREATE TABLE IF NOT EXISTS deliveries ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  channel_id INTEGER NOT NULL,"
  "  message_id INTEGER NOT NULL,"
  "  forward TEXT NOT NULL,"
  "  forward_index INTEGER NOT NULL,"
  "  event TEXT NOT NULL,"
  "  vars TEXT NOT NULL DEFAULT '{}',"
  "  message BLOB,"
  "  webhook_id TEXT NOT NULL UNIQUE,"
  "  policy TEXT NOT NULL DEFAULT 'retry',"
  "  state TEXT NOT NULL DEFAULT 'pending',"
  "  attempts INTEGER NOT NULL DEFAULT 0,"
  "  next_at_ms INTEGER,"
  "  created_at_ms INTEGER NOT NULL);"
  "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_at_ms);"
  "CREATE INDEX IF NOT EXISTS deliveries_channel ON deliveries (channel_id, id);"
  "CREATE TABLE IF NOT EXISTS delivery_attempts ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  delivery_id INTEGER NOT NULL,"
  "  channel_id INTEGER NOT NULL,"
  "  attempt INTEGER NOT NULL,"
  "  at_ms INTEGER NOT NULL,"
  "  url TEXT NOT NULL,"
  "  status INTEGER NOT NULL,"
  "  error TEXT,"
  "  duration_ms INTEGER NOT NULL,"
  "  answer_start TEXT NOT NULL DEFAULT '',"
  "  outcome TEXT NOT NULL,"
  "  next_retry_at_ms INTEGER);"
  "CREATE INDEX IF NOT EXISTS delivery_attempts_delivery"
  "  ON delivery_attempts (delivery_id, attempt);"
  "CREATE INDEX IF NOT EXISTS delivery_attempts_time ON delivery_attempts (at_ms);",
  NULL
};

#define SCHEMA_VERSION ((int) G_N_ELEMENTS (migrations))

static gboolean
migrate (sqlite3  *db,
         int       version,
         GError  **error)
{
  g_autofree char *set_version = g_strdup_printf ("PRAGMA user_version=%d", SCHEMA_VERSION);

  if (!exec_sql (db, schema, error))
    return FALSE;
  /* A new database has just been given the first schema: it is version 1. */
  for (int i = MAX (version, 1) - 1; migrations[i] != NULL; i++)
    if (!exec_sql (db, migrations[i], error))
      return FALSE;
  return exec_sql (db, set_version, error);
}

/* Channels made before the email trigger (or by an older relay sharing the data dir) get their
 * address here, from getrandom as every token: SQL's randomblob() is not that. */
static gboolean
backfill_email_tokens (sqlite3  *db,
                       GError  **error)
{
  g_autoptr(Stmt) select = prepare (db, "SELECT id FROM channels WHERE email_token IS NULL",
                                    error);
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));

  if (select == NULL)
    return FALSE;
  while (sqlite3_step (select) == SQLITE_ROW)
    {
      gint64 id = sqlite3_column_int64 (select, 0);

      g_array_append_val (ids, id);
    }
  for (guint i = 0; i < ids->len; i++)
    {
      g_autoptr(Stmt) update = NULL;
      g_autofree char *token = tocsin_token_new_mail (error);
      g_autofree char *hash = NULL;
      int rc;

      if (token == NULL)
        return FALSE;
      hash = tocsin_token_hash (token);
      update = prepare (db, "UPDATE channels SET version = version + 1, email_token = ?2,"
                        " email_hash = ?3 WHERE id = ?1", error);
      if (update == NULL)
        return FALSE;
      sqlite3_bind_int64 (update, 1, g_array_index (ids, gint64, i));
      sqlite3_bind_text (update, 2, token, -1, SQLITE_STATIC);
      sqlite3_bind_text (update, 3, hash, -1, SQLITE_STATIC);
      rc = sqlite3_step (update);
      if (rc != SQLITE_DONE)
        return set_sqlite_error (db, rc, "giving a channel its email address", error);
    }
  return TRUE;
}

static sqlite3 *
open_connection (const char  *path,
                 GError     **error)
{
  sqlite3 *db = NULL;
  int rc;

  rc = sqlite3_open_v2 (path, &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL);
  if (rc != SQLITE_OK)
    {
      g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_FAILED,
                   _("Could not open the relay's database %s: %s"), path,
                   db ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
      sqlite3_close (db);
      return NULL;
    }
  sqlite3_busy_timeout (db, BUSY_TIMEOUT_MS);
  /* The -wal and -shm files stay when the last connection closes, instead of being deleted and
   * made again at the next start: on a full disk SQLite could not make the -shm file (32 KiB),
   * and the relay would not start at all, serving neither streams nor replay. The -wal, reset
   * rather than cut after each checkpoint, keeps the room of its last use for writes too. */
  {
    int persist = 1;

    sqlite3_file_control (db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  }
  if (!exec_sql (db,
                 "PRAGMA journal_mode=WAL;"
                 "PRAGMA synchronous=FULL;"
                 "PRAGMA foreign_keys=ON;"
                 "PRAGMA secure_delete=ON;",
                 error))
    {
      sqlite3_close (db);
      return NULL;
    }
  return db;
}

/* The data dir holds secrets (tokens) and what people sent: only the relay's user reads it. */
static gboolean
prepare_files (const char  *data_dir,
               const char  *path,
               GError     **error)
{
  struct stat st;
  int fd;

  if (g_mkdir_with_parents (data_dir, 0700) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   _("Could not create the data directory %s: %s"), data_dir,
                   g_strerror (saved));
      return FALSE;
    }
  if (g_stat (data_dir, &st) == 0 && st.st_uid == getuid () && (st.st_mode & 077) != 0)
    g_chmod (data_dir, 0700);

  fd = g_open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   _("Could not open the relay's database %s: %s"), path, g_strerror (saved));
      return FALSE;
    }
  /* SQLite gives the -wal and -shm files the database's mode. */
  if (fchmod (fd, 0600) != 0)
    {
      int saved = errno;

      close (fd);
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   _("Could not make %s private: %s"), path, g_strerror (saved));
      return FALSE;
    }
  close (fd);
  return TRUE;
}

static gpointer writer_main (gpointer data);
static gpointer writer_main_pg (gpointer data);

/* The PostgreSQL store: the shared handle now (which creates the schema, and says at once when
 * the database cannot be reached), the threads' own as they start. */
static TocsinRelayStore *
open_pg (const char  *data_dir,
         const char  *conninfo,
         GError     **error)
{
  TocsinRelayStorePg *pg = tocsin_relay_store_pg_open (conninfo, error);
  TocsinRelayStore *store;

  if (pg == NULL)
    return NULL;
  store = g_new0 (TocsinRelayStore, 1);
  store->data_dir = g_strdup (data_dir);
  store->conninfo = g_strdup (conninfo);
  store->pg = pg;
  g_mutex_init (&store->lock);
  g_mutex_init (&store->reader_lock);
  store->stmts = stmt_cache_new ();
  store->wstmts = stmt_cache_new ();
  store->by_trigger = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  store->by_subscribe = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  store->by_email = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  store->retention = 24 * 60 * 60;
  store->channels = tocsin_relay_channel_cache_new ();
  store->jobs = g_async_queue_new_full ((GDestroyNotify) job_free);
  store->writer = g_thread_new ("tocsin-store-writer", writer_main_pg, store);
  return store;
}

TocsinRelayStore *
tocsin_relay_store_open_database (const char  *data_dir,
                                  const char  *database,
                                  GError     **error)
{
  if (tocsin_relay_store_pg_is_url (database))
    return open_pg (data_dir, database, error);
  return tocsin_relay_store_open (data_dir, error);
}

void
tocsin_relay_store_set_node (TocsinRelayStore *store,
                             const char       *node)
{
  g_autoptr(GError) error = NULL;

  char *copy;

  g_return_if_fail (store != NULL && node != NULL && *node != '\0');

  if (store->conninfo == NULL)
    return;
  copy = g_strdup (node);
  if (!g_atomic_pointer_compare_and_exchange (&store->node, NULL, copy))
    {
      g_free (copy);
      return;
    }
  g_mutex_lock (&store->lock);
  if (!tocsin_relay_store_pg_set_node (store->pg, node, &error))
    g_message ("%s", error->message);
  g_mutex_unlock (&store->lock);
}

gboolean
tocsin_relay_store_announce_ack (TocsinRelayStore  *store,
                                 gint64             channel_id,
                                 gint64             message_id,
                                 const char        *by,
                                 GError           **error)
{
  g_return_val_if_fail (store != NULL && by != NULL, FALSE);

  PG_RETURN (store, gboolean,
             tocsin_relay_store_pg_announce_ack (pg, channel_id, message_id, by, error));
  return TRUE;
}

const char *
tocsin_relay_store_get_database (TocsinRelayStore *store)
{
  g_return_val_if_fail (store != NULL, NULL);
  return store->conninfo;
}

TocsinRelayStore *
tocsin_relay_store_open (const char  *data_dir,
                         GError     **error)
{
  g_autofree char *path = NULL;
  TocsinRelayStore *store;
  sqlite3 *db, *wdb;
  int version = 0;

  g_return_val_if_fail (data_dir != NULL, NULL);

  path = g_build_filename (data_dir, DB_NAME, NULL);
  if (!prepare_files (data_dir, path, error))
    return NULL;

  db = open_connection (path, error);
  if (db == NULL)
    return NULL;

  {
    g_autoptr(Stmt) stmt = prepare (db, "PRAGMA user_version", error);

    if (stmt == NULL)
      {
        sqlite3_close (db);
        return NULL;
      }
    if (sqlite3_step (stmt) == SQLITE_ROW)
      version = sqlite3_column_int (stmt, 0);
  }
  if (version > SCHEMA_VERSION)
    {
      g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_FAILED,
                   _("The database in %s was written by a newer tocsin-relay; upgrade this one"),
                   data_dir);
      sqlite3_close (db);
      return NULL;
    }
  {
    g_autoptr(GError) schema_error = NULL;

    if (!exec_sql (db, "BEGIN IMMEDIATE", &schema_error) ||
        !migrate (db, version, &schema_error) ||
        !backfill_email_tokens (db, &schema_error) ||
        !exec_sql (db, "COMMIT", &schema_error))
      {
        sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
        /* A database of this version has every table already: a write that fails (on a full
         * disk) must not keep the relay from serving what it has. */
        if (version < SCHEMA_VERSION)
          {
            g_propagate_error (error, g_steal_pointer (&schema_error));
            sqlite3_close (db);
            return NULL;
          }
        g_message ("Could not check the database's tables (%s); they are this version's",
                   schema_error->message);
      }
  }

  wdb = open_connection (path, error);
  if (wdb == NULL)
    {
      sqlite3_close (db);
      return NULL;
    }

  store = g_new0 (TocsinRelayStore, 1);
  store->data_dir = g_strdup (data_dir);
  store->path = g_steal_pointer (&path);
  g_mutex_init (&store->lock);
  g_mutex_init (&store->reader_lock);
  store->db = db;
  store->wdb = wdb;
  store->stmts = stmt_cache_new ();
  store->by_trigger = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  store->by_subscribe = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  store->by_email = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  store->wstmts = stmt_cache_new ();
  store->retention = 24 * 60 * 60;
  store->channels = tocsin_relay_channel_cache_new ();
  store->jobs = g_async_queue_new_full ((GDestroyNotify) job_free);
  store->writer = g_thread_new ("tocsin-store-writer", writer_main, store);
  return store;
}

void
tocsin_relay_store_free (TocsinRelayStore *store)
{
  Job *stop;

  if (store == NULL)
    return;

  /* Queued commits are written before the writer stops: the queue is FIFO. */
  stop = g_new0 (Job, 1);
  stop->kind = JOB_STOP;
  g_async_queue_push (store->jobs, stop);
  g_thread_join (store->writer);
  g_async_queue_unref (store->jobs);

  if (store->reader != NULL)
    {
      ReadJob *read_stop = g_new0 (ReadJob, 1);

      read_stop->kind = READ_STOP;
      g_async_queue_push (store->reads, read_stop);
      g_thread_join (store->reader);
      g_async_queue_unref (store->reads);
    }

  /* Finalized first: sqlite3_close refuses a connection with statements left. */
  g_hash_table_unref (store->wstmts);
  g_hash_table_unref (store->stmts);
  sqlite3_close (store->wdb);
  sqlite3_close (store->db);
  g_clear_pointer (&store->pg, tocsin_relay_store_pg_free);
  g_free (store->conninfo);
  g_free (store->node);
  tocsin_relay_channel_cache_free (store->channels);
  g_hash_table_unref (store->by_trigger);
  g_hash_table_unref (store->by_subscribe);
  g_hash_table_unref (store->by_email);
  g_mutex_clear (&store->lock);
  g_mutex_clear (&store->reader_lock);
  g_free (store->data_dir);
  g_free (store->path);
  g_free (store);
}

void
tocsin_relay_store_set_retention (TocsinRelayStore *store,
                                  gint64            seconds)
{
  g_return_if_fail (store != NULL);
  g_atomic_int_set (&store->retention, (gint) CLAMP (seconds, 0, G_MAXINT / 1000));
}

static gint64
get_retention (TocsinRelayStore *store)
{
  return g_atomic_int_get (&store->retention);
}

/* ---- lookups ---- */

/* Returns the channel of @id from the cache when the row has not changed since, else builds it
 * anew. Called with the lock held. */
static TocsinRelayChannel *
load_channel_locked (TocsinRelayStore *store,
                     gint64            id)
{
  g_autoptr(CachedStmt) stmt = NULL;
  TocsinRelayChannel *channel;

  stmt = prepare_cached (store->stmts, store->db,
                         "SELECT " CHANNEL_COLUMNS " FROM channels WHERE id = ?", NULL);
  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, id);
  if (sqlite3_step (stmt) != SQLITE_ROW)
    {
      tocsin_relay_channel_cache_remove (store->channels, id);
      return NULL;
    }

  channel = tocsin_relay_channel_cache_lookup (store->channels, id,
                                               sqlite3_column_int64 (stmt, 1),
                                               sqlite3_column_int64 (stmt, 11));
  if (channel != NULL)
    return channel;
  channel = channel_from_row (stmt);
  tocsin_relay_channel_cache_insert (store->channels, channel, sqlite3_column_int64 (stmt, 1));
  return channel;
}

/* The token of @channel named by a column prefix: "trigger", "subscribe" or "email". */
static const char *
channel_token (const TocsinRelayChannel *channel,
               const char               *column)
{
  if (column[0] == 't')
    return channel->trigger_token;
  if (column[0] == 's')
    return channel->subscribe_token;
  return channel->email_token;
}

/* Most channels get many webhooks: no more than this many tokens are remembered. */
#define MAX_CACHED_TOKENS 4096

/* Looks a token up by its hash (an index lookup that reveals nothing about the token's bytes),
 * then compares the stored token in constant time, against a dummy when there is none.
 *
 * A token seen before skips the lookup by hash: its channel comes from load_channel_locked (one
 * primary-key read, which also brings last_id and the row's version up to date) and the token
 * is compared with that row's current one. So a token rotated or a channel deleted by another
 * process (the CLI) fails at once, as it did without the cache: the cache only says where to
 * look, the row decides. */
static TocsinRelayChannel *
find_by_token (TocsinRelayStore *store,
               const char       *column,
               const char       *token)
{
  g_autofree char *hash = NULL;
  g_autofree char *sql = NULL;
  g_autofree char *stored = NULL;
  g_autoptr(CachedStmt) stmt = NULL;
  TocsinRelayChannel *channel = NULL;
  GHashTable *known;
  gint64 *known_id;
  gint64 id = 0;
  gboolean equal;

  g_return_val_if_fail (store != NULL, NULL);

  if (token == NULL)
    token = "";
  hash = tocsin_token_hash (token);

  g_mutex_lock (&store->lock);
  known = column[0] == 't' ? store->by_trigger
          : column[0] == 's' ? store->by_subscribe : store->by_email;
  known_id = g_hash_table_lookup (known, hash);
  if (known_id != NULL)
    {
      channel = load_channel_locked (store, *known_id);
      if (channel != NULL && tocsin_token_equal (channel_token (channel, column), token))
        {
          g_mutex_unlock (&store->lock);
          return channel;
        }
      /* Rotated or deleted since: forget it and look the token up as if new. */
      g_clear_pointer (&channel, tocsin_relay_channel_unref);
      g_hash_table_remove (known, hash);
    }

  sql = g_strdup_printf ("SELECT id, %s_token FROM channels WHERE %s_hash = ?", column, column);
  stmt = prepare_cached (store->stmts, store->db, sql, NULL);
  if (stmt != NULL)
    {
      sqlite3_bind_text (stmt, 1, hash, -1, SQLITE_STATIC);
      if (sqlite3_step (stmt) == SQLITE_ROW)
        {
          id = sqlite3_column_int64 (stmt, 0);
          stored = g_strdup (column_text (stmt, 1));
        }
      g_clear_pointer (&stmt, stmt_release);
    }

  equal = tocsin_token_equal (stored ? stored : dummy_token, token);
  if (equal && stored != NULL)
    channel = load_channel_locked (store, id);
  if (channel != NULL)
    {
      if (g_hash_table_size (known) >= MAX_CACHED_TOKENS)
        g_hash_table_remove_all (known);
      g_hash_table_insert (known, g_steal_pointer (&hash), g_memdup2 (&id, sizeof id));
    }
  if (stored != NULL)
    explicit_bzero (stored, strlen (stored));
  g_mutex_unlock (&store->lock);
  return channel;
}

TocsinRelayChannel *
tocsin_relay_store_find_by_trigger (TocsinRelayStore *store,
                                    const char       *token)
{
  PG_RETURN (store, TocsinRelayChannel *,
             tocsin_relay_store_pg_find_by_trigger (pg, token, &pg_error));
  return find_by_token (store, "trigger", token);
}

TocsinRelayChannel *
tocsin_relay_store_find_by_trigger_checked (TocsinRelayStore  *store,
                                            const char        *token,
                                            GError           **error)
{
  PG_RETURN (store, TocsinRelayChannel *,
             tocsin_relay_store_pg_find_by_trigger (pg, token, error));
  return find_by_token (store, "trigger", token);
}

TocsinRelayChannel *
tocsin_relay_store_find_by_subscribe (TocsinRelayStore *store,
                                      const char       *token)
{
  PG_RETURN (store, TocsinRelayChannel *,
             tocsin_relay_store_pg_find_by_subscribe (pg, token, &pg_error));
  return find_by_token (store, "subscribe", token);
}

TocsinRelayChannel *
tocsin_relay_store_find_by_subscribe_checked (TocsinRelayStore  *store,
                                              const char        *token,
                                              GError           **error)
{
  PG_RETURN (store, TocsinRelayChannel *,
             tocsin_relay_store_pg_find_by_subscribe (pg, token, error));
  return find_by_token (store, "subscribe", token);
}

TocsinRelayChannel *
tocsin_relay_store_find_by_email_checked (TocsinRelayStore  *store,
                                          const char        *token,
                                          GError           **error)
{
  PG_RETURN (store, TocsinRelayChannel *,
             tocsin_relay_store_pg_find_by_email (pg, token, error));
  return find_by_token (store, "email", token);
}

TocsinRelayChannel *
tocsin_relay_store_find_by_email (TocsinRelayStore *store,
                                  const char       *token)
{
  PG_RETURN (store, TocsinRelayChannel *,
             tocsin_relay_store_pg_find_by_email (pg, token, &pg_error));
  return find_by_token (store, "email", token);
}

TocsinRelayChannel *
tocsin_relay_store_find_by_id (TocsinRelayStore *store,
                               gint64            id)
{
  TocsinRelayChannel *channel;

  g_return_val_if_fail (store != NULL, NULL);

  PG_RETURN (store, TocsinRelayChannel *,
             tocsin_relay_store_pg_find_by_id (pg, id, &pg_error));
  g_mutex_lock (&store->lock);
  channel = load_channel_locked (store, id);
  g_mutex_unlock (&store->lock);
  return channel;
}

TocsinRelayChannel *
tocsin_relay_store_find_by_owner_key (TocsinRelayStore *store,
                                      const char       *owner_key)
{
  g_autofree char *hash = NULL;
  g_autofree char *stored = NULL;
  g_autoptr(Stmt) stmt = NULL;
  TocsinRelayChannel *channel = NULL;
  gint64 id = 0;

  g_return_val_if_fail (store != NULL, NULL);

  PG_RETURN (store, TocsinRelayChannel *,
             tocsin_relay_store_pg_find_by_owner_key (pg, owner_key, &pg_error));
  hash = tocsin_token_hash (owner_key ? owner_key : "");
  g_mutex_lock (&store->lock);
  stmt = prepare (store->db, "SELECT id, owner_hash FROM channels WHERE owner_hash = ?", NULL);
  if (stmt != NULL)
    {
      sqlite3_bind_text (stmt, 1, hash, -1, SQLITE_STATIC);
      if (sqlite3_step (stmt) == SQLITE_ROW)
        {
          id = sqlite3_column_int64 (stmt, 0);
          stored = g_strdup (column_text (stmt, 1));
        }
    }
  if (tocsin_token_equal (stored ? stored : "", hash) && stored != NULL)
    channel = load_channel_locked (store, id);
  g_mutex_unlock (&store->lock);
  return channel;
}

GPtrArray *
tocsin_relay_store_list_channels (TocsinRelayStore  *store,
                                  GError           **error)
{
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) channels = NULL;
  g_autoptr(Stmt) stmt = NULL;
  int rc;

  g_return_val_if_fail (store != NULL, NULL);

  PG_RETURN (store, GPtrArray *, tocsin_relay_store_pg_list_channels (pg, error));
  channels = g_ptr_array_new_with_free_func ((GDestroyNotify) tocsin_relay_channel_unref);
  g_mutex_lock (&store->lock);
  stmt = prepare (store->db, "SELECT id FROM channels ORDER BY id", error);
  if (stmt == NULL)
    {
      g_mutex_unlock (&store->lock);
      return NULL;
    }
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (ids, g_memdup2 (&(gint64) { sqlite3_column_int64 (stmt, 0) },
                                     sizeof (gint64)));
  g_clear_pointer (&stmt, sqlite3_finalize);
  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (store->db, rc, "listing channels", error);
      g_mutex_unlock (&store->lock);
      return NULL;
    }
  for (guint i = 0; i < ids->len; i++)
    {
      TocsinRelayChannel *channel = load_channel_locked (store, *(gint64 *) ids->pdata[i]);

      if (channel)
        g_ptr_array_add (channels, channel);
    }
  g_mutex_unlock (&store->lock);
  return g_steal_pointer (&channels);
}

/* ---- channel management ---- */

static gboolean
is_blank (const char *value)
{
  for (; *value; value++)
    if (!g_ascii_isspace (*value))
      return FALSE;
  return TRUE;
}

static gboolean
check_text (const char  *value,
            const char  *field,
            gsize        max,
            gboolean     required,
            GError     **error)
{
  if (value == NULL)
    return TRUE;
  if (!g_utf8_validate (value, -1, NULL))
    {
      g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_INVALID,
                   _("The channel's %s is not valid UTF-8"), field);
      return FALSE;
    }
  if (required && is_blank (value))
    {
      g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_INVALID,
                   _("The channel needs a %s"), field);
      return FALSE;
    }
  if (strlen (value) > max)
    {
      g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_INVALID,
                   _("The channel's %s is longer than %u bytes"), field, (guint) max);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_forwards (const char  *forwards,
                GError     **error)
{
  g_autoptr(GPtrArray) compiled = NULL;

  if (forwards == NULL)
    return TRUE;
  compiled = compile_forwards (forwards, error);
  return compiled != NULL;
}

static gboolean
check_spec (const TocsinRelayChannelSpec  *spec,
            gboolean                       creating,
            GError                       **error)
{
  if (creating && spec->name == NULL)
    {
      g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_INVALID,
                   _("The channel needs a name"));
      return FALSE;
    }
  return check_text (spec->name, _("name"), TOCSIN_RELAY_CHANNEL_NAME_MAX, TRUE, error) &&
         check_text (spec->description, _("description"), TOCSIN_RELAY_DESCRIPTION_MAX, FALSE,
                     error) &&
         check_text (spec->title, _("title"), TOCSIN_TEMPLATE_MAX_SOURCE, FALSE, error) &&
         check_text (spec->body, _("body"), TOCSIN_TEMPLATE_MAX_SOURCE, FALSE, error) &&
         check_text (spec->link, _("link"), TOCSIN_TEMPLATE_MAX_SOURCE, FALSE, error) &&
         check_text (spec->condition, _("condition"), TOCSIN_TEMPLATE_MAX_SOURCE, FALSE, error) &&
         compile_templates (spec->title, spec->body, spec->link, spec->condition,
                            NULL, NULL, NULL, NULL, error) &&
         check_forwards (spec->forwards, error);
}

static void
bind_text_or_empty (sqlite3_stmt *stmt,
                    int           index,
                    const char   *text)
{
  sqlite3_bind_text (stmt, index, text ? text : "", -1, SQLITE_TRANSIENT);
}

static TocsinRelayChannel *
create_channel (TocsinRelayStore              *store,
                const TocsinRelayChannelSpec  *spec,
                const char                    *kind,
                char                         **owner_key,
                GError                       **error)
{
  g_autofree char *trigger = NULL, *subscribe = NULL, *owner = NULL, *email = NULL;
  g_autofree char *trigger_hash = NULL, *subscribe_hash = NULL, *owner_hash = NULL;
  g_autofree char *email_hash = NULL, *actions = NULL;
  g_autoptr(Stmt) stmt = NULL;
  g_autofree char *name = NULL;
  TocsinRelayChannel *channel;
  gint64 id;
  int rc;

  g_return_val_if_fail (store != NULL, NULL);
  g_return_val_if_fail (spec != NULL, NULL);

  if (!check_spec (spec, TRUE, error))
    return NULL;
  if (spec->actions != NULL && !(actions = tocsin_relay_actions_normalise (spec->actions, error)))
    return NULL;
  if (store->conninfo != NULL)
    {
      TocsinRelayChannelSpec normalised = *spec;

      normalised.actions = actions;
      PG_RETURN (store, TocsinRelayChannel *,
                 tocsin_relay_store_pg_create_channel (pg, &normalised, kind, owner_key, error));
    }
  if (!(trigger = tocsin_token_new (error)) ||
      !(subscribe = tocsin_token_new (error)) ||
      !(owner = tocsin_token_new (error)) ||
      !(email = tocsin_token_new_mail (error)))
    return NULL;
  email_hash = tocsin_token_hash (email);
  trigger_hash = tocsin_token_hash (trigger);
  subscribe_hash = tocsin_token_hash (subscribe);
  owner_hash = tocsin_token_hash (owner);
  name = g_strstrip (g_strdup (spec->name));

  g_mutex_lock (&store->lock);
  stmt = prepare (store->db,
                  "INSERT INTO channels (name, description, title, body, link, condition,"
                  " trigger_token, trigger_hash, subscribe_token, subscribe_hash, owner_hash,"
                  " created_at, kind, signature_scheme, signature_secret, signature_header,"
                  " paused, email_token, email_hash, actions, forwards) VALUES (?, ?, ?, ?, ?,"
                  " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", error);
  if (stmt == NULL)
    {
      g_mutex_unlock (&store->lock);
      return NULL;
    }
  bind_text_or_empty (stmt, 1, name);
  bind_text_or_empty (stmt, 2, spec->description);
  bind_text_or_empty (stmt, 3, spec->title);
  bind_text_or_empty (stmt, 4, spec->body);
  bind_text_or_empty (stmt, 5, spec->link);
  bind_text_or_empty (stmt, 6, spec->condition);
  bind_text_or_empty (stmt, 7, trigger);
  bind_text_or_empty (stmt, 8, trigger_hash);
  bind_text_or_empty (stmt, 9, subscribe);
  bind_text_or_empty (stmt, 10, subscribe_hash);
  bind_text_or_empty (stmt, 11, owner_hash);
  sqlite3_bind_int64 (stmt, 12, g_get_real_time () / G_USEC_PER_SEC);
  bind_text_or_empty (stmt, 13, kind);
  bind_text_or_empty (stmt, 14, spec->signature);
  bind_text_or_empty (stmt, 15, spec->signature_secret);
  bind_text_or_empty (stmt, 16, spec->signature_header);
  sqlite3_bind_int (stmt, 17, spec->set_paused && spec->paused);
  bind_text_or_empty (stmt, 18, email);
  bind_text_or_empty (stmt, 19, email_hash);
  bind_text_or_empty (stmt, 20, actions != NULL ? actions : "[]");
  bind_text_or_empty (stmt, 21, spec->forwards ? spec->forwards : "[]");
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (store->db, rc, "creating a channel", error);
      g_mutex_unlock (&store->lock);
      return NULL;
    }
  id = sqlite3_last_insert_rowid (store->db);
  channel = load_channel_locked (store, id);
  g_mutex_unlock (&store->lock);

  if (channel == NULL)
    {
      g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_FAILED,
                   _("The new channel could not be read back from the database"));
      return NULL;
    }
  if (owner_key)
    *owner_key = g_steal_pointer (&owner);
  return channel;
}

TocsinRelayChannel *
tocsin_relay_store_create_channel (TocsinRelayStore              *store,
                                   const TocsinRelayChannelSpec  *spec,
                                   char                         **owner_key,
                                   GError                       **error)
{
  return create_channel (store, spec, "webhook", owner_key, error);
}

TocsinRelayChannel *
tocsin_relay_store_create_direct (TocsinRelayStore  *store,
                                  char             **owner_key,
                                  GError           **error)
{
  /* The name is what subscribers see as the channel's; the app shows its own word for it. */
  const TocsinRelayChannelSpec spec = { .name = "Direct" };

  g_return_val_if_fail (store != NULL, NULL);
  return create_channel (store, &spec, "direct", owner_key, error);
}

static gboolean
not_found (gint64   id,
           GError **error)
{
  g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND,
               _("There is no channel %" PRId64), id);
  return FALSE;
}

/* Runs an UPDATE on channel @id (with ?1 = id) that also bumps its version; binds up to 4 more
 * text parameters from @texts. */
static TocsinRelayChannel *
update_channel_row (TocsinRelayStore  *store,
                    gint64             id,
                    const char        *sql,
                    const char *const *texts,
                    guint              n_texts,
                    GError           **error)
{
  g_autoptr(Stmt) stmt = NULL;
  TocsinRelayChannel *channel;
  int rc;

  g_mutex_lock (&store->lock);
  stmt = prepare (store->db, sql, error);
  if (stmt == NULL)
    {
      g_mutex_unlock (&store->lock);
      return NULL;
    }
  sqlite3_bind_int64 (stmt, 1, id);
  for (guint i = 0; i < n_texts; i++)
    {
      if (texts[i])
        sqlite3_bind_text (stmt, i + 2, texts[i], -1, SQLITE_TRANSIENT);
      else
        sqlite3_bind_null (stmt, i + 2);
    }
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (store->db, rc, "changing a channel", error);
      g_mutex_unlock (&store->lock);
      return NULL;
    }
  if (sqlite3_changes (store->db) == 0)
    {
      g_mutex_unlock (&store->lock);
      not_found (id, error);
      return NULL;
    }
  channel = load_channel_locked (store, id);
  g_mutex_unlock (&store->lock);
  if (channel == NULL)
    not_found (id, error);
  return channel;
}

TocsinRelayChannel *
tocsin_relay_store_update_channel (TocsinRelayStore              *store,
                                   gint64                         id,
                                   const TocsinRelayChannelSpec  *spec,
                                   GError                       **error)
{
  g_autofree char *name = NULL, *actions = NULL;
  const char *texts[12];

  g_return_val_if_fail (store != NULL, NULL);
  g_return_val_if_fail (spec != NULL, NULL);

  if (!check_spec (spec, FALSE, error))
    return NULL;
  if (spec->actions != NULL && !(actions = tocsin_relay_actions_normalise (spec->actions, error)))
    return NULL;
  if (store->conninfo != NULL)
    {
      TocsinRelayChannelSpec normalised = *spec;

      normalised.actions = actions;
      PG_RETURN (store, TocsinRelayChannel *,
                 tocsin_relay_store_pg_update_channel (pg, id, &normalised, error));
    }
  name = spec->name ? g_strstrip (g_strdup (spec->name)) : NULL;
  texts[0] = name;
  texts[1] = spec->description;
  texts[2] = spec->title;
  texts[3] = spec->body;
  texts[4] = spec->link;
  texts[5] = spec->condition;
  texts[6] = spec->signature;
  texts[7] = spec->signature_secret;
  texts[8] = spec->signature_header;
  texts[9] = spec->set_paused ? (spec->paused ? "1" : "0") : NULL;
  texts[10] = actions;
  texts[11] = spec->forwards;
  return update_channel_row (store, id,
                             "UPDATE channels SET version = version + 1,"
                             " name = coalesce(?2, name),"
                             " description = coalesce(?3, description),"
                             " title = coalesce(?4, title),"
                             " body = coalesce(?5, body),"
                             " link = coalesce(?6, link),"
                             " condition = coalesce(?7, condition),"
                             " signature_scheme = coalesce(?8, signature_scheme),"
                             " signature_secret = coalesce(?9, signature_secret),"
                             " signature_header = coalesce(?10, signature_header),"
                             " paused = coalesce(CAST(?11 AS INTEGER), paused),"
                             " actions = coalesce(?12, actions),"
                             " forwards = coalesce(?13, forwards) WHERE id = ?1",
                             texts, G_N_ELEMENTS (texts), error);
}

static TocsinRelayChannel *
rotate (TocsinRelayStore  *store,
        gint64             id,
        const char        *column,
        GError           **error)
{
  g_autofree char *token = NULL, *hash = NULL, *sql = NULL;
  const char *texts[2];

  g_return_val_if_fail (store != NULL, NULL);

  PG_RETURN (store, TocsinRelayChannel *,
             column[0] == 't' ? tocsin_relay_store_pg_rotate_trigger (pg, id, error)
             : column[0] == 's' ? tocsin_relay_store_pg_rotate_subscribe (pg, id, error)
             : tocsin_relay_store_pg_rotate_email (pg, id, error));
  token = g_str_equal (column, "email") ? tocsin_token_new_mail (error) : tocsin_token_new (error);
  if (token == NULL)
    return NULL;
  hash = tocsin_token_hash (token);
  texts[0] = token;
  texts[1] = hash;
  sql = g_strdup_printf ("UPDATE channels SET version = version + 1, %s_token = ?2,"
                         " %s_hash = ?3 WHERE id = ?1", column, column);
  return update_channel_row (store, id, sql, texts, 2, error);
}

TocsinRelayChannel *
tocsin_relay_store_rotate_trigger (TocsinRelayStore  *store,
                                   gint64             id,
                                   GError           **error)
{
  return rotate (store, id, "trigger", error);
}

TocsinRelayChannel *
tocsin_relay_store_rotate_subscribe (TocsinRelayStore  *store,
                                     gint64             id,
                                     GError           **error)
{
  return rotate (store, id, "subscribe", error);
}

TocsinRelayChannel *
tocsin_relay_store_rotate_email (TocsinRelayStore  *store,
                                 gint64             id,
                                 GError           **error)
{
  return rotate (store, id, "email", error);
}

gboolean
tocsin_relay_store_delete_channel (TocsinRelayStore  *store,
                                   gint64             id,
                                   GError           **error)
{
  static const char *const sql[] = {
    "DELETE FROM messages WHERE channel_id = ?",
    "DELETE FROM dedup WHERE channel_id = ?",
    "DELETE FROM presence WHERE channel_id = ?",
    "DELETE FROM deliveries WHERE channel_id = ?",
    "DELETE FROM delivery_attempts WHERE channel_id = ?",
    "DELETE FROM channels WHERE id = ?",
  };
  gboolean found = FALSE;

  g_return_val_if_fail (store != NULL, FALSE);

  PG_RETURN (store, gboolean, tocsin_relay_store_pg_delete_channel (pg, id, error));
  g_mutex_lock (&store->lock);
  if (!exec_sql (store->db, "BEGIN IMMEDIATE", error))
    {
      g_mutex_unlock (&store->lock);
      return FALSE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (sql); i++)
    {
      g_autoptr(Stmt) stmt = prepare (store->db, sql[i], error);
      int rc;

      if (stmt == NULL)
        goto fail;
      sqlite3_bind_int64 (stmt, 1, id);
      rc = sqlite3_step (stmt);
      if (rc != SQLITE_DONE)
        {
          set_sqlite_error (store->db, rc, "deleting a channel", error);
          goto fail;
        }
      found = sqlite3_changes (store->db) > 0;
    }
  if (!exec_sql (store->db, "COMMIT", error))
    goto fail;
  tocsin_relay_channel_cache_remove (store->channels, id);
  /* Not needed for correctness (find_by_token checks the row), only to free the entries. */
  g_hash_table_remove_all (store->by_trigger);
  g_hash_table_remove_all (store->by_subscribe);
  g_mutex_unlock (&store->lock);
  return found ? TRUE : not_found (id, error);

fail:
  sqlite3_exec (store->db, "ROLLBACK", NULL, NULL, NULL);
  g_mutex_unlock (&store->lock);
  return FALSE;
}

/* ---- admin keys ---- */

char *
tocsin_relay_store_create_admin_key (TocsinRelayStore  *store,
                                     GError           **error)
{
  g_autofree char *key = NULL, *hash = NULL;
  g_autoptr(Stmt) stmt = NULL;
  int rc;

  g_return_val_if_fail (store != NULL, NULL);

  PG_RETURN (store, char *, tocsin_relay_store_pg_create_admin_key (pg, error));
  key = tocsin_token_new (error);
  if (key == NULL)
    return NULL;
  hash = tocsin_token_hash (key);

  g_mutex_lock (&store->lock);
  stmt = prepare (store->db, "INSERT INTO admin_keys (hash, created_at) VALUES (?, ?)", error);
  if (stmt == NULL)
    {
      g_mutex_unlock (&store->lock);
      return NULL;
    }
  sqlite3_bind_text (stmt, 1, hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (stmt, 2, g_get_real_time () / G_USEC_PER_SEC);
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_DONE)
    set_sqlite_error (store->db, rc, "storing a key", error);
  g_mutex_unlock (&store->lock);
  return rc == SQLITE_DONE ? g_steal_pointer (&key) : NULL;
}

gboolean
tocsin_relay_store_check_admin_key (TocsinRelayStore *store,
                                    const char       *key)
{
  g_autofree char *hash = NULL;
  g_autofree char *stored = NULL;
  g_autoptr(Stmt) stmt = NULL;

  g_return_val_if_fail (store != NULL, FALSE);

  PG_RETURN (store, gboolean,
             key != NULL && tocsin_relay_store_pg_check_admin_key (pg, key, &pg_error));
  hash = tocsin_token_hash (key ? key : "");
  g_mutex_lock (&store->lock);
  stmt = prepare (store->db, "SELECT hash FROM admin_keys WHERE hash = ?", NULL);
  if (stmt != NULL)
    {
      sqlite3_bind_text (stmt, 1, hash, -1, SQLITE_STATIC);
      if (sqlite3_step (stmt) == SQLITE_ROW)
        stored = g_strdup (column_text (stmt, 0));
    }
  g_mutex_unlock (&store->lock);
  return tocsin_token_equal (stored ? stored : "", hash) && stored != NULL && key != NULL;
}

/* ---- meta ---- */

gboolean
tocsin_relay_store_set_public_url (TocsinRelayStore  *store,
                                   const char        *public_url,
                                   GError           **error)
{
  g_autoptr(Stmt) stmt = NULL;
  int rc;

  g_return_val_if_fail (store != NULL, FALSE);
  g_return_val_if_fail (public_url != NULL, FALSE);

  PG_RETURN (store, gboolean, tocsin_relay_store_pg_set_public_url (pg, public_url, error));
  g_mutex_lock (&store->lock);
  stmt = prepare (store->db, "INSERT OR REPLACE INTO meta (key, value) VALUES ('public_url', ?)",
                  error);
  if (stmt == NULL)
    {
      g_mutex_unlock (&store->lock);
      return FALSE;
    }
  sqlite3_bind_text (stmt, 1, public_url, -1, SQLITE_STATIC);
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_DONE)
    set_sqlite_error (store->db, rc, "recording the public URL", error);
  g_mutex_unlock (&store->lock);
  return rc == SQLITE_DONE;
}

char *
tocsin_relay_store_dup_public_url (TocsinRelayStore *store)
{
  g_autoptr(Stmt) stmt = NULL;
  char *url = NULL;

  g_return_val_if_fail (store != NULL, NULL);

  PG_RETURN (store, char *, tocsin_relay_store_pg_dup_public_url (pg, &pg_error));
  g_mutex_lock (&store->lock);
  stmt = prepare (store->db, "SELECT value FROM meta WHERE key = 'public_url'", NULL);
  if (stmt != NULL && sqlite3_step (stmt) == SQLITE_ROW)
    url = g_strdup (column_text (stmt, 0));
  g_mutex_unlock (&store->lock);
  return url;
}

gboolean
tocsin_relay_store_set_meta (TocsinRelayStore  *store,
                             const char        *key,
                             const char        *value,
                             GError           **error)
{
  g_autoptr(Stmt) stmt = NULL;
  int rc;

  g_return_val_if_fail (store != NULL, FALSE);
  g_return_val_if_fail (key != NULL && value != NULL, FALSE);

  PG_RETURN (store, gboolean, tocsin_relay_store_pg_set_meta (pg, key, value, error));
  g_mutex_lock (&store->lock);
  stmt = prepare (store->db, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", error);
  if (stmt == NULL)
    {
      g_mutex_unlock (&store->lock);
      return FALSE;
    }
  sqlite3_bind_text (stmt, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 2, value, -1, SQLITE_STATIC);
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_DONE)
    set_sqlite_error (store->db, rc, "recording a setting", error);
  g_mutex_unlock (&store->lock);
  return rc == SQLITE_DONE;
}

gboolean
tocsin_relay_store_ping (TocsinRelayStore  *store,
                         GError           **error)
{
  g_autoptr(Stmt) stmt = NULL;
  int rc = SQLITE_ERROR;

  g_return_val_if_fail (store != NULL, FALSE);

  PG_RETURN (store, gboolean, tocsin_relay_store_pg_ping (pg, error));
  g_mutex_lock (&store->lock);
  stmt = prepare (store->db, "SELECT count(*) FROM meta", error);
  if (stmt != NULL)
    {
      rc = sqlite3_step (stmt);
      if (rc != SQLITE_ROW)
        set_sqlite_error (store->db, rc, "checking the database", error);
    }
  g_mutex_unlock (&store->lock);
  return rc == SQLITE_ROW;
}

char *
tocsin_relay_store_dup_meta (TocsinRelayStore *store,
                             const char       *key)
{
  g_autoptr(Stmt) stmt = NULL;
  char *value = NULL;

  g_return_val_if_fail (store != NULL, NULL);

  PG_RETURN (store, char *, tocsin_relay_store_pg_dup_meta (pg, key, &pg_error));
  g_mutex_lock (&store->lock);
  stmt = prepare (store->db, "SELECT value FROM meta WHERE key = ?", NULL);
  if (stmt != NULL)
    {
      sqlite3_bind_text (stmt, 1, key, -1, SQLITE_STATIC);
      if (sqlite3_step (stmt) == SQLITE_ROW)
        value = g_strdup (column_text (stmt, 0));
    }
  g_mutex_unlock (&store->lock);
  return value;
}

/* ---- replay ---- */

gboolean
tocsin_relay_store_replay (TocsinRelayStore       *store,
                           gint64                  channel_id,
                           gint64                  after_id,
                           TocsinRelayReplayFunc   func,
                           gpointer                user_data,
                           gint64                 *gap_from,
                           gint64                 *gap_to,
                           GError                **error)
{
  return tocsin_relay_store_replay_page (store, channel_id, after_id, 0, func, user_data,
                                         gap_from, gap_to, error);
}

void
tocsin_relay_replay_page_free (TocsinRelayReplayPage *page)
{
  if (page == NULL)
    return;
  g_array_unref (page->ids);
  g_ptr_array_unref (page->messages);
  g_free (page);
}

static TocsinRelayReplayPage *
replay_page_new (void)
{
  TocsinRelayReplayPage *page = g_new0 (TocsinRelayReplayPage, 1);

  page->ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  page->messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  return page;
}

/* Reads one page on @db, which the caller alone uses for now (the main connection under the
 * lock, or the reader thread's). */
static TocsinRelayReplayPage *
replay_read (TocsinRelayStore  *store,
             sqlite3           *db,
             GHashTable        *stmts,
             gint64             channel_id,
             gint64             after_id,
             guint              limit,
             GError           **error)
{
  g_autoptr(CachedStmt) stmt = NULL;
  g_autoptr(TocsinRelayReplayPage) page = replay_page_new ();
  gint64 cutoff_ms, last_id = 0, first_retained = 0;
  gboolean has_channel = FALSE;
  int rc;

  cutoff_ms = g_get_real_time () / 1000 - get_retention (store) * 1000;

  /* One read transaction, so that last_id and the rows agree. */
  if (!exec_cached (stmts, db, "BEGIN", error))
    return NULL;
  stmt = prepare_cached (stmts, db, "SELECT last_id FROM channels WHERE id = ?", error);
  if (stmt == NULL)
    goto fail;
  sqlite3_bind_int64 (stmt, 1, channel_id);
  if (sqlite3_step (stmt) == SQLITE_ROW)
    {
      has_channel = TRUE;
      last_id = sqlite3_column_int64 (stmt, 0);
    }
  g_clear_pointer (&stmt, stmt_release);
  if (!has_channel)
    {
      not_found (channel_id, error);
      goto fail;
    }

  stmt = prepare_cached (stmts, db,
                         /* "+time_ms": walk the primary key from the cursor (so LIMIT stops
                          * the read), never the time index. */
                         "SELECT id, data FROM messages WHERE channel_id = ? AND id > ?"
                         " AND +time_ms >= ? ORDER BY id LIMIT ?", error);
  if (stmt == NULL)
    goto fail;
  sqlite3_bind_int64 (stmt, 1, channel_id);
  sqlite3_bind_int64 (stmt, 2, MAX (after_id, 0));
  sqlite3_bind_int64 (stmt, 3, get_retention (store) > 0 ? cutoff_ms : G_MAXINT64);
  /* A negative LIMIT is no limit in SQLite. */
  sqlite3_bind_int64 (stmt, 4, limit > 0 ? (gint64) limit : -1);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      gint64 id = sqlite3_column_int64 (stmt, 0);

      if (first_retained == 0)
        first_retained = id;
      g_array_append_val (page->ids, id);
      g_ptr_array_add (page->messages, g_bytes_new (sqlite3_column_blob (stmt, 1),
                                                    sqlite3_column_bytes (stmt, 1)));
    }
  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (db, rc, "replaying messages", error);
      goto fail;
    }
  g_clear_pointer (&stmt, stmt_release);
  exec_cached (stmts, db, "COMMIT", NULL);

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
  g_clear_pointer (&stmt, stmt_release);
  sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
  return NULL;
}

gboolean
tocsin_relay_store_replay_page (TocsinRelayStore       *store,
                                gint64                  channel_id,
                                gint64                  after_id,
                                guint                   limit,
                                TocsinRelayReplayFunc   func,
                                gpointer                user_data,
                                gint64                 *gap_from,
                                gint64                 *gap_to,
                                GError                **error)
{
  g_autoptr(TocsinRelayReplayPage) page = NULL;

  g_return_val_if_fail (store != NULL, FALSE);
  g_return_val_if_fail (func != NULL, FALSE);

  if (gap_from)
    *gap_from = 0;
  if (gap_to)
    *gap_to = 0;

  /* Read under the lock, call @func without it: @func may well use the store. */
  if (store->conninfo != NULL)
    {
      TocsinRelayStorePg *pg = pg_enter (store);

      page = tocsin_relay_store_pg_replay_page (pg, channel_id, after_id, limit,
                                                get_retention (store), error);
      pg_leave (store, pg);
    }
  else
    {
      g_mutex_lock (&store->lock);
      page = replay_read (store, store->db, store->stmts, channel_id, after_id, limit, error);
      g_mutex_unlock (&store->lock);
    }
  if (page == NULL)
    return FALSE;

  if (gap_from)
    *gap_from = page->gap_from;
  if (gap_to)
    *gap_to = page->gap_to;
  for (guint i = 0; i < page->ids->len; i++)
    if (!func (g_array_index (page->ids, gint64, i), page->messages->pdata[i], user_data))
      break;
  return TRUE;
}

/* ---- the reader thread ---- */


static void
read_job_free (ReadJob *job)
{
  g_clear_object (&job->task);
  g_clear_pointer (&job->ids, g_array_unref);
  g_free (job);
}

static void
token_free (gpointer data)
{
  char *token = data;

  explicit_bzero (token, strlen (token));
  g_free (token);
}

static GHashTable *
tokens_read (sqlite3     *db,
             GHashTable  *stmts,
             GArray      *ids,
             GError     **error)
{
  g_autoptr(GHashTable) tokens = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                                        token_free);
  g_autoptr(CachedStmt) stmt = prepare_cached (stmts, db,
                                               "SELECT subscribe_token FROM channels WHERE id = ?",
                                               error);

  if (stmt == NULL)
    return NULL;
  for (guint i = 0; i < ids->len; i++)
    {
      gint64 id = g_array_index (ids, gint64, i);
      int rc;

      sqlite3_reset (stmt);
      sqlite3_bind_int64 (stmt, 1, id);
      rc = sqlite3_step (stmt);
      if (rc == SQLITE_ROW)
        g_hash_table_insert (tokens, g_memdup2 (&id, sizeof id),
                             g_strdup (column_text (stmt, 0)));
      else if (rc != SQLITE_DONE)
        {
          set_sqlite_error (db, rc, "checking subscribe tokens", error);
          return NULL;
        }
    }
  return g_steal_pointer (&tokens);
}

/* A JOB_CALL or READ_CALL: the synchronous API, on the main connection under its lock. */
static void
run_call (TocsinRelayStore         *store,
          GTask                    *task,
          TocsinRelayStoreCallFunc  func,
          gpointer                  data)
{
  g_autoptr(GError) error = NULL;

  if (func (store, data, &error))
    g_task_return_boolean (task, TRUE);
  else if (error != NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_boolean (task, FALSE);
}

static gpointer
reader_main (gpointer data)
{
  TocsinRelayStore *store = data;
  g_autoptr(GError) open_error = NULL;
  sqlite3 *db = open_connection (store->path, &open_error);
  GHashTable *stmts = stmt_cache_new ();

  /* This connection only reads; query_only makes sure of it. */
  if (db != NULL && !exec_sql (db, "PRAGMA query_only=1", &open_error))
    g_clear_pointer (&db, sqlite3_close);

  for (;;)
    {
      ReadJob *job = g_async_queue_pop (store->reads);
      g_autoptr(GError) error = NULL;

      if (job->kind == READ_STOP)
        {
          read_job_free (job);
          break;
        }
      if (g_task_return_error_if_cancelled (job->task))
        ;
      else if (job->kind == READ_CALL)
        run_call (store, job->task, job->call_func, job->call_data);
      else if (db == NULL)
        g_task_return_new_error (job->task, TOCSIN_RELAY_STORE_ERROR,
                                 TOCSIN_RELAY_STORE_ERROR_FAILED, "%s", open_error->message);
      else if (job->kind == READ_REPLAY)
        {
          TocsinRelayReplayPage *page = replay_read (store, db, stmts, job->channel_id,
                                                     job->after_id, job->limit, &error);

          if (page != NULL)
            g_task_return_pointer (job->task, page,
                                   (GDestroyNotify) tocsin_relay_replay_page_free);
          else
            g_task_return_error (job->task, g_steal_pointer (&error));
        }
      else
        {
          GHashTable *tokens = tokens_read (db, stmts, job->ids, &error);

          if (tokens != NULL)
            g_task_return_pointer (job->task, tokens, (GDestroyNotify) g_hash_table_unref);
          else
            g_task_return_error (job->task, g_steal_pointer (&error));
        }
      read_job_free (job);
    }
  g_hash_table_unref (stmts);
  sqlite3_close (db);
  return NULL;
}

/* The reader thread of a PostgreSQL store: the same jobs on its own handle. */
static gpointer
reader_main_pg (gpointer data)
{
  ThreadPg mine = { data, NULL };
  TocsinRelayStore *store = data;

  g_private_set (&thread_pg, &mine);
  for (;;)
    {
      ReadJob *job = g_async_queue_pop (store->reads);
      g_autoptr(GError) error = NULL;
      TocsinRelayStorePg *pg;

      if (job->kind == READ_STOP)
        {
          read_job_free (job);
          break;
        }
      pg_thread_connect (&mine);
      if (g_task_return_error_if_cancelled (job->task))
        ;
      else if (job->kind == READ_CALL)
        run_call (store, job->task, job->call_func, job->call_data);
      else if (job->kind == READ_REPLAY)
        {
          TocsinRelayReplayPage *page;

          pg = pg_enter (store);
          page = tocsin_relay_store_pg_replay_page (pg, job->channel_id, job->after_id,
                                                    job->limit, get_retention (store), &error);
          pg_leave (store, pg);
          if (page != NULL)
            g_task_return_pointer (job->task, page,
                                   (GDestroyNotify) tocsin_relay_replay_page_free);
          else
            g_task_return_error (job->task, g_steal_pointer (&error));
        }
      else
        {
          GHashTable *tokens;

          pg = pg_enter (store);
          tokens = tocsin_relay_store_pg_lookup_subscribe_tokens (pg, (gint64 *) job->ids->data,
                                                                  job->ids->len, &error);
          pg_leave (store, pg);
          if (tokens != NULL)
            g_task_return_pointer (job->task, tokens, (GDestroyNotify) g_hash_table_unref);
          else
            g_task_return_error (job->task, g_steal_pointer (&error));
        }
      read_job_free (job);
    }
  g_private_set (&thread_pg, NULL);
  tocsin_relay_store_pg_free (mine.pg);
  return NULL;
}

/* Started on first use: the command line never needs it. */
static void
reader_push (TocsinRelayStore *store,
             ReadJob          *job)
{
  g_mutex_lock (&store->reader_lock);
  if (store->reader == NULL)
    {
      store->reads = g_async_queue_new_full ((GDestroyNotify) read_job_free);
      store->reader = g_thread_new ("tocsin-store-reader",
                                    store->conninfo ? reader_main_pg : reader_main, store);
    }
  g_mutex_unlock (&store->reader_lock);
  g_async_queue_push (store->reads, job);
}

void
tocsin_relay_store_replay_page_async (TocsinRelayStore    *store,
                                      gint64               channel_id,
                                      gint64               after_id,
                                      guint                limit,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  ReadJob *job;

  g_return_if_fail (store != NULL);

  job = g_new0 (ReadJob, 1);
  job->kind = READ_REPLAY;
  job->channel_id = channel_id;
  job->after_id = after_id;
  job->limit = limit;
  job->task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (job->task, tocsin_relay_store_replay_page_async);
  reader_push (store, job);
}

TocsinRelayReplayPage *
tocsin_relay_store_replay_page_finish (TocsinRelayStore  *store,
                                       GAsyncResult      *result,
                                       GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
tocsin_relay_store_lookup_subscribe_tokens_async (TocsinRelayStore    *store,
                                                  const gint64        *ids,
                                                  guint                n_ids,
                                                  GCancellable        *cancellable,
                                                  GAsyncReadyCallback  callback,
                                                  gpointer             user_data)
{
  ReadJob *job;

  g_return_if_fail (store != NULL);

  job = g_new0 (ReadJob, 1);
  job->kind = READ_TOKENS;
  job->ids = g_array_sized_new (FALSE, FALSE, sizeof (gint64), n_ids);
  g_array_append_vals (job->ids, ids, n_ids);
  job->task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (job->task, tocsin_relay_store_lookup_subscribe_tokens_async);
  reader_push (store, job);
}

GHashTable *
tocsin_relay_store_lookup_subscribe_tokens_finish (TocsinRelayStore  *store,
                                                   GAsyncResult      *result,
                                                   GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- synchronous calls off the main loop ---- */

void
tocsin_relay_store_call_async (TocsinRelayStore         *store,
                               gboolean                  write,
                               TocsinRelayStoreCallFunc  func,
                               gpointer                  data,
                               GAsyncReadyCallback       callback,
                               gpointer                  user_data)
{
  GTask *task;

  g_return_if_fail (store != NULL && func != NULL);

  task = g_task_new (NULL, NULL, callback, user_data);
  g_task_set_source_tag (task, tocsin_relay_store_call_async);
  if (write)
    {
      Job *job = g_new0 (Job, 1);

      job->kind = JOB_CALL;
      job->task = task;
      job->call_func = func;
      job->call_data = data;
      g_async_queue_push (store->jobs, job);
    }
  else
    {
      ReadJob *job = g_new0 (ReadJob, 1);

      job->kind = READ_CALL;
      job->task = task;
      job->call_func = func;
      job->call_data = data;
      reader_push (store, job);
    }
}

gboolean
tocsin_relay_store_call_finish (TocsinRelayStore  *store,
                                GAsyncResult      *result,
                                GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- token lookups for the serving relay ---- */

typedef struct
{
  TocsinRelayTokenKind  kind;
  char                 *token;
  TocsinRelayChannel   *channel;   /* the reader thread's answer */
} FindChannel;

static void
find_channel_free (FindChannel *find)
{
  if (find->token)
    explicit_bzero (find->token, strlen (find->token));
  g_free (find->token);
  g_clear_pointer (&find->channel, tocsin_relay_channel_unref);
  g_free (find);
}

static gboolean
find_channel_run (TocsinRelayStore  *store,
                  gpointer           data,
                  GError           **error)
{
  FindChannel *find = data;

  /* Each is constant-time and does the same work for an unknown token (see find_by_token). */
  switch (find->kind)
    {
    case TOCSIN_RELAY_TOKEN_TRIGGER:
      find->channel = tocsin_relay_store_find_by_trigger_checked (store, find->token, error);
      break;
    case TOCSIN_RELAY_TOKEN_SUBSCRIBE:
      find->channel = tocsin_relay_store_find_by_subscribe_checked (store, find->token, error);
      break;
    case TOCSIN_RELAY_TOKEN_EMAIL:
      find->channel = tocsin_relay_store_find_by_email_checked (store, find->token, error);
      break;
    default:
      g_assert_not_reached ();
    }
  return *error == NULL;
}

static void
find_channel_done (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  FindChannel *find = g_task_get_task_data (task);
  GError *error = NULL;

  if (!tocsin_relay_store_call_finish (NULL, result, &error) && error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_steal_pointer (&find->channel),
                           (GDestroyNotify) tocsin_relay_channel_unref);
}

void
tocsin_relay_store_find_channel_async (TocsinRelayStore     *store,
                                       TocsinRelayTokenKind  kind,
                                       const char           *token,
                                       GAsyncReadyCallback   callback,
                                       gpointer              user_data)
{
  GTask *task;
  FindChannel *find;

  g_return_if_fail (store != NULL);

  task = g_task_new (NULL, NULL, callback, user_data);
  g_task_set_source_tag (task, tocsin_relay_store_find_channel_async);
  find = g_new0 (FindChannel, 1);
  find->kind = kind;
  find->token = g_strdup (token ? token : "");
  g_task_set_task_data (task, find, (GDestroyNotify) find_channel_free);
  tocsin_relay_store_call_async (store, FALSE, find_channel_run, find, find_channel_done, task);
}

TocsinRelayChannel *
tocsin_relay_store_find_channel_finish (TocsinRelayStore  *store,
                                        GAsyncResult      *result,
                                        GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) ==
                        tocsin_relay_store_find_channel_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- presence ---- */

void
tocsin_relay_store_note_subscriber (TocsinRelayStore *store,
                                    gint64            channel_id,
                                    guint64           conn_id,
                                    const char       *kind,
                                    const char       *peer,
                                    gboolean          connected)
{
  Job *job;

  g_return_if_fail (store != NULL);

  job = g_new0 (Job, 1);
  job->kind = JOB_PRESENCE;
  job->channel_id = channel_id;
  job->conn_id = conn_id;
  job->conn_kind = g_strdup (kind ? kind : "ws");
  job->peer = g_strdup (peer ? peer : "");
  job->connected = connected;
  job->time_ms = g_get_real_time () / 1000;
  g_async_queue_push (store->jobs, job);
}

static gboolean
pid_is_alive (gint64 pid)
{
  if (pid <= 0 || pid > G_MAXINT)
    return FALSE;
  return kill ((pid_t) pid, 0) == 0 || errno == EPERM;
}

JsonArray *
tocsin_relay_store_list_presence (TocsinRelayStore  *store,
                                  gint64             channel_id,
                                  GError           **error)
{
  g_autoptr(JsonArray) array = json_array_new ();
  g_autoptr(Stmt) stmt = NULL;
  int rc;

  g_return_val_if_fail (store != NULL, NULL);

  PG_RETURN (store, JsonArray *,
             tocsin_relay_store_pg_list_presence (pg, channel_id, g_get_real_time () / 1000,
                                                  error));
  g_mutex_lock (&store->lock);
  stmt = prepare (store->db,
                  "SELECT pid, kind, peer, connected_at FROM presence WHERE channel_id = ?"
                  " ORDER BY connected_at, conn_id", error);
  if (stmt == NULL)
    {
      g_mutex_unlock (&store->lock);
      return NULL;
    }
  sqlite3_bind_int64 (stmt, 1, channel_id);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      JsonObject *object;
      g_autofree char *time = NULL;

      /* A server killed with -9 could not say goodbye: skip its rows (pruning drops them). */
      if (!pid_is_alive (sqlite3_column_int64 (stmt, 0)))
        continue;
      object = json_object_new ();
      time = tocsin_format_time_ms (sqlite3_column_int64 (stmt, 3));
      json_object_set_string_member (object, "kind", column_text (stmt, 1));
      json_object_set_string_member (object, "peer", column_text (stmt, 2));
      json_object_set_string_member (object, "connectedAt", time);
      json_array_add_object_element (array, object);
    }
  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (store->db, rc, "listing subscribers", error);
      g_mutex_unlock (&store->lock);
      return NULL;
    }
  g_mutex_unlock (&store->lock);
  return g_steal_pointer (&array);
}

/* ---- rate limits ---- */

/* ---- the writer thread ---- */

static gboolean
step_done (sqlite3       *db,
           sqlite3_stmt  *stmt,
           const char    *what,
           GError       **error)
{
  int rc = sqlite3_step (stmt);

  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    return set_sqlite_error (db, rc, what, error);
  return TRUE;
}

/* The deliveries of one event (issue 15), inside the batch's transaction. */
static gboolean
insert_deliveries (sqlite3     *db,
                   GHashTable  *stmts,
                   gint64       channel_id,
                   gint64       message_id,
                   const void  *data,
                   gsize        length,
                   const char  *event,
                   const char  *user,
                   GPtrArray   *forwards,
                   GArray      *indices,
                   gint64       now_ms,
                   GError     **error)
{
  g_autofree char *vars = NULL;

  if (forwards == NULL || indices == NULL || indices->len == 0)
    return TRUE;
  {
    g_autoptr(GString) out = g_string_new ("{\"user\":");

    tocsin_json_append_string (out, user ? user : "");
    g_string_append_c (out, '}');
    vars = g_string_free (g_steal_pointer (&out), FALSE);
  }
  for (guint i = 0; i < indices->len; i++)
    {
      guint index = g_array_index (indices, guint, i);
      g_autoptr(CachedStmt) stmt = NULL;
      g_autofree char *token = NULL, *webhook_id = NULL;
      TocsinRequest *forward;

      if (index >= forwards->len)
        continue;
      forward = forwards->pdata[index];
      token = tocsin_token_new (error);
      if (token == NULL)
        return FALSE;
      webhook_id = g_strconcat ("msg_", token, NULL);
      stmt = prepare_cached (stmts, db,
                             "INSERT INTO deliveries (channel_id, message_id, forward,"
                             " forward_index, event, vars, message, webhook_id, policy, state,"
                             " attempts, next_at_ms, created_at_ms)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)", error);
      if (stmt == NULL)
        return FALSE;
      sqlite3_bind_int64 (stmt, 1, channel_id);
      sqlite3_bind_int64 (stmt, 2, message_id);
      sqlite3_bind_text (stmt, 3, tocsin_request_get_name (forward), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int (stmt, 4, (int) index);
      sqlite3_bind_text (stmt, 5, event, -1, SQLITE_STATIC);
      sqlite3_bind_text (stmt, 6, vars, -1, SQLITE_STATIC);
      if (data != NULL)
        sqlite3_bind_blob (stmt, 7, data, length, SQLITE_STATIC);
      else
        sqlite3_bind_null (stmt, 7);
      sqlite3_bind_text (stmt, 8, webhook_id, -1, SQLITE_STATIC);
      sqlite3_bind_text (stmt, 9, tocsin_request_get_policy (forward) == TOCSIN_REQUEST_POLICY_NONE
                                    ? "none" : "retry", -1, SQLITE_STATIC);
      sqlite3_bind_int64 (stmt, 10, now_ms);
      sqlite3_bind_int64 (stmt, 11, now_ms);
      if (!step_done (db, stmt, "queueing a delivery", error))
        return FALSE;
    }
  return TRUE;
}

/* One message, inside the batch's transaction. Returns the result, or NULL with @error. */
static TocsinRelayCommit *
write_message (sqlite3     *db,
               GHashTable  *stmts,
               Job         *job,
               GError     **error)
{
  g_autoptr(TocsinRelayCommit) commit = g_new0 (TocsinRelayCommit, 1);
  g_autoptr(CachedStmt) stmt = NULL;
  gint64 now_ms = job->message->time_ms;
  gsize length;
  char *data;

  if (job->key_hash != NULL)
    {
      stmt = prepare_cached (stmts, db,
                             "SELECT message_id, content_hash FROM dedup"
                             " WHERE channel_id = ? AND key_hash = ? AND time_ms >= ?", error);
      if (stmt == NULL)
        return NULL;
      sqlite3_bind_int64 (stmt, 1, job->channel_id);
      sqlite3_bind_text (stmt, 2, job->key_hash, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (stmt, 3, now_ms - TOCSIN_RELAY_DEDUP_WINDOW_SECONDS * 1000);
      if (sqlite3_step (stmt) == SQLITE_ROW)
        {
          gint64 previous = sqlite3_column_int64 (stmt, 0);

          if (g_strcmp0 (column_text (stmt, 1), job->content_hash) == 0)
            {
              commit->id = previous;
              commit->duplicate = TRUE;
              return g_steal_pointer (&commit);
            }
          commit->replaces = previous;
        }
      g_clear_pointer (&stmt, stmt_release);
    }

  stmt = prepare_cached (stmts, db,
                         "UPDATE channels SET last_id = last_id + 1 WHERE id = ? RETURNING last_id",
                         error);
  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, job->channel_id);
  if (sqlite3_step (stmt) != SQLITE_ROW)
    {
      if (sqlite3_errcode (db) != SQLITE_DONE && sqlite3_errcode (db) != SQLITE_OK)
        set_sqlite_error (db, sqlite3_errcode (db), "numbering a message", error);
      else
        g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND,
                     _("The channel was deleted"));
      return NULL;
    }
  commit->id = sqlite3_column_int64 (stmt, 0);
  g_clear_pointer (&stmt, stmt_release);

  job->message->id = commit->id;
  job->message->channel = job->channel_id;
  job->message->replaces = commit->replaces;
  data = tocsin_message_to_data (job->message, &length);
  commit->message = g_bytes_new_take (data, length);

  /* Live only: the id still counts up, but nothing is kept. */
  if (job->retention > 0)
    {
      stmt = prepare_cached (stmts, db,
                             "INSERT INTO messages (channel_id, id, time_ms, data)"
                             " VALUES (?, ?, ?, ?)", error);
      if (stmt == NULL)
        return NULL;
      sqlite3_bind_int64 (stmt, 1, job->channel_id);
      sqlite3_bind_int64 (stmt, 2, commit->id);
      sqlite3_bind_int64 (stmt, 3, now_ms);
      sqlite3_bind_blob (stmt, 4, data, length, SQLITE_STATIC);
      if (!step_done (db, stmt, "storing a message", error))
        return NULL;
      g_clear_pointer (&stmt, stmt_release);
    }

  if (job->key_hash != NULL)
    {
      stmt = prepare_cached (stmts, db,
                             "INSERT OR REPLACE INTO dedup (channel_id, key_hash, content_hash,"
                             " message_id, time_ms) VALUES (?, ?, ?, ?, ?)", error);
      if (stmt == NULL)
        return NULL;
      sqlite3_bind_int64 (stmt, 1, job->channel_id);
      sqlite3_bind_text (stmt, 2, job->key_hash, -1, SQLITE_STATIC);
      sqlite3_bind_text (stmt, 3, job->content_hash ? job->content_hash : "", -1, SQLITE_STATIC);
      sqlite3_bind_int64 (stmt, 4, commit->id);
      sqlite3_bind_int64 (stmt, 5, now_ms);
      if (!step_done (db, stmt, "remembering a dedup key", error))
        return NULL;
      g_clear_pointer (&stmt, stmt_release);
    }

  /* In the message's own transaction: a message that is durable has its deliveries queued. */
  if (!insert_deliveries (db, stmts, job->channel_id, commit->id, data, length, "message", "",
                          job->forwards, job->indices, g_get_real_time () / 1000, error))
    return NULL;
  return g_steal_pointer (&commit);
}

/* An event on a message already stored (an acknowledgement): its deliveries. */
static gboolean
write_enqueue (sqlite3     *db,
               GHashTable  *stmts,
               Job         *job,
               guint       *n_queued,
               GError     **error)
{
  gconstpointer data = NULL;
  gsize length = 0;

  if (job->message_data != NULL)
    data = g_bytes_get_data (job->message_data, &length);
  if (!insert_deliveries (db, stmts, job->channel_id, job->message_id, data, length, job->event,
                          job->user, job->forwards, job->indices, g_get_real_time () / 1000,
                          error))
    return FALSE;
  *n_queued = job->indices ? job->indices->len : 0;
  return TRUE;
}

static gboolean
write_presence (sqlite3     *db,
                GHashTable  *stmts,
                Job         *job,
                GError     **error)
{
  g_autoptr(CachedStmt) stmt = NULL;

  if (job->connected)
    {
      stmt = prepare_cached (stmts, db,
                             "INSERT OR REPLACE INTO presence (pid, conn_id, channel_id, kind,"
                             " peer, connected_at) VALUES (?, ?, ?, ?, ?, ?)", error);
      if (stmt == NULL)
        return FALSE;
      sqlite3_bind_text (stmt, 4, job->conn_kind, -1, SQLITE_STATIC);
      sqlite3_bind_text (stmt, 5, job->peer, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (stmt, 6, job->time_ms);
    }
  else
    {
      stmt = prepare_cached (stmts, db,
                             "DELETE FROM presence"
                             " WHERE pid = ? AND conn_id = ? AND channel_id = ?", error);
      if (stmt == NULL)
        return FALSE;
    }
  sqlite3_bind_int64 (stmt, 1, getpid ());
  sqlite3_bind_int64 (stmt, 2, (gint64) job->conn_id);
  sqlite3_bind_int64 (stmt, 3, job->channel_id);
  return step_done (db, stmt, "noting a subscriber", error);
}

static gboolean
prune (sqlite3  *db,
       gint64    retention,
       gint64    now_ms,
       GError  **error)
{
  g_autoptr(Stmt) stmt = NULL;
  g_autoptr(GArray) dead = g_array_new (FALSE, FALSE, sizeof (gint64));

  stmt = prepare (db, "DELETE FROM messages WHERE time_ms < ?", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, retention > 0 ? now_ms - retention * 1000 : G_MAXINT64);
  if (!step_done (db, stmt, "pruning messages", error))
    return FALSE;
  g_clear_pointer (&stmt, sqlite3_finalize);

  stmt = prepare (db, "DELETE FROM dedup WHERE time_ms < ?", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, now_ms - TOCSIN_RELAY_DEDUP_WINDOW_SECONDS * 1000);
  if (!step_done (db, stmt, "pruning dedup keys", error))
    return FALSE;
  g_clear_pointer (&stmt, sqlite3_finalize);

  /* The deliveries log (issue 15) is kept as long as messages, and at least an hour, so that a
   * live-only relay still shows what it just sent. Unfinished deliveries stay. */
  {
    gint64 cutoff = now_ms - MAX (retention, 3600) * 1000;

    stmt = prepare (db, "DELETE FROM delivery_attempts WHERE at_ms < ?", error);
    if (stmt == NULL)
      return FALSE;
    sqlite3_bind_int64 (stmt, 1, cutoff);
    if (!step_done (db, stmt, "pruning the deliveries log", error))
      return FALSE;
    g_clear_pointer (&stmt, sqlite3_finalize);
    stmt = prepare (db, "DELETE FROM deliveries WHERE state IN ('delivered', 'failed')"
                    " AND created_at_ms < ?", error);
    if (stmt == NULL)
      return FALSE;
    sqlite3_bind_int64 (stmt, 1, cutoff);
    if (!step_done (db, stmt, "pruning deliveries", error))
      return FALSE;
    g_clear_pointer (&stmt, sqlite3_finalize);
  }

  stmt = prepare (db, "SELECT DISTINCT pid FROM presence", error);
  if (stmt == NULL)
    return FALSE;
  while (sqlite3_step (stmt) == SQLITE_ROW)
    {
      gint64 pid = sqlite3_column_int64 (stmt, 0);

      if (!pid_is_alive (pid))
        g_array_append_val (dead, pid);
    }
  g_clear_pointer (&stmt, sqlite3_finalize);
  for (guint i = 0; i < dead->len; i++)
    {
      stmt = prepare (db, "DELETE FROM presence WHERE pid = ?", error);
      if (stmt == NULL)
        return FALSE;
      sqlite3_bind_int64 (stmt, 1, g_array_index (dead, gint64, i));
      if (!step_done (db, stmt, "pruning subscribers", error))
        return FALSE;
      g_clear_pointer (&stmt, sqlite3_finalize);
    }
  return TRUE;
}

gboolean
tocsin_relay_store_prune (TocsinRelayStore  *store,
                          gint64             now_ms,
                          GError           **error)
{
  gboolean ok;

  g_return_val_if_fail (store != NULL, FALSE);

  PG_RETURN (store, gboolean,
             tocsin_relay_store_pg_prune (pg, get_retention (store), now_ms, error));
  g_mutex_lock (&store->lock);
  ok = exec_sql (store->db, "BEGIN IMMEDIATE", error);
  if (ok)
    {
      ok = prune (store->db, get_retention (store), now_ms, error);
      if (ok)
        ok = exec_sql (store->db, "COMMIT", error);
      if (!ok)
        sqlite3_exec (store->db, "ROLLBACK", NULL, NULL, NULL);
    }
  g_mutex_unlock (&store->lock);
  return ok;
}

static gboolean write_delivery_ops (TocsinRelayStore  *store,
                                    sqlite3           *db,
                                    GHashTable        *stmts,
                                    GArray            *ops,
                                    GError           **error);

static void
run_batch (TocsinRelayStore *store,
           GPtrArray        *batch)
{
  g_autoptr(GPtrArray) results = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  sqlite3 *db = store->wdb;
  GHashTable *stmts = store->wstmts;
  gboolean committed;

  g_ptr_array_set_size (results, batch->len);

  if (!exec_cached (stmts, db, "BEGIN IMMEDIATE", &error))
    goto out;

  for (guint i = 0; i < batch->len; i++)
    {
      Job *job = batch->pdata[i];
      g_autoptr(GError) job_error = NULL;

      /* A savepoint per job: one bad job fails alone, not the whole batch. */
      if (job->kind == JOB_STOP || !exec_cached (stmts, db, "SAVEPOINT job", &job_error))
        continue;

      if (job->kind == JOB_COMMIT)
        {
          TocsinRelayCommit *commit = write_message (db, stmts, job, &job_error);

          if (commit)
            results->pdata[i] = commit;
        }
      else if (job->kind == JOB_PRESENCE)
        write_presence (db, stmts, job, &job_error);
      else if (job->kind == JOB_ENQUEUE)
        {
          guint n_queued = 0;

          if (write_enqueue (db, stmts, job, &n_queued, &job_error))
            results->pdata[i] = GUINT_TO_POINTER (n_queued + 1);
        }
      else if (job->kind == JOB_DELIVERIES)
        {
          if (write_delivery_ops (store, db, stmts, job->delivery_ops, &job_error))
            results->pdata[i] = GUINT_TO_POINTER (1);
        }

      if (job_error != NULL)
        {
          sqlite3_exec (db, "ROLLBACK TO job", NULL, NULL, NULL);
          if (job->task)
            {
              g_task_return_error (job->task, g_steal_pointer (&job_error));
              g_clear_object (&job->task);
            }
          else
            g_message ("%s", job_error->message);
        }
      exec_cached (stmts, db, "RELEASE job", NULL);
    }

  committed = exec_cached (stmts, db, "COMMIT", &error);
  if (!committed)
    sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);

out:
  for (guint i = 0; i < batch->len; i++)
    {
      Job *job = batch->pdata[i];
      TocsinRelayCommit *commit = results->pdata[i];

      if (job->kind == JOB_DELIVERIES)
        {
          /* results holds 1 on success here, not a commit. */
          if (job->task == NULL)
            continue;
          if (error == NULL && commit != NULL)
            g_task_return_boolean (job->task, TRUE);
          else
            g_task_return_new_error (job->task, TOCSIN_RELAY_STORE_ERROR,
                                     TOCSIN_RELAY_STORE_ERROR_FAILED, "%s",
                                     error ? error->message
                                           : _("The deliveries were not updated"));
          g_clear_object (&job->task);
          continue;
        }
      if (job->kind == JOB_ENQUEUE)
        {
          /* results holds n + 1 here, not a commit. */
          if (job->task == NULL)
            continue;
          if (error == NULL && commit != NULL)
            g_task_return_int (job->task, GPOINTER_TO_UINT (commit) - 1);
          else
            g_task_return_new_error (job->task, TOCSIN_RELAY_STORE_ERROR,
                                     TOCSIN_RELAY_STORE_ERROR_FAILED, "%s",
                                     error ? error->message
                                           : _("The deliveries were not queued"));
          g_clear_object (&job->task);
          continue;
        }
      if (job->task == NULL)
        {
          tocsin_relay_commit_free (commit);
          continue;
        }
      if (error == NULL && commit != NULL)
        g_task_return_pointer (job->task, commit, (GDestroyNotify) tocsin_relay_commit_free);
      else
        {
          tocsin_relay_commit_free (commit);
          g_task_return_new_error (job->task, TOCSIN_RELAY_STORE_ERROR,
                                   TOCSIN_RELAY_STORE_ERROR_FAILED, "%s",
                                   error ? error->message : _("The message was not stored"));
        }
      g_clear_object (&job->task);
    }
  if (error != NULL)
    g_message ("%s", error->message);
}

static gpointer
writer_main (gpointer data)
{
  TocsinRelayStore *store = data;
  gint64 next_prune = g_get_monotonic_time () + PRUNE_INTERVAL_US;
  gboolean stop = FALSE;

  while (!stop)
    {
      g_autoptr(GPtrArray) batch = g_ptr_array_new_with_free_func ((GDestroyNotify) job_free);
      Job *job;

      job = g_async_queue_timeout_pop (store->jobs, PRUNE_INTERVAL_US);
      if (job != NULL)
        {
          Job *call = NULL;

          /* Everything that queued up while the last batch was being written goes together, up
           * to a call, which runs after the batch and before what was queued behind it. */
          do
            {
              if (job->kind == JOB_CALL)
                {
                  call = job;
                  break;
                }
              g_ptr_array_add (batch, job);
              if (job->kind == JOB_STOP)
                stop = TRUE;
            }
          while (!stop && batch->len < MAX_BATCH && (job = g_async_queue_try_pop (store->jobs)));
          if (batch->len > 0)
            run_batch (store, batch);
          if (call != NULL)
            {
              run_call (store, call->task, call->call_func, call->call_data);
              job_free (call);
            }
        }

      if (g_get_monotonic_time () >= next_prune)
        {
          g_autoptr(GError) error = NULL;

          next_prune = g_get_monotonic_time () + PRUNE_INTERVAL_US;
          if (!exec_sql (store->wdb, "BEGIN IMMEDIATE", &error) ||
              !prune (store->wdb, get_retention (store), g_get_real_time () / 1000, &error) ||
              !exec_sql (store->wdb, "COMMIT", &error))
            {
              sqlite3_exec (store->wdb, "ROLLBACK", NULL, NULL, NULL);
              g_message ("Pruning failed: %s", error->message);
            }
        }
    }
  return NULL;
}

/* The writer thread's batch on PostgreSQL: the messages in one transaction (group commit:
 * tocsin_relay_store_pg_commit() numbers them under their channels' row locks), answered once
 * COMMIT has returned; then the other jobs in order, each a short transaction of its own (none of
 * them can depend on a message of the same batch: nobody has seen those ids yet). */
static void
run_batch_pg (TocsinRelayStore   *store,
              TocsinRelayStorePg *pg,
              GPtrArray          *batch)
{
  g_autoptr(GArray) writes = g_array_new (FALSE, TRUE, sizeof (TocsinRelayStorePgWrite));
  g_autoptr(GArray) jobs = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autofree TocsinRelayCommit **commits = NULL;
  g_autofree GError **errors = NULL;
  g_autoptr(GError) error = NULL;
  gboolean committed = TRUE;

  for (guint i = 0; i < batch->len; i++)
    {
      Job *job = batch->pdata[i];
      TocsinRelayStorePgWrite write = { 0 };

      if (job->kind != JOB_COMMIT)
        continue;
      write.channel_id = job->channel_id;
      write.message = job->message;
      write.key_hash = job->key_hash;
      write.content_hash = job->content_hash;
      write.retention = job->retention;
      write.forwards = job->forwards;
      write.indices = job->indices;
      g_array_append_val (writes, write);
      g_array_append_val (jobs, i);
    }
  commits = g_new0 (TocsinRelayCommit *, writes->len + 1);
  errors = g_new0 (GError *, writes->len + 1);
  if (writes->len > 0)
    committed = tocsin_relay_store_pg_commit (pg, (TocsinRelayStorePgWrite *) writes->data,
                                              writes->len, commits, errors, &error);
  for (guint w = 0; w < writes->len; w++)
    {
      Job *job = batch->pdata[g_array_index (jobs, guint, w)];

      if (!committed)
        g_task_return_new_error (job->task, TOCSIN_RELAY_STORE_ERROR, error->code, "%s",
                                 error->message);
      else if (errors[w] != NULL)
        g_task_return_error (job->task, g_steal_pointer (&errors[w]));
      else
        g_task_return_pointer (job->task, g_steal_pointer (&commits[w]),
                               (GDestroyNotify) tocsin_relay_commit_free);
      g_clear_object (&job->task);
    }
  if (!committed)
    g_message ("%s", error->message);

  for (guint i = 0; i < batch->len; i++)
    {
      Job *job = batch->pdata[i];
      g_autoptr(GError) job_error = NULL;

      if (job->kind == JOB_PRESENCE)
        {
          if (!tocsin_relay_store_pg_note_subscriber (pg, job->channel_id, job->conn_id,
                                                      job->conn_kind, job->peer, job->connected,
                                                      &job_error))
            g_message ("%s", job_error->message);
        }
      else if (job->kind == JOB_ENQUEUE)
        {
          gint n = tocsin_relay_store_pg_enqueue (pg, job->channel_id, job->message_id,
                                                  job->message_data, job->event, job->user,
                                                  job->forwards, job->indices, &job_error);

          if (n >= 0)
            g_task_return_int (job->task, n);
          else
            g_task_return_error (job->task, g_steal_pointer (&job_error));
          g_clear_object (&job->task);
        }
      else if (job->kind == JOB_DELIVERIES)
        {
          g_atomic_int_add (&store->delivery_writes_writer, (gint) job->delivery_ops->len);
          if (tocsin_relay_store_pg_write_deliveries (pg, job->delivery_ops, &job_error))
            g_task_return_boolean (job->task, TRUE);
          else
            g_task_return_error (job->task, g_steal_pointer (&job_error));
          g_clear_object (&job->task);
        }
    }
}

/* The writer thread of a PostgreSQL store: batches as on SQLite, this node's heartbeat every 30 s
 * and retention once a minute on whichever node takes the cluster's prune lock. */
static gpointer
writer_main_pg (gpointer data)
{
  ThreadPg mine = { data, NULL };
  TocsinRelayStore *store = data;
  gint64 next_prune = g_get_monotonic_time () + PRUNE_INTERVAL_US;
  gint64 next_beat = g_get_monotonic_time () + HEARTBEAT_INTERVAL_US;
  gboolean stop = FALSE;

  g_private_set (&thread_pg, &mine);
  while (!stop)
    {
      g_autoptr(GPtrArray) batch = g_ptr_array_new_with_free_func ((GDestroyNotify) job_free);
      gint64 wait = MAX (MIN (next_prune, next_beat) - g_get_monotonic_time (), 0);
      TocsinRelayStorePg *pg;
      Job *job;

      job = g_async_queue_timeout_pop (store->jobs, (guint64) wait);
      pg_thread_connect (&mine);
      if (job != NULL)
        {
          Job *call = NULL;

          do
            {
              if (job->kind == JOB_CALL)
                {
                  call = job;
                  break;
                }
              g_ptr_array_add (batch, job);
              if (job->kind == JOB_STOP)
                stop = TRUE;
            }
          while (!stop && batch->len < MAX_BATCH && (job = g_async_queue_try_pop (store->jobs)));
          if (batch->len > 0)
            {
              pg = pg_enter (store);
              run_batch_pg (store, pg, batch);
              pg_leave (store, pg);
            }
          if (call != NULL)
            {
              run_call (store, call->task, call->call_func, call->call_data);
              job_free (call);
            }
        }

      if (g_get_monotonic_time () >= next_beat)
        {
          g_autoptr(GError) error = NULL;

          next_beat = g_get_monotonic_time () + HEARTBEAT_INTERVAL_US;
          pg = pg_enter (store);
          if (!tocsin_relay_store_pg_heartbeat (pg, g_get_real_time () / 1000, &error))
            g_message ("%s", error->message);
          pg_leave (store, pg);
        }
      if (g_get_monotonic_time () >= next_prune)
        {
          g_autoptr(GError) error = NULL;

          next_prune = g_get_monotonic_time () + PRUNE_INTERVAL_US;
          pg = pg_enter (store);
          if (!tocsin_relay_store_pg_prune_exclusive (pg, get_retention (store),
                                                      g_get_real_time () / 1000,
                                                      PRUNE_INTERVAL_US / 1000, NULL, &error))
            g_message ("Pruning failed: %s", error->message);
          pg_leave (store, pg);
        }
    }
  g_private_set (&thread_pg, NULL);
  tocsin_relay_store_pg_free (mine.pg);
  return NULL;
}

void
tocsin_relay_store_commit_async (TocsinRelayStore    *store,
                                 gint64               channel_id,
                                 TocsinMessage       *message,
                                 const char          *dedup_key_hash,
                                 const char          *content_hash,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  tocsin_relay_store_commit_with_forwards_async (store, channel_id, message, dedup_key_hash,
                                                 content_hash, NULL, NULL, callback, user_data);
}

void
tocsin_relay_store_commit_with_forwards_async (TocsinRelayStore    *store,
                                               gint64               channel_id,
                                               TocsinMessage       *message,
                                               const char          *dedup_key_hash,
                                               const char          *content_hash,
                                               GPtrArray           *forwards,
                                               GArray              *indices,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data)
{
  Job *job;

  g_return_if_fail (store != NULL);
  g_return_if_fail (message != NULL);

  job = g_new0 (Job, 1);
  job->kind = JOB_COMMIT;
  job->channel_id = channel_id;
  job->message = message;
  job->key_hash = g_strdup (dedup_key_hash);
  job->content_hash = g_strdup (content_hash);
  job->retention = get_retention (store);
  if (forwards != NULL && indices != NULL && indices->len > 0)
    {
      job->forwards = g_ptr_array_ref (forwards);
      job->indices = g_array_ref (indices);
    }
  job->task = g_task_new (NULL, NULL, callback, user_data);
  g_task_set_source_tag (job->task, tocsin_relay_store_commit_async);
  g_async_queue_push (store->jobs, job);
}

TocsinRelayCommit *
tocsin_relay_store_commit_finish (TocsinRelayStore  *store,
                                  GAsyncResult      *result,
                                  GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- deliveries (issue 15) ----
 *
 * Queued by the writer thread (with their message, or JOB_ENQUEUE); the sender
 * (tocsin-relay-forwards.c) reads the due ones with short indexed SELECTs on the main
 * connection (no transaction of its own; WAL readers wait for no writer) and moves them through
 * the writer thread (JOB_DELIVERIES, tocsin_relay_store_write_deliveries_async()): an attempt's
 * start, the held state and an attempt's record are group-committed there, never on the main
 * loop. The synchronous calls below remain for tests and the owner API's "retry now". */

static const char *const delivery_states[] = { "pending", "delivered", "failed", "held" };

const char *
tocsin_relay_delivery_state_to_string (TocsinRelayDeliveryState state)
{
  g_return_val_if_fail ((guint) state < G_N_ELEMENTS (delivery_states), "pending");
  return delivery_states[state];
}

static TocsinRelayDeliveryState
delivery_state_from_string (const char *text)
{
  for (guint i = 0; i < G_N_ELEMENTS (delivery_states); i++)
    if (g_strcmp0 (text, delivery_states[i]) == 0)
      return i;
  return TOCSIN_RELAY_DELIVERY_PENDING;
}

void
tocsin_relay_delivery_free (TocsinRelayDelivery *delivery)
{
  if (delivery == NULL)
    return;
  g_free (delivery->forward);
  g_free (delivery->event);
  g_free (delivery->user);
  g_free (delivery->webhook_id);
  g_clear_pointer (&delivery->message, g_bytes_unref);
  g_free (delivery);
}

#define DELIVERY_COLUMNS \
  "id, channel_id, message_id, forward, forward_index, event, vars, webhook_id, policy, state, " \
  "attempts, next_at_ms, created_at_ms, message"

static TocsinRelayDelivery *
delivery_from_row (sqlite3_stmt *stmt,
                   gboolean      with_message)
{
  TocsinRelayDelivery *delivery = g_new0 (TocsinRelayDelivery, 1);
  const char *vars = column_text (stmt, 6);
  g_autoptr(JsonObject) object = tocsin_json_parse_object (vars, strlen (vars), 4096, 4, NULL);

  delivery->id = sqlite3_column_int64 (stmt, 0);
  delivery->channel_id = sqlite3_column_int64 (stmt, 1);
  delivery->message_id = sqlite3_column_int64 (stmt, 2);
  delivery->forward = g_strdup (column_text (stmt, 3));
  delivery->forward_index = (guint) sqlite3_column_int (stmt, 4);
  delivery->event = g_strdup (column_text (stmt, 5));
  delivery->user = g_strdup (object && json_object_has_member (object, "user")
                               ? json_object_get_string_member_with_default (object, "user", "")
                               : "");
  delivery->webhook_id = g_strdup (column_text (stmt, 7));
  delivery->retry = !g_str_equal (column_text (stmt, 8), "none");
  delivery->state = delivery_state_from_string (column_text (stmt, 9));
  delivery->attempts = (guint) sqlite3_column_int (stmt, 10);
  delivery->next_at_ms = sqlite3_column_int64 (stmt, 11);
  delivery->created_at_ms = sqlite3_column_int64 (stmt, 12);
  if (with_message && sqlite3_column_type (stmt, 13) == SQLITE_BLOB)
    delivery->message = g_bytes_new (sqlite3_column_blob (stmt, 13),
                                     sqlite3_column_bytes (stmt, 13));
  return delivery;
}

void
tocsin_relay_store_enqueue_async (TocsinRelayStore    *store,
                                  gint64               channel_id,
                                  gint64               message_id,
                                  GBytes              *message,
                                  const char          *event,
                                  const char          *user,
                                  GPtrArray           *forwards,
                                  GArray              *indices,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  Job *job;

  g_return_if_fail (store != NULL);
  g_return_if_fail (event != NULL && forwards != NULL && indices != NULL);

  job = g_new0 (Job, 1);
  job->kind = JOB_ENQUEUE;
  job->channel_id = channel_id;
  job->message_id = message_id;
  job->message_data = message ? g_bytes_ref (message) : NULL;
  job->event = g_strdup (event);
  job->user = g_strdup (user);
  job->forwards = g_ptr_array_ref (forwards);
  job->indices = g_array_ref (indices);
  job->task = g_task_new (NULL, NULL, callback, user_data);
  g_task_set_source_tag (job->task, tocsin_relay_store_enqueue_async);
  g_async_queue_push (store->jobs, job);
}

guint
tocsin_relay_store_enqueue_finish (TocsinRelayStore  *store,
                                   GAsyncResult      *result,
                                   GError           **error)
{
  gssize n;

  g_return_val_if_fail (g_task_is_valid (result, NULL), 0);
  n = g_task_propagate_int (G_TASK (result), error);
  return n < 0 ? 0 : (guint) n;
}

GPtrArray *
tocsin_relay_store_due_deliveries (TocsinRelayStore  *store,
                                   gint64             now_ms,
                                   guint              limit,
                                   GError           **error)
{
  g_autoptr(GPtrArray) due = g_ptr_array_new_with_free_func (
    (GDestroyNotify) tocsin_relay_delivery_free);
  g_autoptr(CachedStmt) stmt = NULL;
  int rc;

  g_return_val_if_fail (store != NULL, NULL);

  PG_RETURN (store, GPtrArray *,
             tocsin_relay_store_pg_due_deliveries (pg, now_ms, limit, error));
  g_mutex_lock (&store->lock);
  stmt = prepare_cached (store->stmts, store->db,
                         "SELECT " DELIVERY_COLUMNS " FROM deliveries"
                         " WHERE next_at_ms <= ? AND state IN ('pending', 'held')"
                         " ORDER BY next_at_ms, id LIMIT ?", error);
  if (stmt == NULL)
    {
      g_mutex_unlock (&store->lock);
      return NULL;
    }
  sqlite3_bind_int64 (stmt, 1, now_ms);
  sqlite3_bind_int (stmt, 2, (int) MIN (limit, G_MAXINT));
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (due, delivery_from_row (stmt, TRUE));
  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (store->db, rc, "reading due deliveries", error);
      g_clear_pointer (&stmt, stmt_release);
      g_mutex_unlock (&store->lock);
      return NULL;
    }
  g_clear_pointer (&stmt, stmt_release);
  g_mutex_unlock (&store->lock);
  return g_steal_pointer (&due);
}

gint64
tocsin_relay_store_next_delivery_at (TocsinRelayStore *store)
{
  g_autoptr(CachedStmt) stmt = NULL;
  gint64 next = 0;

  g_return_val_if_fail (store != NULL, 0);

  PG_RETURN (store, gint64, tocsin_relay_store_pg_next_delivery_at (pg, &pg_error));
  g_mutex_lock (&store->lock);
  stmt = prepare_cached (store->stmts, store->db,
                         "SELECT min(next_at_ms) FROM deliveries"
                         " WHERE next_at_ms IS NOT NULL AND state IN ('pending', 'held')", NULL);
  if (stmt != NULL && sqlite3_step (stmt) == SQLITE_ROW &&
      sqlite3_column_type (stmt, 0) != SQLITE_NULL)
    next = MAX (sqlite3_column_int64 (stmt, 0), 1);
  g_clear_pointer (&stmt, stmt_release);
  g_mutex_unlock (&store->lock);
  return next;
}

/* Runs @sql (an UPDATE with ?1 = the delivery's id and up to two more integers) on @db; the
 * caller holds what guards @db. */
static gboolean
delivery_update (sqlite3     *db,
                 GHashTable  *stmts,
                 const char  *sql,
                 gint64       id,
                 const char  *text,
                 gint64       value,
                 guint       *returned,
                 GError     **error)
{
  g_autoptr(CachedStmt) stmt = NULL;
  int rc;

  stmt = prepare_cached (stmts, db, sql, error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id);
  if (sqlite3_bind_parameter_count (stmt) >= 2)
    sqlite3_bind_text (stmt, 2, text, -1, SQLITE_STATIC);
  if (sqlite3_bind_parameter_count (stmt) >= 3)
    {
      if (value > 0)
        sqlite3_bind_int64 (stmt, 3, value);
      else
        sqlite3_bind_null (stmt, 3);
    }
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW && returned != NULL)
    {
      *returned = (guint) sqlite3_column_int (stmt, 0);
      /* Run a RETURNING statement to its end, so that the change is made. */
      while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
        ;
      if (rc == SQLITE_DONE)
        rc = SQLITE_ROW;
    }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    {
      set_sqlite_error (db, rc, "updating a delivery", error);
      return FALSE;
    }
  if (returned != NULL && rc != SQLITE_ROW)
    {
      g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND,
                   _("There is no delivery %" PRId64), (int64_t) id);
      return FALSE;
    }
  return TRUE;
}

static gboolean
update_delivery (TocsinRelayStore  *store,
                 const char        *sql,
                 gint64             id,
                 const char        *text,
                 gint64             value,
                 guint             *returned,
                 GError           **error)
{
  gboolean ok;

  g_atomic_int_inc (&store->delivery_writes_main);
  g_mutex_lock (&store->lock);
  ok = delivery_update (store->db, store->stmts, sql, id, text, value, returned, error);
  g_mutex_unlock (&store->lock);
  return ok;
}

/* Durable before the request leaves: after a crash, this attempt is known to have started.
 * Only a delivery that is waiting can be started: another server process on the same data
 * dir that took it first leaves none here (NOT_FOUND). */
#define START_ATTEMPT_SQL \
  "UPDATE deliveries SET attempts = attempts + 1, next_at_ms = NULL," \
  " state = 'pending' WHERE id = ?1 AND next_at_ms IS NOT NULL" \
  " AND state IN ('pending', 'held') RETURNING attempts"
#define SET_STATE_SQL "UPDATE deliveries SET state = ?2, next_at_ms = ?3 WHERE id = ?1"

gboolean
tocsin_relay_store_start_attempt (TocsinRelayStore  *store,
                                  gint64             delivery_id,
                                  guint             *attempt,
                                  GError           **error)
{
  g_return_val_if_fail (store != NULL && attempt != NULL, FALSE);

  if (store->conninfo != NULL)
    g_atomic_int_inc (&store->delivery_writes_main);
  PG_RETURN (store, gboolean,
             tocsin_relay_store_pg_start_attempt (pg, delivery_id, attempt, error));
  return update_delivery (store, START_ATTEMPT_SQL, delivery_id, NULL, 0, attempt, error);
}

gboolean
tocsin_relay_store_set_delivery_state (TocsinRelayStore          *store,
                                       gint64                     delivery_id,
                                       TocsinRelayDeliveryState   state,
                                       gint64                     next_at_ms,
                                       GError                   **error)
{
  g_return_val_if_fail (store != NULL, FALSE);

  if (store->conninfo != NULL)
    g_atomic_int_inc (&store->delivery_writes_main);
  PG_RETURN (store, gboolean,
             tocsin_relay_store_pg_set_delivery_state (pg, delivery_id, state, next_at_ms,
                                                       error));
  return update_delivery (store, SET_STATE_SQL, delivery_id,
                          tocsin_relay_delivery_state_to_string (state), next_at_ms, NULL, error);
}

/* The attempt's record and the delivery's new state, inside the caller's transaction. */
static gboolean
delivery_finish (sqlite3                         *db,
                 GHashTable                      *stmts,
                 gint64                           delivery_id,
                 const TocsinRelayAttemptRecord  *record,
                 TocsinRelayDeliveryState         state,
                 gint64                           next_at_ms,
                 GError                         **error)
{
  g_autoptr(CachedStmt) stmt = NULL;

  stmt = prepare_cached (stmts, db,
                         "INSERT INTO delivery_attempts (delivery_id, channel_id, attempt, at_ms,"
                         " url, status, error, duration_ms, answer_start, outcome,"
                         " next_retry_at_ms) SELECT id, channel_id, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                         " ?9, ?10 FROM deliveries WHERE id = ?1", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, delivery_id);
  sqlite3_bind_int (stmt, 2, (int) record->attempt);
  sqlite3_bind_int64 (stmt, 3, record->at_ms);
  sqlite3_bind_text (stmt, 4, record->url ? record->url : "", -1, SQLITE_STATIC);
  sqlite3_bind_int (stmt, 5, (int) record->status);
  if (record->error != NULL)
    sqlite3_bind_text (stmt, 6, record->error, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (stmt, 7, record->duration_ms);
  sqlite3_bind_text (stmt, 8, record->answer_start ? record->answer_start : "", -1,
                     SQLITE_STATIC);
  sqlite3_bind_text (stmt, 9, record->outcome, -1, SQLITE_STATIC);
  if (record->next_retry_at_ms > 0)
    sqlite3_bind_int64 (stmt, 10, record->next_retry_at_ms);
  if (!step_done (db, stmt, "logging an attempt", error))
    return FALSE;
  g_clear_pointer (&stmt, stmt_release);

  /* A finished delivery keeps its copy of the message until it is pruned: "retry" needs it. */
  stmt = prepare_cached (stmts, db, SET_STATE_SQL, error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, delivery_id);
  sqlite3_bind_text (stmt, 2, tocsin_relay_delivery_state_to_string (state), -1, SQLITE_STATIC);
  if (next_at_ms > 0)
    sqlite3_bind_int64 (stmt, 3, next_at_ms);
  return step_done (db, stmt, "updating a delivery", error);
}

gboolean
tocsin_relay_store_finish_attempt (TocsinRelayStore                *store,
                                   gint64                           delivery_id,
                                   const TocsinRelayAttemptRecord  *record,
                                   TocsinRelayDeliveryState         state,
                                   gint64                           next_at_ms,
                                   GError                         **error)
{
  gboolean ok = FALSE;

  g_return_val_if_fail (store != NULL && record != NULL, FALSE);

  g_atomic_int_inc (&store->delivery_writes_main);
  PG_RETURN (store, gboolean,
             tocsin_relay_store_pg_finish_attempt (pg, delivery_id, record, state, next_at_ms,
                                                   error));
  g_mutex_lock (&store->lock);
  if (exec_cached (store->stmts, store->db, "BEGIN IMMEDIATE", error))
    {
      ok = delivery_finish (store->db, store->stmts, delivery_id, record, state, next_at_ms,
                            error) &&
           exec_cached (store->stmts, store->db, "COMMIT", error);
      if (!ok)
        sqlite3_exec (store->db, "ROLLBACK", NULL, NULL, NULL);
    }
  g_mutex_unlock (&store->lock);
  return ok;
}

static void
delivery_op_clear (TocsinRelayDeliveryOp *op)
{
  g_free (op->url);
  g_free (op->error);
  g_free (op->answer_start);
  g_free (op->outcome);
}

GArray *
tocsin_relay_delivery_ops_new (void)
{
  GArray *ops = g_array_new (FALSE, TRUE, sizeof (TocsinRelayDeliveryOp));

  g_array_set_clear_func (ops, (GDestroyNotify) delivery_op_clear);
  return ops;
}

TocsinRelayDeliveryOp *
tocsin_relay_delivery_ops_add (GArray                    *ops,
                               TocsinRelayDeliveryOpKind  kind,
                               gint64                     delivery_id)
{
  TocsinRelayDeliveryOp *op;

  g_return_val_if_fail (ops != NULL, NULL);

  g_array_set_size (ops, ops->len + 1);
  op = &g_array_index (ops, TocsinRelayDeliveryOp, ops->len - 1);
  op->kind = kind;
  op->delivery_id = delivery_id;
  return op;
}

/* The writer thread's half of tocsin_relay_store_write_deliveries_async(). */
static gboolean
write_delivery_ops (TocsinRelayStore  *store,
                    sqlite3           *db,
                    GHashTable        *stmts,
                    GArray            *ops,
                    GError           **error)
{
  /* The point of this path (issue 17): the relay's main loop never waits for these. */
  g_assert (g_thread_self () == store->writer);

  for (guint i = 0; i < ops->len; i++)
    {
      TocsinRelayDeliveryOp *op = &g_array_index (ops, TocsinRelayDeliveryOp, i);
      TocsinRelayAttemptRecord record = { 0 };
      g_autoptr(GError) local_error = NULL;

      g_atomic_int_inc (&store->delivery_writes_writer);
      switch (op->kind)
        {
        case TOCSIN_RELAY_DELIVERY_OP_STATE:
          if (!delivery_update (db, stmts, SET_STATE_SQL, op->delivery_id,
                                tocsin_relay_delivery_state_to_string (op->state),
                                op->next_at_ms, NULL, error))
            return FALSE;
          continue;
        case TOCSIN_RELAY_DELIVERY_OP_START:
        case TOCSIN_RELAY_DELIVERY_OP_UNSENDABLE:
          op->attempt = 0;
          if (!delivery_update (db, stmts, START_ATTEMPT_SQL, op->delivery_id, NULL, 0,
                                &op->attempt, &local_error))
            {
              op->attempt = 0;
              /* Not waiting (taken by another server process, finished, gone): not ours. */
              if (g_error_matches (local_error, TOCSIN_RELAY_STORE_ERROR,
                                   TOCSIN_RELAY_STORE_ERROR_NOT_FOUND))
                continue;
              g_propagate_error (error, g_steal_pointer (&local_error));
              return FALSE;
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
      if (!delivery_finish (db, stmts, op->delivery_id, &record, op->state, op->next_at_ms,
                            error))
        return FALSE;
    }
  return TRUE;
}

void
tocsin_relay_store_write_deliveries_async (TocsinRelayStore    *store,
                                           GArray              *ops,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data)
{
  Job *job;

  g_return_if_fail (store != NULL && ops != NULL);

  job = g_new0 (Job, 1);
  job->kind = JOB_DELIVERIES;
  job->delivery_ops = g_array_ref (ops);
  job->task = g_task_new (NULL, NULL, callback, user_data);
  g_task_set_source_tag (job->task, tocsin_relay_store_write_deliveries_async);
  g_async_queue_push (store->jobs, job);
}

gboolean
tocsin_relay_store_write_deliveries_finish (TocsinRelayStore  *store,
                                            GAsyncResult      *result,
                                            GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

void
tocsin_relay_store_delivery_write_counts (TocsinRelayStore *store,
                                          guint            *on_main,
                                          guint            *on_writer)
{
  g_return_if_fail (store != NULL);

  if (on_main != NULL)
    *on_main = (guint) g_atomic_int_get (&store->delivery_writes_main);
  if (on_writer != NULL)
    *on_writer = (guint) g_atomic_int_get (&store->delivery_writes_writer);
}

guint
tocsin_relay_store_recover_deliveries (TocsinRelayStore  *store,
                                       gint64             now_ms,
                                       GError           **error)
{
  g_autoptr(Stmt) stmt = NULL;
  guint changed = 0;
  int rc;

  g_return_val_if_fail (store != NULL, 0);

  PG_RETURN (store, guint,
             MAX (tocsin_relay_store_pg_recover_deliveries (pg, now_ms, error), 0));
  g_mutex_lock (&store->lock);
  /* An attempt in flight at a crash: its answer is unknown. With the retry policy it is sent
   * again as the next attempt (attempts already counts it), with the same webhook-id, so a
   * receiver sees the resend for what it is; with policy none (one attempt) it ends failed. */
  stmt = prepare (store->db,
                  "UPDATE deliveries SET state = CASE policy WHEN 'none' THEN 'failed'"
                  " ELSE 'pending' END, next_at_ms = CASE policy WHEN 'none' THEN NULL"
                  " ELSE ?1 END WHERE next_at_ms IS NULL AND state IN ('pending', 'held')",
                  error);
  if (stmt != NULL)
    {
      sqlite3_bind_int64 (stmt, 1, now_ms);
      rc = sqlite3_step (stmt);
      if (rc != SQLITE_DONE)
        set_sqlite_error (store->db, rc, "recovering deliveries", error);
      else
        changed = (guint) sqlite3_changes (store->db);
    }
  g_mutex_unlock (&store->lock);
  return changed;
}

TocsinRelayDelivery *
tocsin_relay_store_get_delivery (TocsinRelayStore  *store,
                                 gint64             delivery_id,
                                 GError           **error)
{
  g_autoptr(CachedStmt) stmt = NULL;
  TocsinRelayDelivery *delivery = NULL;

  g_return_val_if_fail (store != NULL, NULL);

  PG_RETURN (store, TocsinRelayDelivery *,
             tocsin_relay_store_pg_get_delivery (pg, delivery_id, error));
  g_mutex_lock (&store->lock);
  stmt = prepare_cached (store->stmts, store->db,
                         "SELECT " DELIVERY_COLUMNS " FROM deliveries WHERE id = ?", error);
  if (stmt != NULL)
    {
      sqlite3_bind_int64 (stmt, 1, delivery_id);
      if (sqlite3_step (stmt) == SQLITE_ROW)
        delivery = delivery_from_row (stmt, TRUE);
      else
        g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND,
                     _("There is no delivery %" PRId64), (int64_t) delivery_id);
      g_clear_pointer (&stmt, stmt_release);
    }
  g_mutex_unlock (&store->lock);
  return delivery;
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
tocsin_relay_delivery_to_json (const TocsinRelayDelivery *delivery)
{
  JsonObject *object = json_object_new ();

  g_return_val_if_fail (delivery != NULL, object);

  json_object_set_int_member (object, "id", delivery->id);
  json_object_set_string_member (object, "webhook_id", delivery->webhook_id);
  json_object_set_string_member (object, "event", delivery->event);
  json_object_set_string_member (object, "forward", delivery->forward);
  json_object_set_int_member (object, "message_id", delivery->message_id);
  if (delivery->user != NULL && *delivery->user != '\0')
    json_object_set_string_member (object, "user", delivery->user);
  json_object_set_string_member (object, "state",
                                 tocsin_relay_delivery_state_to_string (delivery->state));
  json_object_set_int_member (object, "attempts", delivery->attempts);
  set_time_or_null (object, "next_attempt_at",
                    delivery->state == TOCSIN_RELAY_DELIVERY_PENDING ||
                    delivery->state == TOCSIN_RELAY_DELIVERY_HELD ? delivery->next_at_ms : 0);
  set_time_or_null (object, "created_at", delivery->created_at_ms);
  return object;
}

JsonObject *
tocsin_relay_store_list_deliveries (TocsinRelayStore  *store,
                                    gint64             channel_id,
                                    guint              limit,
                                    GError           **error)
{
  g_autoptr(JsonObject) reply = json_object_new ();
  JsonArray *deliveries = json_array_new ();
  JsonArray *attempts = json_array_new ();
  g_autoptr(Stmt) stmt = NULL;
  gint64 oldest = G_MAXINT64;
  int rc;

  g_return_val_if_fail (store != NULL, NULL);

  if (store->conninfo != NULL)
    {
      json_array_unref (deliveries);
      json_array_unref (attempts);
    }
  PG_RETURN (store, JsonObject *,
             tocsin_relay_store_pg_list_deliveries (pg, channel_id, limit, error));
  json_object_set_array_member (reply, "deliveries", deliveries);
  json_object_set_array_member (reply, "attempts", attempts);
  g_mutex_lock (&store->lock);
  stmt = prepare (store->db, "SELECT " DELIVERY_COLUMNS " FROM deliveries"
                  " WHERE channel_id = ? ORDER BY id DESC LIMIT ?", error);
  if (stmt == NULL)
    goto fail;
  sqlite3_bind_int64 (stmt, 1, channel_id);
  sqlite3_bind_int (stmt, 2, (int) MIN (limit, G_MAXINT));
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      g_autoptr(TocsinRelayDelivery) delivery = delivery_from_row (stmt, FALSE);

      oldest = MIN (oldest, delivery->id);
      json_array_add_object_element (deliveries, tocsin_relay_delivery_to_json (delivery));
    }
  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (store->db, rc, "listing deliveries", error);
      goto fail;
    }
  g_clear_pointer (&stmt, stmt_finalize);

  stmt = prepare (store->db,
                  "SELECT a.id, a.delivery_id, d.forward, d.event, a.attempt, a.at_ms, a.url,"
                  " a.status, a.error, a.duration_ms, a.answer_start, a.outcome,"
                  " a.next_retry_at_ms FROM delivery_attempts a JOIN deliveries d"
                  " ON d.id = a.delivery_id WHERE a.channel_id = ? AND a.delivery_id >= ?"
                  " ORDER BY a.at_ms DESC, a.id DESC", error);
  if (stmt == NULL)
    goto fail;
  sqlite3_bind_int64 (stmt, 1, channel_id);
  sqlite3_bind_int64 (stmt, 2, oldest);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      JsonObject *attempt = json_object_new ();

      json_object_set_int_member (attempt, "id", sqlite3_column_int64 (stmt, 0));
      json_object_set_int_member (attempt, "delivery_id", sqlite3_column_int64 (stmt, 1));
      json_object_set_string_member (attempt, "forward", column_text (stmt, 2));
      json_object_set_string_member (attempt, "event", column_text (stmt, 3));
      json_object_set_int_member (attempt, "attempt", sqlite3_column_int64 (stmt, 4));
      set_time_or_null (attempt, "at", sqlite3_column_int64 (stmt, 5));
      json_object_set_string_member (attempt, "url", column_text (stmt, 6));
      json_object_set_int_member (attempt, "status", sqlite3_column_int64 (stmt, 7));
      if (sqlite3_column_type (stmt, 8) == SQLITE_NULL)
        json_object_set_null_member (attempt, "error");
      else
        json_object_set_string_member (attempt, "error", column_text (stmt, 8));
      json_object_set_int_member (attempt, "duration_ms", sqlite3_column_int64 (stmt, 9));
      json_object_set_string_member (attempt, "answer_start", column_text (stmt, 10));
      json_object_set_string_member (attempt, "outcome", column_text (stmt, 11));
      set_time_or_null (attempt, "next_retry_at", sqlite3_column_int64 (stmt, 12));
      json_array_add_object_element (attempts, attempt);
    }
  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (store->db, rc, "listing attempts", error);
      goto fail;
    }
  g_clear_pointer (&stmt, stmt_finalize);
  g_mutex_unlock (&store->lock);
  return g_steal_pointer (&reply);

fail:
  g_clear_pointer (&stmt, stmt_finalize);
  g_mutex_unlock (&store->lock);
  return NULL;
}
