/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-app-client.c: the app's engine against the real relay: subscribe from a link, receive,
 * replace, nothing twice after a reconnect, catch-up after the relay and the app restart, a
 * backlog that arrives in a few big reads (and the app stopping in its middle).
 * Notifications go to dbusmock's daemon (build-aux/with-dbusmock.sh).
 */
#include "config.h"

#include "tocsin-client.h"
#include "tocsin-test-notify.h"
#include "tocsin-test-relay.h"

typedef struct
{
  char               *dir;
  guint16             port;
  char               *relay_url;      /* on the fixed port, so it survives restarts */
  TocsinTestRelay    *relay;
  JsonObject         *channel;
  char               *subscribe_url;
  TocsinHistory      *history;
  GSettings          *settings;
  TocsinNotifier     *notifier;
  TocsinClient       *client;
  TocsinSubscription *sub;
  GPtrArray          *received;       /* TocsinRecord */
  GArray             *results;        /* TocsinStoreResult */
} Fixture;

/* Notify calls the daemon had when the current test began: tests count only their own. */
static guint calls_offset;

/* Calls Notify(summary = @summary) made since the test began; @urgency gets the last one's
 * urgency hint (optional). */
static guint
notify_calls_with_summary (const char *summary,
                           guchar     *urgency)
{
  g_autoptr(GPtrArray) calls = tocsin_test_notify_calls (NULL);
  guint n = 0;

  for (guint i = calls_offset; i < calls->len; i++)
    {
      TocsinTestNotifyCall *call = calls->pdata[i];

      if (g_strcmp0 (call->summary, summary) == 0)
        {
          n++;
          if (urgency && !g_variant_lookup (call->hints, "urgency", "y", urgency))
            *urgency = 255;
        }
    }
  return n;
}

static guint
n_notify_calls_total (void)
{
  g_autoptr(GPtrArray) calls = tocsin_test_notify_calls (NULL);

  return calls->len;
}

static guint
n_notify_calls_with_summary (const char *summary)
{
  return notify_calls_with_summary (summary, NULL);
}

static void
on_record_received (TocsinClient *client,
                    TocsinRecord *record,
                    int           result,
                    Fixture      *f)
{
  TocsinStoreResult r = result;

  g_ptr_array_add (f->received, g_object_ref (record));
  g_array_append_val (f->results, r);
}

static void
store_result (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static void
make_client (Fixture *f)
{
  f->client = tocsin_client_new (f->history, f->notifier, f->settings);
  g_signal_connect (f->client, "record-received", G_CALLBACK (on_record_received), f);
  tocsin_client_start (f->client);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_started (f->client));
}

static TocsinConnection *
connection (Fixture *f)
{
  return tocsin_client_get_connection (f->client, f->relay_url);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autofree char *listen = NULL;
  g_autofree char *db = NULL;
  g_auto(GStrv) extra = g_strsplit (data ? data : "", " ", 3);
  const char *args[4] = { NULL, NULL, NULL, NULL };
  g_autoptr(GAsyncResult) res = NULL, res2 = NULL;
  g_autoptr(TocsinSubscription) fetched = NULL;
  g_autoptr(JsonObject) info = NULL;
  g_autoptr(GError) error = NULL;

  f->dir = tocsin_test_make_tmpdir ("tocsin-client-test");
  f->port = tocsin_test_free_port ();
  f->relay_url = g_strdup_printf ("http://127.0.0.1:%u", f->port);
  listen = g_strdup_printf ("--listen=127.0.0.1:%u", f->port);
  args[0] = listen;
  /* e.g. "--retention=1", or two options with a space between. */
  for (guint i = 0; extra[i] != NULL && i < 2; i++)
    args[i + 1] = extra[i];
  f->relay = tocsin_test_relay_start (NULL, args);
  f->channel = tocsin_test_relay_create_channel (f->relay, "Prod alerts",
                                                 "Alerte serveur {{server_name}}",
                                                 "L'utilisation du CPU a atteint {{cpu_usage}}%",
                                                 NULL, NULL);
  f->subscribe_url = g_strdup_printf ("%s/s/%s", f->relay_url,
                                      json_object_get_string_member (f->channel,
                                                                     "subscribe_token"));

  db = g_build_filename (f->dir, "tocsin", "history.db", NULL);
  f->history = tocsin_history_new (db);
  f->settings = g_settings_new (APP_ID);
  /* The memory backend lives as long as the process: start every test from the defaults. */
  g_settings_reset (f->settings, "quiet-hours-enabled");
  g_settings_reset (f->settings, "quiet-hours-start");
  g_settings_reset (f->settings, "quiet-hours-end");
  f->notifier = tocsin_notifier_new (f->settings);
  calls_offset = n_notify_calls_total ();
  f->received = g_ptr_array_new_with_free_func (g_object_unref);
  f->results = g_array_new (FALSE, FALSE, sizeof (TocsinStoreResult));
  make_client (f);

  /* What the subscribe dialog does: ask the relay what the link is, then subscribe. */
  tocsin_client_fetch_channel_info_async (f->client, f->subscribe_url, NULL, store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  fetched = tocsin_client_fetch_channel_info_finish (f->client, res, &info, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (tocsin_subscription_get_name (fetched), ==, "Prod alerts");
  g_assert_cmpint (tocsin_subscription_get_channel_id (fetched), ==,
                   json_object_get_int_member (f->channel, "id"));
  g_assert_nonnull (info);

  tocsin_client_subscribe_async (f->client, fetched, NULL, store_result, &res2);
  TOCSIN_WAIT_UNTIL (res2 != NULL);
  f->sub = tocsin_client_subscribe_finish (f->client, res2, &error);
  g_assert_no_error (error);
  g_assert_true (f->sub == fetched);
  /* Live once the relay said "subscribed" (the cursor is then the channel's last id). */
  TOCSIN_WAIT_UNTIL (tocsin_subscription_get_cursor (f->sub) != TOCSIN_CURSOR_NONE);
  g_assert_cmpint (tocsin_connection_get_state (connection (f)), ==,
                   TOCSIN_CONNECTION_CONNECTED);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->sub);
  if (f->client)
    tocsin_client_stop (f->client);
  g_clear_object (&f->client);
  g_clear_object (&f->notifier);
  g_clear_object (&f->settings);
  tocsin_history_flush_sync (f->history);
  g_clear_object (&f->history);
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
  g_clear_pointer (&f->channel, json_object_unref);
  g_clear_pointer (&f->received, g_ptr_array_unref);
  g_clear_pointer (&f->results, g_array_unref);
  tocsin_test_rmdir_recursive (f->dir);
  g_free (f->dir);
  g_free (f->relay_url);
  g_free (f->subscribe_url);
}

static void
ring_get (Fixture    *f,
          const char *server)
{
  g_autofree char *path = g_strdup_printf ("/t/%s?server_name=%s&cpu_usage=95",
                                           json_object_get_string_member (f->channel,
                                                                          "trigger_token"),
                                           server);
  g_autoptr(GBytes) response = NULL;

  g_assert_cmpuint (tocsin_test_http (f->relay, "GET", path, NULL, NULL, 0, NULL, &response,
                                      NULL), ==, 200);
}

static void
ring_post (Fixture    *f,
           const char *json)
{
  g_autofree char *path = g_strdup_printf ("/t/%s", json_object_get_string_member (f->channel,
                                                                                   "trigger_token"));
  g_autoptr(GBytes) response = NULL;

  g_assert_cmpuint (tocsin_test_http (f->relay, "POST", path, "application/json", json, -1,
                                      NULL, &response, NULL), ==, 200);
}

/* Waits until the relay lists no subscriber of the channel, as its owner sees it
 * (GET /v1/channels/{id}/subscribers): the app's connection is really gone, so what is rung
 * next is rung while the app is away. */
static void
wait_until_relay_has_no_subscribers (Fixture *f)
{
  g_autofree char *path = g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT "/subscribers",
                                           json_object_get_int_member (f->channel, "id"));
  g_autofree char *bearer = g_strconcat ("Bearer ",
                                         json_object_get_string_member (f->channel, "owner_key"),
                                         NULL);
  const char *headers[] = { "Authorization", bearer, NULL };

  for (;;)
    {
      guint status = 0;
      g_autoptr(JsonNode) answer = tocsin_test_http_json (f->relay, "GET", path, NULL, NULL,
                                                          headers, &status);
      JsonArray *subscribers;

      g_assert_cmpuint (status, ==, 200);
      subscribers = json_object_get_array_member (json_node_get_object (answer), "subscribers");
      if (json_array_get_length (subscribers) == 0)
        return;
      {
        gint64 until = g_get_monotonic_time () + 50 * 1000;
        TOCSIN_WAIT_UNTIL (g_get_monotonic_time () > until);
      }
    }
}

static gint64
count_records (Fixture *f)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  gint64 n;

  tocsin_history_flush_sync (f->history);
  tocsin_history_count_async (f->history, NULL, NULL, store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  n = tocsin_history_count_finish (f->history, res, &error);
  g_assert_no_error (error);
  return n;
}

static TocsinRecord *
received (Fixture *f,
          guint    i)
{
  return g_ptr_array_index (f->received, i);
}

static void
test_receive_and_replace (Fixture       *f,
                          gconstpointer  data)
{
  guint first_id;

  /* Echobell's GET example. */
  ring_get (f, "Production");
  TOCSIN_WAIT_UNTIL (f->received->len == 1);
  g_assert_cmpint (g_array_index (f->results, TocsinStoreResult, 0), ==, TOCSIN_STORE_ADDED);
  g_assert_cmpstr (tocsin_record_get_title (received (f, 0)), ==, "Alerte serveur Production");
  g_assert_cmpstr (tocsin_record_get_body (received (f, 0)), ==,
                   "L'utilisation du CPU a atteint 95%");
  g_assert_cmpstr (tocsin_record_get_channel_name (received (f, 0)), ==, "Prod alerts");
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur Production"), ==, 1);

  /* Echobell's POST example, with a link and a dedup key... */
  ring_post (f, "{\"server_name\":\"Staging\",\"cpu_usage\":80,\"eventId\":\"evt-1\","
                "\"externalLink\":\"https://dashboard.example.com/alerts/123\"}");
  TOCSIN_WAIT_UNTIL (f->received->len == 2);
  g_assert_cmpint (g_array_index (f->results, TocsinStoreResult, 1), ==, TOCSIN_STORE_ADDED);
  g_assert_cmpstr (tocsin_record_get_link (received (f, 1)), ==,
                   "https://dashboard.example.com/alerts/123");
  first_id = tocsin_record_get_id (received (f, 1));

  /* ...then the same key with new content replaces it in place, without ringing again. */
  ring_post (f, "{\"server_name\":\"Staging\",\"cpu_usage\":99,\"eventId\":\"evt-1\","
                "\"externalLink\":\"https://dashboard.example.com/alerts/123\"}");
  TOCSIN_WAIT_UNTIL (f->received->len == 3);
  g_assert_cmpint (g_array_index (f->results, TocsinStoreResult, 2), ==, TOCSIN_STORE_REPLACED);
  g_assert_cmpint (tocsin_record_get_id (received (f, 2)), ==, first_id);
  g_assert_cmpstr (tocsin_record_get_body (received (f, 2)), ==,
                   "L'utilisation du CPU a atteint 99%");
  g_assert_cmpint (count_records (f), ==, 2);
}

static void
test_dedup_after_reconnect (Fixture       *f,
                            gconstpointer  data)
{
  ring_get (f, "one");
  ring_get (f, "two");
  TOCSIN_WAIT_UNTIL (f->received->len == 2);

  /* Ask the relay for everything again (as after a lost cursor): the replay of 1 and 2 must
   * not show up as new records or notifications. */
  tocsin_connection_subscribe (connection (f), tocsin_subscription_get_token (f->sub), 0);
  ring_get (f, "three");
  TOCSIN_WAIT_UNTIL (f->received->len == 3);
  g_assert_cmpstr (tocsin_record_get_title (received (f, 2)), ==, "Alerte serveur three");

  /* A dropped connection resumes from the cursor. */
  tocsin_connection_reconnect_now (connection (f));
  TOCSIN_WAIT_UNTIL (tocsin_connection_get_state (connection (f)) == TOCSIN_CONNECTION_CONNECTED);
  ring_get (f, "four");
  TOCSIN_WAIT_UNTIL (f->received->len == 4);
  g_assert_cmpstr (tocsin_record_get_title (received (f, 3)), ==, "Alerte serveur four");

  g_assert_cmpint (count_records (f), ==, 4);
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur one"), ==, 1);
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur two"), ==, 1);
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur three"), ==, 1);
  /* The fourth within seconds makes a storm: it rings as the channel's summary instead (or on
   * its own if the storm window had passed), but once either way. */
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur four") +
                    n_notify_calls_with_summary ("4 new from Prod alerts"), ==, 1);
}

static void
test_catch_up_after_restart (Fixture       *f,
                             gconstpointer  data)
{
  TocsinConnection *conn = connection (f);

  ring_get (f, "before");
  TOCSIN_WAIT_UNTIL (f->received->len == 1);

  /* The relay restarts: the app goes offline, says when it retries, and comes back. */
  tocsin_test_relay_stop (f->relay, FALSE);
  TOCSIN_WAIT_UNTIL (tocsin_connection_get_state (conn) == TOCSIN_CONNECTION_WAITING);
  g_assert_cmpuint (tocsin_connection_get_retry_seconds (conn), <=, 2);
  tocsin_test_relay_restart (f->relay);
  ring_get (f, "during");
  TOCSIN_WAIT_UNTIL (f->received->len == 2);
  g_assert_cmpstr (tocsin_record_get_title (received (f, 1)), ==, "Alerte serveur during");
  g_assert_cmpint (tocsin_connection_get_state (conn), ==, TOCSIN_CONNECTION_CONNECTED);

  /* The app quits; a message arrives; the relay is killed hard and comes back; the app starts
   * again from its stored cursor and gets exactly the one it missed. */
  tocsin_client_stop (f->client);
  g_clear_object (&f->sub);
  g_clear_object (&f->client);
  tocsin_history_flush_sync (f->history);
  wait_until_relay_has_no_subscribers (f);
  ring_get (f, "while-closed");
  tocsin_test_relay_stop (f->relay, TRUE);
  tocsin_test_relay_restart (f->relay);

  make_client (f);
  TOCSIN_WAIT_UNTIL (f->received->len == 3);
  g_assert_cmpstr (tocsin_record_get_title (received (f, 2)), ==, "Alerte serveur while-closed");
  g_assert_cmpint (count_records (f), ==, 3);
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur before"), ==, 1);
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur during"), ==, 1);
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur while-closed"), ==, 1);
}

/* ---- the notifier on the full path: relay → connection → history → popup ---- */

static void
test_storm_end_to_end (Fixture       *f,
                       gconstpointer  data)
{
  const guint n = 7;

  /* A burst from one channel: each ring is milliseconds after the previous one, far inside
   * the notifier's 5 s storm window. */
  for (guint i = 1; i <= n; i++)
    {
      g_autofree char *server = g_strdup_printf ("storm%u", i);
      ring_get (f, server);
    }
  TOCSIN_WAIT_UNTIL (f->received->len == n);

  /* Every record is stored... */
  g_assert_cmpint (count_records (f), ==, n);
  /* ...the first three pop up on their own... */
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur storm1"), ==, 1);
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur storm2"), ==, 1);
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur storm3"), ==, 1);
  /* ...and the rest become one summary popup, updated in place as the count grows. Popups are
   * sent asynchronously, and counts that come while the summary's first Notify is unanswered
   * fold into one update, so the summary reaches the final count in at most n - 3 calls. */
  TOCSIN_WAIT_UNTIL (n_notify_calls_with_summary ("7 new from Prod alerts") == 1);
  g_assert_cmpuint (n_notify_calls_with_summary ("4 new from Prod alerts"), ==, 1);
  for (guint i = 4; i <= n; i++)
    {
      g_autofree char *server = g_strdup_printf ("Alerte serveur storm%u", i);

      g_assert_cmpuint (n_notify_calls_with_summary (server), ==, 0);
    }
  g_assert_cmpuint (n_notify_calls_total () - calls_offset, <=, n);
}

static void
test_quiet_hours_and_mute_end_to_end (Fixture       *f,
                                      gconstpointer  data)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autoptr(GDateTime) start = g_date_time_add_hours (now, -1);
  g_autoptr(GDateTime) end = g_date_time_add_hours (now, 1);
  g_autofree char *start_text = g_date_time_format (start, "%H:%M");
  g_autofree char *end_text = g_date_time_format (end, "%H:%M");
  guchar urgency = 0;

  /* Quiet hours around now: the record arrives, nothing pops up. */
  g_settings_set_string (f->settings, "quiet-hours-start", start_text);
  g_settings_set_string (f->settings, "quiet-hours-end", end_text);
  g_settings_set_boolean (f->settings, "quiet-hours-enabled", TRUE);
  ring_get (f, "quiet");
  TOCSIN_WAIT_UNTIL (f->received->len == 1);
  g_assert_cmpstr (tocsin_record_get_title (received (f, 0)), ==, "Alerte serveur quiet");
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur quiet"), ==, 0);

  /* The user makes the channel time-sensitive: it gets through quiet hours, as critical. */
  tocsin_subscription_set_notify_type (f->sub, TOCSIN_NOTIFY_TYPE_TIME_SENSITIVE);
  tocsin_client_update_subscription (f->client, f->sub);
  ring_get (f, "urgent");
  TOCSIN_WAIT_UNTIL (f->received->len == 2);
  g_assert_cmpuint (notify_calls_with_summary ("Alerte serveur urgent", &urgency), ==, 1);
  g_assert_cmpuint (urgency, ==, 2);

  /* Muted: never a popup, quiet hours or not; records still arrive. */
  tocsin_subscription_set_notify_type (f->sub, TOCSIN_NOTIFY_TYPE_NORMAL);
  tocsin_subscription_set_muted (f->sub, TRUE);
  tocsin_client_update_subscription (f->client, f->sub);
  g_settings_set_boolean (f->settings, "quiet-hours-enabled", FALSE);
  ring_get (f, "muted");
  TOCSIN_WAIT_UNTIL (f->received->len == 3);
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur muted"), ==, 0);

  /* Unmuted, outside quiet hours: a normal popup again. */
  tocsin_subscription_set_muted (f->sub, FALSE);
  tocsin_client_update_subscription (f->client, f->sub);
  ring_get (f, "back");
  TOCSIN_WAIT_UNTIL (f->received->len == 4);
  g_assert_cmpuint (notify_calls_with_summary ("Alerte serveur back", &urgency), ==, 1);
  g_assert_cmpuint (urgency, ==, 1);

  g_assert_cmpint (count_records (f), ==, 4);
  g_assert_cmpuint (n_notify_calls_total () - calls_offset, ==, 2);
}

/* ---- a gap: what the relay no longer keeps ---- */

static guint
count_gap_records (Fixture  *f,
                   char    **title)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) records = NULL;
  guint n = 0;

  tocsin_history_flush_sync (f->history);
  tocsin_history_query_async (f->history, NULL, 0, 1000, NULL, store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  records = tocsin_history_query_finish (f->history, res, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < records->len; i++)
    {
      TocsinRecord *record = g_ptr_array_index (records, i);

      if (tocsin_record_get_kind (record) == TOCSIN_RECORD_KIND_GAP)
        {
          n++;
          if (title)
            {
              g_free (*title);
              *title = g_strdup (tocsin_record_get_title (record));
            }
        }
    }
  return n;
}

static void
test_gap_after_retention (Fixture       *f,
                          gconstpointer  data)
{
  g_autofree char *title = NULL;
  gint64 cursor;

  /* The relay keeps messages for 1 s (--retention=1). One arrives while the app runs. */
  ring_get (f, "kept");
  TOCSIN_WAIT_UNTIL (f->received->len == 1);
  cursor = tocsin_subscription_get_cursor (f->sub);

  /* The app quits; two more are rung and outlive the relay's retention. */
  tocsin_client_stop (f->client);
  g_clear_object (&f->sub);
  g_clear_object (&f->client);
  tocsin_history_flush_sync (f->history);
  wait_until_relay_has_no_subscribers (f);
  ring_get (f, "lost-1");
  ring_get (f, "lost-2");
  /* The relay replays only messages younger than its retention (it checks the age on every
   * replay; pruning the rows later is only housekeeping), so once 1 s has passed on the clock
   * both are out of reach. Wait for the clock, not for a guess of how long things take. */
  {
    gint64 gone_at = g_get_real_time () + 1500 * 1000;
    TOCSIN_WAIT_UNTIL (g_get_real_time () > gone_at);
  }

  /* The app comes back with its old cursor: the relay can't replay them, and the app says so
   * with a record. */
  make_client (f);
  TOCSIN_WAIT_UNTIL (count_gap_records (f, &title) == 1);
  g_assert_cmpstr (title, ==, "Some notifications from Prod alerts were missed");

  /* It is said once: after another reconnect and a new message, still one gap record. */
  f->sub = g_object_ref (tocsin_client_find_subscription (f->client, f->relay_url,
                                                          json_object_get_int_member (f->channel,
                                                                                      "id")));
  TOCSIN_WAIT_UNTIL (tocsin_subscription_get_cursor (f->sub) == cursor + 2);
  /* A live message first: the relay is done with the replay, so the reconnect below drops an
   * idle stream. */
  ring_get (f, "after");
  TOCSIN_WAIT_UNTIL (f->received->len == 2);
  g_assert_cmpstr (tocsin_record_get_title (received (f, 1)), ==, "Alerte serveur after");
  tocsin_connection_reconnect_now (connection (f));
  TOCSIN_WAIT_UNTIL (tocsin_connection_get_state (connection (f)) == TOCSIN_CONNECTION_CONNECTED);
  ring_get (f, "after-reconnect");
  TOCSIN_WAIT_UNTIL (f->received->len == 3);
  g_assert_cmpstr (tocsin_record_get_title (received (f, 2)), ==,
                   "Alerte serveur after-reconnect");
  g_assert_cmpuint (count_gap_records (f, NULL), ==, 1);
  /* What was missed never rang (popups go out in order, so they would be in by now). */
  TOCSIN_WAIT_UNTIL (n_notify_calls_with_summary ("Alerte serveur after-reconnect") == 1);
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur lost-1"), ==, 0);
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur lost-2"), ==, 0);

  /* And after the app restarts again. */
  tocsin_client_stop (f->client);
  g_clear_object (&f->sub);
  g_clear_object (&f->client);
  tocsin_history_flush_sync (f->history);
  make_client (f);
  TOCSIN_WAIT_UNTIL (tocsin_connection_get_state (connection (f)) == TOCSIN_CONNECTION_CONNECTED);
  ring_get (f, "after-restart");
  TOCSIN_WAIT_UNTIL (f->received->len == 4);
  g_assert_cmpuint (count_gap_records (f, NULL), ==, 1);
}

/* ---- pop-ups: never twice ---- */

static guint32
popup_id_with_summary (const char *summary)
{
  g_autoptr(GPtrArray) calls = tocsin_test_notify_calls (NULL);

  for (guint i = calls_offset; i < calls->len; i++)
    {
      TocsinTestNotifyCall *call = calls->pdata[i];

      if (g_strcmp0 (call->summary, summary) == 0)
        return call->id;
    }
  return 0;
}

static gboolean
record_is_read (Fixture *f,
                gint64   id)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(TocsinRecord) record = NULL;
  g_autoptr(GError) error = NULL;

  tocsin_history_get_record_async (f->history, id, NULL, store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  record = tocsin_history_get_record_finish (f->history, res, &error);
  g_assert_no_error (error);
  g_assert_nonnull (record);
  return tocsin_record_get_read (record);
}

/* What the history already holds never pops up again, also for a client that has just started
 * and asks the relay for everything it retained; a new message pops up once, and its buttons
 * act on the stored record. */
static void
test_popup_once_after_resubscribe (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(TocsinSubscription) again = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  TocsinSubscription *sub;
  guint32 popup;
  gint64 id;

  ring_get (f, "one");
  ring_get (f, "two");
  TOCSIN_WAIT_UNTIL (f->received->len == 2);
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur one"), ==, 1);

  /* The app starts again and the link is subscribed afresh with everything retained (cursor
   * 0): the relay replays "one" and "two", which the history holds. */
  tocsin_client_unsubscribe (f->client, f->sub);
  tocsin_history_flush_sync (f->history);
  tocsin_client_stop (f->client);
  g_clear_object (&f->client);
  g_clear_object (&f->sub);
  make_client (f);
  again = tocsin_subscription_new (f->relay_url,
                                   json_object_get_string_member (f->channel, "subscribe_token"));
  tocsin_subscription_set_cursor (again, 0);
  tocsin_client_subscribe_async (f->client, again, NULL, store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  sub = tocsin_client_subscribe_finish (f->client, res, &error);
  g_assert_no_error (error);
  TOCSIN_WAIT_UNTIL (tocsin_subscription_get_cursor (sub) ==
                     tocsin_record_get_message_id (received (f, 1)));

  ring_get (f, "three");
  TOCSIN_WAIT_UNTIL (f->received->len == 3);
  g_assert_cmpstr (tocsin_record_get_title (received (f, 2)), ==, "Alerte serveur three");
  g_assert_cmpint (count_records (f), ==, 3);
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur one"), ==, 1);
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur two"), ==, 1);
  g_assert_cmpuint (n_notify_calls_with_summary ("Alerte serveur three"), ==, 1);

  /* "Mark as Read" on the popup of "three" marks that record read, and the popup goes. */
  popup = popup_id_with_summary ("Alerte serveur three");
  g_assert_cmpuint (popup, >, 0);
  id = tocsin_record_get_id (received (f, 2));
  tocsin_test_notify_click (NULL, popup, "mark-read");
  TOCSIN_WAIT_UNTIL (record_is_read (f, id));
  TOCSIN_WAIT_UNTIL (tocsin_test_notify_closed_count (NULL, popup) == 1);
}

/* ---- a backlog that arrives in a few big reads ---- */

#define BACKLOG 1500

static void
stop_at_first_record (TocsinClient *client,
                      TocsinRecord *record,
                      int           result,
                      gboolean     *stopped)
{
  if (*stopped)
    return;
  *stopped = TRUE;
  tocsin_client_stop (client);
}

/* The I/O thread reads and parses every frame a read got at once; the main loop takes them in
 * slices of a few milliseconds between other work.
 * That must lose, double and reorder nothing, also when the app stops in the middle: what was
 * read and not passed on yet is asked for again at the next start, from the cursor. */
static void
test_backlog_in_big_reads (Fixture       *f,
                           gconstpointer  data)
{
  gboolean stopped = FALSE;
  gulong handler;
  guint before_restart;

  /* The app is away while the backlog builds up on the relay. */
  tocsin_client_stop (f->client);
  wait_until_relay_has_no_subscribers (f);
  for (guint i = 1; i <= BACKLOG; i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"server_name\":\"b%u\",\"cpu_usage\":%u}",
                                               i, i % 100);
      ring_post (f, body);
    }

  /* It comes back, and stops again at the first stored record, while most of the backlog is
   * read (or on its way) and not yet passed on... */
  handler = g_signal_connect (f->client, "record-received", G_CALLBACK (stop_at_first_record),
                              &stopped);
  tocsin_client_start (f->client);
  TOCSIN_WAIT_UNTIL (stopped);
  g_signal_handler_disconnect (f->client, handler);
  tocsin_history_flush_sync (f->history);
  before_restart = f->received->len;
  g_test_message ("%u of %u stored before the second start", before_restart, BACKLOG);

  /* ...and starts once more: the rest arrives. A message rung after the backlog arrives after
   * all of it, so anything the backlog would have doubled has shown up by then. */
  tocsin_client_start (f->client);
  ring_get (f, "after-backlog");
  TOCSIN_WAIT_UNTIL (f->received->len >= BACKLOG + 1);
  tocsin_history_flush_sync (f->history);

  g_assert_cmpuint (f->received->len, ==, BACKLOG + 1);
  for (guint i = 0; i < BACKLOG; i++)
    {
      g_autofree char *title = g_strdup_printf ("Alerte serveur b%u", i + 1);

      g_assert_cmpstr (tocsin_record_get_title (received (f, i)), ==, title);
      g_assert_cmpint (g_array_index (f->results, TocsinStoreResult, i), ==,
                       TOCSIN_STORE_ADDED);
      if (i > 0)
        g_assert_cmpint (tocsin_record_get_message_id (received (f, i)), >,
                         tocsin_record_get_message_id (received (f, i - 1)));
    }
  g_assert_cmpstr (tocsin_record_get_title (received (f, BACKLOG)), ==,
                   "Alerte serveur after-backlog");
  g_assert_cmpint (count_records (f), ==, BACKLOG + 1);
  g_assert_cmpint (tocsin_subscription_get_cursor (f->sub), ==,
                   tocsin_record_get_message_id (received (f, BACKLOG)));
}

/* More than the 16 MiB of received frames the app lets wait for its main loop arrive while
 * the main loop is busy elsewhere: the I/O thread stops reading at the bound and goes on as
 * the main loop takes them, so every message still arrives once and in order. */
#define BIG_BACKLOG 320

static void
test_backlog_past_the_bound (Fixture       *f,
                             gconstpointer  data)
{
  g_autofree char *pad = g_strnfill (60 * 1024, 'p');

  tocsin_client_stop (f->client);
  wait_until_relay_has_no_subscribers (f);
  for (guint i = 1; i <= BIG_BACKLOG; i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"server_name\":\"big%u\",\"cpu_usage\":%u,"
                                               "\"pad\":\"%s\"}", i, i % 100, pad);
      ring_post (f, body);
    }

  tocsin_client_start (f->client);
  TOCSIN_WAIT_UNTIL (tocsin_connection_get_state (connection (f)) ==
                     TOCSIN_CONNECTION_CONNECTED);
  /* Subscribed from the cursor: the backlog (about 19 MiB) flows while nothing takes it. */
  g_usleep (2 * G_USEC_PER_SEC);
  ring_get (f, "after-big-backlog");
  TOCSIN_WAIT_UNTIL (f->received->len >= BIG_BACKLOG + 1);
  tocsin_history_flush_sync (f->history);

  g_assert_cmpuint (f->received->len, ==, BIG_BACKLOG + 1);
  for (guint i = 0; i < BIG_BACKLOG; i++)
    {
      g_autofree char *title = g_strdup_printf ("Alerte serveur big%u", i + 1);

      g_assert_cmpstr (tocsin_record_get_title (received (f, i)), ==, title);
    }
  g_assert_cmpstr (tocsin_record_get_title (received (f, BIG_BACKLOG)), ==,
                   "Alerte serveur after-big-backlog");
  g_assert_cmpint (count_records (f), ==, BIG_BACKLOG + 1);
}

static void
test_bad_link (void)
{
  g_autoptr(TocsinHistory) history = NULL;
  g_autoptr(TocsinClient) client = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-client-bad");
  g_autofree char *db = g_build_filename (dir, "history.db", NULL);

  history = tocsin_history_new (db);
  client = tocsin_client_new (history, NULL, NULL);
  tocsin_client_fetch_channel_info_async (client, "https://example.com/no-subscribe-here", NULL,
                                          store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  g_assert_null (tocsin_client_fetch_channel_info_finish (client, res, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  tocsin_history_flush_sync (history);
  g_clear_object (&client);
  g_clear_object (&history);
  tocsin_test_rmdir_recursive (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *home = NULL;

  g_test_init (&argc, &argv, NULL);

  /* Nothing of the user's own: data and config in a temp dir. */
  home = tocsin_test_make_tmpdir ("tocsin-client-home");
  g_setenv ("XDG_DATA_HOME", home, TRUE);
  g_setenv ("XDG_CONFIG_HOME", home, TRUE);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/app/client/receive-and-replace", test_receive_and_replace);
  ADD ("/app/client/dedup-after-reconnect", test_dedup_after_reconnect);
  ADD ("/app/client/catch-up-after-restart", test_catch_up_after_restart);
  ADD ("/app/client/storm", test_storm_end_to_end);
  ADD ("/app/client/popup-once-after-resubscribe", test_popup_once_after_resubscribe);
  ADD ("/app/client/quiet-hours-and-mute", test_quiet_hours_and_mute_end_to_end);
  g_test_add ("/app/client/gap-after-retention", Fixture, "--retention=1", fixture_setup,
              test_gap_after_retention, fixture_teardown);
  /* No rate limit: the backlog is rung as fast as the test can. */
  g_test_add ("/app/client/backlog-in-big-reads", Fixture, "--rate=100000 --burst=100000",
              fixture_setup, test_backlog_in_big_reads, fixture_teardown);
  g_test_add ("/app/client/backlog-past-the-bound", Fixture, "--rate=100000 --burst=100000",
              fixture_setup, test_backlog_past_the_bound, fixture_teardown);
#undef ADD
  g_test_add_func ("/app/client/bad-link", test_bad_link);

  {
    int ret = g_test_run ();
    tocsin_test_rmdir_recursive (home);
    return ret;
  }
}
