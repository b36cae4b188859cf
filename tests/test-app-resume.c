/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-app-resume.c: the app's connection across a laptop's sleep and a network that comes
 * back, as the desktop announces them: logind's PrepareForSleep and NetworkManager's
 * state, from python3-dbusmock's logind and networkmanager templates on a private
 * system bus this test starts (GIO's NetworkManager network monitor is selected with
 * GIO_USE_NETWORK_MONITOR). The relay is real; the app's engine (TocsinClient) runs here.
 *
 * Sleep is played with a TCP relay in between (a "proxy" in this file): at "sleep" every
 * connection through it goes silent for good, with no FIN and no RST, which is what a socket
 * looks like after a resume once the NAT mapping or the Wi-Fi association is gone. Without the
 * resume handling the app would notice only after its 90 s keepalive; the waits here give up
 * after 20 s.
 */
#include "config.h"

#include <signal.h>
#include <sys/prctl.h>

#include "tocsin-client.h"
#include "tocsin-test-relay.h"

/* ---- a private system bus with logind and NetworkManager ---- */

static GSubprocess *system_bus;
static GPtrArray   *mocks;          /* GSubprocess */
static char        *mocks_missing;  /* why they could not be started, or NULL */

static GDBusConnection *
system_bus_connection (void)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *bus = g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, &error);

  g_assert_no_error (error);
  return bus;
}

/* The bus and the mocks go when this test goes, even when it aborts. */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

static GSubprocess *
spawn (GSubprocessFlags   flags,
       GError           **error,
       const char        *first,
       ...)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (flags);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  va_list ap;

  va_start (ap, first);
  for (const char *arg = first; arg; arg = va_arg (ap, const char *))
    g_ptr_array_add (argv, (char *) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  return g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, error);
}

/* Starts `dbus-daemon` with the session policy as this process's system bus, and the two
 * mocks on it. Runs before any thread exists: it sets the environment. */
static gboolean
start_system_bus (GError **error)
{
  g_autoptr(GDataInputStream) out = NULL;
  g_autofree char *address = NULL;
  const char *templates[] = { "logind", "networkmanager" };
  const char *names[] = { "org.freedesktop.login1", "org.freedesktop.NetworkManager" };

  system_bus = spawn (G_SUBPROCESS_FLAGS_STDOUT_PIPE, error, "dbus-daemon",
                                 "--session", "--nofork", "--print-address=1", NULL);
  if (system_bus == NULL)
    return FALSE;
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (system_bus));
  address = g_data_input_stream_read_line (out, NULL, NULL, error);
  if (address == NULL)
    return FALSE;
  g_setenv ("DBUS_SYSTEM_BUS_ADDRESS", g_strstrip (address), TRUE);
  g_setenv ("GIO_USE_NETWORK_MONITOR", "networkmanager", TRUE);

  mocks = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < G_N_ELEMENTS (templates); i++)
    {
      GSubprocess *mock = spawn (G_SUBPROCESS_FLAGS_STDOUT_SILENCE, error,
                                            "/usr/bin/python3", "-m", "dbusmock", "--system",
                                            "--template", templates[i], NULL);
      g_autoptr(GSubprocess) wait = NULL;

      if (mock == NULL)
        return FALSE;
      g_ptr_array_add (mocks, mock);
      wait = spawn (G_SUBPROCESS_FLAGS_NONE, error, "gdbus", "wait", "--system",
                               "--timeout", "20", names[i], NULL);
      if (wait == NULL || !g_subprocess_wait_check (wait, NULL, error))
        return FALSE;
    }
  return TRUE;
}

static void
stop_system_bus (void)
{
  for (guint i = 0; mocks && i < mocks->len; i++)
    g_subprocess_force_exit (g_ptr_array_index (mocks, i));
  g_clear_pointer (&mocks, g_ptr_array_unref);
  if (system_bus)
    g_subprocess_force_exit (system_bus);
  g_clear_object (&system_bus);
}

static void
mock_call (const char *name,
           const char *path,
           const char *method,
           GVariant   *args)
{
  g_autoptr(GDBusConnection) bus = system_bus_connection ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_sync (bus, name, path, "org.freedesktop.DBus.Mock", method,
                                       args, NULL,
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
}

/* logind says the machine goes to sleep (TRUE) or has just woken up (FALSE). */
static void
prepare_for_sleep (gboolean going)
{
  GVariantBuilder args;

  g_variant_builder_init (&args, G_VARIANT_TYPE ("av"));
  g_variant_builder_add (&args, "v", g_variant_new_boolean (going));
  mock_call ("org.freedesktop.login1", "/org/freedesktop/login1", "EmitSignal",
             g_variant_new ("(sssav)", "org.freedesktop.login1.Manager", "PrepareForSleep", "b",
                            &args));
}

/* NetworkManager's global state (what GLib's monitor reads for "network available"):
 * 20 disconnected, 70 connected with full connectivity. */
#define NM_DISCONNECTED 20
#define NM_CONNECTED_GLOBAL 70

static void
set_network_state (guint32 state)
{
  mock_call ("org.freedesktop.NetworkManager", "/org/freedesktop/NetworkManager",
             "SetGlobalConnectionState", g_variant_new ("(u)", state));
}

/* ---- a TCP relay that can make its connections go silent ---- */

typedef struct
{
  GSocketService *service;
  guint16         port;
  guint16         target_port;
  GPtrArray      *pipes;     /* Pipe, both directions of every connection */
} Proxy;

typedef struct
{
  GIOStream *from;
  GIOStream *to;
  gboolean   silent;         /* the "network" is gone: read and drop, never forward */
  gboolean   done;
} Pipe;

static Proxy proxy;

static void pipe_read (Pipe *pipe);

static void
pipe_close (Pipe *pipe)
{
  pipe->done = TRUE;
  g_io_stream_close (pipe->to, NULL, NULL);
  g_io_stream_close (pipe->from, NULL, NULL);
}

static void
on_written (GObject      *stream,
            GAsyncResult *result,
            gpointer      data)
{
  Pipe *pipe = data;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (stream), result, NULL, NULL))
    {
      pipe_close (pipe);
      return;
    }
  pipe_read (pipe);
}

static void
on_read (GObject      *stream,
         GAsyncResult *result,
         gpointer      data)
{
  Pipe *pipe = data;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (stream), result,
                                                              NULL);
  gsize size;
  const guint8 *p;

  if (pipe->done)
    return;
  if (bytes == NULL || g_bytes_get_size (bytes) == 0)
    {
      /* End of stream, unless the network is gone: then the other side never hears of it. */
      if (!pipe->silent)
        pipe_close (pipe);
      return;
    }
  if (pipe->silent)
    {
      pipe_read (pipe);
      return;
    }
  p = g_bytes_get_data (bytes, &size);
  /* @bytes stays alive through the write: the pipe keeps a reference in the closure. */
  g_output_stream_write_all_async (g_io_stream_get_output_stream (pipe->to), p, size,
                                   G_PRIORITY_DEFAULT, NULL, on_written, pipe);
  g_object_set_data_full (G_OBJECT (pipe->to), "in-flight", g_bytes_ref (bytes),
                          (GDestroyNotify) g_bytes_unref);
}

static void
pipe_read (Pipe *pipe)
{
  g_input_stream_read_bytes_async (g_io_stream_get_input_stream (pipe->from), 64 * 1024,
                                   G_PRIORITY_DEFAULT, NULL, on_read, pipe);
}

static void
pipe_free (gpointer data)
{
  Pipe *pipe = data;

  g_object_unref (pipe->from);
  g_object_unref (pipe->to);
  g_free (pipe);
}

static gboolean
on_incoming (GSocketService    *service,
             GSocketConnection *downstream,
             GObject           *source,
             gpointer           data)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) upstream = NULL;
  g_autoptr(GError) error = NULL;
  Pipe *up = g_new0 (Pipe, 1), *down = g_new0 (Pipe, 1);

  upstream = g_socket_client_connect_to_host (client, "127.0.0.1", proxy.target_port, NULL,
                                              &error);
  if (upstream == NULL)
    {
      /* The relay is down: the app sees its connection closed, as it would see a refusal. */
      g_free (up);
      g_free (down);
      g_io_stream_close (G_IO_STREAM (downstream), NULL, NULL);
      return TRUE;
    }
  up->from = g_object_ref (G_IO_STREAM (downstream));
  up->to = g_object_ref (G_IO_STREAM (upstream));
  down->from = g_object_ref (G_IO_STREAM (upstream));
  down->to = g_object_ref (G_IO_STREAM (downstream));
  g_ptr_array_add (proxy.pipes, up);
  g_ptr_array_add (proxy.pipes, down);
  pipe_read (up);
  pipe_read (down);
  return TRUE;
}

static void
proxy_start (guint16 target_port)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) effective = NULL;
  g_autoptr(GError) error = NULL;

  proxy.target_port = target_port;
  proxy.pipes = g_ptr_array_new_with_free_func (pipe_free);
  proxy.service = g_socket_service_new ();
  g_socket_listener_add_address (G_SOCKET_LISTENER (proxy.service), address,
                                 G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &effective,
                                 &error);
  g_assert_no_error (error);
  proxy.port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  g_signal_connect (proxy.service, "incoming", G_CALLBACK (on_incoming), NULL);
  g_socket_service_start (proxy.service);
}

/* Every connection open now goes silent for good; new ones work. */
static void
proxy_lose_network (void)
{
  for (guint i = 0; i < proxy.pipes->len; i++)
    ((Pipe *) g_ptr_array_index (proxy.pipes, i))->silent = TRUE;
}

static void
proxy_stop (void)
{
  g_socket_service_stop (proxy.service);
  g_socket_listener_close (G_SOCKET_LISTENER (proxy.service));
  for (guint i = 0; i < proxy.pipes->len; i++)
    {
      Pipe *pipe = g_ptr_array_index (proxy.pipes, i);

      if (!pipe->done)
        pipe_close (pipe);
    }
  /* Let the cancelled reads finish before their pipes go. */
  for (guint i = 0; i < 50; i++)
    g_main_context_iteration (NULL, FALSE);
  g_clear_object (&proxy.service);
  g_clear_pointer (&proxy.pipes, g_ptr_array_unref);
}

/* ---- the app's engine, subscribed through the proxy ---- */

typedef struct
{
  char               *dir;
  guint16             port;
  TocsinTestRelay    *relay;
  JsonObject         *channel;
  char               *app_relay_url;   /* the proxy: what the app knows the relay as */
  TocsinHistory      *history;
  GSettings          *settings;
  TocsinNotifier     *notifier;
  TocsinClient       *client;
  TocsinSubscription *sub;
  GPtrArray          *titles;          /* what the app received, in order */
} Fixture;

static void
on_record_received (TocsinClient *client,
                    TocsinRecord *record,
                    int           result,
                    Fixture      *f)
{
  g_ptr_array_add (f->titles, g_strdup (tocsin_record_get_title (record)));
}

static void
store_result (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static TocsinConnection *
connection (Fixture *f)
{
  return tocsin_client_get_connection (f->client, f->app_relay_url);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autofree char *listen = NULL;
  g_autofree char *db = NULL;
  g_autofree char *subscribe_url = NULL;
  const char *args[2] = { NULL, NULL };
  g_autoptr(GAsyncResult) res = NULL, res2 = NULL;
  g_autoptr(TocsinSubscription) fetched = NULL;
  g_autoptr(GError) error = NULL;

  if (mocks_missing)
    return;
  set_network_state (NM_CONNECTED_GLOBAL);
  f->dir = tocsin_test_make_tmpdir ("tocsin-resume-test");
  f->port = tocsin_test_free_port ();
  listen = g_strdup_printf ("--listen=127.0.0.1:%u", f->port);
  args[0] = listen;
  f->relay = tocsin_test_relay_start (NULL, args);
  f->channel = tocsin_test_relay_create_channel (f->relay, "Laptop", "Ring {{n}}", NULL, NULL,
                                                 NULL);
  proxy_start (f->port);
  f->app_relay_url = g_strdup_printf ("http://127.0.0.1:%u", proxy.port);
  subscribe_url = g_strdup_printf ("%s/s/%s", f->app_relay_url,
                                   json_object_get_string_member (f->channel,
                                                                  "subscribe_token"));

  db = g_build_filename (f->dir, "history.db", NULL);
  f->history = tocsin_history_new (db);
  f->settings = g_settings_new (APP_ID);
  f->notifier = tocsin_notifier_new (f->settings);
  f->titles = g_ptr_array_new_with_free_func (g_free);
  f->client = tocsin_client_new (f->history, f->notifier, f->settings);
  g_signal_connect (f->client, "record-received", G_CALLBACK (on_record_received), f);
  tocsin_client_start (f->client);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_started (f->client));

  tocsin_client_fetch_channel_info_async (f->client, subscribe_url, NULL, store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  fetched = tocsin_client_fetch_channel_info_finish (f->client, res, NULL, &error);
  g_assert_no_error (error);
  tocsin_client_subscribe_async (f->client, fetched, NULL, store_result, &res2);
  TOCSIN_WAIT_UNTIL (res2 != NULL);
  f->sub = tocsin_client_subscribe_finish (f->client, res2, &error);
  g_assert_no_error (error);
  TOCSIN_WAIT_UNTIL (tocsin_subscription_get_cursor (f->sub) != TOCSIN_CURSOR_NONE);
  g_assert_cmpint (tocsin_connection_get_state (connection (f)), ==,
                   TOCSIN_CONNECTION_CONNECTED);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  if (f->dir == NULL)
    return;
  g_clear_object (&f->sub);
  tocsin_client_stop (f->client);
  g_clear_object (&f->client);
  g_clear_object (&f->notifier);
  g_clear_object (&f->settings);
  tocsin_history_flush_sync (f->history);
  g_clear_object (&f->history);
  proxy_stop ();
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
  g_clear_pointer (&f->channel, json_object_unref);
  g_clear_pointer (&f->titles, g_ptr_array_unref);
  tocsin_test_rmdir_recursive (f->dir);
  g_free (f->dir);
  g_free (f->app_relay_url);
}

/* Rings the channel on the relay itself (not through the proxy: the sender is elsewhere). */
static void
ring (Fixture *f,
      guint    n)
{
  g_autofree char *path = g_strdup_printf ("/t/%s?n=%u",
                                           json_object_get_string_member (f->channel,
                                                                          "trigger_token"), n);

  g_assert_cmpuint (tocsin_test_http (f->relay, "GET", path, NULL, NULL, 0, NULL, NULL, NULL),
                    ==, 200);
}

static void
assert_received_once (Fixture *f,
                      guint    first,
                      guint    last)
{
  g_assert_cmpuint (f->titles->len, ==, last - first + 1);
  for (guint n = first; n <= last; n++)
    {
      g_autofree char *title = g_strdup_printf ("Ring %u", n);

      g_assert_cmpstr (g_ptr_array_index (f->titles, n - first), ==, title);
    }
}

static gboolean
skip_without_mocks (void)
{
  if (mocks_missing)
    g_test_skip (mocks_missing);
  return mocks_missing != NULL;
}

/* The laptop sleeps with the app connected; what is rung meanwhile goes into a socket that is
 * dead at resume. On logind's "woken up" the app drops it, reconnects at once and catches up,
 * each message once. */
static void
test_resume (Fixture       *f,
             gconstpointer  data)
{
  if (skip_without_mocks ())
    return;

  ring (f, 1);
  TOCSIN_WAIT_UNTIL (f->titles->len == 1);

  prepare_for_sleep (TRUE);
  proxy_lose_network ();
  for (guint n = 2; n <= 4; n++)
    ring (f, n);
  prepare_for_sleep (FALSE);

  /* 20 s, against the 90 s the keepalive would take to notice. */
  TOCSIN_WAIT_UNTIL (f->titles->len == 4);
  assert_received_once (f, 1, 4);
  g_assert_cmpint (tocsin_connection_get_state (connection (f)), ==,
                   TOCSIN_CONNECTION_CONNECTED);

  /* And it is live again, not just caught up. */
  ring (f, 5);
  TOCSIN_WAIT_UNTIL (f->titles->len == 5);
  assert_received_once (f, 1, 5);
}

/* The network goes away while the relay is unreachable, so the app backs off, seconds at a
 * time; when NetworkManager reports the network back, the app retries at once instead of
 * waiting out its backoff, and catches up. */
static void
test_network_back (Fixture       *f,
                   gconstpointer  data)
{
  gint64 retry_due = 0;

  if (skip_without_mocks ())
    return;

  ring (f, 1);
  TOCSIN_WAIT_UNTIL (f->titles->len == 1);

  set_network_state (NM_DISCONNECTED);
  tocsin_test_relay_stop (f->relay, TRUE);
  /* Refused attempts double the wait: 1, 2, 4, 8 s (±25 %). Wait for one of 5 s or more. */
  {
    gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

    for (;;)
      {
        TocsinConnection *conn = connection (f);
        gint64 due = 0;

        g_object_get (conn, "retry-time", &due, NULL);
        if (tocsin_connection_get_state (conn) == TOCSIN_CONNECTION_WAITING &&
            due - g_get_monotonic_time () >= 5 * G_USEC_PER_SEC)
          {
            retry_due = due;
            break;
          }
        g_assert_cmpint (g_get_monotonic_time (), <, deadline);
        g_main_context_iteration (NULL, FALSE);
        g_usleep (1000);
      }
  }

  tocsin_test_relay_restart (f->relay);
  ring (f, 2);
  set_network_state (NM_CONNECTED_GLOBAL);

  TOCSIN_WAIT_UNTIL (tocsin_connection_get_state (connection (f)) ==
                     TOCSIN_CONNECTION_CONNECTED || g_get_monotonic_time () >= retry_due);
  /* Connected because the network came back, not because the backoff ran out. */
  g_assert_cmpint (tocsin_connection_get_state (connection (f)), ==,
                   TOCSIN_CONNECTION_CONNECTED);
  g_assert_cmpint (g_get_monotonic_time (), <, retry_due);
  TOCSIN_WAIT_UNTIL (f->titles->len == 2);
  assert_received_once (f, 1, 2);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  if (!start_system_bus (&error))
    mocks_missing = g_strdup_printf ("no private system bus with logind and NetworkManager "
                                     "mocks: %s", error->message);
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/app/resume/after-sleep", Fixture, NULL, fixture_setup, test_resume,
              fixture_teardown);
  g_test_add ("/app/resume/network-back", Fixture, NULL, fixture_setup, test_network_back,
              fixture_teardown);
  status = g_test_run ();
  stop_system_bus ();
  return status;
}
