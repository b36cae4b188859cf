/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-test-target.h: a real HTTP(S) server that outgoing requests (forwards, action presses)
 * are sent to in tests, and that misbehaves on request. It listens on 127.0.0.1 port 0 and runs
 * in a thread of its own with its own GMainContext, so a test may block its own main loop (or
 * wait in TOCSIN_WAIT_UNTIL) while the target keeps answering.
 *
 * Each path has a queue of scripted answers, taken one per request; when the queue is empty the
 * path's "always" answer is used (tocsin_test_target_always()), else 200 "ok". An answer can be a
 * status with headers and a body (repeated to make it big, or "endless": never finished), a hang
 * of N seconds before answering, or a connection closed without any answer. Every request is
 * recorded when it arrives, before it is answered (method, path, query, headers, body, arrival
 * time), and can be read back from any thread.
 *
 * Example (a relay forward retried after a 503 with Retry-After):
 *
 *   g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
 *   g_autofree char *url = tocsin_test_target_url (target, "/hook");  // http://127.0.0.1:P/hook
 *
 *   tocsin_test_target_push (target, "/hook", 503, "busy", "Retry-After", "1", NULL);
 *   tocsin_test_target_push (target, "/hook", 200, "{\"ok\":true}", NULL);
 *   ... make the relay send to url ...
 *   tocsin_test_target_wait_requests (target, 2, 30);
 *   g_autoptr(GPtrArray) requests = tocsin_test_target_get_requests (target, "/hook");
 *   TocsinTestTargetRequest *first = g_ptr_array_index (requests, 0);
 *   TocsinTestTargetRequest *second = g_ptr_array_index (requests, 1);
 *   g_assert_cmpstr (tocsin_test_target_request_header (second, "webhook-id"), ==,
 *                    tocsin_test_target_request_header (first, "webhook-id"));
 *   g_assert_cmpint (second->arrived_ms, >=, first->arrived_ms + 1000);
 *
 * A host that fails every time, then recovers:
 *
 *   TocsinTestTargetAnswer down = { .status = 503, .body = "down", .body_length = -1 };
 *   tocsin_test_target_always (target, "/hook", &down);
 *   ...
 *   tocsin_test_target_always (target, "/hook", NULL);
 *
 * Build: add `test_target_sources` (tests/meson.build) to the test's sources; it needs libsoup.
 *
 * TLS: tocsin_test_target_new_tls (pki->cert_file, pki->key_file) with a TocsinTestPki
 * (tests/tocsin-test-tls.h): the client trusts it only with pki->ca_file.
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _TocsinTestTarget TocsinTestTarget;

/* One request as the target received it; immutable, reference counted. */
typedef struct
{
  char               *method;
  char               *path;
  char               *query;        /* NULL when the URL had none */
  SoupMessageHeaders *headers;      /* a copy of the request's headers */
  GBytes             *body;         /* never NULL; empty when there was none */
  gint64              arrived_ms;   /* unix ms (g_get_real_time) */
  gint64              arrived_us;   /* monotonic µs (g_get_monotonic_time) */
} TocsinTestTargetRequest;

TocsinTestTargetRequest *tocsin_test_target_request_ref    (TocsinTestTargetRequest *request);
void                     tocsin_test_target_request_unref  (TocsinTestTargetRequest *request);
/* The header's value (case-insensitive name), or NULL. */
const char              *tocsin_test_target_request_header (TocsinTestTargetRequest *request,
                                                            const char              *name);
/* The body as a NUL-terminated string (borrowed from the GBytes; stops at an embedded NUL). */
const char              *tocsin_test_target_request_body   (TocsinTestTargetRequest *request);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinTestTargetRequest, tocsin_test_target_request_unref)

/* A scripted answer. */
typedef struct
{
  guint               status;       /* 0: 200 */
  const char * const *headers;      /* name, value, ..., NULL; or NULL */
  const char         *body;         /* or NULL: empty */
  gssize              body_length;  /* -1: strlen (body) */
  guint               body_repeat;  /* send the body this many times (0 or 1: once): a big one */
  guint               hang_s;       /* wait this long before answering (the client may give up) */
  gboolean            close;        /* close the connection without answering (after hang_s) */
  gboolean            endless;      /* send the body (chunked), then never end the answer */
} TocsinTestTargetAnswer;

/* Plain HTTP on 127.0.0.1, port 0. */
TocsinTestTarget *tocsin_test_target_new         (void);
/* HTTPS with @cert_file / @key_file (PEM); asserts they load. */
TocsinTestTarget *tocsin_test_target_new_tls     (const char *cert_file,
                                                  const char *key_file);
/* Stops the thread (a hanging answer is abandoned) and frees everything. */
void              tocsin_test_target_free        (TocsinTestTarget *target);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinTestTarget, tocsin_test_target_free)

/* "http://127.0.0.1:PORT" (or https), no trailing slash. */
const char       *tocsin_test_target_base_url    (TocsinTestTarget *target);
guint16           tocsin_test_target_port        (TocsinTestTarget *target);
/* base_url + @path (newly allocated). */
char             *tocsin_test_target_url         (TocsinTestTarget *target,
                                                  const char       *path);

/* Queues @answer for the next request to @path (the path only, no query). Thread-safe. */
void              tocsin_test_target_push_answer (TocsinTestTarget             *target,
                                                  const char                   *path,
                                                  const TocsinTestTargetAnswer *answer);
/* Shorthand: @status, @body (may be NULL), then header name/value pairs, NULL-terminated. */
void              tocsin_test_target_push        (TocsinTestTarget *target,
                                                  const char       *path,
                                                  guint             status,
                                                  const char       *body,
                                                  ...) G_GNUC_NULL_TERMINATED;
/* Queues a hang of @seconds, then @status (0: close without answering). */
void              tocsin_test_target_push_hang   (TocsinTestTarget *target,
                                                  const char       *path,
                                                  guint             seconds,
                                                  guint             status);
/* Queues a connection closed without any answer. */
void              tocsin_test_target_push_close  (TocsinTestTarget *target,
                                                  const char       *path);
/* The answer for @path whenever its queue is empty ("fails every time" with 500 or close);
 * NULL @answer: back to 200 "ok". */
void              tocsin_test_target_always      (TocsinTestTarget             *target,
                                                  const char                   *path,
                                                  const TocsinTestTargetAnswer *answer);

/* Requests received so far, in order of arrival (for @path only, or all when NULL): a new
 * array of references. */
GPtrArray        *tocsin_test_target_get_requests   (TocsinTestTarget *target,
                                                     const char       *path);
guint             tocsin_test_target_count_requests (TocsinTestTarget *target,
                                                     const char       *path);
/* Iterates the caller's thread-default main context until at least @n requests (all paths)
 * have arrived; fails the test after @timeout_s (a guard against a hang, not a timing). */
void              tocsin_test_target_wait_requests  (TocsinTestTarget *target,
                                                     guint             n,
                                                     guint             timeout_s);
/* Forgets the recorded requests (the scripts stay). */
void              tocsin_test_target_clear_requests (TocsinTestTarget *target);

G_END_DECLS
