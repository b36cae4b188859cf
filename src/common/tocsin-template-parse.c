/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-template"

#include "config.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "tocsin-template-private.h"

/*
 * The lexer and the parser: template source to AST, with positions for errors.
 *
 * The grammar (EBNF: {x} repeats, [x] is optional, 'x' is a token). A template is text with
 * expressions in it; a condition is one bare expression:
 *
 *   template       -> { TEXT | '{{' expression '}}' }
 *   condition      -> [ expression ]
 *   expression     -> nullish [ '?' expression ':' expression ]
 *   nullish        -> or { '??' or }
 *   or             -> and { '||' and }
 *   and            -> equality { '&&' equality }
 *   equality       -> relational { ( '==' | '!=' | '===' | '!==' ) relational }
 *   relational     -> additive { ( '<' | '>' | '<=' | '>=' ) additive }
 *   additive       -> multiplicative { ( '+' | '-' ) multiplicative }
 *   multiplicative -> unary { ( '*' | '/' | '%' ) unary }
 *   unary          -> ( '!' | '-' | '+' ) unary | postfix
 *   postfix        -> primary { '.' property | call | '[' expression ']' }
 *   property       -> NAME | NUMBER
 *   call           -> '.' METHOD '(' [ expression ] ')'
 *   primary        -> NUMBER | STRING | NAME | '(' expression ')'
 *
 *   METHOD  -> includes | startsWith | endsWith  (one argument)
 *            | toUpperCase | toLowerCase | trim | toString  (none)
 *   NAME    -> a JavaScript identifier (Unicode letters, '$', '_'); true, false, null and
 *              undefined are literals
 *   NUMBER  -> decimal digits with an optional fraction and exponent ("1.5e3", ".5"), or "0x"
 *              and hexadecimal digits; after a '.', digits alone (a.0 is a[0])
 *   STRING  -> '...' or "..." with JavaScript's escapes (\n, \xHH, \uHHHH, \u{H...})
 *
 * Precedence, loosest first, as JavaScript's (all binary levels are left-associative):
 *
 *   1  ? :                      right-associative
 *   2  ??
 *   3  ||
 *   4  &&
 *   5  == != === !==
 *   6  < > <= >=
 *   7  + -
 *   8  * / %
 *   9  ! - +  (prefix)          right-associative
 *   10 . [] ()  (postfix)
 *
 * Unlike JavaScript, ?? mixes freely with || and && (it binds looser than both). Recursion
 * follows the source, so parser_enter() and node_new() cap the nesting at
 * TOCSIN_TEMPLATE_MAX_DEPTH; the lexer reports positions a channel editor can underline.
 */

/* ---- errors ---- */

typedef struct
{
  gssize offset; /* -1: the error has no position */
  guint line;
  guint column;
  char *reason;
} TocsinTemplateErrorPrivate;

static void
tocsin_template_error_private_init (TocsinTemplateErrorPrivate *priv)
{
  priv->offset = -1;
  priv->line = 0;
  priv->column = 0;
  priv->reason = NULL;
}

static void
tocsin_template_error_private_copy (const TocsinTemplateErrorPrivate *src,
                                    TocsinTemplateErrorPrivate       *dest)
{
  dest->offset = src->offset;
  dest->line = src->line;
  dest->column = src->column;
  dest->reason = g_strdup (src->reason);
}

static void
tocsin_template_error_private_clear (TocsinTemplateErrorPrivate *priv)
{
  g_clear_pointer (&priv->reason, g_free);
}

G_DEFINE_EXTENDED_ERROR (TocsinTemplateError, tocsin_template_error)

gboolean
tocsin_template_error_get_position (const GError *error,
                                    guint        *line,
                                    guint        *column,
                                    gsize        *offset)
{
  TocsinTemplateErrorPrivate *priv;

  if (error == NULL || error->domain != TOCSIN_TEMPLATE_ERROR)
    return FALSE;
  priv = tocsin_template_error_get_private (error);
  if (priv == NULL || priv->offset < 0)
    return FALSE;
  if (line)
    *line = priv->line;
  if (column)
    *column = priv->column;
  if (offset)
    *offset = (gsize) priv->offset;
  return TRUE;
}

const char *
tocsin_template_error_get_reason (const GError *error)
{
  TocsinTemplateErrorPrivate *priv;

  if (error == NULL || error->domain != TOCSIN_TEMPLATE_ERROR)
    return NULL;
  priv = tocsin_template_error_get_private (error);
  return priv ? priv->reason : NULL;
}
static const struct
{
  const char *name;
  Method method;
  guint n_args;
} methods[] = {
  { "includes", METHOD_INCLUDES, 1 },
  { "startsWith", METHOD_STARTS_WITH, 1 },
  { "endsWith", METHOD_ENDS_WITH, 1 },
  { "toUpperCase", METHOD_TO_UPPER_CASE, 0 },
  { "toLowerCase", METHOD_TO_LOWER_CASE, 0 },
  { "trim", METHOD_TRIM, 0 },
  { "toString", METHOD_TO_STRING, 0 },
};
void
node_free (Node *node)
{
  if (node == NULL)
    return;
  node_free (node->a);
  node_free (node->b);
  node_free (node->c);
  g_free (node->name);
  value_clear (&node->literal);
  g_free (node);
}
static void
part_free (gpointer data)
{
  Part *part = data;

  g_free (part->text);
  node_free (part->expr);
  g_free (part);
}
/* ---- the lexer and parser ---- */

typedef enum
{
  TOK_END,       /* "}}" in a template; the end of the source in a condition */
  TOK_EOF,       /* the end of the source inside "{{" */
  TOK_NUMBER,
  TOK_STRING,
  TOK_IDENT,
  TOK_LPAREN, TOK_RPAREN, TOK_LBRACKET, TOK_RBRACKET,
  TOK_DOT, TOK_COMMA, TOK_QUESTION, TOK_COLON,
  TOK_NOT, TOK_EQ, TOK_NE, TOK_STRICT_EQ, TOK_STRICT_NE,
  TOK_LT, TOK_GT, TOK_LE, TOK_GE,
  TOK_AND, TOK_OR, TOK_NULLISH,
  TOK_PLUS, TOK_MINUS, TOK_STAR, TOK_SLASH, TOK_PERCENT,
} TokenKind;

static const char * const token_text[] = {
  [TOK_LPAREN] = "(", [TOK_RPAREN] = ")", [TOK_LBRACKET] = "[", [TOK_RBRACKET] = "]",
  [TOK_DOT] = ".", [TOK_COMMA] = ",", [TOK_QUESTION] = "?", [TOK_COLON] = ":",
  [TOK_NOT] = "!", [TOK_EQ] = "==", [TOK_NE] = "!=", [TOK_STRICT_EQ] = "===",
  [TOK_STRICT_NE] = "!==", [TOK_LT] = "<", [TOK_GT] = ">", [TOK_LE] = "<=", [TOK_GE] = ">=",
  [TOK_AND] = "&&", [TOK_OR] = "||", [TOK_NULLISH] = "??", [TOK_PLUS] = "+",
  [TOK_MINUS] = "-", [TOK_STAR] = "*", [TOK_SLASH] = "/", [TOK_PERCENT] = "%",
};

typedef struct
{
  TokenKind kind;
  gsize start;
  gsize end;
  double number;
  char *text;    /* TOK_STRING: the value; TOK_IDENT, TOK_NUMBER: the source text */
  gsize length;
} Token;

typedef struct
{
  const char *field;
  const char *source;
  gsize length;
  gboolean condition;
  gsize pos;
  Token token;
  TokenKind prev_kind;
  guint nesting;
  GError *error;
} Parser;

static void
position_of (const char *source,
             gsize       offset,
             guint      *line,
             guint      *column)
{
  *line = 1;
  *column = 1;
  for (gsize i = 0; i < offset && source[i]; i++)
    {
      if (source[i] == '\n')
        {
          (*line)++;
          *column = 1;
        }
      else if (((guchar) source[i] & 0xC0) != 0x80)
        (*column)++;
    }
}

static void
set_position_error (GError             **error,
                    const char          *field,
                    const char          *source,
                    gsize                offset,
                    TocsinTemplateError  code,
                    const char          *reason)
{
  TocsinTemplateErrorPrivate *priv;
  guint line, column;

  position_of (source, offset, &line, &column);
  if (strchr (source, '\n') != NULL)
    /* Translators: "body, line 2, column 14: expected '}}'" */
    g_set_error (error, TOCSIN_TEMPLATE_ERROR, code, _("%s, line %u, column %u: %s"),
                 field, line, column, reason);
  else
    /* Translators: "body, column 14: expected '}}'" */
    g_set_error (error, TOCSIN_TEMPLATE_ERROR, code, _("%s, column %u: %s"),
                 field, column, reason);

  if (error == NULL || *error == NULL)
    return;
  priv = tocsin_template_error_get_private (*error);
  priv->offset = offset;
  priv->line = line;
  priv->column = column;
  priv->reason = g_strdup (reason);
}

static void G_GNUC_PRINTF (4, 5)
parser_fail (Parser              *p,
             gsize                offset,
             TocsinTemplateError  code,
             const char          *format,
             ...)
{
  g_autofree char *reason = NULL;
  va_list args;

  if (p->error != NULL)
    return;
  va_start (args, format);
  reason = g_strdup_vprintf (format, args);
  va_end (args);
  set_position_error (&p->error, p->field, p->source, offset, code, reason);
}

static void
token_clear (Token *token)
{
  g_clear_pointer (&token->text, g_free);
  token->length = 0;
  token->number = 0;
}

/* Bytes of the identifier character at @pos, or 0. */
static gsize
ident_char_at (Parser   *p,
               gsize     pos,
               gboolean  first)
{
  guchar c;
  gunichar u;

  if (pos >= p->length)
    return 0;
  c = p->source[pos];
  if (c < 0x80)
    return (g_ascii_isalpha (c) || c == '_' || c == '$' || (!first && g_ascii_isdigit (c))) ? 1 : 0;
  u = g_utf8_get_char (p->source + pos);
  if (g_unichar_isalpha (u) || (!first && (g_unichar_isdigit (u) || g_unichar_ismark (u))))
    return g_utf8_next_char (p->source + pos) - (p->source + pos);
  return 0;
}

static void
describe_char (Parser  *p,
               gsize    pos,
               char    *buf)
{
  gunichar u = g_utf8_get_char (p->source + pos);

  if (u < 0x20 || u == 0x7F || is_js_space (u))
    g_snprintf (buf, 16, "U+%04X", u);
  else
    {
      gint n = g_unichar_to_utf8 (u, buf);
      buf[n] = '\0';
    }
}

static gboolean
read_hex (Parser  *p,
          gsize    pos,
          guint    n,
          guint32 *value)
{
  *value = 0;
  for (guint i = 0; i < n; i++)
    {
      if (pos + i >= p->length || !g_ascii_isxdigit (p->source[pos + i]))
        return FALSE;
      *value = *value * 16 + g_ascii_xdigit_value (p->source[pos + i]);
    }
  return TRUE;
}

static void
append_unichar (GString  *s,
                gunichar  c)
{
  /* Strings are NUL-terminated and valid UTF-8: NUL and lone surrogates become U+FFFD. */
  if (c == 0 || (c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
    c = 0xFFFD;
  g_string_append_unichar (s, c);
}

static gboolean
lex_string (Parser *p)
{
  char quote = p->source[p->pos];
  gsize start = p->pos;
  GString *s = g_string_new (NULL);

  p->pos++;
  for (;;)
    {
      char c;

      if (p->pos >= p->length || p->source[p->pos] == '\n' || p->source[p->pos] == '\r')
        {
          parser_fail (p, start, TOCSIN_TEMPLATE_ERROR_SYNTAX, _("unterminated string"));
          g_string_free (s, TRUE);
          return FALSE;
        }
      c = p->source[p->pos];
      if (c == quote)
        {
          p->pos++;
          break;
        }
      if (c != '\\')
        {
          g_string_append_c (s, c);
          p->pos++;
          continue;
        }

      /* an escape */
      {
        gsize escape = p->pos;
        guint32 value;

        p->pos++;
        if (p->pos >= p->length)
          continue; /* reported as unterminated above */
        c = p->source[p->pos];
        switch (c)
          {
          case 'n': g_string_append_c (s, '\n'); p->pos++; break;
          case 't': g_string_append_c (s, '\t'); p->pos++; break;
          case 'r': g_string_append_c (s, '\r'); p->pos++; break;
          case 'b': g_string_append_c (s, '\b'); p->pos++; break;
          case 'f': g_string_append_c (s, '\f'); p->pos++; break;
          case 'v': g_string_append_c (s, '\v'); p->pos++; break;
          case '0': append_unichar (s, 0); p->pos++; break;
          case '\r':
            p->pos++;
            if (p->pos < p->length && p->source[p->pos] == '\n')
              p->pos++;
            break;
          case '\n':
            p->pos++; /* a line continuation */
            break;
          case 'x':
            if (!read_hex (p, p->pos + 1, 2, &value))
              goto bad_escape;
            append_unichar (s, value);
            p->pos += 3;
            break;
          case 'u':
            if (p->pos + 1 < p->length && p->source[p->pos + 1] == '{')
              {
                gsize i = p->pos + 2;

                value = 0;
                while (i < p->length && g_ascii_isxdigit (p->source[i]) && value <= 0x10FFFF)
                  value = value * 16 + g_ascii_xdigit_value (p->source[i++]);
                if (i == p->pos + 2 || i >= p->length || p->source[i] != '}' || value > 0x10FFFF)
                  goto bad_escape;
                append_unichar (s, value);
                p->pos = i + 1;
              }
            else
              {
                if (!read_hex (p, p->pos + 1, 4, &value))
                  goto bad_escape;
                p->pos += 5;
                if (value >= 0xD800 && value <= 0xDBFF && p->pos + 1 < p->length
                    && p->source[p->pos] == '\\' && p->source[p->pos + 1] == 'u')
                  {
                    guint32 low;

                    if (read_hex (p, p->pos + 2, 4, &low) && low >= 0xDC00 && low <= 0xDFFF)
                      {
                        value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00);
                        p->pos += 6;
                      }
                  }
                append_unichar (s, value);
              }
            break;
          default:
            {
              /* Any other character stands for itself, as in JavaScript. */
              const char *next = g_utf8_next_char (p->source + p->pos);
              g_string_append_len (s, p->source + p->pos, next - (p->source + p->pos));
              p->pos = next - p->source;
            }
            break;
          }
        continue;

      bad_escape:
        parser_fail (p, escape, TOCSIN_TEMPLATE_ERROR_SYNTAX, _("invalid escape sequence"));
        g_string_free (s, TRUE);
        return FALSE;
      }
    }

  p->token.kind = TOK_STRING;
  p->token.length = s->len;
  p->token.text = g_string_free (s, FALSE);
  return TRUE;
}

static gboolean
lex_number (Parser *p)
{
  gsize start = p->pos;
  const char *s = p->source;

  if (p->prev_kind == TOK_DOT)
    {
      /* a.0.b: an array index after a dot, as Handlebars users write it */
      while (p->pos < p->length && g_ascii_isdigit (s[p->pos]))
        p->pos++;
      if (p->pos == start)
        goto invalid;
    }
  else if (s[p->pos] == '0' && p->pos + 1 < p->length
           && (s[p->pos + 1] == 'x' || s[p->pos + 1] == 'X'))
    {
      p->pos += 2;
      while (p->pos < p->length && g_ascii_isxdigit (s[p->pos]))
        p->pos++;
      if (p->pos == start + 2)
        goto invalid;
    }
  else
    {
      while (p->pos < p->length && g_ascii_isdigit (s[p->pos]))
        p->pos++;
      if (p->pos < p->length && s[p->pos] == '.')
        {
          p->pos++;
          while (p->pos < p->length && g_ascii_isdigit (s[p->pos]))
            p->pos++;
        }
      if (p->pos < p->length && (s[p->pos] == 'e' || s[p->pos] == 'E'))
        {
          gsize digits;

          p->pos++;
          if (p->pos < p->length && (s[p->pos] == '+' || s[p->pos] == '-'))
            p->pos++;
          digits = p->pos;
          while (p->pos < p->length && g_ascii_isdigit (s[p->pos]))
            p->pos++;
          if (p->pos == digits)
            goto invalid;
        }
    }

  /* "3px" is not a number followed by a name */
  if (ident_char_at (p, p->pos, FALSE) > 0)
    goto invalid;

  p->token.kind = TOK_NUMBER;
  p->token.text = g_strndup (s + start, p->pos - start);
  p->token.length = p->pos - start;
  p->token.number = string_to_number (p->token.text, p->token.length);
  return TRUE;

invalid:
  parser_fail (p, start, TOCSIN_TEMPLATE_ERROR_SYNTAX, _("invalid number"));
  return FALSE;
}

static gboolean
prev_ends_value (Parser *p)
{
  switch (p->prev_kind)
    {
    case TOK_IDENT:
    case TOK_NUMBER:
    case TOK_STRING:
    case TOK_RPAREN:
    case TOK_RBRACKET:
      return TRUE;
    default:
      return FALSE;
    }
}

/* Reads the next token into p->token. */
static gboolean
lex (Parser *p)
{
  const char *s = p->source;
  char c, next;
  char buf[16];

  p->prev_kind = p->token.kind;
  token_clear (&p->token);

  while (p->pos < p->length)
    {
      if (g_ascii_isspace (s[p->pos]))
        p->pos++;
      else if ((guchar) s[p->pos] >= 0x80 && is_js_space (g_utf8_get_char (s + p->pos)))
        p->pos = g_utf8_next_char (s + p->pos) - s;
      else
        break;
    }

  p->token.start = p->pos;
  if (p->pos >= p->length)
    {
      p->token.kind = p->condition ? TOK_END : TOK_EOF;
      p->token.end = p->pos;
      return TRUE;
    }

  c = s[p->pos];
  next = p->pos + 1 < p->length ? s[p->pos + 1] : '\0';

#define PUNCT(kind_, n_) do { p->token.kind = (kind_); p->pos += (n_); goto done; } while (0)
  switch (c)
    {
    case '}':
      if (!p->condition && next == '}')
        PUNCT (TOK_END, 2);
      parser_fail (p, p->pos, TOCSIN_TEMPLATE_ERROR_SYNTAX,
                   p->condition ? _("unexpected '}'") : _("expected '}}'"));
      return FALSE;
    case '{':
      if (next == '{')
        parser_fail (p, p->pos, TOCSIN_TEMPLATE_ERROR_SYNTAX,
                     p->condition ? _("write the condition without '{{' and '}}'")
                                  : _("unexpected '{{': expressions cannot be nested"));
      else
        parser_fail (p, p->pos, TOCSIN_TEMPLATE_ERROR_SYNTAX, _("unexpected '{'"));
      return FALSE;
    case '"':
    case '\'':
      if (!lex_string (p))
        return FALSE;
      goto done;
    case '(': PUNCT (TOK_LPAREN, 1);
    case ')': PUNCT (TOK_RPAREN, 1);
    case '[': PUNCT (TOK_LBRACKET, 1);
    case ']': PUNCT (TOK_RBRACKET, 1);
    case ',': PUNCT (TOK_COMMA, 1);
    case ':': PUNCT (TOK_COLON, 1);
    case '+': PUNCT (TOK_PLUS, 1);
    case '-': PUNCT (TOK_MINUS, 1);
    case '*': PUNCT (TOK_STAR, 1);
    case '/': PUNCT (TOK_SLASH, 1);
    case '%': PUNCT (TOK_PERCENT, 1);
    case '?':
      if (next == '?')
        PUNCT (TOK_NULLISH, 2);
      PUNCT (TOK_QUESTION, 1);
    case '.':
      if (g_ascii_isdigit (next) && !prev_ends_value (p))
        {
          if (!lex_number (p))
            return FALSE;
          goto done;
        }
      PUNCT (TOK_DOT, 1);
    case '!':
      if (next == '=')
        {
          if (p->pos + 2 < p->length && s[p->pos + 2] == '=')
            PUNCT (TOK_STRICT_NE, 3);
          PUNCT (TOK_NE, 2);
        }
      PUNCT (TOK_NOT, 1);
    case '=':
      if (next == '=')
        {
          if (p->pos + 2 < p->length && s[p->pos + 2] == '=')
            PUNCT (TOK_STRICT_EQ, 3);
          PUNCT (TOK_EQ, 2);
        }
      parser_fail (p, p->pos, TOCSIN_TEMPLATE_ERROR_SYNTAX,
                   _("unexpected '=': write '==' to compare"));
      return FALSE;
    case '<':
      if (next == '=')
        PUNCT (TOK_LE, 2);
      PUNCT (TOK_LT, 1);
    case '>':
      if (next == '=')
        PUNCT (TOK_GE, 2);
      PUNCT (TOK_GT, 1);
    case '&':
      if (next == '&')
        PUNCT (TOK_AND, 2);
      parser_fail (p, p->pos, TOCSIN_TEMPLATE_ERROR_SYNTAX, _("unexpected '&': write '&&'"));
      return FALSE;
    case '|':
      if (next == '|')
        PUNCT (TOK_OR, 2);
      parser_fail (p, p->pos, TOCSIN_TEMPLATE_ERROR_SYNTAX, _("unexpected '|': write '||'"));
      return FALSE;
    default:
      break;
    }
#undef PUNCT

  if (g_ascii_isdigit (c))
    {
      if (!lex_number (p))
        return FALSE;
      goto done;
    }

  if (ident_char_at (p, p->pos, TRUE) > 0)
    {
      gsize start = p->pos;
      gsize n;

      while ((n = ident_char_at (p, p->pos, p->pos == start)) > 0)
        p->pos += n;
      p->token.kind = TOK_IDENT;
      p->token.text = g_strndup (s + start, p->pos - start);
      p->token.length = p->pos - start;
      goto done;
    }

  describe_char (p, p->pos, buf);
  parser_fail (p, p->pos, TOCSIN_TEMPLATE_ERROR_SYNTAX, _("unexpected character '%s'"), buf);
  return FALSE;

done:
  p->token.end = p->pos;
  return TRUE;
}

/* What a token is called in "unexpected ..." messages. */
static char *
describe_token (Parser *p)
{
  switch (p->token.kind)
    {
    case TOK_END:
      return g_strdup (p->condition ? _("end of condition") : "'}}'");
    case TOK_EOF:
      return g_strdup (_("end of template"));
    case TOK_NUMBER:
      return g_strdup_printf (_("number %s"), p->token.text);
    case TOK_STRING:
      return g_strdup (_("string"));
    case TOK_IDENT:
      return g_strdup_printf ("'%s'", p->token.text);
    default:
      return g_strdup_printf ("'%s'", token_text[p->token.kind]);
    }
}

static void
fail_unexpected (Parser *p)
{
  g_autofree char *what = NULL;

  if (p->token.kind == TOK_EOF || (p->condition && p->token.kind == TOK_END))
    {
      parser_fail (p, p->token.start, TOCSIN_TEMPLATE_ERROR_SYNTAX,
                   _("unexpected end of expression"));
      return;
    }
  if (p->token.kind == TOK_END)
    {
      parser_fail (p, p->token.start, TOCSIN_TEMPLATE_ERROR_SYNTAX,
                   _("expected an expression before '}}'"));
      return;
    }
  what = describe_token (p);
  parser_fail (p, p->token.start, TOCSIN_TEMPLATE_ERROR_SYNTAX, _("unexpected %s"), what);
}

static gboolean
expect (Parser     *p,
        TokenKind   kind,
        const char *what)
{
  if (p->token.kind != kind)
    {
      parser_fail (p, p->token.start, TOCSIN_TEMPLATE_ERROR_SYNTAX, _("expected %s"), what);
      return FALSE;
    }
  return lex (p);
}

/* Nodes are built here only; the AST depth cap is checked on every one. */
static Node *
node_new (Parser   *p,
          NodeKind  kind,
          gsize     offset,
          Node     *a,
          Node     *b,
          Node     *c)
{
  Node *node = g_new0 (Node, 1);
  guint depth = 0;

  node->kind = kind;
  node->offset = offset;
  node->a = a;
  node->b = b;
  node->c = c;
  if (a)
    depth = MAX (depth, a->depth);
  if (b)
    depth = MAX (depth, b->depth);
  if (c)
    depth = MAX (depth, c->depth);
  node->depth = depth + 1;
  if (node->depth > TOCSIN_TEMPLATE_MAX_DEPTH)
    {
      parser_fail (p, offset, TOCSIN_TEMPLATE_ERROR_TOO_LARGE,
                   _("the expression is nested more than %d levels deep"),
                   TOCSIN_TEMPLATE_MAX_DEPTH);
      node_free (node);
      return NULL;
    }
  return node;
}

/* Parser recursion follows the source, so it is capped like the AST. */
static gboolean
parser_enter (Parser *p)
{
  if (++p->nesting > TOCSIN_TEMPLATE_MAX_DEPTH)
    {
      parser_fail (p, p->token.start, TOCSIN_TEMPLATE_ERROR_TOO_LARGE,
                   _("the expression is nested more than %d levels deep"),
                   TOCSIN_TEMPLATE_MAX_DEPTH);
      return FALSE;
    }
  return TRUE;
}

static Node *parse_expression (Parser *p);

static gboolean
is_clock_name (const char *name)
{
  static const char * const names[] = {
    "timezone", "now", "iso", "epochMs", "epochSeconds", "year", "month", "monthName",
    "dayOfMonth", "dayOfWeek", "dayOfWeekName", "hour", "minute", "second", "date", "time",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_str_equal (name, names[i]))
      return TRUE;
  return FALSE;
}

/* primary -> NUMBER | STRING | NAME | '(' expression ')' */
static Node *
parse_primary (Parser *p)
{
  Node *node;
  gsize start = p->token.start;

  switch (p->token.kind)
    {
    case TOK_NUMBER:
      node = node_new (p, NODE_LITERAL, start, NULL, NULL, NULL);
      value_set_number (&node->literal, p->token.number);
      return lex (p) ? node : (node_free (node), NULL);

    case TOK_STRING:
      node = node_new (p, NODE_LITERAL, start, NULL, NULL, NULL);
      value_take_string (&node->literal, g_steal_pointer (&p->token.text), p->token.length);
      return lex (p) ? node : (node_free (node), NULL);

    case TOK_IDENT:
      node = node_new (p, NODE_LITERAL, start, NULL, NULL, NULL);
      if (g_str_equal (p->token.text, "true"))
        value_set_bool (&node->literal, TRUE);
      else if (g_str_equal (p->token.text, "false"))
        value_set_bool (&node->literal, FALSE);
      else if (g_str_equal (p->token.text, "null"))
        node->literal.kind = VAL_NULL;
      else if (g_str_equal (p->token.text, "undefined"))
        node->literal.kind = VAL_UNDEFINED;
      else
        {
          node->kind = NODE_VARIABLE;
          node->name = g_steal_pointer (&p->token.text);
          if (g_str_equal (node->name, "header"))
            node->op = VARIABLE_HEADER;
          else if (g_str_equal (node->name, "bodyAsText"))
            node->op = VARIABLE_BODY_TEXT;
          else
            node->op = is_clock_name (node->name) ? VARIABLE_CLOCK : VARIABLE_WEBHOOK;
        }
      return lex (p) ? node : (node_free (node), NULL);

    case TOK_LPAREN:
      if (!lex (p))
        return NULL;
      node = parse_expression (p);
      if (node == NULL)
        return NULL;
      if (!expect (p, TOK_RPAREN, "')'"))
        {
          node_free (node);
          return NULL;
        }
      return node;

    default:
      fail_unexpected (p);
      return NULL;
    }
}

/* call -> '.' METHOD '(' [ expression ] ')'  (the '.' and METHOD are read by the caller) */
static Node *
parse_call (Parser *p,
            Node   *target,
            char   *taken_name,
            gsize   name_offset)
{
  g_autofree char *name = taken_name;
  Node *node;
  Node *arg = NULL;
  guint n_args = 0;
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (methods); i++)
    if (g_str_equal (methods[i].name, name))
      break;
  if (i == G_N_ELEMENTS (methods))
    {
      parser_fail (p, name_offset, TOCSIN_TEMPLATE_ERROR_SYNTAX, _("unknown method '%s'"), name);
      node_free (target);
      return NULL;
    }

  if (!lex (p)) /* the '(' */
    goto fail;
  while (p->token.kind != TOK_RPAREN)
    {
      gsize arg_offset = p->token.start;
      Node *expr;

      if (n_args > 0 && !expect (p, TOK_COMMA, "')'"))
        goto fail;
      arg_offset = p->token.start;
      expr = parse_expression (p);
      if (expr == NULL)
        goto fail;
      if (++n_args > methods[i].n_args)
        {
          node_free (expr);
          if (methods[i].n_args == 0)
            parser_fail (p, arg_offset, TOCSIN_TEMPLATE_ERROR_SYNTAX,
                         _("method '%s' takes no arguments"), name);
          else
            parser_fail (p, arg_offset, TOCSIN_TEMPLATE_ERROR_SYNTAX,
                         _("method '%s' takes one argument"), name);
          goto fail;
        }
      arg = expr;
    }
  if (n_args < methods[i].n_args)
    {
      parser_fail (p, p->token.start, TOCSIN_TEMPLATE_ERROR_SYNTAX,
                   _("method '%s' takes one argument"), name);
      goto fail;
    }
  if (!lex (p)) /* the ')' */
    goto fail;

  node = node_new (p, NODE_CALL, name_offset, target, arg, NULL);
  if (node)
    node->op = methods[i].method;
  return node;

fail:
  node_free (target);
  node_free (arg);
  return NULL;
}

/* postfix -> primary { '.' property | call | '[' expression ']' } */
static Node *
parse_postfix (Parser *p)
{
  Node *node = parse_primary (p);

  while (node != NULL)
    {
      gsize offset = p->token.start;

      if (p->token.kind == TOK_DOT)
        {
          char *name;
          gsize name_offset;

          if (!lex (p))
            goto fail;
          if (p->token.kind != TOK_IDENT && p->token.kind != TOK_NUMBER)
            {
              parser_fail (p, p->token.start, TOCSIN_TEMPLATE_ERROR_SYNTAX,
                           _("expected a property name after '.'"));
              goto fail;
            }
          name = g_steal_pointer (&p->token.text);
          name_offset = p->token.start;
          if (!lex (p))
            {
              g_free (name);
              goto fail;
            }
          if (p->token.kind == TOK_LPAREN)
            node = parse_call (p, node, name, name_offset);
          else
            {
              Node *member = node_new (p, NODE_MEMBER, offset, node, NULL, NULL);

              if (member == NULL)
                {
                  g_free (name);
                  return NULL; /* node_new freed node */
                }
              member->name = name;
              node = member;
            }
        }
      else if (p->token.kind == TOK_LBRACKET)
        {
          Node *index;

          if (!lex (p))
            goto fail;
          index = parse_expression (p);
          if (index == NULL)
            goto fail;
          if (!expect (p, TOK_RBRACKET, "']'"))
            {
              node_free (index);
              goto fail;
            }
          node = node_new (p, NODE_INDEX, offset, node, index, NULL);
        }
      else
        break;
    }
  return node;

fail:
  node_free (node);
  return NULL;
}

/* unary -> ( '!' | '-' | '+' ) unary | postfix */
static Node *
parse_unary (Parser *p)
{
  NodeKind kind;
  gsize offset = p->token.start;
  Node *operand;

  switch (p->token.kind)
    {
    case TOK_NOT: kind = NODE_NOT; break;
    case TOK_MINUS: kind = NODE_NEGATE; break;
    case TOK_PLUS: kind = NODE_TO_NUMBER; break;
    default:
      return parse_postfix (p);
    }

  if (!parser_enter (p) || !lex (p))
    return NULL;
  operand = parse_unary (p);
  p->nesting--;
  if (operand == NULL)
    return NULL;
  return node_new (p, kind, offset, operand, NULL, NULL);
}

typedef Node *(*ParseFunc) (Parser *p);

/* One left-associative level of binary operators: @ops maps tokens to (kind, op). */
typedef struct
{
  TokenKind token;
  NodeKind kind;
  BinaryOp op;
} OperatorEntry;

static Node *
parse_binary_level (Parser              *p,
                    ParseFunc            next,
                    const OperatorEntry *ops,
                    gsize                n_ops)
{
  Node *left = next (p);

  while (left != NULL)
    {
      const OperatorEntry *entry = NULL;
      gsize offset = p->token.start;
      Node *right;

      for (gsize i = 0; i < n_ops; i++)
        if (ops[i].token == p->token.kind)
          entry = &ops[i];
      if (entry == NULL)
        break;
      if (!lex (p))
        {
          node_free (left);
          return NULL;
        }
      right = next (p);
      if (right == NULL)
        {
          node_free (left);
          return NULL;
        }
      left = node_new (p, entry->kind, offset, left, right, NULL);
      if (left)
        left->op = entry->op;
    }
  return left;
}

/* multiplicative -> unary { ( '*' | '/' | '%' ) unary } */
static Node *
parse_multiplicative (Parser *p)
{
  static const OperatorEntry ops[] = {
    { TOK_STAR, NODE_BINARY, OP_MUL },
    { TOK_SLASH, NODE_BINARY, OP_DIV },
    { TOK_PERCENT, NODE_BINARY, OP_MOD },
  };
  return parse_binary_level (p, parse_unary, ops, G_N_ELEMENTS (ops));
}

/* additive -> multiplicative { ( '+' | '-' ) multiplicative } */
static Node *
parse_additive (Parser *p)
{
  static const OperatorEntry ops[] = {
    { TOK_PLUS, NODE_BINARY, OP_ADD },
    { TOK_MINUS, NODE_BINARY, OP_SUB },
  };
  return parse_binary_level (p, parse_multiplicative, ops, G_N_ELEMENTS (ops));
}

/* relational -> additive { ( '<' | '>' | '<=' | '>=' ) additive } */
static Node *
parse_relational (Parser *p)
{
  static const OperatorEntry ops[] = {
    { TOK_LT, NODE_BINARY, OP_LT },
    { TOK_GT, NODE_BINARY, OP_GT },
    { TOK_LE, NODE_BINARY, OP_LE },
    { TOK_GE, NODE_BINARY, OP_GE },
  };
  return parse_binary_level (p, parse_additive, ops, G_N_ELEMENTS (ops));
}

/* equality -> relational { ( '==' | '!=' | '===' | '!==' ) relational } */
static Node *
parse_equality (Parser *p)
{
  static const OperatorEntry ops[] = {
    { TOK_EQ, NODE_BINARY, OP_EQ },
    { TOK_NE, NODE_BINARY, OP_NE },
    { TOK_STRICT_EQ, NODE_BINARY, OP_STRICT_EQ },
    { TOK_STRICT_NE, NODE_BINARY, OP_STRICT_NE },
  };
  return parse_binary_level (p, parse_relational, ops, G_N_ELEMENTS (ops));
}

/* and -> equality { '&&' equality } */
static Node *
parse_and (Parser *p)
{
  static const OperatorEntry ops[] = { { TOK_AND, NODE_AND, 0 } };
  return parse_binary_level (p, parse_equality, ops, G_N_ELEMENTS (ops));
}

/* or -> and { '||' and } */
static Node *
parse_or (Parser *p)
{
  static const OperatorEntry ops[] = { { TOK_OR, NODE_OR, 0 } };
  return parse_binary_level (p, parse_and, ops, G_N_ELEMENTS (ops));
}

/* nullish -> or { '??' or } */
static Node *
parse_nullish (Parser *p)
{
  static const OperatorEntry ops[] = { { TOK_NULLISH, NODE_NULLISH, 0 } };
  return parse_binary_level (p, parse_or, ops, G_N_ELEMENTS (ops));
}

/* expression -> nullish [ '?' expression ':' expression ] */
static Node *
parse_expression (Parser *p)
{
  Node *test, *yes = NULL, *no = NULL;
  gsize offset;

  if (!parser_enter (p))
    return NULL;
  test = parse_nullish (p);
  if (test == NULL || p->token.kind != TOK_QUESTION)
    goto out;

  offset = p->token.start;
  if (!lex (p) || (yes = parse_expression (p)) == NULL)
    goto fail;
  if (!expect (p, TOK_COLON, "':'") || (no = parse_expression (p)) == NULL)
    goto fail;
  test = node_new (p, NODE_CONDITIONAL, offset, test, yes, no);
  goto out;

fail:
  node_free (test);
  node_free (yes);
  test = NULL;
out:
  p->nesting--;
  return test;
}

/* ---- compiling ---- */

static gboolean
is_special_name (const char *name)
{
  return g_str_equal (name, "header") || g_str_equal (name, "bodyAsText") || is_clock_name (name);
}

static void
collect_variables (const Node *node,
                   GHashTable *names)
{
  if (node == NULL)
    return;
  if (node->kind == NODE_VARIABLE && !is_special_name (node->name))
    g_hash_table_add (names, node->name);
  collect_variables (node->a, names);
  collect_variables (node->b, names);
  collect_variables (node->c, names);
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* template -> { TEXT | '{{' expression '}}' } */
static gboolean
parse_template (Parser         *p,
                TocsinTemplate *self)
{
  gsize pos = 0;

  while (pos < p->length)
    {
      const char *open = strstr (p->source + pos, "{{");
      gsize text_end = open ? (gsize) (open - p->source) : p->length;
      Part *part;
      Node *expr;

      if (text_end > pos)
        {
          part = g_new0 (Part, 1);
          part->text = g_strndup (p->source + pos, text_end - pos);
          part->length = text_end - pos;
          g_ptr_array_add (self->parts, part);
        }
      if (open == NULL)
        break;

      p->pos = text_end + 2;
      p->token.kind = TOK_END;
      if (!lex (p))
        return FALSE;
      expr = parse_expression (p);
      if (expr == NULL)
        return FALSE;
      if (p->token.kind != TOK_END)
        {
          parser_fail (p, p->token.start, TOCSIN_TEMPLATE_ERROR_SYNTAX, _("expected '}}'"));
          node_free (expr);
          return FALSE;
        }
      part = g_new0 (Part, 1);
      part->expr = expr;
      g_ptr_array_add (self->parts, part);
      pos = p->pos;
    }
  return TRUE;
}

/* condition -> [ expression ] */
static gboolean
parse_condition (Parser         *p,
                 TocsinTemplate *self)
{
  p->pos = 0;
  p->token.kind = TOK_END;
  if (!lex (p))
    return FALSE;
  if (p->token.kind == TOK_END)
    return TRUE; /* only white space: always passes */
  self->condition = parse_expression (p);
  if (self->condition == NULL)
    return FALSE;
  if (p->token.kind != TOK_END)
    {
      fail_unexpected (p);
      return FALSE;
    }
  return TRUE;
}

TocsinTemplate *
tocsin_template_compile (const char  *field,
         const char  *source,
         gboolean     condition,
         GError     **error)
{
  g_autoptr(TocsinTemplate) self = NULL;
  Parser p = { 0 };
  const char *invalid;
  gboolean ok;

  if (field == NULL || *field == '\0')
    field = condition ? "condition" : "template";
  if (source == NULL)
    source = "";

  self = g_new0 (TocsinTemplate, 1);
  g_atomic_ref_count_init (&self->ref_count);
  self->field = g_strdup (field);
  self->is_condition = condition;
  self->parts = g_ptr_array_new_with_free_func (part_free);

  p.length = strlen (source);
  if (p.length > TOCSIN_TEMPLATE_MAX_SOURCE)
    {
      g_set_error (error, TOCSIN_TEMPLATE_ERROR, TOCSIN_TEMPLATE_ERROR_TOO_LARGE,
                   _("%s: the template is longer than %d bytes"), field,
                   TOCSIN_TEMPLATE_MAX_SOURCE);
      return NULL;
    }
  self->source = g_strdup (source);

  p.field = field;
  p.source = self->source;
  p.condition = condition;

  if (!g_utf8_validate (p.source, p.length, &invalid))
    {
      set_position_error (error, field, p.source, invalid - p.source,
                          TOCSIN_TEMPLATE_ERROR_SYNTAX, _("the text is not valid UTF-8"));
      return NULL;
    }

  ok = condition ? parse_condition (&p, self) : parse_template (&p, self);
  token_clear (&p.token);
  if (!ok)
    {
      g_assert (p.error != NULL);
      g_propagate_error (error, p.error);
      return NULL;
    }

  {
    g_autoptr(GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);
    GPtrArray *sorted = g_ptr_array_new ();
    GHashTableIter iter;
    gpointer name;

    collect_variables (self->condition, names);
    for (guint i = 0; i < self->parts->len; i++)
      collect_variables (((Part *) g_ptr_array_index (self->parts, i))->expr, names);
    g_hash_table_iter_init (&iter, names);
    while (g_hash_table_iter_next (&iter, &name, NULL))
      g_ptr_array_add (sorted, g_strdup (name));
    g_ptr_array_sort (sorted, compare_strings);
    g_ptr_array_add (sorted, NULL);
    self->variables = (char **) g_ptr_array_free (sorted, FALSE);
  }

  return g_steal_pointer (&self);
}
