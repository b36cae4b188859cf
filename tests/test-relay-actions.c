/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-actions.c: a message's action buttons on the real relay (docs/actions.md). A
 * channel's "actions" definitions, saved through the owner API, are rendered into each message
 * with the webhook's variables; ntfy senders' actions become message actions too. A subscriber
 * on the channel's WebSocket checks what reaches the desktop.
 */
#define G_LOG_DOMAIN "test-relay-actions"

#include "config.h"

#include <string.h>

#include "tocsin-message.h"
#include "tocsin-test-relay.h"

typedef struct
{
  TocsinTestRelay         *relay;
  JsonObject              *channel;    /* the owner view, owner_key included */
  SoupWebsocketConnection *ws;
  GPtrArray               *frames;
  char                    *log_path;   /* the relay's stderr, with its debug messages */
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->relay = tocsin_test_relay_new (NULL, data);
  f->log_path = g_build_filename (f->relay->data_dir, "relay.log", NULL);
  f->relay->stderr_path = g_strdup (f->log_path);
  g_setenv ("G_MESSAGES_DEBUG", "tocsin-relay", TRUE);
  tocsin_test_relay_spawn (f->relay);
  g_unsetenv ("G_MESSAGES_DEBUG");
  f->frames = g_ptr_array_new_with_free_func (g_free);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  if (f->ws != NULL && soup_websocket_connection_get_state (f->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (f->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  g_clear_object (&f->ws);
  g_clear_pointer (&f->frames, g_ptr_array_unref);
  g_clear_pointer (&f->channel, json_object_unref);
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
  g_free (f->log_path);
}

/* An owner API request with the channel's owner key (when there is a channel) that must answer
 * @expected; returns the answer's object. */
static JsonObject *
call (Fixture    *f,
      const char *method,
      const char *path,
      const char *body,
      guint       expected)
{
  g_autofree char *auth = NULL;
  const char *headers[] = { "Authorization", NULL, NULL };
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  if (f->channel != NULL)
    headers[1] = auth = g_strdup_printf ("Bearer %s",
                                         json_object_get_string_member (f->channel,
                                                                        "owner_key"));
  node = tocsin_test_http_json (f->relay, method, path, body ? "application/json" : NULL, body,
                                auth ? headers : NULL, &status);
  if (status != expected)
    {
      g_autofree char *text = json_to_string (node, FALSE);

      g_error ("%s %s: expected %u, got %u: %s", method, path, expected, status, text);
    }
  g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
  return json_object_ref (json_node_get_object (node));
}

static char *
channel_path (Fixture *f)
{
  return g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT,
                          json_object_get_int_member (f->channel, "id"));
}

/* Creates channel "Alerts" from @spec_members (JSON members after the name, or NULL) and
 * subscribes to it. */
static void
create_and_subscribe (Fixture    *f,
                      const char *spec_members)
{
  g_autofree char *body = g_strdup_printf ("{\"name\": \"Alerts\"%s%s}",
                                           spec_members ? ", " : "",
                                           spec_members ? spec_members : "");
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;

  f->channel = call (f, "POST", "/v1/channels", body, 201);
  path = g_strdup_printf ("/s/%s/ws",
                          json_object_get_string_member (f->channel, "subscribe_token"));
  f->ws = tocsin_test_websocket_connect (f->relay, path, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (f->ws, f->frames);
}

static guint
count_messages (Fixture *f)
{
  guint n = 0;

  for (guint i = 0; i < f->frames->len; i++)
    {
      const char *frame = f->frames->pdata[i];
      g_autoptr(TocsinMessage) message = tocsin_message_new_from_data (frame, strlen (frame),
                                                                       NULL);

      n += message != NULL;
    }
  return n;
}

/* The @n-th message frame (0-based) the subscriber received, once it has arrived. */
static TocsinMessage *
received (Fixture *f,
          guint    n)
{
  TOCSIN_WAIT_UNTIL (count_messages (f) > n);
  for (guint i = 0, seen = 0; i < f->frames->len; i++)
    {
      const char *frame = f->frames->pdata[i];
      TocsinMessage *message = tocsin_message_new_from_data (frame, strlen (frame), NULL);

      if (message != NULL && seen++ == n)
        return message;
      g_clear_pointer (&message, tocsin_message_free);
    }
  g_assert_not_reached ();
  return NULL;
}

static guint
post_json (Fixture    *f,
           const char *path,
           const char *body,
           const char * const *headers)
{
  return tocsin_test_http (f->relay, "POST", path, "application/json", body, -1, headers, NULL,
                           NULL);
}

static guint
ring (Fixture    *f,
      const char *body)
{
  g_autofree char *path = g_strdup_printf ("/t/%s", json_object_get_string_member (f->channel,
                                                                                "trigger_token"));

  return post_json (f, path, body, NULL);
}

static const char *
header (const TocsinMessageAction *action,
        const char                *name)
{
  for (guint i = 0; action->headers != NULL && action->headers[i] != NULL; i += 2)
    if (g_ascii_strcasecmp (action->headers[i], name) == 0)
      return action->headers[i + 1];
  return NULL;
}

static const TocsinMessageAction *
action_at (TocsinMessage *m,
           guint          i)
{
  g_assert_cmpuint (m->actions->len, >, i);
  return m->actions->pdata[i];
}

#define ACTIONS \
  "\"actions\": [" \
  "{\"name\": \"Open runbook\", \"kind\": \"view\"," \
  " \"url\": \"https://runbooks.example/{{service}}?alert={{alert}}\"}," \
  "{\"name\": \"Silence 1 h\", \"kind\": \"http\", \"method\": \"PUT\"," \
  " \"url\": \"https://am.example/api/v2/silences/{{alert}}\"," \
  " \"headers\": {\"Authorization\": \"Bearer {{key}}\"}," \
  " \"format\": \"raw\", \"body\": \"{\\\"alert\\\": \\\"{{alert}}\\\", " \
  "\\\"channel\\\": \\\"{{channel.name}}\\\"}\", \"policy\": \"retry\"}," \
  "{\"name\": \"Page the DBA\", \"kind\": \"view\"," \
  " \"condition\": \"severity == 'critical'\"," \
  " \"url\": \"https://pager.example/dba\"}]"

/* A view and an http action rendered with the webhook's variables; a false condition leaves its
 * action out; the owner view shows the definitions. */
static void
test_channel_actions (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(TocsinMessage) first = NULL, second = NULL;
  g_autoptr(JsonObject) shown = NULL;
  g_autofree char *path = NULL;
  const TocsinMessageAction *view, *http;
  JsonArray *definitions;

  create_and_subscribe (f, ACTIONS);
  definitions = json_object_get_array_member (f->channel, "actions");
  g_assert_cmpuint (json_array_get_length (definitions), ==, 3);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (definitions, 1),
                                                  "name"), ==, "Silence 1 h");
  /* Normalised: the defaults are filled in. */
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (definitions, 0),
                                                  "event"), ==, "message");
  path = channel_path (f);
  shown = call (f, "GET", path, NULL, 200);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (shown, "actions")), ==,
                    3);

  g_assert_cmpuint (ring (f, "{\"service\": \"db\", \"alert\": \"disk-full\", \"key\": \"k1\","
                             " \"severity\": \"warning\"}"), ==, 200);
  first = received (f, 0);
  g_assert_cmpuint (first->actions->len, ==, 2);
  view = action_at (first, 0);
  g_assert_cmpstr (view->kind, ==, "view");
  g_assert_cmpstr (view->label, ==, "Open runbook");
  g_assert_cmpstr (view->url, ==, "https://runbooks.example/db?alert=disk-full");
  http = action_at (first, 1);
  g_assert_cmpstr (http->kind, ==, "http");
  g_assert_cmpstr (http->label, ==, "Silence 1 h");
  g_assert_cmpstr (http->method, ==, "PUT");
  g_assert_cmpstr (http->url, ==, "https://am.example/api/v2/silences/disk-full");
  g_assert_cmpstr (header (http, "Authorization"), ==, "Bearer k1");
  g_assert_cmpstr (http->body, ==, "{\"alert\": \"disk-full\", \"channel\": \"Alerts\"}");
  g_assert_true (http->retry);

  /* The condition is true now: the third action is there, after the others. */
  g_assert_cmpuint (ring (f, "{\"service\": \"db\", \"alert\": \"disk-full\", \"key\": \"k1\","
                             " \"severity\": \"critical\"}"), ==, 200);
  second = received (f, 1);
  g_assert_cmpuint (second->actions->len, ==, 3);
  g_assert_cmpstr (action_at (second, 2)->label, ==, "Page the DBA");
  g_assert_cmpstr (action_at (second, 2)->url, ==, "https://pager.example/dba");
}

/* An action that renders to something unusable is left out; the webhook still succeeds; the log
 * says so without the value. */
static void
test_render_error (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(TocsinMessage) m = NULL;
  g_autofree char *log = NULL;

  create_and_subscribe (f, "\"actions\": ["
                           "{\"name\": \"Open\", \"kind\": \"view\", \"url\": \"{{link}}\"},"
                           "{\"name\": \"Ack\", \"url\": \"https://ack.example/{{id}}\"}]");
  g_assert_cmpuint (ring (f, "{\"link\": \"javascript:alert(1)\", \"id\": \"7\"}"), ==, 200);
  m = received (f, 0);
  g_assert_cmpuint (m->actions->len, ==, 1);
  g_assert_cmpstr (action_at (m, 0)->label, ==, "Ack");
  g_assert_cmpstr (action_at (m, 0)->url, ==, "https://ack.example/7");
  g_assert_cmpstr (action_at (m, 0)->method, ==, "POST");

  tocsin_test_relay_stop (f->relay, FALSE);
  g_assert_true (g_file_get_contents (f->log_path, &log, NULL, NULL));
  g_assert_nonnull (strstr (log, "its action 0 was left out"));
  g_assert_null (strstr (log, "javascript"));
}

static void
assert_refused (Fixture    *f,
                const char *method,
                const char *path,
                const char *body,
                const char *expect_a,
                const char *expect_b)
{
  g_autoptr(JsonObject) answer = call (f, method, path, body, 400);
  const char *sentence = json_object_get_string_member (answer, "error");

  if (strstr (sentence, expect_a) == NULL || (expect_b && strstr (sentence, expect_b) == NULL))
    g_error ("“%s” does not name %s %s", sentence, expect_a, expect_b ? expect_b : "");
}

/* A bad definition is refused with a sentence that names the field and the column; nothing is
 * changed; [] removes the actions. */
static void
test_bad_definition (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(JsonObject) cleared = NULL, shown = NULL;
  g_autofree char *path = NULL;

  assert_refused (f, "POST", "/v1/channels",
                  "{\"name\": \"A\", \"actions\": [{\"name\": \"Open\", \"kind\": \"view\","
                  " \"url\": \"https://x.example/{{service\"}]}", "actions[0].url", "column");
  create_and_subscribe (f, "\"actions\": [{\"name\": \"Open\", \"kind\": \"view\","
                           " \"url\": \"https://x.example/\"}]");
  path = channel_path (f);
  assert_refused (f, "PATCH", path,
                  "{\"actions\": [{\"name\": \"Ok\", \"url\": \"https://x.example/\"},"
                  " {\"name\": \"Bad\", \"url\": \"https://x.example/\","
                  " \"headers\": {\"X-Key\": \"{{ 1 + }}\"}}]}", "actions[1].headers", "column");
  assert_refused (f, "PATCH", path,
                  "{\"actions\": [{\"name\": \"Ack\", \"event\": \"acknowledge\","
                  " \"url\": \"https://x.example/\"}]}", "actions[0].event", NULL);
  assert_refused (f, "PATCH", path,
                  "{\"actions\": [{\"name\": \"a\", \"url\": \"https://x.example/\"},"
                  " {\"name\": \"b\", \"url\": \"https://x.example/\"},"
                  " {\"name\": \"c\", \"url\": \"https://x.example/\"},"
                  " {\"name\": \"d\", \"url\": \"https://x.example/\"}]}", "actions", NULL);
  assert_refused (f, "PATCH", path, "{\"actions\": {\"name\": \"a\"}}", "actions", NULL);

  /* Nothing was changed by the refusals. */
  shown = call (f, "GET", path, NULL, 200);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (shown, "actions")), ==,
                    1);
  cleared = call (f, "PATCH", path, "{\"actions\": []}", 200);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (cleared, "actions")),
                    ==, 0);
}

/* ntfy's actions, in the simple header form and in the JSON form, become message actions;
 * broadcast (Android's) is dropped. */
static void
test_ntfy (Fixture       *f,
           gconstpointer  data)
{
  g_autoptr(TocsinMessage) simple = NULL, json = NULL, broadcast = NULL;
  g_autofree char *topic = NULL, *body = NULL;
  const char *token;
  const TocsinMessageAction *a;

  create_and_subscribe (f, NULL);
  token = json_object_get_string_member (f->channel, "trigger_token");
  topic = g_strdup_printf ("/%s", token);

  {
    const char *headers[] = {
      "X-Actions", "view, Open, https://home.example/door; "
                   "http, Ack, https://api.example/ack, method=PUT, body={\"a\":1}, "
                   "headers.X-Token=t1, clear=true",
      NULL
    };

    g_assert_cmpuint (tocsin_test_http (f->relay, "POST", topic, "text/plain", "Door", -1,
                                        headers, NULL, NULL), ==, 200);
  }
  simple = received (f, 0);
  g_assert_cmpuint (simple->actions->len, ==, 2);
  a = action_at (simple, 0);
  g_assert_cmpstr (a->kind, ==, "view");
  g_assert_cmpstr (a->label, ==, "Open");
  g_assert_cmpstr (a->url, ==, "https://home.example/door");
  a = action_at (simple, 1);
  g_assert_cmpstr (a->kind, ==, "http");
  g_assert_cmpstr (a->label, ==, "Ack");
  g_assert_cmpstr (a->method, ==, "PUT");
  g_assert_cmpstr (a->url, ==, "https://api.example/ack");
  g_assert_cmpstr (a->body, ==, "{\"a\":1}");
  g_assert_cmpstr (header (a, "X-Token"), ==, "t1");
  g_assert_true (a->clear);
  g_assert_false (a->retry);
  /* The variable stays as it was, for templates. */
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (simple->vars,
                                                                          "actions")), ==, 2);

  body = g_strdup_printf ("{\"topic\": \"%s\", \"message\": \"Deploy?\", \"actions\": ["
                          "{\"action\": \"http\", \"label\": \"Approve\","
                          " \"url\": \"https://ci.example/approve\","
                          " \"headers\": {\"Authorization\": \"Bearer ci\"}}]}", token);
  g_assert_cmpuint (post_json (f, "/", body, NULL), ==, 200);
  json = received (f, 1);
  g_assert_cmpuint (json->actions->len, ==, 1);
  a = action_at (json, 0);
  g_assert_cmpstr (a->method, ==, "POST");
  g_assert_cmpstr (a->url, ==, "https://ci.example/approve");
  g_assert_cmpstr (header (a, "Authorization"), ==, "Bearer ci");
  g_assert_null (a->body);
  g_assert_false (a->clear);

  /* What no desktop would take is left out (a control character in a header's value: found by
   * fuzz-compat); a label's line break becomes a space. */
  g_clear_pointer (&body, g_free);
  body = g_strdup_printf ("{\"topic\": \"%s\", \"message\": \"Odd\", \"actions\": ["
                          "{\"action\": \"http\", \"label\": \"Bad\","
                          " \"url\": \"https://ci.example/\", \"headers\": {\"X\": \"a\\u001eb\"}},"
                          "{\"action\": \"view\", \"label\": \"Two\\nlines\","
                          " \"url\": \"https://ci.example/\"}]}", token);
  g_assert_cmpuint (post_json (f, "/", body, NULL), ==, 200);
  {
    g_autoptr(TocsinMessage) odd = received (f, 2);

    g_assert_cmpuint (odd->actions->len, ==, 1);
    g_assert_cmpstr (action_at (odd, 0)->label, ==, "Two lines");
  }

  {
    const char *headers[] = {
      "X-Actions", "broadcast, Take picture, extras.cmd=pic; view, Camera, https://cam.example/",
      NULL
    };

    g_assert_cmpuint (tocsin_test_http (f->relay, "POST", topic, "text/plain", "Cam", -1,
                                        headers, NULL, NULL), ==, 200);
  }
  broadcast = received (f, 3);
  g_assert_cmpuint (broadcast->actions->len, ==, 1);
  g_assert_cmpstr (action_at (broadcast, 0)->label, ==, "Camera");

  /* What a desktop cannot use is left out (an unsafe link, a PATCH); a long label is cut to 64
   * characters; the message still rings. */
  {
    const char *headers[] = {
      "X-Actions", "view, Bad, javascript:alert(1); http, Patch, https://x.example/, method=PATCH; "
                   "view, Ünïcödé label that goes on and on well past sixty-four characters ok, "
                   "https://long.example/",
      NULL
    };
    g_autoptr(TocsinMessage) unusable = NULL;
    const char *label;

    g_assert_cmpuint (tocsin_test_http (f->relay, "POST", topic, "text/plain", "Odd", -1,
                                        headers, NULL, NULL), ==, 200);
    unusable = received (f, 4);
    g_assert_cmpuint (unusable->actions->len, ==, 1);
    label = action_at (unusable, 0)->label;
    g_assert_cmpuint (g_utf8_strlen (label, -1), ==, 64);
    g_assert_true (g_str_has_prefix (label, "Ünïcödé label that goes on"));
    g_assert_cmpstr (action_at (unusable, 0)->url, ==, "https://long.example/");
  }
}

/* At most three buttons: the channel's first, then the sender's. */
static void
test_at_most_three (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(TocsinMessage) m = NULL;
  g_autofree char *topic = NULL;
  const char *headers[] = {
    "X-Actions", "view, S1, https://s.example/1; view, S2, https://s.example/2; "
                 "view, S3, https://s.example/3",
    NULL
  };

  create_and_subscribe (f, "\"actions\": ["
                           "{\"name\": \"C1\", \"kind\": \"view\","
                           " \"url\": \"https://c.example/1\"},"
                           "{\"name\": \"C2\", \"kind\": \"view\","
                           " \"url\": \"https://c.example/2\"}]");
  topic = g_strdup_printf ("/%s", json_object_get_string_member (f->channel, "trigger_token"));
  g_assert_cmpuint (tocsin_test_http (f->relay, "POST", topic, "text/plain", "Hi", -1, headers,
                                      NULL, NULL), ==, 200);
  m = received (f, 0);
  g_assert_cmpuint (m->actions->len, ==, 3);
  g_assert_cmpstr (action_at (m, 0)->label, ==, "C1");
  g_assert_cmpstr (action_at (m, 1)->label, ==, "C2");
  g_assert_cmpstr (action_at (m, 2)->label, ==, "S1");
}

/* The email trigger renders a channel's buttons as a webhook does, over the mail's variables. */
static void
test_mail (Fixture       *f,
           gconstpointer  data)
{
  g_autofree char *script = g_test_build_filename (G_TEST_DIST, "smtp-send.py", NULL);
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-actions-mail");
  g_autofree char *file = g_build_filename (dir, "message.eml", NULL);
  g_autofree char *port = NULL, *to = NULL, *message_arg = NULL, *out = NULL, *err = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(TocsinMessage) m = NULL;
  g_autoptr(GError) error = NULL;

  create_and_subscribe (f, "\"actions\": [{\"name\": \"Open build\", \"kind\": \"view\","
                           " \"url\": \"https://ci.example/{{subject[6]}}{{subject[7]}}\"}]");
  g_assert_true (g_file_set_contents (file, "From: ci@example.org\r\nTo: x@example.org\r\n"
                                            "Subject: Build 42 failed\r\n\r\nRed.\r\n", -1,
                                      &error));
  port = g_strdup_printf ("--port=%u", f->relay->smtp_port);
  to = g_strdup_printf ("--to=%s", json_object_get_string_member (f->channel, "email_address"));
  message_arg = g_strdup_printf ("--message=%s", file);
  process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                              &error, "/usr/bin/python3", script, port, to, message_arg, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);
  tocsin_test_rmdir_recursive (dir);

  m = received (f, 0);
  g_assert_cmpuint (m->actions->len, ==, 1);
  g_assert_cmpstr (action_at (m, 0)->url, ==, "https://ci.example/42");
}

/* A Direct key's inbox has no templates, so no buttons: refused with a sentence. */
static void
test_direct_refused (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(JsonObject) refused = NULL;
  g_autofree char *path = NULL;

  f->channel = call (f, "POST", "/v1/direct", NULL, 201);
  path = channel_path (f);
  refused = call (f, "PATCH", path, "{\"actions\": [{\"name\": \"Open\", \"kind\": \"view\","
                                    " \"url\": \"https://x.example/\"}]}", 400);
  g_assert_nonnull (strstr (json_object_get_string_member (refused, "error"), "Direct"));
}

/* The CLI takes the definitions from a file and shows them. */
static void
test_cli (Fixture       *f,
          gconstpointer  data)
{
  g_autofree char *file = g_build_filename (f->relay->data_dir, "actions.json", NULL);
  g_autofree char *out = NULL, *err = NULL, *arg = g_strdup_printf ("--actions=%s", file);
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;
  JsonArray *actions;

  g_assert_true (g_file_set_contents (file, "[{\"name\": \"Open\", \"kind\": \"view\","
                                            " \"url\": \"https://x.example/{{a}}\"}]", -1,
                                      &error));
  g_assert_no_error (error);
  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &out, &err, "channel", "create", "--json",
                                          "--name=Cli", arg, NULL), ==, 0);
  root = json_from_string (out, &error);
  g_assert_no_error (error);
  actions = json_object_get_array_member (json_node_get_object (root), "actions");
  g_assert_cmpuint (json_array_get_length (actions), ==, 1);

  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_true (g_file_set_contents (file, "[{\"name\": \"Open\", \"url\": \"{{ a +\"}]", -1,
                                      &error));
  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &out, &err, "channel", "create",
                                          "--name=Bad", arg, NULL), !=, 0);
  g_assert_nonnull (strstr (err, "actions[0].url"));
}

static const char * const mail_args[] = {
  "--smtp-listen=127.0.0.1:0", "--mail-domain=mail.example", NULL
};

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/relay/actions/channel", test_channel_actions);
  ADD ("/relay/actions/render-error", test_render_error);
  ADD ("/relay/actions/bad-definition", test_bad_definition);
  ADD ("/relay/actions/ntfy", test_ntfy);
  ADD ("/relay/actions/at-most-three", test_at_most_three);
  ADD ("/relay/actions/cli", test_cli);
  ADD ("/relay/actions/direct-refused", test_direct_refused);
#undef ADD
  g_test_add ("/relay/actions/mail", Fixture, mail_args, fixture_setup, test_mail,
              fixture_teardown);

  return g_test_run ();
}
