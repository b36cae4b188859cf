/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-cluster-faults.c: faults under load on a whole cluster (issue 16, item 5): one real
 * PostgreSQL (tests/tocsin-test-postgres.h), three relay nodes serving from it with
 * --node-name, and a real HAProxy in front (tests/tocsin-test-haproxy.h). Everything a peer does
 * goes through HAProxy, as it would in a deployment:
 *
 * - a webhook sender paced at 500 a second (async libsoup; the rate it reached is printed), each
 *   webhook carrying its sequence number in its body and an Idempotency-Key. On 502/503/504 or a
 *   dropped connection it sends the same request again after Retry-After (as a real sender
 *   should), so a webhook the relay stored but could not acknowledge is kept once (dedup);
 * - six WebSocket subscribers, spread by HAProxy over the three nodes (checked with the nodes'
 *   presence rows and the X-Tocsin-Node header of each one's 101), each reconnecting through
 *   HAProxy with its cursor (?since=LAST) when its connection drops, as the app does.
 *
 * Cases: a node with subscribers killed with -9 (its subscribers reconnect to the others), and
 * PostgreSQL stopped for a few seconds and started again (webhooks get 503 with Retry-After,
 * nothing else). For each: sent, acknowledged, and per subscriber delivered, lost, duplicated
 * and out of order, printed as TAP comments; lost, duplicated and out of order must be 0 for
 * every acknowledged message, and the channel must hold each webhook exactly once. Waits are
 * deadlines (TOCSIN_WAIT_UNTIL), never timings. Skipped, with the reason, where PostgreSQL or
 * HAProxy is not installed. The standby promotion (the third fault of item 5) is elsewhere.
 */
#define G_LOG_DOMAIN "tocsin-test"

#include "config.h"

#include <string.h>

#include "tocsin-test-haproxy.h"
#include "tocsin-test-postgres.h"
#include "tocsin-test-reliability.h"

#define N_NODES         3
#define N_SUBSCRIBERS   6
/* The target rate of new webhooks, and how many may wait for an answer at once. */
#define RATE            500
#define MAX_IN_FLIGHT   64
/* The node killed in /cluster/faults/kill-node (node2); node1 stays up throughout. */
#define VICTIM          1
/* New webhooks acknowledged before a fault, and after it, under load. */
#define BEFORE_FAULT    400
#define AFTER_FAULT     600
/* A subscriber whose connection could not be made tries again after this long. */
#define RECONNECT_US    (200 * 1000)

typedef struct
{
  TocsinTestPostgres *pg;
  TocsinTestRelay    *nodes[N_NODES];
  TocsinTestHaproxy  *haproxy;
  JsonObject         *channel;
  char               *hook_url;     /* the trigger URL through HAProxy */
  SoupSession        *hooks;        /* the webhook sender's */
  SoupSession        *streams;      /* the subscribers' */
  guint               tick_id;

  TocsinRelSubscriber subs[N_SUBSCRIBERS];
  gint64              next_try[N_SUBSCRIBERS];

  /* The sender */
  gboolean            sending;       /* new webhooks at RATE; else only retries */
  gint64              pace_start;
  guint               pace_base;     /* sent when pace_start was taken */
  gint64              load_us;       /* time spent sending new webhooks (closed phases) */
  guint               load_sent;     /* new webhooks sent in that time */
  guint               sent;          /* webhooks (sequence numbers 1..sent) */
  guint               requests;      /* HTTP requests, retries included */
  guint               in_flight;
  GQueue              ready;         /* seqs whose Retry-After has passed */
  guint               waiting;       /* seqs waiting for their Retry-After */
  guint               acked;         /* webhooks answered 200 */
  guint               duplicates;    /* of which "duplicate": true (stored by an earlier try) */
  GArray             *id_of_seq;     /* gint64 per seq - 1: its id once answered 200, else 0 */
  GHashTable         *seq_of_id;     /* id → seq */
  guint               status_503;
  guint               status_503_down;   /* while PostgreSQL was stopped */
  guint               status_502_504;
  guint               no_retry_after;    /* a 5xx without Retry-After */
  guint               transport_errors;  /* no HTTP answer at all */
  guint               other_status;      /* anything else: a defect */
  gboolean            pg_down;
} Faults;

typedef struct
{
  Faults *f;
  guint   seq;
} Hook;

/* ---- the webhook sender ---- */

static void send_webhook (Faults *f, guint seq);

static gboolean
retry_due (gpointer user_data)
{
  Hook *hook = user_data;

  hook->f->waiting--;
  g_queue_push_tail (&hook->f->ready, GUINT_TO_POINTER (hook->seq));
  return G_SOURCE_REMOVE;
}

static void
retry_later (Faults *f,
             guint   seq,
             guint   seconds)
{
  Hook *hook = g_new0 (Hook, 1);

  hook->f = f;
  hook->seq = seq;
  f->waiting++;
  g_timeout_add_seconds_full (G_PRIORITY_DEFAULT, seconds, retry_due, hook, g_free);
}

static void
webhook_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autofree Hook *hook = user_data;
  Faults *f = hook->f;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (source), result);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (source), result,
                                                              &error);
  guint status = soup_message_get_status (msg);

  f->in_flight--;
  if (body == NULL)
    {
      /* HAProxy stays up: a connection it dropped. The request may have been received. */
      g_test_message ("webhook %u: no answer: %s", hook->seq, error->message);
      f->transport_errors++;
      retry_later (f, hook->seq, 1);
    }
  else if (status == SOUP_STATUS_OK)
    {
      g_autoptr(JsonObject) reply = tocsin_rel_parse_object (g_bytes_get_data (body, NULL),
                                                             g_bytes_get_size (body));
      gint64 id = json_object_get_int_member_with_default (reply, "id", 0);
      gpointer other;

      g_assert_cmpint (id, >, 0);
      g_assert_cmpint (g_array_index (f->id_of_seq, gint64, hook->seq - 1), ==, 0);
      /* Two webhooks told one id: one of them was lost. */
      other = g_hash_table_lookup (f->seq_of_id, GINT_TO_POINTER ((gint) id));
      if (other != NULL)
        g_error ("webhooks %u and %u were both answered id %" G_GINT64_FORMAT,
                 GPOINTER_TO_UINT (other), hook->seq, id);
      g_array_index (f->id_of_seq, gint64, hook->seq - 1) = id;
      g_hash_table_insert (f->seq_of_id, GINT_TO_POINTER ((gint) id),
                           GUINT_TO_POINTER (hook->seq));
      f->acked++;
      if (json_object_get_boolean_member_with_default (reply, "duplicate", FALSE))
        f->duplicates++;
    }
  else if (status == 502 || status == 503 || status == 504)
    {
      const char *retry_after = soup_message_headers_get_one (
        soup_message_get_response_headers (msg), "Retry-After");
      guint seconds = retry_after ? (guint) g_ascii_strtoull (retry_after, NULL, 10) : 0;

      if (status == 503)
        {
          f->status_503++;
          if (f->pg_down)
            f->status_503_down++;
        }
      else
        f->status_502_504++;
      if (retry_after == NULL)
        {
          g_test_message ("webhook %u: %u without Retry-After", hook->seq, status);
          f->no_retry_after++;
        }
      /* As a real sender: after Retry-After, the same request (and Idempotency-Key). */
      retry_later (f, hook->seq, MAX (seconds, 1));
    }
  else
    {
      g_test_message ("webhook %u: %u %.*s", hook->seq, status,
                      (int) MIN (g_bytes_get_size (body), 300),
                      (const char *) g_bytes_get_data (body, NULL));
      f->other_status++;
    }
}

static void
send_webhook (Faults *f,
              guint   seq)
{
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", f->hook_url);
  g_autofree char *key = g_strdup_printf ("faults-%u", seq);
  char *body = g_strdup_printf ("{\"seq\": \"%u\"}", seq);
  g_autoptr(GBytes) bytes = g_bytes_new_take (body, strlen (body));
  Hook *hook = g_new0 (Hook, 1);

  hook->f = f;
  hook->seq = seq;
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Idempotency-Key", key);
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  f->in_flight++;
  f->requests++;
  soup_session_send_and_read_async (f->hooks, msg, G_PRIORITY_DEFAULT, NULL, webhook_done, hook);
}

static void
start_sending (Faults *f)
{
  f->sending = TRUE;
  f->pace_start = g_get_monotonic_time ();
  f->pace_base = f->sent;
}

static void
stop_sending (Faults *f)
{
  f->sending = FALSE;
  f->load_us += g_get_monotonic_time () - f->pace_start;
  f->load_sent += f->sent - f->pace_base;
}

/* ---- subscribers ---- */

static void
subscribers_connect (Faults *f)
{
  gint64 now = g_get_monotonic_time ();

  for (guint i = 0; i < N_SUBSCRIBERS; i++)
    {
      TocsinRelSubscriber *sub = &f->subs[i];

      /* Not every turn once a connection failed: the app backs off too. */
      if (sub->ws != NULL || sub->connecting || now < f->next_try[i])
        continue;
      f->next_try[i] = now + RECONNECT_US;
      tocsin_rel_subscriber_connect (sub);
    }
}

/* Every 2 ms: retries that are due first, then new webhooks to keep up the rate. */
static gboolean
tick (gpointer user_data)
{
  Faults *f = user_data;

  while (f->in_flight < MAX_IN_FLIGHT && !g_queue_is_empty (&f->ready))
    send_webhook (f, GPOINTER_TO_UINT (g_queue_pop_head (&f->ready)));
  if (f->sending)
    {
      guint due = f->pace_base +
                  (guint) ((g_get_monotonic_time () - f->pace_start) * RATE / G_USEC_PER_SEC);

      while (f->in_flight < MAX_IN_FLIGHT && f->sent < due)
        {
          gint64 none = 0;

          g_array_append_val (f->id_of_seq, none);
          send_webhook (f, ++f->sent);
        }
    }
  subscribers_connect (f);
  return G_SOURCE_CONTINUE;
}

static gboolean
subscribers_all_open (Faults *f)
{
  for (guint i = 0; i < N_SUBSCRIBERS; i++)
    if (f->subs[i].ws == NULL)
      return FALSE;
  return TRUE;
}

/* How many of the subscribers' current connections HAProxy sent to node @index. */
static guint
subscribers_on (Faults *f,
                guint   index)
{
  g_autofree char *name = g_strdup_printf ("node%u", index + 1);
  guint n = 0;

  for (guint i = 0; i < N_SUBSCRIBERS; i++)
    if (f->subs[i].ws != NULL && g_strcmp0 (f->subs[i].node, name) == 0)
      n++;
  return n;
}

static guint
presence_count (Faults     *f,
                const char *what)
{
  g_autofree char *sql = g_strdup_printf ("SELECT count (%s) FROM presence WHERE channel_id = "
                                          "%" G_GINT64_FORMAT, what,
                                          json_object_get_int_member (f->channel, "id"));
  g_autofree char *out = tocsin_test_postgres_psql (f->pg, sql);

  return (guint) g_ascii_strtoull (out, NULL, 10);
}

/* ---- setup ---- */

static void
fixture_setup (Faults        *f,
               gconstpointer  data)
{
  guint16 ports[N_NODES];
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  f->pg = tocsin_test_postgres_start ();
  if (f->pg == NULL)
    return;
  for (guint i = 0; i < N_NODES; i++)
    {
      g_autofree char *name = g_strdup_printf ("--node-name=node%u", i + 1);
      /* Every webhook of the load is one channel's: its budget must not be what is tested. */
      const char *args[] = { name, "--rate=100000", "--burst=100000", NULL };

      f->nodes[i] = tocsin_test_relay_new (NULL, args);
      g_free (f->nodes[i]->database);
      f->nodes[i]->database = g_strdup (tocsin_test_postgres_conninfo (f->pg));
      tocsin_test_relay_spawn (f->nodes[i]);
      ports[i] = f->nodes[i]->port;
    }
  f->haproxy = tocsin_test_haproxy_start (ports, N_NODES);
  if (f->haproxy == NULL)
    return;
  tocsin_test_haproxy_wait_up (f->haproxy, G_MAXUINT);

  /* Created on node1 directly (its owner API is open on loopback), so that the subscribers are
   * the first requests through HAProxy and its round robin spreads them evenly. */
  node = tocsin_test_http_json (f->nodes[0], "POST", "/v1/channels", "application/json",
                                "{\"name\": \"Faults\", \"title\": \"Fault test\","
                                " \"body\": \"seq {{seq}}\"}", NULL, &status);
  g_assert_cmpuint (status, ==, 201);
  f->channel = json_object_ref (json_node_get_object (node));
  f->hook_url = g_strconcat (tocsin_test_haproxy_base_url (f->haproxy), "/t/",
                             json_object_get_string_member (f->channel, "trigger_token"), NULL);
  f->hooks = soup_session_new_with_options ("max-conns", 2 * MAX_IN_FLIGHT,
                                            "max-conns-per-host", MAX_IN_FLIGHT,
                                            "timeout", 60, NULL);
  f->streams = soup_session_new_with_options ("max-conns", 64, "max-conns-per-host", 32, NULL);
  f->id_of_seq = g_array_new (FALSE, TRUE, sizeof (gint64));
  f->seq_of_id = g_hash_table_new (NULL, NULL);
  g_queue_init (&f->ready);

  /* The subscribers, through HAProxy: node1 gates their attempts (tocsin-test-reliability.h),
   * and is never killed. */
  for (guint i = 0; i < N_SUBSCRIBERS; i++)
    tocsin_rel_subscriber_init (&f->subs[i], f->nodes[0],
                                tocsin_test_haproxy_base_url (f->haproxy), f->channel,
                                f->streams);
  f->tick_id = g_timeout_add (2, tick, f);
  TOCSIN_WAIT_UNTIL (subscribers_all_open (f));
  /* Spread over every node: by HAProxy's header on each 101, and by the nodes' own presence
   * rows (written off the main loop: wait for all of them). */
  for (guint n = 0; n < N_NODES; n++)
    {
      g_test_message ("node%u has %u of the %u subscribers", n + 1, subscribers_on (f, n),
                      N_SUBSCRIBERS);
      g_assert_cmpuint (subscribers_on (f, n), >, 0);
    }
  TOCSIN_WAIT_UNTIL (presence_count (f, "*") == N_SUBSCRIBERS);
  g_assert_cmpuint (presence_count (f, "DISTINCT node"), ==, N_NODES);
}

static void
fixture_teardown (Faults        *f,
                  gconstpointer  data)
{
  g_clear_handle_id (&f->tick_id, g_source_remove);
  if (f->id_of_seq != NULL)
    {
      /* Answers still under way would find nothing to count into. */
      while (f->in_flight > 0)
        g_main_context_iteration (NULL, TRUE);
      for (guint i = 0; i < N_SUBSCRIBERS; i++)
        tocsin_rel_subscriber_clear (&f->subs[i]);
    }
  g_queue_clear (&f->ready);
  g_clear_pointer (&f->haproxy, tocsin_test_haproxy_free);
  for (guint i = 0; i < N_NODES; i++)
    g_clear_pointer (&f->nodes[i], tocsin_test_relay_free);
  g_clear_object (&f->hooks);
  g_clear_object (&f->streams);
  g_clear_pointer (&f->channel, json_object_unref);
  g_clear_pointer (&f->hook_url, g_free);
  g_clear_pointer (&f->id_of_seq, g_array_unref);
  g_clear_pointer (&f->seq_of_id, g_hash_table_unref);
  g_clear_pointer (&f->pg, tocsin_test_postgres_free);
}

/* ---- counting ---- */

/* Stops new webhooks, waits until every one is answered 200 (the sender retries until then),
 * and until each subscriber has every acknowledged message; then counts and asserts. */
static void
finish_and_count (Faults     *f,
                  const char *fault)
{
  gint64 max_id = 0;
  guint lost_total = 0, duplicated_total = 0, out_of_order_total = 0;

  stop_sending (f);
  g_test_message ("%s: sent %u webhooks in %" G_GINT64_FORMAT " ms of load: %.0f/s reached "
                  "(target %u/s)", fault, f->load_sent, f->load_us / 1000,
                  f->load_us > 0 ? f->load_sent * (double) G_USEC_PER_SEC / f->load_us : 0.0,
                  RATE);
  /* Retry-After may say 30 s (a commit that failed): a deadline well above it. */
  TOCSIN_WAIT_UNTIL_SECONDS (f->other_status > 0 ||
                             (f->acked == f->sent && f->in_flight == 0), 180);
  g_assert_cmpuint (f->other_status, ==, 0);

  for (guint i = 0; i < f->sent; i++)
    max_id = MAX (max_id, g_array_index (f->id_of_seq, gint64, i));
  for (guint i = 0; i < N_SUBSCRIBERS; i++)
    TOCSIN_WAIT_UNTIL_SECONDS (f->subs[i].cursor >= max_id, 60);

  g_test_message ("%s: sent %u, acknowledged (200) %u (%u of them \"duplicate\": stored by a try "
                  "whose answer was lost), HTTP requests %u, 503: %u (%u while PostgreSQL was "
                  "down), 502/504: %u, no answer: %u, 5xx without Retry-After: %u, other: %u",
                  fault, f->sent, f->acked, f->duplicates, f->requests, f->status_503,
                  f->status_503_down, f->status_502_504, f->transport_errors, f->no_retry_after,
                  f->other_status);

  for (guint s = 0; s < N_SUBSCRIBERS; s++)
    {
      TocsinRelSubscriber *sub = &f->subs[s];
      guint lost = 0, duplicated = 0, wrong_seq = 0, delivered = 0;
      GHashTableIter iter;
      gpointer key, value;

      g_hash_table_iter_init (&iter, sub->delivered);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          delivered += GPOINTER_TO_UINT (value);
          if (GPOINTER_TO_UINT (value) > 1)
            duplicated++;
        }
      for (guint i = 0; i < f->sent; i++)
        {
          gint64 id = g_array_index (f->id_of_seq, gint64, i);
          gpointer key_id = GINT_TO_POINTER ((gint) id);

          if (id == 0)
            continue;
          if (!g_hash_table_contains (sub->delivered, key_id))
            lost++;
          else if (GPOINTER_TO_UINT (g_hash_table_lookup (sub->delivered_seq, key_id)) != i + 1)
            wrong_seq++;
        }
      g_test_message ("%s: subscriber %u (now on %s, %u connections): delivered %u "
                      "(%u distinct), lost %u, duplicated %u, out of order %u, wrong seq %u, "
                      "other frames %u", fault, s + 1, sub->node ? sub->node : "none",
                      sub->reconnects, delivered, g_hash_table_size (sub->delivered), lost,
                      duplicated, sub->out_of_order, wrong_seq, sub->bad_frames);
      lost_total += lost;
      duplicated_total += duplicated;
      out_of_order_total += sub->out_of_order;
      g_assert_cmpuint (wrong_seq, ==, 0);
      g_assert_cmpuint (sub->bad_frames, ==, 0);
    }
  g_assert_cmpuint (lost_total, ==, 0);
  g_assert_cmpuint (duplicated_total, ==, 0);
  g_assert_cmpuint (out_of_order_total, ==, 0);
  g_assert_cmpuint (f->acked, ==, f->sent);

  /* Dedup held: the channel holds each webhook once (ids 1..sent, every one acknowledged). */
  g_assert_cmpint (max_id, ==, f->sent);
  g_assert_cmpint (tocsin_rel_last_id (f->nodes[0],
                                       json_object_get_int_member (f->channel, "id")), ==,
                   f->sent);
}

/* ---- the cases ---- */

/* Runs the main loop (the sender and subscribers tick) until @acked webhooks are acknowledged. */
static void
load_until_acked (Faults *f,
                  guint   acked)
{
  TOCSIN_WAIT_UNTIL_SECONDS (f->acked >= acked, 120);
}

/* kill -9 of a node with subscribers, under load: its subscribers reconnect through HAProxy to
 * the others with their cursors and miss nothing; every webhook is acknowledged in the end. */
static void
test_kill_node (Faults        *f,
                gconstpointer  data)
{
  gboolean was_on_victim[N_SUBSCRIBERS] = { FALSE };
  g_autofree char *victim_name = g_strdup_printf ("node%u", VICTIM + 1);
  guint on_victim = 0, acked_at_kill;
  gint64 killed_at;

  if (f->haproxy == NULL)
    return;
  for (guint i = 0; i < N_SUBSCRIBERS; i++)
    {
      was_on_victim[i] = g_strcmp0 (f->subs[i].node, victim_name) == 0;
      on_victim += was_on_victim[i];
    }
  g_assert_cmpuint (on_victim, >, 0);

  start_sending (f);
  load_until_acked (f, BEFORE_FAULT);
  acked_at_kill = f->acked;
  tocsin_test_relay_stop (f->nodes[VICTIM], TRUE);
  killed_at = g_get_monotonic_time ();
  g_test_message ("kill -9 %s (%u subscribers on it) with %u webhooks in flight, after %u "
                  "acknowledged", victim_name, on_victim, f->in_flight, acked_at_kill);

  /* HAProxy marks it DOWN; its subscribers are back, on the other nodes. */
  TOCSIN_WAIT_UNTIL (tocsin_test_haproxy_server_is (f->haproxy, VICTIM, "DOWN"));
  g_test_message ("HAProxy marked %s DOWN %" G_GINT64_FORMAT " ms after the kill", victim_name,
                  (g_get_monotonic_time () - killed_at) / 1000);
  for (guint i = 0; i < N_SUBSCRIBERS; i++)
    if (was_on_victim[i])
      {
        TOCSIN_WAIT_UNTIL (f->subs[i].ws != NULL && f->subs[i].reconnects >= 2);
        g_assert_cmpstr (f->subs[i].node, !=, victim_name);
        g_test_message ("subscriber %u reconnected through HAProxy to %s with its cursor (%"
                        G_GINT64_FORMAT ")", i + 1, f->subs[i].node, f->subs[i].cursor);
      }
  load_until_acked (f, acked_at_kill + AFTER_FAULT);

  finish_and_count (f, "kill-node");
  g_assert_cmpuint (f->no_retry_after, ==, 0);
}

/* PostgreSQL stopped under load for a few seconds, then started: webhooks get 503 with
 * Retry-After meanwhile (and no other error), nothing answered 200 is lost, streams resume. */
static void
test_postgres_restart (Faults        *f,
                       gconstpointer  data)
{
  guint acked_at_stop, acked_at_start, delivered_at_start[N_SUBSCRIBERS];
  gint64 stopped_at;

  if (f->haproxy == NULL)
    return;
  start_sending (f);
  load_until_acked (f, BEFORE_FAULT);
  acked_at_stop = f->acked;
  tocsin_test_postgres_stop (f->pg);
  f->pg_down = TRUE;
  stopped_at = g_get_monotonic_time ();
  g_test_message ("PostgreSQL stopped after %u acknowledged, %u webhooks in flight",
                  acked_at_stop, f->in_flight);
  /* Down for 3 s of load (a length for the outage, not an assertion), and until a webhook has
   * met it. */
  TOCSIN_WAIT_UNTIL_SECONDS (g_get_monotonic_time () >= stopped_at + 3 * G_USEC_PER_SEC &&
                             f->status_503_down > 0, 60);
  tocsin_test_postgres_restart (f->pg);
  f->pg_down = FALSE;
  acked_at_start = f->acked;
  for (guint i = 0; i < N_SUBSCRIBERS; i++)
    delivered_at_start[i] = g_hash_table_size (f->subs[i].delivered);
  g_test_message ("PostgreSQL started again after %" G_GINT64_FORMAT " ms; %u acknowledged "
                  "while it was down, %u answered 503", (g_get_monotonic_time () - stopped_at) /
                  1000, acked_at_start - acked_at_stop, f->status_503_down);
  g_assert_cmpuint (f->status_503_down, >, 0);

  /* Load goes on; the streams resume (each subscriber gets new messages). */
  load_until_acked (f, acked_at_start + AFTER_FAULT);
  for (guint i = 0; i < N_SUBSCRIBERS; i++)
    TOCSIN_WAIT_UNTIL (g_hash_table_size (f->subs[i].delivered) > delivered_at_start[i]);

  finish_and_count (f, "postgres-restart");
  /* Only 503 with Retry-After: no 502/504 from HAProxy, no dropped connection, no other status
   * (other_status was checked), every 503 with Retry-After. */
  g_assert_cmpuint (f->status_502_504, ==, 0);
  g_assert_cmpuint (f->transport_errors, ==, 0);
  g_assert_cmpuint (f->no_retry_after, ==, 0);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/cluster/faults/kill-node", Faults, NULL, fixture_setup, test_kill_node,
              fixture_teardown);
  g_test_add ("/cluster/faults/postgres-restart", Faults, NULL, fixture_setup,
              test_postgres_restart, fixture_teardown);
  return g_test_run ();
}
