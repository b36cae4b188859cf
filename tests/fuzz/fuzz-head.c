/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libFuzzer target for the relay's look at a request head before libsoup reads it
 * (tocsin-relay-head.c): whatever bytes a client sends first, the verdict is one of the four,
 * a sentence comes with BAD_TARGET only, and it is UTF-8.
 */
#define G_LOG_DOMAIN "fuzz-head"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "fuzz-common.h"
#include "tocsin-relay-head.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *sentence = NULL;
  TocsinRelayHeadVerdict verdict;

  verdict = tocsin_relay_head_inspect ((const char *) data, size, &sentence);
  if (verdict > TOCSIN_RELAY_HEAD_LINE_TOO_LONG)
    abort ();
  if ((verdict == TOCSIN_RELAY_HEAD_BAD_TARGET) != (sentence != NULL))
    abort ();
  if (sentence != NULL && !g_utf8_validate (sentence, -1, NULL))
    abort ();
  return 0;
}
