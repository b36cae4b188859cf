/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-presets.c: a channel made with `tocsin-relay channel create --preset=ID`, rung by
 * each sender's own payload with the headers that sender sends, as a subscriber receives it.
 */
#define G_LOG_DOMAIN "test-relay-presets"

#include "config.h"

#include <string.h>

#include "tocsin-message.h"
#include "tocsin-test-relay.h"

typedef struct
{
  const char *file;          /* under tests/data/senders/, or "ID.json" of data/presets/ */
  const char *headers[8];    /* name/value pairs the sender adds, NULL-terminated */
  const char *title;         /* NULL: the condition leaves it out */
  const char *body;
  const char *link;          /* NULL: no link */
} Delivery;

typedef struct
{
  const char *preset;
  const char *name;          /* the channel's name when --name is not given */
  Delivery    deliveries[4];
} Sender;

#define GITHUB(event) { "User-Agent", "GitHub-Hookshot/5f3c1a7", "X-GitHub-Event", event, \
                        "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958", NULL }

static const Sender senders[] = {
  { "alertmanager", "Prometheus Alertmanager", {
      { "preset:alertmanager.json", { "User-Agent", "Alertmanager/0.27.0", NULL },
        "[FIRING:1] HighLatency", "99th percentile latency above 500 ms on api-1:8080",
        "http://prometheus.example.com:9090/graph?g0.expr=api_latency_p99+%3E+0.5&g0.tab=1" },
      { "alertmanager-resolved.json", { "User-Agent", "Alertmanager/0.27.0", NULL },
        "[RESOLVED] HighLatency", "99th percentile latency above 500 ms on api-1:8080",
        "http://prometheus.example.com:9090/graph?g0.expr=api_latency_p99+%3E+0.5&g0.tab=1" },
    } },
  { "grafana", "Grafana", {
      { "preset:grafana.json", { "User-Agent", "Grafana", NULL },
        "[FIRING:1] High memory usage Servers (blue us-1)", "Memory above 90% in zone us-1",
        "https://grafana.example.com/d/mem01?orgId=1&viewPanel=4" },
    } },
  { "github", "GitHub", {
      { "github-ping.json", GITHUB ("ping"), NULL, NULL, NULL },
      { "preset:github.json", GITHUB ("push"), "acme/site: ada pushed to refs/heads/main",
        "Fix the footer (and 1 more commit)",
        "https://github.com/acme/site/compare/1a2b3c4d5e6f...3c4d5e6f7081" },
      { "github-workflow-run-in-progress.json", GITHUB ("workflow_run"), NULL, NULL, NULL },
      { "github-workflow-run.json", GITHUB ("workflow_run"), "acme/site: CI failure",
        "Fix the footer (main)", "https://github.com/acme/site/actions/runs/30433642" },
    } },
  { "gitlab", "GitLab", {
      { "preset:gitlab.json",
        { "User-Agent", "GitLab/17.5.0", "X-Gitlab-Event", "Pipeline Hook", NULL },
        "acme/site: pipeline failed on main", "Fix the footer",
        "https://gitlab.example.com/acme/site/-/pipelines/31" },
      { "gitlab-pipeline-running.json",
        { "User-Agent", "GitLab/17.5.0", "X-Gitlab-Event", "Pipeline Hook", NULL },
        NULL, NULL, NULL },
      { "gitlab-push.json",
        { "User-Agent", "GitLab/17.5.0", "X-Gitlab-Event", "Push Hook", NULL },
        "mike/diaspora: John Smith pushed to refs/heads/main", "fixed readme (and 1 more commit)",
        "https://gitlab.example.com/mike/diaspora/commit/"
        "da1560886d4f094c3e6c9ef40349f7d38b5d27d7" },
    } },
  { "gitea", "Gitea / Forgejo", {
      { "preset:gitea.json",
        { "User-Agent", "Go-http-client/1.1", "X-Gitea-Event", "push", "X-Forgejo-Event", "push",
          NULL },
        "acme/site: Ada Lovelace pushed to refs/heads/main", "Fix the footer",
        "https://git.example.com/acme/site/compare/28e1879d029cb852e4844d9c718537df08844e03..."
        "bffeb74224043ba2feb48d137756c8a9331c449a" },
    } },
  { "uptime-kuma", "Uptime Kuma", {
      { "uptime-kuma-test.json", { "User-Agent", "axios/1.7.7", NULL },
        "Uptime Kuma", "Tocsin (1) Testing", NULL },
      { "preset:uptime-kuma.json", { "User-Agent", "axios/1.7.7", NULL },
        "Company site is down", "timeout of 48000ms exceeded", "https://www.example.com" },
      { "uptime-kuma-up.json", { "User-Agent", "axios/1.7.7", NULL },
        "Company site is up", "200 - OK", "https://www.example.com" },
    } },
  { "home-assistant", "Home Assistant", {
      { "preset:home-assistant.json",
        { "User-Agent", "HomeAssistant/2024.11.0 aiohttp/3.10.10 Python/3.12", NULL },
        "Front door", "The front door opened while the alarm was armed",
        "https://homeassistant.example.com:8123/history?entity_id=binary_sensor.front_door" },
    } },
  { "generic", "Generic: title, message, priority, click", {
      { "preset:generic.json", { "User-Agent", "curl/7.88.1", NULL },
        "Backup done", "Nightly backup of /home finished in 4 min",
        "https://backup.example.com/runs/42" },
      { "gotify.json", { "User-Agent", "Go-http-client/1.1", NULL },
        "Disk almost full", "/var on db1 is 91% full", "https://grafana.example.com/d/disk" },
    } },
};

static TocsinTestRelay *relay;

static char *
read_payload (const char *file)
{
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;
  char *text = NULL;

  /* The preset's own sample is the file the relay and the app build in. */
  if (g_str_has_prefix (file, "preset:"))
    path = g_build_filename (g_getenv ("TOCSIN_SOURCE_ROOT"), "data", "presets",
                             file + strlen ("preset:"), NULL);
  else
    path = g_test_build_filename (G_TEST_DIST, "data", "senders", file, NULL);
  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  return text;
}

static guint
count_messages (GPtrArray *frames)
{
  guint n = 0;

  for (guint i = 0; i < frames->len; i++)
    {
      const char *frame = frames->pdata[i];
      g_autoptr(TocsinMessage) message = tocsin_message_new_from_data (frame, strlen (frame),
                                                                       NULL);

      n += message != NULL;
    }
  return n;
}

static TocsinMessage *
nth_message (GPtrArray *frames,
             guint      n)
{
  guint seen = 0;

  for (guint i = 0; i < frames->len; i++)
    {
      const char *frame = frames->pdata[i];
      TocsinMessage *message = tocsin_message_new_from_data (frame, strlen (frame), NULL);

      if (message == NULL)
        continue;
      if (seen++ == n)
        return message;
      tocsin_message_free (message);
    }
  return NULL;
}

static void
test_sender (gconstpointer data)
{
  const Sender *sender = data;
  g_autofree char *preset_arg = g_strdup_printf ("--preset=%s", sender->preset);
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupWebsocketConnection) ws = NULL;
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *hook = NULL, *stream = NULL;
  JsonObject *channel;
  guint sent = 0;

  /* As a person types it: the preset names the channel. */
  g_assert_cmpint (tocsin_test_relay_cli (relay, &out, &err, "channel", "create", preset_arg,
                                          "--json", NULL), ==, 0);
  json_parser_load_from_data (parser, out, -1, &error);
  g_assert_no_error (error);
  channel = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (channel, "name"), ==, sender->name);
  hook = g_strdup_printf ("/t/%s", json_object_get_string_member (channel, "trigger_token"));
  stream = g_strdup_printf ("/s/%s/ws", json_object_get_string_member (channel,
                                                                       "subscribe_token"));
  ws = tocsin_test_websocket_connect (relay, stream, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (ws, frames);

  for (guint i = 0; i < G_N_ELEMENTS (sender->deliveries) && sender->deliveries[i].file; i++)
    {
      const Delivery *d = &sender->deliveries[i];
      g_autofree char *payload = read_payload (d->file);
      g_autoptr(GBytes) response = NULL;
      g_autoptr(TocsinMessage) message = NULL;
      guint status;

      status = tocsin_test_http (relay, "POST", hook, "application/json", payload, -1,
                                 d->headers, &response, NULL);
      g_assert_cmpuint (status, ==, 200);
      if (d->title == NULL)
        {
          g_assert_nonnull (strstr (g_bytes_get_data (response, NULL), "\"filtered\":true"));
          continue;
        }
      TOCSIN_WAIT_UNTIL (count_messages (frames) == sent + 1);
      message = nth_message (frames, sent++);
      g_test_message ("%s -> %s / %s / %s", d->file, message->title, message->body,
                      message->external_link);
      g_assert_cmpstr (message->title, ==, d->title);
      g_assert_cmpstr (message->body, ==, d->body);
      g_assert_cmpstr (message->external_link, ==, d->link);
    }
  /* The filtered ones rang nobody: what arrived is exactly what was expected, in order. */
  g_assert_cmpuint (count_messages (frames), ==, sent);
  soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
}

/* `channel presets` and `--preset=help` list them without a data dir; a wrong id is refused
 * with the list, and explicit flags win over the preset's templates. */
static void
test_cli (void)
{
  g_autofree char *list = NULL, *help = NULL, *bad = NULL, *out = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *channel;

  g_assert_cmpint (tocsin_test_relay_cli (relay, &list, NULL, "channel", "presets", NULL), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (senders); i++)
    {
      g_assert_nonnull (strstr (list, senders[i].preset));
      g_assert_nonnull (strstr (list, senders[i].name));
    }
  g_assert_cmpint (tocsin_test_relay_cli (relay, &help, NULL, "channel", "create",
                                          "--preset=help", NULL), ==, 0);
  g_assert_cmpstr (help, ==, list);

  g_assert_cmpint (tocsin_test_relay_cli (relay, NULL, &bad, "channel", "create",
                                          "--preset=prometheus", NULL), ==, 2);
  g_assert_nonnull (strstr (bad, "prometheus"));
  g_assert_nonnull (strstr (bad, "alertmanager"));

  g_assert_cmpint (tocsin_test_relay_cli (relay, &out, NULL, "channel", "create",
                                          "--preset=alertmanager", "--name=Prod",
                                          "--condition=status == 'firing'", "--json", NULL),
                   ==, 0);
  json_parser_load_from_data (parser, out, -1, &error);
  g_assert_no_error (error);
  channel = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (channel, "name"), ==, "Prod");
  g_assert_cmpstr (json_object_get_string_member (channel, "condition"), ==,
                   "status == 'firing'");
  g_assert_true (g_str_has_prefix (json_object_get_string_member (channel, "title"),
                                   "[{{status.toUpperCase()}}"));

  /* update ID --preset=ID swaps the templates and keeps the name. */
  g_clear_pointer (&out, g_free);
  {
    g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT,
                                           json_object_get_int_member (channel, "id"));
    g_autoptr(JsonParser) updated = json_parser_new ();
    JsonObject *object;

    g_assert_cmpint (tocsin_test_relay_cli (relay, &out, NULL, "channel", "update", id,
                                            "--preset=uptime-kuma", "--json", NULL), ==, 0);
    json_parser_load_from_data (updated, out, -1, &error);
    g_assert_no_error (error);
    object = json_node_get_object (json_parser_get_root (updated));
    g_assert_cmpstr (json_object_get_string_member (object, "name"), ==, "Prod");
    g_assert_cmpstr (json_object_get_string_member (object, "body"), ==,
                     "{{heartbeat.msg || msg}}");
    g_assert_cmpstr (json_object_get_string_member (object, "condition"), ==, "");
  }
}

int
main (int   argc,
      char *argv[])
{
  int status;

  g_test_init (&argc, &argv, NULL);

  relay = tocsin_test_relay_start (NULL, NULL);
  g_test_add_func ("/relay/presets/cli", test_cli);
  for (guint i = 0; i < G_N_ELEMENTS (senders); i++)
    {
      g_autofree char *path = g_strdup_printf ("/relay/presets/%s", senders[i].preset);

      g_test_add_data_func (path, &senders[i], test_sender);
    }
  status = g_test_run ();
  g_clear_pointer (&relay, tocsin_test_relay_free);
  return status;
}
