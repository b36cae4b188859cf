/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-test-app.h: runs the real `tocsin` app the way a person does, for the e2e tests: to
 * completion (`tocsin --subscribe=…`, `tocsin --export-records=-`) or in the background
 * (`tocsin --background`), quit through its exported actions.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "tocsin-test-relay.h"

G_BEGIN_DECLS

/* A launcher for app processes. With @home, each gets its own XDG data, config and cache dirs
 * under it (created 0700); without, this process's environment. Set in the launcher, never in
 * this process: setenv is unsafe once threads exist. */
GSubprocessLauncher *tocsin_test_app_launcher       (const char *home);

/* Runs `tocsin ARGS...` with @launcher (consumed) to completion; returns the exit status (-1
 * when signalled) and its standard output in @out. Its standard error goes to the test log. */
int                  tocsin_test_app_run            (GSubprocessLauncher *launcher,
                                                     char               **out,
                                                     const char          *first_arg,
                                                     ...) G_GNUC_NULL_TERMINATED;

/* `tocsin --export-records=-` with @launcher (consumed), which must exit 0: one JsonObject per
 * JSON Lines record. */
GPtrArray           *tocsin_test_app_export         (GSubprocessLauncher *launcher);

/* The same export as relay id (gint64 *) → how many records carry it; with @messages_only,
 * without gap records ("kind": "gap"). */
GHashTable          *tocsin_test_app_export_counts  (GSubprocessLauncher *launcher,
                                                     gboolean             messages_only);

/* Whether an app instance owns APP_ID on @bus. */
gboolean             tocsin_test_app_is_running     (GDBusConnection     *bus);

/* `tocsin --background` with @launcher (consumed), as the autostart entry runs it; returns
 * once it owns APP_ID on @bus. */
GSubprocess         *tocsin_test_app_start          (GSubprocessLauncher *launcher,
                                                     GDBusConnection     *bus);

/* What "Quit" in the main menu does (app.quit, through the app's exported actions); asserts a
 * clean exit, which also shows the app never crashed, and waits until APP_ID is free. */
void                 tocsin_test_app_quit           (GSubprocess         *process,
                                                     GDBusConnection     *bus);

/* What a sender rang and the relay acknowledged, to hold against what the app stored. */
typedef struct
{
  guint       sent;
  guint       acked;
  GHashTable *acked_ids;   /* relay id (gint64 *) → itself */
} TocsinTestLoad;

void                 tocsin_test_load_init          (TocsinTestLoad      *load);
void                 tocsin_test_load_clear         (TocsinTestLoad      *load);

/* One GET webhook, /t/TRIGGER?n=@n&phase=@phase, on @relay; counts it as acknowledged only on a
 * 200 that carries a new id. With @never_duplicate, asserts the relay did not call it a
 * duplicate. Returns the id, or 0. */
gint64               tocsin_test_load_ring          (TocsinTestLoad      *load,
                                                     TocsinTestRelay     *relay,
                                                     JsonObject          *channel,
                                                     guint                n,
                                                     const char          *phase,
                                                     gboolean             never_duplicate);

/* Whether @counts (relay id → how many records carry it) has every acknowledged id. */
gboolean             tocsin_test_load_all_stored    (TocsinTestLoad      *load,
                                                     GHashTable          *counts);

/* Polls @export_counts (relay id → how many records carry it) until it has every acknowledged
 * id, iterating the main context between polls; fails the test after @deadline_s seconds. */
void                 tocsin_test_load_wait_stored   (TocsinTestLoad      *load,
                                                     GHashTable        *(*export_counts) (void),
                                                     guint                deadline_s);

/* Against @counts (relay id → records): nothing lost, nothing twice, nothing that was not
 * acknowledged, as many records as acknowledgements; prints the figures, prefixed by @what. */
void                 tocsin_test_load_assert_exactly_once (TocsinTestLoad *load,
                                                           GHashTable     *counts,
                                                           const char     *what);

G_END_DECLS
