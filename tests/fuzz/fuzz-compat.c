/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libFuzzer target for the ntfy and Gotify mapping (tocsin-relay-compat.c): the headers, query
 * and body a sender of either service controls, read into the template variables and the hints
 * that stand in for a channel's templates, then rendered and built into the message the relay
 * would store, as the handler does before tocsin_relay_ingest_submit() commits it.
 *
 * Input: one selector byte (bit 0: Gotify, else ntfy; bit 1: ntfy's JSON form POST /, else
 * PUT /{topic}; bits 2-3: Content-Type), then NUL-separated parts: path, query, body, and up to
 * four header name/value pairs. Beyond "does not crash": an error exactly when the request is
 * refused, in the compat domain with a status a sender can act on and a UTF-8 sentence; on
 * success a token, a message that is never empty, ntfy's priority within 1 to 5, at most 3
 * actions, variables that are valid UTF-8 and never hold the token when it was the topic, hints
 * in UTF-8; and the built message decodes as every subscriber decodes it.
 */
#define G_LOG_DOMAIN "fuzz-compat"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "tocsin-json.h"
#include "tocsin-message.h"
#include "tocsin-relay-compat.h"
#include "tocsin-relay-ingest.h"
#include "tocsin-template.h"
#include "tocsin-token.h"

#define MAX_BODY (64 * 1024)
#define MAX_MESSAGE (256 * 1024)

static void
check (gboolean    ok,
       const char *what)
{
  if (!ok)
    {
      g_printerr ("invariant broken: %s\n", what);
      abort ();
    }
}

static const char *content_types[] = {
  NULL,
  "application/json",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=b",
};

/* What libsoup would have parsed off the wire (it warns on anything else). */
static gboolean
header_ok (const char *name,
           const char *value)
{
  if (*name == '\0')
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && !strchr ("!#$%&'*+-.^_`|~", *p))
      return FALSE;
  for (const char *p = value; *p; p++)
    if (*p == '\r' || *p == '\n')
      return FALSE;
  return TRUE;
}

static void
check_request (TocsinRelayCompatRequest *request)
{
  g_autoptr(JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *text = NULL;
  g_autoptr(JsonNode) again = NULL;

  check (request->token != NULL && *request->token != '\0', "a request names a token");
  check (request->message != NULL && *request->message != '\0', "the message is never empty");
  check (g_utf8_validate (request->message, -1, NULL), "the message is UTF-8");
  check (g_utf8_validate (request->title, -1, NULL), "the title is UTF-8");
  check (request->gotify || (request->priority >= 1 && request->priority <= 5),
         "ntfy's priority is 1 to 5");
  check (json_array_get_length (request->actions) <= 3, "at most 3 actions");
  check (request->hints.actions == request->message_actions &&
         request->message_actions->len <= json_array_get_length (request->actions),
         "the buttons are some of ntfy's actions");
  for (guint i = 0; i < request->message_actions->len; i++)
    {
      TocsinMessageAction *action = request->message_actions->pdata[i];

      check (tocsin_link_is_safe (action->url, NULL), "a sender's button has a safe link");
      check (g_utf8_strlen (action->label, -1) >= 1 && g_utf8_strlen (action->label, -1) <= 64,
             "a sender's button has a label of 1 to 64 characters");
    }
  check (request->hints.body != NULL && g_utf8_validate (request->hints.body, -1, NULL),
         "the shown body is UTF-8");
  check (request->hints.title == NULL || g_utf8_validate (request->hints.title, -1, NULL),
         "the shown title is UTF-8");
  for (guint i = 0; i < json_array_get_length (request->tags); i++)
    {
      const char *tag = json_array_get_string_element (request->tags, i);

      check (tag != NULL && *tag != '\0', "tags are strings, never empty");
      tocsin_relay_compat_emoji (tag);
    }

  json_node_set_object (node, request->vars);
  check (tocsin_json_is_valid_text (node, TOCSIN_JSON_DEFAULT_MAX_DEPTH + 1),
         "the variables are valid UTF-8, and no deeper than a JSON body's");
  text = tocsin_json_to_string (node, FALSE);
  check (!json_object_has_member (request->vars, "topic") ||
         g_strcmp0 (request->topic, request->token) != 0,
         "the topic is a variable only when it is not the token");
  /* A token the relay could know (32 URL-safe characters; a shorter one may be any word). */
  check (!tocsin_token_is_wellformed (request->token) ||
         strstr (text, request->token) == NULL || strstr (request->message, request->token) ||
         strstr (request->title, request->token) || strstr (request->click, request->token) ||
         request->extras != NULL || json_array_get_length (request->actions) > 0 ||
         json_array_get_length (request->tags) > 0,
         "the token is in the variables only where the sender wrote it into a field");
  again = tocsin_json_parse (text, strlen (text), G_MAXSIZE, TOCSIN_JSON_DEFAULT_MAX_DEPTH,
                             NULL);
  check (again != NULL, "the variables read back as JSON");
}

static void
check_message (TocsinRelayCompatRequest *request)
{
  g_autoptr(TocsinTemplate) empty = tocsin_template_new ("body", "", NULL);
  g_autoptr(GDateTime) now = g_date_time_new_from_unix_utc (1795452000);
  g_auto(TocsinRelayRendered) rendered = { 0 };
  g_autoptr(TocsinMessage) message = NULL;
  g_autoptr(TocsinMessage) decoded = NULL;
  g_autofree char *encoded = NULL;
  TocsinRelayChannel channel = { 0 };
  gsize length = 0;

  channel.id = 1;
  channel.name = (char *) "Fuzz";
  channel.title = channel.body = channel.link = channel.condition = empty;
  tocsin_relay_ingest_render_with_hints (&channel, request->vars, NULL, NULL, &request->hints,
                                         now, &rendered);
  check (!rendered.filtered, "an empty condition lets everything through");
  check (g_strcmp0 (rendered.body, request->hints.body) == 0,
         "without a body template, the sender's message is the body");
  message = tocsin_relay_ingest_build_message (&channel, request->vars, &rendered,
                                               1795452000000, MAX_MESSAGE, NULL);
  if (message == NULL)
    return;
  message->id = 1;
  encoded = tocsin_message_to_data (message, &length);
  decoded = tocsin_message_new_from_data (encoded, length, NULL);
  check (decoded != NULL, "what the relay would send decodes");
  check (g_strcmp0 (decoded->title, message->title) == 0, "the title survives");
  check (decoded->type == message->type, "how it rings survives");
  check (decoded->markdown == message->markdown, "Markdown survives");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *copy = NULL;
  const char *parts[11] = { "", "", "", "", "", "", "", "", "", "", "" };
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(TocsinRelayCompatRequest) request = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *topic = NULL;
  gboolean gotify, json_form;
  const char *type;
  guint n = 0;
  const char *p, *end;

  if (size < 1)
    return 0;
  gotify = data[0] & 1;
  json_form = (data[0] >> 1) & 1;
  type = content_types[(data[0] >> 2) % G_N_ELEMENTS (content_types)];
  copy = g_malloc (size);
  memcpy (copy, data + 1, size - 1);
  copy[size - 1] = '\0';
  end = copy + size - 1;
  for (p = copy; n < G_N_ELEMENTS (parts) && p <= end; p += strlen (p) + 1)
    parts[n++] = p;

  /* The router sees any path. */
  tocsin_relay_compat_match ("POST", parts[0], &topic);
  g_clear_pointer (&topic, g_free);
  tocsin_relay_compat_match ("GET", parts[0], &topic);
  check (topic == NULL || (*topic != '\0' && strlen (topic) <= 64), "a topic is 1 to 64 bytes");

  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  if (type != NULL)
    soup_message_headers_replace (headers, "Content-Type", type);
  for (guint i = 3; i + 1 < G_N_ELEMENTS (parts); i += 2)
    if (header_ok (parts[i], parts[i + 1]))
      soup_message_headers_append (headers, parts[i], parts[i + 1]);
  if (*parts[2] != '\0')
    body = g_bytes_new (parts[2], strlen (parts[2]));

  if (gotify)
    request = tocsin_relay_compat_read_gotify (headers, parts[1], body, MAX_BODY, &error);
  else
    request = tocsin_relay_compat_read_ntfy (json_form ? NULL : "fuzz_topic", headers, parts[1],
                                             body, MAX_BODY, &error);
  check ((request == NULL) == (error != NULL), "an error exactly when the request is refused");
  if (request == NULL)
    {
      guint status = error->code / 100;

      check (error->domain == TOCSIN_RELAY_COMPAT_ERROR, "refusals carry ntfy's codes");
      check (status == 400 || status == 401 || status == 413 || status == 415,
             "a refusal is 400, 401, 413 (a multipart body of too many fields) or 415");
      check (g_utf8_validate (error->message, -1, NULL), "the reason is valid UTF-8");
      return 0;
    }
  check_request (request);
  check_message (request);
  return 0;
}
