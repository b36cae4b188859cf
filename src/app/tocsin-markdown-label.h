/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* Shows @markdown (a body the sender marked as Markdown) in @label, rendered by
 * tocsin-markdown.h: formatted, with clickable http(s) links (the label's "activate-link"). */
void tocsin_label_set_markdown (GtkLabel   *label,
                                const char *markdown);
/* Shows @text as it is, undoing tocsin_label_set_markdown(). */
void tocsin_label_set_plain    (GtkLabel   *label,
                                const char *text);

G_END_DECLS
