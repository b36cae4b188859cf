/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

#include "tocsin-application.h"
#include "tocsin-record-list.h"

G_BEGIN_DECLS

#define TOCSIN_TYPE_WINDOW (tocsin_window_get_type ())
G_DECLARE_FINAL_TYPE (TocsinWindow, tocsin_window, TOCSIN, WINDOW, AdwApplicationWindow)

TocsinWindow     *tocsin_window_new           (TocsinApplication *application);

/* Clears the filters, scrolls to record @id and opens its details (a notification click). */
void              tocsin_window_show_record   (TocsinWindow *self,
                                               gint64        id);
/* Selects that channel in the sidebar (a storm summary click). */
void              tocsin_window_show_channel  (TocsinWindow *self,
                                               const char   *relay_url,
                                               gint64        channel_id);
/* A toast with a sentence a person can act on. */
void              tocsin_window_show_error    (TocsinWindow *self,
                                               const char   *message);
/* Opens the subscribe dialog on @link (`tocsin <link>`, a tocsin:// link). */
void              tocsin_window_ask_subscribe (TocsinWindow *self,
                                               const char   *link);
/* The application's owned channels were reloaded: update what can be edited. */
void              tocsin_window_owned_channels_changed (TocsinWindow *self);

/* For tests: the model of the records view and the view itself. */
TocsinRecordList *tocsin_window_get_record_list  (TocsinWindow *self);
GtkListView      *tocsin_window_get_records_view (TocsinWindow *self);

G_END_DECLS
