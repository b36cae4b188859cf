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

#include "tocsin-test-app.h"
#include "tocsin-test-notify.h"
#include "tocsin-test-relay.h"

typedef struct
{
  char            *tmpdir;
  TocsinTestRelay *relay;
  JsonObject      *channel;
  GDBusConnection *bus;
} Fixture;

static Fixture fx;

/* The summaries ("title") and bodies of every Notify call the notification server got. */
static GPtrArray *
notify_calls (void)
{
  g_autoptr(GPtrArray) calls = tocsin_test_notify_calls (fx.bus);
  GPtrArray *result = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < calls->len; i++)
    {
      TocsinTestNotifyCall *call = calls->pdata[i];

      g_ptr_array_add (result, g_strdup_printf ("%s|%s", call->summary, call->text));
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

/* `tocsin --export-records=-`: the title and body of each record. */
static GPtrArray *
export_titles (void)
{
  g_autoptr(GPtrArray) records = tocsin_test_app_export (tocsin_test_app_launcher (NULL));
  GPtrArray *titles = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < records->len; i++)
    {
      JsonObject *object = records->pdata[i];

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

  tocsin_test_notify_clear (fx.bus);

  /* 2. The app runs in the background; a script subscribes it without asking. */
  app = tocsin_test_app_start (tocsin_test_app_launcher (NULL), fx.bus);
  subscribe_arg = g_strdup_printf ("--subscribe=%s",
                                   json_object_get_string_member (fx.channel, "subscribe_url"));
  g_assert_cmpint (tocsin_test_app_run (tocsin_test_app_launcher (NULL), &out, subscribe_arg,
                                        NULL), ==, 0);
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
  tocsin_test_app_quit (app, fx.bus);
  ring_get ("n=3&how=GET");
  tocsin_test_notify_clear (fx.bus);
  app_again = tocsin_test_app_start (tocsin_test_app_launcher (NULL), fx.bus);

  /* The missed one arrives once. A fourth, rung after the catch-up, arrives after it on the
   * same socket, so once it is here any duplicate of 1..3 would have been too. */
  TOCSIN_WAIT_UNTIL (n_notify_calls () >= 1);
  ring_get ("n=4&how=GET");
  TOCSIN_WAIT_UNTIL (n_notify_calls () >= 2);
  calls = notify_calls ();
  g_assert_cmpuint (calls->len, ==, 2);
  g_assert_cmpstr (calls->pdata[0], ==, "Ring 3|from GET");
  g_assert_cmpstr (calls->pdata[1], ==, "Ring 4|from GET");

  tocsin_test_app_quit (app_again, fx.bus);

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
