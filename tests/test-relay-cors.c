/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-relay-cors.c: which web pages may use the relay (#13.5), as a browser sees it.
 *
 * The preflight answers and the allow-lists are read with libsoup, header by header; then a real
 * browser (Debian's Chromium, headless) loads a page from a second HTTP server on another port
 * of 127.0.0.1 (another origin), which subscribes with an EventSource and a WebSocket, rings the
 * channel with a fetch() POST of a JSON body (so a preflight), and reports what it saw back to
 * that server.
 */
#define G_LOG_DOMAIN "test-relay-cors"

#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <glib/gstdio.h>

#include "tocsin-test-relay.h"

#define PAGE_ORIGIN "http://page.example"

typedef struct
{
  TocsinTestRelay *relay;
  JsonObject      *channel;
  char            *hook;      /* /t/<trigger token> */
  char            *stream;    /* /s/<subscribe token> */
} Fixture;

static void
fixture_start (Fixture            *f,
               const char * const *args)
{
  f->relay = tocsin_test_relay_start (NULL, args);
  f->channel = tocsin_test_relay_create_channel (f->relay, "Browser", "From {{server_name}}",
                                                 "{{note}}", NULL, NULL);
  f->hook = g_strdup_printf ("/t/%s", json_object_get_string_member (f->channel,
                                                                     "trigger_token"));
  f->stream = g_strdup_printf ("/s/%s", json_object_get_string_member (f->channel,
                                                                       "subscribe_token"));
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  fixture_start (f, data);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
  g_clear_pointer (&f->channel, json_object_unref);
  g_free (f->hook);
  g_free (f->stream);
}

/* A request with headers (name/value pairs); returns the status and the response headers. */
static guint
ask (Fixture             *f,
     const char          *method,
     const char          *path,
     const char          *type,
     const char          *body,
     const char * const  *headers,
     SoupMessageHeaders **response_headers)
{
  g_autoptr(GBytes) response = NULL;
  guint status = tocsin_test_http (f->relay, method, path, type, body, -1, headers, &response,
                                   response_headers);

  g_test_message ("%s %s → %u %s", method, path, status,
                  (const char *) g_bytes_get_data (response, NULL));
  return status;
}

static const char *
header (SoupMessageHeaders *headers,
        const char         *name)
{
  return soup_message_headers_get_one (headers, name);
}

/* Default policy: any page may use the token URLs; the owner API stays same-origin. */
static void
test_preflight (Fixture       *f,
                gconstpointer  data)
{
  const char *const preflight[] = { "Origin", PAGE_ORIGIN,
                                    "Access-Control-Request-Method", "POST",
                                    "Access-Control-Request-Headers", "content-type", NULL };
  const char *const stream_preflight[] = { "Origin", PAGE_ORIGIN,
                                           "Access-Control-Request-Method", "GET",
                                           "Access-Control-Request-Headers", "last-event-id",
                                           NULL };
  const char *const from_page[] = { "Origin", PAGE_ORIGIN, NULL };
  const char *const sse_paths[] = { "/sse", "/json", "/ws", "" };
  g_autoptr(SoupMessageHeaders) h = NULL;
  g_autofree char *own_origin = NULL;

  /* The webhook URL: 204 with what the page may send (it was 405 before). */
  g_assert_cmpuint (ask (f, "OPTIONS", f->hook, NULL, NULL, preflight, &h), ==, 204);
  g_assert_cmpstr (header (h, "Access-Control-Allow-Origin"), ==, "*");
  g_assert_cmpstr (header (h, "Access-Control-Allow-Methods"), ==, "GET, POST, PUT");
  g_assert_cmpstr (header (h, "Access-Control-Allow-Headers"), ==, "content-type");
  g_assert_cmpstr (header (h, "Access-Control-Max-Age"), ==, "7200");
  g_clear_pointer (&h, soup_message_headers_unref);

  /* Each stream, and the channel's page. */
  for (guint i = 0; i < G_N_ELEMENTS (sse_paths); i++)
    {
      g_autofree char *path = g_strconcat (f->stream, sse_paths[i], NULL);

      g_assert_cmpuint (ask (f, "OPTIONS", path, NULL, NULL, stream_preflight, &h), ==, 204);
      g_assert_cmpstr (header (h, "Access-Control-Allow-Origin"), ==, "*");
      g_assert_cmpstr (header (h, "Access-Control-Allow-Methods"), ==, "GET");
      g_assert_cmpstr (header (h, "Access-Control-Allow-Headers"), ==, "last-event-id");
      g_clear_pointer (&h, soup_message_headers_unref);
    }

  /* A plain OPTIONS (no preflight) says what the URL takes. */
  g_assert_cmpuint (ask (f, "OPTIONS", f->hook, NULL, NULL, NULL, &h), ==, 204);
  g_assert_cmpstr (header (h, "Allow"), ==, "GET, POST, PUT, OPTIONS");
  g_assert_null (header (h, "Access-Control-Allow-Origin"));
  g_clear_pointer (&h, soup_message_headers_unref);

  /* The webhook itself: the page may read the answer and the rate-limit headers. */
  g_assert_cmpuint (ask (f, "POST", f->hook, "application/json",
                         "{\"server_name\": \"a page\"}", from_page, &h), ==, 200);
  g_assert_cmpstr (header (h, "Access-Control-Allow-Origin"), ==, "*");
  g_assert_nonnull (strstr (header (h, "Access-Control-Expose-Headers"), "RateLimit"));
  g_assert_nonnull (header (h, "RateLimit"));
  g_clear_pointer (&h, soup_message_headers_unref);

  /* The owner API: no CORS header at all, and a page of another origin is refused. */
  /* (401: listing channels needs a key; the answer is what matters here.) */
  g_assert_cmpuint (ask (f, "GET", "/v1/channels", NULL, NULL, NULL, &h), ==, 401);
  g_assert_null (header (h, "Access-Control-Allow-Origin"));
  g_clear_pointer (&h, soup_message_headers_unref);
  g_assert_cmpuint (ask (f, "OPTIONS", "/v1/channels", NULL, NULL, preflight, &h), ==, 403);
  g_assert_null (header (h, "Access-Control-Allow-Origin"));
  g_assert_null (header (h, "Access-Control-Allow-Methods"));
  g_clear_pointer (&h, soup_message_headers_unref);
  g_assert_cmpuint (ask (f, "GET", "/v1/channels", NULL, NULL, from_page, &h), ==, 403);
  g_assert_null (header (h, "Access-Control-Allow-Origin"));
  g_clear_pointer (&h, soup_message_headers_unref);
  /* An open relay would otherwise let any page create channels (a simple POST needs no
   * preflight when the body is not JSON, and the relay reads JSON only, but a page must not
   * rely on that). */
  g_assert_cmpuint (ask (f, "POST", "/v1/channels", "application/json", "{\"name\": \"x\"}",
                         from_page, &h), ==, 403);
  g_clear_pointer (&h, soup_message_headers_unref);

  /* A page of the relay's own origin is the same origin: answered. */
  own_origin = g_strdup (f->relay->base_url);
  {
    const char *const own[] = { "Origin", own_origin, NULL };

    g_assert_cmpuint (ask (f, "POST", "/v1/channels", "application/json", "{\"name\": \"y\"}",
                           own, &h), ==, 201);
    g_clear_pointer (&h, soup_message_headers_unref);
  }
}

/* Allow-lists from the configuration file and the command line. */
static void
setup_allow_lists (Fixture       *f,
                   gconstpointer  data)
{
  g_autofree char *dir = tocsin_test_make_tmpdir ("tocsin-cors-conf");
  g_autofree char *path = g_build_filename (dir, "relay.conf", NULL);
  g_autofree char *config = g_strconcat ("--config=", path, NULL);
  const char *args[] = { config, "--owner-cors-origins=http://Admin.example:80/", NULL };
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, "[relay]\ncors-origins = http://good.example, "
                             "https://other.example:8443\n", -1, &error);
  g_assert_no_error (error);
  fixture_start (f, args);
  tocsin_test_rmdir_recursive (dir);
}

static void
test_allow_lists (Fixture       *f,
                  gconstpointer  data)
{
  const char *const good[] = { "Origin", "http://good.example",
                               "Access-Control-Request-Method", "POST", NULL };
  const char *const evil[] = { "Origin", "http://evil.example",
                               "Access-Control-Request-Method", "POST", NULL };
  const char *const evil_simple[] = { "Origin", "http://evil.example", NULL };
  const char *const admin[] = { "Origin", "http://admin.example",
                                "Access-Control-Request-Method", "PATCH",
                                "Access-Control-Request-Headers", "authorization, content-type",
                                NULL };
  const char *const admin_simple[] = { "Origin", "http://admin.example", NULL };
  g_autoptr(SoupMessageHeaders) h = NULL;
  g_autofree char *ws = g_strconcat (f->stream, "/ws", NULL);
  g_autofree char *sse = g_strconcat (f->stream, "/sse", NULL);
  g_autoptr(JsonNode) after = NULL;
  guint status = 0;

  g_assert_cmpuint (ask (f, "OPTIONS", f->hook, NULL, NULL, good, &h), ==, 204);
  g_assert_cmpstr (header (h, "Access-Control-Allow-Origin"), ==, "http://good.example");
  g_assert_nonnull (strstr (header (h, "Vary"), "Origin"));
  g_clear_pointer (&h, soup_message_headers_unref);

  /* Another origin: no CORS header, and the request is not acted on (a form POST needs no
   * preflight; WebSockets have no CORS at all). */
  g_assert_cmpuint (ask (f, "OPTIONS", f->hook, NULL, NULL, evil, &h), ==, 403);
  g_assert_null (header (h, "Access-Control-Allow-Origin"));
  g_clear_pointer (&h, soup_message_headers_unref);
  g_assert_cmpuint (ask (f, "POST", f->hook, "application/x-www-form-urlencoded",
                         "server_name=evil", evil_simple, NULL), ==, 403);
  g_assert_cmpuint (ask (f, "GET", ws, NULL, NULL, evil_simple, NULL), ==, 403);
  g_assert_cmpuint (ask (f, "GET", sse, NULL, NULL, evil_simple, NULL), ==, 403);
  /* Nothing was stored: the next webhook (no Origin: a sender) is message 1. */
  after = tocsin_test_http_json (f->relay, "GET", f->hook, NULL, NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (after), "id"), ==, 1);

  /* The owner API answers the origin in owner-cors-origins (normalized: case, default port). */
  g_assert_cmpuint (ask (f, "OPTIONS", "/v1/channels/1", NULL, NULL, admin, &h), ==, 204);
  g_assert_cmpstr (header (h, "Access-Control-Allow-Origin"), ==, "http://admin.example");
  g_assert_cmpstr (header (h, "Access-Control-Allow-Headers"), ==,
                   "authorization, content-type");
  g_assert_nonnull (strstr (header (h, "Access-Control-Allow-Methods"), "PATCH"));
  g_clear_pointer (&h, soup_message_headers_unref);
  g_assert_cmpuint (ask (f, "GET", "/v1/channels", NULL, NULL, admin_simple, &h), ==, 401);
  g_assert_cmpstr (header (h, "Access-Control-Allow-Origin"), ==, "http://admin.example");
  g_clear_pointer (&h, soup_message_headers_unref);
  g_assert_cmpuint (ask (f, "GET", "/v1/channels", NULL, NULL, good, &h), ==, 403);
}

/* A setting that is not an origin stops `serve` with a sentence. */
static void
test_bad_setting (void)
{
  g_auto(GStrv) argv = tocsin_test_relay_argv ("serve", "--data-dir=/nonexistent",
                                               "--cors-origins=ftp://x.example", NULL);
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *err = NULL;

  process = g_subprocess_newv ((const char * const *) argv, G_SUBPROCESS_FLAGS_STDERR_PIPE,
                               &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, NULL, &err, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 2);
  g_assert_nonnull (strstr (err, "cors-origins takes"));
}

/* ---- A real browser on another origin ---- */

typedef struct
{
  char       *page;      /* the HTML the page server serves at / */
  GHashTable *reports;   /* what the page reported: name → value */
} PageServer;

static void
page_handler (SoupServer        *server,
              SoupServerMessage *msg,
              const char        *path,
              GHashTable        *query,
              gpointer           user_data)
{
  PageServer *pages = user_data;

  if (g_str_equal (path, "/report") && query != NULL)
    {
      const char *name = g_hash_table_lookup (query, "name");
      const char *value = g_hash_table_lookup (query, "value");

      if (name != NULL)
        {
          g_test_message ("the page reports %s: %s", name, value ? value : "");
          g_hash_table_replace (pages->reports, g_strdup (name), g_strdup (value ? value : ""));
        }
      soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
      return;
    }
  if (g_str_equal (path, "/"))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_server_message_set_response (msg, "text/html; charset=utf-8", SOUP_MEMORY_COPY,
                                        pages->page, strlen (pages->page));
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
}

/* Reports go to the page's own server (same origin: never subject to the relay's CORS). */
static const char page_template[] =
  "<!DOCTYPE html><html><head><meta charset='utf-8'><title>waiting</title></head><body>\n"
  "<script>\n"
  "const relay = '%s', hook = '%s', stream = '%s';\n"
  "function report(name, value) {\n"
  "  return fetch('/report?' + new URLSearchParams({name, value: String(value)}));\n"
  "}\n"
  "const events = new EventSource(relay + stream + '/sse');\n"
  "events.onerror = () => report('sse-error', events.readyState);\n"
  "events.onmessage = (e) => {\n"
  "  const message = JSON.parse(e.data);\n"
  "  document.title = message.title;\n"
  "  report('sse-message', message.title + ' | ' + message.body);\n"
  "};\n"
  "const socket = new WebSocket(relay.replace(/^http/, 'ws') + stream + '/ws?since=all');\n"
  "socket.onmessage = (e) => {\n"
  "  const message = JSON.parse(e.data);\n"
  "  if (message.title) report('ws-message', message.title);\n"
  "};\n"
  "socket.onerror = () => report('ws-error', 'yes');\n"
  "events.onopen = async () => {\n"
  "  report('sse-open', 'yes');\n"
  "  try {\n"
  "    const answer = await fetch(relay + hook, {method: 'POST',\n"
  "      headers: {'Content-Type': 'application/json'},\n"
  "      body: JSON.stringify({server_name: 'a page', note: 'rung by fetch'})});\n"
  "    const json = await answer.json();\n"
  "    report('post', answer.status + ' ' + json.title + ' ratelimit=' +\n"
  "                   (answer.headers.get('RateLimit') !== null));\n"
  "  } catch (e) { report('post-error', e); }\n"
  "};\n"
  "</script></body></html>\n";

static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static void
browser_exited (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  gboolean *done = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *done = TRUE;
}

static void
test_chromium (Fixture       *f,
               gconstpointer  data)
{
  g_autofree char *chromium = g_find_program_in_path ("chromium");
  g_autoptr(SoupServer) server = NULL;
  g_autoptr(GSList) uris = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) browser = NULL;
  g_autofree char *profile = NULL, *page_url = NULL, *profile_arg = NULL;
  PageServer pages = { 0 };
  const char *post, *message;
  gboolean exited = FALSE;

  if (chromium == NULL)
    {
      g_test_skip ("chromium is not installed (apt-get install chromium; "
                   "build-aux/install-deps.sh installs it)");
      return;
    }

  pages.reports = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  pages.page = g_strdup_printf (page_template, f->relay->base_url, f->hook, f->stream);
  server = soup_server_new (NULL, NULL);
  soup_server_add_handler (server, NULL, page_handler, &pages, NULL);
  soup_server_listen_local (server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (server);
  page_url = g_uri_to_string (uris->data);
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify) g_uri_unref);
  /* Another port of 127.0.0.1: another origin than the relay's. */
  g_assert_cmpstr (page_url, !=, f->relay->base_url);
  g_test_message ("page at %s, relay at %s", page_url, f->relay->base_url);

  profile = tocsin_test_make_tmpdir ("tocsin-chromium");
  profile_arg = g_strconcat ("--user-data-dir=", profile, NULL);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                        G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  /* --no-sandbox: the tests may run as root (CI containers), where Chromium's sandbox cannot
   * start; the page is our own. */
  browser = g_subprocess_launcher_spawn (launcher, &error, chromium, "--headless=new",
                                         "--no-sandbox", "--disable-gpu", "--no-first-run",
                                         "--no-default-browser-check",
                                         "--disable-background-networking",
                                         "--disable-component-update", "--disable-sync",
                                         "--remote-debugging-port=0",
                                         profile_arg, page_url, NULL);
  g_assert_no_error (error);
  g_subprocess_wait_async (browser, NULL, browser_exited, &exited);

  /* An EventSource refused by CORS is closed for good: readyState 2. */
  TOCSIN_WAIT_UNTIL (g_hash_table_contains (pages.reports, "sse-message") ||
                     g_hash_table_contains (pages.reports, "post-error") ||
                     g_strcmp0 (g_hash_table_lookup (pages.reports, "sse-error"), "2") == 0 ||
                     exited);
  g_assert_false (exited);
  g_assert_cmpstr (g_hash_table_lookup (pages.reports, "sse-error"), !=, "2");

  post = g_hash_table_lookup (pages.reports, "post");
  message = g_hash_table_lookup (pages.reports, "sse-message");
  g_assert_cmpstr (g_hash_table_lookup (pages.reports, "post-error"), ==, NULL);
  g_assert_cmpstr (g_hash_table_lookup (pages.reports, "sse-open"), ==, "yes");
  /* The message the page rang came back on its EventSource. */
  g_assert_cmpstr (message, ==, "From a page | rung by fetch");
  /* The POST's answer (after a preflight, for its JSON body) was readable, headers too. */
  TOCSIN_WAIT_UNTIL (g_hash_table_contains (pages.reports, "post"));
  post = g_hash_table_lookup (pages.reports, "post");
  g_assert_cmpstr (post, ==, "200 From a page ratelimit=true");
  /* And on a WebSocket, which sends Origin too (CORS does not cover WebSockets). */
  TOCSIN_WAIT_UNTIL (g_hash_table_contains (pages.reports, "ws-message") ||
                     g_hash_table_contains (pages.reports, "ws-error"));
  g_assert_cmpstr (g_hash_table_lookup (pages.reports, "ws-message"), ==, "From a page");

  g_subprocess_send_signal (browser, SIGTERM);
  TOCSIN_WAIT_UNTIL (exited);
  soup_server_disconnect (server);
  tocsin_test_rmdir_recursive (profile);
  g_hash_table_unref (pages.reports);
  g_free (pages.page);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, setup, func) g_test_add (path, Fixture, NULL, setup, func, fixture_teardown)
  ADD ("/relay/cors/preflight", fixture_setup, test_preflight);
  ADD ("/relay/cors/allow-lists", setup_allow_lists, test_allow_lists);
  ADD ("/relay/cors/chromium", fixture_setup, test_chromium);
#undef ADD
  g_test_add_func ("/relay/cors/bad-setting", test_bad_setting);

  return g_test_run ();
}
