/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-test-ui.h: finds what a user sees in the real app's windows (GTK 4, under Xvfb with
 * accessibility on), for the ui tests.
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* A visible toplevel of @type (or a subtype), or NULL. */
GtkWindow *tocsin_test_ui_find_toplevel (GType       type);
/* Depth-first under @root: a visible widget of @type whose text (a label's, a button's label)
 * contains @text (NULL: any), or NULL. */
GtkWidget *tocsin_test_ui_find_widget   (GtkWidget  *root,
                                         GType       type,
                                         const char *text);
/* Clicks the visible button under @root whose label contains @label (asserts there is one). */
void       tocsin_test_ui_click         (GtkWidget  *root,
                                         const char *label);

G_END_DECLS
