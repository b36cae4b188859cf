/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-streams.c: subscribers as peers see them, against the real `tocsin-relay serve`:
 * /s/{token}/ws|sse|json with replay, since, Last-Event-ID and gaps; the multiplexed /v1/ws;
 * a slow subscriber that does not stall a fast one; rotation; kill -9; shutdown.
 */
#define G_LOG_DOMAIN "test-relay-streams"

#include "config.h"

#include <string.h>
#include <sys/socket.h>

#include "tocsin-test-relay.h"

typedef struct
{
  TocsinTestRelay *relay;
  JsonObject      *channel;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  const char * const *args = data;

  f->relay = tocsin_test_relay_start (NULL, args);
  f->channel = tocsin_test_relay_create_channel (f->relay, "Prod alerts",
                                                 "Alerte serveur {{server_name}}",
                                                 "L'utilisation du CPU a atteint {{cpu_usage}}%",
                                                 NULL, NULL);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_pointer (&f->channel, json_object_unref);
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
}

static const char *
subscribe_token (Fixture *f)
{
  return json_object_get_string_member (f->channel, "subscribe_token");
}

/* Rings the channel (GET with a query) and returns the acknowledged message id. */
static gint64
ring (Fixture    *f,
      const char *server_name)
{
  g_autofree char *path = g_strdup_printf ("/t/%s?server_name=%s&cpu_usage=95",
                                           json_object_get_string_member (f->channel,
                                                                          "trigger_token"),
                                           server_name);
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  node = tocsin_test_http_json (f->relay, "GET", path, NULL, NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  return json_object_get_int_member (json_node_get_object (node), "id");
}

static JsonObject *
parse_object (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

static gint64
frame_id (const char *frame)
{
  g_autoptr(JsonObject) object = parse_object (frame);

  return json_object_get_int_member (object, "id");
}

static gboolean
websocket_is_closed (SoupWebsocketConnection *ws)
{
  return soup_websocket_connection_get_state (ws) == SOUP_WEBSOCKET_STATE_CLOSED;
}

/* ---- HTTP streams ---- */

typedef struct
{
  GString      *data;
  GInputStream *stream;
  GCancellable *cancellable;
  gboolean      done;
  guint         status;
} HttpStream;

static void
stream_read_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  HttpStream *s = user_data;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result,
                                                              NULL);

  if (bytes == NULL || g_bytes_get_size (bytes) == 0)
    {
      s->done = TRUE;
      return;
    }
  g_string_append_len (s->data, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_input_stream_read_bytes_async (s->stream, 4096, G_PRIORITY_DEFAULT, s->cancellable,
                                   stream_read_cb, s);
}

static void
stream_sent_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  HttpStream *s = user_data;
  g_autoptr(GError) error = NULL;

  s->stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  g_assert_no_error (error);
  g_input_stream_read_bytes_async (s->stream, 4096, G_PRIORITY_DEFAULT, s->cancellable,
                                   stream_read_cb, s);
}

static HttpStream *
http_stream_open (Fixture    *f,
                  const char *path,
                  const char *last_event_id,
                  SoupMessage **out_msg)
{
  HttpStream *s = g_new0 (HttpStream, 1);
  g_autofree char *url = g_strconcat (f->relay->base_url, path, NULL);
  SoupMessage *msg = soup_message_new ("GET", url);

  s->data = g_string_new (NULL);
  s->cancellable = g_cancellable_new ();
  if (last_event_id)
    soup_message_headers_replace (soup_message_get_request_headers (msg), "Last-Event-ID",
                                  last_event_id);
  soup_session_send_async (f->relay->session, msg, G_PRIORITY_DEFAULT, s->cancellable,
                           stream_sent_cb, s);
  TOCSIN_WAIT_UNTIL (s->stream != NULL);
  s->status = soup_message_get_status (msg);
  if (out_msg)
    *out_msg = msg;
  else
    g_object_unref (msg);
  return s;
}

static void
http_stream_free (HttpStream *s)
{
  g_cancellable_cancel (s->cancellable);
  TOCSIN_WAIT_UNTIL (s->done);
  g_clear_object (&s->stream);
  g_clear_object (&s->cancellable);
  g_string_free (s->data, TRUE);
  g_free (s);
}

/* The message ids in an NDJSON stream, and gap notices as -from. */
static GArray *
ndjson_ids (const char *text)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint64));

  for (guint i = 0; lines[i]; i++)
    {
      g_autoptr(JsonObject) object = NULL;
      gint64 id;

      if (*lines[i] == '\0')
        continue;
      object = parse_object (lines[i]);
      if (json_object_has_member (object, "type"))
        {
          g_assert_cmpstr (json_object_get_string_member (object, "type"), ==, "gap");
          id = -json_object_get_int_member (object, "from");
        }
      else
        id = json_object_get_int_member (object, "id");
      g_array_append_val (ids, id);
    }
  return ids;
}

static guint
count_substr (const char *haystack,
              const char *needle)
{
  guint n = 0;

  for (const char *p = strstr (haystack, needle); p; p = strstr (p + 1, needle))
    n++;
  return n;
}

/* ---- Tests ---- */

static void
test_ws_replay_then_live (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) after1 = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) live = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SoupWebsocketConnection) ws_all = NULL;
  g_autoptr(SoupWebsocketConnection) ws_after1 = NULL;
  g_autoptr(SoupWebsocketConnection) ws_live = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *path_all = g_strdup_printf ("/s/%s/ws?since=all", subscribe_token (f));
  g_autofree char *path_after1 = g_strdup_printf ("/s/%s/ws?since=1", subscribe_token (f));
  g_autofree char *path_live = g_strdup_printf ("/s/%s/ws", subscribe_token (f));
  g_autoptr(JsonObject) first = NULL;

  g_assert_cmpint (ring (f, "Production"), ==, 1);
  g_assert_cmpint (ring (f, "Staging"), ==, 2);

  ws_all = tocsin_test_websocket_connect (f->relay, path_all, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (ws_all, all);
  ws_after1 = tocsin_test_websocket_connect (f->relay, path_after1, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (ws_after1, after1);
  ws_live = tocsin_test_websocket_connect (f->relay, path_live, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (ws_live, live);

  TOCSIN_WAIT_UNTIL (all->len == 2 && after1->len == 1);

  g_assert_cmpint (ring (f, "Live"), ==, 3);
  TOCSIN_WAIT_UNTIL (all->len == 3 && after1->len == 2 && live->len == 1);

  g_assert_cmpint (frame_id (all->pdata[0]), ==, 1);
  g_assert_cmpint (frame_id (all->pdata[1]), ==, 2);
  g_assert_cmpint (frame_id (all->pdata[2]), ==, 3);
  g_assert_cmpint (frame_id (after1->pdata[0]), ==, 2);
  g_assert_cmpint (frame_id (after1->pdata[1]), ==, 3);
  g_assert_cmpint (frame_id (live->pdata[0]), ==, 3);

  /* A message object as docs/protocol.md describes it, one per frame. */
  first = parse_object (all->pdata[0]);
  g_assert_cmpstr (json_object_get_string_member (first, "title"), ==,
                   "Alerte serveur Production");
  g_assert_cmpstr (json_object_get_string_member (first, "body"), ==,
                   "L'utilisation du CPU a atteint 95%");
  g_assert_true (json_object_has_member (first, "time"));
  g_assert_true (json_object_has_member (first, "vars"));
  g_assert_false (json_object_has_member (first, "externalLink"));

  /* Nothing more arrives (no duplicates at the replay/live boundary). */
  g_assert_cmpint (ring (f, "Again"), ==, 4);
  TOCSIN_WAIT_UNTIL (all->len == 4 && after1->len == 3 && live->len == 2);
  g_assert_cmpint (frame_id (after1->pdata[2]), ==, 4);
}

/* Messages rung while a long replay is still being paced out are delivered once, in order. */
static void
test_ws_replay_boundary_under_load (Fixture       *f,
                                    gconstpointer  data)
{
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SoupWebsocketConnection) ws = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_strdup_printf ("/s/%s/ws?since=0", subscribe_token (f));
  const guint before = 450, during = 30;

  for (guint i = 1; i <= before; i++)
    ring (f, "Before");

  ws = tocsin_test_websocket_connect (f->relay, path, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (ws, frames);
  /* Replay goes out in pages; these land in between. */
  for (guint i = 1; i <= during; i++)
    ring (f, "During");

  TOCSIN_WAIT_UNTIL (frames->len >= before + during);
  /* Let anything extra (a duplicate) arrive before counting. */
  ring (f, "Last");
  TOCSIN_WAIT_UNTIL (frames->len >= before + during + 1);
  g_assert_cmpuint (frames->len, ==, before + during + 1);
  for (guint i = 0; i < frames->len; i++)
    g_assert_cmpint (frame_id (frames->pdata[i]), ==, (gint64) i + 1);
}

static void
test_sse_last_event_id (Fixture       *f,
                        gconstpointer  data)
{
  g_autofree char *path = g_strdup_printf ("/s/%s/sse?since=all", subscribe_token (f));
  g_autoptr(SoupMessage) msg = NULL;
  HttpStream *s;

  ring (f, "One");
  ring (f, "Two");
  ring (f, "Three");

  /* A reconnecting EventSource names the last event it saw; that wins over since=all. */
  s = http_stream_open (f, path, "2", &msg);
  g_assert_cmpuint (s->status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_content_type (soup_message_get_response_headers (msg),
                                                          NULL), ==, "text/event-stream");
  TOCSIN_WAIT_UNTIL (strstr (s->data->str, "id: 3\n") != NULL);
  g_assert_null (strstr (s->data->str, "id: 1\n"));
  g_assert_null (strstr (s->data->str, "id: 2\n"));
  g_assert_nonnull (strstr (s->data->str, "event: message\ndata: {"));

  ring (f, "Four");
  /* The event may arrive in more than one read. */
  TOCSIN_WAIT_UNTIL (strstr (s->data->str, "Alerte serveur Four\"") != NULL);
  g_assert_nonnull (strstr (s->data->str, "id: 4\n"));
  g_assert_cmpuint (count_substr (s->data->str, "event: message"), ==, 2);
  http_stream_free (s);
}

static void
test_ndjson_since (Fixture       *f,
                   gconstpointer  data)
{
  g_autofree char *path = g_strdup_printf ("/s/%s/json?since=1", subscribe_token (f));
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GArray) ids = NULL;
  HttpStream *s;

  ring (f, "One");
  ring (f, "Two");

  s = http_stream_open (f, path, NULL, &msg);
  g_assert_cmpuint (s->status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_content_type (soup_message_get_response_headers (msg),
                                                          NULL), ==, "application/x-ndjson");
  ring (f, "Three");
  TOCSIN_WAIT_UNTIL (count_substr (s->data->str, "\n") >= 2);
  ids = ndjson_ids (s->data->str);
  g_assert_cmpuint (ids->len, ==, 2);
  g_assert_cmpint (g_array_index (ids, gint64, 0), ==, 2);
  g_assert_cmpint (g_array_index (ids, gint64, 1), ==, 3);
  http_stream_free (s);
}

static void
test_bad_since (Fixture       *f,
                gconstpointer  data)
{
  g_autofree char *path = g_strdup_printf ("/s/%s/json?since=yesterday", subscribe_token (f));
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  node = tocsin_test_http_json (f->relay, "GET", path, NULL, NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 400);
  g_assert_nonnull (json_object_get_string_member (json_node_get_object (node), "error"));

  node = (json_node_unref (node),
          tocsin_test_http_json (f->relay, "GET", "/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/sse",
                                 NULL, NULL, NULL, &status));
  g_assert_cmpuint (status, ==, 404);
  g_assert_nonnull (json_object_get_string_member (json_node_get_object (node), "error"));
}

/* With retention 0 nothing is kept: a cursor behind gets a gap notice naming what is gone. */
static void
test_gap (Fixture       *f,
          gconstpointer  data)
{
  g_autofree char *path = g_strdup_printf ("/s/%s/ws?since=1", subscribe_token (f));
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SoupWebsocketConnection) ws = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) gap = NULL;

  ring (f, "One");
  ring (f, "Two");
  ring (f, "Three");

  ws = tocsin_test_websocket_connect (f->relay, path, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (ws, frames);
  TOCSIN_WAIT_UNTIL (frames->len >= 1);
  gap = parse_object (frames->pdata[0]);
  g_assert_cmpstr (json_object_get_string_member (gap, "type"), ==, "gap");
  g_assert_cmpint (json_object_get_int_member (gap, "from"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (gap, "to"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (gap, "channel"), ==,
                   json_object_get_int_member (f->channel, "id"));

  /* Live still works after the gap. */
  ring (f, "Four");
  TOCSIN_WAIT_UNTIL (frames->len >= 2);
  g_assert_cmpint (frame_id (frames->pdata[1]), ==, 4);
}

/* ---- /v1/ws ---- */

static JsonObject *
wait_frame (GPtrArray *frames,
            guint      index)
{
  TOCSIN_WAIT_UNTIL (frames->len > index);
  return parse_object (frames->pdata[index]);
}

static void
app_send (SoupWebsocketConnection *ws,
          const char              *format,
          ...) G_GNUC_PRINTF (2, 3);

static void
app_send (SoupWebsocketConnection *ws,
          const char              *format,
          ...)
{
  g_autofree char *text = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  soup_websocket_connection_send_text (ws, text);
}

static void
test_app_multiplex (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(JsonObject) other = tocsin_test_relay_create_channel (f->relay, "Backups", "{{what}}",
                                                                  NULL, NULL, NULL);
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SoupWebsocketConnection) ws = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) subscribed = NULL;
  g_autoptr(JsonObject) replayed = NULL;
  g_autoptr(JsonObject) refused = NULL;
  g_autoptr(JsonObject) subscribed2 = NULL;
  g_autoptr(JsonObject) live = NULL;
  g_autoptr(JsonObject) live_other = NULL;
  g_autofree char *other_trigger = g_strdup_printf ("/t/%s?what=done",
                                                    json_object_get_string_member (other,
                                                                                   "trigger_token"));
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;
  JsonObject *message;

  ring (f, "One");
  ring (f, "Two");

  ws = tocsin_test_websocket_connect (f->relay, "/v1/ws", &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (ws, frames);

  app_send (ws, "{\"type\":\"subscribe\",\"token\":\"%s\",\"since\":1}", subscribe_token (f));
  subscribed = wait_frame (frames, 0);
  g_assert_cmpstr (json_object_get_string_member (subscribed, "type"), ==, "subscribed");
  g_assert_cmpstr (json_object_get_string_member (subscribed, "token"), ==, subscribe_token (f));
  g_assert_cmpint (json_object_get_int_member (subscribed, "lastId"), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (subscribed,
                                                                                 "channel"),
                                                  "name"), ==, "Prod alerts");
  replayed = wait_frame (frames, 1);
  g_assert_cmpstr (json_object_get_string_member (replayed, "type"), ==, "message");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (replayed, "message"),
                                               "id"), ==, 2);

  /* A bad token is refused on its own; the socket and other channels go on. */
  app_send (ws, "{\"type\":\"subscribe\",\"token\":\"nope\",\"since\":null}");
  refused = wait_frame (frames, 2);
  g_assert_cmpstr (json_object_get_string_member (refused, "type"), ==, "error");
  g_assert_cmpstr (json_object_get_string_member (refused, "code"), ==, "unknown-token");
  g_assert_cmpstr (json_object_get_string_member (refused, "token"), ==, "nope");

  app_send (ws, "{\"type\":\"subscribe\",\"token\":\"%s\",\"since\":null}",
            json_object_get_string_member (other, "subscribe_token"));
  subscribed2 = wait_frame (frames, 3);
  g_assert_cmpstr (json_object_get_string_member (subscribed2, "type"), ==, "subscribed");

  ring (f, "Three");
  live = wait_frame (frames, 4);
  message = json_object_get_object_member (live, "message");
  g_assert_cmpint (json_object_get_int_member (message, "id"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (message, "channel"), ==,
                   json_object_get_int_member (f->channel, "id"));

  node = tocsin_test_http_json (f->relay, "GET", other_trigger, NULL, NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  live_other = wait_frame (frames, 5);
  message = json_object_get_object_member (live_other, "message");
  g_assert_cmpint (json_object_get_int_member (message, "channel"), ==,
                   json_object_get_int_member (other, "id"));
  g_assert_cmpstr (json_object_get_string_member (message, "title"), ==, "done");

  /* After unsubscribe, that channel's messages stop; the other's still come. */
  app_send (ws, "{\"type\":\"unsubscribe\",\"token\":\"%s\"}", subscribe_token (f));
  ring (f, "Unheard");
  g_clear_pointer (&node, json_node_unref);
  node = tocsin_test_http_json (f->relay, "GET", other_trigger, NULL, NULL, NULL, &status);
  {
    g_autoptr(JsonObject) next = wait_frame (frames, 6);

    message = json_object_get_object_member (next, "message");
    g_assert_cmpint (json_object_get_int_member (message, "channel"), ==,
                     json_object_get_int_member (other, "id"));
  }

  /* A frame that is not JSON is a protocol violation: 1008. */
  soup_websocket_connection_send_text (ws, "hello");
  TOCSIN_WAIT_UNTIL (websocket_is_closed (ws));
  g_assert_cmpuint (soup_websocket_connection_get_close_code (ws), ==, 1008);
}

/* ---- Rotation, restart, shutdown ---- */

static void
test_rotation_closes_subscribers (Fixture       *f,
                                  gconstpointer  data)
{
  g_autofree char *path = g_strdup_printf ("/s/%s/ws", subscribe_token (f));
  g_autofree char *api = g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT "/rotate-subscribe",
                                          json_object_get_int_member (f->channel, "id"));
  g_autofree char *auth = g_strdup_printf ("Bearer %s",
                                           json_object_get_string_member (f->channel, "owner_key"));
  const char *headers[] = { "Authorization", auth, NULL };
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) app_frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SoupWebsocketConnection) ws = NULL;
  g_autoptr(SoupWebsocketConnection) app = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(JsonObject) closed = NULL;
  guint status = 0;

  g_assert_true (json_object_has_member (f->channel, "owner_key"));
  ws = tocsin_test_websocket_connect (f->relay, path, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (ws, frames);
  app = tocsin_test_websocket_connect (f->relay, "/v1/ws", &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (app, app_frames);
  app_send (app, "{\"type\":\"subscribe\",\"token\":\"%s\"}", subscribe_token (f));
  g_clear_pointer (&closed, json_object_unref);
  closed = wait_frame (app_frames, 0);
  g_assert_cmpstr (json_object_get_string_member (closed, "type"), ==, "subscribed");

  node = tocsin_test_http_json (f->relay, "POST", api, NULL, NULL, headers, &status);
  g_assert_cmpuint (status, ==, 200);

  TOCSIN_WAIT_UNTIL (websocket_is_closed (ws));
  g_assert_cmpuint (soup_websocket_connection_get_close_code (ws), ==, 4410);

  g_clear_pointer (&closed, json_object_unref);
  closed = wait_frame (app_frames, 1);
  g_assert_cmpstr (json_object_get_string_member (closed, "type"), ==, "closed");
  g_assert_cmpint (json_object_get_int_member (closed, "channel"), ==,
                   json_object_get_int_member (f->channel, "id"));
  g_assert_true (soup_websocket_connection_get_state (app) == SOUP_WEBSOCKET_STATE_OPEN);

  /* The old link is dead at once. */
  g_clear_pointer (&node, json_node_unref);
  node = tocsin_test_http_json (f->relay, "GET", path, NULL, NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 404);
}

/* Rotation from the command line (another process) reaches subscribers too. */
static void
test_cli_rotation_closes_subscribers (Fixture       *f,
                                      gconstpointer  data)
{
  g_autofree char *path = g_strdup_printf ("/s/%s/ws", subscribe_token (f));
  g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT,
                                         json_object_get_int_member (f->channel, "id"));
  g_autoptr(SoupWebsocketConnection) ws = NULL;
  g_autoptr(GError) error = NULL;

  ws = tocsin_test_websocket_connect (f->relay, path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (tocsin_test_relay_cli (f->relay, NULL, NULL, "channel", "rotate-subscribe", id,
                                          NULL), ==, 0);
  TOCSIN_WAIT_UNTIL (websocket_is_closed (ws));
  g_assert_cmpuint (soup_websocket_connection_get_close_code (ws), ==, 4410);
}

static void
test_kill_between_ack_and_connect (Fixture       *f,
                                   gconstpointer  data)
{
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SoupWebsocketConnection) ws = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_strdup_printf ("/s/%s/ws?since=0", subscribe_token (f));
  g_autoptr(JsonObject) message = NULL;

  g_assert_cmpint (ring (f, "Durable"), ==, 1);
  tocsin_test_relay_stop (f->relay, TRUE);
  tocsin_test_relay_restart (f->relay);

  ws = tocsin_test_websocket_connect (f->relay, path, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (ws, frames);
  TOCSIN_WAIT_UNTIL (frames->len == 1);
  message = parse_object (frames->pdata[0]);
  g_assert_cmpint (json_object_get_int_member (message, "id"), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (message, "title"), ==,
                   "Alerte serveur Durable");
}

static void
test_shutdown_going_away (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(SoupWebsocketConnection) ws = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_strdup_printf ("/s/%s/ws", subscribe_token (f));

  ws = tocsin_test_websocket_connect (f->relay, path, &error);
  g_assert_no_error (error);
  /* SIGTERM; the harness asserts a clean exit (status 0). */
  tocsin_test_relay_stop (f->relay, FALSE);
  TOCSIN_WAIT_UNTIL (websocket_is_closed (ws));
  g_assert_cmpuint (soup_websocket_connection_get_close_code (ws), ==, 1001);
}

/* ---- Slow subscriber ---- */

/* A WebSocket client that never reads: a raw socket with a tiny receive buffer. */
static GSocket *
open_stalled_websocket (Fixture    *f,
                        const char *path)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, f->relay->port);
  g_autoptr(GError) error = NULL;
  g_autofree char *request = NULL;
  GString *response = g_string_new (NULL);
  char buffer[1];

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                         &error);
  g_assert_no_error (error);
  g_socket_set_option (socket, SOL_SOCKET, SO_RCVBUF, 4096, NULL);
  g_socket_connect (socket, address, NULL, &error);
  g_assert_no_error (error);
  request = g_strdup_printf ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n", path);
  g_socket_send (socket, request, strlen (request), NULL, &error);
  g_assert_no_error (error);
  /* Read the 101 byte by byte so that no frame is consumed with it. */
  while (!g_str_has_suffix (response->str, "\r\n\r\n"))
    {
      gssize n = g_socket_receive (socket, buffer, 1, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpint (n, ==, 1);
      g_string_append_c (response, buffer[0]);
    }
  g_assert_true (g_str_has_prefix (response->str, "HTTP/1.1 101"));
  g_string_free (response, TRUE);
  return g_steal_pointer (&socket);
}

/* Reads the stalled socket to its end; returns the close code of the close frame (0: none). */
static guint
drain_close_code (GSocket *socket)
{
  GByteArray *data = g_byte_array_new ();
  guint code = 0;
  gsize pos = 0;

  g_socket_set_timeout (socket, 20);
  for (;;)
    {
      guint8 buffer[65536];
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_receive (socket, (char *) buffer, sizeof buffer, NULL, &error);

      if (n <= 0)
        break;
      g_byte_array_append (data, buffer, n);
    }
  while (pos + 2 <= data->len)
    {
      guint8 opcode = data->data[pos] & 0x0f;
      guint64 len = data->data[pos + 1] & 0x7f;
      gsize header = 2;

      if (len == 126)
        {
          len = (data->data[pos + 2] << 8) | data->data[pos + 3];
          header = 4;
        }
      else if (len == 127)
        {
          len = 0;
          for (guint i = 0; i < 8; i++)
            len = (len << 8) | data->data[pos + 2 + i];
          header = 10;
        }
      if (pos + header + len > data->len)
        break;
      if (opcode == 8 && len >= 2)
        code = (data->data[pos + header] << 8) | data->data[pos + header + 1];
      pos += header + len;
    }
  g_byte_array_unref (data);
  return code;
}

static guint
count_ws_subscribers (Fixture *f)
{
  g_autofree char *path = g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT "/subscribers",
                                           json_object_get_int_member (f->channel, "id"));
  g_autofree char *auth = g_strdup_printf ("Bearer %s",
                                           json_object_get_string_member (f->channel, "owner_key"));
  const char *headers[] = { "Authorization", auth, NULL };
  g_autoptr(JsonNode) node = NULL;
  JsonArray *subscribers;
  guint status = 0, n = 0;

  node = tocsin_test_http_json (f->relay, "GET", path, NULL, NULL, headers, &status);
  g_assert_cmpuint (status, ==, 200);
  subscribers = json_object_get_array_member (json_node_get_object (node), "subscribers");
  for (guint i = 0; i < json_array_get_length (subscribers); i++)
    if (g_strcmp0 (json_object_get_string_member (json_array_get_object_element (subscribers, i),
                                                  "kind"), "ws") == 0)
      n++;
  return n;
}

static void
test_slow_subscriber (Fixture       *f,
                      gconstpointer  data)
{
  g_autofree char *path = g_strdup_printf ("/s/%s/ws", subscribe_token (f));
  g_autofree char *trigger = g_strdup_printf ("/t/%s",
                                              json_object_get_string_member (f->channel,
                                                                             "trigger_token"));
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SoupWebsocketConnection) fast = NULL;
  g_autoptr(GSocket) slow = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *padding = g_strnfill (30000, 'x');
  g_autofree char *body = g_strdup_printf ("{\"server_name\":\"Busy\",\"cpu_usage\":99,"
                                           "\"padding\":\"%s\"}", padding);
  guint sent = 0;

  slow = open_stalled_websocket (f, path);
  fast = tocsin_test_websocket_connect (f->relay, path, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (fast, frames);
  TOCSIN_WAIT_UNTIL (count_ws_subscribers (f) == 2);

  /* Ring until the stalled one is cut off. Four at a time (120 KB, within max-queue-bytes):
   * the fast one reads between rounds, and the kernel holds little for either (the relay caps
   * their send buffers, issue 11). */
  while (count_ws_subscribers (f) == 2)
    {
      for (guint i = 0; i < 4; i++)
        {
          g_autoptr(GBytes) response = NULL;
          guint status = tocsin_test_http (f->relay, "POST", trigger, "application/json", body,
                                           -1, NULL, &response, NULL);

          g_assert_cmpuint (status, ==, 200);
          sent++;
        }
      g_assert_cmpuint (sent, <, 4000);
      /* Meanwhile the fast subscriber keeps up. */
      TOCSIN_WAIT_UNTIL (frames->len == sent);
    }

  g_assert_cmpuint (frames->len, ==, sent);
  for (guint i = 0; i < frames->len; i++)
    g_assert_cmpint (frame_id (frames->pdata[i]), ==, (gint64) i + 1);
  g_assert_true (soup_websocket_connection_get_state (fast) == SOUP_WEBSOCKET_STATE_OPEN);

  /* What the stalled one finally reads ends with "too slow, resume from your cursor". */
  g_assert_cmpuint (drain_close_code (slow), ==, 4008);
}

static guint
subscriber_count (Fixture *f)
{
  g_autofree char *path = g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT "/subscribers",
                                           json_object_get_int_member (f->channel, "id"));
  g_autofree char *auth = g_strdup_printf ("Bearer %s",
                                           json_object_get_string_member (f->channel,
                                                                          "owner_key"));
  const char *headers[] = { "Authorization", auth, NULL };
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  node = tocsin_test_http_json (f->relay, "GET", path, NULL, NULL, headers, &status);
  g_assert_cmpuint (status, ==, 200);
  return json_array_get_length (json_object_get_array_member (json_node_get_object (node),
                                                              "subscribers"));
}

/* An SSE or NDJSON client that goes away is noticed at once (it leaves the subscriber list), not
 * at the next keepalive write 30 s later. */
static void
test_stream_hangup (Fixture       *f,
                    gconstpointer  data)
{
  const char *kinds[] = { "sse", "json" };

  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
      g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, f->relay->port);
      g_autoptr(GSocket) socket = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GString) got = g_string_new (NULL);
      g_autofree char *request = g_strdup_printf ("GET /s/%s/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                  "\r\n", subscribe_token (f), kinds[i]);

      socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                             &error);
      g_assert_no_error (error);
      g_socket_set_timeout (socket, 20);
      g_socket_connect (socket, address, NULL, &error);
      g_assert_no_error (error);
      g_socket_send (socket, request, strlen (request), NULL, &error);
      g_assert_no_error (error);
      /* The response head: the stream is open. */
      while (strstr (got->str, "\r\n\r\n") == NULL)
        {
          char buffer[1024];
          gssize n = g_socket_receive (socket, buffer, sizeof buffer, NULL, &error);

          g_assert_no_error (error);
          g_assert_cmpint (n, >, 0);
          g_string_append_len (got, buffer, n);
        }
      g_assert_true (g_str_has_prefix (got->str, "HTTP/1.1 200"));
      TOCSIN_WAIT_UNTIL (subscriber_count (f) == 1);

      g_socket_close (socket, &error);
      g_assert_no_error (error);
      TOCSIN_WAIT_UNTIL (subscriber_count (f) == 0);
    }
}

/* A subscriber answers a call: every /v1/ws subscriber of the channel is told who, once (the
 * first answer wins); one that subscribes later is told right after "subscribed"; what cannot
 * be acknowledged is refused with a sentence. */
static void
test_app_acknowledge (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupWebsocketConnection) ada = NULL;
  g_autoptr(SoupWebsocketConnection) bob = NULL;
  g_autoptr(SoupWebsocketConnection) late = NULL;
  g_autoptr(GPtrArray) ada_frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) bob_frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) late_frames = g_ptr_array_new_with_free_func (g_free);
  gint64 channel = json_object_get_int_member (f->channel, "id");
  SoupWebsocketConnection *both[2];
  GPtrArray *both_frames[2];

  ada = tocsin_test_websocket_connect (f->relay, "/v1/ws", &error);
  g_assert_no_error (error);
  bob = tocsin_test_websocket_connect (f->relay, "/v1/ws", &error);
  g_assert_no_error (error);
  both[0] = ada, both[1] = bob;
  both_frames[0] = ada_frames, both_frames[1] = bob_frames;
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(JsonObject) subscribed = NULL;

      tocsin_test_websocket_collect (both[i], both_frames[i]);
      app_send (both[i], "{\"type\":\"subscribe\",\"token\":\"%s\",\"since\":null}",
                subscribe_token (f));
      subscribed = wait_frame (both_frames[i], 0);
      g_assert_cmpstr (json_object_get_string_member (subscribed, "type"), ==, "subscribed");
    }
  ring (f, "Call");
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(JsonObject) message = wait_frame (both_frames[i], 1);

      g_assert_cmpstr (json_object_get_string_member (message, "type"), ==, "message");
    }

  /* Not received yet, or not a channel of this connection: refused, told to nobody else. */
  app_send (ada, "{\"type\":\"ack\",\"channel\":%" G_GINT64_FORMAT ",\"id\":2,\"by\":\"Ada\"}",
            channel);
  {
    g_autoptr(JsonObject) refused = wait_frame (ada_frames, 2);

    g_assert_cmpstr (json_object_get_string_member (refused, "type"), ==, "error");
    g_assert_nonnull (strstr (json_object_get_string_member (refused, "error"), "sent you"));
  }
  app_send (ada, "{\"type\":\"ack\",\"channel\":9999,\"id\":1,\"by\":\"Ada\"}");
  {
    g_autoptr(JsonObject) refused = wait_frame (ada_frames, 3);

    g_assert_cmpstr (json_object_get_string_member (refused, "code"), ==, "bad-request");
  }

  /* Ada answers: both are told. Bob answers the same call after: only Bob is told, and it
   * was Ada. */
  app_send (ada, "{\"type\":\"ack\",\"channel\":%" G_GINT64_FORMAT ",\"id\":1,\"by\":\"Ada\"}",
            channel);
  {
    g_autoptr(JsonObject) told_ada = wait_frame (ada_frames, 4);
    g_autoptr(JsonObject) told_bob = wait_frame (bob_frames, 2);

    g_assert_cmpstr (json_object_get_string_member (told_bob, "type"), ==, "acknowledged");
    g_assert_cmpint (json_object_get_int_member (told_bob, "channel"), ==, channel);
    g_assert_cmpint (json_object_get_int_member (told_bob, "id"), ==, 1);
    g_assert_cmpstr (json_object_get_string_member (told_bob, "by"), ==, "Ada");
    g_assert_cmpstr (json_object_get_string_member (told_ada, "by"), ==, "Ada");
  }
  app_send (bob, "{\"type\":\"ack\",\"channel\":%" G_GINT64_FORMAT ",\"id\":1,\"by\":\"Bob\"}",
            channel);
  {
    g_autoptr(JsonObject) told_bob = wait_frame (bob_frames, 3);

    g_assert_cmpstr (json_object_get_string_member (told_bob, "by"), ==, "Ada");
  }

  /* Someone who connects afterwards learns it before the replay of the call itself. */
  late = tocsin_test_websocket_connect (f->relay, "/v1/ws", &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (late, late_frames);
  app_send (late, "{\"type\":\"subscribe\",\"token\":\"%s\",\"since\":0}", subscribe_token (f));
  {
    g_autoptr(JsonObject) subscribed = wait_frame (late_frames, 0);
    g_autoptr(JsonObject) told = wait_frame (late_frames, 1);
    g_autoptr(JsonObject) replayed = wait_frame (late_frames, 2);

    g_assert_cmpstr (json_object_get_string_member (told, "type"), ==, "acknowledged");
    g_assert_cmpstr (json_object_get_string_member (told, "by"), ==, "Ada");
    g_assert_cmpstr (json_object_get_string_member (replayed, "type"), ==, "message");
  }
  /* Ada's connection sent nothing it was not told to: no stray frame after the ack. */
  g_assert_cmpuint (ada_frames->len, ==, 5);
}

int
main (int    argc,
      char **argv)
{
  static const char * const fast_rate[] = { "--rate=100000", "--burst=100000", NULL };
  static const char * const live_only[] = { "--retention=0", NULL };
  static const char * const slow_args[] = { "--rate=100000", "--burst=100000",
                                            "--max-queue-bytes=262144", NULL };

  g_test_init (&argc, &argv, NULL);

#define ADD(path, func, args) \
  g_test_add (path, Fixture, args, fixture_setup, func, fixture_teardown)

  ADD ("/relay/streams/ws-replay-then-live", test_ws_replay_then_live, fast_rate);
  ADD ("/relay/streams/ws-replay-boundary-under-load", test_ws_replay_boundary_under_load,
       fast_rate);
  ADD ("/relay/streams/sse-last-event-id", test_sse_last_event_id, fast_rate);
  ADD ("/relay/streams/ndjson-since", test_ndjson_since, fast_rate);
  ADD ("/relay/streams/bad-since", test_bad_since, NULL);
  ADD ("/relay/streams/stream-hangup", test_stream_hangup, NULL);
  ADD ("/relay/streams/gap", test_gap, live_only);
  ADD ("/relay/streams/app-multiplex", test_app_multiplex, fast_rate);
  ADD ("/relay/streams/app-acknowledge", test_app_acknowledge, fast_rate);
  ADD ("/relay/streams/rotation-closes-subscribers", test_rotation_closes_subscribers, NULL);
  ADD ("/relay/streams/cli-rotation-closes-subscribers", test_cli_rotation_closes_subscribers,
       NULL);
  ADD ("/relay/streams/kill-9-between-ack-and-connect", test_kill_between_ack_and_connect, NULL);
  ADD ("/relay/streams/shutdown-going-away", test_shutdown_going_away, NULL);
  ADD ("/relay/streams/slow-subscriber", test_slow_subscriber, slow_args);

  return g_test_run ();
}
