/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-ingest.c: /t/{trigger_token}, Echobell's webhook contract.
 *
 * GET takes the query's variables; POST and PUT also take a JSON object, a form or a text/plain
 * body (the body wins over the query on a clash). The channel's condition decides whether the
 * message goes anywhere; its templates render the title, body and link. The request is answered
 * once the message is committed to the store; it is then published to subscribers, right after
 * the answer is written.
 *
 * Nothing a sender sent (variables, headers, tokens) is ever logged.
 */
#define G_LOG_DOMAIN "tocsin-relay-ingest"

#include "config.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-json.h"
#include "tocsin-message.h"
#include "tocsin-token.h"
#include "tocsin-relay-handlers.h"
#include "tocsin-relay-hub.h"
#include "tocsin-relay-server.h"
#include "tocsin-relay-store.h"

static void reply_error_printf (SoupServerMessage *msg,
                                guint              status,
                                const char        *format,
                                ...) G_GNUC_PRINTF (3, 4);

static void
reply_error_printf (SoupServerMessage *msg,
                    guint              status,
                    const char        *format,
                    ...)
{
  g_autofree char *sentence = NULL;
  va_list args;

  va_start (args, format);
  sentence = g_strdup_vprintf (format, args);
  va_end (args);
  tocsin_relay_server_reply_error (msg, status, sentence);
}

/* json-glib parses recursively: bound the nesting before handing it a body. */
#define MAX_JSON_DEPTH 64

typedef struct
{
  TocsinRelay       *relay;
  SoupServerMessage *msg;
  gint64             channel_id;
  char              *title;
  char              *body;
  char              *link;
  const char        *link_dropped;  /* static reason */
  GPtrArray         *missing;
} Pending;

static void
pending_free (Pending *pending)
{
  g_clear_object (&pending->msg);
  g_free (pending->title);
  g_free (pending->body);
  g_free (pending->link);
  g_clear_pointer (&pending->missing, g_ptr_array_unref);
  g_free (pending);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Pending, pending_free)

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

/* Adds WWW-form pairs ("a=1&b=2") to @vars as strings. */
static gboolean
add_form_pairs (JsonObject  *vars,
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

/* Reads the body into @vars (or *body_text) according to its type. Sets *status and an error
 * sentence on failure. */
static gboolean
read_body (SoupServerMessage  *msg,
           GBytes             *bytes,
           JsonObject         *vars,
           char              **body_text,
           guint              *status,
           GError            **error)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
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

  return add_form_pairs (vars, data, length, _("body"), error);
}

/* The dedup key: the `eventId` variable (Skalin), else Idempotency-Key, else webhook-id
 * (Standard Webhooks). NULL when there is none. */
static char *
dedup_key (JsonObject         *vars,
           SoupMessageHeaders *headers)
{
  JsonNode *node = json_object_get_member (vars, "eventId");
  const char *header;

  if (node != NULL && JSON_NODE_HOLDS_VALUE (node))
    {
      GType type = json_node_get_value_type (node);

      if (type == G_TYPE_STRING && *json_node_get_string (node) != '\0')
        return g_strdup (json_node_get_string (node));
      if (type == G_TYPE_INT64)
        return g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (node));
    }
  header = soup_message_headers_get_one (headers, "Idempotency-Key");
  if (header == NULL || *header == '\0')
    header = soup_message_headers_get_one (headers, "webhook-id");
  if (header != NULL && *header != '\0')
    return g_strdup (header);
  return NULL;
}

static void
add_scope_header (const char *name,
                  const char *value,
                  gpointer    user_data)
{
  g_autofree char *lower = g_ascii_strdown (name, -1);

  tocsin_template_scope_add_header (user_data, lower, value);
}

static JsonArray *
missing_to_json (GPtrArray *missing)
{
  JsonArray *array = json_array_new ();
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < missing->len; i++)
    if (g_hash_table_add (seen, missing->pdata[i]))
      json_array_add_string_element (array, missing->pdata[i]);
  return array;
}

static void
set_rate_headers (SoupServerMessage *msg,
                  TocsinRelay       *relay,
                  guint              remaining,
                  guint              reset)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  guint burst = MAX (relay->config.rate_burst, 1);
  double rate = relay->config.rate_per_second > 0 ? relay->config.rate_per_second : 1;
  g_autofree char *policy = NULL, *state = NULL;

  /* draft-ietf-httpapi-ratelimit-headers: a quota of `burst` over the time the bucket takes
   * to refill from empty. */
  policy = g_strdup_printf ("\"burst\";q=%u;w=%u", burst, MAX (1u, (guint) (burst / rate + 0.999)));
  state = g_strdup_printf ("\"burst\";r=%u;t=%u", remaining, reset);
  soup_message_headers_replace (headers, "RateLimit-Policy", policy);
  soup_message_headers_replace (headers, "RateLimit", state);
}

static void
commit_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(Pending) pending = user_data;
  g_autoptr(TocsinRelayCommit) commit = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) reply = NULL;

  commit = tocsin_relay_store_commit_finish (pending->relay->store, result, &error);
  if (commit == NULL)
    {
      if (g_error_matches (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND))
        tocsin_relay_server_reply_error (pending->msg, SOUP_STATUS_NOT_FOUND,
                                 _("The channel was deleted while this webhook arrived"));
      else
        {
          g_message ("Could not store a message for channel %" G_GINT64_FORMAT ": %s",
                     pending->channel_id, error->message);
          /* 503, not 500: the store failing (a full disk, an I/O error) is the relay's
           * condition, not the request's, and the same webhook may well succeed later. */
          soup_message_headers_replace (soup_server_message_get_response_headers (pending->msg),
                                        "Retry-After", "30");
          tocsin_relay_server_reply_error (pending->msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
                                           _("The relay could not store the message (its disk "
                                             "may be full); nothing was stored, try again "
                                             "later"));
        }
      soup_server_message_unpause (pending->msg);
      return;
    }

  reply = json_object_new ();
  json_object_set_int_member (reply, "id", commit->id);
  json_object_set_int_member (reply, "channel", pending->channel_id);
  json_object_set_string_member (reply, "title", pending->title);
  json_object_set_string_member (reply, "body", pending->body);
  if (pending->link)
    json_object_set_string_member (reply, "externalLink", pending->link);
  if (pending->link_dropped)
    json_object_set_string_member (reply, "linkDropped", pending->link_dropped);
  if (commit->replaces > 0)
    json_object_set_int_member (reply, "replaces", commit->replaces);
  if (commit->duplicate)
    json_object_set_boolean_member (reply, "duplicate", TRUE);
  json_object_set_array_member (reply, "missing", missing_to_json (pending->missing));
  tocsin_relay_server_reply_json (pending->msg, SOUP_STATUS_OK, reply);
  soup_server_message_unpause (pending->msg);

  /* Durable now: subscribers may see it. A duplicate went out the first time. The answer
   * first: unpausing queues libsoup's write at default priority, and publish_soon queues the
   * fan-out behind it, so the sender never waits for thousands of frames. */
  if (!commit->duplicate && pending->relay->hub != NULL)
    tocsin_relay_hub_publish_soon (pending->relay->hub, pending->channel_id, commit->id,
                                   commit->message);
}

void
tocsin_relay_ingest_handle (TocsinRelay       *relay,
                            SoupServerMessage *msg,
                            const char        *token)
{
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(JsonObject) vars = NULL;
  g_autoptr(TocsinTemplateScope) scope = NULL;
  g_autoptr(GPtrArray) missing = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(TocsinMessage) message = NULL;
  g_autofree char *body_text = NULL;
  g_autofree char *key = NULL, *key_hash = NULL, *content_hash = NULL;
  g_autofree char *title = NULL, *body = NULL, *link = NULL;
  const char *link_dropped = NULL;
  SoupMessageHeaders *headers;
  SoupMessageBody *request_body;
  const char *method, *query;
  guint remaining = 0, reset = 0, retry_after = 0;
  gboolean has_body;
  Pending *pending;

  g_return_if_fail (relay != NULL);
  g_return_if_fail (SOUP_IS_SERVER_MESSAGE (msg));

  method = soup_server_message_get_method (msg);
  headers = soup_server_message_get_request_headers (msg);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Cache-Control", "no-store");

  if (!g_str_equal (method, "GET") && !g_str_equal (method, "POST") &&
      !g_str_equal (method, "PUT"))
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Allow", "GET, POST, PUT");
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
                               _("Webhooks take GET, POST or PUT"));
      return;
    }

  /* The same work whether the token is known or not (see find_by_token). */
  channel = tocsin_relay_store_find_by_trigger (relay->store, token);
  if (channel == NULL)
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND,
                               _("No channel has this webhook URL; check the token (it may have "
                                 "been rotated)"));
      return;
    }

  request_body = soup_server_message_get_request_body (msg);
  has_body = !g_str_equal (method, "GET") && request_body->length > 0;
  if (has_body && (gsize) request_body->length > relay->config.max_body)
    {
      g_autofree char *limit = g_format_size_full (relay->config.max_body, G_FORMAT_SIZE_IEC_UNITS);

      reply_error_printf (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                                      _("The body is larger than this relay takes (%s)"), limit);
      return;
    }

  if (!tocsin_relay_store_take_rate_token (relay->store, channel->id,
                                           relay->config.rate_per_second,
                                           relay->config.rate_burst, g_get_monotonic_time (),
                                           &remaining, &reset, &retry_after))
    {
      g_autofree char *retry = g_strdup_printf ("%u", retry_after);

      set_rate_headers (msg, relay, remaining, reset);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Retry-After", retry);
      reply_error_printf (msg, 429,
                          g_dngettext (GETTEXT_PACKAGE,
                                       "This channel takes webhooks faster than its limit; retry "
                                       "in %u second",
                                       "This channel takes webhooks faster than its limit; retry "
                                       "in %u seconds", retry_after),
                          retry_after);
      /* libsoup 3.2 has no phrase for 429. */
      soup_server_message_set_status (msg, 429, "Too Many Requests");
      return;
    }
  set_rate_headers (msg, relay, remaining, reset);

  vars = json_object_new ();
  query = g_uri_get_query (soup_server_message_get_uri (msg));
  if (query != NULL && *query != '\0' &&
      !add_form_pairs (vars, query, -1, _("query string"), &error))
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_BAD_REQUEST, error->message);
      return;
    }

  if (has_body)
    {
      guint status = SOUP_STATUS_BAD_REQUEST;

      bytes = soup_message_body_flatten (request_body);
      if (!read_body (msg, bytes, vars, &body_text, &status, &error))
        {
          tocsin_relay_server_reply_error (msg, status, error->message);
          return;
        }
    }

  scope = tocsin_template_scope_new (vars, NULL);
  soup_message_headers_foreach (headers, add_scope_header, scope);
  if (body_text)
    tocsin_template_scope_set_body_text (scope, body_text);
  missing = g_ptr_array_new_with_free_func (g_free);

  /* Over its work budget, a condition is not "filtered": the check below refuses it. */
  if (!tocsin_template_evaluate (channel->condition, scope, missing) &&
      tocsin_template_scope_check (scope, NULL))
    {
      g_autoptr(JsonObject) reply = json_object_new ();

      json_object_set_boolean_member (reply, "filtered", TRUE);
      json_object_set_int_member (reply, "channel", channel->id);
      json_object_set_array_member (reply, "missing", missing_to_json (missing));
      tocsin_relay_server_reply_json (msg, SOUP_STATUS_OK, reply);
      return;
    }

  title = tocsin_template_render (channel->title, scope, missing);
  if (tocsin_template_is_empty (channel->title))
    {
      g_free (title);
      title = g_strdup (channel->name);
    }
  body = tocsin_template_render (channel->body, scope, missing);

  /* A link template wins; without one, the `externalLink` variable is the link (Echobell). */
  if (!tocsin_template_is_empty (channel->link))
    link = tocsin_template_render (channel->link, scope, missing);
  else
    {
      JsonNode *node = json_object_get_member (vars, "externalLink");

      if (node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
          json_node_get_value_type (node) == G_TYPE_STRING)
        link = g_strdup (json_node_get_string (node));
    }
  if (link != NULL && *g_strstrip (link) == '\0')
    g_clear_pointer (&link, g_free);
  if (link != NULL && !tocsin_link_is_safe (link, &link_dropped))
    g_clear_pointer (&link, g_free);

  /* A template over its work budget (docs/templates.md): its owner must simplify it. */
  if (!tocsin_template_scope_check (scope, &error))
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, error->message);
      return;
    }

  key = dedup_key (vars, headers);
  if (key != NULL)
    {
      g_autoptr(JsonNode) node = json_node_new (JSON_NODE_OBJECT);
      g_autofree char *canonical = NULL;

      key_hash = tocsin_token_hash (key);
      json_node_set_object (node, vars);
      canonical = tocsin_json_to_string (node, FALSE);
      content_hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, canonical, -1);
    }

  message = tocsin_message_new ();
  message->channel = channel->id;
  message->channel_name = g_strdup (channel->name);
  message->time_ms = g_get_real_time () / 1000;
  g_free (message->title);
  message->title = g_strdup (title);
  g_free (message->body);
  message->body = g_strdup (body);
  message->external_link = g_strdup (link);
  g_clear_pointer (&message->vars, json_object_unref);
  message->vars = json_object_ref (vars);

  pending = g_new0 (Pending, 1);
  pending->relay = relay;
  pending->msg = g_object_ref (msg);
  pending->channel_id = channel->id;
  pending->title = g_steal_pointer (&title);
  pending->body = g_steal_pointer (&body);
  pending->link = g_steal_pointer (&link);
  pending->link_dropped = link_dropped;
  pending->missing = g_steal_pointer (&missing);

  /* Held until the message is durable (commit_done). */
  soup_server_message_pause (msg);
  tocsin_relay_store_commit_async (relay->store, channel->id, g_steal_pointer (&message),
                                   key_hash, content_hash, commit_done, pending);
}
