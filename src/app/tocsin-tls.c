/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-tls"

#include "config.h"

#include "tocsin-tls.h"

gboolean
tocsin_tls_accept_with_database (GTlsDatabase    *database,
                                 SoupMessage     *msg,
                                 GTlsCertificate *certificate)
{
  g_autoptr(GSocketConnectable) identity = NULL;
  GUri *uri;

  g_return_val_if_fail (SOUP_IS_MESSAGE (msg), FALSE);
  g_return_val_if_fail (G_IS_TLS_CERTIFICATE (certificate), FALSE);

  /* The system did not trust it; the CA file from the preferences may. */
  if (database == NULL)
    return FALSE;
  uri = soup_message_get_uri (msg);
  identity = g_network_address_new (g_uri_get_host (uri), g_uri_get_port (uri));
  return g_tls_database_verify_chain (database, certificate,
                                      G_TLS_DATABASE_PURPOSE_AUTHENTICATE_SERVER, identity, NULL,
                                      G_TLS_DATABASE_VERIFY_NONE, NULL, NULL) == 0;
}
