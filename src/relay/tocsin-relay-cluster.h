/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-cluster.h: fan-out between relay nodes that share one PostgreSQL (issue 16).
 * Created by the serve command when its store is on PostgreSQL; runs on the server's main
 * context, with a listening connection on a thread of its own. See the .c for how messages stay
 * in id order, exactly once, whichever node took them.
 */
#pragma once

#include "tocsin-relay.h"

G_BEGIN_DECLS


/* Starts listening (the thread connects, and reconnects, by itself: a database that is down is
 * logged, not fatal). @relay's store must be on PostgreSQL, its hub made. */
TocsinRelayCluster *tocsin_relay_cluster_new  (TocsinRelay        *relay);
void                tocsin_relay_cluster_free (TocsinRelayCluster *cluster);

/* This node committed message @id of @channel_id: its subscribers here get it (and whatever
 * other nodes committed before it) from the channel's cursor, without waiting for the notice.
 * What the hub's tocsin_relay_hub_publish_soon() does on a clustered relay. */
void                tocsin_relay_cluster_wake (TocsinRelayCluster *cluster,
                                               gint64              channel_id,
                                               gint64              id);

/* For tests and logs: how many times the listening connection was (re)established. */
guint               tocsin_relay_cluster_get_connects (TocsinRelayCluster *cluster);

G_END_DECLS
