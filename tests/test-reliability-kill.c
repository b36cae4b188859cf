/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-reliability-kill.c: zero loss and zero duplicates when the relay is killed with SIGKILL
 * under load. A sender rings a channel at a steady rate; a subscriber on /s/TOKEN/ws reconnects
 * whenever its connection drops and resumes with ?since=<last id it saw>; the relay is killed
 * (kill -9) and restarted on the same data dir several times along the way. Every message the
 * relay acknowledged (200 with an id) must reach the subscriber exactly once.
 *
 * Quick mode (the default, in CI): 200 webhooks/s for 4 s, one kill. With -m slow (suite
 * reliability): 500 webhooks/s for 30 s, three kills. The figures are printed as TAP comments.
 */
#define G_LOG_DOMAIN "test-reliability"

#include "config.h"

#include <string.h>

#include "tocsin-test-reliability.h"

/* In-flight webhooks at most: a sender that waits rather than queueing without bound. */
#define MAX_IN_FLIGHT 256

typedef struct
{
  TocsinTestRelay         *relay;
  JsonObject              *channel;
  SoupSession             *session;

  /* Sender */
  guint                    sent;
  guint                    acked;
  guint                    failed;       /* no answer (killed in flight) or not 200 */
  guint                    in_flight;
  GHashTable              *acked_seq;    /* id → seq the sender put in that message */

  TocsinRelSubscriber      sub;          /* reconnects and resumes after every kill */
} Load;

typedef struct
{
  Load *load;
  guint seq;
} Ring;

static void
ring_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Ring *ring = user_data;
  Load *load = ring->load;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (source), result);
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, NULL);

  load->in_flight--;
  if (body != NULL && soup_message_get_status (msg) == 200)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();

      if (json_parser_load_from_data (parser, g_bytes_get_data (body, NULL),
                                      g_bytes_get_size (body), NULL) &&
          JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        {
          JsonObject *reply = json_node_get_object (json_parser_get_root (parser));
          gint64 id = json_object_get_int_member_with_default (reply, "id", 0);

          g_assert_cmpint (id, >, 0);
          /* An id acknowledged twice for two different messages would be a lost message. */
          g_assert_false (g_hash_table_contains (load->acked_seq, GINT_TO_POINTER ((gint) id)));
          g_hash_table_insert (load->acked_seq, GINT_TO_POINTER ((gint) id),
                               GUINT_TO_POINTER (ring->seq));
          load->acked++;
        }
      else
        load->failed++;
    }
  else
    load->failed++;
  g_free (ring);
}

static void
send_one (Load *load)
{
  g_autofree char *url = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  Ring *ring = g_new0 (Ring, 1);

  ring->load = load;
  ring->seq = ++load->sent;
  url = g_strdup_printf ("%s/t/%s?seq=%u&server_name=load", load->relay->base_url,
                         json_object_get_string_member (load->channel, "trigger_token"),
                         ring->seq);
  msg = soup_message_new ("GET", url);
  load->in_flight++;
  soup_session_send_and_read_async (load->session, msg, G_PRIORITY_DEFAULT, NULL, ring_done,
                                    ring);
}

static void
run_load (guint rate,
          guint seconds,
          guint kills)
{
  const char *args[] = { "--rate=100000", "--burst=100000", NULL };
  Load load = { 0, };
  gint64 start, now, deadline;
  guint next_kill = 1;
  guint acked_at_start = 0;
  guint lost = 0, dup = 0, delivered = 0, mismatched = 0;
  GHashTableIter iter;
  gpointer key, value;

  load.relay = tocsin_test_relay_start (NULL, args);
  load.channel = tocsin_test_relay_create_channel (load.relay, "Load", "{{server_name}}",
                                                  "seq {{seq}}", NULL, NULL);
  load.session = soup_session_new_with_options ("max-conns", 512, "max-conns-per-host", 128,
                                                "timeout", 30, NULL);
  load.acked_seq = g_hash_table_new (NULL, NULL);
  tocsin_rel_subscriber_init (&load.sub, load.relay, NULL, load.channel, load.session);

  tocsin_rel_subscriber_connect (&load.sub);
  TOCSIN_WAIT_UNTIL (load.sub.ws != NULL);

  start = g_get_monotonic_time ();
  for (;;)
    {
      gint64 elapsed;
      guint due;

      now = g_get_monotonic_time ();
      elapsed = now - start;
      /* On a slow machine (or under valgrind) the kills may come later than planned, and a
       * restart may take longer than the rest of the schedule: the run lasts until all of them
       * have happened and the last relay has acknowledged some messages of its own, which the
       * subscriber can only get by reconnecting. */
      if (elapsed >= (gint64) seconds * G_USEC_PER_SEC && next_kill > kills &&
          load.acked >= acked_at_start + 10)
        break;

      /* Keep to the schedule: as many as are due by now, within the in-flight bound. */
      due = (guint) (elapsed * rate / G_USEC_PER_SEC);
      while (load.sent < due && load.in_flight < MAX_IN_FLIGHT)
        send_one (&load);

      /* Kill -9 at evenly spaced moments, once the relay has acknowledged something since it
       * last started (so that every kill lands on a relay under load), and restart it on the
       * same data dir. */
      if (next_kill <= kills &&
          elapsed >= (gint64) seconds * G_USEC_PER_SEC * next_kill / (kills + 1) &&
          load.acked >= acked_at_start + 10)
        {
          g_test_message ("kill -9 #%u at %.1f s (sent %u, acked %u)", next_kill,
                          elapsed / 1e6, load.sent, load.acked);
          tocsin_test_relay_stop (load.relay, TRUE);
          /* Let the requests that were in flight fail before the new relay appears. */
          while (load.in_flight > 0)
            g_main_context_iteration (NULL, TRUE);
          tocsin_test_relay_restart (load.relay);
          acked_at_start = load.acked;
          next_kill++;
        }

      tocsin_rel_subscriber_connect (&load.sub);
      g_main_context_iteration (NULL, FALSE);
      if (load.in_flight >= MAX_IN_FLIGHT)
        g_usleep (200);
    }

  /* Every answer in, then every acknowledged id delivered (or the deadline). */
  deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (load.in_flight > 0 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (load.in_flight, ==, 0);
  for (;;)
    {
      gboolean all = TRUE;

      g_hash_table_iter_init (&iter, load.acked_seq);
      while (all && g_hash_table_iter_next (&iter, &key, NULL))
        all = g_hash_table_contains (load.sub.delivered, key);
      if (all || g_get_monotonic_time () > deadline)
        break;
      tocsin_rel_subscriber_connect (&load.sub);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
  /* A little longer, so that a late duplicate would be seen too. */
  {
    gint64 settle = g_get_monotonic_time () + G_USEC_PER_SEC / 2;

    while (g_get_monotonic_time () < settle)
      {
        g_main_context_iteration (NULL, FALSE);
        g_usleep (1000);
      }
  }

  g_hash_table_iter_init (&iter, load.acked_seq);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      if (!g_hash_table_contains (load.sub.delivered, key))
        lost++;
      else if (g_hash_table_lookup (load.sub.delivered_seq, key) != value)
        mismatched++;
    }
  g_hash_table_iter_init (&iter, load.sub.delivered);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      delivered++;
      dup += GPOINTER_TO_UINT (value) - 1;
    }

  /* The figures of issue 6, as TAP comments. */
  g_test_message ("rate=%u/s seconds=%u kills=%u", rate, seconds, kills);
  g_test_message ("sent=%u acked=%u delivered=%u lost=%u dup=%u", load.sent, load.acked,
                  delivered, lost, dup);
  g_test_message ("unacked (in flight at a kill or refused)=%u delivered-but-unacked=%u "
                  "content-mismatch=%u out-of-order=%u reconnects=%u bad-frames=%u",
                  load.failed, delivered - (load.acked - lost), mismatched, load.sub.out_of_order,
                  load.sub.reconnects, load.sub.bad_frames);

  g_assert_cmpuint (load.acked, >, 0);
  g_assert_cmpuint (lost, ==, 0);
  g_assert_cmpuint (dup, ==, 0);
  g_assert_cmpuint (mismatched, ==, 0);
  g_assert_cmpuint (load.sub.bad_frames, ==, 0);
  /* The subscriber reconnected after every kill. */
  g_assert_cmpuint (load.sub.reconnects, >=, kills + 1);
  /* Nothing stored is held back: the subscriber comes to the store's last id (messages that
   * were stored but not acknowledged, in flight at a kill, may still be arriving: under
   * valgrind they came after the settling above). */
  {
    gint64 channel_id = json_object_get_int_member (load.channel, "id");
    gint64 last_id = tocsin_rel_last_id (load.relay, channel_id);

    TOCSIN_WAIT_UNTIL ((tocsin_rel_subscriber_connect (&load.sub), load.sub.cursor >= last_id));
    g_assert_cmpint (last_id, ==, load.sub.cursor);
  }

  tocsin_rel_subscriber_clear (&load.sub);
  g_hash_table_unref (load.acked_seq);
  g_clear_object (&load.session);
  json_object_unref (load.channel);
  tocsin_test_relay_free (load.relay);
}

static void
test_kill_under_load (void)
{
  if (g_test_slow ())
    run_load (500, 30, 3);
  else
    run_load (200, 4, 1);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/reliability/kill/under-load", test_kill_under_load);
  return g_test_run ();
}
