/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-workers.h: `serve --workers=N` (issue 16): N processes of this relay, each with
 * its own main loop, listening on the same ports (SO_REUSEPORT: the kernel spreads connections
 * over them), sharing one PostgreSQL as nodes do. One relay process has one main loop; this is
 * how one machine's cores all serve.
 */
#pragma once

#include <gio/gio.h>

#include "tocsin-relay-config.h"

G_BEGIN_DECLS

/* The supervisor: resolves each listen address's port once (port 0 picks one for all),
 * starts @config->workers copies of `tocsin-relay serve @argv…` (@argv as the command line gave
 * it, argv[0] "serve"), starts again one that dies, and on SIGTERM or SIGINT stops them all.
 * Returns the exit status. */
int          tocsin_relay_workers_run    (const TocsinRelayServeConfig *config,
                                          char                        **argv);

/* In a worker: its number (1…N); 0 in any other process. */
guint        tocsin_relay_workers_index  (void);
/* In a worker: the listen addresses the supervisor resolved, which replace the configured
 * ones; NULL in any other process. */
GStrv        tocsin_relay_workers_listen (void);
/* Binds @socket to @address as g_socket_bind() with reuse does; in a worker, with SO_REUSEPORT
 * too. */
gboolean     tocsin_relay_workers_bind   (GSocket         *socket,
                                          GSocketAddress  *address,
                                          GError         **error);

G_END_DECLS
