/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-markdown-label.c: a Markdown body in a GtkLabel.
 *
 * GTK 4.8 loses a label's markup attributes (bold, italics, monospace) when markup with an <a>
 * is set on a label that is on screen: the text and the links stay, the formatting goes
 * (tests/test-ui-records.c /ui/records/markdown saw "**db-1**" shown in normal weight). The
 * attributes set with gtk_label_set_attributes() are applied in every case, so the same
 * formatting is also given that way, from the link-less rendering, whose text is the label's.
 * Where GTK keeps both, they coincide and Pango merges them.
 */
#define G_LOG_DOMAIN "tocsin-markdown-label"

#include "config.h"

#include <glib/gi18n.h>

#include "tocsin-markdown.h"
#include "tocsin-markdown-label.h"

void
tocsin_label_set_markdown (GtkLabel   *label,
                           const char *markdown)
{
  g_autofree char *markup = NULL;
  g_autofree char *pango = NULL;
  PangoAttrList *attrs = NULL;

  g_return_if_fail (GTK_IS_LABEL (label));
  g_return_if_fail (markdown != NULL);

  markup = tocsin_markdown_to_markup (markdown);
  pango = tocsin_markdown_to_pango (markdown);
  gtk_label_set_markup (label, markup);
  if (pango_parse_markup (pango, -1, 0, &attrs, NULL, NULL, NULL))
    {
      gtk_label_set_attributes (label, attrs);
      pango_attr_list_unref (attrs);
    }
  else
    gtk_label_set_attributes (label, NULL);
}

void
tocsin_label_set_plain (GtkLabel   *label,
                        const char *text)
{
  g_return_if_fail (GTK_IS_LABEL (label));

  gtk_label_set_text (label, text);
  gtk_label_set_attributes (label, NULL);
}
