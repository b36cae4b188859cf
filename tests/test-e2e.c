/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-e2e.c: the real `tocsin-relay` and `tocsin` programs, run the way a person runs them:
 * create a channel on the command line, `tocsin --subscribe=`, ring it with GET and POST, see
 * both notifications (python3-dbusmock's notification daemon) and both records in
 * `tocsin --export-records`, quit the app, ring again, start the app, and find the missed
 * record with exactly one notification.
 */
#define G_LOG_DOMAIN "test-e2e"

#include "config.h"

#include <glib/gstdio.h>

#include "tocsin-test-relay.h"

typedef struct
{
  char            *tmpdir;
  TocsinTestRelay *relay;
  JsonObject      *channel;
  GDBusConnection *bus;
} Fixture;

static Fixture fx;

/* Runs `tocsin ARGS...` to completion; returns the exit status and its output. */
static int
run_tocsin (char      **out,
            const char *first_arg,
            ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
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

  process = g_subprocess_newv ((const char * const *) argv->pdata,
                               G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                               &error);
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

/* `tocsin --background`, as the autostart entry runs it. */
static GSubprocess *
start_app (void)
{
  g_autoptr(GError) error = NULL;
  GSubprocess *process;

  process = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, &error, tocsin_test_app_binary (), "--background",
                              NULL);
  g_assert_no_error (error);
  TOCSIN_WAIT_UNTIL (app_is_running ());
  return process;
}

static void
wait_done_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (object), result, NULL);
  *(gboolean *) user_data = TRUE;
}

/* What "Quit" in the main menu does: app.quit, here through the app's exported actions. */
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

static void
clear_notifications (void)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = g_dbus_connection_call_sync (fx.bus, "org.freedesktop.Notifications",
                                       "/org/freedesktop/Notifications",
                                       "org.freedesktop.DBus.Mock", "ClearCalls", NULL, NULL,
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
}

/* The summaries ("title") and bodies of every Notify call the notification server got. */
static GPtrArray *
notify_calls (void)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) calls = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *result = g_ptr_array_new_with_free_func (g_free);
  GVariantIter iter;
  const char *method;
  GVariant *args;

  reply = g_dbus_connection_call_sync (fx.bus, "org.freedesktop.Notifications",
                                       "/org/freedesktop/Notifications",
                                       "org.freedesktop.DBus.Mock", "GetCalls", NULL,
                                       G_VARIANT_TYPE ("(a(tsav))"), G_DBUS_CALL_FLAGS_NONE, -1,
                                       NULL, &error);
  g_assert_no_error (error);
  calls = g_variant_get_child_value (reply, 0);
  g_variant_iter_init (&iter, calls);
  while (g_variant_iter_next (&iter, "(t&s@av)", NULL, &method, &args))
    {
      if (g_str_equal (method, "Notify"))
        {
          g_autoptr(GVariant) summary = g_variant_get_child_value (args, 3);
          g_autoptr(GVariant) body = g_variant_get_child_value (args, 4);
          g_autoptr(GVariant) s = g_variant_get_variant (summary);
          g_autoptr(GVariant) b = g_variant_get_variant (body);

          g_ptr_array_add (result, g_strdup_printf ("%s|%s", g_variant_get_string (s, NULL),
                                                    g_variant_get_string (b, NULL)));
        }
      g_variant_unref (args);
    }
  return result;
}

static guint
n_notify_calls (void)
{
  g_autoptr(GPtrArray) calls = notify_calls ();

  return calls->len;
}

static void
ring_get (const char *query)
{
  g_autofree char *path = g_strdup_printf ("/t/%s?%s",
                                           json_object_get_string_member (fx.channel, "trigger_token"),
                                           query);

  g_assert_cmpuint (tocsin_test_http (fx.relay, "GET", path, NULL, NULL, 0, NULL, NULL, NULL), ==, 200);
}

static void
ring_post (const char *json)
{
  g_autofree char *path = g_strdup_printf ("/t/%s",
                                           json_object_get_string_member (fx.channel, "trigger_token"));

  g_assert_cmpuint (tocsin_test_http (fx.relay, "POST", path, "application/json", json, -1, NULL,
                                      NULL, NULL), ==, 200);
}

/* `tocsin --export-records=-`: one JSON object per line. */
static GPtrArray *
export_titles (void)
{
  g_autofree char *out = NULL;
  g_auto(GStrv) lines = NULL;
  GPtrArray *titles = g_ptr_array_new_with_free_func (g_free);

  g_assert_cmpint (run_tocsin (&out, "--export-records=-", NULL), ==, 0);
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autoptr(GError) error = NULL;
      JsonObject *object;

      if (*lines[i] == '\0')
        continue;
      json_parser_load_from_data (parser, lines[i], -1, &error);
      g_assert_no_error (error);
      object = json_node_get_object (json_parser_get_root (parser));
      g_assert_true (json_object_has_member (object, "id"));
      g_assert_true (json_object_has_member (object, "channel"));
      g_assert_true (json_object_has_member (object, "time"));
      g_assert_true (json_object_has_member (object, "read"));
      g_ptr_array_add (titles, g_strdup_printf ("%s|%s",
                                                json_object_get_string_member (object, "title"),
                                                json_object_get_string_member (object, "body")));
    }
  return titles;
}

static gboolean
ptr_array_has (GPtrArray  *array,
               const char *text)
{
  for (guint i = 0; i < array->len; i++)
    if (g_str_equal (array->pdata[i], text))
      return TRUE;
  return FALSE;
}

static void
test_subscribe_ring_restart (void)
{
  g_autoptr(GSubprocess) app = NULL;
  g_autoptr(GSubprocess) app_again = NULL;
  g_autofree char *out = NULL;
  g_autofree char *subscribe_arg = NULL;
  g_autoptr(GPtrArray) calls = NULL;
  g_autoptr(GPtrArray) titles = NULL;

  clear_notifications ();

  /* 2. The app runs in the background; a script subscribes it without asking. */
  app = start_app ();
  subscribe_arg = g_strdup_printf ("--subscribe=%s",
                                   json_object_get_string_member (fx.channel, "subscribe_url"));
  g_assert_cmpint (run_tocsin (&out, subscribe_arg, NULL), ==, 0);
  g_test_message ("tocsin --subscribe: %s", out);
  g_assert_nonnull (strstr (out, "Subscribed to “E2E alerts”."));

  /* 3. Ring it with GET and with POST. */
  ring_get ("n=1&how=GET");
  ring_post ("{\"n\": 2, \"how\": \"POST\"}");

  /* 4. Both pop up, and both are in the export (while the app runs). */
  TOCSIN_WAIT_UNTIL (n_notify_calls () >= 2);
  calls = notify_calls ();
  g_assert_cmpuint (calls->len, ==, 2);
  g_assert_cmpstr (calls->pdata[0], ==, "Ring 1|from GET");
  g_assert_cmpstr (calls->pdata[1], ==, "Ring 2|from POST");
  g_clear_pointer (&calls, g_ptr_array_unref);

  titles = export_titles ();
  g_assert_cmpuint (titles->len, ==, 2);
  g_assert_true (ptr_array_has (titles, "Ring 1|from GET"));
  g_assert_true (ptr_array_has (titles, "Ring 2|from POST"));
  g_clear_pointer (&titles, g_ptr_array_unref);

  /* 5. Quit, ring while it is away, start it again. */
  quit_app (app);
  ring_get ("n=3&how=GET");
  clear_notifications ();
  app_again = start_app ();

  /* The missed one arrives once. A fourth, rung after the catch-up, arrives after it on the
   * same socket, so once it is here any duplicate of 1..3 would have been too. */
  TOCSIN_WAIT_UNTIL (n_notify_calls () >= 1);
  ring_get ("n=4&how=GET");
  TOCSIN_WAIT_UNTIL (n_notify_calls () >= 2);
  calls = notify_calls ();
  g_assert_cmpuint (calls->len, ==, 2);
  g_assert_cmpstr (calls->pdata[0], ==, "Ring 3|from GET");
  g_assert_cmpstr (calls->pdata[1], ==, "Ring 4|from GET");

  quit_app (app_again);

  /* And the export (no instance running now) has each record once. */
  titles = export_titles ();
  g_assert_cmpuint (titles->len, ==, 4);
  g_assert_true (ptr_array_has (titles, "Ring 3|from GET"));
  g_assert_true (ptr_array_has (titles, "Ring 4|from GET"));
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autofree char *data_home = NULL;
  g_autofree char *config_home = NULL;
  g_autofree char *cache_home = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);

  fx.tmpdir = tocsin_test_make_tmpdir ("tocsin-e2e");
  data_home = g_build_filename (fx.tmpdir, "data", NULL);
  config_home = g_build_filename (fx.tmpdir, "config", NULL);
  cache_home = g_build_filename (fx.tmpdir, "cache", NULL);
  g_setenv ("XDG_DATA_HOME", data_home, TRUE);
  g_setenv ("XDG_CONFIG_HOME", config_home, TRUE);
  g_setenv ("XDG_CACHE_HOME", cache_home, TRUE);

  fx.bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);

  /* 1. A channel, created with the command line. */
  fx.relay = tocsin_test_relay_start (NULL, NULL);
  fx.channel = tocsin_test_relay_create_channel (fx.relay, "E2E alerts", "Ring {{n}}",
                                                 "from {{how}}", NULL, NULL);

  g_test_add_func ("/e2e/subscribe-ring-restart", test_subscribe_ring_restart);
  status = g_test_run ();

  g_clear_pointer (&fx.channel, json_object_unref);
  g_clear_pointer (&fx.relay, tocsin_test_relay_free);
  g_clear_object (&fx.bus);
  tocsin_test_rmdir_recursive (fx.tmpdir);
  g_free (fx.tmpdir);
  return status;
}
