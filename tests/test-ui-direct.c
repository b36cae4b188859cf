/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-ui-direct.c: the Direct key as a person uses it, in the real app under Xvfb (accessibility
 * on) against a real relay, with dbusmock's notification daemon: create one in Preferences, run
 * the curl line Preferences shows, see the pop-up (time-sensitive: critical urgency) and the
 * record under "Direct"; rotate it after the confirmation, and the old URL is refused.
 */
#define G_LOG_DOMAIN "test-ui"

#include "config.h"

#include <adwaita.h>

#include "tocsin-application.h"
#include "tocsin-direct-key-group.h"
#include "tocsin-preferences-window.h"
#include "tocsin-record-row.h"
#include "tocsin-test-notify.h"
#include "tocsin-test-relay.h"
#include "tocsin-test-ui.h"
#include "tocsin-window.h"

typedef struct
{
  char              *tmpdir;
  TocsinTestRelay   *relay;
  TocsinApplication *app;
  TocsinWindow      *window;
} Fixture;

static Fixture fx;

/* The record of the row on screen titled @title, or NULL. */
static TocsinRecord *
record_on_screen (const char *title)
{
  TocsinRecordRow *row = tocsin_test_ui_row_with_title (fx.window, title);

  return row ? tocsin_record_row_get_record (row) : NULL;
}

/* ---- the notification daemon ----------------------------------------------------------- */

/* How many pop-ups titled @summary the daemon got; *urgency: the last one's urgency hint. */
static guint
popups (const char *summary,
        guchar     *urgency)
{
  g_autoptr(GPtrArray) calls = tocsin_test_notify_calls (NULL);
  guint n = 0;

  for (guint i = 0; i < calls->len; i++)
    {
      TocsinTestNotifyCall *call = calls->pdata[i];

      if (g_strcmp0 (call->summary, summary) != 0)
        continue;
      n++;
      if (urgency && !g_variant_lookup (call->hints, "urgency", "y", urgency))
        *urgency = 255;
    }
  return n;
}

/* ---- the command line the user copies ----------------------------------------------- */

/* Runs @command_line as a shell would, as the user pasting it; returns curl's output. */
static char *
run_shell (const char *command_line)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  int status = 0;
  const char *argv[] = { "/bin/sh", "-c", command_line, NULL };

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, &status,
                &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  return g_steal_pointer (&out);
}

static guint
http_get (const char *url)
{
  return tocsin_test_http (fx.relay, "GET", url, NULL, NULL, 0, NULL, NULL, NULL);
}

static TocsinSubscription *
direct_subscription (void)
{
  GListModel *subs = tocsin_client_get_subscriptions (tocsin_application_get_client (fx.app));

  for (guint i = 0; i < g_list_model_get_n_items (subs); i++)
    {
      g_autoptr(TocsinSubscription) sub = g_list_model_get_item (subs, i);

      if (g_strcmp0 (tocsin_subscription_get_name (sub), "Direct") == 0)
        return sub;   /* the client keeps its own reference */
    }
  return NULL;
}

/* ---- the test ------------------------------------------------------------------------ */

static void
test_create_ring_rotate (void)
{
  g_autofree char *direct_prefix = g_strconcat (fx.relay->base_url, "/d/", NULL);
  g_autofree char *old_url = NULL, *new_url = NULL, *curl_line = NULL, *answer = NULL;
  g_autofree char *subscribe_prefix = NULL;
  TocsinSubscription *subscription = NULL;
  TocsinRecord *record = NULL;
  AdwMessageDialog *dialog = NULL;
  GtkWidget *prefs, *group, *label;
  guchar urgency = 0;

  prefs = tocsin_preferences_window_new (GTK_WINDOW (fx.window));
  gtk_window_present (GTK_WINDOW (prefs));
  group = tocsin_test_ui_find_widget (prefs, TOCSIN_TYPE_DIRECT_KEY_GROUP, NULL);
  g_assert_nonnull (group);

  /* No key yet: name the relay, create one. */
  gtk_editable_set_text (GTK_EDITABLE (tocsin_test_ui_find_widget (group, ADW_TYPE_ENTRY_ROW,
                                                                   NULL)),
                         fx.relay->base_url);
  gtk_widget_activate (tocsin_test_ui_find_widget (group, GTK_TYPE_BUTTON, "Direct Key"));
  TOCSIN_WAIT_UNTIL ((label = tocsin_test_ui_find_label_with_prefix (prefs, direct_prefix,
                                                                     NULL)) != NULL);
  old_url = g_strdup (gtk_label_get_text (GTK_LABEL (label)));
  TOCSIN_WAIT_UNTIL ((label = tocsin_test_ui_find_label_with_prefix (prefs, "curl ",
                                                                     NULL)) != NULL);
  curl_line = g_strdup (gtk_label_get_text (GTK_LABEL (label)));
  g_assert_nonnull (strstr (curl_line, old_url));
  subscribe_prefix = g_strconcat ("Open this link in Tocsin on each of your other desktops: ",
                                  fx.relay->base_url, "/s/", NULL);
  g_assert_nonnull (tocsin_test_ui_find_label_with_prefix (prefs, subscribe_prefix, NULL));
  tocsin_test_ui_save_screenshot (group, "ui-direct-key.png");

  /* This desktop subscribed itself to its inbox, time-sensitive, and is live. */
  TOCSIN_WAIT_UNTIL ((subscription = direct_subscription ()) != NULL
                     && tocsin_subscription_get_cursor (subscription) != TOCSIN_CURSOR_NONE);
  g_assert_cmpint (tocsin_subscription_get_notify_type (subscription), ==,
                   TOCSIN_NOTIFY_TYPE_TIME_SENSITIVE);

  /* The curl line, pasted into a shell: Echobell's answer, then the pop-up, critical. */
  answer = run_shell (curl_line);
  g_assert_cmpstr (answer, ==, "{\"success\":true,\"message\":\"Notification sent\"}");
  TOCSIN_WAIT_UNTIL (popups ("Hello", &urgency) == 1);
  g_assert_cmpuint (urgency, ==, 2);

  /* The record is in the window, under "Direct". */
  gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.show-all", NULL);
  TOCSIN_WAIT_UNTIL ((record = record_on_screen ("Hello")) != NULL);
  g_assert_cmpstr (tocsin_record_get_channel_name (record), ==, "Direct");
  g_assert_cmpstr (tocsin_record_get_body (record), ==, "World");

  /* Rotate, confirmed: a new URL on screen, the old one refused. */
  gtk_widget_activate (tocsin_test_ui_find_widget (group, GTK_TYPE_BUTTON, "otate"));
  TOCSIN_WAIT_UNTIL ((dialog = (AdwMessageDialog *) tocsin_test_ui_find_toplevel
                                                      (ADW_TYPE_MESSAGE_DIALOG))
                     != NULL);
  g_assert_nonnull (strstr (adw_message_dialog_get_body (dialog), "stops working"));
  adw_message_dialog_response (dialog, "confirm");
  if (tocsin_test_ui_find_toplevel (ADW_TYPE_MESSAGE_DIALOG) == GTK_WINDOW (dialog))
    gtk_window_destroy (GTK_WINDOW (dialog));
  TOCSIN_WAIT_UNTIL ((label = tocsin_test_ui_find_label_with_prefix (prefs, direct_prefix,
                                                                     old_url)) != NULL);
  new_url = g_strdup (gtk_label_get_text (GTK_LABEL (label)));
  g_assert_cmpuint (http_get (old_url), ==, 404);
  {
    g_autofree char *ring = g_strconcat (new_url, "?title=Rotated&notificationType=active",
                                         NULL);

    g_assert_cmpuint (http_get (ring), ==, 200);
    TOCSIN_WAIT_UNTIL (popups ("Rotated", NULL) == 1);
  }
  /* The app keeps the new URL for the next time Preferences opens. */
  TOCSIN_WAIT_UNTIL (tocsin_application_find_direct_inbox (fx.app) != NULL
                     && g_strcmp0 (tocsin_application_find_direct_inbox (fx.app)->webhook_url,
                                   new_url) == 0);
  gtk_window_destroy (GTK_WINDOW (prefs));

  prefs = tocsin_preferences_window_new (GTK_WINDOW (fx.window));
  gtk_window_present (GTK_WINDOW (prefs));
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_label_with_prefix (prefs, new_url, NULL) != NULL);
  gtk_window_destroy (GTK_WINDOW (prefs));
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  int status;

  fx.tmpdir = tocsin_test_ui_setup (&argc, &argv, "tocsin-ui-direct",
                                    TOCSIN_TEST_UI_NEEDS_NOTIFY_DAEMON);

  fx.relay = tocsin_test_relay_start (NULL, NULL);
  fx.app = tocsin_application_new ();
  g_application_register (G_APPLICATION (fx.app), NULL, &error);
  g_assert_no_error (error);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_started (tocsin_application_get_client (fx.app)));
  fx.window = TOCSIN_WINDOW (tocsin_application_present_window (fx.app));

  g_test_add_func ("/ui/preferences/direct-key", test_create_ring_rotate);
  status = g_test_run ();

  if (fx.window)
    gtk_window_destroy (GTK_WINDOW (fx.window));
  tocsin_history_flush_sync (tocsin_application_get_history (fx.app));
  g_clear_object (&fx.app);
  g_clear_pointer (&fx.relay, tocsin_test_relay_free);
  tocsin_test_rmdir_recursive (fx.tmpdir);
  g_free (fx.tmpdir);
  return status;
}
