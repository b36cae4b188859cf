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
 * Three steps, so that the middle one can be tested and fuzzed on its own:
 *   admit() and read_vars(): method, token, size as sent, rate (405, 404, 413, 429), then the
 *     query and body (tocsin-relay-body.c: 400, 413, 415);
 *   tocsin_relay_ingest_render() and _build_message(): pure, no I/O; the encoded message must
 *     fit what every subscriber can take, or it is 413 before anything is stored;
 *   run()'s commit: the store, then commit_done() answers and publishes.
 *
 * Admission also checks, before any decoding: a channel that requires a signature has it
 * checked on the raw body as received (tocsin-relay-signature.c: 401; the other ways in carry
 * none, so such a channel refuses them), and a paused channel answers 423.
 *
 * Every answer to a known channel is noted (status and sentence, never the body) for its owner:
 * tocsin_relay_ingest_note(), GET /v1/channels/{id}/webhooks.
 *
 * ntfy's and Gotify's publish APIs (tocsin-relay-compat.c) decode their own requests and join
 * at tocsin_relay_ingest_submit(): the same admission, render, bound, dedup and commit, with
 * their answers written by a TocsinRelayIngestDialect instead of Tocsin's own.
 *
 * Nothing a sender sent (variables, headers, tokens) is ever logged.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <inttypes.h>
#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-json.h"
#include "tocsin-relay-actions.h"
#include "tocsin-relay-body.h"
#include "tocsin-relay-forwards.h"
#include "tocsin-message.h"
#include "tocsin-token.h"
#include "tocsin-relay-ratelimit.h"
#include "tocsin-relay-ingest.h"
#include "tocsin-relay-hub.h"
#include "tocsin-relay-recent.h"
#include "tocsin-relay-server.h"
#include "tocsin-relay-signature.h"
#include "tocsin-relay-store.h"

void
tocsin_relay_ingest_note (TocsinRelay *relay,
                          gint64       channel_id,
                          guint        status,
                          const char  *sentence)
{
  g_return_if_fail (relay != NULL);

  tocsin_relay_recent_note (relay->recent, channel_id, g_get_real_time () / 1000, status,
                            sentence);
}

const char *
tocsin_relay_ingest_paused_sentence (void)
{
  return _("This channel is paused by its owner: nothing was stored or delivered. Its owner "
           "can resume it (“tocsin-relay channel resume” or the app's channel editor)");
}

/* Answers @sentence through @dialect and notes it for the owner of channel @channel_id. */
static void
reply_channel_error (TocsinRelay                    *relay,
                     const TocsinRelayIngestDialect *dialect,
                     gpointer                        user_data,
                     SoupServerMessage              *msg,
                     gint64                          channel_id,
                     guint                           status,
                     const char                     *sentence)
{
  tocsin_relay_ingest_note (relay, channel_id, status, sentence);
  dialect->reply_error (msg, status, sentence, user_data);
}

static void reply_error_printf (const TocsinRelayIngestDialect *dialect,
                                gpointer                        user_data,
                                SoupServerMessage              *msg,
                                guint                           status,
                                const char                     *format,
                                ...) G_GNUC_PRINTF (5, 6);

static void
reply_error_printf (const TocsinRelayIngestDialect *dialect,
                    gpointer                        user_data,
                    SoupServerMessage              *msg,
                    guint                           status,
                    const char                     *format,
                    ...)
{
  g_autofree char *sentence = NULL;
  va_list args;

  va_start (args, format);
  sentence = g_strdup_vprintf (format, args);
  va_end (args);
  dialect->reply_error (msg, status, sentence, user_data);
}

typedef struct
{
  TocsinRelay                    *relay;
  SoupServerMessage              *msg;
  gint64                          channel_id;
  char                           *channel_name;
  gint64                          time_ms;
  TocsinRelayRendered             rendered;
  const TocsinRelayIngestDialect *dialect;
  gpointer                        user_data;   /* owned: destroy */
  GDestroyNotify                  destroy;
} Pending;

static void
pending_free (Pending *pending)
{
  g_clear_object (&pending->msg);
  g_free (pending->channel_name);
  tocsin_relay_rendered_clear (&pending->rendered);
  if (pending->destroy != NULL && pending->user_data != NULL)
    pending->destroy (pending->user_data);
  g_free (pending);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Pending, pending_free)

/* The dedup key: the `eventId` variable (Skalin), else Idempotency-Key, else webhook-id
 * (Standard Webhooks). NULL when there is none. */
char *
tocsin_relay_ingest_dedup_key (JsonObject         *vars,
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
  if (headers == NULL)
    return NULL;
  header = soup_message_headers_get_one (headers, "Idempotency-Key");
  if (header == NULL || *header == '\0')
    header = soup_message_headers_get_one (headers, "webhook-id");
  if (header != NULL && *header != '\0')
    return g_strdup (header);
  return NULL;
}

void
tocsin_relay_ingest_dedup_hashes (const char  *key,
                                  JsonObject  *vars,
                                  char       **key_hash,
                                  char       **content_hash)
{
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *canonical = NULL;

  *key_hash = NULL;
  *content_hash = NULL;
  if (key == NULL)
    return;
  node = json_node_new (JSON_NODE_OBJECT);
  json_node_set_object (node, vars);
  canonical = tocsin_json_to_string (node, FALSE);
  *key_hash = tocsin_token_hash (key);
  *content_hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, canonical, -1);
}

static void
add_scope_header (const char *name,
                  const char *value,
                  gpointer    user_data)
{
  g_autofree char *lower = g_ascii_strdown (name, -1);

  tocsin_template_scope_add_header (user_data, lower, value);
}

static void
fill_scope_headers (TocsinTemplateScope *scope,
                    gpointer             data)
{
  soup_message_headers_foreach (data, add_scope_header, scope);
}

/* ---- Tocsin's own answers (docs/api.md) ------------------------------------------------ */

/* json_object_set_string_member (…, NULL) encodes as null. */
static void
append_string_or_null (GString    *out,
                       const char *s)
{
  if (s != NULL)
    tocsin_json_append_string (out, s);
  else
    g_string_append (out, "null");
}

/* missing_to_json(), written: each name once, in first-seen order. */
static void
append_missing (GString   *out,
                GPtrArray *missing)
{
  g_autoptr(GHashTable) seen = NULL;
  gboolean first = TRUE;

  g_string_append_c (out, '[');
  for (guint i = 0; missing != NULL && i < missing->len; i++)
    {
      if (i > 0)
        {
          if (seen == NULL)
            {
              seen = g_hash_table_new (g_str_hash, g_str_equal);
              g_hash_table_add (seen, missing->pdata[0]);
            }
          if (!g_hash_table_add (seen, missing->pdata[i]))
            continue;
        }
      if (!first)
        g_string_append_c (out, ',');
      first = FALSE;
      tocsin_json_append_string (out, missing->pdata[i]);
    }
  g_string_append_c (out, ']');
}

static void
native_reply_error (SoupServerMessage *msg,
                    guint              status,
                    const char        *sentence,
                    gpointer           user_data)
{
  tocsin_relay_server_reply_error (msg, status, sentence);
}

static void
native_reply_done (SoupServerMessage              *msg,
                   const TocsinRelayIngestOutcome *outcome,
                   gpointer                        user_data)
{
  const TocsinRelayRendered *rendered = outcome->rendered;
  GString *reply = g_string_sized_new (256);
  gsize len;

  /* Written directly, as the JsonObject it replaced encoded it (member order included): no
   * tree for every webhook's answer (issue 17, item 2). */
  if (outcome->filtered)
    {
      g_string_append (reply, "{\"filtered\":true,\"channel\":");
      tocsin_json_append_int (reply, outcome->channel_id);
    }
  else
    {
      g_string_append (reply, "{\"id\":");
      tocsin_json_append_int (reply, outcome->id);
      g_string_append (reply, ",\"channel\":");
      tocsin_json_append_int (reply, outcome->channel_id);
      g_string_append (reply, ",\"title\":");
      append_string_or_null (reply, rendered->title);
      g_string_append (reply, ",\"body\":");
      append_string_or_null (reply, rendered->body);
      if (rendered->link)
        {
          g_string_append (reply, ",\"externalLink\":");
          tocsin_json_append_string (reply, rendered->link);
        }
      if (rendered->link_dropped)
        {
          g_string_append (reply, ",\"linkDropped\":");
          tocsin_json_append_string (reply, rendered->link_dropped);
        }
      if (outcome->replaces > 0)
        {
          g_string_append (reply, ",\"replaces\":");
          tocsin_json_append_int (reply, outcome->replaces);
        }
      if (outcome->duplicate)
        g_string_append (reply, ",\"duplicate\":true");
    }
  g_string_append (reply, ",\"missing\":");
  append_missing (reply, rendered->missing);
  if (!outcome->filtered)
    {
      g_string_append (reply, ",\"subscribers\":");
      tocsin_json_append_int (reply, outcome->subscribers);
    }
  g_string_append_c (reply, '}');
  len = reply->len;
  tocsin_relay_server_reply_json_text (msg, SOUP_STATUS_OK, g_string_free (reply, FALSE), len);
}

static const TocsinRelayIngestDialect native_dialect = {
  native_reply_error,
  native_reply_done,
};

/* ---- render: pure, no I/O ------------------------------------------------------------ */

void
tocsin_relay_rendered_clear (TocsinRelayRendered *rendered)
{
  g_clear_pointer (&rendered->title, g_free);
  g_clear_pointer (&rendered->body, g_free);
  g_clear_pointer (&rendered->link, g_free);
  g_clear_pointer (&rendered->missing, g_ptr_array_unref);
  g_clear_pointer (&rendered->actions, g_ptr_array_unref);
  g_clear_error (&rendered->over_budget);
  g_clear_pointer (&rendered->forwards, g_array_unref);
  rendered->link_dropped = NULL;
  rendered->filtered = FALSE;
}

void
tocsin_relay_ingest_render (const TocsinRelayChannel *channel,
                            JsonObject               *vars,
                            SoupMessageHeaders       *headers,
                            const char               *body_text,
                            GDateTime                *now,
                            TocsinRelayRendered      *out)
{
  tocsin_relay_ingest_render_with_hints (channel, vars, headers, body_text, NULL, now, out);
}

/* The channel's action buttons that apply, rendered each on its own scope (the message's
 * variables and the event's: tocsin_request_context_vars()), then the sender's. An action that
 * does not render is left out and logged, without any value: the message still rings. */
static void
render_actions (const TocsinRelayChannel     *channel,
                JsonObject                   *vars,
                SoupMessageHeaders           *headers,
                const char                   *body_text,
                const TocsinRelayIngestHints *hints,
                GDateTime                    *now,
                TocsinRelayRendered          *out)
{
  guint n_channel = channel->actions != NULL ? channel->actions->len : 0;
  guint n_sender = hints != NULL && hints->actions != NULL ? hints->actions->len : 0;
  /* The record's id is known only once the store commits it: record.id is 0 here. */
  TocsinRequestContext context = {
    .record_time_ms = now != NULL ? g_date_time_to_unix (now) * 1000
                                    + g_date_time_get_microsecond (now) / 1000
                                  : g_get_real_time () / 1000,
    .record_title = out->title,
    .record_body = out->body,
    .record_link = out->link,
    .channel_id = channel->id,
    .channel_name = channel->name,
  };

  if (n_channel == 0 && n_sender == 0)
    return;
  out->actions = g_ptr_array_new_with_free_func ((GDestroyNotify) tocsin_message_action_free);
  for (guint i = 0; i < n_channel && out->actions->len < TOCSIN_REQUEST_MAX_ACTIONS; i++)
    {
      TocsinRequest *request = channel->actions->pdata[i];
      g_autoptr(JsonObject) action_vars = NULL;
      g_autoptr(TocsinTemplateScope) scope = NULL;
      g_autoptr(GError) error = NULL;
      TocsinMessageAction *action;

      action_vars = tocsin_request_context_vars (vars, &context,
                                                 tocsin_request_get_name (request));
      scope = tocsin_template_scope_new (action_vars, now);
      if (headers != NULL)
        tocsin_template_scope_set_header_fill (scope, fill_scope_headers, headers);
      if (body_text)
        tocsin_template_scope_set_body_text (scope, body_text);
      action = tocsin_relay_action_render (request, scope, &error);
      if (action != NULL)
        g_ptr_array_add (out->actions, action);
      else if (error != NULL)
        /* Render sentences name the field and the reason, never what was rendered
         * (tocsin-request.h; /relay/actions/render-error checks the log). */
        g_message ("Channel %" G_GINT64_FORMAT ": its action %u was left out of a message: %s",
                   channel->id, i, error->message);
    }
  for (guint i = 0; i < n_sender && out->actions->len < TOCSIN_REQUEST_MAX_ACTIONS; i++)
    g_ptr_array_add (out->actions, tocsin_relay_action_copy (hints->actions->pdata[i]));
}

void
tocsin_relay_ingest_render_with_hints (const TocsinRelayChannel     *channel,
                                       JsonObject                   *vars,
                                       SoupMessageHeaders           *headers,
                                       const char                   *body_text,
                                       const TocsinRelayIngestHints *hints,
                                       GDateTime                    *now,
                                       TocsinRelayRendered          *out)
{
  g_autoptr(TocsinTemplateScope) scope = NULL;

  g_return_if_fail (channel != NULL);
  g_return_if_fail (vars != NULL);
  g_return_if_fail (out != NULL);

  memset (out, 0, sizeof *out);
  scope = tocsin_template_scope_new (vars, now);
  if (headers != NULL)
    tocsin_template_scope_set_header_fill (scope, fill_scope_headers, headers);
  if (body_text)
    tocsin_template_scope_set_body_text (scope, body_text);
  out->missing = g_ptr_array_new_with_free_func (g_free);

  /* Over its work budget, a condition is not "filtered": the owner must simplify it. */
  if (!tocsin_template_evaluate (channel->condition, scope, out->missing))
    {
      if (!tocsin_template_scope_check (scope, &out->over_budget))
        return;
      out->filtered = TRUE;
      return;
    }

  if (hints != NULL)
    {
      out->type = hints->type;
      out->markdown = hints->markdown;
    }

  /* The channel's templates win; where it has none, what the sender said (hints) stands in. */
  if (!tocsin_template_is_empty (channel->title))
    out->title = tocsin_template_render (channel->title, scope, out->missing);
  else if (hints != NULL && hints->title != NULL && *hints->title != '\0')
    out->title = g_strdup (hints->title);
  else
    out->title = g_strdup (channel->name);
  if (tocsin_template_is_empty (channel->body) && hints != NULL && hints->body != NULL)
    out->body = g_strdup (hints->body);
  else
    out->body = tocsin_template_render (channel->body, scope, out->missing);

  /* A link template wins; without one, the `externalLink` variable is the link (Echobell). */
  if (!tocsin_template_is_empty (channel->link))
    out->link = tocsin_template_render (channel->link, scope, out->missing);
  else if (hints != NULL && hints->link != NULL)
    out->link = g_strdup (hints->link);
  else
    {
      JsonNode *node = json_object_get_member (vars, "externalLink");

      if (node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
          json_node_get_value_type (node) == G_TYPE_STRING)
        out->link = g_strdup (json_node_get_string (node));
    }
  if (out->link != NULL && *g_strstrip (out->link) == '\0')
    g_clear_pointer (&out->link, g_free);
  if (out->link != NULL && !tocsin_link_is_safe (out->link, &out->link_dropped))
    g_clear_pointer (&out->link, g_free);

  /* The forwards' conditions see what the templates saw (issue 15). */
  out->forwards = tocsin_relay_forwards_select (channel, TOCSIN_REQUEST_EVENT_MESSAGE, scope);

  /* A template over its work budget (docs/templates.md) renders nothing worth storing. */
  if (!tocsin_template_scope_check (scope, &out->over_budget))
    return;
  render_actions (channel, vars, headers, body_text, hints, now, out);
}

gsize
tocsin_relay_ingest_max_message (gsize max_queue_bytes)
{
  return max_queue_bytes / 4;
}

TocsinMessage *
tocsin_relay_ingest_build_message (const TocsinRelayChannel  *channel,
                                   JsonObject                *vars,
                                   const TocsinRelayRendered *rendered,
                                   gint64                     time_ms,
                                   gsize                      max_message,
                                   GError                   **error)
{
  g_autoptr(TocsinMessage) message = NULL;
  g_autofree char *encoded = NULL;
  gsize length = 0;

  g_return_val_if_fail (channel != NULL, NULL);
  g_return_val_if_fail (rendered != NULL && !rendered->filtered, NULL);

  message = tocsin_message_new ();
  message->channel = channel->id;
  message->channel_name = g_strdup (channel->name);
  message->time_ms = time_ms;
  g_free (message->title);
  message->title = g_strdup (rendered->title);
  g_free (message->body);
  message->body = g_strdup (rendered->body);
  message->external_link = g_strdup (rendered->link);
  g_clear_pointer (&message->vars, json_object_unref);
  message->vars = json_object_ref (vars);
  message->type = rendered->type;
  message->markdown = rendered->markdown;
  for (guint i = 0; rendered->actions != NULL && i < rendered->actions->len; i++)
    g_ptr_array_add (message->actions, tocsin_relay_action_copy (rendered->actions->pdata[i]));

  /* What subscribers receive is this encoding (its id added by the store): escapes can make it
   * several times the request (a control character is 6 bytes as \u0001) and templates repeat
   * variables. Past the bound, every subscriber would be closed when it reached the message,
   * on every reconnect; so it is refused here, before anything is stored. */
  message->id = G_MAXINT64;
  encoded = tocsin_message_to_data (message, &length);
  message->id = 0;
  if (length > max_message)
    {
      g_autofree char *size = g_format_size_full (length, G_FORMAT_SIZE_IEC_UNITS);
      g_autofree char *limit = g_format_size_full (max_message, G_FORMAT_SIZE_IEC_UNITS);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                   _("The message would be %s once rendered and encoded (its variables, "
                     "title, body and link), more than this relay delivers (%s); send "
                     "fewer or shorter variables"), size, limit);
      return NULL;
    }
  return g_steal_pointer (&message);
}

/* ---- admission: method, token, size, rate ------------------------------------------- */

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

/* Returns the channel the request may go to, or NULL with the answer already set. */
/* FALSE with a 401 already set when @channel requires a signature that the request lacks.
 * Only /t/ (@native) carries signatures: the other ways in cannot be signed, so a channel that
 * requires one refuses them. */
static gboolean
check_signature (TocsinRelay                    *relay,
                 SoupServerMessage              *msg,
                 const TocsinRelayChannel       *channel,
                 gboolean                        native,
                 const TocsinRelayIngestDialect *dialect,
                 gpointer                        user_data,
                 TocsinRelaySignatureScheme     *scheme)
{
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;

  if (!tocsin_relay_signature_parse_scheme (channel->signature_scheme, scheme, NULL))
    {
      /* A scheme this relay does not know (a newer one's database): refuse, never let through. */
      reply_channel_error (relay, dialect, user_data, msg, channel->id, SOUP_STATUS_UNAUTHORIZED,
                           _("This channel requires a signature scheme this relay does not "
                             "know; nothing was delivered"));
      return FALSE;
    }
  if (*scheme == TOCSIN_RELAY_SIGNATURE_NONE)
    return TRUE;
  if (!native)
    {
      reply_channel_error (relay, dialect, user_data, msg, channel->id,
                           SOUP_STATUS_UNAUTHORIZED,
                           _("This channel requires signed webhooks, which only its webhook URL "
                             "(/t/…) takes; nothing was delivered"));
      return FALSE;
    }
  if (!g_str_equal (soup_server_message_get_method (msg), "GET"))
    body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  if (!tocsin_relay_signature_verify (*scheme, channel->signature_header,
                                      soup_server_message_get_request_headers (msg), body,
                                      channel->signature_secret,
                                      g_get_real_time () / G_USEC_PER_SEC, &error))
    {
      reply_channel_error (relay, dialect, user_data, msg, channel->id, SOUP_STATUS_UNAUTHORIZED,
                           error->message);
      return FALSE;
    }
  return TRUE;
}

/* Before the channel is looked up: FALSE with the answer set. */
static gboolean
admit_method (SoupServerMessage              *msg,
              const TocsinRelayIngestDialect *dialect,
              gpointer                        user_data)
{
  const char *method = soup_server_message_get_method (msg);

  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Cache-Control", "no-store");

  if (!g_str_equal (method, "GET") && !g_str_equal (method, "POST") &&
      !g_str_equal (method, "PUT"))
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Allow", "GET, POST, PUT");
      dialect->reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
                            _("Webhooks take GET, POST or PUT"), user_data);
      return FALSE;
    }
  return TRUE;
}

/* Once the store's reader thread has looked the token up (@found, NULL when unknown). */
static TocsinRelayChannel *
admit (TocsinRelay                    *relay,
       SoupServerMessage              *msg,
       TocsinRelayChannel             *found,
       const TocsinRelayIngestDialect *dialect,
       gpointer                        user_data,
       gboolean                       *has_body,
       TocsinRelaySignatureScheme     *scheme)
{
  g_autoptr(TocsinRelayChannel) channel = found ? tocsin_relay_channel_ref (found) : NULL;
  SoupMessageBody *request_body = soup_server_message_get_request_body (msg);
  const char *method = soup_server_message_get_method (msg);
  guint remaining = 0, reset = 0, retry_after = 0;

  /* A Direct key is not a webhook URL: it rings through /d/ (tocsin-relay-direct.c). */
  if (channel == NULL || channel->direct)
    {
      dialect->reply_error (msg, SOUP_STATUS_NOT_FOUND,
                            _("No channel has this webhook URL; check the token (it "
                              "may have been rotated)"), user_data);
      return NULL;
    }

  /* As sent: tocsin_relay_body_read bounds it again once decompressed. */
  *has_body = !g_str_equal (method, "GET") && request_body->length > 0;
  if (*has_body && (gsize) request_body->length > relay->config.max_body)
    {
      g_autofree char *limit = g_format_size_full (relay->config.max_body,
                                                   G_FORMAT_SIZE_IEC_UNITS);
      g_autofree char *sentence = g_strdup_printf (_("The body is larger than this relay takes "
                                                     "(%s)"), limit);

      reply_channel_error (relay, dialect, user_data, msg, channel->id,
                           SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, sentence);
      return NULL;
    }

  /* Before the rate limit: a request that is not the sender's (unsigned, forged) must not use
   * up the channel's budget for the real one. */
  if (!check_signature (relay, msg, channel, dialect == &native_dialect, dialect, user_data,
                        scheme))
    return NULL;
  if (channel->paused)
    {
      reply_channel_error (relay, dialect, user_data, msg, channel->id, SOUP_STATUS_LOCKED,
                           tocsin_relay_ingest_paused_sentence ());
      return NULL;
    }

  if (!tocsin_relay_rate_limit_take (relay->rate_limit, channel->id,
                                     relay->config.rate_per_second,
                                     relay->config.rate_burst, g_get_monotonic_time (),
                                     &remaining, &reset, &retry_after))
    {
      g_autofree char *retry = g_strdup_printf ("%u", retry_after);

      set_rate_headers (msg, relay, remaining, reset);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Retry-After", retry);
      reply_error_printf (dialect, user_data, msg, 429,
                          g_dngettext (GETTEXT_PACKAGE,
                                       "This channel takes webhooks faster than its limit; retry "
                                       "in %u second",
                                       "This channel takes webhooks faster than its limit; retry "
                                       "in %u seconds", retry_after),
                          retry_after);
      /* libsoup 3.2 has no phrase for 429. */
      soup_server_message_set_status (msg, 429, "Too Many Requests");
      tocsin_relay_ingest_note (relay, channel->id, 429,
                                _("Refused: faster than the channel's rate limit"));
      return NULL;
    }
  set_rate_headers (msg, relay, remaining, reset);
  return g_steal_pointer (&channel);
}

/* Decodes the query and the body into variables; NULL with the answer already set. */
static JsonObject *
read_vars (TocsinRelay        *relay,
           SoupServerMessage  *msg,
           gint64              channel_id,
           gboolean            has_body,
           char              **body_text)
{
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(GError) error = NULL;
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));

  if (query != NULL && *query != '\0' &&
      !tocsin_relay_body_add_form_pairs (vars, query, -1, _("query string"), &error))
    {
      reply_channel_error (relay, &native_dialect, NULL, msg, channel_id, SOUP_STATUS_BAD_REQUEST,
                           error->message);
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
          reply_channel_error (relay, &native_dialect, NULL, msg, channel_id, status,
                               error->message);
          return NULL;
        }
    }
  return g_steal_pointer (&vars);
}

/* ---- commit: store, answer, publish --------------------------------------------------- */

static void
answer_done (Pending  *pending,
             gboolean  filtered,
             gint64    id,
             gint64    replaces,
             gboolean  duplicate)
{
  g_autofree char *sentence = NULL;
  /* Who is online to receive it, in this process (for an owner wondering why nothing rang). */
  guint subscribers = pending->relay->hub != NULL
                        ? tocsin_relay_hub_count_subscribers (pending->relay->hub,
                                                              pending->channel_id)
                        : 0;
  TocsinRelayIngestOutcome outcome = {
    .channel_id = pending->channel_id,
    .channel_name = pending->channel_name,
    .filtered = filtered,
    .id = id,
    .time_ms = pending->time_ms,
    .replaces = replaces,
    .duplicate = duplicate,
    .rendered = &pending->rendered,
    .subscribers = subscribers,
  };

  if (filtered)
    sentence = g_strdup (_("Filtered out by the channel's condition: nothing was delivered"));
  else if (duplicate)
    sentence = g_strdup_printf (_("A redelivery of message %" PRId64 ": not delivered again"),
                                (int64_t) id);
  else
    sentence = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                             "Message %" PRId64 " delivered to %u subscriber "
                                             "online",
                                             "Message %" PRId64 " delivered to %u subscribers "
                                             "online", subscribers),
                                (int64_t) id, subscribers);
  tocsin_relay_ingest_note (pending->relay, pending->channel_id, SOUP_STATUS_OK, sentence);
  pending->dialect->reply_done (pending->msg, &outcome, pending->user_data);
}

static void
commit_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(Pending) pending = user_data;
  g_autoptr(TocsinRelayCommit) commit = NULL;
  g_autoptr(GError) error = NULL;

  commit = tocsin_relay_store_commit_finish (pending->relay->store, result, &error);
  if (commit == NULL)
    {
      if (g_error_matches (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND))
        pending->dialect->reply_error (pending->msg, SOUP_STATUS_NOT_FOUND,
                                       _("The channel was deleted while this webhook arrived"),
                                       pending->user_data);
      else
        {
          g_message ("Could not store a message for channel %" G_GINT64_FORMAT ": %s",
                     pending->channel_id, error->message);
          /* 503, not 500: the store failing (a full disk, an I/O error) is the relay's
           * condition, not the request's, and the same webhook may well succeed later. A full
           * disk takes a person; PostgreSQL restarting or failing over takes seconds
           * (test-cluster-standby: the first 200 came 0.4-0.9 s after the promotion). */
          soup_message_headers_replace (soup_server_message_get_response_headers (pending->msg),
                                        "Retry-After",
                                        tocsin_relay_store_get_database (pending->relay->store)
                                        != NULL ? "5" : "30");
          reply_channel_error (pending->relay, pending->dialect, pending->user_data,
                               pending->msg, pending->channel_id,
                               SOUP_STATUS_SERVICE_UNAVAILABLE,
                               g_error_matches (error, TOCSIN_RELAY_STORE_ERROR,
                                                TOCSIN_RELAY_STORE_ERROR_UNKNOWN)
                               ? _("The relay lost its database while committing the message, "
                                   "so it may have been stored: send it again with the same "
                                   "Idempotency-Key or eventId, and it is kept once")
                               : tocsin_relay_store_get_database (pending->relay->store) != NULL
                               ? _("The relay could not store the message (its database did "
                                   "not answer); nothing was stored, try again later")
                               : _("The relay could not store the message (its disk may be "
                                   "full); nothing was stored, try again later"));
        }
      soup_server_message_unpause (pending->msg);
      return;
    }

  answer_done (pending, FALSE, commit->id, commit->replaces, commit->duplicate);
  soup_server_message_unpause (pending->msg);
  /* Its deliveries were queued with it (a duplicate queued none). */
  if (!commit->duplicate && pending->rendered.forwards != NULL && pending->relay->forwards)
    tocsin_relay_forwards_kick (pending->relay->forwards);

  /* Durable now: subscribers may see it. A duplicate went out the first time. The answer
   * first: unpausing queues libsoup's write at default priority, and publish_soon queues the
   * fan-out behind it, so the sender never waits for thousands of frames. */
  if (!commit->duplicate && pending->relay->hub != NULL)
    tocsin_relay_hub_publish_soon (pending->relay->hub, pending->channel_id, commit->id,
                                   commit->message);
}

/* Render, bound, commit: what every way in shares once it has a channel and variables. Takes
 * @user_data (frees it with @destroy once answered). */
static gboolean
run (TocsinRelay                    *relay,
     SoupServerMessage              *msg,
     TocsinRelayChannel             *channel,
     JsonObject                     *vars,
     SoupMessageHeaders             *scope_headers,
     const char                     *body_text,
     const TocsinRelayIngestHints   *hints,
     TocsinRelaySignatureScheme      scheme,
     const TocsinRelayIngestDialect *dialect,
     gpointer                        user_data,
     GDestroyNotify                  destroy)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  g_autoptr(Pending) pending = g_new0 (Pending, 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinMessage) message = NULL;
  g_autofree char *key = NULL, *key_hash = NULL, *content_hash = NULL;
  GArray *forwards;

  pending->relay = relay;
  pending->msg = g_object_ref (msg);
  pending->channel_id = channel->id;
  pending->channel_name = g_strdup (channel->name);
  pending->time_ms = g_get_real_time () / 1000;
  pending->dialect = dialect;
  pending->user_data = user_data;
  pending->destroy = destroy;

  tocsin_relay_ingest_render_with_hints (channel, vars, scope_headers, body_text, hints, NULL,
                                         &pending->rendered);
  if (pending->rendered.over_budget != NULL)
    {
      reply_channel_error (relay, dialect, user_data, msg, channel->id,
                           SOUP_STATUS_UNPROCESSABLE_ENTITY,
                           pending->rendered.over_budget->message);
      return FALSE;
    }
  if (pending->rendered.filtered)
    {
      answer_done (pending, TRUE, 0, 0, FALSE);
      return FALSE;
    }

  message = tocsin_relay_ingest_build_message (channel, vars, &pending->rendered,
                                               pending->time_ms,
                                               tocsin_relay_ingest_max_message (
                                                 relay->config.max_queue_bytes),
                                               &error);
  if (message == NULL)
    {
      reply_channel_error (relay, dialect, user_data, msg, channel->id,
                           SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, error->message);
      return FALSE;
    }

  /* A signed delivery's own id dedups on its own: a sender's retry never rings twice. */
  key = tocsin_relay_signature_delivery_id (scheme, headers, vars);
  if (key == NULL)
    key = tocsin_relay_ingest_dedup_key (vars, headers);
  tocsin_relay_ingest_dedup_hashes (key, vars, &key_hash, &content_hash);

  /* Held (paused since its lookup, lookup_start) until the message is durable (commit_done). */
  forwards = pending->rendered.forwards;
  tocsin_relay_store_commit_with_forwards_async (relay->store, channel->id,
                                                 g_steal_pointer (&message), key_hash,
                                                 content_hash, channel->forwards, forwards,
                                                 commit_done, g_steal_pointer (&pending));
  return TRUE;
}

/* The trigger token is looked up on the store's reader thread
 * (tocsin_relay_store_find_channel_async()): a webhook never makes the main loop wait on the
 * database. The request is paused meanwhile and
 * held by a reference, as for its commit (commit_done). */
typedef struct
{
  TocsinRelay                    *relay;
  SoupServerMessage              *msg;
  const TocsinRelayIngestDialect *dialect;
  gpointer                        user_data;      /* submit: owned, destroy */
  GDestroyNotify                  destroy;
  JsonObject                     *vars;           /* submit: a reference */
  SoupMessageHeaders             *scope_headers;  /* submit: a reference */
  const TocsinRelayIngestHints   *hints;          /* submit: points into user_data */
  GDestroyNotify                  destroy_saved;  /* submit: handed to run() */
  gboolean                        submit;
} Lookup;

static void
lookup_free (Lookup *lookup)
{
  g_clear_object (&lookup->msg);
  g_clear_pointer (&lookup->vars, json_object_unref);
  g_clear_pointer (&lookup->scope_headers, soup_message_headers_unref);
  if (lookup->destroy != NULL && lookup->user_data != NULL)
    lookup->destroy (lookup->user_data);
  g_free (lookup);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Lookup, lookup_free)

static void
lookup_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(Lookup) lookup = user_data;
  g_autoptr(TocsinRelayChannel) found = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(JsonObject) vars = NULL;
  g_autofree char *body_text = NULL;
  TocsinRelaySignatureScheme scheme = TOCSIN_RELAY_SIGNATURE_NONE;
  SoupServerMessage *msg = lookup->msg;
  gboolean has_body = FALSE, held = FALSE;
  g_autoptr(GError) error = NULL;

  /* The same work whether the token is known or not (see find_by_token). */
  found = tocsin_relay_store_find_channel_finish (lookup->relay->store, result, &error);
  if (error != NULL)
    {
      /* The database (PostgreSQL) did not answer: not an unknown token (a 404 would tell the
       * sender to give up), but the relay's condition, as a failed commit is. */
      g_message ("Could not look a webhook's channel up: %s", error->message);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Retry-After", "5");
      lookup->dialect->reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
                                    _("The relay cannot reach its database right now; nothing "
                                      "was stored, try again later"), lookup->user_data);
      soup_server_message_unpause (msg);
      return;
    }
  channel = admit (lookup->relay, msg, found, lookup->dialect, lookup->user_data,
                   &has_body, &scheme);
  if (channel != NULL && lookup->submit)
    {
      /* run() owns the dialect's data from here. */
      lookup->destroy = NULL;
      held = run (lookup->relay, msg, channel, lookup->vars, lookup->scope_headers, NULL,
                  lookup->hints, scheme, lookup->dialect, lookup->user_data, lookup->destroy_saved);
    }
  else if (channel != NULL)
    {
      vars = read_vars (lookup->relay, msg, channel->id, has_body, &body_text);
      if (vars != NULL)
        held = run (lookup->relay, msg, channel, vars,
                    soup_server_message_get_request_headers (msg), body_text, NULL, scheme,
                    &native_dialect, NULL, NULL);
    }
  /* Answered already, or held again until its commit (which unpauses it). */
  if (!held)
    soup_server_message_unpause (msg);
}

static void
lookup_start (Lookup     *lookup,
              const char *token)
{
  soup_server_message_pause (lookup->msg);
  tocsin_relay_store_find_channel_async (lookup->relay->store, TOCSIN_RELAY_TOKEN_TRIGGER, token,
                                         lookup_done, lookup);
}

void
tocsin_relay_ingest_submit (TocsinRelay                    *relay,
                            SoupServerMessage              *msg,
                            const char                     *token,
                            JsonObject                     *vars,
                            SoupMessageHeaders             *scope_headers,
                            const TocsinRelayIngestHints   *hints,
                            const TocsinRelayIngestDialect *dialect,
                            gpointer                        user_data,
                            GDestroyNotify                  destroy)
{
  Lookup *lookup;

  g_return_if_fail (relay != NULL);
  g_return_if_fail (SOUP_IS_SERVER_MESSAGE (msg));
  g_return_if_fail (token != NULL && vars != NULL && dialect != NULL);

  if (!admit_method (msg, dialect, user_data))
    {
      if (destroy != NULL && user_data != NULL)
        destroy (user_data);
      return;
    }
  lookup = g_new0 (Lookup, 1);
  lookup->relay = relay;
  lookup->msg = g_object_ref (msg);
  lookup->dialect = dialect;
  lookup->user_data = user_data;
  lookup->destroy = destroy;
  lookup->destroy_saved = destroy;
  lookup->vars = json_object_ref (vars);
  lookup->scope_headers = scope_headers ? soup_message_headers_ref (scope_headers) : NULL;
  lookup->hints = hints;
  lookup->submit = TRUE;
  lookup_start (lookup, token);
}

void
tocsin_relay_ingest_handle (TocsinRelay       *relay,
                            SoupServerMessage *msg,
                            const char        *token)
{
  Lookup *lookup;

  g_return_if_fail (relay != NULL);
  g_return_if_fail (SOUP_IS_SERVER_MESSAGE (msg));

  if (!admit_method (msg, &native_dialect, NULL))
    return;
  lookup = g_new0 (Lookup, 1);
  lookup->relay = relay;
  lookup->msg = g_object_ref (msg);
  lookup->dialect = &native_dialect;
  lookup_start (lookup, token);
}

void
tocsin_relay_ingest_set_rate_headers (SoupServerMessage *msg,
                                      TocsinRelay       *relay,
                                      guint              remaining,
                                      guint              reset)
{
  set_rate_headers (msg, relay, remaining, reset);
}

/* ---- commit for other triggers (the email trigger) ------------------------------------ */

typedef struct
{
  TocsinRelay *relay;
  gint64       channel_id;
  gboolean     forwards;   /* deliveries were queued with the message */
} CommitTask;

static void
commit_task_done (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  CommitTask *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  TocsinRelayCommit *done;

  done = tocsin_relay_store_commit_finish (data->relay->store, result, &error);
  if (done == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  /* Durable now, as for a webhook (commit_done): subscribers may see it. */
  if (!done->duplicate && data->relay->hub != NULL)
    tocsin_relay_hub_publish_soon (data->relay->hub, data->channel_id, done->id, done->message);
  if (!done->duplicate && data->forwards && data->relay->forwards != NULL)
    tocsin_relay_forwards_kick (data->relay->forwards);
  g_task_return_pointer (task, done, (GDestroyNotify) tocsin_relay_commit_free);
}

void
tocsin_relay_ingest_commit_async (TocsinRelay         *relay,
                                  gint64               channel_id,
                                  TocsinMessage       *message,
                                  const char          *dedup_key,
                                  JsonObject          *vars,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  tocsin_relay_ingest_commit_with_forwards_async (relay, channel_id, message, dedup_key, vars,
                                                  NULL, NULL, callback, user_data);
}

void
tocsin_relay_ingest_commit_with_forwards_async (TocsinRelay         *relay,
                                                gint64               channel_id,
                                                TocsinMessage       *message,
                                                const char          *dedup_key,
                                                JsonObject          *vars,
                                                GPtrArray           *forwards,
                                                GArray              *indices,
                                                GAsyncReadyCallback  callback,
                                                gpointer             user_data)
{
  g_autofree char *key_hash = NULL, *content_hash = NULL;
  CommitTask *data;
  GTask *task;

  g_return_if_fail (relay != NULL && message != NULL && vars != NULL);

  tocsin_relay_ingest_dedup_hashes (dedup_key, vars, &key_hash, &content_hash);
  data = g_new0 (CommitTask, 1);
  data->relay = relay;
  data->channel_id = channel_id;
  data->forwards = forwards != NULL && indices != NULL && indices->len > 0;
  task = g_task_new (NULL, NULL, callback, user_data);
  g_task_set_source_tag (task, tocsin_relay_ingest_commit_async);
  g_task_set_task_data (task, data, g_free);
  tocsin_relay_store_commit_with_forwards_async (relay->store, channel_id, message, key_hash,
                                                 content_hash, forwards, indices,
                                                 commit_task_done, task);
}

TocsinRelayCommit *
tocsin_relay_ingest_commit_finish (GAsyncResult  *result,
                                   GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
