/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-record.h: one stored notification (a message received from a relay, or a note that some
 * were missed). Records are what the history stores, what the records view lists and what the
 * notifier shows. Properties notify when a record is updated in place (a replacement, read state,
 * or a placeholder of TocsinRecordList being filled in), so widgets should bind to them.
 */
#pragma once

#include <glib-object.h>
#include "tocsin-message.h"

G_BEGIN_DECLS

typedef enum
{
  TOCSIN_RECORD_KIND_MESSAGE,  /* a message from a channel */
  TOCSIN_RECORD_KIND_GAP,      /* "some notifications from X were missed": message-id is the
                                * first missed id, vars-json is {"from":N,"to":M} */
} TocsinRecordKind;

GType tocsin_record_kind_get_type (void) G_GNUC_CONST;
#define TOCSIN_TYPE_RECORD_KIND (tocsin_record_kind_get_type ())

/* TocsinMessageType (tocsin-message.h, which has no GObject) as a GType, for the property. */
GType tocsin_message_type_get_type (void) G_GNUC_CONST;
#define TOCSIN_TYPE_MESSAGE_TYPE (tocsin_message_type_get_type ())

#define TOCSIN_TYPE_RECORD (tocsin_record_get_type ())
G_DECLARE_FINAL_TYPE (TocsinRecord, tocsin_record, TOCSIN, RECORD, GObject)

/* An empty record (row id 0): what TocsinRecordList hands out before a page has loaded. */
TocsinRecord     *tocsin_record_new              (void);
/* A record for @message received from @relay_url (row id 0 until the history stores it). */
TocsinRecord     *tocsin_record_new_from_message (const char          *relay_url,
                                                  const TocsinMessage *message);

/* Row id in the history database; 0 while not stored (or a placeholder not yet loaded). */
gint64            tocsin_record_get_id           (TocsinRecord *self);
TocsinRecordKind  tocsin_record_get_kind         (TocsinRecord *self);
const char       *tocsin_record_get_relay_url    (TocsinRecord *self);
gint64            tocsin_record_get_channel_id   (TocsinRecord *self);
const char       *tocsin_record_get_channel_name (TocsinRecord *self);
/* The relay's message id (the newest one applied, when replacements came in). */
gint64            tocsin_record_get_message_id   (TocsinRecord *self);
const char       *tocsin_record_get_title        (TocsinRecord *self);   /* plain text */
const char       *tocsin_record_get_body         (TocsinRecord *self);   /* Markdown if markdown */
const char       *tocsin_record_get_link         (TocsinRecord *self);   /* http(s) or NULL */
/* Unix milliseconds (UTC) the relay stamped it with. */
gint64            tocsin_record_get_time         (TocsinRecord *self);
gboolean          tocsin_record_get_read         (TocsinRecord *self);
/* The variables received, as a JSON object text ("{}" when none). */
const char       *tocsin_record_get_vars_json    (TocsinRecord *self);
/* How the message asked to ring ("notificationType"); DEFAULT: as its subscription says. */
TocsinMessageType tocsin_record_get_notification_type (TocsinRecord *self);
/* TRUE when the sender said the body is Markdown (render it with tocsin-markdown.h). */
gboolean          tocsin_record_get_markdown     (TocsinRecord *self);
/* TRUE once it has content (a TocsinRecordList placeholder is not loaded yet). */
gboolean          tocsin_record_get_loaded       (TocsinRecord *self);

/* The message's action buttons (TocsinMessage.actions, at most 3), in their wire form as a
 * JSON array text, or NULL when it has none; the "actions-json" property notifies. */
const char       *tocsin_record_get_actions_json (TocsinRecord *self);
guint             tocsin_record_get_n_actions    (TocsinRecord *self);
/* Action @index (borrowed), or NULL past the last. */
const TocsinMessageAction *tocsin_record_get_action (TocsinRecord *self,
                                                     guint         index);

/* Setters notify the property; they do not write to the history (use TocsinHistory for that). */
void              tocsin_record_set_id           (TocsinRecord *self, gint64 id);
void              tocsin_record_set_kind         (TocsinRecord *self, TocsinRecordKind kind);
void              tocsin_record_set_relay_url    (TocsinRecord *self, const char *relay_url);
void              tocsin_record_set_channel_id   (TocsinRecord *self, gint64 channel_id);
void              tocsin_record_set_channel_name (TocsinRecord *self, const char *channel_name);
void              tocsin_record_set_message_id   (TocsinRecord *self, gint64 message_id);
void              tocsin_record_set_title        (TocsinRecord *self, const char *title);
void              tocsin_record_set_body         (TocsinRecord *self, const char *body);
void              tocsin_record_set_link         (TocsinRecord *self, const char *link);
void              tocsin_record_set_time         (TocsinRecord *self, gint64 time_ms);
void              tocsin_record_set_read         (TocsinRecord *self, gboolean read);
void              tocsin_record_set_vars_json    (TocsinRecord *self, const char *vars_json);
void              tocsin_record_set_notification_type (TocsinRecord      *self,
                                                       TocsinMessageType  type);
void              tocsin_record_set_markdown     (TocsinRecord *self, gboolean markdown);
void              tocsin_record_set_actions_json (TocsinRecord *self, const char *actions_json);

/* Copies every field of @other into @self, notifying only what changed (keeps @self's identity,
 * so a list row bound to it updates in place). */
void              tocsin_record_update_from      (TocsinRecord *self,
                                                  TocsinRecord *other);

/* The link's host ("dashboard.example.com") for "Open dashboard.example.com"; NULL if no link. */
char             *tocsin_record_dup_link_host    (TocsinRecord *self);

G_END_DECLS
