/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-smtp.c: the email trigger. The session state machine on its own
 * (/relay/smtp/session/...), then the real relay with --smtp-listen, mailed by Python's smtplib
 * (tests/smtp-send.py) and by swaks, with a WebSocket subscriber that must receive what the
 * channel's templates rendered.
 */
#define G_LOG_DOMAIN "test-relay-smtp"

#include "config.h"

#include <string.h>
#include <glib/gstdio.h>

#include "tocsin-relay-mail.h"
#include "tocsin-relay-smtp.h"
#include "tocsin-test-relay.h"
#include "tocsin-test-tls.h"

#define MAIL_DOMAIN "mail.test"

/* ---- the session, without sockets ---- */

typedef struct
{
  TocsinRelaySmtp *smtp;
  GPtrArray       *delivered;   /* char*, each message's data */
  guint            answer;      /* what deliver answers at once; 0: later */
} Session;

static guint
session_recipient (gpointer     user_data,
                   const char  *local,
                   gint64      *channel_id,
                   char       **text)
{
  if (g_str_equal (local, "known") || g_str_has_prefix (local, "known"))
    {
      *channel_id = g_str_equal (local, "known") ? 1 : (gint64) strlen (local);
      return 250;
    }
  *text = g_strdup ("5.1.1 No channel has this address");
  return 550;
}

static void
session_deliver (gpointer     user_data,
                 const char  *mail_from,
                 const char  *rcpt_to,
                 GArray      *channel_ids,
                 GBytes      *data)
{
  Session *s = user_data;

  g_ptr_array_add (s->delivered, g_strndup (g_bytes_get_data (data, NULL),
                                            g_bytes_get_size (data)));
  if (s->answer != 0)
    tocsin_relay_smtp_delivered (s->smtp, s->answer, "2.0.0 The channel has it");
}

static void
session_init (Session  *s,
              gboolean  tls)
{
  TocsinRelaySmtpLimits limits = { MAIL_DOMAIN, 4096, tls };
  TocsinRelaySmtpHooks hooks = { session_recipient, session_deliver };

  s->delivered = g_ptr_array_new_with_free_func (g_free);
  s->answer = 250;
  s->smtp = tocsin_relay_smtp_new (&limits, &hooks, s);
  tocsin_relay_smtp_greet (s->smtp);
}

static void
session_clear (Session *s)
{
  tocsin_relay_smtp_free (s->smtp);
  g_ptr_array_unref (s->delivered);
}

/* Feeds @input and returns the reply codes written, e.g. "250 250 354 250". */
static char *
session_talk (Session    *s,
              const char *input)
{
  GString *out = tocsin_relay_smtp_get_output (s->smtp);
  g_auto(GStrv) lines = NULL;
  GString *codes = g_string_new (NULL);

  tocsin_relay_smtp_feed (s->smtp, input, strlen (input));
  lines = g_strsplit (out->str, "\r\n", -1);
  for (guint i = 0; lines[i] && *lines[i]; i++)
    {
      /* Multi-line replies ("250-...") count once, at their last line. */
      if (lines[i][3] == '-')
        continue;
      if (codes->len > 0)
        g_string_append_c (codes, ' ');
      g_string_append_len (codes, lines[i], 3);
    }
  g_string_truncate (out, 0);
  return g_string_free (codes, FALSE);
}

static void
test_session_pipelined (void)
{
  Session s = { 0 };
  g_autofree char *greeting = NULL, *codes = NULL;

  session_init (&s, FALSE);
  greeting = session_talk (&s, "");
  g_assert_cmpstr (greeting, ==, "220");
  /* Everything in one write, as a PIPELINING client may send it; a bare LF ends a line too. */
  codes = session_talk (&s,
                        "EHLO client.example\r\n"
                        "MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME\r\n"
                        "RCPT TO:<known@MAIL.test>\r\n"
                        "RCPT TO:<nobody@mail.test>\r\n"
                        "RCPT TO:<known@elsewhere.example>\r\n"
                        "DATA\r\n"
                        "Subject: dots\r\n"
                        "\r\n"
                        "..leading dot\r\n"
                        ".\n"
                        "NOOP\r\n"
                        "RSET\r\n"
                        "QUIT\r\n");
  g_assert_cmpstr (codes, ==, "250 250 250 550 550 354 250 250 250 221");
  g_assert_cmpuint (s.delivered->len, ==, 1);
  g_assert_cmpstr (s.delivered->pdata[0], ==, "Subject: dots\r\n\r\n.leading dot\r\n");
  g_assert_cmpint (tocsin_relay_smtp_get_state (s.smtp), ==, TOCSIN_RELAY_SMTP_CLOSING);
  session_clear (&s);
}

static void
test_session_order_and_limits (void)
{
  Session s = { 0 };
  g_autofree char *before_hello = NULL, *sized = NULL, *no_rcpt = NULL, *many = NULL;
  g_autofree char *long_line = NULL, *after = NULL, *oversize = NULL, *long_data = NULL;
  g_autofree char *line = g_strnfill (600, 'A');
  g_autofree char *input = NULL, *data_input = NULL, *long_data_input = NULL;
  g_autofree char *big_line = g_strnfill (900, 'x');
  g_autofree char *huge_line = g_strnfill (1200, 'y');
  GString *rcpts = g_string_new ("MAIL FROM:<a@example.org>\r\n");

  session_init (&s, FALSE);
  g_free (session_talk (&s, ""));
  before_hello = session_talk (&s, "MAIL FROM:<a@example.org>\r\nSTARTTLS\r\nBDAT 10\r\n");
  g_assert_cmpstr (before_hello, ==, "503 502 500");

  g_free (session_talk (&s, "HELO client.example\r\n"));
  /* Refused when announced (SIZE=), then an open transaction with no recipient. */
  sized = session_talk (&s, "MAIL FROM:<a@example.org> SIZE=5000\r\nMAIL FROM:<a@example.org> "
                        "FOO=1\r\n");
  g_assert_cmpstr (sized, ==, "552 555");
  no_rcpt = session_talk (&s, "MAIL FROM:<>\r\nDATA\r\nRSET\r\n");
  g_assert_cmpstr (no_rcpt, ==, "250 554 250");

  /* A cap on recipients: the eleventh waits for another transaction. */
  for (guint i = 0; i < TOCSIN_RELAY_SMTP_MAX_RECIPIENTS + 1; i++)
    g_string_append_printf (rcpts, "RCPT TO:<known%.*s@mail.test>\r\n", (int) i + 1,
                            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
  many = session_talk (&s, rcpts->str);
  g_string_free (rcpts, TRUE);
  g_assert_true (g_str_has_suffix (many, "250 250 452"));

  /* A command line past 512 bytes: 500, and the session goes on. */
  input = g_strdup_printf ("RSET\r\nNOOP %s\r\nNOOP\r\n", line);
  long_line = session_talk (&s, input);
  g_assert_cmpstr (long_line, ==, "250 500 250");

  /* DATA past max_size (4096 here): counted, not kept, and 552 at its end. */
  data_input = g_strdup_printf ("MAIL FROM:<a@example.org>\r\nRCPT TO:<known@mail.test>\r\n"
                                "DATA\r\n%s\r\n%s\r\n%s\r\n%s\r\n%s\r\n.\r\n", big_line,
                                big_line, big_line, big_line, big_line);
  oversize = session_talk (&s, data_input);
  g_assert_cmpstr (oversize, ==, "250 250 354 552");
  g_assert_cmpuint (s.delivered->len, ==, 0);

  /* A line of the message past 1000 bytes: 500 at its end, nothing delivered. */
  long_data_input = g_strdup_printf ("MAIL FROM:<a@example.org>\r\nRCPT TO:<known@mail.test>\r\n"
                                     "DATA\r\n%s\r\n.\r\n", huge_line);
  long_data = session_talk (&s, long_data_input);
  g_assert_cmpstr (long_data, ==, "250 250 354 500");
  g_assert_cmpuint (s.delivered->len, ==, 0);

  after = session_talk (&s, "NOOP\r\n");
  g_assert_cmpstr (after, ==, "250");
  session_clear (&s);
}

/* What a peer sends after STARTTLS, before the handshake, must not count after it. */
static void
test_session_starttls_injection (void)
{
  Session s = { 0 };
  g_autofree char *ehlo = NULL, *start = NULL, *after = NULL;
  GString *out;

  session_init (&s, TRUE);
  g_free (session_talk (&s, ""));
  out = tocsin_relay_smtp_get_output (s.smtp);
  tocsin_relay_smtp_feed (s.smtp, "EHLO c\r\n", 8);
  g_assert_nonnull (strstr (out->str, "250-STARTTLS\r\n"));
  g_string_truncate (out, 0);
  start = session_talk (&s, "STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n");
  g_assert_cmpstr (start, ==, "220");
  g_assert_cmpint (tocsin_relay_smtp_get_state (s.smtp), ==, TOCSIN_RELAY_SMTP_STARTTLS);
  tocsin_relay_smtp_tls_started (s.smtp);
  /* The session starts over: MAIL needs EHLO again, and STARTTLS is no longer offered. */
  after = session_talk (&s, "MAIL FROM:<a@example.org>\r\n");
  g_assert_cmpstr (after, ==, "503");
  tocsin_relay_smtp_feed (s.smtp, "EHLO c\r\n", 8);
  g_assert_null (strstr (out->str, "STARTTLS"));
  session_clear (&s);
}

/* ---- MIME, without sockets ---- */

static JsonObject *
parse_mail (const char *text)
{
  g_autoptr(GError) error = NULL;
  TocsinRelayMail *mail = tocsin_relay_mail_parse (text, strlen (text), "env@example.org",
                                                   "to@mail.test", &error);
  JsonObject *vars;

  g_assert_no_error (error);
  g_assert_nonnull (mail);
  vars = json_object_ref (mail->vars);
  tocsin_relay_mail_free (mail);
  return vars;
}

static void
test_mail_hostile (void)
{
  g_autoptr(GString) deep = g_string_new ("Subject: deep\r\n");
  g_autoptr(JsonObject) bad_charset = NULL, broken = NULL, bare = NULL;
  g_autoptr(GError) error = NULL;
  TocsinRelayMail *mail;

  for (guint i = 0; i < 40; i++)
    g_string_append_printf (deep, "Content-Type: multipart/mixed; boundary=\"b%u\"\r\n\r\n"
                            "--b%u\r\n", i, i);
  g_string_append (deep, "Content-Type: text/plain\r\n\r\nbottom\r\n");
  mail = tocsin_relay_mail_parse (deep->str, deep->len, NULL, NULL, &error);
  g_assert_null (mail);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "deep"));

  /* A charset nobody knows, and bytes that are not UTF-8: read as ISO-8859-1. */
  bad_charset = parse_mail ("Subject: =?x-no-such?Q?=E9t=E9?=\r\n"
                            "Content-Type: text/plain; charset=x-no-such-charset\r\n\r\n"
                            "\xe9t\xe9\r\n");
  g_assert_cmpstr (json_object_get_string_member (bad_charset, "text"), ==, "été");
  g_assert_true (g_utf8_validate (json_object_get_string_member (bad_charset, "subject"), -1,
                                  NULL));

  /* Broken base64: what decodes is kept, as valid UTF-8. */
  broken = parse_mail ("Content-Type: text/plain; charset=utf-8\r\n"
                       "Content-Transfer-Encoding: base64\r\n\r\n"
                       "!!!SGVsbG8gd29y\x01bGQ=***\r\n");
  g_assert_true (g_str_has_prefix (json_object_get_string_member (broken, "text"), "Hello wor"));
  g_assert_true (g_utf8_validate (json_object_get_string_member (broken, "text"), -1, NULL));

  /* No header at all: the envelope names sender and recipient. */
  bare = parse_mail ("\r\njust text\r\n");
  g_assert_cmpstr (json_object_get_string_member (bare, "from"), ==, "env@example.org");
  g_assert_cmpstr (json_object_get_string_member (bare, "to"), ==, "to@mail.test");
  g_assert_cmpstr (json_object_get_string_member (bare, "subject"), ==, "");
}

/* ---- the real relay ---- */

typedef struct
{
  TocsinTestRelay *relay;
  TocsinTestPki   *pki;          /* only for STARTTLS */
  JsonObject      *channel;
  char            *address;      /* the channel's email address */
  SoupWebsocketConnection *ws;
  GPtrArray       *frames;       /* what the subscriber received */
} Fixture;

static void
fixture_start (Fixture            *f,
               const char * const *more_args,
               const char         *title,
               const char         *body)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *cert_arg = NULL, *key_arg = NULL;

  g_ptr_array_add (args, (gpointer) "--smtp-listen=127.0.0.1:0");
  g_ptr_array_add (args, (gpointer) "--mail-domain=" MAIL_DOMAIN);
  if (f->pki != NULL)
    {
      cert_arg = g_strdup_printf ("--tls-cert=%s", f->pki->cert_file);
      key_arg = g_strdup_printf ("--tls-key=%s", f->pki->key_file);
      g_ptr_array_add (args, cert_arg);
      g_ptr_array_add (args, key_arg);
    }
  for (guint i = 0; more_args && more_args[i]; i++)
    g_ptr_array_add (args, (gpointer) more_args[i]);
  g_ptr_array_add (args, NULL);

  f->relay = tocsin_test_relay_start (NULL, (const char * const *) args->pdata);
  g_assert_cmpuint (f->relay->smtp_port, >, 0);
  if (f->pki != NULL)
    {
      /* The harness's HTTP session must trust the test CA. */
      g_autoptr(GTlsDatabase) database = tocsin_test_pki_database (f->pki->ca_file);

      soup_session_set_tls_database (f->relay->session, database);
    }
  f->channel = tocsin_test_relay_create_channel (f->relay, "Mail", title, body, NULL, NULL);
  f->address = g_strdup (json_object_get_string_member (f->channel, "email_address"));
  g_assert_true (g_str_has_suffix (f->address, "@" MAIL_DOMAIN));

  path = g_strdup_printf ("/s/%s/ws",
                          json_object_get_string_member (f->channel, "subscribe_token"));
  f->ws = tocsin_test_websocket_connect (f->relay, path, &error);
  g_assert_no_error (error);
  f->frames = g_ptr_array_new_with_free_func (g_free);
  tocsin_test_websocket_collect (f->ws, f->frames);
}

static void
fixture_stop (Fixture *f)
{
  if (f->ws != NULL)
    soup_websocket_connection_close (f->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  g_clear_object (&f->ws);
  g_clear_pointer (&f->frames, g_ptr_array_unref);
  g_clear_pointer (&f->channel, json_object_unref);
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
  g_clear_pointer (&f->pki, tocsin_test_pki_free);
  g_clear_pointer (&f->address, g_free);
}

/* Sends @message with tests/smtp-send.py; returns its JSON answer. */
static JsonObject *
send_python (Fixture            *f,
             const char         *to,
             const char         *message,
             gssize              length,
             const char * const *flags)
{
  g_autofree char *script = g_test_build_filename (G_TEST_DIST, "smtp-send.py", NULL);
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-smtp-msg");
  g_autofree char *file = g_build_filename (dir, "message.eml", NULL);
  g_autofree char *port = g_strdup_printf ("--port=%u", f->relay->smtp_port);
  g_autofree char *to_arg = g_strdup_printf ("--to=%s", to);
  g_autofree char *file_arg = g_strdup_printf ("--message=%s", file);
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  g_file_set_contents (file, message, length, &error);
  g_assert_no_error (error);
  g_ptr_array_add (argv, (gpointer) "/usr/bin/python3");
  g_ptr_array_add (argv, script);
  g_ptr_array_add (argv, port);
  g_ptr_array_add (argv, to_arg);
  g_ptr_array_add (argv, file_arg);
  for (guint i = 0; flags && flags[i]; i++)
    g_ptr_array_add (argv, (gpointer) flags[i]);
  g_ptr_array_add (argv, NULL);

  process = g_subprocess_newv ((const char * const *) argv->pdata,
                               G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                               &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  if (g_subprocess_get_exit_status (process) != 0)
    g_error ("smtp-send.py failed: %s", err);
  tocsin_test_rmdir_recursive (dir);
  json_parser_load_from_data (parser, out, -1, &error);
  g_assert_no_error (error);
  g_test_message ("smtplib: %s", out);
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

static void
assert_answer (JsonObject *answer,
               const char *stage,
               gint64      code,
               const char *text_part)
{
  g_assert_cmpstr (json_object_get_string_member (answer, "stage"), ==, stage);
  g_assert_cmpint (json_object_get_int_member (answer, "code"), ==, code);
  if (text_part != NULL)
    g_assert_nonnull (strstr (json_object_get_string_member (answer, "text"), text_part));
}

static JsonObject *
frame_object (const char *frame)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, frame, -1, &error);
  g_assert_no_error (error);
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

/* Nothing was stored: the channel's newest message id is still 0. */
static void
assert_nothing_stored (Fixture *f)
{
  g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT,
                                         json_object_get_int_member (f->channel, "id"));
  g_autofree char *out = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (tocsin_test_relay_cli (f->relay, &out, NULL, "channel", "show", id, "--json",
                                          NULL), ==, 0);
  json_parser_load_from_data (parser, out, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (
                                                 json_parser_get_root (parser)), "last_id"),
                   ==, 0);
  g_assert_cmpuint (f->frames->len, ==, 0);
}

static void
test_relay_plain (void)
{
  Fixture f = { 0 };
  g_autoptr(JsonObject) answer = NULL, first = NULL;
  const char *message =
    "From: Ann Example <ann@example.org>\r\n"
    "To: CI <ci@example.org>\r\n"
    "Subject: Build 42 failed\r\n"
    "Message-ID: <build-42@example.org>\r\n"
    "\r\n"
    "The main branch is red.\r\n";

  fixture_start (&f, NULL, "{{subject}} ({{from}})", "{{text}}");
  answer = send_python (&f, f.address, message, -1, NULL);
  assert_answer (answer, "done", 250, NULL);

  TOCSIN_WAIT_UNTIL (f.frames->len == 1);
  first = frame_object (f.frames->pdata[0]);
  g_assert_cmpstr (json_object_get_string_member (first, "title"), ==,
                   "Build 42 failed (Ann Example <ann@example.org>)");
  g_assert_cmpstr (json_object_get_string_member (first, "body"), ==,
                   "The main branch is red.");

  /* The same message again (a sender retrying after a lost 250): its Message-ID dedups it. */
  g_clear_pointer (&answer, json_object_unref);
  answer = send_python (&f, f.address, message, -1, NULL);
  assert_answer (answer, "done", 250, NULL);
  /* A webhook after it is the next thing the subscriber sees. */
  {
    g_autofree char *path = g_strdup_printf ("/t/%s?x=1", json_object_get_string_member (
                                               f.channel, "trigger_token"));

    g_assert_cmpuint (tocsin_test_http (f.relay, "GET", path, NULL, NULL, 0, NULL, NULL, NULL),
                      ==, 200);
  }
  TOCSIN_WAIT_UNTIL (f.frames->len == 2);
  g_clear_pointer (&first, json_object_unref);
  first = frame_object (f.frames->pdata[1]);
  g_assert_cmpint (json_object_get_int_member (first, "id"), ==, 2);
  fixture_stop (&f);
}

static void
test_relay_multipart_charsets (void)
{
  Fixture f = { 0 };
  g_autoptr(JsonObject) answer = NULL, first = NULL;
  JsonObject *vars, *headers;
  /* Subject "Привет" in KOI8-R, base64 (RFC 2047); text "Café crème" in ISO-8859-1,
   * quoted-printable; HTML "<p>Привет</p>" in KOI8-R, base64. */
  const char *message =
    "From: =?ISO-8859-1?Q?Ren=E9?= <rene@example.org>\r\n"
    "To: " "someone@example.org\r\n"
    "Subject: =?KOI8-R?B?8NLJ18XU?=\r\n"
    "X-Ticket: 7\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/alternative; boundary=\"sep\"\r\n"
    "\r\n"
    "--sep\r\n"
    "Content-Type: text/plain; charset=ISO-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Caf=E9 cr=E8me, a long line that is soft=\r\n"
    " broken\r\n"
    "--sep\r\n"
    "Content-Type: text/html; charset=koi8-r\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "PHA+8NLJ18XUPC9wPg==\r\n"
    "--sep--\r\n";

  fixture_start (&f, NULL, "{{subject}} from {{from}}", "{{text}} | {{html}} | "
                 "{{header[\"x-ticket\"]}}");
  answer = send_python (&f, f.address, message, -1, NULL);
  assert_answer (answer, "done", 250, NULL);

  TOCSIN_WAIT_UNTIL (f.frames->len == 1);
  first = frame_object (f.frames->pdata[0]);
  g_assert_cmpstr (json_object_get_string_member (first, "title"), ==,
                   "Привет from René <rene@example.org>");
  g_assert_cmpstr (json_object_get_string_member (first, "body"), ==,
                   "Café crème, a long line that is soft broken | <p>Привет</p> | 7");
  vars = json_object_get_object_member (first, "vars");
  g_assert_cmpstr (json_object_get_string_member (vars, "subject"), ==, "Привет");
  g_assert_cmpstr (json_object_get_string_member (vars, "html"), ==, "<p>Привет</p>");
  g_assert_cmpstr (json_object_get_string_member (vars, "to"), ==, "someone@example.org");
  headers = json_object_get_object_member (vars, "headers");
  g_assert_cmpstr (json_object_get_string_member (headers, "x-ticket"), ==, "7");
  fixture_stop (&f);
}

static void
test_relay_unknown_recipient (void)
{
  Fixture f = { 0 };
  g_autoptr(JsonObject) unknown = NULL, other_domain = NULL;
  const char *message = "Subject: hello\r\n\r\nhello\r\n";

  fixture_start (&f, NULL, NULL, NULL);
  unknown = send_python (&f, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@" MAIL_DOMAIN, message, -1, NULL);
  assert_answer (unknown, "rcpt", 550, "No channel has this address");
  other_domain = send_python (&f, "someone@example.org", message, -1, NULL);
  assert_answer (other_domain, "rcpt", 550, "only for channels' addresses");
  assert_nothing_stored (&f);
  fixture_stop (&f);
}

static char *
big_message (gsize size)
{
  GString *message = g_string_new ("Subject: big\r\n\r\n");

  while (message->len < size)
    g_string_append (message, "0123456789012345678901234567890123456789012345678901234567890123"
                     "456789\r\n");
  return g_string_free (message, FALSE);
}

static void
test_relay_oversize (void)
{
  const char *args[] = { "--max-mail=8K", NULL };
  const char *no_size[] = { "--no-size", NULL };
  Fixture f = { 0 };
  g_autoptr(JsonObject) announced = NULL, sent = NULL, fits = NULL;
  g_autofree char *big = big_message (20 * 1024);

  fixture_start (&f, args, NULL, NULL);
  /* smtplib announces SIZE=: refused before any byte of the message. */
  announced = send_python (&f, f.address, big, -1, NULL);
  assert_answer (announced, "mail", 552, "larger than this relay takes (8192 bytes)");
  /* Not announced: refused at the end of DATA. */
  sent = send_python (&f, f.address, big, -1, no_size);
  assert_answer (sent, "data", 552, "larger than this relay takes (8192 bytes)");
  assert_nothing_stored (&f);
  /* And a message that fits still goes through. */
  fits = send_python (&f, f.address, "Subject: small\r\n\r\nsmall\r\n", -1, no_size);
  assert_answer (fits, "done", 250, NULL);
  TOCSIN_WAIT_UNTIL (f.frames->len == 1);
  fixture_stop (&f);
}

static void
test_relay_starttls (void)
{
  Fixture f = { 0 };
  g_autoptr(JsonObject) answer = NULL, first = NULL;
  g_autofree char *cafile = NULL;
  const char *flags[3] = { "--starttls", NULL, NULL };
  JsonArray *features;
  gboolean offered = FALSE;

  f.pki = tocsin_test_pki_new ();
  fixture_start (&f, NULL, "{{subject}}", "{{text}}");
  cafile = g_strdup_printf ("--cafile=%s", f.pki->ca_file);
  flags[1] = cafile;
  answer = send_python (&f, f.address, "Subject: over TLS\r\n\r\nsecret\r\n", -1, flags);
  assert_answer (answer, "done", 250, NULL);
  g_assert_true (json_object_get_boolean_member (answer, "tls"));
  /* After the handshake the relay no longer offers STARTTLS (RFC 3207). */
  features = json_object_get_array_member (answer, "features");
  for (guint i = 0; i < json_array_get_length (features); i++)
    offered |= g_str_equal (json_array_get_string_element (features, i), "starttls");
  g_assert_false (offered);

  TOCSIN_WAIT_UNTIL (f.frames->len == 1);
  first = frame_object (f.frames->pdata[0]);
  g_assert_cmpstr (json_object_get_string_member (first, "title"), ==, "over TLS");
  g_assert_cmpstr (json_object_get_string_member (first, "body"), ==, "secret");
  fixture_stop (&f);
}

/* Without a certificate, STARTTLS is not offered, and a client that insists is told so. */
static void
test_relay_no_starttls (void)
{
  Fixture f = { 0 };
  g_autoptr(JsonObject) answer = NULL;
  const char *flags[] = { "--starttls", NULL };

  fixture_start (&f, NULL, NULL, NULL);
  answer = send_python (&f, f.address, "Subject: x\r\n\r\nx\r\n", -1, flags);
  /* smtplib refuses on its own when the server does not offer it: nothing was sent. */
  g_assert_cmpstr (json_object_get_string_member (answer, "stage"), ==, "starttls");
  g_assert_false (json_object_get_boolean_member (answer, "tls"));
  assert_nothing_stored (&f);
  fixture_stop (&f);
}

static void
test_relay_hostile (void)
{
  Fixture f = { 0 };
  g_autoptr(JsonObject) deep_answer = NULL, header_answer = NULL, charset_answer = NULL;
  g_autoptr(JsonObject) last = NULL;
  g_autoptr(GString) deep = g_string_new ("Subject: deep\r\n");
  g_autoptr(GString) huge = g_string_new ("Subject: huge");

  fixture_start (&f, NULL, "{{subject}}", "{{text}}");
  for (guint i = 0; i < 200; i++)
    g_string_append_printf (deep, "Content-Type: multipart/mixed; boundary=\"b%u\"\r\n\r\n"
                            "--b%u\r\n", i, i);
  g_string_append (deep, "Content-Type: text/plain\r\n\r\nbottom\r\n");
  deep_answer = send_python (&f, f.address, deep->str, deep->len, NULL);
  assert_answer (deep_answer, "data", 554, "nests MIME parts");

  /* A Subject folded over 300 KB: the rendered message would be more than subscribers take. */
  while (huge->len < 300 * 1024)
    g_string_append (huge, "\r\n word word word word word word word word word word word word");
  g_string_append (huge, "\r\n\r\nbody\r\n");
  header_answer = send_python (&f, f.address, huge->str, huge->len, NULL);
  assert_answer (header_answer, "data", 552, "too large once rendered");

  charset_answer = send_python (&f, f.address, "Subject: bad charset\r\n"
                                "Content-Type: text/plain; charset=x-no-such-charset\r\n\r\n"
                                "\xe9t\xe9\r\n", -1, NULL);
  assert_answer (charset_answer, "done", 250, NULL);
  TOCSIN_WAIT_UNTIL (f.frames->len == 1);
  last = frame_object (f.frames->pdata[0]);
  g_assert_cmpstr (json_object_get_string_member (last, "body"), ==, "été");
  /* And the relay was never held up: a webhook is answered and delivered right after. */
  {
    g_autofree char *path = g_strdup_printf ("/t/%s?subject=after",
                                             json_object_get_string_member (f.channel,
                                                                            "trigger_token"));

    g_assert_cmpuint (tocsin_test_http (f.relay, "GET", path, NULL, NULL, 0, NULL, NULL, NULL),
                      ==, 200);
    TOCSIN_WAIT_UNTIL (f.frames->len == 2);
  }
  fixture_stop (&f);
}

static void
test_relay_rotate (void)
{
  Fixture f = { 0 };
  g_autoptr(JsonObject) old_answer = NULL, new_answer = NULL, rotated = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *id = NULL;

  fixture_start (&f, NULL, NULL, NULL);
  id = g_strdup_printf ("%" G_GINT64_FORMAT, json_object_get_int_member (f.channel, "id"));
  g_assert_cmpint (tocsin_test_relay_cli (f.relay, &out, NULL, "channel", "rotate-email", id,
                                          "--json", NULL), ==, 0);
  json_parser_load_from_data (parser, out, -1, &error);
  g_assert_no_error (error);
  rotated = json_object_ref (json_node_get_object (json_parser_get_root (parser)));
  g_assert_cmpstr (json_object_get_string_member (rotated, "email_address"), !=, f.address);

  old_answer = send_python (&f, f.address, "Subject: x\r\n\r\nx\r\n", -1, NULL);
  assert_answer (old_answer, "rcpt", 550, "it may have been rotated");
  new_answer = send_python (&f, json_object_get_string_member (rotated, "email_address"),
                            "Subject: x\r\n\r\nx\r\n", -1, NULL);
  assert_answer (new_answer, "done", 250, NULL);

  /* The owner API rotates it too, with the channel's owner key. */
  {
    g_autofree char *auth = g_strdup_printf ("Bearer %s", json_object_get_string_member (
                                               f.channel, "owner_key"));
    const char *headers[] = { "Authorization", auth, NULL };
    g_autofree char *path = g_strdup_printf ("/v1/channels/%s/rotate-email", id);
    g_autoptr(JsonNode) node = NULL;
    g_autoptr(JsonObject) again = NULL;
    guint status = 0;

    node = tocsin_test_http_json (f.relay, "POST", path, NULL, NULL, headers, &status);
    g_assert_cmpuint (status, ==, 200);
    g_assert_cmpstr (json_object_get_string_member (json_node_get_object (node),
                                                    "email_address"), !=,
                     json_object_get_string_member (rotated, "email_address"));
    g_assert_true (g_str_has_suffix (json_object_get_string_member (json_node_get_object (node),
                                                                    "email_address"),
                                     "@" MAIL_DOMAIN));
    again = send_python (&f, json_object_get_string_member (rotated, "email_address"),
                         "Subject: x\r\n\r\nx\r\n", -1, NULL);
    assert_answer (again, "rcpt", 550, NULL);
  }
  fixture_stop (&f);
}

/* Mail shares the channel's bucket with its webhooks: past it, RCPT TO gets 451 and a wait. */
static void
test_relay_rate_limit (void)
{
  const char *args[] = { "--rate=0.01", "--burst=2", NULL };
  Fixture f = { 0 };
  g_autoptr(JsonObject) first = NULL, limited = NULL;
  g_autofree char *path = NULL;

  fixture_start (&f, args, NULL, NULL);
  first = send_python (&f, f.address, "Subject: one\r\n\r\none\r\n", -1, NULL);
  assert_answer (first, "done", 250, NULL);
  path = g_strdup_printf ("/t/%s?n=2", json_object_get_string_member (f.channel,
                                                                      "trigger_token"));
  g_assert_cmpuint (tocsin_test_http (f.relay, "GET", path, NULL, NULL, 0, NULL, NULL, NULL), ==,
                    200);
  limited = send_python (&f, f.address, "Subject: three\r\n\r\nthree\r\n", -1, NULL);
  assert_answer (limited, "rcpt", 451, "faster than its limit; retry in");
  TOCSIN_WAIT_UNTIL (f.frames->len == 2);
  fixture_stop (&f);
}

/* smtp-listen, mail-domain and max-mail from the [relay] group of --config. */
static void
test_relay_config_file (void)
{
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-smtp-config");
  g_autofree char *path = g_build_filename (dir, "relay.conf", NULL);
  g_autofree char *config_arg = g_strdup_printf ("--config=%s", path);
  g_autofree char *big = big_message (20 * 1024);
  const char *args[] = { config_arg, NULL };
  g_autoptr(JsonObject) answer = NULL;
  g_autoptr(GError) error = NULL;
  Fixture f = { 0 };

  g_file_set_contents (path, "[relay]\nsmtp-listen=127.0.0.1:0\nmail-domain=Relay.Example\n"
                       "max-mail=16K\n", -1, &error);
  g_assert_no_error (error);
  f.relay = tocsin_test_relay_start (NULL, args);
  g_assert_cmpuint (f.relay->smtp_port, >, 0);
  f.channel = tocsin_test_relay_create_channel (f.relay, "Mail", NULL, NULL, NULL, NULL);
  f.address = g_strdup (json_object_get_string_member (f.channel, "email_address"));
  g_assert_true (g_str_has_suffix (f.address, "@relay.example"));
  answer = send_python (&f, f.address, big, -1, NULL);
  assert_answer (answer, "mail", 552, "(16384 bytes)");
  fixture_stop (&f);
  tocsin_test_rmdir_recursive (dir);
}

/* A peer that says nothing is told why and closed at idle-timeout, and costs nothing after. */
static void
test_relay_idle_timeout (void)
{
  const char *args[] = { "--smtp-listen=127.0.0.1:0", "--idle-timeout=1", NULL };
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, args);
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *greeting = NULL, *closing = NULL, *after = NULL;

  connection = g_socket_client_connect_to_host (client, "127.0.0.1", relay->smtp_port, NULL,
                                                &error);
  g_assert_no_error (error);
  /* A bound on the test, not an assertion on time: the relay closes after about 1 s. */
  g_socket_set_timeout (g_socket_connection_get_socket (connection), 20);
  lines = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  g_data_input_stream_set_newline_type (lines, G_DATA_STREAM_NEWLINE_TYPE_CR_LF);
  greeting = g_data_input_stream_read_line (lines, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (greeting, "220 "));
  closing = g_data_input_stream_read_line (lines, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (closing, ==, "421 4.4.2 Nothing came for too long; closing");
  after = g_data_input_stream_read_line (lines, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (after);
}

/* Debian's swaks, as an administrator would test the relay by hand. */
static void
test_relay_swaks (void)
{
  Fixture f = { 0 };
  g_autofree char *swaks = g_find_program_in_path ("swaks");
  g_autofree char *server = NULL, *out = NULL, *out_unknown = NULL;
  g_autoptr(GSubprocess) process = NULL, unknown = NULL;
  g_autoptr(JsonObject) first = NULL;
  g_autoptr(GError) error = NULL;

  if (swaks == NULL)
    {
      g_test_skip ("swaks is not installed (Debian package swaks; build-aux/install-deps.sh "
                   "installs it)");
      return;
    }
  fixture_start (&f, NULL, "{{subject}}", "{{text}}");
  server = g_strdup_printf ("127.0.0.1:%u", f.relay->smtp_port);
  process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE,
                              &error, swaks, "--server", server, "--to", f.address,
                              "--from", "swaks@example.org", "--header", "Subject: from swaks",
                              "--body", "Sent by swaks", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_test_message ("swaks: %s", out);
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);
  g_assert_nonnull (strstr (out, "<-  250 2.0.0 The channel has it"));

  TOCSIN_WAIT_UNTIL (f.frames->len == 1);
  first = frame_object (f.frames->pdata[0]);
  g_assert_cmpstr (json_object_get_string_member (first, "title"), ==, "from swaks");
  g_assert_cmpstr (json_object_get_string_member (first, "body"), ==, "Sent by swaks");

  unknown = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE,
                              &error, swaks, "--server", server, "--to",
                              "nobody@" MAIL_DOMAIN, "--from", "swaks@example.org", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (unknown, NULL, NULL, &out_unknown, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_subprocess_get_exit_status (unknown), !=, 0);
  g_assert_nonnull (strstr (out_unknown, "<** 550 5.1.1 No channel has this address"));
  fixture_stop (&f);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/relay/smtp/session/pipelined", test_session_pipelined);
  g_test_add_func ("/relay/smtp/session/order-and-limits", test_session_order_and_limits);
  g_test_add_func ("/relay/smtp/session/starttls-injection", test_session_starttls_injection);
  g_test_add_func ("/relay/smtp/mail/hostile", test_mail_hostile);
  g_test_add_func ("/relay/smtp/plain", test_relay_plain);
  g_test_add_func ("/relay/smtp/multipart-charsets", test_relay_multipart_charsets);
  g_test_add_func ("/relay/smtp/unknown-recipient", test_relay_unknown_recipient);
  g_test_add_func ("/relay/smtp/oversize", test_relay_oversize);
  g_test_add_func ("/relay/smtp/starttls", test_relay_starttls);
  g_test_add_func ("/relay/smtp/no-starttls", test_relay_no_starttls);
  g_test_add_func ("/relay/smtp/hostile", test_relay_hostile);
  g_test_add_func ("/relay/smtp/rotate", test_relay_rotate);
  g_test_add_func ("/relay/smtp/rate-limit", test_relay_rate_limit);
  g_test_add_func ("/relay/smtp/config-file", test_relay_config_file);
  g_test_add_func ("/relay/smtp/idle-timeout", test_relay_idle_timeout);
  g_test_add_func ("/relay/smtp/swaks", test_relay_swaks);

  return g_test_run ();
}
