/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tocsin-relay-head.c: a look at a request's first line before libsoup reads it.
 *
 * The decision is GLib's own: the target is parsed with the flags libsoup uses
 * (SOUP_HTTP_URI_FLAGS), so the relay refuses exactly what libsoup would, and only says why.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-relay-head.h"

/* libsoup's SOUP_HTTP_URI_FLAGS, without including libsoup here. */
#define HTTP_URI_FLAGS (G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_ENCODED_PATH | \
                        G_URI_FLAGS_ENCODED_QUERY | G_URI_FLAGS_ENCODED_FRAGMENT | \
                        G_URI_FLAGS_SCHEME_NORMALIZE)

static gboolean
has_bad_escape (const char *target,
                gsize       length)
{
  for (gsize i = 0; i < length; i++)
    if (target[i] == '%' &&
        (i + 2 >= length || !g_ascii_isxdigit (target[i + 1]) ||
         !g_ascii_isxdigit (target[i + 2])))
      return TRUE;
  return FALSE;
}

TocsinRelayHeadVerdict
tocsin_relay_head_inspect (const char  *data,
                           gsize        length,
                           char       **sentence)
{
  const char *end, *target, *target_end;
  g_autofree char *url = NULL;
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GError) error = NULL;

  g_return_val_if_fail (data != NULL || length == 0, TOCSIN_RELAY_HEAD_UNKNOWN);
  g_return_val_if_fail (sentence != NULL, TOCSIN_RELAY_HEAD_UNKNOWN);

  *sentence = NULL;
  end = memchr (data, '\n', length);
  if (end == NULL)
    return length >= TOCSIN_RELAY_HEAD_LONG_LINE ? TOCSIN_RELAY_HEAD_LINE_TOO_LONG
                                                  : TOCSIN_RELAY_HEAD_UNKNOWN;
  if (end - data >= TOCSIN_RELAY_HEAD_LONG_LINE)
    return TOCSIN_RELAY_HEAD_LINE_TOO_LONG;

  /* METHOD SP target SP HTTP-version: anything else is libsoup's to refuse as it does. */
  target = memchr (data, ' ', end - data);
  if (target == NULL)
    return TOCSIN_RELAY_HEAD_OK;
  target++;
  target_end = memchr (target, ' ', end - target);
  if (target_end == NULL || target == target_end || *target != '/')
    return TOCSIN_RELAY_HEAD_OK;

  url = g_strdup_printf ("http://localhost%.*s", (int) (target_end - target), target);
  uri = g_uri_parse (url, HTTP_URI_FLAGS, &error);
  if (uri != NULL)
    return TOCSIN_RELAY_HEAD_OK;

  if (has_bad_escape (target, target_end - target))
    *sentence = g_strdup (_("The URL has a “%” that is not followed by two hexadecimal digits; "
                            "write a literal “%” as “%25”."));
  else
    *sentence = g_strdup_printf (_("The URL is not valid (%s); percent-encode the characters "
                                   "it holds outside of letters, digits and -._~"),
                                 error->message);
  return TOCSIN_RELAY_HEAD_BAD_TARGET;
}
