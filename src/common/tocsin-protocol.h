/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-protocol.h: the /v1/ws protocol of docs/protocol.md, in one place. The relay's hub
 * builds its frames here; the app (tocsin-connection.c) and its fuzzer (tests/fuzz) read them
 * with the one parser below, so what the fuzzer proves is what the app runs.
 *
 * The parser treats the relay as a peer that may be hostile: the frame goes through the guarded
 * JSON parser (size, depth, UTF-8, raw control characters) before json-glib sees it, every
 * member is type-checked, and what cannot be trusted is refused with a sentence a person can
 * read, never with a critical or a crash.
 */
#pragma once

#include <glib.h>


G_BEGIN_DECLS

/* ---- builders: relay → app frames ---------------------------------------------------------- */

/* {"type":"message","message":<message object>} around an encoded message object. */
GBytes *tocsin_protocol_message_frame    (GBytes     *message_object);
/* {"type":"gap","channel":…,"from":…,"to":…}, as text without a newline. */
char   *tocsin_protocol_gap_json         (gint64      channel_id,
                                          gint64      from,
                                          gint64      to);
GBytes *tocsin_protocol_error_frame      (const char *token,
                                          const char *code,
                                          const char *sentence);
GBytes *tocsin_protocol_subscribed_frame (const char *token,
                                          gint64      channel_id,
                                          const char *name,
                                          const char *description,
                                          gint64      last_id);
GBytes *tocsin_protocol_closed_frame     (gint64      channel_id,
                                          const char *reason);

G_END_DECLS
