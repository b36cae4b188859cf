/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-postgres.c: the relay's own tests, run again with `serve --database=postgresql://…`
 * (issue 16). It starts a real PostgreSQL (tocsin-test-postgres.c) and runs a representative set
 * of the relay's test programs with TOCSIN_TEST_RELAY_POSTGRES set, so that every relay they
 * start (tocsin-test-relay.c) serves from a new database on it, and their command line
 * (`tocsin-relay channel create …`) writes there too. Each program must pass as it does on
 * SQLite; the few cases that look at SQLite itself are left out below, each with its reason.
 */
#define G_LOG_DOMAIN "tocsin-test"

#include "config.h"

#include <gio/gio.h>

#include "tocsin-test-postgres.h"
#include "tocsin-test-relay.h"

typedef struct
{
  const char        *program;
  const char *const *skip;    /* test paths left out: they look at SQLite files or pids */
} Program;

static TocsinTestPostgres *server;

static const char *const no_skip[] = { NULL };
static const char *const ingest_skip[] = {
  "/relay/ingest/file-modes",      /* the modes of relay.db and its WAL */
  NULL
};
static const char *const forwards_skip[] = {
  "/relay/forwards/store-queue",   /* opens the SQLite store in a temp dir directly */
  NULL
};

static const char *const streams_skip[] = {
  "/relay/streams/gap",            /* --retention=0, which serve refuses with PostgreSQL */
  NULL
};

static const Program programs[] = {
  { "test-relay-ingest", ingest_skip },
  { "test-relay-api", no_skip },
  { "test-relay-websocket", no_skip },
  { "test-relay-streams", streams_skip },
  { "test-relay-direct", no_skip },
  { "test-relay-forwards", forwards_skip },
};

static void
run_program (gconstpointer data)
{
  const Program *program = data;
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL, *setting = NULL, *createdb = NULL;

  if (server == NULL)
    server = tocsin_test_postgres_start ();
  if (server == NULL)
    return;   /* skipped, with the reason */

  g_ptr_array_add (argv, g_test_build_filename (G_TEST_BUILT, program->program, NULL));
  g_ptr_array_add (argv, g_strdup ("--tap"));
  for (guint i = 0; program->skip[i]; i++)
    {
      g_ptr_array_add (argv, g_strdup ("-s"));
      g_ptr_array_add (argv, g_strdup (program->skip[i]));
    }
  g_ptr_array_add (argv, NULL);

  createdb = g_build_filename (tocsin_test_postgres_bin_dir (server), "createdb", NULL);
  setting = g_strdup_printf ("%s %u", createdb, tocsin_test_postgres_port (server));
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                        | G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_subprocess_launcher_setenv (launcher, "TOCSIN_TEST_RELAY_POSTGRES", setting, TRUE);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_if_exited (process) || g_subprocess_get_exit_status (process) != 0)
    {
      g_printerr ("%s", out);
      g_error ("%s failed on PostgreSQL (its output is above)", program->program);
    }
  g_test_message ("%s passed on PostgreSQL", program->program);
}

int
main (int    argc,
      char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (programs); i++)
    {
      g_autofree char *path = g_strdup_printf ("/relay/postgres/%s", programs[i].program);

      g_test_add_data_func (path, &programs[i], run_program);
    }
  status = g_test_run ();
  g_clear_pointer (&server, tocsin_test_postgres_free);
  return status;
}
