/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-test-postgres.h: a real PostgreSQL (Debian's, 15 or newer) in a temporary directory for
 * the tests: initdb with trust authentication, listening on a Unix socket in that directory and on
 * 127.0.0.1 on a free port, one database "tocsin". As root it runs as the `postgres` user (the
 * server refuses to run as root) through runuser; as an ordinary user, as that user.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _TocsinTestPostgres TocsinTestPostgres;

/* Starts a new server. When the PostgreSQL binaries are not installed, calls g_test_skip() with
 * the reason and returns NULL (the caller returns); any other failure fails the test. */
TocsinTestPostgres *tocsin_test_postgres_start    (void);
/* A new empty database on one server that the whole test program shares (started on first use;
 * the watcher stops it when the program ends): much quicker than a server per test. Not for
 * _stop() or _restart(). NULL after g_test_skip() as tocsin_test_postgres_start(). */
TocsinTestPostgres *tocsin_test_postgres_start_database (void);
/* "postgresql://tocsin@127.0.0.1:PORT/DATABASE": what `--database=` takes. */
const char         *tocsin_test_postgres_conninfo (TocsinTestPostgres *pg);
guint16             tocsin_test_postgres_port     (TocsinTestPostgres *pg);
/* Its temp dir (data/, socket/, server.log). Should the test process die without
 * tocsin_test_postgres_free(), a watcher stops the server and removes this dir within a
 * second or two. */
const char         *tocsin_test_postgres_dir      (TocsinTestPostgres *pg);
/* The directory of the PostgreSQL programs it runs (initdb, createdb, psql…). */
const char         *tocsin_test_postgres_bin_dir  (TocsinTestPostgres *pg);
/* `pg_ctl stop -m fast` (clients are disconnected) and start again on the same port and data:
 * for fault tests. tocsin_test_postgres_stop() alone leaves it down until _restart(). */
void                tocsin_test_postgres_stop     (TocsinTestPostgres *pg);
void                tocsin_test_postgres_restart  (TocsinTestPostgres *pg);
/* A streaming standby of @primary (from tocsin_test_postgres_start(), running): pg_basebackup -R
 * into a temp dir and port of its own, started, and made synchronous (synchronous_standby_names
 * on the primary) before this returns: from then on a commit on the primary returns only once
 * the standby has flushed it. Its own watcher stops it should the test die. NULL after
 * g_test_skip() as tocsin_test_postgres_start(). Free it with tocsin_test_postgres_free(). */
TocsinTestPostgres *tocsin_test_postgres_start_standby     (TocsinTestPostgres *primary);
/* "postgresql://tocsin@127.0.0.1:PRIMARY,127.0.0.1:STANDBY/DB?target_session_attrs=read-write":
 * libpq tries the hosts in order and keeps the one that takes writes. */
char               *tocsin_test_postgres_failover_conninfo (TocsinTestPostgres *primary,
                                                            TocsinTestPostgres *standby);
/* SIGKILL to the postmaster, as a crash (no shutdown, its clients cut), and waits until it has
 * gone. It stays down. */
void                tocsin_test_postgres_kill              (TocsinTestPostgres *pg);
/* `pg_ctl promote` on a standby, then waits until it accepts writes. */
void                tocsin_test_postgres_promote           (TocsinTestPostgres *standby);
/* Runs one SQL command through psql on the server's socket; returns psql's stdout (asserts it
 * succeeded). */
char               *tocsin_test_postgres_psql     (TocsinTestPostgres *pg,
                                                   const char         *sql);
/* Stops the server (if running) and removes its directory. */
void                tocsin_test_postgres_free     (TocsinTestPostgres *pg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinTestPostgres, tocsin_test_postgres_free)

G_END_DECLS
