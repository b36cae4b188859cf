/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-app-notifier.c: notifications as the desktop receives them. Runs on a private session
 * bus with python3-dbusmock's notification daemon (build-aux/with-dbusmock.sh); reads back the
 * Notify calls it got and plays the user's clicks with ActionInvoked.
 */
#include "config.h"

#include <glib/gstdio.h>

#include "tocsin-history.h"
#include "tocsin-notifier.h"
#include "tocsin-test-notify.h"
#include "tocsin-test-relay.h"

#define RELAY "http://relay.test"

typedef struct
{
  char           *dir;
  TocsinHistory  *history;
  GSettings      *settings;
  TocsinNotifier *notifier;
  guint           calls_before;   /* Notify calls the daemon had before this test */
} Fixture;

/* ---- the notification daemon ---- */

typedef TocsinTestNotifyCall NotifyCall;

static guint
n_notify_calls (void)
{
  g_autoptr(GPtrArray) calls = tocsin_test_notify_calls (NULL);
  return calls->len;
}

/* The calls made since the test began. */
static GPtrArray *
new_calls (Fixture *f)
{
  GPtrArray *calls = tocsin_test_notify_calls (NULL);

  g_ptr_array_remove_range (calls, 0, f->calls_before);
  return calls;
}

/* Whether the latest Notify since the test began showed @summary. */
static gboolean
last_summary_is (Fixture    *f,
                 const char *summary)
{
  g_autoptr(GPtrArray) calls = new_calls (f);

  return calls->len > 0 &&
         g_strcmp0 (((NotifyCall *) g_ptr_array_index (calls, calls->len - 1))->summary,
                    summary) == 0;
}

static guchar
hint_byte (NotifyCall *call,
           const char *name)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (call->hints, name, G_VARIANT_TYPE_BYTE);

  g_assert_nonnull (value);
  return g_variant_get_byte (value);
}

static gboolean
hint_bool (NotifyCall *call,
           const char *name)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (call->hints, name, G_VARIANT_TYPE_BOOLEAN);

  return value != NULL && g_variant_get_boolean (value);
}

/* ---- fixture ---- */

static void
store_result (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static TocsinRecord *
stored_message (Fixture           *f,
                gint64             channel,
                gint64             id,
                const char        *title,
                const char        *body,
                const char        *link,
                TocsinMessageType  type,
                gboolean           markdown)
{
  g_autoptr(TocsinMessage) message = tocsin_message_new ();
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  TocsinRecord *record;

  message->id = id;
  message->channel = channel;
  message->channel_name = g_strdup ("Prod alerts");
  message->time_ms = g_get_real_time () / 1000;
  g_free (message->title);
  message->title = g_strdup (title);
  g_free (message->body);
  message->body = g_strdup (body);
  message->external_link = g_strdup (link);
  message->type = type;
  message->markdown = markdown;
  tocsin_history_store_message_async (f->history, RELAY, message, NULL, store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  record = tocsin_history_store_message_finish (f->history, res, NULL, &error);
  g_assert_no_error (error);
  return record;
}

static TocsinRecord *
stored_record (Fixture    *f,
               gint64      channel,
               gint64      id,
               const char *title,
               const char *body,
               const char *link)
{
  return stored_message (f, channel, id, title, body, link, TOCSIN_MESSAGE_TYPE_DEFAULT, FALSE);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autofree char *path = NULL;

  f->dir = tocsin_test_make_tmpdir ("tocsin-notifier-test");
  path = g_build_filename (f->dir, "history.db", NULL);
  f->history = tocsin_history_new (path);
  f->settings = g_settings_new (APP_ID);
  g_settings_reset (f->settings, "quiet-hours-enabled");
  g_settings_reset (f->settings, "quiet-hours-start");
  g_settings_reset (f->settings, "quiet-hours-end");
  f->notifier = tocsin_notifier_new (f->settings);
  f->calls_before = n_notify_calls ();
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->notifier);
  g_clear_object (&f->settings);
  tocsin_history_flush_sync (f->history);
  g_clear_object (&f->history);
  tocsin_test_rmdir_recursive (f->dir);
  g_free (f->dir);
}

/* ---- tests ---- */

static void
test_notify_arguments (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(TocsinRecord) record = stored_record (f, 7, 1, "Disk <full> & co",
                                                  "L'utilisation <b>a</b> atteint 95% & plus",
                                                  "https://dashboard.example.com/alerts/123");
  g_autoptr(GPtrArray) calls = NULL;
  NotifyCall *call;
  const char *desktop_entry = NULL;

  g_assert_cmpint (tocsin_notifier_notify (f->notifier, record, NULL), ==, TOCSIN_NOTIFY_SHOWN);
  calls = new_calls (f);
  g_assert_cmpuint (calls->len, ==, 1);
  call = g_ptr_array_index (calls, 0);

  g_assert_cmpuint (call->replaces_id, ==, 0);
  g_assert_cmpstr (call->icon, ==, APP_ID);
  /* The summary is plain text; the body is escaped for the server's markup, and its first
   * line says which channel the popup is from. */
  g_assert_cmpstr (call->summary, ==, "Disk <full> & co");
  g_assert_cmpstr (call->body, ==,
                   "Prod alerts\nL'utilisation &lt;b&gt;a&lt;/b&gt; atteint 95% &amp; plus");
  {
    const char *category = NULL;

    g_assert_true (g_variant_lookup (call->hints, "category", "&s", &category));
    g_assert_cmpstr (category, ==, "x-tocsin.alert");
  }
  g_assert_true (g_strv_contains ((const char * const *) call->actions, "default"));
  g_assert_true (g_strv_contains ((const char * const *) call->actions, "mark-read"));
  g_assert_true (g_variant_lookup (call->hints, "desktop-entry", "&s", &desktop_entry));
  g_assert_cmpstr (desktop_entry, ==, APP_ID);
  g_assert_cmpuint (hint_byte (call, "urgency"), ==, 1);   /* normal */
}

static void
test_time_sensitive (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(TocsinSubscription) sub = tocsin_subscription_new (RELAY, "tok");
  g_autoptr(TocsinRecord) record = stored_record (f, 7, 1, "Server down", "now", NULL);
  g_autoptr(GPtrArray) calls = NULL;

  tocsin_subscription_set_notify_type (sub, TOCSIN_NOTIFY_TYPE_TIME_SENSITIVE);
  g_assert_cmpint (tocsin_notifier_notify (f->notifier, record, sub), ==, TOCSIN_NOTIFY_SHOWN);
  calls = new_calls (f);
  g_assert_cmpuint (calls->len, ==, 1);
  g_assert_cmpuint (hint_byte (g_ptr_array_index (calls, 0), "urgency"), ==, 2);   /* critical */
}

/* The urgency the server got for the latest Notify since the test began. */
static guchar
last_urgency (Fixture *f)
{
  g_autoptr(GPtrArray) calls = new_calls (f);

  g_assert_cmpuint (calls->len, >, 0);
  return hint_byte (g_ptr_array_index (calls, calls->len - 1), "urgency");
}

/* A message's own notificationType wins over its subscription's choice: time-sensitive (and
 * calling, for now) are critical and come through quiet hours even on a normal channel;
 * active is normal, and kept quiet, even on a time-sensitive one. */
static void
test_message_type (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(TocsinSubscription) normal = tocsin_subscription_new (RELAY, "tok-normal");
  g_autoptr(TocsinSubscription) urgent = tocsin_subscription_new (RELAY, "tok-urgent");
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autoptr(GDateTime) start = g_date_time_add_hours (now, -1);
  g_autoptr(GDateTime) end = g_date_time_add_hours (now, 1);
  g_autofree char *start_text = g_date_time_format (start, "%H:%M");
  g_autofree char *end_text = g_date_time_format (end, "%H:%M");
  /* One channel each: four from one channel would be a storm. */
  g_autoptr(TocsinRecord) ts = stored_message (f, 11, 1, "Down", "db-1", NULL,
                                               TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE, FALSE);
  g_autoptr(TocsinRecord) calling = stored_message (f, 12, 1, "Call", "on call", NULL,
                                                    TOCSIN_MESSAGE_TYPE_CALLING, FALSE);
  g_autoptr(TocsinRecord) active = stored_message (f, 13, 1, "FYI", "deployed", NULL,
                                                   TOCSIN_MESSAGE_TYPE_ACTIVE, FALSE);
  g_autoptr(TocsinRecord) plain = stored_message (f, 14, 1, "Plain", "as chosen", NULL,
                                                  TOCSIN_MESSAGE_TYPE_DEFAULT, FALSE);

  tocsin_subscription_set_notify_type (urgent, TOCSIN_NOTIFY_TYPE_TIME_SENSITIVE);

  g_assert_cmpint (tocsin_notifier_notify (f->notifier, ts, normal), ==, TOCSIN_NOTIFY_SHOWN);
  g_assert_cmpuint (last_urgency (f), ==, 2);   /* critical */
  g_assert_cmpint (tocsin_notifier_notify (f->notifier, ts, NULL), ==, TOCSIN_NOTIFY_SHOWN);
  g_assert_cmpuint (last_urgency (f), ==, 2);
  g_assert_cmpint (tocsin_notifier_notify (f->notifier, calling, normal), ==,
                   TOCSIN_NOTIFY_SHOWN);
  g_assert_cmpuint (last_urgency (f), ==, 2);
  g_assert_cmpint (tocsin_notifier_notify (f->notifier, active, urgent), ==, TOCSIN_NOTIFY_SHOWN);
  g_assert_cmpuint (last_urgency (f), ==, 1);   /* normal */
  g_assert_cmpint (tocsin_notifier_notify (f->notifier, plain, urgent), ==, TOCSIN_NOTIFY_SHOWN);
  g_assert_cmpuint (last_urgency (f), ==, 2);
  g_assert_cmpint (tocsin_notifier_notify (f->notifier, plain, normal), ==, TOCSIN_NOTIFY_SHOWN);
  g_assert_cmpuint (last_urgency (f), ==, 1);

  /* Quiet hours around now. */
  g_settings_set_string (f->settings, "quiet-hours-start", start_text);
  g_settings_set_string (f->settings, "quiet-hours-end", end_text);
  g_settings_set_boolean (f->settings, "quiet-hours-enabled", TRUE);
  g_assert_true (tocsin_notifier_in_quiet_hours (f->notifier, now));
  g_assert_cmpint (tocsin_notifier_notify (f->notifier, active, urgent), ==, TOCSIN_NOTIFY_QUIET);
  g_assert_cmpint (tocsin_notifier_notify (f->notifier, plain, normal), ==, TOCSIN_NOTIFY_QUIET);
  {
    g_autoptr(TocsinRecord) ts2 = stored_message (f, 15, 1, "Down again", "db-2", NULL,
                                                  TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE, FALSE);

    g_assert_cmpint (tocsin_notifier_notify (f->notifier, ts2, normal), ==, TOCSIN_NOTIFY_SHOWN);
    g_assert_true (last_summary_is (f, "Down again"));
    g_assert_cmpuint (last_urgency (f), ==, 2);
  }
  /* Muted is muted, whatever the message asks. */
  tocsin_subscription_set_muted (normal, TRUE);
  g_assert_cmpint (tocsin_notifier_notify (f->notifier, ts, normal), ==, TOCSIN_NOTIFY_MUTED);
}

/* A Markdown body pops up as its text: no asterisks, still escaped for the server's markup. */
static void
test_markdown_plain_text (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(TocsinRecord) record =
    stored_message (f, 7, 1, "Disk", "**Disk** at *95%* & <b>rising</b>\n\n- see "
                    "[dashboard](https://dash.example.com)", NULL,
                    TOCSIN_MESSAGE_TYPE_DEFAULT, TRUE);
  g_autoptr(GPtrArray) calls = NULL;
  NotifyCall *call;

  g_assert_cmpint (tocsin_notifier_notify (f->notifier, record, NULL), ==, TOCSIN_NOTIFY_SHOWN);
  calls = new_calls (f);
  g_assert_cmpuint (calls->len, ==, 1);
  call = g_ptr_array_index (calls, 0);
  g_assert_cmpstr (call->body, ==,
                   "Prod alerts\nDisk at 95% &amp; &lt;b&gt;rising&lt;/b&gt;\n\n• see dashboard");

  /* Its replacement too. */
  tocsin_record_set_body (record, "now `99%`");
  tocsin_notifier_update (f->notifier, record);
  TOCSIN_WAIT_UNTIL (n_notify_calls () == f->calls_before + 2);
  g_clear_pointer (&calls, g_ptr_array_unref);
  calls = new_calls (f);
  g_assert_cmpstr (((NotifyCall *) g_ptr_array_index (calls, 1))->body, ==, "Prod alerts\nnow 99%");
}

static void
test_replacement (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(TocsinRecord) record = stored_record (f, 7, 1, "CPU 80%", "warming", NULL);
  g_autoptr(GPtrArray) calls = NULL;
  NotifyCall *first, *second;

  tocsin_notifier_notify (f->notifier, record, NULL);
  tocsin_record_set_title (record, "CPU 95%");
  tocsin_record_set_body (record, "on fire");
  tocsin_notifier_update (f->notifier, record);

  /* The update waits for the first popup's id (popups are sent asynchronously). */
  TOCSIN_WAIT_UNTIL (n_notify_calls () == f->calls_before + 2);
  calls = new_calls (f);
  g_assert_cmpuint (calls->len, ==, 2);
  first = g_ptr_array_index (calls, 0);
  second = g_ptr_array_index (calls, 1);
  /* The same popup, updated in place, silently. */
  g_assert_cmpuint (second->replaces_id, ==, first->id);
  g_assert_cmpstr (second->summary, ==, "CPU 95%");
  g_assert_cmpstr (second->body, ==, "Prod alerts\non fire");
  g_assert_true (hint_bool (second, "suppress-sound"));
  g_assert_false (hint_bool (first, "suppress-sound"));

  /* Once withdrawn (read), a later update shows nothing. */
  tocsin_notifier_withdraw (f->notifier, tocsin_record_get_id (record));
  tocsin_notifier_update (f->notifier, record);
  g_clear_pointer (&calls, g_ptr_array_unref);
  calls = new_calls (f);
  g_assert_cmpuint (calls->len, ==, 2);
}

static void
test_storm (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(GPtrArray) calls = NULL;
  g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func (g_object_unref);
  guint shown = 0, coalesced = 0;
  NotifyCall *summary_first, *summary_last;

  for (guint i = 1; i <= 12; i++)
    g_ptr_array_add (records, stored_record (f, 7, i, "Alert", "storm", NULL));
  for (guint i = 0; i < records->len; i++)
    {
      TocsinNotifyOutcome outcome = tocsin_notifier_notify (f->notifier,
                                                            g_ptr_array_index (records, i), NULL);
      if (outcome == TOCSIN_NOTIFY_SHOWN)
        shown++;
      else if (outcome == TOCSIN_NOTIFY_COALESCED)
        coalesced++;
    }
  g_assert_cmpuint (shown, ==, 3);
  g_assert_cmpuint (coalesced, ==, 9);

  /* 3 popups, then one summary popup updated in place up to "12 new from Prod alerts". The
   * counts that come while its first Notify is unanswered fold into one update. */
  TOCSIN_WAIT_UNTIL (last_summary_is (f, "12 new from Prod alerts"));
  calls = new_calls (f);
  g_assert_cmpuint (calls->len, >=, 3 + 2);
  g_assert_cmpuint (calls->len, <=, 3 + 9);
  summary_first = g_ptr_array_index (calls, 3);
  summary_last = g_ptr_array_index (calls, calls->len - 1);
  g_assert_cmpstr (summary_first->summary, ==, "4 new from Prod alerts");
  g_assert_cmpuint (summary_first->replaces_id, ==, 0);
  g_assert_cmpstr (summary_last->summary, ==, "12 new from Prod alerts");
  g_assert_cmpuint (summary_last->replaces_id, ==, summary_first->id);

  /* Another channel is not part of this storm. */
  {
    g_autoptr(TocsinRecord) other = stored_record (f, 8, 1, "Other", "calm", NULL);
    g_assert_cmpint (tocsin_notifier_notify (f->notifier, other, NULL), ==, TOCSIN_NOTIFY_SHOWN);
  }
}

static void
test_muted_and_quiet (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(TocsinSubscription) sub = tocsin_subscription_new (RELAY, "tok");
  g_autoptr(TocsinRecord) record = stored_record (f, 7, 1, "Hush", "quiet", NULL);
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autoptr(GDateTime) start = g_date_time_add_hours (now, -1);
  g_autoptr(GDateTime) end = g_date_time_add_hours (now, 1);
  g_autofree char *start_text = g_date_time_format (start, "%H:%M");
  g_autofree char *end_text = g_date_time_format (end, "%H:%M");

  tocsin_subscription_set_muted (sub, TRUE);
  g_assert_cmpint (tocsin_notifier_notify (f->notifier, record, sub), ==, TOCSIN_NOTIFY_MUTED);
  tocsin_subscription_set_muted (sub, FALSE);

  /* Quiet hours around now (wrapping midnight when now is near it). */
  g_settings_set_string (f->settings, "quiet-hours-start", start_text);
  g_settings_set_string (f->settings, "quiet-hours-end", end_text);
  g_settings_set_boolean (f->settings, "quiet-hours-enabled", TRUE);
  g_assert_true (tocsin_notifier_in_quiet_hours (f->notifier, now));
  g_assert_cmpint (tocsin_notifier_notify (f->notifier, record, sub), ==, TOCSIN_NOTIFY_QUIET);
  g_assert_cmpuint (n_notify_calls (), ==, f->calls_before);

  /* Time-sensitive gets through. */
  tocsin_subscription_set_notify_type (sub, TOCSIN_NOTIFY_TYPE_TIME_SENSITIVE);
  g_assert_cmpint (tocsin_notifier_notify (f->notifier, record, sub), ==, TOCSIN_NOTIFY_SHOWN);
  g_assert_cmpuint (n_notify_calls (), ==, f->calls_before + 1);

  /* Outside the hours, and with them off, all is normal. */
  g_settings_set_string (f->settings, "quiet-hours-start", end_text);
  g_settings_set_string (f->settings, "quiet-hours-end", end_text);
  g_assert_false (tocsin_notifier_in_quiet_hours (f->notifier, now));
  g_settings_set_boolean (f->settings, "quiet-hours-enabled", FALSE);
  g_assert_false (tocsin_notifier_in_quiet_hours (f->notifier, now));
}

static void
on_link_opened (TocsinNotifier *notifier,
                const char     *uri,
                char          **out)
{
  *out = g_strdup (uri);
}

static void
on_show_record (TocsinNotifier *notifier,
                gint64          id,
                gint64         *out)
{
  *out = id;
}

static void
test_click_opens_link (Fixture       *f,
                       gconstpointer  data)
{
  const char *link = "https://dashboard.example.com/alerts/123?x=1&y=2";
  g_autoptr(TocsinRecord) record = stored_record (f, 7, 1, "Click me", "body", link);
  g_autoptr(GPtrArray) calls = NULL;
  g_autofree char *opened = NULL;
  g_autofree char *launched_file = g_build_filename (g_getenv ("TOCSIN_TEST_LAUNCHED_DIR"),
                                                     "launched-uri", NULL);
  g_autofree char *contents = NULL;

  g_signal_connect (f->notifier, "link-opened", G_CALLBACK (on_link_opened), &opened);
  tocsin_notifier_notify (f->notifier, record, NULL);
  calls = new_calls (f);
  g_assert_cmpuint (calls->len, ==, 1);

  tocsin_test_notify_click (NULL, ((NotifyCall *) g_ptr_array_index (calls, 0))->id, "default");
  TOCSIN_WAIT_UNTIL (opened != NULL);
  g_assert_cmpstr (opened, ==, link);

  /* The test browser (a desktop file for x-scheme-handler/https) really ran with the link. */
  TOCSIN_WAIT_UNTIL (g_file_get_contents (launched_file, &contents, NULL, NULL) &&
                     g_str_has_suffix (contents, "\n"));
  g_strchomp (contents);
  g_assert_cmpstr (contents, ==, link);
}

static void
test_click_without_link (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(TocsinRecord) record = stored_record (f, 7, 1, "No link", "body", NULL);
  g_autoptr(GPtrArray) calls = NULL;
  gint64 shown = 0;

  g_signal_connect (f->notifier, "show-record", G_CALLBACK (on_show_record), &shown);
  tocsin_notifier_notify (f->notifier, record, NULL);
  calls = new_calls (f);
  tocsin_test_notify_click (NULL, ((NotifyCall *) g_ptr_array_index (calls, 0))->id, "default");
  TOCSIN_WAIT_UNTIL (shown != 0);
  g_assert_cmpint (shown, ==, tocsin_record_get_id (record));
}

static void
test_mark_read_action (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(TocsinRecord) record = stored_record (f, 7, 1, "Read me", "body", NULL);
  g_autoptr(GPtrArray) calls = NULL;
  gint64 marked = 0;

  g_signal_connect (f->notifier, "mark-read", G_CALLBACK (on_show_record), &marked);
  tocsin_notifier_notify (f->notifier, record, NULL);
  calls = new_calls (f);
  tocsin_test_notify_click (NULL, ((NotifyCall *) g_ptr_array_index (calls, 0))->id, "mark-read");
  TOCSIN_WAIT_UNTIL (marked != 0);
  g_assert_cmpint (marked, ==, tocsin_record_get_id (record));
}

static void
change_done (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (tocsin_history_change_finish (TOCSIN_HISTORY (object), result, &error), >=, 0);
  g_assert_no_error (error);
  (*(guint *) user_data)++;
}

/* The window and the popup buttons change the history only; the notifier follows it: a record
 * read, deleted, or swept by "mark all read" or "clear channel" has its popup closed, once. */
static void
test_follows_history (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(TocsinRecord) a = stored_record (f, 7, 1, "A", "a", NULL);
  g_autoptr(TocsinRecord) b = stored_record (f, 7, 2, "B", "b", NULL);
  g_autoptr(TocsinRecord) c = stored_record (f, 8, 3, "C", "c", NULL);
  g_autoptr(TocsinRecord) d = stored_record (f, 8, 4, "D", "d", NULL);
  g_autoptr(GPtrArray) calls = NULL;
  guint32 id_a, id_b, id_c, id_d;
  guint done = 0;

  tocsin_notifier_follow_history (f->notifier, f->history);
  tocsin_notifier_notify (f->notifier, a, NULL);
  tocsin_notifier_notify (f->notifier, b, NULL);
  tocsin_notifier_notify (f->notifier, c, NULL);
  tocsin_notifier_notify (f->notifier, d, NULL);
  calls = new_calls (f);
  g_assert_cmpuint (calls->len, ==, 4);
  id_a = ((NotifyCall *) calls->pdata[0])->id;
  id_b = ((NotifyCall *) calls->pdata[1])->id;
  id_c = ((NotifyCall *) calls->pdata[2])->id;
  id_d = ((NotifyCall *) calls->pdata[3])->id;

  /* Read in the window: that popup goes. */
  tocsin_history_set_read_async (f->history, tocsin_record_get_id (a), TRUE, NULL, change_done,
                                 &done);
  TOCSIN_WAIT_UNTIL (tocsin_test_notify_closed_count (NULL, id_a) == 1);
  /* "Mark all as read" on channel 7 closes B, and not channel 8's. */
  tocsin_history_mark_all_read_async (f->history, RELAY, 7, NULL, change_done, &done);
  TOCSIN_WAIT_UNTIL (tocsin_test_notify_closed_count (NULL, id_b) == 1);
  g_assert_cmpuint (tocsin_test_notify_closed_count (NULL, id_c), ==, 0);
  /* Deleting D closes it; clearing channel 8 closes C. */
  tocsin_history_delete_record_async (f->history, tocsin_record_get_id (d), NULL, change_done,
                                      &done);
  TOCSIN_WAIT_UNTIL (tocsin_test_notify_closed_count (NULL, id_d) == 1);
  tocsin_history_clear_async (f->history, RELAY, 8, NULL, change_done, &done);
  TOCSIN_WAIT_UNTIL (tocsin_test_notify_closed_count (NULL, id_c) == 1);
  TOCSIN_WAIT_UNTIL (done == 4);
  tocsin_history_flush_sync (f->history);
  /* Each once. */
  g_assert_cmpuint (tocsin_test_notify_closed_count (NULL, id_a), ==, 1);
  g_assert_cmpuint (tocsin_test_notify_closed_count (NULL, id_b), ==, 1);
}

/* A desktop environment of our own: a "browser" that handles https links by writing the URI to
 * a file, found through XDG_DATA_DIRS, and chosen as the default in mimeapps.list. */
static char *
setup_desktop (void)
{
  g_autofree char *root = tocsin_test_make_tmpdir ("tocsin-notifier-desktop");
  g_autofree char *apps = g_build_filename (root, "data", "applications", NULL);
  g_autofree char *config = g_build_filename (root, "config", NULL);
  g_autofree char *data_dir = g_build_filename (root, "data", NULL);
  g_autofree char *home_data = g_build_filename (root, "home-data", NULL);
  g_autofree char *desktop = g_build_filename (apps, "tocsin-test-browser.desktop", NULL);
  g_autofree char *mimeapps = g_build_filename (config, "mimeapps.list", NULL);
  g_autofree char *out = g_build_filename (root, "launched-uri", NULL);
  g_autofree char *desktop_text = NULL;

  g_assert_cmpint (g_mkdir_with_parents (apps, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (config, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (home_data, 0700), ==, 0);
  desktop_text = g_strdup_printf ("[Desktop Entry]\n"
                                  "Type=Application\n"
                                  "Name=Test Browser\n"
                                  "Exec=sh -c 'echo \"$1\" > %s' sh %%u\n"
                                  "MimeType=x-scheme-handler/https;x-scheme-handler/http;\n"
                                  "NoDisplay=true\n", out);
  g_assert_true (g_file_set_contents (desktop, desktop_text, -1, NULL));
  g_assert_true (g_file_set_contents (mimeapps,
                                      "[Default Applications]\n"
                                      "x-scheme-handler/https=tocsin-test-browser.desktop\n"
                                      "x-scheme-handler/http=tocsin-test-browser.desktop\n",
                                      -1, NULL));
  g_setenv ("XDG_DATA_DIRS", data_dir, TRUE);   /* no real browser can answer */
  g_setenv ("XDG_DATA_HOME", home_data, TRUE);
  g_setenv ("XDG_CONFIG_HOME", config, TRUE);
  g_setenv ("TOCSIN_TEST_LAUNCHED_DIR", root, TRUE);
  return g_steal_pointer (&root);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *desktop_root = NULL;
  int ret;

  /* Before GLib reads any XDG variable. */
  desktop_root = setup_desktop ();
  g_test_init (&argc, &argv, NULL);

  if (g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL)
    {
      g_printerr ("Run this through build-aux/with-dbusmock.sh (needs a notification daemon)\n");
      return 1;
    }

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/app/notifier/notify-arguments", test_notify_arguments);
  ADD ("/app/notifier/time-sensitive", test_time_sensitive);
  ADD ("/app/notifier/message-type", test_message_type);
  ADD ("/app/notifier/markdown-plain-text", test_markdown_plain_text);
  ADD ("/app/notifier/replacement", test_replacement);
  ADD ("/app/notifier/storm", test_storm);
  ADD ("/app/notifier/muted-and-quiet-hours", test_muted_and_quiet);
  ADD ("/app/notifier/click-opens-link", test_click_opens_link);
  ADD ("/app/notifier/click-without-link", test_click_without_link);
  ADD ("/app/notifier/mark-read-action", test_mark_read_action);
  ADD ("/app/notifier/follows-history", test_follows_history);
#undef ADD

  ret = g_test_run ();
  tocsin_test_rmdir_recursive (desktop_root);
  return ret;
}
