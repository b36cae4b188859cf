/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-action-runner.h: performs a record's action buttons (issue 15, docs/actions.md): a
 * "view" action opens its URL as the app opens links; an "http" action sends its request from
 * the desktop with a TocsinOutbound, per its policy (retry: follow each attempt's retry time up
 * to the outbound's max attempts; none: one attempt). Every attempt goes to the history's press
 * log, then "press-done" is emitted. One runner per application
 * (tocsin_application_get_action_runner()); it lives in the main context that made it.
 */
#pragma once

#include <gio/gio.h>

#include "tocsin-history.h"
#include "tocsin-notifier.h"
#include "tocsin-outbound.h"

G_BEGIN_DECLS

#define TOCSIN_TYPE_ACTION_RUNNER (tocsin_action_runner_get_type ())
G_DECLARE_FINAL_TYPE (TocsinActionRunner, tocsin_action_runner, TOCSIN, ACTION_RUNNER, GObject)

/* @notifier (may be NULL): whose pop-up a successful "clear" action withdraws. @config: NULL for
 * tocsin_outbound_config_init()'s defaults. */
TocsinActionRunner *tocsin_action_runner_new   (TocsinHistory              *history,
                                                TocsinNotifier             *notifier,
                                                const TocsinOutboundConfig *config);

/* The extra certificate authorities the Preferences' CA file gives (or NULL: the system's
 * only), trusted by the "http" actions as by the subscriptions and the channel editor. */
void     tocsin_action_runner_set_tls_database (TocsinActionRunner *self,
                                                GTlsDatabase       *database);

/* Presses @record's action @index. Returns FALSE (and does nothing) when there is no such
 * action, the record is not stored, or the same action is still being sent (no double sends).
 * A press while an earlier press waits for its next retry sends that retry now. */
gboolean tocsin_action_runner_press           (TocsinActionRunner *self,
                                               TocsinRecord       *record,
                                               guint               index);
/* The same for the record with row id @record_id, read from the history first (the Deliveries
 * page's "Retry now" has the log's record id, not the record). */
void     tocsin_action_runner_press_by_id     (TocsinActionRunner *self,
                                               gint64              record_id,
                                               guint               index);
/* TRUE while action @index of record @record_id is being sent or opened. */
gboolean tocsin_action_runner_is_busy         (TocsinActionRunner *self,
                                               gint64              record_id,
                                               guint               index);
/* The newest attempt of any of record @record_id's actions (this session's, or the log's as
 * read at start), or NULL (borrowed; valid until the next "press-done"). */
const TocsinActionPress *tocsin_action_runner_get_last_press (TocsinActionRunner *self,
                                                              gint64              record_id);

/* What a row says about @press: "Sent · 200", "Opened", "Failed: timed out after 10 s",
 * "Retrying at 20:31". */
char    *tocsin_action_press_describe         (const TocsinActionPress *press);

/* Signals (in the runner's main context):
 *   "press-started" (gint64 record_id, guint index)   a press began (the button is busy)
 *   "press-done" (gint64 record_id, guint index, guint attempt)
 *                                                     an attempt ended and is in the log (or
 *                                                     the log could not be written)
 *   "press-failed" (gint64 record_id, guint index, const char *message)
 *                                                     a press ended without success: a
 *                                                     sentence for a person
 *   "last-presses-loaded" ()                          the log's last results, read at start
 */

G_END_DECLS
