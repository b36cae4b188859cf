/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-actions.h: a message's action buttons on the relay (issue 15, docs/actions.md):
 * a channel's "actions" definitions (the request model, tocsin-request.h), checked when they are
 * saved and rendered per message; and the actions a sender gave (ntfy's), turned into message
 * actions. No I/O.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "tocsin-message.h"
#include "tocsin-request.h"

G_BEGIN_DECLS

/* The "actions" member of an owner API channel spec (an array of definitions; null: none) as
 * JSON text for TocsinRelayChannelSpec.actions. TRUE with *json NULL when the member is absent;
 * FALSE with a sentence when it is not an array. */
gboolean             tocsin_relay_actions_spec_member (JsonObject   *spec,
                                                       char        **json,
                                                       GError      **error);
/* Reads a JSON file of definitions (the CLI's --actions=FILE): its text, or NULL and a
 * sentence. */
char                *tocsin_relay_actions_read_file   (const char   *path,
                                                       GError      **error);
/* Checks @json, an array of at most TOCSIN_REQUEST_MAX_ACTIONS action definitions (kind view or
 * http, event message), and returns it normalised (defaults filled in), as it is stored. Errors
 * are TOCSIN_REQUEST_ERROR_INVALID sentences that name the field (and the column in a
 * template): "actions[1].url, column 9: …". */
char                *tocsin_relay_actions_normalise   (const char   *json,
                                                       GError      **error);
/* The compiled definitions of a stored (normalised) @json; never NULL. Definitions that no
 * longer compile (a newer template library) are logged and left out, so the channel still
 * delivers its messages. */
GPtrArray           *tocsin_relay_actions_load        (gint64        channel_id,
                                                       const char   *json);
/* The definitions as the owner sees them (a new array). */
JsonArray           *tocsin_relay_actions_to_json     (GPtrArray    *actions);

/* The message action of @request rendered with @scope (built on tocsin_request_context_vars()),
 * or NULL when its condition is false (no error) or it did not render to something usable
 * (@error set; the sentence holds no variable's value). */
TocsinMessageAction *tocsin_relay_action_render       (TocsinRequest        *request,
                                                       TocsinTemplateScope  *scope,
                                                       GError              **error);
/* ntfy's actions (checked by the compatibility layer: objects with "action", "label", "url",
 * "method", "headers", "body", "clear") as message actions: view and http; "broadcast"
 * (Android intents) and actions the desktop cannot use (an unsafe URL, a method other than GET,
 * POST, PUT or DELETE) are left out. At most TOCSIN_REQUEST_MAX_ACTIONS. */
GPtrArray           *tocsin_relay_actions_from_ntfy   (JsonArray    *actions);
TocsinMessageAction *tocsin_relay_action_copy         (const TocsinMessageAction *action);

G_END_DECLS
