/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * proto-http-layer.c: what the relay's HTTP layer costs per webhook, and what a minimal one on
 * the relay's epoll set would cost instead (issue 17, item 2: "show the profile and propose its
 * replacement with the measured gain of a prototype"). Not shipped; measured by
 * build-aux/profile-http-layer.sh (callgrind's instructions per request, and wrk's rate with the
 * server's CPU time).
 *
 *   proto-http-layer soup PORT   libsoup's SoupServer, as the relay uses it: a handler that takes
 *                                the POST body and answers 200 with a JSON body
 *   proto-http-layer raw PORT    the same answer from a keep-alive HTTP/1.1 reader on
 *                                tocsin-relay-poller.c: request line, headers, Content-Length
 *                                body, pipelining; nothing else (no chunked bodies, no TLS, no
 *                                Expect) — a prototype of the webhook path only
 *
 * Neither does the webhook's own work (token, templates, store): the difference between the two
 * is the part of the relay's per-webhook cost that replacing libsoup on the webhook path could
 * save. The answer is the same bytes in both (status line, Content-Type, Content-Length, body).
 */
#define _GNU_SOURCE  /* memmem, accept4 */
#define G_LOG_DOMAIN "proto-http-layer"

#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>
#include <libsoup/soup.h>

#include "tocsin-relay-poller.h"

#define ANSWER_BODY "{\"id\":1,\"subscribers\":10,\"duplicate\":false}"
#define MAX_HEAD    (64 * 1024)
#define MAX_BODY    (1024 * 1024)

/* ---- libsoup ------------------------------------------------------------------------------ */

static void
soup_handler (SoupServer        *server,
              SoupServerMessage *msg,
              const char        *path,
              GHashTable        *query,
              gpointer           user_data)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr(GBytes) bytes = soup_message_body_flatten (body);

  (void) bytes;
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC, ANSWER_BODY,
                                    strlen (ANSWER_BODY));
}

static int
run_soup (guint16 port)
{
  g_autoptr(SoupServer) server = soup_server_new ("server-header", NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);

  soup_server_add_handler (server, NULL, soup_handler, NULL, NULL);
  if (!soup_server_listen_local (server, port, SOUP_SERVER_LISTEN_IPV4_ONLY, &error))
    g_error ("listen: %s", error->message);
  g_main_loop_run (loop);
  return 0;
}

/* ---- the prototype ------------------------------------------------------------------------ */

typedef struct
{
  int                     fd;
  TocsinRelayPollerWatch *watch;
  GByteArray             *in;
} Conn;

static void
conn_free (Conn *conn)
{
  tocsin_relay_poller_watch_free (conn->watch);
  close (conn->fd);
  g_byte_array_unref (conn->in);
  g_free (conn);
}

static const char *
find_head_end (const guint8 *data,
               gsize         len)
{
  const void *end = memmem (data, len, "\r\n\r\n", 4);
  return end;
}

/* Content-Length of a head (0 if absent); -1 if it is not a number. */
static gssize
head_content_length (const char *head,
                     gsize       len)
{
  const char *p = head;
  const char *end = head + len;

  while (p < end)
    {
      const char *eol = memchr (p, '\n', end - p);
      gsize line = (eol ? eol : end) - p;

      if (line > 15 && g_ascii_strncasecmp (p, "Content-Length:", 15) == 0)
        {
          gint64 value = 0;
          const char *q = p + 15;

          while (q < p + line && (*q == ' ' || *q == '\t'))
            q++;
          if (q == p + line || !g_ascii_isdigit (*q))
            return -1;
          while (q < p + line && g_ascii_isdigit (*q) && value <= MAX_BODY)
            value = value * 10 + (*q++ - '0');
          return value > MAX_BODY ? -1 : value;
        }
      p += line + 1;
    }
  return 0;
}

static void
conn_event (int          fd,
            GIOCondition events,
            gpointer     user_data)
{
  Conn *conn = user_data;
  g_autoptr(GString) out = NULL;
  guint8 buf[16384];
  gssize n;

  if (events & (G_IO_HUP | G_IO_ERR))
    {
      conn_free (conn);
      return;
    }
  n = read (fd, buf, sizeof buf);
  if (n <= 0)
    {
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
      conn_free (conn);
      return;
    }
  g_byte_array_append (conn->in, buf, n);

  /* Every complete request in the buffer (pipelining), answered in one write. */
  for (;;)
    {
      const char *head_end = find_head_end (conn->in->data, conn->in->len);
      gsize head_len;
      gssize body_len;

      if (head_end == NULL)
        {
          if (conn->in->len > MAX_HEAD)
            {
              conn_free (conn);
              return;
            }
          break;
        }
      head_len = head_end + 4 - (const char *) conn->in->data;
      body_len = head_content_length ((const char *) conn->in->data, head_len);
      if (body_len < 0)
        {
          conn_free (conn);
          return;
        }
      if (conn->in->len < head_len + body_len)
        break;
      if (out == NULL)
        out = g_string_sized_new (256);
      g_string_append (out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            "Content-Length: ");
      g_string_append_printf (out, "%zu\r\n\r\n", strlen (ANSWER_BODY));
      g_string_append (out, ANSWER_BODY);
      g_byte_array_remove_range (conn->in, 0, head_len + body_len);
    }
  if (out != NULL && write (fd, out->str, out->len) != (gssize) out->len)
    conn_free (conn);  /* a prototype: a short write ends the connection */
}

static gboolean
on_accept (int          listen_fd,
           GIOCondition condition,
           gpointer     user_data)
{
  for (;;)
    {
      int fd = accept4 (listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      int one = 1;
      Conn *conn;

      if (fd < 0)
        break;
      setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      conn = g_new0 (Conn, 1);
      conn->fd = fd;
      conn->in = g_byte_array_new ();
      conn->watch = tocsin_relay_poller_watch_new (fd, G_IO_IN, G_PRIORITY_DEFAULT, conn_event,
                                                   conn);
    }
  return G_SOURCE_CONTINUE;
}

static int
run_raw (guint16 port)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  struct sockaddr_in addr = { 0 };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;

  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  addr.sin_family = AF_INET;
  addr.sin_port = htons (port);
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) < 0 || listen (fd, 1024) < 0)
    g_error ("listen: %s", g_strerror (errno));
  g_unix_fd_add (fd, G_IO_IN, on_accept, NULL);
  g_main_loop_run (loop);
  return 0;
}

int
main (int   argc,
      char *argv[])
{
  guint64 port = 0;

  if (argc != 3 || !g_ascii_string_to_unsigned (argv[2], 10, 1, 65535, &port, NULL))
    {
      g_printerr ("usage: %s soup|raw PORT\n", argv[0]);
      return 2;
    }
  if (g_str_equal (argv[1], "soup"))
    return run_soup (port);
  if (g_str_equal (argv[1], "raw"))
    return run_raw (port);
  g_printerr ("usage: %s soup|raw PORT\n", argv[0]);
  return 2;
}
