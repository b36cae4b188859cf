/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-owner.h: the relay's owner API (/v1/channels, docs/api.md) for the channels this user
 * creates. The owner key comes back once at creation; it is saved in the history database
 * (when a history is given) and only ever sent to its own relay as `Authorization: Bearer`.
 *
 * Channel fields (JsonObject in and out) use the relay's names: "name", "description",
 * "title", "body", "link", "condition" (templates, tocsin-template.h), and in answers also
 * "id", "webhook_url"/"subscribe_url" and the tokens; "signature", "signature_secret",
 * "signature_header" and "paused" (docs/api.md). A refusal from the relay comes back as a
 * GError whose message is the relay's {"error"} sentence, domain TOCSIN_OWNER_ERROR, code the
 * HTTP status.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include "tocsin-history.h"

G_BEGIN_DECLS

#define TOCSIN_OWNER_ERROR (tocsin_owner_error_quark ())
GQuark tocsin_owner_error_quark (void);

typedef enum
{
  TOCSIN_OWNER_ROTATE_TRIGGER,    /* a new webhook URL; the old one stops ringing */
  TOCSIN_OWNER_ROTATE_SUBSCRIBE,  /* a new subscribe link; current subscribers are cut off */
  TOCSIN_OWNER_ROTATE_SIGNATURE,  /* a new signing secret, in the answer's "signature_secret" */
} TocsinOwnerRotate;

#define TOCSIN_TYPE_OWNER (tocsin_owner_get_type ())
G_DECLARE_FINAL_TYPE (TocsinOwner, tocsin_owner, TOCSIN, OWNER, GObject)

/* @history: where owner keys are kept (may be NULL: the caller keeps them).
 * @tls_database: extra trust for a self-signed relay, may be NULL. */
TocsinOwner *tocsin_owner_new (TocsinHistory *history,
                               GTlsDatabase  *tls_database);
/* Changes the extra trust for later requests (the ca-file setting was changed or read). */
void         tocsin_owner_set_tls_database (TocsinOwner  *self,
                                            GTlsDatabase *tls_database);

/* POST /v1/channels on @relay_url with @fields. @admin_key: for a relay that is not open
 * (a key from `tocsin-relay key create`), else NULL. Saves the owned channel to the history.
 * Finish returns it, and the relay's full answer in @out_json (optional). */
void                tocsin_owner_create_channel_async  (TocsinOwner         *self,
                                                        const char          *relay_url,
                                                        const char          *admin_key,
                                                        JsonObject          *fields,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
TocsinOwnedChannel *tocsin_owner_create_channel_finish (TocsinOwner         *self,
                                                        GAsyncResult        *result,
                                                        JsonObject         **out_json,
                                                        GError             **error);

/* GET /v1/channels/{id}: the channel as the relay has it now. */
void        tocsin_owner_get_channel_async    (TocsinOwner *self, const TocsinOwnedChannel *channel,
                                               GCancellable *cancellable,
                                               GAsyncReadyCallback callback, gpointer user_data);
/* PATCH /v1/channels/{id} with the @fields to change (the name is updated in the history). */
void        tocsin_owner_update_channel_async (TocsinOwner *self, const TocsinOwnedChannel *channel,
                                               JsonObject *fields, GCancellable *cancellable,
                                               GAsyncReadyCallback callback, gpointer user_data);
/* POST /v1/channels/{id}/rotate-trigger, /rotate-subscribe (the new URL is saved) or
 * /rotate-signature. */
void        tocsin_owner_rotate_async         (TocsinOwner *self, const TocsinOwnedChannel *channel,
                                               TocsinOwnerRotate which, GCancellable *cancellable,
                                               GAsyncReadyCallback callback, gpointer user_data);
/* GET /v1/channels/{id}/subscribers */
void        tocsin_owner_list_subscribers_async (TocsinOwner *self,
                                                 const TocsinOwnedChannel *channel,
                                                 GCancellable *cancellable,
                                                 GAsyncReadyCallback callback,
                                                 gpointer user_data);
/* GET /v1/channels/{id}/webhooks: {"webhooks": [{"time", "status", "sentence"}]}, newest first */
void        tocsin_owner_list_webhooks_async  (TocsinOwner *self,
                                               const TocsinOwnedChannel *channel,
                                               GCancellable *cancellable,
                                               GAsyncReadyCallback callback,
                                               gpointer user_data);
/* GET /v1/channels/{id}/deliveries?limit=@limit (0: the relay's default): {"deliveries": [...],
 * "attempts": [...]}, newest first (docs/api.md). */
void        tocsin_owner_list_deliveries_async (TocsinOwner *self,
                                                const TocsinOwnedChannel *channel,
                                                guint limit,
                                                GCancellable *cancellable,
                                                GAsyncReadyCallback callback,
                                                gpointer user_data);
/* POST /v1/channels/{id}/deliveries/{delivery_id}/retry: {"delivery": {...}} */
void        tocsin_owner_retry_delivery_async  (TocsinOwner *self,
                                                const TocsinOwnedChannel *channel,
                                                gint64 delivery_id,
                                                GCancellable *cancellable,
                                                GAsyncReadyCallback callback,
                                                gpointer user_data);
/* Finish for get/update/rotate/list_subscribers/list_webhooks/list_deliveries/retry_delivery:
 * the relay's JSON answer (an object). */
JsonObject *tocsin_owner_request_finish       (TocsinOwner *self, GAsyncResult *result,
                                               GError **error);

/* DELETE /v1/channels/{id}; also forgets the owner key. */
void        tocsin_owner_delete_channel_async  (TocsinOwner *self,
                                                const TocsinOwnedChannel *channel,
                                                GCancellable *cancellable,
                                                GAsyncReadyCallback callback, gpointer user_data);
gboolean    tocsin_owner_delete_channel_finish (TocsinOwner *self, GAsyncResult *result,
                                                GError **error);

/* POST /v1/direct on @relay_url: a Direct key that rings only this user (docs/api.md). The
 * relay keeps it in a direct inbox, saved to the history as an owned channel whose webhook_url
 * is the Direct URL (tocsin_owned_channel_is_direct()). @admin_key: as for create_channel. */
void                tocsin_owner_create_direct_async  (TocsinOwner         *self,
                                                       const char          *relay_url,
                                                       const char          *admin_key,
                                                       GCancellable        *cancellable,
                                                       GAsyncReadyCallback  callback,
                                                       gpointer             user_data);
TocsinOwnedChannel *tocsin_owner_create_direct_finish (TocsinOwner         *self,
                                                       GAsyncResult        *result,
                                                       GError             **error);
/* POST /v1/direct/rotate: a new Direct key; the old one stops ringing. The new Direct URL is
 * saved; finish with tocsin_owner_request_finish() (the relay's answer, "direct_url"). */
void                tocsin_owner_rotate_direct_async  (TocsinOwner              *self,
                                                       const TocsinOwnedChannel *channel,
                                                       GCancellable             *cancellable,
                                                       GAsyncReadyCallback       callback,
                                                       gpointer                  user_data);

G_END_DECLS
