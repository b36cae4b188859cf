/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-signature.c: signed webhooks, pausing, and what an owner sees of recent webhooks.
 *
 * /relay/signature/unit/...: tocsin-relay-signature.c's pure functions against each sender's
 * published vectors: Standard Webhooks' specification example, GitHub's documentation example
 * ("Validating webhook deliveries"), and Stripe's documented scheme (signed payload
 * "t.body", hex HMAC-SHA256 keyed with the whole endpoint secret), with the expected values
 * computed independently by Python's hmac module.
 * /relay/signature/...: the real relay, signing requests the way each sender does.
 */
#define G_LOG_DOMAIN "test-relay-signature"

#include "config.h"

#include <string.h>
#include <sqlite3.h>
#include <glib/gstdio.h>

#include "tocsin-message.h"
#include "tocsin-relay-signature.h"
#include "tocsin-test-relay.h"

/* ---- unit: published vectors ---- */

#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TIMESTAMP 1614265330
#define SW_BODY "{\"test\": 2432232314}"
#define SW_SIGNATURE "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

#define GH_SECRET "It's a Secret to Everybody"
#define GH_BODY "Hello, World!"
#define GH_SIGNATURE "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

#define STRIPE_SECRET "whsec_test_secret_for_tocsin_0001"
#define STRIPE_BODY "{\"id\":\"evt_1\",\"type\":\"charge.succeeded\"}"
#define STRIPE_T 1700000000
/* /usr/bin/python3: hmac.new(b"whsec_test_secret_for_tocsin_0001",
 *                            b"1700000000." + STRIPE_BODY, hashlib.sha256).hexdigest() */
#define STRIPE_V1 "16304e78ffd4ad27ea0b91ca791970c503774907c7522d160f4ae8ca32f4fa92"

#define HMAC_SECRET "generic-secret-0123456789"
#define HMAC_BODY "{\"a\":1}"
#define HMAC_HEX "9e8ae9234a8d0452f6c728ee0cf5a4daee1696d4ff528005c98f69145e4b8208"
#define HMAC_BASE64 "norpI0qNBFL2xyjuDPWk2u4WltT/UoAFyY9pFF5Lggg="

static SoupMessageHeaders *
headers_new (const char *first_name,
             ...)
{
  SoupMessageHeaders *headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  const char *name = first_name;
  va_list args;

  va_start (args, first_name);
  while (name != NULL)
    {
      soup_message_headers_append (headers, name, va_arg (args, const char *));
      name = va_arg (args, const char *);
    }
  va_end (args);
  return headers;
}

static gboolean
verify (TocsinRelaySignatureScheme  scheme,
        const char                 *header_name,
        SoupMessageHeaders         *headers,
        const char                 *body,
        const char                 *secret,
        gint64                      now,
        GError                    **error)
{
  g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

  return tocsin_relay_signature_verify (scheme, header_name, headers, bytes, secret, now, error);
}

static void
test_unit_standard_webhooks (void)
{
  g_autoptr(SoupMessageHeaders) good = NULL, several = NULL, wrong = NULL, partial = NULL;
  g_autoptr(SoupMessageHeaders) v1a = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *ts = g_strdup_printf ("%d", SW_TIMESTAMP);
  TocsinRelaySignatureScheme scheme = TOCSIN_RELAY_SIGNATURE_STANDARD_WEBHOOKS;

  good = headers_new ("webhook-id", SW_ID, "webhook-timestamp", ts,
                      "webhook-signature", SW_SIGNATURE, NULL);
  g_assert_true (verify (scheme, NULL, good, SW_BODY, SW_SECRET, SW_TIMESTAMP, &error));
  g_assert_no_error (error);
  /* The prefix is optional, as in the reference libraries. */
  g_assert_true (verify (scheme, NULL, good, SW_BODY, SW_SECRET + 6, SW_TIMESTAMP + 299, &error));
  g_assert_no_error (error);

  /* Space-separated signatures (a secret being rotated): one match is enough. */
  several = headers_new ("webhook-id", SW_ID, "webhook-timestamp", ts, "webhook-signature",
                         "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= " SW_SIGNATURE, NULL);
  g_assert_true (verify (scheme, NULL, several, SW_BODY, SW_SECRET, SW_TIMESTAMP, &error));
  g_assert_no_error (error);

  /* One byte of the body changed. */
  g_assert_false (verify (scheme, NULL, good, "{\"test\": 2432232315}", SW_SECRET, SW_TIMESTAMP,
                          &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_WRONG);
  g_assert_nonnull (strstr (error->message, "does not match"));
  g_clear_error (&error);

  /* Stale, both ways, past five minutes. */
  g_assert_false (verify (scheme, NULL, good, SW_BODY, SW_SECRET, SW_TIMESTAMP + 301, &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_STALE);
  g_clear_error (&error);
  g_assert_false (verify (scheme, NULL, good, SW_BODY, SW_SECRET, SW_TIMESTAMP - 301, &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_STALE);
  g_clear_error (&error);

  /* A forged stale one is "wrong": the signature is checked first. */
  wrong = headers_new ("webhook-id", SW_ID, "webhook-timestamp", ts, "webhook-signature",
                       "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", NULL);
  g_assert_false (verify (scheme, NULL, wrong, SW_BODY, SW_SECRET, SW_TIMESTAMP + 3600, &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_WRONG);
  g_clear_error (&error);

  partial = headers_new ("webhook-id", SW_ID, "webhook-signature", SW_SIGNATURE, NULL);
  g_assert_false (verify (scheme, NULL, partial, SW_BODY, SW_SECRET, SW_TIMESTAMP, &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "webhook-timestamp"));
  g_clear_error (&error);

  /* Only v1 signatures are ours (v1a is asymmetric). */
  v1a = headers_new ("webhook-id", SW_ID, "webhook-timestamp", ts,
                     "webhook-signature", "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", NULL);
  g_assert_false (verify (scheme, NULL, v1a, SW_BODY, SW_SECRET, SW_TIMESTAMP, &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_WRONG);
  g_clear_error (&error);

  /* Another secret. */
  g_assert_false (verify (scheme, NULL, good, SW_BODY, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                          SW_TIMESTAMP, &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_WRONG);
}

static void
test_unit_github (void)
{
  g_autoptr(SoupMessageHeaders) good = headers_new ("X-Hub-Signature-256", GH_SIGNATURE, NULL);
  g_autoptr(SoupMessageHeaders) sha1 = headers_new ("X-Hub-Signature",
                                                    "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59",
                                                    NULL);
  g_autoptr(SoupMessageHeaders) bad = headers_new ("X-Hub-Signature-256", "sha256=zz", NULL);
  g_autoptr(GError) error = NULL;
  TocsinRelaySignatureScheme scheme = TOCSIN_RELAY_SIGNATURE_GITHUB;

  g_assert_true (verify (scheme, NULL, good, GH_BODY, GH_SECRET, 0, &error));
  g_assert_no_error (error);
  g_assert_false (verify (scheme, NULL, good, "Hello, World?", GH_SECRET, 0, &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_WRONG);
  g_clear_error (&error);
  g_assert_false (verify (scheme, NULL, good, GH_BODY, "It's a Secret to Everybody!", 0, &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_WRONG);
  g_clear_error (&error);
  /* The old SHA-1 header alone is not enough. */
  g_assert_false (verify (scheme, NULL, sha1, GH_BODY, GH_SECRET, 0, &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "X-Hub-Signature-256"));
  g_clear_error (&error);
  g_assert_false (verify (scheme, NULL, bad, GH_BODY, GH_SECRET, 0, &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_WRONG);
}

static void
test_unit_stripe (void)
{
  g_autofree char *value = g_strdup_printf ("t=%d,v1=%s,v0=6ffbb59b2300aae63f27240606916"
                                            "2f12c4d7f7ffb5d9a6c5e4e6cbc2c1e4b9d", STRIPE_T,
                                            STRIPE_V1);
  g_autofree char *two = g_strdup_printf ("t=%d,v1=%064d,v1=%s", STRIPE_T, 0, STRIPE_V1);
  g_autoptr(SoupMessageHeaders) good = headers_new ("Stripe-Signature", value, NULL);
  g_autoptr(SoupMessageHeaders) several = headers_new ("Stripe-Signature", two, NULL);
  g_autoptr(SoupMessageHeaders) no_t = headers_new ("Stripe-Signature", "v1=" STRIPE_V1, NULL);
  g_autoptr(SoupMessageHeaders) none = headers_new ("Content-Type", "application/json", NULL);
  g_autoptr(GError) error = NULL;
  TocsinRelaySignatureScheme scheme = TOCSIN_RELAY_SIGNATURE_STRIPE;

  g_assert_true (verify (scheme, NULL, good, STRIPE_BODY, STRIPE_SECRET, STRIPE_T + 10, &error));
  g_assert_no_error (error);
  g_assert_true (verify (scheme, NULL, several, STRIPE_BODY, STRIPE_SECRET, STRIPE_T, &error));
  g_assert_no_error (error);
  /* Stripe keys the HMAC with the whole secret, whsec_ included. */
  g_assert_false (verify (scheme, NULL, good, STRIPE_BODY, STRIPE_SECRET + 6, STRIPE_T, &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_WRONG);
  g_clear_error (&error);
  g_assert_false (verify (scheme, NULL, good, STRIPE_BODY, STRIPE_SECRET, STRIPE_T + 301, &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_STALE);
  g_clear_error (&error);
  g_assert_false (verify (scheme, NULL, no_t, STRIPE_BODY, STRIPE_SECRET, STRIPE_T, &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_WRONG);
  g_clear_error (&error);
  g_assert_false (verify (scheme, NULL, none, STRIPE_BODY, STRIPE_SECRET, STRIPE_T, &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_MISSING);
}

static void
test_unit_hmac (void)
{
  g_autoptr(SoupMessageHeaders) hex = headers_new ("X-Tocsin-Signature", HMAC_HEX, NULL);
  g_autoptr(SoupMessageHeaders) prefixed = headers_new ("X-Tocsin-Signature",
                                                        "sha256=" HMAC_HEX, NULL);
  g_autoptr(SoupMessageHeaders) b64 = headers_new ("X-Tocsin-Signature", HMAC_BASE64, NULL);
  g_autoptr(GError) error = NULL;
  TocsinRelaySignatureScheme scheme = TOCSIN_RELAY_SIGNATURE_HMAC_SHA256;

  g_assert_true (verify (scheme, "X-Tocsin-Signature", hex, HMAC_BODY, HMAC_SECRET, 0, &error));
  g_assert_true (verify (scheme, "x-tocsin-signature", prefixed, HMAC_BODY, HMAC_SECRET, 0,
                         &error));
  g_assert_true (verify (scheme, "X-Tocsin-Signature", b64, HMAC_BODY, HMAC_SECRET, 0, &error));
  g_assert_no_error (error);
  g_assert_false (verify (scheme, "X-Tocsin-Signature", b64, "{\"a\":2}", HMAC_SECRET, 0,
                          &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_WRONG);
  g_clear_error (&error);
  /* In another header than the owner named: missing. */
  g_assert_false (verify (scheme, "X-Other", b64, HMAC_BODY, HMAC_SECRET, 0, &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "X-Other"));
}

static void
test_unit_secrets (void)
{
  static const TocsinRelaySignatureScheme all[] = {
    TOCSIN_RELAY_SIGNATURE_STANDARD_WEBHOOKS, TOCSIN_RELAY_SIGNATURE_GITHUB,
    TOCSIN_RELAY_SIGNATURE_STRIPE, TOCSIN_RELAY_SIGNATURE_HMAC_SHA256,
  };
  TocsinRelaySignatureScheme scheme;
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    {
      g_autofree char *a = tocsin_relay_signature_new_secret (all[i], &error);
      g_autofree char *b = tocsin_relay_signature_new_secret (all[i], &error);

      g_assert_no_error (error);
      g_assert_cmpstr (a, !=, b);
      g_assert_true (tocsin_relay_signature_check_secret (all[i], a, &error));
      g_assert_no_error (error);
      g_assert_true (tocsin_relay_signature_parse_scheme (
                       tocsin_relay_signature_scheme_name (all[i]), &scheme, &error));
      g_assert_cmpint (scheme, ==, all[i]);
      if (all[i] == TOCSIN_RELAY_SIGNATURE_STANDARD_WEBHOOKS)
        {
          gsize length = 0;
          g_autofree guint8 *key = g_base64_decode (a + 6, &length);

          g_assert_true (g_str_has_prefix (a, "whsec_"));
          g_assert_cmpuint (length, ==, 24);   /* 192 bits */
        }
    }
  g_assert_false (tocsin_relay_signature_check_secret (TOCSIN_RELAY_SIGNATURE_GITHUB, "short",
                                                       &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (tocsin_relay_signature_check_secret (TOCSIN_RELAY_SIGNATURE_STANDARD_WEBHOOKS,
                                                       "whsec_not base64!!", &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (tocsin_relay_signature_parse_scheme ("gitlab", &scheme, &error));
  g_assert_error (error, TOCSIN_RELAY_SIGNATURE_ERROR, TOCSIN_RELAY_SIGNATURE_ERROR_INVALID);
}

static void
test_unit_delivery_id (void)
{
  g_autoptr(SoupMessageHeaders) headers = headers_new ("webhook-id", "msg_1",
                                                       "X-GitHub-Delivery", "72d3162e", NULL);
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autofree char *sw = NULL, *gh = NULL, *stripe = NULL, *hmac = NULL;

  json_object_set_string_member (vars, "id", "evt_1");
  sw = tocsin_relay_signature_delivery_id (TOCSIN_RELAY_SIGNATURE_STANDARD_WEBHOOKS, headers,
                                           vars);
  gh = tocsin_relay_signature_delivery_id (TOCSIN_RELAY_SIGNATURE_GITHUB, headers, vars);
  stripe = tocsin_relay_signature_delivery_id (TOCSIN_RELAY_SIGNATURE_STRIPE, headers, vars);
  hmac = tocsin_relay_signature_delivery_id (TOCSIN_RELAY_SIGNATURE_HMAC_SHA256, headers, vars);
  g_assert_cmpstr (sw, ==, "standard-webhooks:msg_1");
  g_assert_cmpstr (gh, ==, "github:72d3162e");
  g_assert_cmpstr (stripe, ==, "stripe:evt_1");
  g_assert_null (hmac);
}

/* ---- through the real relay ---- */

typedef struct
{
  TocsinTestRelay *relay;
  JsonObject      *channel;     /* the create answer */
  char            *owner;
  char            *hook;
  char            *path;        /* /v1/channels/ID */
  SoupWebsocketConnection *ws;
  GPtrArray       *frames;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->relay = tocsin_test_relay_start (NULL, NULL);
  f->frames = g_ptr_array_new_with_free_func (g_free);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  if (f->ws && soup_websocket_connection_get_state (f->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (f->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  g_clear_object (&f->ws);
  g_clear_pointer (&f->frames, g_ptr_array_unref);
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
  g_clear_pointer (&f->channel, json_object_unref);
  g_free (f->owner);
  g_free (f->hook);
  g_free (f->path);
}

/* An owner API call that must answer @expected. */
static JsonObject *
call (Fixture    *f,
      const char *method,
      const char *path,
      const char *body,
      guint       expected)
{
  g_autofree char *auth = f->owner ? g_strdup_printf ("Bearer %s", f->owner) : NULL;
  const char *headers[] = { "Authorization", auth, NULL };
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  node = tocsin_test_http_json (f->relay, method, path, body ? "application/json" : NULL, body,
                                auth ? headers : NULL, &status);
  if (status != expected)
    {
      g_autofree char *text = json_to_string (node, FALSE);

      g_error ("%s %s: expected %u, got %u: %s", method, path, expected, status, text);
    }
  return json_object_ref (json_node_get_object (node));
}

/* Creates the channel (body: the JSON of the create) and subscribes to it. */
static void
create (Fixture    *f,
        const char *body)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *ws_path = NULL;

  f->channel = call (f, "POST", "/v1/channels", body, 201);
  f->owner = g_strdup (json_object_get_string_member (f->channel, "owner_key"));
  f->hook = g_strdup_printf ("/t/%s", json_object_get_string_member (f->channel,
                                                                     "trigger_token"));
  f->path = g_strdup_printf ("/v1/channels/%" G_GINT64_FORMAT,
                             json_object_get_int_member (f->channel, "id"));
  ws_path = g_strdup_printf ("/s/%s/ws", json_object_get_string_member (f->channel,
                                                                        "subscribe_token"));
  f->ws = tocsin_test_websocket_connect (f->relay, ws_path, &error);
  g_assert_no_error (error);
  tocsin_test_websocket_collect (f->ws, f->frames);
}

/* The titles of the messages the subscriber received, in order, joined by "|". */
static char *
received (Fixture *f)
{
  g_autoptr(GString) titles = g_string_new (NULL);

  for (guint i = 0; i < f->frames->len; i++)
    {
      const char *frame = f->frames->pdata[i];
      g_autoptr(TocsinMessage) message = tocsin_message_new_from_data (frame, strlen (frame),
                                                                       NULL);

      if (message == NULL)
        continue;
      if (titles->len > 0)
        g_string_append_c (titles, '|');
      g_string_append (titles, message->title);
    }
  return g_string_free (g_steal_pointer (&titles), FALSE);
}

static guint
n_received (Fixture *f)
{
  guint n = 0;

  for (guint i = 0; i < f->frames->len; i++)
    {
      const char *frame = f->frames->pdata[i];
      g_autoptr(TocsinMessage) message = tocsin_message_new_from_data (frame, strlen (frame),
                                                                       NULL);

      n += message != NULL;
    }
  return n;
}

/* Posts @body to the channel's webhook with @headers; returns the answer, of @expected status. */
static JsonObject *
post (Fixture            *f,
      const char         *type,
      const char         *body,
      const char * const *headers,
      guint               expected)
{
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  node = tocsin_test_http_json (f->relay, "POST", f->hook, type, body, headers, &status);
  if (status != expected)
    {
      g_autofree char *text = json_to_string (node, FALSE);

      g_error ("POST %s: expected %u, got %u: %s", f->hook, expected, status, text);
    }
  return json_object_ref (json_node_get_object (node));
}

static char *
hmac_hex (const char *key,
          const char *data)
{
  return g_compute_hmac_for_string (G_CHECKSUM_SHA256, (const guchar *) key, strlen (key),
                                    data, -1);
}

/* Standard Webhooks, signed as its reference libraries sign. */
static char *
sign_standard (const char *secret,
               const char *id,
               gint64      timestamp,
               const char *body)
{
  gsize key_length = 0;
  g_autofree guint8 *key = g_base64_decode (secret + strlen ("whsec_"), &key_length);
  g_autofree char *content = g_strdup_printf ("%s.%" G_GINT64_FORMAT ".%s", id, timestamp, body);
  g_autoptr(GHmac) hmac = g_hmac_new (G_CHECKSUM_SHA256, key, key_length);
  guint8 digest[32];
  gsize length = sizeof digest;
  g_autofree char *encoded = NULL;

  g_hmac_update (hmac, (const guchar *) content, strlen (content));
  g_hmac_get_digest (hmac, digest, &length);
  encoded = g_base64_encode (digest, length);
  return g_strdup_printf ("v1,%s", encoded);
}

static JsonObject *
post_standard (Fixture    *f,
               const char *secret,
               const char *id,
               gint64      timestamp,
               const char *body,
               guint       expected)
{
  g_autofree char *signature = secret ? sign_standard (secret, id, timestamp, body) : NULL;
  g_autofree char *ts = g_strdup_printf ("%" G_GINT64_FORMAT, timestamp);
  const char *headers[] = { "webhook-id", id, "webhook-timestamp", ts,
                            "webhook-signature", signature, NULL };

  return post (f, "application/json", body, headers, expected);
}

static void
assert_sentence (JsonObject *reply,
                 const char *part)
{
  const char *sentence = json_object_get_string_member (reply, "error");

  if (strstr (sentence, part) == NULL)
    g_error ("“%s” does not say “%s”", sentence, part);
}

static void
test_standard_webhooks (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(JsonObject) ok = NULL, missing = NULL, wrong = NULL, stale = NULL, again = NULL;
  g_autoptr(JsonObject) got = NULL, next = NULL;
  g_autofree char *secret = NULL, *titles = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  const char *unsigned_headers[] = { "webhook-id", "msg_x", NULL };

  create (f, "{\"name\": \"SW\", \"title\": \"{{n}}\", \"signature\": \"standard-webhooks\"}");
  /* Generated by the relay, shown once. */
  secret = g_strdup (json_object_get_string_member (f->channel, "signature_secret"));
  g_assert_true (g_str_has_prefix (secret, "whsec_"));
  g_assert_cmpstr (json_object_get_string_member (f->channel, "signature"), ==,
                   "standard-webhooks");
  got = call (f, "GET", f->path, NULL, 200);
  g_assert_false (json_object_has_member (got, "signature_secret"));
  g_assert_cmpstr (json_object_get_string_member (got, "signature"), ==, "standard-webhooks");

  /* Missing, wrong, stale: 401 saying which; nothing stored or delivered. */
  missing = post (f, "application/json", "{\"n\": \"forged\"}", unsigned_headers, 401);
  assert_sentence (missing, "webhook-signature header is missing");
  wrong = post_standard (f, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "msg_w", now,
                         "{\"n\": \"forged\"}", 401);
  assert_sentence (wrong, "does not match");
  stale = post_standard (f, secret, "msg_s", now - 600, "{\"n\": \"stale\"}", 401);
  assert_sentence (stale, "timestamp");

  ok = post_standard (f, secret, "msg_1", now, "{\"n\": \"one\"}", 200);
  g_assert_cmpint (json_object_get_int_member (ok, "id"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (ok, "subscribers"), ==, 1);

  /* A redelivery: same webhook-id, a new timestamp and signature. It rings once. */
  again = post_standard (f, secret, "msg_1", now + 1, "{\"n\": \"one\"}", 200);
  g_assert_true (json_object_get_boolean_member (again, "duplicate"));
  g_assert_cmpint (json_object_get_int_member (again, "id"), ==, 1);

  next = post_standard (f, secret, "msg_2", now, "{\"n\": \"two\"}", 200);
  g_assert_cmpint (json_object_get_int_member (next, "id"), ==, 2);
  TOCSIN_WAIT_UNTIL (n_received (f) >= 2);
  titles = received (f);
  g_assert_cmpstr (titles, ==, "one|two");
}

static void
test_github (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(JsonObject) ok = NULL, again = NULL, wrong = NULL, missing = NULL, next = NULL;
  g_autofree char *titles = NULL;
  const char *good[] = { "X-Hub-Signature-256", GH_SIGNATURE, "X-GitHub-Delivery", "d-1",
                         "X-GitHub-Event", "ping", NULL };
  const char *other_delivery[] = { "X-Hub-Signature-256", GH_SIGNATURE, "X-GitHub-Delivery",
                                   "d-2", "X-GitHub-Event", "ping", NULL };
  const char *none[] = { "X-GitHub-Delivery", "d-3", NULL };

  /* The owner gives the secret (GitHub's documentation example). */
  create (f, "{\"name\": \"GH\", \"title\": \"{{header[\\\"x-github-event\\\"]}} "
             "{{bodyAsText}}\","
             " \"signature\": \"github\", \"signature_secret\": \"" GH_SECRET "\"}");
  g_assert_false (json_object_has_member (f->channel, "signature_secret"));

  missing = post (f, "text/plain", GH_BODY, none, 401);
  assert_sentence (missing, "X-Hub-Signature-256");
  wrong = post (f, "text/plain", "Hello, World?", good, 401);
  assert_sentence (wrong, "does not match");

  ok = post (f, "text/plain", GH_BODY, good, 200);
  again = post (f, "text/plain", GH_BODY, good, 200);
  g_assert_true (json_object_get_boolean_member (again, "duplicate"));
  next = post (f, "text/plain", GH_BODY, other_delivery, 200);
  g_assert_false (json_object_has_member (next, "duplicate"));
  TOCSIN_WAIT_UNTIL (n_received (f) >= 2);
  titles = received (f);
  g_assert_cmpstr (titles, ==, "ping Hello, World!|ping Hello, World!");
}

/* A channel that requires a signature takes nothing unsigned from the other ways in (ntfy's and
 * Gotify's publish APIs cannot sign), and unsigned requests never use up its rate limit: after
 * more of them than its burst, the sender's signed one still rings. */
static void
test_ntfy_refused (Fixture       *f,
                   gconstpointer  data)
{
  const char *good[] = { "X-Hub-Signature-256", GH_SIGNATURE, "X-GitHub-Delivery", "d-1",
                         "X-GitHub-Event", "ping", NULL };
  const char *none[] = { "X-GitHub-Delivery", "d-x", NULL };
  g_autofree char *ntfy = NULL, *gotify = NULL;
  g_autoptr(GBytes) answer = NULL;
  const char *token;

  create (f, "{\"name\": \"GH\", \"title\": \"{{bodyAsText}}\","
             " \"signature\": \"github\", \"signature_secret\": \"" GH_SECRET "\"}");
  token = json_object_get_string_member (f->channel, "trigger_token");
  ntfy = g_strdup_printf ("/%s", token);
  gotify = g_strdup_printf ("/message?token=%s", token);
  g_assert_cmpuint (tocsin_test_http (f->relay, "POST", ntfy, "text/plain", "forged", -1, NULL,
                                      &answer, NULL), ==, 401);
  g_assert_nonnull (strstr (g_bytes_get_data (answer, NULL), "/t/"));
  g_clear_pointer (&answer, g_bytes_unref);
  g_assert_cmpuint (tocsin_test_http (f->relay, "POST", gotify, "application/json",
                                      "{\"message\": \"forged\"}", -1, NULL, &answer, NULL),
                    ==, 401);

  /* More unsigned requests than the burst (30 by default): each 401, none a 429. */
  for (guint i = 0; i < 40; i++)
    {
      g_autoptr(JsonObject) refused = post (f, "text/plain", GH_BODY, none, 401);
    }
  {
    g_autoptr(JsonObject) ok = post (f, "text/plain", GH_BODY, good, 200);
  }
  TOCSIN_WAIT_UNTIL (n_received (f) >= 1);
  g_assert_cmpuint (n_received (f), ==, 1);
}

static void
test_stripe_and_rotation (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(JsonObject) ok = NULL, again = NULL, rotated = NULL, old = NULL, fresh = NULL;
  g_autofree char *secret = NULL, *new_secret = NULL, *payload = NULL, *v1 = NULL;
  g_autofree char *header = NULL, *payload2 = NULL, *v1b = NULL, *header2 = NULL;
  g_autofree char *titles = NULL, *rotate_path = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  const char *body = "{\"id\":\"evt_9\",\"type\":\"invoice.paid\"}";
  const char *body2 = "{\"id\":\"evt_10\",\"type\":\"invoice.paid\"}";

  create (f, "{\"name\": \"Stripe\", \"title\": \"{{type}} {{id}}\", \"signature\": \"stripe\"}");
  secret = g_strdup (json_object_get_string_member (f->channel, "signature_secret"));
  g_assert_true (g_str_has_prefix (secret, "whsec_"));

  payload = g_strdup_printf ("%" G_GINT64_FORMAT ".%s", now, body);
  v1 = hmac_hex (secret, payload);
  header = g_strdup_printf ("t=%" G_GINT64_FORMAT ",v1=%s", now, v1);
  {
    const char *headers[] = { "Stripe-Signature", header, NULL };

    ok = post (f, "application/json", body, headers, 200);
    /* Stripe retries the same event: its "id" dedups. */
    again = post (f, "application/json", body, headers, 200);
    g_assert_true (json_object_get_boolean_member (again, "duplicate"));
  }

  /* A new secret, shown once; the old one stops working at once. */
  rotate_path = g_strdup_printf ("%s/rotate-signature", f->path);
  rotated = call (f, "POST", rotate_path, NULL, 200);
  new_secret = g_strdup (json_object_get_string_member (rotated, "signature_secret"));
  g_assert_cmpstr (new_secret, !=, secret);
  payload2 = g_strdup_printf ("%" G_GINT64_FORMAT ".%s", now, body2);
  v1b = hmac_hex (secret, payload2);
  header2 = g_strdup_printf ("t=%" G_GINT64_FORMAT ",v1=%s", now, v1b);
  {
    const char *headers[] = { "Stripe-Signature", header2, NULL };

    old = post (f, "application/json", body2, headers, 401);
    assert_sentence (old, "does not match");
  }
  g_free (v1b);
  g_free (header2);
  v1b = hmac_hex (new_secret, payload2);
  header2 = g_strdup_printf ("t=%" G_GINT64_FORMAT ",v1=%s", now, v1b);
  {
    const char *headers[] = { "Stripe-Signature", header2, NULL };

    fresh = post (f, "application/json", body2, headers, 200);
  }
  TOCSIN_WAIT_UNTIL (n_received (f) >= 2);
  titles = received (f);
  g_assert_cmpstr (titles, ==, "invoice.paid evt_9|invoice.paid evt_10");
}

static void
test_hmac_and_settings (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(JsonObject) ok = NULL, bad = NULL, off = NULL, unsigned_ok = NULL, refused = NULL;
  g_autoptr(JsonObject) wrong_header = NULL;
  g_autofree char *titles = NULL;
  const char *good[] = { "X-Tocsin-Signature", HMAC_BASE64, NULL };

  create (f, "{\"name\": \"Hmac\", \"title\": \"a={{a}}\", \"signature\": \"hmac-sha256\","
             " \"signature_secret\": \"" HMAC_SECRET "\","
             " \"signature_header\": \"X-Tocsin-Signature\"}");
  g_assert_cmpstr (json_object_get_string_member (f->channel, "signature_header"), ==,
                   "X-Tocsin-Signature");
  ok = post (f, "application/json", HMAC_BODY, good, 200);
  bad = post (f, "application/json", "{\"a\":2}", good, 401);
  assert_sentence (bad, "X-Tocsin-Signature");

  /* Settings an owner must fix get a 400 sentence. */
  refused = call (f, "PATCH", f->path, "{\"signature_secret\": \"short\"}", 400);
  assert_sentence (refused, "too short");
  g_clear_pointer (&refused, json_object_unref);
  refused = call (f, "PATCH", f->path, "{\"signature\": \"gitlab\"}", 400);
  assert_sentence (refused, "Unknown signature scheme");
  wrong_header = call (f, "PATCH", f->path, "{\"signature\": \"github\", "
                       "\"signature_header\": \"X-Mine\"}", 400);

  /* Turned off: unsigned webhooks ring again. */
  off = call (f, "PATCH", f->path, "{\"signature\": \"none\"}", 200);
  g_assert_cmpstr (json_object_get_string_member (off, "signature"), ==, "none");
  unsigned_ok = post (f, "application/json", "{\"a\":3}", NULL, 200);
  TOCSIN_WAIT_UNTIL (n_received (f) >= 2);
  titles = received (f);
  g_assert_cmpstr (titles, ==, "a=1|a=3");
}

static GBytes *
gzip (const char *data)
{
  g_autoptr(GZlibCompressor) compressor = g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP,
                                                                 9);
  g_autoptr(GInputStream) source = g_memory_input_stream_new_from_data (data, strlen (data),
                                                                        NULL);
  g_autoptr(GInputStream) stream = g_converter_input_stream_new (source,
                                                                 G_CONVERTER (compressor));
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr(GError) error = NULL;

  g_output_stream_splice (out, stream, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error);
  g_assert_no_error (error);
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

/* The signature covers the body as it arrived: a gzip body is signed compressed, and checked
 * before it is decompressed. */
static void
test_raw_body (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GBytes) packed = gzip ("{\"a\":7}");
  g_autofree char *over_packed = NULL, *over_plain = NULL, *titles = NULL;
  GBytes *response = NULL;
  guint status;

  create (f, "{\"name\": \"Gz\", \"title\": \"a={{a}}\", \"signature\": \"github\","
             " \"signature_secret\": \"" HMAC_SECRET "\"}");
  {
    g_autoptr(GBytes) key = g_bytes_new_static (HMAC_SECRET, strlen (HMAC_SECRET));

    over_packed = g_compute_hmac_for_bytes (G_CHECKSUM_SHA256, key, packed);
  }
  over_plain = hmac_hex (HMAC_SECRET, "{\"a\":7}");
  {
    g_autofree char *value = g_strdup_printf ("sha256=%s", over_plain);
    const char *headers[] = { "Content-Encoding", "gzip", "X-Hub-Signature-256", value, NULL };

    status = tocsin_test_http (f->relay, "POST", f->hook, "application/json",
                               g_bytes_get_data (packed, NULL), g_bytes_get_size (packed),
                               headers, &response, NULL);
    g_assert_cmpuint (status, ==, 401);
    g_assert_nonnull (strstr (g_bytes_get_data (response, NULL), "does not match"));
    g_clear_pointer (&response, g_bytes_unref);
  }
  {
    g_autofree char *value = g_strdup_printf ("sha256=%s", over_packed);
    const char *headers[] = { "Content-Encoding", "gzip", "X-Hub-Signature-256", value, NULL };

    status = tocsin_test_http (f->relay, "POST", f->hook, "application/json",
                               g_bytes_get_data (packed, NULL), g_bytes_get_size (packed),
                               headers, NULL, NULL);
    g_assert_cmpuint (status, ==, 200);
  }
  TOCSIN_WAIT_UNTIL (n_received (f) >= 1);
  titles = received (f);
  g_assert_cmpstr (titles, ==, "a=7");
}

/* Item 4: pause, the subscriber count, and the recent webhooks an owner sees. */
static void
test_pause_and_recent (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(JsonObject) paused = NULL, refused = NULL, resumed = NULL, ok = NULL;
  g_autoptr(JsonObject) recent = NULL, cli_paused = NULL;
  g_autofree char *titles = NULL, *text = NULL, *recent_path = NULL, *id = NULL;
  g_autofree char *out = NULL, *err = NULL;
  JsonArray *webhooks;

  create (f, "{\"name\": \"Pausable\", \"title\": \"{{n}}\"}");
  recent_path = g_strdup_printf ("%s/webhooks", f->path);
  recent = call (f, "GET", recent_path, NULL, 200);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (recent, "webhooks")),
                    ==, 0);
  g_clear_pointer (&recent, json_object_unref);

  paused = call (f, "PATCH", f->path, "{\"paused\": true}", 200);
  g_assert_true (json_object_get_boolean_member (paused, "paused"));
  refused = post (f, "application/json", "{\"n\": \"while paused SECRET-BODY-MARK\"}", NULL, 423);
  assert_sentence (refused, "paused");

  resumed = call (f, "PATCH", f->path, "{\"paused\": false}", 200);
  g_assert_false (json_object_get_boolean_member (resumed, "paused"));
  ok = post (f, "application/json", "{\"n\": \"after\"}", NULL, 200);
  g_assert_cmpint (json_object_get_int_member (ok, "id"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (ok, "subscribers"), ==, 1);
  TOCSIN_WAIT_UNTIL (n_received (f) >= 1);
  titles = received (f);
  g_assert_cmpstr (titles, ==, "after");

  /* Newest first, with status and sentence, never the body. */
  recent = call (f, "GET", recent_path, NULL, 200);
  webhooks = json_object_get_array_member (recent, "webhooks");
  g_assert_cmpuint (json_array_get_length (webhooks), ==, 2);
  g_assert_cmpint (json_object_get_int_member (json_array_get_object_element (webhooks, 0),
                                               "status"), ==, 200);
  g_assert_nonnull (strstr (json_object_get_string_member (
                              json_array_get_object_element (webhooks, 0), "sentence"),
                            "1 subscriber"));
  g_assert_cmpint (json_object_get_int_member (json_array_get_object_element (webhooks, 1),
                                               "status"), ==, 423);
  g_assert_true (json_object_has_member (json_array_get_object_element (webhooks, 1), "time"));
  {
    g_autoptr(JsonNode) node = json_node_init_object (json_node_alloc (), recent);

    text = json_to_string (node, FALSE);
  }
  g_assert_null (strstr (text, "SECRET-BODY-MARK"));

  /* At most 20 are kept. */
  for (guint i = 0; i < 25; i++)
    {
      g_autofree char *path = g_strdup_printf ("%s?n=%u", f->hook, i);

      g_assert_cmpuint (tocsin_test_http (f->relay, "GET", path, NULL, NULL, 0, NULL, NULL,
                                          NULL), ==, 200);
    }
  g_clear_pointer (&recent, json_object_unref);
  recent = call (f, "GET", recent_path, NULL, 200);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (recent, "webhooks")),
                    ==, 20);

  /* The CLI pauses too (another process, the same database). */
  id = g_strdup_printf ("%" G_GINT64_FORMAT, json_object_get_int_member (f->channel, "id"));
  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &out, &err, "channel", "pause", id, NULL),
                   ==, 0);
  cli_paused = post (f, "application/json", "{\"n\": \"x\"}", NULL, 423);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &out, &err, "channel", "resume", id, NULL),
                   ==, 0);
  g_assert_cmpuint (tocsin_test_http (f->relay, "GET", f->hook, NULL, NULL, 0, NULL, NULL, NULL),
                    ==, 200);
}

/* `tocsin-relay channel create/edit --signature=...` */
static void
test_cli (Fixture       *f,
          gconstpointer  data)
{
  g_autofree char *out = NULL, *err = NULL, *id = NULL, *secret = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *created;
  const char *headers[3] = { "X-Hub-Signature-256", NULL, NULL };
  g_autofree char *sig = NULL, *hook = NULL, *hex = NULL;
  int status;

  status = tocsin_test_relay_cli (f->relay, &out, &err, "channel", "create", "--json",
                                  "--name=CLI", "--signature=github", NULL);
  g_assert_cmpint (status, ==, 0);
  g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
  created = json_node_get_object (json_parser_get_root (parser));
  secret = g_strdup (json_object_get_string_member (created, "signature_secret"));
  g_assert_cmpuint (strlen (secret), >=, 22);
  g_assert_null (strstr (err, secret));
  id = g_strdup_printf ("%" G_GINT64_FORMAT, json_object_get_int_member (created, "id"));
  hook = g_strdup_printf ("/t/%s", json_object_get_string_member (created, "trigger_token"));

  hex = hmac_hex (secret, "{}");
  sig = g_strdup_printf ("sha256=%s", hex);
  headers[1] = sig;
  g_assert_cmpuint (tocsin_test_http (f->relay, "POST", hook, "application/json", "{}", -1,
                                      headers, NULL, NULL), ==, 200);
  g_assert_cmpuint (tocsin_test_http (f->relay, "POST", hook, "application/json", "{}", -1,
                                      NULL, NULL, NULL), ==, 401);

  /* Turned off from the CLI. */
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  status = tocsin_test_relay_cli (f->relay, &out, &err, "channel", "edit", id,
                                  "--signature=none", NULL);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpuint (tocsin_test_http (f->relay, "POST", hook, "application/json", "{}", -1,
                                      NULL, NULL, NULL), ==, 200);

  /* A bad setting is refused with a sentence. */
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  status = tocsin_test_relay_cli (f->relay, &out, &err, "channel", "edit", id,
                                  "--signature=stripe", "--signature-secret=short", NULL);
  g_assert_cmpint (status, !=, 0);
  g_assert_nonnull (strstr (err, "too short"));
}

/* Signing secrets never reach a log: a relay with every debug message on is taken through
 * creating, ringing (good, wrong, stale), editing and rotating; nothing it printed holds a
 * secret or a third of one. */
static void
test_secret_never_logged (void)
{
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-sig-log-XXXXXX");
  g_autofree char *log_path = g_build_filename (dir, "stderr.log", NULL);
  g_autofree char *log = NULL, *rotate_path = NULL;
  g_autoptr(GPtrArray) secrets = g_ptr_array_new_with_free_func (g_free);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  Fixture fx = { 0 }, *f = &fx;

  /* The relay's own domain: "all" would also print this test's debug lines into its TAP. */
  g_setenv ("G_MESSAGES_DEBUG", "tocsin-relay", TRUE);
  f->relay = tocsin_test_relay_new (NULL, NULL);
  f->relay->stderr_path = g_strdup (log_path);
  tocsin_test_relay_spawn (f->relay);
  f->frames = g_ptr_array_new_with_free_func (g_free);

  create (f, "{\"name\": \"Logged\", \"signature\": \"standard-webhooks\"}");
  g_ptr_array_add (secrets, g_strdup (json_object_get_string_member (f->channel,
                                                                     "signature_secret")));
  json_object_unref (post_standard (f, secrets->pdata[0], "msg_a", now, "{}", 200));
  json_object_unref (post_standard (f, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "msg_b", now,
                                    "{}", 401));
  json_object_unref (post_standard (f, secrets->pdata[0], "msg_c", now - 900, "{}", 401));
  json_object_unref (call (f, "PATCH", f->path, "{\"signature\": \"hmac-sha256\","
                           " \"signature_secret\": \"owner-given-secret-0123456789\"}", 200));
  g_ptr_array_add (secrets, g_strdup ("owner-given-secret-0123456789"));
  rotate_path = g_strdup_printf ("%s/rotate-signature", f->path);
  {
    g_autoptr(JsonObject) rotated = call (f, "POST", rotate_path, NULL, 200);

    g_ptr_array_add (secrets, g_strdup (json_object_get_string_member (rotated,
                                                                       "signature_secret")));
  }
  tocsin_test_relay_stop (f->relay, FALSE);
  g_unsetenv ("G_MESSAGES_DEBUG");

  g_assert_true (g_file_get_contents (log_path, &log, NULL, NULL));
  g_assert_nonnull (strstr (log, "tocsin-relay"));   /* it did log */
  for (guint i = 0; i < secrets->len; i++)
    {
      const char *secret = secrets->pdata[i];
      gsize third = strlen (secret) / 3;

      for (gsize at = 0; at + third <= strlen (secret); at += third)
        {
          g_autofree char *part = g_strndup (secret + at, third);

          if (strstr (log, part) != NULL)
            g_error ("a piece of a signing secret is in the relay's log: %s", part);
        }
    }
  fixture_teardown (f, NULL);
  tocsin_test_rmdir_recursive (dir);
}

/* A database from before this change (schema version 1) opens and keeps its channels. */
static void
test_migrate_v1 (void)
{
  static const char v1_channels[] =
    "CREATE TABLE channels ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, version INTEGER NOT NULL DEFAULT 1,"
    "  name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',"
    "  title TEXT NOT NULL DEFAULT '', body TEXT NOT NULL DEFAULT '',"
    "  link TEXT NOT NULL DEFAULT '', condition TEXT NOT NULL DEFAULT '',"
    "  trigger_token TEXT NOT NULL, trigger_hash TEXT NOT NULL UNIQUE,"
    "  subscribe_token TEXT NOT NULL, subscribe_hash TEXT NOT NULL UNIQUE,"
    "  owner_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL,"
    "  last_id INTEGER NOT NULL DEFAULT 0);"
    "PRAGMA user_version=1;";
  const char *trigger = "TRIGGERtokenTRIGGERtokenTRIGGER0";
  const char *subscribe = "SUBSCRIBEtokenSUBSCRIBEtokenSUB0";
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-v1-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "relay.db", NULL);
  g_autofree char *trigger_hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, trigger, -1);
  g_autofree char *subscribe_hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, subscribe,
                                                                   -1);
  g_autofree char *insert = NULL, *hook = NULL, *out = NULL, *err = NULL;
  g_autoptr(TocsinTestRelay) relay = NULL;
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, v1_channels, NULL, NULL, NULL), ==, SQLITE_OK);
  insert = g_strdup_printf ("INSERT INTO channels (name, title, trigger_token, trigger_hash,"
                            " subscribe_token, subscribe_hash, owner_hash, created_at)"
                            " VALUES ('Old one', 'old {{n}}', '%s', '%s', '%s', '%s', 'x', 1)",
                            trigger, trigger_hash, subscribe, subscribe_hash);
  g_assert_cmpint (sqlite3_exec (db, insert, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
  g_chmod (path, 0600);

  relay = tocsin_test_relay_start (dir, NULL);
  hook = g_strdup_printf ("/t/%s?n=1", trigger);
  g_assert_cmpuint (tocsin_test_http (relay, "GET", hook, NULL, NULL, 0, NULL, NULL, NULL), ==,
                    200);
  g_assert_cmpint (tocsin_test_relay_cli (relay, &out, &err, "channel", "list", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Old one"));
  tocsin_test_relay_free (g_steal_pointer (&relay));
  tocsin_test_rmdir_recursive (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/relay/signature/unit/standard-webhooks", test_unit_standard_webhooks);
  g_test_add_func ("/relay/signature/unit/github", test_unit_github);
  g_test_add_func ("/relay/signature/unit/stripe", test_unit_stripe);
  g_test_add_func ("/relay/signature/unit/hmac", test_unit_hmac);
  g_test_add_func ("/relay/signature/unit/secrets", test_unit_secrets);
  g_test_add_func ("/relay/signature/unit/delivery-id", test_unit_delivery_id);
#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/relay/signature/standard-webhooks", test_standard_webhooks);
  ADD ("/relay/signature/github", test_github);
  ADD ("/relay/signature/stripe-and-rotation", test_stripe_and_rotation);
  ADD ("/relay/signature/hmac-and-settings", test_hmac_and_settings);
  ADD ("/relay/signature/raw-body", test_raw_body);
  ADD ("/relay/signature/pause-and-recent", test_pause_and_recent);
  ADD ("/relay/signature/cli", test_cli);
  ADD ("/relay/signature/ntfy-refused", test_ntfy_refused);
#undef ADD
  g_test_add_func ("/relay/signature/migrate-v1", test_migrate_v1);
  g_test_add_func ("/relay/signature/secret-never-logged", test_secret_never_logged);
  return g_test_run ();
}
