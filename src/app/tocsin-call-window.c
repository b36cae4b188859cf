/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-call-window.c: a ringing call window (see the header).
 *
 * The ring is the sound theme's "phone-incoming-call" played through GSound (libcanberra),
 * again each time it ends, with a pause between. It starts at -12 dB and grows by 6 dB every
 * ESCALATE_SECONDS up to full volume, when the window also comes back to the front. Without a
 * sound server (a headless session, a test) the window rings silently: it still says
 * "Ringing" and still escalates.
 */
#define G_LOG_DOMAIN "tocsin"

#include "config.h"

#include <glib/gi18n.h>
#include <gsound.h>

#include "tocsin-call-window.h"

#define RING_PAUSE_MS     1200
#define ESCALATE_SECONDS  30
#define START_VOLUME_DB   (-12.0)
#define VOLUME_STEP_DB    6.0

struct _TocsinCallWindow
{
  AdwWindow         parent_instance;

  AdwStatusPage    *status_page;
  GtkLabel         *body_label;
  GtkLabel         *state_label;
  GtkWidget        *answer_box;
  GtkWidget        *close_button;
  GtkWidget        *acknowledge_button;

  TocsinRecord     *record;
  GSoundContext    *sound;
  GCancellable     *cancellable;   /* the sound playing now */
  gboolean          ringing;
  gboolean          answered;      /* "answered" was emitted */
  double            volume_db;
  guint             escalations;
  guint             pause_id;
  guint             escalate_id;
};

G_DEFINE_FINAL_TYPE (TocsinCallWindow, tocsin_call_window, ADW_TYPE_WINDOW)

enum {
  SIGNAL_ANSWERED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void play_ring (TocsinCallWindow *self);

static gboolean
ring_again (gpointer user_data)
{
  TocsinCallWindow *self = user_data;

  self->pause_id = 0;
  play_ring (self);
  return G_SOURCE_REMOVE;
}

static void
ring_done (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(TocsinCallWindow) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!gsound_context_play_full_finish (GSOUND_CONTEXT (object), result, &error) &&
      !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      /* No sound server, or no such sound: ring silently rather than spin. */
      g_debug ("The call’s ring did not play: %s", error->message);
      return;
    }
  if (self->ringing && self->pause_id == 0)
    self->pause_id = g_timeout_add (RING_PAUSE_MS, ring_again, self);
}

static void
play_ring (TocsinCallWindow *self)
{
  g_autofree char *volume = NULL;
  g_autoptr(GError) error = NULL;

  if (!self->ringing)
    return;
  if (self->sound == NULL)
    {
      self->sound = gsound_context_new (NULL, &error);
      if (self->sound == NULL)
        {
          g_debug ("No sound for calls: %s", error->message);
          return;
        }
    }
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  volume = g_strdup_printf ("%.1f", self->volume_db);
  gsound_context_play_full (self->sound, self->cancellable, ring_done, g_object_ref (self),
                            GSOUND_ATTR_EVENT_ID, "phone-incoming-call",
                            GSOUND_ATTR_EVENT_DESCRIPTION, _("Incoming call"),
                            GSOUND_ATTR_CANBERRA_VOLUME, volume,
                            NULL);
}

static void
update_state (TocsinCallWindow *self)
{
  g_autofree char *text = NULL;

  if (!self->ringing)
    return;
  if (self->escalations == 0)
    text = g_strdup (_("Ringing…"));
  else
    text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "Ringing for %u minute",
                                         "Ringing for %u minutes",
                                         (self->escalations * ESCALATE_SECONDS) / 60),
                            MAX (1, (self->escalations * ESCALATE_SECONDS) / 60));
  gtk_label_set_text (self->state_label, text);
}

/* Unanswered: louder, and back in front. */
static gboolean
escalate (gpointer user_data)
{
  TocsinCallWindow *self = user_data;

  self->escalations++;
  self->volume_db = MIN (0.0, self->volume_db + VOLUME_STEP_DB);
  update_state (self);
  gtk_window_present (GTK_WINDOW (self));
  return G_SOURCE_CONTINUE;
}

static void
stop_ringing (TocsinCallWindow *self)
{
  self->ringing = FALSE;
  g_clear_handle_id (&self->pause_id, g_source_remove);
  g_clear_handle_id (&self->escalate_id, g_source_remove);
  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
  gtk_widget_set_visible (self->answer_box, FALSE);
  gtk_widget_set_visible (self->close_button, TRUE);
  gtk_widget_grab_focus (self->close_button);
}

static void
answer (TocsinCallWindow *self,
        gboolean          acknowledged)
{
  if (self->answered)
    return;
  self->answered = TRUE;
  stop_ringing (self);
  gtk_label_set_text (self->state_label, acknowledged ? _("Acknowledged") : _("Dismissed"));
  g_signal_emit (self, signals[SIGNAL_ANSWERED], 0, acknowledged);
  if (!acknowledged)
    gtk_window_close (GTK_WINDOW (self));
}

static void
acknowledge_activated (GtkWidget  *widget,
                       const char *action_name,
                       GVariant   *parameter)
{
  answer (TOCSIN_CALL_WINDOW (widget), TRUE);
}

static void
dismiss_activated (GtkWidget  *widget,
                   const char *action_name,
                   GVariant   *parameter)
{
  answer (TOCSIN_CALL_WINDOW (widget), FALSE);
}

/* Closing the window while it rings is a dismissal. */
static gboolean
tocsin_call_window_close_request (GtkWindow *window)
{
  TocsinCallWindow *self = TOCSIN_CALL_WINDOW (window);

  if (!self->answered)
    {
      self->answered = TRUE;
      stop_ringing (self);
      g_signal_emit (self, signals[SIGNAL_ANSWERED], 0, FALSE);
    }
  return GTK_WINDOW_CLASS (tocsin_call_window_parent_class)->close_request (window);
}

static void
tocsin_call_window_dispose (GObject *object)
{
  TocsinCallWindow *self = TOCSIN_CALL_WINDOW (object);

  self->ringing = FALSE;
  g_clear_handle_id (&self->pause_id, g_source_remove);
  g_clear_handle_id (&self->escalate_id, g_source_remove);
  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->sound);
  g_clear_object (&self->record);
  gtk_widget_dispose_template (GTK_WIDGET (self), TOCSIN_TYPE_CALL_WINDOW);
  G_OBJECT_CLASS (tocsin_call_window_parent_class)->dispose (object);
}

static void
tocsin_call_window_class_init (TocsinCallWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  object_class->dispose = tocsin_call_window_dispose;
  window_class->close_request = tocsin_call_window_close_request;

  /* (gboolean acknowledged) */
  signals[SIGNAL_ANSWERED] =
    g_signal_new ("answered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_BOOLEAN);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/tocsin/Tocsin/tocsin-call-window.ui");
  gtk_widget_class_bind_template_child (widget_class, TocsinCallWindow, status_page);
  gtk_widget_class_bind_template_child (widget_class, TocsinCallWindow, body_label);
  gtk_widget_class_bind_template_child (widget_class, TocsinCallWindow, state_label);
  gtk_widget_class_bind_template_child (widget_class, TocsinCallWindow, answer_box);
  gtk_widget_class_bind_template_child (widget_class, TocsinCallWindow, close_button);
  gtk_widget_class_bind_template_child (widget_class, TocsinCallWindow, acknowledge_button);
  gtk_widget_class_install_action (widget_class, "call.acknowledge", NULL,
                                   acknowledge_activated);
  gtk_widget_class_install_action (widget_class, "call.dismiss", NULL, dismiss_activated);
}

static void
tocsin_call_window_init (TocsinCallWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->volume_db = START_VOLUME_DB;
}

TocsinCallWindow *
tocsin_call_window_new (GtkApplication *application,
                        TocsinRecord   *record,
                        const char     *channel_name)
{
  TocsinCallWindow *self;
  const char *title;
  const char *body;
  g_autofree char *window_title = NULL;

  g_return_val_if_fail (TOCSIN_IS_RECORD (record), NULL);

  self = g_object_new (TOCSIN_TYPE_CALL_WINDOW, "application", application, NULL);
  self->record = g_object_ref (record);
  title = tocsin_record_get_title (record);
  body = tocsin_record_get_body (record);
  if (channel_name == NULL || *channel_name == '\0')
    channel_name = _("Unnamed channel");
  /* Plain text everywhere: a status page's title and description are not markup. */
  adw_status_page_set_title (self->status_page, title && *title ? title : channel_name);
  adw_status_page_set_description (self->status_page, NULL);
  gtk_label_set_text (self->body_label, body ? body : "");
  gtk_widget_set_visible (GTK_WIDGET (self->body_label), body != NULL && *body != '\0');
  /* Translators: the window's title while a call rings; %s is the channel's name. */
  window_title = g_strdup_printf (_("Call from %s"), channel_name);
  gtk_window_set_title (GTK_WINDOW (self), window_title);

  self->ringing = TRUE;
  update_state (self);
  self->escalate_id = g_timeout_add_seconds (ESCALATE_SECONDS, escalate, self);
  play_ring (self);
  gtk_window_set_default_widget (GTK_WINDOW (self), self->acknowledge_button);
  gtk_widget_grab_focus (self->acknowledge_button);
  return self;
}

TocsinRecord *
tocsin_call_window_get_record (TocsinCallWindow *self)
{
  g_return_val_if_fail (TOCSIN_IS_CALL_WINDOW (self), NULL);
  return self->record;
}

gboolean
tocsin_call_window_get_ringing (TocsinCallWindow *self)
{
  g_return_val_if_fail (TOCSIN_IS_CALL_WINDOW (self), FALSE);
  return self->ringing;
}

void
tocsin_call_window_answered_by (TocsinCallWindow *self,
                                const char       *by)
{
  g_autofree char *text = NULL;

  g_return_if_fail (TOCSIN_IS_CALL_WINDOW (self));

  self->answered = TRUE;
  stop_ringing (self);
  if (by != NULL && *by != '\0')
    /* Translators: %s is the name of the person who answered the call. */
    text = g_strdup_printf (_("Acknowledged by %s"), by);
  else
    text = g_strdup (_("Acknowledged by someone else on this channel"));
  gtk_label_set_text (self->state_label, text);
}

void
tocsin_call_window_set_ack_sent (TocsinCallWindow *self,
                                 gboolean          sent)
{
  g_return_if_fail (TOCSIN_IS_CALL_WINDOW (self));

  gtk_label_set_text (self->state_label,
                      sent ? _("Acknowledged; the channel’s other subscribers are told")
                           : _("Acknowledged here, but the relay is not connected: the "
                               "channel’s other subscribers are not told"));
}
