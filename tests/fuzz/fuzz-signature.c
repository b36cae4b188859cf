/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libFuzzer target for tocsin_relay_signature_verify: the signature headers a sender (or a
 * forger) sends on /t/{token}, with any body.
 *
 * The first byte picks the scheme; up to the first newline is the signature header's value,
 * the rest is the body. Beyond "does not crash": an error exactly when it refuses, in the
 * signature domain (missing, wrong or stale) with a UTF-8 sentence; and the same body signed
 * the way GitHub signs it is always accepted.
 */
#define G_LOG_DOMAIN "fuzz-signature"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "tocsin-relay-signature.h"

#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SECRET "a-fuzzing-secret-0123456789"
#define NOW 1614265330

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

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  static const TocsinRelaySignatureScheme schemes[] = {
    TOCSIN_RELAY_SIGNATURE_STANDARD_WEBHOOKS, TOCSIN_RELAY_SIGNATURE_GITHUB,
    TOCSIN_RELAY_SIGNATURE_STRIPE, TOCSIN_RELAY_SIGNATURE_HMAC_SHA256,
  };
  static const char *headers_of[] = { "webhook-signature", "X-Hub-Signature-256",
                                      "Stripe-Signature", "X-Signature" };
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *value = NULL;
  const uint8_t *newline;
  guint which;
  gboolean ok;

  if (size < 1)
    return 0;
  which = data[0] % G_N_ELEMENTS (schemes);
  data++;
  size--;
  newline = memchr (data, '\n', size);
  value = g_strndup ((const char *) data, newline ? (gsize) (newline - data) : size);
  body = newline ? g_bytes_new (newline + 1, size - (newline + 1 - data)) : g_bytes_new (NULL, 0);

  /* A header value libsoup would take: no NUL (g_strndup stopped there), no CR or LF. */
  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  soup_message_headers_append (headers, "webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek");
  soup_message_headers_append (headers, "webhook-timestamp", "1614265330");
  if (strchr (value, '\r') == NULL)
    soup_message_headers_append (headers, headers_of[which], value);

  ok = tocsin_relay_signature_verify (schemes[which], "X-Signature", headers, body,
                                      which == 0 ? SW_SECRET : SECRET, NOW, &error);
  check (ok == (error == NULL), "an error exactly when refused");
  if (!ok)
    {
      check (error->domain == TOCSIN_RELAY_SIGNATURE_ERROR, "a signature error");
      check (error->code != TOCSIN_RELAY_SIGNATURE_ERROR_INVALID, "missing, wrong or stale");
      check (g_utf8_validate (error->message, -1, NULL), "the sentence is UTF-8");
    }

  /* The body signed as GitHub signs it passes, whatever the body. */
  {
    g_autoptr(GHmac) hmac = g_hmac_new (G_CHECKSUM_SHA256, (const guchar *) SECRET,
                                        strlen (SECRET));
    g_autofree char *good = NULL;
    g_autoptr(SoupMessageHeaders) signed_headers = NULL;
    g_autoptr(GError) good_error = NULL;

    g_hmac_update (hmac, g_bytes_get_data (body, NULL), g_bytes_get_size (body));
    good = g_strdup_printf ("sha256=%s", g_hmac_get_string (hmac));
    signed_headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
    soup_message_headers_append (signed_headers, "X-Hub-Signature-256", good);
    check (tocsin_relay_signature_verify (TOCSIN_RELAY_SIGNATURE_GITHUB, NULL, signed_headers,
                                          body, SECRET, NOW, &good_error),
           "a good signature is accepted");
  }
  return 0;
}
