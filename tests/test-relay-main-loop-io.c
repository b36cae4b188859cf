/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-main-loop-io.c: the relay's main loop never waits on the database (issue 16,
 * item 1: "the relay never blocks on the network to the database"; with SQLite, a slow disk
 * must not stall every WebSocket). A real relay on a real SQLite file serves the owner API
 * (create, update, rotate, list deliveries, delete), webhooks, WebSocket connects (/s/…/ws and
 * the app's /v1/ws), the subscribe page and Direct keys (/v1/direct, /d/), and the
 * kernel's per-thread I/O accounting (/proc/PID/task/TID/io) shows what its main thread (TID =
 * PID) did to files meanwhile:
 *
 * - write_bytes: bytes the thread dirtied in files. Each channel change the main thread wrote
 *   itself was a WAL transaction (4 KiB frames and more).
 * - rchar and syscr: bytes read and read(2)-family calls. A lookup on the main connection
 *   re-reads pages from the WAL or the database (4 KiB each) once another connection has
 *   written; sockets are read with recv(2), which neither counts, and each wakeup of the main
 *   context reads its eventfd: 8 bytes. So rchar beyond 8 bytes a call is what files gave.
 *
 * Before issue 16's change, 8 rounds cost the main thread write_bytes 1351680 and rchar
 * 1466176 in 845 read calls (1459416 bytes from files); after it, write_bytes 0 and rchar
 * 5808 in 726 calls (the eventfd's 8 bytes each: 0 from files).
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include "tocsin-test-relay.h"

#define N_ROUNDS 8

/* Less than one page of the database: what the main thread may dirty in files, and read
 * beyond its eventfd wakeups (the odd /proc or locale read), whatever the load. */
#define MAIN_THREAD_SLACK 4096

typedef struct
{
  guint64 write_bytes;
  guint64 rchar;
  guint64 syscr;
} Io;

static guint64
io_field (const char *text,
          const char *name)
{
  g_autofree char *key = g_strdup_printf ("%s: ", name);
  const char *line = strstr (text, key);

  g_assert_nonnull (line);
  return g_ascii_strtoull (line + strlen (key), NULL, 10);
}

static void
main_thread_io (const char *pid,
                Io         *io)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/task/%s/io", pid, pid);
  g_autofree char *text = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  io->write_bytes = io_field (text, "\nwrite_bytes");
  io->rchar = io_field (text, "rchar");
  io->syscr = io_field (text, "\nsyscr");
}

static JsonObject *
call (TocsinTestRelay *relay,
      const char      *method,
      const char      *path,
      const char      *owner_key,
      const char      *body,
      guint            expected)
{
  g_autofree char *auth = owner_key ? g_strdup_printf ("Bearer %s", owner_key) : NULL;
  const char *headers[] = { "Authorization", auth, NULL };
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  node = tocsin_test_http_json (relay, method, path, body ? "application/json" : NULL, body,
                                auth ? headers : NULL, &status);
  g_assert_cmpuint (status, ==, expected);
  return json_object_ref (json_node_get_object (node));
}

/* A Direct key's life: made, rung, rotated, deleted. */
static void
direct_round (TocsinTestRelay *relay)
{
  g_autoptr(JsonObject) inbox = NULL;
  g_autoptr(JsonObject) rotated = NULL;
  g_autoptr(JsonObject) deleted = NULL;
  g_autofree char *ring = NULL, *old_ring = NULL;
  const char *owner;

  inbox = call (relay, "POST", "/v1/direct", NULL, NULL, 201);
  owner = json_object_get_string_member (inbox, "owner_key");
  ring = g_strdup_printf ("/d/%s?body=Backup+done",
                          json_object_get_string_member (inbox, "direct_key"));
  g_assert_cmpuint (tocsin_test_http (relay, "GET", ring, NULL, NULL, -1, NULL, NULL, NULL), ==,
                    200);
  rotated = call (relay, "POST", "/v1/direct/rotate", owner, NULL, 200);
  old_ring = g_steal_pointer (&ring);
  g_assert_cmpuint (tocsin_test_http (relay, "GET", old_ring, NULL, NULL, -1, NULL, NULL, NULL),
                    ==, 404);
  deleted = call (relay, "DELETE", "/v1/direct", owner, NULL, 200);
  g_assert_true (json_object_get_boolean_member (deleted, "deleted"));
}

/* The app's socket: one subscribe frame, answered "subscribed". */
static void
app_round (TocsinTestRelay *relay,
           const char      *subscribe_token)
{
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SoupWebsocketConnection) ws = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *frame = NULL;

  ws = tocsin_test_websocket_connect (relay, "/v1/ws", &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (ws, frames);
  frame = g_strdup_printf ("{\"type\":\"subscribe\",\"token\":\"%s\",\"since\":\"all\"}",
                           subscribe_token);
  soup_websocket_connection_send_text (ws, frame);
  TOCSIN_WAIT_UNTIL (frames->len >= 1);
  g_assert_nonnull (strstr (frames->pdata[0], "\"subscribed\""));
  soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  TOCSIN_WAIT_UNTIL (soup_websocket_connection_get_state (ws) == SOUP_WEBSOCKET_STATE_CLOSED);
}

/* One owner's day: every call the issue names, as a client sees them. */
static void
round_trip (TocsinTestRelay *relay,
            guint            round)
{
  g_autoptr(JsonObject) created = NULL;
  g_autoptr(JsonObject) updated = NULL;
  g_autoptr(JsonObject) rotated = NULL;
  g_autoptr(JsonObject) resub = NULL;
  g_autoptr(JsonObject) deliveries = NULL;
  g_autoptr(JsonObject) deleted = NULL;
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SoupWebsocketConnection) ws = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL, *trigger = NULL, *ws_path = NULL, *rotate = NULL;
  g_autofree char *resubscribe = NULL, *deliveries_path = NULL, *spec = NULL;
  const char *owner;
  gint64 id;

  spec = g_strdup_printf ("{\"name\":\"Disk %u\",\"title\":\"{{title}}\"}", round);
  created = call (relay, "POST", "/v1/channels", NULL, spec, 201);
  id = json_object_get_int_member (created, "id");
  owner = json_object_get_string_member (created, "owner_key");
  path = g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT, id);
  updated = call (relay, "PATCH", path, owner, "{\"description\":\"The backup disk\"}", 200);
  g_assert_cmpstr (json_object_get_string_member (updated, "description"), ==,
                   "The backup disk");

  trigger = g_strdup_printf ("/t/%s", json_object_get_string_member (created, "trigger_token"));
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"title\":\"Full %u\"}", i);

      g_assert_cmpuint (tocsin_test_http (relay, "POST", trigger, "application/json", body, -1,
                                          NULL, NULL, NULL), ==, 200);
    }
  ws_path = g_strdup_printf ("/s/%s/ws?since=all",
                             json_object_get_string_member (created, "subscribe_token"));
  ws = tocsin_test_websocket_connect (relay, ws_path, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (ws, frames);
  TOCSIN_WAIT_UNTIL (frames->len >= 3);
  g_assert_nonnull (strstr (frames->pdata[0], "Full 0"));
  app_round (relay, json_object_get_string_member (created, "subscribe_token"));
  {
    const char *token = json_object_get_string_member (created, "subscribe_token");
    g_autofree char *page = g_strdup_printf ("/s/%s", token);
    const char *accept[] = { "Accept", "application/json", NULL };

    g_assert_cmpuint (tocsin_test_http (relay, "GET", page, NULL, NULL, -1, accept, NULL, NULL),
                      ==, 200);
  }

  rotate = g_strdup_printf ("%s/rotate-trigger", path);
  rotated = call (relay, "POST", rotate, owner, NULL, 200);
  g_assert_cmpstr (json_object_get_string_member (rotated, "trigger_token"), !=,
                   json_object_get_string_member (created, "trigger_token"));
  /* The old webhook URL stops at once. */
  g_assert_cmpuint (tocsin_test_http (relay, "POST", trigger, "application/json", "{}", -1,
                                      NULL, NULL, NULL), ==, 404);
  resubscribe = g_strdup_printf ("%s/rotate-subscribe", path);
  resub = call (relay, "POST", resubscribe, owner, NULL, 200);
  TOCSIN_WAIT_UNTIL (soup_websocket_connection_get_state (ws) == SOUP_WEBSOCKET_STATE_CLOSED);

  deliveries_path = g_strdup_printf ("%s/deliveries?limit=10", path);
  deliveries = call (relay, "GET", deliveries_path, owner, NULL, 200);
  g_assert_true (json_object_has_member (deliveries, "deliveries"));
  deleted = call (relay, "DELETE", path, owner, NULL, 200);
  g_assert_true (json_object_get_boolean_member (deleted, "deleted"));
  g_clear_pointer (&updated, json_object_unref);
  updated = call (relay, "GET", path, owner, NULL, 403);
  direct_round (relay);
}

static void
test_main_thread_reads_and_writes_no_files (void)
{
  g_autoptr(TocsinTestRelay) relay = NULL;
  g_autofree char *pid = NULL;
  gint64 from_files;
  Io before, after;

  if (!g_file_test ("/proc/self/io", G_FILE_TEST_EXISTS))
    {
      g_test_skip ("No per-thread I/O accounting (/proc/PID/task/TID/io)");
      return;
    }

  relay = tocsin_test_relay_start (NULL, NULL);
  pid = g_strdup (g_subprocess_get_identifier (relay->process));
  /* Once first: what a relay does once (the reader thread's start, lazy loads) is not what
   * this measures. */
  round_trip (relay, 0);

  main_thread_io (pid, &before);
  for (guint round = 1; round <= N_ROUNDS; round++)
    round_trip (relay, round);
  main_thread_io (pid, &after);

  g_test_message ("main thread during %u rounds: write_bytes %" G_GUINT64_FORMAT
                  ", rchar %" G_GUINT64_FORMAT ", syscr %" G_GUINT64_FORMAT, N_ROUNDS,
                  after.write_bytes - before.write_bytes, after.rchar - before.rchar,
                  after.syscr - before.syscr);
  g_assert_cmpuint (after.write_bytes - before.write_bytes, <=, MAIN_THREAD_SLACK);
  from_files = (gint64) (after.rchar - before.rchar) - 8 * (gint64) (after.syscr - before.syscr);
  g_assert_cmpint (from_files, <=, MAIN_THREAD_SLACK);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/relay/main-loop/no-file-io", test_main_thread_reads_and_writes_no_files);
  return g_test_run ();
}
