/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-signature.h: signed webhooks (Standard Webhooks, GitHub, Stripe, a plain
 * HMAC-SHA256 of the body). Pure functions: no I/O but getrandom for a new secret.
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "tocsin-relay-store.h"

G_BEGIN_DECLS

typedef enum
{
  TOCSIN_RELAY_SIGNATURE_NONE,
  TOCSIN_RELAY_SIGNATURE_STANDARD_WEBHOOKS,  /* "standard-webhooks" */
  TOCSIN_RELAY_SIGNATURE_GITHUB,             /* "github" */
  TOCSIN_RELAY_SIGNATURE_STRIPE,             /* "stripe" */
  TOCSIN_RELAY_SIGNATURE_HMAC_SHA256,        /* "hmac-sha256", in a header the owner names */
} TocsinRelaySignatureScheme;

#define TOCSIN_RELAY_SIGNATURE_ERROR (tocsin_relay_signature_error_quark ())

typedef enum
{
  TOCSIN_RELAY_SIGNATURE_ERROR_MISSING,  /* no signature (or no id/timestamp) */
  TOCSIN_RELAY_SIGNATURE_ERROR_WRONG,    /* a signature that does not match, or is malformed */
  TOCSIN_RELAY_SIGNATURE_ERROR_STALE,    /* a timestamp outside the tolerance */
  TOCSIN_RELAY_SIGNATURE_ERROR_INVALID,  /* an owner's setting that cannot be used */
} TocsinRelaySignatureError;

/* Standard Webhooks and Stripe both default to five minutes. */
#define TOCSIN_RELAY_SIGNATURE_TOLERANCE_SECONDS (5 * 60)
/* An owner's secret: at least 16 bytes (128 bits if random), at most 256. */
#define TOCSIN_RELAY_SIGNATURE_SECRET_MIN 16
#define TOCSIN_RELAY_SIGNATURE_SECRET_MAX 256
#define TOCSIN_RELAY_SIGNATURE_HEADER_MAX 100

GQuark      tocsin_relay_signature_error_quark (void);

/* "" and "none" are NONE. */
gboolean    tocsin_relay_signature_parse_scheme (const char                  *name,
                                                 TocsinRelaySignatureScheme  *scheme,
                                                 GError                     **error);
/* The name the store and the API use ("" for NONE). */
const char *tocsin_relay_signature_scheme_name  (TocsinRelaySignatureScheme   scheme);

/* A new random secret (getrandom, 192 bits) in the scheme's format: `whsec_` and base64 for
 * Standard Webhooks and Stripe, URL-safe base64 otherwise. */
char       *tocsin_relay_signature_new_secret   (TocsinRelaySignatureScheme   scheme,
                                                 GError                     **error);
gboolean    tocsin_relay_signature_check_secret (TocsinRelaySignatureScheme   scheme,
                                                 const char                  *secret,
                                                 GError                     **error);

/* Checks the signature of a request: @headers as received, @body the raw bytes as received
 * (before any decoding; NULL or empty for none), @now in unix seconds. @header_name is the
 * owner's header for HMAC_SHA256 (ignored otherwise). FALSE with a sentence for the sender in
 * TOCSIN_RELAY_SIGNATURE_ERROR when it is missing, wrong or stale. */
gboolean    tocsin_relay_signature_verify       (TocsinRelaySignatureScheme   scheme,
                                                 const char                  *header_name,
                                                 SoupMessageHeaders          *headers,
                                                 GBytes                      *body,
                                                 const char                  *secret,
                                                 gint64                       now,
                                                 GError                     **error);

/* The sender's own delivery id, which dedups redeliveries: webhook-id, X-GitHub-Delivery, or
 * the "id" of a Stripe event (from @vars, the decoded body). NULL when there is none. */
char       *tocsin_relay_signature_delivery_id  (TocsinRelaySignatureScheme   scheme,
                                                 SoupMessageHeaders          *headers,
                                                 JsonObject                  *vars);

/* For a create (@current NULL) or an update: checks the signature fields of @spec against
 * @current and completes them. The scheme is normalised; turning signatures off clears the
 * secret and header; a new scheme without a secret, or the secret "generated", gets a new one,
 * returned in *generated (to show once; NULL otherwise) and pointed to by @spec. */
gboolean    tocsin_relay_signature_apply_spec   (const TocsinRelayChannel    *current,
                                                 TocsinRelayChannelSpec      *spec,
                                                 char                       **generated,
                                                 GError                     **error);

G_END_DECLS
