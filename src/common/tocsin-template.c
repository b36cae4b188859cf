/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-template"

#include "config.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "tocsin-template.h"

/*
 * The channel template language: `{{expr}}` interpolation and bare-expression conditions with
 * JavaScript semantics (docs/templates.md). A source is lexed and parsed once into an AST; the
 * AST is never modified afterwards, so rendering only reads it and any number of threads may
 * render the same template at once. Every string a Value holds is valid UTF-8 without NULs:
 * the source is validated at compile time and variables are repaired when they are read.
 *
 * Nothing an HTTP caller sends can drive recursion or a loop: evaluation recursion follows the
 * AST (depth capped at compile time), loops run over the variables' own size, and every string
 * the evaluator builds is capped at TOCSIN_TEMPLATE_MAX_OUTPUT bytes.
 */

/* Deeper JSON values are written as null when an object or array is rendered. */
#define JSON_MAX_NESTING 128

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

/* ---- values ---- */

typedef enum
{
  VAL_UNDEFINED,
  VAL_NULL,
  VAL_BOOL,
  VAL_NUMBER,
  VAL_STRING,
  VAL_ARRAY,
  VAL_OBJECT,
} ValueKind;

typedef struct
{
  ValueKind kind;
  gboolean boolean;
  double number;
  gboolean is_int;    /* a JSON integer, rendered exactly even beyond 2^53 */
  gint64 integer;
  const char *string; /* VAL_STRING: valid UTF-8, NUL-terminated; borrowed or == owned */
  gsize length;       /* bytes */
  char *owned;
  JsonNode *node;     /* VAL_ARRAY, VAL_OBJECT: always borrowed from the scope */
} Value;

#define VALUE_INIT { VAL_UNDEFINED, FALSE, 0, FALSE, 0, NULL, 0, NULL, NULL }

static void
value_clear (Value *v)
{
  g_free (v->owned);
  *v = (Value) VALUE_INIT;
}

static void
value_set_bool (Value *v, gboolean b)
{
  *v = (Value) VALUE_INIT;
  v->kind = VAL_BOOL;
  v->boolean = !!b;
}

static void
value_set_number (Value *v, double d)
{
  *v = (Value) VALUE_INIT;
  v->kind = VAL_NUMBER;
  v->number = d;
}

static void
value_set_int (Value *v, gint64 i)
{
  value_set_number (v, (double) i);
  v->is_int = TRUE;
  v->integer = i;
}

/* @s must be valid UTF-8 and outlive @v */
static void
value_set_static (Value *v, const char *s, gsize length)
{
  *v = (Value) VALUE_INIT;
  v->kind = VAL_STRING;
  v->string = s;
  v->length = length;
}

static void
value_take_string (Value *v, char *s, gsize length)
{
  value_set_static (v, s, length);
  v->owned = s;
}

static void
value_take_gstring (Value *v, GString *s)
{
  gsize length = s->len;

  value_take_string (v, g_string_free (s, FALSE), length);
}

/* Borrows from @node, which the scope owns. */
static void
value_set_node (Value *v, JsonNode *node)
{
  *v = (Value) VALUE_INIT;
  if (node == NULL)
    return;

  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_NULL:
      v->kind = VAL_NULL;
      break;
    case JSON_NODE_OBJECT:
      v->kind = VAL_OBJECT;
      v->node = node;
      break;
    case JSON_NODE_ARRAY:
      v->kind = VAL_ARRAY;
      v->node = node;
      break;
    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_INT64:
        case G_TYPE_INT:
        case G_TYPE_UINT:
        case G_TYPE_LONG:
          value_set_int (v, json_node_get_int (node));
          break;
        case G_TYPE_DOUBLE:
        case G_TYPE_FLOAT:
          value_set_number (v, json_node_get_double (node));
          break;
        case G_TYPE_BOOLEAN:
          value_set_bool (v, json_node_get_boolean (node));
          break;
        case G_TYPE_STRING:
          {
            const char *s = json_node_get_string (node);

            if (s == NULL)
              s = "";
            /* Variables are data from the network: repair, never trust. */
            if (g_utf8_validate (s, -1, NULL))
              value_set_static (v, s, strlen (s));
            else
              {
                char *valid = g_utf8_make_valid (s, -1);
                value_take_string (v, valid, strlen (valid));
              }
          }
          break;
        default:
          break;
        }
      break;
    default:
      break;
    }
}

static gboolean
value_is_nullish (const Value *v)
{
  return v->kind == VAL_UNDEFINED || v->kind == VAL_NULL;
}

static gboolean
value_is_object (const Value *v)
{
  return v->kind == VAL_ARRAY || v->kind == VAL_OBJECT;
}

static gboolean
value_truthy (const Value *v)
{
  switch (v->kind)
    {
    case VAL_BOOL:
      return v->boolean;
    case VAL_NUMBER:
      return !(v->number == 0 || isnan (v->number));
    case VAL_STRING:
      return v->length > 0;
    case VAL_ARRAY:
    case VAL_OBJECT:
      return TRUE;
    case VAL_UNDEFINED:
    case VAL_NULL:
    default:
      return FALSE;
    }
}

/* ---- strings ---- */

/* Appends at most @limit - out->len bytes of @s, never splitting a character. */
static void
append_capped (GString    *out,
               const char *s,
               gsize       length,
               gsize       limit)
{
  gsize n;

  if (out->len >= limit)
    return;
  n = MIN (length, limit - out->len);
  if (n < length)
    while (n > 0 && ((guchar) s[n] & 0xC0) == 0x80)
      n--;
  g_string_append_len (out, s, n);
}

static void
cut_at_boundary (GString *out,
                 gsize    limit)
{
  gsize n = limit;

  if (out->len <= limit)
    return;
  while (n > 0 && ((guchar) out->str[n] & 0xC0) == 0x80)
    n--;
  g_string_truncate (out, n);
}

/* JavaScript's WhiteSpace and LineTerminator, which trim() and Number() skip. */
static gboolean
is_js_space (gunichar c)
{
  switch (c)
    {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20:
    case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000: case 0xFEFF:
      return TRUE;
    default:
      return c >= 0x2000 && c <= 0x200A;
    }
}

/* Trims @s (valid UTF-8) to [*start, *end). */
static void
js_trim_bounds (const char *s,
                gsize       length,
                gsize      *start,
                gsize      *end)
{
  const char *p = s;
  const char *e = s + length;

  while (p < e && is_js_space (g_utf8_get_char (p)))
    p = g_utf8_next_char (p);
  while (e > p)
    {
      const char *prev = g_utf8_prev_char (e);
      if (!is_js_space (g_utf8_get_char (prev)))
        break;
      e = prev;
    }
  *start = p - s;
  *end = e - s;
}

static guint
utf16_units (gunichar c,
             guint16  units[2])
{
  if (c < 0x10000)
    {
      units[0] = c;
      return 1;
    }
  c -= 0x10000;
  units[0] = 0xD800 + (c >> 10);
  units[1] = 0xDC00 + (c & 0x3FF);
  return 2;
}

/* JavaScript compares strings by UTF-16 code units, which differs from code point order for
 * characters above U+FFFF against U+E000..U+FFFF. */
static int
utf16_compare (const char *a,
               const char *b)
{
  while (*a && *b)
    {
      gunichar ca = g_utf8_get_char (a);
      gunichar cb = g_utf8_get_char (b);

      if (ca != cb)
        {
          guint16 ua[2], ub[2];
          guint na = utf16_units (ca, ua);
          guint nb = utf16_units (cb, ub);

          for (guint i = 0; i < MIN (na, nb); i++)
            if (ua[i] != ub[i])
              return ua[i] < ub[i] ? -1 : 1;
          return na < nb ? -1 : 1;
        }
      a = g_utf8_next_char (a);
      b = g_utf8_next_char (b);
    }
  return (*a != '\0') - (*b != '\0');
}

static gsize
utf16_length (const char *s)
{
  gsize n = 0;

  for (; *s; s = g_utf8_next_char (s))
    n += g_utf8_get_char (s) >= 0x10000 ? 2 : 1;
  return n;
}

/* ---- numbers ---- */

/* Number.prototype.toString: the shortest digits that read back as @d, in JavaScript's layout
 * (plain up to 1e21, exponent below 1e-6). @buf holds at least 64 bytes. */
static void
format_number (double d,
               char  *buf)
{
  char tmp[64];
  char digits[24];
  int k = 0, exponent, n, i;
  char *p, *end;
  gboolean negative;
  GString *out;

  if (isnan (d))
    {
      strcpy (buf, "NaN");
      return;
    }
  if (isinf (d))
    {
      strcpy (buf, d > 0 ? "Infinity" : "-Infinity");
      return;
    }
  if (d == 0)
    {
      strcpy (buf, "0");
      return;
    }

  for (int precision = 1; precision <= 17; precision++)
    {
      char format[16];

      g_snprintf (format, sizeof format, "%%.%de", precision - 1);
      g_ascii_formatd (tmp, sizeof tmp, format, d);
      if (g_ascii_strtod (tmp, NULL) == d)
        break;
    }

  /* tmp is "-d.ddde+XX" */
  p = tmp;
  negative = *p == '-';
  if (negative)
    p++;
  for (; *p && *p != 'e' && *p != 'E'; p++)
    if (g_ascii_isdigit (*p) && k < (int) sizeof digits - 1)
      digits[k++] = *p;
  while (k > 1 && digits[k - 1] == '0')
    k--;
  digits[k] = '\0';
  exponent = *p ? (int) g_ascii_strtoll (p + 1, &end, 10) : 0;
  n = exponent + 1;

  out = g_string_new (negative ? "-" : "");
  if (k <= n && n <= 21)
    {
      g_string_append (out, digits);
      for (i = 0; i < n - k; i++)
        g_string_append_c (out, '0');
    }
  else if (0 < n && n <= 21)
    {
      g_string_append_len (out, digits, n);
      g_string_append_c (out, '.');
      g_string_append (out, digits + n);
    }
  else if (-6 < n && n <= 0)
    {
      g_string_append (out, "0.");
      for (i = 0; i < -n; i++)
        g_string_append_c (out, '0');
      g_string_append (out, digits);
    }
  else
    {
      g_string_append_c (out, digits[0]);
      if (k > 1)
        {
          g_string_append_c (out, '.');
          g_string_append (out, digits + 1);
        }
      g_string_append_printf (out, "e%c%d", n - 1 >= 0 ? '+' : '-', ABS (n - 1));
    }
  g_strlcpy (buf, out->str, 64);
  g_string_free (out, TRUE);
}

static void
format_value_number (const Value *v,
                     char        *buf)
{
  if (v->is_int)
    g_snprintf (buf, 64, "%" G_GINT64_FORMAT, v->integer);
  else
    format_number (v->number, buf);
}

static gboolean
all_digits (const char *s,
            gsize       n,
            gboolean  (*is_digit) (char c))
{
  if (n == 0)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!is_digit (s[i]))
      return FALSE;
  return TRUE;
}

static gboolean
is_dec (char c)
{
  return c >= '0' && c <= '9';
}

static gboolean
is_hex (char c)
{
  return g_ascii_isxdigit (c);
}

static gboolean
is_oct (char c)
{
  return c >= '0' && c <= '7';
}

static gboolean
is_bin (char c)
{
  return c == '0' || c == '1';
}

/* JavaScript's StringToNumber: whitespace around, "" is 0, 0x/0o/0b, Infinity, otherwise a
 * strict decimal literal or NaN ("12px" is NaN, unlike parseInt). */
static double
string_to_number (const char *s,
                  gsize       length)
{
  gsize start, end, i;
  const char *t;
  gsize n;

  js_trim_bounds (s, length, &start, &end);
  t = s + start;
  n = end - start;
  if (n == 0)
    return 0;

  if (n >= 2 && t[0] == '0' && strchr ("xXoObB", t[1]) != NULL)
    {
      int base = (t[1] == 'x' || t[1] == 'X') ? 16 : (t[1] == 'o' || t[1] == 'O') ? 8 : 2;
      gboolean (*check) (char) = base == 16 ? is_hex : base == 8 ? is_oct : is_bin;
      double value = 0;

      if (!all_digits (t + 2, n - 2, check))
        return NAN;
      for (i = 2; i < n; i++)
        value = value * base + g_ascii_xdigit_value (t[i]);
      return value;
    }

  if ((n == 8 && memcmp (t, "Infinity", 8) == 0) || (n == 9 && memcmp (t, "+Infinity", 9) == 0))
    return INFINITY;
  if (n == 9 && memcmp (t, "-Infinity", 9) == 0)
    return -INFINITY;

  /* [+-] (digits [. digits*] | . digits) [(e|E) [+-] digits] */
  i = 0;
  if (t[i] == '+' || t[i] == '-')
    i++;
  {
    gsize int_digits = 0, frac_digits = 0;

    while (i < n && is_dec (t[i]))
      i++, int_digits++;
    if (i < n && t[i] == '.')
      {
        i++;
        while (i < n && is_dec (t[i]))
          i++, frac_digits++;
      }
    if (int_digits == 0 && frac_digits == 0)
      return NAN;
    if (i < n && (t[i] == 'e' || t[i] == 'E'))
      {
        gsize exp_digits = 0;

        i++;
        if (i < n && (t[i] == '+' || t[i] == '-'))
          i++;
        while (i < n && is_dec (t[i]))
          i++, exp_digits++;
        if (exp_digits == 0)
          return NAN;
      }
    if (i != n)
      return NAN;
  }

  {
    g_autofree char *copy = g_strndup (t, n);
    return g_ascii_strtod (copy, NULL);
  }
}

/* ---- conversions ---- */

static void json_write (GString *out, JsonNode *node, gsize limit, guint nesting);

static void
json_write_string (GString    *out,
                   const char *s,
                   gsize       limit)
{
  g_autofree char *valid = NULL;

  if (!g_utf8_validate (s, -1, NULL))
    s = valid = g_utf8_make_valid (s, -1);

  g_string_append_c (out, '"');
  for (const guchar *p = (const guchar *) s; *p && out->len < limit; p++)
    {
      switch (*p)
        {
        case '"': g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\b': g_string_append (out, "\\b"); break;
        case '\f': g_string_append (out, "\\f"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        default:
          if (*p < 0x20)
            g_string_append_printf (out, "\\u%04x", *p);
          else
            g_string_append_c (out, *p);
        }
    }
  g_string_append_c (out, '"');
}

/* Compact JSON as JSON.stringify writes it. Stops early once @out is past @limit; the caller
 * cuts the result. Members keep their order (json-glib keeps insertion order). */
static void
json_write (GString  *out,
            JsonNode *node,
            gsize     limit,
            guint     nesting)
{
  if (out->len >= limit)
    return;
  if (node == NULL || nesting > JSON_MAX_NESTING)
    {
      g_string_append (out, "null");
      return;
    }

  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObject *object = json_node_get_object (node);
        GList *members = json_object_get_members (object);
        gboolean first = TRUE;

        g_string_append_c (out, '{');
        for (GList *l = members; l && out->len < limit; l = l->next)
          {
            if (!first)
              g_string_append_c (out, ',');
            first = FALSE;
            json_write_string (out, l->data, limit);
            g_string_append_c (out, ':');
            json_write (out, json_object_get_member (object, l->data), limit, nesting + 1);
          }
        g_string_append_c (out, '}');
        g_list_free (members);
      }
      break;
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        guint n = json_array_get_length (array);

        g_string_append_c (out, '[');
        for (guint i = 0; i < n && out->len < limit; i++)
          {
            if (i > 0)
              g_string_append_c (out, ',');
            json_write (out, json_array_get_element (array, i), limit, nesting + 1);
          }
        g_string_append_c (out, ']');
      }
      break;
    case JSON_NODE_VALUE:
      {
        Value v;
        char buf[64];

        value_set_node (&v, node);
        switch (v.kind)
          {
          case VAL_NUMBER:
            if (isnan (v.number) || isinf (v.number))
              g_string_append (out, "null");
            else
              {
                format_value_number (&v, buf);
                g_string_append (out, buf);
              }
            break;
          case VAL_BOOL:
            g_string_append (out, v.boolean ? "true" : "false");
            break;
          case VAL_STRING:
            json_write_string (out, v.string, limit);
            break;
          default:
            g_string_append (out, "null");
            break;
          }
        value_clear (&v);
      }
      break;
    case JSON_NODE_NULL:
    default:
      g_string_append (out, "null");
      break;
    }
}

/* The text of @v: as it renders (@js FALSE: undefined and null are ""), or as JavaScript's
 * String() writes it (@js TRUE: "undefined", "null"). Objects and arrays are compact JSON in
 * both cases, where JavaScript would write "[object Object]" or a comma-joined list. */
static void
value_append (const Value *v,
              GString     *out,
              gsize        limit,
              gboolean     js)
{
  char buf[64];

  switch (v->kind)
    {
    case VAL_UNDEFINED:
      if (js)
        append_capped (out, "undefined", 9, limit);
      break;
    case VAL_NULL:
      if (js)
        append_capped (out, "null", 4, limit);
      break;
    case VAL_BOOL:
      if (v->boolean)
        append_capped (out, "true", 4, limit);
      else
        append_capped (out, "false", 5, limit);
      break;
    case VAL_NUMBER:
      format_value_number (v, buf);
      append_capped (out, buf, strlen (buf), limit);
      break;
    case VAL_STRING:
      append_capped (out, v->string, v->length, limit);
      break;
    case VAL_ARRAY:
    case VAL_OBJECT:
      json_write (out, v->node, limit, 0);
      cut_at_boundary (out, limit);
      break;
    default:
      break;
    }
}

/* A string Value with the text of @v; @v itself when it already is a string. */
static void
value_to_string (const Value *v,
                 Value       *out,
                 gboolean     js)
{
  GString *s;

  if (v->kind == VAL_STRING)
    {
      value_set_static (out, v->string, v->length);
      return;
    }
  s = g_string_new (NULL);
  value_append (v, s, TOCSIN_TEMPLATE_MAX_OUTPUT, js);
  value_take_gstring (out, s);
}

/* ToPrimitive: objects and arrays become their JSON text; @out borrows from @v otherwise. */
static void
value_to_primitive (const Value *v,
                    Value       *out)
{
  if (value_is_object (v))
    value_to_string (v, out, TRUE);
  else
    {
      *out = *v;
      out->owned = NULL;
    }
}

static double
value_to_number (const Value *v)
{
  switch (v->kind)
    {
    case VAL_NULL:
      return 0;
    case VAL_BOOL:
      return v->boolean ? 1 : 0;
    case VAL_NUMBER:
      return v->number;
    case VAL_STRING:
      return string_to_number (v->string, v->length);
    case VAL_ARRAY:
    case VAL_OBJECT:
      {
        Value prim = VALUE_INIT;
        double d;

        value_to_primitive (v, &prim);
        d = string_to_number (prim.string, prim.length);
        value_clear (&prim);
        return d;
      }
    case VAL_UNDEFINED:
    default:
      return NAN;
    }
}

static gboolean
numbers_equal (const Value *x,
               const Value *y)
{
  if (x->is_int && y->is_int)
    return x->integer == y->integer;
  return x->number == y->number;
}

static JsonNode *
object_identity (const Value *v)
{
  /* Two reads of the same member give the same JsonNode, so identity is the node. */
  return v->node;
}

/* === */
static gboolean
strict_equals (const Value *x,
               const Value *y)
{
  if (value_is_object (x) && value_is_object (y))
    return object_identity (x) == object_identity (y);
  if (x->kind != y->kind)
    return FALSE;
  switch (x->kind)
    {
    case VAL_UNDEFINED:
    case VAL_NULL:
      return TRUE;
    case VAL_BOOL:
      return x->boolean == y->boolean;
    case VAL_NUMBER:
      return numbers_equal (x, y);
    case VAL_STRING:
      return x->length == y->length && memcmp (x->string, y->string, x->length) == 0;
    default:
      return FALSE;
    }
}

/* == : JavaScript's IsLooselyEqual. Recursion is at most three levels (bool, then object). */
static gboolean
loose_equals (const Value *x,
              const Value *y)
{
  if (x->kind == y->kind || (value_is_object (x) && value_is_object (y)))
    return strict_equals (x, y);
  if (value_is_nullish (x) || value_is_nullish (y))
    return value_is_nullish (x) && value_is_nullish (y);
  if (x->kind == VAL_NUMBER && y->kind == VAL_STRING)
    return x->number == value_to_number (y);
  if (x->kind == VAL_STRING && y->kind == VAL_NUMBER)
    return value_to_number (x) == y->number;
  if (x->kind == VAL_BOOL || y->kind == VAL_BOOL)
    {
      Value nx = VALUE_INIT, ny = VALUE_INIT;

      if (x->kind == VAL_BOOL)
        value_set_number (&nx, value_to_number (x));
      else
        nx = *x, nx.owned = NULL;
      if (y->kind == VAL_BOOL)
        value_set_number (&ny, value_to_number (y));
      else
        ny = *y, ny.owned = NULL;
      return loose_equals (&nx, &ny);
    }
  if (value_is_object (x) || value_is_object (y))
    {
      Value px = VALUE_INIT, py = VALUE_INIT;
      gboolean equal;

      value_to_primitive (x, &px);
      value_to_primitive (y, &py);
      equal = loose_equals (&px, &py);
      value_clear (&px);
      value_clear (&py);
      return equal;
    }
  return FALSE;
}

/* -1, 0, 1, or 2 when the comparison is undefined (NaN). */
static int
relational_compare (const Value *x,
                    const Value *y)
{
  Value px = VALUE_INIT, py = VALUE_INIT;
  int result;

  value_to_primitive (x, &px);
  value_to_primitive (y, &py);
  if (px.kind == VAL_STRING && py.kind == VAL_STRING)
    result = utf16_compare (px.string, py.string);
  else
    {
      double a = value_to_number (&px);
      double b = value_to_number (&py);

      if (isnan (a) || isnan (b))
        result = 2;
      else if (px.is_int && py.is_int)
        result = px.integer < py.integer ? -1 : px.integer > py.integer;
      else
        result = a < b ? -1 : a > b;
    }
  value_clear (&px);
  value_clear (&py);
  return result;
}

/* ---- the AST ---- */

typedef enum
{
  NODE_LITERAL,
  NODE_VARIABLE,
  NODE_MEMBER,   /* a.name */
  NODE_INDEX,    /* a[b] */
  NODE_CALL,     /* a.method(b) */
  NODE_NOT,
  NODE_NEGATE,
  NODE_TO_NUMBER, /* unary + */
  NODE_BINARY,
  NODE_AND,
  NODE_OR,
  NODE_NULLISH,
  NODE_CONDITIONAL,
} NodeKind;

typedef enum
{
  OP_EQ, OP_NE, OP_STRICT_EQ, OP_STRICT_NE,
  OP_LT, OP_GT, OP_LE, OP_GE,
  OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD,
} BinaryOp;

typedef enum
{
  METHOD_INCLUDES,
  METHOD_STARTS_WITH,
  METHOD_ENDS_WITH,
  METHOD_TO_UPPER_CASE,
  METHOD_TO_LOWER_CASE,
  METHOD_TRIM,
  METHOD_TO_STRING,
} Method;

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

typedef struct _Node Node;
struct _Node
{
  NodeKind kind;
  int op;        /* BinaryOp or Method */
  guint depth;   /* 1 for a leaf */
  gsize offset;  /* bytes into the source */
  Node *a, *b, *c;
  char *name;    /* NODE_VARIABLE, NODE_MEMBER */
  Value literal; /* NODE_LITERAL; owns its string */
};

static void
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

typedef struct
{
  char *text; /* literal text, or NULL for an expression */
  gsize length;
  Node *expr;
} Part;

static void
part_free (gpointer data)
{
  Part *part = data;

  g_free (part->text);
  node_free (part->expr);
  g_free (part);
}

struct _TocsinTemplate
{
  gatomicrefcount ref_count;
  char *field;
  char *source;
  gboolean is_condition;
  GPtrArray *parts;   /* Part, in order; templates only */
  Node *condition;    /* conditions only; NULL when empty */
  char **variables;
};

struct _TocsinTemplateScope
{
  JsonObject *vars;       /* owned reference, may be NULL */
  GDateTime *now;         /* UTC */
  JsonNode *headers;      /* an object node: lowercase name -> value */
  char *body_text;        /* valid UTF-8 or NULL */
};

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

static Node *
parse_additive (Parser *p)
{
  static const OperatorEntry ops[] = {
    { TOK_PLUS, NODE_BINARY, OP_ADD },
    { TOK_MINUS, NODE_BINARY, OP_SUB },
  };
  return parse_binary_level (p, parse_multiplicative, ops, G_N_ELEMENTS (ops));
}

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

static Node *
parse_and (Parser *p)
{
  static const OperatorEntry ops[] = { { TOK_AND, NODE_AND, 0 } };
  return parse_binary_level (p, parse_equality, ops, G_N_ELEMENTS (ops));
}

static Node *
parse_or (Parser *p)
{
  static const OperatorEntry ops[] = { { TOK_OR, NODE_OR, 0 } };
  return parse_binary_level (p, parse_and, ops, G_N_ELEMENTS (ops));
}

static Node *
parse_nullish (Parser *p)
{
  static const OperatorEntry ops[] = { { TOK_NULLISH, NODE_NULLISH, 0 } };
  return parse_binary_level (p, parse_or, ops, G_N_ELEMENTS (ops));
}

/* expression := nullish [ '?' expression ':' expression ] */
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

static TocsinTemplate *
compile (const char  *field,
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

G_DEFINE_BOXED_TYPE (TocsinTemplate, tocsin_template, tocsin_template_ref, tocsin_template_unref)

TocsinTemplate *
tocsin_template_new (const char  *field,
                     const char  *source,
                     GError     **error)
{
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return compile (field, source, FALSE, error);
}

TocsinTemplate *
tocsin_template_new_condition (const char  *field,
                               const char  *source,
                               GError     **error)
{
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return compile (field, source, TRUE, error);
}

TocsinTemplate *
tocsin_template_ref (TocsinTemplate *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
tocsin_template_unref (TocsinTemplate *self)
{
  g_return_if_fail (self != NULL);
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;
  g_free (self->field);
  g_free (self->source);
  g_clear_pointer (&self->parts, g_ptr_array_unref);
  node_free (self->condition);
  g_strfreev (self->variables);
  g_free (self);
}

const char *
tocsin_template_get_source (TocsinTemplate *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->source;
}

gboolean
tocsin_template_is_empty (TocsinTemplate *self)
{
  g_return_val_if_fail (self != NULL, TRUE);
  return self->condition == NULL && self->parts->len == 0;
}

const char * const *
tocsin_template_get_variables (TocsinTemplate *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return (const char * const *) self->variables;
}

/* ---- scope ---- */

TocsinTemplateScope *
tocsin_template_scope_new (JsonObject *vars,
                           GDateTime  *now)
{
  TocsinTemplateScope *scope = g_new0 (TocsinTemplateScope, 1);

  scope->vars = vars ? json_object_ref (vars) : NULL;
  scope->now = now ? g_date_time_to_utc (now) : g_date_time_new_now_utc ();
  scope->headers = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (scope->headers, json_object_new ());
  return scope;
}

void
tocsin_template_scope_free (TocsinTemplateScope *scope)
{
  if (scope == NULL)
    return;
  g_clear_pointer (&scope->vars, json_object_unref);
  g_clear_pointer (&scope->now, g_date_time_unref);
  g_clear_pointer (&scope->headers, json_node_unref);
  g_free (scope->body_text);
  g_free (scope);
}

void
tocsin_template_scope_add_header (TocsinTemplateScope *scope,
                                  const char          *name,
                                  const char          *value)
{
  JsonObject *headers;
  g_autofree char *valid_name = NULL;
  g_autofree char *key = NULL;
  g_autofree char *valid_value = NULL;
  const char *previous;

  g_return_if_fail (scope != NULL);
  g_return_if_fail (name != NULL);

  valid_name = g_utf8_make_valid (name, -1);
  key = g_ascii_strdown (valid_name, -1);
  valid_value = g_utf8_make_valid (value ? value : "", -1);
  headers = json_node_get_object (scope->headers);

  /* A repeated header reads as its values joined, as HTTP allows for most headers. */
  previous = json_object_has_member (headers, key)
             ? json_object_get_string_member (headers, key) : NULL;
  if (previous != NULL)
    {
      g_autofree char *joined = g_strconcat (previous, ", ", valid_value, NULL);
      json_object_set_string_member (headers, key, joined);
    }
  else
    json_object_set_string_member (headers, key, valid_value);
}

void
tocsin_template_scope_set_body_text (TocsinTemplateScope *scope,
                                     const char          *text)
{
  g_return_if_fail (scope != NULL);
  g_free (scope->body_text);
  scope->body_text = text ? g_utf8_make_valid (text, -1) : NULL;
}

/* ---- evaluation ---- */

typedef struct
{
  TocsinTemplateScope *scope;
  GPtrArray *missing;
} Eval;

static void eval (Eval *ev, const Node *node, Value *out);

static void
note_missing (Eval       *ev,
              const char *name)
{
  if (ev->missing == NULL)
    return;
  for (guint i = 0; i < ev->missing->len; i++)
    if (g_strcmp0 (g_ptr_array_index (ev->missing, i), name) == 0)
      return;
  g_ptr_array_add (ev->missing, g_strdup (name));
}

static gboolean
clock_value (GDateTime  *t,
             const char *name,
             Value      *out)
{
  static const char * const month_names[] = {
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
  };
  static const char * const day_names[] = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
  };
  int month = g_date_time_get_month (t);
  int weekday = g_date_time_get_day_of_week (t) % 7; /* GLib: 7 is Sunday */
  char *s;

  if (g_str_equal (name, "timezone"))
    value_set_static (out, "UTC", 3);
  else if (g_str_equal (name, "now") || g_str_equal (name, "iso"))
    {
      s = g_strdup_printf ("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                           g_date_time_get_year (t), month, g_date_time_get_day_of_month (t),
                           g_date_time_get_hour (t), g_date_time_get_minute (t),
                           g_date_time_get_second (t), g_date_time_get_microsecond (t) / 1000);
      value_take_string (out, s, strlen (s));
    }
  else if (g_str_equal (name, "epochMs"))
    value_set_int (out, g_date_time_to_unix (t) * 1000 + g_date_time_get_microsecond (t) / 1000);
  else if (g_str_equal (name, "epochSeconds"))
    value_set_int (out, g_date_time_to_unix (t));
  else if (g_str_equal (name, "year"))
    value_set_int (out, g_date_time_get_year (t));
  else if (g_str_equal (name, "month"))
    value_set_int (out, month);
  else if (g_str_equal (name, "monthName"))
    value_set_static (out, month_names[month - 1], strlen (month_names[month - 1]));
  else if (g_str_equal (name, "dayOfMonth"))
    value_set_int (out, g_date_time_get_day_of_month (t));
  else if (g_str_equal (name, "dayOfWeek"))
    value_set_int (out, weekday);
  else if (g_str_equal (name, "dayOfWeekName"))
    value_set_static (out, day_names[weekday], strlen (day_names[weekday]));
  else if (g_str_equal (name, "hour"))
    value_set_int (out, g_date_time_get_hour (t));
  else if (g_str_equal (name, "minute"))
    value_set_int (out, g_date_time_get_minute (t));
  else if (g_str_equal (name, "second"))
    value_set_int (out, g_date_time_get_second (t));
  else if (g_str_equal (name, "date"))
    {
      s = g_strdup_printf ("%04d-%02d-%02d", g_date_time_get_year (t), month,
                           g_date_time_get_day_of_month (t));
      value_take_string (out, s, strlen (s));
    }
  else if (g_str_equal (name, "time"))
    {
      s = g_strdup_printf ("%02d:%02d:%02d", g_date_time_get_hour (t),
                           g_date_time_get_minute (t), g_date_time_get_second (t));
      value_take_string (out, s, strlen (s));
    }
  else
    return FALSE;
  return TRUE;
}

static void
eval_variable (Eval       *ev,
               const Node *node,
               Value      *out)
{
  TocsinTemplateScope *scope = ev->scope;
  const char *name = node->name;
  JsonNode *member;

  /* header and bodyAsText come from the request itself; a payload cannot fake them. */
  if (g_str_equal (name, "header"))
    {
      value_set_node (out, scope->headers);
      return;
    }
  if (g_str_equal (name, "bodyAsText"))
    {
      if (scope->body_text)
        value_set_static (out, scope->body_text, strlen (scope->body_text));
      else
        *out = (Value) VALUE_INIT;
      return;
    }

  /* Webhook variables win over the clock: a payload's own "time" is what its sender meant. */
  member = scope->vars ? json_object_get_member (scope->vars, name) : NULL;
  if (member != NULL)
    {
      value_set_node (out, member);
      return;
    }
  if (clock_value (scope->now, name, out))
    return;

  note_missing (ev, name);
  *out = (Value) VALUE_INIT;
}

/* "0", "17": JavaScript's canonical array index strings. */
static gboolean
parse_index (const char *key,
             gsize      *index)
{
  guint64 value = 0;

  if (*key == '\0' || (key[0] == '0' && key[1] != '\0'))
    return FALSE;
  for (const char *p = key; *p; p++)
    {
      if (!g_ascii_isdigit (*p) || value > G_MAXUINT32)
        return FALSE;
      value = value * 10 + (*p - '0');
    }
  *index = value;
  return TRUE;
}

/* The character at UTF-16 index @index of @s, as JavaScript's s[i]; U+FFFD for the second half
 * of a surrogate pair, which UTF-8 cannot hold alone. */
static void
string_char_at (const char *s,
                gsize       index,
                Value      *out)
{
  gsize unit = 0;

  for (const char *p = s; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      guint n = c >= 0x10000 ? 2 : 1;

      if (index == unit)
        {
          const char *next = g_utf8_next_char (p);
          value_take_string (out, g_strndup (p, next - p), next - p);
          return;
        }
      if (index == unit + 1 && n == 2)
        {
          value_take_string (out, g_strdup ("\xEF\xBF\xBD"), 3);
          return;
        }
      unit += n;
    }
  *out = (Value) VALUE_INIT;
}

static void
member_by_index (const Value *target,
                 gsize        index,
                 Value       *out)
{
  *out = (Value) VALUE_INIT;
  if (target->kind == VAL_ARRAY)
    {
      JsonArray *array = json_node_get_array (target->node);

      if (index < json_array_get_length (array))
        value_set_node (out, json_array_get_element (array, index));
    }
  else if (target->kind == VAL_STRING)
    string_char_at (target->string, index, out);
}

static void
member_get (Eval        *ev,
            const Value *target,
            const char  *key,
            Value       *out)
{
  gsize index;

  *out = (Value) VALUE_INIT;
  switch (target->kind)
    {
    case VAL_OBJECT:
      if (target->node == ev->scope->headers)
        {
          /* header["User-Agent"] finds the lowercased name too */
          g_autofree char *lower = g_ascii_strdown (key, -1);
          value_set_node (out, json_object_get_member (json_node_get_object (target->node),
                                                       lower));
        }
      else
        value_set_node (out, json_object_get_member (json_node_get_object (target->node), key));
      break;
    case VAL_ARRAY:
      if (g_str_equal (key, "length"))
        value_set_int (out, json_array_get_length (json_node_get_array (target->node)));
      else if (parse_index (key, &index))
        member_by_index (target, index, out);
      break;
    case VAL_STRING:
      if (g_str_equal (key, "length"))
        value_set_int (out, utf16_length (target->string));
      else if (parse_index (key, &index))
        member_by_index (target, index, out);
      break;
    default:
      /* JavaScript throws on undefined.x and null.x; a template renders nothing instead. */
      break;
    }
}

static void
eval_index (Eval       *ev,
            const Node *node,
            Value      *out)
{
  Value target = VALUE_INIT, key = VALUE_INIT, key_string = VALUE_INIT;

  eval (ev, node->a, &target);
  eval (ev, node->b, &key);
  if (key.kind == VAL_NUMBER && (target.kind == VAL_ARRAY || target.kind == VAL_STRING))
    {
      *out = (Value) VALUE_INIT;
      if (key.number >= 0 && key.number < 4294967295.0 && key.number == floor (key.number))
        member_by_index (&target, (gsize) key.number, out);
    }
  else
    {
      value_to_string (&key, &key_string, TRUE);
      member_get (ev, &target, key_string.string, out);
    }
  value_clear (&key_string);
  value_clear (&key);
  value_clear (&target);
}

static void
string_case (const Value *target,
             gboolean     upper,
             Value       *out)
{
  gsize n = MIN (target->length, TOCSIN_TEMPLATE_MAX_OUTPUT);
  char *s;
  GString *result;

  while (n > 0 && n < target->length && ((guchar) target->string[n] & 0xC0) == 0x80)
    n--;
  /* Full Unicode mapping ("ß" becomes "SS"), as JavaScript's. */
  s = upper ? g_utf8_strup (target->string, n) : g_utf8_strdown (target->string, n);
  result = g_string_new (s);
  g_free (s);
  cut_at_boundary (result, TOCSIN_TEMPLATE_MAX_OUTPUT);
  value_take_gstring (out, result);
}

static void
eval_call (Eval       *ev,
           const Node *node,
           Value      *out)
{
  Value target = VALUE_INIT, arg = VALUE_INIT, needle = VALUE_INIT;

  *out = (Value) VALUE_INIT;
  eval (ev, node->a, &target);

  if (target.kind == VAL_ARRAY && node->op == METHOD_INCLUDES)
    {
      JsonArray *array = json_node_get_array (target.node);
      guint n = json_array_get_length (array);
      gboolean found = FALSE;

      eval (ev, node->b, &arg);
      for (guint i = 0; i < n && !found; i++)
        {
          Value element;

          value_set_node (&element, json_array_get_element (array, i));
          /* SameValueZero: === except that NaN finds NaN */
          found = strict_equals (&element, &arg)
                  || (element.kind == VAL_NUMBER && arg.kind == VAL_NUMBER
                      && isnan (element.number) && isnan (arg.number));
          value_clear (&element);
        }
      value_set_bool (out, found);
    }
  else if (node->op == METHOD_TO_STRING && !value_is_nullish (&target))
    {
      value_to_string (&target, out, TRUE);
      if (out->owned == NULL && target.owned != NULL)
        {
          /* out borrows target's string, which is about to be freed */
          out->owned = g_steal_pointer (&target.owned);
        }
    }
  else if (target.kind == VAL_STRING)
    {
      switch ((Method) node->op)
        {
        case METHOD_INCLUDES:
        case METHOD_STARTS_WITH:
        case METHOD_ENDS_WITH:
          eval (ev, node->b, &arg);
          value_to_string (&arg, &needle, TRUE);
          if (node->op == METHOD_INCLUDES)
            value_set_bool (out, strstr (target.string, needle.string) != NULL);
          else if (node->op == METHOD_STARTS_WITH)
            value_set_bool (out, g_str_has_prefix (target.string, needle.string));
          else
            value_set_bool (out, g_str_has_suffix (target.string, needle.string));
          break;
        case METHOD_TO_UPPER_CASE:
        case METHOD_TO_LOWER_CASE:
          string_case (&target, node->op == METHOD_TO_UPPER_CASE, out);
          break;
        case METHOD_TRIM:
          {
            gsize start, end;

            js_trim_bounds (target.string, target.length, &start, &end);
            value_take_string (out, g_strndup (target.string + start, end - start), end - start);
          }
          break;
        case METHOD_TO_STRING:
        default:
          g_assert_not_reached ();
        }
    }
  /* Anything else: JavaScript would throw; the call is undefined. */

  value_clear (&needle);
  value_clear (&arg);
  value_clear (&target);
}

static double
js_divide (double a,
           double b)
{
  /* Spelled out so that no sanitizer sees a division by zero. */
  if (b == 0)
    {
      if (a == 0 || isnan (a))
        return NAN;
      return (signbit (a) != signbit (b)) ? -INFINITY : INFINITY;
    }
  return a / b;
}

static double
js_modulo (double a,
           double b)
{
  if (b == 0 || isnan (a) || isnan (b) || isinf (a))
    return NAN;
  if (isinf (b))
    return a;
  return fmod (a, b);
}

static void
eval_binary (Eval       *ev,
             const Node *node,
             Value      *out)
{
  Value x = VALUE_INIT, y = VALUE_INIT;
  int cmp;

  eval (ev, node->a, &x);
  eval (ev, node->b, &y);
  switch ((BinaryOp) node->op)
    {
    case OP_EQ:
      value_set_bool (out, loose_equals (&x, &y));
      break;
    case OP_NE:
      value_set_bool (out, !loose_equals (&x, &y));
      break;
    case OP_STRICT_EQ:
      value_set_bool (out, strict_equals (&x, &y));
      break;
    case OP_STRICT_NE:
      value_set_bool (out, !strict_equals (&x, &y));
      break;
    case OP_LT:
    case OP_GT:
    case OP_LE:
    case OP_GE:
      cmp = relational_compare (&x, &y);
      if (cmp == 2)
        value_set_bool (out, FALSE);
      else if (node->op == OP_LT)
        value_set_bool (out, cmp < 0);
      else if (node->op == OP_GT)
        value_set_bool (out, cmp > 0);
      else if (node->op == OP_LE)
        value_set_bool (out, cmp <= 0);
      else
        value_set_bool (out, cmp >= 0);
      break;
    case OP_ADD:
      if (x.kind == VAL_NUMBER && y.kind == VAL_NUMBER)
        value_set_number (out, x.number + y.number);
      else
        {
          /* Anything but two numbers joins the two sides as they render, so a missing
           * variable adds nothing (JavaScript would write "undefined"). */
          GString *s = g_string_new (NULL);

          value_append (&x, s, TOCSIN_TEMPLATE_MAX_OUTPUT, FALSE);
          value_append (&y, s, TOCSIN_TEMPLATE_MAX_OUTPUT, FALSE);
          value_take_gstring (out, s);
        }
      break;
    case OP_SUB:
      value_set_number (out, value_to_number (&x) - value_to_number (&y));
      break;
    case OP_MUL:
      value_set_number (out, value_to_number (&x) * value_to_number (&y));
      break;
    case OP_DIV:
      value_set_number (out, js_divide (value_to_number (&x), value_to_number (&y)));
      break;
    case OP_MOD:
      value_set_number (out, js_modulo (value_to_number (&x), value_to_number (&y)));
      break;
    default:
      g_assert_not_reached ();
    }
  value_clear (&x);
  value_clear (&y);
}

/* Recursion here follows the AST, whose depth the parser capped. */
static void
eval (Eval       *ev,
      const Node *node,
      Value      *out)
{
  Value x = VALUE_INIT;

  *out = (Value) VALUE_INIT;
  switch (node->kind)
    {
    case NODE_LITERAL:
      *out = node->literal;
      out->owned = NULL; /* borrowed from the template */
      break;
    case NODE_VARIABLE:
      eval_variable (ev, node, out);
      break;
    case NODE_MEMBER:
      eval (ev, node->a, &x);
      member_get (ev, &x, node->name, out); /* never borrows from x's own string */
      value_clear (&x);
      break;
    case NODE_INDEX:
      eval_index (ev, node, out);
      break;
    case NODE_CALL:
      eval_call (ev, node, out);
      break;
    case NODE_NOT:
      eval (ev, node->a, &x);
      value_set_bool (out, !value_truthy (&x));
      value_clear (&x);
      break;
    case NODE_NEGATE:
      eval (ev, node->a, &x);
      value_set_number (out, -value_to_number (&x));
      value_clear (&x);
      break;
    case NODE_TO_NUMBER:
      eval (ev, node->a, &x);
      value_set_number (out, value_to_number (&x));
      value_clear (&x);
      break;
    case NODE_AND:
      eval (ev, node->a, out);
      if (value_truthy (out))
        {
          value_clear (out);
          eval (ev, node->b, out);
        }
      break;
    case NODE_OR:
      eval (ev, node->a, out);
      if (!value_truthy (out))
        {
          value_clear (out);
          eval (ev, node->b, out);
        }
      break;
    case NODE_NULLISH:
      eval (ev, node->a, out);
      if (value_is_nullish (out))
        {
          value_clear (out);
          eval (ev, node->b, out);
        }
      break;
    case NODE_CONDITIONAL:
      eval (ev, node->a, &x);
      eval (ev, value_truthy (&x) ? node->b : node->c, out);
      value_clear (&x);
      break;
    case NODE_BINARY:
      eval_binary (ev, node, out);
      break;
    default:
      g_assert_not_reached ();
    }
}

char *
tocsin_template_render (TocsinTemplate      *self,
                        TocsinTemplateScope *scope,
                        GPtrArray           *missing)
{
  Eval ev = { scope, missing };
  GString *out;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (scope != NULL, NULL);

  out = g_string_new (NULL);
  if (self->condition != NULL)
    {
      Value v;

      eval (&ev, self->condition, &v);
      value_append (&v, out, TOCSIN_TEMPLATE_MAX_OUTPUT, FALSE);
      value_clear (&v);
    }
  for (guint i = 0; i < self->parts->len && out->len < TOCSIN_TEMPLATE_MAX_OUTPUT; i++)
    {
      Part *part = g_ptr_array_index (self->parts, i);

      if (part->text != NULL)
        append_capped (out, part->text, part->length, TOCSIN_TEMPLATE_MAX_OUTPUT);
      else
        {
          Value v;

          eval (&ev, part->expr, &v);
          value_append (&v, out, TOCSIN_TEMPLATE_MAX_OUTPUT, FALSE);
          value_clear (&v);
        }
    }

  /* Every piece is valid UTF-8 by construction; this only guards the promise. */
  if (!g_utf8_validate (out->str, out->len, NULL))
    {
      char *valid = g_utf8_make_valid (out->str, out->len);

      g_string_free (out, TRUE);
      out = g_string_new (valid);
      g_free (valid);
      cut_at_boundary (out, TOCSIN_TEMPLATE_MAX_OUTPUT);
    }
  return g_string_free (out, FALSE);
}

gboolean
tocsin_template_evaluate (TocsinTemplate      *self,
                          TocsinTemplateScope *scope,
                          GPtrArray           *missing)
{
  Eval ev = { scope, missing };
  Value v;
  gboolean result;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (scope != NULL, FALSE);

  if (!self->is_condition)
    {
      /* A text template used as a condition passes when it renders something (or is empty). */
      g_autofree char *text = NULL;

      if (self->parts->len == 0)
        return TRUE;
      text = tocsin_template_render (self, scope, missing);
      return *text != '\0';
    }
  if (self->condition == NULL)
    return TRUE;

  eval (&ev, self->condition, &v);
  result = value_truthy (&v);
  value_clear (&v);
  return result;
}
