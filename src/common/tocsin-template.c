/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-template"

#include "config.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "tocsin-template-private.h"

/*
 * The channel template language: `{{expr}}` interpolation and bare-expression conditions with
 * JavaScript semantics (docs/templates.md). A source is lexed and parsed once into an AST; the
 * AST is never modified afterwards, so rendering only reads it and any number of threads may
 * render the same template at once. Every string a Value holds is valid UTF-8 without NULs:
 * the source is validated at compile time and variables are repaired when they are read.
 *
 * Nothing an HTTP caller sends can drive recursion or a loop: evaluation recursion follows the
 * AST (depth capped at compile time), loops run over the variables' own size, every string the
 * evaluator builds is capped at TOCSIN_TEMPLATE_MAX_OUTPUT bytes, and the work of one scope is
 * capped at TOCSIN_TEMPLATE_MAX_STEPS.
 *
 * The language is split by phase, as Lua splits llex.c/lparser.c/lvm.c/lobject.c:
 *   tocsin-template-value.c    values and ECMAScript conversions (ToString, ToNumber, ==, JSON)
 *   tocsin-template-parse.c    errors with positions, the lexer, the parser (grammar at its top)
 *   tocsin-template-eval.c     the evaluator and its work budget; render and evaluate
 *   tocsin-template.c          this file: the boxed type, constructors, getters, the scope
 *   tocsin-template-private.h  Value, the AST and the two structures they share
 */

G_DEFINE_BOXED_TYPE (TocsinTemplate, tocsin_template, tocsin_template_ref, tocsin_template_unref)

TocsinTemplate *
tocsin_template_new (const char  *field,
                     const char  *source,
                     GError     **error)
{
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return tocsin_template_compile (field, source, FALSE, error);
}

TocsinTemplate *
tocsin_template_new_condition (const char  *field,
                               const char  *source,
                               GError     **error)
{
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return tocsin_template_compile (field, source, TRUE, error);
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
  g_clear_error (&scope->budget_error);
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
tocsin_template_scope_set_header_fill (TocsinTemplateScope        *scope,
                                       TocsinTemplateScopeFillFunc fill,
                                       gpointer                    data)
{
  g_return_if_fail (scope != NULL);
  scope->headers_fill = fill;
  scope->headers_fill_data = data;
}

void
tocsin_template_scope_set_body_text (TocsinTemplateScope *scope,
                                     const char          *text)
{
  g_return_if_fail (scope != NULL);
  g_free (scope->body_text);
  scope->body_text = text ? g_utf8_make_valid (text, -1) : NULL;
}

gboolean
tocsin_template_scope_check (TocsinTemplateScope  *scope,
                             GError              **error)
{
  g_return_val_if_fail (scope != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (scope->budget_error == NULL)
    return TRUE;
  if (error != NULL)
    *error = g_error_copy (scope->budget_error);
  return FALSE;
}
