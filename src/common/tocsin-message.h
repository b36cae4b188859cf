/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-message.h: the message object of docs/protocol.md, its encoding and its validation.
 * The relay encodes with it; the app decodes every frame with it (and so does its fuzzer).
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "tocsin-json.h"

G_BEGIN_DECLS

#define TOCSIN_MESSAGE_ERROR (tocsin_message_error_quark ())

typedef enum
{
  TOCSIN_MESSAGE_ERROR_INVALID,   /* not JSON, wrong types, missing fields */
  TOCSIN_MESSAGE_ERROR_BAD_LINK,  /* externalLink is not a safe http(s) URL */
} TocsinMessageError;

/* How a message asks to ring ("notificationType" on the wire, Echobell's names). DEFAULT leaves
 * it to the subscription's own choice; the others override it for this one message. */
typedef enum
{
  TOCSIN_MESSAGE_TYPE_DEFAULT = 0,
  TOCSIN_MESSAGE_TYPE_ACTIVE,
  TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE,
  TOCSIN_MESSAGE_TYPE_CALLING,
} TocsinMessageType;

/* A button on the pop-up and on the record (issue 15, docs/actions.md; wire "actions", at most
 * TOCSIN_REQUEST_MAX_ACTIONS): "view" opens @url; "http" sends the request from the desktop.
 * The relay renders a channel's action definitions per message; a sender can give its own
 * (ntfy's "actions"). On the wire:
 *   {"kind":"view","label":"Open","url":"https://…"}
 *   {"kind":"http","label":"Silence 1 h","method":"POST","url":"https://…",
 *    "headers":{"Content-Type":"application/json"},"body":"{…}","policy":"none","clear":false}
 * "body" is text (UTF-8); "policy" is the request model's ("retry" or "none"; default none). */
typedef struct
{
  char      *kind;       /* "view" or "http" */
  char      *label;      /* plain text, 1..64 characters */
  char      *url;        /* view: tocsin_link_is_safe(); http: absolute http(s) */
  char      *method;     /* http: GET, POST, PUT, DELETE */
  char     **headers;    /* http: name, value, …, NULL (may be NULL) */
  char      *body;       /* http: may be NULL */
  gboolean   retry;      /* http: policy "retry" */
  gboolean   clear;      /* dismiss the pop-up after a successful press (ntfy's "clear") */
} TocsinMessageAction;

void                 tocsin_message_action_free (TocsinMessageAction *action);

typedef struct
{
  gint64      id;             /* per-channel, counts up from 1 */
  gint64      channel;        /* channel id on its relay */
  char       *channel_name;   /* may be NULL */
  gint64      time_ms;        /* unix milliseconds, UTC */
  char       *title;          /* plain text, never NULL */
  char       *body;           /* plain text, never NULL */
  char       *external_link;  /* http(s) or NULL */
  JsonObject *vars;           /* never NULL */
  gint64      replaces;       /* 0: none */
  TocsinMessageType type;     /* how it rings; DEFAULT: as the subscriber chose */
  gboolean    markdown;       /* the body is Markdown (the sender said so) */
  GPtrArray  *actions;        /* of TocsinMessageAction, never NULL; at most 3 */
} TocsinMessage;

GQuark         tocsin_message_error_quark (void);
TocsinMessage *tocsin_message_new         (void);
void           tocsin_message_free        (TocsinMessage *message);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinMessage, tocsin_message_free)

/* Builds from a parsed message object; refuses wrong types, invalid UTF-8 and unsafe links. */
TocsinMessage *tocsin_message_new_from_json_object (JsonObject *object, GError **error);
/* Parses @data (need not be NUL-terminated). */
TocsinMessage *tocsin_message_new_from_data        (const char *data, gsize length, GError **error);
JsonObject    *tocsin_message_to_json_object       (const TocsinMessage *message);
char          *tocsin_message_to_data              (const TocsinMessage *message, gsize *length);

/* TRUE for an absolute http: or https: URL with a host, no user info, no control characters or
 * spaces, at most 2,048 bytes. Otherwise FALSE and *reason (optional) says what is wrong. */
gboolean       tocsin_link_is_safe                 (const char *uri, const char **reason);
/* "2026-11-23T16:40:00.123Z" */
/* "active", "time-sensitive", "calling"; NULL for DEFAULT. */
const char    *tocsin_message_type_to_string       (TocsinMessageType type);
/* FALSE for an unknown name; NULL or "" is DEFAULT. */
gboolean       tocsin_message_type_from_string     (const char        *name,
                                                    TocsinMessageType *type);
char          *tocsin_format_time_ms               (gint64 unix_ms);
gint64         tocsin_parse_time_ms                (const char *rfc3339);


G_END_DECLS
