/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-direct.c: Direct keys (/d/{key} and /v1/direct) on the real relay, with Echobell's
 * answers: what a script calling the key and a desktop subscribed to its inbox see.
 */
#define G_LOG_DOMAIN "test-relay-direct"

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tocsin-test-relay.h"

typedef struct
{
  TocsinTestRelay *relay;
  JsonObject      *inbox;      /* POST /v1/direct's answer */
  char            *key_path;   /* /d/{key} */
} Fixture;

static JsonObject *
call (Fixture    *f,
      const char *method,
      const char *path,
      const char *key,
      guint       expected)
{
  g_autofree char *auth = key ? g_strdup_printf ("Bearer %s", key) : NULL;
  const char *headers[] = { "Authorization", auth, NULL };
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  node = tocsin_test_http_json (f->relay, method, path, NULL, NULL, key ? headers : NULL,
                                &status);
  if (status != expected)
    {
      g_autofree char *text = json_to_string (node, FALSE);

      g_error ("%s %s: expected %u, got %u: %s", method, path, expected, status, text);
    }
  g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
  return json_object_ref (json_node_get_object (node));
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->relay = tocsin_test_relay_start (NULL, data);
  f->inbox = call (f, "POST", "/v1/direct", NULL, 201);
  f->key_path = g_strdup_printf ("/d/%s", json_object_get_string_member (f->inbox,
                                                                         "direct_key"));
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_pointer (&f->key_path, g_free);
  g_clear_pointer (&f->inbox, json_object_unref);
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
}

/* Calls the Direct URL and returns the whole answer as text, asserting @expected. */
static char *
ring (Fixture            *f,
      const char         *method,
      const char         *path,
      const char         *content_type,
      const char         *body,
      const char * const *headers,
      guint               expected)
{
  g_autoptr(GBytes) response = NULL;
  guint status;

  status = tocsin_test_http (f->relay, method, path, content_type, body, -1, headers,
                             &response, NULL);
  if (status != expected)
    g_error ("%s %s: expected %u, got %u: %s", method, path, expected, status,
             response ? (const char *) g_bytes_get_data (response, NULL) : "");
  return g_strndup (g_bytes_get_data (response, NULL), g_bytes_get_size (response));
}

static JsonObject *
parse_object (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();

  g_assert_true (json_parser_load_from_data (parser, text, -1, NULL));
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

/* Echobell's error shape, with a sentence that says something. */
static void
assert_refused (const char *text,
                const char *exact)
{
  g_autoptr(JsonObject) object = parse_object (text);

  g_assert_cmpuint (json_object_get_size (object), ==, 2);
  g_assert_false (json_object_get_boolean_member (object, "success"));
  if (exact)
    g_assert_cmpstr (json_object_get_string_member (object, "message"), ==, exact);
  else
    g_assert_cmpuint (strlen (json_object_get_string_member (object, "message")), >, 10);
}

static const char sent[] = "{\"success\":true,\"message\":\"Notification sent\"}";

/* A desktop of the owner: the inbox's stream, from its first message. */
static SoupWebsocketConnection *
subscribe (Fixture   *f,
           GPtrArray *frames)
{
  g_autofree char *path = g_strdup_printf ("/s/%s/ws?since=all",
                                           json_object_get_string_member (f->inbox,
                                                                          "subscribe_token"));
  g_autoptr(GError) error = NULL;
  SoupWebsocketConnection *ws = tocsin_test_websocket_connect (f->relay, path, &error);

  g_assert_no_error (error);
  tocsin_test_websocket_collect (ws, frames);
  return ws;
}

static const char *
member (JsonObject *object,
        const char *name)
{
  return json_object_has_member (object, name) ? json_object_get_string_member (object, name)
                                               : NULL;
}

/* ---- Tests ---- */

static void
test_post_json (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) second_frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SoupWebsocketConnection) ws = NULL, second = NULL;
  g_autoptr(JsonObject) message = NULL;
  g_autofree char *answer = NULL;

  g_assert_cmpstr (member (f->inbox, "kind"), ==, "direct");
  g_assert_true (g_str_has_suffix (member (f->inbox, "direct_url"), f->key_path));
  g_assert_cmpuint (strlen (member (f->inbox, "owner_key")), >=, 22);

  answer = ring (f, "POST", f->key_path, "application/json",
                 "{\"title\": \"Build Complete\", \"body\": \"Project X built in 3m 42s\","
                 " \"externalLink\": \"https://ci.example.com/builds/42\","
                 " \"notificationType\": \"calling\"}", NULL, 200);
  g_assert_cmpstr (answer, ==, sent);

  /* Every desktop of the owner holds the inbox's subscribe link: each gets it. */
  ws = subscribe (f, frames);
  second = subscribe (f, second_frames);
  TOCSIN_WAIT_UNTIL (frames->len == 1 && second_frames->len == 1);
  g_assert_cmpstr (frames->pdata[0], ==, second_frames->pdata[0]);
  message = parse_object (frames->pdata[0]);
  g_assert_cmpstr (member (message, "channelName"), ==, "Direct");
  g_assert_cmpstr (member (message, "title"), ==, "Build Complete");
  g_assert_cmpstr (member (message, "body"), ==, "Project X built in 3m 42s");
  g_assert_cmpstr (member (message, "externalLink"), ==, "https://ci.example.com/builds/42");
  g_assert_cmpstr (member (message, "notificationType"), ==, "calling");
}

/* GET with the query; Echobell's defaults: "Direct Notification", time-sensitive; names in any
 * case; then a form body, and a text/plain body that is the body. */
static void
test_get_form_and_defaults (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SoupWebsocketConnection) ws = subscribe (f, frames);
  g_autofree char *get_path = g_strdup_printf ("%s?body=CPU+at+95%%25", f->key_path);
  g_autofree char *upper_path = g_strdup_printf ("%s?TITLE=Alert&Body=x&NotificationType=active",
                                                 f->key_path);
  g_autofree char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
  g_autoptr(JsonObject) first = NULL, second = NULL, third = NULL, fourth = NULL;

  a = ring (f, "GET", get_path, NULL, NULL, NULL, 200);
  g_assert_cmpstr (a, ==, sent);
  b = ring (f, "GET", upper_path, NULL, NULL, NULL, 200);
  g_assert_cmpstr (b, ==, sent);
  c = ring (f, "POST", f->key_path, "application/x-www-form-urlencoded",
            "title=Backup&body=Nightly+backup+done&notificationType=time-sensitive", NULL, 200);
  g_assert_cmpstr (c, ==, sent);
  d = ring (f, "POST", f->key_path, "text/plain", "Migration finished", NULL, 200);
  g_assert_cmpstr (d, ==, sent);

  TOCSIN_WAIT_UNTIL (frames->len == 4);
  first = parse_object (frames->pdata[0]);
  g_assert_cmpstr (member (first, "title"), ==, "Direct Notification");
  g_assert_cmpstr (member (first, "body"), ==, "CPU at 95%");
  g_assert_cmpstr (member (first, "notificationType"), ==, "time-sensitive");
  g_assert_false (json_object_has_member (first, "externalLink"));

  second = parse_object (frames->pdata[1]);
  g_assert_cmpstr (member (second, "title"), ==, "Alert");
  g_assert_cmpstr (member (second, "body"), ==, "x");
  g_assert_cmpstr (member (second, "notificationType"), ==, "active");

  third = parse_object (frames->pdata[2]);
  g_assert_cmpstr (member (third, "title"), ==, "Backup");
  g_assert_cmpstr (member (third, "body"), ==, "Nightly backup done");
  g_assert_cmpstr (member (third, "notificationType"), ==, "time-sensitive");

  fourth = parse_object (frames->pdata[3]);
  g_assert_cmpstr (member (fourth, "title"), ==, "Direct Notification");
  g_assert_cmpstr (member (fourth, "body"), ==, "Migration finished");
}

static void
test_errors (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SoupWebsocketConnection) ws = subscribe (f, frames);
  g_autoptr(JsonObject) channel = NULL;
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autofree char *hook_as_key = NULL, *key_as_hook = NULL, *text = NULL;
  g_autofree char *bad_type = g_strdup_printf ("%s?body=x&notificationType=urgent", f->key_path);
  const char *const json_bodies[] = {
    "{\"title\": \"Broken\", ",                                   /* malformed JSON */
    "{\"body\": {\"nested\": true}}",                             /* not text */
    "{\"body\": \"x\", \"externalLink\": \"javascript:alert(1)\"}", /* not a safe link */
    "{\"body\": \"x\", \"notificationType\": 3}",                 /* not a type */
  };

  /* Unknown key: Echobell's exact answer. */
  text = ring (f, "GET", "/d/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, NULL, NULL, 404);
  g_assert_cmpstr (text, ==, "{\"success\":false,\"message\":\"Direct key not found\"}");
  g_clear_pointer (&text, g_free);

  /* Whatever follows /d/, Echobell's shape. */
  text = ring (f, "GET", "/d/not.a/key", NULL, NULL, NULL, 404);
  assert_refused (text, "Direct key not found");
  g_clear_pointer (&text, g_free);

  /* A channel's webhook token is no Direct key, and a Direct key is no webhook URL. */
  channel = tocsin_test_relay_create_channel (f->relay, "Servers", "{{t}}", NULL, NULL, NULL);
  hook_as_key = g_strdup_printf ("/d/%s?body=x", member (channel, "trigger_token"));
  text = ring (f, "GET", hook_as_key, NULL, NULL, NULL, 404);
  assert_refused (text, "Direct key not found");
  g_clear_pointer (&text, g_free);
  key_as_hook = g_strdup_printf ("/t/%s?t=x", member (f->inbox, "direct_key"));
  text = ring (f, "GET", key_as_hook, NULL, NULL, NULL, 404);
  g_clear_pointer (&text, g_free);

  text = ring (f, "GET", bad_type, NULL, NULL, NULL, 400);
  assert_refused (text, NULL);
  g_assert_nonnull (strstr (text, "time-sensitive"));
  g_clear_pointer (&text, g_free);

  for (guint i = 0; i < G_N_ELEMENTS (json_bodies); i++)
    {
      text = ring (f, "POST", f->key_path, "application/json", json_bodies[i], NULL, 400);
      assert_refused (text, NULL);
      g_clear_pointer (&text, g_free);
    }

  /* Over max-body (64 KiB): 413, refused before it is read, still in Echobell's shape. */
  {
    g_autoptr(GString) big = g_string_new ("{\"body\": \"");
    g_autoptr(JsonObject) object = NULL;

    while (big->len < 70 * 1024)
      g_string_append (big, "0123456789abcdef");
    g_string_append (big, "\"}");
    text = ring (f, "POST", f->key_path, "application/json", big->str, NULL, 413);
    object = parse_object (text);
    g_assert_false (json_object_get_boolean_member (object, "success"));
    g_assert_nonnull (strstr (json_object_get_string_member (object, "message"), "larger"));
    g_clear_pointer (&text, g_free);
  }

  /* Other methods: 405 with Allow, same shape. */
  g_assert_cmpuint (tocsin_test_http (f->relay, "PUT", f->key_path, "application/json", "{}", -1,
                                      NULL, NULL, &headers), ==, 405);
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Allow"), ==, "GET, POST");

  /* Nothing refused reached the owner's desktop; the next good one does, as message 1. */
  text = ring (f, "GET", f->key_path, NULL, NULL, NULL, 200);
  TOCSIN_WAIT_UNTIL (frames->len == 1);
  g_assert_nonnull (strstr (frames->pdata[0], "\"id\":1,"));
}

/* Rotation, through the owner API and the command line: the old key is 404 at once. */
static void
test_rotate (Fixture       *f,
             gconstpointer  data)
{
  const char *owner_key = member (f->inbox, "owner_key");
  g_autoptr(JsonObject) shown = NULL, rotated = NULL, cli = NULL, cli_shown = NULL;
  g_autofree char *new_path = NULL, *cli_path = NULL, *text = NULL, *out = NULL, *id = NULL;

  ring (f, "GET", f->key_path, NULL, NULL, NULL, 200);

  shown = call (f, "GET", "/v1/direct", owner_key, 200);
  g_assert_cmpstr (member (shown, "direct_key"), ==, member (f->inbox, "direct_key"));
  g_assert_false (json_object_has_member (shown, "owner_key"));
  call (f, "GET", "/v1/direct", NULL, 401);
  call (f, "GET", "/v1/direct", "not-a-key", 403);

  rotated = call (f, "POST", "/v1/direct/rotate", owner_key, 200);
  g_assert_cmpstr (member (rotated, "direct_key"), !=, member (f->inbox, "direct_key"));
  g_assert_cmpstr (member (rotated, "subscribe_url"), ==, member (f->inbox, "subscribe_url"));
  text = ring (f, "GET", f->key_path, NULL, NULL, NULL, 404);
  assert_refused (text, "Direct key not found");
  g_clear_pointer (&text, g_free);
  new_path = g_strdup_printf ("/d/%s?body=again", member (rotated, "direct_key"));
  text = ring (f, "GET", new_path, NULL, NULL, NULL, 200);
  g_assert_cmpstr (text, ==, sent);
  g_clear_pointer (&text, g_free);

  /* `tocsin-relay direct rotate ID` on the same data dir, while it serves. */
  id = g_strdup_printf ("%" G_GINT64_FORMAT, json_object_get_int_member (f->inbox, "id"));
  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &out, NULL, "direct", "rotate", id, "--json",
                                          NULL), ==, 0);
  cli = parse_object (out);
  g_clear_pointer (&out, g_free);
  text = ring (f, "GET", new_path, NULL, NULL, NULL, 404);
  g_clear_pointer (&text, g_free);
  cli_path = g_strdup_printf ("/d/%s", member (cli, "direct_key"));
  text = ring (f, "GET", cli_path, NULL, NULL, NULL, 200);
  g_clear_pointer (&text, g_free);
  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &out, NULL, "direct", "show", id, "--json",
                                          NULL), ==, 0);
  cli_shown = parse_object (out);
  g_assert_cmpstr (member (cli_shown, "direct_key"), ==, member (cli, "direct_key"));
  g_clear_pointer (&out, g_free);

  /* A channel's number is not a Direct key's. */
  g_assert_cmpint (tocsin_test_relay_cli (f->relay, NULL, NULL, "direct", "show", "999",
                                          NULL), !=, 0);

  /* Deleted: the key is gone, and so is the owner key's power. */
  g_clear_pointer (&shown, json_object_unref);
  shown = call (f, "DELETE", "/v1/direct", owner_key, 200);
  g_assert_true (json_object_get_boolean_member (shown, "deleted"));
  text = ring (f, "GET", cli_path, NULL, NULL, NULL, 404);
  assert_refused (text, "Direct key not found");
  g_clear_pointer (&shown, json_object_unref);
  shown = call (f, "GET", "/v1/direct", owner_key, 403);
}

static const char *const rate_args[] = { "--rate=0.2", "--burst=2", NULL };

static void
test_rate_limit (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(GBytes) response = NULL;
  const char *retry;

  for (int i = 0; i < 2; i++)
    g_free (ring (f, "GET", f->key_path, NULL, NULL, NULL, 200));
  g_assert_cmpuint (tocsin_test_http (f->relay, "POST", f->key_path, "application/json",
                                      "{\"body\": \"third\"}", -1, NULL, &response, &headers),
                    ==, 429);
  assert_refused (g_bytes_get_data (response, NULL), NULL);
  retry = soup_message_headers_get_one (headers, "Retry-After");
  g_assert_nonnull (retry);
  g_assert_cmpint (atoi (retry), >=, 1);
  g_assert_nonnull (strstr (soup_message_headers_get_one (headers, "RateLimit"), "r=0"));
}

/* The same eventId and content: answered as sent, delivered once (the webhook path's dedup). */
static void
test_dedup (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SoupWebsocketConnection) ws = subscribe (f, frames);
  const char *body = "{\"eventId\": \"backup-7\", \"body\": \"Backup done\"}";
  g_autofree char *a = NULL, *b = NULL, *c = NULL;
  g_autoptr(JsonObject) again = NULL;

  a = ring (f, "POST", f->key_path, "application/json", body, NULL, 200);
  b = ring (f, "POST", f->key_path, "application/json", body, NULL, 200);
  again = parse_object (b);
  g_assert_true (json_object_get_boolean_member (again, "success"));
  g_assert_true (json_object_get_boolean_member (again, "duplicate"));
  c = ring (f, "GET", f->key_path, NULL, NULL, NULL, 200);
  TOCSIN_WAIT_UNTIL (frames->len == 2);
  g_assert_nonnull (strstr (frames->pdata[0], "Backup done"));
  g_assert_null (strstr (frames->pdata[1], "Backup done"));
}

/* Creating one needs what creating a channel needs: a relay that is not open wants a key. */
static const char *const closed_args[] = { "--open-relay=no", NULL };

static void
setup_closed (Fixture       *f,
              gconstpointer  data)
{
  f->relay = tocsin_test_relay_start (NULL, data);
}

static void
test_closed_relay (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(JsonObject) refused = NULL, made = NULL;
  g_autofree char *admin = NULL;

  refused = call (f, "POST", "/v1/direct", NULL, 401);
  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &admin, NULL, "key", "create", NULL), ==, 0);
  g_strstrip (admin);
  made = call (f, "POST", "/v1/direct", admin, 201);
  g_assert_nonnull (member (made, "direct_key"));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, args, func) \
  g_test_add (path, Fixture, args, fixture_setup, func, fixture_teardown)
  ADD ("/relay/direct/post-json", NULL, test_post_json);
  ADD ("/relay/direct/get-form-and-defaults", NULL, test_get_form_and_defaults);
  ADD ("/relay/direct/errors", NULL, test_errors);
  ADD ("/relay/direct/rotate", NULL, test_rotate);
  ADD ("/relay/direct/rate-limit", rate_args, test_rate_limit);
  ADD ("/relay/direct/dedup", NULL, test_dedup);
  g_test_add ("/relay/direct/closed-relay", Fixture, closed_args, setup_closed,
              test_closed_relay, fixture_teardown);
#undef ADD

  return g_test_run ();
}
