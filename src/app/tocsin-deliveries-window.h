/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-deliveries-window.h: the "Deliveries" page (issue 15, Ringostat's webhook error check):
 * every attempt of the requests the relay sent for a channel this user owns, newest first, with
 * "Retry Now" on the deliveries that failed or are held back; or of the action buttons this
 * user pressed on this desktop.
 */
#pragma once

#include <adwaita.h>

#include "tocsin-application.h"

G_BEGIN_DECLS

#define TOCSIN_TYPE_DELIVERIES_WINDOW (tocsin_deliveries_window_get_type ())
G_DECLARE_FINAL_TYPE (TocsinDeliveriesWindow, tocsin_deliveries_window, TOCSIN, DELIVERIES_WINDOW,
                      AdwWindow)

/* The relay's log for @channel (GET /v1/channels/{id}/deliveries), loaded at once. */
GtkWidget *tocsin_deliveries_window_new_for_channel (GtkWindow                *parent,
                                                     TocsinApplication        *app,
                                                     const TocsinOwnedChannel *channel);
/* "Your Action Presses": the attempts of the action buttons pressed on this desktop (the
 * history's press log), loaded at once and again after each press; Retry Now presses again. */
GtkWidget *tocsin_deliveries_window_new_for_presses (GtkWindow                *parent,
                                                     TocsinApplication        *app);
/* Loads the list again (what the Refresh button does). */
void       tocsin_deliveries_window_refresh         (TocsinDeliveriesWindow   *self);
/* "loading", "empty", "error" or "list": what the page shows now (for tests). */
const char *tocsin_deliveries_window_get_state      (TocsinDeliveriesWindow   *self);

G_END_DECLS
