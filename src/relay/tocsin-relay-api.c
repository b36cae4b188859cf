/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-api.c: the owner API under /v1/channels (docs/api.md).
 *
 * Creating a channel needs an open relay or an admin key (`tocsin-relay key create`); it returns
 * the channel's owner key once. Everything else about a channel needs its owner key (or an admin
 * key) as `Authorization: Bearer <key>`.
 *
 * The store calls here run on the main thread: they are single-row SQLite statements on a
 * WAL database, rare (people editing channels), and far shorter than a network round trip.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-relay-actions.h"
#include "tocsin-relay-body.h"
#include "tocsin-relay-api.h"
#include "tocsin-relay-forwards.h"
#include "tocsin-relay-hub.h"
#include "tocsin-relay-recent.h"
#include "tocsin-relay-signature.h"
#include "tocsin-relay-mail.h"
#include "tocsin-relay-server.h"
#include "tocsin-relay-store.h"

#define PREFIX "/v1/channels"

/* The bearer token of the Authorization header, or NULL. */
static const char *
get_bearer (SoupServerMessage *msg)
{
  const char *value;

  value = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                        "Authorization");
  if (value == NULL || g_ascii_strncasecmp (value, "Bearer ", 7) != 0)
    return NULL;
  value += 7;
  while (*value == ' ')
    value++;
  return *value ? value : NULL;
}

static void
method_not_allowed (SoupServerMessage *msg,
                    const char        *allow)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", allow);
  tocsin_relay_server_reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
                                   _("This method is not allowed here; see docs/api.md"));
}

/* Parses the request body as a JSON object of string fields into @spec (strings point into the
 * returned object). NULL with a reply already set on failure. */
static JsonObject *
read_spec (TocsinRelay            *relay,
           SoupServerMessage      *msg,
           TocsinRelayChannelSpec *spec)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  /* As tocsin-relay-server.c's guard: owner bodies may always take 64 KiB. */
  gsize max_bytes = MAX (relay->config.max_body, 64 * 1024);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) object = NULL;
  guint status = SOUP_STATUS_BAD_REQUEST;
  const char *type;
  gsize length;
  const char *data;

  if ((gsize) body->length > max_bytes)
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                                       _("The request body is too large"));
      return NULL;
    }
  type = soup_message_headers_get_content_type (soup_server_message_get_request_headers (msg),
                                                NULL);
  if (body->length > 0 && (type == NULL || g_ascii_strcasecmp (type, "application/json") != 0))
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE,
                                       _("Send the channel as application/json"));
      return NULL;
    }
  bytes = soup_message_body_flatten (body);
  data = g_bytes_get_data (bytes, &length);
  object = tocsin_relay_body_parse_channel_spec (data, length, max_bytes, spec, &status, &error);
  if (object == NULL)
    {
      tocsin_relay_server_reply_error (msg, status, error->message);
      return NULL;
    }
  return g_steal_pointer (&object);
}

/* The spec's "forwards" (issue 15): compiled here, so that a bad definition is a 400 with the
 * request model's sentence (it names the field and column), and stored normalised. FALSE with a
 * reply set on failure; *out (the JSON text) stays NULL when the spec does not change them. */
static gboolean
read_forwards (SoupServerMessage       *msg,
               JsonObject              *spec_object,
               TocsinRelayChannelSpec  *spec,
               char                   **out)
{
  JsonNode *node = json_object_get_member (spec_object, "forwards");
  g_autoptr(GPtrArray) compiled = NULL;
  g_autoptr(JsonArray) normalised = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_BAD_REQUEST,
                                       _("“forwards” must be an array of request definitions"));
      return FALSE;
    }
  compiled = tocsin_request_list_new ("forwards", json_node_get_array (node),
                                      TOCSIN_REQUEST_MAX_FORWARDS, &error);
  if (compiled == NULL)
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_BAD_REQUEST, error->message);
      return FALSE;
    }
  normalised = tocsin_request_list_to_json (compiled);
  root = json_node_init_array (json_node_alloc (), normalised);
  *out = json_to_string (root, FALSE);
  spec->forwards = *out;
  return TRUE;
}

static void
reply_store_error (SoupServerMessage *msg,
                   const GError      *error)
{
  guint status = SOUP_STATUS_INTERNAL_SERVER_ERROR;

  if (error->domain == TOCSIN_TEMPLATE_ERROR || error->domain == TOCSIN_RELAY_SIGNATURE_ERROR ||
      error->domain == TOCSIN_REQUEST_ERROR ||
      g_error_matches (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_INVALID))
    status = SOUP_STATUS_BAD_REQUEST;
  else if (g_error_matches (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND))
    status = SOUP_STATUS_NOT_FOUND;
  else
    g_message ("Owner API: %s", error->message);
  tocsin_relay_server_reply_error (msg, status, error->message);
}

static void
reply_channel (TocsinRelay        *relay,
               SoupServerMessage  *msg,
               guint               status,
               TocsinRelayChannel *channel,
               const char         *owner_key,
               const char         *signature_secret)
{
  g_autoptr(JsonObject) object = tocsin_relay_channel_to_owner_json (channel,
                                                                     relay->config.public_url);

  if (owner_key)
    json_object_set_string_member (object, "owner_key", owner_key);
  /* Shown this once, in the answer that made it. */
  if (signature_secret)
    json_object_set_string_member (object, "signature_secret", signature_secret);
  tocsin_relay_server_reply_json (msg, status, object);
}

static void
handle_collection (TocsinRelay       *relay,
                   SoupServerMessage *msg,
                   const char        *method,
                   const char        *key,
                   gboolean           admin)
{
  if (g_str_equal (method, "POST"))
    {
      TocsinRelayChannelSpec spec = { 0 };
      g_autoptr(JsonObject) spec_object = NULL;
      g_autoptr(TocsinRelayChannel) channel = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *owner_key = NULL;
      g_autofree char *location = NULL;
      g_autofree char *secret = NULL;
      g_autofree char *actions = NULL;
      g_autofree char *forwards = NULL;

      if (!admin && !relay->config.open_relay)
        {
          if (key == NULL)
            tocsin_relay_server_reply_error (msg, SOUP_STATUS_UNAUTHORIZED,
                                             _("This relay needs a key to create channels: "
                                               "Authorization: Bearer <key from “tocsin-relay "
                                               "key create”>"));
          else
            tocsin_relay_server_reply_error (msg, SOUP_STATUS_FORBIDDEN,
                                             _("This key may not create channels; use a key "
                                               "from “tocsin-relay key create”"));
          return;
        }
      spec_object = read_spec (relay, msg, &spec);
      if (spec_object == NULL)
        return;
      if (spec.name == NULL)
        {
          tocsin_relay_server_reply_error (msg, SOUP_STATUS_BAD_REQUEST,
                                           _("The channel needs a “name”"));
          return;
        }
      if (!tocsin_relay_actions_spec_member (spec_object, &actions, &error))
        {
          reply_store_error (msg, error);
          return;
        }
      spec.actions = actions;
      if (!read_forwards (msg, spec_object, &spec, &forwards))
        return;
      if (!tocsin_relay_signature_apply_spec (NULL, &spec, &secret, &error))
        {
          reply_store_error (msg, error);
          return;
        }
      channel = tocsin_relay_store_create_channel (relay->store, &spec, &owner_key, &error);
      if (channel == NULL)
        {
          reply_store_error (msg, error);
          return;
        }
      location = g_strdup_printf (PREFIX "/%" G_GINT64_FORMAT, channel->id);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Location",
                                    location);
      reply_channel (relay, msg, SOUP_STATUS_CREATED, channel, owner_key, secret);
      return;
    }

  if (g_str_equal (method, "GET"))
    {
      g_autoptr(JsonObject) reply = json_object_new ();
      JsonArray *array = json_array_new ();
      g_autoptr(GError) error = NULL;

      json_object_set_array_member (reply, "channels", array);
      if (admin)
        {
          g_autoptr(GPtrArray) channels = tocsin_relay_store_list_channels (relay->store, &error);

          if (channels == NULL)
            {
              reply_store_error (msg, error);
              return;
            }
          for (guint i = 0; i < channels->len; i++)
            json_array_add_object_element (array,
                                           tocsin_relay_channel_to_owner_json (channels->pdata[i],
                                                                               relay->config.public_url));
        }
      else
        {
          g_autoptr(TocsinRelayChannel) own = key ? tocsin_relay_store_find_by_owner_key (relay->store, key)
                                                  : NULL;

          if (own == NULL)
            {
              tocsin_relay_server_reply_error (msg, SOUP_STATUS_UNAUTHORIZED,
                                               _("Listing channels needs an owner or admin key: "
                                                 "Authorization: Bearer <key>"));
              return;
            }
          json_array_add_object_element (array,
                                         tocsin_relay_channel_to_owner_json (own,
                                                                             relay->config.public_url));
        }
      tocsin_relay_server_reply_json (msg, SOUP_STATUS_OK, reply);
      return;
    }

  method_not_allowed (msg, "GET, POST");
}

static void
handle_channel (TocsinRelay       *relay,
                SoupServerMessage *msg,
                const char        *method,
                gint64             id,
                const char        *action)
{
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(GError) error = NULL;

  if (action == NULL)
    {
      if (g_str_equal (method, "GET"))
        {
          channel = tocsin_relay_store_find_by_id (relay->store, id);
          if (channel == NULL)
            tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND,
                                             _("There is no such channel"));
          else
            reply_channel (relay, msg, SOUP_STATUS_OK, channel, NULL, NULL);
        }
      else if (g_str_equal (method, "PATCH"))
        {
          TocsinRelayChannelSpec spec = { 0 };
          g_autoptr(JsonObject) spec_object = read_spec (relay, msg, &spec);
          g_autoptr(TocsinRelayChannel) current = NULL;
          g_autofree char *secret = NULL;
          g_autofree char *actions = NULL;
          g_autofree char *forwards = NULL;

          if (spec_object == NULL || !read_forwards (msg, spec_object, &spec, &forwards))
            return;
          if (!tocsin_relay_actions_spec_member (spec_object, &actions, &error))
            {
              reply_store_error (msg, error);
              return;
            }
          spec.actions = actions;
          current = tocsin_relay_store_find_by_id (relay->store, id);
          if (current == NULL)
            {
              tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND,
                                               _("There is no such channel"));
              return;
            }
          /* A direct inbox's messages are what its sender says, with no templates to render
           * buttons from (tocsin-relay-direct.c). */
          if (current->direct && actions != NULL && !g_str_equal (actions, "[]"))
            {
              tocsin_relay_server_reply_error (msg, SOUP_STATUS_BAD_REQUEST,
                                               _("A Direct key's inbox has no action buttons: "
                                                 "put them on a channel"));
              return;
            }
          if (!tocsin_relay_signature_apply_spec (current, &spec, &secret, &error))
            {
              reply_store_error (msg, error);
              return;
            }
          channel = tocsin_relay_store_update_channel (relay->store, id, &spec, &error);
          if (channel == NULL)
            reply_store_error (msg, error);
          else
            reply_channel (relay, msg, SOUP_STATUS_OK, channel, NULL, secret);
        }
      else if (g_str_equal (method, "DELETE"))
        {
          g_autoptr(JsonObject) reply = json_object_new ();

          if (!tocsin_relay_store_delete_channel (relay->store, id, &error))
            {
              reply_store_error (msg, error);
              return;
            }
          if (relay->hub)
            tocsin_relay_hub_close_channel (relay->hub, id, "deleted");
          tocsin_relay_recent_forget (relay->recent, id);
          json_object_set_int_member (reply, "id", id);
          json_object_set_boolean_member (reply, "deleted", TRUE);
          tocsin_relay_server_reply_json (msg, SOUP_STATUS_OK, reply);
        }
      else
        method_not_allowed (msg, "GET, PATCH, DELETE");
      return;
    }

  if (g_str_equal (action, "rotate-email"))
    {
      if (!g_str_equal (method, "POST"))
        {
          method_not_allowed (msg, "POST");
          return;
        }
      channel = tocsin_relay_store_rotate_email (relay->store, id, &error);
      if (channel == NULL)
        reply_store_error (msg, error);
      else
        reply_channel (relay, msg, SOUP_STATUS_OK, channel, NULL, NULL);
      return;
    }

  if (g_str_equal (action, "rotate-trigger") || g_str_equal (action, "rotate-subscribe"))
    {
      gboolean trigger = g_str_equal (action, "rotate-trigger");

      if (!g_str_equal (method, "POST"))
        {
          method_not_allowed (msg, "POST");
          return;
        }
      channel = trigger ? tocsin_relay_store_rotate_trigger (relay->store, id, &error)
                        : tocsin_relay_store_rotate_subscribe (relay->store, id, &error);
      if (channel == NULL)
        {
          reply_store_error (msg, error);
          return;
        }
      /* Subscribers came in with the old token: it no longer admits them. */
      if (!trigger && relay->hub)
        tocsin_relay_hub_close_channel (relay->hub, id, "rotated");
      reply_channel (relay, msg, SOUP_STATUS_OK, channel, NULL, NULL);
      return;
    }

  if (g_str_equal (action, "rotate-signature"))
    {
      TocsinRelayChannelSpec spec = { .signature_secret = "generated" };
      g_autoptr(TocsinRelayChannel) current = NULL;
      g_autofree char *secret = NULL;

      if (!g_str_equal (method, "POST"))
        {
          method_not_allowed (msg, "POST");
          return;
        }
      current = tocsin_relay_store_find_by_id (relay->store, id);
      if (current == NULL)
        {
          tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND,
                                           _("There is no such channel"));
          return;
        }
      if (*current->signature_scheme == '\0')
        {
          tocsin_relay_server_reply_error (msg, SOUP_STATUS_CONFLICT,
                                           _("This channel takes unsigned webhooks: set a "
                                             "“signature” scheme first"));
          return;
        }
      if (!tocsin_relay_signature_apply_spec (current, &spec, &secret, &error) ||
          !(channel = tocsin_relay_store_update_channel (relay->store, id, &spec, &error)))
        {
          reply_store_error (msg, error);
          return;
        }
      reply_channel (relay, msg, SOUP_STATUS_OK, channel, NULL, secret);
      return;
    }

  if (g_str_equal (action, "webhooks"))
    {
      g_autoptr(JsonObject) reply = NULL;

      if (!g_str_equal (method, "GET"))
        {
          method_not_allowed (msg, "GET");
          return;
        }
      channel = tocsin_relay_store_find_by_id (relay->store, id);
      if (channel == NULL)
        {
          tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND,
                                           _("There is no such channel"));
          return;
        }
      reply = json_object_new ();
      json_object_set_int_member (reply, "id", id);
      json_object_set_array_member (reply, "webhooks",
                                    tocsin_relay_recent_list (relay->recent, id));
      tocsin_relay_server_reply_json (msg, SOUP_STATUS_OK, reply);
      return;
    }

  if (g_str_equal (action, "subscribers"))
    {
      g_autoptr(JsonObject) reply = NULL;
      JsonArray *subscribers;

      if (!g_str_equal (method, "GET"))
        {
          method_not_allowed (msg, "GET");
          return;
        }
      channel = tocsin_relay_store_find_by_id (relay->store, id);
      if (channel == NULL)
        {
          tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND,
                                           _("There is no such channel"));
          return;
        }
      if (relay->hub)
        subscribers = tocsin_relay_hub_list_subscribers (relay->hub, id);
      else
        subscribers = tocsin_relay_store_list_presence (relay->store, id, &error);
      if (subscribers == NULL)
        subscribers = json_array_new ();
      reply = json_object_new ();
      json_object_set_int_member (reply, "id", id);
      json_object_set_array_member (reply, "subscribers", subscribers);
      tocsin_relay_server_reply_json (msg, SOUP_STATUS_OK, reply);
      return;
    }

  tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND,
                                   _("There is nothing here; see docs/api.md"));
}

/* GET /v1/channels/{id}/deliveries?limit=N and POST …/deliveries/{delivery}/retry (issue 15). */
static void
handle_deliveries (TocsinRelay       *relay,
                   SoupServerMessage *msg,
                   const char        *method,
                   gint64             id,
                   const char        *delivery,
                   const char        *action,
                   gboolean           more)
{
  g_autoptr(TocsinRelayChannel) channel = tocsin_relay_store_find_by_id (relay->store, id);
  g_autoptr(GError) error = NULL;

  if (channel == NULL)
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND, _("There is no such channel"));
      return;
    }
  if (*delivery == '\0' && action == NULL)
    {
      g_autoptr(JsonObject) reply = NULL;
      const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
      g_autoptr(GHashTable) params = query ? g_uri_parse_params (query, -1, "&",
                                                                G_URI_PARAMS_NONE, NULL)
                                           : NULL;
      const char *limit_text = params ? g_hash_table_lookup (params, "limit") : NULL;
      gint64 limit = 100;

      if (!g_str_equal (method, "GET"))
        {
          method_not_allowed (msg, "GET");
          return;
        }
      if (limit_text != NULL)
        {
          char *end = NULL;

          limit = g_ascii_strtoll (limit_text, &end, 10);
          if (end == limit_text || *end != '\0' || limit < 1 || limit > 1000)
            {
              tocsin_relay_server_reply_error (msg, SOUP_STATUS_BAD_REQUEST,
                                               _("“limit” must be a number from 1 to 1000"));
              return;
            }
        }
      reply = tocsin_relay_store_list_deliveries (relay->store, id, (guint) limit, &error);
      if (reply == NULL)
        {
          reply_store_error (msg, error);
          return;
        }
      tocsin_relay_server_reply_json (msg, SOUP_STATUS_OK, reply);
      return;
    }
  if (action != NULL && g_str_equal (action, "retry") && !more)
    {
      g_autoptr(TocsinRelayDelivery) retried = NULL;
      g_autoptr(JsonObject) reply = NULL;
      char *end = NULL;
      gint64 delivery_id = g_ascii_strtoll (delivery, &end, 10);

      if (!g_str_equal (method, "POST"))
        {
          method_not_allowed (msg, "POST");
          return;
        }
      if (end == delivery || *end != '\0' || delivery_id <= 0)
        {
          tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND,
                                           _("There is no such delivery"));
          return;
        }
      if (relay->forwards == NULL)
        {
          tocsin_relay_server_reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
                                           _("This relay sends no forwards"));
          return;
        }
      retried = tocsin_relay_forwards_retry (relay->forwards, id, delivery_id, &error);
      if (retried == NULL)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BUSY))
            tocsin_relay_server_reply_error (msg, SOUP_STATUS_CONFLICT, error->message);
          else
            reply_store_error (msg, error);
          return;
        }
      reply = json_object_new ();
      json_object_set_object_member (reply, "delivery", tocsin_relay_delivery_to_json (retried));
      tocsin_relay_server_reply_json (msg, SOUP_STATUS_ACCEPTED, reply);
      return;
    }
  tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND,
                                   _("There is nothing here; see docs/api.md"));
}

void
tocsin_relay_api_handle (TocsinRelay       *relay,
                         SoupServerMessage *msg,
                         const char        *path)
{
  g_auto(GStrv) parts = NULL;
  const char *method, *key, *rest;
  gboolean admin;
  gint64 id;
  char *end = NULL;

  g_return_if_fail (relay != NULL);
  g_return_if_fail (SOUP_IS_SERVER_MESSAGE (msg));

  if (path == NULL)
    path = g_uri_get_path (soup_server_message_get_uri (msg));
  method = soup_server_message_get_method (msg);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Cache-Control", "no-store");

  if (!g_str_has_prefix (path, PREFIX))
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND,
                                       _("There is nothing here; see docs/api.md"));
      return;
    }
  rest = path + strlen (PREFIX);

  key = get_bearer (msg);
  admin = key != NULL && tocsin_relay_store_check_admin_key (relay->store, key);

  if (*rest == '\0' || g_str_equal (rest, "/"))
    {
      handle_collection (relay, msg, method, key, admin);
      return;
    }
  if (*rest != '/')
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND,
                                       _("There is nothing here; see docs/api.md"));
      return;
    }

  parts = g_strsplit (rest + 1, "/", 5);
  id = g_ascii_strtoll (parts[0], &end, 10);
  if (end == parts[0] || *end != '\0' || id <= 0 ||
      (parts[1] != NULL && parts[2] != NULL && !g_str_equal (parts[1], "deliveries")))
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND,
                                       _("There is no such channel"));
      return;
    }

  /* The owner key of this channel, or an admin key; an owner key manages its channel alone. */
  if (!admin)
    {
      g_autoptr(TocsinRelayChannel) own = NULL;

      if (key == NULL)
        {
          tocsin_relay_server_reply_error (msg, SOUP_STATUS_UNAUTHORIZED,
                                           _("This needs the channel's owner key: "
                                             "Authorization: Bearer <owner key>"));
          return;
        }
      own = tocsin_relay_store_find_by_owner_key (relay->store, key);
      if (own == NULL || own->id != id)
        {
          tocsin_relay_server_reply_error (msg, SOUP_STATUS_FORBIDDEN,
                                           _("This key does not manage that channel"));
          return;
        }
    }

  if (parts[1] != NULL && g_str_equal (parts[1], "deliveries"))
    {
      handle_deliveries (relay, msg, method, id, parts[2] ? parts[2] : "",
                         parts[2] && parts[3] ? parts[3] : NULL,
                         parts[2] && parts[3] && parts[4]);
      return;
    }
  handle_channel (relay, msg, method, id,
                  parts[1] != NULL && *parts[1] != '\0' ? parts[1] : NULL);
}

/* ---- views of a channel ---- */

JsonObject *
tocsin_relay_channel_to_public_json (TocsinRelayChannel *channel,
                                     const char         *public_url)
{
  JsonObject *object = json_object_new ();
  g_autofree char *subscribe = NULL, *ws = NULL;

  g_return_val_if_fail (channel != NULL, NULL);

  subscribe = g_strdup_printf ("%s/s/%s", public_url ? public_url : "", channel->subscribe_token);
  if (g_str_has_prefix (subscribe, "https:"))
    ws = g_strdup_printf ("wss:%s/ws", subscribe + strlen ("https:"));
  else if (g_str_has_prefix (subscribe, "http:"))
    ws = g_strdup_printf ("ws:%s/ws", subscribe + strlen ("http:"));
  else
    ws = g_strdup_printf ("%s/ws", subscribe);

  json_object_set_int_member (object, "id", channel->id);
  json_object_set_string_member (object, "name", channel->name);
  json_object_set_string_member (object, "description", channel->description);
  json_object_set_string_member (object, "title", channel->title_source);
  json_object_set_string_member (object, "body", channel->body_source);
  json_object_set_string_member (object, "link", channel->link_source);
  /* Not the condition: it decides what is sent, may compare with a shared secret, and a
   * subscriber needs none of it. */
  json_object_set_string_member (object, "subscribeUrl", subscribe);
  json_object_set_string_member (object, "websocketUrl", ws);
  return object;
}

JsonObject *
tocsin_relay_channel_to_owner_json (TocsinRelayChannel *channel,
                                    const char         *public_url)
{
  JsonObject *object = json_object_new ();
  g_autofree char *webhook = NULL, *subscribe = NULL, *created = NULL;

  g_return_val_if_fail (channel != NULL, NULL);

  if (public_url == NULL)
    public_url = "";
  /* A direct inbox rings at /d/ (tocsin-relay-direct.c); /t/ refuses its key. */
  webhook = g_strdup_printf ("%s/%s/%s", public_url, channel->direct ? "d" : "t",
                             channel->trigger_token);
  subscribe = g_strdup_printf ("%s/s/%s", public_url, channel->subscribe_token);
  created = tocsin_format_time_ms (channel->created_at * 1000);

  json_object_set_int_member (object, "id", channel->id);
  json_object_set_string_member (object, "name", channel->name);
  json_object_set_string_member (object, "description", channel->description);
  json_object_set_string_member (object, "title", channel->title_source);
  json_object_set_string_member (object, "body", channel->body_source);
  json_object_set_string_member (object, "link", channel->link_source);
  json_object_set_string_member (object, "condition", channel->condition_source);
  json_object_set_string_member (object, "trigger_token", channel->trigger_token);
  json_object_set_string_member (object, "subscribe_token", channel->subscribe_token);
  json_object_set_string_member (object, "webhook_url", webhook);
  json_object_set_string_member (object, "subscribe_url", subscribe);
  json_object_set_string_member (object, "created_at", created);
  json_object_set_int_member (object, "last_id", channel->last_id);
  json_object_set_string_member (object, "kind", channel->direct ? "direct" : "webhook");
  /* The scheme, never the secret (shown once, when it is made). */
  json_object_set_string_member (object, "signature",
                                 *channel->signature_scheme ? channel->signature_scheme : "none");
  if (*channel->signature_header)
    json_object_set_string_member (object, "signature_header", channel->signature_header);
  json_object_set_boolean_member (object, "paused", channel->paused);
  json_object_set_array_member (object, "actions", tocsin_relay_actions_to_json (channel->actions));
  json_object_set_array_member (object, "forwards",
                                tocsin_request_list_to_json (channel->forwards));
  {
    /* The email trigger's address: as secret as the webhook URL. */
    g_autofree char *email = channel->direct ? NULL : tocsin_relay_mail_address (channel);

    if (email != NULL)
      {
        json_object_set_string_member (object, "email_token", channel->email_token);
        json_object_set_string_member (object, "email_address", email);
      }
  }
  return object;
}

const char *
tocsin_relay_api_get_bearer (SoupServerMessage *msg)
{
  return get_bearer (msg);
}
