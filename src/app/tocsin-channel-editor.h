/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

#include "tocsin-application.h"

G_BEGIN_DECLS

#define TOCSIN_TYPE_CHANNEL_EDITOR (tocsin_channel_editor_get_type ())
G_DECLARE_FINAL_TYPE (TocsinChannelEditor, tocsin_channel_editor, TOCSIN, CHANNEL_EDITOR, AdwWindow)

/* "New channel": name, templates, condition, a live preview over sample variables; after
 * creation, the webhook URL and subscribe link with copy buttons and curl lines. */
GtkWidget *tocsin_channel_editor_new             (GtkWindow                *parent,
                                                  TocsinApplication        *app);
/* Edit, rotate or delete a channel this user owns. */
GtkWidget *tocsin_channel_editor_new_for_channel (GtkWindow                *parent,
                                                  TocsinApplication        *app,
                                                  const TocsinOwnedChannel *channel);

/* For tests: sets a template field ("title", "body", "link", "condition") or the sample JSON
 * ("sample") as if typed, and re-renders the preview at once. */
void       tocsin_channel_editor_set_field       (TocsinChannelEditor      *self,
                                                  const char               *field,
                                                  const char               *text);
/* For tests: the inline error under @field, or NULL when it has none. */
const char *tocsin_channel_editor_get_error      (TocsinChannelEditor      *self,
                                                  const char               *field);
/* For tests: the text of a field ("name", "title", "body", "link", "condition", "sample") as
 * shown now. Free with g_free(). */
char       *tocsin_channel_editor_get_field      (TocsinChannelEditor      *self,
                                                  const char               *field);

G_END_DECLS
