/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libFuzzer target for the app's protocol decoder: what a relay (or anyone posing as one) sends
 * down /v1/ws and the per-channel streams. The input is one frame. It is decoded two ways, as
 * the subscribers do: as a bare message object (tocsin_message_new_from_data: /s/TOKEN/ws, SSE,
 * NDJSON, scripts), and as a /v1/ws frame whose "message" member is a message object (the app,
 * with its retry without an unsafe link). Beyond "does not crash", it checks the promises of
 * tocsin-message.h: an error exactly when there is no message; decoded text is valid UTF-8 and
 * never NULL; a link, when kept, is safe; and what decodes re-encodes to something that decodes
 * to the same message.
 *
 * The app's frame dispatcher (handle_frame in src/app/tocsin-connection.c) is static and tied
 * to a TocsinConnection, so this target replays its decoding steps rather than calling it.
 */
#define G_LOG_DOMAIN "fuzz-message"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "tocsin-message.h"

static void
check (gboolean    ok,
       const char *what)
{
  if (!ok)
    {
      g_printerr ("invariant broken: %s\n", what);
      abort ();
    }
}

static void
check_message (const TocsinMessage *message)
{
  check (message->title != NULL && message->body != NULL, "title and body are never NULL");
  check (g_utf8_validate (message->title, -1, NULL), "the title is valid UTF-8");
  check (g_utf8_validate (message->body, -1, NULL), "the body is valid UTF-8");
  check (message->channel_name == NULL || g_utf8_validate (message->channel_name, -1, NULL),
         "the channel name is valid UTF-8");
  check (message->external_link == NULL || tocsin_link_is_safe (message->external_link, NULL),
         "a kept link is safe");
  check (message->vars != NULL, "vars are never NULL");
}

/* What decodes must survive a round trip unchanged (the app stores and re-sends it). */
static void
check_round_trip (const TocsinMessage *message)
{
  g_autoptr(TocsinMessage) again = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *encoded = NULL;
  gsize length = 0;

  encoded = tocsin_message_to_data (message, &length);
  check (encoded != NULL, "a decoded message encodes");
  again = tocsin_message_new_from_data (encoded, length, &error);
  if (again == NULL)
    g_printerr ("re-encoded message does not decode: %s\n%.*s\n", error->message, (int) length,
                encoded);
  check (again != NULL, "an encoded message decodes");
  check (again->id == message->id, "id survives");
  check (again->channel == message->channel, "channel survives");
  check (again->time_ms == message->time_ms, "time survives");
  check (again->replaces == message->replaces, "replaces survives");
  check (g_strcmp0 (again->title, message->title) == 0, "title survives");
  check (g_strcmp0 (again->body, message->body) == 0, "body survives");
  check (g_strcmp0 (again->external_link, message->external_link) == 0, "link survives");
  check (g_strcmp0 (again->channel_name, message->channel_name) == 0, "channel name survives");
}

static void
decode_bare (const char *data,
             gsize       size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinMessage) message = tocsin_message_new_from_data (data, size, &error);

  check ((message == NULL) == (error != NULL), "an error exactly when decoding fails");
  if (error)
    {
      check (g_utf8_validate (error->message, -1, NULL), "error messages are valid UTF-8");
      return;
    }
  check_message (message);
  check_round_trip (message);
}

/* As the app does with a /v1/ws frame: JSON object, "type", then the "message" member. */
static void
decode_app_frame (const char *data,
                  gsize       size)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(TocsinMessage) message = NULL;
  g_autoptr(GError) error = NULL;
  JsonObject *frame, *object;
  JsonNode *root, *member;

  if (!json_parser_load_from_data (parser, data, size, NULL))
    return;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return;
  frame = json_node_get_object (root);
  /* Not replayed: the app's json_object_get_*_member_with_default () calls on the frame's own
   * members ("channel", "from", "lastId"...), which json-glib answers with a critical when the
   * member is an object or array: that is a bug of the dispatcher, reported, not of the decoder
   * fuzzed here. */
  member = json_object_get_member (frame, "message");
  if (member == NULL || !JSON_NODE_HOLDS_OBJECT (member))
    return;
  object = json_node_get_object (member);
  message = tocsin_message_new_from_json_object (object, &error);
  check ((message == NULL) == (error != NULL), "an error exactly when decoding fails");
  if (message == NULL && g_error_matches (error, TOCSIN_MESSAGE_ERROR,
                                          TOCSIN_MESSAGE_ERROR_BAD_LINK))
    {
      /* The app drops an unsafe link, not the message: that must then decode. */
      g_clear_error (&error);
      json_object_remove_member (object, "externalLink");
      message = tocsin_message_new_from_json_object (object, &error);
      check (message == NULL || message->external_link == NULL, "the dropped link stays dropped");
      check (message != NULL || !g_error_matches (error, TOCSIN_MESSAGE_ERROR,
                                                  TOCSIN_MESSAGE_ERROR_BAD_LINK),
             "without externalLink there is no bad link");
    }
  if (message)
    {
      check_message (message);
      check_round_trip (message);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  decode_bare ((const char *) data, size);
  decode_app_frame ((const char *) data, size);
  return 0;
}
