/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-a11y"

#include "config.h"

#include <string.h>

#include "tocsin-a11y.h"

/* GTK 4.8 gives a button with a label both the label text as its accessible label, mnemonic
 * included ("_Retry"), and a labelled-by relation to its label child ("Retry"); AT-SPI joins
 * them, so Orca reads "underscore Retry Retry" (tests/a11y-walk.py checks for it). GTK 4.10 does
 * not; here the label without its mnemonic is the name, and the relation goes. */

static char *
strip_mnemonic (const char *label)
{
  GString *plain = g_string_sized_new (strlen (label));

  for (const char *p = label; *p; p++)
    {
      if (*p == '_')
        {
          if (p[1] == '_')
            p++;
          else
            continue;
        }
      g_string_append_c (plain, *p);
    }
  return g_string_free (plain, FALSE);
}

static void
fix_button (GtkButton *button)
{
  const char *label = gtk_button_get_label (button);
  g_autofree char *plain = NULL;

  if (label == NULL || !gtk_button_get_use_underline (button))
    return;
  plain = strip_mnemonic (label);
  gtk_accessible_update_property (GTK_ACCESSIBLE (button), GTK_ACCESSIBLE_PROPERTY_LABEL, plain,
                                  -1);
  gtk_accessible_reset_relation (GTK_ACCESSIBLE (button), GTK_ACCESSIBLE_RELATION_LABELLED_BY);
}

void
tocsin_a11y_fix_button_names (GtkWidget *root)
{
  g_return_if_fail (GTK_IS_WIDGET (root));

  if (GTK_IS_BUTTON (root) && g_object_get_data (G_OBJECT (root), "tocsin-a11y-fixed") == NULL)
    {
      g_object_set_data (G_OBJECT (root), "tocsin-a11y-fixed", GINT_TO_POINTER (1));
      /* GTK sets both again on every new label. */
      g_signal_connect (root, "notify::label", G_CALLBACK (fix_button), NULL);
      g_signal_connect (root, "notify::use-underline", G_CALLBACK (fix_button), NULL);
      fix_button (GTK_BUTTON (root));
    }
  for (GtkWidget *child = gtk_widget_get_first_child (root); child;
       child = gtk_widget_get_next_sibling (child))
    tocsin_a11y_fix_button_names (child);
}
