/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-forwards.h: a channel's outgoing requests ("forwards", issue 15,
 * docs/actions.md): which forwards an event fires, and the sender that delivers the durable
 * queue the store keeps (tocsin-relay-store.h, "Deliveries").
 */
#pragma once

#include "tocsin-relay.h"
#include "tocsin-relay-store.h"
#include "tocsin-request.h"

G_BEGIN_DECLS

/* At most this many sends at once, and this many to one host (scheme://host:port). */
#define TOCSIN_RELAY_FORWARDS_MAX_IN_FLIGHT 16
#define TOCSIN_RELAY_FORWARDS_MAX_PER_HOST   4

typedef struct _TocsinRelayForwards TocsinRelayForwards;

/* The indices (guint) of @channel's forwards for @event whose condition is true in @scope, or
 * NULL when there are none. */
GArray              *tocsin_relay_forwards_select      (const TocsinRelayChannel *channel,
                                                        TocsinRequestEvent        event,
                                                        TocsinTemplateScope      *scope);

/* Starts the sender on the calling thread's main context, with the outbound settings of
 * @relay->config. Deliveries an earlier process left in flight are recovered first (see
 * tocsin_relay_store_recover_deliveries()). */
TocsinRelayForwards *tocsin_relay_forwards_new          (TocsinRelay         *relay);
void                 tocsin_relay_forwards_free         (TocsinRelayForwards *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRelayForwards, tocsin_relay_forwards_free)

/* New deliveries were queued: look for due ones now. */
void                 tocsin_relay_forwards_kick         (TocsinRelayForwards *self);

/* A new acknowledgement of message @message_id by @user: queues the channel's acknowledge
 * forwards (durably, via the store) and sends them. */
void                 tocsin_relay_forwards_acknowledge  (TocsinRelayForwards *self,
                                                         gint64               channel_id,
                                                         gint64               message_id,
                                                         const char          *user);

/* "Retry now": one attempt of delivery @delivery_id of @channel_id at once, even when it failed
 * or its host is held back. Off the main loop: the delivery is read on the store's reader
 * thread, checked against the attempts in flight on the main loop, and set pending on the
 * writer thread; @callback runs on the main loop. _finish returns the delivery as it is now
 * (pending), or NULL with TOCSIN_RELAY_STORE_ERROR_NOT_FOUND, or G_IO_ERROR_BUSY while an
 * attempt is in flight. */
void                 tocsin_relay_forwards_retry_async  (TocsinRelayForwards *self,
                                                         gint64               channel_id,
                                                         gint64               delivery_id,
                                                         GAsyncReadyCallback  callback,
                                                         gpointer             user_data);
TocsinRelayDelivery *tocsin_relay_forwards_retry_finish (GAsyncResult        *result,
                                                         GError             **error);

G_END_DECLS
