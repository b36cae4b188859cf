/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-app-history.c: the app's local store (a real SQLite file in a temp dir) and the
 * records list model over it, as the window and the export see them.
 */
#include "config.h"

#include <sys/stat.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "tocsin-history.h"
#include "tocsin-record-list.h"
#include "tocsin-test-relay.h"

#define RELAY "http://relay.test"

typedef struct
{
  char          *dir;
  char          *path;
  TocsinHistory *history;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->dir = tocsin_test_make_tmpdir ("tocsin-history-test");
  f->path = g_build_filename (f->dir, "sub", "tocsin", "history.db", NULL);
  f->history = tocsin_history_new (f->path);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  tocsin_history_flush_sync (f->history);
  g_clear_object (&f->history);
  tocsin_test_rmdir_recursive (f->dir);
  g_free (f->path);
  g_free (f->dir);
}

static void
store_result (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

#define WAIT_RESULT(res) TOCSIN_WAIT_UNTIL ((res) != NULL)

static TocsinMessage *
make_message (gint64      channel,
              gint64      id,
              const char *title,
              const char *body)
{
  TocsinMessage *message = tocsin_message_new ();

  message->id = id;
  message->channel = channel;
  message->channel_name = g_strdup ("Prod alerts");
  message->time_ms = 1700000000000 + id;
  g_free (message->title);
  message->title = g_strdup (title);
  g_free (message->body);
  message->body = g_strdup (body);
  json_object_set_int_member (message->vars, "n", id);
  return message;
}

static TocsinRecord *
store (Fixture             *f,
       const TocsinMessage *message,
       TocsinStoreResult   *out)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  TocsinRecord *record;

  tocsin_history_store_message_async (f->history, RELAY, message, NULL, store_result, &res);
  WAIT_RESULT (res);
  record = tocsin_history_store_message_finish (f->history, res, out, &error);
  g_assert_no_error (error);
  g_assert_nonnull (record);
  return record;
}

static GPtrArray *
query (Fixture                 *f,
       const TocsinRecordQuery *q,
       guint                    offset,
       guint                    limit)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *records;

  tocsin_history_query_async (f->history, q, offset, limit, NULL, store_result, &res);
  WAIT_RESULT (res);
  records = tocsin_history_query_finish (f->history, res, &error);
  g_assert_no_error (error);
  return records;
}

static gint64
count (Fixture                 *f,
       const TocsinRecordQuery *q)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  gint64 n;

  tocsin_history_count_async (f->history, q, NULL, store_result, &res);
  WAIT_RESULT (res);
  n = tocsin_history_count_finish (f->history, res, &error);
  g_assert_no_error (error);
  return n;
}

static gint64
change_done (Fixture      *f,
             GAsyncResult *res)
{
  g_autoptr(GError) error = NULL;
  gint64 n = tocsin_history_change_finish (f->history, res, &error);

  g_assert_no_error (error);
  return n;
}

static void
test_store_and_query (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GPtrArray) records = NULL;
  g_autofree char *dir = g_path_get_dirname (f->path);
  TocsinStoreResult result;
  struct stat st;

  for (gint64 id = 1; id <= 3; id++)
    {
      g_autofree char *title = g_strdup_printf ("Message %" G_GINT64_FORMAT, id);
      g_autoptr(TocsinMessage) message = make_message (7, id, title, "body");
      g_autoptr(TocsinRecord) record = store (f, message, &result);

      g_assert_cmpint (result, ==, TOCSIN_STORE_ADDED);
      g_assert_cmpint (tocsin_record_get_id (record), >, 0);
      g_assert_true (tocsin_record_get_loaded (record));
    }

  records = query (f, NULL, 0, 10);
  g_assert_cmpuint (records->len, ==, 3);
  /* Newest first. */
  g_assert_cmpstr (tocsin_record_get_title (g_ptr_array_index (records, 0)), ==, "Message 3");
  g_assert_cmpstr (tocsin_record_get_title (g_ptr_array_index (records, 2)), ==, "Message 1");
  g_assert_cmpstr (tocsin_record_get_relay_url (g_ptr_array_index (records, 0)), ==, RELAY);
  g_assert_cmpint (tocsin_record_get_channel_id (g_ptr_array_index (records, 0)), ==, 7);
  g_assert_cmpstr (tocsin_record_get_channel_name (g_ptr_array_index (records, 0)), ==,
                   "Prod alerts");
  g_assert_cmpint (tocsin_record_get_time (g_ptr_array_index (records, 0)), ==,
                   1700000000003);
  g_assert_cmpstr (tocsin_record_get_vars_json (g_ptr_array_index (records, 0)), ==,
                   "{\"n\":3}");
  g_assert_false (tocsin_record_get_read (g_ptr_array_index (records, 0)));
  g_assert_cmpint (count (f, NULL), ==, 3);

  /* Private to the user: the folder 0700, the file 0600. */
  g_assert_cmpint (g_stat (dir, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);
  g_assert_cmpint (g_stat (f->path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
}

static void
test_dedup_and_replace (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(TocsinMessage) first = make_message (7, 1, "CPU 80%", "warming up");
  g_autoptr(TocsinMessage) again = make_message (7, 1, "CPU 80%", "warming up");
  g_autoptr(TocsinMessage) update = make_message (7, 2, "CPU 95%", "on fire");
  g_autoptr(TocsinMessage) other_channel = make_message (8, 1, "Other", "channel");
  g_autoptr(TocsinRecord) a = NULL, b = NULL, c = NULL, d = NULL;
  g_autoptr(GPtrArray) records = NULL;
  TocsinStoreResult result;

  a = store (f, first, &result);
  g_assert_cmpint (result, ==, TOCSIN_STORE_ADDED);
  b = store (f, again, &result);
  g_assert_cmpint (result, ==, TOCSIN_STORE_DUPLICATE);
  g_assert_cmpint (tocsin_record_get_id (b), ==, tocsin_record_get_id (a));

  update->replaces = 1;
  c = store (f, update, &result);
  g_assert_cmpint (result, ==, TOCSIN_STORE_REPLACED);
  g_assert_cmpint (tocsin_record_get_id (c), ==, tocsin_record_get_id (a));
  g_assert_cmpstr (tocsin_record_get_title (c), ==, "CPU 95%");
  g_assert_cmpint (tocsin_record_get_message_id (c), ==, 2);

  /* The same id in another channel is another message. */
  d = store (f, other_channel, &result);
  g_assert_cmpint (result, ==, TOCSIN_STORE_ADDED);

  records = query (f, NULL, 0, 10);
  g_assert_cmpuint (records->len, ==, 2);
  g_assert_cmpint (count (f, NULL), ==, 2);
}

static void
test_batched_storm (Fixture       *f,
                    gconstpointer  data)
{
  TocsinRecordQuery q = { .relay_url = (char *) RELAY, .channel_id = 9 };
  const guint n = 500;

  /* Queued all at once, they share transactions; every one is stored exactly once. */
  for (guint i = 1; i <= n; i++)
    {
      g_autoptr(TocsinMessage) message = make_message (9, i, "storm", "drop");
      tocsin_history_store_message_async (f->history, RELAY, message, NULL, NULL, NULL);
    }
  tocsin_history_flush_sync (f->history);
  g_assert_cmpint (count (f, &q), ==, n);
}

static void
test_search (Fixture       *f,
             gconstpointer  data)
{
  const char *texts[][2] = {
    { "Alerte serveur Production", "L'utilisation du CPU a atteint 95%" },
    { "Disk full", "The disk /var is 100% \"full\"" },
    { "Déploiement réussi", "version 2.1 déployée" },
  };
  TocsinRecordQuery q = { 0 };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autoptr(TocsinMessage) message = make_message (7, i + 1, texts[i][0], texts[i][1]);
      g_autoptr(TocsinRecord) record = store (f, message, NULL);
    }

  q.search = (char *) "cpu";
  g_assert_cmpint (count (f, &q), ==, 1);
  q.search = (char *) "serv prod";     /* every word, as a prefix */
  g_assert_cmpint (count (f, &q), ==, 1);
  q.search = (char *) "deploiement";  /* diacritics do not matter */
  g_assert_cmpint (count (f, &q), ==, 1);
  q.search = (char *) "\"full";       /* FTS5 syntax typed by a person is plain text */
  g_assert_cmpint (count (f, &q), ==, 1);
  q.search = (char *) "AND OR NEAR(";
  g_assert_cmpint (count (f, &q), ==, 0);
  q.search = (char *) "   ";
  g_assert_cmpint (count (f, &q), ==, 3);
  q.search = (char *) "nothing-like-this";
  g_assert_cmpint (count (f, &q), ==, 0);

  {
    g_autoptr(GPtrArray) records = NULL;

    q.search = (char *) "disk";
    records = query (f, &q, 0, 10);
    g_assert_cmpuint (records->len, ==, 1);
    g_assert_cmpstr (tocsin_record_get_title (g_ptr_array_index (records, 0)), ==, "Disk full");
  }
}

typedef struct
{
  guint  added, changed, removed, reset;
  gint64 last_removed;
} SignalCounts;

static void on_added (TocsinHistory *h, TocsinRecord *r, SignalCounts *c) { c->added++; }
static void on_changed (TocsinHistory *h, TocsinRecord *r, SignalCounts *c) { c->changed++; }
static void on_reset (TocsinHistory *h, SignalCounts *c) { c->reset++; }
static void
on_removed (TocsinHistory *h, gint64 id, SignalCounts *c)
{
  c->removed++;
  c->last_removed = id;
}

static void
test_read_and_clear (Fixture       *f,
                     gconstpointer  data)
{
  SignalCounts counts = { 0 };
  g_autoptr(TocsinRecord) a = NULL, b = NULL, c = NULL;
  g_autoptr(GAsyncResult) res1 = NULL, res2 = NULL, res3 = NULL, res4 = NULL;
  TocsinRecordQuery unread = { .unread_only = TRUE };
  TocsinRecordQuery channel8 = { .relay_url = (char *) RELAY, .channel_id = 8 };

  g_signal_connect (f->history, "record-added", G_CALLBACK (on_added), &counts);
  g_signal_connect (f->history, "record-changed", G_CALLBACK (on_changed), &counts);
  g_signal_connect (f->history, "record-removed", G_CALLBACK (on_removed), &counts);
  g_signal_connect (f->history, "reset", G_CALLBACK (on_reset), &counts);

  {
    g_autoptr(TocsinMessage) m1 = make_message (7, 1, "a", "a");
    g_autoptr(TocsinMessage) m2 = make_message (7, 2, "b", "b");
    g_autoptr(TocsinMessage) m3 = make_message (8, 1, "c", "c");
    a = store (f, m1, NULL);
    b = store (f, m2, NULL);
    c = store (f, m3, NULL);
  }
  g_assert_cmpuint (counts.added, ==, 3);
  g_assert_cmpint (count (f, &unread), ==, 3);

  tocsin_history_set_read_async (f->history, tocsin_record_get_id (a), TRUE, NULL,
                                 store_result, &res1);
  WAIT_RESULT (res1);
  g_assert_cmpint (change_done (f, res1), ==, 1);
  g_assert_cmpuint (counts.changed, ==, 1);
  g_assert_cmpint (count (f, &unread), ==, 2);

  tocsin_history_mark_all_read_async (f->history, NULL, 0, NULL, store_result, &res2);
  WAIT_RESULT (res2);
  g_assert_cmpint (change_done (f, res2), ==, 2);
  g_assert_cmpuint (counts.reset, ==, 1);
  g_assert_cmpint (count (f, &unread), ==, 0);

  tocsin_history_clear_async (f->history, RELAY, 8, NULL, store_result, &res3);
  WAIT_RESULT (res3);
  g_assert_cmpint (change_done (f, res3), ==, 1);
  g_assert_cmpint (count (f, &channel8), ==, 0);
  g_assert_cmpint (count (f, NULL), ==, 2);

  tocsin_history_delete_record_async (f->history, tocsin_record_get_id (b), NULL,
                                      store_result, &res4);
  WAIT_RESULT (res4);
  g_assert_cmpint (change_done (f, res4), ==, 1);
  g_assert_cmpuint (counts.removed, ==, 1);
  g_assert_cmpint (counts.last_removed, ==, tocsin_record_get_id (b));
  g_assert_cmpint (count (f, NULL), ==, 1);

  /* Fire and forget works too, and is done by the time a flush returns. */
  tocsin_history_clear_async (f->history, NULL, 0, NULL, NULL, NULL);
  tocsin_history_flush_sync (f->history);
  g_assert_cmpint (count (f, NULL), ==, 0);
}

/* Undo restores exactly what an undoable change did: the same rows (ids, text searchable
 * again, read state), or the same records unread again; once forgotten, nothing comes back. */
static void
test_undo (Fixture       *f,
           gconstpointer  data)
{
  g_autoptr(TocsinRecord) a = NULL, b = NULL, c = NULL;
  TocsinRecordQuery unread = { .unread_only = TRUE };
  TocsinRecordQuery channel7 = { .relay_url = (char *) RELAY, .channel_id = 7 };
  TocsinRecordQuery search = { .search = (char *) "zebra" };
  guint64 batch;

  {
    g_autoptr(TocsinMessage) m1 = make_message (7, 1, "zebra crossing", "a");
    g_autoptr(TocsinMessage) m2 = make_message (7, 2, "b", "b");
    g_autoptr(TocsinMessage) m3 = make_message (8, 1, "c", "c");
    a = store (f, m1, NULL);
    b = store (f, m2, NULL);
    c = store (f, m3, NULL);
  }
  /* b was read before: "mark all read" and its undo leave it read. */
  {
    g_autoptr(GAsyncResult) res = NULL;
    tocsin_history_set_read_async (f->history, tocsin_record_get_id (b), TRUE, NULL,
                                   store_result, &res);
    WAIT_RESULT (res);
  }

  /* Delete one, undo: the same record, found by search again. */
  batch = tocsin_history_new_undo_batch (f->history);
  {
    g_autoptr(GAsyncResult) res = NULL, undo = NULL;
    g_autoptr(GPtrArray) found = NULL;

    tocsin_history_delete_record_undoable_async (f->history, tocsin_record_get_id (a), batch,
                                                 NULL, store_result, &res);
    WAIT_RESULT (res);
    g_assert_cmpint (change_done (f, res), ==, 1);
    g_assert_cmpint (count (f, NULL), ==, 2);
    g_assert_cmpint (count (f, &search), ==, 0);
    tocsin_history_undo_async (f->history, batch, NULL, store_result, &undo);
    WAIT_RESULT (undo);
    g_assert_cmpint (change_done (f, undo), ==, 1);
    g_assert_cmpint (count (f, NULL), ==, 3);
    found = query (f, &search, 0, 10);
    g_assert_cmpuint (found->len, ==, 1);
    g_assert_cmpint (tocsin_record_get_id (found->pdata[0]), ==, tocsin_record_get_id (a));
    g_assert_false (tocsin_record_get_read (found->pdata[0]));
  }

  /* Mark channel 7 read, undo: a unread again, b still read, channel 8 untouched. */
  batch = tocsin_history_new_undo_batch (f->history);
  {
    g_autoptr(GAsyncResult) res = NULL, undo = NULL;

    tocsin_history_mark_all_read_undoable_async (f->history, RELAY, 7, batch, NULL,
                                                 store_result, &res);
    WAIT_RESULT (res);
    g_assert_cmpint (change_done (f, res), ==, 1);
    g_assert_cmpint (count (f, &unread), ==, 1);
    tocsin_history_undo_async (f->history, batch, NULL, store_result, &undo);
    WAIT_RESULT (undo);
    g_assert_cmpint (change_done (f, undo), ==, 1);
    g_assert_cmpint (count (f, &unread), ==, 2);
  }

  /* Clear channel 7, undo: both back. */
  batch = tocsin_history_new_undo_batch (f->history);
  {
    g_autoptr(GAsyncResult) res = NULL, undo = NULL;

    tocsin_history_clear_undoable_async (f->history, RELAY, 7, batch, NULL, store_result, &res);
    WAIT_RESULT (res);
    g_assert_cmpint (change_done (f, res), ==, 2);
    g_assert_cmpint (count (f, &channel7), ==, 0);
    tocsin_history_undo_async (f->history, batch, NULL, store_result, &undo);
    WAIT_RESULT (undo);
    g_assert_cmpint (change_done (f, undo), ==, 2);
    g_assert_cmpint (count (f, &channel7), ==, 2);
  }

  /* Clear again and forget (the toast went away): gone for good. */
  batch = tocsin_history_new_undo_batch (f->history);
  {
    g_autoptr(GAsyncResult) res = NULL, forget = NULL, undo = NULL;

    tocsin_history_clear_undoable_async (f->history, RELAY, 7, batch, NULL, store_result, &res);
    WAIT_RESULT (res);
    tocsin_history_forget_undo_async (f->history, batch, NULL, store_result, &forget);
    WAIT_RESULT (forget);
    change_done (f, forget);
    tocsin_history_undo_async (f->history, batch, NULL, store_result, &undo);
    WAIT_RESULT (undo);
    g_assert_cmpint (change_done (f, undo), ==, 0);
    g_assert_cmpint (count (f, &channel7), ==, 0);
    g_assert_cmpint (count (f, NULL), ==, 1);
  }
}

static void
test_subscriptions (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(TocsinSubscription) sub = tocsin_subscription_new (RELAY, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  g_autoptr(GAsyncResult) res = NULL, res2 = NULL;
  g_autoptr(GPtrArray) subs = NULL;
  g_autoptr(GError) error = NULL;
  TocsinSubscription *loaded;

  tocsin_subscription_set_channel_id (sub, 7);
  tocsin_subscription_set_name (sub, "Prod alerts");
  tocsin_subscription_set_notify_type (sub, TOCSIN_NOTIFY_TYPE_TIME_SENSITIVE);
  tocsin_subscription_set_muted (sub, TRUE);
  tocsin_subscription_set_cursor (sub, 4);
  tocsin_history_save_subscription_async (f->history, sub, NULL, NULL, NULL);

  /* A stored message moves the stored cursor forward... */
  {
    g_autoptr(TocsinMessage) message = make_message (7, 9, "t", "b");
    g_autoptr(TocsinRecord) record = store (f, message, NULL);
  }
  /* ...and saving an older cursor never moves it back. */
  tocsin_subscription_set_cursor (sub, 5);
  tocsin_history_save_subscription_async (f->history, sub, NULL, NULL, NULL);

  tocsin_history_load_subscriptions_async (f->history, NULL, store_result, &res);
  WAIT_RESULT (res);
  subs = tocsin_history_load_subscriptions_finish (f->history, res, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (subs->len, ==, 1);
  loaded = g_ptr_array_index (subs, 0);
  g_assert_cmpstr (tocsin_subscription_get_relay_url (loaded), ==, RELAY);
  g_assert_cmpstr (tocsin_subscription_get_token (loaded), ==, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  g_assert_cmpstr (tocsin_subscription_get_name (loaded), ==, "Prod alerts");
  g_assert_cmpint (tocsin_subscription_get_notify_type (loaded), ==,
                   TOCSIN_NOTIFY_TYPE_TIME_SENSITIVE);
  g_assert_true (tocsin_subscription_get_muted (loaded));
  g_assert_cmpint (tocsin_subscription_get_cursor (loaded), ==, 9);

  tocsin_history_remove_subscription_async (f->history, RELAY, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                            NULL, store_result, &res2);
  WAIT_RESULT (res2);
  g_assert_cmpint (change_done (f, res2), ==, 1);
}

static void
test_owned_channels (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(TocsinOwnedChannel) channel = tocsin_owned_channel_new ();
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GPtrArray) channels = NULL;
  g_autoptr(GError) error = NULL;
  TocsinOwnedChannel *loaded;

  channel->relay_url = g_strdup (RELAY);
  channel->id = 3;
  channel->owner_key = g_strdup ("owner-key-secret");
  channel->name = g_strdup ("Builds");
  channel->webhook_url = g_strdup (RELAY "/t/trigger");
  channel->subscribe_url = g_strdup (RELAY "/s/subscribe");
  tocsin_history_save_owned_channel_async (f->history, channel, NULL, NULL, NULL);
  tocsin_history_load_owned_channels_async (f->history, NULL, store_result, &res);
  WAIT_RESULT (res);
  channels = tocsin_history_load_owned_channels_finish (f->history, res, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (channels->len, ==, 1);
  loaded = g_ptr_array_index (channels, 0);
  g_assert_cmpint (loaded->id, ==, 3);
  g_assert_cmpstr (loaded->owner_key, ==, "owner-key-secret");
  g_assert_cmpstr (loaded->subscribe_url, ==, RELAY "/s/subscribe");
}

static void
test_export (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) lines = NULL;
  g_autofree char *text = NULL;
  gint64 n;

  {
    g_autoptr(TocsinMessage) m1 = make_message (7, 1, "First <b>", "a & b");
    g_autoptr(TocsinMessage) m2 = make_message (7, 2, "Second", "with link");
    g_autoptr(TocsinRecord) r1 = NULL, r2 = NULL;

    m2->external_link = g_strdup ("https://dashboard.example.com/alerts/123");
    r1 = store (f, m1, NULL);
    r2 = store (f, m2, NULL);
  }
  tocsin_history_flush_sync (f->history);

  /* A second, read-only reader while the history has the database open (--export-records
   * next to a running app). */
  n = tocsin_history_export_sync (f->path, out, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 2);
  g_output_stream_write_all (out, "", 1, NULL, NULL, NULL);
  g_output_stream_close (out, NULL, NULL);
  text = g_strdup (g_memory_output_stream_get_data (G_MEMORY_OUTPUT_STREAM (out)));
  lines = g_strsplit (text, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 3);   /* two lines and the empty rest */

  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      JsonObject *object;

      g_assert_true (json_parser_load_from_data (parser, lines[i], -1, NULL));
      object = json_node_get_object (json_parser_get_root (parser));
      g_assert_cmpuint (json_object_get_size (object), ==, 9);
      g_assert_true (json_object_get_null_member (object, "notificationType"));
      g_assert_false (json_object_get_boolean_member (object, "markdown"));
      g_assert_cmpint (json_object_get_int_member (object, "id"), ==, i + 1);
      g_assert_cmpstr (json_object_get_string_member (object, "channel"), ==, "Prod alerts");
      g_assert_true (json_object_has_member (object, "externalLink"));
      g_assert_false (json_object_get_boolean_member (object, "read"));
      g_assert_cmpint (tocsin_parse_time_ms (json_object_get_string_member (object, "time")),
                       ==, 1700000000000 + i + 1);
      if (i == 0)
        {
          g_assert_cmpstr (json_object_get_string_member (object, "title"), ==, "First <b>");
          g_assert_cmpstr (json_object_get_string_member (object, "body"), ==, "a & b");
          g_assert_true (json_object_get_null_member (object, "externalLink"));
        }
      else
        g_assert_cmpstr (json_object_get_string_member (object, "externalLink"), ==,
                         "https://dashboard.example.com/alerts/123");
    }

  /* A missing database exports nothing, and is not an error. */
  {
    g_autoptr(GOutputStream) empty = g_memory_output_stream_new_resizable ();
    g_autofree char *missing = g_build_filename (f->dir, "missing.db", NULL);

    g_assert_cmpint (tocsin_history_export_sync (missing, empty, NULL, &error), ==, 0);
    g_assert_no_error (error);
  }
}

/* Exports the history at f->path (as --export-records does), one object per line. */
static GPtrArray *
export_objects (Fixture *f)
{
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) lines = NULL;
  GPtrArray *objects = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);

  g_assert_cmpint (tocsin_history_export_sync (f->path, out, NULL, &error), >=, 0);
  g_assert_no_error (error);
  g_output_stream_write_all (out, "", 1, NULL, NULL, NULL);
  g_output_stream_close (out, NULL, NULL);
  lines = g_strsplit (g_memory_output_stream_get_data (G_MEMORY_OUTPUT_STREAM (out)), "\n", -1);
  for (guint i = 0; lines[i] && *lines[i]; i++)
    {
      JsonObject *object = tocsin_json_parse_object (lines[i], strlen (lines[i]), G_MAXSSIZE,
                                                     8, &error);

      g_assert_no_error (error);
      g_ptr_array_add (objects, object);
    }
  return objects;
}

static TocsinRecord *
record_by_message_id (Fixture *f,
                      gint64   message_id)
{
  g_autoptr(GPtrArray) records = query (f, NULL, 0, 100);

  for (guint i = 0; i < records->len; i++)
    if (tocsin_record_get_message_id (records->pdata[i]) == message_id)
      return g_object_ref (records->pdata[i]);
  return NULL;
}

/* How a message asked to ring, and whether its body is Markdown: kept per record, replaced
 * with the content, restored by undo, exported. */
static void
test_type_and_markdown (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(TocsinMessage) urgent = make_message (7, 1, "Down", "**db-1** is down");
  g_autoptr(TocsinMessage) calm = make_message (7, 2, "Note", "plain");
  g_autoptr(TocsinMessage) update = make_message (7, 3, "Down", "still *down*");
  g_autoptr(TocsinRecord) a = NULL, b = NULL, c = NULL, loaded = NULL;
  g_autoptr(GPtrArray) objects = NULL;
  TocsinStoreResult result;

  urgent->type = TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE;
  urgent->markdown = TRUE;
  a = store (f, urgent, NULL);
  g_assert_cmpint (tocsin_record_get_notification_type (a), ==,
                   TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE);
  g_assert_true (tocsin_record_get_markdown (a));
  b = store (f, calm, NULL);

  loaded = record_by_message_id (f, 1);
  g_assert_cmpint (tocsin_record_get_notification_type (loaded), ==,
                   TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE);
  g_assert_true (tocsin_record_get_markdown (loaded));
  g_clear_object (&loaded);
  loaded = record_by_message_id (f, 2);
  g_assert_cmpint (tocsin_record_get_notification_type (loaded), ==,
                   TOCSIN_MESSAGE_TYPE_DEFAULT);
  g_assert_false (tocsin_record_get_markdown (loaded));
  g_clear_object (&loaded);

  /* A replacement brings its own. */
  update->replaces = 1;
  update->type = TOCSIN_MESSAGE_TYPE_CALLING;
  update->markdown = FALSE;
  c = store (f, update, &result);
  g_assert_cmpint (result, ==, TOCSIN_STORE_REPLACED);
  g_assert_cmpint (tocsin_record_get_notification_type (c), ==, TOCSIN_MESSAGE_TYPE_CALLING);
  g_assert_false (tocsin_record_get_markdown (c));
  update->markdown = TRUE;
  update->id = 4;
  update->replaces = 3;
  g_clear_object (&c);
  c = store (f, update, &result);
  g_assert_true (tocsin_record_get_markdown (c));

  /* Deleted and undone: the same fields come back. */
  {
    g_autoptr(GAsyncResult) res = NULL;
    guint64 batch = tocsin_history_new_undo_batch (f->history);

    tocsin_history_delete_record_undoable_async (f->history, tocsin_record_get_id (c), batch,
                                                 NULL, store_result, &res);
    WAIT_RESULT (res);
    g_assert_cmpint (change_done (f, res), ==, 1);
    g_clear_object (&res);
    tocsin_history_undo_async (f->history, batch, NULL, store_result, &res);
    WAIT_RESULT (res);
    g_assert_cmpint (change_done (f, res), ==, 1);
  }
  loaded = record_by_message_id (f, 4);
  g_assert_nonnull (loaded);
  g_assert_cmpint (tocsin_record_get_notification_type (loaded), ==,
                   TOCSIN_MESSAGE_TYPE_CALLING);
  g_assert_true (tocsin_record_get_markdown (loaded));

  tocsin_history_flush_sync (f->history);
  objects = export_objects (f);
  g_assert_cmpuint (objects->len, ==, 2);
  g_assert_cmpstr (json_object_get_string_member (objects->pdata[0], "notificationType"), ==,
                   "calling");
  g_assert_true (json_object_get_boolean_member (objects->pdata[0], "markdown"));
  g_assert_cmpstr (json_object_get_string_member (objects->pdata[0], "body"), ==, "still *down*");
  g_assert_true (json_object_get_null_member (objects->pdata[1], "notificationType"));
  g_assert_false (json_object_get_boolean_member (objects->pdata[1], "markdown"));
}

static int
user_version (const char *path)
{
  sqlite3 *db;
  sqlite3_stmt *stmt;
  int version = -1;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  if (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL) == SQLITE_OK &&
      sqlite3_step (stmt) == SQLITE_ROW)
    version = sqlite3_column_int (stmt, 0);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return version;
}

/* A history from before the two columns (schema version 2) keeps its records: read as it is
 * by --export-records, upgraded in place when the app opens it. */
static void
test_upgrade_from_v2 (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GPtrArray) objects = NULL;
  g_autoptr(TocsinRecord) old = NULL;
  sqlite3 *db;

  for (guint i = 1; i <= 3; i++)
    {
      g_autoptr(TocsinMessage) m = make_message (7, i, "before", "the upgrade");
      g_autoptr(TocsinRecord) r = store (f, m, NULL);
    }
  tocsin_history_flush_sync (f->history);
  g_clear_object (&f->history);
  g_assert_cmpint (user_version (f->path), ==, 4);

  /* What version 2 wrote: the same tables without the columns and tables added since. */
  g_assert_cmpint (sqlite3_open (f->path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "ALTER TABLE records DROP COLUMN actions;"
                                     "ALTER TABLE undo_records DROP COLUMN actions;"
                                     "DROP TABLE presses;"
                                     "ALTER TABLE records DROP COLUMN type;"
                                     "ALTER TABLE records DROP COLUMN markdown;"
                                     "ALTER TABLE undo_records DROP COLUMN type;"
                                     "ALTER TABLE undo_records DROP COLUMN markdown;"
                                     "PRAGMA user_version = 2;", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  /* A reader does not change the file. */
  objects = export_objects (f);
  g_assert_cmpuint (objects->len, ==, 3);
  g_assert_true (json_object_get_null_member (objects->pdata[0], "notificationType"));
  g_assert_false (json_object_get_boolean_member (objects->pdata[0], "markdown"));
  g_assert_cmpint (user_version (f->path), ==, 2);

  f->history = tocsin_history_new (f->path);
  g_assert_cmpint (count (f, NULL), ==, 3);
  old = record_by_message_id (f, 2);
  g_assert_nonnull (old);
  g_assert_cmpstr (tocsin_record_get_body (old), ==, "the upgrade");
  g_assert_cmpint (tocsin_record_get_notification_type (old), ==, TOCSIN_MESSAGE_TYPE_DEFAULT);
  g_assert_false (tocsin_record_get_markdown (old));
  {
    g_autoptr(TocsinMessage) m = make_message (7, 4, "after", "*the* upgrade");
    g_autoptr(TocsinRecord) r = NULL;

    m->markdown = TRUE;
    m->type = TOCSIN_MESSAGE_TYPE_ACTIVE;
    r = store (f, m, NULL);
  }
  tocsin_history_flush_sync (f->history);
  g_assert_cmpint (user_version (f->path), ==, 4);
  g_clear_pointer (&objects, g_ptr_array_unref);
  objects = export_objects (f);
  g_assert_cmpuint (objects->len, ==, 4);
  g_assert_cmpstr (json_object_get_string_member (objects->pdata[3], "notificationType"), ==,
                   "active");
  g_assert_true (json_object_get_boolean_member (objects->pdata[3], "markdown"));

  /* Opened again: nothing more to do (the migration is not run twice). */
  g_clear_object (&f->history);
  f->history = tocsin_history_new (f->path);
  g_assert_cmpint (count (f, NULL), ==, 4);

  /* An older app opened it meanwhile (a rollback): it set the version back to 2 and left the
   * columns. The next start finds them and keeps everything. */
  tocsin_history_flush_sync (f->history);
  g_clear_object (&f->history);
  g_assert_cmpint (sqlite3_open (f->path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "PRAGMA user_version = 2", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
  f->history = tocsin_history_new (f->path);
  g_assert_cmpint (count (f, NULL), ==, 4);
  g_clear_object (&old);
  old = record_by_message_id (f, 4);
  g_assert_true (tocsin_record_get_markdown (old));
  tocsin_history_flush_sync (f->history);
  g_assert_cmpint (user_version (f->path), ==, 4);
}

static void
test_reopen (Fixture       *f,
             gconstpointer  data)
{
  {
    g_autoptr(TocsinMessage) m = make_message (7, 1, "kept", "across restarts");
    g_autoptr(TocsinRecord) r = store (f, m, NULL);
  }
  tocsin_history_flush_sync (f->history);
  g_clear_object (&f->history);

  f->history = tocsin_history_new (f->path);
  g_assert_cmpint (count (f, NULL), ==, 1);
}

static void
test_open_failure (Fixture       *f,
                   gconstpointer  data)
{
  g_autofree char *blocker = g_build_filename (f->dir, "file", NULL);
  g_autofree char *bad = g_build_filename (blocker, "history.db", NULL);
  g_autoptr(TocsinHistory) history = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;

  /* The folder cannot be made (a file is in the way): every call says so, nothing crashes. */
  g_assert_true (g_file_set_contents (blocker, "x", 1, NULL));
  history = tocsin_history_new (bad);
  tocsin_history_wait_ready_async (history, NULL, store_result, &res);
  WAIT_RESULT (res);
  g_assert_false (tocsin_history_wait_ready_finish (history, res, &error));
  g_assert_nonnull (error);
  tocsin_history_flush_sync (history);
}

static void
on_flushed (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  /* Signals counted before the barrier's answer: everything stored before it was announced. */
  *(guint *) user_data = ((SignalCounts *) g_object_get_data (object, "counts"))->added + 1;
}

static void
test_total (Fixture       *f,
            gconstpointer  data)
{
  SignalCounts counts = { 0 };
  TocsinRecordQuery unread = { .unread_only = TRUE };
  const guint n = 450;   /* more than one slice of a burst */
  guint added_at_barrier = 0;
  sqlite3 *db;

  g_object_set_data (G_OBJECT (f->history), "counts", &counts);
  g_signal_connect (f->history, "record-added", G_CALLBACK (on_added), &counts);
  for (guint i = 1; i <= n; i++)
    {
      g_autoptr(TocsinMessage) message = make_message (3, i, "burst", "all at once");
      tocsin_history_store_message_async (f->history, RELAY, message, NULL, NULL, NULL);
    }
  /* A job queued after the burst answers after every record of it was announced. */
  tocsin_history_wait_ready_async (f->history, NULL, on_flushed, &added_at_barrier);
  TOCSIN_WAIT_UNTIL (added_at_barrier != 0);
  g_assert_cmpuint (added_at_barrier - 1, ==, n);
  g_assert_cmpint (count (f, NULL), ==, n);
  g_assert_cmpint (count (f, &unread), ==, n);

  {
    g_autoptr(GAsyncResult) res = NULL;
    tocsin_history_delete_record_async (f->history, 1, NULL, store_result, &res);
    WAIT_RESULT (res);
    g_assert_cmpint (change_done (f, res), ==, 1);
  }
  g_assert_cmpint (count (f, NULL), ==, n - 1);
  tocsin_history_flush_sync (f->history);
  g_signal_handlers_disconnect_by_data (f->history, &counts);
  g_clear_object (&f->history);

  /* A history from before the kept total (schema version 1): the total is counted once on
   * the next open, then kept. (Nor had version 1 the columns of version 3.) */
  g_assert_cmpint (sqlite3_open (f->path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "DROP TRIGGER records_total_ai; DROP TRIGGER records_total_ad;"
                                     " DROP TABLE records_total;"
                                     " ALTER TABLE records DROP COLUMN actions;"
                                     " ALTER TABLE undo_records DROP COLUMN actions;"
                                     " DROP TABLE presses;"
                                     " ALTER TABLE records DROP COLUMN type;"
                                     " ALTER TABLE records DROP COLUMN markdown;"
                                     " ALTER TABLE undo_records DROP COLUMN type;"
                                     " ALTER TABLE undo_records DROP COLUMN markdown;"
                                     " PRAGMA user_version = 1;",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
  f->history = tocsin_history_new (f->path);
  g_assert_cmpint (count (f, NULL), ==, n - 1);
  {
    g_autoptr(TocsinMessage) m = make_message (3, n + 1, "after", "the upgrade");
    g_autoptr(TocsinRecord) r = store (f, m, NULL);
  }
  g_assert_cmpint (count (f, NULL), ==, n);
  {
    g_autoptr(GAsyncResult) res = NULL;
    tocsin_history_clear_async (f->history, NULL, 0, NULL, store_result, &res);
    WAIT_RESULT (res);
    g_assert_cmpint (change_done (f, res), ==, n);
  }
  g_assert_cmpint (count (f, NULL), ==, 0);
}

/* ---- the records list model ---- */

typedef struct
{
  guint position, removed, added;
  guint calls;
} ItemsChanged;

static void
on_items_changed (GListModel   *model,
                  guint         position,
                  guint         removed,
                  guint         added,
                  ItemsChanged *last)
{
  last->position = position;
  last->removed = removed;
  last->added = added;
  last->calls++;
}

static void
test_record_list (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(TocsinRecordList) list = NULL;
  g_autoptr(TocsinRecord) item = NULL, top = NULL, deep = NULL;
  ItemsChanged last = { 0 };
  const guint n = 1000;

  for (guint i = 1; i <= n; i++)
    {
      g_autofree char *title = g_strdup_printf ("record %u%s", i, i % 10 == 0 ? " tenth" : "");
      g_autoptr(TocsinMessage) message = make_message (7, i, title, "body");
      tocsin_history_store_message_async (f->history, RELAY, message, NULL, NULL, NULL);
    }
  tocsin_history_flush_sync (f->history);

  list = tocsin_record_list_new (f->history);
  g_signal_connect (list, "items-changed", G_CALLBACK (on_items_changed), &last);
  g_assert_true (tocsin_record_list_get_loading (list));
  TOCSIN_WAIT_UNTIL (!tocsin_record_list_get_loading (list));
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (list)), ==, n);
  g_assert_cmpuint (last.calls, ==, 1);
  g_assert_cmpuint (last.added, ==, n);

  /* Items come back at once, as placeholders filled in when their page arrives. */
  deep = g_list_model_get_item (G_LIST_MODEL (list), 751);
  g_assert_nonnull (deep);
  TOCSIN_WAIT_UNTIL (tocsin_record_get_loaded (deep));
  g_assert_cmpstr (tocsin_record_get_title (deep), ==, "record 249");
  g_assert_null (g_list_model_get_item (G_LIST_MODEL (list), n));

  /* A new record shows up on top with an exact range. */
  {
    g_autoptr(TocsinMessage) message = make_message (7, n + 1, "fresh", "body");
    g_autoptr(TocsinRecord) r = store (f, message, NULL);
  }
  TOCSIN_WAIT_UNTIL (last.calls == 2);
  g_assert_cmpuint (last.position, ==, 0);
  g_assert_cmpuint (last.removed, ==, 0);
  g_assert_cmpuint (last.added, ==, 1);
  top = g_list_model_get_item (G_LIST_MODEL (list), 0);
  g_assert_cmpstr (tocsin_record_get_title (top), ==, "fresh");
  g_assert_cmpint (tocsin_record_list_find (list, tocsin_record_get_id (top)), ==, 0);

  /* Its read state follows the history in place. */
  tocsin_history_set_read_async (f->history, tocsin_record_get_id (top), TRUE, NULL, NULL, NULL);
  TOCSIN_WAIT_UNTIL (tocsin_record_get_read (top));

  /* Deleting it removes exactly that row. */
  tocsin_history_delete_record_async (f->history, tocsin_record_get_id (top), NULL, NULL, NULL);
  TOCSIN_WAIT_UNTIL (last.calls == 3);
  g_assert_cmpuint (last.position, ==, 0);
  g_assert_cmpuint (last.removed, ==, 1);
  g_assert_cmpuint (last.added, ==, 0);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (list)), ==, n);

  /* Search narrows it. */
  tocsin_record_list_set_search (list, "tenth");
  TOCSIN_WAIT_UNTIL (!tocsin_record_list_get_loading (list));
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (list)), ==, n / 10);
  item = g_list_model_get_item (G_LIST_MODEL (list), 0);
  TOCSIN_WAIT_UNTIL (tocsin_record_get_loaded (item));
  g_assert_cmpstr (tocsin_record_get_title (item), ==, "record 1000 tenth");
  g_clear_object (&item);

  /* Unread only, after marking everything read, is empty. */
  tocsin_record_list_set_search (list, NULL);
  tocsin_record_list_set_unread_only (list, TRUE);
  tocsin_history_mark_all_read_async (f->history, NULL, 0, NULL, NULL, NULL);
  tocsin_history_flush_sync (f->history);
  TOCSIN_WAIT_UNTIL (!tocsin_record_list_get_loading (list));
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (list)), ==, 0);

  /* And a channel filter of a channel with nothing in it is empty too. */
  tocsin_record_list_set_unread_only (list, FALSE);
  tocsin_record_list_set_channel (list, RELAY, 99);
  TOCSIN_WAIT_UNTIL (!tocsin_record_list_get_loading (list));
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (list)), ==, 0);
  tocsin_record_list_set_channel (list, RELAY, 7);
  TOCSIN_WAIT_UNTIL (!tocsin_record_list_get_loading (list));
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (list)), ==, n);
}

/* A burst reaches an open list as it would a person watching it: every record once, newest
 * on top, in the order they came, a replacement in its middle in place; and the view over the
 * list gets a few changes for the whole burst, not one per record. */
static void
test_record_list_burst (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(TocsinRecordList) list = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func (g_object_unref);
  ItemsChanged last = { 0 };
  const guint n = 2000;

  {
    g_autoptr(TocsinMessage) message = make_message (7, 1, "record 1", "body");
    g_autoptr(TocsinRecord) r = store (f, message, NULL);
  }
  list = tocsin_record_list_new (f->history);
  TOCSIN_WAIT_UNTIL (!tocsin_record_list_get_loading (list));
  g_signal_connect (list, "items-changed", G_CALLBACK (on_items_changed), &last);

  for (guint i = 2; i <= n; i++)
    {
      g_autofree char *title = g_strdup_printf ("record %u", i);
      g_autoptr(TocsinMessage) message = make_message (7, i, title, "body");

      tocsin_history_store_message_async (f->history, RELAY, message, NULL, NULL, NULL);
      /* Halfway, a message replaces record 10. */
      if (i == n / 2)
        {
          g_autoptr(TocsinMessage) update = make_message (7, n + 1, "record 10 again", "new");

          update->replaces = 10;
          tocsin_history_store_message_async (f->history, RELAY, update, NULL, NULL, NULL);
        }
    }
  tocsin_history_flush_sync (f->history);

  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (list)), ==, n);
  for (guint i = 0; i < n; i++)
    {
      TocsinRecord *record = g_list_model_get_item (G_LIST_MODEL (list), i);
      gint64 id = tocsin_record_get_id (record);
      g_autofree char *title = g_strdup_printf ("record %u", n - i);

      g_ptr_array_add (items, record);
      g_assert_true (tocsin_record_get_loaded (record));
      g_assert_false (g_hash_table_contains (seen, &id));
      g_hash_table_add (seen, g_memdup2 (&id, sizeof id));
      if (n - i == 10)
        g_assert_cmpstr (tocsin_record_get_title (record), ==, "record 10 again");
      else
        g_assert_cmpstr (tocsin_record_get_title (record), ==, title);
    }
  g_assert_cmpuint (last.calls, >=, 1);
  g_assert_cmpuint (last.calls, <=, n / 2);
  g_test_message ("%u records, %u items-changed", n - 1, last.calls);
}

static void
test_parse_url (void)
{
  const char *token = "abcdefghijklmnopqrstuvwxyzABCDEF";
  g_autofree char *relay = NULL, *tok = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = g_strconcat ("https://relay.example.com/s/", token, NULL);
  g_autofree char *escaped = g_uri_escape_string (url, NULL, TRUE);
  g_autofree char *tocsin = g_strconcat ("tocsin://subscribe?url=", escaped, NULL);
  g_autofree char *prefixed = g_strconcat ("http://[::1]:8080/relay/s/", token, "/ws", NULL);

  g_assert_true (tocsin_subscription_parse_url (url, &relay, &tok, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (relay, ==, "https://relay.example.com");
  g_assert_cmpstr (tok, ==, token);
  g_clear_pointer (&relay, g_free);
  g_clear_pointer (&tok, g_free);

  g_assert_true (tocsin_subscription_parse_url (tocsin, &relay, &tok, &error));
  g_assert_cmpstr (relay, ==, "https://relay.example.com");
  g_assert_cmpstr (tok, ==, token);
  g_clear_pointer (&relay, g_free);
  g_clear_pointer (&tok, g_free);

  g_assert_true (tocsin_subscription_parse_url (prefixed, &relay, &tok, &error));
  g_assert_cmpstr (relay, ==, "http://[::1]:8080/relay");
  g_clear_pointer (&relay, g_free);
  g_clear_pointer (&tok, g_free);

  g_assert_false (tocsin_subscription_parse_url ("https://relay.example.com/t/abc", NULL, NULL,
                                                 &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (tocsin_subscription_parse_url ("ftp://x/s/abcdefghijklmnopqrstuvwxyzABCDEF",
                                                 NULL, NULL, &error));
  g_clear_error (&error);
  g_assert_false (tocsin_subscription_parse_url ("not a url", NULL, NULL, &error));
  g_clear_error (&error);
}

static TocsinMessageAction *
make_action (const char *kind,
             const char *label,
             const char *url)
{
  TocsinMessageAction *action = g_new0 (TocsinMessageAction, 1);

  action->kind = g_strdup (kind);
  action->label = g_strdup (label);
  action->url = g_strdup (url);
  return action;
}

static GPtrArray *
list_presses (Fixture *f,
              gint64   record_id)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *presses;

  tocsin_history_list_presses_async (f->history, record_id, 0, NULL, store_result, &res);
  WAIT_RESULT (res);
  presses = tocsin_history_list_presses_finish (f->history, res, &error);
  g_assert_no_error (error);
  return presses;
}

static void
add_press (Fixture *f,
           gint64   record_id,
           guint    attempt,
           gint64   pressed_at_ms)
{
  g_autoptr(GAsyncResult) res = NULL;
  TocsinActionPress press = {
    .record_id = record_id, .action_index = 1, .label = (char *) "Silence 1 h",
    .kind = (char *) "http", .url = (char *) "http://127.0.0.1:9/silence",
    .pressed_at_ms = pressed_at_ms, .attempt = attempt, .status = 503,
    .error = (char *) "HTTP 503 Service Unavailable", .duration_ms = 12,
    .answer_start = (char *) "busy", .outcome = TOCSIN_ATTEMPT_RETRY,
    .retry_at_ms = pressed_at_ms + 1000,
  };

  tocsin_history_add_press_async (f->history, &press, NULL, store_result, &res);
  WAIT_RESULT (res);
  g_assert_cmpint (change_done (f, res), >, 0);
}

/* Issue 15: a record keeps its message's action buttons (across a reopen and a replacement),
 * and the press log lists each attempt newest first, and goes with its record. */
static void
test_actions_and_presses (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(TocsinMessage) m = make_message (5, 1, "Disk full", "on db-1");
  g_autoptr(TocsinRecord) stored = NULL;
  g_autoptr(TocsinRecord) loaded = NULL;
  g_autoptr(GPtrArray) presses = NULL;
  TocsinMessageAction *http;
  const TocsinMessageAction *action;
  gint64 now_ms = g_get_real_time () / 1000;

  g_ptr_array_add (m->actions, make_action ("view", "Open runbook", "https://runbook.example/db"));
  http = make_action ("http", "Silence 1 h", "http://127.0.0.1:9/silence?token=secret");
  http->method = g_strdup ("PUT");
  http->headers = g_strsplit ("X-Team|db|Content-Type|application/json", "|", -1);
  http->body = g_strdup ("{\"for\":\"1h\"}");
  http->retry = TRUE;
  http->clear = TRUE;
  g_ptr_array_add (m->actions, http);
  stored = store (f, m, NULL);
  g_assert_cmpuint (tocsin_record_get_n_actions (stored), ==, 2);

  tocsin_history_flush_sync (f->history);
  g_clear_object (&f->history);
  f->history = tocsin_history_new (f->path);
  loaded = record_by_message_id (f, 1);
  g_assert_nonnull (loaded);
  g_assert_cmpuint (tocsin_record_get_n_actions (loaded), ==, 2);
  action = tocsin_record_get_action (loaded, 0);
  g_assert_cmpstr (action->kind, ==, "view");
  g_assert_cmpstr (action->label, ==, "Open runbook");
  g_assert_cmpstr (action->url, ==, "https://runbook.example/db");
  action = tocsin_record_get_action (loaded, 1);
  g_assert_cmpstr (action->kind, ==, "http");
  g_assert_cmpstr (action->method, ==, "PUT");
  g_assert_cmpstr (action->url, ==, "http://127.0.0.1:9/silence?token=secret");
  g_assert_cmpstr (action->body, ==, "{\"for\":\"1h\"}");
  g_assert_cmpuint (g_strv_length (action->headers), ==, 4);
  g_assert_cmpstr (action->headers[0], ==, "X-Team");
  g_assert_cmpstr (action->headers[1], ==, "db");
  g_assert_true (action->retry);
  g_assert_true (action->clear);
  g_assert_null (tocsin_record_get_action (loaded, 2));

  /* Two attempts of one press, newest first, with their channel. */
  add_press (f, tocsin_record_get_id (loaded), 1, now_ms - 2000);
  add_press (f, tocsin_record_get_id (loaded), 2, now_ms - 1000);
  presses = list_presses (f, 0);
  g_assert_cmpuint (presses->len, ==, 2);
  {
    TocsinActionPress *press = presses->pdata[0];

    g_assert_cmpuint (press->attempt, ==, 2);
    g_assert_cmpint (press->record_id, ==, tocsin_record_get_id (loaded));
    g_assert_cmpstr (press->channel_name, ==, "Prod alerts");
    g_assert_cmpstr (press->label, ==, "Silence 1 h");
    g_assert_cmpuint (press->status, ==, 503);
    g_assert_cmpint (press->outcome, ==, TOCSIN_ATTEMPT_RETRY);
    g_assert_cmpint (press->retry_at_ms, ==, now_ms);
    g_assert_cmpuint (((TocsinActionPress *) presses->pdata[1])->attempt, ==, 1);
  }
  g_clear_pointer (&presses, g_ptr_array_unref);
  presses = list_presses (f, tocsin_record_get_id (loaded) + 1);
  g_assert_cmpuint (presses->len, ==, 0);
  g_clear_pointer (&presses, g_ptr_array_unref);

  /* A replacement brings its own actions (here none). */
  {
    g_autoptr(TocsinMessage) r = make_message (5, 2, "Disk fine", "again");
    g_autoptr(TocsinRecord) replaced = NULL;

    r->replaces = 1;
    replaced = store (f, r, NULL);
    g_assert_cmpuint (tocsin_record_get_n_actions (replaced), ==, 0);
    g_assert_null (tocsin_record_get_actions_json (replaced));
  }

  /* The record goes: so does its log, at the next prune (retention or clean-up). */
  {
    g_autoptr(GAsyncResult) res = NULL;

    tocsin_history_delete_record_async (f->history, tocsin_record_get_id (loaded), NULL,
                                        store_result, &res);
    WAIT_RESULT (res);
    g_assert_cmpint (change_done (f, res), ==, 1);
  }
  presses = list_presses (f, 0);
  g_assert_cmpuint (presses->len, ==, 0);
  g_clear_pointer (&presses, g_ptr_array_unref);
  {
    g_autoptr(GAsyncResult) res = NULL;
    sqlite3 *db;
    sqlite3_stmt *stmt;

    tocsin_history_prune_async (f->history, 30, NULL, store_result, &res);
    WAIT_RESULT (res);
    change_done (f, res);
    tocsin_history_flush_sync (f->history);
    g_assert_cmpint (sqlite3_open (f->path, &db), ==, SQLITE_OK);
    g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT count(*) FROM presses", -1, &stmt, NULL), ==,
                     SQLITE_OK);
    g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
    g_assert_cmpint (sqlite3_column_int (stmt, 0), ==, 0);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
  }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/app/history/store-and-query", test_store_and_query);
  ADD ("/app/history/dedup-and-replace", test_dedup_and_replace);
  ADD ("/app/history/batched-storm", test_batched_storm);
  ADD ("/app/history/search", test_search);
  ADD ("/app/history/read-and-clear", test_read_and_clear);
  ADD ("/app/history/undo", test_undo);
  ADD ("/app/history/subscriptions", test_subscriptions);
  ADD ("/app/history/owned-channels", test_owned_channels);
  ADD ("/app/history/export", test_export);
  ADD ("/app/history/type-and-markdown", test_type_and_markdown);
  ADD ("/app/history/upgrade-from-v2", test_upgrade_from_v2);
  ADD ("/app/history/reopen", test_reopen);
  ADD ("/app/history/open-failure", test_open_failure);
  ADD ("/app/history/total", test_total);
  ADD ("/app/history/record-list", test_record_list);
  ADD ("/app/history/record-list-burst", test_record_list_burst);
  ADD ("/app/history/actions-and-presses", test_actions_and_presses);
#undef ADD
  g_test_add_func ("/app/subscription/parse-url", test_parse_url);

  return g_test_run ();
}
