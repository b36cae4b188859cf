/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-hub.h: live subscribers and fan-out. Runs on the server's main context.
 */
#pragma once

#include <json-glib/json-glib.h>
#include "tocsin-relay.h"

G_BEGIN_DECLS

TocsinRelayHub *tocsin_relay_hub_new    (TocsinRelay *relay);
void            tocsin_relay_hub_free   (TocsinRelayHub *hub);

/* Called once a message is durably committed: sends the same encoded frame (docs/protocol.md
 * message object) to every live subscriber of @channel_id, never blocking on a slow one. */
void            tocsin_relay_hub_publish       (TocsinRelayHub *hub,
                                                gint64          channel_id,
                                                gint64          id,
                                                GBytes         *message);
/* The same from an idle on the main context, in the order of the calls: a caller that has just
 * unpaused a webhook's answer lets libsoup write it before the fan-out starts. */
void            tocsin_relay_hub_publish_soon  (TocsinRelayHub *hub,
                                                gint64          channel_id,
                                                gint64          id,
                                                GBytes         *message);
/* The channel was deleted or its subscribe token rotated: end its subscriptions now. */
void            tocsin_relay_hub_close_channel (TocsinRelayHub *hub,
                                                gint64          channel_id,
                                                const char     *reason);
/* Another node's subscriber acknowledged @message_id of @channel_id (tocsin-relay-cluster.c):
 * this node's /v1/ws subscribers are told, unless an acknowledgement of it was told here
 * already (each node tells the first it learns of). */
void            tocsin_relay_hub_tell_ack      (TocsinRelayHub *hub,
                                                gint64          channel_id,
                                                gint64          message_id,
                                                const char     *by);
/* Checks every subscription's token against the store now (on the reader thread), as it does
 * every few seconds: a channel deleted or its subscribe token rotated by another process or node
 * ends its subscriptions here. */
void            tocsin_relay_hub_revalidate    (TocsinRelayHub *hub);
/* [{"kind":"ws"|"sse"|"json"|"app","peer":"127.0.0.1:40000","connectedAt":"RFC 3339"}] */
JsonArray      *tocsin_relay_hub_list_subscribers (TocsinRelayHub *hub,
                                                   gint64          channel_id);
guint           tocsin_relay_hub_count_connections (TocsinRelayHub *hub);
/* Subscriptions to @channel_id in this process, live or catching up: who will receive a message
 * published now. */
guint           tocsin_relay_hub_count_subscribers (TocsinRelayHub *hub,
                                                    gint64          channel_id);

/* ---- Streams (the server routes these here) ---- */

typedef enum
{
  TOCSIN_RELAY_STREAM_WS,
  TOCSIN_RELAY_STREAM_SSE,
  TOCSIN_RELAY_STREAM_JSON,
} TocsinRelayStreamKind;

/* GET /s/{token}/ws|sse|json[?since=ID|all]. */
void            tocsin_relay_hub_handle_stream (TocsinRelayHub        *hub,
                                                SoupServerMessage     *msg,
                                                const char            *token,
                                                TocsinRelayStreamKind  kind);
/* GET /v1/ws: the multiplexed app socket of docs/protocol.md. */
void            tocsin_relay_hub_handle_app    (TocsinRelayHub        *hub,
                                                SoupServerMessage     *msg);
/* SIGTERM: closes every WebSocket with 1001 and ends every HTTP stream. */
void            tocsin_relay_hub_shutdown      (TocsinRelayHub        *hub);

G_END_DECLS
