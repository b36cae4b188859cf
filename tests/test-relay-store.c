/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-store.c: the relay's SQLite store on its own, on real files in a temp dir.
 */
#define G_LOG_DOMAIN "test-relay-store"

#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "tocsin-token.h"
#include "tocsin-relay-api.h"
#include "tocsin-relay-ratelimit.h"
#include "tocsin-relay-store.h"
#include "tocsin-test-relay.h"

typedef struct
{
  char             *dir;
  char             *data_dir;
  TocsinRelayStore *store;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->dir = tocsin_test_make_tmpdir ("tocsin-store");
  /* A data dir that does not exist yet: the store creates it. */
  f->data_dir = g_build_filename (f->dir, "data", NULL);
  f->store = tocsin_relay_store_open (f->data_dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->store);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_pointer (&f->store, tocsin_relay_store_free);
  tocsin_test_rmdir_recursive (f->dir);
  g_free (f->data_dir);
  g_free (f->dir);
}

static TocsinRelayChannel *
create (Fixture    *f,
        const char *name,
        const char *title,
        const char *body,
        char      **owner_key)
{
  TocsinRelayChannelSpec spec = { .name = name, .title = title, .body = body };
  g_autoptr(GError) error = NULL;
  TocsinRelayChannel *channel;

  channel = tocsin_relay_store_create_channel (f->store, &spec, owner_key, &error);
  g_assert_no_error (error);
  g_assert_nonnull (channel);
  return channel;
}

typedef struct
{
  TocsinRelayCommit *commit;
  GError            *error;
  gboolean           done;
} CommitWait;

static void
commit_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  CommitWait *wait = user_data;

  wait->commit = tocsin_relay_store_commit_finish (NULL, result, &wait->error);
  wait->done = TRUE;
}

static TocsinMessage *
new_message (const char *title,
             gint64      time_ms)
{
  TocsinMessage *message = tocsin_message_new ();

  g_free (message->title);
  message->title = g_strdup (title);
  message->time_ms = time_ms ? time_ms : g_get_real_time () / 1000;
  json_object_set_string_member (message->vars, "t", title);
  return message;
}

/* Commits and waits for the writer thread to say the transaction is durable. */
static TocsinRelayCommit *
commit (TocsinRelayStore *store,
        gint64            channel_id,
        const char       *title,
        gint64            time_ms,
        const char       *key,
        const char       *content)
{
  CommitWait wait = { 0 };
  g_autofree char *key_hash = key ? tocsin_token_hash (key) : NULL;
  g_autofree char *content_hash = content ? tocsin_token_hash (content) : NULL;

  tocsin_relay_store_commit_async (store, channel_id, new_message (title, time_ms),
                                   key_hash, content_hash, commit_done, &wait);
  TOCSIN_WAIT_UNTIL (wait.done);
  g_assert_no_error (wait.error);
  g_assert_nonnull (wait.commit);
  return wait.commit;
}

typedef struct
{
  GArray    *ids;
  GPtrArray *titles;
} Replay;

static gboolean
replay_cb (gint64   id,
           GBytes  *data,
           gpointer user_data)
{
  Replay *replay = user_data;
  gsize length;
  const char *bytes = g_bytes_get_data (data, &length);
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinMessage) message = tocsin_message_new_from_data (bytes, length, &error);

  g_assert_no_error (error);
  g_assert_cmpint (message->id, ==, id);
  g_array_append_val (replay->ids, id);
  g_ptr_array_add (replay->titles, g_strdup (message->title));
  return TRUE;
}

static void
replay (TocsinRelayStore *store,
        gint64            channel_id,
        gint64            after,
        Replay           *out,
        gint64           *gap_from,
        gint64           *gap_to)
{
  g_autoptr(GError) error = NULL;

  out->ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  out->titles = g_ptr_array_new_with_free_func (g_free);
  g_assert_true (tocsin_relay_store_replay (store, channel_id, after, replay_cb, out,
                                            gap_from, gap_to, &error));
  g_assert_no_error (error);
}

static void
replay_clear (Replay *replay)
{
  g_array_unref (replay->ids);
  g_ptr_array_unref (replay->titles);
}

static guint
file_mode (const char *path)
{
  struct stat st;

  g_assert_cmpint (g_stat (path, &st), ==, 0);
  return st.st_mode & 0777;
}

static void
test_file_modes (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) channel = create (f, "Modes", NULL, NULL, NULL);
  g_autoptr(TocsinRelayCommit) c = commit (f->store, channel->id, "x", 0, NULL, NULL);
  g_autofree char *db = g_build_filename (f->data_dir, "relay.db", NULL);
  g_autofree char *wal = g_build_filename (f->data_dir, "relay.db-wal", NULL);

  g_assert_cmpuint (file_mode (f->data_dir), ==, 0700);
  g_assert_cmpuint (file_mode (db), ==, 0600);
  g_assert_true (g_file_test (wal, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (file_mode (wal), ==, 0600);
}

static void
test_channel_create_and_find (Fixture       *f,
                              gconstpointer  data)
{
  g_autofree char *owner = NULL;
  g_autoptr(TocsinRelayChannel) channel = create (f, "  Prod alerts  ",
                                                  "Alerte serveur {{server_name}}",
                                                  "L'utilisation du CPU a atteint {{cpu_usage}}%",
                                                  &owner);
  g_autoptr(TocsinRelayChannel) by_trigger = NULL, by_subscribe = NULL, by_id = NULL;
  g_autoptr(TocsinRelayChannel) by_owner = NULL, second = NULL;
  g_autoptr(GPtrArray) all = NULL;
  g_autoptr(JsonObject) owner_json = NULL, public_json = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *webhook = NULL, *websocket = NULL;

  g_assert_cmpint (channel->id, >, 0);
  g_assert_cmpstr (channel->name, ==, "Prod alerts");
  g_assert_cmpstr (channel->title_source, ==, "Alerte serveur {{server_name}}");
  g_assert_true (tocsin_token_is_wellformed (channel->trigger_token));
  g_assert_true (tocsin_token_is_wellformed (channel->subscribe_token));
  g_assert_true (tocsin_token_is_wellformed (owner));
  g_assert_cmpstr (channel->trigger_token, !=, channel->subscribe_token);
  g_assert_cmpint (channel->last_id, ==, 0);

  by_trigger = tocsin_relay_store_find_by_trigger (f->store, channel->trigger_token);
  by_subscribe = tocsin_relay_store_find_by_subscribe (f->store, channel->subscribe_token);
  by_id = tocsin_relay_store_find_by_id (f->store, channel->id);
  by_owner = tocsin_relay_store_find_by_owner_key (f->store, owner);
  g_assert_nonnull (by_trigger);
  g_assert_nonnull (by_subscribe);
  g_assert_nonnull (by_id);
  g_assert_nonnull (by_owner);
  g_assert_cmpint (by_trigger->id, ==, channel->id);
  g_assert_cmpint (by_owner->id, ==, channel->id);

  /* Tokens of one kind do not open the other doors. */
  g_assert_null (tocsin_relay_store_find_by_trigger (f->store, channel->subscribe_token));
  g_assert_null (tocsin_relay_store_find_by_subscribe (f->store, channel->trigger_token));
  g_assert_null (tocsin_relay_store_find_by_owner_key (f->store, channel->trigger_token));
  g_assert_null (tocsin_relay_store_find_by_trigger (f->store, "nope"));
  g_assert_null (tocsin_relay_store_find_by_trigger (f->store, ""));
  g_assert_null (tocsin_relay_store_find_by_id (f->store, channel->id + 100));

  second = create (f, "Second", NULL, NULL, NULL);
  g_assert_cmpint (second->id, >, channel->id);
  all = tocsin_relay_store_list_channels (f->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (all->len, ==, 2);
  g_assert_cmpstr (((TocsinRelayChannel *) all->pdata[0])->name, ==, "Prod alerts");

  owner_json = tocsin_relay_channel_to_owner_json (channel, "http://relay.example");
  webhook = g_strconcat ("http://relay.example/t/", channel->trigger_token, NULL);
  g_assert_cmpstr (json_object_get_string_member (owner_json, "webhook_url"), ==, webhook);
  public_json = tocsin_relay_channel_to_public_json (channel, "https://relay.example");
  g_assert_false (json_object_has_member (public_json, "trigger_token"));
  websocket = g_strconcat ("wss://relay.example/s/", channel->subscribe_token, "/ws", NULL);
  g_assert_cmpstr (json_object_get_string_member (public_json, "websocketUrl"), ==, websocket);
}

static void
test_channel_refused (Fixture       *f,
                      gconstpointer  data)
{
  TocsinRelayChannelSpec bad_template = { .name = "Bad", .title = "Alerte {{server_name" };
  TocsinRelayChannelSpec no_name = { .name = "   " };
  TocsinRelayChannelSpec bad_utf8 = { .name = "caf\xc3" };
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) all = NULL;

  g_assert_null (tocsin_relay_store_create_channel (f->store, &bad_template, NULL, &error));
  g_assert_error (error, TOCSIN_TEMPLATE_ERROR, TOCSIN_TEMPLATE_ERROR_SYNTAX);
  g_clear_error (&error);

  g_assert_null (tocsin_relay_store_create_channel (f->store, &no_name, NULL, &error));
  g_assert_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_INVALID);
  g_clear_error (&error);

  g_assert_null (tocsin_relay_store_create_channel (f->store, &bad_utf8, NULL, &error));
  g_assert_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_INVALID);
  g_clear_error (&error);

  all = tocsin_relay_store_list_channels (f->store, &error);
  g_assert_cmpuint (all->len, ==, 0);
}

static void
test_update_and_rotate (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) channel = create (f, "Before", "t {{a}}", "b", NULL);
  TocsinRelayChannelSpec rename = { .name = "After", .body = "new {{b}}" };
  TocsinRelayChannelSpec bad = { .body = "{{" };
  g_autoptr(TocsinRelayChannel) updated = NULL, rotated = NULL, other_view = NULL;
  g_autoptr(TocsinRelayChannel) again = NULL;
  g_autoptr(TocsinRelayChannel) before = NULL;
  g_autoptr(TocsinRelayChannel) after = NULL;
  g_autofree char *old_trigger = g_strdup (channel->trigger_token);
  g_autofree char *old_subscribe = g_strdup (channel->subscribe_token);
  g_autoptr(GError) error = NULL;
  TocsinRelayStore *other;

  updated = tocsin_relay_store_update_channel (f->store, channel->id, &rename, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (updated->name, ==, "After");
  g_assert_cmpstr (updated->title_source, ==, "t {{a}}");
  g_assert_cmpstr (updated->body_source, ==, "new {{b}}");

  /* A template that does not compile changes nothing. */
  g_assert_null (tocsin_relay_store_update_channel (f->store, channel->id, &bad, &error));
  g_assert_error (error, TOCSIN_TEMPLATE_ERROR, TOCSIN_TEMPLATE_ERROR_SYNTAX);
  g_clear_error (&error);
  again = tocsin_relay_store_find_by_id (f->store, channel->id);
  g_assert_cmpstr (again->body_source, ==, "new {{b}}");

  g_assert_null (tocsin_relay_store_update_channel (f->store, 999, &rename, &error));
  g_assert_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* A second handle on the same files plays the CLI in another process: its rotation takes
   * effect in this one at once. */
  other = tocsin_relay_store_open (f->data_dir, &error);
  g_assert_no_error (error);
  before = tocsin_relay_store_find_by_trigger (f->store, old_trigger);
  g_assert_nonnull (before);
  rotated = tocsin_relay_store_rotate_trigger (other, channel->id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (rotated->trigger_token, !=, old_trigger);
  g_assert_null (tocsin_relay_store_find_by_trigger (f->store, old_trigger));
  other_view = tocsin_relay_store_find_by_trigger (f->store, rotated->trigger_token);
  g_assert_nonnull (other_view);
  g_assert_cmpstr (other_view->name, ==, "After");
  g_clear_pointer (&rotated, tocsin_relay_channel_unref);

  rotated = tocsin_relay_store_rotate_subscribe (other, channel->id, &error);
  g_assert_no_error (error);
  g_assert_null (tocsin_relay_store_find_by_subscribe (f->store, old_subscribe));
  after = tocsin_relay_store_find_by_subscribe (f->store, rotated->subscribe_token);
  g_assert_nonnull (after);
  tocsin_relay_store_free (other);
}

static void
test_commit_and_replay (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) a = create (f, "A", NULL, NULL, NULL);
  g_autoptr(TocsinRelayChannel) b = create (f, "B", NULL, NULL, NULL);
  g_autoptr(TocsinRelayChannel) reread = NULL;
  gint64 gap_from = -1, gap_to = -1;
  Replay r;

  for (int i = 1; i <= 3; i++)
    {
      g_autofree char *title = g_strdup_printf ("a%d", i);
      g_autoptr(TocsinRelayCommit) c = commit (f->store, a->id, title, 0, NULL, NULL);

      g_assert_cmpint (c->id, ==, i);
      g_assert_false (c->duplicate);
      g_assert_cmpint (c->replaces, ==, 0);
      g_assert_nonnull (c->message);
    }
  {
    /* Ids count per channel. */
    g_autoptr(TocsinRelayCommit) c = commit (f->store, b->id, "b1", 0, NULL, NULL);
    g_autoptr(TocsinMessage) m = NULL;
    gsize length;
    const char *bytes = g_bytes_get_data (c->message, &length);

    g_assert_cmpint (c->id, ==, 1);
    m = tocsin_message_new_from_data (bytes, length, NULL);
    g_assert_nonnull (m);
    g_assert_cmpint (m->channel, ==, b->id);
    g_assert_cmpstr (m->title, ==, "b1");
  }

  reread = tocsin_relay_store_find_by_id (f->store, a->id);
  g_assert_cmpint (reread->last_id, ==, 3);

  replay (f->store, a->id, -1, &r, &gap_from, &gap_to);
  g_assert_cmpuint (r.ids->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    g_assert_cmpint (g_array_index (r.ids, gint64, i), ==, i + 1);
  g_assert_cmpstr (r.titles->pdata[2], ==, "a3");
  g_assert_cmpint (gap_from, ==, 0);
  g_assert_cmpint (gap_to, ==, 0);
  replay_clear (&r);

  replay (f->store, a->id, 1, &r, &gap_from, &gap_to);
  g_assert_cmpuint (r.ids->len, ==, 2);
  g_assert_cmpint (g_array_index (r.ids, gint64, 0), ==, 2);
  g_assert_cmpint (gap_from, ==, 0);
  replay_clear (&r);

  replay (f->store, a->id, 3, &r, NULL, NULL);
  g_assert_cmpuint (r.ids->len, ==, 0);
  replay_clear (&r);
}

static gboolean
all_done (const CommitWait *waits,
          guint             n)
{
  for (guint i = 0; i < n; i++)
    if (!waits[i].done)
      return FALSE;
  return TRUE;
}

static void
test_group_commit (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) channel = create (f, "Burst", NULL, NULL, NULL);
  CommitWait waits[300] = { 0 };
  g_autoptr(GHashTable) seen = g_hash_table_new (g_int64_hash, g_int64_equal);

  /* Queued faster than the writer can commit one by one: batches form. */
  for (guint i = 0; i < G_N_ELEMENTS (waits); i++)
    tocsin_relay_store_commit_async (f->store, channel->id, new_message ("burst", 0), NULL, NULL,
                                     commit_done, &waits[i]);
  TOCSIN_WAIT_UNTIL (all_done (waits, G_N_ELEMENTS (waits)));
  for (guint i = 0; i < G_N_ELEMENTS (waits); i++)
    {
      g_assert_no_error (waits[i].error);
      g_assert_false (g_hash_table_contains (seen, &waits[i].commit->id));
      g_hash_table_add (seen, &waits[i].commit->id);
      g_assert_cmpint (waits[i].commit->id, >=, 1);
      g_assert_cmpint (waits[i].commit->id, <=, G_N_ELEMENTS (waits));
    }
  for (guint i = 0; i < G_N_ELEMENTS (waits); i++)
    tocsin_relay_commit_free (waits[i].commit);
}

static void
test_dedup (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) channel = create (f, "Dedup", NULL, NULL, NULL);
  g_autoptr(TocsinRelayCommit) first = NULL, repeat = NULL, changed = NULL, other = NULL;
  g_autoptr(TocsinRelayCommit) back = NULL, old = NULL, after_window = NULL;
  g_autoptr(TocsinMessage) m = NULL;
  g_autoptr(TocsinRelayChannel) reread = NULL;
  gint64 now = g_get_real_time () / 1000;
  gsize length;
  const char *bytes;
  Replay r;

  first = commit (f->store, channel->id, "v1", 0, "evt-1", "content-1");
  g_assert_cmpint (first->id, ==, 1);

  /* Same key, same content: the original id, nothing stored, nothing to deliver. */
  repeat = commit (f->store, channel->id, "v1", 0, "evt-1", "content-1");
  g_assert_true (repeat->duplicate);
  g_assert_cmpint (repeat->id, ==, 1);
  g_assert_null (repeat->message);

  /* Same key, new content: a new message that replaces the first. */
  changed = commit (f->store, channel->id, "v2", 0, "evt-1", "content-2");
  g_assert_false (changed->duplicate);
  g_assert_cmpint (changed->id, ==, 2);
  g_assert_cmpint (changed->replaces, ==, 1);
  bytes = g_bytes_get_data (changed->message, &length);
  m = tocsin_message_new_from_data (bytes, length, NULL);
  g_assert_cmpint (m->replaces, ==, 1);

  /* Another key is another message. */
  other = commit (f->store, channel->id, "v1", 0, "evt-2", "content-1");
  g_assert_false (other->duplicate);
  g_assert_cmpint (other->id, ==, 3);
  g_assert_cmpint (other->replaces, ==, 0);

  /* Back to the first content: it differs from the latest, so it replaces again. */
  back = commit (f->store, channel->id, "v1", 0, "evt-1", "content-1");
  g_assert_cmpint (back->id, ==, 4);
  g_assert_cmpint (back->replaces, ==, 2);

  /* A key last seen more than 24 hours ago is forgotten. */
  old = commit (f->store, channel->id, "old", now - 25 * 3600 * 1000, "evt-old", "c");
  after_window = commit (f->store, channel->id, "old", 0, "evt-old", "c");
  g_assert_false (after_window->duplicate);
  g_assert_cmpint (after_window->replaces, ==, 0);

  reread = tocsin_relay_store_find_by_id (f->store, channel->id);
  g_assert_cmpint (reread->last_id, ==, 6);

  replay (f->store, channel->id, -1, &r, NULL, NULL);
  /* The 25-hour-old one is past the default 24 h retention. */
  g_assert_cmpuint (r.ids->len, ==, 5);
  replay_clear (&r);
}

static void
test_dedup_keys_hashed (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) channel = create (f, "Hashes", NULL, NULL, NULL);
  g_autoptr(TocsinRelayCommit) c = NULL;
  g_autofree char *db = g_build_filename (f->data_dir, "relay.db", NULL);
  g_autofree char *wal = g_build_filename (f->data_dir, "relay.db-wal", NULL);
  const char *key = "secret-event-key-4242";
  g_autofree char *contents = NULL;
  gsize length = 0;

  c = commit (f->store, channel->id, "x", 0, key, "content");
  g_clear_pointer (&f->store, tocsin_relay_store_free);

  /* Neither the database nor its WAL holds the key itself. */
  g_assert_true (g_file_get_contents (db, &contents, &length, NULL));
  g_assert_null (g_strstr_len (contents, length, key));
  g_clear_pointer (&contents, g_free);
  if (g_file_get_contents (wal, &contents, &length, NULL))
    g_assert_null (g_strstr_len (contents, length, key));
}

static void
test_retention (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) channel = create (f, "Retention", NULL, NULL, NULL);
  gint64 now = g_get_real_time () / 1000;
  gint64 gap_from = 0, gap_to = 0;
  g_autoptr(GError) error = NULL;
  Replay r;

  tocsin_relay_store_set_retention (f->store, 3600);
  for (int i = 0; i < 3; i++)
    tocsin_relay_commit_free (commit (f->store, channel->id, "old", now - 2 * 3600 * 1000,
                                      NULL, NULL));
  for (int i = 0; i < 2; i++)
    tocsin_relay_commit_free (commit (f->store, channel->id, "new", 0, NULL, NULL));

  /* Past retention is not replayed even before pruning runs, and a cursor older than what is
   * kept gets a gap naming what is gone. */
  replay (f->store, channel->id, 1, &r, &gap_from, &gap_to);
  g_assert_cmpuint (r.ids->len, ==, 2);
  g_assert_cmpint (g_array_index (r.ids, gint64, 0), ==, 4);
  g_assert_cmpint (gap_from, ==, 2);
  g_assert_cmpint (gap_to, ==, 3);
  replay_clear (&r);

  /* "Everything retained" is not a cursor: no gap. */
  replay (f->store, channel->id, -1, &r, &gap_from, &gap_to);
  g_assert_cmpuint (r.ids->len, ==, 2);
  g_assert_cmpint (gap_from, ==, 0);
  replay_clear (&r);

  g_assert_true (tocsin_relay_store_prune (f->store, now, &error));
  g_assert_no_error (error);
  tocsin_relay_store_set_retention (f->store, 100 * 3600);
  replay (f->store, channel->id, -1, &r, NULL, NULL);
  g_assert_cmpuint (r.ids->len, ==, 2);
  replay_clear (&r);

  /* Live only: ids still count up, nothing is kept, a cursor sees the gap. */
  tocsin_relay_store_set_retention (f->store, 0);
  {
    g_autoptr(TocsinRelayCommit) c = commit (f->store, channel->id, "live", 0, NULL, NULL);

    g_assert_cmpint (c->id, ==, 6);
    g_assert_nonnull (c->message);
  }
  replay (f->store, channel->id, 5, &r, &gap_from, &gap_to);
  g_assert_cmpuint (r.ids->len, ==, 0);
  g_assert_cmpint (gap_from, ==, 6);
  g_assert_cmpint (gap_to, ==, 6);
  replay_clear (&r);
}

static void
test_delete (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) channel = create (f, "Doomed", NULL, NULL, NULL);
  g_autoptr(GError) error = NULL;
  CommitWait wait = { 0 };

  tocsin_relay_commit_free (commit (f->store, channel->id, "x", 0, "k", "c"));
  g_assert_true (tocsin_relay_store_delete_channel (f->store, channel->id, &error));
  g_assert_no_error (error);
  g_assert_null (tocsin_relay_store_find_by_id (f->store, channel->id));
  g_assert_null (tocsin_relay_store_find_by_trigger (f->store, channel->trigger_token));
  g_assert_false (tocsin_relay_store_replay (f->store, channel->id, -1, replay_cb, NULL,
                                             NULL, NULL, &error));
  g_assert_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_false (tocsin_relay_store_delete_channel (f->store, channel->id, &error));
  g_assert_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* A commit racing the delete fails cleanly. */
  tocsin_relay_store_commit_async (f->store, channel->id, new_message ("late", 0), NULL, NULL,
                                   commit_done, &wait);
  TOCSIN_WAIT_UNTIL (wait.done);
  g_assert_error (wait.error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND);
  g_clear_error (&wait.error);
}

static void
test_admin_keys (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *key = tocsin_relay_store_create_admin_key (f->store, &error);

  g_assert_no_error (error);
  g_assert_true (tocsin_token_is_wellformed (key));
  g_assert_true (tocsin_relay_store_check_admin_key (f->store, key));
  key[3] = key[3] == 'A' ? 'B' : 'A';
  g_assert_false (tocsin_relay_store_check_admin_key (f->store, key));
  g_assert_false (tocsin_relay_store_check_admin_key (f->store, ""));
  g_assert_false (tocsin_relay_store_check_admin_key (f->store, NULL));
}

static guint
presence_count (TocsinRelayStore *store,
                gint64            channel_id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonArray) array = tocsin_relay_store_list_presence (store, channel_id, &error);

  g_assert_no_error (error);
  return json_array_get_length (array);
}

static void
test_presence (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) channel = create (f, "Presence", NULL, NULL, NULL);
  g_autoptr(JsonArray) array = NULL;
  JsonObject *first;

  tocsin_relay_store_note_subscriber (f->store, channel->id, 1, "ws", "127.0.0.1:4000", TRUE);
  tocsin_relay_store_note_subscriber (f->store, channel->id, 2, "sse", "[::1]:4001", TRUE);
  TOCSIN_WAIT_UNTIL (presence_count (f->store, channel->id) == 2);

  array = tocsin_relay_store_list_presence (f->store, channel->id, NULL);
  first = json_array_get_object_element (array, 0);
  g_assert_cmpstr (json_object_get_string_member (first, "kind"), ==, "ws");
  g_assert_cmpstr (json_object_get_string_member (first, "peer"), ==, "127.0.0.1:4000");
  g_assert_cmpint (tocsin_parse_time_ms (json_object_get_string_member (first, "connectedAt")),
                   >, 0);

  tocsin_relay_store_note_subscriber (f->store, channel->id, 1, "ws", "127.0.0.1:4000", FALSE);
  TOCSIN_WAIT_UNTIL (presence_count (f->store, channel->id) == 1);
}

static void
test_rate_limit (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(TocsinRelayRateLimit) limit = tocsin_relay_rate_limit_new ();
  gint64 t = 1000 * G_USEC_PER_SEC;
  guint remaining = 0, reset = 0, retry = 0;

  for (int i = 0; i < 3; i++)
    g_assert_true (tocsin_relay_rate_limit_take (limit, 1, 1.0, 3, t, &remaining, &reset,
                                                 &retry));
  g_assert_cmpuint (remaining, ==, 0);
  g_assert_false (tocsin_relay_rate_limit_take (limit, 1, 1.0, 3, t, &remaining, &reset, &retry));
  g_assert_cmpuint (retry, ==, 1);
  g_assert_cmpuint (reset, ==, 3);

  /* Another channel has its own bucket. */
  g_assert_true (tocsin_relay_rate_limit_take (limit, 2, 1.0, 3, t, NULL, NULL, NULL));

  /* A second later one token is back, and only one. */
  t += G_USEC_PER_SEC;
  g_assert_true (tocsin_relay_rate_limit_take (limit, 1, 1.0, 3, t, NULL, NULL, NULL));
  g_assert_false (tocsin_relay_rate_limit_take (limit, 1, 1.0, 3, t, NULL, NULL, &retry));
  g_assert_cmpuint (retry, ==, 1);
}

/* The acknowledgement means durable: a process killed with SIGKILL right after the commit
 * callback loses nothing. */
static void
test_kill_after_commit (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) channel = create (f, "Durable", NULL, NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, channel->id);
  Replay r;

  if (g_test_subprocess ())
    {
      const char *dir = g_getenv ("TOCSIN_STORE_DIR");
      TocsinRelayStore *store = tocsin_relay_store_open (dir, &error);
      g_autoptr(TocsinRelayCommit) c = NULL;

      g_assert_no_error (error);
      c = commit (store, atoi (g_getenv ("TOCSIN_STORE_CHANNEL")), "survivor", 0, NULL, NULL);
      g_assert_cmpint (c->id, ==, 1);
      tocsin_test_rmdir_recursive (f->dir);  /* the subprocess's own fixture */
      kill (getpid (), SIGKILL);
      g_assert_not_reached ();
    }

  g_setenv ("TOCSIN_STORE_DIR", f->data_dir, TRUE);
  g_setenv ("TOCSIN_STORE_CHANNEL", id, TRUE);
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_failed ();

  g_clear_pointer (&f->store, tocsin_relay_store_free);
  f->store = tocsin_relay_store_open (f->data_dir, &error);
  g_assert_no_error (error);
  replay (f->store, channel->id, -1, &r, NULL, NULL);
  g_assert_cmpuint (r.ids->len, ==, 1);
  g_assert_cmpstr (r.titles->pdata[0], ==, "survivor");
  replay_clear (&r);
}

/* A replay page reads (and hands over) at most its limit, and pages chained on the last id sent
 * give every retained message once, in order, with the gap named on the first page. */
static void
test_replay_paged (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) channel = create (f, "Paged", "{{t}}", "", NULL);
  g_autoptr(GArray) all = g_array_new (FALSE, FALSE, sizeof (gint64));
  gint64 old_ms = g_get_real_time () / 1000 - 2 * 86400 * 1000;
  gint64 cursor = 0;
  guint pages = 0;

  /* Two past retention (the default day), then ten retained. */
  for (guint i = 0; i < 12; i++)
    {
      g_autofree char *title = g_strdup_printf ("m%u", i + 1);

      tocsin_relay_commit_free (commit (f->store, channel->id, title, i < 2 ? old_ms : 0, NULL,
                                        NULL));
    }

  for (;;)
    {
      Replay page = { 0 };
      g_autoptr(GError) error = NULL;
      gint64 gap_from = -1, gap_to = -1;

      page.ids = g_array_new (FALSE, FALSE, sizeof (gint64));
      page.titles = g_ptr_array_new_with_free_func (g_free);
      g_assert_true (tocsin_relay_store_replay_page (f->store, channel->id, cursor, 3, replay_cb,
                                                     &page, &gap_from, &gap_to, &error));
      g_assert_no_error (error);
      /* replay_cb never asks to stop: the limit alone bounds the page. */
      g_assert_cmpuint (page.ids->len, <=, 3);
      if (pages++ == 0)
        {
          g_assert_cmpint (gap_from, ==, 1);
          g_assert_cmpint (gap_to, ==, 2);
        }
      else
        {
          g_assert_cmpint (gap_from, ==, 0);
          g_assert_cmpint (gap_to, ==, 0);
        }
      g_array_append_vals (all, page.ids->data, page.ids->len);
      if (page.ids->len > 0)
        cursor = g_array_index (page.ids, gint64, page.ids->len - 1);
      else if (cursor == 0)
        cursor = 2;
      if (page.ids->len < 3)
        {
          replay_clear (&page);
          break;
        }
      replay_clear (&page);
      g_assert_cmpuint (pages, <, 10);
    }

  g_assert_cmpuint (pages, ==, 4);
  g_assert_cmpuint (all->len, ==, 10);
  for (guint i = 0; i < all->len; i++)
    g_assert_cmpint (g_array_index (all, gint64, i), ==, i + 3);
}

typedef struct
{
  GAsyncResult *result;
} AsyncWait;

static void
async_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  AsyncWait *wait = user_data;

  wait->result = g_object_ref (result);
}

/* The reader thread's page reads give what the synchronous ones give, and its token lookup sees
 * rotations and deletions made through another connection at once. */
static void
test_reader_thread (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(TocsinRelayChannel) kept = create (f, "Kept", "{{t}}", "", NULL);
  g_autoptr(TocsinRelayChannel) rotated = create (f, "Rotated", "{{t}}", "", NULL);
  g_autoptr(TocsinRelayChannel) deleted = create (f, "Deleted", "{{t}}", "", NULL);
  g_autoptr(TocsinRelayChannel) now_rotated = NULL;
  g_autoptr(TocsinRelayReplayPage) page = NULL;
  g_autoptr(GHashTable) tokens = NULL;
  g_autoptr(GError) error = NULL;
  gint64 ids[] = { kept->id, rotated->id, deleted->id, 999 };
  AsyncWait wait = { 0 };

  for (guint i = 0; i < 5; i++)
    tocsin_relay_commit_free (commit (f->store, kept->id, "m", 0, NULL, NULL));

  tocsin_relay_store_replay_page_async (f->store, kept->id, 1, 3, NULL, async_done, &wait);
  TOCSIN_WAIT_UNTIL (wait.result != NULL);
  page = tocsin_relay_store_replay_page_finish (f->store, wait.result, &error);
  g_clear_object (&wait.result);
  g_assert_no_error (error);
  g_assert_cmpuint (page->ids->len, ==, 3);
  g_assert_cmpuint (page->messages->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      gsize length;
      const char *bytes = g_bytes_get_data (page->messages->pdata[i], &length);
      g_autoptr(TocsinMessage) message = tocsin_message_new_from_data (bytes, length, &error);

      g_assert_no_error (error);
      g_assert_cmpint (g_array_index (page->ids, gint64, i), ==, i + 2);
      g_assert_cmpint (message->id, ==, i + 2);
    }
  g_assert_cmpint (page->gap_from, ==, 0);

  /* A channel that is not there is an error, not a crash. */
  tocsin_relay_store_replay_page_async (f->store, 999, 0, 3, NULL, async_done, &wait);
  TOCSIN_WAIT_UNTIL (wait.result != NULL);
  g_assert_null (tocsin_relay_store_replay_page_finish (f->store, wait.result, &error));
  g_clear_object (&wait.result);
  g_assert_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  now_rotated = tocsin_relay_store_rotate_subscribe (f->store, rotated->id, &error);
  g_assert_no_error (error);
  g_assert_true (tocsin_relay_store_delete_channel (f->store, deleted->id, &error));
  g_assert_no_error (error);

  tocsin_relay_store_lookup_subscribe_tokens_async (f->store, ids, G_N_ELEMENTS (ids), NULL,
                                                    async_done, &wait);
  TOCSIN_WAIT_UNTIL (wait.result != NULL);
  tokens = tocsin_relay_store_lookup_subscribe_tokens_finish (f->store, wait.result, &error);
  g_clear_object (&wait.result);
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (tokens), ==, 2);
  g_assert_cmpstr (g_hash_table_lookup (tokens, &kept->id), ==, kept->subscribe_token);
  g_assert_cmpstr (g_hash_table_lookup (tokens, &rotated->id), ==,
                   now_rotated->subscribe_token);
  g_assert_cmpstr (g_hash_table_lookup (tokens, &rotated->id), !=, rotated->subscribe_token);
  g_assert_null (g_hash_table_lookup (tokens, &deleted->id));
}

/* A database that a relay before the email trigger wrote (schema version 1, a channel in it)
 * opens: the channel keeps its tokens, gains an email token, and mail finds it. */
static void
test_migrate_email_token (void)
{
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-store-old");
  g_autofree char *path = g_build_filename (dir, "relay.db", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL, found = NULL, rotated = NULL, gone = NULL;
  TocsinRelayStore *store;
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db,
                                 "CREATE TABLE channels ("
                                 "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
                                 "  version INTEGER NOT NULL DEFAULT 1,"
                                 "  name TEXT NOT NULL,"
                                 "  description TEXT NOT NULL DEFAULT '',"
                                 "  title TEXT NOT NULL DEFAULT '',"
                                 "  body TEXT NOT NULL DEFAULT '',"
                                 "  link TEXT NOT NULL DEFAULT '',"
                                 "  condition TEXT NOT NULL DEFAULT '',"
                                 "  trigger_token TEXT NOT NULL,"
                                 "  trigger_hash TEXT NOT NULL UNIQUE,"
                                 "  subscribe_token TEXT NOT NULL,"
                                 "  subscribe_hash TEXT NOT NULL UNIQUE,"
                                 "  owner_hash TEXT NOT NULL UNIQUE,"
                                 "  created_at INTEGER NOT NULL,"
                                 "  last_id INTEGER NOT NULL DEFAULT 0);"
                                 "INSERT INTO channels (name, title, trigger_token, trigger_hash,"
                                 " subscribe_token, subscribe_hash, owner_hash, created_at)"
                                 " VALUES ('Old', 'Old {{x}}', 't', 'th', 's', 'sh', 'oh', 1);"
                                 "PRAGMA user_version=1;",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  store = tocsin_relay_store_open (dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (store);
  channel = tocsin_relay_store_find_by_id (store, 1);
  g_assert_nonnull (channel);
  g_assert_cmpstr (channel->name, ==, "Old");
  g_assert_cmpstr (channel->title_source, ==, "Old {{x}}");
  g_assert_cmpstr (channel->trigger_token, ==, "t");
  /* 160 bits as lowercase base32: what survives mail systems' case folding. */
  g_assert_cmpuint (strlen (channel->email_token), ==, TOCSIN_MAIL_TOKEN_CHARS);
  for (const char *p = channel->email_token; *p; p++)
    g_assert_true ((*p >= 'a' && *p <= 'z') || (*p >= '2' && *p <= '7'));
  found = tocsin_relay_store_find_by_email (store, channel->email_token);
  g_assert_nonnull (found);
  g_assert_cmpint (found->id, ==, 1);

  rotated = tocsin_relay_store_rotate_email (store, 1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (rotated->email_token, !=, channel->email_token);
  gone = tocsin_relay_store_find_by_email (store, channel->email_token);
  g_assert_null (gone);
  g_clear_pointer (&found, tocsin_relay_channel_unref);
  found = tocsin_relay_store_find_by_email (store, rotated->email_token);
  g_assert_nonnull (found);
  tocsin_relay_store_free (store);

  /* Opened again, it keeps the token it was given. */
  store = tocsin_relay_store_open (dir, &error);
  g_assert_no_error (error);
  g_clear_pointer (&found, tocsin_relay_channel_unref);
  found = tocsin_relay_store_find_by_id (store, 1);
  g_assert_cmpstr (found->email_token, ==, rotated->email_token);
  tocsin_relay_store_free (store);
  tocsin_test_rmdir_recursive (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/relay/store/file-modes", test_file_modes);
  ADD ("/relay/store/channel/create-and-find", test_channel_create_and_find);
  ADD ("/relay/store/channel/refused", test_channel_refused);
  ADD ("/relay/store/channel/update-and-rotate", test_update_and_rotate);
  ADD ("/relay/store/channel/delete", test_delete);
  ADD ("/relay/store/commit/replay", test_commit_and_replay);
  ADD ("/relay/store/commit/group", test_group_commit);
  ADD ("/relay/store/replay/paged", test_replay_paged);
  ADD ("/relay/store/replay/reader-thread", test_reader_thread);
  ADD ("/relay/store/commit/kill-after-commit", test_kill_after_commit);
  ADD ("/relay/store/dedup/replace", test_dedup);
  ADD ("/relay/store/dedup/hashed", test_dedup_keys_hashed);
  ADD ("/relay/store/retention", test_retention);
  ADD ("/relay/store/admin-keys", test_admin_keys);
  ADD ("/relay/store/presence", test_presence);
  ADD ("/relay/ratelimit/per-channel", test_rate_limit);
#undef ADD
  g_test_add_func ("/relay/store/migrate/email-token", test_migrate_email_token);

  return g_test_run ();
}
