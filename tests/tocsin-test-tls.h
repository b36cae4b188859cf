/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-test-tls.h: a throwaway PKI for the TLS tests: a self-signed CA, a server certificate
 * it signed for 127.0.0.1 and localhost, and a second, unrelated CA (the "wrong" one). Made
 * with the openssl command (Debian's openssl package) when the test runs; nothing is kept.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct
{
  char *dir;            /* temp dir holding all of it; removed by tocsin_test_pki_free */
  char *ca_file;        /* PEM: the CA that signed the server certificate */
  char *other_ca_file;  /* PEM: a CA that signed nothing the relay uses */
  char *cert_file;      /* PEM: server certificate, SAN IP:127.0.0.1, DNS:localhost */
  char *key_file;       /* PEM: its private key */
} TocsinTestPki;

TocsinTestPki *tocsin_test_pki_new         (void);
void           tocsin_test_pki_free        (TocsinTestPki *pki);
/* A GTlsDatabase trusting only @ca_file (asserts it loads). */
GTlsDatabase  *tocsin_test_pki_database    (const char    *ca_file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinTestPki, tocsin_test_pki_free)

G_END_DECLS
