/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "tocsin-relay-api.h"
#include "tocsin-relay-page.h"
#include "tocsin-relay-server.h"
#include "tocsin-relay-store.h"

static const char style[] =
  "body{font:16px/1.5 system-ui,-apple-system,'Cantarell','Segoe UI',sans-serif;"
  "max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1e1e1e;background:#fafafa}"
  "h1{font-size:1.6rem;margin:0 0 .25rem}p.desc{color:#555;margin-top:0}"
  "dl{background:#fff;border:1px solid #ddd;border-radius:12px;padding:1rem 1.25rem}"
  "dt{font-weight:600;font-size:.85rem;color:#555}dd{margin:0 0 .75rem;white-space:pre-wrap;"
  "word-break:break-word}code{font:14px ui-monospace,'Source Code Pro',monospace}"
  "a.button{display:inline-block;background:#3584e4;color:#fff;text-decoration:none;"
  "padding:.6rem 1.2rem;border-radius:8px;font-weight:600;margin:1rem 0}"
  "ul{padding-left:1.2rem}li{margin:.3rem 0;word-break:break-all}"
  "@media(prefers-color-scheme:dark){body{background:#242424;color:#eee}"
  "dl{background:#303030;border-color:#444}p.desc,dt{color:#aaa}}";

static void
append_escaped (GString    *out,
                const char *text)
{
  g_autofree char *escaped = g_markup_escape_text (text ? text : "", -1);

  g_string_append (out, escaped);
}

static void
append_template (GString    *out,
                 const char *label,
                 const char *source)
{
  if (source == NULL || *source == '\0')
    return;
  g_string_append (out, "<dt>");
  append_escaped (out, label);
  g_string_append (out, "</dt><dd><code>");
  append_escaped (out, source);
  g_string_append (out, "</code></dd>");
}

static char *
stream_url (const char *subscribe_url,
            const char *suffix,
            gboolean    websocket)
{
  if (websocket && g_str_has_prefix (subscribe_url, "https://"))
    return g_strconcat ("wss://", subscribe_url + strlen ("https://"), suffix, NULL);
  if (websocket && g_str_has_prefix (subscribe_url, "http://"))
    return g_strconcat ("ws://", subscribe_url + strlen ("http://"), suffix, NULL);
  return g_strconcat (subscribe_url, suffix, NULL);
}

char *
tocsin_relay_page_render (const char *name,
                          const char *description,
                          const char *title,
                          const char *body,
                          const char *link,
                          const char *subscribe_url)
{
  GString *out = g_string_new (NULL);
  g_autofree char *escaped_url = g_uri_escape_string (subscribe_url, NULL, FALSE);
  g_autofree char *open_url = g_strconcat ("tocsin://subscribe?url=", escaped_url, NULL);
  g_autofree char *ws = stream_url (subscribe_url, "/ws", TRUE);
  g_autofree char *sse = stream_url (subscribe_url, "/sse", FALSE);
  g_autofree char *json = stream_url (subscribe_url, "/json", FALSE);

  g_string_append (out, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                        "<meta name=\"referrer\" content=\"no-referrer\"><title>");
  append_escaped (out, name);
  g_string_append (out, " — Tocsin</title><style>");
  g_string_append (out, style);
  g_string_append (out, "</style></head><body><h1>");
  append_escaped (out, name);
  g_string_append (out, "</h1>");
  if (description && *description)
    {
      g_string_append (out, "<p class=\"desc\">");
      append_escaped (out, description);
      g_string_append (out, "</p>");
    }
  g_string_append (out, "<p>");
  append_escaped (out, _("A Tocsin channel. Subscribe to get its notifications on your desktop."));
  g_string_append (out, "</p><a class=\"button\" href=\"");
  append_escaped (out, open_url);
  g_string_append (out, "\">");
  append_escaped (out, _("Open in Tocsin"));
  g_string_append (out, "</a>");

  if ((title && *title) || (body && *body) || (link && *link))
    {
      g_string_append (out, "<h2>");
      append_escaped (out, _("What it sends"));
      g_string_append (out, "</h2><dl>");
      append_template (out, _("Title"), title);
      append_template (out, _("Body"), body);
      append_template (out, _("Link"), link);
      g_string_append (out, "</dl>");
    }

  g_string_append (out, "<h2>");
  append_escaped (out, _("For scripts"));
  g_string_append (out, "</h2><ul><li>WebSocket: <code>");
  append_escaped (out, ws);
  g_string_append (out, "</code></li><li>Server-Sent Events: <code>");
  append_escaped (out, sse);
  g_string_append (out, "</code></li><li>NDJSON: <code>");
  append_escaped (out, json);
  g_string_append (out, "</code></li></ul><p>");
  append_escaped (out, _("Add ?since=all to replay what the relay still keeps, or ?since=ID to "
                         "resume after a message."));
  g_string_append (out, "</p></body></html>\n");
  return g_string_free (out, FALSE);
}

/* The token is looked up on the store's reader thread (tocsin_relay_store_find_channel_async()),
 * the request paused and held by a reference meanwhile: the main loop never waits on the
 * database. */
typedef struct
{
  TocsinRelay        *relay;
  SoupServerMessage  *msg;
} PageLookup;

static void
page_lookup_free (PageLookup *lookup)
{
  g_clear_object (&lookup->msg);
  g_free (lookup);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PageLookup, page_lookup_free)

static void
page_reply (TocsinRelay        *relay,
            SoupServerMessage  *msg,
            TocsinRelayChannel *channel)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  g_autofree char *subscribe_url = NULL;
  g_autofree char *html = NULL;

  if (channel == NULL)
    {
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_NOT_FOUND,
                                       _("No channel has this subscribe link. It may have been "
                                         "rotated or the channel deleted; ask its owner for the "
                                         "new link."));
      return;
    }

  if (tocsin_relay_server_wants_json (msg))
    {
      g_autoptr(JsonObject) object = tocsin_relay_channel_to_public_json (channel,
                                                                          relay->config.public_url);

      tocsin_relay_server_reply_json (msg, SOUP_STATUS_OK, object);
      return;
    }

  subscribe_url = g_strconcat (relay->config.public_url, "/s/", channel->subscribe_token, NULL);
  html = tocsin_relay_page_render (channel->name, channel->description, channel->title_source,
                                   channel->body_source, channel->link_source, subscribe_url);
  soup_message_headers_replace (headers, "Content-Security-Policy",
                                "default-src 'none'; style-src 'unsafe-inline'; "
                                "frame-ancestors 'none'");
  soup_message_headers_replace (headers, "Cache-Control", "no-store");
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  {
    gsize len = strlen (html);

    soup_server_message_set_response (msg, "text/html; charset=utf-8", SOUP_MEMORY_TAKE,
                                      g_steal_pointer (&html), len);
  }
}

static void
page_lookup_done (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(PageLookup) lookup = user_data;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(GError) error = NULL;

  channel = tocsin_relay_store_find_channel_finish (lookup->relay->store, result, &error);
  if (error != NULL)
    {
      /* The database (PostgreSQL) did not answer: not a link that is gone. */
      soup_message_headers_replace (soup_server_message_get_response_headers (lookup->msg),
                                    "Retry-After", "5");
      tocsin_relay_server_reply_error (lookup->msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
                                       _("The relay cannot reach its database right now; try "
                                         "again in a moment."));
    }
  else
    page_reply (lookup->relay, lookup->msg, channel);
  soup_server_message_unpause (lookup->msg);
}

void
tocsin_relay_page_handle (TocsinRelay       *relay,
                          SoupServerMessage *msg,
                          const char        *token)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  const char *method = soup_server_message_get_method (msg);
  PageLookup *lookup;

  /* The token is in the URL: never leak it to another site through Referer. */
  soup_message_headers_replace (headers, "Referrer-Policy", "no-referrer");
  soup_message_headers_replace (headers, "X-Content-Type-Options", "nosniff");
  soup_message_headers_append (headers, "Vary", "Accept");

  if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD)
    {
      soup_message_headers_replace (headers, "Allow", "GET, HEAD");
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
                                       _("The subscribe page is read with GET."));
      return;
    }

  lookup = g_new0 (PageLookup, 1);
  lookup->relay = relay;
  lookup->msg = g_object_ref (msg);
  soup_server_message_pause (msg);
  tocsin_relay_store_find_channel_async (relay->store, TOCSIN_RELAY_TOKEN_SUBSCRIBE, token,
                                         page_lookup_done, lookup);
}
