/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-body.c: what a peer sends in a request, decoded.
 *
 * A webhook's query string and body (JSON object, form or text/plain, maybe gzip or deflate)
 * become one JSON object of variables; an owner API body becomes a channel spec. Everything
 * here is pure: no server, no store, so the handlers and the fuzzers call the very same
 * functions. JSON goes through the guarded parser (tocsin_json_parse), which checks size, UTF-8,
 * depth and raw control characters before json-glib recurses; what it cannot see in a parsed
 * tree (numbers json-glib silently changes) is checked here in the text.
 *
 * Every refusal sets the status (400, 413, 415) and a sentence the sender can act on. The
 * sender's bytes are never logged.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-json.h"
#include "tocsin-relay-body.h"

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

/* Appends @data[0..length) to @out, percent-decoded as the WHATWG form parser does: `+` is a
 * space, %XX with two hex digits is that byte, and any other `%` stays as it is. */
static void
append_decoded (GString    *out,
                const char *data,
                gsize       length)
{
  for (gsize i = 0; i < length; i++)
    {
      if (data[i] == '+')
        g_string_append_c (out, ' ');
      else if (data[i] == '%' && i + 2 < length &&
               g_ascii_isxdigit (data[i + 1]) && g_ascii_isxdigit (data[i + 2]))
        {
          g_string_append_c (out, (char) (g_ascii_xdigit_value (data[i + 1]) << 4 |
                                          g_ascii_xdigit_value (data[i + 2])));
          i += 2;
        }
      else
        g_string_append_c (out, data[i]);
    }
}

/* Keeps a sender's variable name short and printable in an error sentence. */
static char *
shown_name (const char *name,
            gsize       length)
{
  g_autofree char *valid = g_utf8_make_valid (name, length);

  return g_utf8_strlen (valid, -1) > 64 ? g_utf8_substring (valid, 0, 64)
                                        : g_steal_pointer (&valid);
}

gboolean
tocsin_relay_body_add_form_pairs (JsonObject  *vars,
                                  const char  *data,
                                  gssize       length,
                                  const char  *where,
                                  GError     **error)
{
  g_autoptr(GHashTable) params = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GList) keys = NULL;
  const char *end;

  g_return_val_if_fail (vars != NULL, FALSE);
  g_return_val_if_fail (data != NULL || length <= 0, FALSE);

  if (length < 0)
    length = strlen (data);
  end = data + length;

  /* application/x-www-form-urlencoded as browsers parse it (URLSearchParams): empty pairs are
   * skipped, a name without `=` has the empty string as its value. */
  for (const char *pair = data; pair < end;)
    {
      const char *amp = memchr (pair, '&', end - pair);
      const char *pair_end = amp ? amp : end;
      const char *eq = memchr (pair, '=', pair_end - pair);
      g_autoptr(GString) name = g_string_new (NULL);
      g_autoptr(GString) value = g_string_new (NULL);

      if (pair_end > pair)
        {
          append_decoded (name, pair, (eq ? eq : pair_end) - pair);
          if (eq)
            append_decoded (value, eq + 1, pair_end - eq - 1);

          /* Variables are C strings: a NUL would cut them short without a word. */
          if (memchr (name->str, '\0', name->len) || memchr (value->str, '\0', value->len))
            {
              g_autofree char *shown = shown_name (name->str, strlen (name->str));

              g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           _("The variable “%s” in the %s holds a NUL byte (%%00), which the "
                             "relay does not take"), shown, where);
              return FALSE;
            }
          if (!g_utf8_validate_len (name->str, name->len, NULL))
            {
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           _("A variable name in the %s is not valid UTF-8; percent-encode "
                             "text as UTF-8"), where);
              return FALSE;
            }
          if (!g_utf8_validate_len (value->str, value->len, NULL))
            {
              g_autofree char *shown = shown_name (name->str, name->len);

              g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           _("The value of “%s” in the %s is not valid UTF-8; percent-encode "
                             "text as UTF-8"), shown, where);
              return FALSE;
            }
          /* When a name repeats, the last value wins. */
          g_hash_table_insert (params, g_string_free (g_steal_pointer (&name), FALSE),
                               g_string_free (g_steal_pointer (&value), FALSE));
        }
      pair = pair_end + 1;
    }

  /* Sorted, so that the same request always gives the same variables (and dedup hash). */
  keys = g_list_sort (g_hash_table_get_keys (params), (GCompareFunc) strcmp);
  for (GList *l = keys; l; l = l->next)
    json_object_set_string_member (vars, l->data, g_hash_table_lookup (params, l->data));
  return TRUE;
}

static void
set_too_large (gsize    max_body,
               GError **error)
{
  g_autofree char *limit = g_format_size_full (max_body, G_FORMAT_SIZE_IEC_UNITS);

  g_set_error (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
               _("The body is larger than this relay takes (%s, counted after decompression)"),
               limit);
}

/* Inflates @data with @converter into at most @max_body bytes: the buffer grows by doubling
 * but never past max_body + 1, so a zip bomb costs no more memory than an honest body. */
static GBytes *
inflate_bounded (GConverter  *converter,
                 const char  *data,
                 gsize        length,
                 gsize        max_body,
                 guint       *status,
                 GError     **error)
{
  g_autofree char *out = NULL;
  gsize cap, in_done = 0, out_len = 0;

  /* Room for max_body + 1 must not wrap around. */
  max_body = MIN (max_body, G_MAXSIZE / 4);
  cap = MIN (MAX (length * 4, 4096), max_body + 1);
  out = g_malloc (cap);

  for (;;)
    {
      g_autoptr(GError) local_error = NULL;
      GConverterResult result;
      gsize read = 0, written = 0;

      if (out_len == cap)
        {
          if (cap > max_body)
            {
              *status = SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE;
              set_too_large (max_body, error);
              return NULL;
            }
          cap = MIN (cap * 2, max_body + 1);
          out = g_realloc (out, cap);
        }
      result = g_converter_convert (converter, data + in_done, length - in_done,
                                    out + out_len, cap - out_len, G_CONVERTER_INPUT_AT_END,
                                    &read, &written, &local_error);
      if (result == G_CONVERTER_ERROR)
        {
          if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_NO_SPACE))
            {
              /* zlib wants more room than is left: grow, within the bound. */
              if (cap > max_body)
                {
                  *status = SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE;
                  set_too_large (max_body, error);
                  return NULL;
                }
              cap = MIN (cap * 2, max_body + 1);
              out = g_realloc (out, cap);
              continue;
            }
          *status = SOUP_STATUS_BAD_REQUEST;
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("The body could not be decompressed as its Content-Encoding says; "
                         "send it compressed whole, or not at all"));
          return NULL;
        }
      in_done += read;
      out_len += written;
      if (out_len > max_body)
        {
          *status = SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE;
          set_too_large (max_body, error);
          return NULL;
        }
      if (result == G_CONVERTER_FINISHED)
        break;
      if (read == 0 && written == 0 && in_done == length)
        {
          *status = SOUP_STATUS_BAD_REQUEST;
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("The compressed body ends too early; send all of it"));
          return NULL;
        }
    }
  if (in_done < length)
    {
      *status = SOUP_STATUS_BAD_REQUEST;
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("The compressed body has data after its end; send one compressed body"));
      return NULL;
    }
  return g_bytes_new_take (g_steal_pointer (&out), out_len);
}

GBytes *
tocsin_relay_body_decode (SoupMessageHeaders  *headers,
                          GBytes              *bytes,
                          gsize                max_body,
                          guint               *status,
                          GError             **error)
{
  const char *list = soup_message_headers_get_list (headers, "Content-Encoding");
  g_auto(GStrv) codings = NULL;
  const char *coding = NULL;
  g_autoptr(GConverter) converter = NULL;
  gsize length;
  const guchar *data;

  g_return_val_if_fail (headers != NULL, NULL);
  g_return_val_if_fail (bytes != NULL, NULL);

  if (list != NULL)
    codings = g_strsplit (list, ",", -1);
  for (guint i = 0; codings && codings[i]; i++)
    {
      const char *c = g_strstrip (codings[i]);

      if (*c == '\0' || g_ascii_strcasecmp (c, "identity") == 0)
        continue;
      if (coding != NULL ||
          (g_ascii_strcasecmp (c, "gzip") != 0 && g_ascii_strcasecmp (c, "x-gzip") != 0 &&
           g_ascii_strcasecmp (c, "deflate") != 0))
        {
          *status = SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE;
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                       _("The relay decodes one Content-Encoding, gzip or deflate; send the "
                         "body uncompressed or in one of those"));
          return NULL;
        }
      coding = c;
    }
  if (coding == NULL)
    {
      if (g_bytes_get_size (bytes) > max_body)
        {
          *status = SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE;
          set_too_large (max_body, error);
          return NULL;
        }
      return g_bytes_ref (bytes);
    }

  data = g_bytes_get_data (bytes, &length);
  if (g_ascii_strcasecmp (coding, "deflate") == 0)
    {
      /* RFC 9110 says zlib (RFC 1950), but some senders send raw deflate: tell them apart by
       * the zlib header (method 8, and the first two bytes a multiple of 31). */
      gboolean zlib = length >= 2 && (data[0] & 0x0f) == 8 && ((data[0] << 8) | data[1]) % 31 == 0;

      converter = G_CONVERTER (g_zlib_decompressor_new (zlib ? G_ZLIB_COMPRESSOR_FORMAT_ZLIB
                                                             : G_ZLIB_COMPRESSOR_FORMAT_RAW));
    }
  else
    converter = G_CONVERTER (g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP));
  return inflate_bounded (converter, (const char *) data, length, max_body, status, error);
}

static gboolean
is_json_type (const char *type)
{
  return g_ascii_strcasecmp (type, "application/json") == 0 ||
         (g_str_has_prefix (type, "application/") && g_str_has_suffix (type, "+json"));
}

/* json-glib turns a \u escape that names no character (a lone surrogate, \ud800) into bytes that
 * are not UTF-8, which tocsin_json_parse refuses without naming where. For the sentence, this
 * finds the first top-level member of @data whose strings are not all valid UTF-8 (NULL: none).
 * It parses again only text the guarded parser has already scanned: valid UTF-8, nested at most
 * TOCSIN_RELAY_BODY_MAX_DEPTH deep, no raw control characters, within max-body. */
static char *
member_with_invalid_text (const char *data,
                          gsize       length)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  JsonObjectIter iter;
  const char *name;
  JsonNode *member, *root;

  if (!json_parser_load_from_data (parser, data, length, NULL))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  json_object_iter_init (&iter, json_node_get_object (root));
  while (json_object_iter_next (&iter, &name, &member))
    if (g_utf8_validate (name, -1, NULL) &&
        !tocsin_json_is_valid_text (member, TOCSIN_RELAY_BODY_MAX_DEPTH + 1))
      return shown_name (name, strlen (name));
  return NULL;
}

static gboolean
read_json (const char  *data,
           gsize        length,
           gsize        max_body,
           JsonObject  *vars,
           guint       *status,
           GError     **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *variable = NULL;
  g_autoptr(GList) members = NULL;
  JsonObject *object;

  root = tocsin_json_parse (data, length, max_body, TOCSIN_RELAY_BODY_MAX_DEPTH, &local_error);
  if (root == NULL)
    {
      if (g_error_matches (local_error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_TOO_LARGE))
        {
          *status = SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE;
          set_too_large (max_body, error);
          return FALSE;
        }
      /* The text is valid UTF-8 (checked by the caller): an escape named no character. */
      if (g_error_matches (local_error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_INVALID_UTF8) &&
          (variable = member_with_invalid_text (data, length)) != NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("The string in “%s” has a \\u escape that is not a character (such as "
                         "a lone surrogate, \\ud800); send valid UTF-8 text"), variable);
          return FALSE;
        }
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
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
  /* A top-level array (a batch of events) is the variable `body`: {{body[0].name}}. */
  if (JSON_NODE_HOLDS_ARRAY (root))
    {
      json_object_set_member (vars, "body", g_steal_pointer (&root));
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("The JSON body must be an object, like {\"server_name\": \"Production\"}, "
                     "or an array, read as {{body[0]}}"));
      return FALSE;
    }
  object = json_node_get_object (root);
  members = json_object_get_members (object);
  for (GList *l = members; l; l = l->next)
    json_object_set_member (vars, l->data,
                            json_node_copy (json_object_get_member (object, l->data)));
  return TRUE;
}

/* Text that may be JSON: its first character past white space opens an object or an array. */
static gboolean
looks_like_json (const char *data,
                 gsize       length)
{
  gsize i = 0;

  while (i < length && strchr (" \t\r\n", data[i]) != NULL && data[i] != '\0')
    i++;
  return i < length && (data[i] == '{' || data[i] == '[');
}

static void
merge_members (JsonObject *vars,
               JsonObject *from)
{
  g_autoptr(GList) members = json_object_get_members (from);

  for (GList *l = members; l; l = l->next)
    json_object_set_member (vars, l->data, json_node_copy (json_object_get_member (from, l->data)));
}

/* GitHub's form deliveries (`payload=` holding the JSON) and Uptime Kuma's multipart mode (`data`
 * holding the JSON) wrap the whole JSON in a form's one field. When a form has exactly one
 * field and its value parses as a JSON object or array, that JSON is read as if it had been sent
 * as application/json, so one channel's templates fit both of a sender's content types; any
 * other form is its fields, as strings. */
static void
merge_form (JsonObject *vars,
            JsonObject *form,
            gsize       max_body)
{
  if (json_object_get_size (form) == 1)
    {
      g_autoptr(GList) members = json_object_get_members (form);
      const char *value = json_object_get_string_member (form, members->data);
      g_autoptr(JsonObject) inner = json_object_new ();
      g_autoptr(GError) ignored = NULL;
      guint status = 0;

      if (looks_like_json (value, strlen (value)) &&
          read_json (value, strlen (value), max_body, inner, &status, &ignored))
        {
          merge_members (vars, inner);
          return;
        }
    }
  merge_members (vars, form);
}

/* memmem(), which needs _GNU_SOURCE. */
static const char *
find_bytes (const char *haystack,
            gsize       length,
            const char *needle,
            gsize       needle_length)
{
  for (const char *p = haystack, *end = haystack + length;
       (gsize) (end - p) >= needle_length && (p = memchr (p, needle[0], end - p)) != NULL;
       p++)
    if ((gsize) (end - p) >= needle_length && memcmp (p, needle, needle_length) == 0)
      return p;
  return NULL;
}

/* Reads multipart/form-data with libsoup's SoupMultipart, each part a text field. */
static gboolean
read_multipart (SoupMessageHeaders  *headers,
                const char          *boundary,
                const char          *data,
                gsize                length,
                JsonObject          *form,
                guint               *status,
                GError             **error)
{
  g_autoptr(SoupMultipart) multipart = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GString) delimiter = NULL;
  g_autoptr(GHashTable) fields = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GList) names = NULL;
  char *padded;
  guint parts = 0;
  gsize pad;

  if (boundary == NULL || *boundary == '\0' || strlen (boundary) > 200)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("A multipart/form-data body needs the boundary parameter in its "
                     "Content-Type (1 to 200 characters)"));
      return FALSE;
    }
  /* Every part costs libsoup a header table and a buffer: count them before it parses. */
  delimiter = g_string_new ("--");
  g_string_append (delimiter, boundary);
  for (const char *p = data, *end = data + length;
       (p = find_bytes (p, end - p, delimiter->str, delimiter->len)) != NULL; p += delimiter->len)
    if (++parts > TOCSIN_RELAY_BODY_MAX_PARTS + 1)
      {
        *status = SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE;
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                     _("The multipart body has more than %d fields; send fewer"),
                     TOCSIN_RELAY_BODY_MAX_PARTS);
        return FALSE;
      }

  /* libsoup's parser runs strstr() from each part's boundary, as if the body ended in a NUL,
   * and looks at the bytes after a boundary; releases before upstream's fix for CVE-2025-32914
   * read past the end there. It gets a copy followed by zeroes, longer than a boundary line, so
   * that every such read stays inside the buffer, whichever libsoup 3.2 build is installed. */
  pad = delimiter->len + 8;
  padded = g_malloc0 (length + pad);
  memcpy (padded, data, length);
  bytes = g_bytes_new_take (padded, length);
  multipart = soup_multipart_new_from_message (headers, bytes);
  if (multipart == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("The multipart/form-data body could not be read: each part needs its "
                     "headers, a blank line, and the boundary of the Content-Type around it"));
      return FALSE;
    }

  for (int i = 0; i < soup_multipart_get_length (multipart); i++)
    {
      SoupMessageHeaders *part_headers = NULL;
      GBytes *part_body = NULL;
      g_autoptr(GHashTable) params = NULL;
      g_autofree char *disposition = NULL;
      const char *name, *value;
      gsize value_length;

      if (!soup_multipart_get_part (multipart, i, &part_headers, &part_body))
        continue;
      /* libsoup returns TRUE with no disposition for a header that starts with a parameter. */
      if (!soup_message_headers_get_content_disposition (part_headers, &disposition, &params) ||
          disposition == NULL || params == NULL ||
          g_ascii_strcasecmp (disposition, "form-data") != 0 ||
          (name = g_hash_table_lookup (params, "name")) == NULL || *name == '\0')
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("Part %d of the multipart body has no Content-Disposition: form-data "
                         "with a name"), i + 1);
          return FALSE;
        }
      if (!g_utf8_validate (name, -1, NULL))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("A field name in the multipart body is not valid UTF-8"));
          return FALSE;
        }
      value = g_bytes_get_data (part_body, &value_length);
      if (value == NULL)
        value = "";
      if (memchr (value, '\0', value_length) != NULL ||
          !g_utf8_validate_len (value, value_length, NULL))
        {
          g_autofree char *shown = shown_name (name, strlen (name));

          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("The field “%s” of the multipart body is not UTF-8 text; the relay "
                         "takes text fields, not files"), shown);
          return FALSE;
        }
      /* When a name repeats, the last value wins, as in a urlencoded form. */
      g_hash_table_insert (fields, g_strdup (name), g_strndup (value, value_length));
    }

  names = g_list_sort (g_hash_table_get_keys (fields), (GCompareFunc) strcmp);
  for (GList *l = names; l; l = l->next)
    json_object_set_string_member (form, l->data, g_hash_table_lookup (fields, l->data));
  return TRUE;
}

gboolean
tocsin_relay_body_read_multipart (SoupMessageHeaders  *headers,
                                  const char          *data,
                                  gsize                length,
                                  JsonObject          *form,
                                  guint               *status,
                                  GError             **error)
{
  g_autoptr(GHashTable) params = NULL;

  g_return_val_if_fail (headers != NULL && form != NULL && status != NULL, FALSE);

  *status = SOUP_STATUS_BAD_REQUEST;
  soup_message_headers_get_content_type (headers, &params);
  return read_multipart (headers, params ? g_hash_table_lookup (params, "boundary") : NULL,
                         data ? data : "", length, form, status, error);
}

gboolean
tocsin_relay_body_read (SoupMessageHeaders  *headers,
                        GBytes              *bytes,
                        gsize                max_body,
                        JsonObject          *vars,
                        char               **body_text,
                        guint               *status,
                        GError             **error)
{
  g_autoptr(GHashTable) params = NULL;
  g_autoptr(GBytes) decoded = NULL;
  g_autoptr(JsonObject) form = NULL;
  const char *type, *charset;
  gboolean multipart;
  gsize length;
  const char *data;

  g_return_val_if_fail (headers != NULL, FALSE);
  g_return_val_if_fail (bytes != NULL, FALSE);
  g_return_val_if_fail (vars != NULL, FALSE);

  type = soup_message_headers_get_content_type (headers, &params);
  if (type == NULL)
    {
      *status = SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE;
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   _("The request has a body but no Content-Type; send application/json, "
                     "application/x-www-form-urlencoded, multipart/form-data or text/plain"));
      return FALSE;
    }
  charset = params ? g_hash_table_lookup (params, "charset") : NULL;
  multipart = g_ascii_strcasecmp (type, "multipart/form-data") == 0;
  if (!(is_json_type (type) || multipart ||
        g_ascii_strcasecmp (type, "application/x-www-form-urlencoded") == 0 ||
        g_ascii_strcasecmp (type, "text/plain") == 0) ||
      (charset != NULL && g_ascii_strcasecmp (charset, "utf-8") != 0 &&
       g_ascii_strcasecmp (charset, "utf8") != 0))
    {
      *status = SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE;
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   _("The relay reads application/json, application/x-www-form-urlencoded, "
                     "multipart/form-data and text/plain bodies in UTF-8; send one of those"));
      return FALSE;
    }

  decoded = tocsin_relay_body_decode (headers, bytes, max_body, status, error);
  if (decoded == NULL)
    return FALSE;
  data = g_bytes_get_data (decoded, &length);
  if (data == NULL)
    data = "";

  *status = SOUP_STATUS_BAD_REQUEST;
  form = json_object_new ();
  if (multipart)
    {
      /* Parts may be files in other encodings: each text part is checked on its own. */
      if (!read_multipart (headers, g_hash_table_lookup (params, "boundary"), data, length, form,
                           status, error))
        return FALSE;
      merge_form (vars, form, max_body);
      return TRUE;
    }

  if (!g_utf8_validate_len (data, length, NULL))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("The body is not valid UTF-8"));
      return FALSE;
    }

  if (is_json_type (type))
    return read_json (data, length, max_body, vars, status, error);

  if (g_ascii_strcasecmp (type, "text/plain") == 0)
    {
      if (memchr (data, '\0', length) != NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("The text body contains a NUL byte"));
          return FALSE;
        }
      /* Home Assistant's rest_command without content_type sends its JSON as text/plain: a
       * text that is a JSON object or array gives its variables too; any other text is text. */
      if (looks_like_json (data, length))
        {
          g_autoptr(GError) ignored = NULL;
          guint ignored_status = 0;

          if (read_json (data, length, max_body, form, &ignored_status, &ignored))
            merge_members (vars, form);
        }
      *body_text = g_strndup (data, length);
      json_object_set_string_member (vars, "bodyAsText", *body_text);
      return TRUE;
    }

  if (!tocsin_relay_body_add_form_pairs (form, data, length, _("body"), error))
    return FALSE;
  merge_form (vars, form, max_body);
  return TRUE;
}

JsonObject *
tocsin_relay_body_parse_channel_spec (const char              *data,
                                      gsize                    length,
                                      gsize                    max_bytes,
                                      TocsinRelayChannelSpec  *spec,
                                      guint                   *status,
                                      GError                 **error)
{
  static const char *const fields[] = { "name", "description", "title", "body", "link",
                                        "condition", "signature", "signature_secret",
                                        "signature_header" };
  const char **slots[] = { &spec->name, &spec->description, &spec->title, &spec->body,
                           &spec->link, &spec->condition, &spec->signature,
                           &spec->signature_secret, &spec->signature_header };
  JsonNode *paused;
  g_autoptr(GError) local_error = NULL;
  g_autoptr(JsonObject) object = NULL;

  g_return_val_if_fail (data != NULL || length == 0, NULL);
  g_return_val_if_fail (spec != NULL, NULL);

  if (length == 0)
    {
      data = "{}";
      length = 2;
    }
  object = tocsin_json_parse_object (data, length, max_bytes, TOCSIN_RELAY_BODY_MAX_DEPTH,
                                     &local_error);
  if (object == NULL)
    {
      *status = g_error_matches (local_error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_TOO_LARGE)
                  ? SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE : SOUP_STATUS_BAD_REQUEST;
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      JsonNode *node = json_object_get_member (object, fields[i]);

      if (node == NULL || JSON_NODE_HOLDS_NULL (node))
        continue;
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
        {
          *status = SOUP_STATUS_BAD_REQUEST;
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("“%s” must be a string"), fields[i]);
          return NULL;
        }
      *slots[i] = json_node_get_string (node);
    }
  paused = json_object_get_member (object, "paused");
  if (paused != NULL && !JSON_NODE_HOLDS_NULL (paused))
    {
      if (!JSON_NODE_HOLDS_VALUE (paused) || json_node_get_value_type (paused) != G_TYPE_BOOLEAN)
        {
          *status = SOUP_STATUS_BAD_REQUEST;
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("“%s” must be true or false"), "paused");
          return NULL;
        }
      spec->set_paused = TRUE;
      spec->paused = json_node_get_boolean (paused);
    }
  return g_steal_pointer (&object);
}
