/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libFuzzer target for the owner API's body parser, tocsin_relay_body_parse_channel_spec: the
 * JSON object anyone may POST to /v1/channels on an open relay.
 *
 * Beyond "does not crash" (100,000 `[` once crashed the relay): an error exactly when it
 * refuses, with 400 or 413 and a UTF-8 sentence; every field it fills is valid UTF-8.
 */
#define G_LOG_DOMAIN "fuzz-owner"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "tocsin-relay-body.h"

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


#define MAX_BYTES (128 * 1024)

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  TocsinRelayChannelSpec spec = { 0 };
  g_autoptr(JsonObject) object = NULL;
  g_autoptr(GError) error = NULL;
  const char *fields[6];
  guint status = 0;

  object = tocsin_relay_body_parse_channel_spec ((const char *) data, size, MAX_BYTES, &spec,
                                                 &status, &error);
  check ((object == NULL) == (error != NULL), "an error exactly when the body is refused");
  if (object == NULL)
    {
      check (status == 400 || status == 413, "a refusal is 400 or 413");
      check (g_utf8_validate (error->message, -1, NULL), "the reason is valid UTF-8");
      return 0;
    }
  fields[0] = spec.name;
  fields[1] = spec.description;
  fields[2] = spec.title;
  fields[3] = spec.body;
  fields[4] = spec.link;
  fields[5] = spec.condition;
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    check (fields[i] == NULL || g_utf8_validate (fields[i], -1, NULL), "fields are UTF-8");
  return 0;
}
