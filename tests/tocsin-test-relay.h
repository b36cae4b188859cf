/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-test-relay.h: runs the real `tocsin-relay serve` on 127.0.0.1 port 0 with a temp data
 * dir, and talks to it the way a peer does (HTTP with libsoup, the CLI as a subprocess).
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* Iterates the main context until @cond holds; a guard against a hang of @seconds, not a
 * timing (work that takes long under a sanitizer on a busy machine gets more). */
/* Under TOCSIN_RELAY_WRAPPER (valgrind: build-aux/run-valgrind.sh) every relay is several times
 * slower, as meson's --timeout-multiplier 6 there says; a wait is a bound, not a timing, so it
 * stretches the same way. */
#define TOCSIN_TEST_SLOWDOWN                                                        \
  (g_getenv ("TOCSIN_RELAY_WRAPPER") != NULL && *g_getenv ("TOCSIN_RELAY_WRAPPER") ? 6 : 1)

#define TOCSIN_WAIT_UNTIL_SECONDS(cond, seconds)                                   \
  G_STMT_START {                                                                    \
    gint64 _deadline = g_get_monotonic_time () +                                    \
                       (gint64) (seconds) * TOCSIN_TEST_SLOWDOWN * G_USEC_PER_SEC;  \
    while (!(cond))                                                                 \
      {                                                                             \
        if (g_get_monotonic_time () > _deadline)                                    \
          g_error ("%s:%d: timed out waiting for %s", __FILE__, __LINE__, #cond);   \
        g_main_context_iteration (NULL, FALSE);                                     \
        g_usleep (1000);                                                            \
      }                                                                             \
  } G_STMT_END

#define TOCSIN_WAIT_UNTIL(cond) TOCSIN_WAIT_UNTIL_SECONDS (cond, 20)

typedef struct
{
  GSubprocess *process;
  char        *data_dir;     /* owned temp dir when owns_data_dir */
  gboolean     owns_data_dir;
  char        *base_url;     /* "http://127.0.0.1:PORT" */
  guint16      port;
  guint16      smtp_port;     /* with --smtp-listen: the email trigger's port, else 0 */
  GStrv        extra_args;
  SoupSession *session;
  /* Set between tocsin_test_relay_new() and tocsin_test_relay_spawn(): */
  guint        nofile_limit;  /* 0, or the soft RLIMIT_NOFILE it starts with */
  guint        nofile_hard;   /* its hard limit; 0: nofile_limit */
  char        *stderr_path;   /* NULL: the test's stderr; else its stderr goes to this file */
  char        *database;      /* NULL: SQLite in data_dir; else `serve` and the command line get
                               * --database=DATABASE (a postgresql:// URL, issue 16) */
} TocsinTestRelay;

/* The built tocsin-relay and tocsin binaries. */
const char      *tocsin_test_relay_binary     (void);
const char      *tocsin_test_app_binary       (void);
/* A loopback TCP port that was free a moment ago, for a fixed --listen that survives restarts
 * (port 0 gives a new port each time the relay starts). */
guint16          tocsin_test_free_port        (void);
/* A new temp dir (0700), removed by tocsin_test_rmdir_recursive. */
char            *tocsin_test_make_tmpdir      (const char *prefix);
void             tocsin_test_rmdir_recursive  (const char *path);

/* Starts a relay on a new temp data dir (@data_dir NULL) or on @data_dir (kept on free).
 * @extra_args (NULL-terminated, may be NULL) are appended to `serve`. */
TocsinTestRelay *tocsin_test_relay_start      (const char         *data_dir,
                                               const char * const *extra_args);
/* tocsin_test_relay_start() in two steps, to set the fields above in between. */
TocsinTestRelay *tocsin_test_relay_new        (const char         *data_dir,
                                               const char * const *extra_args);
void             tocsin_test_relay_spawn      (TocsinTestRelay    *relay);
/* SIGKILL (@hard) or SIGTERM, and wait for the process to exit. */
void             tocsin_test_relay_stop       (TocsinTestRelay    *relay,
                                               gboolean            hard);
/* Starts it again on the same data dir and arguments (a new port). */
void             tocsin_test_relay_restart    (TocsinTestRelay    *relay);
void             tocsin_test_relay_free       (TocsinTestRelay    *relay);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TocsinTestRelay, tocsin_test_relay_free)

/* The argv that runs `tocsin-relay ARGS...` as the harness does: under TOCSIN_RELAY_WRAPPER
 * (valgrind, build-aux/run-valgrind.sh) when it is set. For tests that spawn it themselves. */
GStrv            tocsin_test_relay_argv       (const char         *first_arg,
                                               ...) G_GNUC_NULL_TERMINATED;
/* Runs `tocsin-relay ARGS...` (under the wrapper, as tocsin_test_relay_argv()) to its end and
 * returns its exit status (asserts it exited), with stdout and stderr (either may be NULL): for
 * refusals, which a relay must explain before it serves. */
int              tocsin_test_relay_run        (char              **out,
                                               char              **err,
                                               const char         *first_arg,
                                               ...) G_GNUC_NULL_TERMINATED;
/* Runs `tocsin-relay ARGS... --data-dir=<relay's dir>` and returns its exit status, with stdout
 * and stderr (either may be NULL). */
int              tocsin_test_relay_cli        (TocsinTestRelay    *relay,
                                               char              **out,
                                               char              **err,
                                               const char         *first_arg,
                                               ...) G_GNUC_NULL_TERMINATED;
/* `channel create --json --name=NAME [--title=..] [--body=..] [--link=..] [--condition=..]`;
 * NULL templates are left out. Returns the printed object (asserts success). */
JsonObject      *tocsin_test_relay_create_channel (TocsinTestRelay *relay,
                                                   const char      *name,
                                                   const char      *title,
                                                   const char      *body,
                                                   const char      *link,
                                                   const char      *condition);

/* An HTTP request to @path (absolute URL or path on the relay). @content_type/@body may be
 * NULL. @headers: NULL-terminated name/value pairs or NULL. Returns the status; *response gets
 * the body (NUL-terminated), *response_headers a ref to the headers (both optional). */
guint            tocsin_test_http             (TocsinTestRelay    *relay,
                                               const char         *method,
                                               const char         *path,
                                               const char         *content_type,
                                               const char         *body,
                                               gssize              body_length,
                                               const char * const *headers,
                                               GBytes            **response,
                                               SoupMessageHeaders **response_headers);
/* Same, and parses the body as JSON (asserts it parses); returns the root node. */
JsonNode        *tocsin_test_http_json        (TocsinTestRelay    *relay,
                                               const char         *method,
                                               const char         *path,
                                               const char         *content_type,
                                               const char         *body,
                                               const char * const *headers,
                                               guint              *status);

/* Opens a WebSocket to @path (e.g. "/s/TOKEN/ws?since=all"); NULL with @error on failure. */
SoupWebsocketConnection *tocsin_test_websocket_connect (TocsinTestRelay *relay,
                                                        const char      *path,
                                                        GError         **error);
/* Collects every text frame of @ws into @frames (a GPtrArray of g_strdup'd strings). */
void             tocsin_test_websocket_collect (SoupWebsocketConnection *ws,
                                                GPtrArray               *frames);

G_END_DECLS
