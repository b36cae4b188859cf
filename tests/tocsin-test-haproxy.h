/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-test-haproxy.h: a real HAProxy (Debian's /usr/sbin/haproxy, 2.6) in a temporary
 * directory in front of relay nodes on 127.0.0.1, for the cluster fault tests (issue 16). The
 * test binds the frontend's port itself (127.0.0.1 port 0) and hands HAProxy the listening socket,
 * so there is no race for a free port. HAProxy checks each node with `HEAD /` (the relay answers
 * it without a token or the store), retries a request elsewhere only when the connection to a node
 * could not be made (nothing was sent, so even a POST is safe to send again), and answers its own
 * 502/503/504 with a JSON sentence as the relay's errors are. Its runtime API listens on a Unix
 * socket in the temp dir: the helpers below read each node's state and counters there.
 * docs/deployment.md ("HAProxy in front") shows the configuration it writes.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _TocsinTestHaproxy TocsinTestHaproxy;

/* Starts HAProxy with one backend server per port of @ports (relays on 127.0.0.1), named
 * "node1", "node2"... in that order. When HAProxy is not installed, calls g_test_skip() with the
 * reason and returns NULL (the caller returns); any other failure fails the test. Should the test
 * process die without tocsin_test_haproxy_free(), a watcher kills HAProxy and removes its temp
 * dir within a second or two. */
TocsinTestHaproxy *tocsin_test_haproxy_start        (const guint16     *ports,
                                                     guint              n_ports);
/* "http://127.0.0.1:PORT", the frontend. */
const char        *tocsin_test_haproxy_base_url     (TocsinTestHaproxy *haproxy);
guint16            tocsin_test_haproxy_port         (TocsinTestHaproxy *haproxy);
/* The configuration it runs (with its temp dir's paths and the frontend as "fd@3"). */
const char        *tocsin_test_haproxy_config       (TocsinTestHaproxy *haproxy);
/* What HAProxy logged so far (one line per request, and each server's state changes). */
char              *tocsin_test_haproxy_log          (TocsinTestHaproxy *haproxy);
/* Sends one command to the runtime API (e.g. "show stat") and returns its whole answer. */
char              *tocsin_test_haproxy_command      (TocsinTestHaproxy *haproxy,
                                                     const char        *command);
/* One field of `show stat` (a column name: "status", "scur", "stot", "hrsp_5xx", "econ",
 * "wretr", "wredis"...) for server @index (0-based, as in @ports), or for the backend as a whole
 * with @index G_MAXUINT. */
char              *tocsin_test_haproxy_stat         (TocsinTestHaproxy *haproxy,
                                                     guint              index,
                                                     const char        *field);
guint64            tocsin_test_haproxy_counter      (TocsinTestHaproxy *haproxy,
                                                     guint              index,
                                                     const char        *field);
/* A server's state as HAProxy reports it: "UP", "DOWN", "UP 1/2" (failing, not yet down),
 * "DOWN 1/2" (recovering), "MAINT"... */
char              *tocsin_test_haproxy_server_state (TocsinTestHaproxy *haproxy,
                                                     guint              index);
gboolean           tocsin_test_haproxy_server_is    (TocsinTestHaproxy *haproxy,
                                                     guint              index,
                                                     const char        *state);
/* How many servers are "UP" now. */
guint              tocsin_test_haproxy_count_up     (TocsinTestHaproxy *haproxy);
/* Iterates the main context until at least @count servers are UP (G_MAXUINT: all), or until
 * server @index is in @state; a guard of 20 s against a hang, not a timing. */
void               tocsin_test_haproxy_wait_up      (TocsinTestHaproxy *haproxy,
                                                     guint              count);
void               tocsin_test_haproxy_wait_state   (TocsinTestHaproxy *haproxy,
                                                     guint              index,
                                                     const char        *state);
/* Stops HAProxy (SIGTERM: connections are closed) and removes its directory. */
void               tocsin_test_haproxy_free         (TocsinTestHaproxy *haproxy);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinTestHaproxy, tocsin_test_haproxy_free)

G_END_DECLS
