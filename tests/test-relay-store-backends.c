/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-store-backends.c: the relay's store against its backends (issue 16), on a real
 * PostgreSQL that tests/tocsin-test-postgres.c starts in a temp dir. The "sqlite/same" and
 * "postgresql/same" paths are the same cases on both (two handles on one database standing for
 * two nodes); the "postgres" paths are PostgreSQL's own (concurrent nodes, restart, notices).
 */
#define G_LOG_DOMAIN "tocsin-test"

#include "config.h"

#include <string.h>

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>
#endif

#include "tocsin-token.h"
#include "tocsin-relay-actions.h"
#include "tocsin-relay-store-pg.h"
#include "tocsin-test-postgres.h"
#include "tocsin-test-relay.h"

/* The helper gives a server that takes SQL on its socket and on 127.0.0.1:PORT, keeps the data
 * across a restart, and is reachable again after it. */
static void
test_postgres_helper (void)
{
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start ();
  g_autofree char *answer = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *after = NULL;

  if (pg == NULL)
    return;
  expected = g_strdup_printf ("postgresql://tocsin@127.0.0.1:%u/tocsin",
                              tocsin_test_postgres_port (pg));
  g_assert_cmpstr (tocsin_test_postgres_conninfo (pg), ==, expected);

  answer = tocsin_test_postgres_psql (pg, "CREATE TABLE t (v text); "
                                          "INSERT INTO t VALUES ('kept'); "
                                          "SELECT current_database() || ' ' || "
                                          "split_part(current_setting('server_version'), '.', 1)");
  g_strstrip (answer);
  g_assert_true (g_str_has_prefix (answer, "tocsin "));
  g_assert_cmpint (atoi (answer + strlen ("tocsin ")), >=, 15);

  tocsin_test_postgres_restart (pg);
  after = tocsin_test_postgres_psql (pg, "SELECT v FROM t");
  g_assert_cmpstr (g_strstrip (after), ==, "kept");
}

/* A test that dies (abort, or meson's timeout) leaves no PostgreSQL running and no temp dir. */
static void
test_postgres_helper_crash (void)
{
  g_autofree char *note_dir = NULL, *note = NULL, *dir = NULL;

  if (g_test_subprocess ())
    {
      TocsinTestPostgres *pg = tocsin_test_postgres_start ();

      if (pg == NULL)
        return;
      g_file_set_contents (g_getenv ("TOCSIN_PG_NOTE"), tocsin_test_postgres_dir (pg), -1, NULL);
      abort ();
    }

  note_dir = tocsin_test_make_tmpdir ("tocsin-pg-note");
  note = g_build_filename (note_dir, "dir", NULL);
  g_setenv ("TOCSIN_PG_NOTE", note, TRUE);
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_unsetenv ("TOCSIN_PG_NOTE");
  if (!g_file_get_contents (note, &dir, NULL, NULL))
    {
      /* The child could not start PostgreSQL and skipped; say why here too. */
      g_test_trap_assert_passed ();
      tocsin_test_rmdir_recursive (note_dir);
      g_test_skip ("PostgreSQL is not installed (see /relay/store-backends/postgres-helper)");
      return;
    }
  g_test_trap_assert_failed ();
  TOCSIN_WAIT_UNTIL (!g_file_test (dir, G_FILE_TEST_EXISTS));
  tocsin_test_rmdir_recursive (note_dir);
}

#ifdef HAVE_LIBPQ

static TocsinMessage *
new_message (const char *title,
             gint64      time_ms)
{
  TocsinMessage *message = tocsin_message_new ();

  g_free (message->title);
  message->title = g_strdup (title);
  message->time_ms = time_ms ? time_ms : g_get_real_time () / 1000;
  return message;
}

static TocsinRelayStorePg *
open_node (TocsinTestPostgres *pg)
{
  g_autoptr(GError) error = NULL;
  TocsinRelayStorePg *node = tocsin_relay_store_pg_open (tocsin_test_postgres_conninfo (pg),
                                                         &error);

  g_assert_no_error (error);
  g_assert_nonnull (node);
  return node;
}

static TocsinRelayChannel *
create_channel (TocsinRelayStorePg *node,
                const char         *name)
{
  TocsinRelayChannelSpec spec = { .name = name, .title = "{{title}}" };
  g_autoptr(GError) error = NULL;
  TocsinRelayChannel *channel = tocsin_relay_store_pg_create_channel (node, &spec, "webhook",
                                                                      NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (channel);
  return channel;
}

/* Commits one message; returns the result (asserts the transaction committed). */
static TocsinRelayCommit *
commit_one (TocsinRelayStorePg *node,
            gint64              channel_id,
            const char         *title,
            gint64              time_ms,
            const char         *key_hash,
            const char         *content_hash,
            GError            **write_error)
{
  g_autoptr(TocsinMessage) message = new_message (title, time_ms);
  TocsinRelayStorePgWrite write = { channel_id, message, key_hash, content_hash, 86400 };
  g_autoptr(GError) error = NULL;
  TocsinRelayCommit *commit = NULL;
  GError *per_write = NULL;

  g_assert_true (tocsin_relay_store_pg_commit (node, &write, 1, &commit, &per_write, &error));
  g_assert_no_error (error);
  if (per_write)
    g_propagate_error (write_error, per_write);
  return commit;
}

static TocsinRelayReplayPage *
replay (TocsinRelayStorePg *node,
        gint64              channel_id,
        gint64              after_id)
{
  g_autoptr(GError) error = NULL;
  TocsinRelayReplayPage *page = tocsin_relay_store_pg_replay_page (node, channel_id, after_id, 0,
                                                                   86400, &error);

  g_assert_no_error (error);
  return page;
}

static char *
page_title (TocsinRelayReplayPage *page,
            guint                  i)
{
  GBytes *bytes = g_ptr_array_index (page->messages, i);
  gsize length;
  const char *data = g_bytes_get_data (bytes, &length);
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinMessage) message = tocsin_message_new_from_data (data, length, &error);

  g_assert_no_error (error);
  g_assert_cmpint (message->id, ==, g_array_index (page->ids, gint64, i));
  return g_strdup (message->title);
}

/* Create, find by either token (on another node too), rotate, delete. */
static void
test_pg_channels (void)
{
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start_database ();
  g_autoptr(TocsinRelayStorePg) a = NULL, b = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL, found = NULL, rotated = NULL, gone = NULL;
  g_autoptr(TocsinRelayChannel) by_new = NULL, by_old = NULL, by_subscribe = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *owner_key = NULL;
  TocsinRelayChannelSpec spec = { .name = "  Builds  ", .description = "CI", .title = "{{t}}" };

  if (pg == NULL)
    return;
  a = open_node (pg);
  b = open_node (pg);

  channel = tocsin_relay_store_pg_create_channel (a, &spec, "webhook", &owner_key, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (channel->name, ==, "Builds");
  g_assert_cmpstr (channel->description, ==, "CI");
  g_assert_cmpstr (channel->title_source, ==, "{{t}}");
  g_assert_nonnull (channel->title);
  g_assert_cmpint (channel->last_id, ==, 0);
  g_assert_false (channel->direct);
  g_assert_true (tocsin_token_is_wellformed (channel->trigger_token));
  g_assert_cmpstr (channel->trigger_token, !=, channel->subscribe_token);
  g_assert_nonnull (owner_key);
  g_assert_cmpstr (channel->forwards_source, ==, "[]");
  g_assert_cmpuint (channel->forwards->len, ==, 0);
  g_assert_cmpuint (channel->actions->len, ==, 0);

  /* The other node finds it by either token; a wrong token finds nothing, without error. */
  found = tocsin_relay_store_pg_find_by_trigger (b, channel->trigger_token, &error);
  g_assert_no_error (error);
  g_assert_nonnull (found);
  g_assert_cmpint (found->id, ==, channel->id);
  by_subscribe = tocsin_relay_store_pg_find_by_subscribe (b, channel->subscribe_token, &error);
  g_assert_no_error (error);
  g_assert_cmpint (by_subscribe->id, ==, channel->id);
  g_assert_null (tocsin_relay_store_pg_find_by_trigger (b, channel->subscribe_token, &error));
  g_assert_no_error (error);
  g_assert_null (tocsin_relay_store_pg_find_by_trigger (b, "", &error));
  g_assert_no_error (error);

  /* Rotated on one node: the old token is dead on the other. */
  rotated = tocsin_relay_store_pg_rotate_trigger (a, channel->id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (rotated->trigger_token, !=, channel->trigger_token);
  g_assert_cmpstr (rotated->subscribe_token, ==, channel->subscribe_token);
  by_old = tocsin_relay_store_pg_find_by_trigger (b, channel->trigger_token, &error);
  g_assert_no_error (error);
  g_assert_null (by_old);
  by_new = tocsin_relay_store_pg_find_by_trigger (b, rotated->trigger_token, &error);
  g_assert_no_error (error);
  g_assert_cmpint (by_new->id, ==, channel->id);

  /* Deleted, with its messages. */
  g_clear_pointer (&found, tocsin_relay_channel_unref);
  tocsin_relay_commit_free (commit_one (a, channel->id, "kept?", 0, NULL, NULL, NULL));
  g_assert_true (tocsin_relay_store_pg_delete_channel (b, channel->id, &error));
  g_assert_no_error (error);
  gone = tocsin_relay_store_pg_find_by_id (a, channel->id, &error);
  g_assert_no_error (error);
  g_assert_null (gone);
  g_assert_false (tocsin_relay_store_pg_delete_channel (a, channel->id, &error));
  g_assert_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (tocsin_relay_store_pg_rotate_subscribe (a, channel->id, &error));
  g_assert_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (tocsin_relay_store_pg_replay_page (a, channel->id, -1, 0, 86400, &error));
  g_assert_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  {
    g_autofree char *left = tocsin_test_postgres_psql (pg, "SELECT count(*) FROM messages");

    g_assert_cmpstr (g_strstrip (left), ==, "0");
  }
}

/* A batch is numbered in order; replay gives the messages back from any cursor; a write to a
 * deleted channel fails alone. */
static void
test_pg_commit_replay (void)
{
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start_database ();
  g_autoptr(TocsinRelayStorePg) node = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL, other = NULL;
  g_autoptr(TocsinRelayReplayPage) all = NULL, after = NULL;
  g_autoptr(GError) error = NULL;
  TocsinMessage *messages[4];
  TocsinRelayStorePgWrite writes[4];
  TocsinRelayCommit *commits[4];
  GError *errors[4];

  if (pg == NULL)
    return;
  node = open_node (pg);
  channel = create_channel (node, "one");
  other = create_channel (node, "deleted");
  g_assert_true (tocsin_relay_store_pg_delete_channel (node, other->id, &error));
  g_assert_no_error (error);

  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *title = g_strdup_printf ("m%u", i);

      messages[i] = new_message (title, 0);
      writes[i] = (TocsinRelayStorePgWrite) { i == 2 ? other->id : channel->id, messages[i],
                                              NULL, NULL, 86400 };
    }
  g_assert_true (tocsin_relay_store_pg_commit (node, writes, 4, commits, errors, &error));
  g_assert_no_error (error);
  g_assert_cmpint (commits[0]->id, ==, 1);
  g_assert_cmpint (commits[1]->id, ==, 2);
  g_assert_null (commits[2]);
  g_assert_error (errors[2], TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND);
  g_assert_cmpint (commits[3]->id, ==, 3);
  g_assert_false (commits[0]->duplicate);
  g_assert_nonnull (commits[0]->message);
  for (guint i = 0; i < 4; i++)
    {
      g_clear_pointer (&commits[i], tocsin_relay_commit_free);
      g_clear_error (&errors[i]);
      tocsin_message_free (messages[i]);
    }

  all = replay (node, channel->id, -1);
  g_assert_cmpuint (all->ids->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      static const char *const expected[] = { "m0", "m1", "m3" };
      g_autofree char *title = page_title (all, i);

      g_assert_cmpint (g_array_index (all->ids, gint64, i), ==, i + 1);
      g_assert_cmpstr (title, ==, expected[i]);
    }
  g_assert_cmpint (all->gap_from, ==, 0);
  after = replay (node, channel->id, 1);
  g_assert_cmpuint (after->ids->len, ==, 2);
  g_assert_cmpint (g_array_index (after->ids, gint64, 0), ==, 2);
  g_assert_cmpint (after->gap_from, ==, 0);
}

typedef struct
{
  TocsinTestPostgres *pg;
  gint64              channel_id;
  const char         *node_name;
  guint               batches;
  guint               per_batch;
  GArray             *ids;       /* the ids this node was given, in commit order */
} Writer;

static gpointer
writer_thread (gpointer data)
{
  Writer *w = data;
  g_autoptr(TocsinRelayStorePg) node = open_node (w->pg);

  for (guint b = 0; b < w->batches; b++)
    {
      TocsinMessage *messages[16];
      TocsinRelayStorePgWrite writes[16];
      TocsinRelayCommit *commits[16];
      GError *errors[16];
      g_autoptr(GError) error = NULL;

      g_assert_cmpuint (w->per_batch, <=, G_N_ELEMENTS (messages));
      for (guint i = 0; i < w->per_batch; i++)
        {
          g_autofree char *title = g_strdup_printf ("%s-%u", w->node_name, b * w->per_batch + i);

          messages[i] = new_message (title, 0);
          writes[i] = (TocsinRelayStorePgWrite) { w->channel_id, messages[i], NULL, NULL, 86400 };
        }
      g_assert_true (tocsin_relay_store_pg_commit (node, writes, w->per_batch, commits, errors,
                                                   &error));
      g_assert_no_error (error);
      for (guint i = 0; i < w->per_batch; i++)
        {
          g_assert_no_error (errors[i]);
          g_array_append_val (w->ids, commits[i]->id);
          tocsin_relay_commit_free (commits[i]);
          tocsin_message_free (messages[i]);
        }
    }
  return NULL;
}

/* Two nodes writing to one channel at once: every id from 1 to the total once, each node's
 * messages in the order it sent them, and replay (from either node) in id order. */
static void
test_pg_two_nodes_order (void)
{
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start_database ();
  g_autoptr(TocsinRelayStorePg) reader = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(TocsinRelayReplayPage) page = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new (g_int64_hash, g_int64_equal);
  Writer writers[2];
  GThread *threads[2];
  guint next[2] = { 0, 0 };
  guint total;

  if (pg == NULL)
    return;
  reader = open_node (pg);
  channel = create_channel (reader, "busy");
  for (guint n = 0; n < 2; n++)
    {
      writers[n] = (Writer) { pg, channel->id, n == 0 ? "a" : "b", 25, 8,
                              g_array_new (FALSE, FALSE, sizeof (gint64)) };
      threads[n] = g_thread_new ("node", writer_thread, &writers[n]);
    }
  for (guint n = 0; n < 2; n++)
    g_thread_join (threads[n]);
  total = 2 * 25 * 8;

  for (guint n = 0; n < 2; n++)
    {
      g_assert_cmpuint (writers[n].ids->len, ==, total / 2);
      for (guint i = 0; i < writers[n].ids->len; i++)
        {
          gint64 *id = &g_array_index (writers[n].ids, gint64, i);

          g_assert_cmpint (*id, >=, 1);
          g_assert_cmpint (*id, <=, total);
          g_assert_false (g_hash_table_contains (seen, id));
          g_hash_table_add (seen, id);
          if (i > 0)
            g_assert_cmpint (*id, >, g_array_index (writers[n].ids, gint64, i - 1));
        }
    }

  page = replay (reader, channel->id, -1);
  g_assert_cmpuint (page->ids->len, ==, total);
  for (guint i = 0; i < total; i++)
    {
      g_autofree char *title = page_title (page, i);
      guint n = title[0] == 'a' ? 0 : 1;
      g_autofree char *expected = g_strdup_printf ("%s-%u", writers[n].node_name, next[n]++);

      g_assert_cmpint (g_array_index (page->ids, gint64, i), ==, i + 1);
      g_assert_cmpstr (title, ==, expected);
    }
  for (guint n = 0; n < 2; n++)
    g_array_unref (writers[n].ids);
}

typedef struct
{
  TocsinTestPostgres *pg;
  gint64              channel_id;
  guint               keys;
  GArray             *stored;    /* gboolean per key: this node stored it (not a duplicate) */
  GArray             *ids;
} Deduper;

static gpointer
dedup_thread (gpointer data)
{
  Deduper *d = data;
  g_autoptr(TocsinRelayStorePg) node = open_node (d->pg);

  for (guint k = 0; k < d->keys; k++)
    {
      g_autofree char *key = g_strdup_printf ("key-%u", k);
      g_autoptr(GError) error = NULL;
      g_autoptr(TocsinRelayCommit) commit = commit_one (node, d->channel_id, key, 0, key,
                                                        "same-content", &error);
      gboolean stored;

      g_assert_no_error (error);
      stored = !commit->duplicate;
      g_array_append_val (d->stored, stored);
      g_array_append_val (d->ids, commit->id);
    }
  return NULL;
}

/* The same dedup key on two nodes: stored once, the other node told it is a duplicate of that
 * id; a new content under the key replaces it, on either node. */
static void
test_pg_dedup_two_nodes (void)
{
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start_database ();
  g_autoptr(TocsinRelayStorePg) a = NULL, b = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(TocsinRelayCommit) first = NULL, again = NULL, changed = NULL;
  g_autoptr(TocsinRelayReplayPage) page = NULL;
  g_autofree char *stored_keys = NULL;
  Deduper dedupers[2];
  GThread *threads[2];
  const guint keys = 40;

  if (pg == NULL)
    return;
  a = open_node (pg);
  b = open_node (pg);
  channel = create_channel (a, "dedup");

  first = commit_one (a, channel->id, "first", 0, "K", "C1", NULL);
  g_assert_false (first->duplicate);
  again = commit_one (b, channel->id, "again", 0, "K", "C1", NULL);
  g_assert_true (again->duplicate);
  g_assert_cmpint (again->id, ==, first->id);
  g_assert_null (again->message);
  changed = commit_one (b, channel->id, "changed", 0, "K", "C2", NULL);
  g_assert_false (changed->duplicate);
  g_assert_cmpint (changed->replaces, ==, first->id);
  g_assert_cmpint (changed->id, ==, first->id + 1);

  /* At the same time, on two nodes: each key stored by exactly one. */
  for (guint n = 0; n < 2; n++)
    {
      dedupers[n] = (Deduper) { pg, channel->id, keys,
                                g_array_new (FALSE, FALSE, sizeof (gboolean)),
                                g_array_new (FALSE, FALSE, sizeof (gint64)) };
      threads[n] = g_thread_new ("node", dedup_thread, &dedupers[n]);
    }
  for (guint n = 0; n < 2; n++)
    g_thread_join (threads[n]);
  for (guint k = 0; k < keys; k++)
    {
      gboolean by_a = g_array_index (dedupers[0].stored, gboolean, k);
      gboolean by_b = g_array_index (dedupers[1].stored, gboolean, k);

      g_assert_true (by_a != by_b);
      g_assert_cmpint (g_array_index (dedupers[0].ids, gint64, k), ==,
                       g_array_index (dedupers[1].ids, gint64, k));
    }
  page = replay (a, channel->id, -1);
  g_assert_cmpuint (page->ids->len, ==, 2 + keys);
  stored_keys = tocsin_test_postgres_psql (pg, "SELECT count(*) FROM dedup");
  g_assert_cmpstr (g_strstrip (stored_keys), ==, "41");
  for (guint n = 0; n < 2; n++)
    {
      g_array_unref (dedupers[n].stored);
      g_array_unref (dedupers[n].ids);
    }
}

/* Prune drops what is past retention and dedup keys past their window; replay from an old
 * cursor then names the gap. */
static void
test_pg_prune (void)
{
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start_database ();
  g_autoptr(TocsinRelayStorePg) node = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(TocsinRelayReplayPage) page = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *keys = NULL;
  gint64 now_ms = g_get_real_time () / 1000;
  gint64 two_days_ago = now_ms - 2 * 86400 * 1000;

  if (pg == NULL)
    return;
  node = open_node (pg);
  channel = create_channel (node, "old");
  tocsin_relay_commit_free (commit_one (node, channel->id, "old-1", two_days_ago, "K1", "C",
                                        NULL));
  tocsin_relay_commit_free (commit_one (node, channel->id, "old-2", two_days_ago, NULL, NULL,
                                        NULL));
  tocsin_relay_commit_free (commit_one (node, channel->id, "new-3", now_ms, "K3", "C", NULL));

  g_assert_true (tocsin_relay_store_pg_prune (node, 86400, now_ms, &error));
  g_assert_no_error (error);

  page = replay (node, channel->id, 0);
  g_assert_cmpuint (page->ids->len, ==, 1);
  g_assert_cmpint (g_array_index (page->ids, gint64, 0), ==, 3);
  g_assert_cmpint (page->gap_from, ==, 1);
  g_assert_cmpint (page->gap_to, ==, 2);
  keys = tocsin_test_postgres_psql (pg, "SELECT string_agg(key_hash, ',') FROM dedup");
  g_assert_cmpstr (g_strstrip (keys), ==, "K3");
}

/* PostgreSQL restarted under a node: the call that meets the dead connection fails with an
 * error (nothing is reported stored), the node reconnects, and the next commit goes on from the
 * committed ids; nothing acknowledged before the restart is lost. */
static void
test_pg_restart (void)
{
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start ();
  g_autoptr(TocsinRelayStorePg) node = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(TocsinRelayReplayPage) page = NULL;
  g_autoptr(TocsinRelayCommit) after = NULL;
  gboolean failed_once = FALSE;

  if (pg == NULL)
    return;
  node = open_node (pg);
  channel = create_channel (node, "restart");
  for (guint i = 0; i < 3; i++)
    tocsin_relay_commit_free (commit_one (node, channel->id, "before", 0, NULL, NULL, NULL));

  tocsin_test_postgres_restart (pg);

  for (guint attempt = 0; attempt < 2 && after == NULL; attempt++)
    {
      g_autoptr(TocsinMessage) message = new_message ("after", 0);
      TocsinRelayStorePgWrite write = { channel->id, message, NULL, NULL, 86400 };
      g_autoptr(GError) error = NULL;
      TocsinRelayCommit *commit = NULL;
      GError *per_write = NULL;

      if (tocsin_relay_store_pg_commit (node, &write, 1, &commit, &per_write, &error))
        {
          g_assert_no_error (per_write);
          after = commit;
        }
      else
        {
          g_assert_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_FAILED);
          g_assert_null (commit);
          failed_once = TRUE;
        }
    }
  g_assert_true (failed_once);
  g_assert_nonnull (after);
  g_assert_cmpint (after->id, ==, 4);
  page = replay (node, channel->id, -1);
  g_assert_cmpuint (page->ids->len, ==, 4);
}

static TocsinRelayChannel *
create_forwarding (TocsinRelayStorePg *node)
{
  TocsinRelayChannelSpec spec = {
    .name = "fwd", .forwards = "[{\"name\":\"h\",\"url\":\"http://127.0.0.1:9/\"}]",
  };
  g_autoptr(GError) error = NULL;
  TocsinRelayChannel *channel = tocsin_relay_store_pg_create_channel (node, &spec, "webhook",
                                                                      NULL, &error);

  g_assert_no_error (error);
  return channel;
}

/* Commits @n messages to @channel, each with a delivery of its forward. */
static void
commit_forwarded (TocsinRelayStorePg *node,
                  TocsinRelayChannel *channel,
                  guint               n)
{
  g_autoptr(GArray) indices = g_array_new (FALSE, FALSE, sizeof (guint));
  guint zero = 0;

  g_array_append_val (indices, zero);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(TocsinMessage) message = new_message ("m", 0);
      TocsinRelayStorePgWrite write = { channel->id, message, NULL, NULL, 86400,
                                        channel->forwards, indices };
      g_autoptr(GError) error = NULL;
      g_autoptr(TocsinRelayCommit) commit = NULL;
      GError *per_write = NULL;

      g_assert_true (tocsin_relay_store_pg_commit (node, &write, 1, &commit, &per_write,
                                                   &error));
      g_assert_no_error (error);
      g_assert_no_error (per_write);
    }
}

/* A node that stops being seen (killed, its machine gone): its subscribers drop out of the
 * list once it is past the timeout, pruning removes its rows, and what it had in flight is
 * recovered by another node only then; a live node's attempt in flight is never taken over. */
static void
test_pg_node_gone (void)
{
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start_database ();
  g_autoptr(TocsinRelayStorePg) a = NULL, b = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(GPtrArray) due = NULL;
  g_autoptr(JsonArray) now_list = NULL, later_list = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinRelayDelivery) recovered = NULL;
  g_autofree char *rows = NULL, *nodes = NULL;
  gint64 now = g_get_real_time () / 1000;
  gint64 gone = now + (TOCSIN_RELAY_STORE_PG_NODE_TIMEOUT_SECONDS + 1) * 1000;
  gint64 id;
  guint attempt;

  if (pg == NULL)
    return;
  a = open_node (pg);
  b = open_node (pg);
  g_assert_true (tocsin_relay_store_pg_set_node (a, "node-a", &error));
  g_assert_true (tocsin_relay_store_pg_set_node (b, "node-b", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (tocsin_relay_store_pg_get_node (a), ==, "node-a");
  channel = create_forwarding (a);

  g_assert_true (tocsin_relay_store_pg_note_subscriber (a, channel->id, 7, "ws", "10.0.0.1",
                                                        TRUE, &error));
  g_assert_no_error (error);
  now_list = tocsin_relay_store_pg_list_presence (b, channel->id, now, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (json_array_get_length (now_list), ==, 1);

  commit_forwarded (a, channel, 1);
  due = tocsin_relay_store_pg_due_deliveries (a, now + 30000, 10, &error);
  g_assert_cmpuint (due->len, ==, 1);
  id = ((TocsinRelayDelivery *) due->pdata[0])->id;
  g_assert_true (tocsin_relay_store_pg_start_attempt (a, id, &attempt, &error));
  g_assert_no_error (error);

  /* Node a is alive: b recovers nothing of it, and pruning leaves its rows. */
  g_assert_cmpint (tocsin_relay_store_pg_recover_deliveries (b, now, &error), ==, 0);
  g_assert_true (tocsin_relay_store_pg_prune (b, 86400, now, &error));
  g_assert_no_error (error);
  rows = tocsin_test_postgres_psql (pg, "SELECT count(*) FROM presence");
  g_assert_cmpstr (g_strstrip (rows), ==, "1");

  /* Past the timeout without a heartbeat from a: its subscriber is not listed, b recovers its
   * attempt (due again, attempts kept), and pruning drops its rows but not b's node. */
  later_list = tocsin_relay_store_pg_list_presence (b, channel->id, gone, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (json_array_get_length (later_list), ==, 0);
  g_assert_cmpint (tocsin_relay_store_pg_recover_deliveries (b, gone, &error), ==, 1);
  recovered = tocsin_relay_store_pg_get_delivery (b, id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (recovered->next_at_ms, ==, gone);
  g_assert_cmpuint (recovered->attempts, ==, 1);
  g_assert_true (tocsin_relay_store_pg_prune (b, 86400, gone, &error));
  g_assert_no_error (error);
  g_free (rows);
  rows = tocsin_test_postgres_psql (pg, "SELECT count(*) FROM presence");
  g_assert_cmpstr (g_strstrip (rows), ==, "0");
  nodes = tocsin_test_postgres_psql (pg, "SELECT string_agg(node, ',' ORDER BY node) FROM nodes"
                                         " WHERE node LIKE 'node-%'");
  g_assert_cmpstr (g_strstrip (nodes), ==, "node-b");
}

typedef struct
{
  TocsinTestPostgres *pg;
  GArray             *ids;      /* the deliveries, shared, read only */
  guint               batches;  /* 0: one at a time; 1: in batches (write_deliveries) from the
                                 * first id up; 2: in batches from the last id down */
  GArray             *taken;    /* gboolean per delivery: this node got the attempt */
} Taker;

static gpointer
taker_thread (gpointer data)
{
  Taker *t = data;
  g_autoptr(TocsinRelayStorePg) node = open_node (t->pg);

  g_array_set_size (t->taken, t->ids->len);
  if (t->batches)
    {
      /* Batches of 10 starts, in opposite orders on two nodes: without each batch locking its
       * rows in id order first, they would deadlock (and one batch fail). */
      for (guint start = 0; start < t->ids->len; start += 10)
        {
          g_autoptr(GArray) ops = tocsin_relay_delivery_ops_new ();
          g_autoptr(GError) error = NULL;

          for (guint i = start; i < MIN (start + 10, t->ids->len); i++)
            tocsin_relay_delivery_ops_add (ops, TOCSIN_RELAY_DELIVERY_OP_START,
                                           g_array_index (t->ids, gint64,
                                                          t->batches == 2 ? t->ids->len - 1 - i
                                                                          : i));
          g_assert_true (tocsin_relay_store_pg_write_deliveries (node, ops, &error));
          g_assert_no_error (error);
          for (guint j = 0; j < ops->len; j++)
            {
              guint attempt = g_array_index (ops, TocsinRelayDeliveryOp, j).attempt;

              g_assert_cmpuint (attempt, <=, 1);
              g_array_index (t->taken, gboolean,
                             t->batches == 2 ? t->ids->len - 1 - (start + j) : start + j) =
                attempt == 1;
            }
        }
      return NULL;
    }
  for (guint i = 0; i < t->ids->len; i++)
    {
      g_autoptr(GError) error = NULL;
      guint attempt = 0;
      gboolean taken = tocsin_relay_store_pg_start_attempt (node, g_array_index (t->ids, gint64,
                                                                                 i),
                                                            &attempt, &error);

      if (!taken)
        g_assert_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND);
      else
        g_assert_cmpuint (attempt, ==, 1);
      g_array_index (t->taken, gboolean, i) = taken;
    }
  return NULL;
}

/* Three nodes sending from one queue at once, one a delivery at a time and two in batches from
 * either end: every delivery is started by exactly one, and no batch fails. */
static void
test_pg_deliveries_two_nodes (void)
{
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start_database ();
  g_autoptr(TocsinRelayStorePg) node = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(GPtrArray) due = NULL;
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GError) error = NULL;
  Taker takers[3];
  GThread *threads[3];
  const guint n = 120;

  if (pg == NULL)
    return;
  node = open_node (pg);
  channel = create_forwarding (node);
  commit_forwarded (node, channel, n);
  due = tocsin_relay_store_pg_due_deliveries (node, g_get_real_time () / 1000 + 60000, 1000,
                                              &error);
  g_assert_no_error (error);
  g_assert_cmpuint (due->len, ==, n);
  for (guint i = 0; i < due->len; i++)
    g_array_append_val (ids, ((TocsinRelayDelivery *) due->pdata[i])->id);

  for (guint k = 0; k < 3; k++)
    {
      takers[k] = (Taker) { pg, ids, k, g_array_new (FALSE, TRUE, sizeof (gboolean)) };
      threads[k] = g_thread_new ("node", taker_thread, &takers[k]);
    }
  for (guint k = 0; k < 3; k++)
    g_thread_join (threads[k]);
  for (guint i = 0; i < n; i++)
    {
      guint takers_of_it = 0;

      for (guint k = 0; k < 3; k++)
        takers_of_it += g_array_index (takers[k].taken, gboolean, i) ? 1 : 0;
      g_assert_cmpuint (takers_of_it, ==, 1);
    }
  for (guint k = 0; k < 3; k++)
    g_array_unref (takers[k].taken);
}

static gpointer
open_thread (gpointer data)
{
  return open_node (data);
}

/* Nodes starting together on an empty database: each creates the schema if it is missing, under
 * the advisory lock, and all of them connect; the script run again changes nothing. */
static void
test_pg_schema_concurrent (void)
{
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start_database ();
  g_autoptr(TocsinRelayStorePg) again = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL, kept = NULL;
  g_autofree char *tables = NULL;
  g_autoptr(GError) error = NULL;
  GThread *threads[4];

  if (pg == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("node", open_thread, pg);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      TocsinRelayStorePg *node = g_thread_join (threads[i]);

      g_assert_nonnull (node);
      if (i == 0)
        channel = create_channel (node, "kept");
      tocsin_relay_store_pg_free (node);
    }
  again = open_node (pg);
  kept = tocsin_relay_store_pg_find_by_id (again, channel->id, &error);
  g_assert_no_error (error);
  g_assert_nonnull (kept);
  tables = tocsin_test_postgres_psql (pg, "SELECT string_agg(tablename, ',' ORDER BY tablename)"
                                          " FROM pg_tables WHERE schemaname = 'public'");
  g_assert_cmpstr (g_strstrip (tables), ==, "admin_keys,channels,dedup,deliveries,"
                   "delivery_attempts,messages,meta,nodes,presence");
}

typedef struct
{
  TocsinTestPostgres *pg;
  TocsinRelayStorePg *node;
  gint                done;
} Opener;

static gpointer
opener_thread (gpointer data)
{
  Opener *opener = data;

  opener->node = open_node (opener->pg);
  g_atomic_int_set (&opener->done, 1);
  return NULL;
}

static guint
waiting_locks (TocsinTestPostgres *pg)
{
  g_autofree char *out = tocsin_test_postgres_psql (pg, "SELECT count (*) FROM pg_locks"
                                                        " WHERE NOT granted");

  return (guint) g_ascii_strtoull (out, NULL, 10);
}

/* A node connecting while another session writes (a transaction holding messages' write lock, as
 * a group commit does) neither waits for it nor takes the table locks that made a channel's
 * deletion deadlock with it (/cluster/postgres/rotate-delete once did): the schema script runs
 * once, not on every connection. */
static void
test_pg_open_under_writes (void)
{
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start_database ();
  g_autoptr(TocsinRelayStorePg) first = NULL;
  Opener opener = { 0 };
  PGconn *writer;
  GThread *thread;
  guint waiting;

  if (pg == NULL)
    return;
  first = open_node (pg);
  writer = PQconnectdb (tocsin_test_postgres_conninfo (pg));
  g_assert_cmpint (PQstatus (writer), ==, CONNECTION_OK);
  PQclear (PQexec (writer, "BEGIN"));
  PQclear (PQexec (writer, "LOCK TABLE messages IN ROW EXCLUSIVE MODE"));

  opener.pg = pg;
  thread = g_thread_new ("node", opener_thread, &opener);
  /* Either it has connected, or its session waits for a lock (the writer's). */
  TOCSIN_WAIT_UNTIL (g_atomic_int_get (&opener.done) || waiting_locks (pg) > 0);
  waiting = waiting_locks (pg);
  PQclear (PQexec (writer, "COMMIT"));
  g_thread_join (thread);
  PQfinish (writer);
  g_assert_cmpuint (waiting, ==, 0);
  g_assert_nonnull (opener.node);
  tocsin_relay_store_pg_free (opener.node);
}

typedef struct
{
  GArray *events;   /* of Notice */
} Heard;

typedef struct
{
  TocsinRelayStorePgEvent event;
  gint64                  channel_id;
  gint64                  id;
} Notice;

static void
on_notice (TocsinRelayStorePgEvent  event,
           gint64                   channel_id,
           gint64                   id,
           gpointer                 user_data)
{
  Heard *heard = user_data;
  Notice notice = { event, channel_id, id };

  g_array_append_val (heard->events, notice);
}

/* Waits on the listening node's socket, as the store's thread will, until @count notices have
 * arrived (a guard against a hang, not a timing). */
static void
wait_for_notices (TocsinRelayStorePg *node,
                  Heard              *heard,
                  guint               count)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  while (heard->events->len < count)
    {
      GPollFD fd = { tocsin_relay_store_pg_socket (node), G_IO_IN, 0 };
      g_autoptr(GError) error = NULL;

      if (g_get_monotonic_time () > deadline)
        g_error ("timed out waiting for %u notices (have %u)", count, heard->events->len);
      g_poll (&fd, 1, 100);
      g_assert_true (tocsin_relay_store_pg_take_notifications (node, on_notice, heard, &error));
      g_assert_no_error (error);
    }
}

/* A node hears another node's commits (once per channel per batch, with the newest id, only
 * after COMMIT), rotations and deletions, and then reads the new rows from its cursor. */
static void
test_pg_notify (void)
{
  g_autoptr(TocsinTestPostgres) pg = tocsin_test_postgres_start_database ();
  g_autoptr(TocsinRelayStorePg) a = NULL, b = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL, other = NULL, rotated = NULL;
  g_autoptr(TocsinRelayReplayPage) page = NULL;
  g_autoptr(GError) error = NULL;
  Heard heard = { g_array_new (FALSE, FALSE, sizeof (Notice)) };
  TocsinMessage *messages[3];
  TocsinRelayStorePgWrite writes[3];
  TocsinRelayCommit *commits[3];
  GError *errors[3];
  Notice *n;

  if (pg == NULL)
    return;
  a = open_node (pg);
  b = open_node (pg);
  g_assert_true (tocsin_relay_store_pg_listen (b, &error));
  g_assert_no_error (error);
  channel = create_channel (a, "watched");
  other = create_channel (a, "other");

  /* Creating a channel says "changed" (so that a node keeping channels in memory hears of it);
   * a batch of three to two channels says two things. */
  for (guint i = 0; i < 3; i++)
    {
      messages[i] = new_message ("hello", 0);
      writes[i] = (TocsinRelayStorePgWrite) { i == 1 ? other->id : channel->id, messages[i],
                                              NULL, NULL, 86400 };
    }
  g_assert_true (tocsin_relay_store_pg_commit (a, writes, 3, commits, errors, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < 3; i++)
    {
      tocsin_relay_commit_free (commits[i]);
      tocsin_message_free (messages[i]);
    }
  wait_for_notices (b, &heard, 4);
  for (guint i = 0; i < 2; i++)
    {
      n = &g_array_index (heard.events, Notice, i);
      g_assert_cmpint (n->event, ==, TOCSIN_RELAY_STORE_PG_EVENT_CHANGED);
      g_assert_cmpint (n->channel_id, ==, i == 0 ? channel->id : other->id);
    }
  for (guint i = 2; i < 4; i++)
    {
      n = &g_array_index (heard.events, Notice, i);
      g_assert_cmpint (n->event, ==, TOCSIN_RELAY_STORE_PG_EVENT_MESSAGES);
      g_assert_cmpint (n->id, ==, n->channel_id == channel->id ? 2 : 1);
    }
  page = tocsin_relay_store_pg_replay_page (b, channel->id, 0, 0, 86400, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (page->ids->len, ==, 2);

  /* A duplicate stores nothing and says nothing: the next notice is the rotation. */
  tocsin_relay_commit_free (commit_one (a, channel->id, "k", 0, "K", "C", NULL));
  tocsin_relay_commit_free (commit_one (a, channel->id, "k", 0, "K", "C", NULL));
  rotated = tocsin_relay_store_pg_rotate_subscribe (a, channel->id, &error);
  g_assert_no_error (error);
  g_assert_true (tocsin_relay_store_pg_delete_channel (a, other->id, &error));
  g_assert_no_error (error);
  wait_for_notices (b, &heard, 7);
  n = &g_array_index (heard.events, Notice, 4);
  g_assert_cmpint (n->event, ==, TOCSIN_RELAY_STORE_PG_EVENT_MESSAGES);
  g_assert_cmpint (n->channel_id, ==, channel->id);
  g_assert_cmpint (n->id, ==, 3);
  n = &g_array_index (heard.events, Notice, 5);
  g_assert_cmpint (n->event, ==, TOCSIN_RELAY_STORE_PG_EVENT_ROTATED);
  g_assert_cmpint (n->channel_id, ==, channel->id);
  n = &g_array_index (heard.events, Notice, 6);
  g_assert_cmpint (n->event, ==, TOCSIN_RELAY_STORE_PG_EVENT_DELETED);
  g_assert_cmpint (n->channel_id, ==, other->id);
  g_array_unref (heard.events);
}

#endif /* HAVE_LIBPQ */

/* Runs `tocsin-relay serve --data-dir=TMP --listen=127.0.0.1:0 ARGS…` and returns its exit
 * status and stderr. Only for runs that end by themselves (a refusal). */
static int
run_serve (char       **err,
           const char  *arg1,
           const char  *arg2)
{
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-pg-serve");
  g_autofree char *data_dir = g_strdup_printf ("--data-dir=%s", dir);
  int status = tocsin_test_relay_run (NULL, err, "serve", data_dir, "--listen=127.0.0.1:0", arg1,
                                      arg2, NULL);

  tocsin_test_rmdir_recursive (dir);
  return status;
}

/* Until the PostgreSQL backend does everything `serve` needs, --database=postgresql://… (flag or
 * config file) refuses to start and says what is missing; anything but a postgresql:// URL or
 * "sqlite" is refused as a mistake. The store is never half on PostgreSQL. */
static void
test_serve_database_unreachable (void)
{
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-pg-conf");
  g_autofree char *conf = g_build_filename (dir, "relay.conf", NULL);
  g_autofree char *conf_arg = g_strdup_printf ("--config=%s", conf);
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;

  /* Nothing listens on port 1: serve says so and exits (it never falls back to SQLite). */
  g_assert_cmpint (run_serve (&err, "--database=postgresql://tocsin@127.0.0.1:1/tocsin", NULL),
                   ==, 1);
#ifdef HAVE_LIBPQ
  g_assert_nonnull (strstr (err, "Could not connect to PostgreSQL"));
#else
  g_assert_nonnull (strstr (err, "--database:"));
  g_assert_nonnull (strstr (err, "built without libpq"));
#endif
  g_clear_pointer (&err, g_free);

  g_file_set_contents (conf, "[relay]\ndatabase=postgres://tocsin@127.0.0.1:1/tocsin\n", -1,
                       &error);
  g_assert_no_error (error);
  g_assert_cmpint (run_serve (&err, conf_arg, NULL), ==, 1);
#ifdef HAVE_LIBPQ
  g_assert_nonnull (strstr (err, "Could not connect to PostgreSQL"));
#endif
  g_clear_pointer (&err, g_free);

  g_assert_cmpint (run_serve (&err, "--database=mysql://db/tocsin", NULL), !=, 0);
  g_assert_nonnull (strstr (err, "database takes a postgresql:// URL, or sqlite"));
  tocsin_test_rmdir_recursive (dir);
}

/* ---- The same cases on both backends ----
 *
 * Until tocsin-relay-store.c dispatches to PostgreSQL, a small table maps each case's steps to
 * the store's public functions (SQLite) or to tocsin-relay-store-pg.h; two handles on one
 * database stand for two nodes (two processes on one relay.db, for SQLite). */

typedef struct
{
  TocsinTestPostgres *pg;        /* PostgreSQL */
  char               *data_dir;  /* SQLite */
} Database;

typedef struct
{
  const char *name;
  gboolean  (*start)       (Database *db);
  gpointer  (*open)        (Database *db);
  void      (*close)       (gpointer handle);
  TocsinRelayChannel *(*create) (gpointer handle, const char *name);
  TocsinRelayChannel *(*find_by_trigger) (gpointer handle, const char *token);
  TocsinRelayChannel *(*rotate_trigger)  (gpointer handle, gint64 id, GError **error);
  gboolean  (*delete)      (gpointer handle, gint64 id, GError **error);
  /* One message with the next id, durable when it returns. */
  TocsinRelayCommit *(*commit) (gpointer handle, gint64 channel_id, const char *title,
                                gint64 time_ms, const char *key_hash, const char *content_hash,
                                GError **error);
  TocsinRelayReplayPage *(*replay) (gpointer handle, gint64 channel_id, gint64 after_id,
                                    GError **error);
  gboolean  (*prune)       (gpointer handle, gint64 now_ms, GError **error);
} Backend;

static TocsinMessage *
titled_message (const char *title,
                gint64      time_ms)
{
  TocsinMessage *message = tocsin_message_new ();

  g_free (message->title);
  message->title = g_strdup (title);
  message->time_ms = time_ms ? time_ms : g_get_real_time () / 1000;
  return message;
}

/* SQLite: the store's public functions. */

static gboolean
sqlite_start (Database *db)
{
  db->data_dir = tocsin_test_make_tmpdir ("tocsin-store-backends");
  return TRUE;
}

static gpointer
sqlite_open (Database *db)
{
  g_autoptr(GError) error = NULL;
  TocsinRelayStore *store = tocsin_relay_store_open (db->data_dir, &error);

  g_assert_no_error (error);
  tocsin_relay_store_set_retention (store, 86400);
  return store;
}

static void
sqlite_close (gpointer handle)
{
  tocsin_relay_store_free (handle);
}

static TocsinRelayChannel *
sqlite_create (gpointer    handle,
               const char *name)
{
  TocsinRelayChannelSpec spec = { .name = name, .title = "{{title}}" };
  g_autoptr(GError) error = NULL;
  TocsinRelayChannel *channel = tocsin_relay_store_create_channel (handle, &spec, NULL, &error);

  g_assert_no_error (error);
  return channel;
}

static TocsinRelayChannel *
sqlite_find_by_trigger (gpointer    handle,
                        const char *token)
{
  return tocsin_relay_store_find_by_trigger (handle, token);
}

static TocsinRelayChannel *
sqlite_rotate_trigger (gpointer   handle,
                       gint64     id,
                       GError   **error)
{
  return tocsin_relay_store_rotate_trigger (handle, id, error);
}

static gboolean
sqlite_delete (gpointer   handle,
               gint64     id,
               GError   **error)
{
  return tocsin_relay_store_delete_channel (handle, id, error);
}

static void
on_committed (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static TocsinRelayCommit *
sqlite_commit (gpointer     handle,
               gint64       channel_id,
               const char  *title,
               gint64       time_ms,
               const char  *key_hash,
               const char  *content_hash,
               GError     **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  tocsin_relay_store_commit_async (handle, channel_id, titled_message (title, time_ms), key_hash,
                                   content_hash, on_committed, &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  return tocsin_relay_store_commit_finish (handle, result, error);
}

static gboolean
collect_page (gint64   id,
              GBytes  *message,
              gpointer user_data)
{
  TocsinRelayReplayPage *page = user_data;

  g_array_append_val (page->ids, id);
  g_ptr_array_add (page->messages, g_bytes_ref (message));
  return TRUE;
}

static TocsinRelayReplayPage *
sqlite_replay (gpointer   handle,
               gint64     channel_id,
               gint64     after_id,
               GError   **error)
{
  g_autoptr(TocsinRelayReplayPage) page = g_new0 (TocsinRelayReplayPage, 1);

  page->ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  page->messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  if (!tocsin_relay_store_replay_page (handle, channel_id, after_id, 0, collect_page, page,
                                       &page->gap_from, &page->gap_to, error))
    return NULL;
  return g_steal_pointer (&page);
}

static gboolean
sqlite_prune (gpointer   handle,
              gint64     now_ms,
              GError   **error)
{
  return tocsin_relay_store_prune (handle, now_ms, error);
}

static const Backend sqlite_backend = {
  "sqlite", sqlite_start, sqlite_open, sqlite_close, sqlite_create, sqlite_find_by_trigger,
  sqlite_rotate_trigger, sqlite_delete, sqlite_commit, sqlite_replay, sqlite_prune,
};

#ifdef HAVE_LIBPQ

/* PostgreSQL: tocsin-relay-store-pg.h, on the test's thread (the store's thread to come). */

static gboolean
pg_start (Database *db)
{
  db->pg = tocsin_test_postgres_start_database ();
  return db->pg != NULL;
}

static gpointer
pg_open (Database *db)
{
  g_autoptr(GError) error = NULL;
  TocsinRelayStorePg *node = tocsin_relay_store_pg_open (tocsin_test_postgres_conninfo (db->pg),
                                                         &error);

  g_assert_no_error (error);
  return node;
}

static void
pg_close (gpointer handle)
{
  tocsin_relay_store_pg_free (handle);
}

static TocsinRelayChannel *
pg_create (gpointer    handle,
           const char *name)
{
  TocsinRelayChannelSpec spec = { .name = name, .title = "{{title}}" };
  g_autoptr(GError) error = NULL;
  TocsinRelayChannel *channel = tocsin_relay_store_pg_create_channel (handle, &spec, "webhook",
                                                                      NULL, &error);

  g_assert_no_error (error);
  return channel;
}

static TocsinRelayChannel *
pg_find_by_trigger (gpointer    handle,
                    const char *token)
{
  g_autoptr(GError) error = NULL;
  TocsinRelayChannel *channel = tocsin_relay_store_pg_find_by_trigger (handle, token, &error);

  g_assert_no_error (error);
  return channel;
}

static TocsinRelayChannel *
pg_rotate_trigger (gpointer   handle,
                   gint64     id,
                   GError   **error)
{
  return tocsin_relay_store_pg_rotate_trigger (handle, id, error);
}

static gboolean
pg_delete (gpointer   handle,
           gint64     id,
           GError   **error)
{
  return tocsin_relay_store_pg_delete_channel (handle, id, error);
}

static TocsinRelayCommit *
pg_commit (gpointer     handle,
           gint64       channel_id,
           const char  *title,
           gint64       time_ms,
           const char  *key_hash,
           const char  *content_hash,
           GError     **error)
{
  g_autoptr(TocsinMessage) message = titled_message (title, time_ms);
  TocsinRelayStorePgWrite write = { channel_id, message, key_hash, content_hash, 86400 };
  TocsinRelayCommit *commit = NULL;
  GError *per_write = NULL;

  if (!tocsin_relay_store_pg_commit (handle, &write, 1, &commit, &per_write, error))
    return NULL;
  if (per_write)
    g_propagate_error (error, per_write);
  return commit;
}

static TocsinRelayReplayPage *
pg_replay (gpointer   handle,
           gint64     channel_id,
           gint64     after_id,
           GError   **error)
{
  return tocsin_relay_store_pg_replay_page (handle, channel_id, after_id, 0, 86400, error);
}

static gboolean
pg_prune (gpointer   handle,
          gint64     now_ms,
          GError   **error)
{
  return tocsin_relay_store_pg_prune (handle, 86400, now_ms, error);
}

static const Backend pg_backend = {
  "postgresql", pg_start, pg_open, pg_close, pg_create, pg_find_by_trigger,
  pg_rotate_trigger, pg_delete, pg_commit, pg_replay, pg_prune,
};

#endif /* HAVE_LIBPQ */

typedef struct
{
  const Backend *backend;
  Database       db;
  gpointer       a, b;   /* two handles: two nodes, or two processes */
  gboolean       skipped;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->backend = data;
  if (!f->backend->start (&f->db))
    {
      f->skipped = TRUE;
      return;
    }
  f->a = f->backend->open (&f->db);
  f->b = f->backend->open (&f->db);
#ifdef HAVE_LIBPQ
  /* Two nodes, with names that a restarted node can take again (reopen()). */
  if (f->db.pg != NULL)
    {
      g_assert_true (tocsin_relay_store_pg_set_node (f->a, "node-a", NULL));
      g_assert_true (tocsin_relay_store_pg_set_node (f->b, "node-b", NULL));
    }
#endif
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_pointer (&f->a, f->backend->close);
  g_clear_pointer (&f->b, f->backend->close);
  g_clear_pointer (&f->db.pg, tocsin_test_postgres_free);
  if (f->db.data_dir)
    tocsin_test_rmdir_recursive (f->db.data_dir);
  g_clear_pointer (&f->db.data_dir, g_free);
}

static char *
message_title (GBytes *bytes)
{
  gsize length;
  const char *data = g_bytes_get_data (bytes, &length);
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinMessage) message = tocsin_message_new_from_data (data, length, &error);

  g_assert_no_error (error);
  return g_strdup (message->title);
}

/* Created on one handle, found by its trigger token on the other; rotated there, the old token
 * finds nothing on either; deleted, then gone, and a second delete is NOT_FOUND. */
static void
test_same_channels (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) channel = NULL, found = NULL, rotated = NULL;
  g_autoptr(TocsinRelayChannel) old = NULL, renewed = NULL;
  g_autoptr(GError) error = NULL;

  if (f->skipped)
    return;
  channel = f->backend->create (f->a, "Builds");
  g_assert_cmpstr (channel->name, ==, "Builds");
  found = f->backend->find_by_trigger (f->b, channel->trigger_token);
  g_assert_nonnull (found);
  g_assert_cmpint (found->id, ==, channel->id);

  rotated = f->backend->rotate_trigger (f->b, channel->id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (rotated->trigger_token, !=, channel->trigger_token);
  old = f->backend->find_by_trigger (f->a, channel->trigger_token);
  g_assert_null (old);
  renewed = f->backend->find_by_trigger (f->a, rotated->trigger_token);
  g_assert_nonnull (renewed);

  g_assert_true (f->backend->delete (f->a, channel->id, &error));
  g_assert_no_error (error);
  g_assert_null (f->backend->find_by_trigger (f->b, rotated->trigger_token));
  g_assert_false (f->backend->delete (f->b, channel->id, &error));
  g_assert_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND);
}

/* Commits on both handles number one channel's messages 1, 2, 3…; replay from either handle
 * gives them in id order, from any cursor. */
static void
test_same_commit_order (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(TocsinRelayReplayPage) all = NULL, after = NULL;
  g_autoptr(GError) error = NULL;

  if (f->skipped)
    return;
  channel = f->backend->create (f->a, "order");
  for (guint i = 0; i < 6; i++)
    {
      g_autofree char *title = g_strdup_printf ("m%u", i + 1);
      g_autoptr(TocsinRelayCommit) commit = f->backend->commit (i % 2 ? f->b : f->a, channel->id,
                                                                title, 0, NULL, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpint (commit->id, ==, i + 1);
      g_assert_false (commit->duplicate);
    }
  all = f->backend->replay (f->b, channel->id, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (all->ids->len, ==, 6);
  for (guint i = 0; i < 6; i++)
    {
      g_autofree char *title = message_title (g_ptr_array_index (all->messages, i));
      g_autofree char *expected = g_strdup_printf ("m%u", i + 1);

      g_assert_cmpint (g_array_index (all->ids, gint64, i), ==, i + 1);
      g_assert_cmpstr (title, ==, expected);
    }
  after = f->backend->replay (f->a, channel->id, 4, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (after->ids->len, ==, 2);
  g_assert_cmpint (g_array_index (after->ids, gint64, 0), ==, 5);
  g_assert_cmpint (after->gap_from, ==, 0);
}

/* A dedup key stored through one handle is a duplicate through the other (same id, nothing
 * stored); new content under it replaces the first message. */
static void
test_same_dedup (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(TocsinRelayCommit) first = NULL, again = NULL, changed = NULL;
  g_autoptr(TocsinRelayReplayPage) page = NULL;
  g_autoptr(GError) error = NULL;

  if (f->skipped)
    return;
  channel = f->backend->create (f->a, "dedup");
  first = f->backend->commit (f->a, channel->id, "first", 0, "K", "C1", &error);
  g_assert_no_error (error);
  again = f->backend->commit (f->b, channel->id, "again", 0, "K", "C1", &error);
  g_assert_no_error (error);
  g_assert_true (again->duplicate);
  g_assert_cmpint (again->id, ==, first->id);
  changed = f->backend->commit (f->b, channel->id, "changed", 0, "K", "C2", &error);
  g_assert_no_error (error);
  g_assert_false (changed->duplicate);
  g_assert_cmpint (changed->replaces, ==, first->id);
  page = f->backend->replay (f->a, channel->id, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (page->ids->len, ==, 2);
}

/* Prune drops messages past retention (24 h here); a cursor before them gets the gap. */
static void
test_same_prune (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(TocsinRelayReplayPage) page = NULL;
  g_autoptr(GError) error = NULL;
  gint64 now_ms = g_get_real_time () / 1000;

  if (f->skipped)
    return;
  channel = f->backend->create (f->a, "prune");
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(TocsinRelayCommit) commit =
        f->backend->commit (f->a, channel->id, "m", i < 2 ? now_ms - 2 * 86400 * 1000 : now_ms,
                            NULL, NULL, &error);

      g_assert_no_error (error);
    }
  g_assert_true (f->backend->prune (f->b, now_ms, &error));
  g_assert_no_error (error);
  page = f->backend->replay (f->a, channel->id, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (page->ids->len, ==, 1);
  g_assert_cmpint (g_array_index (page->ids, gint64, 0), ==, 3);
  g_assert_cmpint (page->gap_from, ==, 1);
  g_assert_cmpint (page->gap_to, ==, 2);
}

/* ---- The rest of the store, on both backends ----
 *
 * Each step below calls the store's public function (SQLite) or its tocsin-relay-store-pg.h
 * counterpart, waiting for the asynchronous ones; the cases assert what a later read returns. */

#define FORWARDS "[{\"name\":\"hook\",\"url\":\"http://127.0.0.1:9/hook\"}]"
#define ACTIONS "[{\"name\":\"Open\",\"kind\":\"view\",\"url\":\"https://x.example/\"}]"

#ifdef HAVE_LIBPQ
#define IS_PG(f) ((f)->db.pg != NULL)
#else
#define IS_PG(f) FALSE
#endif

/* With PostgreSQL, evaluates @pg_call; otherwise @sqlite_call. */
#ifdef HAVE_LIBPQ
#define ON_BACKEND(f, pg_call, sqlite_call) (IS_PG (f) ? (pg_call) : (sqlite_call))
#else
#define ON_BACKEND(f, pg_call, sqlite_call) (sqlite_call)
#endif

static TocsinRelayChannel *
do_create (Fixture                      *f,
           gpointer                      h,
           const TocsinRelayChannelSpec *spec,
           char                        **owner_key)
{
  g_autoptr(GError) error = NULL;
  TocsinRelayChannel *channel =
    ON_BACKEND (f, tocsin_relay_store_pg_create_channel (h, spec, "webhook", owner_key, &error),
                tocsin_relay_store_create_channel (h, spec, owner_key, &error));

  g_assert_no_error (error);
  g_assert_nonnull (channel);
  return channel;
}

static TocsinRelayChannel *
do_find_by_id (Fixture  *f,
               gpointer  h,
               gint64    id)
{
  g_autoptr(GError) error = NULL;
  TocsinRelayChannel *channel = ON_BACKEND (f, tocsin_relay_store_pg_find_by_id (h, id, &error),
                                            tocsin_relay_store_find_by_id (h, id));

  g_assert_no_error (error);
  return channel;
}

static TocsinRelayChannel *
do_find_by_email (Fixture    *f,
                  gpointer    h,
                  const char *token)
{
  g_autoptr(GError) error = NULL;
  TocsinRelayChannel *channel =
    ON_BACKEND (f, tocsin_relay_store_pg_find_by_email (h, token, &error),
                tocsin_relay_store_find_by_email (h, token));

  g_assert_no_error (error);
  return channel;
}

static TocsinRelayChannel *
do_find_by_owner_key (Fixture    *f,
                      gpointer    h,
                      const char *key)
{
  g_autoptr(GError) error = NULL;
  TocsinRelayChannel *channel =
    ON_BACKEND (f, tocsin_relay_store_pg_find_by_owner_key (h, key, &error),
                tocsin_relay_store_find_by_owner_key (h, key));

  g_assert_no_error (error);
  return channel;
}

static void
on_done (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/* One message with @forwards[0] queued for it; the commit (asserts it was stored or a
 * duplicate). */
static TocsinRelayCommit *
do_commit_forwarding (Fixture            *f,
                      gpointer            h,
                      TocsinRelayChannel *channel,
                      const char         *key_hash)
{
  g_autoptr(GArray) indices = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr(GError) error = NULL;
  TocsinRelayCommit *commit = NULL;
  guint zero = 0;

  g_array_append_val (indices, zero);
#ifdef HAVE_LIBPQ
  if (IS_PG (f))
    {
      g_autoptr(TocsinMessage) message = titled_message ("forwarded", 0);
      TocsinRelayStorePgWrite write = { channel->id, message, key_hash,
                                        key_hash ? "content" : NULL, 86400, channel->forwards,
                                        indices };
      GError *per_write = NULL;

      g_assert_true (tocsin_relay_store_pg_commit (h, &write, 1, &commit, &per_write, &error));
      g_assert_no_error (per_write);
    }
  else
#endif
    {
      g_autoptr(GAsyncResult) result = NULL;

      tocsin_relay_store_commit_with_forwards_async (h, channel->id,
                                                     titled_message ("forwarded", 0), key_hash,
                                                     key_hash ? "content" : NULL,
                                                     channel->forwards, indices, on_done,
                                                     &result);
      TOCSIN_WAIT_UNTIL (result != NULL);
      commit = tocsin_relay_store_commit_finish (h, result, &error);
    }
  g_assert_no_error (error);
  g_assert_nonnull (commit);
  return commit;
}

static GPtrArray *
do_due (Fixture  *f,
        gpointer  h,
        gint64    now_ms)
{
  g_autoptr(GError) error = NULL;
  GPtrArray *due = ON_BACKEND (f, tocsin_relay_store_pg_due_deliveries (h, now_ms, 100, &error),
                               tocsin_relay_store_due_deliveries (h, now_ms, 100, &error));

  g_assert_no_error (error);
  return due;
}

static gboolean
do_start (Fixture  *f,
          gpointer  h,
          gint64    id,
          guint    *attempt,
          GError  **error)
{
  return ON_BACKEND (f, tocsin_relay_store_pg_start_attempt (h, id, attempt, error),
                     tocsin_relay_store_start_attempt (h, id, attempt, error));
}

static JsonObject *
do_list_deliveries (Fixture  *f,
                    gpointer  h,
                    gint64    channel_id)
{
  g_autoptr(GError) error = NULL;
  JsonObject *log =
    ON_BACKEND (f, tocsin_relay_store_pg_list_deliveries (h, channel_id, 100, &error),
                tocsin_relay_store_list_deliveries (h, channel_id, 100, &error));

  g_assert_no_error (error);
  g_assert_nonnull (log);
  return log;
}

static TocsinRelayDelivery *
do_get_delivery (Fixture  *f,
                 gpointer  h,
                 gint64    id,
                 GError  **error)
{
  return ON_BACKEND (f, tocsin_relay_store_pg_get_delivery (h, id, error),
                     tocsin_relay_store_get_delivery (h, id, error));
}

static guint
do_recover (Fixture  *f,
            gpointer  h,
            gint64    now_ms)
{
  g_autoptr(GError) error = NULL;
  gint n = ON_BACKEND (f, tocsin_relay_store_pg_recover_deliveries (h, now_ms, &error),
                       (gint) tocsin_relay_store_recover_deliveries (h, now_ms, &error));

  g_assert_no_error (error);
  g_assert_cmpint (n, >=, 0);
  return (guint) n;
}

/* Closes handle @which (0: a, 1: b) as a crash would leave it and opens it again: for
 * PostgreSQL, the same node coming back under its name. */
static void
reopen (Fixture *f,
        guint    which)
{
  gpointer *handle = which == 0 ? &f->a : &f->b;

  g_clear_pointer (handle, f->backend->close);
  *handle = f->backend->open (&f->db);
#ifdef HAVE_LIBPQ
  if (IS_PG (f))
    {
      g_autoptr(GError) error = NULL;

      tocsin_relay_store_pg_set_node (*handle, which == 0 ? "node-a" : "node-b", &error);
      g_assert_no_error (error);
    }
#endif
}

static guint
json_length (JsonObject *object,
             const char *member)
{
  return json_array_get_length (json_object_get_array_member (object, member));
}

static const char *
json_nth_string (JsonObject *object,
                 const char *member,
                 guint       i,
                 const char *field)
{
  JsonArray *array = json_object_get_array_member (object, member);

  return json_object_get_string_member (json_array_get_object_element (array, i), field);
}

/* Updated through one handle: every field reads back on the other, though the other had the
 * channel compiled in its cache (by row version) from a lookup just before; NULL fields stay; an
 * unknown channel is NOT_FOUND with the same sentence on both. */
static void
test_same_update (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) channel = NULL, updated = NULL, read = NULL, again = NULL;
  g_autoptr(TocsinRelayChannel) cached = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *actions = NULL;
  TocsinRelayChannelSpec spec = { 0 };
  TocsinRelayChannelSpec unpause = { .set_paused = TRUE, .paused = FALSE };

  if (f->skipped)
    return;
  actions = tocsin_relay_actions_normalise (ACTIONS, &error);
  g_assert_no_error (error);
  channel = f->backend->create (f->a, "Before");
  cached = do_find_by_id (f, f->a, channel->id);
  g_assert_nonnull (cached);
  spec = (TocsinRelayChannelSpec) {
    .name = "  After ", .description = "changed", .body = "{{body}}", .link = "https://l/",
    .condition = "status == 'firing'", .signature = "hmac-sha256", .signature_secret = "s3cret",
    .signature_header = "X-Sig", .set_paused = TRUE, .paused = TRUE, .actions = actions,
    .forwards = FORWARDS,
  };
  updated = ON_BACKEND (f, tocsin_relay_store_pg_update_channel (f->b, channel->id, &spec,
                                                                 &error),
                        tocsin_relay_store_update_channel (f->b, channel->id, &spec, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (updated->name, ==, "After");

  read = do_find_by_id (f, f->a, channel->id);
  g_assert_nonnull (read);
  g_assert_cmpstr (read->name, ==, "After");
  g_assert_cmpstr (read->description, ==, "changed");
  g_assert_cmpstr (read->title_source, ==, "{{title}}");   /* NULL: left as it was */
  g_assert_cmpstr (read->body_source, ==, "{{body}}");
  g_assert_cmpstr (read->link_source, ==, "https://l/");
  g_assert_cmpstr (read->condition_source, ==, "status == 'firing'");
  g_assert_cmpstr (read->signature_scheme, ==, "hmac-sha256");
  g_assert_cmpstr (read->signature_secret, ==, "s3cret");
  g_assert_cmpstr (read->signature_header, ==, "X-Sig");
  g_assert_true (read->paused);
  g_assert_cmpuint (read->actions->len, ==, 1);
  g_assert_cmpuint (read->forwards->len, ==, 1);
  g_assert_cmpstr (read->trigger_token, ==, channel->trigger_token);

  again = ON_BACKEND (f, tocsin_relay_store_pg_update_channel (f->a, channel->id, &unpause,
                                                               &error),
                      tocsin_relay_store_update_channel (f->a, channel->id, &unpause, &error));
  g_assert_no_error (error);
  g_assert_false (again->paused);
  g_assert_cmpstr (again->signature_secret, ==, "s3cret");
  g_assert_cmpuint (again->forwards->len, ==, 1);

  g_assert_null (ON_BACKEND (f, tocsin_relay_store_pg_update_channel (f->a, 999999, &unpause,
                                                                      &error),
                             tocsin_relay_store_update_channel (f->a, 999999, &unpause,
                                                                &error)));
  g_assert_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND);
  g_assert_cmpstr (error->message, ==, "There is no channel 999999");
}

/* Direct inboxes, email addresses, owner keys, the channel list and subscribe-token lookups,
 * each written through one handle and read through the other. */
static void
test_same_lookups (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) direct = NULL, channel = NULL, by_email = NULL, rotated = NULL;
  g_autoptr(TocsinRelayChannel) old_email = NULL, new_email = NULL, by_owner = NULL;
  g_autoptr(TocsinRelayChannel) by_trigger = NULL, gone = NULL;
  g_autoptr(GPtrArray) channels = NULL;
  g_autoptr(GHashTable) tokens = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *owner_key = NULL, *direct_key = NULL;
  TocsinRelayChannelSpec spec = { .name = "mail" };
  gint64 ids[3];

  if (f->skipped)
    return;
  direct = ON_BACKEND (f, tocsin_relay_store_pg_create_direct (f->a, &direct_key, &error),
                       tocsin_relay_store_create_direct (f->a, &direct_key, &error));
  g_assert_no_error (error);
  g_assert_true (direct->direct);
  g_assert_cmpstr (direct->name, ==, "Direct");
  g_assert_nonnull (direct_key);
  by_trigger = f->backend->find_by_trigger (f->b, direct->trigger_token);
  g_assert_nonnull (by_trigger);
  g_assert_true (by_trigger->direct);

  channel = do_create (f, f->a, &spec, &owner_key);
  g_assert_nonnull (channel->email_token);
  g_assert_cmpstr (channel->email_token, !=, "");
  by_email = do_find_by_email (f, f->b, channel->email_token);
  g_assert_nonnull (by_email);
  g_assert_cmpint (by_email->id, ==, channel->id);
  g_assert_null (do_find_by_email (f, f->b, channel->trigger_token));
  rotated = ON_BACKEND (f, tocsin_relay_store_pg_rotate_email (f->b, channel->id, &error),
                        tocsin_relay_store_rotate_email (f->b, channel->id, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (rotated->email_token, !=, channel->email_token);
  g_assert_cmpstr (rotated->trigger_token, ==, channel->trigger_token);
  old_email = do_find_by_email (f, f->a, channel->email_token);
  g_assert_null (old_email);
  new_email = do_find_by_email (f, f->a, rotated->email_token);
  g_assert_nonnull (new_email);

  by_owner = do_find_by_owner_key (f, f->b, owner_key);
  g_assert_nonnull (by_owner);
  g_assert_cmpint (by_owner->id, ==, channel->id);
  g_assert_null (do_find_by_owner_key (f, f->b, "not-a-key"));
  g_assert_null (do_find_by_owner_key (f, f->b, NULL));

  channels = ON_BACKEND (f, tocsin_relay_store_pg_list_channels (f->b, &error),
                         tocsin_relay_store_list_channels (f->b, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (channels->len, ==, 2);
  g_assert_cmpint (((TocsinRelayChannel *) channels->pdata[0])->id, ==, direct->id);
  g_assert_cmpint (((TocsinRelayChannel *) channels->pdata[1])->id, ==, channel->id);

  g_assert_true (f->backend->delete (f->a, direct->id, &error));
  g_assert_no_error (error);
  gone = do_find_by_id (f, f->b, direct->id);
  g_assert_null (gone);
  ids[0] = channel->id;
  ids[1] = direct->id;
  ids[2] = 424242;
#ifdef HAVE_LIBPQ
  if (IS_PG (f))
    tokens = tocsin_relay_store_pg_lookup_subscribe_tokens (f->b, ids, 3, &error);
  else
#endif
    {
      g_autoptr(GAsyncResult) result = NULL;

      tocsin_relay_store_lookup_subscribe_tokens_async (f->b, ids, 3, NULL, on_done, &result);
      TOCSIN_WAIT_UNTIL (result != NULL);
      tokens = tocsin_relay_store_lookup_subscribe_tokens_finish (f->b, result, &error);
    }
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (tokens), ==, 1);
  g_assert_cmpstr (g_hash_table_lookup (tokens, &channel->id), ==, channel->subscribe_token);
}

/* Admin keys: created through one handle, accepted through the other, never stored in clear;
 * settings and the public URL: the last one set, seen by both. */
static void
test_same_keys_meta (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *key = NULL, *url = NULL, *domain = NULL, *none = NULL;
  gboolean ok;

  if (f->skipped)
    return;
  key = ON_BACKEND (f, tocsin_relay_store_pg_create_admin_key (f->a, &error),
                    tocsin_relay_store_create_admin_key (f->a, &error));
  g_assert_no_error (error);
  g_assert_true (tocsin_token_is_wellformed (key));
  ok = ON_BACKEND (f, tocsin_relay_store_pg_check_admin_key (f->b, key, &error),
                   tocsin_relay_store_check_admin_key (f->b, key));
  g_assert_no_error (error);
  g_assert_true (ok);
  key[0] = key[0] == 'a' ? 'b' : 'a';
  ok = ON_BACKEND (f, tocsin_relay_store_pg_check_admin_key (f->b, key, &error),
                   tocsin_relay_store_check_admin_key (f->b, key));
  g_assert_no_error (error);
  g_assert_false (ok);
  ok = ON_BACKEND (f, tocsin_relay_store_pg_check_admin_key (f->b, NULL, &error),
                   tocsin_relay_store_check_admin_key (f->b, NULL));
  g_assert_false (ok);
#ifdef HAVE_LIBPQ
  if (IS_PG (f))
    {
      g_autofree char *count = tocsin_test_postgres_psql (f->db.pg, "SELECT count(*) FROM"
                                                          " admin_keys WHERE length(hash) = 64");

      g_assert_cmpstr (g_strstrip (count), ==, "1");
    }
#endif

  for (guint i = 0; i < 2; i++)
    {
      const char *value = i == 0 ? "https://one.example" : "https://two.example";

      ok = ON_BACKEND (f, tocsin_relay_store_pg_set_public_url (i ? f->b : f->a, value, &error),
                       tocsin_relay_store_set_public_url (i ? f->b : f->a, value, &error));
      g_assert_no_error (error);
      g_assert_true (ok);
    }
  url = ON_BACKEND (f, tocsin_relay_store_pg_dup_public_url (f->a, &error),
                    tocsin_relay_store_dup_public_url (f->a));
  g_assert_cmpstr (url, ==, "https://two.example");
  ok = ON_BACKEND (f, tocsin_relay_store_pg_set_meta (f->a, "mail_domain", "m.example", &error),
                   tocsin_relay_store_set_meta (f->a, "mail_domain", "m.example", &error));
  g_assert_true (ok);
  domain = ON_BACKEND (f, tocsin_relay_store_pg_dup_meta (f->b, "mail_domain", &error),
                       tocsin_relay_store_dup_meta (f->b, "mail_domain"));
  g_assert_cmpstr (domain, ==, "m.example");
  none = ON_BACKEND (f, tocsin_relay_store_pg_dup_meta (f->b, "nothing", &error),
                     tocsin_relay_store_dup_meta (f->b, "nothing"));
  g_assert_no_error (error);
  g_assert_null (none);
}

static void
do_note (Fixture    *f,
         gpointer    h,
         gint64      channel_id,
         guint64     conn_id,
         const char *kind,
         gboolean    connected)
{
#ifdef HAVE_LIBPQ
  if (IS_PG (f))
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (tocsin_relay_store_pg_note_subscriber (h, channel_id, conn_id, kind,
                                                            "127.0.0.1", connected, &error));
      g_assert_no_error (error);
      return;
    }
#endif
  tocsin_relay_store_note_subscriber (h, channel_id, conn_id, kind, "127.0.0.1", connected);
}

static guint
presence_count (Fixture  *f,
                gpointer  h,
                gint64    channel_id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonArray) array =
    ON_BACKEND (f, tocsin_relay_store_pg_list_presence (h, channel_id,
                                                        g_get_real_time () / 1000, &error),
                tocsin_relay_store_list_presence (h, channel_id, &error));

  g_assert_no_error (error);
  return json_array_get_length (array);
}

/* Subscribers noted through both handles are listed through either; one leaving leaves the
 * other; deleting the channel leaves none. */
static void
test_same_presence (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonArray) listed = NULL;

  if (f->skipped)
    return;
  channel = f->backend->create (f->a, "watched");
  do_note (f, f->a, channel->id, 1, "ws", TRUE);
  do_note (f, f->b, channel->id, 2, "sse", TRUE);
  TOCSIN_WAIT_UNTIL (presence_count (f, f->a, channel->id) == 2);
  listed = ON_BACKEND (f, tocsin_relay_store_pg_list_presence (f->b, channel->id,
                                                               g_get_real_time () / 1000,
                                                               &error),
                       tocsin_relay_store_list_presence (f->b, channel->id, &error));
  g_assert_cmpuint (json_array_get_length (listed), ==, 2);
  {
    JsonObject *first = json_array_get_object_element (listed, 0);

    g_assert_cmpstr (json_object_get_string_member (first, "peer"), ==, "127.0.0.1");
    g_assert_true (json_object_has_member (first, "connectedAt"));
  }
  do_note (f, f->a, channel->id, 1, "ws", FALSE);
  TOCSIN_WAIT_UNTIL (presence_count (f, f->b, channel->id) == 1);
  g_assert_true (f->backend->delete (f->b, channel->id, &error));
  g_assert_no_error (error);
  TOCSIN_WAIT_UNTIL (presence_count (f, f->a, channel->id) == 0);
}

/* The outgoing-delivery queue: queued in the message's transaction (a duplicate queues
 * nothing), taken by one handle only, logged, finished through a batch, recovered after a
 * crash, listed for the owner, and pruned past retention. */
static void
test_same_deliveries (Fixture       *f,
                      gconstpointer  data)
{
  TocsinRelayChannelSpec spec = { .name = "forwarding", .forwards = FORWARDS };
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(TocsinRelayCommit) first = NULL, again = NULL;
  g_autoptr(GPtrArray) due = NULL, none_due = NULL, after_crash = NULL;
  g_autoptr(JsonObject) log = NULL, pruned = NULL;
  g_autoptr(TocsinRelayDelivery) finished = NULL, ack = NULL;
  g_autoptr(GArray) ops = tocsin_relay_delivery_ops_new ();
  g_autoptr(GArray) indices = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr(GError) error = NULL;
  TocsinRelayAttemptRecord record = { 0 };
  TocsinRelayDeliveryOp *op;
  TocsinRelayDelivery *delivery;
  gint64 now = g_get_real_time () / 1000;
  gint64 soon = now + 30000;   /* anything queued during the test is due by then */
  g_autofree char *expected = NULL;
  gint64 id, ack_id, next;
  guint attempt = 0, zero = 0;
  gint queued;
  gboolean ok;

  if (f->skipped)
    return;
  channel = do_create (f, f->a, &spec, NULL);
  g_assert_cmpuint (channel->forwards->len, ==, 1);
  first = do_commit_forwarding (f, f->a, channel, "key");
  again = do_commit_forwarding (f, f->b, channel, "key");
  g_assert_true (again->duplicate);

  due = do_due (f, f->b, soon);
  g_assert_cmpuint (due->len, ==, 1);
  delivery = due->pdata[0];
  id = delivery->id;
  g_assert_cmpint (delivery->message_id, ==, first->id);
  g_assert_cmpstr (delivery->event, ==, "message");
  g_assert_cmpstr (delivery->forward, ==, "hook");
  g_assert_true (g_str_has_prefix (delivery->webhook_id, "msg_"));
  g_assert_true (delivery->retry);
  g_assert_cmpint (delivery->state, ==, TOCSIN_RELAY_DELIVERY_PENDING);
  g_assert_nonnull (delivery->message);
  g_assert_true (g_bytes_equal (delivery->message, first->message));
  next = ON_BACKEND (f, tocsin_relay_store_pg_next_delivery_at (f->a, &error),
                     tocsin_relay_store_next_delivery_at (f->a));
  g_assert_cmpint (next, >, 0);
  g_assert_cmpint (next, <=, soon);

  /* Taken by one handle; the other finds it in flight. */
  g_assert_true (do_start (f, f->b, id, &attempt, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (attempt, ==, 1);
  g_assert_false (do_start (f, f->a, id, &attempt, &error));
  g_assert_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  none_due = do_due (f, f->a, soon);
  g_assert_cmpuint (none_due->len, ==, 0);
  next = ON_BACKEND (f, tocsin_relay_store_pg_next_delivery_at (f->a, &error),
                     tocsin_relay_store_next_delivery_at (f->a));
  g_assert_cmpint (next, ==, 0);

  /* A failed attempt, logged; due again in a minute. */
  record = (TocsinRelayAttemptRecord) { .at_ms = now, .duration_ms = 12, .attempt = 1,
                                        .url = "http://127.0.0.1:9/hook", .status = 503,
                                        .error = "Service Unavailable", .answer_start = "busy",
                                        .outcome = "retry", .next_retry_at_ms = now + 60000 };
  ok = ON_BACKEND (f, tocsin_relay_store_pg_finish_attempt (f->b, id, &record,
                                                            TOCSIN_RELAY_DELIVERY_PENDING,
                                                            now + 60000, &error),
                   tocsin_relay_store_finish_attempt (f->b, id, &record,
                                                      TOCSIN_RELAY_DELIVERY_PENDING,
                                                      now + 60000, &error));
  g_assert_no_error (error);
  g_assert_true (ok);
  g_clear_pointer (&due, g_ptr_array_unref);
  due = do_due (f, f->a, soon);
  g_assert_cmpuint (due->len, ==, 0);
  g_clear_pointer (&due, g_ptr_array_unref);
  due = do_due (f, f->a, now + 60000);
  g_assert_cmpuint (due->len, ==, 1);

  /* A batch: started and delivered in one transaction. */
  op = tocsin_relay_delivery_ops_add (ops, TOCSIN_RELAY_DELIVERY_OP_START, id);
  op = tocsin_relay_delivery_ops_add (ops, TOCSIN_RELAY_DELIVERY_OP_FINISH, id);
  op->state = TOCSIN_RELAY_DELIVERY_DELIVERED;
  op->at_ms = now + 60000;
  op->status = 200;
  op->url = g_strdup ("http://127.0.0.1:9/hook");
  op->outcome = g_strdup ("success");
  op->attempt = 2;
#ifdef HAVE_LIBPQ
  if (IS_PG (f))
    ok = tocsin_relay_store_pg_write_deliveries (f->a, ops, &error);
  else
#endif
    {
      g_autoptr(GAsyncResult) result = NULL;

      tocsin_relay_store_write_deliveries_async (f->a, ops, on_done, &result);
      TOCSIN_WAIT_UNTIL (result != NULL);
      ok = tocsin_relay_store_write_deliveries_finish (f->a, result, &error);
    }
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_cmpuint (g_array_index (ops, TocsinRelayDeliveryOp, 0).attempt, ==, 2);
  finished = do_get_delivery (f, f->b, id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (finished->state, ==, TOCSIN_RELAY_DELIVERY_DELIVERED);
  g_assert_cmpuint (finished->attempts, ==, 2);
  g_assert_cmpint (finished->next_at_ms, ==, 0);

  /* An acknowledgement's delivery, taken, then the handle crashes: after reopening, it is due
   * again at once (as the next attempt, same webhook-id). */
  g_array_append_val (indices, zero);
  queued = ON_BACKEND (f, tocsin_relay_store_pg_enqueue (f->a, channel->id, first->id,
                                                         first->message, "acknowledge", "ann",
                                                         channel->forwards, indices, &error),
                       -1);
  if (!IS_PG (f))
    {
      g_autoptr(GAsyncResult) result = NULL;

      tocsin_relay_store_enqueue_async (f->a, channel->id, first->id, first->message,
                                        "acknowledge", "ann", channel->forwards, indices,
                                        on_done, &result);
      TOCSIN_WAIT_UNTIL (result != NULL);
      queued = (gint) tocsin_relay_store_enqueue_finish (f->a, result, &error);
    }
  g_assert_no_error (error);
  g_assert_cmpint (queued, ==, 1);
  g_clear_pointer (&due, g_ptr_array_unref);
  due = do_due (f, f->a, soon);
  g_assert_cmpuint (due->len, ==, 1);
  ack_id = ((TocsinRelayDelivery *) due->pdata[0])->id;
  g_assert_cmpstr (((TocsinRelayDelivery *) due->pdata[0])->user, ==, "ann");
  g_assert_true (do_start (f, f->a, ack_id, &attempt, &error));
  g_assert_no_error (error);
  reopen (f, 0);
  g_assert_cmpuint (do_recover (f, f->a, now + 2000), ==, 1);
  g_assert_cmpuint (do_recover (f, f->a, now + 2000), ==, 0);
  after_crash = do_due (f, f->a, now + 2000);
  g_assert_cmpuint (after_crash->len, ==, 1);
  ack = do_get_delivery (f, f->b, ack_id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ack->attempts, ==, 1);
  g_assert_cmpint (ack->next_at_ms, ==, now + 2000);
  g_assert_cmpstr (ack->event, ==, "acknowledge");

  /* The owner's view, newest first, with the attempts of what it lists. */
  log = do_list_deliveries (f, f->b, channel->id);
  g_assert_cmpuint (json_length (log, "deliveries"), ==, 2);
  g_assert_cmpstr (json_nth_string (log, "deliveries", 0, "event"), ==, "acknowledge");
  g_assert_cmpstr (json_nth_string (log, "deliveries", 0, "user"), ==, "ann");
  g_assert_cmpstr (json_nth_string (log, "deliveries", 0, "state"), ==, "pending");
  g_assert_cmpstr (json_nth_string (log, "deliveries", 1, "state"), ==, "delivered");
  g_assert_cmpuint (json_length (log, "attempts"), ==, 2);
  g_assert_cmpstr (json_nth_string (log, "attempts", 0, "outcome"), ==, "success");
  g_assert_cmpstr (json_nth_string (log, "attempts", 1, "outcome"), ==, "retry");
  g_assert_cmpstr (json_nth_string (log, "attempts", 1, "error"), ==, "Service Unavailable");
  g_assert_cmpstr (json_nth_string (log, "attempts", 1, "answer_start"), ==, "busy");
  g_assert_cmpstr (json_nth_string (log, "attempts", 1, "forward"), ==, "hook");

  /* Two days on (retention 24 h): the delivered one and the log are gone, the waiting one
   * stays. */
  g_assert_true (f->backend->prune (f->b, now + 2 * 86400 * 1000, &error));
  g_assert_no_error (error);
  pruned = do_list_deliveries (f, f->a, channel->id);
  g_assert_cmpuint (json_length (pruned, "deliveries"), ==, 1);
  g_assert_cmpstr (json_nth_string (pruned, "deliveries", 0, "state"), ==, "pending");
  g_assert_cmpuint (json_length (pruned, "attempts"), ==, 0);
  g_clear_pointer (&finished, tocsin_relay_delivery_free);
  finished = do_get_delivery (f, f->a, id, &error);
  g_assert_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND);
  expected = g_strdup_printf ("There is no delivery %" G_GINT64_FORMAT, id);
  g_assert_cmpstr (error->message, ==, expected);
}

static void
add_same_cases (const Backend *backend)
{
  static const struct { const char *name; void (*func) (Fixture *, gconstpointer); } cases[] = {
    { "channels", test_same_channels },
    { "commit-order", test_same_commit_order },
    { "dedup-two-handles", test_same_dedup },
    { "prune", test_same_prune },
    { "update", test_same_update },
    { "lookups", test_same_lookups },
    { "keys-meta", test_same_keys_meta },
    { "presence", test_same_presence },
    { "deliveries", test_same_deliveries },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/relay/store-backends/%s/same/%s", backend->name,
                                               cases[i].name);

      g_test_add (path, Fixture, backend, fixture_setup, cases[i].func, fixture_teardown);
    }
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  add_same_cases (&sqlite_backend);
#ifdef HAVE_LIBPQ
  add_same_cases (&pg_backend);
#endif
  g_test_add_func ("/relay/store-backends/postgres-helper", test_postgres_helper);
  g_test_add_func ("/relay/store-backends/postgres-helper-crash", test_postgres_helper_crash);
  g_test_add_func ("/relay/store-backends/serve-database-unreachable",
                   test_serve_database_unreachable);
#ifdef HAVE_LIBPQ
  g_test_add_func ("/relay/store-backends/postgres/channels", test_pg_channels);
  g_test_add_func ("/relay/store-backends/postgres/commit-replay", test_pg_commit_replay);
  g_test_add_func ("/relay/store-backends/postgres/two-nodes-order", test_pg_two_nodes_order);
  g_test_add_func ("/relay/store-backends/postgres/dedup-two-nodes", test_pg_dedup_two_nodes);
  g_test_add_func ("/relay/store-backends/postgres/prune", test_pg_prune);
  g_test_add_func ("/relay/store-backends/postgres/restart", test_pg_restart);
  g_test_add_func ("/relay/store-backends/postgres/notify", test_pg_notify);
  g_test_add_func ("/relay/store-backends/postgres/node-gone", test_pg_node_gone);
  g_test_add_func ("/relay/store-backends/postgres/schema-concurrent", test_pg_schema_concurrent);
  g_test_add_func ("/relay/store-backends/postgres/open-under-writes", test_pg_open_under_writes);
  g_test_add_func ("/relay/store-backends/postgres/deliveries-two-nodes",
                   test_pg_deliveries_two_nodes);
#endif
  return g_test_run ();
}
