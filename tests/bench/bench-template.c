/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "bench-template"

#include "config.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tocsin-template.h"

/*
 * The template language on a realistic channel: a CI webhook with a condition, a title and body
 * that read nested members, call methods and join strings, and a link. Compiles once, then
 * renders the four fields against one payload many times, as the relay does per webhook.
 * Prints nanoseconds per webhook (all four fields). Only the public API is used, so the same
 * file measures any version of the implementation. For instruction counts:
 *
 *   valgrind --tool=callgrind _build/tests/bench/bench-template --iterations=2000
 */

static const char payload[] =
  "{\"repository\":{\"name\":\"tocsin\",\"full_name\":\"gnome/tocsin\","
  "\"owner\":{\"login\":\"gnome\"}},"
  "\"workflow\":\"CI / build (debian-12, sanitize)\",\"status\":\"failure\","
  "\"conclusion\":\"failure\",\"branch\":\"main\",\"attempt\":2,\"duration\":734.25,"
  "\"commit\":{\"id\":\"6f1c2e9b8a7d\",\"message\":\"  relay: answer 431 for long heads  \","
  "\"author\":{\"name\":\"Ada Lovelace\",\"email\":\"ada@example.org\"}},"
  "\"failed_jobs\":[\"build\",\"test (relay)\",\"test (ui)\"],"
  "\"labels\":[\"ci\",\"urgent\"],\"url\":\"https://ci.example.org/gnome/tocsin/runs/4711\"}";

static const char *const sources[] = {
  /* condition */
  "status === 'failure' && branch == 'main' && !labels.includes('skip-notify') "
  "&& attempt >= 1",
  /* title */
  "{{repository.full_name}}: {{workflow.toUpperCase()}} {{conclusion == 'failure' ? 'failed' "
  ": 'passed'}} on {{branch}} (attempt {{attempt}})",
  /* body */
  "{{commit.message.trim()}} by {{commit.author.name}} <{{commit.author.email.toLowerCase()}}>\n"
  "Failed jobs: {{failed_jobs}} ({{failed_jobs.length}}), first: {{failed_jobs[0]}}\n"
  "Took {{duration / 60 > 10 ? 'over ten minutes' : duration + ' s'}}; "
  "{{labels.includes('urgent') ? 'URGENT' : ''}} {{header['x-ci-event'] ?? 'push'}} "
  "at {{time}} {{missingVariable ?? 'n/a'}}",
  /* link */
  "{{url}}?commit={{commit.id}}&n={{attempt * 1 + 0}}",
};

int
main (int    argc,
      char **argv)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  TocsinTemplate *templates[G_N_ELEMENTS (sources)] = { NULL, };
  g_autoptr(GDateTime) now = g_date_time_new_utc (2026, 12, 6, 12, 0, 0);
  const char *out_path = NULL;
  guint iterations = 200000;
  gsize checksum = 0;
  gint64 start, elapsed;
  double ns;

  for (int i = 1; i < argc; i++)
    {
      if (g_str_has_prefix (argv[i], "--iterations="))
        iterations = (guint) g_ascii_strtoull (argv[i] + 13, NULL, 10);
      else if (g_str_has_prefix (argv[i], "--out="))
        out_path = argv[i] + 6;
    }

  if (!json_parser_load_from_data (parser, payload, -1, &error))
    g_error ("payload: %s", error->message);
  for (gsize f = 0; f < G_N_ELEMENTS (sources); f++)
    {
      templates[f] = f == 0 ? tocsin_template_new_condition ("condition", sources[f], &error)
                            : tocsin_template_new ("field", sources[f], &error);
      if (templates[f] == NULL)
        g_error ("template %zu: %s", f, error->message);
    }

  start = g_get_monotonic_time ();
  for (guint i = 0; i < iterations; i++)
    {
      TocsinTemplateScope *scope;

      scope = tocsin_template_scope_new (json_node_get_object (json_parser_get_root (parser)),
                                         now);
      tocsin_template_scope_add_header (scope, "X-CI-Event", "workflow_run");
      checksum += tocsin_template_evaluate (templates[0], scope, NULL);
      for (gsize f = 1; f < G_N_ELEMENTS (sources); f++)
        {
          char *text = tocsin_template_render (templates[f], scope, NULL);

          checksum += strlen (text);
          g_free (text);
        }
      tocsin_template_scope_free (scope);
    }
  elapsed = g_get_monotonic_time () - start;
  ns = iterations ? (double) elapsed * 1000.0 / iterations : 0;

  printf ("template: %u webhooks (condition, title, body, link), %.0f ns per webhook "
          "(checksum %zu)\n", iterations, ns, checksum);
  if (out_path != NULL)
    {
      g_autofree char *json = g_strdup_printf ("{\"iterations\":%u,\"ns_per_webhook\":%.1f}\n",
                                               iterations, ns);
      g_autofree char *dir = g_path_get_dirname (out_path);

      g_mkdir_with_parents (dir, 0755);
      if (!g_file_set_contents (out_path, json, -1, &error))
        g_error ("%s", error->message);
    }
  for (gsize f = 0; f < G_N_ELEMENTS (sources); f++)
    tocsin_template_unref (templates[f]);
  return EXIT_SUCCESS;
}
