/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libFuzzer target for the channel template language. The input is three parts separated by NUL
 * bytes: a template, a condition, and the webhook variables as JSON (which also serve as the
 * text body and a header). Every source is compiled both as a template and as a condition, then
 * rendered and evaluated. Beyond "does not crash", it checks the promises of the header: errors
 * point inside the source, output is valid UTF-8 and within TOCSIN_TEMPLATE_MAX_OUTPUT, and
 * the work budget holds: each render gets a fresh scope, and a scope over budget reports
 * TOCSIN_TEMPLATE_ERROR_BUDGET and renders nothing more.
 */
#define G_LOG_DOMAIN "fuzz-template"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "tocsin-template.h"

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

typedef struct
{
  JsonObject *vars;
  GDateTime  *now;
  const char *parts[3];
} Input;

/* A scope as the relay builds one per webhook. */
static TocsinTemplateScope *
scope_new (const Input *input)
{
  TocsinTemplateScope *scope = tocsin_template_scope_new (input->vars, input->now);

  tocsin_template_scope_add_header (scope, "User-Agent", input->parts[2]);
  tocsin_template_scope_add_header (scope, input->parts[1], input->parts[0]);
  tocsin_template_scope_set_body_text (scope, input->parts[2]);
  return scope;
}

static void
exercise (TocsinTemplate *template,
          const Input    *input)
{
  g_autoptr(TocsinTemplateScope) scope = scope_new (input);
  g_autoptr(GPtrArray) missing = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *text = tocsin_template_render (template, scope, missing);
  const char * const *variables = tocsin_template_get_variables (template);
  g_autoptr(GError) error = NULL;

  check (text != NULL, "render returns a string");
  check (g_utf8_validate (text, -1, NULL), "output is valid UTF-8");
  check (strlen (text) <= TOCSIN_TEMPLATE_MAX_OUTPUT, "output is within the cap");
  check (*text == '\0' || tocsin_template_scope_check (scope, NULL),
         "a render that ran over budget gives nothing");
  /* A text template evaluated as a condition renders again: it may be this that runs over. */
  (void) tocsin_template_evaluate (template, scope, missing);

  /* The budget: over it, a sentence with its own code, and nothing more is rendered. */
  if (!tocsin_template_scope_check (scope, &error))
    {
      g_autofree char *again = tocsin_template_render (template, scope, NULL);

      check (error != NULL && error->domain == TOCSIN_TEMPLATE_ERROR
             && error->code == TOCSIN_TEMPLATE_ERROR_BUDGET, "over budget is a budget error");
      check (g_utf8_validate (error->message, -1, NULL), "the budget sentence is UTF-8");
      check (*again == '\0', "over budget renders nothing");
      check (!tocsin_template_evaluate (template, scope, NULL), "over budget evaluates FALSE");
    }

  /* Every missing name is a variable the template reads. */
  for (guint i = 0; i < missing->len; i++)
    check (g_strv_contains (variables, g_ptr_array_index (missing, i)),
           "missing names are among the variables");
}

static TocsinTemplate *
compile (const char *source,
         gboolean    condition)
{
  g_autoptr(GError) error = NULL;
  TocsinTemplate *template;
  guint line, column;
  gsize offset;

  template = condition ? tocsin_template_new_condition ("condition", source, &error)
                       : tocsin_template_new ("body", source, &error);
  check ((template == NULL) == (error != NULL), "an error exactly when compiling fails");
  if (error != NULL)
    {
      check (error->domain == TOCSIN_TEMPLATE_ERROR, "errors are template errors");
      check (g_utf8_validate (error->message, -1, NULL), "error messages are valid UTF-8");
      if (error->code == TOCSIN_TEMPLATE_ERROR_SYNTAX)
        {
          check (tocsin_template_error_get_position (error, &line, &column, &offset),
                 "syntax errors have a position");
          check (offset <= strlen (source), "the position is inside the source");
          check (line >= 1 && column >= 1, "positions are 1-based");
        }
    }
  return template;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *copy = g_malloc (size + 1);
  const char *parts[3] = { "", "", "" };
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GDateTime) now = g_date_time_new_from_unix_utc (1795452000);
  JsonObject *vars = NULL;
  Input input;
  const char *p;
  const char *end;
  guint n = 0;

  memcpy (copy, data, size);
  copy[size] = '\0';
  end = copy + size;
  for (p = copy; n < 3 && p <= end; p += strlen (p) + 1)
    parts[n++] = p;

  /* An empty document parses with no root at all. */
  if (json_parser_load_from_data (parser, parts[2], -1, NULL)
      && json_parser_get_root (parser) != NULL
      && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    vars = json_node_get_object (json_parser_get_root (parser));

  input.vars = vars;
  input.now = now;
  memcpy (input.parts, parts, sizeof parts);

  for (int i = 0; i < 2; i++)
    {
      g_autofree char *valid = g_utf8_make_valid (parts[i], -1);

      for (int condition = 0; condition < 2; condition++)
        {
          g_autoptr(TocsinTemplate) raw = compile (parts[i], condition);
          g_autoptr(TocsinTemplate) repaired = NULL;

          if (raw != NULL)
            exercise (raw, &input);
          /* Most mutations are not UTF-8; repair them so the parser sees them too. */
          if (raw == NULL && strcmp (valid, parts[i]) != 0)
            {
              repaired = compile (valid, condition);
              if (repaired != NULL)
                exercise (repaired, &input);
            }
        }
    }
  return 0;
}
