/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tocsin-caller.c: rings the calls of calling channels (see the header). */
#define G_LOG_DOMAIN "tocsin"

#include "config.h"

#include <glib/gi18n.h>

#include "tocsin-call-window.h"
#include "tocsin-caller.h"

/* Acknowledgements told for calls this app has not rung (yet): remembered so that a call
 * replayed after them does not ring. */
#define MAX_REMEMBERED_ACKS 256

struct _TocsinCaller
{
  GObject         parent_instance;

  GtkApplication *application;   /* borrowed: it owns us */
  TocsinClient   *client;
  TocsinNotifier *notifier;
  GHashTable     *windows;       /* key → TocsinCallWindow (a reference) */
  GHashTable     *acked;         /* key → by */
  GQueue          acked_order;   /* keys of acked, oldest first (owned by acked) */
};

G_DEFINE_FINAL_TYPE (TocsinCaller, tocsin_caller, G_TYPE_OBJECT)

static char *
call_key (const char *relay_url,
          gint64      channel_id,
          gint64      message_id)
{
  return g_strdup_printf ("%s|%" G_GINT64_FORMAT "|%" G_GINT64_FORMAT, relay_url, channel_id,
                          message_id);
}

static char *
record_key (TocsinRecord *record)
{
  return call_key (tocsin_record_get_relay_url (record), tocsin_record_get_channel_id (record),
                   tocsin_record_get_message_id (record));
}

/* The name the channel's other subscribers see when this user acknowledges. */
static const char *
own_name (void)
{
  const char *name = g_get_real_name ();

  if (name == NULL || *name == '\0' || g_str_equal (name, "Unknown"))
    name = g_get_user_name ();
  return name;
}

static void
window_answered_cb (TocsinCallWindow *window,
                    gboolean          acknowledged,
                    TocsinCaller     *self)
{
  TocsinRecord *record = tocsin_call_window_get_record (window);
  g_autofree char *name = NULL;

  if (!acknowledged)
    return;
  /* At most TOCSIN_PROTOCOL_MAX_ACK_NAME characters: the relay refuses longer names. */
  name = g_utf8_substring (own_name (), 0, MIN (g_utf8_strlen (own_name (), -1), 64));
  tocsin_call_window_set_ack_sent (window, tocsin_client_acknowledge (self->client, record,
                                                                      name));
  tocsin_client_mark_read (self->client, tocsin_record_get_id (record), TRUE);
}

static gboolean
window_close_request_cb (TocsinCallWindow *window,
                         TocsinCaller     *self)
{
  g_autofree char *key = record_key (tocsin_call_window_get_record (window));

  g_hash_table_remove (self->windows, key);
  return FALSE;
}

static gboolean
call_cb (TocsinNotifier     *notifier,
         TocsinRecord       *record,
         TocsinSubscription *subscription,
         TocsinCaller       *self)
{
  g_autofree char *key = record_key (record);
  gint64 age_ms = g_get_real_time () / 1000 - tocsin_record_get_time (record);
  const char *name = subscription ? tocsin_subscription_get_name (subscription)
                                  : tocsin_record_get_channel_name (record);
  TocsinCallWindow *window;

  if (g_hash_table_contains (self->acked, key) || age_ms > TOCSIN_CALL_MAX_AGE_SECONDS * 1000)
    return FALSE;
  if (g_hash_table_contains (self->windows, key))
    return TRUE;
  window = tocsin_call_window_new (self->application, record, name);
  g_signal_connect_object (window, "answered", G_CALLBACK (window_answered_cb), self, 0);
  g_signal_connect_object (window, "close-request", G_CALLBACK (window_close_request_cb), self,
                           0);
  g_hash_table_insert (self->windows, g_steal_pointer (&key), g_object_ref (window));
  gtk_window_present (GTK_WINDOW (window));
  return TRUE;
}

static void
acknowledged_cb (TocsinClient *client,
                 const char   *relay_url,
                 gint64        channel_id,
                 gint64        message_id,
                 const char   *by,
                 TocsinCaller *self)
{
  g_autofree char *key = call_key (relay_url, channel_id, message_id);
  TocsinCallWindow *window = g_hash_table_lookup (self->windows, key);

  if (window != NULL)
    {
      if (tocsin_call_window_get_ringing (window))
        tocsin_call_window_answered_by (window, by);
      return;
    }
  if (g_hash_table_contains (self->acked, key))
    return;
  g_queue_push_tail (&self->acked_order, key);
  g_hash_table_insert (self->acked, g_steal_pointer (&key), g_strdup (by));
  while (g_queue_get_length (&self->acked_order) > MAX_REMEMBERED_ACKS)
    g_hash_table_remove (self->acked, g_queue_pop_head (&self->acked_order));
}

static void
tocsin_caller_dispose (GObject *object)
{
  TocsinCaller *self = TOCSIN_CALLER (object);

  if (self->notifier)
    g_signal_handlers_disconnect_by_data (self->notifier, self);
  if (self->client)
    g_signal_handlers_disconnect_by_data (self->client, self);
  g_clear_pointer (&self->windows, g_hash_table_unref);
  g_queue_clear (&self->acked_order);
  g_clear_pointer (&self->acked, g_hash_table_unref);
  g_clear_object (&self->client);
  g_clear_object (&self->notifier);
  G_OBJECT_CLASS (tocsin_caller_parent_class)->dispose (object);
}

static void
tocsin_caller_class_init (TocsinCallerClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = tocsin_caller_dispose;
}

static void
tocsin_caller_init (TocsinCaller *self)
{
  self->windows = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->acked = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_queue_init (&self->acked_order);
}

TocsinCaller *
tocsin_caller_new (GtkApplication *application,
                   TocsinClient   *client,
                   TocsinNotifier *notifier)
{
  TocsinCaller *self = g_object_new (TOCSIN_TYPE_CALLER, NULL);

  self->application = application;
  self->client = g_object_ref (client);
  self->notifier = g_object_ref (notifier);
  g_signal_connect (notifier, "call", G_CALLBACK (call_cb), self);
  g_signal_connect (client, "acknowledged", G_CALLBACK (acknowledged_cb), self);
  return self;
}

GList *
tocsin_caller_get_windows (TocsinCaller *self)
{
  g_return_val_if_fail (TOCSIN_IS_CALLER (self), NULL);
  return g_hash_table_get_values (self->windows);
}
