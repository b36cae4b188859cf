/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-template"

#include "config.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "tocsin-template-private.h"

/*
 * The evaluator: walks the AST against a scope, reading variables, the clock and the request's
 * headers, and spending the scope's work budget as it goes (see spend()).
 */

/* ---- evaluation ---- */

typedef struct
{
  TocsinTemplateScope *scope;
  GPtrArray *missing;
  const char *field;
} Eval;

/*
 * The budget. Recursion and loops are bounded by the AST and the variables, but their product is
 * not: 2,000 chained methods over a 64 KiB variable fit in a 16 KiB template and took 1.7 s on the
 * relay's main loop. So every expression evaluated, every byte of a string it produces and every
 * array element a method looks at is a step, and a scope may spend TOCSIN_TEMPLATE_MAX_STEPS.
 * Once they are spent, eval() returns undefined at once, so the rest of the AST unwinds in
 * O(nodes), and the caller learns why from tocsin_template_scope_check().
 */
static G_GNUC_NO_INLINE gboolean spend_over (Eval *ev);

static inline gboolean
spend (Eval  *ev,
       gsize  steps)
{
  TocsinTemplateScope *scope = ev->scope;

  scope->steps += steps;
  if (G_LIKELY (scope->steps <= TOCSIN_TEMPLATE_MAX_STEPS))
    return TRUE;
  return spend_over (ev);
}

/* The budget is spent (steps only grow, so this stays true for the scope's life). */
static gboolean
spend_over (Eval *ev)
{
  TocsinTemplateScope *scope = ev->scope;

  if (scope->budget_error != NULL)
    return FALSE;
  g_set_error (&scope->budget_error, TOCSIN_TEMPLATE_ERROR, TOCSIN_TEMPLATE_ERROR_BUDGET,
               /* Translators: %s is a field name (title, body, link, condition); %d a number */
               _("The template did too much work: the %s went over the %d steps one webhook may "
                 "use (each operation and each character of a long variable it handles counts); "
                 "simplify it, for example call fewer methods on long variables"),
               ev->field, TOCSIN_TEMPLATE_MAX_STEPS);
  return FALSE;
}

/* Comparing or computing with an object or array converts it to its JSON text first. */
static gboolean
spend_on_conversion (Eval        *ev,
                     const Value *v)
{
  return v->kind != VAL_ARRAY && v->kind != VAL_OBJECT
         ? TRUE : spend (ev, TOCSIN_TEMPLATE_MAX_OUTPUT);
}

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
  if (node->op == VARIABLE_HEADER)
    {
      TocsinTemplateScopeFillFunc fill = scope->headers_fill;

      if (fill != NULL)
        {
          scope->headers_fill = NULL;
          fill (scope, scope->headers_fill_data);
        }
      value_set_node (out, scope->headers);
      return;
    }
  if (node->op == VARIABLE_BODY_TEXT)
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
  if (node->op == VARIABLE_CLOCK && clock_value (scope->now, name, out))
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
          if (!spend (ev, 1 + element.length))
            {
              value_clear (&element);
              break;
            }
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
    case OP_STRICT_EQ:
    case OP_STRICT_NE:
      break;
    case OP_EQ:
    case OP_NE:
      /* == converts an object only when the other side is a primitive other than null */
      if (x.kind == y.kind || value_is_nullish (&x) || value_is_nullish (&y))
        break;
      G_GNUC_FALLTHROUGH;
    default:
      if (!spend_on_conversion (ev, &x) || !spend_on_conversion (ev, &y))
        {
          value_clear (&x);
          value_clear (&y);
          return;
        }
      break;
    }
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
  if (!spend (ev, 1))
    return;
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
      if (spend_on_conversion (ev, &x))
        value_set_number (out, -value_to_number (&x));
      value_clear (&x);
      break;
    case NODE_TO_NUMBER:
      eval (ev, node->a, &x);
      if (spend_on_conversion (ev, &x))
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

  /* A string costs its length: reading a variable validates it, a method or + writes it. */
  if (out->kind == VAL_STRING && node->kind != NODE_LITERAL && !spend (ev, out->length))
    value_clear (out);
}

/* Appends @v to the output; an object or array spends the bytes of JSON it writes. */
static void
render_value (Eval        *ev,
              const Value *v,
              GString     *out)
{
  gsize before = out->len;

  value_append (v, out, TOCSIN_TEMPLATE_MAX_OUTPUT, FALSE);
  if (v->kind == VAL_ARRAY || v->kind == VAL_OBJECT)
    spend (ev, out->len - before);
}

char *
tocsin_template_render (TocsinTemplate      *self,
                        TocsinTemplateScope *scope,
                        GPtrArray           *missing)
{
  Eval ev = { scope, missing, NULL };
  GString *out;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (scope != NULL, NULL);

  ev.field = self->field;
  if (scope->budget_error != NULL)
    return g_strdup ("");

  out = g_string_new (NULL);
  if (self->condition != NULL)
    {
      Value v;

      eval (&ev, self->condition, &v);
      render_value (&ev, &v, out);
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
          render_value (&ev, &v, out);
          value_clear (&v);
        }
    }

  /* Half a rendering over budget would read as a real one. */
  if (scope->budget_error != NULL)
    {
      g_string_free (out, TRUE);
      return g_strdup ("");
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
  Eval ev = { scope, missing, NULL };
  Value v;
  gboolean result;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (scope != NULL, FALSE);

  ev.field = self->field;
  if (scope->budget_error != NULL)
    return FALSE;
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
  result = value_truthy (&v) && scope->budget_error == NULL;
  value_clear (&v);
  return result;
}
