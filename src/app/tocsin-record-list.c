/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-record-list"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-record-list.h"

/* Records fetched per query: a screenful or three. */
#define PAGE_SIZE 100

struct _TocsinRecordList
{
  GObject parent_instance;

  /* Owned references: */
  TocsinHistory     *history;
  TocsinRecordQuery *query;
  GCancellable      *cancellable;   /* replaced on each reload; cancelled on dispose */

  /* The model: one slot per position, NULL until someone asked for it. A slot holds a loaded
   * record or a placeholder that its page fills in. */
  GPtrArray         *items;
  GHashTable        *by_id;          /* row id → record in items (borrowed) */
  GHashTable        *pages;          /* pages requested in this generation */
  guint              n_unloaded;     /* placeholders handed out, not filled yet */

  /* Bumped whenever positions shift or everything reloads: a page answer from an older
   * generation has offsets that no longer match, so it is dropped and asked for again. */
  guint              generation;
  gboolean           loading;
};

static void list_model_iface_init (GListModelInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (TocsinRecordList, tocsin_record_list, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_LIST_MODEL, list_model_iface_init))

enum {
  PROP_0,
  PROP_HISTORY,
  PROP_SEARCH,
  PROP_UNREAD_ONLY,
  PROP_RELAY_URL,
  PROP_CHANNEL_ID,
  PROP_LOADING,
  PROP_N_ITEMS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void request_page (TocsinRecordList *self, guint page);

/* ---- GListModel --------------------------------------------------------------------------- */

static GType
tocsin_record_list_get_item_type (GListModel *model)
{
  return TOCSIN_TYPE_RECORD;
}

static guint
tocsin_record_list_get_n_items (GListModel *model)
{
  return TOCSIN_RECORD_LIST (model)->items->len;
}

static gpointer
tocsin_record_list_get_item (GListModel *model,
                             guint       position)
{
  TocsinRecordList *self = TOCSIN_RECORD_LIST (model);
  TocsinRecord *record;

  if (position >= self->items->len)
    return NULL;

  record = g_ptr_array_index (self->items, position);
  if (record == NULL)
    {
      /* Never block the caller (a list view scrolling): hand out a placeholder now and fill it
       * in when its page arrives. */
      record = tocsin_record_new ();
      g_ptr_array_index (self->items, position) = record;
      self->n_unloaded++;
      request_page (self, position / PAGE_SIZE);
    }
  return g_object_ref (record);
}

static void
list_model_iface_init (GListModelInterface *iface)
{
  iface->get_item_type = tocsin_record_list_get_item_type;
  iface->get_n_items = tocsin_record_list_get_n_items;
  iface->get_item = tocsin_record_list_get_item;
}

/* ---- loading ------------------------------------------------------------------------------ */

typedef struct
{
  TocsinRecordList *self;
  guint             generation;
  guint             page;
} PageRequest;

static void
bump_generation (TocsinRecordList *self)
{
  self->generation++;
  g_hash_table_remove_all (self->pages);
}

/* After a shift, ask again for every page that still has placeholders waiting. */
static void
request_unloaded_pages (TocsinRecordList *self)
{
  if (self->n_unloaded == 0)
    return;
  for (guint i = 0; i < self->items->len; i++)
    {
      TocsinRecord *record = g_ptr_array_index (self->items, i);

      if (record != NULL && !tocsin_record_get_loaded (record))
        request_page (self, i / PAGE_SIZE);
    }
}

static void
page_loaded (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  PageRequest *request = user_data;
  TocsinRecordList *self = request->self;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GError) error = NULL;

  records = tocsin_history_query_finish (TOCSIN_HISTORY (object), result, &error);
  if (records == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_debug ("Could not load records: %s", error->message);
      goto out;
    }

  if (request->generation != self->generation)
    {
      request_unloaded_pages (self);
      goto out;
    }

  for (guint i = 0; i < records->len; i++)
    {
      TocsinRecord *record = g_ptr_array_index (records, i);
      guint position = request->page * PAGE_SIZE + i;
      TocsinRecord *slot;

      if (position >= self->items->len)
        break;
      slot = g_ptr_array_index (self->items, position);
      if (slot == NULL)
        {
          g_ptr_array_index (self->items, position) = g_object_ref (record);
          g_hash_table_insert (self->by_id, g_memdup2 (&(gint64) { tocsin_record_get_id (record) },
                                                       sizeof (gint64)), record);
        }
      else if (!tocsin_record_get_loaded (slot))
        {
          tocsin_record_update_from (slot, record);
          self->n_unloaded--;
          g_hash_table_insert (self->by_id, g_memdup2 (&(gint64) { tocsin_record_get_id (slot) },
                                                       sizeof (gint64)), slot);
        }
    }

out:
  g_object_unref (request->self);
  g_free (request);
}

static void
request_page (TocsinRecordList *self,
              guint             page)
{
  PageRequest *request;

  if (g_hash_table_contains (self->pages, GUINT_TO_POINTER (page + 1)))
    return;
  g_hash_table_add (self->pages, GUINT_TO_POINTER (page + 1));

  request = g_new0 (PageRequest, 1);
  request->self = g_object_ref (self);
  request->generation = self->generation;
  request->page = page;
  tocsin_history_query_async (self->history, self->query, page * PAGE_SIZE, PAGE_SIZE,
                              self->cancellable, page_loaded, request);
}

typedef struct
{
  TocsinRecordList *self;
  guint             generation;
} CountRequest;

static void
set_loading (TocsinRecordList *self,
             gboolean          loading)
{
  if (self->loading == loading)
    return;
  self->loading = loading;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LOADING]);
}

static void
clear_items (TocsinRecordList *self)
{
  for (guint i = 0; i < self->items->len; i++)
    g_clear_object ((TocsinRecord **) &g_ptr_array_index (self->items, i));
  g_ptr_array_set_size (self->items, 0);
  g_hash_table_remove_all (self->by_id);
  self->n_unloaded = 0;
}

static void
count_loaded (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  CountRequest *request = user_data;
  TocsinRecordList *self = request->self;
  g_autoptr(GError) error = NULL;
  gint64 count;
  guint old_len;

  count = tocsin_history_count_finish (TOCSIN_HISTORY (object), result, &error);
  if (request->generation != self->generation ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    goto out;
  if (count < 0)
    {
      g_debug ("Could not count records: %s", error->message);
      count = 0;
    }

  old_len = self->items->len;
  clear_items (self);
  g_ptr_array_set_size (self->items, MIN (count, G_MAXUINT));
  set_loading (self, FALSE);
  if (old_len != 0 || self->items->len != 0)
    g_list_model_items_changed (G_LIST_MODEL (self), 0, old_len, self->items->len);
  if (old_len != self->items->len)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_ITEMS]);

out:
  g_object_unref (request->self);
  g_free (request);
}

void
tocsin_record_list_reload (TocsinRecordList *self)
{
  CountRequest *request;

  g_return_if_fail (TOCSIN_IS_RECORD_LIST (self));

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  bump_generation (self);
  set_loading (self, TRUE);

  request = g_new0 (CountRequest, 1);
  request->self = g_object_ref (self);
  request->generation = self->generation;
  tocsin_history_count_async (self->history, self->query, self->cancellable,
                              count_loaded, request);
  /* The first page is what a view asks for as soon as it knows the count: ask now, so that the
   * history runs both queries back to back (the answers come in that order; the page's fill
   * the slots the count made) instead of waiting for the count's round trip first. */
  request_page (self, 0);
}

/* ---- following the history ------------------------------------------------------------- */

/* What FTS5 prefix search would find, close enough for deciding whether a record that just
 * arrived belongs in a searched list: every word starts a word of the title or body. */
static gboolean
matches_search (const char   *search,
                TocsinRecord *record)
{
  g_auto(GStrv) words = NULL;

  if (search == NULL)
    return TRUE;
  words = g_strsplit_set (search, " \t\n\r", -1);
  for (guint i = 0; words[i]; i++)
    {
      if (*words[i] == '\0')
        continue;
      if (!g_str_match_string (words[i], tocsin_record_get_title (record), TRUE) &&
          !g_str_match_string (words[i], tocsin_record_get_body (record), TRUE))
        return FALSE;
    }
  return TRUE;
}

static gint
find_position (TocsinRecordList *self,
               TocsinRecord     *record)
{
  guint index;

  if (g_ptr_array_find (self->items, record, &index))
    return (gint) index;
  return -1;
}

static void
remove_at (TocsinRecordList *self,
           guint             position)
{
  TocsinRecord *record = g_ptr_array_index (self->items, position);
  gint64 id = tocsin_record_get_id (record);

  g_hash_table_remove (self->by_id, &id);
  g_ptr_array_remove_index (self->items, position);
  g_object_unref (record);
  bump_generation (self);
  g_list_model_items_changed (G_LIST_MODEL (self), position, 1, 0);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_ITEMS]);
  request_unloaded_pages (self);
}

/* Whether every slot is loaded, so a record not among them is surely not in the list. */
static gboolean
fully_loaded (TocsinRecordList *self)
{
  return g_hash_table_size (self->by_id) == self->items->len;
}

/* A run of new records (oldest first): one insertion at the top and one items-changed for all
 * of them, so a burst costs the list (and the view over it) one change per main-loop dispatch
 * rather than one per record, each moving every slot below. */
static void
on_records_added (TocsinRecordList *self,
                  GPtrArray        *records,
                  TocsinHistory    *history)
{
  g_autoptr(GPtrArray) news = g_ptr_array_new ();
  guint old_len = self->items->len;

  /* While counting, the count (queued after these records were committed) already has them. */
  if (self->loading)
    return;
  for (guint i = 0; i < records->len; i++)
    {
      TocsinRecord *record = g_ptr_array_index (records, i);
      gint64 id = tocsin_record_get_id (record);

      if (!tocsin_record_query_matches_filters (self->query, record) ||
          !matches_search (self->query->search, record) ||
          g_hash_table_contains (self->by_id, &id))
        continue;
      g_hash_table_insert (self->by_id, g_memdup2 (&id, sizeof id), record);
      g_ptr_array_add (news, record);
    }
  if (news->len == 0)
    return;

  /* Newest first: new records are always at the top, the newest above. */
  g_ptr_array_set_size (self->items, old_len + news->len);
  memmove (self->items->pdata + news->len, self->items->pdata, old_len * sizeof (gpointer));
  for (guint i = 0; i < news->len; i++)
    self->items->pdata[i] = g_object_ref (g_ptr_array_index (news, news->len - 1 - i));
  bump_generation (self);
  g_list_model_items_changed (G_LIST_MODEL (self), 0, 0, news->len);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_ITEMS]);
  request_unloaded_pages (self);
}

static void
on_record_changed (TocsinRecordList *self,
                   TocsinRecord     *record,
                   TocsinHistory    *history)
{
  gint64 id = tocsin_record_get_id (record);
  TocsinRecord *ours;

  if (self->loading)
    return;

  ours = g_hash_table_lookup (self->by_id, &id);
  if (ours == NULL)
    {
      /* It may belong to an unloaded page, or have just started matching "unread only". */
      if (self->query->unread_only && !tocsin_record_get_read (record))
        tocsin_record_list_reload (self);
      else if (self->query->unread_only && !fully_loaded (self))
        tocsin_record_list_reload (self);
      return;
    }

  tocsin_record_update_from (ours, record);
  if (!tocsin_record_query_matches_filters (self->query, ours))
    {
      gint position = find_position (self, ours);

      if (position >= 0)
        remove_at (self, position);
    }
}

static void
on_record_removed (TocsinRecordList *self,
                   gint64            id,
                   TocsinHistory    *history)
{
  TocsinRecord *ours;
  gint position;

  if (self->loading)
    return;

  ours = g_hash_table_lookup (self->by_id, &id);
  if (ours == NULL)
    {
      if (!fully_loaded (self))
        tocsin_record_list_reload (self);
      return;
    }
  position = find_position (self, ours);
  if (position >= 0)
    remove_at (self, position);
}

/* ---- GObject ------------------------------------------------------------------------------ */

static void
tocsin_record_list_dispose (GObject *object)
{
  TocsinRecordList *self = TOCSIN_RECORD_LIST (object);

  g_cancellable_cancel (self->cancellable);
  if (self->history)
    g_signal_handlers_disconnect_by_data (self->history, self);
  g_clear_object (&self->history);

  G_OBJECT_CLASS (tocsin_record_list_parent_class)->dispose (object);
}

static void
tocsin_record_list_finalize (GObject *object)
{
  TocsinRecordList *self = TOCSIN_RECORD_LIST (object);

  clear_items (self);
  g_ptr_array_unref (self->items);
  g_hash_table_unref (self->by_id);
  g_hash_table_unref (self->pages);
  g_clear_object (&self->cancellable);
  tocsin_record_query_free (self->query);

  G_OBJECT_CLASS (tocsin_record_list_parent_class)->finalize (object);
}

static void
tocsin_record_list_constructed (GObject *object)
{
  TocsinRecordList *self = TOCSIN_RECORD_LIST (object);

  G_OBJECT_CLASS (tocsin_record_list_parent_class)->constructed (object);

  g_assert (self->history != NULL);
  g_signal_connect_object (self->history, "records-added",
                           G_CALLBACK (on_records_added), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->history, "record-changed",
                           G_CALLBACK (on_record_changed), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->history, "record-removed",
                           G_CALLBACK (on_record_removed), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->history, "reset",
                           G_CALLBACK (tocsin_record_list_reload), self, G_CONNECT_SWAPPED);
  tocsin_record_list_reload (self);
}

static void
tocsin_record_list_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  TocsinRecordList *self = TOCSIN_RECORD_LIST (object);

  switch (prop_id)
    {
    case PROP_HISTORY: g_value_set_object (value, self->history); break;
    case PROP_SEARCH: g_value_set_string (value, self->query->search); break;
    case PROP_UNREAD_ONLY: g_value_set_boolean (value, self->query->unread_only); break;
    case PROP_RELAY_URL: g_value_set_string (value, self->query->relay_url); break;
    case PROP_CHANNEL_ID: g_value_set_int64 (value, self->query->channel_id); break;
    case PROP_LOADING: g_value_set_boolean (value, self->loading); break;
    case PROP_N_ITEMS: g_value_set_uint (value, self->items->len); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tocsin_record_list_set_property (GObject      *object,
                                 guint         prop_id,
                                 const GValue *value,
                                 GParamSpec   *pspec)
{
  TocsinRecordList *self = TOCSIN_RECORD_LIST (object);

  switch (prop_id)
    {
    case PROP_HISTORY: self->history = g_value_dup_object (value); break;
    case PROP_SEARCH: tocsin_record_list_set_search (self, g_value_get_string (value)); break;
    case PROP_UNREAD_ONLY:
      tocsin_record_list_set_unread_only (self, g_value_get_boolean (value));
      break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tocsin_record_list_class_init (TocsinRecordListClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags ro = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->dispose = tocsin_record_list_dispose;
  object_class->finalize = tocsin_record_list_finalize;
  object_class->constructed = tocsin_record_list_constructed;
  object_class->get_property = tocsin_record_list_get_property;
  object_class->set_property = tocsin_record_list_set_property;

  properties[PROP_HISTORY] =
    g_param_spec_object ("history", NULL, NULL, TOCSIN_TYPE_HISTORY,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_SEARCH] = g_param_spec_string ("search", NULL, NULL, NULL, rw);
  properties[PROP_UNREAD_ONLY] = g_param_spec_boolean ("unread-only", NULL, NULL, FALSE, rw);
  properties[PROP_RELAY_URL] = g_param_spec_string ("relay-url", NULL, NULL, NULL, ro);
  properties[PROP_CHANNEL_ID] = g_param_spec_int64 ("channel-id", NULL, NULL,
                                                    0, G_MAXINT64, 0, ro);
  properties[PROP_LOADING] = g_param_spec_boolean ("loading", NULL, NULL, FALSE, ro);
  properties[PROP_N_ITEMS] = g_param_spec_uint ("n-items", NULL, NULL, 0, G_MAXUINT, 0, ro);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
tocsin_record_list_init (TocsinRecordList *self)
{
  self->query = tocsin_record_query_new ();
  self->items = g_ptr_array_new ();
  self->by_id = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  self->pages = g_hash_table_new (NULL, NULL);
  self->cancellable = g_cancellable_new ();
}

TocsinRecordList *
tocsin_record_list_new (TocsinHistory *history)
{
  g_return_val_if_fail (TOCSIN_IS_HISTORY (history), NULL);
  return g_object_new (TOCSIN_TYPE_RECORD_LIST, "history", history, NULL);
}

TocsinHistory *
tocsin_record_list_get_history (TocsinRecordList *self)
{
  g_return_val_if_fail (TOCSIN_IS_RECORD_LIST (self), NULL);
  return self->history;
}

const char *
tocsin_record_list_get_search (TocsinRecordList *self)
{
  g_return_val_if_fail (TOCSIN_IS_RECORD_LIST (self), NULL);
  return self->query->search;
}

void
tocsin_record_list_set_search (TocsinRecordList *self,
                               const char       *search)
{
  g_autofree char *stripped = NULL;

  g_return_if_fail (TOCSIN_IS_RECORD_LIST (self));

  /* Spaces alone are no search: the list shows everything. */
  stripped = search ? g_strstrip (g_strdup (search)) : NULL;
  if (stripped && *stripped == '\0')
    g_clear_pointer (&stripped, g_free);
  if (g_strcmp0 (stripped, self->query->search) == 0)
    return;
  g_free (self->query->search);
  self->query->search = g_steal_pointer (&stripped);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SEARCH]);
  tocsin_record_list_reload (self);
}

gboolean
tocsin_record_list_get_unread_only (TocsinRecordList *self)
{
  g_return_val_if_fail (TOCSIN_IS_RECORD_LIST (self), FALSE);
  return self->query->unread_only;
}

void
tocsin_record_list_set_unread_only (TocsinRecordList *self,
                                    gboolean          unread_only)
{
  g_return_if_fail (TOCSIN_IS_RECORD_LIST (self));

  unread_only = !!unread_only;
  if (self->query->unread_only == unread_only)
    return;
  self->query->unread_only = unread_only;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_UNREAD_ONLY]);
  tocsin_record_list_reload (self);
}

void
tocsin_record_list_set_channel (TocsinRecordList *self,
                                const char       *relay_url,
                                gint64            channel_id)
{
  g_return_if_fail (TOCSIN_IS_RECORD_LIST (self));

  if (relay_url == NULL)
    channel_id = 0;
  if (g_strcmp0 (relay_url, self->query->relay_url) == 0 &&
      channel_id == self->query->channel_id)
    return;
  g_free (self->query->relay_url);
  self->query->relay_url = g_strdup (relay_url);
  self->query->channel_id = channel_id;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RELAY_URL]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CHANNEL_ID]);
  tocsin_record_list_reload (self);
}

const char *
tocsin_record_list_get_relay_url (TocsinRecordList *self)
{
  g_return_val_if_fail (TOCSIN_IS_RECORD_LIST (self), NULL);
  return self->query->relay_url;
}

gint64
tocsin_record_list_get_channel_id (TocsinRecordList *self)
{
  g_return_val_if_fail (TOCSIN_IS_RECORD_LIST (self), 0);
  return self->query->channel_id;
}

gboolean
tocsin_record_list_get_loading (TocsinRecordList *self)
{
  g_return_val_if_fail (TOCSIN_IS_RECORD_LIST (self), FALSE);
  return self->loading;
}

gint
tocsin_record_list_find (TocsinRecordList *self,
                         gint64            id)
{
  TocsinRecord *record;

  g_return_val_if_fail (TOCSIN_IS_RECORD_LIST (self), -1);

  record = g_hash_table_lookup (self->by_id, &id);
  return record ? find_position (self, record) : -1;
}
