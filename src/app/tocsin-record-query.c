/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-record-query"

#include "config.h"

#include "tocsin-record-query.h"

TocsinRecordQuery *
tocsin_record_query_new (void)
{
  return g_new0 (TocsinRecordQuery, 1);
}

TocsinRecordQuery *
tocsin_record_query_copy (const TocsinRecordQuery *query)
{
  TocsinRecordQuery *copy = g_new0 (TocsinRecordQuery, 1);

  if (query == NULL)
    return copy;
  copy->search = g_strdup (query->search);
  copy->relay_url = g_strdup (query->relay_url);
  copy->channel_id = query->channel_id;
  copy->unread_only = query->unread_only;
  return copy;
}

void
tocsin_record_query_free (TocsinRecordQuery *query)
{
  if (query == NULL)
    return;
  g_free (query->search);
  g_free (query->relay_url);
  g_free (query);
}

G_DEFINE_BOXED_TYPE (TocsinRecordQuery, tocsin_record_query,
                     tocsin_record_query_copy, tocsin_record_query_free)

gboolean
tocsin_record_query_equal (const TocsinRecordQuery *a,
                           const TocsinRecordQuery *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return g_strcmp0 (a->search, b->search) == 0 &&
         g_strcmp0 (a->relay_url, b->relay_url) == 0 &&
         a->channel_id == b->channel_id &&
         !a->unread_only == !b->unread_only;
}

gboolean
tocsin_record_query_matches_filters (const TocsinRecordQuery *query,
                                     TocsinRecord            *record)
{
  if (query == NULL)
    return TRUE;
  if (query->relay_url != NULL &&
      (g_strcmp0 (query->relay_url, tocsin_record_get_relay_url (record)) != 0 ||
       query->channel_id != tocsin_record_get_channel_id (record)))
    return FALSE;
  if (query->unread_only && tocsin_record_get_read (record))
    return FALSE;
  return TRUE;
}
