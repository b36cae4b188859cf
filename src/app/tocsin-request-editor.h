/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-request-editor.h: one outgoing request of a channel (a "forward" the relay sends, or an
 * "action" button on its notifications), edited as the fields of the request model
 * (tocsin-request.h) and validated with it, its errors shown under the field they are about.
 */
#pragma once

#include <adwaita.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define TOCSIN_TYPE_REQUEST_EDITOR (tocsin_request_editor_get_type ())
G_DECLARE_FINAL_TYPE (TocsinRequestEditor, tocsin_request_editor, TOCSIN, REQUEST_EDITOR, GtkBox)

/* @is_action: an action button (a kind, no event) rather than a forward (an event, no kind).
 * Signals: "changed" (any field was edited), "remove" (the user pressed its Remove button). */
GtkWidget  *tocsin_request_editor_new      (gboolean             is_action);
gboolean    tocsin_request_editor_is_action (TocsinRequestEditor *self);
/* Shows @definition (as the relay's owner view gives it). */
void        tocsin_request_editor_load     (TocsinRequestEditor *self,
                                            JsonObject          *definition);
/* Builds the definition and compiles it with tocsin_request_new() under @field ("forwards[0]"),
 * showing each error under its field and clearing the others. Returns the definition, or NULL
 * when it has errors. */
JsonObject *tocsin_request_editor_validate (TocsinRequestEditor *self,
                                            const char          *field);

/* Shows @message (an error about request @field, e.g. the relay's 400 sentence
 * "forwards[0].url: ...") under the field it names. */
void        tocsin_request_editor_show_error (TocsinRequestEditor *self,
                                              const char          *field,
                                              const char          *message);

/* For tests: sets a field as if typed ("name", "url", "condition", "headers", "params", "body",
 * "rpc-method"; "kind", "event", "method", "format", "policy" take their JSON values). */
void        tocsin_request_editor_set_field (TocsinRequestEditor *self,
                                             const char          *field,
                                             const char          *text);
/* For tests: the error shown under @field (as above, or "other" for the rest), or NULL. */
const char *tocsin_request_editor_get_error (TocsinRequestEditor *self,
                                             const char          *field);

G_END_DECLS
