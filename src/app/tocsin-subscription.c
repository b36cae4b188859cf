/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-subscription"

#include "config.h"

#include <string.h>
#include <gio/gio.h>
#include <glib/gi18n.h>

#include "tocsin-compat.h"
#include "tocsin-subscription.h"

struct _TocsinSubscription
{
  GObject parent_instance;

  char             *relay_url;
  char             *token;
  gint64            channel_id;
  char             *name;
  char             *description;
  TocsinNotifyType  notify_type;
  gboolean          muted;
  gint64            cursor;
  char             *error;
};

G_DEFINE_FINAL_TYPE (TocsinSubscription, tocsin_subscription, G_TYPE_OBJECT)
G_DEFINE_ENUM_TYPE (TocsinNotifyType, tocsin_notify_type,
                    G_DEFINE_ENUM_VALUE (TOCSIN_NOTIFY_TYPE_NORMAL, "normal"),
                    G_DEFINE_ENUM_VALUE (TOCSIN_NOTIFY_TYPE_TIME_SENSITIVE, "time-sensitive"),
                    G_DEFINE_ENUM_VALUE (TOCSIN_NOTIFY_TYPE_CALLING, "calling"))

enum {
  PROP_0,
  PROP_RELAY_URL,
  PROP_TOKEN,
  PROP_CHANNEL_ID,
  PROP_NAME,
  PROP_DESCRIPTION,
  PROP_NOTIFY_TYPE,
  PROP_MUTED,
  PROP_CURSOR,
  PROP_ERROR,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
tocsin_subscription_finalize (GObject *object)
{
  TocsinSubscription *self = TOCSIN_SUBSCRIPTION (object);

  g_free (self->relay_url);
  g_free (self->token);
  g_free (self->name);
  g_free (self->description);
  g_free (self->error);

  G_OBJECT_CLASS (tocsin_subscription_parent_class)->finalize (object);
}

static void
tocsin_subscription_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  TocsinSubscription *self = TOCSIN_SUBSCRIPTION (object);

  switch (prop_id)
    {
    case PROP_RELAY_URL: g_value_set_string (value, self->relay_url); break;
    case PROP_TOKEN: g_value_set_string (value, self->token); break;
    case PROP_CHANNEL_ID: g_value_set_int64 (value, self->channel_id); break;
    case PROP_NAME: g_value_set_string (value, self->name); break;
    case PROP_DESCRIPTION: g_value_set_string (value, self->description); break;
    case PROP_NOTIFY_TYPE: g_value_set_enum (value, self->notify_type); break;
    case PROP_MUTED: g_value_set_boolean (value, self->muted); break;
    case PROP_CURSOR: g_value_set_int64 (value, self->cursor); break;
    case PROP_ERROR: g_value_set_string (value, self->error); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tocsin_subscription_set_property (GObject      *object,
                                  guint         prop_id,
                                  const GValue *value,
                                  GParamSpec   *pspec)
{
  TocsinSubscription *self = TOCSIN_SUBSCRIPTION (object);

  switch (prop_id)
    {
    case PROP_RELAY_URL: self->relay_url = g_value_dup_string (value); break;
    case PROP_TOKEN: self->token = g_value_dup_string (value); break;
    case PROP_CHANNEL_ID: tocsin_subscription_set_channel_id (self, g_value_get_int64 (value)); break;
    case PROP_NAME: tocsin_subscription_set_name (self, g_value_get_string (value)); break;
    case PROP_DESCRIPTION:
      tocsin_subscription_set_description (self, g_value_get_string (value));
      break;
    case PROP_NOTIFY_TYPE:
      tocsin_subscription_set_notify_type (self, g_value_get_enum (value));
      break;
    case PROP_MUTED: tocsin_subscription_set_muted (self, g_value_get_boolean (value)); break;
    case PROP_CURSOR: tocsin_subscription_set_cursor (self, g_value_get_int64 (value)); break;
    case PROP_ERROR: tocsin_subscription_set_error (self, g_value_get_string (value)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tocsin_subscription_class_init (TocsinSubscriptionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  GParamFlags ctor = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = tocsin_subscription_finalize;
  object_class->get_property = tocsin_subscription_get_property;
  object_class->set_property = tocsin_subscription_set_property;

  properties[PROP_RELAY_URL] = g_param_spec_string ("relay-url", NULL, NULL, NULL, ctor);
  properties[PROP_TOKEN] = g_param_spec_string ("token", NULL, NULL, NULL, ctor);
  properties[PROP_CHANNEL_ID] = g_param_spec_int64 ("channel-id", NULL, NULL,
                                                    0, G_MAXINT64, 0, rw);
  properties[PROP_NAME] = g_param_spec_string ("name", NULL, NULL, NULL, rw);
  properties[PROP_DESCRIPTION] = g_param_spec_string ("description", NULL, NULL, NULL, rw);
  properties[PROP_NOTIFY_TYPE] = g_param_spec_enum ("notify-type", NULL, NULL,
                                                    TOCSIN_TYPE_NOTIFY_TYPE,
                                                    TOCSIN_NOTIFY_TYPE_NORMAL, rw);
  properties[PROP_MUTED] = g_param_spec_boolean ("muted", NULL, NULL, FALSE, rw);
  properties[PROP_CURSOR] = g_param_spec_int64 ("cursor", NULL, NULL,
                                                TOCSIN_CURSOR_NONE, G_MAXINT64,
                                                TOCSIN_CURSOR_NONE, rw);
  properties[PROP_ERROR] = g_param_spec_string ("error", NULL, NULL, NULL, rw);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
tocsin_subscription_init (TocsinSubscription *self)
{
  self->cursor = TOCSIN_CURSOR_NONE;
}

TocsinSubscription *
tocsin_subscription_new (const char *relay_url,
                         const char *token)
{
  g_return_val_if_fail (relay_url != NULL, NULL);
  g_return_val_if_fail (token != NULL, NULL);

  return g_object_new (TOCSIN_TYPE_SUBSCRIPTION,
                       "relay-url", relay_url,
                       "token", token,
                       NULL);
}

#define GETTER(type, name)                                      \
  type                                                          \
  tocsin_subscription_get_##name (TocsinSubscription *self)     \
  {                                                             \
    g_return_val_if_fail (TOCSIN_IS_SUBSCRIPTION (self), 0);    \
    return self->name;                                          \
  }

GETTER (const char *, relay_url)
GETTER (const char *, token)
GETTER (gint64, channel_id)
GETTER (const char *, name)
GETTER (const char *, description)
GETTER (TocsinNotifyType, notify_type)
GETTER (gboolean, muted)
GETTER (gint64, cursor)
GETTER (const char *, error)

#undef GETTER

#define SCALAR_SETTER(type, name, PROP)                                       \
  void                                                                        \
  tocsin_subscription_set_##name (TocsinSubscription *self, type value)       \
  {                                                                           \
    g_return_if_fail (TOCSIN_IS_SUBSCRIPTION (self));                         \
    if (self->name == value)                                                  \
      return;                                                                 \
    self->name = value;                                                       \
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP]);             \
  }

#define STRING_SETTER(name, PROP)                                             \
  void                                                                        \
  tocsin_subscription_set_##name (TocsinSubscription *self, const char *value) \
  {                                                                           \
    g_return_if_fail (TOCSIN_IS_SUBSCRIPTION (self));                         \
    if (tocsin_set_str (&self->name, value))                                  \
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP]);           \
  }

SCALAR_SETTER (gint64, channel_id, PROP_CHANNEL_ID)
SCALAR_SETTER (TocsinNotifyType, notify_type, PROP_NOTIFY_TYPE)
SCALAR_SETTER (gint64, cursor, PROP_CURSOR)
STRING_SETTER (name, PROP_NAME)
STRING_SETTER (description, PROP_DESCRIPTION)
STRING_SETTER (error, PROP_ERROR)

#undef SCALAR_SETTER
#undef STRING_SETTER

void
tocsin_subscription_set_muted (TocsinSubscription *self,
                               gboolean            muted)
{
  g_return_if_fail (TOCSIN_IS_SUBSCRIPTION (self));

  muted = !!muted;
  if (self->muted == muted)
    return;
  self->muted = muted;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MUTED]);
}

char *
tocsin_subscription_dup_subscribe_url (TocsinSubscription *self)
{
  g_return_val_if_fail (TOCSIN_IS_SUBSCRIPTION (self), NULL);

  return g_strconcat (self->relay_url, "/s/", self->token, NULL);
}

/* Tocsin's relay makes 32-character tokens, but docs/protocol.md allows any URL-safe base64 of
 * 128 bits or more (22+ characters), so accept that. */
static gboolean
token_looks_right (const char *token)
{
  gsize len = strlen (token);

  if (len < 22 || len > 256)
    return FALSE;
  for (const char *p = token; *p; p++)
    if (!(g_ascii_isalnum (*p) || *p == '-' || *p == '_'))
      return FALSE;
  return TRUE;
}

gboolean
tocsin_subscription_parse_url (const char  *url,
                               char       **relay_url,
                               char       **token,
                               GError     **error)
{
  g_autoptr(GUri) uri = NULL;
  g_autofree char *inner = NULL;
  g_autofree char *stripped = NULL;
  const char *scheme;
  const char *path;
  const char *marker;
  const char *tok;
  gsize tok_len;

  g_return_val_if_fail (url != NULL, FALSE);

  stripped = g_strstrip (g_strdup (url));
  uri = g_uri_parse (stripped, G_URI_FLAGS_ENCODED_QUERY, NULL);
  if (uri == NULL)
    goto bad;

  scheme = g_uri_get_scheme (uri);
  /* tocsin://subscribe?url=<subscribe link>: what the relay's page opens us with. */
  if (g_ascii_strcasecmp (scheme, "tocsin") == 0)
    {
      g_autoptr(GHashTable) params = NULL;
      const char *query = g_uri_get_query (uri);
      const char *value;

      if (query == NULL)
        goto bad;
      params = g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, NULL);
      value = params ? g_hash_table_lookup (params, "url") : NULL;
      if (value == NULL || g_str_has_prefix (value, "tocsin:"))
        goto bad;
      return tocsin_subscription_parse_url (value, relay_url, token, error);
    }

  if (g_ascii_strcasecmp (scheme, "http") != 0 && g_ascii_strcasecmp (scheme, "https") != 0)
    goto bad;
  if (g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
    goto bad;

  /* The relay may live under a path prefix: everything before the last "/s/" is its base. */
  path = g_uri_get_path (uri);
  marker = g_strrstr (path, "/s/");
  if (marker == NULL)
    goto bad;
  tok = marker + 3;
  tok_len = strcspn (tok, "/");
  inner = g_strndup (tok, tok_len);
  /* A trailing "/ws", "/sse" or "/json" is a stream URL of the same channel: accept it. */
  if (tok[tok_len] != '\0' && strcmp (tok + tok_len, "/") != 0 &&
      strcmp (tok + tok_len, "/ws") != 0 && strcmp (tok + tok_len, "/sse") != 0 &&
      strcmp (tok + tok_len, "/json") != 0)
    goto bad;
  if (!token_looks_right (inner))
    goto bad;

  if (relay_url)
    {
      g_autofree char *prefix = g_strndup (path, marker - path);
      g_autoptr(GUri) base = g_uri_build (G_URI_FLAGS_ENCODED, g_uri_get_scheme (uri), NULL,
                                          g_uri_get_host (uri), g_uri_get_port (uri),
                                          prefix, NULL, NULL);
      *relay_url = g_uri_to_string (base);
      /* Normalise the scheme's case so the same relay is one connection. */
      for (char *p = *relay_url; *p && *p != ':'; p++)
        *p = g_ascii_tolower (*p);
    }
  if (token)
    *token = g_steal_pointer (&inner);
  return TRUE;

bad:
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
               _("“%s” is not a subscribe link. A subscribe link looks like "
                 "https://relay.example.com/s/… and comes from the channel’s owner."), url);
  return FALSE;
}
