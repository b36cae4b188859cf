/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libFuzzer target for the app's reading of a subscribe-link lookup answer (GET /s/TOKEN as
 * JSON): a tocsin://subscribe?url=… link on any web page makes the app ask the relay it names,
 * before the user confirms anything, so the answer comes from whoever wrote the page.
 * tocsin_protocol_parse_lookup() is the function src/app/tocsin-client.c calls.
 */
#define G_LOG_DOMAIN "fuzz-lookup"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "fuzz-common.h"
#include "tocsin-message.h"
#include "tocsin-protocol.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) info = tocsin_protocol_parse_lookup ((const char *) data, size, &error);

  if ((info == NULL) != (error != NULL))
    abort ();
  if (info == NULL)
    {
      if (!g_utf8_validate (error->message, -1, NULL))
        abort ();
      return 0;
    }
  /* What the app then reads from it (tocsin-client.c, tocsin-subscribe-dialog.c). */
  if (tocsin_json_get_int (info, "id", 0) < 0)
    abort ();
  if (json_object_has_member (info, "title"))
    (void) json_object_get_string_member_with_default (info, "title", "");
  if (json_object_has_member (info, "body"))
    (void) json_object_get_string_member_with_default (info, "body", "");
  (void) tocsin_json_get_string (info, "name", NULL);
  (void) tocsin_json_get_string (info, "description", NULL);
  return 0;
}
