/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-owned-channel.h: a channel this user created on a relay, as the history keeps it and
 * the owner API (tocsin-owner.h) manages it with its owner key.
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* A channel this user created on a relay: the owner key manages it (tocsin-owner.h). */
typedef struct
{
  char   *relay_url;      /* base URL, no trailing slash */
  gint64  id;             /* channel id on the relay */
  char   *owner_key;      /* secret; never log it */
  char   *name;
  char   *webhook_url;    /* "<relay>/t/<trigger token>" (secret too: anyone with it can ring);
                           * "<relay>/d/<Direct key>" for the user's direct inbox */
  char   *subscribe_url;  /* "<relay>/s/<subscribe token>" */
} TocsinOwnedChannel;

GType               tocsin_owned_channel_get_type (void) G_GNUC_CONST;
#define TOCSIN_TYPE_OWNED_CHANNEL (tocsin_owned_channel_get_type ())
TocsinOwnedChannel *tocsin_owned_channel_new   (void);
TocsinOwnedChannel *tocsin_owned_channel_copy  (const TocsinOwnedChannel *channel);
void                tocsin_owned_channel_free  (TocsinOwnedChannel *channel);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinOwnedChannel, tocsin_owned_channel_free)

/* Whether @channel is the user's direct inbox (docs/api.md, "Direct keys"): its webhook URL is
 * the Direct URL, /d/{key}, and it has no templates to edit. */
gboolean            tocsin_owned_channel_is_direct (const TocsinOwnedChannel *channel);

G_END_DECLS
