/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libFuzzer target for the relay's ingest parser: what a webhook sender controls (query, body,
 * content type, headers) turned into the variables, the rendered message and its encoding.
 *
 * It calls the relay's own entry points, as tocsin_relay_ingest_handle does between "the request
 * has arrived" and "commit it": tocsin_relay_body_add_form_pairs (the query),
 * tocsin_relay_body_read (the body, after its Content-Encoding), tocsin_relay_ingest_render and
 * tocsin_relay_ingest_build_message; and tocsin_relay_direct_read_fields, which /d/{key} runs on
 * the same variables (a Direct key's request is decoded as a webhook's).
 *
 * Input: one selector byte (bits 0-2: Content-Type, bits 3-4: Content-Encoding), then
 * NUL-separated parts: query, body, header name, header value,
 * title template, link template. Beyond "does not crash", it checks: an error exactly when the
 * parse fails, with a status a sender can act on (400 or 415) and a UTF-8 sentence; every
 * variable name and string is valid UTF-8; a link is only kept when safe; and the message the
 * relay would store and send decodes, as every subscriber decodes it, into the same message, and
 * is never larger than the bound. The channel has action buttons (a view button on the sender's
 * externalLink, an http one whose URL, header and raw body take the sender's title and body):
 * each one that renders is usable (a safe view link, UTF-8 text) and survives the encoding.
 */

#define G_LOG_DOMAIN "fuzz-ingest"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "tocsin-relay-actions.h"
#include "tocsin-relay-body.h"
#include "tocsin-relay-direct.h"
#include "tocsin-relay-ingest.h"
#include "tocsin-template.h"

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
  "application/json",
  "application/x-www-form-urlencoded",
  "text/plain",
  "application/cloudevents+json; charset=utf-8",
  "text/plain; charset=iso-8859-1",
  NULL,   /* no Content-Type */
  "application/xml",
  "APPLICATION/JSON; charset=\"UTF-8\"",
};

static const char *content_encodings[] = { NULL, "gzip", "deflate", "br" };

/* libsoup warns (and our fatal mask aborts) on header names or values it would never have
 * parsed off the wire; keep to what a peer can actually send. */
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
check_vars (JsonObject *vars)
{
  g_autoptr(GList) members = json_object_get_members (vars);

  for (GList *l = members; l; l = l->next)
    {
      JsonNode *node = json_object_get_member (vars, l->data);

      check (g_utf8_validate (l->data, -1, NULL), "variable names are valid UTF-8");
      if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
        check (g_utf8_validate (json_node_get_string (node), -1, NULL),
               "string variables are valid UTF-8");
    }
}

/* The channel's buttons, compiled once (tocsin-relay-actions.c, as the store loads them). */
static GPtrArray *
channel_actions (void)
{
  static GPtrArray *actions;

  if (actions == NULL)
    actions = tocsin_relay_actions_load (1,
      "[{\"name\": \"Open\", \"kind\": \"view\", \"url\": \"{{externalLink}}\"},"
      " {\"name\": \"Ack\", \"method\": \"PUT\", \"url\": \"https://x.example/{{title}}\","
      "  \"headers\": {\"X-Title\": \"{{title}}\"}, \"format\": \"raw\", \"body\": \"{{body}}\"},"
      " {\"name\": \"Form\", \"kind\": \"http\", \"condition\": \"title\","
      "  \"url\": \"https://x.example/\", \"format\": \"form\","
      "  \"params\": [{\"name\": \"t\", \"type\": \"sha256\", \"value\": \"{{title}}\"}]}]");
  return actions;
}

static void
check_actions (GPtrArray *actions)
{
  for (guint i = 0; actions != NULL && i < actions->len; i++)
    {
      TocsinMessageAction *action = actions->pdata[i];

      check (g_utf8_validate (action->label, -1, NULL) && *action->label != '\0',
             "a button has a label");
      if (g_str_equal (action->kind, "view"))
        check (tocsin_link_is_safe (action->url, NULL), "a view button opens a safe link");
      else
        check (action->body == NULL || g_utf8_validate (action->body, -1, NULL),
               "an http button's body is UTF-8 text");
    }
}

static void
check_message_survives (TocsinMessage *message)
{
  g_autoptr(TocsinMessage) decoded = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *encoded = NULL;
  gsize length = 0;

  encoded = tocsin_message_to_data (message, &length);
  decoded = tocsin_message_new_from_data (encoded, length, &error);
  if (decoded == NULL)
    g_printerr ("subscribers could not decode what the relay sends: %s\n%.*s\n", error->message,
                (int) MIN (length, 2000), encoded);
  check (decoded != NULL, "what the relay would send decodes");
  check (decoded->actions->len == message->actions->len, "every button survives");
  check (g_strcmp0 (decoded->title, message->title) == 0, "the title survives");
  check (g_strcmp0 (decoded->body, message->body) == 0, "the body survives");
  check (g_strcmp0 (decoded->external_link, message->external_link) == 0, "the link survives");
  check (json_object_get_size (decoded->vars) == json_object_get_size (message->vars),
         "every variable survives");
}

/* What /d/{key} makes of the same variables: a sentence (a 400), or fields it can send. */
static void
check_direct (JsonObject *vars,
              const char *body_text)
{
  g_auto(TocsinRelayDirectFields) fields = { 0 };
  g_autoptr(GError) error = NULL;

  if (!tocsin_relay_direct_read_fields (vars, body_text, &fields, &error))
    {
      check (error != NULL && g_utf8_validate (error->message, -1, NULL),
             "a refused Direct request says why, in UTF-8");
      return;
    }
  check (error == NULL, "no error when a Direct request is accepted");
  check (fields.title != NULL && *fields.title != '\0' &&
         g_utf8_validate (fields.title, -1, NULL), "a Direct title is never empty, and UTF-8");
  check (fields.body != NULL && g_utf8_validate (fields.body, -1, NULL),
         "a Direct body is UTF-8");
  check (fields.link == NULL || tocsin_link_is_safe (fields.link, NULL),
         "a Direct link is kept only when safe");
  check (fields.type == TOCSIN_MESSAGE_TYPE_ACTIVE ||
         fields.type == TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE ||
         fields.type == TOCSIN_MESSAGE_TYPE_CALLING, "a Direct type is one of Echobell's three");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *copy = NULL;
  const char *parts[6] = { "", "", "", "", "", "" };
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinTemplate) title_template = NULL;
  g_autoptr(TocsinTemplate) link_template = NULL;
  g_autoptr(TocsinTemplate) empty = NULL;
  g_autoptr(TocsinMessage) message = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_from_unix_utc (1795452000);
  g_auto(TocsinRelayRendered) rendered = { 0 };
  TocsinRelayChannel channel = { 0 };
  g_autofree char *body_text = NULL;
  g_autofree char *key = NULL;
  const char *type, *encoding;
  gsize body_length;
  guint status = 0, n = 0;
  const char *p, *end;

  if (size < 1)
    return 0;
  type = content_types[data[0] % G_N_ELEMENTS (content_types)];
  encoding = content_encodings[(data[0] >> 3) % G_N_ELEMENTS (content_encodings)];
  copy = g_malloc (size);
  memcpy (copy, data + 1, size - 1);
  copy[size - 1] = '\0';
  end = copy + size - 1;
  for (p = copy; n < G_N_ELEMENTS (parts) && p <= end; p += strlen (p) + 1)
    parts[n++] = p;
  /* The body is the rest of the input after the query, NULs included, so that binary (gzip)
   * bodies reach the decoder; the other parts then come from what follows its first NUL. */
  body_length = n > 1 ? strlen (parts[1]) : 0;
  if (n > 1 && encoding != NULL)
    body_length = end - parts[1];

  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  if (type)
    soup_message_headers_replace (headers, "Content-Type", type);
  if (encoding)
    soup_message_headers_replace (headers, "Content-Encoding", encoding);
  if (header_ok (parts[2], parts[3]))
    soup_message_headers_append (headers, parts[2], parts[3]);

  /* The query: its variables first, as tocsin_relay_ingest_handle does. */
  if (*parts[0] != '\0' &&
      !tocsin_relay_body_add_form_pairs (vars, parts[0], -1, "query string", &error))
    {
      check (error != NULL && g_utf8_validate (error->message, -1, NULL),
             "a refused query says why, in UTF-8");
      return 0;
    }
  check (error == NULL, "no error when the query is accepted");

  /* The body, when there is one. */
  if (body_length > 0)
    {
      gboolean ok;

      bytes = g_bytes_new (parts[1], body_length);
      ok = tocsin_relay_body_read (headers, bytes, MAX_BODY, vars, &body_text, &status, &error);
      check (ok == (error == NULL), "an error exactly when the body is refused");
      if (!ok)
        {
          check (status == 400 || status == 413 || status == 415,
                 "a refusal is 400, 413 or 415");
          check (g_utf8_validate (error->message, -1, NULL), "the reason is valid UTF-8");
          return 0;
        }
    }
  check_vars (vars);
  check_direct (vars, body_text);

  key = tocsin_relay_ingest_dedup_key (vars, headers);
  check (key == NULL || *key != '\0', "a dedup key is never empty");

  /* The channel's templates: the title and link from the input, an empty body and condition. */
  empty = tocsin_template_new ("body", "", NULL);
  title_template = tocsin_template_new ("title", g_utf8_validate (parts[4], -1, NULL) ? parts[4]
                                                                                     : "", NULL);
  link_template = tocsin_template_new ("link", g_utf8_validate (parts[5], -1, NULL) ? parts[5]
                                                                                   : "", NULL);
  channel.id = 1;
  channel.name = (char *) "Fuzz";
  channel.title = title_template ? title_template : empty;
  channel.body = empty;
  channel.link = link_template ? link_template : empty;
  channel.condition = empty;
  channel.actions = channel_actions ();
  tocsin_relay_ingest_render (&channel, vars, headers, body_text, now, &rendered);
  check (channel.actions->len == 3, "the buttons compile");
  check_actions (rendered.actions);
  check (!rendered.filtered, "an empty condition lets everything through");
  check (rendered.link == NULL || rendered.link_dropped == NULL, "a dropped link is gone");

  /* The message as the relay would commit and send it: within the bound, or refused. */
  message = tocsin_relay_ingest_build_message (&channel, vars, &rendered, 1795452000000,
                                               MAX_MESSAGE, &error);
  if (message == NULL)
    {
      check (error != NULL && g_utf8_validate (error->message, -1, NULL),
             "a message over the bound is refused with a sentence");
      return 0;
    }
  message->id = 1;
  {
    gsize length = 0;
    g_autofree char *encoded = tocsin_message_to_data (message, &length);

    check (encoded != NULL && length <= MAX_MESSAGE, "a stored message is within the bound");
  }
  check_message_survives (message);
  return 0;
}
