/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-websocket.c: the relay's own WebSocket framing (tocsin-relay-websocket.c), seen
 * from a raw TCP client that writes its frames byte by byte where it matters: masked and
 * fragmented client frames with a ping between the fragments, frames that arrive with the
 * handshake, the closing handshake both ways (and a client that never answers the relay's close),
 * and every kind of frame a client must not send, each answered with its close code and the end
 * of the connection, the relay serving on. (A subscriber too slow for its queue is in
 * test-relay-streams.c, /relay/streams/slow-subscriber.)
 */
#define G_LOG_DOMAIN "test-relay"

#include "config.h"

#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "tocsin-test-relay.h"

#define OP_CONTINUATION 0x0
#define OP_TEXT         0x1
#define OP_BINARY       0x2
#define OP_CLOSE        0x8
#define OP_PING         0x9
#define OP_PONG         0xA

typedef struct
{
  TocsinTestRelay *relay;
  JsonObject      *channel;   /* from POST /v1/channels: tokens and owner key */
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;
  /* The burst must not meet the per-channel rate limit. */
  const char *args[] = { "--rate=100000", "--burst=100000", NULL };

  f->relay = tocsin_test_relay_start (NULL, args);
  node = tocsin_test_http_json (f->relay, "POST", "/v1/channels", "application/json",
                                "{\"name\":\"Frames\",\"title\":\"{{what}}\"}", NULL, &status);
  g_assert_cmpuint (status, ==, 201);
  f->channel = json_object_ref (json_node_get_object (node));
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_pointer (&f->channel, json_object_unref);
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
}

static const char *
token (Fixture    *f,
       const char *which)
{
  return json_object_get_string_member (f->channel, which);
}

/* ---- A raw client ---- */

static GSocket *
raw_connect (Fixture *f)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, f->relay->port);
  g_autoptr(GError) error = NULL;
  GSocket *socket;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                         &error);
  g_assert_no_error (error);
  g_socket_connect (socket, address, NULL, &error);
  g_assert_no_error (error);
  /* Blocking, with a timeout so that a missing answer fails instead of hanging. */
  g_socket_set_timeout (socket, 20);
  g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, TRUE, NULL);
  return socket;
}

static void
send_bytes (GSocket    *socket,
            const void *data,
            gsize       length)
{
  gsize done = 0;

  while (done < length)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_send (socket, (const char *) data + done, length - done, NULL, &error);

      g_assert_no_error (error);
      done += n;
    }
}

static char *
handshake_request (const char *path)
{
  return g_strdup_printf ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n", path);
}

/* Reads the 101 byte by byte, so that no frame is consumed with it. */
static void
read_handshake (GSocket *socket)
{
  g_autoptr(GString) response = g_string_new (NULL);

  while (!g_str_has_suffix (response->str, "\r\n\r\n"))
    {
      g_autoptr(GError) error = NULL;
      char c;
      gssize n = g_socket_receive (socket, &c, 1, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpint (n, ==, 1);
      g_string_append_c (response, c);
    }
  g_assert_true (g_str_has_prefix (response->str, "HTTP/1.1 101"));
}

static GSocket *
ws_open (Fixture    *f,
         const char *path)
{
  GSocket *socket = raw_connect (f);
  g_autofree char *request = handshake_request (path);

  send_bytes (socket, request, strlen (request));
  read_handshake (socket);
  return socket;
}

/* A client frame: masked, as a client must (unless @unmasked), @rsv in bits 4-6 of byte 0. */
static GByteArray *
client_frame (gboolean    fin,
              guint8      opcode,
              const void *payload,
              gsize       length)
{
  static const guint8 mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
  GByteArray *frame = g_byte_array_new ();
  guint8 header[14];
  gsize n = 0;

  header[n++] = (fin ? 0x80 : 0) | opcode;
  if (length < 126)
    header[n++] = 0x80 | length;
  else if (length < 65536)
    {
      header[n++] = 0x80 | 126;
      header[n++] = length >> 8;
      header[n++] = length & 0xff;
    }
  else
    {
      header[n++] = 0x80 | 127;
      for (guint i = 0; i < 8; i++)
        header[n++] = ((guint64) length >> (56 - 8 * i)) & 0xff;
    }
  memcpy (header + n, mask, 4);
  n += 4;
  g_byte_array_append (frame, header, n);
  for (gsize i = 0; i < length; i++)
    {
      guint8 b = ((const guint8 *) payload)[i] ^ mask[i & 3];

      g_byte_array_append (frame, &b, 1);
    }
  return frame;
}

static void
send_frame (GSocket    *socket,
            gboolean    fin,
            guint8      opcode,
            const void *payload,
            gsize       length)
{
  g_autoptr(GByteArray) frame = client_frame (fin, opcode, payload, length);

  send_bytes (socket, frame->data, frame->len);
}

static gboolean
read_exactly (GSocket *socket,
              guint8  *buffer,
              gsize    length)
{
  gsize done = 0;

  while (done < length)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_receive (socket, (char *) buffer + done, length - done, NULL, &error);

      g_assert_no_error (error);
      if (n == 0)
        return FALSE;
      done += n;
    }
  return TRUE;
}

/* One frame from the relay: it must be unmasked and final. FALSE at the end of the connection. */
static gboolean
read_frame (GSocket    *socket,
            guint8     *opcode,
            GByteArray *payload)
{
  guint8 header[8];
  guint64 length;

  if (!read_exactly (socket, header, 2))
    return FALSE;
  g_assert_cmphex (header[0] & 0xf0, ==, 0x80);
  g_assert_cmphex (header[1] & 0x80, ==, 0);
  *opcode = header[0] & 0x0f;
  length = header[1] & 0x7f;
  if (length == 126)
    {
      g_assert_true (read_exactly (socket, header, 2));
      length = (guint64) header[0] << 8 | header[1];
    }
  else if (length == 127)
    {
      g_assert_true (read_exactly (socket, header, 8));
      length = 0;
      for (guint i = 0; i < 8; i++)
        length = length << 8 | header[i];
    }
  g_byte_array_set_size (payload, length);
  g_assert_true (read_exactly (socket, payload->data, length));
  return TRUE;
}

/* The next frame is a close with @code; then the relay ends the connection. */
static void
expect_close_then_end (GSocket *socket,
                       guint    code)
{
  g_autoptr(GByteArray) payload = g_byte_array_new ();
  guint8 opcode = 0;
  char byte;
  g_autoptr(GError) error = NULL;

  /* Skip what was sent before the close (pings, messages). */
  do
    g_assert_true (read_frame (socket, &opcode, payload));
  while (opcode != OP_CLOSE);
  g_assert_cmpuint (payload->len, >=, 2);
  g_assert_cmpuint ((guint) payload->data[0] << 8 | payload->data[1], ==, code);
  /* The end: a FIN, or a reset when the relay closed with bytes of ours still unread. */
  if (g_socket_receive (socket, &byte, 1, NULL, &error) != 0)
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
}

static void
ring (Fixture    *f,
      const char *what)
{
  g_autofree char *path = g_strdup_printf ("/t/%s?what=%s", token (f, "trigger_token"), what);

  g_assert_cmpuint (tocsin_test_http (f->relay, "GET", path, NULL, NULL, -1, NULL, NULL, NULL),
                    ==, 200);
}

static void
expect_text_containing (GSocket    *socket,
                        const char *needle)
{
  g_autoptr(GByteArray) payload = g_byte_array_new ();
  g_autofree char *text = NULL;
  guint8 opcode = 0;

  do
    g_assert_true (read_frame (socket, &opcode, payload));
  while (opcode == OP_PING);
  g_assert_cmphex (opcode, ==, OP_TEXT);
  text = g_strndup ((const char *) payload->data, payload->len);
  if (strstr (text, needle) == NULL)
    g_error ("expected a frame with %s, got %s", needle, text);
}

static guint
subscriber_count (Fixture *f)
{
  g_autofree char *path = g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT "/subscribers",
                                           json_object_get_int_member (f->channel, "id"));
  g_autofree char *auth = g_strdup_printf ("Bearer %s", token (f, "owner_key"));
  const char *headers[] = { "Authorization", auth, NULL };
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  node = tocsin_test_http_json (f->relay, "GET", path, NULL, NULL, headers, &status);
  g_assert_cmpuint (status, ==, 200);
  return json_array_get_length (json_object_get_array_member (json_node_get_object (node),
                                                              "subscribers"));
}

/* ---- Tests ---- */

/* A subscribe frame in three masked fragments, a ping between the first two, the last fragment
 * written one byte at a time: the pong comes first, then "subscribed", then the live message. */
static void
test_fragmented_masked (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(GSocket) socket = ws_open (f, "/v1/ws");
  g_autofree char *subscribe = g_strdup_printf ("{\"type\":\"subscribe\",\"token\":\"%s\"}",
                                                token (f, "subscribe_token"));
  gsize len = strlen (subscribe);
  g_autoptr(GByteArray) last = NULL;
  g_autoptr(GByteArray) payload = g_byte_array_new ();
  guint8 opcode = 0;

  send_frame (socket, FALSE, OP_TEXT, subscribe, 10);
  send_frame (socket, TRUE, OP_PING, "hi", 2);
  send_frame (socket, FALSE, OP_CONTINUATION, subscribe + 10, 10);
  last = client_frame (TRUE, OP_CONTINUATION, subscribe + 20, len - 20);
  for (guint i = 0; i < last->len; i++)
    {
      send_bytes (socket, last->data + i, 1);
      g_usleep (2000);
    }

  g_assert_true (read_frame (socket, &opcode, payload));
  g_assert_cmphex (opcode, ==, OP_PONG);
  g_assert_cmpmem (payload->data, payload->len, "hi", 2);
  expect_text_containing (socket, "\"type\":\"subscribed\"");

  TOCSIN_WAIT_UNTIL (subscriber_count (f) == 1);
  ring (f, "live");
  expect_text_containing (socket, "\"title\":\"live\"");

  /* A 100 KiB message split into fragments under the limit each is still too big as a whole. */
  {
    g_autofree char *chunk = g_strnfill (40 * 1024, 'x');

    send_frame (socket, FALSE, OP_TEXT, chunk, strlen (chunk));
    send_frame (socket, FALSE, OP_CONTINUATION, chunk, strlen (chunk));
    expect_close_then_end (socket, 1009);
  }
}

/* Frames sent in the same write as the handshake (libsoup has read them with it). */
static void
test_frames_with_handshake (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(GSocket) socket = raw_connect (f);
  g_autofree char *path = g_strdup_printf ("/s/%s/ws", token (f, "subscribe_token"));
  g_autofree char *request = handshake_request (path);
  g_autoptr(GByteArray) both = g_byte_array_new ();
  g_autoptr(GByteArray) ping = client_frame (TRUE, OP_PING, "early", 5);
  g_autoptr(GByteArray) payload = g_byte_array_new ();
  guint8 opcode = 0;

  g_byte_array_append (both, (const guint8 *) request, strlen (request));
  g_byte_array_append (both, ping->data, ping->len);
  send_bytes (socket, both->data, both->len);
  read_handshake (socket);
  g_assert_true (read_frame (socket, &opcode, payload));
  g_assert_cmphex (opcode, ==, OP_PONG);
  g_assert_cmpmem (payload->data, payload->len, "early", 5);
}

/* The client closes: the relay answers with the same code and ends the connection. */
static void
test_close_from_client (Fixture       *f,
                        gconstpointer  data)
{
  g_autofree char *path = g_strdup_printf ("/s/%s/ws", token (f, "subscribe_token"));
  g_autoptr(GSocket) socket = ws_open (f, path);
  static const guint8 close_payload[] = { 0x03, 0xe8, 'b', 'y', 'e' };   /* 1000 "bye" */

  TOCSIN_WAIT_UNTIL (subscriber_count (f) == 1);
  ring (f, "one");
  expect_text_containing (socket, "\"title\":\"one\"");
  send_frame (socket, TRUE, OP_CLOSE, close_payload, sizeof close_payload);
  expect_close_then_end (socket, 1000);
  TOCSIN_WAIT_UNTIL (subscriber_count (f) == 0);
}

/* The relay closes (the subscribe link was rotated): 4410 to both subscribers. One answers and
 * is let go at once; the other never answers and is let go after the relay's close timeout. */
static void
test_close_from_relay (Fixture       *f,
                       gconstpointer  data)
{
  g_autofree char *path = g_strdup_printf ("/s/%s/ws", token (f, "subscribe_token"));
  g_autofree char *api = g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT "/rotate-subscribe",
                                          json_object_get_int_member (f->channel, "id"));
  g_autofree char *auth = g_strdup_printf ("Bearer %s", token (f, "owner_key"));
  const char *headers[] = { "Authorization", auth, NULL };
  g_autoptr(GSocket) polite = ws_open (f, path);
  g_autoptr(GSocket) silent = ws_open (f, path);
  g_autoptr(GByteArray) payload = g_byte_array_new ();
  g_autoptr(JsonNode) node = NULL;
  guint8 opcode = 0;
  guint status = 0;
  char byte;
  g_autoptr(GError) error = NULL;

  TOCSIN_WAIT_UNTIL (subscriber_count (f) == 2);
  node = tocsin_test_http_json (f->relay, "POST", api, NULL, NULL, headers, &status);
  g_assert_cmpuint (status, ==, 200);

  g_assert_true (read_frame (polite, &opcode, payload));
  g_assert_cmphex (opcode, ==, OP_CLOSE);
  g_assert_cmpuint ((guint) payload->data[0] << 8 | payload->data[1], ==, 4410);
  send_frame (polite, TRUE, OP_CLOSE, payload->data, 2);
  g_assert_cmpint (g_socket_receive (polite, &byte, 1, NULL, &error), ==, 0);
  g_assert_no_error (error);

  g_assert_true (read_frame (silent, &opcode, payload));
  g_assert_cmphex (opcode, ==, OP_CLOSE);
  /* No answer: the relay ends it 5 s later (within the socket's 20 s timeout). */
  g_assert_cmpint (g_socket_receive (silent, &byte, 1, NULL, &error), ==, 0);
  g_assert_no_error (error);
  TOCSIN_WAIT_UNTIL (subscriber_count (f) == 0);
}

typedef struct
{
  const char *what;
  gboolean    fin1;
  guint8      op1;
  const char *payload1;
  gsize       length1;
  gboolean    fin2;
  guint8      op2;       /* 0xff: no second frame */
  const char *payload2;
  gsize       length2;
  guint       code;
} Violation;

/* Each frame a client must not send gets its close code, then the end of the connection. */
static void
test_violations (Fixture       *f,
                 gconstpointer  data)
{
  static const char long_ping[126] = { 0 };
  const Violation violations[] = {
    { "continuation first", TRUE, OP_CONTINUATION, "x", 1, FALSE, 0xff, NULL, 0, 1002 },
    { "text that is not UTF-8", TRUE, OP_TEXT, "\xff\xfe", 2, FALSE, 0xff, NULL, 0, 1007 },
    { "ping over 125 bytes", TRUE, OP_PING, long_ping, sizeof long_ping, FALSE, 0xff, NULL, 0,
      1002 },
    { "fragmented ping", FALSE, OP_PING, "x", 1, FALSE, 0xff, NULL, 0, 1002 },
    { "reserved opcode", TRUE, 0x3, "x", 1, FALSE, 0xff, NULL, 0, 1002 },
    { "new message inside a fragmented one", FALSE, OP_TEXT, "{", 1, TRUE, OP_TEXT, "{}", 2,
      1002 },
    { "close code of one byte", TRUE, OP_CLOSE, "\x03", 1, FALSE, 0xff, NULL, 0, 1002 },
    { "close code 1005", TRUE, OP_CLOSE, "\x03\xed", 2, FALSE, 0xff, NULL, 0, 1002 },
    { "binary on the app socket", TRUE, OP_BINARY, "{}", 2, FALSE, 0xff, NULL, 0, 1008 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (violations); i++)
    {
      const Violation *v = &violations[i];
      g_autoptr(GSocket) socket = ws_open (f, "/v1/ws");

      g_test_message ("%s", v->what);
      send_frame (socket, v->fin1, v->op1, v->payload1, v->length1);
      if (v->op2 != 0xff)
        send_frame (socket, v->fin2, v->op2, v->payload2, v->length2);
      expect_close_then_end (socket, v->code);
    }

  /* Frames no client may send at all: a reserved bit, an unmasked frame. */
  {
    static const guint8 rsv1[] = { 0xc1, 0x81, 1, 2, 3, 4, 'x' ^ 1 };
    static const guint8 unmasked[] = { 0x81, 0x02, '{', '}' };
    const guint8 *raw[] = { rsv1, unmasked };
    const gsize lengths[] = { sizeof rsv1, sizeof unmasked };

    for (guint i = 0; i < G_N_ELEMENTS (raw); i++)
      {
        g_autoptr(GSocket) socket = ws_open (f, "/v1/ws");

        send_bytes (socket, raw[i], lengths[i]);
        expect_close_then_end (socket, 1002);
      }
  }

  /* The relay is unharmed: a new subscriber gets the next message. */
  {
    g_autofree char *path = g_strdup_printf ("/s/%s/ws", token (f, "subscribe_token"));
    g_autoptr(GSocket) socket = ws_open (f, path);

    TOCSIN_WAIT_UNTIL (subscriber_count (f) == 1);
    ring (f, "after");
    expect_text_containing (socket, "\"title\":\"after\"");
  }
}

static void
post_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (source), result);
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, NULL);

  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  (*(guint *) user_data)++;
}

/* Many webhooks at once (16 connections: they commit in groups, and the relay writes each
 * group to a subscriber at once) reach a subscriber whole and in order. */
static void
test_burst_in_order (Fixture       *f,
                     gconstpointer  data)
{
  g_autofree char *path = g_strdup_printf ("/s/%s/ws", token (f, "subscribe_token"));
  g_autoptr(GSocket) socket = ws_open (f, path);
  g_autofree char *hook = g_strdup_printf ("http://127.0.0.1:%u/t/%s", f->relay->port,
                                           token (f, "trigger_token"));
  g_autofree char *padding = g_strnfill (3000, 'p');
  g_autoptr(GByteArray) payload = g_byte_array_new ();
  g_autoptr(SoupSession) session = soup_session_new_with_options ("max-conns", 16,
                                                                  "max-conns-per-host", 16,
                                                                  NULL);
  guint done = 0;

  TOCSIN_WAIT_UNTIL (subscriber_count (f) == 1);
  for (guint i = 1; i <= 200; i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"what\":\"m%u\",\"pad\":\"%s\"}", i, padding);
      g_autoptr(SoupMessage) msg = soup_message_new ("POST", hook);
      g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
      soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL, post_done, &done);
    }
  TOCSIN_WAIT_UNTIL (done == 200);
  for (guint i = 1; i <= 200; i++)
    {
      g_autofree char *needle = g_strdup_printf ("\"id\":%u,", i);
      g_autofree char *text = NULL;
      guint8 opcode = 0;

      do
        g_assert_true (read_frame (socket, &opcode, payload));
      while (opcode == OP_PING);
      g_assert_cmphex (opcode, ==, OP_TEXT);
      text = g_strndup ((const char *) payload->data, payload->len);
      if (strstr (text, needle) == NULL)
        g_error ("frame %u: expected %s in %.80s", i, needle, text);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/relay/websocket/fragmented-masked", test_fragmented_masked);
  ADD ("/relay/websocket/frames-with-handshake", test_frames_with_handshake);
  ADD ("/relay/websocket/close-from-client", test_close_from_client);
  ADD ("/relay/websocket/close-from-relay", test_close_from_relay);
  ADD ("/relay/websocket/violations", test_violations);
  ADD ("/relay/websocket/burst-in-order", test_burst_in_order);
#undef ADD

  return g_test_run ();
}
