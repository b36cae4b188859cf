/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin"

#include "config.h"

#include <locale.h>
#include <glib/gi18n.h>

#include "tocsin-application.h"

int
main (int   argc,
      char *argv[])
{
  g_autoptr(TocsinApplication) app = NULL;

  const char *localedir;

  setlocale (LC_ALL, "");
  /* Run from the build tree (the demo, `meson devenv`), the catalogues are the build's own. */
  localedir = g_getenv ("TOCSIN_LOCALEDIR");
  bindtextdomain (GETTEXT_PACKAGE, localedir != NULL && *localedir ? localedir : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  app = tocsin_application_new ();
  return g_application_run (G_APPLICATION (app), argc, argv);
}
