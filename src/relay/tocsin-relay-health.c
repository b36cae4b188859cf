/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-health.c: GET /v1/health (ntfy answers the same path the same way). 200
 * {"healthy": true} when the store answered a query just now on its reader thread and then on its
 * writer thread (each with its own connection to PostgreSQL, so that after a restart of the
 * database the check reopens both before a webhook meets a dead one; the check waits behind the
 * reads and commits a request would wait behind, and never blocks the main loop); else 503
 * {"healthy": false, "error": …} with Retry-After. It needs no token and says nothing about the
 * database (its address or PostgreSQL's message) to whoever asks: the reason goes to the log, once
 * each time the answer turns bad. GET / stays the check that the process and its main loop run.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <glib/gi18n.h>

#include "tocsin-relay-health.h"
#include "tocsin-relay-server.h"
#include "tocsin-relay-store.h"

typedef struct
{
  TocsinRelay       *relay;   /* borrowed: it outlives every request */
  SoupServerMessage *msg;     /* owned, paused */
  gboolean           write;   /* the reader answered; now the writer */
} HealthCheck;

/* Whether the last check failed: the log says why once per failure, not once per probe. */
static gint failing;

static gboolean
health_run (TocsinRelayStore  *store,
            gpointer           data,
            GError           **error)
{
  return tocsin_relay_store_ping (store, error);
}

static void
health_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  HealthCheck *check = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (check->msg);
  g_autoptr(JsonObject) object = json_object_new ();
  g_autoptr(GError) error = NULL;
  gboolean healthy = tocsin_relay_store_call_finish (check->relay->store, result, &error);

  if (healthy && !check->write)
    {
      check->write = TRUE;
      tocsin_relay_store_call_async (check->relay->store, TRUE, health_run, NULL, health_done,
                                     check);
      return;
    }
  json_object_set_boolean_member (object, "healthy", healthy);
  if (healthy)
    {
      if (g_atomic_int_compare_and_exchange (&failing, TRUE, FALSE))
        g_message ("The store answers again: /v1/health says healthy");
      tocsin_relay_server_reply_json (check->msg, SOUP_STATUS_OK, object);
    }
  else
    {
      if (g_atomic_int_compare_and_exchange (&failing, FALSE, TRUE))
        g_message ("The store does not answer, /v1/health says unhealthy: %s",
                   error ? error->message : "no reason given");
      json_object_set_string_member (object, "error",
                                     _("The relay cannot reach its database right now; try "
                                       "again in a moment."));
      soup_message_headers_replace (headers, "Retry-After", "5");
      tocsin_relay_server_reply_json (check->msg, SOUP_STATUS_SERVICE_UNAVAILABLE, object);
    }
  soup_server_message_unpause (check->msg);
  g_object_unref (check->msg);
  g_free (check);
}

void
tocsin_relay_health_handle (TocsinRelay       *relay,
                            SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  const char *method = soup_server_message_get_method (msg);
  HealthCheck *check;

  soup_message_headers_replace (headers, "Cache-Control", "no-store");
  if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD)
    {
      soup_message_headers_replace (headers, "Allow", "GET, HEAD");
      tocsin_relay_server_reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
                                       _("The health check is read with GET."));
      return;
    }

  check = g_new0 (HealthCheck, 1);
  check->relay = relay;
  check->msg = g_object_ref (msg);
  soup_server_message_pause (msg);
  tocsin_relay_store_call_async (relay->store, FALSE, health_run, NULL, health_done, check);
}
