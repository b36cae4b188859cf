/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-call-window.h: Echobell's "calling" notification on the desktop. A window with the
 * channel, the title and the body rings (a looping sound) until the user answers
 * "Acknowledge" or "Dismiss", or until someone else on the channel acknowledges it. Unanswered,
 * it grows louder and comes back to the front every 30 seconds.
 */
#pragma once

#include <adwaita.h>

#include "tocsin-record.h"

G_BEGIN_DECLS

#define TOCSIN_TYPE_CALL_WINDOW (tocsin_call_window_get_type ())
G_DECLARE_FINAL_TYPE (TocsinCallWindow, tocsin_call_window, TOCSIN, CALL_WINDOW, AdwWindow)

/* Emits "answered" (gboolean acknowledged) once, when the user answers. */
TocsinCallWindow *tocsin_call_window_new           (GtkApplication   *application,
                                                    TocsinRecord     *record,
                                                    const char       *channel_name);
TocsinRecord     *tocsin_call_window_get_record    (TocsinCallWindow *self);
gboolean          tocsin_call_window_get_ringing   (TocsinCallWindow *self);
/* Someone answered: the ringing stops and the window says who (@by may be empty). */
void              tocsin_call_window_answered_by   (TocsinCallWindow *self,
                                                    const char       *by);
/* After "answered" with acknowledged: whether the relay was told. */
void              tocsin_call_window_set_ack_sent  (TocsinCallWindow *self,
                                                    gboolean          sent);

G_END_DECLS
