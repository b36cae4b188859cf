/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-record-details"

#include "config.h"

#include <inttypes.h> /* PRId64 in _(): xgettext cannot see through G_GINT64_FORMAT */
#include <string.h>
#include <glib/gi18n.h>
#include <json-glib/json-glib.h>

#include "tocsin-a11y.h"
#include "tocsin-application.h"
#include "tocsin-json.h"
#include "tocsin-markdown-label.h"
#include "tocsin-record-details.h"

struct _TocsinRecordDetails
{
  AdwWindow parent_instance;

  /* template widgets */
  AdwToastOverlay     *toast_overlay;
  AdwWindowTitle      *window_title;
  AdwPreferencesGroup *message_group;
  AdwPreferencesGroup *vars_group;
  AdwPreferencesGroup *actions_group;
  GtkTextView         *source_view;

  /* owned */
  TocsinRecord       *record;
  TocsinActionRunner *runner;        /* the application's, or NULL */
  GPtrArray          *press_rows;    /* the log's rows in actions_group, to replace them */
  GCancellable       *cancellable;   /* the log's look-ups */
};

G_DEFINE_FINAL_TYPE (TocsinRecordDetails, tocsin_record_details, ADW_TYPE_WINDOW)

static void
copy_clicked_cb (GtkButton           *button,
                 TocsinRecordDetails *self)
{
  const char *value = g_object_get_data (G_OBJECT (button), "value");

  gdk_clipboard_set_text (gtk_widget_get_clipboard (GTK_WIDGET (button)), value);
  adw_toast_overlay_add_toast (self->toast_overlay, adw_toast_new (_("Copied")));
}

/* A value under its label, as long as it needs to be, with a button that copies it. (libadwaita
 * 1.2 has no "property" row style; a subtitle is the closest.) */
static GtkWidget *
add_row (TocsinRecordDetails *self,
         AdwPreferencesGroup *group,
         const char          *title,
         const char          *value)
{
  GtkWidget *row = adw_action_row_new ();
  GtkWidget *copy = gtk_button_new_from_icon_name ("edit-copy-symbolic");
  /* Translators: the tooltip and accessible name of a copy button; %s is a field, e.g. "Body" */
  g_autofree char *copy_label = g_strdup_printf (_("Copy %s"), title);

  /* Titles and subtitles are markup in libadwaita 1.2; a variable could contain '<'. */
  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), value && *value ? value : "—");
  gtk_widget_add_css_class (row, "property-row");

  gtk_widget_set_valign (copy, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (copy, "flat");
  gtk_widget_set_tooltip_text (copy, copy_label);
  gtk_accessible_update_property (GTK_ACCESSIBLE (copy), GTK_ACCESSIBLE_PROPERTY_LABEL, copy_label,
                                  -1);
  g_object_set_data_full (G_OBJECT (copy), "value", g_strdup (value ? value : ""), g_free);
  g_signal_connect (copy, "clicked", G_CALLBACK (copy_clicked_cb), self);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), copy);
  gtk_widget_set_visible (copy, value != NULL && *value != '\0');
  adw_preferences_group_add (group, row);
  return row;
}

static gboolean
body_link_activated_cb (GtkLabel            *label,
                        const char          *uri,
                        TocsinRecordDetails *self)
{
  GtkWindow *parent = gtk_window_get_transient_for (GTK_WINDOW (self));

  /* As the record's own link: the main window opens it (checking it is a web address) and
   * marks the record read. */
  if (parent != NULL)
    gtk_widget_activate_action (GTK_WIDGET (parent), "win.open-link", "(sx)", uri,
                                tocsin_record_get_id (self->record));
  return TRUE;
}

/* The body the sender marked as Markdown, rendered: a row laid out as add_row()'s (the title
 * above, the copy button after), with a label for the markup, as an action row's subtitle
 * cannot hold links. The copy button copies the Markdown as it came. */
static GtkWidget *
add_markdown_row (TocsinRecordDetails *self,
                  AdwPreferencesGroup *group,
                  const char          *title,
                  const char          *markdown)
{
  GtkWidget *row = GTK_WIDGET (g_object_new (ADW_TYPE_PREFERENCES_ROW, "title", title,
                                             "use-markup", FALSE, "activatable", FALSE, NULL));
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *texts = gtk_box_new (GTK_ORIENTATION_VERTICAL, 3);
  GtkWidget *title_label = gtk_label_new (title);
  GtkWidget *body = gtk_label_new (NULL);
  GtkWidget *copy = gtk_button_new_from_icon_name ("edit-copy-symbolic");
  /* Translators: the tooltip and accessible name of a copy button; %s is a field, e.g. "Body" */
  g_autofree char *copy_label = g_strdup_printf (_("Copy %s"), title);

  gtk_widget_add_css_class (row, "property-row");
  gtk_widget_set_margin_top (box, 8);
  gtk_widget_set_margin_bottom (box, 8);
  gtk_widget_set_margin_start (box, 12);
  gtk_widget_set_margin_end (box, 12);
  gtk_widget_set_hexpand (texts, TRUE);

  gtk_label_set_xalign (GTK_LABEL (title_label), 0);
  gtk_widget_add_css_class (title_label, "title");
  gtk_widget_add_css_class (title_label, "dim-label");
  gtk_widget_add_css_class (title_label, "caption");

  tocsin_label_set_markdown (GTK_LABEL (body), markdown);
  gtk_label_set_xalign (GTK_LABEL (body), 0);
  gtk_label_set_wrap (GTK_LABEL (body), TRUE);
  gtk_label_set_wrap_mode (GTK_LABEL (body), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_selectable (GTK_LABEL (body), TRUE);
  gtk_widget_add_css_class (body, "record-markdown");
  gtk_accessible_update_relation (GTK_ACCESSIBLE (body), GTK_ACCESSIBLE_RELATION_LABELLED_BY,
                                  title_label, NULL, -1);
  g_signal_connect (body, "activate-link", G_CALLBACK (body_link_activated_cb), self);

  gtk_widget_set_valign (copy, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (copy, "flat");
  gtk_widget_set_tooltip_text (copy, copy_label);
  gtk_accessible_update_property (GTK_ACCESSIBLE (copy), GTK_ACCESSIBLE_PROPERTY_LABEL, copy_label,
                                  -1);
  g_object_set_data_full (G_OBJECT (copy), "value", g_strdup (markdown), g_free);
  g_signal_connect (copy, "clicked", G_CALLBACK (copy_clicked_cb), self);

  gtk_box_append (GTK_BOX (texts), title_label);
  gtk_box_append (GTK_BOX (texts), body);
  gtk_box_append (GTK_BOX (box), texts);
  gtk_box_append (GTK_BOX (box), copy);
  gtk_list_box_row_set_child (GTK_LIST_BOX_ROW (row), box);
  adw_preferences_group_add (group, row);
  return row;
}

static void
link_activated_cb (AdwActionRow        *row,
                   TocsinRecordDetails *self)
{
  GtkWindow *parent = gtk_window_get_transient_for (GTK_WINDOW (self));

  /* The main window opens it (checking it is a web address) and marks the record read. */
  if (parent != NULL)
    gtk_widget_activate_action (GTK_WIDGET (parent), "win.open-link", "(sx)",
                                tocsin_record_get_link (self->record),
                                tocsin_record_get_id (self->record));
}

/* ---- actions (issue 15) ------------------------------------------------------------------- */

static void
press_clicked_cb (GtkButton           *button,
                  TocsinRecordDetails *self)
{
  guint index = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (button), "index"));

  if (self->runner)
    tocsin_action_runner_press (self->runner, self->record, index);
}

static void
presses_loaded_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(TocsinRecordDetails) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) presses = tocsin_history_list_presses_finish (TOCSIN_HISTORY (object),
                                                                     result, &error);

  if (presses == NULL || self->press_rows == NULL)
    return;  /* cancelled (closed), or the history cannot say */
  for (guint i = 0; i < self->press_rows->len; i++)
    adw_preferences_group_remove (self->actions_group, self->press_rows->pdata[i]);
  g_ptr_array_set_size (self->press_rows, 0);
  for (guint i = 0; i < presses->len; i++)
    {
      TocsinActionPress *press = presses->pdata[i];
      g_autoptr(GDateTime) at = g_date_time_new_from_unix_local (press->pressed_at_ms / 1000);
      g_autofree char *clock = at ? g_date_time_format (at, "%X") : g_strdup ("");
      g_autofree char *result_text = tocsin_action_press_describe (press);
      /* Translators: a press in the log: the button's label and the attempt's number */
      g_autofree char *title = g_strdup_printf (_("%s · attempt %u"), press->label,
                                                press->attempt);
      /* Translators: a press in the log: when, the result, how long it took
       * ("20:31:05 · Sent · 200 · 34 ms") */
      g_autofree char *subtitle = g_strdup_printf (_("%s · %s · %" PRId64 " ms"), clock,
                                                   result_text, (int64_t) press->duration_ms);
      GtkWidget *row = adw_action_row_new ();

      adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
      gtk_widget_set_tooltip_text (row, press->url);
      adw_preferences_group_add (self->actions_group, row);
      g_ptr_array_add (self->press_rows, row);
    }
}

static void
load_presses (TocsinRecordDetails *self)
{
  GApplication *app = g_application_get_default ();

  if (!TOCSIN_IS_APPLICATION (app) || tocsin_record_get_id (self->record) == 0)
    return;
  tocsin_history_list_presses_async (tocsin_application_get_history (TOCSIN_APPLICATION (app)),
                                     tocsin_record_get_id (self->record), 50, self->cancellable,
                                     presses_loaded_cb, g_object_ref (self));
}

static void
press_done_cb (TocsinRecordDetails *self,
               gint64               record_id)
{
  if (record_id == tocsin_record_get_id (self->record))
    load_presses (self);
}

static void
fill_actions (TocsinRecordDetails *self)
{
  GApplication *app = g_application_get_default ();
  guint n = tocsin_record_get_n_actions (self->record);

  if (n == 0)
    return;
  gtk_widget_set_visible (GTK_WIDGET (self->actions_group), TRUE);
  if (TOCSIN_IS_APPLICATION (app))
    self->runner = g_object_ref (tocsin_application_get_action_runner (TOCSIN_APPLICATION (app)));
  for (guint i = 0; i < n; i++)
    {
      const TocsinMessageAction *action = tocsin_record_get_action (self->record, i);
      g_autofree char *where = tocsin_request_url_for_log (action->url);
      gboolean view = g_strcmp0 (action->kind, "view") == 0;
      g_autofree char *subtitle = view ? g_strdup (where ? where : "")
                                       : g_strdup_printf ("%s %s", action->method ? action->method
                                                                                  : "POST",
                                                          where ? where : "");
      GtkWidget *row = adw_action_row_new ();
      GtkWidget *button = gtk_button_new_with_label (view ? _("Open") : _("Send"));
      /* Translators: the accessible name of an action's button in the details, e.g.
       * "Send Approve" */
      g_autofree char *name = g_strdup_printf (view ? _("Open %s") : _("Send %s"), action->label);

      adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), action->label);
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
      gtk_widget_set_valign (button, GTK_ALIGN_CENTER);
      gtk_accessible_update_property (GTK_ACCESSIBLE (button), GTK_ACCESSIBLE_PROPERTY_LABEL, name,
                                      -1);
      g_object_set_data (G_OBJECT (button), "index", GUINT_TO_POINTER (i));
      g_signal_connect (button, "clicked", G_CALLBACK (press_clicked_cb), self);
      gtk_widget_set_sensitive (button, self->runner != NULL);
      adw_action_row_add_suffix (ADW_ACTION_ROW (row), button);
      adw_preferences_group_add (self->actions_group, row);
    }
  if (self->runner)
    g_signal_connect_object (self->runner, "press-done", G_CALLBACK (press_done_cb), self,
                             G_CONNECT_SWAPPED);
  load_presses (self);
}

static char *
node_to_display (JsonNode *node)
{
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (node));
  if (JSON_NODE_HOLDS_NULL (node))
    return g_strdup ("null");
  return tocsin_json_to_string (node, FALSE);
}

static void
fill (TocsinRecordDetails *self)
{
  TocsinRecord *record = self->record;
  const char *vars_json = tocsin_record_get_vars_json (record);
  const char *link = tocsin_record_get_link (record);
  const char *channel = tocsin_record_get_channel_name (record);
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local (tocsin_record_get_time (record) / 1000);
  /* Translators: when a record arrived, in g_date_time_format() form, e.g. "6 December 2026,
   * 14:05:09"; reorder for your language. */
  g_autofree char *when = dt ? g_date_time_format (dt, _("%-e %B %Y, %X")) : g_strdup ("");
  g_autofree char *message_id = g_strdup_printf ("%" G_GINT64_FORMAT,
                                                 tocsin_record_get_message_id (record));
  g_autoptr(JsonNode) root = NULL;
  gboolean any = FALSE;

  adw_window_title_set_subtitle (self->window_title, tocsin_record_get_title (record));

  add_row (self, self->message_group, _("Channel"), channel ? channel : "");
  add_row (self, self->message_group, _("Received"), when);
  add_row (self, self->message_group, _("Title"), tocsin_record_get_title (record));
  if (tocsin_record_get_markdown (record) && *tocsin_record_get_body (record) != '\0')
    add_markdown_row (self, self->message_group, _("Body"), tocsin_record_get_body (record));
  else
    add_row (self, self->message_group, _("Body"), tocsin_record_get_body (record));
  if (link && *link)
    {
      GtkWidget *row = add_row (self, self->message_group, _("Link"), link);
      GtkWidget *icon = gtk_image_new_from_icon_name ("adw-external-link-symbolic");

      /* The row itself opens it, as links do in GNOME's about windows. */
      gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), TRUE);
      gtk_widget_set_tooltip_text (row, _("Open in the browser"));
      adw_action_row_add_suffix (ADW_ACTION_ROW (row), icon);
      g_signal_connect (row, "activated", G_CALLBACK (link_activated_cb), self);
    }
  add_row (self, self->message_group, _("Message number"), message_id);
  fill_actions (self);

  /* Stored by this app after the guarded parse; read back the same way all the same. */
  if (vars_json && *vars_json)
    root = tocsin_json_parse (vars_json, strlen (vars_json), G_MAXSSIZE,
                              2 * TOCSIN_JSON_DEFAULT_MAX_DEPTH + 8, NULL);
  if (root != NULL && JSON_NODE_HOLDS_OBJECT (root))
    {
      JsonObject *object = json_node_get_object (root);
      g_autoptr(GList) members = json_object_get_members (object);
      g_autofree char *pretty = tocsin_json_to_string (root, TRUE);

      for (GList *l = members; l; l = l->next)
        {
          g_autofree char *value = node_to_display (json_object_get_member (object, l->data));

          add_row (self, self->vars_group, l->data, value);
          any = TRUE;
        }
      gtk_text_buffer_set_text (gtk_text_view_get_buffer (self->source_view), pretty, -1);
    }
  else
    gtk_text_buffer_set_text (gtk_text_view_get_buffer (self->source_view), "{}", -1);

  if (!any)
    adw_preferences_group_set_description (self->vars_group,
                                           _("This message came without variables: it was rung without a query or body."));
}

static void
tocsin_record_details_dispose (GObject *object)
{
  TocsinRecordDetails *self = TOCSIN_RECORD_DETAILS (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  if (self->runner)
    g_signal_handlers_disconnect_by_data (self->runner, self);
  g_clear_object (&self->runner);
  g_clear_pointer (&self->press_rows, g_ptr_array_unref);
  g_clear_object (&self->record);
  G_OBJECT_CLASS (tocsin_record_details_parent_class)->dispose (object);
}

static void
tocsin_record_details_class_init (TocsinRecordDetailsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = tocsin_record_details_dispose;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/tocsin/Tocsin/tocsin-record-details.ui");
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordDetails, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordDetails, window_title);
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordDetails, message_group);
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordDetails, vars_group);
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordDetails, actions_group);
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordDetails, source_view);
}

static void
tocsin_record_details_init (TocsinRecordDetails *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  tocsin_a11y_fix_button_names (GTK_WIDGET (self));
  self->press_rows = g_ptr_array_new ();
  self->cancellable = g_cancellable_new ();
}

GtkWidget *
tocsin_record_details_new (GtkWindow    *parent,
                           TocsinRecord *record)
{
  TocsinRecordDetails *self;

  g_return_val_if_fail (TOCSIN_IS_RECORD (record), NULL);

  self = g_object_new (TOCSIN_TYPE_RECORD_DETAILS, "transient-for", parent, NULL);
  self->record = g_object_ref (record);
  fill (self);
  return GTK_WIDGET (self);
}
