/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-poller.h: one epoll set, in one GSource, for every connection that is idle most
 * of the time (subscribers after their handshake or response headers, kept-alive HTTP
 * connections between requests), with one deadline per watch. The main loop then polls one
 * descriptor for all of them, and a turn costs what is ready, not what is connected.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _TocsinRelayPollerWatch TocsinRelayPollerWatch;

/* @events: what epoll reported (G_IO_IN, G_IO_OUT, G_IO_HUP, G_IO_ERR), G_IO_IN alone after
 * tocsin_relay_poller_watch_wake(), or 0 when the watch's deadline passed (which clears it). The
 * callback may modify or remove any watch, its own included. */
typedef void (*TocsinRelayPollerFunc) (int           fd,
                                       GIOCondition  events,
                                       gpointer      user_data);

/* Watches @fd for @events (level-triggered; 0 for a deadline alone) in the global default
 * main context, the relay's one loop. Watches of one @priority share one GSource. */
TocsinRelayPollerWatch *tocsin_relay_poller_watch_new     (int                     fd,
                                                           GIOCondition            events,
                                                           gint                    priority,
                                                           TocsinRelayPollerFunc   func,
                                                           gpointer                user_data);
void                    tocsin_relay_poller_watch_set_events
                                                          (TocsinRelayPollerWatch *watch,
                                                           GIOCondition            events);
/* Calls the callback with @events 0 at @ready_time (monotonic µs); -1: never. */
void                    tocsin_relay_poller_watch_set_deadline
                                                          (TocsinRelayPollerWatch *watch,
                                                           gint64                  ready_time);
/* Calls the callback with G_IO_IN in the next dispatch, whatever the descriptor says: for
 * bytes a stream holds in a buffer of its own (libsoup's, TLS), which epoll cannot see. */
void                    tocsin_relay_poller_watch_wake    (TocsinRelayPollerWatch *watch);
/* Stops watching and frees @watch; the callback is never called again. Call it before the
 * descriptor is closed. */
void                    tocsin_relay_poller_watch_free    (TocsinRelayPollerWatch *watch);

/* How many watches the poller holds (for the relay's own figures). */
guint                   tocsin_relay_poller_count_watches (void);

G_END_DECLS
