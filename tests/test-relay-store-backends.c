/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-store-backends.c: the relay's store against its backends (issue 16). So far: the
 * real PostgreSQL that tests/tocsin-test-postgres.c starts, which the store cases will run on.
 */
#define G_LOG_DOMAIN "tocsin-test"

#include "config.h"

#include <string.h>

#include "tocsin-test-postgres.h"

/* The helper gives a server that takes SQL on its socket and on 127.0.0.1:PORT, keeps the data
 * across a restart, and is reachable again after it. */
static void
test_postgres_helper (void)
{
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start ();
  g_autofree char *answer = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *after = NULL;

  if (pg == NULL)
    return;
  expected = g_strdup_printf ("postgresql://tocsin@127.0.0.1:%u/tocsin",
                              tocsin_test_postgres_port (pg));
  g_assert_cmpstr (tocsin_test_postgres_conninfo (pg), ==, expected);

  answer = tocsin_test_postgres_psql (pg, "CREATE TABLE t (v text); "
                                          "INSERT INTO t VALUES ('kept'); "
                                          "SELECT current_database() || ' ' || "
                                          "split_part(current_setting('server_version'), '.', 1)");
  g_strstrip (answer);
  g_assert_true (g_str_has_prefix (answer, "tocsin "));
  g_assert_cmpint (atoi (answer + strlen ("tocsin ")), >=, 15);

  tocsin_test_postgres_restart (pg);
  after = tocsin_test_postgres_psql (pg, "SELECT v FROM t");
  g_assert_cmpstr (g_strstrip (after), ==, "kept");
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/relay/store-backends/postgres-helper", test_postgres_helper);
  return g_test_run ();
}
