/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-store-pg.h: the relay store's PostgreSQL backend (issue 16), through libpq.
 *
 * Every function blocks on the network to the database: call them only on the store's own
 * thread (as the SQLite writer thread does), never on the main loop. A handle is one connection
 * and is not shared between threads; several handles (several nodes) on one database are what
 * it is made for: dedup and per-channel id order hold across them (see the .c).
 *
 * Not complete: see tocsin_relay_store_pg_missing(). Not yet called by tocsin-relay-store.c.
 */
#pragma once

#include "tocsin-relay-store.h"

G_BEGIN_DECLS

typedef struct _TocsinRelayStorePg TocsinRelayStorePg;

/* Whether @database names PostgreSQL ("postgresql://…" or "postgres://…"). */
gboolean            tocsin_relay_store_pg_is_url      (const char *database);
/* A sentence saying what `serve --database=postgresql://…` cannot do yet (or that this build
 * has no libpq); NULL once nothing is missing. */
const char         *tocsin_relay_store_pg_missing     (void);

/* Connects and creates the schema if it is not there (under an advisory lock, so that nodes
 * starting together do not race). TOCSIN_RELAY_STORE_ERROR_FAILED with libpq's message. */
TocsinRelayStorePg *tocsin_relay_store_pg_open        (const char  *conninfo,
                                                       GError     **error);
void                tocsin_relay_store_pg_free        (TocsinRelayStorePg *pg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRelayStorePg, tocsin_relay_store_pg_free)

/* Channels. @spec has been checked and its actions normalised by the caller (the store's
 * public function does both before it picks a backend). */
TocsinRelayChannel *tocsin_relay_store_pg_create_channel (TocsinRelayStorePg           *pg,
                                                          const TocsinRelayChannelSpec *spec,
                                                          const char                   *kind,
                                                          char                        **owner_key,
                                                          GError                      **error);
/* NULL without @error set when no channel has that token (or id). */
TocsinRelayChannel *tocsin_relay_store_pg_find_by_trigger   (TocsinRelayStorePg  *pg,
                                                             const char          *token,
                                                             GError             **error);
TocsinRelayChannel *tocsin_relay_store_pg_find_by_subscribe (TocsinRelayStorePg  *pg,
                                                             const char          *token,
                                                             GError             **error);
TocsinRelayChannel *tocsin_relay_store_pg_find_by_id        (TocsinRelayStorePg  *pg,
                                                             gint64               id,
                                                             GError             **error);
/* TOCSIN_RELAY_STORE_ERROR_NOT_FOUND when there is no channel @id. */
TocsinRelayChannel *tocsin_relay_store_pg_rotate_trigger    (TocsinRelayStorePg  *pg,
                                                             gint64               id,
                                                             GError             **error);
TocsinRelayChannel *tocsin_relay_store_pg_rotate_subscribe  (TocsinRelayStorePg  *pg,
                                                             gint64               id,
                                                             GError             **error);
gboolean            tocsin_relay_store_pg_delete_channel    (TocsinRelayStorePg  *pg,
                                                             gint64               id,
                                                             GError             **error);

/* One message to store, as tocsin_relay_store_commit_async() takes it. */
typedef struct
{
  gint64         channel_id;
  TocsinMessage *message;        /* borrowed; its id, channel and replaces are set */
  const char    *key_hash;       /* or NULL */
  const char    *content_hash;   /* or NULL */
  gint64         retention;      /* seconds; 0: live only (numbered, not kept) */
} TocsinRelayStorePgWrite;

/* Group commit: all of @writes in one transaction. Returns FALSE with @error when the
 * transaction failed (nothing of it is stored); otherwise, once COMMIT has returned,
 * commits[i] holds the result of writes[i], or NULL with errors[i] set (a deleted channel). */
gboolean tocsin_relay_store_pg_commit (TocsinRelayStorePg            *pg,
                                       const TocsinRelayStorePgWrite *writes,
                                       guint                          n_writes,
                                       TocsinRelayCommit            **commits,
                                       GError                       **errors,
                                       GError                       **error);

/* As tocsin_relay_store_replay_page(): messages of @channel_id after @after_id (-1: all
 * retained), at most @limit (0: no limit), and the gap a cursor older than retention leaves. */
TocsinRelayReplayPage *tocsin_relay_store_pg_replay_page (TocsinRelayStorePg  *pg,
                                                          gint64               channel_id,
                                                          gint64               after_id,
                                                          guint                limit,
                                                          gint64               retention,
                                                          GError             **error);
/* Drops messages past @retention seconds and dedup keys past their window, as of @now_ms. */
gboolean tocsin_relay_store_pg_prune (TocsinRelayStorePg  *pg,
                                      gint64               retention,
                                      gint64               now_ms,
                                      GError             **error);

/* Fan-out between nodes, the first part: each committed batch notifies (NOTIFY, sent only on
 * COMMIT) channel "tocsin_messages" with "CHANNEL_ID LAST_ID" for each channel it wrote to, and
 * deleting or rotating a channel notifies "tocsin_channels" with "CHANNEL_ID deleted" or
 * "CHANNEL_ID rotated". A node LISTENs on its own handle, waits for its socket to be readable
 * (on the store's thread), takes what arrived, and reads the new rows in id order with
 * tocsin_relay_store_pg_replay_page() from its cursor. */
typedef enum
{
  TOCSIN_RELAY_STORE_PG_EVENT_MESSAGES,  /* @id: the channel's newest committed id */
  TOCSIN_RELAY_STORE_PG_EVENT_DELETED,
  TOCSIN_RELAY_STORE_PG_EVENT_ROTATED,
} TocsinRelayStorePgEvent;

typedef void (*TocsinRelayStorePgNotifyFunc) (TocsinRelayStorePgEvent  event,
                                              gint64                   channel_id,
                                              gint64                   id,
                                              gpointer                 user_data);

gboolean tocsin_relay_store_pg_listen               (TocsinRelayStorePg  *pg,
                                                     GError             **error);
/* The connection's socket, to poll for reading; -1 when there is no connection. */
int      tocsin_relay_store_pg_socket               (TocsinRelayStorePg  *pg);
/* Without blocking: reads what the server sent and calls @func for each notification. */
gboolean tocsin_relay_store_pg_take_notifications   (TocsinRelayStorePg            *pg,
                                                     TocsinRelayStorePgNotifyFunc   func,
                                                     gpointer                       user_data,
                                                     GError                       **error);

G_END_DECLS
