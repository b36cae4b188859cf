/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tocsin-token.h: secret tokens (getrandom, 192 bits, URL-safe) and constant-time comparison. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define TOCSIN_TOKEN_BYTES 24   /* 192 bits */
#define TOCSIN_TOKEN_CHARS 32   /* URL-safe base64 of 24 bytes, no padding */

char     *tocsin_token_new        (GError **error);
/* The local part of a channel's mail address: 160 bits as lowercase base32, which survives
 * mail systems that fold the case of addresses. */
#define TOCSIN_MAIL_TOKEN_BYTES 20
#define TOCSIN_MAIL_TOKEN_CHARS 32
char     *tocsin_token_new_mail   (GError **error);
gboolean  tocsin_token_equal      (const char *a, const char *b);
gboolean  tocsin_token_is_wellformed (const char *token);
/* A hex SHA-256 of the token: what is indexed and stored for keys that are never shown again. */
char     *tocsin_token_hash       (const char *token);

G_END_DECLS
