/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-record-row"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>
#include <json-glib/json-glib.h>

#include "tocsin-application.h"
#include "tocsin-json.h"
#include "tocsin-markdown-label.h"
#include "tocsin-record-details.h"
#include "tocsin-record-row.h"

struct _TocsinRecordRow
{
  GtkWidget parent_instance;

  /* template widgets */
  GtkWidget     *box;
  GtkWidget     *unread_dot;
  GtkLabel      *channel_label;
  GtkLabel      *time_label;
  GtkMenuButton *menu_button;
  GtkLabel      *title_label;
  GtkLabel      *body_label;
  GtkLabel      *link_label;
  GtkWidget     *actions_box;
  GtkWidget     *buttons_box;
  GtkLabel      *press_label;

  /* owned */
  TocsinRecord *record;
  gulong        notify_id;
  gulong        tick_id;
  char         *shown_body;       /* the body body_label shows, as received */
  gboolean      shown_markdown;   /* ... and whether it was rendered as Markdown */
  char         *shown_actions;    /* the actions the buttons are for (actions-json) */
  TocsinActionRunner *runner;     /* while mapped: the application's, followed for results */
};

enum {
  PROP_0,
  PROP_RECORD,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (TocsinRecordRow, tocsin_record_row, GTK_TYPE_WIDGET)

/* One shared tick for every visible row's relative time, rather than a timer per row. A
 * GSimpleAction is the smallest stock object with a parameterless signal ("activate"). */
static GSimpleAction *
relative_time_clock (void)
{
  static GSimpleAction *clock;

  if (clock == NULL)
    clock = g_simple_action_new ("relative-time-tick", NULL);
  return clock;
}

static gboolean
clock_tick_cb (gpointer data)
{
  g_action_activate (G_ACTION (relative_time_clock ()), NULL);
  return G_SOURCE_CONTINUE;
}

char *
tocsin_format_relative_time (gint64 time_ms,
                             gint64 now_ms)
{
  g_autoptr(GDateTime) then = g_date_time_new_from_unix_local (time_ms / 1000);
  g_autoptr(GDateTime) now = g_date_time_new_from_unix_local (now_ms / 1000);
  gint64 seconds = (now_ms - time_ms) / 1000;

  if (then == NULL || now == NULL)
    return g_strdup ("");

  if (seconds < 60)
    return g_strdup (_("just now"));
  if (seconds < 3600)
    {
      int minutes = seconds / 60;

      return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%d minute ago", "%d minutes ago",
                                           minutes), minutes);
    }
  if (g_date_time_get_year (then) == g_date_time_get_year (now)
      && g_date_time_get_day_of_year (then) == g_date_time_get_day_of_year (now))
    {
      int hours = seconds / 3600;

      return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%d hour ago", "%d hours ago", hours),
                              hours);
    }
  {
    g_autoptr(GDateTime) yesterday = g_date_time_add_days (now, -1);
    g_autofree char *clock_time = g_date_time_format (then, "%H:%M");

    if (g_date_time_get_year (then) == g_date_time_get_year (yesterday)
        && g_date_time_get_day_of_year (then) == g_date_time_get_day_of_year (yesterday))
      /* Translators: %s is a time such as 14:02 */
      return g_strdup_printf (_("yesterday at %s"), clock_time);
    if (g_date_time_get_year (then) == g_date_time_get_year (now))
      {
        g_autofree char *day = g_date_time_format (then, "%e %B");

        /* Translators: the first %s is a day such as "12 March", the second a time such as 09:15 */
        return g_strdup_printf (_("%s at %s"), g_strstrip (day), clock_time);
      }
    return g_date_time_format (then, "%x");
  }
}

/* Gap records carry {"from":N,"to":M}. */
static char *
gap_description (TocsinRecord *record)
{
  const char *vars = tocsin_record_get_vars_json (record);
  g_autoptr(JsonObject) object = NULL;
  gint64 from = 0, to = 0;

  if (vars != NULL)
    object = tocsin_json_parse_object (vars, strlen (vars), G_MAXSSIZE,
                                       TOCSIN_JSON_DEFAULT_MAX_DEPTH, NULL);
  if (object != NULL)
    {

      from = json_object_get_int_member_with_default (object, "from", 0);
      to = json_object_get_int_member_with_default (object, "to", 0);
    }
  if (from > 0 && to >= from)
    {
      int count = (int) MIN (to - from + 1, G_MAXINT);

      return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                           "%d message was sent while Tocsin was away and is no longer kept by the relay.",
                                           "%d messages were sent while Tocsin was away and are no longer kept by the relay.",
                                           count),
                              count);
    }
  return g_strdup (_("Messages were sent while Tocsin was away and are no longer kept by the relay."));
}

static void
update_time (TocsinRecordRow *self)
{
  g_autofree char *text = NULL;
  g_autofree char *exact = NULL;
  g_autoptr(GDateTime) dt = NULL;
  gint64 time_ms;

  if (self->record == NULL || !tocsin_record_get_loaded (self->record))
    {
      gtk_label_set_text (self->time_label, "");
      return;
    }
  time_ms = tocsin_record_get_time (self->record);
  text = tocsin_format_relative_time (time_ms, g_get_real_time () / 1000);
  gtk_label_set_text (self->time_label, text);
  dt = g_date_time_new_from_unix_local (time_ms / 1000);
  if (dt != NULL)
    {
      exact = g_date_time_format (dt, "%c");
      gtk_widget_set_tooltip_text (GTK_WIDGET (self->time_label), exact);
    }
}

static void
update_read (TocsinRecordRow *self)
{
  gboolean read = self->record == NULL || tocsin_record_get_read (self->record);

  if (read)
    gtk_widget_remove_css_class (self->box, "unread");
  else
    gtk_widget_add_css_class (self->box, "unread");
  /* A dot and a heavier title (style.css): seen at a glance, and not by colour alone. */
  gtk_widget_set_visible (self->unread_dot, !read);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "record.mark-read", !read);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "record.mark-unread", read);
}

/* The body as text, or rendered when the sender said it is Markdown. Rendering costs more than
 * setting text, and a row is updated whenever its record changes (read, say): only a new body
 * is rendered again. */
static void
show_body (TocsinRecordRow *self,
           const char      *body,
           gboolean         markdown)
{
  if (self->shown_body != NULL && markdown == self->shown_markdown &&
      g_str_equal (self->shown_body, body))
    return;
  g_free (self->shown_body);
  self->shown_body = g_strdup (body);
  self->shown_markdown = markdown;
  if (markdown)
    tocsin_label_set_markdown (self->body_label, body);
  else
    tocsin_label_set_plain (self->body_label, body);
}

static void update_actions (TocsinRecordRow *self);

static void
update_all (TocsinRecordRow *self)
{
  const char *title, *body, *link, *channel;
  g_autofree char *host = NULL;
  g_autofree char *description = NULL;

  if (self->record == NULL)
    return;

  title = tocsin_record_get_title (self->record);
  body = tocsin_record_get_body (self->record);
  link = tocsin_record_get_link (self->record);
  channel = tocsin_record_get_channel_name (self->record);

  gtk_label_set_text (self->channel_label, channel ? channel : "");
  if (tocsin_record_get_kind (self->record) == TOCSIN_RECORD_KIND_GAP)
    {
      g_autofree char *gap_title = NULL;
      g_autofree char *gap_body = gap_description (self->record);

      /* Translators: %s is a channel name */
      gap_title = g_strdup_printf (_("Some notifications from %s were missed"),
                                   channel ? channel : "");
      gtk_label_set_text (self->title_label, gap_title);
      show_body (self, gap_body, FALSE);
      gtk_widget_set_visible (GTK_WIDGET (self->body_label), TRUE);
      link = NULL;
      title = gap_title;
    }
  else if (!tocsin_record_get_loaded (self->record))
    {
      /* A placeholder whose page is still loading: keep the row's height, show nothing. */
      gtk_label_set_text (self->title_label, " ");
      show_body (self, "", FALSE);
      gtk_widget_set_visible (GTK_WIDGET (self->body_label), FALSE);
      link = NULL;
    }
  else
    {
      gtk_label_set_text (self->title_label, title && *title ? title : _("(no title)"));
      show_body (self, body ? body : "", tocsin_record_get_markdown (self->record));
      gtk_widget_set_visible (GTK_WIDGET (self->body_label), body != NULL && *body != '\0');
    }
  gtk_widget_set_visible (GTK_WIDGET (self->menu_button), tocsin_record_get_loaded (self->record));

  host = link ? tocsin_record_dup_link_host (self->record) : NULL;
  if (host != NULL)
    {
      g_autofree char *escaped_link = g_markup_escape_text (link, -1);
      /* Translators: %s is the host of a web link, e.g. "Open dashboard.example.com" */
      g_autofree char *text = g_strdup_printf (_("Open %s"), host);
      g_autofree char *escaped_text = g_markup_escape_text (text, -1);
      g_autofree char *markup = g_strdup_printf ("<a href=\"%s\">%s</a>", escaped_link,
                                                 escaped_text);

      gtk_label_set_markup (self->link_label, markup);
      gtk_widget_set_tooltip_text (GTK_WIDGET (self->link_label), link);
      gtk_widget_set_visible (GTK_WIDGET (self->link_label), TRUE);
    }
  else
    {
      gtk_label_set_text (self->link_label, "");
      gtk_widget_set_visible (GTK_WIDGET (self->link_label), FALSE);
    }

  /* Screen readers announce the whole row the way it is read. */
  if (tocsin_record_get_read (self->record))
    description = g_strdup_printf ("%s: %s", channel ? channel : "", title ? title : "");
  else
    /* Translators: how a screen reader announces an unread record:
     * "Prod alerts: Disk full, unread" */
    description = g_strdup_printf (_("%s: %s, unread"), channel ? channel : "", title ? title : "");
  gtk_accessible_update_property (GTK_ACCESSIBLE (self),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, description,
                                  -1);
  update_time (self);
  update_read (self);
  update_actions (self);
}

/* ---- action buttons (issue 15) ------------------------------------------------------------ */

static TocsinActionRunner *
app_runner (void)
{
  GApplication *app = g_application_get_default ();

  return TOCSIN_IS_APPLICATION (app)
         ? tocsin_application_get_action_runner (TOCSIN_APPLICATION (app)) : NULL;
}

/* The result of the record's last press beside its buttons: "Sent · 200", "Failed: …". */
static void
update_press_result (TocsinRecordRow *self)
{
  TocsinActionRunner *runner = self->runner ? self->runner : app_runner ();
  const TocsinActionPress *press = NULL;
  gint64 id = self->record ? tocsin_record_get_id (self->record) : 0;
  g_autofree char *text = NULL;
  guint n = self->record ? tocsin_record_get_n_actions (self->record) : 0;
  GtkWidget *child;
  guint i = 0;

  for (child = gtk_widget_get_first_child (self->buttons_box); child;
       child = gtk_widget_get_next_sibling (child), i++)
    gtk_widget_set_sensitive (child, runner == NULL || !tocsin_action_runner_is_busy (runner,
                                                                                      id, i));
  if (runner && id != 0 && n > 0)
    press = tocsin_action_runner_get_last_press (runner, id);
  for (i = 0; runner && id != 0 && i < n && text == NULL; i++)
    if (tocsin_action_runner_is_busy (runner, id, i))
      text = g_strdup (_("Sending…"));
  if (text == NULL && press != NULL)
    {
      g_autofree char *result = tocsin_action_press_describe (press);

      /* Translators: an action button's label, then the result of its last press:
       * "Silence 1 h: Sent · 200" */
      text = g_strdup_printf (_("%s: %s"), press->label, result);
    }
  gtk_label_set_text (self->press_label, text ? text : "");
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->press_label), text);
  gtk_widget_set_visible (GTK_WIDGET (self->press_label), text != NULL);
}

static void
update_actions (TocsinRecordRow *self)
{
  const char *json = NULL;
  guint n = 0;
  GtkWidget *child;

  if (self->record && tocsin_record_get_loaded (self->record) &&
      tocsin_record_get_kind (self->record) == TOCSIN_RECORD_KIND_MESSAGE)
    {
      json = tocsin_record_get_actions_json (self->record);
      n = tocsin_record_get_n_actions (self->record);
    }
  if (g_strcmp0 (json, self->shown_actions) != 0)
    {
      g_free (self->shown_actions);
      self->shown_actions = g_strdup (json);
      while ((child = gtk_widget_get_first_child (self->buttons_box)))
        gtk_box_remove (GTK_BOX (self->buttons_box), child);
      for (guint i = 0; i < n; i++)
        {
          const TocsinMessageAction *action = tocsin_record_get_action (self->record, i);
          g_autoptr(GUri) uri = g_uri_parse (action->url, G_URI_FLAGS_NONE, NULL);
          const char *host = uri ? g_uri_get_host (uri) : NULL;
          g_autofree char *tip = NULL;
          GtkWidget *button = gtk_button_new_with_label (action->label);

          if (g_strcmp0 (action->kind, "view") == 0)
            /* Translators: %s is a host name: what an action button does */
            tip = g_strdup_printf (_("Opens %s"), host ? host : action->url);
          else
            /* Translators: the first %s is an HTTP method (POST), the second a host name */
            tip = g_strdup_printf (_("Sends a %s request to %s"),
                                   action->method ? action->method : "POST",
                                   host ? host : action->url);
          gtk_widget_set_tooltip_text (button, tip);
          gtk_accessible_update_property (GTK_ACCESSIBLE (button),
                                          GTK_ACCESSIBLE_PROPERTY_LABEL, action->label,
                                          GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, tip,
                                          -1);
          gtk_actionable_set_action_name (GTK_ACTIONABLE (button), "record.press");
          gtk_actionable_set_action_target (GTK_ACTIONABLE (button), "u", i);
          gtk_box_append (GTK_BOX (self->buttons_box), button);
        }
    }
  gtk_widget_set_visible (self->actions_box, n > 0);
  update_press_result (self);
}

static void
runner_press_cb (TocsinRecordRow *self,
                 gint64           record_id)
{
  if (self->record && tocsin_record_get_id (self->record) == record_id)
    update_press_result (self);
}

static void
press_action (GtkWidget  *widget,
              const char *action_name,
              GVariant   *param)
{
  TocsinRecordRow *self = TOCSIN_RECORD_ROW (widget);
  TocsinActionRunner *runner = app_runner ();

  if (self->record == NULL || runner == NULL)
    return;
  tocsin_action_runner_press (runner, self->record, g_variant_get_uint32 (param));
}

static void
follow_runner (TocsinRecordRow *self,
               gboolean         follow)
{
  TocsinActionRunner *runner = follow ? app_runner () : NULL;

  if (runner == self->runner)
    return;
  if (self->runner)
    g_signal_handlers_disconnect_by_data (self->runner, self);
  g_set_object (&self->runner, runner);
  if (runner == NULL)
    return;
  g_signal_connect_object (runner, "press-started", G_CALLBACK (runner_press_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (runner, "press-done", G_CALLBACK (runner_press_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (runner, "last-presses-loaded", G_CALLBACK (update_press_result),
                           self, G_CONNECT_SWAPPED);
}

static void
record_notify_cb (TocsinRecordRow *self)
{
  update_all (self);
}

static gboolean
link_activated_cb (TocsinRecordRow *self,
                   const char      *uri)
{
  if (self->record == NULL)
    return TRUE;
  /* The window launches it (and reports a failure as a toast) and marks the record read. */
  gtk_widget_activate_action (GTK_WIDGET (self), "win.open-link", "(sx)", uri,
                              tocsin_record_get_id (self->record));
  return TRUE;
}

static void
set_read_action (GtkWidget  *widget,
                 const char *action_name,
                 GVariant   *param)
{
  TocsinRecordRow *self = TOCSIN_RECORD_ROW (widget);
  gboolean read = g_str_equal (action_name, "record.mark-read");

  if (self->record == NULL)
    return;
  gtk_widget_activate_action (widget, "win.record-set-read", "(xb)",
                              tocsin_record_get_id (self->record), read);
}

static void
delete_action (GtkWidget  *widget,
               const char *action_name,
               GVariant   *param)
{
  TocsinRecordRow *self = TOCSIN_RECORD_ROW (widget);

  if (self->record == NULL)
    return;
  gtk_widget_activate_action (widget, "win.record-delete", "x",
                              tocsin_record_get_id (self->record));
}

static void
copy_action (GtkWidget  *widget,
             const char *action_name,
             GVariant   *param)
{
  TocsinRecordRow *self = TOCSIN_RECORD_ROW (widget);
  g_autoptr(GString) text = g_string_new (NULL);
  const char *body, *link;

  if (self->record == NULL)
    return;
  g_string_append (text, tocsin_record_get_title (self->record));
  body = tocsin_record_get_body (self->record);
  link = tocsin_record_get_link (self->record);
  if (body && *body)
    g_string_append_printf (text, "\n%s", body);
  if (link && *link)
    g_string_append_printf (text, "\n%s", link);
  gdk_clipboard_set_text (gtk_widget_get_clipboard (widget), text->str);
  gtk_widget_activate_action (widget, "win.toast", "s", _("Copied"));
}

static void
details_action (GtkWidget  *widget,
                const char *action_name,
                GVariant   *param)
{
  TocsinRecordRow *self = TOCSIN_RECORD_ROW (widget);
  GtkWidget *details;

  if (self->record == NULL)
    return;
  details = tocsin_record_details_new (GTK_WINDOW (gtk_widget_get_root (widget)), self->record);
  gtk_window_present (GTK_WINDOW (details));
}

static void
tocsin_record_row_map (GtkWidget *widget)
{
  TocsinRecordRow *self = TOCSIN_RECORD_ROW (widget);
  static guint tick_source;

  GTK_WIDGET_CLASS (tocsin_record_row_parent_class)->map (widget);
  follow_runner (self, TRUE);
  update_press_result (self);
  if (tick_source == 0)
    tick_source = g_timeout_add_seconds (30, clock_tick_cb, NULL);
  if (self->tick_id == 0)
    self->tick_id = g_signal_connect_object (relative_time_clock (), "activate",
                                             G_CALLBACK (update_time), self, G_CONNECT_SWAPPED);
  update_time (self);
}

static void
tocsin_record_row_unmap (GtkWidget *widget)
{
  TocsinRecordRow *self = TOCSIN_RECORD_ROW (widget);

  g_clear_signal_handler (&self->tick_id, relative_time_clock ());
  follow_runner (self, FALSE);
  GTK_WIDGET_CLASS (tocsin_record_row_parent_class)->unmap (widget);
}

static void
tocsin_record_row_dispose (GObject *object)
{
  TocsinRecordRow *self = TOCSIN_RECORD_ROW (object);

  tocsin_record_row_set_record (self, NULL);
  g_clear_signal_handler (&self->tick_id, relative_time_clock ());
  g_clear_pointer (&self->shown_body, g_free);
  g_clear_pointer (&self->shown_actions, g_free);
  follow_runner (self, FALSE);
  gtk_widget_dispose_template (GTK_WIDGET (self), TOCSIN_TYPE_RECORD_ROW);
  G_OBJECT_CLASS (tocsin_record_row_parent_class)->dispose (object);
}

static void
tocsin_record_row_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  TocsinRecordRow *self = TOCSIN_RECORD_ROW (object);

  switch (prop_id)
    {
    case PROP_RECORD:
      g_value_set_object (value, self->record);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tocsin_record_row_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  TocsinRecordRow *self = TOCSIN_RECORD_ROW (object);

  switch (prop_id)
    {
    case PROP_RECORD:
      tocsin_record_row_set_record (self, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tocsin_record_row_class_init (TocsinRecordRowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = tocsin_record_row_dispose;
  object_class->get_property = tocsin_record_row_get_property;
  object_class->set_property = tocsin_record_row_set_property;
  widget_class->map = tocsin_record_row_map;
  widget_class->unmap = tocsin_record_row_unmap;

  properties[PROP_RECORD] =
    g_param_spec_object ("record", NULL, NULL, TOCSIN_TYPE_RECORD,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/tocsin/Tocsin/tocsin-record-row.ui");
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordRow, box);
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordRow, unread_dot);
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordRow, channel_label);
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordRow, time_label);
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordRow, menu_button);
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordRow, title_label);
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordRow, body_label);
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordRow, link_label);
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordRow, actions_box);
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordRow, buttons_box);
  gtk_widget_class_bind_template_child (widget_class, TocsinRecordRow, press_label);
  gtk_widget_class_bind_template_callback (widget_class, link_activated_cb);

  gtk_widget_class_install_action (widget_class, "record.mark-read", NULL, set_read_action);
  gtk_widget_class_install_action (widget_class, "record.mark-unread", NULL, set_read_action);
  gtk_widget_class_install_action (widget_class, "record.copy", NULL, copy_action);
  gtk_widget_class_install_action (widget_class, "record.details", NULL, details_action);
  gtk_widget_class_install_action (widget_class, "record.delete", NULL, delete_action);
  gtk_widget_class_install_action (widget_class, "record.press", "u", press_action);

  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "recordrow");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_GROUP);
}

static void
tocsin_record_row_init (TocsinRecordRow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

GtkWidget *
tocsin_record_row_new (void)
{
  return g_object_new (TOCSIN_TYPE_RECORD_ROW, NULL);
}

TocsinRecord *
tocsin_record_row_get_record (TocsinRecordRow *self)
{
  g_return_val_if_fail (TOCSIN_IS_RECORD_ROW (self), NULL);
  return self->record;
}

GtkWidget *
tocsin_record_row_get_link_label (TocsinRecordRow *self)
{
  g_return_val_if_fail (TOCSIN_IS_RECORD_ROW (self), NULL);
  return GTK_WIDGET (self->link_label);
}

GtkWidget *
tocsin_record_row_get_body_label (TocsinRecordRow *self)
{
  g_return_val_if_fail (TOCSIN_IS_RECORD_ROW (self), NULL);
  return GTK_WIDGET (self->body_label);
}

void
tocsin_record_row_set_record (TocsinRecordRow *self,
                              TocsinRecord    *record)
{
  g_return_if_fail (TOCSIN_IS_RECORD_ROW (self));
  g_return_if_fail (record == NULL || TOCSIN_IS_RECORD (record));

  if (self->record == record)
    return;
  if (self->record != NULL)
    g_clear_signal_handler (&self->notify_id, self->record);
  g_set_object (&self->record, record);
  if (record != NULL)
    {
      self->notify_id = g_signal_connect_object (record, "notify", G_CALLBACK (record_notify_cb),
                                                 self, G_CONNECT_SWAPPED);
      update_all (self);
    }
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RECORD]);
}
