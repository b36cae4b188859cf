/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-cli.h: the command line besides `serve`: `tocsin-relay channel ...`,
 * `tocsin-relay key ...`, `tocsin-relay subscribers ...`. Each returns the exit status.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

int tocsin_relay_cli_channel     (int argc, char **argv);
int tocsin_relay_cli_direct      (int argc, char **argv);
int tocsin_relay_cli_key         (int argc, char **argv);
int tocsin_relay_cli_subscribers (int argc, char **argv);
int tocsin_relay_cli_deliveries  (int argc, char **argv);

G_END_DECLS
