/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-test-tls"

#include "config.h"

#include <glib/gstdio.h>

#include "tocsin-test-relay.h"
#include "tocsin-test-tls.h"

/* Runs openssl with @args in @dir; fails the test, with openssl's own words, if it fails. */
static void
openssl (const char         *dir,
         const char * const *args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  int status = 0;

  g_ptr_array_add (argv, (gpointer) "openssl");
  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  if (!g_spawn_sync (dir, (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH |
                     G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err, &status, &error))
    g_error ("Could not run openssl (install Debian's openssl package): %s", error->message);
  if (!g_spawn_check_wait_status (status, &error))
    g_error ("openssl %s failed: %s\n%s", args[0], error->message, err);
}

static void
make_ca (const char *dir,
         const char *name,
         const char *common_name)
{
  g_autofree char *key = g_strdup_printf ("%s.key", name);
  g_autofree char *pem = g_strdup_printf ("%s.pem", name);
  g_autofree char *subject = g_strdup_printf ("/CN=%s", common_name);
  const char * const args[] = {
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", key, "-out", pem, "-days", "2", "-subj", subject,
    "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    NULL
  };

  openssl (dir, args);
}

TocsinTestPki *
tocsin_test_pki_new (void)
{
  TocsinTestPki *pki = g_new0 (TocsinTestPki, 1);
  g_autofree char *ext = NULL;
  g_autoptr(GError) error = NULL;
  const char * const csr_args[] = {
    "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", NULL
  };
  const char * const sign_args[] = {
    "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
    "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext", NULL
  };

  pki->dir = tocsin_test_make_tmpdir ("tocsin-tls-test");
  make_ca (pki->dir, "ca", "Tocsin Test CA");
  make_ca (pki->dir, "other-ca", "Some Other CA");
  ext = g_build_filename (pki->dir, "server.ext", NULL);
  g_file_set_contents (ext,
                       "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                       "basicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature,keyEncipherment\n"
                       "extendedKeyUsage=serverAuth\n", -1, &error);
  g_assert_no_error (error);
  openssl (pki->dir, csr_args);
  openssl (pki->dir, sign_args);

  pki->ca_file = g_build_filename (pki->dir, "ca.pem", NULL);
  pki->other_ca_file = g_build_filename (pki->dir, "other-ca.pem", NULL);
  pki->cert_file = g_build_filename (pki->dir, "server.pem", NULL);
  pki->key_file = g_build_filename (pki->dir, "server.key", NULL);
  return pki;
}

void
tocsin_test_pki_free (TocsinTestPki *pki)
{
  if (pki == NULL)
    return;
  tocsin_test_rmdir_recursive (pki->dir);
  g_free (pki->dir);
  g_free (pki->ca_file);
  g_free (pki->other_ca_file);
  g_free (pki->cert_file);
  g_free (pki->key_file);
  g_free (pki);
}

GTlsDatabase *
tocsin_test_pki_database (const char *ca_file)
{
  g_autoptr(GError) error = NULL;
  GTlsDatabase *database = g_tls_file_database_new (ca_file, &error);

  g_assert_no_error (error);
  return database;
}
