/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay.h: the relay's shared context. One TocsinRelay per running server; every part
 * (store, hub, ingest, owner API) reads its configuration from here. Owned by the serve command.
 */
#pragma once

#include <glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _TocsinRelayStore TocsinRelayStore;   /* tocsin-relay-store.h */
typedef struct _TocsinRelayHub   TocsinRelayHub;     /* tocsin-relay-hub.h */
typedef struct _TocsinRelayThrottle TocsinRelayThrottle; /* tocsin-relay-throttle.h */
typedef struct _TocsinRelayRateLimit TocsinRelayRateLimit; /* tocsin-relay-ratelimit.h */
typedef struct _TocsinRelayRecent TocsinRelayRecent; /* tocsin-relay-recent.h */
typedef struct _TocsinRelayForwards TocsinRelayForwards; /* tocsin-relay-forwards.h */
typedef struct _TocsinRelayCluster TocsinRelayCluster; /* tocsin-relay-cluster.h */

typedef struct
{
  char     *data_dir;
  char     *public_url;          /* no trailing slash; base of URLs shown to people */
  gsize     max_body;            /* bytes; default 64 KiB */
  gint64    retention_seconds;   /* default 86400; 0 = live only */
  double    rate_per_second;     /* per-channel token bucket refill; default 5 */
  guint     rate_burst;          /* bucket size; default 30 */
  gsize     max_queue_bytes;     /* per subscriber connection; default 1 MiB */
  guint     max_queue_frames;    /* per subscriber connection; default 1000 */
  guint     max_connections;     /* default 20000 */
  guint     idle_timeout;        /* seconds an HTTP connection may sit idle; default 60 */
  guint     subscribe_timeout;   /* seconds a /v1/ws may go without subscribing; default 10 */
  GStrv     allowed_hosts;       /* Host names the owner API answers to besides the defaults */
  GStrv     cors_origins;        /* pages that may use the token URLs: "*" or origins */
  GStrv     owner_cors_origins;  /* pages of other origins that may use the owner API */
  gboolean  open_relay;          /* anyone may create channels (default: only when listening on loopback) */
  char     *mail_domain;         /* the email trigger's addresses are @ this; NULL: the host name */
  gsize     max_mail;            /* bytes of one mail (SMTP SIZE and DATA); default 1 MiB */
  /* Forwards (issue 15, tocsin-relay-forwards.c): the outbound settings (tocsin-outbound.h). */
  guint     forward_timeout_s;        /* per attempt; default 10 */
  guint     forward_max_attempts;     /* retry policy; default 8 */
  guint     forward_backoff_base_ms;  /* default 1000 */
  guint     forward_backoff_max_ms;   /* default 600000 */
  guint     forward_cooldown_ms;      /* a failing host's first hold-back; default 30000 */
  char     *forward_ca_file;          /* an extra trusted CA (PEM), or NULL */
  /* Proxies (HAProxy, nginx) whose X-Forwarded-For names the client (GInetAddressMask); NULL:
   * none, the peer of the connection is the client (tocsin_relay_server_client_address()). */
  GPtrArray *trusted_proxies;
  gboolean  forward_deny_private;     /* no forward to loopback/private addresses; default no */
} TocsinRelayConfig;

typedef struct
{
  TocsinRelayConfig  config;
  TocsinRelayStore  *store;
  TocsinRelayHub    *hub;
  SoupServer        *server;
  TocsinRelayThrottle *unknown_tokens;   /* per client address; see tocsin-relay-throttle.h */
  TocsinRelayRateLimit *rate_limit;      /* per channel; see tocsin-relay-ratelimit.h */
  TocsinRelayRecent *recent;             /* last webhooks per channel; tocsin-relay-recent.h */
  TocsinRelayForwards *forwards;         /* the forwards' sender or NULL; tocsin-relay-forwards.h */
  TocsinRelayCluster *cluster;           /* on PostgreSQL: fan-out between nodes, else NULL */
} TocsinRelay;

void tocsin_relay_config_init  (TocsinRelayConfig *config);
void tocsin_relay_config_clear (TocsinRelayConfig *config);

G_END_DECLS
