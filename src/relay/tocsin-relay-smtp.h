/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-smtp.h: the email trigger's SMTP server (`tocsin-relay serve --smtp-listen`).
 *
 * Two layers. TocsinRelaySmtp is one session's state machine (RFC 5321): bytes in, replies out,
 * no sockets and no clock, so that tests and tests/fuzz/fuzz-smtp.c drive it directly. It asks
 * its hooks whether a recipient exists and hands them the message at the end of DATA; the reply
 * to DATA waits for tocsin_relay_smtp_delivered(). TocsinRelaySmtpServer runs sessions on
 * accepted sockets (GSocketService, asynchronous, never blocking the main loop), with the
 * timeouts, the connection cap and STARTTLS, and delivers through the webhook's own steps
 * (tocsin-relay-ingest.h: render, build, durable commit) before it answers 250.
 */
#pragma once

#include <gio/gio.h>

#include "tocsin-relay.h"

G_BEGIN_DECLS

/* RFC 5321 §4.5.3.1: a command line is at most 512 octets, a text line 1000, with CRLF. */
#define TOCSIN_RELAY_SMTP_MAX_COMMAND_LINE 512
#define TOCSIN_RELAY_SMTP_MAX_TEXT_LINE 1000
/* Recipients of one transaction; more get 452 and go in the sender's next transaction. */
#define TOCSIN_RELAY_SMTP_MAX_RECIPIENTS 10
/* Commands answered with an error before the session is closed (421). */
#define TOCSIN_RELAY_SMTP_MAX_ERRORS 20

typedef struct _TocsinRelaySmtp TocsinRelaySmtp;

typedef enum
{
  TOCSIN_RELAY_SMTP_READY,       /* reading commands or data */
  TOCSIN_RELAY_SMTP_DELIVERING,  /* waiting for tocsin_relay_smtp_delivered() */
  TOCSIN_RELAY_SMTP_STARTTLS,    /* send the output, handshake, then _tls_started() */
  TOCSIN_RELAY_SMTP_CLOSING,     /* send the output and close */
} TocsinRelaySmtpState;

typedef struct
{
  const char *domain;        /* recipients must be @ this (case-insensitive) */
  gsize       max_size;      /* bytes of one message, as SIZE= and in DATA */
  gboolean    tls_available; /* offer STARTTLS */
} TocsinRelaySmtpLimits;

typedef struct
{
  /* RCPT TO:<@local@domain>, @local lowercased. Returns 250 and sets *channel_id, or an SMTP
   * code with *reply set to "X.Y.Z sentence" (taken); or 0 to answer later (the session is
   * DELIVERING meanwhile) with tocsin_relay_smtp_recipient_found(). */
  guint (*recipient) (gpointer     user_data,
                      const char  *local,
                      gint64      *channel_id,
                      char       **reply);
  /* End of DATA: the dot-unstuffed message for @channel_ids (gint64), from the envelope
   * @mail_from to @rcpt_to (the first recipient's address). */
  void  (*deliver)   (gpointer     user_data,
                      const char  *mail_from,
                      const char  *rcpt_to,
                      GArray      *channel_ids,
                      GBytes      *data);
} TocsinRelaySmtpHooks;

TocsinRelaySmtp     *tocsin_relay_smtp_new          (const TocsinRelaySmtpLimits *limits,
                                                     const TocsinRelaySmtpHooks  *hooks,
                                                     gpointer                     user_data);
void                 tocsin_relay_smtp_free         (TocsinRelaySmtp *smtp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRelaySmtp, tocsin_relay_smtp_free)

/* The 220 greeting. */
void                 tocsin_relay_smtp_greet        (TocsinRelaySmtp *smtp);
/* Takes bytes from the peer and answers what it can; bytes that arrive while the session is not
 * READY are kept and read once it is. @data may be NULL to go on with what is kept. */
TocsinRelaySmtpState tocsin_relay_smtp_feed         (TocsinRelaySmtp *smtp,
                                                     const char      *data,
                                                     gsize            length);
TocsinRelaySmtpState tocsin_relay_smtp_get_state    (TocsinRelaySmtp *smtp);
/* The replies written so far and not yet taken (the caller sends and clears it). */
GString             *tocsin_relay_smtp_get_output   (TocsinRelaySmtp *smtp);
/* Answers the DATA being delivered: @code (250, 451, 552, 554...) and "X.Y.Z sentence". */
void                 tocsin_relay_smtp_delivered    (TocsinRelaySmtp *smtp,
                                                     guint            code,
                                                     const char      *reply);
/* Answers the RCPT TO whose recipient hook returned 0, as the hook would have. Does nothing when
 * the session no longer waits for it (closed meanwhile). */
void                 tocsin_relay_smtp_recipient_found (TocsinRelaySmtp *smtp,
                                                        guint            code,
                                                        gint64           channel_id,
                                                        const char      *reply);
/* The TLS handshake after STARTTLS succeeded: the session starts over (RFC 3207 §4.2). */
void                 tocsin_relay_smtp_tls_started  (TocsinRelaySmtp *smtp);
/* Ends the session with 421 and @reply ("X.Y.Z sentence"): a timeout, a shutdown. */
void                 tocsin_relay_smtp_close        (TocsinRelaySmtp *smtp,
                                                     const char      *reply);

/* ---- the server ---- */

typedef struct _TocsinRelaySmtpServer TocsinRelaySmtpServer;

/* Listens on @listen ("HOST:PORT", IPv6 as "[::1]:PORT"; port 0 picks one) for @relay, which
 * must outlive it; @certificate (may be NULL) is offered with STARTTLS. *url: "smtp://HOST:PORT"
 * as bound. */
TocsinRelaySmtpServer *tocsin_relay_smtp_server_new  (TocsinRelay      *relay,
                                                      const char       *listen,
                                                      GTlsCertificate  *certificate,
                                                      char            **url,
                                                      GError          **error);
void                   tocsin_relay_smtp_server_free (TocsinRelaySmtpServer *server);

G_END_DECLS
