/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tocsin-token.h: secret tokens (getrandom, 192 bits, URL-safe) and constant-time comparison. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define TOCSIN_TOKEN_BYTES 24   /* 192 bits */
#define TOCSIN_TOKEN_CHARS 32   /* URL-safe base64 of 24 bytes, no padding */

char     *tocsin_token_new        (GError **error);
gboolean  tocsin_token_equal      (const char *a, const char *b);
gboolean  tocsin_token_is_wellformed (const char *token);
/* A hex SHA-256 of the token: what is indexed and stored for keys that are never shown again. */
char     *tocsin_token_hash       (const char *token);

G_END_DECLS
