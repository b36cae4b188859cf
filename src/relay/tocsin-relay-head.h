/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tocsin-relay-head.h: a look at a request's first line before libsoup reads it.
 *
 * libsoup 3.2 answers a request whose target it cannot parse (a "%" not followed by two hex
 * digits) with an empty 400, and one whose head passes 64 KiB with nothing at all. The server
 * peeks at the bytes the kernel holds (nothing is consumed) and asks this module what they
 * are, so that the client gets the status and sentence every other error has.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* How much of a head the server peeks at: one byte past libsoup's limit for a whole head. */
#define TOCSIN_RELAY_HEAD_PEEK (64 * 1024 + 1)
/* A first line at least this long is called the reason when libsoup then gives up on the head
 * (over 64 KiB): a peek may see only the first segment of a long line (loopback's are 64 KiB
 * less the headers), so "no line end within 64 KiB" cannot be required. */
#define TOCSIN_RELAY_HEAD_LONG_LINE (32 * 1024)

typedef enum
{
  TOCSIN_RELAY_HEAD_UNKNOWN,        /* the first line has not all arrived: no verdict */
  TOCSIN_RELAY_HEAD_OK,             /* libsoup will parse the target */
  TOCSIN_RELAY_HEAD_BAD_TARGET,     /* 400: *sentence says what to fix */
  TOCSIN_RELAY_HEAD_LINE_TOO_LONG,  /* the first line is TOCSIN_RELAY_HEAD_LONG_LINE or more:
                                     * 414 if libsoup gives up on the head */
} TocsinRelayHeadVerdict;

/* @data is what a peek returned, @length its size. *@sentence (for BAD_TARGET) is a
 * translated sentence for the client. */
TocsinRelayHeadVerdict tocsin_relay_head_inspect (const char  *data,
                                                  gsize        length,
                                                  char       **sentence);

G_END_DECLS
