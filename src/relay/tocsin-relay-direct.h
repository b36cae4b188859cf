/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-direct.h: Direct keys, Echobell's personal webhook (docs/api.md, "Direct keys").
 *
 * /d/{key} rings only the key's owner: the key belongs to a direct inbox, a channel of kind
 * "direct" without templates, whose subscribe token only the owner's desktops hold. The owner
 * API under /v1/direct creates, shows, rotates and deletes it.
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "tocsin-message.h"
#include "tocsin-relay.h"
#include "tocsin-relay-store.h"

G_BEGIN_DECLS

/* Echobell's default title, and its answers (kept in English: scripts compare them). */
#define TOCSIN_RELAY_DIRECT_DEFAULT_TITLE "Direct Notification"
#define TOCSIN_RELAY_DIRECT_SENT          "Notification sent"
#define TOCSIN_RELAY_DIRECT_NOT_FOUND     "Direct key not found"

/* /d/{key}: GET and POST. Pauses @msg until the message is committed. */
void tocsin_relay_direct_handle     (TocsinRelay       *relay,
                                     SoupServerMessage *msg,
                                     const char        *key);
/* /v1/direct and /v1/direct/rotate: the owner API of a direct inbox. */
void tocsin_relay_direct_api_handle (TocsinRelay       *relay,
                                     SoupServerMessage *msg,
                                     const char        *path);
/* Answers @status with Echobell's {"success":false,"message":@sentence}. */
void tocsin_relay_direct_reply_error (SoupServerMessage *msg,
                                      guint              status,
                                      const char        *sentence);

/* The request's fields, after Echobell's rules: names in any case, title defaulting to
 * "Direct Notification", notificationType defaulting to time-sensitive. */
typedef struct
{
  char              *title;
  char              *body;
  char              *link;   /* NULL: none */
  TocsinMessageType  type;
} TocsinRelayDirectFields;

void     tocsin_relay_direct_fields_clear (TocsinRelayDirectFields *fields);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (TocsinRelayDirectFields, tocsin_relay_direct_fields_clear)

/* Pure: reads @vars (the query and the body, decoded) and, when no body field was given, a
 * text/plain @body_text. FALSE with a sentence (a 400) for a field that is not text, an unknown
 * notificationType or an externalLink that is not a safe http(s) URL. */
gboolean tocsin_relay_direct_read_fields (JsonObject               *vars,
                                          const char               *body_text,
                                          TocsinRelayDirectFields  *out,
                                          GError                  **error);

/* The owner's view of a direct inbox (snake_case, as the owner API's channels). */
JsonObject *tocsin_relay_direct_to_json (TocsinRelayChannel *channel,
                                         const char         *public_url);

G_END_DECLS
