/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-connection"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-json.h"
#include "tocsin-link.h"
#include "tocsin-protocol.h"
#include "tocsin-connection.h"
#include "tocsin-subscription.h"

#define BACKOFF_FIRST_MS     1000
#define BACKOFF_MAX_MS       60000
#define KEEPALIVE_SECONDS    30
/* Nothing heard for three keepalive intervals (90 s) means the peer is gone. */
#define SILENCE_LIMIT_USEC   (3 * (gint64) keepalive_seconds () * G_USEC_PER_SEC)
#define CONNECT_TIMEOUT_SEC  30
/* A message object may carry up to 64 KiB of variables plus rendered text; leave headroom.
 * Messages over TOCSIN_PROTOCOL_MAX_MESSAGE_BYTES are read, moved past and not kept. */
#define MAX_INCOMING_PAYLOAD TOCSIN_PROTOCOL_MAX_FRAME_BYTES
/* A connection that lasted this long was healthy: forget earlier strikes. */
#define STABLE_USEC          (60 * G_USEC_PER_SEC)

struct _TocsinConnection
{
  GObject parent_instance;

  /* Owned references: */
  char                    *relay_url;
  char                    *ws_url;
  GTlsDatabase            *tls_database;
  /* The socket (tocsin-link.c: read and parsed on the I/O thread): connecting, then open. */
  TocsinLink              *connecting;
  TocsinLink              *link;
  GCancellable            *bus_cancellable;
  GDBusConnection         *system_bus;
  GNetworkMonitor         *monitor;         /* the default one, referenced */

  /* Per-token cursors (token → gint64*, last id passed on) and the channel each token named in
   * its "subscribed" frame (channel id → token). */
  GHashTable              *cursors;
  GHashTable              *channels;

  TocsinConnectionState    state;
  gboolean                 running;
  guint                    attempt;
  /* Connections in a row that the relay ended by policy (4008, 1008) or that broke the
   * protocol: each one waits longer before the next attempt. */
  guint                    strikes;
  gint64                   connected_since;
  gint64                   retry_time;
  gint64                   last_seen;
  char                    *last_error;

  guint                    retry_source;
  guint                    keepalive_source;
  guint                    connect_timeout_source;
  guint                    sleep_subscription;
  gulong                   monitor_handler;
  gulong                   available_handler;
};

G_DEFINE_FINAL_TYPE (TocsinConnection, tocsin_connection, G_TYPE_OBJECT)
G_DEFINE_ENUM_TYPE (TocsinConnectionState, tocsin_connection_state,
                    G_DEFINE_ENUM_VALUE (TOCSIN_CONNECTION_STOPPED, "stopped"),
                    G_DEFINE_ENUM_VALUE (TOCSIN_CONNECTION_CONNECTING, "connecting"),
                    G_DEFINE_ENUM_VALUE (TOCSIN_CONNECTION_CONNECTED, "connected"),
                    G_DEFINE_ENUM_VALUE (TOCSIN_CONNECTION_WAITING, "waiting"))

enum {
  PROP_0,
  PROP_RELAY_URL,
  PROP_STATE,
  PROP_RETRY_TIME,
  PROP_LAST_ERROR,
  N_PROPS
};

enum {
  SIGNAL_SUBSCRIBED,
  SIGNAL_MESSAGE,
  SIGNAL_GAP,
  SIGNAL_REFUSED,
  SIGNAL_CLOSED,
  SIGNAL_PROBLEM,
  SIGNAL_ACKNOWLEDGED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void connect_now   (TocsinConnection *self);

/* KEEPALIVE_SECONDS, or TOCSIN_KEEPALIVE_SECONDS (1-3600) for tests that cut the network and
 * cannot wait 90 s for the silence to be noticed (docs/configuration.md); read once. */
static guint
keepalive_seconds (void)
{
  static gsize seconds = 0;

  if (g_once_init_enter (&seconds))
    {
      const char *env = g_getenv ("TOCSIN_KEEPALIVE_SECONDS");
      guint64 value = KEEPALIVE_SECONDS;

      if (env && !g_ascii_string_to_unsigned (env, 10, 1, 3600, &value, NULL))
        value = KEEPALIVE_SECONDS;
      g_once_init_leave (&seconds, (gsize) value);
    }
  return (guint) seconds;
}

/* ---- state ------------------------------------------------------------------------------ */

static void
set_state (TocsinConnection      *self,
           TocsinConnectionState  state)
{
  if (self->state == state)
    return;
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
}

static void
set_last_error (TocsinConnection *self,
                const char       *message)
{
  if (g_strcmp0 (self->last_error, message) == 0)
    return;
  g_free (self->last_error);
  self->last_error = g_strdup (message);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LAST_ERROR]);
}

static void
send_frame (TocsinConnection *self,
            JsonBuilder      *builder)
{
  g_autoptr(JsonNode) root = json_builder_get_root (builder);
  g_autofree char *text = tocsin_json_to_string (root, FALSE);

  if (self->link)
    tocsin_link_send_text (self->link, text);
}

static void
send_subscribe (TocsinConnection *self,
                const char       *token,
                gint64            cursor)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, "subscribe");
  json_builder_set_member_name (builder, "token");
  json_builder_add_string_value (builder, token);
  json_builder_set_member_name (builder, "since");
  if (cursor == TOCSIN_CURSOR_NONE)
    json_builder_add_null_value (builder);
  else
    json_builder_add_int_value (builder, cursor);
  json_builder_end_object (builder);
  send_frame (self, builder);
}

/* Drops the socket without waiting for anything from the peer (it may be gone), and what it
 * received that was not handled yet: the cursors only moved past what was handled, so the
 * next connection asks the relay again from there. */
static void
drop_socket (TocsinConnection *self,
             gushort           code)
{
  g_clear_handle_id (&self->keepalive_source, g_source_remove);
  if (self->link == NULL)
    return;
  tocsin_link_close (self->link, code);
  g_clear_pointer (&self->link, tocsin_link_unref);
}

/* Gives up a connection attempt under way, if any. */
static void
cancel_connect (TocsinConnection *self)
{
  g_clear_handle_id (&self->connect_timeout_source, g_source_remove);
  if (self->connecting == NULL)
    return;
  tocsin_link_close (self->connecting, SOUP_WEBSOCKET_CLOSE_NORMAL);
  g_clear_pointer (&self->connecting, tocsin_link_unref);
}

static gboolean
retry_cb (gpointer data)
{
  TocsinConnection *self = data;

  self->retry_source = 0;
  connect_now (self);
  return G_SOURCE_REMOVE;
}

/* Exponential backoff with jitter: about 1 s, 2 s, 4 s ... up to 60 s, each ±25 %, so that the
 * subscribers of a relay that restarts do not all come back in the same instant. */
static void
schedule_retry (TocsinConnection *self,
                gboolean          at_once)
{
  guint delay_ms = 0;

  g_clear_handle_id (&self->retry_source, g_source_remove);
  if (!self->running)
    {
      set_state (self, TOCSIN_CONNECTION_STOPPED);
      return;
    }

  if (!at_once)
    {
      double base = BACKOFF_FIRST_MS * (double) (1u << MIN (self->attempt, 7u));

      base = MIN (base, (double) BACKOFF_MAX_MS);
      delay_ms = (guint) MIN (base * g_random_double_range (0.75, 1.25), (double) BACKOFF_MAX_MS);
      self->attempt++;
    }

  self->retry_time = g_get_monotonic_time () + (gint64) delay_ms * 1000;
  self->retry_source = g_timeout_add (delay_ms, retry_cb, self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RETRY_TIME]);
  set_state (self, TOCSIN_CONNECTION_WAITING);
}

/* A connection the relay ended by policy or with frames that break the protocol: back off
 * exponentially (with jitter) across connections, however many frames each one carried. */
static void
strike (TocsinConnection *self)
{
  if (self->connected_since != 0 &&
      g_get_monotonic_time () - self->connected_since > STABLE_USEC)
    self->strikes = 0;
  self->connected_since = 0;
  self->strikes = MIN (self->strikes + 1, 16u);
  self->attempt = MAX (self->attempt, self->strikes);
}

/* ---- frames ------------------------------------------------------------------------------- */

static const char *
token_for_channel (TocsinConnection *self,
                   gint64            channel_id)
{
  return g_hash_table_lookup (self->channels, &channel_id);
}

static gint64 *
cursor_for_token (TocsinConnection *self,
                  const char       *token)
{
  return token ? g_hash_table_lookup (self->cursors, token) : NULL;
}

static void
forget_token (TocsinConnection *self,
              const char       *token)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (g_strcmp0 (value, token) == 0)
      g_hash_table_iter_remove (&iter);
  g_hash_table_remove (self->cursors, token);
}

static void
handle_subscribed (TocsinConnection  *self,
                   const TocsinFrame *frame)
{
  gint64 *cursor = cursor_for_token (self, frame->token);

  if (cursor == NULL)
    return;
  g_hash_table_insert (self->channels, g_memdup2 (&frame->channel_id, sizeof (gint64)),
                       g_strdup (frame->token));
  /* Subscribed live only: what exists now counts as seen, so the next reconnect resumes here. */
  if (*cursor == TOCSIN_CURSOR_NONE)
    *cursor = frame->last_id;

  g_signal_emit (self, signals[SIGNAL_SUBSCRIBED], 0, frame->token, frame->channel_id,
                 frame->channel_name, frame->channel_description, frame->last_id);
}

static void
handle_message (TocsinConnection  *self,
                const TocsinFrame *frame)
{
  const char *token = token_for_channel (self, frame->channel_id);
  gint64 *cursor = cursor_for_token (self, token);

  if (cursor == NULL)
    {
      g_debug ("Message for channel %" G_GINT64_FORMAT " that is not subscribed",
               frame->channel_id);
      return;
    }
  /* A replay overlapping what we already passed on: drop it here, once. */
  if (frame->message_id <= *cursor)
    return;
  /* Skip what cannot be kept, but move past it: asking for it again would fail again. */
  *cursor = MAX (*cursor, frame->message_id);
  if (frame->problem)
    {
      g_debug ("A message from %s: %s", self->relay_url, frame->problem);
      g_signal_emit (self, signals[SIGNAL_PROBLEM], 0, token, frame->problem);
    }
  if (frame->message)
    g_signal_emit (self, signals[SIGNAL_MESSAGE], 0, token, frame->message);
}

static void
handle_frame (TocsinConnection  *self,
              const TocsinFrame *frame)
{
  switch (frame->type)
    {
    case TOCSIN_FRAME_SUBSCRIBED:
      handle_subscribed (self, frame);
      break;
    case TOCSIN_FRAME_MESSAGE:
      handle_message (self, frame);
      break;
    case TOCSIN_FRAME_GAP:
      {
        const char *token = token_for_channel (self, frame->channel_id);
        gint64 *cursor = token ? cursor_for_token (self, token) : NULL;

        /* What is gone stays gone: move past it, so that the next reconnect does not ask for
         * it (and report the same gap) again. */
        if (cursor)
          *cursor = MAX (*cursor, frame->to);
        if (token)
          g_signal_emit (self, signals[SIGNAL_GAP], 0, token, frame->channel_id, frame->from,
                         frame->to);
      }
      break;
    case TOCSIN_FRAME_ERROR:
      /* A refused token is not asked for again on reconnect; the subscription shows why. */
      if (frame->token)
        forget_token (self, frame->token);
      g_signal_emit (self, signals[SIGNAL_REFUSED], 0, frame->token, frame->code, frame->error);
      break;
    case TOCSIN_FRAME_CLOSED:
      {
        g_autofree char *token = g_strdup (token_for_channel (self, frame->channel_id));

        if (token)
          {
            forget_token (self, token);
            g_signal_emit (self, signals[SIGNAL_CLOSED], 0, token, frame->channel_id,
                           frame->reason);
          }
      }
      break;
    case TOCSIN_FRAME_ACKNOWLEDGED:
      if (token_for_channel (self, frame->channel_id) != NULL)
        g_signal_emit (self, signals[SIGNAL_ACKNOWLEDGED], 0, frame->channel_id,
                       frame->message_id, frame->by);
      break;
    case TOCSIN_FRAME_UNKNOWN:
    default:
      g_debug ("Ignoring a frame of unknown type “%s”", frame->type_name);
      break;
    }
}

/* The relay broke the protocol: it is not trusted for the rest of this connection. Every
 * subscription on it says why, and the next attempt waits (exponential backoff, growing with
 * each such connection) so that a relay that always does it costs a few attempts an hour. */
static void
protocol_failure (TocsinConnection *self,
                  gushort           code,
                  const char       *sentence)
{
  g_debug ("Protocol error from %s: %s", self->relay_url, sentence);
  set_last_error (self, sentence);
  g_signal_emit (self, signals[SIGNAL_PROBLEM], 0, NULL, sentence);
  drop_socket (self, code);
  strike (self);
  schedule_retry (self, FALSE);
}

/* The socket closed (the peer closed it, or it broke), after every frame it had delivered was
 * handled. */
static void
socket_closed (TocsinConnection *self,
               gushort           code)
{
  g_debug ("Connection to %s closed (%u)", self->relay_url, code);
  drop_socket (self, SOUP_WEBSOCKET_CLOSE_NORMAL);
  /* A connection that lasted was healthy, however it ended. */
  if (self->connected_since != 0 &&
      g_get_monotonic_time () - self->connected_since > STABLE_USEC)
    self->strikes = self->attempt = 0;

  switch (code)
    {
    case SOUP_WEBSOCKET_CLOSE_GOING_AWAY:
      set_last_error (self, _("The relay is restarting"));
      break;
    case 4008:
      /* Too slow for the relay's queue: nothing is lost, resume from the cursors, but not at
       * once: a message the relay cannot deliver would close us again, thousands of times a
       * minute. */
      set_last_error (self, _("The relay could not send fast enough and closed the "
                              "connection"));
      strike (self);
      break;
    case SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION:
    case SOUP_WEBSOCKET_CLOSE_PROTOCOL_ERROR:
    case SOUP_WEBSOCKET_CLOSE_TOO_BIG:
      set_last_error (self, _("The relay refused what this app sent (protocol error)"));
      strike (self);
      break;
    default:
      set_last_error (self, _("The connection to the relay was lost"));
      break;
    }
  schedule_retry (self, FALSE);
}

/* Keepalive: libsoup pings every 30 s; if nothing at all came back for 90 s, the peer is gone
 * (suspended laptop, dead NAT mapping) and a new connection is the only cure. */
static gboolean
keepalive_cb (gpointer data)
{
  TocsinConnection *self = data;

  if (g_get_monotonic_time () - self->last_seen > SILENCE_LIMIT_USEC)
    {
      self->keepalive_source = 0;
      set_last_error (self, _("The relay stopped answering"));
      drop_socket (self, SOUP_WEBSOCKET_CLOSE_GOING_AWAY);
      schedule_retry (self, TRUE);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

/* ---- connecting --------------------------------------------------------------------------- */

static void
connected (TocsinConnection *self)
{
  GHashTableIter iter;
  gpointer key, value;

  g_clear_handle_id (&self->connect_timeout_source, g_source_remove);
  self->link = g_steal_pointer (&self->connecting);
  if (!self->running)
    {
      drop_socket (self, SOUP_WEBSOCKET_CLOSE_NORMAL);
      return;
    }

  self->last_seen = g_get_monotonic_time ();
  self->keepalive_source = g_timeout_add_seconds (keepalive_seconds (), keepalive_cb, self);

  set_last_error (self, NULL);
  self->connected_since = g_get_monotonic_time ();
  set_state (self, TOCSIN_CONNECTION_CONNECTED);

  /* Resume every channel from its cursor. */
  g_hash_table_iter_init (&iter, self->cursors);
  while (g_hash_table_iter_next (&iter, &key, &value))
    send_subscribe (self, key, *(gint64 *) value);
}

static void
connect_failed (TocsinConnection *self,
                const GError     *error)
{
  g_clear_handle_id (&self->connect_timeout_source, g_source_remove);
  g_clear_pointer (&self->connecting, tocsin_link_unref);
  g_debug ("Could not connect to %s: %s", self->relay_url, error->message);
  /* libsoup's "Unacceptable TLS certificate" tells a person neither what nor what to do. */
  if (g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE))
    set_last_error (self, _("The relay’s certificate is not trusted. If the relay uses its "
                            "own certificate authority, choose its CA file in the "
                            "preferences."));
  else
    set_last_error (self, error->message);
  schedule_retry (self, FALSE);
}

/* What the link (the socket, read on the I/O thread) reports, in order, in the main context. */
static void
on_link_event (TocsinLink            *link,
               const TocsinLinkEvent *event,
               gpointer               user_data)
{
  g_autoptr(TocsinConnection) self = g_object_ref (user_data);

  /* Keep ourselves alive through emissions whose handlers may drop the last reference. */
  switch (event->type)
    {
    case TOCSIN_LINK_CONNECTED:
      connected (self);
      break;
    case TOCSIN_LINK_CONNECT_FAILED:
      connect_failed (self, event->error);
      break;
    case TOCSIN_LINK_FRAME:
      self->last_seen = g_get_monotonic_time ();
      /* The relay talks sense: the backoff can start over next time, unless it misbehaved. */
      if (self->strikes == 0)
        self->attempt = 0;
      handle_frame (self, event->frame);
      break;
    case TOCSIN_LINK_BAD_FRAME:
      protocol_failure (self, SOUP_WEBSOCKET_CLOSE_PROTOCOL_ERROR, event->error->message);
      break;
    case TOCSIN_LINK_PONG:
      self->last_seen = g_get_monotonic_time ();
      break;
    case TOCSIN_LINK_ERROR:
      g_debug ("WebSocket error from %s: %s", self->relay_url, event->error->message);
      set_last_error (self, event->error->message);
      break;
    case TOCSIN_LINK_CLOSED:
      socket_closed (self, event->code);
      break;
    default:
      g_assert_not_reached ();
    }
}

static gboolean
connect_timeout_cb (gpointer data)
{
  TocsinConnection *self = data;

  self->connect_timeout_source = 0;
  cancel_connect (self);
  set_last_error (self, _("The relay did not answer"));
  schedule_retry (self, FALSE);
  return G_SOURCE_REMOVE;
}

static void
connect_now (TocsinConnection *self)
{
  g_autoptr(SoupMessage) msg = NULL;

  g_clear_handle_id (&self->retry_source, g_source_remove);
  if (!self->running || self->connecting != NULL)
    return;

  msg = soup_message_new ("GET", self->ws_url);
  if (msg == NULL)
    {
      set_last_error (self, _("The relay’s address is not a valid URL"));
      set_state (self, TOCSIN_CONNECTION_STOPPED);
      return;
    }

  set_state (self, TOCSIN_CONNECTION_CONNECTING);
  self->connect_timeout_source = g_timeout_add_seconds (CONNECT_TIMEOUT_SEC,
                                                        connect_timeout_cb, self);
  self->connecting = tocsin_link_new (msg, self->tls_database, keepalive_seconds (),
                                      MAX_INCOMING_PAYLOAD, on_link_event, self);
}

void
tocsin_connection_reconnect_now (TocsinConnection *self)
{
  g_return_if_fail (TOCSIN_IS_CONNECTION (self));

  if (!self->running)
    return;
  cancel_connect (self);
  drop_socket (self, SOUP_WEBSOCKET_CLOSE_GOING_AWAY);
  self->attempt = self->strikes = 0;
  connect_now (self);
}

/* ---- the outside world: network changes and suspend ------------------------------------- */

static void
on_network_changed (GNetworkMonitor  *monitor,
                    gboolean          available,
                    TocsinConnection *self)
{
  /* Only a waiting connection is hurried; a live one keeps going (its keepalive notices). */
  if (available && self->state == TOCSIN_CONNECTION_WAITING)
    {
      self->attempt = 0;
      connect_now (self);
    }
}

/* GLib's NetworkManager monitor (what a GNOME desktop has) only notifies "network-available";
 * "network-changed" comes from the netlink monitor, on route changes. Follow both. */
static void
on_network_available (GNetworkMonitor  *monitor,
                      GParamSpec       *pspec,
                      TocsinConnection *self)
{
  on_network_changed (monitor, g_network_monitor_get_network_available (monitor), self);
}

static void
on_prepare_for_sleep (GDBusConnection *connection,
                      const char      *sender,
                      const char      *path,
                      const char      *interface,
                      const char      *signal,
                      GVariant        *parameters,
                      gpointer         user_data)
{
  TocsinConnection *self = user_data;
  gboolean going_to_sleep = FALSE;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(b)")))
    return;
  g_variant_get (parameters, "(b)", &going_to_sleep);
  /* After resume the socket is most likely dead and the backoff long: start afresh. */
  if (!going_to_sleep)
    tocsin_connection_reconnect_now (self);
}

static void
on_system_bus (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(TocsinConnection) self = user_data;
  g_autoptr(GError) error = NULL;
  GDBusConnection *bus = g_bus_get_finish (result, &error);

  if (bus == NULL)
    {
      /* No system bus (a container, a test): resume handling is simply not available. */
      g_debug ("No system bus, not following suspend: %s", error->message);
      return;
    }
  if (self->bus_cancellable == NULL || g_cancellable_is_cancelled (self->bus_cancellable))
    {
      g_object_unref (bus);
      return;
    }
  g_clear_object (&self->bus_cancellable);
  self->system_bus = bus;
  self->sleep_subscription =
    g_dbus_connection_signal_subscribe (bus, "org.freedesktop.login1",
                                        "org.freedesktop.login1.Manager", "PrepareForSleep",
                                        "/org/freedesktop/login1", NULL,
                                        G_DBUS_SIGNAL_FLAGS_NONE, on_prepare_for_sleep,
                                        self, NULL);
}

/* ---- GObject ------------------------------------------------------------------------------ */

static void
tocsin_connection_dispose (GObject *object)
{
  TocsinConnection *self = TOCSIN_CONNECTION (object);

  self->running = FALSE;
  g_clear_handle_id (&self->retry_source, g_source_remove);
  cancel_connect (self);
  drop_socket (self, SOUP_WEBSOCKET_CLOSE_NORMAL);
  if (self->bus_cancellable)
    g_cancellable_cancel (self->bus_cancellable);
  g_clear_object (&self->bus_cancellable);
  if (self->system_bus && self->sleep_subscription)
    g_dbus_connection_signal_unsubscribe (self->system_bus, self->sleep_subscription);
  self->sleep_subscription = 0;
  g_clear_object (&self->system_bus);
  g_clear_signal_handler (&self->monitor_handler, self->monitor);
  g_clear_signal_handler (&self->available_handler, self->monitor);
  g_clear_object (&self->monitor);
  g_clear_object (&self->tls_database);

  G_OBJECT_CLASS (tocsin_connection_parent_class)->dispose (object);
}

static void
tocsin_connection_finalize (GObject *object)
{
  TocsinConnection *self = TOCSIN_CONNECTION (object);

  g_hash_table_unref (self->cursors);
  g_hash_table_unref (self->channels);
  g_free (self->relay_url);
  g_free (self->ws_url);
  g_free (self->last_error);

  G_OBJECT_CLASS (tocsin_connection_parent_class)->finalize (object);
}

static void
tocsin_connection_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  TocsinConnection *self = TOCSIN_CONNECTION (object);

  switch (prop_id)
    {
    case PROP_RELAY_URL: g_value_set_string (value, self->relay_url); break;
    case PROP_STATE: g_value_set_enum (value, self->state); break;
    case PROP_RETRY_TIME: g_value_set_int64 (value, self->retry_time); break;
    case PROP_LAST_ERROR: g_value_set_string (value, self->last_error); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tocsin_connection_class_init (TocsinConnectionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags ro = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->dispose = tocsin_connection_dispose;
  object_class->finalize = tocsin_connection_finalize;
  object_class->get_property = tocsin_connection_get_property;

  properties[PROP_RELAY_URL] = g_param_spec_string ("relay-url", NULL, NULL, NULL, ro);
  properties[PROP_STATE] = g_param_spec_enum ("state", NULL, NULL,
                                              TOCSIN_TYPE_CONNECTION_STATE,
                                              TOCSIN_CONNECTION_STOPPED, ro);
  properties[PROP_RETRY_TIME] = g_param_spec_int64 ("retry-time", NULL, NULL,
                                                    0, G_MAXINT64, 0, ro);
  properties[PROP_LAST_ERROR] = g_param_spec_string ("last-error", NULL, NULL, NULL, ro);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  signals[SIGNAL_SUBSCRIBED] =
    g_signal_new ("subscribed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 5, G_TYPE_STRING, G_TYPE_INT64,
                  G_TYPE_STRING, G_TYPE_STRING, G_TYPE_INT64);
  signals[SIGNAL_MESSAGE] =
    g_signal_new ("message", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_POINTER);
  signals[SIGNAL_GAP] =
    g_signal_new ("gap", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 4, G_TYPE_STRING, G_TYPE_INT64,
                  G_TYPE_INT64, G_TYPE_INT64);
  signals[SIGNAL_REFUSED] =
    g_signal_new ("refused", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING,
                  G_TYPE_STRING);
  signals[SIGNAL_CLOSED] =
    g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_INT64,
                  G_TYPE_STRING);
  /* (token or NULL for every subscription of the relay, sentence): something the relay sent
   * was refused or not kept. */
  signals[SIGNAL_PROBLEM] =
    g_signal_new ("problem", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
  /* (channel id, message id, by): someone answered that call (docs/protocol.md). */
  signals[SIGNAL_ACKNOWLEDGED] =
    g_signal_new ("acknowledged", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_INT64, G_TYPE_INT64, G_TYPE_STRING);
}

static void
tocsin_connection_init (TocsinConnection *self)
{
  self->cursors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->channels = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  self->state = TOCSIN_CONNECTION_STOPPED;
}

TocsinConnection *
tocsin_connection_new (const char   *relay_url,
                       GTlsDatabase *tls_database)
{
  TocsinConnection *self;
  g_autofree char *base = NULL;

  g_return_val_if_fail (relay_url != NULL, NULL);

  self = g_object_new (TOCSIN_TYPE_CONNECTION, NULL);
  self->relay_url = g_strdup (relay_url);
  if (g_str_has_prefix (relay_url, "https:"))
    base = g_strconcat ("wss:", relay_url + strlen ("https:"), NULL);
  else if (g_str_has_prefix (relay_url, "http:"))
    base = g_strconcat ("ws:", relay_url + strlen ("http:"), NULL);
  else
    base = g_strdup (relay_url);
  self->ws_url = g_strconcat (base, "/v1/ws", NULL);
  self->tls_database = tls_database ? g_object_ref (tls_database) : NULL;

  self->monitor = g_object_ref (g_network_monitor_get_default ());
  self->monitor_handler = g_signal_connect (self->monitor, "network-changed",
                                            G_CALLBACK (on_network_changed), self);
  self->available_handler = g_signal_connect (self->monitor, "notify::network-available",
                                              G_CALLBACK (on_network_available), self);
  return self;
}

const char *
tocsin_connection_get_relay_url (TocsinConnection *self)
{
  g_return_val_if_fail (TOCSIN_IS_CONNECTION (self), NULL);
  return self->relay_url;
}

void
tocsin_connection_set_tls_database (TocsinConnection *self,
                                    GTlsDatabase     *tls_database)
{
  g_return_if_fail (TOCSIN_IS_CONNECTION (self));

  if (!g_set_object (&self->tls_database, tls_database))
    return;
  if (self->state != TOCSIN_CONNECTION_CONNECTED)
    tocsin_connection_reconnect_now (self);
}

void
tocsin_connection_start (TocsinConnection *self)
{
  g_return_if_fail (TOCSIN_IS_CONNECTION (self));

  if (self->running)
    return;
  self->running = TRUE;
  self->attempt = 0;

  if (self->bus_cancellable == NULL && self->system_bus == NULL)
    {
      self->bus_cancellable = g_cancellable_new ();
      g_bus_get (G_BUS_TYPE_SYSTEM, self->bus_cancellable, on_system_bus, g_object_ref (self));
    }
  connect_now (self);
}

void
tocsin_connection_stop (TocsinConnection *self)
{
  g_return_if_fail (TOCSIN_IS_CONNECTION (self));

  self->running = FALSE;
  g_clear_handle_id (&self->retry_source, g_source_remove);
  cancel_connect (self);
  /* What was received and not passed on yet is asked for again at the next start. */
  drop_socket (self, SOUP_WEBSOCKET_CLOSE_NORMAL);
  set_state (self, TOCSIN_CONNECTION_STOPPED);
}

void
tocsin_connection_subscribe (TocsinConnection *self,
                             const char       *token,
                             gint64            cursor)
{
  g_return_if_fail (TOCSIN_IS_CONNECTION (self));
  g_return_if_fail (token != NULL);

  cursor = MAX (cursor, TOCSIN_CURSOR_NONE);
  g_hash_table_insert (self->cursors, g_strdup (token), g_memdup2 (&cursor, sizeof cursor));
  if (self->state == TOCSIN_CONNECTION_CONNECTED)
    send_subscribe (self, token, cursor);
}

gboolean
tocsin_connection_acknowledge (TocsinConnection *self,
                               gint64            channel_id,
                               gint64            message_id,
                               const char       *by)
{
  g_autofree char *text = NULL;

  g_return_val_if_fail (TOCSIN_IS_CONNECTION (self), FALSE);

  if (self->state != TOCSIN_CONNECTION_CONNECTED || self->link == NULL)
    return FALSE;
  text = tocsin_protocol_ack_request (channel_id, message_id, by);
  tocsin_link_send_text (self->link, text);
  return TRUE;
}

void
tocsin_connection_unsubscribe (TocsinConnection *self,
                               const char       *token)
{
  g_autoptr(JsonBuilder) builder = NULL;

  g_return_if_fail (TOCSIN_IS_CONNECTION (self));
  g_return_if_fail (token != NULL);

  if (!g_hash_table_contains (self->cursors, token))
    return;
  forget_token (self, token);

  builder = json_builder_new ();
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, "unsubscribe");
  json_builder_set_member_name (builder, "token");
  json_builder_add_string_value (builder, token);
  json_builder_end_object (builder);
  send_frame (self, builder);
}

gint64
tocsin_connection_get_cursor (TocsinConnection *self,
                              const char       *token)
{
  gint64 *cursor;

  g_return_val_if_fail (TOCSIN_IS_CONNECTION (self), -2);

  cursor = cursor_for_token (self, token);
  return cursor ? *cursor : -2;
}

guint
tocsin_connection_get_n_subscriptions (TocsinConnection *self)
{
  g_return_val_if_fail (TOCSIN_IS_CONNECTION (self), 0);
  return g_hash_table_size (self->cursors);
}

TocsinConnectionState
tocsin_connection_get_state (TocsinConnection *self)
{
  g_return_val_if_fail (TOCSIN_IS_CONNECTION (self), TOCSIN_CONNECTION_STOPPED);
  return self->state;
}

gint64
tocsin_connection_get_retry_time (TocsinConnection *self)
{
  g_return_val_if_fail (TOCSIN_IS_CONNECTION (self), 0);
  return self->retry_time;
}

guint
tocsin_connection_get_retry_seconds (TocsinConnection *self)
{
  gint64 left;

  g_return_val_if_fail (TOCSIN_IS_CONNECTION (self), 0);

  if (self->state != TOCSIN_CONNECTION_WAITING)
    return 0;
  left = self->retry_time - g_get_monotonic_time ();
  if (left <= 0)
    return 0;
  return (guint) ((left + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC);
}

const char *
tocsin_connection_get_last_error (TocsinConnection *self)
{
  g_return_val_if_fail (TOCSIN_IS_CONNECTION (self), NULL);
  return self->last_error;
}
