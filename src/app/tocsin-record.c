/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-record"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-compat.h"
#include "tocsin-json.h"
#include "tocsin-record.h"
#include "tocsin-request.h"

struct _TocsinRecord
{
  GObject parent_instance;

  gint64            id;
  TocsinRecordKind  kind;
  char             *relay_url;
  gint64            channel_id;
  char             *channel_name;
  gint64            message_id;
  char             *title;
  char             *body;
  char             *link;
  gint64            time;
  gboolean          read;
  char             *vars_json;
  TocsinMessageType notification_type;
  gboolean          markdown;
  gboolean          loaded;
  char             *actions_json;   /* the message's actions as on the wire, or NULL: none */
  GPtrArray        *actions;        /* of TocsinMessageAction, parsed from actions_json */
};

G_DEFINE_FINAL_TYPE (TocsinRecord, tocsin_record, G_TYPE_OBJECT)
G_DEFINE_ENUM_TYPE (TocsinRecordKind, tocsin_record_kind,
                    G_DEFINE_ENUM_VALUE (TOCSIN_RECORD_KIND_MESSAGE, "message"),
                    G_DEFINE_ENUM_VALUE (TOCSIN_RECORD_KIND_GAP, "gap"))
G_DEFINE_ENUM_TYPE (TocsinMessageType, tocsin_message_type,
                    G_DEFINE_ENUM_VALUE (TOCSIN_MESSAGE_TYPE_DEFAULT, "default"),
                    G_DEFINE_ENUM_VALUE (TOCSIN_MESSAGE_TYPE_ACTIVE, "active"),
                    G_DEFINE_ENUM_VALUE (TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE, "time-sensitive"),
                    G_DEFINE_ENUM_VALUE (TOCSIN_MESSAGE_TYPE_CALLING, "calling"))

enum {
  PROP_0,
  PROP_ID,
  PROP_KIND,
  PROP_RELAY_URL,
  PROP_CHANNEL_ID,
  PROP_CHANNEL_NAME,
  PROP_MESSAGE_ID,
  PROP_TITLE,
  PROP_BODY,
  PROP_LINK,
  PROP_TIME,
  PROP_READ,
  PROP_VARS_JSON,
  PROP_NOTIFICATION_TYPE,
  PROP_MARKDOWN,
  PROP_LOADED,
  PROP_ACTIONS_JSON,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
tocsin_record_finalize (GObject *object)
{
  TocsinRecord *self = TOCSIN_RECORD (object);

  g_free (self->relay_url);
  g_free (self->channel_name);
  g_free (self->title);
  g_free (self->body);
  g_free (self->link);
  g_free (self->vars_json);
  g_free (self->actions_json);
  g_ptr_array_unref (self->actions);

  G_OBJECT_CLASS (tocsin_record_parent_class)->finalize (object);
}

static void
tocsin_record_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  TocsinRecord *self = TOCSIN_RECORD (object);

  switch (prop_id)
    {
    case PROP_ID: g_value_set_int64 (value, self->id); break;
    case PROP_KIND: g_value_set_enum (value, self->kind); break;
    case PROP_RELAY_URL: g_value_set_string (value, self->relay_url); break;
    case PROP_CHANNEL_ID: g_value_set_int64 (value, self->channel_id); break;
    case PROP_CHANNEL_NAME: g_value_set_string (value, self->channel_name); break;
    case PROP_MESSAGE_ID: g_value_set_int64 (value, self->message_id); break;
    case PROP_TITLE: g_value_set_string (value, self->title); break;
    case PROP_BODY: g_value_set_string (value, self->body); break;
    case PROP_LINK: g_value_set_string (value, self->link); break;
    case PROP_TIME: g_value_set_int64 (value, self->time); break;
    case PROP_READ: g_value_set_boolean (value, self->read); break;
    case PROP_VARS_JSON: g_value_set_string (value, self->vars_json); break;
    case PROP_NOTIFICATION_TYPE: g_value_set_enum (value, self->notification_type); break;
    case PROP_MARKDOWN: g_value_set_boolean (value, self->markdown); break;
    case PROP_LOADED: g_value_set_boolean (value, self->loaded); break;
    case PROP_ACTIONS_JSON: g_value_set_string (value, self->actions_json); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tocsin_record_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  TocsinRecord *self = TOCSIN_RECORD (object);

  switch (prop_id)
    {
    case PROP_ID: tocsin_record_set_id (self, g_value_get_int64 (value)); break;
    case PROP_KIND: tocsin_record_set_kind (self, g_value_get_enum (value)); break;
    case PROP_RELAY_URL: tocsin_record_set_relay_url (self, g_value_get_string (value)); break;
    case PROP_CHANNEL_ID: tocsin_record_set_channel_id (self, g_value_get_int64 (value)); break;
    case PROP_CHANNEL_NAME: tocsin_record_set_channel_name (self, g_value_get_string (value)); break;
    case PROP_MESSAGE_ID: tocsin_record_set_message_id (self, g_value_get_int64 (value)); break;
    case PROP_TITLE: tocsin_record_set_title (self, g_value_get_string (value)); break;
    case PROP_BODY: tocsin_record_set_body (self, g_value_get_string (value)); break;
    case PROP_LINK: tocsin_record_set_link (self, g_value_get_string (value)); break;
    case PROP_TIME: tocsin_record_set_time (self, g_value_get_int64 (value)); break;
    case PROP_READ: tocsin_record_set_read (self, g_value_get_boolean (value)); break;
    case PROP_VARS_JSON: tocsin_record_set_vars_json (self, g_value_get_string (value)); break;
    case PROP_NOTIFICATION_TYPE:
      tocsin_record_set_notification_type (self, g_value_get_enum (value));
      break;
    case PROP_MARKDOWN: tocsin_record_set_markdown (self, g_value_get_boolean (value)); break;
    case PROP_ACTIONS_JSON:
      tocsin_record_set_actions_json (self, g_value_get_string (value));
      break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tocsin_record_class_init (TocsinRecordClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = tocsin_record_finalize;
  object_class->get_property = tocsin_record_get_property;
  object_class->set_property = tocsin_record_set_property;

  properties[PROP_ID] = g_param_spec_int64 ("id", NULL, NULL, 0, G_MAXINT64, 0, rw);
  properties[PROP_KIND] = g_param_spec_enum ("kind", NULL, NULL, TOCSIN_TYPE_RECORD_KIND,
                                             TOCSIN_RECORD_KIND_MESSAGE, rw);
  properties[PROP_RELAY_URL] = g_param_spec_string ("relay-url", NULL, NULL, NULL, rw);
  properties[PROP_CHANNEL_ID] = g_param_spec_int64 ("channel-id", NULL, NULL,
                                                    0, G_MAXINT64, 0, rw);
  properties[PROP_CHANNEL_NAME] = g_param_spec_string ("channel-name", NULL, NULL, NULL, rw);
  properties[PROP_MESSAGE_ID] = g_param_spec_int64 ("message-id", NULL, NULL,
                                                    0, G_MAXINT64, 0, rw);
  properties[PROP_TITLE] = g_param_spec_string ("title", NULL, NULL, "", rw);
  properties[PROP_BODY] = g_param_spec_string ("body", NULL, NULL, "", rw);
  properties[PROP_LINK] = g_param_spec_string ("link", NULL, NULL, NULL, rw);
  properties[PROP_TIME] = g_param_spec_int64 ("time", NULL, NULL, G_MININT64, G_MAXINT64, 0, rw);
  properties[PROP_READ] = g_param_spec_boolean ("read", NULL, NULL, FALSE, rw);
  properties[PROP_VARS_JSON] = g_param_spec_string ("vars-json", NULL, NULL, "{}", rw);
  properties[PROP_NOTIFICATION_TYPE] = g_param_spec_enum ("notification-type", NULL, NULL,
                                                          TOCSIN_TYPE_MESSAGE_TYPE,
                                                          TOCSIN_MESSAGE_TYPE_DEFAULT, rw);
  properties[PROP_MARKDOWN] = g_param_spec_boolean ("markdown", NULL, NULL, FALSE, rw);
  properties[PROP_LOADED] = g_param_spec_boolean ("loaded", NULL, NULL, FALSE,
                                                  G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY |
                                                  G_PARAM_STATIC_STRINGS);
  properties[PROP_ACTIONS_JSON] = g_param_spec_string ("actions-json", NULL, NULL, NULL, rw);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
tocsin_record_init (TocsinRecord *self)
{
  self->title = g_strdup ("");
  self->body = g_strdup ("");
  self->vars_json = g_strdup ("{}");
  self->actions = g_ptr_array_new_with_free_func ((GDestroyNotify) tocsin_message_action_free);
}

/* ---- actions ------------------------------------------------------------------------------ */

/* The record keeps its message's actions in their wire form (tocsin-message.h), as the history
 * stores them: one JSON text, parsed back here. What is stored was validated when the message
 * was decoded; an entry that does not read back (a newer app's kind) is left out. */
static char *
actions_to_json (GPtrArray *actions)
{
  g_autoptr(JsonBuilder) builder = NULL;
  g_autoptr(JsonNode) root = NULL;

  if (actions == NULL || actions->len == 0)
    return NULL;
  builder = json_builder_new ();
  json_builder_begin_array (builder);
  for (guint i = 0; i < actions->len; i++)
    {
      const TocsinMessageAction *action = g_ptr_array_index (actions, i);

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "kind");
      json_builder_add_string_value (builder, action->kind ? action->kind : "view");
      json_builder_set_member_name (builder, "label");
      json_builder_add_string_value (builder, action->label ? action->label : "");
      json_builder_set_member_name (builder, "url");
      json_builder_add_string_value (builder, action->url ? action->url : "");
      if (action->method)
        {
          json_builder_set_member_name (builder, "method");
          json_builder_add_string_value (builder, action->method);
        }
      if (action->headers && action->headers[0])
        {
          json_builder_set_member_name (builder, "headers");
          json_builder_begin_object (builder);
          for (guint h = 0; action->headers[h] && action->headers[h + 1]; h += 2)
            {
              json_builder_set_member_name (builder, action->headers[h]);
              json_builder_add_string_value (builder, action->headers[h + 1]);
            }
          json_builder_end_object (builder);
        }
      if (action->body)
        {
          json_builder_set_member_name (builder, "body");
          json_builder_add_string_value (builder, action->body);
        }
      json_builder_set_member_name (builder, "policy");
      json_builder_add_string_value (builder, action->retry ? "retry" : "none");
      json_builder_set_member_name (builder, "clear");
      json_builder_add_boolean_value (builder, action->clear);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  root = json_builder_get_root (builder);
  return tocsin_json_to_string (root, FALSE);
}

static TocsinMessageAction *
action_from_json (JsonObject *object)
{
  g_autoptr(GStrvBuilder) headers = NULL;
  TocsinMessageAction *action;
  const char *kind = json_object_get_string_member_with_default (object, "kind", "");
  const char *label = json_object_get_string_member_with_default (object, "label", "");
  const char *url = json_object_get_string_member_with_default (object, "url", "");

  if ((!g_str_equal (kind, "view") && !g_str_equal (kind, "http")) || *label == '\0' ||
      *url == '\0')
    return NULL;
  action = g_new0 (TocsinMessageAction, 1);
  action->kind = g_strdup (kind);
  action->label = g_strdup (label);
  action->url = g_strdup (url);
  if (g_str_equal (kind, "http"))
    action->method = g_strdup (json_object_get_string_member_with_default (object, "method",
                                                                           "POST"));
  if (json_object_has_member (object, "headers") &&
      JSON_NODE_HOLDS_OBJECT (json_object_get_member (object, "headers")))
    {
      JsonObject *map = json_object_get_object_member (object, "headers");
      g_autoptr(GList) names = json_object_get_members (map);

      headers = g_strv_builder_new ();
      for (GList *l = names; l; l = l->next)
        {
          JsonNode *value = json_object_get_member (map, l->data);

          if (JSON_NODE_HOLDS_VALUE (value) && json_node_get_value_type (value) == G_TYPE_STRING)
            {
              g_strv_builder_add (headers, l->data);
              g_strv_builder_add (headers, json_node_get_string (value));
            }
        }
      action->headers = g_strv_builder_end (headers);
    }
  if (json_object_has_member (object, "body") &&
      JSON_NODE_HOLDS_VALUE (json_object_get_member (object, "body")))
    action->body = g_strdup (json_object_get_string_member (object, "body"));
  action->retry = g_strcmp0 (json_object_get_string_member_with_default (object, "policy",
                                                                         "none"), "retry") == 0;
  action->clear = json_object_get_boolean_member_with_default (object, "clear", FALSE);
  return action;
}

static void
parse_actions (TocsinRecord *self)
{
  g_autoptr(JsonNode) root = NULL;
  JsonArray *array;

  g_ptr_array_set_size (self->actions, 0);
  if (self->actions_json == NULL)
    return;
  root = tocsin_json_parse (self->actions_json, strlen (self->actions_json), G_MAXSSIZE,
                            TOCSIN_JSON_DEFAULT_MAX_DEPTH, NULL);
  if (root == NULL || !JSON_NODE_HOLDS_ARRAY (root))
    return;
  array = json_node_get_array (root);
  for (guint i = 0; i < json_array_get_length (array) && i < TOCSIN_REQUEST_MAX_ACTIONS; i++)
    {
      JsonNode *node = json_array_get_element (array, i);
      TocsinMessageAction *action;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        continue;
      action = action_from_json (json_node_get_object (node));
      if (action)
        g_ptr_array_add (self->actions, action);
    }
}

const char *
tocsin_record_get_actions_json (TocsinRecord *self)
{
  g_return_val_if_fail (TOCSIN_IS_RECORD (self), NULL);
  return self->actions_json;
}

void
tocsin_record_set_actions_json (TocsinRecord *self,
                                const char   *actions_json)
{
  g_return_if_fail (TOCSIN_IS_RECORD (self));

  if (actions_json != NULL && (*actions_json == '\0' || g_str_equal (actions_json, "[]")))
    actions_json = NULL;
  if (g_strcmp0 (self->actions_json, actions_json) == 0)
    return;
  g_free (self->actions_json);
  self->actions_json = g_strdup (actions_json);
  parse_actions (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ACTIONS_JSON]);
}

guint
tocsin_record_get_n_actions (TocsinRecord *self)
{
  g_return_val_if_fail (TOCSIN_IS_RECORD (self), 0);
  return self->actions->len;
}

const TocsinMessageAction *
tocsin_record_get_action (TocsinRecord *self,
                          guint         index)
{
  g_return_val_if_fail (TOCSIN_IS_RECORD (self), NULL);
  return index < self->actions->len ? g_ptr_array_index (self->actions, index) : NULL;
}

TocsinRecord *
tocsin_record_new (void)
{
  return g_object_new (TOCSIN_TYPE_RECORD, NULL);
}

TocsinRecord *
tocsin_record_new_from_message (const char          *relay_url,
                                const TocsinMessage *message)
{
  TocsinRecord *self;
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *vars = NULL;

  g_return_val_if_fail (message != NULL, NULL);

  node = json_node_init_object (json_node_alloc (), message->vars);
  vars = tocsin_json_to_string (node, FALSE);

  self = g_object_new (TOCSIN_TYPE_RECORD, NULL);
  self->relay_url = g_strdup (relay_url);
  self->channel_id = message->channel;
  self->channel_name = g_strdup (message->channel_name);
  self->message_id = message->id;
  tocsin_set_str (&self->title, message->title);
  tocsin_set_str (&self->body, message->body);
  self->link = g_strdup (message->external_link);
  self->time = message->time_ms;
  tocsin_set_str (&self->vars_json, vars);
  self->notification_type = message->type;
  self->markdown = !!message->markdown;
  self->actions_json = actions_to_json (message->actions);
  parse_actions (self);
  self->loaded = TRUE;
  return self;
}

#define GETTER(type, name, field)                     \
  type                                                \
  tocsin_record_get_##name (TocsinRecord *self)       \
  {                                                   \
    g_return_val_if_fail (TOCSIN_IS_RECORD (self), 0); \
    return self->field;                               \
  }

GETTER (gint64, id, id)
GETTER (TocsinRecordKind, kind, kind)
GETTER (const char *, relay_url, relay_url)
GETTER (gint64, channel_id, channel_id)
GETTER (const char *, channel_name, channel_name)
GETTER (gint64, message_id, message_id)
GETTER (const char *, title, title)
GETTER (const char *, body, body)
GETTER (const char *, link, link)
GETTER (gint64, time, time)
GETTER (gboolean, read, read)
GETTER (const char *, vars_json, vars_json)
GETTER (TocsinMessageType, notification_type, notification_type)
GETTER (gboolean, markdown, markdown)
GETTER (gboolean, loaded, loaded)

#undef GETTER

/* A record with content in it is "loaded"; placeholders of TocsinRecordList become loaded
 * when tocsin_record_update_from() fills them. */
static void
mark_loaded (TocsinRecord *self)
{
  if (!self->loaded && self->id != 0)
    {
      self->loaded = TRUE;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LOADED]);
    }
}

#define SCALAR_SETTER(type, name, field, PROP)                        \
  void                                                                \
  tocsin_record_set_##name (TocsinRecord *self, type value)           \
  {                                                                   \
    g_return_if_fail (TOCSIN_IS_RECORD (self));                       \
    if (self->field == value)                                         \
      return;                                                         \
    self->field = value;                                              \
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP]);     \
  }

#define STRING_SETTER(name, field, PROP, fallback)                    \
  void                                                                \
  tocsin_record_set_##name (TocsinRecord *self, const char *value)    \
  {                                                                   \
    g_return_if_fail (TOCSIN_IS_RECORD (self));                       \
    if (value == NULL)                                                \
      value = fallback;                                               \
    if (tocsin_set_str (&self->field, value))                        \
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP]);   \
  }

SCALAR_SETTER (TocsinRecordKind, kind, kind, PROP_KIND)
SCALAR_SETTER (gint64, channel_id, channel_id, PROP_CHANNEL_ID)
SCALAR_SETTER (gint64, message_id, message_id, PROP_MESSAGE_ID)
SCALAR_SETTER (gint64, time, time, PROP_TIME)
SCALAR_SETTER (TocsinMessageType, notification_type, notification_type, PROP_NOTIFICATION_TYPE)
STRING_SETTER (relay_url, relay_url, PROP_RELAY_URL, NULL)
STRING_SETTER (channel_name, channel_name, PROP_CHANNEL_NAME, NULL)
STRING_SETTER (title, title, PROP_TITLE, "")
STRING_SETTER (body, body, PROP_BODY, "")
STRING_SETTER (link, link, PROP_LINK, NULL)
STRING_SETTER (vars_json, vars_json, PROP_VARS_JSON, "{}")

#undef SCALAR_SETTER
#undef STRING_SETTER

void
tocsin_record_set_id (TocsinRecord *self,
                      gint64        id)
{
  g_return_if_fail (TOCSIN_IS_RECORD (self));

  if (self->id == id)
    return;
  self->id = id;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ID]);
  /* A record with a row id came from the history: it has its content. */
  mark_loaded (self);
}

void
tocsin_record_set_read (TocsinRecord *self,
                        gboolean      read)
{
  g_return_if_fail (TOCSIN_IS_RECORD (self));

  read = !!read;
  if (self->read == read)
    return;
  self->read = read;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_READ]);
}

void
tocsin_record_set_markdown (TocsinRecord *self,
                            gboolean      markdown)
{
  g_return_if_fail (TOCSIN_IS_RECORD (self));

  markdown = !!markdown;
  if (self->markdown == markdown)
    return;
  self->markdown = markdown;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MARKDOWN]);
}

void
tocsin_record_update_from (TocsinRecord *self,
                           TocsinRecord *other)
{
  g_return_if_fail (TOCSIN_IS_RECORD (self));
  g_return_if_fail (TOCSIN_IS_RECORD (other));

  if (self == other)
    return;

  g_object_freeze_notify (G_OBJECT (self));
  tocsin_record_set_id (self, other->id);
  tocsin_record_set_kind (self, other->kind);
  tocsin_record_set_relay_url (self, other->relay_url);
  tocsin_record_set_channel_id (self, other->channel_id);
  tocsin_record_set_channel_name (self, other->channel_name);
  tocsin_record_set_message_id (self, other->message_id);
  tocsin_record_set_title (self, other->title);
  tocsin_record_set_body (self, other->body);
  tocsin_record_set_link (self, other->link);
  tocsin_record_set_time (self, other->time);
  tocsin_record_set_read (self, other->read);
  tocsin_record_set_vars_json (self, other->vars_json);
  tocsin_record_set_notification_type (self, other->notification_type);
  tocsin_record_set_markdown (self, other->markdown);
  tocsin_record_set_actions_json (self, other->actions_json);
  g_object_thaw_notify (G_OBJECT (self));
}

char *
tocsin_record_dup_link_host (TocsinRecord *self)
{
  g_autoptr(GUri) uri = NULL;

  g_return_val_if_fail (TOCSIN_IS_RECORD (self), NULL);

  if (self->link == NULL)
    return NULL;
  uri = g_uri_parse (self->link, G_URI_FLAGS_NONE, NULL);
  if (uri == NULL || g_uri_get_host (uri) == NULL)
    return NULL;
  return g_strdup (g_uri_get_host (uri));
}
