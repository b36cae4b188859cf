/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-tls.h: the one rule for a relay's certificate that the system does not trust. The
 * connection, the subscribe-link lookup and the owner API each answer libsoup's
 * "accept-certificate" with it, reading their own CA database (the file chosen in the
 * preferences) at the time the certificate arrives.
 */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

/* TRUE when @database (may be NULL: then FALSE) verifies @certificate for the host and port of
 * @msg's URI, as a server certificate. */
gboolean tocsin_tls_accept_with_database (GTlsDatabase    *database,
                                          SoupMessage     *msg,
                                          GTlsCertificate *certificate);

G_END_DECLS
