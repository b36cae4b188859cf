/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-reliability-population.c: a relay holding a population of idle connections (2,000
 * WebSocket subscribers, SSE streams, kept-alive HTTP connections) waits on a handful of
 * descriptors for all its subscribers, not one per subscriber, and still serves every one of
 * them: each subscriber gets every message in order, each kept-alive connection is answered
 * again.
 *
 * What the relay's main loop polls is read from /proc/PID/syscall while it sleeps in poll():
 * the call's second argument is the number of descriptors. Under the old design (a GSource per
 * connection) it was at least one per connection; a turn of the loop cost O(connections)
 * (issue 17, docs/performance.md).
 */
#define G_LOG_DOMAIN "test-reliability"

#include "config.h"

#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "tocsin-test-reliability.h"

#define N_SUBSCRIBERS   2000
#define N_STREAMS       100
#define N_KEPT_ALIVE    100
#define BATCH           200
/* Far below any population: the listener, the poller's epoll descriptors, GLib's wakeup, the
 * store's. */
#define FEW_DESCRIPTORS 32
/* An idle kept-alive HTTP connection is still polled twice: libsoup's read source waiting for
 * the next request, and the relay's own watch between requests (tocsin-relay-server.c says
 * why). Parking them on the poller raced with libsoup and reset busy connections under load
 * (test-app-client's backlog test), so it was taken out; the subscribers are what is many. */
#define POLLED_PER_KEPT_ALIVE 2

typedef struct
{
  GSocket *socket;
  GString *in;        /* read, not yet parsed */
} Peer;

static void
peer_clear (Peer *peer)
{
  g_clear_object (&peer->socket);
  if (peer->in)
    g_string_free (g_steal_pointer (&peer->in), TRUE);
}

/* Reads more into @peer->in, blocking (the socket's 20 s timeout guards a hang). */
static void
peer_read (Peer *peer)
{
  g_autoptr(GError) error = NULL;
  char buffer[4096];
  gssize n = g_socket_receive (peer->socket, buffer, sizeof buffer, NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpint (n, >, 0);
  g_string_append_len (peer->in, buffer, n);
}

static Peer
peer_open (TocsinTestRelay *relay,
           const char      *request)
{
  Peer peer = { tocsin_rel_connect_raw (relay), g_string_new (NULL) };

  g_assert_true (tocsin_rel_send_all (peer.socket, request, strlen (request)));
  g_socket_set_blocking (peer.socket, TRUE);
  g_socket_set_timeout (peer.socket, 20);
  return peer;
}

/* Reads a response head; returns its status, and leaves what follows it in @peer->in. */
static guint
peer_read_head (Peer *peer)
{
  const char *end;
  guint status;

  while ((end = strstr (peer->in->str, "\r\n\r\n")) == NULL)
    peer_read (peer);
  g_assert_true (g_str_has_prefix (peer->in->str, "HTTP/1.1 "));
  status = (guint) g_ascii_strtoull (peer->in->str + 9, NULL, 10);
  g_string_erase (peer->in, 0, end + 4 - peer->in->str);
  return status;
}

/* A whole response with a Content-Length body; returns its status. */
static guint
peer_read_response (Peer *peer)
{
  g_autofree char *head = NULL;
  const char *length_header;
  gsize length;
  guint status;

  while (strstr (peer->in->str, "\r\n\r\n") == NULL)
    peer_read (peer);
  head = g_ascii_strdown (peer->in->str, strstr (peer->in->str, "\r\n\r\n") - peer->in->str);
  length_header = strstr (head, "\r\ncontent-length:");
  g_assert_nonnull (length_header);
  length = g_ascii_strtoull (length_header + strlen ("\r\ncontent-length:"), NULL, 10);
  status = peer_read_head (peer);
  while (peer->in->len < length)
    peer_read (peer);
  g_string_erase (peer->in, 0, length);
  return status;
}

/* The next text frame's payload (server frames are unmasked; pings are skipped). */
static char *
peer_read_text (Peer *peer)
{
  for (;;)
    {
      const guint8 *p;
      guint64 length;
      gsize header = 2;
      guint8 opcode;

      while (peer->in->len < 2)
        peer_read (peer);
      p = (const guint8 *) peer->in->str;
      opcode = p[0] & 0x0F;
      length = p[1] & 0x7F;
      if (length == 126)
        header = 4;
      else if (length == 127)
        header = 10;
      while (peer->in->len < header)
        peer_read (peer);
      p = (const guint8 *) peer->in->str;
      if (header == 4)
        length = (guint64) p[2] << 8 | p[3];
      else if (header == 10)
        {
          length = 0;
          for (guint i = 0; i < 8; i++)
            length = length << 8 | p[2 + i];
        }
      while (peer->in->len < header + length)
        peer_read (peer);
      if (opcode == 0x1)
        {
          char *text = g_strndup (peer->in->str + header, length);

          g_string_erase (peer->in, 0, header + length);
          return text;
        }
      g_assert_cmpuint (opcode, ==, 0x9);   /* a ping; a close would be a failure */
      g_string_erase (peer->in, 0, header + length);
    }
}

/* How many descriptors the relay's main thread is polling, or G_MAXUINT when it is not asleep
 * in poll() at this instant. */
static guint
relay_polled_descriptors (TocsinTestRelay *relay)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/syscall",
                                           g_subprocess_get_identifier (relay->process));
  g_autofree char *contents = NULL;
  g_auto(GStrv) fields = NULL;
  gint64 nr;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return G_MAXUINT;
  fields = g_strsplit (g_strstrip (contents), " ", -1);
  if (g_strv_length (fields) < 3 || !g_ascii_isdigit (fields[0][0]))
    return G_MAXUINT;   /* "running" */
  nr = g_ascii_strtoll (fields[0], NULL, 10);
#ifdef SYS_poll
  if (nr == SYS_poll)
    return (guint) g_ascii_strtoull (fields[2], NULL, 16);
#endif
  if (nr == SYS_ppoll)
    return (guint) g_ascii_strtoull (fields[2], NULL, 16);
  return G_MAXUINT;
}

static void
raise_file_limit (guint needed)
{
  struct rlimit limit;

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &limit), ==, 0);
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed)
    {
      limit.rlim_cur = MIN (needed, limit.rlim_max);
      g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);
    }
}

static void
test_idle_population (void)
{
  /* Both ends hold one descriptor per connection; the relay inherits the limit. */
  const guint total = N_SUBSCRIBERS + N_STREAMS + N_KEPT_ALIVE;
  const char *args[] = { "--max-connections=5000", NULL };
  g_autoptr(TocsinTestRelay) relay = NULL;
  g_autoptr(JsonObject) crowded = NULL;
  g_autoptr(JsonObject) quiet = NULL;
  g_autofree char *ws_request = NULL;
  g_autofree char *sse_request = NULL;
  const char *get_request = "GET / HTTP/1.1\r\nHost: relay\r\n\r\n";
  g_autofree Peer *subscribers = g_new0 (Peer, N_SUBSCRIBERS);
  g_autofree Peer *streams = g_new0 (Peer, N_STREAMS);
  g_autofree Peer *kept = g_new0 (Peer, N_KEPT_ALIVE);
  struct rlimit limit;
  gint64 first;

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &limit), ==, 0);
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < total + 200)
    {
      g_test_skip ("the open files limit is too low for 2,200 connections");
      return;
    }
  raise_file_limit (total + 200);
  relay = tocsin_test_relay_start (NULL, args);
  crowded = tocsin_test_relay_create_channel (relay, "Crowded", NULL, NULL, NULL, NULL);
  quiet = tocsin_test_relay_create_channel (relay, "Quiet", NULL, NULL, NULL, NULL);

  ws_request = g_strdup_printf ("GET /s/%s/ws HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Version: 13\r\n\r\n",
                                json_object_get_string_member (crowded, "subscribe_token"));
  for (guint i = 0; i < N_SUBSCRIBERS; i += BATCH)
    {
      for (guint j = i; j < MIN (i + BATCH, N_SUBSCRIBERS); j++)
        subscribers[j] = peer_open (relay, ws_request);
      for (guint j = i; j < MIN (i + BATCH, N_SUBSCRIBERS); j++)
        g_assert_cmpuint (peer_read_head (&subscribers[j]), ==, 101);
    }
  sse_request = g_strdup_printf ("GET /s/%s/sse HTTP/1.1\r\nHost: relay\r\n\r\n",
                                 json_object_get_string_member (crowded, "subscribe_token"));
  for (guint i = 0; i < N_STREAMS; i++)
    streams[i] = peer_open (relay, sse_request);
  for (guint i = 0; i < N_STREAMS; i++)
    g_assert_cmpuint (peer_read_head (&streams[i]), ==, 200);
  for (guint i = 0; i < N_KEPT_ALIVE; i++)
    kept[i] = peer_open (relay, get_request);
  for (guint i = 0; i < N_KEPT_ALIVE; i++)
    g_assert_cmpuint (peer_read_response (&kept[i]), ==, 200);

  /* The relay holds them all... */
  g_assert_cmpuint (tocsin_rel_relay_fd_count (relay), >=, total);
  /* ...and, once they are idle, sleeps on a few descriptors. */
  if (tocsin_rel_relay_wrapped () && g_getenv ("TOCSIN_RELAY_WRAPPER") != NULL)
    g_test_message ("the relay runs under a wrapper: its poll() is the wrapper's; not checked");
  else
    TOCSIN_WAIT_UNTIL (relay_polled_descriptors (relay) <=
                       FEW_DESCRIPTORS + POLLED_PER_KEPT_ALIVE * N_KEPT_ALIVE);

  /* Every kept-alive connection is answered again, on the same connection. */
  for (guint i = 0; i < N_KEPT_ALIVE; i++)
    g_assert_true (tocsin_rel_send_all (kept[i].socket, get_request, strlen (get_request)));
  for (guint i = 0; i < N_KEPT_ALIVE; i++)
    g_assert_cmpuint (peer_read_response (&kept[i]), ==, 200);

  /* A webhook on another channel is taken; three on the crowded one reach every subscriber,
   * in order. */
  tocsin_rel_ring (relay, quiet, NULL);
  first = tocsin_rel_ring (relay, crowded, NULL);
  g_assert_cmpint (tocsin_rel_ring (relay, crowded, NULL), ==, first + 1);
  g_assert_cmpint (tocsin_rel_ring (relay, crowded, NULL), ==, first + 2);
  for (guint i = 0; i < N_SUBSCRIBERS; i++)
    for (gint64 id = first; id < first + 3; id++)
      {
        g_autofree char *text = peer_read_text (&subscribers[i]);
        g_autoptr(JsonObject) message = tocsin_rel_parse_object (text, -1);

        g_assert_cmpint (json_object_get_int_member (message, "id"), ==, id);
      }
  for (guint i = 0; i < N_STREAMS; i++)
    for (gint64 id = first; id < first + 3; id++)
      {
        g_autofree char *expected = g_strdup_printf ("id: %" G_GINT64_FORMAT "\n", id);

        while (strstr (streams[i].in->str, expected) == NULL)
          peer_read (&streams[i]);
      }

  for (guint i = 0; i < N_SUBSCRIBERS; i++)
    peer_clear (&subscribers[i]);
  for (guint i = 0; i < N_STREAMS; i++)
    peer_clear (&streams[i]);
  for (guint i = 0; i < N_KEPT_ALIVE; i++)
    peer_clear (&kept[i]);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/reliability/population/idle-connections-cost-nothing", test_idle_population);
  return g_test_run ();
}
