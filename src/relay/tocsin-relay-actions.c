/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-actions.c: a message's action buttons on the relay (docs/actions.md).
 *
 * Two sources, one result (TocsinMessageAction in TocsinMessage.actions, encoded by
 * tocsin-message.c):
 *   - a channel's "actions": request definitions (tocsin-request.h) of kind view or http for the
 *     message event, checked when the channel is saved (normalise), compiled when it is loaded,
 *     rendered per message by the ingest (tocsin-relay-ingest.c) over the message's variables;
 *   - a sender's own, ntfy's "actions" (tocsin-relay-compat.c parses and checks them as ntfy
 *     does): view and http become message actions; broadcast sends an Android intent, which a
 *     desktop has no use for, and is dropped.
 *
 * A definition that fails to render drops that one action: the message still rings, and the log
 * says which action of which channel and why, never with a variable's value (sentences from the
 * request model name fields and positions only).
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-json.h"
#include "tocsin-relay-actions.h"

/* A channel's definitions are at most three of TOCSIN_REQUEST_MAX_SOURCE bytes each. Nesting is
 * bounded as for any peer JSON; the request model then says which definition is too deep. */
#define MAX_JSON_BYTES ((TOCSIN_REQUEST_MAX_ACTIONS + 1) * TOCSIN_REQUEST_MAX_SOURCE)
#define MAX_JSON_DEPTH TOCSIN_JSON_DEFAULT_MAX_DEPTH
/* A label is plain text of 1 to 64 characters (tocsin-message.h). */
#define MAX_LABEL 64

gboolean
tocsin_relay_actions_spec_member (JsonObject  *spec,
                                  char       **json,
                                  GError     **error)
{
  JsonNode *node;

  g_return_val_if_fail (spec != NULL && json != NULL, FALSE);

  *json = NULL;
  node = json_object_get_member (spec, "actions");
  if (node == NULL)
    return TRUE;
  if (JSON_NODE_HOLDS_NULL (node))
    {
      *json = g_strdup ("[]");
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("“actions” must be an array of action definitions (see docs/actions.md)"));
      return FALSE;
    }
  *json = tocsin_json_to_string (node, FALSE);
  return TRUE;
}

char *
tocsin_relay_actions_read_file (const char  *path,
                                GError     **error)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) local_error = NULL;
  gsize length = 0;

  g_return_val_if_fail (path != NULL, NULL);

  if (!g_file_get_contents (path, &text, &length, &local_error))
    {
      g_set_error (error, G_FILE_ERROR, local_error->code,
                   _("Could not read the actions file: %s"), local_error->message);
      return NULL;
    }
  if (length > MAX_JSON_BYTES)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("The actions file is larger than %u bytes"), (guint) MAX_JSON_BYTES);
      return NULL;
    }
  return g_steal_pointer (&text);
}

static GPtrArray *
compile (const char  *json,
         GError     **error)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GPtrArray) requests = NULL;

  root = tocsin_json_parse (json, strlen (json), MAX_JSON_BYTES, MAX_JSON_DEPTH, &local_error);
  if (root == NULL)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("actions: %s"), local_error->message);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_ARRAY (root))
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                   _("“actions” must be an array of action definitions (see docs/actions.md)"));
      return NULL;
    }
  requests = tocsin_request_list_new ("actions", json_node_get_array (root),
                                      TOCSIN_REQUEST_MAX_ACTIONS, error);
  if (requests == NULL)
    return NULL;
  /* Buttons are pressed on a message: an acknowledge request is a forward's business. */
  for (guint i = 0; i < requests->len; i++)
    if (tocsin_request_get_event (requests->pdata[i]) != TOCSIN_REQUEST_EVENT_MESSAGE)
      {
        g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID,
                     _("actions[%u].event: an action button is for the message event; "
                       "leave “event” out or use “message”"), i);
        return NULL;
      }
  return g_steal_pointer (&requests);
}

char *
tocsin_relay_actions_normalise (const char  *json,
                                GError     **error)
{
  g_autoptr(GPtrArray) requests = NULL;
  g_autoptr(JsonArray) array = NULL;
  g_autoptr(JsonNode) node = NULL;

  g_return_val_if_fail (json != NULL, NULL);

  requests = compile (json, error);
  if (requests == NULL)
    return NULL;
  array = tocsin_request_list_to_json (requests);
  node = json_node_new (JSON_NODE_ARRAY);
  json_node_set_array (node, array);
  return tocsin_json_to_string (node, FALSE);
}

GPtrArray *
tocsin_relay_actions_load (gint64      channel_id,
                           const char *json)
{
  g_autoptr(GError) error = NULL;
  GPtrArray *requests;

  if (json == NULL || *json == '\0' || g_str_equal (json, "[]"))
    return g_ptr_array_new_with_free_func ((GDestroyNotify) tocsin_request_unref);
  requests = compile (json, &error);
  if (requests == NULL)
    {
      g_message ("Channel %" G_GINT64_FORMAT ": its saved actions no longer compile, so its "
                 "messages carry none: %s", channel_id, error->message);
      return g_ptr_array_new_with_free_func ((GDestroyNotify) tocsin_request_unref);
    }
  return requests;
}

JsonArray *
tocsin_relay_actions_to_json (GPtrArray *actions)
{
  if (actions == NULL || actions->len == 0)
    return json_array_new ();
  return tocsin_request_list_to_json (actions);
}

/* @label cut to MAX_LABEL characters, or NULL when it is empty. */
static char *
label_from (const char *text)
{
  g_autofree char *valid = NULL;
  const char *end;

  if (text == NULL)
    return NULL;
  valid = g_utf8_make_valid (text, -1);
  /* A label is one line of plain text: control characters (a sender's \n) become spaces. */
  for (char *p = valid; *p; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      *p = ' ';
  g_strstrip (valid);
  if (*valid == '\0')
    return NULL;
  if (g_utf8_strlen (valid, -1) <= MAX_LABEL)
    return g_steal_pointer (&valid);
  end = g_utf8_offset_to_pointer (valid, MAX_LABEL);
  return g_strndup (valid, end - valid);
}

static TocsinMessageAction *
action_new (const char *kind,
            const char *label,
            const char *url)
{
  TocsinMessageAction *action = g_new0 (TocsinMessageAction, 1);

  action->kind = g_strdup (kind);
  action->label = label_from (label);
  action->url = g_strdup (url);
  return action;
}

/* TRUE when @action is what every subscriber decodes (tocsin-message.c is the one home of the
 * wire's rules: labels without control characters, header names that are HTTP tokens, values
 * without line breaks, bodies within the request model's bound, …): it is checked by encoding
 * it in a message and decoding that, so the relay never stores a message a desktop refuses. */
static gboolean
is_deliverable (const TocsinMessageAction  *action,
                char                      **reason)
{
  g_autoptr(TocsinMessage) message = tocsin_message_new ();
  g_autoptr(TocsinMessage) decoded = NULL;
  g_autoptr(JsonObject) object = NULL;
  g_autoptr(GError) error = NULL;

  message->id = 1;
  message->channel = 1;
  message->time_ms = g_get_real_time () / 1000;
  g_ptr_array_add (message->actions, tocsin_relay_action_copy (action));
  object = tocsin_message_to_json_object (message);
  decoded = tocsin_message_new_from_json_object (object, &error);
  if (decoded == NULL && reason != NULL)
    *reason = g_strdup (error->message);
  return decoded != NULL && decoded->actions->len == 1;
}

TocsinMessageAction *
tocsin_relay_action_render (TocsinRequest        *request,
                            TocsinTemplateScope  *scope,
                            GError              **error)
{
  g_autoptr(TocsinRenderedRequest) rendered = NULL;
  g_autofree char *reason_text = NULL;
  TocsinMessageAction *action;
  const char *reason = NULL;

  g_return_val_if_fail (request != NULL && scope != NULL, NULL);

  if (!tocsin_request_applies (request, scope))
    {
      /* A condition over its budget is not "false": the owner must simplify it. */
      tocsin_template_scope_check (scope, error);
      return NULL;
    }
  rendered = tocsin_request_render (request, scope, error);
  if (rendered == NULL)
    return NULL;

  if (tocsin_request_get_kind (request) == TOCSIN_REQUEST_KIND_VIEW)
    {
      if (!tocsin_link_is_safe (rendered->url, &reason))
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_RENDER,
                       _("%s: the url is not a safe link (%s)"),
                       tocsin_request_get_name (request), reason);
          return NULL;
        }
      action = action_new ("view", tocsin_request_get_name (request), rendered->url);
      goto check;
    }

  action = action_new ("http", tocsin_request_get_name (request), rendered->url);
  action->method = g_strdup (rendered->method);
  action->headers = g_strdupv (rendered->headers);
  action->retry = rendered->policy == TOCSIN_REQUEST_POLICY_RETRY;
  if (rendered->body != NULL && g_bytes_get_size (rendered->body) > 0)
    {
      gsize size = 0;
      const char *data = g_bytes_get_data (rendered->body, &size);

      /* The wire carries the body as text; a hash parameter is hex, so only a raw body can
       * hold bytes that are not UTF-8. */
      if (memchr (data, '\0', size) != NULL || !g_utf8_validate (data, size, NULL))
        {
          g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_RENDER,
                       _("%s: the body is not UTF-8 text"), tocsin_request_get_name (request));
          tocsin_message_action_free (action);
          return NULL;
        }
      action->body = g_strndup (data, size);
    }

check:
  if (!is_deliverable (action, &reason_text))
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_RENDER,
                   _("%s: subscribers could not take it: %s"), tocsin_request_get_name (request),
                   reason_text);
      tocsin_message_action_free (action);
      return NULL;
    }
  return action;
}

static gboolean
is_method (const char *method)
{
  static const char * const methods[] = { "GET", "POST", "PUT", "DELETE", NULL };

  return g_strv_contains (methods, method);
}

/* ntfy's "headers" object as name, value, …, NULL into *headers (NULL when there are none).
 * FALSE when a value is not a string: the request could not be sent as the sender meant it. */
static gboolean
ntfy_headers (JsonObject   *action,
              char       ***headers)
{
  JsonNode *node = json_object_get_member (action, "headers");
  g_autoptr(GStrvBuilder) builder = NULL;
  g_autoptr(GList) names = NULL;
  JsonObject *object;

  *headers = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return FALSE;
  object = json_node_get_object (node);
  if (json_object_get_size (object) == 0)
    return TRUE;
  builder = g_strv_builder_new ();
  names = json_object_get_members (object);
  for (GList *l = names; l != NULL; l = l->next)
    {
      const char *value = tocsin_json_get_string (object, l->data, NULL);

      if (value == NULL)
        return FALSE;
      g_strv_builder_add (builder, l->data);
      g_strv_builder_add (builder, value);
    }
  *headers = g_strv_builder_end (builder);
  return TRUE;
}

/* ntfy's "clear" (the compatibility layer made it a boolean; anything else is false). */
static gboolean
get_clear (JsonObject *action)
{
  JsonNode *node = json_object_get_member (action, "clear");

  return node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
         json_node_get_value_type (node) == G_TYPE_BOOLEAN && json_node_get_boolean (node);
}

/* Adds @action (taken) to @out when subscribers can decode it; else drops it. */
static void
add_if_deliverable (GPtrArray           *out,
                    TocsinMessageAction *action,
                    guint                index)
{
  g_autofree char *reason = NULL;

  if (is_deliverable (action, &reason))
    {
      g_ptr_array_add (out, action);
      return;
    }
  /* The reason names the rule, never the sender's text. */
  g_debug ("A sender's action %u cannot be delivered: dropped (%s)", index, reason);
  tocsin_message_action_free (action);
}

GPtrArray *
tocsin_relay_actions_from_ntfy (JsonArray *actions)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) tocsin_message_action_free);

  for (guint i = 0; actions != NULL && i < json_array_get_length (actions); i++)
    {
      JsonNode *node = json_array_get_element (actions, i);
      JsonObject *object;
      const char *verb, *label, *url;
      g_autofree char *method = NULL, *shown = NULL;
      TocsinMessageAction *action;

      if (out->len >= TOCSIN_REQUEST_MAX_ACTIONS)
        break;
      if (!JSON_NODE_HOLDS_OBJECT (node))
        continue;
      object = json_node_get_object (node);
      verb = tocsin_json_get_string (object, "action", "");
      label = tocsin_json_get_string (object, "label", "");
      url = tocsin_json_get_string (object, "url", "");
      if (g_ascii_strcasecmp (verb, "view") != 0 && g_ascii_strcasecmp (verb, "http") != 0)
        {
          g_debug ("A sender's action %u is “%s”, which only Android can run: dropped", i,
                   g_ascii_strcasecmp (verb, "broadcast") == 0 ? "broadcast" : "unknown");
          continue;
        }
      shown = label_from (label);
      if (!tocsin_link_is_safe (url, NULL) || shown == NULL)
        {
          g_debug ("A sender's action %u has no label or no safe http(s) URL: dropped", i);
          continue;
        }
      if (g_ascii_strcasecmp (verb, "view") == 0)
        {
          action = action_new ("view", label, url);
          action->clear = get_clear (object);
          add_if_deliverable (out, action, i);
          continue;
        }

      /* ntfy's http action: POST unless it says otherwise. */
      method = g_ascii_strup (tocsin_json_get_string (object, "method", "POST"), -1);
      if (*method == '\0')
        {
          g_free (method);
          method = g_strdup ("POST");
        }
      if (!is_method (method))
        {
          g_debug ("A sender's action %u uses a method other than GET, POST, PUT and DELETE: "
                   "dropped", i);
          continue;
        }
      action = action_new ("http", label, url);
      action->method = g_steal_pointer (&method);
      if (!ntfy_headers (object, &action->headers))
        {
          g_debug ("A sender's action %u has a header that is not a string: dropped", i);
          tocsin_message_action_free (action);
          continue;
        }
      if (*tocsin_json_get_string (object, "body", "") != '\0')
        action->body = g_strdup (tocsin_json_get_string (object, "body", ""));
      action->clear = get_clear (object);
      /* ntfy's apps press once and show the result: the "none" policy. */
      action->retry = FALSE;
      add_if_deliverable (out, action, i);
    }
  return out;
}

TocsinMessageAction *
tocsin_relay_action_copy (const TocsinMessageAction *action)
{
  TocsinMessageAction *copy;

  g_return_val_if_fail (action != NULL, NULL);

  copy = g_new0 (TocsinMessageAction, 1);
  copy->kind = g_strdup (action->kind);
  copy->label = g_strdup (action->label);
  copy->url = g_strdup (action->url);
  copy->method = g_strdup (action->method);
  copy->headers = g_strdupv (action->headers);
  copy->body = g_strdup (action->body);
  copy->retry = action->retry;
  copy->clear = action->clear;
  return copy;
}
