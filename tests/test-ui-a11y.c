/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-ui-a11y.c: the app as a screen reader meets it. The real window (and the channel editor,
 * with a forward and an action, the subscribe dialog, preferences, Record Details, the
 * Deliveries page) runs here against a real relay, with
 * accessibility on as on every desktop; tests/a11y-walk.py, Debian's python3-pyatspi, walks it
 * over AT-SPI on the test's private bus (build-aux/with-dbusmock.sh starts the accessibility
 * bus) and checks that every actionable widget has a role and a name, and that the records list
 * can be walked with the keyboard alone (xdotool key presses). The main loop keeps running
 * while the walker asks, since GTK answers AT-SPI from it.
 */
#define G_LOG_DOMAIN "test-ui"

#include "config.h"

#include <adwaita.h>
#include <gdk/x11/gdkx.h>

#include "tocsin-application.h"
#include "tocsin-channel-editor.h"
#include "tocsin-deliveries-window.h"
#include "tocsin-test-relay.h"
#include "tocsin-test-ui.h"
#include "tocsin-window.h"

#define ROWS 4

typedef struct
{
  char              *tmpdir;
  TocsinTestRelay   *relay;
  JsonObject        *channel;
  TocsinApplication *app;
  TocsinWindow      *window;
} Fixture;

static Fixture fx;

static gboolean
walker_available (void)
{
  g_autofree char *xdotool = g_find_program_in_path ("xdotool");
  int status = 0;

  if (xdotool == NULL)
    return FALSE;
  return g_spawn_sync (NULL, (char *[]) { (char *) "/usr/bin/python3", (char *) "-c",
                                          (char *) "import pyatspi", NULL },
                       NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                       NULL, NULL, NULL, &status, NULL)
         && g_spawn_check_wait_status (status, NULL);
}

typedef struct
{
  gboolean  done;
  gboolean  ok;
  char     *output;
} Walk;

static void
walker_done (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  Walk *walk = user_data;
  g_autoptr(GError) error = NULL;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (object), result, &walk->output, NULL,
                                        &error);
  g_assert_no_error (error);
  walk->ok = g_subprocess_get_successful (G_SUBPROCESS (object));
  walk->done = TRUE;
}

/* Runs the walker once against this process with @args (NULL-terminated), the main loop
 * turning meanwhile. Returns whether it passed; *@output gets what it printed. */
static gboolean
run_walker_once (const char * const *args,
                 char              **output)
{
  const char *srcdir = g_getenv ("G_TEST_SRCDIR");
  g_autofree char *script = g_build_filename (srcdir ? srcdir : ".", "a11y-walk.py", NULL);
  g_autofree char *pid = g_strdup_printf ("%d", (int) getpid ());
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) walker = NULL;
  g_autoptr(GError) error = NULL;
  Walk walk = { 0 };

  g_ptr_array_add (argv, (char *) "/usr/bin/python3");
  g_ptr_array_add (argv, (char *) "-u");
  g_ptr_array_add (argv, script);
  g_ptr_array_add (argv, (char *) "--pid");
  g_ptr_array_add (argv, pid);
  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, (char *) args[i]);
  g_ptr_array_add (argv, NULL);

  walker = g_subprocess_newv ((const char * const *) argv->pdata,
                              G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE,
                              &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (walker, NULL, NULL, walker_done, &walk);
  /* The walker has its own deadlines; this one only keeps a hung walker from hanging us. */
  {
    gint64 deadline = g_get_monotonic_time () + 120 * G_USEC_PER_SEC;

    while (!walk.done)
      {
        if (g_get_monotonic_time () > deadline)
          {
            g_subprocess_force_exit (walker);
            g_error ("the accessibility walker did not finish");
          }
        g_main_context_iteration (NULL, TRUE);
      }
  }
  *output = walk.output;
  return walk.ok;
}

static void
run_walker (const char *first_arg,
            ...)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  gboolean ok = FALSE;
  va_list ap;

  va_start (ap, first_arg);
  for (const char *arg = first_arg; arg; arg = va_arg (ap, const char *))
    g_ptr_array_add (args, (char *) arg);
  va_end (ap);
  g_ptr_array_add (args, NULL);

  for (guint attempt = 0; attempt < 3 && !ok; attempt++)
    {
      g_autofree char *output = NULL;
      g_auto(GStrv) lines = NULL;

      ok = run_walker_once ((const char * const *) args->pdata, &output);
      lines = g_strsplit (output ? output : "", "\n", -1);
      for (guint i = 0; lines[i]; i++)
        if (*lines[i])
          g_test_message ("%s", lines[i]);
      /* Under load a new AT-SPI client can fail to register with the accessibility bus before
       * it looks at anything; that says nothing about us, so try again. Any other failure is
       * the verdict. */
      if (!ok && (output == NULL
                  || strstr (output, "Couldn't register with accessibility bus") == NULL))
        break;
    }
  g_assert_true (ok);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void
test_window (void)
{
  run_walker ("--window", "Tocsin", g_getenv ("TOCSIN_A11Y_DUMP") ? "--dump" : NULL, NULL);
}

static void
test_channel_editor (void)
{
  GtkWidget *editor = tocsin_channel_editor_new (GTK_WINDOW (fx.window), fx.app);

  /* With a forward and an action (issue 15): their rows, fields and Remove buttons too. */
  g_assert_true (gtk_widget_activate_action (editor, "editor.add-forward", NULL));
  g_assert_true (gtk_widget_activate_action (editor, "editor.add-action", NULL));
  gtk_window_present (GTK_WINDOW (editor));
  run_walker ("--window", gtk_window_get_title (GTK_WINDOW (editor)), NULL);
  gtk_window_destroy (GTK_WINDOW (editor));
}

static void
press_added (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* "Your Action Presses" with one failed press: its row, Retry Now and the list's name. */
static void
test_presses_page (void)
{
  TocsinHistory *history = tocsin_application_get_history (fx.app);
  GListModel *records = G_LIST_MODEL (tocsin_window_get_record_list (fx.window));
  g_autoptr(TocsinRecord) record = g_list_model_get_item (records, 0);
  g_autoptr(TocsinActionPress) press = tocsin_action_press_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GtkWindow *page = NULL;

  press->record_id = tocsin_record_get_id (record);
  press->label = g_strdup ("Approve");
  press->kind = g_strdup ("http");
  press->url = g_strdup ("https://deploy.example:443/approve");
  press->pressed_at_ms = g_get_real_time () / 1000;
  press->attempt = 1;
  press->status = 503;
  press->duration_ms = 20;
  press->outcome = TOCSIN_ATTEMPT_FINAL_ERROR;
  tocsin_history_add_press_async (history, press, NULL, press_added, &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  g_assert_cmpint (tocsin_history_change_finish (history, result, &error), >, 0);
  g_assert_no_error (error);

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.action-presses",
                                             NULL));
  TOCSIN_WAIT_UNTIL ((page = tocsin_test_ui_find_toplevel (TOCSIN_TYPE_DELIVERIES_WINDOW))
                     != NULL &&
                     g_str_equal (tocsin_deliveries_window_get_state
                                    (TOCSIN_DELIVERIES_WINDOW (page)), "list"));
  run_walker ("--window", gtk_window_get_title (page), NULL);
  gtk_window_destroy (page);
}

static void
test_subscribe_dialog (void)
{
  GtkWindow *dialog = NULL;

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (fx.window), "win.subscribe", NULL));
  TOCSIN_WAIT_UNTIL ((dialog = tocsin_test_ui_find_toplevel
                                 (g_type_from_name ("TocsinSubscribeDialog"))) != NULL);
  run_walker ("--window", gtk_window_get_title (dialog), NULL);
  gtk_window_destroy (dialog);
}

static void
test_preferences (void)
{
  GtkWindow *prefs = NULL;

  g_action_group_activate_action (G_ACTION_GROUP (fx.app), "preferences", NULL);
  TOCSIN_WAIT_UNTIL ((prefs = tocsin_test_ui_find_toplevel
                                (g_type_from_name ("TocsinPreferencesWindow")))
                     != NULL);
  run_walker ("--window", gtk_window_get_title (prefs), NULL);
  gtk_window_destroy (prefs);
}

static void
test_records_keyboard (void)
{
  GdkSurface *surface = gtk_native_get_surface (GTK_NATIVE (fx.window));
  g_autofree char *xid = g_strdup_printf ("%lu", (gulong) gdk_x11_surface_get_xid (surface));
  g_autofree char *rows = g_strdup_printf ("%d", ROWS);

  gtk_window_present (GTK_WINDOW (fx.window));
  gtk_window_set_focus (GTK_WINDOW (fx.window), NULL);
  run_walker ("--window", "Tocsin", "--keyboard", "--xid", xid, "--rows", rows, NULL);
}

/* Moving the pointer over the sidebar does not switch channels (single-click-activate selected
 * on hover, so coming back from Record Details over the sidebar picked another channel). */
static void
test_hover_keeps_channel (void)
{
  GtkWidget *window = GTK_WIDGET (fx.window);
  GdkSurface *surface = gtk_native_get_surface (GTK_NATIVE (fx.window));
  g_autofree char *xid = g_strdup_printf ("%lu", (gulong) gdk_x11_surface_get_xid (surface));
  TocsinRecordList *list = tocsin_window_get_record_list (fx.window);
  GtkWidget *row = NULL;
  graphene_rect_t bounds;

  g_assert_true (gtk_widget_activate_action (window, "win.show-all", NULL));
  TOCSIN_WAIT_UNTIL (tocsin_record_list_get_relay_url (list) == NULL);
  /* The sidebar row of the channel: the label with its name that is not in a record. */
  {
    g_autoptr(GList) stack = g_list_prepend (NULL, window);

    while (stack != NULL && row == NULL)
      {
        GtkWidget *widget = stack->data;

        stack = g_list_delete_link (stack, stack);
        if (GTK_IS_LABEL (widget) && gtk_widget_get_mapped (widget)
            && g_strcmp0 (gtk_label_get_text (GTK_LABEL (widget)), "Prod alerts") == 0
            && gtk_widget_get_ancestor (widget, g_type_from_name ("TocsinRecordRow")) == NULL
            && gtk_widget_get_ancestor (widget, ADW_TYPE_WINDOW_TITLE) == NULL)
          row = widget;
        for (GtkWidget *child = gtk_widget_get_last_child (widget); child;
             child = gtk_widget_get_prev_sibling (child))
          stack = g_list_prepend (stack, child);
      }
  }
  g_assert_nonnull (row);
  g_assert_true (gtk_widget_compute_bounds (row, window, &bounds));

  /* The pointer goes from the records to the channel's row and rests there. */
  for (guint i = 0; i < 2; i++)
    {
      int to_x = i == 0 ? gtk_widget_get_width (window) - 100 : (int) (bounds.origin.x + 10);
      int to_y = i == 0 ? gtk_widget_get_height (window) / 2
                        : (int) (bounds.origin.y + bounds.size.height / 2);
      g_autofree char *x = g_strdup_printf ("%d", to_x);
      g_autofree char *y = g_strdup_printf ("%d", to_y);
      int status = 0;
      g_autoptr(GError) error = NULL;

      g_spawn_sync (NULL, (char *[]) { (char *) "xdotool", (char *) "mousemove", (char *) "--sync",
                                       (char *) "--window", xid, x, y, NULL },
                    NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, &error);
      g_assert_no_error (error);
      g_assert_true (g_spawn_check_wait_status (status, NULL));
      /* Let GTK see the motion and the list react, as it would. */
      for (guint j = 0; j < 50; j++)
        {
          g_main_context_iteration (NULL, FALSE);
          g_usleep (10000);
        }
    }
  g_assert_null (tocsin_record_list_get_relay_url (list));
}

/* ---- setup ---------------------------------------------------------------------------- */

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinSubscription) subscription = NULL;
  TocsinClient *client;
  int status;

  fx.tmpdir = tocsin_test_ui_setup (&argc, &argv, "tocsin-ui-a11y", TOCSIN_TEST_UI_NEEDS_X11);
  if (!walker_available ())
    {
      /* build-aux/install-deps.sh installs both. */
      g_print ("1..0 # SKIP needs xdotool and /usr/bin/python3 with pyatspi (python3-pyatspi)\n");
      return 0;
    }

  fx.relay = tocsin_test_relay_start (NULL, NULL);
  fx.channel = tocsin_test_relay_create_channel (fx.relay, "Prod alerts", "Alert {{n}}",
                                                 "Number {{n}}", "{{link}}", NULL);
  fx.app = tocsin_application_new ();
  g_application_register (G_APPLICATION (fx.app), NULL, &error);
  g_assert_no_error (error);
  client = tocsin_application_get_client (fx.app);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_started (client));
  fx.window = TOCSIN_WINDOW (tocsin_application_present_window (fx.app));
  gtk_window_set_default_size (GTK_WINDOW (fx.window), 900, 700);

  /* Subscribed, with a few records (one with a link). */
  subscription = tocsin_test_ui_subscribe (fx.app, fx.channel, TOCSIN_NOTIFY_TYPE_NORMAL);
  for (guint i = 1; i <= ROWS + 1; i++)
    {
      const char *link = i == 1 ? "&link=https%3A%2F%2Fexample.com%2F1" : "";
      g_autofree char *path = g_strdup_printf ("/t/%s?n=%u%s",
                                               json_object_get_string_member (fx.channel,
                                                                              "trigger_token"),
                                               i, link);

      g_assert_cmpuint (tocsin_test_http (fx.relay, "GET", path, NULL, NULL, 0, NULL, NULL, NULL),
                        ==, 200);
    }
  {
    GListModel *records = G_LIST_MODEL (tocsin_window_get_record_list (fx.window));

    TOCSIN_WAIT_UNTIL (g_list_model_get_n_items (records) == ROWS + 1);
  }

  g_test_add_func ("/ui/a11y/window", test_window);
  g_test_add_func ("/ui/a11y/channel-editor", test_channel_editor);
  g_test_add_func ("/ui/a11y/subscribe-dialog", test_subscribe_dialog);
  g_test_add_func ("/ui/a11y/presses-page", test_presses_page);
  g_test_add_func ("/ui/a11y/preferences", test_preferences);
  g_test_add_func ("/ui/a11y/records-keyboard", test_records_keyboard);
  g_test_add_func ("/ui/a11y/hover-keeps-channel", test_hover_keeps_channel);
  status = g_test_run ();

  gtk_window_destroy (GTK_WINDOW (fx.window));
  tocsin_history_flush_sync (tocsin_application_get_history (fx.app));
  g_clear_object (&fx.app);
  g_clear_pointer (&fx.channel, json_object_unref);
  g_clear_pointer (&fx.relay, tocsin_test_relay_free);
  tocsin_test_rmdir_recursive (fx.tmpdir);
  g_free (fx.tmpdir);
  return status;
}
