/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-outbound.c: sends rendered requests with libsoup and decides what happens next (see
 * tocsin-outbound.h and docs/actions.md, "Errors and retries").
 *
 * Where it leaves libsoup's path, and why:
 *  - The timeout is ours (a GSource that cancels the attempt): SoupSession's "timeout" is per
 *    read or write, so a peer trickling a byte a second never times out under it.
 *  - Redirects are not followed (SOUP_MESSAGE_NO_REDIRECT): a forward's URL is the operator's
 *    choice, and a 3xx is reported as a final error saying so.
 *  - Only the first TOCSIN_OUTBOUND_ANSWER_START bytes of an answer are read. Closing the stream
 *    then is cheap in libsoup 3.2: soup_client_input_stream_close_fn() skips the rest of the body
 *    (soup_message_io_skip() marks the read side finished without reading) and the connection,
 *    never marked reusable, is dropped.
 *  - An extra CA (ca_file) is trusted *in addition to* the system's, as the app does for its
 *    relay (src/app/tocsin-tls.c): the session keeps the system database, and a certificate the
 *    system rejects is accepted from "accept-certificate" when the extra database verifies it
 *    for that host. Replacing the session's tls-database would drop every public CA.
 *  - Every header of the answer that decides pacing is length-checked before it is parsed
 *    (tocsin_outbound_parse_pacing(), fuzzed by tests/fuzz/fuzz-outbound-headers.c).
 */
#define G_LOG_DOMAIN "tocsin-outbound"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>
#include <libsoup/soup.h>

#include "tocsin-outbound.h"

#define WINDOW_MAX           64
/* Not in libsoup 3.2's SoupStatus. */
#define STATUS_TOO_MANY_REQUESTS 429
#define PROBE_MAX_MULTIPLIER 16

typedef enum
{
  BREAKER_CLOSED,
  BREAKER_OPEN,      /* held back until open_until_ms; then the next send is a probe */
  BREAKER_PROBING,   /* one probe in flight */
} BreakerState;

typedef struct
{
  gint64        paced_until_ms;     /* from Retry-After and the rate limit headers */
  /* The breaker: the last `breaker_window` ended attempts, a ring of failed/not failed. */
  gboolean      window[WINDOW_MAX];
  guint         window_len;
  guint         window_next;
  BreakerState  state;
  gint64        open_until_ms;
  guint         multiplier;         /* 1, 2, 4, ... PROBE_MAX_MULTIPLIER */
  gint64        probe_started_ms;
} Host;

struct _TocsinOutbound
{
  TocsinOutboundConfig  config;       /* ca_file owned */

  /* Owned */
  SoupSession          *session;
  GTlsDatabase         *extra_ca;     /* ca_file's database, or NULL */
  char                 *ca_error;     /* why ca_file could not be used, or NULL */
  GHashTable           *hosts;        /* "scheme://host:port" → Host */
  GMainContext         *context;
  GHashTable           *inflight;     /* SendData of the sends not finished (a set) */
};

void
tocsin_outbound_config_init (TocsinOutboundConfig *config)
{
  g_return_if_fail (config != NULL);

  *config = (TocsinOutboundConfig) {
    .timeout_s = 10,
    .max_attempts = 8,
    .backoff_base_ms = 1000,
    .backoff_max_ms = 600000,
    .breaker_window = 10,
    .breaker_min = 5,
    .cooldown_ms = 30000,
    .ca_file = NULL,
    .deny_private = FALSE,
  };
}

void
tocsin_attempt_free (TocsinAttempt *attempt)
{
  if (attempt == NULL)
    return;
  g_free (attempt->url);
  g_free (attempt->error);
  g_free (attempt->answer_start);
  g_free (attempt);
}

static gint64
now_ms (void)
{
  return g_get_real_time () / 1000;
}

/* ---- URLs: the host key and what the log shows ---- */

static GUri *
parse_http_url (const char *url)
{
  g_autoptr(GUri) uri = NULL;
  const char *scheme;

  if (url == NULL)
    return NULL;
  uri = g_uri_parse (url, SOUP_HTTP_URI_FLAGS, NULL);
  if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
    return NULL;
  scheme = g_uri_get_scheme (uri);
  if (g_ascii_strcasecmp (scheme, "http") != 0 && g_ascii_strcasecmp (scheme, "https") != 0)
    return NULL;
  return g_steal_pointer (&uri);
}

static int
uri_port (GUri *uri)
{
  int port = g_uri_get_port (uri);

  if (port > 0)
    return port;
  return g_ascii_strcasecmp (g_uri_get_scheme (uri), "https") == 0 ? 443 : 80;
}

/* "scheme://host:port", lowercase: the key of the pacing and the breaker. */
static char *
host_key (GUri *uri)
{
  g_autofree char *scheme = g_ascii_strdown (g_uri_get_scheme (uri), -1);
  g_autofree char *host = g_ascii_strdown (g_uri_get_host (uri), -1);

  if (strchr (host, ':') != NULL)
    return g_strdup_printf ("%s://[%s]:%d", scheme, host, uri_port (uri));
  return g_strdup_printf ("%s://%s:%d", scheme, host, uri_port (uri));
}

/* ---- The answer's pacing headers ---- */

/* Longer values are not read: no well-formed one comes near. */
#define HEADER_VALUE_MAX 256
/* A peer cannot hold a host back longer than this (docs/actions.md). */
#define PACE_MAX_MS      (24 * 3600 * G_GINT64_CONSTANT (1000))
/* X-Rate-Limit-Reset: up to this, seconds from now; above, a unix time (seconds, or ms above
 * RESET_UNIX_MS_MIN). */
#define RESET_DELTA_MAX   G_GINT64_CONSTANT (1000000000)
#define RESET_UNIX_MS_MIN G_GINT64_CONSTANT (100000000000)

/* A run of at most 15 ASCII digits at @s, surrounded by optional white space; -1 otherwise. */
static gint64
parse_uint (const char *s,
            gsize       len)
{
  gsize i = 0, digits = 0;
  gint64 value = 0;

  while (i < len && (s[i] == ' ' || s[i] == '\t'))
    i++;
  while (i < len && g_ascii_isdigit (s[i]))
    {
      if (++digits > 15)
        return -1;
      value = value * 10 + (s[i] - '0');
      i++;
    }
  while (i < len && (s[i] == ' ' || s[i] == '\t'))
    i++;
  if (digits == 0 || i != len)
    return -1;
  return value;
}

gint64
tocsin_outbound_parse_retry_after (const char *value,
                                   gint64      now)
{
  g_autoptr(GDateTime) date = NULL;
  gsize len;
  gint64 seconds;

  if (value == NULL)
    return -1;
  len = strnlen (value, HEADER_VALUE_MAX + 1);
  if (len == 0 || len > HEADER_VALUE_MAX)
    return -1;
  seconds = parse_uint (value, len);
  if (seconds >= 0)
    return now + MIN (seconds * 1000, PACE_MAX_MS);

  /* An HTTP-date (IMF-fixdate and the two obsolete forms libsoup reads): ASCII only. */
  for (gsize i = 0; i < len; i++)
    if ((guchar) value[i] < 0x20 || (guchar) value[i] > 0x7e)
      return -1;
  date = soup_date_time_new_from_http_string (value);
  if (date == NULL)
    return -1;
  seconds = g_date_time_to_unix (date);
  if (seconds <= now / 1000)
    return now;
  return MIN (seconds * 1000, now + PACE_MAX_MS);
}

/* A reset value: seconds from now when small, else a unix time in seconds or ms. */
static gint64
reset_to_ms (gint64 reset,
             gint64 now)
{
  gint64 at;

  if (reset < 0)
    return -1;
  if (reset <= RESET_DELTA_MAX)
    at = now + reset * 1000;
  else if (reset < RESET_UNIX_MS_MIN)
    at = reset * 1000;
  else
    at = reset;
  return CLAMP (at, now, now + PACE_MAX_MS);
}

/* The IETF structured field: "limit=10, remaining=0, reset=30" (draft 7) or
 * "\"default\";r=0;t=30" (draft 8 and later). Sets *remaining and *reset (seconds) when found. */
static void
parse_ratelimit_field (const char *value,
                       gsize       len,
                       gint64     *remaining,
                       gint64     *reset)
{
  gsize i = 0;

  while (i < len)
    {
      gsize key_start, key_len, val_start;

      while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ',' ||
                         value[i] == ';'))
        i++;
      key_start = i;
      while (i < len && value[i] != '=' && value[i] != ',' && value[i] != ';')
        i++;
      key_len = i - key_start;
      if (i >= len || value[i] != '=')
        continue;
      i++;
      val_start = i;
      while (i < len && value[i] != ',' && value[i] != ';')
        i++;

      if ((key_len == 9 && g_ascii_strncasecmp (value + key_start, "remaining", 9) == 0) ||
          (key_len == 1 && g_ascii_tolower (value[key_start]) == 'r'))
        *remaining = parse_uint (value + val_start, i - val_start);
      else if ((key_len == 5 && g_ascii_strncasecmp (value + key_start, "reset", 5) == 0) ||
               (key_len == 1 && g_ascii_tolower (value[key_start]) == 't'))
        *reset = parse_uint (value + val_start, i - val_start);
    }
}

static gboolean
name_is (const char *name,
         const char *expected)
{
  return g_ascii_strcasecmp (name, expected) == 0;
}

void
tocsin_outbound_parse_pacing (const char * const  *headers,
                              gint64               now,
                              TocsinOutboundPacing *pacing)
{
  gint64 x_remaining = -1, x_reset = -1, ietf_remaining = -1, ietf_reset = -1;
  gint64 field_remaining = -1, field_reset = -1;

  g_return_if_fail (pacing != NULL);

  pacing->retry_after_ms = 0;
  pacing->paced_until_ms = 0;
  if (headers == NULL)
    return;

  for (guint i = 0; headers[i] != NULL && headers[i + 1] != NULL; i += 2)
    {
      const char *name = headers[i], *value = headers[i + 1];
      gsize len = strnlen (value, HEADER_VALUE_MAX + 1);

      if (len > HEADER_VALUE_MAX)
        continue;
      if (name_is (name, "Retry-After"))
        {
          gint64 at = tocsin_outbound_parse_retry_after (value, now);

          if (at >= 0)
            pacing->retry_after_ms = MAX (pacing->retry_after_ms, at);
        }
      else if (name_is (name, "X-Rate-Limit-Remaining") || name_is (name, "X-RateLimit-Remaining"))
        x_remaining = parse_uint (value, len);
      else if (name_is (name, "X-Rate-Limit-Reset") || name_is (name, "X-RateLimit-Reset"))
        x_reset = parse_uint (value, len);
      else if (name_is (name, "RateLimit-Remaining"))
        ietf_remaining = parse_uint (value, len);
      else if (name_is (name, "RateLimit-Reset"))
        ietf_reset = parse_uint (value, len);
      else if (name_is (name, "RateLimit"))
        parse_ratelimit_field (value, len, &field_remaining, &field_reset);
    }

  /* Nothing left in this window: nothing more until it resets. */
  if (x_remaining == 0 && x_reset >= 0)
    pacing->paced_until_ms = MAX (pacing->paced_until_ms, reset_to_ms (x_reset, now));
  /* The IETF drafts' reset is always delta-seconds. */
  if (ietf_remaining == 0 && ietf_reset >= 0)
    pacing->paced_until_ms = MAX (pacing->paced_until_ms,
                                  now + MIN (ietf_reset * 1000, PACE_MAX_MS));
  if (field_remaining == 0 && field_reset >= 0)
    pacing->paced_until_ms = MAX (pacing->paced_until_ms,
                                  now + MIN (field_reset * 1000, PACE_MAX_MS));
}

/* ---- Hosts: pacing and the breaker ---- */

/* Above this many hosts, those with nothing to remember are forgotten. */
#define HOSTS_PRUNE_AT 1024

static gboolean
host_is_idle (gpointer key,
              gpointer value,
              gpointer user_data)
{
  Host *host = value;
  gint64 now = *(gint64 *) user_data;

  if (host->state != BREAKER_CLOSED || host->paced_until_ms > now)
    return FALSE;
  for (guint i = 0; i < host->window_len; i++)
    if (host->window[i])
      return FALSE;
  return TRUE;
}

static Host *
lookup_host (TocsinOutbound *self,
             const char     *key,
             gboolean        create)
{
  Host *host = g_hash_table_lookup (self->hosts, key);

  if (host == NULL && create)
    {
      if (g_hash_table_size (self->hosts) >= HOSTS_PRUNE_AT)
        {
          gint64 now = now_ms ();

          g_hash_table_foreach_remove (self->hosts, host_is_idle, &now);
        }
      host = g_new0 (Host, 1);
      host->multiplier = 1;
      g_hash_table_insert (self->hosts, g_strdup (key), host);
    }
  return host;
}

static gint64
host_ready_at (TocsinOutbound *self,
               Host           *host,
               gint64          now)
{
  gint64 ready = now;

  if (host == NULL)
    return now;
  ready = MAX (ready, host->paced_until_ms);
  if (host->state == BREAKER_OPEN)
    ready = MAX (ready, host->open_until_ms);
  else if (host->state == BREAKER_PROBING)
    /* The probe has ended by then, one way or the other. */
    ready = MAX (ready, host->probe_started_ms + self->config.timeout_s * 1000 + 1000);
  return ready;
}

static void
breaker_open (TocsinOutbound *self,
              Host           *host,
              gint64          now)
{
  host->state = BREAKER_OPEN;
  host->open_until_ms = now + (gint64) self->config.cooldown_ms * host->multiplier;
}

static void
breaker_close (Host *host)
{
  host->state = BREAKER_CLOSED;
  host->multiplier = 1;
  host->window_len = 0;
  host->window_next = 0;
}

/* An ended attempt to @host: @failed (no answer, or 5xx) or not; @probe: it was the one let
 * through after the cooldown. */
static void
breaker_record (TocsinOutbound *self,
                Host           *host,
                gboolean        failed,
                gboolean        probe,
                gint64          now)
{
  guint failures = 0;

  if (host->state != BREAKER_CLOSED)
    {
      if (!failed)
        breaker_close (host);
      else if (probe)
        {
          host->multiplier = MIN (host->multiplier * 2, PROBE_MAX_MULTIPLIER);
          breaker_open (self, host, now);
        }
      /* A failure that was sent before the breaker opened changes nothing. */
      return;
    }

  host->window[host->window_next] = failed;
  host->window_next = (host->window_next + 1) % self->config.breaker_window;
  host->window_len = MIN (host->window_len + 1, self->config.breaker_window);
  for (guint i = 0; i < host->window_len; i++)
    failures += host->window[i] ? 1 : 0;
  if (failed && host->window_len >= self->config.breaker_min && failures * 2 > host->window_len)
    {
      host->multiplier = 1;
      breaker_open (self, host, now);
    }
}

gint64
tocsin_outbound_host_ready_at (TocsinOutbound *self,
                               const char     *url)
{
  g_autoptr(GUri) uri = NULL;
  g_autofree char *key = NULL;

  g_return_val_if_fail (self != NULL, 0);

  uri = parse_http_url (url);
  if (uri == NULL)
    return now_ms ();
  key = host_key (uri);
  return host_ready_at (self, lookup_host (self, key, FALSE), now_ms ());
}

char *
tocsin_outbound_describe_host (TocsinOutbound *self,
                               const char     *url)
{
  g_autoptr(GUri) uri = NULL;
  g_autofree char *key = NULL;
  Host *host;
  gint64 now = now_ms ();

  g_return_val_if_fail (self != NULL, NULL);

  uri = parse_http_url (url);
  if (uri == NULL)
    return g_strdup (_("closed"));
  key = host_key (uri);
  host = lookup_host (self, key, FALSE);
  if (host == NULL)
    return g_strdup (_("closed"));
  if (host->state == BREAKER_PROBING || (host->state == BREAKER_OPEN && host->open_until_ms <= now))
    return g_strdup (_("probing"));
  if (host->state == BREAKER_OPEN)
    {
      g_autoptr(GDateTime) until = g_date_time_new_from_unix_utc (host->open_until_ms / 1000);
      g_autofree char *text = g_date_time_format_iso8601 (until);

      /* TRANSLATORS: the circuit breaker of a host: no request is sent until this time */
      return g_strdup_printf (_("open until %s"), text);
    }
  if (host->paced_until_ms > now)
    {
      g_autoptr(GDateTime) until = g_date_time_new_from_unix_utc (host->paced_until_ms / 1000);
      g_autofree char *text = g_date_time_format_iso8601 (until);

      /* TRANSLATORS: the host asked for no request before this time (rate limit) */
      return g_strdup_printf (_("closed, paced until %s"), text);
    }
  return g_strdup (_("closed"));
}

/* ---- The object ---- */

static gboolean
accept_certificate_cb (SoupMessage          *msg,
                       GTlsCertificate      *certificate,
                       GTlsCertificateFlags  errors,
                       TocsinOutbound       *self)
{
  g_autoptr(GSocketConnectable) identity = NULL;
  GUri *uri = soup_message_get_uri (msg);

  /* The system did not trust it; the extra CA may. */
  if (self->extra_ca == NULL)
    return FALSE;
  identity = g_network_address_new (g_uri_get_host (uri), uri_port (uri));
  return g_tls_database_verify_chain (self->extra_ca, certificate,
                                      G_TLS_DATABASE_PURPOSE_AUTHENTICATE_SERVER, identity, NULL,
                                      G_TLS_DATABASE_VERIFY_NONE, NULL, NULL) == 0;
}

TocsinOutbound *
tocsin_outbound_new (const TocsinOutboundConfig *config)
{
  /* Reference counted inside: a send in flight keeps it (see tocsin_outbound_free). */
  TocsinOutbound *self = g_rc_box_new0 (TocsinOutbound);
  g_autofree char *user_agent = g_strdup_printf ("Tocsin/%s", PACKAGE_VERSION);

  if (config != NULL)
    self->config = *config;
  else
    tocsin_outbound_config_init (&self->config);
  self->config.ca_file = g_strdup (self->config.ca_file);
  self->config.timeout_s = MAX (self->config.timeout_s, 1);
  self->config.max_attempts = MAX (self->config.max_attempts, 1);
  self->config.breaker_window = CLAMP (self->config.breaker_window, 1, WINDOW_MAX);
  self->config.breaker_min = CLAMP (self->config.breaker_min, 1, self->config.breaker_window);

  if (self->config.ca_file != NULL)
    {
      g_autoptr(GError) error = NULL;

      self->extra_ca = g_tls_file_database_new (self->config.ca_file, &error);
      if (self->extra_ca == NULL)
        self->ca_error = g_strdup (error->message);
    }

  self->context = g_main_context_ref_thread_default ();
  /* Our own timeout covers the whole attempt; libsoup's would only cover each read. */
  self->session = soup_session_new_with_options ("user-agent", user_agent,
                                                 "timeout", 0,
                                                 "idle-timeout", 60,
                                                 NULL);
  self->hosts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->inflight = g_hash_table_new (NULL, NULL);
  return self;
}

void
tocsin_outbound_set_extra_ca (TocsinOutbound *self,
                              GTlsDatabase   *database)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (database == NULL || G_IS_TLS_DATABASE (database));

  g_set_object (&self->extra_ca, database);
  g_clear_pointer (&self->ca_error, g_free);
}

const char *
tocsin_outbound_get_ca_error (TocsinOutbound *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->ca_error;
}

static void
outbound_clear (TocsinOutbound *self)
{
  g_assert (g_hash_table_size (self->inflight) == 0);
  g_clear_pointer (&self->inflight, g_hash_table_unref);
  soup_session_abort (self->session);
  g_clear_object (&self->session);
  g_clear_object (&self->extra_ca);
  g_clear_pointer (&self->hosts, g_hash_table_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_free (self->ca_error);
  g_free (self->config.ca_file);
}

static void cancel_send (gpointer data, gpointer user_data);

/* Sends still in flight are cancelled: each ends "cancelled" (its callback is still called) and
 * holds its own reference until then. */
void
tocsin_outbound_free (TocsinOutbound *self)
{
  g_autoptr(GList) sends = NULL;

  if (self == NULL)
    return;
  sends = g_hash_table_get_keys (self->inflight);
  g_list_foreach (sends, cancel_send, NULL);
  g_rc_box_release_full (self, (GDestroyNotify) outbound_clear);
}

/* ---- One attempt ---- */

typedef struct
{
  TocsinOutbound      *self;          /* a reference */
  SoupMessage         *msg;
  GUri                *uri;
  char                *key;
  GCancellable        *cancellable;   /* the attempt's: the caller's, the timeout, the cut */
  GCancellable        *caller;
  gulong               caller_id;
  GSource             *timeout;
  gboolean             timed_out;
  gboolean             probe;
  char                *refused_address;   /* deny_private: the address it connected to */
  GInputStream        *stream;
  guint8               buffer[TOCSIN_OUTBOUND_ANSWER_START + 1];
  gsize                buffer_len;
  TocsinRequestPolicy  policy;
  gint64               started_monotonic;
  TocsinAttempt       *attempt;
} SendData;

static void
clear_timeout (SendData *data)
{
  if (data->timeout != NULL)
    {
      g_source_destroy (data->timeout);
      g_clear_pointer (&data->timeout, g_source_unref);
    }
}

static void
cancel_send (gpointer data,
             gpointer user_data)
{
  g_cancellable_cancel (((SendData *) data)->cancellable);
}

static void
send_data_free (SendData *data)
{
  g_hash_table_remove (data->self->inflight, data);
  clear_timeout (data);
  if (data->caller != NULL)
    g_cancellable_disconnect (data->caller, data->caller_id);
  g_clear_object (&data->caller);
  g_clear_object (&data->cancellable);
  g_clear_object (&data->stream);
  g_clear_object (&data->msg);
  g_clear_pointer (&data->uri, g_uri_unref);
  g_free (data->refused_address);
  g_free (data->key);
  tocsin_attempt_free (data->attempt);
  /* Last: the session may go with it. */
  g_rc_box_release_full (data->self, (GDestroyNotify) outbound_clear);
  g_free (data);
}

/* The answer's first bytes as valid UTF-8 of at most TOCSIN_OUTBOUND_ANSWER_START bytes. */
char *
tocsin_outbound_answer_start (const guint8 *data,
                              gsize         len)
{
  g_autofree char *copy = NULL;
  g_autofree char *valid = NULL;
  const char *end;

  len = MIN (len, TOCSIN_OUTBOUND_ANSWER_START);
  copy = g_malloc (len + 1);
  /* NUL would end the C string early: make it invalid, so it shows as U+FFFD. */
  for (gsize i = 0; i < len; i++)
    copy[i] = data[i] == 0 ? (char) 0xff : (char) data[i];
  copy[len] = '\0';
  valid = g_utf8_make_valid (copy, len);
  if (strlen (valid) <= TOCSIN_OUTBOUND_ANSWER_START)
    return g_steal_pointer (&valid);
  /* Replacement characters made it longer: cut at a character boundary. */
  end = valid;
  while (*end != '\0')
    {
      const char *next = g_utf8_next_char (end);

      if ((gsize) (next - valid) > TOCSIN_OUTBOUND_ANSWER_START)
        break;
      end = next;
    }
  return g_strndup (valid, end - valid);
}

static guint64
backoff_bound_ms (TocsinOutbound *self,
                  guint           attempt)
{
  guint64 bound = self->config.backoff_base_ms;

  for (guint i = 1; i < attempt && bound < self->config.backoff_max_ms; i++)
    bound *= 2;
  return MIN (bound, self->config.backoff_max_ms);
}

guint64
tocsin_outbound_backoff_bound_ms (TocsinOutbound *self,
                                  guint           attempt)
{
  g_return_val_if_fail (self != NULL, 0);
  return backoff_bound_ms (self, MAX (attempt, 1));
}

static char *
status_sentence (guint status)
{
  const char *phrase = soup_status_get_phrase (status);

  if (status == STATUS_TOO_MANY_REQUESTS)
    phrase = "Too Many Requests";
  if (phrase == NULL || *phrase == '\0' || strcmp (phrase, "Unknown Error") == 0)
    return g_strdup_printf ("HTTP %u", status);
  return g_strdup_printf ("HTTP %u %s", status, phrase);
}

/* What an operator reads for an answer that is not 2xx, with what to fix where we know it. */
static char *
status_error (guint status)
{
  g_autofree char *head = status_sentence (status);

  if (SOUP_STATUS_IS_REDIRECTION (status))
    /* TRANSLATORS: %s is "HTTP 302 Found" */
    return g_strdup_printf (_("%s: redirects are not followed; use the URL it redirects to"),
                            head);
  switch (status)
    {
    case SOUP_STATUS_UNAUTHORIZED:
    case SOUP_STATUS_FORBIDDEN:
      return g_strdup_printf (_("%s: check the credentials in the request's headers"), head);
    case SOUP_STATUS_NOT_FOUND:
      return g_strdup_printf (_("%s: check the URL"), head);
    case SOUP_STATUS_METHOD_NOT_ALLOWED:
      return g_strdup_printf (_("%s: check the method"), head);
    case SOUP_STATUS_BAD_REQUEST:
    case SOUP_STATUS_UNPROCESSABLE_ENTITY:
    case SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE:
      return g_strdup_printf (_("%s: the target did not accept the request; check its format "
                                "and parameters"), head);
    default:
      return g_steal_pointer (&head);
    }
}

static char *
tls_error (GUri                 *uri,
           GTlsCertificateFlags  flags,
           const char           *ca_error,
           const GError         *error)
{
  const char *host = g_uri_get_host (uri);

  if (ca_error != NULL && (flags & G_TLS_CERTIFICATE_UNKNOWN_CA))
    return g_strdup_printf (_("the TLS certificate of %s is not trusted, and the extra CA file "
                              "could not be read: %s"), host, ca_error);
  if (flags & G_TLS_CERTIFICATE_BAD_IDENTITY)
    return g_strdup_printf (_("the TLS certificate of %s is for another host name: use a name "
                              "the certificate lists"), host);
  if (flags & G_TLS_CERTIFICATE_EXPIRED)
    return g_strdup_printf (_("the TLS certificate of %s has expired: renew it on that server"),
                            host);
  if (flags & G_TLS_CERTIFICATE_NOT_ACTIVATED)
    return g_strdup_printf (_("the TLS certificate of %s is not valid yet: check the clocks"),
                            host);
  if (flags & G_TLS_CERTIFICATE_REVOKED)
    return g_strdup_printf (_("the TLS certificate of %s has been revoked"), host);
  /* Unknown CA, insecure algorithm, or anything else it found. */
  if (flags != 0)
    return g_strdup_printf (_("the TLS certificate of %s is not trusted: add the CA that signed "
                              "it as the trusted CA file"), host);
  return g_strdup_printf (_("TLS with %s failed: %s"), host, error->message);
}

/* A sentence for an attempt that got no answer. */
static char *
transport_error (SendData     *data,
                 const GError *error)
{
  const char *host = g_uri_get_host (data->uri);

  if (data->refused_address != NULL)
    /* TRANSLATORS: the first %s is a host name, the second an IP address */
    return g_strdup_printf (_("%s is at %s, a local or private address, and requests to such "
                              "addresses are turned off here"), host, data->refused_address);
  if (data->timed_out)
    return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "timed out after %u s",
                                         "timed out after %u s", data->self->config.timeout_s),
                            data->self->config.timeout_s);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return g_strdup (_("cancelled"));
  if (error->domain == G_TLS_ERROR)
    return tls_error (data->uri, soup_message_get_tls_peer_certificate_errors (data->msg),
                      data->self->ca_error, error);
  if (error->domain == G_RESOLVER_ERROR)
    return g_strdup_printf (_("could not resolve %s: check the host name"), host);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
    return g_strdup_printf (_("could not connect to %s: connection refused"), host);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE) ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NETWORK_UNREACHABLE))
    return g_strdup_printf (_("could not connect to %s: %s"), host, error->message);
  if (error->domain == SOUP_SESSION_ERROR ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT) ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE))
    return g_strdup_printf (_("%s closed the connection without a complete answer"), host);
  return g_strdup_printf (_("could not send to %s: %s"), host, error->message);
}

/* Ends the attempt: outcome, retry time, pacing and breaker. @error: no answer. */
static void
finish_attempt (GTask        *task,
                const GError *error)
{
  SendData *data = g_task_get_task_data (task);
  TocsinOutbound *self = data->self;
  TocsinAttempt *attempt = data->attempt;
  gint64 now;
  gboolean retryable = FALSE, failed_host = FALSE, cancelled = FALSE;
  TocsinOutboundPacing pacing = { 0, 0 };
  Host *host;

  clear_timeout (data);
  attempt->duration_ms = (g_get_monotonic_time () - data->started_monotonic) / 1000;
  /* The end on the same clock as the record: started + duration, so that retry_at_ms - (started
   * + duration) is exactly the wait (and a clock step during the attempt changes nothing). */
  now = attempt->started_ms + attempt->duration_ms;
  host = lookup_host (self, data->key, TRUE);

  if (error != NULL)
    {
      /* The status, when the headers came before the error (a body that stalled). */
      attempt->status = data->stream != NULL ? soup_message_get_status (data->msg) : 0;
      attempt->error = transport_error (data, error);
      cancelled = !data->timed_out && data->refused_address == NULL &&
                  g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      /* A refused address will not change by retrying, and says nothing about the host. */
      retryable = data->refused_address == NULL;
      failed_host = !cancelled && data->refused_address == NULL;
    }
  else
    {
      SoupMessageHeaders *headers = soup_message_get_response_headers (data->msg);
      SoupMessageHeadersIter iter;
      g_autoptr(GPtrArray) pairs = g_ptr_array_new ();
      const char *name, *value;
      guint n = 0;

      /* Only the pacing headers, at most 64 of them: the rest is never looked at. */
      soup_message_headers_iter_init (&iter, headers);
      while (soup_message_headers_iter_next (&iter, &name, &value) && n < 64)
        if (g_ascii_strncasecmp (name, "Retry-After", 11) == 0 ||
            g_ascii_strncasecmp (name, "X-Rate", 6) == 0 ||
            g_ascii_strncasecmp (name, "RateLimit", 9) == 0)
          {
            g_ptr_array_add (pairs, (gpointer) name);
            g_ptr_array_add (pairs, (gpointer) value);
            n++;
          }
      g_ptr_array_add (pairs, NULL);
      tocsin_outbound_parse_pacing ((const char * const *) pairs->pdata, now, &pacing);

      attempt->status = soup_message_get_status (data->msg);
      attempt->answer_start = tocsin_outbound_answer_start (data->buffer, data->buffer_len);
      if (!SOUP_STATUS_IS_SUCCESSFUL (attempt->status))
        {
          attempt->error = status_error (attempt->status);
          retryable = attempt->status == STATUS_TOO_MANY_REQUESTS ||
                      attempt->status >= 500;
          failed_host = attempt->status >= 500;
        }
      /* Retry-After on 429 and 503 holds the whole host back, as does an exhausted quota. */
      if (pacing.retry_after_ms > 0 && (attempt->status == STATUS_TOO_MANY_REQUESTS ||
                                        attempt->status == SOUP_STATUS_SERVICE_UNAVAILABLE))
        host->paced_until_ms = MAX (host->paced_until_ms, pacing.retry_after_ms);
      if (pacing.paced_until_ms > 0)
        host->paced_until_ms = MAX (host->paced_until_ms, pacing.paced_until_ms);
    }

  if (!cancelled && data->refused_address == NULL)
    breaker_record (self, host, failed_host, data->probe, now);
  else if (data->probe && host->state == BREAKER_PROBING)
    /* The probe never ended: the next send probes again. */
    host->state = BREAKER_OPEN;

  if (attempt->error == NULL)
    attempt->outcome = TOCSIN_ATTEMPT_SUCCESS;
  else if (data->policy == TOCSIN_REQUEST_POLICY_RETRY && retryable &&
           (cancelled || attempt->attempt < self->config.max_attempts))
    {
      guint64 bound = backoff_bound_ms (self, attempt->attempt);
      gint64 at = now + (gint64) (g_random_double () * (bound + 1));

      if (cancelled)
        at = now;
      at = MAX (at, pacing.retry_after_ms);
      at = MAX (at, host_ready_at (self, host, now));
      attempt->outcome = TOCSIN_ATTEMPT_RETRY;
      attempt->retry_at_ms = at;
    }
  else
    {
      attempt->outcome = TOCSIN_ATTEMPT_FINAL_ERROR;
      if (data->policy == TOCSIN_REQUEST_POLICY_RETRY && retryable)
        {
          char *longer = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                                       "%s (gave up after %u attempt)",
                                                       "%s (gave up after %u attempts)",
                                                       attempt->attempt),
                                          attempt->error, attempt->attempt);

          g_free (attempt->error);
          attempt->error = longer;
        }
    }

  g_task_return_pointer (task, g_steal_pointer (&data->attempt),
                         (GDestroyNotify) tocsin_attempt_free);
}

static void
closed_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;

  /* Errors closing (cancelled: the answer was cut) do not change what we read. */
  g_input_stream_close_finish (G_INPUT_STREAM (source), result, NULL);
  finish_attempt (task, NULL);
}

static void
read_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  SendData *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  gsize nread = 0;

  if (!g_input_stream_read_all_finish (G_INPUT_STREAM (source), result, &nread, &error))
    {
      /* Headers came, the body did not: a timeout or a cut connection mid-answer. */
      finish_attempt (task, error);
      return;
    }
  data->buffer_len = nread;
  /* The rest is not read: closing skips it (see the top of this file). */
  g_input_stream_close_async (data->stream, G_PRIORITY_DEFAULT, NULL, closed_cb,
                              g_steal_pointer (&task));
}

static void
sent_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  SendData *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;

  data->stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (data->stream == NULL)
    {
      finish_attempt (task, error);
      return;
    }
  g_input_stream_read_all_async (data->stream, data->buffer, sizeof data->buffer,
                                 G_PRIORITY_DEFAULT, data->cancellable, read_cb,
                                 g_steal_pointer (&task));
}

static gboolean
timeout_cb (gpointer user_data)
{
  SendData *data = user_data;

  data->timed_out = TRUE;
  g_cancellable_cancel (data->cancellable);
  clear_timeout (data);
  return G_SOURCE_REMOVE;
}

/* Loopback, link-local, private, CGNAT, unspecified, multicast, and IPv4 inside IPv6. */
static gboolean
address_is_private (GInetAddress *address)
{
  const guint8 *b = g_inet_address_to_bytes (address);

  if (g_inet_address_get_is_loopback (address) || g_inet_address_get_is_link_local (address) ||
      g_inet_address_get_is_site_local (address) || g_inet_address_get_is_any (address) ||
      g_inet_address_get_is_multicast (address))
    return TRUE;
  if (g_inet_address_get_family (address) == G_SOCKET_FAMILY_IPV4)
    return b[0] == 0 || (b[0] == 100 && (b[1] & 0xc0) == 64) || b[0] >= 240;
  /* fc00::/7 (unique local) */
  if ((b[0] & 0xfe) == 0xfc)
    return TRUE;
  /* ::ffff:a.b.c.d and ::a.b.c.d carry an IPv4 address */
  for (guint i = 0; i < 10; i++)
    if (b[i] != 0)
      return FALSE;
  if ((b[10] == 0xff && b[11] == 0xff) || (b[10] == 0 && b[11] == 0))
    {
      g_autoptr(GInetAddress) v4 = g_inet_address_new_from_bytes (b + 12,
                                                                   G_SOCKET_FAMILY_IPV4);

      return address_is_private (v4);
    }
  return FALSE;
}

/* deny_private: checked on the socket itself once connected, before a byte of the request. */
static void
network_event_cb (SoupMessage        *msg,
                  GSocketClientEvent  event,
                  GIOStream          *connection,
                  SendData           *data)
{
  g_autoptr(GSocketAddress) remote = NULL;
  GInetAddress *address;

  if (event != G_SOCKET_CLIENT_CONNECTED || !G_IS_SOCKET_CONNECTION (connection))
    return;
  remote = g_socket_connection_get_remote_address (G_SOCKET_CONNECTION (connection), NULL);
  if (!G_IS_INET_SOCKET_ADDRESS (remote))
    return;
  address = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote));
  if (address_is_private (address))
    {
      data->refused_address = g_inet_address_to_string (address);
      g_cancellable_cancel (data->cancellable);
    }
}

static void
caller_cancelled_cb (GCancellable *caller,
                     GCancellable *ours)
{
  g_cancellable_cancel (ours);
}

/* Headers the request may not set: libsoup writes these from the message itself, and ours
 * (webhook-id, webhook-timestamp) are not the definition's to change. */
static gboolean
header_is_reserved (const char *name)
{
  static const char * const reserved[] = {
    "Host", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade", "TE", "Trailer",
    "Keep-Alive", "Expect", "webhook-id", "webhook-timestamp", NULL
  };

  for (guint i = 0; reserved[i]; i++)
    if (g_ascii_strcasecmp (name, reserved[i]) == 0)
      return TRUE;
  return FALSE;
}

void
tocsin_outbound_send_async (TocsinOutbound              *self,
                            const TocsinRenderedRequest *request,
                            const char                  *webhook_id,
                            guint                        attempt,
                            GCancellable                *cancellable,
                            GAsyncReadyCallback          callback,
                            gpointer                     user_data)
{
  g_autoptr(GTask) task = NULL;
  SendData *data;
  SoupMessageHeaders *headers;
  g_autofree char *timestamp = NULL;
  Host *host;
  gint64 now = now_ms ();

  g_return_if_fail (self != NULL);
  g_return_if_fail (request != NULL);

  /* No cancellable on the task: a cancelled send still returns its attempt ("cancelled"). */
  task = g_task_new (NULL, NULL, callback, user_data);
  g_task_set_source_tag (task, tocsin_outbound_send_async);
  data = g_new0 (SendData, 1);
  g_task_set_task_data (task, data, (GDestroyNotify) send_data_free);
  data->self = g_rc_box_acquire (self);
  data->cancellable = g_cancellable_new ();
  g_hash_table_add (self->inflight, data);
  data->policy = request->policy;
  data->started_monotonic = g_get_monotonic_time ();
  data->attempt = g_new0 (TocsinAttempt, 1);
  data->attempt->started_ms = now;
  data->attempt->attempt = MAX (attempt, 1);

  data->uri = parse_http_url (request->url);
  if (data->uri == NULL || request->method == NULL)
    {
      data->attempt->url = tocsin_request_url_for_log (request->url);
      data->attempt->error = g_strdup (_("the URL is not an absolute http or https URL"));
      data->attempt->outcome = TOCSIN_ATTEMPT_FINAL_ERROR;
      g_task_return_pointer (task, g_steal_pointer (&data->attempt),
                             (GDestroyNotify) tocsin_attempt_free);
      return;
    }
  data->key = host_key (data->uri);
  data->attempt->url = tocsin_request_url_for_log (request->url);

  /* A send to a held-back host is the probe (or a forced "Retry now", taken as one). */
  host = lookup_host (self, data->key, TRUE);
  if (host->state == BREAKER_OPEN)
    {
      host->state = BREAKER_PROBING;
      host->probe_started_ms = now;
      data->probe = TRUE;
    }

  data->msg = soup_message_new_from_uri (request->method, data->uri);
  soup_message_add_flags (data->msg, SOUP_MESSAGE_NO_REDIRECT);
  g_signal_connect (data->msg, "accept-certificate", G_CALLBACK (accept_certificate_cb), self);
  if (self->config.deny_private)
    g_signal_connect (data->msg, "network-event", G_CALLBACK (network_event_cb), data);
  headers = soup_message_get_request_headers (data->msg);
  for (guint i = 0; request->headers != NULL && request->headers[i] != NULL &&
       request->headers[i + 1] != NULL; i += 2)
    if (!header_is_reserved (request->headers[i]))
      soup_message_headers_replace (headers, request->headers[i], request->headers[i + 1]);
  if (webhook_id != NULL)
    soup_message_headers_replace (headers, "webhook-id", webhook_id);
  timestamp = g_strdup_printf ("%" G_GINT64_FORMAT, now / 1000);
  soup_message_headers_replace (headers, "webhook-timestamp", timestamp);
  if (request->body != NULL && g_bytes_get_size (request->body) > 0)
    soup_message_set_request_body_from_bytes (data->msg, NULL, request->body);

  if (cancellable != NULL)
    {
      data->caller = g_object_ref (cancellable);
      data->caller_id = g_cancellable_connect (cancellable, G_CALLBACK (caller_cancelled_cb),
                                               data->cancellable, NULL);
    }
  data->timeout = g_timeout_source_new (self->config.timeout_s * 1000);
  g_source_set_callback (data->timeout, timeout_cb, data, NULL);
  g_source_attach (data->timeout, self->context);

  soup_session_send_async (self->session, data->msg, G_PRIORITY_DEFAULT, data->cancellable,
                           sent_cb, g_steal_pointer (&task));
}

TocsinAttempt *
tocsin_outbound_send_finish (TocsinOutbound *self,
                             GAsyncResult   *result)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);

  return g_task_propagate_pointer (G_TASK (result), NULL);
}
