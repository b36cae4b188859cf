/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-request.h: an outgoing request (issue 15, docs/actions.md): Ringostat's action model,
 * Braze's methods. One model for both senders: the relay's per-channel "forwards" and the app's
 * "http" action buttons. A definition is compiled once (when a channel is saved) and rendered per
 * event against the message's variables plus the event's own. Pure C + GLib + json-glib, no I/O;
 * a compiled request is immutable and thread-safe.
 *
 * Definition (JSON object, camelCase; every string marked T is a template):
 *   {"name": "Silence 1 h",                         required, 1..64 characters, plain text
 *    "kind": "http",                                "http" (default) or "view" (app only: open url)
 *    "event": "message",                            "message" (default) or "acknowledge"
 *    "condition": "status == 'firing'",             T, optional: send only when truthy
 *                                                   (an expression, without {{ }}, as a
 *                                                   channel's condition)
 *    "method": "POST",                              GET, POST (default), PUT, DELETE
 *    "url": "https://am.example/api/v2/silences",   T, required; must render to http(s)
 *    "format": "json",                              json (default), raw, json-rpc, form
 *    "headers": {"Authorization": "Bearer {{k}}"},  T values; Content-Type set from the format
 *                                                   unless given here
 *    "params": [PARAM, ...],                        json, json-rpc (its params), form, GET query
 *    "body": "text {{x}}",                          T, raw only: the body as written
 *    "rpcMethod": "alerts.silence",                 T, json-rpc only (required there)
 *    "policy": "retry"}                             "retry" (Braze, default) or "none" (Ringostat)
 *   PARAM: {"name": "n", "type": "text", "value": T}
 *          type text | md5 | crc32 | sha1 | sha256: "value" is a template; a hash sends the
 *            lowercase hex digest of the rendered value
 *          type array:  "items": [PARAM without "name", ...]
 *          type object: "fields": [PARAM, ...]
 *   "name" is required except inside an array's items.
 * Limits: TOCSIN_REQUEST_MAX_SOURCE bytes of definition, TOCSIN_REQUEST_MAX_PARAMS params in all,
 * TOCSIN_REQUEST_MAX_DEPTH levels of arrays/objects, TOCSIN_REQUEST_MAX_HEADERS headers.
 *
 * Event variables (added to the message's own, winning over same-named ones):
 *   record.id, record.time (ISO 8601 UTC, "2026-12-06T19:40:00.000Z"), record.title,
 *   record.body, record.link, channel.id, channel.name, user (who pressed or acknowledged; "" for
 *   a message event), action (the request's name).
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "tocsin-template.h"

G_BEGIN_DECLS

#define TOCSIN_REQUEST_ERROR (tocsin_request_error_quark ())

typedef enum
{
  TOCSIN_REQUEST_ERROR_INVALID,    /* a definition that cannot be used: the message says where */
  TOCSIN_REQUEST_ERROR_RENDER,     /* rendered to something unsendable (a URL that is not http) */
} TocsinRequestError;

#define TOCSIN_REQUEST_MAX_SOURCE  (16 * 1024)
#define TOCSIN_REQUEST_MAX_PARAMS  64
#define TOCSIN_REQUEST_MAX_DEPTH   8
#define TOCSIN_REQUEST_MAX_HEADERS 16
/* At most this many forwards per channel, and action buttons per message. */
#define TOCSIN_REQUEST_MAX_FORWARDS 8
#define TOCSIN_REQUEST_MAX_ACTIONS  3
/* Rendered bodies longer than this are refused at render time. */
#define TOCSIN_REQUEST_MAX_BODY    (256 * 1024)
/* Rendered URLs (with a GET's query) longer than this are refused at render time. */
#define TOCSIN_REQUEST_MAX_URL     (16 * 1024)

typedef enum { TOCSIN_REQUEST_KIND_HTTP, TOCSIN_REQUEST_KIND_VIEW } TocsinRequestKind;
typedef enum { TOCSIN_REQUEST_EVENT_MESSAGE, TOCSIN_REQUEST_EVENT_ACKNOWLEDGE } TocsinRequestEvent;
typedef enum
{
  TOCSIN_REQUEST_FORMAT_JSON,
  TOCSIN_REQUEST_FORMAT_RAW,
  TOCSIN_REQUEST_FORMAT_JSON_RPC,
  TOCSIN_REQUEST_FORMAT_FORM,
} TocsinRequestFormat;
typedef enum { TOCSIN_REQUEST_POLICY_RETRY, TOCSIN_REQUEST_POLICY_NONE } TocsinRequestPolicy;

typedef struct _TocsinRequest TocsinRequest;

GQuark          tocsin_request_error_quark    (void);

/* Compiles @definition. @field names it in errors ("forwards[1]", "actions[0]"): errors read
 * "forwards[1].headers.Authorization, column 9: expected '}}'" (template errors keep their
 * position, see tocsin_template_error_get_position()) or "forwards[1].method: use GET, POST, PUT
 * or DELETE". Template errors are TOCSIN_TEMPLATE_ERROR (so they keep that position); the rest
 * TOCSIN_REQUEST_ERROR_INVALID. */
TocsinRequest  *tocsin_request_new            (const char   *field,
                                               JsonObject   *definition,
                                               GError      **error);
TocsinRequest  *tocsin_request_ref            (TocsinRequest *self);
void            tocsin_request_unref          (TocsinRequest *self);
/* The definition as given (normalised: defaults filled in), for storing and showing. Borrowed and
 * sealed (json_object_seal()): a compiled request is shared between threads, so copy it to
 * change it. */
JsonObject     *tocsin_request_get_definition (TocsinRequest *self);
const char     *tocsin_request_get_name       (TocsinRequest *self);
TocsinRequestKind   tocsin_request_get_kind   (TocsinRequest *self);
TocsinRequestEvent  tocsin_request_get_event  (TocsinRequest *self);
TocsinRequestPolicy tocsin_request_get_policy (TocsinRequest *self);

/* A list of definitions (a channel's "forwards" or "actions"): compiles each, refusing more than
 * @max. @field: "forwards" or "actions". Returns a GPtrArray of TocsinRequest (free func set). */
GPtrArray      *tocsin_request_list_new       (const char   *field,
                                               JsonArray    *definitions,
                                               guint         max,
                                               GError      **error);
/* The same from stored JSON text (a JSON array; NULL or "" is none), parsed with the guards of
 * tocsin_json_parse(). The one reader of stored forwards, for every store backend. */
GPtrArray      *tocsin_request_list_parse     (const char   *field,
                                               const char   *text,
                                               guint         max,
                                               GError      **error);
/* Back to JSON (the normalised definitions), for storing. */
JsonArray      *tocsin_request_list_to_json   (GPtrArray    *requests);

/* The event a request is rendered for. */
typedef struct
{
  gint64      record_id;
  gint64      record_time_ms;
  const char *record_title, *record_body, *record_link;  /* may be NULL */
  gint64      channel_id;
  const char *channel_name;                               /* may be NULL */
  const char *user;                                       /* may be NULL */
} TocsinRequestContext;

/* @message_vars plus the context's variables (a new object; @message_vars is not changed). */
JsonObject     *tocsin_request_context_vars   (JsonObject                 *message_vars,
                                               const TocsinRequestContext *context,
                                               const char                 *action_name);

/* A rendered request, ready to send. */
typedef struct
{
  char        *name;
  char        *method;        /* "GET", "POST", "PUT", "DELETE" */
  char        *url;           /* http(s), with the GET parameters in its query */
  char       **headers;       /* name, value, name, value, ..., NULL; Content-Type included */
  GBytes      *body;          /* NULL for GET and for an empty body */
  TocsinRequestPolicy policy;
} TocsinRenderedRequest;

void tocsin_rendered_request_free (TocsinRenderedRequest *request);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRenderedRequest, tocsin_rendered_request_free)

/* Evaluates the condition; FALSE when it is false (nothing to send). */
gboolean        tocsin_request_applies        (TocsinRequest        *self,
                                               TocsinTemplateScope  *scope);
/* Renders with @scope (built on tocsin_request_context_vars()). Fails with
 * TOCSIN_REQUEST_ERROR_RENDER when the URL does not render to an absolute http(s) URL, a header
 * renders with a line break, the body is over TOCSIN_REQUEST_MAX_BODY, or the scope's budget ran
 * out (tocsin_template_scope_check()). */
TocsinRenderedRequest *tocsin_request_render  (TocsinRequest        *self,
                                               TocsinTemplateScope  *scope,
                                               GError              **error);

/* TRUE for what a rendered request may be sent to: an absolute http(s) URL with a host, no user
 * info, no spaces or control characters, at most TOCSIN_REQUEST_MAX_URL bytes, as libsoup parses
 * it. Otherwise FALSE and *reason (optional, translated) says why. Message actions of kind http
 * are checked with it too. */
gboolean        tocsin_request_url_is_sendable (const char  *url,
                                                const char **reason);

/* "https://host:port/path" of @url: no user info, no query, no fragment; what logs show. */
char           *tocsin_request_url_for_log    (const char *url);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinRequest, tocsin_request_unref)

G_END_DECLS
