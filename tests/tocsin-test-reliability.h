/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-test-reliability.h: what the reliability tests observe of a running relay beyond HTTP:
 * raw sockets (a peer that misbehaves below HTTP), the relay process's memory and descriptors
 * from /proc, and what its store holds (replayed with since=all, as a subscriber sees it).
 */
#pragma once

#include "tocsin-test-relay.h"

G_BEGIN_DECLS

/* A plain TCP connection to the relay, non-blocking. */
GSocket   *tocsin_rel_connect_raw      (TocsinTestRelay *relay);
/* Same, from @source (a loopback address such as "127.0.0.2", so that the relay sees another
 * client; NULL: any), with a receive buffer of @rcvbuf bytes (0: the kernel's default) set
 * before connecting, as a reader that never reads keeps it. */
GSocket   *tocsin_rel_connect_raw_full (TocsinTestRelay *relay,
                                        const char      *source,
                                        gsize            rcvbuf);
/* Lets one write of @length bytes on @socket go into the kernel whole (SO_SNDBUF), as a client
 * that writes a request at once: the relay then sees it in as few segments as TCP makes. */
void       tocsin_rel_whole_writes     (GSocket         *socket,
                                        gsize            length);
/* Sends @request on a new connection from @source (NULL: any) and reads until the relay closes
 * it; returns all it answered ("" for a bare close). @request should say Connection: close. */
GString   *tocsin_rel_raw_exchange     (TocsinTestRelay *relay,
                                        const char      *source,
                                        const char      *request,
                                        gsize            length);
/* Splits an HTTP answer: returns its status (0 when there is none), *@headers (optional) the
 * head, and *@body (optional) the JSON object of the body, asserting that it is one. */
guint      tocsin_rel_parse_answer     (const char      *answer,
                                        char           **headers,
                                        JsonObject     **body);
/* Sends a WebSocket handshake for @path on @socket and waits for the 101; asserts it came. */
void       tocsin_rel_ws_handshake     (GSocket         *socket,
                                        const char      *path);
/* A masked client frame (final) with @opcode and @payload, ready to send. */
GBytes    *tocsin_rel_ws_client_frame  (guint8           opcode,
                                        const void      *payload,
                                        gsize            length);
/* The largest send queue (bytes the kernel holds, not yet acknowledged) among the relay's
 * accepted TCP sockets, from /proc/net/tcp. */
guint64    tocsin_rel_relay_max_send_queue (TocsinTestRelay *relay);
/* Sends all of @data on a non-blocking socket (iterating the main context while it is full).
 * FALSE once the peer has closed the connection. */
gboolean   tocsin_rel_send_all         (GSocket         *socket,
                                        const char      *data,
                                        gsize            length);
/* TRUE once the peer closed @socket (end of file or a reset); discards what it reads. When
 * @received is given, appends what was read to it. */
gboolean   tocsin_rel_peer_closed      (GSocket         *socket,
                                        GString         *received);

/* TRUE when the relay runs under TOCSIN_RELAY_WRAPPER (valgrind...) or is built with
 * AddressSanitizer, whose own memory makes the relay's RSS mean nothing: memory bounds are then
 * reported, not asserted. */
gboolean   tocsin_rel_relay_wrapped    (void);
/* The relay process's resident memory (VmRSS, KiB) and open descriptors, from /proc. */
guint64    tocsin_rel_relay_rss_kib    (TocsinTestRelay *relay);
guint      tocsin_rel_relay_fd_count   (TocsinTestRelay *relay);

/* The newest stored message id of a channel (`channel show ID --json`). */
gint64     tocsin_rel_last_id          (TocsinTestRelay *relay,
                                        gint64           channel_id);
/* Every retained message of the channel, replayed over /s/TOKEN/ws?since=all; waits for the
 * newest one (tocsin_rel_last_id). Returns a GPtrArray of JsonObject (message objects). */
GPtrArray *tocsin_rel_replay_all       (TocsinTestRelay *relay,
                                        JsonObject      *channel);
/* Asserts that a channel's store holds messages 1..@expected_last, in order, with nothing
 * after. */
void       tocsin_rel_assert_store     (TocsinTestRelay *relay,
                                        JsonObject      *channel,
                                        gint64           expected_last);

/* "/t/<trigger token>" + @suffix. */
char      *tocsin_rel_hook             (JsonObject      *channel,
                                        const char      *suffix);
/* Rings a channel with a GET; asserts 200 and returns the stored id. */
gint64     tocsin_rel_ring             (TocsinTestRelay *relay,
                                        JsonObject      *channel,
                                        const char      *query);

/* Parses @text as a JSON object (asserts it is one). */
JsonObject *tocsin_rel_parse_object    (const char      *text,
                                        gssize           length);

/* A subscriber on /s/TOKEN/ws that reconnects whenever its connection drops and resumes with
 * ?since=<last id it saw>, as the app does with its cursor. Embed it in a struct that outlives
 * its connections. */
typedef struct
{
  TocsinTestRelay         *relay;         /* not owned; no attempt while it is stopped */
  SoupSession             *session;       /* not owned */
  char                    *base_url;      /* NULL: the relay's, as it is at each attempt */
  char                    *token;         /* the channel's subscribe token */
  SoupWebsocketConnection *ws;
  gboolean                 connecting;
  gint64                   cursor;        /* last id seen */
  guint                    reconnects;
  GHashTable              *delivered;     /* id → times delivered */
  GHashTable              *delivered_seq; /* id → the message's "seq" variable, when it has one */
  guint                    out_of_order;  /* messages whose id was not cursor + 1 */
  guint                    bad_frames;    /* frames that were not messages (a gap notice too) */
  char                    *node;          /* X-Tocsin-Node of the answer that opened the current
                                           * connection (HAProxy names the node), or NULL */
} TocsinRelSubscriber;

/* Sets up @sub for @channel on @relay, reached at @base_url ("http://HOST:PORT"; NULL: the
 * relay's own, which changes on a restart on port 0); connects nothing. */
void       tocsin_rel_subscriber_init    (TocsinRelSubscriber *sub,
                                          TocsinTestRelay     *relay,
                                          const char          *base_url,
                                          JsonObject          *channel,
                                          SoupSession         *session);
/* Starts a connection unless one is open or under way, or the relay is stopped; call it on
 * every turn of the test's loop. */
void       tocsin_rel_subscriber_connect (TocsinRelSubscriber *sub);
/* Closes the connection and frees what @sub holds. */
void       tocsin_rel_subscriber_clear   (TocsinRelSubscriber *sub);

G_END_DECLS
