/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-history.h: the app's local store. One SQLite file (WAL, 0600, in a 0700 dir, default
 * $XDG_DATA_HOME/tocsin/history.db) with the records (FTS5-indexed), the subscriptions and the
 * owned channels (whose owner keys never leave this file except to their relay).
 *
 * Every SQLite call runs on one worker thread owned by the history; the main loop only queues
 * jobs and gets results back through GAsyncReadyCallbacks in the thread-default main context
 * of the caller. Messages stored with tocsin_history_store_message_async() are batched: all
 * that arrive while the worker is busy go into one transaction.
 *
 * Signals are emitted in the main context the history was created in, after the change is
 * committed, so listeners (TocsinRecordList, the window) can update.
 */
#pragma once

#include <gio/gio.h>
#include "tocsin-message.h"
#include "tocsin-outbound.h"
#include "tocsin-owned-channel.h"
#include "tocsin-record.h"
#include "tocsin-record-query.h"
#include "tocsin-subscription.h"

G_BEGIN_DECLS

/* What storing a message did. */
typedef enum
{
  TOCSIN_STORE_ADDED,      /* a new record: ring */
  TOCSIN_STORE_REPLACED,   /* an earlier record was updated in place: don't ring again */
  TOCSIN_STORE_DUPLICATE,  /* already stored: nothing changed */
} TocsinStoreResult;

/* ---- the history ---------------------------------------------------------------------- */

#define TOCSIN_TYPE_HISTORY (tocsin_history_get_type ())
G_DECLARE_FINAL_TYPE (TocsinHistory, tocsin_history, TOCSIN, HISTORY, GObject)

/* $XDG_DATA_HOME/tocsin/history.db */
char          *tocsin_history_default_path (void);

/* Opens (creating if needed) the database at @path (NULL: the default path) on the worker
 * thread; returns at once. If opening fails, every operation fails with that error and
 * tocsin_history_wait_ready_finish() reports it. */
TocsinHistory *tocsin_history_new          (const char *path);
const char    *tocsin_history_get_path     (TocsinHistory *self);

/* Why the history cannot write (the "write-error" property, notified in the main context when
 * it changes), or NULL when it can. G_IO_ERROR_NO_SPACE: the disk is full; _READ_ONLY or
 * _PERMISSION_DENIED: the file or its folder cannot be written; others: an I/O error, a file
 * that cannot be opened, a corrupt one. While it is set, messages that could not be written
 * are kept in memory (up to 10,000) and written first, before the next message and every 30 s;
 * the stored cursors move with them, so whatever was not written comes again from the relay at
 * the next start. Their tocsin_history_store_message_finish() gets the error, so the caller
 * can still show them. It is cleared by the next successful write. */
const GError  *tocsin_history_get_write_error (TocsinHistory *self);
/* A file SQLite finds damaged (SQLITE_CORRUPT, SQLITE_NOTADB: truncated, overwritten) is not
 * a passing write error, and the file is left as it is. DAMAGED: it could not be opened, so
 * nothing is loaded or stored until it is replaced. DAMAGED_IN_PART: it opened, and a read or
 * write met the damage later (garbage mid-file); what is readable still is, and it stays so
 * (tocsin_history_error_is_damage() is TRUE for both). */
#define TOCSIN_HISTORY_ERROR (tocsin_history_error_quark ())
typedef enum
{
  TOCSIN_HISTORY_ERROR_DAMAGED,
  TOCSIN_HISTORY_ERROR_DAMAGED_IN_PART,
} TocsinHistoryError;
gboolean       tocsin_history_error_is_damage (const GError *error);
GQuark         tocsin_history_error_quark     (void);

/* Moves a damaged history file aside, untouched, as "<path>.damaged-YYYYMMDD-HHMMSS" (with its
 * -wal and -shm), and opens a new, empty one at the path. Finish returns where the old one is
 * now. The subscriptions and owned channels that can still be read from the old file are
 * copied into the new one; the records stay in the old file. */
void           tocsin_history_start_fresh_async  (TocsinHistory       *self,
                                                  GCancellable        *cancellable,
                                                  GAsyncReadyCallback  callback,
                                                  gpointer             user_data);
char          *tocsin_history_start_fresh_finish (TocsinHistory        *self,
                                                  GAsyncResult         *result,
                                                  GError              **error);

/* A sentence for a person about @error (from the history at @path): what happened, whether
 * pop-ups still come, and what to do. */
char          *tocsin_history_describe_error  (const GError *error,
                                               const char   *path);

/* Completes when the database is open (or failed to open). */
void     tocsin_history_wait_ready_async   (TocsinHistory       *self,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
gboolean tocsin_history_wait_ready_finish  (TocsinHistory       *self,
                                            GAsyncResult        *result,
                                            GError             **error);

/* Waits (iterating the thread-default main context) until every queued job has run and its
 * callback and signals were dispatched. For shutdown and tests. */
void     tocsin_history_flush_sync         (TocsinHistory       *self);

/* Stores @message from @relay_url (batched with other messages arriving meanwhile). A message
 * with `replaces` updates the record of that earlier id (or is added if it is unknown). Also
 * advances the matching subscription's stored cursor. Returns the stored record (for
 * DUPLICATE, the existing one) and what happened in @out_result. */
void          tocsin_history_store_message_async  (TocsinHistory       *self,
                                                   const char          *relay_url,
                                                   const TocsinMessage *message,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
TocsinRecord *tocsin_history_store_message_finish (TocsinHistory       *self,
                                                   GAsyncResult        *result,
                                                   TocsinStoreResult   *out_result,
                                                   GError             **error);

/* After tocsin_history_store_message_finish() failed because the history cannot write: the
 * message as a record that was not stored (row id 0), to show it anyway; NULL otherwise. */
TocsinRecord *tocsin_history_store_message_get_unsaved (TocsinHistory *self,
                                                        GAsyncResult  *result);

/* Stores a TOCSIN_RECORD_KIND_GAP record saying that ids @from..@to of the channel were
 * missed (the relay no longer had them). */
void          tocsin_history_add_gap_async        (TocsinHistory       *self,
                                                   const char          *relay_url,
                                                   gint64               channel_id,
                                                   const char          *channel_name,
                                                   gint64               from,
                                                   gint64               to,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
TocsinRecord *tocsin_history_add_gap_finish       (TocsinHistory       *self,
                                                   GAsyncResult        *result,
                                                   GError             **error);

/* Records matching @query (NULL: all), newest first (by arrival), @limit of them from
 * @offset. Returns a GPtrArray of TocsinRecord. */
void          tocsin_history_query_async          (TocsinHistory           *self,
                                                   const TocsinRecordQuery *query,
                                                   guint                    offset,
                                                   guint                    limit,
                                                   GCancellable            *cancellable,
                                                   GAsyncReadyCallback      callback,
                                                   gpointer                 user_data);
GPtrArray    *tocsin_history_query_finish         (TocsinHistory       *self,
                                                   GAsyncResult        *result,
                                                   GError             **error);

/* How many records match @query (NULL: all). Returns -1 on error. */
void          tocsin_history_count_async          (TocsinHistory           *self,
                                                   const TocsinRecordQuery *query,
                                                   GCancellable            *cancellable,
                                                   GAsyncReadyCallback      callback,
                                                   gpointer                 user_data);
gint64        tocsin_history_count_finish         (TocsinHistory       *self,
                                                   GAsyncResult        *result,
                                                   GError             **error);

/* The record with row id @id; NULL (no error) if there is none. */
void          tocsin_history_get_record_async     (TocsinHistory       *self,
                                                   gint64               id,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
TocsinRecord *tocsin_history_get_record_finish    (TocsinHistory       *self,
                                                   GAsyncResult        *result,
                                                   GError             **error);

/* Changes. Each emits its signal when committed; @callback may be NULL (fire and forget: an
 * error is then logged with g_debug, since there is no one to show it to). The _finish
 * functions return the number of records changed, or -1 with @error. */
void     tocsin_history_set_read_async       (TocsinHistory *self, gint64 id, gboolean read,
                                              GCancellable *cancellable,
                                              GAsyncReadyCallback callback, gpointer user_data);
/* @relay_url NULL: every channel; otherwise only channel @channel_id of that relay. */
void     tocsin_history_mark_all_read_async  (TocsinHistory *self, const char *relay_url,
                                              gint64 channel_id, GCancellable *cancellable,
                                              GAsyncReadyCallback callback, gpointer user_data);
void     tocsin_history_delete_record_async  (TocsinHistory *self, gint64 id,
                                              GCancellable *cancellable,
                                              GAsyncReadyCallback callback, gpointer user_data);
/* Deletes every record (@relay_url NULL) or those of one channel. */
void     tocsin_history_clear_async          (TocsinHistory *self, const char *relay_url,
                                              gint64 channel_id, GCancellable *cancellable,
                                              GAsyncReadyCallback callback, gpointer user_data);
/* Retention: deletes records received more than @max_age_days days ago (0: nothing). */
void     tocsin_history_prune_async          (TocsinHistory *self, guint max_age_days,
                                              GCancellable *cancellable,
                                              GAsyncReadyCallback callback, gpointer user_data);
gint64   tocsin_history_change_finish        (TocsinHistory *self, GAsyncResult *result,
                                              GError **error);

/* Undoable changes. The same as the functions above, but what they change is kept, under
 * @batch (from tocsin_history_new_undo_batch()), until tocsin_history_undo_async() restores it
 * (same row ids, same read state; "reset" is emitted) or tocsin_history_forget_undo_async()
 * drops it. Whatever is kept is dropped when the history is next opened. Undo's _finish returns
 * the number of records restored. */
guint64  tocsin_history_new_undo_batch               (TocsinHistory *self);
void     tocsin_history_delete_record_undoable_async (TocsinHistory *self, gint64 id,
                                                      guint64 batch, GCancellable *cancellable,
                                                      GAsyncReadyCallback callback,
                                                      gpointer user_data);
void     tocsin_history_clear_undoable_async         (TocsinHistory *self, const char *relay_url,
                                                      gint64 channel_id, guint64 batch,
                                                      GCancellable *cancellable,
                                                      GAsyncReadyCallback callback,
                                                      gpointer user_data);
void     tocsin_history_mark_all_read_undoable_async (TocsinHistory *self, const char *relay_url,
                                                      gint64 channel_id, guint64 batch,
                                                      GCancellable *cancellable,
                                                      GAsyncReadyCallback callback,
                                                      gpointer user_data);
void     tocsin_history_undo_async                   (TocsinHistory *self, guint64 batch,
                                                      GCancellable *cancellable,
                                                      GAsyncReadyCallback callback,
                                                      gpointer user_data);
void     tocsin_history_forget_undo_async            (TocsinHistory *self, guint64 batch,
                                                      GCancellable *cancellable,
                                                      GAsyncReadyCallback callback,
                                                      gpointer user_data);

/* Unread records count (for a badge / the window title). */
void     tocsin_history_count_unread_async   (TocsinHistory *self, GCancellable *cancellable,
                                              GAsyncReadyCallback callback, gpointer user_data);
/* use tocsin_history_count_finish() */

/* Writes every record, oldest first, as JSON Lines
 * {"id","channel","title","body","externalLink","time","read","notificationType","markdown"}
 * (notificationType null: as the subscription chose) to @stream (written on the worker thread:
 * don't touch @stream until done). Returns the number of records written. */
void     tocsin_history_export_async         (TocsinHistory *self, GOutputStream *stream,
                                              GCancellable *cancellable,
                                              GAsyncReadyCallback callback, gpointer user_data);
gint64   tocsin_history_export_finish        (TocsinHistory *self, GAsyncResult *result,
                                              GError **error);
/* The same, synchronously, opening @db_path (NULL: default path) read-only without a worker:
 * for `tocsin --export-records`, which may run while another instance has the database
 * open. A missing database exports nothing. Returns the count or -1 with @error. */
gint64   tocsin_history_export_sync          (const char *db_path, GOutputStream *stream,
                                              GCancellable *cancellable, GError **error);

/* ---- subscriptions ---- */

/* Returns a GPtrArray of TocsinSubscription, in the order they were added. */
void       tocsin_history_load_subscriptions_async  (TocsinHistory *self,
                                                     GCancellable *cancellable,
                                                     GAsyncReadyCallback callback,
                                                     gpointer user_data);
GPtrArray *tocsin_history_load_subscriptions_finish (TocsinHistory *self, GAsyncResult *result,
                                                     GError **error);
/* Inserts or updates (by relay URL and token) everything but the cursor, which only moves
 * forward (max of stored and given). Finish with tocsin_history_change_finish(). */
void       tocsin_history_save_subscription_async   (TocsinHistory *self,
                                                     TocsinSubscription *subscription,
                                                     GCancellable *cancellable,
                                                     GAsyncReadyCallback callback,
                                                     gpointer user_data);
/* Removes the subscription (its records stay until cleared). */
void       tocsin_history_remove_subscription_async (TocsinHistory *self,
                                                     const char *relay_url, const char *token,
                                                     GCancellable *cancellable,
                                                     GAsyncReadyCallback callback,
                                                     gpointer user_data);

/* ---- owned channels ---- */

/* Returns a GPtrArray of TocsinOwnedChannel. */
void       tocsin_history_load_owned_channels_async  (TocsinHistory *self,
                                                      GCancellable *cancellable,
                                                      GAsyncReadyCallback callback,
                                                      gpointer user_data);
GPtrArray *tocsin_history_load_owned_channels_finish (TocsinHistory *self, GAsyncResult *result,
                                                      GError **error);
/* Insert or update by (relay_url, id). Finish with tocsin_history_change_finish(). */
void       tocsin_history_save_owned_channel_async   (TocsinHistory *self,
                                                      const TocsinOwnedChannel *channel,
                                                      GCancellable *cancellable,
                                                      GAsyncReadyCallback callback,
                                                      gpointer user_data);
void       tocsin_history_remove_owned_channel_async (TocsinHistory *self,
                                                      const char *relay_url, gint64 id,
                                                      GCancellable *cancellable,
                                                      GAsyncReadyCallback callback,
                                                      gpointer user_data);

/* ---- action presses (issue 15) ---- */

/* One attempt of a press of a record's action button, as the press log keeps it. Never holds
 * secrets: url is tocsin_request_url_for_log() (no query, no user info), no header is kept. */
typedef struct
{
  gint64                id;             /* row id in the log */
  gint64                record_id;
  char                 *channel_name;   /* the record's channel (NULL when it has none) */
  guint                 action_index;   /* 0-based, into the record's actions */
  char                 *label;          /* the button's label */
  char                 *kind;           /* "view" or "http" */
  char                 *url;            /* scheme://host:port/path */
  gint64                pressed_at_ms;  /* when this attempt started (unix ms) */
  guint                 attempt;        /* 1-based */
  guint                 status;         /* HTTP status; 0: no answer (or a view) */
  char                 *error;          /* NULL on success; else a sentence */
  gint64                duration_ms;
  char                 *answer_start;   /* the answer's first bytes, or NULL */
  TocsinAttemptOutcome  outcome;
  gint64                retry_at_ms;    /* RETRY: when the next attempt goes; else 0 */
} TocsinActionPress;

GType              tocsin_action_press_get_type (void) G_GNUC_CONST;
#define TOCSIN_TYPE_ACTION_PRESS (tocsin_action_press_get_type ())
TocsinActionPress *tocsin_action_press_new      (void);
TocsinActionPress *tocsin_action_press_copy     (const TocsinActionPress *press);
void               tocsin_action_press_free     (TocsinActionPress       *press);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinActionPress, tocsin_action_press_free)

/* Appends @press (its id and channel_name are ignored) to the log. Finish with
 * tocsin_history_change_finish(): the new row id, or -1 with @error. */
void       tocsin_history_add_press_async     (TocsinHistory           *self,
                                               const TocsinActionPress *press,
                                               GCancellable            *cancellable,
                                               GAsyncReadyCallback      callback,
                                               gpointer                 user_data);
/* The log, newest first: every attempt of every press (@record_id 0) or of one record's, at
 * most @limit (0: 1,000) of them. Only presses whose record is still in the history are
 * listed; the others go when their record is pruned. Returns a GPtrArray of
 * TocsinActionPress. */
void       tocsin_history_list_presses_async  (TocsinHistory           *self,
                                               gint64                   record_id,
                                               guint                    limit,
                                               GCancellable            *cancellable,
                                               GAsyncReadyCallback      callback,
                                               gpointer                 user_data);
GPtrArray *tocsin_history_list_presses_finish (TocsinHistory           *self,
                                               GAsyncResult            *result,
                                               GError                 **error);
/* The newest attempt of each record's action presses, at most @limit records (0: 1,000), for
 * the rows' "last result" after a start. Returns a GPtrArray of TocsinActionPress. */
void       tocsin_history_last_presses_async  (TocsinHistory           *self,
                                               guint                    limit,
                                               GCancellable            *cancellable,
                                               GAsyncReadyCallback      callback,
                                               gpointer                 user_data);

/* Signals (main context of creation, after commit):
 *   "record-added"   (TocsinRecord *record)   a new record (message or gap)
 *   "records-added"  (GPtrArray *records)     the same records again, oldest first, a run of
 *                                             them at a time (a burst: those of one main-loop
 *                                             dispatch), after their "record-added"s and
 *                                             before any other change that followed them
 *   "record-changed" (TocsinRecord *record)   replaced content or read state; a fresh object
 *                                             with the full stored state
 *   "record-removed" (gint64 id)
 *   "reset"          ()                        many records changed (mark all read, clear,
 *                                             prune): reload what you show
 */

G_END_DECLS
