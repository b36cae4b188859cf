/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-mail.h: the email trigger's message, from the bytes of DATA to Echobell's
 * variables (from, to, subject, text, html, headers), with GMime. Pure: no I/O, no relay state;
 * safe on a worker thread once tocsin_relay_mail_init() has run. tests/fuzz/fuzz-smtp.c calls
 * it as the SMTP server does.
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "tocsin-relay-store.h"

G_BEGIN_DECLS

/* Nested multiparts and attached messages deeper than this are refused; so are messages with
 * more MIME parts than TOCSIN_RELAY_MAIL_MAX_PARTS (docs/configuration.md, "Email trigger"). */
#define TOCSIN_RELAY_MAIL_MAX_DEPTH 16
#define TOCSIN_RELAY_MAIL_MAX_PARTS 256
/* Header fields kept in `headers` (and for `header["…"]` in templates) at most. */
#define TOCSIN_RELAY_MAIL_MAX_HEADERS 100

/* Initialises GMime once; call on the main thread before any parse. */
void        tocsin_relay_mail_init       (void);

/* The domain that channels' addresses are under in this process (the serve command's
 * --mail-domain, or the one it recorded for the command line); @domain NULL: the host name.
 * Until it is set (a server that takes no mail), there is none: get_domain() and address()
 * return NULL, and the owner views leave the address out. The owner views of a channel are
 * built in many places, and this is the process's setting as its host name is. */
void        tocsin_relay_mail_set_domain (const char *domain);
const char *tocsin_relay_mail_get_domain (void);
/* <email_token>@<domain>; NULL when the channel has no email token or there is no domain. */
char       *tocsin_relay_mail_address    (const TocsinRelayChannel *channel);

typedef struct
{
  JsonObject         *vars;       /* from, to, subject, text, html, headers */
  SoupMessageHeaders *headers;    /* the top-level header fields, for header["…"] */
  char               *message_id; /* Message-ID without <>, or NULL: the dedup key */
} TocsinRelayMail;

void tocsin_relay_mail_free (TocsinRelayMail *mail);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRelayMail, tocsin_relay_mail_free)

/* Parses @data (an RFC 5322 message as received, dot-unstuffed, CRLF or LF line ends).
 * @envelope_from/@envelope_to fill `from`/`to` when the header has none (may be NULL).
 * Bodies are decoded (quoted-printable, base64) and converted to UTF-8 from their charset;
 * a charset that is unknown or wrong gives a best-effort text. NULL with an English sentence (for
 * an SMTP 554 answer) when the message is too deeply nested or has too many parts. */
TocsinRelayMail *tocsin_relay_mail_parse (const char  *data,
                                          gsize        length,
                                          const char  *envelope_from,
                                          const char  *envelope_to,
                                          GError     **error);

G_END_DECLS
