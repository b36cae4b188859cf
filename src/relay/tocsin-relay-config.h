/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-config.h: the `serve` command's settings: defaults, a [relay] group in a key file
 * (--config=FILE), and command-line flags, which win over the file.
 */
#pragma once

#include "tocsin-relay.h"

G_BEGIN_DECLS

#define TOCSIN_RELAY_DEFAULT_LISTEN "127.0.0.1:8080"

typedef struct
{
  TocsinRelayConfig  relay;
  GStrv              listen;         /* "HOST:PORT", IPv6 as "[::1]:PORT"; never empty */
  gboolean           open_relay_set; /* open_relay was given; otherwise it follows loopback-ness */
  guint              backlog;        /* listen(2) backlog; default 4096 */
  char              *tls_cert;       /* PEM certificate (chain) file: serve HTTPS/WSS; or NULL */
  char              *tls_key;        /* its PEM private key; NULL: the key is in tls_cert */
  char              *smtp_listen;    /* "HOST:PORT" of the email trigger, or NULL: no SMTP */
  char              *database;       /* a postgresql:// URL, or NULL: SQLite in data_dir */
  guint              workers;        /* processes serving (tocsin-relay-workers.c); default 1 */
  char              *node_name;      /* PostgreSQL: this node's name, or NULL: a random one */
} TocsinRelayServeConfig;

#define TOCSIN_RELAY_MAX_WORKERS 256
/* The database's URL when no --database is given; it wins over the config file's. A URL may hold
 * a password: the environment keeps it out of the command line (ps) and out of a file the
 * service's user reads (a Kubernetes Secret, a systemd EnvironmentFile= read as root). */
#define TOCSIN_RELAY_DATABASE_ENV "TOCSIN_RELAY_DATABASE"

void     tocsin_relay_serve_config_init  (TocsinRelayServeConfig *config);
void     tocsin_relay_serve_config_clear (TocsinRelayServeConfig *config);

/* Reads the [relay] group of @path into @config (keys as the long flags: listen, data-dir,
 * public-url, max-body, retention, rate, burst, max-queue-bytes, max-queue-frames,
 * max-connections, idle-timeout, subscribe-timeout, allowed-hosts, cors-origins,
 * owner-cors-origins, open-relay, backlog, tls-cert, tls-key, smtp-listen, mail-domain,
 * max-mail, forward-timeout, forward-max-attempts, forward-backoff-base, forward-backoff-max,
 * forward-cooldown, forward-ca-file, forward-deny-private, database, workers, node-name). */
gboolean tocsin_relay_serve_config_load_file (TocsinRelayServeConfig  *config,
                                              const char              *path,
                                              GError                 **error);
/* Parses `serve` arguments (argv[0] is "serve"): --config first, then every flag over it. */
gboolean tocsin_relay_serve_config_parse     (TocsinRelayServeConfig  *config,
                                              int                     *argc,
                                              char                  ***argv,
                                              GError                 **error);

/* "90", "90s", "15m", "24h", "7d" → seconds; -1 when it does not parse. */
gint64   tocsin_relay_parse_duration (const char *text);

G_END_DECLS
