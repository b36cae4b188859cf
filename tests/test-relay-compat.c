/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-compat.c: ntfy- and Gotify-compatible publishing on the real relay, with the real
 * senders: the curl lines of ntfy's publishing docs (docs.ntfy.sh/publish) run by curl itself,
 * and Debian's apprise with ntfy:// and gotify:// URLs. A subscriber on the channel's stream
 * checks what rang: title, body, link, how it rings, Markdown, and the template variables.
 */
#define G_LOG_DOMAIN "test-relay-compat"

#include "config.h"

#include <string.h>
#include <glib/gstdio.h>

#include "tocsin-message.h"
#include "tocsin-test-relay.h"

#define APPRISE "/usr/bin/apprise"

typedef struct
{
  TocsinTestRelay         *relay;
  JsonObject              *channel;
  const char              *token;      /* the trigger token (in channel) */
  char                    *log_path;   /* the relay's stderr, with every debug message */
  SoupWebsocketConnection *ws;
  GPtrArray               *frames;
} Fixture;

static void
subscribe (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_strdup_printf ("/s/%s/ws",
                                           json_object_get_string_member (f->channel,
                                                                          "subscribe_token"));

  f->frames = g_ptr_array_new_with_free_func (g_free);
  f->ws = tocsin_test_websocket_connect (f->relay, path, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (f->ws, f->frames);
}

/* A relay whose log holds every debug message, and a channel "Backups" with the templates in
 * @data (NULL: none), subscribed to. */
static void
setup_with (Fixture            *f,
            const char * const *args,
            const char * const *templates)
{
  f->relay = tocsin_test_relay_new (NULL, args);
  f->log_path = g_build_filename (f->relay->data_dir, "relay.log", NULL);
  f->relay->stderr_path = g_strdup (f->log_path);
  g_setenv ("G_MESSAGES_DEBUG", "tocsin-relay", TRUE);   /* the relay's one domain */
  tocsin_test_relay_spawn (f->relay);
  g_unsetenv ("G_MESSAGES_DEBUG");
  f->channel = tocsin_test_relay_create_channel (f->relay, "Backups",
                                                 templates ? templates[0] : NULL,
                                                 templates ? templates[1] : NULL,
                                                 templates ? templates[2] : NULL,
                                                 templates ? templates[3] : NULL);
  f->token = json_object_get_string_member (f->channel, "trigger_token");
  subscribe (f);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  setup_with (f, NULL, data);
}

static void
fixture_setup_rate (Fixture       *f,
                    gconstpointer  data)
{
  static const char * const args[] = { "--rate=0.01", "--burst=2", "--max-body=1K", NULL };

  setup_with (f, args, NULL);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_autofree char *log = NULL;

  if (f->ws != NULL && soup_websocket_connection_get_state (f->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (f->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  g_clear_object (&f->ws);
  g_clear_pointer (&f->frames, g_ptr_array_unref);
  tocsin_test_relay_stop (f->relay, FALSE);
  /* Whatever the test did, the relay logged no trigger token. */
  g_assert_true (g_file_get_contents (f->log_path, &log, NULL, NULL));
  g_assert_null (strstr (log, f->token));
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
  g_clear_pointer (&f->channel, json_object_unref);
  g_free (f->log_path);
}

/* The message frames the subscriber has received so far (other frames skipped). */
static GPtrArray *
messages (Fixture *f)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) tocsin_message_free);

  for (guint i = 0; i < f->frames->len; i++)
    {
      const char *frame = f->frames->pdata[i];
      TocsinMessage *message = tocsin_message_new_from_data (frame, strlen (frame), NULL);

      if (message != NULL)
        g_ptr_array_add (out, message);
    }
  return out;
}

static guint
count_received (Fixture *f)
{
  g_autoptr(GPtrArray) all = messages (f);

  return all->len;
}

/* The @n-th message the subscriber received (0-based), once it has arrived. */
static TocsinMessage *
received (Fixture *f,
          guint    n)
{
  g_autoptr(GPtrArray) all = NULL;

  TOCSIN_WAIT_UNTIL (count_received (f) > n);
  all = messages (f);
  return g_ptr_array_steal_index (all, n);
}

static JsonObject *
parse_object (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

/* Runs curl with @args (NULL-terminated; "URL/" at the start of an argument is the relay's base
 * URL and "TOKEN" anywhere the trigger token), -sS and -w "\n%{http_code}"; returns the body's
 * JSON object and sets *status. */
static JsonObject *
curl (Fixture            *f,
      guint              *status,
      const char * const *args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;
  int wait_status = 0;
  char *last;

  g_ptr_array_add (argv, g_strdup ("curl"));
  g_ptr_array_add (argv, g_strdup ("-sS"));
  g_ptr_array_add (argv, g_strdup ("-w"));
  g_ptr_array_add (argv, g_strdup ("\n%{http_code}"));
  for (guint i = 0; args[i]; i++)
    {
      g_autofree char *arg = NULL;
      GString *s = g_string_new (args[i]);

      if (g_str_has_prefix (s->str, "URL/"))
        g_string_replace (s, "URL", f->relay->base_url, 1);
      g_string_replace (s, "TOKEN", f->token, 0);
      g_ptr_array_add (argv, g_string_free (s, FALSE));
    }
  g_ptr_array_add (argv, NULL);

  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                &wait_status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (wait_status, NULL));
  last = strrchr (out, '\n');
  g_assert_nonnull (last);
  *last = '\0';
  *status = (guint) g_ascii_strtoull (last + 1, NULL, 10);
  return parse_object (out);
}

#define CURL(f, status, ...) curl ((f), (status), (const char * const[]) { __VA_ARGS__, NULL })

static gboolean
have (const char *program)
{
  g_autofree char *path = g_find_program_in_path (program);

  return path != NULL;
}

static const char *
var_string (TocsinMessage *message,
            const char    *name)
{
  return json_object_get_string_member_with_default (message->vars, name, NULL);
}

/* ---- ntfy ------------------------------------------------------------------------------ */

/* Every curl line of docs.ntfy.sh/publish that a channel can take, as it is written there, with
 * the topic swapped for the trigger token. A channel without templates shows what they said. */
static void
test_ntfy_docs (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(JsonObject) reply = NULL;
  g_autoptr(TocsinMessage) m = NULL;
  JsonArray *actions;
  guint status = 0;
  guint n = 0;

  if (!have ("curl"))
    {
      g_test_skip ("curl is not installed");
      return;
    }

  reply = CURL (f, &status, "-d", "Backup successful 😀", "URL/TOKEN");
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (json_object_get_string_member (reply, "event"), ==, "message");
  g_assert_cmpstr (json_object_get_string_member (reply, "topic"), ==, f->token);
  g_assert_cmpstr (json_object_get_string_member (reply, "message"), ==, "Backup successful 😀");
  g_assert_cmpstr (json_object_get_string_member (reply, "id"), ==, "1");
  g_assert_true (json_object_has_member (reply, "time"));
  g_assert_true (json_object_has_member (reply, "expires"));
  g_assert_false (json_object_has_member (reply, "title"));
  m = received (f, n++);
  g_assert_cmpstr (m->title, ==, "Backups");   /* no title: the channel's name, as ntfy's topic */
  g_assert_cmpstr (m->body, ==, "Backup successful 😀");
  g_assert_cmpint (m->type, ==, TOCSIN_MESSAGE_TYPE_DEFAULT);
  g_assert_false (m->markdown);
  g_clear_pointer (&m, tocsin_message_free);
  g_clear_pointer (&reply, json_object_unref);

  reply = CURL (f, &status, "-H", "Title: Unauthorized access detected", "-H", "Priority: urgent",
                "-H", "Tags: warning,skull",
                "-d", "Remote access to phils-laptop detected. Act right away.", "URL/TOKEN");
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (json_object_get_string_member (reply, "title"), ==,
                   "Unauthorized access detected");
  g_assert_cmpint (json_object_get_int_member (reply, "priority"), ==, 5);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (reply, "tags")), ==, 2);
  m = received (f, n++);
  g_assert_cmpstr (m->title, ==, "⚠️ 💀 Unauthorized access detected");
  g_assert_cmpstr (m->body, ==, "Remote access to phils-laptop detected. Act right away.");
  g_assert_cmpint (m->type, ==, TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE);
  g_assert_cmpint (json_object_get_int_member (m->vars, "priority"), ==, 5);
  g_assert_cmpstr (var_string (m, "emoji"), ==, "⚠️ 💀");
  g_clear_pointer (&m, tocsin_message_free);
  g_clear_pointer (&reply, json_object_unref);

  /* The three spellings of a title. */
  for (guint i = 0; i < 3; i++)
    {
      static const char * const headers[] = { "X-Title: Dogs are better than cats",
                                              "Title: Dogs are better than cats",
                                              "t: Dogs are better than cats" };

      reply = CURL (f, &status, "-H", headers[i], "-d", "Oh my ...", "URL/TOKEN");
      g_assert_cmpuint (status, ==, 200);
      g_clear_pointer (&reply, json_object_unref);
      m = received (f, n++);
      g_assert_cmpstr (m->title, ==, "Dogs are better than cats");
      g_assert_cmpstr (m->body, ==, "Oh my ...");
      g_clear_pointer (&m, tocsin_message_free);
    }

  /* Priorities: 4 and 5 ring as time-sensitive, the others as the subscriber chose. */
  {
    static const char * const headers[] = { "X-Priority: 5", "Priority: low", "p:4" };
    static const TocsinMessageType types[] = { TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE,
                                               TOCSIN_MESSAGE_TYPE_DEFAULT,
                                               TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE };
    static const gint64 numbers[] = { 5, 2, 4 };

    for (guint i = 0; i < 3; i++)
      {
        reply = CURL (f, &status, "-H", headers[i], "-d", "An urgent message", "URL/TOKEN");
        g_assert_cmpuint (status, ==, 200);
        g_clear_pointer (&reply, json_object_unref);
        m = received (f, n++);
        g_assert_cmpint (m->type, ==, types[i]);
        g_assert_cmpint (json_object_get_int_member (m->vars, "priority"), ==, numbers[i]);
        g_clear_pointer (&m, tocsin_message_free);
      }
  }

  /* Tags without a title: the emoji go before the message; every tag stays a variable. */
  reply = CURL (f, &status, "-H", "X-Tags: warning,mailsrv13,daily-backup",
                "-d", "Backup of mailsrv13 failed", "URL/TOKEN");
  g_assert_cmpuint (status, ==, 200);
  g_clear_pointer (&reply, json_object_unref);
  m = received (f, n++);
  g_assert_cmpstr (m->title, ==, "Backups");
  g_assert_cmpstr (m->body, ==, "⚠️ Backup of mailsrv13 failed");
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (m->vars, "tags")), ==,
                    3);
  g_clear_pointer (&m, tocsin_message_free);
  reply = CURL (f, &status, "-H", "ta:dog", "-d", "Dogs are awesome", "URL/TOKEN");
  g_clear_pointer (&reply, json_object_unref);
  m = received (f, n++);
  g_assert_cmpstr (m->body, ==, "🐶 Dogs are awesome");
  g_clear_pointer (&m, tocsin_message_free);

  /* Click is the link; Attach, Email are ignored politely; the action is a variable. */
  reply = CURL (f, &status, "-H", "Click: https://home.nest.com/",
                "-H", "Attach: https://nest.com/view/yAxkasd.jpg",
                "-H", "Actions: http, Open door, https://api.nest.com/open/yAxkasd, clear=true",
                "-H", "Email: phil@example.com",
                "-d", "There's someone at the door. 🐶\n\nPlease check if it's a good boy or a "
                "hooman.\nDoggies have been known to ring the doorbell.", "URL/TOKEN");
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (json_object_get_string_member (reply, "click"), ==, "https://home.nest.com/");
  g_clear_pointer (&reply, json_object_unref);
  m = received (f, n++);
  g_assert_cmpstr (m->external_link, ==, "https://home.nest.com/");
  g_assert_true (g_str_has_prefix (m->body, "There's someone at the door. 🐶\n\nPlease"));
  actions = json_object_get_array_member (m->vars, "actions");
  g_assert_cmpuint (json_array_get_length (actions), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (actions, 0),
                                                  "label"), ==, "Open door");
  g_assert_true (json_object_get_boolean_member (json_array_get_object_element (actions, 0),
                                                 "clear"));
  /* ... and a button on the message (docs/actions.md). */
  g_assert_cmpuint (m->actions->len, ==, 1);
  g_assert_cmpstr (((TocsinMessageAction *) m->actions->pdata[0])->method, ==, "POST");
  g_assert_cmpstr (((TocsinMessageAction *) m->actions->pdata[0])->url, ==,
                   "https://api.nest.com/open/yAxkasd");
  g_clear_pointer (&m, tocsin_message_free);

  reply = CURL (f, &status, "-d", "Look ma, **bold text**, *italics*, ...",
                "-H", "Markdown: yes", "URL/TOKEN");
  g_assert_cmpstr (json_object_get_string_member (reply, "content_type"), ==, "text/markdown");
  g_clear_pointer (&reply, json_object_unref);
  m = received (f, n++);
  g_assert_true (m->markdown);
  g_clear_pointer (&m, tocsin_message_free);

  /* The JSON form. */
  reply = CURL (f, &status, "URL/", "-d",
                "{\"topic\": \"TOKEN\", \"message\": \"Disk space is low at 5.1 GB\", "
                "\"title\": \"Low disk space alert\", \"tags\": [\"warning\",\"cd\"], "
                "\"priority\": 4, \"attach\": \"https://filesrv.lan/space.jpg\", "
                "\"filename\": \"diskspace.jpg\", "
                "\"click\": \"https://homecamera.lan/xasds1h2xsSsa/\", "
                "\"actions\": [{ \"action\": \"view\", \"label\": \"Admin panel\", "
                "\"url\": \"https://filesrv.lan/admin\" }]}");
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (json_object_get_string_member (reply, "topic"), ==, f->token);
  g_clear_pointer (&reply, json_object_unref);
  m = received (f, n++);
  g_assert_cmpstr (m->title, ==, "⚠️ 💿 Low disk space alert");
  g_assert_cmpstr (m->body, ==, "Disk space is low at 5.1 GB");
  g_assert_cmpstr (m->external_link, ==, "https://homecamera.lan/xasds1h2xsSsa/");
  g_assert_cmpint (m->type, ==, TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE);
  actions = json_object_get_array_member (m->vars, "actions");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (actions, 0),
                                                  "url"), ==, "https://filesrv.lan/admin");
  g_clear_pointer (&m, tocsin_message_free);

  /* Two actions in the simple format, one with a quoted body. */
  reply = CURL (f, &status, "-d", "You left the house. Turn down the A/C?",
                "-H", "Actions: view, Open portal, https://home.nest.com/, clear=true; "
                "http, Turn down, https://api.nest.com/, body='{\"temperature\": 65}'",
                "URL/TOKEN");
  g_assert_cmpuint (status, ==, 200);
  g_clear_pointer (&reply, json_object_unref);
  m = received (f, n++);
  actions = json_object_get_array_member (m->vars, "actions");
  g_assert_cmpuint (json_array_get_length (actions), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (actions, 1),
                                                  "body"), ==, "{\"temperature\": 65}");
  g_clear_pointer (&m, tocsin_message_free);

  /* The token as the password or the bearer token: the topic is then a name, kept as one. */
  {
    static const char * const auth[][2] = { { "-u", ":TOKEN" },
                                            { "-H", "Authorization: Bearer TOKEN" } };

    for (guint i = 0; i < G_N_ELEMENTS (auth); i++)
      {
        reply = CURL (f, &status, auth[i][0], auth[i][1], "-d", "Look ma, with auth",
                      "URL/mysecrets");
        g_assert_cmpuint (status, ==, 200);
        g_assert_cmpstr (json_object_get_string_member (reply, "topic"), ==, "mysecrets");
        g_clear_pointer (&reply, json_object_unref);
        m = received (f, n++);
        g_assert_cmpstr (m->body, ==, "Look ma, with auth");
        g_assert_cmpstr (var_string (m, "topic"), ==, "mysecrets");
        g_clear_pointer (&m, tocsin_message_free);
      }
  }

  /* Webhooks: GET …/trigger and …/publish with the query. */
  reply = CURL (f, &status, "URL/TOKEN/trigger");
  g_assert_cmpuint (status, ==, 200);
  g_clear_pointer (&reply, json_object_unref);
  m = received (f, n++);
  g_assert_cmpstr (m->body, ==, "triggered");
  g_clear_pointer (&m, tocsin_message_free);
  reply = CURL (f, &status,
                "URL/TOKEN/publish?message=Webhook+triggered&priority=high&tags=warning,skull");
  g_assert_cmpuint (status, ==, 200);
  g_clear_pointer (&reply, json_object_unref);
  m = received (f, n++);
  g_assert_cmpstr (m->body, ==, "⚠️ 💀 Webhook triggered");
  g_assert_cmpint (m->type, ==, TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE);
  g_clear_pointer (&m, tocsin_message_free);

  /* What the relay cannot do is ignored, not refused: delays, e-mail, cache, Firebase. */
  {
    static const char * const lines[][2] = { { "At: tomorrow, 10am", "Good morning" },
                                             { "Email: phil@example.com", "You've Got Mail" },
                                             { "X-Cache: no", "This message won't be stored" },
                                             { "Firebase: no", "Not forwarded to FCM" } };

    for (guint i = 0; i < G_N_ELEMENTS (lines); i++)
      {
        reply = CURL (f, &status, "-H", lines[i][0], "-d", lines[i][1], "URL/TOKEN");
        g_assert_cmpuint (status, ==, 200);
        g_clear_pointer (&reply, json_object_unref);
        m = received (f, n++);
        g_assert_cmpstr (m->body, ==, lines[i][1]);
        g_clear_pointer (&m, tocsin_message_free);
      }
  }

  /* The token never becomes a variable subscribers see. */
  for (guint i = 0; i < f->frames->len; i++)
    g_assert_null (strstr (f->frames->pdata[i], f->token));
}

/* ntfy's refusals, in ntfy's shape; nothing is stored. */
static void
test_ntfy_errors (Fixture       *f,
                  gconstpointer  data)
{
  static const struct
  {
    const char *method, *path, *type, *body, *header, *value;
    guint       status;
    gint64      code;
  } cases[] = {
    { "POST", "/unknowntopic", NULL, "x", NULL, NULL, 404, 40401 },
    { "PUT", "/TOKEN", NULL, "x", "Priority", "9", 400, 40007 },
    { "POST", "/TOKEN", NULL, "x", "Actions", "jump, Up", 400, 40018 },
    { "POST", "/TOKEN", NULL, "x", "Actions", "view, \"Open", 400, 40018 },
    { "POST", "/TOKEN", NULL, "x", "Actions", "[{\"action\":\"view\",\"label\":\"x\"}]", 400,
      40018 },
    { "POST", "/TOKEN", NULL, "\xff\xfe", NULL, NULL, 400, 40011 },
    { "POST", "/", "application/json", "{\"topic\": \"TOKEN\"", NULL, NULL, 400, 40017 },
    { "POST", "/", "application/json", "[1]", NULL, NULL, 400, 40017 },
    { "POST", "/", "application/json", "{\"message\": \"no topic\"}", NULL, NULL, 400, 40009 },
    { "POST", "/", "application/json", "{\"topic\": \"TOKEN\", \"priority\": \"high\"}", NULL,
      NULL, 400, 40017 },
    { "POST", "/", "application/json", "{\"topic\": \"TOKEN\", \"tags\": \"a,b\"}", NULL, NULL,
      400, 40017 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GString) path = g_string_new (cases[i].path);
      g_autoptr(GString) body = g_string_new (cases[i].body);
      g_autoptr(JsonNode) node = NULL;
      const char *headers[] = { cases[i].header, cases[i].value, NULL };
      JsonObject *object;
      guint status = 0;

      g_string_replace (path, "TOKEN", f->token, 0);
      g_string_replace (body, "TOKEN", f->token, 0);
      node = tocsin_test_http_json (f->relay, cases[i].method, path->str, cases[i].type,
                                    body->str, cases[i].header ? headers : NULL, &status);
      g_test_message ("case %u: %u", i, status);
      g_assert_cmpuint (status, ==, cases[i].status);
      object = json_node_get_object (node);
      g_assert_cmpint (json_object_get_int_member (object, "code"), ==, cases[i].code);
      g_assert_cmpint (json_object_get_int_member (object, "http"), ==, cases[i].status);
      g_assert_cmpstr (json_object_get_string_member (object, "error"), !=, "");
    }

  /* Nothing of the above was stored: the next message is the channel's first. */
  {
    g_autofree char *path = g_strdup_printf ("/%s", f->token);
    g_autoptr(JsonNode) node = tocsin_test_http_json (f->relay, "POST", path, NULL, "first",
                                                      NULL, NULL);
    g_autoptr(TocsinMessage) m = received (f, 0);

    g_assert_cmpstr (json_object_get_string_member (json_node_get_object (node), "id"), ==,
                     "1");
    g_assert_cmpint (m->id, ==, 1);
    g_assert_cmpstr (m->body, ==, "first");
  }
}

/* The channel's rate limit and dedup hold for ntfy senders as for /t/: the same bucket. */
static void
test_ntfy_limits (Fixture       *f,
                  gconstpointer  data)
{
  g_autofree char *path = g_strdup_printf ("/%s", f->token);
  g_autofree char *hook = g_strdup_printf ("/t/%s", f->token);
  const char * const key[] = { "Idempotency-Key", "backup-42", NULL };
  g_autoptr(JsonNode) first = NULL, again = NULL, native = NULL, over = NULL;
  SoupMessageHeaders *response_headers = NULL;
  guint status = 0;

  first = tocsin_test_http_json (f->relay, "POST", path, NULL, "once", key, &status);
  g_assert_cmpuint (status, ==, 200);
  again = tocsin_test_http_json (f->relay, "POST", path, NULL, "once", key, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_true (json_object_get_boolean_member (json_node_get_object (again), "duplicate"));
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (again), "id"), ==, "1");

  /* Burst 2, both taken: /t/ and ntfy alike are refused now, ntfy in its own shape. */
  native = tocsin_test_http_json (f->relay, "POST", hook, NULL, NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 429);
  status = tocsin_test_http (f->relay, "POST", path, NULL, "more", -1, NULL, NULL,
                             &response_headers);
  g_assert_cmpuint (status, ==, 429);
  g_assert_nonnull (soup_message_headers_get_one (response_headers, "Retry-After"));
  soup_message_headers_unref (response_headers);
  over = tocsin_test_http_json (f->relay, "POST", path, NULL, "more", NULL, &status);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (over), "code"), ==, 42901);

  /* One message went out, once. */
  g_clear_pointer (&first, json_node_unref);
  {
    g_autoptr(TocsinMessage) m = received (f, 0);

    g_assert_cmpstr (m->body, ==, "once");
    g_assert_cmpuint (count_received (f), ==, 1);
  }
}

/* max-body holds for ntfy and Gotify bodies as for /t/ (not the owner API's 64 KiB floor). */
static void
test_max_body (Fixture       *f,
               gconstpointer  data)
{
  g_autofree char *path = g_strdup_printf ("/%s", f->token);
  g_autofree char *gotify = g_strdup_printf ("/message?token=%s", f->token);
  g_autofree char *big = g_strnfill (2000, 'a');
  g_autofree char *big_json = g_strdup_printf ("{\"message\": \"%s\"}", big);
  g_autoptr(JsonNode) ok = NULL;
  guint status = 0;

  status = tocsin_test_http (f->relay, "POST", path, NULL, big, -1, NULL, NULL, NULL);
  g_assert_cmpuint (status, ==, 413);
  status = tocsin_test_http (f->relay, "POST", gotify, "application/json", big_json, -1, NULL,
                             NULL, NULL);
  g_assert_cmpuint (status, ==, 413);
  ok = tocsin_test_http_json (f->relay, "POST", path, NULL, "small", NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (ok), "id"), ==, "1");
}

/* A channel's templates see the sender's fields as variables. */
static const char * const templates[] = {
  "{{emoji}} [{{priority}}] {{title}}",
  "{{message}} ({{tags[1]}}, {{actions.length}} action)",
  "{{click}}",
  "priority >= 3",
};

static void
test_templates (Fixture       *f,
                gconstpointer  data)
{
  g_autofree char *path = g_strdup_printf ("/%s", f->token);
  const char * const headers[] = { "Title", "Disk full", "Tags", "warning,db-1",
                                   "Priority", "high", "Click", "https://grafana.example/d/1",
                                   "Actions", "view, Open, https://grafana.example/", NULL };
  const char * const low[] = { "Priority", "min", NULL };
  g_autoptr(JsonNode) node = NULL, filtered = NULL;
  g_autoptr(TocsinMessage) m = NULL;
  guint status = 0;

  node = tocsin_test_http_json (f->relay, "PUT", path, "text/plain", "95% used", headers,
                                &status);
  g_assert_cmpuint (status, ==, 200);
  m = received (f, 0);
  g_assert_cmpstr (m->title, ==, "⚠️ [4] Disk full");
  g_assert_cmpstr (m->body, ==, "95% used (db-1, 1 action)");
  g_assert_cmpstr (m->external_link, ==, "https://grafana.example/d/1");
  g_assert_cmpint (m->type, ==, TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE);

  /* The condition reads them too. */
  filtered = tocsin_test_http_json (f->relay, "POST", path, NULL, "noise", low, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_true (json_object_get_boolean_member (json_node_get_object (filtered), "filtered"));
}

/* ---- Gotify ---------------------------------------------------------------------------- */

static void
test_gotify (Fixture       *f,
             gconstpointer  data)
{
  g_autofree char *query = g_strdup_printf ("/message?token=%s", f->token);
  g_autofree char *bearer = g_strdup_printf ("Bearer %s", f->token);
  const char * const key[] = { "X-Gotify-Key", f->token, NULL };
  const char * const auth[] = { "Authorization", bearer, NULL };
  const char * const wrong[] = { "X-Gotify-Key", "AbCdEf123456789", NULL };
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(TocsinMessage) m = NULL;
  JsonObject *reply;
  guint status = 0;

  /* gotify.net's first example: a form with ?token=. */
  node = tocsin_test_http_json (f->relay, "POST", query, "application/x-www-form-urlencoded",
                                "title=my+title&message=my+message&priority=5", NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  reply = json_node_get_object (node);
  g_assert_cmpint (json_object_get_int_member (reply, "id"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (reply, "appid"), ==,
                   json_object_get_int_member (f->channel, "id"));
  g_assert_cmpstr (json_object_get_string_member (reply, "title"), ==, "my title");
  g_assert_cmpstr (json_object_get_string_member (reply, "message"), ==, "my message");
  g_assert_cmpint (json_object_get_int_member (reply, "priority"), ==, 5);
  g_assert_true (json_object_has_member (reply, "date"));
  m = received (f, 0);
  g_assert_cmpstr (m->title, ==, "my title");
  g_assert_cmpstr (m->body, ==, "my message");
  g_assert_cmpint (m->type, ==, TOCSIN_MESSAGE_TYPE_DEFAULT);   /* 5 is Gotify's normal */
  g_clear_pointer (&m, tocsin_message_free);
  g_clear_pointer (&node, json_node_unref);

  /* JSON with extras: the click URL is the link, text/markdown marks Markdown; 8 rings. */
  node = tocsin_test_http_json (f->relay, "POST", "/message", "application/json",
                                "{\"message\": \"**Backup** was successfully finished.\", "
                                "\"priority\": 8, \"extras\": {"
                                "\"client::display\": {\"contentType\": \"text/markdown\"}, "
                                "\"client::notification\": {\"click\": "
                                "{\"url\": \"https://gotify.net\"}}}}", key, &status);
  g_assert_cmpuint (status, ==, 200);
  reply = json_node_get_object (node);
  g_assert_cmpstr (json_object_get_string_member (reply, "title"), ==, "Backups");
  g_assert_true (json_object_has_member (reply, "extras"));
  m = received (f, 1);
  g_assert_cmpstr (m->title, ==, "Backups");   /* untitled: the application's (channel's) name */
  g_assert_cmpstr (m->body, ==, "**Backup** was successfully finished.");
  g_assert_cmpstr (m->external_link, ==, "https://gotify.net");
  g_assert_true (m->markdown);
  g_assert_cmpint (m->type, ==, TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE);
  g_assert_cmpint (json_object_get_int_member (m->vars, "priority"), ==, 8);
  g_clear_pointer (&m, tocsin_message_free);
  g_clear_pointer (&node, json_node_unref);

  node = tocsin_test_http_json (f->relay, "POST", "/message", "application/json",
                                "{\"title\": \"Bearer\", \"message\": \"works\"}", auth, &status);
  g_assert_cmpuint (status, ==, 200);
  m = received (f, 2);
  g_assert_cmpstr (m->title, ==, "Bearer");
  g_clear_pointer (&m, tocsin_message_free);
  g_clear_pointer (&node, json_node_unref);

  /* gotify.net's curl line, as multipart/form-data. */
  if (have ("curl"))
    {
      g_autoptr(JsonObject) object = CURL (f, &status, "URL/message?token=TOKEN",
                                           "-F", "title=my title", "-F", "message=my message",
                                           "-F", "priority=5");

      g_assert_cmpuint (status, ==, 200);
      g_assert_cmpint (json_object_get_int_member (object, "id"), ==, 4);
      m = received (f, 3);
      g_assert_cmpstr (m->body, ==, "my message");
      g_clear_pointer (&m, tocsin_message_free);
    }

  /* Gotify's refusals, in Gotify's shape. */
  node = tocsin_test_http_json (f->relay, "POST", "/message", "application/json",
                                "{\"message\": \"x\"}", wrong, &status);
  g_assert_cmpuint (status, ==, 401);
  reply = json_node_get_object (node);
  g_assert_cmpstr (json_object_get_string_member (reply, "error"), ==, "Unauthorized");
  g_assert_cmpint (json_object_get_int_member (reply, "errorCode"), ==, 401);
  g_clear_pointer (&node, json_node_unref);
  node = tocsin_test_http_json (f->relay, "POST", "/message", "application/json",
                                "{\"message\": \"x\"}", NULL, &status);
  g_assert_cmpuint (status, ==, 401);
  g_clear_pointer (&node, json_node_unref);
  node = tocsin_test_http_json (f->relay, "POST", "/message", "application/json",
                                "{\"title\": \"no message\"}", key, &status);
  g_assert_cmpuint (status, ==, 400);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (node),
                                                  "errorDescription"), ==,
                   "Field 'message' is required");
  g_clear_pointer (&node, json_node_unref);
  node = tocsin_test_http_json (f->relay, "POST", "/message", "application/json",
                                "{\"message\": \"x\", \"priority\": \"high\"}", key, &status);
  g_assert_cmpuint (status, ==, 400);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (node), "errorCode"), ==,
                   400);
  g_assert_cmpuint (count_received (f), ==, have ("curl") ? 4 : 3);
}

/* ---- Apprise ----------------------------------------------------------------------------- */

/* Runs Debian's apprise on @url ("HOST" is 127.0.0.1:PORT, "TOKEN" the trigger token). */
static void
apprise (Fixture    *f,
         const char *title,
         const char *body,
         const char *url_template)
{
  g_autoptr(GString) url = g_string_new (url_template);
  g_autofree char *host = g_strdup_printf ("127.0.0.1:%u", f->relay->port);
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;
  int wait_status = 0;
  const char *argv[] = { APPRISE, "-vv", "-t", title, "-b", body, NULL, NULL };

  g_string_replace (url, "HOST", host, 0);
  g_string_replace (url, "TOKEN", f->token, 0);
  argv[6] = url->str;
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                &wait_status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (wait_status, NULL))
    g_error ("apprise failed:\n%s\n%s", out, err);
}

static void
test_apprise_ntfy (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(TocsinMessage) m = NULL;

  if (!g_file_test (APPRISE, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("apprise is not installed (" APPRISE "): apt-get install apprise");
      return;
    }

  /* Apprise posts ntfy's JSON form to / (the topic inside), with its own headers. */
  apprise (f, "Title", "Body", "ntfy://HOST/TOKEN");
  m = received (f, 0);
  g_assert_cmpstr (m->title, ==, "Title");
  g_assert_cmpstr (m->body, ==, "Body");
  g_assert_cmpint (m->type, ==, TOCSIN_MESSAGE_TYPE_DEFAULT);
  g_clear_pointer (&m, tocsin_message_free);

  apprise (f, "Disk", "Almost full",
           "ntfy://HOST/TOKEN?priority=max&tags=warning,db&click=https://example.com/disk");
  m = received (f, 1);
  g_assert_cmpstr (m->title, ==, "⚠️ Disk");
  g_assert_cmpstr (m->body, ==, "Almost full");
  g_assert_cmpstr (m->external_link, ==, "https://example.com/disk");
  g_assert_cmpint (m->type, ==, TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE);
}

static void
test_apprise_gotify (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(TocsinMessage) m = NULL;

  if (!g_file_test (APPRISE, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("apprise is not installed (" APPRISE "): apt-get install apprise");
      return;
    }

  apprise (f, "Title", "Body", "gotify://HOST/TOKEN");
  m = received (f, 0);
  g_assert_cmpstr (m->title, ==, "Title");
  g_assert_cmpstr (m->body, ==, "Body");
  g_assert_cmpint (m->type, ==, TOCSIN_MESSAGE_TYPE_DEFAULT);   /* Apprise's normal: 5 */
  g_assert_false (m->markdown);
  g_clear_pointer (&m, tocsin_message_free);

  apprise (f, "Deploy", "**done**", "gotify://HOST/TOKEN?priority=high&format=markdown");
  m = received (f, 1);
  g_assert_cmpstr (m->title, ==, "Deploy");
  g_assert_true (m->markdown);
  g_assert_cmpint (m->type, ==, TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE);   /* Apprise's high: 8 */
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, setup, data, func) \
  g_test_add (path, Fixture, data, setup, func, fixture_teardown)
  ADD ("/relay/compat/ntfy/docs", fixture_setup, NULL, test_ntfy_docs);
  ADD ("/relay/compat/ntfy/errors", fixture_setup, NULL, test_ntfy_errors);
  ADD ("/relay/compat/ntfy/limits", fixture_setup_rate, NULL, test_ntfy_limits);
  ADD ("/relay/compat/ntfy/max-body", fixture_setup_rate, NULL, test_max_body);
  ADD ("/relay/compat/templates", fixture_setup, templates, test_templates);
  ADD ("/relay/compat/gotify", fixture_setup, NULL, test_gotify);
  ADD ("/relay/compat/apprise/ntfy", fixture_setup, NULL, test_apprise_ntfy);
  ADD ("/relay/compat/apprise/gotify", fixture_setup, NULL, test_apprise_gotify);
#undef ADD

  return g_test_run ();
}
