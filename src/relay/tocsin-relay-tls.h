/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-tls.h: HTTPS and WSS for `tocsin-relay serve --tls-cert=FILE --tls-key=FILE`.
 *
 * The server accepts TCP connections itself (tocsin-relay-server.c). With TLS on, each accepted
 * connection is wrapped in a GTlsServerConnection and handshaken here, before libsoup sees it:
 * a peer that fails or stalls the handshake is closed quietly and never costs libsoup anything.
 * libsoup then gets the TLS stream, so its URIs say https and its WebSockets are wss.
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* Reads a PEM certificate (chain) and its private key. @key_file may be NULL when the key is in
 * @cert_file. The error says which file and why, for a person to act on. */
GTlsCertificate *tocsin_relay_tls_load       (const char      *cert_file,
                                              const char      *key_file,
                                              GError         **error);

/* Wraps @connection (just accepted, not yet given to libsoup) in TLS with @certificate, runs
 * the handshake (bounded by @timeout_seconds) and then hands the TLS stream to @server with
 * soup_server_accept_iostream (@local, @remote: as for a plain connection; @remote keeps the
 * TLS stream, see tocsin_relay_tls_get_stream()). A failed handshake closes the socket. */
void             tocsin_relay_tls_accept     (SoupServer        *server,
                                              GTlsCertificate   *certificate,
                                              GSocketConnection *connection,
                                              GSocketAddress    *local,
                                              GSocketAddress    *remote,
                                              guint              timeout_seconds);

/* The TLS stream of the connection whose peer address is @remote, or @fallback when the
 * connection is plain. What to hand libsoup again when a connection is recycled. */
GIOStream       *tocsin_relay_tls_get_stream (GSocketAddress    *remote,
                                              GIOStream         *fallback);

/* Writes @data (a whole short HTTP response written outside libsoup) to the peer at @remote:
 * through its TLS stream if it has one, else straight on @socket. Best effort, never blocks. */
void             tocsin_relay_tls_send       (GSocketAddress    *remote,
                                              GSocket           *socket,
                                              const char        *data,
                                              gsize              length);

G_END_DECLS
