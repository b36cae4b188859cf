/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-app-hostile.c: a relay that attacks the app. A fake relay (libsoup, on 127.0.0.1 port 0,
 * in a thread of its own so that it answers while the test waits on the app) speaks just
 * enough of the relay's HTTP and /v1/ws to be subscribed to, then sends what a hostile or
 * broken relay could: a frame of 100,000 nested '[', a lookup answer nested as deep. The real
 * `tocsin` binary runs against it as a user runs it (`--background`, `--subscribe=`), and the
 * test asserts what a user would see: the app stays up, keeps its other work going, starts
 * again after the attack (the subscription is saved, so a crash here crashed every start),
 * and a subscribe link whose answer is hostile gets a sentence, not a crash.
 */
#include "config.h"

#include <string.h>

#include "tocsin-test-app.h"
#include "tocsin-test-relay.h"

#define DEEP 100000

typedef enum
{
  ATTACK_FIRST_CONNECTION,   /* the first /v1/ws gets the deep frame, later ones a message */
  ATTACK_EVERY_CONNECTION,
} Attack;

typedef struct
{
  GThread      *thread;
  GMainContext *context;
  GMainLoop    *loop;
  SoupServer   *server;
  char         *url;              /* http://127.0.0.1:PORT */
  GMutex        lock;
  GCond         ready;

  /* Set by the test before the app connects; read in the relay's thread. */
  gint          attack;           /* Attack */
  gint          deep_lookup;      /* the /s/ lookup answers with deep JSON */

  /* Counted in the relay's thread, read by the test. */
  gint          connections;
  gint          deep_frames_sent;
  gint          messages_sent;
  gint          protocol_closes;  /* the app closed with 1002 after a deep frame */
  GPtrArray    *sockets;          /* SoupWebsocketConnection, kept until the end */
} HostileRelay;

static HostileRelay hr;
static GDBusConnection *bus;
static char *tmpdir;

static char *
deep_json (void)
{
  char *text = g_malloc (2 * DEEP + 1);

  memset (text, '[', DEEP);
  memset (text + DEEP, ']', DEEP);
  text[2 * DEEP] = '\0';
  return text;
}

static void
lookup_cb (SoupServer        *server,
           SoupServerMessage *msg,
           const char        *path,
           GHashTable        *query,
           gpointer           user_data)
{
  g_autofree char *body = NULL;
  gsize length;

  if (g_atomic_int_get (&hr.deep_lookup))
    body = deep_json ();
  else
    body = g_strdup ("{\"id\": 1, \"name\": \"Hostile\", \"description\": \"\"}");
  length = strlen (body);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE,
                                    g_steal_pointer (&body), length);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

static void
ws_message_cb (SoupWebsocketConnection *ws,
               gint                     type,
               GBytes                  *message,
               gpointer                 user_data)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  gboolean first = GPOINTER_TO_INT (user_data) == 1;
  const char *token;
  JsonObject *frame;
  gsize length;
  const char *data = g_bytes_get_data (message, &length);
  g_autofree char *subscribed = NULL;

  /* The app's own frames are small and trusted here. */
  if (!json_parser_load_from_data (parser, data, length, NULL))
    return;
  frame = json_node_get_object (json_parser_get_root (parser));
  if (g_strcmp0 (json_object_get_string_member_with_default (frame, "type", ""), "subscribe"))
    return;
  token = json_object_get_string_member (frame, "token");
  subscribed = g_strdup_printf ("{\"type\":\"subscribed\",\"token\":\"%s\","
                                "\"channel\":{\"id\":1,\"name\":\"Hostile\",\"description\":\"\"},"
                                "\"lastId\":0}", token);
  soup_websocket_connection_send_text (ws, subscribed);

  if (first || g_atomic_int_get (&hr.attack) == ATTACK_EVERY_CONNECTION)
    {
      g_autofree char *deep = deep_json ();

      soup_websocket_connection_send_text (ws, deep);
      g_atomic_int_inc (&hr.deep_frames_sent);
    }
  else
    {
      soup_websocket_connection_send_text (ws,
        "{\"type\":\"message\",\"message\":{\"id\":1,\"channel\":1,"
        "\"time\":\"2026-12-06T12:00:00Z\",\"title\":\"After the attack\","
        "\"body\":\"Still ringing\",\"vars\":{}}}");
      g_atomic_int_inc (&hr.messages_sent);
    }
}

static void
ws_closed_cb (SoupWebsocketConnection *ws,
              gpointer                 user_data)
{
  if (soup_websocket_connection_get_close_code (ws) == SOUP_WEBSOCKET_CLOSE_PROTOCOL_ERROR)
    g_atomic_int_inc (&hr.protocol_closes);
}

static void
ws_cb (SoupServer              *server,
       SoupServerMessage       *msg,
       const char              *path,
       SoupWebsocketConnection *connection,
       gpointer                 user_data)
{
  gint n = g_atomic_int_add (&hr.connections, 1) + 1;

  g_ptr_array_add (hr.sockets, g_object_ref (connection));
  soup_websocket_connection_set_max_incoming_payload_size (connection, 1024 * 1024);
  g_signal_connect (connection, "message", G_CALLBACK (ws_message_cb), GINT_TO_POINTER (n));
  g_signal_connect (connection, "closed", G_CALLBACK (ws_closed_cb), NULL);
}

static gpointer
relay_thread (gpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoslist(GUri) uris = NULL;
  g_autofree char *uri = NULL;

  g_main_context_push_thread_default (hr.context);
  hr.server = soup_server_new (NULL, NULL);
  soup_server_add_handler (hr.server, "/s/", lookup_cb, NULL, NULL);
  soup_server_add_websocket_handler (hr.server, "/v1/ws", NULL, NULL, ws_cb, NULL, NULL);
  soup_server_listen_local (hr.server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (hr.server);
  uri = g_uri_to_string (uris->data);

  g_mutex_lock (&hr.lock);
  hr.url = g_strndup (uri, strlen (uri) - (g_str_has_suffix (uri, "/") ? 1 : 0));
  g_cond_signal (&hr.ready);
  g_mutex_unlock (&hr.lock);

  g_main_loop_run (hr.loop);
  g_ptr_array_unref (hr.sockets);
  soup_server_disconnect (hr.server);
  g_clear_object (&hr.server);
  g_main_context_pop_thread_default (hr.context);
  return NULL;
}

static void
hostile_relay_start (void)
{
  g_mutex_init (&hr.lock);
  g_cond_init (&hr.ready);
  hr.context = g_main_context_new ();
  hr.loop = g_main_loop_new (hr.context, FALSE);
  hr.sockets = g_ptr_array_new_with_free_func (g_object_unref);
  g_mutex_lock (&hr.lock);
  hr.thread = g_thread_new ("hostile-relay", relay_thread, NULL);
  while (hr.url == NULL)
    g_cond_wait (&hr.ready, &hr.lock);
  g_mutex_unlock (&hr.lock);
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
hostile_relay_stop (void)
{
  g_main_context_invoke (hr.context, quit_loop, hr.loop);
  g_thread_join (hr.thread);
  g_main_loop_unref (hr.loop);
  g_main_context_unref (hr.context);
  g_free (hr.url);
}

static char *
subscribe_arg (void)
{
  return g_strdup_printf ("--subscribe=%s/s/HostileToken0123456789abcdefghij", hr.url);
}

static gboolean
export_has_title (const char *title)
{
  g_autoptr(GPtrArray) records = tocsin_test_app_export (tocsin_test_app_launcher (NULL));

  for (guint i = 0; i < records->len; i++)
    if (g_strcmp0 (json_object_get_string_member_with_default (records->pdata[i], "title", ""),
                   title) == 0)
      return TRUE;
  return FALSE;
}

/* A frame of 100,000 nested '[' was a SIGSEGV in json-glib's parser, at once and at every start
 * after (the subscription was saved first). Now: the socket is dropped with 1002, the app
 * backs off, connects again and gets the next message; it starts again without crashing. */
static void
test_deep_frame (void)
{
  g_autoptr(GSubprocess) app = NULL;
  g_autoptr(GSubprocess) again = NULL;
  g_autofree char *arg = subscribe_arg ();
  g_autofree char *out = NULL;
  gint sent_before;

  g_atomic_int_set (&hr.attack, ATTACK_FIRST_CONNECTION);
  app = tocsin_test_app_start (tocsin_test_app_launcher (NULL), bus);
  g_assert_cmpint (tocsin_test_app_run (tocsin_test_app_launcher (NULL), &out, arg, NULL), ==, 0);

  /* The app read the deep frame, said no (1002), and is still there. */
  TOCSIN_WAIT_UNTIL (g_atomic_int_get (&hr.protocol_closes) >= 1);
  g_assert_cmpint (g_atomic_int_get (&hr.deep_frames_sent), ==, 1);
  g_assert_nonnull (g_subprocess_get_identifier (app));   /* not exited */
  g_assert_true (tocsin_test_app_is_running (bus));

  /* It came back (after its back-off) and stored what the relay sent next. */
  TOCSIN_WAIT_UNTIL (g_atomic_int_get (&hr.messages_sent) >= 1 &&
                     export_has_title ("After the attack"));
  g_assert_true (tocsin_test_app_is_running (bus));
  tocsin_test_app_quit (app, bus);

  /* Started again, it meets the attack on every connection and never crashes. */
  g_atomic_int_set (&hr.attack, ATTACK_EVERY_CONNECTION);
  sent_before = g_atomic_int_get (&hr.protocol_closes);
  again = tocsin_test_app_start (tocsin_test_app_launcher (NULL), bus);
  TOCSIN_WAIT_UNTIL (g_atomic_int_get (&hr.protocol_closes) > sent_before);
  g_assert_true (tocsin_test_app_is_running (bus));
  tocsin_test_app_quit (again, bus);
}

/* A subscribe link can come from any web page: an answer nested 100,000 deep gets a sentence
 * and a non-zero exit, not a crash of the preview. */
static void
test_deep_lookup (void)
{
  g_autofree char *arg = subscribe_arg ();
  g_autofree char *out = NULL;
  g_autoptr(GSubprocess) app = NULL;
  int status;

  g_atomic_int_set (&hr.deep_lookup, TRUE);
  app = tocsin_test_app_start (tocsin_test_app_launcher (NULL), bus);
  status = tocsin_test_app_run (tocsin_test_app_launcher (NULL), &out, arg, NULL);
  g_assert_cmpint (status, >, 0);
  g_assert_true (tocsin_test_app_is_running (bus));
  tocsin_test_app_quit (app, bus);
  g_atomic_int_set (&hr.deep_lookup, FALSE);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  const char *kinds[] = { "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME" };
  int status;

  g_test_init (&argc, &argv, NULL);

  tmpdir = tocsin_test_make_tmpdir ("tocsin-app-hostile");
  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      g_autofree char *dir = g_build_filename (tmpdir, kinds[i], NULL);

      g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
      g_setenv (kinds[i], dir, TRUE);
    }
  bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);
  hostile_relay_start ();

  g_test_add_func ("/app/hostile/deep-lookup", test_deep_lookup);
  g_test_add_func ("/app/hostile/deep-frame", test_deep_frame);
  status = g_test_run ();

  hostile_relay_stop ();
  g_clear_object (&bus);
  tocsin_test_rmdir_recursive (tmpdir);
  g_free (tmpdir);
  return status;
}
