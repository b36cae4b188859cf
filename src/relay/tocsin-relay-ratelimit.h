/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-ratelimit.h: a token bucket per key (a channel id): how fast each channel takes
 * webhooks. Main thread only, and per server process (docs/configuration.md, "Limits"). It was
 * kept by the store, which stores; the unknown-token throttle per client address is its
 * neighbour, tocsin-relay-throttle.h.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _TocsinRelayRateLimit TocsinRelayRateLimit;

TocsinRelayRateLimit *tocsin_relay_rate_limit_new  (void);
void                  tocsin_relay_rate_limit_free (TocsinRelayRateLimit *self);

/* Takes a token from @key's bucket (@rate tokens a second, @burst deep). TRUE when the request
 * may go on. *remaining: tokens left; *reset: seconds until the bucket is full again;
 * *retry_after: seconds until one token is back (when FALSE). Each out argument may be NULL. */
gboolean              tocsin_relay_rate_limit_take (TocsinRelayRateLimit *self,
                                                    gint64                key,
                                                    double                rate,
                                                    guint                 burst,
                                                    gint64                now_us,
                                                    guint                *remaining,
                                                    guint                *reset,
                                                    guint                *retry_after);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRelayRateLimit, tocsin_relay_rate_limit_free)

G_END_DECLS
