/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-direct-key-group.c: the "Direct Key" group of Preferences.
 *
 * A Direct key (docs/api.md, "Direct keys") rings only its owner. The relay keeps it in a direct
 * inbox; this group creates one on the relay the user names (the relay of a channel they own is
 * offered), shows its Direct URL and a ready curl line with Copy buttons, rotates it after a
 * confirmation, and shows the inbox's subscribe link for the user's other desktops. Creating it
 * subscribes this desktop to the inbox, time-sensitive (Echobell's default for Direct), under the
 * channel name "Direct". Everything goes through TocsinOwner and TocsinClient: nothing here
 * blocks the main loop.
 */
#define G_LOG_DOMAIN "tocsin-preferences"

#include "config.h"

#include <glib/gi18n.h>

#include "tocsin-json.h"
#include "tocsin-application.h"
#include "tocsin-direct-key-group.h"
#include "tocsin-window.h"

struct _TocsinDirectKeyGroup
{
  AdwPreferencesGroup parent_instance;

  /* template widgets */
  AdwEntryRow  *relay_row;
  AdwActionRow *create_row;
  GtkButton    *create_button;
  AdwActionRow *url_row;
  GtkButton    *url_copy_button;
  AdwActionRow *curl_row;
  GtkButton    *curl_copy_button;
  AdwActionRow *subscribe_row;
  GtkButton    *subscribe_copy_button;
  AdwActionRow *rotate_row;
  GtkButton    *rotate_button;

  /* owned */
  TocsinOwnedChannel *inbox;   /* NULL until the user has a Direct key */
  GCancellable       *cancellable;   /* the history read at start; cancelled in dispose */
  gboolean            busy;
};

G_DEFINE_FINAL_TYPE (TocsinDirectKeyGroup, tocsin_direct_key_group, ADW_TYPE_PREFERENCES_GROUP)

static TocsinApplication *
get_app (void)
{
  GApplication *app = g_application_get_default ();

  return TOCSIN_IS_APPLICATION (app) ? TOCSIN_APPLICATION (app) : NULL;
}

static void
toast (TocsinDirectKeyGroup *self,
       const char           *text)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));

  if (ADW_IS_PREFERENCES_WINDOW (root))
    adw_preferences_window_add_toast (ADW_PREFERENCES_WINDOW (root), adw_toast_new (text));
  else
    g_message ("%s", text);
}

/* Action row subtitles are markup. */
static void
set_subtitle_text (AdwActionRow *row,
                   const char   *text)
{
  g_autofree char *escaped = g_markup_escape_text (text, -1);

  adw_action_row_set_subtitle (row, escaped);
}

static void
set_copy_text (GtkButton  *button,
               const char *text)
{
  g_object_set_data_full (G_OBJECT (button), "text", g_strdup (text), g_free);
}

static void
set_busy (TocsinDirectKeyGroup *self,
          gboolean              busy)
{
  self->busy = busy;
  gtk_widget_set_sensitive (GTK_WIDGET (self->create_button), !busy);
  gtk_widget_set_sensitive (GTK_WIDGET (self->rotate_button), !busy);
}

static void
update (TocsinDirectKeyGroup *self)
{
  gboolean has_key = self->inbox != NULL && self->inbox->webhook_url != NULL;

  gtk_widget_set_visible (GTK_WIDGET (self->relay_row), !has_key);
  gtk_widget_set_visible (GTK_WIDGET (self->create_row), !has_key);
  gtk_widget_set_visible (GTK_WIDGET (self->url_row), has_key);
  gtk_widget_set_visible (GTK_WIDGET (self->curl_row), has_key);
  gtk_widget_set_visible (GTK_WIDGET (self->subscribe_row), has_key);
  gtk_widget_set_visible (GTK_WIDGET (self->rotate_row), has_key);
  if (!has_key)
    return;

  {
    g_autofree char *quoted = g_shell_quote (self->inbox->webhook_url);
    /* Echobell's fields; a sender may add externalLink and notificationType. */
    g_autofree char *curl = g_strdup_printf ("curl -d title=Hello -d body=World %s", quoted);

    set_subtitle_text (self->url_row, self->inbox->webhook_url);
    set_copy_text (self->url_copy_button, self->inbox->webhook_url);
    set_subtitle_text (self->curl_row, curl);
    set_copy_text (self->curl_copy_button, curl);
  }
  if (self->inbox->subscribe_url != NULL)
    {
      g_autofree char *text = g_strdup_printf (_("Open this link in Tocsin on each of your "
                                                 "other desktops: %s"),
                                               self->inbox->subscribe_url);

      set_subtitle_text (self->subscribe_row, text);
      set_copy_text (self->subscribe_copy_button, self->inbox->subscribe_url);
    }
}

static void
copy_clicked_cb (GtkButton *button,
                 gpointer   user_data)
{
  const char *text = g_object_get_data (G_OBJECT (button), "text");
  GtkWidget *group = gtk_widget_get_ancestor (GTK_WIDGET (button),
                                              TOCSIN_TYPE_DIRECT_KEY_GROUP);

  if (text == NULL)
    return;
  gdk_clipboard_set_text (gtk_widget_get_clipboard (GTK_WIDGET (button)), text);
  if (group != NULL)
    toast (TOCSIN_DIRECT_KEY_GROUP (group), _("Copied"));
}

/* ---- create ------------------------------------------------------------------------- */

static void
created_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(TocsinDirectKeyGroup) self = user_data;
  g_autoptr(GError) error = NULL;
  TocsinApplication *app = get_app ();
  TocsinOwnedChannel *inbox;

  set_busy (self, FALSE);
  inbox = tocsin_owner_create_direct_finish (TOCSIN_OWNER (object), result, &error);
  if (inbox == NULL)
    {
      g_autofree char *text = g_strdup_printf (_("The Direct key was not created: %s"),
                                               error->message);

      toast (self, text);
      return;
    }
  g_clear_pointer (&self->inbox, tocsin_owned_channel_free);
  self->inbox = inbox;
  if (app != NULL)
    {
      /* Records show under this name; Direct rings time-sensitive unless a message says
       * otherwise. Not tied to the group's lifetime: closing Preferences keeps it. */
      tocsin_application_subscribe_self (app, inbox->subscribe_url, _("Direct"),
                                         TOCSIN_NOTIFY_TYPE_TIME_SENSITIVE,
                                         _("This desktop was not subscribed to your Direct key: "
                                           "%s"));
      tocsin_application_reload_owned_channels (app);
    }
  update (self);
  toast (self, _("Your Direct key is ready"));
}

static void
create_clicked_cb (TocsinDirectKeyGroup *self)
{
  TocsinApplication *app = get_app ();
  const char *text = gtk_editable_get_text (GTK_EDITABLE (self->relay_row));
  g_autofree char *relay = g_strstrip (g_strdup (text));

  if (app == NULL || self->busy)
    return;
  if (!g_str_has_prefix (relay, "https://") && !g_str_has_prefix (relay, "http://"))
    {
      gtk_widget_add_css_class (GTK_WIDGET (self->relay_row), "error");
      toast (self, _("Name the relay first, starting with https:// or http://"));
      return;
    }
  gtk_widget_remove_css_class (GTK_WIDGET (self->relay_row), "error");
  set_busy (self, TRUE);
  tocsin_owner_create_direct_async (tocsin_application_get_owner (app), relay, NULL, NULL,
                                    created_cb, g_object_ref (self));
}

/* ---- rotate ------------------------------------------------------------------------- */

static void
rotated_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(TocsinDirectKeyGroup) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) answer = NULL;
  TocsinApplication *app = get_app ();
  const char *url;

  set_busy (self, FALSE);
  answer = tocsin_owner_request_finish (TOCSIN_OWNER (object), result, &error);
  if (answer == NULL)
    {
      g_autofree char *text = g_strdup_printf (_("The Direct key was not rotated: %s"),
                                               error->message);

      toast (self, text);
      return;
    }
  url = tocsin_json_get_string (answer, "direct_url", NULL);
  if (url != NULL && self->inbox != NULL)
    {
      g_free (self->inbox->webhook_url);
      self->inbox->webhook_url = g_strdup (url);
    }
  if (app != NULL)
    tocsin_application_reload_owned_channels (app);
  update (self);
  toast (self, _("New Direct URL: the old one no longer works"));
}

static void
rotate_response_cb (AdwMessageDialog     *dialog,
                    const char           *response,
                    TocsinDirectKeyGroup *self)
{
  TocsinApplication *app = get_app ();

  if (!g_str_equal (response, "confirm") || app == NULL || self->inbox == NULL || self->busy)
    return;
  set_busy (self, TRUE);
  tocsin_owner_rotate_direct_async (tocsin_application_get_owner (app), self->inbox, NULL,
                                    rotated_cb, g_object_ref (self));
}

static void
rotate_clicked_cb (TocsinDirectKeyGroup *self)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  AdwMessageDialog *dialog;

  dialog = ADW_MESSAGE_DIALOG (adw_message_dialog_new (GTK_IS_WINDOW (root) ? GTK_WINDOW (root)
                                                                            : NULL,
                                                       _("Rotate the Direct Key?"),
                                                       _("The current Direct URL stops working "
                                                         "at once: scripts that still use it get "
                                                         "“Direct key not found” until you give "
                                                         "them the new one. Your desktops stay "
                                                         "subscribed.")));
  adw_message_dialog_add_responses (dialog, "cancel", _("_Cancel"), "confirm", _("_Rotate"),
                                    NULL);
  adw_message_dialog_set_response_appearance (dialog, "confirm", ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_default_response (dialog, "cancel");
  adw_message_dialog_set_close_response (dialog, "cancel");
  g_signal_connect_object (dialog, "response", G_CALLBACK (rotate_response_cb), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

/* ---- lifecycle ---------------------------------------------------------------------- */

/* Preferences opened before the app had read its owned channels: read them here. */
static void
owned_loaded_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(TocsinDirectKeyGroup) self = user_data;
  g_autoptr(GPtrArray) channels = NULL;

  channels = tocsin_history_load_owned_channels_finish (TOCSIN_HISTORY (object), result, NULL);
  if (channels == NULL || self->inbox != NULL)
    return;
  for (guint i = 0; i < channels->len; i++)
    if (tocsin_owned_channel_is_direct (channels->pdata[i]))
      {
        self->inbox = tocsin_owned_channel_copy (channels->pdata[i]);
        update (self);
        return;
      }
}

static void
tocsin_direct_key_group_dispose (GObject *object)
{
  TocsinDirectKeyGroup *self = TOCSIN_DIRECT_KEY_GROUP (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  G_OBJECT_CLASS (tocsin_direct_key_group_parent_class)->dispose (object);
}

static void
tocsin_direct_key_group_finalize (GObject *object)
{
  TocsinDirectKeyGroup *self = TOCSIN_DIRECT_KEY_GROUP (object);

  g_clear_pointer (&self->inbox, tocsin_owned_channel_free);
  G_OBJECT_CLASS (tocsin_direct_key_group_parent_class)->finalize (object);
}

static void
tocsin_direct_key_group_class_init (TocsinDirectKeyGroupClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = tocsin_direct_key_group_dispose;
  object_class->finalize = tocsin_direct_key_group_finalize;

  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/tocsin/Tocsin/"
                                               "tocsin-direct-key-group.ui");
  gtk_widget_class_bind_template_child (widget_class, TocsinDirectKeyGroup, relay_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinDirectKeyGroup, create_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinDirectKeyGroup, create_button);
  gtk_widget_class_bind_template_child (widget_class, TocsinDirectKeyGroup, url_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinDirectKeyGroup, url_copy_button);
  gtk_widget_class_bind_template_child (widget_class, TocsinDirectKeyGroup, curl_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinDirectKeyGroup, curl_copy_button);
  gtk_widget_class_bind_template_child (widget_class, TocsinDirectKeyGroup, subscribe_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinDirectKeyGroup,
                                        subscribe_copy_button);
  gtk_widget_class_bind_template_child (widget_class, TocsinDirectKeyGroup, rotate_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinDirectKeyGroup, rotate_button);
  gtk_widget_class_bind_template_callback (widget_class, create_clicked_cb);
  gtk_widget_class_bind_template_callback (widget_class, copy_clicked_cb);
  gtk_widget_class_bind_template_callback (widget_class, rotate_clicked_cb);
}

/* The relay offered for a new key: the relay of a channel the user owns, else the default. */
static char *
suggested_relay (TocsinApplication *app)
{
  GListModel *subscriptions;

  if (app == NULL)
    return g_strdup ("");
  subscriptions = tocsin_client_get_subscriptions (tocsin_application_get_client (app));
  for (guint i = 0; i < g_list_model_get_n_items (subscriptions); i++)
    {
      g_autoptr(TocsinSubscription) sub = g_list_model_get_item (subscriptions, i);
      const char *relay = tocsin_subscription_get_relay_url (sub);

      if (tocsin_application_find_owned_channel (app, relay,
                                                 tocsin_subscription_get_channel_id (sub)))
        return g_strdup (relay);
    }
  return g_settings_get_string (tocsin_application_get_settings (app), "default-relay");
}

static void
tocsin_direct_key_group_init (TocsinDirectKeyGroup *self)
{
  TocsinApplication *app = get_app ();
  const TocsinOwnedChannel *inbox = app ? tocsin_application_find_direct_inbox (app) : NULL;
  g_autofree char *relay = suggested_relay (app);

  gtk_widget_init_template (GTK_WIDGET (self));
  gtk_editable_set_text (GTK_EDITABLE (self->relay_row), relay);
  if (inbox != NULL)
    self->inbox = tocsin_owned_channel_copy (inbox);
  else if (app != NULL)
    {
      self->cancellable = g_cancellable_new ();
      tocsin_history_load_owned_channels_async (tocsin_application_get_history (app),
                                                self->cancellable, owned_loaded_cb,
                                                g_object_ref (self));
    }
  update (self);
}
