/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-reliability-faults.c: faults around the relay. A subscriber that reads nothing must not
 * grow the relay's memory nor hold up the others; a full disk must get senders a 503 with a
 * reason instead of an acknowledgement the relay cannot keep; a read-only data dir must stop the
 * relay at start with a sentence that names the problem.
 *
 * The disk tests mount a small tmpfs, so they need root (or they are skipped, saying why).
 */
#define G_LOG_DOMAIN "test-reliability"
/* unshare() and CLONE_NEWNS */
#define _GNU_SOURCE 1

#include "config.h"

#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "tocsin-message.h"
#include "tocsin-test-reliability.h"

/* ---- Slow consumer ---- */

static void
count_messages (SoupWebsocketConnection *ws,
                gint                     type,
                GBytes                  *bytes,
                gpointer                 user_data)
{
  gint64 *last = user_data;
  gsize length;
  const char *data = g_bytes_get_data (bytes, &length);
  g_autoptr(TocsinMessage) message = tocsin_message_new_from_data (data, length, NULL);

  g_assert_nonnull (message);
  /* In order, none skipped, none twice. */
  g_assert_cmpint (message->id, ==, *last + 1);
  *last = message->id;
}

/* The code of the close frame that ends @data (a server's unmasked frames), or 0. A close
 * frame is 0x88, a 7-bit length (2 + reason, at most 125), the code (4008 = 0x0fa8), then the
 * reason. */
static guint
close_frame_code (GString *data)
{
  for (gsize len = 2; len <= 125 && len + 2 <= data->len; len++)
    {
      const guchar *frame = (const guchar *) data->str + data->len - len - 2;

      if (frame[0] == 0x88 && frame[1] == len)
        return (frame[2] << 8) | frame[3];
    }
  return 0;
}

static void
test_slow_consumer (void)
{
  const char *args[] = { "--rate=100000", "--burst=100000", NULL };
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, args);
  g_autoptr(JsonObject) channel = tocsin_test_relay_create_channel (relay, "Firehose", "{{n}}",
                                                                    "{{pad}}", NULL, NULL);
  g_autofree char *hook = tocsin_rel_hook (channel, NULL);
  g_autofree char *handshake = NULL;
  g_autoptr(GSocket) slow = NULL;
  g_autoptr(GString) received = g_string_new (NULL);
  g_autoptr(SoupWebsocketConnection) fast = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *pad = g_strnfill (12 * 1024, 'p');
  g_autofree char *ws_path = g_strdup_printf ("/s/%s/ws",
                                              json_object_get_string_member (channel,
                                                                            "subscribe_token"));
  const guint n_messages = 1000;
  guint64 rss_before, rss_peak, pushed = 0;
  gint64 fast_last = 0;

  /* The slow one: a real WebSocket handshake, then it never reads a byte, with a receive buffer
   * as small as the kernel allows so that the relay's queue is what fills. */
  slow = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_set_option (slow, SOL_SOCKET, SO_RCVBUF, 4096, NULL);
  {
    g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, relay->port);

    g_socket_connect (slow, address, NULL, &error);
    g_assert_no_error (error);
    g_socket_set_blocking (slow, FALSE);
  }
  handshake = g_strdup_printf ("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", ws_path);
  g_assert_true (tocsin_rel_send_all (slow, handshake, strlen (handshake)));
  TOCSIN_WAIT_UNTIL (tocsin_rel_peer_closed (slow, received) ||
                     strstr (received->str, "\r\n\r\n") != NULL);
  g_assert_true (g_str_has_prefix (received->str, "HTTP/1.1 101"));
  g_string_truncate (received, 0);

  fast = tocsin_test_websocket_connect (relay, ws_path, &error);
  g_assert_no_error (error);
  g_signal_connect (fast, "message", G_CALLBACK (count_messages), &fast_last);

  rss_before = tocsin_rel_relay_rss_kib (relay);
  rss_peak = rss_before;
  for (guint i = 1; i <= n_messages; i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"n\": \"%u\", \"pad\": \"%s\"}", i, pad);
      g_autoptr(GBytes) response = NULL;

      g_assert_cmpuint (tocsin_test_http (relay, "POST", hook, "application/json", body, -1, NULL,
                                          &response, NULL), ==, 200);
      pushed += strlen (body) * 2;
      /* The fast subscriber keeps up while the slow one sits there. */
      TOCSIN_WAIT_UNTIL (fast_last >= (gint64) i - 50);
      if (i % 50 == 0)
        rss_peak = MAX (rss_peak, tocsin_rel_relay_rss_kib (relay));
    }
  TOCSIN_WAIT_UNTIL (fast_last == (gint64) n_messages);
  rss_peak = MAX (rss_peak, tocsin_rel_relay_rss_kib (relay));
  g_test_message ("pushed about %" G_GUINT64_FORMAT " KiB at a subscriber that reads nothing; "
                  "relay RSS before %" G_GUINT64_FORMAT " KiB, peak %" G_GUINT64_FORMAT " KiB",
                  pushed / 1024, rss_before, rss_peak);

  /* Bounded: the outgoing queue cap is 1 MiB by default; allow allocator slack, far below the
   * 24 MiB that was pushed. */
  if (!tocsin_rel_relay_wrapped ())
    g_assert_cmpuint (rss_peak - rss_before, <, 12 * 1024);

  /* The slow one was cut off rather than buffered for ever: the relay closed it. What it can
   * still read ends with a 4008 close frame, unless its buffers were too full for even that. */
  TOCSIN_WAIT_UNTIL (tocsin_rel_peer_closed (slow, received));
  g_test_message ("the slow subscriber could still read %" G_GSIZE_FORMAT " KiB",
                  received->len / 1024);
  g_assert_cmpuint (received->len, >=, 4);
  {
    g_autofree char *tail = g_strescape (received->str + received->len - MIN (received->len, 64),
                                         NULL);

    g_test_message ("it ends with: %s", tail);
  }
  g_test_message ("close code: %u", close_frame_code (received));
  g_assert_true (close_frame_code (received) == 4008 || close_frame_code (received) == 0);

  soup_websocket_connection_close (fast, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
}

/* ---- Disk full and read-only ---- */

typedef struct
{
  char *mount_point;
  char *data_dir;
} Tmpfs;

/* Root runs this test in a mount namespace of its own (see main), so that a mount it leaves
 * behind by failing half way vanishes with it. */
static gboolean private_mounts;

/* A tmpfs of @size on a new temp dir; NULL (and the test skipped) when this is not possible. */
static Tmpfs *
tmpfs_mount (const char *size)
{
  g_autofree char *options = g_strdup_printf ("size=%s,mode=0700", size);
  Tmpfs *tmpfs;

  if (!private_mounts)
    {
      g_test_skip ("Needs root (a private mount namespace and a small tmpfs); run the "
                   "reliability suite as root or in a container");
      return NULL;
    }
  tmpfs = g_new0 (Tmpfs, 1);
  tmpfs->mount_point = tocsin_test_make_tmpdir ("tocsin-rel-mnt");
  if (mount ("tmpfs", tmpfs->mount_point, "tmpfs", 0, options) != 0)
    {
      g_test_skip_printf ("Cannot mount a tmpfs here: %s", g_strerror (errno));
      g_rmdir (tmpfs->mount_point);
      g_free (tmpfs->mount_point);
      g_free (tmpfs);
      return NULL;
    }
  tmpfs->data_dir = g_build_filename (tmpfs->mount_point, "data", NULL);
  return tmpfs;
}

static void
tmpfs_unmount (Tmpfs *tmpfs)
{
  g_assert_cmpint (umount2 (tmpfs->mount_point, MNT_DETACH), ==, 0);
  g_rmdir (tmpfs->mount_point);
  g_free (tmpfs->mount_point);
  g_free (tmpfs->data_dir);
  g_free (tmpfs);
}

/* Writes a file until the file system says it is full; returns its path. */
static char *
fill_up (const char *dir)
{
  char *path = g_build_filename (dir, "filler", NULL);
  FILE *file = fopen (path, "w");
  char block[4096];

  g_assert_nonnull (file);
  memset (block, 0xf, sizeof block);
  while (fwrite (block, 1, sizeof block, file) == sizeof block)
    ;
  fclose (file);
  return path;
}

static void
test_disk_full (void)
{
  const char *args[] = { "--rate=100000", "--burst=100000", NULL };
  Tmpfs *tmpfs = tmpfs_mount ("4m");
  g_autoptr(TocsinTestRelay) relay = NULL;
  g_autoptr(JsonObject) channel = NULL;
  g_autoptr(JsonObject) refusal = NULL;
  g_autoptr(GPtrArray) messages = NULL;
  g_autofree char *hook = NULL;
  g_autofree char *filler = NULL;
  g_autofree char *body = g_strnfill (3000, 'd');
  guint refused_status = 0;
  gint64 acked = 0;

  if (tmpfs == NULL)
    return;
  relay = tocsin_test_relay_start (tmpfs->data_dir, args);
  channel = tocsin_test_relay_create_channel (relay, "Disk", NULL, "{{bodyAsText}}", NULL, NULL);
  hook = tocsin_rel_hook (channel, NULL);
  for (guint i = 0; i < 5; i++)
    acked = tocsin_rel_ring (relay, channel, "?before=1");

  filler = fill_up (tmpfs->mount_point);
  /* Ring until the store cannot take more; some may still fit in pages SQLite already has. */
  for (guint i = 0; i < 2000 && refused_status == 0; i++)
    {
      g_autoptr(GBytes) response = NULL;
      guint status = tocsin_test_http (relay, "POST", hook, "text/plain", body, -1, NULL,
                                       &response, NULL);

      if (status == 200)
        {
          g_autoptr(JsonObject) reply = tocsin_rel_parse_object (g_bytes_get_data (response, NULL),
                                                                 -1);

          acked = json_object_get_int_member (reply, "id");
          continue;
        }
      refused_status = status;
      refusal = tocsin_rel_parse_object (g_bytes_get_data (response, NULL), -1);
      g_test_message ("disk full: %u %s", status, json_object_get_string_member (refusal, "error"));
    }
  g_assert_cmpuint (refused_status, !=, 0);
  g_assert_true (json_object_has_member (refusal, "error"));

  /* Still running and answering. */
  g_assert_cmpuint (tocsin_test_http (relay, "GET", "/", NULL, NULL, -1, NULL, NULL, NULL), ==,
                    200);

  /* Room again: it takes webhooks again, and every acknowledged message is there, once. */
  g_assert_cmpint (g_remove (filler), ==, 0);
  acked = tocsin_rel_ring (relay, channel, "?after=1");
  messages = tocsin_rel_replay_all (relay, channel);
  g_assert_cmpuint (messages->len, ==, acked);
  for (guint i = 0; i < messages->len; i++)
    g_assert_cmpint (json_object_get_int_member (messages->pdata[i], "id"), ==, i + 1);
  /* ...and it survives a restart like that. */
  tocsin_test_relay_stop (relay, TRUE);
  tocsin_test_relay_restart (relay);
  tocsin_rel_assert_store (relay, channel, acked);

  /* Issue 6: "answers 503 with a clear error" (a server-side condition the sender may retry). */
  g_assert_cmpuint (refused_status, ==, 503);

  g_clear_pointer (&relay, tocsin_test_relay_free);
  tmpfs_unmount (tmpfs);
}

/* Issue 11: a relay that stopped cleanly is started again on a disk that has filled up since. It
 * serves what it has (replay), answers 503 with Retry-After and a sentence for what it cannot
 * store, and takes webhooks again once there is room. */
static void
test_disk_full_at_start (void)
{
  const char *args[] = { "--rate=100000", "--burst=100000", NULL };
  Tmpfs *tmpfs = tmpfs_mount ("4m");
  g_autoptr(TocsinTestRelay) relay = NULL;
  g_autoptr(JsonObject) channel = NULL;
  g_autoptr(JsonObject) refusal = NULL;
  g_autoptr(SoupMessageHeaders) refusal_headers = NULL;
  g_autofree char *hook = NULL;
  g_autofree char *filler = NULL;
  g_autofree char *body = g_strnfill (3000, 'd');
  guint refused_status = 0;
  gint64 acked = 0;

  if (tmpfs == NULL)
    return;
  relay = tocsin_test_relay_start (tmpfs->data_dir, args);
  channel = tocsin_test_relay_create_channel (relay, "Disk", NULL, "{{bodyAsText}}", NULL, NULL);
  hook = tocsin_rel_hook (channel, NULL);
  for (guint i = 0; i < 5; i++)
    acked = tocsin_rel_ring (relay, channel, "?before=1");
  tocsin_test_relay_stop (relay, FALSE);

  filler = fill_up (tmpfs->mount_point);
  /* It starts (it exited with "database or disk is full"), and replays what it kept. */
  tocsin_test_relay_spawn (relay);
  tocsin_rel_assert_store (relay, channel, acked);

  for (guint i = 0; i < 2000 && refused_status == 0; i++)
    {
      g_autoptr(GBytes) response = NULL;
      g_autoptr(SoupMessageHeaders) headers = NULL;
      guint status = tocsin_test_http (relay, "POST", hook, "text/plain", body, -1, NULL,
                                       &response, &headers);

      if (status == 200)
        {
          g_autoptr(JsonObject) reply = tocsin_rel_parse_object (g_bytes_get_data (response, NULL),
                                                                 -1);

          acked = json_object_get_int_member (reply, "id");
          continue;
        }
      refused_status = status;
      refusal_headers = g_steal_pointer (&headers);
      refusal = tocsin_rel_parse_object (g_bytes_get_data (response, NULL), -1);
    }
  g_test_message ("full at start: %u %s, Retry-After: %s", refused_status,
                  json_object_get_string_member (refusal, "error"),
                  soup_message_headers_get_one (refusal_headers, "Retry-After"));
  g_assert_cmpuint (refused_status, ==, 503);
  g_assert_nonnull (strstr (json_object_get_string_member (refusal, "error"), "disk"));
  g_assert_nonnull (soup_message_headers_get_one (refusal_headers, "Retry-After"));
  /* Still serving what it has. */
  tocsin_rel_assert_store (relay, channel, acked);

  /* Room again: it takes webhooks again. */
  g_assert_cmpint (g_remove (filler), ==, 0);
  acked = tocsin_rel_ring (relay, channel, "?after=1");
  tocsin_rel_assert_store (relay, channel, acked);

  g_clear_pointer (&relay, tocsin_test_relay_free);
  tmpfs_unmount (tmpfs);
}

static void
test_read_only_data_dir (void)
{
  Tmpfs *tmpfs = tmpfs_mount ("4m");
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *data_arg = NULL;
  g_auto(GStrv) argv = NULL;

  if (tmpfs == NULL)
    return;
  /* A store that exists, on a file system that then becomes read-only. */
  {
    g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (tmpfs->data_dir, NULL);
    g_autoptr(JsonObject) channel = tocsin_test_relay_create_channel (relay, "RO", NULL, NULL,
                                                                      NULL, NULL);

    tocsin_rel_ring (relay, channel, "?a=1");
  }
  g_assert_cmpint (mount ("tmpfs", tmpfs->mount_point, "tmpfs", MS_REMOUNT | MS_RDONLY, NULL),
                   ==, 0);

  data_arg = g_strdup_printf ("--data-dir=%s", tmpfs->data_dir);
  argv = tocsin_test_relay_argv ("serve", "--listen=127.0.0.1:0", data_arg, NULL);
  process = g_subprocess_newv ((const char * const *) argv,
                               G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                               &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  g_test_message ("read-only data dir: exit %d, %s", g_subprocess_get_exit_status (process), err);
  /* It does not pretend to serve: it stops, naming the database and the reason. */
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), !=, 0);
  g_assert_null (strstr (out, "Listening on"));
  g_assert_nonnull (strstr (err, "relay.db"));
  g_assert_nonnull (strstr (err, "Read-only"));

  tmpfs_unmount (tmpfs);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  /* Mounts made from here on are this process's (and its relays') alone. */
  private_mounts = geteuid () == 0 && unshare (CLONE_NEWNS) == 0 &&
                   mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
  g_test_add_func ("/reliability/faults/slow-consumer", test_slow_consumer);
  g_test_add_func ("/reliability/faults/disk-full", test_disk_full);
  g_test_add_func ("/reliability/faults/disk-full-at-start", test_disk_full_at_start);
  g_test_add_func ("/reliability/faults/read-only-data-dir", test_read_only_data_dir);
  return g_test_run ();
}
