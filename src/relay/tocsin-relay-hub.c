/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-hub.c: live subscribers, fan-out and the subscriber streams.
 *
 * Every publish encodes each wire form of a message once (the bare object for /s/…/ws, the
 * {"type":"message"} wrapper for /v1/ws, an SSE event, an NDJSON line; for WebSockets the whole
 * frame, header included, see tocsin-relay-websocket.c) and hands the same GBytes to every
 * subscriber. WebSocket frames are queued and written by one flush per main-loop turn, so the
 * messages of a group commit reach each subscriber in one write. Nothing here blocks on a subscriber: each connection has an outgoing cap
 * (bytes and frames not yet written to its socket), and a connection past it is closed with 4008
 * (HTTP streams are ended) so that it reconnects with its cursor.
 *
 * Replay and live meet without loss or duplicates like this: a subscription is registered for
 * live messages first, in "catching up" state. Replay runs in pages, each read on the store's
 * reader thread (never on the main loop) and paced by how fast the subscriber drains its queue.
 * While catching up and no page is being read, live messages are ignored: they are already
 * committed, so the next page reads them. While a page is being read, live messages are kept
 * aside (up to the frame cap), because the read may have started before they were committed.
 * When a page comes back short, everything committed before the read is in it; the messages kept
 * aside cover everything published since the read began, so they are sent after the page and the
 * subscription goes live in that same main-loop turn. If too many piled up to keep, another page
 * is read instead. Throughout, any message with an id at or below the last one sent is dropped
 * (it was committed before a page was read and published after).
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <string.h>
#include <sys/socket.h>

#include <gio/gnetworking.h>

#include "tocsin-json.h"
#include "tocsin-protocol.h"
#include "tocsin-message.h"
#include "tocsin-token.h"
#include "tocsin-relay-acks.h"
#include "tocsin-relay-forwards.h"
#include "tocsin-relay-cluster.h"
#include "tocsin-relay-hub.h"
#include "tocsin-relay-poller.h"
#include "tocsin-relay-server.h"
#include "tocsin-relay-store.h"
#include "tocsin-relay-throttle.h"
#include "tocsin-relay-websocket.h"

#define KEEPALIVE_SECONDS        30
/* A WebSocket peer that sends nothing (not even a pong) for this long is gone. */
#define DEAD_PEER_SECONDS        90
#define MAX_CLIENT_FRAME         (64 * 1024)
#define MAX_APP_SUBSCRIPTIONS    1000
/* Frames an app socket sent while its last subscribe frame's token was being looked up, kept to
 * be handled in order after it: enough for an app subscribing to every channel it may have at
 * once; past it the socket is closed (1008). */
#define MAX_HELD_FRAMES          (MAX_APP_SUBSCRIPTIONS + 64)
/* Acknowledgements one /v1/ws connection may send in ACK_WINDOW_SECONDS; past them each is
 * answered "throttled" and told to nobody (each one told reaches every subscriber). */
#define MAX_ACKS_PER_WINDOW      30
#define ACK_WINDOW_SECONDS       60
#define REPLAY_PAGE              200
/* How often subscriptions are checked against the store, to catch a rotation or deletion that
 * another process (the command line) made. The owner API tells the hub at once. */
#define REVALIDATE_SECONDS       5
#define SINCE_LIVE               G_GINT64_CONSTANT (-2)
#define SINCE_ALL                G_GINT64_CONSTANT (-1)

#define CLOSE_GOING_AWAY         1001
#define CLOSE_POLICY             1008
#define CLOSE_INTERNAL           1011
#define CLOSE_TOO_SLOW           4008
#define CLOSE_GONE               4410

typedef enum
{
  KIND_WS,
  KIND_SSE,
  KIND_JSON,
  KIND_APP,
} ConnKind;

static const char * const kind_names[] = { "ws", "sse", "json", "app" };

typedef struct _Connection Connection;

typedef struct
{
  Connection *conn;          /* borrowed: the connection owns its subscriptions */
  gint64      channel_id;
  char       *token;         /* the subscribe token it was opened with */
  gint64      cursor;        /* last id sent; SINCE_ALL before the first one of a full replay */
  gboolean    catching_up;
  gboolean    replay_scheduled;
  guint64     serial;        /* tells a page read for this subscription from one for an earlier */
  gint64      opened_us;     /* monotonic time it was opened (and its token checked) */
  guint64     page_bytes;    /* bytes and messages replayed so far: their mean sizes pages */
  guint64     page_messages;
  gboolean    reading;       /* a replay page is being read on the store's reader thread */
  GPtrArray  *aside;         /* Frames* published while reading */
  gboolean    aside_overflow;
} Subscription;

struct _Connection
{
  gint                        ref_count;
  TocsinRelayHub             *hub;              /* borrowed */
  guint64                     id;
  ConnKind                    kind;
  char                       *peer;
  char                       *address;          /* the peer's IP alone: for the throttle */
  gint64                      connected_at_ms;

  /* WebSocket kinds */
  TocsinRelayWebsocket       *ws;
  gboolean                    dirty;            /* in the hub's flush list */
  guint                       subscribe_timeout_id;  /* /v1/ws: closes it if it never subscribes */
  gboolean                    ever_subscribed;

  /* HTTP stream kinds */
  SoupServerMessage          *msg;
  /* The socket, for the client leaving; its deadline is the next keepalive. On the poller
   * (tocsin-relay-poller.c): a GSource per stream would cost every main-loop turn. */
  TocsinRelayPollerWatch     *stream_watch;

  /* The outgoing queue: cumulative bytes handed over vs. written, and where each frame ends,
   * so that frames not yet written can be counted too. */
  guint64                     queued;
  guint64                     written;
  GQueue                      frame_ends;       /* of g_new'd guint64 end offsets */
  /* /v1/ws: a subscribe frame's token is being looked up (off the main loop); the frames that
   * came after it wait here (JsonObject), so that frames are handled in the order sent. */
  gboolean                    looking_up;
  GQueue                      held_frames;

  GHashTable                 *subs;             /* channel id → Subscription */
  gboolean                    closed;

  /* /v1/ws: acknowledgements sent in the current window */
  gint64                      ack_window_start_us;
  guint                       ack_count;
};

struct _TocsinRelayHub
{
  TocsinRelay *relay;        /* borrowed */
  GHashTable  *channels;     /* channel id → GPtrArray of Subscription (live and catching up) */
  GHashTable  *connections;  /* conn id → Connection */
  guint64      next_conn_id;
  guint64      next_serial;
  guint        revalidate_id;
  gboolean     revalidating;
  gboolean     revalidate_again;  /* tocsin_relay_hub_revalidate() while one was reading */
  gboolean     shutting_down;
  GCancellable *cancellable; /* cancelled when the hub goes: store reads still in flight */
  GQueue       later;        /* Frames* waiting for tocsin_relay_hub_publish_soon's idles */
  GPtrArray   *later_ids;    /* source ids of those idles, to remove them when the hub goes */
  GPtrArray   *dirty;        /* Connection refs with WebSocket frames queued, not yet written */
  guint        flush_id;
  guint        ping_id;      /* one keepalive timer for every WebSocket */
  guint        ping_tick;    /* which 1/KEEPALIVE_SECONDS of them it pings next */
  TocsinRelayAcks *acks;     /* who acknowledged which call (tocsin-relay-acks.h) */
  gboolean     write_through; /* publishing the last message of a group commit */
};

/* One message in its wire forms, each built once on first use. */
typedef struct
{
  gint64  channel_id;
  gint64  id;
  GBytes *object;
  GBytes *app;
  GBytes *sse;
  GBytes *ndjson;
  GBytes *ws_object;   /* WebSocket text frames of object and app */
  GBytes *ws_app;
} Frames;

static void subscription_catch_up (Subscription *sub);
static gboolean hub_revalidate    (gpointer user_data);
static void connection_close      (Connection *conn, gushort code, const char *reason);

/* ---- Frames ---- */

static GBytes *
bytes_concat (const char *prefix,
              GBytes     *middle,
              const char *suffix)
{
  gsize plen = strlen (prefix), slen = strlen (suffix), mlen = 0;
  const char *mdata = g_bytes_get_data (middle, &mlen);
  char *data = g_malloc (plen + mlen + slen);

  memcpy (data, prefix, plen);
  memcpy (data + plen, mdata, mlen);
  memcpy (data + plen + mlen, suffix, slen);
  return g_bytes_new_take (data, plen + mlen + slen);
}

static GBytes *
frames_get (Frames   *frames,
            ConnKind  kind)
{
  switch (kind)
    {
    case KIND_WS:
      return frames->object;
    case KIND_APP:
      if (frames->app == NULL)
        frames->app = tocsin_protocol_message_frame (frames->object);
      return frames->app;
    case KIND_SSE:
      if (frames->sse == NULL)
        {
          /* The encoded object has no raw newlines (JSON escapes them), so one data: line. */
          g_autofree char *prefix = g_strdup_printf ("id: %" G_GINT64_FORMAT "\nevent: message\ndata: ",
                                                     frames->id);

          frames->sse = bytes_concat (prefix, frames->object, "\n\n");
        }
      return frames->sse;
    case KIND_JSON:
      if (frames->ndjson == NULL)
        frames->ndjson = bytes_concat ("", frames->object, "\n");
      return frames->ndjson;
    default:
      g_assert_not_reached ();
    }
}

/* The WebSocket frame of frames_get (@frames, @kind). */
static GBytes *
frames_get_wire (Frames   *frames,
                 ConnKind  kind)
{
  GBytes **wire = kind == KIND_APP ? &frames->ws_app : &frames->ws_object;

  g_assert (kind == KIND_WS || kind == KIND_APP);
  if (*wire == NULL)
    {
      gsize len = 0;
      const void *data = g_bytes_get_data (frames_get (frames, kind), &len);

      *wire = tocsin_relay_websocket_frame_new (TOCSIN_RELAY_WEBSOCKET_TEXT, data, len);
    }
  return *wire;
}

static void
frames_clear (Frames *frames)
{
  g_clear_pointer (&frames->ws_object, g_bytes_unref);
  g_clear_pointer (&frames->ws_app, g_bytes_unref);
  g_clear_pointer (&frames->app, g_bytes_unref);
  g_clear_pointer (&frames->sse, g_bytes_unref);
  g_clear_pointer (&frames->ndjson, g_bytes_unref);
}

static GBytes *
gap_frame (ConnKind kind,
           gint64   channel_id,
           gint64   from,
           gint64   to)
{
  g_autofree char *json = tocsin_protocol_gap_json (channel_id, from, to);
  char *text;

  if (kind == KIND_SSE)
    text = g_strdup_printf ("event: gap\ndata: %s\n\n", json);
  else if (kind == KIND_JSON)
    text = g_strdup_printf ("%s\n", json);
  else
    text = g_steal_pointer (&json);
  return g_bytes_new_take (text, strlen (text));
}

/* ---- Connections ---- */

static Connection *
connection_ref (Connection *conn)
{
  g_atomic_int_inc (&conn->ref_count);
  return conn;
}

static void
subscription_free (gpointer data)
{
  Subscription *sub = data;

  g_clear_pointer (&sub->aside, g_ptr_array_unref);
  g_free (sub->token);
  g_free (sub);
}

static void
connection_unref (Connection *conn)
{
  if (!g_atomic_int_dec_and_test (&conn->ref_count))
    return;
  g_assert (conn->ws == NULL && conn->msg == NULL);
  g_hash_table_unref (conn->subs);
  g_queue_clear_full (&conn->frame_ends, g_free);
  g_queue_clear_full (&conn->held_frames, (GDestroyNotify) json_object_unref);
  g_free (conn->peer);
  g_free (conn->address);
  g_free (conn);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Connection, connection_unref)

static guint64
connection_pending_bytes (Connection *conn)
{
  guint64 pending = conn->queued > conn->written ? conn->queued - conn->written : 0;

  /* Pongs and pings count too: a peer that pings and never reads fills the queue like one that
   * never reads messages (tocsin-relay-websocket.c bounds them as well). */
  if (conn->ws)
    pending += tocsin_relay_websocket_get_control_pending (conn->ws);
  return pending;
}

/* Whether @wire more bytes fit in what a replay may fill of @conn's queue: half the cap, so
 * that live messages published meanwhile still fit. Something is always sent to an empty
 * queue. */
static gboolean
connection_replay_has_room (Connection *conn,
                            gsize       wire)
{
  const TocsinRelayConfig *config = &conn->hub->relay->config;
  guint64 pending = connection_pending_bytes (conn);

  return pending == 0 || pending + wire <= config->max_queue_bytes / 2;
}

static void
connection_schedule_catch_up (Connection *conn);

/* Bytes reached the socket: drop finished frames, resume paced replays. */
static void
connection_note_written (Connection *conn,
                         guint64     total)
{
  conn->written = total;
  while (!g_queue_is_empty (&conn->frame_ends) &&
         *(guint64 *) g_queue_peek_head (&conn->frame_ends) <= conn->written)
    g_free (g_queue_pop_head (&conn->frame_ends));
  connection_schedule_catch_up (conn);
}

static void
websocket_written (gpointer user_data,
                   guint64  total)
{
  connection_note_written (user_data, total);
}

static gboolean
connection_below_low_water (Connection *conn)
{
  const TocsinRelayConfig *config = &conn->hub->relay->config;

  /* A quarter: a replay fills up to half (connection_replay_has_room()), so that the next page
   * starts with room for at least a quarter of the cap. */
  return connection_pending_bytes (conn) < config->max_queue_bytes / 4 &&
         g_queue_get_length (&conn->frame_ends) < config->max_queue_frames / 2 + 1;
}

/* Writes what every connection has queued. */
static void
hub_flush_now (TocsinRelayHub *hub)
{
  g_autoptr(GPtrArray) dirty = g_steal_pointer (&hub->dirty);

  g_clear_handle_id (&hub->flush_id, g_source_remove);
  hub->dirty = g_ptr_array_new_with_free_func ((GDestroyNotify) connection_unref);
  for (guint i = 0; i < dirty->len; i++)
    {
      Connection *conn = g_ptr_array_index (dirty, i);

      conn->dirty = FALSE;
      if (conn->ws)
        tocsin_relay_websocket_flush (conn->ws);
    }
}

static gboolean
hub_flush (gpointer user_data)
{
  TocsinRelayHub *hub = user_data;

  hub->flush_id = 0;
  hub_flush_now (hub);
  return G_SOURCE_REMOVE;
}

/* Frames queued on @conn's WebSocket are written at the end of this main-loop turn's work. */
static void
connection_schedule_flush (Connection *conn)
{
  TocsinRelayHub *hub = conn->hub;

  if (conn->dirty)
    return;
  conn->dirty = TRUE;
  g_ptr_array_add (hub->dirty, connection_ref (conn));
  /* The default priority, after the idles already queued (replay pages, replies); publishing
   * flushes sooner, see hub_publish_later(). */
  if (hub->flush_id == 0)
    {
      hub->flush_id = g_idle_add_full (G_PRIORITY_DEFAULT, hub_flush, hub, NULL);
      g_source_set_name_by_id (hub->flush_id, "[tocsin-relay] flush");
    }
}

/* Queues @frame on @conn (@wire: its WebSocket frame, when the caller has it already built, for
 * every subscriber at once). FALSE when that would pass the connection's cap: the connection is
 * then closed with 4008 (or its stream ended) and the frame not sent. */
static gboolean
connection_send_wire (Connection *conn,
                      GBytes     *frame,
                      GBytes     *wire_frame)
{
  const TocsinRelayConfig *config = &conn->hub->relay->config;
  g_autoptr(GBytes) built = NULL;
  gsize wire = g_bytes_get_size (frame);
  guint64 *end;

  if (conn->closed)
    return FALSE;
  /* The peer may have started closing before "closed" reached us: the frame would be lost
   * anyway, and the subscriber resumes from its cursor. */
  if (conn->ws && !tocsin_relay_websocket_is_open (conn->ws))
    return FALSE;

  if (conn->ws)
    {
      if (wire_frame == NULL)
        {
          gsize len = 0;
          const void *data = g_bytes_get_data (frame, &len);

          wire_frame = built = tocsin_relay_websocket_frame_new (TOCSIN_RELAY_WEBSOCKET_TEXT,
                                                                 data, len);
        }
      wire = g_bytes_get_size (wire_frame);
    }
  if (connection_pending_bytes (conn) + wire > config->max_queue_bytes ||
      g_queue_get_length (&conn->frame_ends) + 1 > config->max_queue_frames)
    {
      g_message ("Subscriber %" G_GUINT64_FORMAT " (%s) fell too far behind; closing it",
                 conn->id, kind_names[conn->kind]);
      connection_close (conn, CLOSE_TOO_SLOW, "too slow: reconnect and resume from your cursor");
      return FALSE;
    }

  conn->queued += wire;
  end = g_new (guint64, 1);
  *end = conn->queued;
  g_queue_push_tail (&conn->frame_ends, end);

  if (conn->ws)
    {
      tocsin_relay_websocket_queue (conn->ws, wire_frame);
      connection_schedule_flush (conn);
    }
  else
    {
      /* The body refs @frame: every HTTP subscriber shares the same bytes. */
      soup_message_body_append_bytes (soup_server_message_get_response_body (conn->msg), frame);
      soup_server_message_unpause (conn->msg);
    }
  return TRUE;
}

static gboolean
connection_send (Connection *conn,
                 GBytes     *frame)
{
  return connection_send_wire (conn, frame, NULL);
}

/* Sends one message in @conn's wire form, built once for every subscriber. */
static gboolean
connection_send_frames (Connection *conn,
                        Frames     *frames)
{
  return connection_send_wire (conn, frames_get (frames, conn->kind),
                               conn->ws ? frames_get_wire (frames, conn->kind) : NULL);
}

static void
subscription_note_presence (Subscription *sub,
                            gboolean      connected)
{
  Connection *conn = sub->conn;

  tocsin_relay_store_note_subscriber (conn->hub->relay->store, sub->channel_id, conn->id,
                                      kind_names[conn->kind], conn->peer, connected);
}

static void
hub_unlink_subscription (TocsinRelayHub *hub,
                         Subscription   *sub)
{
  GPtrArray *subs = g_hash_table_lookup (hub->channels, &sub->channel_id);

  if (subs == NULL)
    return;
  g_ptr_array_remove_fast (subs, sub);
  if (subs->len == 0)
    g_hash_table_remove (hub->channels, &sub->channel_id);
}

static void
connection_remove_subscription (Connection *conn,
                                gint64      channel_id)
{
  Subscription *sub = g_hash_table_lookup (conn->subs, &channel_id);

  if (sub == NULL)
    return;
  hub_unlink_subscription (conn->hub, sub);
  subscription_note_presence (sub, FALSE);
  g_hash_table_remove (conn->subs, &channel_id);
}

static Subscription *
connection_add_subscription (Connection *conn,
                             gint64      channel_id,
                             const char *token,
                             gint64      since)
{
  TocsinRelayHub *hub = conn->hub;
  Subscription *sub = g_new0 (Subscription, 1);
  GPtrArray *subs;
  gint64 *key;

  connection_remove_subscription (conn, channel_id);

  sub->conn = conn;
  sub->channel_id = channel_id;
  sub->token = g_strdup (token);
  sub->cursor = since == SINCE_LIVE ? 0 : since;
  sub->catching_up = since != SINCE_LIVE;
  sub->serial = ++hub->next_serial;
  sub->opened_us = g_get_monotonic_time ();

  key = g_new (gint64, 1);
  *key = channel_id;
  g_hash_table_insert (conn->subs, key, sub);

  subs = g_hash_table_lookup (hub->channels, &channel_id);
  if (subs == NULL)
    {
      key = g_new (gint64, 1);
      *key = channel_id;
      subs = g_ptr_array_new ();
      g_hash_table_insert (hub->channels, key, subs);
    }
  g_ptr_array_add (subs, sub);
  subscription_note_presence (sub, TRUE);
  return sub;
}

/* Ends every subscription of @conn: no more messages, and it leaves the presence list. */
static void
connection_unlink_all (Connection *conn)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, conn->subs);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      hub_unlink_subscription (conn->hub, value);
      subscription_note_presence (value, FALSE);
      g_hash_table_iter_remove (&iter);
    }
}

/* Forgets @conn entirely: subscriptions, presence, the hub's table. Idempotent. */
static void
connection_forget (Connection *conn)
{
  conn->closed = TRUE;
  connection_unlink_all (conn);
  g_clear_pointer (&conn->stream_watch, tocsin_relay_poller_watch_free);
  g_clear_handle_id (&conn->subscribe_timeout_id, g_source_remove);
  g_hash_table_remove (conn->hub->connections, &conn->id);
}

static void
connection_close (Connection *conn,
                  gushort     code,
                  const char *reason)
{
  if (conn->closed)
    return;
  conn->closed = TRUE;
  /* At once, not when the peer has acknowledged the close: a closing subscriber gets nothing
   * more and no longer counts as connected. Callers must not touch its subscriptions after. */
  connection_unlink_all (conn);
  if (conn->ws)
    {
      /* What the socket takes now goes before the close; what it does not is dropped (the
       * subscriber resumes from its cursor). */
      tocsin_relay_websocket_flush (conn->ws);
      if (conn->ws)
        tocsin_relay_websocket_close (conn->ws, code, reason);
    }
  else if (conn->msg)
    {
      /* Ends the chunked body; "finished" then forgets the connection. */
      soup_message_body_complete (soup_server_message_get_response_body (conn->msg));
      soup_server_message_unpause (conn->msg);
    }
}

static Connection *
hub_add_connection (TocsinRelayHub *hub,
                    ConnKind        kind,
                    const char     *peer)
{
  Connection *conn = g_new0 (Connection, 1);
  guint64 *key = g_new (guint64, 1);

  conn->ref_count = 1;
  conn->hub = hub;
  conn->id = ++hub->next_conn_id;
  conn->kind = kind;
  conn->peer = g_strdup (peer);
  conn->connected_at_ms = g_get_real_time () / 1000;
  g_queue_init (&conn->frame_ends);
  conn->subs = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, subscription_free);
  *key = conn->id;
  /* The table holds the connection's first reference until it is forgotten. */
  g_hash_table_insert (hub->connections, key, conn);
  return conn;
}

/* ---- Replay ---- */

static void
frames_free (gpointer data)
{
  Frames *frames = data;

  frames_clear (frames);
  g_bytes_unref (frames->object);
  g_free (frames);
}

typedef struct
{
  Connection   *conn;         /* a reference */
  GCancellable *cancellable;  /* the hub's */
  gint64        channel_id;
  guint64       serial;
  guint         limit;
} PageRead;

static void
page_read_free (PageRead *read)
{
  connection_unref (read->conn);
  g_object_unref (read->cancellable);
  g_free (read);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PageRead, page_read_free)

/* Sends @frames to @sub unless it already has that id. FALSE when the connection closed. */
static gboolean
subscription_send_frames (Subscription *sub,
                          Frames       *frames)
{
  if (frames->id <= sub->cursor)
    return TRUE;
  if (!connection_send_frames (sub->conn, frames))
    return FALSE;
  sub->cursor = frames->id;
  return TRUE;
}

static void
page_read_done (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(PageRead) read = user_data;
  g_autoptr(TocsinRelayReplayPage) page = NULL;
  g_autoptr(GPtrArray) aside = NULL;
  g_autoptr(GError) error = NULL;
  Connection *conn = read->conn;
  Subscription *sub;
  gboolean more = FALSE;

  /* The hub is gone: touch nothing of it. */
  if (g_cancellable_is_cancelled (read->cancellable))
    return;
  sub = conn->closed ? NULL : g_hash_table_lookup (conn->subs, &read->channel_id);
  /* Unsubscribed or restarted while the page was read. */
  if (sub == NULL || sub->serial != read->serial)
    return;

  sub->reading = FALSE;
  aside = g_steal_pointer (&sub->aside);
  page = tocsin_relay_store_replay_page_finish (conn->hub->relay->store, result, &error);
  if (page == NULL)
    {
      g_message ("Replay for subscriber %" G_GUINT64_FORMAT " failed: %s", conn->id,
                 error->message);
      connection_close (conn, CLOSE_INTERNAL, "the relay could not read its store");
      return;
    }

  if (page->gap_from > 0 && page->gap_to >= page->gap_from && page->gap_to > sub->cursor)
    {
      g_autoptr(GBytes) gap = gap_frame (conn->kind, sub->channel_id,
                                         MAX (page->gap_from, sub->cursor + 1), page->gap_to);

      if (!connection_send (conn, gap))
        return;
      sub->cursor = page->gap_to;
    }

  for (guint i = 0; i < page->ids->len; i++)
    {
      Frames frames = { sub->channel_id, g_array_index (page->ids, gint64, i),
                        page->messages->pdata[i], NULL, NULL, NULL, NULL, NULL };
      gsize wire = g_bytes_get_size (page->messages->pdata[i]) + 64;
      gboolean sent;

      sub->page_bytes += g_bytes_get_size (page->messages->pdata[i]);
      sub->page_messages++;
      /* Paged by bytes as well as by messages: the rest of this page is read again once the
       * queue has drained below half the cap (connection_note_written()). */
      if (frames.id > sub->cursor && !connection_replay_has_room (conn, wire))
        {
          more = TRUE;
          break;
        }
      sent = subscription_send_frames (sub, &frames);
      frames_clear (&frames);
      if (!sent)
        return;
    }

  /* Stopped for room: connection_note_written() reads on as the queue drains (scheduling it
   * now would read the same page again and again while the socket takes nothing). */
  if (more)
    return;
  if (page->ids->len >= read->limit || sub->aside_overflow)
    {
      /* More to read (or too much was published meanwhile to keep): another page. */
      sub->aside_overflow = FALSE;
      connection_schedule_catch_up (conn);
      return;
    }

  /* Caught up: what was published while reading follows the page, then live. Kept aside
   * messages that do not fit are read from the store by another page instead. */
  for (guint i = 0; aside && i < aside->len; i++)
    {
      Frames *kept = g_ptr_array_index (aside, i);

      if (kept->id > sub->cursor &&
          !connection_replay_has_room (conn, g_bytes_get_size (kept->object) + 64))
        return;
      if (!subscription_send_frames (sub, kept))
        return;
    }
  sub->catching_up = FALSE;
}

/* Starts reading one page of replay for @sub; page_read_done() goes on. */
static void
subscription_catch_up (Subscription *sub)
{
  Connection *conn = sub->conn;
  const TocsinRelayConfig *config = &conn->hub->relay->config;
  PageRead *read;
  guint room;

  if (!sub->catching_up || sub->reading || conn->closed)
    return;

  /* Never ask for more than the queue can take, so that a long replay cannot trip the cap. */
  room = config->max_queue_frames - MIN (config->max_queue_frames,
                                         g_queue_get_length (&conn->frame_ends));

  read = g_new0 (PageRead, 1);
  read->conn = connection_ref (conn);
  read->cancellable = g_object_ref (conn->hub->cancellable);
  read->channel_id = sub->channel_id;
  read->serial = sub->serial;
  read->limit = MAX (1, MIN (REPLAY_PAGE, room / 2));
  /* Never ask for much more than half the byte cap takes either, at the mean size so far. */
  if (sub->page_messages > 0)
    {
      guint64 mean = MAX (1, sub->page_bytes / sub->page_messages);

      read->limit = MAX (1, MIN (read->limit, config->max_queue_bytes / 2 / mean + 1));
    }

  sub->reading = TRUE;
  sub->aside_overflow = FALSE;
  g_clear_pointer (&sub->aside, g_ptr_array_unref);
  sub->aside = g_ptr_array_new_with_free_func (frames_free);
  tocsin_relay_store_replay_page_async (conn->hub->relay->store, sub->channel_id, sub->cursor,
                                        read->limit, read->cancellable, page_read_done, read);
}

static gboolean
catch_up_idle (gpointer user_data)
{
  Connection *conn = user_data;
  GHashTableIter iter;
  gpointer value;
  g_autoptr(GPtrArray) pending = g_ptr_array_new ();

  g_hash_table_iter_init (&iter, conn->subs);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Subscription *sub = value;

      if (sub->replay_scheduled)
        {
          sub->replay_scheduled = FALSE;
          g_ptr_array_add (pending, sub);
        }
    }
  /* Sending can close the connection, which empties conn->subs: check before each page. */
  for (guint i = 0; i < pending->len && !conn->closed; i++)
    subscription_catch_up (g_ptr_array_index (pending, i));
  return G_SOURCE_REMOVE;
}

static void
connection_schedule_catch_up (Connection *conn)
{
  GHashTableIter iter;
  gpointer value;
  gboolean any = FALSE;

  if (conn->closed || !connection_below_low_water (conn))
    return;
  g_hash_table_iter_init (&iter, conn->subs);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Subscription *sub = value;

      if (sub->catching_up && !sub->replay_scheduled)
        {
          sub->replay_scheduled = TRUE;
          any = TRUE;
        }
    }
  /* From an idle, not from inside a write: libsoup may be in the middle of its queue. */
  if (any)
    g_idle_add_full (G_PRIORITY_DEFAULT_IDLE, catch_up_idle, connection_ref (conn),
                     (GDestroyNotify) connection_unref);
}

/* ---- Since ---- */

static gboolean
parse_since (const char *text,
             gint64     *since)
{
  guint64 value;
  char *end = NULL;

  if (text == NULL)
    {
      *since = SINCE_LIVE;
      return TRUE;
    }
  if (g_str_equal (text, "all"))
    {
      *since = SINCE_ALL;
      return TRUE;
    }
  if (!g_ascii_isdigit (*text))
    return FALSE;
  value = g_ascii_strtoull (text, &end, 10);
  if (*end != '\0' || value > G_MAXINT64 / 2)
    return FALSE;
  *since = (gint64) value;
  return TRUE;
}

static char *
query_since (SoupServerMessage *msg)
{
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  g_autoptr(GHashTable) form = NULL;

  if (query == NULL)
    return NULL;
  form = soup_form_decode (query);
  return g_strdup (g_hash_table_lookup (form, "since"));
}

/* ---- WebSocket plumbing ---- */

typedef struct
{
  TocsinRelayHub     *hub;
  TocsinRelayChannel *channel;   /* NULL for /v1/ws */
  gint64              since;
  char               *peer;
  char               *address;
} Upgrade;

static void
upgrade_free (gpointer  data,
              GClosure *closure)
{
  Upgrade *upgrade = data;

  g_clear_pointer (&upgrade->channel, tocsin_relay_channel_unref);
  g_free (upgrade->peer);
  g_free (upgrade->address);
  g_free (upgrade);
}

static void
websocket_closed (gpointer user_data)
{
  Connection *conn = user_data;

  g_clear_pointer (&conn->ws, tocsin_relay_websocket_unref);
  connection_forget (conn);
}


static void
app_send_error (Connection *conn,
                const char *token,
                const char *code,
                const char *sentence)
{
  g_autoptr(GBytes) frame = tocsin_protocol_error_frame (token, code, sentence);

  connection_send (conn, frame);
}

static gboolean
app_since_from_node (JsonNode *node,
                     gint64   *since)
{
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      *since = SINCE_LIVE;
      return TRUE;
    }
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    return g_strcmp0 (json_node_get_string (node), "all") == 0 &&
           (*since = SINCE_ALL, TRUE);
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64 &&
      json_node_get_int (node) >= 0)
    {
      *since = json_node_get_int (node);
      return TRUE;
    }
  return FALSE;
}

typedef struct
{
  Connection *conn;
  gint64      channel_id;
} AckTell;

static void
tell_ack (gint64      message_id,
          const char *by,
          gpointer    user_data)
{
  AckTell *tell = user_data;
  g_autoptr(GBytes) frame = tocsin_protocol_acknowledged_frame (tell->channel_id, message_id,
                                                                by);

  connection_send (tell->conn, frame);
}

/* Tells every /v1/ws subscriber of @channel_id on this node that @by acknowledged @message_id. */
static void
tell_ack_here (TocsinRelayHub *hub,
               gint64          channel_id,
               gint64          message_id,
               const char     *by)
{
  g_autoptr(GBytes) told = tocsin_protocol_acknowledged_frame (channel_id, message_id, by);
  g_autoptr(GPtrArray) snapshot = NULL;
  GPtrArray *subs = g_hash_table_lookup (hub->channels, &channel_id);

  if (subs == NULL)
    return;
  snapshot = g_ptr_array_new_full (subs->len, (GDestroyNotify) connection_unref);
  for (guint i = 0; i < subs->len; i++)
    {
      Subscription *other = g_ptr_array_index (subs, i);

      if (other->conn->kind == KIND_APP)
        g_ptr_array_add (snapshot, connection_ref (other->conn));
    }
  for (guint i = 0; i < snapshot->len; i++)
    {
      Connection *other = g_ptr_array_index (snapshot, i);

      if (!other->closed)
        connection_send (other, told);
    }
}

typedef struct
{
  gint64  channel_id;
  gint64  message_id;
  char   *by;
} Announce;

static gboolean
announce_on_store (TocsinRelayStore  *store,
                   gpointer           data,
                   GError           **error)
{
  Announce *announce = data;

  return tocsin_relay_store_announce_ack (store, announce->channel_id, announce->message_id,
                                          announce->by, error);
}

static void
announce_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Announce *announce = user_data;
  g_autoptr(GError) error = NULL;

  if (!tocsin_relay_store_call_finish (NULL, result, &error) && error != NULL)
    g_message ("Could not tell other nodes of an acknowledgement: %s", error->message);
  g_free (announce->by);
  g_free (announce);
}

/* On the store's writer thread: the NOTIFY goes out from there, never from the main loop. */
static void
announce_ack (TocsinRelayHub *hub,
              gint64          channel_id,
              gint64          message_id,
              const char     *by)
{
  Announce *announce = g_new0 (Announce, 1);

  announce->channel_id = channel_id;
  announce->message_id = message_id;
  announce->by = g_strdup (by);
  tocsin_relay_store_call_async (hub->relay->store, TRUE, announce_on_store, announce,
                                 announce_done, announce);
}

/* {"type":"ack","channel":…,"id":…,"by":…}: the subscriber answered a call. Told to every
 * /v1/ws subscriber of the channel, the sender too, once per message (the first one wins). */
static void
app_ack (Connection *conn,
         JsonObject *frame)
{
  TocsinRelayHub *hub = conn->hub;
  gint64 now = g_get_monotonic_time ();
  gint64 channel_id = tocsin_json_get_int (frame, "channel", 0);
  gint64 message_id = tocsin_json_get_int (frame, "id", 0);
  const char *by = tocsin_json_get_string (frame, "by", "");
  const char *first_by = NULL;
  Subscription *sub = g_hash_table_lookup (conn->subs, &channel_id);
  g_autoptr(GBytes) told = NULL;

  if (now - conn->ack_window_start_us > ACK_WINDOW_SECONDS * G_USEC_PER_SEC)
    {
      conn->ack_window_start_us = now;
      conn->ack_count = 0;
    }
  if (++conn->ack_count > MAX_ACKS_PER_WINDOW)
    {
      app_send_error (conn, NULL, "throttled",
                      _("Too many acknowledgements from this connection; wait a minute."));
      return;
    }
  if (sub == NULL || message_id <= 0)
    {
      app_send_error (conn, NULL, "bad-request",
                      _("An ack frame needs the id of a message you received in \"id\", on a "
                        "channel you subscribed to on this connection in \"channel\"."));
      return;
    }
  if (message_id > sub->cursor)
    {
      app_send_error (conn, sub->token, "bad-request",
                      _("You can acknowledge only a message the relay has sent you."));
      return;
    }
  if (by == NULL)
    by = "";
  if (g_utf8_strlen (by, -1) > TOCSIN_PROTOCOL_MAX_ACK_NAME)
    {
      app_send_error (conn, sub->token, "bad-request",
                      _("The name in \"by\" is longer than 64 characters."));
      return;
    }
  for (const char *p = by; *p; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      {
        app_send_error (conn, sub->token, "bad-request",
                        _("The name in \"by\" holds control characters."));
        return;
      }

  if (!tocsin_relay_acks_add (hub->acks, channel_id, message_id, by, &first_by))
    {
      /* Someone answered first: tell only this one who. */
      told = tocsin_protocol_acknowledged_frame (channel_id, message_id, first_by);
      connection_send (conn, told);
      return;
    }
  /* A new acknowledgement is an event: the channel's acknowledge forwards fire (issue 15). */
  if (hub->relay->forwards != NULL)
    tocsin_relay_forwards_acknowledge (hub->relay->forwards, channel_id, message_id, by);
  /* Other nodes tell their subscribers too (tocsin-relay-cluster.c). */
  if (hub->relay->cluster != NULL)
    announce_ack (hub, channel_id, message_id, by);
  tell_ack_here (hub, channel_id, message_id, by);
}

void
tocsin_relay_hub_tell_ack (TocsinRelayHub *hub,
                           gint64          channel_id,
                           gint64          message_id,
                           const char     *by)
{
  g_return_if_fail (hub != NULL && by != NULL);

  /* This node's own (or an answer that lost the race here): told already. */
  if (!tocsin_relay_acks_add (hub->acks, channel_id, message_id, by, NULL))
    return;
  tell_ack_here (hub, channel_id, message_id, by);
}

/* A subscribe frame's token, looked up on the store's reader thread
 * (tocsin_relay_store_find_channel_async()); the token is kept for the answer's frames. */
typedef struct
{
  Connection         *conn;      /* a reference */
  char               *token;
  gint64              since;
} SubscribeLookup;

static void
subscribe_lookup_free (SubscribeLookup *lookup)
{
  connection_unref (lookup->conn);
  if (lookup->token)
    explicit_bzero (lookup->token, strlen (lookup->token));
  g_free (lookup->token);
  g_free (lookup);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SubscribeLookup, subscribe_lookup_free)

static void app_subscribe_found (Connection *conn, const char *token, gint64 since,
                                 TocsinRelayChannel *channel);
static void app_dispatch        (Connection *conn, JsonObject *frame);

static void
subscribe_lookup_done (GObject      *source,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  g_autoptr(SubscribeLookup) lookup = user_data;
  Connection *conn = lookup->conn;
  JsonObject *frame;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(GError) error = NULL;

  /* A database failure (PostgreSQL down) is an error, not an unknown token. */
  channel = tocsin_relay_store_find_channel_finish (conn->hub->relay->store, result, &error);
  conn->looking_up = FALSE;
  if (conn->closed)
    return;
  if (error != NULL)
    {
      /* Not "refused": the app reconnects with its back-off and subscribes again. */
      g_message ("Could not look a subscribe token up: %s", error->message);
      connection_close (conn, CLOSE_INTERNAL, "the relay could not read its store");
      return;
    }
  app_subscribe_found (conn, lookup->token, lookup->since, channel);
  /* The frames sent after it, in order, until one looks a token up again. */
  while (!conn->looking_up && !conn->closed &&
         (frame = g_queue_pop_head (&conn->held_frames)) != NULL)
    {
      app_dispatch (conn, frame);
      json_object_unref (frame);
    }
}

static void
app_subscribe (Connection *conn,
               JsonObject *frame)
{
  TocsinRelayHub *hub = conn->hub;
  const char *token = NULL;
  SubscribeLookup *lookup;
  gint64 since;

  if (json_object_has_member (frame, "token") &&
      JSON_NODE_HOLDS_VALUE (json_object_get_member (frame, "token")) &&
      json_node_get_value_type (json_object_get_member (frame, "token")) == G_TYPE_STRING)
    token = json_object_get_string_member (frame, "token");
  if (token == NULL)
    {
      app_send_error (conn, NULL, "bad-request",
                      _("A subscribe frame needs the channel’s subscribe token in \"token\"."));
      return;
    }
  if (!app_since_from_node (json_object_get_member (frame, "since"), &since))
    {
      app_send_error (conn, token, "bad-request",
                      _("\"since\" must be the last message id you have, null, or \"all\"."));
      return;
    }
  /* Token guessing over /v1/ws counts with the HTTP token URLs (tocsin-relay-throttle.h). */
  if (hub->relay->unknown_tokens != NULL &&
      tocsin_relay_throttle_retry_after (hub->relay->unknown_tokens, conn->address) > 0)
    {
      app_send_error (conn, token, "throttled",
                      _("Too many unknown tokens came from your address; try again in a "
                        "minute."));
      return;
    }
  lookup = g_new0 (SubscribeLookup, 1);
  lookup->conn = connection_ref (conn);
  lookup->token = g_strdup (token);
  lookup->since = since;
  conn->looking_up = TRUE;
  tocsin_relay_store_find_channel_async (hub->relay->store, TOCSIN_RELAY_TOKEN_SUBSCRIBE, token,
                                         subscribe_lookup_done, lookup);
}

/* The rest of a subscribe frame, once its token has been looked up (@channel: NULL if
 * unknown). */
static void
app_subscribe_found (Connection         *conn,
                     const char         *token,
                     gint64              since,
                     TocsinRelayChannel *channel)
{
  TocsinRelayHub *hub = conn->hub;
  g_autoptr(GBytes) reply = NULL;
  Subscription *sub;

  if (channel == NULL)
    {
      if (hub->relay->unknown_tokens != NULL)
        tocsin_relay_throttle_note_miss (hub->relay->unknown_tokens, conn->address);
      app_send_error (conn, token, "unknown-token",
                      _("No channel has this subscribe token; it may have been rotated or the "
                        "channel deleted. Ask its owner for the new subscribe link."));
      return;
    }
  if (!g_hash_table_contains (conn->subs, &channel->id) &&
      g_hash_table_size (conn->subs) >= MAX_APP_SUBSCRIPTIONS)
    {
      app_send_error (conn, token, "too-many",
                      _("This connection has too many channels; open another one."));
      return;
    }

  reply = tocsin_protocol_subscribed_frame (token, channel->id, channel->name,
                                            channel->description, channel->last_id);
  connection_send (conn, reply);
  if (conn->closed)
    return;

  /* Registered before its replay starts: what is published from now on is either read by a
   * replay page or kept aside for it. */
  conn->ever_subscribed = TRUE;
  g_clear_handle_id (&conn->subscribe_timeout_id, g_source_remove);
  /* Live means after the last_id the subscribed frame names: a message published while the
   * token was looked up comes by the replay. */
  if (since == SINCE_LIVE)
    since = channel->last_id;
  sub = connection_add_subscription (conn, channel->id, token, since);
  /* Calls answered while it was away: it may be about to ring for them. */
  {
    AckTell tell = { conn, channel->id };

    tocsin_relay_acks_foreach (hub->acks, channel->id, tell_ack, &tell);
  }
  if (conn->closed)
    return;
  subscription_catch_up (sub);
}

static void
app_unsubscribe (Connection *conn,
                 JsonObject *frame)
{
  const char *token = NULL;
  GHashTableIter iter;
  gpointer value;
  gint64 channel_id = 0;
  gboolean found = FALSE;

  if (json_object_has_member (frame, "token") &&
      JSON_NODE_HOLDS_VALUE (json_object_get_member (frame, "token")) &&
      json_node_get_value_type (json_object_get_member (frame, "token")) == G_TYPE_STRING)
    token = json_object_get_string_member (frame, "token");
  if (token == NULL)
    {
      app_send_error (conn, NULL, "bad-request",
                      _("An unsubscribe frame needs the subscribe token in \"token\"."));
      return;
    }
  g_hash_table_iter_init (&iter, conn->subs);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Subscription *sub = value;

      if (sub->token && g_str_equal (sub->token, token))
        {
          channel_id = sub->channel_id;
          found = TRUE;
          break;
        }
    }
  if (found)
    connection_remove_subscription (conn, channel_id);
}

static void
app_message (gpointer      user_data,
             gboolean      text,
             const guint8 *bytes,
             gsize         len)
{
  Connection *conn = user_data;
  g_autoptr(JsonObject) frame = NULL;

  if (conn->closed)
    return;
  /* The guarded parser: a frame of 100,000 `[` would overflow json-glib's recursion. */
  if (text)
    frame = tocsin_json_parse_object ((const char *) bytes, len, len,
                                      TOCSIN_JSON_DEFAULT_MAX_DEPTH, NULL);
  if (frame == NULL)
    {
      connection_close (conn, CLOSE_POLICY, "frames must be JSON objects in text frames");
      return;
    }
  if (conn->looking_up)
    {
      if (g_queue_get_length (&conn->held_frames) >= MAX_HELD_FRAMES)
        connection_close (conn, CLOSE_POLICY, "too many frames at once");
      else
        g_queue_push_tail (&conn->held_frames, g_steal_pointer (&frame));
      return;
    }
  app_dispatch (conn, frame);
}

static void
app_dispatch (Connection *conn,
              JsonObject *frame)
{
  const char *frame_type = NULL;

  if (json_object_has_member (frame, "type") &&
      JSON_NODE_HOLDS_VALUE (json_object_get_member (frame, "type")) &&
      json_node_get_value_type (json_object_get_member (frame, "type")) == G_TYPE_STRING)
    frame_type = json_object_get_string_member (frame, "type");

  if (g_strcmp0 (frame_type, "subscribe") == 0)
    app_subscribe (conn, frame);
  else if (g_strcmp0 (frame_type, "unsubscribe") == 0)
    app_unsubscribe (conn, frame);
  else if (g_strcmp0 (frame_type, "ack") == 0)
    app_ack (conn, frame);
  else
    connection_close (conn, CLOSE_POLICY, "unknown frame type");
}

static void
channel_ws_message (gpointer      user_data,
                    gboolean      text,
                    const guint8 *bytes,
                    gsize         len)
{
  /* /s/…/ws is one way; whatever the client sends is ignored. */
}

static const TocsinRelayWebsocketFuncs channel_ws_funcs = {
  channel_ws_message, websocket_written, websocket_closed,
};

static const TocsinRelayWebsocketFuncs app_ws_funcs = {
  app_message, websocket_written, websocket_closed,
};

/* The most a subscriber's socket keeps in the kernel, not yet sent (SO_SNDBUF; Linux doubles it
 * for its bookkeeping). Left to autotuning, a peer that never reads pins up to 4 MiB there
 * (net.ipv4.tcp_wmem), beyond max-queue-bytes; capped, max-queue-bytes is the real bound
 * (docs/configuration.md). */
static void
hub_cap_send_buffer (TocsinRelayHub *hub,
                     GSocket        *socket)
{
  gsize cap = CLAMP (hub->relay->config.max_queue_bytes / 8, 16 * 1024, 128 * 1024);

  if (socket != NULL && !g_socket_is_closed (socket))
    g_socket_set_option (socket, SOL_SOCKET, SO_SNDBUF, (gint) cap, NULL);
}

/* A /v1/ws that has subscribed to nothing by now is closed: an idle socket costs a descriptor
 * and a slot of max-connections for nothing. */
static gboolean
app_subscribe_timed_out (gpointer user_data)
{
  Connection *conn = user_data;

  conn->subscribe_timeout_id = 0;
  if (!conn->ever_subscribed)
    connection_close (conn, CLOSE_POLICY, "subscribe to a channel within a few seconds");
  return G_SOURCE_REMOVE;
}

static void
websocket_upgraded (SoupServerMessage *msg,
                    gpointer           user_data)
{
  Upgrade *upgrade = user_data;
  TocsinRelayHub *hub = upgrade->hub;
  g_autoptr(GIOStream) stolen = NULL;
  Connection *conn;
  GSocket *socket;

  socket = tocsin_relay_server_get_socket (msg);
  if (socket)
    {
      /* Keepalive pings every 30 s; a peer silent for 90 s (no pong either) times out. */
      g_socket_set_timeout (socket, MAX (DEAD_PEER_SECONDS,
                                         hub->relay->config.idle_timeout));
      hub_cap_send_buffer (hub, socket);
    }

  stolen = soup_server_message_steal_connection (msg);
  if (socket == NULL || stolen == NULL)
    {
      /* Not a connection the relay accepted (it always is), or libsoup kept it. */
      if (stolen)
        g_io_stream_close (stolen, NULL, NULL);
      return;
    }
  conn = hub_add_connection (hub, upgrade->channel ? KIND_WS : KIND_APP, upgrade->peer);
  conn->address = g_strdup (upgrade->address);
  /* No extensions were negotiated: permessage-deflate would cost CPU and memory per subscriber
   * per frame. Pings come from the hub's one keepalive timer (hub_ping). */
  conn->ws = tocsin_relay_websocket_new (stolen, socket, MAX_CLIENT_FRAME,
                                         conn->kind == KIND_APP ? &app_ws_funcs : &channel_ws_funcs,
                                         conn);
  if (socket != NULL && !G_IS_TLS_CONNECTION (stolen))
    tocsin_relay_websocket_set_socket (conn->ws, socket);

  if (hub->shutting_down)
    {
      connection_close (conn, CLOSE_GOING_AWAY, "relay shutting down");
      return;
    }
  if (conn->kind == KIND_APP && hub->relay->config.subscribe_timeout > 0)
    conn->subscribe_timeout_id = g_timeout_add_seconds (hub->relay->config.subscribe_timeout,
                                                        app_subscribe_timed_out, conn);
  if (upgrade->channel)
    {
      Subscription *sub = connection_add_subscription (conn, upgrade->channel->id,
                                                       upgrade->channel->subscribe_token,
                                                       upgrade->since);

      subscription_catch_up (sub);
    }
}

static gboolean
begin_websocket (TocsinRelayHub     *hub,
                 SoupServerMessage  *msg,
                 TocsinRelayChannel *channel,
                 gint64              since)
{
  g_autoptr(GError) error = NULL;
  Upgrade *upgrade;

  if (!soup_websocket_server_check_handshake (msg, NULL, NULL, NULL, &error))
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_BAD_REQUEST,
                                       _("This URL speaks WebSocket; connect with a WebSocket "
                                         "client (ws:// or wss://)."));
      return FALSE;
    }
  if (!soup_websocket_server_process_handshake (msg, NULL, NULL, NULL, NULL))
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_BAD_REQUEST,
                                       _("The WebSocket handshake was not valid."));
      return FALSE;
    }
  upgrade = g_new0 (Upgrade, 1);
  upgrade->hub = hub;
  upgrade->channel = channel ? tocsin_relay_channel_ref (channel) : NULL;
  upgrade->since = since;
  upgrade->peer = tocsin_relay_server_peer_string (msg);
  upgrade->address = tocsin_relay_server_client_address (hub->relay, msg);
  g_signal_connect_data (msg, "wrote-informational", G_CALLBACK (websocket_upgraded), upgrade,
                         upgrade_free, 0);
  return TRUE;
}

/* ---- HTTP streams (SSE, NDJSON) ---- */

static void
stream_finished (SoupServerMessage *msg,
                 gpointer           user_data)
{
  Connection *conn = user_data;

  g_signal_handlers_disconnect_by_data (msg, conn);
  g_clear_pointer (&conn->stream_watch, tocsin_relay_poller_watch_free);
  g_clear_object (&conn->msg);
  connection_forget (conn);
}

static void
stream_wrote_body_data (SoupServerMessage *msg,
                        guint              chunk_size,
                        gpointer           user_data)
{
  Connection *conn = user_data;

  connection_note_written (conn, conn->written + chunk_size);
}

static void
stream_keepalive (Connection *conn)
{
  static GBytes *sse_comment, *blank_line;

  if (sse_comment == NULL)
    {
      sse_comment = g_bytes_new_static (": keepalive\n\n", strlen (": keepalive\n\n"));
      blank_line = g_bytes_new_static ("\n", 1);
    }
  /* Also how a vanished client is noticed: libsoup only sees the socket fail on a write. */
  tocsin_relay_poller_watch_set_deadline (conn->stream_watch, g_get_monotonic_time () +
                                                              KEEPALIVE_SECONDS * G_USEC_PER_SEC);
  connection_send (conn, conn->kind == KIND_SSE ? sse_comment : blank_line);
}

/* The client of an SSE or NDJSON stream sends nothing after its request, so the socket turning
 * readable means it hung up (end of file or a reset): end the stream at once, instead of at the
 * next write, which may be a keepalive 30 s away. The descriptor itself, not a GSocket source: a
 * GSocket source would also fire on the socket's idle timeout, which an SSE stream outlives by
 * design. The same watch's deadline is the keepalive (@condition 0). */
static void
stream_event (int          fd,
              GIOCondition condition,
              gpointer     user_data)
{
  Connection *conn = user_data;
  char byte;
  gssize n;

  if (condition == 0)
    {
      stream_keepalive (conn);
      return;
    }
  if (!(condition & (G_IO_HUP | G_IO_ERR | G_IO_NVAL)))
    {
      n = recv (fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
      if (n > 0)
        {
          /* The client sent more (a pipelined request): leave it to libsoup, which reads it
           * after this response, and rely on the keepalive writes to notice a hang-up. */
          tocsin_relay_poller_watch_set_events (conn->stream_watch, 0);
          return;
        }
    }

  g_debug ("Subscriber %" G_GUINT64_FORMAT " (%s) hung up", conn->id, kind_names[conn->kind]);
  tocsin_relay_poller_watch_set_events (conn->stream_watch, 0);
  connection_close (conn, CLOSE_GOING_AWAY, NULL);
}

static void
begin_http_stream (TocsinRelayHub     *hub,
                   SoupServerMessage  *msg,
                   TocsinRelayChannel *channel,
                   ConnKind            kind,
                   gint64              since)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  g_autofree char *peer = tocsin_relay_server_peer_string (msg);
  Connection *conn;
  Subscription *sub;

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
  soup_message_headers_replace (headers, "Content-Type",
                                kind == KIND_SSE ? "text/event-stream; charset=utf-8"
                                                 : "application/x-ndjson; charset=utf-8");
  soup_message_headers_replace (headers, "Cache-Control", "no-store");
  /* Proxies such as nginx would otherwise hold the stream back. */
  soup_message_headers_replace (headers, "X-Accel-Buffering", "no");
  soup_message_body_set_accumulate (soup_server_message_get_response_body (msg), FALSE);

  conn = hub_add_connection (hub, kind, peer);
  conn->msg = g_object_ref (msg);
  g_signal_connect (msg, "finished", G_CALLBACK (stream_finished), conn);
  g_signal_connect (msg, "wrote-body-data", G_CALLBACK (stream_wrote_body_data), conn);
  {
    GSocket *socket = tocsin_relay_server_get_socket (msg);

    /* The watch lives no longer than the message ("finished" removes it), and libsoup closes
     * the socket only after the message has finished, so the fd stays ours while watched. */
    if (socket != NULL && !g_socket_is_closed (socket))
      conn->stream_watch = tocsin_relay_poller_watch_new (g_socket_get_fd (socket),
                                                          G_IO_IN | G_IO_HUP, G_PRIORITY_DEFAULT,
                                                          stream_event, conn);
    else
      conn->stream_watch = tocsin_relay_poller_watch_new (-1, 0, G_PRIORITY_DEFAULT,
                                                          stream_event, conn);
    tocsin_relay_poller_watch_set_deadline (conn->stream_watch, g_get_monotonic_time () +
                                                                KEEPALIVE_SECONDS *
                                                                G_USEC_PER_SEC);
    hub_cap_send_buffer (hub, socket);
  }

  if (kind == KIND_SSE)
    {
      static const char retry[] = "retry: 3000\n\n";
      g_autoptr(GBytes) frame = g_bytes_new_static (retry, strlen (retry));

      connection_send (conn, frame);
    }

  if (hub->shutting_down)
    {
      connection_close (conn, CLOSE_GOING_AWAY, NULL);
      return;
    }
  sub = connection_add_subscription (conn, channel->id, channel->subscribe_token, since);
  subscription_catch_up (sub);
}

/* ---- Public ---- */

/* Pings every WebSocket once per KEEPALIVE_SECONDS, so that a live peer always answers
 * something: a peer silent for DEAD_PEER_SECONDS trips its socket's timeout
 * (websocket_upgraded). One timer for all of them (a timer per connection would be one more
 * source per connection), ticking every second and pinging the 1/KEEPALIVE_SECONDS of the
 * connections whose id falls on this tick: pinging 10,000 in one turn was 10,000 writev()s, and
 * 10,000 pongs read right after, in front of whatever webhook arrived then (tens of ms of wrk's
 * max latency, docs/performance.md). */
static gboolean
hub_ping (gpointer user_data)
{
  TocsinRelayHub *hub = user_data;
  g_autoptr(GBytes) ping = tocsin_relay_websocket_frame_new (TOCSIN_RELAY_WEBSOCKET_PING, NULL, 0);
  guint tick = hub->ping_tick++ % KEEPALIVE_SECONDS;
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, hub->connections);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Connection *conn = value;

      if (conn->id % KEEPALIVE_SECONDS != tick)
        continue;
      if (conn->ws && !conn->closed && tocsin_relay_websocket_is_open (conn->ws))
        {
          tocsin_relay_websocket_queue_ping (conn->ws, ping);
          connection_schedule_flush (conn);
        }
    }
  return G_SOURCE_CONTINUE;
}

TocsinRelayHub *
tocsin_relay_hub_new (TocsinRelay *relay)
{
  TocsinRelayHub *hub = g_new0 (TocsinRelayHub, 1);

  hub->relay = relay;
  hub->channels = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                         (GDestroyNotify) g_ptr_array_unref);
  hub->connections = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                            (GDestroyNotify) connection_unref);
  hub->cancellable = g_cancellable_new ();
  g_queue_init (&hub->later);
  hub->later_ids = g_ptr_array_new ();
  hub->dirty = g_ptr_array_new_with_free_func ((GDestroyNotify) connection_unref);
  hub->ping_id = g_timeout_add_seconds (1, hub_ping, hub);
  hub->acks = tocsin_relay_acks_new ();
  hub->revalidate_id = g_timeout_add_seconds (REVALIDATE_SECONDS, hub_revalidate, hub);
  return hub;
}

void
tocsin_relay_hub_free (TocsinRelayHub *hub)
{
  GHashTableIter iter;
  gpointer value;
  g_autoptr(GPtrArray) conns = g_ptr_array_new_with_free_func ((GDestroyNotify) connection_unref);

  if (hub == NULL)
    return;

  g_clear_handle_id (&hub->revalidate_id, g_source_remove);
  for (guint i = 0; i < hub->later_ids->len; i++)
    g_source_remove (GPOINTER_TO_UINT (g_ptr_array_index (hub->later_ids, i)));
  g_ptr_array_unref (hub->later_ids);
  g_queue_clear_full (&hub->later, (GDestroyNotify) frames_free);
  g_clear_handle_id (&hub->flush_id, g_source_remove);
  g_clear_handle_id (&hub->ping_id, g_source_remove);
  g_clear_pointer (&hub->dirty, g_ptr_array_unref);
  /* Reads still in flight on the store's thread finish without touching the hub. */
  g_cancellable_cancel (hub->cancellable);
  g_clear_object (&hub->cancellable);
  g_hash_table_iter_init (&iter, hub->connections);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (conns, connection_ref (value));
  for (guint i = 0; i < conns->len; i++)
    {
      Connection *conn = g_ptr_array_index (conns, i);

      if (conn->ws)
        {
          tocsin_relay_websocket_abort (conn->ws);
          g_clear_pointer (&conn->ws, tocsin_relay_websocket_unref);
        }
      if (conn->msg)
        {
          g_signal_handlers_disconnect_by_data (conn->msg, conn);
          g_clear_object (&conn->msg);
        }
      connection_forget (conn);
    }
  g_hash_table_unref (hub->connections);
  g_hash_table_unref (hub->channels);
  tocsin_relay_acks_free (hub->acks);
  g_free (hub);
}

void
tocsin_relay_hub_publish (TocsinRelayHub *hub,
                          gint64          channel_id,
                          gint64          id,
                          GBytes         *message)
{
  GPtrArray *subs;
  Frames frames = { channel_id, id, message, NULL, NULL, NULL, NULL, NULL };
  g_autoptr(GPtrArray) snapshot = NULL;

  g_return_if_fail (hub != NULL);
  g_return_if_fail (message != NULL);

  subs = g_hash_table_lookup (hub->channels, &channel_id);
  if (subs == NULL)
    return;

  /* Sending can close a connection (its cap) and so unlink subscriptions: walk a snapshot of
   * the connections, holding a reference to each, and look each subscription up again. */
  snapshot = g_ptr_array_new_full (subs->len, (GDestroyNotify) connection_unref);
  for (guint i = 0; i < subs->len; i++)
    g_ptr_array_add (snapshot, connection_ref (((Subscription *) g_ptr_array_index (subs, i))->conn));

  for (guint i = 0; i < snapshot->len; i++)
    {
      Connection *conn = g_ptr_array_index (snapshot, i);
      Subscription *sub;

      if (conn->closed)
        continue;
      sub = g_hash_table_lookup (conn->subs, &channel_id);
      if (sub == NULL || id <= sub->cursor)
        continue;
      if (sub->catching_up)
        {
          /* Not reading: the next page reads this message from the store. Reading: the page
           * may have been read before this message was committed; keep it aside (see top). */
          if (!sub->reading || sub->aside_overflow)
            continue;
          if (sub->aside->len >= conn->hub->relay->config.max_queue_frames)
            {
              sub->aside_overflow = TRUE;
              g_ptr_array_set_size (sub->aside, 0);
              continue;
            }
          {
            Frames *kept = g_new0 (Frames, 1);

            kept->channel_id = channel_id;
            kept->id = id;
            kept->object = g_bytes_ref (message);
            g_ptr_array_add (sub->aside, kept);
          }
          continue;
        }
      if (connection_send_frames (conn, &frames))
        {
          sub->cursor = id;
          /* Nothing more to join it: written now, so that the first subscriber does not wait
           * for the frame to be queued on the 10,000th. */
          if (hub->write_through && conn->ws)
            tocsin_relay_websocket_flush (conn->ws);
        }
    }
  frames_clear (&frames);
}

/* One idle per message, each taking the queue's head: the queue keeps the order of
 * publication, and each idle sits right behind the source that writes its webhook's answer. */
static gboolean
hub_publish_later (gpointer user_data)
{
  TocsinRelayHub *hub = user_data;
  Frames *frames = g_queue_pop_head (&hub->later);

  g_assert (frames != NULL);
  g_ptr_array_remove (hub->later_ids,
                      GUINT_TO_POINTER (g_source_get_id (g_main_current_source ())));
  hub->write_through = g_queue_is_empty (&hub->later);
  tocsin_relay_hub_publish (hub, frames->channel_id, frames->id, frames->object);
  hub->write_through = FALSE;
  frames_free (frames);
  /* The last message of a group commit (they are published in one main-loop turn): write them
   * all now, one write per subscriber, rather than a turn later, which with 10,000 connections
   * would be a walk over 10,000 sources first. */
  if (g_queue_is_empty (&hub->later))
    hub_flush_now (hub);
  return G_SOURCE_REMOVE;
}

void
tocsin_relay_hub_publish_soon (TocsinRelayHub *hub,
                               gint64          channel_id,
                               gint64          id,
                               GBytes         *message)
{
  Frames *frames;
  guint source_id;

  g_return_if_fail (hub != NULL);
  g_return_if_fail (message != NULL);

  /* On PostgreSQL every message, this node's too, reaches the hub from the channel's cursor, in
   * id order across nodes (tocsin-relay-cluster.c says why). */
  if (hub->relay->cluster != NULL)
    {
      tocsin_relay_cluster_wake (hub->relay->cluster, channel_id, id);
      return;
    }
  frames = g_new0 (Frames, 1);
  frames->channel_id = channel_id;
  frames->id = id;
  frames->object = g_bytes_ref (message);
  g_queue_push_tail (&hub->later, frames);
  /* G_PRIORITY_DEFAULT, not an idle priority: under a flood of requests a lower priority
   * would starve, and sources of one priority run in the order they were added. */
  source_id = g_idle_add_full (G_PRIORITY_DEFAULT, hub_publish_later, hub, NULL);
  g_source_set_name_by_id (source_id, "[tocsin-relay] publish");
  g_ptr_array_add (hub->later_ids, GUINT_TO_POINTER (source_id));
}

/* Ends the subscriptions of @channel_id opened before @opened_before (monotonic) with a token
 * other than @current_token (all of them when it is NULL). */
static void
hub_end_subscriptions (TocsinRelayHub *hub,
                       gint64          channel_id,
                       const char     *current_token,
                       gint64          opened_before,
                       const char     *reason)
{
  GPtrArray *subs;
  g_autoptr(GPtrArray) snapshot = NULL;

  subs = g_hash_table_lookup (hub->channels, &channel_id);
  if (subs == NULL)
    return;
  snapshot = g_ptr_array_new_full (subs->len, (GDestroyNotify) connection_unref);
  for (guint i = 0; i < subs->len; i++)
    {
      Subscription *sub = g_ptr_array_index (subs, i);

      if (sub->opened_us >= opened_before)
        continue;
      if (current_token && sub->token && tocsin_token_equal (sub->token, current_token))
        continue;
      g_ptr_array_add (snapshot, connection_ref (sub->conn));
    }

  for (guint i = 0; i < snapshot->len; i++)
    {
      Connection *conn = g_ptr_array_index (snapshot, i);

      if (conn->closed)
        continue;
      connection_remove_subscription (conn, channel_id);
      if (conn->kind == KIND_APP)
        {
          g_autoptr(GBytes) frame = tocsin_protocol_closed_frame (channel_id, reason);

          connection_send (conn, frame);
        }
      else
        connection_close (conn, CLOSE_GONE, reason ? reason : "closed");
    }
}

void
tocsin_relay_hub_close_channel (TocsinRelayHub *hub,
                                gint64          channel_id,
                                const char     *reason)
{
  g_return_if_fail (hub != NULL);

  hub_end_subscriptions (hub, channel_id, NULL, G_MAXINT64, reason);
  tocsin_relay_acks_forget_channel (hub->acks, channel_id);
}

typedef struct
{
  TocsinRelayHub *hub;          /* valid while cancellable is not cancelled */
  GCancellable   *cancellable;  /* the hub's */
  GArray         *ids;
  gint64          started_us;
} Revalidation;

static void
revalidation_free (Revalidation *check)
{
  g_object_unref (check->cancellable);
  g_array_unref (check->ids);
  g_free (check);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Revalidation, revalidation_free)

static void
revalidate_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(Revalidation) check = user_data;
  g_autoptr(GHashTable) tokens = NULL;
  g_autoptr(GError) error = NULL;
  TocsinRelayHub *hub;

  if (g_cancellable_is_cancelled (check->cancellable))
    return;
  hub = check->hub;
  hub->revalidating = FALSE;
  /* Asked for while this one was reading: the rotation may be newer than what it read. */
  if (hub->revalidate_again)
    {
      hub->revalidate_again = FALSE;
      hub_revalidate (hub);
    }
  tokens = tocsin_relay_store_lookup_subscribe_tokens_finish (hub->relay->store, result, &error);
  if (tokens == NULL)
    {
      g_message ("Could not check subscriptions against the store: %s", error->message);
      return;
    }
  /* Only subscriptions opened before the tokens were read: a later one was checked when it
   * opened, possibly against a token newer than what was read here. */
  for (guint i = 0; i < check->ids->len; i++)
    {
      gint64 id = g_array_index (check->ids, gint64, i);
      const char *token = g_hash_table_lookup (tokens, &id);

      if (token == NULL)
        hub_end_subscriptions (hub, id, NULL, check->started_us, "deleted");
      else
        hub_end_subscriptions (hub, id, token, check->started_us, "rotated");
    }
}

/* Catches rotations and deletions made by another process (the command line). The lookups run
 * on the store's reader thread, one batch for every subscribed channel. */
static gboolean
hub_revalidate (gpointer user_data)
{
  TocsinRelayHub *hub = user_data;
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  GHashTableIter iter;
  gpointer key;
  Revalidation *check;

  if (hub->revalidating)
    return G_SOURCE_CONTINUE;
  g_hash_table_iter_init (&iter, hub->channels);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_array_append_val (ids, *(gint64 *) key);
  if (ids->len == 0)
    return G_SOURCE_CONTINUE;

  check = g_new0 (Revalidation, 1);
  check->hub = hub;
  check->cancellable = g_object_ref (hub->cancellable);
  check->ids = g_array_ref (ids);
  check->started_us = g_get_monotonic_time ();
  hub->revalidating = TRUE;
  tocsin_relay_store_lookup_subscribe_tokens_async (hub->relay->store,
                                                    (const gint64 *) (gpointer) ids->data,
                                                    ids->len, check->cancellable,
                                                    revalidate_done, check);
  return G_SOURCE_CONTINUE;
}

void
tocsin_relay_hub_revalidate (TocsinRelayHub *hub)
{
  g_return_if_fail (hub != NULL);

  if (hub->revalidating)
    hub->revalidate_again = TRUE;
  else
    hub_revalidate (hub);
}

JsonArray *
tocsin_relay_hub_list_subscribers (TocsinRelayHub *hub,
                                   gint64          channel_id)
{
  JsonArray *array = json_array_new ();
  GPtrArray *subs;

  g_return_val_if_fail (hub != NULL, array);

  subs = g_hash_table_lookup (hub->channels, &channel_id);
  for (guint i = 0; subs && i < subs->len; i++)
    {
      Subscription *sub = g_ptr_array_index (subs, i);
      JsonObject *object = json_object_new ();
      g_autofree char *time = tocsin_format_time_ms (sub->conn->connected_at_ms);

      json_object_set_string_member (object, "kind", kind_names[sub->conn->kind]);
      json_object_set_string_member (object, "peer", sub->conn->peer);
      json_object_set_string_member (object, "connectedAt", time);
      json_array_add_object_element (array, object);
    }
  return array;
}

guint
tocsin_relay_hub_count_subscribers (TocsinRelayHub *hub,
                                    gint64          channel_id)
{
  GPtrArray *subs;

  g_return_val_if_fail (hub != NULL, 0);

  subs = g_hash_table_lookup (hub->channels, &channel_id);
  return subs ? subs->len : 0;
}

guint
tocsin_relay_hub_count_connections (TocsinRelayHub *hub)
{
  g_return_val_if_fail (hub != NULL, 0);

  return g_hash_table_size (hub->connections);
}

/* A stream's subscribe token is looked up on the store's reader thread
 * (tocsin_relay_store_find_channel_async()), the request paused and held by a reference
 * meanwhile: a connect never makes the main loop wait on the database. */
typedef struct
{
  TocsinRelayHub        *hub;
  SoupServerMessage     *msg;
  TocsinRelayStreamKind  kind;
  gint64                 since;
} StreamLookup;

static void
stream_lookup_free (StreamLookup *lookup)
{
  g_clear_object (&lookup->msg);
  g_free (lookup);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StreamLookup, stream_lookup_free)

static void
stream_lookup_done (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(StreamLookup) lookup = user_data;
  TocsinRelayHub *hub = lookup->hub;
  SoupServerMessage *msg = lookup->msg;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(GError) error = NULL;

  channel = tocsin_relay_store_find_channel_finish (hub->relay->store, result, &error);
  if (error != NULL)
    {
      /* The database did not answer (PostgreSQL down): not a link that is gone. */
      g_message ("Could not look a subscribe token up: %s", error->message);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Retry-After", "5");
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
                                       _("The relay cannot reach its database right now; try "
                                         "again in a moment."));
    }
  else if (channel == NULL)
    tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND,
                                     _("No channel has this subscribe link. It may have been "
                                       "rotated or the channel deleted; ask its owner for the "
                                       "new link."));
  else if (hub->shutting_down)
    tocsin_relay_server_reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
                                     _("The relay is shutting down; try again in a moment."));
  else
    switch (lookup->kind)
      {
      case TOCSIN_RELAY_STREAM_WS:
        begin_websocket (hub, msg, channel, lookup->since);
        break;
      case TOCSIN_RELAY_STREAM_SSE:
        begin_http_stream (hub, msg, channel, KIND_SSE, lookup->since);
        break;
      case TOCSIN_RELAY_STREAM_JSON:
        begin_http_stream (hub, msg, channel, KIND_JSON, lookup->since);
        break;
      default:
        g_assert_not_reached ();
      }
  soup_server_message_unpause (msg);
}

void
tocsin_relay_hub_handle_stream (TocsinRelayHub        *hub,
                                SoupServerMessage     *msg,
                                const char            *token,
                                TocsinRelayStreamKind  kind)
{
  StreamLookup *lookup;
  g_autofree char *since_text = NULL;
  gint64 since = SINCE_LIVE;

  if (soup_server_message_get_method (msg) != SOUP_METHOD_GET)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow",
                                    "GET");
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
                                       _("Streams are read with GET."));
      return;
    }

  since_text = query_since (msg);
  if (kind == TOCSIN_RELAY_STREAM_SSE)
    {
      /* An EventSource reconnecting names the last event it saw; that is newer than the
       * since= in the URL it was first opened with. */
      const char *last = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                       "Last-Event-ID");

      if (last && *last)
        {
          g_free (since_text);
          since_text = g_strdup (last);
        }
    }
  if (!parse_since (since_text, &since))
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_BAD_REQUEST,
                                       _("since must be a message id (a whole number) or "
                                         "“all”."));
      return;
    }

  lookup = g_new0 (StreamLookup, 1);
  lookup->hub = hub;
  lookup->msg = g_object_ref (msg);
  lookup->kind = kind;
  lookup->since = since;
  soup_server_message_pause (msg);
  tocsin_relay_store_find_channel_async (hub->relay->store, TOCSIN_RELAY_TOKEN_SUBSCRIBE, token,
                                         stream_lookup_done, lookup);
}

void
tocsin_relay_hub_handle_app (TocsinRelayHub    *hub,
                             SoupServerMessage *msg)
{
  if (soup_server_message_get_method (msg) != SOUP_METHOD_GET)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow",
                                    "GET");
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
                                       _("The app socket is opened with a WebSocket GET."));
      return;
    }
  if (hub->shutting_down)
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
                                       _("The relay is shutting down; try again in a moment."));
      return;
    }
  begin_websocket (hub, msg, NULL, SINCE_LIVE);
}

void
tocsin_relay_hub_shutdown (TocsinRelayHub *hub)
{
  GHashTableIter iter;
  gpointer value;
  g_autoptr(GPtrArray) conns = g_ptr_array_new_with_free_func ((GDestroyNotify) connection_unref);

  g_return_if_fail (hub != NULL);

  hub->shutting_down = TRUE;
  g_hash_table_iter_init (&iter, hub->connections);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (conns, connection_ref (value));
  for (guint i = 0; i < conns->len; i++)
    connection_close (g_ptr_array_index (conns, i), CLOSE_GOING_AWAY, "relay shutting down");
}
