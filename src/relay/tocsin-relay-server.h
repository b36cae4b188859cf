/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-server.h: the `serve` command: listening sockets (our own, with a big backlog),
 * the connection cap, idle timeouts, routing, and graceful shutdown.
 */
#pragma once

#include <json-glib/json-glib.h>
#include "tocsin-relay.h"

G_BEGIN_DECLS

/* `tocsin-relay serve ...` (argv[0] is "serve"); returns the exit status. */
int       tocsin_relay_serve (int argc, char **argv);

/* Parses a listen address ("HOST:PORT", "[::1]:PORT", "*:PORT", "localhost:PORT"). */
gboolean  tocsin_relay_server_parse_listen (const char    *text,
                                            GInetAddress **address,
                                            guint16       *port,
                                            GError       **error);

/* Replies {"error": @sentence} with @status (the sentence is already translated). */
void      tocsin_relay_server_reply_error (SoupServerMessage *msg,
                                           guint              status,
                                           const char        *sentence);
/* Replies @object as JSON with @status. */
void      tocsin_relay_server_reply_json  (SoupServerMessage *msg,
                                           guint              status,
                                           JsonObject        *object);
/* The same with JSON text already written (@data is taken, g_free'd by libsoup). */
void      tocsin_relay_server_reply_json_text (SoupServerMessage *msg,
                                               guint              status,
                                               char              *data,
                                               gsize              len);
/* "203.0.113.5:40000" or "[2001:db8::1]:40000"; "unknown" when libsoup does not know. */
char     *tocsin_relay_server_peer_string (SoupServerMessage *msg);
/* The client's IP address alone ("127.0.0.1", "::1"), or NULL: the connection's peer, or, when
 * that peer is one of the config's trusted-proxies, the address X-Forwarded-For names (the
 * rightmost one that is not a trusted proxy itself). The per-address limits count this. */
char     *tocsin_relay_server_client_address (TocsinRelay       *relay,
                                              SoupServerMessage *msg);
/* The accepted socket under @msg (NULL if it did not come through our listener). */
GSocket  *tocsin_relay_server_get_socket  (SoupServerMessage *msg);
/* TRUE when @msg's client prefers JSON over HTML (Accept: application/json). */
gboolean  tocsin_relay_server_wants_json  (SoupServerMessage *msg);

G_END_DECLS
