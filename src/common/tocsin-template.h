/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-template.h: the channel template language (Echobell-compatible).
 *
 * A template is compiled once (when a channel is saved) and rendered many times (per webhook).
 * Compilation reports syntax errors with their position; rendering never fails: anything that
 * JavaScript would leave undefined renders as "" and is false in a condition, and a scope that
 * runs over its work budget renders "" and says why (tocsin_template_scope_check()). Pure C +
 * GLib + json-glib, no I/O; a compiled template is thread-safe, a scope (which keeps the budget's
 * count) belongs to one thread at a time.
 */
#pragma once

#include <glib.h>
#include <glib-object.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define TOCSIN_TEMPLATE_ERROR (tocsin_template_error_quark ())

typedef enum
{
  TOCSIN_TEMPLATE_ERROR_SYNTAX,   /* "body, column 14: expected '}}'" */
  TOCSIN_TEMPLATE_ERROR_TOO_LARGE, /* source or nesting over the limits below */
  TOCSIN_TEMPLATE_ERROR_BUDGET     /* rendering did more than TOCSIN_TEMPLATE_MAX_STEPS of work */
} TocsinTemplateError;

/* Limits that keep hostile templates and variables harmless. */
#define TOCSIN_TEMPLATE_MAX_SOURCE (16 * 1024)  /* bytes of template source */
#define TOCSIN_TEMPLATE_MAX_DEPTH  64           /* nesting of expressions */
#define TOCSIN_TEMPLATE_MAX_OUTPUT (64 * 1024)  /* bytes rendered; longer output is cut */
/* Work one scope (one webhook: its condition, title, body and link together) may do. A step is
 * an expression evaluated, a byte of a string an expression produces, an element an array
 * method looks at, or a byte rendered; converting an object or array to text for a comparison
 * or arithmetic costs TOCSIN_TEMPLATE_MAX_OUTPUT. About 30 passes over a 64 KiB variable. */
#define TOCSIN_TEMPLATE_MAX_STEPS  (2 * 1000 * 1000)

typedef struct _TocsinTemplate      TocsinTemplate;
typedef struct _TocsinTemplateScope TocsinTemplateScope;

GQuark          tocsin_template_error_quark     (void);

/* Errors of TOCSIN_TEMPLATE_ERROR carry where they point, so a channel editor can underline the
 * spot. The message reads "FIELD, column C: REASON", or "FIELD, line L, column C: REASON" when
 * the source has several lines. @line and @column are 1-based; columns count Unicode characters
 * (a tab is one); @offset is the byte offset into the source. Any out argument may be NULL.
 * Returns FALSE (and sets nothing) when @error is not a template error or has no position, such
 * as a source over TOCSIN_TEMPLATE_MAX_SOURCE. */
gboolean        tocsin_template_error_get_position (const GError      *error,
                                                    guint             *line,
                                                    guint             *column,
                                                    gsize             *offset);
/* The reason alone, without "FIELD, column C: " ("expected '}}'"), or NULL. Translated. */
const char     *tocsin_template_error_get_reason   (const GError      *error);
GType           tocsin_template_get_type        (void) G_GNUC_CONST;
#define TOCSIN_TYPE_TEMPLATE (tocsin_template_get_type ())

/* @field names the template in error messages ("title", "body", "link", "condition").
 * A NULL or empty @source compiles to a template that renders "" (and a condition that passes). */
TocsinTemplate *tocsin_template_new             (const char           *field,
                                                 const char           *source,
                                                 GError              **error);
TocsinTemplate *tocsin_template_new_condition   (const char           *field,
                                                 const char           *source,
                                                 GError              **error);
TocsinTemplate *tocsin_template_ref             (TocsinTemplate       *self);
void            tocsin_template_unref           (TocsinTemplate       *self);
const char     *tocsin_template_get_source      (TocsinTemplate       *self);
gboolean        tocsin_template_is_empty        (TocsinTemplate       *self);

/* Root variable names the template reads (not the special clock/header names), sorted, unique. */
const char * const *tocsin_template_get_variables (TocsinTemplate     *self);

/* The variables a template is rendered against. @vars is the webhook's JSON object (may be NULL);
 * @now is the clock for the special time variables (NULL: the current UTC time). */
TocsinTemplateScope *tocsin_template_scope_new       (JsonObject          *vars,
                                                      GDateTime           *now);
void                 tocsin_template_scope_free      (TocsinTemplateScope *scope);
/* Request headers; @name is lowercased. Readable as header["name"]. */
void                 tocsin_template_scope_add_header (TocsinTemplateScope *scope,
                                                       const char          *name,
                                                       const char          *value);
/* Request headers added only if a template reads header[…]: @fill is called once, with @data,
 * the first time one does (it calls tocsin_template_scope_add_header()); @data must outlive
 * every render and evaluation with @scope. Most webhooks' templates never read a header. */
typedef void (*TocsinTemplateScopeFillFunc) (TocsinTemplateScope *scope,
                                             gpointer             data);
void                 tocsin_template_scope_set_header_fill (TocsinTemplateScope        *scope,
                                                            TocsinTemplateScopeFillFunc fill,
                                                            gpointer                    data);
/* The raw body of a text/plain request, readable as bodyAsText. */
void                 tocsin_template_scope_set_body_text (TocsinTemplateScope *scope,
                                                          const char          *text);

/* FALSE, with a TOCSIN_TEMPLATE_ERROR_BUDGET error saying which template ran out, when a render or
 * evaluation with @scope went over TOCSIN_TEMPLATE_MAX_STEPS. The budget belongs to the scope, so
 * every field rendered for one webhook shares it; once it is spent, renders give "" and
 * evaluations FALSE. Callers that can answer a peer should check this before using the results. */
gboolean             tocsin_template_scope_check      (TocsinTemplateScope *scope,
                                                       GError             **error);

/* Renders; never fails (but see tocsin_template_scope_check(): over the budget it gives "").
 * When @missing is not NULL, the names (g_strdup'd, unique) of root variables the template read
 * that the scope did not have are appended to it. Output longer than TOCSIN_TEMPLATE_MAX_OUTPUT
 * is cut at a UTF-8 boundary. Output is always valid UTF-8. */
char           *tocsin_template_render          (TocsinTemplate       *self,
                                                 TocsinTemplateScope  *scope,
                                                 GPtrArray            *missing);
/* JavaScript truthiness of the condition; an empty condition is TRUE. (Rendering a condition
 * gives its value as text; evaluating a text template is TRUE when it renders something or is
 * empty.) The language itself is described in docs/templates.md. */
gboolean        tocsin_template_evaluate        (TocsinTemplate       *self,
                                                 TocsinTemplateScope  *scope,
                                                 GPtrArray            *missing);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinTemplate, tocsin_template_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinTemplateScope, tocsin_template_scope_free)

G_END_DECLS
