/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libFuzzer target for the email trigger: an SMTP session (tocsin-relay-smtp.c) fed the input
 * as a peer's bytes, in pieces whose sizes come from the input, whose every message goes
 * through the MIME path (tocsin_relay_mail_parse, tocsin-relay-mail.c) as the server's does;
 * and the input parsed as a message on its own.
 *
 * Beyond "does not crash": every reply line is "NNN" and printable ASCII ending in CRLF; the
 * output never grows past a bound per input byte; a parsed message's variables are valid UTF-8;
 * a refused one has a sentence.
 */
#define G_LOG_DOMAIN "fuzz-smtp"

#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "tocsin-relay-mail.h"
#include "tocsin-relay-smtp.h"

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

static void
check_vars (JsonObject *vars)
{
  static const char *const names[] = { "from", "to", "subject", "text", "html" };
  JsonObject *headers;
  g_autoptr(GList) members = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      const char *value = json_object_get_string_member (vars, names[i]);

      check (value != NULL && g_utf8_validate (value, -1, NULL), "variables are valid UTF-8");
    }
  headers = json_object_get_object_member (vars, "headers");
  check (headers != NULL, "headers is an object");
  members = json_object_get_members (headers);
  check (g_list_length (members) <= TOCSIN_RELAY_MAIL_MAX_HEADERS, "headers are bounded");
  for (GList *l = members; l; l = l->next)
    {
      const char *value = json_object_get_string_member (headers, l->data);

      check (g_utf8_validate (l->data, -1, NULL), "header names are valid UTF-8");
      check (value != NULL && g_utf8_validate (value, -1, NULL) && !strchr (value, '\n'),
             "header values are one line of valid UTF-8");
    }
}

static void
parse (const char *data,
       gsize       length)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinRelayMail) mail = NULL;

  mail = tocsin_relay_mail_parse (data, length, "env@example.org", "to@mail.test", &error);
  check ((mail == NULL) == (error != NULL), "an error exactly when the message is refused");
  if (mail == NULL)
    {
      check (g_utf8_validate (error->message, -1, NULL), "the reason is valid UTF-8");
      return;
    }
  check_vars (mail->vars);
}

typedef struct
{
  TocsinRelaySmtp *smtp;
  guint            delivered;
} Session;

static guint
recipient (gpointer     user_data,
           const char  *local,
           gint64      *channel_id,
           char       **text)
{
  if (g_str_has_prefix (local, "known"))
    {
      *channel_id = 1;
      return 250;
    }
  *text = g_strdup ("5.1.1 No channel has this address");
  return 550;
}

static void
deliver (gpointer     user_data,
         const char  *mail_from,
         const char  *rcpt_to,
         GArray      *channel_ids,
         GBytes      *data)
{
  Session *session = user_data;
  gsize length = 0;
  const char *bytes = g_bytes_get_data (data, &length);

  check (channel_ids->len > 0, "a message has a recipient");
  check (length <= 4096, "DATA past the limit is not kept");
  parse (bytes ? bytes : "", length);
  session->delivered++;
  /* Every other one answered later, as the server does after its commit. */
  if (session->delivered % 2 == 1)
    tocsin_relay_smtp_delivered (session->smtp, 250, "2.0.0 The channel has it");
}

static void
check_output (GString *out)
{
  const char *line = out->str;

  while (*line)
    {
      const char *end = strstr (line, "\r\n");

      check (end != NULL, "replies end in CRLF");
      check (end - line >= 4 && g_ascii_isdigit (line[0]) && g_ascii_isdigit (line[1]) &&
             g_ascii_isdigit (line[2]) && (line[3] == ' ' || line[3] == '-'),
             "a reply starts with its code");
      for (const char *p = line; p < end; p++)
        check (*p >= ' ' && *p < 127, "replies are printable ASCII");
      line = end + 2;
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  TocsinRelaySmtpLimits limits = { "mail.test", 4096, TRUE };
  TocsinRelaySmtpHooks hooks = { recipient, deliver };
  Session session = { 0 };
  gsize done = 0, step = 1, output = 0;

  parse ((const char *) data, size);

  session.smtp = tocsin_relay_smtp_new (&limits, &hooks, &session);
  tocsin_relay_smtp_greet (session.smtp);
  while (done < size)
    {
      gsize piece = MIN (step, size - done);
      TocsinRelaySmtpState state;
      GString *out;

      state = tocsin_relay_smtp_feed (session.smtp, (const char *) data + done, piece);
      done += piece;
      /* Pieces of 1, 2, 4 ... 64 bytes, then again. */
      step = step >= 64 ? 1 : step * 2;
      if (state == TOCSIN_RELAY_SMTP_DELIVERING)
        tocsin_relay_smtp_delivered (session.smtp, 451, "4.3.0 Try again later");
      else if (state == TOCSIN_RELAY_SMTP_STARTTLS)
        tocsin_relay_smtp_tls_started (session.smtp);
      tocsin_relay_smtp_feed (session.smtp, NULL, 0);
      out = tocsin_relay_smtp_get_output (session.smtp);
      check_output (out);
      output += out->len;
      g_string_truncate (out, 0);
      if (tocsin_relay_smtp_get_state (session.smtp) == TOCSIN_RELAY_SMTP_CLOSING)
        break;
    }
  /* One reply per line at most, and EHLO's few lines: output is bounded by the input. */
  check (output <= 300 * (done + 1), "replies are bounded by what was sent");
  tocsin_relay_smtp_free (session.smtp);
  return 0;
}
