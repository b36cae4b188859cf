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

/* What a sender saw and what the app stored, for one case. */
typedef struct
{
  guint       sent;
  guint       acked;
  GHashTable *acked_ids;   /* relay id → itself */
} Load;

/* Each case starts from an empty app: its own XDG data, config and cache dirs, given to every
 * app process it starts (not set in this process: setenv is unsafe once threads exist). */
static GSubprocessLauncher *
app_launcher (GSubprocessFlags flags)
{
  GSubprocessLauncher *launcher = g_subprocess_launcher_new (flags);
  const char *kinds[] = { "data", "config", "cache" };
  const char *vars[] = { "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME" };

  g_assert_nonnull (fx.case_name);
  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      g_autofree char *dir = g_build_filename (fx.tmpdir, fx.case_name, kinds[i], NULL);

      g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
      g_subprocess_launcher_setenv (launcher, vars[i], dir, TRUE);
    }
  return launcher;
}

/* Runs `tocsin ARGS...` to completion; returns the exit status and its output. */
static int
run_tocsin (char      **out,
            const char *first_arg,
            ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *err = NULL;
  va_list ap;

  g_ptr_array_add (argv, (char *) tocsin_test_app_binary ());
  va_start (ap, first_arg);
  for (const char *arg = first_arg; arg; arg = va_arg (ap, const char *))
    g_ptr_array_add (argv, (char *) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);

  launcher = app_launcher (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, out, &err, &error);
  g_assert_no_error (error);
  if (err && *err)
    g_test_message ("tocsin stderr: %s", err);
  return g_subprocess_get_if_exited (process) ? g_subprocess_get_exit_status (process) : -1;
}

static gboolean
app_is_running (void)
{
  g_autoptr(GVariant) reply = NULL;
  gboolean has_owner = FALSE;

  reply = g_dbus_connection_call_sync (fx.bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", APP_ID), G_VARIANT_TYPE ("(b)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &has_owner);
  return has_owner;
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
  g_autoptr(GSubprocessLauncher) launcher = app_launcher (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GError) error = NULL;
  GSubprocess *process;

  /* A second instance would only hand its arguments to a still-registered first one. */
  TOCSIN_WAIT_UNTIL (!app_is_running ());
  process = g_subprocess_launcher_spawn (launcher, &error, tocsin_test_app_binary (), "--background",
                                         NULL);
  g_assert_no_error (error);
  TOCSIN_WAIT_UNTIL (app_is_running ());
  return process;
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
  TOCSIN_WAIT_UNTIL (!app_is_running ());
}

/* What "Quit" in the main menu does; a clean exit also shows the app never crashed. */
static void
quit_app (GSubprocess *process)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  gboolean done = FALSE;

  reply = g_dbus_connection_call_sync (fx.bus, APP_ID, "/io/github/tocsin/Tocsin",
                                       "org.gtk.Actions", "Activate",
                                       g_variant_new ("(sava{sv})", "quit", NULL, NULL),
                                       NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  g_subprocess_wait_async (process, NULL, wait_done_cb, &done);
  TOCSIN_WAIT_UNTIL (done);
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);
  TOCSIN_WAIT_UNTIL (!app_is_running ());
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
  g_assert_cmpint (run_tocsin (&out, subscribe_arg, NULL), ==, 0);
  expected = g_strdup_printf ("Subscribed to “%s”.", name);
  g_assert_nonnull (strstr (out, expected));
  return channel;
}

static void
load_init (Load *load)
{
  load->sent = load->acked = 0;
  load->acked_ids = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
}

static void
load_clear (Load *load)
{
  g_clear_pointer (&load->acked_ids, g_hash_table_destroy);
}

/* One GET webhook; counts it as acknowledged only on a 200 that carries a new id. Returns the
 * id, or 0. */
static gint64
ring (Load       *load,
      JsonObject *channel,
      guint       n,
      const char *phase)
{
  g_autofree char *path = NULL;
  g_autoptr(JsonNode) root = NULL;
  guint status = 0;
  gint64 id;

  path = g_strdup_printf ("/t/%s?n=%u&phase=%s",
                          json_object_get_string_member (channel, "trigger_token"), n, phase);
  load->sent++;
  root = tocsin_test_http_json (fx.relay, "GET", path, NULL, NULL, NULL, &status);
  if (status != 200)
    {
      g_test_message ("ring %u (%s) answered %u", n, phase, status);
      return 0;
    }
  id = json_object_get_int_member (json_node_get_object (root), "id");
  g_assert_cmpint (id, >, 0);
  /* Every ring differs, so the relay must never call one a duplicate of another. */
  g_assert_false (json_object_get_boolean_member_with_default (json_node_get_object (root),
                                                               "duplicate", FALSE));
  g_assert_false (g_hash_table_contains (load->acked_ids, &id));
  g_hash_table_add (load->acked_ids, g_memdup2 (&id, sizeof id));
  load->acked++;
  return id;
}

/* `tocsin --export-records=-`: relay id → how many records carry it. */
static GHashTable *
export_id_counts (void)
{
  g_autofree char *out = NULL;
  g_auto(GStrv) lines = NULL;
  GHashTable *counts = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);

  g_assert_cmpint (run_tocsin (&out, "--export-records=-", NULL), ==, 0);
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autoptr(GError) error = NULL;
      gint64 id;
      guint count;

      if (*lines[i] == '\0')
        continue;
      json_parser_load_from_data (parser, lines[i], -1, &error);
      g_assert_no_error (error);
      id = json_object_get_int_member (json_node_get_object (json_parser_get_root (parser)),
                                       "id");
      count = GPOINTER_TO_UINT (g_hash_table_lookup (counts, &id));
      if (count == 0)
        g_hash_table_insert (counts, g_memdup2 (&id, sizeof id), GUINT_TO_POINTER (1));
      else
        g_hash_table_replace (counts, g_memdup2 (&id, sizeof id), GUINT_TO_POINTER (count + 1));
    }
  return counts;
}

static gboolean
export_has_all (GHashTable *acked_ids)
{
  g_autoptr(GHashTable) counts = export_id_counts ();
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, acked_ids);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (counts, key))
      return FALSE;
  return TRUE;
}

/* Waits until the app has stored every acknowledged message (polling the export), with a
 * generous deadline that fails the test. */
static void
wait_for_all (Load *load)
{
  gint64 deadline = g_get_monotonic_time () + CATCH_UP_DEADLINE_S * G_USEC_PER_SEC;

  while (!export_has_all (load->acked_ids))
    {
      if (g_get_monotonic_time () > deadline)
        {
          g_autoptr(GHashTable) counts = export_id_counts ();

          g_error ("the app stored %u records but %u were acknowledged, after %d s",
                   g_hash_table_size (counts), load->acked, CATCH_UP_DEADLINE_S);
        }
      for (guint i = 0; i < 20; i++)
        {
          g_main_context_iteration (NULL, FALSE);
          g_usleep (10 * 1000);
        }
    }
}

/* Compares the export with what the relay acknowledged: prints the figures, asserts nothing
 * lost and nothing twice. */
static void
assert_exactly_once (Load       *load,
                     const char *what)
{
  g_autoptr(GHashTable) counts = export_id_counts ();
  GHashTableIter iter;
  gpointer key, value;
  guint stored = 0, lost = 0, dup = 0, unacked = 0;

  g_hash_table_iter_init (&iter, counts);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      stored += GPOINTER_TO_UINT (value);
      dup += GPOINTER_TO_UINT (value) - 1;
      if (!g_hash_table_contains (load->acked_ids, key))
        unacked++;
    }
  g_hash_table_iter_init (&iter, load->acked_ids);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (counts, key))
      lost++;

  g_test_message ("%s: sent=%u acked=%u stored=%u lost=%u dup=%u stored-unacked=%u", what,
                  load->sent, load->acked, stored, lost, dup, unacked);
  g_assert_cmpuint (load->acked, >, 0);
  g_assert_cmpuint (lost, ==, 0);
  g_assert_cmpuint (dup, ==, 0);
  /* Every ring of these tests got its 200, so the app cannot hold anything else. */
  g_assert_cmpuint (unacked, ==, 0);
  g_assert_cmpuint (stored, ==, load->acked);
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
  load_init (&load);
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
  quit_app (app_again);
  load_clear (&load);
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
  load_init (&load);
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
  g_assert_true (app_is_running ());

  /* Back on the same data dir and port; the app must come back by itself and get these. */
  tocsin_test_relay_restart (fx.relay);
  for (guint n = 10; n < 20; n++)
    ring (&load, channel, n, "after-outage");
  wait_for_all (&load);

  /* Rung while the app is not running at all: the next instance catches up from its cursor. */
  quit_app (app);
  for (guint n = 20; n < 40; n++)
    ring (&load, channel, n, "app-away");
  app_again = start_app ();
  wait_for_all (&load);

  settle (&load, channel);
  assert_exactly_once (&load, "relay-outage-catch-up");
  quit_app (app_again);
  load_clear (&load);
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
