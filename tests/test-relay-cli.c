/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-cli.c: `tocsin-relay channel|key|subscribers`, run as a person runs them, with and
 * without a server on the same data dir.
 */
#define G_LOG_DOMAIN "test-relay-cli"

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
  f->relay = tocsin_test_relay_start (NULL, NULL);
}

/* No server: only a data dir, which the CLI creates. */
static void
fixture_setup_offline (Fixture       *f,
                       gconstpointer  data)
{
  f->relay = g_new0 (TocsinTestRelay, 1);
  f->relay->data_dir = tocsin_test_make_tmpdir ("tocsin-cli-test");
  f->relay->owns_data_dir = TRUE;
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
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

static void
test_create_json (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(JsonObject) channel = NULL;
  g_autofree char *webhook = NULL, *subscribe = NULL;
  g_autofree char *hook = NULL;
  static const char *const keys[] = { "id", "name", "trigger_token", "subscribe_token",
                                      "webhook_url", "subscribe_url" };

  channel = tocsin_test_relay_create_channel (f->relay, "Prod alerts",
                                              "Alerte serveur {{server_name}}",
                                              "L'utilisation du CPU a atteint {{cpu_usage}}%",
                                              NULL, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    g_assert_true (json_object_has_member (channel, keys[i]));
  g_assert_cmpint (json_object_get_int_member (channel, "id"), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (channel, "name"), ==, "Prod alerts");
  webhook = g_strdup_printf ("%s/t/%s", f->relay->base_url,
                             json_object_get_string_member (channel, "trigger_token"));
  subscribe = g_strdup_printf ("%s/s/%s", f->relay->base_url,
                               json_object_get_string_member (channel, "subscribe_token"));
  g_assert_cmpstr (json_object_get_string_member (channel, "webhook_url"), ==, webhook);
  g_assert_cmpstr (json_object_get_string_member (channel, "subscribe_url"), ==, subscribe);

  /* Created by another process, live in the server at once. */
  hook = g_strdup_printf ("%s?server_name=Production&cpu_usage=95", webhook);
  g_assert_cmpuint (tocsin_test_http (f->relay, "GET", hook, NULL, NULL, 0, NULL, NULL, NULL), ==,
                    200);
}

static void
test_template_refused (Fixture       *f,
                       gconstpointer  data)
{
  g_autofree char *out = NULL, *err = NULL, *list = NULL;
  int status;

  status = tocsin_test_relay_cli (f->relay, &out, &err, "channel", "create", "--name=Bad",
                                  "--title=Alerte {{server_name", NULL);
  g_assert_cmpint (status, !=, 0);
  /* The template library's own message names the field. */
  g_assert_nonnull (strstr (err, "title"));
  g_assert_cmpstr (out, ==, "");

  status = tocsin_test_relay_cli (f->relay, &list, NULL, "channel", "list", "--json", NULL);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (list, "\"channels\":[]"));
}

static void
test_manage_offline (Fixture       *f,
                     gconstpointer  data)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonObject) created = NULL, shown = NULL, updated = NULL, rotated = NULL;
  g_autoptr(JsonObject) listed = NULL, deleted = NULL, subs = NULL;
  int status;

  status = tocsin_test_relay_cli (f->relay, &out, &err, "channel", "create", "--name=Builds",
                                  "--title=Build {{status}}", "--json", NULL);
  g_assert_cmpint (status, ==, 0);
  created = parse_object (out);
  g_assert_true (json_object_has_member (created, "owner_key"));
  g_clear_pointer (&out, g_free);

  status = tocsin_test_relay_cli (f->relay, &out, NULL, "channel", "show", "1", "--json", NULL);
  g_assert_cmpint (status, ==, 0);
  shown = parse_object (out);
  g_assert_cmpstr (json_object_get_string_member (shown, "title"), ==, "Build {{status}}");
  g_assert_false (json_object_has_member (shown, "owner_key"));
  g_clear_pointer (&out, g_free);

  status = tocsin_test_relay_cli (f->relay, &out, NULL, "channel", "update", "1",
                                  "--body=Commit {{sha}}", "--json", NULL);
  g_assert_cmpint (status, ==, 0);
  updated = parse_object (out);
  g_assert_cmpstr (json_object_get_string_member (updated, "title"), ==, "Build {{status}}");
  g_assert_cmpstr (json_object_get_string_member (updated, "body"), ==, "Commit {{sha}}");
  g_clear_pointer (&out, g_free);

  g_clear_pointer (&err, g_free);
  status = tocsin_test_relay_cli (f->relay, NULL, &err, "channel", "update", "1",
                                  "--condition=status ==", NULL);
  g_assert_cmpint (status, !=, 0);
  g_assert_nonnull (strstr (err, "condition"));

  status = tocsin_test_relay_cli (f->relay, &out, NULL, "channel", "rotate-subscribe", "1",
                                  "--json", NULL);
  g_assert_cmpint (status, ==, 0);
  rotated = parse_object (out);
  g_assert_cmpstr (json_object_get_string_member (rotated, "subscribe_token"), !=,
                   json_object_get_string_member (created, "subscribe_token"));
  g_clear_pointer (&out, g_free);

  status = tocsin_test_relay_cli (f->relay, &out, NULL, "channel", "list", "--json", NULL);
  g_assert_cmpint (status, ==, 0);
  listed = parse_object (out);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (listed, "channels")), ==,
                    1);
  g_clear_pointer (&out, g_free);

  status = tocsin_test_relay_cli (f->relay, &out, NULL, "subscribers", "1", "--json", NULL);
  g_assert_cmpint (status, ==, 0);
  subs = parse_object (out);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (subs, "subscribers")),
                    ==, 0);
  g_clear_pointer (&out, g_free);

  /* Human output names things a person needs. */
  status = tocsin_test_relay_cli (f->relay, &out, NULL, "channel", "show", "1", NULL);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (out, "Builds"));
  g_assert_nonnull (strstr (out, json_object_get_string_member (rotated, "trigger_token")));
  g_clear_pointer (&out, g_free);

  status = tocsin_test_relay_cli (f->relay, &out, NULL, "channel", "delete", "1", "--json", NULL);
  g_assert_cmpint (status, ==, 0);
  deleted = parse_object (out);
  g_assert_true (json_object_get_boolean_member (deleted, "deleted"));
  g_clear_pointer (&out, g_free);

  g_clear_pointer (&err, g_free);
  status = tocsin_test_relay_cli (f->relay, NULL, &err, "channel", "show", "1", NULL);
  g_assert_cmpint (status, !=, 0);
  g_assert_cmpuint (strlen (err), >, 0);
}

static void
test_usage_errors (Fixture       *f,
                   gconstpointer  data)
{
  g_autofree char *err1 = NULL, *err2 = NULL, *err3 = NULL, *err4 = NULL;

  g_assert_cmpint (tocsin_test_relay_cli (f->relay, NULL, &err1, "channel", "frobnicate", NULL),
                   ==, 2);
  g_assert_cmpint (tocsin_test_relay_cli (f->relay, NULL, &err2, "channel", "show", "x", NULL),
                   ==, 2);
  g_assert_cmpint (tocsin_test_relay_cli (f->relay, NULL, &err3, "channel", "create", NULL), ==,
                   2);
  g_assert_cmpint (tocsin_test_relay_cli (f->relay, NULL, &err4, "subscribers", NULL), ==, 2);
  g_assert_nonnull (strstr (err1, "frobnicate"));
}

static void
test_key_create (Fixture       *f,
                 gconstpointer  data)
{
  g_autofree char *out = NULL, *out2 = NULL;
  g_autoptr(JsonObject) a = NULL, b = NULL;

  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &out, NULL, "key", "create", "--json", NULL),
                   ==, 0);
  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &out2, NULL, "key", "create", "--json", NULL),
                   ==, 0);
  a = parse_object (out);
  b = parse_object (out2);
  g_assert_cmpuint (strlen (json_object_get_string_member (a, "key")), ==, 32);
  g_assert_cmpstr (json_object_get_string_member (a, "key"), !=,
                   json_object_get_string_member (b, "key"));
}

/* `subscribers` in another process sees who is connected to the running server. */
static gboolean
has_subscriber (TocsinTestRelay *relay)
{
  g_autofree char *out = NULL;
  g_autoptr(JsonObject) object = NULL;

  if (tocsin_test_relay_cli (relay, &out, NULL, "subscribers", "1", "--json", NULL) != 0)
    return FALSE;
  object = parse_object (out);
  return json_array_get_length (json_object_get_array_member (object, "subscribers")) == 1;
}

static void
test_subscribers (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(JsonObject) channel = tocsin_test_relay_create_channel (f->relay, "Watched", NULL,
                                                                    NULL, NULL, NULL);
  g_autoptr(SoupWebsocketConnection) ws = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_strdup_printf ("/s/%s/ws",
                                           json_object_get_string_member (channel,
                                                                          "subscribe_token"));

  ws = tocsin_test_websocket_connect (f->relay, path, &error);
  g_assert_no_error (error);
  TOCSIN_WAIT_UNTIL (has_subscriber (f->relay));
  soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  TOCSIN_WAIT_UNTIL (!has_subscriber (f->relay));
}

/* A server on port 0 without --public-url: the command line run beside it, also without
 * --public-url, prints URLs on the port the server really listens on. */
static void
test_public_url_from_server (Fixture       *f,
                             gconstpointer  data)
{
  g_autofree char *data_dir_arg = g_strdup_printf ("--data-dir=%s", f->relay->data_dir);
  g_auto(GStrv) argv = tocsin_test_relay_argv ("channel", "create", "--json", "--name=Beside",
                                                data_dir_arg, NULL);
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonObject) channel = NULL;
  g_autofree char *webhook = NULL;

  process = g_subprocess_newv ((const char * const *) argv,
                               G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                               &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  if (g_subprocess_get_exit_status (process) != 0)
    g_error ("channel create failed: %s", err);
  channel = parse_object (out);
  webhook = g_strdup_printf ("%s/t/%s", f->relay->base_url,
                             json_object_get_string_member (channel, "trigger_token"));
  g_assert_cmpstr (json_object_get_string_member (channel, "webhook_url"), ==, webhook);
  /* And it works. */
  g_assert_cmpuint (tocsin_test_http (f->relay, "GET", webhook, NULL, NULL, 0, NULL, NULL, NULL),
                    ==, 200);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/relay/cli/create-json", Fixture, NULL, fixture_setup, test_create_json,
              fixture_teardown);
  g_test_add ("/relay/cli/public-url-from-server", Fixture, NULL, fixture_setup,
              test_public_url_from_server, fixture_teardown);
  g_test_add ("/relay/cli/template-refused", Fixture, NULL, fixture_setup_offline,
              test_template_refused, fixture_teardown);
  g_test_add ("/relay/cli/manage-offline", Fixture, NULL, fixture_setup_offline,
              test_manage_offline, fixture_teardown);
  g_test_add ("/relay/cli/usage-errors", Fixture, NULL, fixture_setup_offline, test_usage_errors,
              fixture_teardown);
  g_test_add ("/relay/cli/key-create", Fixture, NULL, fixture_setup_offline, test_key_create,
              fixture_teardown);
  g_test_add ("/relay/cli/subscribers", Fixture, NULL, fixture_setup, test_subscribers,
              fixture_teardown);

  return g_test_run ();
}
