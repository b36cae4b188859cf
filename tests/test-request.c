/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The request model (src/common/tocsin-request.c, issue 15): definitions compiled and refused,
 * and what a target would receive from each format and method, byte for byte.
 */
#define G_LOG_DOMAIN "test-request"

#include "config.h"

#include <string.h>

#include "tocsin-json.h"
#include "tocsin-message.h"
#include "tocsin-request.h"

/* 2026-11-23T16:40:00.123Z */
#define RECORD_TIME_MS G_GINT64_CONSTANT (1795452000123)

static JsonObject *
parse (const char *json)
{
  g_autoptr(GError) error = NULL;
  JsonObject *object = tocsin_json_parse_object (json, strlen (json), 1024 * 1024,
                                                 TOCSIN_JSON_DEFAULT_MAX_DEPTH, &error);

  g_assert_no_error (error);
  return object;
}

static TocsinRequest *
compile (const char *json)
{
  g_autoptr(JsonObject) definition = parse (json);
  g_autoptr(GError) error = NULL;
  TocsinRequest *request = tocsin_request_new ("forwards[1]", definition, &error);

  g_assert_no_error (error);
  g_assert_nonnull (request);
  return request;
}

/* Compiling @json fails; returns the error. */
static GError *
refuse (const char *json)
{
  g_autoptr(JsonObject) definition = parse (json);
  GError *error = NULL;
  g_autoptr(TocsinRequest) request = tocsin_request_new ("forwards[1]", definition, &error);

  g_assert_null (request);
  g_assert_nonnull (error);
  return error;
}

/* The vars of a message event: an Alertmanager webhook's, record 42 of channel 7 "Prod". */
static JsonObject *
event_vars (TocsinRequest *request,
            const char    *user)
{
  g_autoptr(JsonObject) message_vars = parse ("{\"status\":\"firing\",\"alertname\":\"Disk full\","
                                              "\"instance\":\"db1:9100\",\"user\":\"sender\","
                                              "\"labels\":{\"severity\":\"page\"}}");
  TocsinRequestContext context = {
    .record_id = 42,
    .record_time_ms = RECORD_TIME_MS,
    .record_title = "Disk full on db1",
    .record_body = "97% used",
    .record_link = "https://grafana.example/d/1",
    .channel_id = 7,
    .channel_name = "Prod",
    .user = user,
  };

  return tocsin_request_context_vars (message_vars, &context,
                                      request ? tocsin_request_get_name (request) : "Test");
}

static TocsinRenderedRequest *
render_full (TocsinRequest *request,
             JsonObject    *vars,
             GError       **error)
{
  g_autoptr(TocsinTemplateScope) scope = tocsin_template_scope_new (vars, NULL);

  return tocsin_request_render (request, scope, error);
}

static TocsinRenderedRequest *
render (TocsinRequest *request)
{
  g_autoptr(JsonObject) vars = event_vars (request, "ann");
  g_autoptr(GError) error = NULL;
  TocsinRenderedRequest *rendered = render_full (request, vars, &error);

  g_assert_no_error (error);
  g_assert_nonnull (rendered);
  return rendered;
}

static char *
body_text (TocsinRenderedRequest *rendered)
{
  gsize size;
  const char *data;

  if (rendered->body == NULL)
    return NULL;
  data = g_bytes_get_data (rendered->body, &size);
  return g_strndup (data, size);
}

static const char *
header (TocsinRenderedRequest *rendered,
        const char            *name)
{
  const char *found = NULL;

  for (guint i = 0; rendered->headers[i] != NULL; i += 2)
    if (g_ascii_strcasecmp (rendered->headers[i], name) == 0)
      {
        g_assert_null (found); /* given once */
        found = rendered->headers[i + 1];
      }
  return found;
}

static char *
definition_text (TocsinRequest *request)
{
  g_autoptr(JsonNode) node = json_node_init_object (json_node_alloc (),
                                                    tocsin_request_get_definition (request));

  return tocsin_json_to_string (node, FALSE);
}

/* ---- formats ---- */

/* The json example of docs/actions.md: silence the alert in Alertmanager for an hour. */
#define SILENCE_DEFINITION \
  "{\"name\": \"Silence 1 h\"," \
  " \"url\": \"https://am.example/api/v2/silences\"," \
  " \"headers\": {\"Authorization\": \"Bearer s3cret\"}," \
  " \"params\": [" \
  "   {\"name\": \"matchers\", \"type\": \"array\", \"items\": [" \
  "     {\"type\": \"object\", \"fields\": [" \
  "       {\"name\": \"name\", \"value\": \"alertname\"}," \
  "       {\"name\": \"value\", \"value\": \"{{alertname}}\"}," \
  "       {\"name\": \"isRegex\", \"value\": \"false\"}]}]}," \
  "   {\"name\": \"startsAt\", \"value\": \"{{record.time}}\"}," \
  "   {\"name\": \"createdBy\", \"value\": \"{{user}} via Tocsin\"}," \
  "   {\"name\": \"comment\", \"value\": \"{{action}}: {{record.title}}\"}]}"

static void
test_format_json (void)
{
  g_autoptr(TocsinRequest) request = compile (SILENCE_DEFINITION);
  g_autoptr(TocsinRenderedRequest) rendered = render (request);
  g_autofree char *body = body_text (rendered);
  g_autofree char *normal = definition_text (request);

  g_assert_cmpstr (rendered->name, ==, "Silence 1 h");
  g_assert_cmpstr (rendered->method, ==, "POST");
  g_assert_cmpstr (rendered->url, ==, "https://am.example/api/v2/silences");
  g_assert_cmpint (rendered->policy, ==, TOCSIN_REQUEST_POLICY_RETRY);
  g_assert_cmpstr (body, ==,
                   "{\"matchers\":[{\"name\":\"alertname\",\"value\":\"Disk full\","
                   "\"isRegex\":\"false\"}],\"startsAt\":\"2026-11-23T16:40:00.123Z\","
                   "\"createdBy\":\"ann via Tocsin\","
                   "\"comment\":\"Silence 1 h: Disk full on db1\"}");
  g_assert_cmpstr (header (rendered, "Authorization"), ==, "Bearer s3cret");
  g_assert_cmpstr (header (rendered, "Content-Type"), ==, "application/json");
  g_assert_cmpint (tocsin_request_get_kind (request), ==, TOCSIN_REQUEST_KIND_HTTP);
  g_assert_cmpint (tocsin_request_get_event (request), ==, TOCSIN_REQUEST_EVENT_MESSAGE);
  /* Shared between threads: nobody can change it under a render. */
  g_assert_true (json_object_is_immutable (tocsin_request_get_definition (request)));

  /* Defaults filled in, in the grammar's order. */
  g_assert_true (g_str_has_prefix (normal, "{\"name\":\"Silence 1 h\",\"kind\":\"http\","
                                           "\"event\":\"message\",\"method\":\"POST\","
                                           "\"url\":\"https://am.example/api/v2/silences\","
                                           "\"format\":\"json\",\"headers\":{\"Authorization\":"));
  g_assert_true (g_str_has_suffix (normal, ",\"policy\":\"retry\"}"));
  g_assert_nonnull (strstr (normal,
                            "{\"name\":\"isRegex\",\"type\":\"text\",\"value\":\"false\"}"));
}

/* Text parameters are JSON strings whatever they look like; quotes and controls are escaped. */
static void
test_format_json_escapes (void)
{
  g_autoptr(TocsinRequest) request = compile (
    "{\"name\": \"n\", \"url\": \"https://t.example/\", \"params\": ["
    " {\"name\": \"n\", \"value\": \"42\"},"
    " {\"name\": \"q\\\"\\\\\", \"value\": \"a\\\"b\\\\c\\u0001\\u2028{{labels}}\"}]}");
  g_autoptr(TocsinRenderedRequest) rendered = render (request);
  g_autofree char *body = body_text (rendered);

  g_assert_cmpstr (body, ==, "{\"n\":\"42\",\"q\\\"\\\\\":\"a\\\"b\\\\c\\u0001\xe2\x80\xa8"
                             "{\\\"severity\\\":\\\"page\\\"}\"}");
}

static void
test_format_raw (void)
{
  g_autoptr(TocsinRequest) request = compile (
    "{\"name\": \"Page\", \"format\": \"raw\", \"method\": \"PUT\","
    " \"url\": \"https://pager.example/{{channel.name}}/{{record.id}}\","
    " \"body\": \"<alert id={{record.id}}>{{alertname}} & {{status}}</alert>\","
    " \"policy\": \"none\"}");
  g_autoptr(TocsinRenderedRequest) rendered = render (request);
  g_autofree char *body = body_text (rendered);

  g_assert_cmpstr (rendered->method, ==, "PUT");
  g_assert_cmpstr (rendered->url, ==, "https://pager.example/Prod/42");
  g_assert_cmpstr (body, ==, "<alert id=42>Disk full & firing</alert>");
  g_assert_cmpstr (header (rendered, "Content-Type"), ==, "text/plain; charset=utf-8");
  g_assert_cmpint (rendered->policy, ==, TOCSIN_REQUEST_POLICY_NONE);
  g_assert_cmpint (tocsin_request_get_policy (request), ==, TOCSIN_REQUEST_POLICY_NONE);
}

/* An empty raw body is no body at all (but still a POST with its Content-Type). */
static void
test_format_raw_empty (void)
{
  g_autoptr(TocsinRequest) request = compile (
    "{\"name\": \"Ping\", \"format\": \"raw\", \"url\": \"https://t.example/ping\"}");
  g_autoptr(TocsinRenderedRequest) rendered = render (request);
  g_autofree char *normal = definition_text (request);

  g_assert_null (rendered->body);
  g_assert_cmpstr (header (rendered, "Content-Type"), ==, "text/plain; charset=utf-8");
  g_assert_nonnull (strstr (normal, "\"format\":\"raw\",\"headers\":{},\"body\":\"\","));
}

/* The JSON-RPC example of docs/actions.md. */
#define RPC_DEFINITION \
  "{\"name\": \"Acknowledge\", \"event\": \"acknowledge\", \"format\": \"json-rpc\"," \
  " \"url\": \"https://zabbix.example/api_jsonrpc.php\"," \
  " \"headers\": {\"Authorization\": \"Bearer {{token}}\"}," \
  " \"rpcMethod\": \"event.acknowledge\"," \
  " \"params\": [" \
  "   {\"name\": \"eventids\", \"value\": \"{{eventid}}\"}," \
  "   {\"name\": \"action\", \"value\": \"6\"}," \
  "   {\"name\": \"message\", \"value\": \"Acknowledged by {{user}} at {{record.time}}\"}]}"

static void
test_format_json_rpc (void)
{
  g_autoptr(TocsinRequest) request = compile (RPC_DEFINITION);
  g_autoptr(TocsinRenderedRequest) rendered = render (request);
  g_autoptr(TocsinRenderedRequest) again = render (request);
  g_autofree char *body = body_text (rendered);
  g_autofree char *body_again = body_text (again);
  g_autoptr(JsonObject) call = parse (body);
  g_autoptr(JsonObject) call_again = parse (body_again);
  JsonObject *params;

  g_assert_cmpint (tocsin_request_get_event (request), ==, TOCSIN_REQUEST_EVENT_ACKNOWLEDGE);
  g_assert_cmpstr (header (rendered, "Content-Type"), ==, "application/json");
  g_assert_true (g_str_has_prefix (body, "{\"jsonrpc\":\"2.0\",\"method\":\"event.acknowledge\","
                                         "\"params\":{\"eventids\":\"\",\"action\":\"6\","
                                         "\"message\":\"Acknowledged by ann at "
                                         "2026-11-23T16:40:00.123Z\"},\"id\":\"42-"));
  g_assert_cmpuint (json_object_get_size (call), ==, 4);
  params = json_object_get_object_member (call, "params");
  g_assert_cmpstr (json_object_get_string_member (params, "action"), ==, "6");
  /* The id: the record's, then 16 random hex digits, fresh each render. */
  g_assert_cmpuint (strlen (json_object_get_string_member (call, "id")), ==, 3 + 16);
  g_assert_cmpstr (json_object_get_string_member (call, "id"), !=,
                   json_object_get_string_member (call_again, "id"));
}

/* Without params, "params" is left out (JSON-RPC 2.0 §4: it MAY be omitted). */
static void
test_format_json_rpc_no_params (void)
{
  g_autoptr(TocsinRequest) request = compile (
    "{\"name\": \"Ping\", \"format\": \"json-rpc\", \"rpcMethod\": \"system.{{status}}\","
    " \"url\": \"https://rpc.example/\"}");
  g_autoptr(TocsinRenderedRequest) rendered = render (request);
  g_autofree char *body = body_text (rendered);

  g_assert_true (g_str_has_prefix (body, "{\"jsonrpc\":\"2.0\",\"method\":\"system.firing\","
                                         "\"id\":\"42-"));
}

static void
test_format_form (void)
{
  g_autoptr(TocsinRequest) request = compile (
    "{\"name\": \"Form\", \"format\": \"form\", \"url\": \"https://t.example/hook\", \"params\": ["
    " {\"name\": \"text\", \"value\": \"{{alertname}} & more=1\"},"
    " {\"name\": \"a b\", \"value\": \"é\"},"
    " {\"name\": \"tags\", \"type\": \"array\","
    "  \"items\": [{\"value\": \"x\"}, {\"value\": \"y\"}]},"
    " {\"name\": \"labels\", \"type\": \"object\", \"fields\": ["
    "   {\"name\": \"severity\", \"value\": \"{{labels.severity}}\"}]}]}");
  g_autoptr(TocsinRenderedRequest) rendered = render (request);
  g_autofree char *body = body_text (rendered);

  g_assert_cmpstr (body, ==, "text=Disk%20full%20%26%20more%3D1&a%20b=%C3%A9&tags[]=x&tags[]=y"
                             "&labels[severity]=page");
  g_assert_cmpstr (header (rendered, "Content-Type"), ==, "application/x-www-form-urlencoded");
}

/* ---- methods ---- */

static void
test_methods (void)
{
  const char *methods[] = { "GET", "POST", "PUT", "DELETE", "get", "Delete" };

  for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autofree char *json = g_strdup_printf (
        "{\"name\": \"m\", \"method\": \"%s\", \"url\": \"https://t.example/a\","
        " \"params\": [{\"name\": \"k\", \"value\": \"{{status}}\"}]}", methods[i]);
      g_autoptr(TocsinRequest) request = compile (json);
      g_autoptr(TocsinRenderedRequest) rendered = render (request);
      g_autofree char *upper = g_ascii_strup (methods[i], -1);
      g_autofree char *body = body_text (rendered);
      gboolean has_body = g_str_equal (upper, "POST") || g_str_equal (upper, "PUT");

      g_assert_cmpstr (rendered->method, ==, upper);
      if (has_body)
        {
          g_assert_cmpstr (rendered->url, ==, "https://t.example/a");
          g_assert_cmpstr (body, ==, "{\"k\":\"firing\"}");
          g_assert_cmpstr (header (rendered, "Content-Type"), ==, "application/json");
        }
      else
        {
          /* GET and DELETE: the parameters in the query, no body, no Content-Type. */
          g_assert_cmpstr (rendered->url, ==, "https://t.example/a?k=firing");
          g_assert_null (rendered->body);
          g_assert_null (header (rendered, "Content-Type"));
        }
    }
}

/* GET: after the URL's own query, without its fragment, nested as qs/PHP read it. */
static void
test_get_query (void)
{
  g_autoptr(TocsinRequest) request = compile (
    "{\"name\": \"q\", \"method\": \"GET\", \"url\": \"https://t.example/s?v=1#top\","
    " \"params\": ["
    "  {\"name\": \"q\", \"value\": \"{{alertname}}/{{instance}}?\"},"
    "  {\"name\": \"ids\", \"type\": \"array\", \"items\": ["
    "    {\"value\": \"1\"},"
    "    {\"type\": \"object\", \"fields\": [{\"name\": \"k\", \"value\": \"v\"}]},"
    "    {\"type\": \"array\", \"items\": [{\"value\": \"2\"}]}]},"
    "  {\"name\": \"o\", \"type\": \"object\", \"fields\": ["
    "    {\"name\": \"in ner\", \"type\": \"object\","
    "     \"fields\": [{\"name\": \"x\", \"value\": \"\"}]},"
    "    {\"name\": \"empty\", \"type\": \"array\", \"items\": []}]}]}");
  g_autoptr(TocsinRenderedRequest) rendered = render (request);

  g_assert_cmpstr (rendered->url, ==,
                   "https://t.example/s?v=1&q=Disk%20full%2Fdb1%3A9100%3F&ids[]=1&ids[1][k]=v"
                   "&ids[2][]=2&o[in%20ner][x]=");
  g_assert_null (rendered->body);
}

/* A GET without params keeps its URL as written. */
static void
test_get_no_params (void)
{
  g_autoptr(TocsinRequest) request = compile (
    "{\"name\": \"q\", \"method\": \"GET\", \"url\": \"https://t.example/s?v={{record.id}}\"}");
  g_autoptr(TocsinRenderedRequest) rendered = render (request);

  g_assert_cmpstr (rendered->url, ==, "https://t.example/s?v=42");
}

/* Objects in arrays in objects, in json: the nesting a target sees. */
static void
test_nested_params (void)
{
  g_autoptr(TocsinRequest) request = compile (
    "{\"name\": \"n\", \"url\": \"https://t.example/\", \"params\": ["
    " {\"name\": \"a\", \"type\": \"object\", \"fields\": ["
    "   {\"name\": \"b\", \"type\": \"array\", \"items\": ["
    "     {\"type\": \"object\", \"fields\": ["
    "       {\"name\": \"c\", \"type\": \"sha1\", \"value\": \"abc\"},"
    "       {\"name\": \"d\", \"type\": \"array\", \"items\": []}]},"
    "     {\"value\": \"{{record.id}}\"},"
    "     {\"type\": \"object\", \"fields\": []}]}]}]}");
  g_autoptr(TocsinRenderedRequest) rendered = render (request);
  g_autofree char *body = body_text (rendered);

  g_assert_cmpstr (body, ==, "{\"a\":{\"b\":[{\"c\":\"a9993e364706816aba3e25717850c26c9cd0d89d\","
                             "\"d\":[]},\"42\",{}]}}");
}

/* ---- hashes: the published test vectors ---- */

static void
test_hashes (void)
{
  static const struct { const char *type, *value, *digest; } vectors[] = {
    { "md5", "abc", "900150983cd24fb0d6963f7d28e17f72" },
    { "md5", "", "d41d8cd98f00b204e9800998ecf8427e" },
    { "sha1", "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
    { "sha1", "", "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
    { "sha256", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
    { "sha256", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
    { "crc32", "abc", "352441c2" },
    { "crc32", "", "00000000" },
    { "crc32", "123456789", "cbf43926" },
    { "crc32", "The quick brown fox jumps over the lazy dog", "414fa339" },
    /* Of the rendered value, UTF-8: "{{record.id}}" is "42". */
    { "md5", "{{record.id}}", "a1d0c6e83f027327d8461063f4ac58a6" },
    { "crc32", "é", "0e048d3e" },  /* Python: "%08x" % zlib.crc32("é".encode()) */
  };

  for (guint i = 0; i < G_N_ELEMENTS (vectors); i++)
    {
      g_autofree char *json = g_strdup_printf (
        "{\"name\": \"h\", \"format\": \"form\", \"url\": \"https://t.example/\","
        " \"params\": [{\"name\": \"h\", \"type\": \"%s\", \"value\": \"%s\"}]}",
        vectors[i].type, vectors[i].value);
      g_autoptr(TocsinRequest) request = compile (json);
      g_autoptr(TocsinRenderedRequest) rendered = render (request);
      g_autofree char *body = body_text (rendered);
      g_autofree char *expected = g_strdup_printf ("h=%s", vectors[i].digest);

      g_assert_cmpstr (body, ==, expected);
    }
}

/* ---- headers ---- */

static void
test_content_type (void)
{
  static const struct { const char *format, *extra, *expected; } cases[] = {
    { "json", "", "application/json" },
    { "json-rpc", ", \"rpcMethod\": \"m\"", "application/json" },
    { "form", "", "application/x-www-form-urlencoded" },
    { "raw", "", "text/plain; charset=utf-8" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    for (guint given = 0; given <= 1; given++)
      {
        g_autofree char *json = g_strdup_printf (
          "{\"name\": \"c\", \"format\": \"%s\", \"url\": \"https://t.example/\"%s%s}",
          cases[i].format, cases[i].extra,
          given ? ", \"headers\": {\"content-TYPE\": \"application/vnd.{{status}}+json\"}" : "");
        g_autoptr(TocsinRequest) request = compile (json);
        g_autoptr(TocsinRenderedRequest) rendered = render (request);

        /* header() asserts it is there once, whatever its case. */
        g_assert_cmpstr (header (rendered, "Content-Type"), ==,
                         given ? "application/vnd.firing+json" : cases[i].expected);
      }
}

static void
test_headers_rendered_in_order (void)
{
  g_autoptr(TocsinRequest) request = compile (
    "{\"name\": \"h\", \"url\": \"https://t.example/\", \"headers\": {"
    " \"X-B\": \"{{channel.id}}\", \"X-A\": \"{{channel.name}}\\t{{user}}\", \"X-Empty\": \"\"}}");
  g_autoptr(TocsinRenderedRequest) rendered = render (request);
  const char *expected[] = { "X-B", "7", "X-A", "Prod\tann", "X-Empty", "",
                             "Content-Type", "application/json", NULL };

  g_assert_cmpstrv (rendered->headers, expected);
}

/* A header value that renders with a line break would smuggle a header (or a body) in. */
static void
test_header_line_break (void)
{
  const char *values[] = { "a\\r\\nX-Evil: 1", "a\\nb", "a\\rb", "\\u0000" };

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr(TocsinRequest) request = compile (
        "{\"name\": \"h\", \"url\": \"https://t.example/\","
        " \"headers\": {\"X-Value\": \"{{v}}\"}}");
      g_autofree char *vars_json = g_strdup_printf ("{\"v\": \"%s\"}", values[i]);
      g_autoptr(JsonObject) vars = parse (vars_json);
      g_autoptr(GError) error = NULL;
      g_autoptr(TocsinRenderedRequest) rendered = render_full (request, vars, &error);

      if (i == 3)
        {
          /* U+0000 ends the C string: the value renders empty, which is safe. */
          g_assert_no_error (error);
          continue;
        }
      g_assert_null (rendered);
      g_assert_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_RENDER);
      g_assert_cmpstr (error->message, ==, "forwards[1].headers.X-Value: the value rendered "
                                           "holds a line break or another control character");
    }
}

/* ---- event variables ---- */

static void
test_event_vars (void)
{
  g_autoptr(JsonObject) message_vars = parse ("{\"user\":\"sender\",\"record\":5,\"x\":[1,2]}");
  TocsinRequestContext context = {
    .record_id = 42,
    .record_time_ms = RECORD_TIME_MS,
    .record_title = "T",
    .channel_id = 7,
    .channel_name = "Prod",
    .user = "ann",
  };
  g_autoptr(JsonObject) vars = tocsin_request_context_vars (message_vars, &context, "Ack");
  g_autoptr(JsonNode) node = json_node_init_object (json_node_alloc (), vars);
  g_autofree char *text = tocsin_json_to_string (node, FALSE);

  /* The message's own first, then the event's, which win over same-named ones. */
  g_assert_cmpstr (text, ==, "{\"user\":\"ann\",\"record\":{\"id\":42,"
                             "\"time\":\"2026-11-23T16:40:00.123Z\",\"title\":\"T\","
                             "\"body\":\"\",\"link\":\"\"},\"x\":[1,2],"
                             "\"channel\":{\"id\":7,\"name\":\"Prod\"},\"action\":\"Ack\"}");
  /* The message's vars are not changed. */
  g_assert_cmpint (json_object_get_int_member (message_vars, "record"), ==, 5);
  g_assert_cmpstr (json_object_get_string_member (message_vars, "user"), ==, "sender");

  /* A message event has no user: "" (NULL context strings too). */
  {
    TocsinRequestContext empty = { 0 };
    g_autoptr(JsonObject) none = tocsin_request_context_vars (NULL, &empty, NULL);

    g_assert_cmpstr (json_object_get_string_member (none, "user"), ==, "");
    g_assert_cmpstr (json_object_get_string_member (none, "action"), ==, "");
    g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (none,
                                                                                  "record"),
                                                    "time"), ==, "1970-01-01T00:00:00.000Z");
  }
}

/* Every event variable, rendered through a request. */
static void
test_event_vars_render (void)
{
  g_autoptr(TocsinRequest) request = compile (
    "{\"name\": \"All\", \"format\": \"raw\", \"url\": \"https://t.example/\", \"body\":"
    " \"{{record.id}}|{{record.time}}|{{record.title}}|{{record.body}}|{{record.link}}|"
    "{{channel.id}}|{{channel.name}}|{{user}}|{{action}}|{{status}}\"}");
  g_autoptr(TocsinRenderedRequest) rendered = render (request);
  g_autofree char *body = body_text (rendered);

  g_assert_cmpstr (body, ==, "42|2026-11-23T16:40:00.123Z|Disk full on db1|97% used|"
                             "https://grafana.example/d/1|7|Prod|ann|All|firing");
}

static void
test_applies (void)
{
  static const struct { const char *condition; gboolean applies; } cases[] = {
    { NULL, TRUE },
    { "", TRUE },
    { "status == 'firing'", TRUE },
    { "status == 'resolved'", FALSE },
    { "labels.severity === 'page' && user", TRUE },
    { "user == 'bob'", FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *json = g_strdup_printf (
        "{\"name\": \"c\", \"url\": \"https://t.example/\"%s%s%s}",
        cases[i].condition ? ", \"condition\": \"" : "",
        cases[i].condition ? cases[i].condition : "", cases[i].condition ? "\"" : "");
      g_autoptr(TocsinRequest) request = compile (json);
      g_autoptr(JsonObject) vars = event_vars (request, "ann");
      g_autoptr(TocsinTemplateScope) scope = tocsin_template_scope_new (vars, NULL);

      g_assert_cmpint (tocsin_request_applies (request, scope), ==, cases[i].applies);
    }
}

/* ---- view ---- */

static void
test_view (void)
{
  g_autoptr(TocsinRequest) request = compile (
    "{\"name\": \"Open\", \"kind\": \"view\", \"url\": \"https://grafana.example/{{record.id}}\"}");
  g_autoptr(TocsinRenderedRequest) rendered = render (request);
  g_autofree char *normal = definition_text (request);

  g_assert_cmpint (tocsin_request_get_kind (request), ==, TOCSIN_REQUEST_KIND_VIEW);
  g_assert_cmpstr (rendered->url, ==, "https://grafana.example/42");
  g_assert_cmpstr (rendered->method, ==, "GET");
  g_assert_null (rendered->headers[0]);
  g_assert_null (rendered->body);
  g_assert_cmpstr (normal, ==, "{\"name\":\"Open\",\"kind\":\"view\",\"event\":\"message\","
                               "\"url\":\"https://grafana.example/{{record.id}}\"}");
}

/* ---- refused URLs ---- */

static void
test_url_refused_at_render (void)
{
  static const struct { const char *kind, *target, *reason; } cases[] = {
    { "http", "javascript:alert(1)", "only http and https URLs are sent to" },
    { "http", "file:///etc/passwd", "only http and https URLs are sent to" },
    { "http", "https://user:pw@t.example/", "a user name or password" },
    { "http", "/relative", "it is not an absolute URL" },
    { "http", "", "it is empty" },
    { "http", "https://t.example/a b", "spaces or control characters" },
    { "view", "javascript:alert(1)", "only http and https links are delivered" },
    { "view", "data:text/html,x", "only http and https links are delivered" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *json = g_strdup_printf (
        "{\"name\": \"u\", \"kind\": \"%s\", \"url\": \"{{target}}\"}", cases[i].kind);
      g_autoptr(TocsinRequest) request = compile (json);
      g_autofree char *vars_json = g_strdup_printf ("{\"target\": \"%s\"}", cases[i].target);
      g_autoptr(JsonObject) vars = parse (vars_json);
      g_autoptr(GError) error = NULL;
      g_autoptr(TocsinRenderedRequest) rendered = render_full (request, vars, &error);

      g_assert_null (rendered);
      g_assert_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_RENDER);
      g_assert_true (g_str_has_prefix (error->message, "forwards[1].url: "));
      if (strstr (error->message, cases[i].reason) == NULL)
        g_error ("%s: “%s” does not say “%s”", cases[i].target, error->message, cases[i].reason);
    }
}

/* ---- errors: each says where, and what to do ---- */

typedef struct
{
  const char *definition;
  const char *message;     /* exact */
  guint       column;      /* a template error's column; 0: not a template error */
} ErrorCase;

static const ErrorCase error_cases[] = {
  /* Template errors keep their position (the header's own example). */
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"headers\": {\"Authorization\": \"Bearer {{k\"}}",
    "forwards[1].headers.Authorization, column 11: expected '}}'", 11 },
  { "{\"name\": \"n\", \"url\": \"https://t/{{a +}}\"}",
    "forwards[1].url, column 16: expected an expression before '}}'", 16 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"condition\": \"a ==\"}",
    "forwards[1].condition, column 5: unexpected end of expression", 5 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"params\": [{\"name\": \"alert\", \"type\":"
    " \"array\", \"items\": [{\"value\": \"a\"}, {\"value\": \"b\"}, {\"value\": \"{{)\"}]}]}",
    "forwards[1].params.alert.items[2], column 3: unexpected ')'", 3 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"params\": [{\"name\": \"o\", \"type\":"
    " \"object\", \"fields\": [{\"name\": \"f\", \"type\": \"md5\", \"value\": \"{{\"}]}]}",
    "forwards[1].params.o.f, column 3: unexpected end of expression", 3 },
  { "{\"name\": \"n\", \"format\": \"raw\", \"url\": \"https://t/\", \"body\": \"x\\n{{'\"}",
    "forwards[1].body, line 2, column 3: unterminated string", 3 },
  { "{\"name\": \"n\", \"format\": \"json-rpc\", \"url\": \"https://t/\", \"rpcMethod\": \"{{}}\"}",
    "forwards[1].rpcMethod, column 3: expected an expression before '}}'", 3 },
  /* Everything else: "FIELD: what to fix". */
  { "{\"url\": \"https://t/\"}", "forwards[1].name: give a name of 1 to 64 characters", 0 },
  { "{\"name\": \"\", \"url\": \"https://t/\"}",
    "forwards[1].name: give a name of 1 to 64 characters", 0 },
  { "{\"name\": \"a\\nb\", \"url\": \"https://t/\"}",
    "forwards[1].name: give a name of 1 to 64 characters", 0 },
  { "{\"name\": 5, \"url\": \"https://t/\"}", "forwards[1].name: must be text, in quotes", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"bdy\": \"x\"}",
    "forwards[1]: unknown key “bdy” (known keys: name, kind, event, condition, method, url, "
    "format, headers, params, body, rpcMethod, policy)", 0 },
  { "{\"name\": \"n\", \"kind\": \"button\", \"url\": \"https://t/\"}",
    "forwards[1].kind: use http or view", 0 },
  { "{\"name\": \"n\", \"event\": \"ack\", \"url\": \"https://t/\"}",
    "forwards[1].event: use message or acknowledge", 0 },
  { "{\"name\": \"n\", \"method\": \"PATCH\", \"url\": \"https://t/\"}",
    "forwards[1].method: use GET, POST, PUT or DELETE", 0 },
  { "{\"name\": \"n\"}", "forwards[1].url: give the URL to send to (http or https)", 0 },
  { "{\"name\": \"n\", \"url\": \"\"}",
    "forwards[1].url: give the URL to send to (http or https)", 0 },
  { "{\"name\": \"n\", \"url\": \"javascript:alert({{x}})\"}",
    "forwards[1].url: only http and https URLs are sent to", 0 },
  { "{\"name\": \"n\", \"url\": \"ftp://files.example/\"}",
    "forwards[1].url: only http and https URLs are sent to", 0 },
  { "{\"name\": \"n\", \"url\": \"https://u:p@t/\"}",
    "forwards[1].url: a user name or password in the URL would be logged; send it in a header",
    0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"format\": \"xml\"}",
    "forwards[1].format: use json, raw, json-rpc or form", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"policy\": \"forever\"}",
    "forwards[1].policy: use retry or none", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"headers\": [\"a\"]}",
    "forwards[1].headers: must be an object of names and values: {\"Name\": \"value\"}", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"headers\": {\"Bad Name\": \"x\"}}",
    "forwards[1].headers: “Bad Name” is not a header name (letters, digits and "
    "!#$%&'*+-.^_`|~ only)", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"headers\": {\"X-A\": 1}}",
    "forwards[1].headers.X-A: the value must be text, in quotes", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"headers\": {\"X-A\": \"1\", \"x-a\": \"2\"}}",
    "forwards[1].headers.x-a: the header is given twice", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"headers\": {\"Content-Length\": \"1\"}}",
    "forwards[1].headers.Content-Length: Tocsin sets this header itself; remove it", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"params\": {}}",
    "forwards[1].params: must be a list of parameters, in brackets: [{…}, …]", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"params\": [\"x\"]}",
    "forwards[1].params[0]: a parameter must be an object: "
    "{\"name\": …, \"type\": …, \"value\": …}", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"params\": [{\"value\": \"x\"}]}",
    "forwards[1].params[0].name: give the parameter a name of 1 to 64 characters", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\","
    " \"params\": [{\"name\": \"a\", \"type\": \"int\"}]}",
    "forwards[1].params.a.type: use text, array, object, md5, crc32, sha1 or sha256", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"params\": [{\"name\": \"a\", \"vaule\": \"x\"}]}",
    "forwards[1].params.a: unknown key “vaule” (known keys: name, type, value, items, fields)",
    0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\","
    " \"params\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}",
    "forwards[1].params.a: the name “a” is used twice; give each parameter its own", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"params\": [{\"name\": \"a\", \"type\": "
    "\"array\", \"items\": [{\"name\": \"x\"}]}]}",
    "forwards[1].params.a.items[0].name: an array's items have no name; remove it", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"params\": [{\"name\": \"a\", \"type\": "
    "\"array\"}]}",
    "forwards[1].params.a: give the array parameter its items: [{…}, …]", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"params\": [{\"name\": \"a\", \"type\": "
    "\"object\", \"value\": \"x\", \"fields\": []}]}",
    "forwards[1].params.a: an object parameter holds its fields, not value", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"params\": [{\"name\": \"a\", \"items\": []}]}",
    "forwards[1].params.a: only an array has items and only an object has fields; a text "
    "parameter has a value", 0 },
  { "{\"name\": \"n\", \"format\": \"raw\", \"url\": \"https://t/\", \"params\": []}",
    "forwards[1].params: a raw request sends its body as written; put the values in body", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"body\": \"x\"}",
    "forwards[1].body: only a raw request has a body; use format raw, or params", 0 },
  { "{\"name\": \"n\", \"method\": \"GET\", \"format\": \"raw\", \"url\": \"https://t/\","
    " \"body\": \"x\"}",
    "forwards[1].body: a GET or DELETE request has no body; use POST or PUT", 0 },
  { "{\"name\": \"n\", \"url\": \"https://t/\", \"rpcMethod\": \"m\"}",
    "forwards[1].rpcMethod: only a json-rpc request has rpcMethod; remove it or use format "
    "json-rpc", 0 },
  { "{\"name\": \"n\", \"format\": \"json-rpc\", \"url\": \"https://t/\"}",
    "forwards[1].rpcMethod: a json-rpc request needs the method to call", 0 },
  { "{\"name\": \"n\", \"format\": \"json-rpc\", \"method\": \"GET\", \"url\": \"https://t/\","
    " \"rpcMethod\": \"m\"}",
    "forwards[1].format: a json-rpc request is sent in a body; use method POST or PUT", 0 },
  { "{\"name\": \"n\", \"kind\": \"view\", \"url\": \"https://t/\", \"method\": \"GET\"}",
    "forwards[1].method: a view action only opens its url; remove method", 0 },
  { "{\"name\": \"n\", \"kind\": \"view\", \"url\": \"https://t/\", \"colour\": \"red\"}",
    "forwards[1]: unknown key “colour” (known keys: name, kind, event, condition, url)", 0 },
};

static void
test_error (gconstpointer data)
{
  const ErrorCase *c = data;
  g_autoptr(GError) error = refuse (c->definition);
  guint line = 0, column = 0;

  g_assert_cmpstr (error->message, ==, c->message);
  if (c->column > 0)
    {
      g_assert_error (error, TOCSIN_TEMPLATE_ERROR, TOCSIN_TEMPLATE_ERROR_SYNTAX);
      g_assert_true (tocsin_template_error_get_position (error, &line, &column, NULL));
      g_assert_cmpuint (column, ==, c->column);
    }
  else
    g_assert_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID);
}

/* ---- limits ---- */

/* A param nested @levels arrays deep: {"name":"p","type":"array","items":[{"type":"array",…}]} */
static char *
nested_definition (guint levels)
{
  GString *json = g_string_new ("{\"name\": \"n\", \"url\": \"https://t/\", \"params\": [");

  for (guint i = 0; i < levels; i++)
    g_string_append_printf (json, "{%s\"type\": \"array\", \"items\": [", i == 0 ? "\"name\": "
                                                                         "\"p\", " : "");
  g_string_append (json, "{\"value\": \"leaf\"}");
  for (guint i = 0; i < levels; i++)
    g_string_append (json, "]}");
  g_string_append (json, "]}");
  return g_string_free (json, FALSE);
}

static void
test_limit_depth (void)
{
  g_autofree char *ok = nested_definition (TOCSIN_REQUEST_MAX_DEPTH);
  g_autofree char *deep = nested_definition (TOCSIN_REQUEST_MAX_DEPTH + 1);
  g_autofree char *deeper = nested_definition (30);
  g_autoptr(TocsinRequest) request = compile (ok);
  g_autoptr(TocsinRenderedRequest) rendered = render (request);
  g_autofree char *body = body_text (rendered);
  g_autoptr(GError) error = NULL, error_deeper = NULL;

  g_assert_cmpstr (body, ==, "{\"p\":[[[[[[[[\"leaf\"]]]]]]]]}");
  error = refuse (deep);
  g_test_message ("%s", error->message);
  g_assert_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID);
  g_assert_cmpstr (error->message, ==, "forwards[1].params.p.items[0].items[0].items[0].items[0]"
                                       ".items[0].items[0].items[0].items[0]: arrays and objects "
                                       "nest deeper than 8 levels");
  error_deeper = refuse (deeper);
  g_assert_cmpstr (error_deeper->message, ==, "forwards[1]: arrays and objects nest deeper than "
                                              "8 levels");
}

static void
test_limit_params (void)
{
  for (guint n = TOCSIN_REQUEST_MAX_PARAMS; n <= TOCSIN_REQUEST_MAX_PARAMS + 1; n++)
    {
      /* n in all: one object holding n - 1 fields. */
      GString *json = g_string_new ("{\"name\": \"n\", \"url\": \"https://t/\", \"params\": ["
                                    "{\"name\": \"o\", \"type\": \"object\", \"fields\": [");
      g_autofree char *text = NULL;

      for (guint i = 0; i + 1 < n; i++)
        g_string_append_printf (json, "%s{\"name\": \"f%u\"}", i ? "," : "", i);
      g_string_append (json, "]}]}");
      text = g_string_free (json, FALSE);
      if (n == TOCSIN_REQUEST_MAX_PARAMS)
        {
          g_autoptr(TocsinRequest) request = compile (text);
        }
      else
        {
          g_autoptr(GError) error = refuse (text);

          g_assert_cmpstr (error->message, ==, "forwards[1].params.o.f63: at most 64 parameters "
                                               "are allowed in all");
        }
    }
}

static void
test_limit_headers (void)
{
  for (guint n = TOCSIN_REQUEST_MAX_HEADERS; n <= TOCSIN_REQUEST_MAX_HEADERS + 1; n++)
    {
      GString *json = g_string_new ("{\"name\": \"n\", \"url\": \"https://t/\", \"headers\": {");
      g_autofree char *text = NULL;

      for (guint i = 0; i < n; i++)
        g_string_append_printf (json, "%s\"X-H%u\": \"v\"", i ? "," : "", i);
      g_string_append (json, "}}");
      text = g_string_free (json, FALSE);
      if (n == TOCSIN_REQUEST_MAX_HEADERS)
        {
          g_autoptr(TocsinRequest) request = compile (text);
          g_autoptr(TocsinRenderedRequest) rendered = render (request);

          g_assert_cmpuint (g_strv_length (rendered->headers), ==, 2 * (n + 1));
        }
      else
        {
          g_autoptr(GError) error = refuse (text);

          g_assert_cmpstr (error->message, ==, "forwards[1].headers: at most 16 headers are "
                                               "allowed");
        }
    }
}

/* The size is the definition's compact JSON: 16 KiB passes, a byte more does not. */
static void
test_limit_size (void)
{
  const char *head = "{\"name\":\"n\",\"kind\":\"http\",\"event\":\"message\","
                     "\"method\":\"POST\",\"url\":\"https://t/\",\"format\":\"raw\","
                     "\"headers\":{},\"policy\":\"retry\",\"body\":\"";
  const char *compact = "{\"name\":\"n\",\"url\":\"https://t/\",\"format\":\"raw\",\"body\":\"";
  gsize fill = TOCSIN_REQUEST_MAX_SOURCE - strlen (head) - 2;

  for (gsize extra = 0; extra <= 1; extra++)
    {
      g_autoptr(GString) json = g_string_new (head);
      g_autoptr(JsonObject) definition = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(TocsinRequest) request = NULL;

      for (gsize i = 0; i < fill + extra; i++)
        g_string_append_c (json, 'x');
      g_string_append (json, "\"}");
      g_assert_cmpuint (json->len, ==, TOCSIN_REQUEST_MAX_SOURCE + extra);
      definition = parse (json->str);
      request = tocsin_request_new ("actions[0]", definition, &error);
      if (extra == 0)
        g_assert_no_error (error);
      else
        g_assert_cmpstr (error->message, ==, "actions[0]: the definition is longer than 16 KiB");
    }

  /* What is stored is the normal form: it must fit too, or the channel would not load again. */
  {
    g_autoptr(GString) json = g_string_new (compact);
    g_autoptr(JsonObject) definition = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(TocsinRequest) request = NULL;

    while (json->len < TOCSIN_REQUEST_MAX_SOURCE - 2)
      g_string_append_c (json, 'x');
    g_string_append (json, "\"}");
    definition = parse (json->str);
    request = tocsin_request_new ("actions[0]", definition, &error);
    g_assert_null (request);
    g_assert_cmpstr (error->message, ==, "actions[0]: the definition is longer than 16 KiB once "
                                         "its defaults are filled in");
  }
}

/* A body over 256 KiB is refused at render time, and so is a URL over 16 KiB. */
static void
test_limit_rendered (void)
{
  g_autoptr(GString) big = g_string_new (NULL);
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(TocsinRequest) json = NULL, get = NULL;
  g_autoptr(GError) error = NULL, url_error = NULL;
  g_autoptr(TocsinRenderedRequest) rendered = NULL, rendered_get = NULL;
  GString *definition = g_string_new ("{\"name\": \"n\", \"url\": \"https://t/\", \"params\": [");
  g_autofree char *text = NULL;

  for (guint i = 0; i < 60 * 1024; i++)
    g_string_append_c (big, 'x');
  json_object_set_string_member (vars, "big", big->str);
  for (guint i = 0; i < 5; i++)
    g_string_append_printf (definition, "%s{\"name\": \"p%u\", \"value\": \"{{big}}\"}",
                            i ? "," : "", i);
  g_string_append (definition, "]}");
  text = g_string_free (definition, FALSE);

  json = compile (text);
  rendered = render_full (json, vars, &error);
  g_assert_null (rendered);
  g_assert_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_RENDER);
  g_assert_cmpstr (error->message, ==, "forwards[1]: the rendered body is larger than 256 KiB");

  get = compile ("{\"name\": \"n\", \"method\": \"GET\", \"url\": \"https://t/\","
                 " \"params\": [{\"name\": \"q\", \"value\": \"{{big}}\"}]}");
  rendered_get = render_full (get, vars, &url_error);
  g_assert_null (rendered_get);
  g_assert_error (url_error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_RENDER);
  g_assert_cmpstr (url_error->message, ==, "forwards[1].url: the rendered URL cannot be sent to: "
                                           "it is longer than 16 KiB");
}

/* A scope's budget spent by the request's own templates ends in an error, not a half request. */
static void
test_budget (void)
{
  g_autoptr(GString) big = g_string_new (NULL);
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(TocsinRequest) request = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinRenderedRequest) rendered = NULL;
  GString *definition = g_string_new ("{\"name\": \"n\", \"url\": \"https://t/\", \"params\": [");
  g_autofree char *text = NULL;

  for (guint i = 0; i < 1024; i++)
    g_string_append_c (big, 'x');
  json_object_set_string_member (vars, "big", big->str);
  /* Each hash of 40 copies of a long comparison: far over 2,000,000 steps in all. */
  for (guint i = 0; i < 40; i++)
    g_string_append_printf (definition,
                            "%s{\"name\": \"p%u\", \"type\": \"md5\", \"value\": \"{{big + big + "
                            "big + big + big + big + big + big + big + big + big + big + big + "
                            "big + big + big + big + big + big + big + big + big + big + big + "
                            "big + big + big + big + big + big + big + big}}\"}", i ? "," : "", i);
  g_string_append (definition, "]}");
  text = g_string_free (definition, FALSE);
  request = compile (text);
  rendered = render_full (request, vars, &error);
  g_assert_null (rendered);
  g_assert_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_RENDER);
  g_assert_true (g_str_has_prefix (error->message, "The template did too much work: "));
  g_assert_nonnull (strstr (error->message, " forwards[1].params.p"));
  g_test_message ("%s", error->message);
}

/* ---- lists ---- */

static void
test_list (void)
{
  g_autoptr(JsonObject) holder = parse (
    "{\"forwards\": [" SILENCE_DEFINITION ", " RPC_DEFINITION ","
    " {\"name\": \"Open\", \"kind\": \"view\", \"url\": \"https://g.example/\"}]}");
  JsonArray *definitions = json_object_get_array_member (holder, "forwards");
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) requests = tocsin_request_list_new ("forwards", definitions,
                                                           TOCSIN_REQUEST_MAX_FORWARDS, &error);
  g_autoptr(JsonArray) stored = NULL;
  g_autoptr(GPtrArray) again = NULL;
  g_autoptr(JsonArray) stored_again = NULL;
  g_autoptr(JsonNode) node = NULL, node_again = NULL;
  g_autofree char *text = NULL, *text_again = NULL;

  g_assert_no_error (error);
  g_assert_cmpuint (requests->len, ==, 3);
  g_assert_cmpstr (tocsin_request_get_name (g_ptr_array_index (requests, 1)), ==, "Acknowledge");

  /* What is stored compiles back to the same thing: normalising is idempotent. */
  stored = tocsin_request_list_to_json (requests);
  again = tocsin_request_list_new ("forwards", stored, TOCSIN_REQUEST_MAX_FORWARDS, &error);
  g_assert_no_error (error);
  stored_again = tocsin_request_list_to_json (again);
  node = json_node_init_array (json_node_alloc (), stored);
  node_again = json_node_init_array (json_node_alloc (), stored_again);
  text = tocsin_json_to_string (node, FALSE);
  text_again = tocsin_json_to_string (node_again, FALSE);
  g_assert_cmpstr (text, ==, text_again);

  /* At most @max. */
  g_clear_pointer (&again, g_ptr_array_unref);
  again = tocsin_request_list_new ("actions", definitions, 2, &error);
  g_assert_null (again);
  g_assert_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_INVALID);
  g_assert_cmpstr (error->message, ==, "actions: at most 2 are allowed");
}

static void
test_list_errors (void)
{
  static const struct { const char *json, *message; } cases[] = {
    { "[1]", "forwards[0]: must be an object: {\"name\": …, \"url\": …}" },
    { "[{\"name\": \"a\", \"url\": \"https://t/\"}, {\"name\": \"a\", \"url\": \"https://u/\"}]",
      "forwards[1].name: forwards[0] has the same name; give each its own" },
    { "[{\"name\": \"a\", \"url\": \"https://t/\"}, {\"name\": \"b\", \"url\": \"https://u/{{\"}]",
      "forwards[1].url, column 13: unexpected end of expression" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(JsonNode) node = tocsin_json_parse (cases[i].json, strlen (cases[i].json), 4096,
                                                    16, NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(GPtrArray) requests = tocsin_request_list_new ("forwards",
                                                               json_node_get_array (node),
                                                               TOCSIN_REQUEST_MAX_FORWARDS,
                                                               &error);

      g_assert_null (requests);
      g_assert_cmpstr (error->message, ==, cases[i].message);
    }
}

/* ---- logs ---- */

static void
test_url_for_log (void)
{
  static const struct { const char *url, *shown; } cases[] = {
    { "https://am.example/api/v2/silences?token=secret#frag",
      "https://am.example/api/v2/silences" },
    { "http://user:pw@10.0.0.1:9093/a%2Fb?x", "http://10.0.0.1:9093/a%2Fb" },
    { "https://t.example", "https://t.example/" },
    { "http://[::1]:8080/x", "http://[::1]:8080/x" },
    { "not a url", "(not a URL)" },
    { NULL, "" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *shown = tocsin_request_url_for_log (cases[i].url);

      g_assert_cmpstr (shown, ==, cases[i].shown);
    }
}

/* A compiled request is shared between threads (the relay's sender workers): render it from
 * several at once. */
static gpointer
render_in_thread (gpointer data)
{
  for (guint i = 0; i < 200; i++)
    {
      g_autoptr(TocsinRenderedRequest) rendered = render (data);

      g_assert_cmpstr (rendered->url, ==, "https://am.example/api/v2/silences");
    }
  return NULL;
}

static void
test_threads (void)
{
  g_autoptr(TocsinRequest) request = compile (SILENCE_DEFINITION);
  GThread *threads[4];

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("render", render_in_thread, request);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/request/format/json", test_format_json);
  g_test_add_func ("/request/format/json-escapes", test_format_json_escapes);
  g_test_add_func ("/request/format/raw", test_format_raw);
  g_test_add_func ("/request/format/raw-empty", test_format_raw_empty);
  g_test_add_func ("/request/format/json-rpc", test_format_json_rpc);
  g_test_add_func ("/request/format/json-rpc-no-params", test_format_json_rpc_no_params);
  g_test_add_func ("/request/format/form", test_format_form);
  g_test_add_func ("/request/methods", test_methods);
  g_test_add_func ("/request/get/query", test_get_query);
  g_test_add_func ("/request/get/no-params", test_get_no_params);
  g_test_add_func ("/request/params/nested", test_nested_params);
  g_test_add_func ("/request/params/hashes", test_hashes);
  g_test_add_func ("/request/headers/content-type", test_content_type);
  g_test_add_func ("/request/headers/order", test_headers_rendered_in_order);
  g_test_add_func ("/request/headers/line-break", test_header_line_break);
  g_test_add_func ("/request/event-vars", test_event_vars);
  g_test_add_func ("/request/event-vars/render", test_event_vars_render);
  g_test_add_func ("/request/condition", test_applies);
  g_test_add_func ("/request/view", test_view);
  g_test_add_func ("/request/url/refused-at-render", test_url_refused_at_render);
  for (guint i = 0; i < G_N_ELEMENTS (error_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/request/error/%u", i);

      g_test_add_data_func (path, &error_cases[i], test_error);
    }
  g_test_add_func ("/request/limit/depth", test_limit_depth);
  g_test_add_func ("/request/limit/params", test_limit_params);
  g_test_add_func ("/request/limit/headers", test_limit_headers);
  g_test_add_func ("/request/limit/size", test_limit_size);
  g_test_add_func ("/request/limit/rendered", test_limit_rendered);
  g_test_add_func ("/request/limit/budget", test_budget);
  g_test_add_func ("/request/list", test_list);
  g_test_add_func ("/request/list/errors", test_list_errors);
  g_test_add_func ("/request/url-for-log", test_url_for_log);
  g_test_add_func ("/request/threads", test_threads);

  return g_test_run ();
}
