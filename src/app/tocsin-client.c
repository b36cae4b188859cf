/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-client"

#include "config.h"

#include <glib/gi18n.h>

#include "tocsin-client.h"
#include "tocsin-tls.h"
#include "tocsin-protocol.h"

/* Retention clean-up runs at start and then this often. */
#define PRUNE_INTERVAL_SECONDS (6 * 60 * 60)

struct _TocsinClient
{
  GObject parent_instance;

  /* Owned references: */
  TocsinHistory  *history;
  TocsinNotifier *notifier;       /* may be NULL */
  GSettings      *settings;       /* may be NULL (no schema installed) */
  GListStore     *subscriptions;  /* TocsinSubscription */
  GListStore     *connections;    /* TocsinConnection */
  GTlsDatabase   *tls_database;   /* from the ca-file setting, or NULL */
  SoupSession    *session;        /* for channel info */
  GCancellable   *cancellable;

  guint           prune_source;
  guint           tls_generation;  /* bumped by each reload, so a late load is dropped */
  gboolean        tls_pending;     /* the CA file is being read */
  GQueue          tls_waiting;     /* channel-info GTasks held until it is */
  gboolean        started;
  gboolean        starting;
};

G_DEFINE_FINAL_TYPE (TocsinClient, tocsin_client, G_TYPE_OBJECT)

enum {
  SIGNAL_STARTED,
  SIGNAL_RECORD_RECEIVED,
  SIGNAL_MISSED,
  SIGNAL_ERROR,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

enum {
  PROP_0,
  PROP_TLS_DATABASE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* ---- lookups ------------------------------------------------------------------------------ */

TocsinSubscription *
tocsin_client_find_subscription_by_token (TocsinClient *self,
                                          const char   *relay_url,
                                          const char   *token)
{
  guint n;

  g_return_val_if_fail (TOCSIN_IS_CLIENT (self), NULL);

  n = g_list_model_get_n_items (G_LIST_MODEL (self->subscriptions));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(TocsinSubscription) sub =
        g_list_model_get_item (G_LIST_MODEL (self->subscriptions), i);

      if (g_strcmp0 (tocsin_subscription_get_relay_url (sub), relay_url) == 0 &&
          g_strcmp0 (tocsin_subscription_get_token (sub), token) == 0)
        return sub;   /* the store keeps it alive */
    }
  return NULL;
}

TocsinSubscription *
tocsin_client_find_subscription (TocsinClient *self,
                                 const char   *relay_url,
                                 gint64        channel_id)
{
  guint n;

  g_return_val_if_fail (TOCSIN_IS_CLIENT (self), NULL);

  n = g_list_model_get_n_items (G_LIST_MODEL (self->subscriptions));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(TocsinSubscription) sub =
        g_list_model_get_item (G_LIST_MODEL (self->subscriptions), i);

      if (g_strcmp0 (tocsin_subscription_get_relay_url (sub), relay_url) == 0 &&
          tocsin_subscription_get_channel_id (sub) == channel_id)
        return sub;
    }
  return NULL;
}

TocsinConnection *
tocsin_client_get_connection (TocsinClient *self,
                              const char   *relay_url)
{
  guint n;

  g_return_val_if_fail (TOCSIN_IS_CLIENT (self), NULL);

  n = g_list_model_get_n_items (G_LIST_MODEL (self->connections));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(TocsinConnection) conn =
        g_list_model_get_item (G_LIST_MODEL (self->connections), i);

      if (g_strcmp0 (tocsin_connection_get_relay_url (conn), relay_url) == 0)
        return conn;
    }
  return NULL;
}

/* ---- messages from the relays ----------------------------------------------------------- */

typedef struct
{
  TocsinClient       *self;
  TocsinSubscription *subscription;
} StoreData;

static void
message_stored (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  StoreData *data = user_data;
  TocsinClient *self = data->self;
  g_autoptr(TocsinRecord) record = NULL;
  g_autoptr(GError) error = NULL;
  TocsinStoreResult outcome = TOCSIN_STORE_DUPLICATE;

  record = tocsin_history_store_message_finish (TOCSIN_HISTORY (object), result, &outcome, &error);
  if (record == NULL)
    {
      /* The history cannot write (disk full, read-only...): it says so through its
       * "write-error" property (a banner in the window), keeps the message to write it later,
       * and the person still gets the pop-up. A replacement is shown as new: the record it
       * replaces may not be stored either. */
      g_autoptr(TocsinRecord) unsaved =
        tocsin_history_store_message_get_unsaved (TOCSIN_HISTORY (object), result);

      g_debug ("Could not store a message: %s", error->message);
      if (self->notifier && unsaved)
        tocsin_notifier_notify (self->notifier, unsaved, data->subscription);
    }
  else if (outcome != TOCSIN_STORE_DUPLICATE)
    {
      if (self->notifier && outcome == TOCSIN_STORE_ADDED)
        tocsin_notifier_notify (self->notifier, record, data->subscription);
      else if (self->notifier && outcome == TOCSIN_STORE_REPLACED)
        tocsin_notifier_update (self->notifier, record);
      g_signal_emit (self, signals[SIGNAL_RECORD_RECEIVED], 0, record, (int) outcome);
    }

  g_object_unref (data->self);
  g_object_unref (data->subscription);
  g_free (data);
}

static void
on_message (TocsinConnection *conn,
            const char       *token,
            gpointer          message_ptr,
            TocsinClient     *self)
{
  TocsinMessage *message = message_ptr;
  const char *relay_url = tocsin_connection_get_relay_url (conn);
  TocsinSubscription *sub = tocsin_client_find_subscription_by_token (self, relay_url, token);
  StoreData *data;
  char *saved_name;

  if (sub == NULL)
    return;
  /* Dedup by (relay, channel, id): ids only grow within a channel, so anything at or below the
   * cursor is already stored (the history's unique key catches the rest). */
  if (message->id <= tocsin_subscription_get_cursor (sub))
    return;
  tocsin_subscription_set_cursor (sub, message->id);

  data = g_new0 (StoreData, 1);
  data->self = g_object_ref (self);
  data->subscription = g_object_ref (sub);

  /* Records keep the channel's name even when the frame left it out. */
  saved_name = message->channel_name;
  if (saved_name == NULL)
    message->channel_name = (char *) tocsin_subscription_get_name (sub);
  tocsin_history_store_message_async (self->history, relay_url, message, NULL,
                                      message_stored, data);
  message->channel_name = saved_name;
}

static void
on_subscribed (TocsinConnection *conn,
               const char       *token,
               gint64            channel_id,
               const char       *name,
               const char       *description,
               gint64            last_id,
               TocsinClient     *self)
{
  TocsinSubscription *sub =
    tocsin_client_find_subscription_by_token (self, tocsin_connection_get_relay_url (conn), token);

  if (sub == NULL)
    return;
  g_object_freeze_notify (G_OBJECT (sub));
  tocsin_subscription_set_channel_id (sub, channel_id);
  if (name)
    tocsin_subscription_set_name (sub, name);
  if (description)
    tocsin_subscription_set_description (sub, description);
  tocsin_subscription_set_error (sub, NULL);
  if (tocsin_subscription_get_cursor (sub) == TOCSIN_CURSOR_NONE)
    tocsin_subscription_set_cursor (sub, last_id);
  g_object_thaw_notify (G_OBJECT (sub));
  tocsin_history_save_subscription_async (self->history, sub, NULL, NULL, NULL);
}

static void
on_gap (TocsinConnection *conn,
        const char       *token,
        gint64            channel_id,
        gint64            from,
        gint64            to,
        TocsinClient     *self)
{
  const char *relay_url = tocsin_connection_get_relay_url (conn);
  TocsinSubscription *sub = tocsin_client_find_subscription_by_token (self, relay_url, token);

  if (sub == NULL)
    return;
  tocsin_history_add_gap_async (self->history, relay_url, channel_id,
                                tocsin_subscription_get_name (sub), from, to, NULL, NULL, NULL);
  /* The missed ids will never come: the stored cursor moves past them, or the next start
   * would ask for them and report the same gap again. */
  if (to > tocsin_subscription_get_cursor (sub))
    {
      tocsin_subscription_set_cursor (sub, to);
      tocsin_history_save_subscription_async (self->history, sub, NULL, NULL, NULL);
    }
  g_signal_emit (self, signals[SIGNAL_MISSED], 0, sub, from, to);
}

static void
on_refused (TocsinConnection *conn,
            const char       *token,
            const char       *code,
            const char       *message,
            TocsinClient     *self)
{
  TocsinSubscription *sub;

  if (token == NULL)
    return;
  sub = tocsin_client_find_subscription_by_token (self, tocsin_connection_get_relay_url (conn),
                                                  token);
  if (sub == NULL)
    return;
  if (g_strcmp0 (code, "unknown-token") == 0)
    tocsin_subscription_set_error (sub, _("The relay does not know this channel any more. Its "
                                          "owner may have deleted it or changed its subscribe "
                                          "link."));
  else
    tocsin_subscription_set_error (sub, message && *message ? message : code);
}

static void
on_closed (TocsinConnection *conn,
           const char       *token,
           gint64            channel_id,
           const char       *reason,
           TocsinClient     *self)
{
  TocsinSubscription *sub =
    tocsin_client_find_subscription_by_token (self, tocsin_connection_get_relay_url (conn), token);

  if (sub == NULL)
    return;
  if (g_strcmp0 (reason, "deleted") == 0)
    tocsin_subscription_set_error (sub, _("Its owner deleted this channel."));
  else
    tocsin_subscription_set_error (sub, _("Its owner changed this channel’s subscribe link; ask "
                                          "for the new one."));
}

/* Something the relay sent was refused or not kept (a frame that breaks the protocol, a message
 * too large, a link that was removed): the subscription it concerns says so, or every
 * subscription on that relay when the frame named none. */
static void
on_problem (TocsinConnection *conn,
            const char       *token,
            const char       *sentence,
            TocsinClient     *self)
{
  const char *relay_url = tocsin_connection_get_relay_url (conn);
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->subscriptions));

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(TocsinSubscription) sub =
        g_list_model_get_item (G_LIST_MODEL (self->subscriptions), i);

      if (g_strcmp0 (tocsin_subscription_get_relay_url (sub), relay_url) == 0 &&
          (token == NULL || g_strcmp0 (tocsin_subscription_get_token (sub), token) == 0))
        tocsin_subscription_set_error (sub, sentence);
    }
}

static TocsinConnection *
ensure_connection (TocsinClient *self,
                   const char   *relay_url)
{
  TocsinConnection *conn = tocsin_client_get_connection (self, relay_url);

  if (conn)
    return conn;

  conn = tocsin_connection_new (relay_url, self->tls_database);
  g_signal_connect_object (conn, "message", G_CALLBACK (on_message), self, 0);
  g_signal_connect_object (conn, "subscribed", G_CALLBACK (on_subscribed), self, 0);
  g_signal_connect_object (conn, "gap", G_CALLBACK (on_gap), self, 0);
  g_signal_connect_object (conn, "refused", G_CALLBACK (on_refused), self, 0);
  g_signal_connect_object (conn, "closed", G_CALLBACK (on_closed), self, 0);
  g_signal_connect_object (conn, "problem", G_CALLBACK (on_problem), self, 0);
  g_list_store_append (self->connections, conn);
  g_object_unref (conn);   /* the store holds it */
  if (self->started)
    tocsin_connection_start (conn);
  return conn;
}

static void
add_subscription (TocsinClient       *self,
                  TocsinSubscription *sub)
{
  TocsinConnection *conn;

  g_list_store_append (self->subscriptions, sub);
  conn = ensure_connection (self, tocsin_subscription_get_relay_url (sub));
  tocsin_connection_subscribe (conn, tocsin_subscription_get_token (sub),
                               tocsin_subscription_get_cursor (sub));
}

/* ---- starting ----------------------------------------------------------------------------- */

static void
prune (TocsinClient *self)
{
  int days;

  if (self->settings == NULL)
    return;
  days = g_settings_get_int (self->settings, "history-retention-days");
  if (days > 0)
    tocsin_history_prune_async (self->history, days, NULL, NULL, NULL);
}

static gboolean
prune_cb (gpointer data)
{
  prune (TOCSIN_CLIENT (data));
  return G_SOURCE_CONTINUE;
}

static void
subscriptions_loaded (GObject      *object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  g_autoptr(TocsinClient) self = user_data;
  g_autoptr(GPtrArray) subs = NULL;
  g_autoptr(GError) error = NULL;
  guint n;

  subs = tocsin_history_load_subscriptions_finish (TOCSIN_HISTORY (object), result, &error);
  self->starting = FALSE;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

  self->started = TRUE;
  if (subs == NULL)
    g_signal_emit (self, signals[SIGNAL_ERROR], 0, error->message);
  else
    for (guint i = 0; i < subs->len; i++)
      {
        TocsinSubscription *sub = g_ptr_array_index (subs, i);

        /* Subscribed meanwhile (e.g. --subscribe raced the load): keep the live object. */
        if (tocsin_client_find_subscription_by_token (self, tocsin_subscription_get_relay_url (sub),
                                                      tocsin_subscription_get_token (sub)))
          continue;
        add_subscription (self, sub);
      }

  n = g_list_model_get_n_items (G_LIST_MODEL (self->connections));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(TocsinConnection) conn =
        g_list_model_get_item (G_LIST_MODEL (self->connections), i);

      tocsin_connection_start (conn);
    }

  prune (self);
  if (self->prune_source == 0)
    self->prune_source = g_timeout_add_seconds (PRUNE_INTERVAL_SECONDS, prune_cb, self);

  g_signal_emit (self, signals[SIGNAL_STARTED], 0);
}

void
tocsin_client_start (TocsinClient *self)
{
  g_return_if_fail (TOCSIN_IS_CLIENT (self));

  if (self->started || self->starting)
    return;
  self->starting = TRUE;
  tocsin_history_load_subscriptions_async (self->history, self->cancellable,
                                           subscriptions_loaded, g_object_ref (self));
}

gboolean
tocsin_client_get_started (TocsinClient *self)
{
  g_return_val_if_fail (TOCSIN_IS_CLIENT (self), FALSE);
  return self->started;
}

void
tocsin_client_stop (TocsinClient *self)
{
  guint n;

  g_return_if_fail (TOCSIN_IS_CLIENT (self));

  self->started = FALSE;
  g_clear_handle_id (&self->prune_source, g_source_remove);
  n = g_list_model_get_n_items (G_LIST_MODEL (self->connections));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(TocsinConnection) conn =
        g_list_model_get_item (G_LIST_MODEL (self->connections), i);

      tocsin_connection_stop (conn);
    }
}

/* ---- TLS ---------------------------------------------------------------------------------- */

static void send_info_request (TocsinClient *self,
                               GTask        *task);

/* Requests that waited for the CA file go out now, with whatever trust it gave. */
static void
flush_tls_waiting (TocsinClient *self)
{
  GTask *task;

  while ((task = g_queue_pop_head (&self->tls_waiting)))
    send_info_request (self, task);
}

/* Reading the CA file is file I/O, so it happens in a worker thread. Until it is loaded the
 * connections use the system's trust only; setting the database reconnects any connection that
 * is not up yet (TocsinConnection), so a self-signed relay is reached as soon as it is read. */
static void
load_tls_thread (GTask        *task,
                 gpointer      source_object,
                 gpointer      task_data,
                 GCancellable *cancellable)
{
  const char *ca_file = task_data;
  GError *error = NULL;
  GTlsDatabase *database = g_tls_file_database_new (ca_file, &error);

  if (database == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, database, g_object_unref);
}

static void
apply_tls_database (TocsinClient *self,
                    GTlsDatabase *database)
{
  guint n;

  if (!g_set_object (&self->tls_database, database))
    return;
  n = g_list_model_get_n_items (G_LIST_MODEL (self->connections));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(TocsinConnection) conn =
        g_list_model_get_item (G_LIST_MODEL (self->connections), i);

      tocsin_connection_set_tls_database (conn, self->tls_database);
    }
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TLS_DATABASE]);
}

static void
tls_loaded (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  TocsinClient *self = TOCSIN_CLIENT (object);
  guint generation = GPOINTER_TO_UINT (user_data);
  g_autoptr(GTlsDatabase) database = NULL;
  g_autoptr(GError) error = NULL;

  database = g_task_propagate_pointer (G_TASK (result), &error);
  /* The setting changed again meanwhile (or the client is going away): not this one. */
  if (generation != self->tls_generation ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  self->tls_pending = FALSE;
  if (database == NULL)
    {
      const char *ca_file = g_task_get_task_data (G_TASK (result));
      g_autofree char *message =
        g_strdup_printf (_("The certificate authority file %s could not be used: %s"),
                         ca_file, error->message);
      g_signal_emit (self, signals[SIGNAL_ERROR], 0, message);
    }
  apply_tls_database (self, database);
  flush_tls_waiting (self);
}

void
tocsin_client_reload_tls (TocsinClient *self)
{
  g_autofree char *ca_file = NULL;
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (TOCSIN_IS_CLIENT (self));

  self->tls_generation++;
  if (self->settings != NULL)
    ca_file = g_settings_get_string (self->settings, "ca-file");
  if (ca_file == NULL || *ca_file == '\0')
    {
      self->tls_pending = FALSE;
      apply_tls_database (self, NULL);
      flush_tls_waiting (self);
      return;
    }

  self->tls_pending = TRUE;
  task = g_task_new (self, self->cancellable, tls_loaded,
                     GUINT_TO_POINTER (self->tls_generation));
  g_task_set_source_tag (task, tocsin_client_reload_tls);
  g_task_set_task_data (task, g_steal_pointer (&ca_file), g_free);
  g_task_run_in_thread (task, load_tls_thread);
}

GTlsDatabase *
tocsin_client_get_tls_database (TocsinClient *self)
{
  g_return_val_if_fail (TOCSIN_IS_CLIENT (self), NULL);
  return self->tls_database;
}

/* ---- GObject ------------------------------------------------------------------------------ */

static void
on_mark_read (TocsinNotifier *notifier,
              gint64          id,
              TocsinClient   *self)
{
  tocsin_client_mark_read (self, id, TRUE);
}

static void
tocsin_client_dispose (GObject *object)
{
  TocsinClient *self = TOCSIN_CLIENT (object);

  g_cancellable_cancel (self->cancellable);
  {
    GTask *task;

    while ((task = g_queue_pop_head (&self->tls_waiting)))
      {
        g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                 _("The request was cancelled."));
        g_object_unref (task);
      }
  }
  if (self->connections)
    tocsin_client_stop (self);
  g_clear_handle_id (&self->prune_source, g_source_remove);
  g_clear_object (&self->connections);
  g_clear_object (&self->subscriptions);
  g_clear_object (&self->notifier);
  g_clear_object (&self->history);
  g_clear_object (&self->settings);
  g_clear_object (&self->tls_database);
  g_clear_object (&self->session);
  g_clear_object (&self->cancellable);

  G_OBJECT_CLASS (tocsin_client_parent_class)->dispose (object);
}

static void
tocsin_client_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  TocsinClient *self = TOCSIN_CLIENT (object);

  switch (prop_id)
    {
    case PROP_TLS_DATABASE:
      g_value_set_object (value, self->tls_database);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tocsin_client_class_init (TocsinClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = tocsin_client_dispose;
  object_class->get_property = tocsin_client_get_property;

  /* The extra trust from the ca-file setting (NULL: the system's only), once it is read; the
   * owner API client follows it. */
  properties[PROP_TLS_DATABASE] =
    g_param_spec_object ("tls-database", NULL, NULL, G_TYPE_TLS_DATABASE,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  signals[SIGNAL_STARTED] =
    g_signal_new ("started", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[SIGNAL_RECORD_RECEIVED] =
    g_signal_new ("record-received", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, TOCSIN_TYPE_RECORD, G_TYPE_INT);
  signals[SIGNAL_MISSED] =
    g_signal_new ("missed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 3, TOCSIN_TYPE_SUBSCRIPTION,
                  G_TYPE_INT64, G_TYPE_INT64);
  signals[SIGNAL_ERROR] =
    g_signal_new ("error", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
tocsin_client_init (TocsinClient *self)
{
  self->subscriptions = g_list_store_new (TOCSIN_TYPE_SUBSCRIPTION);
  self->connections = g_list_store_new (TOCSIN_TYPE_CONNECTION);
  self->cancellable = g_cancellable_new ();
  self->session = soup_session_new_with_options ("timeout", 30, NULL);
}

TocsinClient *
tocsin_client_new (TocsinHistory  *history,
                   TocsinNotifier *notifier,
                   GSettings      *settings)
{
  TocsinClient *self;

  g_return_val_if_fail (TOCSIN_IS_HISTORY (history), NULL);
  g_return_val_if_fail (notifier == NULL || TOCSIN_IS_NOTIFIER (notifier), NULL);

  self = g_object_new (TOCSIN_TYPE_CLIENT, NULL);
  self->history = g_object_ref (history);
  if (notifier)
    {
      self->notifier = g_object_ref (notifier);
      /* The one place a popup's "Mark as read" is handled; the notifier withdraws it itself
       * once the history says the record is read. */
      g_signal_connect_object (notifier, "mark-read", G_CALLBACK (on_mark_read), self, 0);
      tocsin_notifier_follow_history (notifier, history);
    }
  if (settings)
    self->settings = g_object_ref (settings);
  else
    {
      GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
      g_autoptr(GSettingsSchema) schema = NULL;

      if (source)
        schema = g_settings_schema_source_lookup (source, APP_ID, TRUE);
      if (schema)
        self->settings = g_settings_new (APP_ID);
    }
  tocsin_client_reload_tls (self);
  return self;
}

TocsinHistory *
tocsin_client_get_history (TocsinClient *self)
{
  g_return_val_if_fail (TOCSIN_IS_CLIENT (self), NULL);
  return self->history;
}

TocsinNotifier *
tocsin_client_get_notifier (TocsinClient *self)
{
  g_return_val_if_fail (TOCSIN_IS_CLIENT (self), NULL);
  return self->notifier;
}

GListModel *
tocsin_client_get_subscriptions (TocsinClient *self)
{
  g_return_val_if_fail (TOCSIN_IS_CLIENT (self), NULL);
  return G_LIST_MODEL (self->subscriptions);
}

GListModel *
tocsin_client_get_connections (TocsinClient *self)
{
  g_return_val_if_fail (TOCSIN_IS_CLIENT (self), NULL);
  return G_LIST_MODEL (self->connections);
}

/* ---- channel info ------------------------------------------------------------------------- */

typedef struct
{
  char        *relay_url;
  char        *token;
  SoupMessage *msg;
} InfoData;

static void
info_data_free (gpointer data)
{
  InfoData *info = data;

  g_free (info->relay_url);
  g_free (info->token);
  g_clear_object (&info->msg);
  g_free (info);
}

typedef struct
{
  TocsinSubscription *subscription;
  JsonObject         *info;
} InfoResult;

static void
info_result_free (gpointer data)
{
  InfoResult *result = data;

  g_clear_object (&result->subscription);
  g_clear_pointer (&result->info, json_object_unref);
  g_free (result);
}

static void
channel_info_read (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  InfoData *info = g_task_get_task_data (task);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) json_error = NULL;
  g_autoptr(JsonObject) object_json = NULL;
  InfoResult *out;
  guint status;
  gsize length = 0;
  const char *data;

  body = soup_session_send_and_read_finish (SOUP_SESSION (object), result, &error);
  if (body == NULL)
    {
      if (g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE))
        g_task_return_new_error (task, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
                                 _("The relay’s certificate is not trusted. If the relay uses "
                                   "its own certificate authority, choose its CA file in the "
                                   "preferences."));
      else
        g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_FAILED,
                                 _("Could not reach the relay: %s"), error->message);
      return;
    }

  status = soup_message_get_status (info->msg);
  data = g_bytes_get_data (body, &length);
  /* A subscribe link can come from any web page, and so can the relay it names. */
  object_json = tocsin_protocol_parse_lookup (data ? data : "", length, &json_error);

  if (status == SOUP_STATUS_NOT_FOUND)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                               _("This subscribe link does not work any more. Ask the channel’s "
                                 "owner for a new one."));
      return;
    }
  if (!SOUP_STATUS_IS_SUCCESSFUL (status) || object_json == NULL)
    {
      const char *why = object_json ? tocsin_json_get_string (object_json,
                                                                                   "error", NULL)
                                    : NULL;
      if (why)
        g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", why);
      else if (json_error && SOUP_STATUS_IS_SUCCESSFUL (status))
        g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_FAILED,
                                 _("The relay’s answer could not be read (%s). Is this a Tocsin "
                                   "subscribe link?"), json_error->message);
      else
        g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_FAILED,
                                 _("The relay answered with an unexpected reply (HTTP %u). Is "
                                   "this a Tocsin subscribe link?"), status);
      return;
    }

  out = g_new0 (InfoResult, 1);
  out->subscription = tocsin_subscription_new (info->relay_url, info->token);
  tocsin_subscription_set_channel_id (out->subscription,
                                      tocsin_json_get_int (object_json,
                                                                               "id", 0));
  tocsin_subscription_set_name (out->subscription,
                                tocsin_json_get_string (object_json,
                                                                            "name", NULL));
  tocsin_subscription_set_description (out->subscription,
                                       tocsin_json_get_string (object_json,
                                                                                   "description",
                                                                                   NULL));
  out->info = json_object_ref (object_json);
  g_task_return_pointer (task, out, info_result_free);
}

/* Same rule as TocsinConnection: the system's trust, or else the CA file's. */
static gboolean
accept_with_ca_file (SoupMessage          *msg,
                     GTlsCertificate      *certificate,
                     GTlsCertificateFlags  errors,
                     TocsinClient         *self)
{
  return tocsin_tls_accept_with_database (self->tls_database, msg, certificate);
}

static void
send_info_request (TocsinClient *self,
                   GTask        *task)
{
  InfoData *info = g_task_get_task_data (task);

  soup_session_send_and_read_async (self->session, info->msg, G_PRIORITY_DEFAULT,
                                    g_task_get_cancellable (task), channel_info_read, task);
}

void
tocsin_client_fetch_channel_info_async (TocsinClient        *self,
                                        const char          *subscribe_url,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  InfoData *info;

  g_return_if_fail (TOCSIN_IS_CLIENT (self));
  g_return_if_fail (subscribe_url != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, tocsin_client_fetch_channel_info_async);

  info = g_new0 (InfoData, 1);
  g_task_set_task_data (task, info, info_data_free);
  if (!tocsin_subscription_parse_url (subscribe_url, &info->relay_url, &info->token, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  url = g_strconcat (info->relay_url, "/s/", info->token, NULL);
  info->msg = soup_message_new ("GET", url);
  soup_message_headers_replace (soup_message_get_request_headers (info->msg),
                                "Accept", "application/json");
  g_signal_connect_object (info->msg, "accept-certificate",
                           G_CALLBACK (accept_with_ca_file), self, 0);

  /* A CA file still being read would be missing from this request's trust. */
  if (self->tls_pending)
    g_queue_push_tail (&self->tls_waiting, g_steal_pointer (&task));
  else
    send_info_request (self, g_steal_pointer (&task));
}

TocsinSubscription *
tocsin_client_fetch_channel_info_finish (TocsinClient  *self,
                                         GAsyncResult  *result,
                                         JsonObject   **out_info,
                                         GError       **error)
{
  InfoResult *out;
  TocsinSubscription *sub;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  out = g_task_propagate_pointer (G_TASK (result), error);
  if (out == NULL)
    return NULL;
  if (out_info)
    *out_info = g_steal_pointer (&out->info);
  sub = g_steal_pointer (&out->subscription);
  info_result_free (out);
  return sub;
}

/* ---- subscribing -------------------------------------------------------------------------- */

static void
subscription_saved (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;

  if (tocsin_history_change_finish (TOCSIN_HISTORY (object), result, &error) < 0)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, g_object_ref (g_task_get_task_data (task)), g_object_unref);
}

void
tocsin_client_subscribe_async (TocsinClient        *self,
                               TocsinSubscription  *subscription,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  TocsinSubscription *existing;

  g_return_if_fail (TOCSIN_IS_CLIENT (self));
  g_return_if_fail (TOCSIN_IS_SUBSCRIPTION (subscription));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, tocsin_client_subscribe_async);

  existing =
    tocsin_client_find_subscription_by_token (self,
                                              tocsin_subscription_get_relay_url (subscription),
                                              tocsin_subscription_get_token (subscription));
  if (existing)
    {
      g_task_return_pointer (task, g_object_ref (existing), g_object_unref);
      return;
    }

  g_task_set_task_data (task, g_object_ref (subscription), g_object_unref);
  add_subscription (self, subscription);
  tocsin_history_save_subscription_async (self->history, subscription, cancellable,
                                          subscription_saved, g_steal_pointer (&task));
}

TocsinSubscription *
tocsin_client_subscribe_finish (TocsinClient  *self,
                                GAsyncResult  *result,
                                GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
tocsin_client_unsubscribe (TocsinClient       *self,
                           TocsinSubscription *subscription)
{
  const char *relay_url;
  TocsinConnection *conn;
  guint position;

  g_return_if_fail (TOCSIN_IS_CLIENT (self));
  g_return_if_fail (TOCSIN_IS_SUBSCRIPTION (subscription));

  relay_url = tocsin_subscription_get_relay_url (subscription);
  tocsin_history_remove_subscription_async (self->history, relay_url,
                                            tocsin_subscription_get_token (subscription),
                                            NULL, NULL, NULL);
  conn = tocsin_client_get_connection (self, relay_url);
  if (conn)
    {
      tocsin_connection_unsubscribe (conn, tocsin_subscription_get_token (subscription));
      /* The last channel of a relay gone: no reason to keep a socket open to it. */
      if (tocsin_connection_get_n_subscriptions (conn) == 0 &&
          g_list_store_find (self->connections, conn, &position))
        {
          tocsin_connection_stop (conn);
          g_list_store_remove (self->connections, position);
        }
    }
  if (g_list_store_find (self->subscriptions, subscription, &position))
    g_list_store_remove (self->subscriptions, position);
}

void
tocsin_client_update_subscription (TocsinClient       *self,
                                   TocsinSubscription *subscription)
{
  g_return_if_fail (TOCSIN_IS_CLIENT (self));
  g_return_if_fail (TOCSIN_IS_SUBSCRIPTION (subscription));

  tocsin_history_save_subscription_async (self->history, subscription, NULL, NULL, NULL);
}

void
tocsin_client_mark_read (TocsinClient *self,
                         gint64        record_id,
                         gboolean      read)
{
  g_return_if_fail (TOCSIN_IS_CLIENT (self));

  /* The notifier follows the history: the popup goes when the change is committed. */
  tocsin_history_set_read_async (self->history, record_id, read, NULL, NULL, NULL);
}
