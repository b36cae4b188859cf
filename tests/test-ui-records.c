/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-ui-records.c: the records view as a user meets it, in the real window under Xvfb against
 * a real relay, with dbusmock's notification daemon: where new records appear (the "N new"
 * button, "Show" and search starting at the newest), how unread looks (a dot, a heavy title,
 * counts in the sidebar), Record Details, Markdown bodies, undo toasts, the offline banner with
 * Retry, the empty states, the subscribe dialog's focus, and the pop-ups naming their channel.
 * Links open in a test "browser" (XDG_DATA_HOME + mimeapps.list) that notes them. Screenshots at
 * 1400 and 360 px wide, light and dark, land in <build>/tests/screenshots/.
 */
#define G_LOG_DOMAIN "test-ui"

#include "config.h"

#include <glib/gstdio.h>
#include <adwaita.h>

#include "tocsin-application.h"
#include "tocsin-record-row.h"
#include "tocsin-test-notify.h"
#include "tocsin-test-relay.h"
#include "tocsin-test-ui.h"
#include "tocsin-window.h"

typedef struct
{
  char               *tmpdir;
  char               *launched_file; /* what the test browser was asked to open, a line each */
  TocsinTestRelay    *relay;
  JsonObject         *channel;
  JsonObject         *twin;          /* another channel whose messages have the same titles */
  TocsinApplication  *app;
  TocsinWindow       *window;
  TocsinSubscription *subscription;
  guint               rung;          /* messages rung so far on fx.channel */
} Fixture;

static Fixture fx;

/* ---- widgets -------------------------------------------------------------------------- */

/* A widget on screen with CSS class @css_class. */
static GtkWidget *
find_styled (GtkWidget  *root,
             const char *css_class)
{
  for (GtkWidget *child = gtk_widget_get_first_child (root); child;
       child = gtk_widget_get_next_sibling (child))
    {
      GtkWidget *found;

      if (!gtk_widget_get_mapped (child))
        continue;
      if (gtk_widget_has_css_class (child, css_class))
        return child;
      if ((found = find_styled (child, css_class)))
        return found;
    }
  return NULL;
}

static GtkScrolledWindow *
records_scroller (void)
{
  GtkWidget *view = GTK_WIDGET (tocsin_window_get_records_view (fx.window));

  return GTK_SCROLLED_WINDOW (gtk_widget_get_ancestor (view, GTK_TYPE_SCROLLED_WINDOW));
}

static double
scroll_position (void)
{
  return gtk_adjustment_get_value (gtk_scrolled_window_get_vadjustment (records_scroller ()));
}

/* The title of the record whose row is at the top of the view, as the user sees it. */
static const char *
top_title (void)
{
  GtkWidget *scroller = GTK_WIDGET (records_scroller ());
  g_autoptr(GPtrArray) rows = NULL;
  const char *best = NULL;
  double best_y = G_MAXDOUBLE;

  rows = tocsin_test_ui_record_rows (GTK_WIDGET (tocsin_window_get_records_view (fx.window)));
  for (guint i = 0; i < rows->len; i++)
    {
      GtkWidget *row = rows->pdata[i];
      TocsinRecord *record = tocsin_record_row_get_record (TOCSIN_RECORD_ROW (row));
      graphene_point_t point;

      if (!tocsin_record_get_loaded (record)
          || !gtk_widget_compute_point (row, scroller, &GRAPHENE_POINT_INIT (0, 0), &point))
        continue;
      /* The row whose top is nearest the view's top, not above it by more than half a row. */
      if (point.y + gtk_widget_get_height (row) / 2.0 > 0 && point.y < best_y)
        {
          best_y = point.y;
          best = tocsin_record_get_title (record);
        }
    }
  return best;
}

static gboolean
settled (void)
{
  TocsinRecordList *list = tocsin_window_get_record_list (fx.window);

  return !tocsin_record_list_get_loading (list);
}

/* ---- the relay ------------------------------------------------------------------------ */

static void
ring_channel (JsonObject *channel,
              const char *query)
{
  g_autofree char *path = g_strdup_printf ("/t/%s?%s",
                                           json_object_get_string_member (channel, "trigger_token"),
                                           query);

  g_assert_cmpuint (tocsin_test_http (fx.relay, "GET", path, NULL, NULL, 0, NULL, NULL, NULL),
                    ==, 200);
}

/* Rings fx.channel; the record is titled "Alert N". Returns N. */
static guint
ring (void)
{
  g_autofree char *query = g_strdup_printf ("n=%u", ++fx.rung);

  ring_channel (fx.channel, query);
  return fx.rung;
}

static guint
n_records (void)
{
  return g_list_model_get_n_items (G_LIST_MODEL (tocsin_window_get_record_list (fx.window)));
}

static void
resize (int width,
        int height)
{
  /* A new size is taken when the window is shown again (no window manager under Xvfb). The
   * widget is a little smaller than the window: GTK draws its frame inside. */
  g_test_message ("resizing to %dx%d", width, height);
  gtk_widget_set_visible (GTK_WIDGET (fx.window), FALSE);
  gtk_window_set_default_size (GTK_WINDOW (fx.window), width, height);
  gtk_window_present (GTK_WINDOW (fx.window));
  TOCSIN_WAIT_UNTIL (gtk_widget_get_mapped (GTK_WIDGET (fx.window))
                     && ABS (gtk_widget_get_width (GTK_WIDGET (fx.window)) - width) <= 12);
  tocsin_test_ui_wait_for_frames (GTK_WIDGET (fx.window), 3);
}

/* ---- tests: empty states -------------------------------------------------------------- */

static void
test_empty_states (void)
{
  GtkWidget *window = GTK_WIDGET (fx.window);
  GtkWidget *page;

  /* Before any subscription: what to do first. */
  TOCSIN_WAIT_UNTIL (settled ());
  TOCSIN_WAIT_UNTIL ((page = tocsin_test_ui_find_mapped_widget (window, ADW_TYPE_STATUS_PAGE,
                                                                NULL)) != NULL
                     && gtk_widget_get_mapped (page));
  g_assert_cmpstr (adw_status_page_get_title (ADW_STATUS_PAGE (page)), ==, "No Notifications Yet");
  g_assert_nonnull (tocsin_test_ui_find_mapped_widget (page, GTK_TYPE_BUTTON,
                                                       "Subscribe to a Channel"));

  /* Subscribed, nothing yet: it says it is waiting, and no longer offers to subscribe. */
  fx.subscription = tocsin_test_ui_subscribe (fx.app, fx.channel, TOCSIN_NOTIFY_TYPE_NORMAL);
  TOCSIN_WAIT_UNTIL ((page = tocsin_test_ui_find_mapped_widget (window, ADW_TYPE_STATUS_PAGE,
                                                                NULL)) != NULL
                     && g_strcmp0 (adw_status_page_get_title (ADW_STATUS_PAGE (page)),
                                   "Waiting for Notifications") == 0);
  g_assert_nonnull (strstr (adw_status_page_get_description (ADW_STATUS_PAGE (page)),
                            "as soon as a webhook rings"));
  g_assert_null (tocsin_test_ui_find_mapped_widget (page, GTK_TYPE_BUTTON,
                                                    "Subscribe to a Channel"));
  /* Every icon it shows is in the icon theme (mail-inbox-symbolic was not). */
  g_assert_true (gtk_icon_theme_has_icon (
                   gtk_icon_theme_get_for_display (gtk_widget_get_display (window)),
                                          adw_status_page_get_icon_name (ADW_STATUS_PAGE (page))));
  tocsin_test_ui_save_screenshot (window, "ui-records-waiting.png");
}

/* ---- tests: pop-ups ------------------------------------------------------------------- */

/* Two channels send "Alert 1": each pop-up's body names its channel first. */
static void
test_popups_name_channel (void)
{
  g_autoptr(TocsinSubscription) twin = tocsin_test_ui_subscribe (fx.app, fx.twin,
                                                                 TOCSIN_NOTIFY_TYPE_NORMAL);
  g_autoptr(GPtrArray) calls = NULL;
  TocsinTestNotifyCall *prod = NULL, *staging = NULL;
  const char *category = NULL;

  tocsin_test_notify_clear (NULL);
  ring ();
  ring_channel (fx.twin, "n=1");
  TOCSIN_WAIT_UNTIL (tocsin_test_notify_count (NULL, "Alert 1", NULL) == 2);
  calls = tocsin_test_notify_calls (NULL);
  for (guint i = 0; i < calls->len; i++)
    {
      TocsinTestNotifyCall *call = calls->pdata[i];

      if (g_strcmp0 (call->channel, "Prod alerts") == 0)
        prod = call;
      else if (g_strcmp0 (call->channel, "Staging alerts") == 0)
        staging = call;
    }
  g_assert_nonnull (prod);
  g_assert_nonnull (staging);
  g_assert_cmpstr (prod->summary, ==, "Alert 1");
  g_assert_cmpstr (staging->summary, ==, "Alert 1");
  g_assert_cmpstr (prod->text, ==, "Number 1");
  g_assert_true (g_variant_lookup (prod->hints, "category", "&s", &category));
  g_assert_cmpstr (category, !=, "im.received");

  tocsin_client_unsubscribe (tocsin_application_get_client (fx.app), twin);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.show-all", NULL));
}

static guint changed_count;

static void
on_record_changed (void)
{
  changed_count++;
}

/* "Mark as Read" on a pop-up: one database change, one withdrawal (it was two of each). */
static void
test_popup_mark_read_once (void)
{
  TocsinHistory *history = tocsin_application_get_history (fx.app);
  g_autofree char *title = NULL;
  TocsinRecordRow *row = NULL;
  guint32 id = 0;
  gulong handler;

  title = g_strdup_printf ("Alert %u", ring ());
  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, title)) != NULL);
  {
    g_autoptr(GPtrArray) calls = tocsin_test_notify_calls (NULL);

    for (guint i = 0; i < calls->len; i++)
      if (g_strcmp0 (((TocsinTestNotifyCall *) calls->pdata[i])->summary, title) == 0)
        id = ((TocsinTestNotifyCall *) calls->pdata[i])->id;
  }
  g_assert_cmpuint (id, !=, 0);

  changed_count = 0;
  handler = g_signal_connect (history, "record-changed", G_CALLBACK (on_record_changed), NULL);
  tocsin_test_notify_click (NULL, id, "mark-read");
  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, title)) != NULL
                     && tocsin_record_get_read (tocsin_record_row_get_record (row)));
  TOCSIN_WAIT_UNTIL (tocsin_test_notify_closed_count (NULL, id) == 1);
  tocsin_history_flush_sync (history);
  g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (changed_count, ==, 1);
  g_assert_cmpuint (tocsin_test_notify_closed_count (NULL, id), ==, 1);
  g_signal_handler_disconnect (history, handler);
}

/* "Open Link" on a pop-up reads the record, as opening it from the window does. */
static void
test_popup_open_link_reads (void)
{
  TocsinRecordRow *row = NULL;
  guint32 id = 0;

  ring_channel (fx.channel, "n=linked&link=https%3A%2F%2Fdashboard.example.com%2Fb%2F2");
  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, "Alert linked")) != NULL);
  g_assert_false (tocsin_record_get_read (tocsin_record_row_get_record (row)));
  {
    g_autoptr(GPtrArray) calls = tocsin_test_notify_calls (NULL);

    for (guint i = 0; i < calls->len; i++)
      if (g_strcmp0 (((TocsinTestNotifyCall *) calls->pdata[i])->summary, "Alert linked") == 0)
        id = ((TocsinTestNotifyCall *) calls->pdata[i])->id;
  }
  g_assert_cmpuint (id, !=, 0);
  tocsin_test_notify_click (NULL, id, "default");
  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, "Alert linked")) != NULL
                     && tocsin_record_get_read (tocsin_record_row_get_record (row))
                     && find_styled (GTK_WIDGET (row), "unread-dot") == NULL);
  TOCSIN_WAIT_UNTIL (tocsin_test_notify_closed_count (NULL, id) == 1);
}

/* ---- tests: unread -------------------------------------------------------------------- */

static int
title_weight (TocsinRecordRow *row)
{
  GtkWidget *title = find_styled (GTK_WIDGET (row), "record-title");
  const PangoFontDescription *font;

  g_assert_nonnull (title);
  font = pango_context_get_font_description (gtk_widget_get_pango_context (title));
  return pango_font_description_get_weight (font);
}

static GtkWidget *
find_badge_next_to (GtkWidget  *root,
                    const char *name)
{
  for (GtkWidget *child = gtk_widget_get_first_child (root); child;
       child = gtk_widget_get_next_sibling (child))
    {
      GtkWidget *found;

      if (!gtk_widget_get_mapped (child))
        continue;
      if (GTK_IS_LABEL (child) && g_strcmp0 (gtk_label_get_text (GTK_LABEL (child)), name) == 0
          && gtk_widget_get_parent (root) != NULL
          && (found = find_styled (gtk_widget_get_parent (root), "unread-badge")) != NULL)
        return found;
      if ((found = find_badge_next_to (child, name)))
        return found;
    }
  return NULL;
}

/* The unread count shown in the sidebar next to channel @name, if any. */
static GtkWidget *
sidebar_badge (const char *name)
{
  return find_badge_next_to (GTK_WIDGET (fx.window), name);
}

static void
test_unread_looks_unread (void)
{
  GtkWidget *badge;
  TocsinRecordRow *row = NULL;
  guint n = ring ();
  g_autofree char *title = g_strdup_printf ("Alert %u", n);
  g_autofree char *read_title = g_strdup_printf ("Alert %u", n - 1);

  /* Unread: a dot and a heavy title; read: no dot, a normal one. */
  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, title)) != NULL);
  TOCSIN_WAIT_UNTIL (find_styled (GTK_WIDGET (row), "unread-dot") != NULL);
  g_assert_cmpint (title_weight (row), >=, PANGO_WEIGHT_BOLD);
  row = tocsin_test_ui_row_with_title (fx.window, read_title);
  g_assert_nonnull (row);
  g_assert_true (tocsin_record_get_read (tocsin_record_row_get_record (row)));
  g_assert_null (find_styled (GTK_WIDGET (row), "unread-dot"));
  g_assert_cmpint (title_weight (row), ==, PANGO_WEIGHT_NORMAL);

  /* The sidebar counts the unread of each channel: Alert 1 and this one. */
  TOCSIN_WAIT_UNTIL ((badge = sidebar_badge ("Prod alerts")) != NULL
                     && g_strcmp0 (gtk_label_get_text (GTK_LABEL (badge)), "2") == 0);
  g_assert_cmpstr (gtk_widget_get_tooltip_text (badge), ==, "2 unread");
  tocsin_test_ui_save_screenshot (GTK_WIDGET (fx.window), "ui-records-unread.png");
}

/* ---- tests: where new records appear -------------------------------------------------- */

static void
test_new_records_at_top (void)
{
  GtkAdjustment *adjustment = gtk_scrolled_window_get_vadjustment (records_scroller ());
  GtkWidget *button;
  guint last = 0;
  g_autofree char *newest = NULL;
  guint before = n_records ();

  /* At the top, new records come in at the top, in view. */
  for (guint i = 0; i < 30; i++)
    last = ring ();
  newest = g_strdup_printf ("Alert %u", last);
  TOCSIN_WAIT_UNTIL (n_records () == before + 30
                     && tocsin_test_ui_row_with_title (fx.window, newest) != NULL);
  tocsin_test_ui_wait_for_frames (GTK_WIDGET (fx.window), 3);
  TOCSIN_WAIT_UNTIL (g_strcmp0 (top_title (), newest) == 0);
  g_assert_cmpfloat (scroll_position (), <, 1.0);
  g_assert_null (find_styled (GTK_WIDGET (fx.window), "new-records-button"));

  /* Scrolled down to read older ones: they stay where they are, and a button says how many
   * arrived above. */
  gtk_adjustment_set_value (adjustment, gtk_adjustment_get_upper (adjustment) / 2);
  tocsin_test_ui_wait_for_frames (GTK_WIDGET (fx.window), 3);
  {
    double position = scroll_position ();
    g_autofree char *looking_at = g_strdup (top_title ());

    g_assert_cmpfloat (position, >, 1.0);
    ring ();
    ring ();
    last = ring ();
    g_free (newest);
    newest = g_strdup_printf ("Alert %u", last);
    TOCSIN_WAIT_UNTIL ((button = find_styled (GTK_WIDGET (fx.window), "new-records-button")) != NULL
                       && tocsin_test_ui_find_mapped_widget (button, GTK_TYPE_LABEL,
                                                             "3 new") != NULL);
    tocsin_test_ui_wait_for_frames (GTK_WIDGET (fx.window), 3);
    g_assert_cmpstr (top_title (), ==, looking_at);
    tocsin_test_ui_save_screenshot (GTK_WIDGET (fx.window), "ui-records-new-button.png");

    /* The button takes them to the newest and goes away. */
    g_signal_emit_by_name (button, "clicked");
    TOCSIN_WAIT_UNTIL (scroll_position () < 1.0 && g_strcmp0 (top_title (), newest) == 0);
    g_assert_null (find_styled (GTK_WIDGET (fx.window), "new-records-button"));
  }
}

static void
test_show_and_search_start_at_newest (void)
{
  GtkAdjustment *adjustment = gtk_scrolled_window_get_vadjustment (records_scroller ());
  GtkWidget *entry;
  g_autofree char *newest = g_strdup_printf ("Alert %u", fx.rung);

  /* "Show" on a summary pop-up (the notifier's "show-channel"): the newest of that channel. */
  gtk_adjustment_set_value (adjustment, gtk_adjustment_get_upper (adjustment) / 2);
  tocsin_test_ui_wait_for_frames (GTK_WIDGET (fx.window), 2);
  g_assert_cmpfloat (scroll_position (), >, 1.0);
  g_signal_emit_by_name (tocsin_client_get_notifier (tocsin_application_get_client (fx.app)),
                         "show-channel", tocsin_subscription_get_relay_url (fx.subscription),
                         tocsin_subscription_get_channel_id (fx.subscription));
  TOCSIN_WAIT_UNTIL (settled () && scroll_position () < 1.0
                     && g_strcmp0 (top_title (), newest) == 0);

  /* Search results start at their top. */
  gtk_adjustment_set_value (adjustment, gtk_adjustment_get_upper (adjustment) / 2);
  tocsin_test_ui_wait_for_frames (GTK_WIDGET (fx.window), 2);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.search", NULL));
  entry = tocsin_test_ui_find_mapped_widget (GTK_WIDGET (fx.window), GTK_TYPE_SEARCH_ENTRY, NULL);
  gtk_editable_set_text (GTK_EDITABLE (entry), "Number");
  TOCSIN_WAIT_UNTIL (settled () && n_records () > 0 && scroll_position () < 1.0
                     && g_strcmp0 (top_title (), newest) == 0);
  g_signal_emit_by_name (entry, "stop-search");
  TOCSIN_WAIT_UNTIL (settled () && scroll_position () < 1.0);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.show-all", NULL));
}

/* ---- tests: details ------------------------------------------------------------------- */

/* The AdwActionRow titled exactly @title. */
static GtkWidget *
row_titled (GtkWidget  *root,
            const char *title)
{
  for (GtkWidget *child = gtk_widget_get_first_child (root); child;
       child = gtk_widget_get_next_sibling (child))
    {
      GtkWidget *found;

      if (ADW_IS_ACTION_ROW (child)
          && g_strcmp0 (adw_preferences_row_get_title (ADW_PREFERENCES_ROW (child)), title) == 0)
        return child;
      if ((found = row_titled (child, title)))
        return found;
    }
  return NULL;
}

static void
test_details (void)
{
  TocsinRecordRow *row = NULL;
  GtkWindow *details;
  GtkWidget *channel_row, *link_row, *received_row, *copy;
  GdkClipboard *clipboard;
  g_autofree char *copied = NULL;

  ring_channel (fx.channel, "n=link&link=https%3A%2F%2Fdashboard.example.com%2Fa%2F1");
  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, "Alert link")) != NULL);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (row), "record.details", NULL));
  TOCSIN_WAIT_UNTIL ((details = tocsin_test_ui_find_toplevel
                                  (g_type_from_name ("TocsinRecordDetails"))) != NULL);
  gtk_window_set_default_size (details, 520, 900);
  tocsin_test_ui_wait_for_frames (GTK_WIDGET (details), 2);

  /* Values under their labels. */
  channel_row = tocsin_test_ui_find_mapped_widget (GTK_WIDGET (details), ADW_TYPE_ACTION_ROW,
                                                   "Channel");
  g_assert_nonnull (channel_row);
  g_assert_cmpstr (adw_action_row_get_subtitle (ADW_ACTION_ROW (channel_row)), ==, "Prod alerts");
  /* The date in words, with the year; not C's "%c" ("Sun Dec  6 13:05:00 2026"). */
  received_row = tocsin_test_ui_find_mapped_widget (GTK_WIDGET (details), ADW_TYPE_ACTION_ROW,
                                                    "Received");
  {
    g_autoptr(GDateTime) now = g_date_time_new_now_local ();
    g_autofree char *year = g_strdup_printf ("%d", g_date_time_get_year (now));
    g_autofree char *month = g_date_time_format (now, "%B");
    const char *when = adw_action_row_get_subtitle (ADW_ACTION_ROW (received_row));

    g_test_message ("received: “%s”", when);
    g_assert_false (g_ascii_isspace (when[0]));
    g_assert_nonnull (strstr (when, year));
    g_assert_nonnull (strstr (when, month));
  }
  /* A variable, by name. */
  g_assert_cmpstr (adw_action_row_get_subtitle (ADW_ACTION_ROW (row_titled (GTK_WIDGET (details),
                                                                            "n"))), ==, "link");

  /* Copy: the value lands on the clipboard, and a toast says so. */
  copy = tocsin_test_ui_find_mapped_widget (channel_row, GTK_TYPE_BUTTON, NULL);
  g_assert_nonnull (copy);
  g_assert_cmpstr (gtk_widget_get_tooltip_text (copy), ==, "Copy Channel");
  g_signal_emit_by_name (copy, "clicked");
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_mapped_widget (GTK_WIDGET (details), GTK_TYPE_LABEL,
                                                        "Copied") != NULL);
  clipboard = gtk_widget_get_clipboard (copy);
  {
    g_autoptr(GAsyncResult) result = NULL;

    gdk_clipboard_read_text_async (clipboard, NULL, tocsin_test_ui_async_done, &result);
    TOCSIN_WAIT_UNTIL (result != NULL);
    copied = gdk_clipboard_read_text_finish (clipboard, result, NULL);
  }
  g_assert_cmpstr (copied, ==, "Prod alerts");

  /* The link is a row that opens it (and so reads the record). */
  link_row = tocsin_test_ui_find_mapped_widget (GTK_WIDGET (details), ADW_TYPE_ACTION_ROW, "Link");
  g_assert_nonnull (link_row);
  g_assert_cmpstr (adw_action_row_get_subtitle (ADW_ACTION_ROW (link_row)), ==,
                   "https://dashboard.example.com/a/1");
  g_assert_true (gtk_list_box_row_get_activatable (GTK_LIST_BOX_ROW (link_row)));
  tocsin_test_ui_save_screenshot (GTK_WIDGET (details), "ui-record-details.png");
  gtk_window_destroy (details);
}

/* ---- tests: Markdown ------------------------------------------------------------------ */

#define MARKDOWN_BODY \
  "**db-1** is *down* since `04:00` <b>raw</b>\n\n" \
  "- see the [dashboard](https://dash.example.com/d/1?h=db-1&range=1h)\n" \
  "- not [this](javascript:alert(1))\n\n" \
  "![graph](https://img.example.com/g.png)"
#define MARKDOWN_LINK "https://dash.example.com/d/1?h=db-1&range=1h"

/* TRUE if @label's layout gives a bold weight to the bytes of its text where @word is. */
static gboolean
label_has_bold (GtkWidget  *label,
                const char *word)
{
  PangoLayout *layout = gtk_label_get_layout (GTK_LABEL (label));
  const char *text = pango_layout_get_text (layout);
  const char *at = strstr (text, word);
  PangoAttrList *attrs = pango_layout_get_attributes (layout);
  g_autoptr(PangoAttrIterator) iter = NULL;

  if (at == NULL || attrs == NULL)
    return FALSE;
  iter = pango_attr_list_get_iterator (attrs);
  do
    {
      int start, end;
      PangoAttribute *weight;

      pango_attr_iterator_range (iter, &start, &end);
      weight = pango_attr_iterator_get (iter, PANGO_ATTR_WEIGHT);
      if (weight && start <= at - text && end >= at - text + (int) strlen (word)
          && ((PangoAttrInt *) weight)->value >= PANGO_WEIGHT_BOLD)
        return TRUE;
    }
  while (pango_attr_iterator_next (iter));
  return FALSE;
}

/* Asserts what a person sees of MARKDOWN_BODY in @label: formatted, no Markdown syntax left,
 * the raw HTML as text, the image as its alt text, one link and only the http(s) one. */
static void
assert_markdown_shown (GtkWidget *label)
{
  const char *shown = gtk_label_get_text (GTK_LABEL (label));
  const char *markup = gtk_label_get_label (GTK_LABEL (label));

  g_test_message ("shown: “%s”", shown);
  g_test_message ("markup: “%s”", markup);
  g_assert_true (gtk_label_get_use_markup (GTK_LABEL (label)));
  g_assert_nonnull (strstr (shown, "db-1 is down since 04:00 <b>raw</b>"));
  g_assert_nonnull (strstr (shown, "• see the dashboard"));
  g_assert_nonnull (strstr (shown, "• not this"));
  g_assert_nonnull (strstr (shown, "graph"));
  g_assert_null (strstr (shown, "**"));
  g_assert_null (strstr (shown, "`"));
  g_assert_null (strstr (shown, "]("));
  g_assert_true (label_has_bold (label, "db-1"));
  g_assert_nonnull (strstr (markup,
                            "<a href=\"https://dash.example.com/d/1?h=db-1&amp;range=1h\">"
                            "dashboard</a>"));
  g_assert_null (strstr (markup, "javascript"));
  g_assert_null (strstr (markup, "img.example.com"));
}

/* Whether the test browser was asked to open @uri (other tests' pop-ups open links too). */
static gboolean
launched (const char *uri)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;

  if (!g_file_get_contents (fx.launched_file, &text, NULL, NULL))
    return FALSE;
  lines = g_strsplit (text, "\n", -1);
  return g_strv_contains ((const char * const *) lines, uri);
}

/* A record whose sender said its body is Markdown, in the records view and in its details. The
 * relay half (ntfy's "Markdown: yes" and the rest) is issue 13's other items: this record goes
 * into the app's history the way the client stores a received message. */
static void
test_markdown (void)
{
  TocsinHistory *history = tocsin_application_get_history (fx.app);
  g_autoptr(TocsinMessage) message = tocsin_message_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(TocsinRecord) stored = NULL;
  g_autoptr(GError) error = NULL;
  TocsinRecordRow *row = NULL;
  GtkWidget *body, *details_body;
  GtkWindow *details;
  gboolean handled = FALSE;

  /* A channel of its own, so the subscription's cursor stays where the relay put it. */
  message->id = 1;
  message->channel = 9999;
  message->channel_name = g_strdup ("Markdown alerts");
  message->time_ms = g_get_real_time () / 1000;
  g_free (message->title);
  message->title = g_strdup ("Markdown record");
  g_free (message->body);
  message->body = g_strdup (MARKDOWN_BODY);
  message->markdown = TRUE;
  tocsin_history_store_message_async (history, tocsin_subscription_get_relay_url (fx.subscription),
                                      message, NULL, tocsin_test_ui_async_done, &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  stored = tocsin_history_store_message_finish (history, result, NULL, &error);
  g_assert_no_error (error);

  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, "Markdown record")) != NULL);
  body = tocsin_record_row_get_body_label (row);
  TOCSIN_WAIT_UNTIL (gtk_widget_get_mapped (body));
  assert_markdown_shown (body);
  tocsin_test_ui_save_screenshot (GTK_WIDGET (fx.window), "ui-records-markdown.png");

  /* Its link is a link: a click opens it in the browser and reads the record. */
  g_assert_false (tocsin_record_get_read (tocsin_record_row_get_record (row)));
  g_signal_emit_by_name (body, "activate-link", MARKDOWN_LINK, &handled);
  g_assert_true (handled);
  TOCSIN_WAIT_UNTIL (launched (MARKDOWN_LINK));
  g_unlink (fx.launched_file);
  TOCSIN_WAIT_UNTIL ((row = tocsin_test_ui_row_with_title (fx.window, "Markdown record")) != NULL
                     && tocsin_record_get_read (tocsin_record_row_get_record (row)));

  /* Record Details renders it too, and its copy button copies the Markdown as sent. */
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (row), "record.details", NULL));
  TOCSIN_WAIT_UNTIL ((details = tocsin_test_ui_find_toplevel
                                  (g_type_from_name ("TocsinRecordDetails"))) != NULL);
  gtk_window_set_default_size (details, 520, 900);
  tocsin_test_ui_wait_for_frames (GTK_WIDGET (details), 2);
  details_body = find_styled (GTK_WIDGET (details), "record-markdown");
  g_assert_nonnull (details_body);
  assert_markdown_shown (details_body);
  tocsin_test_ui_save_screenshot (GTK_WIDGET (details), "ui-record-details-markdown.png");
  {
    GtkWidget *body_row = gtk_widget_get_ancestor (details_body, ADW_TYPE_PREFERENCES_ROW);
    GtkWidget *copy = tocsin_test_ui_find_mapped_widget (body_row, GTK_TYPE_BUTTON, NULL);
    g_autoptr(GAsyncResult) read = NULL;
    g_autofree char *copied = NULL;
    GdkClipboard *clipboard = gtk_widget_get_clipboard (copy);

    g_assert_cmpstr (adw_preferences_row_get_title (ADW_PREFERENCES_ROW (body_row)), ==, "Body");
    g_assert_cmpstr (gtk_widget_get_tooltip_text (copy), ==, "Copy Body");
    g_signal_emit_by_name (copy, "clicked");
    gdk_clipboard_read_text_async (clipboard, NULL, tocsin_test_ui_async_done, &read);
    TOCSIN_WAIT_UNTIL (read != NULL);
    copied = gdk_clipboard_read_text_finish (clipboard, read, NULL);
    g_assert_cmpstr (copied, ==, MARKDOWN_BODY);
  }
  handled = FALSE;
  g_signal_emit_by_name (details_body, "activate-link", MARKDOWN_LINK, &handled);
  g_assert_true (handled);
  TOCSIN_WAIT_UNTIL (launched (MARKDOWN_LINK));
  gtk_window_destroy (details);
}

/* ---- tests: undo ---------------------------------------------------------------------- */

/* Presses the button of the toast whose title contains @title. */
static void
press_toast_button (const char *title,
                    const char *button_label)
{
  GtkWidget *label = NULL, *toast_widget, *button;

  TOCSIN_WAIT_UNTIL ((label = tocsin_test_ui_find_mapped_widget (GTK_WIDGET (fx.window),
                                                                 GTK_TYPE_LABEL, title)) != NULL
                     && gtk_widget_get_mapped (label));
  toast_widget = gtk_widget_get_ancestor (label, g_type_from_name ("AdwToastWidget"));
  g_assert_nonnull (toast_widget);
  button = tocsin_test_ui_find_mapped_widget (toast_widget, GTK_TYPE_BUTTON, button_label);
  g_assert_nonnull (button);
  g_signal_emit_by_name (button, "clicked");
}

static gboolean
row_unread (const char *title)
{
  TocsinRecordRow *row = tocsin_test_ui_row_with_title (fx.window, title);

  return row != NULL && !tocsin_record_get_read (tocsin_record_row_get_record (row));
}

static void
test_undo (void)
{
  TocsinRecordList *list = tocsin_window_get_record_list (fx.window);
  TocsinRecordRow *row = NULL;
  g_autofree char *title = g_strdup_printf ("Alert %u", fx.rung);
  guint before;

  TOCSIN_WAIT_UNTIL (settled ()
                     && (row = tocsin_test_ui_row_with_title (fx.window, title)) != NULL);
  before = n_records ();

  /* Delete, at once, with Undo on the toast; Undo brings it back. */
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (row), "record.delete", NULL));
  TOCSIN_WAIT_UNTIL (n_records () == before - 1
                     && tocsin_test_ui_row_with_title (fx.window, title) == NULL);
  g_assert_null (tocsin_test_ui_find_toplevel (ADW_TYPE_MESSAGE_DIALOG));
  tocsin_test_ui_save_screenshot (GTK_WIDGET (fx.window), "ui-records-undo-toast.png");
  press_toast_button ("Record deleted", "Undo");
  TOCSIN_WAIT_UNTIL (settled () && n_records () == before
                     && tocsin_test_ui_row_with_title (fx.window, title) != NULL);

  /* Mark all as read: no question, a toast; Undo makes them unread again. */
  g_assert_true (row_unread (title));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.mark-all-read", NULL));
  g_assert_null (tocsin_test_ui_find_toplevel (ADW_TYPE_MESSAGE_DIALOG));
  TOCSIN_WAIT_UNTIL (settled () && (row = tocsin_test_ui_row_with_title (fx.window, title)) != NULL
                     && !row_unread (title));
  press_toast_button ("Marked as read", "Undo");
  TOCSIN_WAIT_UNTIL (settled () && row_unread (title));

  /* Clear the channel: a toast where there was none; Undo restores every record. */
  tocsin_window_show_channel (fx.window, tocsin_subscription_get_relay_url (fx.subscription),
                              tocsin_subscription_get_channel_id (fx.subscription));
  TOCSIN_WAIT_UNTIL (settled ()
                     && tocsin_record_list_get_channel_id (list)
                        == tocsin_subscription_get_channel_id (fx.subscription)
                     && tocsin_test_ui_row_with_title (fx.window, title) != NULL);
  before = n_records ();
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.clear-channel", NULL));
  TOCSIN_WAIT_UNTIL (settled () && n_records () == 0);
  tocsin_test_ui_save_screenshot (GTK_WIDGET (fx.window), "ui-records-cleared-toast.png");
  press_toast_button ("“Prod alerts” cleared", "Undo");
  TOCSIN_WAIT_UNTIL (settled () && n_records () == before
                     && tocsin_test_ui_row_with_title (fx.window, title) != NULL);
  g_assert_true (row_unread (title));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.show-all", NULL));
}

/* "Show only unread" with nothing unread: all caught up, not "no match". */
static void
test_all_caught_up (void)
{
  GtkWidget *page = NULL;
  g_autofree char *title = g_strdup_printf ("Alert %u", fx.rung);

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.mark-all-read", NULL));
  TOCSIN_WAIT_UNTIL (settled () && tocsin_test_ui_row_with_title (fx.window, title) != NULL
                     && !row_unread (title));
  g_object_set (fx.window, "unread-only", TRUE, NULL);
  TOCSIN_WAIT_UNTIL (settled () && n_records () == 0
                     && (page = tocsin_test_ui_find_mapped_widget (GTK_WIDGET (fx.window),
                                                                   ADW_TYPE_STATUS_PAGE,
                                                                   NULL)) != NULL
                     && gtk_widget_get_mapped (page));
  g_assert_cmpstr (adw_status_page_get_title (ADW_STATUS_PAGE (page)), ==, "All Caught Up");
  g_assert_null (strstr (adw_status_page_get_description (ADW_STATUS_PAGE (page)), "other words"));
  g_object_set (fx.window, "unread-only", FALSE, NULL);
  TOCSIN_WAIT_UNTIL (settled () && n_records () > 0);
}

/* ---- tests: dialogs ------------------------------------------------------------------- */

static void
test_subscribe_dialog_focus (void)
{
  GtkWindow *dialog = NULL;
  GtkWidget *focus;

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.subscribe", NULL));
  TOCSIN_WAIT_UNTIL ((dialog = tocsin_test_ui_find_toplevel
                                 (g_type_from_name ("TocsinSubscribeDialog"))) != NULL);
  tocsin_test_ui_wait_for_frames (GTK_WIDGET (dialog), 2);
  focus = gtk_root_get_focus (GTK_ROOT (dialog));
  g_assert_nonnull (focus);
  /* Typing goes into the link field. */
  g_assert_nonnull (gtk_widget_get_ancestor (focus, ADW_TYPE_ENTRY_ROW));
  gtk_window_destroy (dialog);
}

/* ---- tests: looks --------------------------------------------------------------------- */

static void
test_screenshots (void)
{
  AdwStyleManager *style = adw_style_manager_get_default ();
  GtkWidget *window = GTK_WIDGET (fx.window);
  GtkWidget *title;

  /* 1,400 px, or as wide as the screen allows (GTK keeps a window within its monitor; the
   * suite's usual Xvfb screen is 1280 wide). */
  {
    GdkSurface *surface = gtk_native_get_surface (GTK_NATIVE (window));
    GdkMonitor *monitor = gdk_display_get_monitor_at_surface (gtk_widget_get_display (window),
                                                              surface);
    GdkRectangle geometry;

    gdk_monitor_get_geometry (monitor, &geometry);
    resize (MIN (1400, geometry.width), MIN (800, geometry.height - 40));
  }
  tocsin_test_ui_save_screenshot (window, "ui-records-wide-light.png");
  /* Lines stay readable: the list is clamped, not 1,400 px wide. */
  g_assert_cmpint (gtk_widget_get_width (GTK_WIDGET (tocsin_window_get_records_view (fx.window))),
                   <=, 760);
  adw_style_manager_set_color_scheme (style, ADW_COLOR_SCHEME_FORCE_DARK);
  TOCSIN_WAIT_UNTIL (adw_style_manager_get_dark (style));
  tocsin_test_ui_save_screenshot (window, "ui-records-wide-dark.png");

  /* A phone: the records page alone; its title fits. */
  resize (360, 720);
  tocsin_window_show_channel (fx.window, tocsin_subscription_get_relay_url (fx.subscription),
                              tocsin_subscription_get_channel_id (fx.subscription));
  tocsin_test_ui_wait_for_frames (window, 3);
  tocsin_test_ui_save_screenshot (window, "ui-records-360-dark.png");
  adw_style_manager_set_color_scheme (style, ADW_COLOR_SCHEME_FORCE_LIGHT);
  TOCSIN_WAIT_UNTIL (!adw_style_manager_get_dark (style));
  tocsin_test_ui_save_screenshot (window, "ui-records-360-light.png");
  title = tocsin_test_ui_find_mapped_widget (window, ADW_TYPE_WINDOW_TITLE, NULL);
  g_assert_nonnull (title);
  g_assert_cmpstr (adw_window_title_get_title (ADW_WINDOW_TITLE (title)), ==, "Prod alerts");
  title = tocsin_test_ui_find_mapped_widget (title, GTK_TYPE_LABEL, "Prod alerts");
  g_assert_nonnull (title);
  {
    PangoLayout *layout = gtk_label_get_layout (GTK_LABEL (title));

    /* Not ellipsized to "Pro…". */
    g_assert_false (pango_layout_is_ellipsized (layout));
  }
  adw_style_manager_set_color_scheme (style, ADW_COLOR_SCHEME_DEFAULT);
  g_assert_true (gtk_widget_activate_action (window, "win.show-all", NULL));
  resize (900, 700);
}

/* ---- tests: offline ------------------------------------------------------------------- */

/* When the connection starts an attempt (state CONNECTING), on the monotonic clock. */
static void
note_attempt (gint64     *tried,
              GParamSpec *pspec,
              GObject    *connection)
{
  TocsinConnectionState state = tocsin_connection_get_state (TOCSIN_CONNECTION (connection));

  if (*tried == 0 && state == TOCSIN_CONNECTION_CONNECTING)
    *tried = g_get_monotonic_time ();
}

static void
test_offline_banner (void)
{
  GtkWidget *window = GTK_WIDGET (fx.window);
  GtkWidget *banner = NULL, *retry;
  TocsinConnection *connection;

  tocsin_test_relay_stop (fx.relay, FALSE);
  TOCSIN_WAIT_UNTIL ((banner = find_styled (window, "relay-banner")) != NULL
                     && gtk_widget_get_mapped (banner)
                     && tocsin_test_ui_find_mapped_widget (banner, GTK_TYPE_LABEL,
                                                           "Offline, retrying in ") != NULL);
  retry = tocsin_test_ui_find_mapped_widget (banner, GTK_TYPE_BUTTON, "Retry");
  g_assert_nonnull (retry);
  /* The header does not look connected. */
  g_assert_nonnull (tocsin_test_ui_find_mapped_widget (window, GTK_TYPE_LABEL, "Offline"));
  tocsin_test_ui_save_screenshot (window, "ui-records-offline-banner.png");

  /* Retry tries now, well before the timer would have. */
  connection = tocsin_client_get_connection (tocsin_application_get_client (fx.app),
                                             tocsin_subscription_get_relay_url (fx.subscription));
  TOCSIN_WAIT_UNTIL (tocsin_connection_get_state (connection) == TOCSIN_CONNECTION_WAITING
                     && tocsin_connection_get_retry_seconds (connection) >= 4);
  {
    gint64 timer = tocsin_connection_get_retry_time (connection);
    gint64 tried = 0;
    gulong handler = g_signal_connect_swapped (connection, "notify::state",
                                               G_CALLBACK (note_attempt), &tried);

    g_assert_true (gtk_widget_get_sensitive (retry));
    g_signal_emit_by_name (retry, "clicked");
    TOCSIN_WAIT_UNTIL (tried != 0);
    g_assert_cmpint (tried, <, timer);
    g_signal_handler_disconnect (connection, handler);
  }
  /* Still offline, and still saying so. */
  TOCSIN_WAIT_UNTIL (tocsin_connection_get_state (connection) == TOCSIN_CONNECTION_WAITING);
  g_assert_true (gtk_widget_get_mapped (banner));
}

/* ---- setup ---------------------------------------------------------------------------- */

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  fx.tmpdir = tocsin_test_ui_setup (&argc, &argv, "tocsin-ui-records",
                                    TOCSIN_TEST_UI_NEEDS_NOTIFY_DAEMON);
  fx.launched_file = tocsin_test_ui_install_browser (fx.tmpdir);

  {
    /* 30 records at once, more than the default burst. */
    const char *args[] = { "--rate=100000", "--burst=100000", NULL };

    fx.relay = tocsin_test_relay_start (NULL, args);
  }
  fx.channel = tocsin_test_relay_create_channel (fx.relay, "Prod alerts", "Alert {{n}}",
                                                 "Number {{n}}", "{{link}}", NULL);
  fx.twin = tocsin_test_relay_create_channel (fx.relay, "Staging alerts", "Alert {{n}}",
                                              "Number {{n}}", NULL, NULL);

  fx.app = tocsin_application_new ();
  g_application_register (G_APPLICATION (fx.app), NULL, &error);
  g_assert_no_error (error);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_started (tocsin_application_get_client (fx.app)));
  fx.window = TOCSIN_WINDOW (tocsin_application_present_window (fx.app));
  gtk_window_set_default_size (GTK_WINDOW (fx.window), 900, 700);

  g_test_add_func ("/ui/records/empty-states", test_empty_states);
  g_test_add_func ("/ui/records/popups-name-channel", test_popups_name_channel);
  g_test_add_func ("/ui/records/popup-mark-read-once", test_popup_mark_read_once);
  g_test_add_func ("/ui/records/popup-open-link-reads", test_popup_open_link_reads);
  g_test_add_func ("/ui/records/unread", test_unread_looks_unread);
  g_test_add_func ("/ui/records/new-records-at-top", test_new_records_at_top);
  g_test_add_func ("/ui/records/show-and-search-start-at-newest",
                   test_show_and_search_start_at_newest);
  g_test_add_func ("/ui/records/details", test_details);
  g_test_add_func ("/ui/records/markdown", test_markdown);
  g_test_add_func ("/ui/records/undo", test_undo);
  g_test_add_func ("/ui/records/all-caught-up", test_all_caught_up);
  g_test_add_func ("/ui/records/subscribe-dialog-focus", test_subscribe_dialog_focus);
  g_test_add_func ("/ui/records/screenshots", test_screenshots);
  /* Last: it stops the relay. */
  g_test_add_func ("/ui/records/offline-banner", test_offline_banner);
  status = g_test_run ();

  gtk_window_destroy (GTK_WINDOW (fx.window));
  tocsin_history_flush_sync (tocsin_application_get_history (fx.app));
  g_clear_object (&fx.subscription);
  g_clear_object (&fx.app);
  g_clear_pointer (&fx.channel, json_object_unref);
  g_clear_pointer (&fx.twin, json_object_unref);
  g_clear_pointer (&fx.relay, tocsin_test_relay_free);
  tocsin_test_rmdir_recursive (fx.tmpdir);
  g_free (fx.tmpdir);
  g_free (fx.launched_file);
  return status;
}
