/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-link"

#include "config.h"

#include <glib/gi18n.h>

#include "tocsin-link.h"
#include "tocsin-tls.h"

/* The longest the main context spends on a link's events before it gets to other sources;
 * after the first slice of a wake-up the rest wait behind drawing (G_PRIORITY_DEFAULT_IDLE). */
#define SLICE_USEC (3 * 1000)

/* Design: everything libsoup does for the socket (connecting, TLS, reading, pings, closing)
 * happens on the I/O thread, in its GMainContext, where the session was made; so does the
 * parsing of each frame. The main context gets a queue of events (parsed frames, the close
 * code...) that one source drains, in order, in slices. Calls from the main context (send,
 * close) are run on the I/O thread with g_main_context_invoke(); nothing waits for it there.
 * The only wait is the I/O thread's, for the main context to take queued frames when too
 * many are waiting. */

typedef struct
{
  TocsinLinkEvent event;
  gsize           bytes;
} QueuedEvent;

struct _TocsinLink
{
  gatomicrefcount          ref;

  /* Set at creation, read-only after: */
  GMainContext            *context;        /* the owner's: events are handled there */
  TocsinLinkHandler        handler;
  gpointer                 user_data;
  GTlsDatabase            *tls_database;
  guint                    keepalive_seconds;
  gsize                    max_payload;
  GCancellable            *cancellable;    /* cancelled by tocsin_link_close() */

  /* I/O thread only: */
  SoupMessage             *msg;
  SoupSession             *session;
  SoupWebsocketConnection *ws;
  gushort                  close_code;

  /* Guarded by lock: */
  GMutex                   lock;
  GCond                    drained;
  GQueue                   events;         /* QueuedEvent, oldest first */
  gsize                    queued_bytes;
  gboolean                 draining;       /* a drain source is attached */
  gboolean                 closed;
};

static void
queued_event_free (QueuedEvent *queued)
{
  g_clear_pointer (&queued->event.frame, tocsin_frame_free);
  g_clear_error (&queued->event.error);
  g_free (queued);
}

/* ---- the I/O thread ----------------------------------------------------------------------- */

static gpointer
io_main (gpointer data)
{
  GMainContext *context = data;

  g_main_context_push_thread_default (context);
  for (;;)
    g_main_context_iteration (context, TRUE);
  return NULL;
}

/* One thread for every link of the process: it only waits on sockets. */
static GMainContext *
io_context (void)
{
  static gsize context = 0;

  if (g_once_init_enter (&context))
    {
      GMainContext *io = g_main_context_new ();

      g_thread_unref (g_thread_new ("tocsin-net", io_main, g_main_context_ref (io)));
      g_once_init_leave (&context, (gsize) io);
    }
  return (GMainContext *) context;
}

static void
link_free (TocsinLink *link)
{
  g_assert (link->ws == NULL);
  g_clear_object (&link->msg);
  g_clear_object (&link->session);
  g_clear_object (&link->tls_database);
  g_clear_object (&link->cancellable);
  g_queue_clear_full (&link->events, (GDestroyNotify) queued_event_free);
  g_mutex_clear (&link->lock);
  g_cond_clear (&link->drained);
  g_main_context_unref (link->context);
  g_free (link);
}

static gboolean
free_in_io (gpointer data)
{
  link_free (data);
  return G_SOURCE_REMOVE;
}

TocsinLink *
tocsin_link_ref (TocsinLink *link)
{
  g_atomic_ref_count_inc (&link->ref);
  return link;
}

/* The soup objects belong to the I/O thread: the last reference is always dropped there. */
void
tocsin_link_unref (TocsinLink *link)
{
  if (g_atomic_ref_count_dec (&link->ref))
    g_main_context_invoke (io_context (), free_in_io, link);
}

static void
run_in_io (TocsinLink  *link,
           GSourceFunc  func)
{
  g_main_context_invoke_full (io_context (), G_PRIORITY_DEFAULT, func, tocsin_link_ref (link),
                              (GDestroyNotify) tocsin_link_unref);
}

static gboolean drain_cb (gpointer data);

/* I/O thread: queues @queued for the main context; past the bound, waits for it to catch up. */
static void
push_event (TocsinLink  *link,
            QueuedEvent *queued)
{
  g_mutex_lock (&link->lock);
  if (link->closed)
    {
      g_mutex_unlock (&link->lock);
      queued_event_free (queued);
      return;
    }
  g_queue_push_tail (&link->events, queued);
  link->queued_bytes += queued->bytes;
  if (!link->draining)
    {
      GSource *source = g_idle_source_new ();

      /* As libsoup's own socket source was: the first slice comes before drawing. */
      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, drain_cb, tocsin_link_ref (link),
                             (GDestroyNotify) tocsin_link_unref);
      g_source_set_static_name (source, "[tocsin] link events");
      g_source_attach (source, link->context);
      g_source_unref (source);
      link->draining = TRUE;
    }
  if (link->queued_bytes > TOCSIN_LINK_MAX_QUEUED_BYTES)
    {
      g_debug ("%" G_GSIZE_FORMAT " bytes of frames wait for the main loop: reading stops",
               link->queued_bytes);
      while (link->queued_bytes > TOCSIN_LINK_MAX_QUEUED_BYTES / 2 && !link->closed)
        g_cond_wait (&link->drained, &link->lock);
    }
  g_mutex_unlock (&link->lock);
}

static void
push (TocsinLink          *link,
      TocsinLinkEventType  type,
      TocsinFrame         *frame,
      const GError        *error,
      gushort              code,
      gsize                bytes)
{
  QueuedEvent *queued = g_new0 (QueuedEvent, 1);

  queued->event.type = type;
  queued->event.frame = frame;
  queued->event.error = error ? g_error_copy (error) : NULL;
  queued->event.code = code;
  queued->bytes = bytes;
  push_event (link, queued);
}

static gboolean
is_closed (TocsinLink *link)
{
  gboolean closed;

  g_mutex_lock (&link->lock);
  closed = link->closed;
  g_mutex_unlock (&link->lock);
  return closed;
}

static void
on_ws_message (SoupWebsocketConnection *ws,
               gint                     data_type,
               GBytes                  *bytes,
               TocsinLink              *link)
{
  g_autoptr(GError) error = NULL;
  TocsinFrame *frame;
  gsize length;
  const char *data;

  if (is_closed (link))
    return;
  /* Any frame says the relay is there; only text frames mean anything. */
  if (data_type != SOUP_WEBSOCKET_DATA_TEXT)
    {
      push (link, TOCSIN_LINK_PONG, NULL, NULL, 0, 0);
      return;
    }
  data = g_bytes_get_data (bytes, &length);
  frame = tocsin_protocol_parse_frame (data, length, &error);
  if (frame == NULL)
    push (link, TOCSIN_LINK_BAD_FRAME, NULL, error, 0, length);
  else
    push (link, TOCSIN_LINK_FRAME, frame, NULL, 0, length);
}

static void
on_ws_pong (SoupWebsocketConnection *ws,
            GBytes                  *message,
            TocsinLink              *link)
{
  push (link, TOCSIN_LINK_PONG, NULL, NULL, 0, 0);
}

static void
on_ws_error (SoupWebsocketConnection *ws,
             GError                  *error,
             TocsinLink              *link)
{
  push (link, TOCSIN_LINK_ERROR, NULL, error, 0, 0);
}

static void
on_ws_closed (SoupWebsocketConnection *ws,
              TocsinLink              *link)
{
  gushort code = soup_websocket_connection_get_close_code (ws);

  g_signal_handlers_disconnect_by_data (ws, link);
  g_clear_object (&link->ws);
  push (link, TOCSIN_LINK_CLOSED, NULL, NULL, code, 0);
}

/* I/O thread: closes @ws without waiting for the peer (it may be gone). */
static void
close_socket (SoupWebsocketConnection *ws,
              gpointer                 data,
              gushort                  code)
{
  g_signal_handlers_disconnect_by_data (ws, data);
  if (soup_websocket_connection_get_state (ws) != SOUP_WEBSOCKET_STATE_CLOSED)
    {
      /* The close handshake finishes (or times out) on its own; keep the object alive until
       * then. */
      g_signal_connect (ws, "closed", G_CALLBACK (g_object_unref), NULL);
      g_object_ref (ws);
      soup_websocket_connection_close (ws, code, NULL);
    }
  g_object_unref (ws);
}

static gboolean
on_accept_certificate (SoupMessage          *msg,
                       GTlsCertificate      *certificate,
                       GTlsCertificateFlags  errors,
                       TocsinLink           *link)
{
  return tocsin_tls_accept_with_database (link->tls_database, msg, certificate);
}

static void
on_connected (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  TocsinLink *link = user_data;
  g_autoptr(GError) error = NULL;
  SoupWebsocketConnection *ws;

  ws = soup_session_websocket_connect_finish (SOUP_SESSION (object), result, &error);
  if (ws == NULL)
    {
      if (!g_cancellable_is_cancelled (link->cancellable))
        push (link, TOCSIN_LINK_CONNECT_FAILED, NULL, error, 0, 0);
    }
  else if (g_cancellable_is_cancelled (link->cancellable))
    close_socket (ws, link, link->close_code);
  else
    {
      link->ws = ws;
      soup_websocket_connection_set_max_incoming_payload_size (ws, link->max_payload);
      soup_websocket_connection_set_keepalive_interval (ws, link->keepalive_seconds);
      g_signal_connect (ws, "message", G_CALLBACK (on_ws_message), link);
      g_signal_connect (ws, "pong", G_CALLBACK (on_ws_pong), link);
      g_signal_connect (ws, "error", G_CALLBACK (on_ws_error), link);
      g_signal_connect (ws, "closed", G_CALLBACK (on_ws_closed), link);
      push (link, TOCSIN_LINK_CONNECTED, NULL, NULL, 0, 0);
    }
  tocsin_link_unref (link);
}

static gboolean
connect_in_io (gpointer data)
{
  TocsinLink *link = data;

  if (g_cancellable_is_cancelled (link->cancellable))
    return G_SOURCE_REMOVE;
  link->session = soup_session_new ();
  /* The relay turns permessage-deflate off (one shared encoded frame per message); do not
   * offer it. */
  soup_session_remove_feature_by_type (link->session, SOUP_TYPE_WEBSOCKET_EXTENSION_MANAGER);
  g_signal_connect (link->msg, "accept-certificate", G_CALLBACK (on_accept_certificate), link);
  soup_session_websocket_connect_async (link->session, link->msg, NULL, NULL, G_PRIORITY_DEFAULT,
                                        link->cancellable, on_connected, tocsin_link_ref (link));
  return G_SOURCE_REMOVE;
}

/* ---- the main context --------------------------------------------------------------------- */

static gboolean
drain_cb (gpointer data)
{
  TocsinLink *link = data;
  gint64 deadline = g_get_monotonic_time () + SLICE_USEC;

  for (;;)
    {
      QueuedEvent *queued;

      g_mutex_lock (&link->lock);
      queued = link->closed ? NULL : g_queue_pop_head (&link->events);
      if (queued == NULL)
        {
          link->draining = FALSE;
          g_mutex_unlock (&link->lock);
          return G_SOURCE_REMOVE;
        }
      link->queued_bytes -= queued->bytes;
      if (link->queued_bytes <= TOCSIN_LINK_MAX_QUEUED_BYTES / 2)
        g_cond_signal (&link->drained);
      g_mutex_unlock (&link->lock);

      link->handler (link, &queued->event, link->user_data);
      queued_event_free (queued);
      if (g_get_monotonic_time () >= deadline)
        break;
    }
  /* A backlog: the rest waits behind the default priority and drawing, a slice at a time. */
  g_source_set_priority (g_main_current_source (), G_PRIORITY_DEFAULT_IDLE);
  return G_SOURCE_CONTINUE;
}

TocsinLink *
tocsin_link_new (SoupMessage       *msg,
                 GTlsDatabase      *tls_database,
                 guint              keepalive_seconds,
                 gsize              max_incoming_payload,
                 TocsinLinkHandler  handler,
                 gpointer           user_data)
{
  TocsinLink *link;

  g_return_val_if_fail (SOUP_IS_MESSAGE (msg), NULL);
  g_return_val_if_fail (handler != NULL, NULL);

  link = g_new0 (TocsinLink, 1);
  g_atomic_ref_count_init (&link->ref);
  link->context = g_main_context_ref_thread_default ();
  link->handler = handler;
  link->user_data = user_data;
  link->tls_database = tls_database ? g_object_ref (tls_database) : NULL;
  link->keepalive_seconds = keepalive_seconds;
  link->max_payload = max_incoming_payload;
  link->cancellable = g_cancellable_new ();
  link->msg = g_object_ref (msg);
  link->close_code = SOUP_WEBSOCKET_CLOSE_NORMAL;
  g_mutex_init (&link->lock);
  g_cond_init (&link->drained);
  run_in_io (link, connect_in_io);
  return link;
}

typedef struct
{
  TocsinLink *link;
  char       *text;
} SendData;

static gboolean
send_in_io (gpointer data)
{
  SendData *send = data;
  SoupWebsocketConnection *ws = send->link->ws;

  if (ws && soup_websocket_connection_get_state (ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_send_text (ws, send->text);
  return G_SOURCE_REMOVE;
}

static void
send_data_free (gpointer data)
{
  SendData *send = data;

  tocsin_link_unref (send->link);
  g_free (send->text);
  g_free (send);
}

void
tocsin_link_send_text (TocsinLink *link,
                       const char *text)
{
  SendData *send;

  g_return_if_fail (link != NULL);
  g_return_if_fail (text != NULL);

  send = g_new0 (SendData, 1);
  send->link = tocsin_link_ref (link);
  send->text = g_strdup (text);
  g_main_context_invoke_full (io_context (), G_PRIORITY_DEFAULT, send_in_io, send,
                              send_data_free);
}

static gboolean
close_in_io (gpointer data)
{
  TocsinLink *link = data;

  if (link->ws)
    close_socket (g_steal_pointer (&link->ws), link, link->close_code);
  return G_SOURCE_REMOVE;
}

void
tocsin_link_close (TocsinLink *link,
                   gushort     code)
{
  GQueue dropped = G_QUEUE_INIT;

  g_return_if_fail (link != NULL);

  g_mutex_lock (&link->lock);
  if (link->closed)
    {
      g_mutex_unlock (&link->lock);
      return;
    }
  link->closed = TRUE;
  dropped = link->events;
  g_queue_init (&link->events);
  link->queued_bytes = 0;
  g_cond_broadcast (&link->drained);
  g_mutex_unlock (&link->lock);

  g_queue_clear_full (&dropped, (GDestroyNotify) queued_event_free);
  /* Read on the I/O thread only after the cancellable, which it checks first. */
  link->close_code = code;
  g_cancellable_cancel (link->cancellable);
  run_in_io (link, close_in_io);
}
