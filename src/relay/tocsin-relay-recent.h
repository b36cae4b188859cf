/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-recent.h: the last webhooks each channel received, with their status and the
 * sentence they were answered with, for an owner checking an integration (GET
 * /v1/channels/{id}/webhooks). In memory, in this server process only; never a body, a header or
 * a secret.
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define TOCSIN_RELAY_RECENT_MAX 20
/* A sentence longer than this is cut (at a character boundary). */
#define TOCSIN_RELAY_RECENT_SENTENCE_MAX 300

typedef struct _TocsinRelayRecent TocsinRelayRecent;

TocsinRelayRecent *tocsin_relay_recent_new    (void);
void               tocsin_relay_recent_free   (TocsinRelayRecent *recent);
void               tocsin_relay_recent_note   (TocsinRelayRecent *recent,
                                               gint64             channel_id,
                                               gint64             time_ms,
                                               guint              status,
                                               const char        *sentence);
/* Newest first: [{"time", "status", "sentence"}]. */
JsonArray         *tocsin_relay_recent_list   (TocsinRelayRecent *recent,
                                               gint64             channel_id);
void               tocsin_relay_recent_forget (TocsinRelayRecent *recent,
                                               gint64             channel_id);

G_END_DECLS
