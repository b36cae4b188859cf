/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-test-target"

#include "config.h"

#include <string.h>

#include "tocsin-test-target.h"

typedef struct
{
  guint               status;
  GStrv               headers;
  GBytes             *body;
  guint               body_repeat;
  guint               hang_s;
  gboolean            close;
  gboolean            endless;
} Answer;

typedef struct
{
  GQueue              queue;      /* Answer */
  Answer             *always;     /* or NULL */
} Script;

struct _TocsinTestTarget
{
  /* Set once before the thread answers anything, then read-only. */
  char               *base_url;
  guint16             port;
  GTlsCertificate    *certificate;   /* NULL: plain HTTP */

  /* Owned by the server thread. */
  GThread            *thread;
  GMainContext       *context;
  GMainLoop          *loop;
  SoupServer         *server;
  GPtrArray          *hangs;          /* GSource of answers waiting to be given */

  /* Shared, under lock. */
  GMutex              lock;
  GCond               cond;
  gboolean            ready;
  GHashTable         *scripts;        /* path → Script */
  GPtrArray          *requests;       /* TocsinTestTargetRequest, in order of arrival */
};

/* ---- Requests ---- */

TocsinTestTargetRequest *
tocsin_test_target_request_ref (TocsinTestTargetRequest *request)
{
  return g_atomic_rc_box_acquire (request);
}

static void
request_clear (TocsinTestTargetRequest *request)
{
  g_free (request->method);
  g_free (request->path);
  g_free (request->query);
  g_clear_pointer (&request->headers, soup_message_headers_unref);
  g_clear_pointer (&request->body, g_bytes_unref);
}

void
tocsin_test_target_request_unref (TocsinTestTargetRequest *request)
{
  g_atomic_rc_box_release_full (request, (GDestroyNotify) request_clear);
}

const char *
tocsin_test_target_request_header (TocsinTestTargetRequest *request,
                                   const char              *name)
{
  return soup_message_headers_get_one (request->headers, name);
}

const char *
tocsin_test_target_request_body (TocsinTestTargetRequest *request)
{
  /* The recorded body always has a NUL after its end (see record_request). */
  return g_bytes_get_data (request->body, NULL);
}

/* ---- Answers ---- */

static void
answer_free (Answer *answer)
{
  if (answer == NULL)
    return;
  g_strfreev (answer->headers);
  g_clear_pointer (&answer->body, g_bytes_unref);
  g_free (answer);
}

static Answer *
answer_copy (const Answer *answer)
{
  Answer *copy = g_new0 (Answer, 1);

  *copy = *answer;
  copy->headers = g_strdupv (answer->headers);
  copy->body = answer->body ? g_bytes_ref (answer->body) : NULL;
  return copy;
}

static Answer *
answer_new (const TocsinTestTargetAnswer *spec)
{
  Answer *answer = g_new0 (Answer, 1);

  answer->status = spec->status ? spec->status : SOUP_STATUS_OK;
  answer->headers = g_strdupv ((char **) spec->headers);
  if (spec->body != NULL)
    answer->body = g_bytes_new (spec->body, spec->body_length < 0 ? strlen (spec->body)
                                                                  : (gsize) spec->body_length);
  answer->body_repeat = MAX (spec->body_repeat, 1);
  answer->hang_s = spec->hang_s;
  answer->close = spec->close;
  answer->endless = spec->endless;
  return answer;
}

static void
script_free (Script *script)
{
  g_queue_clear_full (&script->queue, (GDestroyNotify) answer_free);
  answer_free (script->always);
  g_free (script);
}

static Script *
script_for (TocsinTestTarget *target,
            const char       *path)
{
  Script *script = g_hash_table_lookup (target->scripts, path);

  if (script == NULL)
    {
      script = g_new0 (Script, 1);
      g_queue_init (&script->queue);
      g_hash_table_insert (target->scripts, g_strdup (path), script);
    }
  return script;
}

void
tocsin_test_target_push_answer (TocsinTestTarget             *target,
                                const char                   *path,
                                const TocsinTestTargetAnswer *answer)
{
  g_mutex_lock (&target->lock);
  g_queue_push_tail (&script_for (target, path)->queue, answer_new (answer));
  g_mutex_unlock (&target->lock);
}

void
tocsin_test_target_push (TocsinTestTarget *target,
                         const char       *path,
                         guint             status,
                         const char       *body,
                         ...)
{
  g_autoptr(GPtrArray) headers = g_ptr_array_new ();
  TocsinTestTargetAnswer answer = { .status = status, .body = body, .body_length = -1 };
  const char *name;
  va_list args;

  va_start (args, body);
  while ((name = va_arg (args, const char *)) != NULL)
    {
      g_ptr_array_add (headers, (gpointer) name);
      g_ptr_array_add (headers, va_arg (args, char *));
    }
  va_end (args);
  g_ptr_array_add (headers, NULL);
  answer.headers = (const char * const *) headers->pdata;
  tocsin_test_target_push_answer (target, path, &answer);
}

void
tocsin_test_target_push_hang (TocsinTestTarget *target,
                              const char       *path,
                              guint             seconds,
                              guint             status)
{
  TocsinTestTargetAnswer answer = {
    .status = status, .hang_s = seconds, .close = status == 0, .body = "late", .body_length = -1,
  };

  tocsin_test_target_push_answer (target, path, &answer);
}

void
tocsin_test_target_push_close (TocsinTestTarget *target,
                               const char       *path)
{
  TocsinTestTargetAnswer answer = { .close = TRUE };

  tocsin_test_target_push_answer (target, path, &answer);
}

void
tocsin_test_target_always (TocsinTestTarget             *target,
                           const char                   *path,
                           const TocsinTestTargetAnswer *answer)
{
  Script *script;

  g_mutex_lock (&target->lock);
  script = script_for (target, path);
  g_clear_pointer (&script->always, answer_free);
  if (answer != NULL)
    script->always = answer_new (answer);
  g_mutex_unlock (&target->lock);
}

/* ---- The server thread ---- */

static void
give_answer (TocsinTestTarget  *target,
             SoupServerMessage *msg,
             const Answer      *answer)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  SoupMessageBody *body = soup_server_message_get_response_body (msg);

  if (answer->close)
    {
      g_autoptr(GIOStream) stream = soup_server_message_steal_connection (msg);

      if (stream != NULL)
        g_io_stream_close (stream, NULL, NULL);
      return;
    }
  soup_server_message_set_status (msg, answer->status, NULL);
  for (guint i = 0; answer->headers && answer->headers[i] && answer->headers[i + 1]; i += 2)
    soup_message_headers_append (headers, answer->headers[i], answer->headers[i + 1]);
  if (soup_message_headers_get_content_type (headers, NULL) == NULL)
    soup_message_headers_replace (headers, "Content-Type", "text/plain; charset=utf-8");
  if (answer->endless)
    soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
  if (answer->body != NULL)
    for (guint i = 0; i < answer->body_repeat; i++)
      soup_message_body_append_bytes (body, answer->body);
  /* Endless: the chunks so far are written, then the answer waits for more that never come. */
  if (!answer->endless)
    soup_message_body_complete (body);
}

typedef struct
{
  TocsinTestTarget  *target;
  SoupServerMessage *msg;
  Answer            *answer;
  GSource           *source;
  gulong             finished_id;
} Hang;

static void
hang_free (Hang *hang)
{
  g_signal_handler_disconnect (hang->msg, hang->finished_id);
  g_object_unref (hang->msg);
  answer_free (hang->answer);
  g_free (hang);
}

static gboolean
hang_over_cb (gpointer user_data)
{
  Hang *hang = user_data;
  g_autoptr(SoupServerMessage) msg = g_object_ref (hang->msg);

  give_answer (hang->target, msg, hang->answer);
  if (!hang->answer->close)
    soup_server_message_unpause (msg);
  /* Frees @hang (the array's free function destroys the source, which is us: allowed). */
  g_ptr_array_remove (hang->target->hangs, hang->source);
  return G_SOURCE_REMOVE;
}

static void
hang_finished_cb (SoupServerMessage *msg,
                  Hang              *hang)
{
  g_ptr_array_remove (hang->target->hangs, hang->source);
}

static void
record_request (TocsinTestTarget  *target,
                SoupServerMessage *msg)
{
  TocsinTestTargetRequest *request = g_atomic_rc_box_new0 (TocsinTestTargetRequest);
  GUri *uri = soup_server_message_get_uri (msg);
  SoupMessageHeadersIter iter;
  const char *name, *value;
  g_autoptr(GBytes) flat = NULL;
  GByteArray *body;

  request->method = g_strdup (soup_server_message_get_method (msg));
  request->path = g_strdup (g_uri_get_path (uri));
  request->query = g_strdup (g_uri_get_query (uri));
  request->headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  soup_message_headers_iter_init (&iter, soup_server_message_get_request_headers (msg));
  while (soup_message_headers_iter_next (&iter, &name, &value))
    soup_message_headers_append (request->headers, name, value);
  flat = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  /* A NUL after the end, not counted, so the body reads as a string. */
  body = g_byte_array_new ();
  g_byte_array_append (body, g_bytes_get_data (flat, NULL), g_bytes_get_size (flat));
  g_byte_array_append (body, (const guint8 *) "", 1);
  request->body = g_bytes_new_from_bytes (g_byte_array_free_to_bytes (body), 0,
                                          g_bytes_get_size (flat));
  request->arrived_ms = g_get_real_time () / 1000;
  request->arrived_us = g_get_monotonic_time ();

  g_mutex_lock (&target->lock);
  g_ptr_array_add (target->requests, request);
  g_mutex_unlock (&target->lock);
}

static void
handler (SoupServer        *server,
         SoupServerMessage *msg,
         const char        *path,
         GHashTable        *query,
         gpointer           user_data)
{
  TocsinTestTarget *target = user_data;
  Answer *answer = NULL;
  Script *script;

  record_request (target, msg);

  g_mutex_lock (&target->lock);
  script = g_hash_table_lookup (target->scripts, path);
  if (script != NULL)
    {
      answer = g_queue_pop_head (&script->queue);
      if (answer == NULL && script->always != NULL)
        answer = answer_copy (script->always);
    }
  g_mutex_unlock (&target->lock);

  if (answer == NULL)
    {
      Answer ok = { .status = SOUP_STATUS_OK, .body = g_bytes_new_static ("ok", 2),
                    .body_repeat = 1 };

      give_answer (target, msg, &ok);
      g_bytes_unref (ok.body);
      return;
    }

  if (answer->hang_s > 0)
    {
      Hang *hang = g_new0 (Hang, 1);

      hang->target = target;
      hang->msg = g_object_ref (msg);
      hang->answer = answer;
      hang->source = g_timeout_source_new_seconds (answer->hang_s);
      g_source_set_callback (hang->source, hang_over_cb, hang, (GDestroyNotify) hang_free);
      hang->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (hang_finished_cb), hang);
      g_ptr_array_add (target->hangs, hang->source);
      g_source_attach (hang->source, target->context);
      soup_server_message_pause (msg);
      return;
    }

  give_answer (target, msg, answer);
  answer_free (answer);
}

static void
destroy_source (GSource *source)
{
  g_source_destroy (source);
  g_source_unref (source);
}

static gpointer
server_thread (gpointer user_data)
{
  TocsinTestTarget *target = user_data;
  g_autoptr(GError) error = NULL;
  GSList *uris;
  SoupServerListenOptions options = SOUP_SERVER_LISTEN_IPV4_ONLY;

  g_main_context_push_thread_default (target->context);
  target->server = soup_server_new ("server-header", "tocsin-test-target ",
                                    "tls-certificate", target->certificate,
                                    NULL);
  soup_server_add_handler (target->server, NULL, handler, target, NULL);
  if (target->certificate != NULL)
    options |= SOUP_SERVER_LISTEN_HTTPS;
  if (!soup_server_listen_local (target->server, 0, options, &error))
    g_error ("The test target could not listen on 127.0.0.1: %s", error->message);
  uris = soup_server_get_uris (target->server);
  g_assert_nonnull (uris);

  g_mutex_lock (&target->lock);
  target->port = g_uri_get_port (uris->data);
  target->base_url = g_strdup_printf ("%s://127.0.0.1:%u", target->certificate ? "https" : "http",
                                      target->port);
  target->ready = TRUE;
  g_cond_broadcast (&target->cond);
  g_mutex_unlock (&target->lock);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  g_main_loop_run (target->loop);

  /* Hanging answers are abandoned: their connections close with the server. */
  g_ptr_array_set_size (target->hangs, 0);
  soup_server_disconnect (target->server);
  g_clear_object (&target->server);
  while (g_main_context_iteration (target->context, FALSE))
    ;
  g_main_context_pop_thread_default (target->context);
  return NULL;
}

static TocsinTestTarget *
target_start (GTlsCertificate *certificate)
{
  TocsinTestTarget *target = g_new0 (TocsinTestTarget, 1);

  g_mutex_init (&target->lock);
  g_cond_init (&target->cond);
  target->certificate = certificate;
  target->scripts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify) script_free);
  target->requests = g_ptr_array_new_with_free_func (
    (GDestroyNotify) tocsin_test_target_request_unref);
  target->hangs = g_ptr_array_new_with_free_func ((GDestroyNotify) destroy_source);
  target->context = g_main_context_new ();
  target->loop = g_main_loop_new (target->context, FALSE);
  target->thread = g_thread_new ("test-target", server_thread, target);

  g_mutex_lock (&target->lock);
  while (!target->ready)
    g_cond_wait (&target->cond, &target->lock);
  g_mutex_unlock (&target->lock);
  return target;
}

TocsinTestTarget *
tocsin_test_target_new (void)
{
  return target_start (NULL);
}

TocsinTestTarget *
tocsin_test_target_new_tls (const char *cert_file,
                            const char *key_file)
{
  g_autoptr(GError) error = NULL;
  GTlsCertificate *certificate = g_tls_certificate_new_from_files (cert_file, key_file, &error);

  g_assert_no_error (error);
  return target_start (certificate);
}

static gboolean
quit_cb (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

void
tocsin_test_target_free (TocsinTestTarget *target)
{
  GSource *source;

  if (target == NULL)
    return;
  source = g_idle_source_new ();
  g_source_set_callback (source, quit_cb, target->loop, NULL);
  g_source_attach (source, target->context);
  g_source_unref (source);
  g_thread_join (target->thread);

  g_ptr_array_unref (target->hangs);
  g_main_loop_unref (target->loop);
  g_main_context_unref (target->context);
  g_clear_object (&target->certificate);
  g_hash_table_unref (target->scripts);
  g_ptr_array_unref (target->requests);
  g_free (target->base_url);
  g_mutex_clear (&target->lock);
  g_cond_clear (&target->cond);
  g_free (target);
}

const char *
tocsin_test_target_base_url (TocsinTestTarget *target)
{
  return target->base_url;
}

guint16
tocsin_test_target_port (TocsinTestTarget *target)
{
  return target->port;
}

char *
tocsin_test_target_url (TocsinTestTarget *target,
                        const char       *path)
{
  return g_strconcat (target->base_url, path, NULL);
}

/* ---- Reading back ---- */

GPtrArray *
tocsin_test_target_get_requests (TocsinTestTarget *target,
                                 const char       *path)
{
  GPtrArray *result = g_ptr_array_new_with_free_func (
    (GDestroyNotify) tocsin_test_target_request_unref);

  g_mutex_lock (&target->lock);
  for (guint i = 0; i < target->requests->len; i++)
    {
      TocsinTestTargetRequest *request = g_ptr_array_index (target->requests, i);

      if (path == NULL || g_strcmp0 (request->path, path) == 0)
        g_ptr_array_add (result, tocsin_test_target_request_ref (request));
    }
  g_mutex_unlock (&target->lock);
  return result;
}

guint
tocsin_test_target_count_requests (TocsinTestTarget *target,
                                   const char       *path)
{
  g_autoptr(GPtrArray) requests = tocsin_test_target_get_requests (target, path);

  return requests->len;
}

void
tocsin_test_target_wait_requests (TocsinTestTarget *target,
                                  guint             n,
                                  guint             timeout_s)
{
  gint64 deadline;

  /* A relay under valgrind (TOCSIN_RELAY_WRAPPER) is several times slower: the bound stretches
   * as TOCSIN_WAIT_UNTIL's does. */
  if (g_getenv ("TOCSIN_RELAY_WRAPPER") != NULL && *g_getenv ("TOCSIN_RELAY_WRAPPER") != '\0')
    timeout_s *= 6;
  deadline = g_get_monotonic_time () + (gint64) timeout_s * G_USEC_PER_SEC;
  while (tocsin_test_target_count_requests (target, NULL) < n)
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("The test target got %u requests in %u s, not %u",
                 tocsin_test_target_count_requests (target, NULL), timeout_s, n);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
}

void
tocsin_test_target_clear_requests (TocsinTestTarget *target)
{
  g_mutex_lock (&target->lock);
  g_ptr_array_set_size (target->requests, 0);
  g_mutex_unlock (&target->lock);
}
