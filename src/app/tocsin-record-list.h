/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-record-list.h: a GListModel of TocsinRecord over the history, newest first, with a
 * search text and channel / unread filters.
 *
 * It loads lazily: n_items comes from a COUNT query, and get_item() returns at once. An item
 * whose page has not arrived yet is a placeholder (tocsin_record_get_loaded() is FALSE) that is
 * filled in place (property notifications) when its page arrives off the main loop, so a
 * GtkListView over 100,000 records only ever loads the pages it shows. Bind row widgets to the
 * record's properties (or listen to notify) rather than reading them once.
 *
 * It follows the history's signals with exact items_changed ranges: a new record appears at
 * position 0, a deleted one disappears where it was; a "reset" reloads everything.
 */
#pragma once

#include <gio/gio.h>
#include "tocsin-history.h"

G_BEGIN_DECLS

#define TOCSIN_TYPE_RECORD_LIST (tocsin_record_list_get_type ())
G_DECLARE_FINAL_TYPE (TocsinRecordList, tocsin_record_list, TOCSIN, RECORD_LIST, GObject)

TocsinRecordList *tocsin_record_list_new              (TocsinHistory *history);
TocsinHistory    *tocsin_record_list_get_history      (TocsinRecordList *self);

/* Filters; each change reloads (items_changed over everything once the count is known). */
const char       *tocsin_record_list_get_search       (TocsinRecordList *self);
void              tocsin_record_list_set_search       (TocsinRecordList *self,
                                                       const char       *search);
gboolean          tocsin_record_list_get_unread_only  (TocsinRecordList *self);
void              tocsin_record_list_set_unread_only  (TocsinRecordList *self,
                                                       gboolean          unread_only);
/* @relay_url NULL: every channel. */
void              tocsin_record_list_set_channel      (TocsinRecordList *self,
                                                       const char       *relay_url,
                                                       gint64            channel_id);
const char       *tocsin_record_list_get_relay_url    (TocsinRecordList *self);
gint64            tocsin_record_list_get_channel_id   (TocsinRecordList *self);

/* TRUE while the count after a filter change is being fetched (property "loading"), so the
 * UI can tell "no records" from "not known yet". */
gboolean          tocsin_record_list_get_loading      (TocsinRecordList *self);

/* Reloads everything from the history. */
void              tocsin_record_list_reload           (TocsinRecordList *self);

/* Position of the record with row id @id if it is loaded, else -1 (e.g. to scroll to the
 * record a notification click asked to show). */
gint              tocsin_record_list_find             (TocsinRecordList *self,
                                                       gint64            id);

/* Properties: "history", "search", "unread-only", "relay-url", "channel-id", "loading",
 * "n-items" (GListModel's count, notified when it changes). */

G_END_DECLS
