/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-test"

#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <gio/gio.h>

#include "tocsin-test-haproxy.h"
#include "tocsin-test-relay.h"

#define BACKEND "relays"

struct _TocsinTestHaproxy
{
  char        *binary;
  char        *dir;          /* the temp dir: haproxy.cfg, admin.sock, haproxy.log */
  char        *config_path;
  char        *config;
  char        *socket_path;
  char        *log_path;
  char        *base_url;
  guint16      port;
  guint        n_servers;
  GSubprocess *process;
};

/* A directory is "executable" too (and as root, anything existing passes access (X_OK)). */
static gboolean
is_program (const char *path)
{
  return g_file_test (path, G_FILE_TEST_IS_REGULAR) &&
         g_file_test (path, G_FILE_TEST_IS_EXECUTABLE);
}

/* TOCSIN_HAPROXY, else Debian's /usr/sbin/haproxy, else PATH. */
static char *
find_binary (void)
{
  const char *env = g_getenv ("TOCSIN_HAPROXY");

  if (env && *env)
    return is_program (env) ? g_strdup (env) : NULL;
  if (is_program ("/usr/sbin/haproxy"))
    return g_strdup ("/usr/sbin/haproxy");
  return g_find_program_in_path ("haproxy");
}

/* The configuration: docs/deployment.md ("HAProxy in front") shows it as the example; keep the
 * two in step. */
static char *
make_config (TocsinTestHaproxy *haproxy,
             const guint16     *ports,
             guint              n_ports)
{
  GString *config = g_string_new (NULL);

  g_string_append_printf (
    config,
    "# Written by tests/tocsin-test-haproxy.c for tests/test-cluster-haproxy.c.\n"
    "global\n"
    "    nbthread 1\n"
    "    maxconn 4096\n"
    "    log stderr format raw local0 info\n"
    "    stats socket %s mode 600 level admin\n"
    "    stats timeout 10s\n"
    "\n"
    "defaults\n"
    "    mode http\n"
    "    log global\n"
    "    option httplog\n"
    "    option dontlognull\n"
    /* The client's address in X-Forwarded-For, which the relay reads from a proxy it trusts
     * (serve --trusted-proxies): its per-address limits then count each client, not HAProxy. */
    "    option forwardfor\n"
    "    timeout connect 2s\n"
    "    timeout http-request 10s\n"
    "    timeout http-keep-alive 10s\n"
    "    timeout queue 5s\n"
    /* Longer than the relay's 30 s keepalive on SSE and JSON streams (plain HTTP responses). */
    "    timeout client 60s\n"
    "    timeout server 60s\n"
    /* A WebSocket after its 101: the relay pings every 30 s, so only a dead peer reaches it. */
    "    timeout tunnel 1h\n"
    "    timeout client-fin 5s\n"
    /* Send a request again, to another node (redispatch), only when the TCP connection to a node
     * could not be made: the node then never saw it, so even a POST is safe. Not on an empty or
     * late response: the node may have stored the webhook before it died, and a second copy would
     * be a duplicate. A GET can ring a channel too (/t/TOKEN?...), so no method is exempt. */
    "    retries 3\n"
    "    retry-on conn-failure\n"
    "    option redispatch 1\n"
    /* HAProxy's own answers in the relay's shape: a JSON sentence saying what to do. */
    "    http-error status 502 content-type application/json string "
    "'{\"error\": \"A relay node closed the connection before it answered. The request may have "
    "been received: send it again with the same Idempotency-Key or eventId, so that it is kept "
    "once.\"}' hdr Retry-After 1\n"
    "    http-error status 503 content-type application/json string "
    "'{\"error\": \"No relay node is available. Nothing was received: send the request again "
    "after Retry-After seconds.\"}' hdr Retry-After 1\n"
    "    http-error status 504 content-type application/json string "
    "'{\"error\": \"A relay node did not answer in time. The request may have been received: "
    "send it again with the same Idempotency-Key or eventId, so that it is kept once.\"}' "
    "hdr Retry-After 1\n"
    "\n"
    "frontend tocsin\n"
    /* The listening socket the test bound on 127.0.0.1 port 0 (a deployment: bind :443 ssl...). */
    "    bind fd@3\n"
    "    default_backend " BACKEND "\n"
    "\n"
    "backend " BACKEND "\n"
    "    balance roundrobin\n"
    /* The relay answers HEAD / without a token and without its store: a live process, no more. */
    "    option httpchk\n"
    "    http-check send meth HEAD uri / ver HTTP/1.1 hdr Host localhost\n"
    "    http-check expect status 200\n"
    /* Which node answered: for the test's bookkeeping (and an operator's debugging). */
    "    http-response set-header X-Tocsin-Node %%s\n"
    /* Down after 2 failed checks (1 s, then 250 ms apart), up again after 2 good ones. */
    "    default-server check inter 1s fastinter 250ms downinter 1s fall 2 rise 2\n",
    haproxy->socket_path);
  for (guint i = 0; i < n_ports; i++)
    g_string_append_printf (config, "    server node%u 127.0.0.1:%u\n", i + 1, ports[i]);
  return g_string_free (config, FALSE);
}

/* As tocsin-test-postgres.c's reaper: a watcher in its own session waits for the test process to
 * end, then kills HAProxy if it still runs and removes the directory. It leaves as soon as
 * HAProxy has ended normally (its pid could be reused later). PR_SET_PDEATHSIG, as the relays
 * get, does not hold: HAProxy 2.6 was seen to outlive its killed parent with it set. */
static void
spawn_watcher (TocsinTestHaproxy *haproxy)
{
  g_autofree char *test_pid = g_strdup_printf ("%d", (int) getpid ());
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) watcher = NULL;
  g_autoptr(GError) error = NULL;
  const char *script =
    "while kill -0 \"$1\" 2>/dev/null; do "
    "  kill -0 \"$2\" 2>/dev/null || exit 0; "
    "  [ \"$(cat /proc/$2/comm 2>/dev/null)\" = haproxy ] || exit 0; "
    "  sleep 1; "
    "done; "
    "[ \"$(cat /proc/$2/comm 2>/dev/null)\" = haproxy ] && kill -9 \"$2\"; "
    "rm -rf \"$3\"";

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_INHERIT
                                        | G_SUBPROCESS_FLAGS_STDOUT_SILENCE
                                        | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_subprocess_launcher_set_cwd (launcher, "/");
  watcher = g_subprocess_launcher_spawn (launcher, &error, "setsid", "sh", "-c", script,
                                         "tocsin-haproxy-watcher", test_pid,
                                         g_subprocess_get_identifier (haproxy->process),
                                         haproxy->dir, NULL);
  g_assert_no_error (error);
}

/* A listening socket on 127.0.0.1 port 0: the port is ours before HAProxy runs. */
static GSocket *
bind_frontend (guint16 *port)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;

  g_socket_set_listen_backlog (socket, 1024);
  g_socket_bind (socket, any, TRUE, &error);
  g_assert_no_error (error);
  g_socket_listen (socket, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  *port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  return g_steal_pointer (&socket);
}

/* One command on the runtime API socket; NULL when nothing listens there (yet). */
static char *
try_command (TocsinTestHaproxy *haproxy,
             const char        *command)
{
  struct sockaddr_un address = { .sun_family = AF_UNIX };
  g_autofree char *line = g_strconcat (command, "\n", NULL);
  GString *answer;
  char buffer[4096];
  gsize sent = 0;
  int fd;

  g_assert_cmpuint (strlen (haproxy->socket_path), <, sizeof address.sun_path);
  strcpy (address.sun_path, haproxy->socket_path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (fd, >=, 0);
  if (connect (fd, (struct sockaddr *) &address, sizeof address) != 0)
    {
      close (fd);
      return NULL;
    }
  while (sent < strlen (line))
    {
      ssize_t n = write (fd, line + sent, strlen (line) - sent);

      if (n < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (n, >, 0);
      sent += n;
    }
  /* Not in interactive mode, HAProxy answers one command and closes. */
  answer = g_string_new (NULL);
  for (;;)
    {
      ssize_t n = read (fd, buffer, sizeof buffer);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      g_string_append_len (answer, buffer, n);
    }
  close (fd);
  return g_string_free (answer, FALSE);
}

static char *
read_log (TocsinTestHaproxy *haproxy)
{
  char *contents = NULL;

  if (!g_file_get_contents (haproxy->log_path, &contents, NULL, NULL))
    return g_strdup ("(no log)");
  return contents;
}

TocsinTestHaproxy *
tocsin_test_haproxy_start (const guint16 *ports,
                           guint          n_ports)
{
  g_autoptr(TocsinTestHaproxy) haproxy = g_new0 (TocsinTestHaproxy, 1);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSocket) frontend = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *info = NULL;
  gint64 deadline;

  g_return_val_if_fail (n_ports > 0, NULL);

  haproxy->binary = find_binary ();
  if (haproxy->binary == NULL && g_getenv ("TOCSIN_HAPROXY") && *g_getenv ("TOCSIN_HAPROXY"))
    {
      g_autofree char *reason = g_strdup_printf ("TOCSIN_HAPROXY=%s is not a program",
                                                 g_getenv ("TOCSIN_HAPROXY"));

      g_test_skip (reason);
      return NULL;
    }
  if (haproxy->binary == NULL)
    {
      g_test_skip ("HAProxy is not installed (no /usr/sbin/haproxy or haproxy in PATH; "
                   "build-aux/install-deps.sh installs Debian's haproxy)");
      return NULL;
    }

  haproxy->dir = tocsin_test_make_tmpdir ("tocsin-haproxy");
  haproxy->config_path = g_build_filename (haproxy->dir, "haproxy.cfg", NULL);
  haproxy->socket_path = g_build_filename (haproxy->dir, "admin.sock", NULL);
  haproxy->log_path = g_build_filename (haproxy->dir, "haproxy.log", NULL);
  haproxy->n_servers = n_ports;
  haproxy->config = make_config (haproxy, ports, n_ports);
  g_file_set_contents (haproxy->config_path, haproxy->config, -1, &error);
  g_assert_no_error (error);

  frontend = bind_frontend (&haproxy->port);
  haproxy->base_url = g_strdup_printf ("http://127.0.0.1:%u", haproxy->port);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_subprocess_launcher_set_cwd (launcher, haproxy->dir);
  g_subprocess_launcher_set_stderr_file_path (launcher, haproxy->log_path);
  /* fd@3 in the configuration. */
  g_subprocess_launcher_take_fd (launcher, dup (g_socket_get_fd (frontend)), 3);
  /* -db: stay in the foreground, a child of the test. */
  haproxy->process = g_subprocess_launcher_spawn (launcher, &error, haproxy->binary, "-db",
                                                  "-f", haproxy->config_path, NULL);
  g_assert_no_error (error);
  spawn_watcher (haproxy);

  /* Connections already queue on the socket; it is ready once its runtime API answers. */
  deadline = g_get_monotonic_time () + 20 * TOCSIN_TEST_SLOWDOWN * G_USEC_PER_SEC;
  while ((info = try_command (haproxy, "show info")) == NULL)
    {
      if (g_subprocess_get_identifier (haproxy->process) == NULL ||
          g_get_monotonic_time () > deadline)
        {
          g_autofree char *log = read_log (haproxy);

          g_error ("HAProxy did not start:\n%s\nConfiguration:\n%s", log, haproxy->config);
        }
      g_main_context_iteration (NULL, FALSE);
      g_usleep (10000);
    }
  g_assert_nonnull (strstr (info, "Name: HAProxy"));
  return g_steal_pointer (&haproxy);
}

const char *
tocsin_test_haproxy_base_url (TocsinTestHaproxy *haproxy)
{
  return haproxy->base_url;
}

guint16
tocsin_test_haproxy_port (TocsinTestHaproxy *haproxy)
{
  return haproxy->port;
}

const char *
tocsin_test_haproxy_config (TocsinTestHaproxy *haproxy)
{
  return haproxy->config;
}

char *
tocsin_test_haproxy_log (TocsinTestHaproxy *haproxy)
{
  return read_log (haproxy);
}

char *
tocsin_test_haproxy_command (TocsinTestHaproxy *haproxy,
                             const char        *command)
{
  char *answer = try_command (haproxy, command);

  if (answer == NULL)
    g_error ("HAProxy's runtime API (%s) does not answer", haproxy->socket_path);
  return answer;
}

char *
tocsin_test_haproxy_stat (TocsinTestHaproxy *haproxy,
                          guint              index,
                          const char        *field)
{
  g_autofree char *answer = tocsin_test_haproxy_command (haproxy, "show stat");
  g_autofree char *server = index == G_MAXUINT ? g_strdup ("BACKEND")
                                               : g_strdup_printf ("node%u", index + 1);
  g_auto(GStrv) lines = g_strsplit (answer, "\n", -1);
  g_auto(GStrv) header = NULL;
  int column = -1;

  g_assert_true (index == G_MAXUINT || index < haproxy->n_servers);
  /* "# pxname,svname,qcur,...": CSV, one row per frontend, server and backend. */
  g_assert_true (g_str_has_prefix (lines[0], "# "));
  header = g_strsplit (lines[0] + 2, ",", -1);
  for (int i = 0; header[i] != NULL; i++)
    if (g_str_equal (header[i], field))
      column = i;
  if (column < 0)
    g_error ("HAProxy's show stat has no field \"%s\"", field);

  for (guint l = 1; lines[l] != NULL; l++)
    {
      g_auto(GStrv) row = g_strsplit (lines[l], ",", -1);

      if (g_strv_length (row) > (guint) column && g_str_equal (row[0], BACKEND) &&
          g_str_equal (row[1], server))
        return g_strdup (row[column]);
    }
  g_error ("HAProxy's show stat has no row for %s/%s:\n%s", BACKEND, server, answer);
}

guint64
tocsin_test_haproxy_counter (TocsinTestHaproxy *haproxy,
                             guint              index,
                             const char        *field)
{
  g_autofree char *value = tocsin_test_haproxy_stat (haproxy, index, field);

  return g_ascii_strtoull (value, NULL, 10);
}

char *
tocsin_test_haproxy_server_state (TocsinTestHaproxy *haproxy,
                                  guint              index)
{
  g_return_val_if_fail (index < haproxy->n_servers, NULL);
  return tocsin_test_haproxy_stat (haproxy, index, "status");
}

gboolean
tocsin_test_haproxy_server_is (TocsinTestHaproxy *haproxy,
                               guint              index,
                               const char        *state)
{
  g_autofree char *now = tocsin_test_haproxy_server_state (haproxy, index);

  return g_str_equal (now, state);
}

guint
tocsin_test_haproxy_count_up (TocsinTestHaproxy *haproxy)
{
  guint up = 0;

  for (guint i = 0; i < haproxy->n_servers; i++)
    up += tocsin_test_haproxy_server_is (haproxy, i, "UP");
  return up;
}

void
tocsin_test_haproxy_wait_up (TocsinTestHaproxy *haproxy,
                             guint              count)
{
  if (count == G_MAXUINT)
    count = haproxy->n_servers;
  g_assert_cmpuint (count, <=, haproxy->n_servers);
  TOCSIN_WAIT_UNTIL (tocsin_test_haproxy_count_up (haproxy) >= count);
}

void
tocsin_test_haproxy_wait_state (TocsinTestHaproxy *haproxy,
                                guint              index,
                                const char        *state)
{
  TOCSIN_WAIT_UNTIL (tocsin_test_haproxy_server_is (haproxy, index, state));
}

void
tocsin_test_haproxy_free (TocsinTestHaproxy *haproxy)
{
  if (haproxy == NULL)
    return;
  if (haproxy->process != NULL)
    {
      g_autoptr(GError) error = NULL;

      /* SIGTERM: stop now and close every connection (SIGUSR1 would wait for open tunnels). */
      g_subprocess_send_signal (haproxy->process, SIGTERM);
      g_subprocess_wait (haproxy->process, NULL, &error);
      g_assert_no_error (error);
      g_clear_object (&haproxy->process);
    }
  if (haproxy->dir != NULL)
    tocsin_test_rmdir_recursive (haproxy->dir);
  g_free (haproxy->binary);
  g_free (haproxy->dir);
  g_free (haproxy->config_path);
  g_free (haproxy->config);
  g_free (haproxy->socket_path);
  g_free (haproxy->log_path);
  g_free (haproxy->base_url);
  g_free (haproxy);
}
