/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <glib/gi18n.h>
#include <gio/gunixoutputstream.h>
#include <glib-unix.h>
#include <signal.h>

#include "tocsin-application.h"
#include "tocsin-notifier.h"
#include "tocsin-caller.h"
#include "tocsin-preferences-window.h"
#include "tocsin-resources.h"
#include "tocsin-window.h"

struct _TocsinApplication
{
  AdwApplication parent_instance;

  /* owned */
  GSettings      *settings;
  TocsinHistory  *history;
  TocsinNotifier *notifier;
  TocsinCaller   *caller;
  TocsinClient   *client;
  TocsinOwner    *owner;
  TocsinActionRunner *action_runner;
  GPtrArray      *owned_channels;   /* TocsinOwnedChannel */
  GCancellable   *cancellable;
  gboolean        held;             /* running in the background holds the application */
  gboolean        autostart_busy;   /* an autostart entry write is running */
  gboolean        autostart_again;  /* ...and the setting changed since it began */
  gboolean        sandboxed;        /* in a Flatpak: autostart goes through the Background portal */
  guint           portal_response_id;  /* the Response subscription of the pending request */
};

G_DEFINE_FINAL_TYPE (TocsinApplication, tocsin_application, ADW_TYPE_APPLICATION)

static const GOptionEntry option_entries[] = {
  { "subscribe", 's', 0, G_OPTION_ARG_STRING, NULL,
    N_("Subscribe to the channel of this subscribe link without asking"), N_("URL") },
  { "background", 'b', 0, G_OPTION_ARG_NONE, NULL,
    N_("Start without a window and keep receiving notifications"), NULL },
  { "export-records", 0, 0, G_OPTION_ARG_FILENAME, NULL,
    N_("Write every record as JSON Lines to FILE (- for standard output) and exit"), N_("FILE") },
  { "version", 0, 0, G_OPTION_ARG_NONE, NULL, N_("Show the version and exit"), NULL },
  { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, NULL, NULL, N_("[SUBSCRIBE-LINK…]") },
  { NULL }
};

/* ---- background / autostart ----------------------------------------------------------- */

static void
set_held (TocsinApplication *self,
          gboolean           held)
{
  if (held == self->held)
    return;
  self->held = held;
  if (held)
    g_application_hold (G_APPLICATION (self));
  else
    g_application_release (G_APPLICATION (self));
}

static char *
autostart_path (void)
{
  return g_build_filename (g_get_user_config_dir (), "autostart", APP_ID ".desktop", NULL);
}

typedef struct
{
  char *path;
  char *contents;   /* NULL: remove the entry */
} AutostartJob;

static void
autostart_job_free (gpointer data)
{
  AutostartJob *job = data;

  g_free (job->path);
  g_free (job->contents);
  g_free (job);
}

/* In a worker thread: the disk may be slow, the main loop must not wait on it. */
static void
autostart_thread (GTask        *task,
                  gpointer      source_object,
                  gpointer      task_data,
                  GCancellable *cancellable)
{
  AutostartJob *job = task_data;
  g_autofree char *dir = g_path_get_dirname (job->path);
  GError *error = NULL;

  if (job->contents == NULL)
    {
      if (g_unlink (job->path) != 0 && errno != ENOENT)
        {
          int saved = errno;
          g_task_return_new_error (task, G_IO_ERROR, g_io_error_from_errno (saved),
                                   _("Could not remove the autostart entry %s: %s"), job->path,
                                   g_strerror (saved));
          return;
        }
    }
  else if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int saved = errno;
      g_task_return_new_error (task, G_IO_ERROR, g_io_error_from_errno (saved),
                               _("Could not create the folder %s: %s"), dir, g_strerror (saved));
      return;
    }
  else if (!g_file_set_contents_full (job->path, job->contents, -1,
                                      G_FILE_SET_CONTENTS_CONSISTENT, 0644, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static void apply_autostart (TocsinApplication *self);

static void
autostart_done_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  TocsinApplication *self = TOCSIN_APPLICATION (object);
  g_autoptr(GError) error = NULL;

  self->autostart_busy = FALSE;
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (self));

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      if (TOCSIN_IS_WINDOW (window))
        tocsin_window_show_error (TOCSIN_WINDOW (window), error->message);
      else
        g_message ("%s", error->message);
    }
  /* The switch moved again while the disk was busy: catch up with its last position. */
  if (self->autostart_again)
    {
      self->autostart_again = FALSE;
      apply_autostart (self);
    }
}

/* In a Flatpak sandbox the host's ~/.config/autostart is out of reach (no home access), and a
 * desktop may stop sandboxed apps that run without a window unless they asked:
 * org.freedesktop.portal.Background asks the user once, then writes (or removes) the autostart
 * entry itself. GDBus directly, as libportal would be a dependency for one call. The answer comes
 * as a Response signal on a Request object whose path is known before the call (the
 * handle_token), so the subscription (its AddMatch sent first on the same connection) cannot
 * miss it. */
static void
background_portal_response_cb (GDBusConnection *bus,
                               const char      *sender,
                               const char      *path,
                               const char      *interface,
                               const char      *signal,
                               GVariant        *parameters,
                               gpointer         user_data)
{
  TocsinApplication *self = TOCSIN_APPLICATION (user_data);
  g_autoptr(GVariant) results = NULL;
  gboolean wanted = g_settings_get_boolean (self->settings, "autostart");
  gboolean autostart = FALSE;
  guint32 response = 2;

  g_dbus_connection_signal_unsubscribe (bus, self->portal_response_id);
  self->portal_response_id = 0;
  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(ua{sv})")))
    return;
  g_variant_get (parameters, "(u@a{sv})", &response, &results);
  g_variant_lookup (results, "autostart", "b", &autostart);
  /* 0: granted; 1: the user said no; 2: anything else. Only a refused "on" needs a word. */
  if (wanted && (response != 0 || !autostart))
    {
      GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (self));
      const char *text = _("The system did not allow Tocsin to start at login. You can allow it "
                           "in your system's settings for background apps.");

      if (TOCSIN_IS_WINDOW (window))
        tocsin_window_show_error (TOCSIN_WINDOW (window), text);
      else
        g_message ("%s", text);
    }
}

static void
background_portal_called_cb (GObject      *object,
                             GAsyncResult *result,
                             gpointer      user_data)
{
  g_autoptr(TocsinApplication) self = user_data;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (object), result, &error);
  if (reply == NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (self));
      g_autofree char *text = g_strdup_printf (_("Could not ask the system to start Tocsin at "
                                                 "login: %s"), error->message);

      if (self->portal_response_id != 0)
        g_dbus_connection_signal_unsubscribe (G_DBUS_CONNECTION (object),
                                              self->portal_response_id);
      self->portal_response_id = 0;
      if (TOCSIN_IS_WINDOW (window))
        tocsin_window_show_error (TOCSIN_WINDOW (window), text);
      else
        g_message ("%s", text);
    }
}

static void
request_background_portal (TocsinApplication *self,
                           gboolean           autostart)
{
  GDBusConnection *bus = g_application_get_dbus_connection (G_APPLICATION (self));
  const char *commandline[] = { "tocsin", "--background", NULL };
  static guint serial;
  g_autofree char *token = NULL;
  g_autofree char *sender = NULL;
  g_autofree char *path = NULL;
  GVariantBuilder options;

  if (bus == NULL)
    return;
  token = g_strdup_printf ("tocsin%u", ++serial);
  /* The unique name ":1.42" becomes "1_42" in the Request's path. */
  sender = g_strdup (g_dbus_connection_get_unique_name (bus) + 1);
  g_strdelimit (sender, ".", '_');
  path = g_strdup_printf ("/org/freedesktop/portal/desktop/request/%s/%s", sender, token);

  if (self->portal_response_id != 0)
    g_dbus_connection_signal_unsubscribe (bus, self->portal_response_id);
  self->portal_response_id =
    g_dbus_connection_signal_subscribe (bus, "org.freedesktop.portal.Desktop",
                                        "org.freedesktop.portal.Request", "Response", path, NULL,
                                        G_DBUS_SIGNAL_FLAGS_NONE,
                                        background_portal_response_cb, self, NULL);

  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "handle_token", g_variant_new_string (token));
  g_variant_builder_add (&options, "{sv}", "reason",
                         g_variant_new_string (_("Receive webhook notifications in the background")));
  g_variant_builder_add (&options, "{sv}", "autostart", g_variant_new_boolean (autostart));
  g_variant_builder_add (&options, "{sv}", "commandline",
                         g_variant_new_strv (commandline, -1));
  g_variant_builder_add (&options, "{sv}", "dbus-activatable", g_variant_new_boolean (FALSE));
  g_dbus_connection_call (bus, "org.freedesktop.portal.Desktop",
                          "/org/freedesktop/portal/desktop", "org.freedesktop.portal.Background",
                          "RequestBackground", g_variant_new ("(sa{sv})", "", &options),
                          G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, -1, self->cancellable,
                          background_portal_called_cb, g_object_ref (self));
}

/* The XDG autostart entry starts Tocsin in the background at login. One write at a time, so
 * quick toggles end in the state the switch shows. */
static void
apply_autostart (TocsinApplication *self)
{
  g_autoptr(GTask) task = NULL;
  AutostartJob *job;

  if (self->sandboxed)
    {
      request_background_portal (self, g_settings_get_boolean (self->settings, "autostart"));
      return;
    }

  if (self->autostart_busy)
    {
      self->autostart_again = TRUE;
      return;
    }

  job = g_new0 (AutostartJob, 1);
  job->path = autostart_path ();
  if (g_settings_get_boolean (self->settings, "autostart"))
    job->contents = g_strdup_printf ("[Desktop Entry]\n"
                                     "Type=Application\n"
                                     "Name=Tocsin\n"
                                     "Comment=%s\n"
                                     "Exec=tocsin --background\n"
                                     "Icon=" APP_ID "\n"
                                     "Terminal=false\n"
                                     "X-GNOME-Autostart-enabled=true\n",
                                     _("Receive webhook notifications in the background"));

  self->autostart_busy = TRUE;
  task = g_task_new (self, self->cancellable, autostart_done_cb, NULL);
  g_task_set_source_tag (task, apply_autostart);
  g_task_set_task_data (task, job, autostart_job_free);
  g_task_run_in_thread (task, autostart_thread);
}

static void
settings_changed_cb (TocsinApplication *self,
                     const char        *key)
{
  if (g_str_equal (key, "autostart"))
    apply_autostart (self);
  else if (g_str_equal (key, "ca-file"))
    tocsin_client_reload_tls (self->client);
  else if (g_str_equal (key, "run-in-background"))
    {
      /* Without a window and without background mode there is nothing left to do. */
      if (!g_settings_get_boolean (self->settings, "run-in-background")
          && gtk_application_get_active_window (GTK_APPLICATION (self)) != NULL)
        set_held (self, FALSE);
      else if (g_settings_get_boolean (self->settings, "run-in-background"))
        set_held (self, TRUE);
    }
}

static void client_error_cb (TocsinApplication *self,
                             const char        *message);

/* ---- owned channels ------------------------------------------------------------------- */

static void
owned_loaded_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(TocsinApplication) self = user_data;
  g_autoptr(GError) error = NULL;
  GPtrArray *channels;
  GtkWindow *window;

  channels = tocsin_history_load_owned_channels_finish (TOCSIN_HISTORY (object), result, &error);
  if (channels == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_autofree char *text = g_strdup_printf (_("Could not load your channels: %s"),
                                                   error->message);

          client_error_cb (self, text);
        }
      return;
    }
  g_clear_pointer (&self->owned_channels, g_ptr_array_unref);
  self->owned_channels = channels;

  window = gtk_application_get_active_window (GTK_APPLICATION (self));
  if (TOCSIN_IS_WINDOW (window))
    tocsin_window_owned_channels_changed (TOCSIN_WINDOW (window));
}

/* ---- subscribing this desktop -------------------------------------------------------- */

typedef struct
{
  char             *name;
  TocsinNotifyType  type;
  char             *error_format;
} SelfSubscribe;

static void
self_subscribe_free (SelfSubscribe *data)
{
  g_free (data->name);
  g_free (data->error_format);
  g_free (data);
}

static void
self_subscribe_failed (SelfSubscribe *data,
                       const GError  *error)
{
  GApplication *app = g_application_get_default ();
  GtkWindow *window = GTK_IS_APPLICATION (app)
                      ? gtk_application_get_active_window (GTK_APPLICATION (app)) : NULL;
  g_autoptr(GString) text = g_string_new (data->error_format);

  g_string_replace (text, "%s", error->message, 1);
  if (TOCSIN_IS_WINDOW (window))
    tocsin_window_show_error (TOCSIN_WINDOW (window), text->str);
  else
    g_message ("%s", text->str);
}

static void
self_subscribed_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  SelfSubscribe *data = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinSubscription) subscription = NULL;

  subscription = tocsin_client_subscribe_finish (TOCSIN_CLIENT (object), result, &error);
  if (subscription == NULL)
    self_subscribe_failed (data, error);
  self_subscribe_free (data);
}

static void
self_info_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  SelfSubscribe *data = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinSubscription) subscription = NULL;

  subscription = tocsin_client_fetch_channel_info_finish (TOCSIN_CLIENT (object), result, NULL,
                                                          &error);
  if (subscription == NULL)
    {
      self_subscribe_failed (data, error);
      self_subscribe_free (data);
      return;
    }
  if (data->name != NULL)
    tocsin_subscription_set_name (subscription, data->name);
  tocsin_subscription_set_notify_type (subscription, data->type);
  tocsin_client_subscribe_async (TOCSIN_CLIENT (object), subscription, NULL, self_subscribed_cb,
                                 data);
}

void
tocsin_application_subscribe_self (TocsinApplication *self,
                                   const char        *subscribe_url,
                                   const char        *name,
                                   TocsinNotifyType   type,
                                   const char        *error_format)
{
  SelfSubscribe *data;

  g_return_if_fail (TOCSIN_IS_APPLICATION (self));
  g_return_if_fail (subscribe_url != NULL && error_format != NULL);

  data = g_new0 (SelfSubscribe, 1);
  data->name = g_strdup (name);
  data->type = type;
  data->error_format = g_strdup (error_format);
  tocsin_client_fetch_channel_info_async (self->client, subscribe_url, NULL, self_info_cb, data);
}

void
tocsin_application_reload_owned_channels (TocsinApplication *self)
{
  g_return_if_fail (TOCSIN_IS_APPLICATION (self));

  tocsin_history_load_owned_channels_async (self->history, self->cancellable, owned_loaded_cb,
                                            g_object_ref (self));
}

const TocsinOwnedChannel *
tocsin_application_find_owned_channel (TocsinApplication *self,
                                       const char        *relay_url,
                                       gint64             channel_id)
{
  g_return_val_if_fail (TOCSIN_IS_APPLICATION (self), NULL);

  for (guint i = 0; self->owned_channels && i < self->owned_channels->len; i++)
    {
      const TocsinOwnedChannel *channel = g_ptr_array_index (self->owned_channels, i);

      if (channel->id == channel_id && g_strcmp0 (channel->relay_url, relay_url) == 0)
        return channel;
    }
  return NULL;
}

const TocsinOwnedChannel *
tocsin_application_find_direct_inbox (TocsinApplication *self)
{
  g_return_val_if_fail (TOCSIN_IS_APPLICATION (self), NULL);

  for (guint i = 0; self->owned_channels && i < self->owned_channels->len; i++)
    {
      const TocsinOwnedChannel *channel = g_ptr_array_index (self->owned_channels, i);

      if (tocsin_owned_channel_is_direct (channel))
        return channel;
    }
  return NULL;
}

/* ---- window and notifier -------------------------------------------------------------- */

GtkWindow *
tocsin_application_present_window (TocsinApplication *self)
{
  GtkWindow *window;

  g_return_val_if_fail (TOCSIN_IS_APPLICATION (self), NULL);

  window = gtk_application_get_active_window (GTK_APPLICATION (self));
  if (window == NULL)
    window = GTK_WINDOW (tocsin_window_new (self));
  gtk_window_present (window);
  return window;
}

static void
notifier_show_record_cb (TocsinApplication *self,
                         gint64             id)
{
  GtkWindow *window = tocsin_application_present_window (self);

  tocsin_window_show_record (TOCSIN_WINDOW (window), id);
}

static void
notifier_show_channel_cb (TocsinApplication *self,
                          const char        *relay_url,
                          gint64             channel_id)
{
  GtkWindow *window = tocsin_application_present_window (self);

  tocsin_window_show_channel (TOCSIN_WINDOW (window), relay_url, channel_id);
}

/* A button on a pop-up (issue 15). */
static void
notifier_action_cb (TocsinApplication *self,
                    TocsinRecord      *record,
                    guint              index)
{
  tocsin_action_runner_press (self->action_runner, record, index);
}

/* A press that ended without success is said in words: in the window when it is open (the
 * record's row shows it too), else in the log; the pop-up has gone by then. */
static void
action_failed_cb (TocsinApplication *self,
                  gint64             record_id,
                  guint              index,
                  const char        *message)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (self));

  if (TOCSIN_IS_WINDOW (window))
    tocsin_window_show_error (TOCSIN_WINDOW (window), message);
  else
    g_message ("%s", message);
}

/* The channel editor talks to the same relays as the subscriptions, and the "http" actions
 * are sent to the same private services: same extra trust. */
static void
client_tls_cb (TocsinApplication *self)
{
  GTlsDatabase *database = tocsin_client_get_tls_database (self->client);

  tocsin_owner_set_tls_database (self->owner, database);
  tocsin_action_runner_set_tls_database (self->action_runner, database);
}

static void
client_error_cb (TocsinApplication *self,
                 const char        *message)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (self));

  if (TOCSIN_IS_WINDOW (window))
    tocsin_window_show_error (TOCSIN_WINDOW (window), message);
  else
    g_message ("%s", message);
}

static void
fresh_history_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(TocsinApplication) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *aside = tocsin_history_start_fresh_finish (TOCSIN_HISTORY (object), result,
                                                              &error);
  GtkWindow *window = tocsin_application_present_window (self);
  AdwMessageDialog *dialog;

  if (aside == NULL)
    dialog = ADW_MESSAGE_DIALOG (adw_message_dialog_new (window,
                                                         _("No fresh history was started"),
                                                         error->message));
  else
    {
      g_printerr (_("A fresh history was started; the damaged one is kept as %s\n"), aside);
      dialog = ADW_MESSAGE_DIALOG (adw_message_dialog_new (window,
                                                           _("A fresh history was started"),
                                                           NULL));
      /* Translators: %s is a file, e.g. /home/ada/.local/share/tocsin/history.db.damaged-… */
      adw_message_dialog_format_body (dialog, _("The damaged file is kept as %s. Your "
                                                "subscriptions were in it: open your subscribe "
                                                "links again."), aside);
    }
  adw_message_dialog_add_response (dialog, "close", _("_Close"));
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
damaged_response_cb (AdwMessageDialog  *dialog,
                     const char        *response,
                     TocsinApplication *self)
{
  if (g_strcmp0 (response, "fresh") == 0)
    tocsin_history_start_fresh_async (self->history, NULL, fresh_history_cb,
                                      g_object_ref (self));
}

/* A damaged history loads nothing and stores nothing: say so, and offer a fresh one beside it
 * (the old file is kept, untouched). Asked once per run. */
static void
offer_fresh_history (TocsinApplication *self,
                     const char        *text)
{
  static gboolean asked = FALSE;
  AdwMessageDialog *dialog;

  if (asked)
    return;
  asked = TRUE;
  dialog = ADW_MESSAGE_DIALOG (adw_message_dialog_new (tocsin_application_present_window (self),
                                                       _("The history file is damaged"),
                                                       text));
  adw_message_dialog_add_responses (dialog, "later", _("_Not Now"),
                                    "fresh", _("_Start a Fresh History"), NULL);
  adw_message_dialog_set_response_appearance (dialog, "fresh", ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (dialog, "fresh");
  g_signal_connect_object (dialog, "response", G_CALLBACK (damaged_response_cb), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

/* Whether the history can write changed. The window shows it in a banner; stderr (the journal,
 * and the terminal of `tocsin --background`) gets the same sentence, once per change. */
static void
history_write_error_cb (TocsinApplication *self)
{
  const GError *error = tocsin_history_get_write_error (self->history);

  if (error != NULL)
    {
      g_autofree char *text =
        tocsin_history_describe_error (error, tocsin_history_get_path (self->history));

      g_printerr ("%s\n", text);
      if (tocsin_history_error_is_damage (error))
        offer_fresh_history (self, text);
    }
  else
    g_printerr ("%s\n", _("Notifications are saved in the history again."));
}

/* ---- actions -------------------------------------------------------------------------- */

static void
quit_activated (GSimpleAction *action,
                GVariant      *param,
                gpointer       user_data)
{
  TocsinApplication *self = user_data;
  g_autoptr(GList) windows = g_list_copy (gtk_application_get_windows (GTK_APPLICATION (self)));

  set_held (self, FALSE);
  /* Pending history writes finish in shutdown. */
  for (GList *l = windows; l; l = l->next)
    gtk_window_destroy (l->data);
  g_application_quit (G_APPLICATION (self));
}

static void
preferences_activated (GSimpleAction *action,
                       GVariant      *param,
                       gpointer       user_data)
{
  TocsinApplication *self = user_data;
  GtkWindow *window = tocsin_application_present_window (self);

  gtk_window_present (GTK_WINDOW (tocsin_preferences_window_new (window)));
}

static void
about_activated (GSimpleAction *action,
                 GVariant      *param,
                 gpointer       user_data)
{
  TocsinApplication *self = user_data;
  GtkWindow *window = tocsin_application_present_window (self);
  const char *developers[] = { "The Tocsin authors", NULL };

  adw_show_about_window (window,
                         "application-name", _("Tocsin"),
                         "application-icon", APP_ID,
                         "version", PACKAGE_VERSION,
                         "comments", _("Desktop notifications from your webhooks"),
                         "developers", developers,
                         "license-type", GTK_LICENSE_GPL_3_0,
                         "translator-credits", _("translator-credits"),
                         NULL);
}

static const GActionEntry app_actions[] = {
  { "quit", quit_activated },
  { "preferences", preferences_activated },
  { "about", about_activated },
};

/* ---- command line --------------------------------------------------------------------- */

static int
export_records (const char *target)
{
  g_autoptr(GOutputStream) stream = NULL;
  g_autoptr(GError) error = NULL;
  gint64 count;

  /* Runs before (and without) registering: reads the database read-only and exits, so it works
   * whether or not another instance is running. There is no main loop to block yet. */
  if (g_strcmp0 (target, "-") == 0)
    stream = g_unix_output_stream_new (STDOUT_FILENO, FALSE);
  else
    {
      g_autoptr(GFile) file = g_file_new_for_commandline_arg (target);

      stream = G_OUTPUT_STREAM (g_file_replace (file, NULL, FALSE, G_FILE_CREATE_PRIVATE, NULL,
                                                &error));
      if (stream == NULL)
        {
          g_printerr (_("Could not write %s: %s\n"), target, error->message);
          return 1;
        }
    }

  count = tocsin_history_export_sync (NULL, stream, NULL, &error);
  if (count < 0 || !g_output_stream_close (stream, NULL, count < 0 ? NULL : &error))
    {
      g_printerr (_("Could not export the records: %s\n"), error->message);
      return 1;
    }
  if (g_strcmp0 (target, "-") != 0)
    g_printerr (g_dngettext (GETTEXT_PACKAGE, "Exported %d record to %s\n",
                             "Exported %d records to %s\n", (int) MIN (count, G_MAXINT)),
                (int) MIN (count, G_MAXINT), target);
  return 0;
}

static int
tocsin_application_handle_local_options (GApplication *app,
                                         GVariantDict *options)
{
  const char *export_target = NULL;

  if (g_variant_dict_contains (options, "version"))
    {
      g_print ("tocsin %s\n", PACKAGE_VERSION);
      return 0;
    }
  if (g_variant_dict_lookup (options, "export-records", "^&ay", &export_target))
    return export_records (export_target);

  return -1;
}

typedef struct
{
  TocsinApplication       *app;
  GApplicationCommandLine *command_line;
  TocsinSubscription      *subscription;
  gint64                   deadline;
} SubscribeRequest;

static void
subscribe_request_free (SubscribeRequest *request)
{
  g_application_release (G_APPLICATION (request->app));
  g_object_unref (request->app);
  g_object_unref (request->command_line);
  g_clear_object (&request->subscription);
  g_free (request);
}

/* A script that runs `tocsin --subscribe=URL` and then rings the channel must not lose that
 * first message, so answer once the relay has acknowledged the subscription (the connection's
 * cursor for the token is set by the relay's "subscribed" frame), or say that it is not
 * reachable yet. */
static gboolean
command_line_wait_live_cb (gpointer data)
{
  SubscribeRequest *request = data;
  TocsinSubscription *subscription = request->subscription;
  TocsinConnection *connection;
  const char *name = tocsin_subscription_get_name (subscription);
  const char *error;

  connection = tocsin_client_get_connection (request->app->client,
                                             tocsin_subscription_get_relay_url (subscription));
  error = tocsin_subscription_get_error (subscription);
  if (error != NULL)
    {
      g_application_command_line_printerr (request->command_line, _("Could not subscribe: %s\n"),
                                           error);
      g_application_command_line_set_exit_status (request->command_line, 1);
    }
  else if (connection != NULL
           && tocsin_connection_get_cursor (connection, tocsin_subscription_get_token (subscription)) >= 0)
    g_application_command_line_print (request->command_line, _("Subscribed to “%s”.\n"), name);
  else if (g_get_monotonic_time () > request->deadline)
    g_application_command_line_print (request->command_line,
                                      _("Subscribed to “%s”. Its relay cannot be reached right now; Tocsin keeps trying and will catch up.\n"),
                                      name);
  else
    return G_SOURCE_CONTINUE;

  subscribe_request_free (request);
  return G_SOURCE_REMOVE;
}

static void
command_line_subscribed_cb (GObject      *object,
                            GAsyncResult *result,
                            gpointer      user_data)
{
  SubscribeRequest *request = user_data;
  g_autoptr(GError) error = NULL;

  request->subscription = tocsin_client_subscribe_finish (TOCSIN_CLIENT (object), result, &error);
  if (request->subscription == NULL)
    {
      g_application_command_line_printerr (request->command_line,
                                           _("Could not subscribe: %s\n"), error->message);
      g_application_command_line_set_exit_status (request->command_line, 1);
      subscribe_request_free (request);
      return;
    }
  request->deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  g_timeout_add (50, command_line_wait_live_cb, request);
}

static void
command_line_info_cb (GObject      *object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  SubscribeRequest *request = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinSubscription) subscription = NULL;

  subscription = tocsin_client_fetch_channel_info_finish (TOCSIN_CLIENT (object), result, NULL,
                                                          &error);
  if (subscription == NULL)
    {
      g_application_command_line_printerr (request->command_line,
                                           _("Could not subscribe: %s\n"), error->message);
      g_application_command_line_set_exit_status (request->command_line, 1);
      subscribe_request_free (request);
      return;
    }
  tocsin_client_subscribe_async (TOCSIN_CLIENT (object), subscription, NULL,
                                 command_line_subscribed_cb, request);
}

static int
tocsin_application_command_line (GApplication            *app,
                                 GApplicationCommandLine *command_line)
{
  TocsinApplication *self = TOCSIN_APPLICATION (app);
  GVariantDict *options = g_application_command_line_get_options_dict (command_line);
  g_autofree const char **links = NULL;
  const char *subscribe_url = NULL;
  gboolean background = FALSE;

  g_variant_dict_lookup (options, "background", "b", &background);
  g_variant_dict_lookup (options, "subscribe", "&s", &subscribe_url);
  g_variant_dict_lookup (options, G_OPTION_REMAINING, "^a&s", &links);

  if (subscribe_url != NULL)
    {
      SubscribeRequest *request = g_new0 (SubscribeRequest, 1);

      /* The calling process waits (and gets the exit status) until the subscription is saved. */
      g_application_hold (app);
      request->app = g_object_ref (self);
      request->command_line = g_object_ref (command_line);
      tocsin_client_fetch_channel_info_async (self->client, subscribe_url, NULL,
                                              command_line_info_cb, request);
    }

  if (background)
    set_held (self, TRUE);
  else if (links != NULL && links[0] != NULL)
    {
      GtkWindow *window = tocsin_application_present_window (self);

      for (guint i = 0; links[i]; i++)
        tocsin_window_ask_subscribe (TOCSIN_WINDOW (window), links[i]);
    }
  else if (subscribe_url == NULL || gtk_application_get_active_window (GTK_APPLICATION (self)) == NULL)
    {
      /* A plain launch; `--subscribe` from a script does not pop a window up if one is open. */
      if (!(subscribe_url != NULL && self->held))
        tocsin_application_present_window (self);
    }

  return g_application_command_line_get_exit_status (command_line);
}

void
tocsin_application_set_sandboxed (TocsinApplication *self,
                                  gboolean           sandboxed)
{
  g_return_if_fail (TOCSIN_IS_APPLICATION (self));

  self->sandboxed = !!sandboxed;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

/* Logout or `kill` ends the app the way Quit does, so pending history writes are not lost. */
static gboolean
terminate_cb (gpointer data)
{
  g_action_group_activate_action (G_ACTION_GROUP (data), "quit", NULL);
  return G_SOURCE_CONTINUE;
}

static void
tocsin_application_startup (GApplication *app)
{
  TocsinApplication *self = TOCSIN_APPLICATION (app);
  static const char *quit_accels[] = { "<Primary>q", NULL };
  static const char *preferences_accels[] = { "<Primary>comma", NULL };
  static const struct { const char *action; const char *accels[3]; } win_accels[] = {
    { "win.search", { "<Primary>f", NULL } },
    { "win.subscribe", { "<Primary>n", NULL } },
    { "win.new-channel", { "<Primary><Shift>n", NULL } },
    { "win.unread-only", { "<Primary>u", NULL } },
    { "win.mark-all-read", { "<Primary><Shift>a", NULL } },
    { "win.show-all", { "<Alt>Home", NULL } },
    { "window.close", { "<Primary>w", NULL } },
  };

  G_APPLICATION_CLASS (tocsin_application_parent_class)->startup (app);

  g_action_map_add_action_entries (G_ACTION_MAP (self), app_actions, G_N_ELEMENTS (app_actions),
                                   self);
  gtk_application_set_accels_for_action (GTK_APPLICATION (self), "app.quit", quit_accels);
  gtk_application_set_accels_for_action (GTK_APPLICATION (self), "app.preferences",
                                         preferences_accels);
  for (guint i = 0; i < G_N_ELEMENTS (win_accels); i++)
    gtk_application_set_accels_for_action (GTK_APPLICATION (self), win_accels[i].action,
                                           win_accels[i].accels);

  self->cancellable = g_cancellable_new ();
  /* GLib's own test for its portals (glib_should_use_portal). */
  self->sandboxed = g_file_test ("/.flatpak-info", G_FILE_TEST_EXISTS);
  self->settings = g_settings_new (APP_ID);
  self->history = tocsin_history_new (NULL);
  self->notifier = tocsin_notifier_new (self->settings);
  self->client = tocsin_client_new (self->history, self->notifier, self->settings);
  self->owner = tocsin_owner_new (self->history, tocsin_client_get_tls_database (self->client));
  self->caller = tocsin_caller_new (GTK_APPLICATION (self), self->client, self->notifier);
  self->action_runner = tocsin_action_runner_new (self->history, self->notifier, NULL);
  tocsin_action_runner_set_tls_database (self->action_runner,
                                         tocsin_client_get_tls_database (self->client));
  g_signal_connect_object (self->notifier, "action", G_CALLBACK (notifier_action_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->action_runner, "press-failed", G_CALLBACK (action_failed_cb),
                           self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->client, "notify::tls-database", G_CALLBACK (client_tls_cb),
                           self, G_CONNECT_SWAPPED);

  g_signal_connect_object (self->settings, "changed", G_CALLBACK (settings_changed_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->notifier, "show-record", G_CALLBACK (notifier_show_record_cb),
                           self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->notifier, "show-channel", G_CALLBACK (notifier_show_channel_cb),
                           self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->client, "error", G_CALLBACK (client_error_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->history, "notify::write-error",
                           G_CALLBACK (history_write_error_cb), self, G_CONNECT_SWAPPED);

  if (g_settings_get_boolean (self->settings, "run-in-background"))
    set_held (self, TRUE);

  g_unix_signal_add (SIGTERM, terminate_cb, self);
  g_unix_signal_add (SIGINT, terminate_cb, self);

  tocsin_client_start (self->client);
  tocsin_application_reload_owned_channels (self);
}

static void
tocsin_application_shutdown (GApplication *app)
{
  TocsinApplication *self = TOCSIN_APPLICATION (app);

  g_cancellable_cancel (self->cancellable);
  if (self->portal_response_id != 0 && g_application_get_dbus_connection (app) != NULL)
    g_dbus_connection_signal_unsubscribe (g_application_get_dbus_connection (app),
                                          self->portal_response_id);
  self->portal_response_id = 0;
  if (self->client != NULL)
    tocsin_client_stop (self->client);
  /* Whatever was received is on disk before the process goes. */
  if (self->history != NULL)
    tocsin_history_flush_sync (self->history);

  G_APPLICATION_CLASS (tocsin_application_parent_class)->shutdown (app);
}

static void
tocsin_application_activate (GApplication *app)
{
  tocsin_application_present_window (TOCSIN_APPLICATION (app));
}

static void
tocsin_application_dispose (GObject *object)
{
  TocsinApplication *self = TOCSIN_APPLICATION (object);

  g_clear_object (&self->owner);
  g_clear_object (&self->client);
  g_clear_object (&self->caller);
  g_clear_object (&self->action_runner);
  g_clear_object (&self->notifier);
  g_clear_object (&self->history);
  g_clear_object (&self->settings);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->owned_channels, g_ptr_array_unref);
  G_OBJECT_CLASS (tocsin_application_parent_class)->dispose (object);
}

static void
tocsin_application_class_init (TocsinApplicationClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  object_class->dispose = tocsin_application_dispose;
  app_class->startup = tocsin_application_startup;
  app_class->shutdown = tocsin_application_shutdown;
  app_class->activate = tocsin_application_activate;
  app_class->command_line = tocsin_application_command_line;
  app_class->handle_local_options = tocsin_application_handle_local_options;

  tocsin_register_resource ();
}

static void
tocsin_application_init (TocsinApplication *self)
{
  g_application_add_main_option_entries (G_APPLICATION (self), option_entries);
  g_application_set_option_context_summary (G_APPLICATION (self),
                                            _("Get a desktop notification whenever a webhook rings one of your channels."));
}

TocsinApplication *
tocsin_application_new (void)
{
  return g_object_new (TOCSIN_TYPE_APPLICATION,
                       "application-id", APP_ID,
                       /* --gapplication-app-id lets the demo run beside a real instance. */
                       "flags", G_APPLICATION_HANDLES_COMMAND_LINE
                                | G_APPLICATION_CAN_OVERRIDE_APP_ID,
                       "resource-base-path", "/io/github/tocsin/Tocsin",
                       NULL);
}

GSettings *
tocsin_application_get_settings (TocsinApplication *self)
{
  g_return_val_if_fail (TOCSIN_IS_APPLICATION (self), NULL);
  return self->settings;
}

TocsinClient *
tocsin_application_get_client (TocsinApplication *self)
{
  g_return_val_if_fail (TOCSIN_IS_APPLICATION (self), NULL);
  return self->client;
}

TocsinHistory *
tocsin_application_get_history (TocsinApplication *self)
{
  g_return_val_if_fail (TOCSIN_IS_APPLICATION (self), NULL);
  return self->history;
}

TocsinOwner *
tocsin_application_get_owner (TocsinApplication *self)
{
  g_return_val_if_fail (TOCSIN_IS_APPLICATION (self), NULL);
  return self->owner;
}

TocsinActionRunner *
tocsin_application_get_action_runner (TocsinApplication *self)
{
  g_return_val_if_fail (TOCSIN_IS_APPLICATION (self), NULL);
  return self->action_runner;
}
