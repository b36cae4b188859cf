/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-client.h: the app's engine, without any UI. It owns the subscriptions (loaded from and
 * saved to the history), one TocsinConnection per relay, and passes each message on:
 * dedup by (relay, channel, id) → history (batched) → notifier. A replacement updates the
 * record and its popup in place. A gap becomes a record saying what was missed. The app and
 * the tests both drive it.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include "tocsin-connection.h"
#include "tocsin-history.h"
#include "tocsin-notifier.h"
#include "tocsin-subscription.h"

G_BEGIN_DECLS

#define TOCSIN_TYPE_CLIENT (tocsin_client_get_type ())
G_DECLARE_FINAL_TYPE (TocsinClient, tocsin_client, TOCSIN, CLIENT, GObject)

/* @notifier: NULL for no popups (e.g. an export-only run). @settings: the app's settings
 * (ca-file, history-retention-days); NULL: the client makes its own. */
TocsinClient   *tocsin_client_new                (TocsinHistory  *history,
                                                  TocsinNotifier *notifier,
                                                  GSettings      *settings);
TocsinHistory  *tocsin_client_get_history        (TocsinClient *self);
TocsinNotifier *tocsin_client_get_notifier       (TocsinClient *self);

/* Loads the subscriptions from the history and connects to their relays. "started" is
 * emitted when they are loaded (also when loading failed: see the "error" signal). */
void            tocsin_client_start              (TocsinClient *self);
gboolean        tocsin_client_get_started        (TocsinClient *self);
/* Closes every connection (1000). Pending history writes still complete. */
void            tocsin_client_stop               (TocsinClient *self);

/* A GListModel of TocsinSubscription (the sidebar), in the order added. */
GListModel     *tocsin_client_get_subscriptions  (TocsinClient *self);
/* A GListModel of TocsinConnection, one per relay in use (relay states). */
GListModel     *tocsin_client_get_connections    (TocsinClient *self);
TocsinConnection   *tocsin_client_get_connection   (TocsinClient *self, const char *relay_url);
TocsinSubscription *tocsin_client_find_subscription (TocsinClient *self, const char *relay_url,
                                                     gint64 channel_id);
TocsinSubscription *tocsin_client_find_subscription_by_token (TocsinClient *self,
                                                              const char *relay_url,
                                                              const char *token);

/* Fetches what a subscribe link is (GET /s/{token} with Accept: application/json) so the user
 * can be asked. Returns a new, not yet added subscription with channel id, name and
 * description filled in, and the relay's public description of the channel in @out_info
 * (optional; "title", "body", "link" templates say what it sends). */
void                tocsin_client_fetch_channel_info_async  (TocsinClient *self,
                                                             const char *subscribe_url,
                                                             GCancellable *cancellable,
                                                             GAsyncReadyCallback callback,
                                                             gpointer user_data);
TocsinSubscription *tocsin_client_fetch_channel_info_finish (TocsinClient *self,
                                                             GAsyncResult *result,
                                                             JsonObject **out_info,
                                                             GError **error);

/* Adds @subscription (from fetch_channel_info, or tocsin_subscription_new()), saves it and
 * subscribes live from now (its cursor if it has one). Subscribing to a link already
 * subscribed returns the existing one. Finish returns the subscription in the list. */
void                tocsin_client_subscribe_async   (TocsinClient *self,
                                                     TocsinSubscription *subscription,
                                                     GCancellable *cancellable,
                                                     GAsyncReadyCallback callback,
                                                     gpointer user_data);
TocsinSubscription *tocsin_client_subscribe_finish  (TocsinClient *self, GAsyncResult *result,
                                                     GError **error);
/* Removes it (records stay). Fire and forget; completes when saved. */
void                tocsin_client_unsubscribe       (TocsinClient *self,
                                                     TocsinSubscription *subscription);
/* Saves a changed notify type / muted state of a subscription in the list. */
void                tocsin_client_update_subscription (TocsinClient *self,
                                                       TocsinSubscription *subscription);

/* Marks a record read (history + withdraws its popup). */
void                tocsin_client_mark_read         (TocsinClient *self, gint64 record_id,
                                                     gboolean read);

/* Re-reads the ca-file setting and applies it to every connection (the preferences call it).
 * The file is read in a worker thread; "notify::tls-database" says when it is applied, and an
 * unreadable file is reported through "error". */
void                tocsin_client_reload_tls        (TocsinClient *self);
/* Tells the record's relay that the user acknowledged it (a call), as @by; the relay tells the
 * channel's other subscribers ("acknowledged"). FALSE when its relay is not connected. */
gboolean            tocsin_client_acknowledge       (TocsinClient *self,
                                                     TocsinRecord *record,
                                                     const char   *by);
/* The trust added by the ca-file setting, or NULL (property "tls-database"). */
GTlsDatabase       *tocsin_client_get_tls_database  (TocsinClient *self);

/* Signals:
 *   "started"         ()
 *   "record-received" (TocsinRecord *record, TocsinStoreResult result) — stored, after the
 *                      notifier saw it (ADDED or REPLACED; duplicates are not announced)
 *   "missed"          (TocsinSubscription *subscription, gint64 from, gint64 to) — a gap
 *   "error"           (const char *message) — something a person should see (e.g. the
 *                      history could not be opened)
 */

G_END_DECLS
