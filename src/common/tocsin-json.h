/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-json.h: JSON text for json-glib nodes.
 *
 * json-glib 1.6 (Debian 12) writes a double by appending ".0" to g_ascii_dtostr()'s output when
 * it has no '.', which turns 1e-100 into "1e-100.0": not JSON. Every message, reply and export
 * that can hold a sender's number is written here instead, with the shortest text that reads
 * back as the same double.
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Like json_to_string(): compact, or indented by two spaces when @pretty. NULL node: "null". */
char *tocsin_json_to_string (JsonNode *node,
                             gboolean  pretty);
/* Appends the shortest JSON number that reads back as @value ("null" when not finite). */
void  tocsin_json_append_double (GString *out,
                                 double   value);

/* TRUE when every member name and string in @node is valid UTF-8 and nesting stays within
 * @max_depth (json-glib 1.6's parser lets invalid UTF-8 through inside strings). */
gboolean tocsin_json_is_valid_text (JsonNode *node,
                                    guint     max_depth);

G_END_DECLS
