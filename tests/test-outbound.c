/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-outbound.c: tocsin-outbound.c (issue 15, "Errors and retries") against a real HTTP
 * target on 127.0.0.1 that misbehaves on request (tests/tocsin-test-target.h). What is asserted
 * is what an operator sees in the deliveries log: the attempts in order, their outcome, status,
 * error sentence, answer start and next retry; the pacing and the circuit breaker as
 * tocsin_outbound_host_ready_at() and _describe_host() report them. Times are asserted as order
 * and bounds, never as exact durations.
 */
#define G_LOG_DOMAIN "test-outbound"

#include "config.h"

#include <string.h>
#include <libsoup/soup.h>

#include "tocsin-outbound.h"
#include "tocsin-test-relay.h"
#include "tocsin-test-target.h"
#include "tocsin-test-tls.h"

/* ---- Helpers ---- */

/* A rendered request as tocsin_request_render() makes one (built by hand: this test is about
 * sending, not rendering). */
static TocsinRenderedRequest *
make_request (const char          *method,
              const char          *url,
              TocsinRequestPolicy  policy,
              const char          *body)
{
  TocsinRenderedRequest *request = g_new0 (TocsinRenderedRequest, 1);
  const char *headers[] = {
    "Content-Type", "application/json", "Authorization", "Bearer s3cret", NULL
  };

  request->name = g_strdup ("test");
  request->method = g_strdup (method);
  request->url = g_strdup (url);
  request->headers = g_strdupv ((char **) headers);
  request->body = body ? g_bytes_new (body, strlen (body)) : NULL;
  request->policy = policy;
  return request;
}


static void
sent_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  TocsinAttempt **out = user_data;

  *out = tocsin_outbound_send_finish (NULL, result);
  g_assert_nonnull (*out);
}

/* Sends one attempt and waits for its record, iterating this thread's main context. */
static TocsinAttempt *
send (TocsinOutbound              *outbound,
      const TocsinRenderedRequest *request,
      const char                  *webhook_id,
      guint                        attempt,
      GCancellable                *cancellable)
{
  TocsinAttempt *result = NULL;

  tocsin_outbound_send_async (outbound, request, webhook_id, attempt, cancellable, sent_cb,
                              &result);
  TOCSIN_WAIT_UNTIL_SECONDS (result != NULL, 60);
  return result;
}

static gint64
now_ms (void)
{
  return g_get_real_time () / 1000;
}

/* Waits (iterating the main context) until the real clock reaches @at_ms. */
static void
wait_until_ms (gint64 at_ms)
{
  TOCSIN_WAIT_UNTIL_SECONDS (now_ms () >= at_ms, 120);
}

static TocsinOutbound *
outbound_new (guint       timeout_s,
              guint       backoff_base_ms,
              const char *ca_file)
{
  TocsinOutboundConfig config;

  tocsin_outbound_config_init (&config);
  config.timeout_s = timeout_s;
  config.backoff_base_ms = backoff_base_ms;
  config.ca_file = (char *) ca_file;
  return tocsin_outbound_new (&config);
}

/* ---- Parsers ---- */

static void
test_parse_retry_after (void)
{
  gint64 now = G_GINT64_CONSTANT (1800000000000);   /* 2027-01-15T08:00:00Z */

  g_assert_cmpint (tocsin_outbound_parse_retry_after ("120", now), ==, now + 120000);
  g_assert_cmpint (tocsin_outbound_parse_retry_after (" 0 ", now), ==, now);
  g_assert_cmpint (tocsin_outbound_parse_retry_after ("Fri, 15 Jan 2027 08:00:30 GMT", now), ==,
                   now + 30000);
  /* A date in the past: now. */
  g_assert_cmpint (tocsin_outbound_parse_retry_after ("Fri, 15 Jan 2027 07:00:00 GMT", now), ==,
                   now);
  /* Capped at 24 h. */
  g_assert_cmpint (tocsin_outbound_parse_retry_after ("999999999", now), ==, now + 86400000);
  g_assert_cmpint (tocsin_outbound_parse_retry_after ("-5", now), ==, -1);
  g_assert_cmpint (tocsin_outbound_parse_retry_after ("1.5", now), ==, -1);
  g_assert_cmpint (tocsin_outbound_parse_retry_after ("soon", now), ==, -1);
  g_assert_cmpint (tocsin_outbound_parse_retry_after ("", now), ==, -1);
  g_assert_cmpint (tocsin_outbound_parse_retry_after ("1234567890123456789012", now), ==, -1);
  g_assert_cmpint (tocsin_outbound_parse_retry_after (NULL, now), ==, -1);
}

static void
test_parse_pacing (void)
{
  gint64 now = G_GINT64_CONSTANT (1800000000000);
  TocsinOutboundPacing pacing;
  g_autofree char *long_value = g_strnfill (300, '1');

  {
    const char *h[] = { "X-Rate-Limit-Limit", "100", "X-Rate-Limit-Remaining", "0",
                        "X-Rate-Limit-Reset", "30", NULL };
    tocsin_outbound_parse_pacing (h, now, &pacing);
    g_assert_cmpint (pacing.paced_until_ms, ==, now + 30000);
    g_assert_cmpint (pacing.retry_after_ms, ==, 0);
  }
  {
    /* Above 1,000,000,000: a unix time. */
    const char *h[] = { "x-ratelimit-remaining", "0", "x-ratelimit-reset", "1800000045", NULL };
    tocsin_outbound_parse_pacing (h, now, &pacing);
    g_assert_cmpint (pacing.paced_until_ms, ==, now + 45000);
  }
  {
    /* Remaining above 0: no pacing. */
    const char *h[] = { "X-Rate-Limit-Remaining", "3", "X-Rate-Limit-Reset", "30", NULL };
    tocsin_outbound_parse_pacing (h, now, &pacing);
    g_assert_cmpint (pacing.paced_until_ms, ==, 0);
  }
  {
    const char *h[] = { "RateLimit-Remaining", "0", "RateLimit-Reset", "12", NULL };
    tocsin_outbound_parse_pacing (h, now, &pacing);
    g_assert_cmpint (pacing.paced_until_ms, ==, now + 12000);
  }
  {
    const char *h[] = { "RateLimit", "limit=10, remaining=0, reset=7", NULL };
    tocsin_outbound_parse_pacing (h, now, &pacing);
    g_assert_cmpint (pacing.paced_until_ms, ==, now + 7000);
  }
  {
    const char *h[] = { "RateLimit", "\"default\";r=0;t=9", NULL };
    tocsin_outbound_parse_pacing (h, now, &pacing);
    g_assert_cmpint (pacing.paced_until_ms, ==, now + 9000);
  }
  {
    const char *h[] = { "Retry-After", "5", "RateLimit", "remaining=0,reset=", NULL };
    tocsin_outbound_parse_pacing (h, now, &pacing);
    g_assert_cmpint (pacing.retry_after_ms, ==, now + 5000);
    g_assert_cmpint (pacing.paced_until_ms, ==, 0);
  }
  {
    /* Over-long values are not read. */
    const char *h[] = { "Retry-After", long_value, "X-Rate-Limit-Remaining", "0",
                        "X-Rate-Limit-Reset", long_value, NULL };
    tocsin_outbound_parse_pacing (h, now, &pacing);
    g_assert_cmpint (pacing.retry_after_ms, ==, 0);
    g_assert_cmpint (pacing.paced_until_ms, ==, 0);
  }
}

static void
test_answer_start_unit (void)
{
  g_autofree char *long_ascii = g_strnfill (300, 'a');
  g_autofree char *cut = tocsin_outbound_answer_start ((const guint8 *) long_ascii, 300);
  g_autofree char *invalid = tocsin_outbound_answer_start ((const guint8 *) "ok\xff\xfe\0!", 6);
  g_autoptr(GString) euros = g_string_new (NULL);
  g_autofree char *euro_cut = NULL;
  g_autofree char *all_invalid = NULL;
  guint8 bad[300];

  g_assert_cmpuint (strlen (cut), ==, 256);
  g_assert_true (g_utf8_validate (invalid, -1, NULL));
  g_assert_cmpstr (invalid, ==, "ok\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!");

  /* 3-byte characters: 256 is not a boundary. */
  for (guint i = 0; i < 100; i++)
    g_string_append (euros, "\xe2\x82\xac");
  euro_cut = tocsin_outbound_answer_start ((const guint8 *) euros->str, euros->len);
  g_assert_true (g_utf8_validate (euro_cut, -1, NULL));
  g_assert_cmpuint (strlen (euro_cut), <=, 256);

  /* Every byte invalid: U+FFFD is 3 bytes, still at most 256 in all. */
  memset (bad, 0xff, sizeof bad);
  all_invalid = tocsin_outbound_answer_start (bad, sizeof bad);
  g_assert_true (g_utf8_validate (all_invalid, -1, NULL));
  g_assert_cmpuint (strlen (all_invalid), <=, 256);
  g_assert_cmpuint (strlen (all_invalid), >=, 250);
}

/* ---- Against the target ---- */

static void
test_success (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = outbound_new (10, 1000, NULL);
  g_autofree char *url = tocsin_test_target_url (target, "/hook?token=s3cret");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_RETRY, "{\"a\":1}");
  g_autoptr(TocsinAttempt) attempt = NULL;
  g_autoptr(GPtrArray) requests = NULL;
  g_autofree char *user_agent = g_strdup_printf ("Tocsin/%s", PACKAGE_VERSION);
  g_autofree char *describe = NULL;
  TocsinTestTargetRequest *got;
  gint64 before = now_ms ();

  tocsin_test_target_push (target, "/hook", 200, "{\"accepted\":true}", NULL);
  attempt = send (outbound, request, "msg_2a0c1", 1, NULL);

  g_assert_cmpint (attempt->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
  g_assert_cmpuint (attempt->status, ==, 200);
  g_assert_null (attempt->error);
  g_assert_cmpstr (attempt->answer_start, ==, "{\"accepted\":true}");
  g_assert_cmpuint (attempt->attempt, ==, 1);
  g_assert_cmpint (attempt->retry_at_ms, ==, 0);
  g_assert_cmpint (attempt->started_ms, >=, before);
  g_assert_cmpint (attempt->duration_ms, >=, 0);
  /* No query (the token), no user info: the log holds no secret. */
  g_assert_true (g_str_has_prefix (attempt->url, "http://127.0.0.1:"));
  g_assert_true (g_str_has_suffix (attempt->url, "/hook"));
  g_assert_null (strstr (attempt->url, "s3cret"));

  requests = tocsin_test_target_get_requests (target, "/hook");
  g_assert_cmpuint (requests->len, ==, 1);
  got = g_ptr_array_index (requests, 0);
  g_assert_cmpstr (got->method, ==, "POST");
  g_assert_cmpstr (got->query, ==, "token=s3cret");
  g_assert_cmpstr (tocsin_test_target_request_body (got), ==, "{\"a\":1}");
  g_assert_cmpstr (tocsin_test_target_request_header (got, "Content-Type"), ==,
                   "application/json");
  g_assert_cmpstr (tocsin_test_target_request_header (got, "Authorization"), ==,
                   "Bearer s3cret");
  g_assert_cmpstr (tocsin_test_target_request_header (got, "webhook-id"), ==, "msg_2a0c1");
  g_assert_nonnull (tocsin_test_target_request_header (got, "webhook-timestamp"));
  g_assert_cmpint (g_ascii_strtoll (tocsin_test_target_request_header (got, "webhook-timestamp"),
                                    NULL, 10), >=, before / 1000);
  g_assert_cmpstr (tocsin_test_target_request_header (got, "User-Agent"), ==, user_agent);

  g_assert_cmpint (tocsin_outbound_host_ready_at (outbound, url), <=, now_ms ());
  describe = tocsin_outbound_describe_host (outbound, url);
  g_assert_cmpstr (describe, ==, "closed");
}

/* A definition compiled and rendered as the relay and the app do it (tocsin-request.h), then
 * sent: what the target receives is what the definition says. */
static void
test_rendered_definition (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = outbound_new (10, 1000, NULL);
  g_autofree char *base = tocsin_test_target_url (target, "/alerts");
  g_autofree char *definition_text = g_strdup_printf (
    "{\"name\": \"Forward\", \"url\": \"%s?key={{key}}\", \"method\": \"POST\","
    " \"format\": \"json\", \"headers\": {\"X-Alert\": \"{{title}}\"},"
    " \"params\": [{\"name\": \"title\", \"type\": \"text\", \"value\": \"{{title}}\"}]}",
    base);
  g_autoptr(JsonNode) definition = json_from_string (definition_text, NULL);
  g_autoptr(JsonNode) vars = json_from_string ("{\"title\": \"Disk full\", \"key\": \"k3y\"}",
                                               NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinRequest) compiled = NULL;
  g_autoptr(TocsinRenderedRequest) rendered = NULL;
  g_autoptr(TocsinAttempt) attempt = NULL;
  g_autoptr(GPtrArray) requests = NULL;
  g_autoptr(JsonNode) body = NULL;
  TocsinTemplateScope *scope;
  TocsinTestTargetRequest *got;

  compiled = tocsin_request_new ("forwards[0]", json_node_get_object (definition), &error);
  g_assert_no_error (error);
  scope = tocsin_template_scope_new (json_node_get_object (vars), NULL);
  rendered = tocsin_request_render (compiled, scope, &error);
  tocsin_template_scope_free (scope);
  g_assert_no_error (error);

  attempt = send (outbound, rendered, "msg_rendered", 1, NULL);
  g_assert_cmpint (attempt->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
  g_assert_true (g_str_has_suffix (attempt->url, "/alerts"));

  requests = tocsin_test_target_get_requests (target, "/alerts");
  g_assert_cmpuint (requests->len, ==, 1);
  got = g_ptr_array_index (requests, 0);
  g_assert_cmpstr (got->method, ==, "POST");
  g_assert_cmpstr (got->query, ==, "key=k3y");
  g_assert_cmpstr (tocsin_test_target_request_header (got, "X-Alert"), ==, "Disk full");
  g_assert_true (g_str_has_prefix (tocsin_test_target_request_header (got, "Content-Type"),
                                   "application/json"));
  body = json_from_string (tocsin_test_target_request_body (got), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (body), "title"), ==,
                   "Disk full");
}

/* 429 with Retry-After in seconds, then 200: the retry is not before Retry-After, the host is
 * held back until then, and both attempts carry one webhook-id. */
static void
test_retry_after_seconds (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = outbound_new (10, 10, NULL);
  g_autofree char *url = tocsin_test_target_url (target, "/hook");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  g_autoptr(TocsinAttempt) first = NULL;
  g_autoptr(TocsinAttempt) second = NULL;
  g_autoptr(GPtrArray) requests = NULL;
  TocsinTestTargetRequest *r1, *r2;

  tocsin_test_target_push (target, "/hook", 429, "slow down", "Retry-After", "2", NULL);
  tocsin_test_target_push (target, "/hook", 200, "ok", NULL);

  first = send (outbound, request, "msg_same", 1, NULL);
  g_assert_cmpint (first->outcome, ==, TOCSIN_ATTEMPT_RETRY);
  g_assert_cmpuint (first->status, ==, 429);
  g_assert_cmpstr (first->error, ==, "HTTP 429 Too Many Requests");
  g_assert_cmpstr (first->answer_start, ==, "slow down");
  /* Backoff alone would be at most 10 ms: Retry-After wins. */
  g_assert_cmpint (first->retry_at_ms, >=, first->started_ms + 2000);
  g_assert_cmpint (first->retry_at_ms, <=, now_ms () + 2000 + 10 + 1);
  g_assert_cmpint (tocsin_outbound_host_ready_at (outbound, url), >=, first->started_ms + 2000);

  wait_until_ms (first->retry_at_ms);
  second = send (outbound, request, "msg_same", 2, NULL);
  g_assert_cmpint (second->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
  g_assert_cmpuint (second->attempt, ==, 2);

  requests = tocsin_test_target_get_requests (target, "/hook");
  g_assert_cmpuint (requests->len, ==, 2);
  r1 = g_ptr_array_index (requests, 0);
  r2 = g_ptr_array_index (requests, 1);
  g_assert_cmpint (r2->arrived_ms, >=, r1->arrived_ms + 2000);
  g_assert_cmpstr (tocsin_test_target_request_header (r1, "webhook-id"), ==, "msg_same");
  g_assert_cmpstr (tocsin_test_target_request_header (r2, "webhook-id"), ==, "msg_same");
}

/* 429 with Retry-After as an HTTP-date. */
static void
test_retry_after_date (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = outbound_new (10, 10, NULL);
  g_autofree char *url = tocsin_test_target_url (target, "/hook");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  g_autoptr(TocsinAttempt) attempt = NULL;
  g_autoptr(GDateTime) later = NULL;
  g_autofree char *date = NULL;

  later = g_date_time_new_from_unix_utc (now_ms () / 1000 + 3);
  date = soup_date_time_to_string (later, SOUP_DATE_HTTP);
  tocsin_test_target_push (target, "/hook", 429, NULL, "Retry-After", date, NULL);

  attempt = send (outbound, request, "msg_date", 1, NULL);
  g_assert_cmpint (attempt->outcome, ==, TOCSIN_ATTEMPT_RETRY);
  g_assert_cmpint (attempt->retry_at_ms, >=, g_date_time_to_unix (later) * 1000);
  g_assert_cmpint (tocsin_outbound_host_ready_at (outbound, url), >=,
                   g_date_time_to_unix (later) * 1000);
}

/* A 2xx that says the quota is used up: the send succeeded, and the host is paced until the
 * reset (X-Rate-Limit-*, and the IETF structured RateLimit on another host). */
static void
test_rate_limit_pacing (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinTestTarget) other = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = outbound_new (10, 10, NULL);
  g_autofree char *url = tocsin_test_target_url (target, "/hook");
  g_autofree char *other_url = tocsin_test_target_url (other, "/in");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("GET", url, TOCSIN_REQUEST_POLICY_RETRY, NULL);
  g_autoptr(TocsinRenderedRequest) other_request =
    make_request ("GET", other_url, TOCSIN_REQUEST_POLICY_NONE, NULL);
  g_autoptr(TocsinAttempt) attempt = NULL;
  g_autoptr(TocsinAttempt) other_attempt = NULL;
  g_autoptr(TocsinAttempt) after = NULL;
  g_autofree char *describe = NULL;
  g_autofree char *same_host = tocsin_test_target_url (target, "/another/path");
  gint64 ready;

  tocsin_test_target_push (target, "/hook", 200, "ok", "X-Rate-Limit-Limit", "10",
                           "X-Rate-Limit-Remaining", "0", "X-Rate-Limit-Reset", "3", NULL);
  attempt = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpint (attempt->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
  ready = tocsin_outbound_host_ready_at (outbound, url);
  g_assert_cmpint (ready, >=, attempt->started_ms + 3000);
  g_assert_cmpint (ready, <=, now_ms () + 3000);
  /* The host, not the URL: another path on it waits too; another host does not. */
  g_assert_cmpint (tocsin_outbound_host_ready_at (outbound, same_host), ==, ready);
  g_assert_cmpint (tocsin_outbound_host_ready_at (outbound, other_url), <=, now_ms ());
  describe = tocsin_outbound_describe_host (outbound, url);
  g_assert_true (g_str_has_prefix (describe, "closed, paced until "));

  tocsin_test_target_push (other, "/in", 200, "ok", "RateLimit", "limit=5, remaining=0, reset=4",
                           NULL);
  other_attempt = send (outbound, other_request, NULL, 1, NULL);
  g_assert_cmpint (other_attempt->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
  g_assert_cmpint (tocsin_outbound_host_ready_at (outbound, other_url), >=,
                   other_attempt->started_ms + 4000);

  /* After the reset the host is ready again. */
  wait_until_ms (ready);
  g_assert_cmpint (tocsin_outbound_host_ready_at (outbound, url), <=, now_ms ());
  after = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpint (after->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
}

/* 500, 500, 200: the attempts in order, each retry within its growing backoff bound. */
static void
test_backoff (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = outbound_new (10, 200, NULL);
  g_autofree char *url = tocsin_test_target_url (target, "/hook");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("PUT", url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  g_autoptr(GPtrArray) requests = NULL;
  guint expected_status[] = { 500, 500, 200 };

  g_assert_cmpuint (tocsin_outbound_backoff_bound_ms (outbound, 1), ==, 200);
  g_assert_cmpuint (tocsin_outbound_backoff_bound_ms (outbound, 2), ==, 400);
  g_assert_cmpuint (tocsin_outbound_backoff_bound_ms (outbound, 3), ==, 800);
  g_assert_cmpuint (tocsin_outbound_backoff_bound_ms (outbound, 60), ==, 600000);

  tocsin_test_target_push (target, "/hook", 500, "oops", NULL);
  tocsin_test_target_push (target, "/hook", 500, "oops again", NULL);
  tocsin_test_target_push (target, "/hook", 200, "fine", NULL);

  for (guint n = 1; n <= 3; n++)
    {
      g_autoptr(TocsinAttempt) attempt = send (outbound, request, "msg_backoff", n, NULL);
      gint64 ended = attempt->started_ms + attempt->duration_ms;

      g_assert_cmpuint (attempt->attempt, ==, n);
      g_assert_cmpuint (attempt->status, ==, expected_status[n - 1]);
      if (n < 3)
        {
          guint64 bound = tocsin_outbound_backoff_bound_ms (outbound, n);

          g_assert_cmpint (attempt->outcome, ==, TOCSIN_ATTEMPT_RETRY);
          g_assert_cmpstr (attempt->error, ==, "HTTP 500 Internal Server Error");
          g_assert_cmpint (attempt->retry_at_ms, >=, ended - 1);
          /* +2: started_ms and duration_ms are each rounded down to the ms. */
          g_assert_cmpint (attempt->retry_at_ms, <=, ended + (gint64) bound + 2);
          wait_until_ms (attempt->retry_at_ms);
        }
      else
        g_assert_cmpint (attempt->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
    }

  requests = tocsin_test_target_get_requests (target, "/hook");
  g_assert_cmpuint (requests->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      TocsinTestTargetRequest *r = g_ptr_array_index (requests, i);

      g_assert_cmpstr (r->method, ==, "PUT");
      g_assert_cmpstr (tocsin_test_target_request_header (r, "webhook-id"), ==, "msg_backoff");
      if (i > 0)
        g_assert_cmpint (r->arrived_us, >, ((TocsinTestTargetRequest *)
                                            g_ptr_array_index (requests, i - 1))->arrived_us);
    }
}

/* The target hangs past the timeout: a retry with "timed out after 1 s". */
static void
test_timeout (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = outbound_new (1, 10, NULL);
  g_autofree char *url = tocsin_test_target_url (target, "/slow");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  g_autoptr(TocsinAttempt) attempt = NULL;
  g_autoptr(TocsinAttempt) again = NULL;

  tocsin_test_target_push_hang (target, "/slow", 30, 200);
  attempt = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpint (attempt->outcome, ==, TOCSIN_ATTEMPT_RETRY);
  g_assert_cmpuint (attempt->status, ==, 0);
  g_assert_cmpstr (attempt->error, ==, "timed out after 1 s");
  g_assert_null (attempt->answer_start);
  g_assert_cmpint (attempt->duration_ms, >=, 1000);
  g_assert_cmpint (attempt->duration_ms, <, 30000);

  /* The next attempt gets an answer (the target's queue is empty: 200). */
  again = send (outbound, request, NULL, 2, NULL);
  g_assert_cmpint (again->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
}

/* An answer far larger than 256 bytes is cut without being read to its end. */
static void
test_big_answer (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = outbound_new (5, 10, NULL);
  g_autofree char *url = tocsin_test_target_url (target, "/big");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  g_autoptr(TocsinAttempt) attempt = NULL;
  g_autoptr(TocsinAttempt) next = NULL;
  g_autofree char *chunk = g_strnfill (64 * 1024, 'x');
  TocsinTestTargetAnswer big = {
    .status = 200, .body = chunk, .body_length = -1, .body_repeat = 512,   /* 32 MiB */
  };

  tocsin_test_target_push_answer (target, "/big", &big);
  attempt = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpint (attempt->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
  g_assert_cmpuint (strlen (attempt->answer_start), ==, 256);
  g_assert_true (g_str_has_prefix (attempt->answer_start, "xxxx"));

  /* The connection was dropped, not left half-read: the next send works. */
  next = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpint (next->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
  g_assert_cmpstr (next->answer_start, ==, "ok");
}

/* An answer that never ends: its first 256 bytes are enough, the attempt does not wait for the
 * rest (it would time out if it did). One that stalls before 256 bytes times out. */
static void
test_endless_answer (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = outbound_new (3, 10, NULL);
  g_autofree char *url = tocsin_test_target_url (target, "/stream");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  g_autoptr(TocsinAttempt) attempt = NULL;
  g_autoptr(TocsinAttempt) stalled = NULL;
  g_autofree char *start = g_strnfill (1000, 's');
  TocsinTestTargetAnswer endless = {
    .status = 200, .body = start, .body_length = -1, .endless = TRUE,
  };
  TocsinTestTargetAnswer short_endless = {
    .status = 200, .body = "tiny", .body_length = -1, .endless = TRUE,
  };

  tocsin_test_target_push_answer (target, "/stream", &endless);
  tocsin_test_target_push_answer (target, "/stream", &short_endless);

  attempt = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpint (attempt->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
  g_assert_cmpuint (strlen (attempt->answer_start), ==, 256);
  g_assert_cmpint (attempt->duration_ms, <, 3000);

  stalled = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpint (stalled->outcome, ==, TOCSIN_ATTEMPT_RETRY);
  g_assert_cmpstr (stalled->error, ==, "timed out after 3 s");
  /* The status came before the body stalled. */
  g_assert_cmpuint (stalled->status, ==, 200);
}

static void
test_answer_start (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = outbound_new (10, 10, NULL);
  g_autofree char *url = tocsin_test_target_url (target, "/hook");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_NONE, "{}");
  g_autoptr(TocsinAttempt) first = NULL;
  g_autoptr(TocsinAttempt) second = NULL;
  g_autofree char *long_body = g_strnfill (1000, 'b');
  TocsinTestTargetAnswer invalid = {
    .status = 500, .body = "bad \xff\xfe\xc3 body\0nul", .body_length = 16,
  };

  tocsin_test_target_push (target, "/hook", 200, long_body, NULL);
  tocsin_test_target_push_answer (target, "/hook", &invalid);

  first = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpuint (strlen (first->answer_start), ==, 256);

  second = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpint (second->outcome, ==, TOCSIN_ATTEMPT_FINAL_ERROR);
  g_assert_true (g_utf8_validate (second->answer_start, -1, NULL));
  g_assert_true (g_str_has_prefix (second->answer_start, "bad \xef\xbf\xbd"));
  g_assert_true (g_str_has_suffix (second->answer_start, "body\xef\xbf\xbdnul"));
}

/* TLS with a private CA: trusted through ca_file, refused with a sentence without it. */
static void
test_tls (void)
{
  g_autoptr(TocsinTestPki) pki = tocsin_test_pki_new ();
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new_tls (pki->cert_file, pki->key_file);
  g_autoptr(TocsinOutbound) trusting = outbound_new (10, 10, pki->ca_file);
  g_autoptr(TocsinOutbound) system_only = outbound_new (10, 10, NULL);
  g_autoptr(TocsinOutbound) wrong_ca = outbound_new (10, 10, pki->other_ca_file);
  g_autofree char *url = tocsin_test_target_url (target, "/secure");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  g_autoptr(TocsinAttempt) ok = NULL;
  g_autoptr(TocsinAttempt) refused = NULL;
  g_autoptr(TocsinAttempt) wrong = NULL;

  g_assert_true (g_str_has_prefix (url, "https://127.0.0.1:"));
  ok = send (trusting, request, NULL, 1, NULL);
  g_assert_cmpint (ok->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
  g_assert_cmpstr (ok->answer_start, ==, "ok");

  refused = send (system_only, request, NULL, 1, NULL);
  g_assert_cmpint (refused->outcome, ==, TOCSIN_ATTEMPT_RETRY);
  g_assert_cmpuint (refused->status, ==, 0);
  g_assert_cmpstr (refused->error, ==, "the TLS certificate of 127.0.0.1 is not trusted: add the "
                   "CA that signed it as the trusted CA file");

  wrong = send (wrong_ca, request, NULL, 1, NULL);
  g_assert_cmpint (wrong->outcome, ==, TOCSIN_ATTEMPT_RETRY);
  g_assert_nonnull (strstr (wrong->error, "is not trusted"));

  /* Only the trusted one reached the target's handler. */
  g_assert_cmpuint (tocsin_test_target_count_requests (target, NULL), ==, 1);
}

/* A host that fails every time: the breaker opens, holds the host back for the cooldown, lets
 * one probe through (a failed probe doubles the cooldown), and a successful probe closes it. */
static void
test_breaker (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = NULL;
  TocsinOutboundConfig config;
  g_autofree char *url = tocsin_test_target_url (target, "/down");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  TocsinTestTargetAnswer fail = { .status = 503, .body = "down", .body_length = -1 };
  g_autofree char *closed = NULL;
  g_autofree char *open = NULL;
  g_autofree char *probing = NULL;
  g_autofree char *reopened = NULL;
  g_autofree char *closed_again = NULL;
  g_autoptr(TocsinAttempt) probe = NULL;
  g_autoptr(TocsinAttempt) probe2 = NULL;
  gint64 ready, opened_at;

  tocsin_outbound_config_init (&config);
  config.timeout_s = 5;
  config.backoff_base_ms = 10;
  config.breaker_window = 10;
  config.breaker_min = 5;
  config.cooldown_ms = 1000;
  outbound = tocsin_outbound_new (&config);

  tocsin_test_target_always (target, "/down", &fail);
  /* Four failures: fewer than breaker_min, still closed. */
  for (guint i = 0; i < 4; i++)
    {
      g_autoptr(TocsinAttempt) attempt = send (outbound, request, NULL, 1, NULL);

      g_assert_cmpint (attempt->outcome, ==, TOCSIN_ATTEMPT_RETRY);
      g_assert_cmpuint (attempt->status, ==, 503);
    }
  closed = tocsin_outbound_describe_host (outbound, url);
  g_assert_cmpstr (closed, ==, "closed");
  g_assert_cmpint (tocsin_outbound_host_ready_at (outbound, url), <=, now_ms ());

  /* The fifth opens it: the host is held back for the cooldown. */
  {
    g_autoptr(TocsinAttempt) attempt = send (outbound, request, NULL, 1, NULL);

    opened_at = attempt->started_ms + attempt->duration_ms;
    ready = tocsin_outbound_host_ready_at (outbound, url);
    g_assert_cmpint (ready, >=, opened_at + 1000 - 1);
    g_assert_cmpint (ready, <=, now_ms () + 1000);
    /* Its retry waits for the host too. */
    g_assert_cmpint (attempt->retry_at_ms, >=, ready);
  }
  open = tocsin_outbound_describe_host (outbound, url);
  g_assert_true (g_str_has_prefix (open, "open until "));

  /* After the cooldown one probe: it fails, the cooldown doubles. */
  wait_until_ms (ready);
  probing = tocsin_outbound_describe_host (outbound, url);
  g_assert_cmpstr (probing, ==, "probing");
  g_assert_cmpint (tocsin_outbound_host_ready_at (outbound, url), <=, now_ms ());
  probe = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpuint (probe->status, ==, 503);
  ready = tocsin_outbound_host_ready_at (outbound, url);
  g_assert_cmpint (ready, >=, probe->started_ms + probe->duration_ms + 2000 - 1);
  reopened = tocsin_outbound_describe_host (outbound, url);
  g_assert_true (g_str_has_prefix (reopened, "open until "));

  /* The host recovers; the next probe succeeds and closes the breaker. */
  tocsin_test_target_always (target, "/down", NULL);
  wait_until_ms (ready);
  probe2 = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpint (probe2->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
  closed_again = tocsin_outbound_describe_host (outbound, url);
  g_assert_cmpstr (closed_again, ==, "closed");
  g_assert_cmpint (tocsin_outbound_host_ready_at (outbound, url), <=, now_ms ());

  /* Nothing else was sent: 5 failures, 2 probes. */
  g_assert_cmpuint (tocsin_test_target_count_requests (target, "/down"), ==, 7);
}

/* While the probe is in flight, the host is not ready for anyone else. */
static void
test_breaker_one_probe (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = NULL;
  TocsinOutboundConfig config;
  g_autofree char *url = tocsin_test_target_url (target, "/down");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  TocsinTestTargetAnswer fail = { .status = 500 };
  TocsinAttempt *probe = NULL;
  gint64 ready;

  tocsin_outbound_config_init (&config);
  config.timeout_s = 5;
  config.breaker_window = 2;
  config.breaker_min = 2;
  config.cooldown_ms = 200;
  outbound = tocsin_outbound_new (&config);

  tocsin_test_target_always (target, "/down", &fail);
  for (guint i = 0; i < 2; i++)
    tocsin_attempt_free (send (outbound, request, NULL, 1, NULL));
  ready = tocsin_outbound_host_ready_at (outbound, url);
  g_assert_cmpint (ready, >, now_ms ());
  wait_until_ms (ready);

  tocsin_test_target_always (target, "/down", NULL);
  tocsin_test_target_push_hang (target, "/down", 1, 200);
  tocsin_outbound_send_async (outbound, request, NULL, 1, NULL, sent_cb, &probe);
  /* The probe is on its way: nobody else may go. */
  g_assert_cmpint (tocsin_outbound_host_ready_at (outbound, url), >, now_ms ());
  TOCSIN_WAIT_UNTIL (probe != NULL);
  g_assert_cmpint (probe->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
  g_assert_cmpint (tocsin_outbound_host_ready_at (outbound, url), <=, now_ms ());
  tocsin_attempt_free (probe);
}

/* Ringostat's policy: one attempt, anything but 2xx is final. */
static void
test_policy_none (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = outbound_new (10, 10, NULL);
  g_autofree char *url = tocsin_test_target_url (target, "/hook");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_NONE, "{}");
  g_autoptr(TocsinAttempt) attempt = NULL;
  g_autoptr(TocsinAttempt) throttled = NULL;

  tocsin_test_target_push (target, "/hook", 500, "boom", NULL);
  tocsin_test_target_push (target, "/hook", 429, NULL, "Retry-After", "1", NULL);
  attempt = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpint (attempt->outcome, ==, TOCSIN_ATTEMPT_FINAL_ERROR);
  g_assert_cmpuint (attempt->status, ==, 500);
  g_assert_cmpstr (attempt->error, ==, "HTTP 500 Internal Server Error");
  g_assert_cmpint (attempt->retry_at_ms, ==, 0);

  throttled = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpint (throttled->outcome, ==, TOCSIN_ATTEMPT_FINAL_ERROR);
  g_assert_cmpint (throttled->retry_at_ms, ==, 0);
}

/* Other 4xx and 3xx are final under the retry policy; redirects are not followed. */
static void
test_final_statuses (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = outbound_new (10, 10, NULL);
  g_autofree char *url = tocsin_test_target_url (target, "/hook");
  g_autofree char *elsewhere = tocsin_test_target_url (target, "/elsewhere");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  g_autoptr(TocsinAttempt) not_found = NULL;
  g_autoptr(TocsinAttempt) redirect = NULL;

  tocsin_test_target_push (target, "/hook", 404, "no such hook", NULL);
  tocsin_test_target_push (target, "/hook", 302, NULL, "Location", elsewhere, NULL);

  not_found = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpint (not_found->outcome, ==, TOCSIN_ATTEMPT_FINAL_ERROR);
  g_assert_cmpuint (not_found->status, ==, 404);
  g_assert_cmpstr (not_found->error, ==, "HTTP 404 Not Found: check the URL");
  g_assert_cmpstr (not_found->answer_start, ==, "no such hook");

  redirect = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpint (redirect->outcome, ==, TOCSIN_ATTEMPT_FINAL_ERROR);
  g_assert_cmpuint (redirect->status, ==, 302);
  g_assert_cmpstr (redirect->error, ==,
                   "HTTP 302 Found: redirects are not followed; use the URL it redirects to");
  g_assert_cmpuint (tocsin_test_target_count_requests (target, "/elsewhere"), ==, 0);

  /* Final answers do not count against the host. */
  g_assert_cmpint (tocsin_outbound_host_ready_at (outbound, url), <=, now_ms ());
}

static void
test_attempts_exhausted (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = NULL;
  TocsinOutboundConfig config;
  g_autofree char *url = tocsin_test_target_url (target, "/hook");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  g_autoptr(TocsinAttempt) attempt = NULL;

  tocsin_outbound_config_init (&config);
  config.max_attempts = 3;
  outbound = tocsin_outbound_new (&config);
  tocsin_test_target_push (target, "/hook", 502, NULL, NULL);
  attempt = send (outbound, request, NULL, 3, NULL);
  g_assert_cmpint (attempt->outcome, ==, TOCSIN_ATTEMPT_FINAL_ERROR);
  g_assert_cmpstr (attempt->error, ==, "HTTP 502 Bad Gateway (gave up after 3 attempts)");
  g_assert_cmpint (attempt->retry_at_ms, ==, 0);
}

static void
test_connection_errors (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = outbound_new (10, 10, NULL);
  g_autofree char *closing_url = tocsin_test_target_url (target, "/close");
  g_autofree char *refused_url = g_strdup_printf ("http://127.0.0.1:%u/hook",
                                                  tocsin_test_free_port ());
  g_autoptr(TocsinRenderedRequest) closing =
    make_request ("POST", closing_url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  g_autoptr(TocsinRenderedRequest) refused =
    make_request ("POST", refused_url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  g_autoptr(TocsinRenderedRequest) not_http =
    make_request ("POST", "ftp://example.com/x", TOCSIN_REQUEST_POLICY_RETRY, "{}");
  g_autoptr(TocsinAttempt) closed = NULL;
  g_autoptr(TocsinAttempt) nobody = NULL;
  g_autoptr(TocsinAttempt) bad_url = NULL;

  tocsin_test_target_push_close (target, "/close");
  closed = send (outbound, closing, NULL, 1, NULL);
  g_assert_cmpint (closed->outcome, ==, TOCSIN_ATTEMPT_RETRY);
  g_assert_cmpuint (closed->status, ==, 0);
  g_assert_cmpstr (closed->error, ==,
                   "127.0.0.1 closed the connection without a complete answer");

  nobody = send (outbound, refused, NULL, 1, NULL);
  g_assert_cmpint (nobody->outcome, ==, TOCSIN_ATTEMPT_RETRY);
  g_assert_cmpstr (nobody->error, ==, "could not connect to 127.0.0.1: connection refused");

  bad_url = send (outbound, not_http, NULL, 1, NULL);
  g_assert_cmpint (bad_url->outcome, ==, TOCSIN_ATTEMPT_FINAL_ERROR);
  g_assert_cmpstr (bad_url->error, ==, "the URL is not an absolute http or https URL");
}

static gboolean
cancel_cb (gpointer user_data)
{
  g_cancellable_cancel (user_data);
  return G_SOURCE_REMOVE;
}

/* The caller gives up (the relay shuts down): the attempt says so and can be retried now; the
 * host is not blamed. */
static void
test_cancel (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = outbound_new (10, 10, NULL);
  g_autofree char *url = tocsin_test_target_url (target, "/slow");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(TocsinAttempt) attempt = NULL;

  tocsin_test_target_push_hang (target, "/slow", 30, 200);
  g_timeout_add (100, cancel_cb, cancellable);
  attempt = send (outbound, request, NULL, 1, cancellable);
  g_assert_cmpint (attempt->outcome, ==, TOCSIN_ATTEMPT_RETRY);
  g_assert_cmpstr (attempt->error, ==, "cancelled");
  g_assert_cmpint (attempt->retry_at_ms, <=, now_ms ());
  g_assert_cmpint (attempt->duration_ms, <, 30000);
}

/* The relay stops with a send in flight: the send ends "cancelled", its callback still runs. */
static void
test_free_while_sending (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  TocsinOutbound *outbound = outbound_new (10, 10, NULL);
  g_autofree char *url = tocsin_test_target_url (target, "/slow");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  TocsinAttempt *attempt = NULL;

  tocsin_test_target_push_hang (target, "/slow", 30, 200);
  tocsin_outbound_send_async (outbound, request, NULL, 1, NULL, sent_cb, &attempt);
  tocsin_test_target_wait_requests (target, 1, 20);
  tocsin_outbound_free (outbound);
  TOCSIN_WAIT_UNTIL (attempt != NULL);
  g_assert_cmpstr (attempt->error, ==, "cancelled");
  g_assert_cmpint (attempt->outcome, ==, TOCSIN_ATTEMPT_RETRY);
  tocsin_attempt_free (attempt);
}

/* A CA file that cannot be read is reported, and named in the TLS error. */
static void
test_bad_ca_file (void)
{
  g_autoptr(TocsinTestPki) pki = tocsin_test_pki_new ();
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new_tls (pki->cert_file, pki->key_file);
  g_autofree char *missing = g_build_filename (pki->dir, "missing.pem", NULL);
  g_autoptr(TocsinOutbound) outbound = outbound_new (10, 10, missing);
  g_autofree char *url = tocsin_test_target_url (target, "/secure");
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  g_autoptr(TocsinAttempt) attempt = NULL;

  g_assert_nonnull (tocsin_outbound_get_ca_error (outbound));
  attempt = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpint (attempt->outcome, ==, TOCSIN_ATTEMPT_RETRY);
  g_assert_true (g_str_has_prefix (attempt->error, "the TLS certificate of 127.0.0.1 is not "
                                   "trusted, and the extra CA file could not be read: "));
}

/* deny_private: a target on a loopback address is refused before any request is written, as
 * final (retrying cannot help), and the host is not blamed. Off by default. */
static void
test_deny_private (void)
{
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autoptr(TocsinOutbound) outbound = NULL;
  g_autoptr(TocsinOutbound) allowing = outbound_new (10, 10, NULL);
  TocsinOutboundConfig config;
  g_autofree char *url = tocsin_test_target_url (target, "/hook");
  g_autofree char *by_name = g_strdup_printf ("http://localhost:%u/hook",
                                              tocsin_test_target_port (target));
  g_autoptr(TocsinRenderedRequest) request =
    make_request ("POST", url, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  g_autoptr(TocsinRenderedRequest) named =
    make_request ("POST", by_name, TOCSIN_REQUEST_POLICY_RETRY, "{}");
  g_autoptr(TocsinAttempt) refused = NULL;
  g_autoptr(TocsinAttempt) refused_name = NULL;
  g_autoptr(TocsinAttempt) allowed = NULL;

  tocsin_outbound_config_init (&config);
  g_assert_false (config.deny_private);
  config.deny_private = TRUE;
  outbound = tocsin_outbound_new (&config);

  refused = send (outbound, request, NULL, 1, NULL);
  g_assert_cmpint (refused->outcome, ==, TOCSIN_ATTEMPT_FINAL_ERROR);
  g_assert_cmpuint (refused->status, ==, 0);
  g_assert_cmpstr (refused->error, ==, "127.0.0.1 is at 127.0.0.1, a local or private address, "
                   "and requests to such addresses are turned off here");
  refused_name = send (outbound, named, NULL, 1, NULL);
  g_assert_cmpint (refused_name->outcome, ==, TOCSIN_ATTEMPT_FINAL_ERROR);
  g_assert_true (g_str_has_prefix (refused_name->error, "localhost is at "));
  g_assert_cmpuint (tocsin_test_target_count_requests (target, NULL), ==, 0);
  g_assert_cmpint (tocsin_outbound_host_ready_at (outbound, url), <=, now_ms ());

  allowed = send (allowing, request, NULL, 1, NULL);
  g_assert_cmpint (allowed->outcome, ==, TOCSIN_ATTEMPT_SUCCESS);
  g_assert_cmpuint (tocsin_test_target_count_requests (target, NULL), ==, 1);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/relay/outbound/parse-retry-after", test_parse_retry_after);
  g_test_add_func ("/relay/outbound/parse-pacing", test_parse_pacing);
  g_test_add_func ("/relay/outbound/answer-start-unit", test_answer_start_unit);
  g_test_add_func ("/relay/outbound/success", test_success);
  g_test_add_func ("/relay/outbound/rendered-definition", test_rendered_definition);
  g_test_add_func ("/relay/outbound/retry-after-seconds", test_retry_after_seconds);
  g_test_add_func ("/relay/outbound/retry-after-date", test_retry_after_date);
  g_test_add_func ("/relay/outbound/rate-limit-pacing", test_rate_limit_pacing);
  g_test_add_func ("/relay/outbound/backoff", test_backoff);
  g_test_add_func ("/relay/outbound/timeout", test_timeout);
  g_test_add_func ("/relay/outbound/big-answer", test_big_answer);
  g_test_add_func ("/relay/outbound/answer-start", test_answer_start);
  g_test_add_func ("/relay/outbound/endless-answer", test_endless_answer);
  g_test_add_func ("/relay/outbound/tls", test_tls);
  g_test_add_func ("/relay/outbound/breaker", test_breaker);
  g_test_add_func ("/relay/outbound/breaker-one-probe", test_breaker_one_probe);
  g_test_add_func ("/relay/outbound/policy-none", test_policy_none);
  g_test_add_func ("/relay/outbound/final-statuses", test_final_statuses);
  g_test_add_func ("/relay/outbound/attempts-exhausted", test_attempts_exhausted);
  g_test_add_func ("/relay/outbound/connection-errors", test_connection_errors);
  g_test_add_func ("/relay/outbound/cancel", test_cancel);
  g_test_add_func ("/relay/outbound/free-while-sending", test_free_while_sending);
  g_test_add_func ("/relay/outbound/bad-ca-file", test_bad_ca_file);
  g_test_add_func ("/relay/outbound/deny-private", test_deny_private);

  return g_test_run ();
}
