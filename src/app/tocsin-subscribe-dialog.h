/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

#include "tocsin-client.h"

G_BEGIN_DECLS

#define TOCSIN_TYPE_SUBSCRIBE_DIALOG (tocsin_subscribe_dialog_get_type ())
G_DECLARE_FINAL_TYPE (TocsinSubscribeDialog, tocsin_subscribe_dialog, TOCSIN, SUBSCRIBE_DIALOG,
                      AdwWindow)

/* Asks before subscribing: paste (or get) a link, see what the channel is, choose the
 * notification type and mute, confirm. Emits "subscribed" (TocsinSubscription *). */
GtkWidget *tocsin_subscribe_dialog_new                  (GtkWindow          *parent,
                                                         TocsinClient       *client,
                                                         const char         *link);
/* The same dialog for a subscription in the list: its settings apply at once. */
GtkWidget *tocsin_subscribe_dialog_new_for_subscription (GtkWindow          *parent,
                                                         TocsinClient       *client,
                                                         TocsinSubscription *subscription);

G_END_DECLS
