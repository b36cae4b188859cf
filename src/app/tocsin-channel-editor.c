/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-channel-editor"

#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-a11y.h"
#include "tocsin-json.h"
#include "tocsin-channel-editor.h"
#include "tocsin-deliveries-window.h"
#include "tocsin-presets.h"
#include "tocsin-request.h"
#include "tocsin-request-editor.h"
#include "tocsin-template.h"
#include "tocsin-window.h"

#define SAMPLE_JSON "{\n  \"server_name\": \"Production\",\n  \"cpu_usage\": 95\n}"
/* A sample is a webhook's variables: the relay takes 64 KiB bodies by default. */
#define MAX_SAMPLE_BYTES (1024 * 1024)

typedef enum { FIELD_TITLE, FIELD_BODY, FIELD_LINK, FIELD_CONDITION, N_FIELDS } Field;

static const char *field_names[N_FIELDS] = { "title", "body", "link", "condition" };

/* The signature row's items, in order, as the relay names them (docs/api.md). */
static const char *signature_schemes[] = { "none", "standard-webhooks", "github", "stripe",
                                           "hmac-sha256" };
#define SCHEME_HMAC 4

struct _TocsinChannelEditor
{
  AdwWindow parent_instance;

  /* template widgets */
  AdwToastOverlay  *toast_overlay;
  AdwWindowTitle   *window_title;
  GtkButton        *save_button;
  GtkButton        *cancel_button;
  GtkStack         *stack;
  AdwEntryRow      *relay_row;
  AdwEntryRow      *admin_key_row;
  AdwEntryRow      *name_row;
  AdwEntryRow      *description_row;
  AdwComboRow      *preset_row;
  GtkLabel         *preset_setup;
  GtkTextView      *title_view;
  GtkTextView      *body_view;
  GtkTextView      *link_view;
  GtkTextView      *condition_view;
  GtkLabel         *title_error;
  GtkLabel         *body_error;
  GtkLabel         *link_error;
  GtkLabel         *condition_error;
  GtkTextView      *sample_view;
  GtkLabel         *sample_error;
  GtkLabel         *preview_title;
  GtkLabel         *preview_body;
  GtkLabel         *preview_link;
  GtkLabel         *preview_note;
  AdwPreferencesGroup *manage_group;
  GtkWidget        *created_box;
  GtkWidget        *created_heading;
  AdwComboRow      *signature_row;
  AdwEntryRow      *signature_secret_row;
  AdwEntryRow      *signature_header_row;
  GtkSwitch        *paused_switch;
  AdwPreferencesGroup *recent_group;
  GtkListBox       *recent_list;
  GtkBox           *forwards_box;    /* the TocsinRequestEditors, after the empty label */
  GtkBox           *actions_box;
  GtkWidget        *forwards_empty;
  GtkWidget        *actions_empty;

  /* borrowed: views[] and errors[] index the template widgets by Field */
  GtkTextView      *views[N_FIELDS];
  GtkLabel         *errors[N_FIELDS];

  /* owned */
  TocsinApplication  *app;
  TocsinOwnedChannel *channel;       /* NULL until created (or the one being edited) */
  char               *shown_secret;  /* a signing secret the relay just made: shown once */
  char               *email_address; /* the email trigger's, when its relay takes mail */
  GCancellable       *cancellable;
  guint               preview_id;
  gboolean            busy;
  gboolean            has_errors;
};

G_DEFINE_FINAL_TYPE (TocsinChannelEditor, tocsin_channel_editor, ADW_TYPE_WINDOW)

static void refresh_webhooks     (TocsinChannelEditor *self);
static void signature_changed_cb (TocsinChannelEditor *self);
static void buffer_changed_cb    (TocsinChannelEditor *self);
static void sync_save            (TocsinChannelEditor *self);
static void update_preview       (TocsinChannelEditor *self);

static void
toast (TocsinChannelEditor *self,
       const char          *text)
{
  AdwToast *t = adw_toast_new (text);
  GtkWidget *title = gtk_label_new (text);

  /* libadwaita 1.2 ellipsizes a toast's title on one line: wrap it instead, so a sentence
   * (or an error from the relay) is read whole. */
  gtk_label_set_wrap (GTK_LABEL (title), TRUE);
  gtk_label_set_wrap_mode (GTK_LABEL (title), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_max_width_chars (GTK_LABEL (title), 40);
  /* A wrapping label asks for little width; a short title must not wrap at all. */
  gtk_label_set_width_chars (GTK_LABEL (title), MIN ((int) g_utf8_strlen (text, -1), 30));
  gtk_widget_add_css_class (title, "heading");
  adw_toast_set_custom_title (t, title);
  adw_toast_overlay_add_toast (self->toast_overlay, t);
}

static char *
buffer_text (GtkTextView *view)
{
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (view);
  GtkTextIter start, end;

  gtk_text_buffer_get_bounds (buffer, &start, &end);
  return gtk_text_buffer_get_text (buffer, &start, &end, FALSE);
}

static void
set_error (TocsinChannelEditor *self,
           GtkTextView         *view,
           GtkLabel            *label,
           const char          *message)
{
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (view);
  GtkTextIter start, end;

  gtk_text_buffer_get_bounds (buffer, &start, &end);
  gtk_text_buffer_remove_tag_by_name (buffer, "error", &start, &end);
  gtk_label_set_text (label, message ? message : "");
  gtk_widget_set_visible (GTK_WIDGET (label), message != NULL);
  gtk_accessible_update_state (GTK_ACCESSIBLE (view), GTK_ACCESSIBLE_STATE_INVALID,
                               message ? GTK_ACCESSIBLE_INVALID_TRUE : GTK_ACCESSIBLE_INVALID_FALSE,
                               -1);
  if (message == NULL)
    return;

  /* Messages say where: "body, column 14: expected '}}'" (and "line 2" for multi-line ones).
   * Underline from there to the end of that line, so the eye lands on it. */
  {
    const char *line_at = strstr (message, "line ");
    const char *column_at = strstr (message, "column ");
    int line = line_at ? atoi (line_at + 5) : 1;
    int column = column_at ? atoi (column_at + 7) : 0;

    if (column <= 0)
      return;
    if (line < 1)
      line = 1;
    if (!gtk_text_buffer_get_iter_at_line_offset (buffer, &start, line - 1, 0))
      return;
    if (column - 1 < gtk_text_iter_get_chars_in_line (&start))
      gtk_text_iter_set_line_offset (&start, column - 1);
    else
      gtk_text_iter_forward_to_line_end (&start);
    end = start;
    if (!gtk_text_iter_ends_line (&end))
      gtk_text_iter_forward_to_line_end (&end);
    else if (!gtk_text_iter_starts_line (&start))
      gtk_text_iter_backward_char (&start);
    gtk_text_buffer_apply_tag_by_name (buffer, "error", &start, &end);
  }
}

/* The sample is typed or pasted by the user, but pasted text can be anything: it goes through
 * the guarded parser as a peer's would (100,000 '[' would overflow json-glib's). */
static JsonObject *
parse_sample (const char  *sample,
              GError     **error)
{
  return tocsin_json_parse_object (sample, strlen (sample), MAX_SAMPLE_BYTES,
                                   TOCSIN_JSON_DEFAULT_MAX_DEPTH, error);
}

/* ---- forwards and actions ------------------------------------------------------------ */

/* The request editors in @box, in order. */
static GPtrArray *
request_editors (GtkBox *box)
{
  GPtrArray *editors = g_ptr_array_new ();

  for (GtkWidget *child = gtk_widget_get_first_child (GTK_WIDGET (box)); child != NULL;
       child = gtk_widget_get_next_sibling (child))
    if (TOCSIN_IS_REQUEST_EDITOR (child))
      g_ptr_array_add (editors, child);
  return editors;
}

/* Compiles each forward and action as the relay will ("forwards[0]", ...), showing errors
 * under their fields. Fills @forwards and @actions (optional) with the definitions when all are
 * valid. */
static gboolean
validate_requests (TocsinChannelEditor  *self,
                   JsonArray           **forwards,
                   JsonArray           **actions)
{
  GtkBox *boxes[2] = { self->forwards_box, self->actions_box };
  const char *names[2] = { "forwards", "actions" };
  g_autoptr(JsonArray) forward_list = json_array_new ();
  g_autoptr(JsonArray) action_list = json_array_new ();
  JsonArray *lists[2] = { forward_list, action_list };
  gboolean ok = TRUE;

  for (guint b = 0; b < 2; b++)
    {
      g_autoptr(GPtrArray) editors = request_editors (boxes[b]);

      for (guint i = 0; i < editors->len; i++)
        {
          g_autofree char *field = g_strdup_printf ("%s[%u]", names[b], i);
          JsonObject *definition = tocsin_request_editor_validate (editors->pdata[i], field);

          if (definition == NULL)
            ok = FALSE;
          else
            json_array_add_object_element (lists[b], definition);
        }
      gtk_widget_set_visible (b == 0 ? self->forwards_empty : self->actions_empty,
                              editors->len == 0);
      gtk_widget_action_set_enabled (GTK_WIDGET (self),
                                     b == 0 ? "editor.add-forward" : "editor.add-action",
                                     editors->len < (b == 0 ? TOCSIN_REQUEST_MAX_FORWARDS
                                                            : TOCSIN_REQUEST_MAX_ACTIONS));
    }
  if (ok && forwards != NULL)
    *forwards = g_steal_pointer (&forward_list);
  if (ok && actions != NULL)
    *actions = g_steal_pointer (&action_list);
  return ok;
}

/* The relay refused a request ("forwards[1].url: ..." in its 400 sentence; docs/api.md): show
 * it under that request's field as well, since it may check more than the app can (an address
 * the relay will not send to). */
static void
show_relay_request_error (TocsinChannelEditor *self,
                          const GError        *error)
{
  const char *message = error->message;
  gboolean is_action = g_str_has_prefix (message, "actions[");
  g_autoptr(GPtrArray) editors = NULL;
  g_autofree char *field = NULL;
  guint64 index;
  char *end = NULL;

  if (!g_error_matches (error, TOCSIN_OWNER_ERROR, 400) ||
      (!is_action && !g_str_has_prefix (message, "forwards[")))
    return;
  index = g_ascii_strtoull (strchr (message, '[') + 1, &end, 10);
  editors = request_editors (is_action ? self->actions_box : self->forwards_box);
  if (end == NULL || *end != ']' || index >= editors->len)
    return;
  field = g_strndup (message, end + 1 - message);
  tocsin_request_editor_show_error (editors->pdata[index], field, message);
  self->has_errors = TRUE;
  sync_save (self);
}

/* GTK 4.8 can keep pointing at a focused widget that is removed from a window in the background
 * (a selectable label, an entry), and the next focus change then reads a freed widget: a
 * CRITICAL in gtk_label_grab_focus, seen under load in /ui/editor/edit-rotate-delete (8 crashes
 * in 30 loaded runs before, 0 in 36 after). Whatever is about to be removed from @container lets
 * go of the focus first. */
static void
release_focus_within (TocsinChannelEditor *self,
                      GtkWidget           *container)
{
  GtkWidget *focus = gtk_root_get_focus (GTK_ROOT (self));

  if (focus != NULL && (focus == container || gtk_widget_is_ancestor (focus, container)))
    gtk_root_set_focus (GTK_ROOT (self), NULL);
}

static void
request_remove_cb (TocsinRequestEditor *editor,
                   TocsinChannelEditor *self)
{
  release_focus_within (self, GTK_WIDGET (editor));
  gtk_box_remove (GTK_BOX (gtk_widget_get_parent (GTK_WIDGET (editor))), GTK_WIDGET (editor));
  /* At once: the Add button and Save follow what is left. */
  update_preview (self);
}

static TocsinRequestEditor *
add_request (TocsinChannelEditor *self,
             gboolean             is_action,
             JsonObject          *definition)
{
  GtkWidget *editor = tocsin_request_editor_new (is_action);

  if (definition != NULL)
    tocsin_request_editor_load (TOCSIN_REQUEST_EDITOR (editor), definition);
  g_signal_connect_object (editor, "changed", G_CALLBACK (buffer_changed_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (editor, "remove", G_CALLBACK (request_remove_cb), self, 0);
  gtk_box_append (is_action ? self->actions_box : self->forwards_box, editor);
  return TOCSIN_REQUEST_EDITOR (editor);
}

static void
clear_requests (TocsinChannelEditor *self)
{
  GtkBox *boxes[2] = { self->forwards_box, self->actions_box };

  for (guint b = 0; b < 2; b++)
    {
      g_autoptr(GPtrArray) editors = request_editors (boxes[b]);

      for (guint i = 0; i < editors->len; i++)
        {
          release_focus_within (self, editors->pdata[i]);
          gtk_box_remove (boxes[b], editors->pdata[i]);
        }
    }
}

static void
load_requests (TocsinChannelEditor *self,
               JsonObject          *channel,
               const char          *member,
               gboolean             is_action)
{
  JsonNode *node = json_object_get_member (channel, member);
  JsonArray *array;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return;
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);

      if (JSON_NODE_HOLDS_OBJECT (element))
        add_request (self, is_action, json_node_get_object (element));
    }
}

static void
add_request_action (GtkWidget  *widget,
                    const char *action_name,
                    GVariant   *param)
{
  TocsinChannelEditor *self = TOCSIN_CHANNEL_EDITOR (widget);
  gboolean is_action = g_str_equal (action_name, "editor.add-action");
  TocsinRequestEditor *editor = add_request (self, is_action, NULL);

  update_preview (self);
  gtk_widget_grab_focus (GTK_WIDGET (editor));
}

static void
update_preview (TocsinChannelEditor *self)
{
  TocsinTemplate *templates[N_FIELDS] = { NULL, };
  g_autofree char *sample = buffer_text (self->sample_view);
  g_autoptr(JsonObject) sample_object = NULL;
  g_autoptr(GError) json_error = NULL;
  g_autoptr(TocsinTemplateScope) scope = NULL;
  g_autoptr(GPtrArray) missing = g_ptr_array_new_with_free_func (g_free);
  JsonObject *vars = NULL;
  g_autoptr(GString) note = g_string_new (NULL);

  self->has_errors = FALSE;
  g_clear_handle_id (&self->preview_id, g_source_remove);

  for (guint i = 0; i < N_FIELDS; i++)
    {
      g_autofree char *source = buffer_text (self->views[i]);
      g_autoptr(GError) error = NULL;

      if (i == FIELD_CONDITION)
        templates[i] = tocsin_template_new_condition (field_names[i], source, &error);
      else
        templates[i] = tocsin_template_new (field_names[i], source, &error);
      set_error (self, self->views[i], self->errors[i], error ? error->message : NULL);
      if (error != NULL)
        self->has_errors = TRUE;
    }

  if (*g_strstrip (sample) == '\0')
    set_error (self, self->sample_view, self->sample_error, NULL);
  else if ((sample_object = parse_sample (sample, &json_error)) == NULL &&
           !g_error_matches (json_error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_NOT_OBJECT))
    {
      g_autofree char *text = g_strdup_printf (_("The sample is not valid JSON: %s"),
                                               json_error->message);

      set_error (self, self->sample_view, self->sample_error, text);
    }
  else if (sample_object == NULL)
    set_error (self, self->sample_view, self->sample_error,
               _("The sample must be a JSON object, like {\"server_name\": \"Production\"}."));
  else
    {
      set_error (self, self->sample_view, self->sample_error, NULL);
      vars = sample_object;
    }

  scope = tocsin_template_scope_new (vars, NULL);

  {
    g_autofree char *title = templates[FIELD_TITLE] ? tocsin_template_render (templates[FIELD_TITLE], scope, missing) : g_strdup ("");
    g_autofree char *body = templates[FIELD_BODY] ? tocsin_template_render (templates[FIELD_BODY], scope, missing) : g_strdup ("");
    g_autofree char *link = templates[FIELD_LINK] ? tocsin_template_render (templates[FIELD_LINK], scope, missing) : g_strdup ("");
    gboolean passes = templates[FIELD_CONDITION] ? tocsin_template_evaluate (templates[FIELD_CONDITION], scope, missing) : TRUE;
    g_autoptr(GError) budget_error = NULL;
    const char *reason = NULL;

    /* Over the work budget, the relay would refuse the webhook: say so instead of a preview. */
    if (!tocsin_template_scope_check (scope, &budget_error))
      {
        g_string_append (note, budget_error->message);
        passes = FALSE;
      }

    gtk_label_set_text (self->preview_title, *title ? title : _("(empty title)"));
    gtk_label_set_text (self->preview_body, body);
    gtk_widget_set_visible (GTK_WIDGET (self->preview_body), *body != '\0');
    gtk_label_set_text (self->preview_link, link);
    gtk_widget_set_visible (GTK_WIDGET (self->preview_link), *link != '\0');

    if (*link != '\0' && templates[FIELD_LINK] != NULL && !tocsin_link_is_safe (link, &reason))
      {
        g_autofree char *text = g_strdup_printf (_("With these variables the link is “%s”, which will be left out: %s. A link must be an http or https address."),
                                                 link, reason ? reason : "");

        set_error (self, self->link_view, self->link_error, text);
      }

    if (!passes && budget_error == NULL)
      g_string_append (note, _("The condition is false for these variables: this message would not be sent."));
    if (missing->len > 0)
      {
        g_autoptr(GString) names = g_string_new (NULL);

        for (guint i = 0; i < missing->len; i++)
          g_string_append_printf (names, "%s%s", i ? ", " : "", (char *) g_ptr_array_index (missing, i));
        if (note->len)
          g_string_append_c (note, '\n');
        /* Translators: %s is a list of variable names */
        g_string_append_printf (note, _("Not in the sample, so empty: %s"), names->str);
      }
    gtk_label_set_text (self->preview_note, note->str);
    gtk_widget_set_visible (GTK_WIDGET (self->preview_note), note->len > 0);
    gtk_widget_set_opacity (GTK_WIDGET (self->preview_title), passes ? 1.0 : 0.55);
    gtk_widget_set_opacity (GTK_WIDGET (self->preview_body), passes ? 1.0 : 0.55);
  }

  for (guint i = 0; i < N_FIELDS; i++)
    g_clear_pointer (&templates[i], tocsin_template_unref);

  if (!validate_requests (self, NULL, NULL))
    self->has_errors = TRUE;
  sync_save (self);
}

static gboolean
preview_timeout_cb (gpointer data)
{
  TocsinChannelEditor *self = data;

  self->preview_id = 0;
  update_preview (self);
  return G_SOURCE_REMOVE;
}

static void
buffer_changed_cb (TocsinChannelEditor *self)
{
  /* Re-render after a short pause, not on every key. */
  g_clear_handle_id (&self->preview_id, g_source_remove);
  self->preview_id = g_timeout_add (150, preview_timeout_cb, self);
}

/* ---- the "created" page --------------------------------------------------------------- */

/* From a channel as the owner API shows it; a relay that takes no mail shows no address. */
static void
set_email_address (TocsinChannelEditor *self,
                   JsonObject          *channel)
{
  g_clear_pointer (&self->email_address, g_free);
  if (channel != NULL)
    self->email_address = g_strdup (json_object_get_string_member_with_default (channel,
                                                                                "email_address",
                                                                                NULL));
}

static void
copy_clicked_cb (GtkButton *button,
                 gpointer   user_data)
{
  const char *text = g_object_get_data (G_OBJECT (button), "text");
  TocsinChannelEditor *self = TOCSIN_CHANNEL_EDITOR (gtk_widget_get_root (GTK_WIDGET (button)));

  gdk_clipboard_set_text (gtk_widget_get_clipboard (GTK_WIDGET (button)), text);
  toast (self, _("Copied"));
}

static void
add_copy_group (TocsinChannelEditor *self,
                const char          *title,
                const char          *description,
                const char          *value,
                const char          *copy_label)
{
  GtkWidget *group = adw_preferences_group_new ();
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *label = gtk_label_new (value);
  GtkWidget *button = gtk_button_new_from_icon_name ("edit-copy-symbolic");

  adw_preferences_group_set_title (ADW_PREFERENCES_GROUP (group), title);
  if (description != NULL)
    adw_preferences_group_set_description (ADW_PREFERENCES_GROUP (group), description);
  gtk_widget_add_css_class (box, "card");
  gtk_widget_add_css_class (box, "preview-card");
  gtk_label_set_selectable (GTK_LABEL (label), TRUE);
  gtk_label_set_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_wrap_mode (GTK_LABEL (label), PANGO_WRAP_CHAR);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_widget_set_hexpand (label, TRUE);
  gtk_widget_add_css_class (label, "monospace-label");
  {
    /* A hyphen inserted at a wrap would end up in the pasted command. */
    PangoAttrList *attrs = pango_attr_list_new ();

    pango_attr_list_insert (attrs, pango_attr_insert_hyphens_new (FALSE));
    gtk_label_set_attributes (GTK_LABEL (label), attrs);
    pango_attr_list_unref (attrs);
  }
  gtk_accessible_update_property (GTK_ACCESSIBLE (label), GTK_ACCESSIBLE_PROPERTY_LABEL, title, -1);
  gtk_widget_set_valign (button, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (button, "flat");
  gtk_widget_set_tooltip_text (button, copy_label);
  gtk_accessible_update_property (GTK_ACCESSIBLE (button), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  copy_label, -1);
  g_object_set_data_full (G_OBJECT (button), "text", g_strdup (value), g_free);
  g_signal_connect (button, "clicked", G_CALLBACK (copy_clicked_cb), NULL);
  gtk_box_append (GTK_BOX (box), label);
  gtk_box_append (GTK_BOX (box), button);
  adw_preferences_group_add (ADW_PREFERENCES_GROUP (group), box);
  gtk_box_append (GTK_BOX (self->created_box), group);
}

/* Shell-quotes @text in single quotes. */
static char *
shell_quote (const char *text)
{
  return g_shell_quote (text);
}

static void
show_urls (TocsinChannelEditor *self)
{
  GtkWidget *child;
  g_autofree char *sample = buffer_text (self->sample_view);
  g_autoptr(JsonObject) object = parse_sample (sample, NULL);
  g_autoptr(GString) query = g_string_new (NULL);
  g_autofree char *compact = NULL;
  g_autofree char *get_line = NULL;
  g_autofree char *post_line = NULL;
  g_autofree char *get_url = NULL;

  g_return_if_fail (self->channel != NULL);

  /* The URL labels are selectable: one may hold the focus. */
  release_focus_within (self, self->created_box);
  while ((child = gtk_widget_get_next_sibling (self->created_heading)) != NULL)
    gtk_box_remove (GTK_BOX (self->created_box), child);

  /* The sample variables become the curl lines' query and JSON body. */
  if (object != NULL)
    {
      g_autoptr(GList) members = json_object_get_members (object);

      for (GList *l = members; l; l = l->next)
        {
          JsonNode *node = json_object_get_member (object, l->data);
          g_autofree char *value = NULL;
          g_autofree char *escaped_name = NULL;
          g_autofree char *escaped_value = NULL;

          if (!JSON_NODE_HOLDS_VALUE (node))
            continue;
          value = json_node_get_value_type (node) == G_TYPE_STRING
                  ? g_strdup (json_node_get_string (node))
                  : tocsin_json_to_string (node, FALSE);
          escaped_name = g_uri_escape_string (l->data, NULL, FALSE);
          escaped_value = g_uri_escape_string (value, NULL, FALSE);
          g_string_append_printf (query, "%s%s=%s", query->len ? "&" : "?", escaped_name,
                                  escaped_value);
        }
      {
        g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);

        json_node_set_object (root, object);
        compact = tocsin_json_to_string (root, FALSE);
      }
    }
  else
    compact = g_strdup ("{}");

  get_url = g_strconcat (self->channel->webhook_url, query->str, NULL);
  {
    g_autofree char *quoted_url = shell_quote (get_url);
    g_autofree char *quoted_webhook = shell_quote (self->channel->webhook_url);
    g_autofree char *quoted_body = shell_quote (compact);

    get_line = g_strdup_printf ("curl %s", quoted_url);
    post_line = g_strdup_printf ("curl -X POST -H 'Content-Type: application/json' -d %s %s",
                                 quoted_body, quoted_webhook);
  }

  add_copy_group (self, _("Webhook URL"),
                  _("Ring this address to send a notification. Anyone who has it can ring the channel: keep it secret."),
                  self->channel->webhook_url, _("Copy the webhook URL"));
  if (self->email_address != NULL)
    add_copy_group (self, _("Email Address"),
                    _("Mail to this address rings the channel too: its subject, text and "
                      "sender are the variables. Keep it secret as well."),
                    self->email_address, _("Copy the email address"));
  add_copy_group (self, _("Subscribe Link"),
                  _("Share this with whoever should get the notifications. You are already subscribed."),
                  self->channel->subscribe_url, _("Copy the subscribe link"));
  if (self->shown_secret != NULL)
    add_copy_group (self, _("Signing Secret"),
                    _("Give this to the sender that signs the webhooks. It is shown only now."),
                    self->shown_secret, _("Copy the signing secret"));
  add_copy_group (self, _("Try It With GET"), NULL, get_line, _("Copy the GET command"));
  add_copy_group (self, _("Try It With POST"), NULL, post_line, _("Copy the POST command"));

  adw_window_title_set_subtitle (self->window_title, self->channel->name);
  gtk_stack_set_visible_child_name (self->stack, "created");
  gtk_button_set_label (self->save_button, _("_Done"));
  gtk_widget_set_visible (GTK_WIDGET (self->cancel_button), FALSE);
  sync_save (self);
}

/* ---- subscribe the owner -------------------------------------------------------------- */

/* The creator wants to see what the channel sends, so subscribe them right away. Not tied to
 * the editor's lifetime: closing the editor must not lose the subscription. */
static void
subscribe_owner (TocsinChannelEditor *self,
                 const char          *subscribe_url)
{
  tocsin_application_subscribe_self (self->app, subscribe_url, NULL, TOCSIN_NOTIFY_TYPE_NORMAL,
                                     _("You were not subscribed to the new channel: %s"));
}

/* ---- save / create -------------------------------------------------------------------- */

static JsonObject *
collect_fields (TocsinChannelEditor *self)
{
  JsonObject *fields = json_object_new ();
  g_autofree char *name = g_strstrip (g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->name_row))));
  g_autofree char *description = g_strstrip (g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->description_row))));

  json_object_set_string_member (fields, "name", name);
  json_object_set_string_member (fields, "description", description);
  for (guint i = 0; i < N_FIELDS; i++)
    {
      g_autofree char *source = buffer_text (self->views[i]);

      json_object_set_string_member (fields, field_names[i], source);
    }

  {
    guint scheme = adw_combo_row_get_selected (self->signature_row);
    const char *secret = gtk_editable_get_text (GTK_EDITABLE (self->signature_secret_row));
    const char *header = gtk_editable_get_text (GTK_EDITABLE (self->signature_header_row));

    if (scheme >= G_N_ELEMENTS (signature_schemes))
      scheme = 0;
    json_object_set_string_member (fields, "signature", signature_schemes[scheme]);
    /* Empty: the relay keeps the secret it has, or makes one. */
    if (scheme != 0 && *secret != '\0')
      json_object_set_string_member (fields, "signature_secret", secret);
    if (scheme == SCHEME_HMAC)
      json_object_set_string_member (fields, "signature_header", header);
    json_object_set_boolean_member (fields, "paused", gtk_switch_get_active (self->paused_switch));
  }

  /* Always both lists, empty ones too: removing the last forward must reach the relay. */
  {
    g_autoptr(JsonArray) forwards = NULL;
    g_autoptr(JsonArray) actions = NULL;

    if (validate_requests (self, &forwards, &actions))
      {
        json_object_set_array_member (fields, "forwards", g_steal_pointer (&forwards));
        json_object_set_array_member (fields, "actions", g_steal_pointer (&actions));
      }
  }
  return fields;
}

static void
set_busy (TocsinChannelEditor *self,
          gboolean             busy)
{
  self->busy = busy;
  sync_save (self);
}

/* Save is off while saving, and while the editor shows errors (the created page has none). */
static void
sync_save (TocsinChannelEditor *self)
{
  gboolean created = g_strcmp0 (gtk_stack_get_visible_child_name (self->stack), "created") == 0;

  gtk_widget_set_sensitive (GTK_WIDGET (self->save_button),
                            !self->busy && (created || !self->has_errors));
}

/* The relay sends a signing secret it made once: keep it to show, and clear what was typed. */
static gboolean
take_shown_secret (TocsinChannelEditor *self,
                   JsonObject          *answer)
{
  const char *secret = answer ? json_object_get_string_member_with_default (answer,
                                                                            "signature_secret",
                                                                            NULL)
                              : NULL;

  gtk_editable_set_text (GTK_EDITABLE (self->signature_secret_row), "");
  if (secret == NULL)
    return FALSE;
  g_free (self->shown_secret);
  self->shown_secret = g_strdup (secret);
  return TRUE;
}

static void
created_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(TocsinChannelEditor) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) answer = NULL;
  TocsinOwnedChannel *channel;

  set_busy (self, FALSE);
  channel = tocsin_owner_create_channel_finish (TOCSIN_OWNER (object), result, &answer, &error);
  if (channel == NULL)
    {
      g_autofree char *text = NULL;

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      text = g_strdup_printf (_("The channel was not created: %s"), error->message);
      toast (self, text);
      show_relay_request_error (self, error);
      return;
    }

  self->channel = channel;
  take_shown_secret (self, answer);
  set_email_address (self, answer);
  subscribe_owner (self, channel->subscribe_url);
  tocsin_application_reload_owned_channels (self->app);
  show_urls (self);
}

static void
updated_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(TocsinChannelEditor) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) answer = NULL;

  set_busy (self, FALSE);
  answer = tocsin_owner_request_finish (TOCSIN_OWNER (object), result, &error);
  if (answer == NULL)
    {
      g_autofree char *text = NULL;

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      text = g_strdup_printf (_("The changes were not saved: %s"), error->message);
      toast (self, text);
      show_relay_request_error (self, error);
      return;
    }
  /* The relay's answer is the channel as it is now: the name shown follows it. */
  if (json_object_has_member (answer, "name"))
    {
      g_free (self->channel->name);
      self->channel->name = g_strdup (json_object_get_string_member (answer, "name"));
      adw_window_title_set_subtitle (self->window_title, self->channel->name);
    }
  tocsin_application_reload_owned_channels (self->app);
  if (take_shown_secret (self, answer))
    show_urls (self);
  toast (self, _("Saved"));
}

static void
save_action (GtkWidget  *widget,
             const char *action_name,
             GVariant   *param)
{
  TocsinChannelEditor *self = TOCSIN_CHANNEL_EDITOR (widget);
  g_autoptr(JsonObject) fields = NULL;
  g_autofree char *relay = NULL;
  g_autofree char *admin_key = NULL;

  if (self->busy)
    return;
  if (g_strcmp0 (gtk_stack_get_visible_child_name (self->stack), "created") == 0)
    {
      gtk_window_destroy (GTK_WINDOW (self));
      return;
    }

  update_preview (self);
  if (self->has_errors)
    {
      toast (self, _("Fix the errors in red first"));
      return;
    }
  fields = collect_fields (self);
  if (*json_object_get_string_member (fields, "name") == '\0')
    {
      gtk_widget_add_css_class (GTK_WIDGET (self->name_row), "error");
      gtk_widget_grab_focus (GTK_WIDGET (self->name_row));
      toast (self, _("Give the channel a name"));
      return;
    }
  gtk_widget_remove_css_class (GTK_WIDGET (self->name_row), "error");

  set_busy (self, TRUE);
  if (self->channel != NULL)
    {
      tocsin_owner_update_channel_async (tocsin_application_get_owner (self->app), self->channel,
                                         fields, self->cancellable, updated_cb,
                                         g_object_ref (self));
      return;
    }

  relay = g_strstrip (g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->relay_row))));
  while (g_str_has_suffix (relay, "/"))
    relay[strlen (relay) - 1] = '\0';
  if (!g_str_has_prefix (relay, "https://") && !g_str_has_prefix (relay, "http://"))
    {
      set_busy (self, FALSE);
      gtk_widget_add_css_class (GTK_WIDGET (self->relay_row), "error");
      gtk_widget_grab_focus (GTK_WIDGET (self->relay_row));
      toast (self, _("Enter the relay’s address"));
      return;
    }
  gtk_widget_remove_css_class (GTK_WIDGET (self->relay_row), "error");
  admin_key = g_strstrip (g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->admin_key_row))));

  /* Remember the relay for the next channel. */
  {
    GSettings *settings = tocsin_application_get_settings (self->app);
    g_autofree char *current = g_settings_get_string (settings, "default-relay");

    if (*current == '\0')
      g_settings_set_string (settings, "default-relay", relay);
  }

  tocsin_owner_create_channel_async (tocsin_application_get_owner (self->app), relay,
                                     *admin_key ? admin_key : NULL, fields, self->cancellable,
                                     created_cb, g_object_ref (self));
}

/* ---- edit: load, rotate, delete ------------------------------------------------------- */

static void
set_buffer (GtkTextView *view,
            const char  *text)
{
  gtk_text_buffer_set_text (gtk_text_view_get_buffer (view), text ? text : "", -1);
}

static void
loaded_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(TocsinChannelEditor) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) answer = NULL;

  set_busy (self, FALSE);
  answer = tocsin_owner_request_finish (TOCSIN_OWNER (object), result, &error);
  if (answer == NULL)
    {
      g_autofree char *text = NULL;

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      text = g_strdup_printf (_("Could not load the channel from its relay: %s"), error->message);
      toast (self, text);
      return;
    }

  gtk_editable_set_text (GTK_EDITABLE (self->name_row),
                         json_object_get_string_member_with_default (answer, "name", ""));
  gtk_editable_set_text (GTK_EDITABLE (self->description_row),
                         json_object_get_string_member_with_default (answer, "description", ""));
  for (guint i = 0; i < N_FIELDS; i++)
    set_buffer (self->views[i], json_object_get_string_member_with_default (answer, field_names[i], ""));
  {
    const char *scheme = json_object_get_string_member_with_default (answer, "signature", "none");

    for (guint i = 0; i < G_N_ELEMENTS (signature_schemes); i++)
      if (g_str_equal (scheme, signature_schemes[i]))
        adw_combo_row_set_selected (self->signature_row, i);
    gtk_editable_set_text (GTK_EDITABLE (self->signature_header_row),
                           json_object_get_string_member_with_default (answer, "signature_header",
                                                                       "X-Signature"));
    gtk_switch_set_active (self->paused_switch,
                           json_object_get_boolean_member_with_default (answer, "paused", FALSE));
  }
  clear_requests (self);
  load_requests (self, answer, "forwards", FALSE);
  load_requests (self, answer, "actions", TRUE);
  set_email_address (self, answer);
  update_preview (self);
  refresh_webhooks (self);
}

typedef enum
{
  ACT_ROTATE_TRIGGER,
  ACT_ROTATE_SUBSCRIBE,
  ACT_ROTATE_SIGNATURE,
  ACT_DELETE
} DangerAct;

static void
rotated_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(TocsinChannelEditor) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) answer = NULL;
  const char *webhook, *subscribe;

  set_busy (self, FALSE);
  answer = tocsin_owner_request_finish (TOCSIN_OWNER (object), result, &error);
  if (answer == NULL)
    {
      g_autofree char *text = NULL;

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      text = g_strdup_printf (_("Nothing was changed: %s"), error->message);
      toast (self, text);
      return;
    }

  webhook = json_object_get_string_member_with_default (answer, "webhook_url", NULL);
  subscribe = json_object_get_string_member_with_default (answer, "subscribe_url", NULL);
  set_email_address (self, answer);
  if (webhook != NULL)
    {
      g_free (self->channel->webhook_url);
      self->channel->webhook_url = g_strdup (webhook);
    }
  if (subscribe != NULL && g_strcmp0 (subscribe, self->channel->subscribe_url) != 0)
    {
      TocsinClient *client = tocsin_application_get_client (self->app);
      TocsinSubscription *old = tocsin_client_find_subscription (client, self->channel->relay_url,
                                                                 self->channel->id);

      /* The old link is dead: move the owner's own subscription to the new one. */
      if (old != NULL)
        tocsin_client_unsubscribe (client, old);
      g_free (self->channel->subscribe_url);
      self->channel->subscribe_url = g_strdup (subscribe);
      subscribe_owner (self, subscribe);
    }
  take_shown_secret (self, answer);
  tocsin_application_reload_owned_channels (self->app);
  show_urls (self);
}

static void
deleted_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(TocsinChannelEditor) self = user_data;
  g_autoptr(GError) error = NULL;
  TocsinClient *client = tocsin_application_get_client (self->app);
  TocsinSubscription *subscription;
  GtkWindow *parent;

  set_busy (self, FALSE);
  if (!tocsin_owner_delete_channel_finish (TOCSIN_OWNER (object), result, &error))
    {
      g_autofree char *text = NULL;

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      text = g_strdup_printf (_("The channel was not deleted: %s"), error->message);
      toast (self, text);
      return;
    }

  subscription = tocsin_client_find_subscription (client, self->channel->relay_url, self->channel->id);
  if (subscription != NULL)
    tocsin_client_unsubscribe (client, subscription);
  tocsin_application_reload_owned_channels (self->app);
  parent = gtk_window_get_transient_for (GTK_WINDOW (self));
  if (parent != NULL)
    gtk_widget_activate_action (GTK_WIDGET (parent), "win.toast", "s", _("Channel deleted"));
  gtk_window_destroy (GTK_WINDOW (self));
}

static void
danger_response_cb (AdwMessageDialog *dialog,
                    const char       *response,
                    gpointer          user_data)
{
  TocsinChannelEditor *self = g_object_get_data (G_OBJECT (dialog), "editor");
  DangerAct act = GPOINTER_TO_INT (user_data);
  TocsinOwner *owner;

  if (g_strcmp0 (response, "confirm") != 0 || self == NULL || self->channel == NULL)
    return;
  owner = tocsin_application_get_owner (self->app);
  set_busy (self, TRUE);
  switch (act)
    {
    case ACT_ROTATE_TRIGGER:
      tocsin_owner_rotate_async (owner, self->channel, TOCSIN_OWNER_ROTATE_TRIGGER,
                                 self->cancellable, rotated_cb, g_object_ref (self));
      break;
    case ACT_ROTATE_SUBSCRIBE:
      tocsin_owner_rotate_async (owner, self->channel, TOCSIN_OWNER_ROTATE_SUBSCRIBE,
                                 self->cancellable, rotated_cb, g_object_ref (self));
      break;
    case ACT_ROTATE_SIGNATURE:
      tocsin_owner_rotate_async (owner, self->channel, TOCSIN_OWNER_ROTATE_SIGNATURE,
                                 self->cancellable, rotated_cb, g_object_ref (self));
      break;
    case ACT_DELETE:
      tocsin_owner_delete_channel_async (owner, self->channel, self->cancellable, deleted_cb,
                                         g_object_ref (self));
      break;
    default:
      g_assert_not_reached ();
    }
}

static void
ask_danger (TocsinChannelEditor *self,
            DangerAct            act)
{
  const char *heading, *body, *button;
  GtkWidget *dialog;

  switch (act)
    {
    case ACT_ROTATE_TRIGGER:
      heading = _("Replace the Webhook URL?");
      body = _("The current webhook URL stops working at once. Update every service that rings it.");
      button = _("_Replace");
      break;
    case ACT_ROTATE_SUBSCRIBE:
      heading = _("Replace the Subscribe Link?");
      body = _("Everyone subscribed is cut off and needs the new link to subscribe again. Tocsin moves your own subscription over.");
      button = _("_Replace");
      break;
    case ACT_ROTATE_SIGNATURE:
      heading = _("Replace the Signing Secret?");
      body = _("Webhooks signed with the current secret are refused at once. Give the new one "
               "to the sender.");
      button = _("_Replace");
      break;
    case ACT_DELETE:
    default:
      heading = _("Delete This Channel?");
      body = _("The relay forgets the channel and its messages, its webhook URL stops working and every subscriber is cut off. This cannot be undone.");
      button = _("_Delete");
      break;
    }

  dialog = adw_message_dialog_new (GTK_WINDOW (self), heading, body);
  adw_message_dialog_add_responses (ADW_MESSAGE_DIALOG (dialog),
                                    "cancel", _("_Cancel"),
                                    "confirm", button,
                                    NULL);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "confirm",
                                              ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_default_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  adw_message_dialog_set_close_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  g_object_set_data (G_OBJECT (dialog), "editor", self);
  g_signal_connect (dialog, "response", G_CALLBACK (danger_response_cb), GINT_TO_POINTER (act));
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
rotate_trigger_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  ask_danger (TOCSIN_CHANNEL_EDITOR (widget), ACT_ROTATE_TRIGGER);
}

static void
rotate_subscribe_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  ask_danger (TOCSIN_CHANNEL_EDITOR (widget), ACT_ROTATE_SUBSCRIBE);
}

static void
rotate_signature_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  ask_danger (TOCSIN_CHANNEL_EDITOR (widget), ACT_ROTATE_SIGNATURE);
}

static void
refresh_webhooks_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  refresh_webhooks (TOCSIN_CHANNEL_EDITOR (widget));
}

static void
delete_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  ask_danger (TOCSIN_CHANNEL_EDITOR (widget), ACT_DELETE);
}

static void
show_deliveries_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  TocsinChannelEditor *self = TOCSIN_CHANNEL_EDITOR (widget);
  GtkWidget *deliveries;

  if (self->channel == NULL)
    return;
  deliveries = tocsin_deliveries_window_new_for_channel (GTK_WINDOW (self), self->app,
                                                         self->channel);
  gtk_window_present (GTK_WINDOW (deliveries));
}

static void
show_urls_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  TocsinChannelEditor *self = TOCSIN_CHANNEL_EDITOR (widget);

  if (self->channel != NULL)
    show_urls (self);
}

/* ---- presets -------------------------------------------------------------------------- */

/* Row 0 of the preset row is "your own templates"; row i is preset i - 1. */
static void
preset_selected_cb (TocsinChannelEditor *self)
{
  guint selected = adw_combo_row_get_selected (self->preset_row);
  guint n = 0;
  const TocsinPreset *presets = tocsin_presets_get_all (&n);
  const TocsinPreset *preset;
  g_autoptr(GBytes) sample = NULL;
  g_autofree char *sample_text = NULL;

  /* Choosing "your own" keeps what is written: a preset is a starting point, not a mode. */
  if (selected == GTK_INVALID_LIST_POSITION || selected == 0 || selected > n)
    return;
  preset = &presets[selected - 1];
  set_buffer (self->views[FIELD_TITLE], preset->title);
  set_buffer (self->views[FIELD_BODY], preset->body);
  set_buffer (self->views[FIELD_LINK], preset->link);
  set_buffer (self->views[FIELD_CONDITION], preset->condition);
  sample = tocsin_preset_get_sample (preset);
  sample_text = g_strndup (g_bytes_get_data (sample, NULL), g_bytes_get_size (sample));
  set_buffer (self->sample_view, g_strchomp (sample_text));
  /* Name the channel after the sender, unless the user named it (another preset's name is
   * ours to replace). */
  {
    const char *name = gtk_editable_get_text (GTK_EDITABLE (self->name_row));
    gboolean ours = *name == '\0';

    for (guint i = 0; i < n && !ours; i++)
      ours = g_str_equal (name, tocsin_preset_get_name (&presets[i]));
    if (ours)
      gtk_editable_set_text (GTK_EDITABLE (self->name_row), tocsin_preset_get_name (preset));
  }
  /* Where to paste the webhook URL in that sender. */
  gtk_label_set_text (self->preset_setup, tocsin_preset_get_setup (preset));
  gtk_widget_set_visible (GTK_WIDGET (self->preset_setup), TRUE);
  update_preview (self);
}

static void
setup_presets (TocsinChannelEditor *self)
{
  g_autoptr(GtkStringList) names = gtk_string_list_new (NULL);
  guint n = 0;
  const TocsinPreset *presets = tocsin_presets_get_all (&n);

  gtk_string_list_append (names, _("None: write your own"));
  for (guint i = 0; i < n; i++)
    gtk_string_list_append (names, tocsin_preset_get_name (&presets[i]));
  adw_combo_row_set_model (self->preset_row, G_LIST_MODEL (names));
  adw_combo_row_set_selected (self->preset_row, 0);
  g_signal_connect_object (self->preset_row, "notify::selected", G_CALLBACK (preset_selected_cb),
                           self, G_CONNECT_SWAPPED);
}

/* ---- signature and recent webhooks ------------------------------------------------------ */

static void
signature_changed_cb (TocsinChannelEditor *self)
{
  guint scheme = adw_combo_row_get_selected (self->signature_row);

  gtk_widget_set_visible (GTK_WIDGET (self->signature_secret_row), scheme != 0);
  gtk_widget_set_visible (GTK_WIDGET (self->signature_header_row), scheme == SCHEME_HMAC);
}

static GtkWidget *
webhook_row_new (JsonObject *webhook)
{
  GtkWidget *row = adw_action_row_new ();
  GtkWidget *icon;
  gint64 status = json_object_get_int_member_with_default (webhook, "status", 0);
  const char *time = json_object_get_string_member_with_default (webhook, "time", "");
  g_autoptr(GDateTime) when = g_date_time_new_from_iso8601 (time, NULL);
  g_autoptr(GDateTime) local = when ? g_date_time_to_local (when) : NULL;
  g_autofree char *clock = local ? g_date_time_format (local, "%X") : g_strdup (time);
  g_autofree char *subtitle = NULL;
  gboolean ok = status >= 200 && status < 300;

  /* The sentence is the relay's; it may hold '<' and '&' (“v1,<base64>”). */
  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row),
                                 json_object_get_string_member_with_default (webhook, "sentence",
                                                                             ""));
  adw_action_row_set_title_lines (ADW_ACTION_ROW (row), 0);
  /* Translators: a time, then an HTTP status such as 401 */
  subtitle = g_strdup_printf (_("%s · HTTP %u"), clock, (guint) status);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  icon = gtk_image_new_from_icon_name (ok ? "emblem-ok-symbolic" : "dialog-warning-symbolic");
  gtk_accessible_update_property (GTK_ACCESSIBLE (icon), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  ok ? _("Accepted") : _("Refused"), -1);
  if (!ok)
    gtk_widget_add_css_class (icon, "warning");
  adw_action_row_add_prefix (ADW_ACTION_ROW (row), icon);
  return row;
}

static void
webhooks_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(TocsinChannelEditor) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) answer = NULL;
  JsonArray *webhooks;
  GtkWidget *child;

  answer = tocsin_owner_request_finish (TOCSIN_OWNER (object), result, &error);
  if (answer == NULL)
    {
      g_autofree char *text = NULL;

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      text = g_strdup_printf (_("Could not read the recent webhooks: %s"), error->message);
      toast (self, text);
      return;
    }
  release_focus_within (self, GTK_WIDGET (self->recent_list));
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->recent_list))) != NULL)
    gtk_list_box_remove (self->recent_list, child);
  webhooks = json_object_has_member (answer, "webhooks") &&
             JSON_NODE_HOLDS_ARRAY (json_object_get_member (answer, "webhooks"))
             ? json_object_get_array_member (answer, "webhooks") : NULL;
  for (guint i = 0; webhooks != NULL && i < json_array_get_length (webhooks); i++)
    {
      JsonNode *node = json_array_get_element (webhooks, i);

      if (JSON_NODE_HOLDS_OBJECT (node))
        gtk_list_box_append (self->recent_list, webhook_row_new (json_node_get_object (node)));
    }
}

static void
refresh_webhooks (TocsinChannelEditor *self)
{
  if (self->channel == NULL)
    return;
  tocsin_owner_list_webhooks_async (tocsin_application_get_owner (self->app), self->channel,
                                    self->cancellable, webhooks_cb, g_object_ref (self));
}

/* ---- public / lifecycle --------------------------------------------------------------- */

static gboolean
field_index (const char *field,
             guint      *index)
{
  for (guint i = 0; i < N_FIELDS; i++)
    if (g_strcmp0 (field, field_names[i]) == 0)
      {
        *index = i;
        return TRUE;
      }
  return FALSE;
}

void
tocsin_channel_editor_set_field (TocsinChannelEditor *self,
                                 const char          *field,
                                 const char          *text)
{
  guint i;

  g_return_if_fail (TOCSIN_IS_CHANNEL_EDITOR (self));

  if (g_strcmp0 (field, "sample") == 0)
    set_buffer (self->sample_view, text);
  else if (g_strcmp0 (field, "name") == 0)
    gtk_editable_set_text (GTK_EDITABLE (self->name_row), text);
  else if (field_index (field, &i))
    set_buffer (self->views[i], text);
  else
    g_return_if_reached ();
  update_preview (self);
}

const char *
tocsin_channel_editor_get_error (TocsinChannelEditor *self,
                                 const char          *field)
{
  GtkLabel *label = NULL;
  guint i;

  g_return_val_if_fail (TOCSIN_IS_CHANNEL_EDITOR (self), NULL);

  if (g_strcmp0 (field, "sample") == 0)
    label = self->sample_error;
  else if (field_index (field, &i))
    label = self->errors[i];
  g_return_val_if_fail (label != NULL, NULL);
  return gtk_widget_get_visible (GTK_WIDGET (label)) ? gtk_label_get_text (label) : NULL;
}

char *
tocsin_channel_editor_get_field (TocsinChannelEditor *self,
                                 const char          *field)
{
  guint i;

  g_return_val_if_fail (TOCSIN_IS_CHANNEL_EDITOR (self), NULL);

  if (g_strcmp0 (field, "sample") == 0)
    return buffer_text (self->sample_view);
  if (g_strcmp0 (field, "name") == 0)
    return g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->name_row)));
  if (field_index (field, &i))
    return buffer_text (self->views[i]);
  g_return_val_if_reached (NULL);
}

static void
tocsin_channel_editor_dispose (GObject *object)
{
  TocsinChannelEditor *self = TOCSIN_CHANNEL_EDITOR (object);

  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
  g_clear_handle_id (&self->preview_id, g_source_remove);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->app);
  g_clear_pointer (&self->channel, tocsin_owned_channel_free);
  if (self->shown_secret)
    explicit_bzero (self->shown_secret, strlen (self->shown_secret));
  g_clear_pointer (&self->shown_secret, g_free);
  g_clear_pointer (&self->email_address, g_free);
  G_OBJECT_CLASS (tocsin_channel_editor_parent_class)->dispose (object);
}

static void
tocsin_channel_editor_class_init (TocsinChannelEditorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = tocsin_channel_editor_dispose;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/tocsin/Tocsin/tocsin-channel-editor.ui");
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, window_title);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, save_button);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, cancel_button);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, stack);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, relay_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, admin_key_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, name_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, description_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, preset_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, preset_setup);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, title_view);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, body_view);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, link_view);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, condition_view);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, title_error);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, body_error);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, link_error);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, condition_error);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, sample_view);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, sample_error);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, preview_title);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, preview_body);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, preview_link);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, preview_note);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, manage_group);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, created_box);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, created_heading);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, signature_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, signature_secret_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, signature_header_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, paused_switch);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, recent_group);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, recent_list);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, forwards_box);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, actions_box);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, forwards_empty);
  gtk_widget_class_bind_template_child (widget_class, TocsinChannelEditor, actions_empty);

  gtk_widget_class_install_action (widget_class, "editor.save", NULL, save_action);
  gtk_widget_class_install_action (widget_class, "editor.show-urls", NULL, show_urls_action);
  gtk_widget_class_install_action (widget_class, "editor.show-deliveries", NULL,
                                   show_deliveries_action);
  gtk_widget_class_install_action (widget_class, "editor.add-forward", NULL, add_request_action);
  gtk_widget_class_install_action (widget_class, "editor.add-action", NULL, add_request_action);
  gtk_widget_class_install_action (widget_class, "editor.rotate-trigger", NULL,
                                   rotate_trigger_action);
  gtk_widget_class_install_action (widget_class, "editor.rotate-subscribe", NULL,
                                   rotate_subscribe_action);
  gtk_widget_class_install_action (widget_class, "editor.rotate-signature", NULL,
                                   rotate_signature_action);
  gtk_widget_class_install_action (widget_class, "editor.refresh-webhooks", NULL,
                                   refresh_webhooks_action);
  gtk_widget_class_install_action (widget_class, "editor.delete", NULL, delete_action);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_s, GDK_CONTROL_MASK, "editor.save",
                                       NULL);
}

static void
tocsin_channel_editor_init (TocsinChannelEditor *self)
{
  static const char *accessible_names[N_FIELDS] = {
    N_("Title template"), N_("Body template"), N_("Link template"), N_("Condition"),
  };

  gtk_widget_init_template (GTK_WIDGET (self));
  tocsin_a11y_fix_button_names (GTK_WIDGET (self));
  self->cancellable = g_cancellable_new ();

  self->views[FIELD_TITLE] = self->title_view;
  self->views[FIELD_BODY] = self->body_view;
  self->views[FIELD_LINK] = self->link_view;
  self->views[FIELD_CONDITION] = self->condition_view;
  self->errors[FIELD_TITLE] = self->title_error;
  self->errors[FIELD_BODY] = self->body_error;
  self->errors[FIELD_LINK] = self->link_error;
  self->errors[FIELD_CONDITION] = self->condition_error;

  for (guint i = 0; i <= N_FIELDS; i++)
    {
      GtkTextView *view = i < N_FIELDS ? self->views[i] : self->sample_view;
      GtkTextBuffer *buffer = gtk_text_view_get_buffer (view);

      gtk_text_buffer_create_tag (buffer, "error",
                                  "underline", PANGO_UNDERLINE_ERROR,
                                  "background", "rgba(224, 27, 36, 0.2)",
                                  NULL);
      g_signal_connect_object (buffer, "changed", G_CALLBACK (buffer_changed_cb), self,
                               G_CONNECT_SWAPPED);
      if (i < N_FIELDS)
        {
          gtk_accessible_update_property (GTK_ACCESSIBLE (view), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                          _(accessible_names[i]), -1);
          /* ERROR_MESSAGE takes one reference, not a NULL-terminated list as LABELLED_BY
           * does: a NULL after it would be read as the next relation. */
          gtk_accessible_update_relation (GTK_ACCESSIBLE (view),
                                          GTK_ACCESSIBLE_RELATION_ERROR_MESSAGE, self->errors[i],
                                          -1);
        }
    }
  /* GTK 4.8 reads a name and the mnemonic label it is labelled by one after the other
   * ("Condition Condition"): the names above say it all. */
  for (guint i = 0; i < N_FIELDS; i++)
    gtk_accessible_reset_relation (GTK_ACCESSIBLE (self->views[i]),
                                   GTK_ACCESSIBLE_RELATION_LABELLED_BY);
  /* AdwPasswordEntryRow 1.2's show/hide button has no name ("GtkImage" to a screen reader). */
  for (GtkWidget *w = GTK_WIDGET (self->admin_key_row); w != NULL; )
    {
      GtkWidget *next = gtk_widget_get_first_child (w);

      if (GTK_IS_BUTTON (w) && gtk_button_get_label (GTK_BUTTON (w)) == NULL)
        gtk_accessible_update_property (GTK_ACCESSIBLE (w), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                        _("Show or hide the key"), -1);
      /* Depth first, within the row. */
      while (next == NULL && w != GTK_WIDGET (self->admin_key_row))
        {
          next = gtk_widget_get_next_sibling (w);
          if (next == NULL)
            w = gtk_widget_get_parent (w);
        }
      w = next;
    }
  setup_presets (self);
  set_buffer (self->sample_view, SAMPLE_JSON);
  update_preview (self);

  g_signal_connect_object (self->signature_row, "notify::selected",
                           G_CALLBACK (signature_changed_cb), self, G_CONNECT_SWAPPED);
  {
    GtkWidget *empty = gtk_label_new (_("No webhooks yet. Ring the webhook URL, then refresh."));

    gtk_label_set_wrap (GTK_LABEL (empty), TRUE);
    gtk_widget_set_margin_top (empty, 12);
    gtk_widget_set_margin_bottom (empty, 12);
    gtk_widget_set_margin_start (empty, 12);
    gtk_widget_set_margin_end (empty, 12);
    gtk_widget_add_css_class (empty, "dim-label");
    gtk_list_box_set_placeholder (self->recent_list, empty);
  }
}

GtkWidget *
tocsin_channel_editor_new (GtkWindow         *parent,
                           TocsinApplication *app)
{
  TocsinChannelEditor *self;
  g_autofree char *relay = NULL;

  g_return_val_if_fail (TOCSIN_IS_APPLICATION (app), NULL);

  self = g_object_new (TOCSIN_TYPE_CHANNEL_EDITOR, "transient-for", parent, NULL);
  self->app = g_object_ref (app);
  relay = g_settings_get_string (tocsin_application_get_settings (app), "default-relay");
  gtk_editable_set_text (GTK_EDITABLE (self->relay_row), relay);
  return GTK_WIDGET (self);
}

GtkWidget *
tocsin_channel_editor_new_for_channel (GtkWindow                *parent,
                                       TocsinApplication        *app,
                                       const TocsinOwnedChannel *channel)
{
  TocsinChannelEditor *self;

  g_return_val_if_fail (TOCSIN_IS_APPLICATION (app), NULL);
  g_return_val_if_fail (channel != NULL, NULL);

  self = g_object_new (TOCSIN_TYPE_CHANNEL_EDITOR,
                       "transient-for", parent,
                       "title", _("Edit Channel"),
                       NULL);
  self->app = g_object_ref (app);
  self->channel = tocsin_owned_channel_copy (channel);
  adw_window_title_set_title (self->window_title, _("Edit Channel"));
  adw_window_title_set_subtitle (self->window_title, channel->name);
  gtk_button_set_label (self->save_button, _("_Save"));
  gtk_editable_set_text (GTK_EDITABLE (self->relay_row), channel->relay_url);
  gtk_editable_set_text (GTK_EDITABLE (self->name_row), channel->name ? channel->name : "");
  gtk_widget_set_sensitive (GTK_WIDGET (self->relay_row), FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->admin_key_row), FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->manage_group), TRUE);
  gtk_widget_set_visible (GTK_WIDGET (self->recent_group), TRUE);

  set_busy (self, TRUE);
  tocsin_owner_get_channel_async (tocsin_application_get_owner (app), self->channel,
                                  self->cancellable, loaded_cb, g_object_ref (self));
  return GTK_WIDGET (self);
}
