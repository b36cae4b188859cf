/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-connection.h: the one multiplexed WebSocket (/v1/ws, docs/protocol.md) to one relay.
 *
 * It keeps itself connected: reconnects on exponential backoff with jitter (about 1 s up to
 * 60 s), at once when the network comes back (GNetworkMonitor), after resume from suspend
 * (logind's PrepareForSleep(false) on the system bus, when there is one), and at once after the
 * relay closes it with 4008 (too slow). Keepalive: a ping every 30 s; a connection silent for
 * 90 s is dropped and redialled. On every (re)connect it subscribes each token with its cursor
 * as `since`, so nothing is lost; the cursor advances with each message it passes on.
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>
#include "tocsin-message.h"

G_BEGIN_DECLS

typedef enum
{
  TOCSIN_CONNECTION_STOPPED,     /* not started, or stopped */
  TOCSIN_CONNECTION_CONNECTING,
  TOCSIN_CONNECTION_CONNECTED,
  TOCSIN_CONNECTION_WAITING,     /* offline; retrying at retry-time */
} TocsinConnectionState;

GType tocsin_connection_state_get_type (void) G_GNUC_CONST;
#define TOCSIN_TYPE_CONNECTION_STATE (tocsin_connection_state_get_type ())

#define TOCSIN_TYPE_CONNECTION (tocsin_connection_get_type ())
G_DECLARE_FINAL_TYPE (TocsinConnection, tocsin_connection, TOCSIN, CONNECTION, GObject)

/* @relay_url: "http(s)://host[:port][/prefix]" without trailing slash. @tls_database: extra
 * trust (a CA file for a self-signed relay), checked in addition to the system's; may be NULL. */
TocsinConnection      *tocsin_connection_new              (const char   *relay_url,
                                                           GTlsDatabase *tls_database);
const char            *tocsin_connection_get_relay_url    (TocsinConnection *self);
void                   tocsin_connection_set_tls_database (TocsinConnection *self,
                                                           GTlsDatabase     *tls_database);

/* Connects (and keeps reconnecting) / closes with 1000 and stays closed. */
void                   tocsin_connection_start            (TocsinConnection *self);
void                   tocsin_connection_stop             (TocsinConnection *self);
/* Drops any backoff wait (and a connection that may be stale) and connects now. */
void                   tocsin_connection_reconnect_now    (TocsinConnection *self);

/* Adds (or restarts) @token. @cursor is the last id stored (TOCSIN_CURSOR_NONE: live only, 0:
 * everything retained). Sent now if connected, else on connect. */
void                   tocsin_connection_subscribe        (TocsinConnection *self,
                                                           const char       *token,
                                                           gint64            cursor);
void                   tocsin_connection_unsubscribe      (TocsinConnection *self,
                                                           const char       *token);
/* The cursor used at the next (re)connect for @token; -2 if @token is not subscribed. */
/* Tells the relay the user acknowledged a call (message @message_id of @channel_id), as @by.
 * FALSE when not connected: nothing was sent. */
gboolean               tocsin_connection_acknowledge      (TocsinConnection *self,
                                                           gint64            channel_id,
                                                           gint64            message_id,
                                                           const char       *by);
gint64                 tocsin_connection_get_cursor       (TocsinConnection *self,
                                                           const char       *token);
guint                  tocsin_connection_get_n_subscriptions (TocsinConnection *self);

TocsinConnectionState  tocsin_connection_get_state        (TocsinConnection *self);
/* In state WAITING: when the next attempt is (g_get_monotonic_time() microseconds) and the
 * whole seconds left until then (rounded up), for "Offline, retrying in 8 s". */
gint64                 tocsin_connection_get_retry_time   (TocsinConnection *self);
guint                  tocsin_connection_get_retry_seconds (TocsinConnection *self);
/* Why the last attempt failed or the connection dropped, for people; NULL if none. */
const char            *tocsin_connection_get_last_error   (TocsinConnection *self);

/* Signals (main context the connection was created in):
 *   "subscribed" (const char *token, gint64 channel_id, const char *name,
 *                 const char *description, gint64 last_id)
 *   "message"    (const char *token, gpointer message)  — a TocsinMessage, borrowed for the
 *                 emission; only messages with an id above the token's cursor are passed on,
 *                 so a replay overlapping what was already seen is dropped here
 *   "gap"        (const char *token, gint64 channel_id, gint64 from, gint64 to)
 *   "refused"    (const char *token, const char *code, const char *message) — a token was
 *                 refused (unknown, rotated, deleted); @token NULL for a connection error
 *   "closed"     (const char *token, gint64 channel_id, const char *reason) — the channel was
 *                 deleted or its subscribe token rotated; the token is dropped
 * Properties: "relay-url", "state", "retry-time", "last-error" (all notify). */

G_END_DECLS
