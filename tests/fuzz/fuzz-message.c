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
 * The /v1/ws frames are read with tocsin_protocol_parse_frame(), the very function the app's
 * connection calls (src/common/tocsin-protocol.c).
 */
#define G_LOG_DOMAIN "fuzz-message"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "tocsin-message.h"
#include "tocsin-protocol.h"
#include "tocsin-request.h"

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
  check (message->actions != NULL && message->actions->len <= TOCSIN_REQUEST_MAX_ACTIONS,
         "at most 3 actions");
  for (guint i = 0; i < message->actions->len; i++)
    {
      const TocsinMessageAction *action = g_ptr_array_index (message->actions, i);
      glong label = g_utf8_strlen (action->label, -1);

      check (g_utf8_validate (action->label, -1, NULL) && label >= 1 && label <= 64,
             "an action's label is 1 to 64 characters");
      if (g_str_equal (action->kind, "view"))
        check (tocsin_link_is_safe (action->url, NULL) && action->method == NULL &&
               action->headers == NULL && action->body == NULL, "a view action is a safe link");
      else
        {
          check (g_str_equal (action->kind, "http"), "an action is view or http");
          check (tocsin_request_url_is_sendable (action->url, NULL), "an http action's URL");
          check (action->method != NULL, "an http action has a method");
          check (action->body == NULL || strlen (action->body) <= TOCSIN_REQUEST_MAX_BODY,
                 "an http action's body is within the limit");
          for (guint j = 0; action->headers && action->headers[j]; j += 2)
            check (action->headers[j + 1] != NULL &&
                   strpbrk (action->headers[j + 1], "\r\n") == NULL,
                   "an http action's headers come in pairs, without line breaks");
        }
    }
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
  check (again->actions->len == message->actions->len, "actions survive");
  for (guint i = 0; i < message->actions->len; i++)
    {
      const TocsinMessageAction *a = g_ptr_array_index (message->actions, i);
      const TocsinMessageAction *b = g_ptr_array_index (again->actions, i);

      check (g_str_equal (a->kind, b->kind) && g_str_equal (a->label, b->label) &&
             g_str_equal (a->url, b->url) && g_strcmp0 (a->method, b->method) == 0 &&
             g_strcmp0 (a->body, b->body) == 0 && a->retry == b->retry && a->clear == b->clear &&
             (a->headers == NULL) == (b->headers == NULL) &&
             (a->headers == NULL || g_strv_equal ((const char * const *) a->headers,
                                                  (const char * const *) b->headers)),
             "each action survives");
    }
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

/* As the app does with a /v1/ws frame: the one parser tocsin-connection.c calls. */
static void
decode_app_frame (const char *data,
                  gsize       size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinFrame) frame = tocsin_protocol_parse_frame (data, size, &error);

  check ((frame == NULL) == (error != NULL), "an error exactly when the frame is refused");
  if (frame == NULL)
    {
      check (g_utf8_validate (error->message, -1, NULL), "error messages are valid UTF-8");
      return;
    }
  check (frame->type_name != NULL, "a frame has a type");
  switch (frame->type)
    {
    case TOCSIN_FRAME_SUBSCRIBED:
      check (frame->token != NULL && frame->channel_id > 0 && frame->last_id >= 0,
             "a subscribed frame has a token, a channel and a last id");
      break;
    case TOCSIN_FRAME_MESSAGE:
      check (frame->message_id > 0 && frame->channel_id > 0, "a message has an id and channel");
      check (frame->message != NULL || frame->problem != NULL, "a refused message says why");
      check (size <= TOCSIN_PROTOCOL_MAX_MESSAGE_BYTES || frame->message == NULL,
             "an oversized message is not kept");
      if (frame->message)
        {
          check (frame->message->id == frame->message_id, "the message's id is the frame's");
          check_message (frame->message);
          check_round_trip (frame->message);
        }
      break;
    case TOCSIN_FRAME_GAP:
      check (frame->channel_id > 0 && frame->from >= 0 && frame->from <= frame->to,
             "a gap is a range");
      break;
    case TOCSIN_FRAME_ERROR:
      check (frame->code != NULL && frame->error != NULL, "an error has a code and sentence");
      break;
    case TOCSIN_FRAME_CLOSED:
      check (frame->channel_id > 0 && frame->reason != NULL, "closed names a channel");
      break;
    case TOCSIN_FRAME_ACKNOWLEDGED:
      check (frame->channel_id > 0 && frame->message_id > 0 && frame->by != NULL &&
             g_utf8_strlen (frame->by, -1) <= TOCSIN_PROTOCOL_MAX_ACK_NAME,
             "an acknowledgement names a channel, a message and who, briefly");
      break;
    case TOCSIN_FRAME_UNKNOWN:
      break;
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
