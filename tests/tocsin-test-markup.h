/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-test-markup.h: reads markup the way GtkLabel does, without a display (the Markdown
 * fuzzer has none). GtkLabel first finds the <a href> elements with GMarkup (gtklabel.c's
 * parse_uri_markup), re-serialises everything else, then hands that to pango_parse_markup();
 * a label shows nothing at all for markup either step refuses. Header-only: the unit test and
 * the fuzz target include it once each.
 */
#pragma once

#include <string.h>
#include <glib.h>
#include <pango/pango.h>

#include "tocsin-message.h"

typedef struct
{
  GString   *pango;     /* the markup without its <a> elements, as GtkLabel passes it on */
  GPtrArray *links;     /* char *: every href, in order */
  guint      in_link;
} TocsinTestMarkup;

static void
tocsin_test_markup_start (GMarkupParseContext  *context,
                          const char           *name,
                          const char          **attribute_names,
                          const char          **attribute_values,
                          gpointer              user_data,
                          GError              **error)
{
  TocsinTestMarkup *m = user_data;

  if (g_str_equal (name, "a"))
    {
      const char *href = NULL;

      for (guint i = 0; attribute_names[i]; i++)
        if (g_str_equal (attribute_names[i], "href"))
          href = attribute_values[i];
        else
          {
            g_set_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                         "attribute %s on <a>", attribute_names[i]);
            return;
          }
      if (href == NULL || m->in_link > 0)
        {
          g_set_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                       href ? "an <a> inside an <a>" : "an <a> without href");
          return;
        }
      m->in_link++;
      g_ptr_array_add (m->links, g_strdup (href));
      return;
    }
  g_string_append_printf (m->pango, "<%s", name);
  for (guint i = 0; attribute_names[i]; i++)
    {
      g_autofree char *value = g_markup_escape_text (attribute_values[i], -1);

      g_string_append_printf (m->pango, " %s=\"%s\"", attribute_names[i], value);
    }
  g_string_append_c (m->pango, '>');
}

static void
tocsin_test_markup_end (GMarkupParseContext  *context,
                        const char           *name,
                        gpointer              user_data,
                        GError              **error)
{
  TocsinTestMarkup *m = user_data;

  if (g_str_equal (name, "a"))
    m->in_link--;
  else
    g_string_append_printf (m->pango, "</%s>", name);
}

static void
tocsin_test_markup_text (GMarkupParseContext  *context,
                         const char           *text,
                         gsize                 length,
                         gpointer              user_data,
                         GError              **error)
{
  TocsinTestMarkup *m = user_data;
  g_autofree char *escaped = g_markup_escape_text (text, length);

  g_string_append (m->pango, escaped);
}

/* TRUE if a GtkLabel would show @markup. Then *text (optional) is what it shows and *links
 * (optional, char * each) the targets of its links; otherwise @error says why not. */
static G_GNUC_UNUSED gboolean
tocsin_test_check_label_markup (const char   *markup,
                                char        **text,
                                GPtrArray   **links,
                                GError      **error)
{
  static const GMarkupParser parser = {
    tocsin_test_markup_start, tocsin_test_markup_end, tocsin_test_markup_text, NULL, NULL,
  };
  TocsinTestMarkup m = { g_string_new (NULL), g_ptr_array_new_with_free_func (g_free), 0 };
  g_autoptr(GMarkupParseContext) context = NULL;
  g_autofree char *wrapped = g_strconcat ("<markup>", markup, "</markup>", NULL);
  gboolean ok;

  context = g_markup_parse_context_new (&parser, 0, &m, NULL);
  ok = g_markup_parse_context_parse (context, wrapped, -1, error) &&
       g_markup_parse_context_end_parse (context, error) &&
       pango_parse_markup (m.pango->str, -1, 0, NULL, text, NULL, error);
  if (ok && links)
    *links = g_ptr_array_ref (m.links);
  g_ptr_array_unref (m.links);
  g_string_free (m.pango, TRUE);
  return ok;
}
