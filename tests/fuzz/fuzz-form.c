/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libFuzzer target for the relay's query and form decoder, tocsin_relay_body_add_form_pairs:
 * what a webhook sender puts in `?a=1&b=2` or an application/x-www-form-urlencoded body.
 *
 * Beyond "does not crash": an error exactly when it refuses, with a UTF-8 sentence; every
 * variable name and value it keeps is valid UTF-8 without a NUL; and the query form (NUL-
 * terminated) and the body form (with a length) agree on input without a NUL.
 */
#define G_LOG_DOMAIN "fuzz-form"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "tocsin-relay-body.h"

static void
check (gboolean    ok,
       const char *what)
{
  if (!ok)
    {
      g_printerr ("invariant broken: %s\n", what);
      abort ();
    }
}


int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(JsonObject) again = json_object_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) error_again = NULL;
  g_autoptr(GList) members = NULL;
  gboolean ok;

  ok = tocsin_relay_body_add_form_pairs (vars, (const char *) data, size, "body", &error);
  check (ok == (error == NULL), "an error exactly when the form is refused");
  if (!ok)
    {
      check (g_utf8_validate (error->message, -1, NULL), "the reason is valid UTF-8");
      check (json_object_get_size (vars) == 0, "a refused form adds no variable");
    }

  members = json_object_get_members (vars);
  for (GList *l = members; l; l = l->next)
    {
      const char *value = json_object_get_string_member (vars, l->data);

      check (g_utf8_validate (l->data, -1, NULL), "names are valid UTF-8");
      check (value != NULL && g_utf8_validate (value, -1, NULL), "values are valid UTF-8");
    }

  if (memchr (data, '\0', size) == NULL)
    {
      g_autofree char *text = g_strndup ((const char *) data, size);
      gboolean ok_again = tocsin_relay_body_add_form_pairs (again, text, -1, "query string",
                                                            &error_again);

      check (ok_again == ok, "the query and the body decode alike");
      check (json_object_get_size (again) == json_object_get_size (vars),
             "the query and the body give the same variables");
    }
  return 0;
}
