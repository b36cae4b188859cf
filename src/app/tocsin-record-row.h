/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "tocsin-record.h"

G_BEGIN_DECLS

#define TOCSIN_TYPE_RECORD_ROW (tocsin_record_row_get_type ())
G_DECLARE_FINAL_TYPE (TocsinRecordRow, tocsin_record_row, TOCSIN, RECORD_ROW, GtkWidget)

GtkWidget    *tocsin_record_row_new        (void);
TocsinRecord *tocsin_record_row_get_record (TocsinRecordRow *self);
void          tocsin_record_row_set_record (TocsinRecordRow *self,
                                            TocsinRecord    *record);
/* The link label, for tests and for keyboard focus. */
GtkWidget    *tocsin_record_row_get_link_label (TocsinRecordRow *self);
/* The body label: plain text, or Pango markup with <a href> links for a Markdown body (its
 * links open through win.open-link, as the link label's do). */
GtkWidget    *tocsin_record_row_get_body_label (TocsinRecordRow *self);

/* "just now", "5 minutes ago", "yesterday at 14:02", "12 March at 09:15". */
char         *tocsin_format_relative_time  (gint64 time_ms,
                                            gint64 now_ms);

G_END_DECLS
