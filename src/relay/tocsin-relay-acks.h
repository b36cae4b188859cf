/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tocsin-relay-acks.h: who acknowledged which call, per channel, in memory.
 *
 * A subscriber of a calling channel answers "Acknowledge"; the hub tells the channel's other
 * /v1/ws subscribers so that their call windows stop ringing (docs/protocol.md). The first
 * acknowledgement of a message is the one told; a subscriber that connects later is told the
 * remembered ones right after "subscribed". Only the last TOCSIN_RELAY_ACKS_PER_CHANNEL of a
 * channel are remembered, and nothing is stored: after a restart nobody has acknowledged.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define TOCSIN_RELAY_ACKS_PER_CHANNEL 64

typedef struct _TocsinRelayAcks TocsinRelayAcks;

typedef void (*TocsinRelayAcksFunc) (gint64      message_id,
                                     const char *by,
                                     gpointer    user_data);

TocsinRelayAcks *tocsin_relay_acks_new            (void);
void             tocsin_relay_acks_free           (TocsinRelayAcks *acks);

/* Remembers that @by acknowledged message @message_id of @channel_id. Returns FALSE when it
 * was acknowledged already: *@first_by (optional) is then who did first. */
gboolean         tocsin_relay_acks_add            (TocsinRelayAcks *acks,
                                                   gint64           channel_id,
                                                   gint64           message_id,
                                                   const char      *by,
                                                   const char     **first_by);
/* Calls @func for each remembered acknowledgement of @channel_id, oldest first. */
void             tocsin_relay_acks_foreach        (TocsinRelayAcks    *acks,
                                                   gint64              channel_id,
                                                   TocsinRelayAcksFunc func,
                                                   gpointer            user_data);
/* The channel was deleted or its subscribe token rotated: forget its acknowledgements. */
void             tocsin_relay_acks_forget_channel (TocsinRelayAcks *acks,
                                                   gint64           channel_id);

G_END_DECLS
