/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tocsin-relay-acks.c: who acknowledged which call, per channel, in memory. */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include "tocsin-relay-acks.h"

typedef struct
{
  gint64  message_id;
  char   *by;
} Ack;

struct _TocsinRelayAcks
{
  GHashTable *channels;   /* channel id → GQueue of Ack, oldest first */
};

static void
ack_free (gpointer data)
{
  Ack *ack = data;

  g_free (ack->by);
  g_free (ack);
}

static void
queue_free (gpointer data)
{
  g_queue_free_full (data, ack_free);
}

TocsinRelayAcks *
tocsin_relay_acks_new (void)
{
  TocsinRelayAcks *acks = g_new0 (TocsinRelayAcks, 1);

  acks->channels = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, queue_free);
  return acks;
}

void
tocsin_relay_acks_free (TocsinRelayAcks *acks)
{
  if (acks == NULL)
    return;
  g_hash_table_unref (acks->channels);
  g_free (acks);
}

gboolean
tocsin_relay_acks_add (TocsinRelayAcks  *acks,
                       gint64            channel_id,
                       gint64            message_id,
                       const char       *by,
                       const char      **first_by)
{
  GQueue *queue = g_hash_table_lookup (acks->channels, &channel_id);
  Ack *ack;

  if (queue == NULL)
    {
      queue = g_queue_new ();
      g_hash_table_insert (acks->channels, g_memdup2 (&channel_id, sizeof channel_id), queue);
    }
  for (GList *l = queue->head; l != NULL; l = l->next)
    {
      Ack *seen = l->data;

      if (seen->message_id == message_id)
        {
          if (first_by != NULL)
            *first_by = seen->by;
          return FALSE;
        }
    }
  ack = g_new0 (Ack, 1);
  ack->message_id = message_id;
  ack->by = g_strdup (by ? by : "");
  g_queue_push_tail (queue, ack);
  while (g_queue_get_length (queue) > TOCSIN_RELAY_ACKS_PER_CHANNEL)
    ack_free (g_queue_pop_head (queue));
  if (first_by != NULL)
    *first_by = ack->by;
  return TRUE;
}

void
tocsin_relay_acks_foreach (TocsinRelayAcks    *acks,
                           gint64              channel_id,
                           TocsinRelayAcksFunc func,
                           gpointer            user_data)
{
  GQueue *queue = g_hash_table_lookup (acks->channels, &channel_id);

  if (queue == NULL)
    return;
  for (GList *l = queue->head; l != NULL; l = l->next)
    {
      Ack *ack = l->data;

      func (ack->message_id, ack->by, user_data);
    }
}

void
tocsin_relay_acks_forget_channel (TocsinRelayAcks *acks,
                                  gint64           channel_id)
{
  g_hash_table_remove (acks->channels, &channel_id);
}
