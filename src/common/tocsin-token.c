/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-token"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <gio/gio.h>

#include "tocsin-token.h"

char *
tocsin_token_new (GError **error)
{
  guint8 raw[TOCSIN_TOKEN_BYTES];
  gsize got = 0;
  g_autofree char *b64 = NULL;

  while (got < sizeof raw)
    {
      ssize_t n = getrandom (raw + got, sizeof raw - got, 0);

      if (n < 0)
        {
          int saved = errno;

          if (saved == EINTR)
            continue;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                       "Could not read random bytes for a token: %s", g_strerror (saved));
          return NULL;
        }
      got += n;
    }

  b64 = g_base64_encode (raw, sizeof raw);
  explicit_bzero (raw, sizeof raw);

  /* URL-safe alphabet; 24 bytes encode to 32 characters without padding. */
  for (char *p = b64; *p; p++)
    {
      if (*p == '+')
        *p = '-';
      else if (*p == '/')
        *p = '_';
    }
  g_assert (strlen (b64) == TOCSIN_TOKEN_CHARS);
  return g_steal_pointer (&b64);
}

gboolean
tocsin_token_is_wellformed (const char *token)
{
  if (token == NULL)
    return FALSE;
  for (gsize i = 0; i < TOCSIN_TOKEN_CHARS; i++)
    {
      char c = token[i];

      if (!(g_ascii_isalnum (c) || c == '-' || c == '_'))
        return FALSE;
    }
  return token[TOCSIN_TOKEN_CHARS] == '\0';
}

/* Compares every byte whatever differs first, so timing tells nothing about the secret. */
gboolean
tocsin_token_equal (const char *a,
                    const char *b)
{
  gsize la, lb, n;
  guint8 diff;

  if (a == NULL || b == NULL)
    return FALSE;

  la = strlen (a);
  lb = strlen (b);
  diff = (la != lb);
  n = MAX (la, lb);
  for (gsize i = 0; i < n; i++)
    {
      guint8 ca = i < la ? (guint8) a[i] : 0;
      guint8 cb = i < lb ? (guint8) b[i] : 0;

      diff |= ca ^ cb;
    }
  return diff == 0;
}

char *
tocsin_token_hash (const char *token)
{
  g_return_val_if_fail (token != NULL, NULL);
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, token, -1);
}

/* A mail token is the local part of an address: mail systems may fold its case, so it is
 * lowercase base32 (RFC 4648's alphabet), which folding leaves unchanged. */
char *
tocsin_token_new_mail (GError **error)
{
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  guint8 raw[TOCSIN_MAIL_TOKEN_BYTES];
  char *token;
  gsize got = 0;

  while (got < sizeof raw)
    {
      ssize_t n = getrandom (raw + got, sizeof raw - got, 0);

      if (n < 0)
        {
          int saved = errno;

          if (saved == EINTR)
            continue;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                       "Could not read random bytes for a token: %s", g_strerror (saved));
          return NULL;
        }
      got += n;
    }

  /* 20 bytes are 160 bits, exactly 32 characters of 5 bits. */
  token = g_malloc (TOCSIN_MAIL_TOKEN_CHARS + 1);
  for (gsize i = 0; i < TOCSIN_MAIL_TOKEN_CHARS; i++)
    {
      gsize bit = i * 5, byte = bit / 8, shift = bit % 8;
      guint value = (guint) raw[byte] << 8;

      if (byte + 1 < sizeof raw)
        value |= raw[byte + 1];
      token[i] = alphabet[(value >> (11 - shift)) & 0x1f];
    }
  token[TOCSIN_MAIL_TOKEN_CHARS] = '\0';
  explicit_bzero (raw, sizeof raw);
  return token;
}
