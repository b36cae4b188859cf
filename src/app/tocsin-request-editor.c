/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-request-editor.c: one forward or action of the channel editor. The definition it builds
 * is compiled with the same tocsin_request_new() the relay uses, so what is refused here is what
 * the relay would refuse, and its errors ("forwards[0].url, column 9: expected '}}'") go under
 * the field they name, underlined where they point, as the channel's template errors are.
 */
#define G_LOG_DOMAIN "tocsin-request-editor"

#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-json.h"
#include "tocsin-request.h"
#include "tocsin-request-editor.h"

typedef enum { F_URL, F_CONDITION, F_HEADERS, F_PARAMS, F_BODY, F_RPC, N_TEXT_FIELDS } TextField;

/* The test names of the text fields, and the definition members they edit. */
static const char *text_field_names[N_TEXT_FIELDS] = {
  "url", "condition", "headers", "params", "body", "rpc-method"
};
static const char *text_field_members[N_TEXT_FIELDS] = {
  "url", "condition", "headers", "params", "body", "rpcMethod"
};

/* The combo rows' items, in order, as the definition names them. */
static const char *kinds[] = { "view", "http" };
static const char *events[] = { "message", "acknowledge" };
static const char *methods[] = { "GET", "POST", "PUT", "DELETE" };
static const char *formats[] = { "json", "raw", "json-rpc", "form" };
static const char *policies[] = { "retry", "none" };

#define PARAMS_EXAMPLE \
  "[{\"name\": \"status\", \"type\": \"text\", \"value\": \"{{status}}\"},\n" \
  " {\"name\": \"sig\", \"type\": \"sha256\", \"value\": \"{{record.id}}\"}]"

enum { SIGNAL_CHANGED, SIGNAL_REMOVE, N_SIGNALS };
static guint signals[N_SIGNALS];

struct _TocsinRequestEditor
{
  GtkBox parent_instance;

  /* template widgets */
  AdwPreferencesGroup *group;
  GtkButton           *remove_button;
  AdwEntryRow         *name_row;
  AdwComboRow         *kind_row;
  AdwComboRow         *event_row;
  AdwComboRow         *method_row;
  AdwComboRow         *format_row;
  AdwComboRow         *policy_row;
  GtkBox              *fields_box;
  GtkLabel            *other_error;

  /* borrowed: built in init, children of fields_box */
  GtkWidget           *boxes[N_TEXT_FIELDS];
  GtkTextView         *views[N_TEXT_FIELDS];
  GtkLabel            *errors[N_TEXT_FIELDS];

  gboolean             is_action;
};

G_DEFINE_FINAL_TYPE (TocsinRequestEditor, tocsin_request_editor, GTK_TYPE_BOX)

static char *
buffer_text (GtkTextView *view)
{
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (view);
  GtkTextIter start, end;

  gtk_text_buffer_get_bounds (buffer, &start, &end);
  return gtk_text_buffer_get_text (buffer, &start, &end, FALSE);
}

static guint
index_of (const char *const *items,
          guint              n_items,
          const char        *value,
          guint              fallback)
{
  for (guint i = 0; value != NULL && i < n_items; i++)
    if (g_ascii_strcasecmp (items[i], value) == 0)
      return i;
  return fallback;
}

static const char *
selected (AdwComboRow        *row,
          const char *const  *items,
          guint               n_items)
{
  guint i = adw_combo_row_get_selected (row);

  return items[i < n_items ? i : 0];
}

#define SELECTED(row, items) selected (row, items, G_N_ELEMENTS (items))

/* Underlines from (@line, @column), both from 1, to the end of that line. */
static void
underline (GtkTextView *view,
           int          line,
           int          column)
{
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (view);
  GtkTextIter start, end;

  if (line < 1 || column < 1 || !gtk_text_buffer_get_iter_at_line_offset (buffer, &start,
                                                                           line - 1, 0))
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

static void
set_error (TocsinRequestEditor *self,
           int                  field,   /* a TextField, or -1 for the other label */
           const char          *message)
{
  GtkLabel *label = field >= 0 ? self->errors[field] : self->other_error;

  if (field >= 0)
    {
      GtkTextBuffer *buffer = gtk_text_view_get_buffer (self->views[field]);
      GtkTextIter start, end;

      gtk_text_buffer_get_bounds (buffer, &start, &end);
      gtk_text_buffer_remove_tag_by_name (buffer, "error", &start, &end);
      gtk_accessible_update_state (GTK_ACCESSIBLE (self->views[field]),
                                   GTK_ACCESSIBLE_STATE_INVALID,
                                   message ? GTK_ACCESSIBLE_INVALID_TRUE
                                           : GTK_ACCESSIBLE_INVALID_FALSE,
                                   -1);
    }
  gtk_label_set_text (label, message ? message : "");
  gtk_widget_set_visible (GTK_WIDGET (label), message != NULL);
}

static int
number_after (const char *text,
              const char *word)
{
  const char *at = text ? strstr (text, word) : NULL;

  return at ? atoi (at + strlen (word)) : 0;
}

/* "Name: value" lines to an object; NULL with the line's number in @error_line when one has no
 * colon or no name. */
static JsonObject *
parse_headers (const char *text,
               int        *error_line)
{
  g_autoptr(JsonObject) headers = json_object_new ();
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *colon = strchr (lines[i], ':');
      g_autofree char *name = NULL;

      {
        g_autofree char *stripped = g_strstrip (g_strdup (lines[i]));

        if (*stripped == '\0')
          continue;
      }
      if (colon == NULL)
        {
          *error_line = (int) i + 1;
          return NULL;
        }
      name = g_strstrip (g_strndup (lines[i], colon - lines[i]));
      if (*name == '\0')
        {
          *error_line = (int) i + 1;
          return NULL;
        }
      /* One space after the colon is the separator, the rest is the value as written. */
      colon++;
      if (*colon == ' ')
        colon++;
      json_object_set_string_member (headers, name, colon);
    }
  return g_steal_pointer (&headers);
}

/* The line (from 1) of header @name in @text, and where its value starts on it (from 0). */
static int
header_line (const char *text,
             const char *name,
             int        *value_offset)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *colon = strchr (lines[i], ':');
      g_autofree char *line_name = colon ? g_strstrip (g_strndup (lines[i], colon - lines[i]))
                                         : NULL;

      if (line_name != NULL && g_ascii_strcasecmp (line_name, name) == 0)
        {
          colon++;
          if (*colon == ' ')
            colon++;
          *value_offset = (int) g_utf8_pointer_to_offset (lines[i], colon);
          return (int) i + 1;
        }
    }
  return 0;
}

/* Shows @error (from tocsin_request_new() under @field) where it belongs. */
static void
show_request_error (TocsinRequestEditor *self,
                    const char          *field,
                    const char          *message)
{
  const char *rest = message;
  g_autofree char *member = NULL;
  int target = -1;

  if (g_str_has_prefix (rest, field))
    rest += strlen (field);
  if (*rest == '.')
    {
      gsize n = strspn (rest + 1, "abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");

      member = g_strndup (rest + 1, n);
      rest += 1 + n;
    }
  for (guint i = 0; member != NULL && i < N_TEXT_FIELDS; i++)
    if (g_str_equal (member, text_field_members[i]))
      target = (int) i;

  set_error (self, target, message);
  if (target == F_HEADERS && *rest == '.')
    {
      /* "forwards[0].headers.Authorization, column 9": the column is in that header's value. */
      g_autofree char *text = buffer_text (self->views[F_HEADERS]);
      g_autofree char *name = g_strndup (rest + 1, strcspn (rest + 1, ",:"));
      int offset = 0;
      int line = header_line (text, name, &offset);
      int column = number_after (rest, "column ");

      if (line > 0)
        underline (self->views[F_HEADERS], line, column > 0 ? offset + column : offset + 1);
    }
  else if (target >= 0 && target != F_PARAMS)
    {
      int line = number_after (rest, "line ");

      underline (self->views[target], line > 0 ? line : 1, number_after (rest, "column "));
    }
}

void
tocsin_request_editor_show_error (TocsinRequestEditor *self,
                                  const char          *field,
                                  const char          *message)
{
  g_return_if_fail (TOCSIN_IS_REQUEST_EDITOR (self));
  g_return_if_fail (field != NULL && message != NULL);

  show_request_error (self, field, message);
}

JsonObject *
tocsin_request_editor_validate (TocsinRequestEditor *self,
                                const char          *field)
{
  g_autoptr(JsonObject) definition = json_object_new ();
  g_autofree char *texts[N_TEXT_FIELDS] = { NULL, };
  g_autofree char *name = NULL;
  g_autoptr(JsonObject) headers = NULL;
  g_autoptr(JsonNode) params = NULL;
  g_autoptr(TocsinRequest) request = NULL;
  g_autoptr(GError) error = NULL;
  const char *format = SELECTED (self->format_row, formats);
  gboolean view = self->is_action && adw_combo_row_get_selected (self->kind_row) == 0;
  gboolean ok = TRUE;
  int line = 0;

  g_return_val_if_fail (TOCSIN_IS_REQUEST_EDITOR (self), NULL);
  g_return_val_if_fail (field != NULL, NULL);

  for (guint i = 0; i < N_TEXT_FIELDS; i++)
    {
      texts[i] = buffer_text (self->views[i]);
      set_error (self, (int) i, NULL);
    }
  set_error (self, -1, NULL);

  name = g_strstrip (g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->name_row))));
  json_object_set_string_member (definition, "name", name);
  if (self->is_action)
    json_object_set_string_member (definition, "kind", SELECTED (self->kind_row, kinds));
  else
    json_object_set_string_member (definition, "event", SELECTED (self->event_row, events));
  json_object_set_string_member (definition, "url", g_strstrip (texts[F_URL]));
  if (*g_strstrip (texts[F_CONDITION]) != '\0')
    json_object_set_string_member (definition, "condition", texts[F_CONDITION]);

  if (!view)
    {
      json_object_set_string_member (definition, "method", SELECTED (self->method_row, methods));
      json_object_set_string_member (definition, "format", format);
      json_object_set_string_member (definition, "policy", SELECTED (self->policy_row, policies));

      headers = parse_headers (texts[F_HEADERS], &line);
      if (headers == NULL)
        {
          g_autofree char *text = g_strdup_printf (_("headers, line %d: write one header a line, "
                                                     "as Name: value"), line);

          set_error (self, F_HEADERS, text);
          underline (self->views[F_HEADERS], line, 1);
          ok = FALSE;
        }
      else if (json_object_get_size (headers) > 0)
        json_object_set_object_member (definition, "headers", json_object_ref (headers));

      if (!g_str_equal (format, "raw") && *g_strstrip (texts[F_PARAMS]) != '\0')
        {
          /* Typed (or pasted) text: the guarded parser, as for the sample. */
          g_autoptr(GError) json_error = NULL;

          params = tocsin_json_parse (texts[F_PARAMS], strlen (texts[F_PARAMS]),
                                      TOCSIN_REQUEST_MAX_SOURCE, TOCSIN_JSON_DEFAULT_MAX_DEPTH,
                                      &json_error);
          if (params == NULL || !JSON_NODE_HOLDS_ARRAY (params))
            {
              g_autofree char *text = NULL;

              if (params == NULL)
                text = g_strdup_printf (_("The parameters are not valid JSON: %s"),
                                        json_error->message);
              else
                text = g_strdup (_("The parameters must be a JSON array, as in the example."));
              set_error (self, F_PARAMS, text);
              ok = FALSE;
            }
          else
            json_object_set_member (definition, "params", json_node_ref (params));
        }
      if (g_str_equal (format, "raw"))
        json_object_set_string_member (definition, "body", texts[F_BODY]);
      if (g_str_equal (format, "json-rpc"))
        json_object_set_string_member (definition, "rpcMethod", g_strstrip (texts[F_RPC]));
    }
  if (!ok)
    return NULL;

  request = tocsin_request_new (field, definition, &error);
  if (request == NULL)
    {
      show_request_error (self, field, error->message);
      return NULL;
    }
  return g_steal_pointer (&definition);
}

static void
set_buffer (GtkTextView *view,
            const char  *text)
{
  gtk_text_buffer_set_text (gtk_text_view_get_buffer (view), text ? text : "", -1);
}

void
tocsin_request_editor_load (TocsinRequestEditor *self,
                            JsonObject          *definition)
{
  JsonNode *node;
  g_autoptr(GString) headers = g_string_new (NULL);

  g_return_if_fail (TOCSIN_IS_REQUEST_EDITOR (self));
  g_return_if_fail (definition != NULL);

  gtk_editable_set_text (GTK_EDITABLE (self->name_row),
                         tocsin_json_get_string (definition, "name", ""));
  adw_combo_row_set_selected (self->kind_row,
                              index_of (kinds, G_N_ELEMENTS (kinds),
                                        tocsin_json_get_string (definition, "kind", NULL), 1));
  adw_combo_row_set_selected (self->event_row,
                              index_of (events, G_N_ELEMENTS (events),
                                        tocsin_json_get_string (definition, "event", NULL), 0));
  adw_combo_row_set_selected (self->method_row,
                              index_of (methods, G_N_ELEMENTS (methods),
                                        tocsin_json_get_string (definition, "method", NULL), 1));
  adw_combo_row_set_selected (self->format_row,
                              index_of (formats, G_N_ELEMENTS (formats),
                                        tocsin_json_get_string (definition, "format", NULL), 0));
  adw_combo_row_set_selected (self->policy_row,
                              index_of (policies, G_N_ELEMENTS (policies),
                                        tocsin_json_get_string (definition, "policy", NULL), 0));
  set_buffer (self->views[F_URL], tocsin_json_get_string (definition, "url", ""));
  set_buffer (self->views[F_CONDITION], tocsin_json_get_string (definition, "condition", ""));
  set_buffer (self->views[F_BODY], tocsin_json_get_string (definition, "body", ""));
  set_buffer (self->views[F_RPC], tocsin_json_get_string (definition, "rpcMethod", ""));

  node = json_object_get_member (definition, "headers");
  if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObject *object = json_node_get_object (node);
      g_autoptr(GList) names = json_object_get_members (object);

      for (GList *l = names; l != NULL; l = l->next)
        {
          const char *value = tocsin_json_get_string (object, l->data, NULL);

          if (value != NULL)
            g_string_append_printf (headers, "%s%s: %s", headers->len ? "\n" : "",
                                    (const char *) l->data, value);
        }
    }
  set_buffer (self->views[F_HEADERS], headers->str);

  node = json_object_get_member (definition, "params");
  if (node != NULL && JSON_NODE_HOLDS_ARRAY (node) &&
      json_array_get_length (json_node_get_array (node)) > 0)
    {
      g_autoptr(JsonGenerator) generator = json_generator_new ();
      g_autofree char *text = NULL;

      json_generator_set_root (generator, node);
      json_generator_set_pretty (generator, TRUE);
      json_generator_set_indent (generator, 2);
      text = json_generator_to_data (generator, NULL);
      set_buffer (self->views[F_PARAMS], text);
    }
  else
    set_buffer (self->views[F_PARAMS], "");
}

gboolean
tocsin_request_editor_is_action (TocsinRequestEditor *self)
{
  g_return_val_if_fail (TOCSIN_IS_REQUEST_EDITOR (self), FALSE);
  return self->is_action;
}

/* Shows the fields that the kind and format use. */
static void
update_visibility (TocsinRequestEditor *self)
{
  gboolean view = self->is_action && adw_combo_row_get_selected (self->kind_row) == 0;
  const char *format = SELECTED (self->format_row, formats);
  const char *name = gtk_editable_get_text (GTK_EDITABLE (self->name_row));

  gtk_widget_set_visible (GTK_WIDGET (self->kind_row), self->is_action);
  gtk_widget_set_visible (GTK_WIDGET (self->event_row), !self->is_action);
  gtk_widget_set_visible (GTK_WIDGET (self->method_row), !view);
  gtk_widget_set_visible (GTK_WIDGET (self->format_row), !view);
  gtk_widget_set_visible (GTK_WIDGET (self->policy_row), !view);
  gtk_widget_set_visible (self->boxes[F_HEADERS], !view);
  gtk_widget_set_visible (self->boxes[F_PARAMS], !view && !g_str_equal (format, "raw"));
  gtk_widget_set_visible (self->boxes[F_BODY], !view && g_str_equal (format, "raw"));
  gtk_widget_set_visible (self->boxes[F_RPC], !view && g_str_equal (format, "json-rpc"));

  if (*name != '\0')
    adw_preferences_group_set_title (self->group, name);
  else
    adw_preferences_group_set_title (self->group,
                                     self->is_action ? _("New Action") : _("New Forward"));
}

static void
changed_cb (TocsinRequestEditor *self)
{
  update_visibility (self);
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
}

static void
remove_clicked_cb (TocsinRequestEditor *self)
{
  g_signal_emit (self, signals[SIGNAL_REMOVE], 0);
}

static int
text_field_index (const char *field)
{
  for (guint i = 0; i < N_TEXT_FIELDS; i++)
    if (g_strcmp0 (field, text_field_names[i]) == 0)
      return (int) i;
  return -1;
}

void
tocsin_request_editor_set_field (TocsinRequestEditor *self,
                                 const char          *field,
                                 const char          *text)
{
  int i = text_field_index (field);

  g_return_if_fail (TOCSIN_IS_REQUEST_EDITOR (self));

  if (i >= 0)
    set_buffer (self->views[i], text);
  else if (g_strcmp0 (field, "name") == 0)
    gtk_editable_set_text (GTK_EDITABLE (self->name_row), text);
  else if (g_strcmp0 (field, "kind") == 0)
    adw_combo_row_set_selected (self->kind_row, index_of (kinds, G_N_ELEMENTS (kinds), text, 1));
  else if (g_strcmp0 (field, "event") == 0)
    adw_combo_row_set_selected (self->event_row,
                                index_of (events, G_N_ELEMENTS (events), text, 0));
  else if (g_strcmp0 (field, "method") == 0)
    adw_combo_row_set_selected (self->method_row,
                                index_of (methods, G_N_ELEMENTS (methods), text, 1));
  else if (g_strcmp0 (field, "format") == 0)
    adw_combo_row_set_selected (self->format_row,
                                index_of (formats, G_N_ELEMENTS (formats), text, 0));
  else if (g_strcmp0 (field, "policy") == 0)
    adw_combo_row_set_selected (self->policy_row,
                                index_of (policies, G_N_ELEMENTS (policies), text, 0));
  else
    g_return_if_reached ();
}

const char *
tocsin_request_editor_get_error (TocsinRequestEditor *self,
                                 const char          *field)
{
  int i = text_field_index (field);
  GtkLabel *label;

  g_return_val_if_fail (TOCSIN_IS_REQUEST_EDITOR (self), NULL);
  g_return_val_if_fail (i >= 0 || g_strcmp0 (field, "other") == 0, NULL);

  label = i >= 0 ? self->errors[i] : self->other_error;
  return gtk_widget_get_visible (GTK_WIDGET (label)) ? gtk_label_get_text (label) : NULL;
}

/* A labelled text view with its error label (and an example under it when @hint is set). */
static void
add_text_field (TocsinRequestEditor *self,
                TextField            field,
                const char          *title,
                const char          *accessible_name,
                const char          *hint)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  GtkWidget *label = gtk_label_new_with_mnemonic (title);
  GtkWidget *frame = gtk_frame_new (NULL);
  GtkWidget *view = gtk_text_view_new ();
  GtkWidget *error = gtk_label_new (NULL);
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (GTK_TEXT_VIEW (view));

  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), view);
  gtk_widget_add_css_class (label, "heading");
  gtk_text_view_set_monospace (GTK_TEXT_VIEW (view), TRUE);
  gtk_text_view_set_wrap_mode (GTK_TEXT_VIEW (view), GTK_WRAP_WORD_CHAR);
  gtk_text_view_set_accepts_tab (GTK_TEXT_VIEW (view), FALSE);
  gtk_text_view_set_top_margin (GTK_TEXT_VIEW (view), 6);
  gtk_text_view_set_bottom_margin (GTK_TEXT_VIEW (view), 6);
  gtk_text_view_set_left_margin (GTK_TEXT_VIEW (view), 6);
  gtk_text_view_set_right_margin (GTK_TEXT_VIEW (view), 6);
  gtk_text_buffer_create_tag (buffer, "error",
                              "underline", PANGO_UNDERLINE_ERROR,
                              "background", "rgba(224, 27, 36, 0.2)",
                              NULL);
  g_signal_connect_object (buffer, "changed", G_CALLBACK (changed_cb), self, G_CONNECT_SWAPPED);
  gtk_frame_set_child (GTK_FRAME (frame), view);
  gtk_label_set_xalign (GTK_LABEL (error), 0);
  gtk_label_set_wrap (GTK_LABEL (error), TRUE);
  gtk_label_set_wrap_mode (GTK_LABEL (error), PANGO_WRAP_WORD_CHAR);
  gtk_widget_add_css_class (error, "template-error");
  gtk_widget_set_visible (error, FALSE);

  /* GTK 4.8 reads a name and the mnemonic label one after the other: the name says it all. */
  gtk_accessible_update_property (GTK_ACCESSIBLE (view), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  accessible_name, -1);
  gtk_accessible_reset_relation (GTK_ACCESSIBLE (view), GTK_ACCESSIBLE_RELATION_LABELLED_BY);
  gtk_accessible_update_relation (GTK_ACCESSIBLE (view), GTK_ACCESSIBLE_RELATION_ERROR_MESSAGE,
                                  error, -1);

  gtk_box_append (GTK_BOX (box), label);
  gtk_box_append (GTK_BOX (box), frame);
  /* The error right under the text it is about, the example after it. */
  gtk_box_append (GTK_BOX (box), error);
  if (hint != NULL)
    {
      GtkWidget *example = gtk_label_new (hint);

      gtk_label_set_xalign (GTK_LABEL (example), 0);
      gtk_label_set_wrap (GTK_LABEL (example), TRUE);
      gtk_label_set_wrap_mode (GTK_LABEL (example), PANGO_WRAP_WORD_CHAR);
      gtk_label_set_selectable (GTK_LABEL (example), TRUE);
      gtk_widget_add_css_class (example, "dim-label");
      gtk_widget_add_css_class (example, "caption");
      gtk_accessible_update_property (GTK_ACCESSIBLE (view), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
                                      hint, -1);
      gtk_box_append (GTK_BOX (box), example);
    }
  gtk_box_append (self->fields_box, box);

  self->boxes[field] = box;
  self->views[field] = GTK_TEXT_VIEW (view);
  self->errors[field] = GTK_LABEL (error);
}

static void
tocsin_request_editor_class_init (TocsinRequestEditorClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                          G_TYPE_NONE, 0);
  signals[SIGNAL_REMOVE] = g_signal_new ("remove", G_TYPE_FROM_CLASS (klass),
                                         G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                         G_TYPE_NONE, 0);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/tocsin/Tocsin/tocsin-request-editor.ui");
  gtk_widget_class_bind_template_child (widget_class, TocsinRequestEditor, group);
  gtk_widget_class_bind_template_child (widget_class, TocsinRequestEditor, remove_button);
  gtk_widget_class_bind_template_child (widget_class, TocsinRequestEditor, name_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinRequestEditor, kind_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinRequestEditor, event_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinRequestEditor, method_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinRequestEditor, format_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinRequestEditor, policy_row);
  gtk_widget_class_bind_template_child (widget_class, TocsinRequestEditor, fields_box);
  gtk_widget_class_bind_template_child (widget_class, TocsinRequestEditor, other_error);
}

static void
tocsin_request_editor_init (TocsinRequestEditor *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  add_text_field (self, F_URL, _("_URL"), _("Request URL template"),
                  _("A template, for example https://example.com/hook?server={{server_name}}"));
  add_text_field (self, F_CONDITION, _("C_ondition (optional)"), _("Request condition"),
                  _("An expression: sent only when it is true, for example status == 'firing'"));
  add_text_field (self, F_HEADERS, _("_Headers"), _("Request headers"),
                  _("One a line, as Name: value, for example Authorization: Bearer {{token}}"));
  /* Translators: %s is an example of JSON, not to be translated */
  {
    g_autofree char *hint = g_strdup_printf (_("A JSON array of typed parameters (text, array, "
                                               "object, md5, crc32, sha1, sha256), for "
                                               "example:\n%s"), PARAMS_EXAMPLE);

    add_text_field (self, F_PARAMS, _("_Parameters"), _("Request parameters"), hint);
  }
  add_text_field (self, F_BODY, _("_Body"), _("Request body template"),
                  _("Sent as written, with its templates filled in"));
  add_text_field (self, F_RPC, _("_RPC Method"), _("JSON-RPC method"), NULL);

  adw_combo_row_set_selected (self->kind_row, 1);
  adw_combo_row_set_selected (self->method_row, 1);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->remove_button),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Remove this request"), -1);

  g_signal_connect_object (self->name_row, "changed", G_CALLBACK (changed_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->kind_row, "notify::selected", G_CALLBACK (changed_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->event_row, "notify::selected", G_CALLBACK (changed_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->method_row, "notify::selected", G_CALLBACK (changed_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->format_row, "notify::selected", G_CALLBACK (changed_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->policy_row, "notify::selected", G_CALLBACK (changed_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->remove_button, "clicked", G_CALLBACK (remove_clicked_cb), self,
                           G_CONNECT_SWAPPED);
}

GtkWidget *
tocsin_request_editor_new (gboolean is_action)
{
  TocsinRequestEditor *self = g_object_new (TOCSIN_TYPE_REQUEST_EDITOR, NULL);

  self->is_action = is_action;
  if (is_action)
    adw_combo_row_set_selected (self->policy_row, 1);
  update_visibility (self);
  return GTK_WIDGET (self);
}
