/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-app-faults.c: the app when its history cannot write (issue #6). Its data dir is a small
 * tmpfs that the test fills up or makes read-only, while a real relay rings it. What a person
 * sees is asserted: the pop-ups still come (read back from python3-dbusmock's notification
 * daemon), the window says why in a strip above the records, the app keeps running; and once
 * the disk has room again, the strip goes away and the history holds every message, once,
 * also those rung meanwhile (kept in memory, or replayed by the relay after a restart).
 *
 * Mounting needs root: without it (or without a display, for the window) the tests are
 * skipped, saying why.
 */
#define G_LOG_DOMAIN "test-app-faults"
/* unshare() and CLONE_NEWNS */
#define _GNU_SOURCE 1

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <adwaita.h>

#include "tocsin-application.h"
#include "tocsin-test-notify.h"
#include "tocsin-test-relay.h"
#include "tocsin-test-ui.h"
#include "tocsin-window.h"

/* The app's XDG_DATA_HOME: a tmpfs mounted before GLib reads the variable. */
static char *data_mount;
static char *home_dir;
static gboolean have_display;
/* Why the disk tests cannot run here, or NULL. */
static char *cannot_mount;

/* ---- helpers -------------------------------------------------------------------------- */

static gboolean
mount_tmpfs (const char *dir,
             const char *size)
{
  g_autofree char *options = g_strdup_printf ("size=%s,mode=0700", size);

  return mount ("tmpfs", dir, "tmpfs", 0, options) == 0;
}

/* Writes a file until the file system says it is full; returns its path. */
static char *
fill_up (const char *dir)
{
  char *path = g_build_filename (dir, "filler", NULL);
  char block[4096];
  int fd = g_open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  gsize sizes[] = { sizeof block, 512, 1 };

  g_assert_cmpint (fd, >=, 0);
  memset (block, 0xf, sizeof block);
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    while (write (fd, block, sizes[i]) == (gssize) sizes[i])
      ;
  g_assert_cmpint (errno, ==, ENOSPC);
  close (fd);
  return path;
}

static void
ring (TocsinTestRelay *relay,
      JsonObject      *channel,
      guint            n)
{
  g_autofree char *path = g_strdup_printf ("/t/%s?n=%u",
                                           json_object_get_string_member (channel,
                                                                          "trigger_token"), n);

  /* The relay's disk is not the app's: it takes every one. */
  g_assert_cmpuint (tocsin_test_http (relay, "GET", path, NULL, NULL, 0, NULL, NULL, NULL), ==,
                    200);
}

/* Subscribes @client to @channel from its first message. */
static TocsinSubscription *
subscribe (TocsinClient *client,
           JsonObject   *channel)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinSubscription) fetched = NULL;
  TocsinSubscription *sub;

  tocsin_client_fetch_channel_info_async (client,
                                          json_object_get_string_member (channel,
                                                                         "subscribe_url"),
                                          NULL, tocsin_test_ui_async_done, &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  fetched = tocsin_client_fetch_channel_info_finish (client, result, NULL, &error);
  g_assert_no_error (error);
  g_clear_object (&result);
  tocsin_subscription_set_cursor (fetched, 0);
  tocsin_client_subscribe_async (client, fetched, NULL, tocsin_test_ui_async_done, &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  sub = tocsin_client_subscribe_finish (client, result, &error);
  g_assert_no_error (error);
  return sub;
}

/* The last message id the client's connection passed on for @sub. */
static gint64
passed_on (TocsinClient       *client,
           TocsinSubscription *sub)
{
  TocsinConnection *conn = tocsin_client_get_connection (client,
                                                         tocsin_subscription_get_relay_url (sub));

  return conn ? tocsin_connection_get_cursor (conn, tocsin_subscription_get_token (sub)) : -2;
}

/* The titles in the history, oldest first, joined by commas: "Alert 1,Alert 2". */
static char *
stored_titles (TocsinHistory *history)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) titles = g_string_new (NULL);

  tocsin_history_query_async (history, NULL, 0, 1000, NULL, tocsin_test_ui_async_done, &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  records = tocsin_history_query_finish (history, result, &error);
  g_assert_no_error (error);
  /* Newest first: read them backwards. */
  for (guint i = records->len; i > 0; i--)
    {
      if (titles->len > 0)
        g_string_append_c (titles, ',');
      g_string_append (titles, tocsin_record_get_title (records->pdata[i - 1]));
    }
  return g_string_free (g_steal_pointer (&titles), FALSE);
}

/* Drops @client and @history and waits until the history is gone (its worker's last
 * references come back through the main context), so its file is closed. */
static void
close_all (TocsinClient  **client,
           TocsinHistory **history)
{
  gpointer alive = *history;

  tocsin_client_stop (*client);
  tocsin_history_flush_sync (*history);
  g_object_add_weak_pointer (G_OBJECT (*history), &alive);
  g_clear_object (client);
  g_clear_object (history);
  TOCSIN_WAIT_UNTIL (alive == NULL);
}

/* A fresh 4 MiB tmpfs for one test, or NULL after marking the test skipped (not root, no
 * mount namespace). Unmount with umount2 (mnt, MNT_DETACH). */
static char *
mount_scratch (void)
{
  g_autofree char *mnt = NULL;

  if (cannot_mount)
    {
      g_test_skip (cannot_mount);
      return NULL;
    }
  mnt = tocsin_test_make_tmpdir ("tocsin-app-mnt");
  if (!mount_tmpfs (mnt, "4m"))
    {
      g_test_skip_printf ("Cannot mount a tmpfs here: %s", g_strerror (errno));
      g_rmdir (mnt);
      return NULL;
    }
  return g_steal_pointer (&mnt);
}

/* Opens the history at @db_path and starts a client on it (no notifier), as the app does. */
static TocsinClient *
start_client (const char     *db_path,
              TocsinHistory **history)
{
  TocsinClient *client;

  *history = tocsin_history_new (db_path);
  client = tocsin_client_new (*history, NULL, NULL);
  tocsin_client_start (client);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_started (client));
  return client;
}

/* ---- the window ----------------------------------------------------------------------- */

/* The rows the records view has (loaded or not). */
static guint
n_records (TocsinWindow *window)
{
  return g_list_model_get_n_items (G_LIST_MODEL (tocsin_window_get_record_list (window)));
}

#define DISK_FULL_TEXT "Notifications can’t be saved: the disk is full. New ones still appear " \
                       "as pop-ups, but won’t be kept in the history."

static void
test_window_disk_full (void)
{
  g_autoptr(TocsinTestRelay) relay = NULL;
  g_autoptr(JsonObject) channel = NULL;
  g_autoptr(TocsinApplication) app = NULL;
  g_autoptr(TocsinSubscription) sub = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *filler = NULL;
  g_autofree char *titles = NULL;
  TocsinWindow *window;
  TocsinHistory *history;
  TocsinClient *client;
  GtkWidget *banner;

  if (cannot_mount)
    {
      g_test_skip (cannot_mount);
      return;
    }
  if (!have_display)
    {
      g_test_skip ("No display: run this under `xvfb-run -a` to test the window");
      return;
    }

  relay = tocsin_test_relay_start (NULL, NULL);
  channel = tocsin_test_relay_create_channel (relay, "Disk alerts", "Alert {{n}}", "n={{n}}",
                                              NULL, NULL);
  app = tocsin_application_new ();
  g_application_register (G_APPLICATION (app), NULL, &error);
  g_assert_no_error (error);
  client = tocsin_application_get_client (app);
  history = tocsin_application_get_history (app);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_started (client));
  window = TOCSIN_WINDOW (tocsin_application_present_window (app));
  /* The history is on the tmpfs. */
  g_assert_true (g_str_has_prefix (tocsin_history_get_path (history), data_mount));

  sub = subscribe (client, channel);
  ring (relay, channel, 1);
  TOCSIN_WAIT_UNTIL (n_records (window) == 1);
  g_assert_null (tocsin_test_ui_find_mapped_widget (GTK_WIDGET (window), GTK_TYPE_LABEL,
                                                    "can’t be saved"));

  /* The disk fills up; two webhooks come in. */
  filler = fill_up (data_mount);
  ring (relay, channel, 2);
  ring (relay, channel, 3);

  /* The pop-ups still come... */
  TOCSIN_WAIT_UNTIL (tocsin_test_notify_count (NULL, "Alert 3", NULL) == 1);
  g_assert_cmpuint (tocsin_test_notify_count (NULL, "Alert 2", NULL), ==, 1);
  /* ...the window says why, in words... */
  TOCSIN_WAIT_UNTIL ((banner = tocsin_test_ui_find_mapped_widget (GTK_WIDGET (window),
                                                                  GTK_TYPE_LABEL,
                                                                  DISK_FULL_TEXT)) != NULL);
  g_assert_nonnull (strstr (gtk_label_get_text (GTK_LABEL (banner)), data_mount));
  tocsin_test_ui_save_screenshot (GTK_WIDGET (window), "app-faults-disk-full.png");
  /* ...and it goes on working: still connected, still answering what the user does. */
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (window)));
  g_assert_cmpint (tocsin_connection_get_state (tocsin_client_get_connection (client,
                     tocsin_subscription_get_relay_url (sub))), ==, TOCSIN_CONNECTION_CONNECTED);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.unread-only", NULL));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.unread-only", NULL));
  tocsin_history_flush_sync (history);
  g_assert_nonnull (tocsin_history_get_write_error (history));
  titles = stored_titles (history);
  g_assert_cmpstr (titles, ==, "Alert 1");
  g_clear_pointer (&titles, g_free);

  /* Room again: the next message is saved, with the two that could not be; the strip goes. */
  g_assert_cmpint (g_remove (filler), ==, 0);
  ring (relay, channel, 4);
  TOCSIN_WAIT_UNTIL (n_records (window) == 4);
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_mapped_widget (GTK_WIDGET (window), GTK_TYPE_LABEL,
                                                        "can’t be saved") == NULL);
  g_assert_null (tocsin_history_get_write_error (history));
  titles = stored_titles (history);
  g_assert_cmpstr (titles, ==, "Alert 1,Alert 2,Alert 3,Alert 4");
  /* Their pop-ups were shown once, when they came, not again when they were saved. */
  g_assert_cmpuint (tocsin_test_notify_count (NULL, "Alert 2", NULL), ==, 1);
  g_assert_cmpuint (tocsin_test_notify_count (NULL, "Alert 3", NULL), ==, 1);

  gtk_window_destroy (GTK_WINDOW (window));
  tocsin_client_stop (client);
  tocsin_history_flush_sync (history);
  g_clear_object (&sub);
  g_clear_object (&app);
}

/* ---- the core, across a restart --------------------------------------------------------- */

static void
test_restart_replays (void)
{
  g_autoptr(TocsinTestRelay) relay = NULL;
  g_autoptr(JsonObject) channel = NULL;
  g_autofree char *mnt = NULL;
  g_autofree char *db_path = NULL;
  g_autofree char *filler = NULL;
  g_autofree char *titles = NULL;
  TocsinHistory *history;
  TocsinClient *client;
  TocsinSubscription *sub;
  const GError *write_error;

  mnt = mount_scratch ();
  if (mnt == NULL)
    return;
  db_path = g_build_filename (mnt, "tocsin", "history.db", NULL);
  relay = tocsin_test_relay_start (NULL, NULL);
  channel = tocsin_test_relay_create_channel (relay, "Restart", "Alert {{n}}", "n={{n}}",
                                              NULL, NULL);

  /* First run: one message stored, then the disk fills and two more come. */
  client = start_client (db_path, &history);
  sub = subscribe (client, channel);
  ring (relay, channel, 1);
  TOCSIN_WAIT_UNTIL (passed_on (client, sub) == 1);
  tocsin_history_flush_sync (history);
  filler = fill_up (mnt);
  ring (relay, channel, 2);
  ring (relay, channel, 3);
  TOCSIN_WAIT_UNTIL (passed_on (client, sub) == 3);
  tocsin_history_flush_sync (history);
  write_error = tocsin_history_get_write_error (history);
  g_assert_error (write_error, G_IO_ERROR, G_IO_ERROR_NO_SPACE);
  titles = stored_titles (history);
  g_assert_cmpstr (titles, ==, "Alert 1");
  g_clear_pointer (&titles, g_free);

  /* The app quits before the disk has room: what it held in memory is gone... */
  g_clear_object (&sub);
  close_all (&client, &history);

  /* ...but its stored cursor did not move past it: the next start gets it from the relay. */
  g_assert_cmpint (g_remove (filler), ==, 0);
  client = start_client (db_path, &history);
  sub = g_list_model_get_item (tocsin_client_get_subscriptions (client), 0);
  g_object_unref (sub);   /* the client's store keeps it */
  TOCSIN_WAIT_UNTIL (passed_on (client, sub) == 3);
  ring (relay, channel, 4);
  TOCSIN_WAIT_UNTIL (passed_on (client, sub) == 4);
  tocsin_history_flush_sync (history);
  g_assert_null (tocsin_history_get_write_error (history));
  titles = stored_titles (history);
  g_assert_cmpstr (titles, ==, "Alert 1,Alert 2,Alert 3,Alert 4");

  close_all (&client, &history);
  g_assert_cmpint (umount2 (mnt, MNT_DETACH), ==, 0);
  g_rmdir (mnt);
}

/* The data dir is read-only from the start: the subscriptions still load (read-only), messages
 * still come and are shown, the reason is a read-only one; once the dir is writable again, the
 * next message is saved with those held meanwhile. */
static void
test_read_only_at_start (void)
{
  g_autoptr(TocsinTestRelay) relay = NULL;
  g_autoptr(JsonObject) channel = NULL;
  g_autofree char *mnt = NULL;
  g_autofree char *db_path = NULL;
  g_autofree char *titles = NULL;
  g_autofree char *sentence = NULL;
  TocsinHistory *history;
  TocsinClient *client;
  TocsinSubscription *sub;
  const GError *write_error;

  mnt = mount_scratch ();
  if (mnt == NULL)
    return;
  db_path = g_build_filename (mnt, "tocsin", "history.db", NULL);
  relay = tocsin_test_relay_start (NULL, NULL);
  channel = tocsin_test_relay_create_channel (relay, "Read-only", "Alert {{n}}", "n={{n}}",
                                              NULL, NULL);

  client = start_client (db_path, &history);
  sub = subscribe (client, channel);
  ring (relay, channel, 1);
  TOCSIN_WAIT_UNTIL (passed_on (client, sub) == 1);
  g_clear_object (&sub);
  close_all (&client, &history);

  g_assert_cmpint (mount ("tmpfs", mnt, "tmpfs", MS_REMOUNT | MS_RDONLY, NULL), ==, 0);
  client = start_client (db_path, &history);
  /* The subscription came back from the read-only file, and messages still arrive. */
  g_assert_cmpuint (g_list_model_get_n_items (tocsin_client_get_subscriptions (client)), ==, 1);
  sub = g_list_model_get_item (tocsin_client_get_subscriptions (client), 0);
  g_object_unref (sub);   /* the client's store keeps it */
  ring (relay, channel, 2);
  TOCSIN_WAIT_UNTIL (passed_on (client, sub) == 2);
  tocsin_history_flush_sync (history);
  write_error = tocsin_history_get_write_error (history);
  g_assert_nonnull (write_error);
  g_assert_true (g_error_matches (write_error, G_IO_ERROR, G_IO_ERROR_READ_ONLY));
  sentence = tocsin_history_describe_error (write_error, db_path);
  g_test_message ("%s", sentence);
  g_assert_nonnull (strstr (sentence, "read-only"));
  g_assert_nonnull (strstr (sentence, mnt));
  titles = stored_titles (history);
  g_assert_cmpstr (titles, ==, "Alert 1");
  g_clear_pointer (&titles, g_free);

  /* Writable again. */
  g_assert_cmpint (mount ("tmpfs", mnt, "tmpfs", MS_REMOUNT, NULL), ==, 0);
  ring (relay, channel, 3);
  TOCSIN_WAIT_UNTIL (passed_on (client, sub) == 3);
  tocsin_history_flush_sync (history);
  g_assert_null (tocsin_history_get_write_error (history));
  titles = stored_titles (history);
  g_assert_cmpstr (titles, ==, "Alert 1,Alert 2,Alert 3");

  close_all (&client, &history);
  g_assert_cmpint (umount2 (mnt, MNT_DETACH), ==, 0);
  g_rmdir (mnt);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *data_home = NULL;
  int status;

  /* Before any thread exists (a mount namespace is per thread until then) and before GLib
   * reads XDG_DATA_HOME: mounts made from here on are this process's (and its children's). */
  home_dir = tocsin_test_make_tmpdir ("tocsin-app-faults");
  data_mount = g_build_filename (home_dir, "data", NULL);
  g_mkdir (data_mount, 0700);
  if (geteuid () != 0)
    cannot_mount = g_strdup ("Needs root (a private mount namespace and a small tmpfs); run the "
                             "app and reliability suites as root or in a container");
  else if (unshare (CLONE_NEWNS) != 0 || mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
    cannot_mount = g_strdup_printf ("Cannot make a private mount namespace: %s",
                                    g_strerror (errno));
  else if (!mount_tmpfs (data_mount, "4m"))
    cannot_mount = g_strdup_printf ("Cannot mount a tmpfs here: %s", g_strerror (errno));

  g_setenv ("XDG_DATA_HOME", data_mount, TRUE);
  {
    g_autofree char *config_home = g_build_filename (home_dir, "config", NULL);
    g_autofree char *cache_home = g_build_filename (home_dir, "cache", NULL);

    g_setenv ("XDG_CONFIG_HOME", config_home, TRUE);
    g_setenv ("XDG_CACHE_HOME", cache_home, TRUE);
  }
  g_setenv ("XDG_DATA_DIRS", "/usr/share", TRUE);

  g_test_init (&argc, &argv, NULL);
  if (g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL)
    {
      g_printerr ("Run this through build-aux/with-dbusmock.sh (needs a notification daemon)\n");
      return 1;
    }
  have_display = gtk_init_check ();
  if (have_display)
    g_object_set (gtk_settings_get_default (), "gtk-enable-animations", FALSE, NULL);

  g_test_add_func ("/app/faults/window-disk-full", test_window_disk_full);
  g_test_add_func ("/app/faults/restart-replays", test_restart_replays);
  g_test_add_func ("/app/faults/read-only-at-start", test_read_only_at_start);
  status = g_test_run ();

  if (cannot_mount == NULL)
    umount2 (data_mount, MNT_DETACH);
  tocsin_test_rmdir_recursive (home_dir);
  g_free (home_dir);
  g_free (data_mount);
  g_free (cannot_mount);
  return status;
}
