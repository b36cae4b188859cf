/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-api.c: the owner API under /v1/channels (docs/api.md).
 *
 * Creating a channel needs an open relay or an admin key (`tocsin-relay key create`); it returns
 * the channel's owner key once. Everything else about a channel needs its owner key (or an admin
 * key) as `Authorization: Bearer <key>`.
 *
 * The store calls here run off the main loop (issue 16: the relay never waits on the database
 * there): tocsin_relay_api_handle() copies what it needs of the request into an ApiCall,
 * pauses the request, and api_run() makes every store call of the request (the key checks and
 * the change) in one go on the store's writer thread, in order with the queued commits, or on
 * its reader thread for a GET. api_run() touches neither the request nor the hub: it leaves the
 * answer (a status and a JSON object) and what the main loop must do besides (close a channel's
 * subscribers, forget its recent webhooks, list what only the main loop knows) in the ApiCall,
 * and api_done() does that and answers. A client sees the same answers as before.
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

/* What the main loop must do once the store's thread is done, beyond answering. */
typedef enum
{
  THEN_ANSWER,
  THEN_WEBHOOKS,      /* list the channel's recent webhooks (tocsin-relay-recent.c) */
  THEN_SUBSCRIBERS,   /* list who is connected (the hub) */
  THEN_RETRY,         /* the forwards sender's "retry now" */
} Then;

/* One request to the owner API, from the main loop to the store's thread and back. */
typedef struct
{
  TocsinRelay       *relay;          /* borrowed */
  SoupServerMessage *msg;            /* a reference; only the main loop touches it */

  /* The request, copied on the main loop */
  char              *method;
  char              *path;
  char              *key;
  char              *query;
  char              *content_type;
  GBytes            *body;

  /* The answer, made on the store's thread */
  guint              status;
  JsonObject        *reply;
  char              *allow;          /* the Allow header of a 405 */
  char              *location;       /* the Location header of a 201 */
  Then               then;
  gint64             id;
  const char        *close_reason;   /* close the channel's subscribers, saying this */
  gboolean           forget;         /* forget the channel's recent webhooks */
  JsonArray         *presence;       /* THEN_SUBSCRIBERS without a hub: the store's */
  gint64             delivery_id;    /* THEN_RETRY */
} ApiCall;

static void
api_call_free (ApiCall *call)
{
  g_clear_object (&call->msg);
  g_free (call->method);
  g_free (call->path);
  if (call->key)
    explicit_bzero (call->key, strlen (call->key));
  g_free (call->key);
  g_free (call->query);
  g_free (call->content_type);
  g_clear_pointer (&call->body, g_bytes_unref);
  g_clear_pointer (&call->reply, json_object_unref);
  g_free (call->allow);
  g_free (call->location);
  g_clear_pointer (&call->presence, json_array_unref);
  g_free (call);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ApiCall, api_call_free)

/* As tocsin_relay_server_reply_json(), kept for api_done(). */
static void
call_json (ApiCall    *call,
           guint       status,
           JsonObject *object)
{
  g_clear_pointer (&call->reply, json_object_unref);
  call->status = status;
  call->reply = json_object_ref (object);
}

/* As tocsin_relay_server_reply_error(). */
static void
call_error (ApiCall    *call,
            guint       status,
            const char *sentence)
{
  g_autoptr(JsonObject) object = json_object_new ();

  json_object_set_string_member (object, "error", sentence);
  call_json (call, status, object);
}

static void
method_not_allowed (ApiCall    *call,
                    const char *allow)
{
  g_free (call->allow);
  call->allow = g_strdup (allow);
  call_error (call, SOUP_STATUS_METHOD_NOT_ALLOWED,
              _("This method is not allowed here; see docs/api.md"));
}

/* Parses the request body as a JSON object of string fields into @spec (strings point into the
 * returned object). NULL with a reply already set on failure. */
static JsonObject *
read_spec (TocsinRelay            *relay,
           ApiCall                *call,
           TocsinRelayChannelSpec *spec)
{
  gsize body_length = call->body ? g_bytes_get_size (call->body) : 0;
  /* As tocsin-relay-server.c's guard: owner bodies may always take 64 KiB. */
  gsize max_bytes = MAX (relay->config.max_body, 64 * 1024);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) object = NULL;
  guint status = SOUP_STATUS_BAD_REQUEST;
  const char *type = call->content_type;
  gsize length = 0;
  const char *data = call->body ? g_bytes_get_data (call->body, &length) : "";

  if (body_length > max_bytes)
    {
      call_error (call, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                  _("The request body is too large"));
      return NULL;
    }
  if (body_length > 0 && (type == NULL || g_ascii_strcasecmp (type, "application/json") != 0))
    {
      call_error (call, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE,
                  _("Send the channel as application/json"));
      return NULL;
    }
  object = tocsin_relay_body_parse_channel_spec (data, length, max_bytes, spec, &status, &error);
  if (object == NULL)
    {
      call_error (call, status, error->message);
      return NULL;
    }
  return g_steal_pointer (&object);
}

/* The spec's "forwards" (issue 15): compiled here, so that a bad definition is a 400 with the
 * request model's sentence (it names the field and column), and stored normalised. FALSE with a
 * reply set on failure; *out (the JSON text) stays NULL when the spec does not change them. */
static gboolean
read_forwards (ApiCall                 *call,
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
      call_error (call, SOUP_STATUS_BAD_REQUEST,
                  _("“forwards” must be an array of request definitions"));
      return FALSE;
    }
  compiled = tocsin_request_list_new ("forwards", json_node_get_array (node),
                                      TOCSIN_REQUEST_MAX_FORWARDS, &error);
  if (compiled == NULL)
    {
      call_error (call, SOUP_STATUS_BAD_REQUEST, error->message);
      return FALSE;
    }
  normalised = tocsin_request_list_to_json (compiled);
  root = json_node_init_array (json_node_alloc (), normalised);
  *out = json_to_string (root, FALSE);
  spec->forwards = *out;
  return TRUE;
}

static void
reply_store_error (ApiCall           *call,
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
  call_error (call, status, error->message);
}

static void
reply_channel (TocsinRelay        *relay,
               ApiCall            *call,
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
  call_json (call, status, object);
}

static void
handle_collection (TocsinRelay       *relay,
                   ApiCall           *call,
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
            call_error (call, SOUP_STATUS_UNAUTHORIZED,
                        _("This relay needs a key to create channels: "
                          "Authorization: Bearer <key from “tocsin-relay "
                          "key create”>"));
          else
            call_error (call, SOUP_STATUS_FORBIDDEN,
                        _("This key may not create channels; use a key "
                          "from “tocsin-relay key create”"));
          return;
        }
      spec_object = read_spec (relay, call, &spec);
      if (spec_object == NULL)
        return;
      if (spec.name == NULL)
        {
          call_error (call, SOUP_STATUS_BAD_REQUEST,
                      _("The channel needs a “name”"));
          return;
        }
      if (!tocsin_relay_actions_spec_member (spec_object, &actions, &error))
        {
          reply_store_error (call, error);
          return;
        }
      spec.actions = actions;
      if (!read_forwards (call, spec_object, &spec, &forwards))
        return;
      if (!tocsin_relay_signature_apply_spec (NULL, &spec, &secret, &error))
        {
          reply_store_error (call, error);
          return;
        }
      channel = tocsin_relay_store_create_channel (relay->store, &spec, &owner_key, &error);
      if (channel == NULL)
        {
          reply_store_error (call, error);
          return;
        }
      location = g_strdup_printf (PREFIX "/%" G_GINT64_FORMAT, channel->id);
      g_free (call->location);
      call->location = g_steal_pointer (&location);
      reply_channel (relay, call, SOUP_STATUS_CREATED, channel, owner_key, secret);
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
              reply_store_error (call, error);
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
              call_error (call, SOUP_STATUS_UNAUTHORIZED,
                          _("Listing channels needs an owner or admin key: "
                            "Authorization: Bearer <key>"));
              return;
            }
          json_array_add_object_element (array,
                                         tocsin_relay_channel_to_owner_json (own,
                                                                             relay->config.public_url));
        }
      call_json (call, SOUP_STATUS_OK, reply);
      return;
    }

  method_not_allowed (call, "GET, POST");
}

static void
handle_channel (TocsinRelay       *relay,
                ApiCall           *call,
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
            call_error (call, SOUP_STATUS_NOT_FOUND,
                        _("There is no such channel"));
          else
            reply_channel (relay, call, SOUP_STATUS_OK, channel, NULL, NULL);
        }
      else if (g_str_equal (method, "PATCH"))
        {
          TocsinRelayChannelSpec spec = { 0 };
          g_autoptr(JsonObject) spec_object = read_spec (relay, call, &spec);
          g_autoptr(TocsinRelayChannel) current = NULL;
          g_autofree char *secret = NULL;
          g_autofree char *actions = NULL;
          g_autofree char *forwards = NULL;

          if (spec_object == NULL || !read_forwards (call, spec_object, &spec, &forwards))
            return;
          if (!tocsin_relay_actions_spec_member (spec_object, &actions, &error))
            {
              reply_store_error (call, error);
              return;
            }
          spec.actions = actions;
          current = tocsin_relay_store_find_by_id (relay->store, id);
          if (current == NULL)
            {
              call_error (call, SOUP_STATUS_NOT_FOUND,
                          _("There is no such channel"));
              return;
            }
          /* A direct inbox's messages are what its sender says, with no templates to render
           * buttons from (tocsin-relay-direct.c). */
          if (current->direct && actions != NULL && !g_str_equal (actions, "[]"))
            {
              call_error (call, SOUP_STATUS_BAD_REQUEST,
                          _("A Direct key's inbox has no action buttons: "
                            "put them on a channel"));
              return;
            }
          if (!tocsin_relay_signature_apply_spec (current, &spec, &secret, &error))
            {
              reply_store_error (call, error);
              return;
            }
          channel = tocsin_relay_store_update_channel (relay->store, id, &spec, &error);
          if (channel == NULL)
            reply_store_error (call, error);
          else
            reply_channel (relay, call, SOUP_STATUS_OK, channel, NULL, secret);
        }
      else if (g_str_equal (method, "DELETE"))
        {
          g_autoptr(JsonObject) reply = json_object_new ();

          if (!tocsin_relay_store_delete_channel (relay->store, id, &error))
            {
              reply_store_error (call, error);
              return;
            }
          call->id = id;
          call->close_reason = "deleted";
          call->forget = TRUE;
          json_object_set_int_member (reply, "id", id);
          json_object_set_boolean_member (reply, "deleted", TRUE);
          call_json (call, SOUP_STATUS_OK, reply);
        }
      else
        method_not_allowed (call, "GET, PATCH, DELETE");
      return;
    }

  if (g_str_equal (action, "rotate-email"))
    {
      if (!g_str_equal (method, "POST"))
        {
          method_not_allowed (call, "POST");
          return;
        }
      channel = tocsin_relay_store_rotate_email (relay->store, id, &error);
      if (channel == NULL)
        reply_store_error (call, error);
      else
        reply_channel (relay, call, SOUP_STATUS_OK, channel, NULL, NULL);
      return;
    }

  if (g_str_equal (action, "rotate-trigger") || g_str_equal (action, "rotate-subscribe"))
    {
      gboolean trigger = g_str_equal (action, "rotate-trigger");

      if (!g_str_equal (method, "POST"))
        {
          method_not_allowed (call, "POST");
          return;
        }
      channel = trigger ? tocsin_relay_store_rotate_trigger (relay->store, id, &error)
                        : tocsin_relay_store_rotate_subscribe (relay->store, id, &error);
      if (channel == NULL)
        {
          reply_store_error (call, error);
          return;
        }
      /* Subscribers came in with the old token: it no longer admits them. */
      if (!trigger)
        {
          call->id = id;
          call->close_reason = "rotated";
        }
      reply_channel (relay, call, SOUP_STATUS_OK, channel, NULL, NULL);
      return;
    }

  if (g_str_equal (action, "rotate-signature"))
    {
      TocsinRelayChannelSpec spec = { .signature_secret = "generated" };
      g_autoptr(TocsinRelayChannel) current = NULL;
      g_autofree char *secret = NULL;

      if (!g_str_equal (method, "POST"))
        {
          method_not_allowed (call, "POST");
          return;
        }
      current = tocsin_relay_store_find_by_id (relay->store, id);
      if (current == NULL)
        {
          call_error (call, SOUP_STATUS_NOT_FOUND,
                      _("There is no such channel"));
          return;
        }
      if (*current->signature_scheme == '\0')
        {
          call_error (call, SOUP_STATUS_CONFLICT,
                      _("This channel takes unsigned webhooks: set a "
                        "“signature” scheme first"));
          return;
        }
      if (!tocsin_relay_signature_apply_spec (current, &spec, &secret, &error) ||
          !(channel = tocsin_relay_store_update_channel (relay->store, id, &spec, &error)))
        {
          reply_store_error (call, error);
          return;
        }
      reply_channel (relay, call, SOUP_STATUS_OK, channel, NULL, secret);
      return;
    }

  if (g_str_equal (action, "webhooks"))
    {

      if (!g_str_equal (method, "GET"))
        {
          method_not_allowed (call, "GET");
          return;
        }
      channel = tocsin_relay_store_find_by_id (relay->store, id);
      if (channel == NULL)
        {
          call_error (call, SOUP_STATUS_NOT_FOUND,
                      _("There is no such channel"));
          return;
        }
      /* The recent webhooks are the main loop's (api_done). */
      call->id = id;
      call->then = THEN_WEBHOOKS;
      return;
    }

  if (g_str_equal (action, "subscribers"))
    {

      if (!g_str_equal (method, "GET"))
        {
          method_not_allowed (call, "GET");
          return;
        }
      channel = tocsin_relay_store_find_by_id (relay->store, id);
      if (channel == NULL)
        {
          call_error (call, SOUP_STATUS_NOT_FOUND,
                      _("There is no such channel"));
          return;
        }
      /* The hub's connections are the main loop's (api_done); without a hub, the store's
       * presence rows are read here. */
      if (relay->hub == NULL)
        call->presence = tocsin_relay_store_list_presence (relay->store, id, &error);
      call->id = id;
      call->then = THEN_SUBSCRIBERS;
      return;
    }

  call_error (call, SOUP_STATUS_NOT_FOUND,
              _("There is nothing here; see docs/api.md"));
}

/* GET /v1/channels/{id}/deliveries?limit=N and POST …/deliveries/{delivery}/retry (issue 15). */
static void
handle_deliveries (TocsinRelay       *relay,
                   ApiCall           *call,
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
      call_error (call, SOUP_STATUS_NOT_FOUND, _("There is no such channel"));
      return;
    }
  if (*delivery == '\0' && action == NULL)
    {
      g_autoptr(JsonObject) reply = NULL;
      const char *query = call->query;
      g_autoptr(GHashTable) params = query ? g_uri_parse_params (query, -1, "&",
                                                                G_URI_PARAMS_NONE, NULL)
                                           : NULL;
      const char *limit_text = params ? g_hash_table_lookup (params, "limit") : NULL;
      gint64 limit = 100;

      if (!g_str_equal (method, "GET"))
        {
          method_not_allowed (call, "GET");
          return;
        }
      if (limit_text != NULL)
        {
          char *end = NULL;

          limit = g_ascii_strtoll (limit_text, &end, 10);
          if (end == limit_text || *end != '\0' || limit < 1 || limit > 1000)
            {
              call_error (call, SOUP_STATUS_BAD_REQUEST,
                          _("“limit” must be a number from 1 to 1000"));
              return;
            }
        }
      reply = tocsin_relay_store_list_deliveries (relay->store, id, (guint) limit, &error);
      if (reply == NULL)
        {
          reply_store_error (call, error);
          return;
        }
      call_json (call, SOUP_STATUS_OK, reply);
      return;
    }
  if (action != NULL && g_str_equal (action, "retry") && !more)
    {
      char *end = NULL;
      gint64 delivery_id = g_ascii_strtoll (delivery, &end, 10);

      if (!g_str_equal (method, "POST"))
        {
          method_not_allowed (call, "POST");
          return;
        }
      if (end == delivery || *end != '\0' || delivery_id <= 0)
        {
          call_error (call, SOUP_STATUS_NOT_FOUND,
                      _("There is no such delivery"));
          return;
        }
      /* The sender's state is the main loop's (api_done). */
      call->id = id;
      call->delivery_id = delivery_id;
      call->then = THEN_RETRY;
      return;
    }
  call_error (call, SOUP_STATUS_NOT_FOUND,
              _("There is nothing here; see docs/api.md"));
}

/* On the store's thread: every store call of the request, and its answer, into @data. */
static gboolean
api_run (TocsinRelayStore  *store,
         gpointer           data,
         GError           **error_out)
{
  ApiCall *call = data;
  TocsinRelay *relay = call->relay;
  g_auto(GStrv) parts = NULL;
  const char *method = call->method, *key = call->key, *path = call->path, *rest;
  gboolean admin;
  gint64 id;
  char *end = NULL;

  if (!g_str_has_prefix (path, PREFIX))
    {
      call_error (call, SOUP_STATUS_NOT_FOUND, _("There is nothing here; see docs/api.md"));
      return TRUE;
    }
  rest = path + strlen (PREFIX);

  admin = key != NULL && tocsin_relay_store_check_admin_key (relay->store, key);

  if (*rest == '\0' || g_str_equal (rest, "/"))
    {
      handle_collection (relay, call, method, key, admin);
      return TRUE;
    }
  if (*rest != '/')
    {
      call_error (call, SOUP_STATUS_NOT_FOUND, _("There is nothing here; see docs/api.md"));
      return TRUE;
    }

  parts = g_strsplit (rest + 1, "/", 5);
  id = g_ascii_strtoll (parts[0], &end, 10);
  if (end == parts[0] || *end != '\0' || id <= 0 ||
      (parts[1] != NULL && parts[2] != NULL && !g_str_equal (parts[1], "deliveries")))
    {
      call_error (call, SOUP_STATUS_NOT_FOUND, _("There is no such channel"));
      return TRUE;
    }

  /* The owner key of this channel, or an admin key; an owner key manages its channel alone. */
  if (!admin)
    {
      g_autoptr(TocsinRelayChannel) own = NULL;

      if (key == NULL)
        {
          call_error (call, SOUP_STATUS_UNAUTHORIZED,
                      _("This needs the channel's owner key: "
                        "Authorization: Bearer <owner key>"));
          return TRUE;
        }
      own = tocsin_relay_store_find_by_owner_key (relay->store, key);
      if (own == NULL || own->id != id)
        {
          call_error (call, SOUP_STATUS_FORBIDDEN, _("This key does not manage that channel"));
          return TRUE;
        }
    }

  if (parts[1] != NULL && g_str_equal (parts[1], "deliveries"))
    {
      handle_deliveries (relay, call, method, id, parts[2] ? parts[2] : "",
                         parts[2] && parts[3] ? parts[3] : NULL,
                         parts[2] && parts[3] && parts[4]);
      return TRUE;
    }
  handle_channel (relay, call, method, id,
                  parts[1] != NULL && *parts[1] != '\0' ? parts[1] : NULL);
  return TRUE;
}

static void api_retried (GObject *source, GAsyncResult *result, gpointer user_data);
static void api_answer  (ApiCall *call);

/* Back on the main loop: what only it may do, then the answer. */
static void
api_done (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(ApiCall) call = user_data;
  TocsinRelay *relay = call->relay;

  tocsin_relay_store_call_finish (relay->store, result, NULL);
  if (call->close_reason != NULL && relay->hub != NULL)
    tocsin_relay_hub_close_channel (relay->hub, call->id, call->close_reason);
  if (call->forget)
    tocsin_relay_recent_forget (relay->recent, call->id);

  if (call->then == THEN_WEBHOOKS)
    {
      g_autoptr(JsonObject) reply = json_object_new ();

      json_object_set_int_member (reply, "id", call->id);
      json_object_set_array_member (reply, "webhooks",
                                    tocsin_relay_recent_list (relay->recent, call->id));
      call_json (call, SOUP_STATUS_OK, reply);
    }
  else if (call->then == THEN_SUBSCRIBERS)
    {
      g_autoptr(JsonObject) reply = json_object_new ();
      JsonArray *subscribers = relay->hub != NULL
                                 ? tocsin_relay_hub_list_subscribers (relay->hub, call->id)
                                 : g_steal_pointer (&call->presence);

      json_object_set_int_member (reply, "id", call->id);
      json_object_set_array_member (reply, "subscribers",
                                    subscribers ? subscribers : json_array_new ());
      call_json (call, SOUP_STATUS_OK, reply);
    }
  else if (call->then == THEN_RETRY)
    {
      if (relay->forwards == NULL)
        call_error (call, SOUP_STATUS_SERVICE_UNAVAILABLE, _("This relay sends no forwards"));
      else
        {
          /* Not call's members in the call that steals call: the order arguments are read in
           * is not defined. */
          gint64 id = call->id, delivery_id = call->delivery_id;

          /* Answered once the sender has it (api_retried). */
          tocsin_relay_forwards_retry_async (relay->forwards, id, delivery_id, api_retried,
                                             g_steal_pointer (&call));
          return;
        }
    }
  api_answer (call);
}

static void
api_retried (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(ApiCall) call = user_data;
  g_autoptr(TocsinRelayDelivery) retried = NULL;
  g_autoptr(GError) error = NULL;

  retried = tocsin_relay_forwards_retry_finish (result, &error);
  if (retried == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BUSY))
        call_error (call, SOUP_STATUS_CONFLICT, error->message);
      else
        reply_store_error (call, error);
    }
  else
    {
      g_autoptr(JsonObject) reply = json_object_new ();

      json_object_set_object_member (reply, "delivery", tocsin_relay_delivery_to_json (retried));
      call_json (call, SOUP_STATUS_ACCEPTED, reply);
    }
  api_answer (call);
}

/* The answer api_run() or api_done() made, and the request goes on. */
static void
api_answer (ApiCall *call)
{
  SoupServerMessage *msg = call->msg;
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  if (call->allow != NULL)
    soup_message_headers_replace (headers, "Allow", call->allow);
  if (call->location != NULL)
    soup_message_headers_replace (headers, "Location", call->location);
  if (call->reply != NULL)
    tocsin_relay_server_reply_json (msg, call->status, call->reply);
  else
    tocsin_relay_server_reply_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR,
                                     _("The relay could not answer this request"));
  soup_server_message_unpause (msg);
}

void
tocsin_relay_api_handle (TocsinRelay       *relay,
                         SoupServerMessage *msg,
                         const char        *path)
{
  SoupMessageHeaders *request_headers;
  const char *method, *key, *query;
  ApiCall *call;

  g_return_if_fail (relay != NULL);
  g_return_if_fail (SOUP_IS_SERVER_MESSAGE (msg));

  if (path == NULL)
    path = g_uri_get_path (soup_server_message_get_uri (msg));
  method = soup_server_message_get_method (msg);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Cache-Control", "no-store");

  request_headers = soup_server_message_get_request_headers (msg);
  key = get_bearer (msg);
  query = g_uri_get_query (soup_server_message_get_uri (msg));
  call = g_new0 (ApiCall, 1);
  call->relay = relay;
  call->msg = g_object_ref (msg);
  call->method = g_strdup (method);
  call->path = g_strdup (path);
  call->key = g_strdup (key);
  call->query = g_strdup (query);
  call->content_type = g_strdup (soup_message_headers_get_content_type (request_headers, NULL));
  if (soup_server_message_get_request_body (msg)->length > 0)
    call->body = soup_message_body_flatten (soup_server_message_get_request_body (msg));

  /* A GET only reads; anything else may write, in order with the queued commits. */
  soup_server_message_pause (msg);
  tocsin_relay_store_call_async (relay->store, !g_str_equal (method, "GET"), api_run, call,
                                 api_done, call);
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
