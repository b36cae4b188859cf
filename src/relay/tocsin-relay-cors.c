/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-cors.c: the CORS policy (see the header).
 *
 * A browser lets a page read a cross-origin answer only when it carries
 * Access-Control-Allow-Origin, and asks first (OPTIONS, a preflight) before anything but a
 * simple GET or form POST. CORS alone protects the reading, not the request: a form POST from
 * any page still arrives, and WebSockets are not covered at all. So a request that names an
 * Origin the policy refuses is answered 403 here, before any handler acts on it. Requests
 * without Origin (curl, the app, every webhook sender) and pages of the relay's own origin are
 * never affected.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-relay-compat.h"
#include "tocsin-relay-cors.h"
#include "tocsin-relay-server.h"

typedef enum
{
  SCOPE_NONE,
  SCOPE_TOKEN,   /* the token is the secret: cors-origins */
  SCOPE_OWNER,   /* keys in headers: owner-cors-origins */
} Scope;

/* What a page needs to read from the answers besides the CORS-safelisted headers. */
#define TOKEN_EXPOSED "RateLimit, RateLimit-Policy, Retry-After"
#define OWNER_EXPOSED "Location, Retry-After"

static gboolean
is_token_segment (const char *segment,
                  gsize       length)
{
  if (length == 0)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    if (!g_ascii_isalnum (segment[i]) && segment[i] != '-' && segment[i] != '_')
      return FALSE;
  return TRUE;
}

/* Which policy @path falls under, and the methods it takes. */
static Scope
classify (const char  *path,
          const char **methods)
{
  if (g_str_has_prefix (path, "/t/") && is_token_segment (path + 3, strlen (path + 3)))
    {
      *methods = "GET, POST, PUT";
      return SCOPE_TOKEN;
    }
  /* ntfy's and Gotify's publish URLs: the topic (or the key they carry) is the secret. */
  if (tocsin_relay_compat_match ("POST", path, NULL) != TOCSIN_RELAY_COMPAT_NONE ||
      tocsin_relay_compat_match ("GET", path, NULL) != TOCSIN_RELAY_COMPAT_NONE)
    {
      *methods = "GET, POST, PUT";
      return SCOPE_TOKEN;
    }
  /* A Direct key is a token URL too (tocsin-relay-direct.c). */
  if (g_str_has_prefix (path, "/d/") && is_token_segment (path + 3, strlen (path + 3)))
    {
      *methods = "GET, POST";
      return SCOPE_TOKEN;
    }
  if (g_str_has_prefix (path, "/s/"))
    {
      const char *token = path + 3;
      const char *slash = strchr (token, '/');

      if (is_token_segment (token, slash ? (gsize) (slash - token) : strlen (token)) &&
          (slash == NULL || g_str_equal (slash, "/sse") || g_str_equal (slash, "/json") ||
           g_str_equal (slash, "/ws")))
        {
          *methods = "GET";
          return SCOPE_TOKEN;
        }
      return SCOPE_NONE;
    }
  if (g_str_equal (path, "/v1/channels") || g_str_has_prefix (path, "/v1/channels/") ||
      g_str_equal (path, "/v1/direct") || g_str_has_prefix (path, "/v1/direct/"))
    {
      *methods = "GET, POST, PATCH, DELETE";
      return SCOPE_OWNER;
    }
  return SCOPE_NONE;
}

/* The part of an origin or a Host header after the scheme, without a trailing dot. */
static char *
authority_of (const char *text)
{
  const char *sep = strstr (text, "://");
  g_autofree char *lower = g_ascii_strdown (sep ? sep + 3 : text, -1);
  gsize length = strlen (lower);

  if (length > 0 && lower[length - 1] == '/')
    lower[--length] = '\0';
  return g_steal_pointer (&lower);
}

/* A page of the relay's own origin: the Host it was asked by, or the origin of public-url (a
 * proxy in front may rewrite Host). Schemes are not compared: no one else can serve another
 * scheme on the relay's own host and port. */
static gboolean
same_origin (const TocsinRelayConfig *config,
             SoupServerMessage       *msg,
             const char              *origin)
{
  const char *host = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                   "Host");
  g_autofree char *own = authority_of (origin);

  if (host != NULL && *host != '\0')
    {
      g_autofree char *asked = authority_of (host);

      if (g_str_equal (own, asked))
        return TRUE;
    }
  if (config->public_url != NULL)
    {
      g_autoptr(GUri) uri = g_uri_parse (config->public_url, G_URI_FLAGS_NONE, NULL);

      if (uri != NULL && g_uri_get_host (uri) != NULL)
        {
          g_autofree char *host_part = g_ascii_strdown (g_uri_get_host (uri), -1);
          g_autofree char *public = g_uri_get_port (uri) > 0
                                      ? g_strdup_printf ("%s:%d", host_part, g_uri_get_port (uri))
                                      : g_steal_pointer (&host_part);

          if (g_str_equal (own, public))
            return TRUE;
        }
    }
  return FALSE;
}

static gboolean
list_has_any (GStrv list)
{
  for (guint i = 0; list && list[i]; i++)
    if (g_str_equal (list[i], "*"))
      return TRUE;
  return FALSE;
}

static gboolean
list_allows (GStrv       list,
             const char *origin)
{
  g_autofree char *lower = g_ascii_strdown (origin, -1);

  for (guint i = 0; list && list[i]; i++)
    if (g_str_equal (list[i], "*") || g_str_equal (list[i], lower))
      return TRUE;
  return FALSE;
}

/* Access-Control-Request-Headers is echoed only when it is a plain list of header names. */
static gboolean
is_header_list (const char *text)
{
  if (strlen (text) > 1024)
    return FALSE;
  for (const char *p = text; *p; p++)
    if (!g_ascii_isalnum (*p) && !strchr ("!#$%&'*+-.^_`|~, ", *p))
      return FALSE;
  return TRUE;
}

gboolean
tocsin_relay_cors_handle (const TocsinRelayConfig  *config,
                          SoupServerMessage        *msg,
                          const char               *path)
{
  SoupMessageHeaders *request = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *response = soup_server_message_get_response_headers (msg);
  const char *methods = NULL;
  const char *origin, *wanted_method, *wanted_headers;
  gboolean options, any;
  GStrv list;
  Scope scope;

  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (SOUP_IS_SERVER_MESSAGE (msg), FALSE);

  scope = classify (path, &methods);
  if (scope == SCOPE_NONE)
    return FALSE;
  list = scope == SCOPE_TOKEN ? config->cors_origins : config->owner_cors_origins;
  any = list_has_any (list);
  origin = soup_message_headers_get_one (request, "Origin");
  wanted_method = soup_message_headers_get_one (request, "Access-Control-Request-Method");
  options = soup_server_message_get_method (msg) == SOUP_METHOD_OPTIONS;

  /* Unless every origin gets the same answer, a cache must keep one per origin. */
  if (!any)
    soup_message_headers_append (response, "Vary", "Origin");

  if (options && (origin == NULL || wanted_method == NULL))
    {
      /* A plain OPTIONS, not a browser's preflight: what the URL takes. */
      g_autofree char *allow = g_strconcat (methods, ", OPTIONS", NULL);

      soup_message_headers_replace (response, "Allow", allow);
      soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
      return TRUE;
    }
  if (origin == NULL)
    return FALSE;

  if (!list_allows (list, origin) && !same_origin (config, msg, origin))
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_FORBIDDEN,
                                       scope == SCOPE_TOKEN
                                         ? _("This relay does not let web pages of this origin "
                                             "use its webhook and stream URLs; its operator can "
                                             "add the origin to cors-origins.")
                                         : _("This relay’s owner API answers pages of its own "
                                             "origin only; its operator can add this origin to "
                                             "owner-cors-origins."));
      return TRUE;
    }

  /* No cookies or HTTP authentication are ever needed, so `*` can be sent as it is. */
  soup_message_headers_replace (response, "Access-Control-Allow-Origin", any ? "*" : origin);
  if (!options)
    {
      soup_message_headers_replace (response, "Access-Control-Expose-Headers",
                                    scope == SCOPE_TOKEN ? TOKEN_EXPOSED : OWNER_EXPOSED);
      return FALSE;
    }

  wanted_headers = soup_message_headers_get_one (request, "Access-Control-Request-Headers");
  soup_message_headers_replace (response, "Access-Control-Allow-Methods", methods);
  if (wanted_headers != NULL && *wanted_headers != '\0' && is_header_list (wanted_headers))
    soup_message_headers_replace (response, "Access-Control-Allow-Headers", wanted_headers);
  /* Chromium's Private Network Access: a public page asking a relay on a private address. */
  if (g_strcmp0 (soup_message_headers_get_one (request,
                                               "Access-Control-Request-Private-Network"),
                 "true") == 0)
    soup_message_headers_replace (response, "Access-Control-Allow-Private-Network", "true");
  {
    g_autofree char *max_age = g_strdup_printf ("%d", TOCSIN_RELAY_CORS_MAX_AGE);

    soup_message_headers_replace (response, "Access-Control-Max-Age", max_age);
  }
  soup_message_headers_replace (response, "Cache-Control", "no-store");
  soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
  return TRUE;
}

GStrv
tocsin_relay_cors_parse_origins (const char  *key,
                                 const char  *text,
                                 GError     **error)
{
  g_auto(GStrv) items = g_strsplit_set (text ? text : "", ", ", -1);
  g_autoptr(GPtrArray) kept = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; items[i]; i++)
    {
      g_autoptr(GUri) uri = NULL;
      const char *item = items[i];
      const char *scheme;
      int port;

      if (*item == '\0' || g_ascii_strcasecmp (item, "none") == 0)
        continue;
      if (g_str_equal (item, "*"))
        {
          g_ptr_array_add (kept, g_strdup ("*"));
          continue;
        }
      uri = g_uri_parse (item, G_URI_FLAGS_NONE, NULL);
      scheme = uri ? g_uri_get_scheme (uri) : NULL;
      if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0' ||
          (g_strcmp0 (scheme, "http") != 0 && g_strcmp0 (scheme, "https") != 0) ||
          (*g_uri_get_path (uri) != '\0' && !g_str_equal (g_uri_get_path (uri), "/")) ||
          g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL ||
          g_uri_get_userinfo (uri) != NULL)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("%s takes *, none, or origins such as https://example.com or "
                         "http://127.0.0.1:8000 separated by commas, not “%s”."), key, item);
          return NULL;
        }
      port = g_uri_get_port (uri);
      if ((port == 80 && g_str_equal (scheme, "http")) ||
          (port == 443 && g_str_equal (scheme, "https")))
        port = -1;
      {
        g_autofree char *host = g_ascii_strdown (g_uri_get_host (uri), -1);
        /* GUri gives an IPv6 host without its brackets; an Origin header has them. */
        gboolean ipv6 = strchr (host, ':') != NULL;

        g_ptr_array_add (kept, port > 0
                                 ? g_strdup_printf ("%s://%s%s%s:%d", scheme, ipv6 ? "[" : "",
                                                    host, ipv6 ? "]" : "", port)
                                 : g_strdup_printf ("%s://%s%s%s", scheme, ipv6 ? "[" : "",
                                                    host, ipv6 ? "]" : ""));
      }
    }
  g_ptr_array_add (kept, NULL);
  return (GStrv) g_ptr_array_free (g_steal_pointer (&kept), FALSE);
}
