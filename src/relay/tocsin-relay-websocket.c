/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-websocket.c: the server side of a WebSocket, after libsoup's handshake.
 *
 * libsoup's SoupWebsocketConnection frames and copies every message again for each connection,
 * logs twice per frame and writes at once, one system call per frame: about 10,000 instructions
 * per subscriber per message (docs/performance.md). Here a frame to the client (unmasked, so the
 * same bytes for everyone) is built once by the caller and each connection queues a reference;
 * what is queued is written with one writev() per connection on tocsin_relay_websocket_flush().
 *
 * What the client sends is parsed here too: it must mask its frames; fragments are joined up to
 * the size limit (1009 past it); control frames (close, ping, pong) may come between fragments;
 * a reserved bit or opcode, an unmasked or oversized control frame, a continuation out of place
 * or a 64-bit length with the top bit set close it with 1002, text that is not UTF-8 with 1007.
 * A ping is answered with a pong, a close with a close (then the connection ends); a close the
 * relay starts waits 5 s for the client's answer. A client that pings and never reads must not
 * grow the queue: a pong not yet begun is replaced by the newest one (RFC 6455 5.5.3 allows
 * answering only the latest ping), control bytes not yet written are counted for the caller's
 * cap (tocsin_relay_websocket_get_control_pending()), and more than MAX_PINGS pings within
 * PING_WINDOW_SECONDS close the connection with 1008. The socket's own timeout (GSocket's, set by the
 * caller) ends a peer that sends nothing: the hub pings every connection, so a live client
 * always answers something.
 *
 * The connection is driven by the relay's poller (tocsin-relay-poller.c), not by GIO's sources:
 * one watch on the socket's descriptor, read always, written while something is queued, whose
 * deadline is the idle timeout or the close handshake's. A GSource per connection (a read source,
 * a write source, a timeout) made every main-loop turn cost O(connections).
 *
 * Not a GObject: the hub holds one per subscriber and calls it on its hottest path; callbacks
 * instead of signals keep that path free of signal emission.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <string.h>

#include "tocsin-relay-poller.h"
#include "tocsin-relay-websocket.h"

#define CLOSE_TIMEOUT_SECONDS  5
#define READ_CHUNK             4096
/* Bounded work per dispatch, so one client cannot hold the main loop. */
#define MAX_READS_PER_DISPATCH 16
#define MAX_IOV                64
/* A client may ping twice a second on average (the app pings every 30 s); beyond that it is a
 * flood (docs/configuration.md). */
#define MAX_PINGS              20
#define PING_WINDOW_SECONDS    10

#define CLOSE_NORMAL           1000
#define CLOSE_PROTOCOL_ERROR   1002
#define CLOSE_NO_STATUS        1005
#define CLOSE_ABNORMAL         1006
#define CLOSE_BAD_DATA         1007
#define CLOSE_POLICY           1008
#define CLOSE_TOO_BIG          1009
#define CLOSE_TLS_HANDSHAKE    1015

typedef enum
{
  STATE_OPEN,
  STATE_CLOSING,   /* a close frame was queued; waiting for the client's, or for the queue */
  STATE_CLOSED,    /* the stream is being closed or is closed */
} State;

typedef struct
{
  GBytes *bytes;
  gsize   offset;  /* written so far */
  gboolean control;
} OutItem;

struct _TocsinRelayWebsocket
{
  gint                      ref_count;
  TocsinRelayWebsocketFuncs funcs;
  gpointer                  user_data;

  GIOStream                *stream;
  GPollableInputStream     *input;     /* borrowed from stream */
  GPollableOutputStream    *output;    /* borrowed from stream */
  TocsinRelayPollerWatch   *watch;     /* the socket's descriptor; NULL once ended */
  gboolean                  reading;
  gboolean                  want_write; /* the socket was full: waiting for it to drain */
  gint64                    idle_us;    /* the socket's timeout; 0: none */
  gint64                    last_read;  /* monotonic */
  gint64                    close_deadline;  /* 0: no close handshake under way */

  State                     state;
  gboolean                  close_sent;
  gboolean                  end_after_flush;  /* close the stream once the queue is empty */
  gboolean                  draining;  /* write side shut: reading to the client's end */
  GSocket                  *socket;    /* plain TCP only: to shut the write side */

  GByteArray               *in;        /* bytes read, not yet parsed; NULL when none (most of
                                        * the time: 10,000 idle subscribers hold no buffer) */
  GByteArray               *message;   /* fragments of the message being received */
  guint8                    message_opcode;   /* 0: no message in progress */
  gsize                     max_incoming;

  GQueue                    out;       /* OutItem* */
  guint64                   written;   /* bytes of data frames written (control frames apart) */
  gsize                     control_pending;  /* bytes of control frames queued, not written */
  gint64                    ping_window_start; /* monotonic µs */
  guint                     pings_in_window;
};

static void websocket_event         (int fd, GIOCondition condition, gpointer user_data);
static void websocket_end           (TocsinRelayWebsocket *self);

/* ---- Frames ---- */

static gsize
write_header (guint8 *header,
              guint8  opcode,
              gsize   length)
{
  header[0] = 0x80 | opcode;
  if (length < 126)
    {
      header[1] = length;
      return 2;
    }
  if (length < 65536)
    {
      header[1] = 126;
      header[2] = length >> 8;
      header[3] = length & 0xFF;
      return 4;
    }
  header[1] = 127;
  for (guint i = 0; i < 8; i++)
    header[2 + i] = ((guint64) length >> (56 - 8 * i)) & 0xFF;
  return 10;
}

GBytes *
tocsin_relay_websocket_frame_new (guint8      opcode,
                                  const void *payload,
                                  gsize       length)
{
  guint8 header[10];
  gsize header_len = write_header (header, opcode, length);
  guint8 *data = g_malloc (header_len + length);

  memcpy (data, header, header_len);
  if (length > 0)
    memcpy (data + header_len, payload, length);
  return g_bytes_new_take (data, header_len + length);
}

static GBytes *
close_frame (gushort     code,
             const char *reason)
{
  guint8 payload[125];
  gsize len = 0;

  if (code != 0 && code != CLOSE_NO_STATUS)
    {
      payload[0] = code >> 8;
      payload[1] = code & 0xFF;
      len = 2;
      if (reason)
        {
          gsize reason_len = strlen (reason);
          const char *end;

          /* A control frame holds 125 bytes: cut the reason on a character boundary. */
          if (reason_len > sizeof payload - len)
            {
              reason_len = sizeof payload - len;
              g_utf8_validate (reason, reason_len, &end);
              reason_len = end - reason;
            }
          memcpy (payload + len, reason, reason_len);
          len += reason_len;
        }
    }
  return tocsin_relay_websocket_frame_new (TOCSIN_RELAY_WEBSOCKET_CLOSE, payload, len);
}

/* ---- Life ---- */

TocsinRelayWebsocket *
tocsin_relay_websocket_new (GIOStream                       *stream,
                            GSocket                         *socket,
                            gsize                            max_incoming,
                            const TocsinRelayWebsocketFuncs *funcs,
                            gpointer                         user_data)
{
  TocsinRelayWebsocket *self;

  g_return_val_if_fail (G_IS_IO_STREAM (stream), NULL);
  g_return_val_if_fail (G_IS_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (stream)), NULL);
  g_return_val_if_fail (G_IS_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (stream)), NULL);
  g_return_val_if_fail (G_IS_SOCKET (socket), NULL);
  g_return_val_if_fail (funcs != NULL, NULL);

  self = g_new0 (TocsinRelayWebsocket, 1);
  self->ref_count = 1;
  self->funcs = *funcs;
  self->user_data = user_data;
  self->stream = g_object_ref (stream);
  self->input = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (stream));
  self->output = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (stream));
  self->max_incoming = max_incoming;
  g_queue_init (&self->out);
  self->idle_us = (gint64) g_socket_get_timeout (socket) * G_USEC_PER_SEC;
  self->last_read = g_get_monotonic_time ();
  self->reading = TRUE;
  self->watch = tocsin_relay_poller_watch_new (g_socket_get_fd (socket), G_IO_IN,
                                               G_PRIORITY_DEFAULT, websocket_event, self);
  if (self->idle_us > 0)
    tocsin_relay_poller_watch_set_deadline (self->watch, self->last_read + self->idle_us);
  /* libsoup may hold bytes the client sent right after the handshake: read them first. */
  tocsin_relay_poller_watch_wake (self->watch);
  return self;
}

TocsinRelayWebsocket *
tocsin_relay_websocket_ref (TocsinRelayWebsocket *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  self->ref_count++;
  return self;
}

static void
out_item_free (gpointer data)
{
  OutItem *item = data;

  g_bytes_unref (item->bytes);
  g_free (item);
}

/* What the watch waits for now, and when it is called back without an event. */
static void
update_watch (TocsinRelayWebsocket *self)
{
  gint64 deadline = -1;

  if (self->watch == NULL)
    return;
  tocsin_relay_poller_watch_set_events (self->watch, (self->reading ? G_IO_IN : 0) |
                                                     (self->want_write ? G_IO_OUT : 0));
  if (self->idle_us > 0)
    deadline = self->last_read + self->idle_us;
  if (self->close_deadline > 0 && (deadline < 0 || self->close_deadline < deadline))
    deadline = self->close_deadline;
  tocsin_relay_poller_watch_set_deadline (self->watch, deadline);
}

void
tocsin_relay_websocket_set_socket (TocsinRelayWebsocket *self,
                                   GSocket              *socket)
{
  g_return_if_fail (self != NULL);

  g_set_object (&self->socket, socket);
}

void
tocsin_relay_websocket_unref (TocsinRelayWebsocket *self)
{
  g_return_if_fail (self != NULL);

  if (--self->ref_count > 0)
    return;
  g_clear_pointer (&self->watch, tocsin_relay_poller_watch_free);
  g_queue_clear_full (&self->out, out_item_free);
  g_clear_pointer (&self->in, g_byte_array_unref);
  g_clear_pointer (&self->message, g_byte_array_unref);
  g_clear_object (&self->stream);
  g_clear_object (&self->socket);
  g_free (self);
}

gsize
tocsin_relay_websocket_get_control_pending (TocsinRelayWebsocket *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->control_pending;
}

gboolean
tocsin_relay_websocket_is_open (TocsinRelayWebsocket *self)
{
  g_return_val_if_fail (self != NULL, FALSE);

  return self->state == STATE_OPEN;
}

static void
stream_closed (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  TocsinRelayWebsocket *self = user_data;

  g_io_stream_close_finish (G_IO_STREAM (source), result, NULL);
  if (self->funcs.closed)
    self->funcs.closed (self->user_data);
  tocsin_relay_websocket_unref (self);
}

/* Stops all I/O and closes the stream; closed() follows from the main loop. */
static void
websocket_end (TocsinRelayWebsocket *self)
{
  if (self->state == STATE_CLOSED)
    return;
  self->state = STATE_CLOSED;
  /* Before the stream closes the descriptor. */
  g_clear_pointer (&self->watch, tocsin_relay_poller_watch_free);
  g_queue_clear_full (&self->out, out_item_free);
  self->control_pending = 0;
  g_io_stream_close_async (self->stream, G_PRIORITY_DEFAULT, NULL, stream_closed,
                           tocsin_relay_websocket_ref (self));
}

void
tocsin_relay_websocket_abort (TocsinRelayWebsocket *self)
{
  g_return_if_fail (self != NULL);

  if (self->state == STATE_CLOSED)
    return;
  self->funcs.closed = NULL;
  websocket_end (self);
}

/* ---- Writing ---- */

static void
queue_item (TocsinRelayWebsocket *self,
            GBytes               *frame,
            gboolean              control)
{
  OutItem *item = g_new (OutItem, 1);

  item->bytes = g_bytes_ref (frame);
  item->offset = 0;
  item->control = control;
  if (control)
    self->control_pending += g_bytes_get_size (frame);
  if (!control)
    {
      g_queue_push_tail (&self->out, item);
      return;
    }
  /* Control frames go before data frames not yet begun (as libsoup's "urgent" ones do). */
  {
    GList *l = g_queue_peek_head_link (&self->out);

    while (l && (((OutItem *) l->data)->offset > 0 || ((OutItem *) l->data)->control))
      l = l->next;
    if (l)
      g_queue_insert_before (&self->out, l, item);
    else
      g_queue_push_tail (&self->out, item);
  }
}

void
tocsin_relay_websocket_queue (TocsinRelayWebsocket *self,
                              GBytes               *frame)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (frame != NULL);

  if (self->state != STATE_OPEN)
    return;
  queue_item (self, frame, FALSE);
}

void
tocsin_relay_websocket_queue_ping (TocsinRelayWebsocket *self,
                                   GBytes               *frame)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (frame != NULL);

  if (self->state != STATE_OPEN)
    return;
  /* One keepalive ping waiting is enough: a peer that does not read gets no more. */
  for (GList *l = g_queue_peek_head_link (&self->out); l; l = l->next)
    {
      OutItem *item = l->data;

      if (item->control && item->offset == 0 &&
          (((const guint8 *) g_bytes_get_data (item->bytes, NULL))[0] & 0x0F) ==
          TOCSIN_RELAY_WEBSOCKET_PING)
        return;
    }
  queue_item (self, frame, TRUE);
}

static void
send_control (TocsinRelayWebsocket *self,
              GBytes               *frame)
{
  queue_item (self, frame, TRUE);
  tocsin_relay_websocket_flush (self);
}

void
tocsin_relay_websocket_flush (TocsinRelayWebsocket *self)
{
  GOutputVector vectors[MAX_IOV];
  g_autoptr(GError) error = NULL;
  gboolean progress = FALSE;

  g_return_if_fail (self != NULL);

  if (self->state == STATE_CLOSED || self->want_write)
    return;

  while (!g_queue_is_empty (&self->out))
    {
      GList *l = g_queue_peek_head_link (&self->out);
      guint n = 0;
      gsize written = 0;
      GPollableReturn ret;

      for (; l && n < MAX_IOV; l = l->next, n++)
        {
          OutItem *item = l->data;
          gsize size;
          const guint8 *data = g_bytes_get_data (item->bytes, &size);

          vectors[n].buffer = data + item->offset;
          vectors[n].size = size - item->offset;
        }
      ret = g_pollable_output_stream_writev_nonblocking (self->output, vectors, n, &written, NULL,
                                                         &error);
      if (ret == G_POLLABLE_RETURN_FAILED)
        {
          g_debug ("WebSocket write failed: %s", error->message);
          websocket_end (self);
          return;
        }
      if (written > 0)
        progress = TRUE;
      /* Drop what was written whole; note how far into the next one it got. Data and control
       * bytes are counted apart: the caller's cap counts what it queued. */
      while (written > 0)
        {
          OutItem *item = g_queue_peek_head (&self->out);
          gsize left = g_bytes_get_size (item->bytes) - item->offset;
          gsize used = MIN (written, left);

          if (item->control)
            self->control_pending -= used;
          else
            self->written += used;
          written -= used;
          if (used < left)
            {
              item->offset += used;
              break;
            }
          out_item_free (g_queue_pop_head (&self->out));
        }
      if (ret == G_POLLABLE_RETURN_WOULD_BLOCK || !g_queue_is_empty (&self->out))
        {
          if (ret != G_POLLABLE_RETURN_WOULD_BLOCK && n == MAX_IOV)
            continue;   /* more vectors than one call takes: go on */
          self->want_write = TRUE;
          update_watch (self);
          break;
        }
    }

  if (progress && self->funcs.written)
    self->funcs.written (self->user_data, self->written);
  if (self->end_after_flush && g_queue_is_empty (&self->out) && self->state != STATE_CLOSED &&
      !self->draining)
    {
      /* Closing a socket with unread input sends a reset, which makes the client's kernel drop
       * what it has not read yet: the close frame, and so the reason. Shutting the write side
       * sends it all, then the end; the client's end (or the close timeout) ends it. */
      if (self->socket != NULL && !g_socket_is_closed (self->socket) &&
          g_socket_shutdown (self->socket, FALSE, TRUE, NULL))
        {
          self->draining = TRUE;
          if (!self->reading)
            {
              self->reading = TRUE;
              update_watch (self);
            }
        }
      else
        websocket_end (self);
    }
}

static void
on_writable (TocsinRelayWebsocket *self)
{
  self->want_write = FALSE;
  update_watch (self);
  tocsin_relay_websocket_flush (self);
}

/* ---- Closing ---- */

static void
start_close_timeout (TocsinRelayWebsocket *self)
{
  if (self->close_deadline > 0)
    return;
  self->close_deadline = g_get_monotonic_time () + CLOSE_TIMEOUT_SECONDS * G_USEC_PER_SEC;
  update_watch (self);
}

/* The watch's deadline passed: the close handshake's, or the idle timeout (which reads push
 * back without touching the watch, so it may have moved). */
static void
on_deadline (TocsinRelayWebsocket *self)
{
  gint64 now = g_get_monotonic_time ();

  if (self->close_deadline > 0 && now >= self->close_deadline)
    {
      g_debug ("WebSocket peer did not answer the close in time");
      websocket_end (self);
      return;
    }
  if (self->idle_us > 0 && now >= self->last_read + self->idle_us)
    {
      g_debug ("WebSocket peer silent for %" G_GINT64_FORMAT " s", self->idle_us / G_USEC_PER_SEC);
      websocket_end (self);
      return;
    }
  update_watch (self);
}

/* Drops data frames not yet begun: after a close frame nothing else may follow. */
static void
drop_unsent_data (TocsinRelayWebsocket *self)
{
  GList *l = g_queue_peek_head_link (&self->out);

  while (l)
    {
      GList *next = l->next;
      OutItem *item = l->data;

      if (!item->control && item->offset == 0)
        {
          out_item_free (item);
          g_queue_delete_link (&self->out, l);
        }
      l = next;
    }
}

void
tocsin_relay_websocket_close (TocsinRelayWebsocket *self,
                              gushort               code,
                              const char           *reason)
{
  g_autoptr(GBytes) frame = NULL;

  g_return_if_fail (self != NULL);

  if (self->state != STATE_OPEN)
    return;
  self->state = STATE_CLOSING;
  self->close_sent = TRUE;
  drop_unsent_data (self);
  frame = close_frame (code, reason);
  start_close_timeout (self);
  send_control (self, frame);
}

/* A protocol violation: a close frame with @code, then the end, without waiting for an answer. */
static void
fail (TocsinRelayWebsocket *self,
      gushort               code,
      const char           *reason)
{
  if (self->state == STATE_CLOSED)
    return;
  if (!self->close_sent)
    {
      g_autoptr(GBytes) frame = close_frame (code, reason);

      self->close_sent = TRUE;
      drop_unsent_data (self);
      queue_item (self, frame, TRUE);
    }
  self->state = STATE_CLOSING;
  self->end_after_flush = TRUE;
  start_close_timeout (self);
  tocsin_relay_websocket_flush (self);
}

static void
receive_close (TocsinRelayWebsocket *self,
               const guint8         *data,
               gsize                 len)
{
  gushort code = 0;

  if (len == 1)
    {
      fail (self, CLOSE_PROTOCOL_ERROR, "incomplete close code");
      return;
    }
  if (len >= 2)
    {
      code = (gushort) (data[0] << 8 | data[1]);
      if (code < 1000 || code == CLOSE_NO_STATUS || code == CLOSE_ABNORMAL ||
          code == CLOSE_TLS_HANDSHAKE || code >= 5000 || (code > 1011 && code < 3000))
        {
          fail (self, CLOSE_PROTOCOL_ERROR, "invalid close code");
          return;
        }
      if (!g_utf8_validate ((const char *) data + 2, len - 2, NULL))
        {
          fail (self, CLOSE_PROTOCOL_ERROR, "close reason is not UTF-8");
          return;
        }
    }

  if (self->close_sent)
    {
      /* The answer to ours: done. */
      websocket_end (self);
      return;
    }
  /* Theirs first: answer with the same code, then end once the answer is written. */
  {
    g_autoptr(GBytes) frame = close_frame (code ? code : CLOSE_NORMAL, NULL);

    self->state = STATE_CLOSING;
    self->close_sent = TRUE;
    self->end_after_flush = TRUE;
    drop_unsent_data (self);
    start_close_timeout (self);
    send_control (self, frame);
  }
}

/* ---- Reading ---- */

/* A pong still waiting whole in the queue answers the newest ping instead: TRUE when one did. */
static gboolean
replace_unsent_pong (TocsinRelayWebsocket *self,
                     GBytes               *pong)
{
  for (GList *l = g_queue_peek_head_link (&self->out); l; l = l->next)
    {
      OutItem *item = l->data;
      const guint8 *data;
      gsize size;

      if (!item->control || item->offset > 0)
        continue;
      data = g_bytes_get_data (item->bytes, &size);
      if ((data[0] & 0x0F) != TOCSIN_RELAY_WEBSOCKET_PONG)
        continue;
      self->control_pending -= size;
      self->control_pending += g_bytes_get_size (pong);
      g_bytes_unref (item->bytes);
      item->bytes = g_bytes_ref (pong);
      return TRUE;
    }
  return FALSE;
}

/* Parses one frame at the head of self->in. Returns the bytes it used, 0 when the frame is not
 * all there yet; on a violation it fails the connection and returns 0. */
static gsize
parse_frame (TocsinRelayWebsocket *self)
{
  guint8 *p = self->in->data;
  gsize avail = self->in->len;
  gboolean fin, masked;
  guint8 opcode;
  guint64 length;
  gsize header = 2;
  guint8 mask[4];
  guint8 *payload;

  if (avail < 2)
    return 0;
  fin = (p[0] & 0x80) != 0;
  opcode = p[0] & 0x0F;
  masked = (p[1] & 0x80) != 0;
  length = p[1] & 0x7F;

  if (p[0] & 0x70)
    {
      fail (self, CLOSE_PROTOCOL_ERROR, "reserved bits set");
      return 0;
    }
  if (!masked)
    {
      fail (self, CLOSE_PROTOCOL_ERROR, "client frames must be masked");
      return 0;
    }
  if (!(opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xA)))
    {
      fail (self, CLOSE_PROTOCOL_ERROR, "reserved opcode");
      return 0;
    }
  if (opcode & 0x8)
    {
      if (!fin || length > 125)
        {
          fail (self, CLOSE_PROTOCOL_ERROR, "invalid control frame");
          return 0;
        }
    }
  else if ((opcode == 0) != (self->message_opcode != 0))
    {
      fail (self, CLOSE_PROTOCOL_ERROR, opcode == 0 ? "continuation without a message"
                                                    : "new message inside a fragmented one");
      return 0;
    }

  if (length == 126)
    {
      if (avail < 4)
        return 0;
      length = (guint64) p[2] << 8 | p[3];
      header = 4;
    }
  else if (length == 127)
    {
      if (avail < 10)
        return 0;
      length = 0;
      for (guint i = 0; i < 8; i++)
        length = length << 8 | p[2 + i];
      header = 10;
      if (length >> 63)
        {
          fail (self, CLOSE_PROTOCOL_ERROR, "invalid length");
          return 0;
        }
    }

  if (!(opcode & 0x8) &&
      length + (self->message ? self->message->len : 0) > self->max_incoming)
    {
      fail (self, CLOSE_TOO_BIG, "message too big");
      return 0;
    }
  if (avail < header + 4 + length)
    return 0;

  memcpy (mask, p + header, 4);
  payload = p + header + 4;
  for (gsize i = 0; i < length; i++)
    payload[i] ^= mask[i & 3];

  switch (opcode)
    {
    case TOCSIN_RELAY_WEBSOCKET_CLOSE:
      receive_close (self, payload, length);
      break;
    case TOCSIN_RELAY_WEBSOCKET_PING:
      if (self->state == STATE_OPEN)
        {
          g_autoptr(GBytes) pong = NULL;
          gint64 now = g_get_monotonic_time ();

          if (now - self->ping_window_start >= PING_WINDOW_SECONDS * G_USEC_PER_SEC)
            {
              self->ping_window_start = now;
              self->pings_in_window = 0;
            }
          if (++self->pings_in_window > MAX_PINGS)
            {
              fail (self, CLOSE_POLICY, "too many pings");
              return 0;
            }
          pong = tocsin_relay_websocket_frame_new (TOCSIN_RELAY_WEBSOCKET_PONG, payload, length);
          if (!replace_unsent_pong (self, pong))
            send_control (self, pong);
        }
      break;
    case TOCSIN_RELAY_WEBSOCKET_PONG:
      /* Only proof of life, which reading it already was. */
      break;
    default:
      if (self->message == NULL)
        self->message = g_byte_array_new ();
      if (opcode != 0)
        self->message_opcode = opcode;
      g_byte_array_append (self->message, payload, length);
      if (fin)
        {
          g_autoptr(GByteArray) message = g_steal_pointer (&self->message);
          gboolean text = self->message_opcode == TOCSIN_RELAY_WEBSOCKET_TEXT;

          self->message_opcode = 0;
          if (text && !g_utf8_validate ((const char *) message->data, message->len, NULL))
            {
              fail (self, CLOSE_BAD_DATA, "text is not UTF-8");
              return 0;
            }
          /* After a close (either way) data is ignored. */
          if (self->state == STATE_OPEN && self->funcs.message)
            self->funcs.message (self->user_data, text, message->data, message->len);
        }
      break;
    }
  return header + 4 + length;
}

static void
process_input (TocsinRelayWebsocket *self)
{
  while (self->state != STATE_CLOSED && !self->end_after_flush && self->in->len > 0)
    {
      gsize used = parse_frame (self);

      if (used == 0)
        break;
      g_byte_array_remove_range (self->in, 0, used);
    }
  /* Only a frame not yet all there is kept. */
  if (self->in->len == 0)
    g_clear_pointer (&self->in, g_byte_array_unref);
}

static void
on_readable (TocsinRelayWebsocket *self)
{
  gboolean again = TRUE;
  gboolean drained = FALSE;

  for (guint i = 0; i < MAX_READS_PER_DISPATCH && self->state != STATE_CLOSED; i++)
    {
      g_autoptr(GError) error = NULL;
      guint8 buffer[READ_CHUNK];
      gssize n;

      n = g_pollable_input_stream_read_nonblocking (self->input, buffer, sizeof buffer, NULL,
                                                    &error);
      if (n > 0 && self->end_after_flush)
        continue;   /* after a close or a failure: read to the end, and drop */
      if (n > 0)
        {
          self->last_read = g_get_monotonic_time ();
          if (self->in == NULL)
            self->in = g_byte_array_sized_new (n);
          g_byte_array_append (self->in, buffer, n);
        }
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          drained = TRUE;
          break;
        }
      if (n <= 0)
        {
          /* End of file, a reset, or the socket's timeout: the peer is gone. */
          if (n < 0)
            g_debug ("WebSocket read failed: %s", error->message);
          again = FALSE;
          websocket_end (self);
          break;
        }
      process_input (self);
    }
  if (self->state == STATE_CLOSED)
    return;
  if (!again)
    {
      self->reading = FALSE;
      update_watch (self);
    }
  else if (!drained && self->watch != NULL)
    {
      /* Stopped at the bound: what is left may sit in a stream's buffer (TLS), not in the
       * socket, where a level-triggered epoll would see it. */
      tocsin_relay_poller_watch_wake (self->watch);
    }
}

static void
websocket_event (int          fd,
                 GIOCondition condition,
                 gpointer     user_data)
{
  TocsinRelayWebsocket *self = user_data;

  tocsin_relay_websocket_ref (self);
  if (condition == 0)
    on_deadline (self);
  if (self->state != STATE_CLOSED && self->reading &&
      (condition & (G_IO_IN | G_IO_HUP | G_IO_ERR)))
    on_readable (self);
  if (self->state != STATE_CLOSED && self->want_write &&
      (condition & (G_IO_OUT | G_IO_HUP | G_IO_ERR)))
    on_writable (self);
  tocsin_relay_websocket_unref (self);
}
