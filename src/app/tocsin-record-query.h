/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-record-query.h: what a records view asks the history for (tocsin_history_query_async()).
 */
#pragma once

#include <glib-object.h>

#include "tocsin-record.h"

G_BEGIN_DECLS

/* What a records view shows. All fields optional (NULL / 0 / FALSE = no filter). */
typedef struct
{
  char     *search;       /* words typed by the user; matched with FTS5 on title and body
                           * (prefix match on each word; quoting is handled here) */
  char     *relay_url;    /* with channel_id: only that channel */
  gint64    channel_id;
  gboolean  unread_only;
} TocsinRecordQuery;

GType              tocsin_record_query_get_type (void) G_GNUC_CONST;
#define TOCSIN_TYPE_RECORD_QUERY (tocsin_record_query_get_type ())
TocsinRecordQuery *tocsin_record_query_new   (void);
TocsinRecordQuery *tocsin_record_query_copy  (const TocsinRecordQuery *query);
void               tocsin_record_query_free  (TocsinRecordQuery *query);
gboolean           tocsin_record_query_equal (const TocsinRecordQuery *a,
                                              const TocsinRecordQuery *b);
/* Whether @record passes @query's channel and unread filters (not the search words). */
gboolean           tocsin_record_query_matches_filters (const TocsinRecordQuery *query,
                                                        TocsinRecord            *record);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRecordQuery, tocsin_record_query_free)

G_END_DECLS
