/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tocsin-test-ui.c: finds what a user sees in the real app's windows (see the header). */
#include "config.h"

#include <string.h>

#include "tocsin-test-ui.h"

GtkWindow *
tocsin_test_ui_find_toplevel (GType type)
{
  g_autoptr(GList) toplevels = gtk_window_list_toplevels ();

  for (GList *l = toplevels; l; l = l->next)
    if (G_TYPE_CHECK_INSTANCE_TYPE (l->data, type) && gtk_widget_get_visible (l->data))
      return l->data;
  return NULL;
}

static const char *
widget_text (GtkWidget *widget)
{
  if (GTK_IS_LABEL (widget))
    return gtk_label_get_text (GTK_LABEL (widget));
  if (GTK_IS_BUTTON (widget))
    return gtk_button_get_label (GTK_BUTTON (widget));
  return NULL;
}

GtkWidget *
tocsin_test_ui_find_widget (GtkWidget  *root,
                            GType       type,
                            const char *text)
{
  for (GtkWidget *child = gtk_widget_get_first_child (root); child;
       child = gtk_widget_get_next_sibling (child))
    {
      GtkWidget *found;

      if (!gtk_widget_get_visible (child))
        continue;
      if (G_TYPE_CHECK_INSTANCE_TYPE (child, type))
        {
          const char *label = widget_text (child);

          if (text == NULL || (label != NULL && strstr (label, text) != NULL))
            return child;
        }
      if ((found = tocsin_test_ui_find_widget (child, type, text)))
        return found;
    }
  return NULL;
}

void
tocsin_test_ui_click (GtkWidget  *root,
                      const char *label)
{
  GtkWidget *button = tocsin_test_ui_find_widget (root, GTK_TYPE_BUTTON, label);

  g_assert_nonnull (button);
  g_assert_true (gtk_widget_is_sensitive (button));
  g_signal_emit_by_name (button, "clicked");
}
