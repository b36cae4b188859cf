/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-ui-calling.c: a calling channel in the real app under Xvfb, against a real relay, with a
 * second subscriber of the channel on /v1/ws standing for a colleague's desktop. A message
 * rings a call window (not a pop-up), through quiet hours; "Acknowledge" is told to the
 * colleague; the colleague's acknowledgement stops the ringing here and says who; "Dismiss"
 * closes the window and tells nobody.
 */
#define G_LOG_DOMAIN "test-ui"

#include "config.h"

#include <adwaita.h>
#include <string.h>

#include "tocsin-application.h"
#include "tocsin-call-window.h"
#include "tocsin-test-notify.h"
#include "tocsin-test-relay.h"
#include "tocsin-test-ui.h"

typedef struct
{
  char                    *tmpdir;
  TocsinTestRelay         *relay;
  JsonObject              *channel;
  TocsinApplication       *app;
  TocsinSubscription      *subscription;
  SoupWebsocketConnection *colleague;
  GPtrArray               *colleague_frames;   /* text frames the colleague got */
} Fixture;

static Fixture fx;

static gint64
ring (const char *server)
{
  g_autofree char *path = g_strdup_printf ("/t/%s?server=%s",
                                           json_object_get_string_member (fx.channel,
                                                                          "trigger_token"),
                                           server);
  guint status = 0;
  g_autoptr(JsonNode) node = tocsin_test_http_json (fx.relay, "GET", path, NULL, NULL, NULL,
                                                    &status);

  g_assert_cmpuint (status, ==, 200);
  return json_object_get_int_member (json_node_get_object (node), "id");
}

/* The call window ringing (or answered, still open) for the message titled @title. */
static TocsinCallWindow *
call_window (const char *title)
{
  g_autoptr(GList) toplevels = gtk_window_list_toplevels ();

  for (GList *l = toplevels; l; l = l->next)
    if (TOCSIN_IS_CALL_WINDOW (l->data) && gtk_widget_get_visible (l->data) &&
        g_strcmp0 (tocsin_record_get_title (tocsin_call_window_get_record (l->data)),
                   title) == 0)
      return l->data;
  return NULL;
}

/* The colleague's frame of @type about message @id, or NULL. */
static JsonObject *
colleague_frame (const char *type,
                 gint64      id)
{
  for (guint i = 0; i < fx.colleague_frames->len; i++)
    {
      g_autoptr(JsonNode) node = json_from_string (fx.colleague_frames->pdata[i], NULL);
      JsonObject *object = node ? json_node_get_object (node) : NULL;

      if (object && g_strcmp0 (json_object_get_string_member_with_default (object, "type", ""),
                               type) == 0 &&
          json_object_get_int_member_with_default (object, "id", 0) == id)
        return json_object_ref (object);
    }
  return NULL;
}

static void
test_acknowledge (void)
{
  g_autoptr(JsonObject) told = NULL;
  TocsinCallWindow *window = NULL;
  gint64 id = ring ("db1");

  TOCSIN_WAIT_UNTIL ((window = call_window ("Alert on db1")) != NULL);
  g_assert_true (tocsin_call_window_get_ringing (window));
  g_assert_nonnull (strstr (gtk_window_get_title (GTK_WINDOW (window)), "Prod alerts"));
  g_assert_nonnull (tocsin_test_ui_find_widget (GTK_WIDGET (window), GTK_TYPE_LABEL,
                                                "CPU at"));
  /* A call, not a pop-up. */
  g_assert_cmpuint (tocsin_test_notify_count (NULL, "Alert on db1", NULL), ==, 0);

  tocsin_test_ui_click (GTK_WIDGET (window), "Acknowledge");
  g_assert_false (tocsin_call_window_get_ringing (window));
  /* The colleague is told who answered. */
  TOCSIN_WAIT_UNTIL ((told = colleague_frame ("acknowledged", id)) != NULL);
  g_assert_cmpstr (json_object_get_string_member (told, "by"), !=, NULL);
  g_assert_true (tocsin_test_ui_find_widget (GTK_WIDGET (window), GTK_TYPE_LABEL,
                                             "other subscribers are told") != NULL);
  gtk_window_close (GTK_WINDOW (window));
  TOCSIN_WAIT_UNTIL (call_window ("Alert on db1") == NULL);
}

static void
test_acknowledged_elsewhere (void)
{
  TocsinCallWindow *window = NULL;
  g_autofree char *ack = NULL;
  gint64 id = ring ("db2");

  TOCSIN_WAIT_UNTIL ((window = call_window ("Alert on db2")) != NULL);
  /* The colleague answers first. */
  ack = g_strdup_printf ("{\"type\":\"ack\",\"channel\":%" G_GINT64_FORMAT ",\"id\":%"
                         G_GINT64_FORMAT ",\"by\":\"Bob <b>\"}",
                         json_object_get_int_member (fx.channel, "id"), id);
  soup_websocket_connection_send_text (fx.colleague, ack);
  TOCSIN_WAIT_UNTIL (!tocsin_call_window_get_ringing (window));
  /* Said as text: the name is not markup. */
  g_assert_nonnull (tocsin_test_ui_find_widget (GTK_WIDGET (window), GTK_TYPE_LABEL,
                                                "Acknowledged by Bob <b>"));
  g_assert_null (tocsin_test_ui_find_widget (GTK_WIDGET (window), GTK_TYPE_BUTTON,
                                             "Acknowledge"));
  gtk_window_close (GTK_WINDOW (window));
}

static void
test_dismiss_through_quiet_hours (void)
{
  g_autoptr(GSettings) settings = g_settings_new ("io.github.tocsin.Tocsin");
  TocsinCallWindow *window = NULL;
  gint64 id;

  /* Quiet all day: ordinary pop-ups keep silent, calls still ring. */
  g_settings_set_string (settings, "quiet-hours-start", "00:00");
  g_settings_set_string (settings, "quiet-hours-end", "23:59");
  g_settings_set_boolean (settings, "quiet-hours-enabled", TRUE);
  id = ring ("db3");
  TOCSIN_WAIT_UNTIL ((window = call_window ("Alert on db3")) != NULL);
  g_assert_true (tocsin_call_window_get_ringing (window));

  tocsin_test_ui_click (GTK_WIDGET (window), "Dismiss");
  TOCSIN_WAIT_UNTIL (call_window ("Alert on db3") == NULL);
  /* Nobody is told of a dismissal: ring once more and see only that one acknowledged. */
  {
    gint64 next = ring ("db4");

    TOCSIN_WAIT_UNTIL ((window = call_window ("Alert on db4")) != NULL);
    tocsin_test_ui_click (GTK_WIDGET (window), "Acknowledge");
    TOCSIN_WAIT_UNTIL (colleague_frame ("acknowledged", next) != NULL);
    g_assert_null (colleague_frame ("acknowledged", id));
    gtk_window_close (GTK_WINDOW (window));
  }
  g_settings_set_boolean (settings, "quiet-hours-enabled", FALSE);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autofree char *subscribe = NULL;
  TocsinClient *client;
  int status;

  fx.tmpdir = tocsin_test_ui_setup (&argc, &argv, "tocsin-ui-calling",
                                    TOCSIN_TEST_UI_NEEDS_NOTIFY_DAEMON);

  fx.relay = tocsin_test_relay_start (NULL, NULL);
  fx.channel = tocsin_test_relay_create_channel (fx.relay, "Prod alerts", "Alert on {{server}}",
                                                 "CPU at 99% on {{server}}", NULL, NULL);

  /* The colleague's desktop: another subscriber of the channel. */
  fx.colleague = tocsin_test_websocket_connect (fx.relay, "/v1/ws", &error);
  g_assert_no_error (error);
  fx.colleague_frames = g_ptr_array_new_with_free_func (g_free);
  tocsin_test_websocket_collect (fx.colleague, fx.colleague_frames);
  subscribe = g_strdup_printf ("{\"type\":\"subscribe\",\"token\":\"%s\"}",
                               json_object_get_string_member (fx.channel, "subscribe_token"));
  soup_websocket_connection_send_text (fx.colleague, subscribe);
  TOCSIN_WAIT_UNTIL (fx.colleague_frames->len >= 1);

  fx.app = tocsin_application_new ();
  g_application_register (G_APPLICATION (fx.app), NULL, &error);
  g_assert_no_error (error);
  client = tocsin_application_get_client (fx.app);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_started (client));

  /* As the subscribe dialog's "Calling" type does. */
  fx.subscription = tocsin_test_ui_subscribe (fx.app, fx.channel, TOCSIN_NOTIFY_TYPE_CALLING);

  g_test_add_func ("/ui/calling/acknowledge", test_acknowledge);
  g_test_add_func ("/ui/calling/acknowledged-elsewhere", test_acknowledged_elsewhere);
  g_test_add_func ("/ui/calling/dismiss-through-quiet-hours", test_dismiss_through_quiet_hours);
  status = g_test_run ();

  tocsin_history_flush_sync (tocsin_application_get_history (fx.app));
  g_clear_object (&fx.subscription);
  g_clear_object (&fx.app);
  g_clear_object (&fx.colleague);
  g_clear_pointer (&fx.colleague_frames, g_ptr_array_unref);
  g_clear_pointer (&fx.channel, json_object_unref);
  g_clear_pointer (&fx.relay, tocsin_test_relay_free);
  tocsin_test_rmdir_recursive (fx.tmpdir);
  g_free (fx.tmpdir);
  return status;
}
