/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-recent.c: a ring of the last TOCSIN_RELAY_RECENT_MAX answers per channel.
 *
 * Only channels that exist get entries (a webhook must name a known token first), and a deleted
 * channel's ring is forgotten, so the memory is bounded by the channels and 20 short entries
 * each. Main thread only.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <string.h>

#include "tocsin-message.h"
#include "tocsin-relay-recent.h"

typedef struct
{
  gint64  time_ms;
  guint   status;
  char   *sentence;
} Entry;

typedef struct
{
  Entry  entries[TOCSIN_RELAY_RECENT_MAX];
  guint  next;    /* where the next entry goes */
  guint  count;
} Ring;

struct _TocsinRelayRecent
{
  GHashTable *rings;   /* gint64* channel id → Ring */
};

static void
ring_free (gpointer data)
{
  Ring *ring = data;

  for (guint i = 0; i < G_N_ELEMENTS (ring->entries); i++)
    g_free (ring->entries[i].sentence);
  g_free (ring);
}

TocsinRelayRecent *
tocsin_relay_recent_new (void)
{
  TocsinRelayRecent *recent = g_new0 (TocsinRelayRecent, 1);

  recent->rings = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, ring_free);
  return recent;
}

void
tocsin_relay_recent_free (TocsinRelayRecent *recent)
{
  if (recent == NULL)
    return;
  g_hash_table_unref (recent->rings);
  g_free (recent);
}

void
tocsin_relay_recent_note (TocsinRelayRecent *recent,
                          gint64             channel_id,
                          gint64             time_ms,
                          guint              status,
                          const char        *sentence)
{
  Ring *ring;
  Entry *entry;

  if (recent == NULL)
    return;
  ring = g_hash_table_lookup (recent->rings, &channel_id);
  if (ring == NULL)
    {
      ring = g_new0 (Ring, 1);
      g_hash_table_insert (recent->rings, g_memdup2 (&channel_id, sizeof channel_id), ring);
    }
  entry = &ring->entries[ring->next];
  ring->next = (ring->next + 1) % TOCSIN_RELAY_RECENT_MAX;
  ring->count = MIN (ring->count + 1, TOCSIN_RELAY_RECENT_MAX);
  entry->time_ms = time_ms;
  entry->status = status;
  g_free (entry->sentence);
  if (sentence == NULL)
    sentence = "";
  if (strlen (sentence) > TOCSIN_RELAY_RECENT_SENTENCE_MAX)
    {
      const char *end = sentence + TOCSIN_RELAY_RECENT_SENTENCE_MAX;
      g_autofree char *cut = NULL;

      /* Back to the start of a character; the sentences are ours and valid UTF-8. */
      while (end > sentence && ((guchar) *end & 0xc0) == 0x80)
        end--;
      cut = g_strndup (sentence, end - sentence);
      entry->sentence = g_strconcat (cut, "…", NULL);
    }
  else
    entry->sentence = g_strdup (sentence);
}

JsonArray *
tocsin_relay_recent_list (TocsinRelayRecent *recent,
                          gint64             channel_id)
{
  JsonArray *array = json_array_new ();
  Ring *ring = recent ? g_hash_table_lookup (recent->rings, &channel_id) : NULL;

  for (guint i = 0; ring != NULL && i < ring->count; i++)
    {
      Entry *entry = &ring->entries[(ring->next + TOCSIN_RELAY_RECENT_MAX - 1 - i) %
                                    TOCSIN_RELAY_RECENT_MAX];
      JsonObject *object = json_object_new ();
      g_autofree char *time = tocsin_format_time_ms (entry->time_ms);

      json_object_set_string_member (object, "time", time);
      json_object_set_int_member (object, "status", entry->status);
      json_object_set_string_member (object, "sentence", entry->sentence);
      json_array_add_object_element (array, object);
    }
  return array;
}

void
tocsin_relay_recent_forget (TocsinRelayRecent *recent,
                            gint64             channel_id)
{
  if (recent != NULL)
    g_hash_table_remove (recent->rings, &channel_id);
}
