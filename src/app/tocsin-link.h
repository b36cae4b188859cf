/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-link.h: one WebSocket to a relay, read and parsed on a thread of its own.
 *
 * libsoup reads everything a socket holds in one dispatch and emits "message" for each frame:
 * after a laptop wakes, thousands of frames in one main-loop iteration (8–25 ms of libsoup's
 * read loop alone, before any of ours). A link runs the socket, libsoup's session and the
 * frame parser (tocsin_protocol_parse_frame()) on one shared I/O thread ("tocsin-net", its own
 * GMainContext), and hands the main context parsed frames and socket events, in order, through
 * one source that handles them in time slices. TocsinConnection keeps the policy (reconnects,
 * cursors, keepalive); the link only carries one socket from connecting to closed.
 *
 * Memory stays bounded: past TOCSIN_LINK_MAX_QUEUED_BYTES of frames not yet handled, the I/O
 * thread stops reading until the main context has taken half of them (TCP then pushes back on
 * the relay, which may close a subscriber too slow for it: 4008, and the cursors resume).
 */
#pragma once

#include <libsoup/soup.h>

#include "tocsin-protocol.h"

G_BEGIN_DECLS

#define TOCSIN_LINK_MAX_QUEUED_BYTES (16 * 1024 * 1024)

typedef struct _TocsinLink TocsinLink;

typedef enum
{
  TOCSIN_LINK_CONNECTED,       /* the handshake succeeded */
  TOCSIN_LINK_CONNECT_FAILED,  /* @error says why; nothing follows */
  TOCSIN_LINK_FRAME,           /* @frame, parsed */
  TOCSIN_LINK_BAD_FRAME,       /* @error: a frame the parser refused */
  TOCSIN_LINK_PONG,
  TOCSIN_LINK_ERROR,           /* @error (libsoup's "error"); the socket may go on */
  TOCSIN_LINK_CLOSED,          /* @code, the peer's close code; nothing follows */
} TocsinLinkEventType;

typedef struct
{
  TocsinLinkEventType  type;
  TocsinFrame         *frame;
  GError              *error;
  gushort              code;
} TocsinLinkEvent;

/* Called in the main context the link was made in, once per event, in order. Not called again
 * after tocsin_link_close() (also when the handler itself closes the link). */
typedef void (*TocsinLinkHandler) (TocsinLink            *link,
                                   const TocsinLinkEvent *event,
                                   gpointer               user_data);

/* Connects to @msg's URL (a GET to a ws:// or wss:// URL) on the I/O thread. @tls_database:
 * extra trust for a certificate the system does not trust (may be NULL). */
TocsinLink *tocsin_link_new        (SoupMessage       *msg,
                                    GTlsDatabase      *tls_database,
                                    guint              keepalive_seconds,
                                    gsize              max_incoming_payload,
                                    TocsinLinkHandler  handler,
                                    gpointer           user_data);
/* Sends @text if the socket is open (dropped otherwise, as before the connect). */
void        tocsin_link_send_text  (TocsinLink        *link,
                                    const char        *text);
/* Closes the socket with @code (without waiting for the peer) and drops every event not yet
 * handled; the handler is not called again. Then unref. */
void        tocsin_link_close      (TocsinLink        *link,
                                    gushort            code);
TocsinLink *tocsin_link_ref        (TocsinLink        *link);
void        tocsin_link_unref      (TocsinLink        *link);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinLink, tocsin_link_unref)

G_END_DECLS
