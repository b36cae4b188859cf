/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-compat.h: GLib API newer than Debian 12's 2.74 that Tocsin needs, written once. Each
 * mirrors the GLib function it names; drop it when the floor moves past that version.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* g_set_str() (GLib 2.76): replaces *@field with a copy of @value unless they are equal;
 * TRUE when it changed. */
static inline gboolean
tocsin_set_str (char       **field,
                const char  *value)
{
  char *copy;

  if (g_strcmp0 (*field, value) == 0)
    return FALSE;
  copy = g_strdup (value);
  g_free (*field);
  *field = copy;
  return TRUE;
}

G_END_DECLS
