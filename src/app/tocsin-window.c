/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-window"

#include "config.h"

#include <glib/gi18n.h>

#include "tocsin-a11y.h"
#include "tocsin-channel-editor.h"
#include "tocsin-deliveries-window.h"
#include "tocsin-record-details.h"
#include "tocsin-record-row.h"
#include "tocsin-subscribe-dialog.h"
#include "tocsin-window.h"

struct _TocsinWindow
{
  AdwApplicationWindow parent_instance;

  /* template widgets */
  AdwToastOverlay *toast_overlay;
  AdwLeaflet      *leaflet;
  GtkListView     *channel_view;
  AdwWindowTitle  *content_title;
  GtkToggleButton *search_button;
  GtkSearchBar    *search_bar;
  GtkSearchEntry  *search_entry;
  GtkRevealer     *relay_revealer;
  GtkLabel        *relay_state_label;
  GtkRevealer     *storage_revealer;
  GtkLabel        *storage_label;
  GtkStack        *records_stack;
  GtkListView     *records_view;
  GtkScrolledWindow *records_scroller;
  GtkButton       *new_button;
  GtkLabel        *new_label;
  AdwStatusPage   *no_results_page;
  AdwStatusPage   *empty_page;
  GtkWidget       *empty_subscribe_button;
  GtkWidget       *empty_create_button;
  GtkWidget       *empty_curl_box;
  GtkLabel        *empty_curl_label;

  /* borrowed */
  TocsinApplication *app;
  TocsinClient      *client;

  /* owned */
  GSettings          *settings;
  TocsinRecordList   *records;
  GtkSingleSelection *channel_selection;
  GListStore         *all_store;      /* holds the "All channels" marker */
  GObject            *all_marker;
  GSimpleAction      *clock;          /* activated every second while a relay is offline: rows
                                       * showing "retrying in 8 s" listen to its "activate" */
  guint               clock_id;
  gint64              scroll_to_id;   /* a record to bring into view once its page is loaded */
  guint               scroll_tries;
  guint               scroll_id;
  guint               new_count;      /* records that arrived above while scrolled down */
  guint               top_id;         /* pending scroll to the newest */
  gboolean            reloaded;       /* the list was just refilled */
  gboolean            want_top;       /* the user changed what it shows: start at the newest */
  GHashTable         *unread;         /* "relay\nchannel" ("" for all) → unread count */
  guint               unread_id;      /* pending recount */
  GCancellable       *cancellable;
  GtkFileChooserNative *export_chooser;
};

enum {
  PROP_0,
  PROP_UNREAD_ONLY,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (TocsinWindow, tocsin_window, ADW_TYPE_APPLICATION_WINDOW)

/* ---- helpers -------------------------------------------------------------------------- */

/* libadwaita 1.2 ellipsizes a toast's title on one line ("Fermez …" at 360 px): the title
 * is a wrapping label instead, so an error sentence is read whole. */
static AdwToast *
toast_new (const char *text)
{
  AdwToast *t = adw_toast_new (text);
  GtkWidget *title = gtk_label_new (text);

  gtk_label_set_wrap (GTK_LABEL (title), TRUE);
  gtk_label_set_wrap_mode (GTK_LABEL (title), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_max_width_chars (GTK_LABEL (title), 40);
  /* A wrapping label asks for little width; a short title must not wrap at all. */
  gtk_label_set_width_chars (GTK_LABEL (title), MIN ((int) g_utf8_strlen (text, -1), 30));
  gtk_label_set_xalign (GTK_LABEL (title), 0);
  gtk_widget_add_css_class (title, "heading");
  adw_toast_set_custom_title (t, title);
  return t;
}

static void
toast (TocsinWindow *self,
       const char   *text)
{
  AdwToast *t = toast_new (text);

  adw_toast_set_timeout (t, 5);
  adw_toast_overlay_add_toast (self->toast_overlay, t);
}

static TocsinSubscription *
selected_subscription (TocsinWindow *self)
{
  gpointer item = gtk_single_selection_get_selected_item (self->channel_selection);

  return TOCSIN_IS_SUBSCRIPTION (item) ? item : NULL;
}

static char *
relay_host (const char *relay_url)
{
  g_autoptr(GUri) uri = relay_url ? g_uri_parse (relay_url, G_URI_FLAGS_NONE, NULL) : NULL;

  if (uri == NULL || g_uri_get_host (uri) == NULL)
    return g_strdup (relay_url ? relay_url : "");
  if (g_uri_get_port (uri) > 0)
    return g_strdup_printf ("%s:%d", g_uri_get_host (uri), g_uri_get_port (uri));
  return g_strdup (g_uri_get_host (uri));
}

/* "Offline, retrying in 8 s" and friends; NULL when all is well. */
static char *
connection_state_text (TocsinConnection *connection)
{
  if (connection == NULL)
    return NULL;
  switch (tocsin_connection_get_state (connection))
    {
    case TOCSIN_CONNECTION_CONNECTED:
      return NULL;
    case TOCSIN_CONNECTION_CONNECTING:
      return g_strdup (_("Connecting…"));
    case TOCSIN_CONNECTION_WAITING:
      {
        guint seconds = tocsin_connection_get_retry_seconds (connection);

        if (seconds == 0)
          return g_strdup (_("Offline, retrying now"));
        /* Translators: %u is a number of seconds */
        return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "Offline, retrying in %u s",
                                             "Offline, retrying in %u s", seconds), seconds);
      }
    case TOCSIN_CONNECTION_STOPPED:
    default:
      return g_strdup (_("Not connected"));
    }
}

static char *
subscription_state_text (TocsinWindow       *self,
                         TocsinSubscription *subscription)
{
  const char *error = tocsin_subscription_get_error (subscription);
  TocsinConnection *connection;

  if (error != NULL)
    return g_strdup (error);
  connection = tocsin_client_get_connection (self->client,
                                             tocsin_subscription_get_relay_url (subscription));
  return connection_state_text (connection);
}

/* ---- relay states --------------------------------------------------------------------- */

/* Rows showing relay states refresh. */
static void
tick (TocsinWindow *self)
{
  g_action_activate (G_ACTION (self->clock), NULL);
}


/* The header says which channel, and whether it is offline: it must not look connected when
 * it is not. */
static void
update_title (TocsinWindow *self)
{
  TocsinSubscription *subscription = selected_subscription (self);
  GListModel *connections = tocsin_client_get_connections (self->client);
  gboolean offline = FALSE;

  for (guint i = 0; i < g_list_model_get_n_items (connections); i++)
    {
      g_autoptr(TocsinConnection) connection = g_list_model_get_item (connections, i);

      if (subscription != NULL
          && g_strcmp0 (tocsin_connection_get_relay_url (connection),
                        tocsin_subscription_get_relay_url (subscription)) != 0)
        continue;
      if (tocsin_connection_get_state (connection) != TOCSIN_CONNECTION_CONNECTED)
        offline = TRUE;
    }

  if (subscription != NULL)
    {
      const char *name = tocsin_subscription_get_name (subscription);

      adw_window_title_set_title (self->content_title, name && *name ? name : _("Unnamed channel"));
      if (offline)
        adw_window_title_set_subtitle (self->content_title, _("Offline"));
      else
        {
          g_autofree char *host = relay_host (tocsin_subscription_get_relay_url (subscription));

          adw_window_title_set_subtitle (self->content_title, host);
        }
    }
  else
    {
      adw_window_title_set_title (self->content_title, _("All Channels"));
      adw_window_title_set_subtitle (self->content_title, offline ? _("Offline") : NULL);
    }
}

static void
update_relay_states (TocsinWindow *self)
{
  GListModel *connections = tocsin_client_get_connections (self->client);
  g_autoptr(GString) text = g_string_new (NULL);
  gboolean any_waiting = FALSE;
  guint n = g_list_model_get_n_items (connections);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(TocsinConnection) connection = g_list_model_get_item (connections, i);
      g_autofree char *state = connection_state_text (connection);
      g_autofree char *host = NULL;
      const char *last_error;

      if (state == NULL)
        continue;
      if (tocsin_connection_get_state (connection) == TOCSIN_CONNECTION_WAITING)
        any_waiting = TRUE;
      host = relay_host (tocsin_connection_get_relay_url (connection));
      last_error = tocsin_connection_get_last_error (connection);
      if (text->len > 0)
        g_string_append_c (text, '\n');
      if (last_error != NULL)
        /* Translators: "relay.example.com: Offline, retrying in 8 s (Connection refused)" */
        g_string_append_printf (text, _("%s: %s (%s)"), host, state, last_error);
      else
        /* Translators: "relay.example.com: Offline, retrying in 8 s" */
        g_string_append_printf (text, _("%s: %s"), host, state);
    }

  gtk_label_set_text (self->relay_state_label, text->str);
  gtk_revealer_set_reveal_child (self->relay_revealer, text->len > 0);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.retry", any_waiting);
  update_title (self);

  if (any_waiting)
    tick (self);
}

static gboolean
clock_cb (gpointer data)
{
  TocsinWindow *self = data;

  update_relay_states (self);
  return G_SOURCE_CONTINUE;
}

static void
connections_changed_cb (TocsinWindow *self)
{
  GListModel *connections = tocsin_client_get_connections (self->client);

  for (guint i = 0; i < g_list_model_get_n_items (connections); i++)
    {
      g_autoptr(TocsinConnection) connection = g_list_model_get_item (connections, i);

      /* Connections come and go with the list; don't connect to one twice. */
      g_signal_handlers_disconnect_by_func (connection, update_relay_states, self);
      g_signal_handlers_disconnect_by_func (connection, tick, self);
      g_signal_connect_object (connection, "notify::state", G_CALLBACK (update_relay_states),
                               self, G_CONNECT_SWAPPED);
      g_signal_connect_object (connection, "notify::retry-time", G_CALLBACK (update_relay_states),
                               self, G_CONNECT_SWAPPED);
      g_signal_connect_object (connection, "notify::state", G_CALLBACK (tick), self,
                               G_CONNECT_SWAPPED);
    }
  update_relay_states (self);
  tick (self);
}

/* ---- sidebar -------------------------------------------------------------------------- */

static char *
unread_key (const char *relay_url,
            gint64      channel_id)
{
  return g_strdup_printf ("%s\n%" G_GINT64_FORMAT, relay_url ? relay_url : "", channel_id);
}

typedef struct
{
  TocsinWindow *self;
  char         *key;
} UnreadCount;

static void
unread_counted_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  UnreadCount *count = user_data;
  g_autoptr(GError) error = NULL;
  gint64 n = tocsin_history_count_finish (TOCSIN_HISTORY (object), result, &error);

  if (n >= 0 && count->self->unread != NULL)
    {
      g_hash_table_replace (count->self->unread, g_steal_pointer (&count->key),
                            GUINT_TO_POINTER ((guint) MIN (n, G_MAXUINT)));
      tick (count->self);
    }
  g_object_unref (count->self);
  g_free (count->key);
  g_free (count);
}

static void
count_unread (TocsinWindow *self,
              const char   *relay_url,
              gint64        channel_id)
{
  g_autoptr(TocsinRecordQuery) query = tocsin_record_query_new ();
  UnreadCount *count = g_new0 (UnreadCount, 1);

  query->unread_only = TRUE;
  query->relay_url = g_strdup (relay_url);
  query->channel_id = channel_id;
  count->self = g_object_ref (self);
  count->key = relay_url ? unread_key (relay_url, channel_id) : g_strdup ("");
  tocsin_history_count_async (tocsin_client_get_history (self->client), query, self->cancellable,
                              unread_counted_cb, count);
}

/* Unread counts per channel in the sidebar: recounted (on the history's thread) a moment after
 * the history changes, once for a burst. */
static gboolean
recount_unread_cb (gpointer data)
{
  TocsinWindow *self = data;
  GListModel *subscriptions = tocsin_client_get_subscriptions (self->client);

  self->unread_id = 0;
  count_unread (self, NULL, 0);
  for (guint i = 0; i < g_list_model_get_n_items (subscriptions); i++)
    {
      g_autoptr(TocsinSubscription) subscription = g_list_model_get_item (subscriptions, i);

      count_unread (self, tocsin_subscription_get_relay_url (subscription),
                    tocsin_subscription_get_channel_id (subscription));
    }
  return G_SOURCE_REMOVE;
}

static void
queue_recount_unread (TocsinWindow *self)
{
  if (self->unread_id == 0)
    self->unread_id = g_timeout_add (150, recount_unread_cb, self);
}

static void
sidebar_row_update (GtkWidget *box)
{
  TocsinWindow *self = g_object_get_data (G_OBJECT (box), "window");
  GObject *item = g_object_get_data (G_OBJECT (box), "item");
  GtkLabel *name_label = g_object_get_data (G_OBJECT (box), "name-label");
  GtkLabel *state_label = g_object_get_data (G_OBJECT (box), "state-label");
  GtkImage *icon = g_object_get_data (G_OBJECT (box), "icon");
  GtkWidget *muted_icon = g_object_get_data (G_OBJECT (box), "muted-icon");
  GtkLabel *unread_label = g_object_get_data (G_OBJECT (box), "unread-label");
  g_autofree char *key = NULL;
  guint unread;

  if (item == NULL || self == NULL)
    return;

  if (TOCSIN_IS_SUBSCRIPTION (item))
    key = unread_key (tocsin_subscription_get_relay_url (TOCSIN_SUBSCRIPTION (item)),
                      tocsin_subscription_get_channel_id (TOCSIN_SUBSCRIPTION (item)));
  else
    key = g_strdup ("");
  unread = GPOINTER_TO_UINT (g_hash_table_lookup (self->unread, key));
  if (unread > 0)
    {
      g_autofree char *count = unread > 999 ? g_strdup ("999+") : g_strdup_printf ("%u", unread);
      g_autofree char *tooltip = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u unread",
                                                               "%u unread", unread), unread);

      gtk_label_set_text (unread_label, count);
      gtk_widget_set_tooltip_text (GTK_WIDGET (unread_label), tooltip);
    }
  gtk_widget_set_visible (GTK_WIDGET (unread_label), unread > 0);

  if (TOCSIN_IS_SUBSCRIPTION (item))
    {
      TocsinSubscription *subscription = TOCSIN_SUBSCRIPTION (item);
      g_autofree char *state = subscription_state_text (self, subscription);
      g_autofree char *host = relay_host (tocsin_subscription_get_relay_url (subscription));
      const char *name = tocsin_subscription_get_name (subscription);
      g_autofree char *accessible = NULL;

      gtk_label_set_text (name_label, name && *name ? name : _("Unnamed channel"));
      gtk_label_set_text (state_label, state ? state : host);
      switch (tocsin_subscription_get_notify_type (subscription))
        {
        case TOCSIN_NOTIFY_TYPE_CALLING:
          gtk_image_set_from_icon_name (icon, "call-start-symbolic");
          break;
        case TOCSIN_NOTIFY_TYPE_TIME_SENSITIVE:
          gtk_image_set_from_icon_name (icon, "alarm-symbolic");
          break;
        case TOCSIN_NOTIFY_TYPE_NORMAL:
        default:
          gtk_image_set_from_icon_name (icon, "preferences-system-notifications-symbolic");
          break;
        }
      gtk_widget_set_visible (muted_icon, tocsin_subscription_get_muted (subscription));
      const char *unread_text = gtk_widget_get_tooltip_text (GTK_WIDGET (unread_label));
      gboolean muted = tocsin_subscription_get_muted (subscription);

      accessible = g_strdup_printf ("%s, %s%s%s%s", gtk_label_get_text (name_label),
                                    gtk_label_get_text (state_label), muted ? _(", muted") : "",
                                    unread > 0 ? ", " : "", unread > 0 ? unread_text : "");
      gtk_accessible_update_property (GTK_ACCESSIBLE (box), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      accessible, -1);
    }
  else
    {
      guint n = g_list_model_get_n_items (tocsin_client_get_subscriptions (self->client));

      gtk_label_set_text (name_label, _("All Channels"));
      if (n == 0)
        gtk_label_set_text (state_label, _("No subscriptions yet"));
      else
        {
          g_autofree char *text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                                                "%u subscription",
                                                                "%u subscriptions", n), n);
          gtk_label_set_text (state_label, text);
        }
      gtk_image_set_from_icon_name (icon, "view-list-symbolic");
      gtk_widget_set_visible (muted_icon, FALSE);
    }
}

static void
sidebar_setup_cb (GtkSignalListItemFactory *factory,
                  GtkListItem              *item,
                  TocsinWindow             *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 10);
  GtkWidget *labels = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  GtkWidget *icon = gtk_image_new ();
  GtkWidget *name = gtk_label_new (NULL);
  GtkWidget *state = gtk_label_new (NULL);
  GtkWidget *muted = gtk_image_new_from_icon_name ("notifications-disabled-symbolic");
  GtkWidget *unread = gtk_label_new (NULL);

  gtk_widget_set_margin_top (box, 6);
  gtk_widget_set_margin_bottom (box, 6);
  gtk_label_set_xalign (GTK_LABEL (name), 0);
  gtk_label_set_ellipsize (GTK_LABEL (name), PANGO_ELLIPSIZE_END);
  gtk_label_set_xalign (GTK_LABEL (state), 0);
  gtk_label_set_ellipsize (GTK_LABEL (state), PANGO_ELLIPSIZE_END);
  gtk_widget_add_css_class (state, "dim-label");
  gtk_widget_add_css_class (state, "caption");
  gtk_widget_set_hexpand (labels, TRUE);
  gtk_widget_set_tooltip_text (muted, _("Muted: records arrive without pop-ups"));
  gtk_box_append (GTK_BOX (labels), name);
  gtk_box_append (GTK_BOX (labels), state);
  gtk_box_append (GTK_BOX (box), icon);
  gtk_box_append (GTK_BOX (box), labels);
  gtk_box_append (GTK_BOX (box), muted);
  gtk_widget_add_css_class (unread, "unread-badge");
  gtk_widget_add_css_class (unread, "numeric");
  gtk_widget_set_valign (unread, GTK_ALIGN_CENTER);
  gtk_widget_set_visible (unread, FALSE);
  gtk_box_append (GTK_BOX (box), unread);
  g_object_set_data (G_OBJECT (box), "unread-label", unread);

  g_object_set_data (G_OBJECT (box), "window", self);
  g_object_set_data (G_OBJECT (box), "name-label", name);
  g_object_set_data (G_OBJECT (box), "state-label", state);
  g_object_set_data (G_OBJECT (box), "icon", icon);
  g_object_set_data (G_OBJECT (box), "muted-icon", muted);
  gtk_list_item_set_child (item, box);
}

static void
sidebar_bind_cb (GtkSignalListItemFactory *factory,
                 GtkListItem              *item,
                 TocsinWindow             *self)
{
  GtkWidget *box = gtk_list_item_get_child (item);
  GObject *object = gtk_list_item_get_item (item);
  gulong id;

  g_object_set_data_full (G_OBJECT (box), "item", g_object_ref (object), g_object_unref);
  if (TOCSIN_IS_SUBSCRIPTION (object))
    {
      id = g_signal_connect_object (object, "notify", G_CALLBACK (sidebar_row_update), box,
                                    G_CONNECT_SWAPPED);
      g_object_set_data (G_OBJECT (box), "notify-id", GSIZE_TO_POINTER (id));
    }
  id = g_signal_connect_object (self->clock, "activate", G_CALLBACK (sidebar_row_update), box,
                                G_CONNECT_SWAPPED);
  g_object_set_data (G_OBJECT (box), "tick-id", GSIZE_TO_POINTER (id));
  sidebar_row_update (box);
}

static void
sidebar_unbind_cb (GtkSignalListItemFactory *factory,
                   GtkListItem              *item,
                   TocsinWindow             *self)
{
  GtkWidget *box = gtk_list_item_get_child (item);
  GObject *object = g_object_get_data (G_OBJECT (box), "item");
  gulong notify_id = GPOINTER_TO_SIZE (g_object_get_data (G_OBJECT (box), "notify-id"));
  gulong tick_id = GPOINTER_TO_SIZE (g_object_get_data (G_OBJECT (box), "tick-id"));

  if (notify_id != 0 && object != NULL)
    g_signal_handler_disconnect (object, notify_id);
  if (tick_id != 0)
    g_signal_handler_disconnect (self->clock, tick_id);
  g_object_set_data (G_OBJECT (box), "notify-id", NULL);
  g_object_set_data (G_OBJECT (box), "tick-id", NULL);
  g_object_set_data (G_OBJECT (box), "item", NULL);
}

static void update_actions (TocsinWindow *self);

static void
channel_selected_cb (TocsinWindow *self)
{
  TocsinSubscription *subscription = selected_subscription (self);

  self->want_top = TRUE;
  if (subscription != NULL)
    tocsin_record_list_set_channel (self->records,
                                    tocsin_subscription_get_relay_url (subscription),
                                    tocsin_subscription_get_channel_id (subscription));
  else
    tocsin_record_list_set_channel (self->records, NULL, 0);
  update_title (self);
  update_actions (self);
}

static void
channel_activated_cb (TocsinWindow *self,
                      guint         position)
{
  gtk_single_selection_set_selected (self->channel_selection, position);
  adw_leaflet_navigate (self->leaflet, ADW_NAVIGATION_DIRECTION_FORWARD);
}

/* A click on a channel opens it (on a narrow window, the records page slides in). Capture
 * phase: before the row's own gesture selects it, which it does whatever we do here. */
static void
channel_click_cb (TocsinWindow *self)
{
  adw_leaflet_navigate (self->leaflet, ADW_NAVIGATION_DIRECTION_FORWARD);
}

static void
leaflet_folded_cb (TocsinWindow *self)
{
  /* When unfolded both panes show, so there is nowhere to go back to. */
  update_actions (self);
}

/* ---- records -------------------------------------------------------------------------- */

/* Where new records go. The list is newest first, and GtkListView keeps the row at the top of
 * the view where it is when rows are inserted above it, so without care new records arrive out
 * of sight. A user at the top stays at the top; one who scrolled down keeps their place and gets
 * an "N new" button over the list that takes them to the newest. */

static gboolean
records_at_top (TocsinWindow *self)
{
  GtkAdjustment *adjustment = gtk_scrolled_window_get_vadjustment (self->records_scroller);

  return gtk_adjustment_get_value (adjustment) < 1.0;
}

static void
update_new_button (TocsinWindow *self)
{
  if (self->new_count > 0)
    {
      /* Translators: on a button over the records list; %u new records arrived above */
      g_autofree char *text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u new", "%u new",
                                                            self->new_count), self->new_count);

      gtk_label_set_text (self->new_label, text);
    }
  gtk_widget_set_visible (GTK_WIDGET (self->new_button), self->new_count > 0);
}

static gboolean
scroll_to_top_cb (gpointer data)
{
  TocsinWindow *self = data;
  GtkAdjustment *adjustment = gtk_scrolled_window_get_vadjustment (self->records_scroller);

  self->top_id = 0;
  if (g_list_model_get_n_items (G_LIST_MODEL (self->records)) > 0)
    gtk_widget_activate_action (GTK_WIDGET (self->records_view), "list.scroll-to-item", "u", 0);
  /* Value 0 is the top: the first row's own top, not just "row 0 in view". */
  gtk_adjustment_set_value (adjustment, gtk_adjustment_get_lower (adjustment));
  return G_SOURCE_REMOVE;
}

/* Brings the newest record into view once the list has laid out what it just got. */
static void
scroll_to_newest (TocsinWindow *self)
{
  self->new_count = 0;
  update_new_button (self);
  if (self->top_id == 0)
    self->top_id = g_idle_add_full (GDK_PRIORITY_REDRAW + 10, scroll_to_top_cb, self, NULL);
}

static void
new_button_clicked_cb (TocsinWindow *self)
{
  scroll_to_newest (self);
  gtk_widget_grab_focus (GTK_WIDGET (self->records_view));
}

static void
records_loading_cb (TocsinWindow *self)
{
  if (tocsin_record_list_get_loading (self->records))
    return;
  /* The refill is not new records. One the user asked for (search, channel, filter) starts at
   * the top of its results; one after a change in the history ("mark all read", undo) leaves
   * the view where it is. */
  self->reloaded = TRUE;
  if (self->want_top)
    {
      self->want_top = FALSE;
      scroll_to_newest (self);
    }
}

static void
records_items_changed_cb (TocsinWindow *self,
                          guint         position,
                          guint         removed,
                          guint         added)
{
  gboolean reloaded = self->reloaded;

  self->reloaded = FALSE;
  if (reloaded || position != 0 || removed != 0 || added == 0)
    return;
  if (records_at_top (self) || self->top_id != 0)
    scroll_to_newest (self);
  else
    {
      self->new_count += added;
      update_new_button (self);
    }
}

static void
records_scrolled_cb (TocsinWindow *self)
{
  /* Scrolling up to the newest by hand is as good as the button. */
  if (self->new_count > 0 && records_at_top (self))
    {
      self->new_count = 0;
      update_new_button (self);
    }
}

/* The first owned channel among those shown (@subscription, or all when NULL). */
static const TocsinOwnedChannel *
shown_owned_channel (TocsinWindow       *self,
                     TocsinSubscription *subscription)
{
  GListModel *subscriptions = tocsin_client_get_subscriptions (self->client);

  if (subscription != NULL)
    return tocsin_application_find_owned_channel (self->app,
                                                  tocsin_subscription_get_relay_url (subscription),
                                                  tocsin_subscription_get_channel_id (subscription));
  for (guint i = 0; i < g_list_model_get_n_items (subscriptions); i++)
    {
      g_autoptr(TocsinSubscription) item = g_list_model_get_item (subscriptions, i);
      const TocsinOwnedChannel *owned = shown_owned_channel (self, item);

      if (owned != NULL)
        return owned;
    }
  return NULL;
}

/* No records and no filter: before any subscription, what to do first; after, that the app is
 * waiting, and, for a channel of the user's own, the line that rings it. */
static void
update_waiting_page (TocsinWindow *self)
{
  TocsinSubscription *subscription = selected_subscription (self);
  guint n = g_list_model_get_n_items (tocsin_client_get_subscriptions (self->client));
  const TocsinOwnedChannel *owned = n > 0 ? shown_owned_channel (self, subscription) : NULL;

  gtk_widget_set_visible (self->empty_subscribe_button, n == 0);
  gtk_widget_set_visible (self->empty_create_button, n == 0);
  gtk_widget_set_visible (self->empty_curl_box, owned != NULL && owned->webhook_url != NULL);
  if (n == 0)
    {
      adw_status_page_set_icon_name (self->empty_page, "io.github.tocsin.Tocsin-symbolic");
      adw_status_page_set_title (self->empty_page, _("No Notifications Yet"));
      adw_status_page_set_description (self->empty_page,
                                       _("Subscribe to a channel with the link its owner shared, or create a channel of your own and ring its webhook."));
      return;
    }

  adw_status_page_set_icon_name (self->empty_page, "io.github.tocsin.Tocsin-symbolic");
  adw_status_page_set_title (self->empty_page, subscription ? _("Nothing From This Channel Yet")
                                                            : _("Waiting for Notifications"));
  if (owned != NULL && owned->webhook_url != NULL)
    {
      g_autofree char *quoted = g_shell_quote (owned->webhook_url);
      g_autofree char *line = g_strdup_printf ("curl %s", quoted);
      /* Translators: %s is a channel name; a command line follows */
      g_autofree char *text = g_strdup_printf (_("Ring the webhook of “%s” to see a notification arrive:"),
                                               owned->name ? owned->name : "");

      adw_status_page_set_description (self->empty_page, text);
      gtk_label_set_text (self->empty_curl_label, line);
    }
  else
    adw_status_page_set_description (self->empty_page,
                                     subscription
                                     ? _("You are subscribed: notifications appear here as soon as its webhook rings.")
                                     : _("You are subscribed: notifications appear here as soon as a webhook rings."));
}

static void
copy_curl_cb (TocsinWindow *self)
{
  gdk_clipboard_set_text (gtk_widget_get_clipboard (GTK_WIDGET (self)),
                          gtk_label_get_text (self->empty_curl_label));
  toast (self, _("Copied"));
}

static void
update_records_stack (TocsinWindow *self)
{
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->records));
  const char *search = tocsin_record_list_get_search (self->records);
  gboolean searching = (search != NULL && *search != '\0')
                       || tocsin_record_list_get_unread_only (self->records);

  if (n > 0)
    {
      gtk_stack_set_visible_child_name (self->records_stack, "records");
      return;
    }
  if (tocsin_record_list_get_loading (self->records))
    return;

  if (searching && (search == NULL || *search == '\0'))
    {
      /* Only the unread filter: nothing is wrong, everything was read. */
      adw_status_page_set_icon_name (self->no_results_page, "object-select-symbolic");
      adw_status_page_set_title (self->no_results_page, _("All Caught Up"));
      adw_status_page_set_description (self->no_results_page,
                                       _("Nothing unread here. Turn off “Show only unread” to see every record."));
      gtk_stack_set_visible_child_name (self->records_stack, "no-results");
    }
  else if (searching)
    {
      adw_status_page_set_icon_name (self->no_results_page, "edit-find-symbolic");
      adw_status_page_set_title (self->no_results_page, _("No Matching Records"));
      adw_status_page_set_description (self->no_results_page,
                                       _("Try other words, or turn off “Show only unread”."));
      gtk_stack_set_visible_child_name (self->records_stack, "no-results");
    }
  else
    {
      update_waiting_page (self);
      gtk_stack_set_visible_child_name (self->records_stack, "empty");
    }
}

static void
record_setup_cb (GtkSignalListItemFactory *factory,
                 GtkListItem              *item,
                 TocsinWindow             *self)
{
  gtk_list_item_set_child (item, tocsin_record_row_new ());
  gtk_list_item_set_activatable (item, TRUE);
}

static void
record_bind_cb (GtkSignalListItemFactory *factory,
                GtkListItem              *item,
                TocsinWindow             *self)
{
  tocsin_record_row_set_record (TOCSIN_RECORD_ROW (gtk_list_item_get_child (item)),
                                gtk_list_item_get_item (item));
}

static void
record_unbind_cb (GtkSignalListItemFactory *factory,
                  GtkListItem              *item,
                  TocsinWindow             *self)
{
  tocsin_record_row_set_record (TOCSIN_RECORD_ROW (gtk_list_item_get_child (item)), NULL);
}

/* Enter or a double click on a record opens its details (and it counts as read). */
static void
record_activated_cb (TocsinWindow *self,
                     guint         position)
{
  g_autoptr(TocsinRecord) record = g_list_model_get_item (G_LIST_MODEL (self->records), position);
  GtkWidget *details;

  if (record == NULL || !tocsin_record_get_loaded (record))
    return;
  if (!tocsin_record_get_read (record))
    tocsin_client_mark_read (self->client, tocsin_record_get_id (record), TRUE);
  details = tocsin_record_details_new (GTK_WINDOW (self), record);
  gtk_window_present (GTK_WINDOW (details));
}

static void
search_changed_cb (TocsinWindow *self)
{
  self->want_top = TRUE;
  tocsin_record_list_set_search (self->records, gtk_editable_get_text (GTK_EDITABLE (self->search_entry)));
}

static void
stop_search_cb (TocsinWindow *self)
{
  gtk_toggle_button_set_active (self->search_button, FALSE);
}

static void
search_mode_cb (TocsinWindow *self)
{
  if (gtk_search_bar_get_search_mode (self->search_bar))
    gtk_widget_grab_focus (GTK_WIDGET (self->search_entry));
  else
    {
      gtk_editable_set_text (GTK_EDITABLE (self->search_entry), "");
      gtk_widget_grab_focus (GTK_WIDGET (self->records_view));
    }
  if (gtk_toggle_button_get_active (self->search_button) != gtk_search_bar_get_search_mode (self->search_bar))
    gtk_toggle_button_set_active (self->search_button, gtk_search_bar_get_search_mode (self->search_bar));
}

/* ---- actions -------------------------------------------------------------------------- */

static gboolean
invert_boolean (gpointer  unused,
                gboolean  value)
{
  return !value;
}

static void
update_actions (TocsinWindow *self)
{
  TocsinSubscription *subscription = selected_subscription (self);
  gboolean owned = FALSE;

  if (subscription != NULL)
    {
      const TocsinOwnedChannel *channel =
        tocsin_application_find_owned_channel (self->app,
                                               tocsin_subscription_get_relay_url (subscription),
                                               tocsin_subscription_get_channel_id (subscription));

      /* A direct inbox has no templates to edit: Preferences manages its key. */
      owned = channel != NULL && !tocsin_owned_channel_is_direct (channel);
    }
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.clear-channel", subscription != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.unsubscribe", subscription != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.channel-settings", subscription != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.edit-channel", owned);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.channel-deliveries", owned);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.back",
                                 adw_leaflet_get_folded (self->leaflet));
}

static void
search_action (GtkWidget  *widget,
               const char *action_name,
               GVariant   *param)
{
  TocsinWindow *self = TOCSIN_WINDOW (widget);

  gtk_toggle_button_set_active (self->search_button, TRUE);
  gtk_widget_grab_focus (GTK_WIDGET (self->search_entry));
}

static void
subscribed_cb (TocsinWindow       *self,
               TocsinSubscription *subscription)
{
  g_autofree char *text = g_strdup_printf (_("Subscribed to “%s”"),
                                           tocsin_subscription_get_name (subscription));

  toast (self, text);
}

static void
subscribe_action (GtkWidget  *widget,
                  const char *action_name,
                  GVariant   *param)
{
  tocsin_window_ask_subscribe (TOCSIN_WINDOW (widget), NULL);
}

static void
new_channel_action (GtkWidget  *widget,
                    const char *action_name,
                    GVariant   *param)
{
  TocsinWindow *self = TOCSIN_WINDOW (widget);

  gtk_window_present (GTK_WINDOW (tocsin_channel_editor_new (GTK_WINDOW (self), self->app)));
}

static void
action_presses_action (GtkWidget  *widget,
                       const char *action_name,
                       GVariant   *param)
{
  TocsinWindow *self = TOCSIN_WINDOW (widget);

  gtk_window_present (GTK_WINDOW (tocsin_deliveries_window_new_for_presses (GTK_WINDOW (self),
                                                                            self->app)));
}

/* The owned channel shown (selected in the sidebar), or NULL. */
static const TocsinOwnedChannel *
selected_owned_channel (TocsinWindow *self)
{
  TocsinSubscription *subscription = selected_subscription (self);

  if (subscription == NULL)
    return NULL;
  return tocsin_application_find_owned_channel (self->app,
                                                tocsin_subscription_get_relay_url (subscription),
                                                tocsin_subscription_get_channel_id (subscription));
}

static void
edit_channel_action (GtkWidget  *widget,
                     const char *action_name,
                     GVariant   *param)
{
  TocsinWindow *self = TOCSIN_WINDOW (widget);
  const TocsinOwnedChannel *owned = selected_owned_channel (self);

  if (owned == NULL)
    return;
  gtk_window_present (GTK_WINDOW (tocsin_channel_editor_new_for_channel (GTK_WINDOW (self),
                                                                         self->app, owned)));
}

/* The relay's log of the channel's forwards, without opening the editor first. */
static void
channel_deliveries_action (GtkWidget  *widget,
                           const char *action_name,
                           GVariant   *param)
{
  TocsinWindow *self = TOCSIN_WINDOW (widget);
  const TocsinOwnedChannel *owned = selected_owned_channel (self);

  if (owned == NULL || tocsin_owned_channel_is_direct (owned))
    return;
  gtk_window_present (GTK_WINDOW (tocsin_deliveries_window_new_for_channel (GTK_WINDOW (self),
                                                                            self->app, owned)));
}

static void
channel_settings_action (GtkWidget  *widget,
                         const char *action_name,
                         GVariant   *param)
{
  TocsinWindow *self = TOCSIN_WINDOW (widget);
  TocsinSubscription *subscription = selected_subscription (self);

  if (subscription == NULL)
    return;
  gtk_window_present (GTK_WINDOW (tocsin_subscribe_dialog_new_for_subscription (GTK_WINDOW (self),
                                                                                self->client,
                                                                                subscription)));
}

static void
back_action (GtkWidget  *widget,
             const char *action_name,
             GVariant   *param)
{
  adw_leaflet_navigate (TOCSIN_WINDOW (widget)->leaflet, ADW_NAVIGATION_DIRECTION_BACK);
}

static void
show_all_action (GtkWidget  *widget,
                 const char *action_name,
                 GVariant   *param)
{
  gtk_single_selection_set_selected (TOCSIN_WINDOW (widget)->channel_selection, 0);
}

static void
change_done_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(TocsinWindow) self = user_data;
  g_autoptr(GError) error = NULL;

  if (tocsin_history_change_finish (TOCSIN_HISTORY (object), result, &error) < 0
      && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_autofree char *text = g_strdup_printf (_("Could not change the records: %s"),
                                               error->message);
      toast (self, text);
    }
}

/* ---- undo ---------------------------------------------------------------------------- */

/* What can be undone is done at once, with an Undo button on its toast, instead of asking
 * first (GNOME HIG). The history keeps what the change removed until the toast goes. */
typedef struct
{
  TocsinHistory *history;
  guint64        batch;
  gboolean       undone;
} Undo;

static void
undo_free (gpointer data,
           GClosure *closure)
{
  Undo *undo = data;

  g_object_unref (undo->history);
  g_free (undo);
}

static void
undo_clicked_cb (AdwToast *toast,
                 Undo     *undo)
{
  undo->undone = TRUE;
  tocsin_history_undo_async (undo->history, undo->batch, NULL, NULL, NULL);
}

static void
undo_dismissed_cb (AdwToast *toast,
                   Undo     *undo)
{
  if (!undo->undone)
    tocsin_history_forget_undo_async (undo->history, undo->batch, NULL, NULL, NULL);
}

static void
undo_toast (TocsinWindow *self,
            const char   *text,
            guint64       batch)
{
  AdwToast *t = toast_new (text);
  Undo *undo = g_new0 (Undo, 1);

  undo->history = g_object_ref (tocsin_client_get_history (self->client));
  undo->batch = batch;
  adw_toast_set_button_label (t, _("_Undo"));
  adw_toast_set_timeout (t, 7);
  adw_toast_set_priority (t, ADW_TOAST_PRIORITY_HIGH);
  g_signal_connect (t, "button-clicked", G_CALLBACK (undo_clicked_cb), undo);
  g_signal_connect_data (t, "dismissed", G_CALLBACK (undo_dismissed_cb), undo, undo_free, 0);
  adw_toast_overlay_add_toast (self->toast_overlay, t);
}

static void
mark_all_read_undoable (TocsinWindow *self)
{
  TocsinSubscription *subscription = selected_subscription (self);
  TocsinHistory *history = tocsin_client_get_history (self->client);
  guint64 batch = tocsin_history_new_undo_batch (history);
  const char *relay_url = NULL;
  gint64 channel_id = 0;

  if (subscription != NULL)
    {
      relay_url = tocsin_subscription_get_relay_url (subscription);
      channel_id = tocsin_subscription_get_channel_id (subscription);
    }
  tocsin_history_mark_all_read_undoable_async (history, relay_url, channel_id, batch,
                                               self->cancellable, change_done_cb,
                                               g_object_ref (self));
  undo_toast (self, _("Marked as read"), batch);
}

static void
clear_channel_undoable (TocsinWindow *self)
{
  TocsinSubscription *subscription = selected_subscription (self);
  TocsinHistory *history = tocsin_client_get_history (self->client);
  g_autofree char *text = NULL;
  guint64 batch;

  if (subscription == NULL)
    return;
  batch = tocsin_history_new_undo_batch (history);
  tocsin_history_clear_undoable_async (history, tocsin_subscription_get_relay_url (subscription),
                                       tocsin_subscription_get_channel_id (subscription), batch,
                                       self->cancellable, change_done_cb, g_object_ref (self));
  /* Translators: a toast after clearing a channel; %s is its name */
  text = g_strdup_printf (_("“%s” cleared"), tocsin_subscription_get_name (subscription));
  undo_toast (self, text, batch);
}

/* What cannot be undone is asked first. */
typedef enum { CONFIRM_CLEAR_ALL, CONFIRM_UNSUBSCRIBE } ConfirmKind;

typedef struct
{
  TocsinWindow       *self;
  ConfirmKind         kind;
  TocsinSubscription *subscription;  /* NULL: all channels */
} Confirm;

static void
confirm_free (Confirm *confirm)
{
  g_object_unref (confirm->self);
  g_clear_object (&confirm->subscription);
  g_free (confirm);
}

static void
confirm_response_cb (AdwMessageDialog *dialog,
                     const char       *response,
                     Confirm          *confirm)
{
  TocsinWindow *self = confirm->self;
  TocsinHistory *history = tocsin_client_get_history (self->client);
  const char *relay_url = confirm->subscription ? tocsin_subscription_get_relay_url (confirm->subscription) : NULL;
  gint64 channel_id = confirm->subscription ? tocsin_subscription_get_channel_id (confirm->subscription) : 0;

  if (g_strcmp0 (response, "confirm") == 0)
    {
      switch (confirm->kind)
        {
        case CONFIRM_CLEAR_ALL:
          tocsin_history_clear_async (history, relay_url, channel_id, self->cancellable,
                                      change_done_cb, g_object_ref (self));
          break;
        case CONFIRM_UNSUBSCRIBE:
          {
            g_autofree char *text = g_strdup_printf (_("Unsubscribed from “%s”"),
                                                     tocsin_subscription_get_name (confirm->subscription));

            tocsin_client_unsubscribe (self->client, confirm->subscription);
            gtk_single_selection_set_selected (self->channel_selection, 0);
            toast (self, text);
          }
          break;
        default:
          g_assert_not_reached ();
        }
    }
  confirm_free (confirm);
}

static void
confirm (TocsinWindow *self,
         ConfirmKind   kind)
{
  TocsinSubscription *subscription = selected_subscription (self);
  const char *name = subscription ? tocsin_subscription_get_name (subscription) : NULL;
  g_autofree char *heading = NULL;
  g_autofree char *body = NULL;
  const char *button = NULL;
  gboolean destructive = TRUE;
  Confirm *data;
  GtkWidget *dialog;

  switch (kind)
    {
    case CONFIRM_CLEAR_ALL:
      heading = g_strdup (_("Clear All Records?"));
      body = g_strdup (_("Every record from every channel will be deleted from this computer. Your subscriptions stay. This cannot be undone."));
      button = _("_Clear All");
      subscription = NULL;
      break;
    case CONFIRM_UNSUBSCRIBE:
      if (subscription == NULL)
        return;
      heading = g_strdup_printf (_("Unsubscribe From “%s”?"), name);
      body = g_strdup (_("No more notifications will arrive from this channel. Its records stay until you clear them. To subscribe again you need its subscribe link."));
      button = _("_Unsubscribe");
      break;
    default:
      g_assert_not_reached ();
    }

  dialog = adw_message_dialog_new (GTK_WINDOW (self), heading, body);
  adw_message_dialog_add_responses (ADW_MESSAGE_DIALOG (dialog),
                                    "cancel", _("_Cancel"),
                                    "confirm", button,
                                    NULL);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "confirm",
                                              destructive ? ADW_RESPONSE_DESTRUCTIVE
                                                          : ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  adw_message_dialog_set_close_response (ADW_MESSAGE_DIALOG (dialog), "cancel");

  data = g_new0 (Confirm, 1);
  data->self = g_object_ref (self);
  data->kind = kind;
  data->subscription = subscription ? g_object_ref (subscription) : NULL;
  g_signal_connect (dialog, "response", G_CALLBACK (confirm_response_cb), data);
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
mark_all_read_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  mark_all_read_undoable (TOCSIN_WINDOW (widget));
}

static void
clear_channel_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  clear_channel_undoable (TOCSIN_WINDOW (widget));
}

static void
clear_all_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  confirm (TOCSIN_WINDOW (widget), CONFIRM_CLEAR_ALL);
}

static void
unsubscribe_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  confirm (TOCSIN_WINDOW (widget), CONFIRM_UNSUBSCRIBE);
}

static void
link_launched_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(TocsinWindow) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!g_app_info_launch_default_for_uri_finish (result, &error))
    {
      g_autofree char *text = g_strdup_printf (_("Could not open the link: %s"), error->message);

      toast (self, text);
    }
}

static void
open_link_action (GtkWidget  *widget,
                  const char *action_name,
                  GVariant   *param)
{
  TocsinWindow *self = TOCSIN_WINDOW (widget);
  g_autoptr(GdkAppLaunchContext) context = NULL;
  const char *uri = NULL;
  gint64 id = 0;

  g_variant_get (param, "(&sx)", &uri, &id);
  /* The relay and the message decoder only let http(s) through; check again at the door. */
  if (!tocsin_link_is_safe (uri, NULL))
    {
      toast (self, _("This link was not opened because it is not a plain web address."));
      return;
    }
  /* gtk_show_uri() cannot report failure; launching through GIO can (GtkUriLauncher is 4.10). */
  context = gdk_display_get_app_launch_context (gtk_widget_get_display (widget));
  g_app_info_launch_default_for_uri_async (uri, G_APP_LAUNCH_CONTEXT (context), self->cancellable,
                                           link_launched_cb, g_object_ref (self));
  if (id > 0)
    tocsin_client_mark_read (self->client, id, TRUE);
}

static void
record_set_read_action (GtkWidget  *widget,
                        const char *action_name,
                        GVariant   *param)
{
  TocsinWindow *self = TOCSIN_WINDOW (widget);
  gint64 id;
  gboolean read;

  g_variant_get (param, "(xb)", &id, &read);
  tocsin_client_mark_read (self->client, id, read);
}

static void
record_delete_action (GtkWidget  *widget,
                      const char *action_name,
                      GVariant   *param)
{
  TocsinWindow *self = TOCSIN_WINDOW (widget);
  TocsinHistory *history = tocsin_client_get_history (self->client);
  gint64 id = g_variant_get_int64 (param);
  guint64 batch = tocsin_history_new_undo_batch (history);

  tocsin_history_delete_record_undoable_async (history, id, batch, self->cancellable,
                                               change_done_cb, g_object_ref (self));
  undo_toast (self, _("Record deleted"), batch);
}

/* "Retry" on the offline bar: every relay that is waiting to reconnect tries now. */
static void
retry_action (GtkWidget  *widget,
              const char *action_name,
              GVariant   *param)
{
  TocsinWindow *self = TOCSIN_WINDOW (widget);
  GListModel *connections = tocsin_client_get_connections (self->client);

  for (guint i = 0; i < g_list_model_get_n_items (connections); i++)
    {
      g_autoptr(TocsinConnection) connection = g_list_model_get_item (connections, i);

      if (tocsin_connection_get_state (connection) == TOCSIN_CONNECTION_WAITING)
        tocsin_connection_reconnect_now (connection);
    }
}

static void
toast_action (GtkWidget  *widget,
              const char *action_name,
              GVariant   *param)
{
  toast (TOCSIN_WINDOW (widget), g_variant_get_string (param, NULL));
}

static void
exported_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(TocsinWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  GOutputStream *stream = g_object_get_data (G_OBJECT (result), "stream");
  gint64 count;

  count = tocsin_history_export_finish (TOCSIN_HISTORY (object), result, &error);
  if (count < 0)
    text = g_strdup_printf (_("Could not export the records: %s"), error->message);
  else
    text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "Exported %d record",
                                         "Exported %d records", (int) MIN (count, G_MAXINT)),
                            (int) MIN (count, G_MAXINT));
  (void) stream;
  toast (self, text);
}

static void
export_file_ready_cb (GObject      *object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  g_autoptr(TocsinWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GFileOutputStream) stream = g_file_replace_finish (G_FILE (object), result, &error);

  if (stream == NULL)
    {
      g_autofree char *text = g_strdup_printf (_("Could not write the file: %s"), error->message);

      toast (self, text);
      return;
    }
  /* The history writes (and closes, when the stream is finalized) on its worker thread. */
  tocsin_history_export_async (tocsin_client_get_history (self->client), G_OUTPUT_STREAM (stream),
                               self->cancellable, exported_cb, g_object_ref (self));
}

static void
export_response_cb (TocsinWindow         *self,
                    int                   response,
                    GtkFileChooserNative *chooser)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));

      g_file_replace_async (file, NULL, FALSE, G_FILE_CREATE_PRIVATE | G_FILE_CREATE_REPLACE_DESTINATION,
                            G_PRIORITY_DEFAULT, self->cancellable, export_file_ready_cb,
                            g_object_ref (self));
    }
  g_clear_object (&self->export_chooser);
}

static void
export_action (GtkWidget  *widget,
               const char *action_name,
               GVariant   *param)
{
  TocsinWindow *self = TOCSIN_WINDOW (widget);

  g_clear_object (&self->export_chooser);
  self->export_chooser = gtk_file_chooser_native_new (_("Export Records"), GTK_WINDOW (self),
                                                      GTK_FILE_CHOOSER_ACTION_SAVE,
                                                      _("_Export"), _("_Cancel"));
  gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (self->export_chooser), "tocsin-records.jsonl");
  g_signal_connect_object (self->export_chooser, "response", G_CALLBACK (export_response_cb), self,
                           G_CONNECT_SWAPPED);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->export_chooser));
}

/* ---- public --------------------------------------------------------------------------- */

void
tocsin_window_show_error (TocsinWindow *self,
                          const char   *message)
{
  g_return_if_fail (TOCSIN_IS_WINDOW (self));
  toast (self, message);
}

void
tocsin_window_ask_subscribe (TocsinWindow *self,
                             const char   *link)
{
  GtkWidget *dialog;

  g_return_if_fail (TOCSIN_IS_WINDOW (self));

  dialog = tocsin_subscribe_dialog_new (GTK_WINDOW (self), self->client, link);
  g_signal_connect_object (dialog, "subscribed", G_CALLBACK (subscribed_cb), self,
                           G_CONNECT_SWAPPED);
  gtk_window_present (GTK_WINDOW (dialog));
}

void
tocsin_window_owned_channels_changed (TocsinWindow *self)
{
  g_return_if_fail (TOCSIN_IS_WINDOW (self));
  update_actions (self);
  update_records_stack (self);
}

void
tocsin_window_show_channel (TocsinWindow *self,
                            const char   *relay_url,
                            gint64        channel_id)
{
  GListModel *model = G_LIST_MODEL (self->channel_selection);

  g_return_if_fail (TOCSIN_IS_WINDOW (self));

  for (guint i = 0; i < g_list_model_get_n_items (model); i++)
    {
      g_autoptr(GObject) item = g_list_model_get_item (model, i);

      if (TOCSIN_IS_SUBSCRIPTION (item)
          && tocsin_subscription_get_channel_id (TOCSIN_SUBSCRIPTION (item)) == channel_id
          && g_strcmp0 (tocsin_subscription_get_relay_url (TOCSIN_SUBSCRIPTION (item)), relay_url) == 0)
        {
          /* "Show" on a summary pop-up: the channel's newest records, whatever hid them. */
          gtk_toggle_button_set_active (self->search_button, FALSE);
          g_object_set (self, "unread-only", FALSE, NULL);
          gtk_single_selection_set_selected (self->channel_selection, i);
          adw_leaflet_navigate (self->leaflet, ADW_NAVIGATION_DIRECTION_FORWARD);
          scroll_to_newest (self);
          return;
        }
    }
}

/* Scrolls to the record asked for once the list knows where it is. Clearing the filters reloads
 * the list off the main loop, and pages are filled in place without items-changed, so look
 * again a few times rather than give up on the first miss. */
static gboolean
scroll_to_record_cb (gpointer data)
{
  TocsinWindow *self = data;
  gint position = tocsin_record_list_find (self->records, self->scroll_to_id);

  if (position < 0 && ++self->scroll_tries < 50)
    {
      /* Asking for the first item loads the first page, where a fresh record is. */
      if (!tocsin_record_list_get_loading (self->records)
          && g_list_model_get_n_items (G_LIST_MODEL (self->records)) > 0)
        g_object_unref (g_list_model_get_item (G_LIST_MODEL (self->records), 0));
      return G_SOURCE_CONTINUE;
    }
  if (position >= 0)
    gtk_widget_activate_action (GTK_WIDGET (self->records_view), "list.scroll-to-item", "u",
                                (guint) position);
  self->scroll_id = 0;
  return G_SOURCE_REMOVE;
}

static void
show_record_loaded_cb (GObject      *object,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  g_autoptr(TocsinWindow) self = user_data;
  g_autoptr(TocsinRecord) record = NULL;
  g_autoptr(GError) error = NULL;
  gint position;

  record = tocsin_history_get_record_finish (TOCSIN_HISTORY (object), result, &error);
  if (record == NULL)
    {
      if (error == NULL)
        toast (self, _("That record was deleted."));
      else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        toast (self, error->message);
      return;
    }

  position = tocsin_record_list_find (self->records, tocsin_record_get_id (record));
  g_clear_handle_id (&self->scroll_id, g_source_remove);
  if (position >= 0)
    gtk_widget_activate_action (GTK_WIDGET (self->records_view), "list.scroll-to-item", "u",
                                (guint) position);
  else
    {
      self->scroll_to_id = tocsin_record_get_id (record);
      self->scroll_tries = 0;
      self->scroll_id = g_timeout_add (100, scroll_to_record_cb, self);
    }
  if (!tocsin_record_get_read (record))
    tocsin_client_mark_read (self->client, tocsin_record_get_id (record), TRUE);
  gtk_window_present (GTK_WINDOW (tocsin_record_details_new (GTK_WINDOW (self), record)));
}

void
tocsin_window_show_record (TocsinWindow *self,
                           gint64        id)
{
  g_return_if_fail (TOCSIN_IS_WINDOW (self));

  /* Clear whatever would hide it. */
  gtk_toggle_button_set_active (self->search_button, FALSE);
  gtk_single_selection_set_selected (self->channel_selection, 0);
  g_object_set (self, "unread-only", FALSE, NULL);
  adw_leaflet_navigate (self->leaflet, ADW_NAVIGATION_DIRECTION_FORWARD);
  tocsin_history_get_record_async (tocsin_client_get_history (self->client), id,
                                   self->cancellable, show_record_loaded_cb, g_object_ref (self));
}

TocsinRecordList *
tocsin_window_get_record_list (TocsinWindow *self)
{
  g_return_val_if_fail (TOCSIN_IS_WINDOW (self), NULL);
  return self->records;
}

GtkListView *
tocsin_window_get_records_view (TocsinWindow *self)
{
  g_return_val_if_fail (TOCSIN_IS_WINDOW (self), NULL);
  return self->records_view;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static gboolean
tocsin_window_close_request (GtkWindow *window)
{
  TocsinWindow *self = TOCSIN_WINDOW (window);
  int width, height;

  gtk_window_get_default_size (window, &width, &height);
  g_settings_set_int (self->settings, "window-width", width);
  g_settings_set_int (self->settings, "window-height", height);
  g_settings_set_boolean (self->settings, "window-maximized", gtk_window_is_maximized (window));

  /* The first time, say why notifications keep coming after the window is gone. */
  if (g_settings_get_boolean (self->settings, "run-in-background")
      && !g_settings_get_boolean (self->settings, "first-close-toast-shown"))
    {
      AdwToast *t = toast_new (_("Tocsin keeps running in the background to deliver notifications"));

      g_settings_set_boolean (self->settings, "first-close-toast-shown", TRUE);
      adw_toast_set_timeout (t, 0);
      adw_toast_set_button_label (t, _("Close Window"));
      adw_toast_set_action_name (t, "window.close");
      adw_toast_overlay_add_toast (self->toast_overlay, t);
      return TRUE;
    }

  return GTK_WINDOW_CLASS (tocsin_window_parent_class)->close_request (window);
}

static void
tocsin_window_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  TocsinWindow *self = TOCSIN_WINDOW (object);

  switch (prop_id)
    {
    case PROP_UNREAD_ONLY:
      g_value_set_boolean (value, self->records && tocsin_record_list_get_unread_only (self->records));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tocsin_window_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  TocsinWindow *self = TOCSIN_WINDOW (object);

  switch (prop_id)
    {
    case PROP_UNREAD_ONLY:
      if (self->records != NULL
          && tocsin_record_list_get_unread_only (self->records) != g_value_get_boolean (value))
        {
          self->want_top = TRUE;
          tocsin_record_list_set_unread_only (self->records, g_value_get_boolean (value));
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tocsin_window_dispose (GObject *object)
{
  TocsinWindow *self = TOCSIN_WINDOW (object);

  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
  g_clear_handle_id (&self->clock_id, g_source_remove);
  g_clear_handle_id (&self->scroll_id, g_source_remove);
  g_clear_handle_id (&self->top_id, g_source_remove);
  g_clear_handle_id (&self->unread_id, g_source_remove);
  if (self->export_chooser)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->export_chooser));
  g_clear_object (&self->export_chooser);
  /* Unbind the views before their models and the clock go. */
  if (self->records_view)
    gtk_list_view_set_model (self->records_view, NULL);
  if (self->channel_view)
    gtk_list_view_set_model (self->channel_view, NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), TOCSIN_TYPE_WINDOW);
  g_clear_object (&self->channel_selection);
  g_clear_object (&self->records);
  g_clear_object (&self->all_store);
  g_clear_object (&self->all_marker);
  g_clear_object (&self->clock);
  g_clear_object (&self->settings);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->unread, g_hash_table_unref);
  G_OBJECT_CLASS (tocsin_window_parent_class)->dispose (object);
}

/* The history cannot write (disk full, read-only...): a strip above the records says so until
 * a write works again. A strip, not a toast: it lasts as long as the condition does (what
 * AdwBanner, not in libadwaita 1.2, is for). */
static void
history_write_error_cb (TocsinWindow *self)
{
  TocsinHistory *history = tocsin_client_get_history (self->client);
  const GError *error = tocsin_history_get_write_error (history);

  if (error != NULL)
    {
      g_autofree char *text =
        tocsin_history_describe_error (error, tocsin_history_get_path (history));

      gtk_label_set_text (self->storage_label, text);
    }
  gtk_revealer_set_reveal_child (self->storage_revealer, error != NULL);
}

/* "application" is not a construct property of GtkWindow, so this runs after g_object_new(). */
static void
tocsin_window_setup (TocsinWindow      *self,
                     TocsinApplication *app)
{
  GtkListItemFactory *factory;
  GListModel *subscriptions;
  GListStore *sections;
  GtkFlattenListModel *flat;
  GtkNoSelection *no_selection;

  self->app = app;
  self->client = tocsin_application_get_client (self->app);
  self->settings = g_object_ref (tocsin_application_get_settings (self->app));

  gtk_window_set_default_size (GTK_WINDOW (self),
                               g_settings_get_int (self->settings, "window-width"),
                               g_settings_get_int (self->settings, "window-height"));
  if (g_settings_get_boolean (self->settings, "window-maximized"))
    gtk_window_maximize (GTK_WINDOW (self));

  /* Sidebar: "All channels", then every subscription. */
  subscriptions = tocsin_client_get_subscriptions (self->client);
  self->all_marker = g_object_new (G_TYPE_OBJECT, NULL);
  self->all_store = g_list_store_new (G_TYPE_OBJECT);
  g_list_store_append (self->all_store, self->all_marker);
  sections = g_list_store_new (G_TYPE_LIST_MODEL);
  g_list_store_append (sections, self->all_store);
  g_list_store_append (sections, subscriptions);
  flat = gtk_flatten_list_model_new (G_LIST_MODEL (sections));
  self->channel_selection = gtk_single_selection_new (G_LIST_MODEL (flat));
  gtk_single_selection_set_autoselect (self->channel_selection, TRUE);
  g_signal_connect_object (self->channel_selection, "notify::selected-item",
                           G_CALLBACK (channel_selected_cb), self, G_CONNECT_SWAPPED);
  /* The "All channels" row counts subscriptions. */
  g_signal_connect_object (subscriptions, "items-changed", G_CALLBACK (tick), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (subscriptions, "items-changed", G_CALLBACK (update_records_stack), self,
                           G_CONNECT_SWAPPED);
  factory = gtk_signal_list_item_factory_new ();
  g_signal_connect (factory, "setup", G_CALLBACK (sidebar_setup_cb), self);
  g_signal_connect (factory, "bind", G_CALLBACK (sidebar_bind_cb), self);
  g_signal_connect (factory, "unbind", G_CALLBACK (sidebar_unbind_cb), self);
  gtk_list_view_set_factory (self->channel_view, factory);
  g_object_unref (factory);
  gtk_list_view_set_model (self->channel_view, GTK_SELECTION_MODEL (self->channel_selection));
  {
    GtkGesture *click = gtk_gesture_click_new ();

    gtk_event_controller_set_propagation_phase (GTK_EVENT_CONTROLLER (click), GTK_PHASE_CAPTURE);
    g_signal_connect_object (click, "released", G_CALLBACK (channel_click_cb), self,
                             G_CONNECT_SWAPPED);
    gtk_widget_add_controller (GTK_WIDGET (self->channel_view), GTK_EVENT_CONTROLLER (click));
  }

  /* Records. */
  self->records = tocsin_record_list_new (tocsin_client_get_history (self->client));
  /* Before the view's own handler (connected with the model below): the position is still the
   * one before the change. */
  g_signal_connect_object (self->records, "notify::loading", G_CALLBACK (records_loading_cb),
                           self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->records, "items-changed", G_CALLBACK (records_items_changed_cb),
                           self, G_CONNECT_SWAPPED);
  g_signal_connect_object (gtk_scrolled_window_get_vadjustment (self->records_scroller),
                           "value-changed", G_CALLBACK (records_scrolled_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->records, "items-changed", G_CALLBACK (update_records_stack),
                           self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->records, "notify::loading", G_CALLBACK (update_records_stack),
                           self, G_CONNECT_SWAPPED);
  factory = gtk_signal_list_item_factory_new ();
  g_signal_connect (factory, "setup", G_CALLBACK (record_setup_cb), self);
  g_signal_connect (factory, "bind", G_CALLBACK (record_bind_cb), self);
  g_signal_connect (factory, "unbind", G_CALLBACK (record_unbind_cb), self);
  gtk_list_view_set_factory (self->records_view, factory);
  g_object_unref (factory);
  no_selection = gtk_no_selection_new (g_object_ref (G_LIST_MODEL (self->records)));
  gtk_list_view_set_model (self->records_view, GTK_SELECTION_MODEL (no_selection));
  g_object_unref (no_selection);
  g_signal_connect_object (self->records_view, "activate", G_CALLBACK (record_activated_cb), self,
                           G_CONNECT_SWAPPED);

  {
    const char *changes[] = { "record-added", "record-changed", "record-removed", "reset" };

    for (guint i = 0; i < G_N_ELEMENTS (changes); i++)
      g_signal_connect_object (tocsin_client_get_history (self->client), changes[i],
                               G_CALLBACK (queue_recount_unread), self, G_CONNECT_SWAPPED);
    g_signal_connect_object (subscriptions, "items-changed", G_CALLBACK (queue_recount_unread),
                             self, G_CONNECT_SWAPPED);
    queue_recount_unread (self);
  }

  g_signal_connect_object (tocsin_client_get_history (self->client), "notify::write-error",
                           G_CALLBACK (history_write_error_cb), self, G_CONNECT_SWAPPED);
  history_write_error_cb (self);

  /* Relay states. */
  g_signal_connect_object (tocsin_client_get_connections (self->client), "items-changed",
                           G_CALLBACK (connections_changed_cb), self, G_CONNECT_SWAPPED);
  connections_changed_cb (self);
  self->clock_id = g_timeout_add_seconds (1, clock_cb, self);

  {
    /* A hyphen inserted at a wrap would look like part of the command. */
    PangoAttrList *attrs = pango_attr_list_new ();

    pango_attr_list_insert (attrs, pango_attr_insert_hyphens_new (FALSE));
    gtk_label_set_attributes (self->empty_curl_label, attrs);
    pango_attr_list_unref (attrs);
  }
  /* Without it GtkSearchBar warns on every key press and cannot hand typing to the entry. */
  gtk_search_bar_connect_entry (self->search_bar, GTK_EDITABLE (self->search_entry));
  gtk_search_bar_set_key_capture_widget (self->search_bar, GTK_WIDGET (self));
  channel_selected_cb (self);
  update_records_stack (self);
}

static void
tocsin_window_class_init (TocsinWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  object_class->dispose = tocsin_window_dispose;
  object_class->get_property = tocsin_window_get_property;
  object_class->set_property = tocsin_window_set_property;
  window_class->close_request = tocsin_window_close_request;

  properties[PROP_UNREAD_ONLY] =
    g_param_spec_boolean ("unread-only", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/tocsin/Tocsin/tocsin-window.ui");
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, leaflet);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, channel_view);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, content_title);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, search_button);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, search_bar);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, search_entry);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, relay_revealer);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, relay_state_label);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, storage_revealer);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, storage_label);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, records_stack);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, records_view);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, no_results_page);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, records_scroller);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, empty_page);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, empty_subscribe_button);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, empty_create_button);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, empty_curl_box);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, empty_curl_label);
  gtk_widget_class_bind_template_callback (widget_class, copy_curl_cb);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, new_button);
  gtk_widget_class_bind_template_child (widget_class, TocsinWindow, new_label);
  gtk_widget_class_bind_template_callback (widget_class, new_button_clicked_cb);
  gtk_widget_class_bind_template_callback (widget_class, invert_boolean);
  gtk_widget_class_bind_template_callback (widget_class, channel_activated_cb);
  gtk_widget_class_bind_template_callback (widget_class, leaflet_folded_cb);
  gtk_widget_class_bind_template_callback (widget_class, search_changed_cb);
  gtk_widget_class_bind_template_callback (widget_class, stop_search_cb);
  gtk_widget_class_bind_template_callback (widget_class, search_mode_cb);

  gtk_widget_class_install_action (widget_class, "win.search", NULL, search_action);
  gtk_widget_class_install_action (widget_class, "win.subscribe", NULL, subscribe_action);
  gtk_widget_class_install_action (widget_class, "win.new-channel", NULL, new_channel_action);
  gtk_widget_class_install_action (widget_class, "win.action-presses", NULL,
                                   action_presses_action);
  gtk_widget_class_install_action (widget_class, "win.edit-channel", NULL, edit_channel_action);
  gtk_widget_class_install_action (widget_class, "win.channel-deliveries", NULL,
                                   channel_deliveries_action);
  gtk_widget_class_install_action (widget_class, "win.channel-settings", NULL,
                                   channel_settings_action);
  gtk_widget_class_install_action (widget_class, "win.back", NULL, back_action);
  gtk_widget_class_install_action (widget_class, "win.show-all", NULL, show_all_action);
  gtk_widget_class_install_action (widget_class, "win.mark-all-read", NULL, mark_all_read_action);
  gtk_widget_class_install_action (widget_class, "win.clear-channel", NULL, clear_channel_action);
  gtk_widget_class_install_action (widget_class, "win.clear-all", NULL, clear_all_action);
  gtk_widget_class_install_action (widget_class, "win.unsubscribe", NULL, unsubscribe_action);
  gtk_widget_class_install_action (widget_class, "win.export", NULL, export_action);
  gtk_widget_class_install_action (widget_class, "win.open-link", "(sx)", open_link_action);
  gtk_widget_class_install_action (widget_class, "win.record-set-read", "(xb)",
                                   record_set_read_action);
  gtk_widget_class_install_action (widget_class, "win.record-delete", "x", record_delete_action);
  gtk_widget_class_install_action (widget_class, "win.toast", "s", toast_action);
  gtk_widget_class_install_action (widget_class, "win.retry", NULL, retry_action);
  gtk_widget_class_install_property_action (widget_class, "win.unread-only", "unread-only");
}

static void
tocsin_window_init (TocsinWindow *self)
{
  self->cancellable = g_cancellable_new ();
  self->clock = g_simple_action_new ("tick", NULL);
  self->unread = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  gtk_widget_init_template (GTK_WIDGET (self));
  tocsin_a11y_fix_button_names (GTK_WIDGET (self));
}

TocsinWindow *
tocsin_window_new (TocsinApplication *application)
{
  TocsinWindow *self;

  g_return_val_if_fail (TOCSIN_IS_APPLICATION (application), NULL);

  self = g_object_new (TOCSIN_TYPE_WINDOW, "application", application, NULL);
  tocsin_window_setup (self, application);
  return self;
}
