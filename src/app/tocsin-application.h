/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

#include "tocsin-action-runner.h"
#include "tocsin-client.h"
#include "tocsin-history.h"
#include "tocsin-owner.h"

G_BEGIN_DECLS

#define TOCSIN_TYPE_APPLICATION (tocsin_application_get_type ())
G_DECLARE_FINAL_TYPE (TocsinApplication, tocsin_application, TOCSIN, APPLICATION, AdwApplication)

TocsinApplication *tocsin_application_new         (void);
GSettings         *tocsin_application_get_settings (TocsinApplication *self);
TocsinClient      *tocsin_application_get_client  (TocsinApplication *self);
TocsinHistory     *tocsin_application_get_history (TocsinApplication *self);
TocsinOwner       *tocsin_application_get_owner   (TocsinApplication *self);
/* Performs the records' action buttons (the pop-up's and the window's). */
TocsinActionRunner *tocsin_application_get_action_runner (TocsinApplication *self);

/* The channels this user created (cached from the history; borrowed). NULL if @relay_url /
 * @channel_id is not one of them. */
const TocsinOwnedChannel *tocsin_application_find_owned_channel (TocsinApplication *self,
                                                                 const char        *relay_url,
                                                                 gint64             channel_id);
/* The user's direct inbox, whose Direct key Preferences shows (borrowed), or NULL. */
const TocsinOwnedChannel *tocsin_application_find_direct_inbox (TocsinApplication *self);
/* Re-reads the owned channels from the history (after create, rotate, delete). */
void               tocsin_application_reload_owned_channels (TocsinApplication *self);
/* Subscribes this desktop to @subscribe_url (a channel or Direct inbox the user just made),
 * under @name (NULL: the channel's) ringing as @type. Not tied to the window that asked: a
 * failure is said in the main window (or the log) as @error_format (translated, one %s for the
 * reason). */
void               tocsin_application_subscribe_self (TocsinApplication *self,
                                                      const char        *subscribe_url,
                                                      const char        *name,
                                                      TocsinNotifyType   type,
                                                      const char        *error_format);

/* Whether autostart goes through org.freedesktop.portal.Background (set at startup from
 * /.flatpak-info; tests set it to play a sandbox). */
void               tocsin_application_set_sandboxed (TocsinApplication *self,
                                                     gboolean           sandboxed);

/* Presents the main window, creating it if needed. */
GtkWindow         *tocsin_application_present_window (TocsinApplication *self);

G_END_DECLS
