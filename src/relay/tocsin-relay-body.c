/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-body.c: what a webhook sender sent, turned into template variables.
 *
 * The query string and the body (JSON object, form or text/plain) become one JSON object of
 * variables. Everything here is pure: no server, no store, so the ingest handler and the fuzzer
 * call the very same functions.
 */
#define G_LOG_DOMAIN "tocsin-relay-ingest"

#include "config.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-relay-body.h"

/* json-glib parses recursively: bound the nesting before handing it a body. */
#define MAX_JSON_DEPTH 64

/* Refuses nesting deeper than MAX_JSON_DEPTH, counting brackets outside strings. */
static gboolean
json_depth_ok (const char *data,
               gsize       length)
{
  gboolean in_string = FALSE;
  guint depth = 0;

  for (gsize i = 0; i < length; i++)
    {
      char c = data[i];

      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
        }
      else if (c == '"')
        in_string = TRUE;
      else if (c == '{' || c == '[')
        {
          if (++depth > MAX_JSON_DEPTH)
            return FALSE;
        }
      else if ((c == '}' || c == ']') && depth > 0)
        depth--;
    }
  return TRUE;
}

/* json-glib 1.6 reads an integer with strtoull() and stores it in a gint64: one above
 * G_MAXINT64 silently wraps to a negative number, and one past G_MAXUINT64 becomes -1. A float
 * past DBL_MAX becomes inf, which json-glib then writes out as `inf`: not JSON, so every
 * subscriber would fail to decode the message. Neither can be seen in the parsed tree, so the
 * number literals are checked in the text itself. Returns FALSE and names the top-level variable
 * that holds the first such number in *variable (NULL when it is not in one). Call only on text
 * that parsed as JSON. */
static gboolean
json_numbers_ok (const char  *data,
                 gsize        length,
                 char       **variable)
{
  const char *last_string = NULL, *key = NULL;
  gsize last_string_len = 0, key_len = 0;
  guint depth = 0;

  *variable = NULL;
  for (gsize i = 0; i < length; i++)
    {
      char c = data[i];

      if (c == '"')
        {
          gsize start = ++i;

          while (i < length && data[i] != '"')
            i += data[i] == '\\' ? 2 : 1;
          if (depth == 1)
            {
              last_string = data + start;
              last_string_len = MIN (i, length) - start;
            }
        }
      else if (c == '{' || c == '[')
        depth++;
      else if (c == '}' || c == ']')
        depth -= depth > 0;
      else if (c == ':' && depth == 1)
        {
          key = last_string;
          key_len = last_string_len;
        }
      else if (c == '-' || g_ascii_isdigit (c))
        {
          gsize start = i;
          gboolean integer = TRUE;
          g_autofree char *literal = NULL;
          gboolean ok;

          while (i < length && (g_ascii_isdigit (data[i]) || strchr ("+-.eE", data[i])))
            {
              if (strchr (".eE", data[i]))
                integer = FALSE;
              i++;
            }
          literal = g_strndup (data + start, i - start);
          i--;
          errno = 0;
          if (integer)
            {
              g_ascii_strtoll (literal, NULL, 10);
              ok = errno != ERANGE;
            }
          else
            ok = isfinite (g_ascii_strtod (literal, NULL));
          if (!ok)
            {
              if (key != NULL)
                {
                  g_autofree char *name = g_strndup (key, key_len);

                  /* Keep the error short whatever the sender named it. */
                  *variable = g_utf8_strlen (name, -1) > 64 ? g_utf8_substring (name, 0, 64)
                                                            : g_steal_pointer (&name);
                }
              return FALSE;
            }
        }
    }
  return TRUE;
}

/* json-glib turns a \u escape that names no character (a lone surrogate, \ud800) into bytes that
 * are not UTF-8; stored, they would break every subscriber (and libsoup refuses to send them in a
 * text frame). TRUE when every member name and string under @node is valid UTF-8. The nesting is
 * already bounded (MAX_JSON_DEPTH). */
static gboolean
json_strings_valid (JsonNode *node)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObjectIter iter;
        const char *name;
        JsonNode *member;

        json_object_iter_init (&iter, json_node_get_object (node));
        while (json_object_iter_next (&iter, &name, &member))
          if (!g_utf8_validate (name, -1, NULL) || !json_strings_valid (member))
            return FALSE;
        return TRUE;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);

        for (guint i = 0; i < json_array_get_length (array); i++)
          if (!json_strings_valid (json_array_get_element (array, i)))
            return FALSE;
        return TRUE;
      }
    case JSON_NODE_VALUE:
      return json_node_get_value_type (node) != G_TYPE_STRING ||
             g_utf8_validate (json_node_get_string (node), -1, NULL);
    case JSON_NODE_NULL:
    default:
      return TRUE;
    }
}

gboolean
tocsin_relay_body_add_form_pairs (JsonObject  *vars,
                                  const char  *data,
                                  gssize       length,
                                  const char  *where,
                                  GError     **error)
{
  g_autoptr(GHashTable) params = NULL;
  g_autoptr(GList) keys = NULL;
  g_autoptr(GError) local_error = NULL;

  params = g_uri_parse_params (data, length, "&", G_URI_PARAMS_WWW_FORM, &local_error);
  if (params == NULL)
    {
      /* The parser's message may quote the sender's bytes: keep the answer valid UTF-8. */
      g_autofree char *shown = g_utf8_make_valid (local_error->message, -1);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("The %s is not valid form encoding: %s"), where, shown);
      return FALSE;
    }

  /* Sorted, so that the same request always gives the same variables (and dedup hash). */
  keys = g_list_sort (g_hash_table_get_keys (params), (GCompareFunc) strcmp);
  for (GList *l = keys; l; l = l->next)
    {
      const char *value = g_hash_table_lookup (params, l->data);

      if (!g_utf8_validate (l->data, -1, NULL) || !g_utf8_validate (value, -1, NULL))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("The %s is not valid UTF-8"), where);
          return FALSE;
        }
      json_object_set_string_member (vars, l->data, value);
    }
  return TRUE;
}

static gboolean
is_json_type (const char *type)
{
  return g_ascii_strcasecmp (type, "application/json") == 0 ||
         (g_str_has_prefix (type, "application/") && g_str_has_suffix (type, "+json"));
}

gboolean
tocsin_relay_body_read (SoupMessageHeaders  *headers,
                        GBytes              *bytes,
                        JsonObject          *vars,
                        char               **body_text,
                        guint               *status,
                        GError             **error)
{
  g_autoptr(GHashTable) params = NULL;
  const char *type, *charset;
  gsize length;
  const char *data = g_bytes_get_data (bytes, &length);

  type = soup_message_headers_get_content_type (headers, &params);
  if (type == NULL)
    {
      *status = SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE;
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   _("The request has a body but no Content-Type; send application/json, "
                     "application/x-www-form-urlencoded or text/plain"));
      return FALSE;
    }
  charset = params ? g_hash_table_lookup (params, "charset") : NULL;
  if (!(is_json_type (type) ||
        g_ascii_strcasecmp (type, "application/x-www-form-urlencoded") == 0 ||
        g_ascii_strcasecmp (type, "text/plain") == 0) ||
      (charset != NULL && g_ascii_strcasecmp (charset, "utf-8") != 0 &&
       g_ascii_strcasecmp (charset, "utf8") != 0))
    {
      *status = SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE;
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   _("The relay reads application/json, application/x-www-form-urlencoded and "
                     "text/plain bodies in UTF-8; send one of those"));
      return FALSE;
    }

  *status = SOUP_STATUS_BAD_REQUEST;
  if (!g_utf8_validate_len (data, length, NULL))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("The body is not valid UTF-8"));
      return FALSE;
    }

  if (is_json_type (type))
    {
      g_autoptr(JsonParser) parser = json_parser_new_immutable ();
      g_autoptr(GError) local_error = NULL;
      JsonNode *root;
      JsonObject *object;
      g_autoptr(GList) members = NULL;

      if (!json_depth_ok (data, length))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("The JSON body is nested more than %d levels deep"), MAX_JSON_DEPTH);
          return FALSE;
        }
      if (!json_parser_load_from_data (parser, data, length, &local_error))
        {
          /* json-glib's message quotes the offending bytes, which need not be UTF-8. */
          g_autofree char *shown = g_utf8_make_valid (local_error->message, -1);

          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("The body is not valid JSON: %s"), shown);
          return FALSE;
        }
      {
        g_autofree char *variable = NULL;

        if (!json_numbers_ok (data, length, &variable))
          {
            if (variable != NULL)
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           _("The number in “%s” is too large for the relay to keep exactly; "
                             "send it as a string (in quotes) instead"), variable);
            else
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           _("The body has a number too large for the relay to keep exactly; "
                             "send it as a string (in quotes) instead"));
            return FALSE;
          }
      }
      root = json_parser_get_root (parser);
      if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("The JSON body must be an object, like {\"server_name\": \"Production\"}"));
          return FALSE;
        }
      object = json_node_get_object (root);
      if (!json_strings_valid (root))
        {
          JsonObjectIter iter;
          const char *name;
          JsonNode *member;
          g_autofree char *variable = NULL;

          /* Name the variable when its own name is text. */
          json_object_iter_init (&iter, object);
          while (variable == NULL && json_object_iter_next (&iter, &name, &member))
            if (g_utf8_validate (name, -1, NULL) && !json_strings_valid (member))
              variable = g_utf8_strlen (name, -1) > 64 ? g_utf8_substring (name, 0, 64)
                                                       : g_strdup (name);
          if (variable != NULL)
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                         _("The string in “%s” has a \\u escape that is not a character (such as "
                           "a lone surrogate, \\ud800); send valid UTF-8 text"), variable);
          else
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                         _("The body has a \\u escape that is not a character (such as a lone "
                           "surrogate, \\ud800); send valid UTF-8 text"));
          return FALSE;
        }
      members = json_object_get_members (object);
      for (GList *l = members; l; l = l->next)
        json_object_set_member (vars, l->data,
                                json_node_copy (json_object_get_member (object, l->data)));
      return TRUE;
    }

  if (g_ascii_strcasecmp (type, "text/plain") == 0)
    {
      *body_text = g_strndup (data, length);
      if (strlen (*body_text) != length)
        {
          g_clear_pointer (body_text, g_free);
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("The text body contains a NUL byte"));
          return FALSE;
        }
      json_object_set_string_member (vars, "bodyAsText", *body_text);
      return TRUE;
    }

  return tocsin_relay_body_add_form_pairs (vars, data, length, _("body"), error);
}
