/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-protocol"

#include "config.h"

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
