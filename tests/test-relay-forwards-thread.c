/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-forwards-thread.c: the relay's main loop does not write the deliveries queue
 * (issue 17; tocsin-relay-forwards.c). A real relay sends many forwards to a real target; the
 * kernel's per-thread I/O accounting (/proc/PID/task/TID/io, write_bytes: bytes the thread
 * dirtied in files) shows the store's files written by the writer thread while the main thread
 * (TID = PID) writes next to nothing: before the change, each attempt's start and record were
 * a transaction of its own on the main thread (≥ 8 KiB of WAL per delivery).
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include "tocsin-test-relay.h"
#include "tocsin-test-target.h"

#define N_MESSAGES 30

/* What the main thread may still dirty while the forwards run: a few pages of the WAL index
 * (the -shm file, shared memory that readers mark), far less than one delivery's transactions
 * (two WAL frames and more, at 4 KiB each) times N_MESSAGES. */
#define MAIN_THREAD_SLACK (16 * 1024)

static guint64
task_write_bytes (const char *pid,
                  const char *tid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/task/%s/io", pid, tid);
  g_autofree char *text = NULL;
  const char *line;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  line = strstr (text, "\nwrite_bytes: ");
  g_assert_nonnull (line);
  return g_ascii_strtoull (line + strlen ("\nwrite_bytes: "), NULL, 10);
}

/* The main thread's write_bytes, and the sum of the other threads' (the store's writer and
 * reader; their names are not reliable in /proc: GLib may not set them). */
static void
io_by_thread (const char *pid,
              guint64    *main_thread,
              guint64    *writer)
{
  g_autofree char *dir_path = g_strdup_printf ("/proc/%s/task", pid);
  g_autoptr(GDir) dir = g_dir_open (dir_path, 0, NULL);
  const char *tid;

  g_assert_nonnull (dir);
  *main_thread = task_write_bytes (pid, pid);
  *writer = 0;
  while ((tid = g_dir_read_name (dir)) != NULL)
    {
      if (!g_str_equal (tid, pid))
        *writer += task_write_bytes (pid, tid);
    }
}

static guint
count_delivered (TocsinTestRelay *relay,
                 JsonObject      *channel)
{
  g_autofree char *path = g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT
                                           "/deliveries?limit=100",
                                           json_object_get_int_member (channel, "id"));
  g_autofree char *auth = g_strdup_printf ("Bearer %s",
                                           json_object_get_string_member (channel, "owner_key"));
  const char *headers[] = { "Authorization", auth, NULL };
  g_autoptr(JsonNode) node = NULL;
  JsonArray *array;
  guint status = 0, n = 0;

  node = tocsin_test_http_json (relay, "GET", path, NULL, NULL, headers, &status);
  g_assert_cmpuint (status, ==, 200);
  array = json_object_get_array_member (json_node_get_object (node), "deliveries");
  for (guint i = 0; i < json_array_get_length (array); i++)
    if (g_str_equal (json_object_get_string_member (json_array_get_object_element (array, i),
                                                    "state"), "delivered"))
      n++;
  return n;
}

static void
test_main_thread_writes_nothing (void)
{
  g_autoptr(TocsinTestRelay) relay = NULL;
  g_autoptr(TocsinTestTarget) target = tocsin_test_target_new ();
  g_autofree char *url = tocsin_test_target_url (target, "/hook");
  g_autofree char *spec = NULL;
  g_autofree char *pid = NULL;
  g_autofree char *trigger = NULL;
  g_autoptr(JsonNode) node = NULL;
  JsonObject *channel;
  guint64 main_before, main_after, writer_before, writer_after;
  guint status = 0;

  if (!g_file_test ("/proc/self/task/self/io", G_FILE_TEST_EXISTS) &&
      !g_file_test ("/proc/self/io", G_FILE_TEST_EXISTS))
    {
      g_test_skip ("No per-thread I/O accounting (/proc/PID/task/TID/io)");
      return;
    }

  relay = tocsin_test_relay_start (NULL, NULL);
  pid = g_strdup (g_subprocess_get_identifier (relay->process));
  spec = g_strdup_printf ("{\"name\":\"Alerts\",\"title\":\"{{title}}\",\"forwards\":"
                          "[{\"name\":\"hook\",\"url\":\"%s\"}]}", url);
  node = tocsin_test_http_json (relay, "POST", "/v1/channels", "application/json", spec, NULL,
                                &status);
  g_assert_cmpuint (status, ==, 201);
  channel = json_node_get_object (node);
  trigger = g_strdup_printf ("/t/%s", json_object_get_string_member (channel, "trigger_token"));

  io_by_thread (pid, &main_before, &writer_before);
  for (guint i = 0; i < N_MESSAGES; i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"title\":\"Disk %u\"}", i);

      g_assert_cmpuint (tocsin_test_http (relay, "POST", trigger, "application/json", body, -1,
                                          NULL, NULL, NULL), ==, 200);
    }
  tocsin_test_target_wait_requests (target, N_MESSAGES, 20);
  TOCSIN_WAIT_UNTIL (count_delivered (relay, channel) == N_MESSAGES);
  io_by_thread (pid, &main_after, &writer_after);

  g_test_message ("write_bytes during %u deliveries: main thread %" G_GUINT64_FORMAT
                  ", store writer %" G_GUINT64_FORMAT, N_MESSAGES, main_after - main_before,
                  writer_after - writer_before);
  /* The observable works: the messages and the deliveries' states were written, by the writer. */
  g_assert_cmpuint (writer_after - writer_before, >=, N_MESSAGES * 4096);
  g_assert_cmpuint (main_after - main_before, <=, MAIN_THREAD_SLACK);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/relay/forwards/main-thread-writes-nothing",
                   test_main_thread_writes_nothing);
  return g_test_run ();
}
