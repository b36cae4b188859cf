/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-test-notify.h: reads back what python3-dbusmock's notification daemon got, for tests
 * run on a private session bus under build-aux/with-dbusmock.sh.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* One Notify call, as the daemon recorded it. */
typedef struct
{
  guint32   id;            /* the id the daemon answered with */
  char     *app_name;
  guint32   replaces_id;
  char     *icon;
  char     *summary;
  char     *body;
  char     *channel;       /* the body's first line: the channel the popup is from */
  char     *text;          /* the rest of the body: the record's own text ("" if none) */
  GStrv     actions;
  GVariant *hints;         /* a{sv} */
} TocsinTestNotifyCall;

/* Every Notify call the daemon on @bus (NULL: the session bus) got, oldest first, as
 * TocsinTestNotifyCall; ids as the mock gives them (from 1, or replaces_id when there is one). */
GPtrArray *tocsin_test_notify_calls (GDBusConnection *bus);

/* How many Notify calls the daemon got with @summary and, unless NULL, @text (the body after
 * its channel line). */
guint      tocsin_test_notify_count (GDBusConnection *bus,
                                     const char      *summary,
                                     const char      *body);

/* The id of the last pop-up titled @summary (0: none yet). */
guint32    tocsin_test_notify_id    (GDBusConnection *bus,
                                     const char      *summary);

/* How many CloseNotification calls the daemon got for popup @id. */
guint      tocsin_test_notify_closed_count (GDBusConnection *bus,
                                            guint32          id);

/* Forgets the calls so far (ClearCalls). */
void       tocsin_test_notify_clear (GDBusConnection *bus);

/* Plays the user's click on popup @id: the daemon emits ActionInvoked(@id, @action)
 * ("default" for the popup itself). */
void       tocsin_test_notify_click (GDBusConnection *bus,
                                     guint32          id,
                                     const char      *action);

G_END_DECLS
