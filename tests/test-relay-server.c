/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-server.c: the serve command as a peer sees it: listening (port 0, IPv6), the 404
 * page, the idle timeout, the connection cap, the subscribe page; and the settings parser.
 */
#define G_LOG_DOMAIN "test-relay-server"

#include "config.h"

#include <string.h>

#include "tocsin-relay-config.h"
#include "tocsin-relay-head.h"
#include "tocsin-relay-page.h"
#include "tocsin-test-relay.h"

static GSocket *
connect_raw (TocsinTestRelay *relay)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, relay->port);
  g_autoptr(GError) error = NULL;
  GSocket *socket;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                         &error);
  g_assert_no_error (error);
  g_socket_connect (socket, address, NULL, &error);
  g_assert_no_error (error);
  g_socket_set_blocking (socket, FALSE);
  return socket;
}

/* TRUE once the peer closed @socket (a read returns end of file or a reset). */
static gboolean
peer_closed (GSocket *socket)
{
  char buffer[256];
  g_autoptr(GError) error = NULL;
  gssize n = g_socket_receive (socket, buffer, sizeof buffer, NULL, &error);

  if (n == 0)
    return TRUE;
  if (n < 0 && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return TRUE;
  return FALSE;
}

/* Reads one HTTP response (headers and a Content-Length body) from the blocking @socket into
 * @out; FALSE when the connection ends first. */
static gboolean
read_response (GSocket *socket,
               GString *pending,
               GString *out)
{
  for (;;)
    {
      const char *end = strstr (pending->str, "\r\n\r\n");
      char buffer[4096];
      gssize n;

      if (end != NULL)
        {
          gsize header_len = end + 4 - pending->str;
          g_autofree char *headers = g_ascii_strdown (pending->str, header_len);
          const char *cl = strstr (headers, "\r\ncontent-length:");
          gsize body_len;

          g_assert_nonnull (cl);
          body_len = g_ascii_strtoull (cl + strlen ("\r\ncontent-length:"), NULL, 10);
          if (pending->len >= header_len + body_len)
            {
              g_string_append_len (out, pending->str, header_len + body_len);
              g_string_erase (pending, 0, header_len + body_len);
              return TRUE;
            }
        }
      n = g_socket_receive (socket, buffer, sizeof buffer, NULL, NULL);
      if (n <= 0)
        return FALSE;
      g_string_append_len (pending, buffer, n);
    }
}

static void
test_keep_alive (void)
{
  const char *args[] = { "--idle-timeout=2", NULL };
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, args);
  g_autoptr(GSocket) socket = connect_raw (relay);
  g_autoptr(GString) pending = g_string_new (NULL);
  static const char request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  static const char missing[] = "GET /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  g_autoptr(GError) error = NULL;

  /* A blocking socket, so that a read waits for the relay; the timeout only stops a hang. */
  g_socket_set_blocking (socket, TRUE);
  g_socket_set_timeout (socket, 20);

  /* Three requests on one connection, one after the other: each is answered, and the relay
   * keeps the connection open between them (HTTP/1.1 keep-alive)... */
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GString) response = g_string_new (NULL);
      const char *text = i == 1 ? missing : request;

      g_socket_send (socket, text, strlen (text), NULL, &error);
      g_assert_no_error (error);
      g_assert_true (read_response (socket, pending, response));
      g_assert_true (g_str_has_prefix (response->str, i == 1 ? "HTTP/1.1 404" : "HTTP/1.1 200"));
      g_assert_null (strstr (response->str, "Connection: close"));
    }

  /* ...and pipelined ones too. */
  {
    g_autofree char *two = g_strconcat (request, request, NULL);

    g_socket_send (socket, two, strlen (two), NULL, &error);
    g_assert_no_error (error);
    for (guint i = 0; i < 2; i++)
      {
        g_autoptr(GString) response = g_string_new (NULL);

        g_assert_true (read_response (socket, pending, response));
        g_assert_true (g_str_has_prefix (response->str, "HTTP/1.1 200"));
      }
  }

  /* A kept-alive connection left idle is closed by the relay after the idle timeout (not kept
   * open and deaf, as libsoup 3.2 alone would), and the relay keeps serving. */
  {
    char buffer[64];
    gssize n = g_socket_receive (socket, buffer, sizeof buffer, NULL, &error);

    g_assert_no_error (error);
    g_assert_cmpint (n, ==, 0);
  }
  {
    g_autoptr(JsonNode) node = NULL;
    guint status = 0;

    node = tocsin_test_http_json (relay, "GET", "/", NULL, NULL, NULL, &status);
    g_assert_cmpuint (status, ==, 200);
  }
}

static void
test_root_and_not_found (void)
{
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, NULL);
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  g_assert_true (g_str_has_prefix (relay->base_url, "http://127.0.0.1:"));
  g_assert_cmpuint (relay->port, !=, 0);

  node = tocsin_test_http_json (relay, "GET", "/", NULL, NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (node), "name"), ==,
                   "tocsin-relay");
  g_clear_pointer (&node, json_node_unref);

  node = tocsin_test_http_json (relay, "GET", "/no/such/page", NULL, NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 404);
  g_assert_nonnull (json_object_get_string_member (json_node_get_object (node), "error"));
  g_clear_pointer (&node, json_node_unref);

  /* Token-shaped paths with junk are not routed anywhere either. */
  node = tocsin_test_http_json (relay, "GET", "/s/abc/def/ghi", NULL, NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 404);
}

static void
test_listen_ipv6 (void)
{
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-relay-v6");
  g_autofree char *data_arg = g_strdup_printf ("--data-dir=%s", dir);
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autofree char *line1 = NULL;
  g_autofree char *line2 = NULL;
  g_autofree char *url = NULL;
  g_auto(GStrv) argv = NULL;
  g_autoptr(GSocket) probe = g_socket_new (G_SOCKET_FAMILY_IPV6, G_SOCKET_TYPE_STREAM,
                                           G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) v6 = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV6);
  g_autoptr(GSocketAddress) v6any = g_inet_socket_address_new (v6, 0);

  if (probe == NULL || !g_socket_bind (probe, v6any, TRUE, NULL))
    {
      g_test_skip ("No IPv6 loopback here");
      tocsin_test_rmdir_recursive (dir);
      return;
    }

  argv = tocsin_test_relay_argv ("serve", "--listen=[::1]:0", "--listen=127.0.0.1:0", data_arg,
                                 NULL);
  process = g_subprocess_newv ((const char * const *) argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                               &error);
  g_assert_no_error (error);
  lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (process));
  line1 = g_data_input_stream_read_line_utf8 (lines, NULL, NULL, &error);
  g_assert_no_error (error);
  line2 = g_data_input_stream_read_line_utf8 (lines, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (line1, "Listening on http://[::1]:"));
  g_assert_true (g_str_has_prefix (line2, "Listening on http://127.0.0.1:"));

  url = g_strconcat (line1 + strlen ("Listening on "), "/", NULL);
  msg = soup_message_new ("GET", url);
  body = soup_session_send_and_read (session, msg, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);

  g_subprocess_send_signal (process, SIGTERM);
  g_subprocess_wait (process, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);
  tocsin_test_rmdir_recursive (dir);
}

static void
test_bad_listen (void)
{
  /* A data dir of its own: the relay creates what it is given (as root, anywhere). */
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-bad-listen-XXXXXX");
  g_autofree char *data_dir = g_strdup_printf ("--data-dir=%s", dir);
  g_auto(GStrv) argv = tocsin_test_relay_argv ("serve", "--listen=example.com", data_dir, NULL);
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  process = g_subprocess_newv ((const char * const *) argv,
                               G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                               &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_subprocess_get_exit_status (process), !=, 0);
  g_assert_nonnull (strstr (err, "--listen"));
  g_assert_null (strstr (out, "Listening on"));
  tocsin_test_rmdir_recursive (dir);
}

static void
test_idle_timeout (void)
{
  const char *args[] = { "--idle-timeout=1", NULL };
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, args);
  g_autoptr(GSocket) idle = connect_raw (relay);
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  /* A connection that never sends a request is closed by the relay... */
  TOCSIN_WAIT_UNTIL (peer_closed (idle));
  /* ...and the relay still serves everyone else. */
  node = tocsin_test_http_json (relay, "GET", "/", NULL, NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
}

static void
test_connection_cap (void)
{
  const char *args[] = { "--max-connections=2", NULL };
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, args);
  g_autoptr(GSocket) first = connect_raw (relay);
  g_autoptr(GSocket) second = connect_raw (relay);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autofree char *url = g_strconcat (relay->base_url, "/", NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  guint status = 0;

  /* Two idle connections fill it: the third is refused cleanly, with a reason. */
  {
    g_autoptr(SoupMessage) msg = soup_message_new ("GET", url);

    TOCSIN_WAIT_UNTIL (TRUE);
    body = soup_session_send_and_read (session, msg, NULL, &error);
    g_assert_no_error (error);
    status = soup_message_get_status (msg);
    g_assert_cmpuint (status, ==, 503);
    json_parser_load_from_data (parser, g_bytes_get_data (body, NULL), g_bytes_get_size (body),
                                &error);
    g_assert_no_error (error);
    g_assert_nonnull (json_object_get_string_member (json_node_get_object (json_parser_get_root (parser)),
                                                     "error"));
  }

  /* Once one goes away, there is room again. */
  g_socket_close (first, NULL);
  for (;;)
    {
      g_autoptr(SoupSession) fresh = soup_session_new ();
      g_autoptr(SoupMessage) msg = soup_message_new ("GET", url);
      g_autoptr(GBytes) again = soup_session_send_and_read (fresh, msg, NULL, NULL);

      if (soup_message_get_status (msg) == 200)
        break;
      g_assert_cmpuint (soup_message_get_status (msg), ==, 503);
      TOCSIN_WAIT_UNTIL (TRUE);
      g_usleep (50000);
    }
}

static void
test_subscribe_page (void)
{
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, NULL);
  g_autoptr(JsonObject) channel = tocsin_test_relay_create_channel (relay,
                                                                    "<script>alert(1)</script> & \"Ops\"",
                                                                    "<b>{{server_name}}</b>",
                                                                    NULL, NULL, NULL);
  g_autofree char *path = g_strdup_printf ("/s/%s",
                                           json_object_get_string_member (channel,
                                                                          "subscribe_token"));
  const char *accept_json[] = { "Accept", "application/json", NULL };
  const char *accept_html[] = { "Accept", "text/html,application/xhtml+xml,*/*;q=0.8", NULL };
  g_autoptr(GBytes) html = NULL;
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *escaped_url = NULL;
  const char *text;
  guint status;

  status = tocsin_test_http (relay, "GET", path, NULL, NULL, 0, accept_html, &html, &headers);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_content_type (headers, NULL), ==, "text/html");
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Referrer-Policy"), ==, "no-referrer");
  text = g_bytes_get_data (html, NULL);
  g_assert_null (strstr (text, "<script>"));
  g_assert_null (strstr (text, "<b>{{"));
  g_assert_nonnull (strstr (text, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Ops&quot;"));
  g_assert_nonnull (strstr (text, "&lt;b&gt;{{server_name}}&lt;/b&gt;"));
  g_assert_nonnull (strstr (text, "Open in Tocsin"));
  escaped_url = g_uri_escape_string (json_object_get_string_member (channel, "subscribe_url"),
                                     NULL, FALSE);
  g_assert_nonnull (strstr (text, escaped_url));
  g_assert_nonnull (strstr (text, "tocsin://subscribe?url=http%3A%2F%2F127.0.0.1"));
  g_assert_nonnull (strstr (text, "/sse"));
  g_assert_nonnull (strstr (text, "/json"));
  g_assert_nonnull (strstr (text, "ws://127.0.0.1"));

  node = tocsin_test_http_json (relay, "GET", path, NULL, NULL, accept_json, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (node), "name"), ==,
                   "<script>alert(1)</script> & \"Ops\"");
  g_assert_false (json_object_has_member (json_node_get_object (node), "trigger_token"));
  g_clear_pointer (&node, json_node_unref);

  node = tocsin_test_http_json (relay, "GET", "/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL,
                                NULL, accept_html, &status);
  g_assert_cmpuint (status, ==, 404);
}

/* The page renderer escapes on its own too (no relay needed). */
static void
test_page_render_escapes (void)
{
  g_autofree char *html = tocsin_relay_page_render ("a<b", "\"quoted\" & <i>", "{{x}}<", NULL,
                                                    "https://e.example/?a=1&b=<2>",
                                                    "https://relay.example/s/TOKEN");

  g_assert_null (strstr (html, "a<b"));
  g_assert_nonnull (strstr (html, "a&lt;b"));
  g_assert_nonnull (strstr (html, "&quot;quoted&quot; &amp; &lt;i&gt;"));
  g_assert_nonnull (strstr (html, "a=1&amp;b=&lt;2&gt;"));
  g_assert_nonnull (strstr (html, "wss://relay.example/s/TOKEN/ws"));
  g_assert_nonnull (strstr (html, "tocsin://subscribe?url=https%3A%2F%2Frelay.example%2Fs%2FTOKEN"));
}

static void
test_config_precedence (void)
{
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-relay-config");
  g_autofree char *file = g_build_filename (dir, "relay.conf", NULL);
  g_autofree char *config_arg = g_strdup_printf ("--config=%s", file);
  TocsinRelayServeConfig config;
  g_autoptr(GError) error = NULL;
  char *args[] = { "serve", config_arg, "--idle-timeout=2m", "--retention=0", NULL };
  char **argv = args;
  int argc = G_N_ELEMENTS (args) - 1;

  g_file_set_contents (file,
                       "[relay]\n"
                       "listen=[::1]:9000;127.0.0.1:9001\n"
                       "data-dir=/var/lib/tocsin-relay\n"
                       "public-url=https://relay.example.com/\n"
                       "idle-timeout=30\n"
                       "max-queue-bytes=2M\n"
                       "open-relay=no\n", -1, &error);
  g_assert_no_error (error);

  tocsin_relay_serve_config_init (&config);
  g_assert_true (tocsin_relay_serve_config_parse (&config, &argc, &argv, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (config.listen[0], ==, "[::1]:9000");
  g_assert_cmpstr (config.listen[1], ==, "127.0.0.1:9001");
  g_assert_cmpstr (config.relay.data_dir, ==, "/var/lib/tocsin-relay");
  g_assert_cmpstr (config.relay.public_url, ==, "https://relay.example.com");
  g_assert_cmpuint (config.relay.idle_timeout, ==, 120);   /* the flag wins */
  g_assert_cmpint (config.relay.retention_seconds, ==, 0);
  g_assert_cmpuint (config.relay.max_queue_bytes, ==, 2 * 1024 * 1024);
  g_assert_true (config.open_relay_set);
  g_assert_false (config.relay.open_relay);
  g_assert_cmpuint (config.relay.max_queue_frames, ==, 1000);  /* untouched default */
  tocsin_relay_serve_config_clear (&config);

  g_assert_cmpint (tocsin_relay_parse_duration ("24h"), ==, 86400);
  g_assert_cmpint (tocsin_relay_parse_duration ("90"), ==, 90);
  g_assert_cmpint (tocsin_relay_parse_duration ("7d"), ==, 7 * 86400);
  g_assert_cmpint (tocsin_relay_parse_duration ("soon"), ==, -1);
  g_assert_cmpint (tocsin_relay_parse_duration ("5hours"), ==, -1);

  {
    char *bad[] = { "serve", "--data-dir=/tmp", "--max-queue-bytes=lots", NULL };
    char **bad_argv = bad;
    int bad_argc = G_N_ELEMENTS (bad) - 1;
    g_autoptr(GError) bad_error = NULL;

    tocsin_relay_serve_config_init (&config);
    g_assert_false (tocsin_relay_serve_config_parse (&config, &bad_argc, &bad_argv, &bad_error));
    g_assert_nonnull (bad_error);
    g_assert_nonnull (strstr (bad_error->message, "max-queue-bytes"));
    tocsin_relay_serve_config_clear (&config);
  }

  tocsin_test_rmdir_recursive (dir);
}

/* What the server asks of a peeked head (tocsin-relay-head.c), case by case. */
static void
test_head_inspect (void)
{
  static const struct
  {
    const char            *head;
    TocsinRelayHeadVerdict verdict;
  } cases[] = {
    { "GET /t/abc?a=1 HTTP/1.1\r\nHost: x\r\n\r\n", TOCSIN_RELAY_HEAD_OK },
    { "GET /t/abc?a=%41%c3%a9 HTTP/1.1\r\n", TOCSIN_RELAY_HEAD_OK },
    { "GET /t/abc?a=100% HTTP/1.1\r\n", TOCSIN_RELAY_HEAD_BAD_TARGET },
    { "GET /t/abc?a=%zz HTTP/1.1\r\n", TOCSIN_RELAY_HEAD_BAD_TARGET },
    { "POST /t/%4 HTTP/1.1\n", TOCSIN_RELAY_HEAD_BAD_TARGET },
    { "GET /t/abc?a=100%", TOCSIN_RELAY_HEAD_UNKNOWN },    /* the line has not all come */
    { "OPTIONS * HTTP/1.1\r\n", TOCSIN_RELAY_HEAD_OK },    /* libsoup's to answer */
    { "garbage\r\n", TOCSIN_RELAY_HEAD_OK },
  };
  g_autofree char *long_line = g_malloc (TOCSIN_RELAY_HEAD_PEEK);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *sentence = NULL;

      g_assert_cmpint (tocsin_relay_head_inspect (cases[i].head, strlen (cases[i].head),
                                                  &sentence), ==, cases[i].verdict);
      g_assert_true ((sentence != NULL) == (cases[i].verdict == TOCSIN_RELAY_HEAD_BAD_TARGET));
      if (sentence != NULL)
        g_assert_nonnull (strstr (sentence, "%25"));
    }

  memcpy (long_line, "GET /", 5);
  memset (long_line + 5, 'a', TOCSIN_RELAY_HEAD_PEEK - 5);
  {
    g_autofree char *sentence = NULL;

    g_assert_cmpint (tocsin_relay_head_inspect (long_line, TOCSIN_RELAY_HEAD_PEEK, &sentence),
                     ==, TOCSIN_RELAY_HEAD_LINE_TOO_LONG);
    /* Loopback's first segment of a 100 KiB line: enough to name the line. */
    g_assert_cmpint (tocsin_relay_head_inspect (long_line, 65483, &sentence),
                     ==, TOCSIN_RELAY_HEAD_LINE_TOO_LONG);
    g_assert_cmpint (tocsin_relay_head_inspect (long_line, 1000, &sentence),
                     ==, TOCSIN_RELAY_HEAD_UNKNOWN);
  }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/relay/server/root-and-not-found", test_root_and_not_found);
  g_test_add_func ("/relay/server/head-inspect", test_head_inspect);
  g_test_add_func ("/relay/server/listen-ipv6", test_listen_ipv6);
  g_test_add_func ("/relay/server/bad-listen", test_bad_listen);
  g_test_add_func ("/relay/server/idle-timeout", test_idle_timeout);
  g_test_add_func ("/relay/server/keep-alive", test_keep_alive);
  g_test_add_func ("/relay/server/connection-cap", test_connection_cap);
  g_test_add_func ("/relay/server/subscribe-page", test_subscribe_page);
  g_test_add_func ("/relay/server/page-render-escapes", test_page_render_escapes);
  g_test_add_func ("/relay/server/config-precedence", test_config_precedence);

  return g_test_run ();
}
