/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-channel-cache.c: compiled channels by (id, row version); see the header.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include "tocsin-relay-channel-cache.h"

/* No more channels than this are kept; past it the cache starts again empty (as the token
 * caches do): a relay with more hot channels than this only compiles more often. */
#define MAX_CACHED_CHANNELS 4096

typedef struct
{
  gint64              id;
  gint64              version;
  TocsinRelayChannel *channel;
} Entry;

struct _TocsinRelayChannelCache
{
  GHashTable *entries;  /* &Entry.id → Entry */
};

static void
entry_free (gpointer data)
{
  Entry *entry = data;

  tocsin_relay_channel_unref (entry->channel);
  g_free (entry);
}

TocsinRelayChannelCache *
tocsin_relay_channel_cache_new (void)
{
  TocsinRelayChannelCache *cache = g_new0 (TocsinRelayChannelCache, 1);

  cache->entries = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL, entry_free);
  return cache;
}

void
tocsin_relay_channel_cache_free (TocsinRelayChannelCache *cache)
{
  if (cache == NULL)
    return;
  g_hash_table_unref (cache->entries);
  g_free (cache);
}

TocsinRelayChannel *
tocsin_relay_channel_cache_lookup (TocsinRelayChannelCache *cache,
                                   gint64                   id,
                                   gint64                   version,
                                   gint64                   last_id)
{
  Entry *entry;

  g_return_val_if_fail (cache != NULL, NULL);

  entry = g_hash_table_lookup (cache->entries, &id);
  if (entry == NULL || entry->version != version)
    return NULL;
  entry->channel->last_id = last_id;
  return tocsin_relay_channel_ref (entry->channel);
}

void
tocsin_relay_channel_cache_insert (TocsinRelayChannelCache *cache,
                                   TocsinRelayChannel      *channel,
                                   gint64                   version)
{
  Entry *entry;

  g_return_if_fail (cache != NULL);
  g_return_if_fail (channel != NULL);

  if (g_hash_table_size (cache->entries) >= MAX_CACHED_CHANNELS
      && !g_hash_table_contains (cache->entries, &channel->id))
    g_hash_table_remove_all (cache->entries);
  entry = g_new0 (Entry, 1);
  entry->id = channel->id;
  entry->version = version;
  entry->channel = tocsin_relay_channel_ref (channel);
  g_hash_table_replace (cache->entries, &entry->id, entry);
}

void
tocsin_relay_channel_cache_remove (TocsinRelayChannelCache *cache,
                                   gint64                   id)
{
  g_return_if_fail (cache != NULL);
  g_hash_table_remove (cache->entries, &id);
}
