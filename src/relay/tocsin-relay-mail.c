/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-mail.c: a received message → the email trigger's variables (see the header).
 *
 * GMime parses; what it cannot bound is bounded here first. Its parser builds nested multiparts
 * and attached messages by recursion, so a message is refused before parsing when it has more
 * Content-Type fields than TOCSIN_RELAY_MAIL_MAX_PARTS (every nesting level needs one), and the
 * walk over the parts refuses nesting deeper than TOCSIN_RELAY_MAIL_MAX_DEPTH. Charsets are
 * converted here rather than with g_mime_text_part_get_text(), which hands back the raw bytes
 * when it cannot convert them: a charset that iconv does not know, or bytes that are not in the
 * charset named, give valid UTF-8 all the same (as UTF-8 if they are, else as ISO-8859-1).
 *
 * The errors' sentences are not translated: they are sent as SMTP replies, which are US-ASCII
 * (tocsin-relay-smtp.c says why).
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <string.h>
#include <gmime/gmime.h>

#include "tocsin-relay-mail.h"

/* GMime 3.2 declares no autoptr cleanups of its own. */
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeStream, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeParser, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeMessage, g_object_unref)

/* Set once by the serve command (when it takes mail) or the CLI, before any thread. */
static gboolean mail_domain_set;
static char *mail_domain;

void
tocsin_relay_mail_init (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once))
    {
      g_mime_init ();
      g_once_init_leave (&once, 1);
    }
}

void
tocsin_relay_mail_set_domain (const char *domain)
{
  g_free (mail_domain);
  mail_domain = domain != NULL && *domain != '\0' ? g_ascii_strdown (domain, -1) : NULL;
  mail_domain_set = TRUE;
}

const char *
tocsin_relay_mail_get_domain (void)
{
  static char *host;

  if (!mail_domain_set)
    return NULL;
  if (mail_domain != NULL)
    return mail_domain;
  if (host == NULL)
    host = g_ascii_strdown (g_get_host_name (), -1);
  return host;
}

char *
tocsin_relay_mail_address (const TocsinRelayChannel *channel)
{
  g_return_val_if_fail (channel != NULL, NULL);

  if (channel->email_token == NULL || *channel->email_token == '\0' ||
      tocsin_relay_mail_get_domain () == NULL)
    return NULL;
  return g_strdup_printf ("%s@%s", channel->email_token, tocsin_relay_mail_get_domain ());
}

void
tocsin_relay_mail_free (TocsinRelayMail *mail)
{
  if (mail == NULL)
    return;
  g_clear_pointer (&mail->vars, json_object_unref);
  g_clear_pointer (&mail->headers, soup_message_headers_unref);
  g_free (mail->message_id);
  g_free (mail);
}

/* Valid UTF-8 whatever @data is: NULs and, when @single_line, line breaks and tabs become
 * spaces; CRLF becomes LF. */
static char *
clean_text (const char *data,
            gssize      length,
            gboolean    single_line)
{
  g_autofree char *copy = NULL;
  g_autofree char *valid = NULL;
  GString *out;

  if (length < 0)
    length = strlen (data);
  /* g_utf8_make_valid keeps NULs, which would cut the string short. */
  copy = g_malloc (length + 1);
  for (gssize i = 0; i < length; i++)
    copy[i] = data[i] != '\0' ? data[i] : ' ';
  copy[length] = '\0';
  valid = g_utf8_make_valid (copy, length);
  out = g_string_sized_new (length);
  for (const char *p = valid; *p; p++)
    {
      char c = *p;

      if (c == '\r' && p[1] == '\n' && !single_line)
        continue;
      if (single_line && (c == '\r' || c == '\n' || c == '\t'))
        c = ' ';
      g_string_append_c (out, c);
    }
  return g_string_free (out, FALSE);
}

/* @data in @charset (may be NULL) as UTF-8. */
static char *
to_utf8 (const char *data,
         gsize       length,
         const char *charset)
{
  g_autofree char *converted = NULL;
  gsize written = 0;

  /* An empty part's stream has no buffer at all (found by fuzz-smtp). */
  if (data == NULL || length == 0)
    return g_strdup ("");
  if (charset != NULL && *charset != '\0' &&
      g_ascii_strcasecmp (charset, "utf-8") != 0 && g_ascii_strcasecmp (charset, "us-ascii") != 0)
    {
      const char *name = g_mime_charset_iconv_name (charset);

      converted = g_convert (data, length, "UTF-8", name ? name : charset, NULL, &written, NULL);
      if (converted != NULL)
        return clean_text (converted, written, FALSE);
    }
  if (g_utf8_validate_len (data, length, NULL))
    return clean_text (data, length, FALSE);
  converted = g_convert (data, length, "UTF-8", "ISO-8859-1", NULL, &written, NULL);
  if (converted != NULL)
    return clean_text (converted, written, FALSE);
  return clean_text (data, length, FALSE);
}

/* The decoded (transfer encoding undone) content of @part, in UTF-8. */
static char *
part_text (GMimePart *part)
{
  GMimeDataWrapper *content = g_mime_part_get_content (part);
  g_autoptr(GMimeStream) stream = NULL;
  GByteArray *bytes;
  const char *charset;

  if (content == NULL)
    return g_strdup ("");
  stream = g_mime_stream_mem_new ();
  g_mime_data_wrapper_write_to_stream (content, stream);
  bytes = g_mime_stream_mem_get_byte_array (GMIME_STREAM_MEM (stream));
  charset = g_mime_object_get_content_type_parameter (GMIME_OBJECT (part), "charset");
  /* The line end that closes the part is the MIME syntax's, not the sender's text. */
  return g_strchomp (to_utf8 ((const char *) bytes->data, bytes->len, charset));
}

typedef struct
{
  char     *text;
  char     *html;
  gboolean  too_deep;
} Bodies;

/* The first inline text/plain and text/html parts, depth first; attached messages are
 * attachments and are not looked into. */
static void
walk (GMimeObject *object,
      guint        depth,
      Bodies      *bodies)
{
  if (bodies->too_deep)
    return;
  if (depth > TOCSIN_RELAY_MAIL_MAX_DEPTH)
    {
      bodies->too_deep = TRUE;
      return;
    }
  if (GMIME_IS_MULTIPART (object))
    {
      GMimeMultipart *multipart = GMIME_MULTIPART (object);
      int count = g_mime_multipart_get_count (multipart);

      for (int i = 0; i < count; i++)
        walk (g_mime_multipart_get_part (multipart, i), depth + 1, bodies);
      return;
    }
  if (GMIME_IS_PART (object))
    {
      GMimeContentType *type = g_mime_object_get_content_type (object);
      GMimePart *part = GMIME_PART (object);

      if (type == NULL || g_mime_part_is_attachment (part))
        return;
      if (bodies->text == NULL && g_mime_content_type_is_type (type, "text", "plain"))
        bodies->text = part_text (part);
      else if (bodies->html == NULL && g_mime_content_type_is_type (type, "text", "html"))
        bodies->html = part_text (part);
    }
}

/* Lines that start a Content-Type field: an upper bound on the parts GMime will build. */
static guint
count_content_types (const char *data,
                     gsize       length)
{
  static const char field[] = "content-type:";
  guint count = 0;

  for (gsize i = 0; i + sizeof field - 1 <= length; i++)
    {
      if ((i == 0 || data[i - 1] == '\n') &&
          g_ascii_strncasecmp (data + i, field, sizeof field - 1) == 0)
        count++;
    }
  return count;
}

static gboolean
is_token (const char *name)
{
  if (name == NULL || *name == '\0')
    return FALSE;
  for (const char *p = name; *p; p++)
    if ((guchar) *p <= ' ' || (guchar) *p >= 127 || strchr ("()<>@,;:\\\"/[]?={}", *p))
      return FALSE;
  return TRUE;
}

static char *
addresses (InternetAddressList *list,
           const char          *fallback)
{
  g_autofree char *text = NULL;

  if (list != NULL && internet_address_list_length (list) > 0)
    text = internet_address_list_to_string (list, NULL, FALSE);
  if (text == NULL || *text == '\0')
    return g_strdup (fallback ? fallback : "");
  return clean_text (text, -1, TRUE);
}

TocsinRelayMail *
tocsin_relay_mail_parse (const char  *data,
                         gsize        length,
                         const char  *envelope_from,
                         const char  *envelope_to,
                         GError     **error)
{
  g_autoptr(TocsinRelayMail) mail = NULL;
  g_autoptr(GMimeStream) stream = NULL;
  g_autoptr(GMimeParser) parser = NULL;
  g_autoptr(GMimeMessage) message = NULL;
  GMimeParserOptions *options;
  GMimeHeaderList *list;
  JsonObject *headers;
  Bodies bodies = { 0 };
  g_autofree char *from = NULL, *to = NULL, *subject = NULL;
  const char *value;
  int count;

  g_return_val_if_fail (data != NULL || length == 0, NULL);

  tocsin_relay_mail_init ();
  if (count_content_types (data, length) > TOCSIN_RELAY_MAIL_MAX_PARTS)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "The message has more than %d MIME parts; send fewer attachments",
                   TOCSIN_RELAY_MAIL_MAX_PARTS);
      return NULL;
    }

  stream = g_mime_stream_mem_new_with_buffer (data, length);
  parser = g_mime_parser_new_with_stream (stream);
  g_mime_parser_set_format (parser, GMIME_FORMAT_MESSAGE);
  options = g_mime_parser_options_new ();
  g_mime_parser_options_set_rfc2047_compliance_mode (options, GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_parameter_compliance_mode (options, GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_address_compliance_mode (options, GMIME_RFC_COMPLIANCE_LOOSE);
  message = g_mime_parser_construct_message (parser, options);
  g_mime_parser_options_free (options);
  if (message == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "The message could not be read as an Internet message (RFC 5322)");
      return NULL;
    }

  if (g_mime_message_get_mime_part (message) != NULL)
    walk (g_mime_message_get_mime_part (message), 0, &bodies);
  if (bodies.too_deep)
    {
      g_free (bodies.text);
      g_free (bodies.html);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "The message nests MIME parts more than %d deep",
                   TOCSIN_RELAY_MAIL_MAX_DEPTH);
      return NULL;
    }

  mail = g_new0 (TocsinRelayMail, 1);
  mail->vars = json_object_new ();
  mail->headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  from = addresses (g_mime_message_get_from (message), envelope_from);
  to = addresses (g_mime_message_get_to (message), envelope_to);
  value = g_mime_message_get_subject (message);
  subject = clean_text (value ? value : "", -1, TRUE);
  json_object_set_string_member (mail->vars, "from", from);
  json_object_set_string_member (mail->vars, "to", to);
  json_object_set_string_member (mail->vars, "subject", subject);
  json_object_set_string_member (mail->vars, "text", bodies.text ? bodies.text : "");
  json_object_set_string_member (mail->vars, "html", bodies.html ? bodies.html : "");
  g_free (bodies.text);
  g_free (bodies.html);

  headers = json_object_new ();
  list = g_mime_object_get_header_list (GMIME_OBJECT (message));
  count = list ? g_mime_header_list_get_count (list) : 0;
  for (int i = 0; i < count && i < TOCSIN_RELAY_MAIL_MAX_HEADERS; i++)
    {
      GMimeHeader *header = g_mime_header_list_get_header_at (list, i);
      g_autofree char *name = NULL, *text = NULL;
      const char *before;

      if (!is_token (g_mime_header_get_name (header)))
        continue;
      name = g_ascii_strdown (g_mime_header_get_name (header), -1);
      value = g_mime_header_get_value (header);
      text = clean_text (value ? value : "", -1, TRUE);
      g_strstrip (text);
      before = json_object_has_member (headers, name)
               ? json_object_get_string_member (headers, name) : NULL;
      if (before != NULL)
        {
          g_autofree char *joined = g_strconcat (before, ", ", text, NULL);

          json_object_set_string_member (headers, name, joined);
        }
      else
        json_object_set_string_member (headers, name, text);
      soup_message_headers_append (mail->headers, name, text);
    }
  json_object_set_object_member (mail->vars, "headers", headers);

  value = g_mime_message_get_message_id (message);
  if (value != NULL && *value != '\0')
    mail->message_id = clean_text (value, -1, TRUE);
  return g_steal_pointer (&mail);
}
