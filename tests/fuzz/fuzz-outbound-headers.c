/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libFuzzer target for the headers of an answer to an outgoing request (tocsin-outbound.c):
 * Retry-After (delta-seconds or an HTTP-date, through libsoup's date parser), X-Rate-Limit-*,
 * RateLimit-* and the structured RateLimit field, and the answer's first bytes kept for the
 * deliveries log. Any host a forward or an action points at writes these.
 *
 * Input: lines "Name: value" (a line without ':' is a value for "Retry-After"); the whole input
 * is also the answer's body.
 */
#define G_LOG_DOMAIN "fuzz-outbound-headers"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "tocsin-outbound.h"

/* 2027-01-15T08:00:00Z: fixed, so that a crash replays. */
#define NOW_MS G_GINT64_CONSTANT (1800000000000)
#define DAY_MS G_GINT64_CONSTANT (86400000)

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
check_time (gint64      at,
            gboolean    may_be_unset,
            const char *what)
{
  if (may_be_unset && at == 0)
    return;
  check (at >= NOW_MS && at <= NOW_MS + DAY_MS, what);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(GPtrArray) headers = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autofree char *start = NULL;
  g_auto(GStrv) lines = NULL;
  TocsinOutboundPacing pacing;

  /* g_strndup stops at a NUL, as a header value would. */
  lines = g_strsplit (text, "\n", 256);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *colon = strchr (lines[i], ':');
      gint64 at;

      g_strchomp (lines[i]);
      at = tocsin_outbound_parse_retry_after (lines[i], NOW_MS);
      check (at == -1 || (at >= NOW_MS && at <= NOW_MS + DAY_MS),
             "Retry-After is unreadable (-1) or within a day from now");
      if (colon == NULL)
        {
          g_ptr_array_add (headers, g_strdup ("Retry-After"));
          g_ptr_array_add (headers, g_strdup (lines[i]));
        }
      else
        {
          g_ptr_array_add (headers, g_strndup (lines[i], colon - lines[i]));
          g_ptr_array_add (headers, g_strdup (g_strchug (colon + 1)));
        }
    }
  g_ptr_array_add (headers, NULL);

  tocsin_outbound_parse_pacing ((const char * const *) headers->pdata, NOW_MS, &pacing);
  check_time (pacing.retry_after_ms, TRUE, "retry_after_ms is 0 or within a day from now");
  check_time (pacing.paced_until_ms, TRUE, "paced_until_ms is 0 or within a day from now");

  start = tocsin_outbound_answer_start (data, size);
  check (start != NULL, "an answer start");
  check (g_utf8_validate (start, -1, NULL), "the answer start is valid UTF-8");
  check (strlen (start) <= TOCSIN_OUTBOUND_ANSWER_START, "the answer start is at most 256 bytes");
  check (size == 0 || *start != '\0', "a non-empty answer has a non-empty start");
  return 0;
}
