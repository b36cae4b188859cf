/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-app-tls.c: the app's engine against a relay serving TLS with a self-signed CA (issue 4:
 * "A relay with a self-signed certificate can be trusted through a CA file set in the
 * preferences"; issue 6: "a self-signed CA that the app is told to trust, and a wrong one it
 * must refuse"). Runs under build-aux/with-dbusmock.sh like the other app tests.
 */
#include "config.h"

#include <string.h>

#include "tocsin-client.h"
#include "tocsin-test-relay.h"
#include "tocsin-test-tls.h"

typedef struct
{
  char            *dir;
  TocsinTestPki   *pki;
  TocsinTestRelay *relay;
  JsonObject      *channel;
  char            *subscribe_url;
  TocsinHistory   *history;
  GSettings       *settings;
  TocsinNotifier  *notifier;
  TocsinClient    *client;
  GPtrArray       *received;    /* TocsinRecord */
} Fixture;

static void
on_record_received (TocsinClient *client,
                    TocsinRecord *record,
                    int           result,
                    Fixture      *f)
{
  g_ptr_array_add (f->received, g_object_ref (record));
}

static void
store_result (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autofree char *cert = NULL;
  g_autofree char *key = NULL;
  g_autofree char *db = NULL;
  g_autoptr(GTlsDatabase) trust = NULL;
  const char *args[3] = { NULL, NULL, NULL };

  f->dir = tocsin_test_make_tmpdir ("tocsin-app-tls-test");
  f->pki = tocsin_test_pki_new ();
  cert = g_strdup_printf ("--tls-cert=%s", f->pki->cert_file);
  key = g_strdup_printf ("--tls-key=%s", f->pki->key_file);
  args[0] = cert;
  args[1] = key;
  f->relay = tocsin_test_relay_start (NULL, args);
  g_assert_true (g_str_has_prefix (f->relay->base_url, "https://"));
  /* The test itself rings as a client that trusts the CA. */
  trust = tocsin_test_pki_database (f->pki->ca_file);
  soup_session_set_tls_database (f->relay->session, trust);
  f->channel = tocsin_test_relay_create_channel (f->relay, "Secure alerts", "{{title}}", NULL,
                                                 NULL, NULL);
  f->subscribe_url = g_strdup (json_object_get_string_member (f->channel, "subscribe_url"));
  g_assert_true (g_str_has_prefix (f->subscribe_url, "https://"));

  db = g_build_filename (f->dir, "tocsin", "history.db", NULL);
  f->history = tocsin_history_new (db);
  f->settings = g_settings_new (APP_ID);
  g_settings_set_string (f->settings, "ca-file",
                         g_str_equal (data, "ca") ? f->pki->ca_file : f->pki->other_ca_file);
  f->notifier = tocsin_notifier_new (f->settings);
  f->received = g_ptr_array_new_with_free_func (g_object_unref);

  f->client = tocsin_client_new (f->history, f->notifier, f->settings);
  g_signal_connect (f->client, "record-received", G_CALLBACK (on_record_received), f);
  tocsin_client_start (f->client);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_started (f->client));
  /* What the preferences do when the CA file changes; the file is read off the main loop. */
  tocsin_client_reload_tls (f->client);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_tls_database (f->client) != NULL);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  if (f->client)
    tocsin_client_stop (f->client);
  g_clear_object (&f->client);
  g_clear_object (&f->notifier);
  if (f->settings)
    g_settings_reset (f->settings, "ca-file");
  g_clear_object (&f->settings);
  tocsin_history_flush_sync (f->history);
  g_clear_object (&f->history);
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
  g_clear_pointer (&f->channel, json_object_unref);
  g_clear_pointer (&f->received, g_ptr_array_unref);
  g_clear_pointer (&f->pki, tocsin_test_pki_free);
  tocsin_test_rmdir_recursive (f->dir);
  g_free (f->dir);
  g_free (f->subscribe_url);
}

static void
ring (Fixture    *f,
      const char *title)
{
  g_autofree char *escaped = g_uri_escape_string (title, NULL, FALSE);
  g_autofree char *path = g_strdup_printf ("/t/%s?title=%s",
                                           json_object_get_string_member (f->channel,
                                                                          "trigger_token"),
                                           escaped);
  g_autoptr(GBytes) response = NULL;

  g_assert_cmpuint (tocsin_test_http (f->relay, "GET", path, NULL, NULL, 0, NULL, &response,
                                      NULL), ==, 200);
}

/* With the relay's CA file in the preferences, the app asks what the link is, subscribes over
 * wss and receives what is rung. */
static void
test_trusted_ca_file (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GAsyncResult) res = NULL, res2 = NULL;
  g_autoptr(TocsinSubscription) fetched = NULL;
  g_autoptr(TocsinSubscription) sub = NULL;
  g_autoptr(JsonObject) info = NULL;
  g_autoptr(GError) error = NULL;
  TocsinConnection *conn;

  tocsin_client_fetch_channel_info_async (f->client, f->subscribe_url, NULL, store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  fetched = tocsin_client_fetch_channel_info_finish (f->client, res, &info, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (tocsin_subscription_get_name (fetched), ==, "Secure alerts");

  tocsin_client_subscribe_async (f->client, fetched, NULL, store_result, &res2);
  TOCSIN_WAIT_UNTIL (res2 != NULL);
  sub = tocsin_client_subscribe_finish (f->client, res2, &error);
  g_assert_no_error (error);
  TOCSIN_WAIT_UNTIL (tocsin_subscription_get_cursor (sub) != TOCSIN_CURSOR_NONE);
  conn = tocsin_client_get_connection (f->client, tocsin_subscription_get_relay_url (sub));
  g_assert_nonnull (conn);
  g_assert_cmpint (tocsin_connection_get_state (conn), ==, TOCSIN_CONNECTION_CONNECTED);

  ring (f, "Certificate trusted, message through");
  TOCSIN_WAIT_UNTIL (f->received->len >= 1);
  g_assert_cmpstr (tocsin_record_get_title (g_ptr_array_index (f->received, 0)), ==,
                   "Certificate trusted, message through");
}

/* With another CA's file, the app refuses the relay: asking what the link is fails, the
 * connection never comes up and says why in words, and nothing is received. */
static void
test_wrong_ca_file (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GAsyncResult) res = NULL, res2 = NULL;
  g_autoptr(TocsinSubscription) fetched = NULL;
  g_autoptr(TocsinSubscription) manual = NULL;
  g_autoptr(TocsinSubscription) sub = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *relay_url = NULL;
  g_autofree char *token = NULL;
  TocsinConnection *conn;
  const char *why;

  tocsin_client_fetch_channel_info_async (f->client, f->subscribe_url, NULL, store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  fetched = tocsin_client_fetch_channel_info_finish (f->client, res, NULL, &error);
  g_assert_null (fetched);
  g_assert_nonnull (error);
  g_test_message ("fetch refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, "certificate is not trusted"));
  g_clear_error (&error);

  /* A subscription saved earlier (or added without asking) still must not connect. */
  tocsin_subscription_parse_url (f->subscribe_url, &relay_url, &token, &error);
  g_assert_no_error (error);
  manual = tocsin_subscription_new (relay_url, token);
  tocsin_subscription_set_channel_id (manual, json_object_get_int_member (f->channel, "id"));
  tocsin_subscription_set_name (manual, "Secure alerts");
  tocsin_client_subscribe_async (f->client, manual, NULL, store_result, &res2);
  TOCSIN_WAIT_UNTIL (res2 != NULL);
  sub = tocsin_client_subscribe_finish (f->client, res2, &error);
  g_assert_no_error (error);

  conn = tocsin_client_get_connection (f->client, relay_url);
  g_assert_nonnull (conn);
  TOCSIN_WAIT_UNTIL (tocsin_connection_get_last_error (conn) != NULL &&
                     tocsin_connection_get_state (conn) == TOCSIN_CONNECTION_WAITING);
  why = tocsin_connection_get_last_error (conn);
  g_test_message ("connection state: %s", why);
  g_assert_nonnull (strstr (why, "certificate is not trusted"));

  /* Rung now, it must not arrive through an untrusted connection. The relay's own ack is the
   * only thing we wait for; the app is then asked once more to connect, and refuses again. */
  ring (f, "Must not arrive");
  tocsin_connection_reconnect_now (conn);
  TOCSIN_WAIT_UNTIL (tocsin_connection_get_state (conn) == TOCSIN_CONNECTION_WAITING);
  g_assert_cmpuint (f->received->len, ==, 0);
  g_assert_cmpint (tocsin_subscription_get_cursor (sub), ==, TOCSIN_CURSOR_NONE);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  /* Which of the fixture's CA files the preferences get: the relay's, or an unrelated one. */
  g_test_add ("/app/tls/trusted-ca-file", Fixture, "ca", fixture_setup, test_trusted_ca_file,
              fixture_teardown);
  g_test_add ("/app/tls/wrong-ca-file", Fixture, "other-ca", fixture_setup, test_wrong_ca_file,
              fixture_teardown);

  return g_test_run ();
}
