/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-notifier"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>
#include <libnotify/notify.h>

#include "tocsin-markdown.h"
#include "tocsin-notifier.h"

/* libnotify 0.8 does not declare it. */
G_DEFINE_AUTOPTR_CLEANUP_FUNC (NotifyNotification, g_object_unref)

/* More than STORM_LIMIT popups from one channel, each within STORM_WINDOW of the previous one,
 * become one summary popup. */
#define STORM_LIMIT  3
#define STORM_WINDOW (5 * G_USEC_PER_SEC)
/* libnotify 0.8 shows a popup with a synchronous D-Bus call. A burst of 10,000 messages would
 * make as many calls on the main loop, so a storm's summary is refreshed at most this often. */
#define STORM_REFRESH_MS 250

typedef struct
{
  char               *relay_url;
  gint64              channel_id;
  char               *name;
  gint64              last_time;     /* monotonic µs of the latest message */
  guint               count;         /* messages in this storm so far */
  NotifyNotification *summary;       /* the coalesced popup, once the storm began */
  guint               refresh_id;    /* pending summary refresh, 0 when none */
  gboolean            time_sensitive;
  TocsinNotifier     *notifier;      /* borrowed: the notifier frees its storms in dispose */
} Storm;

struct _TocsinNotifier
{
  GObject parent_instance;

  /* Owned references: */
  GSettings  *settings;        /* NULL if the schema is not installed */
  GHashTable *notifications;   /* record row id → NotifyNotification (the popup shown) */
  GHashTable *storms;          /* "relay\nchannel" → Storm */
  TocsinHistory *history;      /* followed: its changes withdraw popups */
  GCancellable  *cancellable;  /* the look-ups a "reset" starts */
  GTimeZone     *local_zone;   /* see now_local() */
  int            server_actions;  /* the server shows action buttons: 1, 0, or -1 (not asked) */
  gint64         local_zone_time;
};

G_DEFINE_FINAL_TYPE (TocsinNotifier, tocsin_notifier, G_TYPE_OBJECT)

enum {
  SIGNAL_SHOW_RECORD,
  SIGNAL_SHOW_CHANNEL,
  SIGNAL_MARK_READ,
  SIGNAL_LINK_OPENED,
  SIGNAL_CALL,
  SIGNAL_ACTION,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
storm_free (gpointer data)
{
  Storm *storm = data;

  g_clear_handle_id (&storm->refresh_id, g_source_remove);
  g_free (storm->relay_url);
  g_free (storm->name);
  g_clear_object (&storm->summary);
  g_free (storm);
}

static void
tocsin_notifier_dispose (GObject *object)
{
  TocsinNotifier *self = TOCSIN_NOTIFIER (object);

  /* Popups may outlive us on screen; their callbacks hold weak references only. */
  g_hash_table_remove_all (self->notifications);
  g_hash_table_remove_all (self->storms);
  g_clear_object (&self->settings);
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  if (self->history)
    g_signal_handlers_disconnect_by_data (self->history, self);
  g_clear_object (&self->history);

  G_OBJECT_CLASS (tocsin_notifier_parent_class)->dispose (object);
}

static void
tocsin_notifier_finalize (GObject *object)
{
  TocsinNotifier *self = TOCSIN_NOTIFIER (object);

  g_hash_table_unref (self->notifications);
  g_clear_pointer (&self->local_zone, g_time_zone_unref);
  g_hash_table_unref (self->storms);

  G_OBJECT_CLASS (tocsin_notifier_parent_class)->finalize (object);
}

static void
tocsin_notifier_class_init (TocsinNotifierClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = tocsin_notifier_dispose;
  object_class->finalize = tocsin_notifier_finalize;

  signals[SIGNAL_SHOW_RECORD] =
    g_signal_new ("show-record", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT64);
  signals[SIGNAL_SHOW_CHANNEL] =
    g_signal_new ("show-channel", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_INT64);
  signals[SIGNAL_MARK_READ] =
    g_signal_new ("mark-read", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT64);
  signals[SIGNAL_LINK_OPENED] =
    g_signal_new ("link-opened", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  /* (record, subscription) → handled: a record of a calling channel. A handler that rings it
   * (a call window) returns TRUE; unhandled, it pops up as time-sensitive. */
  signals[SIGNAL_CALL] =
    g_signal_new ("call", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  g_signal_accumulator_true_handled, NULL, NULL, G_TYPE_BOOLEAN, 2,
                  TOCSIN_TYPE_RECORD, TOCSIN_TYPE_SUBSCRIPTION);
  signals[SIGNAL_ACTION] =
    g_signal_new ("action", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, TOCSIN_TYPE_RECORD, G_TYPE_UINT);
}

static void
tocsin_notifier_init (TocsinNotifier *self)
{
  self->notifications = g_hash_table_new_full (g_int64_hash, g_int64_equal,
                                               g_free, g_object_unref);
  self->storms = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, storm_free);
  self->cancellable = g_cancellable_new ();
  self->server_actions = -1;
}

TocsinNotifier *
tocsin_notifier_new (GSettings *settings)
{
  TocsinNotifier *self = g_object_new (TOCSIN_TYPE_NOTIFIER, NULL);

  if (settings)
    self->settings = g_object_ref (settings);
  else
    {
      GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
      g_autoptr(GSettingsSchema) schema = NULL;

      /* g_settings_new() aborts on a missing schema; run without preferences instead. */
      if (source)
        schema = g_settings_schema_source_lookup (source, APP_ID, TRUE);
      if (schema)
        self->settings = g_settings_new (APP_ID);
    }

  if (!notify_is_initted ())
    notify_init ("Tocsin");
  return self;
}

/* ---- quiet hours -------------------------------------------------------------------------- */

/* GLib 2.74's g_date_time_new_now_local() reads /etc/localtime again on every call when TZ is
 * not set (its cached zone's name never equals the unset variable): file I/O on the main loop
 * for every popup. The local zone is kept and looked up again at most once a minute, which
 * still follows a laptop that changes time zone. */
#define LOCAL_ZONE_REFRESH_USEC (60 * G_USEC_PER_SEC)

static GDateTime *
now_local (TocsinNotifier *self)
{
  gint64 now = g_get_monotonic_time ();

  if (self->local_zone == NULL || now - self->local_zone_time > LOCAL_ZONE_REFRESH_USEC)
    {
      g_clear_pointer (&self->local_zone, g_time_zone_unref);
      self->local_zone = g_time_zone_new_local ();
      self->local_zone_time = now;
    }
  return g_date_time_new_now (self->local_zone);
}

static gboolean
parse_hhmm (const char *text,
            int        *minutes)
{
  unsigned h, m;
  char extra;

  if (text == NULL || sscanf (text, "%u:%u%c", &h, &m, &extra) != 2 || h > 23 || m > 59)
    return FALSE;
  *minutes = (int) (h * 60 + m);
  return TRUE;
}

gboolean
tocsin_notifier_in_quiet_hours (TocsinNotifier *self,
                                GDateTime      *now)
{
  g_autofree char *start_text = NULL;
  g_autofree char *end_text = NULL;
  int start, end, minute;

  g_return_val_if_fail (TOCSIN_IS_NOTIFIER (self), FALSE);
  g_return_val_if_fail (now != NULL, FALSE);

  if (self->settings == NULL || !g_settings_get_boolean (self->settings, "quiet-hours-enabled"))
    return FALSE;
  start_text = g_settings_get_string (self->settings, "quiet-hours-start");
  end_text = g_settings_get_string (self->settings, "quiet-hours-end");
  if (!parse_hhmm (start_text, &start) || !parse_hhmm (end_text, &end) || start == end)
    return FALSE;

  minute = g_date_time_get_hour (now) * 60 + g_date_time_get_minute (now);
  if (start < end)
    return minute >= start && minute < end;
  /* Across midnight, e.g. 22:00–07:00. */
  return minute >= start || minute < end;
}

/* ---- actions ------------------------------------------------------------------------------ */

typedef struct
{
  GWeakRef  notifier;
  gint64    id;
  char     *link;
  char     *relay_url;
  gint64    channel_id;
} ActionData;

static ActionData *
action_data_new (TocsinNotifier *self,
                 gint64          id,
                 const char     *link,
                 const char     *relay_url,
                 gint64          channel_id)
{
  ActionData *data = g_new0 (ActionData, 1);

  g_weak_ref_init (&data->notifier, self);
  data->id = id;
  data->link = g_strdup (link);
  data->relay_url = g_strdup (relay_url);
  data->channel_id = channel_id;
  return data;
}

static void
action_data_free (gpointer user_data)
{
  ActionData *data = user_data;

  g_weak_ref_clear (&data->notifier);
  g_free (data->link);
  g_free (data->relay_url);
  g_free (data);
}

typedef struct
{
  GWeakRef  notifier;
  char     *uri;
} LaunchData;

static void
launched (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  LaunchData *data = user_data;
  g_autoptr(TocsinNotifier) self = g_weak_ref_get (&data->notifier);
  g_autoptr(GError) error = NULL;

  if (!g_app_info_launch_default_for_uri_finish (result, &error))
    g_debug ("Could not open %s: %s", data->uri, error->message);
  else if (self)
    g_signal_emit (self, signals[SIGNAL_LINK_OPENED], 0, data->uri);

  g_weak_ref_clear (&data->notifier);
  g_free (data->uri);
  g_free (data);
}

static void
on_default_action (NotifyNotification *notification,
                   char               *action,
                   gpointer            user_data)
{
  ActionData *data = user_data;
  g_autoptr(TocsinNotifier) self = g_weak_ref_get (&data->notifier);

  if (self == NULL)
    return;

  if (data->link)
    {
      LaunchData *launch = g_new0 (LaunchData, 1);

      g_weak_ref_init (&launch->notifier, self);
      launch->uri = g_strdup (data->link);
      /* Only http(s) links ever get here: TocsinMessage refuses anything else. */
      g_app_info_launch_default_for_uri_async (data->link, NULL, NULL, launched, launch);
      /* Opening the link is reading it, as a click on the link in the window is. */
      g_signal_emit (self, signals[SIGNAL_MARK_READ], 0, data->id);
    }
  else
    g_signal_emit (self, signals[SIGNAL_SHOW_RECORD], 0, data->id);
}

static void
on_mark_read_action (NotifyNotification *notification,
                     char               *action,
                     gpointer            user_data)
{
  ActionData *data = user_data;
  g_autoptr(TocsinNotifier) self = g_weak_ref_get (&data->notifier);

  if (self)
    g_signal_emit (self, signals[SIGNAL_MARK_READ], 0, data->id);
}

static void
on_summary_action (NotifyNotification *notification,
                   char               *action,
                   gpointer            user_data)
{
  ActionData *data = user_data;
  g_autoptr(TocsinNotifier) self = g_weak_ref_get (&data->notifier);

  if (self)
    g_signal_emit (self, signals[SIGNAL_SHOW_CHANNEL], 0, data->relay_url, data->channel_id);
}

static void
on_closed (NotifyNotification *notification,
           gpointer            user_data)
{
  ActionData *data = user_data;
  g_autoptr(TocsinNotifier) self = g_weak_ref_get (&data->notifier);
  NotifyNotification *current;

  if (self == NULL)
    return;
  current = g_hash_table_lookup (self->notifications, &data->id);
  if (current == notification)
    g_hash_table_remove (self->notifications, &data->id);
}

typedef struct
{
  GWeakRef      notifier;
  TocsinRecord *record;
  guint         index;
} ButtonData;

static void
button_data_free (gpointer user_data)
{
  ButtonData *data = user_data;

  g_weak_ref_clear (&data->notifier);
  g_clear_object (&data->record);
  g_free (data);
}

static void
on_button_action (NotifyNotification *notification,
                  char               *action,
                  gpointer            user_data)
{
  ButtonData *data = user_data;
  g_autoptr(TocsinNotifier) self = g_weak_ref_get (&data->notifier);

  if (self)
    g_signal_emit (self, signals[SIGNAL_ACTION], 0, data->record, data->index);
}

/* Whether the notification server shows action buttons (the "actions" capability). Asked once:
 * libnotify asks with a synchronous D-Bus call. */
static gboolean
server_has_actions (TocsinNotifier *self)
{
  if (self->server_actions < 0)
    {
      GList *caps = notify_get_server_caps ();

      self->server_actions = g_list_find_custom (caps, "actions", (GCompareFunc) g_strcmp0) != NULL;
      g_list_free_full (caps, g_free);
    }
  return self->server_actions == 1;
}

/* The popup's actions: "default" (a click on the popup itself, not a button), the message's
 * own action buttons (issue 15) as "act-0".."act-2", then "Mark as Read". GNOME Shell shows
 * at most 3 buttons and drops the rest, so the message's buttons, which the sender chose,
 * come first, and "Mark as Read" is added only while there is room for it (a message with 3
 * actions has none; reading it in the window, or pressing one, still marks it). */
#define SERVER_MAX_BUTTONS 3

static void
add_actions (TocsinNotifier     *self,
             NotifyNotification *notification,
             TocsinRecord       *record)
{
  gint64 id = tocsin_record_get_id (record);
  guint buttons = 0;

  notify_notification_add_action (notification, "default",
                                  tocsin_record_get_link (record) ? _("Open Link") : _("Show"),
                                  on_default_action,
                                  action_data_new (self, id, tocsin_record_get_link (record),
                                                   NULL, 0),
                                  action_data_free);
  if (id != 0 && tocsin_record_get_n_actions (record) > 0 && server_has_actions (self))
    {
      for (guint i = 0; i < tocsin_record_get_n_actions (record) && i < SERVER_MAX_BUTTONS; i++)
        {
          const TocsinMessageAction *action = tocsin_record_get_action (record, i);
          g_autofree char *name = g_strdup_printf ("act-%u", i);
          ButtonData *data = g_new0 (ButtonData, 1);

          g_weak_ref_init (&data->notifier, self);
          data->record = g_object_ref (record);
          data->index = i;
          notify_notification_add_action (notification, name, action->label, on_button_action,
                                          data, button_data_free);
          buttons++;
        }
    }
  if (buttons < SERVER_MAX_BUTTONS)
    notify_notification_add_action (notification, "mark-read", _("Mark as Read"),
                                    on_mark_read_action,
                                    action_data_new (self, id, NULL, NULL, 0), action_data_free);
}

/* ---- showing ------------------------------------------------------------------------------ */

static void
apply_common (TocsinNotifier     *self,
              NotifyNotification *notification,
              gboolean            time_sensitive,
              gboolean            silent)
{
  gboolean sound = !silent && (self->settings == NULL ||
                               g_settings_get_boolean (self->settings, "play-sound"));

  notify_notification_set_app_name (notification, _("Tocsin"));
  notify_notification_set_hint_string (notification, "desktop-entry", APP_ID);
  /* No standard category fits an alert: "im.received" is chat, and servers that act on it
   * (grouping with conversations, a chat sound) would be wrong. The spec's vendor form
   * "x-vendor.class" says what it is and asks for nothing special. */
  notify_notification_set_category (notification, "x-tocsin.alert");
  notify_notification_set_urgency (notification, time_sensitive ? NOTIFY_URGENCY_CRITICAL
                                                                 : NOTIFY_URGENCY_NORMAL);
  if (sound)
    notify_notification_set_hint_string (notification, "sound-name", "message-new-instant");
  else
    notify_notification_set_hint (notification, "suppress-sound", g_variant_new_boolean (TRUE));
}

static gboolean
show (NotifyNotification *notification)
{
  g_autoptr(GError) error = NULL;

  if (!notify_notification_show (notification, &error))
    {
      g_debug ("Could not show a notification: %s", error->message);
      return FALSE;
    }
  return TRUE;
}

static void
append_escaped (GString    *out,
                const char *text)
{
  /* Servers that speak body-markup would read "<b>" or "&amp;" in a plain-text body as markup.
   * Only &, < and > need escaping in text; g_markup_escape_text() also turns quotes into
   * &apos;/&quot;, which servers without markup support then show literally. */
  for (const char *p = text; *p; p++)
    {
      switch (*p)
        {
        case '&': g_string_append (out, "&amp;"); break;
        case '<': g_string_append (out, "&lt;"); break;
        case '>': g_string_append (out, "&gt;"); break;
        default: g_string_append_c (out, *p); break;
        }
    }
}

static const char *channel_name (TocsinRecord *record, TocsinSubscription *subscription);

/* The body's first line names the channel: two channels may send the same title, and the
 * popup's header only names the app. The rest is the record's body. */
static char *
escaped_body (TocsinRecord       *record,
              TocsinSubscription *subscription)
{
  g_autofree char *plain = NULL;
  const char *body = tocsin_record_get_body (record);
  GString *escaped;

  /* Notification servers know a few tags at most, and some none: a Markdown body pops up as
   * its text, without the asterisks (the window renders it). */
  if (tocsin_record_get_markdown (record))
    body = plain = tocsin_markdown_to_text (body);
  escaped = g_string_sized_new (strlen (body) + 64);

  append_escaped (escaped, channel_name (record, subscription));
  if (*body != '\0')
    {
      g_string_append_c (escaped, '\n');
      append_escaped (escaped, body);
    }
  return g_string_free (escaped, FALSE);
}

static const char *
channel_name (TocsinRecord       *record,
              TocsinSubscription *subscription)
{
  const char *name = subscription ? tocsin_subscription_get_name (subscription) : NULL;

  if (name == NULL)
    name = tocsin_record_get_channel_name (record);
  return name ? name : _("a channel");
}

static const char *
summary_text (TocsinRecord *record)
{
  const char *title = tocsin_record_get_title (record);

  /* An empty summary is invisible in most servers: fall back to the channel. */
  if (title == NULL || *title == '\0')
    title = tocsin_record_get_channel_name (record);
  return title ? title : _("New notification");
}

static char *
storm_summary_text (Storm *storm)
{
  return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u new from %s", "%u new from %s",
                                       storm->count),
                          storm->count, storm->name);
}

static gboolean
storm_refresh (gpointer user_data)
{
  Storm *storm = user_data;
  g_autofree char *summary = storm_summary_text (storm);

  storm->refresh_id = 0;
  notify_notification_update (storm->summary, summary, NULL, APP_ID);
  /* The storm already rang once. */
  apply_common (storm->notifier, storm->summary, storm->time_sensitive, TRUE);
  show (storm->summary);
  return G_SOURCE_REMOVE;
}

static TocsinNotifyOutcome
coalesce (TocsinNotifier     *self,
          TocsinRecord       *record,
          TocsinSubscription *subscription,
          gboolean            time_sensitive)
{
  g_autofree char *key = g_strdup_printf ("%s\n%" G_GINT64_FORMAT,
                                          tocsin_record_get_relay_url (record),
                                          tocsin_record_get_channel_id (record));
  gint64 now = g_get_monotonic_time ();
  g_autofree char *summary = NULL;
  Storm *storm = g_hash_table_lookup (self->storms, key);

  if (storm == NULL || now - storm->last_time > STORM_WINDOW)
    {
      storm = g_new0 (Storm, 1);
      storm->relay_url = g_strdup (tocsin_record_get_relay_url (record));
      storm->channel_id = tocsin_record_get_channel_id (record);
      g_hash_table_replace (self->storms, g_strdup (key), storm);
    }
  g_free (storm->name);
  storm->name = g_strdup (channel_name (record, subscription));
  storm->last_time = now;
  storm->count++;

  if (storm->count <= STORM_LIMIT)
    return TOCSIN_NOTIFY_SHOWN;

  storm->time_sensitive = storm->time_sensitive || time_sensitive;
  if (storm->summary == NULL)
    {
      summary = storm_summary_text (storm);
      storm->summary = notify_notification_new (summary, NULL, APP_ID);
      notify_notification_add_action (storm->summary, "default", _("Show"), on_summary_action,
                                      action_data_new (self, 0, NULL, storm->relay_url,
                                                       storm->channel_id),
                                      action_data_free);
      apply_common (self, storm->summary, storm->time_sensitive, FALSE);
      show (storm->summary);
    }
  else if (storm->refresh_id == 0)
    {
      storm->notifier = self;
      storm->refresh_id = g_timeout_add (STORM_REFRESH_MS, storm_refresh, storm);
    }
  return TOCSIN_NOTIFY_COALESCED;
}

/* Whether @record rings as time-sensitive (critical urgency, through quiet hours): the message's
 * own notificationType when it has one, otherwise the subscription's choice. A call that no
 * call window took (too old, already answered) pops up as time-sensitive. */
static gboolean
is_time_sensitive (TocsinRecord       *record,
                   TocsinSubscription *subscription)
{
  switch (tocsin_record_get_notification_type (record))
    {
    case TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE:
    case TOCSIN_MESSAGE_TYPE_CALLING:
      return TRUE;
    case TOCSIN_MESSAGE_TYPE_ACTIVE:
      return FALSE;
    case TOCSIN_MESSAGE_TYPE_DEFAULT:
    default:
      return subscription != NULL &&
             tocsin_subscription_get_notify_type (subscription) != TOCSIN_NOTIFY_TYPE_NORMAL;
    }
}

/* Whether @record rings as a call: its own notificationType says "calling", or it says nothing
 * and the subscription is a calling one. */
static gboolean
is_call (TocsinRecord       *record,
         TocsinSubscription *subscription)
{
  switch (tocsin_record_get_notification_type (record))
    {
    case TOCSIN_MESSAGE_TYPE_CALLING:
      return TRUE;
    case TOCSIN_MESSAGE_TYPE_DEFAULT:
      return subscription != NULL &&
             tocsin_subscription_get_notify_type (subscription) == TOCSIN_NOTIFY_TYPE_CALLING;
    case TOCSIN_MESSAGE_TYPE_ACTIVE:
    case TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE:
    default:
      return FALSE;
    }
}

TocsinNotifyOutcome
tocsin_notifier_notify (TocsinNotifier     *self,
                        TocsinRecord       *record,
                        TocsinSubscription *subscription)
{
  g_autoptr(NotifyNotification) notification = NULL;
  g_autoptr(GDateTime) now = NULL;
  g_autofree char *body = NULL;
  gboolean time_sensitive;
  gint64 id;

  g_return_val_if_fail (TOCSIN_IS_NOTIFIER (self), TOCSIN_NOTIFY_FAILED);
  g_return_val_if_fail (TOCSIN_IS_RECORD (record), TOCSIN_NOTIFY_FAILED);

  if (subscription && tocsin_subscription_get_muted (subscription))
    return TOCSIN_NOTIFY_MUTED;
  if (is_call (record, subscription))
    {
      gboolean handled = FALSE;

      /* Calls ring through quiet hours, and are never folded into a storm summary. */
      g_signal_emit (self, signals[SIGNAL_CALL], 0, record, subscription, &handled);
      if (handled)
        return TOCSIN_NOTIFY_SHOWN;
    }
  time_sensitive = is_time_sensitive (record, subscription);
  if (!time_sensitive && self->settings != NULL &&
      g_settings_get_boolean (self->settings, "quiet-hours-enabled"))
    {
      now = now_local (self);
      if (tocsin_notifier_in_quiet_hours (self, now))
        return TOCSIN_NOTIFY_QUIET;
    }

  if (coalesce (self, record, subscription, time_sensitive) == TOCSIN_NOTIFY_COALESCED)
    return TOCSIN_NOTIFY_COALESCED;

  id = tocsin_record_get_id (record);
  body = escaped_body (record, subscription);
  notification = notify_notification_new (summary_text (record), body, APP_ID);
  apply_common (self, notification, time_sensitive, FALSE);
  add_actions (self, notification, record);
  g_signal_connect_data (notification, "closed", G_CALLBACK (on_closed),
                         action_data_new (self, id, NULL, NULL, 0),
                         (GClosureNotify) (void (*) (void)) action_data_free, 0);

  if (!show (notification))
    return TOCSIN_NOTIFY_FAILED;
  g_hash_table_replace (self->notifications, g_memdup2 (&id, sizeof id),
                        g_steal_pointer (&notification));
  return TOCSIN_NOTIFY_SHOWN;
}

void
tocsin_notifier_update (TocsinNotifier *self,
                        TocsinRecord   *record)
{
  NotifyNotification *notification;
  g_autofree char *body = NULL;
  gint64 id;

  g_return_if_fail (TOCSIN_IS_NOTIFIER (self));
  g_return_if_fail (TOCSIN_IS_RECORD (record));

  id = tocsin_record_get_id (record);
  notification = g_hash_table_lookup (self->notifications, &id);
  if (notification == NULL)
    return;

  body = escaped_body (record, NULL);
  notify_notification_update (notification, summary_text (record), body, APP_ID);
  /* Same id, so the server replaces the popup in place; and it must not ring again. */
  notify_notification_set_hint (notification, "suppress-sound", g_variant_new_boolean (TRUE));
  notify_notification_set_hint (notification, "sound-name", NULL);
  notify_notification_clear_actions (notification);
  add_actions (self, notification, record);
  show (notification);
}

void
tocsin_notifier_withdraw (TocsinNotifier *self,
                          gint64          id)
{
  g_autoptr(NotifyNotification) notification = NULL;
  g_autofree gint64 *key = NULL;
  g_autoptr(GError) error = NULL;

  g_return_if_fail (TOCSIN_IS_NOTIFIER (self));

  if (!g_hash_table_steal_extended (self->notifications, &id, (gpointer *) &key,
                                    (gpointer *) &notification))
    return;
  if (!notify_notification_close (notification, &error))
    g_debug ("Could not close a notification: %s", error->message);
}

void
tocsin_notifier_withdraw_all (TocsinNotifier *self)
{
  GHashTableIter iter;
  gpointer value;

  g_return_if_fail (TOCSIN_IS_NOTIFIER (self));

  g_hash_table_iter_init (&iter, self->notifications);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    notify_notification_close (value, NULL);
  g_hash_table_remove_all (self->notifications);
}

/* ---- following the history ---------------------------------------------------------------- */

static void
history_record_changed_cb (TocsinNotifier *self,
                           TocsinRecord   *record)
{
  if (tocsin_record_get_read (record))
    tocsin_notifier_withdraw (self, tocsin_record_get_id (record));
}

static void
history_record_removed_cb (TocsinNotifier *self,
                           gint64          id)
{
  tocsin_notifier_withdraw (self, id);
}

typedef struct
{
  TocsinNotifier *self;
  gint64          id;
} ResetLookup;

static void
reset_lookup_done (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  ResetLookup *lookup = user_data;
  g_autoptr(TocsinNotifier) self = lookup->self;
  g_autoptr(TocsinRecord) record = NULL;
  g_autoptr(GError) error = NULL;
  gint64 id = lookup->id;

  g_free (lookup);
  record = tocsin_history_get_record_finish (TOCSIN_HISTORY (object), result, &error);
  if (error != NULL)
    return;  /* cancelled, or the history cannot tell: leave the popup */
  if (record == NULL)
    tocsin_notifier_withdraw (self, id);  /* deleted ("clear channel", "clear all") */
  else
    history_record_changed_cb (self, record);  /* read ("mark all read") */
}

/* "reset": many records changed at once (mark all read, clear). A handful of popups are on
 * screen at most; look each one up rather than guess which channel the change covered. */
static void
history_reset_cb (TocsinNotifier *self)
{
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, self->notifications);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      ResetLookup *lookup = g_new0 (ResetLookup, 1);

      lookup->self = g_object_ref (self);
      lookup->id = *(gint64 *) key;
      tocsin_history_get_record_async (self->history, lookup->id, self->cancellable,
                                       reset_lookup_done, lookup);
    }
}

void
tocsin_notifier_follow_history (TocsinNotifier *self,
                                TocsinHistory  *history)
{
  g_return_if_fail (TOCSIN_IS_NOTIFIER (self));
  g_return_if_fail (history == NULL || TOCSIN_IS_HISTORY (history));

  if (self->history)
    g_signal_handlers_disconnect_by_data (self->history, self);
  g_set_object (&self->history, history);
  if (history == NULL)
    return;
  g_signal_connect_swapped (history, "record-changed", G_CALLBACK (history_record_changed_cb),
                            self);
  g_signal_connect_swapped (history, "record-removed", G_CALLBACK (history_record_removed_cb),
                            self);
  g_signal_connect_swapped (history, "reset", G_CALLBACK (history_reset_cb), self);
}
