/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-ui-window.c: the real Tocsin window under Xvfb, driven through the app's core against a
 * real relay. It asserts what a person would see (rows, their text and link, the empty state,
 * inline errors), launches a link into a test "browser" registered for https through
 * XDG_DATA_HOME + mimeapps.list, and saves screenshots under the build dir.
 */
#define G_LOG_DOMAIN "test-ui"

#include "config.h"

#include <glib/gstdio.h>
#include <adwaita.h>

#include "tocsin-application.h"
#include "tocsin-channel-editor.h"
#include "tocsin-record-row.h"
#include "tocsin-test-relay.h"
#include "tocsin-test-ui.h"
#include "tocsin-window.h"

typedef struct
{
  char              *tmpdir;
  char              *launched_file;
  TocsinTestRelay   *relay;
  JsonObject        *channel;
  TocsinApplication *app;
  TocsinWindow      *window;
  TocsinSubscription *subscription;
} Fixture;

static Fixture fx;

#define LINK_URL "https://dashboard.example.com/alerts/123"

/* ---- helpers -------------------------------------------------------------------------- */

/* Depth-first search for a widget of @type whose label-ish text contains @text (NULL: any).
 * Unlike tocsin_test_ui_find_widget(), it also looks inside hidden widgets (only the match must
 * be visible itself): this file's tests were written against that. */
static GtkWidget *
find_widget (GtkWidget  *root,
             GType       type,
             const char *text)
{
  for (GtkWidget *child = gtk_widget_get_first_child (root); child;
       child = gtk_widget_get_next_sibling (child))
    {
      GtkWidget *found;

      if (G_TYPE_CHECK_INSTANCE_TYPE (child, type) && gtk_widget_get_visible (child))
        {
          const char *label = tocsin_test_ui_widget_text (child);

          if (text == NULL || (label != NULL && strstr (label, text) != NULL))
            return child;
        }
      found = find_widget (child, type, text);
      if (found)
        return found;
    }
  return NULL;
}

/* The record rows on screen. */
static GPtrArray *
visible_rows (void)
{
  return tocsin_test_ui_record_rows (GTK_WIDGET (tocsin_window_get_records_view (fx.window)));
}

static gboolean
rows_loaded (guint expected)
{
  g_autoptr(GPtrArray) rows = visible_rows ();

  if (rows->len != expected)
    return FALSE;
  for (guint i = 0; i < rows->len; i++)
    if (!tocsin_record_get_loaded (tocsin_record_row_get_record (rows->pdata[i])))
      return FALSE;
  return TRUE;
}

static TocsinRecordRow *
row_with_title (const char *title)
{
  g_autoptr(GPtrArray) rows = visible_rows ();

  for (guint i = 0; i < rows->len; i++)
    if (find_widget (rows->pdata[i], GTK_TYPE_LABEL, title) != NULL)
      return rows->pdata[i];
  return NULL;
}

static GtkWidget *
find_records_stack (GtkWidget *root)
{
  for (GtkWidget *child = gtk_widget_get_first_child (root); child;
       child = gtk_widget_get_next_sibling (child))
    {
      GtkWidget *found;

      if (GTK_IS_STACK (child) && gtk_stack_get_child_by_name (GTK_STACK (child), "empty"))
        return child;
      if ((found = find_records_stack (child)))
        return found;
    }
  return NULL;
}

/* Which page the records area shows: "records", "empty" or "no-results". */
static const char *
stack_page (void)
{
  GtkWidget *stack = find_records_stack (GTK_WIDGET (fx.window));

  g_assert_nonnull (stack);
  return gtk_stack_get_visible_child_name (GTK_STACK (stack));
}

static void
ring (const char *query)
{
  g_autofree char *path = g_strdup_printf ("/t/%s?%s",
                                           json_object_get_string_member (fx.channel, "trigger_token"),
                                           query);
  guint status = tocsin_test_http (fx.relay, "GET", path, NULL, NULL, 0, NULL, NULL, NULL);

  g_assert_cmpuint (status, ==, 200);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void
test_empty_state (void)
{
  GtkWidget *status_page;

  tocsin_test_ui_wait_for_frames (GTK_WIDGET (fx.window), 2);
  TOCSIN_WAIT_UNTIL (!tocsin_record_list_get_loading (tocsin_window_get_record_list (fx.window)));
  g_assert_cmpstr (stack_page (), ==, "empty");

  /* The empty state says what to do next, with buttons that do it. */
  status_page = find_widget (GTK_WIDGET (fx.window), ADW_TYPE_STATUS_PAGE, NULL);
  g_assert_nonnull (status_page);
  g_assert_cmpstr (adw_status_page_get_title (ADW_STATUS_PAGE (status_page)), ==,
                   "No Notifications Yet");
  g_assert_nonnull (find_widget (status_page, GTK_TYPE_BUTTON, "Subscribe to a Channel"));
  g_assert_nonnull (find_widget (status_page, GTK_TYPE_BUTTON, "Create a Channel"));

  tocsin_test_ui_save_unfocused_screenshot (GTK_WIDGET (fx.window), "ui-empty-state.png");
}

static void
test_record_with_link (void)
{
  TocsinClient *client = tocsin_application_get_client (fx.app);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinSubscription) fetched = NULL;
  TocsinRecordRow *row;
  GtkWidget *link_label;
  const char *subscribe_url = json_object_get_string_member (fx.channel, "subscribe_url");

  /* Ring before subscribing, then subscribe from the start: the replay brings them in, so
   * nothing here depends on who is first. */
  ring ("server=db1&cpu=97&link=https%3A%2F%2Fdashboard.example.com%2Falerts%2F123");
  ring ("server=db2&cpu=12");

  tocsin_client_fetch_channel_info_async (client, subscribe_url, NULL, tocsin_test_ui_async_done,
                                          &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  fetched = tocsin_client_fetch_channel_info_finish (client, result, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (tocsin_subscription_get_name (fetched), ==, "Prod alerts");
  g_clear_object (&result);

  tocsin_subscription_set_cursor (fetched, 0);
  tocsin_client_subscribe_async (client, fetched, NULL, tocsin_test_ui_async_done, &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  fx.subscription = tocsin_client_subscribe_finish (client, result, &error);
  g_assert_no_error (error);

  /* Both records show up as rows; the first has a link that names its host. */
  TOCSIN_WAIT_UNTIL (rows_loaded (2));
  g_assert_cmpstr (stack_page (), ==, "records");
  row = row_with_title ("Alert on db1");
  g_assert_nonnull (row);
  g_assert_nonnull (find_widget (GTK_WIDGET (row), GTK_TYPE_LABEL, "CPU at 97%"));
  g_assert_nonnull (find_widget (GTK_WIDGET (row), GTK_TYPE_LABEL, "Prod alerts"));
  link_label = tocsin_record_row_get_link_label (row);
  g_assert_true (gtk_widget_get_visible (link_label));
  g_assert_cmpstr (gtk_label_get_text (GTK_LABEL (link_label)), ==,
                   "Open dashboard.example.com");
  g_assert_nonnull (strstr (gtk_label_get_label (GTK_LABEL (link_label)),
                            "href=\"" LINK_URL "\""));
  g_assert_cmpstr (gtk_widget_get_tooltip_text (link_label), ==, LINK_URL);

  /* The second has none. */
  row = row_with_title ("Alert on db2");
  g_assert_nonnull (row);
  g_assert_false (gtk_widget_get_visible (tocsin_record_row_get_link_label (row)));
  /* Unread records stand out. */
  g_assert_true (find_widget (GTK_WIDGET (row), GTK_TYPE_BOX, NULL) != NULL);
  g_assert_true (gtk_widget_has_css_class (gtk_widget_get_first_child (GTK_WIDGET (row)), "unread"));

  tocsin_test_ui_save_unfocused_screenshot (GTK_WIDGET (fx.window), "ui-records-with-links.png");
}

static void
test_open_link (void)
{
  TocsinRecordRow *row = row_with_title ("Alert on db1");
  TocsinRecord *record;
  GtkWidget *link_label;
  gboolean handled = FALSE;
  g_autofree char *launched = NULL;

  g_assert_nonnull (row);
  record = tocsin_record_row_get_record (row);
  g_assert_false (tocsin_record_get_read (record));
  link_label = tocsin_record_row_get_link_label (row);

  /* What a click on the link does. */
  g_signal_emit_by_name (link_label, "activate-link", LINK_URL, &handled);
  g_assert_true (handled);

  /* The test browser (x-scheme-handler/https) got the URL. */
  TOCSIN_WAIT_UNTIL (g_file_test (fx.launched_file, G_FILE_TEST_EXISTS)
                     && g_file_get_contents (fx.launched_file, &launched, NULL, NULL)
                     && strstr (launched, "\n") != NULL);
  g_assert_cmpstr (g_strstrip (launched), ==, LINK_URL);

  /* Opening it marks it read, and the row stops standing out. */
  row = NULL;
  TOCSIN_WAIT_UNTIL ((row = row_with_title ("Alert on db1")) != NULL
                     && tocsin_record_get_read (tocsin_record_row_get_record (row)));
  TOCSIN_WAIT_UNTIL (!gtk_widget_has_css_class (gtk_widget_get_first_child (GTK_WIDGET (row)), "unread"));
}

static void
test_search (void)
{
  GtkWidget *entry;
  TocsinRecordList *list = tocsin_window_get_record_list (fx.window);

  /* Ctrl+F is win.search. */
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.search", NULL));
  entry = find_widget (GTK_WIDGET (fx.window), GTK_TYPE_SEARCH_ENTRY, NULL);
  g_assert_nonnull (entry);
  TOCSIN_WAIT_UNTIL (gtk_widget_get_mapped (entry));

  gtk_editable_set_text (GTK_EDITABLE (entry), "db2");
  TOCSIN_WAIT_UNTIL (g_list_model_get_n_items (G_LIST_MODEL (list)) == 1 && rows_loaded (1));
  g_assert_nonnull (row_with_title ("Alert on db2"));
  g_assert_null (row_with_title ("Alert on db1"));

  gtk_editable_set_text (GTK_EDITABLE (entry), "nothing-like-this");
  TOCSIN_WAIT_UNTIL (g_list_model_get_n_items (G_LIST_MODEL (list)) == 0
                     && !tocsin_record_list_get_loading (list)
                     && g_strcmp0 (stack_page (), "no-results") == 0);

  gtk_editable_set_text (GTK_EDITABLE (entry), "");
  TOCSIN_WAIT_UNTIL (g_list_model_get_n_items (G_LIST_MODEL (list)) == 2 && rows_loaded (2));
  g_signal_emit_by_name (entry, "stop-search");
}

static void
test_keyboard_focus (void)
{
  GtkWidget *window = GTK_WIDGET (fx.window);
  g_autoptr(GPtrArray) seen = g_ptr_array_new ();
  gboolean saw_add = FALSE, saw_menu = FALSE, saw_channels = FALSE, saw_search = FALSE;
  gboolean saw_row = FALSE, saw_link = FALSE;
  GtkWidget *first = NULL;

  gtk_window_present (GTK_WINDOW (window));
  tocsin_test_ui_wait_for_frames (window, 2);
  gtk_widget_grab_focus (window);
  gtk_window_set_focus (GTK_WINDOW (window), NULL);

  /* What Tab does, until focus comes back around. */
  for (guint i = 0; i < 200; i++)
    {
      GtkWidget *focus;

      gtk_widget_child_focus (window, GTK_DIR_TAB_FORWARD);
      focus = gtk_root_get_focus (GTK_ROOT (window));
      if (focus == NULL)
        continue;
      if (focus == first)
        break;
      if (first == NULL)
        first = focus;
      g_ptr_array_add (seen, focus);

      for (GtkWidget *w = focus; w; w = gtk_widget_get_parent (w))
        {
          const char *tooltip = gtk_widget_get_tooltip_text (w);

          if (GTK_IS_MENU_BUTTON (w) && g_strcmp0 (tooltip, "Add a Channel") == 0)
            saw_add = TRUE;
          if (GTK_IS_MENU_BUTTON (w) && g_strcmp0 (tooltip, "Main Menu") == 0)
            saw_menu = TRUE;
          if (GTK_IS_TOGGLE_BUTTON (w) && g_strcmp0 (tooltip, "Search (Ctrl+F)") == 0)
            saw_search = TRUE;
          if (GTK_IS_LIST_VIEW (w) && w != GTK_WIDGET (tocsin_window_get_records_view (fx.window)))
            saw_channels = TRUE;
          if (TOCSIN_IS_RECORD_ROW (w))
            saw_row = TRUE;
          if (GTK_IS_LABEL (w) && gtk_label_get_use_markup (GTK_LABEL (w))
              && g_str_has_prefix (gtk_label_get_text (GTK_LABEL (w)), "Open "))
            saw_link = TRUE;
        }
    }

  /* Tabbing onto a selectable label selects its text; leave the rows as they were. */
  for (guint i = 0; i < seen->len; i++)
    if (GTK_IS_LABEL (seen->pdata[i]) && gtk_label_get_selectable (seen->pdata[i]))
      gtk_label_select_region (seen->pdata[i], 0, 0);

  g_test_message ("Tab visited %u widgets", seen->len);
  g_assert_true (first != NULL);
  g_assert_true (saw_add);
  g_assert_true (saw_menu);
  g_assert_true (saw_channels);
  g_assert_true (saw_search);
  g_assert_true (saw_row);
  g_assert_true (saw_link);
}

static void
test_editor_template_error (void)
{
  GtkWidget *editor = tocsin_channel_editor_new (GTK_WINDOW (fx.window), fx.app);
  const char *error;
  GtkWidget *preview;

  gtk_window_set_default_size (GTK_WINDOW (editor), 620, 980);
  gtk_window_present (GTK_WINDOW (editor));
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "name", "Prod alerts");
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "title",
                                   "Alert on {{server_name}}");
  g_assert_null (tocsin_channel_editor_get_error (TOCSIN_CHANNEL_EDITOR (editor), "title"));
  /* The live preview renders the sample variables. */
  preview = find_widget (editor, GTK_TYPE_LABEL, "Alert on Production");
  g_assert_nonnull (preview);

  /* An unclosed expression: shown inline, saying where. */
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "body",
                                   "CPU at {{cpu_usage");
  error = tocsin_channel_editor_get_error (TOCSIN_CHANNEL_EDITOR (editor), "body");
  g_assert_nonnull (error);
  g_test_message ("template error: %s", error);
  g_assert_nonnull (strstr (error, "column"));
  g_assert_nonnull (find_widget (editor, GTK_TYPE_LABEL, error));

  tocsin_test_ui_save_unfocused_screenshot (editor, "ui-channel-editor-template-error.png");

  /* Fixing it clears the error. */
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "body", "CPU at {{cpu_usage}}%");
  g_assert_null (tocsin_channel_editor_get_error (TOCSIN_CHANNEL_EDITOR (editor), "body"));
  g_assert_nonnull (find_widget (editor, GTK_TYPE_LABEL, "CPU at 95%"));

  gtk_window_destroy (GTK_WINDOW (editor));
}

static void
test_subscribe_dialog (void)
{
  const char *subscribe_url = json_object_get_string_member (fx.channel, "subscribe_url");
  GtkWindow *dialog;
  GtkWidget *button;
  GtkWidget *entry_row;

  /* `tocsin <subscribe-url>` asks first: the dialog fetches the channel and names it. */
  tocsin_window_ask_subscribe (fx.window, subscribe_url);
  TOCSIN_WAIT_UNTIL ((dialog = tocsin_test_ui_find_toplevel
                                 (g_type_from_name ("TocsinSubscribeDialog"))) != NULL);
  button = find_widget (GTK_WIDGET (dialog), GTK_TYPE_BUTTON, "_Subscribe");
  g_assert_nonnull (button);
  TOCSIN_WAIT_UNTIL (gtk_widget_get_sensitive (button));
  g_assert_nonnull (find_widget (GTK_WIDGET (dialog), GTK_TYPE_LABEL, "Prod alerts"));

  /* A link that is not one says so, in words, and cannot be confirmed. */
  entry_row = find_widget (GTK_WIDGET (dialog), ADW_TYPE_ENTRY_ROW, NULL);
  g_assert_nonnull (entry_row);
  gtk_editable_set_text (GTK_EDITABLE (entry_row), "https://example.com/not-a-channel");
  g_assert_false (gtk_widget_get_sensitive (button));
  TOCSIN_WAIT_UNTIL (find_widget (GTK_WIDGET (dialog), GTK_TYPE_LABEL,
                                  "is not a subscribe link") != NULL);

  /* The right link again, confirm: already subscribed, so it is the same subscription. */
  gtk_editable_set_text (GTK_EDITABLE (entry_row), subscribe_url);
  TOCSIN_WAIT_UNTIL (gtk_widget_get_sensitive (button));
  gtk_widget_activate (button);
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_toplevel
                       (g_type_from_name ("TocsinSubscribeDialog")) == NULL);
  g_assert_cmpuint (g_list_model_get_n_items (tocsin_client_get_subscriptions (tocsin_application_get_client (fx.app))), ==, 1);
}

static void
test_preferences (void)
{
  g_autoptr(GSettings) settings = g_settings_new (APP_ID);
  GtkWindow *prefs;
  GtkWidget *sound_switch;
  GtkWidget *label;

  g_assert_true (g_settings_get_boolean (settings, "play-sound"));
  g_action_group_activate_action (G_ACTION_GROUP (fx.app), "preferences", NULL);
  TOCSIN_WAIT_UNTIL ((prefs = tocsin_test_ui_find_toplevel
                                (g_type_from_name ("TocsinPreferencesWindow"))) != NULL);
  tocsin_test_ui_wait_for_frames (GTK_WIDGET (prefs), 2);

  /* Switches are bound to GSettings: flipping one changes the setting. */
  label = find_widget (GTK_WIDGET (prefs), GTK_TYPE_LABEL, "Play a sound");
  g_assert_nonnull (label);
  sound_switch = find_widget (gtk_widget_get_ancestor (label, ADW_TYPE_ACTION_ROW), GTK_TYPE_SWITCH,
                              NULL);
  g_assert_nonnull (sound_switch);
  gtk_switch_set_active (GTK_SWITCH (sound_switch), FALSE);
  g_assert_false (g_settings_get_boolean (settings, "play-sound"));
  gtk_switch_set_active (GTK_SWITCH (sound_switch), TRUE);
  gtk_window_destroy (prefs);
}

static void
test_details_settings_shortcuts (void)
{
  TocsinRecordRow *row = row_with_title ("Alert on db1");
  GtkWindow *window;

  /* A row's "Details" shows the variables it received. */
  g_assert_nonnull (row);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (row), "record.details", NULL));
  TOCSIN_WAIT_UNTIL ((window = tocsin_test_ui_find_toplevel
                                 (g_type_from_name ("TocsinRecordDetails"))) != NULL);
  g_assert_nonnull (find_widget (GTK_WIDGET (window), GTK_TYPE_LABEL, "server"));
  g_assert_nonnull (find_widget (GTK_WIDGET (window), GTK_TYPE_LABEL, "db1"));
  g_assert_nonnull (find_widget (GTK_WIDGET (window), GTK_TYPE_LABEL, LINK_URL));
  gtk_window_destroy (window);

  /* Channel settings for the subscription: type and mute apply at once. */
  tocsin_window_show_channel (fx.window, tocsin_subscription_get_relay_url (fx.subscription),
                              tocsin_subscription_get_channel_id (fx.subscription));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.channel-settings", NULL));
  TOCSIN_WAIT_UNTIL ((window = tocsin_test_ui_find_toplevel
                                 (g_type_from_name ("TocsinSubscribeDialog"))) != NULL);
  {
    GtkWidget *label = find_widget (GTK_WIDGET (window), GTK_TYPE_LABEL, "Mute");
    GtkWidget *mute = find_widget (gtk_widget_get_ancestor (label, ADW_TYPE_ACTION_ROW),
                                   GTK_TYPE_SWITCH, NULL);

    g_assert_false (tocsin_subscription_get_muted (fx.subscription));
    gtk_switch_set_active (GTK_SWITCH (mute), TRUE);
    g_assert_true (tocsin_subscription_get_muted (fx.subscription));
    gtk_switch_set_active (GTK_SWITCH (mute), FALSE);
  }
  gtk_window_destroy (window);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.show-all", NULL));

  /* Ctrl+? shows the shortcuts window. */
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.show-help-overlay", NULL));
  TOCSIN_WAIT_UNTIL ((window = tocsin_test_ui_find_toplevel (GTK_TYPE_SHORTCUTS_WINDOW)) != NULL);
  gtk_widget_set_visible (GTK_WIDGET (window), FALSE);
}

static void
test_dark_mode (void)
{
  AdwStyleManager *style = adw_style_manager_get_default ();

  adw_style_manager_set_color_scheme (style, ADW_COLOR_SCHEME_FORCE_DARK);
  TOCSIN_WAIT_UNTIL (adw_style_manager_get_dark (style));
  tocsin_test_ui_save_unfocused_screenshot (GTK_WIDGET (fx.window), "ui-dark-mode.png");
  adw_style_manager_set_color_scheme (style, ADW_COLOR_SCHEME_DEFAULT);
}

static void
test_create_channel (void)
{
  GtkWidget *editor = tocsin_channel_editor_new (GTK_WINDOW (fx.window), fx.app);
  GtkWidget *relay_row;
  GtkWidget *webhook;
  g_autofree char *prefix = g_strdup_printf ("%s/t/", fx.relay->base_url);
  TocsinClient *client = tocsin_application_get_client (fx.app);

  gtk_window_set_default_size (GTK_WINDOW (editor), 620, 980);
  gtk_window_present (GTK_WINDOW (editor));
  relay_row = find_widget (editor, ADW_TYPE_ENTRY_ROW, NULL);
  g_assert_nonnull (relay_row);
  gtk_editable_set_text (GTK_EDITABLE (relay_row), fx.relay->base_url);
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "name", "Deploys");
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "title", "Deployed {{version}}");
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "sample", "{\"version\": \"1.2.3\"}");

  /* Create: the relay makes it, and the editor shows the webhook URL, the subscribe link and
   * curl lines that ring it. */
  g_assert_true (gtk_widget_activate_action (editor, "editor.save", NULL));
  TOCSIN_WAIT_UNTIL ((webhook = find_widget (editor, GTK_TYPE_LABEL, prefix)) != NULL
                     && gtk_widget_get_mapped (webhook));
  g_assert_nonnull (find_widget (editor, GTK_TYPE_LABEL, "/s/"));
  g_assert_nonnull (find_widget (editor, GTK_TYPE_LABEL, "curl -X POST -H 'Content-Type: application/json' -d '{\"version\":\"1.2.3\"}'"));
  g_assert_nonnull (find_widget (editor, GTK_TYPE_LABEL, "?version=1.2.3"));
  /* The email trigger's address, with its copy button (issue 14). */
  {
    GtkWidget *email = find_widget (editor, GTK_TYPE_LABEL, "@mail.test");
    GtkWidget *copy = email ? gtk_widget_get_next_sibling (email) : NULL;
    GdkClipboard *clipboard = gtk_widget_get_clipboard (editor);

    g_assert_nonnull (email);
    g_assert_cmpuint (strlen (gtk_label_get_text (GTK_LABEL (email))), ==,
                      32 + strlen ("@mail.test"));
    g_assert_true (GTK_IS_BUTTON (copy));
    g_assert_cmpstr (gtk_widget_get_tooltip_text (copy), ==, "Copy the email address");
    g_signal_emit_by_name (copy, "clicked");
    g_assert_true (gdk_clipboard_is_local (clipboard));
    {
      g_auto(GValue) value = G_VALUE_INIT;

      g_value_init (&value, G_TYPE_STRING);
      g_assert_true (gdk_content_provider_get_value (gdk_clipboard_get_content (clipboard),
                                                     &value, NULL));
      g_assert_cmpstr (g_value_get_string (&value), ==, gtk_label_get_text (GTK_LABEL (email)));
    }
  }
  tocsin_test_ui_save_unfocused_screenshot (editor, "ui-channel-created.png");

  /* The creator is subscribed to it. */
  TOCSIN_WAIT_UNTIL (g_list_model_get_n_items (tocsin_client_get_subscriptions (client)) == 2);
  gtk_window_destroy (GTK_WINDOW (editor));

  /* Its empty page says how to ring it, with the line to copy. */
  {
    g_autoptr(TocsinSubscription) deploys =
      g_list_model_get_item (tocsin_client_get_subscriptions (client), 1);
    GtkWidget *page = NULL;
    GtkWidget *curl = NULL;

    g_assert_cmpstr (tocsin_subscription_get_name (deploys), ==, "Deploys");
    tocsin_window_show_channel (fx.window, tocsin_subscription_get_relay_url (deploys),
                                tocsin_subscription_get_channel_id (deploys));
    TOCSIN_WAIT_UNTIL (g_strcmp0 (stack_page (), "empty") == 0
                       && (page = find_widget (GTK_WIDGET (fx.window), ADW_TYPE_STATUS_PAGE,
                                               NULL)) != NULL
                       && gtk_widget_get_mapped (page)
                       && (curl = find_widget (page, GTK_TYPE_LABEL, "curl ")) != NULL);
    g_assert_cmpstr (adw_status_page_get_title (ADW_STATUS_PAGE (page)), ==,
                     "Nothing From This Channel Yet");
    g_assert_nonnull (strstr (adw_status_page_get_description (ADW_STATUS_PAGE (page)),
                              "Ring the webhook of “Deploys”"));
    g_assert_nonnull (strstr (gtk_label_get_text (GTK_LABEL (curl)), prefix));
    tocsin_test_ui_save_unfocused_screenshot (GTK_WIDGET (fx.window),
                                              "ui-channel-waiting-curl.png");
    g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.show-all", NULL));
  }
}

static void
test_relay_offline (void)
{
  GtkWidget *window = GTK_WIDGET (fx.window);

  /* The relay goes away: the window says so, and when it will try again. */
  tocsin_test_relay_stop (fx.relay, FALSE);
  TOCSIN_WAIT_UNTIL (find_widget (window, GTK_TYPE_LABEL, "Offline, retrying in ") != NULL);
  /* Both the banner over the records and the channel's row in the sidebar. */
  {
    GtkWidget *label = find_widget (window, GTK_TYPE_LABEL, "Offline, retrying in ");
    const char *text = gtk_label_get_text (GTK_LABEL (label));

    g_test_message ("relay state: %s", text);
    g_assert_true (g_str_has_suffix (text, " s") || strstr (text, " s (") != NULL);
  }
  tocsin_test_ui_save_unfocused_screenshot (window, "ui-relay-offline.png");
}

static void
test_close_keeps_running (void)
{
  g_autoptr(GSettings) settings = g_settings_new (APP_ID);
  GtkWidget *toast_label;

  g_assert_true (g_settings_get_boolean (settings, "run-in-background"));
  g_assert_false (g_settings_get_boolean (settings, "first-close-toast-shown"));

  /* The first close explains, in a toast, why notifications keep coming. */
  g_object_add_weak_pointer (G_OBJECT (fx.window), (gpointer *) &fx.window);
  gtk_window_close (GTK_WINDOW (fx.window));
  g_assert_nonnull (fx.window);
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (fx.window)));
  g_assert_true (g_settings_get_boolean (settings, "first-close-toast-shown"));
  TOCSIN_WAIT_UNTIL ((toast_label = find_widget (GTK_WIDGET (fx.window), GTK_TYPE_LABEL,
                                                 "keeps running in the background")) != NULL);

  /* The second one closes; the app goes on, and comes back with its window. */
  gtk_window_close (GTK_WINDOW (fx.window));
  TOCSIN_WAIT_UNTIL (fx.window == NULL);
  g_assert_true (tocsin_client_get_started (tocsin_application_get_client (fx.app)));
  fx.window = TOCSIN_WINDOW (tocsin_application_present_window (fx.app));
  g_assert_nonnull (fx.window);
}

/* ---- setup ---------------------------------------------------------------------------- */

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  g_setenv ("XDG_DATA_DIRS", "/usr/share", TRUE);
  fx.tmpdir = tocsin_test_ui_setup (&argc, &argv, "tocsin-ui", 0);
  fx.launched_file = tocsin_test_ui_install_browser (fx.tmpdir);

  {
    /* Taking mail, so that the channel editor shows the email address. */
    const char *args[] = { "--smtp-listen=127.0.0.1:0", "--mail-domain=mail.test", NULL };

    fx.relay = tocsin_test_relay_start (NULL, args);
  }
  fx.channel = tocsin_test_relay_create_channel (fx.relay, "Prod alerts", "Alert on {{server}}",
                                                 "CPU at {{cpu}}%",
                                                 "{{link}}",
                                                 NULL);

  fx.app = tocsin_application_new ();
  g_application_register (G_APPLICATION (fx.app), NULL, &error);
  g_assert_no_error (error);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_started (tocsin_application_get_client (fx.app)));
  fx.window = TOCSIN_WINDOW (tocsin_application_present_window (fx.app));

  g_test_add_func ("/ui/window/empty-state", test_empty_state);
  g_test_add_func ("/ui/window/record-with-link", test_record_with_link);
  g_test_add_func ("/ui/window/open-link", test_open_link);
  g_test_add_func ("/ui/window/search", test_search);
  g_test_add_func ("/ui/window/keyboard-focus", test_keyboard_focus);
  g_test_add_func ("/ui/editor/template-error", test_editor_template_error);
  g_test_add_func ("/ui/window/dark-mode", test_dark_mode);
  g_test_add_func ("/ui/dialogs/subscribe", test_subscribe_dialog);
  g_test_add_func ("/ui/dialogs/preferences", test_preferences);
  g_test_add_func ("/ui/dialogs/details-settings-shortcuts", test_details_settings_shortcuts);
  g_test_add_func ("/ui/dialogs/create-channel", test_create_channel);
  /* Last: it stops the relay. */
  g_test_add_func ("/ui/relay/offline", test_relay_offline);
  g_test_add_func ("/ui/shutdown/close-keeps-running", test_close_keeps_running);
  status = g_test_run ();

  gtk_window_destroy (GTK_WINDOW (fx.window));
  tocsin_history_flush_sync (tocsin_application_get_history (fx.app));
  g_clear_object (&fx.subscription);
  g_clear_object (&fx.app);
  g_clear_pointer (&fx.channel, json_object_unref);
  g_clear_pointer (&fx.relay, tocsin_test_relay_free);
  tocsin_test_rmdir_recursive (fx.tmpdir);
  g_free (fx.tmpdir);
  g_free (fx.launched_file);
  return status;
}
