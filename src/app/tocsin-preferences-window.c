/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-preferences"

#include "config.h"

#include <stdio.h>
#include <glib/gi18n.h>

#include "tocsin-a11y.h"
#include "tocsin-direct-key-group.h"
#include "tocsin-preferences-window.h"

struct _TocsinPreferencesWindow
{
  AdwPreferencesWindow parent_instance;

  /* template widgets */
  GtkSwitch      *background_switch;
  GtkSwitch      *autostart_switch;
  GtkSwitch      *sound_switch;
  AdwExpanderRow *quiet_row;
  AdwEntryRow    *quiet_start_row;
  AdwEntryRow    *quiet_end_row;
  AdwEntryRow    *default_relay_row;
  AdwActionRow   *ca_row;
  GtkButton      *ca_clear_button;
  GtkSpinButton  *retention_spin;

  /* owned */
  GSettings            *settings;
  GtkFileChooserNative *chooser;
};

G_DEFINE_FINAL_TYPE (TocsinPreferencesWindow, tocsin_preferences_window, ADW_TYPE_PREFERENCES_WINDOW)

/* "7:05" and "07:05" are fine; the notifier compares minutes since midnight. */
static gboolean
parse_hh_mm (const char *text,
             char      **normalized)
{
  guint hours, minutes;
  char tail;

  if (text == NULL || sscanf (text, "%u:%u%c", &hours, &minutes, &tail) != 2)
    return FALSE;
  if (hours > 23 || minutes > 59)
    return FALSE;
  *normalized = g_strdup_printf ("%02u:%02u", hours, minutes);
  return TRUE;
}

static void
apply_time (TocsinPreferencesWindow *self,
            AdwEntryRow             *row,
            const char              *key)
{
  g_autofree char *normalized = NULL;
  const char *text = gtk_editable_get_text (GTK_EDITABLE (row));

  if (!parse_hh_mm (text, &normalized))
    {
      g_autofree char *current = g_settings_get_string (self->settings, key);

      adw_preferences_window_add_toast (ADW_PREFERENCES_WINDOW (self),
                                        adw_toast_new (_("Use a time such as 22:00")));
      gtk_widget_add_css_class (GTK_WIDGET (row), "error");
      gtk_editable_set_text (GTK_EDITABLE (row), current);
      return;
    }
  gtk_widget_remove_css_class (GTK_WIDGET (row), "error");
  g_settings_set_string (self->settings, key, normalized);
  gtk_editable_set_text (GTK_EDITABLE (row), normalized);
}

static void
quiet_start_apply_cb (TocsinPreferencesWindow *self)
{
  apply_time (self, self->quiet_start_row, "quiet-hours-start");
}

static void
quiet_end_apply_cb (TocsinPreferencesWindow *self)
{
  apply_time (self, self->quiet_end_row, "quiet-hours-end");
}

static void
default_relay_apply_cb (TocsinPreferencesWindow *self)
{
  const char *text = gtk_editable_get_text (GTK_EDITABLE (self->default_relay_row));
  g_autofree char *stripped = g_strstrip (g_strdup (text));

  if (stripped[0] != '\0'
      && !g_str_has_prefix (stripped, "http://") && !g_str_has_prefix (stripped, "https://"))
    {
      adw_preferences_window_add_toast (ADW_PREFERENCES_WINDOW (self),
                                        adw_toast_new (_("Start with https:// or http://")));
      gtk_widget_add_css_class (GTK_WIDGET (self->default_relay_row), "error");
      return;
    }
  gtk_widget_remove_css_class (GTK_WIDGET (self->default_relay_row), "error");
  g_settings_set_string (self->settings, "default-relay", stripped);
}

static void
update_ca_row (TocsinPreferencesWindow *self)
{
  g_autofree char *path = g_settings_get_string (self->settings, "ca-file");

  if (path[0] == '\0')
    adw_action_row_set_subtitle (self->ca_row, _("None: only system certificates are trusted"));
  else
    {
      g_autofree char *escaped = g_markup_escape_text (path, -1);

      /* Action row subtitles are markup. */
      adw_action_row_set_subtitle (self->ca_row, escaped);
    }
  gtk_widget_set_visible (GTK_WIDGET (self->ca_clear_button), path[0] != '\0');
}

static void
ca_clear_cb (TocsinPreferencesWindow *self)
{
  g_settings_set_string (self->settings, "ca-file", "");
}

static void
chooser_response_cb (TocsinPreferencesWindow *self,
                     int                      response,
                     GtkFileChooserNative    *chooser)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));
      g_autofree char *path = file ? g_file_get_path (file) : NULL;

      if (path != NULL)
        g_settings_set_string (self->settings, "ca-file", path);
    }
  g_clear_object (&self->chooser);
}

static void
ca_choose_cb (TocsinPreferencesWindow *self)
{
  g_autoptr(GtkFileFilter) filter = gtk_file_filter_new ();

  /* GtkFileDialog is GTK 4.10; the native chooser is what 4.8 has. */
  g_clear_object (&self->chooser);
  self->chooser = gtk_file_chooser_native_new (_("Choose a Certificate Authority"),
                                               GTK_WINDOW (self),
                                               GTK_FILE_CHOOSER_ACTION_OPEN,
                                               _("_Trust"), _("_Cancel"));
  gtk_file_filter_set_name (filter, _("PEM certificates"));
  gtk_file_filter_add_pattern (filter, "*.pem");
  gtk_file_filter_add_pattern (filter, "*.crt");
  gtk_file_filter_add_mime_type (filter, "application/x-x509-ca-cert");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (self->chooser), filter);
  g_signal_connect_object (self->chooser, "response", G_CALLBACK (chooser_response_cb), self,
                           G_CONNECT_SWAPPED);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->chooser));
}

static void
settings_changed_cb (TocsinPreferencesWindow *self,
                     const char              *key)
{
  if (g_strcmp0 (key, "ca-file") == 0)
    update_ca_row (self);
}

static void
tocsin_preferences_window_dispose (GObject *object)
{
  TocsinPreferencesWindow *self = TOCSIN_PREFERENCES_WINDOW (object);

  if (self->chooser)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->chooser));
  g_clear_object (&self->chooser);
  g_clear_object (&self->settings);
  G_OBJECT_CLASS (tocsin_preferences_window_parent_class)->dispose (object);
}

static void
tocsin_preferences_window_class_init (TocsinPreferencesWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = tocsin_preferences_window_dispose;
  g_type_ensure (TOCSIN_TYPE_DIRECT_KEY_GROUP);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/tocsin/Tocsin/tocsin-preferences-window.ui");
  gtk_widget_class_bind_template_child (widget_class, TocsinPreferencesWindow, background_switch);
  gtk_widget_class_bind_template_child (widget_class, TocsinPreferencesWindow, autostart_switch);
  gtk_widget_class_bind_template_child (widget_class, TocsinPreferencesWindow, sound_switch);
  gtk_widget_class_bind_template_child (widget_class, TocsinPreferencesWindow, quiet_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinPreferencesWindow, quiet_start_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinPreferencesWindow, quiet_end_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinPreferencesWindow, default_relay_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinPreferencesWindow, ca_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinPreferencesWindow, ca_clear_button);
  gtk_widget_class_bind_template_child (widget_class, TocsinPreferencesWindow, retention_spin);
  gtk_widget_class_bind_template_callback (widget_class, quiet_start_apply_cb);
  gtk_widget_class_bind_template_callback (widget_class, quiet_end_apply_cb);
  gtk_widget_class_bind_template_callback (widget_class, default_relay_apply_cb);
  gtk_widget_class_bind_template_callback (widget_class, ca_clear_cb);
  gtk_widget_class_bind_template_callback (widget_class, ca_choose_cb);
}

/* Names the first widget of @type under @root. */
static void
name_first (GtkWidget  *root,
            GType       type,
            const char *name)
{
  for (GtkWidget *child = gtk_widget_get_first_child (root); child;
       child = gtk_widget_get_next_sibling (child))
    {
      if (G_TYPE_CHECK_INSTANCE_TYPE (child, type))
        {
          gtk_accessible_update_property (GTK_ACCESSIBLE (child), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                          name, -1);
          return;
        }
      name_first (child, type, name);
    }
}

static void
tocsin_preferences_window_init (TocsinPreferencesWindow *self)
{
  g_autofree char *start = NULL;
  g_autofree char *end = NULL;
  g_autofree char *relay = NULL;

  gtk_widget_init_template (GTK_WIDGET (self));
  tocsin_a11y_fix_button_names (GTK_WIDGET (self));
  /* libadwaita 1.2 leaves two of its own widgets unnamed: a screen reader says "GtkSearchEntry"
   * and "GtkSwitch". The switches of our rows are named by their row (activatable-widget). */
  name_first (GTK_WIDGET (self), GTK_TYPE_SEARCH_ENTRY, _("Search preferences"));
  name_first (GTK_WIDGET (self->quiet_row), GTK_TYPE_SWITCH, _("Quiet hours"));

  self->settings = g_settings_new (APP_ID);
  g_settings_bind (self->settings, "run-in-background", self->background_switch, "active",
                   G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, "autostart", self->autostart_switch, "active",
                   G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, "play-sound", self->sound_switch, "active",
                   G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, "quiet-hours-enabled", self->quiet_row, "enable-expansion",
                   G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, "history-retention-days",
                   gtk_spin_button_get_adjustment (self->retention_spin), "value",
                   G_SETTINGS_BIND_DEFAULT);

  /* Free-text settings are applied explicitly (after validation), not on every keystroke. */
  start = g_settings_get_string (self->settings, "quiet-hours-start");
  end = g_settings_get_string (self->settings, "quiet-hours-end");
  relay = g_settings_get_string (self->settings, "default-relay");
  gtk_editable_set_text (GTK_EDITABLE (self->quiet_start_row), start);
  gtk_editable_set_text (GTK_EDITABLE (self->quiet_end_row), end);
  gtk_editable_set_text (GTK_EDITABLE (self->default_relay_row), relay);

  g_signal_connect_object (self->settings, "changed", G_CALLBACK (settings_changed_cb), self,
                           G_CONNECT_SWAPPED);
  update_ca_row (self);
}

GtkWidget *
tocsin_preferences_window_new (GtkWindow *parent)
{
  return g_object_new (TOCSIN_TYPE_PREFERENCES_WINDOW,
                       "transient-for", parent,
                       NULL);
}
