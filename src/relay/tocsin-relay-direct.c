/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-direct.c: Direct keys, with Echobell's semantics (docs/api.md, "Direct keys").
 *
 * Design: a Direct key rings its owner and nobody else, on every desktop of that owner. The relay
 * already knows how to ring a set of desktops durably: a channel and its subscribers. So a Direct
 * key belongs to a *direct inbox*, a channel of kind "direct" (tocsin_relay_store_create_direct):
 *   - its trigger token is the Direct key, which /d/{key} takes and /t/ refuses;
 *   - it has no templates: the request's title, body, externalLink and notificationType are the
 *     message (notificationType in TocsinMessage.type, so each message rings as it asks);
 *   - its subscribe token is held only by the owner's desktops (the app subscribes itself when it
 *     creates the key; a second desktop opens the inbox's subscribe link);
 *   - its owner key manages it under /v1/direct (show, rotate, delete).
 * Replay, retention, dedup (eventId, Idempotency-Key) and "answered only once durable" are the
 * webhook path's: the message goes through tocsin_relay_ingest_build_message() and the store's
 * group commit, and is published to subscribers after the answer.
 *
 * Answers are Echobell's: {"success":true,"message":"Notification sent"}, and
 * {"success":false,"message":SENTENCE} for 400, 404 ("Direct key not found"), 405, 413, 415, 429
 * and 503. The key is compared in constant time (find_by_token) and never logged.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-json.h"
#include "tocsin-token.h"
#include "tocsin-relay-api.h"
#include "tocsin-relay-body.h"
#include "tocsin-relay-direct.h"
#include "tocsin-relay-hub.h"
#include "tocsin-relay-ingest.h"
#include "tocsin-relay-ratelimit.h"
#include "tocsin-relay-server.h"

#define API_PREFIX "/v1/direct"

void
tocsin_relay_direct_reply_error (SoupServerMessage *msg,
                                 guint              status,
                                 const char        *sentence)
{
  g_autoptr(JsonObject) object = json_object_new ();

  json_object_set_boolean_member (object, "success", FALSE);
  json_object_set_string_member (object, "message", sentence);
  tocsin_relay_server_reply_json (msg, status, object);
}

/* ---- the request's fields: pure ------------------------------------------------------ */

void
tocsin_relay_direct_fields_clear (TocsinRelayDirectFields *fields)
{
  g_clear_pointer (&fields->title, g_free);
  g_clear_pointer (&fields->body, g_free);
  g_clear_pointer (&fields->link, g_free);
  fields->type = TOCSIN_MESSAGE_TYPE_DEFAULT;
}

/* The member of @vars named @name in any case (Echobell: "title", "Title" and "TITLE" are the
 * same field). The exact spelling wins over another case of it; else the first one. */
static JsonNode *
get_field (JsonObject *vars,
           const char *name)
{
  g_autoptr(GList) members = NULL;
  JsonNode *node = json_object_get_member (vars, name);

  if (node != NULL)
    return node;
  members = json_object_get_members (vars);
  for (GList *l = members; l; l = l->next)
    if (g_ascii_strcasecmp (l->data, name) == 0)
      return json_object_get_member (vars, l->data);
  return NULL;
}

/* The field as text: strings as they are, numbers and booleans as JSON writes them, NULL when
 * absent or null. FALSE for an object or an array. */
static gboolean
get_text (JsonObject  *vars,
          const char  *name,
          char       **out,
          GError     **error)
{
  JsonNode *node = get_field (vars, name);

  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("“%s” must be text, not an object or a list"), name);
      return FALSE;
    }
  if (json_node_get_value_type (node) == G_TYPE_STRING)
    *out = g_strdup (json_node_get_string (node));
  else
    *out = tocsin_json_to_string (node, FALSE);
  return TRUE;
}

gboolean
tocsin_relay_direct_read_fields (JsonObject               *vars,
                                 const char               *body_text,
                                 TocsinRelayDirectFields  *out,
                                 GError                  **error)
{
  g_auto(TocsinRelayDirectFields) fields = { 0 };
  g_autofree char *type = NULL;
  const char *reason = NULL;

  g_return_val_if_fail (vars != NULL, FALSE);
  g_return_val_if_fail (out != NULL, FALSE);

  if (!get_text (vars, "title", &fields.title, error) ||
      !get_text (vars, "body", &fields.body, error) ||
      !get_text (vars, "externalLink", &fields.link, error) ||
      !get_text (vars, "notificationType", &type, error))
    return FALSE;

  if (fields.title == NULL || *g_strstrip (fields.title) == '\0')
    {
      g_free (fields.title);
      fields.title = g_strdup (TOCSIN_RELAY_DIRECT_DEFAULT_TITLE);
    }
  /* `curl -H 'Content-Type: text/plain' --data 'Backup done' …/d/KEY` says the body alone. */
  if (fields.body == NULL)
    fields.body = g_strdup (body_text ? body_text : "");

  if (type != NULL)
    {
      g_autofree char *lower = g_ascii_strdown (g_strstrip (type), -1);

      if (*lower == '\0')
        fields.type = TOCSIN_MESSAGE_TYPE_DEFAULT;
      else if (!tocsin_message_type_from_string (lower, &fields.type))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("“notificationType” must be active, time-sensitive or calling"));
          return FALSE;
        }
    }
  /* Echobell's default: a Direct notification breaks through Focus, as a time-sensitive one. */
  if (fields.type == TOCSIN_MESSAGE_TYPE_DEFAULT)
    fields.type = TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE;

  if (fields.link != NULL && *g_strstrip (fields.link) == '\0')
    g_clear_pointer (&fields.link, g_free);
  if (fields.link != NULL && !tocsin_link_is_safe (fields.link, &reason))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("“externalLink” must be an http or https URL: %s"), reason);
      return FALSE;
    }

  *out = fields;
  memset (&fields, 0, sizeof fields);
  return TRUE;
}

/* ---- /d/{key} ------------------------------------------------------------------------ */

typedef struct
{
  TocsinRelay       *relay;
  SoupServerMessage *msg;
  gint64             channel_id;
} Pending;

static void
pending_free (Pending *pending)
{
  g_clear_object (&pending->msg);
  g_free (pending);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Pending, pending_free)

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
        tocsin_relay_direct_reply_error (pending->msg, SOUP_STATUS_NOT_FOUND,
                                         TOCSIN_RELAY_DIRECT_NOT_FOUND);
      else
        {
          g_message ("Could not store a message for direct inbox %" G_GINT64_FORMAT ": %s",
                     pending->channel_id, error->message);
          /* As a webhook's (tocsin-relay-ingest.c): PostgreSQL comes back in seconds. */
          soup_message_headers_replace (soup_server_message_get_response_headers (pending->msg),
                                        "Retry-After",
                                        tocsin_relay_store_get_database (pending->relay->store)
                                        != NULL ? "5" : "30");
          tocsin_relay_direct_reply_error (pending->msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
                                           g_error_matches (error, TOCSIN_RELAY_STORE_ERROR,
                                                            TOCSIN_RELAY_STORE_ERROR_UNKNOWN)
                                           ? _("The relay lost its database while storing the "
                                               "notification, so it may have been stored and "
                                               "sent; check before you send it again")
                                           : tocsin_relay_store_get_database (pending->relay->store)
                                           != NULL
                                           ? _("The relay could not store the notification (its "
                                               "database did not answer); nothing was sent, try "
                                               "again later")
                                           : _("The relay could not store the notification (its "
                                               "disk may be full); nothing was sent, try again "
                                               "later"));
        }
      soup_server_message_unpause (pending->msg);
      return;
    }

  reply = json_object_new ();
  json_object_set_boolean_member (reply, "success", TRUE);
  json_object_set_string_member (reply, "message", TOCSIN_RELAY_DIRECT_SENT);
  if (commit->duplicate)
    json_object_set_boolean_member (reply, "duplicate", TRUE);
  tocsin_relay_server_reply_json (pending->msg, SOUP_STATUS_OK, reply);
  soup_server_message_unpause (pending->msg);

  /* Durable now; the answer first, as in tocsin-relay-ingest.c. */
  if (!commit->duplicate && pending->relay->hub != NULL)
    tocsin_relay_hub_publish_soon (pending->relay->hub, pending->channel_id, commit->id,
                                   commit->message);
}

/* Decodes the query and the body; NULL with the answer already set. */
static JsonObject *
read_vars (TocsinRelay        *relay,
           SoupServerMessage  *msg,
           gboolean            has_body,
           char              **body_text)
{
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(GError) error = NULL;
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));

  if (query != NULL && *query != '\0' &&
      !tocsin_relay_body_add_form_pairs (vars, query, -1, _("query string"), &error))
    {
      tocsin_relay_direct_reply_error (msg, SOUP_STATUS_BAD_REQUEST, error->message);
      return NULL;
    }
  if (has_body)
    {
      g_autoptr(GBytes) bytes = NULL;
      guint status = SOUP_STATUS_BAD_REQUEST;

      bytes = soup_message_body_flatten (soup_server_message_get_request_body (msg));
      if (!tocsin_relay_body_read (soup_server_message_get_request_headers (msg), bytes,
                                   relay->config.max_body, vars, body_text, &status, &error))
        {
          tocsin_relay_direct_reply_error (msg, status, error->message);
          return NULL;
        }
    }
  return g_steal_pointer (&vars);
}

/* Once the key has been looked up (@channel, NULL when unknown), with the request paused:
 * TRUE when it stays paused for its commit (commit_done unpauses it). */
static gboolean
ring (TocsinRelay        *relay,
      SoupServerMessage  *msg,
      TocsinRelayChannel *channel)
{
  SoupMessageHeaders *response_headers = soup_server_message_get_response_headers (msg);
  SoupMessageBody *request_body = soup_server_message_get_request_body (msg);
  const char *method = soup_server_message_get_method (msg);
  g_autoptr(JsonObject) vars = NULL;
  g_autoptr(TocsinMessage) message = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(TocsinRelayDirectFields) fields = { 0 };
  g_auto(TocsinRelayRendered) rendered = { 0 };
  g_autofree char *body_text = NULL;
  g_autofree char *dedup = NULL, *key_hash = NULL, *content_hash = NULL;
  guint remaining = 0, reset = 0, retry_after = 0;
  gboolean has_body;
  Pending *pending;

  if (channel == NULL || !channel->direct)
    {
      tocsin_relay_direct_reply_error (msg, SOUP_STATUS_NOT_FOUND, TOCSIN_RELAY_DIRECT_NOT_FOUND);
      return FALSE;
    }

  has_body = g_str_equal (method, "POST") && request_body->length > 0;
  if (has_body && (gsize) request_body->length > relay->config.max_body)
    {
      g_autofree char *limit = g_format_size_full (relay->config.max_body,
                                                   G_FORMAT_SIZE_IEC_UNITS);
      g_autofree char *sentence = g_strdup_printf (_("The body is larger than this relay takes "
                                                     "(%s)"), limit);

      tocsin_relay_direct_reply_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, sentence);
      return FALSE;
    }

  /* The inbox's own bucket, as a channel's (docs/configuration.md, "Limits"). */
  if (!tocsin_relay_rate_limit_take (relay->rate_limit, channel->id,
                                     relay->config.rate_per_second, relay->config.rate_burst,
                                     g_get_monotonic_time (), &remaining, &reset, &retry_after))
    {
      g_autofree char *retry = g_strdup_printf ("%u", retry_after);
      g_autofree char *sentence = NULL;

      tocsin_relay_ingest_set_rate_headers (msg, relay, remaining, reset);
      soup_message_headers_replace (response_headers, "Retry-After", retry);
      sentence = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                               "Rate limit exceeded: this Direct key takes "
                                               "notifications faster than its limit; retry in "
                                               "%u second",
                                               "Rate limit exceeded: this Direct key takes "
                                               "notifications faster than its limit; retry in "
                                               "%u seconds", retry_after),
                                  retry_after);
      tocsin_relay_direct_reply_error (msg, 429, sentence);
      /* libsoup 3.2 has no phrase for 429. */
      soup_server_message_set_status (msg, 429, "Too Many Requests");
      return FALSE;
    }
  tocsin_relay_ingest_set_rate_headers (msg, relay, remaining, reset);

  vars = read_vars (relay, msg, has_body, &body_text);
  if (vars == NULL)
    return FALSE;
  if (!tocsin_relay_direct_read_fields (vars, body_text, &fields, &error))
    {
      tocsin_relay_direct_reply_error (msg, SOUP_STATUS_BAD_REQUEST, error->message);
      return FALSE;
    }

  rendered.title = g_steal_pointer (&fields.title);
  rendered.body = g_steal_pointer (&fields.body);
  rendered.link = g_steal_pointer (&fields.link);
  message = tocsin_relay_ingest_build_message (channel, vars, &rendered,
                                               g_get_real_time () / 1000,
                                               tocsin_relay_ingest_max_message (
                                                 relay->config.max_queue_bytes),
                                               &error);
  if (message == NULL)
    {
      tocsin_relay_direct_reply_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                                       error->message);
      return FALSE;
    }
  message->type = fields.type;

  /* The webhook path's dedup: eventId, Idempotency-Key, webhook-id. */
  dedup = tocsin_relay_ingest_dedup_key (vars, soup_server_message_get_request_headers (msg));
  tocsin_relay_ingest_dedup_hashes (dedup, vars, &key_hash, &content_hash);

  pending = g_new0 (Pending, 1);
  pending->relay = relay;
  pending->msg = g_object_ref (msg);
  pending->channel_id = channel->id;
  /* Held (paused since its lookup) until the message is durable (commit_done). */
  tocsin_relay_store_commit_async (relay->store, channel->id, g_steal_pointer (&message),
                                   key_hash, content_hash, commit_done, pending);
  return TRUE;
}

/* The key is looked up on the store's reader thread (tocsin_relay_store_find_channel_async()),
 * the request paused and held by a reference meanwhile: the main loop never waits on the
 * database. */
typedef struct
{
  TocsinRelay        *relay;
  SoupServerMessage  *msg;
} Lookup;

static void
lookup_free (Lookup *lookup)
{
  g_clear_object (&lookup->msg);
  g_free (lookup);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Lookup, lookup_free)

static void
lookup_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(Lookup) lookup = user_data;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(GError) error = NULL;

  channel = tocsin_relay_store_find_channel_finish (lookup->relay->store, result, &error);
  if (error != NULL)
    {
      /* The database (PostgreSQL) did not answer: not an unknown key. */
      g_message ("Could not look a Direct key up: %s", error->message);
      soup_message_headers_replace (soup_server_message_get_response_headers (lookup->msg),
                                    "Retry-After", "5");
      tocsin_relay_server_reply_error (lookup->msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
                                       _("The relay cannot reach its database right now; "
                                         "nothing was stored, try again later"));
      soup_server_message_unpause (lookup->msg);
      return;
    }
  if (!ring (lookup->relay, lookup->msg, channel))
    soup_server_message_unpause (lookup->msg);
}

void
tocsin_relay_direct_handle (TocsinRelay       *relay,
                            SoupServerMessage *msg,
                            const char        *key)
{
  SoupMessageHeaders *response_headers = soup_server_message_get_response_headers (msg);
  const char *method = soup_server_message_get_method (msg);
  Lookup *lookup;

  g_return_if_fail (relay != NULL);
  g_return_if_fail (SOUP_IS_SERVER_MESSAGE (msg));

  soup_message_headers_replace (response_headers, "Cache-Control", "no-store");
  if (!g_str_equal (method, "GET") && !g_str_equal (method, "POST"))
    {
      soup_message_headers_replace (response_headers, "Allow", "GET, POST");
      tocsin_relay_direct_reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
                                       _("Direct keys take GET or POST"));
      return;
    }
  lookup = g_new0 (Lookup, 1);
  lookup->relay = relay;
  lookup->msg = g_object_ref (msg);
  soup_server_message_pause (msg);
  /* Constant time, the same work for an unknown key; a channel's webhook token is not a key
   * (ring() refuses a channel that is not a Direct key's). */
  tocsin_relay_store_find_channel_async (relay->store, TOCSIN_RELAY_TOKEN_TRIGGER, key,
                                         lookup_done, lookup);
}

/* ---- /v1/direct: the owner API -------------------------------------------------------- */

JsonObject *
tocsin_relay_direct_to_json (TocsinRelayChannel *channel,
                             const char         *public_url)
{
  JsonObject *object = json_object_new ();
  g_autofree char *direct = NULL, *subscribe = NULL, *created = NULL;

  g_return_val_if_fail (channel != NULL, NULL);

  if (public_url == NULL)
    public_url = "";
  direct = g_strdup_printf ("%s/d/%s", public_url, channel->trigger_token);
  subscribe = g_strdup_printf ("%s/s/%s", public_url, channel->subscribe_token);
  created = tocsin_format_time_ms (channel->created_at * 1000);
  json_object_set_int_member (object, "id", channel->id);
  json_object_set_string_member (object, "kind", "direct");
  json_object_set_string_member (object, "direct_key", channel->trigger_token);
  json_object_set_string_member (object, "direct_url", direct);
  json_object_set_string_member (object, "subscribe_token", channel->subscribe_token);
  json_object_set_string_member (object, "subscribe_url", subscribe);
  json_object_set_string_member (object, "created_at", created);
  json_object_set_int_member (object, "last_id", channel->last_id);
  return object;
}

/* /v1/direct, as the owner API (tocsin-relay-api.c): the request is copied and paused, and
 * direct_api_run() makes its store calls on the writer thread (the reader's for a GET); only
 * the answer and the hub's part come back to the main loop. */
typedef struct
{
  TocsinRelay       *relay;          /* borrowed */
  SoupServerMessage *msg;            /* a reference; only the main loop touches it */
  char              *method;
  char              *key;
  gboolean           rotate;
  /* the answer */
  guint              status;
  JsonObject        *reply;
  gboolean           location;       /* Location: API_PREFIX */
  gint64             close_id;       /* close this channel's subscribers ("deleted") */
} DirectCall;

static void
direct_call_free (DirectCall *call)
{
  g_clear_object (&call->msg);
  g_free (call->method);
  if (call->key)
    explicit_bzero (call->key, strlen (call->key));
  g_free (call->key);
  g_clear_pointer (&call->reply, json_object_unref);
  g_free (call);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DirectCall, direct_call_free)

static void
call_reply (DirectCall *call,
            guint       status,
            JsonObject *object)
{
  g_clear_pointer (&call->reply, json_object_unref);
  call->status = status;
  call->reply = object;
}

static void
call_error (DirectCall *call,
            guint       status,
            const char *sentence)
{
  JsonObject *object = json_object_new ();

  json_object_set_string_member (object, "error", sentence);
  call_reply (call, status, object);
}

static void
reply_inbox (TocsinRelay        *relay,
             DirectCall         *call,
             guint               status,
             TocsinRelayChannel *channel,
             const char         *owner_key)
{
  JsonObject *object = tocsin_relay_direct_to_json (channel, relay->config.public_url);

  if (owner_key != NULL)
    json_object_set_string_member (object, "owner_key", owner_key);
  call_reply (call, status, object);
}

static void
create_inbox (TocsinRelay *relay,
              DirectCall  *call,
              const char  *key)
{
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *owner_key = NULL;

  /* Who may create channels may create a direct inbox (docs/api.md). */
  if (!relay->config.open_relay &&
      (key == NULL || !tocsin_relay_store_check_admin_key (relay->store, key)))
    {
      if (key == NULL)
        call_error (call, SOUP_STATUS_UNAUTHORIZED,
                    _("This relay needs a key to create a Direct key: "
                      "Authorization: Bearer <key from “tocsin-relay key "
                      "create”>"));
      else
        call_error (call, SOUP_STATUS_FORBIDDEN,
                    _("This key may not create Direct keys; use a key "
                      "from “tocsin-relay key create”"));
      return;
    }
  channel = tocsin_relay_store_create_direct (relay->store, &owner_key, &error);
  if (channel == NULL)
    {
      g_message ("Owner API: %s", error->message);
      call_error (call, SOUP_STATUS_INTERNAL_SERVER_ERROR, error->message);
      return;
    }
  call->location = TRUE;
  reply_inbox (relay, call, SOUP_STATUS_CREATED, channel, owner_key);
}

static gboolean
direct_api_run (TocsinRelayStore  *store,
                gpointer           data,
                GError           **error_out)
{
  DirectCall *call = data;
  TocsinRelay *relay = call->relay;
  const char *key = call->key;
  g_autoptr(TocsinRelayChannel) inbox = NULL;
  g_autoptr(GError) error = NULL;

  if (!call->rotate && g_str_equal (call->method, "POST"))
    {
      create_inbox (relay, call, key);
      return TRUE;
    }

  /* The rest needs the inbox's owner key: it names the inbox. */
  if (key == NULL)
    {
      call_error (call, SOUP_STATUS_UNAUTHORIZED,
                  _("This needs the Direct key's owner key: "
                    "Authorization: Bearer <owner key>"));
      return TRUE;
    }
  inbox = tocsin_relay_store_find_by_owner_key (relay->store, key);
  if (inbox == NULL || !inbox->direct)
    {
      call_error (call, SOUP_STATUS_FORBIDDEN, _("This key does not manage a Direct key"));
      return TRUE;
    }

  if (call->rotate)
    {
      g_autoptr(TocsinRelayChannel) rotated = NULL;

      rotated = tocsin_relay_store_rotate_trigger (relay->store, inbox->id, &error);
      if (rotated == NULL)
        call_error (call, SOUP_STATUS_INTERNAL_SERVER_ERROR, error->message);
      else
        reply_inbox (relay, call, SOUP_STATUS_OK, rotated, NULL);
      return TRUE;
    }
  if (g_str_equal (call->method, "DELETE"))
    {
      JsonObject *reply;

      if (!tocsin_relay_store_delete_channel (relay->store, inbox->id, &error))
        {
          call_error (call, SOUP_STATUS_INTERNAL_SERVER_ERROR, error->message);
          return TRUE;
        }
      call->close_id = inbox->id;
      reply = json_object_new ();
      json_object_set_int_member (reply, "id", inbox->id);
      json_object_set_boolean_member (reply, "deleted", TRUE);
      call_reply (call, SOUP_STATUS_OK, reply);
      return TRUE;
    }
  reply_inbox (relay, call, SOUP_STATUS_OK, inbox, NULL);
  return TRUE;
}

static void
direct_api_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(DirectCall) call = user_data;
  TocsinRelay *relay = call->relay;

  tocsin_relay_store_call_finish (relay->store, result, NULL);
  if (call->close_id != 0 && relay->hub)
    tocsin_relay_hub_close_channel (relay->hub, call->close_id, "deleted");
  if (call->location)
    soup_message_headers_replace (soup_server_message_get_response_headers (call->msg),
                                  "Location", API_PREFIX);
  if (call->reply != NULL)
    tocsin_relay_server_reply_json (call->msg, call->status, call->reply);
  else
    tocsin_relay_server_reply_error (call->msg, SOUP_STATUS_INTERNAL_SERVER_ERROR,
                                     _("The relay could not answer this request"));
  soup_server_message_unpause (call->msg);
}

void
tocsin_relay_direct_api_handle (TocsinRelay       *relay,
                                SoupServerMessage *msg,
                                const char        *path)
{
  const char *method = soup_server_message_get_method (msg);
  const char *key = tocsin_relay_api_get_bearer (msg);
  DirectCall *call;
  const char *rest;
  gboolean rotate;

  g_return_if_fail (relay != NULL);
  g_return_if_fail (SOUP_IS_SERVER_MESSAGE (msg));

  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Cache-Control", "no-store");
  rest = g_str_has_prefix (path, API_PREFIX) ? path + strlen (API_PREFIX) : "?";
  if (g_str_equal (rest, "/"))
    rest = "";
  rotate = g_str_equal (rest, "/rotate");
  if (*rest != '\0' && !rotate)
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND,
                                       _("There is nothing here; see docs/api.md"));
      return;
    }

  if ((rotate && !g_str_equal (method, "POST")) ||
      (!rotate && !g_str_equal (method, "GET") && !g_str_equal (method, "DELETE") &&
       !g_str_equal (method, "POST")))
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow",
                                    rotate ? "POST" : "GET, POST, DELETE");
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
                                       _("This method is not allowed here; see docs/api.md"));
      return;
    }

  call = g_new0 (DirectCall, 1);
  call->relay = relay;
  call->msg = g_object_ref (msg);
  call->method = g_strdup (method);
  call->key = g_strdup (key);
  call->rotate = rotate;
  soup_server_message_pause (msg);
  tocsin_relay_store_call_async (relay->store, !g_str_equal (method, "GET"), direct_api_run, call,
                                 direct_api_done, call);
}
