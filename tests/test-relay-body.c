/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-body.c: the pure steps of a webhook, called directly: the query and form decoder,
 * Content-Encoding, the owner API body parser, the render step and the message bound. (The
 * same behaviour through the real relay is in test-relay-ingest.c and test-relay-api.c.)
 */
#define G_LOG_DOMAIN "test-relay-body"

#include "config.h"

#include <string.h>

#include "tocsin-json.h"
#include "tocsin-relay-body.h"
#include "tocsin-relay-ingest.h"

static void
test_form_pairs (void)
{
  static const struct
  {
    const char *input;
    const char *expected;   /* the variables as compact JSON, names sorted */
  } cases[] = {
    { "a=1&b=2", "{\"a\":\"1\",\"b\":\"2\"}" },
    { "a=100%", "{\"a\":\"100%\"}" },
    { "a=%zz&b=%4&c=%", "{\"a\":\"%zz\",\"b\":\"%4\",\"c\":\"%\"}" },
    { "flag", "{\"flag\":\"\"}" },
    { "a=1&&b=2&", "{\"a\":\"1\",\"b\":\"2\"}" },
    { "&&&", "{}" },
    { "a+b=c+d%2B", "{\"a b\":\"c d+\"}" },
    { "=v", "{\"\":\"v\"}" },
    { "a==b", "{\"a\":\"=b\"}" },
    { "a=1&a=2", "{\"a\":\"2\"}" },
    { "caf%C3%A9=%F0%9F%94%94", "{\"café\":\"🔔\"}" },
    { "x=%01", "{\"x\":\"\\u0001\"}" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(JsonObject) vars = json_object_new ();
      g_autoptr(JsonNode) node = json_node_new (JSON_NODE_OBJECT);
      g_autoptr(GError) error = NULL;
      g_autofree char *text = NULL;

      g_assert_true (tocsin_relay_body_add_form_pairs (vars, cases[i].input, -1, "query string",
                                                       &error));
      g_assert_no_error (error);
      json_node_set_object (node, vars);
      text = tocsin_json_to_string (node, FALSE);
      g_assert_cmpstr (text, ==, cases[i].expected);
    }
}

static void
test_form_refused (void)
{
  static const struct
  {
    const char *input;
    gssize      length;
    const char *words;
  } cases[] = {
    { "a=%FF", -1, "“a”" },
    { "%FF=1", -1, "name" },
    { "a=x%00y", -1, "NUL" },
    { "a=x\0y", 5, "NUL" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(JsonObject) vars = json_object_new ();
      g_autoptr(GError) error = NULL;

      g_assert_false (tocsin_relay_body_add_form_pairs (vars, cases[i].input, cases[i].length,
                                                        "body", &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      g_test_message ("%s → %s", cases[i].input, error->message);
      g_assert_nonnull (strstr (error->message, cases[i].words));
      g_assert_nonnull (strstr (error->message, "body"));
      g_assert_cmpuint (json_object_get_size (vars), ==, 0);
    }
}

static GBytes *
gzip (const char *data,
      gsize       length)
{
  g_autoptr(GZlibCompressor) compressor = g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP,
                                                                 9);
  g_autoptr(GInputStream) source = g_memory_input_stream_new_from_data (data, length, NULL);
  g_autoptr(GInputStream) stream = g_converter_input_stream_new (source,
                                                                 G_CONVERTER (compressor));
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr(GError) error = NULL;

  g_output_stream_splice (out, stream, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error);
  g_assert_no_error (error);
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

/* Decompression stops at max-body, exactly: max-body bytes pass, one more is 413. */
static void
test_decode_bound (void)
{
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autofree char *plain = g_malloc (10 * 1024 * 1024);
  g_autoptr(GBytes) bomb = NULL;
  g_autoptr(GBytes) exact = NULL;
  g_autoptr(GBytes) decoded = NULL;
  g_autoptr(GBytes) refused = NULL;
  g_autoptr(GError) error = NULL;
  guint status = 0;

  memset (plain, 'a', 10 * 1024 * 1024);
  soup_message_headers_replace (headers, "Content-Encoding", "gzip");

  exact = gzip (plain, 4096);
  decoded = tocsin_relay_body_decode (headers, exact, 4096, &status, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (decoded), ==, 4096);
  g_clear_pointer (&decoded, g_bytes_unref);

  decoded = tocsin_relay_body_decode (headers, exact, 4095, &status, &error);
  g_assert_null (decoded);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);
  g_assert_cmpuint (status, ==, 413);
  g_clear_error (&error);

  /* 10 MiB in about 10 KiB: refused once 64 KiB have come out. */
  bomb = gzip (plain, 10 * 1024 * 1024);
  g_assert_cmpuint (g_bytes_get_size (bomb), <, 64 * 1024);
  refused = tocsin_relay_body_decode (headers, bomb, 64 * 1024, &status, &error);
  g_assert_null (refused);
  g_assert_cmpuint (status, ==, 413);
  g_assert_nonnull (strstr (error->message, "after decompression"));
}

static void
test_owner_spec (void)
{
  g_autoptr(GString) deep = g_string_new (NULL);
  static const struct
  {
    const char *body;
    guint       status;
    const char *words;
  } refused[] = {
    { "[1]", 400, "object" },
    { "{\"name\": 5}", 400, "“name”" },
    { "{\"name\": \"a\x01" "b\"}", 400, "“name”" },
    { "{\"name\": \"x\\ud800y\"}", 400, "JSON" },
    { "{\"name\": ", 400, "JSON" },
  };

  for (guint i = 0; i < 100000; i++)
    g_string_append_c (deep, '[');

  for (guint i = 0; i <= G_N_ELEMENTS (refused); i++)
    {
      TocsinRelayChannelSpec spec = { 0 };
      g_autoptr(JsonObject) object = NULL;
      g_autoptr(GError) error = NULL;
      const char *body = i < G_N_ELEMENTS (refused) ? refused[i].body : deep->str;
      guint status = 0;

      object = tocsin_relay_body_parse_channel_spec (body, strlen (body), 128 * 1024, &spec,
                                                     &status, &error);
      g_assert_null (object);
      g_test_message ("%.40s → %u %s", body, status, error->message);
      g_assert_cmpuint (status, ==, i < G_N_ELEMENTS (refused) ? refused[i].status : 400);
      g_assert_nonnull (strstr (error->message, i < G_N_ELEMENTS (refused) ? refused[i].words
                                                                           : "nested"));
    }

  {
    TocsinRelayChannelSpec spec = { 0 };
    g_autoptr(GError) error = NULL;
    guint status = 0;
    g_autoptr(JsonObject) object = tocsin_relay_body_parse_channel_spec ("{\"name\": \"N\"}", 13,
                                                                        20, &spec, &status,
                                                                        &error);

    g_assert_no_error (error);
    g_assert_cmpstr (spec.name, ==, "N");
    g_assert_null (spec.title);
    g_clear_pointer (&object, json_object_unref);
    object = tocsin_relay_body_parse_channel_spec ("{\"name\": \"N\"}", 13, 12, &spec, &status,
                                                   &error);
    g_assert_null (object);
    g_assert_cmpuint (status, ==, 413);
  }
}

/* The render step and the bound, with no relay: the condition, the default title, the link. */
static void
test_render (void)
{
  g_autoptr(TocsinTemplate) title = tocsin_template_new ("title", "T {{x}}", NULL);
  g_autoptr(TocsinTemplate) body = tocsin_template_new ("body", "{{x}}{{x}}", NULL);
  g_autoptr(TocsinTemplate) empty = tocsin_template_new ("link", "", NULL);
  g_autoptr(TocsinTemplate) condition = tocsin_template_new_condition ("condition", "x != 'no'",
                                                                       NULL);
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinMessage) message = NULL;
  g_autoptr(TocsinMessage) too_big = NULL;
  g_auto(TocsinRelayRendered) rendered = { 0 };
  g_auto(TocsinRelayRendered) filtered = { 0 };
  TocsinRelayChannel channel = { 0 };
  g_autofree char *encoded = NULL;
  gsize length = 0;

  channel.id = 3;
  channel.name = (char *) "Chan";
  channel.title = title;
  channel.body = body;
  channel.link = empty;
  channel.condition = condition;

  json_object_set_string_member (vars, "x", "\x01");
  json_object_set_string_member (vars, "externalLink", "javascript:alert(1)");
  tocsin_relay_ingest_render (&channel, vars, NULL, NULL, NULL, &rendered);
  g_assert_false (rendered.filtered);
  g_assert_cmpstr (rendered.title, ==, "T \x01");
  g_assert_cmpstr (rendered.body, ==, "\x01\x01");
  g_assert_null (rendered.link);
  g_assert_nonnull (rendered.link_dropped);

  /* The bound is on the encoded message, escapes included. */
  message = tocsin_relay_ingest_build_message (&channel, vars, &rendered, 1, 1024, &error);
  g_assert_no_error (error);
  message->id = 1;
  encoded = tocsin_message_to_data (message, &length);
  too_big = tocsin_relay_ingest_build_message (&channel, vars, &rendered, 1, length - 1, &error);
  g_assert_null (too_big);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);
  g_assert_cmpuint (tocsin_relay_ingest_max_message (1024 * 1024), ==, 256 * 1024);

  json_object_set_string_member (vars, "x", "no");
  tocsin_relay_ingest_render (&channel, vars, NULL, NULL, NULL, &filtered);
  g_assert_true (filtered.filtered);
  g_assert_null (filtered.title);
}

/* Issue #13.6: the shapes real senders use, read by tocsin_relay_body_read. Each case is the
 * request's Content-Type and body, and the variables it gives (compact JSON, or NULL for an
 * error with that status). */
#define KUMA_BOUNDARY "--------------------------123456789012345678901234"

static void
test_sender_shapes (void)
{
  static const struct
  {
    const char *type;
    const char *body;
    const char *expected;
    guint       status;
  } cases[] = {
    /* GitHub, "application/x-www-form-urlencoded": the JSON in payload=. */
    { "application/x-www-form-urlencoded",
      "payload=%7B%22action%22%3A%22opened%22%2C%22number%22%3A7%7D",
      "{\"action\":\"opened\",\"number\":7}", 200 },
    /* One field that is not JSON stays a field; two fields stay two fields. */
    { "application/x-www-form-urlencoded", "payload=hello", "{\"payload\":\"hello\"}", 200 },
    { "application/x-www-form-urlencoded", "payload=%7B%22a%22%3A1%7D&b=2",
      "{\"b\":\"2\",\"payload\":\"{\\\"a\\\":1}\"}", 200 },
    { "application/x-www-form-urlencoded", "payload=%7B%22a%22%3A",
      "{\"payload\":\"{\\\"a\\\":\"}", 200 },
    /* Uptime Kuma's multipart mode: the JSON in the part "data". */
    { "multipart/form-data; boundary=" KUMA_BOUNDARY,
      "--" KUMA_BOUNDARY "\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n"
      "{\"msg\":\"down\",\"monitor\":{\"name\":\"Site\"}}\r\n--" KUMA_BOUNDARY "--\r\n",
      "{\"msg\":\"down\",\"monitor\":{\"name\":\"Site\"}}", 200 },
    /* curl -F title=Backup -F message=done */
    { "multipart/form-data; boundary=xyz",
      "--xyz\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nBackup\r\n"
      "--xyz\r\nContent-Disposition: form-data; name=\"message\"\r\n"
      "Content-Type: text/plain\r\n\r\ndone\r\nin 3 s\r\n--xyz--\r\n",
      "{\"message\":\"done\\r\\nin 3 s\",\"title\":\"Backup\"}", 200 },
    /* The body ends right after the last boundary, with no "--" (unfixed libsoup read past it). */
    { "multipart/form-data; boundary=xyz",
      "--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--xyz", NULL, 400 },
    { "multipart/form-data", "--xyz\r\n\r\n\r\n--xyz--\r\n", NULL, 400 },
    { "multipart/form-data; boundary=xyz", "no boundary here", NULL, 400 },
    { "multipart/form-data; boundary=xyz",
      "--xyz\r\nContent-Type: text/plain\r\n\r\n1\r\n--xyz--\r\n", NULL, 400 },
    { "multipart/form-data; boundary=xyz",
      "--xyz\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.bin\"\r\n\r\n"
      "\xff\xfe\x00\x01\r\n--xyz--\r\n", NULL, 400 },
    /* Home Assistant's rest_command without content_type: JSON as text/plain. */
    { "text/plain; charset=utf-8", " {\"title\":\"Door\",\"n\":2}",
      "{\"title\":\"Door\",\"n\":2,\"bodyAsText\":\" {\\\"title\\\":\\\"Door\\\",\\\"n\\\":2}\"}",
      200 },
    { "text/plain", "{not json}", "{\"bodyAsText\":\"{not json}\"}", 200 },
    /* A top-level array is `body`, from JSON and from text/plain alike. */
    { "application/json", "[{\"name\":\"disk\"},2]", "{\"body\":[{\"name\":\"disk\"},2]}", 200 },
    { "text/plain", "[1]", "{\"body\":[1],\"bodyAsText\":\"[1]\"}", 200 },
    { "application/json", "42", NULL, 400 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(SoupMessageHeaders) headers =
        soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
      g_autoptr(GBytes) bytes = NULL;
      g_autoptr(JsonObject) vars = json_object_new ();
      g_autoptr(GError) error = NULL;
      g_autofree char *body_text = NULL;
      gsize length = strlen (cases[i].body);
      guint status = 200;
      gboolean ok;

      /* The one case with a NUL byte in it. */
      if (strstr (cases[i].body, "filename=\"a.bin\"") != NULL)
        length = strlen (cases[i].body) + 1 + strlen ("\x01\r\n--xyz--\r\n");
      g_test_message ("case %u: %s", i, cases[i].type);
      soup_message_headers_replace (headers, "Content-Type", cases[i].type);
      bytes = g_bytes_new (cases[i].body, length);
      ok = tocsin_relay_body_read (headers, bytes, 64 * 1024, vars, &body_text, &status, &error);
      if (cases[i].expected == NULL)
        {
          g_assert_false (ok);
          g_assert_nonnull (error);
          g_assert_cmpuint (status, ==, cases[i].status);
          g_test_message ("  refused: %s", error->message);
        }
      else
        {
          g_autoptr(JsonNode) node = json_node_new (JSON_NODE_OBJECT);
          g_autofree char *text = NULL;

          g_assert_no_error (error);
          g_assert_true (ok);
          json_node_set_object (node, vars);
          text = tocsin_json_to_string (node, FALSE);
          g_assert_cmpstr (text, ==, cases[i].expected);
        }
    }
}

/* More than TOCSIN_RELAY_BODY_MAX_PARTS fields: 413 before libsoup parses a part. */
static void
test_multipart_parts_bound (void)
{
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autoptr(GString) body = g_string_new (NULL);
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *body_text = NULL;
  guint status = 0;

  soup_message_headers_replace (headers, "Content-Type", "multipart/form-data; boundary=b");
  for (guint i = 0; i < TOCSIN_RELAY_BODY_MAX_PARTS; i++)
    g_string_append_printf (body, "--b\r\nContent-Disposition: form-data; name=\"f%u\"\r\n\r\n"
                                  "%u\r\n", i, i);
  g_string_append (body, "--b--\r\n");
  bytes = g_bytes_new (body->str, body->len);
  g_assert_true (tocsin_relay_body_read (headers, bytes, 1024 * 1024, vars, &body_text, &status,
                                         &error));
  g_assert_no_error (error);
  g_assert_cmpuint (json_object_get_size (vars), ==, TOCSIN_RELAY_BODY_MAX_PARTS);

  g_clear_pointer (&bytes, g_bytes_unref);
  g_string_truncate (body, body->len - strlen ("--b--\r\n"));
  g_string_append (body, "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--b--\r\n");
  bytes = g_bytes_new (body->str, body->len);
  g_assert_false (tocsin_relay_body_read (headers, bytes, 1024 * 1024, vars, &body_text, &status,
                                          &error));
  g_assert_cmpuint (status, ==, 413);
  g_assert_nonnull (strstr (error->message, "256"));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/relay/body/form-pairs", test_form_pairs);
  g_test_add_func ("/relay/body/form-refused", test_form_refused);
  g_test_add_func ("/relay/body/decode-bound", test_decode_bound);
  g_test_add_func ("/relay/body/owner-spec", test_owner_spec);
  g_test_add_func ("/relay/body/render", test_render);
  g_test_add_func ("/relay/body/sender-shapes", test_sender_shapes);
  g_test_add_func ("/relay/body/multipart-parts-bound", test_multipart_parts_bound);

  return g_test_run ();
}
