/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-e2e-netcut.c: the real `tocsin-relay` and `tocsin` programs through a network cut
 * (issue 6, "Faults", "Network cut").
 *
 * The cut is silent, as a dead Wi-Fi or NAT mapping is: no RST, no FIN, the app's established
 * WebSocket simply stops hearing anything, and only its keepalive can tell. The test re-executes
 * itself in a private network namespace (`unshare --net`, with a user namespace when not root),
 * where it may change the routing rules: the cut is a pair of `ip rule … blackhole` rules on the
 * relay port the app subscribed through (iproute2 only; Debian 12's base has no nft or
 * iptables, and this kernel no tc drop action). Senders ring the relay on its other port, which
 * stays reachable, so messages arrive while the app is cut off.
 *
 * - /e2e/netcut/silent-cut: TOCSIN_KEEPALIVE_SECONDS=2, so the app gives up the silent socket
 *   after 6 s of silence instead of 90 s; it reconnects once the cut is lifted and catches up.
 * - /e2e/netcut/gap-after-retention: the app is away longer than the relay's retention; the
 *   missed messages come back as one "Some notifications from X were missed" record.
 * - /e2e/netcut/silent-cut-2min (-m slow): the same cut for 2 minutes with the real 30 s
 *   keepalive. /e2e/netcut/relay-stop-2min (-m slow): the relay process stopped for 2 minutes
 *   (runs without a network namespace too).
 */
#define G_LOG_DOMAIN "test-e2e-netcut"

#include "config.h"

#include <errno.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "tocsin-test-app.h"
#include "tocsin-test-notify.h"
#include "tocsin-test-relay.h"

/* Deadlines, not timings: a loaded machine or ASan can be slow. */
#define CATCH_UP_DEADLINE_S 120
#define FAST_KEEPALIVE      "2"
#define FAST_CUT_S          12      /* at least 6 keepalive intervals */
#define SLOW_CUT_S          120
#define SLOW_STOP_S         120
#define RETENTION           "20s"
#define RETENTION_S         20
#define N_DURING            3       /* no more than the notifier's storm limit: one popup each */

/* Set in the re-executed process. */
#define NETNS_ENV "TOCSIN_NETCUT_IN_NETNS"

typedef struct
{
  char            *tmpdir;
  GDBusConnection *bus;
  gboolean         in_netns;
  char            *no_netns_reason;
  /* Per case: */
  const char      *case_name;   /* the app's XDG dirs, under tmpdir */
  const char      *keepalive;   /* TOCSIN_KEEPALIVE_SECONDS for the app, or NULL */
  TocsinTestRelay *relay;       /* rung on its port-0 address */
  guint16          app_port;    /* the fixed port the app subscribes through, and the one cut */
  char            *app_url;
} Fixture;

static Fixture fx;

/* What a sender saw, for one case. */
typedef TocsinTestLoad Load;

/* ---- the network namespace ------------------------------------------------------------ */

static gboolean
run_command (const char * const *argv,
             char              **err_out)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *err = NULL;
  int status = 0;

  if (!g_spawn_sync (NULL, (char **) argv, NULL,
                     G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                     &err, &status, &error))
    {
      if (err_out)
        *err_out = g_strdup (error->message);
      return FALSE;
    }
  if (!g_spawn_check_wait_status (status, &error))
    {
      if (err_out)
        *err_out = g_strdup_printf ("%s (%s)", error->message, g_strstrip (err));
      return FALSE;
    }
  return TRUE;
}

/* Re-executes this test in a new network namespace when the kernel and our privileges allow,
 * or records why not. Before g_test_init and before any thread. */
static void
enter_netns (int    argc,
             char **argv)
{
  g_autoptr(GPtrArray) prefix = g_ptr_array_new ();
  g_autoptr(GPtrArray) probe = NULL;
  g_autoptr(GPtrArray) exec_argv = NULL;
  g_autofree char *err = NULL;

  if (g_strcmp0 (g_getenv (NETNS_ENV), "1") == 0)
    {
      fx.in_netns = TRUE;
      return;
    }

  g_ptr_array_add (prefix, "unshare");
  g_ptr_array_add (prefix, "--net");
  /* Not root: a user namespace that keeps our uid (so D-Bus still knows us) and gives us
   * CAP_NET_ADMIN over the new network namespace only. */
  if (getuid () != 0)
    {
      g_ptr_array_add (prefix, "--map-current-user");
      g_ptr_array_add (prefix, "--keep-caps");
    }

  probe = g_ptr_array_copy (prefix, NULL, NULL);
  g_ptr_array_add (probe, "ip");
  g_ptr_array_add (probe, "rule");
  g_ptr_array_add (probe, "add");
  g_ptr_array_add (probe, "pref");
  g_ptr_array_add (probe, "10");
  g_ptr_array_add (probe, "ipproto");
  g_ptr_array_add (probe, "tcp");
  g_ptr_array_add (probe, "dport");
  g_ptr_array_add (probe, "9");
  g_ptr_array_add (probe, "blackhole");
  g_ptr_array_add (probe, NULL);
  if (!run_command ((const char * const *) probe->pdata, &err))
    {
      fx.no_netns_reason =
        g_strdup_printf ("no private network namespace with routing rules here "
                         "(unshare --net ... ip rule failed: %s)", err);
      return;
    }

  exec_argv = g_ptr_array_copy (prefix, NULL, NULL);
  g_ptr_array_add (exec_argv, "--");
  for (int i = 0; i < argc; i++)
    g_ptr_array_add (exec_argv, argv[i]);
  g_ptr_array_add (exec_argv, NULL);
  g_setenv (NETNS_ENV, "1", TRUE);
  execvp ("unshare", (char **) exec_argv->pdata);
  g_error ("Could not run unshare: %s", g_strerror (errno));
}

static void
ip (const char *first_arg,
    ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *err = NULL;
  va_list ap;

  g_ptr_array_add (argv, "ip");
  va_start (ap, first_arg);
  for (const char *arg = first_arg; arg; arg = va_arg (ap, const char *))
    g_ptr_array_add (argv, (char *) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  if (!run_command ((const char * const *) argv->pdata, &err))
    g_error ("ip failed: %s", err);
}

/* In the namespace: loopback up, and the local table consulted after our rules (at pref 0 it
 * would answer for 127.0.0.1 before a blackhole rule is ever looked at). */
static void
setup_netns (void)
{
  ip ("link", "set", "lo", "up", NULL);
  ip ("rule", "del", "pref", "0", NULL);
  ip ("rule", "add", "pref", "100", "lookup", "local", NULL);
}

/* Cuts (or restores) every TCP packet to and from @port, silently: the senders' packets are
 * dropped at routing, so the peer sees neither a reset nor a FIN; new connects fail at once. */
static void
cut_port (guint16  port,
          gboolean cut)
{
  g_autofree char *port_text = g_strdup_printf ("%u", port);

  if (cut)
    {
      ip ("rule", "add", "pref", "10", "ipproto", "tcp", "dport", port_text, "blackhole", NULL);
      ip ("rule", "add", "pref", "11", "ipproto", "tcp", "sport", port_text, "blackhole", NULL);
    }
  else
    {
      ip ("rule", "del", "pref", "10", NULL);
      ip ("rule", "del", "pref", "11", NULL);
    }
}

/* The local ports of the established client-side TCP connections to @port in this network
 * namespace (the relay's own ends, whose local port is @port, are not counted); with
 * @with_pending, only those with bytes sent but not acknowledged (tx_queue). */
static GArray *
client_connections_full (guint16  port,
                         gboolean with_pending)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GError) error = NULL;
  GArray *ports = g_array_new (FALSE, FALSE, sizeof (guint));

  g_file_get_contents ("/proc/net/tcp", &text, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 1; lines[i]; i++)
    {
      guint local_port, remote_port, state, tx_queue;

      if (sscanf (lines[i], " %*u: %*x:%x %*x:%x %x %x:", &local_port, &remote_port, &state,
                  &tx_queue) != 4)
        continue;
      /* 01 is TCP_ESTABLISHED. */
      if (state == 0x01 && remote_port == port && (!with_pending || tx_queue > 0))
        g_array_append_val (ports, local_port);
    }
  return ports;
}

static GArray *
client_connections (guint16 port)
{
  return client_connections_full (port, FALSE);
}

static gboolean
array_has (GArray *array,
           guint   value)
{
  for (guint i = 0; i < array->len; i++)
    if (g_array_index (array, guint, i) == value)
      return TRUE;
  return FALSE;
}

static gboolean
connection_is_established (guint local_port)
{
  g_autoptr(GArray) now = client_connections (fx.app_port);

  return array_has (now, local_port);
}

/* Whether a connection that is not in @before is established: the app came back. */
static gboolean
has_new_connection (GArray *before)
{
  g_autoptr(GArray) now = client_connections (fx.app_port);

  for (guint i = 0; i < now->len; i++)
    if (!array_has (before, g_array_index (now, guint, i)))
      return TRUE;
  return FALSE;
}

static guint
n_connections (void)
{
  g_autoptr(GArray) now = client_connections (fx.app_port);

  return now->len;
}

/* ---- the relay and the app ------------------------------------------------------------ */

static void
relay_start (const char *extra_arg)
{
  g_autofree char *listen = NULL;
  const char *args[4] = { NULL };
  guint n = 0;

  /* The app subscribes through a second, fixed address: it survives restarts, and cutting it
   * leaves the port-0 one (where the test rings) reachable. No rate limit: not the point. */
  fx.app_port = tocsin_test_free_port ();
  fx.app_url = g_strdup_printf ("http://127.0.0.1:%u", fx.app_port);
  listen = g_strdup_printf ("--listen=127.0.0.1:%u", fx.app_port);
  args[n++] = listen;
  args[n++] = "--rate=100000";
  if (extra_arg)
    args[n++] = extra_arg;
  fx.relay = tocsin_test_relay_start (NULL, args);
  g_assert_cmpuint (fx.relay->port, !=, fx.app_port);
}

static void
relay_clear (void)
{
  g_clear_pointer (&fx.relay, tocsin_test_relay_free);
  g_clear_pointer (&fx.app_url, g_free);
  fx.app_port = 0;
}

/* Each case starts from an empty app: its own XDG dirs under tmpdir/CASE, given to every app
 * process it starts, and the case's keepalive (not set in this process: setenv is unsafe once
 * threads exist). */
static GSubprocessLauncher *
app_launcher (void)
{
  g_autofree char *home = NULL;
  GSubprocessLauncher *launcher;

  g_assert_nonnull (fx.case_name);
  home = g_build_filename (fx.tmpdir, fx.case_name, NULL);
  launcher = tocsin_test_app_launcher (home);
  if (fx.keepalive)
    g_subprocess_launcher_setenv (launcher, "TOCSIN_KEEPALIVE_SECONDS", fx.keepalive, TRUE);
  else
    g_subprocess_launcher_unsetenv (launcher, "TOCSIN_KEEPALIVE_SECONDS");
  return launcher;
}

/* `tocsin --background`, as the autostart entry runs it. */
static GSubprocess *
start_app (void)
{
  TOCSIN_WAIT_UNTIL (!tocsin_test_app_is_running (fx.bus));
  return tocsin_test_app_start (app_launcher (), fx.bus);
}

static JsonObject *
subscribe_new_channel (const char *name)
{
  JsonObject *channel;
  g_autofree char *subscribe_arg = NULL;
  g_autofree char *out = NULL;
  g_autofree char *expected = NULL;

  channel = tocsin_test_relay_create_channel (fx.relay, name, "Ring {{n}}", "{{phase}}",
                                              NULL, NULL);
  subscribe_arg = g_strdup_printf ("--subscribe=%s/s/%s", fx.app_url,
                                   json_object_get_string_member (channel, "subscribe_token"));
  g_assert_cmpint (tocsin_test_app_run (app_launcher (), &out, subscribe_arg, NULL), ==, 0);
  expected = g_strdup_printf ("Subscribed to “%s”.", name);
  g_assert_nonnull (strstr (out, expected));
  return channel;
}

/* Iterates the main context for @seconds: the scenario's own pace (a cut, an outage), never
 * something asserted on. */
static void
pass_time (double seconds)
{
  gint64 until = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);

  while (g_get_monotonic_time () < until)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (20 * 1000);
    }
}

/* ---- what was sent and what the app holds --------------------------------------------- */

/* One GET webhook on the relay's reachable port; counts a 200 with a new id as acknowledged.
 * Returns the id, or 0. */
static gint64
ring (Load       *load,
      JsonObject *channel,
      guint       n,
      const char *phase)
{
  return tocsin_test_load_ring (load, fx.relay, channel, n, phase, FALSE);
}

/* `tocsin --export-records=-`, one object per line. */
static GPtrArray *
export_records (void)
{
  return tocsin_test_app_export (app_launcher ());
}

static gboolean
is_gap (JsonObject *record)
{
  return g_strcmp0 (json_object_get_string_member_with_default (record, "kind", NULL),
                    "gap") == 0;
}

/* Message records only: relay id → how many records carry it. */
static GHashTable *
export_id_counts (void)
{
  return tocsin_test_app_export_counts (app_launcher (), TRUE);
}

static void
wait_for_all (Load *load)
{
  tocsin_test_load_wait_stored (load, export_id_counts, CATCH_UP_DEADLINE_S);
}

/* Nothing lost, nothing twice, nothing that was not acknowledged; prints the figures. */
static void
assert_exactly_once (Load       *load,
                     const char *what)
{
  g_autoptr(GHashTable) counts = export_id_counts ();

  tocsin_test_load_assert_exactly_once (load, counts, what);
}

/* One more message on the same stream arrives after any late duplicate of the earlier ones
 * would have: the count after it is final. */
static void
settle (Load       *load,
        JsonObject *channel)
{
  g_assert_cmpint (ring (load, channel, 99999, "sentinel"), >, 0);
  wait_for_all (load);
}

/* ---- popups ------------------------------------------------------------------------------ */

/* Each of rings @first..@first+@n-1 of @phase popped up exactly once. */
static void
assert_popups (guint       first,
               guint       n,
               const char *phase)
{
  for (guint i = first; i < first + n; i++)
    {
      g_autofree char *summary = g_strdup_printf ("Ring %u", i);

      TOCSIN_WAIT_UNTIL (tocsin_test_notify_count (fx.bus, summary, phase) >= 1);
      g_assert_cmpuint (tocsin_test_notify_count (fx.bus, summary, phase), ==, 1);
    }
}

/* ---- the cases ---------------------------------------------------------------------------- */

/* The app is cut off from the relay, silently, for at least @min_cut_s and until it noticed:
 * its established WebSocket must leave ESTABLISHED while the cut lasts (without the keepalive
 * it would sit there for the kernel's ~15 minutes of retransmissions, then resume as if nothing
 * happened). Messages rung meanwhile must come once the cut is lifted. */
static void
run_silent_cut (const char *what,
                double      min_cut_s,
                double      detect_deadline_s)
{
  g_autoptr(JsonObject) channel = NULL;
  g_autoptr(GSubprocess) app = NULL;
  g_autoptr(GArray) before = NULL;
  gint64 cut_start, detected = 0, restored, reconnected;
  guint rung_during = 0;
  guint ws_port = 0;
  Load load;

  if (!fx.in_netns)
    {
      g_test_skip (fx.no_netns_reason);
      return;
    }

  tocsin_test_load_init (&load);
  relay_start (NULL);
  app = start_app ();
  channel = subscribe_new_channel ("Netcut");

  for (guint n = 0; n < 5; n++)
    ring (&load, channel, n, "before");
  wait_for_all (&load);
  /* The app's WebSocket, and maybe an idle keep-alive HTTP connection of the subscription. */
  TOCSIN_WAIT_UNTIL (n_connections () >= 1);
  before = client_connections (fx.app_port);

  cut_port (fx.app_port, TRUE);
  cut_start = g_get_monotonic_time ();
  g_test_message ("%s: cut the app's path to port %u (%u connections)", what, fx.app_port,
                  before->len);

  /* Ring during the cut, spread over it; wait for the app to give up its silent socket. */
  while (detected == 0 || g_get_monotonic_time () < cut_start + min_cut_s * G_USEC_PER_SEC)
    {
      gint64 now = g_get_monotonic_time ();

      if (rung_during < N_DURING &&
          now >= cut_start + rung_during * (min_cut_s / N_DURING) * G_USEC_PER_SEC)
        {
          g_assert_cmpint (ring (&load, channel, 100 + rung_during, "during-cut"), >, 0);
          rung_during++;
        }
      /* The WebSocket is the one whose keepalive pings now go unacknowledged. */
      if (ws_port == 0)
        {
          g_autoptr(GArray) pending = client_connections_full (fx.app_port, TRUE);

          for (guint i = 0; i < pending->len && ws_port == 0; i++)
            if (array_has (before, g_array_index (pending, guint, i)))
              {
                ws_port = g_array_index (pending, guint, i);
                g_test_message ("%s: the WebSocket (from port %u) went silent %.1f s into the "
                                "cut", what, ws_port,
                                (now - cut_start) / (double) G_USEC_PER_SEC);
              }
        }
      if (detected == 0 && ws_port != 0 && !connection_is_established (ws_port))
        {
          detected = now;
          g_test_message ("%s: the app dropped the silent connection %.1f s into the cut", what,
                          (detected - cut_start) / (double) G_USEC_PER_SEC);
        }
      if (detected == 0 && now > cut_start + detect_deadline_s * G_USEC_PER_SEC)
        g_error ("%s: the app still holds its dead connection %.0f s into the cut", what,
                 detect_deadline_s);
      pass_time (0.1);
    }
  while (rung_during < N_DURING)
    {
      g_assert_cmpint (ring (&load, channel, 100 + rung_during, "during-cut"), >, 0);
      rung_during++;
    }
  g_assert_true (tocsin_test_app_is_running (fx.bus));
  /* Its attempts to come back all failed: the cut holds. */
  g_assert_false (has_new_connection (before));

  tocsin_test_notify_clear (fx.bus);
  cut_port (fx.app_port, FALSE);
  restored = g_get_monotonic_time ();
  {
    gint64 deadline = restored + CATCH_UP_DEADLINE_S * G_USEC_PER_SEC;

    while (!has_new_connection (before))
      {
        if (g_get_monotonic_time () > deadline)
          g_error ("%s: the app did not reconnect within %d s of the restore", what,
                   CATCH_UP_DEADLINE_S);
        pass_time (0.05);
      }
  }
  reconnected = g_get_monotonic_time ();
  wait_for_all (&load);
  g_test_message ("%s: cut %.1f s; reconnected %.1f s after the restore; caught up %.1f s "
                  "after it", what, (restored - cut_start) / (double) G_USEC_PER_SEC,
                  (reconnected - restored) / (double) G_USEC_PER_SEC,
                  (g_get_monotonic_time () - restored) / (double) G_USEC_PER_SEC);

  /* Each message rung during the cut popped up once, as it came in. */
  assert_popups (100, N_DURING, "during-cut");

  for (guint n = 200; n < 205; n++)
    ring (&load, channel, n, "after-cut");
  wait_for_all (&load);
  settle (&load, channel);
  assert_exactly_once (&load, what);

  tocsin_test_app_quit (app, fx.bus);
  relay_clear ();
  tocsin_test_load_clear (&load);
}

static void
test_silent_cut (void)
{
  fx.case_name = "silent-cut";
  fx.keepalive = FAST_KEEPALIVE;
  run_silent_cut ("silent-cut", FAST_CUT_S, 60);
}

static void
test_silent_cut_2min (void)
{
  fx.case_name = "silent-cut-2min";
  fx.keepalive = NULL;
  /* The real keepalive: 30 s pings, 90 s of silence, checked every 30 s. */
  run_silent_cut ("silent-cut-2min", SLOW_CUT_S, 300);
}

/* The relay process is away for 2 minutes (the app's backoff reaches its 60 s ceiling), then
 * back on the same data and port. */
static void
test_relay_stop_2min (void)
{
  g_autoptr(JsonObject) channel = NULL;
  g_autoptr(GSubprocess) app = NULL;
  g_autoptr(GArray) before = NULL;
  gint64 stopped, restarted, reconnected;
  Load load;

  fx.case_name = "relay-stop-2min";
  fx.keepalive = NULL;
  tocsin_test_load_init (&load);
  relay_start (NULL);
  app = start_app ();
  channel = subscribe_new_channel ("Netcut outage");

  for (guint n = 0; n < 5; n++)
    ring (&load, channel, n, "before");
  wait_for_all (&load);
  TOCSIN_WAIT_UNTIL (n_connections () >= 1);
  before = client_connections (fx.app_port);

  tocsin_test_relay_stop (fx.relay, FALSE);
  stopped = g_get_monotonic_time ();
  pass_time (SLOW_STOP_S);
  g_assert_true (tocsin_test_app_is_running (fx.bus));

  tocsin_test_notify_clear (fx.bus);
  tocsin_test_relay_restart (fx.relay);
  restarted = g_get_monotonic_time ();
  /* Rung before the app is back: it gets them by catching up from its cursor. */
  for (guint n = 100; n < 100 + N_DURING; n++)
    ring (&load, channel, n, "after-restart");
  {
    gint64 deadline = restarted + CATCH_UP_DEADLINE_S * G_USEC_PER_SEC;

    while (!has_new_connection (before))
      {
        if (g_get_monotonic_time () > deadline)
          g_error ("the app did not reconnect within %d s of the restart", CATCH_UP_DEADLINE_S);
        pass_time (0.05);
      }
  }
  reconnected = g_get_monotonic_time ();
  wait_for_all (&load);
  g_test_message ("relay-stop-2min: stopped %.1f s; reconnected %.1f s after the restart",
                  (restarted - stopped) / (double) G_USEC_PER_SEC,
                  (reconnected - restarted) / (double) G_USEC_PER_SEC);
  assert_popups (100, N_DURING, "after-restart");

  settle (&load, channel);
  assert_exactly_once (&load, "relay-stop-2min");
  tocsin_test_app_quit (app, fx.bus);
  relay_clear ();
  tocsin_test_load_clear (&load);
}

/* Gap records in the export whose title is "Some notifications from @name were missed". */
static GPtrArray *
export_gaps (const char *name)
{
  g_autoptr(GPtrArray) records = export_records ();
  g_autofree char *title = g_strdup_printf ("Some notifications from %s were missed", name);
  GPtrArray *gaps = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);

  for (guint i = 0; i < records->len; i++)
    if (is_gap (records->pdata[i]))
      {
        g_assert_cmpstr (json_object_get_string_member (records->pdata[i], "title"), ==, title);
        g_ptr_array_add (gaps, json_object_ref (records->pdata[i]));
      }
  return gaps;
}

/* The app is away longer than the relay keeps messages: what expired meanwhile is reported as
 * one gap record, visible in the export (and the window), and never again on later starts. */
static void
test_gap_after_retention (void)
{
  g_autoptr(JsonObject) channel = NULL;
  g_autoptr(GSubprocess) app = NULL;
  g_autoptr(GSubprocess) app_again = NULL;
  g_autoptr(GSubprocess) app_third = NULL;
  g_autoptr(GPtrArray) gaps = NULL;
  g_autofree char *expected_body = NULL;
  gint64 first_expired = 0, last_expired = 0;
  Load load, expired;

  fx.case_name = "gap-after-retention";
  fx.keepalive = NULL;
  tocsin_test_load_init (&load);
  tocsin_test_load_init (&expired);
  relay_start ("--retention=" RETENTION);
  app = start_app ();
  channel = subscribe_new_channel ("Netcut gap");

  for (guint n = 0; n < 2; n++)
    ring (&load, channel, n, "kept");
  wait_for_all (&load);
  tocsin_test_app_quit (app, fx.bus);

  /* Rung while the app is away, then older than retention by the time it comes back. */
  for (guint n = 10; n < 14; n++)
    {
      gint64 id = ring (&expired, channel, n, "expired");

      g_assert_cmpint (id, >, 0);
      if (first_expired == 0)
        first_expired = id;
      last_expired = id;
    }
  pass_time (RETENTION_S + 2);

  /* Still kept when the app comes back (it starts in seconds, retention is 20 s). */
  for (guint n = 20; n < 22; n++)
    ring (&load, channel, n, "later");
  app_again = start_app ();
  wait_for_all (&load);
  for (guint n = 30; n < 32; n++)
    ring (&load, channel, n, "live");
  wait_for_all (&load);

  gaps = export_gaps ("Netcut gap");
  g_assert_cmpuint (gaps->len, ==, 1);
  g_assert_cmpint (json_object_get_int_member (gaps->pdata[0], "id"), ==, first_expired);
  expected_body = g_strdup_printf ("Messages %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT
                                   " are no longer kept by the relay, so they could not be "
                                   "delivered.", first_expired, last_expired);
  g_assert_cmpstr (json_object_get_string_member (gaps->pdata[0], "body"), ==, expected_body);
  g_test_message ("gap-after-retention: \"%s\" / \"%s\"",
                  json_object_get_string_member (gaps->pdata[0], "title"),
                  json_object_get_string_member (gaps->pdata[0], "body"));
  /* None of the expired messages was delivered after all. */
  {
    g_autoptr(GHashTable) counts = export_id_counts ();
    GHashTableIter iter;
    gpointer key;

    g_hash_table_iter_init (&iter, expired.acked_ids);
    while (g_hash_table_iter_next (&iter, &key, NULL))
      g_assert_false (g_hash_table_contains (counts, key));
  }
  settle (&load, channel);
  assert_exactly_once (&load, "gap-after-retention");

  /* Reported once: a restart resumes past the gap and does not report it again. */
  tocsin_test_app_quit (app_again, fx.bus);
  app_third = start_app ();
  settle (&load, channel);
  g_clear_pointer (&gaps, g_ptr_array_unref);
  gaps = export_gaps ("Netcut gap");
  g_assert_cmpuint (gaps->len, ==, 1);
  assert_exactly_once (&load, "gap-after-retention, restarted");

  tocsin_test_app_quit (app_third, fx.bus);
  relay_clear ();
  tocsin_test_load_clear (&expired);
  tocsin_test_load_clear (&load);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  /* Before anything starts a thread: this may exec. */
  enter_netns (argc, argv);

  g_test_init (&argc, &argv, NULL);

  if (fx.in_netns)
    setup_netns ();
  fx.tmpdir = tocsin_test_make_tmpdir ("tocsin-e2e-netcut");
  fx.bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);

  g_test_add_func ("/e2e/netcut/silent-cut", test_silent_cut);
  g_test_add_func ("/e2e/netcut/gap-after-retention", test_gap_after_retention);
  if (g_test_slow ())
    {
      g_test_add_func ("/e2e/netcut/silent-cut-2min", test_silent_cut_2min);
      g_test_add_func ("/e2e/netcut/relay-stop-2min", test_relay_stop_2min);
    }
  status = g_test_run ();

  g_clear_object (&fx.bus);
  tocsin_test_rmdir_recursive (fx.tmpdir);
  g_free (fx.tmpdir);
  g_free (fx.no_netns_reason);
  return status;
}
