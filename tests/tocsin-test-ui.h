/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-test-ui.h: the ui tests' common ground: a test program's setup (a temporary home, a
 * display, the notification daemon), the in-process app's window and subscriptions, and what a
 * user sees in the real app's windows (GTK 4, under Xvfb with accessibility on).
 */
#pragma once

#include <gtk/gtk.h>
#include <json-glib/json-glib.h>

#include "tocsin-application.h"
#include "tocsin-record-row.h"
#include "tocsin-subscription.h"
#include "tocsin-window.h"

G_BEGIN_DECLS

typedef enum
{
  TOCSIN_TEST_UI_NEEDS_NOTIFY_DAEMON = 1 << 0,  /* a session bus (build-aux/with-dbusmock.sh) */
  TOCSIN_TEST_UI_NEEDS_X11           = 1 << 1,  /* an X11 display, not just any display */
} TocsinTestUiNeeds;

/* ---- the test program ----------------------------------------------------------------- */

/* Points XDG_DATA_HOME, XDG_CONFIG_HOME and XDG_CACHE_HOME into a new temporary directory
 * named after @prefix (before GLib reads them), runs g_test_init() and gtk_init_check(), checks
 * what @needs asks for (exits with 1, saying what to run it under, when it is missing) and
 * turns animations off, so that what is asserted and saved has settled. Returns the directory
 * (for tocsin_test_rmdir_recursive() at the end). */
char       *tocsin_test_ui_setup           (int                *argc,
                                            char             ***argv,
                                            const char         *prefix,
                                            TocsinTestUiNeeds   needs);
/* Makes a fake web browser under @tmpdir (a home made by tocsin_test_ui_setup()) the default for
 * http and https links; it appends each URL it is given, one a line, to the file whose path is
 * returned. */
char       *tocsin_test_ui_install_browser (const char         *tmpdir);

/* A GAsyncReadyCallback that stores a reference to the result in *(GAsyncResult **) @user_data,
 * for TOCSIN_WAIT_UNTIL (result != NULL). */
void        tocsin_test_ui_async_done      (GObject            *object,
                                            GAsyncResult       *result,
                                            gpointer            user_data);

/* ---- the app -------------------------------------------------------------------------- */

/* Subscribes @app to the relay channel @channel (as created by
 * tocsin_test_relay_create_channel()), as the subscribe dialog does with @type, and waits until
 * the relay has said where the subscription starts (its cursor is set). */
TocsinSubscription *tocsin_test_ui_subscribe  (TocsinApplication *app,
                                               JsonObject        *channel,
                                               TocsinNotifyType   type);
/* @app's active window when it is the main window and visible, or NULL. */
TocsinWindow *tocsin_test_ui_app_window       (TocsinApplication *app);

/* ---- what is on screen ---------------------------------------------------------------- */

/* A label's text, a button's label, a preferences row's or group's title, or NULL. */
const char *tocsin_test_ui_widget_text     (GtkWidget  *widget);
/* A visible toplevel of @type (or a subtype), or NULL. */
GtkWindow  *tocsin_test_ui_find_toplevel   (GType       type);
/* Depth-first under @root, through visible widgets only: a visible widget of @type whose text
 * (tocsin_test_ui_widget_text()) contains @text (NULL: any), or NULL. */
GtkWidget  *tocsin_test_ui_find_widget     (GtkWidget  *root,
                                            GType       type,
                                            const char *text);
/* The same through mapped widgets only: what is on screen now, not in a hidden page. */
GtkWidget  *tocsin_test_ui_find_mapped_widget (GtkWidget  *root,
                                               GType       type,
                                               const char *text);
/* A mapped label under @root whose text starts with @prefix and is not @except (NULL: none). */
GtkWidget  *tocsin_test_ui_find_label_with_prefix (GtkWidget  *root,
                                                   const char *prefix,
                                                   const char *except);
/* Clicks the visible button under @root whose label contains @label (asserts there is one). */
void        tocsin_test_ui_click           (GtkWidget  *root,
                                            const char *label);
/* The mapped record rows under @root that show a record, in widget order. */
GPtrArray  *tocsin_test_ui_record_rows     (GtkWidget  *root);
/* The row on screen in @window's records view that shows the loaded record titled @title, or
 * NULL (also when @window is NULL). */
TocsinRecordRow *tocsin_test_ui_row_with_title (TocsinWindow *window,
                                                const char   *title);

/* ---- pictures ------------------------------------------------------------------------- */

/* Waits until @widget is mapped and has been drawn @frames times. */
void        tocsin_test_ui_wait_for_frames (GtkWidget  *widget,
                                            guint       frames);
/* <build>/tests/screenshots/@name (the folder made). */
char       *tocsin_test_ui_screenshot_path (const char *name);
/* Saves what @widget shows, once mapped and drawn a few times, as a PNG under
 * tocsin_test_ui_screenshot_path (@name), for a person to look at. */
void        tocsin_test_ui_save_screenshot (GtkWidget  *widget,
                                            const char *name);
/* The same, with the focus taken from @widget first when it is a window. */
void        tocsin_test_ui_save_unfocused_screenshot (GtkWidget  *widget,
                                                      const char *name);

G_END_DECLS
