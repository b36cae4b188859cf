/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-action-runner"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-action-runner.h"

/* The rows' "last result" after a start: this many records' newest presses are read back. */
#define LAST_PRESSES_LOADED 1000

/* One press of one action, from the click until its last attempt is logged. */
typedef struct
{
  TocsinActionRunner    *runner;        /* borrowed: the runner frees its presses in dispose */
  TocsinRecord          *record;        /* owned */
  guint                  index;
  TocsinMessageAction   *action;        /* owned copy: the record may be updated meanwhile */
  TocsinRenderedRequest *request;       /* owned; NULL for a view */
  char                  *webhook_id;    /* one per press, the same on each of its attempts */
  guint                  attempt;       /* the attempt being sent, or the last one sent */
  gboolean               in_flight;     /* sending (or opening) now */
  guint                  wait_id;       /* waiting for the next attempt (retry or held host) */
  GCancellable          *cancellable;
} Press;

struct _TocsinActionRunner
{
  GObject parent_instance;

  /* owned */
  TocsinHistory  *history;
  TocsinNotifier *notifier;      /* may be NULL */
  TocsinOutbound *outbound;
  guint           max_attempts;
  GHashTable     *presses;       /* "record-id/index" → Press */
  GHashTable     *last;          /* record id (gint64 *) → TocsinActionPress */
  GCancellable   *cancellable;
};

G_DEFINE_FINAL_TYPE (TocsinActionRunner, tocsin_action_runner, G_TYPE_OBJECT)

enum {
  SIGNAL_PRESS_STARTED,
  SIGNAL_PRESS_DONE,
  SIGNAL_PRESS_FAILED,
  SIGNAL_LAST_PRESSES_LOADED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static char *
press_key (gint64 record_id,
           guint  index)
{
  return g_strdup_printf ("%" G_GINT64_FORMAT "/%u", record_id, index);
}

static TocsinMessageAction *
action_copy (const TocsinMessageAction *action)
{
  TocsinMessageAction *copy = g_new0 (TocsinMessageAction, 1);

  copy->kind = g_strdup (action->kind);
  copy->label = g_strdup (action->label);
  copy->url = g_strdup (action->url);
  copy->method = g_strdup (action->method);
  copy->headers = g_strdupv (action->headers);
  copy->body = g_strdup (action->body);
  copy->retry = action->retry;
  copy->clear = action->clear;
  return copy;
}

static void
press_free (gpointer data)
{
  Press *press = data;

  g_cancellable_cancel (press->cancellable);
  g_clear_object (&press->cancellable);
  g_clear_handle_id (&press->wait_id, g_source_remove);
  g_clear_object (&press->record);
  g_clear_pointer (&press->action, tocsin_message_action_free);
  g_clear_pointer (&press->request, tocsin_rendered_request_free);
  g_free (press->webhook_id);
  g_free (press);
}

static gboolean
is_view (const TocsinMessageAction *action)
{
  return g_strcmp0 (action->kind, "view") == 0;
}

/* ---- the object --------------------------------------------------------------------------- */

static void
tocsin_action_runner_dispose (GObject *object)
{
  TocsinActionRunner *self = TOCSIN_ACTION_RUNNER (object);

  g_cancellable_cancel (self->cancellable);
  if (self->presses)
    g_hash_table_remove_all (self->presses);
  g_clear_object (&self->history);
  g_clear_object (&self->notifier);

  G_OBJECT_CLASS (tocsin_action_runner_parent_class)->dispose (object);
}

static void
tocsin_action_runner_finalize (GObject *object)
{
  TocsinActionRunner *self = TOCSIN_ACTION_RUNNER (object);

  g_hash_table_unref (self->presses);
  g_hash_table_unref (self->last);
  g_clear_pointer (&self->outbound, tocsin_outbound_free);
  g_clear_object (&self->cancellable);

  G_OBJECT_CLASS (tocsin_action_runner_parent_class)->finalize (object);
}

static void
tocsin_action_runner_class_init (TocsinActionRunnerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = tocsin_action_runner_dispose;
  object_class->finalize = tocsin_action_runner_finalize;

  signals[SIGNAL_PRESS_STARTED] =
    g_signal_new ("press-started", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_INT64, G_TYPE_UINT);
  signals[SIGNAL_PRESS_DONE] =
    g_signal_new ("press-done", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_INT64, G_TYPE_UINT, G_TYPE_UINT);
  signals[SIGNAL_PRESS_FAILED] =
    g_signal_new ("press-failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_INT64, G_TYPE_UINT, G_TYPE_STRING);
  signals[SIGNAL_LAST_PRESSES_LOADED] =
    g_signal_new ("last-presses-loaded", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
tocsin_action_runner_init (TocsinActionRunner *self)
{
  self->presses = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, press_free);
  self->last = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                      (GDestroyNotify) tocsin_action_press_free);
  self->cancellable = g_cancellable_new ();
}

static void
last_presses_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(TocsinActionRunner) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) presses = tocsin_history_list_presses_finish (TOCSIN_HISTORY (object),
                                                                     result, &error);

  if (presses == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_debug ("Could not read the press log: %s", error->message);
      return;
    }
  for (guint i = 0; i < presses->len; i++)
    {
      TocsinActionPress *press = presses->pdata[i];

      /* A press of this session is newer than anything read back. */
      if (!g_hash_table_contains (self->last, &press->record_id))
        g_hash_table_insert (self->last, g_memdup2 (&press->record_id, sizeof (gint64)),
                             tocsin_action_press_copy (press));
    }
  g_signal_emit (self, signals[SIGNAL_LAST_PRESSES_LOADED], 0);
}

TocsinActionRunner *
tocsin_action_runner_new (TocsinHistory              *history,
                          TocsinNotifier             *notifier,
                          const TocsinOutboundConfig *config)
{
  TocsinActionRunner *self;
  TocsinOutboundConfig defaults;

  g_return_val_if_fail (TOCSIN_IS_HISTORY (history), NULL);
  g_return_val_if_fail (notifier == NULL || TOCSIN_IS_NOTIFIER (notifier), NULL);

  if (config == NULL)
    {
      tocsin_outbound_config_init (&defaults);
      config = &defaults;
    }
  self = g_object_new (TOCSIN_TYPE_ACTION_RUNNER, NULL);
  self->history = g_object_ref (history);
  if (notifier)
    self->notifier = g_object_ref (notifier);
  self->outbound = tocsin_outbound_new (config);
  self->max_attempts = MAX (config->max_attempts, 1);
  tocsin_history_last_presses_async (history, LAST_PRESSES_LOADED, self->cancellable,
                                     last_presses_cb, g_object_ref (self));
  return self;
}

void
tocsin_action_runner_set_tls_database (TocsinActionRunner *self,
                                       GTlsDatabase       *database)
{
  g_return_if_fail (TOCSIN_IS_ACTION_RUNNER (self));
  g_return_if_fail (database == NULL || G_IS_TLS_DATABASE (database));

  tocsin_outbound_set_extra_ca (self->outbound, database);
}

/* ---- an attempt's end --------------------------------------------------------------------- */

typedef struct
{
  TocsinActionRunner *self;     /* owned */
  TocsinActionPress  *press;    /* owned */
  char               *failure;  /* a sentence for "press-failed", or NULL */
} Logged;

static void
logged_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Logged *logged = user_data;
  g_autoptr(TocsinActionRunner) self = logged->self;
  g_autoptr(TocsinActionPress) press = logged->press;
  g_autofree char *failure = logged->failure;
  g_autoptr(GError) error = NULL;
  gint64 id;

  g_free (logged);
  id = tocsin_history_change_finish (TOCSIN_HISTORY (object), result, &error);
  if (id < 0)
    g_debug ("Could not log a press: %s", error->message);
  else
    press->id = id;
  if (self->history == NULL)
    return;  /* disposed meanwhile */
  g_hash_table_replace (self->last, g_memdup2 (&press->record_id, sizeof (gint64)),
                        tocsin_action_press_copy (press));
  g_signal_emit (self, signals[SIGNAL_PRESS_DONE], 0, press->record_id, press->action_index,
                 press->attempt);
  if (failure)
    g_signal_emit (self, signals[SIGNAL_PRESS_FAILED], 0, press->record_id, press->action_index,
                   failure);
}

/* Logs @attempt's result (the press log, then "press-done"). @failure: a final failure to say. */
static void
log_press (TocsinActionRunner *self,
           Press              *press,
           TocsinActionPress  *entry,
           const char         *failure)
{
  Logged *logged = g_new0 (Logged, 1);

  entry->record_id = tocsin_record_get_id (press->record);
  entry->channel_name = g_strdup (tocsin_record_get_channel_name (press->record));
  entry->action_index = press->index;
  entry->label = g_strdup (press->action->label);
  entry->kind = g_strdup (press->action->kind);
  logged->self = g_object_ref (self);
  logged->press = entry;
  logged->failure = g_strdup (failure);
  tocsin_history_add_press_async (self->history, entry, NULL, logged_cb, logged);
}

static void
finish_press (TocsinActionRunner *self,
              Press              *press)
{
  g_autofree char *key = press_key (tocsin_record_get_id (press->record), press->index);

  g_hash_table_remove (self->presses, key);
}

/* ---- view --------------------------------------------------------------------------------- */

typedef struct
{
  TocsinActionRunner *self;     /* owned */
  char               *key;
  gint64              started_ms;
  gint64              started_us;
} Launch;

static void
launched_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  Launch *launch = user_data;
  g_autoptr(TocsinActionRunner) self = launch->self;
  g_autofree char *key = launch->key;
  g_autoptr(GError) error = NULL;
  TocsinActionPress *entry;
  g_autofree char *failure = NULL;
  Press *press;
  gint64 duration_ms = (g_get_monotonic_time () - launch->started_us) / 1000;
  gint64 started_ms = launch->started_ms;

  g_free (launch);
  if (G_IS_TASK (result))
    g_task_propagate_boolean (G_TASK (result), &error);
  else
    g_app_info_launch_default_for_uri_finish (result, &error);
  press = g_hash_table_lookup (self->presses, key);
  if (press == NULL)
    return;  /* disposed */

  entry = tocsin_action_press_new ();
  entry->url = tocsin_request_url_for_log (press->action->url);
  entry->pressed_at_ms = started_ms;
  entry->attempt = 1;
  entry->duration_ms = duration_ms;
  if (error)
    {
      /* Translators: %s says why, e.g. "No application is registered as handling this file" */
      entry->error = g_strdup_printf (_("Could not open the link: %s"), error->message);
      entry->outcome = TOCSIN_ATTEMPT_FINAL_ERROR;
      failure = g_strdup (entry->error);
    }
  else
    entry->outcome = TOCSIN_ATTEMPT_SUCCESS;
  if (!error && press->action->clear && self->notifier)
    tocsin_notifier_withdraw (self->notifier, tocsin_record_get_id (press->record));
  log_press (self, press, entry, failure);
  finish_press (self, press);
}

static void
open_view (TocsinActionRunner *self,
           Press              *press,
           const char         *key)
{
  Launch *launch = g_new0 (Launch, 1);

  launch->self = g_object_ref (self);
  launch->key = g_strdup (key);
  launch->started_ms = g_get_real_time () / 1000;
  launch->started_us = g_get_monotonic_time ();
  press->in_flight = TRUE;
  press->attempt = 1;
  /* The message decoder only lets safe http(s) links through; check again at the door, as
   * the window does for a record's link. */
  if (!tocsin_link_is_safe (press->action->url, NULL))
    {
      g_autoptr(GTask) task = g_task_new (NULL, NULL, launched_cb, launch);

      g_task_set_source_tag (task, g_app_info_launch_default_for_uri_async);
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               _("it is not a plain web address"));
      return;
    }
  g_app_info_launch_default_for_uri_async (press->action->url, NULL, press->cancellable,
                                           launched_cb, launch);
}

/* ---- http --------------------------------------------------------------------------------- */

static void send_attempt (TocsinActionRunner *self, Press *press);

static gboolean
wait_done_cb (gpointer user_data)
{
  Press *press = user_data;

  press->wait_id = 0;
  send_attempt (press->runner, press);
  return G_SOURCE_REMOVE;
}

static void
wait_until (Press  *press,
            gint64  at_ms)
{
  gint64 delay_ms = at_ms - g_get_real_time () / 1000;

  g_clear_handle_id (&press->wait_id, g_source_remove);
  press->wait_id = g_timeout_add ((guint) CLAMP (delay_ms, 0, G_MAXINT), wait_done_cb, press);
}

typedef struct
{
  TocsinActionRunner *self;   /* owned */
  char               *key;
} Sent;

static void
sent_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  Sent *sent = user_data;
  g_autoptr(TocsinActionRunner) self = sent->self;
  g_autofree char *key = sent->key;
  g_autoptr(TocsinAttempt) attempt = NULL;
  g_autofree char *failure = NULL;
  TocsinActionPress *entry;
  Press *press;
  gboolean again;

  g_free (sent);
  if (self->outbound == NULL)
    return;
  attempt = tocsin_outbound_send_finish (self->outbound, result);
  press = g_hash_table_lookup (self->presses, key);
  if (press == NULL || attempt == NULL)
    return;  /* disposed: the press went with the runner */
  press->in_flight = FALSE;

  entry = tocsin_action_press_new ();
  entry->url = g_strdup (attempt->url);
  entry->pressed_at_ms = attempt->started_ms;
  entry->attempt = press->attempt;
  entry->status = attempt->status;
  entry->error = g_strdup (attempt->error);
  entry->duration_ms = attempt->duration_ms;
  entry->answer_start = g_strdup (attempt->answer_start);
  entry->outcome = attempt->outcome;
  entry->retry_at_ms = attempt->retry_at_ms;

  /* Policy none is one attempt whatever the outbound says; retry follows its retry time. */
  again = attempt->outcome == TOCSIN_ATTEMPT_RETRY && press->action->retry &&
          press->attempt < self->max_attempts;
  if (attempt->outcome == TOCSIN_ATTEMPT_RETRY && !again)
    {
      entry->outcome = TOCSIN_ATTEMPT_FINAL_ERROR;
      entry->retry_at_ms = 0;
    }
  if (entry->outcome == TOCSIN_ATTEMPT_FINAL_ERROR)
    failure = g_strdup_printf (_("“%s” failed: %s"), press->action->label,
                               attempt->error ? attempt->error : _("no answer"));
  if (entry->outcome == TOCSIN_ATTEMPT_SUCCESS && press->action->clear && self->notifier)
    tocsin_notifier_withdraw (self->notifier, tocsin_record_get_id (press->record));

  log_press (self, press, entry, failure);
  if (again)
    wait_until (press, attempt->retry_at_ms);
  else
    finish_press (self, press);
}

static void
send_attempt (TocsinActionRunner *self,
              Press              *press)
{
  g_autofree char *key = press_key (tocsin_record_get_id (press->record), press->index);
  gint64 ready_at = tocsin_outbound_host_ready_at (self->outbound, press->request->url);
  Sent *sent;

  /* A host held back (pacing, the circuit breaker) is waited for: that is not an attempt. */
  if (ready_at > g_get_real_time () / 1000)
    {
      wait_until (press, ready_at);
      return;
    }
  press->attempt++;
  press->in_flight = TRUE;
  sent = g_new0 (Sent, 1);
  sent->self = g_object_ref (self);
  sent->key = g_steal_pointer (&key);
  tocsin_outbound_send_async (self->outbound, press->request, press->webhook_id, press->attempt,
                              press->cancellable, sent_cb, sent);
}

static TocsinRenderedRequest *
request_from_action (const TocsinMessageAction *action)
{
  TocsinRenderedRequest *request = g_new0 (TocsinRenderedRequest, 1);
  const char *method = action->method ? action->method : "POST";

  request->name = g_strdup (action->label);
  request->method = g_ascii_strup (method, -1);
  request->url = g_strdup (action->url);
  request->headers = action->headers ? g_strdupv (action->headers) : g_new0 (char *, 1);
  if (action->body && *action->body && !g_str_equal (request->method, "GET"))
    request->body = g_bytes_new (action->body, strlen (action->body));
  request->policy = action->retry ? TOCSIN_REQUEST_POLICY_RETRY : TOCSIN_REQUEST_POLICY_NONE;
  return request;
}

/* ---- pressing ----------------------------------------------------------------------------- */

gboolean
tocsin_action_runner_press (TocsinActionRunner *self,
                            TocsinRecord       *record,
                            guint               index)
{
  const TocsinMessageAction *action;
  g_autofree char *key = NULL;
  g_autofree char *uuid = NULL;
  Press *press;

  g_return_val_if_fail (TOCSIN_IS_ACTION_RUNNER (self), FALSE);
  g_return_val_if_fail (TOCSIN_IS_RECORD (record), FALSE);

  action = tocsin_record_get_action (record, index);
  if (action == NULL || tocsin_record_get_id (record) == 0 || self->history == NULL)
    return FALSE;
  key = press_key (tocsin_record_get_id (record), index);
  press = g_hash_table_lookup (self->presses, key);
  if (press != NULL)
    {
      /* Pressed again while it waits for its next attempt: that attempt goes now. */
      if (press->in_flight || press->request == NULL)
        return FALSE;
      g_clear_handle_id (&press->wait_id, g_source_remove);
      send_attempt (self, press);
      g_signal_emit (self, signals[SIGNAL_PRESS_STARTED], 0, tocsin_record_get_id (record),
                     index);
      return TRUE;
    }

  press = g_new0 (Press, 1);
  press->runner = self;
  press->record = g_object_ref (record);
  press->index = index;
  press->action = action_copy (action);
  press->cancellable = g_cancellable_new ();
  uuid = g_uuid_string_random ();
  /* Standard Webhooks' id: one per press, the same on every attempt of it. */
  press->webhook_id = g_strconcat ("press_", uuid, NULL);
  g_hash_table_insert (self->presses, g_strdup (key), press);

  if (is_view (action))
    open_view (self, press, key);
  else
    {
      press->request = request_from_action (action);
      send_attempt (self, press);
    }
  g_signal_emit (self, signals[SIGNAL_PRESS_STARTED], 0, tocsin_record_get_id (record), index);
  return TRUE;
}

typedef struct
{
  TocsinActionRunner *self;   /* owned */
  guint               index;
} PressById;

static void
press_by_id_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  PressById *data = user_data;
  g_autoptr(TocsinActionRunner) self = data->self;
  g_autoptr(TocsinRecord) record = NULL;
  g_autoptr(GError) error = NULL;
  guint index = data->index;

  g_free (data);
  record = tocsin_history_get_record_finish (TOCSIN_HISTORY (object), result, &error);
  if (record == NULL)
    {
      if (error && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_debug ("Could not read the record to press: %s", error->message);
      return;
    }
  if (self->history != NULL)
    tocsin_action_runner_press (self, record, index);
}

void
tocsin_action_runner_press_by_id (TocsinActionRunner *self,
                                  gint64              record_id,
                                  guint               index)
{
  PressById *data;

  g_return_if_fail (TOCSIN_IS_ACTION_RUNNER (self));

  if (self->history == NULL)
    return;
  data = g_new0 (PressById, 1);
  data->self = g_object_ref (self);
  data->index = index;
  tocsin_history_get_record_async (self->history, record_id, self->cancellable, press_by_id_cb,
                                   data);
}

gboolean
tocsin_action_runner_is_busy (TocsinActionRunner *self,
                              gint64              record_id,
                              guint               index)
{
  g_autofree char *key = NULL;
  Press *press;

  g_return_val_if_fail (TOCSIN_IS_ACTION_RUNNER (self), FALSE);

  key = press_key (record_id, index);
  press = g_hash_table_lookup (self->presses, key);
  return press != NULL && press->in_flight;
}

const TocsinActionPress *
tocsin_action_runner_get_last_press (TocsinActionRunner *self,
                                     gint64              record_id)
{
  g_return_val_if_fail (TOCSIN_IS_ACTION_RUNNER (self), NULL);
  return g_hash_table_lookup (self->last, &record_id);
}

char *
tocsin_action_press_describe (const TocsinActionPress *press)
{
  g_return_val_if_fail (press != NULL, NULL);

  switch (press->outcome)
    {
    case TOCSIN_ATTEMPT_SUCCESS:
      if (g_strcmp0 (press->kind, "view") == 0)
        return g_strdup (_("Opened"));
      /* Translators: the result of an action button's request; %u is the HTTP status */
      return g_strdup_printf (_("Sent · %u"), press->status);
    case TOCSIN_ATTEMPT_RETRY:
      {
        g_autoptr(GDateTime) at = g_date_time_new_from_unix_local (press->retry_at_ms / 1000);
        g_autofree char *clock = at ? g_date_time_format (at, "%H:%M:%S") : g_strdup ("");

        /* Translators: %s is a time such as 20:31:05 */
        return g_strdup_printf (_("Retrying at %s"), clock);
      }
    case TOCSIN_ATTEMPT_FINAL_ERROR:
    default:
      /* Translators: %s says what went wrong, e.g. "timed out after 10 s" */
      return g_strdup_printf (_("Failed: %s"), press->error ? press->error : _("no answer"));
    }
}
