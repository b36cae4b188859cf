/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libFuzzer target for the body shapes of issue #13.6, through tocsin_relay_body_read(): a
 * multipart/form-data body (libsoup's SoupMultipart, which reads past the end of a body that
 * stops at a boundary: the relay hands it a padded copy), a form whose one field holds JSON
 * (GitHub's payload=, Uptime Kuma's data), JSON sent as text/plain, and top-level arrays.
 *
 * Input: the Content-Type up to the first newline, then the body. Beyond "does not crash": an
 * error exactly when the body is refused, with a status a sender can act on (400, 413, 415) and
 * a UTF-8 sentence; every variable name and string value is valid UTF-8, no deeper than the
 * guarded parser allows; text/plain always keeps bodyAsText as sent.
 */
#define G_LOG_DOMAIN "fuzz-multipart"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "tocsin-relay-body.h"

#define MAX_BODY (64 * 1024)

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
check_strings (JsonNode *node,
               guint     depth)
{
  check (depth <= TOCSIN_RELAY_BODY_MAX_DEPTH + 2, "no deeper than the parser allows");
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;

      json_object_iter_init (&iter, json_node_get_object (node));
      while (json_object_iter_next (&iter, &name, &member))
        {
          check (g_utf8_validate (name, -1, NULL), "names are valid UTF-8");
          check_strings (member, depth + 1);
        }
    }
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      for (guint i = 0; i < json_array_get_length (array); i++)
        check_strings (json_array_get_element (array, i), depth + 1);
    }
  else if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    check (g_utf8_validate (json_node_get_string (node), -1, NULL), "strings are valid UTF-8");
}

/* libsoup warns (and our fatal mask aborts) on header values it would never have parsed off the
 * wire; keep to what a peer can send. */
static gboolean
header_value_ok (const char *value)
{
  for (const char *p = value; *p; p++)
    if (*p == '\r')
      return FALSE;
  return TRUE;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  const char *text = (const char *) data;
  const char *newline = memchr (text, '\n', size);
  g_autofree char *type = NULL;
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(GError) error = NULL;
  g_autofree char *body_text = NULL;
  guint status = 0;
  gboolean ok;

  if (newline == NULL)
    return 0;
  type = g_strndup (text, newline - text);
  if (memchr (type, '\0', newline - text) != NULL || !header_value_ok (type))
    return 0;
  soup_message_headers_replace (headers, "Content-Type", type);
  body = g_bytes_new (newline + 1, size - (newline + 1 - text));

  ok = tocsin_relay_body_read (headers, body, MAX_BODY, vars, &body_text, &status, &error);
  check (ok == (error == NULL), "an error exactly when the body is refused");
  if (!ok)
    {
      check (status == 400 || status == 413 || status == 415, "a status a sender can act on");
      check (g_utf8_validate (error->message, -1, NULL), "the reason is valid UTF-8");
      return 0;
    }

  json_node_set_object (root, vars);
  check_strings (root, 0);
  if (body_text != NULL)
    {
      JsonNode *kept = json_object_get_member (vars, "bodyAsText");

      check (kept != NULL && g_strcmp0 (json_node_get_string (kept), body_text) == 0,
             "text/plain keeps bodyAsText as sent");
    }
  return 0;
}
