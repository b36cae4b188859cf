/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-health.c: GET /v1/health, the check a balancer or Kubernetes' readiness probe asks
 * (docs/deployment.md), on a real relay: 200 while its store answers, on SQLite and on a real
 * PostgreSQL; 503 with Retry-After while PostgreSQL is stopped (GET /, the liveness check, still
 * 200), 200 again once it is back. And TOCSIN_RELAY_DATABASE, the database's URL from the
 * environment (a Kubernetes Secret, a systemd EnvironmentFile=), with the connections one node
 * opens to PostgreSQL counted, which docs/deployment.md's sizing uses.
 */
#define G_LOG_DOMAIN "tocsin-test"

#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "tocsin-test-postgres.h"
#include "tocsin-test-relay.h"

static guint
health (TocsinTestRelay *relay,
        const char      *method,
        gboolean        *healthy,
        char           **error_sentence)
{
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *object;
  guint status;

  status = tocsin_test_http (relay, method, "/v1/health", NULL, NULL, 0, NULL, &body, &headers);
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Cache-Control"), ==, "no-store");
  if (g_str_equal (method, "HEAD"))
    return status;
  g_assert_true (json_parser_load_from_data (parser, g_bytes_get_data (body, NULL), -1, NULL));
  object = json_node_get_object (json_parser_get_root (parser));
  if (healthy)
    *healthy = json_object_get_boolean_member_with_default (object, "healthy", FALSE);
  if (status == 503)
    g_assert_nonnull (soup_message_headers_get_one (headers, "Retry-After"));
  if (error_sentence)
    *error_sentence = g_strdup (json_object_get_string_member_with_default (object, "error",
                                                                           ""));
  return status;
}

static void
test_sqlite (void)
{
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, NULL);
  g_autoptr(SoupMessageHeaders) headers = NULL;
  gboolean healthy = FALSE;

  g_assert_cmpuint (health (relay, "GET", &healthy, NULL), ==, 200);
  g_assert_true (healthy);
  g_assert_cmpuint (health (relay, "HEAD", NULL, NULL), ==, 200);
  g_assert_cmpuint (tocsin_test_http (relay, "POST", "/v1/health", "application/json", "{}", -1,
                                      NULL, NULL, &headers), ==, 405);
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Allow"), ==, "GET, HEAD");
}

static guint
count_connections (TocsinTestPostgres *pg)
{
  g_autofree char *out = tocsin_test_postgres_psql (pg, "SELECT count(*) FROM pg_stat_activity "
                                                        "WHERE datname = current_database() "
                                                        "AND pid <> pg_backend_pid()");

  return (guint) g_ascii_strtoull (out, NULL, 10);
}

static guint
health_status (TocsinTestRelay *relay)
{
  return health (relay, "GET", NULL, NULL);
}

static void
test_postgres (void)
{
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start ();
  g_autoptr(TocsinTestRelay) relay = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *hook = NULL, *stream = NULL, *count = NULL, *sentence = NULL;
  g_autofree char *port = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupWebsocketConnection) ws = NULL;
  gboolean healthy = FALSE;
  guint status = 0;

  if (pg == NULL)
    return;

  /* The URL from the environment, as a Kubernetes Secret or an EnvironmentFile= gives it. */
  relay = tocsin_test_relay_new (NULL, NULL);
  g_setenv ("TOCSIN_RELAY_DATABASE", tocsin_test_postgres_conninfo (pg), TRUE);
  tocsin_test_relay_spawn (relay);
  g_unsetenv ("TOCSIN_RELAY_DATABASE");

  g_assert_cmpuint (health (relay, "GET", &healthy, NULL), ==, 200);
  g_assert_true (healthy);
  node = tocsin_test_http_json (relay, "POST", "/v1/channels", "application/json",
                                "{\"name\": \"Health\"}", NULL, &status);
  g_assert_cmpuint (status, ==, 201);
  count = tocsin_test_postgres_psql (pg, "SELECT count(*) FROM channels");
  g_assert_cmpstr (g_strstrip (count), ==, "1");   /* it serves from PostgreSQL, not SQLite */

  /* Every kind of work a node does, then its connections: the shared one, the reader's, the
   * writer's and the listener's. */
  hook = g_strdup_printf ("/t/%s", json_object_get_string_member (json_node_get_object (node),
                                                                  "trigger_token"));
  stream = g_strdup_printf ("/s/%s/ws?since=all",
                            json_object_get_string_member (json_node_get_object (node),
                                                           "subscribe_token"));
  ws = tocsin_test_websocket_connect (relay, stream, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 5; i++)
    g_assert_cmpuint (tocsin_test_http (relay, "POST", hook, "application/json", "{}", -1, NULL,
                                        NULL, NULL), ==, 200);
  TOCSIN_WAIT_UNTIL (count_connections (pg) == 4);
  g_assert_cmpuint (health_status (relay), ==, 200);
  g_assert_cmpuint (count_connections (pg), ==, 4);

  /* PostgreSQL stopped: not ready, and it says so without naming the database; still alive. */
  tocsin_test_postgres_stop (pg);
  g_assert_cmpuint (health (relay, "GET", &healthy, &sentence), ==, 503);
  g_assert_false (healthy);
  g_assert_cmpstr (sentence, ==, "The relay cannot reach its database right now; try again in "
                                 "a moment.");
  port = g_strdup_printf ("%u", tocsin_test_postgres_port (pg));
  g_assert_null (strstr (sentence, port));
  g_assert_cmpuint (health (relay, "HEAD", NULL, NULL), ==, 503);
  g_assert_cmpuint (tocsin_test_http (relay, "GET", "/", NULL, NULL, 0, NULL, NULL, NULL), ==,
                    200);

  /* Back: the first check on the dead connection may fail as it reopens it. */
  tocsin_test_postgres_restart (pg);
  TOCSIN_WAIT_UNTIL (health_status (relay) == 200);
  g_assert_cmpuint (tocsin_test_http (relay, "POST", hook, "application/json", "{}", -1, NULL,
                                      NULL, NULL), ==, 200);
}

/* --database wins over TOCSIN_RELAY_DATABASE; a bad URL there is refused, naming the variable. */
static void
test_database_env (void)
{
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-health-");
  g_autofree char *data_dir = g_strdup_printf ("--data-dir=%s", dir);
  g_autofree char *err = NULL;
  const char *sqlite[] = { "--database=sqlite", NULL };

  g_setenv ("TOCSIN_RELAY_DATABASE", "mysql://relay@db.example.com/tocsin", TRUE);
  g_assert_cmpint (tocsin_test_relay_run (NULL, &err, "serve", "--listen=127.0.0.1:0", data_dir,
                                          NULL), !=, 0);
  g_assert_nonnull (strstr (err, "TOCSIN_RELAY_DATABASE: database takes a postgresql:// URL"));

  {
    g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, sqlite);

    g_assert_cmpuint (health_status (relay), ==, 200);
  }
  g_unsetenv ("TOCSIN_RELAY_DATABASE");
  tocsin_test_rmdir_recursive (dir);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/relay/health/sqlite", test_sqlite);
  g_test_add_func ("/relay/health/postgres", test_postgres);
  g_test_add_func ("/relay/health/database-env", test_database_env);
  return g_test_run ();
}
