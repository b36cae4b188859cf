/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-app-i18n.c: the French and Russian catalogues as a user in those languages gets them, at
 * run time: the compiled .mo files from this build, loaded by gettext for a real fr_FR.UTF-8 or
 * ru_RU.UTF-8 locale, in a record the app's history writes (a gap: "Some notifications from X
 * were missed") and in Russian's three plural forms. msgfmt --check-format only proves the
 * catalogues compile; this proves a user switching language sees them.
 *
 * The locales are compiled by localedef into a temporary LOCPATH, so neither root nor an
 * installed locale is needed; without localedef (Debian's `locales` package) the cases skip.
 */
#include "config.h"

#include <locale.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>

#include "tocsin-history.h"
#include "tocsin-test-relay.h"

static char *tmpdir;
static char *locales_missing;   /* why the locales could not be made, or NULL */

/* Compiles @name (e.g. "fr_FR") for UTF-8 into tmpdir/<name>.UTF-8. */
static gboolean
make_locale (const char  *name,
             GError     **error)
{
  g_autofree char *out = g_strdup_printf ("%s/%s.UTF-8", tmpdir, name);
  g_autofree char *err = NULL;
  const char *argv[] = { "localedef", "-i", name, "-c", "-f", "UTF-8", out, NULL };
  int status;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                     NULL, NULL, NULL, &err, &status, error))
    return FALSE;
  /* -c: warnings do not fail the compile, but a locale that was not written does. */
  if (!g_file_test (out, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "localedef %s: %s", name,
                   err ? err : "no output");
      return FALSE;
    }
  return TRUE;
}

static gboolean
use_locale (const char *locale)
{
  if (locales_missing)
    {
      g_test_skip (locales_missing);
      return FALSE;
    }
  g_assert_nonnull (setlocale (LC_ALL, locale));
  return TRUE;
}

static void
on_gap_added (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  TocsinRecord **out = data;
  g_autoptr(GError) error = NULL;

  *out = tocsin_history_add_gap_finish (TOCSIN_HISTORY (source), result, &error);
  g_assert_no_error (error);
}

/* The gap record the history stores for channel "Prod" missing ids 3..7, as the user's records
 * view (and --export-records) shows it, in the current locale. */
static TocsinRecord *
store_gap (void)
{
  g_autofree char *path = g_build_filename (tmpdir, "history.db", NULL);
  g_autoptr(TocsinHistory) history = tocsin_history_new (path);
  TocsinRecord *record = NULL;

  tocsin_history_add_gap_async (history, "http://relay.test", 1, "Prod", 3, 7, NULL,
                                on_gap_added, &record);
  TOCSIN_WAIT_UNTIL (record != NULL);
  tocsin_history_flush_sync (history);
  return record;
}

static void
test_french (void)
{
  g_autoptr(TocsinRecord) record = NULL;

  if (!use_locale ("fr_FR.UTF-8"))
    return;
  record = store_gap ();
  g_assert_cmpstr (tocsin_record_get_title (record), ==,
                   "Des notifications de Prod ont été manquées");
  g_assert_true (g_str_has_prefix (tocsin_record_get_body (record), "Les messages 3 à 7 "));
  setlocale (LC_ALL, "C");
}

static void
test_russian (void)
{
  g_autoptr(TocsinRecord) record = NULL;
  /* Russian has three forms: 1, 21 (one); 2–4, 22 (few); 5–20, 11–14, 25 (many). */
  const struct { gulong n; const char *form; } cases[] = {
    { 1, "%u подписка" }, { 21, "%u подписка" }, { 3, "%u подписки" },
    { 22, "%u подписки" }, { 5, "%u подписок" }, { 11, "%u подписок" }, { 14, "%u подписок" },
  };

  if (!use_locale ("ru_RU.UTF-8"))
    return;
  record = store_gap ();
  g_assert_cmpstr (tocsin_record_get_title (record), ==, "Некоторые уведомления от Prod пропущены");
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    g_assert_cmpstr (g_dngettext (GETTEXT_PACKAGE, "%u subscription", "%u subscriptions",
                                  cases[i].n), ==, cases[i].form);
  setlocale (LC_ALL, "C");
}

/* The same code in the test's own C locale: English, so the cases above did switch. */
static void
test_english (void)
{
  g_autoptr(TocsinRecord) record = NULL;

  g_assert_nonnull (setlocale (LC_ALL, "C"));
  record = store_gap ();
  g_assert_cmpstr (tocsin_record_get_title (record), ==, "Some notifications from Prod were missed");
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  const char *build_root = g_getenv ("TOCSIN_BUILD_ROOT");
  g_autofree char *localedir = NULL;
  int status;

  tmpdir = tocsin_test_make_tmpdir ("i18n");
  if (!make_locale ("fr_FR", &error) || !make_locale ("ru_RU", &error))
    locales_missing = g_strdup_printf ("cannot compile the fr_FR and ru_RU locales: %s",
                                       error->message);
  /* Before any thread exists and before setlocale looks for them. */
  g_setenv ("LOCPATH", tmpdir, TRUE);

  g_test_init (&argc, &argv, NULL);
  g_assert_nonnull (build_root);
  localedir = g_build_filename (build_root, "po", NULL);
  bindtextdomain (GETTEXT_PACKAGE, localedir);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  g_test_add_func ("/app/i18n/french", test_french);
  g_test_add_func ("/app/i18n/russian", test_russian);
  g_test_add_func ("/app/i18n/english", test_english);
  status = g_test_run ();
  tocsin_test_rmdir_recursive (tmpdir);
  return status;
}
