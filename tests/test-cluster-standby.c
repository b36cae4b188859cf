/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-cluster-standby.c: the primary PostgreSQL dies and its synchronous standby is promoted
 * under three relay nodes (issue 16, item 5). The nodes are given both servers in one multi-host
 * connection string with target_session_attrs=read-write, as an operator would; nothing tells
 * them of the failover. A sender under steady load retries each 503 after its Retry-After with
 * the same Idempotency-Key, as a well-behaved sender does. Every webhook answered 200 must reach
 * the subscriber on every node once, in id order, with its own content: lost 0, duplicated 0,
 * out of order 0. And a commit whose connection is lost after COMMIT was sent, but which was
 * made, is answered 503 with a sentence that says it may have been stored (not "nothing was
 * stored"), and its retry with the same key is told it is a duplicate. Skipped, with the
 * reason, where PostgreSQL is not installed.
 */
#define G_LOG_DOMAIN "tocsin-test"

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tocsin-test-postgres.h"
#include "tocsin-test-relay.h"

#define N_NODES 3
/* Webhooks in flight at once, over the three nodes. */
#define MAX_IN_FLIGHT 48
/* Answered 200 before the kill, and again after the first 200 once the standby took over. */
#define PHASE_ACKED 600
/* How long webhooks keep coming while no server takes writes, before the promotion. */
#define OUTAGE_US (2 * G_USEC_PER_SEC)

typedef struct
{
  guint   n;           /* its index: the body's "n", the key's suffix, its title */
  guint   attempts;
  gint64  acked_id;    /* 0 until answered 200 */
  gint64  due;         /* monotonic time of its next attempt (Retry-After) */
  gboolean maybe_stored;  /* a 503 said it may have been stored */
} Hook;

typedef struct Sender Sender;

typedef struct
{
  SoupWebsocketConnection *ws;
  GPtrArray               *frames;
  TocsinTestRelay         *node;
  char                    *who;
} Subscriber;

struct Sender
{
  TocsinTestPostgres *primary, *standby;
  TocsinTestRelay    *nodes[N_NODES];
  SoupSession        *session;
  char               *trigger_token;
  guint               rate;          /* new webhooks per second */

  GPtrArray          *hooks;         /* Hook*, index n */
  GQueue              retries;       /* Hook* waiting for their Retry-After, in due order */
  gboolean            sending;       /* new webhooks are being made */
  gint64              started;       /* when sending began (monotonic) */
  guint               in_flight;
  guint               acked;
  guint               answers_503;
  guint               retried;
  guint               duplicates;    /* 200s to a retry that the relay had stored already */
  guint               maybe_stored;  /* 503s saying the webhook may have been stored */
  gint64              killed_at, promoting_at, promoted_at, first_after;
  guint               acked_at_first_after;
};

static void send_hook (Sender *s, Hook *hook);

static gint64
parse_id (GBytes   *body,
          gboolean *duplicate)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *object;

  g_assert_true (json_parser_load_from_data (parser, g_bytes_get_data (body, NULL),
                                             g_bytes_get_size (body), NULL));
  object = json_node_get_object (json_parser_get_root (parser));
  *duplicate = json_object_get_boolean_member_with_default (object, "duplicate", FALSE);
  return json_object_get_int_member (object, "id");
}

typedef struct
{
  Sender *s;
  Hook   *hook;
} Attempt;

static gint
by_due (gconstpointer a,
        gconstpointer b,
        gpointer      user_data)
{
  gint64 x = ((const Hook *) a)->due, y = ((const Hook *) b)->due;

  return x < y ? -1 : x > y;
}

static void
answered (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Attempt *attempt = user_data;
  Sender *s = attempt->s;
  Hook *hook = attempt->hook;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (source), result);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (source), result,
                                                              &error);
  guint status = soup_message_get_status (msg);
  gboolean duplicate = FALSE;

  g_free (attempt);
  s->in_flight--;
  if (body != NULL && status == 200)
    {
      hook->acked_id = parse_id (body, &duplicate);
      s->acked++;
      s->duplicates += duplicate;
      /* Stored by a commit whose answer was lost with the primary: its 503 must not have said
       * "nothing was stored" (a sender without a key would then store it twice). */
      if (duplicate && !hook->maybe_stored)
        g_error ("webhook %u was stored before a 503 that said nothing was stored", hook->n);
      if (s->promoting_at != 0 && s->first_after == 0)
        {
          s->first_after = g_get_monotonic_time ();
          s->acked_at_first_after = s->acked;
        }
      return;
    }
  if (body != NULL && status == 503)
    {
      const char *retry_after = soup_message_headers_get_one (soup_message_get_response_headers
                                                              (msg), "Retry-After");

      /* A 503 always says when to come back, and soon: a failover takes seconds, not the
       * half-minute a full disk on SQLite is given. */
      g_assert_nonnull (retry_after);
      g_assert_cmpint (atoi (retry_after), >=, 1);
      g_assert_cmpint (atoi (retry_after), <=, 5);
      s->answers_503++;
      if (g_strstr_len (g_bytes_get_data (body, NULL), g_bytes_get_size (body),
                        "may have been stored") != NULL)
        {
          hook->maybe_stored = TRUE;
          s->maybe_stored++;
        }
      hook->due = g_get_monotonic_time () + (gint64) atoi (retry_after) * G_USEC_PER_SEC;
      g_queue_insert_sorted (&s->retries, hook, by_due, NULL);
      return;
    }
  g_error ("webhook %u (attempt %u) was answered %u %s: %.*s", hook->n, hook->attempts, status,
           error ? error->message : "",
           body ? (int) g_bytes_get_size (body) : 0,
           body ? (const char *) g_bytes_get_data (body, NULL) : "");
}

static void
send_hook (Sender *s,
           Hook   *hook)
{
  /* Attempts go round the nodes, as a load balancer would send them. */
  TocsinTestRelay *node = s->nodes[(hook->n + hook->attempts) % N_NODES];
  g_autofree char *url = g_strdup_printf ("%s/t/%s", node->base_url, s->trigger_token);
  g_autofree char *body = g_strdup_printf ("{\"n\": %u}", hook->n);
  g_autofree char *key = g_strdup_printf ("standby-%u", hook->n);
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", url);
  g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));
  Attempt *attempt = g_new0 (Attempt, 1);

  attempt->s = s;
  attempt->hook = hook;
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Idempotency-Key", key);
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  if (hook->attempts > 0)
    s->retried++;
  hook->attempts++;
  s->in_flight++;
  soup_session_send_and_read_async (s->session, msg, G_PRIORITY_DEFAULT, NULL, answered, attempt);
}

/* One step of the sender: retries whose time has come first, then new webhooks at the rate
 * (with no more than MAX_IN_FLIGHT unanswered: a box that cannot keep up lags behind). */
static void
pump (Sender *s)
{
  gint64 now = g_get_monotonic_time ();

  while (s->in_flight < MAX_IN_FLIGHT && !g_queue_is_empty (&s->retries)
         && ((Hook *) g_queue_peek_head (&s->retries))->due <= now)
    send_hook (s, g_queue_pop_head (&s->retries));
  while (s->sending && s->in_flight < MAX_IN_FLIGHT
         && (gint64) s->hooks->len < (now - s->started) * s->rate / G_USEC_PER_SEC)
    {
      Hook *hook = g_new0 (Hook, 1);

      hook->n = s->hooks->len;
      g_ptr_array_add (s->hooks, hook);
      send_hook (s, hook);
    }
}

static gboolean
pumped (Sender  *s,
        gboolean done)
{
  pump (s);
  return done;
}

/* Runs the sender until @cond holds; a guard of @seconds against a hang, not a timing. */
#define RUN_UNTIL(s, cond, seconds) TOCSIN_WAIT_UNTIL_SECONDS (pumped ((s), (cond)), seconds)

static gboolean
all_answered_200 (Sender *s)
{
  return s->acked == s->hooks->len;
}

/* ---- subscribers ---- */

static void
subscriber_open (Subscriber      *sub,
                 TocsinTestRelay *node,
                 const char      *subscribe_token,
                 const char      *who)
{
  g_autofree char *path = g_strdup_printf ("/s/%s/ws", subscribe_token);
  g_autoptr(GError) error = NULL;

  sub->node = node;
  sub->who = g_strdup (who);
  sub->frames = g_ptr_array_new_with_free_func (g_free);
  sub->ws = tocsin_test_websocket_connect (node, path, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (sub->ws, sub->frames);
}

static void
subscriber_clear (Subscriber *sub)
{
  if (sub->ws != NULL
      && soup_websocket_connection_get_state (sub->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (sub->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  g_clear_object (&sub->ws);
  g_clear_pointer (&sub->frames, g_ptr_array_unref);
  g_clear_pointer (&sub->who, g_free);
}

typedef struct
{
  guint delivered, lost, duplicated, out_of_order, wrong, unexpected;
} Tally;

/* Compares what @sub received with what was acknowledged: each acknowledged id once, in
 * increasing order, carrying the title of the webhook that was answered with that id. */
static Tally
tally (Sender     *s,
       Subscriber *sub)
{
  g_autoptr(GHashTable) acked = g_hash_table_new (g_int64_hash, g_int64_equal);
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                                      NULL);
  Tally t = { 0 };
  gint64 last = 0;

  for (guint i = 0; i < s->hooks->len; i++)
    {
      Hook *hook = s->hooks->pdata[i];

      if (hook->acked_id != 0)
        g_hash_table_insert (acked, &hook->acked_id, hook);
    }
  for (guint i = 0; i < sub->frames->len; i++)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autofree char *title = NULL;
      JsonObject *object;
      gint64 *id = g_new (gint64, 1);
      Hook *hook;

      g_assert_true (json_parser_load_from_data (parser, sub->frames->pdata[i], -1, NULL));
      object = json_node_get_object (json_parser_get_root (parser));
      if (json_object_has_member (object, "type"))
        g_error ("%s got a %s frame: %s", sub->who,
                 json_object_get_string_member (object, "type"),
                 (const char *) sub->frames->pdata[i]);
      *id = json_object_get_int_member (object, "id");
      t.delivered++;
      if (*id <= last)
        t.out_of_order++;
      last = MAX (last, *id);
      if (g_hash_table_contains (seen, id))
        {
          t.duplicated++;
          g_free (id);
          continue;
        }
      g_hash_table_add (seen, id);
      hook = g_hash_table_lookup (acked, id);
      if (hook == NULL)
        {
          t.unexpected++;
          continue;
        }
      title = g_strdup_printf ("%u", hook->n);
      if (g_strcmp0 (json_object_get_string_member_with_default (object, "title", NULL),
                     title) != 0)
        t.wrong++;
    }
  for (guint i = 0; i < s->hooks->len; i++)
    {
      Hook *hook = s->hooks->pdata[i];

      if (hook->acked_id != 0 && !g_hash_table_contains (seen, &hook->acked_id))
        t.lost++;
    }
  return t;
}

static gboolean
has_all (Sender     *s,
         Subscriber *sub)
{
  return sub->frames->len >= s->acked;
}

static guint
distinct_acked_ids (Sender *s)
{
  g_autoptr(GHashTable) ids = g_hash_table_new (g_int64_hash, g_int64_equal);

  for (guint i = 0; i < s->hooks->len; i++)
    g_hash_table_add (ids, &((Hook *) s->hooks->pdata[i])->acked_id);
  return g_hash_table_size (ids);
}

static void
test_promote (void)
{
  /* Every webhook of the load is one channel's: its budget must not be what is tested. */
  const char *args[] = { "--rate=100000", "--burst=100000", NULL };
  g_autoptr(TocsinTestPostgres) primary = tocsin_test_postgres_start ();
  g_autoptr(TocsinTestPostgres) standby = NULL;
  g_autofree char *conninfo = NULL;
  g_autoptr(JsonNode) channel = NULL;
  Subscriber subs[N_NODES] = { { 0 } };
  Sender s = { 0 };
  guint status = 0;
  gint64 deadline;
  gboolean failed = FALSE;

  if (primary == NULL)
    return;
  standby = tocsin_test_postgres_start_standby (primary);
  if (standby == NULL)
    return;
  conninfo = tocsin_test_postgres_failover_conninfo (primary, standby);
  g_test_message ("the nodes' database: %s", conninfo);

  s.primary = primary;
  s.standby = standby;
  s.rate = g_getenv ("TOCSIN_STANDBY_RATE") ? atoi (g_getenv ("TOCSIN_STANDBY_RATE")) : 300;
  s.hooks = g_ptr_array_new_with_free_func (g_free);
  s.session = soup_session_new_with_options ("timeout", 120, "max-conns", 4 * MAX_IN_FLIGHT,
                                             "max-conns-per-host", MAX_IN_FLIGHT, NULL);
  for (guint i = 0; i < N_NODES; i++)
    {
      s.nodes[i] = tocsin_test_relay_new (NULL, args);
      g_free (s.nodes[i]->database);
      s.nodes[i]->database = g_strdup (conninfo);
      tocsin_test_relay_spawn (s.nodes[i]);
    }
  channel = tocsin_test_http_json (s.nodes[0], "POST", "/v1/channels", "application/json",
                                   "{\"name\": \"Standby\", \"title\": \"{{n}}\"}", NULL, &status);
  g_assert_cmpuint (status, ==, 201);
  s.trigger_token = g_strdup (json_object_get_string_member (json_node_get_object (channel),
                                                             "trigger_token"));
  for (guint i = 0; i < N_NODES; i++)
    {
      g_autofree char *who = g_strdup_printf ("the subscriber on node %c", 'A' + i);

      subscriber_open (&subs[i], s.nodes[i],
                       json_object_get_string_member (json_node_get_object (channel),
                                                      "subscribe_token"), who);
    }

  /* Steady load, answered by the primary. */
  s.sending = TRUE;
  s.started = g_get_monotonic_time ();
  RUN_UNTIL (&s, s.acked >= PHASE_ACKED, 120);
  g_test_message ("before the kill: %u sent, %u answered 200 in %.1f s", s.hooks->len, s.acked,
                  (g_get_monotonic_time () - s.started) / (double) G_USEC_PER_SEC);

  /* The primary dies with commits waiting for the standby; webhooks keep coming while no
   * server takes writes, then the standby is promoted. */
  s.killed_at = g_get_monotonic_time ();
  tocsin_test_postgres_kill (primary);
  RUN_UNTIL (&s, g_get_monotonic_time () - s.killed_at >= OUTAGE_US, 60);
  s.promoting_at = g_get_monotonic_time ();
  tocsin_test_postgres_promote (standby);
  s.promoted_at = g_get_monotonic_time ();

  /* The nodes find the new primary on their own; the load goes on for as long again. */
  RUN_UNTIL (&s, s.first_after != 0 && s.acked >= s.acked_at_first_after + PHASE_ACKED, 180);
  s.sending = FALSE;
  /* Every webhook is eventually answered 200 (each Retry-After is honoured). */
  RUN_UNTIL (&s, all_answered_200 (&s), 180);

  g_test_message ("sent %u webhooks (%u attempts retried after a 503), %u answered 200 "
                  "(%u of them to a retry of a webhook stored before its 503: duplicate), "
                  "%u answers 503 (%u saying it may have been stored), %u distinct ids",
                  s.hooks->len, s.retried, s.acked, s.duplicates, s.answers_503, s.maybe_stored,
                  distinct_acked_ids (&s));
  g_test_message ("first 200 after the promotion began: %" G_GINT64_FORMAT " ms (kill to "
                  "promotion %" G_GINT64_FORMAT " ms, pg_ctl promote took %" G_GINT64_FORMAT
                  " ms, kill to first 200 %" G_GINT64_FORMAT " ms)",
                  (s.first_after - s.promoting_at) / 1000,
                  (s.promoting_at - s.killed_at) / 1000,
                  (s.promoted_at - s.promoting_at) / 1000,
                  (s.first_after - s.killed_at) / 1000);
  /* Two webhooks answered with one id: one of them was lost. */
  g_assert_cmpuint (distinct_acked_ids (&s), ==, s.hooks->len);

  /* A deadline, then the counts (rather than the first missing id). */
  deadline = g_get_monotonic_time () + 60 * TOCSIN_TEST_SLOWDOWN * G_USEC_PER_SEC;
  while (g_get_monotonic_time () < deadline
         && !(has_all (&s, &subs[0]) && has_all (&s, &subs[1]) && has_all (&s, &subs[2])))
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
  for (guint i = 0; i < N_NODES; i++)
    {
      Tally t = tally (&s, &subs[i]);

      g_test_message ("%s: delivered %u of %u acknowledged: lost %u, duplicated %u, out of "
                      "order %u, wrong content %u, never acknowledged %u (stream %s)",
                      subs[i].who, t.delivered, s.acked, t.lost, t.duplicated, t.out_of_order,
                      t.wrong, t.unexpected,
                      soup_websocket_connection_get_state (subs[i].ws)
                      == SOUP_WEBSOCKET_STATE_OPEN ? "open" : "closed");
      failed |= t.lost || t.duplicated || t.out_of_order || t.wrong || t.unexpected;
    }
  g_assert_false (failed);

  for (guint i = 0; i < N_NODES; i++)
    {
      subscriber_clear (&subs[i]);
      g_clear_pointer (&s.nodes[i], tocsin_test_relay_free);
    }
  g_queue_clear (&s.retries);
  g_ptr_array_unref (s.hooks);
  g_object_unref (s.session);
  g_free (s.trigger_token);
}

typedef struct
{
  guint   status;
  GBytes *body;
} Answer;

static void
got_answer (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Answer *answer = user_data;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (source), result);

  answer->body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, NULL);
  answer->status = soup_message_get_status (msg);
}

static void
send_keyed (TocsinTestRelay *node,
            const char      *trigger_token,
            Answer          *answer)
{
  g_autofree char *url = g_strdup_printf ("%s/t/%s", node->base_url, trigger_token);
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", url);
  g_autoptr(GBytes) bytes = g_bytes_new_static ("{\"n\": 1}", 8);

  soup_message_headers_replace (soup_message_get_request_headers (msg), "Idempotency-Key",
                                "cut-1");
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  soup_session_send_and_read_async (node->session, msg, G_PRIORITY_DEFAULT, NULL, got_answer,
                                    answer);
}

static gboolean
waiting_for_standby (TocsinTestPostgres *primary)
{
  g_autofree char *out = tocsin_test_postgres_psql (primary, "SELECT count (*) FROM"
                                                    " pg_stat_activity WHERE wait_event ="
                                                    " 'SyncRep'");

  return g_ascii_strtoull (out, NULL, 10) > 0;
}

/* The connection lost after COMMIT was sent, with the commit made: the standby gone, the
 * relay's backend waiting for it is terminated, which leaves the transaction committed on the
 * primary (PostgreSQL's "already committed locally" warning), as a primary killed after its
 * standby flushed a commit does. The 503 must not say "nothing was stored": the retry with the
 * same key finds it stored. */
static void
test_commit_cut (void)
{
  g_autoptr(TocsinTestPostgres) primary = tocsin_test_postgres_start ();
  g_autoptr(TocsinTestPostgres) standby = NULL;
  g_autoptr(TocsinTestRelay) node = NULL;
  g_autoptr(JsonNode) channel = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *stored = NULL;
  Answer first = { 0 }, again = { 0 };
  const char *trigger;
  JsonObject *object;
  guint status = 0;

  if (primary == NULL)
    return;
  standby = tocsin_test_postgres_start_standby (primary);
  if (standby == NULL)
    return;
  node = tocsin_test_relay_new (NULL, NULL);
  g_free (node->database);
  node->database = g_strdup (tocsin_test_postgres_conninfo (primary));
  tocsin_test_relay_spawn (node);
  channel = tocsin_test_http_json (node, "POST", "/v1/channels", "application/json",
                                   "{\"name\": \"Cut\"}", NULL, &status);
  g_assert_cmpuint (status, ==, 201);
  trigger = json_object_get_string_member (json_node_get_object (channel), "trigger_token");

  tocsin_test_postgres_kill (standby);
  send_keyed (node, trigger, &first);
  TOCSIN_WAIT_UNTIL (waiting_for_standby (primary));
  g_free (tocsin_test_postgres_psql (primary, "SELECT pg_terminate_backend (pid) FROM"
                                     " pg_stat_activity WHERE wait_event = 'SyncRep'"));
  TOCSIN_WAIT_UNTIL (first.status != 0);
  g_test_message ("answered %u: %.*s", first.status,
                  first.body ? (int) g_bytes_get_size (first.body) : 0,
                  first.body ? (const char *) g_bytes_get_data (first.body, NULL) : "");
  g_assert_cmpuint (first.status, ==, 503);
  stored = tocsin_test_postgres_psql (primary, "SELECT count (*) FROM messages");
  g_assert_cmpstr (g_strstrip (stored), ==, "1");
  g_assert_nonnull (g_strstr_len (g_bytes_get_data (first.body, NULL),
                                  g_bytes_get_size (first.body), "may have been stored"));

  /* Without the standby, commits go on; the retry is told it was stored. */
  g_free (tocsin_test_postgres_psql (primary, "ALTER SYSTEM SET synchronous_standby_names = ''"));
  g_free (tocsin_test_postgres_psql (primary, "SELECT pg_reload_conf ()"));
  send_keyed (node, trigger, &again);
  TOCSIN_WAIT_UNTIL (again.status != 0);
  g_assert_cmpuint (again.status, ==, 200);
  g_assert_true (json_parser_load_from_data (parser, g_bytes_get_data (again.body, NULL),
                                             g_bytes_get_size (again.body), NULL));
  object = json_node_get_object (json_parser_get_root (parser));
  g_assert_true (json_object_get_boolean_member_with_default (object, "duplicate", FALSE));
  g_assert_cmpint (json_object_get_int_member (object, "id"), ==, 1);
  g_clear_pointer (&first.body, g_bytes_unref);
  g_clear_pointer (&again.body, g_bytes_unref);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cluster/standby/promote", test_promote);
  g_test_add_func ("/cluster/standby/commit-cut", test_commit_cut);
  return g_test_run ();
}
