/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-request.c: the request model of tocsin-request.h (issue 15, docs/actions.md).
 *
 * Two phases, as the channel templates have: a definition is checked and compiled once (every
 * template in it compiled with a field name that says where it is, so the editor can underline
 * the spot), then rendered per event. Compiling refuses anything that could only fail later:
 * unknown keys, a body where none is sent, header names that are not HTTP tokens. Rendering
 * can still meet what only the variables decide (a URL that turns out not to be http, a header
 * value with a line break, a body over the limit), and says so with TOCSIN_REQUEST_ERROR_RENDER.
 *
 * Parameters nest in GET queries and forms the way PHP, Rails and Node's qs read them:
 * object members as `a[b]=v`, an array's plain items as `a[]=v`, an array's nested items with
 * their index (`a[0][b]=v`, since `a[][b]` is ambiguous). Empty arrays and objects send nothing.
 */
#define G_LOG_DOMAIN "tocsin-request"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>
#include <zlib.h>

#include "tocsin-json.h"
#include "tocsin-message.h"
#include "tocsin-request.h"

G_DEFINE_QUARK (tocsin-request-error-quark, tocsin_request_error)

#define MAX_NAME_CHARS       64     /* a request's name, a parameter's name */
#define MAX_HEADER_NAME      128
/* JSON nesting a definition can have: the object, "params", then a parameter object and its
 * "items"/"fields" array per level, the leaf parameter (2 L + 3 for L levels). One level more
 * than allowed still reaches the walk, which names the parameter that nests too deep; anything
 * deeper is refused before it (the walk is recursive, so this bounds it). */
#define MAX_DEFINITION_DEPTH (2 * (TOCSIN_REQUEST_MAX_DEPTH + 1) + 3)
/* How libsoup 3 parses a request's URL (SOUP_HTTP_URI_FLAGS; this library has no libsoup): what
 * passes here passes there, and the path and query are kept as written. */
#define URL_FLAGS (G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_ENCODED_PATH | \
                   G_URI_FLAGS_ENCODED_QUERY | G_URI_FLAGS_ENCODED_FRAGMENT | \
                   G_URI_FLAGS_SCHEME_NORMALIZE)

typedef enum
{
  PARAM_TEXT,
  PARAM_MD5,
  PARAM_CRC32,
  PARAM_SHA1,
  PARAM_SHA256,
  PARAM_ARRAY,
  PARAM_OBJECT,
} ParamType;

static const char *const param_type_names[] = {
  [PARAM_TEXT] = "text",
  [PARAM_MD5] = "md5",
  [PARAM_CRC32] = "crc32",
  [PARAM_SHA1] = "sha1",
  [PARAM_SHA256] = "sha256",
  [PARAM_ARRAY] = "array",
  [PARAM_OBJECT] = "object",
};

typedef struct
{
  char           *name;      /* NULL for an array's items */
  ParamType       type;
  TocsinTemplate *value;     /* scalar types */
  GPtrArray      *children;  /* array, object: of Param */
} Param;

static const char *const method_names[] = { "GET", "POST", "PUT", "DELETE" };
static const char *const format_names[] = {
  [TOCSIN_REQUEST_FORMAT_JSON] = "json",
  [TOCSIN_REQUEST_FORMAT_RAW] = "raw",
  [TOCSIN_REQUEST_FORMAT_JSON_RPC] = "json-rpc",
  [TOCSIN_REQUEST_FORMAT_FORM] = "form",
};
static const char *const content_types[] = {
  [TOCSIN_REQUEST_FORMAT_JSON] = "application/json",
  [TOCSIN_REQUEST_FORMAT_RAW] = "text/plain; charset=utf-8",
  [TOCSIN_REQUEST_FORMAT_JSON_RPC] = "application/json",
  [TOCSIN_REQUEST_FORMAT_FORM] = "application/x-www-form-urlencoded",
};

struct _TocsinRequest
{
  gatomicrefcount     ref_count;

  /* What was compiled, normalised (owned) */
  JsonObject         *definition;
  char               *field;
  char               *name;
  TocsinRequestKind   kind;
  TocsinRequestEvent  event;
  const char         *method;        /* one of method_names */
  TocsinRequestFormat format;
  TocsinRequestPolicy policy;

  /* Templates (owned; condition, body and rpc_method may be NULL) */
  TocsinTemplate     *condition;
  TocsinTemplate     *url;
  TocsinTemplate     *body;
  TocsinTemplate     *rpc_method;
  TocsinTemplate     *record_id;     /* json-rpc: the id's first part */
  GPtrArray          *header_names;  /* of char * */
  GPtrArray          *header_values; /* of TocsinTemplate */
  gboolean            has_content_type;
  GPtrArray          *params;        /* of Param */
};

static void
param_free (Param *param)
{
  if (param == NULL)
    return;
  g_free (param->name);
  g_clear_pointer (&param->value, tocsin_template_unref);
  g_clear_pointer (&param->children, g_ptr_array_unref);
  g_free (param);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Param, param_free)

static gboolean
method_has_body (const char *method)
{
  return g_str_equal (method, "POST") || g_str_equal (method, "PUT");
}

/* A name from the definition, shown in a sentence: valid UTF-8, no control characters, short. */
static char *
shown (const char *text)
{
  g_autofree char *valid = g_utf8_make_valid (text, -1);
  GString *out = g_string_new (NULL);
  guint count = 0;

  for (const char *p = valid; *p; p = g_utf8_next_char (p), count++)
    {
      gunichar c = g_utf8_get_char (p);

      if (count == 40)
        {
          g_string_append (out, "…");
          break;
        }
      if (g_unichar_iscntrl (c))
        g_string_append_c (out, '?');
      else
        g_string_append_unichar (out, c);
    }
  return g_string_free (out, FALSE);
}

static gboolean
has_control_chars (const char *text)
{
  for (const char *p = text; *p; p = g_utf8_next_char (p))
    if (g_unichar_iscntrl (g_utf8_get_char (p)))
      return TRUE;
  return FALSE;
}

/* RFC 9110 §5.6.2: token = 1*tchar. */
static gboolean
is_http_token (const char *name)
{
  if (*name == '\0' || strlen (name) > MAX_HEADER_NAME)
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && strchr ("!#$%&'*+-.^_`|~", *p) == NULL)
      return FALSE;
  return TRUE;
}

/* Headers the HTTP client writes from the request itself; a definition setting them would
 * contradict it (a wrong Content-Length stalls the target). */
static gboolean
is_reserved_header (const char *name)
{
  static const char *const reserved[] = { "Content-Length", "Transfer-Encoding", "Host",
                                          "Connection", "Upgrade", "TE", "Keep-Alive",
                                          "Trailer" };

  for (guint i = 0; i < G_N_ELEMENTS (reserved); i++)
    if (g_ascii_strcasecmp (name, reserved[i]) == 0)
      return TRUE;
  return FALSE;
}

/* Depth of @node's arrays and objects, counting stops past @limit (so this recursion is bounded
 * whatever the caller built). */
static guint
node_depth (JsonNode *node,
            guint     limit)
{
  guint deepest = 0;

  if (!JSON_NODE_HOLDS_OBJECT (node) && !JSON_NODE_HOLDS_ARRAY (node))
    return 0;
  if (limit == 0)
    return 1;
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObjectIter iter;
      JsonNode *member;

      json_object_iter_init (&iter, json_node_get_object (node));
      while (json_object_iter_next (&iter, NULL, &member) && deepest < limit)
        deepest = MAX (deepest, node_depth (member, limit - 1));
      return deepest + 1;
    }
  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      for (guint i = 0; i < json_array_get_length (array) && deepest < limit; i++)
        deepest = MAX (deepest, node_depth (json_array_get_element (array, i), limit - 1));
      return deepest + 1;
    }
  return 0;
}

/* A string member, or NULL when absent or null. FALSE (and @error set) for any other type. */
static gboolean
get_string (JsonObject  *object,
            const char  *key,
            const char  *field,
            const char **out,
            GError     **error)
{
  JsonNode *node = json_object_get_member (object, key);

  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s.%s: must be text, in quotes"), field, key);
      return FALSE;
    }
  *out = json_node_get_string (node);
  if (!g_utf8_validate (*out, -1, NULL))
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s.%s: the text is not valid UTF-8"), field, key);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_keys (JsonObject        *object,
            const char        *field,
            const char *const *known,
            const char        *known_list,
            GError           **error)
{
  JsonObjectIter iter;
  const char *key;
  JsonNode *member;

  /* json-glib 1.6's ordered iterator needs both out arguments. */
  json_object_iter_init_ordered (&iter, object);
  while (json_object_iter_next_ordered (&iter, &key, &member))
    {
      if (!g_strv_contains (known, key))
        {
          g_autofree char *name = shown (key);

          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                       _("%s: unknown key “%s” (known keys: %s)"), field, name, known_list);
          return FALSE;
        }
    }
  return TRUE;
}

/* Picks @text among @names (case-insensitive when @fold). -1 when it is none of them. */
static int
pick (const char        *text,
      const char *const *names,
      guint              n_names,
      gboolean           fold)
{
  for (guint i = 0; i < n_names; i++)
    if (names[i] != NULL &&
        (fold ? g_ascii_strcasecmp (text, names[i]) == 0 : g_str_equal (text, names[i])))
      return (int) i;
  return -1;
}

/* An absolute http(s) URL with a host, no user info, no spaces or control characters. NULL
 * when it is one, else the reason (translated). */
static const char *
url_problem (const char *url)
{
  g_autoptr(GUri) uri = NULL;
  const char *scheme;

  if (*url == '\0')
    return _("it is empty");
  if (strlen (url) > TOCSIN_REQUEST_MAX_URL)
    return _("it is longer than 16 KiB");
  for (const char *p = url; *p; p++)
    if ((guchar) *p <= 0x20 || *p == 0x7f)
      return _("it holds spaces or control characters");
  uri = g_uri_parse (url, URL_FLAGS, NULL);
  if (uri == NULL)
    return _("it is not an absolute URL");
  scheme = g_uri_get_scheme (uri);
  if (g_ascii_strcasecmp (scheme, "http") != 0 && g_ascii_strcasecmp (scheme, "https") != 0)
    return _("only http and https URLs are sent to");
  if (g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
    return _("it has no host");
  if (g_uri_get_userinfo (uri) != NULL)
    return _("a user name or password in the URL would be logged; send it in a header");
  return NULL;
}

/* The URL as far as it is known before rendering: a literal is checked whole, a template's
 * scheme when it is written out ("javascript:{{x}}" is refused at save time). */
static const char *
url_source_problem (const char *source)
{
  const char *open = strstr (source, "{{");
  const char *colon;

  if (open == NULL)
    return url_problem (source);
  colon = memchr (source, ':', (gsize) (open - source));
  if (colon != NULL && !(colon - source == 4 && g_ascii_strncasecmp (source, "http", 4) == 0) &&
      !(colon - source == 5 && g_ascii_strncasecmp (source, "https", 5) == 0))
    return _("only http and https URLs are sent to");
  return NULL;
}

static Param *compile_param (JsonNode   *node,
                             const char *field,
                             gboolean    named,
                             guint       depth,
                             guint      *count,
                             JsonNode  **normal,
                             GError    **error);

/* Compiles a list of parameters (a request's params, an array's items, an object's fields) into
 * @out, and its normal form into @normal. A parameter is named @prefix.NAME, or @index_prefix[I]
 * when it has no usable name ("forwards[0].params.alert", "forwards[0].params.alert.items[2]"). */
static gboolean
compile_param_list (JsonNode   *node,
                    const char *prefix,
                    const char *index_prefix,
                    gboolean    named,
                    guint       depth,
                    guint      *count,
                    GPtrArray  *out,
                    JsonArray  *normal,
                    GError    **error)
{
  g_autoptr(GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);
  JsonArray *array;

  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s: must be a list of parameters, in brackets: [{…}, …]"), prefix);
      return FALSE;
    }
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);
      JsonNode *normal_param = NULL;
      g_autofree char *field = NULL;
      Param *param;
      const char *name = NULL;

      /* Named by its name when it has a usable one ("params.alert"), else by its place. */
      if (named && JSON_NODE_HOLDS_OBJECT (element))
        {
          JsonNode *name_node = json_object_get_member (json_node_get_object (element), "name");

          if (name_node != NULL && JSON_NODE_HOLDS_VALUE (name_node) &&
              json_node_get_value_type (name_node) == G_TYPE_STRING)
            name = json_node_get_string (name_node);
          if (name != NULL && (*name == '\0' || !g_utf8_validate (name, -1, NULL) ||
                               g_utf8_strlen (name, -1) > MAX_NAME_CHARS ||
                               has_control_chars (name)))
            name = NULL;
        }
      if (name != NULL)
        field = g_strdup_printf ("%s.%s", prefix, name);
      else
        field = g_strdup_printf ("%s[%u]", index_prefix, i);

      if (++*count > TOCSIN_REQUEST_MAX_PARAMS)
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                       _("%s: at most %d parameters are allowed in all"), field,
                       TOCSIN_REQUEST_MAX_PARAMS);
          return FALSE;
        }
      param = compile_param (element, field, named, depth, count, &normal_param, error);
      if (param == NULL)
        return FALSE;
      g_ptr_array_add (out, param);
      json_array_add_element (normal, normal_param);
      if (param->name != NULL)
        {
          if (g_hash_table_contains (names, param->name))
            {
              g_autofree char *name_shown = shown (param->name);

              g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                           _("%s: the name “%s” is used twice; give each parameter its own"),
                           field, name_shown);
              return FALSE;
            }
          g_hash_table_add (names, param->name);
        }
    }
  return TRUE;
}

/* PARAM: {"name": "n", "type": "text", "value": T}; {"type": "array", "items": [...]};
 *        {"type": "object", "fields": [...]}. @depth counts the arrays and objects around it. */
static Param *
compile_param (JsonNode   *node,
               const char *field,
               gboolean    named,
               guint       depth,
               guint      *count,
               JsonNode  **normal,
               GError    **error)
{
  static const char *const known[] = { "name", "type", "value", "items", "fields", NULL };
  g_autoptr(Param) param = g_new0 (Param, 1);
  g_autoptr(JsonObject) normal_object = json_object_new ();
  JsonObject *object;
  const char *name, *type, *value;
  int picked;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s: a parameter must be an object: {\"name\": …, \"type\": …, \"value\": …}"),
                   field);
      return NULL;
    }
  object = json_node_get_object (node);
  if (!check_keys (object, field, known, "name, type, value, items, fields", error) ||
      !get_string (object, "name", field, &name, error) ||
      !get_string (object, "type", field, &type, error) ||
      !get_string (object, "value", field, &value, error))
    return NULL;

  if (named)
    {
      if (name == NULL || *name == '\0' || g_utf8_strlen (name, -1) > MAX_NAME_CHARS ||
          has_control_chars (name))
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                       _("%s.name: give the parameter a name of 1 to %d characters"), field,
                       MAX_NAME_CHARS);
          return NULL;
        }
      param->name = g_strdup (name);
      json_object_set_string_member (normal_object, "name", name);
    }
  else if (name != NULL)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s.name: an array's items have no name; remove it"), field);
      return NULL;
    }

  picked = type == NULL ? PARAM_TEXT
                        : pick (type, param_type_names, G_N_ELEMENTS (param_type_names), FALSE);
  if (picked < 0)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s.type: use text, array, object, md5, crc32, sha1 or sha256"), field);
      return NULL;
    }
  param->type = (ParamType) picked;
  json_object_set_string_member (normal_object, "type", param_type_names[param->type]);

  if (param->type == PARAM_ARRAY || param->type == PARAM_OBJECT)
    {
      const char *list = param->type == PARAM_ARRAY ? "items" : "fields";
      const char *other = param->type == PARAM_ARRAY ? "fields" : "items";
      JsonNode *children = json_object_get_member (object, list);
      g_autoptr(JsonArray) normal_children = json_array_new ();
      g_autofree char *list_field = g_strdup_printf ("%s.%s", field, list);
      const char *prefix = param->type == PARAM_ARRAY ? list_field : field;

      if (json_object_has_member (object, "value") || json_object_has_member (object, other))
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                       _("%s: an %s parameter holds its %s, not %s"), field, type, list,
                       json_object_has_member (object, "value") ? "value" : other);
          return NULL;
        }
      if (depth + 1 > TOCSIN_REQUEST_MAX_DEPTH)
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                       _("%s: arrays and objects nest deeper than %d levels"), field,
                       TOCSIN_REQUEST_MAX_DEPTH);
          return NULL;
        }
      param->children = g_ptr_array_new_with_free_func ((GDestroyNotify) param_free);
      if (children == NULL || JSON_NODE_HOLDS_NULL (children))
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                       _("%s: give the %s parameter its %s: [{…}, …]"), field, type, list);
          return NULL;
        }
      /* An array's items are named by their place (params.alert.items[2]), an object's fields
       * by their name (params.labels.severity). */
      if (!compile_param_list (children, prefix, list_field, param->type == PARAM_OBJECT,
                               depth + 1, count, param->children, normal_children, error))
        return NULL;
      json_object_set_array_member (normal_object, list, g_steal_pointer (&normal_children));
    }
  else
    {
      g_autofree char *value_field = NULL;

      if (json_object_has_member (object, "items") || json_object_has_member (object, "fields"))
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                       _("%s: only an array has items and only an object has fields; "
                         "a %s parameter has a value"), field, param_type_names[param->type]);
          return NULL;
        }
      /* The template's field is the parameter's own ("params.alert.items[2]"), as the header
       * promises; "value" would only lengthen every message. */
      value_field = g_strdup (field);
      param->value = tocsin_template_new (value_field, value, error);
      if (param->value == NULL)
        return NULL;
      json_object_set_string_member (normal_object, "value", value ? value : "");
    }

  *normal = json_node_init_object (json_node_alloc (), normal_object);
  return g_steal_pointer (&param);
}

static gboolean
compile_headers (TocsinRequest *self,
                 JsonNode      *node,
                 JsonObject    *normal,
                 GError       **error)
{
  g_autoptr(JsonObject) normal_headers = json_object_new ();
  JsonObjectIter iter;
  const char *name;
  JsonNode *value;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      json_object_set_object_member (normal, "headers", g_steal_pointer (&normal_headers));
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s.headers: must be an object of names and values: {\"Name\": \"value\"}"),
                   self->field);
      return FALSE;
    }
  if (json_object_get_size (json_node_get_object (node)) > TOCSIN_REQUEST_MAX_HEADERS)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s.headers: at most %d headers are allowed"), self->field,
                   TOCSIN_REQUEST_MAX_HEADERS);
      return FALSE;
    }

  json_object_iter_init_ordered (&iter, json_node_get_object (node));
  while (json_object_iter_next_ordered (&iter, &name, &value))
    {
      g_autofree char *field = NULL;
      TocsinTemplate *template;

      if (!is_http_token (name))
        {
          g_autofree char *name_shown = shown (name);

          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                       _("%s.headers: “%s” is not a header name (letters, digits and "
                         "!#$%%&'*+-.^_`|~ only)"), self->field, name_shown);
          return FALSE;
        }
      field = g_strdup_printf ("%s.headers.%s", self->field, name);
      if (is_reserved_header (name))
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                       _("%s: Tocsin sets this header itself; remove it"), field);
          return FALSE;
        }
      for (guint i = 0; i < self->header_names->len; i++)
        if (g_ascii_strcasecmp (name, g_ptr_array_index (self->header_names, i)) == 0)
          {
            g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                         _("%s: the header is given twice"), field);
            return FALSE;
          }
      if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING ||
          !g_utf8_validate (json_node_get_string (value), -1, NULL))
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                       _("%s: the value must be text, in quotes"), field);
          return FALSE;
        }
      template = tocsin_template_new (field, json_node_get_string (value), error);
      if (template == NULL)
        return FALSE;
      g_ptr_array_add (self->header_names, g_strdup (name));
      g_ptr_array_add (self->header_values, template);
      if (g_ascii_strcasecmp (name, "Content-Type") == 0)
        self->has_content_type = TRUE;
      json_object_set_string_member (normal_headers, name, json_node_get_string (value));
    }
  json_object_set_object_member (normal, "headers", g_steal_pointer (&normal_headers));
  return TRUE;
}

/* Compiles a template member @key of @object; @out stays NULL when it is absent. */
static gboolean
compile_template (TocsinRequest   *self,
                  JsonObject      *object,
                  const char      *key,
                  gboolean         condition,
                  TocsinTemplate **out,
                  JsonObject      *normal,
                  GError         **error)
{
  g_autofree char *field = g_strdup_printf ("%s.%s", self->field, key);
  const char *source;

  if (!get_string (object, key, self->field, &source, error))
    return FALSE;
  if (source == NULL)
    return TRUE;
  *out = condition ? tocsin_template_new_condition (field, source, error)
                   : tocsin_template_new (field, source, error);
  if (*out == NULL)
    return FALSE;
  json_object_set_string_member (normal, key, source);
  return TRUE;
}

/* What is stored is the normal form, and it must compile again when it is loaded: so the size
 * limit holds for it too (the defaults filled in can take a definition just under the limit over
 * it; found by fuzz-request). */
static TocsinRequest *
finish (TocsinRequest  *self,
        JsonObject     *normal,
        GError        **error)
{
  g_autoptr(TocsinRequest) request = self;
  g_autoptr(JsonNode) root = json_node_init_object (json_node_alloc (), normal);
  g_autoptr(GString) text = g_string_new (NULL);

  json_object_unref (normal);
  tocsin_json_append_node (text, root);
  if (text->len > TOCSIN_REQUEST_MAX_SOURCE)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s: the definition is longer than %d KiB once its defaults are filled in"),
                   request->field, TOCSIN_REQUEST_MAX_SOURCE / 1024);
      return NULL;
    }
  request->definition = json_object_ref (json_node_get_object (root));
  json_object_seal (request->definition);
  return g_steal_pointer (&request);
}

TocsinRequest *
tocsin_request_new (const char  *field,
                    JsonObject  *definition,
                    GError     **error)
{
  static const char *const known_http[] = { "name", "kind", "event", "condition", "method", "url",
                                            "format", "headers", "params", "body", "rpcMethod",
                                            "policy", NULL };
  static const char *const known_view[] = { "name", "kind", "event", "condition", "url", NULL };
  static const char *const kind_names[] = { "http", "view" };
  static const char *const event_names[] = { "message", "acknowledge" };
  static const char *const policy_names[] = { "retry", "none" };
  g_autoptr(TocsinRequest) self = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GString) text = NULL;
  g_autoptr(JsonObject) normal = NULL;
  const char *name, *kind, *event, *method, *format, *policy;
  JsonNode *params;
  int picked;

  g_return_val_if_fail (definition != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (field == NULL || *field == '\0')
    field = "request";

  /* Depth first (it bounds the serialisation's recursion), then size, then the walk. */
  root = json_node_init_object (json_node_alloc (), definition);
  if (node_depth (root, MAX_DEFINITION_DEPTH) > MAX_DEFINITION_DEPTH)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s: arrays and objects nest deeper than %d levels"), field,
                   TOCSIN_REQUEST_MAX_DEPTH);
      return NULL;
    }
  text = g_string_new (NULL);
  tocsin_json_append_node (text, root);
  if (text->len > TOCSIN_REQUEST_MAX_SOURCE)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s: the definition is longer than %d KiB"), field,
                   TOCSIN_REQUEST_MAX_SOURCE / 1024);
      return NULL;
    }

  self = g_new0 (TocsinRequest, 1);
  g_atomic_ref_count_init (&self->ref_count);
  self->field = g_strdup (field);
  self->header_names = g_ptr_array_new_with_free_func (g_free);
  self->header_values = g_ptr_array_new_with_free_func ((GDestroyNotify) tocsin_template_unref);
  self->params = g_ptr_array_new_with_free_func ((GDestroyNotify) param_free);
  normal = json_object_new ();

  if (!get_string (definition, "name", field, &name, error) ||
      !get_string (definition, "kind", field, &kind, error) ||
      !get_string (definition, "event", field, &event, error) ||
      !get_string (definition, "method", field, &method, error) ||
      !get_string (definition, "format", field, &format, error) ||
      !get_string (definition, "policy", field, &policy, error))
    return NULL;

  if (name == NULL || *name == '\0' || g_utf8_strlen (name, -1) > MAX_NAME_CHARS ||
      has_control_chars (name))
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s.name: give a name of 1 to %d characters"), field, MAX_NAME_CHARS);
      return NULL;
    }
  self->name = g_strdup (name);
  json_object_set_string_member (normal, "name", name);

  picked = kind == NULL ? 0 : pick (kind, kind_names, G_N_ELEMENTS (kind_names), FALSE);
  if (picked < 0)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s.kind: use http or view"), field);
      return NULL;
    }
  self->kind = picked == 0 ? TOCSIN_REQUEST_KIND_HTTP : TOCSIN_REQUEST_KIND_VIEW;
  json_object_set_string_member (normal, "kind", kind_names[picked]);

  if (self->kind == TOCSIN_REQUEST_KIND_VIEW)
    {
      JsonObjectIter iter;
      const char *key;
      JsonNode *member;

      json_object_iter_init_ordered (&iter, definition);
      while (json_object_iter_next_ordered (&iter, &key, &member))
        if (!g_strv_contains (known_view, key) && g_strv_contains (known_http, key))
          {
            g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                         _("%s.%s: a view action only opens its url; remove %s"), field, key,
                         key);
            return NULL;
          }
      if (!check_keys (definition, field, known_view, "name, kind, event, condition, url",
                       error))
        return NULL;
    }
  else if (!check_keys (definition, field, known_http,
                        "name, kind, event, condition, method, url, format, headers, params, "
                        "body, rpcMethod, policy", error))
    return NULL;

  picked = event == NULL ? 0 : pick (event, event_names, G_N_ELEMENTS (event_names), FALSE);
  if (picked < 0)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s.event: use message or acknowledge"), field);
      return NULL;
    }
  self->event = picked == 0 ? TOCSIN_REQUEST_EVENT_MESSAGE : TOCSIN_REQUEST_EVENT_ACKNOWLEDGE;
  json_object_set_string_member (normal, "event", event_names[picked]);

  if (!compile_template (self, definition, "condition", TRUE, &self->condition, normal, error))
    return NULL;

  if (self->kind == TOCSIN_REQUEST_KIND_HTTP)
    {
      picked = method == NULL ? 1 : pick (method, method_names, G_N_ELEMENTS (method_names), TRUE);
      if (picked < 0)
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                       _("%s.method: use GET, POST, PUT or DELETE"), field);
          return NULL;
        }
      self->method = method_names[picked];
      json_object_set_string_member (normal, "method", self->method);
    }
  else
    self->method = "GET";

  if (!compile_template (self, definition, "url", FALSE, &self->url, normal, error))
    return NULL;
  if (self->url == NULL || tocsin_template_is_empty (self->url))
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s.url: give the URL to send to (http or https)"), field);
      return NULL;
    }
  {
    const char *problem = url_source_problem (tocsin_template_get_source (self->url));

    if (problem != NULL)
      {
        g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                     _("%s.url: %s"), field, problem);
        return NULL;
      }
  }

  if (self->kind == TOCSIN_REQUEST_KIND_VIEW)
    return finish (g_steal_pointer (&self), g_steal_pointer (&normal), error);

  picked = format == NULL ? 0 : pick (format, format_names, G_N_ELEMENTS (format_names), FALSE);
  if (picked < 0)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s.format: use json, raw, json-rpc or form"), field);
      return NULL;
    }
  self->format = (TocsinRequestFormat) picked;
  if (self->format == TOCSIN_REQUEST_FORMAT_JSON_RPC && !method_has_body (self->method))
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s.format: a json-rpc request is sent in a body; use method POST or PUT"),
                   field);
      return NULL;
    }
  json_object_set_string_member (normal, "format", format_names[self->format]);

  if (!compile_headers (self, json_object_get_member (definition, "headers"), normal, error))
    return NULL;

  params = json_object_get_member (definition, "params");
  if (params != NULL && !JSON_NODE_HOLDS_NULL (params))
    {
      g_autoptr(JsonArray) normal_params = json_array_new ();
      g_autofree char *params_field = g_strdup_printf ("%s.params", field);
      guint count = 0;

      if (self->format == TOCSIN_REQUEST_FORMAT_RAW && method_has_body (self->method))
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                       _("%s: a raw request sends its body as written; put the values in body"),
                       params_field);
          return NULL;
        }
      if (!compile_param_list (params, params_field, params_field, TRUE, 0, &count, self->params,
                               normal_params, error))
        return NULL;
      json_object_set_array_member (normal, "params", g_steal_pointer (&normal_params));
    }
  else if (!(self->format == TOCSIN_REQUEST_FORMAT_RAW && method_has_body (self->method)))
    json_object_set_array_member (normal, "params", json_array_new ());

  if (json_object_has_member (definition, "body"))
    {
      if (self->format != TOCSIN_REQUEST_FORMAT_RAW)
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                       _("%s.body: only a raw request has a body; use format raw, or params"),
                       field);
          return NULL;
        }
      if (!method_has_body (self->method))
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                       _("%s.body: a GET or DELETE request has no body; use POST or PUT"),
                       field);
          return NULL;
        }
    }
  if (!compile_template (self, definition, "body", FALSE, &self->body, normal, error))
    return NULL;
  if (self->format == TOCSIN_REQUEST_FORMAT_RAW && method_has_body (self->method) &&
      self->body == NULL)
    json_object_set_string_member (normal, "body", "");

  if (json_object_has_member (definition, "rpcMethod") &&
      self->format != TOCSIN_REQUEST_FORMAT_JSON_RPC)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s.rpcMethod: only a json-rpc request has rpcMethod; remove it or use "
                     "format json-rpc"), field);
      return NULL;
    }
  if (!compile_template (self, definition, "rpcMethod", FALSE, &self->rpc_method, normal, error))
    return NULL;
  if (self->format == TOCSIN_REQUEST_FORMAT_JSON_RPC)
    {
      if (self->rpc_method == NULL || tocsin_template_is_empty (self->rpc_method))
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                       _("%s.rpcMethod: a json-rpc request needs the method to call"), field);
          return NULL;
        }
      self->record_id = tocsin_template_new ("id", "{{record.id}}", NULL);
      g_assert (self->record_id != NULL);
    }

  picked = policy == NULL ? 0 : pick (policy, policy_names, G_N_ELEMENTS (policy_names), FALSE);
  if (picked < 0)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s.policy: use retry or none"), field);
      return NULL;
    }
  self->policy = picked == 0 ? TOCSIN_REQUEST_POLICY_RETRY : TOCSIN_REQUEST_POLICY_NONE;
  json_object_set_string_member (normal, "policy", policy_names[picked]);

  return finish (g_steal_pointer (&self), g_steal_pointer (&normal), error);
}

TocsinRequest *
tocsin_request_ref (TocsinRequest *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
tocsin_request_unref (TocsinRequest *self)
{
  if (self == NULL || !g_atomic_ref_count_dec (&self->ref_count))
    return;
  g_clear_pointer (&self->definition, json_object_unref);
  g_free (self->field);
  g_free (self->name);
  g_clear_pointer (&self->condition, tocsin_template_unref);
  g_clear_pointer (&self->url, tocsin_template_unref);
  g_clear_pointer (&self->body, tocsin_template_unref);
  g_clear_pointer (&self->rpc_method, tocsin_template_unref);
  g_clear_pointer (&self->record_id, tocsin_template_unref);
  g_clear_pointer (&self->header_names, g_ptr_array_unref);
  g_clear_pointer (&self->header_values, g_ptr_array_unref);
  g_clear_pointer (&self->params, g_ptr_array_unref);
  g_free (self);
}

JsonObject *
tocsin_request_get_definition (TocsinRequest *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->definition;
}

const char *
tocsin_request_get_name (TocsinRequest *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->name;
}

TocsinRequestKind
tocsin_request_get_kind (TocsinRequest *self)
{
  g_return_val_if_fail (self != NULL, TOCSIN_REQUEST_KIND_HTTP);
  return self->kind;
}

TocsinRequestEvent
tocsin_request_get_event (TocsinRequest *self)
{
  g_return_val_if_fail (self != NULL, TOCSIN_REQUEST_EVENT_MESSAGE);
  return self->event;
}

TocsinRequestPolicy
tocsin_request_get_policy (TocsinRequest *self)
{
  g_return_val_if_fail (self != NULL, TOCSIN_REQUEST_POLICY_RETRY);
  return self->policy;
}

GPtrArray *
tocsin_request_list_new (const char  *field,
                         JsonArray   *definitions,
                         guint        max,
                         GError     **error)
{
  g_autoptr(GPtrArray) requests = NULL;
  guint length;

  g_return_val_if_fail (definitions != NULL, NULL);

  if (field == NULL || *field == '\0')
    field = "requests";
  length = json_array_get_length (definitions);
  if (length > max)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("%s: at most %u are allowed"), field, max);
      return NULL;
    }
  requests = g_ptr_array_new_with_free_func ((GDestroyNotify) tocsin_request_unref);
  for (guint i = 0; i < length; i++)
    {
      JsonNode *element = json_array_get_element (definitions, i);
      g_autofree char *element_field = g_strdup_printf ("%s[%u]", field, i);
      TocsinRequest *request;

      if (!JSON_NODE_HOLDS_OBJECT (element))
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                       _("%s: must be an object: {\"name\": …, \"url\": …}"), element_field);
          return NULL;
        }
      request = tocsin_request_new (element_field, json_node_get_object (element), error);
      if (request == NULL)
        return NULL;
      g_ptr_array_add (requests, request);
      /* The name says which one in the deliveries log and on the button. */
      for (guint j = 0; j < i; j++)
        {
          TocsinRequest *other = g_ptr_array_index (requests, j);

          if (g_str_equal (other->name, request->name))
            {
              g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                           _("%s.name: %s[%u] has the same name; give each its own"),
                           element_field, field, j);
              return NULL;
            }
        }
    }
  return g_steal_pointer (&requests);
}

JsonArray *
tocsin_request_list_to_json (GPtrArray *requests)
{
  JsonArray *array = json_array_new ();

  if (requests == NULL)
    return array;
  for (guint i = 0; i < requests->len; i++)
    {
      TocsinRequest *request = g_ptr_array_index (requests, i);

      json_array_add_object_element (array, json_object_ref (request->definition));
    }
  return array;
}

JsonObject *
tocsin_request_context_vars (JsonObject                 *message_vars,
                             const TocsinRequestContext *context,
                             const char                 *action_name)
{
  JsonObject *vars = json_object_new ();
  JsonObject *record, *channel;
  g_autofree char *time = NULL;

  g_return_val_if_fail (context != NULL, vars);

  if (message_vars != NULL)
    {
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;

      /* json_node_copy() shares objects and arrays (a reference), so this is shallow. */
      json_object_iter_init_ordered (&iter, message_vars);
      while (json_object_iter_next_ordered (&iter, &name, &member))
        json_object_set_member (vars, name, json_node_copy (member));
    }

  time = tocsin_format_time_ms (context->record_time_ms);
  record = json_object_new ();
  json_object_set_int_member (record, "id", context->record_id);
  json_object_set_string_member (record, "time", time);
  json_object_set_string_member (record, "title", context->record_title ? context->record_title
                                                                        : "");
  json_object_set_string_member (record, "body", context->record_body ? context->record_body
                                                                      : "");
  json_object_set_string_member (record, "link", context->record_link ? context->record_link
                                                                      : "");
  json_object_set_object_member (vars, "record", record);

  channel = json_object_new ();
  json_object_set_int_member (channel, "id", context->channel_id);
  json_object_set_string_member (channel, "name", context->channel_name ? context->channel_name
                                                                        : "");
  json_object_set_object_member (vars, "channel", channel);

  json_object_set_string_member (vars, "user", context->user ? context->user : "");
  json_object_set_string_member (vars, "action", action_name ? action_name : "");
  return vars;
}

void
tocsin_rendered_request_free (TocsinRenderedRequest *request)
{
  if (request == NULL)
    return;
  g_free (request->name);
  g_free (request->method);
  g_free (request->url);
  g_strfreev (request->headers);
  g_clear_pointer (&request->body, g_bytes_unref);
  g_free (request);
}

gboolean
tocsin_request_applies (TocsinRequest       *self,
                        TocsinTemplateScope *scope)
{
  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (scope != NULL, FALSE);

  if (self->condition == NULL)
    return TRUE;
  return tocsin_template_evaluate (self->condition, scope, NULL);
}

/* ---- rendering ---- */

typedef struct
{
  TocsinTemplateScope *scope;
  GString             *out;
  gsize                limit;   /* stop writing past this many bytes of out */
} Render;

static char *
render_leaf (Param               *param,
             TocsinTemplateScope *scope)
{
  g_autofree char *value = tocsin_template_render (param->value, scope, NULL);

  switch (param->type)
    {
    case PARAM_TEXT:
      return g_steal_pointer (&value);
    case PARAM_MD5:
      return g_compute_checksum_for_string (G_CHECKSUM_MD5, value, -1);
    case PARAM_SHA1:
      return g_compute_checksum_for_string (G_CHECKSUM_SHA1, value, -1);
    case PARAM_SHA256:
      return g_compute_checksum_for_string (G_CHECKSUM_SHA256, value, -1);
    case PARAM_CRC32:
      {
        gsize length = strlen (value);
        uLong crc = crc32 (0L, Z_NULL, 0);

        /* zlib takes a uInt length; a rendered value is at most 64 KiB, but stay exact. */
        for (const char *p = value; length > 0;)
          {
            uInt chunk = (uInt) MIN (length, (gsize) G_MAXUINT32);

            crc = crc32 (crc, (const Bytef *) p, chunk);
            p += chunk;
            length -= chunk;
          }
        return g_strdup_printf ("%08lx", (unsigned long) (crc & 0xffffffffUL));
      }
    case PARAM_ARRAY:
    case PARAM_OBJECT:
    default:
      g_assert_not_reached ();
    }
}

/* Appends @params as JSON object members (@object) or array elements. */
static void
render_json (Render    *render,
             GPtrArray *params,
             gboolean   object)
{
  g_string_append_c (render->out, object ? '{' : '[');
  for (guint i = 0; i < params->len && render->out->len <= render->limit; i++)
    {
      Param *param = g_ptr_array_index (params, i);

      if (i > 0)
        g_string_append_c (render->out, ',');
      if (object)
        {
          tocsin_json_append_string (render->out, param->name);
          g_string_append_c (render->out, ':');
        }
      if (param->children != NULL)
        render_json (render, param->children, param->type == PARAM_OBJECT);
      else
        {
          g_autofree char *value = render_leaf (param, render->scope);

          tocsin_json_append_string (render->out, value);
        }
    }
  g_string_append_c (render->out, object ? '}' : ']');
}

/* Appends @params as URL-encoded pairs ("a=1&b%5B%5D=2" style, brackets kept literal), the way
 * qs/PHP read nesting: object members a[b], plain array items a[], nested array items a[0][b].
 * @prefix is the key so far (already encoded), or NULL at the top. */
static void
render_pairs (Render     *render,
              GPtrArray  *params,
              const char *prefix,
              gboolean    in_array)
{
  for (guint i = 0; i < params->len && render->out->len <= render->limit; i++)
    {
      Param *param = g_ptr_array_index (params, i);
      g_autofree char *key = NULL;

      if (prefix == NULL)
        key = g_uri_escape_string (param->name, NULL, FALSE);
      else if (!in_array)
        {
          g_autofree char *name = g_uri_escape_string (param->name, NULL, FALSE);

          key = g_strdup_printf ("%s[%s]", prefix, name);
        }
      else if (param->children != NULL)
        key = g_strdup_printf ("%s[%u]", prefix, i);
      else
        key = g_strdup_printf ("%s[]", prefix);

      if (param->children != NULL)
        render_pairs (render, param->children, key, param->type == PARAM_ARRAY);
      else
        {
          g_autofree char *value = render_leaf (param, render->scope);
          g_autofree char *escaped = g_uri_escape_string (value, NULL, FALSE);

          if (render->out->len > 0)
            g_string_append_c (render->out, '&');
          g_string_append (render->out, key);
          g_string_append_c (render->out, '=');
          g_string_append (render->out, escaped);
        }
    }
}

/* A header value is sent as is: a line break would start a new header (or the body). */
static gboolean
header_value_is_safe (const char *value)
{
  for (const char *p = value; *p; p++)
    if (((guchar) *p < 0x20 && *p != '\t') || *p == 0x7f)
      return FALSE;
  return TRUE;
}

static char *
json_rpc_id (TocsinRequest       *self,
             TocsinTemplateScope *scope)
{
  g_autofree char *record_id = tocsin_template_render (self->record_id, scope, NULL);

  /* Unique per render (a retry of one delivery is a new call): the record, then 64 random
   * bits. */
  return g_strdup_printf ("%s-%08x%08x", *record_id ? record_id : "tocsin", g_random_int (),
                          g_random_int ());
}

TocsinRenderedRequest *
tocsin_request_render (TocsinRequest        *self,
                       TocsinTemplateScope  *scope,
                       GError              **error)
{
  g_autoptr(TocsinRenderedRequest) rendered = g_new0 (TocsinRenderedRequest, 1);
  g_autoptr(GStrvBuilder) headers = g_strv_builder_new ();
  g_autoptr(GString) body = g_string_new (NULL);
  g_autoptr(GError) budget_error = NULL;
  g_autofree char *url = NULL;
  const char *problem;
  Render render = { scope, body, TOCSIN_REQUEST_MAX_BODY };
  gboolean has_body;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (scope != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  rendered->name = g_strdup (self->name);
  rendered->method = g_strdup (self->method);
  rendered->policy = self->policy;
  url = tocsin_template_render (self->url, scope, NULL);

  if (self->kind == TOCSIN_REQUEST_KIND_VIEW)
    {
      if (!tocsin_template_scope_check (scope, &budget_error))
        {
          /* It names the template that ran out ("forwards[1].url"). */
          g_set_error_literal (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_RENDER,
                               budget_error->message);
          return NULL;
        }
      if (!tocsin_link_is_safe (url, &problem))
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_RENDER,
                       _("%s.url: the rendered link was refused: %s"), self->field, problem);
          return NULL;
        }
      rendered->url = g_steal_pointer (&url);
      rendered->headers = g_strv_builder_end (headers);
      return g_steal_pointer (&rendered);
    }

  for (guint i = 0; i < self->header_names->len; i++)
    {
      const char *name = g_ptr_array_index (self->header_names, i);
      g_autofree char *value = tocsin_template_render (g_ptr_array_index (self->header_values, i),
                                                       scope, NULL);

      if (!header_value_is_safe (value))
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_RENDER,
                       _("%s.headers.%s: the value rendered holds a line break or another "
                         "control character"), self->field, name);
          return NULL;
        }
      g_strv_builder_add (headers, name);
      g_strv_builder_add (headers, value);
    }

  has_body = method_has_body (self->method);
  if (!has_body)
    {
      /* GET and DELETE: the parameters go in the query, after any the URL has; a fragment is
       * never sent. */
      char *hash = strchr (url, '#');

      if (hash != NULL)
        *hash = '\0';
      render_pairs (&render, self->params, NULL, FALSE);
      if (body->len > 0)
        {
          g_autofree char *joined = g_strconcat (url, strchr (url, '?') ? "&" : "?", body->str,
                                                 NULL);

          g_free (url);
          url = g_steal_pointer (&joined);
          g_string_truncate (body, 0);
        }
    }
  else
    switch (self->format)
      {
      case TOCSIN_REQUEST_FORMAT_JSON:
        render_json (&render, self->params, TRUE);
        break;
      case TOCSIN_REQUEST_FORMAT_JSON_RPC:
        {
          g_autofree char *method = tocsin_template_render (self->rpc_method, scope, NULL);
          g_autofree char *id = json_rpc_id (self, scope);

          g_string_append (body, "{\"jsonrpc\":\"2.0\",\"method\":");
          tocsin_json_append_string (body, method);
          if (self->params->len > 0)
            {
              g_string_append (body, ",\"params\":");
              render_json (&render, self->params, TRUE);
            }
          g_string_append (body, ",\"id\":");
          tocsin_json_append_string (body, id);
          g_string_append_c (body, '}');
        }
        break;
      case TOCSIN_REQUEST_FORMAT_FORM:
        render_pairs (&render, self->params, NULL, FALSE);
        break;
      case TOCSIN_REQUEST_FORMAT_RAW:
        if (self->body != NULL)
          {
            g_autofree char *text = tocsin_template_render (self->body, scope, NULL);

            g_string_append (body, text);
          }
        break;
      default:
        g_assert_not_reached ();
      }

  if (!tocsin_template_scope_check (scope, &budget_error))
    {
      g_set_error_literal (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_RENDER,
                           budget_error->message);
      return NULL;
    }
  if ((problem = url_problem (url)) != NULL)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_RENDER,
                   _("%s.url: the rendered URL cannot be sent to: %s"), self->field, problem);
      return NULL;
    }
  if (body->len > TOCSIN_REQUEST_MAX_BODY)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_RENDER,
                   _("%s: the rendered body is larger than %d KiB"), self->field,
                   TOCSIN_REQUEST_MAX_BODY / 1024);
      return NULL;
    }

  if (has_body && !self->has_content_type)
    {
      g_strv_builder_add (headers, "Content-Type");
      g_strv_builder_add (headers, content_types[self->format]);
    }
  rendered->url = g_steal_pointer (&url);
  rendered->headers = g_strv_builder_end (headers);
  if (has_body && body->len > 0)
    {
      gsize length = body->len;

      rendered->body = g_bytes_new_take (g_string_free (g_steal_pointer (&body), FALSE), length);
    }
  return g_steal_pointer (&rendered);
}

gboolean
tocsin_request_url_is_sendable (const char  *url,
                                const char **reason)
{
  const char *problem = url == NULL ? _("it is empty") : url_problem (url);

  if (reason != NULL)
    *reason = problem;
  return problem == NULL;
}

char *
tocsin_request_url_for_log (const char *url)
{
  g_autoptr(GUri) uri = NULL;
  const char *path;

  if (url == NULL)
    return g_strdup ("");
  /* Not URL_FLAGS: without G_URI_FLAGS_SCHEME_NORMALIZE the port shows only when written. */
  uri = g_uri_parse (url, G_URI_FLAGS_ENCODED | G_URI_FLAGS_HAS_PASSWORD, NULL);
  if (uri == NULL || g_uri_get_host (uri) == NULL)
    return g_strdup ("(not a URL)");
  path = g_uri_get_path (uri);
  return g_uri_join (G_URI_FLAGS_ENCODED, g_uri_get_scheme (uri), NULL, g_uri_get_host (uri),
                     g_uri_get_port (uri), path && *path ? path : "/", NULL, NULL);
}

GPtrArray *
tocsin_request_list_parse (const char  *field,
                           const char  *text,
                           guint        max,
                           GError     **error)
{
  g_autoptr(JsonNode) node = NULL;

  g_return_val_if_fail (field != NULL, NULL);

  if (text == NULL || *text == '\0')
    text = "[]";
  node = tocsin_json_parse (text, strlen (text), TOCSIN_REQUEST_MAX_SOURCE * MAX (max, 1),
                            TOCSIN_REQUEST_MAX_DEPTH * 2 + 8, error);
  if (node == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("“%s” must be an array of request definitions"), field);
      return NULL;
    }
  return tocsin_request_list_new (field, json_node_get_array (node), max, error);
}
