/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-channel-cache.h: compiled channels (templates, forwards, actions) kept by
 * (channel id, row version), so that a webhook does not compile its channel again. Both store
 * backends use it: each reads the row's version (and last_id) on every lookup and asks the cache
 * for that version, so a channel rotated, updated or deleted by another process or another node
 * is never served from the cache (the row's version moved on, or the row is gone). Not locked:
 * the caller guards it (the SQLite store's lock, or a PostgreSQL handle's one thread).
 */
#pragma once

#include "tocsin-relay-store.h"

G_BEGIN_DECLS

typedef struct _TocsinRelayChannelCache TocsinRelayChannelCache;

TocsinRelayChannelCache *tocsin_relay_channel_cache_new    (void);
void                     tocsin_relay_channel_cache_free   (TocsinRelayChannelCache *cache);
/* A new reference to channel @id when it was built from row @version, with its last_id set to
 * @last_id (which moves with every message without a new version); NULL otherwise. */
TocsinRelayChannel      *tocsin_relay_channel_cache_lookup (TocsinRelayChannelCache *cache,
                                                            gint64                   id,
                                                            gint64                   version,
                                                            gint64                   last_id);
/* Keeps a reference to @channel, built from row @version, in place of any older one. */
void                     tocsin_relay_channel_cache_insert (TocsinRelayChannelCache *cache,
                                                            TocsinRelayChannel      *channel,
                                                            gint64                   version);
void                     tocsin_relay_channel_cache_remove (TocsinRelayChannelCache *cache,
                                                            gint64                   id);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRelayChannelCache, tocsin_relay_channel_cache_free)

G_END_DECLS
