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
#include "tocsin-relay-body.h"
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
      !tocsin_relay_body_add_form_pairs (vars, query, -1, _("query string"), &error))
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_BAD_REQUEST, error->message);
      return;
    }

  if (has_body)
    {
      guint status = SOUP_STATUS_BAD_REQUEST;

      bytes = soup_message_body_flatten (request_body);
      if (!tocsin_relay_body_read (headers, bytes, relay->config.max_body, vars, &body_text,
                                   &status, &error))
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

  if (!tocsin_template_evaluate (channel->condition, scope, missing))
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
