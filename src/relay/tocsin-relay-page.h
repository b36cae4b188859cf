/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tocsin-relay-page.h: /s/{subscribe_token}, the subscribe page (HTML, or JSON on request). */
#pragma once

#include "tocsin-relay.h"

G_BEGIN_DECLS

void  tocsin_relay_page_handle (TocsinRelay       *relay,
                                SoupServerMessage *msg,
                                const char        *token);

/* The HTML page for @channel; everything from the channel is escaped. Exposed for tests. */
char *tocsin_relay_page_render (const char *name,
                                const char *description,
                                const char *title,
                                const char *body,
                                const char *link,
                                const char *subscribe_url);

G_END_DECLS
