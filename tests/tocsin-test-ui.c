/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tocsin-test-ui.c: the ui tests' common ground (see the header). */
#define G_LOG_DOMAIN "test-ui"

#include "config.h"

#include <string.h>
#include <adwaita.h>
#include <glib/gstdio.h>
#include <gdk/x11/gdkx.h>

#include "tocsin-test-relay.h"
#include "tocsin-test-ui.h"

/* ---- the test program ----------------------------------------------------------------- */

char *
tocsin_test_ui_setup (int                *argc,
                      char             ***argv,
                      const char         *prefix,
                      TocsinTestUiNeeds   needs)
{
  char *tmpdir = tocsin_test_make_tmpdir (prefix);
  g_autofree char *data_home = g_build_filename (tmpdir, "data", NULL);
  g_autofree char *config_home = g_build_filename (tmpdir, "config", NULL);
  g_autofree char *cache_home = g_build_filename (tmpdir, "cache", NULL);

  /* Everything the app writes goes to the temporary home. */
  g_setenv ("XDG_DATA_HOME", data_home, TRUE);
  g_setenv ("XDG_CONFIG_HOME", config_home, TRUE);
  g_setenv ("XDG_CACHE_HOME", cache_home, TRUE);

  g_test_init (argc, argv, NULL);
  if ((needs & TOCSIN_TEST_UI_NEEDS_X11) != 0)
    {
      if (!gtk_init_check () || !GDK_IS_X11_DISPLAY (gdk_display_get_default ()))
        {
          g_printerr ("Needs an X display: run the ui suite under `xvfb-run -a`.\n");
          exit (1);
        }
    }
  else if (!gtk_init_check ())
    {
      g_printerr ("No display: run the ui suite under `xvfb-run -a`.\n");
      exit (1);
    }
  if ((needs & TOCSIN_TEST_UI_NEEDS_NOTIFY_DAEMON) != 0
      && g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL)
    {
      g_printerr ("Run this through build-aux/with-dbusmock.sh (needs a notification daemon)\n");
      exit (1);
    }
  /* Screenshots show settled widgets, not a search bar halfway through sliding away. */
  g_object_set (gtk_settings_get_default (), "gtk-enable-animations", FALSE, NULL);
  return tmpdir;
}

char *
tocsin_test_ui_install_browser (const char *tmpdir)
{
  g_autofree char *apps = g_build_filename (tmpdir, "data", "applications", NULL);
  g_autofree char *config = g_build_filename (tmpdir, "config", NULL);
  g_autofree char *script = g_build_filename (tmpdir, "browser.sh", NULL);
  g_autofree char *desktop = g_build_filename (apps, "tocsin-test-browser.desktop", NULL);
  g_autofree char *mimeapps = g_build_filename (config, "mimeapps.list", NULL);
  g_autofree char *script_text = NULL;
  g_autofree char *desktop_text = NULL;
  g_autoptr(GError) error = NULL;
  char *launched_file = g_build_filename (tmpdir, "launched.txt", NULL);

  g_mkdir_with_parents (apps, 0700);
  g_mkdir_with_parents (config, 0700);

  script_text = g_strdup_printf ("#!/bin/sh\nprintf '%%s\\n' \"$1\" >> '%s'\n", launched_file);
  g_file_set_contents (script, script_text, -1, &error);
  g_assert_no_error (error);
  g_chmod (script, 0700);

  desktop_text = g_strdup_printf ("[Desktop Entry]\nType=Application\nName=Test Browser\n"
                                  "Exec=%s %%u\n"
                                  "MimeType=x-scheme-handler/https;x-scheme-handler/http;\n"
                                  "NoDisplay=true\n", script);
  g_file_set_contents (desktop, desktop_text, -1, &error);
  g_assert_no_error (error);
  g_file_set_contents (mimeapps,
                       "[Default Applications]\n"
                       "x-scheme-handler/https=tocsin-test-browser.desktop\n"
                       "x-scheme-handler/http=tocsin-test-browser.desktop\n", -1, &error);
  g_assert_no_error (error);
  return launched_file;
}

void
tocsin_test_ui_async_done (GObject      *object,
                           GAsyncResult *result,
                           gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* ---- the app -------------------------------------------------------------------------- */

TocsinSubscription *
tocsin_test_ui_subscribe (TocsinApplication *app,
                          JsonObject        *channel,
                          TocsinNotifyType   type)
{
  TocsinClient *client = tocsin_application_get_client (app);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(TocsinSubscription) fetched = NULL;
  g_autoptr(GError) error = NULL;
  TocsinSubscription *subscription;

  tocsin_client_fetch_channel_info_async (client,
                                          json_object_get_string_member (channel, "subscribe_url"),
                                          NULL, tocsin_test_ui_async_done, &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  fetched = tocsin_client_fetch_channel_info_finish (client, result, NULL, &error);
  g_assert_no_error (error);
  g_clear_object (&result);
  /* What the subscribe dialog's notification type does. */
  tocsin_subscription_set_notify_type (fetched, type);
  tocsin_client_subscribe_async (client, fetched, NULL, tocsin_test_ui_async_done, &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  subscription = tocsin_client_subscribe_finish (client, result, &error);
  g_assert_no_error (error);
  TOCSIN_WAIT_UNTIL (tocsin_subscription_get_cursor (subscription) != TOCSIN_CURSOR_NONE);
  return subscription;
}

TocsinWindow *
tocsin_test_ui_app_window (TocsinApplication *app)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (app));

  return TOCSIN_IS_WINDOW (window) && gtk_widget_get_visible (GTK_WIDGET (window))
         ? TOCSIN_WINDOW (window) : NULL;
}

/* ---- what is on screen ---------------------------------------------------------------- */

const char *
tocsin_test_ui_widget_text (GtkWidget *widget)
{
  if (GTK_IS_LABEL (widget))
    return gtk_label_get_text (GTK_LABEL (widget));
  if (GTK_IS_BUTTON (widget))
    return gtk_button_get_label (GTK_BUTTON (widget));
  if (ADW_IS_PREFERENCES_ROW (widget))
    return adw_preferences_row_get_title (ADW_PREFERENCES_ROW (widget));
  if (ADW_IS_PREFERENCES_GROUP (widget))
    return adw_preferences_group_get_title (ADW_PREFERENCES_GROUP (widget));
  return NULL;
}

GtkWindow *
tocsin_test_ui_find_toplevel (GType type)
{
  g_autoptr(GList) toplevels = gtk_window_list_toplevels ();

  for (GList *l = toplevels; l; l = l->next)
    if (G_TYPE_CHECK_INSTANCE_TYPE (l->data, type) && gtk_widget_get_visible (l->data))
      return l->data;
  return NULL;
}

/* Depth-first through the children that @shown says are there. */
static GtkWidget *
find_widget (GtkWidget   *root,
             GType        type,
             const char  *text,
             gboolean   (*shown) (GtkWidget *widget))
{
  for (GtkWidget *child = gtk_widget_get_first_child (root); child;
       child = gtk_widget_get_next_sibling (child))
    {
      GtkWidget *found;

      if (!shown (child))
        continue;
      if (G_TYPE_CHECK_INSTANCE_TYPE (child, type))
        {
          const char *label = tocsin_test_ui_widget_text (child);

          if (text == NULL || (label != NULL && strstr (label, text) != NULL))
            return child;
        }
      if ((found = find_widget (child, type, text, shown)))
        return found;
    }
  return NULL;
}

GtkWidget *
tocsin_test_ui_find_widget (GtkWidget  *root,
                            GType       type,
                            const char *text)
{
  return find_widget (root, type, text, gtk_widget_get_visible);
}

GtkWidget *
tocsin_test_ui_find_mapped_widget (GtkWidget  *root,
                                   GType       type,
                                   const char *text)
{
  return find_widget (root, type, text, gtk_widget_get_mapped);
}

GtkWidget *
tocsin_test_ui_find_label_with_prefix (GtkWidget  *root,
                                       const char *prefix,
                                       const char *except)
{
  for (GtkWidget *child = gtk_widget_get_first_child (root); child;
       child = gtk_widget_get_next_sibling (child))
    {
      GtkWidget *found;

      if (GTK_IS_LABEL (child) && gtk_widget_get_mapped (child))
        {
          const char *text = gtk_label_get_text (GTK_LABEL (child));

          if (g_str_has_prefix (text, prefix) && g_strcmp0 (text, except) != 0)
            return child;
        }
      if ((found = tocsin_test_ui_find_label_with_prefix (child, prefix, except)))
        return found;
    }
  return NULL;
}

void
tocsin_test_ui_click (GtkWidget  *root,
                      const char *label)
{
  GtkWidget *button = tocsin_test_ui_find_widget (root, GTK_TYPE_BUTTON, label);

  g_assert_nonnull (button);
  g_assert_true (gtk_widget_is_sensitive (button));
  g_signal_emit_by_name (button, "clicked");
}

static void
collect_rows (GtkWidget *root,
              GPtrArray *rows)
{
  for (GtkWidget *child = gtk_widget_get_first_child (root); child;
       child = gtk_widget_get_next_sibling (child))
    {
      if (TOCSIN_IS_RECORD_ROW (child) && gtk_widget_get_mapped (child)
          && tocsin_record_row_get_record (TOCSIN_RECORD_ROW (child)) != NULL)
        g_ptr_array_add (rows, child);
      else
        collect_rows (child, rows);
    }
}

GPtrArray *
tocsin_test_ui_record_rows (GtkWidget *root)
{
  GPtrArray *rows = g_ptr_array_new ();

  collect_rows (root, rows);
  return rows;
}

TocsinRecordRow *
tocsin_test_ui_row_with_title (TocsinWindow *window,
                               const char   *title)
{
  g_autoptr(GPtrArray) rows = NULL;

  if (window == NULL)
    return NULL;
  rows = tocsin_test_ui_record_rows (GTK_WIDGET (tocsin_window_get_records_view (window)));
  for (guint i = 0; i < rows->len; i++)
    {
      TocsinRecord *record = tocsin_record_row_get_record (rows->pdata[i]);

      if (tocsin_record_get_loaded (record)
          && g_strcmp0 (tocsin_record_get_title (record), title) == 0)
        return rows->pdata[i];
    }
  return NULL;
}

/* ---- pictures ------------------------------------------------------------------------- */

static gboolean
tick_cb (GtkWidget     *widget,
         GdkFrameClock *clock,
         gpointer       data)
{
  (*(guint *) data)++;
  return G_SOURCE_CONTINUE;
}

void
tocsin_test_ui_wait_for_frames (GtkWidget *widget,
                                guint      frames)
{
  guint ticks = 0;
  guint id;

  TOCSIN_WAIT_UNTIL (gtk_widget_get_mapped (widget));
  id = gtk_widget_add_tick_callback (widget, tick_cb, &ticks, NULL);
  gtk_widget_queue_draw (widget);
  TOCSIN_WAIT_UNTIL (ticks >= frames);
  gtk_widget_remove_tick_callback (widget, id);
}

char *
tocsin_test_ui_screenshot_path (const char *name)
{
  const char *builddir = g_getenv ("G_TEST_BUILDDIR");
  g_autofree char *dir = g_build_filename (builddir ? builddir : ".", "screenshots", NULL);

  g_mkdir_with_parents (dir, 0755);
  return g_build_filename (dir, name, NULL);
}

void
tocsin_test_ui_save_screenshot (GtkWidget  *widget,
                                const char *name)
{
  g_autofree char *path = tocsin_test_ui_screenshot_path (name);
  g_autoptr(GdkPaintable) paintable = NULL;
  g_autoptr(GdkTexture) texture = NULL;
  GtkSnapshot *snapshot;
  GskRenderNode *node;
  GskRenderer *renderer;
  int width, height;

  /* A few frames, so that what is saved is what was laid out and painted. */
  tocsin_test_ui_wait_for_frames (widget, 3);
  width = gtk_widget_get_width (widget);
  height = gtk_widget_get_height (widget);
  g_assert_cmpint (width, >, 0);
  g_assert_cmpint (height, >, 0);

  paintable = gtk_widget_paintable_new (widget);
  snapshot = gtk_snapshot_new ();
  gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), width, height);
  node = gtk_snapshot_free_to_node (snapshot);
  g_assert_nonnull (node);
  renderer = gtk_native_get_renderer (gtk_widget_get_native (widget));
  texture = gsk_renderer_render_texture (renderer, node,
                                         &GRAPHENE_RECT_INIT (0, 0, width, height));
  gsk_render_node_unref (node);
  g_assert_true (gdk_texture_save_to_png (texture, path));
  g_test_message ("screenshot: %s (%dx%d)", path, width, height);
}

void
tocsin_test_ui_save_unfocused_screenshot (GtkWidget  *widget,
                                          const char *name)
{
  /* What has focus is not part of the picture (a focused selectable label is all selected). */
  if (GTK_IS_WINDOW (widget))
    gtk_window_set_focus (GTK_WINDOW (widget), NULL);
  tocsin_test_ui_save_screenshot (widget, name);
}
