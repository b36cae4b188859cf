/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-json"

#include "config.h"

#include <math.h>
#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-json.h"

G_DEFINE_QUARK (tocsin-json-error-quark, tocsin_json_error)

void
tocsin_json_append_double (GString *out,
                           double   value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!isfinite (value))
    {
      g_string_append (out, "null");
      return;
    }
  if (value == 0.0 && signbit (value))
    {
      /* "-0" would read back as the integer 0. */
      g_string_append (out, "-0.0");
      return;
    }
  /* %g never writes a bare "inf" here, and its exponents ("1e-100", "1e+308") are valid JSON. */
  for (int precision = 1; precision <= 17; precision++)
    {
      char format[8];

      g_snprintf (format, sizeof format, "%%.%dg", precision);
      g_ascii_formatd (buf, sizeof buf, format, value);
      if (g_ascii_strtod (buf, NULL) == value)
        break;
    }
  g_string_append (out, buf);
}

void
tocsin_json_append_string (GString    *out,
                           const char *s)
{
  const guchar *p = (const guchar *) s;

  /* Runs of bytes that need no escape go in at once; the rest as tocsin_json_append_string_capped()
   * writes them (the same bytes, without its per-byte limit check). */
  g_string_append_c (out, '"');
  while (*p)
    {
      const guchar *run = p;

      while (*p >= 0x20 && *p != '"' && *p != '\\' && *p != 0x7f)
        p++;
      if (p > run)
        g_string_append_len (out, (const char *) run, p - run);
      if (*p == '\0')
        break;
      switch (*p)
        {
        case '"': g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\b': g_string_append (out, "\\b"); break;
        case '\f': g_string_append (out, "\\f"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        default: g_string_append_printf (out, "\\u%04x", *p);
        }
      p++;
    }
  g_string_append_c (out, '"');
}

void
tocsin_json_append_string_capped (GString    *out,
                                  const char *s,
                                  gsize       limit)
{
  g_string_append_c (out, '"');
  for (const guchar *p = (const guchar *) s; *p && out->len < limit; p++)
    {
      switch (*p)
        {
        case '"': g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\b': g_string_append (out, "\\b"); break;
        case '\f': g_string_append (out, "\\f"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        default:
          if (*p < 0x20 || *p == 0x7f)
            g_string_append_printf (out, "\\u%04x", *p);
          else
            g_string_append_c (out, (char) *p);
        }
    }
  g_string_append_c (out, '"');
}

void
tocsin_json_append_int (GString *out,
                        gint64   value)
{
  char buf[24], *p = buf + sizeof buf;
  guint64 v = value < 0 ? -(guint64) value : (guint64) value;

  do
    *--p = (char) ('0' + v % 10);
  while ((v /= 10) > 0);
  if (value < 0)
    *--p = '-';
  g_string_append_len (out, p, buf + sizeof buf - p);
}

static void
newline (GString  *out,
         gboolean  pretty,
         guint     depth)
{
  if (!pretty)
    return;
  g_string_append_c (out, '\n');
  for (guint i = 0; i < depth; i++)
    g_string_append (out, "  ");
}

/* Depth is bounded by what json-glib's parser accepted; the relay caps nesting before that. */
static void
append_node (GString  *out,
             JsonNode *node,
             gboolean  pretty,
             guint     depth)
{
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      g_string_append (out, "null");
      return;
    }

  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObject *object = json_node_get_object (node);
        JsonObjectIter iter;
        const char *name;
        JsonNode *member;
        gboolean first = TRUE;

        g_string_append_c (out, '{');
        json_object_iter_init_ordered (&iter, object);
        while (json_object_iter_next_ordered (&iter, &name, &member))
          {
            if (!first)
              g_string_append_c (out, ',');
            first = FALSE;
            newline (out, pretty, depth + 1);
            tocsin_json_append_string (out, name);
            g_string_append (out, pretty ? ": " : ":");
            append_node (out, member, pretty, depth + 1);
          }
        if (!first)
          newline (out, pretty, depth);
        g_string_append_c (out, '}');
        break;
      }

    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        guint n = json_array_get_length (array);

        g_string_append_c (out, '[');
        for (guint i = 0; i < n; i++)
          {
            if (i > 0)
              g_string_append_c (out, ',');
            newline (out, pretty, depth + 1);
            append_node (out, json_array_get_element (array, i), pretty, depth + 1);
          }
        if (n > 0)
          newline (out, pretty, depth);
        g_string_append_c (out, ']');
        break;
      }

    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_INT64:
          tocsin_json_append_int (out, json_node_get_int (node));
          break;
        case G_TYPE_DOUBLE:
          tocsin_json_append_double (out, json_node_get_double (node));
          break;
        case G_TYPE_BOOLEAN:
          g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
          break;
        case G_TYPE_STRING:
          tocsin_json_append_string (out, json_node_get_string (node));
          break;
        default:
          g_string_append (out, "null");
        }
      break;

    case JSON_NODE_NULL:
    default:
      g_string_append (out, "null");
    }
}

void
tocsin_json_append_node (GString  *out,
                         JsonNode *node)
{
  append_node (out, node, FALSE, 0);
}

char *
tocsin_json_to_string (JsonNode *node,
                       gboolean  pretty)
{
  GString *out = g_string_new (NULL);

  append_node (out, node, pretty, 0);
  return g_string_free (out, FALSE);
}

gboolean
tocsin_json_is_valid_text (JsonNode *node,
                           guint     max_depth)
{
  if (node == NULL)
    return TRUE;
  if (max_depth == 0)
    return FALSE;

  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObjectIter iter;
        const char *name;
        JsonNode *member;

        json_object_iter_init (&iter, json_node_get_object (node));
        while (json_object_iter_next (&iter, &name, &member))
          if (!g_utf8_validate (name, -1, NULL) || !tocsin_json_is_valid_text (member, max_depth - 1))
            return FALSE;
        return TRUE;
      }

    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        guint n = json_array_get_length (array);

        for (guint i = 0; i < n; i++)
          if (!tocsin_json_is_valid_text (json_array_get_element (array, i), max_depth - 1))
            return FALSE;
        return TRUE;
      }

    case JSON_NODE_VALUE:
      if (json_node_get_value_type (node) == G_TYPE_STRING)
        return g_utf8_validate (json_node_get_string (node), -1, NULL);
      return TRUE;

    case JSON_NODE_NULL:
    default:
      return TRUE;
    }
}

/* ---- reading a peer's object ----------------------------------------------------------- */

gint64
tocsin_json_get_int (JsonObject *object,
                     const char *name,
                     gint64      fallback)
{
  JsonNode *node = object ? json_object_get_member (object, name) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return fallback;
  switch (json_node_get_value_type (node))
    {
    case G_TYPE_INT64:
      return json_node_get_int (node);
    case G_TYPE_DOUBLE:
      {
        double d = json_node_get_double (node);

        /* Only integral values that fit; anything else is not an id. */
        if (d >= -9.0e15 && d <= 9.0e15 && d == (double) (gint64) d)
          return (gint64) d;
        return fallback;
      }
    default:
      return fallback;
    }
}

const char *
tocsin_json_get_string (JsonObject *object,
                        const char *name,
                        const char *fallback)
{
  JsonNode *node = object ? json_object_get_member (object, name) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return fallback;
  return json_node_get_string (node);
}

/* ---- the guarded parser --------------------------------------------------------------- */

/* One pass over the text: depth counted outside strings, raw control characters refused inside
 * them, and the name of the top-level member being read kept for the error sentence. The text
 * need not be valid JSON here; json-glib says what else is wrong afterwards. */
static gboolean
scan_text (const char  *data,
           gsize        length,
           guint        max_depth,
           GError     **error)
{
  gboolean in_string = FALSE;
  gsize string_start = 0;
  const char *member = NULL;   /* the last string read at depth 1, maybe a member name */
  gsize member_len = 0;
  guint depth = 0;

  for (gsize i = 0; i < length; i++)
    {
      guchar c = (guchar) data[i];

      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            {
              in_string = FALSE;
              if (depth == 1)
                {
                  member = data + string_start + 1;
                  member_len = i - string_start - 1;
                }
            }
          else if (c < 0x20)
            {
              g_autofree char *name = NULL;

              if (depth == 1 && member != NULL && member_len <= 256)
                name = g_utf8_make_valid (member, member_len);
              if (name != NULL)
                g_set_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_CONTROL_CHAR,
                             _("The value of “%s” holds a raw control character (byte 0x%02x), "
                               "which JSON does not allow inside a string; escape it, "
                               "as \\n or \\u%04x"),
                             name, c, c);
              else
                g_set_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_CONTROL_CHAR,
                             _("A string holds a raw control character (byte 0x%02x), which "
                               "JSON does not allow; escape it, as \\n or \\u%04x"),
                             c, c);
              return FALSE;
            }
        }
      else if (c == '"')
        {
          in_string = TRUE;
          string_start = i;
        }
      else if (c == '{' || c == '[')
        {
          if (++depth > max_depth)
            {
              g_set_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_TOO_DEEP,
                           g_dngettext (GETTEXT_PACKAGE,
                                        "The JSON is nested more than %u level deep",
                                        "The JSON is nested more than %u levels deep",
                                        max_depth),
                           max_depth);
              return FALSE;
            }
        }
      else if ((c == '}' || c == ']') && depth > 0)
        depth--;
    }
  return TRUE;
}

JsonNode *
tocsin_json_parse (const char  *data,
                   gsize        length,
                   gsize        max_bytes,
                   guint        max_depth,
                   GError     **error)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GError) local_error = NULL;
  JsonNode *root;

  g_return_val_if_fail (data != NULL || length == 0, NULL);
  g_return_val_if_fail (max_depth > 0, NULL);

  if (length > max_bytes || length > G_MAXSSIZE)
    {
      g_autofree char *limit = g_format_size_full (max_bytes, G_FORMAT_SIZE_IEC_UNITS);

      g_set_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_TOO_LARGE,
                   _("The JSON is larger than %s"), limit);
      return NULL;
    }
  if (!g_utf8_validate_len (data, length, NULL))
    {
      g_set_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_INVALID_UTF8,
                   _("The JSON is not valid UTF-8"));
      return NULL;
    }
  if (!scan_text (data, length, max_depth, error))
    return NULL;

  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, data ? data : "", length, &local_error))
    {
      /* json-glib quotes the offending bytes, which need not be UTF-8. */
      g_autofree char *shown = g_utf8_make_valid (local_error->message, -1);

      g_set_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_SYNTAX,
                   _("The text is not valid JSON: %s"), shown);
      return NULL;
    }
  root = json_parser_steal_root (parser);
  if (root == NULL)
    {
      g_set_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_SYNTAX,
                   _("The text is empty; a JSON value was expected"));
      return NULL;
    }
  /* A \ud800 escape decodes to bytes that are not UTF-8. */
  if (!tocsin_json_is_valid_text (root, max_depth + 1))
    {
      json_node_unref (root);
      g_set_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_INVALID_UTF8,
                   _("The JSON holds an escape that is not valid Unicode text"));
      return NULL;
    }
  return root;
}

JsonObject *
tocsin_json_parse_object (const char  *data,
                          gsize        length,
                          gsize        max_bytes,
                          guint        max_depth,
                          GError     **error)
{
  g_autoptr(JsonNode) root = tocsin_json_parse (data, length, max_bytes, max_depth, error);

  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_NOT_OBJECT,
                   _("The JSON must be an object, in braces: {…}"));
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
}
