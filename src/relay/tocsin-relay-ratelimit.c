/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <math.h>

#include "tocsin-relay-ratelimit.h"

typedef struct
{
  double tokens;
  gint64 updated_us;
} Bucket;

struct _TocsinRelayRateLimit
{
  GHashTable *buckets;   /* key (gint64) → Bucket */
};

TocsinRelayRateLimit *
tocsin_relay_rate_limit_new (void)
{
  TocsinRelayRateLimit *self = g_new0 (TocsinRelayRateLimit, 1);

  self->buckets = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  return self;
}

void
tocsin_relay_rate_limit_free (TocsinRelayRateLimit *self)
{
  if (self == NULL)
    return;
  g_hash_table_unref (self->buckets);
  g_free (self);
}

gboolean
tocsin_relay_rate_limit_take (TocsinRelayRateLimit *self,
                              gint64                key,
                              double                rate,
                              guint                 burst,
                              gint64                now_us,
                              guint                *remaining,
                              guint                *reset,
                              guint                *retry_after)
{
  Bucket *bucket;
  gboolean allowed;

  g_return_val_if_fail (self != NULL, FALSE);

  if (rate <= 0)
    rate = 1;
  if (burst == 0)
    burst = 1;

  bucket = g_hash_table_lookup (self->buckets, &key);
  if (bucket == NULL)
    {
      bucket = g_new0 (Bucket, 1);
      bucket->tokens = burst;
      bucket->updated_us = now_us;
      g_hash_table_insert (self->buckets, g_memdup2 (&key, sizeof key), bucket);
    }
  if (now_us > bucket->updated_us)
    {
      bucket->tokens = MIN ((double) burst,
                            bucket->tokens + rate * (now_us - bucket->updated_us) / G_USEC_PER_SEC);
      bucket->updated_us = now_us;
    }

  allowed = bucket->tokens >= 1.0;
  if (allowed)
    bucket->tokens -= 1.0;

  if (remaining)
    *remaining = (guint) bucket->tokens;
  if (reset)
    *reset = (guint) ceil ((burst - bucket->tokens) / rate);
  if (retry_after)
    *retry_after = allowed ? 0 : MAX (1, (guint) ceil ((1.0 - bucket->tokens) / rate));
  return allowed;
}
