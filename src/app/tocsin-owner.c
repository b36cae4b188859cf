/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-owner"

#include "config.h"

#include <string.h>
#include <glib/gi18n.h>
#include <libsoup/soup.h>

#include "tocsin-json.h"
#include "tocsin-tls.h"
#include "tocsin-message.h"
#include "tocsin-owner.h"

/* The largest answer of the owner API the app reads (a channel, or the list of them). */
#define MAX_ANSWER_BYTES (4 * 1024 * 1024)

struct _TocsinOwner
{
  GObject parent_instance;

  /* Owned references: */
  TocsinHistory *history;        /* may be NULL */
  GTlsDatabase  *tls_database;   /* may be NULL */
  SoupSession   *session;
};

G_DEFINE_FINAL_TYPE (TocsinOwner, tocsin_owner, G_TYPE_OBJECT)
G_DEFINE_QUARK (tocsin-owner-error-quark, tocsin_owner_error)

static void
tocsin_owner_dispose (GObject *object)
{
  TocsinOwner *self = TOCSIN_OWNER (object);

  g_clear_object (&self->history);
  g_clear_object (&self->tls_database);
  g_clear_object (&self->session);

  G_OBJECT_CLASS (tocsin_owner_parent_class)->dispose (object);
}

static void
tocsin_owner_class_init (TocsinOwnerClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = tocsin_owner_dispose;
}

static void
tocsin_owner_init (TocsinOwner *self)
{
  self->session = soup_session_new_with_options ("timeout", 30, NULL);
}

TocsinOwner *
tocsin_owner_new (TocsinHistory *history,
                  GTlsDatabase  *tls_database)
{
  TocsinOwner *self = g_object_new (TOCSIN_TYPE_OWNER, NULL);

  self->history = history ? g_object_ref (history) : NULL;
  self->tls_database = tls_database ? g_object_ref (tls_database) : NULL;
  return self;
}

void
tocsin_owner_set_tls_database (TocsinOwner  *self,
                               GTlsDatabase *tls_database)
{
  g_return_if_fail (TOCSIN_IS_OWNER (self));
  g_return_if_fail (tls_database == NULL || G_IS_TLS_DATABASE (tls_database));

  g_set_object (&self->tls_database, tls_database);
}

/* ---- requests ----------------------------------------------------------------------------- */

typedef enum
{
  AFTER_NOTHING,
  AFTER_CREATE,
  AFTER_UPDATE,
  AFTER_ROTATE,
  AFTER_DELETE,
} After;

typedef struct
{
  SoupMessage        *msg;
  TocsinOwnedChannel *channel;   /* for create: filled from the answer */
  After               after;
} Request;

static void
request_free (gpointer data)
{
  Request *request = data;

  g_clear_object (&request->msg);
  tocsin_owned_channel_free (request->channel);
  g_free (request);
}

static gboolean
accept_with_ca_file (SoupMessage          *msg,
                     GTlsCertificate      *certificate,
                     GTlsCertificateFlags  errors,
                     TocsinOwner          *self)
{
  return tocsin_tls_accept_with_database (self->tls_database, msg, certificate);
}

static const char *
string_member (JsonObject *object,
               const char *snake,
               const char *camel)
{
  /* Quiet when a relay sends another type where text belongs. */
  const char *value = tocsin_json_get_string (object, snake, NULL);

  return value ? value : tocsin_json_get_string (object, camel, NULL);
}

/* The owned channel as the relay describes it now; fields the answer lacks are kept. */
static void
merge_answer (TocsinOwnedChannel *channel,
              JsonObject         *answer)
{
  const char *value;

  if (json_object_has_member (answer, "id"))
    channel->id = tocsin_json_get_int (answer, "id", channel->id);
  if ((value = string_member (answer, "owner_key", "ownerKey")))
    {
      g_free (channel->owner_key);
      channel->owner_key = g_strdup (value);
    }
  if ((value = string_member (answer, "name", "name")))
    {
      g_free (channel->name);
      channel->name = g_strdup (value);
    }
  if ((value = string_member (answer, "webhook_url", "webhookUrl")))
    {
      g_free (channel->webhook_url);
      channel->webhook_url = g_strdup (value);
    }
  /* A direct inbox's answer (/v1/direct): where it rings is its Direct URL. */
  if ((value = string_member (answer, "direct_url", "directUrl")))
    {
      g_free (channel->webhook_url);
      channel->webhook_url = g_strdup (value);
    }
  if ((value = string_member (answer, "subscribe_url", "subscribeUrl")))
    {
      g_free (channel->subscribe_url);
      channel->subscribe_url = g_strdup (value);
    }
}

static void
request_done (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  TocsinOwner *self = g_task_get_source_object (task);
  Request *request = g_task_get_task_data (task);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) answer = NULL;
  const char *data;
  gsize length = 0;
  guint status;

  body = soup_session_send_and_read_finish (SOUP_SESSION (object), result, &error);
  if (body == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_FAILED,
                               _("Could not reach the relay: %s"), error->message);
      return;
    }

  status = soup_message_get_status (request->msg);
  data = g_bytes_get_data (body, &length);
  /* The relay is a peer: its answer goes through the guarded parser (size, depth). */
  if (length > 0)
    answer = tocsin_json_parse_object (data, length, MAX_ANSWER_BYTES,
                                       TOCSIN_JSON_DEFAULT_MAX_DEPTH, NULL);

  if (!SOUP_STATUS_IS_SUCCESSFUL (status))
    {
      const char *why = answer ? tocsin_json_get_string (answer, "error", NULL)
                               : NULL;

      if (why == NULL && (status == SOUP_STATUS_UNAUTHORIZED || status == SOUP_STATUS_FORBIDDEN))
        why = _("The relay did not accept this key for this channel.");
      if (why)
        g_task_return_new_error (task, TOCSIN_OWNER_ERROR, (int) status, "%s", why);
      else
        g_task_return_new_error (task, TOCSIN_OWNER_ERROR, (int) status,
                                 _("The relay refused the request (HTTP %u)."), status);
      return;
    }

  if (request->after == AFTER_DELETE)
    {
      if (self->history)
        tocsin_history_remove_owned_channel_async (self->history, request->channel->relay_url,
                                                   request->channel->id, NULL, NULL, NULL);
      g_task_return_boolean (task, TRUE);
      return;
    }

  if (answer == NULL)
    {
      g_task_return_new_error (task, TOCSIN_OWNER_ERROR, (int) status,
                               _("The relay answered with something that is not JSON."));
      return;
    }

  if (request->after == AFTER_CREATE || request->after == AFTER_UPDATE ||
      request->after == AFTER_ROTATE)
    {
      merge_answer (request->channel, answer);
      if (request->after == AFTER_CREATE &&
          (request->channel->owner_key == NULL || request->channel->id <= 0))
        {
          g_task_return_new_error (task, TOCSIN_OWNER_ERROR, (int) status,
                                   _("The relay created the channel but sent no owner key "
                                     "back."));
          return;
        }
      if (self->history)
        tocsin_history_save_owned_channel_async (self->history, request->channel,
                                                 NULL, NULL, NULL);
    }

  g_task_return_pointer (task, json_object_ref (answer), (GDestroyNotify) json_object_unref);
}

static void
send_request (TocsinOwner              *self,
              const char               *method,
              const char               *url,
              const char               *bearer,
              JsonObject               *fields,
              const TocsinOwnedChannel *channel,
              After                     after,
              gpointer                  source_tag,
              GCancellable             *cancellable,
              GAsyncReadyCallback       callback,
              gpointer                  user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  Request *request = g_new0 (Request, 1);

  g_task_set_source_tag (task, source_tag);
  g_task_set_task_data (task, request, request_free);
  request->after = after;
  request->channel = channel ? tocsin_owned_channel_copy (channel) : tocsin_owned_channel_new ();
  request->msg = soup_message_new (method, url);
  if (request->msg == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               _("“%s” is not a valid relay address."), url);
      return;
    }

  if (bearer)
    {
      g_autofree char *value = g_strconcat ("Bearer ", bearer, NULL);
      soup_message_headers_replace (soup_message_get_request_headers (request->msg),
                                    "Authorization", value);
    }
  soup_message_headers_replace (soup_message_get_request_headers (request->msg),
                                "Accept", "application/json");
  if (fields)
    {
      g_autoptr(JsonNode) node = json_node_init_object (json_node_alloc (), fields);
      gsize length;
      char *text = tocsin_json_to_string (node, FALSE);
      g_autoptr(GBytes) bytes = NULL;

      length = strlen (text);
      bytes = g_bytes_new_take (text, length);
      soup_message_set_request_body_from_bytes (request->msg, "application/json", bytes);
    }
  if (self->tls_database)
    g_signal_connect_object (request->msg, "accept-certificate",
                             G_CALLBACK (accept_with_ca_file), self, 0);

  soup_session_send_and_read_async (self->session, request->msg, G_PRIORITY_DEFAULT,
                                    cancellable, request_done, g_steal_pointer (&task));
}

static char *
channel_url (const TocsinOwnedChannel *channel,
             const char               *suffix)
{
  return g_strdup_printf ("%s/v1/channels/%" G_GINT64_FORMAT "%s", channel->relay_url,
                          channel->id, suffix ? suffix : "");
}

void
tocsin_owner_create_channel_async (TocsinOwner         *self,
                                   const char          *relay_url,
                                   const char          *admin_key,
                                   JsonObject          *fields,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(TocsinOwnedChannel) channel = tocsin_owned_channel_new ();
  g_autofree char *base = NULL;
  g_autofree char *url = NULL;

  g_return_if_fail (TOCSIN_IS_OWNER (self));
  g_return_if_fail (relay_url != NULL);
  g_return_if_fail (fields != NULL);

  base = g_strdup (relay_url);
  while (g_str_has_suffix (base, "/"))
    base[strlen (base) - 1] = '\0';
  channel->relay_url = g_strdup (base);
  url = g_strconcat (base, "/v1/channels", NULL);
  send_request (self, "POST", url, admin_key, fields, channel, AFTER_CREATE,
                tocsin_owner_create_channel_async, cancellable, callback, user_data);
}

TocsinOwnedChannel *
tocsin_owner_create_channel_finish (TocsinOwner   *self,
                                    GAsyncResult  *result,
                                    JsonObject   **out_json,
                                    GError       **error)
{
  Request *request;
  JsonObject *answer;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  answer = g_task_propagate_pointer (G_TASK (result), error);
  if (answer == NULL)
    return NULL;
  request = g_task_get_task_data (G_TASK (result));
  if (out_json)
    *out_json = answer;
  else
    json_object_unref (answer);
  return tocsin_owned_channel_copy (request->channel);
}

void
tocsin_owner_get_channel_async (TocsinOwner              *self,
                                const TocsinOwnedChannel *channel,
                                GCancellable             *cancellable,
                                GAsyncReadyCallback       callback,
                                gpointer                  user_data)
{
  g_autofree char *url = NULL;

  g_return_if_fail (TOCSIN_IS_OWNER (self));
  g_return_if_fail (channel != NULL);

  url = channel_url (channel, NULL);
  send_request (self, "GET", url, channel->owner_key, NULL, channel, AFTER_NOTHING,
                tocsin_owner_get_channel_async, cancellable, callback, user_data);
}

void
tocsin_owner_update_channel_async (TocsinOwner              *self,
                                   const TocsinOwnedChannel *channel,
                                   JsonObject               *fields,
                                   GCancellable             *cancellable,
                                   GAsyncReadyCallback       callback,
                                   gpointer                  user_data)
{
  g_autofree char *url = NULL;

  g_return_if_fail (TOCSIN_IS_OWNER (self));
  g_return_if_fail (channel != NULL);
  g_return_if_fail (fields != NULL);

  url = channel_url (channel, NULL);
  send_request (self, "PATCH", url, channel->owner_key, fields, channel, AFTER_UPDATE,
                tocsin_owner_update_channel_async, cancellable, callback, user_data);
}

void
tocsin_owner_rotate_async (TocsinOwner              *self,
                           const TocsinOwnedChannel *channel,
                           TocsinOwnerRotate         which,
                           GCancellable             *cancellable,
                           GAsyncReadyCallback       callback,
                           gpointer                  user_data)
{
  g_autofree char *url = NULL;

  g_return_if_fail (TOCSIN_IS_OWNER (self));
  g_return_if_fail (channel != NULL);

  url = channel_url (channel, which == TOCSIN_OWNER_ROTATE_TRIGGER ? "/rotate-trigger"
                              : which == TOCSIN_OWNER_ROTATE_SUBSCRIBE ? "/rotate-subscribe"
                              : "/rotate-signature");
  send_request (self, "POST", url, channel->owner_key, NULL, channel, AFTER_ROTATE,
                tocsin_owner_rotate_async, cancellable, callback, user_data);
}

void
tocsin_owner_list_subscribers_async (TocsinOwner              *self,
                                     const TocsinOwnedChannel *channel,
                                     GCancellable             *cancellable,
                                     GAsyncReadyCallback       callback,
                                     gpointer                  user_data)
{
  g_autofree char *url = NULL;

  g_return_if_fail (TOCSIN_IS_OWNER (self));
  g_return_if_fail (channel != NULL);

  url = channel_url (channel, "/subscribers");
  send_request (self, "GET", url, channel->owner_key, NULL, channel, AFTER_NOTHING,
                tocsin_owner_list_subscribers_async, cancellable, callback, user_data);
}

void
tocsin_owner_list_webhooks_async (TocsinOwner              *self,
                                  const TocsinOwnedChannel *channel,
                                  GCancellable             *cancellable,
                                  GAsyncReadyCallback       callback,
                                  gpointer                  user_data)
{
  g_autofree char *url = NULL;

  g_return_if_fail (TOCSIN_IS_OWNER (self));
  g_return_if_fail (channel != NULL);

  url = channel_url (channel, "/webhooks");
  send_request (self, "GET", url, channel->owner_key, NULL, channel, AFTER_NOTHING,
                tocsin_owner_list_webhooks_async, cancellable, callback, user_data);
}

/* GET /v1/channels/{id}/deliveries?limit=N (docs/api.md): the relay's outgoing requests for this
 * channel and their attempts, newest first. */
void
tocsin_owner_list_deliveries_async (TocsinOwner              *self,
                                    const TocsinOwnedChannel *channel,
                                    guint                     limit,
                                    GCancellable             *cancellable,
                                    GAsyncReadyCallback       callback,
                                    gpointer                  user_data)
{
  g_autofree char *suffix = NULL;
  g_autofree char *url = NULL;

  g_return_if_fail (TOCSIN_IS_OWNER (self));
  g_return_if_fail (channel != NULL);

  suffix = limit > 0 ? g_strdup_printf ("/deliveries?limit=%u", limit) : g_strdup ("/deliveries");
  url = channel_url (channel, suffix);
  send_request (self, "GET", url, channel->owner_key, NULL, channel, AFTER_NOTHING,
                tocsin_owner_list_deliveries_async, cancellable, callback, user_data);
}

/* POST /v1/channels/{id}/deliveries/{delivery_id}/retry: one attempt now. */
void
tocsin_owner_retry_delivery_async (TocsinOwner              *self,
                                   const TocsinOwnedChannel *channel,
                                   gint64                    delivery_id,
                                   GCancellable             *cancellable,
                                   GAsyncReadyCallback       callback,
                                   gpointer                  user_data)
{
  g_autofree char *suffix = NULL;
  g_autofree char *url = NULL;

  g_return_if_fail (TOCSIN_IS_OWNER (self));
  g_return_if_fail (channel != NULL);

  suffix = g_strdup_printf ("/deliveries/%" G_GINT64_FORMAT "/retry", delivery_id);
  url = channel_url (channel, suffix);
  send_request (self, "POST", url, channel->owner_key, NULL, channel, AFTER_NOTHING,
                tocsin_owner_retry_delivery_async, cancellable, callback, user_data);
}

JsonObject *
tocsin_owner_request_finish (TocsinOwner   *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
tocsin_owner_delete_channel_async (TocsinOwner              *self,
                                   const TocsinOwnedChannel *channel,
                                   GCancellable             *cancellable,
                                   GAsyncReadyCallback       callback,
                                   gpointer                  user_data)
{
  g_autofree char *url = NULL;

  g_return_if_fail (TOCSIN_IS_OWNER (self));
  g_return_if_fail (channel != NULL);

  url = channel_url (channel, NULL);
  send_request (self, "DELETE", url, channel->owner_key, NULL, channel, AFTER_DELETE,
                tocsin_owner_delete_channel_async, cancellable, callback, user_data);
}

gboolean
tocsin_owner_delete_channel_finish (TocsinOwner   *self,
                                    GAsyncResult  *result,
                                    GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- Direct keys (/v1/direct) ------------------------------------------------------------ */

void
tocsin_owner_create_direct_async (TocsinOwner         *self,
                                  const char          *relay_url,
                                  const char          *admin_key,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(TocsinOwnedChannel) channel = tocsin_owned_channel_new ();
  g_autofree char *url = NULL;

  g_return_if_fail (TOCSIN_IS_OWNER (self));
  g_return_if_fail (relay_url != NULL);

  channel->relay_url = g_strdup (relay_url);
  while (g_str_has_suffix (channel->relay_url, "/"))
    channel->relay_url[strlen (channel->relay_url) - 1] = '\0';
  /* The relay's name for it; the app shows its own, translated (tocsin-direct-key-group.c). */
  channel->name = g_strdup ("Direct");
  url = g_strconcat (channel->relay_url, "/v1/direct", NULL);
  send_request (self, "POST", url, admin_key, NULL, channel, AFTER_CREATE,
                tocsin_owner_create_direct_async, cancellable, callback, user_data);
}

TocsinOwnedChannel *
tocsin_owner_create_direct_finish (TocsinOwner   *self,
                                   GAsyncResult  *result,
                                   GError       **error)
{
  return tocsin_owner_create_channel_finish (self, result, NULL, error);
}

void
tocsin_owner_rotate_direct_async (TocsinOwner              *self,
                                  const TocsinOwnedChannel *channel,
                                  GCancellable             *cancellable,
                                  GAsyncReadyCallback       callback,
                                  gpointer                  user_data)
{
  g_autofree char *url = NULL;

  g_return_if_fail (TOCSIN_IS_OWNER (self));
  g_return_if_fail (channel != NULL);

  url = g_strconcat (channel->relay_url, "/v1/direct/rotate", NULL);
  send_request (self, "POST", url, channel->owner_key, NULL, channel, AFTER_ROTATE,
                tocsin_owner_rotate_direct_async, cancellable, callback, user_data);
}
