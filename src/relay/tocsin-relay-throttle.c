/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include "tocsin-relay-throttle.h"

typedef struct
{
  gint64 window_start;   /* monotonic µs */
  guint  count;
} Misses;

struct _TocsinRelayThrottle
{
  GHashTable *addresses;   /* char* → Misses */
  guint       max;
  gint64      window_us;
  guint       max_addresses;
};

TocsinRelayThrottle *
tocsin_relay_throttle_new (guint max,
                           guint window_seconds,
                           guint max_addresses)
{
  TocsinRelayThrottle *self = g_new0 (TocsinRelayThrottle, 1);

  self->addresses = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->max = max;
  self->window_us = (gint64) window_seconds * G_USEC_PER_SEC;
  self->max_addresses = max_addresses;
  return self;
}

void
tocsin_relay_throttle_free (TocsinRelayThrottle *self)
{
  if (self == NULL)
    return;
  g_hash_table_unref (self->addresses);
  g_free (self);
}

guint
tocsin_relay_throttle_retry_after (TocsinRelayThrottle *self,
                                   const char          *address)
{
  Misses *misses;
  gint64 now = g_get_monotonic_time ();
  gint64 end;

  g_return_val_if_fail (self != NULL, 0);

  misses = address ? g_hash_table_lookup (self->addresses, address) : NULL;
  if (misses == NULL || misses->count < self->max)
    return 0;
  end = misses->window_start + self->window_us;
  if (now >= end)
    return 0;
  return (guint) ((end - now + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC);
}

void
tocsin_relay_throttle_note_miss (TocsinRelayThrottle *self,
                                 const char          *address)
{
  Misses *misses;
  gint64 now = g_get_monotonic_time ();

  g_return_if_fail (self != NULL);

  if (address == NULL)
    return;
  misses = g_hash_table_lookup (self->addresses, address);
  if (misses == NULL)
    {
      /* Bounded: past this many addresses, only those already tracked are counted. */
      if (g_hash_table_size (self->addresses) >= self->max_addresses)
        return;
      misses = g_new0 (Misses, 1);
      misses->window_start = now;
      g_hash_table_insert (self->addresses, g_strdup (address), misses);
    }
  if (now - misses->window_start >= self->window_us)
    {
      misses->window_start = now;
      misses->count = 0;
    }
  if (++misses->count == self->max)
    g_message ("%s asked for %u unknown tokens within %" G_GINT64_FORMAT " s; its token lookups "
               "are refused for a while", address, misses->count,
               self->window_us / G_USEC_PER_SEC);
}

void
tocsin_relay_throttle_sweep (TocsinRelayThrottle *self)
{
  GHashTableIter iter;
  gpointer value;
  gint64 now = g_get_monotonic_time ();

  g_return_if_fail (self != NULL);

  g_hash_table_iter_init (&iter, self->addresses);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (now - ((Misses *) value)->window_start >= self->window_us)
      g_hash_table_iter_remove (&iter);
}
