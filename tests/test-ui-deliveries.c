/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-ui-deliveries.c: issue 15 in the app's windows (a real window under Xvfb, accessibility
 * on). The channel editor's Forwards section against a real relay: a template error in a
 * forward's URL or header shows under that field and Save is refused, then a valid forward is
 * saved and the relay's owner view has it. The Deliveries page against a small fake owner
 * endpoint (a SoupServer answering the docs/api.md JSON): the attempts newest first with their
 * status, time and answer, "Retry Now" only on failed and held deliveries (it POSTs the retry
 * URL with the owner key, then the page loads again), the empty state and the error state.
 * "Your Action Presses" (from the main menu) over the history's press log: a button pressed
 * against a target that answers 500 shows its attempt with Retry Now, which presses it again
 * (the target then answers 200) and the page shows the new attempt.
 */
#define G_LOG_DOMAIN "test-ui"

#include "config.h"

#include <string.h>
#include <adwaita.h>
#include <libsoup/soup.h>

#include "tocsin-application.h"
#include "tocsin-channel-editor.h"
#include "tocsin-action-runner.h"
#include "tocsin-deliveries-window.h"
#include "tocsin-request-editor.h"
#include "tocsin-test-relay.h"
#include "tocsin-test-ui.h"
#include "tocsin-window.h"

static TocsinTestRelay   *relay;
static TocsinApplication *app;
static TocsinWindow      *window;

static void
async_done (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static TocsinOwnedChannel *
create_channel (const char *name)
{
  TocsinOwner *owner = tocsin_application_get_owner (app);
  g_autoptr(JsonObject) fields = json_object_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  TocsinOwnedChannel *channel;

  json_object_set_string_member (fields, "name", name);
  tocsin_owner_create_channel_async (owner, relay->base_url, NULL, fields, NULL, async_done,
                                     &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  channel = tocsin_owner_create_channel_finish (owner, result, NULL, &error);
  g_assert_no_error (error);
  return channel;
}

static JsonObject *
owner_view (const TocsinOwnedChannel *channel)
{
  TocsinOwner *owner = tocsin_application_get_owner (app);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  JsonObject *answer;

  tocsin_owner_get_channel_async (owner, channel, NULL, async_done, &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  answer = tocsin_owner_request_finish (owner, result, &error);
  g_assert_no_error (error);
  return answer;
}

static GtkWidget *
open_editor (const TocsinOwnedChannel *channel)
{
  GtkWidget *editor = tocsin_channel_editor_new_for_channel (GTK_WINDOW (window), app, channel);
  GtkWidget *save;

  gtk_window_set_default_size (GTK_WINDOW (editor), 620, 1400);
  gtk_window_present (GTK_WINDOW (editor));
  save = tocsin_test_ui_find_widget (editor, GTK_TYPE_BUTTON, "_Save");
  g_assert_nonnull (save);
  /* Loaded from the relay once Save can be pressed. */
  TOCSIN_WAIT_UNTIL (gtk_widget_get_sensitive (save));
  return editor;
}

static void
test_editor_forward (void)
{
  g_autoptr(TocsinOwnedChannel) channel = create_channel ("Alerts");
  g_autoptr(JsonObject) view = NULL;
  TocsinRequestEditor *forward;
  GtkWidget *editor, *save;
  const char *error;
  JsonNode *forwards;

  editor = open_editor (channel);
  save = tocsin_test_ui_find_widget (editor, GTK_TYPE_BUTTON, "_Save");
  g_assert_nonnull (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL, "No forwards"));

  /* "Add Forward": a new forward, and its template errors under its fields. */
  tocsin_test_ui_click (editor, "Add _Forward");
  forward = TOCSIN_REQUEST_EDITOR (tocsin_test_ui_find_widget (editor, TOCSIN_TYPE_REQUEST_EDITOR,
                                                               NULL));
  g_assert_nonnull (forward);
  g_assert_false (tocsin_request_editor_is_action (forward));
  tocsin_request_editor_set_field (forward, "name", "Open a ticket");
  tocsin_request_editor_set_field (forward, "url",
                                   "https://tickets.example/new?server={{server_name");
  TOCSIN_WAIT_UNTIL ((error = tocsin_request_editor_get_error (forward, "url")) != NULL);
  g_test_message ("url error: %s", error);
  g_assert_nonnull (strstr (error, "forwards[0].url"));
  g_assert_nonnull (strstr (error, "column"));
  g_assert_null (tocsin_request_editor_get_error (forward, "headers"));
  g_assert_false (gtk_widget_get_sensitive (save));
  tocsin_test_ui_save_screenshot (GTK_WIDGET (forward), "ui-editor-forward-error.png");

  /* Save refused even when asked for by its shortcut's action. */
  g_assert_true (gtk_widget_activate_action (editor, "editor.save", NULL));
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL,
                                                 "Fix the errors in red first") != NULL);

  /* The URL fixed, a header with an error: the error moves to the headers. */
  tocsin_request_editor_set_field (forward, "url",
                                   "https://tickets.example/new?server={{server_name}}");
  tocsin_request_editor_set_field (forward, "headers", "X-Source: tocsin\n"
                                                       "Authorization: Bearer {{token");
  TOCSIN_WAIT_UNTIL ((error = tocsin_request_editor_get_error (forward, "headers")) != NULL);
  g_test_message ("headers error: %s", error);
  g_assert_nonnull (strstr (error, "headers"));
  g_assert_null (tocsin_request_editor_get_error (forward, "url"));
  g_assert_false (gtk_widget_get_sensitive (save));

  /* Parameters that are not JSON say so, under the parameters. */
  tocsin_request_editor_set_field (forward, "headers", "Authorization: Bearer {{token}}");
  tocsin_request_editor_set_field (forward, "params", "[{\"name\": ");
  TOCSIN_WAIT_UNTIL (tocsin_request_editor_get_error (forward, "params") != NULL);
  g_assert_null (tocsin_request_editor_get_error (forward, "headers"));
  g_assert_false (gtk_widget_get_sensitive (save));

  /* Valid: Save is back, and the relay has the forward. */
  tocsin_request_editor_set_field (forward, "params",
                                   "[{\"name\": \"status\", \"type\": \"text\", "
                                   "\"value\": \"{{status}}\"}]");
  tocsin_request_editor_set_field (forward, "policy", "none");
  TOCSIN_WAIT_UNTIL (gtk_widget_get_sensitive (save));
  g_assert_null (tocsin_request_editor_get_error (forward, "params"));
  g_assert_null (tocsin_request_editor_get_error (forward, "other"));
  g_assert_true (gtk_widget_activate_action (editor, "editor.save", NULL));
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL, "Saved") != NULL);
  gtk_window_destroy (GTK_WINDOW (editor));

  view = owner_view (channel);
  forwards = json_object_get_member (view, "forwards");
  g_assert_nonnull (forwards);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (forwards));
  g_assert_cmpuint (json_array_get_length (json_node_get_array (forwards)), ==, 1);
  {
    JsonObject *saved = json_array_get_object_element (json_node_get_array (forwards), 0);

    g_assert_cmpstr (json_object_get_string_member (saved, "name"), ==, "Open a ticket");
    g_assert_cmpstr (json_object_get_string_member (saved, "url"), ==,
                     "https://tickets.example/new?server={{server_name}}");
    g_assert_cmpstr (json_object_get_string_member (saved, "policy"), ==, "none");
  }

  /* Opened again, the editor shows it. */
  editor = open_editor (channel);
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (editor, ADW_TYPE_PREFERENCES_GROUP,
                                                 "Open a ticket") != NULL);
  gtk_window_destroy (GTK_WINDOW (editor));
}

static void
test_editor_action_limit (void)
{
  g_autoptr(TocsinOwnedChannel) channel = create_channel ("Buttons");
  GtkWidget *editor = open_editor (channel);
  g_autoptr(JsonObject) view = NULL;
  TocsinRequestEditor *action;
  JsonNode *actions;
  GtkWidget *save;

  /* An action: a kind instead of an event; "Open a Link" needs only a name and a URL. */
  tocsin_test_ui_click (editor, "Add _Action");
  action = TOCSIN_REQUEST_EDITOR (tocsin_test_ui_find_widget (editor, TOCSIN_TYPE_REQUEST_EDITOR,
                                                              NULL));
  g_assert_true (tocsin_request_editor_is_action (action));
  tocsin_request_editor_set_field (action, "kind", "view");
  tocsin_request_editor_set_field (action, "url", "https://status.example/{{record.id}}");
  /* No name: the request model's sentence, shown with the action. */
  TOCSIN_WAIT_UNTIL (tocsin_request_editor_get_error (action, "other") != NULL);
  g_assert_nonnull (strstr (tocsin_request_editor_get_error (action, "other"), "actions[0]"));
  tocsin_request_editor_set_field (action, "name", "Status page");
  TOCSIN_WAIT_UNTIL (tocsin_request_editor_get_error (action, "other") == NULL);

  /* Three at most: the Add button goes off at the third. */
  tocsin_test_ui_click (editor, "Add _Action");
  tocsin_test_ui_click (editor, "Add _Action");
  g_assert_false (gtk_widget_is_sensitive (tocsin_test_ui_find_widget (editor, GTK_TYPE_BUTTON,
                                                                       "Add _Action")));

  /* The two new ones removed (their bin buttons), the link saved: the relay has it. */
  for (guint i = 0; i < 2; i++)
    {
      GtkWidget *group = tocsin_test_ui_find_widget (editor, ADW_TYPE_PREFERENCES_GROUP,
                                                     "New Action");
      GtkWidget *remove;

      g_assert_nonnull (group);
      remove = adw_preferences_group_get_header_suffix (ADW_PREFERENCES_GROUP (group));
      g_signal_emit_by_name (remove, "clicked");
    }
  g_assert_true (gtk_widget_is_sensitive (tocsin_test_ui_find_widget (editor, GTK_TYPE_BUTTON,
                                                                      "Add _Action")));
  save = tocsin_test_ui_find_widget (editor, GTK_TYPE_BUTTON, "_Save");
  TOCSIN_WAIT_UNTIL (gtk_widget_get_sensitive (save));
  g_assert_true (gtk_widget_activate_action (editor, "editor.save", NULL));
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL, "Saved") != NULL);
  gtk_window_destroy (GTK_WINDOW (editor));

  view = owner_view (channel);
  actions = json_object_get_member (view, "actions");
  g_assert_nonnull (actions);
  g_assert_cmpuint (json_array_get_length (json_node_get_array (actions)), ==, 1);
  {
    JsonObject *saved = json_array_get_object_element (json_node_get_array (actions), 0);

    g_assert_cmpstr (json_object_get_string_member (saved, "name"), ==, "Status page");
    g_assert_cmpstr (json_object_get_string_member (saved, "kind"), ==, "view");
    g_assert_cmpstr (json_object_get_string_member (saved, "url"), ==,
                     "https://status.example/{{record.id}}");
  }
}

/* ---- the Deliveries page against a fake owner endpoint ------------------------------------ */

typedef struct
{
  SoupServer *server;
  char       *base_url;
  guint       gets;          /* GETs of channel 1's deliveries */
  GPtrArray  *retries;       /* the paths POSTed, with their Authorization */
  guint       hooks;         /* requests to /hook (an action's target): 500 first, then 200 */
  guint       downs;         /* requests to /down (a forward's target): always 503 */
  char       *patched;       /* the last PATCH body of channel 4 */
} FakeRelay;

static FakeRelay fake;

#define DELIVERIES_JSON \
  "{\"deliveries\": [" \
  "{\"id\": 11, \"webhook_id\": \"msg_11\", \"event\": \"message\", \"forward\": \"Ticket\"," \
  " \"message_id\": 5, \"state\": \"delivered\", \"attempts\": 1, \"next_attempt_at\": null," \
  " \"created_at\": \"2026-12-06T10:00:00.000Z\"}," \
  "{\"id\": 12, \"webhook_id\": \"msg_12\", \"event\": \"message\", \"forward\": \"Pager\"," \
  " \"message_id\": 6, \"state\": \"failed\", \"attempts\": 2, \"next_attempt_at\": null," \
  " \"created_at\": \"2026-12-06T10:01:00.000Z\"}," \
  "{\"id\": 13, \"webhook_id\": \"msg_13\", \"event\": \"acknowledge\", \"forward\": \"Silence\"," \
  " \"message_id\": 7, \"user\": \"alice\", \"state\": \"held\", \"attempts\": 0," \
  " \"next_attempt_at\": \"2026-12-06T10:08:00.000Z\"," \
  " \"created_at\": \"2026-12-06T10:03:00.000Z\"}]," \
  "\"attempts\": [" \
  "{\"id\": 103, \"delivery_id\": 12, \"forward\": \"Pager\"," \
  " \"event\": \"message\", \"attempt\": 2," \
  " \"at\": \"2026-12-06T10:02:00.000Z\", \"url\": \"https://pager.example/api\"," \
  " \"status\": 503, \"error\": null, \"duration_ms\": 812, \"answer_start\": \"upstream down\"," \
  " \"outcome\": \"error\", \"next_retry_at\": null}," \
  "{\"id\": 102, \"delivery_id\": 12, \"forward\": \"Pager\"," \
  " \"event\": \"message\", \"attempt\": 1," \
  " \"at\": \"2026-12-06T10:01:00.000Z\", \"url\": \"https://pager.example/api\"," \
  " \"status\": 500, \"error\": null, \"duration_ms\": 40, \"answer_start\": \"<html>oops\"," \
  " \"outcome\": \"retry\", \"next_retry_at\": \"2026-12-06T10:02:00.000Z\"}," \
  "{\"id\": 101, \"delivery_id\": 11, \"forward\": \"Ticket\"," \
  " \"event\": \"message\", \"attempt\": 1," \
  " \"at\": \"2026-12-06T10:00:00.000Z\", \"url\": \"https://tickets.example/new\"," \
  " \"status\": 201, \"error\": null, \"duration_ms\": 35," \
  " \"answer_start\": \"{\\\"ok\\\":true}\"," \
  " \"outcome\": \"success\", \"next_retry_at\": null}]}"

/* An owned channel as the owner view shows it with forwards (C1) and actions (C2). */
#define CHANNEL_4_JSON \
  "{\"id\": 4, \"name\": \"Fake 4\", \"title\": \"{{title}}\", \"body\": \"\"," \
  " \"forwards\": [{\"name\": \"Local\", \"kind\": \"http\", \"event\": \"message\"," \
  " \"method\": \"PUT\", \"url\": \"http://10.0.0.1/hook\", \"format\": \"json\"," \
  " \"headers\": {\"X-Team\": \"ops\"}," \
  " \"params\": [{\"name\": \"t\", \"type\": \"text\", \"value\": \"{{title}}\"}]," \
  " \"policy\": \"retry\"}]," \
  " \"actions\": [{\"name\": \"Docs\", \"kind\": \"view\", \"event\": \"message\"," \
  " \"url\": \"https://docs.example/{{title}}\"}]}"

static void
fake_handler (SoupServer        *server,
              SoupServerMessage *msg,
              const char        *path,
              GHashTable        *query,
              gpointer           user_data)
{
  const char *method = soup_server_message_get_method (msg);
  const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                   "Authorization");
  const char *body = NULL;
  guint status = 200;

  if (g_str_equal (path, "/down"))
    {
      fake.downs++;
      status = 503;
      body = "{\"error\": \"down for maintenance\"}";
    }
  else if (g_str_equal (path, "/hook"))
    {
      status = fake.hooks++ == 0 ? 500 : 200;
      body = status == 500 ? "{\"error\": \"not today\"}" : "{\"ok\": true}";
    }
  else if (g_strcmp0 (auth, "Bearer owner-key") != 0)
    {
      status = 401;
      body = "{\"error\": \"Use the channel's owner key.\"}";
    }
  else if (g_str_equal (method, "GET") && g_str_equal (path, "/v1/channels/4"))
    body = CHANNEL_4_JSON;
  else if (g_str_equal (method, "GET") && g_str_equal (path, "/v1/channels/4/webhooks"))
    body = "{\"webhooks\": []}";
  else if (g_str_equal (method, "PATCH") && g_str_equal (path, "/v1/channels/4"))
    {
      SoupMessageBody *request = soup_server_message_get_request_body (msg);

      g_free (fake.patched);
      fake.patched = g_strndup (request->data, request->length);
      status = 400;
      body = "{\"error\": \"forwards[0].url: the relay does not send to private addresses "
             "(10.0.0.1)\"}";
    }
  else if (g_str_equal (method, "GET") && g_str_equal (path, "/v1/channels/1/deliveries"))
    {
      fake.gets++;
      body = DELIVERIES_JSON;
    }
  else if (g_str_equal (method, "GET") && g_str_equal (path, "/v1/channels/2/deliveries"))
    body = "{\"deliveries\": [], \"attempts\": []}";
  else if (g_str_equal (method, "GET") && g_str_equal (path, "/v1/channels/3/deliveries"))
    {
      status = 500;
      body = "{\"error\": \"The store is locked; try again.\"}";
    }
  else if (g_str_equal (method, "POST") && g_str_has_prefix (path, "/v1/channels/1/deliveries/"))
    {
      g_ptr_array_add (fake.retries, g_strdup (path));
      status = 202;
      body = "{\"delivery\": {\"id\": 12, \"state\": \"pending\"}}";
    }
  else
    {
      status = 404;
      body = "{\"error\": \"No such thing.\"}";
    }
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body,
                                    strlen (body));
}

static TocsinOwnedChannel *
fake_channel (gint64 id)
{
  TocsinOwnedChannel *channel = tocsin_owned_channel_new ();

  channel->relay_url = g_strdup (fake.base_url);
  channel->id = id;
  channel->owner_key = g_strdup ("owner-key");
  channel->name = g_strdup_printf ("Fake %" G_GINT64_FORMAT, id);
  return channel;
}

static void
collect_expander_rows (GtkWidget *root,
                       GPtrArray *rows)
{
  for (GtkWidget *child = gtk_widget_get_first_child (root); child;
       child = gtk_widget_get_next_sibling (child))
    {
      if (ADW_IS_EXPANDER_ROW (child))
        g_ptr_array_add (rows, child);
      else
        collect_expander_rows (child, rows);
    }
}

/* The expander rows under @root now, into @rows (emptied first). */
static guint
count_rows (GtkWidget *root,
            GPtrArray *rows)
{
  g_ptr_array_set_size (rows, 0);
  collect_expander_rows (root, rows);
  return rows->len;
}

static void
test_deliveries_page (void)
{
  g_autoptr(TocsinOwnedChannel) channel = fake_channel (1);
  GtkWidget *page = tocsin_deliveries_window_new_for_channel (GTK_WINDOW (window), app, channel);
  g_autoptr(GPtrArray) rows = g_ptr_array_new ();
  const char *titles[] = { "Silence · On acknowledge", "Pager · On message", "Pager · On message",
                           "Ticket · On message" };
  guint n_retry = 0;
  GtkWidget *button;

  gtk_window_set_default_size (GTK_WINDOW (page), 640, 900);
  gtk_window_present (GTK_WINDOW (page));
  TOCSIN_WAIT_UNTIL (g_str_equal (tocsin_deliveries_window_get_state
                                    (TOCSIN_DELIVERIES_WINDOW (page)), "list"));

  /* Newest first: the held delivery (no attempt yet), Pager's two attempts, then Ticket's. */
  collect_expander_rows (page, rows);
  g_assert_cmpuint (rows->len, ==, G_N_ELEMENTS (titles));
  for (guint i = 0; i < rows->len; i++)
    {
      GtkWidget *row_button;

      g_assert_cmpstr (adw_preferences_row_get_title (rows->pdata[i]), ==, titles[i]);
      row_button = tocsin_test_ui_find_widget (rows->pdata[i], GTK_TYPE_BUTTON, "Retry _Now");
      n_retry += row_button != NULL;
      /* Retry Now on the held one and on the failed one's newest attempt only. */
      g_assert_true ((row_button != NULL) == (i == 0 || i == 1));
    }
  g_assert_cmpuint (n_retry, ==, 2);
  g_assert_nonnull (strstr (adw_expander_row_get_subtitle (rows->pdata[1]), "HTTP 503"));
  g_assert_nonnull (strstr (adw_expander_row_get_subtitle (rows->pdata[1]), "812 ms"));
  g_assert_nonnull (strstr (adw_expander_row_get_subtitle (rows->pdata[0]), "Held back"));
  /* The answer's start and the URL are in the expandable part; markup is not read as such. */
  g_assert_nonnull (tocsin_test_ui_find_widget (rows->pdata[2], GTK_TYPE_LABEL, "<html>oops"));
  g_assert_nonnull (tocsin_test_ui_find_widget (rows->pdata[3], GTK_TYPE_LABEL,
                                                "https://tickets.example/new"));
  g_assert_nonnull (tocsin_test_ui_find_widget (rows->pdata[2], ADW_TYPE_ACTION_ROW,
                                                "Next retry"));
  /* Who acknowledged, for an acknowledge event; and when the held one is tried next. */
  g_assert_nonnull (tocsin_test_ui_find_widget (rows->pdata[0], GTK_TYPE_LABEL, "alice"));
  g_assert_nonnull (tocsin_test_ui_find_widget (rows->pdata[0], ADW_TYPE_ACTION_ROW,
                                                "Next retry"));
  adw_expander_row_set_expanded (rows->pdata[1], TRUE);
  tocsin_test_ui_save_unfocused_screenshot (page, "ui-deliveries.png");

  /* Retry Now on Pager: the retry URL is POSTed with the owner key, then the page reloads. */
  g_assert_cmpuint (fake.gets, ==, 1);
  button = tocsin_test_ui_find_widget (rows->pdata[1], GTK_TYPE_BUTTON, "Retry _Now");
  g_signal_emit_by_name (button, "clicked");
  TOCSIN_WAIT_UNTIL (fake.retries->len == 1);
  g_assert_cmpstr (fake.retries->pdata[0], ==, "/v1/channels/1/deliveries/12/retry");
  TOCSIN_WAIT_UNTIL (fake.gets == 2 &&
                     g_str_equal (tocsin_deliveries_window_get_state
                                    (TOCSIN_DELIVERIES_WINDOW (page)), "list"));
  gtk_window_destroy (GTK_WINDOW (page));
}

/* An owned channel's forwards and actions are shown as the relay has them, saved back as they
 * are, and a refusal of the relay's about one of them goes under its field too. */
static void
test_editor_loads_and_relay_refusal (void)
{
  g_autoptr(TocsinOwnedChannel) channel = fake_channel (4);
  g_autoptr(JsonNode) sent = NULL;
  GtkWidget *editor = open_editor (channel);
  GtkWidget *forward_group, *forward, *save;
  JsonObject *fields;
  JsonObject *definition;

  TOCSIN_WAIT_UNTIL ((forward_group = tocsin_test_ui_find_widget (editor,
                                                                  ADW_TYPE_PREFERENCES_GROUP,
                                                                  "Local")) != NULL);
  g_assert_nonnull (tocsin_test_ui_find_widget (editor, ADW_TYPE_PREFERENCES_GROUP, "Docs"));
  g_assert_null (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL, "No forwards"));
  forward = gtk_widget_get_ancestor (forward_group, TOCSIN_TYPE_REQUEST_EDITOR);
  g_assert_nonnull (forward);
  save = tocsin_test_ui_find_widget (editor, GTK_TYPE_BUTTON, "_Save");
  g_assert_true (gtk_widget_get_sensitive (save));

  g_assert_true (gtk_widget_activate_action (editor, "editor.save", NULL));
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL,
                                                 "The changes were not saved") != NULL);
  g_assert_nonnull (strstr (tocsin_request_editor_get_error (TOCSIN_REQUEST_EDITOR (forward),
                                                             "url"),
                            "private addresses"));
  g_assert_false (gtk_widget_get_sensitive (save));

  /* What was sent: both lists, each definition as loaded. */
  sent = json_from_string (fake.patched, NULL);
  g_assert_nonnull (sent);
  fields = json_node_get_object (sent);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (fields, "forwards")),
                    ==, 1);
  definition = json_array_get_object_element (json_object_get_array_member (fields, "forwards"),
                                              0);
  g_assert_cmpstr (json_object_get_string_member (definition, "method"), ==, "PUT");
  g_assert_cmpstr (json_object_get_string_member (definition, "url"), ==, "http://10.0.0.1/hook");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (definition,
                                                                                 "headers"),
                                                  "X-Team"), ==, "ops");
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (definition, "params")),
                    ==, 1);
  definition = json_array_get_object_element (json_object_get_array_member (fields, "actions"),
                                              0);
  g_assert_cmpstr (json_object_get_string_member (definition, "kind"), ==, "view");
  g_assert_cmpstr (json_object_get_string_member (definition, "url"), ==,
                   "https://docs.example/{{title}}");

  /* Edited, the error goes and Save is back. */
  tocsin_request_editor_set_field (TOCSIN_REQUEST_EDITOR (forward), "url",
                                   "https://hooks.example/in");
  TOCSIN_WAIT_UNTIL (gtk_widget_get_sensitive (save));
  g_assert_null (tocsin_request_editor_get_error (TOCSIN_REQUEST_EDITOR (forward), "url"));
  gtk_window_destroy (GTK_WINDOW (editor));
}

static void
test_deliveries_empty_and_error (void)
{
  g_autoptr(TocsinOwnedChannel) empty = fake_channel (2);
  g_autoptr(TocsinOwnedChannel) broken = fake_channel (3);
  GtkWidget *page;
  GtkWidget *status;

  page = tocsin_deliveries_window_new_for_channel (GTK_WINDOW (window), app, empty);
  gtk_window_present (GTK_WINDOW (page));
  TOCSIN_WAIT_UNTIL (g_str_equal (tocsin_deliveries_window_get_state
                                    (TOCSIN_DELIVERIES_WINDOW (page)), "empty"));
  status = tocsin_test_ui_find_mapped_widget (page, ADW_TYPE_STATUS_PAGE, NULL);
  g_assert_nonnull (status);
  g_assert_cmpstr (adw_status_page_get_title (ADW_STATUS_PAGE (status)), ==, "No Deliveries Yet");
  tocsin_test_ui_save_unfocused_screenshot (page, "ui-deliveries-empty.png");
  gtk_window_destroy (GTK_WINDOW (page));

  /* The relay's own sentence, in words. */
  page = tocsin_deliveries_window_new_for_channel (GTK_WINDOW (window), app, broken);
  gtk_window_present (GTK_WINDOW (page));
  TOCSIN_WAIT_UNTIL (g_str_equal (tocsin_deliveries_window_get_state
                                    (TOCSIN_DELIVERIES_WINDOW (page)), "error"));
  status = tocsin_test_ui_find_mapped_widget (page, ADW_TYPE_STATUS_PAGE, NULL);
  g_assert_cmpstr (adw_status_page_get_description (ADW_STATUS_PAGE (status)), ==,
                   "The relay did not answer: The store is locked; try again.");
  /* Refresh tries again (and fails the same way here). */
  g_assert_true (gtk_widget_activate_action (page, "deliveries.refresh", NULL));
  TOCSIN_WAIT_UNTIL (g_str_equal (tocsin_deliveries_window_get_state
                                    (TOCSIN_DELIVERIES_WINDOW (page)), "error"));
  gtk_window_destroy (GTK_WINDOW (page));
}

/* A record with one "http" action (policy none: one attempt a press) aimed at the fake's /hook,
 * stored as the client stores a relay's message. */
static TocsinRecord *
store_record_with_action (void)
{
  TocsinHistory *history = tocsin_application_get_history (app);
  g_autoptr(TocsinMessage) message = tocsin_message_new ();
  TocsinMessageAction *action = g_new0 (TocsinMessageAction, 1);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  TocsinStoreResult outcome;
  TocsinRecord *record;

  message->id = 1;
  message->channel = 7001;
  message->channel_name = g_strdup ("Deploys");
  message->time_ms = g_get_real_time () / 1000;
  g_free (message->title);
  message->title = g_strdup ("Deploy waiting");
  action->kind = g_strdup ("http");
  action->label = g_strdup ("Approve");
  action->method = g_strdup ("POST");
  action->url = g_strconcat (fake.base_url, "/hook", NULL);
  action->body = g_strdup ("{}");
  g_ptr_array_add (message->actions, action);
  tocsin_history_store_message_async (history, relay->base_url, message, NULL, async_done,
                                      &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  record = tocsin_history_store_message_finish (history, result, &outcome, &error);
  g_assert_no_error (error);
  g_assert_cmpint (outcome, ==, TOCSIN_STORE_ADDED);
  return record;
}

static void
test_presses_page (void)
{
  g_autoptr(TocsinRecord) record = NULL;
  g_autoptr(GPtrArray) rows = g_ptr_array_new ();
  TocsinActionRunner *runner = tocsin_application_get_action_runner (app);
  GtkWindow *page;
  GtkWidget *status, *button;
  guint done = 0;

  /* From the main menu; nothing pressed yet. */
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.action-presses", NULL));
  TOCSIN_WAIT_UNTIL ((page = tocsin_test_ui_find_toplevel (TOCSIN_TYPE_DELIVERIES_WINDOW))
                     != NULL);
  TOCSIN_WAIT_UNTIL (g_str_equal (tocsin_deliveries_window_get_state
                                    (TOCSIN_DELIVERIES_WINDOW (page)), "empty"));
  status = tocsin_test_ui_find_mapped_widget (GTK_WIDGET (page), ADW_TYPE_STATUS_PAGE, NULL);
  g_assert_cmpstr (adw_status_page_get_title (ADW_STATUS_PAGE (status)), ==,
                   "No Action Presses Yet");

  /* A press that fails: the page follows the runner and shows it, with Retry Now. */
  record = store_record_with_action ();
  g_assert_true (tocsin_action_runner_press (runner, record, 0));
  TOCSIN_WAIT_UNTIL (fake.hooks == 1 &&
                     g_str_equal (tocsin_deliveries_window_get_state
                                    (TOCSIN_DELIVERIES_WINDOW (page)), "list"));
  collect_expander_rows (GTK_WIDGET (page), rows);
  g_assert_cmpuint (rows->len, ==, 1);
  g_assert_cmpstr (adw_preferences_row_get_title (rows->pdata[0]), ==, "Approve · Deploys");
  g_assert_nonnull (strstr (adw_expander_row_get_subtitle (rows->pdata[0]), "HTTP 500"));
  button = tocsin_test_ui_find_widget (rows->pdata[0], GTK_TYPE_BUTTON, "Retry _Now");
  g_assert_nonnull (button);
  tocsin_test_ui_save_unfocused_screenshot (GTK_WIDGET (page), "ui-action-presses.png");

  /* Retry Now presses it again: the target gets it, and the newest row is the success, with
   * no Retry Now left. */
  g_signal_emit_by_name (button, "clicked");
  TOCSIN_WAIT_UNTIL (fake.hooks == 2);
  TOCSIN_WAIT_UNTIL (count_rows (GTK_WIDGET (page), rows) == 2 &&
                     g_str_equal (tocsin_deliveries_window_get_state
                                    (TOCSIN_DELIVERIES_WINDOW (page)), "list"));
  g_assert_nonnull (strstr (adw_expander_row_get_subtitle (rows->pdata[0]), "HTTP 200"));
  g_assert_nonnull (strstr (adw_expander_row_get_subtitle (rows->pdata[1]), "HTTP 500"));
  for (guint i = 0; i < rows->len; i++)
    done += tocsin_test_ui_find_widget (rows->pdata[i], GTK_TYPE_BUTTON, "Retry _Now") != NULL;
  g_assert_cmpuint (done, ==, 0);
  gtk_window_destroy (page);
}

/* Whether @page lists at least @n attempts whose subtitle says @text; loads it again when not
 * (the relay sends in the background, so the log fills after the page first loads). */
static gboolean
page_shows (GtkWidget  *page,
            guint       n,
            const char *text)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new ();
  guint found = 0;

  if (!g_str_equal (tocsin_deliveries_window_get_state (TOCSIN_DELIVERIES_WINDOW (page)),
                    "loading"))
    {
      collect_expander_rows (page, rows);
      for (guint i = 0; i < rows->len; i++)
        found += strstr (adw_expander_row_get_subtitle (rows->pdata[i]), text) != NULL;
      if (found >= n)
        return TRUE;
      tocsin_deliveries_window_refresh (TOCSIN_DELIVERIES_WINDOW (page));
    }
  return FALSE;
}

/* The page against a real relay's log (C1's owner API): a forward that gets 503 (policy none:
 * one attempt) shows as failed with Retry Now; Retry Now makes the relay try once more. */
static void
test_deliveries_real_relay (void)
{
  TocsinOwner *owner = tocsin_application_get_owner (app);
  g_autoptr(JsonObject) fields = json_object_new ();
  g_autoptr(JsonObject) forward = json_object_new ();
  g_autoptr(JsonObject) view = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinOwnedChannel) channel = NULL;
  g_autofree char *url = g_strconcat (fake.base_url, "/down", NULL);
  GtkWidget *page, *button;
  JsonArray *forwards = json_array_new ();

  json_object_set_string_member (forward, "name", "Maintenance");
  json_object_set_string_member (forward, "url", url);
  json_object_set_string_member (forward, "policy", "none");
  json_array_add_object_element (forwards, json_object_ref (forward));
  json_object_set_string_member (fields, "name", "Forwarded");
  json_object_set_array_member (fields, "forwards", forwards);
  tocsin_owner_create_channel_async (owner, relay->base_url, NULL, fields, NULL, async_done,
                                     &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  channel = tocsin_owner_create_channel_finish (owner, result, &view, &error);
  g_assert_no_error (error);
  g_assert_true (json_object_has_member (view, "forwards"));

  g_assert_cmpuint (tocsin_test_http (relay, "POST", channel->webhook_url, "application/json",
                                      "{\"title\": \"hello\"}", -1, NULL, NULL, NULL), ==, 200);
  TOCSIN_WAIT_UNTIL (fake.downs == 1);
  page = tocsin_deliveries_window_new_for_channel (GTK_WINDOW (window), app, channel);
  gtk_window_present (GTK_WINDOW (page));
  TOCSIN_WAIT_UNTIL (page_shows (page, 1, "HTTP 503") &&
                     (button = tocsin_test_ui_find_widget (page, GTK_TYPE_BUTTON, "Retry _Now"))
                     != NULL);
  tocsin_test_ui_save_unfocused_screenshot (page, "ui-deliveries-real-relay.png");
  g_signal_emit_by_name (button, "clicked");
  TOCSIN_WAIT_UNTIL (fake.downs == 2);
  TOCSIN_WAIT_UNTIL (page_shows (page, 2, "HTTP 503"));
  gtk_window_destroy (GTK_WINDOW (page));

  /* The same page from the main window's menu, for the channel shown, once subscribed. */
  {
    g_autoptr(JsonObject) link = json_object_new ();
    TocsinSubscription *subscription;
    GtkWindow *opened = NULL;

    json_object_set_string_member (link, "subscribe_url", channel->subscribe_url);
    subscription = tocsin_test_ui_subscribe (app, link, TOCSIN_NOTIFY_TYPE_NORMAL);
    /* Created through the owner API here, not the editor: the app reads its owned channels
     * again as the editor has it do after a save. */
    tocsin_application_reload_owned_channels (app);
    tocsin_window_show_channel (window, relay->base_url,
                                tocsin_subscription_get_channel_id (subscription));
    TOCSIN_WAIT_UNTIL ((opened = tocsin_test_ui_find_toplevel (TOCSIN_TYPE_DELIVERIES_WINDOW))
                       != NULL ||
                       (gtk_widget_activate_action (GTK_WIDGET (window), "win.channel-deliveries",
                                                    NULL) && FALSE));
    TOCSIN_WAIT_UNTIL (page_shows (GTK_WIDGET (opened), 2, "HTTP 503"));
    gtk_window_destroy (opened);
  }
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autofree char *tmpdir = NULL;
  g_autoslist(GUri) uris = NULL;
  int status;

  tmpdir = tocsin_test_ui_setup (&argc, &argv, "tocsin-ui-deliveries", 0);

  relay = tocsin_test_relay_start (NULL, NULL);
  fake.server = soup_server_new (NULL, NULL);
  fake.retries = g_ptr_array_new_with_free_func (g_free);
  soup_server_add_handler (fake.server, NULL, fake_handler, NULL, NULL);
  soup_server_listen_local (fake.server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (fake.server);
  fake.base_url = g_strdup_printf ("http://127.0.0.1:%d", g_uri_get_port (uris->data));

  app = tocsin_application_new ();
  g_application_register (G_APPLICATION (app), NULL, &error);
  g_assert_no_error (error);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_started (tocsin_application_get_client (app)));
  window = TOCSIN_WINDOW (tocsin_application_present_window (app));

  g_test_add_func ("/ui/deliveries/editor-forward", test_editor_forward);
  g_test_add_func ("/ui/deliveries/editor-action-limit", test_editor_action_limit);
  g_test_add_func ("/ui/deliveries/editor-loads", test_editor_loads_and_relay_refusal);
  g_test_add_func ("/ui/deliveries/page", test_deliveries_page);
  g_test_add_func ("/ui/deliveries/empty-and-error", test_deliveries_empty_and_error);
  g_test_add_func ("/ui/deliveries/presses", test_presses_page);
  g_test_add_func ("/ui/deliveries/real-relay", test_deliveries_real_relay);
  status = g_test_run ();

  gtk_window_destroy (GTK_WINDOW (window));
  tocsin_history_flush_sync (tocsin_application_get_history (app));
  g_clear_object (&app);
  g_clear_object (&fake.server);
  g_clear_pointer (&fake.retries, g_ptr_array_unref);
  g_clear_pointer (&fake.base_url, g_free);
  g_clear_pointer (&fake.patched, g_free);
  g_clear_pointer (&relay, tocsin_test_relay_free);
  tocsin_test_rmdir_recursive (tmpdir);
  return status;
}
