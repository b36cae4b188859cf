/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-template"

#include "config.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "tocsin-json.h"
#include "tocsin-template-private.h"

/*
 * Values and the ECMAScript conversions: ToString, ToNumber, equality, JSON text. A Value borrows
 * from the template or the scope where it can and owns its string otherwise; none of these
 * functions knows about the AST or the budget (the evaluator charges for what it asks of them).
 */

/* Deeper JSON values are written as null when an object or array is rendered. */
#define JSON_MAX_NESTING 128

/* ---- values ---- */

/* Borrows from @node, which the scope owns. */
void
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
            const char *end;

            if (s == NULL)
              s = "";
            /* Variables are data from the network: repair, never trust. */
            if (g_utf8_validate (s, -1, &end))
              value_set_static (v, s, end - s);
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

/* ---- strings ---- */

/* Appends at most @limit - out->len bytes of @s, never splitting a character. */
void
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

void
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
gboolean
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
void
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

gsize
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
double
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
  tocsin_json_append_string_capped (out, s, limit);
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
void
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
void
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

double
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
gboolean
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
gboolean
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
int
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
