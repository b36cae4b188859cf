/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-e2e-faults.c: the real `tocsin-relay` and `tocsin` programs under faults (issue 6,
 * "Faults"): `kill -9` of the app in the middle of a burst, and a relay outage while the app
 * runs plus messages rung while the app is away. In each case every message the relay
 * acknowledged (200 and an id) must be in `tocsin --export-records` exactly once.
 */
#define G_LOG_DOMAIN "test-e2e-faults"

#include "config.h"

#include <glib/gstdio.h>

#include "tocsin-test-app.h"
#include "tocsin-test-relay.h"

/* Catching up hundreds of records through the real app can take longer than
 * TOCSIN_WAIT_UNTIL's 20 s on a loaded machine or under ASan; still a deadline, not a timing. */
#define CATCH_UP_DEADLINE_S 120

typedef struct
{
  char            *tmpdir;
  TocsinTestRelay *relay;
  char            *relay_url;   /* on the fixed port, so it survives relay restarts */
  GDBusConnection *bus;
  const char      *case_name;   /* the current case's app dirs, under tmpdir */
} Fixture;

static Fixture fx;

/* What a sender saw, for one case. */
typedef TocsinTestLoad Load;

/* Each case starts from an empty app: its own XDG data, config and cache dirs under
 * tmpdir/CASE, given to every app process it starts. */
static GSubprocessLauncher *
app_launcher (void)
{
  g_autofree char *home = NULL;

  g_assert_nonnull (fx.case_name);
  home = g_build_filename (fx.tmpdir, fx.case_name, NULL);
  return tocsin_test_app_launcher (home);
}

static void
wait_done_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (object), result, NULL);
  *(gboolean *) user_data = TRUE;
}

/* `tocsin --background`, as the autostart entry runs it. */
static GSubprocess *
start_app (void)
{
  /* A second instance would only hand its arguments to a still-registered first one. */
  TOCSIN_WAIT_UNTIL (!tocsin_test_app_is_running (fx.bus));
  return tocsin_test_app_start (app_launcher (), fx.bus);
}

/* `kill -9`: no chance to flush, close the database or say goodbye to the relay. */
static void
kill_app (GSubprocess *process)
{
  gboolean done = FALSE;

  g_subprocess_send_signal (process, SIGKILL);
  g_subprocess_wait_async (process, NULL, wait_done_cb, &done);
  TOCSIN_WAIT_UNTIL (done);
  g_assert_true (g_subprocess_get_if_signaled (process));
  g_assert_cmpint (g_subprocess_get_term_sig (process), ==, SIGKILL);
  TOCSIN_WAIT_UNTIL (!tocsin_test_app_is_running (fx.bus));
}

/* A channel, and the app subscribed to it through the fixed-port URL (the CLI prints the URL
 * of whichever address the relay listed first). */
static JsonObject *
subscribe_new_channel (const char *name)
{
  JsonObject *channel;
  g_autofree char *subscribe_arg = NULL;
  g_autofree char *out = NULL;
  g_autofree char *expected = NULL;

  channel = tocsin_test_relay_create_channel (fx.relay, name, "Ring {{n}}", "{{phase}}",
                                              NULL, NULL);
  subscribe_arg = g_strdup_printf ("--subscribe=%s/s/%s", fx.relay_url,
                                   json_object_get_string_member (channel, "subscribe_token"));
  g_assert_cmpint (tocsin_test_app_run (app_launcher (), &out, subscribe_arg, NULL), ==, 0);
  expected = g_strdup_printf ("Subscribed to “%s”.", name);
  g_assert_nonnull (strstr (out, expected));
  return channel;
}

/* One GET webhook; counts it as acknowledged only on a 200 that carries a new id. Returns the
 * id, or 0. */
static gint64
ring (Load       *load,
      JsonObject *channel,
      guint       n,
      const char *phase)
{
  return tocsin_test_load_ring (load, fx.relay, channel, n, phase, TRUE);
}

/* `tocsin --export-records=-`: relay id → how many records carry it. */
static GHashTable *
export_id_counts (void)
{
  return tocsin_test_app_export_counts (app_launcher (), FALSE);
}

/* Waits until the app has stored every acknowledged message (polling the export), with a
 * generous deadline that fails the test. */
static void
wait_for_all (Load *load)
{
  tocsin_test_load_wait_stored (load, export_id_counts, CATCH_UP_DEADLINE_S);
}

/* Compares the export with what the relay acknowledged: prints the figures, asserts nothing
 * lost and nothing twice. */
static void
assert_exactly_once (Load       *load,
                     const char *what)
{
  g_autoptr(GHashTable) counts = export_id_counts ();

  /* Every ring of these tests got its 200, so the app cannot hold anything else. */
  tocsin_test_load_assert_exactly_once (load, counts, what);
}

/* Once every message is stored, one more rung on the same stream arrives after any late
 * duplicate of the earlier ones would have: the count after it is final. */
static void
settle (Load       *load,
        JsonObject *channel)
{
  g_assert_cmpint (ring (load, channel, 99999, "sentinel"), >, 0);
  wait_for_all (load);
}

#define BURST 300
#define KILL_AT 120
#define RESTART_AT 200

static void
test_app_kill_during_burst (void)
{
  g_autoptr(JsonObject) channel = NULL;
  g_autoptr(GSubprocess) app = NULL;
  g_autoptr(GSubprocess) app_again = NULL;
  Load load;

  fx.case_name = "app-kill";
  tocsin_test_load_init (&load);
  app = start_app ();
  channel = subscribe_new_channel ("Faults burst");

  /* As fast as the relay acks: each ring waits only for its 200. The app is killed while it is
   * still receiving and storing the first part; the second part is rung while it is dead; the
   * third while the new instance catches up. */
  for (guint n = 0; n < BURST; n++)
    {
      if (n == KILL_AT)
        {
          g_autoptr(GHashTable) at_kill = NULL;

          kill_app (app);
          /* What was durable when it died: fewer than acked shows the kill hit mid-stream. */
          at_kill = export_id_counts ();
          g_test_message ("kill -9 the app after %u acked; %u were stored", load.acked,
                          g_hash_table_size (at_kill));
        }
      if (n == RESTART_AT)
        {
          g_test_message ("start the app again after %u acked", load.acked);
          app_again = start_app ();
        }
      ring (&load, channel, n, n < KILL_AT ? "before" : n < RESTART_AT ? "dead" : "after");
    }

  wait_for_all (&load);
  settle (&load, channel);
  assert_exactly_once (&load, "app-kill-during-burst");
  tocsin_test_app_quit (app_again, fx.bus);
  tocsin_test_load_clear (&load);
}

static void
test_relay_outage_catch_up (void)
{
  g_autoptr(JsonObject) channel = NULL;
  g_autoptr(GSubprocess) app = NULL;
  g_autoptr(GSubprocess) app_again = NULL;
  gint64 until;
  Load load;

  fx.case_name = "relay-outage";
  tocsin_test_load_init (&load);
  app = start_app ();
  channel = subscribe_new_channel ("Faults outage");

  for (guint n = 0; n < 10; n++)
    ring (&load, channel, n, "before");
  wait_for_all (&load);

  /* The relay goes away for a few seconds: the app loses its stream and retries with backoff
   * (several failed attempts) while we iterate. */
  tocsin_test_relay_stop (fx.relay, FALSE);
  until = g_get_monotonic_time () + 4 * G_USEC_PER_SEC;
  while (g_get_monotonic_time () < until)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (10 * 1000);
    }
  g_assert_true (tocsin_test_app_is_running (fx.bus));

  /* Back on the same data dir and port; the app must come back by itself and get these. */
  tocsin_test_relay_restart (fx.relay);
  for (guint n = 10; n < 20; n++)
    ring (&load, channel, n, "after-outage");
  wait_for_all (&load);

  /* Rung while the app is not running at all: the next instance catches up from its cursor. */
  tocsin_test_app_quit (app, fx.bus);
  for (guint n = 20; n < 40; n++)
    ring (&load, channel, n, "app-away");
  app_again = start_app ();
  wait_for_all (&load);

  settle (&load, channel);
  assert_exactly_once (&load, "relay-outage-catch-up");
  tocsin_test_app_quit (app_again, fx.bus);
  tocsin_test_load_clear (&load);
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

  fx.tmpdir = tocsin_test_make_tmpdir ("tocsin-e2e-faults");
  fx.bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);

  /* A second, fixed address keeps the URL the app subscribed to valid across restarts (port 0
   * would get a new port each time); no rate limit, since the burst is the point. */
  port = tocsin_test_free_port ();
  fx.relay_url = g_strdup_printf ("http://127.0.0.1:%u", port);
  listen = g_strdup_printf ("--listen=127.0.0.1:%u", port);
  {
    const char *args[] = { listen, "--rate=100000", "--burst=100000", NULL };

    fx.relay = tocsin_test_relay_start (NULL, args);
  }

  g_test_add_func ("/e2e/faults/app-kill-during-burst", test_app_kill_during_burst);
  g_test_add_func ("/e2e/faults/relay-outage-catch-up", test_relay_outage_catch_up);
  status = g_test_run ();

  g_clear_pointer (&fx.relay, tocsin_test_relay_free);
  g_clear_object (&fx.bus);
  g_free (fx.relay_url);
  tocsin_test_rmdir_recursive (fx.tmpdir);
  g_free (fx.tmpdir);
  return status;
}
