/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-test"

#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "tocsin-test-postgres.h"
#include "tocsin-test-relay.h"

struct _TocsinTestPostgres
{
  char     *bin_dir;
  char     *dir;          /* the temp dir, owned by the user the server runs as */
  char     *data_dir;     /* dir/data */
  char     *socket_dir;   /* dir/socket */
  char     *log_path;     /* dir/server.log */
  char     *run_user;     /* "postgres" when the test runs as root, else NULL */
  char     *null_device;  /* dir/null, bound over /dev/null for run_user when set (below) */
  guint16   port;
  gboolean  running;
  char     *dbname;
  char     *conninfo;
  gboolean  shared;       /* a database on the shared server: free drops only the database */
};

static TocsinTestPostgres *shared_server;

/* TOCSIN_PG_BINDIR, else Debian's versioned directories (newest first), else PATH. */
static char *
find_bin_dir (void)
{
  static const char * const tools[] = { "initdb", "pg_ctl", "postgres", "psql", "createdb" };
  g_autoptr(GPtrArray) candidates = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *in_path = g_find_program_in_path ("pg_ctl");

  if (g_getenv ("TOCSIN_PG_BINDIR"))
    g_ptr_array_add (candidates, g_strdup (g_getenv ("TOCSIN_PG_BINDIR")));
  for (int version = 20; version >= 15; version--)
    g_ptr_array_add (candidates, g_strdup_printf ("/usr/lib/postgresql/%d/bin", version));
  if (in_path)
    g_ptr_array_add (candidates, g_path_get_dirname (in_path));

  for (guint i = 0; i < candidates->len; i++)
    {
      const char *dir = candidates->pdata[i];
      gboolean all = TRUE;

      for (guint t = 0; t < G_N_ELEMENTS (tools) && all; t++)
        {
          g_autofree char *path = g_build_filename (dir, tools[t], NULL);

          all = g_file_test (path, G_FILE_TEST_IS_EXECUTABLE);
        }
      if (all)
        return g_strdup (dir);
    }
  return NULL;
}

/* Runs BIN_DIR/TOOL ARGS... (as run_user when set) in the temp dir; returns whether it exited
 * 0, with its output. */
static gboolean
run_tool (TocsinTestPostgres *pg,
          char              **out,
          char              **err,
          const char         *tool,
          ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  const char *arg;
  va_list ap;

  if (pg->null_device)
    {
      /* Some containers have /dev/null as 0700: initdb's and pg_ctl's shell redirections to it
       * then fail for the postgres user. A private mount namespace gets a usable one. */
      g_ptr_array_add (argv, g_strdup ("unshare"));
      g_ptr_array_add (argv, g_strdup ("-m"));
      g_ptr_array_add (argv, g_strdup ("sh"));
      g_ptr_array_add (argv, g_strdup ("-c"));
      g_ptr_array_add (argv, g_strdup ("mount --bind \"$0\" /dev/null && exec \"$@\""));
      g_ptr_array_add (argv, g_strdup (pg->null_device));
    }
  if (pg->run_user)
    {
      g_ptr_array_add (argv, g_strdup ("runuser"));
      g_ptr_array_add (argv, g_strdup ("-u"));
      g_ptr_array_add (argv, g_strdup (pg->run_user));
      g_ptr_array_add (argv, g_strdup ("--"));
    }
  g_ptr_array_add (argv, g_build_filename (pg->bin_dir, tool, NULL));
  va_start (ap, tool);
  while ((arg = va_arg (ap, const char *)))
    g_ptr_array_add (argv, g_strdup (arg));
  va_end (ap);
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                        | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  /* The test's cwd (the build tree) may be closed to the postgres user. */
  g_subprocess_launcher_set_cwd (launcher, pg->dir);
  g_subprocess_launcher_unsetenv (launcher, "PGDATA");
  g_subprocess_launcher_setenv (launcher, "LC_ALL", "C", TRUE);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, out, err, &error);
  g_assert_no_error (error);
  return g_subprocess_get_if_exited (process) && g_subprocess_get_exit_status (process) == 0;
}

/* The argv prefix run_tool() puts before a tool (unshare, runuser), as one shell-quoted string. */
static char *
quoted_prefix (TocsinTestPostgres *pg)
{
  g_autoptr(GString) prefix = g_string_new (NULL);

  if (pg->null_device)
    {
      g_autofree char *device = g_shell_quote (pg->null_device);

      g_string_append_printf (prefix, "unshare -m sh -c 'mount --bind \"$0\" /dev/null && "
                              "exec \"$@\"' %s ", device);
    }
  if (pg->run_user)
    g_string_append_printf (prefix, "runuser -u %s -- ", pg->run_user);
  return g_string_free (g_steal_pointer (&prefix), FALSE);
}

/* pg_ctl start detaches the server from the test (its own session), so a test that crashes or
 * is killed on a timeout would leave it running. A watcher in its own session waits for the test
 * process to end, then stops the server if it still runs and removes the directory. */
static void
spawn_reaper (TocsinTestPostgres *pg)
{
  g_autofree char *prefix = quoted_prefix (pg);
  g_autofree char *pg_ctl = g_build_filename (pg->bin_dir, "pg_ctl", NULL);
  g_autofree char *quoted_pg_ctl = g_shell_quote (pg_ctl);
  g_autofree char *script = NULL;
  g_autofree char *pid = g_strdup_printf ("%d", (int) getpid ());
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) reaper = NULL;
  g_autoptr(GError) error = NULL;

  script = g_strdup_printf ("while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; "
                            "if [ -f \"$2/data/postmaster.pid\" ]; then "
                            "%s%s -D \"$2/data\" -m immediate -w stop; fi; rm -rf \"$2\"",
                            prefix, quoted_pg_ctl);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_INHERIT
                                        | G_SUBPROCESS_FLAGS_STDOUT_SILENCE
                                        | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_subprocess_launcher_set_cwd (launcher, "/");
  reaper = g_subprocess_launcher_spawn (launcher, &error, "setsid", "sh", "-c", script,
                                        "tocsin-pg-reaper", pid, pg->dir, NULL);
  g_assert_no_error (error);
}

static char *
server_log (TocsinTestPostgres *pg)
{
  char *contents = NULL;

  if (!g_file_get_contents (pg->log_path, &contents, NULL, NULL))
    return g_strdup ("(no server log)");
  return contents;
}

static gboolean
start_server (TocsinTestPostgres *pg,
              char              **err)
{
  g_autofree char *options = g_strdup_printf ("-p %u -k %s -c listen_addresses=127.0.0.1",
                                               pg->port, pg->socket_dir);

  pg->running = run_tool (pg, NULL, err, "pg_ctl", "-D", pg->data_dir, "-l", pg->log_path,
                          "-w", "-t", "120", "-o", options, "start", NULL);
  return pg->running;
}

/* A new instance in a temp dir of its own (as run_user when run as root), its watcher running;
 * nothing in data/ yet. NULL after g_test_skip() when PostgreSQL cannot run here. */
static TocsinTestPostgres *
instance_new (void)
{
  g_autoptr(TocsinTestPostgres) pg = g_new0 (TocsinTestPostgres, 1);
  GStatBuf st;

  pg->bin_dir = find_bin_dir ();
  if (pg->bin_dir == NULL)
    {
      g_test_skip ("PostgreSQL is not installed (no initdb/pg_ctl/postgres/psql/createdb in "
                   "/usr/lib/postgresql/*/bin, TOCSIN_PG_BINDIR or PATH; "
                   "build-aux/install-deps.sh installs Debian's postgresql)");
      return NULL;
    }

  pg->dir = tocsin_test_make_tmpdir ("tocsin-pg");
  pg->data_dir = g_build_filename (pg->dir, "data", NULL);
  pg->socket_dir = g_build_filename (pg->dir, "socket", NULL);
  pg->log_path = g_build_filename (pg->dir, "server.log", NULL);
  g_assert_cmpint (g_mkdir (pg->socket_dir, 0700), ==, 0);

  if (getuid () == 0)
    {
      struct passwd *pw = getpwnam ("postgres");

      if (pw == NULL)
        {
          g_test_skip ("running as root, and there is no `postgres` user to run PostgreSQL as "
                       "(the server refuses to run as root)");
          return NULL;
        }
      pg->run_user = g_strdup ("postgres");
      g_assert_cmpint (chown (pg->dir, pw->pw_uid, pw->pw_gid), ==, 0);
      g_assert_cmpint (chown (pg->socket_dir, pw->pw_uid, pw->pw_gid), ==, 0);
      if (g_stat ("/dev/null", &st) == 0 && (st.st_mode & 0006) != 0006)
        {
          g_autofree char *unshare = g_find_program_in_path ("unshare");

          pg->null_device = g_build_filename (pg->dir, "null", NULL);
          if (unshare == NULL
              || mknod (pg->null_device, S_IFCHR | 0666, makedev (1, 3)) != 0
              || g_chmod (pg->null_device, 0666) != 0)
            {
              g_test_skip ("/dev/null is closed to the postgres user here, and no usable one "
                           "could be made for it (needs unshare and mknod as root)");
              return NULL;
            }
        }
    }

  spawn_reaper (pg);
  return g_steal_pointer (&pg);
}

/* Starts pg->data_dir on a free port (the free port can be taken between the probe and the
 * bind: tries a few). */
static void
start_on_free_port (TocsinTestPostgres *pg)
{
  g_autofree char *err = NULL;

  for (guint attempt = 0; attempt < 5; attempt++)
    {
      g_clear_pointer (&err, g_free);
      pg->port = tocsin_test_free_port ();
      if (start_server (pg, &err))
        break;
    }
  if (!pg->running)
    {
      g_autofree char *log = server_log (pg);

      g_error ("pg_ctl start failed: %s\n%s", err, log);
    }
}

TocsinTestPostgres *
tocsin_test_postgres_start (void)
{
  g_autoptr(TocsinTestPostgres) pg = instance_new ();
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  if (pg == NULL)
    return NULL;

  /* The superuser is "tocsin" whoever runs it, so the conninfo is the same either way. */
  if (!run_tool (pg, &out, &err, "initdb", "-D", pg->data_dir, "-U", "tocsin", "--auth=trust",
                 "-E", "UTF8", "--locale=C", "--no-sync", NULL))
    g_error ("initdb failed: %s%s", out, err);

  start_on_free_port (pg);

  {
    g_autofree char *port = g_strdup_printf ("%u", pg->port);

    g_clear_pointer (&out, g_free);
    g_clear_pointer (&err, g_free);
    if (!run_tool (pg, &out, &err, "createdb", "-h", pg->socket_dir, "-p", port, "-U", "tocsin",
                   "tocsin", NULL))
      g_error ("createdb failed: %s%s", out, err);
  }

  pg->dbname = g_strdup ("tocsin");
  pg->conninfo = g_strdup_printf ("postgresql://tocsin@127.0.0.1:%u/tocsin", pg->port);
  return g_steal_pointer (&pg);
}

TocsinTestPostgres *
tocsin_test_postgres_start_database (void)
{
  static guint counter;
  g_autoptr(TocsinTestPostgres) pg = NULL;
  g_autofree char *port = NULL, *out = NULL, *err = NULL;

  /* Tests run one at a time on the main thread. */
  if (shared_server == NULL)
    shared_server = tocsin_test_postgres_start ();
  if (shared_server == NULL)
    return NULL;

  pg = g_new0 (TocsinTestPostgres, 1);
  pg->shared = TRUE;
  pg->bin_dir = g_strdup (shared_server->bin_dir);
  pg->dir = g_strdup (shared_server->dir);
  pg->data_dir = g_strdup (shared_server->data_dir);
  pg->socket_dir = g_strdup (shared_server->socket_dir);
  pg->log_path = g_strdup (shared_server->log_path);
  pg->run_user = g_strdup (shared_server->run_user);
  pg->null_device = g_strdup (shared_server->null_device);
  pg->port = shared_server->port;
  pg->dbname = g_strdup_printf ("tocsin_%u", ++counter);
  port = g_strdup_printf ("%u", pg->port);
  if (!run_tool (pg, &out, &err, "createdb", "-h", pg->socket_dir, "-p", port, "-U", "tocsin",
                 pg->dbname, NULL))
    g_error ("createdb %s failed: %s%s", pg->dbname, out, err);
  pg->conninfo = g_strdup_printf ("postgresql://tocsin@127.0.0.1:%u/%s", pg->port, pg->dbname);
  return g_steal_pointer (&pg);
}

const char *
tocsin_test_postgres_conninfo (TocsinTestPostgres *pg)
{
  return pg->conninfo;
}

guint16
tocsin_test_postgres_port (TocsinTestPostgres *pg)
{
  return pg->port;
}

const char *
tocsin_test_postgres_bin_dir (TocsinTestPostgres *pg)
{
  return pg->bin_dir;
}

const char *
tocsin_test_postgres_dir (TocsinTestPostgres *pg)
{
  return pg->dir;
}

void
tocsin_test_postgres_stop (TocsinTestPostgres *pg)
{
  g_autofree char *err = NULL;

  g_assert_false (pg->shared);
  if (!pg->running)
    return;
  if (!run_tool (pg, NULL, &err, "pg_ctl", "-D", pg->data_dir, "-m", "fast", "-w", "-t", "120",
                 "stop", NULL))
    g_error ("pg_ctl stop failed: %s", err);
  pg->running = FALSE;
}

void
tocsin_test_postgres_restart (TocsinTestPostgres *pg)
{
  g_autofree char *err = NULL;

  tocsin_test_postgres_stop (pg);
  if (!start_server (pg, &err))
    {
      g_autofree char *log = server_log (pg);

      g_error ("pg_ctl start (restart on port %u) failed: %s\n%s", pg->port, err, log);
    }
}

/* Runs @sql through psql on @pg; TRUE when it succeeded, with its output in *@out. */
static gboolean
try_psql (TocsinTestPostgres *pg,
          const char         *sql,
          char              **out)
{
  g_autofree char *port = g_strdup_printf ("%u", pg->port);
  g_autofree char *err = NULL;

  return run_tool (pg, out, &err, "psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                   "-h", pg->socket_dir, "-p", port, "-U", "tocsin", "-d", pg->dbname, "-c", sql,
                   NULL);
}

static gboolean
psql_says (TocsinTestPostgres *pg,
           const char         *sql,
           const char         *expected)
{
  g_autofree char *out = NULL;

  return try_psql (pg, sql, &out) && g_strcmp0 (g_strstrip (out), expected) == 0;
}

TocsinTestPostgres *
tocsin_test_postgres_start_standby (TocsinTestPostgres *primary)
{
  g_autoptr(TocsinTestPostgres) standby = NULL;
  g_autofree char *tool = NULL, *port = NULL, *out = NULL, *err = NULL;

  g_assert_false (primary->shared);
  g_assert_true (primary->running);
  tool = g_build_filename (primary->bin_dir, "pg_basebackup", NULL);
  if (!g_file_test (tool, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("PostgreSQL's pg_basebackup is not installed next to its pg_ctl: a standby "
                   "cannot be made");
      return NULL;
    }
  standby = instance_new ();
  if (standby == NULL)
    return NULL;

  /* The primary's settings come with the copy: synchronous_standby_names is set only after it,
   * so that the promoted standby does not wait for a standby of its own. -R writes
   * standby.signal and primary_conninfo (the primary's socket). */
  port = g_strdup_printf ("%u", primary->port);
  if (!run_tool (standby, &out, &err, "pg_basebackup", "-h", primary->socket_dir, "-p", port,
                 "-U", "tocsin", "-D", standby->data_dir, "-R", "-X", "stream", "-c", "fast",
                 "--no-sync", NULL))
    g_error ("pg_basebackup failed: %s%s", out, err);
  start_on_free_port (standby);
  standby->dbname = g_strdup (primary->dbname);
  standby->conninfo = g_strdup_printf ("postgresql://tocsin@127.0.0.1:%u/%s", standby->port,
                                       standby->dbname);

  /* Any standby is synchronous: a commit on the primary returns once the standby has flushed
   * it (synchronous_commit is on by default). */
  g_free (tocsin_test_postgres_psql (primary, "ALTER SYSTEM SET synchronous_standby_names = '*'"));
  g_free (tocsin_test_postgres_psql (primary, "SELECT pg_reload_conf ()"));
  TOCSIN_WAIT_UNTIL_SECONDS (psql_says (primary, "SELECT count (*) FROM pg_stat_replication"
                                        " WHERE sync_state = 'sync' AND state = 'streaming'",
                                        "1"), 120);
  return g_steal_pointer (&standby);
}

char *
tocsin_test_postgres_failover_conninfo (TocsinTestPostgres *primary,
                                        TocsinTestPostgres *standby)
{
  return g_strdup_printf ("postgresql://tocsin@127.0.0.1:%u,127.0.0.1:%u/%s"
                          "?target_session_attrs=read-write", primary->port, standby->port,
                          primary->dbname);
}

/* Whether process @pid has gone (or is a zombie nobody reaps: the postmaster's parent is
 * init, which in a container may not reap). */
static gboolean
process_gone (pid_t pid)
{
  g_autofree char *stat_path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *stat = NULL;
  const char *paren;

  if (kill (pid, 0) != 0 && errno == ESRCH)
    return TRUE;
  if (!g_file_get_contents (stat_path, &stat, NULL, NULL))
    return TRUE;
  paren = strrchr (stat, ')');
  return paren != NULL && paren[1] == ' ' && paren[2] == 'Z';
}

void
tocsin_test_postgres_kill (TocsinTestPostgres *pg)
{
  g_autofree char *pid_path = g_build_filename (pg->data_dir, "postmaster.pid", NULL);
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  pid_t pid;

  g_assert_false (pg->shared);
  g_assert_true (pg->running);
  g_file_get_contents (pid_path, &contents, NULL, &error);
  g_assert_no_error (error);
  pid = (pid_t) g_ascii_strtoll (contents, NULL, 10);
  g_assert_cmpint (pid, >, 1);
  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  /* Its backends and WAL sender notice that it died and exit on their own, cutting their
   * clients; a commit waiting for the standby's answer is never answered. */
  TOCSIN_WAIT_UNTIL (process_gone (pid));
  pg->running = FALSE;
  /* Stale now: that pid may be reused, and nothing (the watcher, _free()) must signal it. */
  g_remove (pid_path);
}

void
tocsin_test_postgres_promote (TocsinTestPostgres *standby)
{
  g_autofree char *err = NULL;

  g_assert_true (standby->running);
  if (!run_tool (standby, NULL, &err, "pg_ctl", "-D", standby->data_dir, "-w", "-t", "120",
                 "promote", NULL))
    {
      g_autofree char *log = server_log (standby);

      g_error ("pg_ctl promote failed: %s\n%s", err, log);
    }
  /* Out of recovery, and a transaction id can be taken: it accepts writes. */
  TOCSIN_WAIT_UNTIL_SECONDS (psql_says (standby, "SELECT pg_is_in_recovery ()", "f")
                             && psql_says (standby, "SELECT txid_current () > 0", "t"), 120);
}

char *
tocsin_test_postgres_psql (TocsinTestPostgres *pg,
                           const char         *sql)
{
  g_autofree char *port = g_strdup_printf ("%u", pg->port);
  g_autofree char *err = NULL;
  char *out = NULL;

  if (!run_tool (pg, &out, &err, "psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                 "-h", pg->socket_dir, "-p", port, "-U", "tocsin", "-d", pg->dbname, "-c", sql,
                 NULL))
    g_error ("psql -c '%s' failed: %s", sql, err);
  return out;
}

void
tocsin_test_postgres_free (TocsinTestPostgres *pg)
{
  if (pg == NULL)
    return;
  if (pg->shared && pg->conninfo != NULL)
    {
      g_autofree char *drop = g_strdup_printf ("DROP DATABASE %s WITH (FORCE)", pg->dbname);
      g_autofree char *port = g_strdup_printf ("%u", pg->port);
      g_autofree char *err = NULL;

      if (!run_tool (pg, NULL, &err, "psql", "-X", "-q", "-h", pg->socket_dir, "-p", port,
                     "-U", "tocsin", "-d", "postgres", "-c", drop, NULL))
        g_printerr ("%s failed: %s\n", drop, err);
    }
  else if (pg->running)
    {
      g_autofree char *err = NULL;

      /* immediate: the data is thrown away next; no checkpoint to wait for. */
      if (!run_tool (pg, NULL, &err, "pg_ctl", "-D", pg->data_dir, "-m", "immediate", "-w",
                     "stop", NULL))
        g_printerr ("pg_ctl stop failed: %s\n", err);
    }
  if (!pg->shared)
    tocsin_test_rmdir_recursive (pg->dir);
  g_free (pg->bin_dir);
  g_free (pg->dir);
  g_free (pg->data_dir);
  g_free (pg->socket_dir);
  g_free (pg->log_path);
  g_free (pg->run_user);
  g_free (pg->null_device);
  g_free (pg->dbname);
  g_free (pg->conninfo);
  g_free (pg);
}
