/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libFuzzer target for the request model (src/common/tocsin-request.c): what a channel owner
 * saves as a forward or an action, and what it renders to for each message. The input is one
 * definition, parsed with the guarded parser the owner API uses, compiled, then rendered against
 * fixed variables that hold the awkward values a sender can give (a javascript: URL, a line
 * break, a long string, nested objects). Beyond "does not crash", it checks the promises of
 * tocsin-request.h: an error exactly when there is no request, errors are valid UTF-8 and name
 * the field; the normalised definition compiles again to itself; a rendered request has a
 * method of four, an http(s) URL (a view: a safe link), header values without line breaks,
 * Content-Type once when there is a body, a body within TOCSIN_REQUEST_MAX_BODY that is JSON
 * for json and json-rpc and URL-encoded ASCII for form; the log's URL has no query.
 */
#define G_LOG_DOMAIN "fuzz-request"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "tocsin-json.h"
#include "tocsin-message.h"
#include "tocsin-request.h"

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

static JsonObject *message_vars;

static JsonObject *
fixed_message_vars (void)
{
  g_autoptr(GString) json = g_string_new ("{\"status\":\"firing\",\"alertname\":\"Disk full\","
                                          "\"js\":\"javascript:alert(1)\",\"crlf\":\"a\\r\\nB: c\","
                                          "\"url\":\"https://t.example/p?q=1\",\"num\":95.5,"
                                          "\"arr\":[1,\"two\",{\"three\":3}],\"nul\":null,"
                                          "\"labels\":{\"severity\":\"page\",\"é\":\"\\u2028\"},"
                                          "\"big\":\"");

  for (guint i = 0; i < 8192; i++)
    g_string_append_c (json, "ab%&=[]{}x"[i % 10]);
  g_string_append (json, "\"}");
  return tocsin_json_parse_object (json->str, json->len, 1024 * 1024, 16, NULL);
}

static gboolean
is_http_token (const char *name)
{
  if (*name == '\0')
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && strchr ("!#$%&'*+-.^_`|~", *p) == NULL)
      return FALSE;
  return TRUE;
}

static void
check_rendered (TocsinRequest         *request,
                TocsinRenderedRequest *rendered)
{
  JsonObject *definition = tocsin_request_get_definition (request);
  const char *format = tocsin_json_get_string (definition, "format", "");
  gboolean has_body;
  guint content_types = 0;
  g_autofree char *for_log = NULL;

  check (g_strcmp0 (rendered->name, tocsin_request_get_name (request)) == 0, "the name is kept");
  check (g_str_equal (rendered->method, "GET") || g_str_equal (rendered->method, "POST") ||
         g_str_equal (rendered->method, "PUT") || g_str_equal (rendered->method, "DELETE"),
         "the method is one of four");
  check (rendered->headers != NULL, "headers are never NULL");
  check (rendered->policy == tocsin_request_get_policy (request), "the policy is kept");
  if (tocsin_request_get_kind (request) == TOCSIN_REQUEST_KIND_VIEW)
    {
      check (tocsin_link_is_safe (rendered->url, NULL), "a view renders to a safe link");
      check (rendered->headers[0] == NULL && rendered->body == NULL, "a view sends nothing");
      return;
    }

  check (tocsin_request_url_is_sendable (rendered->url, NULL), "the URL is sendable");
  for_log = tocsin_request_url_for_log (rendered->url);
  check (strchr (for_log, '?') == NULL && strchr (for_log, '#') == NULL,
         "the log's URL has no query or fragment");
  check (g_str_has_prefix (for_log, "http://") || g_str_has_prefix (for_log, "https://"),
         "the log's URL is http(s)");

  for (guint i = 0; rendered->headers[i] != NULL; i += 2)
    {
      check (rendered->headers[i + 1] != NULL, "headers come in pairs");
      check (is_http_token (rendered->headers[i]), "a header name is a token");
      check (g_utf8_validate (rendered->headers[i + 1], -1, NULL), "a header value is UTF-8");
      for (const char *p = rendered->headers[i + 1]; *p; p++)
        check (*p != '\r' && *p != '\n', "a header value has no line break");
      if (g_ascii_strcasecmp (rendered->headers[i], "Content-Type") == 0)
        content_types++;
    }

  has_body = g_str_equal (rendered->method, "POST") || g_str_equal (rendered->method, "PUT");
  check (has_body ? content_types == 1 : content_types <= 1, "Content-Type once with a body");
  if (!has_body)
    check (rendered->body == NULL, "GET and DELETE have no body");
  if (rendered->body != NULL)
    {
      gsize size;
      const char *data = g_bytes_get_data (rendered->body, &size);

      check (size > 0 && size <= TOCSIN_REQUEST_MAX_BODY, "a body is within the limit");
      check (g_utf8_validate (data, (gssize) size, NULL), "a body is UTF-8");
      if (g_str_equal (format, "json") || g_str_equal (format, "json-rpc"))
        {
          g_autoptr(GError) error = NULL;
          g_autoptr(JsonObject) parsed = tocsin_json_parse_object (data, size, G_MAXSIZE, 64,
                                                                   &error);

          if (parsed == NULL)
            g_printerr ("%.*s\n%s\n", (int) MIN (size, 2000), data, error->message);
          check (parsed != NULL, "a json body is a JSON object");
          if (g_str_equal (format, "json-rpc"))
            check (g_strcmp0 (tocsin_json_get_string (parsed, "jsonrpc", NULL), "2.0") == 0 &&
                   tocsin_json_get_string (parsed, "id", NULL) != NULL,
                   "a json-rpc body is a JSON-RPC 2.0 call");
        }
      else if (g_str_equal (format, "form"))
        for (gsize i = 0; i < size; i++)
          check (g_ascii_isprint (data[i]) && data[i] != ' ', "a form body is encoded ASCII");
    }
}

static void
render (TocsinRequest *request,
        JsonObject    *vars)
{
  g_autoptr(TocsinTemplateScope) scope = tocsin_template_scope_new (vars, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinRenderedRequest) rendered = NULL;

  (void) tocsin_request_applies (request, scope);
  rendered = tocsin_request_render (request, scope, &error);
  check ((rendered == NULL) == (error != NULL), "a render error exactly when nothing renders");
  if (rendered == NULL)
    {
      check (error->domain == TOCSIN_REQUEST_ERROR &&
             error->code == TOCSIN_REQUEST_ERROR_RENDER, "render errors are RENDER");
      check (g_utf8_validate (error->message, -1, NULL), "render errors are valid UTF-8");
      return;
    }
  check_rendered (request, rendered);
}

static char *
to_text (JsonObject *object)
{
  g_autoptr(JsonNode) node = json_node_init_object (json_node_alloc (), object);

  return tocsin_json_to_string (node, FALSE);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(JsonObject) definition = NULL;
  g_autoptr(TocsinRequest) request = NULL;
  g_autoptr(TocsinRequest) again = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) vars = NULL;
  g_autofree char *normal = NULL, *normal_again = NULL;
  TocsinRequestContext context = {
    .record_id = 42,
    .record_time_ms = G_GINT64_CONSTANT (1795452000123),
    .record_title = "Disk full on db1",
    .record_body = "97% used\r\n",
    .record_link = "https://grafana.example/d/1",
    .channel_id = 7,
    .channel_name = "Prod",
    .user = "ann",
  };

  if (message_vars == NULL)
    message_vars = fixed_message_vars ();

  /* As the owner API reads a channel spec: 64 KiB, 64 levels. */
  definition = tocsin_json_parse_object ((const char *) data, size, 64 * 1024, 64, NULL);
  if (definition == NULL)
    return 0;

  request = tocsin_request_new ("forwards[0]", definition, &error);
  check ((request == NULL) == (error != NULL), "a compile error exactly when nothing compiles");
  if (request == NULL)
    {
      check (g_utf8_validate (error->message, -1, NULL), "errors are valid UTF-8");
      check (g_str_has_prefix (error->message, "forwards[0]"), "errors name the field");
      if (error->domain == TOCSIN_TEMPLATE_ERROR)
        check (error->code != TOCSIN_TEMPLATE_ERROR_BUDGET, "compiling has no budget error");
      else
        check (error->domain == TOCSIN_REQUEST_ERROR &&
               error->code == TOCSIN_REQUEST_ERROR_INVALID, "compile errors are INVALID");
      return 0;
    }

  /* The stored form compiles again, to itself. */
  normal = to_text (tocsin_request_get_definition (request));
  check (strlen (normal) <= 2 * TOCSIN_REQUEST_MAX_SOURCE, "the normal form stays small");
  again = tocsin_request_new ("forwards[0]", tocsin_request_get_definition (request), &error);
  if (again == NULL)
    g_printerr ("%s\n%s\n", normal, error->message);
  check (again != NULL, "the normalised definition compiles");
  normal_again = to_text (tocsin_request_get_definition (again));
  check (g_str_equal (normal, normal_again), "normalising is idempotent");

  vars = tocsin_request_context_vars (message_vars, &context, tocsin_request_get_name (request));
  render (request, vars);
  /* Without the message's variables (every one missing renders ""). */
  {
    g_autoptr(JsonObject) bare = tocsin_request_context_vars (NULL, &context, NULL);

    render (request, bare);
  }
  return 0;
}
