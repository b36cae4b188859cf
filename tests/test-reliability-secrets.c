/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-reliability-secrets.c: secrets stay secret. A relay with every debug message on
 * (G_MESSAGES_DEBUG=all) is taken through everything that touches a token: ringing, refusals,
 * streams, the app socket, the owner API, rotation, deletion, shutdown; and its command line
 * with debug on too. No trigger token, subscribe token, owner key or admin key may appear in
 * anything the relay logged. And the store's files are 0600 in a 0700 dir, whatever the umask.
 */
#define G_LOG_DOMAIN "test-reliability"

#include "config.h"

#include <string.h>
#include <sys/stat.h>
#include <glib/gstdio.h>

#include "tocsin-test-reliability.h"

typedef struct
{
  TocsinTestRelay *relay;
  char            *log_path;
  GPtrArray       *secrets;     /* every token and key handed out */
  GString         *cli_stderr;  /* what the commands printed besides their answers */
} Scenario;

/* The harness's relay, but with stdout and stderr going to a file we can read afterwards. */
static TocsinTestRelay *
start_logged_relay (const char *dir,
                    const char *log_path)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autofree char *data_arg = g_strdup_printf ("--data-dir=%s", dir);
  g_auto(GStrv) argv = NULL;
  g_autoptr(GError) error = NULL;
  TocsinTestRelay *relay = g_new0 (TocsinTestRelay, 1);

  relay->data_dir = g_strdup (dir);
  relay->session = soup_session_new_with_options ("timeout", 30, NULL);
  /* One file for both, in the order they were written. */
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_subprocess_launcher_setenv (launcher, "G_MESSAGES_DEBUG", "all", TRUE);
  g_subprocess_launcher_set_stdout_file_path (launcher, log_path);
  argv = tocsin_test_relay_argv ("serve", "--listen=127.0.0.1:0", data_arg, "--rate=2",
                                 "--burst=3", "--idle-timeout=2", "--max-queue-bytes=8192", NULL);
  relay->process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv, &error);
  g_assert_no_error (error);

  /* Wait for "Listening on http://127.0.0.1:PORT" in the log. */
  for (;;)
    {
      g_autofree char *log = NULL;
      const char *line;

      TOCSIN_WAIT_UNTIL (g_file_get_contents (log_path, &log, NULL, NULL) &&
                         strstr (log, "Listening on http://") != NULL &&
                         strchr (strstr (log, "Listening on http://"), '\n') != NULL);
      line = strstr (log, "Listening on ") + strlen ("Listening on ");
      relay->base_url = g_strndup (line, strchr (line, '\n') - line);
      relay->port = (guint16) g_ascii_strtoull (strrchr (relay->base_url, ':') + 1, NULL, 10);
      break;
    }
  return relay;
}

static void
add_secret (Scenario   *s,
            JsonObject *object,
            const char *member)
{
  const char *value = json_object_get_string_member_with_default (object, member, NULL);

  g_assert_nonnull (value);
  g_assert_cmpuint (strlen (value), >=, 22);
  g_ptr_array_add (s->secrets, g_strdup (value));
}

static JsonObject *
cli_json (Scenario   *s,
          const char *first,
          ...)
{
  const char *args[8] = { NULL, };
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  va_list ap;
  guint n = 0;
  int status;

  va_start (ap, first);
  for (const char *arg = first; arg && n < G_N_ELEMENTS (args) - 1; arg = va_arg (ap, const char *))
    args[n++] = arg;
  va_end (ap);
  status = tocsin_test_relay_cli (s->relay, &out, &err, args[0], args[1], args[2], args[3],
                                  args[4], args[5], args[6], NULL);
  g_assert_cmpint (status, ==, 0);
  g_string_append (s->cli_stderr, err);
  return tocsin_rel_parse_object (out, -1);
}

static guint
http (Scenario    *s,
      const char  *method,
      const char  *path,
      const char  *type,
      const char  *body,
      const char  *bearer,
      JsonObject **reply)
{
  g_autofree char *auth = bearer ? g_strconcat ("Bearer ", bearer, NULL) : NULL;
  const char *headers[] = { "Authorization", auth, NULL };
  g_autoptr(GBytes) response = NULL;
  guint status;

  status = tocsin_test_http (s->relay, method, path, type, body, -1, auth ? headers : NULL,
                             &response, NULL);
  if (reply)
    *reply = tocsin_rel_parse_object (g_bytes_get_data (response, NULL),
                                      g_bytes_get_size (response));
  return status;
}

static void
on_closed (SoupWebsocketConnection *ws,
           gpointer                 user_data)
{
  *(gboolean *) user_data = TRUE;
}

static void
open_and_close_streams (Scenario   *s,
                        const char *subscribe_token)
{
  const char *kinds[] = { "ws", "sse", "json" };

  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      g_autofree char *path = g_strdup_printf ("/s/%s/%s?since=all", subscribe_token, kinds[i]);

      if (i == 0)
        {
          g_autoptr(GError) error = NULL;
          g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
          g_autoptr(SoupWebsocketConnection) ws = tocsin_test_websocket_connect (s->relay, path,
                                                                                 &error);
          gboolean closed = FALSE;

          g_assert_no_error (error);
          tocsin_test_websocket_collect (ws, frames);
          g_signal_connect (ws, "closed", G_CALLBACK (on_closed), &closed);
          TOCSIN_WAIT_UNTIL (frames->len >= 1);
          soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
          TOCSIN_WAIT_UNTIL (closed);
        }
      else
        {
          g_autofree char *url = g_strconcat (s->relay->base_url, path, NULL);
          g_autoptr(SoupMessage) msg = soup_message_new ("GET", url);
          g_autoptr(GCancellable) cancellable = g_cancellable_new ();
          g_autoptr(GError) error = NULL;
          g_autoptr(GInputStream) stream = soup_session_send (s->relay->session, msg, cancellable,
                                                              &error);
          char buffer[256];

          g_assert_no_error (error);
          g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
          g_assert_cmpint (g_input_stream_read (stream, buffer, sizeof buffer, NULL, &error), >, 0);
          g_input_stream_close (stream, NULL, NULL);
        }
    }
}

static void
test_no_secret_in_logs (void)
{
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-rel-secrets");
  g_autofree char *log = NULL;
  g_autoptr(JsonObject) channel = NULL;
  g_autoptr(JsonObject) other = NULL;
  g_autoptr(JsonObject) admin = NULL;
  g_autoptr(JsonObject) reply = NULL;
  g_autofree char *hook = NULL;
  g_autofree char *api = NULL;
  g_autofree char *bad_hook = NULL;
  const char *owner_key;
  Scenario s = { 0, };
  guint leaks = 0;

  s.log_path = g_build_filename (dir, "relay.log", NULL);
  s.secrets = g_ptr_array_new_with_free_func (g_free);
  s.cli_stderr = g_string_new (NULL);
  g_setenv ("G_MESSAGES_DEBUG", "all", TRUE);  /* the commands below log at debug level too */
  {
    g_autofree char *data = g_build_filename (dir, "data", NULL);

    s.relay = start_logged_relay (data, s.log_path);
  }

  /* The commands: create, list, show, key create. */
  channel = cli_json (&s, "channel", "create", "--json", "--name=Secret", "--title={{t}}", NULL);
  other = cli_json (&s, "channel", "create", "--json", "--name=Other", NULL);
  admin = cli_json (&s, "key", "create", "--json", NULL);
  add_secret (&s, channel, "trigger_token");
  add_secret (&s, channel, "subscribe_token");
  add_secret (&s, channel, "owner_key");
  add_secret (&s, other, "trigger_token");
  add_secret (&s, other, "subscribe_token");
  add_secret (&s, other, "owner_key");
  g_test_message ("admin key answer has: %s",
                  json_object_has_member (admin, "key") ? "key" : "(other members)");
  {
    g_autoptr(GList) members = json_object_get_members (admin);

    /* Whatever the member is called, every long string in the answer is a secret. */
    for (GList *l = members; l; l = l->next)
      {
        JsonNode *node = json_object_get_member (admin, l->data);

        if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING &&
            strlen (json_node_get_string (node)) >= 22 &&
            strchr (json_node_get_string (node), ' ') == NULL &&
            strchr (json_node_get_string (node), ':') == NULL)
          g_ptr_array_add (s.secrets, g_strdup (json_node_get_string (node)));
      }
  }
  owner_key = json_object_get_string_member (channel, "owner_key");
  {
    g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT,
                                           json_object_get_int_member (channel, "id"));
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;

    g_assert_cmpint (tocsin_test_relay_cli (s.relay, &out, &err, "channel", "list", NULL), ==, 0);
    g_string_append (s.cli_stderr, err);
    g_clear_pointer (&err, g_free);
    g_clear_pointer (&out, g_free);
    g_assert_cmpint (tocsin_test_relay_cli (s.relay, &out, &err, "channel", "show", id, NULL), ==,
                     0);
    g_string_append (s.cli_stderr, err);
  }

  /* Ringing: accepted, refused for every reason a sender can cause. */
  hook = tocsin_rel_hook (channel, "?t=hello");
  g_assert_cmpuint (http (&s, "GET", hook, NULL, NULL, NULL, NULL), ==, 200);
  g_assert_cmpuint (http (&s, "POST", hook, "application/json", "{\"t\": ", NULL, NULL), ==, 400);
  g_assert_cmpuint (http (&s, "POST", hook, "application/xml", "<t/>", NULL, NULL), ==, 415);
  g_assert_cmpuint (http (&s, "DELETE", hook, NULL, NULL, NULL, NULL), ==, 405);
  for (guint i = 0; i < 5; i++)
    http (&s, "GET", hook, NULL, NULL, NULL, NULL);   /* into the rate limit (429) */
  bad_hook = g_strconcat ("/t/", json_object_get_string_member (channel, "subscribe_token"),
                          NULL);
  g_assert_cmpuint (http (&s, "GET", bad_hook, NULL, NULL, NULL, NULL), ==, 404);

  /* Reading: the three streams, the page, the app socket with a good and a bad token. */
  open_and_close_streams (&s, json_object_get_string_member (channel, "subscribe_token"));
  /* A trigger token does not read, on any stream. */
  {
    const char *kinds[] = { "", "/ws", "/sse", "/json" };

    for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
      {
        g_autofree char *path = g_strconcat ("/s/", json_object_get_string_member (channel,
                                                                                  "trigger_token"),
                                             kinds[i], NULL);

        g_assert_cmpuint (tocsin_test_http (s.relay, "GET", path, NULL, NULL, -1, NULL, NULL,
                                            NULL), ==, 404);
      }
  }
  {
    g_autofree char *page = g_strconcat ("/s/", json_object_get_string_member (channel,
                                                                             "subscribe_token"),
                                         NULL);
    const char *accept[] = { "Accept", "application/json", NULL };

    g_assert_cmpuint (tocsin_test_http (s.relay, "GET", page, NULL, NULL, -1, accept, NULL, NULL),
                      ==, 200);
    g_assert_cmpuint (tocsin_test_http (s.relay, "GET", page, NULL, NULL, -1, NULL, NULL, NULL),
                      ==, 200);
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
    g_autoptr(SoupWebsocketConnection) ws = tocsin_test_websocket_connect (s.relay, "/v1/ws",
                                                                           &error);
    g_autofree char *good = g_strdup_printf ("{\"type\":\"subscribe\",\"token\":\"%s\","
                                             "\"since\":\"all\"}",
                                             json_object_get_string_member (other,
                                                                           "subscribe_token"));
    g_autofree char *bad = g_strdup_printf ("{\"type\":\"subscribe\",\"token\":\"%s\","
                                            "\"since\":null}",
                                            json_object_get_string_member (other,
                                                                          "trigger_token"));
    gboolean closed = FALSE;

    g_assert_no_error (error);
    tocsin_test_websocket_collect (ws, frames);
    g_signal_connect (ws, "closed", G_CALLBACK (on_closed), &closed);
    soup_websocket_connection_send_text (ws, good);
    soup_websocket_connection_send_text (ws, bad);
    TOCSIN_WAIT_UNTIL (frames->len >= 2);
    /* A trigger token does not read: the relay refuses it, and only it. */
    {
      gboolean subscribed = FALSE, refused = FALSE;

      for (guint i = 0; i < frames->len; i++)
        {
          g_autoptr(JsonObject) frame = tocsin_rel_parse_object (frames->pdata[i], -1);
          const char *type = json_object_get_string_member (frame, "type");

          subscribed |= g_strcmp0 (type, "subscribed") == 0;
          refused |= g_strcmp0 (type, "error") == 0 &&
                     g_strcmp0 (json_object_get_string_member (frame, "code"),
                                "unknown-token") == 0;
        }
      g_assert_true (subscribed);
      g_assert_true (refused);
    }
    /* A bad frame, too, so that the relay logs why it closes. */
    soup_websocket_connection_send_text (ws, "{\"type\":\"nonsense\"}");
    TOCSIN_WAIT_UNTIL (closed);
  }

  /* Owning: read, update, wrong keys, rotate both tokens, list subscribers, delete. */
  api = g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT, json_object_get_int_member (channel,
                                                                                     "id"));
  g_assert_cmpuint (http (&s, "GET", api, NULL, NULL, owner_key, NULL), ==, 200);
  g_assert_cmpuint (http (&s, "PATCH", api, "application/json", "{\"description\": \"d\"}",
                          owner_key, NULL), ==, 200);
  g_assert_cmpuint (http (&s, "GET", api, NULL, NULL,
                          json_object_get_string_member (other, "owner_key"), NULL), >=, 400);
  g_assert_cmpuint (http (&s, "GET", api, NULL, NULL,
                          json_object_get_string_member (channel, "trigger_token"), NULL), >=,
                    400);
  {
    g_autofree char *rotate = g_strconcat (api, "/rotate-trigger", NULL);

    g_assert_cmpuint (http (&s, "POST", rotate, NULL, NULL, owner_key, &reply), ==, 200);
    add_secret (&s, reply, "trigger_token");
    g_clear_pointer (&reply, json_object_unref);
    g_free (rotate);
    rotate = g_strconcat (api, "/rotate-subscribe", NULL);
    g_assert_cmpuint (http (&s, "POST", rotate, NULL, NULL, owner_key, &reply), ==, 200);
    add_secret (&s, reply, "subscribe_token");
    g_clear_pointer (&reply, json_object_unref);
  }
  /* The old trigger token, now refused. */
  g_assert_cmpuint (http (&s, "GET", hook, NULL, NULL, NULL, NULL), ==, 404);
  {
    g_autofree char *subscribers = g_strconcat (api, "/subscribers", NULL);

    g_assert_cmpuint (http (&s, "GET", subscribers, NULL, NULL, owner_key, NULL), ==, 200);
  }
  g_assert_cmpuint (http (&s, "DELETE", api, NULL, NULL, owner_key, NULL), ==, 200);
  g_assert_cmpuint (http (&s, "GET", api, NULL, NULL, owner_key, NULL), >=, 400);

  /* A Direct key: created, rung (accepted and refused), shown and rotated. */
  {
    g_autoptr(JsonObject) inbox = cli_json (&s, "direct", "create", "--json", NULL);
    const char *inbox_owner = json_object_get_string_member (inbox, "owner_key");
    g_autofree char *direct = g_strconcat ("/d/", json_object_get_string_member (inbox,
                                                                               "direct_key"),
                                           "?title=hi&body=there", NULL);
    g_autofree char *bad_type = g_strconcat (direct, "&notificationType=loud", NULL);
    const char *other_trigger = json_object_get_string_member (other, "trigger_token");
    g_autofree char *hook_as_key = g_strconcat ("/d/", other_trigger, NULL);

    add_secret (&s, inbox, "direct_key");
    add_secret (&s, inbox, "subscribe_token");
    add_secret (&s, inbox, "owner_key");
    g_assert_cmpuint (http (&s, "GET", direct, NULL, NULL, NULL, NULL), ==, 200);
    g_assert_cmpuint (http (&s, "GET", bad_type, NULL, NULL, NULL, NULL), ==, 400);
    g_assert_cmpuint (http (&s, "DELETE", direct, NULL, NULL, NULL, NULL), ==, 405);
    g_assert_cmpuint (http (&s, "GET", hook_as_key, NULL, NULL, NULL, NULL), ==, 404);
    g_assert_cmpuint (http (&s, "GET", "/v1/direct", NULL, NULL, inbox_owner, NULL), ==, 200);
    g_assert_cmpuint (http (&s, "POST", "/v1/direct/rotate", NULL, NULL, inbox_owner, &reply),
                      ==, 200);
    add_secret (&s, reply, "direct_key");
    g_clear_pointer (&reply, json_object_unref);
    g_assert_cmpuint (http (&s, "GET", direct, NULL, NULL, NULL, NULL), ==, 404);
  }

  /* Shut down (SIGTERM) so that everything it would log is in the file. */
  tocsin_test_relay_stop (s.relay, FALSE);
  g_unsetenv ("G_MESSAGES_DEBUG");

  g_assert_true (g_file_get_contents (s.log_path, &log, NULL, NULL));
  {
    guint lines = 0;

    for (const char *p = log; *p; p++)
      lines += *p == '\n';
    g_test_message ("the relay logged %" G_GSIZE_FORMAT " bytes (%u lines) with debug on; the "
                    "commands %" G_GSIZE_FORMAT " bytes; looking for %u secrets",
                    strlen (log), lines, s.cli_stderr->len, s.secrets->len);
  }
  for (guint i = 0; i < s.secrets->len; i++)
    {
      const char *secret = s.secrets->pdata[i];
      /* Half a token is a leak too (a log that truncates it). */
      g_autofree char *half = g_strndup (secret, strlen (secret) / 2);

      if (strstr (log, half) != NULL || strstr (s.cli_stderr->str, half) != NULL)
        {
          g_test_message ("LEAKED secret #%u", i);
          leaks++;
        }
    }
  /* The log is not empty: debug really was on, so the check means something. */
  g_assert_nonnull (strstr (log, "Listening on"));
  g_assert_cmpuint (leaks, ==, 0);

  g_clear_pointer (&s.relay, tocsin_test_relay_free);
  g_ptr_array_unref (s.secrets);
  g_string_free (s.cli_stderr, TRUE);
  g_free (s.log_path);
  tocsin_test_rmdir_recursive (dir);
}

static void
assert_mode (const char *path,
             guint       expected)
{
  GStatBuf st;

  g_assert_cmpint (g_stat (path, &st), ==, 0);
  if ((st.st_mode & 0777) != expected)
    g_error ("%s has mode %o, not %o", path, st.st_mode & 0777, expected);
}

static void
test_file_modes_under_umask_zero (void)
{
  g_autofree char *parent = tocsin_test_make_tmpdir ("tocsin-rel-modes");
  g_autofree char *dir = g_build_filename (parent, "new", "data", NULL);
  g_autoptr(TocsinTestRelay) relay = NULL;
  g_autoptr(JsonObject) channel = NULL;
  const char *files[] = { "relay.db", "relay.db-wal", "relay.db-shm" };
  mode_t old = umask (0);

  /* The most permissive umask there is, and a data dir that does not exist yet. */
  relay = tocsin_test_relay_start (dir, NULL);
  channel = tocsin_test_relay_create_channel (relay, "Modes", NULL, NULL, NULL, NULL);
  umask (old);
  tocsin_rel_ring (relay, channel, "?a=1");

  assert_mode (dir, 0700);
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = g_build_filename (dir, files[i], NULL);

      if (g_file_test (path, G_FILE_TEST_EXISTS))
        assert_mode (path, 0600);
      else
        g_assert_cmpstr (files[i], !=, "relay.db");
    }
  /* Nothing else in there is readable by others either. */
  {
    g_autoptr(GDir) listing = g_dir_open (dir, 0, NULL);
    const char *name;

    while ((name = g_dir_read_name (listing)))
      {
        g_autofree char *path = g_build_filename (dir, name, NULL);
        GStatBuf st;

        g_assert_cmpint (g_stat (path, &st), ==, 0);
        g_assert_cmpint (st.st_mode & 0077, ==, 0);
      }
  }
  g_clear_pointer (&relay, tocsin_test_relay_free);
  tocsin_test_rmdir_recursive (parent);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/reliability/secrets/no-secret-in-logs", test_no_secret_in_logs);
  g_test_add_func ("/reliability/secrets/file-modes-under-umask-zero",
                   test_file_modes_under_umask_zero);
  return g_test_run ();
}
