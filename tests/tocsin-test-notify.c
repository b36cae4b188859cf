/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-test-notify.c: python3-dbusmock's notification daemon, read back; see
 * tocsin-test-notify.h.
 */
#include "config.h"

#include <string.h>

#include "tocsin-test-notify.h"

static GDBusConnection *
bus_or_session (GDBusConnection *bus)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *session;

  if (bus)
    return g_object_ref (bus);
  session = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);
  return session;
}

static void
notify_call_free (gpointer data)
{
  TocsinTestNotifyCall *call = data;

  g_free (call->app_name);
  g_free (call->icon);
  g_free (call->summary);
  g_free (call->body);
  g_free (call->channel);
  g_free (call->text);
  g_strfreev (call->actions);
  g_clear_pointer (&call->hints, g_variant_unref);
  g_free (call);
}

/* The @i-th argument of a recorded call, unboxed from its variant. */
static GVariant *
arg (GVariant *args,
     gsize     i)
{
  g_autoptr(GVariant) boxed = g_variant_get_child_value (args, i);

  return g_variant_get_variant (boxed);
}

GPtrArray *
tocsin_test_notify_calls (GDBusConnection *bus)
{
  g_autoptr(GDBusConnection) connection = bus_or_session (bus);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) calls = NULL;
  GPtrArray *result = g_ptr_array_new_with_free_func (notify_call_free);
  guint32 next_id = 1;
  GVariantIter iter;
  const char *method;
  GVariant *args;

  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.Notifications",
                                       "/org/freedesktop/Notifications",
                                       "org.freedesktop.DBus.Mock", "GetCalls", NULL,
                                       G_VARIANT_TYPE ("(a(tsav))"), G_DBUS_CALL_FLAGS_NONE,
                                       -1, NULL, &error);
  g_assert_no_error (error);
  calls = g_variant_get_child_value (reply, 0);
  g_variant_iter_init (&iter, calls);
  while (g_variant_iter_next (&iter, "(t&s@av)", NULL, &method, &args))
    {
      if (g_str_equal (method, "Notify"))
        {
          TocsinTestNotifyCall *call = g_new0 (TocsinTestNotifyCall, 1);
          g_autoptr(GVariant) a0 = arg (args, 0), a1 = arg (args, 1), a2 = arg (args, 2);
          g_autoptr(GVariant) a3 = arg (args, 3), a4 = arg (args, 4), a5 = arg (args, 5);

          call->app_name = g_variant_dup_string (a0, NULL);
          call->replaces_id = g_variant_get_uint32 (a1);
          call->icon = g_variant_dup_string (a2, NULL);
          call->summary = g_variant_dup_string (a3, NULL);
          call->body = g_variant_dup_string (a4, NULL);
          {
            const char *newline = strchr (call->body, '\n');

            call->channel = newline ? g_strndup (call->body, newline - call->body)
                                    : g_strdup (call->body);
            call->text = g_strdup (newline ? newline + 1 : "");
          }
          call->actions = g_variant_dup_strv (a5, NULL);
          call->hints = arg (args, 6);
          call->id = call->replaces_id ? call->replaces_id : next_id++;
          g_ptr_array_add (result, call);
        }
      g_variant_unref (args);
    }
  return result;
}

guint
tocsin_test_notify_count (GDBusConnection *bus,
                          const char      *summary,
                          const char      *body)
{
  g_autoptr(GPtrArray) calls = tocsin_test_notify_calls (bus);
  guint n = 0;

  for (guint i = 0; i < calls->len; i++)
    {
      TocsinTestNotifyCall *call = calls->pdata[i];

      if (g_str_equal (call->summary, summary) && (!body || g_str_equal (call->text, body)))
        n++;
    }
  return n;
}

guint32
tocsin_test_notify_id (GDBusConnection *bus,
                       const char      *summary)
{
  g_autoptr(GPtrArray) calls = tocsin_test_notify_calls (bus);
  guint32 id = 0;

  for (guint i = 0; i < calls->len; i++)
    {
      TocsinTestNotifyCall *call = calls->pdata[i];

      if (g_strcmp0 (call->summary, summary) == 0)
        id = call->id;
    }
  return id;
}

guint
tocsin_test_notify_closed_count (GDBusConnection *bus,
                                 guint32          id)
{
  g_autoptr(GDBusConnection) connection = bus_or_session (bus);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) calls = NULL;
  GVariantIter iter;
  const char *method;
  GVariant *args;
  guint n = 0;

  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.Notifications",
                                       "/org/freedesktop/Notifications",
                                       "org.freedesktop.DBus.Mock", "GetCalls", NULL,
                                       G_VARIANT_TYPE ("(a(tsav))"), G_DBUS_CALL_FLAGS_NONE,
                                       -1, NULL, &error);
  g_assert_no_error (error);
  calls = g_variant_get_child_value (reply, 0);
  g_variant_iter_init (&iter, calls);
  while (g_variant_iter_next (&iter, "(t&s@av)", NULL, &method, &args))
    {
      if (g_str_equal (method, "CloseNotification"))
        {
          g_autoptr(GVariant) a0 = arg (args, 0);
          guint64 closed = 0;

          /* dbusmock records the id as whatever integer type it got it as. */
          if (g_variant_is_of_type (a0, G_VARIANT_TYPE_UINT32))
            closed = g_variant_get_uint32 (a0);
          else if (g_variant_is_of_type (a0, G_VARIANT_TYPE_INT64))
            closed = (guint64) g_variant_get_int64 (a0);
          else if (g_variant_is_of_type (a0, G_VARIANT_TYPE_UINT64))
            closed = g_variant_get_uint64 (a0);
          else if (g_variant_is_of_type (a0, G_VARIANT_TYPE_INT32))
            closed = (guint64) g_variant_get_int32 (a0);
          else
            g_error ("CloseNotification recorded with an id of type %s",
                     g_variant_get_type_string (a0));
          if (closed == id)
            n++;
        }
      g_variant_unref (args);
    }
  return n;
}

void
tocsin_test_notify_clear (GDBusConnection *bus)
{
  g_autoptr(GDBusConnection) connection = bus_or_session (bus);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.Notifications",
                                       "/org/freedesktop/Notifications",
                                       "org.freedesktop.DBus.Mock", "ClearCalls", NULL, NULL,
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
}

void
tocsin_test_notify_click (GDBusConnection *bus,
                          guint32          id,
                          const char      *action)
{
  g_autoptr(GDBusConnection) connection = bus_or_session (bus);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GVariant *args[2] = { g_variant_new_variant (g_variant_new_uint32 (id)),
                        g_variant_new_variant (g_variant_new_string (action)) };

  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.Notifications",
                                       "/org/freedesktop/Notifications",
                                       "org.freedesktop.DBus.Mock", "EmitSignal",
                                       g_variant_new ("(sss@av)", "org.freedesktop.Notifications",
                                                      "ActionInvoked", "us",
                                                      g_variant_new_array (G_VARIANT_TYPE_VARIANT,
                                                                           args, 2)),
                                       NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
}
