/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-outbound.h: sends rendered requests (tocsin-request.h) and decides what happens next,
 * per the request's policy (issue 15, docs/actions.md):
 *
 *  - retry (Braze): 2xx is success. 429: wait for Retry-After (seconds or an HTTP-date), and pace
 *    the host by X-Rate-Limit-Limit/-Remaining/-Reset and the IETF RateLimit headers
 *    (RateLimit-Remaining/-Reset, and "RateLimit: limit=…, remaining=…, reset=…"). 5xx, a
 *    timeout or a connection/TLS error: retry after an exponential backoff with full jitter
 *    (base × 2^(attempt-1), capped), up to max_attempts. Other 4xx (and 3xx: redirects are not
 *    followed) are final.
 *  - none (Ringostat): one attempt; anything but 2xx is final, "with error".
 *
 * Per host (scheme://host:port) it keeps the pacing above and a circuit breaker: when at least
 * breaker_min of the last breaker_window attempts to a host ended, and more than half of them
 * failed, the host is held back for cooldown (doubling on each failed probe, up to 16×), then one
 * probe is let through; a success closes the breaker. Held-back sends are not attempts: the
 * caller asks tocsin_outbound_host_ready_at() and waits.
 *
 * One TocsinOutbound per process (the relay's forwards, the app's action presses); it lives on
 * the thread whose main context created it.
 */
#pragma once

#include <gio/gio.h>

#include "tocsin-request.h"

G_BEGIN_DECLS

typedef struct
{
  guint  timeout_s;         /* per attempt, connect to last byte (default 10) */
  guint  max_attempts;      /* retry policy (default 8) */
  guint  backoff_base_ms;   /* first retry after up to this (default 1,000) */
  guint  backoff_max_ms;    /* cap (default 600,000) */
  guint  breaker_window;    /* last N attempts per host (default 10) */
  guint  breaker_min;       /* needed before it can open (default 5) */
  guint  cooldown_ms;       /* first hold-back (default 30,000) */
  char  *ca_file;           /* extra trusted CA (PEM), or NULL: the system's */
  /* Added after the contract (B): refuse to talk to loopback, link-local, private (RFC 1918,
   * fc00::/7), CGNAT and unspecified addresses, checked on the connected socket (so a name that
   * resolves there, or re-resolves, is caught too). Default FALSE. */
  gboolean deny_private;
} TocsinOutboundConfig;

/* The defaults above. */
void tocsin_outbound_config_init (TocsinOutboundConfig *config);

typedef enum
{
  TOCSIN_ATTEMPT_SUCCESS,       /* 2xx */
  TOCSIN_ATTEMPT_RETRY,         /* failed; retry at retry_at_ms */
  TOCSIN_ATTEMPT_FINAL_ERROR,   /* failed; do not retry (4xx, policy none, attempts exhausted) */
} TocsinAttemptOutcome;

/* One attempt, as the deliveries log shows it. Never holds secrets: url is
 * tocsin_request_url_for_log(), no header is kept. */
typedef struct
{
  gint64                started_ms;     /* unix ms */
  gint64                duration_ms;    /* until the answer's last byte (or the error) */
  guint                 attempt;        /* 1-based */
  char                 *url;            /* scheme://host:port/path */
  guint                 status;         /* HTTP status, 0 when there was no answer */
  char                 *error;          /* NULL on success; else a sentence ("timed out after
                                           10 s", "HTTP 503 Service Unavailable", "TLS: …") */
  char                 *answer_start;   /* the first 256 bytes of the answer as valid UTF-8 */
  TocsinAttemptOutcome  outcome;
  gint64                retry_at_ms;    /* RETRY: when (unix ms, Retry-After honoured); else 0 */
} TocsinAttempt;

void tocsin_attempt_free (TocsinAttempt *attempt);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinAttempt, tocsin_attempt_free)

typedef struct _TocsinOutbound TocsinOutbound;

TocsinOutbound *tocsin_outbound_new      (const TocsinOutboundConfig *config);
/* Sends still in flight end "cancelled" (their callbacks are still called, later). */
void            tocsin_outbound_free     (TocsinOutbound             *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinOutbound, tocsin_outbound_free)

/* When @url's host may next be sent to (unix ms; <= now: now). Pacing and the breaker. */
gint64          tocsin_outbound_host_ready_at (TocsinOutbound *self,
                                               const char     *url);
/* "open until T", "probing", "closed": for logs and the deliveries page. */
char           *tocsin_outbound_describe_host (TocsinOutbound *self,
                                               const char     *url);

/* Sends one attempt of @request. @webhook_id (Standard Webhooks' idempotency id, the same on
 * every attempt of one delivery) is sent as `webhook-id` when not NULL; @attempt is 1-based and
 * decides the backoff. Never fails: the attempt says what happened. */
void            tocsin_outbound_send_async  (TocsinOutbound              *self,
                                             const TocsinRenderedRequest *request,
                                             const char                  *webhook_id,
                                             guint                        attempt,
                                             GCancellable                *cancellable,
                                             GAsyncReadyCallback          callback,
                                             gpointer                     user_data);
TocsinAttempt  *tocsin_outbound_send_finish (TocsinOutbound              *self,
                                             GAsyncResult                *result);

/* Retry-After's value (delta-seconds or an HTTP-date) as unix ms from @now_ms; -1 if unreadable.
 * Exposed for tests and the fuzzer. */
gint64          tocsin_outbound_parse_retry_after (const char *value,
                                                   gint64      now_ms);

/* Added after the contract (B): the parsers and rules below, for tests and the fuzzer. */

/* What an answer's headers say about waiting (unix ms; 0: nothing). */
typedef struct
{
  gint64 retry_after_ms;   /* Retry-After (capped at 24 h from now) */
  gint64 paced_until_ms;   /* remaining 0 in X-Rate-Limit-*, RateLimit-*, or RateLimit: reset */
} TocsinOutboundPacing;

/* @headers: name, value, name, value, ..., NULL. Values over 256 bytes are ignored.
 * X-Rate-Limit-Reset (or X-RateLimit-Reset) up to 1,000,000,000 is seconds from now; above, a
 * unix time in seconds (or in ms above 100,000,000,000). RateLimit-Reset and the structured
 * "RateLimit: limit=.., remaining=.., reset=.." (or "r=..;t=..") reset are seconds from now. */
void            tocsin_outbound_parse_pacing      (const char * const   *headers,
                                                   gint64                now_ms,
                                                   TocsinOutboundPacing *pacing);

/* How much of an answer an attempt keeps. */
#define TOCSIN_OUTBOUND_ANSWER_START 256

/* The first TOCSIN_OUTBOUND_ANSWER_START bytes of @data as valid UTF-8 (invalid bytes and NUL
 * become U+FFFD; the result is at most TOCSIN_OUTBOUND_ANSWER_START bytes). */
char           *tocsin_outbound_answer_start      (const guint8 *data,
                                                   gsize         len);

/* Trusts @database (or nothing more than the system's, with NULL) in addition to the system's
 * CAs from the next send on, in place of ca_file's: for a caller that reads its CA file off its
 * main loop and may change it while running (the app's Preferences). */
void            tocsin_outbound_set_extra_ca      (TocsinOutbound *self,
                                                   GTlsDatabase   *database);

/* Why ca_file could not be used (a sentence), or NULL: for the caller to refuse to start. */
const char     *tocsin_outbound_get_ca_error      (TocsinOutbound *self);

/* The retry policy's backoff for a failed @attempt (1-based): the retry comes at a random time
 * in [0, this] from the failure (full jitter): min (backoff_max_ms, backoff_base_ms × 2^(n-1)),
 * and never before the host is ready. */
guint64         tocsin_outbound_backoff_bound_ms  (TocsinOutbound *self,
                                                   guint           attempt);

G_END_DECLS
