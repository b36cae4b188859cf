/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-migrate.c: `tocsin-relay migrate` (issue 16): a single relay's SQLite data into
 * an empty PostgreSQL database, as it is stored.
 *
 * Channels keep their ids, tokens and hashes (no webhook URL, subscribe link, owner key, Direct
 * key or email address changes), messages their ids and each channel its last_id (subscribers'
 * cursors stay valid), dedup keys still in their window keep deduplicating, and the deliveries
 * queue and its attempts carry on. Presence is not carried: it names live connections.
 *
 * All or nothing: the copy is one PostgreSQL transaction, committed only once the row counts
 * match what was read. The SQLite side is read inside BEGIN IMMEDIATE, so that it is one
 * snapshot and nothing can write to it meanwhile.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <inttypes.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "tocsin-relay-config.h"
#include "tocsin-relay-migrate.h"
#include "tocsin-relay-store.h"
#include "tocsin-relay-store-pg.h"

#define EXIT_USAGE 2
#define DB_NAME "relay.db"

/* SQLite's unix VFS: every connection to a WAL database holds a shared lock on this byte of the
 * -shm file for as long as it is open (the "dead man switch", UNIX_SHM_DMS in os_unix.c). A
 * serving relay keeps its connections open, so another process holding it is a relay (or a
 * tocsin-relay command) using the data dir right now; the kernel drops it when that process
 * dies, even by kill -9. */
#define SHM_DMS_OFFSET 128

/* Which rows are carried: children of a deleted channel (none, unless a crash left some) would
 * break PostgreSQL's foreign keys, and dedup keys past their window no longer deduplicate. */
static const char *const source_filter[TOCSIN_RELAY_STORE_PG_N_TABLES] = {
  [TOCSIN_RELAY_STORE_PG_TABLE_CHANNELS] = "",
  [TOCSIN_RELAY_STORE_PG_TABLE_ADMIN_KEYS] = "",
  [TOCSIN_RELAY_STORE_PG_TABLE_META] = "",
  [TOCSIN_RELAY_STORE_PG_TABLE_MESSAGES] =
    " WHERE channel_id IN (SELECT id FROM channels) ORDER BY channel_id, id",
  [TOCSIN_RELAY_STORE_PG_TABLE_DEDUP] =
    " WHERE channel_id IN (SELECT id FROM channels) AND time_ms >= ?1",
  [TOCSIN_RELAY_STORE_PG_TABLE_DELIVERIES] =
    " WHERE channel_id IN (SELECT id FROM channels) ORDER BY id",
  [TOCSIN_RELAY_STORE_PG_TABLE_DELIVERY_ATTEMPTS] =
    " WHERE delivery_id IN (SELECT id FROM deliveries"
    " WHERE channel_id IN (SELECT id FROM channels)) ORDER BY id",
};

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

static gboolean
migrate_error (GError     **error,
               const char  *format,
               ...) G_GNUC_PRINTF (2, 3);

static gboolean
migrate_error (GError     **error,
               const char  *format,
               ...)
{
  va_list args;

  va_start (args, format);
  g_propagate_error (error, g_error_new_valist (TOCSIN_RELAY_STORE_ERROR,
                                                TOCSIN_RELAY_STORE_ERROR_FAILED, format, args));
  va_end (args);
  return FALSE;
}

/* The pid of another process that has @path's SQLite database open, or 0. */
static pid_t
find_user_pid (const char *path)
{
  g_autofree char *shm = g_strconcat (path, "-shm", NULL);
  struct flock lock = { 0 };
  int fd;

  fd = g_open (shm, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    return 0;  /* no -shm file: no connection has the WAL open */
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = SHM_DMS_OFFSET;
  lock.l_len = 1;
  if (fcntl (fd, F_GETLK, &lock) != 0)
    lock.l_type = F_UNLCK;
  close (fd);
  return lock.l_type == F_UNLCK ? 0 : lock.l_pid;
}

/* A relay started during the copy waited on our write lock and would write once we let go:
 * what it took then would not be in PostgreSQL. */
static gboolean
check_still_alone (const char  *path,
                   const char  *data_dir,
                   GError     **error)
{
  pid_t pid = find_user_pid (path);

  if (pid != 0)
    return migrate_error (error, _("A relay (process %d) started on %s during the copy: stop "
                                   "it and run migrate again."), (int) pid, data_dir);
  return TRUE;
}

static sqlite3_stmt *
prepare (sqlite3     *db,
         const char  *sql,
         GError     **error)
{
  sqlite3_stmt *stmt = NULL;

  if (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) != SQLITE_OK)
    {
      migrate_error (error, _("Could not read the relay's database: %s"), sqlite3_errmsg (db));
      return NULL;
    }
  return stmt;
}

static gint64
count_source (sqlite3                  *db,
              TocsinRelayStorePgTable   table,
              gint64                    dedup_since,
              GError                  **error)
{
  g_autofree char *sql = NULL;
  g_autoptr(sqlite3_stmt) stmt = NULL;

  sql = g_strdup_printf ("SELECT count(*) FROM %s%s", tocsin_relay_store_pg_table_name (table),
                         source_filter[table]);
  stmt = prepare (db, sql, error);
  if (stmt == NULL)
    return -1;
  if (table == TOCSIN_RELAY_STORE_PG_TABLE_DEDUP)
    sqlite3_bind_int64 (stmt, 1, dedup_since);
  if (sqlite3_step (stmt) != SQLITE_ROW)
    {
      migrate_error (error, _("Could not read the relay's database: %s"), sqlite3_errmsg (db));
      return -1;
    }
  return sqlite3_column_int64 (stmt, 0);
}

/* Copies @table's rows; *copied counts them. */
static gboolean
copy_table (sqlite3                  *db,
            TocsinRelayStorePg       *pg,
            TocsinRelayStorePgTable   table,
            gint64                    dedup_since,
            gint64                    total,
            gint64                   *copied,
            GError                  **error)
{
  const char *name = tocsin_relay_store_pg_table_name (table);
  guint n_columns = tocsin_relay_store_pg_table_n_columns (table);
  g_autofree char *sql = NULL;
  g_autoptr(sqlite3_stmt) stmt = NULL;
  gint64 last_report = g_get_monotonic_time ();
  int rc;

  sql = g_strdup_printf ("SELECT %s FROM %s%s", tocsin_relay_store_pg_table_columns (table),
                         name, source_filter[table]);
  stmt = prepare (db, sql, error);
  if (stmt == NULL)
    return FALSE;
  if (table == TOCSIN_RELAY_STORE_PG_TABLE_DEDUP)
    sqlite3_bind_int64 (stmt, 1, dedup_since);

  *copied = 0;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      const char *values[32];
      int lengths[32] = { 0 };

      g_assert (n_columns <= G_N_ELEMENTS (values));
      for (guint i = 0; i < n_columns; i++)
        {
          if (sqlite3_column_type (stmt, (int) i) == SQLITE_NULL)
            values[i] = NULL;
          else if (tocsin_relay_store_pg_table_is_binary (table, i))
            {
              /* An empty blob is "" (not NULL): NOT NULL columns stay satisfied. */
              values[i] = sqlite3_column_blob (stmt, (int) i);
              lengths[i] = sqlite3_column_bytes (stmt, (int) i);
              if (values[i] == NULL)
                values[i] = "";
            }
          else
            values[i] = (const char *) sqlite3_column_text (stmt, (int) i);
        }
      if (!tocsin_relay_store_pg_import_row (pg, table, values, lengths, error))
        return FALSE;
      (*copied)++;

      /* A relay that kept a week of a busy channel has many: say how far it is, once a
       * second. */
      if (g_get_monotonic_time () - last_report >= G_USEC_PER_SEC)
        {
          last_report = g_get_monotonic_time ();
          /* Translators: progress of the copy: "12000 of 50000 messages" */
          g_printerr (_("Copying %s: %" PRId64 " of %" PRId64 "…\n"), name,
                      *copied, total);
        }
    }
  if (rc != SQLITE_DONE)
    return migrate_error (error, _("Could not read the relay's database: %s"),
                          sqlite3_errmsg (db));
  return TRUE;
}

/* The last id SQLite's AUTOINCREMENT gave in @table (sqlite_sequence), or 0. */
static gint64
last_used_id (sqlite3    *db,
              const char *table)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;

  if (sqlite3_prepare_v2 (db, "SELECT seq FROM sqlite_sequence WHERE name = ?1", -1, &stmt,
                          NULL) != SQLITE_OK)
    return 0;
  sqlite3_bind_text (stmt, 1, table, -1, SQLITE_STATIC);
  return sqlite3_step (stmt) == SQLITE_ROW ? sqlite3_column_int64 (stmt, 0) : 0;
}

static gboolean
copy_all (sqlite3             *db,
          TocsinRelayStorePg  *pg,
          gint64              *copied,
          GError             **error)
{
  static const TocsinRelayStorePgTable sequences[] = {
    TOCSIN_RELAY_STORE_PG_TABLE_CHANNELS,
    TOCSIN_RELAY_STORE_PG_TABLE_DELIVERIES,
    TOCSIN_RELAY_STORE_PG_TABLE_DELIVERY_ATTEMPTS,
  };
  gint64 dedup_since = g_get_real_time () / 1000 - TOCSIN_RELAY_DEDUP_WINDOW_SECONDS * 1000;
  gint64 total[TOCSIN_RELAY_STORE_PG_N_TABLES];

  /* Only into an empty database: ids and tokens are kept, and would clash with what is there.
   * Under the lock import_begin takes, so that no node adds a channel meanwhile. */
  for (int t = 0; t < TOCSIN_RELAY_STORE_PG_N_TABLES; t++)
    {
      gint64 existing = tocsin_relay_store_pg_count_rows (pg, t, error);

      if (existing < 0)
        return FALSE;
      if (existing > 0)
        return migrate_error (error,
                              _("The PostgreSQL database already holds %" PRId64
                                " rows in %s: migrate copies only into an empty database. "
                                "Create a new database (createdb) and name it with "
                                "--database, or drop this one's tables if nothing in them is "
                                "needed."),
                              existing, tocsin_relay_store_pg_table_name (t));
    }

  for (int t = 0; t < TOCSIN_RELAY_STORE_PG_N_TABLES; t++)
    {
      total[t] = count_source (db, t, dedup_since, error);
      if (total[t] < 0)
        return FALSE;
    }
  for (int t = 0; t < TOCSIN_RELAY_STORE_PG_N_TABLES; t++)
    if (!copy_table (db, pg, t, dedup_since, total[t], &copied[t], error))
      return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (sequences); i++)
    {
      const char *name = tocsin_relay_store_pg_table_name (sequences[i]);

      if (!tocsin_relay_store_pg_import_set_sequence (pg, sequences[i], last_used_id (db, name),
                                                      error))
        return FALSE;
    }

  /* Checked before COMMIT: what PostgreSQL holds is what was read. */
  for (int t = 0; t < TOCSIN_RELAY_STORE_PG_N_TABLES; t++)
    {
      gint64 stored = tocsin_relay_store_pg_count_rows (pg, t, error);

      if (stored < 0)
        return FALSE;
      if (stored != total[t] || copied[t] != total[t])
        return migrate_error (error,
                              _("The copy of %s does not add up (%" PRId64 " rows read, "
                                "%" PRId64 " copied, %" PRId64 " in "
                                "PostgreSQL); nothing was kept. Report this as a bug."),
                              tocsin_relay_store_pg_table_name (t), total[t], copied[t], stored);
    }
  return TRUE;
}

gboolean
tocsin_relay_migrate (const char  *data_dir,
                      const char  *database,
                      GError     **error)
{
  g_autofree char *path = NULL;
  g_autoptr(TocsinRelayStorePg) pg = NULL;
  g_autoptr(GError) local_error = NULL;
  gint64 copied[TOCSIN_RELAY_STORE_PG_N_TABLES] = { 0 };
  sqlite3 *db = NULL;
  pid_t pid;
  int rc;

  g_return_val_if_fail (data_dir != NULL, FALSE);
  g_return_val_if_fail (database != NULL, FALSE);

  if (!tocsin_relay_store_pg_is_url (database))
    return migrate_error (error, _("--database takes a postgresql:// URL (such as "
                                   "postgresql://tocsin@db.example.com/tocsin), not “%s”."),
                          database);
  path = g_build_filename (data_dir, DB_NAME, NULL);
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return migrate_error (error, _("There is no relay data in %s (no %s there); check "
                                   "--data-dir."), data_dir, DB_NAME);

  pid = find_user_pid (path);
  if (pid != 0)
    return migrate_error (error, _("A relay (process %d) is using %s: stop it (systemctl stop "
                                   "tocsin-relay) and run migrate again, so that nothing it "
                                   "takes meanwhile is left behind."), (int) pid, data_dir);

  /* Opened once as the relay would: an older data dir gets this version's tables, and channels
   * made before the email trigger their address, before anything is read. */
  {
    TocsinRelayStore *store = tocsin_relay_store_open (data_dir, error);

    if (store == NULL)
      return FALSE;
    tocsin_relay_store_free (store);
  }

  pg = tocsin_relay_store_pg_open (database, &local_error);
  if (pg == NULL)
    return migrate_error (error, _("%s Check --database (user, host, port and database name) "
                                   "and that the server is running; nothing was copied."),
                          g_strstrip (local_error->message));

  rc = sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc == SQLITE_OK)
    {
      sqlite3_busy_timeout (db, 2000);
      rc = sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    }
  if (rc != SQLITE_OK)
    {
      migrate_error (error, rc == SQLITE_BUSY
                     ? _("Another process is writing to %s: stop the relay and run migrate "
                         "again.")
                     : _("Could not open the relay's database in %s: %s"), data_dir,
                     db ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
      sqlite3_close (db);
      return FALSE;
    }

  if (!tocsin_relay_store_pg_import_begin (pg, error))
    {
      sqlite3_close (db);
      return FALSE;
    }
  if (!copy_all (db, pg, copied, &local_error) ||
      !check_still_alone (path, data_dir, &local_error) ||
      !tocsin_relay_store_pg_import_commit (pg, &local_error))
    {
      tocsin_relay_store_pg_import_rollback (pg);
      sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
      sqlite3_close (db);
      return migrate_error (error, _("%s Nothing was copied (PostgreSQL rolled the copy back); "
                                     "%s is unchanged."), g_strstrip (local_error->message),
                            data_dir);
    }
  sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close (db);

  g_print (_("Copied into PostgreSQL (rows per table):\n"));
  for (int t = 0; t < TOCSIN_RELAY_STORE_PG_N_TABLES; t++)
    g_print ("  %-18s %" G_GINT64_FORMAT "\n", tocsin_relay_store_pg_table_name (t), copied[t]);
  return TRUE;
}

int
tocsin_relay_migrate_main (int    argc,
                           char **argv)
{
  g_autofree char *data_dir = NULL;
  g_autofree char *config_file = NULL;
  g_autofree char *database = NULL;
  g_autoptr(GError) error = NULL;
  const GOptionEntry entries[] = {
    { "data-dir", 0, 0, G_OPTION_ARG_FILENAME, &data_dir,
      N_("The relay's data directory to copy from (default: the config file's, or "
         "$STATE_DIRECTORY)"), N_("DIR") },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &config_file,
      N_("Read data-dir and database from the [relay] group of FILE"), N_("FILE") },
    { "database", 0, 0, G_OPTION_ARG_STRING, &database,
      N_("The empty PostgreSQL database to copy into (default: $TOCSIN_RELAY_DATABASE, then "
         "the config file's)"), N_("postgresql://…") },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);

  g_option_context_set_summary (context,
                                _("Copy a relay's SQLite data (channels with their tokens, "
                                  "messages with their ids, dedup keys, admin keys, the "
                                  "deliveries queue) into an empty PostgreSQL database, in one "
                                  "transaction. Stop the relay first."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("tocsin-relay: %s\n", error->message);
      return EXIT_USAGE;
    }
  if (argc > 1)
    {
      g_printerr ("tocsin-relay: %s\n", _("migrate takes no arguments besides its options: "
                                          "tocsin-relay migrate --data-dir=DIR "
                                          "--database=postgresql://…"));
      return EXIT_USAGE;
    }

  if (database == NULL && g_getenv (TOCSIN_RELAY_DATABASE_ENV) != NULL)
    database = g_strdup (g_getenv (TOCSIN_RELAY_DATABASE_ENV));
  if (config_file != NULL)
    {
      TocsinRelayServeConfig config;
      gboolean ok;

      tocsin_relay_serve_config_init (&config);
      ok = tocsin_relay_serve_config_load_file (&config, config_file, &error);
      if (ok && data_dir == NULL)
        data_dir = g_strdup (config.relay.data_dir);
      if (ok && database == NULL)
        database = g_strdup (config.database);
      tocsin_relay_serve_config_clear (&config);
      if (!ok)
        {
          g_printerr ("tocsin-relay: %s\n", error->message);
          return EXIT_USAGE;
        }
    }
  if (data_dir == NULL && g_getenv ("STATE_DIRECTORY"))
    {
      g_auto(GStrv) dirs = g_strsplit (g_getenv ("STATE_DIRECTORY"), ":", 2);

      data_dir = g_strdup (dirs[0]);
    }
  if (data_dir == NULL || *data_dir == '\0')
    {
      g_printerr ("tocsin-relay: %s\n", _("Say which relay to copy from: --data-dir=DIR"));
      return EXIT_USAGE;
    }
  if (database == NULL || *database == '\0')
    {
      g_printerr ("tocsin-relay: %s\n",
                  _("Say which PostgreSQL database to copy into: "
                    "--database=postgresql://USER@HOST/DATABASE (or database= in the config "
                    "file)."));
      return EXIT_USAGE;
    }

  if (!tocsin_relay_migrate (data_dir, database, &error))
    {
      g_printerr ("tocsin-relay: %s\n", error->message);
      return EXIT_FAILURE;
    }
  return EXIT_SUCCESS;
}
