/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-workers.c: `serve --workers=N` (issue 16).
 *
 * The supervisor process serves nothing itself. It binds one socket per listen address with
 * SO_REUSEPORT, without listening on it: that fixes the port (port 0 picks one for all the
 * workers) and keeps it reserved while a worker restarts, yet takes no connection (the kernel
 * spreads connections only over listening sockets). Each worker is this executable again, with
 * the same arguments, told by its environment that it is worker I and which addresses to listen
 * on; it listens with SO_REUSEPORT too. Workers are nodes as separate machines are
 * (tocsin-relay-cluster.c): each has its own connections to PostgreSQL and hears the others'
 * messages there, which is why --workers needs --database (one SQLite file has one writer).
 *
 * The mail trigger's port (--smtp-listen) is worker 1's alone. A worker that dies is started
 * again after a second; SIGTERM or SIGINT to the supervisor is passed on to every worker, and
 * the supervisor exits once they all have. A worker dies with the supervisor (PR_SET_PDEATHSIG).
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <glib-unix.h>
#include <glib/gi18n.h>

#include "tocsin-relay-server.h"
#include "tocsin-relay-workers.h"

#define WORKER_ENV "TOCSIN_RELAY_WORKER"
#define LISTEN_ENV "TOCSIN_RELAY_WORKER_LISTEN"
#define RESTART_MS 1000

typedef struct _Supervisor Supervisor;

typedef struct
{
  Supervisor  *supervisor;   /* borrowed */
  guint        index;
  GSubprocess *process;
  guint        restart_id;
} Worker;

struct _Supervisor
{
  GMainLoop  *loop;
  GStrv       argv;          /* the worker's command line */
  char       *listen;        /* LISTEN_ENV's value */
  Worker     *workers;
  guint       n_workers;
  guint       running;
  gboolean    stopping;
};

guint
tocsin_relay_workers_index (void)
{
  const char *value = g_getenv (WORKER_ENV);

  return value ? (guint) g_ascii_strtoull (value, NULL, 10) : 0;
}

GStrv
tocsin_relay_workers_listen (void)
{
  const char *value = g_getenv (LISTEN_ENV);

  if (tocsin_relay_workers_index () == 0 || value == NULL || *value == '\0')
    return NULL;
  return g_strsplit (value, ",", -1);
}

/* g_socket_bind() would clear SO_REUSEPORT on a TCP socket (GLib keeps it for UDP), so the
 * socket is bound here with bind(2), SO_REUSEADDR and SO_REUSEPORT set. */
static gboolean
bind_reuse_port (GSocket         *socket,
                 GSocketAddress  *address,
                 GError         **error)
{
  struct sockaddr_storage native;
  gsize length = g_socket_address_get_native_size (address);

  if (!g_socket_set_option (socket, SOL_SOCKET, SO_REUSEADDR, 1, error)
      || !g_socket_set_option (socket, SOL_SOCKET, SO_REUSEPORT, 1, error)
      || !g_socket_address_to_native (address, &native, sizeof native, error))
    return FALSE;
  if (bind (g_socket_get_fd (socket), (struct sockaddr *) &native, (socklen_t) length) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "bind: %s", g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

gboolean
tocsin_relay_workers_bind (GSocket         *socket,
                           GSocketAddress  *address,
                           GError         **error)
{
  if (tocsin_relay_workers_index () == 0)
    return g_socket_bind (socket, address, TRUE, error);
  return bind_reuse_port (socket, address, error);
}

static void worker_start (Worker *worker);

static void
die_with_supervisor (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

static void
worker_exited (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Worker *worker = user_data;
  Supervisor *supervisor = worker->supervisor;
  GSubprocess *process = G_SUBPROCESS (source);

  g_subprocess_wait_finish (process, result, NULL);
  g_clear_object (&worker->process);
  supervisor->running--;
  if (supervisor->stopping)
    {
      if (supervisor->running == 0)
        g_main_loop_quit (supervisor->loop);
      return;
    }
  g_message ("Worker %u stopped (%s %d); starting it again", worker->index,
             g_subprocess_get_if_signaled (process) ? "signal" : "status",
             g_subprocess_get_if_signaled (process) ? g_subprocess_get_term_sig (process)
             : g_subprocess_get_exit_status (process));
  worker->restart_id = g_timeout_add_once (RESTART_MS, (GSourceOnceFunc) worker_start, worker);
}

static void
worker_start (Worker *worker)
{
  Supervisor *supervisor = worker->supervisor;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *index = g_strdup_printf ("%u", worker->index);

  worker->restart_id = 0;
  if (supervisor->stopping)
    return;
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_subprocess_launcher_setenv (launcher, WORKER_ENV, index, TRUE);
  g_subprocess_launcher_setenv (launcher, LISTEN_ENV, supervisor->listen, TRUE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_supervisor, NULL, NULL);
  worker->process = g_subprocess_launcher_spawnv (launcher,
                                                  (const char * const *) supervisor->argv,
                                                  &error);
  if (worker->process == NULL)
    {
      g_message ("Could not start worker %u: %s", worker->index, error->message);
      worker->restart_id = g_timeout_add_once (RESTART_MS, (GSourceOnceFunc) worker_start,
                                               worker);
      return;
    }
  supervisor->running++;
  g_subprocess_wait_async (worker->process, NULL, worker_exited, worker);
}

static gboolean
on_stop (gpointer user_data)
{
  Supervisor *supervisor = user_data;

  supervisor->stopping = TRUE;
  for (guint i = 0; i < supervisor->n_workers; i++)
    {
      g_clear_handle_id (&supervisor->workers[i].restart_id, g_source_remove);
      if (supervisor->workers[i].process != NULL)
        g_subprocess_send_signal (supervisor->workers[i].process, SIGTERM);
    }
  if (supervisor->running == 0)
    g_main_loop_quit (supervisor->loop);
  return G_SOURCE_CONTINUE;
}

/* Binds (without listening) a SO_REUSEPORT socket on @text: returns "HOST:PORT" with the port
 * it got. */
static char *
reserve (const char  *text,
         GPtrArray   *sockets,
         GError     **error)
{
  g_autoptr(GInetAddress) address = NULL;
  g_autoptr(GSocketAddress) bind_address = NULL;
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autofree char *host = NULL;
  GSocketFamily family;
  guint16 port = 0;

  if (!tocsin_relay_server_parse_listen (text, &address, &port, error))
    return NULL;
  family = g_inet_address_get_family (address);
  socket = g_socket_new (family, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
  if (socket == NULL)
    return NULL;
  if (family == G_SOCKET_FAMILY_IPV6)
    g_socket_set_option (socket, IPPROTO_IPV6, IPV6_V6ONLY, TRUE, NULL);
  bind_address = g_inet_socket_address_new (address, port);
  if (!bind_reuse_port (socket, bind_address, error))
    return NULL;
  bound = g_socket_get_local_address (socket, error);
  if (bound == NULL)
    return NULL;
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  host = g_inet_address_to_string (address);
  g_ptr_array_add (sockets, g_steal_pointer (&socket));
  return family == G_SOCKET_FAMILY_IPV6 ? g_strdup_printf ("[%s]:%u", host, port)
                                        : g_strdup_printf ("%s:%u", host, port);
}

int
tocsin_relay_workers_run (const TocsinRelayServeConfig  *config,
                          char                         **argv)
{
  g_autoptr(GPtrArray) sockets = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) resolved = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) command = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *self = NULL;
  g_autoptr(GError) error = NULL;
  Supervisor supervisor = { 0 };
  guint term_id, int_id;

  g_return_val_if_fail (config->workers > 1, 2);

  for (guint i = 0; config->listen[i]; i++)
    {
      char *address = reserve (config->listen[i], sockets, &error);

      if (address == NULL)
        {
          g_printerr ("tocsin-relay serve: %s\n", error->message);
          return 1;
        }
      g_ptr_array_add (resolved, address);
    }
  g_ptr_array_add (resolved, NULL);

  self = g_file_read_link ("/proc/self/exe", &error);
  if (self == NULL)
    {
      g_printerr ("tocsin-relay serve: %s\n", error->message);
      return 1;
    }
  g_ptr_array_add (command, g_steal_pointer (&self));
  for (guint i = 0; argv[i]; i++)
    g_ptr_array_add (command, g_strdup (argv[i]));
  g_ptr_array_add (command, NULL);

  supervisor.loop = g_main_loop_new (NULL, FALSE);
  supervisor.argv = (GStrv) command->pdata;
  supervisor.listen = g_strjoinv (",", (char **) resolved->pdata);
  supervisor.n_workers = config->workers;
  supervisor.workers = g_new0 (Worker, config->workers);
  term_id = g_unix_signal_add (SIGTERM, on_stop, &supervisor);
  int_id = g_unix_signal_add (SIGINT, on_stop, &supervisor);
  for (guint i = 0; i < supervisor.n_workers; i++)
    {
      supervisor.workers[i].supervisor = &supervisor;
      supervisor.workers[i].index = i + 1;
      worker_start (&supervisor.workers[i]);
    }

  g_main_loop_run (supervisor.loop);

  g_source_remove (term_id);
  g_source_remove (int_id);
  g_free (supervisor.workers);
  g_free (supervisor.listen);
  g_main_loop_unref (supervisor.loop);
  return 0;
}
