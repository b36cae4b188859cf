/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-websocket.h: the server side of a WebSocket (RFC 6455) over a connection taken
 * from libsoup after the handshake. Frames to the client are built once and shared: a message
 * that goes to 10,000 subscribers is framed once, and each connection only queues a reference to
 * the same bytes. Writes are queued and written on tocsin_relay_websocket_flush(), so that what a
 * main-loop turn sends to one connection leaves in one system call.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _TocsinRelayWebsocket TocsinRelayWebsocket;

typedef struct
{
  /* A whole message from the client (fragments joined, unmasked); text is valid UTF-8. */
  void (*message) (gpointer      user_data,
                   gboolean      text,
                   const guint8 *data,
                   gsize         length);
  /* Bytes of data frames (those given to tocsin_relay_websocket_queue()) that reached the
   * socket so far; control frames are not counted. */
  void (*written) (gpointer      user_data,
                   guint64       total);
  /* The connection is closed; called once, from the main loop, never from inside a call into
   * this module. Not called after tocsin_relay_websocket_abort(). */
  void (*closed)  (gpointer      user_data);
} TocsinRelayWebsocketFuncs;

#define TOCSIN_RELAY_WEBSOCKET_TEXT  0x1
#define TOCSIN_RELAY_WEBSOCKET_CLOSE 0x8
#define TOCSIN_RELAY_WEBSOCKET_PING  0x9
#define TOCSIN_RELAY_WEBSOCKET_PONG  0xA

/* A server frame (unmasked, final) with @opcode and @payload: header and payload in one block. */
GBytes               *tocsin_relay_websocket_frame_new  (guint8                           opcode,
                                                         const void                      *payload,
                                                         gsize                            length);

/* @socket is the descriptor under @stream, watched by the relay's poller; its timeout (GSocket's)
 * is how long the client may stay silent. */
TocsinRelayWebsocket *tocsin_relay_websocket_new        (GIOStream                       *stream,
                                                         GSocket                         *socket,
                                                         gsize                            max_incoming,
                                                         const TocsinRelayWebsocketFuncs *funcs,
                                                         gpointer                         user_data);
TocsinRelayWebsocket *tocsin_relay_websocket_ref        (TocsinRelayWebsocket            *self);
/* The plain TCP socket under the stream (not for TLS): a close then shuts its write side and
 * reads to the client's end, so that the close frame is not lost to a reset. */
void                  tocsin_relay_websocket_set_socket (TocsinRelayWebsocket            *self,
                                                         GSocket                         *socket);
void                  tocsin_relay_websocket_unref      (TocsinRelayWebsocket            *self);

gboolean              tocsin_relay_websocket_is_open    (TocsinRelayWebsocket            *self);
/* Bytes of control frames (pongs, pings, the close) queued and not yet written. */
gsize                 tocsin_relay_websocket_get_control_pending (TocsinRelayWebsocket *self);
/* Queues @frame (from tocsin_relay_websocket_frame_new()); nothing is written until
 * tocsin_relay_websocket_flush(). Ignored unless open. */
void                  tocsin_relay_websocket_queue      (TocsinRelayWebsocket            *self,
                                                         GBytes                          *frame);
/* Queues a ping (a control frame: it goes before data not yet begun), unless one is waiting
 * already; written on the next flush. */
void                  tocsin_relay_websocket_queue_ping (TocsinRelayWebsocket            *self,
                                                         GBytes                          *frame);
/* Writes what is queued, as much as the socket takes now; the rest follows when it is writable. */
void                  tocsin_relay_websocket_flush      (TocsinRelayWebsocket            *self);
/* Starts the closing handshake: frames not yet begun are dropped, the close frame is sent, and
 * the connection closes when the client answers (or 5 s later). */
void                  tocsin_relay_websocket_close      (TocsinRelayWebsocket            *self,
                                                         gushort                          code,
                                                         const char                      *reason);
/* Closes the connection at once, without a close frame and without calling closed(). */
void                  tocsin_relay_websocket_abort      (TocsinRelayWebsocket            *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRelayWebsocket, tocsin_relay_websocket_unref)

G_END_DECLS
