/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-a11y.h: works around GTK 4.8's accessible names for buttons with a mnemonic.
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* Gives every GtkButton under @root (and @root itself) whose label has a mnemonic the name a
 * screen reader should say, now and whenever its label changes. */
void tocsin_a11y_fix_button_names (GtkWidget *root);

G_END_DECLS
