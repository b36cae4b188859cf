/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-e2e-relay-kill.c: the relay killed with SIGKILL under load while the real `tocsin` app
 * stays subscribed (issue 6, "Faults", relay kill). A sender rings a channel at a steady rate;
 * the relay is killed (kill -9) and restarted on the same port and data dir several times
 * along the way. The app, running throughout, and an independent subscriber on /s/TOKEN/ws
 * that reconnects and resumes from the last id it saw must each end up with every message the
 * relay acknowledged (200 and an id) exactly once, and nothing the relay did not commit. The
 * app's side is read back with `tocsin --export-records=-` after a clean quit.
 *
 * Quick mode (the default, suites e2e and reliability): 200 webhooks/s for 5 s, one kill.
 * With -m slow (suite reliability): 500 webhooks/s for 30 s, three kills. The figures are
 * printed as TAP comments.
 */
#define G_LOG_DOMAIN "test-e2e-relay-kill"

#include "config.h"

#include <signal.h>
#include <sys/prctl.h>
#include <glib/gstdio.h>

#include "tocsin-test-app.h"
#include "tocsin-test-reliability.h"

/* In-flight webhooks at most: a sender that waits rather than queueing without bound. */
#define MAX_IN_FLIGHT 256

typedef struct
{
  char                    *tmpdir;
  TocsinTestRelay         *relay;
  char                    *relay_url;    /* on the fixed port, so it survives relay restarts */
  GDBusConnection         *bus;
  JsonObject              *channel;
  SoupSession             *session;

  /* Sender */
  guint                    sent;
  guint                    acked;
  guint                    failed;       /* no answer (killed in flight) or not 200 */
  guint                    in_flight;
  GHashTable              *acked_seq;    /* id → seq the sender put in that message */

  TocsinRelSubscriber      sub;          /* independent; reconnects after every kill */
} Fixture;

static Fixture fx;

/* Deadlines while waiting for a condition, never timings: catching up thousands of records
 * through the real app is much slower under ASan or on a loaded machine, so they grow with the
 * number of messages. */
static gint64
deadline_for (guint messages)
{
  return g_get_monotonic_time () + (120 + messages / 40) * G_USEC_PER_SEC;
}

static void
iterate_for (guint ms)
{
  gint64 until = g_get_monotonic_time () + ms * 1000;

  while (g_get_monotonic_time () < until)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
}

/* ---- the app ------------------------------------------------------------------------------ */

/* An app left behind by a test that aborts would hold the bus name for the next one. */
static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* The app starts empty: its own XDG data, config and cache dirs under tmpdir/app, given to
 * every app process. */
static GSubprocessLauncher *
app_launcher (void)
{
  g_autofree char *home = g_build_filename (fx.tmpdir, "app", NULL);
  GSubprocessLauncher *launcher = tocsin_test_app_launcher (home);

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  return launcher;
}

/* `tocsin --background`, as the autostart entry runs it. */
static GSubprocess *
start_app (void)
{
  g_assert_false (tocsin_test_app_is_running (fx.bus));
  return tocsin_test_app_start (app_launcher (), fx.bus);
}

/* `tocsin --export-records=-`: relay id → how many records carry it; @seqs (optional) gets
 * id → the seq in the record's body ("seq N"). */
static GHashTable *
export_history (GHashTable **seqs)
{
  g_autoptr(GPtrArray) records = tocsin_test_app_export (app_launcher ());
  GHashTable *counts = g_hash_table_new (NULL, NULL);

  if (seqs)
    *seqs = g_hash_table_new (NULL, NULL);
  for (guint i = 0; i < records->len; i++)
    {
      JsonObject *record = records->pdata[i];
      gpointer key;
      const char *body;

      key = GINT_TO_POINTER ((gint) json_object_get_int_member (record, "id"));
      g_hash_table_insert (counts, key,
                           GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (counts, key))
                                             + 1));
      body = json_object_get_string_member_with_default (record, "body", "");
      if (seqs && g_str_has_prefix (body, "seq "))
        g_hash_table_insert (*seqs, key,
                             GUINT_TO_POINTER ((guint) g_ascii_strtoull (body + 4, NULL, 10)));
    }
  return counts;
}

/* How many of @ids are missing from @have. */
static guint
count_missing (GHashTable *ids,
               GHashTable *have)
{
  GHashTableIter iter;
  gpointer key;
  guint missing = 0;

  g_hash_table_iter_init (&iter, ids);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (have, key))
      missing++;
  return missing;
}

/* ---- the sender --------------------------------------------------------------------------- */

typedef struct
{
  guint seq;
} Ring;

static void
ring_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autofree Ring *ring = user_data;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (source), result);
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, NULL);
  g_autoptr(JsonObject) reply = NULL;
  gint64 id;

  fx.in_flight--;
  if (body == NULL || soup_message_get_status (msg) != 200)
    {
      fx.failed++;
      return;
    }
  reply = tocsin_rel_parse_object (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  id = json_object_get_int_member_with_default (reply, "id", 0);
  g_assert_cmpint (id, >, 0);
  /* Every ring differs: the relay must never call one a duplicate of another. */
  g_assert_false (json_object_get_boolean_member_with_default (reply, "duplicate", FALSE));
  g_assert_false (g_hash_table_contains (fx.acked_seq, GINT_TO_POINTER ((gint) id)));
  g_hash_table_insert (fx.acked_seq, GINT_TO_POINTER ((gint) id), GUINT_TO_POINTER (ring->seq));
  fx.acked++;
}

static void
send_one (void)
{
  g_autofree char *url = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  Ring *ring = g_new0 (Ring, 1);

  ring->seq = ++fx.sent;
  url = g_strdup_printf ("%s/t/%s?seq=%u&server_name=load", fx.relay_url,
                         json_object_get_string_member (fx.channel, "trigger_token"), ring->seq);
  msg = soup_message_new ("GET", url);
  fx.in_flight++;
  soup_session_send_and_read_async (fx.session, msg, G_PRIORITY_DEFAULT, NULL, ring_done, ring);
}

/* ---- the test ----------------------------------------------------------------------------- */

static void
run_load (guint rate,
          guint seconds,
          guint kills)
{
  g_autoptr(GSubprocess) app = NULL;
  g_autoptr(GHashTable) stored = NULL;
  g_autoptr(GHashTable) stored_seq = NULL;
  g_autoptr(GHashTable) committed = NULL;
  g_autoptr(GPtrArray) replay = NULL;
  g_autofree char *subscribe_arg = NULL;
  g_autofree char *out = NULL;
  GHashTableIter iter;
  gpointer key, value;
  gint64 start, deadline;
  guint next_kill = 1, acked_at_start = 0;
  guint sub_lost = 0, sub_dup = 0, app_lost = 0, app_dup = 0, app_uncommitted = 0;
  guint sub_uncommitted = 0, app_missing_committed = 0, mismatched = 0, sentinel_seq;
  guint stored_total = 0;
  gint64 sentinel;

  fx.channel = tocsin_test_relay_create_channel (fx.relay, "Relay kill", "{{server_name}}",
                                                "seq {{seq}}", NULL, NULL);
  fx.acked_seq = g_hash_table_new (NULL, NULL);
  tocsin_rel_subscriber_init (&fx.sub, fx.relay, fx.relay_url, fx.channel, fx.session);

  /* The app runs in the background the whole time, subscribed through the fixed-port URL. */
  app = start_app ();
  subscribe_arg = g_strdup_printf ("--subscribe=%s/s/%s", fx.relay_url,
                                   json_object_get_string_member (fx.channel, "subscribe_token"));
  g_assert_cmpint (tocsin_test_app_run (app_launcher (), &out, subscribe_arg, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Subscribed to “Relay kill”."));

  tocsin_rel_subscriber_connect (&fx.sub);
  TOCSIN_WAIT_UNTIL (fx.sub.ws != NULL);

  start = g_get_monotonic_time ();
  for (;;)
    {
      gint64 elapsed = g_get_monotonic_time () - start;
      guint due;

      /* On a slow machine the kills may come later than planned; the run lasts until all of
       * them have happened. */
      if (elapsed >= (gint64) seconds * G_USEC_PER_SEC && next_kill > kills)
        break;

      /* Keep to the schedule: as many as are due by now, within the in-flight bound. */
      due = (guint) (elapsed * rate / G_USEC_PER_SEC);
      while (fx.sent < due && fx.in_flight < MAX_IN_FLIGHT)
        send_one ();

      /* kill -9 at evenly spaced moments, once the relay has acknowledged something since it
       * last started (so that every kill lands on a relay under load), and restart it on the
       * same port and data dir. */
      if (next_kill <= kills &&
          elapsed >= (gint64) seconds * G_USEC_PER_SEC * next_kill / (kills + 1) &&
          fx.acked >= acked_at_start + 10)
        {
          g_test_message ("kill -9 the relay #%u at %.1f s (sent %u, acked %u)", next_kill,
                          elapsed / 1e6, fx.sent, fx.acked);
          tocsin_test_relay_stop (fx.relay, TRUE);
          /* Let the requests that were in flight fail before the new relay appears. */
          while (fx.in_flight > 0)
            g_main_context_iteration (NULL, TRUE);
          tocsin_test_relay_restart (fx.relay);
          /* The app outlives every relay it talks to. */
          g_assert_true (tocsin_test_app_is_running (fx.bus));
          acked_at_start = fx.acked;
          next_kill++;
        }

      tocsin_rel_subscriber_connect (&fx.sub);
      g_main_context_iteration (NULL, FALSE);
      if (fx.in_flight >= MAX_IN_FLIGHT)
        g_usleep (200);
    }

  /* Every answer in. */
  deadline = deadline_for (fx.sent);
  while (fx.in_flight > 0 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (fx.in_flight, ==, 0);

  /* One more, rung after everything else on the last relay: once the app and the subscriber
   * hold it, any late duplicate of an earlier one would have come before it. */
  sentinel_seq = ++fx.sent;
  {
    g_autofree char *query = g_strdup_printf ("?seq=%u&server_name=sentinel", sentinel_seq);

    sentinel = tocsin_rel_ring (fx.relay, fx.channel, query);
  }
  g_hash_table_insert (fx.acked_seq, GINT_TO_POINTER ((gint) sentinel),
                       GUINT_TO_POINTER (sentinel_seq));
  fx.acked++;

  /* The subscriber, then the app, catch up (or the deadline fails the test below). */
  deadline = deadline_for (fx.acked);
  while (count_missing (fx.acked_seq, fx.sub.delivered) > 0 && g_get_monotonic_time () < deadline)
    {
      tocsin_rel_subscriber_connect (&fx.sub);
      iterate_for (10);
    }
  for (;;)
    {
      g_autoptr(GHashTable) now = export_history (NULL);
      guint missing = count_missing (fx.acked_seq, now);

      if (missing == 0)
        break;
      if (g_get_monotonic_time () > deadline)
        {
          g_test_message ("the app still misses %u of %u acknowledged messages", missing,
                          fx.acked);
          break;
        }
      iterate_for (1000);
    }
  g_assert_true (tocsin_test_app_is_running (fx.bus));
  tocsin_test_app_quit (app, fx.bus);

  /* What the relay committed (a 200 lost to a kill may still have been committed), what the
   * app stored, and how they compare with what was acknowledged. */
  replay = tocsin_rel_replay_all (fx.relay, fx.channel);
  committed = g_hash_table_new (NULL, NULL);
  for (guint i = 0; i < replay->len; i++)
    {
      JsonObject *message = replay->pdata[i];

      g_hash_table_add (committed,
                        GINT_TO_POINTER ((gint) json_object_get_int_member (message, "id")));
    }
  stored = export_history (&stored_seq);

  g_hash_table_iter_init (&iter, fx.acked_seq);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      if (!g_hash_table_contains (fx.sub.delivered, key))
        sub_lost++;
      if (!g_hash_table_contains (stored, key))
        app_lost++;
      else if (g_hash_table_lookup (stored_seq, key) != value)
        mismatched++;
    }
  g_hash_table_iter_init (&iter, fx.sub.delivered);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      sub_dup += GPOINTER_TO_UINT (value) - 1;
      if (!g_hash_table_contains (committed, key))
        sub_uncommitted++;
    }
  g_hash_table_iter_init (&iter, stored);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      stored_total += GPOINTER_TO_UINT (value);
      app_dup += GPOINTER_TO_UINT (value) - 1;
      if (!g_hash_table_contains (committed, key))
        app_uncommitted++;
    }
  app_missing_committed = count_missing (committed, stored);

  /* The figures of issue 6, as TAP comments. */
  g_test_message ("rate=%u/s seconds=%u relay-kills=%u", rate, seconds, kills);
  g_test_message ("sent=%u acked=%u unacked=%u committed=%u", fx.sent, fx.acked, fx.failed,
                  g_hash_table_size (committed));
  g_test_message ("subscriber: delivered=%u lost=%u dup=%u uncommitted=%u reconnects=%u "
                  "bad-frames=%u", g_hash_table_size (fx.sub.delivered), sub_lost, sub_dup,
                  sub_uncommitted, fx.sub.reconnects, fx.sub.bad_frames);
  g_test_message ("app history: stored=%u lost=%u dup=%u uncommitted=%u "
                  "committed-but-missing=%u content-mismatch=%u", stored_total, app_lost,
                  app_dup, app_uncommitted, app_missing_committed, mismatched);

  g_assert_cmpuint (fx.acked, >, 1);
  /* Every acknowledged message reached both exactly once, with the content that was sent. */
  g_assert_cmpuint (sub_lost, ==, 0);
  g_assert_cmpuint (sub_dup, ==, 0);
  g_assert_cmpuint (app_lost, ==, 0);
  g_assert_cmpuint (app_dup, ==, 0);
  g_assert_cmpuint (mismatched, ==, 0);
  g_assert_cmpuint (fx.sub.bad_frames, ==, 0);
  /* Nothing the relay did not commit; and what it committed without a 200 (in flight at a
   * kill) still reached the app, since it is on the stream. */
  g_assert_cmpuint (sub_uncommitted, ==, 0);
  g_assert_cmpuint (app_uncommitted, ==, 0);
  g_assert_cmpuint (app_missing_committed, ==, 0);
  /* The subscriber reconnected after every kill. */
  g_assert_cmpuint (fx.sub.reconnects, >=, kills + 1);

  tocsin_rel_subscriber_clear (&fx.sub);
  g_clear_pointer (&fx.acked_seq, g_hash_table_unref);
  g_clear_pointer (&fx.channel, json_object_unref);
}

static void
test_relay_kill_under_load (void)
{
  if (g_test_slow ())
    run_load (500, 30, 3);
  else
    run_load (200, 5, 1);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autofree char *listen = NULL;
  guint16 port;
  int status;

  g_test_init (&argc, &argv, NULL);

  fx.tmpdir = tocsin_test_make_tmpdir ("tocsin-e2e-relay-kill");
  fx.bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);

  /* A fixed address keeps the URL the app subscribed to valid across restarts (port 0 would
   * get a new port each time); no rate limit, since the load is the point. */
  port = tocsin_test_free_port ();
  fx.relay_url = g_strdup_printf ("http://127.0.0.1:%u", port);
  listen = g_strdup_printf ("--listen=127.0.0.1:%u", port);
  {
    const char *args[] = { listen, "--rate=100000", "--burst=100000", NULL };

    fx.relay = tocsin_test_relay_start (NULL, args);
  }
  fx.session = soup_session_new_with_options ("max-conns", 512, "max-conns-per-host", 128,
                                              "timeout", 30, NULL);

  g_test_add_func ("/e2e/relay-kill/under-load", test_relay_kill_under_load);
  status = g_test_run ();

  g_clear_object (&fx.session);
  g_clear_pointer (&fx.relay, tocsin_test_relay_free);
  g_clear_object (&fx.bus);
  g_free (fx.relay_url);
  tocsin_test_rmdir_recursive (fx.tmpdir);
  g_free (fx.tmpdir);
  return status;
}
