/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-ingest.c: /t/{token} on the real relay, as a webhook sender and a subscriber see it.
 */
#define G_LOG_DOMAIN "test-relay-ingest"

#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <glib/gstdio.h>

#include "tocsin-message.h"
#include "tocsin-test-relay.h"

#define TITLE "Alerte serveur {{server_name}}"
#define BODY "L'utilisation du CPU a atteint {{cpu_usage}}%"

typedef struct
{
  TocsinTestRelay *relay;
  JsonObject      *channel;
  char            *hook;       /* "/t/<trigger token>" */
} Fixture;

static void
setup_with (Fixture            *f,
            const char * const *args,
            const char         *link,
            const char         *condition)
{
  f->relay = tocsin_test_relay_start (NULL, args);
  f->channel = tocsin_test_relay_create_channel (f->relay, "Prod alerts", TITLE, BODY, link,
                                                 condition);
  f->hook = g_strdup_printf ("/t/%s", json_object_get_string_member (f->channel,
                                                                     "trigger_token"));
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  setup_with (f, data, NULL, NULL);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
  g_clear_pointer (&f->channel, json_object_unref);
  g_free (f->hook);
}

/* A request that must answer @expected with a JSON object; returns the object. */
static JsonObject *
request (Fixture            *f,
         const char         *method,
         const char         *path,
         const char         *type,
         const char         *body,
         const char * const *headers,
         guint               expected)
{
  guint status = 0;
  g_autoptr(JsonNode) node = tocsin_test_http_json (f->relay, method, path, type, body, headers,
                                                    &status);

  g_assert_cmpuint (status, ==, expected);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
  return json_object_ref (json_node_get_object (node));
}

static char *
hook_with (Fixture    *f,
           const char *query)
{
  return g_strconcat (f->hook, query, NULL);
}

static gboolean
array_has (JsonArray  *array,
           const char *value)
{
  for (guint i = 0; i < json_array_get_length (array); i++)
    if (g_strcmp0 (json_array_get_string_element (array, i), value) == 0)
      return TRUE;
  return FALSE;
}

/* A subscriber: a WebSocket on the channel's stream, collecting decoded messages. */
typedef struct
{
  SoupWebsocketConnection *ws;
  GPtrArray               *frames;
} Subscriber;

static void
subscriber_open (Fixture    *f,
                 Subscriber *s,
                 const char *since)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_strdup_printf ("/s/%s/ws%s%s",
                                           json_object_get_string_member (f->channel,
                                                                          "subscribe_token"),
                                           since ? "?since=" : "", since ? since : "");

  s->frames = g_ptr_array_new_with_free_func (g_free);
  s->ws = tocsin_test_websocket_connect (f->relay, path, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (s->ws, s->frames);
}

static void
subscriber_close (Subscriber *s)
{
  if (soup_websocket_connection_get_state (s->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (s->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  g_clear_object (&s->ws);
  g_clear_pointer (&s->frames, g_ptr_array_unref);
}

/* The message objects among the frames (skipping any other kind of frame). */
static TocsinMessage *
subscriber_message (Subscriber *s,
                    guint       n)
{
  guint seen = 0;

  for (guint i = 0; i < s->frames->len; i++)
    {
      const char *frame = s->frames->pdata[i];
      TocsinMessage *message = tocsin_message_new_from_data (frame, strlen (frame), NULL);

      if (message == NULL)
        continue;
      if (seen++ == n)
        return message;
      tocsin_message_free (message);
    }
  return NULL;
}

static guint
subscriber_count (Subscriber *s)
{
  guint n = 0;

  for (guint i = 0; i < s->frames->len; i++)
    {
      const char *frame = s->frames->pdata[i];
      g_autoptr(TocsinMessage) message = tocsin_message_new_from_data (frame, strlen (frame),
                                                                       NULL);

      n += message != NULL;
    }
  return n;
}

/* Echobell's first example, exactly. */
static void
test_echobell_get (Fixture       *f,
                   gconstpointer  data)
{
  g_autofree char *path = hook_with (f, "?server_name=Production&cpu_usage=95");
  g_autoptr(JsonObject) reply = request (f, "GET", path, NULL, NULL, NULL, 200);

  g_assert_cmpint (json_object_get_int_member (reply, "id"), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (reply, "title"), ==,
                   "Alerte serveur Production");
  g_assert_cmpstr (json_object_get_string_member (reply, "body"), ==,
                   "L'utilisation du CPU a atteint 95%");
  g_assert_false (json_object_has_member (reply, "externalLink"));
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (reply, "missing")), ==,
                    0);
}

/* Echobell's second example, with externalLink, as a subscriber replays it. */
static void
test_echobell_post_json (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(JsonObject) reply = NULL;
  g_autoptr(TocsinMessage) message = NULL;
  Subscriber s = { 0 };
  JsonNode *cpu;

  reply = request (f, "POST", f->hook, "application/json",
                   "{\n  \"server_name\": \"Production\",\n  \"cpu_usage\": 95,\n"
                   "  \"externalLink\": \"https://dashboard.example.com/alerts/123\"\n}",
                   NULL, 200);
  g_assert_cmpint (json_object_get_int_member (reply, "id"), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (reply, "title"), ==,
                   "Alerte serveur Production");
  g_assert_cmpstr (json_object_get_string_member (reply, "body"), ==,
                   "L'utilisation du CPU a atteint 95%");
  g_assert_cmpstr (json_object_get_string_member (reply, "externalLink"), ==,
                   "https://dashboard.example.com/alerts/123");

  subscriber_open (f, &s, "all");
  TOCSIN_WAIT_UNTIL (subscriber_count (&s) == 1);
  message = subscriber_message (&s, 0);
  g_assert_cmpint (message->id, ==, 1);
  g_assert_cmpint (message->channel, ==, json_object_get_int_member (f->channel, "id"));
  g_assert_cmpstr (message->title, ==, "Alerte serveur Production");
  g_assert_cmpstr (message->external_link, ==, "https://dashboard.example.com/alerts/123");
  g_assert_cmpint (message->replaces, ==, 0);
  /* Numbers stay numbers in vars. */
  cpu = json_object_get_member (message->vars, "cpu_usage");
  g_assert_nonnull (cpu);
  g_assert_cmpint (json_node_get_value_type (cpu), ==, G_TYPE_INT64);
  g_assert_cmpint (json_node_get_int (cpu), ==, 95);
  subscriber_close (&s);
}

static void
test_nested_json (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(JsonObject) reply = NULL;
  g_autoptr(TocsinMessage) message = NULL;
  Subscriber s = { 0 };
  JsonObject *host;

  subscriber_open (f, &s, NULL);
  reply = request (f, "POST", f->hook, "application/json",
                   "{\"server_name\":\"db1\",\"cpu_usage\":99.5,\"host\":{\"tags\":[\"a\",true]}}",
                   NULL, 200);
  TOCSIN_WAIT_UNTIL (subscriber_count (&s) == 1);
  message = subscriber_message (&s, 0);
  host = json_object_get_object_member (message->vars, "host");
  g_assert_nonnull (host);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (host, "tags")), ==, 2);
  g_assert_true (json_array_get_boolean_element (json_object_get_array_member (host, "tags"),
                                                 1));
  subscriber_close (&s);
}

/* Form and JSON bodies merge with the query; the body wins on a clash. */
static void
test_body_wins_over_query (Fixture       *f,
                           gconstpointer  data)
{
  g_autofree char *path = hook_with (f, "?server_name=Query&cpu_usage=10");
  g_autoptr(JsonObject) form = NULL, json = NULL, put = NULL;

  form = request (f, "POST", path, "application/x-www-form-urlencoded",
                  "server_name=Form+%C3%A9t%C3%A9", NULL, 200);
  g_assert_cmpstr (json_object_get_string_member (form, "title"), ==,
                   "Alerte serveur Form \xc3\xa9t\xc3\xa9");
  g_assert_cmpstr (json_object_get_string_member (form, "body"), ==,
                   "L'utilisation du CPU a atteint 10%");

  json = request (f, "POST", path, "application/json; charset=utf-8", "{\"cpu_usage\": 77}",
                  NULL, 200);
  g_assert_cmpstr (json_object_get_string_member (json, "title"), ==, "Alerte serveur Query");
  g_assert_cmpstr (json_object_get_string_member (json, "body"), ==,
                   "L'utilisation du CPU a atteint 77%");
  g_assert_cmpint (json_object_get_int_member (json, "id"), ==, 2);

  put = request (f, "PUT", path, "application/json", "{\"server_name\": \"Put\"}", NULL, 200);
  g_assert_cmpstr (json_object_get_string_member (put, "title"), ==, "Alerte serveur Put");
  g_assert_cmpint (json_object_get_int_member (put, "id"), ==, 3);
}

static void
setup_text (Fixture       *f,
            gconstpointer  data)
{
  f->relay = tocsin_test_relay_start (NULL, NULL);
  f->channel = tocsin_test_relay_create_channel (f->relay, "Text", "Log line",
                                                 "{{bodyAsText}}", NULL, NULL);
  f->hook = g_strdup_printf ("/t/%s", json_object_get_string_member (f->channel,
                                                                     "trigger_token"));
}

static void
test_text_plain (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(JsonObject) reply = request (f, "POST", f->hook, "text/plain",
                                         "disk /dev/sda1 is 97% full", NULL, 200);

  g_assert_cmpstr (json_object_get_string_member (reply, "title"), ==, "Log line");
  g_assert_cmpstr (json_object_get_string_member (reply, "body"), ==,
                   "disk /dev/sda1 is 97% full");
}

static void
test_missing (Fixture       *f,
              gconstpointer  data)
{
  g_autofree char *path = hook_with (f, "?unrelated=1");
  g_autoptr(JsonObject) reply = request (f, "GET", path, NULL, NULL, NULL, 200);
  JsonArray *missing = json_object_get_array_member (reply, "missing");

  g_assert_cmpstr (json_object_get_string_member (reply, "title"), ==, "Alerte serveur ");
  g_assert_cmpuint (json_array_get_length (missing), ==, 2);
  g_assert_true (array_has (missing, "server_name"));
  g_assert_true (array_has (missing, "cpu_usage"));
}

static void
assert_error (Fixture            *f,
              const char         *method,
              const char         *path,
              const char         *type,
              const char         *body,
              gssize              length,
              guint               expected)
{
  g_autoptr(GBytes) response = NULL;
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *object;
  guint status;

  status = tocsin_test_http (f->relay, method, path, type, body, length, NULL, &response,
                             &headers);
  g_assert_cmpuint (status, ==, expected);
  g_assert_true (g_str_has_prefix (soup_message_headers_get_content_type (headers, NULL),
                                   "application/json"));
  g_assert_true (json_parser_load_from_data (parser, g_bytes_get_data (response, NULL),
                                             g_bytes_get_size (response), &error));
  object = json_node_get_object (json_parser_get_root (parser));
  g_assert_nonnull (object);
  g_assert_cmpuint (strlen (json_object_get_string_member (object, "error")), >, 10);
  g_assert_false (json_object_has_member (object, "id"));
}

static void
test_errors (Fixture       *f,
             gconstpointer  data)
{
  g_autofree char *big = NULL;
  g_autofree char *bad_query = hook_with (f, "?server_name=%FF%FE");
  g_autofree char *ok_query = hook_with (f, "?server_name=ok");
  gsize big_length = 64 * 1024 + 1;
  g_autoptr(JsonObject) after = NULL;

  /* Unknown tokens: well-formed, garbage, and empty-looking. */
  assert_error (f, "GET", "/t/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, NULL, 0, 404);
  assert_error (f, "POST", "/t/nope", "application/json", "{}", -1, 404);

  assert_error (f, "POST", f->hook, "application/json", "{\"server_name\": ", -1, 400);
  assert_error (f, "POST", f->hook, "application/json", "42", -1, 400);
  assert_error (f, "POST", f->hook, "application/json", "\"just a string\"", -1, 400);
  assert_error (f, "POST", f->hook, "application/json", "{\"server_name\": \"\xff\xfe\"}", -1,
                400);
  assert_error (f, "POST", f->hook, "text/plain", "caf\xc3", -1, 400);
  assert_error (f, "POST", f->hook, "application/x-www-form-urlencoded", "a=%FF", -1, 400);
  assert_error (f, "GET", bad_query, NULL, NULL, 0, 400);

  big = g_malloc (big_length + 1);
  memset (big, 'a', big_length);
  big[big_length] = '\0';
  big[0] = '{';
  assert_error (f, "POST", f->hook, "application/json", big, big_length, 413);

  assert_error (f, "POST", f->hook, "application/xml", "<a/>", -1, 415);
  assert_error (f, "POST", f->hook, "application/json; charset=latin1", "{}", -1, 415);
  assert_error (f, "DELETE", f->hook, NULL, NULL, 0, 405);
  assert_error (f, "PATCH", f->hook, "application/json", "{}", -1, 405);

  /* None of it harmed the channel: the next good request is message 1. */
  after = request (f, "GET", ok_query, NULL, NULL, NULL, 200);
  g_assert_cmpint (json_object_get_int_member (after, "id"), ==, 1);
}

/* Issue #11: chained methods over a 64 KiB variable took 1.7 s per webhook on the relay's main
 * loop, and another channel's webhook waited. Now the hostile webhook gets a 422 with a sentence
 * for its channel's owner, and the next webhook, to another channel, is answered and delivered. */
static void
test_template_budget (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GString) body_template = g_string_new (NULL);
  g_autoptr(JsonObject) hostile = NULL;
  g_autoptr(JsonNode) answer = NULL;
  g_autoptr(JsonObject) other = NULL;
  g_autoptr(JsonObject) small = NULL;
  g_autofree char *hostile_hook = NULL;
  g_autofree char *x = g_strnfill (65500, 'x');
  g_autofree char *payload = NULL;
  g_autoptr(TocsinMessage) message = NULL;
  const char *sentence;
  Subscriber s;
  guint status = 0;

  while (body_template->len < 15 * 1024)
    g_string_append (body_template, "{{s.trim().toUpperCase().toLowerCase().trim().length}}");
  hostile = tocsin_test_relay_create_channel (f->relay, "Hostile", "Title", body_template->str,
                                              NULL, NULL);
  hostile_hook = g_strdup_printf ("/t/%s", json_object_get_string_member (hostile,
                                                                          "trigger_token"));
  subscriber_open (f, &s, NULL);

  payload = g_strdup_printf ("{\"s\": \"%s\"}", x);
  answer = tocsin_test_http_json (f->relay, "POST", hostile_hook, "application/json", payload,
                                  NULL, &status);
  g_assert_cmpuint (status, ==, 422);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (answer));
  sentence = json_object_get_string_member (json_node_get_object (answer), "error");
  g_assert_true (g_str_has_prefix (sentence, "The template did too much work: the body"));
  g_assert_nonnull (strstr (sentence, "simplify it"));

  /* Right after it, another channel's webhook is answered and delivered. */
  other = request (f, "POST", f->hook, "application/json",
                   "{\"server_name\": \"web-1\", \"cpu_usage\": 97}", NULL, 200);
  g_assert_cmpint (json_object_get_int_member (other, "id"), ==, 1);
  TOCSIN_WAIT_UNTIL (subscriber_count (&s) == 1);
  message = subscriber_message (&s, 0);
  g_assert_cmpstr (message->title, ==, "Alerte serveur web-1");

  /* The refused webhook stored nothing: the hostile channel's first message is still id 1. */
  small = request (f, "POST", hostile_hook, "application/json", "{\"s\": \"ab\"}", NULL, 200);
  g_assert_cmpint (json_object_get_int_member (small, "id"), ==, 1);
  subscriber_close (&s);
}

static const char *const rate_args[] = { "--rate=0.2", "--burst=2", NULL };

static void
test_rate_limit (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(JsonObject) other_channel = NULL;
  g_autofree char *other_hook = NULL;
  const char *retry;
  guint status;

  for (int i = 0; i < 2; i++)
    {
      g_clear_pointer (&headers, soup_message_headers_unref);
      status = tocsin_test_http (f->relay, "GET", f->hook, NULL, NULL, 0, NULL, NULL, &headers);
      g_assert_cmpuint (status, ==, 200);
      g_assert_nonnull (soup_message_headers_get_one (headers, "RateLimit-Policy"));
    }
  assert_error (f, "GET", f->hook, NULL, NULL, 0, 429);

  g_clear_pointer (&headers, soup_message_headers_unref);
  status = tocsin_test_http (f->relay, "GET", f->hook, NULL, NULL, 0, NULL, NULL, &headers);
  g_assert_cmpuint (status, ==, 429);
  retry = soup_message_headers_get_one (headers, "Retry-After");
  g_assert_nonnull (retry);
  g_assert_cmpint (atoi (retry), >=, 1);
  g_assert_cmpint (atoi (retry), <=, 5);
  g_assert_nonnull (strstr (soup_message_headers_get_one (headers, "RateLimit-Policy"), "q=2"));
  g_assert_nonnull (strstr (soup_message_headers_get_one (headers, "RateLimit"), "r=0"));

  /* Another channel has its own bucket. */
  other_channel = tocsin_test_relay_create_channel (f->relay, "Other", NULL, NULL, NULL, NULL);
  other_hook = g_strdup_printf ("/t/%s", json_object_get_string_member (other_channel,
                                                                        "trigger_token"));
  g_assert_cmpuint (tocsin_test_http (f->relay, "GET", other_hook, NULL, NULL, 0, NULL, NULL,
                                      NULL), ==, 200);
}

/* Same key and content: acknowledged with the original id, delivered to no one again.
 * Same key, new content: a new message that replaces the old one. */
static void
test_dedup (Fixture       *f,
            gconstpointer  data)
{
  const char *first = "{\"eventId\": \"evt-42\", \"server_name\": \"A\", \"cpu_usage\": 91}";
  const char *changed = "{\"eventId\": \"evt-42\", \"server_name\": \"A\", \"cpu_usage\": 99}";
  const char *const idem[] = { "Idempotency-Key", "order-7", NULL };
  const char *const whid[] = { "webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", NULL };
  g_autoptr(JsonObject) r1 = NULL, r2 = NULL, r3 = NULL, r4 = NULL, r5 = NULL, r6 = NULL;
  g_autoptr(JsonObject) r7 = NULL, sentinel = NULL;
  g_autoptr(TocsinMessage) m1 = NULL, m2 = NULL, m3 = NULL;
  Subscriber s = { 0 };

  subscriber_open (f, &s, NULL);

  r1 = request (f, "POST", f->hook, "application/json", first, NULL, 200);
  g_assert_cmpint (json_object_get_int_member (r1, "id"), ==, 1);
  TOCSIN_WAIT_UNTIL (subscriber_count (&s) == 1);

  r2 = request (f, "POST", f->hook, "application/json", first, NULL, 200);
  g_assert_cmpint (json_object_get_int_member (r2, "id"), ==, 1);
  g_assert_true (json_object_get_boolean_member (r2, "duplicate"));

  r3 = request (f, "POST", f->hook, "application/json", changed, NULL, 200);
  g_assert_cmpint (json_object_get_int_member (r3, "id"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (r3, "replaces"), ==, 1);

  /* The subscriber got 1, then 2 replacing 1, and nothing for the duplicate. */
  sentinel = request (f, "GET", f->hook, NULL, NULL, NULL, 200);
  g_assert_cmpint (json_object_get_int_member (sentinel, "id"), ==, 3);
  TOCSIN_WAIT_UNTIL (subscriber_count (&s) == 3);
  m1 = subscriber_message (&s, 0);
  m2 = subscriber_message (&s, 1);
  m3 = subscriber_message (&s, 2);
  g_assert_cmpint (m1->id, ==, 1);
  g_assert_cmpint (m2->id, ==, 2);
  g_assert_cmpint (m2->replaces, ==, 1);
  g_assert_cmpstr (m2->body, ==, "L'utilisation du CPU a atteint 99%");
  g_assert_cmpint (m3->id, ==, 3);

  /* The headers are keys too. */
  r4 = request (f, "GET", f->hook, NULL, NULL, idem, 200);
  r5 = request (f, "GET", f->hook, NULL, NULL, idem, 200);
  g_assert_cmpint (json_object_get_int_member (r4, "id"), ==, 4);
  g_assert_cmpint (json_object_get_int_member (r5, "id"), ==, 4);
  g_assert_true (json_object_get_boolean_member (r5, "duplicate"));
  r6 = request (f, "GET", f->hook, NULL, NULL, whid, 200);
  r7 = request (f, "GET", f->hook, NULL, NULL, whid, 200);
  g_assert_cmpint (json_object_get_int_member (r6, "id"), ==, 5);
  g_assert_cmpint (json_object_get_int_member (r7, "id"), ==, 5);
  subscriber_close (&s);
}

static void
setup_condition (Fixture       *f,
                 gconstpointer  data)
{
  setup_with (f, NULL, NULL, "cpu_usage > 90");
}

static void
test_condition (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(JsonObject) low = NULL, high = NULL;
  Subscriber s = { 0 };

  subscriber_open (f, &s, NULL);
  low = request (f, "POST", f->hook, "application/json",
                 "{\"server_name\": \"web\", \"cpu_usage\": 50}", NULL, 200);
  g_assert_true (json_object_get_boolean_member (low, "filtered"));
  g_assert_false (json_object_has_member (low, "id"));

  high = request (f, "POST", f->hook, "application/json",
                  "{\"server_name\": \"web\", \"cpu_usage\": 95}", NULL, 200);
  g_assert_false (json_object_has_member (high, "filtered"));
  /* The filtered one took no id. */
  g_assert_cmpint (json_object_get_int_member (high, "id"), ==, 1);
  TOCSIN_WAIT_UNTIL (subscriber_count (&s) == 1);
  subscriber_close (&s);
}

static void
test_rotation (Fixture       *f,
               gconstpointer  data)
{
  g_autofree char *out = NULL, *err = NULL, *id = NULL, *new_hook = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *rotated;
  int status;

  g_assert_cmpuint (tocsin_test_http (f->relay, "GET", f->hook, NULL, NULL, 0, NULL, NULL, NULL),
                    ==, 200);

  /* Rotated from another process while the server runs. */
  id = g_strdup_printf ("%" G_GINT64_FORMAT, json_object_get_int_member (f->channel, "id"));
  status = tocsin_test_relay_cli (f->relay, &out, &err, "channel", "rotate-trigger", id,
                                  "--json", NULL);
  g_assert_cmpint (status, ==, 0);
  g_assert_true (json_parser_load_from_data (parser, out, -1, NULL));
  rotated = json_node_get_object (json_parser_get_root (parser));
  new_hook = g_strdup_printf ("/t/%s", json_object_get_string_member (rotated, "trigger_token"));
  g_assert_cmpstr (new_hook, !=, f->hook);

  assert_error (f, "GET", f->hook, NULL, NULL, 0, 404);
  g_assert_cmpuint (tocsin_test_http (f->relay, "GET", new_hook, NULL, NULL, 0, NULL, NULL, NULL),
                    ==, 200);
}

static void
test_hostile_links (Fixture       *f,
                    gconstpointer  data)
{
  static const char *const links[] = {
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "file:///etc/passwd",
    "tocsin://subscribe?url=http://evil.example",
    "https://user:pass@evil.example/",
    "https://evil.example/a b",
    "//evil.example/no-scheme",
  };
  Subscriber s = { 0 };

  subscriber_open (f, &s, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (links); i++)
    {
      g_autoptr(JsonObject) body = json_object_new ();
      g_autoptr(JsonNode) node = json_node_new (JSON_NODE_OBJECT);
      g_autofree char *text = NULL;
      g_autoptr(JsonObject) reply = NULL;

      json_object_set_string_member (body, "server_name", "x");
      json_object_set_string_member (body, "externalLink", links[i]);
      json_node_set_object (node, body);
      text = json_to_string (node, FALSE);
      reply = request (f, "POST", f->hook, "application/json", text, NULL, 200);
      g_assert_false (json_object_has_member (reply, "externalLink"));
      g_assert_true (json_object_has_member (reply, "linkDropped"));
    }
  TOCSIN_WAIT_UNTIL (subscriber_count (&s) == G_N_ELEMENTS (links));
  for (guint i = 0; i < G_N_ELEMENTS (links); i++)
    {
      g_autoptr(TocsinMessage) message = subscriber_message (&s, i);

      g_assert_null (message->external_link);
    }
  subscriber_close (&s);
}

static void
setup_link_template (Fixture       *f,
                     gconstpointer  data)
{
  setup_with (f, NULL, "{{scheme}}://dashboard.example.com/{{server_name}}", NULL);
}

static void
test_link_template (Fixture       *f,
                    gconstpointer  data)
{
  g_autofree char *good = hook_with (f, "?scheme=https&server_name=db1");
  g_autofree char *bad = hook_with (f, "?scheme=javascript&server_name=db1");
  g_autoptr(JsonObject) ok = request (f, "GET", good, NULL, NULL, NULL, 200);
  g_autoptr(JsonObject) refused = request (f, "GET", bad, NULL, NULL, NULL, 200);

  g_assert_cmpstr (json_object_get_string_member (ok, "externalLink"), ==,
                   "https://dashboard.example.com/db1");
  g_assert_false (json_object_has_member (refused, "externalLink"));
  g_assert_true (json_object_has_member (refused, "linkDropped"));
}

/* Markup in variables is text: kept byte for byte, escaped by whoever renders it. */
static void
test_markup_kept (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(JsonObject) reply = NULL;
  g_autoptr(TocsinMessage) message = NULL;
  Subscriber s = { 0 };

  subscriber_open (f, &s, NULL);
  reply = request (f, "POST", f->hook, "application/json",
                   "{\"server_name\": \"<b>db</b> &amp; <script>x</script>\", "
                   "\"cpu_usage\": \"<i>9</i>\"}", NULL, 200);
  g_assert_cmpstr (json_object_get_string_member (reply, "title"), ==,
                   "Alerte serveur <b>db</b> &amp; <script>x</script>");
  TOCSIN_WAIT_UNTIL (subscriber_count (&s) == 1);
  message = subscriber_message (&s, 0);
  g_assert_cmpstr (message->body, ==, "L'utilisation du CPU a atteint <i>9</i>%");
  g_assert_cmpstr (json_object_get_string_member (message->vars, "server_name"), ==,
                   "<b>db</b> &amp; <script>x</script>");
  subscriber_close (&s);
}

/* Acknowledged means stored: a kill -9 right after the 200 loses nothing. */
static void
test_kill_after_ack (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(JsonObject) reply = NULL;
  g_autoptr(TocsinMessage) message = NULL;
  Subscriber s = { 0 };

  reply = request (f, "POST", f->hook, "application/json",
                   "{\"server_name\": \"Production\", \"cpu_usage\": 95}", NULL, 200);
  tocsin_test_relay_stop (f->relay, TRUE);
  tocsin_test_relay_restart (f->relay);

  subscriber_open (f, &s, "0");
  TOCSIN_WAIT_UNTIL (subscriber_count (&s) == 1);
  message = subscriber_message (&s, 0);
  g_assert_cmpint (message->id, ==, json_object_get_int_member (reply, "id"));
  g_assert_cmpstr (message->title, ==, "Alerte serveur Production");
  subscriber_close (&s);
}

static guint
mode_of (const char *dir,
         const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  struct stat st;

  g_assert_cmpint (g_stat (path, &st), ==, 0);
  return st.st_mode & 0777;
}

static void
test_file_modes (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(JsonObject) reply = request (f, "GET", f->hook, NULL, NULL, NULL, 200);

  g_assert_cmpuint (mode_of (f->relay->data_dir, "."), ==, 0700);
  g_assert_cmpuint (mode_of (f->relay->data_dir, "relay.db"), ==, 0600);
  g_assert_cmpuint (mode_of (f->relay->data_dir, "relay.db-wal"), ==, 0600);
}

/* Numbers json-glib cannot keep (past DBL_MAX: `inf`; past G_MAXINT64: wrapped) are refused
 * with a sentence naming the variable; numbers at the very edges go through exactly. */
static void
test_big_numbers (Fixture       *f,
                  gconstpointer  data)
{
  static const struct { const char *body; const char *variable; } refused[] = {
    { "{\"n\": 1e999}", "n" },
    { "{\"server_name\": \"x:1e999\", \"cpu\": -1E+999}", "cpu" },
    { "{\"n\": 123456789012345678901234567890}", "n" },
    { "{\"n\": 9223372036854775808}", "n" },
    { "{\"n\": 18446744073709551615}", "n" },
    { "{\"n\": -9223372036854775809}", "n" },
    { "{\"deep\": {\"a\": [1, 2.5e400]}}", "deep" },
  };
  g_autoptr(JsonObject) reply = NULL;
  g_autoptr(TocsinMessage) message = NULL;
  Subscriber s = { 0 };
  JsonNode *node;

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr(JsonObject) error = request (f, "POST", f->hook, "application/json",
                                             refused[i].body, NULL, 400);
      g_autofree char *quoted = g_strdup_printf ("“%s”", refused[i].variable);
      const char *sentence = json_object_get_string_member (error, "error");

      g_test_message ("%s → %s", refused[i].body, sentence);
      g_assert_nonnull (strstr (sentence, quoted));
      g_assert_nonnull (strstr (sentence, "string"));
    }

  reply = request (f, "POST", f->hook, "application/json",
                   "{\"server_name\": \"Edge\", \"max\": 9223372036854775807,"
                   " \"min\": -9223372036854775808, \"big\": 1.5e300, \"tiny\": 1e-400,"
                   " \"text\": \"1e999\"}", NULL, 200);
  /* Nothing refused was stored. */
  g_assert_cmpint (json_object_get_int_member (reply, "id"), ==, 1);

  subscriber_open (f, &s, "all");
  TOCSIN_WAIT_UNTIL (subscriber_count (&s) == 1);
  message = subscriber_message (&s, 0);
  g_assert_nonnull (message);
  g_assert_cmpint (json_object_get_int_member (message->vars, "max"), ==, G_MAXINT64);
  g_assert_cmpint (json_object_get_int_member (message->vars, "min"), ==, G_MININT64);
  node = json_object_get_member (message->vars, "big");
  g_assert_cmpfloat (json_node_get_double (node), ==, 1.5e300);
  g_assert_cmpstr (json_object_get_string_member (message->vars, "text"), ==, "1e999");
  subscriber_close (&s);
}

/* A \u escape that names no character (a lone surrogate) is refused with a sentence that names
 * the variable and is itself valid UTF-8; nothing is stored. */
static void
test_lone_surrogate (Fixture       *f,
                     gconstpointer  data)
{
  const char *bodies[] = {
    "{\"title\": \"x\\ud800y\"}",
    "{\"list\": [\"ok\", {\"deep\": \"a\\ud800b\"}]}",
  };
  g_autoptr(JsonObject) reply = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      g_autoptr(JsonObject) error = request (f, "POST", f->hook, "application/json", bodies[i],
                                             NULL, 400);
      const char *sentence = json_object_get_string_member (error, "error");

      g_test_message ("%s → %s", bodies[i], sentence);
      g_assert_true (g_utf8_validate (sentence, -1, NULL));
      g_assert_nonnull (strstr (sentence, i == 0 ? "“title”" : "“list”"));
    }
  /* A proper pair is a character, and goes through. */
  reply = request (f, "POST", f->hook, "application/json",
                   "{\"server_name\": \"\\ud83d\\udd14\"}", NULL, 200);
  g_assert_cmpint (json_object_get_int_member (reply, "id"), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (reply, "title"), ==,
                   "Alerte serveur \xf0\x9f\x94\x94");
}

/* Sends @body (@length bytes; -1: a string) with extra @headers and returns the answer's JSON
 * object, asserting @expected and, for an error, a sentence containing @words. */
static JsonObject *
send_raw (Fixture            *f,
          const char         *method,
          const char         *path,
          const char         *type,
          const char         *body,
          gssize              length,
          const char * const *headers,
          guint               expected,
          const char         *words)
{
  g_autoptr(GBytes) response = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *object;
  guint status;

  status = tocsin_test_http (f->relay, method, path, type, body, length, headers, &response,
                             NULL);
  g_assert_nonnull (response);
  g_assert_true (json_parser_load_from_data (parser, g_bytes_get_data (response, NULL),
                                             g_bytes_get_size (response), &error));
  g_assert_no_error (error);
  object = json_node_get_object (json_parser_get_root (parser));
  g_assert_nonnull (object);
  if (expected != 200 || json_object_has_member (object, "error"))
    g_test_message ("%s %s → %u %s", method, path, status,
                    json_object_has_member (object, "error")
                      ? json_object_get_string_member (object, "error") : "");
  g_assert_cmpuint (status, ==, expected);
  if (expected >= 400)
    {
      const char *sentence = json_object_get_string_member (object, "error");

      g_assert_true (g_utf8_validate (sentence, -1, NULL));
      g_assert_cmpuint (strlen (sentence), >, 10);
      if (words != NULL)
        g_assert_nonnull (strstr (sentence, words));
    }
  return json_object_ref (object);
}

/* #11.14: the query and a form body decode as a browser's URLSearchParams does. */
static void
test_query_decoding (Fixture       *f,
                     gconstpointer  data)
{
  static const struct
  {
    const char *query;
    const char *title;   /* "Alerte serveur {{server_name}}" */
    const char *body;    /* "L'utilisation du CPU a atteint {{cpu_usage}}%" */
    gboolean    in_url;  /* FALSE: an invalid %-escape, which a URL cannot carry (400) */
  } cases[] = {
    { "?server_name=100%&cpu_usage=1", "Alerte serveur 100%", NULL, FALSE },
    { "?server_name=%zz&cpu_usage=%4", "Alerte serveur %zz", "L'utilisation du CPU a atteint %4%",
      FALSE },
    { "?server_name&cpu_usage=7", "Alerte serveur ", "L'utilisation du CPU a atteint 7%", TRUE },
    { "?cpu_usage=1&&server_name=b", "Alerte serveur b", NULL, TRUE },
    { "?server_name=a+b%20c%2B&cpu_usage=1&", "Alerte serveur a b c+", NULL, TRUE },
    { "?&&server_name=%C3%A9t%C3%A9&cpu_usage=%", "Alerte serveur été",
      "L'utilisation du CPU a atteint %%", FALSE },
    { "?server_name=&cpu_usage==5", "Alerte serveur ", "L'utilisation du CPU a atteint =5%", TRUE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = hook_with (f, cases[i].query);
      g_autoptr(JsonObject) posted = NULL;

      if (cases[i].in_url)
        {
          g_autoptr(JsonObject) reply = send_raw (f, "GET", path, NULL, NULL, 0, NULL, 200,
                                                  NULL);

          g_assert_cmpstr (json_object_get_string_member (reply, "title"), ==, cases[i].title);
          if (cases[i].body)
            g_assert_cmpstr (json_object_get_string_member (reply, "body"), ==, cases[i].body);
          /* A bare key is a variable (the empty string), not a missing one. */
          g_assert_false (array_has (json_object_get_array_member (reply, "missing"),
                                     "server_name"));
        }
      else
        {
          /* libsoup cannot parse such a request line; the relay says how to write it. */
          g_autoptr(JsonObject) reply = send_raw (f, "GET", path, NULL, NULL, 0, NULL, 400,
                                                  "%25");
        }

      /* The same pairs as a form body. */
      posted = send_raw (f, "POST", f->hook, "application/x-www-form-urlencoded",
                         cases[i].query + 1, -1, NULL, 200, NULL);
      g_assert_cmpstr (json_object_get_string_member (posted, "title"), ==, cases[i].title);
      if (cases[i].body)
        g_assert_cmpstr (json_object_get_string_member (posted, "body"), ==, cases[i].body);
      g_assert_false (array_has (json_object_get_array_member (posted, "missing"),
                                 "server_name"));
    }

  /* What is still refused says why, as JSON. */
  {
    g_autofree char *bad_utf8 = hook_with (f, "?server_name=%FF");
    g_autofree char *nul = hook_with (f, "?server_name=a%00b");
    g_autoptr(JsonObject) r1 = send_raw (f, "GET", bad_utf8, NULL, NULL, 0, NULL, 400,
                                         "“server_name”");
    g_autoptr(JsonObject) r2 = send_raw (f, "GET", nul, NULL, NULL, 0, NULL, 400, "NUL");
    g_autoptr(JsonObject) r3 = send_raw (f, "POST", f->hook, "application/x-www-form-urlencoded",
                                         "a=%C3", -1, NULL, 400, "UTF-8");
  }
}

static GBytes *
compress (GZlibCompressorFormat  format,
          const char            *data,
          gsize                  length)
{
  g_autoptr(GZlibCompressor) compressor = g_zlib_compressor_new (format, 9);
  g_autoptr(GInputStream) source = g_memory_input_stream_new_from_data (data, length, NULL);
  g_autoptr(GInputStream) stream = g_converter_input_stream_new (source,
                                                                 G_CONVERTER (compressor));
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr(GError) error = NULL;

  g_output_stream_splice (out, stream, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error);
  g_assert_no_error (error);
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

/* #11.14: gzip and deflate bodies are decoded, within max-body counted after decompression;
 * other codings get 415 with a sentence. */
static void
test_encodings (Fixture       *f,
                gconstpointer  data)
{
  static const char json[] = "{\"server_name\": \"gz\", \"cpu_usage\": 91}";
  static const struct
  {
    const char            *coding;
    GZlibCompressorFormat  format;
  } good[] = {
    { "gzip", G_ZLIB_COMPRESSOR_FORMAT_GZIP },
    { "x-gzip", G_ZLIB_COMPRESSOR_FORMAT_GZIP },
    { "deflate", G_ZLIB_COMPRESSOR_FORMAT_ZLIB },
    { "deflate", G_ZLIB_COMPRESSOR_FORMAT_RAW },   /* what some senders mean by it */
    { "identity, GZIP", G_ZLIB_COMPRESSOR_FORMAT_GZIP },
  };
  g_autoptr(GString) bomb = g_string_new ("{\"server_name\": \"");
  g_autoptr(GBytes) packed = NULL;
  g_autoptr(JsonObject) refused = NULL;
  g_autoptr(JsonObject) after = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(GBytes) body = compress (good[i].format, json, strlen (json));
      const char *headers[] = { "Content-Encoding", good[i].coding, NULL };
      g_autoptr(JsonObject) reply = NULL;

      reply = send_raw (f, "POST", f->hook, "application/json",
                        g_bytes_get_data (body, NULL), g_bytes_get_size (body), headers, 200,
                        NULL);
      g_assert_cmpstr (json_object_get_string_member (reply, "title"), ==, "Alerte serveur gz");
      g_assert_cmpstr (json_object_get_string_member (reply, "body"), ==,
                       "L'utilisation du CPU a atteint 91%");
    }

  /* Codings the relay does not decode, and two at once. */
  {
    const char *br[] = { "Content-Encoding", "br", NULL };
    const char *zstd[] = { "Content-Encoding", "zstd", NULL };
    const char *twice[] = { "Content-Encoding", "gzip, gzip", NULL };
    g_autoptr(JsonObject) r1 = send_raw (f, "POST", f->hook, "application/json", json, -1, br,
                                         415, "gzip");
    g_autoptr(JsonObject) r2 = send_raw (f, "POST", f->hook, "application/json", json, -1, zstd,
                                         415, "Content-Encoding");
    g_autoptr(JsonObject) r3 = send_raw (f, "POST", f->hook, "application/json", json, -1, twice,
                                         415, "Content-Encoding");
  }

  /* Not gzip at all, and a gzip stream cut short. */
  {
    const char *gzip[] = { "Content-Encoding", "gzip", NULL };
    g_autoptr(GBytes) body = compress (G_ZLIB_COMPRESSOR_FORMAT_GZIP, json, strlen (json));
    g_autoptr(JsonObject) r1 = send_raw (f, "POST", f->hook, "application/json", json, -1, gzip,
                                         400, "decompress");
    g_autoptr(JsonObject) r2 = send_raw (f, "POST", f->hook, "application/json",
                                         g_bytes_get_data (body, NULL),
                                         g_bytes_get_size (body) - 6, gzip, 400, "compressed");
  }

  /* A zip bomb: 50 MB of JSON in about 50 KB, under max-body as sent; 413 once inflated past
   * max-body (64 KiB), and the relay goes on. */
  {
    const char *gzip[] = { "Content-Encoding", "gzip", NULL };

    for (guint i = 0; i < 50 * 1000 * 1000 / 64; i++)
      g_string_append (bomb, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    g_string_append (bomb, "\"}");
    packed = compress (G_ZLIB_COMPRESSOR_FORMAT_GZIP, bomb->str, bomb->len);
    g_assert_cmpuint (g_bytes_get_size (packed), <, 64 * 1024);
    refused = send_raw (f, "POST", f->hook, "application/json", g_bytes_get_data (packed, NULL),
                        g_bytes_get_size (packed), gzip, 413, "after decompression");
  }

  after = send_raw (f, "POST", f->hook, "application/json", json, -1, NULL, 200, NULL);
  g_assert_cmpint (json_object_get_int_member (after, "id"), ==, G_N_ELEMENTS (good) + 1);
}

/* #11.2: a body whose variable holds raw control characters was answered 200, stored as
 * 1.18 MB once escaped, and then closed every subscriber with 4008 on every reconnect. Now it
 * is a 400 naming the variable; a message just under the relay's bound is delivered to a
 * subscriber with the default max-queue-bytes, and later messages arrive. */
static void
test_control_characters (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GString) poison = g_string_new ("{\"cpu_usage\": 1, \"server_name\": \"");
  g_autoptr(GString) big = g_string_new ("cpu_usage=1&server_name=");
  g_autoptr(JsonObject) refused = NULL;
  g_autoptr(JsonObject) first = NULL;
  g_autoptr(JsonObject) later = NULL;
  g_autoptr(TocsinMessage) received = NULL;
  g_autoptr(TocsinMessage) received_later = NULL;
  Subscriber s = { 0 };

  subscriber_open (f, &s, NULL);
  /* As the app reads (tocsin-connection.c): libsoup's default of 128 KiB is a client's limit,
   * not the relay's. */
  soup_websocket_connection_set_max_incoming_payload_size (s.ws, 4 * 1024 * 1024);

  while (poison->len < 64 * 1024 - 16)
    g_string_append_c (poison, (char) (1 + poison->len % 31));
  g_string_append (poison, "\"}");
  refused = send_raw (f, "POST", f->hook, "application/json", poison->str, poison->len, NULL,
                      400, "“server_name”");

  /* 20,000 control characters as %01: 60 KB sent, about 120 KB in `vars` and as much again in
   * the title, once escaped (\u0001): just under the 256 KiB bound. */
  for (guint i = 0; i < 20000; i++)
    g_string_append (big, "%01");
  first = send_raw (f, "POST", f->hook, "application/x-www-form-urlencoded", big->str, big->len,
                    NULL, 200, NULL);
  later = send_raw (f, "GET", f->hook, NULL, NULL, 0, NULL, 200, NULL);
  g_assert_cmpint (json_object_get_int_member (later, "id"), ==,
                   json_object_get_int_member (first, "id") + 1);

  TOCSIN_WAIT_UNTIL (subscriber_count (&s) >= 2 ||
                     soup_websocket_connection_get_state (s.ws) != SOUP_WEBSOCKET_STATE_OPEN);
  g_assert_cmpint (soup_websocket_connection_get_state (s.ws), ==, SOUP_WEBSOCKET_STATE_OPEN);
  received = subscriber_message (&s, 0);
  received_later = subscriber_message (&s, 1);
  g_assert_nonnull (received);
  g_assert_nonnull (received_later);
  g_assert_cmpint (received->id, ==, json_object_get_int_member (first, "id"));
  g_assert_cmpuint (strlen (json_object_get_string_member (received->vars, "server_name")), ==,
                    20000);
  g_assert_cmpint (received_later->id, ==, json_object_get_int_member (later, "id"));
  subscriber_close (&s);
}

/* #11.2: whatever the templates and escapes make of a body, a message larger than a subscriber
 * can take is refused (413, with a sentence) before it is stored. */
static const char *const big_body_args[] = { "--max-body=1M", NULL };

static void
test_message_bound (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GString) big = g_string_new ("cpu_usage=1&server_name=");
  g_autoptr(JsonObject) refused = NULL;
  g_autoptr(JsonObject) after = NULL;

  for (guint i = 0; i < 50000; i++)
    g_string_append (big, "%01");
  refused = send_raw (f, "POST", f->hook, "application/x-www-form-urlencoded", big->str,
                      big->len, NULL, 413, "more than this relay delivers");
  after = send_raw (f, "GET", f->hook, NULL, NULL, 0, NULL, 200, NULL);
  g_assert_cmpint (json_object_get_int_member (after, "id"), ==, 1);
}

/* ---- #13.6: the shapes real senders use ---- */

static char *
sender_hook (Fixture    *f,
             const char *name,
             const char *title,
             const char *body,
             const char *link)
{
  g_autoptr(JsonObject) channel = tocsin_test_relay_create_channel (f->relay, name, title, body,
                                                                    link, NULL);

  return g_strdup_printf ("/t/%s", json_object_get_string_member (channel, "trigger_token"));
}

/* GitHub's "application/x-www-form-urlencoded" content type: the JSON delivery in payload=.
 * The same channel renders it as it renders the application/json delivery. */
#define GITHUB_ISSUES \
  "{\"action\":\"opened\",\"issue\":{\"number\":42,\"title\":\"Crash on start\"," \
  "\"html_url\":\"https://github.com/octo/hello/issues/42\",\"user\":{\"login\":\"octocat\"}}," \
  "\"repository\":{\"full_name\":\"octo/hello\"},\"sender\":{\"login\":\"octocat\"}}"

static void
test_github_form (Fixture       *f,
                  gconstpointer  data)
{
  g_autofree char *hook = sender_hook (f, "GitHub",
                                       "{{repository.full_name}}: issue #{{issue.number}} "
                                       "{{action}}",
                                       "{{issue.title}} by {{sender.login}} "
                                       "({{header[\"x-github-event\"]}})",
                                       "{{issue.html_url}}");
  g_autofree char *escaped = g_uri_escape_string (GITHUB_ISSUES, NULL, FALSE);
  g_autofree char *form = g_strconcat ("payload=", escaped, NULL);
  const char *const headers[] = { "X-GitHub-Event", "issues",
                                  "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958",
                                  "User-Agent", "GitHub-Hookshot/044aadd", NULL };
  const char *types[] = { "application/x-www-form-urlencoded", "application/json" };
  const char *bodies[] = { form, GITHUB_ISSUES };

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    {
      g_autoptr(JsonObject) reply = request (f, "POST", hook, types[i], bodies[i], headers, 200);

      g_assert_cmpstr (json_object_get_string_member (reply, "title"), ==,
                       "octo/hello: issue #42 opened");
      g_assert_cmpstr (json_object_get_string_member (reply, "body"), ==,
                       "Crash on start by octocat (issues)");
      g_assert_cmpstr (json_object_get_string_member (reply, "externalLink"), ==,
                       "https://github.com/octo/hello/issues/42");
      g_assert_cmpuint (json_array_get_length (json_object_get_array_member (reply, "missing")),
                        ==, 0);
    }
}

/* Uptime Kuma's webhook in its "multipart/form-data" mode: form-data (the npm module) with one
 * part, "data", holding JSON.stringify({heartbeat, monitor, msg}). A subscriber gets it. */
#define KUMA_BOUNDARY "--------------------------515890814546601021194782"
#define KUMA_DATA \
  "{\"heartbeat\":{\"monitorID\":1,\"status\":0,\"time\":\"2026-12-06 16:40:00.123\"," \
  "\"msg\":\"connect ECONNREFUSED 127.0.0.1:8443\",\"important\":true,\"duration\":60}," \
  "\"monitor\":{\"id\":1,\"name\":\"Web shop\",\"url\":\"https://shop.example.com\"," \
  "\"type\":\"http\"},\"msg\":\"[Web shop] [\xf0\x9f\x94\xb4 Down] connect ECONNREFUSED " \
  "127.0.0.1:8443\"}"

static void
test_uptime_kuma_multipart (Fixture       *f,
                            gconstpointer  data)
{
  g_autofree char *hook = sender_hook (f, "Uptime Kuma",
                                       "{{monitor.name}} is "
                                       "{{heartbeat.status == 1 ? 'up' : 'down'}}",
                                       "{{heartbeat.msg}}", "{{monitor.url}}");
  const char *body = "--" KUMA_BOUNDARY "\r\n"
                     "Content-Disposition: form-data; name=\"data\"\r\n\r\n"
                     KUMA_DATA "\r\n--" KUMA_BOUNDARY "--\r\n";
  const char *const headers[] = { "User-Agent", "Uptime-Kuma/1.23.16", NULL };
  g_autoptr(JsonObject) reply = request (f, "POST", hook,
                                         "multipart/form-data; boundary=" KUMA_BOUNDARY, body,
                                         headers, 200);
  g_autoptr(JsonObject) fields = NULL;

  g_assert_cmpstr (json_object_get_string_member (reply, "title"), ==, "Web shop is down");
  g_assert_cmpstr (json_object_get_string_member (reply, "body"), ==,
                   "connect ECONNREFUSED 127.0.0.1:8443");
  g_assert_cmpstr (json_object_get_string_member (reply, "externalLink"), ==,
                   "https://shop.example.com");

  /* curl -F title=Backup -F message=done: a multipart form of text fields. */
  g_free (hook);
  hook = sender_hook (f, "curl -F", "{{title}}", "{{message}}", NULL);
  fields = request (f, "POST", hook, "multipart/form-data; boundary=------------------------x1",
                    "--------------------------x1\r\n"
                    "Content-Disposition: form-data; name=\"title\"\r\n\r\nBackup\r\n"
                    "--------------------------x1\r\n"
                    "Content-Disposition: form-data; name=\"message\"\r\n\r\n"
                    "done in 3 s\r\n--------------------------x1--\r\n", NULL, 200);
  g_assert_cmpstr (json_object_get_string_member (fields, "title"), ==, "Backup");
  g_assert_cmpstr (json_object_get_string_member (fields, "body"), ==, "done in 3 s");

  /* What cannot be a variable is refused with a sentence, and nothing is stored. */
  send_raw (f, "POST", hook, "multipart/form-data", "--x\r\n\r\n\r\n--x--\r\n", -1, NULL, 400,
            "boundary");
  send_raw (f, "POST", hook, "multipart/form-data; boundary=x",
            "--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.png\"\r\n\r\n"
            "\x89PNG\r\n--x--\r\n", -1, NULL, 400, "not UTF-8 text");
}

/* Home Assistant's rest_command without content_type: aiohttp sends the rendered payload as
 * text/plain; charset=utf-8. A JSON object there gives its variables, and bodyAsText stays. */
static void
test_home_assistant_text_json (Fixture       *f,
                               gconstpointer  data)
{
  g_autofree char *hook = sender_hook (f, "Home Assistant", "{{title}}",
                                       "{{message}} | {{bodyAsText}}", NULL);
  const char *payload = "{\"title\": \"Front door\", \"message\": \"Opened at 16:40\"}";
  const char *const headers[] = { "User-Agent", "HomeAssistant/2024.12.0 aiohttp/3.11.9 "
                                                "Python/3.13", NULL };
  g_autoptr(JsonObject) reply = request (f, "POST", hook, "text/plain; charset=utf-8", payload,
                                         headers, 200);
  g_autoptr(JsonObject) plain = NULL;
  g_autofree char *expected = g_strconcat ("Opened at 16:40 | ", payload, NULL);

  g_assert_cmpstr (json_object_get_string_member (reply, "title"), ==, "Front door");
  g_assert_cmpstr (json_object_get_string_member (reply, "body"), ==, expected);

  /* Text that only starts like JSON is text. */
  plain = request (f, "POST", hook, "text/plain", "{disk} is full", NULL, 200);
  g_assert_cmpstr (json_object_get_string_member (plain, "body"), ==, " | {disk} is full");
}

/* A top-level JSON array, as Prometheus posts alerts to an Alertmanager (/api/v2/alerts): the
 * variable `body`. */
static void
test_top_level_array (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(JsonObject) reply = NULL;
  g_autoptr(TocsinMessage) message = NULL;
  Subscriber s = { 0 };
  JsonNode *body;

  /* This channel is the fixture's, so that the subscriber reads it. */
  g_clear_pointer (&f->channel, json_object_unref);
  g_free (f->hook);
  f->channel = tocsin_test_relay_create_channel (f->relay, "Alerts",
                                                 "{{body.length}} alert(s): "
                                                 "{{body[0].labels.alertname}}",
                                                 "{{body[0].annotations.summary}} on "
                                                 "{{body[0].labels.instance}}", NULL, NULL);
  f->hook = g_strdup_printf ("/t/%s", json_object_get_string_member (f->channel,
                                                                     "trigger_token"));
  reply = request (f, "POST", f->hook, "application/json",
                   "[{\"labels\":{\"alertname\":\"DiskFull\",\"instance\":\"db1:9100\"},"
                   "\"annotations\":{\"summary\":\"Disk 91% full\"},"
                   "\"startsAt\":\"2026-12-06T16:40:00Z\","
                   "\"generatorURL\":\"http://prometheus.example.com/graph?g0.expr=disk\"}]",
                   NULL, 200);
  g_assert_cmpstr (json_object_get_string_member (reply, "title"), ==, "1 alert(s): DiskFull");
  g_assert_cmpstr (json_object_get_string_member (reply, "body"), ==,
                   "Disk 91% full on db1:9100");

  subscriber_open (f, &s, "all");
  TOCSIN_WAIT_UNTIL (subscriber_count (&s) == 1);
  message = subscriber_message (&s, 0);
  g_assert_cmpstr (message->title, ==, "1 alert(s): DiskFull");
  body = json_object_get_member (message->vars, "body");
  g_assert_nonnull (body);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (body));
  g_assert_cmpuint (json_array_get_length (json_node_get_array (body)), ==, 1);
  subscriber_close (&s);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, setup, args, func) \
  g_test_add (path, Fixture, args, setup, func, fixture_teardown)
  ADD ("/relay/ingest/echobell-get", fixture_setup, NULL, test_echobell_get);
  ADD ("/relay/ingest/echobell-post-json", fixture_setup, NULL, test_echobell_post_json);
  ADD ("/relay/ingest/nested-json", fixture_setup, NULL, test_nested_json);
  ADD ("/relay/ingest/body-wins-over-query", fixture_setup, NULL, test_body_wins_over_query);
  ADD ("/relay/ingest/text-plain", setup_text, NULL, test_text_plain);
  ADD ("/relay/ingest/missing", fixture_setup, NULL, test_missing);
  ADD ("/relay/ingest/errors", fixture_setup, NULL, test_errors);
  ADD ("/relay/ingest/big-numbers", fixture_setup, NULL, test_big_numbers);
  ADD ("/relay/ingest/lone-surrogate", fixture_setup, NULL, test_lone_surrogate);
  ADD ("/relay/ingest/rate-limit", fixture_setup, rate_args, test_rate_limit);
  ADD ("/relay/ingest/dedup", fixture_setup, NULL, test_dedup);
  ADD ("/relay/ingest/condition", setup_condition, NULL, test_condition);
  ADD ("/relay/ingest/rotation", fixture_setup, NULL, test_rotation);
  ADD ("/relay/ingest/hostile-links", fixture_setup, NULL, test_hostile_links);
  ADD ("/relay/ingest/link-template", setup_link_template, NULL, test_link_template);
  ADD ("/relay/ingest/markup-kept", fixture_setup, NULL, test_markup_kept);
  ADD ("/relay/ingest/kill-after-ack", fixture_setup, NULL, test_kill_after_ack);
  ADD ("/relay/ingest/file-modes", fixture_setup, NULL, test_file_modes);
  ADD ("/relay/ingest/template-budget", fixture_setup, NULL, test_template_budget);
  ADD ("/relay/ingest/query-decoding", fixture_setup, NULL, test_query_decoding);
  ADD ("/relay/ingest/encodings", fixture_setup, NULL, test_encodings);
  ADD ("/relay/ingest/control-characters", fixture_setup, NULL, test_control_characters);
  ADD ("/relay/ingest/message-bound", fixture_setup, big_body_args, test_message_bound);
  ADD ("/relay/ingest/github-form", fixture_setup, NULL, test_github_form);
  ADD ("/relay/ingest/uptime-kuma-multipart", fixture_setup, NULL, test_uptime_kuma_multipart);
  ADD ("/relay/ingest/home-assistant-text-json", fixture_setup, NULL,
       test_home_assistant_text_json);
  ADD ("/relay/ingest/top-level-array", fixture_setup, NULL, test_top_level_array);
#undef ADD

  return g_test_run ();
}
