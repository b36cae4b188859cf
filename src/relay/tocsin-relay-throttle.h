/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-throttle.h: how many unknown tokens each client address asked for lately.
 *
 * Every place that looks a token up (webhooks, the subscribe page, the streams, /v1/ws subscribe
 * frames) counts a miss here and asks before looking up: an address past the limit gets no more
 * answers to learn from until its window ends (docs/configuration.md, "Unknown tokens").
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _TocsinRelayThrottle TocsinRelayThrottle;

/* @max misses per @window_seconds per address; at most @max_addresses tracked at once. */
TocsinRelayThrottle *tocsin_relay_throttle_new         (guint                max,
                                                        guint                window_seconds,
                                                        guint                max_addresses);
void                 tocsin_relay_throttle_free        (TocsinRelayThrottle *self);
/* Seconds until @address may look tokens up again; 0 when it may now (or is NULL). */
guint                tocsin_relay_throttle_retry_after (TocsinRelayThrottle *self,
                                                        const char          *address);
/* @address asked for a token that no channel has. */
void                 tocsin_relay_throttle_note_miss   (TocsinRelayThrottle *self,
                                                        const char          *address);
/* Forgets addresses whose window has ended. */
void                 tocsin_relay_throttle_sweep       (TocsinRelayThrottle *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRelayThrottle, tocsin_relay_throttle_free)

G_END_DECLS
