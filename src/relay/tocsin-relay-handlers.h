/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-handlers.h: request handlers the server routes to (ingest and owner API live in
 * their own files; the server owns listening, timeouts, streams and routing).
 */
#pragma once

#include "tocsin-relay.h"

G_BEGIN_DECLS

/* /t/{token}: GET, POST, PUT. Pauses @msg until the message is committed. */
void tocsin_relay_ingest_handle (TocsinRelay       *relay,
                                 SoupServerMessage *msg,
                                 const char        *token);
/* /v1/channels and below. */
void tocsin_relay_api_handle    (TocsinRelay       *relay,
                                 SoupServerMessage *msg,
                                 const char        *path);

/* Command line: `tocsin-relay channel ...`, `tocsin-relay key ...`. Return the exit status. */
int  tocsin_relay_cli_channel   (int argc, char **argv);
int  tocsin_relay_cli_key       (int argc, char **argv);
int  tocsin_relay_cli_subscribers (int argc, char **argv);

G_END_DECLS
