/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <errno.h>
#include <inttypes.h> /* PRIu64 in _(): xgettext cannot see through G_GUINT64_FORMAT */
#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-relay-config.h"
#include "tocsin-relay-cors.h"
#include "tocsin-relay-store-pg.h"

#define GROUP "relay"

void
tocsin_relay_config_init (TocsinRelayConfig *config)
{
  g_return_if_fail (config != NULL);

  memset (config, 0, sizeof *config);
  config->max_body = 64 * 1024;
  config->retention_seconds = 24 * 60 * 60;
  config->rate_per_second = 5.0;
  config->rate_burst = 30;
  config->max_queue_bytes = 1024 * 1024;
  config->max_queue_frames = 1000;
  config->max_connections = 20000;
  config->idle_timeout = 60;
  config->subscribe_timeout = 10;
  config->open_relay = FALSE;
  config->cors_origins = g_strsplit ("*", ",", -1);
  config->max_mail = 1024 * 1024;
  config->forward_timeout_s = 10;
  config->forward_max_attempts = 8;
  config->forward_backoff_base_ms = 1000;
  config->forward_backoff_max_ms = 600 * 1000;
  config->forward_cooldown_ms = 30 * 1000;
}

void
tocsin_relay_config_clear (TocsinRelayConfig *config)
{
  g_return_if_fail (config != NULL);

  g_clear_pointer (&config->data_dir, g_free);
  g_clear_pointer (&config->public_url, g_free);
  g_clear_pointer (&config->allowed_hosts, g_strfreev);
  g_clear_pointer (&config->cors_origins, g_strfreev);
  g_clear_pointer (&config->owner_cors_origins, g_strfreev);
  g_clear_pointer (&config->mail_domain, g_free);
  g_clear_pointer (&config->forward_ca_file, g_free);
  g_clear_pointer (&config->trusted_proxies, g_ptr_array_unref);
}

void
tocsin_relay_serve_config_init (TocsinRelayServeConfig *config)
{
  memset (config, 0, sizeof *config);
  tocsin_relay_config_init (&config->relay);
  config->listen = NULL;
  config->backlog = 4096;
  config->workers = 1;
}

void
tocsin_relay_serve_config_clear (TocsinRelayServeConfig *config)
{
  tocsin_relay_config_clear (&config->relay);
  g_clear_pointer (&config->listen, g_strfreev);
  g_clear_pointer (&config->tls_cert, g_free);
  g_clear_pointer (&config->tls_key, g_free);
  g_clear_pointer (&config->smtp_listen, g_free);
  g_clear_pointer (&config->database, g_free);
  g_clear_pointer (&config->node_name, g_free);
}

gint64
tocsin_relay_parse_duration (const char *text)
{
  guint64 value;
  char *end = NULL;
  gint64 unit = 1;

  if (text == NULL || !g_ascii_isdigit (*text))
    return -1;
  errno = 0;
  value = g_ascii_strtoull (text, &end, 10);
  if (errno != 0)
    return -1;
  switch (*end)
    {
    case '\0': case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 60 * 60; break;
    case 'd': unit = 24 * 60 * 60; break;
    default: return -1;
    }
  if (*end != '\0' && end[1] != '\0')
    return -1;
  if (value > (guint64) (G_MAXINT64 / unit))
    return -1;
  return (gint64) value * unit;
}

static gboolean
parse_size (const char  *key,
            const char  *text,
            guint64      min,
            guint64      max,
            guint64     *out,
            GError     **error)
{
  guint64 value;
  char *end = NULL;
  guint64 unit = 1;

  errno = 0;
  value = text && g_ascii_isdigit (*text) ? g_ascii_strtoull (text, &end, 10) : 0;
  if (end != NULL && errno == 0)
    {
      if (g_ascii_strcasecmp (end, "k") == 0 || g_ascii_strcasecmp (end, "KiB") == 0)
        unit = 1024;
      else if (g_ascii_strcasecmp (end, "m") == 0 || g_ascii_strcasecmp (end, "MiB") == 0)
        unit = 1024 * 1024;
      else if (*end != '\0')
        end = NULL;
    }
  if (end == NULL || errno != 0 || value > max / unit || value * unit < min)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("%s must be a number from %" PRIu64 " to %" PRIu64
                     " (a K or M suffix is allowed), not “%s”."),
                   key, (uint64_t) min, (uint64_t) max, text ? text : "");
      return FALSE;
    }
  *out = value * unit;
  return TRUE;
}

static gboolean
parse_seconds (const char  *key,
               const char  *text,
               gint64       min,
               gint64      *out,
               GError     **error)
{
  gint64 value = tocsin_relay_parse_duration (text);

  if (value < min)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("%s must be a duration such as 90, 90s, 15m, 24h or 7d, not “%s”."),
                   key, text ? text : "");
      return FALSE;
    }
  *out = value;
  return TRUE;
}

/* "250ms", or a duration as parse_seconds takes it; in milliseconds, @min..@max. */
static gboolean
parse_millis (const char  *key,
              const char  *text,
              gint64       min,
              gint64       max,
              guint       *out,
              GError     **error)
{
  gint64 value = -1;

  if (text != NULL && g_str_has_suffix (text, "ms") && g_ascii_isdigit (*text))
    {
      g_autofree char *number = g_strndup (text, strlen (text) - 2);
      char *end = NULL;
      guint64 parsed;

      errno = 0;
      parsed = g_ascii_strtoull (number, &end, 10);
      if (errno == 0 && end != NULL && *end == '\0' && parsed <= G_MAXINT32)
        value = (gint64) parsed;
    }
  else
    {
      gint64 seconds = tocsin_relay_parse_duration (text);

      if (seconds >= 0 && seconds <= G_MAXINT32 / 1000)
        value = seconds * 1000;
    }
  if (value < min || value > max)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("%s must be a duration such as 250ms, 10s or 5m, from %" PRId64 " ms to "
                     "%" PRId64 " ms, not “%s”."), key, (int64_t) min, (int64_t) max,
                   text ? text : "");
      return FALSE;
    }
  *out = (guint) value;
  return TRUE;
}

static gboolean
parse_rate (const char  *text,
            double      *out,
            GError     **error)
{
  char *end = NULL;
  double value = text ? g_ascii_strtod (text, &end) : -1;

  if (end == NULL || end == text || *end != '\0' || !(value > 0) || value > 1e6)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("rate must be a positive number of messages a second, not “%s”."),
                   text ? text : "");
      return FALSE;
    }
  *out = value;
  return TRUE;
}

static gboolean
parse_bool (const char  *key,
            const char  *text,
            gboolean    *out,
            GError     **error)
{
  if (g_strcmp0 (text, "yes") == 0 || g_strcmp0 (text, "true") == 0 || g_strcmp0 (text, "1") == 0)
    *out = TRUE;
  else if (g_strcmp0 (text, "no") == 0 || g_strcmp0 (text, "false") == 0 ||
           g_strcmp0 (text, "0") == 0)
    *out = FALSE;
  else
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("%s must be yes or no, not “%s”."), key, text ? text : "");
      return FALSE;
    }
  return TRUE;
}

static gboolean
strip_trailing_slash_url (const char  *text,
                          char       **out,
                          GError     **error)
{
  g_autoptr(GUri) uri = g_uri_parse (text, G_URI_FLAGS_NONE, NULL);
  g_autofree char *copy = NULL;
  gsize len;

  if (uri == NULL || g_uri_get_host (uri) == NULL ||
      (g_strcmp0 (g_uri_get_scheme (uri), "http") != 0 &&
       g_strcmp0 (g_uri_get_scheme (uri), "https") != 0) ||
      g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("public-url must be an http:// or https:// URL such as "
                     "https://relay.example.com, not “%s”."), text);
      return FALSE;
    }
  copy = g_strdup (text);
  len = strlen (copy);
  while (len > 0 && copy[len - 1] == '/')
    copy[--len] = '\0';
  g_free (*out);
  *out = g_steal_pointer (&copy);
  return TRUE;
}

/* One setting by its key-file/flag name; shared by the file and the command line. */
static gboolean
apply_setting (TocsinRelayServeConfig  *config,
               const char              *key,
               const char              *value,
               GError                 **error)
{
  TocsinRelayConfig *relay = &config->relay;
  guint64 u = 0;
  gint64 s = 0;

  if (g_str_equal (key, "data-dir"))
    {
      g_free (relay->data_dir);
      relay->data_dir = g_strdup (value);
    }
  else if (g_str_equal (key, "public-url"))
    return strip_trailing_slash_url (value, &relay->public_url, error);
  else if (g_str_equal (key, "max-body"))
    {
      if (!parse_size (key, value, 1024, 64 * 1024 * 1024, &u, error))
        return FALSE;
      relay->max_body = u;
    }
  else if (g_str_equal (key, "retention"))
    {
      if (!parse_seconds (key, value, 0, &s, error))
        return FALSE;
      relay->retention_seconds = s;
    }
  else if (g_str_equal (key, "rate"))
    return parse_rate (value, &relay->rate_per_second, error);
  else if (g_str_equal (key, "burst"))
    {
      if (!parse_size (key, value, 1, 1000000, &u, error))
        return FALSE;
      relay->rate_burst = (guint) u;
    }
  else if (g_str_equal (key, "max-queue-bytes"))
    {
      if (!parse_size (key, value, 4096, G_MAXUINT32, &u, error))
        return FALSE;
      relay->max_queue_bytes = u;
    }
  else if (g_str_equal (key, "max-queue-frames"))
    {
      if (!parse_size (key, value, 1, 10000000, &u, error))
        return FALSE;
      relay->max_queue_frames = (guint) u;
    }
  else if (g_str_equal (key, "max-connections"))
    {
      if (!parse_size (key, value, 1, 10000000, &u, error))
        return FALSE;
      relay->max_connections = (guint) u;
    }
  else if (g_str_equal (key, "idle-timeout"))
    {
      if (!parse_seconds (key, value, 1, &s, error))
        return FALSE;
      relay->idle_timeout = (guint) MIN (s, 24 * 60 * 60);
    }
  else if (g_str_equal (key, "subscribe-timeout"))
    {
      if (!parse_seconds (key, value, 0, &s, error))
        return FALSE;
      relay->subscribe_timeout = (guint) MIN (s, 24 * 60 * 60);
    }
  else if (g_str_equal (key, "allowed-hosts"))
    {
      g_auto(GStrv) names = g_strsplit_set (value ? value : "", ", ", -1);
      GPtrArray *kept = g_ptr_array_new ();

      for (guint i = 0; names[i]; i++)
        if (*names[i] != '\0')
          g_ptr_array_add (kept, g_ascii_strdown (names[i], -1));
      g_ptr_array_add (kept, NULL);
      g_strfreev (relay->allowed_hosts);
      relay->allowed_hosts = (GStrv) g_ptr_array_free (kept, FALSE);
    }
  else if (g_str_equal (key, "cors-origins") || g_str_equal (key, "owner-cors-origins"))
    {
      GStrv *slot = g_str_equal (key, "cors-origins") ? &relay->cors_origins
                                                       : &relay->owner_cors_origins;
      GStrv list = tocsin_relay_cors_parse_origins (key, value, error);

      if (list == NULL)
        return FALSE;
      g_strfreev (*slot);
      *slot = list;
    }
  else if (g_str_equal (key, "open-relay"))
    {
      if (!parse_bool (key, value, &relay->open_relay, error))
        return FALSE;
      config->open_relay_set = TRUE;
    }
  else if (g_str_equal (key, "backlog"))
    {
      if (!parse_size (key, value, 1, 65535, &u, error))
        return FALSE;
      config->backlog = (guint) u;
    }
  else if (g_str_equal (key, "tls-cert") || g_str_equal (key, "tls-key"))
    {
      char **slot = g_str_equal (key, "tls-cert") ? &config->tls_cert : &config->tls_key;

      g_free (*slot);
      *slot = value && *value ? g_strdup (value) : NULL;
    }
  else if (g_str_equal (key, "smtp-listen"))
    {
      g_free (config->smtp_listen);
      config->smtp_listen = value && *value ? g_strdup (value) : NULL;
    }
  else if (g_str_equal (key, "mail-domain"))
    {
      gboolean ok = value != NULL && *value != '\0' && strlen (value) <= 253;

      for (const char *p = value; ok && *p; p++)
        ok = g_ascii_isalnum (*p) || *p == '-' || *p == '.';
      if (!ok)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("mail-domain must be a domain name such as relay.example.com, "
                         "not “%s”."), value ? value : "");
          return FALSE;
        }
      g_free (relay->mail_domain);
      relay->mail_domain = value && *value ? g_ascii_strdown (value, -1) : NULL;
    }
  else if (g_str_equal (key, "max-mail"))
    {
      if (!parse_size (key, value, 4096, 64 * 1024 * 1024, &u, error))
        return FALSE;
      relay->max_mail = u;
    }
  else if (g_str_equal (key, "database"))
    {
      /* "sqlite" (or empty) is the default: SQLite in data-dir. */
      if (value != NULL && *value != '\0' && !g_str_equal (value, "sqlite")
          && !tocsin_relay_store_pg_is_url (value))
        {
          g_set_error_literal (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                               _("database takes a postgresql:// URL, or sqlite (the default: "
                                 "SQLite in the data dir)."));
          return FALSE;
        }
      g_free (config->database);
      config->database = tocsin_relay_store_pg_is_url (value) ? g_strdup (value) : NULL;
    }
  else if (g_str_equal (key, "node-name"))
    {
      g_free (config->node_name);
      config->node_name = value && *value ? g_strdup (value) : NULL;
    }
  else if (g_str_equal (key, "workers"))
    {
      if (!parse_size (key, value, 1, TOCSIN_RELAY_MAX_WORKERS, &u, error))
        return FALSE;
      config->workers = (guint) u;
    }
  else if (g_str_equal (key, "forward-timeout"))
    {
      guint ms = 0;

      if (!parse_millis (key, value, 1000, 300 * 1000, &ms, error))
        return FALSE;
      relay->forward_timeout_s = ms / 1000;
    }
  else if (g_str_equal (key, "forward-max-attempts"))
    {
      if (!parse_size (key, value, 1, 100, &u, error))
        return FALSE;
      relay->forward_max_attempts = (guint) u;
    }
  else if (g_str_equal (key, "forward-backoff-base"))
    return parse_millis (key, value, 10, 60 * 60 * 1000, &relay->forward_backoff_base_ms, error);
  else if (g_str_equal (key, "forward-backoff-max"))
    return parse_millis (key, value, 10, 24 * 60 * 60 * 1000, &relay->forward_backoff_max_ms,
                         error);
  else if (g_str_equal (key, "forward-cooldown"))
    return parse_millis (key, value, 10, 24 * 60 * 60 * 1000, &relay->forward_cooldown_ms,
                         error);
  else if (g_str_equal (key, "forward-deny-private"))
    return parse_bool (key, value, &relay->forward_deny_private, error);
  else if (g_str_equal (key, "forward-ca-file"))
    {
      g_free (relay->forward_ca_file);
      relay->forward_ca_file = value && *value ? g_strdup (value) : NULL;
    }
  else if (g_str_equal (key, "trusted-proxies"))
    {
      g_auto(GStrv) items = g_strsplit_set (value ? value : "", ", ", -1);
      g_autoptr(GPtrArray) masks = g_ptr_array_new_with_free_func (g_object_unref);

      for (guint i = 0; items[i]; i++)
        {
          GInetAddressMask *mask;

          if (*items[i] == '\0')
            continue;
          mask = g_inet_address_mask_new_from_string (items[i], NULL);
          if (mask == NULL)
            {
              g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                           _("trusted-proxies: “%s” is neither an IP address nor a network "
                             "such as 10.0.0.0/8."), items[i]);
              return FALSE;
            }
          g_ptr_array_add (masks, mask);
        }
      g_clear_pointer (&relay->trusted_proxies, g_ptr_array_unref);
      if (masks->len > 0)
        relay->trusted_proxies = g_steal_pointer (&masks);
    }
  else
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_UNKNOWN_OPTION,
                   _("Unknown setting “%s”."), key);
      return FALSE;
    }
  return TRUE;
}

gboolean
tocsin_relay_serve_config_load_file (TocsinRelayServeConfig  *config,
                                     const char              *path,
                                     GError                 **error)
{
  g_autoptr(GKeyFile) file = g_key_file_new ();
  g_auto(GStrv) keys = NULL;
  g_autoptr(GError) local_error = NULL;

  if (!g_key_file_load_from_file (file, path, G_KEY_FILE_NONE, &local_error))
    {
      g_set_error (error, local_error->domain, local_error->code,
                   _("Could not read the configuration file %s: %s"), path,
                   local_error->message);
      return FALSE;
    }
  if (!g_key_file_has_group (file, GROUP))
    return TRUE;

  keys = g_key_file_get_keys (file, GROUP, NULL, NULL);
  for (guint i = 0; keys && keys[i]; i++)
    {
      if (g_str_equal (keys[i], "listen"))
        {
          g_auto(GStrv) list = g_key_file_get_string_list (file, GROUP, "listen", NULL, NULL);

          if (list && list[0])
            {
              g_strfreev (config->listen);
              config->listen = g_steal_pointer (&list);
            }
        }
      else
        {
          g_autofree char *value = g_key_file_get_string (file, GROUP, keys[i], NULL);

          g_strstrip (value);
          if (!apply_setting (config, keys[i], value, &local_error))
            {
              g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                           _("In %s: %s"), path, local_error->message);
              return FALSE;
            }
        }
    }
  return TRUE;
}

gboolean
tocsin_relay_serve_config_parse (TocsinRelayServeConfig  *config,
                                 int                     *argc,
                                 char                  ***argv,
                                 GError                 **error)
{
  g_auto(GStrv) listen = NULL;
  g_autofree char *config_file = NULL;
  g_autofree char *data_dir = NULL;
  g_autofree char *public_url = NULL;
  g_autofree char *max_body = NULL, *retention = NULL, *rate = NULL, *burst = NULL;
  g_autofree char *queue_bytes = NULL, *queue_frames = NULL, *max_conn = NULL;
  g_autofree char *idle = NULL, *open_relay = NULL, *backlog = NULL;
  g_autofree char *subscribe_timeout = NULL, *allowed_hosts = NULL, *trusted_proxies = NULL;
  g_autofree char *tls_cert = NULL, *tls_key = NULL;
  g_autofree char *cors_origins = NULL, *owner_cors_origins = NULL;
  g_autofree char *smtp_listen = NULL, *mail_domain = NULL, *max_mail = NULL;
  g_autofree char *forward_timeout = NULL, *forward_max_attempts = NULL;
  g_autofree char *forward_backoff_base = NULL, *forward_backoff_max = NULL;
  g_autofree char *forward_cooldown = NULL, *forward_ca_file = NULL;
  g_autofree char *forward_deny_private = NULL;
  g_autofree char *database = NULL, *workers = NULL, *node_name = NULL;
  const GOptionEntry entries[] = {
    { "listen", 0, 0, G_OPTION_ARG_STRING_ARRAY, &listen,
      N_("Listen on HOST:PORT (repeatable; IPv6 as [::1]:8080; port 0 picks one)"), N_("HOST:PORT") },
    { "data-dir", 0, 0, G_OPTION_ARG_FILENAME, &data_dir,
      N_("Keep the store in DIR (default: $STATE_DIRECTORY)"), N_("DIR") },
    { "public-url", 0, 0, G_OPTION_ARG_STRING, &public_url,
      N_("Base of the URLs shown to people (default: the first listen address)"), N_("URL") },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &config_file,
      N_("Read settings from the [relay] group of FILE"), N_("FILE") },
    { "max-body", 0, 0, G_OPTION_ARG_STRING, &max_body,
      N_("Largest webhook body (default 64K)"), N_("BYTES") },
    { "retention", 0, 0, G_OPTION_ARG_STRING, &retention,
      N_("How long messages are kept for replay (default 24h; 0: live only)"), N_("DURATION") },
    { "rate", 0, 0, G_OPTION_ARG_STRING, &rate,
      N_("Webhooks a second per channel, on average (default 5)"), N_("N") },
    { "burst", 0, 0, G_OPTION_ARG_STRING, &burst,
      N_("Webhooks a channel may take at once (default 30)"), N_("N") },
    { "max-queue-bytes", 0, 0, G_OPTION_ARG_STRING, &queue_bytes,
      N_("Outgoing bytes a subscriber may fall behind (default 1M)"), N_("BYTES") },
    { "max-queue-frames", 0, 0, G_OPTION_ARG_STRING, &queue_frames,
      N_("Outgoing messages a subscriber may fall behind (default 1000)"), N_("N") },
    { "max-connections", 0, 0, G_OPTION_ARG_STRING, &max_conn,
      N_("Open connections at most (default 20000)"), N_("N") },
    { "idle-timeout", 0, 0, G_OPTION_ARG_STRING, &idle,
      N_("Close HTTP connections idle this long (default 60s)"), N_("DURATION") },
    { "subscribe-timeout", 0, 0, G_OPTION_ARG_STRING, &subscribe_timeout,
      N_("Close an app socket (/v1/ws) that subscribes to nothing this long (default 10s; 0: "
         "never)"), N_("DURATION") },
    { "allowed-hosts", 0, 0, G_OPTION_ARG_STRING, &allowed_hosts,
      N_("More Host names the owner API answers to, comma-separated (* for any)"), N_("NAMES") },
    { "cors-origins", 0, 0, G_OPTION_ARG_STRING, &cors_origins,
      N_("Web pages that may use the webhook and stream URLs: * (default), none, or origins "
         "such as https://example.com, comma-separated"), N_("ORIGINS") },
    { "owner-cors-origins", 0, 0, G_OPTION_ARG_STRING, &owner_cors_origins,
      N_("Web pages of other origins that may use the owner API (default: none)"),
      N_("ORIGINS") },
    { "open-relay", 0, 0, G_OPTION_ARG_STRING, &open_relay,
      N_("yes: anyone may create channels (default: yes only on loopback)"), N_("yes|no") },
    { "backlog", 0, 0, G_OPTION_ARG_STRING, &backlog,
      N_("listen(2) backlog (default 4096)"), N_("N") },
    { "tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &tls_cert,
      N_("Serve HTTPS and WSS with the PEM certificate (chain) in FILE"), N_("FILE") },
    { "tls-key", 0, 0, G_OPTION_ARG_FILENAME, &tls_key,
      N_("The PEM private key of --tls-cert (default: in the same file)"), N_("FILE") },
    { "smtp-listen", 0, 0, G_OPTION_ARG_STRING, &smtp_listen,
      N_("Take mail for channels (the email trigger) on HOST:PORT"), N_("HOST:PORT") },
    { "mail-domain", 0, 0, G_OPTION_ARG_STRING, &mail_domain,
      N_("Channels’ addresses are TOKEN@DOMAIN (default: the host name)"), N_("DOMAIN") },
    { "max-mail", 0, 0, G_OPTION_ARG_STRING, &max_mail,
      N_("Largest mail the email trigger takes (default 1M)"), N_("BYTES") },
    { "forward-timeout", 0, 0, G_OPTION_ARG_STRING, &forward_timeout,
      N_("Give up an attempt of a forward after this long (default 10s)"), N_("DURATION") },
    { "forward-max-attempts", 0, 0, G_OPTION_ARG_STRING, &forward_max_attempts,
      N_("Attempts of a forward with the retry policy, at most (default 8)"), N_("N") },
    { "forward-backoff-base", 0, 0, G_OPTION_ARG_STRING, &forward_backoff_base,
      N_("First retry of a forward after up to this long (default 1s)"), N_("DURATION") },
    { "forward-backoff-max", 0, 0, G_OPTION_ARG_STRING, &forward_backoff_max,
      N_("Longest wait between attempts of a forward (default 10m)"), N_("DURATION") },
    { "forward-cooldown", 0, 0, G_OPTION_ARG_STRING, &forward_cooldown,
      N_("Hold back a failing host this long before one probe (default 30s)"), N_("DURATION") },
    { "forward-ca-file", 0, 0, G_OPTION_ARG_FILENAME, &forward_ca_file,
      N_("Also trust the CA certificates (PEM) in FILE for forwards"), N_("FILE") },
    { "forward-deny-private", 0, 0, G_OPTION_ARG_STRING, &forward_deny_private,
      N_("yes: send no forward to loopback, link-local or private addresses (default no)"),
      N_("yes|no") },
    { "trusted-proxies", 0, 0, G_OPTION_ARG_STRING, &trusted_proxies,
      N_("Proxies in front (addresses or networks, comma-separated) whose X-Forwarded-For names "
         "the client (default: none)"), N_("ADDRESSES") },
    { "database", 0, 0, G_OPTION_ARG_STRING, &database,
      N_("Keep the store in PostgreSQL at URL (postgresql://…; default: $TOCSIN_RELAY_DATABASE, "
         "else SQLite in --data-dir)"),
      N_("URL") },
    { "workers", 0, 0, G_OPTION_ARG_STRING, &workers,
      N_("Serve from N processes sharing the listening ports (SO_REUSEPORT; needs --database)"),
      N_("N") },
    { "node-name", 0, 0, G_OPTION_ARG_STRING, &node_name,
      N_("With --database: this node's name, the same after a restart (default: a new one each "
         "start)"), N_("NAME") },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  struct { const char *key; const char *value; } flags[] = {
    { "data-dir", NULL }, { "public-url", NULL }, { "max-body", NULL }, { "retention", NULL },
    { "rate", NULL }, { "burst", NULL }, { "max-queue-bytes", NULL },
    { "max-queue-frames", NULL }, { "max-connections", NULL }, { "idle-timeout", NULL },
    { "open-relay", NULL }, { "backlog", NULL }, { "tls-cert", NULL }, { "tls-key", NULL },
    { "subscribe-timeout", NULL }, { "allowed-hosts", NULL }, { "cors-origins", NULL },
    { "owner-cors-origins", NULL },
    { "smtp-listen", NULL }, { "mail-domain", NULL }, { "max-mail", NULL },
    { "forward-timeout", NULL }, { "forward-max-attempts", NULL },
    { "forward-backoff-base", NULL }, { "forward-backoff-max", NULL },
    { "forward-cooldown", NULL }, { "forward-ca-file", NULL }, { "forward-deny-private", NULL },
    { "database", NULL }, { "workers", NULL }, { "node-name", NULL },
    { "trusted-proxies", NULL },
  };

  g_option_context_set_summary (context, _("Serve webhooks and subscriber streams."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, argc, argv, error))
    return FALSE;
  if (*argc > 1)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   _("Unexpected argument “%s”; see tocsin-relay serve --help."), (*argv)[1]);
      return FALSE;
    }

  if (config_file && !tocsin_relay_serve_config_load_file (config, config_file, error))
    return FALSE;

  flags[0].value = data_dir;
  flags[1].value = public_url;
  flags[2].value = max_body;
  flags[3].value = retention;
  flags[4].value = rate;
  flags[5].value = burst;
  flags[6].value = queue_bytes;
  flags[7].value = queue_frames;
  flags[8].value = max_conn;
  flags[9].value = idle;
  flags[10].value = open_relay;
  flags[11].value = backlog;
  flags[12].value = tls_cert;
  flags[13].value = tls_key;
  flags[14].value = subscribe_timeout;
  flags[15].value = allowed_hosts;
  flags[16].value = cors_origins;
  flags[17].value = owner_cors_origins;
  flags[18].value = smtp_listen;
  flags[19].value = mail_domain;
  flags[20].value = max_mail;
  flags[21].value = forward_timeout;
  flags[22].value = forward_max_attempts;
  flags[23].value = forward_backoff_base;
  flags[24].value = forward_backoff_max;
  flags[25].value = forward_cooldown;
  flags[26].value = forward_ca_file;
  flags[27].value = forward_deny_private;
  if (database == NULL && g_getenv (TOCSIN_RELAY_DATABASE_ENV) != NULL)
    {
      g_autoptr(GError) local_error = NULL;

      if (!apply_setting (config, "database", g_getenv (TOCSIN_RELAY_DATABASE_ENV),
                          &local_error))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s: %s",
                       TOCSIN_RELAY_DATABASE_ENV, local_error->message);
          return FALSE;
        }
    }
  flags[28].value = database;
  flags[29].value = workers;
  flags[30].value = node_name;
  flags[31].value = trusted_proxies;
  for (guint i = 0; i < G_N_ELEMENTS (flags); i++)
    {
      g_autoptr(GError) local_error = NULL;

      if (flags[i].value == NULL)
        continue;
      if (!apply_setting (config, flags[i].key, flags[i].value, &local_error))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--%s: %s",
                       flags[i].key, local_error->message);
          return FALSE;
        }
    }
  if (listen && listen[0])
    {
      g_strfreev (config->listen);
      config->listen = g_steal_pointer (&listen);
    }
  if (config->listen == NULL)
    {
      const char *defaults[] = { TOCSIN_RELAY_DEFAULT_LISTEN, NULL };

      config->listen = g_strdupv ((char **) defaults);
    }
  if (config->relay.data_dir == NULL && g_getenv ("STATE_DIRECTORY"))
    {
      /* systemd's StateDirectory= may list several, separated by colons; the first is ours. */
      g_auto(GStrv) dirs = g_strsplit (g_getenv ("STATE_DIRECTORY"), ":", 2);

      config->relay.data_dir = g_strdup (dirs[0]);
    }
  if (config->tls_key != NULL && config->tls_cert == NULL)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   _("--tls-key needs --tls-cert: give the certificate that goes with the key."));
      return FALSE;
    }
  if (config->relay.data_dir == NULL || config->relay.data_dir[0] == '\0')
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   _("Say where to keep the store with --data-dir=DIR."));
      return FALSE;
    }
  return TRUE;
}
