/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-ui-editor-signature.c: the channel editor's signature, pause and Recent Webhooks parts,
 * in a real window under Xvfb (accessibility on) against a real relay: a channel created with
 * a GitHub signature shows its generated secret once, and webhooks signed with it ring while
 * unsigned ones get 401; an owner pauses a channel with the switch (webhooks then get 423), and
 * the Recent Webhooks list goes from its empty state to the answers the relay gave.
 */
#define G_LOG_DOMAIN "test-ui"

#include "config.h"

#include <string.h>
#include <adwaita.h>

#include "tocsin-application.h"
#include "tocsin-channel-editor.h"
#include "tocsin-test-relay.h"
#include "tocsin-test-ui.h"
#include "tocsin-window.h"

static TocsinTestRelay   *relay;
static TocsinApplication *app;
static TocsinWindow      *window;

static GtkWidget *
find_with_class (GtkWidget  *root,
                 const char *css_class)
{
  for (GtkWidget *child = gtk_widget_get_first_child (root); child;
       child = gtk_widget_get_next_sibling (child))
    {
      GtkWidget *found;

      if (gtk_widget_has_css_class (child, css_class))
        return child;
      if ((found = find_with_class (child, css_class)) != NULL)
        return found;
    }
  return NULL;
}

static guint
post (const char *url,
      const char *body,
      const char *signature)
{
  const char *headers[] = { "X-Hub-Signature-256", signature, NULL };

  return tocsin_test_http (relay, "POST", url, "application/json", body, -1,
                           signature ? headers : NULL, NULL, NULL);
}

static void
test_create_signed (void)
{
  GtkWidget *editor = tocsin_channel_editor_new (GTK_WINDOW (window), app);
  g_autofree char *prefix = g_strdup_printf ("%s/t/", relay->base_url);
  g_autofree char *webhook = NULL, *secret = NULL, *hex = NULL, *signature = NULL;
  GtkWidget *relay_row, *combo, *secret_row, *group, *label, *url_label;
  AdwMessageDialog *dialog = NULL;

  gtk_window_set_default_size (GTK_WINDOW (editor), 620, 1200);
  gtk_window_present (GTK_WINDOW (editor));
  relay_row = tocsin_test_ui_find_widget (editor, ADW_TYPE_ENTRY_ROW, "Relay address");
  gtk_editable_set_text (GTK_EDITABLE (relay_row), relay->base_url);
  tocsin_channel_editor_set_field (TOCSIN_CHANNEL_EDITOR (editor), "name", "Repo pushes");

  /* No secret row until a scheme is chosen. */
  g_assert_null (tocsin_test_ui_find_widget (editor, ADW_TYPE_PASSWORD_ENTRY_ROW,
                                             "Signing secret"));
  combo = tocsin_test_ui_find_widget (editor, ADW_TYPE_COMBO_ROW, "Signature");
  g_assert_nonnull (combo);
  adw_combo_row_set_selected (ADW_COMBO_ROW (combo), 2);   /* GitHub */
  secret_row = tocsin_test_ui_find_widget (editor, ADW_TYPE_PASSWORD_ENTRY_ROW, "Signing secret");
  g_assert_nonnull (secret_row);
  tocsin_test_ui_save_unfocused_screenshot (editor, "ui-editor-signature.png");

  /* Saved with the secret left empty: the relay makes one, shown once on the created page. */
  g_assert_true (gtk_widget_activate_action (editor, "editor.save", NULL));
  TOCSIN_WAIT_UNTIL ((group = tocsin_test_ui_find_widget (editor, ADW_TYPE_PREFERENCES_GROUP,
                                                          "Signing Secret")) != NULL);
  label = find_with_class (group, "monospace-label");
  g_assert_nonnull (label);
  secret = g_strdup (gtk_label_get_text (GTK_LABEL (label)));
  g_assert_cmpuint (strlen (secret), >=, 22);
  url_label = tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL, prefix);
  g_assert_nonnull (url_label);
  webhook = g_strdup (gtk_label_get_text (GTK_LABEL (url_label)));
  tocsin_test_ui_save_unfocused_screenshot (editor, "ui-editor-signing-secret.png");

  /* The secret works as GitHub uses it; an unsigned webhook is refused. */
  hex = g_compute_hmac_for_string (G_CHECKSUM_SHA256, (const guchar *) secret, strlen (secret),
                                   "{\"ref\":\"main\"}", -1);
  signature = g_strdup_printf ("sha256=%s", hex);
  g_assert_cmpuint (post (webhook, "{\"ref\":\"main\"}", signature), ==, 200);
  g_assert_cmpuint (post (webhook, "{\"ref\":\"main\"}", NULL), ==, 401);

  /* Rotate the secret: asked first, then the new one is shown once and the old one fails. */
  g_assert_true (gtk_widget_activate_action (editor, "editor.rotate-signature", NULL));
  TOCSIN_WAIT_UNTIL ((dialog = (AdwMessageDialog *) tocsin_test_ui_find_toplevel
                                                      (ADW_TYPE_MESSAGE_DIALOG)) != NULL);
  adw_message_dialog_response (dialog, "confirm");
  TOCSIN_WAIT_UNTIL ((group = tocsin_test_ui_find_widget (editor, ADW_TYPE_PREFERENCES_GROUP,
                                                          "Signing Secret")) != NULL &&
                     (label = find_with_class (group, "monospace-label")) != NULL &&
                     !g_str_equal (gtk_label_get_text (GTK_LABEL (label)), secret));
  g_assert_cmpuint (post (webhook, "{\"ref\":\"main\"}", signature), ==, 401);
  g_free (hex);
  g_free (signature);
  hex = g_compute_hmac_for_string (G_CHECKSUM_SHA256,
                                   (const guchar *) gtk_label_get_text (GTK_LABEL (label)),
                                   strlen (gtk_label_get_text (GTK_LABEL (label))),
                                   "{\"ref\":\"main\"}", -1);
  signature = g_strdup_printf ("sha256=%s", hex);
  g_assert_cmpuint (post (webhook, "{\"ref\":\"main\"}", signature), ==, 200);
  gtk_window_destroy (GTK_WINDOW (editor));
}

static void
created_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static void
test_pause_and_recent (void)
{
  TocsinOwner *owner = tocsin_application_get_owner (app);
  g_autoptr(JsonObject) fields = json_object_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinOwnedChannel) channel = NULL;
  GtkWidget *editor, *recent, *paused, *save;

  json_object_set_string_member (fields, "name", "Staging");
  tocsin_owner_create_channel_async (owner, relay->base_url, NULL, fields, NULL, created_cb,
                                     &result);
  TOCSIN_WAIT_UNTIL (result != NULL);
  channel = tocsin_owner_create_channel_finish (owner, result, NULL, &error);
  g_assert_no_error (error);

  editor = tocsin_channel_editor_new_for_channel (GTK_WINDOW (window), app, channel);
  gtk_window_set_default_size (GTK_WINDOW (editor), 620, 1400);
  gtk_window_present (GTK_WINDOW (editor));
  /* Loaded from the relay once Save can be pressed. */
  save = tocsin_test_ui_find_widget (editor, GTK_TYPE_BUTTON, "_Save");
  g_assert_nonnull (save);
  TOCSIN_WAIT_UNTIL (gtk_widget_get_sensitive (save));

  /* Nothing received yet: the empty state says what to do. */
  recent = tocsin_test_ui_find_widget (editor, ADW_TYPE_PREFERENCES_GROUP, "Recent Webhooks");
  g_assert_nonnull (recent);
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (recent, GTK_TYPE_LABEL,
                                                 "No webhooks yet") != NULL);

  /* One that rings, then the owner pauses the channel with the switch and saves. */
  g_assert_cmpuint (post (channel->webhook_url, "{}", NULL), ==, 200);
  paused = tocsin_test_ui_find_widget (editor, GTK_TYPE_SWITCH, NULL);
  g_assert_nonnull (paused);
  gtk_switch_set_active (GTK_SWITCH (paused), TRUE);
  g_assert_true (gtk_widget_activate_action (editor, "editor.save", NULL));
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (editor, GTK_TYPE_LABEL, "Saved") != NULL);
  g_assert_cmpuint (post (channel->webhook_url, "{}", NULL), ==, 423);

  /* Refreshed, the list shows both answers, newest first, with the relay's sentences. */
  g_assert_true (gtk_widget_activate_action (editor, "editor.refresh-webhooks", NULL));
  TOCSIN_WAIT_UNTIL (tocsin_test_ui_find_widget (recent, GTK_TYPE_LABEL,
                                                 "paused by its owner") != NULL);
  g_assert_nonnull (tocsin_test_ui_find_widget (recent, GTK_TYPE_LABEL, "delivered to"));
  g_assert_nonnull (tocsin_test_ui_find_widget (recent, GTK_TYPE_LABEL, "HTTP 423"));
  g_assert_null (tocsin_test_ui_find_widget (recent, GTK_TYPE_LABEL, "No webhooks yet"));
  tocsin_test_ui_save_unfocused_screenshot (recent, "ui-editor-recent-webhooks.png");

  /* Resumed: it rings again (until the save lands, webhooks still get 423 and ring nothing). */
  gtk_switch_set_active (GTK_SWITCH (paused), FALSE);
  g_assert_true (gtk_widget_activate_action (editor, "editor.save", NULL));
  TOCSIN_WAIT_UNTIL (post (channel->webhook_url, "{}", NULL) == 200);
  gtk_window_destroy (GTK_WINDOW (editor));
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autofree char *tmpdir = NULL;
  int status;

  tmpdir = tocsin_test_ui_setup (&argc, &argv, "tocsin-ui-editor-signature", 0);

  relay = tocsin_test_relay_start (NULL, NULL);
  app = tocsin_application_new ();
  g_application_register (G_APPLICATION (app), NULL, &error);
  g_assert_no_error (error);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_started (tocsin_application_get_client (app)));
  window = TOCSIN_WINDOW (tocsin_application_present_window (app));

  g_test_add_func ("/ui/editor/signature/create-signed", test_create_signed);
  g_test_add_func ("/ui/editor/signature/pause-and-recent", test_pause_and_recent);
  status = g_test_run ();

  gtk_window_destroy (GTK_WINDOW (window));
  tocsin_history_flush_sync (tocsin_application_get_history (app));
  g_clear_object (&app);
  g_clear_pointer (&relay, tocsin_test_relay_free);
  tocsin_test_rmdir_recursive (tmpdir);
  return status;
}
