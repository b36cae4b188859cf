/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-tls.c: TLS for the relay's accepted connections (see tocsin-relay-tls.h).
 *
 * Why not SoupServer's own "tls-certificate": libsoup 3.2 only does TLS on sockets it accepted
 * itself (soup_server_connection_new() in soup-server-connection.c); streams handed in with
 * soup_server_accept_iostream(), as the relay does for its backlog, cap and timeouts, are taken
 * as they are. A GTlsConnection handed in is recognised (soup_server_connection_is_ssl() tests
 * G_IS_TLS_CONNECTION), so messages carry https URIs.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <glib/gi18n.h>

#include "tocsin-relay-tls.h"

/* On the peer's GSocketAddress, which libsoup keeps for the connection's life: the TLS stream.
 * Not on the GSocket: the stream holds the socket, so that would be a reference cycle. */
#define TLS_STREAM_KEY "tocsin-relay-tls-stream"

GTlsCertificate *
tocsin_relay_tls_load (const char  *cert_file,
                       const char  *key_file,
                       GError     **error)
{
  g_autoptr(GError) local_error = NULL;
  GTlsCertificate *certificate;

  g_return_val_if_fail (cert_file != NULL, NULL);

  if (key_file != NULL)
    certificate = g_tls_certificate_new_from_files (cert_file, key_file, &local_error);
  else
    certificate = g_tls_certificate_new_from_file (cert_file, &local_error);
  if (certificate == NULL)
    {
      if (key_file != NULL)
        g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
                     _("Could not use the TLS certificate %s with the key %s: %s"),
                     cert_file, key_file, local_error->message);
      else
        g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
                     _("Could not use the TLS certificate and key in %s: %s"),
                     cert_file, local_error->message);
      return NULL;
    }
  return certificate;
}

typedef struct
{
  SoupServer       *server;
  GTlsConnection   *tls;
  GSocket          *socket;
  GSocketAddress   *local;
  GSocketAddress   *remote;
  GCancellable     *cancellable;
  guint             timeout_id;
} Handshake;

static void
handshake_free (Handshake *handshake)
{
  g_clear_handle_id (&handshake->timeout_id, g_source_remove);
  g_clear_object (&handshake->server);
  g_clear_object (&handshake->tls);
  g_clear_object (&handshake->socket);
  g_clear_object (&handshake->local);
  g_clear_object (&handshake->remote);
  g_clear_object (&handshake->cancellable);
  g_free (handshake);
}

/* The GSocket timeout already ends a handshake that goes silent; this also ends one that
 * trickles a byte now and then, so that a handshake can never take longer than a request. */
static gboolean
handshake_too_slow (gpointer user_data)
{
  Handshake *handshake = user_data;

  handshake->timeout_id = 0;
  g_cancellable_cancel (handshake->cancellable);
  return G_SOURCE_REMOVE;
}

static void
handshake_done (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Handshake *handshake = user_data;
  g_autoptr(GError) error = NULL;

  if (!g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error))
    {
      /* A scanner, a client that does not trust us, plain HTTP on the TLS port: the peer's
       * business, not the operator's, so only a debug message. Closing the socket itself sends
       * no close_notify, which the peer could not read anyway. */
      g_autofree char *peer = NULL;

      if (G_IS_INET_SOCKET_ADDRESS (handshake->remote))
        peer = g_inet_address_to_string (
          g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (handshake->remote)));
      g_debug ("TLS handshake with %s failed: %s", peer ? peer : "a peer", error->message);
      g_socket_close (handshake->socket, NULL);
      handshake_free (handshake);
      return;
    }

  g_object_set_data_full (G_OBJECT (handshake->remote), TLS_STREAM_KEY,
                          g_object_ref (handshake->tls), g_object_unref);
  soup_server_accept_iostream (handshake->server, G_IO_STREAM (handshake->tls),
                               handshake->local, handshake->remote, NULL);
  handshake_free (handshake);
}

void
tocsin_relay_tls_accept (SoupServer        *server,
                         GTlsCertificate   *certificate,
                         GSocketConnection *connection,
                         GSocketAddress    *local,
                         GSocketAddress    *remote,
                         guint              timeout_seconds)
{
  /* ALPN: libsoup serves HTTP/1.1 on streams handed to it, so never let a client pick h2. */
  const char * const protocols[] = { "http/1.1", NULL };
  g_autoptr(GError) error = NULL;
  GSocket *socket;
  GIOStream *tls;
  Handshake *handshake;

  g_return_if_fail (SOUP_IS_SERVER (server));
  g_return_if_fail (G_IS_TLS_CERTIFICATE (certificate));
  g_return_if_fail (G_IS_SOCKET_CONNECTION (connection));

  socket = g_socket_connection_get_socket (connection);
  tls = g_tls_server_connection_new (G_IO_STREAM (connection), certificate, &error);
  if (tls == NULL)
    {
      /* No TLS backend (glib-networking missing): tocsin_relay_tls_load() would have failed
       * first, so this is next to impossible; still, never serve plain text in its place. */
      g_message ("Could not start TLS on a connection: %s", error->message);
      g_socket_close (socket, NULL);
      return;
    }
  /* As libsoup's own TLS server: a peer that just drops the connection is not an attack. */
  g_tls_connection_set_require_close_notify (G_TLS_CONNECTION (tls), FALSE);
  g_tls_connection_set_advertised_protocols (G_TLS_CONNECTION (tls), protocols);

  handshake = g_new0 (Handshake, 1);
  handshake->server = g_object_ref (server);
  handshake->tls = G_TLS_CONNECTION (tls);
  handshake->socket = g_object_ref (socket);
  handshake->local = g_object_ref (local);
  handshake->remote = g_object_ref (remote);
  handshake->cancellable = g_cancellable_new ();
  handshake->timeout_id = g_timeout_add_seconds (MAX (timeout_seconds, 1), handshake_too_slow,
                                                 handshake);
  g_tls_connection_handshake_async (handshake->tls, G_PRIORITY_DEFAULT, handshake->cancellable,
                                    handshake_done, handshake);
}

GIOStream *
tocsin_relay_tls_get_stream (GSocketAddress *remote,
                             GIOStream      *fallback)
{
  GIOStream *tls = remote ? g_object_get_data (G_OBJECT (remote), TLS_STREAM_KEY) : NULL;

  return tls ? tls : fallback;
}

void
tocsin_relay_tls_send (GSocketAddress *remote,
                       GSocket        *socket,
                       const char     *data,
                       gsize           length)
{
  GIOStream *tls = tocsin_relay_tls_get_stream (remote, NULL);
  GOutputStream *output;

  if (tls == NULL)
    {
      g_socket_send (socket, data, length, NULL, NULL);
      return;
    }
  /* Plain bytes on a TLS socket would only garble the stream: they go through TLS. A short
   * response fits a fresh send buffer; if not, the peer sees the connection close instead. */
  output = g_io_stream_get_output_stream (tls);
  if (G_IS_POLLABLE_OUTPUT_STREAM (output))
    g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (output), data, length,
                                                NULL, NULL);
}
