/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-subscribe-dialog"

#include "config.h"

#include <glib/gi18n.h>

#include "tocsin-a11y.h"
#include "tocsin-subscribe-dialog.h"

struct _TocsinSubscribeDialog
{
  AdwWindow parent_instance;

  /* template widgets */
  AdwWindowTitle      *window_title;
  GtkButton           *subscribe_button;
  AdwPreferencesGroup *link_group;
  AdwEntryRow         *link_row;
  GtkSpinner          *spinner;
  GtkLabel            *status_label;
  AdwPreferencesGroup *info_group;
  AdwActionRow        *relay_row;
  AdwActionRow        *sends_row;
  AdwPreferencesGroup *options_group;
  AdwComboRow         *type_row;
  GtkSwitch           *mute_switch;
  AdwPreferencesGroup *unsubscribe_group;

  /* borrowed */
  GtkWindow *parent;

  /* owned */
  TocsinClient       *client;
  TocsinSubscription *subscription;   /* fetched (new) or the existing one */
  gboolean            existing;
  gboolean            filling;        /* fill_info() is setting the option widgets */
  GCancellable       *cancellable;    /* the fetch in flight */
  guint               fetch_id;       /* debounce of typing */
};

enum {
  SUBSCRIBED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (TocsinSubscribeDialog, tocsin_subscribe_dialog, ADW_TYPE_WINDOW)

static void
show_status (TocsinSubscribeDialog *self,
             const char            *text)
{
  gtk_label_set_text (self->status_label, text ? text : "");
  gtk_widget_set_visible (GTK_WIDGET (self->status_label), text != NULL);
}

static char *
describe_sends (JsonObject *info)
{
  const char *title = info ? json_object_get_string_member_with_default (info, "title", "") : "";
  const char *body = info ? json_object_get_string_member_with_default (info, "body", "") : "";

  if (*title == '\0' && *body == '\0')
    return g_strdup (_("Whatever its webhook is rung with"));
  if (*body == '\0')
    return g_strdup (title);
  if (*title == '\0')
    return g_strdup (body);
  return g_strdup_printf ("%s — %s", title, body);
}

static void
fill_info (TocsinSubscribeDialog *self,
           JsonObject            *info)
{
  TocsinSubscription *subscription = self->subscription;
  const char *description = tocsin_subscription_get_description (subscription);
  g_autofree char *sends = describe_sends (info);
  g_autofree char *escaped_relay = g_markup_escape_text (tocsin_subscription_get_relay_url (subscription), -1);
  g_autofree char *escaped_sends = g_markup_escape_text (sends, -1);
  const char *name = tocsin_subscription_get_name (subscription);
  g_autofree char *escaped_name = g_markup_escape_text (name ? name : "", -1);

  /* Group titles and row subtitles are markup; channel names come from strangers. */
  adw_preferences_group_set_title (self->info_group, escaped_name);
  if (description && *description)
    {
      g_autofree char *escaped = g_markup_escape_text (description, -1);

      adw_preferences_group_set_description (self->info_group, escaped);
    }
  adw_action_row_set_subtitle (self->relay_row, escaped_relay);
  adw_action_row_set_subtitle (self->sends_row, escaped_sends);
  gtk_widget_set_visible (GTK_WIDGET (self->sends_row), info != NULL);
  gtk_widget_set_visible (GTK_WIDGET (self->info_group), TRUE);
  gtk_widget_set_visible (GTK_WIDGET (self->options_group), TRUE);

  self->filling = TRUE;
  /* The rows are in TocsinNotifyType's order. */
  adw_combo_row_set_selected (self->type_row, tocsin_subscription_get_notify_type (subscription));
  gtk_switch_set_active (self->mute_switch, tocsin_subscription_get_muted (subscription));
  self->filling = FALSE;
}

static void
info_fetched_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  TocsinSubscribeDialog *self;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) info = NULL;
  g_autoptr(TocsinSubscription) subscription = NULL;

  subscription = tocsin_client_fetch_channel_info_finish (TOCSIN_CLIENT (object), result, &info,
                                                          &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

  self = TOCSIN_SUBSCRIBE_DIALOG (user_data);
  gtk_spinner_stop (self->spinner);
  if (subscription == NULL)
    {
      show_status (self, error->message);
      gtk_widget_add_css_class (GTK_WIDGET (self->link_row), "error");
      return;
    }

  gtk_widget_remove_css_class (GTK_WIDGET (self->link_row), "error");
  show_status (self, NULL);
  g_set_object (&self->subscription, subscription);
  fill_info (self, info);
  gtk_widget_set_sensitive (GTK_WIDGET (self->subscribe_button), TRUE);
}

static gboolean
fetch_cb (gpointer data)
{
  TocsinSubscribeDialog *self = data;
  const char *text = gtk_editable_get_text (GTK_EDITABLE (self->link_row));
  g_autofree char *link = g_strstrip (g_strdup (text));
  g_autofree char *relay_url = NULL;
  g_autofree char *token = NULL;
  g_autoptr(GError) error = NULL;

  self->fetch_id = 0;
  if (*link == '\0')
    {
      show_status (self, NULL);
      return G_SOURCE_REMOVE;
    }
  if (!tocsin_subscription_parse_url (link, &relay_url, &token, &error))
    {
      show_status (self, error->message);
      gtk_widget_add_css_class (GTK_WIDGET (self->link_row), "error");
      return G_SOURCE_REMOVE;
    }

  show_status (self, NULL);
  gtk_spinner_start (self->spinner);
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  /* The dialog cancels in dispose, so the callback never sees a dead dialog. */
  tocsin_client_fetch_channel_info_async (self->client, link, self->cancellable, info_fetched_cb,
                                          self);
  return G_SOURCE_REMOVE;
}

static void
link_changed_cb (TocsinSubscribeDialog *self)
{
  if (self->existing)
    return;
  gtk_widget_set_sensitive (GTK_WIDGET (self->subscribe_button), FALSE);
  gtk_widget_remove_css_class (GTK_WIDGET (self->link_row), "error");
  gtk_widget_set_visible (GTK_WIDGET (self->info_group), FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->options_group), FALSE);
  gtk_spinner_stop (self->spinner);
  g_cancellable_cancel (self->cancellable);
  g_clear_handle_id (&self->fetch_id, g_source_remove);
  /* Wait for a pause in typing; a paste fetches almost at once. */
  self->fetch_id = g_timeout_add (300, fetch_cb, self);
}

static void
link_activated_cb (TocsinSubscribeDialog *self)
{
  if (gtk_widget_get_sensitive (GTK_WIDGET (self->subscribe_button)))
    gtk_widget_activate (GTK_WIDGET (self->subscribe_button));
  else if (self->fetch_id != 0)
    {
      g_clear_handle_id (&self->fetch_id, g_source_remove);
      fetch_cb (self);
    }
}

static void
apply_options (TocsinSubscribeDialog *self)
{
  if (self->subscription == NULL)
    return;
  tocsin_subscription_set_notify_type (self->subscription,
                                       MIN (adw_combo_row_get_selected (self->type_row),
                                            TOCSIN_NOTIFY_TYPE_CALLING));
  tocsin_subscription_set_muted (self->subscription, gtk_switch_get_active (self->mute_switch));
}

static void
options_changed_cb (TocsinSubscribeDialog *self)
{
  if (!self->existing || self->subscription == NULL || self->filling)
    return;
  apply_options (self);
  tocsin_client_update_subscription (self->client, self->subscription);
}

static void
subscribed_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(TocsinSubscribeDialog) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinSubscription) subscription = NULL;

  subscription = tocsin_client_subscribe_finish (TOCSIN_CLIENT (object), result, &error);
  if (subscription == NULL)
    {
      g_autofree char *text = g_strdup_printf (_("Could not subscribe: %s"), error->message);

      show_status (self, text);
      gtk_widget_set_sensitive (GTK_WIDGET (self->subscribe_button), TRUE);
      return;
    }
  g_signal_emit (self, signals[SUBSCRIBED], 0, subscription);
  gtk_window_destroy (GTK_WINDOW (self));
}

static void
subscribe_clicked_cb (TocsinSubscribeDialog *self)
{
  if (self->subscription == NULL)
    return;
  if (self->existing)
    {
      gtk_window_destroy (GTK_WINDOW (self));
      return;
    }
  apply_options (self);
  gtk_widget_set_sensitive (GTK_WIDGET (self->subscribe_button), FALSE);
  tocsin_client_subscribe_async (self->client, self->subscription, NULL, subscribed_cb,
                                 g_object_ref (self));
}

static void
copy_link_cb (TocsinSubscribeDialog *self)
{
  gdk_clipboard_set_text (gtk_widget_get_clipboard (GTK_WIDGET (self)),
                          gtk_editable_get_text (GTK_EDITABLE (self->link_row)));
}

static void
unsubscribe_clicked_cb (TocsinSubscribeDialog *self)
{
  GtkWindow *parent = self->parent;

  /* The window asks for confirmation about its selected channel, which is this one. */
  gtk_window_destroy (GTK_WINDOW (self));
  if (parent != NULL)
    gtk_widget_activate_action (GTK_WIDGET (parent), "win.unsubscribe", NULL);
}

static void
tocsin_subscribe_dialog_dispose (GObject *object)
{
  TocsinSubscribeDialog *self = TOCSIN_SUBSCRIBE_DIALOG (object);

  g_clear_handle_id (&self->fetch_id, g_source_remove);
  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->subscription);
  g_clear_object (&self->client);
  G_OBJECT_CLASS (tocsin_subscribe_dialog_parent_class)->dispose (object);
}

static void
tocsin_subscribe_dialog_class_init (TocsinSubscribeDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = tocsin_subscribe_dialog_dispose;

  signals[SUBSCRIBED] = g_signal_new ("subscribed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                      0, NULL, NULL, NULL, G_TYPE_NONE, 1,
                                      TOCSIN_TYPE_SUBSCRIPTION);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/tocsin/Tocsin/tocsin-subscribe-dialog.ui");
  gtk_widget_class_bind_template_child (widget_class, TocsinSubscribeDialog, window_title);
  gtk_widget_class_bind_template_child (widget_class, TocsinSubscribeDialog, subscribe_button);
  gtk_widget_class_bind_template_child (widget_class, TocsinSubscribeDialog, link_group);
  gtk_widget_class_bind_template_child (widget_class, TocsinSubscribeDialog, link_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinSubscribeDialog, spinner);
  gtk_widget_class_bind_template_child (widget_class, TocsinSubscribeDialog, status_label);
  gtk_widget_class_bind_template_child (widget_class, TocsinSubscribeDialog, info_group);
  gtk_widget_class_bind_template_child (widget_class, TocsinSubscribeDialog, relay_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinSubscribeDialog, sends_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinSubscribeDialog, options_group);
  gtk_widget_class_bind_template_child (widget_class, TocsinSubscribeDialog, type_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinSubscribeDialog, mute_switch);
  gtk_widget_class_bind_template_child (widget_class, TocsinSubscribeDialog, unsubscribe_group);
  gtk_widget_class_bind_template_callback (widget_class, link_changed_cb);
  gtk_widget_class_bind_template_callback (widget_class, link_activated_cb);
  gtk_widget_class_bind_template_callback (widget_class, options_changed_cb);
  gtk_widget_class_bind_template_callback (widget_class, subscribe_clicked_cb);
  gtk_widget_class_bind_template_callback (widget_class, copy_link_cb);
  gtk_widget_class_bind_template_callback (widget_class, unsubscribe_clicked_cb);
}

static void
tocsin_subscribe_dialog_init (TocsinSubscribeDialog *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  tocsin_a11y_fix_button_names (GTK_WIDGET (self));
}

GtkWidget *
tocsin_subscribe_dialog_new (GtkWindow    *parent,
                             TocsinClient *client,
                             const char   *link)
{
  TocsinSubscribeDialog *self;

  g_return_val_if_fail (TOCSIN_IS_CLIENT (client), NULL);

  self = g_object_new (TOCSIN_TYPE_SUBSCRIBE_DIALOG, "transient-for", parent, NULL);
  self->parent = parent;
  self->client = g_object_ref (client);
  if (link != NULL)
    {
      gtk_editable_set_text (GTK_EDITABLE (self->link_row), link);
      /* Came from a link: fetch now rather than after the typing pause. */
      g_clear_handle_id (&self->fetch_id, g_source_remove);
      fetch_cb (self);
    }
  /* Ctrl+N is "paste the link here": the link field has focus when the dialog opens. */
  gtk_window_set_focus (GTK_WINDOW (self), GTK_WIDGET (self->link_row));
  return GTK_WIDGET (self);
}

GtkWidget *
tocsin_subscribe_dialog_new_for_subscription (GtkWindow          *parent,
                                              TocsinClient       *client,
                                              TocsinSubscription *subscription)
{
  TocsinSubscribeDialog *self;
  g_autofree char *url = NULL;

  g_return_val_if_fail (TOCSIN_IS_CLIENT (client), NULL);
  g_return_val_if_fail (TOCSIN_IS_SUBSCRIPTION (subscription), NULL);

  self = g_object_new (TOCSIN_TYPE_SUBSCRIBE_DIALOG,
                       "transient-for", parent,
                       "title", _("Channel Settings"),
                       NULL);
  self->parent = parent;
  self->client = g_object_ref (client);
  self->subscription = g_object_ref (subscription);
  self->existing = TRUE;

  url = tocsin_subscription_dup_subscribe_url (subscription);
  gtk_editable_set_text (GTK_EDITABLE (self->link_row), url);
  gtk_widget_set_visible (GTK_WIDGET (self->link_group), FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->unsubscribe_group), TRUE);
  adw_window_title_set_title (self->window_title, _("Channel Settings"));
  gtk_button_set_label (self->subscribe_button, _("_Done"));
  gtk_widget_set_sensitive (GTK_WIDGET (self->subscribe_button), TRUE);
  gtk_widget_set_visible (GTK_WIDGET (self->window_title), TRUE);
  fill_info (self, NULL);
  return GTK_WIDGET (self);
}
