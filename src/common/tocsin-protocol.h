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

#include "tocsin-message.h"

G_BEGIN_DECLS

/* The largest frame the app reads from a relay (libsoup's payload limit is set to it). */
#define TOCSIN_PROTOCOL_MAX_FRAME_BYTES   (4 * 1024 * 1024)
/* The largest "message" frame whose message the app keeps; larger ones are dropped (the cursor
 * moves past them) and the subscription says so. */
#define TOCSIN_PROTOCOL_MAX_MESSAGE_BYTES (512 * 1024)
/* Arrays and objects nested deeper than this in a frame refuse the whole frame. */
#define TOCSIN_PROTOCOL_MAX_DEPTH         64

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
/* {"type":"acknowledged","channel":…,"id":…,"by":…}: someone answered a call (docs/protocol.md). */
GBytes *tocsin_protocol_acknowledged_frame (gint64      channel_id,
                                            gint64      message_id,
                                            const char *by);

/* ---- builders: app → relay frames ---------------------------------------------------------- */

/* The longest name (in characters) an acknowledgement carries; a longer one is refused. */
#define TOCSIN_PROTOCOL_MAX_ACK_NAME 64

/* {"type":"ack","channel":…,"id":…,"by":…}: the user acknowledged a call. */
char   *tocsin_protocol_ack_request       (gint64      channel_id,
                                           gint64      message_id,
                                           const char *by);

/* ---- the parser: what the app reads -------------------------------------------------------- */

#define TOCSIN_PROTOCOL_ERROR (tocsin_protocol_error_quark ())

typedef enum
{
  TOCSIN_PROTOCOL_ERROR_NOT_JSON,   /* too large, too deep, not UTF-8, not a JSON object */
  TOCSIN_PROTOCOL_ERROR_BAD_FRAME,  /* a known type with members missing, mistyped or absurd */
} TocsinProtocolError;

typedef enum
{
  TOCSIN_FRAME_UNKNOWN,     /* a JSON object of a type this version does not know: ignore it */
  TOCSIN_FRAME_SUBSCRIBED,
  TOCSIN_FRAME_MESSAGE,
  TOCSIN_FRAME_GAP,
  TOCSIN_FRAME_ERROR,
  TOCSIN_FRAME_CLOSED,
  TOCSIN_FRAME_ACKNOWLEDGED,
} TocsinFrameType;

typedef struct
{
  TocsinFrameType type;
  char           *type_name;    /* as sent, never NULL */

  /* acknowledged: channel_id, message_id and by (never NULL, at most
   * TOCSIN_PROTOCOL_MAX_ACK_NAME characters, may be empty) */
  char           *by;
  /* subscribed, error (may be NULL there): the subscribe token the frame answers */
  char           *token;
  /* subscribed (its channel.id), message (its message.channel), gap, closed: > 0 */
  gint64          channel_id;
  /* subscribed */
  char           *channel_name;         /* may be NULL */
  char           *channel_description;  /* may be NULL */
  gint64          last_id;              /* >= 0 */
  /* message: message_id > 0 always; message is NULL when the message itself was refused (too
   * large, invalid), and problem then says why; a message whose link was refused keeps the
   * message without the link, and problem says why too. */
  gint64          message_id;
  TocsinMessage  *message;
  char           *problem;
  /* gap: 0 < from <= to */
  gint64          from;
  gint64          to;
  /* error */
  char           *code;                 /* never NULL */
  char           *error;                /* never NULL, may be empty */
  /* closed */
  char           *reason;               /* never NULL */
} TocsinFrame;

GQuark       tocsin_protocol_error_quark (void);
void         tocsin_frame_free           (TocsinFrame *frame);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinFrame, tocsin_frame_free)

/* Reads one text frame a relay sent on /v1/ws (@data need not be NUL-terminated). Returns the
 * frame, or NULL with @error (TOCSIN_PROTOCOL_ERROR) saying in words what was wrong. */
TocsinFrame *tocsin_protocol_parse_frame (const char  *data,
                                          gsize        length,
                                          GError     **error);

/* The largest answer to a subscribe-link lookup (GET /s/TOKEN as JSON) the app reads. */
#define TOCSIN_PROTOCOL_MAX_LOOKUP_BYTES  (256 * 1024)

/* Reads a relay's answer to a subscribe-link lookup (or its error body): a JSON object whose
 * "id" (when present) is a positive integer and "name", "description", "error" (when present)
 * ("title", "body" too) are text. NULL with @error saying what was wrong otherwise. */
JsonObject  *tocsin_protocol_parse_lookup (const char  *data,
                                           gsize        length,
                                           GError     **error);

G_END_DECLS
