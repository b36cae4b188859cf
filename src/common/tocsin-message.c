/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-message"

#include "config.h"

#include <string.h>

#include "tocsin-json.h"
#include "tocsin-message.h"
#include "tocsin-request.h"

#define MAX_LINK_LENGTH 2048
/* An http action's headers: a definition's (TOCSIN_REQUEST_MAX_HEADERS) plus Content-Type, and
 * room for a sender's own (ntfy's "headers"). */
#define MAX_ACTION_HEADERS 32
#define MAX_ACTION_LABEL   64

G_DEFINE_QUARK (tocsin-message-error-quark, tocsin_message_error)

TocsinMessage *
tocsin_message_new (void)
{
  TocsinMessage *message = g_new0 (TocsinMessage, 1);

  message->title = g_strdup ("");
  message->body = g_strdup ("");
  message->vars = json_object_new ();
  message->actions = g_ptr_array_new_with_free_func ((GDestroyNotify) tocsin_message_action_free);
  return message;
}

void
tocsin_message_action_free (TocsinMessageAction *action)
{
  if (action == NULL)
    return;
  g_free (action->kind);
  g_free (action->label);
  g_free (action->url);
  g_free (action->method);
  g_strfreev (action->headers);
  g_free (action->body);
  g_free (action);
}

void
tocsin_message_free (TocsinMessage *message)
{
  if (message == NULL)
    return;
  g_free (message->channel_name);
  g_free (message->title);
  g_free (message->body);
  g_free (message->external_link);
  g_clear_pointer (&message->vars, json_object_unref);
  g_clear_pointer (&message->actions, g_ptr_array_unref);
  g_free (message);
}

static const char *const type_names[] = {
  [TOCSIN_MESSAGE_TYPE_DEFAULT] = NULL,
  [TOCSIN_MESSAGE_TYPE_ACTIVE] = "active",
  [TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE] = "time-sensitive",
  [TOCSIN_MESSAGE_TYPE_CALLING] = "calling",
};

const char *
tocsin_message_type_to_string (TocsinMessageType type)
{
  g_return_val_if_fail ((guint) type < G_N_ELEMENTS (type_names), NULL);
  return type_names[type];
}

gboolean
tocsin_message_type_from_string (const char        *name,
                                 TocsinMessageType *type)
{
  if (name == NULL || *name == '\0')
    {
      *type = TOCSIN_MESSAGE_TYPE_DEFAULT;
      return TRUE;
    }
  for (guint i = 1; i < G_N_ELEMENTS (type_names); i++)
    if (g_str_equal (name, type_names[i]))
      {
        *type = (TocsinMessageType) i;
        return TRUE;
      }
  return FALSE;
}

gboolean
tocsin_link_is_safe (const char *uri,
                     const char **reason)
{
  g_autoptr(GUri) parsed = NULL;
  const char *why = NULL;
  const char *scheme;

  if (uri == NULL || *uri == '\0')
    why = "the link is empty";
  else if (strlen (uri) > MAX_LINK_LENGTH)
    why = "the link is longer than 2048 bytes";
  else if (!g_utf8_validate (uri, -1, NULL))
    why = "the link is not valid UTF-8";
  else
    {
      for (const char *p = uri; *p && why == NULL; p++)
        if ((guchar) *p < 0x20 || *p == 0x7f || *p == ' ')
          why = "the link contains spaces or control characters";
      /* U+202E and its kin reorder what a person reads: "moc.knab//:sptth" */
      for (const char *p = uri; *p && why == NULL; p = g_utf8_next_char (p))
        {
          gunichar c = g_utf8_get_char (p);

          if (c == 0x061C || c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) ||
              (c >= 0x2066 && c <= 0x2069))
            why = "the link contains bidirectional control characters";
        }
    }

  if (why == NULL)
    {
      parsed = g_uri_parse (uri, G_URI_FLAGS_NONE, NULL);
      if (parsed == NULL)
        why = "the link is not a valid absolute URL";
    }

  if (why == NULL)
    {
      scheme = g_uri_get_scheme (parsed);
      if (g_ascii_strcasecmp (scheme, "http") != 0 && g_ascii_strcasecmp (scheme, "https") != 0)
        why = "only http and https links are delivered";
      else if (g_uri_get_host (parsed) == NULL || *g_uri_get_host (parsed) == '\0')
        why = "the link has no host";
      else if (g_uri_get_userinfo (parsed) != NULL)
        why = "links with a user name or password are not delivered";
    }

  if (reason)
    *reason = why;
  return why == NULL;
}

char *
tocsin_format_time_ms (gint64 unix_ms)
{
  g_autoptr(GDateTime) dt = NULL;
  g_autofree char *base = NULL;

  /* 1970 to 9999 (every time a relay or app stamps): the same text, without GDateTime's format
   * parser (this runs twice for every webhook). Days to a civil date: H. Hinnant's algorithm. */
  if (unix_ms >= 0 && unix_ms < G_GINT64_CONSTANT (253402300800000))
    {
      gint64 secs = unix_ms / 1000, days = secs / 86400, sod = secs % 86400;
      gint64 z = days + 719468, era = z / 146097, doe = z - era * 146097;
      gint64 yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
      gint64 doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
      int day = (int) (doy - (153 * mp + 2) / 5 + 1), month = (int) (mp < 10 ? mp + 3 : mp - 9);
      int year = (int) (yoe + era * 400 + (month <= 2));
      const int fields[] = { year, month, day, (int) (sod / 3600), (int) (sod / 60 % 60),
                             (int) (sod % 60), (int) (unix_ms % 1000) };
      const int widths[] = { 4, 2, 2, 2, 2, 2, 3 };
      const char seps[] = "--T::.Z";
      char *text = g_malloc (sizeof "YYYY-MM-DDTHH:MM:SS.mmmZ"), *p = text;

      for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
        {
          for (int w = widths[i], v = fields[i]; w > 0; w--, v /= 10)
            p[w - 1] = (char) ('0' + v % 10);
          p += widths[i];
          *p++ = seps[i];
        }
      *p = '\0';
      return text;
    }

  dt = g_date_time_new_from_unix_utc (unix_ms / 1000);
  if (dt == NULL)
    return g_strdup ("1970-01-01T00:00:00.000Z");
  base = g_date_time_format (dt, "%Y-%m-%dT%H:%M:%S");
  return g_strdup_printf ("%s.%03dZ", base, (int) (unix_ms % 1000));
}

gint64
tocsin_parse_time_ms (const char *rfc3339)
{
  g_autoptr(GDateTime) dt = NULL;

  if (rfc3339 == NULL)
    return 0;
  dt = g_date_time_new_from_iso8601 (rfc3339, NULL);
  if (dt == NULL)
    return 0;
  return g_date_time_to_unix (dt) * 1000 + g_date_time_get_microsecond (dt) / 1000;
}

static gboolean
get_int (JsonObject  *object,
         const char  *name,
         gboolean     required,
         gint64      *out,
         GError     **error)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      if (required)
        {
          g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                       "The message has no \"%s\"", name);
          return FALSE;
        }
      *out = 0;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    {
      g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                   "The message's \"%s\" is not an integer", name);
      return FALSE;
    }
  *out = json_node_get_int (node);
  if (*out < 0)
    {
      g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                   "The message's \"%s\" is negative", name);
      return FALSE;
    }
  return TRUE;
}

static gboolean
get_string (JsonObject  *object,
            const char  *name,
            gboolean     required,
            char       **out,
            GError     **error)
{
  JsonNode *node = json_object_get_member (object, name);
  const char *value;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      if (required)
        {
          g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                       "The message has no \"%s\"", name);
          return FALSE;
        }
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                   "The message's \"%s\" is not a string", name);
      return FALSE;
    }
  value = json_node_get_string (node);
  if (!g_utf8_validate (value, -1, NULL))
    {
      g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                   "The message's \"%s\" is not valid UTF-8", name);
      return FALSE;
    }
  g_free (*out);
  *out = g_strdup (value);
  return TRUE;
}

static const char *const action_methods[] = { "GET", "POST", "PUT", "DELETE", NULL };

/* A string member of an action: NULL *@problem when it is absent (and not @required) or a valid
 * UTF-8 string, else what is wrong. */
static const char *
action_string (JsonObject  *object,
               const char  *name,
               gboolean     required,
               char       **out)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return required ? "a member it needs is missing (kind, label and url are required)" : NULL;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return "a member that must be a string is not";
  if (!g_utf8_validate (json_node_get_string (node), -1, NULL))
    return "a member is not valid UTF-8";
  *out = g_strdup (json_node_get_string (node));
  return NULL;
}

/* One member of "actions" (docs/protocol.md). @index is 1-based, for the sentence. Unknown
 * members are left alone (a newer relay may add some); unknown kinds are refused, since the app
 * could not show what the sender meant. */
static TocsinMessageAction *
action_from_json (JsonNode  *node,
                  guint      index,
                  GError   **error)
{
  TocsinMessageAction *action;
  JsonObject *object;
  JsonNode *member;
  const char *reason = NULL;
  const char *problem = NULL;
  char *policy = NULL;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                   "The message's action %u is not an object", index);
      return NULL;
    }
  object = json_node_get_object (node);
  action = g_new0 (TocsinMessageAction, 1);
  if ((problem = action_string (object, "kind", TRUE, &action->kind)) == NULL &&
      (problem = action_string (object, "label", TRUE, &action->label)) == NULL)
    problem = action_string (object, "url", TRUE, &action->url);
  if (problem == NULL && !g_str_equal (action->kind, "view") && !g_str_equal (action->kind, "http"))
    problem = "its \"kind\" is not view or http";
  if (problem == NULL &&
      (*action->label == '\0' || g_utf8_strlen (action->label, -1) > MAX_ACTION_LABEL))
    problem = "its \"label\" is not 1 to 64 characters";
  if (problem == NULL)
    {
      for (const char *p = action->label; *p && problem == NULL; p++)
        if ((guchar) *p < 0x20 || *p == 0x7f)
          problem = "its \"label\" holds a control character";
    }

  member = json_object_get_member (object, "clear");
  if (problem == NULL && member != NULL && !JSON_NODE_HOLDS_NULL (member))
    {
      if (!JSON_NODE_HOLDS_VALUE (member) || json_node_get_value_type (member) != G_TYPE_BOOLEAN)
        problem = "its \"clear\" is not true or false";
      else
        action->clear = json_node_get_boolean (member);
    }

  if (problem == NULL && g_str_equal (action->kind, "view"))
    {
      if (!tocsin_link_is_safe (action->url, &reason))
        problem = reason;
    }
  else if (problem == NULL)
    {
      if ((problem = action_string (object, "method", FALSE, &action->method)) == NULL &&
          (problem = action_string (object, "body", FALSE, &action->body)) == NULL)
        problem = action_string (object, "policy", FALSE, &policy);
      if (problem != NULL)
        {
          /* said above */
        }
      else if (!tocsin_request_url_is_sendable (action->url, &reason))
        problem = reason;
      else if (action->method == NULL || !g_strv_contains (action_methods, action->method))
        problem = "its \"method\" is not GET, POST, PUT or DELETE";
      else if (action->body != NULL && strlen (action->body) > TOCSIN_REQUEST_MAX_BODY)
        problem = "its \"body\" is larger than 256 KiB";
      else if (policy != NULL && !g_str_equal (policy, "retry") && !g_str_equal (policy, "none"))
        problem = "its \"policy\" is not retry or none";
      else
        action->retry = g_strcmp0 (policy, "retry") == 0;

      member = json_object_get_member (object, "headers");
      if (problem == NULL && member != NULL && !JSON_NODE_HOLDS_NULL (member))
        {
          g_autoptr(GStrvBuilder) headers = g_strv_builder_new ();
          JsonObjectIter iter;
          const char *name;
          JsonNode *value;

          if (!JSON_NODE_HOLDS_OBJECT (member))
            problem = "its \"headers\" is not an object";
          else if (json_object_get_size (json_node_get_object (member)) > MAX_ACTION_HEADERS)
            problem = "it has more than 32 headers";
          else
            {
              json_object_iter_init_ordered (&iter, json_node_get_object (member));
              while (problem == NULL && json_object_iter_next_ordered (&iter, &name, &value))
                {
                  const char *text;

                  if (!JSON_NODE_HOLDS_VALUE (value) ||
                      json_node_get_value_type (value) != G_TYPE_STRING)
                    {
                      problem = "a header's value is not a string";
                      break;
                    }
                  text = json_node_get_string (value);
                  if (*name == '\0')
                    problem = "a header has no name";
                  for (const char *p = name; *p && problem == NULL; p++)
                    if (!g_ascii_isalnum (*p) && strchr ("!#$%&'*+-.^_`|~", *p) == NULL)
                      problem = "a header's name is not an HTTP token";
                  if (problem == NULL && !g_utf8_validate (text, -1, NULL))
                    problem = "a header's value is not valid UTF-8";
                  for (const char *p = text; *p && problem == NULL; p++)
                    if (((guchar) *p < 0x20 && *p != '\t') || *p == 0x7f)
                      problem = "a header's value holds a line break or control character";
                  g_strv_builder_add (headers, name);
                  g_strv_builder_add (headers, text);
                }
              if (problem == NULL)
                action->headers = g_strv_builder_end (headers);
            }
        }
    }
  g_free (policy);

  if (problem != NULL)
    {
      g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                   "The message's action %u was refused: %s", index, problem);
      tocsin_message_action_free (action);
      return NULL;
    }
  if (!g_str_equal (action->kind, "http"))
    {
      /* A view action is its url: nothing else of an http one is kept. */
      g_clear_pointer (&action->method, g_free);
      g_clear_pointer (&action->headers, g_strfreev);
      g_clear_pointer (&action->body, g_free);
      action->retry = FALSE;
    }
  return action;
}

static gboolean
actions_from_json (JsonObject     *object,
                   TocsinMessage  *message,
                   GError        **error)
{
  JsonNode *node = json_object_get_member (object, "actions");
  JsonArray *array;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                   "The message's \"actions\" is not an array");
      return FALSE;
    }
  array = json_node_get_array (node);
  if (json_array_get_length (array) > TOCSIN_REQUEST_MAX_ACTIONS)
    {
      g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                   "The message has more than %d actions", TOCSIN_REQUEST_MAX_ACTIONS);
      return FALSE;
    }
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      TocsinMessageAction *action = action_from_json (json_array_get_element (array, i), i + 1,
                                                      error);

      if (action == NULL)
        return FALSE;
      g_ptr_array_add (message->actions, action);
    }
  return TRUE;
}

/* The "actions" array, or NULL when there are none. Both encoders write this very tree, so
 * their bytes agree (tests/test-message.c, /message/encoding-matches-tree). */
static JsonArray *
actions_to_json (const TocsinMessage *message)
{
  JsonArray *array;

  if (message->actions == NULL || message->actions->len == 0)
    return NULL;
  array = json_array_new ();
  for (guint i = 0; i < message->actions->len; i++)
    {
      const TocsinMessageAction *action = g_ptr_array_index (message->actions, i);
      JsonObject *object = json_object_new ();
      gboolean http = g_strcmp0 (action->kind, "http") == 0;

      json_object_set_string_member (object, "kind", action->kind ? action->kind : "view");
      json_object_set_string_member (object, "label", action->label ? action->label : "");
      json_object_set_string_member (object, "url", action->url ? action->url : "");
      if (http)
        {
          json_object_set_string_member (object, "method",
                                         action->method ? action->method : "POST");
          if (action->headers != NULL && action->headers[0] != NULL)
            {
              JsonObject *headers = json_object_new ();

              for (guint j = 0; action->headers[j] != NULL && action->headers[j + 1] != NULL;
                   j += 2)
                if (!json_object_has_member (headers, action->headers[j]))
                  json_object_set_string_member (headers, action->headers[j],
                                                 action->headers[j + 1]);
              json_object_set_object_member (object, "headers", headers);
            }
          if (action->body != NULL)
            json_object_set_string_member (object, "body", action->body);
          json_object_set_string_member (object, "policy", action->retry ? "retry" : "none");
          json_object_set_boolean_member (object, "clear", action->clear);
        }
      else if (action->clear)
        json_object_set_boolean_member (object, "clear", TRUE);
      json_array_add_object_element (array, object);
    }
  return array;
}

TocsinMessage *
tocsin_message_new_from_json_object (JsonObject  *object,
                                     GError     **error)
{
  g_autoptr(TocsinMessage) message = tocsin_message_new ();
  g_autofree char *time = NULL;
  g_autofree char *type = NULL;
  JsonNode *vars;
  JsonNode *markdown;

  g_return_val_if_fail (object != NULL, NULL);

  if (!get_int (object, "id", TRUE, &message->id, error) ||
      !get_int (object, "channel", TRUE, &message->channel, error) ||
      !get_int (object, "replaces", FALSE, &message->replaces, error) ||
      !get_string (object, "channelName", FALSE, &message->channel_name, error) ||
      !get_string (object, "time", TRUE, &time, error) ||
      !get_string (object, "title", FALSE, &message->title, error) ||
      !get_string (object, "body", FALSE, &message->body, error) ||
      !get_string (object, "externalLink", FALSE, &message->external_link, error) ||
      !get_string (object, "notificationType", FALSE, &type, error))
    return NULL;

  if (!tocsin_message_type_from_string (type, &message->type))
    {
      g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                   "The message's \"notificationType\" is not active, time-sensitive or calling");
      return NULL;
    }
  markdown = json_object_get_member (object, "markdown");
  if (markdown != NULL && !JSON_NODE_HOLDS_NULL (markdown))
    {
      if (json_node_get_value_type (markdown) != G_TYPE_BOOLEAN)
        {
          g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                       "The message's \"markdown\" is not true or false");
          return NULL;
        }
      message->markdown = json_node_get_boolean (markdown);
    }

  message->time_ms = tocsin_parse_time_ms (time);
  if (message->time_ms <= 0)
    {
      g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                   "The message's \"time\" is not an RFC 3339 time");
      return NULL;
    }

  if (message->external_link != NULL)
    {
      const char *reason = NULL;

      if (!tocsin_link_is_safe (message->external_link, &reason))
        {
          g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_BAD_LINK,
                       "The message's link was refused: %s", reason);
          return NULL;
        }
    }

  vars = json_object_get_member (object, "vars");
  if (vars != NULL && !JSON_NODE_HOLDS_NULL (vars))
    {
      if (!JSON_NODE_HOLDS_OBJECT (vars))
        {
          g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                       "The message's \"vars\" is not an object");
          return NULL;
        }
      if (!tocsin_json_is_valid_text (vars, 128))
        {
          g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                       "The message's \"vars\" hold text that is not valid UTF-8, or nest too deep");
          return NULL;
        }
      g_clear_pointer (&message->vars, json_object_unref);
      message->vars = json_object_ref (json_node_get_object (vars));
    }

  if (!actions_from_json (object, message, error))
    return NULL;

  return g_steal_pointer (&message);
}

TocsinMessage *
tocsin_message_new_from_data (const char  *data,
                              gsize        length,
                              GError     **error)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) local_error = NULL;

  /* A peer's text: through the guarded parser (depth, size, UTF-8) before json-glib. */
  root = tocsin_json_parse (data, length, G_MAXSSIZE, 128, &local_error);
  if (root == NULL)
    {
      g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                   "The message is not valid JSON: %s", local_error->message);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID,
                   "The message is not a JSON object");
      return NULL;
    }
  return tocsin_message_new_from_json_object (json_node_get_object (root), error);
}

JsonObject *
tocsin_message_to_json_object (const TocsinMessage *message)
{
  JsonObject *object = json_object_new ();
  g_autofree char *time = tocsin_format_time_ms (message->time_ms);
  JsonArray *actions;

  json_object_set_int_member (object, "id", message->id);
  json_object_set_int_member (object, "channel", message->channel);
  if (message->channel_name)
    json_object_set_string_member (object, "channelName", message->channel_name);
  json_object_set_string_member (object, "time", time);
  json_object_set_string_member (object, "title", message->title ? message->title : "");
  json_object_set_string_member (object, "body", message->body ? message->body : "");
  if (message->external_link)
    json_object_set_string_member (object, "externalLink", message->external_link);
  json_object_set_object_member (object, "vars",
                                 message->vars ? json_object_ref (message->vars)
                                               : json_object_new ());
  if (message->replaces > 0)
    json_object_set_int_member (object, "replaces", message->replaces);
  if (message->type != TOCSIN_MESSAGE_TYPE_DEFAULT)
    json_object_set_string_member (object, "notificationType",
                                   tocsin_message_type_to_string (message->type));
  if (message->markdown)
    json_object_set_boolean_member (object, "markdown", TRUE);
  actions = actions_to_json (message);
  if (actions != NULL)
    json_object_set_array_member (object, "actions", actions);
  return object;
}

/* The bytes of tocsin_json_to_string() over tocsin_message_to_json_object(), member for member
 * and in the same order, written straight into one buffer: no JsonObject is built (a webhook's
 * message is encoded on every ingest, twice; see docs/performance.md, issue 17 item 2). */
char *
tocsin_message_to_data (const TocsinMessage *message,
                        gsize               *length)
{
  g_autofree char *time = tocsin_format_time_ms (message->time_ms);
  GString *out = g_string_sized_new (256);

  g_string_append (out, "{\"id\":");
  tocsin_json_append_int (out, message->id);
  g_string_append (out, ",\"channel\":");
  tocsin_json_append_int (out, message->channel);
  if (message->channel_name)
    {
      g_string_append (out, ",\"channelName\":");
      tocsin_json_append_string (out, message->channel_name);
    }
  g_string_append (out, ",\"time\":");
  tocsin_json_append_string (out, time);
  g_string_append (out, ",\"title\":");
  tocsin_json_append_string (out, message->title ? message->title : "");
  g_string_append (out, ",\"body\":");
  tocsin_json_append_string (out, message->body ? message->body : "");
  if (message->external_link)
    {
      g_string_append (out, ",\"externalLink\":");
      tocsin_json_append_string (out, message->external_link);
    }
  g_string_append (out, ",\"vars\":");
  if (message->vars)
    {
      g_autoptr(JsonNode) vars = json_node_init_object (json_node_alloc (), message->vars);

      tocsin_json_append_node (out, vars);
    }
  else
    g_string_append (out, "{}");
  if (message->replaces > 0)
    {
      g_string_append (out, ",\"replaces\":");
      tocsin_json_append_int (out, message->replaces);
    }
  if (message->type != TOCSIN_MESSAGE_TYPE_DEFAULT)
    {
      g_string_append (out, ",\"notificationType\":");
      tocsin_json_append_string (out, tocsin_message_type_to_string (message->type));
    }
  if (message->markdown)
    g_string_append (out, ",\"markdown\":true");
  if (message->actions != NULL && message->actions->len > 0)
    {
      g_autoptr(JsonNode) actions = json_node_new (JSON_NODE_ARRAY);

      json_node_take_array (actions, actions_to_json (message));
      g_string_append (out, ",\"actions\":");
      tocsin_json_append_node (out, actions);
    }
  g_string_append_c (out, '}');
  if (length)
    *length = out->len;
  return g_string_free (out, FALSE);
}
