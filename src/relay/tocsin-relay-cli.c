/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-cli.c: `tocsin-relay channel ...`, `direct ...`, `key create` and `subscribers ID`.
 *
 * They open the store directly, so they work whether or not a server runs on the same data dir
 * (SQLite WAL lets both in; the server reads channels from the database on every lookup, so a
 * new channel or a rotated trigger token takes effect there at once).
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-json.h"
#include "tocsin-presets.h"
#include "tocsin-relay-config.h"
#include "tocsin-relay-actions.h"
#include "tocsin-relay-api.h"
#include "tocsin-relay-cli.h"
#include "tocsin-relay-direct.h"
#include "tocsin-relay-signature.h"
#include "tocsin-relay-mail.h"
#include "tocsin-relay-store.h"
#include "tocsin-relay-store-pg.h"
#include "tocsin-request.h"

#define EXIT_USAGE 2

typedef struct
{
  char     *data_dir;
  char     *config_file;
  char     *database;     /* --database or the config file's: a postgresql:// URL, or NULL */
  char     *public_url;
  char     *listen_url;   /* a guess from the config file's first listen address */
  char     *mail_domain;  /* the config file's mail-domain */
  gboolean  json;
  char     *name, *description, *title, *body, *link, *condition;
  char     *preset;
  char     *signature, *signature_secret, *signature_header;
  char     *actions_file;
  char     *forwards_file;   /* --forwards FILE.json (issue 15) */
  char     *forwards;        /* its definitions, compiled and normalised */
  int       limit;           /* deliveries --limit */
} Options;

static void
options_clear (Options *o)
{
  g_free (o->data_dir);
  g_free (o->config_file);
  g_free (o->database);
  g_free (o->public_url);
  g_free (o->listen_url);
  g_free (o->mail_domain);
  g_free (o->name);
  g_free (o->description);
  g_free (o->title);
  g_free (o->body);
  g_free (o->link);
  g_free (o->condition);
  g_free (o->preset);
  g_free (o->signature);
  if (o->signature_secret)
    explicit_bzero (o->signature_secret, strlen (o->signature_secret));
  g_free (o->signature_secret);
  g_free (o->signature_header);
  g_free (o->actions_file);
  g_free (o->forwards_file);
  g_free (o->forwards);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Options, options_clear)

static int
fail (const char *format,
      ...) G_GNUC_PRINTF (1, 2);

static int
fail (const char *format,
      ...)
{
  g_autofree char *text = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  g_printerr ("tocsin-relay: %s\n", text);
  return EXIT_FAILURE;
}

static int
usage (const char *text)
{
  g_printerr ("tocsin-relay: %s\n", text);
  return EXIT_USAGE;
}

/* Parses the common flags (and the channel fields when @fields). Leaves the positional
 * arguments in argc/argv, without the program name or the command word. */
static gboolean
parse_options (Options     *o,
               const char  *command,
               const char  *parameter,
               const char  *summary,
               gboolean     fields,
               int         *argc,
               char      ***argv,
               GError     **error)
{
  const GOptionEntry common[] = {
    { "data-dir", 0, 0, G_OPTION_ARG_FILENAME, &o->data_dir,
      N_("The relay's data directory (default: the config file's, or $STATE_DIRECTORY)"),
      N_("DIR") },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &o->config_file,
      N_("Read data-dir and public-url from the [relay] group of FILE"), N_("FILE") },
    { "public-url", 0, 0, G_OPTION_ARG_STRING, &o->public_url,
      N_("Base of the URLs printed (default: the first listen address)"), N_("URL") },
    { "database", 0, 0, G_OPTION_ARG_STRING, &o->database,
      N_("The relay's PostgreSQL database (default: $TOCSIN_RELAY_DATABASE, then the config "
         "file's, else SQLite in the data dir)"), N_("postgresql://…") },
    { "json", 0, 0, G_OPTION_ARG_NONE, &o->json, N_("Print JSON"), NULL },
    { NULL }
  };
  const GOptionEntry channel_fields[] = {
    { "name", 0, 0, G_OPTION_ARG_STRING, &o->name, N_("The channel's name"), N_("NAME") },
    { "description", 0, 0, G_OPTION_ARG_STRING, &o->description,
      N_("What the channel sends, for subscribers"), N_("TEXT") },
    { "title", 0, 0, G_OPTION_ARG_STRING, &o->title, N_("Title template"), N_("TEMPLATE") },
    { "body", 0, 0, G_OPTION_ARG_STRING, &o->body, N_("Body template"), N_("TEMPLATE") },
    { "link", 0, 0, G_OPTION_ARG_STRING, &o->link, N_("Link template"), N_("TEMPLATE") },
    { "condition", 0, 0, G_OPTION_ARG_STRING, &o->condition,
      N_("Only notify when this expression is true"), N_("EXPR") },
    { "preset", 0, 0, G_OPTION_ARG_STRING, &o->preset,
      N_("Templates for a known sender (the flags above win); --preset=help lists them"),
      N_("ID") },
    { "signature", 0, 0, G_OPTION_ARG_STRING, &o->signature,
      N_("Require signed webhooks: standard-webhooks, github, stripe, hmac-sha256 or none"),
      N_("SCHEME") },
    { "signature-secret", 0, 0, G_OPTION_ARG_STRING, &o->signature_secret,
      N_("The signing secret the sender uses (default, or “generated”: the relay makes one)"),
      N_("SECRET") },
    { "signature-header", 0, 0, G_OPTION_ARG_STRING, &o->signature_header,
      N_("The header that carries an hmac-sha256 signature (default X-Signature)"),
      N_("NAME") },
    { "actions", 0, 0, G_OPTION_ARG_FILENAME, &o->actions_file,
      N_("Action buttons: a JSON file with an array of definitions (docs/actions.md); a file "
         "holding [] removes them"), N_("FILE") },
    { "forwards", 0, 0, G_OPTION_ARG_FILENAME, &o->forwards_file,
      N_("Send the outgoing requests defined in FILE (a JSON array; see docs/api.md) on each "
         "message"), N_("FILE.json") },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (parameter);
  int skip = 1;

  g_option_context_set_summary (context, summary);
  g_option_context_add_main_entries (context, common, GETTEXT_PACKAGE);
  if (fields)
    g_option_context_add_main_entries (context, channel_fields, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, argc, argv, error))
    return FALSE;

  /* Whether main() handed us argv from the program name or from the command word. */
  if (*argc > 1 && g_str_equal ((*argv)[1], command))
    skip = 2;
  *argc -= skip;
  *argv += skip;
  return TRUE;
}

/* Resolves the data dir and public URL from the flags, the config file and the environment. */
static gboolean
resolve (Options  *o,
         GError  **error)
{
  if (o->database == NULL && g_getenv (TOCSIN_RELAY_DATABASE_ENV) != NULL)
    o->database = g_strdup (g_getenv (TOCSIN_RELAY_DATABASE_ENV));
  if (o->config_file)
    {
      TocsinRelayServeConfig config;
      gboolean ok;

      tocsin_relay_serve_config_init (&config);
      ok = tocsin_relay_serve_config_load_file (&config, o->config_file, error);
      if (ok)
        {
          if (o->data_dir == NULL)
            o->data_dir = g_strdup (config.relay.data_dir);
          if (o->public_url == NULL && config.relay.public_url)
            o->public_url = g_strdup (config.relay.public_url);
          if (config.listen && config.listen[0])
            o->listen_url = g_strdup_printf ("http://%s", config.listen[0]);
          o->mail_domain = g_strdup (config.relay.mail_domain);
          if (o->database == NULL)
            o->database = g_strdup (config.database);
        }
      tocsin_relay_serve_config_clear (&config);
      if (!ok)
        return FALSE;
    }
  if (o->data_dir == NULL && g_getenv ("STATE_DIRECTORY"))
    {
      /* systemd may list several; the relay's unit has one. */
      g_auto(GStrv) dirs = g_strsplit (g_getenv ("STATE_DIRECTORY"), ":", 2);

      o->data_dir = g_strdup (dirs[0]);
    }
  if (o->data_dir == NULL || *o->data_dir == '\0')
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   _("Say where the relay keeps its data: --data-dir=DIR"));
      return FALSE;
    }
  return TRUE;
}

/* --public-url, the config file's, the one the server last recorded, the config file's listen
 * address, the default listen address: the first known. */
static void
resolve_public_url (Options          *o,
                    TocsinRelayStore *store)
{
  if (o->public_url == NULL)
    o->public_url = tocsin_relay_store_dup_public_url (store);
  if (o->public_url == NULL)
    o->public_url = g_strdup (o->listen_url);
  if (o->public_url == NULL)
    o->public_url = g_strdup ("http://" TOCSIN_RELAY_DEFAULT_LISTEN);
  while (g_str_has_suffix (o->public_url, "/"))
    o->public_url[strlen (o->public_url) - 1] = '\0';

  /* Channels' email addresses: the config file's domain, the one the server recorded, or the
   * host name. */
  if (o->mail_domain == NULL)
    o->mail_domain = tocsin_relay_store_dup_meta (store, "mail_domain");
  tocsin_relay_mail_set_domain (o->mail_domain);
}

/* Opens the store; @must_exist refuses a data dir that has no relay in it (a typo in --data-dir
 * should not create an empty relay and report "no channels"). */
static TocsinRelayStore *
open_store (Options   *o,
            gboolean   must_exist,
            GError   **error)
{
  TocsinRelayStore *store;

  if (!resolve (o, error))
    return NULL;
  if (g_strcmp0 (o->database, "sqlite") == 0)
    g_clear_pointer (&o->database, g_free);
  if (o->database != NULL && !tocsin_relay_store_pg_is_url (o->database))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--database takes a postgresql:// URL"));
      return NULL;
    }
  if (must_exist && o->database == NULL)
    {
      g_autofree char *db = g_build_filename (o->data_dir, "relay.db", NULL);

      if (!g_file_test (db, G_FILE_TEST_EXISTS))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                       _("There is no relay data in %s; check --data-dir"), o->data_dir);
          return NULL;
        }
    }
  store = tocsin_relay_store_open_database (o->data_dir, o->database, error);
  if (store != NULL)
    resolve_public_url (o, store);
  return store;
}

static void
print_json (JsonObject *object)
{
  g_autoptr(JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *text = NULL;

  json_node_set_object (node, object);
  text = tocsin_json_to_string (node, FALSE);
  g_print ("%s\n", text);
}

static void
print_channel (TocsinRelayChannel *channel,
               const char         *public_url,
               const char         *owner_key,
               const char         *signature_secret)
{
  g_autoptr(JsonObject) object = tocsin_relay_channel_to_owner_json (channel, public_url);

  g_print (_("Channel %" PRId64 ": %s\n"), channel->id, channel->name);
  if (*channel->description)
    g_print (_("  Description:    %s\n"), channel->description);
  g_print (_("  Webhook URL:    %s   (a secret: it rings the channel)\n"),
           json_object_get_string_member (object, "webhook_url"));
  g_print (_("  Subscribe URL:  %s\n"), json_object_get_string_member (object, "subscribe_url"));
  if (json_object_has_member (object, "email_address"))
    g_print (_("  Email address:  %s   (a secret: mail to it rings the channel)\n"),
             json_object_get_string_member (object, "email_address"));
  if (owner_key)
    g_print (_("  Owner key:      %s   (shown only now: it manages this channel over HTTP)\n"),
             owner_key);
  g_print (_("  Title:          %s\n"), channel->title_source);
  g_print (_("  Body:           %s\n"), channel->body_source);
  if (*channel->link_source)
    g_print (_("  Link:           %s\n"), channel->link_source);
  if (*channel->condition_source)
    g_print (_("  Condition:      %s\n"), channel->condition_source);
  if (*channel->signature_scheme)
    g_print (_("  Signature:      %s %s\n"), channel->signature_scheme, channel->signature_header);
  if (signature_secret)
    g_print (_("  Signing secret: %s   (shown only now: give it to the sender)\n"),
             signature_secret);
  if (channel->paused)
    g_print (_("  Paused:         webhooks are refused until “tocsin-relay channel resume”\n"));
  for (guint i = 0; channel->actions != NULL && i < channel->actions->len; i++)
    g_print (_("  Action:         %s (%s)\n"), tocsin_request_get_name (channel->actions->pdata[i]),
             tocsin_request_get_kind (channel->actions->pdata[i]) == TOCSIN_REQUEST_KIND_VIEW
               ? "view" : "http");
  for (guint i = 0; channel->forwards != NULL && i < channel->forwards->len; i++)
    {
      TocsinRequest *forward = channel->forwards->pdata[i];

      g_print (_("  Forward:        %s (on %s)\n"), tocsin_request_get_name (forward),
               tocsin_request_get_event (forward) == TOCSIN_REQUEST_EVENT_ACKNOWLEDGE
                 ? "acknowledge" : "message");
    }
  g_print (_("  Last message:   %" PRId64 "\n"), channel->last_id);
}

/* The signature flags into @spec; TRUE when there were none or they are usable. */
static gboolean
signature_spec (Options                 *o,
                TocsinRelayStore        *store,
                gint64                   id,
                TocsinRelayChannelSpec  *spec,
                char                   **generated,
                GError                 **error)
{
  g_autoptr(TocsinRelayChannel) current = NULL;

  spec->signature = o->signature;
  spec->signature_secret = o->signature_secret;
  spec->signature_header = o->signature_header;
  if (id > 0)
    {
      current = tocsin_relay_store_find_by_id (store, id);
      if (current == NULL)
        {
          g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND,
                       _("There is no channel %" PRId64), id);
          return FALSE;
        }
    }
  return tocsin_relay_signature_apply_spec (current, spec, generated, error);
}

static gboolean
parse_id (const char *text,
          gint64     *id)
{
  char *end = NULL;

  if (text == NULL)
    return FALSE;
  *id = g_ascii_strtoll (text, &end, 10);
  return end != text && *end == '\0' && *id > 0;
}

/* --preset=ID fills the templates the flags left out (and the name, on create). FALSE, with a
 * sentence naming the presets, when there is no such preset. */
static gboolean
apply_preset (Options   *o,
              gboolean   creating,
              GError   **error)
{
  const TocsinPreset *preset;

  if (o->preset == NULL)
    return TRUE;
  preset = tocsin_preset_lookup (o->preset);
  if (preset == NULL)
    {
      g_autofree char *ids = tocsin_presets_dup_ids ();

      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("There is no preset “%s”; the presets are: %s"), o->preset, ids);
      return FALSE;
    }
  if (o->title == NULL)
    o->title = g_strdup (preset->title);
  if (o->body == NULL)
    o->body = g_strdup (preset->body);
  if (o->link == NULL)
    o->link = g_strdup (preset->link);
  if (o->condition == NULL)
    o->condition = g_strdup (preset->condition);
  if (creating && o->name == NULL)
    o->name = g_strdup (tocsin_preset_get_name (preset));
  return TRUE;
}

/* --forwards FILE.json: the definitions, compiled as the owner API does, into o->forwards. */
static gboolean
read_forwards_file (Options  *o,
                    GError  **error)
{
  g_autofree char *text = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GPtrArray) compiled = NULL;
  g_autoptr(JsonArray) normalised = NULL;
  g_autoptr(JsonNode) root = NULL;
  gsize length = 0;

  if (o->forwards_file == NULL)
    return TRUE;
  if (!g_file_get_contents (o->forwards_file, &text, &length, error))
    return FALSE;
  node = tocsin_json_parse (text, length, TOCSIN_REQUEST_MAX_SOURCE * TOCSIN_REQUEST_MAX_FORWARDS,
                            TOCSIN_REQUEST_MAX_DEPTH * 2 + 8, error);
  if (node == NULL)
    return FALSE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("%s must hold a JSON array of request definitions"), o->forwards_file);
      return FALSE;
    }
  compiled = tocsin_request_list_new ("forwards", json_node_get_array (node),
                                      TOCSIN_REQUEST_MAX_FORWARDS, error);
  if (compiled == NULL)
    return FALSE;
  normalised = tocsin_request_list_to_json (compiled);
  root = json_node_init_array (json_node_alloc (), normalised);
  o->forwards = json_to_string (root, FALSE);
  return TRUE;
}

/* `channel presets` and `--preset=help`: needs no data dir. */
static int
channel_presets (Options *o)
{
  guint n = 0;
  const TocsinPreset *presets = tocsin_presets_get_all (&n);

  if (o->json)
    {
      g_autoptr(JsonObject) object = json_object_new ();
      JsonArray *array = json_array_new ();

      for (guint i = 0; i < n; i++)
        {
          JsonObject *item = json_object_new ();
          g_autoptr(GBytes) sample = tocsin_preset_get_sample (&presets[i]);
          g_autoptr(JsonNode) sample_node = NULL;

          json_object_set_string_member (item, "id", presets[i].id);
          json_object_set_string_member (item, "name", tocsin_preset_get_name (&presets[i]));
          json_object_set_string_member (item, "setup", tocsin_preset_get_setup (&presets[i]));
          json_object_set_string_member (item, "title", presets[i].title);
          json_object_set_string_member (item, "body", presets[i].body);
          json_object_set_string_member (item, "link", presets[i].link);
          json_object_set_string_member (item, "condition", presets[i].condition);
          /* Built in and checked by test-presets: it parses. */
          sample_node = tocsin_json_parse (g_bytes_get_data (sample, NULL),
                                           g_bytes_get_size (sample), G_MAXSIZE,
                                           TOCSIN_JSON_DEFAULT_MAX_DEPTH, NULL);
          if (sample_node != NULL)
            json_object_set_member (item, "sample", g_steal_pointer (&sample_node));
          json_array_add_object_element (array, item);
        }
      json_object_set_array_member (object, "presets", array);
      print_json (object);
      return EXIT_SUCCESS;
    }

  g_print (_("Presets for tocsin-relay channel create --preset=ID:\n"));
  for (guint i = 0; i < n; i++)
    {
      g_print ("\n  %-16s %s\n", presets[i].id, tocsin_preset_get_name (&presets[i]));
      g_print ("  %-16s %s\n", "", tocsin_preset_get_setup (&presets[i]));
    }
  return EXIT_SUCCESS;
}

static int
channel_one (Options    *o,
             const char *action,
             gint64      id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autofree char *secret = NULL;
  TocsinRelayStore *store;

  if (!apply_preset (o, FALSE, &error))
    return usage (error->message);
  store = open_store (o, TRUE, &error);
  if (store == NULL)
    return fail ("%s", error->message);

  if (g_str_equal (action, "show"))
    {
      channel = tocsin_relay_store_find_by_id (store, id);
      if (channel == NULL)
        g_set_error (&error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND,
                     _("There is no channel %" PRId64), id);
    }
  else if (g_str_equal (action, "update") || g_str_equal (action, "edit"))
    {
      TocsinRelayChannelSpec spec = { o->name, o->description, o->title, o->body, o->link,
                                      o->condition };
      g_autofree char *actions = NULL;

      if (o->actions_file != NULL)
        actions = tocsin_relay_actions_read_file (o->actions_file, &error);
      spec.actions = actions;
      if ((o->actions_file == NULL || actions != NULL) && read_forwards_file (o, &error))
        spec.forwards = o->forwards;
      if (error == NULL && signature_spec (o, store, id, &spec, &secret, &error))
        channel = tocsin_relay_store_update_channel (store, id, &spec, &error);
    }
  else if (g_str_equal (action, "pause") || g_str_equal (action, "resume"))
    {
      TocsinRelayChannelSpec spec = { .set_paused = TRUE,
                                      .paused = g_str_equal (action, "pause") };

      channel = tocsin_relay_store_update_channel (store, id, &spec, &error);
    }
  else if (g_str_equal (action, "rotate-signature"))
    {
      TocsinRelayChannelSpec spec = { 0 };
      g_autoptr(TocsinRelayChannel) current = tocsin_relay_store_find_by_id (store, id);

      spec.signature_secret = "generated";
      if (current != NULL && *current->signature_scheme == '\0')
        g_set_error (&error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_INVALID,
                     _("Channel %" PRId64 " takes unsigned webhooks: set --signature first"), id);
      else if (current == NULL)
        g_set_error (&error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND,
                     _("There is no channel %" PRId64), id);
      else if (tocsin_relay_signature_apply_spec (current, &spec, &secret, &error))
        channel = tocsin_relay_store_update_channel (store, id, &spec, &error);
    }
  else if (g_str_equal (action, "rotate-trigger"))
    channel = tocsin_relay_store_rotate_trigger (store, id, &error);
  else if (g_str_equal (action, "rotate-subscribe"))
    channel = tocsin_relay_store_rotate_subscribe (store, id, &error);
  else if (g_str_equal (action, "rotate-email"))
    channel = tocsin_relay_store_rotate_email (store, id, &error);
  else if (g_str_equal (action, "delete"))
    {
      if (tocsin_relay_store_delete_channel (store, id, &error))
        {
          tocsin_relay_store_free (store);
          if (o->json)
            {
              g_autoptr(JsonObject) object = json_object_new ();

              json_object_set_int_member (object, "id", id);
              json_object_set_boolean_member (object, "deleted", TRUE);
              print_json (object);
            }
          else
            g_print (_("Deleted channel %" PRId64 ".\n"), id);
          return EXIT_SUCCESS;
        }
    }
  tocsin_relay_store_free (store);

  if (channel == NULL)
    return fail ("%s", error->message);

  if (o->json)
    {
      g_autoptr(JsonObject) object = tocsin_relay_channel_to_owner_json (channel, o->public_url);

      if (secret)
        json_object_set_string_member (object, "signature_secret", secret);
      print_json (object);
    }
  else
    {
      if (g_str_equal (action, "rotate-trigger"))
        g_print (_("The old webhook URL no longer works. The new one:\n"));
      else if (g_str_equal (action, "rotate-subscribe"))
        g_print (_("The old subscribe URL no longer admits anyone. The new one:\n"));
      else if (g_str_equal (action, "rotate-email"))
        g_print (_("Mail to the old email address is refused now. The new one:\n"));
      print_channel (channel, o->public_url, NULL, secret);
    }
  return EXIT_SUCCESS;
}

static int
channel_create (Options *o)
{
  TocsinRelayChannelSpec spec;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autofree char *owner_key = NULL, *secret = NULL, *actions = NULL;
  TocsinRelayStore *store;

  if (!apply_preset (o, TRUE, &error))
    return usage (error->message);
  if (o->name == NULL)
    return usage (_("A channel needs a name: --name=NAME"));
  spec = (TocsinRelayChannelSpec) { o->name, o->description, o->title, o->body, o->link,
                                    o->condition };
  if (o->actions_file != NULL &&
      !(actions = tocsin_relay_actions_read_file (o->actions_file, &error)))
    return fail ("%s", error->message);
  spec.actions = actions;
  if (!read_forwards_file (o, &error))
    return fail ("%s", error->message);
  spec.forwards = o->forwards;

  store = open_store (o, FALSE, &error);
  if (store == NULL)
    return fail ("%s", error->message);
  if (signature_spec (o, store, 0, &spec, &secret, &error))
    channel = tocsin_relay_store_create_channel (store, &spec, &owner_key, &error);
  tocsin_relay_store_free (store);
  if (channel == NULL)
    return fail ("%s", error->message);

  if (o->json)
    {
      g_autoptr(JsonObject) object = tocsin_relay_channel_to_owner_json (channel, o->public_url);

      json_object_set_string_member (object, "owner_key", owner_key);
      if (secret)
        json_object_set_string_member (object, "signature_secret", secret);
      print_json (object);
    }
  else
    {
      print_channel (channel, o->public_url, owner_key, secret);
      if (o->preset != NULL)
        g_print (_("  Sender setup:   %s\n"),
                 tocsin_preset_get_setup (tocsin_preset_lookup (o->preset)));
    }
  return EXIT_SUCCESS;
}

static int
channel_list (Options *o)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) channels = NULL;
  TocsinRelayStore *store;

  store = open_store (o, TRUE, &error);
  if (store == NULL)
    return fail ("%s", error->message);
  channels = tocsin_relay_store_list_channels (store, &error);
  tocsin_relay_store_free (store);
  if (channels == NULL)
    return fail ("%s", error->message);

  if (o->json)
    {
      g_autoptr(JsonObject) object = json_object_new ();
      JsonArray *array = json_array_new ();

      for (guint i = 0; i < channels->len; i++)
        json_array_add_object_element (array,
                                       tocsin_relay_channel_to_owner_json (channels->pdata[i],
                                                                           o->public_url));
      json_object_set_array_member (object, "channels", array);
      print_json (object);
      return EXIT_SUCCESS;
    }

  if (channels->len == 0)
    {
      g_print (_("No channels yet. Create one with: tocsin-relay channel create --name=NAME\n"));
      return EXIT_SUCCESS;
    }
  for (guint i = 0; i < channels->len; i++)
    {
      TocsinRelayChannel *channel = channels->pdata[i];

      g_print ("%6" G_GINT64_FORMAT "  %-30s  %s/s/%s\n", channel->id, channel->name,
               o->public_url, channel->subscribe_token);
    }
  return EXIT_SUCCESS;
}

int
tocsin_relay_cli_channel (int    argc,
                          char **argv)
{
  g_auto(Options) o = { 0 };
  g_autoptr(GError) error = NULL;
  const char *action;
  gint64 id = 0;

  if (!parse_options (&o, "channel",
                      N_("create|list|presets|show ID|update ID|edit ID|pause ID|resume ID|"
                         "rotate-trigger ID|rotate-subscribe ID|rotate-signature ID|"
                         "rotate-email ID|delete ID"),
                      _("Create and manage channels."), TRUE, &argc, &argv, &error))
    return usage (error->message);
  if (argc < 1)
    return usage (_("Say what to do: channel create|list|presets|show|update|edit|pause|resume|"
                    "rotate-trigger|rotate-subscribe|rotate-signature|rotate-email|delete; see "
                    "tocsin-relay channel --help"));
  action = argv[0];

  if (g_strcmp0 (o.preset, "help") == 0 &&
      (g_str_equal (action, "create") || g_str_equal (action, "update")))
    return channel_presets (&o);
  if (g_str_equal (action, "create") || g_str_equal (action, "list") ||
      g_str_equal (action, "presets"))
    {
      if (argc > 1)
        return usage (_("Unexpected argument; see tocsin-relay channel --help"));
      if (g_str_equal (action, "presets"))
        return channel_presets (&o);
      return g_str_equal (action, "create") ? channel_create (&o) : channel_list (&o);
    }

  if (!g_str_equal (action, "show") && !g_str_equal (action, "update") &&
      !g_str_equal (action, "rotate-trigger") && !g_str_equal (action, "rotate-subscribe") &&
      !g_str_equal (action, "delete") && !g_str_equal (action, "edit") &&
      !g_str_equal (action, "pause") && !g_str_equal (action, "resume") &&
      !g_str_equal (action, "rotate-signature") && !g_str_equal (action, "rotate-email"))
    {
      g_autofree char *text = g_strdup_printf (_("Unknown command “channel %s”; see "
                                                 "tocsin-relay channel --help"), action);
      return usage (text);
    }
  if (argc != 2 || !parse_id (argv[1], &id))
    {
      g_autofree char *text = g_strdup_printf (_("Say which channel by its number: "
                                                 "tocsin-relay channel %s ID"), action);
      return usage (text);
    }
  if (!g_str_equal (action, "update") && !g_str_equal (action, "edit") &&
      (o.name || o.description || o.title || o.body || o.link || o.condition || o.preset ||
       o.signature || o.signature_secret || o.signature_header || o.actions_file ||
       o.forwards_file))
    return usage (_("Channel fields (--name, --title, --preset, ...) only go with create and "
                    "update"));
  return channel_one (&o, action, id);
}

int
tocsin_relay_cli_key (int    argc,
                      char **argv)
{
  g_auto(Options) o = { 0 };
  g_autoptr(GError) error = NULL;
  g_autofree char *key = NULL;
  TocsinRelayStore *store;

  if (!parse_options (&o, "key", "create",
                      _("Create a key that may create channels on a relay that is not open, "
                        "and manage every channel."), FALSE, &argc, &argv, &error))
    return usage (error->message);
  if (argc != 1 || !g_str_equal (argv[0], "create"))
    return usage (_("Say what to do: tocsin-relay key create"));

  store = open_store (&o, FALSE, &error);
  if (store == NULL)
    return fail ("%s", error->message);
  key = tocsin_relay_store_create_admin_key (store, &error);
  tocsin_relay_store_free (store);
  if (key == NULL)
    return fail ("%s", error->message);

  if (o.json)
    {
      g_autoptr(JsonObject) object = json_object_new ();

      json_object_set_string_member (object, "key", key);
      print_json (object);
    }
  else
    {
      g_print ("%s\n", key);
      g_printerr (_("This key is shown only now. Send it as “Authorization: Bearer <key>”.\n"));
    }
  return EXIT_SUCCESS;
}

int
tocsin_relay_cli_subscribers (int    argc,
                              char **argv)
{
  g_auto(Options) o = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(JsonArray) subscribers = NULL;
  TocsinRelayStore *store;
  gint64 id = 0;

  if (!parse_options (&o, "subscribers", "ID", _("List who is connected to a channel."), FALSE,
                      &argc, &argv, &error))
    return usage (error->message);
  if (argc != 1 || !parse_id (argv[0], &id))
    return usage (_("Say which channel by its number: tocsin-relay subscribers ID"));

  store = open_store (&o, TRUE, &error);
  if (store == NULL)
    return fail ("%s", error->message);
  channel = tocsin_relay_store_find_by_id (store, id);
  if (channel != NULL)
    subscribers = tocsin_relay_store_list_presence (store, id, &error);
  tocsin_relay_store_free (store);
  if (channel == NULL)
    return fail (_("There is no channel %" PRId64), id);
  if (subscribers == NULL)
    return fail ("%s", error->message);

  if (o.json)
    {
      g_autoptr(JsonObject) object = json_object_new ();

      json_object_set_int_member (object, "id", id);
      json_object_set_array_member (object, "subscribers", json_array_ref (subscribers));
      print_json (object);
      return EXIT_SUCCESS;
    }

  if (json_array_get_length (subscribers) == 0)
    {
      g_print (_("No one is connected to channel %" PRId64 ".\n"), id);
      return EXIT_SUCCESS;
    }
  for (guint i = 0; i < json_array_get_length (subscribers); i++)
    {
      JsonObject *s = json_array_get_object_element (subscribers, i);

      g_print ("%-5s  %-40s  %s\n", json_object_get_string_member (s, "kind"),
               json_object_get_string_member (s, "peer"),
               json_object_get_string_member (s, "connectedAt"));
    }
  return EXIT_SUCCESS;
}

static void
print_direct (TocsinRelayChannel *inbox,
              const char         *public_url,
              const char         *owner_key)
{
  g_autoptr(JsonObject) object = tocsin_relay_direct_to_json (inbox, public_url);

  g_print (_("Direct key %" PRId64 "\n"), inbox->id);
  g_print (_("  Direct URL:     %s   (a secret: it rings you)\n"),
           json_object_get_string_member (object, "direct_url"));
  g_print (_("  Subscribe URL:  %s   (open it on each of your desktops)\n"),
           json_object_get_string_member (object, "subscribe_url"));
  if (owner_key)
    g_print (_("  Owner key:      %s   (shown only now: it shows and rotates this key over "
               "HTTP)\n"), owner_key);
  g_print (_("  Try it:         curl -d title=Hello -d body=World %s\n"),
           json_object_get_string_member (object, "direct_url"));
}

int
tocsin_relay_cli_direct (int    argc,
                         char **argv)
{
  g_auto(Options) o = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinRelayChannel) inbox = NULL;
  g_autofree char *owner_key = NULL;
  TocsinRelayStore *store;
  const char *action;
  gint64 id = 0;

  if (!parse_options (&o, "direct", N_("create|show ID|rotate ID"),
                      _("Create, show and rotate Direct keys (Echobell's /d/{key}): each rings "
                        "only its owner's desktops."), FALSE, &argc, &argv, &error))
    return usage (error->message);
  if (argc < 1)
    return usage (_("Say what to do: direct create|show|rotate; see tocsin-relay direct "
                    "--help"));
  action = argv[0];
  if (g_str_equal (action, "create"))
    {
      if (argc != 1)
        return usage (_("Unexpected argument; see tocsin-relay direct --help"));
    }
  else if (g_str_equal (action, "show") || g_str_equal (action, "rotate"))
    {
      if (argc != 2 || !parse_id (argv[1], &id))
        {
          g_autofree char *text = g_strdup_printf (_("Say which Direct key by its number: "
                                                     "tocsin-relay direct %s ID"), action);
          return usage (text);
        }
    }
  else
    {
      g_autofree char *text = g_strdup_printf (_("Unknown command “direct %s”; see "
                                                 "tocsin-relay direct --help"), action);
      return usage (text);
    }

  store = open_store (&o, id == 0 ? FALSE : TRUE, &error);
  if (store == NULL)
    return fail ("%s", error->message);
  if (id == 0)
    inbox = tocsin_relay_store_create_direct (store, &owner_key, &error);
  else
    {
      inbox = tocsin_relay_store_find_by_id (store, id);
      if (inbox == NULL || !inbox->direct)
        {
          g_clear_pointer (&inbox, tocsin_relay_channel_unref);
          g_set_error (&error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND,
                       _("There is no Direct key %" PRId64), id);
        }
      else if (g_str_equal (action, "rotate"))
        {
          g_clear_pointer (&inbox, tocsin_relay_channel_unref);
          inbox = tocsin_relay_store_rotate_trigger (store, id, &error);
        }
    }
  tocsin_relay_store_free (store);
  if (inbox == NULL)
    return fail ("%s", error->message);

  if (o.json)
    {
      g_autoptr(JsonObject) object = tocsin_relay_direct_to_json (inbox, o.public_url);

      if (owner_key)
        json_object_set_string_member (object, "owner_key", owner_key);
      print_json (object);
    }
  else
    {
      if (g_str_equal (action, "rotate"))
        g_print (_("The old Direct URL no longer works. The new one:\n"));
      print_direct (inbox, o.public_url, owner_key);
    }
  return EXIT_SUCCESS;
}

/* ---- deliveries (issue 15) ---- */

/* "12:40:00.123Z" of an RFC 3339 time "2026-12-06T12:40:00.123Z", or "-". */
static const char *
short_time (JsonObject *object,
            const char *member)
{
  const char *text = json_object_get_string_member_with_default (object, member, NULL);
  const char *t;

  if (text == NULL)
    return "-";
  t = strchr (text, 'T');
  return t ? t + 1 : text;
}

/* The channel named by @text: its id, or its name when exactly one channel has it. */
static gint64
find_channel (TocsinRelayStore  *store,
              const char        *text,
              GError           **error)
{
  g_autoptr(GPtrArray) channels = NULL;
  gint64 id = 0, found = 0;
  guint matches = 0;

  if (parse_id (text, &id))
    {
      g_autoptr(TocsinRelayChannel) channel = tocsin_relay_store_find_by_id (store, id);

      if (channel != NULL)
        return id;
    }
  channels = tocsin_relay_store_list_channels (store, error);
  if (channels == NULL)
    return 0;
  for (guint i = 0; i < channels->len; i++)
    {
      TocsinRelayChannel *channel = channels->pdata[i];

      if (g_str_equal (channel->name, text))
        {
          found = channel->id;
          matches++;
        }
    }
  if (matches == 1)
    return found;
  if (matches > 1)
    g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_INVALID,
                 _("%u channels are named “%s”; say which by its number"), matches, text);
  else
    g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND,
                 _("There is no channel “%s”"), text);
  return 0;
}

#define ROW_FORMAT "%-13s  %-11s  %-16s  %-40s  %-34s  %8s  %s\n"

int
tocsin_relay_cli_deliveries (int    argc,
                             char **argv)
{
  g_auto(Options) o = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) log = NULL;
  const GOptionEntry entries[] = {
    { "limit", 0, 0, G_OPTION_ARG_INT, &o.limit,
      N_("Show the newest N deliveries (default 100, at most 1000)"), N_("N") },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  TocsinRelayStore *store;
  JsonArray *deliveries, *attempts;
  gint64 id;

  /* parse_options takes the common flags; --limit is this command's own. */
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  g_option_context_set_ignore_unknown_options (context, TRUE);
  g_option_context_set_help_enabled (context, FALSE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return usage (error->message);
  if (!parse_options (&o, "deliveries", "CHANNEL",
                      _("Show the log of a channel's forwards: every attempt, newest first, of "
                        "its newest deliveries (--limit N, default 100)."), FALSE, &argc, &argv,
                      &error))
    return usage (error->message);
  if (argc != 1)
    return usage (_("Say which channel by its number or name: tocsin-relay deliveries CHANNEL"));
  if (o.limit == 0)
    o.limit = 100;
  if (o.limit < 1 || o.limit > 1000)
    return usage (_("--limit must be a number from 1 to 1000"));

  store = open_store (&o, TRUE, &error);
  if (store == NULL)
    return fail ("%s", error->message);
  id = find_channel (store, argv[0], &error);
  if (id > 0)
    log = tocsin_relay_store_list_deliveries (store, id, (guint) o.limit, &error);
  tocsin_relay_store_free (store);
  if (log == NULL)
    return fail ("%s", error->message);

  if (o.json)
    {
      json_object_set_int_member (log, "id", id);
      print_json (log);
      return EXIT_SUCCESS;
    }

  deliveries = json_object_get_array_member (log, "deliveries");
  attempts = json_object_get_array_member (log, "attempts");
  if (json_array_get_length (deliveries) == 0)
    {
      g_print (_("Channel %" PRId64 " has sent no forwards yet.\n"), id);
      return EXIT_SUCCESS;
    }
  g_print (ROW_FORMAT, _("TIME"), _("EVENT"), _("FORWARD"), _("URL"), _("STATUS"),
           _("DURATION"), _("NEXT RETRY"));
  for (guint i = 0; i < json_array_get_length (attempts); i++)
    {
      JsonObject *a = json_array_get_object_element (attempts, i);
      const char *error_text = json_object_get_string_member_with_default (a, "error", NULL);
      g_autofree char *status = NULL, *duration = NULL;
      int64_t attempt = json_object_get_int_member (a, "attempt");

      if (error_text != NULL)
        /* TRANSLATORS: attempt number and what went wrong */
        status = g_strdup_printf (_("#%" PRId64 " %s"), attempt, error_text);
      else
        /* TRANSLATORS: attempt number and the HTTP status of a success */
        status = g_strdup_printf (_("#%" PRId64 " %" PRId64 " OK"), attempt,
                                  (int64_t) json_object_get_int_member (a, "status"));
      duration = g_strdup_printf (_("%" PRId64 " ms"),
                                  (int64_t) json_object_get_int_member (a, "duration_ms"));
      g_print (ROW_FORMAT, short_time (a, "at"), json_object_get_string_member (a, "event"),
               json_object_get_string_member (a, "forward"),
               json_object_get_string_member (a, "url"), status, duration,
               short_time (a, "next_retry_at"));
    }
  /* Deliveries waiting for their first or next attempt. */
  for (guint i = 0; i < json_array_get_length (deliveries); i++)
    {
      JsonObject *d = json_array_get_object_element (deliveries, i);
      const char *state = json_object_get_string_member (d, "state");

      if (g_str_equal (state, "pending") || g_str_equal (state, "held"))
        g_print (ROW_FORMAT, short_time (d, "created_at"),
                 json_object_get_string_member (d, "event"),
                 json_object_get_string_member (d, "forward"), "-",
                 g_str_equal (state, "held") ? _("held back: its host is failing")
                                             : _("pending"),
                 "-", short_time (d, "next_attempt_at"));
    }
  return EXIT_SUCCESS;
}
