/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-cluster-haproxy.c: three real relay nodes behind a real HAProxy from Debian
 * (tests/tocsin-test-haproxy.h), one of them killed with SIGKILL under webhook load and started
 * again (issue 16, item 5). Until the relay serves from PostgreSQL each node has its own SQLite
 * store: the three start from one copy of a store that holds the channel, so its trigger and
 * subscribe tokens are valid on every node (a channel created on each node would get different
 * random tokens, and two thirds of the requests through HAProxy would find no channel), and each
 * node then keeps the messages it took. So this asserts what holds without shared state:
 *
 * - every webhook answered 200 through HAProxy is in the store of the node that answered
 *   (X-Tocsin-Node), each node's ids run 1..n with no gap, and the three stores together hold
 *   no more than was answered 200 plus the requests that failed while a node died;
 * - HAProxy marks the killed node DOWN and the restarted node UP again (its runtime API);
 * - while the node dies, a webhook either gets 200 or an answer the sender can act on: HAProxy's
 *   502/503/504 with a JSON sentence and Retry-After (a request that reached the node as it
 *   died), or a connection error; those are at most the requests in flight when it died, and
 *   none once HAProxy has marked it DOWN; a request whose connection to the dead node failed is
 *   sent to another node (retry-on conn-failure, option redispatch) and gets 200;
 * - a WebSocket subscriber connected through HAProxy gets every message of its node once and in
 *   order, reconnects through HAProxy when its node is killed, and gets messages again.
 *
 * The counts are printed as TAP comments.
 */
#define G_LOG_DOMAIN "test-cluster"

#include "config.h"

#include <string.h>

#include "tocsin-test-haproxy.h"
#include "tocsin-test-reliability.h"

#define N_NODES       3
#define MAX_IN_FLIGHT 32

typedef struct
{
  TocsinTestRelay   *nodes[N_NODES];
  guint16            ports[N_NODES];
  TocsinTestHaproxy *haproxy;
  JsonObject        *channel;
  char              *hook_url;      /* the trigger URL through HAProxy */
  SoupSession       *session;

  /* Sender */
  guint              sent;
  guint              in_flight;
  guint              acked;
  GHashTable        *acked_ids[N_NODES];   /* id → seq, per node that answered */
  guint              failed_after_down;    /* not 200, though sent after the node was DOWN */
  guint              gateway_errors;       /* HAProxy's 502/504: the node may have it */
  guint              unavailable;          /* HAProxy's 503: nothing was received */
  guint              transport_errors;     /* no HTTP answer at all */
  guint              other_failures;       /* anything else: a defect */
  gboolean           down_seen;

  TocsinRelSubscriber sub;
} Cluster;

typedef struct
{
  Cluster *cluster;
  guint    seq;
  gboolean after_down;
} Ring;

static int
node_index (const char *name)
{
  if (name == NULL || !g_str_has_prefix (name, "node"))
    return -1;
  return (int) g_ascii_strtoull (name + 4, NULL, 10) - 1;
}

static void
ring_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Ring *ring = user_data;
  Cluster *c = ring->cluster;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (source), result);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (source), result,
                                                              &error);
  SoupMessageHeaders *headers = soup_message_get_response_headers (msg);
  guint status = soup_message_get_status (msg);

  c->in_flight--;
  if (body == NULL)
    {
      /* HAProxy itself stays up, so this would be a connection it dropped. */
      g_test_message ("webhook %u: no answer: %s", ring->seq, error->message);
      c->transport_errors++;
    }
  else if (status == SOUP_STATUS_OK)
    {
      g_autoptr(JsonObject) reply = tocsin_rel_parse_object (g_bytes_get_data (body, NULL),
                                                             g_bytes_get_size (body));
      gint64 id = json_object_get_int_member_with_default (reply, "id", 0);
      int node = node_index (soup_message_headers_get_one (headers, "X-Tocsin-Node"));

      g_assert_cmpint (id, >, 0);
      g_assert_cmpint (node, >=, 0);
      g_assert_cmpint (node, <, N_NODES);
      /* The same id answered twice by one node would be a message lost. */
      g_assert_false (g_hash_table_contains (c->acked_ids[node], GINT_TO_POINTER ((gint) id)));
      g_hash_table_insert (c->acked_ids[node], GINT_TO_POINTER ((gint) id),
                           GUINT_TO_POINTER (ring->seq));
      c->acked++;
    }
  else
    {
      g_autoptr(JsonObject) reply = NULL;

      g_test_message ("webhook %u: %u %.*s", ring->seq, status,
                      (int) MIN (g_bytes_get_size (body), 300),
                      (const char *) g_bytes_get_data (body, NULL));
      if (status == 502 || status == 503 || status == 504)
        {
          /* What the sender can act on: a sentence, and when to try again. */
          reply = tocsin_rel_parse_object (g_bytes_get_data (body, NULL),
                                           g_bytes_get_size (body));
          g_assert_nonnull (json_object_get_string_member (reply, "error"));
          g_assert_cmpstr (soup_message_headers_get_one (headers, "Retry-After"), ==, "1");
          if (status == 503)
            c->unavailable++;
          else
            c->gateway_errors++;
        }
      else
        c->other_failures++;
      if (ring->after_down)
        c->failed_after_down++;
    }
  g_free (ring);
}

static void
ring (Cluster *c)
{
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", c->hook_url);
  char *body = g_strdup_printf ("{\"seq\": \"%u\"}", ++c->sent);
  g_autoptr(GBytes) bytes = g_bytes_new_take (body, strlen (body));
  Ring *r = g_new0 (Ring, 1);

  r->cluster = c;
  r->seq = c->sent;
  r->after_down = c->down_seen;
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  c->in_flight++;
  soup_session_send_and_read_async (c->session, msg, G_PRIORITY_DEFAULT, NULL, ring_done, r);
}

/* Sends @count webhooks, @MAX_IN_FLIGHT at a time, and waits for every answer. */
static void
ring_batch (Cluster *c,
            guint    count)
{
  guint target = c->sent + count;

  while (c->sent < target || c->in_flight > 0)
    {
      while (c->sent < target && c->in_flight < MAX_IN_FLIGHT)
        ring (c);
      tocsin_rel_subscriber_connect (&c->sub);
      g_main_context_iteration (NULL, TRUE);
    }
}

static guint
acked_total (Cluster *c)
{
  guint total = 0;

  for (guint i = 0; i < N_NODES; i++)
    total += g_hash_table_size (c->acked_ids[i]);
  return total;
}

static gint64
acked_max (Cluster *c,
           guint    node)
{
  GHashTableIter iter;
  gpointer key;
  gint64 max = 0;

  g_hash_table_iter_init (&iter, c->acked_ids[node]);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    max = MAX (max, GPOINTER_TO_INT (key));
  return max;
}

/* The node the subscriber's WebSocket went to: with no webhook in flight, the one HAProxy
 * counts a session on. */
static guint
subscriber_node (Cluster *c)
{
  guint found = G_MAXUINT;

  for (guint i = 0; i < N_NODES; i++)
    if (tocsin_test_haproxy_counter (c->haproxy, i, "scur") > 0)
      {
        g_assert_cmpuint (found, ==, G_MAXUINT);
        found = i;
      }
  g_assert_cmpuint (found, <, N_NODES);
  return found;
}

static void
test_kill_one_node (void)
{
  Cluster cluster = { 0 }, *c = &cluster;
  g_autofree char *seed_dir = tocsin_test_make_tmpdir ("tocsin-cluster-seed");
  g_autoptr(TocsinTestRelay) seed = NULL;
  guint victim, survivor, delivered_before, in_flight_at_kill = 0, stored_total = 0;
  gint64 started, killed_at, down_at, up_at, load_started;
  guint sent_before_load;
  g_autofree char *config_line = NULL;
  g_autoptr(GHashTable) stored_seqs = NULL;

  /* One store with the channel, copied to each node before any of them runs. */
  seed = tocsin_test_relay_new (seed_dir, NULL);
  c->channel = tocsin_test_relay_create_channel (seed, "cluster", "Seq {{seq}}", NULL, NULL,
                                                 NULL);
  for (guint i = 0; i < N_NODES; i++)
    {
      g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-cluster-node");
      g_autofree char *listen = NULL;

      g_autoptr(GDir) seed_files = g_dir_open (seed_dir, 0, NULL);
      const char *name;

      /* The store's files (the CLI has closed it: no live WAL to copy under a writer). */
      while ((name = g_dir_read_name (seed_files)))
        {
          g_autofree char *from = g_build_filename (seed_dir, name, NULL);
          g_autofree char *to = g_build_filename (dir, name, NULL);
          g_autoptr(GFile) source = g_file_new_for_path (from);
          g_autoptr(GFile) target = g_file_new_for_path (to);
          g_autoptr(GError) error = NULL;

          if (!g_file_test (from, G_FILE_TEST_IS_REGULAR))
            continue;
          g_file_copy (source, target, G_FILE_COPY_NONE, NULL, NULL, NULL, &error);
          g_assert_no_error (error);
        }
      /* A fixed port, so that the node comes back where HAProxy looks for it. */
      c->ports[i] = tocsin_test_free_port ();
      listen = g_strdup_printf ("--listen=127.0.0.1:%u", c->ports[i]);
      {
        const char *args[] = { listen, "--rate=100000", "--burst=100000", NULL };

        c->nodes[i] = tocsin_test_relay_start (dir, args);
      }
      c->nodes[i]->owns_data_dir = TRUE;
      c->acked_ids[i] = g_hash_table_new (NULL, NULL);
    }

  started = g_get_monotonic_time ();
  c->haproxy = tocsin_test_haproxy_start (c->ports, N_NODES);
  if (c->haproxy == NULL)
    goto out;
  tocsin_test_haproxy_wait_up (c->haproxy, G_MAXUINT);
  g_test_message ("HAProxy %s: all %u nodes UP after %" G_GINT64_FORMAT " ms",
                  tocsin_test_haproxy_base_url (c->haproxy), N_NODES,
                  (g_get_monotonic_time () - started) / 1000);

  c->session = soup_session_new_with_options ("max-conns", 128, "max-conns-per-host", 64,
                                              "timeout", 30, NULL);
  c->hook_url = g_strconcat (tocsin_test_haproxy_base_url (c->haproxy), "/t/",
                             json_object_get_string_member (c->channel, "trigger_token"), NULL);

  /* A subscriber through HAProxy, before any message. */
  tocsin_rel_subscriber_init (&c->sub, c->nodes[0], tocsin_test_haproxy_base_url (c->haproxy),
                              c->channel, c->session);
  TOCSIN_WAIT_UNTIL ((tocsin_rel_subscriber_connect (&c->sub), c->sub.ws != NULL));
  victim = subscriber_node (c);
  survivor = (victim + 1) % N_NODES;
  /* sub.relay only gates reconnection attempts on a running process: not the one to kill. */
  c->sub.relay = c->nodes[survivor];
  g_test_message ("the subscriber went to node%u through HAProxy", victim + 1);

  /* Webhooks through HAProxy: every node takes a share, and the subscriber gets its node's. */
  ring_batch (c, 60);
  g_assert_cmpuint (c->acked, ==, 60);
  for (guint i = 0; i < N_NODES; i++)
    {
      g_test_message ("node%u took %u of the first 60 webhooks", i + 1,
                      g_hash_table_size (c->acked_ids[i]));
      g_assert_cmpuint (g_hash_table_size (c->acked_ids[i]), >, 0);
      tocsin_rel_assert_store (c->nodes[i], c->channel, g_hash_table_size (c->acked_ids[i]));
    }
  TOCSIN_WAIT_UNTIL (g_hash_table_size (c->sub.delivered) ==
                     g_hash_table_size (c->acked_ids[victim]));
  g_assert_cmpuint (c->sub.out_of_order, ==, 0);
  g_assert_cmpuint (c->sub.bad_frames, ==, 0);
  for (guint id = 1; id <= g_hash_table_size (c->acked_ids[victim]); id++)
    g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (c->sub.delivered,
                                                             GINT_TO_POINTER (id))), ==, 1);
  delivered_before = g_hash_table_size (c->sub.delivered);

  /* Load, then kill -9 the subscriber's node in the middle of it. */
  {
    gint64 kill_time = g_get_monotonic_time () + G_USEC_PER_SEC / 2;
    gint64 next_check = 0;

    killed_at = 0;
    down_at = 0;
    load_started = g_get_monotonic_time ();
    sent_before_load = c->sent;
    while (down_at == 0 || g_get_monotonic_time () < down_at + G_USEC_PER_SEC)
      {
        while (c->in_flight < MAX_IN_FLIGHT)
          ring (c);
        if (killed_at == 0 && g_get_monotonic_time () >= kill_time)
          {
            in_flight_at_kill = c->in_flight;
            tocsin_test_relay_stop (c->nodes[victim], TRUE);
            killed_at = g_get_monotonic_time ();
          }
        if (killed_at != 0 && down_at == 0 && g_get_monotonic_time () >= next_check)
          {
            if (tocsin_test_haproxy_server_is (c->haproxy, victim, "DOWN"))
              {
                down_at = g_get_monotonic_time ();
                c->down_seen = TRUE;
              }
            next_check = g_get_monotonic_time () + 20 * 1000;
          }
        if (killed_at != 0 && down_at == 0 &&
            g_get_monotonic_time () > killed_at + 20 * TOCSIN_TEST_SLOWDOWN * G_USEC_PER_SEC)
          g_error ("HAProxy did not mark node%u DOWN within 20 s", victim + 1);
        tocsin_rel_subscriber_connect (&c->sub);
        g_main_context_iteration (NULL, TRUE);
      }
    while (c->in_flight > 0)
      g_main_context_iteration (NULL, TRUE);
  }
  g_test_message ("load: %u webhooks in %" G_GINT64_FORMAT " ms",
                  c->sent - sent_before_load, (g_get_monotonic_time () - load_started) / 1000);
  g_test_message ("kill -9 node%u with %u webhooks in flight; HAProxy marked it DOWN "
                  "%" G_GINT64_FORMAT " ms later", victim + 1, in_flight_at_kill,
                  (down_at - killed_at) / 1000);
  g_test_message ("sent %u, 200: %u, 502/504 (may have been received): %u, 503 (not received): "
                  "%u, connection errors: %u, other: %u, failed after DOWN: %u",
                  c->sent, c->acked, c->gateway_errors, c->unavailable, c->transport_errors,
                  c->other_failures, c->failed_after_down);
  g_test_message ("HAProxy: retries %" G_GUINT64_FORMAT ", redispatches %" G_GUINT64_FORMAT
                  ", connection errors %" G_GUINT64_FORMAT ", response errors %" G_GUINT64_FORMAT,
                  tocsin_test_haproxy_counter (c->haproxy, G_MAXUINT, "wretr"),
                  tocsin_test_haproxy_counter (c->haproxy, G_MAXUINT, "wredis"),
                  tocsin_test_haproxy_counter (c->haproxy, G_MAXUINT, "econ"),
                  tocsin_test_haproxy_counter (c->haproxy, G_MAXUINT, "eresp"));
  g_assert_cmpuint (c->other_failures, ==, 0);
  g_assert_cmpuint (c->failed_after_down, ==, 0);
  g_assert_cmpuint (c->gateway_errors + c->unavailable + c->transport_errors, <=,
                    in_flight_at_kill);
  g_assert_cmpuint (c->acked, ==, acked_total (c));
  g_assert_cmpuint (c->acked + c->gateway_errors + c->unavailable + c->transport_errors, ==,
                    c->sent);

  /* The subscriber reconnected through HAProxy, to another node. */
  TOCSIN_WAIT_UNTIL (c->sub.ws != NULL && c->sub.reconnects >= 2);
  g_test_message ("the subscriber reconnected through HAProxy (%u connections)",
                  c->sub.reconnects);

  /* The killed node comes back on its port and data; HAProxy marks it UP again. */
  started = g_get_monotonic_time ();
  tocsin_test_relay_spawn (c->nodes[victim]);
  tocsin_test_haproxy_wait_state (c->haproxy, victim, "UP");
  up_at = g_get_monotonic_time ();
  g_test_message ("node%u restarted; UP again %" G_GINT64_FORMAT " ms after it listened",
                  victim + 1, (up_at - started) / 1000);
  {
    guint before = g_hash_table_size (c->acked_ids[victim]);
    guint sent_before = c->sent;

    ring_batch (c, 30);
    g_assert_cmpuint (c->acked, ==, acked_total (c));
    g_assert_cmpuint (c->sent - sent_before, ==, 30);
    /* All 30 answered 200, and the restarted node took its share again. */
    g_assert_cmpuint (c->acked + c->gateway_errors + c->unavailable + c->transport_errors, ==,
                      c->sent);
    g_assert_cmpuint (g_hash_table_size (c->acked_ids[victim]), >, before);
  }
  /* ...and the subscriber, now on another node, gets messages again. */
  while (g_hash_table_size (c->sub.delivered) <= delivered_before)
    {
      ring_batch (c, 3);
      TOCSIN_WAIT_UNTIL_SECONDS (TRUE, 1);
    }
  g_test_message ("the subscriber got %u messages before the kill, %u in all",
                  delivered_before, g_hash_table_size (c->sub.delivered));

  /* Every 200 is in the store of the node that answered it, as that webhook (its seq); no
   * webhook is stored twice in the cluster (a request sent again after a node had stored it
   * would be). */
  stored_seqs = g_hash_table_new (NULL, NULL);
  for (guint i = 0; i < N_NODES; i++)
    {
      gint64 last = tocsin_rel_last_id (c->nodes[i],
                                        json_object_get_int_member (c->channel, "id"));
      g_autoptr(GPtrArray) messages = NULL;

      g_test_message ("node%u: %u answered 200, %" G_GINT64_FORMAT " stored", i + 1,
                      g_hash_table_size (c->acked_ids[i]), last);
      g_assert_cmpint (last, >=, acked_max (c, i));
      tocsin_rel_assert_store (c->nodes[i], c->channel, last);
      stored_total += last;

      messages = tocsin_rel_replay_all (c->nodes[i], c->channel);
      for (guint m = 0; m < messages->len; m++)
        {
          JsonObject *message = messages->pdata[m];
          JsonObject *vars = json_object_get_object_member (message, "vars");
          gint64 id = json_object_get_int_member (message, "id");
          guint seq = (guint) g_ascii_strtoull (json_object_get_string_member (vars, "seq"),
                                                NULL, 10);
          gpointer acked_seq = g_hash_table_lookup (c->acked_ids[i], GINT_TO_POINTER ((gint) id));

          g_assert_cmpuint (seq, >, 0);
          if (g_hash_table_contains (stored_seqs, GUINT_TO_POINTER (seq)))
            g_error ("webhook %u is stored twice in the cluster (again on node%u)", seq, i + 1);
          g_hash_table_add (stored_seqs, GUINT_TO_POINTER (seq));
          if (acked_seq != NULL)
            g_assert_cmpuint (GPOINTER_TO_UINT (acked_seq), ==, seq);
        }
    }
  g_assert_cmpuint (stored_total, >=, c->acked);
  g_assert_cmpuint (stored_total, <=, c->acked + c->gateway_errors + c->transport_errors);

  config_line = g_strdup (strstr (tocsin_test_haproxy_config (c->haproxy), "retry-on"));
  *strchr (config_line, '\n') = '\0';
  g_test_message ("HAProxy: %s", config_line);

out:
  tocsin_rel_subscriber_clear (&c->sub);
  g_clear_pointer (&c->haproxy, tocsin_test_haproxy_free);
  for (guint i = 0; i < N_NODES; i++)
    {
      g_clear_pointer (&c->nodes[i], tocsin_test_relay_free);
      g_clear_pointer (&c->acked_ids[i], g_hash_table_unref);
    }
  g_clear_object (&c->session);
  g_clear_pointer (&c->channel, json_object_unref);
  g_free (c->hook_url);
  g_clear_pointer (&seed, tocsin_test_relay_free);
  tocsin_test_rmdir_recursive (seed_dir);
}

/* One HTTP/1.1 exchange with HAProxy from @source (a loopback address: another client). */
static guint
exchange_from (TocsinTestHaproxy *haproxy,
               const char        *source,
               const char        *head_lines,
               const char        *path)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) from = g_inet_address_new_from_string (source);
  g_autoptr(GSocketAddress) local = g_inet_socket_address_new (from, 0);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) remote = NULL;
  g_autoptr(GString) received = g_string_new (NULL);
  g_autofree char *request = NULL;
  g_autoptr(GError) error = NULL;

  remote = g_inet_socket_address_new (loopback, tocsin_test_haproxy_port (haproxy));
  g_assert_true (g_socket_bind (socket, local, FALSE, &error));
  g_assert_true (g_socket_connect (socket, remote, NULL, &error));
  g_assert_no_error (error);
  request = g_strdup_printf ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n",
                             path, head_lines);
  tocsin_rel_send_all (socket, request, strlen (request));
  TOCSIN_WAIT_UNTIL (tocsin_rel_peer_closed (socket, received));
  return tocsin_rel_parse_answer (received->str, NULL, NULL);
}

/* Behind HAProxy every request comes from HAProxy's address. With --trusted-proxies naming it,
 * the relay counts a token guesser by the address HAProxy puts in X-Forwarded-For: the guesser
 * gets 429, another client through the same HAProxy is answered, and a guesser that forges an
 * X-Forwarded-For of its own is still counted as itself (HAProxy appends the real one, and the
 * relay reads from the right). Without the option, HAProxy's address is the client, so the
 * guesser's 429 falls on everyone: the last assertion fails. */
static void
test_client_addresses (void)
{
  const char *args[] = { "--trusted-proxies=127.0.0.1", NULL };
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, args);
  g_autoptr(JsonObject) witness = tocsin_test_relay_create_channel (relay, "Witness", NULL, NULL,
                                                                    NULL, NULL);
  g_autofree char *hook = tocsin_rel_hook (witness, "?x=still+here");
  TocsinTestHaproxy *haproxy;
  guint status = 0, tries = 0;

  haproxy = tocsin_test_haproxy_start (&relay->port, 1);
  if (haproxy == NULL)
    return;
  tocsin_test_haproxy_wait_up (haproxy, G_MAXUINT);

  /* The guesser on 127.0.0.2, each time claiming to be someone else. */
  for (; tries < 200 && status != 429; tries++)
    {
      g_autofree char *guess = g_strdup_printf ("/t/guess%05u", tries);
      g_autofree char *forged = g_strdup_printf ("X-Forwarded-For: 198.51.100.%u\r\n",
                                                 1 + tries % 200);

      status = exchange_from (haproxy, "127.0.0.2", forged, guess);
      g_assert_true (status == 404 || status == 429);
    }
  g_test_message ("the guesser on 127.0.0.2 got 429 after %u unknown tokens", tries);
  g_assert_cmpuint (status, ==, 429);
  g_assert_cmpuint (exchange_from (haproxy, "127.0.0.2", "", hook), ==, 429);
  /* Another client through the same HAProxy still rings its channel. */
  g_assert_cmpuint (exchange_from (haproxy, "127.0.0.3", "", hook), ==, 200);
  tocsin_test_haproxy_free (haproxy);
}

/* A value that is not an address or a network is refused with a sentence, before serving. */
static void
test_trusted_proxies_refused (void)
{
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-proxies");
  g_autofree char *data_dir = g_strdup_printf ("--data-dir=%s", dir);
  g_autofree char *err = NULL;

  g_assert_cmpint (tocsin_test_relay_run (NULL, &err, "serve",
                                          "--trusted-proxies=127.0.0.1,haproxy",
                                          "--listen=127.0.0.1:0", data_dir, NULL), !=, 0);
  g_assert_nonnull (strstr (err, "“haproxy” is neither an IP address nor a network"));
  tocsin_test_rmdir_recursive (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cluster/haproxy/kill-one-node", test_kill_one_node);
  g_test_add_func ("/cluster/haproxy/client-addresses", test_client_addresses);
  g_test_add_func ("/cluster/haproxy/trusted-proxies-refused", test_trusted_proxies_refused);
  return g_test_run ();
}
