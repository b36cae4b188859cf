/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-api.c: the owner API under /v1/channels on the real relay.
 */
#define G_LOG_DOMAIN "test-relay-api"

#include "config.h"

#include <string.h>

#include "tocsin-test-relay.h"

typedef struct
{
  TocsinTestRelay *relay;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->relay = tocsin_test_relay_start (NULL, data);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
}

/* A request with an optional bearer key that must answer @expected; returns the object. */
static JsonObject *
call (Fixture    *f,
      const char *method,
      const char *path,
      const char *key,
      const char *body,
      guint       expected)
{
  g_autofree char *auth = key ? g_strdup_printf ("Bearer %s", key) : NULL;
  const char *headers[] = { "Authorization", auth, NULL };
  guint status = 0;
  g_autoptr(JsonNode) node = NULL;

  node = tocsin_test_http_json (f->relay, method, path, body ? "application/json" : NULL, body,
                                key ? headers : NULL, &status);
  if (status != expected)
    {
      g_autofree char *text = json_to_string (node, FALSE);

      g_error ("%s %s: expected %u, got %u: %s", method, path, expected, status, text);
    }
  g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
  return json_object_ref (json_node_get_object (node));
}

static void
assert_error (JsonObject *object)
{
  g_assert_cmpuint (strlen (json_object_get_string_member (object, "error")), >, 10);
}

static char *
channel_path (JsonObject *channel,
              const char *suffix)
{
  return g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT "%s",
                          json_object_get_int_member (channel, "id"), suffix ? suffix : "");
}

static guint
ring (Fixture    *f,
      const char *trigger_token,
      const char *query)
{
  g_autofree char *path = g_strdup_printf ("/t/%s%s", trigger_token, query ? query : "");

  return tocsin_test_http (f->relay, "GET", path, NULL, NULL, 0, NULL, NULL, NULL);
}

static void
test_lifecycle (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(JsonObject) created = NULL, other = NULL, got = NULL, patched = NULL;
  g_autoptr(JsonObject) rotated = NULL, rotated_sub = NULL, deleted = NULL, list = NULL;
  g_autoptr(JsonObject) bad = NULL, denied = NULL, anon = NULL, gone = NULL;
  g_autofree char *path = NULL, *other_path = NULL, *expected_url = NULL, *hook = NULL;
  g_autofree char *owner = NULL, *old_trigger = NULL, *old_subscribe = NULL;
  guint status;

  /* Loopback relays are open: anyone may create a channel, and gets its owner key once. */
  created = call (f, "POST", "/v1/channels", NULL,
                  "{\"name\": \"Prod alerts\", \"title\": \"Alerte serveur {{server_name}}\","
                  " \"body\": \"L'utilisation du CPU a atteint {{cpu_usage}}%\"}", 201);
  owner = g_strdup (json_object_get_string_member (created, "owner_key"));
  g_assert_cmpuint (strlen (owner), ==, 32);
  old_trigger = g_strdup (json_object_get_string_member (created, "trigger_token"));
  old_subscribe = g_strdup (json_object_get_string_member (created, "subscribe_token"));
  expected_url = g_strdup_printf ("%s/t/%s", f->relay->base_url, old_trigger);
  g_assert_cmpstr (json_object_get_string_member (created, "webhook_url"), ==, expected_url);
  g_assert_cmpuint (ring (f, old_trigger, "?server_name=P&cpu_usage=1"), ==, 200);

  other = call (f, "POST", "/v1/channels", NULL, "{\"name\": \"Other\"}", 201);
  path = channel_path (created, NULL);
  other_path = channel_path (other, NULL);

  /* The owner key reads its channel, never shown again, and no other. */
  got = call (f, "GET", path, owner, NULL, 200);
  g_assert_cmpstr (json_object_get_string_member (got, "name"), ==, "Prod alerts");
  g_assert_false (json_object_has_member (got, "owner_key"));
  g_assert_cmpint (json_object_get_int_member (got, "last_id"), ==, 1);
  denied = call (f, "GET", other_path, owner, NULL, 403);
  assert_error (denied);
  anon = call (f, "GET", path, NULL, NULL, 401);
  assert_error (anon);
  g_clear_pointer (&denied, json_object_unref);
  denied = call (f, "DELETE", other_path, owner, NULL, 403);

  list = call (f, "GET", "/v1/channels", owner, NULL, 200);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (list, "channels")), ==,
                    1);

  /* Update: a template that does not compile is refused with the template library's error. */
  bad = call (f, "PATCH", path, owner, "{\"title\": \"Alerte {{server_name\"}", 400);
  g_assert_nonnull (strstr (json_object_get_string_member (bad, "error"), "title"));
  patched = call (f, "PATCH", path, owner, "{\"title\": \"Nouveau {{server_name}}\"}", 200);
  g_assert_cmpstr (json_object_get_string_member (patched, "title"), ==,
                   "Nouveau {{server_name}}");
  g_assert_cmpstr (json_object_get_string_member (patched, "name"), ==, "Prod alerts");
  hook = g_strdup_printf ("/t/%s?server_name=X", old_trigger);
  {
    g_autoptr(JsonNode) node = tocsin_test_http_json (f->relay, "GET", hook, NULL, NULL, NULL,
                                                      &status);

    g_assert_cmpuint (status, ==, 200);
    g_assert_cmpstr (json_object_get_string_member (json_node_get_object (node), "title"), ==,
                     "Nouveau X");
  }

  /* Rotation: the old trigger token stops at once. */
  {
    g_autofree char *rotate = channel_path (created, "/rotate-trigger");

    rotated = call (f, "POST", rotate, owner, NULL, 200);
  }
  g_assert_cmpstr (json_object_get_string_member (rotated, "trigger_token"), !=, old_trigger);
  g_assert_cmpuint (ring (f, old_trigger, NULL), ==, 404);
  g_assert_cmpuint (ring (f, json_object_get_string_member (rotated, "trigger_token"), NULL), ==,
                    200);
  {
    g_autofree char *rotate = channel_path (created, "/rotate-subscribe");
    g_autofree char *old_page = g_strdup_printf ("/s/%s", old_subscribe);
    const char *const accept[] = { "Accept", "application/json", NULL };
    guint page_status;

    rotated_sub = call (f, "POST", rotate, owner, NULL, 200);
    g_assert_cmpstr (json_object_get_string_member (rotated_sub, "subscribe_token"), !=,
                     old_subscribe);
    page_status = tocsin_test_http (f->relay, "GET", old_page, NULL, NULL, 0, accept, NULL,
                                    NULL);
    g_assert_cmpuint (page_status, ==, 404);
  }

  /* Methods that do not belong get 405. */
  {
    g_autoptr(JsonObject) wrong = call (f, "PUT", path, owner, "{}", 405);
    g_autofree char *rotate = channel_path (created, "/rotate-trigger");
    g_autoptr(JsonObject) wrong_rotate = call (f, "GET", rotate, owner, NULL, 405);

    assert_error (wrong);
  }

  deleted = call (f, "DELETE", path, owner, NULL, 200);
  g_assert_true (json_object_get_boolean_member (deleted, "deleted"));
  g_assert_cmpuint (ring (f, json_object_get_string_member (rotated, "trigger_token"), NULL), ==,
                    404);
  /* Its owner key went with it. */
  gone = call (f, "GET", path, owner, NULL, 403);
}

static void
test_create_refused (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(JsonObject) no_name = NULL, bad_template = NULL, not_object = NULL;
  g_autoptr(JsonObject) wrong_type = NULL, list = NULL;
  g_autoptr(GBytes) response = NULL;
  guint status;

  no_name = call (f, "POST", "/v1/channels", NULL, "{\"title\": \"x\"}", 400);
  assert_error (no_name);
  bad_template = call (f, "POST", "/v1/channels", NULL,
                       "{\"name\": \"n\", \"body\": \"{{ cpu_usage\"}", 400);
  g_assert_nonnull (strstr (json_object_get_string_member (bad_template, "error"), "body"));
  not_object = call (f, "POST", "/v1/channels", NULL, "[\"name\"]", 400);
  wrong_type = call (f, "POST", "/v1/channels", NULL, "{\"name\": 42}", 400);

  status = tocsin_test_http (f->relay, "POST", "/v1/channels", "text/plain", "name=x", -1, NULL,
                             &response, NULL);
  g_assert_cmpuint (status, ==, 415);
}

static const char *const closed_args[] = { "--open-relay=no", NULL };

/* A relay that is not open takes channels only from an admin key, which manages all of them. */
static void
test_admin_key (Fixture       *f,
                gconstpointer  data)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(JsonObject) refused = NULL, wrong = NULL, created = NULL, second = NULL;
  g_autoptr(JsonObject) list = NULL, got = NULL;
  g_autofree char *path = NULL;
  const char *key;

  refused = call (f, "POST", "/v1/channels", NULL, "{\"name\": \"n\"}", 401);
  assert_error (refused);
  wrong = call (f, "POST", "/v1/channels", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "{\"name\": \"n\"}",
                403);

  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &out, &err, "key", "create", "--json", NULL),
                   ==, 0);
  g_assert_true (json_parser_load_from_data (parser, out, -1, NULL));
  key = json_object_get_string_member (json_node_get_object (json_parser_get_root (parser)),
                                       "key");
  g_assert_nonnull (key);

  created = call (f, "POST", "/v1/channels", key, "{\"name\": \"By admin\"}", 201);
  second = call (f, "POST", "/v1/channels", key, "{\"name\": \"Also by admin\"}", 201);
  list = call (f, "GET", "/v1/channels", key, NULL, 200);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (list, "channels")), ==,
                    2);
  path = channel_path (second, NULL);
  got = call (f, "GET", path, key, NULL, 200);
  g_assert_cmpstr (json_object_get_string_member (got, "name"), ==, "Also by admin");
}

static void
test_subscribers (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(JsonObject) created = NULL, before = NULL, during = NULL;
  g_autoptr(SoupWebsocketConnection) ws = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL, *ws_path = NULL;
  const char *owner;
  JsonArray *subscribers;

  created = call (f, "POST", "/v1/channels", NULL, "{\"name\": \"Watched\"}", 201);
  owner = json_object_get_string_member (created, "owner_key");
  path = channel_path (created, "/subscribers");

  before = call (f, "GET", path, owner, NULL, 200);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (before, "subscribers")),
                    ==, 0);

  ws_path = g_strdup_printf ("/s/%s/ws", json_object_get_string_member (created,
                                                                        "subscribe_token"));
  ws = tocsin_test_websocket_connect (f->relay, ws_path, &error);
  g_assert_no_error (error);

  during = call (f, "GET", path, owner, NULL, 200);
  subscribers = json_object_get_array_member (during, "subscribers");
  g_assert_cmpuint (json_array_get_length (subscribers), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (subscribers, 0),
                                                  "kind"), ==, "ws");
  soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
}

static void
test_not_found (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(JsonObject) a = NULL, b = NULL;
  g_autofree char *out = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  const char *key;

  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &out, NULL, "key", "create", "--json", NULL),
                   ==, 0);
  g_assert_true (json_parser_load_from_data (parser, out, -1, NULL));
  key = json_object_get_string_member (json_node_get_object (json_parser_get_root (parser)),
                                       "key");
  a = call (f, "GET", "/v1/channels/999", key, NULL, 404);
  b = call (f, "GET", "/v1/channels/abc", key, NULL, 404);
  assert_error (a);
  assert_error (b);
}

/* #11.4: json-glib recurses once per nesting level, so 100,000 `[` overflowed the relay's stack
 * once max-body let them in (no key needed on an open relay). Now a 400 with a sentence, and the
 * relay goes on serving, for POST (create) and PATCH (update) alike. */
static const char *const big_body_args[] = { "--max-body=128K", NULL };

static void
test_deep_json (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GString) deep = g_string_new (NULL);
  g_autoptr(JsonObject) refused = NULL;
  g_autoptr(JsonObject) created = NULL;
  g_autoptr(JsonObject) patched = NULL;
  g_autoptr(JsonObject) after = NULL;
  g_autofree char *path = NULL;
  const char *owner;

  for (guint i = 0; i < 100000; i++)
    g_string_append_c (deep, '[');

  refused = call (f, "POST", "/v1/channels", NULL, deep->str, 400);
  g_test_message ("%s", json_object_get_string_member (refused, "error"));
  assert_error (refused);
  g_assert_nonnull (strstr (json_object_get_string_member (refused, "error"), "nested"));

  /* Alive and serving: a channel is created, and the same attack on PATCH is refused too. */
  created = call (f, "POST", "/v1/channels", NULL, "{\"name\": \"After\"}", 201);
  owner = json_object_get_string_member (created, "owner_key");
  path = channel_path (created, NULL);
  patched = call (f, "PATCH", path, owner, deep->str, 400);
  assert_error (patched);
  after = call (f, "GET", path, owner, NULL, 200);
  g_assert_cmpstr (json_object_get_string_member (after, "name"), ==, "After");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, args, func) \
  g_test_add (path, Fixture, args, fixture_setup, func, fixture_teardown)
  ADD ("/relay/api/lifecycle", NULL, test_lifecycle);
  ADD ("/relay/api/create-refused", NULL, test_create_refused);
  ADD ("/relay/api/admin-key", closed_args, test_admin_key);
  ADD ("/relay/api/subscribers", NULL, test_subscribers);
  ADD ("/relay/api/not-found", NULL, test_not_found);
  ADD ("/relay/api/deep-json", big_body_args, test_deep_json);
#undef ADD

  return g_test_run ();
}
