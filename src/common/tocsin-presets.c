/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-presets"

#include "config.h"

#include <glib/gi18n.h>

#include "tocsin-presets.h"
#include "tocsin-presets-resources.h"

/*
 * The templates read each sender's own payload, as its documentation shows it (the samples in
 * data/presets/ are those shapes). The language has no array methods beyond length and
 * includes(), so a group of alerts shows its first one and counts the rest. Templates quote
 * with '...' so that the C strings stay readable.
 */
static const TocsinPreset presets[] = {
  {
    "alertmanager",
    /* Translators: a product name */
    N_("Prometheus Alertmanager"),
    N_("In alertmanager.yml, give a receiver webhook_configs with url: the webhook URL; with "
       "send_resolved: true (the default) it also rings when the alert ends."),
    "[{{status.toUpperCase()}}{{status == 'firing' ? ':' + alerts.length : ''}}] "
    "{{groupLabels.alertname || commonLabels.alertname || alerts[0].labels.alertname}}",
    "{{alerts[0].annotations.summary || alerts[0].annotations.description || "
    "alerts[0].labels.alertname}}"
    "{{alerts[0].labels.instance ? ' on ' + alerts[0].labels.instance : ''}}"
    "{{alerts.length > 1 ? ' (and ' + (alerts.length - 1) + ' more)' : ''}}",
    "{{alerts[0].generatorURL || externalURL}}",
    "",
  },
  {
    "grafana",
    /* Translators: a product name */
    N_("Grafana"),
    N_("In Grafana, Alerting → Contact points → Add contact point: integration Webhook, URL the "
       "webhook URL."),
    "{{title || ruleName || '[' + status.toUpperCase() + '] ' + commonLabels.alertname}}",
    "{{alerts[0].annotations.summary || alerts[0].annotations.description || message}}"
    "{{alerts.length > 1 ? ' (and ' + (alerts.length - 1) + ' more)' : ''}}",
    "{{alerts[0].panelURL || alerts[0].dashboardURL || alerts[0].generatorURL || ruleUrl || "
    "externalURL}}",
    "",
  },
  {
    "github",
    /* Translators: a product name */
    N_("GitHub"),
    N_("In the repository’s Settings → Webhooks → Add webhook: Payload URL the webhook URL, "
       "Content type application/json, events Pushes and Workflow runs."),
    /* Asks about the push first: the preview of the push sample reads no absent variable. */
    "{{repository.full_name}}: {{pusher ? (pusher.name || sender.login) + ' pushed to ' + ref : "
    "workflow_run.name + ' ' + (workflow_run.conclusion || workflow_run.status)}}",
    "{{pusher ? head_commit.message + (commits.length > 1 ? ' (and ' + (commits.length - 1) + "
    "(commits.length == 2 ? ' more commit)' : ' more commits)') : '') : "
    "workflow_run.display_title + ' (' + workflow_run.head_branch + ')'}}",
    "{{pusher ? compare : workflow_run.html_url}}",
    /* A push, or a workflow run that has finished (not each of its steps, nor the ping). */
    "pusher || workflow_run && action == 'completed'",
  },
  {
    "gitlab",
    /* Translators: a product name */
    N_("GitLab"),
    N_("In the project’s Settings → Webhooks: URL the webhook URL, triggers Push events and "
       "Pipeline events."),
    "{{project.path_with_namespace}}: {{object_kind == 'pipeline' ? "
    "'pipeline ' + object_attributes.status + ' on ' + object_attributes.ref : "
    "user_name + ' pushed to ' + ref}}",
    /* A push lists its commits oldest first. */
    "{{object_kind == 'pipeline' ? commit.title || commit.message : "
    "commits[commits.length - 1].title}}"
    "{{object_kind == 'push' && total_commits_count > 1 ? ' (and ' + (total_commits_count - 1) + "
    "(total_commits_count == 2 ? ' more commit)' : ' more commits)') : ''}}",
    "{{object_kind == 'pipeline' ? object_attributes.url || "
    "project.web_url + '/-/pipelines/' + object_attributes.id : "
    "commits[commits.length - 1].url || project.web_url}}",
    /* A push, or a pipeline that has finished. */
    "object_kind == 'push' || object_kind == 'pipeline' && "
    "(object_attributes.status == 'success' || object_attributes.status == 'failed' || "
    "object_attributes.status == 'canceled')",
  },
  {
    "gitea",
    /* Translators: product names */
    N_("Gitea / Forgejo"),
    N_("In the repository’s Settings → Webhooks → Add webhook → Gitea (or Forgejo): target URL "
       "the webhook URL, POST, content type application/json, push events."),
    "{{repository.full_name}}: {{pusher.full_name || pusher.login}} pushed to {{ref}}",
    "{{head_commit.message.trim()}}"
    "{{(total_commits || commits.length) > 1 ? ' (and ' + "
    "((total_commits || commits.length) - 1) + "
    "((total_commits || commits.length) == 2 ? ' more commit)' : ' more commits)') : ''}}",
    "{{compare_url || head_commit.url || repository.html_url}}",
    /* Only a push carries a pusher. */
    "pusher",
  },
  {
    "uptime-kuma",
    /* Translators: a product name */
    N_("Uptime Kuma"),
    N_("In Uptime Kuma, Settings → Notifications → Setup Notification: type Webhook, Post URL "
       "the webhook URL, request body application/json."),
    /* heartbeat.status: 0 down, 1 up, 2 pending, 3 maintenance; a test has no heartbeat. */
    "{{monitor.name || 'Uptime Kuma'}}{{heartbeat ? (heartbeat.status == 0 ? ' is down' : "
    "heartbeat.status == 1 ? ' is up' : heartbeat.status == 3 ? ' is under maintenance' : "
    "' is pending') : ''}}",
    "{{heartbeat.msg || msg}}",
    "{{monitor.url}}",
    "",
  },
  {
    "home-assistant",
    /* Translators: a product name */
    N_("Home Assistant"),
    N_("In configuration.yaml, a rest_command with url: the webhook URL, method: post, "
       "content_type: application/json and a payload with title, message and url."),
    "{{title || 'Home Assistant'}}",
    "{{message || (entity_id ? entity_id + ' is ' + state : '')}}",
    "{{url}}",
    "",
  },
  {
    "generic",
    N_("Generic: title, message, priority, click"),
    N_("Post JSON with title, message and click (a link), as ntfy and Gotify senders do; "
       "Gotify’s extras client::notification.click.url works as the link too."),
    "{{title || message}}",
    "{{title ? message : ''}}",
    "{{click || extras['client::notification'].click.url}}",
    "",
  },
};

const TocsinPreset *
tocsin_presets_get_all (guint *n_presets)
{
  g_return_val_if_fail (n_presets != NULL, NULL);

  *n_presets = G_N_ELEMENTS (presets);
  return presets;
}

const TocsinPreset *
tocsin_preset_lookup (const char *id)
{
  for (guint i = 0; id != NULL && i < G_N_ELEMENTS (presets); i++)
    if (g_str_equal (presets[i].id, id))
      return &presets[i];
  return NULL;
}

const char *
tocsin_preset_get_name (const TocsinPreset *preset)
{
  g_return_val_if_fail (preset != NULL, NULL);

  return _(preset->name);
}

const char *
tocsin_preset_get_setup (const TocsinPreset *preset)
{
  g_return_val_if_fail (preset != NULL, NULL);

  return _(preset->setup);
}

GBytes *
tocsin_preset_get_sample (const TocsinPreset *preset)
{
  static gsize registered = 0;
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;
  GBytes *bytes;

  g_return_val_if_fail (preset != NULL, NULL);

  /* Built with --manual-register: a constructor in a static library's object could be dropped
   * by the linker (as the app's resources, tocsin_application_class_init). */
  if (g_once_init_enter (&registered))
    {
      tocsin_presets_register_resource ();
      g_once_init_leave (&registered, 1);
    }
  path = g_strdup_printf ("/io/github/tocsin/presets/%s.json", preset->id);
  bytes = g_resource_lookup_data (tocsin_presets_get_resource (), path,
                                  G_RESOURCE_LOOKUP_FLAGS_NONE, &error);
  if (bytes == NULL)
    g_error ("The sample of preset %s is not built in: %s", preset->id, error->message);
  return bytes;
}

char *
tocsin_presets_dup_ids (void)
{
  GString *ids = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (presets); i++)
    g_string_append_printf (ids, "%s%s", i ? ", " : "", presets[i].id);
  return g_string_free (ids, FALSE);
}
