/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-deliveries-window.c: the "Deliveries" page. The relay's log comes as two lists
 * (docs/api.md): deliveries (one per forward and event, with its state) and their attempts. The
 * page shows attempts, newest first, because that is what an owner debugging a target reads
 * ("what did it answer, when is the next try"); a delivery not tried yet shows as one row of its
 * own. "Retry Now" sits on the newest row of each delivery that failed or is held back: one
 * button per delivery, since a retry is of the delivery, not of an attempt.
 *
 * "Your Action Presses" is the same page over the history's press log (D1's
 * tocsin_history_list_presses_async()): one row per attempt of a button pressed on this desktop,
 * and "Retry Now" presses the button again through the application's TocsinActionRunner.
 */
#define G_LOG_DOMAIN "tocsin-deliveries"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-a11y.h"
#include "tocsin-action-runner.h"
#include "tocsin-deliveries-window.h"
#include "tocsin-json.h"
#include "tocsin-owner.h"

/* The page is a list box of expander rows (a few widgets each): the relay's default 100
 * deliveries, and this many of the newest press attempts, keep it light. */
#define MAX_PRESSES 200

/* What one row shows: an attempt, or a delivery with none yet. Strings borrowed from the
 * answer, which outlives the rows' construction. */
typedef struct
{
  const char *time;          /* RFC 3339 UTC */
  const char *title;         /* NULL: "name · event" */
  const char *event;         /* "message", "acknowledge" */
  const char *name;          /* the forward's */
  const char *url;           /* host and path, as the relay logs it; may be NULL */
  gint64      status;        /* HTTP status, 0: none */
  const char *error;         /* may be NULL */
  gint64      duration_ms;   /* -1: not tried */
  const char *answer_start;  /* may be NULL */
  const char *next_retry;    /* may be NULL */
  const char *outcome;       /* "success", "retry", "error"; NULL: not tried */
  const char *state;         /* the delivery's: "pending", "delivered", "failed", "held" */
  const char *user;          /* who acknowledged (an acknowledge event), or NULL */
  gint64      attempt;       /* from 1; 0: not tried */
  gint64      delivery_id;   /* a press: its record's id */
  guint       action_index;  /* a press: which button */
  const char *kind;          /* a press: "view" or "http" */
  gboolean    can_retry;
} Entry;

struct _TocsinDeliveriesWindow
{
  AdwWindow parent_instance;

  /* template widgets */
  AdwToastOverlay *toast_overlay;
  AdwWindowTitle  *window_title;
  GtkStack        *stack;
  GtkSpinner      *spinner;
  AdwStatusPage   *empty_page;
  AdwStatusPage   *error_page;
  GtkLabel        *summary;
  GtkListBox      *list;

  /* owned */
  TocsinApplication  *app;
  TocsinOwnedChannel *channel;       /* NULL: the page shows this desktop's action presses */
  GCancellable       *cancellable;   /* the load and retries under way; cancelled on dispose */
  gboolean            loading;
  gboolean            reload;        /* a press ended while loading: load again after */
};

G_DEFINE_FINAL_TYPE (TocsinDeliveriesWindow, tocsin_deliveries_window, ADW_TYPE_WINDOW)

static void
toast (TocsinDeliveriesWindow *self,
       const char             *text)
{
  adw_toast_overlay_add_toast (self->toast_overlay, adw_toast_new (text));
}

static void
set_state (TocsinDeliveriesWindow *self,
           const char             *state)
{
  gtk_stack_set_visible_child_name (self->stack, state);
  gtk_spinner_set_spinning (self->spinner, g_str_equal (state, "loading"));
}

const char *
tocsin_deliveries_window_get_state (TocsinDeliveriesWindow *self)
{
  g_return_val_if_fail (TOCSIN_IS_DELIVERIES_WINDOW (self), NULL);
  return gtk_stack_get_visible_child_name (self->stack);
}

/* "Dec 6, 19:40:02" in local time, or the text as given when it is not a time. */
static char *
format_time (const char *rfc3339)
{
  g_autoptr(GDateTime) when = rfc3339 ? g_date_time_new_from_iso8601 (rfc3339, NULL) : NULL;
  g_autoptr(GDateTime) local = when ? g_date_time_to_local (when) : NULL;

  if (local == NULL)
    return g_strdup (rfc3339 ? rfc3339 : "");
  return g_date_time_format (local, "%x %X");
}

static const char *
event_label (const char *event)
{
  if (g_strcmp0 (event, "acknowledge") == 0)
    return _("On acknowledge");
  return _("On message");
}

static const char *
state_label (const char *state)
{
  if (g_strcmp0 (state, "delivered") == 0)
    return _("Delivered");
  if (g_strcmp0 (state, "failed") == 0)
    return _("Failed");
  if (g_strcmp0 (state, "held") == 0)
    return _("Held back: its host failed too often");
  return _("Waiting to be sent");
}

static GtkWidget *
detail_row (const char *title,
            const char *value)
{
  GtkWidget *row = adw_action_row_new ();

  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), value);
  adw_action_row_set_subtitle_lines (ADW_ACTION_ROW (row), 0);
  gtk_widget_add_css_class (row, "property");
  return row;
}

static void retry_clicked_cb (GtkButton *button, TocsinDeliveriesWindow *self);

static GtkWidget *
entry_row_new (TocsinDeliveriesWindow *self,
               const Entry            *entry)
{
  GtkWidget *row = adw_expander_row_new ();
  GtkWidget *icon;
  g_autofree char *when = format_time (entry->time);
  g_autofree char *title = NULL;
  g_autoptr(GString) subtitle = g_string_new (when);
  gboolean ok = g_strcmp0 (entry->outcome, "success") == 0;
  const char *icon_name;
  const char *icon_label;

  if (entry->title != NULL)
    title = g_strdup (entry->title);
  else
    /* Translators: a forward's name, then when it is sent, e.g. "Ticket · On message" */
    title = g_strdup_printf (_("%s · %s"), entry->name ? entry->name : "",
                             event_label (entry->event));
  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);

  if (entry->attempt == 0)
    g_string_append_printf (subtitle, " · %s", state_label (entry->state));
  else
    {
      gboolean error_says_status = entry->error != NULL &&
                                   g_str_has_prefix (entry->error, "HTTP ");

      /* An error that starts with the status ("HTTP 500 Internal Server Error") says it. */
      if (entry->status > 0 && !error_says_status)
        /* Translators: an HTTP status such as 503 */
        g_string_append_printf (subtitle, _(" · HTTP %u"), (guint) entry->status);
      if (entry->error != NULL && *entry->error != '\0')
        g_string_append_printf (subtitle, " · %s", entry->error);
      if (ok && g_strcmp0 (entry->kind, "view") == 0)
        g_string_append_printf (subtitle, " · %s", _("Opened"));
      if (entry->duration_ms >= 0)
        /* Translators: how long the target took to answer, in milliseconds */
        g_string_append_printf (subtitle, _(" · %u ms"), (guint) entry->duration_ms);
    }
  adw_expander_row_set_subtitle (ADW_EXPANDER_ROW (row), subtitle->str);

  if (entry->attempt == 0)
    {
      icon_name = g_strcmp0 (entry->state, "held") == 0 ? "dialog-warning-symbolic"
                                                          : "content-loading-symbolic";
      icon_label = state_label (entry->state);
    }
  else if (ok)
    {
      icon_name = "emblem-ok-symbolic";
      icon_label = _("Succeeded");
    }
  else if (g_strcmp0 (entry->outcome, "retry") == 0)
    {
      icon_name = "view-refresh-symbolic";
      icon_label = _("Failed, will be retried");
    }
  else
    {
      icon_name = "dialog-warning-symbolic";
      icon_label = _("Failed");
    }
  icon = gtk_image_new_from_icon_name (icon_name);
  gtk_widget_set_tooltip_text (icon, icon_label);
  gtk_accessible_update_property (GTK_ACCESSIBLE (icon), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  icon_label, -1);
  if (!ok)
    gtk_widget_add_css_class (icon, "warning");
  adw_expander_row_add_prefix (ADW_EXPANDER_ROW (row), icon);

  if (entry->can_retry)
    {
      GtkWidget *button = gtk_button_new_with_mnemonic (_("Retry _Now"));
      g_autofree char *name = g_strdup_printf (_("Retry %s now"), entry->name ? entry->name : "");

      gtk_widget_set_valign (button, GTK_ALIGN_CENTER);
      gtk_accessible_update_property (GTK_ACCESSIBLE (button), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      name, -1);
      g_object_set_data_full (G_OBJECT (button), "delivery-id",
                              g_memdup2 (&entry->delivery_id, sizeof entry->delivery_id), g_free);
      g_object_set_data (G_OBJECT (button), "action-index",
                         GUINT_TO_POINTER (entry->action_index));
      g_signal_connect_object (button, "clicked", G_CALLBACK (retry_clicked_cb), self, 0);
      adw_expander_row_add_action (ADW_EXPANDER_ROW (row), button);
    }

  if (entry->url != NULL)
    adw_expander_row_add_row (ADW_EXPANDER_ROW (row), detail_row (_("Address"), entry->url));
  if (entry->attempt > 0)
    {
      g_autofree char *number = g_strdup_printf ("%" G_GINT64_FORMAT, entry->attempt);

      adw_expander_row_add_row (ADW_EXPANDER_ROW (row), detail_row (_("Attempt"), number));
    }
  if (entry->answer_start != NULL && *entry->answer_start != '\0')
    adw_expander_row_add_row (ADW_EXPANDER_ROW (row),
                              detail_row (_("Start of the answer"), entry->answer_start));
  if (entry->next_retry != NULL)
    {
      g_autofree char *next = format_time (entry->next_retry);

      adw_expander_row_add_row (ADW_EXPANDER_ROW (row), detail_row (_("Next retry"), next));
    }
  if (entry->user != NULL && *entry->user != '\0')
    adw_expander_row_add_row (ADW_EXPANDER_ROW (row),
                              detail_row (_("Acknowledged by"), entry->user));
  if (entry->state != NULL)
    adw_expander_row_add_row (ADW_EXPANDER_ROW (row),
                              detail_row (_("Delivery"), state_label (entry->state)));
  return row;
}

static JsonArray *
array_member (JsonObject *object,
              const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

static gint64
int_member (JsonObject *object,
            const char *name,
            gint64      fallback)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return fallback;
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    return json_node_get_int (node);
  if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
    return (gint64) json_node_get_double (node);
  return fallback;
}

static int
compare_entries (gconstpointer a,
                 gconstpointer b)
{
  const Entry *x = a, *y = b;
  /* RFC 3339 UTC with the same precision sorts as text; newest first. */
  int by_time = g_strcmp0 (y->time, x->time);

  if (by_time != 0)
    return by_time;
  if (x->delivery_id != y->delivery_id)
    return x->delivery_id < y->delivery_id ? 1 : -1;
  return x->attempt < y->attempt ? 1 : x->attempt > y->attempt ? -1 : 0;
}

static void
clear_list (TocsinDeliveriesWindow *self)
{
  GtkWidget *child;

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->list))) != NULL)
    gtk_list_box_remove (self->list, child);
}

/* Builds the rows from the relay's answer (a peer's JSON: any member may be missing or of
 * another type, and is then shown as absent). */
static void
show_answer (TocsinDeliveriesWindow *self,
             JsonObject             *answer)
{
  JsonArray *deliveries = array_member (answer, "deliveries");
  JsonArray *attempts = array_member (answer, "attempts");
  /* Keys: the deliveries' ids (owned); "tried" borrows them. */
  g_autoptr(GHashTable) by_id = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  g_autoptr(GHashTable) tried = g_hash_table_new (g_int64_hash, g_int64_equal);
  g_autoptr(GHashTable) retry_shown = g_hash_table_new (g_int64_hash, g_int64_equal);
  g_autoptr(GArray) entries = g_array_new (FALSE, TRUE, sizeof (Entry));
  g_autofree char *summary = NULL;
  guint n_failed = 0;
  guint n_attempts = 0;

  clear_list (self);
  for (guint i = 0; deliveries != NULL && i < json_array_get_length (deliveries); i++)
    {
      JsonNode *node = json_array_get_element (deliveries, i);
      JsonObject *delivery;
      gint64 *id;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        continue;
      delivery = json_node_get_object (node);
      id = g_new (gint64, 1);
      *id = int_member (delivery, "id", 0);
      g_hash_table_insert (by_id, id, delivery);
    }

  for (guint i = 0; attempts != NULL && i < json_array_get_length (attempts); i++)
    {
      JsonNode *node = json_array_get_element (attempts, i);
      JsonObject *attempt;
      gpointer key = NULL, delivery = NULL;
      Entry entry = { 0, };

      if (!JSON_NODE_HOLDS_OBJECT (node))
        continue;
      attempt = json_node_get_object (node);
      entry.delivery_id = int_member (attempt, "delivery_id", 0);
      if (g_hash_table_lookup_extended (by_id, &entry.delivery_id, &key, &delivery))
        g_hash_table_add (tried, key);
      entry.time = tocsin_json_get_string (attempt, "at", NULL);
      entry.event = tocsin_json_get_string (attempt, "event", NULL);
      entry.name = tocsin_json_get_string (attempt, "forward", NULL);
      entry.url = tocsin_json_get_string (attempt, "url", NULL);
      entry.status = int_member (attempt, "status", 0);
      entry.error = tocsin_json_get_string (attempt, "error", NULL);
      entry.duration_ms = int_member (attempt, "duration_ms", -1);
      entry.answer_start = tocsin_json_get_string (attempt, "answer_start", NULL);
      entry.next_retry = tocsin_json_get_string (attempt, "next_retry_at", NULL);
      entry.outcome = tocsin_json_get_string (attempt, "outcome", "error");
      entry.attempt = MAX (int_member (attempt, "attempt", 1), 1);
      entry.state = delivery ? tocsin_json_get_string (delivery, "state", NULL) : NULL;
      entry.user = delivery ? tocsin_json_get_string (delivery, "user", NULL) : NULL;
      g_array_append_val (entries, entry);
    }

  /* Deliveries with no attempt yet (waiting, or held before the first try). */
  {
    GHashTableIter iter;
    gpointer key, value;

    g_hash_table_iter_init (&iter, by_id);
    while (g_hash_table_iter_next (&iter, &key, &value))
      {
        JsonObject *delivery = value;
        Entry entry = { 0, };

        if (g_hash_table_contains (tried, key))
          continue;
        entry.delivery_id = *(gint64 *) key;
        entry.time = tocsin_json_get_string (delivery, "created_at", NULL);
        entry.event = tocsin_json_get_string (delivery, "event", NULL);
        entry.name = tocsin_json_get_string (delivery, "forward", NULL);
        entry.duration_ms = -1;
        entry.next_retry = tocsin_json_get_string (delivery, "next_attempt_at", NULL);
        entry.state = tocsin_json_get_string (delivery, "state", NULL);
        entry.user = tocsin_json_get_string (delivery, "user", NULL);
        g_array_append_val (entries, entry);
      }
  }

  g_array_sort (entries, compare_entries);
  for (guint i = 0; i < entries->len; i++)
    {
      Entry *entry = &g_array_index (entries, Entry, i);
      gboolean retryable = g_strcmp0 (entry->state, "failed") == 0 ||
                           g_strcmp0 (entry->state, "held") == 0;

      /* The newest row of a delivery carries its button. */
      if (retryable && !g_hash_table_contains (retry_shown, &entry->delivery_id))
        {
          entry->can_retry = TRUE;
          g_hash_table_add (retry_shown, &entry->delivery_id);
          n_failed++;
        }
      n_attempts += entry->attempt > 0;
      gtk_list_box_append (self->list, entry_row_new (self, entry));
    }

  if (entries->len == 0)
    {
      set_state (self, "empty");
      return;
    }
  if (n_failed > 0)
    /* Translators: the number of deliveries that need a look; "Retry Now" is the button */
    summary = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                            "%u delivery failed or is held back: “Retry Now” "
                                            "sends it again at once.",
                                            "%u deliveries failed or are held back: “Retry Now” "
                                            "sends them again at once.", n_failed),
                               n_failed);
  else
    summary = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u attempt, newest first.",
                                            "%u attempts, newest first.", n_attempts),
                               n_attempts);
  gtk_label_set_text (self->summary, summary);
  set_state (self, "list");
}

static const char *
outcome_name (TocsinAttemptOutcome outcome)
{
  switch (outcome)
    {
    case TOCSIN_ATTEMPT_SUCCESS:
      return "success";
    case TOCSIN_ATTEMPT_RETRY:
      return "retry";
    case TOCSIN_ATTEMPT_FINAL_ERROR:
    default:
      return "error";
    }
}

static char *
iso_time (gint64 unix_ms)
{
  g_autoptr(GDateTime) when = unix_ms > 0 ? g_date_time_new_from_unix_utc (unix_ms / 1000) : NULL;

  return when ? g_date_time_format_iso8601 (when) : NULL;
}

/* The press log, newest first as the history gives it; Retry Now on the newest attempt of each
 * button whose last attempt did not succeed. */
static void
show_presses (TocsinDeliveriesWindow *self,
              GPtrArray              *presses)
{
  g_autoptr(GPtrArray) strings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  guint n_failed = 0;
  g_autofree char *summary = NULL;

  clear_list (self);
  for (guint i = 0; i < presses->len; i++)
    {
      const TocsinActionPress *press = presses->pdata[i];
      char *key = g_strdup_printf ("%" G_GINT64_FORMAT "/%u", press->record_id,
                                   press->action_index);
      Entry entry = { 0, };
      char *title, *time, *next;

      /* Translators: a button's label, then the channel, e.g. "Silence 1 h · Alerts" */
      title = press->channel_name ? g_strdup_printf (_("%s · %s"), press->label ? press->label : "",
                                                     press->channel_name)
                                  : g_strdup (press->label ? press->label : "");
      time = iso_time (press->pressed_at_ms);
      next = press->outcome == TOCSIN_ATTEMPT_RETRY ? iso_time (press->retry_at_ms) : NULL;
      g_ptr_array_add (strings, title);
      g_ptr_array_add (strings, time);
      g_ptr_array_add (strings, next);
      entry.title = title;
      entry.time = time;
      entry.name = press->label;
      entry.url = press->url;
      entry.status = press->status;
      entry.error = press->error;
      entry.duration_ms = press->duration_ms;
      entry.answer_start = press->answer_start;
      entry.next_retry = next;
      entry.outcome = outcome_name (press->outcome);
      entry.attempt = MAX (press->attempt, 1);
      entry.delivery_id = press->record_id;
      entry.action_index = press->action_index;
      entry.kind = press->kind;
      if (g_hash_table_add (seen, key) && press->outcome != TOCSIN_ATTEMPT_SUCCESS)
        {
          entry.can_retry = TRUE;
          n_failed++;
        }
      gtk_list_box_append (self->list, entry_row_new (self, &entry));
    }

  if (presses->len == 0)
    {
      set_state (self, "empty");
      return;
    }
  if (n_failed > 0)
    summary = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                            "%u button’s last press did not succeed: “Retry "
                                            "Now” presses it again.",
                                            "%u buttons’ last presses did not succeed: “Retry "
                                            "Now” presses them again.", n_failed),
                               n_failed);
  else
    summary = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u attempt, newest first.",
                                            "%u attempts, newest first.", presses->len),
                               presses->len);
  gtk_label_set_text (self->summary, summary);
  set_state (self, "list");
}

static void load_done (TocsinDeliveriesWindow *self);

static void
presses_loaded_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(TocsinDeliveriesWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) presses = NULL;

  presses = tocsin_history_list_presses_finish (TOCSIN_HISTORY (object), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (presses == NULL)
    {
      g_autofree char *text = g_strdup_printf (_("The history could not be read: %s"),
                                               error->message);

      clear_list (self);
      adw_status_page_set_description (self->error_page, text);
      set_state (self, "error");
    }
  else
    show_presses (self, presses);
  load_done (self);
}

static void
loaded_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(TocsinDeliveriesWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) answer = NULL;

  answer = tocsin_owner_request_finish (TOCSIN_OWNER (object), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (answer == NULL)
    {
      g_autofree char *text = g_strdup_printf (_("The relay did not answer: %s"), error->message);

      clear_list (self);
      adw_status_page_set_description (self->error_page, text);
      set_state (self, "error");
    }
  else
    show_answer (self, answer);
  load_done (self);
}

static void
load_done (TocsinDeliveriesWindow *self)
{
  self->loading = FALSE;
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "deliveries.refresh", TRUE);
  if (self->reload)
    {
      self->reload = FALSE;
      tocsin_deliveries_window_refresh (self);
    }
}

void
tocsin_deliveries_window_refresh (TocsinDeliveriesWindow *self)
{
  g_return_if_fail (TOCSIN_IS_DELIVERIES_WINDOW (self));

  if (self->loading)
    return;
  self->loading = TRUE;
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "deliveries.refresh", FALSE);
  set_state (self, "loading");
  if (self->channel == NULL)
    tocsin_history_list_presses_async (tocsin_application_get_history (self->app), 0,
                                       MAX_PRESSES,
                                       self->cancellable, presses_loaded_cb, g_object_ref (self));
  else
    tocsin_owner_list_deliveries_async (tocsin_application_get_owner (self->app), self->channel,
                                        0, self->cancellable, loaded_cb, g_object_ref (self));
}

static void
retried_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(TocsinDeliveriesWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) answer = NULL;

  answer = tocsin_owner_request_finish (TOCSIN_OWNER (object), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (answer == NULL)
    {
      g_autofree char *text = g_strdup_printf (_("Not retried: %s"), error->message);

      toast (self, text);
      return;
    }
  toast (self, _("Sent again"));
  tocsin_deliveries_window_refresh (self);
}

typedef struct
{
  TocsinDeliveriesWindow *self;   /* owned */
  guint                   index;
} Repress;

static void
record_loaded_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Repress *repress = user_data;
  g_autoptr(TocsinDeliveriesWindow) self = repress->self;
  guint index = repress->index;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinRecord) record = NULL;

  g_free (repress);
  record = tocsin_history_get_record_finish (TOCSIN_HISTORY (object), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (record == NULL ||
      !tocsin_action_runner_press (tocsin_application_get_action_runner (self->app), record,
                                   index))
    {
      toast (self, record == NULL ? _("Not pressed again: the notification is no longer kept.")
                                  : _("Not pressed again: it is still being sent."));
      tocsin_deliveries_window_refresh (self);
      return;
    }
  /* The list loads again at "press-done". */
  toast (self, _("Pressed again"));
}

static void
press_done_cb (TocsinDeliveriesWindow *self)
{
  if (self->loading)
    self->reload = TRUE;
  else
    tocsin_deliveries_window_refresh (self);
}

static void
retry_clicked_cb (GtkButton              *button,
                  TocsinDeliveriesWindow *self)
{
  const gint64 *id = g_object_get_data (G_OBJECT (button), "delivery-id");

  g_return_if_fail (id != NULL);
  /* One press, one retry: the list is rebuilt when it is done. */
  gtk_widget_set_sensitive (GTK_WIDGET (button), FALSE);
  if (self->channel == NULL)
    {
      Repress *repress = g_new0 (Repress, 1);

      repress->self = g_object_ref (self);
      repress->index = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (button), "action-index"));
      tocsin_history_get_record_async (tocsin_application_get_history (self->app), *id,
                                       self->cancellable, record_loaded_cb, repress);
      return;
    }
  tocsin_owner_retry_delivery_async (tocsin_application_get_owner (self->app), self->channel, *id,
                                     self->cancellable, retried_cb, g_object_ref (self));
}

static void
refresh_action (GtkWidget  *widget,
                const char *action_name,
                GVariant   *param)
{
  tocsin_deliveries_window_refresh (TOCSIN_DELIVERIES_WINDOW (widget));
}

static void
tocsin_deliveries_window_dispose (GObject *object)
{
  TocsinDeliveriesWindow *self = TOCSIN_DELIVERIES_WINDOW (object);

  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->app);
  g_clear_pointer (&self->channel, tocsin_owned_channel_free);
  G_OBJECT_CLASS (tocsin_deliveries_window_parent_class)->dispose (object);
}

static void
tocsin_deliveries_window_class_init (TocsinDeliveriesWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = tocsin_deliveries_window_dispose;

  gtk_widget_class_set_template_from_resource
    (widget_class, "/io/github/tocsin/Tocsin/tocsin-deliveries-window.ui");
  gtk_widget_class_bind_template_child (widget_class, TocsinDeliveriesWindow, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, TocsinDeliveriesWindow, window_title);
  gtk_widget_class_bind_template_child (widget_class, TocsinDeliveriesWindow, stack);
  gtk_widget_class_bind_template_child (widget_class, TocsinDeliveriesWindow, spinner);
  gtk_widget_class_bind_template_child (widget_class, TocsinDeliveriesWindow, empty_page);
  gtk_widget_class_bind_template_child (widget_class, TocsinDeliveriesWindow, error_page);
  gtk_widget_class_bind_template_child (widget_class, TocsinDeliveriesWindow, summary);
  gtk_widget_class_bind_template_child (widget_class, TocsinDeliveriesWindow, list);
  gtk_widget_class_install_action (widget_class, "deliveries.refresh", NULL, refresh_action);
}

static void
tocsin_deliveries_window_init (TocsinDeliveriesWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  tocsin_a11y_fix_button_names (GTK_WIDGET (self));
  self->cancellable = g_cancellable_new ();
}

GtkWidget *
tocsin_deliveries_window_new_for_channel (GtkWindow                *parent,
                                          TocsinApplication        *app,
                                          const TocsinOwnedChannel *channel)
{
  TocsinDeliveriesWindow *self;

  g_return_val_if_fail (TOCSIN_IS_APPLICATION (app), NULL);
  g_return_val_if_fail (channel != NULL, NULL);

  self = g_object_new (TOCSIN_TYPE_DELIVERIES_WINDOW, "transient-for", parent, NULL);
  self->app = g_object_ref (app);
  self->channel = tocsin_owned_channel_copy (channel);
  adw_window_title_set_subtitle (self->window_title, channel->name ? channel->name : "");
  tocsin_deliveries_window_refresh (self);
  return GTK_WIDGET (self);
}

GtkWidget *
tocsin_deliveries_window_new_for_presses (GtkWindow         *parent,
                                          TocsinApplication *app)
{
  TocsinDeliveriesWindow *self;

  g_return_val_if_fail (TOCSIN_IS_APPLICATION (app), NULL);

  self = g_object_new (TOCSIN_TYPE_DELIVERIES_WINDOW,
                       "transient-for", parent,
                       "title", _("Your Action Presses"),
                       NULL);
  self->app = g_object_ref (app);
  adw_window_title_set_title (self->window_title, _("Your Action Presses"));
  adw_window_title_set_subtitle (self->window_title, _("Buttons pressed on this computer"));
  adw_status_page_set_title (self->empty_page, _("No Action Presses Yet"));
  adw_status_page_set_description (self->empty_page,
                                   _("When you press a button on a notification, each attempt "
                                     "and what it got back is listed here."));
  adw_status_page_set_title (self->error_page, _("Action Presses Could Not Be Loaded"));
  g_signal_connect_object (tocsin_application_get_action_runner (app), "press-done",
                           G_CALLBACK (press_done_cb), self, G_CONNECT_SWAPPED);
  tocsin_deliveries_window_refresh (self);
  return GTK_WIDGET (self);
}
