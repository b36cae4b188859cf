/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * bench-postgres.c: the benchmarks' PostgreSQL, the tests' own (tests/tocsin-test-postgres.c):
 * starts a server in a temporary directory, prints the conninfo `serve --database=` takes and
 * the server's directory, a line each, and stops the server and removes its directory once its
 * standard input closes (the benchmark holds it open; should the benchmark die, the harness's
 * watcher cleans up too).
 * Exits 77 when PostgreSQL is not installed or cannot run here.
 */
#define G_LOG_DOMAIN "bench-postgres"

#include "config.h"

#include <stdio.h>
#include <glib.h>

#include "../tocsin-test-postgres.h"

int
main (int   argc,
      char *argv[])
{
  g_autoptr(TocsinTestPostgres) pg = NULL;
  char buffer[256];

  /* The harness reports a missing PostgreSQL through g_test_skip(). */
  g_test_init (&argc, &argv, NULL);
  pg = tocsin_test_postgres_start ();
  if (pg == NULL)
    {
      g_printerr ("bench-postgres: PostgreSQL is not installed or cannot run here "
                  "(build-aux/install-deps.sh installs Debian's postgresql)\n");
      return 77;
    }
  /* Then its directory: the benchmark reads the server's pid from data/postmaster.pid. */
  g_print ("%s\n%s\n", tocsin_test_postgres_conninfo (pg), tocsin_test_postgres_dir (pg));
  fflush (stdout);
  while (fgets (buffer, sizeof buffer, stdin) != NULL)
    ;
  return 0;
}
