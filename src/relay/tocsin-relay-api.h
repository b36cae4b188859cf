/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-api.h: the owner API (/v1/channels) and the JSON views of a channel that the
 * API, the subscribe page and the command line show. The store stores channels; how a channel
 * looks to a subscriber or to its owner is decided here. Public JSON (the subscribe page, the
 * streams) is camelCase; the owner's JSON is snake_case, as `channel create --json` has always
 * written it (docs/protocol.md, "Field names").
 */
#pragma once

#include <json-glib/json-glib.h>

#include "tocsin-relay.h"
#include "tocsin-relay-store.h"

G_BEGIN_DECLS

/* /v1/channels and below. */
void tocsin_relay_api_handle (TocsinRelay       *relay,
                              SoupServerMessage *msg,
                              const char        *path);

/* The public view of a channel (no trigger token, no owner key): what /s/{token} shows before
 * someone subscribes. {"id","name","description","title","body","link",
 * "subscribeUrl","websocketUrl"} built on @public_url; never the condition (it may hold a
 * secret). */
JsonObject *tocsin_relay_channel_to_public_json (TocsinRelayChannel *channel,
                                                 const char         *public_url);

/* The owner's view: everything but the owner key, snake_case as `channel create --json`:
 * {"id","name","description","title","body","link","condition","trigger_token",
 * "subscribe_token","webhook_url","subscribe_url","created_at","last_id"}. */
JsonObject *tocsin_relay_channel_to_owner_json (TocsinRelayChannel *channel,
                                                const char         *public_url);

/* The bearer token of the request's Authorization header, or NULL. */
const char *tocsin_relay_api_get_bearer (SoupServerMessage *msg);

G_END_DECLS
