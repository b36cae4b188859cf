/* SPDX-License-Identifier: GPL-3.0-or-later */
/* main.c: tocsin-relay's command dispatch. */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "tocsin-relay-cli.h"
#include "tocsin-relay-migrate.h"
#include "tocsin-relay-server.h"

static void
usage (FILE *out)
{
  fprintf (out, "%s\n\n%s\n  %s\n  %s\n  %s\n  %s\n  %s\n  %s\n  %s\n\n%s\n",
           _("Usage: tocsin-relay COMMAND [OPTION…]"),
           _("Commands:"),
           _("serve        serve webhooks and subscriber streams"),
           _("channel      create, list, show, update, rotate or delete channels"),
           _("direct       create, show or rotate Direct keys (they ring only you)"),
           _("key          create admin keys for a relay that is not open"),
           _("subscribers  list who is connected to a channel"),
           _("deliveries   show the log of a channel's forwards (outgoing requests)"),
           _("migrate      copy a stopped relay's SQLite data into PostgreSQL"),
           _("Run “tocsin-relay COMMAND --help” for a command’s options."));
}

int
main (int    argc,
      char **argv)
{
  const char *command;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  g_set_prgname ("tocsin-relay");

  if (argc < 2)
    {
      usage (stderr);
      return 2;
    }
  command = argv[1];

  if (g_str_equal (command, "--help") || g_str_equal (command, "-h") ||
      g_str_equal (command, "help"))
    {
      usage (stdout);
      return 0;
    }
  if (g_str_equal (command, "--version"))
    {
      g_print ("tocsin-relay %s\n", PACKAGE_VERSION);
      return 0;
    }

  /* Each command sees argv[0] = its own name, as GOptionContext expects. */
  if (g_str_equal (command, "serve"))
    return tocsin_relay_serve (argc - 1, argv + 1);
  if (g_str_equal (command, "channel"))
    return tocsin_relay_cli_channel (argc - 1, argv + 1);
  if (g_str_equal (command, "direct"))
    return tocsin_relay_cli_direct (argc - 1, argv + 1);
  if (g_str_equal (command, "key"))
    return tocsin_relay_cli_key (argc - 1, argv + 1);
  if (g_str_equal (command, "subscribers"))
    return tocsin_relay_cli_subscribers (argc - 1, argv + 1);
  if (g_str_equal (command, "deliveries"))
    return tocsin_relay_cli_deliveries (argc - 1, argv + 1);
  if (g_str_equal (command, "migrate"))
    return tocsin_relay_migrate_main (argc - 1, argv + 1);

  g_printerr (_("tocsin-relay: unknown command “%s”.\n"), command);
  usage (stderr);
  return 2;
}
