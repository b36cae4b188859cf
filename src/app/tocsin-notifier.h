/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-notifier.h: desktop notifications for records, through libnotify.
 *
 * Summary = title, body escaped for notification markup (a Markdown body as its plain text),
 * the app icon, the desktop-entry hint, urgency critical when time-sensitive: the message's own
 * notificationType decides ("time-sensitive" and, for now, "calling" are critical; "active" is
 * normal even on a time-sensitive channel), and without one, the subscription's notify type.
 * Actions: "default" (a click) opens the record's link, or asks the app to show the record when
 * it has none; "mark-read" ("Mark as read").
 * A replacement updates the same popup without ringing again. A storm (more than 3 from one
 * channel within 5 s) becomes one summary ("12 new from Prod alerts"). Quiet hours
 * (GSettings) keep popups silent except time-sensitive ones; muted channels never pop up.
 */
#pragma once

#include <gio/gio.h>
#include "tocsin-history.h"
#include "tocsin-record.h"
#include "tocsin-subscription.h"

G_BEGIN_DECLS

/* Why tocsin_notifier_notify() did or did not show a popup. */
typedef enum
{
  TOCSIN_NOTIFY_SHOWN,        /* a popup for this record */
  TOCSIN_NOTIFY_COALESCED,    /* counted into the channel's storm summary */
  TOCSIN_NOTIFY_MUTED,        /* the channel is muted */
  TOCSIN_NOTIFY_QUIET,        /* quiet hours */
  TOCSIN_NOTIFY_FAILED,       /* no notification server (logged with g_debug) */
} TocsinNotifyOutcome;

#define TOCSIN_TYPE_NOTIFIER (tocsin_notifier_get_type ())
G_DECLARE_FINAL_TYPE (TocsinNotifier, tocsin_notifier, TOCSIN, NOTIFIER, GObject)

/* @settings: the app's io.github.tocsin.Tocsin settings (quiet hours, sound); NULL: its own. */
TocsinNotifier      *tocsin_notifier_new      (GSettings          *settings);

/* Shows @record (which must be stored: its row id is used for actions) of @subscription
 * (notify type, muted, name; may be NULL: normal, not muted, the record's channel name). */
TocsinNotifyOutcome  tocsin_notifier_notify   (TocsinNotifier     *self,
                                               TocsinRecord       *record,
                                               TocsinSubscription *subscription);
/* @record's content was replaced: update its popup in place if it is still shown, silently. */
void                 tocsin_notifier_update   (TocsinNotifier     *self,
                                               TocsinRecord       *record);
/* Closes the popup of record row @id, if any (it was read or deleted). */
void                 tocsin_notifier_withdraw (TocsinNotifier     *self,
                                               gint64              id);
/* Closes every popup. */
void                 tocsin_notifier_withdraw_all (TocsinNotifier *self);
/* Keeps the popups in step with @history: a record read or deleted there (by the window, a
 * popup's button, "mark all read", "clear channel"...) has its popup withdrawn. Callers then
 * change the history only, never the popups by hand. */
void                 tocsin_notifier_follow_history (TocsinNotifier *self,
                                                     TocsinHistory  *history);

/* TRUE if @now (local time) is within the configured quiet hours. */
gboolean             tocsin_notifier_in_quiet_hours (TocsinNotifier *self,
                                                     GDateTime      *now);

/* Signals:
 *   "show-record"  (gint64 id)   the user clicked a popup of a record without link: present the
 *                                window and show it
 *   "show-channel" (const char *relay_url, gint64 channel_id)  the user clicked a storm summary
 *   "mark-read"    (gint64 id)   the user pressed "Mark as read", or opened the popup's link
 *   "link-opened"  (const char *uri)  a click launched @uri (after the launch was asked for)
 *   "action"       (TocsinRecord *record, guint index)  the user pressed the popup's button for
 *                                the record's action @index (issue 15): the application hands it
 *                                to its TocsinActionRunner
 */

G_END_DECLS
