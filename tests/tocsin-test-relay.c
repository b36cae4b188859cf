/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-test"

#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "tocsin-test-relay.h"

const char *
tocsin_test_relay_binary (void)
{
  static char *path;

  /* Tests are single-threaded. */
  if (path == NULL)
    {
      const char *root = g_getenv ("TOCSIN_BUILD_ROOT");

      g_assert_nonnull (root);
      path = g_build_filename (root, "src", "relay", "tocsin-relay", NULL);
    }
  return path;
}

const char *
tocsin_test_app_binary (void)
{
  static char *path;

  if (path == NULL)
    path = g_build_filename (g_getenv ("TOCSIN_BUILD_ROOT"), "src", "app", "tocsin", NULL);
  return path;
}

guint16
tocsin_test_free_port (void)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;

  g_socket_bind (socket, any, TRUE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

char *
tocsin_test_make_tmpdir (const char *prefix)
{
  g_autofree char *tmpl = g_strdup_printf ("%s-XXXXXX", prefix ? prefix : "tocsin-test");
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp (tmpl, &error);

  g_assert_no_error (error);
  g_chmod (dir, 0700);
  return dir;
}

void
tocsin_test_rmdir_recursive (const char *path)
{
  g_autoptr(GDir) dir = NULL;
  const char *name;

  if (path == NULL)
    return;
  dir = g_dir_open (path, 0, NULL);
  if (dir == NULL)
    {
      g_remove (path);
      return;
    }
  while ((name = g_dir_read_name (dir)))
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        tocsin_test_rmdir_recursive (child);
      else
        g_remove (child);
    }
  g_rmdir (path);
}

/* TOCSIN_RELAY_WRAPPER (e.g. "valgrind --leak-check=full --error-exitcode=1") runs every
 * tocsin-relay the tests start under that command, so that the relay itself is checked, not
 * only the test program that `meson test --wrap` would wrap. */
static void
add_wrapper (GPtrArray *argv)
{
  const char *wrapper = g_getenv ("TOCSIN_RELAY_WRAPPER");
  g_auto(GStrv) words = NULL;
  g_autoptr(GError) error = NULL;

  if (wrapper == NULL || *wrapper == '\0')
    return;
  if (!g_shell_parse_argv (wrapper, NULL, &words, &error))
    g_error ("TOCSIN_RELAY_WRAPPER: %s", error->message);
  for (guint i = 0; words[i]; i++)
    {
      /* The program by its full path: callers spawn without G_SPAWN_SEARCH_PATH. */
      char *path = i == 0 ? g_find_program_in_path (words[i]) : NULL;

      g_ptr_array_add (argv, path != NULL ? path : g_strdup (words[i]));
    }
}

GStrv
tocsin_test_relay_argv (const char *first_arg,
                        ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  va_list args;

  add_wrapper (argv);
  g_ptr_array_add (argv, g_strdup (tocsin_test_relay_binary ()));
  va_start (args, first_arg);
  for (const char *arg = first_arg; arg; arg = va_arg (args, const char *))
    g_ptr_array_add (argv, g_strdup (arg));
  va_end (args);
  g_ptr_array_add (argv, NULL);
  return (GStrv) g_ptr_array_free (g_steal_pointer (&argv), FALSE);
}

/* A relay outlives a test that aborts unless the kernel ends it with its parent; an orphan
 * would keep the test's stderr open and meson would wait for its timeout. */
static void
die_with_parent (gpointer user_data)
{
  TocsinTestRelay *relay = user_data;

  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (relay->nofile_limit > 0)
    {
      struct rlimit limit = { relay->nofile_limit,
                              relay->nofile_hard ? relay->nofile_hard : relay->nofile_limit };

      setrlimit (RLIMIT_NOFILE, &limit);
    }
}

static void
relay_spawn (TocsinTestRelay *relay)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  g_autoptr(GError) error = NULL;
  GInputStream *out;

  add_wrapper (argv);
  g_ptr_array_add (argv, g_strdup (tocsin_test_relay_binary ()));
  g_ptr_array_add (argv, g_strdup ("serve"));
  g_ptr_array_add (argv, g_strdup ("--listen=127.0.0.1:0"));
  g_ptr_array_add (argv, g_strdup_printf ("--data-dir=%s", relay->data_dir));
  if (relay->database != NULL)
    {
      g_autofree char *dir = g_path_get_basename (relay->data_dir);

      g_ptr_array_add (argv, g_strdup_printf ("--database=%s", relay->database));
      /* A restarted relay is the same node, as a restarted pod of a StatefulSet is. */
      g_ptr_array_add (argv, g_strdup_printf ("--node-name=%s", dir));
    }
  for (guint i = 0; relay->extra_args && relay->extra_args[i]; i++)
    g_ptr_array_add (argv, g_strdup (relay->extra_args[i]));
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, relay, NULL);
  if (relay->stderr_path != NULL)
    g_subprocess_launcher_set_stderr_file_path (launcher, relay->stderr_path);
  relay->process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata,
                                                 &error);
  g_assert_no_error (error);

  out = g_subprocess_get_stdout_pipe (relay->process);
  lines = g_data_input_stream_new (out);
  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (lines), FALSE);

  /* The relay prints one "Listening on URL" line per address once it accepts connections. */
  for (;;)
    {
      g_autofree char *line = g_data_input_stream_read_line_utf8 (lines, NULL, NULL, &error);
      const char *url;

      g_assert_no_error (error);
      if (line == NULL)
        g_error ("tocsin-relay exited before it listened (see its stderr above)");
      /* With --smtp-listen, "Listening for mail on smtp://HOST:PORT" comes first. */
      url = strstr (line, "Listening for mail on ");
      if (url != NULL)
        {
          const char *colon = strrchr (url, ':');

          relay->smtp_port = (guint16) g_ascii_strtoull (colon + 1, NULL, 10);
          continue;
        }
      url = strstr (line, "Listening on ");
      if (url == NULL)
        continue;
      url += strlen ("Listening on ");
      g_free (relay->base_url);
      relay->base_url = g_strdup (url);
      g_strchomp (relay->base_url);
      {
        const char *colon = strrchr (relay->base_url, ':');

        g_assert_nonnull (colon);
        relay->port = (guint16) g_ascii_strtoull (colon + 1, NULL, 10);
      }
      break;
    }
  g_assert_cmpuint (relay->port, >, 0);

  /* Anything it prints later is drained so that the pipe never fills. */
  g_output_stream_splice_async (g_memory_output_stream_new_resizable (), out,
                                G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
                                G_PRIORITY_DEFAULT, NULL, NULL, NULL);
}

TocsinTestRelay *
tocsin_test_relay_start (const char         *data_dir,
                         const char * const *extra_args)
{
  TocsinTestRelay *relay = tocsin_test_relay_new (data_dir, extra_args);

  tocsin_test_relay_spawn (relay);
  return relay;
}

void
tocsin_test_relay_spawn (TocsinTestRelay *relay)
{
  g_assert_null (relay->process);
  relay_spawn (relay);
}

/* TOCSIN_TEST_RELAY_POSTGRES="CREATEDB PORT" (set by tests/test-relay-postgres.c, which started
 * that PostgreSQL): each relay gets a new empty database on it, made with that createdb. */
static char *
postgres_database (void)
{
  static guint counter;
  const char *setting = g_getenv ("TOCSIN_TEST_RELAY_POSTGRES");
  g_auto(GStrv) fields = NULL;
  g_autofree char *name = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;
  int status = 0;

  if (setting == NULL || *setting == '\0')
    return NULL;
  fields = g_strsplit (setting, " ", 2);
  g_assert_nonnull (fields[1]);
  name = g_strdup_printf ("relay_%d_%u", (int) getpid (), ++counter);
  {
    const char *argv[] = { fields[0], "-h", "127.0.0.1", "-p", fields[1], "-U", "tocsin", name,
                           NULL };

    g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err,
                  &status, &error);
  }
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("createdb %s failed: %s", name, err);
  return g_strdup_printf ("postgresql://tocsin@127.0.0.1:%s/%s", fields[1], name);
}

TocsinTestRelay *
tocsin_test_relay_new (const char         *data_dir,
                       const char * const *extra_args)
{
  TocsinTestRelay *relay = g_new0 (TocsinTestRelay, 1);

  relay->database = postgres_database ();

  if (data_dir)
    relay->data_dir = g_strdup (data_dir);
  else
    {
      relay->data_dir = tocsin_test_make_tmpdir ("tocsin-relay-test");
      relay->owns_data_dir = TRUE;
    }
  relay->extra_args = g_strdupv ((char **) extra_args);
  relay->session = soup_session_new_with_options ("timeout", 30, NULL);
  return relay;
}

void
tocsin_test_relay_stop (TocsinTestRelay *relay,
                        gboolean         hard)
{
  g_autoptr(GError) error = NULL;

  if (relay->process == NULL)
    return;
  g_subprocess_send_signal (relay->process, hard ? SIGKILL : SIGTERM);
  g_subprocess_wait (relay->process, NULL, &error);
  g_assert_no_error (error);
  if (!hard && g_subprocess_get_if_exited (relay->process))
    g_assert_cmpint (g_subprocess_get_exit_status (relay->process), ==, 0);
  g_clear_object (&relay->process);
}

void
tocsin_test_relay_restart (TocsinTestRelay *relay)
{
  tocsin_test_relay_stop (relay, FALSE);
  relay_spawn (relay);
}

void
tocsin_test_relay_free (TocsinTestRelay *relay)
{
  if (relay == NULL)
    return;
  tocsin_test_relay_stop (relay, FALSE);
  g_clear_object (&relay->session);
  if (relay->owns_data_dir)
    tocsin_test_rmdir_recursive (relay->data_dir);
  g_free (relay->data_dir);
  g_free (relay->base_url);
  g_free (relay->stderr_path);
  g_free (relay->database);
  g_strfreev (relay->extra_args);
  g_free (relay);
}

static int run_to_end (GPtrArray  *argv,
                       char      **out,
                       char      **err);

int
tocsin_test_relay_cli (TocsinTestRelay  *relay,
                       char            **out,
                       char            **err,
                       const char       *first_arg,
                       ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  va_list args;

  add_wrapper (argv);
  g_ptr_array_add (argv, g_strdup (tocsin_test_relay_binary ()));
  va_start (args, first_arg);
  for (const char *arg = first_arg; arg; arg = va_arg (args, const char *))
    g_ptr_array_add (argv, g_strdup (arg));
  va_end (args);
  g_ptr_array_add (argv, g_strdup_printf ("--data-dir=%s", relay->data_dir));
  if (relay->database != NULL)
    g_ptr_array_add (argv, g_strdup_printf ("--database=%s", relay->database));
  if (relay->base_url)
    g_ptr_array_add (argv, g_strdup_printf ("--public-url=%s", relay->base_url));
  return run_to_end (argv, out, err);
}

int
tocsin_test_relay_run (char       **out,
                       char       **err,
                       const char  *first_arg,
                       ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  va_list args;

  add_wrapper (argv);
  g_ptr_array_add (argv, g_strdup (tocsin_test_relay_binary ()));
  va_start (args, first_arg);
  for (const char *arg = first_arg; arg; arg = va_arg (args, const char *))
    g_ptr_array_add (argv, g_strdup (arg));
  va_end (args);
  return run_to_end (argv, out, err);
}

/* @argv: not NULL-terminated yet. */
static int
run_to_end (GPtrArray  *argv,
            char      **out,
            char      **err)
{
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *stdout_buf = NULL;
  g_autofree char *stderr_buf = NULL;

  g_ptr_array_add (argv, NULL);
  process = g_subprocess_newv ((const char * const *) argv->pdata,
                               G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                               &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, &stdout_buf, &stderr_buf, &error);
  g_assert_no_error (error);
  if (out)
    *out = g_steal_pointer (&stdout_buf);
  if (err)
    *err = g_steal_pointer (&stderr_buf);
  g_assert_true (g_subprocess_get_if_exited (process));
  return g_subprocess_get_exit_status (process);
}

JsonObject *
tocsin_test_relay_create_channel (TocsinTestRelay *relay,
                                  const char      *name,
                                  const char      *title,
                                  const char      *body,
                                  const char      *link,
                                  const char      *condition)
{
  g_autofree char *name_arg = g_strdup_printf ("--name=%s", name);
  g_autofree char *title_arg = title ? g_strdup_printf ("--title=%s", title) : NULL;
  g_autofree char *body_arg = body ? g_strdup_printf ("--body=%s", body) : NULL;
  g_autofree char *link_arg = link ? g_strdup_printf ("--link=%s", link) : NULL;
  g_autofree char *cond_arg = condition ? g_strdup_printf ("--condition=%s", condition) : NULL;
  const char *opt[4] = { NULL, };
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  guint n = 0;
  int status;

  if (title_arg) opt[n++] = title_arg;
  if (body_arg) opt[n++] = body_arg;
  if (link_arg) opt[n++] = link_arg;
  if (cond_arg) opt[n++] = cond_arg;

  status = tocsin_test_relay_cli (relay, &out, &err, "channel", "create", "--json", name_arg,
                                  opt[0], opt[1], opt[2], opt[3], NULL);
  if (status != 0)
    g_error ("channel create failed (%d): %s", status, err);
  json_parser_load_from_data (parser, out, -1, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

static char *
relay_url (TocsinTestRelay *relay,
           const char      *path)
{
  if (g_str_has_prefix (path, "http://") || g_str_has_prefix (path, "https://"))
    return g_strdup (path);
  return g_strconcat (relay->base_url, path, NULL);
}

guint
tocsin_test_http (TocsinTestRelay     *relay,
                  const char          *method,
                  const char          *path,
                  const char          *content_type,
                  const char          *body,
                  gssize               body_length,
                  const char * const  *headers,
                  GBytes             **response,
                  SoupMessageHeaders **response_headers)
{
  g_autofree char *url = relay_url (relay, path);
  g_autoptr(SoupMessage) msg = soup_message_new (method, url);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;

  if (msg == NULL)
    {
      /* A query a sender may really send, such as "?a=100%": GUri takes it only when relaxed. */
      g_autoptr(GUri) uri = g_uri_parse (url, SOUP_HTTP_URI_FLAGS | G_URI_FLAGS_PARSE_RELAXED,
                                         NULL);

      if (uri != NULL)
        msg = soup_message_new_from_uri (method, uri);
    }
  g_assert_nonnull (msg);
  if (body)
    {
      g_autoptr(GBytes) request = g_bytes_new (body, body_length < 0 ? strlen (body)
                                                                     : (gsize) body_length);

      soup_message_set_request_body_from_bytes (msg, content_type, request);
    }
  for (guint i = 0; headers && headers[i] && headers[i + 1]; i += 2)
    soup_message_headers_replace (soup_message_get_request_headers (msg), headers[i],
                                  headers[i + 1]);

  bytes = soup_session_send_and_read (relay->session, msg, NULL, &error);
  g_assert_no_error (error);
  if (response)
    {
      /* NUL-terminate so that tests can read the body as a string. */
      gsize len = 0;
      const guint8 *data = g_bytes_get_data (bytes, &len);
      guint8 *copy = g_malloc (len + 1);

      if (len > 0)
        memcpy (copy, data, len);
      copy[len] = 0;
      *response = g_bytes_new_with_free_func (copy, len, g_free, copy);
    }
  if (response_headers)
    *response_headers = soup_message_headers_ref (soup_message_get_response_headers (msg));
  return soup_message_get_status (msg);
}

JsonNode *
tocsin_test_http_json (TocsinTestRelay    *relay,
                       const char         *method,
                       const char         *path,
                       const char         *content_type,
                       const char         *body,
                       const char * const *headers,
                       guint              *status)
{
  g_autoptr(GBytes) response = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  guint code;

  code = tocsin_test_http (relay, method, path, content_type, body, -1, headers, &response, NULL);
  if (status)
    *status = code;
  if (!json_parser_load_from_data (parser, g_bytes_get_data (response, NULL),
                                   g_bytes_get_size (response), &error))
    g_error ("%s %s answered %u with a body that is not JSON: %s (%.*s)", method, path, code,
             error->message, (int) g_bytes_get_size (response),
             (const char *) g_bytes_get_data (response, NULL));
  return json_node_copy (json_parser_get_root (parser));
}

static void
websocket_connected (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  gpointer *out = user_data;
  GError *error = NULL;

  out[0] = soup_session_websocket_connect_finish (SOUP_SESSION (source), result, &error);
  out[1] = error;
  out[2] = GINT_TO_POINTER (TRUE);
}

SoupWebsocketConnection *
tocsin_test_websocket_connect (TocsinTestRelay  *relay,
                               const char       *path,
                               GError          **error)
{
  g_autofree char *http_url = relay_url (relay, path);
  g_autofree char *url = g_strconcat ("ws", http_url + strlen ("http"), NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", url);
  gpointer out[3] = { NULL, NULL, NULL };

  soup_session_websocket_connect_async (relay->session, msg, NULL, NULL, G_PRIORITY_DEFAULT,
                                        NULL, websocket_connected, out);
  TOCSIN_WAIT_UNTIL (out[2] != NULL);
  if (out[1])
    {
      g_propagate_error (error, out[1]);
      return NULL;
    }
  return out[0];
}

static void
websocket_message (SoupWebsocketConnection *ws,
                   gint                     type,
                   GBytes                  *message,
                   gpointer                 user_data)
{
  GPtrArray *frames = user_data;
  gsize len = 0;
  const char *data = g_bytes_get_data (message, &len);

  if (type == SOUP_WEBSOCKET_DATA_TEXT)
    g_ptr_array_add (frames, g_strndup (data, len));
}

void
tocsin_test_websocket_collect (SoupWebsocketConnection *ws,
                               GPtrArray               *frames)
{
  g_signal_connect (ws, "message", G_CALLBACK (websocket_message), frames);
}
