/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-markdown.c: a Markdown body as the records view and the pop-up get it
 * (src/app/tocsin-markdown.c): the Pango markup of each construct, escaping, hostile links,
 * and the bounds. Every markup produced here is also read the way GtkLabel reads it
 * (tests/tocsin-test-markup.h): markup a label refuses would show an empty body.
 */
#include "config.h"

#include <string.h>

#include "tocsin-markdown.h"
#include "tocsin-test-markup.h"

/* Renders @markdown, checks that a label would show it, returns the markup. */
static char *
markup_of (const char *markdown)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) links = NULL;
  char *markup = tocsin_markdown_to_markup (markdown);
  g_autofree char *pango = tocsin_markdown_to_pango (markdown);
  g_autofree char *shown = NULL;
  g_autofree char *pango_text = NULL;

  if (!tocsin_test_check_label_markup (markup, &shown, &links, &error))
    g_error ("a label refuses the markup of “%s”: %s\n%s", markdown, error->message, markup);
  for (guint i = 0; i < links->len; i++)
    g_assert_true (tocsin_link_is_safe (links->pdata[i], NULL));
  /* The link-less rendering (its attributes go on the label too) has the label's text. */
  g_assert_null (strstr (pango, "<a "));
  g_assert_true (pango_parse_markup (pango, -1, 0, NULL, &pango_text, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (pango_text, ==, shown);
  g_assert_true (g_utf8_validate (markup, -1, NULL));
  return markup;
}

static void
assert_markup (const char *markdown,
               const char *expected)
{
  g_autofree char *markup = markup_of (markdown);

  g_assert_cmpstr (markup, ==, expected);
}

static void
assert_text (const char *markdown,
             const char *expected)
{
  g_autofree char *text = tocsin_markdown_to_text (markdown);

  g_assert_cmpstr (text, ==, expected);
}

static void
test_inline (void)
{
  assert_markup ("**bold** and *em* and `code` ~~gone~~",
                 "<b>bold</b> and <i>em</i> and <tt>code</tt> <s>gone</s>");
  assert_markup ("__strong__ _em_ ***both***", "<b>strong</b> <i>em</i> <i><b>both</b></i>");
  /* A code span's content is code, not Markdown, and escaped. */
  assert_markup ("`a <b> & *c*`", "<tt>a &lt;b&gt; &amp; *c*</tt>");
  /* Lines stay lines; a hard break too. */
  assert_markup ("one\ntwo  \nthree", "one\ntwo\nthree");
  assert_markup ("", "");
  assert_markup ("plain text", "plain text");
}

static void
test_blocks (void)
{
  assert_markup ("# Title\n## Section\n### Sub\ntext",
                 "<span size=\"x-large\" weight=\"bold\">Title</span>\n\n"
                 "<span size=\"large\" weight=\"bold\">Section</span>\n\n"
                 "<b>Sub</b>\n\ntext");
  assert_markup ("first\n\nsecond", "first\n\nsecond");
  assert_markup ("```sh\nrm -rf <dir> && echo *done*\n  indented\n```\nafter",
                 "<tt>rm -rf &lt;dir&gt; &amp;&amp; echo *done*\n  indented</tt>\n\nafter");
  assert_markup ("    indented code", "<tt>indented code</tt>");
  assert_markup ("> quoted **text**\n> on two lines", "▎ quoted <b>text</b>\n▎ on two lines");
  assert_markup ("above\n\n---\n\nbelow", "above\n\n────────────\n\nbelow");
}

static void
test_lists (void)
{
  assert_markup ("- one\n- *two*\n  - nested\n- three",
                 "• one\n• <i>two</i>\n    ◦ nested\n• three");
  assert_markup ("3. third\n4. fourth", "3. third\n4. fourth");
  /* A loose list keeps its blank lines; a paragraph in an item is indented. */
  assert_markup ("- a\n\n  more of a\n- b", "• a\n\n    more of a\n\n• b");
  assert_markup ("> - quoted item", "▎ • quoted item");
}

static void
test_escaping (void)
{
  /* The body is a peer's text: nothing in it becomes markup. */
  assert_markup ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d");
  assert_markup ("<b>not bold</b> <span foreground=\"red\">x</span>",
                 "&lt;b&gt;not bold&lt;/b&gt; "
                 "&lt;span foreground=&quot;red&quot;&gt;x&lt;/span&gt;");
  /* Raw HTML blocks are text too. */
  assert_markup ("<script>\nalert(1)\n</script>", "&lt;script&gt;\nalert(1)\n&lt;/script&gt;");
  /* An entity is decoded, then escaped like any text: "&lt;b&gt;" shows "<b>". */
  assert_markup ("&lt;b&gt; &amp; &copy; &#65; &#x263A; &#0;",
                 "&lt;b&gt; &amp; © A ☺ \xef\xbf\xbd");
  assert_markup ("*<i>*", "<i>&lt;i&gt;</i>");
  assert_markup ("quote \" and apos '", "quote &quot; and apos &apos;");
}

static void
test_links (void)
{
  assert_markup ("[dashboard](https://dash.example.com/a?b=1&c=2)",
                 "<a href=\"https://dash.example.com/a?b=1&amp;c=2\">dashboard</a>");
  assert_markup ("see <https://example.com/x> and http://bare.example.com/y",
                 "see <a href=\"https://example.com/x\">https://example.com/x</a> and "
                 "<a href=\"http://bare.example.com/y\">http://bare.example.com/y</a>");
  assert_markup ("[**bold** link](http://example.com)",
                 "<a href=\"http://example.com\"><b>bold</b> link</a>");
  /* Anything but http(s) is its text, never a link. */
  assert_markup ("[click](javascript:alert(1))", "click");
  assert_markup ("[click](JavaScript:alert(document.cookie))", "click");
  assert_markup ("[f](file:///etc/passwd) [d](data:text/html,<b>x</b>) [m](mailto:a@b.c)",
                 "f d m");
  assert_markup ("[rel](/relative/path) [u](https://user:pw@example.com/)", "rel u");
  assert_markup ("<javascript:alert(1)>", "javascript:alert(1)");
  /* An attribute cannot be broken out of. */
  assert_markup ("[x](https://example.com/\"onclick=\"y)",
                 "<a href=\"https://example.com/&quot;onclick=&quot;y\">x</a>");
  assert_markup ("[x](<https://example.com/a b>)", "x");
  /* Entities in a target are decoded before the check. */
  assert_markup ("[x](&#106;avascript:alert(1))", "x");
}

static void
test_images (void)
{
  /* Never fetched: the alt text stands in. */
  assert_markup ("![a *cat* picture](https://example.com/cat.png)", "a cat picture");
  assert_markup ("![tracker](http://evil.example.com/pixel.gif)x", "trackerx");
  assert_markup ("[![badge](https://img.example.com/b.svg)](https://ci.example.com)",
                 "<a href=\"https://ci.example.com\">badge</a>");
}

static void
test_plain_text (void)
{
  assert_text ("**Disk** at *95%* on `db-1` — [dashboard](https://dash.example.com)",
               "Disk at 95% on db-1 — dashboard");
  assert_text ("# Alert\n\n- one\n- two\n\n> quoted", "Alert\n\n• one\n• two\n\n▎ quoted");
  /* Plain text is not markup: nothing is escaped (the notifier escapes for its server). */
  assert_text ("a < b & <b>c</b>", "a < b & <b>c</b>");
  assert_text ("&amp;&lt;", "&<");
  assert_text ("![alt](http://x.example.com/i.png)", "alt");
}

static void
test_nesting_bound (void)
{
  g_autoptr(GString) quotes = g_string_new (NULL);
  g_autoptr(GString) emphasis = g_string_new (NULL);
  g_autoptr(GString) lists = g_string_new (NULL);
  g_autoptr(GString) links = g_string_new (NULL);
  g_autofree char *m1 = NULL, *m2 = NULL, *m3 = NULL, *m4 = NULL;

  for (guint i = 0; i < 10000; i++)
    g_string_append_c (quotes, '>');
  g_string_append (quotes, " deep");
  m1 = markup_of (quotes->str);
  g_assert_nonnull (strstr (m1, "deep"));

  for (guint i = 0; i < 500; i++)
    g_string_append (emphasis, "*a **b ");
  g_string_append (emphasis, "core");
  for (guint i = 0; i < 500; i++)
    g_string_append (emphasis, "** c*");
  m2 = markup_of (emphasis->str);
  g_assert_nonnull (strstr (m2, "core"));
  /* At most TOCSIN_MARKDOWN_MAX_DEPTH tags open at once. */
  {
    guint open = 0, most = 0;

    for (const char *p = m2; (p = strchr (p, '<')) != NULL; p++)
      {
        if (p[1] == '/')
          open--;
        else
          {
            open++;
            most = MAX (most, open);
          }
      }
    g_assert_cmpuint (open, ==, 0);
    g_assert_cmpuint (most, <=, TOCSIN_MARKDOWN_MAX_DEPTH);
  }

  for (guint i = 0; i < 300; i++)
    {
      for (guint j = 0; j < i; j++)
        g_string_append (lists, "  ");
      g_string_append (lists, "- item\n");
    }
  m3 = markup_of (lists->str);
  g_assert_nonnull (strstr (m3, "item"));

  for (guint i = 0; i < 2000; i++)
    g_string_append (links, "[");
  g_string_append (links, "x](https://example.com)");
  for (guint i = 0; i < 2000; i++)
    g_string_append (links, "](https://example.com)");
  m4 = markup_of (links->str);
}

static void
test_size_bound (void)
{
  g_autoptr(GString) big = g_string_new (NULL);
  g_autoptr(GString) escapes = g_string_new (NULL);
  g_autoptr(GString) links = g_string_new (NULL);
  g_autofree char *m1 = NULL, *m2 = NULL, *m3 = NULL, *t1 = NULL;

  /* Past the input bound: cut, and "…" says so. */
  while (big->len < 2 * TOCSIN_MARKDOWN_MAX_INPUT)
    g_string_append (big, "word **é** ");
  m1 = markup_of (big->str);
  g_assert_true (g_str_has_suffix (m1, "…"));
  g_assert_cmpuint (strlen (m1), <=, TOCSIN_MARKDOWN_MAX_OUTPUT + 1024);
  t1 = tocsin_markdown_to_text (big->str);
  g_assert_true (g_str_has_suffix (t1, "…"));
  g_assert_cmpuint (strlen (t1), <=, TOCSIN_MARKDOWN_MAX_INPUT + 4);

  /* Escaping grows the text: the output bound holds anyway, tags closed. */
  while (escapes->len < TOCSIN_MARKDOWN_MAX_INPUT - 16)
    g_string_append (escapes, "\"\"\"\"\"\"\"\"<<<<&&&&>>>> **x** ");
  m2 = markup_of (escapes->str);
  g_assert_cmpuint (strlen (m2), >, TOCSIN_MARKDOWN_MAX_OUTPUT - 64);
  g_assert_cmpuint (strlen (m2), <=, TOCSIN_MARKDOWN_MAX_OUTPUT + 1024);
  g_assert_true (g_str_has_suffix (m2, "…"));
  g_assert_nonnull (strstr (m2, "<b>x</b>"));

  while (links->len < TOCSIN_MARKDOWN_MAX_INPUT - 64)
    g_string_append (links, "[x](https://example.com/&amp;&amp;&amp;&amp;&amp;) ");
  m3 = markup_of (links->str);
  g_assert_cmpuint (strlen (m3), <=, TOCSIN_MARKDOWN_MAX_OUTPUT + 1024);
}

/* md4c 0.4.8 enters the emphasis of "*[](*)" and never leaves it (found by fuzz-markdown):
 * the markup stays balanced, and what follows is rendered as usual. */
static void
test_md4c_unbalanced (void)
{
  g_autofree char *m1 = markup_of ("*[](*)");
  g_autofree char *m2 = markup_of ("- *a [x](*) b\n- **c** [d](https://example.com)\n\n> e");

  g_assert_nonnull (strstr (m2, "<b>c</b>"));
  g_assert_nonnull (strstr (m2, "<a href=\"https://example.com\">d</a>"));
}

static void
test_invalid_utf8 (void)
{
  g_autofree char *markup = markup_of ("**ok** \xff\xfe bad");

  g_assert_cmpstr (markup, ==, "<b>ok</b> \xef\xbf\xbd\xef\xbf\xbd bad");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/markdown/inline", test_inline);
  g_test_add_func ("/markdown/blocks", test_blocks);
  g_test_add_func ("/markdown/lists", test_lists);
  g_test_add_func ("/markdown/escaping", test_escaping);
  g_test_add_func ("/markdown/links", test_links);
  g_test_add_func ("/markdown/images", test_images);
  g_test_add_func ("/markdown/plain-text", test_plain_text);
  g_test_add_func ("/markdown/nesting-bound", test_nesting_bound);
  g_test_add_func ("/markdown/size-bound", test_size_bound);
  g_test_add_func ("/markdown/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/markdown/md4c-unbalanced", test_md4c_unbalanced);

  return g_test_run ();
}
