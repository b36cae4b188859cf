/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-caller.h: rings the calls of calling channels (TocsinCallWindow) and keeps them in
 * step with the channel's other subscribers: "Acknowledge" is told to the relay, and an
 * acknowledgement the relay tells stops the ringing here (docs/protocol.md, "ack").
 *
 * A call older than TOCSIN_CALL_MAX_AGE_SECONDS when it arrives (a catch-up after sleep) or
 * already acknowledged by someone does not ring: it pops up as a time-sensitive notification.
 */
#pragma once

#include <gtk/gtk.h>

#include "tocsin-client.h"
#include "tocsin-notifier.h"

G_BEGIN_DECLS

#define TOCSIN_CALL_MAX_AGE_SECONDS (10 * 60)

#define TOCSIN_TYPE_CALLER (tocsin_caller_get_type ())
G_DECLARE_FINAL_TYPE (TocsinCaller, tocsin_caller, TOCSIN, CALLER, GObject)

TocsinCaller *tocsin_caller_new          (GtkApplication *application,
                                          TocsinClient   *client,
                                          TocsinNotifier *notifier);
/* The windows ringing or answered and still open (TocsinCallWindow), oldest first. */
GList        *tocsin_caller_get_windows  (TocsinCaller   *self);

G_END_DECLS
