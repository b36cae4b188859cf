/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-signature.c: signed webhooks, checked on the raw body before anything decodes it.
 *
 * Each sender documents its own scheme; all four are an HMAC-SHA256 keyed with the channel's
 * secret:
 *   Standard Webhooks  webhook-signature: v1,<base64 of HMAC(id "." timestamp "." body)>, one or
 *                      more separated by spaces; the key is the base64 after `whsec_`;
 *   GitHub             X-Hub-Signature-256: sha256=<hex of HMAC(body)>; the key is the secret;
 *   Stripe             Stripe-Signature: t=<timestamp>,v1=<hex of HMAC(t "." body)>[,v1=...];
 *                      the key is the whole secret, `whsec_` included (Stripe's libraries);
 *   hmac-sha256        <owner's header>: [sha256=]<hex or base64 of HMAC(body)>.
 * The signature is compared before the timestamp, so that a forger learns nothing from being
 * told "stale", and in constant time (ct_equal). Nothing here logs: the secret and what a
 * sender sent never reach a log.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <glib/gi18n.h>

#include "tocsin-relay-signature.h"
#include "tocsin-token.h"

#define DIGEST_LENGTH 32
#define WHSEC "whsec_"

G_DEFINE_QUARK (tocsin-relay-signature-error-quark, tocsin_relay_signature_error)

static const struct
{
  const char                 *name;
  TocsinRelaySignatureScheme  scheme;
} schemes[] = {
  { "standard-webhooks", TOCSIN_RELAY_SIGNATURE_STANDARD_WEBHOOKS },
  { "github", TOCSIN_RELAY_SIGNATURE_GITHUB },
  { "stripe", TOCSIN_RELAY_SIGNATURE_STRIPE },
  { "hmac-sha256", TOCSIN_RELAY_SIGNATURE_HMAC_SHA256 },
};

gboolean
tocsin_relay_signature_parse_scheme (const char                  *name,
                                     TocsinRelaySignatureScheme  *scheme,
                                     GError                     **error)
{
  g_return_val_if_fail (scheme != NULL, FALSE);

  if (name == NULL || *name == '\0' || g_ascii_strcasecmp (name, "none") == 0)
    {
      *scheme = TOCSIN_RELAY_SIGNATURE_NONE;
      return TRUE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (schemes); i++)
    if (g_ascii_strcasecmp (name, schemes[i].name) == 0)
      {
        *scheme = schemes[i].scheme;
        return TRUE;
      }
  g_set_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_INVALID,
               _("Unknown signature scheme “%s”; use standard-webhooks, github, stripe, "
                 "hmac-sha256 or none"), name);
  return FALSE;
}

const char *
tocsin_relay_signature_scheme_name (TocsinRelaySignatureScheme scheme)
{
  for (guint i = 0; i < G_N_ELEMENTS (schemes); i++)
    if (schemes[i].scheme == scheme)
      return schemes[i].name;
  return "";
}

/* ---- bytes ---- */

/* Every byte is compared whatever differs first. The lengths are not secret (a digest's). */
static gboolean
ct_equal (const guint8 *a,
          gsize         a_length,
          const guint8 *b,
          gsize         b_length)
{
  guint8 diff = 0;

  if (a_length != b_length)
    return FALSE;
  for (gsize i = 0; i < a_length; i++)
    diff |= a[i] ^ b[i];
  return diff == 0;
}

/* Decodes exactly 2 * @length hex digits of @hex into @out; FALSE on anything else. */
static gboolean
hex_decode (const char *hex,
            gsize       hex_length,
            guint8     *out,
            gsize       length)
{
  if (hex_length != 2 * length)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    {
      int hi = g_ascii_xdigit_value (hex[2 * i]), lo = g_ascii_xdigit_value (hex[2 * i + 1]);

      if (hi < 0 || lo < 0)
        return FALSE;
      out[i] = (guint8) (hi << 4 | lo);
    }
  return TRUE;
}

/* Strict base64 (standard or URL-safe alphabet, padding optional): NULL unless every character
 * belongs, so that garbage is "malformed" rather than decoded leniently by g_base64_decode. */
static guint8 *
base64_decode (const char *text,
               gsize       text_length,
               gsize      *length)
{
  g_autoptr(GString) copy = g_string_sized_new (text_length + 3);
  gsize end = text_length;

  while (end > 0 && text[end - 1] == '=')
    end--;
  if (end == 0 || text_length - end > 2)
    return NULL;
  for (gsize i = 0; i < end; i++)
    {
      char c = text[i];

      if (c == '-')
        c = '+';
      else if (c == '_')
        c = '/';
      else if (!g_ascii_isalnum (c) && c != '+' && c != '/')
        return NULL;
      g_string_append_c (copy, c);
    }
  if (copy->len % 4 == 1)
    return NULL;
  while (copy->len % 4 != 0)
    g_string_append_c (copy, '=');
  return g_base64_decode (copy->str, length);
}

static void
hmac_sha256 (const guint8 *key,
             gsize         key_length,
             const char   *prefix,
             GBytes       *body,
             guint8        digest[DIGEST_LENGTH])
{
  g_autoptr(GHmac) hmac = g_hmac_new (G_CHECKSUM_SHA256, key, key_length);
  gsize length = DIGEST_LENGTH;

  if (prefix != NULL)
    g_hmac_update (hmac, (const guchar *) prefix, strlen (prefix));
  if (body != NULL && g_bytes_get_size (body) > 0)
    g_hmac_update (hmac, g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  g_hmac_get_digest (hmac, digest, &length);
  g_assert (length == DIGEST_LENGTH);
}

/* ---- secrets ---- */

static gboolean
random_bytes (guint8  *buffer,
              gsize    length,
              GError **error)
{
  gsize got = 0;

  while (got < length)
    {
      ssize_t n = getrandom (buffer + got, length - got, 0);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                       _("Could not get random bytes for a secret: %s"), g_strerror (saved));
          return FALSE;
        }
      got += n;
    }
  return TRUE;
}

char *
tocsin_relay_signature_new_secret (TocsinRelaySignatureScheme   scheme,
                                   GError                     **error)
{
  guint8 raw[TOCSIN_TOKEN_BYTES];
  g_autofree char *encoded = NULL;
  char *secret;

  g_return_val_if_fail (scheme != TOCSIN_RELAY_SIGNATURE_NONE, NULL);

  if (scheme == TOCSIN_RELAY_SIGNATURE_STANDARD_WEBHOOKS)
    {
      if (!random_bytes (raw, sizeof raw, error))
        return NULL;
      encoded = g_base64_encode (raw, sizeof raw);
      explicit_bzero (raw, sizeof raw);
      secret = g_strconcat (WHSEC, encoded, NULL);
      explicit_bzero (encoded, strlen (encoded));
      return secret;
    }
  encoded = tocsin_token_new (error);
  if (encoded == NULL)
    return NULL;
  if (scheme != TOCSIN_RELAY_SIGNATURE_STRIPE)
    return g_steal_pointer (&encoded);
  secret = g_strconcat (WHSEC, encoded, NULL);
  explicit_bzero (encoded, strlen (encoded));
  return secret;
}

/* The HMAC key of @secret under @scheme; NULL when it is not usable. */
static guint8 *
secret_key (TocsinRelaySignatureScheme  scheme,
            const char                 *secret,
            gsize                      *length)
{
  if (scheme == TOCSIN_RELAY_SIGNATURE_STANDARD_WEBHOOKS)
    {
      if (g_str_has_prefix (secret, WHSEC))
        secret += strlen (WHSEC);
      return base64_decode (secret, strlen (secret), length);
    }
  *length = strlen (secret);
  return g_memdup2 (secret, *length + 1);
}

gboolean
tocsin_relay_signature_check_secret (TocsinRelaySignatureScheme   scheme,
                                     const char                  *secret,
                                     GError                     **error)
{
  g_autofree guint8 *key = NULL;
  gsize length = 0;

  g_return_val_if_fail (secret != NULL, FALSE);

  if (!g_utf8_validate (secret, -1, NULL) || strlen (secret) > TOCSIN_RELAY_SIGNATURE_SECRET_MAX)
    {
      g_set_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_INVALID,
                   _("The signing secret must be UTF-8 text of at most %d bytes"),
                   TOCSIN_RELAY_SIGNATURE_SECRET_MAX);
      return FALSE;
    }
  for (const char *p = secret; *p; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      {
        g_set_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_INVALID,
                     _("The signing secret must not contain control characters"));
        return FALSE;
      }
  key = secret_key (scheme, secret, &length);
  if (key == NULL && scheme == TOCSIN_RELAY_SIGNATURE_STANDARD_WEBHOOKS)
    {
      g_set_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_INVALID,
                   _("A Standard Webhooks secret is “whsec_” followed by base64; leave it out "
                     "to have the relay make one"));
      return FALSE;
    }
  if (key != NULL)
    explicit_bzero (key, length);
  if (length < TOCSIN_RELAY_SIGNATURE_SECRET_MIN)
    {
      g_set_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_INVALID,
                   _("The signing secret is too short: it needs at least %d bytes (leave it "
                     "out to have the relay make one)"), TOCSIN_RELAY_SIGNATURE_SECRET_MIN);
      return FALSE;
    }
  return TRUE;
}

/* ---- verification ---- */

static gboolean
set_missing (GError     **error,
             const char  *header)
{
  g_set_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_MISSING,
               _("This channel takes signed webhooks only, and the %s header is missing; "
                 "nothing was delivered"), header);
  return FALSE;
}

static gboolean
set_wrong (GError     **error,
           const char  *header)
{
  g_set_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_WRONG,
               _("The signature in the %s header does not match this body and the channel's "
                 "signing secret; nothing was delivered"), header);
  return FALSE;
}

static gboolean
set_malformed (GError     **error,
               const char  *header,
               const char  *form)
{
  g_set_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_WRONG,
               _("The %s header is not in the form %s; nothing was delivered"), header, form);
  return FALSE;
}

/* Whole seconds since the epoch, as both Standard Webhooks and Stripe send them. */
static gboolean
parse_timestamp (const char *text,
                 gsize       length,
                 gint64     *out)
{
  gint64 value = 0;

  if (length == 0 || length > 12)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    {
      if (!g_ascii_isdigit (text[i]))
        return FALSE;
      value = value * 10 + (text[i] - '0');
    }
  *out = value;
  return TRUE;
}

static gboolean
check_fresh (gint64       timestamp,
             gint64       now,
             GError     **error)
{
  if (timestamp < now - TOCSIN_RELAY_SIGNATURE_TOLERANCE_SECONDS ||
      timestamp > now + TOCSIN_RELAY_SIGNATURE_TOLERANCE_SECONDS)
    {
      g_set_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_STALE,
                   _("The signature's timestamp is more than %d minutes away from the relay's "
                     "clock: a replayed delivery, or a clock that is wrong; nothing was "
                     "delivered"), TOCSIN_RELAY_SIGNATURE_TOLERANCE_SECONDS / 60);
      return FALSE;
    }
  return TRUE;
}

static gboolean
verify_standard_webhooks (SoupMessageHeaders  *headers,
                          GBytes              *body,
                          const guint8        *key,
                          gsize                key_length,
                          gint64               now,
                          GError             **error)
{
  const char *id = soup_message_headers_get_one (headers, "webhook-id");
  const char *timestamp_text = soup_message_headers_get_one (headers, "webhook-timestamp");
  const char *signatures = soup_message_headers_get_one (headers, "webhook-signature");
  guint8 digest[DIGEST_LENGTH];
  g_autofree char *prefix = NULL;
  g_auto(GStrv) parts = NULL;
  gboolean matched = FALSE, any_v1 = FALSE;
  gint64 timestamp = 0;

  if (signatures == NULL || *signatures == '\0')
    return set_missing (error, "webhook-signature");
  if (id == NULL || *id == '\0')
    return set_missing (error, "webhook-id");
  if (timestamp_text == NULL || *timestamp_text == '\0')
    return set_missing (error, "webhook-timestamp");
  if (!parse_timestamp (timestamp_text, strlen (timestamp_text), &timestamp))
    return set_malformed (error, "webhook-timestamp", _("seconds since 1970"));

  prefix = g_strdup_printf ("%s.%s.", id, timestamp_text);
  hmac_sha256 (key, key_length, prefix, body, digest);

  /* Several signatures while a secret is rotated; other versions (v1a) are not ours. */
  parts = g_strsplit (signatures, " ", -1);
  for (guint i = 0; parts[i] != NULL; i++)
    {
      g_autofree guint8 *given = NULL;
      gsize given_length = 0;

      if (!g_str_has_prefix (parts[i], "v1,"))
        continue;
      any_v1 = TRUE;
      given = base64_decode (parts[i] + 3, strlen (parts[i] + 3), &given_length);
      if (given != NULL && ct_equal (digest, sizeof digest, given, given_length))
        matched = TRUE;
    }
  if (!any_v1)
    return set_malformed (error, "webhook-signature", "v1,<base64>");
  if (!matched)
    return set_wrong (error, "webhook-signature");
  return check_fresh (timestamp, now, error);
}

static gboolean
verify_github (SoupMessageHeaders  *headers,
               GBytes              *body,
               const guint8        *key,
               gsize                key_length,
               GError             **error)
{
  const char *value = soup_message_headers_get_one (headers, "X-Hub-Signature-256");
  guint8 digest[DIGEST_LENGTH], given[DIGEST_LENGTH];

  if (value == NULL || *value == '\0')
    return set_missing (error, "X-Hub-Signature-256");
  if (g_ascii_strncasecmp (value, "sha256=", 7) != 0 ||
      !hex_decode (value + 7, strlen (value + 7), given, sizeof given))
    return set_malformed (error, "X-Hub-Signature-256", "sha256=<64 hex digits>");
  hmac_sha256 (key, key_length, NULL, body, digest);
  if (!ct_equal (digest, sizeof digest, given, sizeof given))
    return set_wrong (error, "X-Hub-Signature-256");
  return TRUE;
}

static gboolean
verify_stripe (SoupMessageHeaders  *headers,
               GBytes              *body,
               const guint8        *key,
               gsize                key_length,
               gint64               now,
               GError             **error)
{
  const char *value = soup_message_headers_get_one (headers, "Stripe-Signature");
  g_auto(GStrv) items = NULL;
  g_autofree char *prefix = NULL;
  guint8 digest[DIGEST_LENGTH];
  const char *timestamp_text = NULL;
  gboolean matched = FALSE, any_v1 = FALSE;
  gint64 timestamp = 0;

  if (value == NULL || *value == '\0')
    return set_missing (error, "Stripe-Signature");
  items = g_strsplit (value, ",", -1);
  for (guint i = 0; items[i] != NULL; i++)
    if (g_str_has_prefix (items[i], "t=") && timestamp_text == NULL)
      timestamp_text = items[i] + 2;
  if (timestamp_text == NULL ||
      !parse_timestamp (timestamp_text, strlen (timestamp_text), &timestamp))
    return set_malformed (error, "Stripe-Signature", "t=<timestamp>,v1=<hex>");

  prefix = g_strdup_printf ("%s.", timestamp_text);
  hmac_sha256 (key, key_length, prefix, body, digest);
  for (guint i = 0; items[i] != NULL; i++)
    {
      guint8 given[DIGEST_LENGTH];

      if (!g_str_has_prefix (items[i], "v1="))
        continue;
      any_v1 = TRUE;
      if (hex_decode (items[i] + 3, strlen (items[i] + 3), given, sizeof given) &&
          ct_equal (digest, sizeof digest, given, sizeof given))
        matched = TRUE;
    }
  if (!any_v1)
    return set_malformed (error, "Stripe-Signature", "t=<timestamp>,v1=<hex>");
  if (!matched)
    return set_wrong (error, "Stripe-Signature");
  return check_fresh (timestamp, now, error);
}

static gboolean
verify_hmac (const char          *header_name,
             SoupMessageHeaders  *headers,
             GBytes              *body,
             const guint8        *key,
             gsize                key_length,
             GError             **error)
{
  const char *value = soup_message_headers_get_one (headers, header_name);
  guint8 digest[DIGEST_LENGTH], hex[DIGEST_LENGTH];
  g_autofree guint8 *given = NULL;
  gsize length;

  if (value == NULL || *value == '\0')
    return set_missing (error, header_name);
  while (*value == ' ')
    value++;
  if (g_ascii_strncasecmp (value, "sha256=", 7) == 0)
    value += 7;
  length = strlen (value);
  while (length > 0 && value[length - 1] == ' ')
    length--;

  hmac_sha256 (key, key_length, NULL, body, digest);
  if (hex_decode (value, length, hex, sizeof hex))
    {
      if (!ct_equal (digest, sizeof digest, hex, sizeof hex))
        return set_wrong (error, header_name);
      return TRUE;
    }
  given = base64_decode (value, length, &length);
  if (given == NULL || length != DIGEST_LENGTH)
    return set_malformed (error, header_name, _("the hex or base64 of an HMAC-SHA256"));
  if (!ct_equal (digest, sizeof digest, given, length))
    return set_wrong (error, header_name);
  return TRUE;
}

gboolean
tocsin_relay_signature_verify (TocsinRelaySignatureScheme   scheme,
                               const char                  *header_name,
                               SoupMessageHeaders          *headers,
                               GBytes                      *body,
                               const char                  *secret,
                               gint64                       now,
                               GError                     **error)
{
  g_autofree guint8 *key = NULL;
  gsize key_length = 0;
  gboolean ok = FALSE;

  g_return_val_if_fail (headers != NULL, FALSE);

  if (scheme == TOCSIN_RELAY_SIGNATURE_NONE)
    return TRUE;
  key = secret != NULL ? secret_key (scheme, secret, &key_length) : NULL;
  if (key == NULL || key_length == 0)
    {
      /* Cannot happen through the owner API, which checks secrets; refuse rather than accept. */
      g_set_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_WRONG,
                   _("This channel's signing secret is not usable; its owner must set a new "
                     "one"));
      return FALSE;
    }

  switch (scheme)
    {
    case TOCSIN_RELAY_SIGNATURE_STANDARD_WEBHOOKS:
      ok = verify_standard_webhooks (headers, body, key, key_length, now, error);
      break;
    case TOCSIN_RELAY_SIGNATURE_GITHUB:
      ok = verify_github (headers, body, key, key_length, error);
      break;
    case TOCSIN_RELAY_SIGNATURE_STRIPE:
      ok = verify_stripe (headers, body, key, key_length, now, error);
      break;
    case TOCSIN_RELAY_SIGNATURE_HMAC_SHA256:
      if (header_name == NULL || *header_name == '\0')
        header_name = "X-Signature";
      ok = verify_hmac (header_name, headers, body, key, key_length, error);
      break;
    case TOCSIN_RELAY_SIGNATURE_NONE:
    default:
      g_assert_not_reached ();
    }
  explicit_bzero (key, key_length);
  return ok;
}

char *
tocsin_relay_signature_delivery_id (TocsinRelaySignatureScheme  scheme,
                                    SoupMessageHeaders         *headers,
                                    JsonObject                 *vars)
{
  const char *value = NULL;

  switch (scheme)
    {
    case TOCSIN_RELAY_SIGNATURE_STANDARD_WEBHOOKS:
      value = headers ? soup_message_headers_get_one (headers, "webhook-id") : NULL;
      break;
    case TOCSIN_RELAY_SIGNATURE_GITHUB:
      value = headers ? soup_message_headers_get_one (headers, "X-GitHub-Delivery") : NULL;
      break;
    case TOCSIN_RELAY_SIGNATURE_STRIPE:
      {
        JsonNode *node = vars ? json_object_get_member (vars, "id") : NULL;

        if (node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
            json_node_get_value_type (node) == G_TYPE_STRING)
          value = json_node_get_string (node);
      }
      break;
    case TOCSIN_RELAY_SIGNATURE_HMAC_SHA256:
    case TOCSIN_RELAY_SIGNATURE_NONE:
    default:
      break;
    }
  if (value == NULL || *value == '\0')
    return NULL;
  /* Its own namespace: a delivery id never meets a sender's eventId of the same text. */
  return g_strconcat (tocsin_relay_signature_scheme_name (scheme), ":", value, NULL);
}

/* ---- owner settings ---- */

static gboolean
check_header_name (const char  *name,
                   GError     **error)
{
  gsize length = strlen (name);

  for (gsize i = 0; i < length; i++)
    if (!g_ascii_isalnum (name[i]) && strchr ("!#$%&'*+-.^_`|~", name[i]) == NULL)
      length = 0;
  if (length == 0 || length > TOCSIN_RELAY_SIGNATURE_HEADER_MAX)
    {
      g_set_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_INVALID,
                   _("The signature header must be an HTTP header name such as X-Signature "
                     "(letters, digits and dashes, at most %d)"),
                   TOCSIN_RELAY_SIGNATURE_HEADER_MAX);
      return FALSE;
    }
  return TRUE;
}

gboolean
tocsin_relay_signature_apply_spec (const TocsinRelayChannel  *current,
                                   TocsinRelayChannelSpec    *spec,
                                   char                     **generated,
                                   GError                   **error)
{
  TocsinRelaySignatureScheme old_scheme = TOCSIN_RELAY_SIGNATURE_NONE, scheme;
  const char *secret, *header;

  g_return_val_if_fail (spec != NULL, FALSE);
  g_return_val_if_fail (generated != NULL && *generated == NULL, FALSE);

  secret = spec->signature_secret;
  header = spec->signature_header;

  if (current != NULL &&
      !tocsin_relay_signature_parse_scheme (current->signature_scheme, &old_scheme, NULL))
    old_scheme = TOCSIN_RELAY_SIGNATURE_NONE;
  if (spec->signature == NULL && secret == NULL && header == NULL)
    return TRUE;
  if (spec->signature == NULL)
    scheme = old_scheme;
  else if (!tocsin_relay_signature_parse_scheme (spec->signature, &scheme, error))
    return FALSE;

  if (scheme == TOCSIN_RELAY_SIGNATURE_NONE)
    {
      if (secret != NULL && *secret != '\0')
        {
          g_set_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_INVALID,
                       _("A signing secret needs a signature scheme: standard-webhooks, "
                         "github, stripe or hmac-sha256"));
          return FALSE;
        }
      spec->signature = "";
      spec->signature_secret = "";
      spec->signature_header = "";
      return TRUE;
    }
  spec->signature = tocsin_relay_signature_scheme_name (scheme);

  if (scheme == TOCSIN_RELAY_SIGNATURE_HMAC_SHA256)
    {
      if ((header == NULL || *header == '\0') && old_scheme == scheme)
        header = NULL;   /* kept */
      else if (header == NULL || *header == '\0')
        header = "X-Signature";
      if (header != NULL && !check_header_name (header, error))
        return FALSE;
      spec->signature_header = header;
    }
  else if (header != NULL && *header != '\0')
    {
      g_set_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_INVALID,
                   _("Only the hmac-sha256 scheme takes a signature header; %s has its own"),
                   spec->signature);
      return FALSE;
    }
  else
    spec->signature_header = "";

  if (secret != NULL && *secret != '\0' && !g_str_equal (secret, "generated"))
    return tocsin_relay_signature_check_secret (scheme, secret, error);
  if (secret == NULL && scheme == old_scheme && current != NULL &&
      current->signature_secret != NULL && *current->signature_secret != '\0')
    return TRUE;   /* the same scheme keeps its secret */
  *generated = tocsin_relay_signature_new_secret (scheme, error);
  spec->signature_secret = *generated;
  return *generated != NULL;
}
