/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-subscription.h: one channel the user subscribed to on one relay. Persisted by
 * TocsinHistory; kept live by TocsinClient (which owns the list of them).
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef enum
{
  TOCSIN_NOTIFY_TYPE_NORMAL,
  TOCSIN_NOTIFY_TYPE_TIME_SENSITIVE,  /* critical urgency; gets through quiet hours */
  TOCSIN_NOTIFY_TYPE_CALLING,         /* a ringing call window until answered (Echobell) */
} TocsinNotifyType;

GType tocsin_notify_type_get_type (void) G_GNUC_CONST;
#define TOCSIN_TYPE_NOTIFY_TYPE (tocsin_notify_type_get_type ())

/* The cursor of a subscription that has not stored anything yet: subscribe live only, and take
 * the relay's lastId as the starting point. */
#define TOCSIN_CURSOR_NONE ((gint64) -1)

#define TOCSIN_TYPE_SUBSCRIPTION (tocsin_subscription_get_type ())
G_DECLARE_FINAL_TYPE (TocsinSubscription, tocsin_subscription, TOCSIN, SUBSCRIPTION, GObject)

/* @relay_url: base URL of the relay without trailing slash ("https://relay.example.com");
 * @token: the subscribe token. */
TocsinSubscription *tocsin_subscription_new (const char *relay_url,
                                             const char *token);

const char       *tocsin_subscription_get_relay_url   (TocsinSubscription *self);
const char       *tocsin_subscription_get_token       (TocsinSubscription *self);
/* The channel's id on its relay; 0 until known. */
gint64            tocsin_subscription_get_channel_id  (TocsinSubscription *self);
const char       *tocsin_subscription_get_name        (TocsinSubscription *self);
const char       *tocsin_subscription_get_description (TocsinSubscription *self);
TocsinNotifyType  tocsin_subscription_get_notify_type (TocsinSubscription *self);
gboolean          tocsin_subscription_get_muted       (TocsinSubscription *self);
/* Last message id stored from this channel, or TOCSIN_CURSOR_NONE. */
gint64            tocsin_subscription_get_cursor      (TocsinSubscription *self);
/* Why the relay refused this subscription ("unknown-token", "deleted"...) as a sentence for
 * people, or NULL when it is fine. Not persisted. */
const char       *tocsin_subscription_get_error       (TocsinSubscription *self);
/* "https://relay.example.com/s/TOKEN" */
char             *tocsin_subscription_dup_subscribe_url (TocsinSubscription *self);

/* Setters notify; persist with TocsinClient (tocsin_client_update_subscription) or
 * TocsinHistory. */
void tocsin_subscription_set_channel_id  (TocsinSubscription *self, gint64 channel_id);
void tocsin_subscription_set_name        (TocsinSubscription *self, const char *name);
void tocsin_subscription_set_description (TocsinSubscription *self, const char *description);
void tocsin_subscription_set_notify_type (TocsinSubscription *self, TocsinNotifyType type);
void tocsin_subscription_set_muted       (TocsinSubscription *self, gboolean muted);
void tocsin_subscription_set_cursor      (TocsinSubscription *self, gint64 cursor);
void tocsin_subscription_set_error       (TocsinSubscription *self, const char *error);

/* Parses a subscribe link: "https://host[/prefix]/s/TOKEN", or
 * "tocsin://subscribe?url=<escaped subscribe link>". Gives the relay's base URL (no trailing
 * slash) and the token. FALSE with a G_IO_ERROR_INVALID_ARGUMENT a person can read otherwise. */
gboolean tocsin_subscription_parse_url (const char  *url,
                                        char       **relay_url,
                                        char       **token,
                                        GError     **error);

G_END_DECLS
