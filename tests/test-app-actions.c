/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-app-actions.c: a message's action buttons (issue 15) in the real app under Xvfb, with
 * dbusmock's notification server and a real HTTP target (tests/tocsin-test-target.h) that the
 * "http" actions are sent to. The pop-up offers the buttons (the Notify call's actions); a
 * press there (ActionInvoked "act-1") sends the request with its method, headers and body; the
 * press log has the attempt; the record's row shows the buttons and the last result, and its
 * button sends again; a "view" button opens its URL in the (fake) browser; a target answering
 * 500 under policy "none" is one attempt and shows "Failed"; policy "retry" follows
 * Retry-After with the same webhook-id; a service behind a private CA is reached once the
 * Preferences' CA file names it.
 *
 * The messages with actions go through their wire form (tocsin_message_to_data(), what the
 * relay sends; tocsin_message_new_from_data(), what the app decodes a frame with) and then the
 * app's own message path (stored in the history, handed to the notifier, as TocsinClient does
 * with a frame): until this branch has the relay's channel actions (issue 15, C2), a real
 * relay cannot send one. A real relay's message, without actions, shows that nothing changes
 * for those.
 */
#define G_LOG_DOMAIN "test-app-actions"

#include "config.h"

#include <adwaita.h>
#include <string.h>

#include "tocsin-application.h"
#include "tocsin-record-details.h"
#include "tocsin-record-row.h"
#include "tocsin-test-notify.h"
#include "tocsin-test-relay.h"
#include "tocsin-test-target.h"
#include "tocsin-test-tls.h"
#include "tocsin-test-ui.h"
#include "tocsin-window.h"

typedef struct
{
  char               *tmpdir;
  char               *launched;   /* the fake browser's list of opened URLs */
  TocsinTestRelay    *relay;
  JsonObject         *channel;
  TocsinTestTarget   *target;
  TocsinApplication  *app;
  TocsinWindow       *window;
  TocsinSubscription *subscription;
  gint64              next_id;
} Fixture;

static Fixture fx;

/* ---- messages ------------------------------------------------------------------------- */

static TocsinMessageAction *
view_action (const char *label,
             const char *url)
{
  TocsinMessageAction *action = g_new0 (TocsinMessageAction, 1);

  action->kind = g_strdup ("view");
  action->label = g_strdup (label);
  action->url = g_strdup (url);
  return action;
}

static TocsinMessageAction *
http_action (const char *label,
             const char *method,
             const char *path,
             const char *body,
             gboolean    retry)
{
  TocsinMessageAction *action = g_new0 (TocsinMessageAction, 1);

  action->kind = g_strdup ("http");
  action->label = g_strdup (label);
  action->method = g_strdup (method);
  action->url = tocsin_test_target_url (fx.target, path);
  action->headers = g_strsplit ("X-Team|web|Content-Type|application/json", "|", -1);
  action->body = g_strdup (body);
  action->retry = retry;
  return action;
}

static TocsinMessage *
new_message (const char *title)
{
  TocsinMessage *message = tocsin_message_new ();

  message->id = ++fx.next_id;
  /* A channel of its own on the relay's URL: the subscribed channel's cursor stays put, and
   * the pop-ups are not folded into a storm summary (more than 3 from one channel). */
  message->channel = 9000 + message->id;
  message->channel_name = g_strdup ("Deploys");
  message->time_ms = g_get_real_time () / 1000;
  g_free (message->title);
  message->title = g_strdup (title);
  g_free (message->body);
  message->body = g_strdup ("Waiting for someone to decide.");
  return message;
}

/* Sends @message through the wire form (the relay's encoder, the app's decoder of a frame),
 * stores it and pops it up, as TocsinClient does with a frame; returns the record. */
static TocsinRecord *
deliver (TocsinMessage *sent)
{
  TocsinHistory *history = tocsin_application_get_history (fx.app);
  TocsinClient *client = tocsin_application_get_client (fx.app);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinMessage) message = NULL;
  g_autofree char *frame = NULL;
  gsize length = 0;
  TocsinStoreResult outcome;
  TocsinRecord *record;

  frame = tocsin_message_to_data (sent, &length);
  message = tocsin_message_new_from_data (frame, length, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (message->actions->len, ==, sent->actions->len);

  tocsin_history_store_message_async (history, tocsin_subscription_get_relay_url (fx.subscription),
                                      message, NULL, tocsin_test_ui_async_done, &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  record = tocsin_history_store_message_finish (history, result, &outcome, &error);
  g_assert_no_error (error);
  g_assert_cmpint (outcome, ==, TOCSIN_STORE_ADDED);
  g_assert_cmpint (tocsin_notifier_notify (tocsin_client_get_notifier (client), record, NULL), ==,
                   TOCSIN_NOTIFY_SHOWN);
  return record;
}

static GPtrArray *
presses (gint64 record_id)
{
  TocsinHistory *history = tocsin_application_get_history (fx.app);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *list;

  tocsin_history_list_presses_async (history, record_id, 0, NULL, tocsin_test_ui_async_done,
                                     &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  list = tocsin_history_list_presses_finish (history, result, &error);
  g_assert_no_error (error);
  return list;
}

static guint
count_presses (gint64 record_id)
{
  g_autoptr(GPtrArray) list = presses (record_id);

  return list->len;
}

/* The Notify call of the pop-up titled @summary (the last one), owned by @calls. */
static TocsinTestNotifyCall *
notify_call (GPtrArray  *calls,
             const char *summary)
{
  for (guint i = calls->len; i > 0; i--)
    {
      TocsinTestNotifyCall *call = calls->pdata[i - 1];

      if (g_strcmp0 (call->summary, summary) == 0)
        return call;
    }
  return NULL;
}

/* Whether the fake browser was given @url. */
static gboolean
launched (const char *url)
{
  g_autofree char *contents = NULL;
  g_autofree char *line = g_strconcat (url, "\n", NULL);

  return g_file_get_contents (fx.launched, &contents, NULL, NULL) &&
         strstr (contents, line) != NULL;
}

static gboolean
row_shows (TocsinRecordRow *row,
           const char      *text)
{
  return row != NULL &&
         tocsin_test_ui_find_mapped_widget (GTK_WIDGET (row), GTK_TYPE_LABEL, text) != NULL;
}

/* ---- tests ---------------------------------------------------------------------------- */

/* The pop-up of a message with three actions offers them as buttons, in order, with no room
 * left for "Mark as Read"; a relay's message without actions keeps "Mark as Read". */
static void
test_popup_buttons (void)
{
  g_autoptr(TocsinMessage) message = new_message ("Deploy 41 waiting");
  g_autoptr(TocsinRecord) record = NULL;
  g_autoptr(GPtrArray) calls = NULL;
  TocsinTestNotifyCall *call;
  g_autofree char *path = NULL;

  g_ptr_array_add (message->actions, view_action ("Open runbook",
                                                  "https://runbook.example/deploy/41"));
  g_ptr_array_add (message->actions, http_action ("Approve", "POST", "/approve",
                                                  "{\"deploy\":41}", FALSE));
  g_ptr_array_add (message->actions, http_action ("Silence 1 h", "PUT", "/silence", NULL, TRUE));
  record = deliver (message);

  calls = tocsin_test_notify_calls (NULL);
  call = notify_call (calls, "Deploy 41 waiting");
  g_assert_nonnull (call);
  g_assert_cmpuint (g_strv_length (call->actions), ==, 8);
  g_assert_cmpstr (call->actions[0], ==, "default");
  g_assert_cmpstr (call->actions[2], ==, "act-0");
  g_assert_cmpstr (call->actions[3], ==, "Open runbook");
  g_assert_cmpstr (call->actions[4], ==, "act-1");
  g_assert_cmpstr (call->actions[5], ==, "Approve");
  g_assert_cmpstr (call->actions[6], ==, "act-2");
  g_assert_cmpstr (call->actions[7], ==, "Silence 1 h");
  g_assert_false (g_strv_contains ((const char * const *) call->actions, "mark-read"));

  /* A message from the real relay has no actions: "Mark as Read" as before. */
  path = g_strdup_printf ("/t/%s?server=plain",
                          json_object_get_string_member (fx.channel, "trigger_token"));
  g_assert_cmpuint (tocsin_test_http (fx.relay, "GET", path, NULL, NULL, 0, NULL, NULL, NULL),
                    ==, 200);
  TOCSIN_WAIT_UNTIL (tocsin_test_notify_count (NULL, "Alert on plain", NULL) == 1);
  g_clear_pointer (&calls, g_ptr_array_unref);
  calls = tocsin_test_notify_calls (NULL);
  call = notify_call (calls, "Alert on plain");
  g_assert_true (g_strv_contains ((const char * const *) call->actions, "mark-read"));
  g_assert_false (g_strv_contains ((const char * const *) call->actions, "act-0"));
}

/* "Approve" pressed on the pop-up, then in the window: each press sends the request as the
 * message gave it, logs the attempt and shows the result on the row. */
static void
test_press_popup_then_row (void)
{
  g_autoptr(TocsinMessage) message = new_message ("Deploy 42 waiting");
  g_autoptr(TocsinRecord) record = NULL;
  g_autoptr(GPtrArray) requests = NULL;
  g_autoptr(GPtrArray) log = NULL;
  TocsinTestTargetRequest *request;
  TocsinActionPress *press;
  TocsinRecordRow *row = NULL;
  GtkWindow *details = NULL;
  g_autofree char *first_id = NULL;
  guint32 popup;

  g_ptr_array_add (message->actions, view_action ("Open runbook",
                                                  "https://runbook.example/deploy/42"));
  g_ptr_array_add (message->actions, http_action ("Approve", "POST", "/approve?token=s3cret",
                                                  "{\"deploy\":42}", FALSE));
  record = deliver (message);
  popup = tocsin_test_notify_id (NULL, "Deploy 42 waiting");
  g_assert_cmpuint (popup, !=, 0);
  tocsin_test_target_clear_requests (fx.target);

  tocsin_test_notify_click (NULL, popup, "act-1");
  tocsin_test_target_wait_requests (fx.target, 1, 30);
  requests = tocsin_test_target_get_requests (fx.target, "/approve");
  g_assert_cmpuint (requests->len, ==, 1);
  request = requests->pdata[0];
  g_assert_cmpstr (request->method, ==, "POST");
  g_assert_cmpstr (request->query, ==, "token=s3cret");
  g_assert_cmpstr (tocsin_test_target_request_header (request, "X-Team"), ==, "web");
  g_assert_cmpstr (tocsin_test_target_request_header (request, "Content-Type"), ==,
                   "application/json");
  g_assert_cmpstr (tocsin_test_target_request_body (request), ==, "{\"deploy\":42}");
  first_id = g_strdup (tocsin_test_target_request_header (request, "webhook-id"));
  g_assert_nonnull (first_id);

  /* The press log has the attempt. */
  TOCSIN_WAIT_UNTIL (count_presses (tocsin_record_get_id (record)) == 1);
  log = presses (tocsin_record_get_id (record));
  press = log->pdata[0];
  g_assert_cmpuint (press->attempt, ==, 1);
  g_assert_cmpuint (press->status, ==, 200);
  g_assert_cmpint (press->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
  g_assert_cmpstr (press->label, ==, "Approve");
  g_assert_cmpstr (press->channel_name, ==, "Deploys");
  g_assert_null (press->error);
  /* The log keeps no secret: the URL without its query. */
  g_assert_true (g_str_has_suffix (press->url, "/approve"));
  g_assert_null (strstr (press->url, "s3cret"));

  /* The row: its buttons, and the result of the last press. */
  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, "Deploy 42 waiting"))
                     != NULL && row_shows (row, "Sent · 200"));
  g_assert_nonnull (tocsin_test_ui_find_mapped_widget (GTK_WIDGET (row), GTK_TYPE_BUTTON,
                                                       "Open runbook"));
  g_assert_true (row_shows (row, "Approve: Sent · 200"));
  tocsin_test_ui_save_screenshot (GTK_WIDGET (fx.window), "app-actions-row.png");

  /* Pressed in the window: sent again, as a new press (a new webhook-id). */
  tocsin_test_ui_click (GTK_WIDGET (row), "Approve");
  TOCSIN_WAIT_UNTIL (tocsin_test_target_count_requests (fx.target, "/approve") == 2);
  g_clear_pointer (&requests, g_ptr_array_unref);
  requests = tocsin_test_target_get_requests (fx.target, "/approve");
  request = requests->pdata[1];
  g_assert_cmpstr (tocsin_test_target_request_body (request), ==, "{\"deploy\":42}");
  g_assert_cmpstr (tocsin_test_target_request_header (request, "webhook-id"), !=, first_id);
  TOCSIN_WAIT_UNTIL (count_presses (tocsin_record_get_id (record)) == 2);

  /* The record's details list its buttons and its log, and send too. */
  gtk_widget_activate_action (GTK_WIDGET (row), "record.details", NULL);
  TOCSIN_WAIT_UNTIL ((details = tocsin_test_ui_find_toplevel (TOCSIN_TYPE_RECORD_DETAILS))
                     != NULL);
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (GTK_WIDGET (details), GTK_TYPE_LABEL,
                                                 "Approve · attempt 1") != NULL);
  /* The URL as the log keeps it: no query. */
  g_assert_nonnull (tocsin_test_ui_find_widget (GTK_WIDGET (details), GTK_TYPE_LABEL,
                                                "POST http://127.0.0.1:"));
  g_assert_null (tocsin_test_ui_find_widget (GTK_WIDGET (details), GTK_TYPE_LABEL, "s3cret"));
  tocsin_test_ui_save_screenshot (GTK_WIDGET (details), "app-actions-details.png");
  tocsin_test_ui_click (GTK_WIDGET (details), "Send");
  TOCSIN_WAIT_UNTIL (tocsin_test_target_count_requests (fx.target, "/approve") == 3);
  TOCSIN_WAIT_UNTIL (count_presses (tocsin_record_get_id (record)) == 3);
  gtk_window_destroy (details);
}

/* A press while the same action is being sent does nothing: one request. */
static void
test_no_double_send (void)
{
  g_autoptr(TocsinMessage) message = new_message ("Deploy 43 waiting");
  g_autoptr(TocsinRecord) record = NULL;
  TocsinActionRunner *runner = tocsin_application_get_action_runner (fx.app);
  TocsinTestTargetAnswer hang = { .status = 200, .body = "ok", .body_length = -1, .hang_s = 1 };

  g_ptr_array_add (message->actions, http_action ("Approve", "POST", "/slow", "{}", FALSE));
  record = deliver (message);
  tocsin_test_target_clear_requests (fx.target);
  /* The target takes a second to answer: the second press finds the first in flight. */
  tocsin_test_target_push_answer (fx.target, "/slow", &hang);

  g_assert_true (tocsin_action_runner_press (runner, record, 0));
  g_assert_true (tocsin_action_runner_is_busy (runner, tocsin_record_get_id (record), 0));
  g_assert_false (tocsin_action_runner_press (runner, record, 0));
  TOCSIN_WAIT_UNTIL (count_presses (tocsin_record_get_id (record)) == 1);
  g_assert_false (tocsin_action_runner_is_busy (runner, tocsin_record_get_id (record), 0));
  g_assert_cmpuint (tocsin_test_target_count_requests (fx.target, "/slow"), ==, 1);
}

/* A "view" button opens its URL in the browser, as a record's link does, and logs it. */
static void
test_view_opens_url (void)
{
  g_autoptr(TocsinMessage) message = new_message ("Deploy 44 waiting");
  g_autoptr(TocsinRecord) record = NULL;
  TocsinRecordRow *row = NULL;

  g_ptr_array_add (message->actions, view_action ("Open runbook",
                                                  "https://runbook.example/deploy/44"));
  record = deliver (message);
  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, "Deploy 44 waiting"))
                     != NULL);
  tocsin_test_ui_click (GTK_WIDGET (row), "Open runbook");
  TOCSIN_WAIT_UNTIL (launched ("https://runbook.example/deploy/44"));
  TOCSIN_WAIT_UNTIL (row_shows (row, "Open runbook: Opened"));
  g_assert_cmpuint (count_presses (tocsin_record_get_id (record)), ==, 1);
}

/* Policy none and a target answering 500: one attempt, "Failed" on the row and in a toast. */
static void
test_failure_policy_none (void)
{
  g_autoptr(TocsinMessage) message = new_message ("Deploy 45 waiting");
  g_autoptr(TocsinRecord) record = NULL;
  g_autoptr(GPtrArray) log = NULL;
  TocsinActionPress *press;
  TocsinRecordRow *row = NULL;
  TocsinTestTargetAnswer answer = { .status = 500, .body = "database on fire",
                                   .body_length = -1 };

  tocsin_test_target_always (fx.target, "/restart", &answer);
  g_ptr_array_add (message->actions, http_action ("Restart", "POST", "/restart", "{}", FALSE));
  record = deliver (message);
  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, "Deploy 45 waiting"))
                     != NULL);
  tocsin_test_target_clear_requests (fx.target);
  tocsin_test_ui_click (GTK_WIDGET (row), "Restart");

  TOCSIN_WAIT_UNTIL (row_shows (row, "Restart: Failed"));
  log = presses (tocsin_record_get_id (record));
  g_assert_cmpuint (log->len, ==, 1);
  press = log->pdata[0];
  g_assert_cmpuint (press->status, ==, 500);
  g_assert_cmpint (press->outcome, ==, TOCSIN_ATTEMPT_FINAL_ERROR);
  g_assert_nonnull (press->error);
  g_assert_cmpstr (press->answer_start, ==, "database on fire");
  /* Said in words in the window too. */
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (GTK_WIDGET (fx.window), GTK_TYPE_LABEL,
                                                 "“Restart” failed") != NULL);
  /* No second attempt under policy none. */
  g_assert_cmpuint (tocsin_test_target_count_requests (fx.target, "/restart"), ==, 1);

  /* "Retry now" on the Deliveries page presses it again by the log's record id. */
  tocsin_test_target_always (fx.target, "/restart", NULL);
  tocsin_action_runner_press_by_id (tocsin_application_get_action_runner (fx.app),
                                    press->record_id, press->action_index);
  TOCSIN_WAIT_UNTIL (row_shows (row, "Restart: Sent · 200"));
  g_assert_cmpuint (tocsin_test_target_count_requests (fx.target, "/restart"), ==, 2);
  g_assert_cmpuint (count_presses (tocsin_record_get_id (record)), ==, 2);
}

/* Policy retry: a 503 with Retry-After is retried with the same webhook-id, no sooner. */
static void
test_retry_policy (void)
{
  g_autoptr(TocsinMessage) message = new_message ("Deploy 46 waiting");
  g_autoptr(TocsinRecord) record = NULL;
  g_autoptr(GPtrArray) requests = NULL;
  g_autoptr(GPtrArray) log = NULL;
  TocsinRecordRow *row = NULL;
  TocsinTestTargetRequest *first, *second;

  g_ptr_array_add (message->actions, http_action ("Silence 1 h", "PUT", "/silence", "{}", TRUE));
  record = deliver (message);
  tocsin_test_target_clear_requests (fx.target);
  tocsin_test_target_push (fx.target, "/silence", 503, "busy", "Retry-After", "1", NULL);
  tocsin_test_target_push (fx.target, "/silence", 200, "silenced", NULL);
  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, "Deploy 46 waiting"))
                     != NULL);
  tocsin_test_ui_click (GTK_WIDGET (row), "Silence 1 h");

  TOCSIN_WAIT_UNTIL (count_presses (tocsin_record_get_id (record)) == 2);
  TOCSIN_WAIT_UNTIL (row_shows (row, "Silence 1 h: Sent · 200"));
  requests = tocsin_test_target_get_requests (fx.target, "/silence");
  g_assert_cmpuint (requests->len, ==, 2);
  first = requests->pdata[0];
  second = requests->pdata[1];
  g_assert_cmpstr (first->method, ==, "PUT");
  g_assert_cmpstr (tocsin_test_target_request_header (first, "webhook-id"), ==,
                   tocsin_test_target_request_header (second, "webhook-id"));
  g_assert_cmpint (second->arrived_ms - first->arrived_ms, >=, 1000 - 50);
  log = presses (tocsin_record_get_id (record));
  /* Newest first. */
  g_assert_cmpuint (((TocsinActionPress *) log->pdata[0])->attempt, ==, 2);
  g_assert_cmpint (((TocsinActionPress *) log->pdata[0])->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
  g_assert_cmpuint (((TocsinActionPress *) log->pdata[1])->attempt, ==, 1);
  g_assert_cmpint (((TocsinActionPress *) log->pdata[1])->outcome, ==, TOCSIN_ATTEMPT_RETRY);
  g_assert_cmpuint (((TocsinActionPress *) log->pdata[1])->status, ==, 503);
}

/* An "http" action to a service behind a private CA: refused with a sentence while only the
 * system's CAs are trusted, sent once the Preferences' CA file names that CA (as the
 * subscriptions and the channel editor trust it). */
static void
test_private_ca (void)
{
  g_autoptr(GSettings) settings = g_settings_new (APP_ID);
  g_autoptr(TocsinTestPki) pki = tocsin_test_pki_new ();
  g_autoptr(TocsinTestTarget) tls = tocsin_test_target_new_tls (pki->cert_file, pki->key_file);
  g_autoptr(TocsinMessage) message = new_message ("Deploy 47 waiting");
  g_autoptr(TocsinRecord) record = NULL;
  g_autoptr(GPtrArray) log = NULL;
  TocsinClient *client = tocsin_application_get_client (fx.app);
  TocsinMessageAction *action = http_action ("Approve", "POST", "/approve", "{}", FALSE);
  TocsinRecordRow *row = NULL;

  g_free (action->url);
  action->url = tocsin_test_target_url (tls, "/approve");
  g_ptr_array_add (message->actions, action);
  record = deliver (message);
  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, "Deploy 47 waiting"))
                     != NULL);

  tocsin_test_ui_click (GTK_WIDGET (row), "Approve");
  TOCSIN_WAIT_UNTIL (row_shows (row, "Approve: Failed"));
  log = presses (tocsin_record_get_id (record));
  g_assert_cmpuint (log->len, ==, 1);
  g_assert_cmpuint (((TocsinActionPress *) log->pdata[0])->status, ==, 0);
  g_assert_nonnull (strstr (((TocsinActionPress *) log->pdata[0])->error, "TLS"));
  g_assert_cmpuint (tocsin_test_target_count_requests (tls, "/approve"), ==, 0);

  g_settings_set_string (settings, "ca-file", pki->ca_file);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_tls_database (client) != NULL);
  tocsin_test_ui_click (GTK_WIDGET (row), "Approve");
  TOCSIN_WAIT_UNTIL (row_shows (row, "Approve: Sent · 200"));
  g_assert_cmpuint (tocsin_test_target_count_requests (tls, "/approve"), ==, 1);
  g_settings_reset (settings, "ca-file");
  TOCSIN_WAIT_UNTIL (tocsin_client_get_tls_database (client) == NULL);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  TocsinClient *client;
  int status;

  fx.tmpdir = tocsin_test_ui_setup (&argc, &argv, "tocsin-app-actions",
                                    TOCSIN_TEST_UI_NEEDS_NOTIFY_DAEMON);
  fx.launched = tocsin_test_ui_install_browser (fx.tmpdir);
  fx.target = tocsin_test_target_new ();

  fx.relay = tocsin_test_relay_start (NULL, NULL);
  fx.channel = tocsin_test_relay_create_channel (fx.relay, "Prod alerts", "Alert on {{server}}",
                                                 "CPU high on {{server}}", NULL, NULL);

  fx.app = tocsin_application_new ();
  g_application_register (G_APPLICATION (fx.app), NULL, &error);
  g_assert_no_error (error);
  client = tocsin_application_get_client (fx.app);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_started (client));
  fx.window = TOCSIN_WINDOW (tocsin_application_present_window (fx.app));
  fx.subscription = tocsin_test_ui_subscribe (fx.app, fx.channel, TOCSIN_NOTIFY_TYPE_NORMAL);

  g_test_add_func ("/app/actions/popup-buttons", test_popup_buttons);
  g_test_add_func ("/app/actions/press-popup-then-row", test_press_popup_then_row);
  g_test_add_func ("/app/actions/no-double-send", test_no_double_send);
  g_test_add_func ("/app/actions/view-opens-url", test_view_opens_url);
  g_test_add_func ("/app/actions/failure-policy-none", test_failure_policy_none);
  g_test_add_func ("/app/actions/retry-policy", test_retry_policy);
  g_test_add_func ("/app/actions/private-ca", test_private_ca);
  status = g_test_run ();

  if (fx.window)
    gtk_window_destroy (GTK_WINDOW (fx.window));
  tocsin_history_flush_sync (tocsin_application_get_history (fx.app));
  g_clear_object (&fx.subscription);
  g_clear_object (&fx.app);
  g_clear_pointer (&fx.target, tocsin_test_target_free);
  g_clear_pointer (&fx.channel, json_object_unref);
  g_clear_pointer (&fx.relay, tocsin_test_relay_free);
  tocsin_test_rmdir_recursive (fx.tmpdir);
  g_free (fx.launched);
  g_free (fx.tmpdir);
  return status;
}
