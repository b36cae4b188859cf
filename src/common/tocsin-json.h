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

#define TOCSIN_JSON_ERROR (tocsin_json_error_quark ())

typedef enum
{
  TOCSIN_JSON_ERROR_TOO_LARGE,      /* more bytes than the caller allows */
  TOCSIN_JSON_ERROR_TOO_DEEP,       /* arrays and objects nested deeper than allowed */
  TOCSIN_JSON_ERROR_INVALID_UTF8,
  TOCSIN_JSON_ERROR_CONTROL_CHAR,   /* a raw U+0000..U+001F inside a string (RFC 8259 §7) */
  TOCSIN_JSON_ERROR_SYNTAX,
  TOCSIN_JSON_ERROR_NOT_OBJECT,     /* tocsin_json_parse_object(): valid JSON, not an object */
} TocsinJsonError;

GQuark tocsin_json_error_quark (void);

/* Default bounds for peer JSON that has no tighter ones of its own. */
#define TOCSIN_JSON_DEFAULT_MAX_DEPTH 64

/*
 * The one way to parse JSON that a peer sent (a webhook, an owner API body, a relay's frame or
 * lookup answer, a config file). json-glib's parser recurses once per nesting level, so 100,000
 * `[` overflow the stack: size, UTF-8, depth and raw control characters are checked in one pass
 * over the text *before* json-glib sees it. Returns the root (owned) or NULL with @error set to
 * a sentence a person can act on; when the offending string is inside a top-level member of an
 * object, the sentence names that member.
 */
JsonNode *tocsin_json_parse (const char  *data,
                             gsize        length,
                             gsize        max_bytes,
                             guint        max_depth,
                             GError     **error);
/* The same, and the root must be an object. */
JsonObject *tocsin_json_parse_object (const char  *data,
                                      gsize        length,
                                      gsize        max_bytes,
                                      guint        max_depth,
                                      GError     **error);

/* Like json_object_get_*_member_with_default(), but quiet when a peer sent the wrong type (an
 * object where a number belongs, say): those return @fallback instead of raising a critical. */
gint64      tocsin_json_get_int    (JsonObject *object,
                                    const char *name,
                                    gint64      fallback);
const char *tocsin_json_get_string (JsonObject *object,
                                    const char *name,
                                    const char *fallback);

/* Appends @s as a JSON string literal, quotes included: the one JSON string escaper. */
void tocsin_json_append_string (GString    *out,
                                const char *s);
/* The same, but stops escaping once @out is @limit bytes long; the closing quote is still
 * written, so the caller cuts the result (the template language caps what it renders). */
void tocsin_json_append_string_capped (GString    *out,
                                       const char *s,
                                       gsize       limit);

/* Like json_to_string(): compact, or indented by two spaces when @pretty. NULL node: "null". */
char *tocsin_json_to_string (JsonNode *node,
                             gboolean  pretty);
/* Appends @value in decimal, as "%" G_GINT64_FORMAT would (without printf). */
void  tocsin_json_append_int  (GString *out,
                               gint64   value);
/* Appends @node as compact JSON, as tocsin_json_to_string (@node, FALSE) would return it. */
void  tocsin_json_append_node (GString  *out,
                               JsonNode *node);
/* Appends the shortest JSON number that reads back as @value ("null" when not finite). */
void  tocsin_json_append_double (GString *out,
                                 double   value);

/* TRUE when every member name and string in @node is valid UTF-8 and nesting stays within
 * @max_depth (json-glib 1.6's parser lets invalid UTF-8 through inside strings). */
gboolean tocsin_json_is_valid_text (JsonNode *node,
                                    guint     max_depth);

G_END_DECLS
