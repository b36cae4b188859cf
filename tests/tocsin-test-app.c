/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-test-app.c: the real `tocsin` app as a subprocess of a test; see tocsin-test-app.h.
 */
#include "config.h"

#include <glib/gstdio.h>

#include "tocsin-test-app.h"

GSubprocessLauncher *
tocsin_test_app_launcher (const char *home)
{
  GSubprocessLauncher *launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  const char *kinds[] = { "data", "config", "cache" };
  const char *vars[] = { "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME" };

  for (guint i = 0; home && i < G_N_ELEMENTS (kinds); i++)
    {
      g_autofree char *dir = g_build_filename (home, kinds[i], NULL);

      g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
      g_subprocess_launcher_setenv (launcher, vars[i], dir, TRUE);
    }
  return launcher;
}

int
tocsin_test_app_run (GSubprocessLauncher *launcher,
                     char               **out,
                     const char          *first_arg,
                     ...)
{
  g_autoptr(GSubprocessLauncher) owned = launcher;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *err = NULL;
  va_list ap;

  g_ptr_array_add (argv, (char *) tocsin_test_app_binary ());
  va_start (ap, first_arg);
  for (const char *arg = first_arg; arg; arg = va_arg (ap, const char *))
    g_ptr_array_add (argv, (char *) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);

  g_subprocess_launcher_set_flags (launcher,
                                   G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, out, &err, &error);
  g_assert_no_error (error);
  if (err && *err)
    g_test_message ("tocsin stderr: %s", err);
  return g_subprocess_get_if_exited (process) ? g_subprocess_get_exit_status (process) : -1;
}

GPtrArray *
tocsin_test_app_export (GSubprocessLauncher *launcher)
{
  g_autofree char *out = NULL;
  g_auto(GStrv) lines = NULL;
  GPtrArray *records = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);

  g_assert_cmpint (tocsin_test_app_run (launcher, &out, "--export-records=-", NULL), ==, 0);
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autoptr(GError) error = NULL;

      if (*lines[i] == '\0')
        continue;
      json_parser_load_from_data (parser, lines[i], -1, &error);
      g_assert_no_error (error);
      g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
      g_ptr_array_add (records,
                       json_object_ref (json_node_get_object (json_parser_get_root (parser))));
    }
  return records;
}

GHashTable *
tocsin_test_app_export_counts (GSubprocessLauncher *launcher,
                               gboolean             messages_only)
{
  g_autoptr(GPtrArray) records = tocsin_test_app_export (launcher);
  GHashTable *counts = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);

  for (guint i = 0; i < records->len; i++)
    {
      JsonObject *record = records->pdata[i];
      gint64 id = json_object_get_int_member (record, "id");
      guint count;

      if (messages_only &&
          g_strcmp0 (json_object_get_string_member_with_default (record, "kind", NULL),
                     "gap") == 0)
        continue;
      count = GPOINTER_TO_UINT (g_hash_table_lookup (counts, &id));
      g_hash_table_replace (counts, g_memdup2 (&id, sizeof id), GUINT_TO_POINTER (count + 1));
    }
  return counts;
}

gboolean
tocsin_test_app_is_running (GDBusConnection *bus)
{
  g_autoptr(GVariant) reply = NULL;
  gboolean has_owner = FALSE;

  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", APP_ID), G_VARIANT_TYPE ("(b)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &has_owner);
  return has_owner;
}

GSubprocess *
tocsin_test_app_start (GSubprocessLauncher *launcher,
                       GDBusConnection     *bus)
{
  g_autoptr(GSubprocessLauncher) owned = launcher;
  g_autoptr(GError) error = NULL;
  GSubprocess *process;

  g_subprocess_launcher_set_flags (launcher, G_SUBPROCESS_FLAGS_NONE);
  process = g_subprocess_launcher_spawn (launcher, &error, tocsin_test_app_binary (),
                                         "--background", NULL);
  g_assert_no_error (error);
  TOCSIN_WAIT_UNTIL (tocsin_test_app_is_running (bus));
  return process;
}

static void
wait_done_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (object), result, NULL);
  *(gboolean *) user_data = TRUE;
}

void
tocsin_test_app_quit (GSubprocess     *process,
                      GDBusConnection *bus)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  gboolean done = FALSE;

  reply = g_dbus_connection_call_sync (bus, APP_ID, "/io/github/tocsin/Tocsin",
                                       "org.gtk.Actions", "Activate",
                                       g_variant_new ("(sava{sv})", "quit", NULL, NULL),
                                       NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  g_subprocess_wait_async (process, NULL, wait_done_cb, &done);
  TOCSIN_WAIT_UNTIL (done);
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);
  TOCSIN_WAIT_UNTIL (!tocsin_test_app_is_running (bus));
}

void
tocsin_test_load_init (TocsinTestLoad *load)
{
  load->sent = load->acked = 0;
  load->acked_ids = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
}

void
tocsin_test_load_clear (TocsinTestLoad *load)
{
  g_clear_pointer (&load->acked_ids, g_hash_table_destroy);
}

gint64
tocsin_test_load_ring (TocsinTestLoad  *load,
                       TocsinTestRelay *relay,
                       JsonObject      *channel,
                       guint            n,
                       const char      *phase,
                       gboolean         never_duplicate)
{
  g_autofree char *path = NULL;
  g_autoptr(JsonNode) root = NULL;
  guint status = 0;
  gint64 id;

  path = g_strdup_printf ("/t/%s?n=%u&phase=%s",
                          json_object_get_string_member (channel, "trigger_token"), n, phase);
  load->sent++;
  root = tocsin_test_http_json (relay, "GET", path, NULL, NULL, NULL, &status);
  if (status != 200)
    {
      g_test_message ("ring %u (%s) answered %u", n, phase, status);
      return 0;
    }
  id = json_object_get_int_member (json_node_get_object (root), "id");
  g_assert_cmpint (id, >, 0);
  if (never_duplicate)
    g_assert_false (json_object_get_boolean_member_with_default (json_node_get_object (root),
                                                                 "duplicate", FALSE));
  g_assert_false (g_hash_table_contains (load->acked_ids, &id));
  g_hash_table_add (load->acked_ids, g_memdup2 (&id, sizeof id));
  load->acked++;
  return id;
}

gboolean
tocsin_test_load_all_stored (TocsinTestLoad *load,
                             GHashTable     *counts)
{
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, load->acked_ids);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (counts, key))
      return FALSE;
  return TRUE;
}

void
tocsin_test_load_wait_stored (TocsinTestLoad *load,
                              GHashTable   *(*export_counts) (void),
                              guint           deadline_s)
{
  gint64 deadline = g_get_monotonic_time () + deadline_s * G_USEC_PER_SEC;

  for (;;)
    {
      g_autoptr(GHashTable) counts = export_counts ();
      gint64 next_poll;

      if (tocsin_test_load_all_stored (load, counts))
        return;
      if (g_get_monotonic_time () > deadline)
        g_error ("the app stored %u records but %u were acknowledged, after %u s",
                 g_hash_table_size (counts), load->acked, deadline_s);
      next_poll = g_get_monotonic_time () + G_USEC_PER_SEC / 5;
      while (g_get_monotonic_time () < next_poll)
        {
          g_main_context_iteration (NULL, FALSE);
          g_usleep (10 * 1000);
        }
    }
}

void
tocsin_test_load_assert_exactly_once (TocsinTestLoad *load,
                                      GHashTable     *counts,
                                      const char     *what)
{
  GHashTableIter iter;
  gpointer key, value;
  guint stored = 0, lost = 0, dup = 0, unacked = 0;

  g_hash_table_iter_init (&iter, counts);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      stored += GPOINTER_TO_UINT (value);
      dup += GPOINTER_TO_UINT (value) - 1;
      if (!g_hash_table_contains (load->acked_ids, key))
        unacked++;
    }
  g_hash_table_iter_init (&iter, load->acked_ids);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (counts, key))
      lost++;

  g_test_message ("%s: sent=%u acked=%u stored=%u lost=%u dup=%u stored-unacked=%u", what,
                  load->sent, load->acked, stored, lost, dup, unacked);
  g_assert_cmpuint (load->acked, >, 0);
  g_assert_cmpuint (lost, ==, 0);
  g_assert_cmpuint (dup, ==, 0);
  g_assert_cmpuint (unacked, ==, 0);
  g_assert_cmpuint (stored, ==, load->acked);
}
