/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-owned-channel"

#include "config.h"

#include <string.h>

#include "tocsin-owned-channel.h"

TocsinOwnedChannel *
tocsin_owned_channel_new (void)
{
  return g_new0 (TocsinOwnedChannel, 1);
}

TocsinOwnedChannel *
tocsin_owned_channel_copy (const TocsinOwnedChannel *channel)
{
  TocsinOwnedChannel *copy = g_new0 (TocsinOwnedChannel, 1);

  copy->relay_url = g_strdup (channel->relay_url);
  copy->id = channel->id;
  copy->owner_key = g_strdup (channel->owner_key);
  copy->name = g_strdup (channel->name);
  copy->webhook_url = g_strdup (channel->webhook_url);
  copy->subscribe_url = g_strdup (channel->subscribe_url);
  return copy;
}

void
tocsin_owned_channel_free (TocsinOwnedChannel *channel)
{
  if (channel == NULL)
    return;
  g_free (channel->relay_url);
  if (channel->owner_key)
    memset (channel->owner_key, 0, strlen (channel->owner_key));
  g_free (channel->owner_key);
  g_free (channel->name);
  g_free (channel->webhook_url);
  g_free (channel->subscribe_url);
  g_free (channel);
}

gboolean
tocsin_owned_channel_is_direct (const TocsinOwnedChannel *channel)
{
  g_return_val_if_fail (channel != NULL, FALSE);

  return channel->relay_url != NULL && channel->webhook_url != NULL &&
         g_str_has_prefix (channel->webhook_url, channel->relay_url) &&
         g_str_has_prefix (channel->webhook_url + strlen (channel->relay_url), "/d/");
}

G_DEFINE_BOXED_TYPE (TocsinOwnedChannel, tocsin_owned_channel,
                     tocsin_owned_channel_copy, tocsin_owned_channel_free)
