/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-smtp.c: the email trigger's SMTP session and server (see the header).
 *
 * The replies are US-ASCII English on purpose: RFC 5321 replies are 7-bit text (§4.2, and
 * SMTPUTF8 is not offered), so a translated sentence could not be sent as it is. Each says what
 * to do, as the HTTP errors do, after an enhanced status code (RFC 3463).
 *
 * The peer's bytes are read by a state machine that never blocks and never grows without bound:
 * a line longer than RFC 5321's limits is skipped to its end and answered 500; DATA beyond
 * max-mail is counted, not kept, and answered 552 at its end; the replies waiting to be sent
 * stop the reading until they are. STARTTLS drops whatever the peer pipelined after it
 * (RFC 3207 §4.2, and the command injection of CVE-2011-0411).
 *
 * Delivery follows a webhook's path: the MIME parse (tocsin-relay-mail.c) runs on a worker
 * thread, then the channel's templates render on the main loop within their budget, the message
 * is built within the size subscribers take, and the sender hears 250 only once it is durable.
 * Nothing the sender sent is logged.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-relay-ingest.h"
#include "tocsin-relay-mail.h"
#include "tocsin-relay-ratelimit.h"
#include "tocsin-relay-smtp.h"
#include "tocsin-relay-store.h"
#include "tocsin-relay-throttle.h"

typedef enum
{
  PHASE_START,   /* before HELO/EHLO */
  PHASE_HELLO,   /* no transaction */
  PHASE_MAIL,    /* MAIL FROM given */
  PHASE_RCPT,    /* at least one recipient */
  PHASE_DATA,    /* reading the message */
} Phase;

struct _TocsinRelaySmtp
{
  /* settings */
  char                  *domain;
  gsize                  max_size;
  gboolean               tls_available;
  TocsinRelaySmtpHooks   hooks;
  gpointer               user_data;

  /* session */
  TocsinRelaySmtpState   state;
  Phase                  phase;
  gboolean               tls;          /* STARTTLS done */
  gboolean               discarding;   /* skipping the rest of an overlong line */
  guint                  errors;
  GByteArray            *in;           /* bytes not read yet */
  GString               *out;          /* replies not sent yet */

  /* transaction */
  char                  *mail_from;
  char                  *first_rcpt;
  GArray                *channel_ids;  /* gint64 */
  char                  *rcpt_waiting; /* the address of a RCPT TO answered later, or NULL */
  GByteArray            *data;
  gsize                  data_size;    /* as received, even past max_size */
  gboolean               data_long_line;
};

static void
reset_transaction (TocsinRelaySmtp *smtp)
{
  g_clear_pointer (&smtp->mail_from, g_free);
  g_clear_pointer (&smtp->first_rcpt, g_free);
  g_clear_pointer (&smtp->rcpt_waiting, g_free);
  g_array_set_size (smtp->channel_ids, 0);
  g_clear_pointer (&smtp->data, g_byte_array_unref);
  smtp->data_size = 0;
  smtp->data_long_line = FALSE;
  if (smtp->phase > PHASE_HELLO)
    smtp->phase = PHASE_HELLO;
}

TocsinRelaySmtp *
tocsin_relay_smtp_new (const TocsinRelaySmtpLimits *limits,
                       const TocsinRelaySmtpHooks  *hooks,
                       gpointer                     user_data)
{
  TocsinRelaySmtp *smtp;

  g_return_val_if_fail (limits != NULL && limits->domain != NULL, NULL);
  g_return_val_if_fail (hooks != NULL, NULL);

  smtp = g_new0 (TocsinRelaySmtp, 1);
  smtp->domain = g_ascii_strdown (limits->domain, -1);
  smtp->max_size = limits->max_size;
  smtp->tls_available = limits->tls_available;
  smtp->hooks = *hooks;
  smtp->user_data = user_data;
  smtp->in = g_byte_array_new ();
  smtp->out = g_string_new (NULL);
  smtp->channel_ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  return smtp;
}

void
tocsin_relay_smtp_free (TocsinRelaySmtp *smtp)
{
  if (smtp == NULL)
    return;
  reset_transaction (smtp);
  g_array_unref (smtp->channel_ids);
  g_byte_array_unref (smtp->in);
  g_string_free (smtp->out, TRUE);
  g_free (smtp->domain);
  g_free (smtp);
}

/* One reply line; @text is "X.Y.Z sentence". Anything outside printable ASCII is replaced. */
static void
reply_line (TocsinRelaySmtp *smtp,
            guint            code,
            gboolean         more,
            const char      *text)
{
  g_string_append_printf (smtp->out, "%03u%c", code, more ? '-' : ' ');
  for (const char *p = text; *p; p++)
    g_string_append_c (smtp->out, (*p >= ' ' && *p < 127) ? *p : '?');
  g_string_append (smtp->out, "\r\n");
}

static void
reply (TocsinRelaySmtp *smtp,
       guint            code,
       const char      *text)
{
  reply_line (smtp, code, FALSE, text);
  if (code >= 400 && ++smtp->errors >= TOCSIN_RELAY_SMTP_MAX_ERRORS)
    tocsin_relay_smtp_close (smtp, "4.7.0 Too many errors in this session; closing");
}

static void reply_printf (TocsinRelaySmtp *smtp, guint code, const char *format, ...)
  G_GNUC_PRINTF (3, 4);

static void
reply_printf (TocsinRelaySmtp *smtp,
              guint            code,
              const char      *format,
              ...)
{
  g_autofree char *text = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  reply (smtp, code, text);
}

void
tocsin_relay_smtp_greet (TocsinRelaySmtp *smtp)
{
  g_return_if_fail (smtp != NULL);
  reply_printf (smtp, 220, "%s ESMTP tocsin-relay: mail here rings a channel", smtp->domain);
}

void
tocsin_relay_smtp_close (TocsinRelaySmtp *smtp,
                         const char      *text)
{
  g_return_if_fail (smtp != NULL);
  if (smtp->state == TOCSIN_RELAY_SMTP_CLOSING)
    return;
  reply_line (smtp, 421, FALSE, text);
  smtp->state = TOCSIN_RELAY_SMTP_CLOSING;
}

TocsinRelaySmtpState
tocsin_relay_smtp_get_state (TocsinRelaySmtp *smtp)
{
  return smtp->state;
}

GString *
tocsin_relay_smtp_get_output (TocsinRelaySmtp *smtp)
{
  return smtp->out;
}

/* "<path>" after "FROM:" or "TO:" (a space before "<" is tolerated, as most servers do); the
 * address without <> and source route in *address, the parameters after it in *params. */
static gboolean
parse_path (const char  *arg,
            const char  *prefix,
            char       **address,
            const char **params)
{
  const char *open, *close;
  gsize prefix_length = strlen (prefix);

  if (g_ascii_strncasecmp (arg, prefix, prefix_length) != 0)
    return FALSE;
  open = arg + prefix_length;
  while (*open == ' ')
    open++;
  if (*open != '<')
    return FALSE;
  close = strchr (open, '>');
  if (close == NULL)
    return FALSE;
  open++;
  /* RFC 5321 §4.1.2: a source route "@a,@b:" is accepted and ignored. */
  if (*open == '@')
    {
      const char *colon = memchr (open, ':', close - open);

      if (colon == NULL)
        return FALSE;
      open = colon + 1;
    }
  *address = g_strndup (open, close - open);
  *params = close + 1;
  while (**params == ' ')
    (*params)++;
  return TRUE;
}

static void
command_ehlo (TocsinRelaySmtp *smtp,
              gboolean         extended,
              const char      *arg)
{
  if (*arg == '\0')
    {
      reply_printf (smtp, 501, "5.5.4 Say who you are: %s your.host.name",
                    extended ? "EHLO" : "HELO");
      return;
    }
  reset_transaction (smtp);
  smtp->phase = PHASE_HELLO;
  if (!extended)
    {
      reply_printf (smtp, 250, "%s", smtp->domain);
      return;
    }
  reply_line (smtp, 250, TRUE, smtp->domain);
  {
    g_autofree char *size = g_strdup_printf ("SIZE %" G_GSIZE_FORMAT, smtp->max_size);

    reply_line (smtp, 250, TRUE, size);
  }
  reply_line (smtp, 250, TRUE, "8BITMIME");
  reply_line (smtp, 250, TRUE, "PIPELINING");
  if (smtp->tls_available && !smtp->tls)
    reply_line (smtp, 250, TRUE, "STARTTLS");
  reply_line (smtp, 250, FALSE, "ENHANCEDSTATUSCODES");
}

static void
command_mail (TocsinRelaySmtp *smtp,
              const char      *arg)
{
  g_autofree char *address = NULL;
  g_auto(GStrv) params = NULL;
  const char *rest = NULL;

  if (smtp->phase == PHASE_START)
    {
      reply (smtp, 503, "5.5.1 Say EHLO or HELO first");
      return;
    }
  if (smtp->phase != PHASE_HELLO)
    {
      reply (smtp, 503, "5.5.1 A transaction is open already; send RSET to start over");
      return;
    }
  if (!parse_path (arg, "FROM:", &address, &rest))
    {
      reply (smtp, 501, "5.5.4 Write it as MAIL FROM:<address>");
      return;
    }
  params = g_strsplit (rest, " ", -1);
  for (guint i = 0; params[i]; i++)
    {
      const char *param = params[i];

      if (*param == '\0')
        continue;
      if (g_ascii_strncasecmp (param, "SIZE=", 5) == 0)
        {
          guint64 size;
          char *end = NULL;

          if (!g_ascii_isdigit (param[5]))
            {
              reply (smtp, 501, "5.5.4 SIZE= takes a number of bytes");
              return;
            }
          size = g_ascii_strtoull (param + 5, &end, 10);
          if (*end != '\0')
            {
              reply (smtp, 501, "5.5.4 SIZE= takes a number of bytes");
              return;
            }
          if (size > smtp->max_size)
            {
              reply_printf (smtp, 552, "5.3.4 The message is larger than this relay takes "
                            "(%" G_GSIZE_FORMAT " bytes); send a shorter one", smtp->max_size);
              return;
            }
        }
      else if (g_ascii_strcasecmp (param, "BODY=7BIT") == 0 ||
               g_ascii_strcasecmp (param, "BODY=8BITMIME") == 0)
        continue;
      else
        {
          reply (smtp, 555, "5.5.4 This MAIL FROM parameter is not offered here "
                 "(SIZE= and BODY= are)");
          return;
        }
    }
  smtp->mail_from = g_strdup (address);
  smtp->phase = PHASE_MAIL;
  reply (smtp, 250, "2.1.0 Sender OK");
}

static void rcpt_answer (TocsinRelaySmtp *smtp, const char *address, guint code,
                         gint64 channel_id, const char *text);

static void
command_rcpt (TocsinRelaySmtp *smtp,
              const char      *arg)
{
  g_autofree char *address = NULL;
  g_autofree char *local = NULL;
  g_autofree char *text = NULL;
  const char *rest = NULL, *at;
  gint64 channel_id = 0;
  guint code;

  if (smtp->phase != PHASE_MAIL && smtp->phase != PHASE_RCPT)
    {
      reply (smtp, 503, "5.5.1 Send MAIL FROM first");
      return;
    }
  if (!parse_path (arg, "TO:", &address, &rest) || *rest != '\0')
    {
      reply (smtp, 501, "5.5.4 Write it as RCPT TO:<address>");
      return;
    }
  if (smtp->channel_ids->len >= TOCSIN_RELAY_SMTP_MAX_RECIPIENTS)
    {
      reply_printf (smtp, 452, "4.5.3 At most %d recipients a message; send the others in "
                    "another message", TOCSIN_RELAY_SMTP_MAX_RECIPIENTS);
      return;
    }
  at = strrchr (address, '@');
  if (at == NULL || at == address || g_ascii_strcasecmp (at + 1, smtp->domain) != 0)
    {
      reply_printf (smtp, 550, "5.1.2 This relay takes mail only for channels' addresses, "
                    "TOKEN@%s; copy the address from the channel", smtp->domain);
      return;
    }
  local = g_ascii_strdown (address, at - address);
  code = smtp->hooks.recipient (smtp->user_data, local, &channel_id, &text);
  if (code == 0)
    {
      /* Looked up off the main loop: what follows waits (tocsin_relay_smtp_recipient_found). */
      smtp->rcpt_waiting = g_steal_pointer (&address);
      smtp->state = TOCSIN_RELAY_SMTP_DELIVERING;
      return;
    }
  rcpt_answer (smtp, address, code, channel_id, text);
}

static void
rcpt_answer (TocsinRelaySmtp *smtp,
             const char      *address,
             guint            code,
             gint64           channel_id,
             const char      *text)
{
  if (code != 250)
    {
      reply (smtp, code, text ? text : "5.1.1 No channel has this address");
      return;
    }
  for (guint i = 0; i < smtp->channel_ids->len; i++)
    if (g_array_index (smtp->channel_ids, gint64, i) == channel_id)
      {
        reply (smtp, 250, "2.1.5 Recipient OK (already given)");
        return;
      }
  g_array_append_val (smtp->channel_ids, channel_id);
  if (smtp->first_rcpt == NULL)
    smtp->first_rcpt = g_strdup (address);
  smtp->phase = PHASE_RCPT;
  reply (smtp, 250, "2.1.5 Recipient OK");
}

static void
command_starttls (TocsinRelaySmtp *smtp,
                  const char      *arg)
{
  if (!smtp->tls_available || smtp->tls)
    {
      reply (smtp, smtp->tls ? 503 : 502,
             smtp->tls ? "5.5.1 TLS is on already" : "5.5.1 This relay has no certificate "
             "for STARTTLS");
      return;
    }
  if (*arg != '\0')
    {
      reply (smtp, 501, "5.5.4 STARTTLS takes no parameter");
      return;
    }
  if (smtp->phase == PHASE_START)
    {
      reply (smtp, 503, "5.5.1 Say EHLO first");
      return;
    }
  reply (smtp, 220, "2.0.0 Ready to start TLS");
  /* Nothing the peer sent before the handshake may count after it (RFC 3207 §4.2). */
  g_byte_array_set_size (smtp->in, 0);
  reset_transaction (smtp);
  smtp->state = TOCSIN_RELAY_SMTP_STARTTLS;
}

static void
command (TocsinRelaySmtp *smtp,
         const char      *line)
{
  g_autofree char *verb = NULL;
  const char *space = strchr (line, ' ');
  const char *arg = space ? space + 1 : "";

  verb = g_ascii_strup (line, space ? space - line : -1);
  while (*arg == ' ')
    arg++;

  if (g_str_equal (verb, "EHLO") || g_str_equal (verb, "HELO"))
    command_ehlo (smtp, verb[0] == 'E', arg);
  else if (g_str_equal (verb, "MAIL"))
    command_mail (smtp, arg);
  else if (g_str_equal (verb, "RCPT"))
    command_rcpt (smtp, arg);
  else if (g_str_equal (verb, "DATA"))
    {
      if (smtp->phase == PHASE_MAIL)
        reply (smtp, 554, "5.5.1 No valid recipients; give one with RCPT TO first");
      else if (smtp->phase != PHASE_RCPT)
        reply (smtp, 503, "5.5.1 Send MAIL FROM and RCPT TO first");
      else
        {
          smtp->phase = PHASE_DATA;
          smtp->data = g_byte_array_new ();
          reply (smtp, 354, "Send the message; end it with a line holding a single dot");
        }
    }
  else if (g_str_equal (verb, "RSET"))
    {
      reset_transaction (smtp);
      reply (smtp, 250, "2.0.0 OK");
    }
  else if (g_str_equal (verb, "NOOP"))
    reply (smtp, 250, "2.0.0 OK");
  else if (g_str_equal (verb, "QUIT"))
    {
      reply (smtp, 221, "2.0.0 Bye");
      smtp->state = TOCSIN_RELAY_SMTP_CLOSING;
    }
  else if (g_str_equal (verb, "STARTTLS"))
    command_starttls (smtp, arg);
  else if (g_str_equal (verb, "VRFY"))
    reply (smtp, 252, "2.5.2 Addresses are not verified here; send the message");
  else if (g_str_equal (verb, "HELP"))
    reply (smtp, 214, "2.0.0 Mail to a channel's address rings it; see docs/api.md");
  else
    reply (smtp, 500, "5.5.2 This command is not offered here");
}

/* A line of DATA, without its line end. */
static void
data_line (TocsinRelaySmtp *smtp,
           const char      *line,
           gsize            length)
{
  if (length == 1 && line[0] == '.')
    {
      g_autoptr(GBytes) bytes = NULL;

      if (smtp->data_size > smtp->max_size)
        {
          reset_transaction (smtp);
          reply_printf (smtp, 552, "5.3.4 The message is larger than this relay takes "
                        "(%" G_GSIZE_FORMAT " bytes); send a shorter one", smtp->max_size);
          return;
        }
      if (smtp->data_long_line)
        {
          reset_transaction (smtp);
          reply_printf (smtp, 500, "5.5.2 A line of the message is longer than %d bytes "
                        "(RFC 5321); encode it (quoted-printable or base64)",
                        TOCSIN_RELAY_SMTP_MAX_TEXT_LINE);
          return;
        }
      bytes = g_byte_array_free_to_bytes (g_steal_pointer (&smtp->data));
      smtp->state = TOCSIN_RELAY_SMTP_DELIVERING;
      /* The hook may answer at once (tocsin_relay_smtp_delivered). */
      smtp->hooks.deliver (smtp->user_data, smtp->mail_from, smtp->first_rcpt,
                           smtp->channel_ids, bytes);
      reset_transaction (smtp);
      return;
    }
  /* Dot-unstuffing (RFC 5321 §4.5.2). */
  if (length > 0 && line[0] == '.')
    {
      line++;
      length--;
    }
  smtp->data_size += length + 2;
  if (smtp->data_size > smtp->max_size)
    {
      /* Counted, no longer kept: the 552 comes at the end of DATA. */
      g_byte_array_set_size (smtp->data, 0);
      return;
    }
  g_byte_array_append (smtp->data, (const guint8 *) line, length);
  g_byte_array_append (smtp->data, (const guint8 *) "\r\n", 2);
}

static void
line_too_long (TocsinRelaySmtp *smtp)
{
  if (smtp->phase == PHASE_DATA)
    smtp->data_long_line = TRUE;
  else
    reply_printf (smtp, 500, "5.5.2 A command line is longer than %d bytes (RFC 5321)",
                  TOCSIN_RELAY_SMTP_MAX_COMMAND_LINE);
}

TocsinRelaySmtpState
tocsin_relay_smtp_feed (TocsinRelaySmtp *smtp,
                        const char      *data,
                        gsize            length)
{
  gsize done = 0;

  g_return_val_if_fail (smtp != NULL, TOCSIN_RELAY_SMTP_CLOSING);

  if (smtp->state == TOCSIN_RELAY_SMTP_CLOSING)
    return smtp->state;
  if (data != NULL && length > 0)
    g_byte_array_append (smtp->in, (const guint8 *) data, length);

  while (smtp->state == TOCSIN_RELAY_SMTP_READY && done < smtp->in->len)
    {
      const char *start = (const char *) smtp->in->data + done;
      gsize left = smtp->in->len - done;
      gsize limit = smtp->phase == PHASE_DATA ? TOCSIN_RELAY_SMTP_MAX_TEXT_LINE
                                              : TOCSIN_RELAY_SMTP_MAX_COMMAND_LINE;
      const char *lf = memchr (start, '\n', left);
      gsize line_length;

      if (lf == NULL)
        {
          /* No end yet: keep it, unless it is too long already. */
          if (left > limit)
            {
              if (!smtp->discarding)
                line_too_long (smtp);
              smtp->discarding = TRUE;
              done = smtp->in->len;
            }
          break;
        }
      line_length = lf - start + 1;
      done += line_length;
      if (smtp->discarding)
        {
          smtp->discarding = FALSE;
          continue;
        }
      if (line_length > limit)
        {
          line_too_long (smtp);
          continue;
        }
      /* CRLF, or a bare LF, which many senders write. */
      line_length--;
      if (line_length > 0 && start[line_length - 1] == '\r')
        line_length--;
      if (smtp->phase == PHASE_DATA)
        data_line (smtp, start, line_length);
      else
        {
          g_autofree char *line = g_strndup (start, line_length);

          command (smtp, line);
        }
    }

  /* STARTTLS may have emptied the buffer already. */
  if (done > 0 && done <= smtp->in->len)
    g_byte_array_remove_range (smtp->in, 0, done);
  return smtp->state;
}

void
tocsin_relay_smtp_delivered (TocsinRelaySmtp *smtp,
                             guint            code,
                             const char      *text)
{
  g_return_if_fail (smtp != NULL);
  g_return_if_fail (smtp->state == TOCSIN_RELAY_SMTP_DELIVERING);

  smtp->state = TOCSIN_RELAY_SMTP_READY;
  reply (smtp, code, text);
}

void
tocsin_relay_smtp_recipient_found (TocsinRelaySmtp *smtp,
                                   guint            code,
                                   gint64           channel_id,
                                   const char      *text)
{
  g_autofree char *address = NULL;

  g_return_if_fail (smtp != NULL);

  if (smtp->state != TOCSIN_RELAY_SMTP_DELIVERING || smtp->rcpt_waiting == NULL)
    return;
  address = g_steal_pointer (&smtp->rcpt_waiting);
  smtp->state = TOCSIN_RELAY_SMTP_READY;
  rcpt_answer (smtp, address, code, channel_id, text);
}

void
tocsin_relay_smtp_tls_started (TocsinRelaySmtp *smtp)
{
  g_return_if_fail (smtp != NULL);
  g_return_if_fail (smtp->state == TOCSIN_RELAY_SMTP_STARTTLS);

  smtp->state = TOCSIN_RELAY_SMTP_READY;
  smtp->tls = TRUE;
  smtp->phase = PHASE_START;
  g_byte_array_set_size (smtp->in, 0);
}

/* ---- the server: sessions on sockets ------------------------------------------------- */

/* Sessions at once; more are answered 421 and closed. */
#define MAX_SESSIONS 100
/* Seconds a whole session may last. How long a peer may send nothing is the relay's
 * idle-timeout (RFC 5321 §4.5.3.2 suggests minutes; a relay that keeps sockets for slow peers is
 * one that runs out of them). */
#define SESSION_SECONDS 600
#define READ_SIZE 16384
/* Replies waiting to be sent past this stop the reading until the peer takes them. */
#define MAX_OUTPUT 65536

struct _TocsinRelaySmtpServer
{
  TocsinRelay      *relay;        /* borrowed */
  GSocketService   *service;
  GTlsCertificate  *certificate;  /* NULL: no STARTTLS */
  GHashTable       *conns;        /* Conn*, open sessions */
};

typedef struct
{
  gint                    ref_count;
  TocsinRelaySmtpServer  *server;       /* NULL once the session is closed */
  GSocketConnection      *connection;
  GIOStream              *stream;       /* the connection, or its TLS connection */
  TocsinRelaySmtp        *smtp;
  char                   *address;      /* the peer's IP address, for the throttle */
  GCancellable           *cancellable;
  guint8                  buffer[READ_SIZE];
  GString                *sending;      /* being written */
  gboolean                reading;
  gboolean                handshaking;
  guint                   idle_id;
  guint                   session_id;
} Conn;

static void conn_pump (Conn *conn);

static guint
idle_seconds (Conn *conn)
{
  return MAX (conn->server->relay->config.idle_timeout, 1u);
}

static Conn *
conn_ref (Conn *conn)
{
  g_atomic_int_inc (&conn->ref_count);
  return conn;
}

static void
conn_unref (Conn *conn)
{
  if (!g_atomic_int_dec_and_test (&conn->ref_count))
    return;
  g_clear_object (&conn->stream);
  g_clear_object (&conn->connection);
  g_clear_object (&conn->cancellable);
  g_clear_pointer (&conn->smtp, tocsin_relay_smtp_free);
  g_string_free (conn->sending, TRUE);
  g_free (conn->address);
  g_free (conn);
}

static void
conn_close (Conn *conn)
{
  TocsinRelaySmtpServer *server = conn->server;

  if (server == NULL)
    return;
  conn->server = NULL;
  g_cancellable_cancel (conn->cancellable);
  g_clear_handle_id (&conn->idle_id, g_source_remove);
  g_clear_handle_id (&conn->session_id, g_source_remove);
  /* Closing the socket itself ends a TLS stream without its close_notify: the peer is gone or
   * being sent away, and a close that waits on it is what a slow peer would exploit. */
  g_io_stream_close (G_IO_STREAM (conn->connection), NULL, NULL);
  g_hash_table_remove (server->conns, conn);   /* drops the table's reference */
}

static gboolean
idle_timeout (gpointer user_data)
{
  Conn *conn = user_data;

  conn->idle_id = 0;
  if (tocsin_relay_smtp_get_state (conn->smtp) == TOCSIN_RELAY_SMTP_DELIVERING)
    {
      /* Our own work, not the peer's silence. */
      conn->idle_id = g_timeout_add_seconds (idle_seconds (conn), idle_timeout, conn);
      return G_SOURCE_REMOVE;
    }
  if (conn->handshaking)
    {
      conn_close (conn);
      return G_SOURCE_REMOVE;
    }
  tocsin_relay_smtp_close (conn->smtp, "4.4.2 Nothing came for too long; closing");
  conn_pump (conn);
  return G_SOURCE_REMOVE;
}

static gboolean
session_timeout (gpointer user_data)
{
  Conn *conn = user_data;

  conn->session_id = 0;
  if (conn->handshaking)
    {
      conn_close (conn);
      return G_SOURCE_REMOVE;
    }
  tocsin_relay_smtp_close (conn->smtp, "4.4.2 This session lasted too long; closing");
  conn_pump (conn);
  return G_SOURCE_REMOVE;
}

static void
touch (Conn *conn)
{
  g_clear_handle_id (&conn->idle_id, g_source_remove);
  if (conn->server != NULL)
    conn->idle_id = g_timeout_add_seconds (idle_seconds (conn), idle_timeout, conn);
}

static void
read_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Conn *conn = user_data;
  g_autoptr(GError) error = NULL;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  conn->reading = FALSE;
  if (conn->server != NULL)
    {
      if (n <= 0)
        {
          /* The peer left (or the read failed): nothing to answer. */
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            conn_close (conn);
        }
      else
        {
          touch (conn);
          tocsin_relay_smtp_feed (conn->smtp, (const char *) conn->buffer, n);
          conn_pump (conn);
        }
    }
  conn_unref (conn);
}

static void
write_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Conn *conn = user_data;
  g_autoptr(GError) error = NULL;

  g_string_truncate (conn->sending, 0);
  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    conn_close (conn);
  else if (conn->server != NULL)
    conn_pump (conn);
  conn_unref (conn);
}

static void
handshake_done (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Conn *conn = user_data;
  g_autoptr(GError) error = NULL;

  conn->handshaking = FALSE;
  if (!g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error))
    {
      g_debug ("An SMTP peer failed the TLS handshake: %s", error->message);
      conn_close (conn);
    }
  else if (conn->server != NULL)
    {
      g_set_object (&conn->stream, G_IO_STREAM (source));
      tocsin_relay_smtp_tls_started (conn->smtp);
      touch (conn);
      conn_pump (conn);
    }
  conn_unref (conn);
}

static void
start_tls (Conn *conn)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GIOStream) tls = NULL;

  tls = g_tls_server_connection_new (G_IO_STREAM (conn->connection),
                                     conn->server->certificate, &error);
  if (tls == NULL)
    {
      g_message ("Could not start TLS for an SMTP session: %s", error->message);
      conn_close (conn);
      return;
    }
  conn->handshaking = TRUE;
  g_tls_connection_handshake_async (G_TLS_CONNECTION (tls), G_PRIORITY_DEFAULT,
                                    conn->cancellable, handshake_done, conn_ref (conn));
}

/* Sends what the session wrote, then reads, hands over to TLS or closes, as it asks. */
static void
conn_pump (Conn *conn)
{
  GString *out;
  TocsinRelaySmtpState state;

  if (conn->server == NULL || conn->handshaking)
    return;
  out = tocsin_relay_smtp_get_output (conn->smtp);
  if (conn->sending->len == 0 && out->len > 0)
    {
      g_string_append_len (conn->sending, out->str, out->len);
      g_string_truncate (out, 0);
      g_output_stream_write_all_async (g_io_stream_get_output_stream (conn->stream),
                                       conn->sending->str, conn->sending->len,
                                       G_PRIORITY_DEFAULT, conn->cancellable, write_done,
                                       conn_ref (conn));
    }
  state = tocsin_relay_smtp_get_state (conn->smtp);
  switch (state)
    {
    case TOCSIN_RELAY_SMTP_READY:
      if (!conn->reading && out->len < MAX_OUTPUT)
        {
          conn->reading = TRUE;
          g_input_stream_read_async (g_io_stream_get_input_stream (conn->stream), conn->buffer,
                                     sizeof conn->buffer, G_PRIORITY_DEFAULT, conn->cancellable,
                                     read_done, conn_ref (conn));
        }
      break;
    case TOCSIN_RELAY_SMTP_DELIVERING:
      break;
    case TOCSIN_RELAY_SMTP_STARTTLS:
      /* After the 220 is out, and with no read in flight to take the handshake's bytes. */
      if (conn->sending->len == 0 && out->len == 0 && !conn->reading)
        start_tls (conn);
      break;
    case TOCSIN_RELAY_SMTP_CLOSING:
      if (conn->sending->len == 0 && out->len == 0)
        conn_close (conn);
      break;
    }
}

/* ---- recipients and delivery --------------------------------------------------------- */

/* The rest of RCPT TO once its channel has been looked up (@channel: NULL when unknown). */
static guint
recipient_check (Conn                *conn,
                 TocsinRelayChannel  *channel,
                 gint64              *channel_id,
                 char               **text)
{
  TocsinRelay *relay = conn->server->relay;
  guint retry_after = 0;

  /* A Direct inbox has no address: it rings through /d/ only. */
  if (channel == NULL || channel->direct)
    {
      if (relay->unknown_tokens != NULL)
        tocsin_relay_throttle_note_miss (relay->unknown_tokens, conn->address);
      *text = g_strdup ("5.1.1 No channel has this address; check it (it may have been "
                        "rotated)");
      return 550;
    }
  /* Mail cannot carry a webhook signature: a channel that requires one takes none. */
  if (channel->signature_scheme != NULL && *channel->signature_scheme != '\0')
    {
      tocsin_relay_ingest_note (relay, channel->id, 550, "Mail refused: the channel requires "
                                "signed webhooks");
      *text = g_strdup ("5.7.1 This channel requires signed webhooks; it takes no mail");
      return 550;
    }
  if (channel->paused)
    {
      tocsin_relay_ingest_note (relay, channel->id, 550, tocsin_relay_ingest_paused_sentence ());
      *text = g_strdup ("5.2.1 This channel is paused by its owner; nothing is delivered");
      return 550;
    }
  if (relay->rate_limit != NULL &&
      !tocsin_relay_rate_limit_take (relay->rate_limit, channel->id,
                                     relay->config.rate_per_second, relay->config.rate_burst,
                                     g_get_monotonic_time (), NULL, NULL, &retry_after))
    {
      *text = g_strdup_printf ("4.7.1 This channel takes messages faster than its limit; "
                               "retry in %u seconds", MAX (retry_after, 1u));
      return 451;
    }
  *channel_id = channel->id;
  return 250;
}

/* A recipient's address, looked up on the store's reader thread
 * (tocsin_relay_store_find_channel_async()); @user_data is a reference on the connection. */
static void
rcpt_lookup_done (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Conn *conn = user_data;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(GError) error = NULL;

  channel = tocsin_relay_store_find_channel_finish (NULL, result, &error);
  /* The peer is gone, or the server: nothing to answer. */
  if (conn->server != NULL)
    {
      g_autofree char *text = NULL;
      gint64 channel_id = 0;
      guint code;

      /* The database (PostgreSQL) did not answer: a temporary failure, not "no such user". */
      if (error != NULL)
        {
          g_message ("Could not look a mail recipient up: %s", error->message);
          code = 451;
          text = g_strdup ("4.3.0 The relay cannot reach its database; try again later");
        }
      else
        code = recipient_check (conn, channel, &channel_id, &text);

      tocsin_relay_smtp_recipient_found (conn->smtp, code, channel_id, text);
      touch (conn);
      tocsin_relay_smtp_feed (conn->smtp, NULL, 0);
      conn_pump (conn);
    }
  conn_unref (conn);
}

static guint
conn_recipient (gpointer     user_data,
                const char  *local,
                gint64      *channel_id,
                char       **text)
{
  Conn *conn = user_data;
  TocsinRelay *relay = conn->server->relay;
  guint retry_after = 0;

  if (relay->unknown_tokens != NULL &&
      (retry_after = tocsin_relay_throttle_retry_after (relay->unknown_tokens, conn->address)))
    {
      *text = g_strdup_printf ("4.7.1 Too many unknown addresses from your address; retry in "
                               "%u seconds", retry_after);
      return 450;
    }
  /* Answered once the store's reader thread has looked it up (rcpt_lookup_done). */
  tocsin_relay_store_find_channel_async (relay->store, TOCSIN_RELAY_TOKEN_EMAIL, local,
                                         rcpt_lookup_done, conn_ref (conn));
  return 0;
}

typedef struct
{
  Conn            *conn;
  GArray          *channel_ids;
  GBytes          *data;
  char            *mail_from;
  char            *rcpt_to;
  TocsinRelayMail *mail;
  guint            pending;      /* commits under way */
  guint            code;         /* the first failure, or 0 */
  char            *text;
  GPtrArray       *channels;     /* of channel_ids, looked up off the main loop (or NULL) */
} Delivery;

static void
delivery_free (Delivery *delivery)
{
  conn_unref (delivery->conn);
  g_array_unref (delivery->channel_ids);
  g_bytes_unref (delivery->data);
  g_free (delivery->mail_from);
  g_free (delivery->rcpt_to);
  g_clear_pointer (&delivery->mail, tocsin_relay_mail_free);
  g_free (delivery->text);
  g_clear_pointer (&delivery->channels, g_ptr_array_unref);
  g_free (delivery);
}

static void
delivery_fail (Delivery   *delivery,
               guint       code,
               const char *text)
{
  /* A temporary failure wins: the sender retries, and the Message-ID dedups what went. */
  if (delivery->code == 0 || (code < 500 && delivery->code >= 500))
    {
      delivery->code = code;
      g_free (delivery->text);
      delivery->text = g_strdup (text);
    }
}

static void
delivery_finish (Delivery *delivery)
{
  Conn *conn = delivery->conn;

  if (conn->server != NULL)
    {
      if (delivery->code != 0)
        tocsin_relay_smtp_delivered (conn->smtp, delivery->code, delivery->text);
      else
        tocsin_relay_smtp_delivered (conn->smtp, 250, "2.0.0 The channel has it");
      touch (conn);
      tocsin_relay_smtp_feed (conn->smtp, NULL, 0);
      conn_pump (conn);
    }
  delivery_free (delivery);
}

static void
committed (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Delivery *delivery = user_data;
  g_autoptr(TocsinRelayCommit) commit = NULL;
  g_autoptr(GError) error = NULL;

  commit = tocsin_relay_ingest_commit_finish (result, &error);
  if (commit == NULL)
    {
      if (g_error_matches (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND))
        delivery_fail (delivery, 550, "5.1.1 The channel was deleted while the message arrived");
      else
        {
          g_message ("Could not store a mail: %s", error->message);
          delivery_fail (delivery, 451, "4.3.0 The relay could not store the message (its disk "
                         "may be full); try again later");
        }
    }
  if (--delivery->pending == 0)
    delivery_finish (delivery);
}

static void
deliver_to (Delivery           *delivery,
            gint64              channel_id,
            TocsinRelayChannel *channel)
{
  TocsinRelay *relay = delivery->conn->server->relay;
  g_auto(TocsinRelayRendered) rendered = { 0 };
  g_autoptr(TocsinMessage) message = NULL;
  g_autofree char *key = NULL;
  const char *text;

  if (channel == NULL)
    {
      delivery_fail (delivery, 550, "5.1.1 The channel was deleted while the message arrived");
      return;
    }
  text = json_object_get_string_member (delivery->mail->vars, "text");
  tocsin_relay_ingest_render (channel, delivery->mail->vars, delivery->mail->headers, text, NULL,
                              &rendered);
  if (rendered.over_budget != NULL)
    {
      delivery_fail (delivery, 554, "5.6.0 The channel's templates went over their work budget "
                     "on this message; its owner must simplify them");
      return;
    }
  if (rendered.filtered)
    return;
  message = tocsin_relay_ingest_build_message (channel, delivery->mail->vars, &rendered,
                                               g_get_real_time () / 1000,
                                               tocsin_relay_ingest_max_message (
                                                 relay->config.max_queue_bytes),
                                               NULL);
  if (message == NULL)
    {
      delivery_fail (delivery, 552, "5.3.4 The message would be too large once rendered (its "
                     "text, HTML and headers are delivered); send a shorter one");
      return;
    }
  if (delivery->mail->message_id != NULL)
    key = g_strconcat ("message-id:", delivery->mail->message_id, NULL);
  delivery->pending++;
  tocsin_relay_ingest_commit_with_forwards_async (relay, channel_id, g_steal_pointer (&message),
                                                  key, delivery->mail->vars, channel->forwards,
                                                  rendered.forwards, committed, delivery);
}

static void
parse_thread (GTask        *task,
              gpointer      source,
              gpointer      task_data,
              GCancellable *cancellable)
{
  Delivery *delivery = task_data;
  GError *error = NULL;
  gsize length = 0;
  const char *data = g_bytes_get_data (delivery->data, &length);
  TocsinRelayMail *mail;

  mail = tocsin_relay_mail_parse (data ? data : "", length, delivery->mail_from,
                                  delivery->rcpt_to, &error);
  if (mail == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, mail, (GDestroyNotify) tocsin_relay_mail_free);
}

/* On the store's reader thread: the recipients' channels as they are now (NULL: deleted). */
static gboolean
channels_lookup (TocsinRelayStore  *store,
                 gpointer           data,
                 GError           **error)
{
  Delivery *delivery = data;

  delivery->channels = g_ptr_array_new_with_free_func ((GDestroyNotify)
                                                       tocsin_relay_channel_unref);
  for (guint i = 0; i < delivery->channel_ids->len; i++)
    g_ptr_array_add (delivery->channels,
                     tocsin_relay_store_find_by_id (store, g_array_index (delivery->channel_ids,
                                                                          gint64, i)));
  return TRUE;
}

static void
channels_found (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Delivery *delivery = user_data;

  /* The peer left before it heard 250: nothing is delivered, and it will send again. */
  if (delivery->conn->server == NULL)
    {
      delivery_free (delivery);
      return;
    }
  /* Held until every channel's commit answers (committed). */
  delivery->pending++;
  for (guint i = 0; i < delivery->channel_ids->len; i++)
    deliver_to (delivery, g_array_index (delivery->channel_ids, gint64, i),
                delivery->channels->pdata[i]);
  if (--delivery->pending > 0)
    return;
  delivery_finish (delivery);
}

static void
parsed (GObject      *source,
        GAsyncResult *result,
        gpointer      user_data)
{
  Delivery *delivery = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;

  delivery->mail = g_task_propagate_pointer (G_TASK (result), &error);
  /* The peer left before it heard 250: nothing is delivered, and it will send again. */
  if (delivery->conn->server == NULL)
    {
      delivery_free (delivery);
      return;
    }
  if (delivery->mail == NULL)
    {
      g_autofree char *text = g_strdup_printf ("5.6.0 %s", error->message);

      delivery_fail (delivery, 554, text);
      delivery_finish (delivery);
      return;
    }
  tocsin_relay_store_call_async (delivery->conn->server->relay->store, FALSE, channels_lookup,
                                 delivery, channels_found, delivery);
}

static void
conn_deliver (gpointer     user_data,
              const char  *mail_from,
              const char  *rcpt_to,
              GArray      *channel_ids,
              GBytes      *data)
{
  Conn *conn = user_data;
  Delivery *delivery = g_new0 (Delivery, 1);
  g_autoptr(GTask) task = NULL;

  delivery->conn = conn_ref (conn);
  delivery->channel_ids = g_array_copy (channel_ids);
  delivery->data = g_bytes_ref (data);
  delivery->mail_from = g_strdup (mail_from);
  delivery->rcpt_to = g_strdup (rcpt_to);
  /* The task's data is the delivery; parsed() frees it, so the task does not. */
  task = g_task_new (NULL, NULL, parsed, NULL);
  g_task_set_source_tag (task, conn_deliver);
  g_task_set_task_data (task, delivery, NULL);
  g_task_run_in_thread (task, parse_thread);
}

/* ---- accepting ------------------------------------------------------------------------ */

static gboolean
incoming (GSocketService    *service,
          GSocketConnection *connection,
          GObject           *source_object,
          gpointer           user_data)
{
  TocsinRelaySmtpServer *server = user_data;
  TocsinRelaySmtpLimits limits = { 0 };
  const TocsinRelaySmtpHooks hooks = { conn_recipient, conn_deliver };
  g_autoptr(GSocketAddress) remote = NULL;
  Conn *conn;

  if (g_hash_table_size (server->conns) >= MAX_SESSIONS)
    {
      static const char busy[] = "421 4.3.2 Too many sessions at once; try again later\r\n";
      GSocket *socket = g_socket_connection_get_socket (connection);

      /* Best effort and never blocking: the socket is new, its buffer empty. */
      g_socket_set_blocking (socket, FALSE);
      g_socket_send (socket, busy, sizeof busy - 1, NULL, NULL);
      g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
      return TRUE;
    }

  conn = g_new0 (Conn, 1);
  conn->ref_count = 1;
  conn->server = server;
  conn->connection = g_object_ref (connection);
  conn->stream = G_IO_STREAM (g_object_ref (connection));
  conn->cancellable = g_cancellable_new ();
  conn->sending = g_string_new (NULL);
  remote = g_socket_connection_get_remote_address (connection, NULL);
  if (G_IS_INET_SOCKET_ADDRESS (remote))
    conn->address = g_inet_address_to_string (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
  limits.domain = tocsin_relay_mail_get_domain ();
  limits.max_size = server->relay->config.max_mail;
  limits.tls_available = server->certificate != NULL;
  conn->smtp = tocsin_relay_smtp_new (&limits, &hooks, conn);
  g_hash_table_add (server->conns, conn);
  conn->session_id = g_timeout_add_seconds (SESSION_SECONDS, session_timeout, conn);
  touch (conn);
  tocsin_relay_smtp_greet (conn->smtp);
  conn_pump (conn);
  return TRUE;
}

TocsinRelaySmtpServer *
tocsin_relay_smtp_server_new (TocsinRelay      *relay,
                              const char       *listen,
                              GTlsCertificate  *certificate,
                              char            **url,
                              GError          **error)
{
  g_autoptr(GSocketConnectable) connectable = NULL;
  g_autoptr(GInetAddress) inet = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) local_error = NULL;
  TocsinRelaySmtpServer *server;
  const char *host;
  guint16 port;

  g_return_val_if_fail (relay != NULL && listen != NULL, NULL);

  tocsin_relay_mail_init ();
  connectable = g_network_address_parse (listen, 0, NULL);
  host = connectable ? g_network_address_get_hostname (G_NETWORK_ADDRESS (connectable)) : NULL;
  if (host != NULL && g_str_equal (host, "localhost"))
    inet = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  else if (host != NULL)
    inet = g_inet_address_new_from_string (host);
  if (inet == NULL || strrchr (listen, ':') == NULL)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--smtp-listen takes an IP address and a port, such as 127.0.0.1:2525 "
                     "or [::1]:25, not “%s”."), listen);
      return NULL;
    }
  port = g_network_address_get_port (G_NETWORK_ADDRESS (connectable));
  address = g_inet_socket_address_new (inet, port);

  server = g_new0 (TocsinRelaySmtpServer, 1);
  server->relay = relay;
  server->certificate = certificate ? g_object_ref (certificate) : NULL;
  server->conns = g_hash_table_new_full (g_direct_hash, g_direct_equal,
                                         (GDestroyNotify) conn_unref, NULL);
  server->service = g_socket_service_new ();
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (server->service), address,
                                      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL,
                                      &bound, &local_error))
    {
      g_set_error (error, local_error->domain, local_error->code,
                   _("Could not listen for mail on %s: %s"), listen, local_error->message);
      tocsin_relay_smtp_server_free (server);
      return NULL;
    }
  g_signal_connect (server->service, "incoming", G_CALLBACK (incoming), server);
  g_socket_service_start (server->service);
  if (url != NULL)
    {
      g_autofree char *ip = g_inet_address_to_string (
        g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (bound)));
      guint16 bound_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));

      if (strchr (ip, ':') != NULL)
        *url = g_strdup_printf ("smtp://[%s]:%u", ip, bound_port);
      else
        *url = g_strdup_printf ("smtp://%s:%u", ip, bound_port);
    }
  return server;
}

void
tocsin_relay_smtp_server_free (TocsinRelaySmtpServer *server)
{
  if (server == NULL)
    return;
  g_socket_service_stop (server->service);
  g_socket_listener_close (G_SOCKET_LISTENER (server->service));
  g_clear_object (&server->service);
  /* conn_close removes each from the table; the table's references go with it. */
  while (g_hash_table_size (server->conns) > 0)
    {
      GHashTableIter iter;
      gpointer conn;

      g_hash_table_iter_init (&iter, server->conns);
      g_hash_table_iter_next (&iter, &conn, NULL);
      conn_close (conn);
    }
  g_hash_table_unref (server->conns);
  g_clear_object (&server->certificate);
  g_free (server);
}
