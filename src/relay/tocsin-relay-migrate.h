/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-migrate.h: `tocsin-relay migrate`, which copies a single relay's SQLite data dir
 * into an empty PostgreSQL database (issue 16; docs/deployment.md, "Moving from SQLite").
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Copies everything the relay in @data_dir keeps into the PostgreSQL database @database, in one
 * transaction, and prints the rows copied per table on stdout (progress on stderr). FALSE with
 * a sentence saying what to fix when nothing was copied. */
gboolean tocsin_relay_migrate       (const char  *data_dir,
                                     const char  *database,
                                     GError     **error);

/* The command: `tocsin-relay migrate --data-dir=DIR --database=postgresql://…`. Returns the
 * exit status. */
int      tocsin_relay_migrate_main  (int          argc,
                                     char       **argv);

G_END_DECLS
