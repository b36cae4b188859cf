/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-forwards.c: a channel's outgoing requests (issue 15, docs/actions-C1.md), as an
 * operator sees them: a real relay on 127.0.0.1 port 0 sends to a real misbehaving target
 * (tests/tocsin-test-target.h), and the owner API's and CLI's deliveries log says what happened.
 * Timings are asserted as order and bounds, never as exact sleeps.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include "tocsin-message.h"
#include "tocsin-relay-store.h"
#include "tocsin-test-relay.h"
#include "tocsin-test-target.h"

/* Small values, so that retries come quickly. */
static const char *const relay_args[] = {
  "--forward-timeout=1s", "--forward-max-attempts=4", "--forward-backoff-base=50ms",
  "--forward-backoff-max=200ms", "--forward-cooldown=300ms", NULL
};

typedef struct
{
  TocsinTestRelay  *relay;
  TocsinTestTarget *target;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->relay = tocsin_test_relay_start (NULL, relay_args);
  f->target = tocsin_test_target_new ();
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_pointer (&f->target, tocsin_test_target_free);
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
}

/* A channel with @forwards (a JSON array's text), made through the owner API. */
static JsonObject *
create_channel (Fixture    *f,
                const char *forwards)
{
  g_autofree char *spec = g_strdup_printf ("{\"name\":\"Alerts\",\"title\":\"{{title}}\","
                                           "\"forwards\":%s}", forwards);
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  node = tocsin_test_http_json (f->relay, "POST", "/v1/channels", "application/json", spec,
                                NULL, &status);
  g_assert_cmpuint (status, ==, 201);
  return json_object_ref (json_node_get_object (node));
}

/* A forward "hook" to @path of the target with @extra members (or ""). */
static char *
forwards_to (Fixture    *f,
             const char *path,
             const char *extra)
{
  g_autofree char *url = tocsin_test_target_url (f->target, path);

  return g_strdup_printf ("[{\"name\":\"hook\",\"url\":\"%s?secret=s3cr3t\","
                          "\"params\":[{\"name\":\"status\",\"type\":\"text\","
                          "\"value\":\"{{status}}\"},{\"name\":\"channel\",\"type\":\"text\","
                          "\"value\":\"{{channel.name}}\"}]%s}]", url, extra);
}

static void
ring (Fixture    *f,
      JsonObject *channel,
      const char *status)
{
  g_autofree char *path = g_strdup_printf ("/t/%s",
                                           json_object_get_string_member (channel,
                                                                          "trigger_token"));
  g_autofree char *body = g_strdup_printf ("{\"title\":\"Disk\",\"status\":\"%s\"}", status);

  g_assert_cmpuint (tocsin_test_http (f->relay, "POST", path, "application/json", body, -1,
                                      NULL, NULL, NULL), ==, 200);
}

/* GET …/deliveries with the channel's owner key. */
static JsonObject *
deliveries (Fixture    *f,
            JsonObject *channel)
{
  g_autofree char *path = g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT "/deliveries",
                                           json_object_get_int_member (channel, "id"));
  g_autofree char *auth = g_strdup_printf ("Bearer %s",
                                           json_object_get_string_member (channel, "owner_key"));
  const char *headers[] = { "Authorization", auth, NULL };
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  node = tocsin_test_http_json (f->relay, "GET", path, NULL, NULL, headers, &status);
  g_assert_cmpuint (status, ==, 200);
  return json_object_ref (json_node_get_object (node));
}

static guint
count_state (JsonObject *log,
             const char *state)
{
  JsonArray *array = json_object_get_array_member (log, "deliveries");
  guint n = 0;

  for (guint i = 0; i < json_array_get_length (array); i++)
    if (g_str_equal (json_object_get_string_member (json_array_get_object_element (array, i),
                                                    "state"), state))
      n++;
  return n;
}

/* TRUE once @n deliveries of the channel are in @state. */
static gboolean
reached (Fixture    *f,
         JsonObject *channel,
         const char *state,
         guint       n)
{
  g_autoptr(JsonObject) log = deliveries (f, channel);

  return count_state (log, state) >= n;
}

/* TRUE once none of the channel's deliveries waits. */
static gboolean
finished (Fixture    *f,
          JsonObject *channel)
{
  g_autoptr(JsonObject) log = deliveries (f, channel);

  return count_state (log, "pending") + count_state (log, "held") == 0;
}

/* The attempts of the log, oldest first. */
static GPtrArray *
attempts_in_order (JsonObject *log)
{
  JsonArray *array = json_object_get_array_member (log, "attempts");
  GPtrArray *out = g_ptr_array_new ();
  guint n = json_array_get_length (array);

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (out, json_array_get_object_element (array, n - 1 - i));
  return out;
}

/* ---- tests ---- */

static void
test_webhook (Fixture       *f,
              gconstpointer  data)
{
  g_autofree char *forwards = forwards_to (f, "/hook", "");
  g_autoptr(JsonObject) channel = create_channel (f, forwards);
  g_autoptr(JsonObject) log = NULL;
  g_autoptr(GPtrArray) requests = NULL;
  TocsinTestTargetRequest *request;
  JsonObject *delivery, *attempt;
  const char *webhook_id;

  /* The owner view shows the forwards, normalised. */
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (channel, "forwards")),
                    ==, 1);

  ring (f, channel, "firing");
  tocsin_test_target_wait_requests (f->target, 1, 20);
  requests = tocsin_test_target_get_requests (f->target, "/hook");
  request = requests->pdata[0];
  g_assert_cmpstr (request->method, ==, "POST");
  g_assert_cmpstr (request->query, ==, "secret=s3cr3t");
  g_assert_nonnull (strstr (tocsin_test_target_request_header (request, "Content-Type"),
                            "application/json"));
  g_assert_nonnull (strstr (tocsin_test_target_request_body (request), "\"status\":\"firing\""));
  g_assert_nonnull (strstr (tocsin_test_target_request_body (request), "\"channel\":\"Alerts\""));
  webhook_id = tocsin_test_target_request_header (request, "webhook-id");
  g_assert_nonnull (webhook_id);
  g_assert_true (g_str_has_prefix (webhook_id, "msg_"));

  TOCSIN_WAIT_UNTIL (reached (f, channel, "delivered", 1));
  log = deliveries (f, channel);
  delivery = json_array_get_object_element (json_object_get_array_member (log, "deliveries"), 0);
  g_assert_cmpstr (json_object_get_string_member (delivery, "webhook_id"), ==, webhook_id);
  g_assert_cmpstr (json_object_get_string_member (delivery, "event"), ==, "message");
  g_assert_cmpstr (json_object_get_string_member (delivery, "forward"), ==, "hook");
  g_assert_cmpint (json_object_get_int_member (delivery, "message_id"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (delivery, "attempts"), ==, 1);
  g_assert_true (json_node_is_null (json_object_get_member (delivery, "next_attempt_at")));
  attempt = json_array_get_object_element (json_object_get_array_member (log, "attempts"), 0);
  g_assert_cmpint (json_object_get_int_member (attempt, "status"), ==, 200);
  g_assert_cmpstr (json_object_get_string_member (attempt, "outcome"), ==, "success");
  g_assert_true (json_node_is_null (json_object_get_member (attempt, "error")));
  /* The log never holds the query (it may carry a secret). */
  g_assert_null (strstr (json_object_get_string_member (attempt, "url"), "s3cr3t"));
  g_assert_true (g_str_has_suffix (json_object_get_string_member (attempt, "url"), "/hook"));
}

static void
test_retry_after (Fixture       *f,
                  gconstpointer  data)
{
  g_autofree char *forwards = forwards_to (f, "/busy", "");
  g_autoptr(JsonObject) channel = create_channel (f, forwards);
  g_autoptr(JsonObject) log = NULL;
  g_autoptr(GPtrArray) requests = NULL;
  g_autoptr(GPtrArray) attempts = NULL;
  TocsinTestTargetRequest *first, *second;
  JsonObject *a1, *a2;

  tocsin_test_target_push (f->target, "/busy", 429, "slow down", "Retry-After", "1", NULL);
  tocsin_test_target_push (f->target, "/busy", 200, "ok", NULL);
  ring (f, channel, "firing");
  tocsin_test_target_wait_requests (f->target, 2, 20);
  TOCSIN_WAIT_UNTIL (reached (f, channel, "delivered", 1));

  requests = tocsin_test_target_get_requests (f->target, "/busy");
  g_assert_cmpuint (requests->len, ==, 2);
  first = requests->pdata[0];
  second = requests->pdata[1];
  /* One delivery: the same webhook-id; not before Retry-After said. */
  g_assert_cmpstr (tocsin_test_target_request_header (first, "webhook-id"), ==,
                   tocsin_test_target_request_header (second, "webhook-id"));
  g_assert_cmpint (second->arrived_ms - first->arrived_ms, >=, 1000);

  log = deliveries (f, channel);
  attempts = attempts_in_order (log);
  g_assert_cmpuint (attempts->len, ==, 2);
  a1 = attempts->pdata[0];
  a2 = attempts->pdata[1];
  g_assert_cmpint (json_object_get_int_member (a1, "attempt"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (a1, "status"), ==, 429);
  g_assert_cmpstr (json_object_get_string_member (a1, "outcome"), ==, "retry");
  g_assert_nonnull (json_object_get_string_member (a1, "error"));
  g_assert_true (g_str_has_prefix (json_object_get_string_member (a1, "answer_start"),
                                   "slow down"));
  g_assert_false (json_node_is_null (json_object_get_member (a1, "next_retry_at")));
  g_assert_cmpint (json_object_get_int_member (a2, "attempt"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (a2, "status"), ==, 200);
  g_assert_cmpstr (json_object_get_string_member (a2, "outcome"), ==, "success");
}

static void
test_backoff (Fixture       *f,
              gconstpointer  data)
{
  g_autofree char *forwards = forwards_to (f, "/flaky", "");
  g_autoptr(JsonObject) channel = create_channel (f, forwards);
  g_autoptr(JsonObject) log = NULL;
  g_autoptr(GPtrArray) attempts = NULL;

  tocsin_test_target_push (f->target, "/flaky", 500, "oops", NULL);
  tocsin_test_target_push (f->target, "/flaky", 503, "oops", NULL);
  ring (f, channel, "firing");
  TOCSIN_WAIT_UNTIL (reached (f, channel, "delivered", 1));
  g_assert_cmpuint (tocsin_test_target_count_requests (f->target, "/flaky"), ==, 3);

  log = deliveries (f, channel);
  attempts = attempts_in_order (log);
  g_assert_cmpuint (attempts->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    g_assert_cmpint (json_object_get_int_member (attempts->pdata[i], "attempt"), ==, i + 1);
  g_assert_cmpint (json_object_get_int_member (attempts->pdata[0], "status"), ==, 500);
  g_assert_cmpint (json_object_get_int_member (attempts->pdata[1], "status"), ==, 503);
  g_assert_cmpstr (json_object_get_string_member (attempts->pdata[1], "outcome"), ==, "retry");
  g_assert_cmpstr (json_object_get_string_member (attempts->pdata[2], "outcome"), ==,
                   "success");
}

static void
test_timeout (Fixture       *f,
              gconstpointer  data)
{
  g_autofree char *forwards = forwards_to (f, "/hang", "");
  g_autoptr(JsonObject) channel = create_channel (f, forwards);
  g_autoptr(JsonObject) log = NULL;
  g_autoptr(GPtrArray) attempts = NULL;
  JsonObject *a1;

  /* Longer than --forward-timeout=1s. */
  tocsin_test_target_push_hang (f->target, "/hang", 4, 200);
  ring (f, channel, "firing");
  TOCSIN_WAIT_UNTIL (reached (f, channel, "delivered", 1));

  log = deliveries (f, channel);
  attempts = attempts_in_order (log);
  g_assert_cmpuint (attempts->len, ==, 2);
  a1 = attempts->pdata[0];
  g_assert_cmpint (json_object_get_int_member (a1, "status"), ==, 0);
  g_assert_cmpstr (json_object_get_string_member (a1, "outcome"), ==, "retry");
  g_assert_nonnull (json_object_get_string_member (a1, "error"));
  /* Given up at the timeout, not when the target would have answered. */
  g_assert_cmpint (json_object_get_int_member (a1, "duration_ms"), >=, 900);
  g_assert_cmpint (json_object_get_int_member (a1, "duration_ms"), <, 4000);
  g_assert_cmpstr (json_object_get_string_member (attempts->pdata[1], "outcome"), ==,
                   "success");
}

/* The target fails every time: the breaker holds the host back ("held"), and once the host
 * is well again, a probe goes through and the rest follow. */
static void
test_held (Fixture       *f,
           gconstpointer  data)
{
  g_autofree char *forwards = forwards_to (f, "/down", "");
  g_autoptr(JsonObject) channel = create_channel (f, forwards);
  TocsinTestTargetAnswer fail = { .status = 500, .body = "down", .body_length = -1 };
  g_autoptr(JsonObject) log = NULL;
  guint before;

  tocsin_test_target_always (f->target, "/down", &fail);
  for (guint i = 0; i < 4; i++)
    ring (f, channel, "firing");
  TOCSIN_WAIT_UNTIL (reached (f, channel, "held", 1));
  /* Held back: attempts stopped short of 4 deliveries × 4 attempts. */
  before = tocsin_test_target_count_requests (f->target, "/down");
  g_assert_cmpuint (before, <, 16);

  tocsin_test_target_always (f->target, "/down", NULL);
  TOCSIN_WAIT_UNTIL (finished (f, channel));
  log = deliveries (f, channel);
  g_assert_cmpuint (count_state (log, "delivered"), >=, 1);
  g_assert_cmpuint (count_state (log, "delivered") + count_state (log, "failed"), ==, 4);
}

static void
test_policy_none (Fixture       *f,
                  gconstpointer  data)
{
  g_autofree char *forwards = forwards_to (f, "/once", ",\"policy\":\"none\"");
  g_autoptr(JsonObject) channel = create_channel (f, forwards);
  g_autoptr(JsonObject) log = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *path = NULL, *auth = NULL;
  JsonObject *delivery;
  guint status = 0;

  tocsin_test_target_push (f->target, "/once", 500, "no", NULL);
  ring (f, channel, "firing");
  TOCSIN_WAIT_UNTIL (reached (f, channel, "failed", 1));
  g_assert_cmpuint (tocsin_test_target_count_requests (f->target, "/once"), ==, 1);
  log = deliveries (f, channel);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (log, "attempts")), ==,
                    1);
  delivery = json_array_get_object_element (json_object_get_array_member (log, "deliveries"), 0);
  g_assert_cmpint (json_object_get_int_member (delivery, "attempts"), ==, 1);

  /* Retry now: one more attempt, answered 200 this time. */
  path = g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT "/deliveries/%" G_GINT64_FORMAT
                          "/retry", json_object_get_int_member (channel, "id"),
                          json_object_get_int_member (delivery, "id"));
  auth = g_strdup_printf ("Bearer %s", json_object_get_string_member (channel, "owner_key"));
  {
    const char *headers[] = { "Authorization", auth, NULL };

    node = tocsin_test_http_json (f->relay, "POST", path, NULL, NULL, headers, &status);
  }
  g_assert_cmpuint (status, ==, 202);
  g_assert_cmpstr (json_object_get_string_member (
                     json_object_get_object_member (json_node_get_object (node), "delivery"),
                     "state"), ==, "pending");
  TOCSIN_WAIT_UNTIL (reached (f, channel, "delivered", 1));
  g_assert_cmpuint (tocsin_test_target_count_requests (f->target, "/once"), ==, 2);
  g_clear_pointer (&log, json_object_unref);
  log = deliveries (f, channel);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (log, "attempts")), ==,
                    2);

  /* Without the owner key: refused. */
  g_assert_cmpuint (tocsin_test_http (f->relay, "POST", path, NULL, NULL, 0, NULL, NULL, NULL),
                    ==, 401);
}

static void
test_condition (Fixture       *f,
                gconstpointer  data)
{
  g_autofree char *forwards = forwards_to (f, "/cond",
                                           ",\"condition\":\"status == 'firing'\"");
  g_autoptr(JsonObject) channel = create_channel (f, forwards);
  g_autoptr(JsonObject) log = NULL;

  /* The webhook's 200 comes once its deliveries are durable: none were queued. */
  ring (f, channel, "resolved");
  log = deliveries (f, channel);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (log, "deliveries")), ==,
                    0);
  ring (f, channel, "firing");
  TOCSIN_WAIT_UNTIL (reached (f, channel, "delivered", 1));
  g_clear_pointer (&log, json_object_unref);
  log = deliveries (f, channel);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (log, "deliveries")), ==,
                    1);
  g_assert_cmpuint (tocsin_test_target_count_requests (f->target, "/cond"), ==, 1);
}

static void
test_bad_definition (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  node = tocsin_test_http_json (f->relay, "POST", "/v1/channels", "application/json",
                                "{\"name\":\"Bad\",\"forwards\":[{\"name\":\"x\","
                                "\"url\":\"https://example.com/{{oops\"}]}", NULL, &status);
  g_assert_cmpuint (status, ==, 400);
  /* The request model's sentence, naming the field. */
  g_assert_nonnull (strstr (json_object_get_string_member (json_node_get_object (node), "error"),
                            "forwards[0]"));
  g_clear_pointer (&node, json_node_unref);
  node = tocsin_test_http_json (f->relay, "POST", "/v1/channels", "application/json",
                                "{\"name\":\"Bad\",\"forwards\":{}}", NULL, &status);
  g_assert_cmpuint (status, ==, 400);
}

/* PATCH replaces the forwards; [] removes them; a bad one changes nothing. The command line
 * takes them from a file. */
static void
test_edit (Fixture       *f,
           gconstpointer  data)
{
  g_autofree char *forwards = forwards_to (f, "/edit", "");
  g_autoptr(JsonObject) channel = create_channel (f, forwards);
  g_autofree char *path = g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT,
                                           json_object_get_int_member (channel, "id"));
  g_autofree char *auth = g_strdup_printf ("Bearer %s",
                                           json_object_get_string_member (channel, "owner_key"));
  const char *headers[] = { "Authorization", auth, NULL };
  g_autofree char *dir = tocsin_test_make_tmpdir ("forwards-cli");
  g_autofree char *file = g_build_filename (dir, "forwards.json", NULL);
  g_autofree char *flag = g_strdup_printf ("--forwards=%s", file);
  g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT,
                                         json_object_get_int_member (channel, "id"));
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonNode) node = NULL;
  JsonArray *list;
  guint status = 0;

  node = tocsin_test_http_json (f->relay, "PATCH", path, "application/json",
                                "{\"forwards\":[{\"name\":\"x\",\"url\":\"ftp:{{\"}]}",
                                headers, &status);
  g_assert_cmpuint (status, ==, 400);
  g_clear_pointer (&node, json_node_unref);
  node = tocsin_test_http_json (f->relay, "GET", path, NULL, NULL, headers, &status);
  list = json_object_get_array_member (json_node_get_object (node), "forwards");
  g_assert_cmpuint (json_array_get_length (list), ==, 1);
  /* Normalised: the defaults are filled in. */
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (list, 0),
                                                  "policy"), ==, "retry");

  g_clear_pointer (&node, json_node_unref);
  node = tocsin_test_http_json (f->relay, "PATCH", path, "application/json",
                                "{\"forwards\":[]}", headers, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (
                      json_node_get_object (node), "forwards")), ==, 0);
  ring (f, channel, "firing");
  g_clear_pointer (&node, json_node_unref);
  {
    g_autoptr(JsonObject) log = deliveries (f, channel);

    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (log, "deliveries")),
                      ==, 0);
  }

  g_assert_true (g_file_set_contents (file, forwards, -1, NULL));
  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &out, &err, "channel", "edit", id, flag,
                                          NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Forward:"));
  ring (f, channel, "firing");
  TOCSIN_WAIT_UNTIL (reached (f, channel, "delivered", 1));
  g_assert_cmpuint (tocsin_test_target_count_requests (f->target, "/edit"), ==, 1);

  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_true (g_file_set_contents (file, "[{\"name\":\"x\"}]", -1, NULL));
  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &out, &err, "channel", "edit", id, flag,
                                          NULL), !=, 0);
  g_assert_nonnull (strstr (err, "forwards[0]"));
  tocsin_test_rmdir_recursive (dir);
}

/* kill -9 while the target hangs: after a restart on the same data dir every delivery
 * completes, with its webhook-id; a webhook-id that arrives twice is a later attempt in the
 * log, never a silent duplicate. */
static void
test_kill (Fixture       *f,
           gconstpointer  data)
{
  const guint n = 5;
  g_autofree char *forwards = forwards_to (f, "/slow", "");
  g_autoptr(JsonObject) channel = create_channel (f, forwards);
  TocsinTestTargetAnswer hang = { .status = 200, .hang_s = 30 };
  g_autoptr(JsonObject) log = NULL;
  g_autoptr(GPtrArray) requests = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, NULL);
  JsonArray *list, *attempts;

  tocsin_test_target_always (f->target, "/slow", &hang);
  for (guint i = 0; i < n; i++)
    ring (f, channel, "firing");
  tocsin_test_target_wait_requests (f->target, 1, 20);

  tocsin_test_relay_stop (f->relay, TRUE);
  tocsin_test_target_always (f->target, "/slow", NULL);
  tocsin_test_relay_restart (f->relay);

  TOCSIN_WAIT_UNTIL_SECONDS (reached (f, channel, "delivered", n), 60);
  log = deliveries (f, channel);
  list = json_object_get_array_member (log, "deliveries");
  attempts = json_object_get_array_member (log, "attempts");
  g_assert_cmpuint (json_array_get_length (list), ==, n);

  /* Every webhook-id the target saw is one of the n deliveries; one seen twice or more has
   * as many attempts in the log (the resend says so by its attempt number). */
  requests = tocsin_test_target_get_requests (f->target, "/slow");
  for (guint i = 0; i < requests->len; i++)
    {
      const char *id = tocsin_test_target_request_header (requests->pdata[i], "webhook-id");

      g_assert_nonnull (id);
      g_hash_table_insert (seen, (gpointer) id,
                           GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (seen, id))
                                             + 1));
    }
  g_assert_cmpuint (g_hash_table_size (seen), ==, n);
  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonObject *delivery = json_array_get_object_element (list, i);
      const char *id = json_object_get_string_member (delivery, "webhook_id");
      guint received = GPOINTER_TO_UINT (g_hash_table_lookup (seen, id));
      guint logged = 0;

      g_assert_cmpuint (received, >=, 1);
      g_assert_cmpint (json_object_get_int_member (delivery, "attempts"), >=, received);
      for (guint j = 0; j < json_array_get_length (attempts); j++)
        if (json_object_get_int_member (json_array_get_object_element (attempts, j),
                                        "delivery_id") ==
            json_object_get_int_member (delivery, "id"))
          logged++;
      /* The attempt cut by the kill left no row; the one after it did. */
      g_assert_cmpuint (logged, >=, 1);
      if (received > 1)
        g_assert_cmpint (json_object_get_int_member (delivery, "attempts"), >, 1);
    }
}

static void
test_acknowledge (Fixture       *f,
                  gconstpointer  data)
{
  g_autofree char *url = tocsin_test_target_url (f->target, "/ack");
  g_autofree char *forwards = g_strdup_printf (
    "[{\"name\":\"silence\",\"event\":\"acknowledge\",\"url\":\"%s\",\"params\":["
    "{\"name\":\"user\",\"type\":\"text\",\"value\":\"{{user}}\"},"
    "{\"name\":\"action\",\"type\":\"text\",\"value\":\"{{action}}\"},"
    "{\"name\":\"status\",\"type\":\"text\",\"value\":\"{{status}}\"},"
    "{\"name\":\"record\",\"type\":\"text\",\"value\":\"{{record.id}}\"}]}]", url);
  g_autoptr(JsonObject) channel = create_channel (f, forwards);
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupWebsocketConnection) ws = NULL;
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) requests = NULL;
  g_autofree char *subscribe = NULL, *ack = NULL;
  g_autoptr(JsonObject) log = NULL;
  const char *body;

  ws = tocsin_test_websocket_connect (f->relay, "/v1/ws", &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (ws, frames);
  subscribe = g_strdup_printf ("{\"type\":\"subscribe\",\"token\":\"%s\",\"since\":null}",
                               json_object_get_string_member (channel, "subscribe_token"));
  soup_websocket_connection_send_text (ws, subscribe);
  TOCSIN_WAIT_UNTIL (frames->len >= 1);
  ring (f, channel, "firing");
  TOCSIN_WAIT_UNTIL (frames->len >= 2);
  /* A message event fires no acknowledge forward. */
  g_assert_cmpuint (tocsin_test_target_count_requests (f->target, "/ack"), ==, 0);

  ack = g_strdup_printf ("{\"type\":\"ack\",\"channel\":%" G_GINT64_FORMAT ",\"id\":1,"
                         "\"by\":\"Ada\"}", json_object_get_int_member (channel, "id"));
  soup_websocket_connection_send_text (ws, ack);
  /* Everyone is told who acknowledged; the forward fires. */
  TOCSIN_WAIT_UNTIL (frames->len >= 3);
  g_assert_nonnull (strstr (frames->pdata[2], "\"acknowledged\""));
  tocsin_test_target_wait_requests (f->target, 1, 20);
  requests = tocsin_test_target_get_requests (f->target, "/ack");
  body = tocsin_test_target_request_body (requests->pdata[0]);
  g_assert_nonnull (strstr (body, "\"user\":\"Ada\""));
  g_assert_nonnull (strstr (body, "\"action\":\"silence\""));
  g_assert_nonnull (strstr (body, "\"status\":\"firing\""));
  g_assert_nonnull (strstr (body, "\"record\":\"1\""));

  TOCSIN_WAIT_UNTIL (reached (f, channel, "delivered", 1));
  log = deliveries (f, channel);
  g_assert_cmpstr (json_object_get_string_member (
                     json_array_get_object_element (json_object_get_array_member (log,
                                                                                  "deliveries"),
                                                    0), "event"), ==, "acknowledge");
  soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
}

static void
test_cli (Fixture       *f,
          gconstpointer  data)
{
  g_autofree char *forwards = forwards_to (f, "/cli", "");
  g_autoptr(JsonObject) channel = create_channel (f, forwards);
  g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT,
                                         json_object_get_int_member (channel, "id"));
  g_autofree char *out = NULL, *err = NULL, *json_out = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *object;

  tocsin_test_target_push (f->target, "/cli", 503, "later", NULL);
  ring (f, channel, "firing");
  TOCSIN_WAIT_UNTIL (reached (f, channel, "delivered", 1));

  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &out, &err, "deliveries", "Alerts", NULL),
                   ==, 0);
  /* The table: a head, the 503 and the success, each with its forward and URL (no query). */
  g_assert_nonnull (strstr (out, "FORWARD"));
  g_assert_nonnull (strstr (out, "hook"));
  g_assert_nonnull (strstr (out, "/cli"));
  g_assert_null (strstr (out, "s3cr3t"));
  g_assert_nonnull (strstr (out, "#1 "));
  g_assert_nonnull (strstr (out, "503"));
  g_assert_nonnull (strstr (out, "#2 200 OK"));
  /* Newest first. */
  g_assert_true (strstr (out, "#2 200 OK") < strstr (out, "#1 "));

  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &json_out, NULL, "deliveries", id, "--json",
                                          "--limit", "10", NULL), ==, 0);
  g_assert_true (json_parser_load_from_data (parser, json_out, -1, NULL));
  object = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (object, "deliveries")),
                    ==, 1);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (object, "attempts")),
                    ==, 2);

  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &out, &err, "deliveries", "Nope", NULL),
                   !=, 0);
  g_assert_nonnull (strstr (err, "Nope"));
}

/* --forward-deny-private=yes: nothing reaches the target on 127.0.0.1; the log says why. */
static void
test_deny_private (Fixture       *f,
                   gconstpointer  data)
{
  const char *args[G_N_ELEMENTS (relay_args) + 1];
  g_autofree char *forwards = forwards_to (f, "/private", "");
  g_autoptr(JsonObject) channel = NULL;
  g_autoptr(JsonObject) log = NULL;
  JsonObject *attempt;

  for (guint i = 0; relay_args[i] != NULL; i++)
    args[i] = relay_args[i];
  args[G_N_ELEMENTS (relay_args) - 1] = "--forward-deny-private=yes";
  args[G_N_ELEMENTS (relay_args)] = NULL;
  tocsin_test_relay_free (f->relay);
  f->relay = tocsin_test_relay_start (NULL, args);
  channel = create_channel (f, forwards);

  ring (f, channel, "firing");
  TOCSIN_WAIT_UNTIL (reached (f, channel, "failed", 1));
  g_assert_cmpuint (tocsin_test_target_count_requests (f->target, "/private"), ==, 0);
  log = deliveries (f, channel);
  attempt = json_array_get_object_element (json_object_get_array_member (log, "attempts"), 0);
  g_assert_cmpint (json_object_get_int_member (attempt, "status"), ==, 0);
  g_assert_nonnull (strstr (json_object_get_string_member (attempt, "error"), "127.0.0.1"));
}

/* ---- the store's queue, directly ---- */

static void
commit_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  TocsinRelayCommit **out = user_data;
  g_autoptr(GError) error = NULL;

  *out = tocsin_relay_store_commit_finish (NULL, result, &error);
  g_assert_no_error (error);
}

static TocsinRelayCommit *
commit (TocsinRelayStore   *store,
        TocsinRelayChannel *channel,
        const char         *key_hash)
{
  g_autoptr(GArray) indices = g_array_new (FALSE, FALSE, sizeof (guint));
  TocsinRelayCommit *done = NULL;
  TocsinMessage *message = tocsin_message_new ();
  guint zero = 0;

  message->time_ms = g_get_real_time () / 1000;
  g_array_append_val (indices, zero);
  tocsin_relay_store_commit_with_forwards_async (store, channel->id, message, key_hash,
                                                 key_hash ? "content" : NULL, channel->forwards,
                                                 indices, commit_done, &done);
  TOCSIN_WAIT_UNTIL (done != NULL);
  return done;
}

/* Queued with the message, once (a duplicate queues nothing); the log and the finished
 * delivery are pruned past retention, a waiting one stays. */
static void
test_store_queue (void)
{
  g_autofree char *dir = tocsin_test_make_tmpdir ("forwards-store");
  g_autoptr(GError) error = NULL;
  TocsinRelayStore *store = tocsin_relay_store_open (dir, &error);
  TocsinRelayChannelSpec spec = {
    .name = "Q",
    .forwards = "[{\"name\":\"a\",\"url\":\"http://127.0.0.1:9/a\"}]",
  };
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(TocsinRelayCommit) first = NULL, again = NULL, other = NULL;
  g_autoptr(GPtrArray) due = NULL;
  g_autoptr(JsonObject) log = NULL;
  TocsinRelayAttemptRecord record = { .attempt = 1, .url = "http://127.0.0.1:9/a",
                                      .status = 200, .outcome = "success" };
  TocsinRelayDelivery *delivery;
  gint64 now = g_get_real_time () / 1000;
  guint attempt = 0;
  gint64 id;

  g_assert_no_error (error);
  tocsin_relay_store_set_retention (store, 60);
  channel = tocsin_relay_store_create_channel (store, &spec, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (channel->forwards->len, ==, 1);

  first = commit (store, channel, "key");
  again = commit (store, channel, "key");
  g_assert_true (again->duplicate);
  other = commit (store, channel, NULL);
  due = tocsin_relay_store_due_deliveries (store, now + 1000, 100, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (due->len, ==, 2);
  delivery = due->pdata[0];
  g_assert_cmpint (delivery->message_id, ==, first->id);
  g_assert_true (g_str_has_prefix (delivery->webhook_id, "msg_"));
  g_assert_cmpstr (delivery->webhook_id, !=, ((TocsinRelayDelivery *) due->pdata[1])->webhook_id);
  g_assert_nonnull (delivery->message);
  id = delivery->id;

  /* Started: in flight, so not due; after a crash, due again. */
  g_assert_true (tocsin_relay_store_start_attempt (store, id, &attempt, &error));
  g_assert_cmpuint (attempt, ==, 1);
  /* Started once: a second start (another process on the data dir) is refused. */
  g_assert_false (tocsin_relay_store_start_attempt (store, id, &attempt, &error));
  g_assert_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_clear_pointer (&due, g_ptr_array_unref);
  due = tocsin_relay_store_due_deliveries (store, now + 1000, 100, &error);
  g_assert_cmpuint (due->len, ==, 1);
  g_assert_cmpuint (tocsin_relay_store_recover_deliveries (store, now, &error), ==, 1);
  g_assert_no_error (error);
  tocsin_relay_store_start_attempt (store, id, &attempt, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (attempt, ==, 2);
  record.at_ms = now;
  record.attempt = attempt;
  g_assert_true (tocsin_relay_store_finish_attempt (store, id, &record,
                                                    TOCSIN_RELAY_DELIVERY_DELIVERED, 0, &error));
  log = tocsin_relay_store_list_deliveries (store, channel->id, 100, &error);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (log, "deliveries")), ==,
                    2);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (log, "attempts")), ==,
                    1);

  /* Two hours on: the delivered one and its attempt are gone; the waiting one stays. */
  g_assert_true (tocsin_relay_store_prune (store, now + 2 * 3600 * 1000, &error));
  g_clear_pointer (&log, json_object_unref);
  log = tocsin_relay_store_list_deliveries (store, channel->id, 100, &error);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (log, "deliveries")), ==,
                    1);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (log, "attempts")), ==,
                    0);
  g_assert_cmpstr (json_object_get_string_member (
                     json_array_get_object_element (json_object_get_array_member (log,
                                                                                  "deliveries"),
                                                    0), "state"), ==, "pending");

  g_clear_pointer (&channel, tocsin_relay_channel_unref);
  tocsin_relay_store_free (store);
  tocsin_test_rmdir_recursive (dir);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/relay/forwards/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("webhook", test_webhook);
  ADD ("retry-after", test_retry_after);
  ADD ("backoff", test_backoff);
  ADD ("timeout", test_timeout);
  ADD ("held", test_held);
  ADD ("policy-none-and-retry", test_policy_none);
  ADD ("condition", test_condition);
  ADD ("bad-definition", test_bad_definition);
  ADD ("edit", test_edit);
  ADD ("kill", test_kill);
  ADD ("acknowledge", test_acknowledge);
  ADD ("cli", test_cli);
  ADD ("deny-private", test_deny_private);
#undef ADD
  g_test_add_func ("/relay/forwards/store-queue", test_store_queue);
  return g_test_run ();
}
