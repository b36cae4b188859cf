/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-presets.c: every preset's templates compile, and render its sender's payloads (the
 * preset's own sample and the other shapes under tests/data/senders/) to what a person should
 * read in the pop-up.
 */
#define G_LOG_DOMAIN "test-presets"

#include "config.h"

#include <string.h>

#include "tocsin-json.h"
#include "tocsin-message.h"
#include "tocsin-presets.h"
#include "tocsin-template.h"

typedef struct
{
  const char *preset;
  const char *payload;     /* a file under tests/data/senders/, or NULL: the preset's sample */
  gboolean    sent;        /* whether the condition lets it through */
  const char *title;
  const char *body;
  const char *link;
} Case;

static const Case cases[] = {
  { "alertmanager", NULL, TRUE, "[FIRING:1] HighLatency",
    "99th percentile latency above 500 ms on api-1:8080",
    "http://prometheus.example.com:9090/graph?g0.expr=api_latency_p99+%3E+0.5&g0.tab=1" },
  { "alertmanager", "alertmanager-resolved.json", TRUE, "[RESOLVED] HighLatency",
    "99th percentile latency above 500 ms on api-1:8080",
    "http://prometheus.example.com:9090/graph?g0.expr=api_latency_p99+%3E+0.5&g0.tab=1" },
  { "alertmanager", "alertmanager-group.json", TRUE, "[FIRING:3] DiskFull",
    "/var is 91% full on db1:9100 (and 2 more)",
    "http://prometheus.example.com:9090/graph?g0.expr=disk_used+%3E+0.9&g0.tab=1" },
  { "grafana", NULL, TRUE, "[FIRING:1] High memory usage Servers (blue us-1)",
    "Memory above 90% in zone us-1", "https://grafana.example.com/d/mem01?orgId=1&viewPanel=4" },
  { "grafana", "grafana-resolved.json", TRUE, "[RESOLVED] High memory usage Servers (blue us-1)",
    "Memory above 90% in zone us-1",
    "https://grafana.example.com/alerting/grafana/1afz29v7z/view" },
  { "github", NULL, TRUE, "acme/site: ada pushed to refs/heads/main",
    "Fix the footer (and 1 more commit)",
    "https://github.com/acme/site/compare/1a2b3c4d5e6f...3c4d5e6f7081" },
  { "github", "github-workflow-run.json", TRUE, "acme/site: CI failure", "Fix the footer (main)",
    "https://github.com/acme/site/actions/runs/30433642" },
  { "github", "github-workflow-run-in-progress.json", FALSE, NULL, NULL, NULL },
  { "github", "github-ping.json", FALSE, NULL, NULL, NULL },
  { "gitlab", NULL, TRUE, "acme/site: pipeline failed on main", "Fix the footer",
    "https://gitlab.example.com/acme/site/-/pipelines/31" },
  { "gitlab", "gitlab-push.json", TRUE, "mike/diaspora: John Smith pushed to refs/heads/main",
    "fixed readme (and 1 more commit)",
    "https://gitlab.example.com/mike/diaspora/commit/da1560886d4f094c3e6c9ef40349f7d38b5d27d7" },
  { "gitlab", "gitlab-pipeline-running.json", FALSE, NULL, NULL, NULL },
  { "gitea", NULL, TRUE, "acme/site: Ada Lovelace pushed to refs/heads/main", "Fix the footer",
    "https://git.example.com/acme/site/compare/28e1879d029cb852e4844d9c718537df08844e03..."
    "bffeb74224043ba2feb48d137756c8a9331c449a" },
  { "uptime-kuma", NULL, TRUE, "Company site is down", "timeout of 48000ms exceeded",
    "https://www.example.com" },
  { "uptime-kuma", "uptime-kuma-up.json", TRUE, "Company site is up", "200 - OK",
    "https://www.example.com" },
  { "uptime-kuma", "uptime-kuma-test.json", TRUE, "Uptime Kuma", "Tocsin (1) Testing", "" },
  { "home-assistant", NULL, TRUE, "Front door", "The front door opened while the alarm was armed",
    "https://homeassistant.example.com:8123/history?entity_id=binary_sensor.front_door" },
  { "generic", NULL, TRUE, "Backup done", "Nightly backup of /home finished in 4 min",
    "https://backup.example.com/runs/42" },
  { "generic", "gotify.json", TRUE, "Disk almost full", "/var on db1 is 91% full",
    "https://grafana.example.com/d/disk" },
};

static JsonObject *
load_payload (const Case *c)
{
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  JsonObject *object;

  if (c->payload == NULL)
    bytes = tocsin_preset_get_sample (tocsin_preset_lookup (c->preset));
  else
    {
      g_autofree char *path = g_test_build_filename (G_TEST_DIST, "data", "senders", c->payload,
                                                     NULL);
      char *text = NULL;
      gsize length = 0;

      g_file_get_contents (path, &text, &length, &error);
      g_assert_no_error (error);
      bytes = g_bytes_new_take (text, length);
    }
  object = tocsin_json_parse_object (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes),
                                     1024 * 1024, TOCSIN_JSON_DEFAULT_MAX_DEPTH, &error);
  g_assert_no_error (error);
  return object;
}

static TocsinTemplate *
compile (const char *field,
         const char *source)
{
  g_autoptr(GError) error = NULL;
  TocsinTemplate *template;

  if (g_str_equal (field, "condition"))
    template = tocsin_template_new_condition (field, source, &error);
  else
    template = tocsin_template_new (field, source, &error);
  g_assert_no_error (error);
  return template;
}

static void
test_render (gconstpointer data)
{
  const Case *c = data;
  const TocsinPreset *preset = tocsin_preset_lookup (c->preset);
  g_autoptr(JsonObject) vars = NULL;
  g_autoptr(TocsinTemplateScope) scope = NULL;
  g_autoptr(TocsinTemplate) title = NULL, body = NULL, link = NULL, condition = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *title_text = NULL, *body_text = NULL, *link_text = NULL;
  g_autoptr(GPtrArray) missing = g_ptr_array_new_with_free_func (g_free);
  gboolean sent;

  g_assert_nonnull (preset);
  title = compile ("title", preset->title);
  body = compile ("body", preset->body);
  link = compile ("link", preset->link);
  condition = compile ("condition", preset->condition);

  vars = load_payload (c);
  scope = tocsin_template_scope_new (vars, NULL);
  sent = tocsin_template_evaluate (condition, scope, missing);
  title_text = tocsin_template_render (title, scope, missing);
  body_text = tocsin_template_render (body, scope, missing);
  link_text = tocsin_template_render (link, scope, missing);
  g_assert_true (tocsin_template_scope_check (scope, &error));
  g_assert_no_error (error);
  /* The editor's preview of a preset's own sample says nothing is missing. */
  if (c->payload == NULL)
    g_assert_cmpuint (missing->len, ==, 0);

  g_assert_cmpint (sent, ==, c->sent);
  if (!c->sent)
    return;
  g_assert_cmpstr (title_text, ==, c->title);
  g_assert_cmpstr (body_text, ==, c->body);
  g_assert_cmpstr (link_text, ==, c->link);
  if (*link_text != '\0')
    g_assert_true (tocsin_link_is_safe (link_text, NULL));
}

/* Every preset has a name, a setup sentence, templates that compile and a sample that is a JSON
 * object; ids are unique and lookups of anything else fail. */
static void
test_table (void)
{
  guint n = 0;
  const TocsinPreset *all = tocsin_presets_get_all (&n);
  g_autoptr(GHashTable) ids = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree char *list = tocsin_presets_dup_ids ();
  static const char *const expected[] = { "alertmanager", "grafana", "github", "gitlab", "gitea",
                                          "uptime-kuma", "home-assistant", "generic" };

  g_assert_cmpuint (n, ==, G_N_ELEMENTS (expected));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(TocsinTemplate) title = compile ("title", all[i].title);
      g_autoptr(TocsinTemplate) body = compile ("body", all[i].body);
      g_autoptr(TocsinTemplate) link = compile ("link", all[i].link);
      g_autoptr(TocsinTemplate) condition = compile ("condition", all[i].condition);
      g_autoptr(GBytes) sample = tocsin_preset_get_sample (&all[i]);
      g_autoptr(JsonObject) object = NULL;
      g_autoptr(GError) error = NULL;

      g_assert_cmpstr (all[i].id, ==, expected[i]);
      g_assert_true (g_hash_table_add (ids, (gpointer) all[i].id));
      g_assert_true (tocsin_preset_lookup (all[i].id) == &all[i]);
      g_assert_nonnull (strstr (list, all[i].id));
      g_assert_cmpuint (strlen (tocsin_preset_get_name (&all[i])), >, 0);
      g_assert_cmpuint (strlen (tocsin_preset_get_setup (&all[i])), >, 0);
      g_assert_false (tocsin_template_is_empty (title));
      object = tocsin_json_parse_object (g_bytes_get_data (sample, NULL),
                                         g_bytes_get_size (sample), 64 * 1024,
                                         TOCSIN_JSON_DEFAULT_MAX_DEPTH, &error);
      g_assert_no_error (error);
    }
  g_assert_null (tocsin_preset_lookup ("Alertmanager"));
  g_assert_null (tocsin_preset_lookup (""));
  g_assert_null (tocsin_preset_lookup (NULL));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/presets/table", test_table);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/presets/render/%s/%s", cases[i].preset,
                                               cases[i].payload ? cases[i].payload : "sample");

      g_test_add_data_func (path, &cases[i], test_render);
    }
  return g_test_run ();
}
