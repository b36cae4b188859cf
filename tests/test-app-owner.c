/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * test-app-owner.c: the app's owner client (TocsinOwner) against the real relay, as the channel
 * editor drives it: create → update (and a template the relay refuses, shown as its sentence)
 * → rotate the webhook URL → rotate the subscribe link → delete. Each step is checked the way
 * a peer sees it (the webhook answers, the public channel info) and against docs/api.md, and
 * the owner key and URLs kept in the history database follow along.
 */
#include "config.h"

#include "tocsin-owner.h"
#include "tocsin-test-relay.h"
#include "tocsin-test-tls.h"

typedef struct
{
  char            *dir;
  TocsinTestRelay *relay;
  TocsinHistory   *history;
  TocsinOwner     *owner;
} Fixture;

static void
store_result (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autofree char *db = NULL;

  f->dir = tocsin_test_make_tmpdir ("tocsin-owner-test");
  f->relay = tocsin_test_relay_start (NULL, NULL);
  db = g_build_filename (f->dir, "tocsin", "history.db", NULL);
  f->history = tocsin_history_new (db);
  f->owner = tocsin_owner_new (f->history, NULL);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->owner);
  tocsin_history_flush_sync (f->history);
  g_clear_object (&f->history);
  g_clear_pointer (&f->relay, tocsin_test_relay_free);
  tocsin_test_rmdir_recursive (f->dir);
  g_free (f->dir);
}

/* The owned channels the history holds now (after every queued write). */
static GPtrArray *
saved_channels (Fixture *f)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *channels;

  tocsin_history_flush_sync (f->history);
  tocsin_history_load_owned_channels_async (f->history, NULL, store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  channels = tocsin_history_load_owned_channels_finish (f->history, res, &error);
  g_assert_no_error (error);
  return channels;
}

/* GET @url as a sender would (the webhook) and return the status. */
static guint
ring (Fixture    *f,
      const char *webhook_url,
      const char *query)
{
  g_autofree char *url = g_strconcat (webhook_url, query, NULL);

  return tocsin_test_http (f->relay, "GET", url, NULL, NULL, 0, NULL, NULL, NULL);
}

/* The public channel info behind a subscribe link (what a subscriber's app fetches). */
static guint
subscribe_info (Fixture    *f,
                const char *subscribe_url)
{
  const char *headers[] = { "Accept", "application/json", NULL };

  return tocsin_test_http (f->relay, "GET", subscribe_url, NULL, NULL, 0, headers, NULL, NULL);
}

static JsonObject *
request_finish (Fixture       *f,
                GAsyncResult **res,
                GError       **error)
{
  JsonObject *answer;

  TOCSIN_WAIT_UNTIL (*res != NULL);
  answer = tocsin_owner_request_finish (f->owner, *res, error);
  g_clear_object (res);
  return answer;
}

static void
test_lifecycle (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(JsonObject) fields = json_object_new ();
  g_autoptr(JsonObject) created = NULL;
  g_autoptr(JsonObject) answer = NULL;
  g_autoptr(TocsinOwnedChannel) channel = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) saved = NULL;
  g_autofree char *old_webhook = NULL;
  g_autofree char *old_subscribe = NULL;
  g_autofree char *webhook_prefix = g_strconcat (f->relay->base_url, "/t/", NULL);
  g_autofree char *subscribe_prefix = g_strconcat (f->relay->base_url, "/s/", NULL);
  TocsinOwnedChannel *kept;

  /* ---- create: a loopback relay is open, so no admin key is needed ---- */
  json_object_set_string_member (fields, "name", "Prod alerts");
  json_object_set_string_member (fields, "title", "Alerte serveur {{server_name}}");
  json_object_set_string_member (fields, "body", "CPU {{cpu_usage}}%");
  tocsin_owner_create_channel_async (f->owner, f->relay->base_url, NULL, fields, NULL,
                                     store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  channel = tocsin_owner_create_channel_finish (f->owner, res, &created, &error);
  g_clear_object (&res);
  g_assert_no_error (error);
  g_assert_nonnull (channel);

  /* docs/api.md: the channel plus "owner_key", shown this once. */
  g_assert_cmpint (channel->id, >, 0);
  g_assert_cmpint (json_object_get_int_member (created, "id"), ==, channel->id);
  g_assert_cmpstr (json_object_get_string_member (created, "name"), ==, "Prod alerts");
  g_assert_cmpstr (json_object_get_string_member (created, "title"), ==,
                   "Alerte serveur {{server_name}}");
  g_assert_true (json_object_has_member (created, "trigger_token"));
  g_assert_true (json_object_has_member (created, "subscribe_token"));
  g_assert_true (json_object_has_member (created, "owner_key"));
  g_assert_cmpstr (channel->relay_url, ==, f->relay->base_url);
  g_assert_cmpstr (channel->name, ==, "Prod alerts");
  g_assert_nonnull (channel->owner_key);
  g_assert_cmpstr (channel->owner_key, ==, json_object_get_string_member (created, "owner_key"));
  g_assert_true (g_str_has_prefix (channel->webhook_url, webhook_prefix));
  g_assert_true (g_str_has_prefix (channel->subscribe_url, subscribe_prefix));

  /* The owner key stays local: it is in the history, with the URLs. */
  saved = saved_channels (f);
  g_assert_cmpuint (saved->len, ==, 1);
  kept = g_ptr_array_index (saved, 0);
  g_assert_cmpint (kept->id, ==, channel->id);
  g_assert_cmpstr (kept->relay_url, ==, channel->relay_url);
  g_assert_cmpstr (kept->owner_key, ==, channel->owner_key);
  g_assert_cmpstr (kept->webhook_url, ==, channel->webhook_url);
  g_assert_cmpstr (kept->subscribe_url, ==, channel->subscribe_url);
  g_clear_pointer (&saved, g_ptr_array_unref);

  /* It rings, and a subscriber can see what it is. */
  g_assert_cmpuint (ring (f, channel->webhook_url, "?server_name=db1&cpu_usage=95"), ==, 200);
  g_assert_cmpuint (subscribe_info (f, channel->subscribe_url), ==, 200);

  /* ---- get ---- */
  tocsin_owner_get_channel_async (f->owner, channel, NULL, store_result, &res);
  answer = request_finish (f, &res, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json_object_get_string_member (answer, "body"), ==, "CPU {{cpu_usage}}%");
  g_assert_cmpint (json_object_get_int_member (answer, "last_id"), ==, 1);
  g_clear_pointer (&answer, json_object_unref);

  /* ---- update with a template the relay refuses: its sentence, and nothing changed ---- */
  {
    g_autoptr(JsonObject) bad = json_object_new ();

    json_object_set_string_member (bad, "name", "Renamed too early");
    json_object_set_string_member (bad, "title", "Alerte {{server_name");
    tocsin_owner_update_channel_async (f->owner, channel, bad, NULL, store_result, &res);
    answer = request_finish (f, &res, &error);
    g_assert_null (answer);
    g_assert_error (error, TOCSIN_OWNER_ERROR, 400);
    g_test_message ("refused: %s", error->message);
    /* A sentence that names the field and the column (docs/api.md), not a status code. */
    g_assert_nonnull (strstr (error->message, "title"));
    g_assert_nonnull (strstr (error->message, "column"));
    g_assert_null (strstr (error->message, "HTTP"));
    g_clear_error (&error);

    tocsin_owner_get_channel_async (f->owner, channel, NULL, store_result, &res);
    answer = request_finish (f, &res, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (json_object_get_string_member (answer, "name"), ==, "Prod alerts");
    g_assert_cmpstr (json_object_get_string_member (answer, "title"), ==,
                     "Alerte serveur {{server_name}}");
    g_clear_pointer (&answer, json_object_unref);
  }

  /* ---- update: fields left out stay as they are; the new name is kept locally ---- */
  {
    g_autoptr(JsonObject) good = json_object_new ();
    g_autoptr(GBytes) response = NULL;
    g_autofree char *url = g_strconcat (channel->webhook_url, "?server_name=db2", NULL);

    json_object_set_string_member (good, "name", "Production alerts");
    json_object_set_string_member (good, "title", "Alert on {{server_name}}");
    tocsin_owner_update_channel_async (f->owner, channel, good, NULL, store_result, &res);
    answer = request_finish (f, &res, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (json_object_get_string_member (answer, "name"), ==, "Production alerts");
    g_assert_cmpstr (json_object_get_string_member (answer, "title"), ==,
                     "Alert on {{server_name}}");
    g_assert_cmpstr (json_object_get_string_member (answer, "body"), ==, "CPU {{cpu_usage}}%");
    g_clear_pointer (&answer, json_object_unref);

    /* A sender sees the new template at once. */
    g_assert_cmpuint (tocsin_test_http (f->relay, "GET", url, NULL, NULL, 0, NULL, &response,
                                        NULL), ==, 200);
    g_assert_nonnull (strstr (g_bytes_get_data (response, NULL), "\"Alert on db2\""));

    saved = saved_channels (f);
    g_assert_cmpuint (saved->len, ==, 1);
    g_assert_cmpstr (((TocsinOwnedChannel *) g_ptr_array_index (saved, 0))->name, ==,
                     "Production alerts");
    g_clear_pointer (&saved, g_ptr_array_unref);
  }

  /* ---- a key that is not this channel's gets the relay's sentence, not a crash ---- */
  {
    g_autoptr(TocsinOwnedChannel) stranger = tocsin_owned_channel_copy (channel);

    g_free (stranger->owner_key);
    stranger->owner_key = g_strdup ("0123456789abcdef0123456789abcdef");
    tocsin_owner_get_channel_async (f->owner, stranger, NULL, store_result, &res);
    answer = request_finish (f, &res, &error);
    g_assert_null (answer);
    g_assert_true (error->domain == TOCSIN_OWNER_ERROR);
    g_assert_true (error->code == 401 || error->code == 403);
    g_assert_cmpstr (error->message, !=, "");
    g_clear_error (&error);
  }

  /* ---- rotate the webhook URL: the old one 404s at once, the new one rings ---- */
  old_webhook = g_strdup (channel->webhook_url);
  tocsin_owner_rotate_async (f->owner, channel, TOCSIN_OWNER_ROTATE_TRIGGER, NULL, store_result,
                             &res);
  answer = request_finish (f, &res, &error);
  g_assert_no_error (error);
  {
    const char *new_webhook = json_object_get_string_member (answer, "webhook_url");

    g_assert_true (g_str_has_prefix (new_webhook, webhook_prefix));
    g_assert_cmpstr (new_webhook, !=, old_webhook);
    g_assert_cmpuint (ring (f, old_webhook, "?server_name=old"), ==, 404);
    g_assert_cmpuint (ring (f, new_webhook, "?server_name=new"), ==, 200);
    /* The subscribe link did not change. */
    g_assert_cmpstr (json_object_get_string_member (answer, "subscribe_url"), ==,
                     channel->subscribe_url);

    /* The history keeps the new URL, so the editor shows the one that works. */
    saved = saved_channels (f);
    g_assert_cmpstr (((TocsinOwnedChannel *) g_ptr_array_index (saved, 0))->webhook_url, ==,
                     new_webhook);
    g_clear_pointer (&saved, g_ptr_array_unref);
    g_free (channel->webhook_url);
    channel->webhook_url = g_strdup (new_webhook);
  }
  g_clear_pointer (&answer, json_object_unref);

  /* ---- rotate the subscribe link: the old one is refused, the new one works ---- */
  old_subscribe = g_strdup (channel->subscribe_url);
  tocsin_owner_rotate_async (f->owner, channel, TOCSIN_OWNER_ROTATE_SUBSCRIBE, NULL, store_result,
                             &res);
  answer = request_finish (f, &res, &error);
  g_assert_no_error (error);
  {
    const char *new_subscribe = json_object_get_string_member (answer, "subscribe_url");

    g_assert_true (g_str_has_prefix (new_subscribe, subscribe_prefix));
    g_assert_cmpstr (new_subscribe, !=, old_subscribe);
    g_assert_cmpuint (subscribe_info (f, old_subscribe), ==, 404);
    g_assert_cmpuint (subscribe_info (f, new_subscribe), ==, 200);
    g_assert_cmpstr (json_object_get_string_member (answer, "webhook_url"), ==,
                     channel->webhook_url);

    saved = saved_channels (f);
    g_assert_cmpstr (((TocsinOwnedChannel *) g_ptr_array_index (saved, 0))->subscribe_url, ==,
                     new_subscribe);
    g_clear_pointer (&saved, g_ptr_array_unref);
    g_free (channel->subscribe_url);
    channel->subscribe_url = g_strdup (new_subscribe);
  }
  g_clear_pointer (&answer, json_object_unref);

  /* ---- subscribers (docs/api.md: {"id", "subscribers": [...]}) ---- */
  tocsin_owner_list_subscribers_async (f->owner, channel, NULL, store_result, &res);
  answer = request_finish (f, &res, &error);
  g_assert_no_error (error);
  g_assert_cmpint (json_object_get_int_member (answer, "id"), ==, channel->id);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (json_object_get_member (answer, "subscribers")));
  g_clear_pointer (&answer, json_object_unref);

  /* ---- delete: the relay forgets it, its webhook stops, the owner key is forgotten ---- */
  tocsin_owner_delete_channel_async (f->owner, channel, NULL, store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  g_assert_true (tocsin_owner_delete_channel_finish (f->owner, res, &error));
  g_assert_no_error (error);
  g_clear_object (&res);

  g_assert_cmpuint (ring (f, channel->webhook_url, "?server_name=gone"), ==, 404);
  g_assert_cmpuint (subscribe_info (f, channel->subscribe_url), ==, 404);
  saved = saved_channels (f);
  g_assert_cmpuint (saved->len, ==, 0);
  g_clear_pointer (&saved, g_ptr_array_unref);

  /* Deleting again: the relay's sentence for a channel that is gone. */
  tocsin_owner_delete_channel_async (f->owner, channel, NULL, store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  g_assert_false (tocsin_owner_delete_channel_finish (f->owner, res, &error));
  g_assert_true (error->domain == TOCSIN_OWNER_ERROR);
  g_assert_true (error->code == 401 || error->code == 403 || error->code == 404);
  g_assert_cmpstr (error->message, !=, "");
  g_clear_error (&error);
}

static void
test_create_refused (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(JsonObject) fields = json_object_new ();
  g_autoptr(TocsinOwnedChannel) channel = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) saved = NULL;

  /* A body template that does not compile: nothing is created, the sentence says where. */
  json_object_set_string_member (fields, "name", "Broken");
  json_object_set_string_member (fields, "body", "CPU at {{cpu_usage");
  tocsin_owner_create_channel_async (f->owner, f->relay->base_url, NULL, fields, NULL,
                                     store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  channel = tocsin_owner_create_channel_finish (f->owner, res, NULL, &error);
  g_assert_null (channel);
  g_assert_error (error, TOCSIN_OWNER_ERROR, 400);
  g_assert_nonnull (strstr (error->message, "body"));
  g_assert_nonnull (strstr (error->message, "column"));
  g_clear_error (&error);
  g_clear_object (&res);

  saved = saved_channels (f);
  g_assert_cmpuint (saved->len, ==, 0);

  /* A relay that is not there: a sentence that says so. */
  tocsin_test_relay_stop (f->relay, FALSE);
  json_object_set_string_member (fields, "body", "fine");
  tocsin_owner_create_channel_async (f->owner, f->relay->base_url, NULL, fields, NULL,
                                     store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  g_assert_null (tocsin_owner_create_channel_finish (f->owner, res, NULL, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "Could not reach the relay"));
}

/* A relay with a self-signed certificate: the owner client trusts it only through the CA file
 * the user chose (the app hands the client's CA database to the owner). */
static void
test_self_signed_relay (void)
{
  g_autoptr(TocsinTestPki) pki = tocsin_test_pki_new ();
  g_autofree char *cert = g_strdup_printf ("--tls-cert=%s", pki->cert_file);
  g_autofree char *key = g_strdup_printf ("--tls-key=%s", pki->key_file);
  const char *args[] = { cert, key, NULL };
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, args);
  g_autoptr(GTlsDatabase) trust = tocsin_test_pki_database (pki->ca_file);
  g_autoptr(GTlsDatabase) wrong = tocsin_test_pki_database (pki->other_ca_file);
  g_autoptr(TocsinOwner) owner = tocsin_owner_new (NULL, NULL);
  g_autoptr(JsonObject) fields = json_object_new ();
  g_autoptr(TocsinOwnedChannel) channel = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_str_has_prefix (relay->base_url, "https://"));
  json_object_set_string_member (fields, "name", "Secure");

  /* Without the CA, or with the wrong one, the relay is not trusted: nothing is created. */
  tocsin_owner_create_channel_async (owner, relay->base_url, NULL, fields, NULL, store_result,
                                     &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  g_assert_null (tocsin_owner_create_channel_finish (owner, res, NULL, &error));
  g_assert_nonnull (strstr (error->message, "Could not reach the relay"));
  g_clear_error (&error);
  g_clear_object (&res);

  tocsin_owner_set_tls_database (owner, wrong);
  tocsin_owner_create_channel_async (owner, relay->base_url, NULL, fields, NULL, store_result,
                                     &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  g_assert_null (tocsin_owner_create_channel_finish (owner, res, NULL, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_clear_object (&res);

  /* With the CA that signed it: created, and its URLs are https. */
  tocsin_owner_set_tls_database (owner, trust);
  tocsin_owner_create_channel_async (owner, relay->base_url, NULL, fields, NULL, store_result,
                                     &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  channel = tocsin_owner_create_channel_finish (owner, res, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (channel->webhook_url, "https://"));
  g_clear_object (&res);

  tocsin_owner_delete_channel_async (owner, channel, NULL, store_result, &res);
  TOCSIN_WAIT_UNTIL (res != NULL);
  g_assert_true (tocsin_owner_delete_channel_finish (owner, res, &error));
  g_assert_no_error (error);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *home = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);

  home = tocsin_test_make_tmpdir ("tocsin-owner-home");
  g_setenv ("XDG_DATA_HOME", home, TRUE);
  g_setenv ("XDG_CONFIG_HOME", home, TRUE);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/app/owner/lifecycle", test_lifecycle);
  ADD ("/app/owner/create-refused", test_create_refused);
#undef ADD
  g_test_add_func ("/app/owner/self-signed-relay", test_self_signed_relay);

  ret = g_test_run ();
  tocsin_test_rmdir_recursive (home);
  return ret;
}
