/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-protocol"

#include "config.h"

#include <inttypes.h> /* PRId64 in _(): xgettext cannot see through G_GINT64_FORMAT */

#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-json.h"
#include "tocsin-protocol.h"

/* ---- builders ----------------------------------------------------------------------------- */

static GBytes *
string_to_bytes (GString *text)
{
  gsize length = text->len;

  return g_bytes_new_take (g_string_free (text, FALSE), length);
}

GBytes *
tocsin_protocol_message_frame (GBytes *message_object)
{
  static const char prefix[] = "{\"type\":\"message\",\"message\":";
  gsize length = 0;
  const char *data = g_bytes_get_data (message_object, &length);
  GString *text = g_string_sized_new (sizeof prefix + length + 1);

  g_string_append_len (text, prefix, sizeof prefix - 1);
  g_string_append_len (text, data, length);
  g_string_append_c (text, '}');
  return string_to_bytes (text);
}

char *
tocsin_protocol_gap_json (gint64 channel_id,
                          gint64 from,
                          gint64 to)
{
  return g_strdup_printf ("{\"type\":\"gap\",\"channel\":%" G_GINT64_FORMAT
                          ",\"from\":%" G_GINT64_FORMAT ",\"to\":%" G_GINT64_FORMAT "}",
                          channel_id, from, to);
}

GBytes *
tocsin_protocol_error_frame (const char *token,
                             const char *code,
                             const char *sentence)
{
  GString *text = g_string_new ("{\"type\":\"error\"");

  if (token)
    {
      g_string_append (text, ",\"token\":");
      tocsin_json_append_string (text, token);
    }
  g_string_append (text, ",\"code\":");
  tocsin_json_append_string (text, code);
  g_string_append (text, ",\"error\":");
  tocsin_json_append_string (text, sentence);
  g_string_append_c (text, '}');
  return string_to_bytes (text);
}

GBytes *
tocsin_protocol_subscribed_frame (const char *token,
                                  gint64      channel_id,
                                  const char *name,
                                  const char *description,
                                  gint64      last_id)
{
  GString *text = g_string_new ("{\"type\":\"subscribed\",\"token\":");

  tocsin_json_append_string (text, token);
  g_string_append_printf (text, ",\"channel\":{\"id\":%" G_GINT64_FORMAT ",\"name\":",
                          channel_id);
  tocsin_json_append_string (text, name ? name : "");
  g_string_append (text, ",\"description\":");
  tocsin_json_append_string (text, description ? description : "");
  g_string_append_printf (text, "},\"lastId\":%" G_GINT64_FORMAT "}", last_id);
  return string_to_bytes (text);
}

GBytes *
tocsin_protocol_closed_frame (gint64      channel_id,
                              const char *reason)
{
  GString *text = g_string_new (NULL);

  g_string_append_printf (text, "{\"type\":\"closed\",\"channel\":%" G_GINT64_FORMAT
                          ",\"reason\":", channel_id);
  tocsin_json_append_string (text, reason ? reason : "closed");
  g_string_append_c (text, '}');
  return string_to_bytes (text);
}

GBytes *
tocsin_protocol_acknowledged_frame (gint64      channel_id,
                                    gint64      message_id,
                                    const char *by)
{
  GString *text = g_string_new (NULL);

  g_string_append_printf (text, "{\"type\":\"acknowledged\",\"channel\":%" G_GINT64_FORMAT
                          ",\"id\":%" G_GINT64_FORMAT ",\"by\":", channel_id, message_id);
  tocsin_json_append_string (text, by ? by : "");
  g_string_append_c (text, '}');
  return string_to_bytes (text);
}

char *
tocsin_protocol_ack_request (gint64      channel_id,
                             gint64      message_id,
                             const char *by)
{
  GString *text = g_string_new (NULL);

  g_string_append_printf (text, "{\"type\":\"ack\",\"channel\":%" G_GINT64_FORMAT
                          ",\"id\":%" G_GINT64_FORMAT ",\"by\":", channel_id, message_id);
  tocsin_json_append_string (text, by ? by : "");
  g_string_append_c (text, '}');
  return g_string_free (text, FALSE);
}

/* ---- the parser --------------------------------------------------------------------------- */

G_DEFINE_QUARK (tocsin-protocol-error-quark, tocsin_protocol_error)

void
tocsin_frame_free (TocsinFrame *frame)
{
  if (frame == NULL)
    return;
  g_free (frame->type_name);
  g_free (frame->token);
  g_free (frame->channel_name);
  g_free (frame->channel_description);
  g_clear_pointer (&frame->message, tocsin_message_free);
  g_free (frame->problem);
  g_free (frame->code);
  g_free (frame->error);
  g_free (frame->reason);
  g_free (frame->by);
  g_free (frame);
}

/* A member that must be an integer of at least @min; absent is @fallback when not @required. */
static gboolean
get_int (JsonObject  *object,
         const char  *type,
         const char  *name,
         gboolean     required,
         gint64       min,
         gint64       fallback,
         gint64      *out,
         GError     **error)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL && !required)
    {
      *out = fallback;
      return TRUE;
    }
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_INT64 || json_node_get_int (node) < min)
    {
      g_set_error (error, TOCSIN_PROTOCOL_ERROR, TOCSIN_PROTOCOL_ERROR_BAD_FRAME,
                   _("The relay sent a “%s” frame whose “%s” is not an integer of at least "
                     "%" PRId64), type, name, (int64_t) min);
      return FALSE;
    }
  *out = json_node_get_int (node);
  return TRUE;
}

/* A member that must be a string when present; absent is @fallback (which may be NULL). */
static gboolean
get_string (JsonObject  *object,
            const char  *type,
            const char  *name,
            gboolean     required,
            const char  *fallback,
            char       **out,
            GError     **error)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL && !required)
    {
      *out = g_strdup (fallback);
      return TRUE;
    }
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, TOCSIN_PROTOCOL_ERROR, TOCSIN_PROTOCOL_ERROR_BAD_FRAME,
                   _("The relay sent a “%s” frame whose “%s” is not text"), type, name);
      return FALSE;
    }
  *out = g_strdup (json_node_get_string (node));
  return TRUE;
}

/* json-glib decodes the escape \u0000 into a NUL that ends its C string, so a link
 * "https://a.example/\u0000…" would arrive cut short, looking harmless. The parsed tree cannot
 * tell, so look at the text: any \u0000 escape in the frame costs the message its link. */
static gboolean
has_nul_escape (const char *data,
                gsize       length)
{
  for (gsize i = 0; i + 6 <= length; i++)
    if (data[i] == '\\')
      {
        if (memcmp (data + i + 1, "u0000", 5) == 0)
          return TRUE;
        i++;   /* skip the escaped character: "\\u0000" is text, not a NUL */
      }
  return FALSE;
}

/* The message object without its "externalLink" (the parsed tree is immutable). */
static JsonObject *
copy_without_link (JsonObject *object)
{
  JsonObject *copy = json_object_new ();
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;

  json_object_iter_init (&iter, object);
  while (json_object_iter_next (&iter, &name, &node))
    if (!g_str_equal (name, "externalLink"))
      json_object_set_member (copy, name, json_node_copy (node));
  return copy;
}

static gboolean
parse_message (TocsinFrame  *frame,
               JsonObject   *object,
               const char   *data,
               gsize         length,
               GError      **error)
{
  g_autoptr(GError) local_error = NULL;
  JsonNode *node = json_object_get_member (object, "message");
  JsonObject *message;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, TOCSIN_PROTOCOL_ERROR, TOCSIN_PROTOCOL_ERROR_BAD_FRAME,
                   _("The relay sent a “message” frame without a message object"));
      return FALSE;
    }
  message = json_node_get_object (node);
  /* Whatever else is wrong with it, a message with an id and a channel can be moved past. */
  if (!get_int (message, "message", "id", TRUE, 1, 0, &frame->message_id, error) ||
      !get_int (message, "message", "channel", TRUE, 1, 0, &frame->channel_id, error))
    return FALSE;

  if (length > TOCSIN_PROTOCOL_MAX_MESSAGE_BYTES)
    {
      g_autofree char *size = g_format_size_full (length, G_FORMAT_SIZE_IEC_UNITS);
      g_autofree char *limit = g_format_size_full (TOCSIN_PROTOCOL_MAX_MESSAGE_BYTES,
                                                   G_FORMAT_SIZE_IEC_UNITS);

      frame->problem = g_strdup_printf (_("The relay sent a message of %s, more than the %s "
                                          "this app keeps; it was not kept."), size, limit);
      return TRUE;
    }

  frame->message = tocsin_message_new_from_json_object (message, &local_error);
  if (frame->message == NULL && g_error_matches (local_error, TOCSIN_MESSAGE_ERROR,
                                                 TOCSIN_MESSAGE_ERROR_BAD_LINK))
    {
      g_autoptr(JsonObject) without = copy_without_link (message);

      /* An unsafe link is dropped, not the message. */
      frame->problem = g_strdup_printf (_("A message’s link was removed: %s"),
                                        local_error->message);
      g_clear_error (&local_error);
      frame->message = tocsin_message_new_from_json_object (without, &local_error);
    }
  if (frame->message == NULL)
    {
      g_free (frame->problem);
      frame->problem = g_strdup_printf (_("The relay sent a message this app cannot read; it "
                                          "was not kept: %s"), local_error->message);
      return TRUE;
    }
  if (frame->message->external_link != NULL && has_nul_escape (data, length))
    {
      g_clear_pointer (&frame->message->external_link, g_free);
      frame->problem = g_strdup (_("A message’s link was removed: it held a NUL character, "
                                   "which could hide where it leads."));
    }
  return TRUE;
}

TocsinFrame *
tocsin_protocol_parse_frame (const char  *data,
                             gsize        length,
                             GError     **error)
{
  g_autoptr(TocsinFrame) frame = g_new0 (TocsinFrame, 1);
  g_autoptr(JsonObject) object = NULL;
  g_autoptr(GError) local_error = NULL;
  const char *type;

  g_return_val_if_fail (data != NULL || length == 0, NULL);

  object = tocsin_json_parse_object (data, length, TOCSIN_PROTOCOL_MAX_FRAME_BYTES,
                                     TOCSIN_PROTOCOL_MAX_DEPTH, &local_error);
  if (object == NULL)
    {
      g_set_error (error, TOCSIN_PROTOCOL_ERROR, TOCSIN_PROTOCOL_ERROR_NOT_JSON,
                   _("The relay sent a frame that is not valid: %s"), local_error->message);
      return NULL;
    }
  if (!get_string (object, "frame", "type", TRUE, NULL, &frame->type_name, error))
    return NULL;
  type = frame->type_name;

  if (g_str_equal (type, "subscribed"))
    {
      JsonNode *channel = json_object_get_member (object, "channel");
      JsonObject *info;

      frame->type = TOCSIN_FRAME_SUBSCRIBED;
      if (channel == NULL || !JSON_NODE_HOLDS_OBJECT (channel))
        {
          g_set_error (error, TOCSIN_PROTOCOL_ERROR, TOCSIN_PROTOCOL_ERROR_BAD_FRAME,
                       _("The relay sent a “subscribed” frame without a channel object"));
          return NULL;
        }
      info = json_node_get_object (channel);
      if (!get_string (object, type, "token", TRUE, NULL, &frame->token, error) ||
          !get_int (object, type, "lastId", FALSE, 0, 0, &frame->last_id, error) ||
          !get_int (info, type, "id", TRUE, 1, 0, &frame->channel_id, error) ||
          !get_string (info, type, "name", FALSE, NULL, &frame->channel_name, error) ||
          !get_string (info, type, "description", FALSE, NULL, &frame->channel_description,
                       error))
        return NULL;
    }
  else if (g_str_equal (type, "message"))
    {
      frame->type = TOCSIN_FRAME_MESSAGE;
      if (!parse_message (frame, object, data, length, error))
        return NULL;
    }
  else if (g_str_equal (type, "gap"))
    {
      frame->type = TOCSIN_FRAME_GAP;
      if (!get_int (object, type, "channel", TRUE, 1, 0, &frame->channel_id, error) ||
          !get_int (object, type, "from", TRUE, 0, 0, &frame->from, error) ||
          !get_int (object, type, "to", TRUE, 0, 0, &frame->to, error))
        return NULL;
      if (frame->from > frame->to)
        {
          g_set_error (error, TOCSIN_PROTOCOL_ERROR, TOCSIN_PROTOCOL_ERROR_BAD_FRAME,
                       _("The relay reported missed messages from %" PRId64 " to %" PRId64
                         ", which is not a range"),
                       (int64_t) frame->from, (int64_t) frame->to);
          return NULL;
        }
    }
  else if (g_str_equal (type, "error"))
    {
      frame->type = TOCSIN_FRAME_ERROR;
      if (!get_string (object, type, "token", FALSE, NULL, &frame->token, error) ||
          !get_string (object, type, "code", FALSE, "error", &frame->code, error) ||
          !get_string (object, type, "error", FALSE, "", &frame->error, error))
        return NULL;
    }
  else if (g_str_equal (type, "closed"))
    {
      frame->type = TOCSIN_FRAME_CLOSED;
      if (!get_int (object, type, "channel", TRUE, 1, 0, &frame->channel_id, error) ||
          !get_string (object, type, "reason", FALSE, "closed", &frame->reason, error))
        return NULL;
    }
  else if (g_str_equal (type, "acknowledged"))
    {
      frame->type = TOCSIN_FRAME_ACKNOWLEDGED;
      if (!get_int (object, type, "channel", TRUE, 1, 0, &frame->channel_id, error) ||
          !get_int (object, type, "id", TRUE, 1, 0, &frame->message_id, error) ||
          !get_string (object, type, "by", FALSE, "", &frame->by, error))
        return NULL;
      if (g_utf8_strlen (frame->by, -1) > TOCSIN_PROTOCOL_MAX_ACK_NAME)
        {
          g_set_error (error, TOCSIN_PROTOCOL_ERROR, TOCSIN_PROTOCOL_ERROR_BAD_FRAME,
                       _("The relay sent an acknowledgement with a name longer than %d "
                         "characters"), TOCSIN_PROTOCOL_MAX_ACK_NAME);
          return NULL;
        }
    }
  else
    frame->type = TOCSIN_FRAME_UNKNOWN;

  return g_steal_pointer (&frame);
}

JsonObject *
tocsin_protocol_parse_lookup (const char  *data,
                              gsize        length,
                              GError     **error)
{
  g_autoptr(JsonObject) object = NULL;
  g_autoptr(GError) local_error = NULL;
  static const char * const texts[] = { "name", "description", "title", "body", "error" };
  JsonNode *id;

  g_return_val_if_fail (data != NULL || length == 0, NULL);

  object = tocsin_json_parse_object (data, length, TOCSIN_PROTOCOL_MAX_LOOKUP_BYTES,
                                     TOCSIN_PROTOCOL_MAX_DEPTH, &local_error);
  if (object == NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  id = json_object_get_member (object, "id");
  if (id != NULL && (!JSON_NODE_HOLDS_VALUE (id) || json_node_get_value_type (id) != G_TYPE_INT64
                     || json_node_get_int (id) <= 0))
    {
      g_set_error (error, TOCSIN_PROTOCOL_ERROR, TOCSIN_PROTOCOL_ERROR_BAD_FRAME,
                   _("The channel’s “id” is not a positive integer"));
      return NULL;
    }
  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      JsonNode *node = json_object_get_member (object, texts[i]);

      if (node != NULL && !JSON_NODE_HOLDS_NULL (node) &&
          (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING))
        {
          g_set_error (error, TOCSIN_PROTOCOL_ERROR, TOCSIN_PROTOCOL_ERROR_BAD_FRAME,
                       _("The channel’s “%s” is not text"), texts[i]);
          return NULL;
        }
    }
  return g_steal_pointer (&object);
}
