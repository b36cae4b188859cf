/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-markdown.h: a message body the sender marked as Markdown ("markdown": true, see
 * docs/protocol.md), as Pango markup for a GtkLabel or as plain text for a pop-up. md4c parses
 * it (CommonMark, with ~~strikethrough~~ and bare http(s)/www links); this renders what md4c
 * reports. The body is a peer's text: what comes out is always well-formed markup whatever
 * came in, within fixed bounds of size and nesting.
 *
 * Rendered: emphasis, strong, code spans and blocks, strikethrough, headings, lists (bullets
 * and numbers), block quotes (a bar), thematic breaks, and links whose target is a safe http(s)
 * URL (tocsin_link_is_safe()) as <a href>. Not rendered: images (their alt text is shown),
 * raw HTML (shown as the text it is), links to anything else (their text is shown).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Only this much of a body is parsed (cut at a character); the rest is left out and "…" says
 * so. The relay cuts a rendered body at 64 KiB too. */
#define TOCSIN_MARKDOWN_MAX_INPUT  (64 * 1024)
/* The output stops growing at this many bytes ("…" says so); the closing tags of what is open
 * still follow, at most TOCSIN_MARKDOWN_MAX_DEPTH of them, so the result stays well-formed and
 * never exceeds TOCSIN_MARKDOWN_MAX_OUTPUT + 1 KiB. */
#define TOCSIN_MARKDOWN_MAX_OUTPUT (256 * 1024)
/* Blocks and spans nested deeper than this are shown as their text, without their markup. */
#define TOCSIN_MARKDOWN_MAX_DEPTH  16

/* Pango markup for a GtkLabel (which also reads <a href>): every text escaped, links only
 * http(s). Never NULL; "" for "". */
char *tocsin_markdown_to_markup (const char *markdown);
/* The same without the <a> elements (their text stays): Pango markup proper, whose text is the
 * text a GtkLabel shows for tocsin_markdown_to_markup(). */
char *tocsin_markdown_to_pango  (const char *markdown);
/* The same text without markup, for a pop-up: no asterisks or backticks, bullets and numbers
 * kept, links as their text. Never NULL. */
char *tocsin_markdown_to_text   (const char *markdown);

G_END_DECLS
