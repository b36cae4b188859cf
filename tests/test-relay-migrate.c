/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-migrate.c: `tocsin-relay migrate` (issue 16) as an operator runs it: a real relay
 * on a real SQLite data dir is used as people use it (channels with templates, actions and
 * forwards, a Direct inbox, messages with a dedup key, an admin key), stopped, and copied by the
 * command into a real PostgreSQL that tests/tocsin-test-postgres.c starts; then the PostgreSQL
 * backend must answer every old token, replay the same ids and bytes, continue each channel's
 * ids, still deduplicate, and hold the same deliveries log. The refusals are checked by their
 * sentences.
 */
#define G_LOG_DOMAIN "tocsin-test"

#include "config.h"

#include <string.h>
#include <sqlite3.h>

#include "tocsin-relay-store.h"
#include "tocsin-relay-store-pg.h"
#include "tocsin-test-postgres.h"
#include "tocsin-test-relay.h"

#ifdef HAVE_LIBPQ

/* Runs `tocsin-relay migrate ARGS…`; returns its exit status, with stdout and stderr. */
static int
run_migrate (char       **out,
             char       **err,
             const char  *data_dir,
             const char  *database)
{
  g_autofree char *dir_arg = g_strdup_printf ("--data-dir=%s", data_dir);
  g_autofree char *db_arg = g_strdup_printf ("--database=%s", database);
  int status = tocsin_test_relay_run (out, err, "migrate", dir_arg, db_arg, NULL);

  g_test_message ("migrate: %s%s", *out, *err);
  return status;
}

static JsonObject *
post_json (TocsinTestRelay    *relay,
           const char         *path,
           const char         *body,
           const char * const *headers,
           guint               expected)
{
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  node = tocsin_test_http_json (relay, "POST", path, body ? "application/json" : NULL, body,
                                headers, &status);
  g_assert_cmpuint (status, ==, expected);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
  return json_object_ref (json_node_get_object (node));
}

static void
ring (TocsinTestRelay    *relay,
      const char         *prefix,
      const char         *token,
      const char         *body,
      const char * const *headers)
{
  g_autofree char *path = g_strdup_printf ("%s%s", prefix, token);

  g_assert_cmpuint (tocsin_test_http (relay, "POST", path, "application/json", body, -1,
                                      headers, NULL, NULL), ==, 200);
}

static JsonObject *
http_deliveries (TocsinTestRelay *relay,
                 JsonObject      *channel)
{
  g_autofree char *path = g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT "/deliveries",
                                           json_object_get_int_member (channel, "id"));
  g_autofree char *auth = g_strdup_printf ("Bearer %s",
                                           json_object_get_string_member (channel, "owner_key"));
  const char *headers[] = { "Authorization", auth, NULL };
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  node = tocsin_test_http_json (relay, "GET", path, NULL, NULL, headers, &status);
  g_assert_cmpuint (status, ==, 200);
  return json_object_ref (json_node_get_object (node));
}

static gboolean
has_attempt (TocsinTestRelay *relay,
             JsonObject      *channel)
{
  g_autoptr(JsonObject) log = http_deliveries (relay, channel);

  return json_array_get_length (json_object_get_array_member (log, "attempts")) > 0;
}

/* What SQLite replays of a channel: "ID:BYTES" lines. */
static gboolean
add_line (gint64   id,
          GBytes  *message,
          gpointer user_data)
{
  gsize length;
  const char *data = g_bytes_get_data (message, &length);

  g_string_append_printf (user_data, "%" G_GINT64_FORMAT ":%.*s\n", id, (int) length, data);
  return TRUE;
}

static char *
sqlite_replay (TocsinRelayStore *store,
               gint64            channel_id)
{
  g_autoptr(GString) lines = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  gint64 gap_from = 0, gap_to = 0;

  g_assert_true (tocsin_relay_store_replay_page (store, channel_id, -1, 0, add_line, lines,
                                                 &gap_from, &gap_to, &error));
  g_assert_no_error (error);
  return g_string_free (g_steal_pointer (&lines), FALSE);
}

static char *
pg_replay (TocsinRelayStorePg *pg,
           gint64              channel_id)
{
  g_autoptr(GString) lines = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinRelayReplayPage) page = NULL;

  page = tocsin_relay_store_pg_replay_page (pg, channel_id, -1, 0, 365 * 24 * 3600, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < page->ids->len; i++)
    add_line (g_array_index (page->ids, gint64, i), page->messages->pdata[i], lines);
  return g_string_free (g_steal_pointer (&lines), FALSE);
}

static char *
deliveries_text (JsonObject *log)
{
  g_autoptr(JsonNode) node = json_node_new (JSON_NODE_OBJECT);

  json_node_set_object (node, log);
  return json_to_string (node, FALSE);
}

/* The dedup row the relay wrote for @channel_id, read from the SQLite file. */
static void
sqlite_dedup (const char *data_dir,
              gint64      channel_id,
              char      **key_hash,
              char      **content_hash,
              gint64     *message_id)
{
  g_autofree char *path = g_build_filename (data_dir, "relay.db", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT key_hash, content_hash, message_id FROM dedup"
                                       " WHERE channel_id = ?", -1, &stmt, NULL), ==, SQLITE_OK);
  sqlite3_bind_int64 (stmt, 1, channel_id);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  *key_hash = g_strdup ((const char *) sqlite3_column_text (stmt, 0));
  *content_hash = g_strdup ((const char *) sqlite3_column_text (stmt, 1));
  *message_id = sqlite3_column_int64 (stmt, 2);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
}

static TocsinRelayCommit *
pg_commit_one (TocsinRelayStorePg *pg,
               gint64              channel_id,
               const char         *key_hash,
               const char         *content_hash)
{
  g_autoptr(TocsinMessage) message = tocsin_message_new ();
  TocsinRelayStorePgWrite write = { 0 };
  TocsinRelayCommit *commit = NULL;
  GError *errors[1] = { NULL };
  g_autoptr(GError) error = NULL;

  g_free (message->title);
  message->title = g_strdup ("After the move");
  message->time_ms = g_get_real_time () / 1000;
  write.channel_id = channel_id;
  write.message = message;
  write.key_hash = key_hash;
  write.content_hash = content_hash;
  write.retention = 3600;
  g_assert_true (tocsin_relay_store_pg_commit (pg, &write, 1, &commit, errors, &error));
  g_assert_no_error (error);
  g_assert_no_error (errors[0]);
  g_assert_nonnull (commit);
  return commit;
}

static const char *const serve_args[] = {
  "--smtp-listen=127.0.0.1:0", "--mail-domain=relay.example", NULL
};

static void
test_migrate_everything (void)
{
  g_autoptr(TocsinTestPostgres) server = tocsin_test_postgres_start_database ();
  g_autoptr(TocsinTestRelay) relay = NULL;
  g_autoptr(JsonObject) alerts = NULL, plain = NULL, inbox = NULL;
  g_autoptr(JsonObject) sqlite_log = NULL, pg_log = NULL;
  g_autoptr(TocsinRelayStorePg) pg = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL, *err = NULL, *admin_key = NULL, *public_url = NULL;
  g_autofree char *alerts_replay = NULL, *plain_replay = NULL, *inbox_replay = NULL;
  g_autofree char *key_hash = NULL, *content_hash = NULL, *spec = NULL;
  g_autofree char *sqlite_log_text = NULL, *pg_log_text = NULL;
  const char *const idem[] = { "Idempotency-Key", "order-7", NULL };
  gint64 alerts_id, plain_id, inbox_id, dedup_message_id, alerts_last;

  if (server == NULL)
    return;

  /* A relay used as people use it, with the email trigger's addresses. */
  relay = tocsin_test_relay_start (NULL, serve_args);
  spec = g_strdup ("{\"name\":\"Alerts\",\"title\":\"{{title}}\",\"body\":\"{{status}}\","
                   "\"link\":\"https://status.example/{{id}}\",\"condition\":\"status != 'ok'\","
                   "\"actions\":[{\"name\":\"Open\",\"kind\":\"view\","
                   "\"url\":\"https://status.example/{{title}}\"}],"
                   "\"forwards\":[{\"name\":\"hook\",\"url\":\"http://127.0.0.1:1/hook\"}]}");
  alerts = post_json (relay, "/v1/channels", spec, NULL, 201);
  plain = post_json (relay, "/v1/channels", "{\"name\":\"Plain\",\"title\":\"{{title}}\"}", NULL,
                     201);
  inbox = post_json (relay, "/v1/direct", NULL, NULL, 201);
  alerts_id = json_object_get_int_member (alerts, "id");
  plain_id = json_object_get_int_member (plain, "id");
  inbox_id = json_object_get_int_member (inbox, "id");
  g_assert_true (json_object_has_member (alerts, "email_token"));

  ring (relay, "/t/", json_object_get_string_member (alerts, "trigger_token"),
        "{\"title\":\"Disk\",\"status\":\"firing\"}", idem);
  ring (relay, "/t/", json_object_get_string_member (alerts, "trigger_token"),
        "{\"title\":\"CPU\",\"status\":\"firing\"}", NULL);
  for (int i = 0; i < 3; i++)
    ring (relay, "/t/", json_object_get_string_member (plain, "trigger_token"),
          "{\"title\":\"Backup done\"}", NULL);
  ring (relay, "/d/", json_object_get_string_member (inbox, "direct_key"),
        "{\"title\":\"Hello\"}", NULL);
  g_assert_cmpint (tocsin_test_relay_cli (relay, &admin_key, NULL, "key", "create", NULL), ==, 0);
  g_strstrip (admin_key);
  /* The forward's target refuses connections: its deliveries wait with an attempt logged. */
  TOCSIN_WAIT_UNTIL (has_attempt (relay, alerts));

  /* While it serves, migrate refuses to read its data dir. */
  g_assert_cmpint (run_migrate (&out, &err, relay->data_dir,
                                tocsin_test_postgres_conninfo (server)), ==, 1);
  g_assert_nonnull (strstr (err, "is using"));
  g_assert_nonnull (strstr (err, "stop it"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  tocsin_test_relay_stop (relay, FALSE);

  /* What SQLite holds, to compare with. */
  {
    TocsinRelayStore *store = tocsin_relay_store_open (relay->data_dir, &error);

    g_assert_no_error (error);
    alerts_replay = sqlite_replay (store, alerts_id);
    plain_replay = sqlite_replay (store, plain_id);
    inbox_replay = sqlite_replay (store, inbox_id);
    sqlite_log = tocsin_relay_store_list_deliveries (store, alerts_id, 100, &error);
    g_assert_no_error (error);
    public_url = tocsin_relay_store_dup_public_url (store);
    tocsin_relay_store_free (store);
  }
  g_assert_nonnull (public_url);
  g_assert_true (g_str_has_prefix (alerts_replay, "1:"));
  g_assert_nonnull (strstr (alerts_replay, "\n2:"));
  sqlite_dedup (relay->data_dir, alerts_id, &key_hash, &content_hash, &dedup_message_id);
  g_assert_cmpint (dedup_message_id, ==, 1);

  g_assert_cmpint (run_migrate (&out, &err, relay->data_dir,
                                tocsin_test_postgres_conninfo (server)), ==, 0);
  g_assert_true (g_regex_match_simple ("channels +3\n", out, 0, 0));
  g_assert_true (g_regex_match_simple ("messages +6\n", out, 0, 0));
  g_assert_true (g_regex_match_simple ("admin_keys +1\n", out, 0, 0));
  g_assert_true (g_regex_match_simple ("dedup +1\n", out, 0, 0));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  pg = tocsin_relay_store_pg_open (tocsin_test_postgres_conninfo (server), &error);
  g_assert_no_error (error);

  /* Every old token finds its channel: webhook URLs, subscribe links, owner keys, the email
   * address and the Direct key did not change. */
  {
    g_autoptr(TocsinRelayChannel) by_trigger = NULL, by_subscribe = NULL, by_owner = NULL;
    g_autoptr(TocsinRelayChannel) by_email = NULL, direct = NULL, direct_sub = NULL;
    g_autoptr(TocsinRelayChannel) plain_channel = NULL, fresh = NULL;
    TocsinRelayChannelSpec fresh_spec = { .name = "New", .title = "{{title}}" };

    by_trigger = tocsin_relay_store_pg_find_by_trigger (
      pg, json_object_get_string_member (alerts, "trigger_token"), &error);
    g_assert_no_error (error);
    g_assert_nonnull (by_trigger);
    g_assert_cmpint (by_trigger->id, ==, alerts_id);
    g_assert_cmpstr (by_trigger->name, ==, "Alerts");
    g_assert_cmpstr (by_trigger->body_source, ==, "{{status}}");
    g_assert_cmpstr (by_trigger->condition_source, ==, "status != 'ok'");
    g_assert_cmpuint (by_trigger->actions->len, ==, 1);
    g_assert_cmpuint (by_trigger->forwards->len, ==, 1);
    g_assert_cmpint (by_trigger->last_id, ==, 2);
    by_subscribe = tocsin_relay_store_pg_find_by_subscribe (
      pg, json_object_get_string_member (alerts, "subscribe_token"), &error);
    g_assert_nonnull (by_subscribe);
    g_assert_cmpint (by_subscribe->id, ==, alerts_id);
    by_owner = tocsin_relay_store_pg_find_by_owner_key (
      pg, json_object_get_string_member (alerts, "owner_key"), &error);
    g_assert_nonnull (by_owner);
    g_assert_cmpint (by_owner->id, ==, alerts_id);
    by_email = tocsin_relay_store_pg_find_by_email (
      pg, json_object_get_string_member (alerts, "email_token"), &error);
    g_assert_nonnull (by_email);
    g_assert_cmpint (by_email->id, ==, alerts_id);
    direct = tocsin_relay_store_pg_find_by_trigger (
      pg, json_object_get_string_member (inbox, "direct_key"), &error);
    g_assert_nonnull (direct);
    g_assert_true (direct->direct);
    g_assert_cmpint (direct->id, ==, inbox_id);
    direct_sub = tocsin_relay_store_pg_find_by_subscribe (
      pg, json_object_get_string_member (inbox, "subscribe_token"), &error);
    g_assert_nonnull (direct_sub);
    g_assert_cmpint (direct_sub->id, ==, inbox_id);
    plain_channel = tocsin_relay_store_pg_find_by_id (pg, plain_id, &error);
    g_assert_nonnull (plain_channel);
    g_assert_cmpint (plain_channel->last_id, ==, 3);
    g_assert_no_error (error);

    /* A channel made now gets an id after every copied one. */
    fresh = tocsin_relay_store_pg_create_channel (pg, &fresh_spec, "webhook", NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpint (fresh->id, >, MAX (MAX (alerts_id, plain_id), inbox_id));
  }
  g_assert_true (tocsin_relay_store_pg_check_admin_key (pg, admin_key, &error));
  g_assert_no_error (error);
  {
    g_autofree char *pg_url = tocsin_relay_store_pg_dup_public_url (pg, &error);

    g_autofree char *domain = tocsin_relay_store_pg_dup_meta (pg, "mail_domain", &error);

    g_assert_cmpstr (pg_url, ==, public_url);
    g_assert_cmpstr (domain, ==, "relay.example");
  }

  /* Messages replay with the same ids and bytes (subscribers' cursors stay valid). */
  {
    g_autofree char *a = pg_replay (pg, alerts_id);
    g_autofree char *p = pg_replay (pg, plain_id);
    g_autofree char *d = pg_replay (pg, inbox_id);

    g_assert_cmpstr (a, ==, alerts_replay);
    g_assert_cmpstr (p, ==, plain_replay);
    g_assert_cmpstr (d, ==, inbox_replay);
  }

  /* The dedup key still deduplicates: the same content is message 1 again, and the deliveries
   * log is the one SQLite had. */
  pg_log = tocsin_relay_store_pg_list_deliveries (pg, alerts_id, 100, &error);
  g_assert_no_error (error);
  sqlite_log_text = deliveries_text (sqlite_log);
  pg_log_text = deliveries_text (pg_log);
  g_assert_cmpstr (pg_log_text, ==, sqlite_log_text);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (pg_log, "deliveries")),
                    ==, 2);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (pg_log, "attempts")),
                    >, 0);
  {
    g_autoptr(TocsinRelayCommit) again = pg_commit_one (pg, alerts_id, key_hash, content_hash);

    g_assert_true (again->duplicate);
    g_assert_cmpint (again->id, ==, dedup_message_id);
  }

  /* A new message continues at last_id + 1. */
  alerts_last = 2;
  {
    g_autoptr(TocsinRelayCommit) next = pg_commit_one (pg, alerts_id, NULL, NULL);

    g_assert_false (next->duplicate);
    g_assert_cmpint (next->id, ==, alerts_last + 1);
  }

  /* Twice into the same database: refused, and nothing changes there. */
  g_assert_cmpint (run_migrate (&out, &err, relay->data_dir,
                                tocsin_test_postgres_conninfo (server)), ==, 1);
  g_assert_nonnull (strstr (err, "already holds"));
  g_assert_nonnull (strstr (err, "only into an empty database"));
  g_assert_cmpint (tocsin_relay_store_pg_count_rows (pg, TOCSIN_RELAY_STORE_PG_TABLE_CHANNELS,
                                                     &error), ==, 4);
}

/* A row PostgreSQL refuses (text that is not UTF-8, which SQLite lets in) after thousands of
 * good ones, in the last table copied but one: nothing at all is left in PostgreSQL, and the
 * sentence says so. */
static void
test_migrate_all_or_nothing (void)
{
  g_autoptr(TocsinTestPostgres) server = tocsin_test_postgres_start_database ();
  g_autoptr(TocsinTestRelay) relay = NULL;
  g_autoptr(JsonObject) channel = NULL;
  g_autoptr(TocsinRelayStorePg) pg = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL, *err = NULL, *path = NULL;
  sqlite3 *db = NULL;

  if (server == NULL)
    return;
  relay = tocsin_test_relay_start (NULL, NULL);
  channel = post_json (relay, "/v1/channels", "{\"name\":\"Busy\",\"title\":\"{{title}}\"}",
                       NULL, 201);
  ring (relay, "/t/", json_object_get_string_member (channel, "trigger_token"),
        "{\"title\":\"One\"}", NULL);
  tocsin_test_relay_stop (relay, FALSE);

  /* More rows than one pipeline batch, then the bad one. */
  path = g_build_filename (relay->data_dir, "relay.db", NULL);
  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db,
                                 "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n"
                                 " WHERE i < 3000) INSERT INTO messages SELECT channel_id, i,"
                                 " time_ms, data FROM n, messages WHERE id = 1;"
                                 "UPDATE channels SET last_id = 3000;"
                                 "INSERT INTO dedup SELECT id, CAST(X'FF' AS TEXT), 'c', 1,"
                                 " CAST(strftime('%s', 'now') AS INTEGER) * 1000 FROM channels;",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  g_assert_cmpint (run_migrate (&out, &err, relay->data_dir,
                                tocsin_test_postgres_conninfo (server)), ==, 1);
  g_assert_nonnull (strstr (err, "invalid byte sequence"));
  g_assert_nonnull (strstr (err, "Nothing was copied"));

  pg = tocsin_relay_store_pg_open (tocsin_test_postgres_conninfo (server), &error);
  g_assert_no_error (error);
  for (int t = 0; t < TOCSIN_RELAY_STORE_PG_N_TABLES; t++)
    g_assert_cmpint (tocsin_relay_store_pg_count_rows (pg, t, &error), ==, 0);
  g_assert_no_error (error);
}

/* A URL that is not PostgreSQL's, a server that does not answer, and a data dir with no relay
 * are refused with what to fix. */
static void
test_migrate_refusals (void)
{
  g_autoptr(TocsinTestRelay) relay = NULL;
  g_autofree char *out = NULL, *err = NULL, *empty = NULL;
  guint16 port = tocsin_test_free_port ();
  g_autofree char *nobody = g_strdup_printf ("postgresql://tocsin@127.0.0.1:%u/tocsin", port);

  relay = tocsin_test_relay_start (NULL, NULL);
  tocsin_test_relay_stop (relay, FALSE);

  g_assert_cmpint (run_migrate (&out, &err, relay->data_dir, "mysql://root@localhost/tocsin"),
                   ==, 1);
  g_assert_nonnull (strstr (err, "takes a postgresql:// URL"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  g_assert_cmpint (run_migrate (&out, &err, relay->data_dir, nobody), ==, 1);
  g_assert_nonnull (strstr (err, "Could not connect to PostgreSQL"));
  g_assert_nonnull (strstr (err, "Check --database"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  empty = tocsin_test_make_tmpdir ("tocsin-migrate-empty");
  g_assert_cmpint (run_migrate (&out, &err, empty, nobody), ==, 1);
  g_assert_nonnull (strstr (err, "There is no relay data in"));
  tocsin_test_rmdir_recursive (empty);
}

#else

static void
test_migrate_no_libpq (void)
{
  g_test_skip ("This build has no libpq (libpq-dev): migrate cannot reach PostgreSQL");
}

#endif /* HAVE_LIBPQ */

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
#ifdef HAVE_LIBPQ
  g_test_add_func ("/relay/migrate/everything", test_migrate_everything);
  g_test_add_func ("/relay/migrate/all-or-nothing", test_migrate_all_or_nothing);
  g_test_add_func ("/relay/migrate/refusals", test_migrate_refusals);
#else
  g_test_add_func ("/relay/migrate/no-libpq", test_migrate_no_libpq);
#endif
  return g_test_run ();
}
