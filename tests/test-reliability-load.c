/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-reliability-load.c: load a sender or a peer can put on the relay. A flood of ten times a
 * channel's rate gets 429s with correct Retry-After and RateLimit headers while another channel
 * still gets 200s; idle and slowloris connections are closed and give their descriptors back; at
 * the connection cap the relay refuses cleanly and serves again once there is room.
 */
#define G_LOG_DOMAIN "test-reliability"

#include "config.h"

#include <string.h>

#include "tocsin-message.h"
#include "tocsin-test-reliability.h"

/* ---- Rate limit ---- */

/* Parses `"burst";q=10;w=2` style items: the value of @key, or -1. */
static gint64
structured_param (const char *header,
                  const char *key)
{
  g_auto(GStrv) parts = NULL;

  if (header == NULL)
    return -1;
  parts = g_strsplit (header, ";", -1);
  for (guint i = 1; parts[i]; i++)
    {
      g_autofree char *item = g_strstrip (g_strdup (parts[i]));
      gsize len = strlen (key);

      if (strncmp (item, key, len) == 0 && item[len] == '=')
        return g_ascii_strtoll (item + len + 1, NULL, 10);
    }
  return -1;
}

static guint
ring_status (TocsinTestRelay     *relay,
             const char          *hook,
             SoupMessageHeaders **headers,
             JsonObject         **reply)
{
  g_autoptr(GBytes) body = NULL;
  guint status = tocsin_test_http (relay, "GET", hook, NULL, NULL, -1, NULL, &body, headers);

  if (reply)
    *reply = tocsin_rel_parse_object (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  return status;
}

static void
test_rate_flood (void)
{
  /* 5 a second, 10 at once: the flood sends 100 within a couple of seconds, 10 times that. */
  const char *args[] = { "--rate=5", "--burst=10", NULL };
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, args);
  g_autoptr(JsonObject) noisy = tocsin_test_relay_create_channel (relay, "Noisy", NULL, NULL,
                                                                  NULL, NULL);
  g_autoptr(JsonObject) quiet = tocsin_test_relay_create_channel (relay, "Quiet", NULL, NULL,
                                                                  NULL, NULL);
  g_autofree char *noisy_hook = tocsin_rel_hook (noisy, "?flood=1");
  g_autofree char *quiet_hook = tocsin_rel_hook (quiet, "?calm=1");
  guint ok = 0, limited = 0, quiet_ok = 0;
  guint retry_after = 0;
  gint64 start = g_get_monotonic_time ();
  double elapsed;

  for (guint i = 0; i < 100; i++)
    {
      g_autoptr(SoupMessageHeaders) headers = NULL;
      g_autoptr(JsonObject) reply = NULL;
      guint status = ring_status (relay, noisy_hook, &headers, &reply);
      const char *policy = soup_message_headers_get_one (headers, "RateLimit-Policy");
      const char *state = soup_message_headers_get_one (headers, "RateLimit");

      /* Every answer states the policy: 10 over the 2 s the bucket takes to refill. */
      g_assert_nonnull (policy);
      g_assert_cmpint (structured_param (policy, "q"), ==, 10);
      g_assert_cmpint (structured_param (policy, "w"), ==, 2);
      g_assert_nonnull (state);

      if (status == 200)
        {
          ok++;
          g_assert_cmpint (structured_param (state, "r"), >=, 0);
          g_assert_cmpint (structured_param (state, "r"), <, 10);
        }
      else
        {
          const char *retry = soup_message_headers_get_one (headers, "Retry-After");

          g_assert_cmpuint (status, ==, 429);
          limited++;
          g_assert_nonnull (retry);
          retry_after = (guint) g_ascii_strtoull (retry, NULL, 10);
          /* One token comes back every 0.2 s: a whole second, rounded up, is right. */
          g_assert_cmpuint (retry_after, >=, 1);
          g_assert_cmpuint (retry_after, <=, 2);
          g_assert_cmpint (structured_param (state, "r"), ==, 0);
          g_assert_cmpint (structured_param (state, "t"), >=, 1);
          g_assert_nonnull (strstr (json_object_get_string_member (reply, "error"), "limit"));
        }

      /* The quiet channel is not slowed by the noisy one. */
      if (i % 10 == 0)
        {
          g_assert_cmpuint (ring_status (relay, quiet_hook, NULL, NULL), ==, 200);
          quiet_ok++;
        }
    }
  elapsed = (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC;
  g_test_message ("flood: 100 in %.2f s: %u accepted, %u limited; quiet channel %u/%u accepted",
                  elapsed, ok, limited, quiet_ok, quiet_ok);
  g_assert_cmpuint (limited, >, 0);
  /* The bucket: at most its size plus what refilled meanwhile. */
  g_assert_cmpuint (ok, <=, 10 + (guint) (elapsed * 5) + 1);
  g_assert_cmpuint (ok, >=, 10);

  /* Retry-After told the truth: after that long, the noisy channel is served again. */
  {
    gint64 until = g_get_monotonic_time () + retry_after * G_USEC_PER_SEC;

    while (g_get_monotonic_time () < until)
      {
        g_main_context_iteration (NULL, FALSE);
        g_usleep (10000);
      }
  }
  g_assert_cmpuint (ring_status (relay, noisy_hook, NULL, NULL), ==, 200);
  /* And every accepted one was stored, the refused ones not. */
  tocsin_rel_assert_store (relay, noisy, ok + 1);
}

/* ---- Idle, slowloris, descriptors ---- */

static void
test_slowloris (void)
{
  const char *args[] = { "--idle-timeout=1", NULL };
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, args);
  g_autoptr(GSocket) socket = tocsin_rel_connect_raw (relay);
  const char *start = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  gint64 began = g_get_monotonic_time ();
  gint64 deadline = began + 30 * G_USEC_PER_SEC;
  gboolean open = TRUE;
  guint dribbled = 0;

  /* A header line a byte every 300 ms: each byte is less idle than the timeout, but the request
   * never completes. The relay must end it: 30 times the idle timeout is generous. */
  g_assert_true (tocsin_rel_send_all (socket, start, strlen (start)));
  while (open && g_get_monotonic_time () < deadline)
    {
      gint64 next = g_get_monotonic_time () + 300 * 1000;

      while (open && g_get_monotonic_time () < next)
        {
          open = !tocsin_rel_peer_closed (socket, NULL);
          g_main_context_iteration (NULL, FALSE);
          g_usleep (10000);
        }
      if (open)
        {
          open = tocsin_rel_send_all (socket, "X", 1);
          dribbled++;
        }
    }
  g_test_message ("slowloris: %s after %.1f s and %u bytes dribbled",
                  open ? "STILL OPEN" : "closed by the relay",
                  (g_get_monotonic_time () - began) / 1e6, dribbled);
  g_assert_false (open);
  /* Everyone else is served. */
  g_assert_cmpuint (tocsin_test_http (relay, "GET", "/", NULL, NULL, -1, NULL, NULL, NULL), ==,
                    200);
}

/* A kept-alive connection that goes idle after a request must be closed (or still served), not
 * left open and deaf: that would hang the client's next request and keep the descriptor. */
static void
test_idle_keepalive (void)
{
  const char *args[] = { "--idle-timeout=1", NULL };
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, args);
  g_autoptr(GSocket) socket = tocsin_rel_connect_raw (relay);
  g_autoptr(GString) received = g_string_new (NULL);
  const char *request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  gint64 deadline;
  gboolean closed = FALSE;

  g_assert_true (tocsin_rel_send_all (socket, request, strlen (request)));
  TOCSIN_WAIT_UNTIL ((closed = tocsin_rel_peer_closed (socket, received)) ||
                     strstr (received->str, "\"tocsin-relay\"") != NULL);
  g_assert_false (closed);
  g_assert_true (g_str_has_prefix (received->str, "HTTP/1.1 200"));

  /* Idle for ten times the timeout: the relay must have closed it by then. */
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (!closed && g_get_monotonic_time () < deadline)
    {
      closed = tocsin_rel_peer_closed (socket, NULL);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (20000);
    }
  if (!closed)
    {
      /* Still open: then it must still answer. */
      g_string_truncate (received, 0);
      g_assert_true (tocsin_rel_send_all (socket, request, strlen (request)));
      deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
      while (!closed && strstr (received->str, "\"tocsin-relay\"") == NULL &&
             g_get_monotonic_time () < deadline)
        {
          closed = tocsin_rel_peer_closed (socket, received);
          g_main_context_iteration (NULL, FALSE);
          g_usleep (20000);
        }
      g_test_message ("kept-alive connection idle past the timeout: %s",
                      closed ? "closed on the next request"
                      : received->len ? "still served" : "OPEN BUT DEAF (no answer in 10 s)");
      g_assert_true (closed || received->len > 0);
    }
}

/* Clients that hang up a kept-alive connection between two requests: each connection is closed
 * and its descriptor comes back (libsoup 3.2 alone would keep it, open and deaf, for good), and
 * a request pipelined just before the hang-up is still answered. The idle timeout is long, so
 * only the hang-up can close them. */
static void
test_keepalive_hangup (void)
{
  const char *args[] = { "--idle-timeout=600", NULL };
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, args);
  g_autoptr(JsonObject) channel = tocsin_test_relay_create_channel (relay, "Hangup", NULL, NULL,
                                                                    NULL, NULL);
  g_autoptr(GPtrArray) sockets = g_ptr_array_new_with_free_func (g_object_unref);
  const char *request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  guint baseline, busy;

  tocsin_rel_ring (relay, channel, "?a=1");
  baseline = tocsin_rel_relay_fd_count (relay);

  /* 40 connections, one answered request each; the relay keeps them open (keep-alive). */
  for (guint i = 0; i < 40; i++)
    {
      g_autoptr(GString) received = g_string_new (NULL);
      GSocket *socket = tocsin_rel_connect_raw (relay);
      gboolean closed = FALSE;

      g_ptr_array_add (sockets, socket);
      g_assert_true (tocsin_rel_send_all (socket, request, strlen (request)));
      TOCSIN_WAIT_UNTIL ((closed = tocsin_rel_peer_closed (socket, received)) ||
                         strstr (received->str, "\"tocsin-relay\"") != NULL);
      g_assert_false (closed);
      g_assert_true (g_str_has_prefix (received->str, "HTTP/1.1 200"));
    }
  busy = tocsin_rel_relay_fd_count (relay);
  g_assert_cmpuint (busy, >=, baseline + 40);

  /* Now they hang up, between two requests. */
  for (guint i = 0; i < sockets->len; i++)
    g_socket_close (sockets->pdata[i], NULL);
  g_ptr_array_set_size (sockets, 0);

  /* Two requests at once, then the end of the connection: both answered, then closed. */
  {
    g_autoptr(GSocket) socket = tocsin_rel_connect_raw (relay);
    g_autoptr(GString) received = g_string_new (NULL);
    g_autofree char *two = g_strconcat (request, request, NULL);
    const char *second;

    g_assert_true (tocsin_rel_send_all (socket, two, strlen (two)));
    g_socket_shutdown (socket, FALSE, TRUE, NULL);
    TOCSIN_WAIT_UNTIL (tocsin_rel_peer_closed (socket, received));
    g_assert_true (g_str_has_prefix (received->str, "HTTP/1.1 200"));
    second = strstr (received->str + 1, "HTTP/1.1 ");
    g_assert_nonnull (second);
    g_assert_true (g_str_has_prefix (second, "HTTP/1.1 200"));
  }

  /* The relay sweeps closed sockets every 10 s. */
  {
    gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

    while (tocsin_rel_relay_fd_count (relay) > baseline + 2 &&
           g_get_monotonic_time () < deadline)
      {
        g_main_context_iteration (NULL, FALSE);
        g_usleep (50000);
      }
  }
  g_test_message ("descriptors: %u before, %u with 40 kept-alive connections, %u after they "
                  "hung up", baseline, busy, tocsin_rel_relay_fd_count (relay));
  g_assert_cmpuint (tocsin_rel_relay_fd_count (relay), <=, baseline + 2);
  /* And it still serves. */
  tocsin_rel_ring (relay, channel, "?a=2");
  tocsin_rel_assert_store (relay, channel, 2);
}

static void
test_idle_sockets_release_descriptors (void)
{
  const char *args[] = { "--idle-timeout=1", "--max-connections=50", NULL };
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, args);
  g_autoptr(GPtrArray) sockets = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(JsonObject) channel = tocsin_test_relay_create_channel (relay, "Idle", NULL, NULL,
                                                                    NULL, NULL);
  guint baseline, busy;

  /* One request first, so that lazily opened files (the store's) count in the baseline. */
  tocsin_rel_ring (relay, channel, "?a=1");
  baseline = tocsin_rel_relay_fd_count (relay);

  /* Four times the cap of connections that never say anything. */
  for (guint i = 0; i < 200; i++)
    g_ptr_array_add (sockets, tocsin_rel_connect_raw (relay));
  TOCSIN_WAIT_UNTIL (tocsin_rel_relay_fd_count (relay) > baseline);
  busy = tocsin_rel_relay_fd_count (relay);

  /* Every one of them is closed by the relay (refused at the cap, or timed out). */
  for (guint i = 0; i < sockets->len; i++)
    TOCSIN_WAIT_UNTIL (tocsin_rel_peer_closed (sockets->pdata[i], NULL));
  /* ...and its descriptors come back (the relay sweeps closed sockets every 10 s). */
  {
    gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

    while (tocsin_rel_relay_fd_count (relay) > baseline + 2 &&
           g_get_monotonic_time () < deadline)
      {
        g_main_context_iteration (NULL, FALSE);
        g_usleep (50000);
      }
  }
  g_test_message ("descriptors: %u before, %u with 200 idle peers, %u after", baseline, busy,
                  tocsin_rel_relay_fd_count (relay));
  g_assert_cmpuint (busy, <=, baseline + 50 + 64 + 2);
  g_assert_cmpuint (tocsin_rel_relay_fd_count (relay), <=, baseline + 2);
  tocsin_rel_ring (relay, channel, "?a=2");
  tocsin_rel_assert_store (relay, channel, 2);
}

/* ---- Connection cap ---- */

static void
on_message (SoupWebsocketConnection *ws,
            gint                     type,
            GBytes                  *bytes,
            gpointer                 user_data)
{
  (*(guint *) user_data)++;
}

static void
test_connection_cap (void)
{
  const char *args[] = { "--max-connections=20", "--idle-timeout=60", NULL };
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, args);
  g_autoptr(JsonObject) channel = tocsin_test_relay_create_channel (relay, "Capped", NULL, NULL,
                                                                    NULL, NULL);
  g_autoptr(GPtrArray) idle = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(SoupWebsocketConnection) subscriber = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *ws_path = g_strdup_printf ("/s/%s/ws",
                                              json_object_get_string_member (channel,
                                                                            "subscribe_token"));
  g_autofree char *url = NULL;
  guint received = 0;
  guint refused = 0;

  tocsin_rel_ring (relay, channel, "?before=1");
  /* The harness session keeps one connection; the subscriber is another. */
  subscriber = tocsin_test_websocket_connect (relay, ws_path, &error);
  g_assert_no_error (error);
  g_signal_connect (subscriber, "message", G_CALLBACK (on_message), &received);
  for (guint i = 0; i < 20; i++)
    g_ptr_array_add (idle, tocsin_rel_connect_raw (relay));

  /* Full: new connections get a clean 503 with a reason and a Retry-After. */
  url = tocsin_rel_hook (channel, "?refused=1");
  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *full = g_strconcat (relay->base_url, url, NULL);
      g_autoptr(SoupSession) fresh = soup_session_new ();
      g_autoptr(SoupMessage) msg = soup_message_new ("GET", full);
      g_autoptr(GBytes) body = soup_session_send_and_read (fresh, msg, NULL, &error);
      g_autoptr(JsonObject) object = NULL;

      g_assert_no_error (error);
      g_assert_cmpuint (soup_message_get_status (msg), ==, 503);
      g_assert_nonnull (soup_message_headers_get_one (soup_message_get_response_headers (msg),
                                                      "Retry-After"));
      object = tocsin_rel_parse_object (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
      g_assert_nonnull (strstr (json_object_get_string_member (object, "error"), "connections"));
      refused++;
    }
  g_test_message ("at the cap of 20: %u refused with 503", refused);

  /* Room again: the webhook goes through and the subscriber, there all along, gets it. */
  g_ptr_array_set_size (idle, 0);
  for (;;)
    {
      g_autofree char *full = g_strconcat (relay->base_url, url, NULL);
      g_autoptr(SoupSession) fresh = soup_session_new ();
      g_autoptr(SoupMessage) msg = soup_message_new ("GET", full);
      GBytes *body = soup_session_send_and_read (fresh, msg, NULL, NULL);

      g_clear_pointer (&body, g_bytes_unref);
      if (soup_message_get_status (msg) == 200)
        break;
      g_assert_cmpuint (soup_message_get_status (msg), ==, 503);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (50000);
    }
  TOCSIN_WAIT_UNTIL (received == 1);
  /* Nothing refused was stored. */
  tocsin_rel_assert_store (relay, channel, 2);
  soup_websocket_connection_close (subscriber, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/reliability/load/rate-flood", test_rate_flood);
  g_test_add_func ("/reliability/load/idle-keepalive", test_idle_keepalive);
  g_test_add_func ("/reliability/load/keepalive-hangup", test_keepalive_hangup);
  g_test_add_func ("/reliability/load/slowloris", test_slowloris);
  g_test_add_func ("/reliability/load/idle-sockets-release-descriptors",
                   test_idle_sockets_release_descriptors);
  g_test_add_func ("/reliability/load/connection-cap", test_connection_cap);
  return g_test_run ();
}
