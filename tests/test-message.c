/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "test-message"

#include "config.h"

#include <string.h>

#include "tocsin-json.h"
#include "tocsin-message.h"
#include "tocsin-token.h"

static void
test_roundtrip (void)
{
  g_autoptr(TocsinMessage) message = tocsin_message_new ();
  g_autoptr(TocsinMessage) back = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *data = NULL;
  gsize len = 0;

  message->id = 42;
  message->channel = 7;
  message->channel_name = g_strdup ("Prod alerts");
  message->time_ms = 1795452000123;
  g_free (message->title);
  message->title = g_strdup ("Alerte serveur <b>Production</b> & co");
  g_free (message->body);
  message->body = g_strdup ("L'utilisation du CPU a atteint 95%");
  message->external_link = g_strdup ("https://dashboard.example.com/alerts/123");
  json_object_set_int_member (message->vars, "cpu_usage", 95);
  message->replaces = 41;

  data = tocsin_message_to_data (message, &len);
  g_assert_cmpuint (len, ==, strlen (data));
  g_assert_nonnull (strstr (data, "\"time\":\"2026-11-23T"));

  back = tocsin_message_new_from_data (data, len, &error);
  g_assert_no_error (error);
  g_assert_cmpint (back->id, ==, 42);
  g_assert_cmpint (back->channel, ==, 7);
  g_assert_cmpint (back->replaces, ==, 41);
  g_assert_cmpint (back->time_ms, ==, 1795452000123);
  g_assert_cmpstr (back->channel_name, ==, "Prod alerts");
  g_assert_cmpstr (back->title, ==, message->title);
  g_assert_cmpstr (back->body, ==, message->body);
  g_assert_cmpstr (back->external_link, ==, message->external_link);
  g_assert_cmpint (json_object_get_int_member (back->vars, "cpu_usage"), ==, 95);
}

static void
test_optional_fields_absent (void)
{
  g_autoptr(TocsinMessage) message = tocsin_message_new ();
  g_autofree char *data = NULL;

  message->id = 1;
  message->channel = 1;
  message->time_ms = 1000;
  data = tocsin_message_to_data (message, NULL);
  g_assert_null (strstr (data, "externalLink"));
  g_assert_null (strstr (data, "replaces"));
  g_assert_null (strstr (data, "channelName"));
}

/* tocsin_message_to_data() writes its bytes directly (issue 17, item 2); what subscribers receive
 * and what the store keeps must stay the bytes of the JsonObject encoding it replaced. */
static void
test_encoding_matches_tree (void)
{
  for (guint i = 0; i < 4; i++)
    {
      g_autoptr(TocsinMessage) message = tocsin_message_new ();
      g_autoptr(JsonNode) tree = json_node_new (JSON_NODE_OBJECT);
      g_autoptr(JsonObject) nested = json_object_new ();
      g_autoptr(JsonArray) array = json_array_new ();
      g_autofree char *expected = NULL, *data = NULL;
      gsize length = 0;

      message->id = i == 1 ? G_MAXINT64 : 42;
      message->channel = i == 2 ? 0 : 7;
      message->time_ms = i == 3 ? -1 : 1795452000123 + i;
      if (i != 0)
        {
          message->channel_name = g_strdup ("Prod \"alerts\"\n\x01\x7f é");
          g_free (message->title);
          message->title = i == 2 ? NULL : g_strdup ("Alerte <b>\\</b>\t");
          g_free (message->body);
          message->body = g_strdup ("L'utilisation du CPU a atteint 95%");
          message->external_link = g_strdup ("https://example.com/?a=1&b=\"2\"");
          message->replaces = i;
          message->type = i == 2 ? TOCSIN_MESSAGE_TYPE_DEFAULT : (TocsinMessageType) 1;
          message->markdown = i == 1;
        }
      if (i == 3)
        g_clear_pointer (&message->vars, json_object_unref);
      else
        {
          json_object_set_int_member (message->vars, "cpu_usage", 95);
          json_object_set_double_member (message->vars, "load", 0.1);
          json_object_set_boolean_member (message->vars, "up", FALSE);
          json_object_set_null_member (message->vars, "none");
          json_array_add_string_element (array, "a\u2028b");
          json_array_add_int_element (array, -3);
          json_object_set_array_member (nested, "list", json_array_ref (array));
          json_object_set_object_member (message->vars, "nested", json_object_ref (nested));
        }

      json_node_take_object (tree, tocsin_message_to_json_object (message));
      expected = tocsin_json_to_string (tree, FALSE);
      data = tocsin_message_to_data (message, &length);
      g_assert_cmpstr (data, ==, expected);
      g_assert_cmpuint (length, ==, strlen (expected));
    }
}

/* The escaper's fast path (runs of plain bytes) writes what the per-byte one does. */
static void
test_escaper_matches_capped (void)
{
  g_autoptr(GString) all = g_string_new ("plain");

  for (guint c = 1; c < 256; c++)
    {
      g_autoptr(GString) fast = g_string_new (NULL), slow = g_string_new (NULL);
      char s[] = { 'a', (char) c, 'b', (char) c, '\0' };

      tocsin_json_append_string (fast, s);
      tocsin_json_append_string_capped (slow, s, G_MAXSIZE);
      g_assert_cmpstr (fast->str, ==, slow->str);
      g_string_append_c (all, (char) c);
    }
  {
    g_autoptr(GString) fast = g_string_new (NULL), slow = g_string_new (NULL);

    tocsin_json_append_string (fast, all->str);
    tocsin_json_append_string_capped (slow, all->str, G_MAXSIZE);
    g_assert_cmpstr (fast->str, ==, slow->str);
    g_string_truncate (fast, 0);
    tocsin_json_append_string (fast, "");
    g_assert_cmpstr (fast->str, ==, "\"\"");
  }
}

static void
test_append_int (void)
{
  const gint64 values[] = { 0, 1, -1, 9, 10, -10, 95, 1795452000123, G_MAXINT64, G_MININT64 };

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr(GString) out = g_string_new ("x");
      g_autofree char *expected = g_strdup_printf ("x%" G_GINT64_FORMAT, values[i]);

      tocsin_json_append_int (out, values[i]);
      g_assert_cmpstr (out->str, ==, expected);
    }
}

/* The hand-made RFC 3339 text gives GDateTime's, 1970 to 9999. */
static void
test_format_time_matches_gdatetime (void)
{
  const gint64 times[] = { 0, 999, 1000, 951782400000 /* 2000-02-29 */, 951868799999,
                           4107542400000 /* 2100-03-01 */, 1795452000123, 68169600000,
                           253402300799999 /* 9999-12-31T23:59:59.999 */, 1709164800001 };

  for (guint i = 0; i < G_N_ELEMENTS (times); i++)
    {
      g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (times[i] / 1000);
      g_autofree char *base = g_date_time_format (dt, "%Y-%m-%dT%H:%M:%S");
      g_autofree char *expected = g_strdup_printf ("%s.%03dZ", base, (int) (times[i] % 1000));
      g_autofree char *got = tocsin_format_time_ms (times[i]);

      g_assert_cmpstr (got, ==, expected);
    }
  for (gint64 t = 0; t < G_GINT64_CONSTANT (253402300800000); t += G_GINT64_CONSTANT (7776000123))
    {
      g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (t / 1000);
      g_autofree char *base = g_date_time_format (dt, "%Y-%m-%dT%H:%M:%S");
      g_autofree char *expected = g_strdup_printf ("%s.%03dZ", base, (int) (t % 1000));
      g_autofree char *got = tocsin_format_time_ms (t);

      g_assert_cmpstr (got, ==, expected);
    }
}

typedef struct
{
  const char *json;
  int         code;
  const char *message_part;
} BadCase;

static const BadCase bad_cases[] = {
  { "not json", -1, NULL },
  { "[1,2]", TOCSIN_MESSAGE_ERROR_INVALID, "not a JSON object" },
  { "{\"channel\":1,\"time\":\"2026-01-01T00:00:00Z\"}", TOCSIN_MESSAGE_ERROR_INVALID, "no \"id\"" },
  { "{\"id\":\"1\",\"channel\":1,\"time\":\"2026-01-01T00:00:00Z\"}", TOCSIN_MESSAGE_ERROR_INVALID, "not an integer" },
  { "{\"id\":-3,\"channel\":1,\"time\":\"2026-01-01T00:00:00Z\"}", TOCSIN_MESSAGE_ERROR_INVALID, "negative" },
  { "{\"id\":1,\"channel\":1,\"time\":\"yesterday\"}", TOCSIN_MESSAGE_ERROR_INVALID, "RFC 3339" },
  { "{\"id\":1,\"channel\":1,\"time\":\"2026-01-01T00:00:00Z\",\"title\":5}", TOCSIN_MESSAGE_ERROR_INVALID, "\"title\" is not a string" },
  { "{\"id\":1,\"channel\":1,\"time\":\"2026-01-01T00:00:00Z\",\"vars\":[]}", TOCSIN_MESSAGE_ERROR_INVALID, "\"vars\" is not an object" },
  { "{\"id\":1,\"channel\":1,\"time\":\"2026-01-01T00:00:00Z\",\"vars\":{\"a\":[\"\\700\"]}}", TOCSIN_MESSAGE_ERROR_INVALID, "not valid Unicode" },
  { "{\"id\":1,\"channel\":1,\"time\":\"2026-01-01T00:00:00Z\",\"vars\":{\"x\\700\":1}}", TOCSIN_MESSAGE_ERROR_INVALID, "not valid Unicode" },
  { "{\"id\":1,\"channel\":1,\"time\":\"2026-01-01T00:00:00Z\",\"externalLink\":\"javascript:alert(1)\"}", TOCSIN_MESSAGE_ERROR_BAD_LINK, "only http and https" },
  { "{\"id\":1,\"channel\":1,\"time\":\"2026-01-01T00:00:00Z\",\"externalLink\":\"file:///etc/passwd\"}", TOCSIN_MESSAGE_ERROR_BAD_LINK, "only http and https" },
  { "{\"id\":1,\"channel\":1,\"time\":\"2026-01-01T00:00:00Z\",\"notificationType\":\"loud\"}",
    TOCSIN_MESSAGE_ERROR_INVALID, "not active, time-sensitive or calling" },
  { "{\"id\":1,\"channel\":1,\"time\":\"2026-01-01T00:00:00Z\",\"markdown\":\"yes\"}",
    TOCSIN_MESSAGE_ERROR_INVALID, "not true or false" },
};

/* Each type the wire names comes back as it went; DEFAULT and plain text leave no trace. */
static void
test_type_and_markdown (void)
{
  for (int t = TOCSIN_MESSAGE_TYPE_DEFAULT; t <= TOCSIN_MESSAGE_TYPE_CALLING; t++)
    for (int markdown = 0; markdown <= 1; markdown++)
      {
        g_autoptr(TocsinMessage) message = tocsin_message_new ();
        g_autoptr(TocsinMessage) back = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *data = NULL;
        gsize length;

        message->id = 1;
        message->channel = 2;
        message->time_ms = 1767225600000;
        message->type = t;
        message->markdown = markdown;
        data = tocsin_message_to_data (message, &length);
        g_assert_true ((strstr (data, "notificationType") != NULL) ==
                       (t != TOCSIN_MESSAGE_TYPE_DEFAULT));
        g_assert_true ((strstr (data, "markdown") != NULL) == markdown);
        back = tocsin_message_new_from_data (data, length, &error);
        g_assert_no_error (error);
        g_assert_cmpint (back->type, ==, t);
        g_assert_cmpint (back->markdown, ==, markdown);
      }
}

static void
test_bad (gconstpointer data)
{
  const BadCase *c = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinMessage) message = NULL;

  message = tocsin_message_new_from_data (c->json, strlen (c->json), &error);
  g_assert_null (message);
  g_assert_nonnull (error);
  if (c->code >= 0)
    g_assert_error (error, TOCSIN_MESSAGE_ERROR, c->code);
  if (c->message_part)
    g_assert_nonnull (strstr (error->message, c->message_part));
}

typedef struct
{
  const char *uri;
  gboolean    safe;
} LinkCase;

static const LinkCase link_cases[] = {
  { "https://dashboard.example.com/alerts/123", TRUE },
  { "http://127.0.0.1:8080/x?y=1#z", TRUE },
  { "HTTPS://EXAMPLE.COM/", TRUE },
  { "https://пример.рф/путь", TRUE },
  { "javascript:alert(1)", FALSE },
  { "JavaScript:alert(1)", FALSE },
  { "file:///etc/passwd", FALSE },
  { "data:text/html,<script>alert(1)</script>", FALSE },
  { "https://user:secret@example.com/", FALSE },
  { "https://example.com/\nSet-Cookie: x", FALSE },
  { "https://example.com/a b", FALSE },
  { "//example.com/", FALSE },
  { "/relative/path", FALSE },
  { "https://", FALSE },
  { "", FALSE },
};

static void
test_link (gconstpointer data)
{
  const LinkCase *c = data;
  const char *reason = NULL;

  g_assert_cmpint (tocsin_link_is_safe (c->uri, &reason), ==, c->safe);
  if (c->safe)
    g_assert_null (reason);
  else
    g_assert_nonnull (reason);
}

static void
test_link_too_long (void)
{
  g_autoptr(GString) uri = g_string_new ("https://example.com/");
  const char *reason = NULL;

  while (uri->len <= 2048)
    g_string_append (uri, "aaaaaaaa");
  g_assert_false (tocsin_link_is_safe (uri->str, &reason));
  g_assert_nonnull (strstr (reason, "2048"));
}

static void
test_error_is_utf8 (void)
{
  static const char bad[] = "{\"id\": \xff\xfe}";
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinMessage) message = tocsin_message_new_from_data (bad, sizeof bad - 1, &error);

  g_assert_null (message);
  g_assert_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID);
  /* The app shows and logs this sentence; it must be text whatever the peer sent. */
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
}

static void
test_json_getters_wrong_types (void)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *object;

  g_assert_true (json_parser_load_from_data (parser,
    "{\"channel\": {\"id\": 1}, \"id\": 7, \"big\": 1e300, \"f\": 2.0, "
    "\"s\": \"x\", \"list\": [1], \"n\": null}", -1, NULL));
  object = json_node_get_object (json_parser_get_root (parser));

  g_assert_cmpint (tocsin_json_get_int (object, "channel", -1), ==, -1);
  g_assert_cmpint (tocsin_json_get_int (object, "id", -1), ==, 7);
  g_assert_cmpint (tocsin_json_get_int (object, "big", -1), ==, -1);
  g_assert_cmpint (tocsin_json_get_int (object, "f", -1), ==, 2);
  g_assert_cmpint (tocsin_json_get_int (object, "s", -1), ==, -1);
  g_assert_cmpint (tocsin_json_get_int (object, "absent", -1), ==, -1);
  g_assert_cmpstr (tocsin_json_get_string (object, "s", NULL), ==, "x");
  g_assert_null (tocsin_json_get_string (object, "list", NULL));
  g_assert_null (tocsin_json_get_string (object, "n", NULL));
  g_assert_cmpstr (tocsin_json_get_string (object, "id", "fallback"), ==, "fallback");
}

/* json-glib 1.6 writes 1e-100 as "1e-100.0"; what we send must parse back to the same values. */
static void
test_json_numbers_roundtrip (void)
{
  static const char *const inputs[] = {
    "{\"a\":1e-100,\"b\":1e308,\"c\":-1e-100,\"d\":45.789,\"e\":0.1,\"f\":1e9,"
    "\"g\":-0.0,\"h\":5e-324,\"i\":1.7976931348623157e308,\"j\":123456789012345678}",
    "[1.5,2,[3e-7,{\"x\":\"\\u0001\\n\\\"\\\\\\u2028\"}],true,false,null]",
  };

  for (guint i = 0; i < G_N_ELEMENTS (inputs); i++)
    {
      g_autoptr(JsonParser) first = json_parser_new ();
      g_autoptr(JsonParser) second = json_parser_new ();
      g_autoptr(GError) error = NULL;
      g_autofree char *text = NULL;
      g_autofree char *again = NULL;

      g_assert_true (json_parser_load_from_data (first, inputs[i], -1, NULL));
      text = tocsin_json_to_string (json_parser_get_root (first), FALSE);
      json_parser_load_from_data (second, text, -1, &error);
      g_assert_no_error (error);
      g_assert_true (json_node_equal (json_parser_get_root (first), json_parser_get_root (second)));
      again = tocsin_json_to_string (json_parser_get_root (second), FALSE);
      g_assert_cmpstr (text, ==, again);
    }
}

static void
test_json_shortest (void)
{
  g_autoptr(GString) out = g_string_new (NULL);

  tocsin_json_append_double (out, 45.789);
  g_string_append_c (out, ' ');
  tocsin_json_append_double (out, 1e-100);
  g_string_append_c (out, ' ');
  tocsin_json_append_double (out, 0.1);
  g_string_append_c (out, ' ');
  tocsin_json_append_double (out, 1.0 / 0.0);
  g_assert_cmpstr (out->str, ==, "45.789 1e-100 0.1 null");
}

static void
test_tokens (void)
{
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < 1000; i++)
    {
      g_autoptr(GError) error = NULL;
      char *token = tocsin_token_new (&error);

      g_assert_no_error (error);
      g_assert_cmpuint (strlen (token), ==, TOCSIN_TOKEN_CHARS);
      g_assert_true (tocsin_token_is_wellformed (token));
      g_assert_false (g_hash_table_contains (seen, token));
      g_hash_table_add (seen, token);
    }
}

static void
test_token_equal (void)
{
  g_assert_true (tocsin_token_equal ("abc", "abc"));
  g_assert_false (tocsin_token_equal ("abc", "abd"));
  g_assert_false (tocsin_token_equal ("abc", "abcd"));
  g_assert_false (tocsin_token_equal ("abcd", "abc"));
  g_assert_false (tocsin_token_equal ("", "a"));
  g_assert_false (tocsin_token_equal (NULL, "a"));
  g_assert_true (tocsin_token_equal ("", ""));
}

static void
test_token_wellformed (void)
{
  g_assert_false (tocsin_token_is_wellformed (NULL));
  g_assert_false (tocsin_token_is_wellformed (""));
  g_assert_false (tocsin_token_is_wellformed ("../../../../../../../../etc/pass"));
  g_assert_false (tocsin_token_is_wellformed ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
  g_assert_false (tocsin_token_is_wellformed ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
  g_assert_true (tocsin_token_is_wellformed ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-_"));
}

/* The guarded parser says what is wrong, in a sentence, before json-glib sees the text. */
static void
test_json_parse_guards (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(JsonObject) object = NULL;
  const char control[] = "{\"server\": \"a\x01b\"}";
  const char bad_utf8[] = "{\"a\": \"\xff\"}";

  node = tocsin_json_parse ("[1, 2]", 6, 1024, 4, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (node));

  g_assert_null (tocsin_json_parse ("[1, 2]", 6, 5, 4, &error));
  g_assert_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_TOO_LARGE);
  g_clear_error (&error);

  g_assert_null (tocsin_json_parse ("[[[1]]]", 7, 1024, 2, &error));
  g_assert_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_TOO_DEEP);
  g_clear_error (&error);
  /* Brackets inside strings are text, not nesting. */
  g_clear_pointer (&node, json_node_unref);
  node = tocsin_json_parse ("[\"[[[[\"]", 8, 1024, 2, &error);
  g_assert_no_error (error);

  g_assert_null (tocsin_json_parse (control, strlen (control), 1024, 4, &error));
  g_assert_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_CONTROL_CHAR);
  g_assert_nonnull (strstr (error->message, "“server”"));
  g_clear_error (&error);

  g_assert_null (tocsin_json_parse (bad_utf8, strlen (bad_utf8), 1024, 4, &error));
  g_assert_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_INVALID_UTF8);
  g_clear_error (&error);

  /* A lone surrogate: json-glib 1.6 refuses it itself; either way no invalid text gets out. */
  g_assert_null (tocsin_json_parse ("{\"a\": \"\\ud800\"}", 15, 1024, 4, &error));
  g_assert_nonnull (error);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  g_clear_error (&error);

  g_assert_null (tocsin_json_parse ("{\"a\": ", 6, 1024, 4, &error));
  g_assert_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_SYNTAX);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  g_clear_error (&error);

  g_assert_null (tocsin_json_parse ("", 0, 1024, 4, &error));
  g_assert_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_SYNTAX);
  g_clear_error (&error);

  g_assert_null (tocsin_json_parse_object ("[1]", 3, 1024, 4, &error));
  g_assert_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_NOT_OBJECT);
  g_clear_error (&error);
  object = tocsin_json_parse_object ("{\"a\": 1}", 8, 1024, 4, &error);
  g_assert_no_error (error);
  g_assert_cmpint (json_object_get_int_member (object, "a"), ==, 1);
}

/* 100,000 `[` crashed json-glib's recursive parser (a hostile relay did this to the app). */
static void
test_json_parse_deep (void)
{
  g_autoptr(GError) error = NULL;
  gsize n = 100000;
  g_autofree char *deep = g_malloc (2 * n);

  memset (deep, '[', n);
  memset (deep + n, ']', n);
  g_assert_null (tocsin_json_parse (deep, 2 * n, 4 * n, TOCSIN_JSON_DEFAULT_MAX_DEPTH, &error));
  g_assert_error (error, TOCSIN_JSON_ERROR, TOCSIN_JSON_ERROR_TOO_DEEP);
}

/* ---- actions (issue 15): the buttons a message carries ---- */

static TocsinMessageAction *
new_action (const char *kind,
            const char *label,
            const char *url)
{
  TocsinMessageAction *action = g_new0 (TocsinMessageAction, 1);

  action->kind = g_strdup (kind);
  action->label = g_strdup (label);
  action->url = g_strdup (url);
  return action;
}

/* What the relay encodes, the app decodes: every field of both kinds, in order. */
static void
test_actions_roundtrip (void)
{
  g_autoptr(TocsinMessage) message = tocsin_message_new ();
  g_autoptr(TocsinMessage) back = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) tree = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *data = NULL, *expected = NULL;
  TocsinMessageAction *view, *http;
  const TocsinMessageAction *got;
  gsize length = 0;

  message->id = 3;
  message->channel = 4;
  message->time_ms = 1795452000123;
  view = new_action ("view", "Open dashboard", "https://grafana.example/d/1");
  http = new_action ("http", "Silence 1 h", "https://am.example/api/v2/silences?x=1");
  http->method = g_strdup ("POST");
  http->headers = g_strdupv ((char *[]) { "Content-Type", "application/json",
                                          "Authorization", "Bearer \"k\"\t2", NULL });
  http->body = g_strdup ("{\"comment\":\"été\"}");
  http->retry = TRUE;
  http->clear = TRUE;
  g_ptr_array_add (message->actions, view);
  g_ptr_array_add (message->actions, http);

  data = tocsin_message_to_data (message, &length);
  json_node_take_object (tree, tocsin_message_to_json_object (message));
  expected = tocsin_json_to_string (tree, FALSE);
  g_assert_cmpstr (data, ==, expected);
  g_assert_nonnull (strstr (data, ",\"actions\":[{\"kind\":\"view\",\"label\":\"Open dashboard\","
                                  "\"url\":\"https://grafana.example/d/1\"},{\"kind\":\"http\","));
  g_assert_nonnull (strstr (data, "\"policy\":\"retry\",\"clear\":true}]}"));

  back = tocsin_message_new_from_data (data, length, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (back->actions->len, ==, 2);
  got = g_ptr_array_index (back->actions, 0);
  g_assert_cmpstr (got->kind, ==, "view");
  g_assert_cmpstr (got->label, ==, "Open dashboard");
  g_assert_cmpstr (got->url, ==, "https://grafana.example/d/1");
  g_assert_null (got->method);
  g_assert_null (got->headers);
  g_assert_false (got->clear);
  got = g_ptr_array_index (back->actions, 1);
  g_assert_cmpstr (got->kind, ==, "http");
  g_assert_cmpstr (got->label, ==, "Silence 1 h");
  g_assert_cmpstr (got->url, ==, http->url);
  g_assert_cmpstr (got->method, ==, "POST");
  g_assert_cmpstrv (got->headers, http->headers);
  g_assert_cmpstr (got->body, ==, http->body);
  g_assert_true (got->retry);
  g_assert_true (got->clear);

  /* No actions, no member: older subscribers see the bytes they always did. */
  g_ptr_array_set_size (message->actions, 0);
  g_clear_pointer (&data, g_free);
  data = tocsin_message_to_data (message, NULL);
  g_assert_null (strstr (data, "actions"));
}

/* The defaults a sender may leave out: policy none, clear false, no headers, no body. */
static void
test_actions_defaults (void)
{
  const char *json = "{\"id\":1,\"channel\":1,\"time\":\"2026-01-01T00:00:00Z\",\"actions\":["
                     "{\"kind\":\"http\",\"label\":\"Ack\",\"url\":\"http://127.0.0.1:8080/a\","
                     "\"method\":\"DELETE\",\"unknown\":1}]}";
  g_autoptr(TocsinMessage) message = NULL;
  g_autoptr(GError) error = NULL;
  const TocsinMessageAction *action;

  message = tocsin_message_new_from_data (json, strlen (json), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (message->actions->len, ==, 1);
  action = g_ptr_array_index (message->actions, 0);
  g_assert_cmpstr (action->method, ==, "DELETE");
  g_assert_false (action->retry);
  g_assert_false (action->clear);
  g_assert_null (action->headers);
  g_assert_null (action->body);
}

typedef struct
{
  const char *actions;   /* the "actions" member's value */
  const char *message_part;
} BadActionCase;

#define ACT_HTTP "\"kind\":\"http\",\"label\":\"Go\",\"method\":\"POST\""
#define ACT_VIEW "\"kind\":\"view\",\"label\":\"Go\""

static const BadActionCase bad_action_cases[] = {
  { "{}", "\"actions\" is not an array" },
  { "[1]", "action 1 is not an object" },
  { "[{" ACT_VIEW ",\"url\":\"https://a\"},{" ACT_VIEW ",\"url\":\"https://a\"},{" ACT_VIEW
    ",\"url\":\"https://a\"},{" ACT_VIEW ",\"url\":\"https://a\"}]", "more than 3 actions" },
  { "[{\"kind\":\"mail\",\"label\":\"Go\",\"url\":\"https://a\"}]", "not view or http" },
  { "[{\"kind\":\"view\",\"url\":\"https://a\"}]", "a member it needs is missing" },
  { "[{\"kind\":\"view\",\"label\":\"\",\"url\":\"https://a\"}]", "not 1 to 64 characters" },
  { "[{\"kind\":\"view\",\"label\":\"12345678901234567890123456789012345678901234567890123456789"
    "012345\",\"url\":\"https://a\"}]", "not 1 to 64 characters" },
  { "[{\"kind\":\"view\",\"label\":\"a\\nb\",\"url\":\"https://a\"}]", "control character" },
  { "[{\"kind\":\"view\",\"label\":5,\"url\":\"https://a\"}]", "must be a string" },
  { "[{" ACT_VIEW ",\"url\":\"javascript:alert(1)\"}]", "only http and https" },
  { "[{" ACT_VIEW ",\"url\":\"https://u:p@a/\"}]", "user name or password" },
  { "[{" ACT_VIEW ",\"url\":\"https://a\",\"clear\":\"yes\"}]", "\"clear\" is not true or false" },
  { "[{" ACT_HTTP ",\"url\":\"ftp://a/\"}]", "only http and https" },
  { "[{" ACT_HTTP ",\"url\":\"/relative\"}]", "not an absolute URL" },
  { "[{\"kind\":\"http\",\"label\":\"Go\",\"url\":\"https://a\"}]", "\"method\" is not GET" },
  { "[{\"kind\":\"http\",\"label\":\"Go\",\"url\":\"https://a\",\"method\":\"PATCH\"}]",
    "\"method\" is not GET" },
  { "[{\"kind\":\"http\",\"label\":\"Go\",\"url\":\"https://a\",\"method\":\"post\"}]",
    "\"method\" is not GET" },
  { "[{" ACT_HTTP ",\"url\":\"https://a\",\"headers\":[]}]", "\"headers\" is not an object" },
  { "[{" ACT_HTTP ",\"url\":\"https://a\",\"headers\":{\"A\":1}}]", "value is not a string" },
  { "[{" ACT_HTTP ",\"url\":\"https://a\",\"headers\":{\"A\":\"x\\r\\nB: y\"}}]",
    "line break" },
  { "[{" ACT_HTTP ",\"url\":\"https://a\",\"headers\":{\"A B\":\"x\"}}]", "not an HTTP token" },
  { "[{" ACT_HTTP ",\"url\":\"https://a\",\"body\":{}}]", "must be a string" },
  { "[{" ACT_HTTP ",\"url\":\"https://a\",\"policy\":\"always\"}]", "not retry or none" },
};

static void
test_actions_bad (gconstpointer data)
{
  const BadActionCase *c = data;
  g_autofree char *json = g_strdup_printf ("{\"id\":1,\"channel\":1,"
                                           "\"time\":\"2026-01-01T00:00:00Z\",\"actions\":%s}",
                                           c->actions);
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinMessage) message = tocsin_message_new_from_data (json, strlen (json), &error);

  g_assert_null (message);
  g_assert_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID);
  if (strstr (error->message, c->message_part) == NULL)
    g_error ("%s: “%s” does not say “%s”", c->actions, error->message, c->message_part);
}

/* The body limit is the request model's: 256 KiB passes, one byte more does not. */
static void
test_actions_body_limit (void)
{
  for (gsize extra = 0; extra <= 1; extra++)
    {
      g_autoptr(GString) json = g_string_new ("{\"id\":1,\"channel\":1,"
                                              "\"time\":\"2026-01-01T00:00:00Z\",\"actions\":[{"
                                              ACT_HTTP ",\"url\":\"https://a\",\"body\":\"");
      g_autoptr(TocsinMessage) message = NULL;
      g_autoptr(GError) error = NULL;

      for (gsize i = 0; i < 256 * 1024 + extra; i++)
        g_string_append_c (json, 'x');
      g_string_append (json, "\"}]}");
      message = tocsin_message_new_from_data (json->str, json->len, &error);
      if (extra == 0)
        g_assert_no_error (error);
      else
        g_assert_error (error, TOCSIN_MESSAGE_ERROR, TOCSIN_MESSAGE_ERROR_INVALID);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/message/roundtrip", test_roundtrip);
  g_test_add_func ("/message/optional-fields-absent", test_optional_fields_absent);
  g_test_add_func ("/message/type-and-markdown", test_type_and_markdown);
  for (guint i = 0; i < G_N_ELEMENTS (bad_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/message/invalid/%u", i);
      g_test_add_data_func (path, &bad_cases[i], test_bad);
    }
  for (guint i = 0; i < G_N_ELEMENTS (link_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/message/link/%u", i);
      g_test_add_data_func (path, &link_cases[i], test_link);
    }
  g_test_add_func ("/message/link/too-long", test_link_too_long);
  g_test_add_func ("/message/error-is-utf8", test_error_is_utf8);
  g_test_add_func ("/json/numbers-roundtrip", test_json_numbers_roundtrip);
  g_test_add_func ("/json/shortest", test_json_shortest);
  g_test_add_func ("/message/json-getters-wrong-types", test_json_getters_wrong_types);
  g_test_add_func ("/json/parse/guards", test_json_parse_guards);
  g_test_add_func ("/json/parse/deep-does-not-crash", test_json_parse_deep);
  g_test_add_func ("/message/encoding-matches-tree", test_encoding_matches_tree);
  g_test_add_func ("/message/escaper-matches-capped", test_escaper_matches_capped);
  g_test_add_func ("/message/append-int", test_append_int);
  g_test_add_func ("/message/format-time-matches-gdatetime", test_format_time_matches_gdatetime);
  g_test_add_func ("/message/actions/roundtrip", test_actions_roundtrip);
  g_test_add_func ("/message/actions/defaults", test_actions_defaults);
  g_test_add_func ("/message/actions/body-limit", test_actions_body_limit);
  for (guint i = 0; i < G_N_ELEMENTS (bad_action_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/message/actions/invalid/%u", i);
      g_test_add_data_func (path, &bad_action_cases[i], test_actions_bad);
    }
  g_test_add_func ("/token/unique-and-wellformed", test_tokens);
  g_test_add_func ("/token/equal", test_token_equal);
  g_test_add_func ("/token/wellformed", test_token_wellformed);

  return g_test_run ();
}
