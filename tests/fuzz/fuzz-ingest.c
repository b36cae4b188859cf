/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libFuzzer target for the relay's ingest parser: what a webhook sender controls (query, body,
 * content type, headers) turned into the variables, the rendered message and its encoding.
 *
 * The relay keeps its parsing functions static in tocsin-relay-ingest.c (read_body takes the
 * SoupServerMessage; add_form_pairs, dedup_key, add_scope_header), so this target includes that
 * file, to fuzz exactly the code that ships, and drives it as tocsin_relay_ingest_handle does
 * between "the request has arrived" and "commit it". (A pure entry point, say
 * tocsin_relay_ingest_parse (method, query, SoupMessageHeaders *, GBytes *body, JsonObject *vars,
 * char **body_text, guint *status, GError **), would let it call one function instead.)
 *
 * Input: one selector byte, then NUL-separated parts: query, body, header name, header value,
 * title template, link template. Beyond "does not crash", it checks: an error exactly when the
 * parse fails, with a status a sender can act on (400 or 415) and a UTF-8 sentence; every
 * variable name and string is valid UTF-8; a link is only kept when safe; and the message the
 * relay would store and send decodes, as every subscriber decodes it, into the same message.
 */

/* The code under test, with its statics. It defines G_LOG_DOMAIN and includes config.h. */
#include "tocsin-relay-ingest.c"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* A g_return_if_fail or g_warning reached by input is a bug: make it a crash. GLib's own fatal
 * path raises SIGTRAP, which libFuzzer does not catch (no crash file would be written), so
 * abort() from the log writer instead. */
static GLogWriterOutput
abort_on_warning (GLogLevelFlags   level,
                  const GLogField *fields,
                  gsize            n_fields,
                  gpointer         user_data)
{
  GLogWriterOutput output = g_log_writer_default (level, fields, n_fields, user_data);

  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    abort ();
  return output;
}

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  g_log_set_writer_func (abort_on_warning, NULL, NULL);
  return 0;
}

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
  check (g_strcmp0 (decoded->title, message->title) == 0, "the title survives");
  check (g_strcmp0 (decoded->body, message->body) == 0, "the body survives");
  check (g_strcmp0 (decoded->external_link, message->external_link) == 0, "the link survives");
  check (json_object_get_size (decoded->vars) == json_object_get_size (message->vars),
         "every variable survives");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *copy = NULL;
  const char *parts[6] = { "", "", "", "", "", "" };
  g_autoptr(SoupServerMessage) msg = NULL;
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinTemplateScope) scope = NULL;
  g_autoptr(TocsinTemplate) title_template = NULL;
  g_autoptr(TocsinTemplate) link_template = NULL;
  g_autoptr(GPtrArray) missing = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(TocsinMessage) message = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_from_unix_utc (1795452000);
  g_autofree char *body_text = NULL;
  g_autofree char *key = NULL;
  g_autofree char *title = NULL;
  g_autofree char *link = NULL;
  const char *type, *reason = NULL;
  SoupMessageHeaders *headers;
  gsize body_length;
  guint status = 0, n = 0;
  const char *p, *end;

  if (size < 1)
    return 0;
  type = content_types[data[0] % G_N_ELEMENTS (content_types)];
  copy = g_malloc (size);
  memcpy (copy, data + 1, size - 1);
  copy[size - 1] = '\0';
  end = copy + size - 1;
  for (p = copy; n < G_N_ELEMENTS (parts) && p <= end; p += strlen (p) + 1)
    parts[n++] = p;
  body_length = strlen (parts[1]);

  msg = g_object_new (SOUP_TYPE_SERVER_MESSAGE, NULL);
  headers = soup_server_message_get_request_headers (msg);
  if (type)
    soup_message_headers_replace (headers, "Content-Type", type);
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
      ok = tocsin_relay_body_read (headers, bytes, vars, &body_text, &status, &error);
      check (ok == (error == NULL), "an error exactly when the body is refused");
      if (!ok)
        {
          check (status == 400 || status == 415, "a refusal is 400 or 415");
          check (g_utf8_validate (error->message, -1, NULL), "the reason is valid UTF-8");
          return 0;
        }
    }
  check_vars (vars);

  key = dedup_key (vars, headers);
  check (key == NULL || *key != '\0', "a dedup key is never empty");

  /* Templates see the variables, the headers and the text body. */
  scope = tocsin_template_scope_new (vars, now);
  soup_message_headers_foreach (headers, add_scope_header, scope);
  if (body_text)
    tocsin_template_scope_set_body_text (scope, body_text);
  title_template = tocsin_template_new ("title", g_utf8_validate (parts[4], -1, NULL) ? parts[4]
                                                                                     : "", NULL);
  link_template = tocsin_template_new ("link", g_utf8_validate (parts[5], -1, NULL) ? parts[5]
                                                                                   : "", NULL);
  title = title_template ? tocsin_template_render (title_template, scope, missing)
                         : g_strdup ("");
  if (link_template != NULL && !tocsin_template_is_empty (link_template))
    link = tocsin_template_render (link_template, scope, missing);
  else
    {
      JsonNode *node = json_object_get_member (vars, "externalLink");

      if (node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
          json_node_get_value_type (node) == G_TYPE_STRING)
        link = g_strdup (json_node_get_string (node));
    }
  if (link != NULL && !tocsin_link_is_safe (link, &reason))
    {
      check (reason != NULL, "an unsafe link has a reason");
      g_clear_pointer (&link, g_free);
    }

  /* The message as the relay would commit and send it. */
  message = tocsin_message_new ();
  message->id = 1;
  message->channel = 1;
  message->channel_name = g_strdup ("Fuzz");
  message->time_ms = 1795452000000;
  g_free (message->title);
  message->title = g_steal_pointer (&title);
  g_free (message->body);
  message->body = g_strdup (body_text ? body_text : "");
  message->external_link = g_steal_pointer (&link);
  g_clear_pointer (&message->vars, json_object_unref);
  message->vars = json_object_ref (vars);
  check_message_survives (message);
  return 0;
}
