/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-tls.c: `tocsin-relay serve --tls-cert --tls-key` as peers see it. A client that
 * trusts the relay's (self-signed) CA rings over https and receives over wss; one that does not
 * is refused by its TLS library; plain HTTP and a stalled handshake on the TLS port cost the
 * relay nothing; the settings also work from a --config file; a bad key file stops the relay
 * with a sentence naming it.
 */
#define G_LOG_DOMAIN "test-relay-tls"

#include "config.h"

#include <string.h>

#include "tocsin-test-relay.h"
#include "tocsin-test-tls.h"

typedef struct
{
  TocsinTestPki   *pki;
  TocsinTestRelay *relay;
  JsonObject      *channel;
} Fixture;

static TocsinTestRelay *
start_tls_relay (TocsinTestPki *pki,
                 const char    *extra)
{
  g_autofree char *cert = g_strdup_printf ("--tls-cert=%s", pki->cert_file);
  g_autofree char *key = g_strdup_printf ("--tls-key=%s", pki->key_file);
  const char * const args[] = { cert, key, extra, NULL };
  TocsinTestRelay *relay = tocsin_test_relay_start (NULL, args);
  g_autoptr(GTlsDatabase) database = tocsin_test_pki_database (pki->ca_file);

  /* The harness's session speaks for a client that was told to trust our CA. */
  soup_session_set_tls_database (relay->session, database);
  return relay;
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->pki = tocsin_test_pki_new ();
  f->relay = start_tls_relay (f->pki, data);
  f->channel = tocsin_test_relay_create_channel (f->relay, "Secure alerts", "{{title}}",
                                                 NULL, NULL, NULL);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_pointer (&f->channel, json_object_unref);
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
  g_clear_pointer (&f->pki, tocsin_test_pki_free);
}

/* GET / through @session (not the harness's); returns the status, or 0 with @error. */
static guint
get_root (SoupSession     *session,
          TocsinTestRelay *relay,
          const char      *base_url,
          GError         **error)
{
  g_autofree char *url = g_strconcat (base_url ? base_url : relay->base_url, "/", NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", url);
  g_autoptr(GBytes) body = soup_session_send_and_read (session, msg, NULL, error);

  return body ? soup_message_get_status (msg) : 0;
}

/* The relay says where it listens, and every URL it gives out, with https and wss. */
static void
test_urls_are_https (Fixture       *f,
                     gconstpointer  data)
{
  const char *webhook = json_object_get_string_member (f->channel, "webhook_url");
  const char *subscribe = json_object_get_string_member (f->channel, "subscribe_url");

  g_assert_true (g_str_has_prefix (f->relay->base_url, "https://127.0.0.1:"));
  g_assert_true (g_str_has_prefix (webhook, f->relay->base_url));
  g_assert_true (g_str_has_prefix (subscribe, f->relay->base_url));
  if (json_object_has_member (f->channel, "websocket_url"))
    g_assert_true (g_str_has_prefix (json_object_get_string_member (f->channel, "websocket_url"),
                                     "wss://127.0.0.1:"));
}

/* A trusting client rings over https (twice on one session: keep-alive through TLS) and a
 * subscriber receives both over wss. */
static void
test_ring_https_receive_wss (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SoupWebsocketConnection) ws = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *ws_path = g_strdup_printf ("/s/%s/ws",
                                              json_object_get_string_member (f->channel,
                                                                             "subscribe_token"));
  const char *trigger = json_object_get_string_member (f->channel, "trigger_token");

  ws = tocsin_test_websocket_connect (f->relay, ws_path, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (g_uri_get_scheme (soup_websocket_connection_get_uri (ws)),
                                   "wss"));
  tocsin_test_websocket_collect (ws, frames);

  for (guint i = 1; i <= 2; i++)
    {
      g_autofree char *path = g_strdup_printf ("/t/%s?title=Disk%%20full%%20%u", trigger, i);
      g_autoptr(JsonNode) node = NULL;
      guint status = 0;

      node = tocsin_test_http_json (f->relay, "GET", path, NULL, NULL, NULL, &status);
      g_assert_cmpuint (status, ==, 200);
    }

  TOCSIN_WAIT_UNTIL (frames->len >= 2);
  g_assert_nonnull (strstr (frames->pdata[0], "Disk full 1"));
  g_assert_nonnull (strstr (frames->pdata[1], "Disk full 2"));
  soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  TOCSIN_WAIT_UNTIL (soup_websocket_connection_get_state (ws) == SOUP_WEBSOCKET_STATE_CLOSED);
}

/* Clients that do not trust the CA (the system's trust only, or another CA) are refused by
 * their TLS library, for https and wss alike; the relay goes on serving the trusting one. */
static void
test_untrusted_refused (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(SoupSession) system_trust = soup_session_new ();
  g_autoptr(SoupSession) other_trust = soup_session_new ();
  g_autoptr(GTlsDatabase) other = tocsin_test_pki_database (f->pki->other_ca_file);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  g_assert_cmpuint (get_root (system_trust, f->relay, NULL, &error), ==, 0);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_clear_error (&error);

  soup_session_set_tls_database (other_trust, other);
  g_assert_cmpuint (get_root (other_trust, f->relay, NULL, &error), ==, 0);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_clear_error (&error);

  /* wss with the wrong trust: the harness's session, told to trust the other CA. */
  soup_session_set_tls_database (f->relay->session, other);
  {
    g_autofree char *path = g_strdup_printf ("/s/%s/ws",
                                             json_object_get_string_member (f->channel,
                                                                            "subscribe_token"));
    g_autoptr(SoupWebsocketConnection) ws = tocsin_test_websocket_connect (f->relay, path,
                                                                           &error);

    g_assert_null (ws);
    g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
    g_clear_error (&error);
  }

  /* The refused handshakes harmed nothing. */
  {
    g_autoptr(GTlsDatabase) right = tocsin_test_pki_database (f->pki->ca_file);

    soup_session_set_tls_database (f->relay->session, right);
  }
  node = tocsin_test_http_json (f->relay, "GET", "/", NULL, NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (node), "name"), ==,
                   "tocsin-relay");
}

/* Plain HTTP sent to the TLS port gets no plain-text answer (nothing leaks unencrypted), and
 * the relay keeps serving TLS clients. */
static void
test_plain_http_on_tls_port (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(SoupSession) plain = soup_session_new_with_options ("timeout", 30, NULL);
  g_autofree char *http_url = g_strdup_printf ("http://127.0.0.1:%u", f->relay->port);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  g_assert_cmpuint (get_root (plain, f->relay, http_url, &error), ==, 0);
  g_assert_nonnull (error);
  g_assert_false (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));

  node = tocsin_test_http_json (f->relay, "GET", "/", NULL, NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
}

/* A body past max-body is refused as it arrives (outside libsoup) with a 413 the client can
 * read: written through TLS, not as plain text on the socket. */
static void
test_too_large_413 (Fixture       *f,
                    gconstpointer  data)
{
  g_autofree char *path = g_strdup_printf ("/t/%s", json_object_get_string_member (f->channel,
                                                                                  "trigger_token"));
  g_autofree char *body = g_malloc (200 * 1024);
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  memset (body, 'a', 200 * 1024);
  body[200 * 1024 - 1] = '\0';
  node = tocsin_test_http_json (f->relay, "POST", path, "text/plain", body, NULL, &status);
  g_assert_cmpuint (status, ==, 413);
  g_assert_nonnull (strstr (json_object_get_string_member (json_node_get_object (node), "error"),
                            "larger than this relay takes"));
}

/* A peer that opens a TCP connection and never starts the handshake is closed after the idle
 * timeout (here 1 s; the wait's own deadline is 20 s), like an idle plain connection. */
static void
test_stalled_handshake_closed (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  GInputStream *input;
  char byte;
  gssize n;

  connection = g_socket_client_connect_to_host (client, "127.0.0.1", f->relay->port, NULL,
                                                &error);
  g_assert_no_error (error);
  /* A blocking read with a deadline well past the relay's: EOF (or a reset) is the relay's
   * doing; a timeout here would be the test's and fails it. */
  g_socket_set_timeout (g_socket_connection_get_socket (connection), 20);
  input = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  n = g_input_stream_read (input, &byte, 1, NULL, &error);
  if (n < 0)
    {
      g_assert_false (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
    }
  else
    g_assert_cmpint (n, ==, 0);
}

/* tls-cert and tls-key in the [relay] group of --config do the same as the flags. */
static void
test_config_file (void)
{
  g_autoptr(TocsinTestPki) pki = tocsin_test_pki_new ();
  g_autofree char *config = g_build_filename (pki->dir, "relay.conf", NULL);
  g_autofree char *contents = g_strdup_printf ("[relay]\ntls-cert=%s\ntls-key=%s\n",
                                               pki->cert_file, pki->key_file);
  g_autofree char *config_arg = g_strdup_printf ("--config=%s", config);
  const char * const args[] = { config_arg, NULL };
  g_autoptr(TocsinTestRelay) relay = NULL;
  g_autoptr(GTlsDatabase) database = tocsin_test_pki_database (pki->ca_file);
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;
  guint status = 0;

  g_file_set_contents (config, contents, -1, &error);
  g_assert_no_error (error);
  relay = tocsin_test_relay_start (NULL, args);
  g_assert_true (g_str_has_prefix (relay->base_url, "https://"));
  soup_session_set_tls_database (relay->session, database);
  node = tocsin_test_http_json (relay, "GET", "/", NULL, NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
}

/* A key that is not there stops `serve` at once with a sentence naming the file, instead of
 * serving plain HTTP where the operator asked for TLS. */
static void
test_bad_key_refused (void)
{
  g_autoptr(TocsinTestPki) pki = tocsin_test_pki_new ();
  g_autofree char *data_dir = g_build_filename (pki->dir, "data", NULL);
  g_autofree char *missing = g_build_filename (pki->dir, "no-such.key", NULL);
  g_autofree char *cert = g_strdup_printf ("--tls-cert=%s", pki->cert_file);
  g_autofree char *key = g_strdup_printf ("--tls-key=%s", missing);
  g_autofree char *dir = g_strdup_printf ("--data-dir=%s", data_dir);
  g_auto(GStrv) argv = tocsin_test_relay_argv ("serve", "--listen=127.0.0.1:0", dir, cert, key,
                                                NULL);
  g_autoptr(GSubprocess) process = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;

  process = g_subprocess_newv ((const char * const *) argv,
                               G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                               &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), !=, 0);
  g_assert_null (strstr (out, "Listening on"));
  g_assert_nonnull (strstr (err, missing));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/relay/tls/urls-are-https", Fixture, NULL, fixture_setup,
              test_urls_are_https, fixture_teardown);
  g_test_add ("/relay/tls/ring-https-receive-wss", Fixture, NULL, fixture_setup,
              test_ring_https_receive_wss, fixture_teardown);
  g_test_add ("/relay/tls/untrusted-refused", Fixture, NULL, fixture_setup,
              test_untrusted_refused, fixture_teardown);
  g_test_add ("/relay/tls/plain-http-on-tls-port", Fixture, NULL, fixture_setup,
              test_plain_http_on_tls_port, fixture_teardown);
  g_test_add ("/relay/tls/too-large-413", Fixture, NULL, fixture_setup, test_too_large_413,
              fixture_teardown);
  g_test_add ("/relay/tls/stalled-handshake-closed", Fixture, "--idle-timeout=1", fixture_setup,
              test_stalled_handshake_closed, fixture_teardown);
  g_test_add_func ("/relay/tls/config-file", test_config_file);
  g_test_add_func ("/relay/tls/bad-key-refused", test_bad_key_refused);

  return g_test_run ();
}
