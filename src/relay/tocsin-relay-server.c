/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-server.c: `tocsin-relay serve`.
 *
 * The relay accepts connections itself instead of letting SoupServer listen, for three reasons
 * libsoup 3.2 gives no other handle on: a listen backlog big enough for a burst of thousands of
 * reconnecting subscribers, a connection cap that refuses cleanly (503 with a JSON sentence)
 * before any work is done, and an idle timeout (GSocket's timeout, which libsoup's server never
 * sets). Accepted sockets go to soup_server_accept_iostream().
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tocsin-json.h"
#include "tocsin-relay-config.h"
#include "tocsin-relay-head.h"
#include "tocsin-relay-health.h"
#include "tocsin-relay-api.h"
#include "tocsin-relay-compat.h"
#include "tocsin-relay-cors.h"
#include "tocsin-relay-direct.h"
#include "tocsin-relay-forwards.h"
#include "tocsin-relay-ingest.h"
#include "tocsin-relay-mail.h"
#include "tocsin-relay-cluster.h"
#include "tocsin-relay-workers.h"
#include "tocsin-relay-hub.h"
#include "tocsin-relay-page.h"
#include "tocsin-relay-server.h"
#include "tocsin-relay-store.h"
#include "tocsin-relay-store-pg.h"
#include "tocsin-relay-ratelimit.h"
#include "tocsin-relay-recent.h"
#include "tocsin-relay-smtp.h"
#include "tocsin-relay-throttle.h"
#include "tocsin-relay-tls.h"

#define SOCKET_KEY         "tocsin-relay-socket"
#define GUARD_KEY          "tocsin-relay-request-guard"
/* With PostgreSQL: a message is kept at least this long, for the other nodes to read. */
#define TOCSIN_RELAY_PG_MIN_RETENTION 60
#define SWEEP_SECONDS      10
#define MAX_LINGERING      64
#define LINGER_SECONDS     2
#define SHUTDOWN_SECONDS   3
/* Descriptors kept for everything but connections: refused sockets being drained, SQLite's
 * files (database, WAL, shared memory, journals, for the writer and the reader thread), the
 * listeners, the main loop's own. max-connections is lowered to fit (docs/configuration.md). */
#define FD_HEADROOM        (MAX_LINGERING + MAX_HEAD_FDS + 64)
/* Duplicates of sockets whose request head is being read (see head_too_big()) at most. */
#define MAX_HEAD_FDS       32
/* Out of descriptors, accept() is paused this long instead of failing in a loop. */
#define ACCEPT_PAUSE_MS    250
/* One log line per this many seconds about failing accepts, with how many there were. */
#define LOG_INTERVAL_SECONDS 10
/* Unknown trigger or subscribe tokens a client address may try per window before it is
 * answered 429 on every token URL until the window ends (docs/configuration.md). */
#define MAX_UNKNOWN_TOKENS 60
#define UNKNOWN_TOKEN_WINDOW_SECONDS 60
#define MAX_TRACKED_ADDRESSES 65536

typedef struct
{
  TocsinRelay             relay;
  TocsinRelayServeConfig  config;
  GPtrArray              *listeners;   /* GSocket */
  GPtrArray              *sources;     /* GSource, one per listener */
  GPtrArray              *urls;        /* char*, "http://HOST:PORT" per listener */
  GHashTable             *sockets;     /* accepted GSocket → Conn, while open */
  GSocket                *keepalive_peer; /* the other end of SoupServer's private listener */
  GTlsCertificate        *tls;         /* --tls-cert: every connection is TLS; NULL: plain */
  guint                   lingering;   /* refused sockets being drained */
  guint                   sweep_id;
  GMainLoop              *loop;
  gboolean                stopping;
  gint64                  stop_deadline;
  guint                   accept_resume_id; /* accepting paused: out of descriptors */
  gint64                  accept_log_at;    /* monotonic: when accept failures were last logged */
  guint                   accept_failures;  /* since then */
  guint                   head_fds;         /* RequestGuard.head_fd open */
  char                   *public_host;      /* the host of public-url, lower case */
  TocsinRelaySmtpServer  *smtp;             /* --smtp-listen: the email trigger, or NULL */
} Server;


/* ---- Replies ---- */

void
tocsin_relay_server_reply_json (SoupServerMessage *msg,
                                guint              status,
                                JsonObject        *object)
{
  g_autoptr(JsonNode) node = json_node_init_object (json_node_alloc (), object);
  char *data = tocsin_json_to_string (node, FALSE);

  tocsin_relay_server_reply_json_text (msg, status, data, strlen (data));
}

void
tocsin_relay_server_reply_json_text (SoupServerMessage *msg,
                                     guint              status,
                                     char              *data,
                                     gsize              len)
{
  /* libsoup 3.2 has no phrase for these. */
  soup_server_message_set_status (msg, status,
                                  status == 429 ? "Too Many Requests" :
                                  status == 431 ? "Request Header Fields Too Large" :
                                  status == 421 ? "Misdirected Request" : NULL);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Cache-Control",
                                "no-store");
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, data, len);
}

void
tocsin_relay_server_reply_error (SoupServerMessage *msg,
                                 guint              status,
                                 const char        *sentence)
{
  g_autoptr(JsonObject) object = json_object_new ();

  json_object_set_string_member (object, "error", sentence);
  tocsin_relay_server_reply_json (msg, status, object);
}

static char *
address_string (GSocketAddress *address)
{
  GInetAddress *inet;
  g_autofree char *host = NULL;

  if (!G_IS_INET_SOCKET_ADDRESS (address))
    return g_strdup ("unknown");
  inet = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address));
  host = g_inet_address_to_string (inet);
  if (g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6)
    return g_strdup_printf ("[%s]:%u", host,
                            g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address)));
  return g_strdup_printf ("%s:%u", host,
                          g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address)));
}

char *
tocsin_relay_server_peer_string (SoupServerMessage *msg)
{
  return address_string (soup_server_message_get_remote_address (msg));
}

GSocket *
tocsin_relay_server_get_socket (SoupServerMessage *msg)
{
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);

  /* soup_server_accept_iostream() keeps the very address object we gave it. */
  return remote ? g_object_get_data (G_OBJECT (remote), SOCKET_KEY) : NULL;
}

gboolean
tocsin_relay_server_wants_json (SoupServerMessage *msg)
{
  const char *accept = soup_message_headers_get_list (soup_server_message_get_request_headers (msg),
                                                      "Accept");
  g_autoptr(GSList) types = NULL;
  gboolean json = FALSE;

  if (accept == NULL)
    return FALSE;
  /* Good enough for the two clients that matter: scripts ask for application/json, browsers
   * list text/html first. */
  types = soup_header_parse_quality_list (accept, NULL);
  for (GSList *l = types; l; l = l->next)
    {
      if (g_ascii_strcasecmp (l->data, "text/html") == 0)
        break;
      if (g_ascii_strcasecmp (l->data, "application/json") == 0)
        {
          json = TRUE;
          break;
        }
    }
  g_slist_free_full (g_steal_pointer (&types), g_free);
  return json;
}

/* ---- Routing ---- */

static gboolean
is_token_segment (const char *segment)
{
  if (*segment == '\0')
    return FALSE;
  for (const char *p = segment; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_')
      return FALSE;
  return TRUE;
}

/* One accepted TCP connection. Between two requests it is watched (see conn_watch_between()). */
typedef struct
{
  Server            *server;
  GSocket           *socket;
  GSocketConnection *connection;   /* ours: libsoup is handed this (or a wrapper of it) */
  GSocketAddress    *local;
  GSocketAddress    *remote;       /* carries SOCKET_KEY */
  SoupServerMessage *last;         /* the request that just finished on it */
  gboolean           between;      /* no byte of a next request read since */
  guint              recycle_id;
  guint              watch_id;     /* the socket between requests (plain HTTP) */
  gint64             watch_until;  /* monotonic: idle until then, and it is closed */
  gboolean           line_too_long;  /* seen between requests, for the next guard */
  gint64             accepted_at;    /* monotonic: until its first request starts, else 0 */
} Conn;

typedef struct
{
  Server            *server;
  SoupServerMessage *msg;         /* borrowed: the guard lives as the message's data */
  guint              deadline_id;
  guint64            received;
  char              *peer;        /* for the log, while head_fd is kept */
  gboolean           refused;     /* answered 413 on the socket itself; the handler stays out */
  int                head_fd;     /* a dup of the socket while the head is read, or -1 */
  gboolean           line_too_long;  /* the peek saw no line end in what had come */
} RequestGuard;

static void refuse_on_socket (Server *server, GSocket *socket, guint status, const char *phrase,
                              const char *extra_headers, const char *sentence);
static gboolean inspect_head (Server *server, int fd, gboolean *line_too_long);

static void
dispatch (Server            *server,
          SoupServerMessage *msg,
          const char        *path)
{
  TocsinRelay *relay = &server->relay;
  TocsinRelayCompatRoute route;

  if (g_str_has_prefix (path, "/t/") && is_token_segment (path + 3))
    {
      tocsin_relay_ingest_handle (relay, msg, path + 3);
      return;
    }
  if (g_str_equal (path, "/v1/channels") || g_str_has_prefix (path, "/v1/channels/"))
    {
      tocsin_relay_api_handle (relay, msg, path);
      return;
    }
  /* Any /d/ path answers in Echobell's shape: what is not a key is "Direct key not found". */
  if (g_str_has_prefix (path, "/d/"))
    {
      tocsin_relay_direct_handle (relay, msg, path + 3);
      return;
    }
  if (g_str_equal (path, "/v1/direct") || g_str_has_prefix (path, "/v1/direct/"))
    {
      tocsin_relay_direct_api_handle (relay, msg, path);
      return;
    }
  if (g_str_equal (path, "/v1/ws"))
    {
      tocsin_relay_hub_handle_app (relay->hub, msg);
      return;
    }
  if (g_str_equal (path, TOCSIN_RELAY_HEALTH_PATH))
    {
      tocsin_relay_health_handle (relay, msg);
      return;
    }
  if (g_str_has_prefix (path, "/s/"))
    {
      g_auto(GStrv) parts = g_strsplit (path + 3, "/", 3);

      if (parts[0] && is_token_segment (parts[0]))
        {
          if (parts[1] == NULL)
            {
              tocsin_relay_page_handle (relay, msg, parts[0]);
              return;
            }
          if (parts[2] == NULL)
            {
              if (g_str_equal (parts[1], "ws"))
                {
                  tocsin_relay_hub_handle_stream (relay->hub, msg, parts[0],
                                                  TOCSIN_RELAY_STREAM_WS);
                  return;
                }
              if (g_str_equal (parts[1], "sse"))
                {
                  tocsin_relay_hub_handle_stream (relay->hub, msg, parts[0],
                                                  TOCSIN_RELAY_STREAM_SSE);
                  return;
                }
              if (g_str_equal (parts[1], "json"))
                {
                  tocsin_relay_hub_handle_stream (relay->hub, msg, parts[0],
                                                  TOCSIN_RELAY_STREAM_JSON);
                  return;
                }
            }
        }
    }
  /* ntfy's and Gotify's publish APIs (tocsin-relay-compat.c). */
  route = tocsin_relay_compat_match (soup_server_message_get_method (msg), path, NULL);
  if (route != TOCSIN_RELAY_COMPAT_NONE)
    {
      tocsin_relay_compat_handle (relay, msg, route, path);
      return;
    }
  if (g_str_equal (path, "/") && (soup_server_message_get_method (msg) == SOUP_METHOD_GET ||
                                  soup_server_message_get_method (msg) == SOUP_METHOD_HEAD))
    {
      g_autoptr(JsonObject) object = json_object_new ();

      json_object_set_string_member (object, "name", "tocsin-relay");
      json_object_set_string_member (object, "version", PACKAGE_VERSION);
      tocsin_relay_server_reply_json (msg, SOUP_STATUS_OK, object);
      return;
    }

  tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND,
                                   _("Nothing is here. Webhooks go to /t/TRIGGER_TOKEN and "
                                     "subscribers read /s/SUBSCRIBE_TOKEN."));
}

/* ---- Who may ask ---- */

/* DNS rebinding: a web page whose name the attacker points at 127.0.0.1 reaches a relay on
 * loopback from the user's browser, with its own name in Host. An open relay's owner API would
 * then create and change channels for that page. Browsers always send the name they resolved, so
 * the owner API answers only names that are the relay's: an IP address (no rebinding without a
 * name), localhost, the host of public-url, and allowed-hosts (docs/configuration.md). */
static gboolean
host_allowed (Server     *server,
              const char *header)
{
  g_autofree char *host = NULL;
  GStrv extra = server->relay.config.allowed_hosts;

  if (header == NULL || *header == '\0')
    return TRUE;   /* HTTP/1.0 without Host: not a browser */
  if (header[0] == '[')
    {
      const char *close = strchr (header, ']');

      host = g_strndup (header + 1, close ? (gsize) (close - header - 1) : strlen (header + 1));
    }
  else
    {
      const char *colon = strchr (header, ':');

      host = g_ascii_strdown (header, colon ? colon - header : -1);
    }
  if (host[0] != '\0' && host[strlen (host) - 1] == '.')
    host[strlen (host) - 1] = '\0';
  if (g_hostname_is_ip_address (host) || g_str_equal (host, "localhost") ||
      g_strcmp0 (host, server->public_host) == 0)
    return TRUE;
  for (guint i = 0; extra && extra[i]; i++)
    if (g_str_equal (extra[i], "*") || g_str_equal (extra[i], host))
      return TRUE;
  return FALSE;
}

static gboolean
is_trusted_proxy (TocsinRelay  *relay,
                  GInetAddress *address)
{
  GPtrArray *proxies = relay->config.trusted_proxies;

  for (guint i = 0; proxies != NULL && i < proxies->len; i++)
    if (g_inet_address_mask_matches (g_ptr_array_index (proxies, i), address))
      return TRUE;
  return FALSE;
}

/* At most this many X-Forwarded-For entries are looked at, from the right: a longer chain is a
 * client's own invention, and its left part says nothing trustworthy. */
#define MAX_FORWARDED_HOPS 16

char *
tocsin_relay_server_client_address (TocsinRelay       *relay,
                                    SoupServerMessage *msg)
{
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);
  g_autoptr(GInetAddress) client = NULL;
  const char *forwarded;

  if (!G_IS_INET_SOCKET_ADDRESS (remote))
    return NULL;
  client = g_object_ref (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));

  /* Only a proxy the operator named may say who the client is: anyone else could forge it. */
  forwarded = soup_message_headers_get_list (soup_server_message_get_request_headers (msg),
                                             "X-Forwarded-For");
  if (relay != NULL && forwarded != NULL && is_trusted_proxy (relay, client))
    {
      g_auto(GStrv) hops = g_strsplit (forwarded, ",", -1);
      guint n = g_strv_length (hops), seen = 0;

      /* Right to left: each hop was added by the proxy at its right. The first address that is
       * not a trusted proxy is the client; a hop that is not an address ends the walk. */
      for (guint i = n; i > 0 && seen < MAX_FORWARDED_HOPS; i--, seen++)
        {
          g_autoptr(GInetAddress) hop = g_inet_address_new_from_string (g_strstrip (hops[i - 1]));

          if (hop == NULL)
            break;
          g_set_object (&client, hop);
          if (!is_trusted_proxy (relay, hop))
            break;
        }
    }
  return g_inet_address_to_string (client);
}

typedef struct
{
  Server *server;    /* borrowed: it outlives every request */
  char   *address;
} TokenMiss;

static void
token_miss_free (gpointer  data,
                 GClosure *closure)
{
  TokenMiss *miss = data;

  g_free (miss->address);
  g_free (miss);
}

static void
note_token_miss (SoupServerMessage *msg,
                 gpointer           user_data)
{
  TokenMiss *miss = user_data;

  /* Gotify answers an unknown token 401. */
  if (soup_server_message_get_status (msg) == SOUP_STATUS_NOT_FOUND ||
      soup_server_message_get_status (msg) == SOUP_STATUS_UNAUTHORIZED)
    tocsin_relay_throttle_note_miss (miss->server->relay.unknown_tokens, miss->address);
}

static void
route (SoupServer        *soup_server,
       SoupServerMessage *msg,
       const char        *path,
       GHashTable        *query,
       gpointer           user_data)
{
  Server *server = user_data;
  RequestGuard *guard = g_object_get_data (G_OBJECT (msg), GUARD_KEY);
  gboolean token_url = g_str_has_prefix (path, "/t/") || g_str_has_prefix (path, "/s/") ||
                       g_str_has_prefix (path, "/d/") ||
                       tocsin_relay_compat_match (soup_server_message_get_method (msg), path,
                                                  NULL) != TOCSIN_RELAY_COMPAT_NONE;
  g_autofree char *address = NULL;

  if (guard != NULL && guard->refused)
    {
      /* What arrived is a truncated body: nothing may act on it. */
      soup_server_message_set_status (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, NULL);
      return;
    }

  if ((g_str_equal (path, "/v1/channels") || g_str_has_prefix (path, "/v1/channels/") ||
       g_str_equal (path, "/v1/direct") || g_str_has_prefix (path, "/v1/direct/")) &&
      !host_allowed (server, soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                           "Host")))
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_MISDIRECTED_REQUEST,
                                       _("This relay’s owner API does not answer to this host "
                                         "name. Use the relay’s address, or add the name to "
                                         "allowed-hosts in its configuration."));
      return;
    }

  /* After the Host check: a rebound name is refused before it could pass as the same origin. */
  if (tocsin_relay_cors_handle (&server->relay.config, msg, path))
    return;

  if (token_url)
    {
      guint retry;

      address = tocsin_relay_server_client_address (&server->relay, msg);
      retry = tocsin_relay_throttle_retry_after (server->relay.unknown_tokens, address);
      if (retry > 0)
        {
          g_autofree char *seconds = g_strdup_printf ("%u", retry);

          soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                        "Retry-After", seconds);
          /* Direct keys answer in Echobell's shape (tocsin-relay-direct.c). */
          (g_str_has_prefix (path, "/d/") ? tocsin_relay_direct_reply_error
                                          : tocsin_relay_server_reply_error)
            (msg, 429, _("Too many unknown tokens came from your address; check the URL, and "
                         "try again after Retry-After seconds."));
          return;
        }
    }

  /* The answer may come later (the token is looked up off the main loop): the miss is counted
   * once it is written. */
  if (token_url && address != NULL)
    {
      TokenMiss *miss = g_new0 (TokenMiss, 1);

      miss->server = server;
      miss->address = g_steal_pointer (&address);
      g_signal_connect_data (msg, "wrote-headers", G_CALLBACK (note_token_miss), miss,
                             (GClosureNotify) token_miss_free, 0);
    }
  dispatch (server, msg, path);
}

/* ---- Keep-alive ---- */

/* libsoup 3.2 loses track of a kept-alive HTTP/1.1 connection that ends while it waits for the
 * next request: if the client closes it, or the idle timeout fires, before a first byte of that
 * request, the connection is neither answered nor disconnected (soup-server-message-io-http1.c
 * soup_server_message_io_http1_finished(); fixed upstream in d20c6601, after 3.2). It would stay
 * open, deaf, and hold its descriptor for good. The first request on a connection does not have
 * this flaw. So once a request has finished and libsoup keeps the connection, the relay watches
 * the socket until the next request begins, at a priority above libsoup's (which reads at the
 * default one), so that it always hears first. A byte of the next request: libsoup reads it, the
 * request has started, and libsoup handles whatever follows. The client hanging up, or the
 * connection idle for just under the idle timeout (before libsoup's read times out): the relay
 * takes the connection back (soup_server_message_steal_connection()) and closes it, or hands it
 * in again as a new connection, whose next request is again a first one, if libsoup holds bytes
 * of a pipelined request in its buffer. Over TLS a byte in the socket may be the end of the
 * session (close_notify), so there the relay still hands every kept-alive connection in again
 * after each request (conn_recycle()); for plain HTTP that cost about half of the relay's CPU per
 * webhook, and wrapped the streams one layer deeper whenever the next request was already
 * buffered (docs/performance.md). */
static void
conn_free (gpointer data)
{
  Conn *conn = data;

  g_clear_handle_id (&conn->recycle_id, g_source_remove);
  g_clear_handle_id (&conn->watch_id, g_source_remove);
  g_clear_object (&conn->last);
  g_clear_object (&conn->connection);
  g_clear_object (&conn->local);
  g_clear_object (&conn->remote);
  g_free (conn);
}

static Conn *
conn_for_message (Server            *server,
                  SoupServerMessage *msg)
{
  GSocket *socket = tocsin_relay_server_get_socket (msg);

  return socket ? g_hash_table_lookup (server->sockets, socket) : NULL;
}

static gboolean
conn_recycle (gpointer user_data)
{
  Conn *conn = user_data;
  g_autoptr(SoupServerMessage) last = g_steal_pointer (&conn->last);
  g_autoptr(GIOStream) stolen = NULL;
  GInputStream *input;
  GIOStream *stream;

  conn->recycle_id = 0;
  /* Closed: libsoup ended it (Connection: close, an error), and it is already gone. A request
   * under way: it will finish, and come back here. */
  if (last == NULL || !conn->between || g_socket_is_closed (conn->socket) ||
      conn->server->stopping)
    return G_SOURCE_REMOVE;

  stolen = soup_server_message_steal_connection (last);
  if (stolen == NULL)
    return G_SOURCE_REMOVE;
  /* libsoup may hold bytes of a pipelined request in its buffer: then keep its stream (which
   * has them) for this round; otherwise go back to the bare connection, so that wrappers never
   * pile up. */
  input = g_io_stream_get_input_stream (stolen);
  if (G_IS_POLLABLE_INPUT_STREAM (input) &&
      g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (input)))
    stream = stolen;
  else
    stream = tocsin_relay_tls_get_stream (conn->remote, G_IO_STREAM (conn->connection));
  soup_server_accept_iostream (conn->server->relay.server, stream, conn->local, conn->remote,
                               NULL);
  return G_SOURCE_REMOVE;
}

/* The watch of a plain HTTP connection between two requests (see above). */
static gboolean
conn_between_event (gint         fd,
                    GIOCondition condition,
                    gpointer     user_data)
{
  Conn *conn = user_data;
  g_autoptr(SoupServerMessage) last = NULL;
  g_autoptr(GIOStream) stolen = NULL;
  GInputStream *input;
  gboolean expired = conn->watch_until > 0 && g_get_monotonic_time () >= conn->watch_until;
  char byte;
  gssize n;

  if (!conn->between || g_socket_is_closed (conn->socket) || conn->server->stopping)
    {
      conn->watch_id = 0;
      return G_SOURCE_REMOVE;
    }
  n = recv (fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0)
    {
      /* The next request: libsoup reads it next, and from its first byte it is safe. */
      conn->watch_id = 0;
      inspect_head (conn->server, fd, &conn->line_too_long);
      return G_SOURCE_REMOVE;
    }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) && !expired)
    return G_SOURCE_CONTINUE;

  /* End of file, an error, or idle too long: libsoup has not read it yet (it would lose the
   * connection), so the connection can still be taken back. */
  conn->watch_id = 0;
  last = g_steal_pointer (&conn->last);
  if (last == NULL)
    return G_SOURCE_REMOVE;
  stolen = soup_server_message_steal_connection (last);
  if (stolen == NULL)
    return G_SOURCE_REMOVE;
  input = g_io_stream_get_input_stream (stolen);
  if (G_IS_POLLABLE_INPUT_STREAM (input) &&
      g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (input)))
    {
      /* A pipelined request is in libsoup's buffer: it is answered, then the end is seen. */
      soup_server_accept_iostream (conn->server->relay.server, stolen, conn->local,
                                   conn->remote, NULL);
      return G_SOURCE_REMOVE;
    }
  g_io_stream_close (stolen, NULL, NULL);
  /* The sweep forgets the connection. */
  g_socket_close (conn->socket, NULL);
  return G_SOURCE_REMOVE;
}

static void
conn_watch_between (Conn *conn)
{
  guint idle_timeout = conn->server->relay.config.idle_timeout;
  GSource *source;

  if (conn->watch_id != 0)
    return;
  source = g_unix_fd_source_new (g_socket_get_fd (conn->socket), G_IO_IN | G_IO_HUP | G_IO_ERR);
  conn->watch_until = 0;
  if (idle_timeout > 0)
    {
      gint64 timeout_us = (gint64) idle_timeout * G_USEC_PER_SEC;

      /* Before the socket's own timeout, which libsoup would trip on. */
      conn->watch_until = g_get_monotonic_time () + timeout_us -
                          MIN (timeout_us / 10, G_USEC_PER_SEC / 2);
      g_source_set_ready_time (source, conn->watch_until);
    }
  g_source_set_priority (source, G_PRIORITY_HIGH);
  g_source_set_callback (source, G_SOURCE_FUNC (conn_between_event), conn, NULL);
  g_source_set_static_name (source, "[tocsin-relay] between requests");
  conn->watch_id = g_source_attach (source, NULL);
  g_source_unref (source);
}

/* ---- Bounding each request ---- */

/* libsoup 3.2 reads a whole request body into memory before any handler sees it, and gives a
 * request as long as it likes to arrive, byte by byte (slowloris). So each request gets a guard
 * from its first byte: the request (head and body) must arrive within the idle timeout, and a body
 * past max-body is refused as it arrives (by its Content-Length, or for a chunked body once that
 * much has come), not after it has been read whole. */

/* libsoup 3.2 drops a request whose head (request line and headers) passes 64 KiB without a
 * word: its read fails with "Header too big" (soup-message-io-data.c), the message is finished
 * with status 500 but never got a method, so nothing is written, and the connection is closed
 * (soup-server.c request_finished()). So while a head is read the relay keeps a duplicate of
 * the socket's descriptor; when the message goes without headers and libsoup's reason is that
 * limit, the relay answers itself on the duplicate: 414 if the relay's peek at the head
 * (inspect_head()) saw no end to the request line, 431 otherwise.
 *
 * The duplicate must exist before libsoup reads a byte of the head: libsoup reads a first
 * request synchronously inside soup_server_accept_iostream(), and reads all the kernel holds,
 * so a head that is there whole fails and closes the socket in that very call. The relay once
 * handed a connection to libsoup at once and, finding no byte yet, waited for the first one to
 * take the duplicate; a client's bytes that landed between that look and libsoup's read (a
 * loaded machine, ASan) were read by libsoup first, and the client got a bare close. Now a plain
 * connection goes to libsoup only once its first byte is there (accept_when_readable()), and
 * request_started() takes the duplicate unconditionally, before libsoup reads: no timing can
 * come between them. Two limits stay: TLS (the relay cannot write into the session), and
 * MAX_HEAD_FDS heads being read at once (one more gets libsoup's bare close). */
/* Peeks at the head the kernel holds for @fd before libsoup reads it (see tocsin-relay-head.h).
 * A target libsoup would refuse with an empty 400 is answered here, with its sentence, on a
 * duplicate of the socket, which is then shut down: libsoup's own answer fails to write, and it
 * drops the connection. Returns TRUE if the request was answered. *@line_too_long says the
 * first line had not ended in what had come, for a 414 once libsoup gives up on the head. */
static gboolean
inspect_head (Server   *server,
              int       fd,
              gboolean *line_too_long)
{
  static char peek[TOCSIN_RELAY_HEAD_PEEK];
  g_autofree char *sentence = NULL;
  g_autoptr(GSocket) socket = NULL;
  gssize n;
  int dup_fd;

  if (server->tls != NULL)
    return FALSE;
  n = recv (fd, peek, sizeof peek, MSG_PEEK | MSG_DONTWAIT);
  if (n <= 0)
    return FALSE;
  switch (tocsin_relay_head_inspect (peek, n, &sentence))
    {
    case TOCSIN_RELAY_HEAD_LINE_TOO_LONG:
      *line_too_long = TRUE;
      return FALSE;
    case TOCSIN_RELAY_HEAD_UNKNOWN:
      /* No line end in the first KiB or more that has come (under load, a long URL arrives in
       * pieces, and libsoup reads the rest before a second look could): if libsoup then gives
       * up on the head, it was the line that was too long. A few bytes say nothing (a client
       * that sends byte by byte). */
      if (n >= 1024)
        *line_too_long = TRUE;
      return FALSE;
    case TOCSIN_RELAY_HEAD_BAD_TARGET:
      break;
    case TOCSIN_RELAY_HEAD_OK:
    default:
      return FALSE;
    }
  dup_fd = fcntl (fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0)
    return FALSE;
  socket = g_socket_new_from_fd (dup_fd, NULL);
  if (socket == NULL)
    {
      close (dup_fd);
      return FALSE;
    }
  refuse_on_socket (server, socket, 400, "Bad Request", "", sentence);
  return TRUE;
}

static gboolean
head_too_big (SoupServerMessage *msg)
{
  const char *reason = soup_server_message_get_reason_phrase (msg);

  return reason != NULL && (g_str_equal (reason, "Header too big") ||
                            g_str_equal (reason, g_dgettext ("libsoup-3.0", "Header too big")));
}

static void
request_guard_drop_head_fd (RequestGuard *guard)
{
  if (guard->head_fd >= 0)
    {
      close (guard->head_fd);
      guard->head_fd = -1;
      guard->server->head_fds--;
    }
}

static void
request_guard_take_head_fd (RequestGuard *guard,
                            int           fd)
{
  if (guard->head_fd < 0 && guard->server->head_fds < MAX_HEAD_FDS)
    {
      guard->head_fd = fcntl (fd, F_DUPFD_CLOEXEC, 0);
      if (guard->head_fd >= 0)
        guard->server->head_fds++;
    }
}

/* A weak reference: it runs in the message's dispose, while its reason phrase is still there
 * (qdata goes in finalize, after it). */
static void
request_gone (gpointer  data,
              GObject  *where_the_message_was)
{
  RequestGuard *guard = data;

  if (guard->head_fd >= 0)
    {
      g_autoptr(GSocket) socket = NULL;

      guard->server->head_fds--;
      if (head_too_big (guard->msg) && !guard->server->stopping)
        socket = g_socket_new_from_fd (guard->head_fd, NULL);
      if (socket != NULL)
        {
          g_autofree char *limit = g_format_size_full (64 * 1024, G_FORMAT_SIZE_IEC_UNITS);
          g_autofree char *sentence = NULL;

          if (guard->line_too_long)
            sentence = g_strdup_printf (_("The request’s URL is longer than this relay reads "
                                          "(%s); shorten it, or send the values in a POST "
                                          "body."), limit);
          else
            sentence = g_strdup_printf (_("The request’s line and headers are larger than "
                                          "this relay reads (%s); shorten the URL or the "
                                          "headers."), limit);
          g_message ("A request head over %s from %s was refused", limit,
                     guard->peer ? guard->peer : "a client");
          if (guard->line_too_long)
            refuse_on_socket (guard->server, socket, 414, "URI Too Long", "", sentence);
          else
            refuse_on_socket (guard->server, socket, 431, "Request Header Fields Too Large", "",
                              sentence);
        }
      else
        close (guard->head_fd);
      guard->head_fd = -1;
    }
}

static void
request_guard_free (gpointer data)
{
  RequestGuard *guard = data;

  g_clear_handle_id (&guard->deadline_id, g_source_remove);
  request_guard_drop_head_fd (guard);
  g_free (guard->peer);
  g_free (guard);
}

static gboolean
request_too_slow (gpointer user_data)
{
  RequestGuard *guard = user_data;
  GSocket *socket = tocsin_relay_server_get_socket (guard->msg);

  guard->deadline_id = 0;
  /* libsoup's read then ends, and it closes the connection. Shutting down rather than closing
   * keeps the descriptor libsoup still polls valid. */
  if (socket != NULL && !g_socket_is_closed (socket))
    g_socket_shutdown (socket, TRUE, TRUE, NULL);
  /* A refused request was paused; now let libsoup read the end of it. */
  if (guard->refused)
    soup_server_message_unpause (guard->msg);
  return G_SOURCE_REMOVE;
}

/* max-body bounds webhooks (ntfy's and Gotify's too); the owner API's bodies (a few templates)
 * may always take 64 KiB. */
static guint64
request_body_cap (RequestGuard *guard)
{
  const char *path = g_uri_get_path (soup_server_message_get_uri (guard->msg));
  gsize max_body = guard->server->relay.config.max_body;

  if (g_str_has_prefix (path, "/t/") || g_str_has_prefix (path, "/d/") ||
      tocsin_relay_compat_match (soup_server_message_get_method (guard->msg), path, NULL) !=
      TOCSIN_RELAY_COMPAT_NONE)
    return max_body;
  return MAX (max_body, 64 * 1024);
}

static void
request_refuse_too_large (RequestGuard *guard)
{
  GSocket *socket = tocsin_relay_server_get_socket (guard->msg);
  g_autoptr(JsonObject) object = json_object_new ();
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *limit = NULL;
  g_autofree char *sentence = NULL;
  g_autofree char *body = NULL;
  g_autofree char *response = NULL;

  if (guard->refused)
    return;
  guard->refused = TRUE;
  /* Whatever else comes is read and dropped, not kept. */
  soup_message_body_set_accumulate (soup_server_message_get_request_body (guard->msg), FALSE);
  soup_message_body_truncate (soup_server_message_get_request_body (guard->msg));
  if (socket == NULL || g_socket_is_closed (socket))
    return;

  limit = g_format_size_full (request_body_cap (guard), G_FORMAT_SIZE_IEC_UNITS);
  sentence = g_strdup_printf (_("The body is larger than this relay takes (%s)"), limit);
  json_object_set_string_member (object, "error", sentence);
  if (g_str_has_prefix (g_uri_get_path (soup_server_message_get_uri (guard->msg)), "/d/"))
    {
      json_object_set_boolean_member (object, "success", FALSE);
      json_object_set_string_member (object, "message", sentence);
    }
  node = json_node_init_object (json_node_alloc (), object);
  body = tocsin_json_to_string (node, FALSE);
  response = g_strdup_printf ("HTTP/1.1 413 Request Entity Too Large\r\n"
                              "Content-Type: application/json\r\n"
                              "Content-Length: %zu\r\n"
                              "Cache-Control: no-store\r\n"
                              "Connection: close\r\n"
                              "\r\n%s", strlen (body), body);
  /* libsoup has written nothing for this request yet (it is still reading it), so the answer can
   * go on the socket itself; the write side then closes, so nothing libsoup writes later follows
   * it. libsoup stops reading (paused) and the connection is closed after a short linger, so
   * that a client that reads while it sends sees the answer before the close. */
  tocsin_relay_tls_send (soup_server_message_get_remote_address (guard->msg), socket, response,
                         strlen (response));
  g_socket_shutdown (socket, FALSE, TRUE, NULL);
  soup_server_message_pause (guard->msg);
  g_clear_handle_id (&guard->deadline_id, g_source_remove);
  guard->deadline_id = g_timeout_add_seconds (LINGER_SECONDS, request_too_slow, guard);
}

static void
request_got_headers (SoupServerMessage *msg,
                     gpointer           user_data)
{
  RequestGuard *guard = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);

  request_guard_drop_head_fd (guard);

  if (soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH &&
      (guint64) soup_message_headers_get_content_length (headers) > request_body_cap (guard))
    request_refuse_too_large (guard);
}

static void
request_got_chunk (SoupServerMessage *msg,
                   GBytes            *chunk,
                   gpointer           user_data)
{
  RequestGuard *guard = user_data;

  guard->received += g_bytes_get_size (chunk);
  if (guard->received > request_body_cap (guard))
    request_refuse_too_large (guard);
}

static void
request_got_body (SoupServerMessage *msg,
                  gpointer           user_data)
{
  RequestGuard *guard = user_data;

  /* Read whole in time. (A refused one keeps its short linger.) */
  if (!guard->refused)
    g_clear_handle_id (&guard->deadline_id, g_source_remove);
}

static void
request_done (SoupServerMessage *msg,
              gpointer           user_data)
{
  RequestGuard *guard = user_data;
  Conn *conn = conn_for_message (guard->server, msg);

  g_clear_handle_id (&guard->deadline_id, g_source_remove);
  if (conn != NULL && !g_socket_is_closed (conn->socket))
    {
      conn->between = TRUE;
      g_set_object (&conn->last, msg);
      if (conn->server->tls == NULL)
        conn_watch_between (conn);
      else if (conn->recycle_id == 0)
        conn->recycle_id = g_idle_add_full (G_PRIORITY_HIGH, conn_recycle, conn, NULL);
    }
}

static void
request_started (SoupServer        *soup_server,
                 SoupServerMessage *msg,
                 gpointer           user_data)
{
  Server *server = user_data;
  RequestGuard *guard = g_new0 (RequestGuard, 1);
  Conn *conn = conn_for_message (server, msg);
  /* A request after another on a kept-alive connection starts once libsoup has read some of
   * it; a first request starts before libsoup reads anything. */
  gboolean reading = conn != NULL && conn->between;

  if (conn != NULL)
    {
      conn->between = FALSE;
      g_clear_handle_id (&conn->watch_id, g_source_remove);
    }
  guard->server = server;
  guard->msg = msg;
  guard->head_fd = -1;
  /* See head_too_big(); plain HTTP only (TLS would need the session, and the answer would
   * be plain text). */
  if (server->tls == NULL && conn != NULL && !g_socket_is_closed (conn->socket))
    {
      int fd = g_socket_get_fd (conn->socket);

      guard->peer = address_string (conn->remote);
      guard->line_too_long = conn->line_too_long;
      conn->line_too_long = FALSE;
      /* Here libsoup has read nothing of a first request (it was handed the connection once
       * its first byte came: accept_when_readable()), or, on a kept-alive connection, read
       * some of it just now and not yet given up (conn_between_event() looked at it). Either
       * way the duplicate is taken before libsoup could close the socket. A head libsoup holds
       * in its buffer (a pipelined request handed in again) leaves nothing to peek at. */
      if (reading || !inspect_head (server, fd, &guard->line_too_long))
        request_guard_take_head_fd (guard, fd);
    }
  if (conn != NULL && conn->accepted_at > 0)
    {
      /* A first request: its time runs from the accept, not from its first byte. */
      gint64 limit = conn->accepted_at +
                     (gint64) MAX (server->relay.config.idle_timeout, 1) * G_USEC_PER_SEC;

      guard->deadline_id = g_timeout_add (MAX (limit - g_get_monotonic_time (), 0) / 1000,
                                          request_too_slow, guard);
      conn->accepted_at = 0;
    }
  else
    guard->deadline_id = g_timeout_add_seconds (MAX (server->relay.config.idle_timeout, 1),
                                                request_too_slow, guard);
  g_object_set_data_full (G_OBJECT (msg), GUARD_KEY, guard, request_guard_free);
  g_object_weak_ref (G_OBJECT (msg), request_gone, guard);
  g_signal_connect (msg, "got-headers", G_CALLBACK (request_got_headers), guard);
  g_signal_connect (msg, "got-chunk", G_CALLBACK (request_got_chunk), guard);
  g_signal_connect (msg, "got-body", G_CALLBACK (request_got_body), guard);
  /* A message that has finished needs no deadline, even if it lingers in memory. */
  g_signal_connect (msg, "finished", G_CALLBACK (request_done), guard);
}

/* ---- Accepting ---- */

static void
sweep_closed (Server *server)
{
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, server->sockets);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (g_socket_is_closed (key))
      g_hash_table_iter_remove (&iter);
}

static gboolean
sweep_timeout (gpointer user_data)
{
  sweep_closed (user_data);
  tocsin_relay_throttle_sweep (((Server *) user_data)->relay.unknown_tokens);
  return G_SOURCE_CONTINUE;
}

typedef struct
{
  Server  *server;
  GSocket *socket;
  GSource *source;
} Linger;

static void
linger_finish (Linger *linger)
{
  g_socket_close (linger->socket, NULL);
  g_source_destroy (linger->source);
  g_source_unref (linger->source);
  g_object_unref (linger->socket);
  linger->server->lingering--;
  g_free (linger);
}

static gboolean
linger_readable (GSocket      *socket,
                 GIOCondition  condition,
                 gpointer      user_data)
{
  Linger *linger = user_data;
  char buffer[4096];

  /* Drain the request we will never read, so that closing does not send a reset that would
   * destroy our 503 before the client reads it. EOF, an error or the timeout ends it. */
  for (guint i = 0; i < 16; i++)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_receive (socket, buffer, sizeof buffer, NULL, &error);

      if (n > 0)
        continue;
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        return G_SOURCE_CONTINUE;
      linger_finish (linger);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

/* Answers @status with @sentence on @socket itself (libsoup never had it, or has given it up),
 * closes the write side, and drains what the client still sends for a moment before closing,
 * so that the answer is read rather than destroyed by a reset. */
static void
refuse_on_socket (Server     *server,
                  GSocket    *socket,
                  guint       status,
                  const char *phrase,
                  const char *extra_headers,
                  const char *sentence)
{
  g_autofree char *body = NULL;
  g_autofree char *response = NULL;
  g_autoptr(JsonObject) object = json_object_new ();
  g_autoptr(JsonNode) node = NULL;
  Linger *linger;

  g_socket_set_blocking (socket, FALSE);
  json_object_set_string_member (object, "error", sentence);
  node = json_node_init_object (json_node_alloc (), object);
  body = tocsin_json_to_string (node, FALSE);
  response = g_strdup_printf ("HTTP/1.1 %u %s\r\n"
                              "Content-Type: application/json\r\n"
                              "Content-Length: %zu\r\n"
                              "Cache-Control: no-store\r\n"
                              "%s"
                              "Connection: close\r\n"
                              "\r\n%s", status, phrase, strlen (body), extra_headers, body);
  /* A fresh socket's send buffer takes this at once; if not, the client gets a bare close.
   * A TLS client could not read plain text: it gets the bare close. */
  if (server->tls == NULL)
    g_socket_send (socket, response, strlen (response), NULL, NULL);
  g_socket_shutdown (socket, FALSE, TRUE, NULL);

  if (server->lingering >= MAX_LINGERING)
    {
      g_socket_close (socket, NULL);
      return;
    }
  server->lingering++;
  linger = g_new0 (Linger, 1);
  linger->server = server;
  linger->socket = g_object_ref (socket);
  g_socket_set_timeout (socket, LINGER_SECONDS);
  linger->source = g_socket_create_source (socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_callback (linger->source, G_SOURCE_FUNC (linger_readable), linger, NULL);
  g_source_attach (linger->source, NULL);
}

static void
refuse (Server  *server,
        GSocket *socket)
{
  refuse_on_socket (server, socket, 503, "Service Unavailable", "Retry-After: 5\r\n",
                    _("The relay has as many connections as it may take; try again in a few "
                      "seconds."));
}

/* A plain connection goes to libsoup once its first byte has come (see above inspect_head()).
 * Until then the relay watches it, above libsoup's priority, for as long as libsoup would have
 * waited (the first request's deadline runs from the accept: request_started()); if it ends or
 * stays silent, the relay closes it, and the sweep forgets it. */
static gboolean
conn_first_byte (gint         fd,
                 GIOCondition condition,
                 gpointer     user_data)
{
  Conn *conn = user_data;
  Server *server = conn->server;
  gint64 limit = conn->accepted_at +
                 (gint64) MAX (server->relay.config.idle_timeout, 1) * G_USEC_PER_SEC;
  char byte;
  gssize n;

  if (g_socket_is_closed (conn->socket))
    {
      conn->watch_id = 0;
      return G_SOURCE_REMOVE;
    }
  n = recv (fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) &&
      g_get_monotonic_time () < limit && !server->stopping)
    return G_SOURCE_CONTINUE;
  conn->watch_id = 0;
  if (n > 0 && !server->stopping)
    soup_server_accept_iostream (server->relay.server, G_IO_STREAM (conn->connection),
                                 conn->local, conn->remote, NULL);
  else
    g_socket_close (conn->socket, NULL);
  return G_SOURCE_REMOVE;
}

static void
accept_when_readable (Conn *conn)
{
  Server *server = conn->server;
  GSource *source;
  char byte;

  /* The usual case: the request came with the connection. */
  if (recv (g_socket_get_fd (conn->socket), &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
    {
      soup_server_accept_iostream (server->relay.server, G_IO_STREAM (conn->connection),
                                   conn->local, conn->remote, NULL);
      return;
    }
  source = g_unix_fd_source_new (g_socket_get_fd (conn->socket), G_IO_IN | G_IO_HUP | G_IO_ERR);
  g_source_set_ready_time (source, conn->accepted_at +
                           (gint64) MAX (server->relay.config.idle_timeout, 1) *
                           G_USEC_PER_SEC);
  g_source_set_priority (source, G_PRIORITY_HIGH);
  g_source_set_callback (source, G_SOURCE_FUNC (conn_first_byte), conn, NULL);
  g_source_set_static_name (source, "[tocsin-relay] first byte");
  conn->watch_id = g_source_attach (source, NULL);
  g_source_unref (source);
}

static void
accept_one (Server  *server,
            GSocket *socket)
{
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GSocketAddress) local = NULL;
  g_autoptr(GSocketAddress) remote = NULL;
  guint max = server->relay.config.max_connections;
  Conn *conn;

  g_socket_set_blocking (socket, FALSE);
  if (g_hash_table_size (server->sockets) >= max)
    sweep_closed (server);
  if (g_hash_table_size (server->sockets) >= max || server->stopping)
    {
      refuse (server, socket);
      return;
    }

  g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, TRUE, NULL);
  g_socket_set_timeout (socket, server->relay.config.idle_timeout);
  local = g_socket_get_local_address (socket, NULL);
  remote = g_socket_get_remote_address (socket, NULL);
  if (remote == NULL)
    {
      /* The peer left between accept() and now. */
      g_socket_close (socket, NULL);
      return;
    }
  g_object_set_data_full (G_OBJECT (remote), SOCKET_KEY, g_object_ref (socket), g_object_unref);
  connection = g_socket_connection_factory_create_connection (socket);
  conn = g_new0 (Conn, 1);
  conn->server = server;
  conn->socket = socket;   /* the table's key holds the reference */
  conn->connection = g_object_ref (connection);
  conn->local = g_object_ref (local);
  conn->remote = g_object_ref (remote);
  if (server->tls == NULL)
    conn->accepted_at = g_get_monotonic_time ();
  g_hash_table_insert (server->sockets, g_object_ref (socket), conn);

  if (server->tls != NULL)
    tocsin_relay_tls_accept (server->relay.server, server->tls, connection, local, remote,
                             server->relay.config.idle_timeout);
  else
    accept_when_readable (conn);
}

static gboolean listener_ready (GSocket *listener, GIOCondition condition, gpointer user_data);

static void
server_watch_listeners (Server *server)
{
  for (guint i = 0; i < server->listeners->len; i++)
    {
      GSource *source = g_socket_create_source (g_ptr_array_index (server->listeners, i), G_IO_IN,
                                                NULL);

      g_source_set_callback (source, G_SOURCE_FUNC (listener_ready), server, NULL);
      g_source_attach (source, NULL);
      g_ptr_array_add (server->sources, source);
    }
}

static gboolean
accept_resume (gpointer user_data)
{
  Server *server = user_data;

  server->accept_resume_id = 0;
  if (!server->stopping)
    server_watch_listeners (server);
  return G_SOURCE_REMOVE;
}

/* accept() failed other than for want of a connection. Out of descriptors (EMFILE, ENFILE) the
 * listener stays readable, so the relay would spin on it and log each failure: instead it stops
 * accepting for ACCEPT_PAUSE_MS (the kernel keeps new connections in the backlog meanwhile), and
 * logs once per LOG_INTERVAL_SECONDS, with a count. */
static void
accept_failed (Server *server,
               GError *error)
{
  gint64 now = g_get_monotonic_time ();

  server->accept_failures++;
  if (server->accept_log_at == 0 || now - server->accept_log_at >= LOG_INTERVAL_SECONDS * G_USEC_PER_SEC)
    {
      g_message ("accept() failed %u time(s) in the last %u s: %s", server->accept_failures,
                 LOG_INTERVAL_SECONDS, error->message);
      server->accept_log_at = now;
      server->accept_failures = 0;
    }
  if ((g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES) ||
       g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE)) &&
      server->accept_resume_id == 0)
    {
      for (guint i = 0; i < server->sources->len; i++)
        g_source_destroy (g_ptr_array_index (server->sources, i));
      g_ptr_array_set_size (server->sources, 0);
      /* Connections that are closed but not yet swept still hold their descriptors. */
      sweep_closed (server);
      server->accept_resume_id = g_timeout_add (ACCEPT_PAUSE_MS, accept_resume, server);
    }
}

static gboolean
listener_ready (GSocket      *listener,
                GIOCondition  condition,
                gpointer      user_data)
{
  Server *server = user_data;

  /* Bounded, so that a flood of connections cannot starve the streams already open. */
  for (guint i = 0; i < 256; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GSocket) socket = g_socket_accept (listener, NULL, &error);

      if (socket == NULL)
        {
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              accept_failed (server, error);
              /* The sources may be gone (paused): this one must not run again. */
              return server->accept_resume_id != 0 ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
            }
          break;
        }
      accept_one (server, socket);
    }
  return G_SOURCE_CONTINUE;
}

/* Raises the soft limit on descriptors to the hard one (systemd and shells start at 1024), and
 * keeps max-connections within it, with FD_HEADROOM to spare, so that the relay refuses
 * connections with a 503 before it runs out of descriptors. */
static void
server_fit_descriptors (Server *server)
{
  struct rlimit limit;
  guint64 usable, allowed;

  if (getrlimit (RLIMIT_NOFILE, &limit) != 0)
    return;
  if (limit.rlim_cur < limit.rlim_max)
    {
      struct rlimit raised = limit;

      /* RLIM_INFINITY is not a valid soft limit for descriptors: cap it at a large number. */
      raised.rlim_cur = limit.rlim_max == RLIM_INFINITY ? 1048576 : limit.rlim_max;
      if (setrlimit (RLIMIT_NOFILE, &raised) == 0)
        limit = raised;
    }
  usable = limit.rlim_cur == RLIM_INFINITY ? G_MAXUINT : (guint64) limit.rlim_cur;
  allowed = usable > FD_HEADROOM * 2 ? usable - FD_HEADROOM : usable / 2;
  if (server->config.relay.max_connections > allowed)
    {
      g_message ("Taking at most %" G_GUINT64_FORMAT " connections instead of %u: the relay may "
                 "open %" G_GUINT64_FORMAT " descriptors (ulimit -n, LimitNOFILE=)", allowed,
                 server->config.relay.max_connections, usable);
      server->config.relay.max_connections = (guint) MAX (allowed, 1);
    }
}

static gboolean parse_listen (const char    *text,
                              GInetAddress **address,
                              guint16       *port,
                              GError       **error);

gboolean
tocsin_relay_server_parse_listen (const char    *text,
                                  GInetAddress **address,
                                  guint16       *port,
                                  GError       **error)
{
  return parse_listen (text, address, port, error);
}

static gboolean
parse_listen (const char       *text,
              GInetAddress    **address,
              guint16          *port,
              GError          **error)
{
  g_autofree char *host = NULL;
  const char *port_text;
  guint64 value;
  char *end = NULL;

  if (text[0] == '[')
    {
      const char *close = strchr (text, ']');

      if (close == NULL || close[1] != ':')
        goto bad;
      host = g_strndup (text + 1, close - text - 1);
      port_text = close + 2;
    }
  else
    {
      const char *colon = strrchr (text, ':');

      if (colon == NULL || strchr (text, ':') != colon)
        goto bad;
      host = g_strndup (text, colon - text);
      port_text = colon + 1;
    }
  if (!g_ascii_isdigit (*port_text))
    goto bad;
  value = g_ascii_strtoull (port_text, &end, 10);
  if (*end != '\0' || value > 65535)
    goto bad;
  *port = (guint16) value;

  if (*host == '\0' || g_str_equal (host, "*"))
    *address = g_inet_address_new_any (G_SOCKET_FAMILY_IPV4);
  else if (g_str_equal (host, "localhost"))
    *address = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  else
    *address = g_inet_address_new_from_string (host);
  if (*address == NULL)
    goto bad;
  if (text[0] == '[' && g_inet_address_get_family (*address) != G_SOCKET_FAMILY_IPV6)
    {
      g_clear_object (address);
      goto bad;
    }
  return TRUE;

bad:
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
               _("--listen takes an IP address and a port, such as 127.0.0.1:8080, "
                 "0.0.0.0:8080 or [::1]:8080, not “%s”."), text);
  return FALSE;
}

static gboolean
server_listen (Server      *server,
               const char  *text,
               gboolean    *loopback,
               GError     **error)
{
  g_autoptr(GInetAddress) address = NULL;
  g_autoptr(GSocketAddress) bind_address = NULL;
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GError) local_error = NULL;
  GSocketFamily family;
  GSource *source;
  guint16 port = 0;

  if (!parse_listen (text, &address, &port, error))
    return FALSE;
  family = g_inet_address_get_family (address);
  *loopback = *loopback && g_inet_address_get_is_loopback (address);

  socket = g_socket_new (family, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &local_error);
  if (socket == NULL)
    goto fail;
  /* [::] and 0.0.0.0 may both be given: keep IPv6 sockets to IPv6. */
  if (family == G_SOCKET_FAMILY_IPV6)
    g_socket_set_option (socket, IPPROTO_IPV6, IPV6_V6ONLY, TRUE, NULL);
  bind_address = g_inet_socket_address_new (address, port);
  if (!tocsin_relay_workers_bind (socket, bind_address, &local_error))
    goto fail;
  g_socket_set_listen_backlog (socket, (gint) server->config.backlog);
  if (!g_socket_listen (socket, &local_error))
    goto fail;
  g_socket_set_blocking (socket, FALSE);
  bound = g_socket_get_local_address (socket, &local_error);
  if (bound == NULL)
    goto fail;

  source = g_socket_create_source (socket, G_IO_IN, NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (listener_ready), server, NULL);
  g_source_attach (source, NULL);
  g_ptr_array_add (server->sources, source);
  g_ptr_array_add (server->listeners, g_steal_pointer (&socket));
  {
    g_autofree char *where = address_string (bound);

    g_ptr_array_add (server->urls, g_strdup_printf ("%s://%s", server->tls ? "https" : "http",
                                                    where));
  }
  return TRUE;

fail:
  g_set_error (error, local_error->domain, local_error->code,
               _("Could not listen on %s: %s"), text, local_error->message);
  return FALSE;
}

/* libsoup 3.2 keeps an HTTP/1.1 connection open after a response only while the SoupServer has
 * at least one listener of its own (request_finished() in soup-server.c tests priv->listeners);
 * connections handed in with soup_server_accept_iostream() are otherwise closed after every
 * response, which breaks keep-alive. So the server gets one listener that nobody can reach: one
 * end of a socketpair. soup_listener_new() takes a connected socket; its accept source waits
 * for the socket to become readable, and nothing is ever written to the other end, which we keep
 * open (closing it would make our end readable, and an accept() on it would merely fail). Unlike
 * a Unix socket in the data dir or in the abstract namespace (listed in /proc/net/unix), a
 * socketpair has no name that anyone could connect to. */
static gboolean
server_enable_keepalive (Server  *server,
                         GError **error)
{
  g_autoptr(GSocket) ours = NULL;
  int fds[2];

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "socketpair: %s", g_strerror (saved));
      return FALSE;
    }
  ours = g_socket_new_from_fd (fds[0], error);
  if (ours == NULL)
    {
      close (fds[0]);
      close (fds[1]);
      return FALSE;
    }
  server->keepalive_peer = g_socket_new_from_fd (fds[1], error);
  if (server->keepalive_peer == NULL)
    {
      close (fds[1]);
      return FALSE;
    }
  return soup_server_listen_socket (server->relay.server, ours, 0, error);
}

/* ---- Shutdown ---- */

static gboolean
stop_poll (gpointer user_data)
{
  Server *server = user_data;

  if (tocsin_relay_hub_count_connections (server->relay.hub) == 0 ||
      g_get_monotonic_time () >= server->stop_deadline)
    {
      g_main_loop_quit (server->loop);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_stop_signal (gpointer user_data)
{
  Server *server = user_data;

  if (server->stopping)
    {
      /* A second signal: stop waiting for subscribers to say goodbye. */
      g_main_loop_quit (server->loop);
      return G_SOURCE_CONTINUE;
    }
  g_message ("Shutting down");
  server->stopping = TRUE;
  for (guint i = 0; i < server->sources->len; i++)
    g_source_destroy (g_ptr_array_index (server->sources, i));
  tocsin_relay_hub_shutdown (server->relay.hub);
  server->stop_deadline = g_get_monotonic_time () + SHUTDOWN_SECONDS * G_USEC_PER_SEC;
  g_timeout_add (50, stop_poll, server);
  return G_SOURCE_CONTINUE;
}

/* ---- serve ---- */

static void
server_clear (Server *server)
{
  if (server->sources)
    for (guint i = 0; i < server->sources->len; i++)
      g_source_destroy (g_ptr_array_index (server->sources, i));
  g_clear_pointer (&server->sources, g_ptr_array_unref);
  g_clear_handle_id (&server->sweep_id, g_source_remove);
  g_clear_pointer (&server->smtp, tocsin_relay_smtp_server_free);
  g_clear_pointer (&server->relay.cluster, tocsin_relay_cluster_free);
  g_clear_pointer (&server->relay.hub, tocsin_relay_hub_free);
  g_clear_pointer (&server->relay.forwards, tocsin_relay_forwards_free);
  if (server->relay.server)
    soup_server_disconnect (server->relay.server);
  g_clear_object (&server->relay.server);
  g_clear_object (&server->keepalive_peer);
  g_clear_object (&server->tls);
  g_clear_pointer (&server->relay.store, tocsin_relay_store_free);
  g_clear_pointer (&server->listeners, g_ptr_array_unref);
  g_clear_pointer (&server->urls, g_ptr_array_unref);
  g_clear_pointer (&server->sockets, g_hash_table_unref);
  g_clear_pointer (&server->relay.unknown_tokens, tocsin_relay_throttle_free);
  g_clear_pointer (&server->relay.rate_limit, tocsin_relay_rate_limit_free);
  g_clear_pointer (&server->relay.recent, tocsin_relay_recent_free);
  g_clear_handle_id (&server->accept_resume_id, g_source_remove);
  g_clear_pointer (&server->public_host, g_free);
  g_clear_pointer (&server->loop, g_main_loop_unref);
  /* relay.config is a copy of config.relay's pointers: cleared once, through config. */
  memset (&server->relay.config, 0, sizeof server->relay.config);
  tocsin_relay_serve_config_clear (&server->config);
}

int
tocsin_relay_serve (int    argc,
                    char **argv)
{
  Server server = { 0, };
  g_autoptr(GError) error = NULL;
  /* As given: the workers of --workers run with the same (argv is NULL-terminated). */
  g_auto(GStrv) given = g_strdupv (argv);
  gboolean loopback = TRUE;
  int status = 1;

  tocsin_relay_serve_config_init (&server.config);
  if (!tocsin_relay_serve_config_parse (&server.config, &argc, &argv, &error))
    {
      g_printerr ("tocsin-relay serve: %s\n", error->message);
      tocsin_relay_serve_config_clear (&server.config);
      return 2;
    }
  if (tocsin_relay_workers_index () > 0)
    {
      /* A worker of --workers: the supervisor's resolved addresses, mail on worker 1 only. */
      g_strfreev (server.config.listen);
      server.config.listen = tocsin_relay_workers_listen ();
      server.config.workers = 1;
      if (tocsin_relay_workers_index () > 1)
        g_clear_pointer (&server.config.smtp_listen, g_free);
    }
  if (server.config.workers > 1)
    {
      if (server.config.database == NULL)
        {
          g_printerr ("tocsin-relay serve: %s\n",
                      _("--workers needs --database=postgresql://…: with SQLite one process "
                        "serves (its database has one writer)."));
          tocsin_relay_serve_config_clear (&server.config);
          return 2;
        }
      status = tocsin_relay_workers_run (&server.config, given);
      tocsin_relay_serve_config_clear (&server.config);
      return status;
    }

  /* A subscriber that vanishes mid-write must not kill the relay. */
  signal (SIGPIPE, SIG_IGN);

  server.listeners = g_ptr_array_new_with_free_func (g_object_unref);
  server.sources = g_ptr_array_new_with_free_func ((GDestroyNotify) g_source_unref);
  server.urls = g_ptr_array_new_with_free_func (g_free);
  server.sockets = g_hash_table_new_full (g_direct_hash, g_direct_equal, g_object_unref, conn_free);
  server.relay.rate_limit = tocsin_relay_rate_limit_new ();
  server.relay.recent = tocsin_relay_recent_new ();
  server.relay.unknown_tokens = tocsin_relay_throttle_new (MAX_UNKNOWN_TOKENS,
                                                           UNKNOWN_TOKEN_WINDOW_SECONDS,
                                                           MAX_TRACKED_ADDRESSES);
  server.loop = g_main_loop_new (NULL, FALSE);

  if (server.config.database != NULL && tocsin_relay_store_pg_missing () != NULL)
    {
      /* Issue 16: a build without libpq says so rather than serve from SQLite. */
      g_printerr ("tocsin-relay serve: --database: %s\n", tocsin_relay_store_pg_missing ());
      goto out;
    }
  if (server.config.database != NULL
      && server.config.relay.retention_seconds < TOCSIN_RELAY_PG_MIN_RETENTION)
    {
      /* Nodes hand each other messages through the messages table (tocsin-relay-cluster.c). */
      g_printerr ("tocsin-relay serve: %s\n",
                  _("With --database, nodes read new messages from the database: set --retention "
                    "to 60 seconds or more."));
      goto out;
    }
  server.relay.store = tocsin_relay_store_open_database (server.config.relay.data_dir,
                                                         server.config.database, &error);
  if (server.relay.store == NULL)
    {
      g_printerr ("tocsin-relay serve: %s\n", error->message);
      goto out;
    }
  tocsin_relay_store_set_retention (server.relay.store, server.config.relay.retention_seconds);
  if (server.config.node_name != NULL)
    {
      /* Each worker of --workers is a node of its own. */
      g_autofree char *node = tocsin_relay_workers_index () > 0
                              ? g_strdup_printf ("%s/%u", server.config.node_name,
                                                 tocsin_relay_workers_index ())
                              : g_strdup (server.config.node_name);

      tocsin_relay_store_set_node (server.relay.store, node);
    }
  if (server.config.tls_cert != NULL)
    {
      server.tls = tocsin_relay_tls_load (server.config.tls_cert, server.config.tls_key, &error);
      if (server.tls == NULL)
        {
          g_printerr ("tocsin-relay serve: %s\n", error->message);
          goto out;
        }
    }

  server_fit_descriptors (&server);
  /* No trailing space: libsoup would append its own name and version. */
  server.relay.server = g_object_new (SOUP_TYPE_SERVER, "server-header", "tocsin-relay", NULL);
  /* We never use SoupServer's own WebSocket handler, but make sure nothing offers deflate. */
  soup_server_remove_websocket_extension (server.relay.server,
                                          SOUP_TYPE_WEBSOCKET_EXTENSION_DEFLATE);
  soup_server_add_handler (server.relay.server, NULL, route, &server, NULL);
  if (!server_enable_keepalive (&server, &error))
    {
      g_printerr ("tocsin-relay serve: %s\n", error->message);
      goto out;
    }

  for (guint i = 0; server.config.listen[i]; i++)
    if (!server_listen (&server, server.config.listen[i], &loopback, &error))
      {
        g_printerr ("tocsin-relay serve: %s\n", error->message);
        goto out;
      }

  if (server.config.relay.public_url == NULL)
    server.config.relay.public_url = g_strdup (g_ptr_array_index (server.urls, 0));
  /* So that `tocsin-relay channel ...` run beside this server, without --public-url, prints
   * URLs that reach it (with --listen=...:0 only this process knows the port). Not fatal: the
   * command line can still be given --public-url. */
  {
    g_autoptr(GError) local_error = NULL;

    if (!tocsin_relay_store_set_public_url (server.relay.store, server.config.relay.public_url,
                                            &local_error))
      g_message ("Could not record the public URL for the command line: %s",
                 local_error->message);
  }
  if (!server.config.open_relay_set)
    server.config.relay.open_relay = loopback;
  {
    g_autoptr(GUri) uri = g_uri_parse (server.config.relay.public_url, G_URI_FLAGS_NONE, NULL);

    if (uri != NULL && g_uri_get_host (uri) != NULL)
      server.public_host = g_ascii_strdown (g_uri_get_host (uri), -1);
  }
  /* Every part reads the settings from relay.config; the strings stay owned by server.config. */
  server.relay.config = server.config.relay;
  server.relay.hub = tocsin_relay_hub_new (&server.relay);
  if (tocsin_relay_store_get_database (server.relay.store) != NULL)
    server.relay.cluster = tocsin_relay_cluster_new (&server.relay);
  server.relay.forwards = tocsin_relay_forwards_new (&server.relay);
  g_signal_connect (server.relay.server, "request-started", G_CALLBACK (request_started), &server);

  /* The email trigger (tocsin-relay-smtp.c). The domain is recorded for the command line, as
   * the public URL is, so that `tocsin-relay channel show` prints the address mail reaches.
   * Without it, the owner API shows no email address: none would reach this relay. */
  if (server.config.smtp_listen != NULL)
    {
      g_autofree char *smtp_url = NULL;

      tocsin_relay_mail_set_domain (server.config.relay.mail_domain);
      if (!tocsin_relay_store_set_meta (server.relay.store, "mail_domain",
                                        tocsin_relay_mail_get_domain (), &error))
        {
          g_message ("Could not record the mail domain for the command line: %s",
                     error->message);
          g_clear_error (&error);
        }

      server.smtp = tocsin_relay_smtp_server_new (&server.relay, server.config.smtp_listen,
                                                  server.tls, &smtp_url, &error);
      if (server.smtp == NULL)
        {
          g_printerr ("tocsin-relay serve: %s\n", error->message);
          goto out;
        }
      /* Before the HTTP lines: whoever waits for "Listening on" may stop reading there. */
      g_print ("Listening for mail on %s\n", smtp_url);
    }

  g_unix_signal_add (SIGTERM, on_stop_signal, &server);
  g_unix_signal_add (SIGINT, on_stop_signal, &server);
  server.sweep_id = g_timeout_add_seconds (SWEEP_SECONDS, sweep_timeout, &server);

  for (guint i = 0; i < server.urls->len; i++)
    g_print ("Listening on %s\n", (const char *) g_ptr_array_index (server.urls, i));
  fflush (stdout);

  g_main_loop_run (server.loop);
  status = 0;

out:
  server_clear (&server);
  return status;
}
