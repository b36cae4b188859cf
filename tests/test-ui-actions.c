/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-ui-actions.c: what the user does from outside the records view, in the real app under
 * Xvfb against a real relay: clicks a notification (dbusmock's ActionInvoked) that has no link
 * and gets the record shown in the window; presses "Mark as read" on a popup and sees the row
 * turn read; and edits, rotates and deletes a channel they own in the channel editor.
 */
#define G_LOG_DOMAIN "test-ui"

#include "config.h"

#include <adwaita.h>

#include "tocsin-application.h"
#include "tocsin-channel-editor.h"
#include "tocsin-presets.h"
#include "tocsin-record-row.h"
#include "tocsin-test-notify.h"
#include "tocsin-test-relay.h"
#include "tocsin-test-ui.h"
#include "tocsin-test-tls.h"
#include "tocsin-window.h"

typedef struct
{
  char               *tmpdir;
  TocsinTestRelay    *relay;
  JsonObject         *channel;
  TocsinApplication  *app;
  TocsinWindow       *window;
  TocsinSubscription *subscription;
} Fixture;

static Fixture fx;

static GDBusConnection *
session_bus (void)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);

  g_assert_no_error (error);
  return bus;
}

/* ---- widgets -------------------------------------------------------------------------- */

static gboolean
row_is_unread (TocsinRecordRow *row)
{
  return gtk_widget_has_css_class (gtk_widget_get_first_child (GTK_WIDGET (row)), "unread");
}

/* ---- the relay ------------------------------------------------------------------------ */

static guint
http_get (const char *url)
{
  return tocsin_test_http (fx.relay, "GET", url, NULL, NULL, 0, NULL, NULL, NULL);
}

static guint
subscribe_info (const char *subscribe_url)
{
  const char *headers[] = { "Accept", "application/json", NULL };

  return tocsin_test_http (fx.relay, "GET", subscribe_url, NULL, NULL, 0, headers, NULL, NULL);
}

static void
ring (const char *server)
{
  g_autofree char *path = g_strdup_printf ("/t/%s?server=%s",
                                           json_object_get_string_member (fx.channel,
                                                                          "trigger_token"),
                                           server);

  g_assert_cmpuint (http_get (path), ==, 200);
}

/* ---- tests: notifications ------------------------------------------------------------- */

static void
test_click_shows_record (void)
{
  guint32 id = 0;
  GtkWindow *details;
  TocsinRecordRow *row = NULL;

  /* The window is closed (the app keeps running in the background)... */
  gtk_window_destroy (GTK_WINDOW (fx.window));
  fx.window = NULL;
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_app_window (fx.app) == NULL);

  /* ...when a message without a link arrives and pops up. */
  ring ("nolink");
  TOCSIN_WAIT_UNTIL ((id = tocsin_test_notify_id (NULL, "Alert on nolink")) != 0);

  /* A click on it brings the window back and shows that record: its details open, and its
   * row is on screen. */
  tocsin_test_notify_click (NULL, id, "default");
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_app_window (fx.app) != NULL);
  fx.window = tocsin_test_ui_app_window (fx.app);
  g_assert_true (gtk_window_is_active (GTK_WINDOW (fx.window)) ||
                 gtk_widget_get_mapped (GTK_WIDGET (fx.window)));
  TOCSIN_WAIT_UNTIL ((details = tocsin_test_ui_find_toplevel
                                  (g_type_from_name ("TocsinRecordDetails"))) != NULL
                     && tocsin_test_ui_find_widget (GTK_WIDGET (details), GTK_TYPE_LABEL,
                                                    "Alert on nolink") != NULL);
  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, "Alert on nolink")) != NULL);
  /* Looking at it counts as reading it. */
  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, "Alert on nolink")) != NULL
                     && !row_is_unread (row));
  gtk_window_destroy (details);
}

static void
test_mark_read_from_popup (void)
{
  TocsinRecordRow *row = NULL;
  guint32 id = 0;

  ring ("readme");
  TOCSIN_WAIT_UNTIL ((id = tocsin_test_notify_id (NULL, "Alert on readme")) != 0);
  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, "Alert on readme")) != NULL);
  g_assert_true (row_is_unread (row));
  g_assert_false (tocsin_record_get_read (tocsin_record_row_get_record (row)));

  /* "Mark as read" on the popup: the row stops standing out, and the popup goes away. */
  tocsin_test_notify_click (NULL, id, "mark-read");
  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, "Alert on readme")) != NULL
                     && tocsin_record_get_read (tocsin_record_row_get_record (row))
                     && !row_is_unread (row));
  TOCSIN_WAIT_UNTIL (tocsin_test_notify_closed_count (NULL, id) > 0);
  /* No window popped up for it: only the click does that. */
  g_assert_null (tocsin_test_ui_find_toplevel (g_type_from_name ("TocsinRecordDetails")));
}

static void
test_click_clears_filters (void)
{
  TocsinRecordList *list = tocsin_window_get_record_list (fx.window);
  GtkWidget *entry;
  GtkWindow *details = NULL;
  guint32 id = 0;

  /* The window shows a search that matches nothing, and unread records only. */
  g_object_set (fx.window, "unread-only", TRUE, NULL);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.search", NULL));
  entry = tocsin_test_ui_find_widget (GTK_WIDGET (fx.window), GTK_TYPE_SEARCH_ENTRY, NULL);
  g_assert_nonnull (entry);
  gtk_editable_set_text (GTK_EDITABLE (entry), "nothing-like-this");
  TOCSIN_WAIT_UNTIL (g_strcmp0 (tocsin_record_list_get_search (list), "nothing-like-this") == 0
                     && !tocsin_record_list_get_loading (list)
                     && g_list_model_get_n_items (G_LIST_MODEL (list)) == 0);

  /* A click on a popup shows its record anyway: whatever hid it is cleared. */
  ring ("hidden");
  TOCSIN_WAIT_UNTIL ((id = tocsin_test_notify_id (NULL, "Alert on hidden")) != 0);
  tocsin_test_notify_click (NULL, id, "default");
  TOCSIN_WAIT_UNTIL ((details = tocsin_test_ui_find_toplevel
                                  (g_type_from_name ("TocsinRecordDetails"))) != NULL
                     && tocsin_test_ui_find_widget (GTK_WIDGET (details), GTK_TYPE_LABEL,
                                                    "Alert on hidden") != NULL);
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_row_with_title (fx.window, "Alert on hidden") != NULL);
  g_assert_cmpstr (tocsin_record_list_get_search (list) ? tocsin_record_list_get_search (list)
                                                      : "", ==, "");
  g_assert_false (tocsin_record_list_get_unread_only (list));
  /* The older records are back too. */
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_row_with_title (fx.window, "Alert on readme") != NULL);
  gtk_window_destroy (details);
}

static void
test_storm_summary_click (void)
{
  TocsinRecordList *list = tocsin_window_get_record_list (fx.window);
  g_autoptr(JsonObject) storms = NULL;
  guint32 id = 0;
  gint64 channel_id;

  storms = tocsin_test_relay_create_channel (fx.relay, "Storms", "Storm {{n}}", NULL, NULL,
                                             NULL);
  channel_id = json_object_get_int_member (storms, "id");
  g_object_unref (tocsin_test_ui_subscribe (fx.app, storms, TOCSIN_NOTIFY_TYPE_NORMAL));

  /* Five at once become "5 new from Storms" after the first three. */
  for (guint i = 1; i <= 5; i++)
    {
      g_autofree char *path = g_strdup_printf ("/t/%s?n=%u",
                                               json_object_get_string_member (storms,
                                                                              "trigger_token"),
                                               i);
      g_assert_cmpuint (http_get (path), ==, 200);
    }
  TOCSIN_WAIT_UNTIL ((id = tocsin_test_notify_id (NULL, "5 new from Storms")) != 0);

  /* A click on the summary shows that channel's records. */
  tocsin_test_notify_click (NULL, id, "default");
  TOCSIN_WAIT_UNTIL (tocsin_record_list_get_channel_id (list) == channel_id
                     && !tocsin_record_list_get_loading (list)
                     && tocsin_test_ui_row_with_title (fx.window, "Storm 5") != NULL
                     && tocsin_test_ui_row_with_title (fx.window, "Storm 1") != NULL);
  g_assert_null (tocsin_test_ui_row_with_title (fx.window, "Alert on readme"));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.show-all", NULL));
}

/* ---- tests: the channel editor -------------------------------------------------------- */

/* Answers the "are you sure" dialog of the editor. */
static void
confirm_dialog (void)
{
  AdwMessageDialog *dialog = NULL;

  TOCSIN_WAIT_UNTIL ((dialog = (AdwMessageDialog *) tocsin_test_ui_find_toplevel
                                                      (ADW_TYPE_MESSAGE_DIALOG))
                     != NULL);
  adw_message_dialog_response (dialog, "confirm");
  if (tocsin_test_ui_find_toplevel (ADW_TYPE_MESSAGE_DIALOG) == GTK_WINDOW (dialog))
    gtk_window_destroy (GTK_WINDOW (dialog));
}

/* Edits the selected channel; the action is enabled once the app knows it owns it. */
static GtkWidget *
open_editor (void)
{
  GType type = TOCSIN_TYPE_CHANNEL_EDITOR;
  GtkWindow *editor = NULL;

  TOCSIN_WAIT_UNTIL ((editor = tocsin_test_ui_find_toplevel (type)) != NULL
                     || (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.edit-channel",
                                                     NULL) && FALSE));
  return GTK_WIDGET (editor);
}

/* The subscription (borrowed) whose subscribe link is @url, or NULL. */
static TocsinSubscription *
subscription_with_url (const char *url)
{
  GListModel *subs = tocsin_client_get_subscriptions (tocsin_application_get_client (fx.app));

  for (guint i = 0; i < g_list_model_get_n_items (subs); i++)
    {
      g_autoptr(TocsinSubscription) sub = g_list_model_get_item (subs, i);
      g_autofree char *sub_url = g_strconcat (tocsin_subscription_get_relay_url (sub), "/s/",
                                              tocsin_subscription_get_token (sub), NULL);

      if (g_strcmp0 (sub_url, url) == 0)
        return sub;
    }
  return NULL;
}

static gboolean
subscribed_to_channel (gint64 channel_id)
{
  return tocsin_client_find_subscription (tocsin_application_get_client (fx.app),
                                          fx.relay->base_url, channel_id) != NULL;
}

/* A template over the work budget: the preview says so (the relay would answer 422) instead of
 * keeping the main loop busy for seconds on every key. */
static void
test_editor_preview_budget (void)
{
  g_autoptr(GString) body = g_string_new (NULL);
  g_autofree char *x = g_strnfill (65500, 'x');
  g_autofree char *sample = g_strdup_printf ("{\"s\": \"%s\"}", x);
  GtkWidget *editor;

  while (body->len < 15 * 1024)
    g_string_append (body, "{{s.trim().toUpperCase().toLowerCase().trim().length}}");
  editor = tocsin_channel_editor_new (GTK_WINDOW (fx.window), fx.app);
  gtk_window_present (GTK_WINDOW (editor));
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "sample", sample);
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "body", body->str);
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL,
                                                 "The template did too much work: the body")
                     != NULL);
  /* Not also "the condition is false": the budget is the reason. */
  g_assert_null (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL, "The condition is false"));

  /* Simplified, the preview is back. */
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "body", "{{s.length}}");
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL, "65500") != NULL);
  g_assert_null (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL,
                                             "The template did too much work"));
  gtk_window_destroy (GTK_WINDOW (editor));
}

/* A sample pasted from anywhere: 100,000 nested '[' overflowed json-glib's parser and took
 * the app down with the editor; now the sample's error says what is wrong. */
static void
test_editor_deep_sample (void)
{
  gsize n = 100000;
  g_autofree char *deep = g_malloc (2 * n + 1);
  GtkWidget *editor;

  memset (deep, '[', n);
  memset (deep + n, ']', n);
  deep[2 * n] = '\0';
  editor = tocsin_channel_editor_new (GTK_WINDOW (fx.window), fx.app);
  gtk_window_present (GTK_WINDOW (editor));
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "sample", deep);
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL,
                                                 "The sample is not valid JSON: "
                                                 "The JSON is nested more than")
                     != NULL);
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "sample", "[1, 2]");
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL,
                                                 "The sample must be a JSON object")
                     != NULL);
  gtk_window_destroy (GTK_WINDOW (editor));
}

/* The visible combo row under @root titled @title. */
static AdwComboRow *
find_combo_row (GtkWidget  *root,
                const char *title)
{
  for (GtkWidget *child = gtk_widget_get_first_child (root); child;
       child = gtk_widget_get_next_sibling (child))
    {
      AdwComboRow *found;

      if (!gtk_widget_get_visible (child))
        continue;
      if (ADW_IS_COMBO_ROW (child) &&
          g_strcmp0 (adw_preferences_row_get_title (ADW_PREFERENCES_ROW (child)), title) == 0)
        return ADW_COMBO_ROW (child);
      if ((found = find_combo_row (child, title)))
        return found;
    }
  return NULL;
}

/* Picks @name in the editor's "Start From a Sender" row, as a click on it in the list does. */
static void
choose_preset (GtkWidget  *editor,
               const char *name)
{
  AdwComboRow *row = find_combo_row (editor, "Start From a Sender");
  GListModel *model;

  g_assert_nonnull (row);
  model = adw_combo_row_get_model (row);
  for (guint i = 0; i < g_list_model_get_n_items (model); i++)
    {
      g_autoptr(GtkStringObject) item = g_list_model_get_item (model, i);

      if (g_str_equal (gtk_string_object_get_string (item), name))
        {
          adw_combo_row_set_selected (row, i);
          return;
        }
    }
  g_error ("no preset called %s in the editor", name);
}

static gboolean
has_label (GtkWidget  *root,
           const char *text)
{
  GtkWidget *label = tocsin_test_ui_find_widget (root, GTK_TYPE_LABEL, text);

  return label != NULL && g_str_equal (gtk_label_get_text (GTK_LABEL (label)), text);
}

/* Choosing a sender fills the templates, the name and the sample; the preview shows the sample
 * rendered; and the channel it creates turns that sender's real payload into the pop-up. */
static void
test_editor_preset (void)
{
  const TocsinPreset *alertmanager = tocsin_preset_lookup ("alertmanager");
  g_autofree char *webhook_prefix = g_strconcat (fx.relay->base_url, "/t/", NULL);
  g_autofree char *subscribe_prefix = g_strconcat (fx.relay->base_url, "/s/", NULL);
  g_autofree char *subscribe = NULL;
  g_autofree char *title = NULL, *sample = NULL, *name = NULL, *condition = NULL;
  g_autofree char *payload = NULL, *payload_path = NULL, *webhook = NULL;
  g_autoptr(GError) error = NULL;
  GtkWidget *editor, *label;
  const char *fields[] = { "title", "body", "link", "condition", "sample" };

  editor = tocsin_channel_editor_new (GTK_WINDOW (fx.window), fx.app);
  gtk_window_present (GTK_WINDOW (editor));
  gtk_editable_set_text (GTK_EDITABLE (tocsin_test_ui_find_widget (editor, ADW_TYPE_ENTRY_ROW,
                                                                   NULL)),
                         fx.relay->base_url);

  choose_preset (editor, "Prometheus Alertmanager");
  title = tocsin_channel_editor_get_field (TOCSIN_CHANNEL_EDITOR (editor), "title");
  g_assert_cmpstr (title, ==, alertmanager->title);
  sample = tocsin_channel_editor_get_field (TOCSIN_CHANNEL_EDITOR (editor), "sample");
  g_assert_nonnull (strstr (sample, "\"alerts\": ["));
  name = tocsin_channel_editor_get_field (TOCSIN_CHANNEL_EDITOR (editor), "name");
  g_assert_cmpstr (name, ==, "Prometheus Alertmanager");
  TOCSIN_WAIT_UNTIL (has_label (editor, "[FIRING:1] HighLatency"));
  g_assert_true (has_label (editor, "99th percentile latency above 500 ms on api-1:8080"));
  g_assert_true (has_label (editor, "http://prometheus.example.com:9090/graph?"
                                    "g0.expr=api_latency_p99+%3E+0.5&g0.tab=1"));
  /* Where to paste the webhook URL, under the row. */
  g_assert_nonnull (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL, "alertmanager.yml"));
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    g_assert_null (tocsin_channel_editor_get_error (TOCSIN_CHANNEL_EDITOR (editor), fields[i]));
  tocsin_test_ui_save_screenshot (editor, "editor-preset-alertmanager.png");

  /* Another sender replaces the templates, and the name it gave. */
  choose_preset (editor, "GitHub");
  TOCSIN_WAIT_UNTIL (has_label (editor, "acme/site: ada pushed to refs/heads/main"));
  g_assert_true (has_label (editor, "Fix the footer (and 1 more commit)"));
  g_clear_pointer (&name, g_free);
  name = tocsin_channel_editor_get_field (TOCSIN_CHANNEL_EDITOR (editor), "name");
  g_assert_cmpstr (name, ==, "GitHub");
  condition = tocsin_channel_editor_get_field (TOCSIN_CHANNEL_EDITOR (editor), "condition");
  g_assert_cmpstr (condition, ==, tocsin_preset_lookup ("github")->condition);
  g_assert_null (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL, "The condition is false"));
  g_assert_null (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL, "Not in the sample"));

  /* "None" keeps what is written. */
  choose_preset (editor, "None: write your own");
  g_clear_pointer (&condition, g_free);
  condition = tocsin_channel_editor_get_field (TOCSIN_CHANNEL_EDITOR (editor), "condition");
  g_assert_cmpstr (condition, ==, tocsin_preset_lookup ("github")->condition);

  /* Back to Alertmanager, create, and ring it as Alertmanager does. */
  choose_preset (editor, "Prometheus Alertmanager");
  TOCSIN_WAIT_UNTIL (has_label (editor, "[FIRING:1] HighLatency"));
  g_assert_true (gtk_widget_activate_action (editor, "editor.save", NULL));
  TOCSIN_WAIT_UNTIL ((label = tocsin_test_ui_find_label_with_prefix (editor, webhook_prefix,
                                                                     NULL)) != NULL);
  webhook = g_strdup (gtk_label_get_text (GTK_LABEL (label)));
  payload_path = g_build_filename (g_getenv ("TOCSIN_SOURCE_ROOT"), "data", "presets",
                                   "alertmanager.json", NULL);
  g_file_get_contents (payload_path, &payload, NULL, &error);
  g_assert_no_error (error);
  label = tocsin_test_ui_find_label_with_prefix (editor, subscribe_prefix, NULL);
  g_assert_nonnull (label);
  subscribe = g_strdup (gtk_label_get_text (GTK_LABEL (label)));
  {
    const char *headers[] = { "User-Agent", "Alertmanager/0.27.0", NULL };
    TocsinSubscription *sub = NULL;

    /* The creator is subscribed on their own; wait until the relay streams to them. */
    TOCSIN_WAIT_UNTIL ((sub = subscription_with_url (subscribe)) != NULL &&
                       tocsin_subscription_get_cursor (sub) != TOCSIN_CURSOR_NONE);
    g_assert_cmpuint (tocsin_test_http (fx.relay, "POST", webhook, "application/json", payload,
                                        -1, headers, NULL, NULL), ==, 200);
  }
  TOCSIN_WAIT_UNTIL (tocsin_test_notify_id (NULL, "[FIRING:1] HighLatency") != 0);
  gtk_window_destroy (GTK_WINDOW (editor));
}

static void
test_editor_edit_rotate_delete (void)
{
  TocsinClient *client = tocsin_application_get_client (fx.app);
  g_autofree char *webhook_prefix = g_strconcat (fx.relay->base_url, "/t/", NULL);
  g_autofree char *subscribe_prefix = g_strconcat (fx.relay->base_url, "/s/", NULL);
  g_autofree char *old_webhook = NULL;
  g_autofree char *old_subscribe = NULL;
  g_autofree char *new_webhook = NULL;
  g_autofree char *new_subscribe = NULL;
  g_autofree char *long_name = NULL;
  const TocsinOwnedChannel *owned = NULL;
  GtkWidget *editor;
  GtkWidget *label;
  gint64 channel_id;
  guint n_subs = g_list_model_get_n_items (tocsin_client_get_subscriptions (client));

  /* Create one through the editor (the creator is subscribed and keeps the owner key). */
  editor = tocsin_channel_editor_new (GTK_WINDOW (fx.window), fx.app);
  gtk_window_present (GTK_WINDOW (editor));
  gtk_editable_set_text (GTK_EDITABLE (tocsin_test_ui_find_widget (editor, ADW_TYPE_ENTRY_ROW,
                                                                   NULL)),
                         fx.relay->base_url);
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "name", "Deploys");
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "title", "Deployed {{version}}");
  g_assert_true (gtk_widget_activate_action (editor, "editor.save", NULL));
  TOCSIN_WAIT_UNTIL ((label = tocsin_test_ui_find_label_with_prefix (editor, webhook_prefix,
                                                                     NULL)) != NULL);
  old_webhook = g_strdup (gtk_label_get_text (GTK_LABEL (label)));
  label = tocsin_test_ui_find_label_with_prefix (editor, subscribe_prefix, NULL);
  g_assert_nonnull (label);
  old_subscribe = g_strdup (gtk_label_get_text (GTK_LABEL (label)));
  gtk_window_destroy (GTK_WINDOW (editor));

  TOCSIN_WAIT_UNTIL (g_list_model_get_n_items (tocsin_client_get_subscriptions (client))
                     == n_subs + 1 && subscription_with_url (old_subscribe) != NULL);
  {
    TocsinSubscription *sub = NULL;
    GListModel *subs = tocsin_client_get_subscriptions (client);
    g_autoptr(TocsinSubscription) last = g_list_model_get_item (subs, n_subs);

    sub = last;
    TOCSIN_WAIT_UNTIL (tocsin_subscription_get_channel_id (sub) > 0);
    channel_id = tocsin_subscription_get_channel_id (sub);
  }
  TOCSIN_WAIT_UNTIL ((owned = tocsin_application_find_owned_channel (fx.app, fx.relay->base_url,
                                                                     channel_id)) != NULL);
  g_assert_cmpstr (owned->webhook_url, ==, old_webhook);

  /* ---- edit: the editor opens on the channel as the relay has it ---- */
  tocsin_window_show_channel (fx.window, fx.relay->base_url, channel_id);
  editor = open_editor ();
  TOCSIN_WAIT_UNTIL (gtk_widget_get_sensitive (tocsin_test_ui_find_widget (editor, GTK_TYPE_BUTTON,
                                                                           "_Save")));
  {
    g_autofree char *name = tocsin_channel_editor_get_field (TOCSIN_CHANNEL_EDITOR (editor),
                                                              "name");
    g_autofree char *title = tocsin_channel_editor_get_field (TOCSIN_CHANNEL_EDITOR (editor),
                                                               "title");

    g_assert_cmpstr (name, ==, "Deploys");
    g_assert_cmpstr (title, ==, "Deployed {{version}}");
  }

  /* Something the relay refuses (a name over 200 bytes) comes back as its sentence. */
  long_name = g_strnfill (250, 'x');
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "name", long_name);
  g_assert_true (gtk_widget_activate_action (editor, "editor.save", NULL));
  TOCSIN_WAIT_UNTIL ((label = tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL,
                                                          "The changes were not saved: ")) != NULL);
  g_test_message ("refused: %s", gtk_label_get_text (GTK_LABEL (label)));
  g_assert_null (strstr (gtk_label_get_text (GTK_LABEL (label)), "HTTP"));
  g_assert_nonnull (strstr (gtk_label_get_text (GTK_LABEL (label)), "name"));

  /* A good change is saved, and senders get the new template at once. */
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "name", "Deploys");
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "title",
                                   "Shipped {{version}}");
  TOCSIN_WAIT_UNTIL (gtk_widget_get_sensitive (tocsin_test_ui_find_widget (editor, GTK_TYPE_BUTTON,
                                                                           "_Save")));
  g_assert_true (gtk_widget_activate_action (editor, "editor.save", NULL));
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL, "Saved") != NULL);
  {
    g_autofree char *url = g_strconcat (old_webhook, "?version=2.0", NULL);
    g_autoptr(GBytes) response = NULL;

    g_assert_cmpuint (tocsin_test_http (fx.relay, "GET", url, NULL, NULL, 0, NULL, &response,
                                        NULL), ==, 200);
    g_assert_nonnull (strstr (g_bytes_get_data (response, NULL), "\"Shipped 2.0\""));
  }

  /* ---- rotate the webhook URL: the editor shows the new one; the old one is dead ---- */
  g_assert_true (gtk_widget_activate_action (editor, "editor.rotate-trigger", NULL));
  confirm_dialog ();
  TOCSIN_WAIT_UNTIL ((label = tocsin_test_ui_find_label_with_prefix (editor, webhook_prefix,
                                                                     old_webhook))
                     != NULL);
  new_webhook = g_strdup (gtk_label_get_text (GTK_LABEL (label)));
  g_assert_cmpuint (http_get (old_webhook), ==, 404);
  g_assert_cmpuint (http_get (new_webhook), ==, 200);
  /* The subscribe link did not change. */
  g_assert_nonnull (tocsin_test_ui_find_label_with_prefix (editor, old_subscribe, NULL));
  /* The app keeps the new URL for the next time the editor opens. */
  TOCSIN_WAIT_UNTIL ((owned = tocsin_application_find_owned_channel (fx.app, fx.relay->base_url,
                                                                     channel_id)) != NULL
                     && g_strcmp0 (owned->webhook_url, new_webhook) == 0);

  /* ---- rotate the subscribe link: the owner's own subscription moves to the new one ---- */
  g_assert_true (gtk_widget_activate_action (editor, "editor.rotate-subscribe", NULL));
  confirm_dialog ();
  TOCSIN_WAIT_UNTIL ((label = tocsin_test_ui_find_label_with_prefix (editor, subscribe_prefix,
                                                                     old_subscribe))
                     != NULL);
  new_subscribe = g_strdup (gtk_label_get_text (GTK_LABEL (label)));
  g_assert_cmpuint (subscribe_info (old_subscribe), ==, 404);
  g_assert_cmpuint (subscribe_info (new_subscribe), ==, 200);
  TOCSIN_WAIT_UNTIL (subscription_with_url (new_subscribe) != NULL
                     && subscription_with_url (old_subscribe) == NULL);
  {
    TocsinSubscription *sub = tocsin_client_find_subscription (client, fx.relay->base_url,
                                                               channel_id);
    g_autofree char *path = NULL;

    /* And it is live on the new link: a ring shows up as a record of the channel. */
    g_assert_nonnull (sub);
    TOCSIN_WAIT_UNTIL (tocsin_subscription_get_cursor (sub) != TOCSIN_CURSOR_NONE);
    path = g_strconcat (new_webhook, "?version=3.0", NULL);
    g_assert_cmpuint (http_get (path), ==, 200);
    gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.show-all", NULL);
    TOCSIN_WAIT_UNTIL (tocsin_test_ui_row_with_title (fx.window, "Shipped 3.0") != NULL);
  }

  /* ---- delete: confirmed, the editor closes, the relay forgets it, so does the app ---- */
  g_object_add_weak_pointer (G_OBJECT (editor), (gpointer *) &editor);
  g_assert_true (gtk_widget_activate_action (editor, "editor.delete", NULL));
  confirm_dialog ();
  TOCSIN_WAIT_UNTIL (editor == NULL);
  g_assert_cmpuint (http_get (new_webhook), ==, 404);
  g_assert_cmpuint (subscribe_info (new_subscribe), ==, 404);
  TOCSIN_WAIT_UNTIL (!subscribed_to_channel (channel_id));
  TOCSIN_WAIT_UNTIL (tocsin_application_find_owned_channel (fx.app, fx.relay->base_url,
                                                            channel_id) == NULL);
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (GTK_WIDGET (fx.window), GTK_TYPE_LABEL,
                                                 "Channel deleted") != NULL);
}

/* ---- tests: settings that touch files ------------------------------------------------ */

static void
test_autostart (void)
{
  g_autoptr(GSettings) settings = g_settings_new (APP_ID);
  g_autofree char *path = g_build_filename (g_get_user_config_dir (), "autostart",
                                            APP_ID ".desktop", NULL);
  g_autofree char *contents = NULL;

  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));

  /* On: the XDG autostart entry appears and starts Tocsin in the background. */
  g_settings_set_boolean (settings, "autostart", TRUE);
  TOCSIN_WAIT_UNTIL (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_nonnull (strstr (contents, "\nExec=tocsin --background\n"));
  g_assert_nonnull (strstr (contents, "[Desktop Entry]"));

  /* Quick toggles end where the switch ends. */
  g_settings_set_boolean (settings, "autostart", FALSE);
  g_settings_set_boolean (settings, "autostart", TRUE);
  g_settings_set_boolean (settings, "autostart", FALSE);
  TOCSIN_WAIT_UNTIL (!g_file_test (path, G_FILE_TEST_EXISTS));
}

/* The portal's recorded RequestBackground calls (dbusmock's GetCalls): how many there were, and
 * the options of the last. */
static guint
portal_requests (GDBusConnection *bus,
                 GVariant       **last_options)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) calls = NULL;
  g_autoptr(GError) error = NULL;
  guint n = 0;

  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.portal.Desktop",
                                       "/org/freedesktop/portal/desktop",
                                       "org.freedesktop.DBus.Mock", "GetCalls", NULL,
                                       G_VARIANT_TYPE ("(a(tsav))"), G_DBUS_CALL_FLAGS_NONE,
                                       -1, NULL, &error);
  g_assert_no_error (error);
  calls = g_variant_get_child_value (reply, 0);
  for (gsize i = 0; i < g_variant_n_children (calls); i++)
    {
      g_autoptr(GVariant) args = NULL;
      const char *method;

      g_variant_get_child (calls, i, "(t&s@av)", NULL, &method, &args);
      if (!g_str_equal (method, "RequestBackground"))
        continue;
      n++;
      if (last_options)
        {
          g_autoptr(GVariant) boxed = g_variant_get_child_value (args, 1);

          g_clear_pointer (last_options, g_variant_unref);
          *last_options = g_variant_get_variant (boxed);
        }
    }
  return n;
}

static gboolean
name_has_owner (GDBusConnection *bus,
                const char      *name)
{
  g_autoptr(GVariant) reply = NULL;
  gboolean owned = FALSE;

  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", name), G_VARIANT_TYPE ("(b)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
  if (reply)
    g_variant_get (reply, "(b)", &owned);
  return owned;
}

static void
test_autostart_portal (void)
{
  g_autoptr(GSettings) settings = g_settings_new (APP_ID);
  g_autoptr(GDBusConnection) bus = session_bus ();
  g_autofree char *path = g_build_filename (g_get_user_config_dir (), "autostart",
                                            APP_ID ".desktop", NULL);
  g_autofree char *template = g_test_build_filename (G_TEST_DIST,
                                                     "dbusmock-background-portal.py", NULL);
  g_autoptr(GSubprocess) portal = NULL;
  g_autoptr(GVariant) options = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree const char **commandline = NULL;
  gboolean autostart = FALSE;

  /* A sandbox's portal: xdg-desktop-portal's Background interface, played by dbusmock. */
  portal = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                             &error, "/usr/bin/python3", "-m", "dbusmock", "--template", template,
                             NULL);
  g_assert_no_error (error);
  TOCSIN_WAIT_UNTIL (name_has_owner (bus, "org.freedesktop.portal.Desktop"));
  tocsin_application_set_sandboxed (fx.app, TRUE);

  /* On: the portal is asked to start `tocsin --background` at login; nothing is written to
   * ~/.config/autostart, which a sandbox cannot reach (the portal writes the entry). */
  g_settings_set_boolean (settings, "autostart", TRUE);
  TOCSIN_WAIT_UNTIL (portal_requests (bus, &options) == 1);
  g_assert_true (g_variant_lookup (options, "autostart", "b", &autostart));
  g_assert_true (autostart);
  g_assert_true (g_variant_lookup (options, "commandline", "^a&s", &commandline));
  g_assert_cmpstrv (commandline, ((const char *[]) { "tocsin", "--background", NULL }));
  g_assert_true (g_variant_lookup (options, "reason", "&s", NULL));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));

  /* Off: the portal is asked to remove it. */
  g_settings_set_boolean (settings, "autostart", FALSE);
  TOCSIN_WAIT_UNTIL (portal_requests (bus, &options) == 2);
  g_assert_true (g_variant_lookup (options, "autostart", "b", &autostart));
  g_assert_false (autostart);

  /* Refused (the user said no in the portal's dialog): the window says so. */
  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.portal.Desktop",
                                       "/org/freedesktop/portal/desktop",
                                       "org.freedesktop.DBus.Properties", "Set",
                                       g_variant_new ("(ssv)", "io.github.tocsin.Test", "Response",
                                                      g_variant_new_uint32 (1)),
                                       NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  g_settings_set_boolean (settings, "autostart", TRUE);
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (GTK_WIDGET (fx.window), GTK_TYPE_LABEL,
                                                 "did not allow Tocsin to start at login") != NULL);
  g_assert_cmpuint (portal_requests (bus, NULL), ==, 3);
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));

  g_settings_set_boolean (settings, "autostart", FALSE);
  TOCSIN_WAIT_UNTIL (portal_requests (bus, NULL) == 4);
  tocsin_application_set_sandboxed (fx.app, FALSE);
  g_subprocess_force_exit (portal);
  g_subprocess_wait (portal, NULL, NULL);
}

static void
test_bad_ca_file (void)
{
  g_autoptr(GSettings) settings = g_settings_new (APP_ID);
  g_autofree char *missing = g_build_filename (fx.tmpdir, "no-such-ca.pem", NULL);
  GtkWidget *label = NULL;

  /* A CA file that cannot be read is said in the window, as a sentence naming the file. */
  g_settings_set_string (settings, "ca-file", missing);
  TOCSIN_WAIT_UNTIL ((label = tocsin_test_ui_find_widget (GTK_WIDGET (fx.window), GTK_TYPE_LABEL,
                                                          "could not be used")) != NULL);
  g_assert_nonnull (strstr (gtk_label_get_text (GTK_LABEL (label)), missing));
  g_assert_null (tocsin_client_get_tls_database (tocsin_application_get_client (fx.app)));
  g_settings_set_string (settings, "ca-file", "");
}

static void
test_ca_file_reaches_owner (void)
{
  g_autoptr(GSettings) settings = g_settings_new (APP_ID);
  g_autoptr(TocsinTestPki) pki = tocsin_test_pki_new ();
  g_autofree char *cert = g_strdup_printf ("--tls-cert=%s", pki->cert_file);
  g_autofree char *key = g_strdup_printf ("--tls-key=%s", pki->key_file);
  const char *args[] = { cert, key, NULL };
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, args);
  TocsinOwner *owner = tocsin_application_get_owner (fx.app);
  g_autoptr(JsonObject) fields = json_object_new ();
  g_autoptr(TocsinOwnedChannel) channel = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  /* The CA file chosen in the preferences is read (off the main loop) and then trusted by the
   * channel editor's requests too, not only by the subscriptions. */
  g_settings_set_string (settings, "ca-file", pki->ca_file);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_tls_database (tocsin_application_get_client (fx.app))
                     != NULL);
  json_object_set_string_member (fields, "name", "Behind a self-signed certificate");
  tocsin_owner_create_channel_async (owner, relay->base_url, NULL, fields, NULL,
                                     tocsin_test_ui_async_done, &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  channel = tocsin_owner_create_channel_finish (owner, result, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (channel->webhook_url, "https://"));
  g_clear_object (&result);
  tocsin_owner_delete_channel_async (owner, channel, NULL, tocsin_test_ui_async_done, &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  g_assert_true (tocsin_owner_delete_channel_finish (owner, result, &error));
  g_assert_no_error (error);

  g_settings_set_string (settings, "ca-file", "");
  TOCSIN_WAIT_UNTIL (tocsin_client_get_tls_database (tocsin_application_get_client (fx.app))
                     == NULL);
}

/* ---- setup ---------------------------------------------------------------------------- */

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  TocsinClient *client;
  int status;

  fx.tmpdir = tocsin_test_ui_setup (&argc, &argv, "tocsin-ui-actions",
                                    TOCSIN_TEST_UI_NEEDS_NOTIFY_DAEMON);

  fx.relay = tocsin_test_relay_start (NULL, NULL);
  fx.channel = tocsin_test_relay_create_channel (fx.relay, "Prod alerts", "Alert on {{server}}",
                                                 "CPU at {{cpu}}%", NULL, NULL);

  fx.app = tocsin_application_new ();
  g_application_register (G_APPLICATION (fx.app), NULL, &error);
  g_assert_no_error (error);
  client = tocsin_application_get_client (fx.app);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_started (client));
  fx.window = TOCSIN_WINDOW (tocsin_application_present_window (fx.app));

  /* Subscribed live, as after the subscribe dialog. */
  fx.subscription = tocsin_test_ui_subscribe (fx.app, fx.channel, TOCSIN_NOTIFY_TYPE_NORMAL);

  g_test_add_func ("/ui/notification/click-shows-record", test_click_shows_record);
  g_test_add_func ("/ui/notification/mark-read", test_mark_read_from_popup);
  g_test_add_func ("/ui/notification/click-clears-filters", test_click_clears_filters);
  g_test_add_func ("/ui/notification/storm-summary-click", test_storm_summary_click);
  g_test_add_func ("/ui/editor/edit-rotate-delete", test_editor_edit_rotate_delete);
  g_test_add_func ("/ui/editor/preview-budget", test_editor_preview_budget);
  g_test_add_func ("/ui/editor/deep-sample", test_editor_deep_sample);
  g_test_add_func ("/ui/editor/preset", test_editor_preset);
  g_test_add_func ("/ui/preferences/autostart", test_autostart);
  g_test_add_func ("/ui/preferences/autostart-portal", test_autostart_portal);
  g_test_add_func ("/ui/preferences/bad-ca-file", test_bad_ca_file);
  g_test_add_func ("/ui/preferences/ca-file-reaches-owner", test_ca_file_reaches_owner);
  status = g_test_run ();

  if (fx.window)
    gtk_window_destroy (GTK_WINDOW (fx.window));
  tocsin_history_flush_sync (tocsin_application_get_history (fx.app));
  g_clear_object (&fx.subscription);
  g_clear_object (&fx.app);
  g_clear_pointer (&fx.channel, json_object_unref);
  g_clear_pointer (&fx.relay, tocsin_test_relay_free);
  tocsin_test_rmdir_recursive (fx.tmpdir);
  g_free (fx.tmpdir);
  return status;
}
