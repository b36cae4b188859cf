/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-cluster.c: fan-out between relay nodes on one PostgreSQL (issue 16).
 *
 * Every node, including the one that took a webhook, hands messages to its hub the same way:
 * from a per-channel cursor, reading the channel's rows after it in id order (on the store's
 * reader thread) and publishing them one by one. A node's own commits do not go to the hub
 * directly, as they do on SQLite: ids are numbered across nodes (tocsin-relay-store-pg.c), and a
 * node that published its own id N + 1 at once could do so before it has read N, committed a
 * moment earlier by another node; the hub drops anything at or below what a subscriber was last
 * sent, so N would be lost to that subscriber. Reading from the cursor makes each node's
 * publishing order the ids' order, whoever wrote them. A node's own commit only wakes the read
 * early (tocsin_relay_cluster_wake()), without waiting for its notice.
 *
 * Why nothing is missed:
 * - Ids are committed in order per channel (a row lock until COMMIT), so once id N is known to be
 *   committed, a read after the cursor sees every committed id up to N.
 * - A listening thread, on a connection of its own (libpq never runs on the main loop), LISTENs
 *   first and then reads every channel's newest id (tocsin_relay_store_pg_last_ids()): whatever
 *   was committed before is in that snapshot, whatever after sends a notice. It does the same
 *   after its connection was lost and came back, so notices sent meanwhile cost nothing: the
 *   cursors are compared with the new snapshot and read from.
 * - A channel without subscribers on this node has its cursor moved without a read. The decision
 *   is made on the main loop, where subscriptions are registered: a subscription registered later
 *   replays from the store itself (tocsin-relay-hub.c), after the message was committed.
 * - Duplicates (a notice and a wake for one id, a page read twice) are dropped here by the
 *   cursor, and by the hub per subscriber.
 *
 * Channel notices: "deleted" closes the channel's subscribers here at once; "rotated" has the hub
 * check its subscriptions' tokens now (a trigger or email rotation leaves them open).
 * Acknowledgements (a /v1/ws subscriber answering a call) are announced by the node that took
 * them and told to the subscribers here (tocsin_relay_hub_tell_ack()); each node tells the first
 * it learns of, so two answers at once on two nodes may each be told "first" somewhere.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>
#include <glib-unix.h>
#include <glib/gi18n.h>

#include "tocsin-relay-cluster.h"
#include "tocsin-relay-hub.h"
#include "tocsin-relay-store.h"
#include "tocsin-relay-store-pg.h"

/* Rows read per page from a cursor. */
#define READ_PAGE 500
/* The listening connection is checked with a query this often when nothing arrives, and
 * reopened this long after it failed. */
#define PING_MS 10000
#define RECONNECT_MS 1000

typedef enum
{
  EVENT_MESSAGES,   /* channel_id, id */
  EVENT_DELETED,
  EVENT_ROTATED,
  EVENT_CHANGED,
  EVENT_SYNC,       /* last_ids: the snapshot taken once listening */
  EVENT_ACKED,      /* channel_id, id (the message), by */
} EventKind;

typedef struct
{
  EventKind   kind;
  gint64      channel_id;
  gint64      id;
  GHashTable *last_ids;
  char       *by;
} Event;

typedef struct
{
  gint64   cursor;    /* the last id handed to the hub (or passed over: no subscribers here) */
  gint64   wanted;    /* the newest id known committed */
  gboolean reading;
} Cursor;

struct _TocsinRelayCluster
{
  /* borrowed */
  TocsinRelay  *relay;

  /* main context */
  GMainContext *context;
  GHashTable   *cursors;      /* gint64* channel id → Cursor */
  GCancellable *cancellable;  /* the reads in flight */
  guint         retry_id;     /* a read failed: all cursors are tried again */

  /* the listening thread, and what it hands over */
  char         *conninfo;
  GThread      *thread;
  int           stop_pipe[2];
  GMutex        lock;         /* guards events, dispatch and connects */
  GArray       *events;       /* Event */
  GSource      *dispatch;     /* an idle on context while events wait */
  guint         connects;
};

static void kick (TocsinRelayCluster *cluster, gint64 channel_id, Cursor *c);

static void
event_clear (Event *event)
{
  g_clear_pointer (&event->last_ids, g_hash_table_unref);
  g_clear_pointer (&event->by, g_free);
}

/* ---- the listening thread ---- */

static void
take_notice (TocsinRelayStorePgEvent  kind,
             gint64                   channel_id,
             gint64                   id,
             gpointer                 user_data)
{
  GArray *events = user_data;
  Event event = { 0 };

  event.kind = kind == TOCSIN_RELAY_STORE_PG_EVENT_MESSAGES ? EVENT_MESSAGES
               : kind == TOCSIN_RELAY_STORE_PG_EVENT_DELETED ? EVENT_DELETED
               : kind == TOCSIN_RELAY_STORE_PG_EVENT_ROTATED ? EVENT_ROTATED : EVENT_CHANGED;
  event.channel_id = channel_id;
  event.id = id;
  g_array_append_val (events, event);
}

static void
take_ack (gint64      channel_id,
          gint64      message_id,
          const char *by,
          gpointer    user_data)
{
  GArray *events = user_data;
  Event event = { EVENT_ACKED, channel_id, message_id, NULL, g_strdup (by) };

  g_array_append_val (events, event);
}

static gboolean dispatch_events (gpointer user_data);

/* Hands @events (emptied) to the main context. */
static void
post_events (TocsinRelayCluster *cluster,
             GArray             *events)
{
  if (events->len == 0)
    return;
  g_mutex_lock (&cluster->lock);
  g_array_append_vals (cluster->events, events->data, events->len);
  if (cluster->dispatch == NULL)
    {
      cluster->dispatch = g_idle_source_new ();
      g_source_set_priority (cluster->dispatch, G_PRIORITY_DEFAULT);
      g_source_set_callback (cluster->dispatch, dispatch_events, cluster, NULL);
      g_source_set_name (cluster->dispatch, "[tocsin-relay] cluster events");
      g_source_attach (cluster->dispatch, cluster->context);
    }
  g_mutex_unlock (&cluster->lock);
  /* The events' snapshots now belong to cluster->events. */
  g_array_set_size (events, 0);
}

/* Waits for @fd to be readable, or for the stop pipe; FALSE when stopping. */
static gboolean
wait_readable (TocsinRelayCluster *cluster,
               int                 fd,
               int                 timeout_ms,
               gboolean           *readable)
{
  struct pollfd fds[2] = {
    { cluster->stop_pipe[0], POLLIN, 0 },
    { fd, POLLIN, 0 },
  };
  int n;

  *readable = FALSE;
  do
    n = poll (fds, fd >= 0 ? 2 : 1, timeout_ms);
  while (n < 0 && errno == EINTR);
  if (n > 0 && fds[0].revents != 0)
    return FALSE;
  *readable = n > 0 && fd >= 0 && fds[1].revents != 0;
  return TRUE;
}

static gpointer
listen_main (gpointer data)
{
  TocsinRelayCluster *cluster = data;
  g_autoptr(GArray) events = g_array_new (FALSE, TRUE, sizeof (Event));
  TocsinRelayStorePg *pg = NULL;
  gboolean said_down = FALSE;

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      gboolean readable;

      if (pg == NULL)
        {
          Event sync = { EVENT_SYNC, 0, 0, NULL, NULL };

          pg = tocsin_relay_store_pg_open (cluster->conninfo, &error);
          if (pg != NULL && tocsin_relay_store_pg_listen (pg, &error))
            sync.last_ids = tocsin_relay_store_pg_last_ids (pg, &error);
          if (sync.last_ids == NULL)
            {
              if (!said_down)
                g_message ("Not hearing other nodes: %s", error->message);
              said_down = TRUE;
              g_clear_pointer (&pg, tocsin_relay_store_pg_free);
              if (!wait_readable (cluster, -1, RECONNECT_MS, &readable))
                break;
              continue;
            }
          if (said_down)
            g_message ("Hearing other nodes again");
          said_down = FALSE;
          g_mutex_lock (&cluster->lock);
          cluster->connects++;
          g_mutex_unlock (&cluster->lock);
          g_array_append_val (events, sync);
          post_events (cluster, events);
        }

      if (!wait_readable (cluster, tocsin_relay_store_pg_socket (pg), PING_MS, &readable))
        break;
      /* Nothing for a while: make sure the connection is still there (a notice lost with it
       * would otherwise go unnoticed until the next one). */
      if (!readable)
        {
          g_autofree char *value = tocsin_relay_store_pg_dup_meta (pg, "public_url", &error);

          if (error == NULL)
            readable = TRUE;   /* notices may have come with the answer */
        }
      if (error == NULL && readable
          && tocsin_relay_store_pg_take_notifications_full (pg, take_notice, take_ack, events,
                                                            &error))
        {
          post_events (cluster, events);
          continue;
        }
      /* Lost: what arrived before is handed over; the next connection's snapshot covers what
       * was sent meanwhile. */
      post_events (cluster, events);
      g_message ("Lost the connection that hears other nodes: %s",
                 error ? error->message : "?");
      g_clear_pointer (&pg, tocsin_relay_store_pg_free);
    }
  tocsin_relay_store_pg_free (pg);
  for (guint i = 0; i < events->len; i++)
    event_clear (&g_array_index (events, Event, i));
  return NULL;
}

/* ---- the main context ---- */

static Cursor *
cursor_get (TocsinRelayCluster *cluster,
            gint64              channel_id,
            gint64              newest)
{
  Cursor *c = g_hash_table_lookup (cluster->cursors, &channel_id);

  if (c == NULL)
    {
      c = g_new0 (Cursor, 1);
      /* Not seen before (a channel created since the snapshot, or heard of before it): with
       * subscribers here, read what is retained and let the hub drop what they have; without,
       * nothing before @newest concerns anyone here. */
      c->cursor = tocsin_relay_hub_count_subscribers (cluster->relay->hub, channel_id) > 0
                  ? 0 : newest;
      c->wanted = c->cursor;
      g_hash_table_insert (cluster->cursors, g_memdup2 (&channel_id, sizeof channel_id), c);
    }
  return c;
}

typedef struct
{
  TocsinRelayCluster *cluster;      /* valid while cancellable is not cancelled */
  GCancellable       *cancellable;
  gint64              channel_id;
  gint64              wanted;       /* known committed when the read started */
} Read;

static gboolean
retry_reads (gpointer user_data)
{
  TocsinRelayCluster *cluster = user_data;
  GHashTableIter iter;
  gpointer key, value;

  cluster->retry_id = 0;
  g_hash_table_iter_init (&iter, cluster->cursors);
  while (g_hash_table_iter_next (&iter, &key, &value))
    kick (cluster, *(gint64 *) key, value);
  return G_SOURCE_REMOVE;
}

static void
read_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Read *read = user_data;
  g_autoptr(TocsinRelayReplayPage) page = NULL;
  g_autoptr(GError) error = NULL;
  TocsinRelayCluster *cluster;
  Cursor *c;

  if (g_cancellable_is_cancelled (read->cancellable))
    goto out;
  cluster = read->cluster;
  page = tocsin_relay_store_replay_page_finish (cluster->relay->store, result, &error);
  c = g_hash_table_lookup (cluster->cursors, &read->channel_id);
  if (c == NULL)
    goto out;
  c->reading = FALSE;
  if (page == NULL)
    {
      if (g_error_matches (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND))
        g_hash_table_remove (cluster->cursors, &read->channel_id);
      else
        {
          g_message ("Could not read new messages of channel %" G_GINT64_FORMAT ": %s",
                     read->channel_id, error->message);
          if (cluster->retry_id == 0)
            cluster->retry_id = g_timeout_add (RECONNECT_MS, retry_reads, cluster);
        }
      goto out;
    }

  for (guint i = 0; i < page->ids->len; i++)
    {
      gint64 id = g_array_index (page->ids, gint64, i);

      if (id <= c->cursor)
        continue;
      c->cursor = id;
      tocsin_relay_hub_publish (cluster->relay->hub, read->channel_id, id,
                                page->messages->pdata[i]);
    }
  /* A short page holds everything committed when it was read; ids it lacks up to what was
   * known then are no longer retained. */
  if (page->ids->len < READ_PAGE)
    c->cursor = MAX (c->cursor, read->wanted);
  c->wanted = MAX (c->wanted, c->cursor);
  kick (cluster, read->channel_id, c);

out:
  g_object_unref (read->cancellable);
  g_free (read);
}

/* Brings @c up to c->wanted: a read when the channel has subscribers here, else a step. */
static void
kick (TocsinRelayCluster *cluster,
      gint64              channel_id,
      Cursor             *c)
{
  Read *read;

  if (c->reading || c->wanted <= c->cursor)
    return;
  if (tocsin_relay_hub_count_subscribers (cluster->relay->hub, channel_id) == 0)
    {
      c->cursor = c->wanted;
      return;
    }
  read = g_new0 (Read, 1);
  read->cluster = cluster;
  read->cancellable = g_object_ref (cluster->cancellable);
  read->channel_id = channel_id;
  read->wanted = c->wanted;
  c->reading = TRUE;
  tocsin_relay_store_replay_page_async (cluster->relay->store, channel_id, c->cursor, READ_PAGE,
                                        cluster->cancellable, read_done, read);
}

static void
heard (TocsinRelayCluster *cluster,
       gint64              channel_id,
       gint64              id)
{
  Cursor *c = cursor_get (cluster, channel_id, id);

  c->wanted = MAX (c->wanted, id);
  kick (cluster, channel_id, c);
}

static void
sync_cursors (TocsinRelayCluster *cluster,
              GHashTable         *last_ids)
{
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, last_ids);
  while (g_hash_table_iter_next (&iter, &key, &value))
    heard (cluster, *(gint64 *) key, *(gint64 *) value);
  /* Channels that are no longer there (or made since the snapshot: heard of again, if so). */
  g_hash_table_iter_init (&iter, cluster->cursors);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (!g_hash_table_contains (last_ids, key) && !((Cursor *) value)->reading)
      g_hash_table_iter_remove (&iter);
  /* Deletions and rotations while this node was not listening. */
  tocsin_relay_hub_revalidate (cluster->relay->hub);
}

static gboolean
dispatch_events (gpointer user_data)
{
  TocsinRelayCluster *cluster = user_data;
  g_autoptr(GArray) events = g_array_new (FALSE, TRUE, sizeof (Event));

  g_array_set_clear_func (events, (GDestroyNotify) event_clear);
  g_mutex_lock (&cluster->lock);
  g_array_append_vals (events, cluster->events->data, cluster->events->len);
  g_array_set_size (cluster->events, 0);
  g_clear_pointer (&cluster->dispatch, g_source_unref);
  g_mutex_unlock (&cluster->lock);

  for (guint i = 0; i < events->len; i++)
    {
      Event *event = &g_array_index (events, Event, i);

      switch (event->kind)
        {
        case EVENT_MESSAGES:
          heard (cluster, event->channel_id, event->id);
          break;
        case EVENT_DELETED:
          g_hash_table_remove (cluster->cursors, &event->channel_id);
          tocsin_relay_hub_close_channel (cluster->relay->hub, event->channel_id, "deleted");
          break;
        case EVENT_ROTATED:
          tocsin_relay_hub_revalidate (cluster->relay->hub);
          break;
        case EVENT_CHANGED:
          /* Lookups on PostgreSQL read the row each time: nothing is cached to refresh. */
          break;
        case EVENT_SYNC:
          sync_cursors (cluster, event->last_ids);
          break;
        case EVENT_ACKED:
          tocsin_relay_hub_tell_ack (cluster->relay->hub, event->channel_id, event->id,
                                     event->by);
          break;
        }
    }
  return G_SOURCE_REMOVE;
}

TocsinRelayCluster *
tocsin_relay_cluster_new (TocsinRelay *relay)
{
  TocsinRelayCluster *cluster;
  g_autoptr(GError) error = NULL;

  g_return_val_if_fail (relay != NULL && relay->store != NULL && relay->hub != NULL, NULL);
  g_return_val_if_fail (tocsin_relay_store_get_database (relay->store) != NULL, NULL);

  cluster = g_new0 (TocsinRelayCluster, 1);
  cluster->relay = relay;
  cluster->context = g_main_context_ref_thread_default ();
  cluster->cursors = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  cluster->cancellable = g_cancellable_new ();
  cluster->conninfo = g_strdup (tocsin_relay_store_get_database (relay->store));
  g_mutex_init (&cluster->lock);
  cluster->events = g_array_new (FALSE, TRUE, sizeof (Event));
  if (!g_unix_open_pipe (cluster->stop_pipe, FD_CLOEXEC, &error))
    g_error ("Could not make a pipe: %s", error->message);
  cluster->thread = g_thread_new ("tocsin-cluster", listen_main, cluster);
  return cluster;
}

void
tocsin_relay_cluster_free (TocsinRelayCluster *cluster)
{
  if (cluster == NULL)
    return;

  /* The thread stops at its next wait, at most one query away. */
  if (write (cluster->stop_pipe[1], "x", 1) != 1)
    g_warning ("Could not stop the listening thread: %s", g_strerror (errno));
  g_thread_join (cluster->thread);
  close (cluster->stop_pipe[0]);
  close (cluster->stop_pipe[1]);

  g_cancellable_cancel (cluster->cancellable);
  g_clear_object (&cluster->cancellable);
  g_clear_handle_id (&cluster->retry_id, g_source_remove);
  if (cluster->dispatch != NULL)
    {
      g_source_destroy (cluster->dispatch);
      g_source_unref (cluster->dispatch);
    }
  for (guint i = 0; i < cluster->events->len; i++)
    event_clear (&g_array_index (cluster->events, Event, i));
  g_array_unref (cluster->events);
  g_mutex_clear (&cluster->lock);
  g_hash_table_unref (cluster->cursors);
  g_main_context_unref (cluster->context);
  g_free (cluster->conninfo);
  g_free (cluster);
}

void
tocsin_relay_cluster_wake (TocsinRelayCluster *cluster,
                           gint64              channel_id,
                           gint64              id)
{
  g_return_if_fail (cluster != NULL);

  heard (cluster, channel_id, id);
}

guint
tocsin_relay_cluster_get_connects (TocsinRelayCluster *cluster)
{
  guint connects;

  g_return_val_if_fail (cluster != NULL, 0);

  g_mutex_lock (&cluster->lock);
  connects = cluster->connects;
  g_mutex_unlock (&cluster->lock);
  return connects;
}
