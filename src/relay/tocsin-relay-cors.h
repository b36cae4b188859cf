/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-cors.h: which web pages may use the relay from the user's browser (CORS).
 *
 * The token URLs (/t/{token}, /s/{token} and its /sse, /json and /ws streams) carry their secret
 * in the URL, so by default any origin may use them (cors-origins, default `*`). The owner API
 * (/v1/channels…) answers pages of the relay's own origin only, unless owner-cors-origins names
 * others (default: none). docs/api.md says what a page sees.
 */
#pragma once

#include <libsoup/soup.h>

#include "tocsin-relay.h"

G_BEGIN_DECLS

/* How long a browser may cache a preflight answer; Chromium caps it at two hours. */
#define TOCSIN_RELAY_CORS_MAX_AGE 7200

/* Applies the policy to a request before it is routed: adds the Access-Control-* headers a page
 * of an allowed origin needs, answers OPTIONS (a preflight: 204 with the methods, headers and
 * max-age), and refuses a request whose Origin the policy does not allow (403 with a sentence),
 * so that the allow-lists also hold for WebSockets and the requests browsers send without asking
 * first. Returns TRUE when it has answered; the request then goes no further. */
gboolean tocsin_relay_cors_handle        (const TocsinRelayConfig  *config,
                                          SoupServerMessage        *msg,
                                          const char               *path);

/* Parses an allow-list setting (@key names it in the error): `*`, or origins such as
 * https://example.com or http://127.0.0.1:8000 separated by commas or spaces; empty or `none`
 * for none. Returns the normalized list (lower case, no default port), possibly empty. */
GStrv    tocsin_relay_cors_parse_origins (const char               *key,
                                          const char               *text,
                                          GError                  **error);

G_END_DECLS
