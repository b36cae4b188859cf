/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-cluster-postgres.c: three real relays (`serve --database=postgresql://…`) on one real
 * PostgreSQL (issue 16). Webhooks taken by two nodes at once reach subscribers on all three
 * exactly once and in id order; replay works from any node; rotating or deleting a channel on one
 * node closes its subscribers on the others within 5 s; a node killed with -9 under load loses
 * nothing it acknowledged for the subscribers on the others; connections to the database cut
 * under a node cost its subscribers nothing. Skipped, with the reason, where
 * PostgreSQL is not installed.
 */
#define G_LOG_DOMAIN "tocsin-test"

#include "config.h"

#include <string.h>
#include <sys/wait.h>

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>
#endif

#include "tocsin-relay-store-pg.h"
#include "tocsin-test-postgres.h"
#include "tocsin-test-relay.h"

#define N_NODES 3
/* Webhooks in flight at once, over both sending nodes. */
#define IN_FLIGHT 16

typedef struct
{
  TocsinTestPostgres *pg;
  TocsinTestRelay    *nodes[N_NODES];
  JsonObject         *channel;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  /* Every webhook of the load is one channel's: its budget must not be what is tested. */
  const char *args[] = { "--rate=100000", "--burst=100000", NULL };
  guint status = 0;
  g_autoptr(JsonNode) node = NULL;

  f->pg = tocsin_test_postgres_start_database ();
  if (f->pg == NULL)
    return;
  for (guint i = 0; i < N_NODES; i++)
    {
      f->nodes[i] = tocsin_test_relay_new (NULL, args);
      g_free (f->nodes[i]->database);
      f->nodes[i]->database = g_strdup (tocsin_test_postgres_conninfo (f->pg));
      tocsin_test_relay_spawn (f->nodes[i]);
    }
  /* Created on node A through the owner API (the relay is open on loopback). */
  node = tocsin_test_http_json (f->nodes[0], "POST", "/v1/channels", "application/json",
                                "{\"name\": \"Cluster\", \"title\": \"{{n}}\"}", NULL, &status);
  g_assert_cmpuint (status, ==, 201);
  f->channel = json_object_ref (json_node_get_object (node));
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  for (guint i = 0; i < N_NODES; i++)
    g_clear_pointer (&f->nodes[i], tocsin_test_relay_free);
  g_clear_pointer (&f->channel, json_object_unref);
  g_clear_pointer (&f->pg, tocsin_test_postgres_free);
}

static const char *
member (JsonObject *object,
        const char *name)
{
  return json_object_get_string_member (object, name);
}

/* ---- webhooks, many in flight ---- */

typedef struct
{
  guint   sent;
  guint   answered;
  GArray *acked;     /* gint64: the ids of the webhooks answered 200 */
} Load;

static void
posted (GObject      *source,
        GAsyncResult *result,
        gpointer      user_data)
{
  Load *load = user_data;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (source), result);
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (source), result,
                                                              NULL);

  load->answered++;
  if (body != NULL && soup_message_get_status (msg) == 200)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      gint64 id;

      g_assert_true (json_parser_load_from_data (parser, g_bytes_get_data (body, NULL),
                                                 g_bytes_get_size (body), NULL));
      id = json_object_get_int_member (json_node_get_object (json_parser_get_root (parser)),
                                       "id");
      g_array_append_val (load->acked, id);
    }
}

static void
post (Fixture         *f,
      TocsinTestRelay *node,
      Load            *load)
{
  g_autofree char *url = g_strdup_printf ("%s/t/%s", node->base_url,
                                          member (f->channel, "trigger_token"));
  g_autofree char *body = g_strdup_printf ("{\"n\": %u}", load->sent);
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", url);
  g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  soup_session_send_and_read_async (node->session, msg, G_PRIORITY_DEFAULT, NULL, posted, load);
  load->sent++;
}

static void
wait_room (Load *load)
{
  while (load->sent - load->answered >= IN_FLIGHT)
    g_main_context_iteration (NULL, TRUE);
}

/* ---- subscribers ---- */

typedef struct
{
  SoupWebsocketConnection *ws;
  GPtrArray               *frames;
} Subscriber;

static void
subscribe (Fixture         *f,
           TocsinTestRelay *node,
           const char      *query,
           Subscriber      *s)
{
  g_autofree char *path = g_strdup_printf ("/s/%s/ws%s", member (f->channel, "subscribe_token"),
                                           query);
  g_autoptr(GError) error = NULL;

  s->frames = g_ptr_array_new_with_free_func (g_free);
  s->ws = tocsin_test_websocket_connect (node, path, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (s->ws, s->frames);
}

static void
subscriber_clear (Subscriber *s)
{
  if (s->ws != NULL && soup_websocket_connection_get_state (s->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (s->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  g_clear_object (&s->ws);
  g_clear_pointer (&s->frames, g_ptr_array_unref);
}

/* The message ids @s received, asserting that each frame is a message (no gap). */
static GArray *
received_ids (Subscriber *s)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint64));

  for (guint i = 0; i < s->frames->len; i++)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      JsonObject *object;
      gint64 id;

      g_assert_true (json_parser_load_from_data (parser, s->frames->pdata[i], -1, NULL));
      object = json_node_get_object (json_parser_get_root (parser));
      if (json_object_has_member (object, "type"))
        g_error ("a subscriber got a %s frame: %s", member (object, "type"),
                 (const char *) s->frames->pdata[i]);
      id = json_object_get_int_member (object, "id");
      g_array_append_val (ids, id);
    }
  return ids;
}

static gint64
last_received (Subscriber *s)
{
  g_autoptr(GArray) ids = received_ids (s);

  return ids->len ? g_array_index (ids, gint64, ids->len - 1) : 0;
}

static gint64
max_acked (Load *load)
{
  gint64 max = 0;

  for (guint i = 0; i < load->acked->len; i++)
    max = MAX (max, g_array_index (load->acked, gint64, i));
  return max;
}

/* Exactly once, in order: strictly increasing ids, and every acknowledged one among them. */
static void
assert_exactly_once_in_order (Subscriber *s,
                              Load       *load,
                              const char *who)
{
  g_autoptr(GArray) ids = received_ids (s);
  g_autoptr(GHashTable) seen = g_hash_table_new (g_int64_hash, g_int64_equal);

  for (guint i = 0; i < ids->len; i++)
    {
      if (i > 0 && g_array_index (ids, gint64, i) <= g_array_index (ids, gint64, i - 1))
        g_error ("%s: id %" G_GINT64_FORMAT " came after %" G_GINT64_FORMAT, who,
                 g_array_index (ids, gint64, i), g_array_index (ids, gint64, i - 1));
      g_hash_table_add (seen, &g_array_index (ids, gint64, i));
    }
  for (guint i = 0; i < load->acked->len; i++)
    if (!g_hash_table_contains (seen, &g_array_index (load->acked, gint64, i)))
      g_error ("%s: acknowledged id %" G_GINT64_FORMAT " never arrived", who,
               g_array_index (load->acked, gint64, i));
  g_test_message ("%s: %u messages, in order, none twice, all %u acknowledged among them", who,
                  ids->len, load->acked->len);
}

/* Webhooks to nodes A and B at once reach subscribers on A, B and C exactly once, in id order;
 * then replay from C. */
static void
test_fan_out (Fixture       *f,
              gconstpointer  data)
{
  const guint total = 300;
  Subscriber subs[N_NODES] = { { 0 } };
  Load load = { 0, 0, g_array_new (FALSE, FALSE, sizeof (gint64)) };

  if (f->pg == NULL)
    return;
  for (guint i = 0; i < N_NODES; i++)
    subscribe (f, f->nodes[i], "", &subs[i]);

  for (guint i = 0; i < total; i++)
    {
      wait_room (&load);
      post (f, f->nodes[i % 2], &load);
    }
  TOCSIN_WAIT_UNTIL (load.answered == load.sent);
  g_assert_cmpuint (load.acked->len, ==, total);

  for (guint i = 0; i < N_NODES; i++)
    {
      g_autofree char *who = g_strdup_printf ("subscriber on node %c", 'A' + i);

      TOCSIN_WAIT_UNTIL (subs[i].frames->len >= total);
      assert_exactly_once_in_order (&subs[i], &load, who);
      g_assert_cmpuint (subs[i].frames->len, ==, total);
      g_assert_cmpint (last_received (&subs[i]), ==, total);
    }

  /* Replay from node C: everything, and from a cursor. */
  {
    Subscriber all = { 0 }, after = { 0 };
    g_autofree char *since = g_strdup_printf ("?since=%u", total / 2);
    g_autoptr(GArray) ids = NULL;

    subscribe (f, f->nodes[2], "?since=all", &all);
    subscribe (f, f->nodes[2], since, &after);
    TOCSIN_WAIT_UNTIL (all.frames->len >= total && after.frames->len >= total - total / 2);
    ids = received_ids (&all);
    for (guint i = 0; i < ids->len; i++)
      g_assert_cmpint (g_array_index (ids, gint64, i), ==, i + 1);
    g_clear_pointer (&ids, g_array_unref);
    ids = received_ids (&after);
    g_assert_cmpuint (ids->len, ==, total - total / 2);
    for (guint i = 0; i < ids->len; i++)
      g_assert_cmpint (g_array_index (ids, gint64, i), ==, total / 2 + i + 1);
    subscriber_clear (&all);
    subscriber_clear (&after);
  }

  for (guint i = 0; i < N_NODES; i++)
    subscriber_clear (&subs[i]);
  g_array_unref (load.acked);
}

static gboolean
is_closed (Subscriber *s)
{
  return soup_websocket_connection_get_state (s->ws) == SOUP_WEBSOCKET_STATE_CLOSED;
}

/* Rotating the subscribe token on node A closes the subscribers on B and C; deleting the
 * channel on A, those of the new token on C: each within 5 s. */
static void
test_rotate_delete (Fixture       *f,
                    gconstpointer  data)
{
  Subscriber on_b = { 0 }, on_c = { 0 }, again = { 0 };
  g_autofree char *auth = NULL, *rotate = NULL, *remove = NULL;
  const char *headers[3] = { "Authorization", NULL, NULL };
  g_autoptr(JsonNode) rotated = NULL;
  gint64 started;
  guint status = 0;

  if (f->pg == NULL)
    return;
  auth = g_strdup_printf ("Bearer %s", member (f->channel, "owner_key"));
  headers[1] = auth;
  rotate = g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT "/rotate-subscribe",
                            json_object_get_int_member (f->channel, "id"));
  remove = g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT,
                            json_object_get_int_member (f->channel, "id"));

  subscribe (f, f->nodes[1], "", &on_b);
  subscribe (f, f->nodes[2], "", &on_c);
  started = g_get_monotonic_time ();
  rotated = tocsin_test_http_json (f->nodes[0], "POST", rotate, NULL, NULL, headers, &status);
  g_assert_cmpuint (status, ==, 200);
  TOCSIN_WAIT_UNTIL_SECONDS (is_closed (&on_b) && is_closed (&on_c), 5);
  g_test_message ("rotation on A closed the subscribers on B and C in %" G_GINT64_FORMAT " ms",
                  (g_get_monotonic_time () - started) / 1000);

  /* The new token works on every node; deleting the channel on A ends it on C. */
  json_object_set_string_member (f->channel, "subscribe_token",
                                 member (json_node_get_object (rotated), "subscribe_token"));
  subscribe (f, f->nodes[2], "", &again);
  g_assert_cmpint (soup_websocket_connection_get_state (again.ws), ==,
                   SOUP_WEBSOCKET_STATE_OPEN);
  started = g_get_monotonic_time ();
  g_assert_cmpuint (tocsin_test_http (f->nodes[0], "DELETE", remove, NULL, NULL, 0, headers, NULL,
                                      NULL), ==, 200);
  TOCSIN_WAIT_UNTIL_SECONDS (is_closed (&again), 5);
  g_test_message ("deletion on A closed the subscriber on C in %" G_GINT64_FORMAT " ms",
                  (g_get_monotonic_time () - started) / 1000);

  subscriber_clear (&on_b);
  subscriber_clear (&on_c);
  subscriber_clear (&again);
}

/* kill -9 of node A while webhooks go to A and B: every webhook answered 200 (by either) reaches
 * the subscribers on B and C, once each, in order. */
static void
test_kill (Fixture       *f,
           gconstpointer  data)
{
  const guint total = 400;
  Subscriber on_b = { 0 }, on_c = { 0 };
  Load load = { 0, 0, g_array_new (FALSE, FALSE, sizeof (gint64)) };
  gboolean killed = FALSE;

  if (f->pg == NULL)
    return;
  subscribe (f, f->nodes[1], "", &on_b);
  subscribe (f, f->nodes[2], "", &on_c);

  for (guint i = 0; i < total; i++)
    {
      wait_room (&load);
      /* Mid-load, with webhooks to A in flight. */
      if (!killed && i == total / 3)
        {
          tocsin_test_relay_stop (f->nodes[0], TRUE);
          killed = TRUE;
        }
      post (f, f->nodes[!killed && i % 2 == 0 ? 0 : 1], &load);
    }
  TOCSIN_WAIT_UNTIL (load.answered == load.sent);
  g_assert_cmpuint (load.acked->len, >=, total - total / 3);

  TOCSIN_WAIT_UNTIL (last_received (&on_b) >= max_acked (&load)
                     && last_received (&on_c) >= max_acked (&load));
  assert_exactly_once_in_order (&on_b, &load, "subscriber on node B");
  assert_exactly_once_in_order (&on_c, &load, "subscriber on node C");
  g_test_message ("sent %u, acknowledged %u (node A killed after %u)", load.sent,
                  load.acked->len, total / 3);

  subscriber_clear (&on_b);
  subscriber_clear (&on_c);
  g_array_unref (load.acked);
}

/* Every connection of every node is cut (pg_terminate_backend) between two bursts of webhooks to
 * node A: B's listening connection comes back, and the notices sent while it was away are
 * covered by re-reading from the cursors; its subscriber misses nothing acknowledged. */
static void
test_listener_lost (Fixture       *f,
                    gconstpointer  data)
{
  const guint burst = 100;
  Subscriber on_b = { 0 };
  Load load = { 0, 0, g_array_new (FALSE, FALSE, sizeof (gint64)) };

  if (f->pg == NULL)
    return;
  subscribe (f, f->nodes[1], "", &on_b);
  for (guint round = 0; round < 3; round++)
    {
      g_autofree char *out = NULL;

      for (guint i = 0; i < burst; i++)
        {
          wait_room (&load);
          post (f, f->nodes[0], &load);
        }
      TOCSIN_WAIT_UNTIL (load.answered == load.sent);
      out = tocsin_test_postgres_psql (f->pg, "SELECT count (pg_terminate_backend (pid))"
                                       " FROM pg_stat_activity WHERE datname = current_database ()"
                                       " AND pid <> pg_backend_pid ()");
      g_test_message ("cut %s connections", g_strstrip (out));
    }
  /* One more burst once they are back (the first webhook after a cut may meet a dead connection
   * and be refused: it is not acknowledged then). */
  for (guint i = 0; i < burst; i++)
    {
      wait_room (&load);
      post (f, f->nodes[0], &load);
    }
  TOCSIN_WAIT_UNTIL (load.answered == load.sent);
  g_assert_cmpuint (load.acked->len, >=, 3 * burst);

  TOCSIN_WAIT_UNTIL (last_received (&on_b) >= max_acked (&load));
  assert_exactly_once_in_order (&on_b, &load, "subscriber on node B");
  subscriber_clear (&on_b);
  g_array_unref (load.acked);
}

/* (Re)opens @n subscribers on node A and returns over how many nodes they are. */
static guint
spread_over_workers (Fixture            *f,
                     TocsinTestPostgres *pg,
                     Subscriber         *subs,
                     guint               n)
{
  g_autofree char *rows = NULL, *nodes = NULL;

  for (guint i = 0; i < n; i++)
    {
      subscriber_clear (&subs[i]);
      subscribe (f, f->nodes[0], "", &subs[i]);
    }
  /* Presence is written off the main loop: wait for all of it. */
  TOCSIN_WAIT_UNTIL ((g_free (rows),
                      rows = tocsin_test_postgres_psql (pg, "SELECT count (*) FROM presence"),
                      g_ascii_strtoull (rows, NULL, 10) == n));
  nodes = tocsin_test_postgres_psql (pg, "SELECT count (DISTINCT node) FROM presence");
  g_test_message ("%u subscribers on %s workers", n, g_strstrip (nodes));
  return (guint) g_ascii_strtoull (nodes, NULL, 10);
}

/* `serve --workers=3`: three processes on one port (SO_REUSEPORT) take the subscribers between
 * them, and each subscriber gets every webhook once, in order, whichever worker took it. */
static void
test_workers (void)
{
  const char *args[] = { "--workers=3", "--rate=100000", "--burst=100000", NULL };
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start_database ();
  Fixture f = { 0 };
  Subscriber subs[12] = { { 0 } };
  Load load = { 0, 0, g_array_new (FALSE, FALSE, sizeof (gint64)) };
  g_autoptr(JsonNode) node = NULL;
  const guint total = 200;
  guint status = 0;

  if (pg == NULL)
    return;
  f.nodes[0] = tocsin_test_relay_new (NULL, args);
  g_free (f.nodes[0]->database);
  f.nodes[0]->database = g_strdup (tocsin_test_postgres_conninfo (pg));
  tocsin_test_relay_spawn (f.nodes[0]);
  node = tocsin_test_http_json (f.nodes[0], "POST", "/v1/channels", "application/json",
                                "{\"name\": \"Workers\"}", NULL, &status);
  g_assert_cmpuint (status, ==, 201);
  f.channel = json_object_ref (json_node_get_object (node));

  /* Each worker is a node with its own name: the subscribers are spread over more than one
   * (once more than one listens: the supervisor does not wait for them all to start). */
  TOCSIN_WAIT_UNTIL (spread_over_workers (&f, pg, subs, G_N_ELEMENTS (subs)) >= 2);

  for (guint i = 0; i < total; i++)
    {
      wait_room (&load);
      post (&f, f.nodes[0], &load);
    }
  TOCSIN_WAIT_UNTIL (load.answered == load.sent);
  g_assert_cmpuint (load.acked->len, ==, total);
  for (guint i = 0; i < G_N_ELEMENTS (subs); i++)
    {
      TOCSIN_WAIT_UNTIL (subs[i].frames->len >= total);
      assert_exactly_once_in_order (&subs[i], &load, "a subscriber of --workers=3");
      g_assert_cmpuint (subs[i].frames->len, ==, total);
      subscriber_clear (&subs[i]);
    }
  g_array_unref (load.acked);
  f.pg = g_steal_pointer (&pg);
  fixture_teardown (&f, NULL);
}

/* With SQLite, --workers is refused with a sentence: one process serves one SQLite file. */
static void
test_workers_need_postgres (void)
{
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-workers");
  g_autofree char *data_dir = g_strdup_printf ("--data-dir=%s", dir);
  g_autofree char *err = NULL;

  g_assert_cmpint (tocsin_test_relay_run (NULL, &err, "serve", "--workers=2",
                                          "--listen=127.0.0.1:0", data_dir, NULL), ==, 2);
  g_assert_nonnull (strstr (err, "--workers needs --database=postgresql://"));
  tocsin_test_rmdir_recursive (dir);
}

/* The frame @index of @frames once it has come, parsed. */
static JsonObject *
wait_frame (GPtrArray *frames,
            guint      index)
{
  g_autoptr(JsonParser) parser = json_parser_new ();

  TOCSIN_WAIT_UNTIL (frames->len > index);
  g_assert_true (json_parser_load_from_data (parser, frames->pdata[index], -1, NULL));
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

/* A call answered on node A (its /v1/ws subscriber acknowledges) is told to the /v1/ws
 * subscriber on node B, once. */
static void
test_acknowledge (Fixture       *f,
                  gconstpointer  data)
{
  SoupWebsocketConnection *apps[2] = { NULL, NULL };
  GPtrArray *frames[2];
  gint64 channel;
  Load load = { 0, 0, g_array_new (FALSE, FALSE, sizeof (gint64)) };

  if (f->pg == NULL)
    return;
  channel = json_object_get_int_member (f->channel, "id");
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonObject) subscribed = NULL;
      g_autofree char *subscribe = g_strdup_printf ("{\"type\":\"subscribe\",\"token\":\"%s\","
                                                    "\"since\":null}",
                                                    member (f->channel, "subscribe_token"));

      frames[i] = g_ptr_array_new_with_free_func (g_free);
      apps[i] = tocsin_test_websocket_connect (f->nodes[i], "/v1/ws", &error);
      g_assert_no_error (error);
      tocsin_test_websocket_collect (apps[i], frames[i]);
      soup_websocket_connection_send_text (apps[i], subscribe);
      subscribed = wait_frame (frames[i], 0);
      g_assert_cmpstr (member (subscribed, "type"), ==, "subscribed");
    }
  post (f, f->nodes[0], &load);
  TOCSIN_WAIT_UNTIL (load.answered == load.sent);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(JsonObject) message = wait_frame (frames[i], 1);

      g_assert_cmpstr (member (message, "type"), ==, "message");
    }

  {
    g_autofree char *ack = g_strdup_printf ("{\"type\":\"ack\",\"channel\":%" G_GINT64_FORMAT
                                            ",\"id\":%" G_GINT64_FORMAT ",\"by\":\"Ada Lovelace\"}",
                                            channel, g_array_index (load.acked, gint64, 0));
    g_autoptr(JsonObject) told_a = NULL, told_b = NULL;

    soup_websocket_connection_send_text (apps[0], ack);
    told_a = wait_frame (frames[0], 2);
    told_b = wait_frame (frames[1], 2);
    g_assert_cmpstr (member (told_b, "type"), ==, "acknowledged");
    g_assert_cmpint (json_object_get_int_member (told_b, "channel"), ==, channel);
    g_assert_cmpstr (member (told_b, "by"), ==, "Ada Lovelace");
    g_assert_cmpstr (member (told_a, "type"), ==, "acknowledged");
  }
  /* Once: another webhook reaches both, and nothing else came to B in between. */
  post (f, f->nodes[0], &load);
  TOCSIN_WAIT_UNTIL (load.answered == load.sent);
  {
    g_autoptr(JsonObject) next_b = wait_frame (frames[1], 3);

    g_assert_cmpstr (member (next_b, "type"), ==, "message");
  }

  for (guint i = 0; i < 2; i++)
    {
      soup_websocket_connection_close (apps[i], SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
      g_object_unref (apps[i]);
      g_ptr_array_unref (frames[i]);
    }
  g_array_unref (load.acked);
}

/* One webhook, answered (with whatever status): TRUE. */
static gboolean
post_answered (Fixture         *f,
               TocsinTestRelay *node,
               Load            *load)
{
  post (f, node, load);
  TOCSIN_WAIT_UNTIL (load->answered == load->sent);
  return TRUE;
}

/* PostgreSQL stopped under a node: webhooks and new streams get 503 with Retry-After (never 404:
 * the token is not unknown), nothing answered 200 is lost, and once the database is back
 * webhooks are taken again and the subscriber's stream goes on, in order. */
static void
test_database_down (void)
{
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start ();
  g_autoptr(SoupMessageHeaders) headers = NULL;
  Fixture f = { 0 };
  Subscriber sub = { 0 };
  Load load = { 0, 0, g_array_new (FALSE, FALSE, sizeof (gint64)) };
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *hook = NULL;
  guint status = 0;

  if (pg == NULL)
    return;
  f.nodes[0] = tocsin_test_relay_new (NULL, NULL);
  g_free (f.nodes[0]->database);
  f.nodes[0]->database = g_strdup (tocsin_test_postgres_conninfo (pg));
  tocsin_test_relay_spawn (f.nodes[0]);
  node = tocsin_test_http_json (f.nodes[0], "POST", "/v1/channels", "application/json",
                                "{\"name\": \"Down\"}", NULL, &status);
  g_assert_cmpuint (status, ==, 201);
  f.channel = json_object_ref (json_node_get_object (node));
  hook = g_strdup_printf ("/t/%s", member (f.channel, "trigger_token"));
  subscribe (&f, f.nodes[0], "", &sub);

  for (guint i = 0; i < 5; i++)
    post (&f, f.nodes[0], &load);
  TOCSIN_WAIT_UNTIL (load.answered == load.sent);
  g_assert_cmpuint (load.acked->len, ==, 5);

  tocsin_test_postgres_stop (pg);
  for (guint i = 0; i < 3; i++)
    {
      g_clear_pointer (&headers, soup_message_headers_unref);
      g_assert_cmpuint (tocsin_test_http (f.nodes[0], "POST", hook, "application/json", "{}", -1,
                                          NULL, NULL, &headers), ==, 503);
      g_assert_nonnull (soup_message_headers_get_one (headers, "Retry-After"));
    }
  /* A stream opened meanwhile, or the subscribe page: 503 too, not "no channel has this
   * link". */
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *path = g_strdup_printf ("/s/%s%s", member (f.channel, "subscribe_token"),
                                               i == 0 ? "/json" : "");

      g_clear_pointer (&headers, soup_message_headers_unref);
      g_assert_cmpuint (tocsin_test_http (f.nodes[0], "GET", path, NULL, NULL, 0, NULL, NULL,
                                          &headers), ==, 503);
      g_assert_nonnull (soup_message_headers_get_one (headers, "Retry-After"));
    }

  tocsin_test_postgres_restart (pg);
  /* The first call on each connection may meet it dead (503) and reopen it. */
  TOCSIN_WAIT_UNTIL (post_answered (&f, f.nodes[0], &load) && load.acked->len > 5);
  for (guint i = 0; i < 5; i++)
    post (&f, f.nodes[0], &load);
  TOCSIN_WAIT_UNTIL (load.answered == load.sent);

  TOCSIN_WAIT_UNTIL (last_received (&sub) >= max_acked (&load));
  assert_exactly_once_in_order (&sub, &load, "the subscriber");
  subscriber_clear (&sub);
  g_array_unref (load.acked);
  f.pg = g_steal_pointer (&pg);
  fixture_teardown (&f, NULL);
}

#ifdef HAVE_LIBPQ
/* Retention runs once for the cluster: a node prunes only when no other node holds the prune
 * lock and nobody pruned within half the interval. */
static void
test_prune_once (void)
{
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start_database ();
  g_autoptr(TocsinRelayStorePg) a = NULL, b = NULL;
  g_autoptr(GError) error = NULL;
  gint64 now = g_get_real_time () / 1000;
  const gint64 interval = 60 * 1000;
  PGconn *holder;
  gboolean ran = FALSE;

  if (pg == NULL)
    return;
  a = tocsin_relay_store_pg_open (tocsin_test_postgres_conninfo (pg), &error);
  g_assert_no_error (error);
  b = tocsin_relay_store_pg_open (tocsin_test_postgres_conninfo (pg), &error);
  g_assert_no_error (error);

  g_assert_true (tocsin_relay_store_pg_prune_exclusive (a, 3600, now, interval, &ran, &error));
  g_assert_no_error (error);
  g_assert_true (ran);
  /* Node B a moment later: A pruned just now. */
  g_assert_true (tocsin_relay_store_pg_prune_exclusive (b, 3600, now + 1000, interval, &ran,
                                                        &error));
  g_assert_false (ran);

  /* A minute later, while another session holds the lock: not now either. */
  holder = PQconnectdb (tocsin_test_postgres_conninfo (pg));
  g_assert_cmpint (PQstatus (holder), ==, CONNECTION_OK);
  PQclear (PQexec (holder, "SELECT pg_advisory_lock (112114117110101)"));
  g_assert_true (tocsin_relay_store_pg_prune_exclusive (b, 3600, now + interval, interval, &ran,
                                                        &error));
  g_assert_false (ran);
  PQclear (PQexec (holder, "SELECT pg_advisory_unlock (112114117110101)"));
  PQfinish (holder);
  g_assert_true (tocsin_relay_store_pg_prune_exclusive (b, 3600, now + interval, interval, &ran,
                                                        &error));
  g_assert_no_error (error);
  g_assert_true (ran);
}
#endif

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/cluster/postgres/fan-out", test_fan_out);
  ADD ("/cluster/postgres/rotate-delete", test_rotate_delete);
  ADD ("/cluster/postgres/kill", test_kill);
  ADD ("/cluster/postgres/listener-lost", test_listener_lost);
  ADD ("/cluster/postgres/acknowledge", test_acknowledge);
  g_test_add_func ("/cluster/postgres/workers", test_workers);
  g_test_add_func ("/cluster/workers-need-postgres", test_workers_need_postgres);
  g_test_add_func ("/cluster/postgres/database-down", test_database_down);
#ifdef HAVE_LIBPQ
  g_test_add_func ("/cluster/postgres/prune-once", test_prune_once);
#endif
  return g_test_run ();
}
