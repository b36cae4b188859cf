/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-template-private.h: what the parts of the template language share (values, the AST,
 * the template and scope structures). Not for use outside src/common/tocsin-template*.c.
 */
#pragma once

#include <math.h>

#include "tocsin-template.h"

G_BEGIN_DECLS

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

/* The small value operations are inline: the evaluator calls them for every node, and a call
 * across files costs what they do (Lua keeps the same ones as macros in lobject.h). */

static inline void
value_clear (Value *v)
{
  g_free (v->owned);
  *v = (Value) VALUE_INIT;
}

static inline void
value_set_bool (Value *v, gboolean b)
{
  *v = (Value) VALUE_INIT;
  v->kind = VAL_BOOL;
  v->boolean = !!b;
}

static inline void
value_set_number (Value *v, double d)
{
  *v = (Value) VALUE_INIT;
  v->kind = VAL_NUMBER;
  v->number = d;
}

static inline void
value_set_int (Value *v, gint64 i)
{
  value_set_number (v, (double) i);
  v->is_int = TRUE;
  v->integer = i;
}

/* @s must be valid UTF-8 and outlive @v */
static inline void
value_set_static (Value *v, const char *s, gsize length)
{
  *v = (Value) VALUE_INIT;
  v->kind = VAL_STRING;
  v->string = s;
  v->length = length;
}

static inline void
value_take_string (Value *v, char *s, gsize length)
{
  value_set_static (v, s, length);
  v->owned = s;
}

static inline void
value_take_gstring (Value *v, GString *s)
{
  gsize length = s->len;

  value_take_string (v, g_string_free (s, FALSE), length);
}

static inline gboolean
value_is_nullish (const Value *v)
{
  return v->kind == VAL_UNDEFINED || v->kind == VAL_NULL;
}

static inline gboolean
value_is_object (const Value *v)
{
  return v->kind == VAL_ARRAY || v->kind == VAL_OBJECT;
}

static inline gboolean
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

/* What a NODE_VARIABLE reads, decided when it is parsed. */
typedef enum
{
  VARIABLE_WEBHOOK,   /* a webhook variable */
  VARIABLE_CLOCK,     /* a webhook variable, or else the clock's value (time, date, ...) */
  VARIABLE_HEADER,    /* header: the request's headers */
  VARIABLE_BODY_TEXT, /* bodyAsText: the raw text/plain body */
} VariableKind;

typedef struct _Node Node;
struct _Node
{
  NodeKind kind;
  int op;        /* BinaryOp, Method, or VariableKind */
  guint depth;   /* 1 for a leaf */
  gsize offset;  /* bytes into the source */
  Node *a, *b, *c;
  char *name;    /* NODE_VARIABLE, NODE_MEMBER */
  Value literal; /* NODE_LITERAL; owns its string */
};

typedef struct
{
  char *text; /* literal text, or NULL for an expression */
  gsize length;
  Node *expr;
} Part;

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
  TocsinTemplateScopeFillFunc headers_fill;  /* called once, before headers is first read */
  gpointer headers_fill_data;
  char *body_text;        /* valid UTF-8 or NULL */

  /* The work budget, shared by every render with this scope (tocsin-template-eval.c) */
  guint64 steps;
  GError *budget_error;   /* set once the budget is spent */
};

/* tocsin-template-value.c: values and conversions */
void     value_set_node       (Value       *v,
                               JsonNode    *node);
void     value_append         (const Value *v,
                               GString     *out,
                               gsize        limit,
                               gboolean     js);
void     value_to_string      (const Value *v,
                               Value       *out,
                               gboolean     js);
double   value_to_number      (const Value *v);
gboolean strict_equals        (const Value *x,
                               const Value *y);
gboolean loose_equals         (const Value *x,
                               const Value *y);
int      relational_compare   (const Value *x,
                               const Value *y);
void     append_capped        (GString     *out,
                               const char  *s,
                               gsize        length,
                               gsize        limit);
void     cut_at_boundary      (GString     *out,
                               gsize        limit);
gboolean is_js_space          (gunichar     c);
void     js_trim_bounds       (const char  *s,
                               gsize        length,
                               gsize       *start,
                               gsize       *end);
gsize    utf16_length         (const char  *s);
double   string_to_number     (const char  *s,
                               gsize        length);

/* tocsin-template-parse.c: the lexer and parser */
void            node_free               (Node        *node);
TocsinTemplate *tocsin_template_compile (const char  *field,
                                         const char  *source,
                                         gboolean     condition,
                                         GError     **error);

G_END_DECLS
