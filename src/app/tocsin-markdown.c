/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-markdown.c: md4c's callbacks → Pango markup (or plain text).
 *
 * md4c reports the document as nested enter/leave calls for blocks and spans and text in
 * between, so the markup is balanced by construction: each level remembers the one closing tag
 * its opening wrote (or none), and leaving writes exactly that. Three things can stop a level
 * from writing its tags, and all of them keep the balance:
 *   - nesting past TOCSIN_MARKDOWN_MAX_DEPTH: no tags, the text still comes;
 *   - the output reaching TOCSIN_MARKDOWN_MAX_OUTPUT: no more text or opening tags, only the
 *     closing tags of what is open;
 *   - a link inside a link or image (Pango has no nested <a>): the inner one writes nothing.
 *
 * md4c 0.4.8 (Debian 12) does not always balance its calls: with emphasis around a bare URL
 * inside a list item, it can leave the item without leaving the emphasis (found by
 * fuzz-markdown; tests/fuzz/corpus/markdown/md4c-unbalanced). So a leave closes whatever level
 * is innermost, whatever its type, an extra leave is ignored, and the levels still open at the
 * end are closed there: the tags written stay balanced whatever md4c reports.
 *
 * A GtkLabel has no blocks, so the layout is text: a blank line between blocks (one newline
 * inside a tight list), a bullet or number at each list item and indentation on the lines that
 * follow it, a bar before each line of a block quote. Breaks are held back until the next
 * output, so nothing trails and the break lands outside the tags that precede it.
 */
#define G_LOG_DOMAIN "tocsin-markdown"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>
#include <md4c.h>

#include "tocsin-markdown.h"
#include "tocsin-message.h"

#define ELLIPSIS "…"
#define QUOTE_BAR "▎ "
#define RULE "────────────"

typedef enum
{
  CONTAINER_QUOTE,
  CONTAINER_ITEM,
} ContainerKind;

typedef struct
{
  ContainerKind kind;
  gboolean      tight;            /* CONTAINER_ITEM: of a tight list */
  gboolean      bullet_pending;   /* CONTAINER_ITEM: its first line has not begun yet */
  char          bullet[16];       /* "• ", "12. " */
} Container;

typedef struct
{
  const char *close;        /* what leaving this level writes (static), or NULL */
  gboolean    container;    /* it pushed onto containers */
  gboolean    list;         /* it pushed onto lists */
  gboolean    link;         /* it counts in in_link */
  gboolean    image;        /* it counts in in_image */
} Level;

typedef struct
{
  gboolean ordered;
  gboolean tight;
  guint    next;            /* ordered: the next item's number */
  guint    depth;           /* how many lists are open around this one */
} List;

typedef struct
{
  GString   *out;
  gboolean   markup;         /* FALSE: plain text */
  gboolean   links;          /* markup: <a href> for safe links (GtkLabel's, not Pango's) */
  gboolean   full;           /* reached MAX_OUTPUT: only closing tags from now on */
  gboolean   started;        /* something visible was written */
  guint      breaks;         /* newlines owed before the next output */
  guint      break_depth;    /* containers around all of them: a blank line shows their bars */

  guint      depth;          /* open blocks and spans, counting those past MAX_DEPTH */
  Level      levels[TOCSIN_MARKDOWN_MAX_DEPTH];
  Container  containers[TOCSIN_MARKDOWN_MAX_DEPTH];
  guint      n_containers;
  List       lists[TOCSIN_MARKDOWN_MAX_DEPTH];
  guint      n_lists;
  guint      in_link;        /* open links and images that wrote or suppress an <a> */
  guint      in_image;       /* open images: their alt text is plain */
} Renderer;

/* ---- writing, within the bound ------------------------------------------------------------ */

static gboolean
fits (Renderer *self,
      gsize     n)
{
  if (self->full)
    return FALSE;
  if (self->out->len + n > TOCSIN_MARKDOWN_MAX_OUTPUT)
    {
      self->full = TRUE;
      return FALSE;
    }
  return TRUE;
}

/* Markup that is not text (a tag, a bar, a bullet): all of it or none. */
static gboolean
append_raw (Renderer   *self,
            const char *text)
{
  gsize n = strlen (text);

  if (!fits (self, n))
    return FALSE;
  g_string_append_len (self->out, text, n);
  return TRUE;
}

/* Text, escaped for markup; as much of it as fits, cut at a character. */
static void
append_escaped_len (Renderer   *self,
                    const char *text,
                    gsize       size)
{
  g_autofree char *escaped = NULL;
  const char *end = text + size;

  if (size == 0 || self->full)
    return;
  escaped = self->markup ? g_markup_escape_text (text, size) : g_strndup (text, size);
  if (self->out->len + strlen (escaped) <= TOCSIN_MARKDOWN_MAX_OUTPUT)
    {
      g_string_append (self->out, escaped);
      return;
    }
  /* The last piece: one character at a time, until the next would not fit. */
  for (const char *p = text; p < end; )
    {
      const char *next = g_utf8_find_next_char (p, end);
      g_autofree char *one = NULL;

      if (next == NULL)
        next = end;
      one = self->markup ? g_markup_escape_text (p, next - p) : g_strndup (p, next - p);
      if (self->out->len + strlen (one) > TOCSIN_MARKDOWN_MAX_OUTPUT)
        break;
      g_string_append (self->out, one);
      p = next;
    }
  self->full = TRUE;
}

/* Before any output but a closing tag: the breaks owed, each new line with its prefix (a bar
 * per quote, a bullet or indentation per list item). */
static void
flush (Renderer *self)
{
  if (self->full)
    return;
  if (!self->started)
    {
      self->breaks = 0;
      self->started = TRUE;
    }
  else if (self->breaks == 0)
    return;

  for (guint line = 0; line < MAX (self->breaks, 1); line++)
    {
      gboolean last = line + 1 >= self->breaks;

      if (self->breaks > 0 && !append_raw (self, "\n"))
        return;
      for (guint i = 0; i < (last ? self->n_containers : self->break_depth); i++)
        {
          Container *c = &self->containers[i];

          if (c->kind == CONTAINER_QUOTE)
            {
              if (!append_raw (self, QUOTE_BAR))
                return;
            }
          else if (last && c->bullet_pending)
            {
              g_autofree char *escaped = g_markup_escape_text (c->bullet, -1);

              if (!append_raw (self, escaped))
                return;
              c->bullet_pending = FALSE;
            }
          else if (last)
            {
              /* About as wide as the bullet, in a proportional font. */
              if (!append_raw (self, strlen (c->bullet) > 4 ? "     " : "    "))
                return;
            }
        }
    }
  self->breaks = 0;
}

/* Owes @n more newlines (@at_least: up to @n in all). */
static void
owe_breaks (Renderer *self,
            guint     n,
            gboolean  at_least)
{
  if (self->breaks == 0)
    self->break_depth = self->n_containers;
  else
    self->break_depth = MIN (self->break_depth, self->n_containers);
  self->breaks = at_least ? MAX (self->breaks, n) : self->breaks + n;
}

/* A block starts or ends: a blank line before whatever comes next, or just a new line
 * between the blocks of a tight list's item. */
static void
request_gap (Renderer *self)
{
  guint gap = 2;

  if (self->n_containers > 0)
    {
      Container *inner = &self->containers[self->n_containers - 1];

      if (inner->kind == CONTAINER_ITEM && inner->tight)
        gap = 1;
    }
  owe_breaks (self, gap, TRUE);
}

static void
append_text (Renderer   *self,
             const char *text,
             gsize       size)
{
  const char *end = text + size;

  /* A code block's text carries its own newlines: each starts a prefixed line. */
  while (text < end)
    {
      const char *newline = memchr (text, '\n', end - text);
      const char *stop = newline ? newline : end;

      if (stop > text)
        {
          flush (self);
          append_escaped_len (self, text, stop - text);
        }
      if (newline == NULL)
        break;
      owe_breaks (self, 1, FALSE);
      text = newline + 1;
    }
}

static void
append_unichar (Renderer *self,
                gunichar  c)
{
  char utf8[8];
  gsize n = g_unichar_to_utf8 (c, utf8);

  append_text (self, utf8, n);
}

/* ---- entities ----------------------------------------------------------------------------- */

/* md4c reports an entity only when it is a valid one; it leaves decoding to its caller. The
 * names a notification plausibly uses are decoded; any other is shown as written. */
static const struct
{
  const char *name;
  gunichar    c;
} named_entities[] = {
  { "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' }, { "apos", '\'' },
  { "nbsp", 0x00A0 }, { "copy", 0x00A9 }, { "reg", 0x00AE }, { "trade", 0x2122 },
  { "hellip", 0x2026 }, { "mdash", 0x2014 }, { "ndash", 0x2013 }, { "laquo", 0x00AB },
  { "raquo", 0x00BB }, { "deg", 0x00B0 }, { "times", 0x00D7 }, { "euro", 0x20AC },
  { "middot", 0x00B7 }, { "bull", 0x2022 }, { "larr", 0x2190 }, { "rarr", 0x2192 },
  { "uarr", 0x2191 }, { "darr", 0x2193 }, { "check", 0x2713 }, { "cross", 0x2717 },
};

/* The character of "&...;", or 0 when this renderer does not know it. */
static gunichar
decode_entity (const char *text,
               gsize       size)
{
  if (size < 3 || text[0] != '&' || text[size - 1] != ';')
    return 0;
  if (text[1] == '#')
    {
      gboolean hex = size > 3 && (text[2] == 'x' || text[2] == 'X');
      guint64 value = 0;
      gsize digits = 0;

      for (gsize i = hex ? 3 : 2; i < size - 1; i++, digits++)
        {
          int d = hex ? g_ascii_xdigit_value (text[i]) : g_ascii_digit_value (text[i]);

          if (d < 0)
            return 0;
          value = value * (hex ? 16 : 10) + d;
          if (value > 0x10FFFF)
            return 0xFFFD;
        }
      if (digits == 0)
        return 0;
      /* CommonMark: U+0000, and what is not a character, become U+FFFD. */
      if (value == 0 || !g_unichar_validate ((gunichar) value))
        return 0xFFFD;
      return (gunichar) value;
    }
  for (guint i = 0; i < G_N_ELEMENTS (named_entities); i++)
    if (strlen (named_entities[i].name) == size - 2 &&
        memcmp (named_entities[i].name, text + 1, size - 2) == 0)
      return named_entities[i].c;
  return 0;
}

/* An attribute (a link's target) as plain UTF-8. */
static char *
attribute_to_string (const MD_ATTRIBUTE *attr)
{
  GString *s = g_string_sized_new (attr->size);

  for (guint i = 0; attr->substr_offsets[i] < attr->size; i++)
    {
      const char *text = attr->text + attr->substr_offsets[i];
      gsize size = attr->substr_offsets[i + 1] - attr->substr_offsets[i];
      gunichar c;

      switch (attr->substr_types[i])
        {
        case MD_TEXT_ENTITY:
          if ((c = decode_entity (text, size)) != 0)
            g_string_append_unichar (s, c);
          else
            g_string_append_len (s, text, size);
          break;
        case MD_TEXT_NULLCHAR:
          g_string_append_unichar (s, 0xFFFD);
          break;
        default:
          g_string_append_len (s, text, size);
          break;
        }
    }
  return g_string_free (s, FALSE);
}

/* ---- md4c's callbacks --------------------------------------------------------------------- */

/* Enters a level; NULL past the nesting bound (then the caller writes nothing). */
static Level *
push_level (Renderer *self)
{
  Level *level;

  if (self->depth++ >= TOCSIN_MARKDOWN_MAX_DEPTH)
    return NULL;
  level = &self->levels[self->depth - 1];
  memset (level, 0, sizeof *level);
  return level;
}

/* Writes @open now and @close when the level is left, if the markup has room for it. */
static void
open_tag (Renderer   *self,
          Level      *level,
          const char *open,
          const char *close)
{
  if (!self->markup)
    return;
  flush (self);
  if (append_raw (self, open))
    level->close = close;
}

static void
push_container (Renderer      *self,
                Level         *level,
                ContainerKind  kind)
{
  Container *c = &self->containers[self->n_containers++];

  memset (c, 0, sizeof *c);
  c->kind = kind;
  level->container = TRUE;
}

static int
enter_block (MD_BLOCKTYPE  type,
             void         *detail,
             void         *user_data)
{
  Renderer *self = user_data;
  Level *level = push_level (self);

  if (level == NULL || type == MD_BLOCK_DOC)
    return 0;

  switch (type)
    {
    case MD_BLOCK_QUOTE:
      request_gap (self);
      push_container (self, level, CONTAINER_QUOTE);
      break;

    case MD_BLOCK_UL:
    case MD_BLOCK_OL:
      {
        List *list = &self->lists[self->n_lists++];

        request_gap (self);
        list->ordered = type == MD_BLOCK_OL;
        list->tight = type == MD_BLOCK_OL ? ((MD_BLOCK_OL_DETAIL *) detail)->is_tight
                                          : ((MD_BLOCK_UL_DETAIL *) detail)->is_tight;
        list->next = type == MD_BLOCK_OL ? ((MD_BLOCK_OL_DETAIL *) detail)->start : 1;
        list->depth = self->n_lists - 1;
        level->list = TRUE;
      }
      break;

    case MD_BLOCK_LI:
      {
        List *list = self->n_lists > 0 ? &self->lists[self->n_lists - 1] : NULL;
        Container *item;

        owe_breaks (self, list && list->tight ? 1 : 2, TRUE);
        push_container (self, level, CONTAINER_ITEM);
        item = &self->containers[self->n_containers - 1];
        item->tight = list == NULL || list->tight;
        item->bullet_pending = TRUE;
        if (list && list->ordered)
          g_snprintf (item->bullet, sizeof item->bullet, "%u. ", list->next++);
        else
          g_strlcpy (item->bullet, list && list->depth % 2 ? "◦ " : "• ", sizeof item->bullet);
      }
      break;

    case MD_BLOCK_HR:
      request_gap (self);
      flush (self);
      append_raw (self, RULE);
      request_gap (self);
      break;

    case MD_BLOCK_H:
      {
        unsigned h = ((MD_BLOCK_H_DETAIL *) detail)->level;

        request_gap (self);
        if (h <= 1)
          open_tag (self, level, "<span size=\"x-large\" weight=\"bold\">", "</span>");
        else if (h == 2)
          open_tag (self, level, "<span size=\"large\" weight=\"bold\">", "</span>");
        else
          open_tag (self, level, "<b>", "</b>");
      }
      break;

    case MD_BLOCK_CODE:
      request_gap (self);
      open_tag (self, level, "<tt>", "</tt>");
      break;

    default:
      /* Paragraphs, and HTML or table blocks should md4c ever report them (it is asked not
       * to): their text is shown as text. */
      request_gap (self);
      break;
    }
  return 0;
}

/* Leaves the innermost level (FALSE if none is open). */
static gboolean
pop_level (Renderer *self)
{
  Level *level;

  if (self->depth == 0)
    return FALSE;
  if (self->depth-- > TOCSIN_MARKDOWN_MAX_DEPTH)
    return TRUE;
  level = &self->levels[self->depth];
  /* Closing tags are always written: they are what keeps the markup well-formed. */
  if (level->close)
    g_string_append (self->out, level->close);
  if (level->container)
    self->n_containers--;
  if (level->list)
    self->n_lists--;
  if (level->link)
    self->in_link--;
  if (level->image)
    self->in_image--;
  return TRUE;
}

static int
leave_block (MD_BLOCKTYPE  type,
             void         *detail,
             void         *user_data)
{
  Renderer *self = user_data;

  if (pop_level (self) && type != MD_BLOCK_DOC && type != MD_BLOCK_LI)
    request_gap (self);
  return 0;
}

static int
enter_span (MD_SPANTYPE  type,
            void        *detail,
            void        *user_data)
{
  Renderer *self = user_data;
  Level *level = push_level (self);

  if (level == NULL)
    return 0;

  switch (type)
    {
    case MD_SPAN_EM:
      if (!self->in_image)
        open_tag (self, level, "<i>", "</i>");
      break;
    case MD_SPAN_STRONG:
      if (!self->in_image)
        open_tag (self, level, "<b>", "</b>");
      break;
    case MD_SPAN_CODE:
      if (!self->in_image)
        open_tag (self, level, "<tt>", "</tt>");
      break;
    case MD_SPAN_DEL:
      if (!self->in_image)
        open_tag (self, level, "<s>", "</s>");
      break;
    case MD_SPAN_U:
      if (!self->in_image)
        open_tag (self, level, "<u>", "</u>");
      break;

    case MD_SPAN_A:
      {
        g_autofree char *href = attribute_to_string (&((MD_SPAN_A_DETAIL *) detail)->href);

        /* An http(s) link becomes one; anything else (javascript:, file:, mailto:...) is
         * shown as its text. */
        if (self->links && self->in_link == 0 && self->in_image == 0 &&
            tocsin_link_is_safe (href, NULL))
          {
            g_autofree char *escaped = g_markup_escape_text (href, -1);
            g_autofree char *open = g_strdup_printf ("<a href=\"%s\">", escaped);

            open_tag (self, level, open, "</a>");
          }
        self->in_link++;
        level->link = TRUE;
      }
      break;

    case MD_SPAN_IMG:
      /* Never fetched: its alt text (the span's text) stands for it. */
      self->in_image++;
      level->image = TRUE;
      break;

    default:
      break;
    }
  return 0;
}

static int
leave_span (MD_SPANTYPE  type,
            void        *detail,
            void        *user_data)
{
  pop_level (user_data);
  return 0;
}

static int
on_text (MD_TEXTTYPE     type,
         const MD_CHAR  *text,
         MD_SIZE         size,
         void           *user_data)
{
  Renderer *self = user_data;
  gunichar c;

  switch (type)
    {
    case MD_TEXT_NULLCHAR:
      append_unichar (self, 0xFFFD);
      break;
    case MD_TEXT_BR:
    case MD_TEXT_SOFTBR:
      /* A notification's lines are meant as lines: a soft break is kept, not joined. */
      owe_breaks (self, 1, FALSE);
      break;
    case MD_TEXT_ENTITY:
      if ((c = decode_entity (text, size)) != 0)
        append_unichar (self, c);
      else
        append_text (self, text, size);
      break;
    default:
      /* Normal text, code, and raw HTML should it ever come (MD_FLAG_NOHTML): all text. */
      append_text (self, text, size);
      break;
    }
  return 0;
}

/* ---- the API ------------------------------------------------------------------------------ */

static char *
render (const char *markdown,
        gboolean    markup,
        gboolean    links)
{
  static const MD_PARSER parser = {
    .abi_version = 0,
    /* Raw HTML is text; ~~strikethrough~~; bare http(s):// and www. links. No tables, task
     * lists, LaTeX or wiki links: a label cannot show them. */
    .flags = MD_FLAG_NOHTML | MD_FLAG_STRIKETHROUGH | MD_FLAG_PERMISSIVEURLAUTOLINKS |
             MD_FLAG_PERMISSIVEWWWAUTOLINKS,
    .enter_block = enter_block,
    .leave_block = leave_block,
    .enter_span = enter_span,
    .leave_span = leave_span,
    .text = on_text,
  };
  Renderer self = { 0 };
  g_autofree char *valid = NULL;
  g_autofree char *padded = NULL;
  gsize length;
  gboolean cut = FALSE;

  g_return_val_if_fail (markdown != NULL, g_strdup (""));

  /* Records are valid UTF-8 (TocsinMessage checks), but this is also the fuzzer's entry. */
  length = strlen (markdown);
  if (!g_utf8_validate (markdown, length, NULL))
    {
      valid = g_utf8_make_valid (markdown, length);
      markdown = valid;
      length = strlen (markdown);
    }
  if (length > TOCSIN_MARKDOWN_MAX_INPUT)
    {
      const char *end = g_utf8_find_prev_char (markdown, markdown + TOCSIN_MARKDOWN_MAX_INPUT + 1);

      length = end ? (gsize) (end - markdown) : 0;
      cut = TRUE;
    }

  /* md4c 0.4.8 (Debian 12) reads past a document that does not end with a line end, and
   * follows what it read there (fuzz-markdown's corpus file md4c-past-the-end): it is given
   * one that does, and zeroes after it. */
  padded = g_malloc0 (length + 64);
  memcpy (padded, markdown, length);
  if (length == 0 || padded[length - 1] != '\n')
    padded[length++] = '\n';
  markdown = padded;

  self.out = g_string_sized_new (length + length / 4 + 16);
  self.markup = markup;
  self.links = links;
  if (md_parse (markdown, (MD_SIZE) length, &parser, &self) != 0)
    {
      /* md4c ran out of memory: the text as it is, rather than nothing. */
      g_string_truncate (self.out, 0);
      self.full = FALSE;
      self.depth = 0;
      append_escaped_len (&self, markdown, length);
    }
  while (pop_level (&self))
    ;
  if (cut || self.full)
    g_string_append (self.out, ELLIPSIS);
  return g_string_free (self.out, FALSE);
}

char *
tocsin_markdown_to_markup (const char *markdown)
{
  return render (markdown, TRUE, TRUE);
}

char *
tocsin_markdown_to_pango (const char *markdown)
{
  return render (markdown, TRUE, FALSE);
}

char *
tocsin_markdown_to_text (const char *markdown)
{
  return render (markdown, FALSE, FALSE);
}
