/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-test"

#include "config.h"

#include <string.h>
#include <sys/socket.h>

#include "tocsin-message.h"
#include "tocsin-test-reliability.h"

GSocket *
tocsin_rel_connect_raw_full (TocsinTestRelay *relay,
                             const char      *source,
                             gsize            rcvbuf)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, relay->port);
  g_autoptr(GError) error = NULL;
  GSocket *socket;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                         &error);
  g_assert_no_error (error);
  if (rcvbuf > 0)
    g_socket_set_option (socket, SOL_SOCKET, SO_RCVBUF, (gint) rcvbuf, &error);
  g_assert_no_error (error);
  if (source != NULL)
    {
      g_autoptr(GInetAddress) from = g_inet_address_new_from_string (source);
      g_autoptr(GSocketAddress) bind_to = g_inet_socket_address_new (from, 0);

      g_socket_bind (socket, bind_to, FALSE, &error);
      g_assert_no_error (error);
    }
  g_socket_connect (socket, address, NULL, &error);
  g_assert_no_error (error);
  g_socket_set_blocking (socket, FALSE);
  return socket;
}

GSocket *
tocsin_rel_connect_raw (TocsinTestRelay *relay)
{
  return tocsin_rel_connect_raw_full (relay, NULL, 0);
}

void
tocsin_rel_whole_writes (GSocket *socket,
                         gsize    length)
{
  /* The kernel doubles what it is given; a few MiB at most. */
  g_socket_set_option (socket, SOL_SOCKET, SO_SNDBUF, (gint) MIN (length, 4 * 1024 * 1024),
                       NULL);
}

GString *
tocsin_rel_raw_exchange (TocsinTestRelay *relay,
                         const char      *source,
                         const char      *request,
                         gsize            length)
{
  g_autoptr(GSocket) socket = tocsin_rel_connect_raw_full (relay, source, 0);
  GString *received = g_string_new (NULL);

  /* The whole request in the kernel at once, as a client's single write of it would be: the
   * relay's first look at a long head then sees its first segment whole. */
  tocsin_rel_whole_writes (socket, length);
  /* The relay may answer and close before it has read everything (a head too big). */
  tocsin_rel_send_all (socket, request, length);
  TOCSIN_WAIT_UNTIL (tocsin_rel_peer_closed (socket, received));
  return received;
}

guint
tocsin_rel_parse_answer (const char  *answer,
                         char       **headers,
                         JsonObject **body)
{
  const char *end = strstr (answer, "\r\n\r\n");

  if (!g_str_has_prefix (answer, "HTTP/1.1 ") || end == NULL)
    return 0;
  if (headers)
    *headers = g_strndup (answer, end - answer);
  if (body)
    *body = tocsin_rel_parse_object (end + 4, -1);
  return (guint) g_ascii_strtoull (answer + strlen ("HTTP/1.1 "), NULL, 10);
}

void
tocsin_rel_ws_handshake (GSocket    *socket,
                         const char *path)
{
  g_autoptr(GString) received = g_string_new (NULL);
  g_autofree char *handshake = g_strdup_printf ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                                "Sec-WebSocket-Version: 13\r\n"
                                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                                "\r\n", path);
  char byte;

  g_assert_true (tocsin_rel_send_all (socket, handshake, strlen (handshake)));
  /* Byte by byte up to the end of the head, so that no frame after it is taken. */
  while (strstr (received->str, "\r\n\r\n") == NULL)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_receive (socket, &byte, 1, NULL, &error);

      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          TOCSIN_WAIT_UNTIL (g_socket_condition_check (socket, G_IO_IN) != 0);
          continue;
        }
      if (n <= 0)
        g_error ("the relay closed the WebSocket handshake on %s: %s", path, received->str);
      g_string_append_c (received, byte);
    }
  if (!g_str_has_prefix (received->str, "HTTP/1.1 101"))
    g_error ("no 101 for %s: %s", path, received->str);
}

GBytes *
tocsin_rel_ws_client_frame (guint8      opcode,
                            const void *payload,
                            gsize       length)
{
  GByteArray *frame = g_byte_array_sized_new (length + 14);
  const guint8 mask[4] = { 0x12, 0x34, 0x56, 0x78 };
  guint8 head[10];
  gsize head_len = 2;

  head[0] = 0x80 | opcode;
  if (length < 126)
    head[1] = 0x80 | length;
  else if (length < 65536)
    {
      head[1] = 0x80 | 126;
      head[2] = length >> 8;
      head[3] = length & 0xff;
      head_len = 4;
    }
  else
    {
      head[1] = 0x80 | 127;
      for (guint i = 0; i < 8; i++)
        head[2 + i] = ((guint64) length >> (56 - 8 * i)) & 0xff;
      head_len = 10;
    }
  g_byte_array_append (frame, head, head_len);
  g_byte_array_append (frame, mask, 4);
  for (gsize i = 0; i < length; i++)
    {
      guint8 b = ((const guint8 *) payload)[i] ^ mask[i & 3];

      g_byte_array_append (frame, &b, 1);
    }
  return g_byte_array_free_to_bytes (frame);
}

guint64
tocsin_rel_relay_max_send_queue (TocsinTestRelay *relay)
{
  g_autofree char *table = NULL;
  g_autofree char *port = g_strdup_printf (":%04X", relay->port);
  g_auto(GStrv) lines = NULL;
  guint64 max = 0;

  g_assert_true (g_file_get_contents ("/proc/net/tcp", &table, NULL, NULL));
  lines = g_strsplit (table, "\n", -1);
  /* "sl local_address rem_address st tx_queue:rx_queue ...", addresses as HEXIP:HEXPORT. */
  for (guint i = 1; lines[i]; i++)
    {
      g_auto(GStrv) fields = g_strsplit_set (g_strstrip (lines[i]), " ", -1);
      const char *cols[5] = { NULL };
      guint n = 0;

      for (guint j = 0; fields[j] && n < G_N_ELEMENTS (cols); j++)
        if (*fields[j])
          cols[n++] = fields[j];
      if (n < G_N_ELEMENTS (cols) || !g_str_has_suffix (cols[1], port))
        continue;
      max = MAX (max, g_ascii_strtoull (cols[4], NULL, 16));
    }
  return max;
}

gboolean
tocsin_rel_send_all (GSocket    *socket,
                     const char *data,
                     gsize       length)
{
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  while (length > 0)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_send (socket, data, length, NULL, &error);

      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          if (g_get_monotonic_time () > deadline)
            g_error ("the relay neither read nor closed a connection for 60 s");
          g_main_context_iteration (NULL, FALSE);
          g_usleep (1000);
          continue;
        }
      if (n < 0)
        return FALSE;
      data += n;
      length -= n;
    }
  return TRUE;
}

gboolean
tocsin_rel_peer_closed (GSocket *socket,
                        GString *received)
{
  char buffer[16384];

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_receive (socket, buffer, sizeof buffer, NULL, &error);

      if (n == 0)
        return TRUE;
      if (n < 0)
        return !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
      if (received)
        g_string_append_len (received, buffer, n);
    }
}

static char *
proc_path (TocsinTestRelay *relay,
           const char      *what)
{
  g_assert_nonnull (relay->process);
  return g_strdup_printf ("/proc/%s/%s", g_subprocess_get_identifier (relay->process), what);
}

gboolean
tocsin_rel_relay_wrapped (void)
{
  const char *wrapper = g_getenv ("TOCSIN_RELAY_WRAPPER");

#if defined(__SANITIZE_ADDRESS__)
  /* The relay is built the same way: ASan's quarantine and shadow memory swamp its RSS. */
  return TRUE;
#endif
  return wrapper != NULL && *wrapper != '\0';
}

guint64
tocsin_rel_relay_rss_kib (TocsinTestRelay *relay)
{
  g_autofree char *path = proc_path (relay, "status");
  g_autofree char *status = NULL;
  g_autoptr(GError) error = NULL;
  const char *line;

  g_file_get_contents (path, &status, NULL, &error);
  g_assert_no_error (error);
  line = strstr (status, "\nVmRSS:");
  g_assert_nonnull (line);
  line += strlen ("\nVmRSS:");
  return g_ascii_strtoull (line, NULL, 10);
}

guint
tocsin_rel_relay_fd_count (TocsinTestRelay *relay)
{
  g_autofree char *path = proc_path (relay, "fd");
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir))
    n++;
  return n;
}

JsonObject *
tocsin_rel_parse_object (const char *text,
                         gssize      length)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, length, &error);
  g_assert_no_error (error);
  g_assert_nonnull (json_parser_get_root (parser));
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

gint64
tocsin_rel_last_id (TocsinTestRelay *relay,
                    gint64           channel_id)
{
  g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, channel_id);
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr(JsonObject) object = NULL;
  int status;

  status = tocsin_test_relay_cli (relay, &out, &err, "channel", "show", id, "--json", NULL);
  if (status != 0)
    g_error ("channel show %s failed: %s", id, err);
  object = tocsin_rel_parse_object (out, -1);
  return json_object_get_int_member (object, "last_id");
}

GPtrArray *
tocsin_rel_replay_all (TocsinTestRelay *relay,
                       JsonObject      *channel)
{
  gint64 last = tocsin_rel_last_id (relay, json_object_get_int_member (channel, "id"));
  g_autofree char *path = g_strdup_printf ("/s/%s/ws?since=all",
                                           json_object_get_string_member (channel,
                                                                          "subscribe_token"));
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SoupWebsocketConnection) ws = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *messages = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);
  gint64 newest = 0;

  if (last == 0)
    return messages;
  ws = tocsin_test_websocket_connect (relay, path, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (ws, frames);

  /* The replay is in id order, so the newest stored id comes last. */
  for (guint seen = 0; newest < last;)
    {
      TOCSIN_WAIT_UNTIL (frames->len > seen ||
                         soup_websocket_connection_get_state (ws) != SOUP_WEBSOCKET_STATE_OPEN);
      if (frames->len == seen)
        g_error ("the replay stream closed before message %" G_GINT64_FORMAT, last);
      for (; seen < frames->len; seen++)
        {
          JsonObject *object = tocsin_rel_parse_object (frames->pdata[seen], -1);

          if (json_object_has_member (object, "type"))
            {
              json_object_unref (object);
              continue;
            }
          newest = json_object_get_int_member (object, "id");
          g_ptr_array_add (messages, object);
        }
    }
  soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  TOCSIN_WAIT_UNTIL (soup_websocket_connection_get_state (ws) == SOUP_WEBSOCKET_STATE_CLOSED);
  return messages;
}

void
tocsin_rel_assert_store (TocsinTestRelay *relay,
                         JsonObject      *channel,
                         gint64           expected_last)
{
  g_autoptr(GPtrArray) messages = NULL;

  g_assert_cmpint (tocsin_rel_last_id (relay, json_object_get_int_member (channel, "id")), ==,
                   expected_last);
  messages = tocsin_rel_replay_all (relay, channel);
  g_assert_cmpuint (messages->len, ==, expected_last);
  for (guint i = 0; i < messages->len; i++)
    g_assert_cmpint (json_object_get_int_member (messages->pdata[i], "id"), ==, i + 1);
}

char *
tocsin_rel_hook (JsonObject *channel,
                 const char *suffix)
{
  return g_strconcat ("/t/", json_object_get_string_member (channel, "trigger_token"),
                      suffix ? suffix : "", NULL);
}

gint64
tocsin_rel_ring (TocsinTestRelay *relay,
                 JsonObject      *channel,
                 const char      *query)
{
  g_autofree char *path = tocsin_rel_hook (channel, query);
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  node = tocsin_test_http_json (relay, "GET", path, NULL, NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  return json_object_get_int_member (json_node_get_object (node), "id");
}

static void
subscriber_frame (SoupWebsocketConnection *ws,
                  gint                     type,
                  GBytes                  *bytes,
                  gpointer                 user_data)
{
  TocsinRelSubscriber *sub = user_data;
  gsize length;
  const char *data = g_bytes_get_data (bytes, &length);
  g_autoptr(TocsinMessage) message = NULL;
  JsonNode *seq_node;
  gpointer key;

  if (type != SOUP_WEBSOCKET_DATA_TEXT)
    return;
  message = tocsin_message_new_from_data (data, length, NULL);
  if (message == NULL)
    {
      /* A gap notice would mean retention dropped something; anything else is a bad frame. */
      sub->bad_frames++;
      g_test_message ("unexpected frame: %.*s", (int) MIN (length, 200), data);
      return;
    }
  if (message->id != sub->cursor + 1)
    sub->out_of_order++;
  sub->cursor = MAX (sub->cursor, message->id);
  key = GINT_TO_POINTER ((gint) message->id);
  g_hash_table_insert (sub->delivered, key,
                       GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (sub->delivered,
                                                                                key)) + 1));
  seq_node = json_object_get_member (message->vars, "seq");
  if (seq_node && JSON_NODE_HOLDS_VALUE (seq_node) &&
      json_node_get_value_type (seq_node) == G_TYPE_STRING)
    g_hash_table_insert (sub->delivered_seq, key,
                         GUINT_TO_POINTER ((guint) g_ascii_strtoull (json_node_get_string (seq_node),
                                                                     NULL, 10)));
}

static void
subscriber_closed (SoupWebsocketConnection *ws,
                   gpointer                 user_data)
{
  TocsinRelSubscriber *sub = user_data;

  if (sub->ws == ws)
    {
      g_signal_handlers_disconnect_by_data (ws, sub);
      g_clear_object (&sub->ws);
    }
}

static void
subscriber_connected (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  TocsinRelSubscriber *sub = user_data;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (source), result);
  SoupWebsocketConnection *ws;

  sub->connecting = FALSE;
  ws = soup_session_websocket_connect_finish (SOUP_SESSION (source), result, NULL);
  if (ws == NULL)
    return;   /* The relay is down: the next turn of the loop tries again. */
  sub->ws = ws;
  g_free (sub->node);
  sub->node = g_strdup (soup_message_headers_get_one (soup_message_get_response_headers (msg),
                                                      "X-Tocsin-Node"));
  sub->reconnects++;
  g_signal_connect (ws, "message", G_CALLBACK (subscriber_frame), sub);
  g_signal_connect (ws, "closed", G_CALLBACK (subscriber_closed), sub);
}

void
tocsin_rel_subscriber_init (TocsinRelSubscriber *sub,
                            TocsinTestRelay     *relay,
                            const char          *base_url,
                            JsonObject          *channel,
                            SoupSession         *session)
{
  memset (sub, 0, sizeof *sub);
  sub->relay = relay;
  sub->session = session;
  sub->base_url = g_strdup (base_url);
  sub->token = g_strdup (json_object_get_string_member (channel, "subscribe_token"));
  sub->delivered = g_hash_table_new (NULL, NULL);
  sub->delivered_seq = g_hash_table_new (NULL, NULL);
}

void
tocsin_rel_subscriber_connect (TocsinRelSubscriber *sub)
{
  const char *base_url = sub->base_url ? sub->base_url : sub->relay->base_url;
  g_autofree char *url = NULL;
  g_autoptr(SoupMessage) msg = NULL;

  if (sub->ws != NULL || sub->connecting || sub->relay->process == NULL)
    return;
  /* Resume after the last id seen, as the app does with its cursor. */
  url = g_strdup_printf ("ws%s/s/%s/ws?since=%" G_GINT64_FORMAT, base_url + strlen ("http"),
                         sub->token, sub->cursor);
  msg = soup_message_new ("GET", url);
  sub->connecting = TRUE;
  soup_session_websocket_connect_async (sub->session, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL,
                                        subscriber_connected, sub);
}

void
tocsin_rel_subscriber_clear (TocsinRelSubscriber *sub)
{
  if (sub->ws)
    {
      g_signal_handlers_disconnect_by_data (sub->ws, sub);
      soup_websocket_connection_close (sub->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
      g_clear_object (&sub->ws);
    }
  g_clear_pointer (&sub->delivered, g_hash_table_unref);
  g_clear_pointer (&sub->delivered_seq, g_hash_table_unref);
  g_clear_pointer (&sub->base_url, g_free);
  g_clear_pointer (&sub->token, g_free);
  g_clear_pointer (&sub->node, g_free);
}
