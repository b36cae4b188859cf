/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libFuzzer target for the Markdown renderer (src/app/tocsin-markdown.c): a message body a
 * relay marked as Markdown, rendered for the records view and for the pop-up. Beyond "does not
 * crash", it checks the promises of tocsin-markdown.h: the markup is what a GtkLabel shows
 * (read as GtkLabel reads it: <a href> apart, the rest through pango_parse_markup), every link
 * in it is a safe http(s) URL, the link-less rendering is Pango markup with the same text, the
 * outputs are valid UTF-8 within their bound, and words without syntax come out as they went in.
 */
#define G_LOG_DOMAIN "fuzz-markdown"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "tocsin-markdown.h"
#include "../tocsin-test-markup.h"

static void
check (gboolean    ok,
       const char *what)
{
  if (!ok)
    {
      g_printerr ("invariant broken: %s\n", what);
      abort ();
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  /* A record's body is a C string: up to the first NUL. */
  g_autofree char *body = g_strndup ((const char *) data, size);
  g_autofree char *markup = tocsin_markdown_to_markup (body);
  g_autofree char *text = tocsin_markdown_to_text (body);
  g_autofree char *shown = NULL;
  g_autoptr(GPtrArray) links = NULL;
  g_autoptr(GError) error = NULL;

  check (g_utf8_validate (markup, -1, NULL), "the markup is valid UTF-8");
  check (g_utf8_validate (text, -1, NULL), "the text is valid UTF-8");
  check (strlen (markup) <= TOCSIN_MARKDOWN_MAX_OUTPUT + 1024, "the markup is bounded");
  check (strlen (text) <= TOCSIN_MARKDOWN_MAX_OUTPUT + 1024, "the text is bounded");

  if (!tocsin_test_check_label_markup (markup, &shown, &links, &error))
    {
      g_printerr ("a label refuses the markup: %s\n", error->message);
      abort ();
    }
  for (guint i = 0; i < links->len; i++)
    check (tocsin_link_is_safe (links->pdata[i], NULL), "every link is http(s) and safe");

  /* The link-less rendering is Pango markup proper, with the text the label shows. */
  {
    g_autofree char *pango = tocsin_markdown_to_pango (body);
    g_autofree char *pango_text = NULL;

    check (pango_parse_markup (pango, -1, 0, NULL, &pango_text, NULL, NULL),
           "the link-less markup is Pango markup");
    /* Unless the output was cut at TOCSIN_MARKDOWN_MAX_OUTPUT: the link tags make the linked
     * rendering longer, so it can be cut where the link-less one is not, or earlier (each cut
     * one ends with an ellipsis; corpus: cut-on-one-side). Then the two agree up to where the
     * shorter stops, and the shorter is one that was cut. */
    {
      gboolean cut_pango = g_str_has_suffix (pango_text, "…");
      gboolean cut_shown = g_str_has_suffix (shown, "…");

      if (!cut_pango && !cut_shown)
        check (g_str_equal (pango_text, shown), "the link-less markup shows the same text");
      else
        {
          gsize lp = strlen (pango_text) - (cut_pango ? strlen ("…") : 0);
          gsize ls = strlen (shown) - (cut_shown ? strlen ("…") : 0);

          check (memcmp (pango_text, shown, MIN (lp, ls)) == 0,
                 "the link-less markup shows the same text, up to where one was cut");
          check (lp == ls || (lp < ls ? cut_pango : cut_shown),
                 "only a rendering that was cut stops short");
        }
    }
  }

  /* An input without markup characters or entities comes out as its own text. */
  if (strpbrk (body, "<>&*_`[]!~#-+=|\\:.()0123456789 \t\n\r\v\f") == NULL &&
      g_utf8_validate (body, -1, NULL) && strlen (body) <= TOCSIN_MARKDOWN_MAX_INPUT)
    {
      check (g_str_equal (text, body), "plain words stay as they are");
      check (g_str_equal (shown, body), "plain words are shown as they are");
    }
  return 0;
}
