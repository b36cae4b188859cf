/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-store-pg.c: the relay store's PostgreSQL backend (issue 16), through libpq.
 *
 * Ids stay ordered per channel with several writers (several nodes, or several group commits in
 * flight): a batch first locks the rows of its channels (SELECT … FOR UPDATE, in id order so that
 * two batches never wait on each other in a cycle), then numbers each message with
 * `UPDATE channels SET last_id = last_id + 1 … RETURNING last_id` in the same transaction as the
 * INSERT. The row lock is held until COMMIT, so message N + 1 of a channel is numbered only after
 * the transaction holding N has committed or rolled back (then N is free again): a reader that
 * sees N committed has every committed id below it. Ids have no holes except where a rolled back
 * batch was followed by nothing.
 *
 * Dedup (eventId, Idempotency-Key, webhook-id) across nodes: the dedup row of a key is looked up
 * under the same channel lock, and written with INSERT … ON CONFLICT on its primary key
 * (channel_id, key_hash); two nodes taking the same key for a channel are serialised by the lock,
 * and the constraint holds whatever happens.
 *
 * A write is reported only once COMMIT has returned, with the server's synchronous_commit (on:
 * flushed on the primary, and on a synchronous standby when the operator has configured one).
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-relay-store-pg.h"

gboolean
tocsin_relay_store_pg_is_url (const char *database)
{
  return database != NULL
         && (g_str_has_prefix (database, "postgresql://")
             || g_str_has_prefix (database, "postgres://"));
}

#ifndef HAVE_LIBPQ

const char *
tocsin_relay_store_pg_missing (void)
{
  return _("This tocsin-relay was built without libpq: install libpq-dev and build it again to "
           "use PostgreSQL.");
}

TocsinRelayStorePg *
tocsin_relay_store_pg_open (const char  *conninfo,
                            GError     **error)
{
  g_set_error_literal (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_FAILED,
                       tocsin_relay_store_pg_missing ());
  return NULL;
}

void
tocsin_relay_store_pg_free (TocsinRelayStorePg *pg)
{
}

/* Without libpq no handle can exist, so nothing below is ever reached. */
#define UNREACHABLE(value) G_STMT_START { g_return_val_if_reached (value); } G_STMT_END

TocsinRelayChannel *
tocsin_relay_store_pg_create_channel (TocsinRelayStorePg *pg, const TocsinRelayChannelSpec *spec,
                                      const char *kind, char **owner_key, GError **error)
{ UNREACHABLE (NULL); }
TocsinRelayChannel *
tocsin_relay_store_pg_find_by_trigger (TocsinRelayStorePg *pg, const char *token, GError **error)
{ UNREACHABLE (NULL); }
TocsinRelayChannel *
tocsin_relay_store_pg_find_by_subscribe (TocsinRelayStorePg *pg, const char *token,
                                         GError **error)
{ UNREACHABLE (NULL); }
TocsinRelayChannel *
tocsin_relay_store_pg_find_by_id (TocsinRelayStorePg *pg, gint64 id, GError **error)
{ UNREACHABLE (NULL); }
TocsinRelayChannel *
tocsin_relay_store_pg_rotate_trigger (TocsinRelayStorePg *pg, gint64 id, GError **error)
{ UNREACHABLE (NULL); }
TocsinRelayChannel *
tocsin_relay_store_pg_rotate_subscribe (TocsinRelayStorePg *pg, gint64 id, GError **error)
{ UNREACHABLE (NULL); }
gboolean
tocsin_relay_store_pg_delete_channel (TocsinRelayStorePg *pg, gint64 id, GError **error)
{ UNREACHABLE (FALSE); }
gboolean
tocsin_relay_store_pg_commit (TocsinRelayStorePg *pg, const TocsinRelayStorePgWrite *writes,
                              guint n_writes, TocsinRelayCommit **commits, GError **errors,
                              GError **error)
{ UNREACHABLE (FALSE); }
TocsinRelayReplayPage *
tocsin_relay_store_pg_replay_page (TocsinRelayStorePg *pg, gint64 channel_id, gint64 after_id,
                                   guint limit, gint64 retention, GError **error)
{ UNREACHABLE (NULL); }
gboolean
tocsin_relay_store_pg_prune (TocsinRelayStorePg *pg, gint64 retention, gint64 now_ms,
                             GError **error)
{ UNREACHABLE (FALSE); }
gboolean
tocsin_relay_store_pg_listen (TocsinRelayStorePg *pg, GError **error)
{ UNREACHABLE (FALSE); }
int
tocsin_relay_store_pg_socket (TocsinRelayStorePg *pg)
{ UNREACHABLE (-1); }
gboolean
tocsin_relay_store_pg_take_notifications (TocsinRelayStorePg *pg,
                                          TocsinRelayStorePgNotifyFunc func,
                                          gpointer user_data, GError **error)
{ UNREACHABLE (FALSE); }

#else /* HAVE_LIBPQ */

#include <libpq-fe.h>

#include "tocsin-json.h"
#include "tocsin-request.h"
#include "tocsin-token.h"
#include "tocsin-relay-actions.h"

/* Compared against when a token is unknown, so that an unknown token costs the same. */
static const char dummy_token[] = "________________________________";

/* pg_advisory_xact_lock key of the schema creation: "tocsin" in ASCII. */
#define SCHEMA_LOCK_KEY "116111099115105110"

struct _TocsinRelayStorePg
{
  PGconn *conn;
};

const char *
tocsin_relay_store_pg_missing (void)
{
  return _("The PostgreSQL store is not complete yet: admin keys, the public URL and settings, "
           "channel updates, Direct keys, email addresses, subscriber presence, forwards and "
           "their delivery queue, and fan-out between nodes still work only with SQLite "
           "(docs/deployment.md). "
           "Leave out --database to use SQLite.");
}

static const char schema[] =
  "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ");"
  "CREATE TABLE IF NOT EXISTS channels ("
  "  id BIGSERIAL PRIMARY KEY,"
  "  version BIGINT NOT NULL DEFAULT 1,"
  "  name TEXT NOT NULL,"
  "  description TEXT NOT NULL DEFAULT '',"
  "  title TEXT NOT NULL DEFAULT '',"
  "  body TEXT NOT NULL DEFAULT '',"
  "  link TEXT NOT NULL DEFAULT '',"
  "  condition TEXT NOT NULL DEFAULT '',"
  "  trigger_token TEXT NOT NULL,"
  "  trigger_hash TEXT NOT NULL UNIQUE,"
  "  subscribe_token TEXT NOT NULL,"
  "  subscribe_hash TEXT NOT NULL UNIQUE,"
  "  owner_hash TEXT NOT NULL UNIQUE,"
  "  created_at BIGINT NOT NULL,"
  "  last_id BIGINT NOT NULL DEFAULT 0,"
  "  kind TEXT NOT NULL DEFAULT 'webhook',"
  "  signature_scheme TEXT NOT NULL DEFAULT '',"
  "  signature_secret TEXT NOT NULL DEFAULT '',"
  "  signature_header TEXT NOT NULL DEFAULT '',"
  "  paused BOOLEAN NOT NULL DEFAULT FALSE,"
  "  email_token TEXT,"
  "  email_hash TEXT UNIQUE,"
  "  actions TEXT NOT NULL DEFAULT '[]',"
  "  forwards TEXT NOT NULL DEFAULT '[]');"
  "CREATE TABLE IF NOT EXISTS messages ("
  "  channel_id BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,"
  "  id BIGINT NOT NULL,"
  "  time_ms BIGINT NOT NULL,"
  "  data BYTEA NOT NULL,"
  "  PRIMARY KEY (channel_id, id));"
  "CREATE INDEX IF NOT EXISTS messages_time ON messages (time_ms);"
  /* Only hashes: the key and the content a sender used are not kept. */
  "CREATE TABLE IF NOT EXISTS dedup ("
  "  channel_id BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,"
  "  key_hash TEXT NOT NULL,"
  "  content_hash TEXT NOT NULL,"
  "  message_id BIGINT NOT NULL,"
  "  time_ms BIGINT NOT NULL,"
  "  PRIMARY KEY (channel_id, key_hash));"
  "CREATE INDEX IF NOT EXISTS dedup_time ON dedup (time_ms);";

#define CHANNEL_COLUMNS \
  "id, version, name, description, title, body, link, condition, trigger_token, " \
  "subscribe_token, created_at, last_id, kind, signature_scheme, signature_secret, " \
  "signature_header, paused, email_token, actions, forwards"

static gboolean
set_pg_error (TocsinRelayStorePg  *pg,
              const PGresult      *result,
              const char          *what,
              GError             **error)
{
  const char *message = result ? PQresultErrorMessage (result) : "";

  if (message == NULL || message[0] == '\0')
    message = PQerrorMessage (pg->conn);
  g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_FAILED,
               /* Translators: %s: what the relay was doing, then PostgreSQL's message */
               _("PostgreSQL failed while %s: %s"), what, message);
  /* A lost connection is reopened for the next call; this one has failed. */
  if (PQstatus (pg->conn) == CONNECTION_BAD)
    PQreset (pg->conn);
  return FALSE;
}

/* Runs @sql with text parameters (NULL-terminated @params; a NULL value is SQL NULL); NULL with
 * @error unless it returned @expected. */
static PGresult *
exec_params (TocsinRelayStorePg  *pg,
             const char          *sql,
             ExecStatusType       expected,
             const char          *what,
             GError             **error,
             int                  n_params,
             const char * const  *params)
{
  PGresult *result = PQexecParams (pg->conn, sql, n_params, NULL, params, NULL, NULL, 0);

  if (PQresultStatus (result) != expected)
    {
      set_pg_error (pg, result, what, error);
      PQclear (result);
      return NULL;
    }
  return result;
}

static gboolean
exec_command (TocsinRelayStorePg  *pg,
              const char          *sql,
              const char          *what,
              GError             **error)
{
  PGresult *result = exec_params (pg, sql, PGRES_COMMAND_OK, what, error, 0, NULL);

  PQclear (result);
  return result != NULL;
}

static void
rollback (TocsinRelayStorePg *pg)
{
  PQclear (PQexec (pg->conn, "ROLLBACK"));
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PGresult, PQclear)

TocsinRelayStorePg *
tocsin_relay_store_pg_open (const char  *conninfo,
                            GError     **error)
{
  g_autoptr(TocsinRelayStorePg) pg = g_new0 (TocsinRelayStorePg, 1);
  PGresult *result;

  g_return_val_if_fail (conninfo != NULL, NULL);

  pg->conn = PQconnectdb (conninfo);
  if (PQstatus (pg->conn) != CONNECTION_OK)
    {
      g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_FAILED,
                   _("Could not connect to PostgreSQL: %s"), PQerrorMessage (pg->conn));
      return NULL;
    }
  if (PQserverVersion (pg->conn) < 150000)
    {
      g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_FAILED,
                   _("The relay needs PostgreSQL 15 or newer; the server is version %d."),
                   PQserverVersion (pg->conn) / 10000);
      return NULL;
    }
  /* A multi-statement simple query is one transaction. */
  result = PQexec (pg->conn, schema);
  if (PQresultStatus (result) != PGRES_COMMAND_OK && PQresultStatus (result) != PGRES_TUPLES_OK)
    {
      set_pg_error (pg, result, _("creating the schema"), error);
      PQclear (result);
      return NULL;
    }
  PQclear (result);
  return g_steal_pointer (&pg);
}

void
tocsin_relay_store_pg_free (TocsinRelayStorePg *pg)
{
  if (pg == NULL)
    return;
  g_clear_pointer (&pg->conn, PQfinish);
  g_free (pg);
}

static gint64
value_int64 (const PGresult *result,
             int             row,
             int             col)
{
  return g_ascii_strtoll (PQgetvalue (result, row, col), NULL, 10);
}

/* A channel's forwards from their stored JSON text, as the SQLite backend compiles them. */
static GPtrArray *
compile_forwards (const char  *source,
                  GError     **error)
{
  return tocsin_request_list_parse ("forwards", source, TOCSIN_REQUEST_MAX_FORWARDS, error);
}

/* Builds a channel from a row of CHANNEL_COLUMNS, as the SQLite backend does. */
static TocsinRelayChannel *
channel_from_row (const PGresult *result,
                  int             row)
{
  TocsinRelayChannel *channel = g_new0 (TocsinRelayChannel, 1);
  g_autoptr(GError) error = NULL;

  channel->ref_count = 1;
  channel->id = value_int64 (result, row, 0);
  channel->name = g_strdup (PQgetvalue (result, row, 2));
  channel->description = g_strdup (PQgetvalue (result, row, 3));
  channel->title_source = g_strdup (PQgetvalue (result, row, 4));
  channel->body_source = g_strdup (PQgetvalue (result, row, 5));
  channel->link_source = g_strdup (PQgetvalue (result, row, 6));
  channel->condition_source = g_strdup (PQgetvalue (result, row, 7));
  channel->trigger_token = g_strdup (PQgetvalue (result, row, 8));
  channel->subscribe_token = g_strdup (PQgetvalue (result, row, 9));
  channel->created_at = value_int64 (result, row, 10);
  channel->last_id = value_int64 (result, row, 11);
  channel->direct = g_str_equal (PQgetvalue (result, row, 12), "direct");
  channel->signature_scheme = g_strdup (PQgetvalue (result, row, 13));
  channel->signature_secret = g_strdup (PQgetvalue (result, row, 14));
  channel->signature_header = g_strdup (PQgetvalue (result, row, 15));
  channel->paused = g_str_equal (PQgetvalue (result, row, 16), "t");
  channel->email_token = g_strdup (PQgetvalue (result, row, 17));
  channel->actions = tocsin_relay_actions_load (channel->id, PQgetvalue (result, row, 18));
  channel->forwards_source = g_strdup (PQgetvalue (result, row, 19));
  channel->forwards = compile_forwards (channel->forwards_source, &error);
  if (channel->forwards == NULL)
    {
      g_message ("Channel %" G_GINT64_FORMAT ": its saved forwards no longer compile: %s",
                 channel->id, error->message);
      g_clear_error (&error);
      channel->forwards = g_ptr_array_new ();
    }

  /* Templates were checked when they were saved; one that no longer compiles (a newer template
   * library) renders as empty rather than taking the relay down. */
  if (!(channel->title = tocsin_template_new ("title", channel->title_source, &error))
      || !(channel->body = tocsin_template_new ("body", channel->body_source, &error))
      || !(channel->link = tocsin_template_new ("link", channel->link_source, &error))
      || !(channel->condition = tocsin_template_new_condition ("condition",
                                                               channel->condition_source,
                                                               &error)))
    {
      g_message ("Channel %" G_GINT64_FORMAT ": a saved template no longer compiles: %s",
                 channel->id, error->message);
      g_clear_pointer (&channel->title, tocsin_template_unref);
      g_clear_pointer (&channel->body, tocsin_template_unref);
      g_clear_pointer (&channel->link, tocsin_template_unref);
      g_clear_pointer (&channel->condition, tocsin_template_unref);
      channel->title = tocsin_template_new ("title", NULL, NULL);
      channel->body = tocsin_template_new ("body", NULL, NULL);
      channel->link = tocsin_template_new ("link", NULL, NULL);
      channel->condition = tocsin_template_new_condition ("condition", NULL, NULL);
    }
  return channel;
}

static TocsinRelayChannel *
select_channel (TocsinRelayStorePg  *pg,
                const char          *sql,
                const char          *param,
                GError             **error)
{
  const char *params[] = { param };
  g_autoptr(PGresult) result = exec_params (pg, sql, PGRES_TUPLES_OK, _("reading a channel"),
                                            error, 1, params);

  if (result == NULL || PQntuples (result) == 0)
    return NULL;
  return channel_from_row (result, 0);
}

static gboolean
not_found (gint64   id,
           GError **error)
{
  g_set_error (error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND,
               _("No channel %" G_GINT64_FORMAT), id);
  return FALSE;
}

static const char *
empty_if_null (const char *text)
{
  return text ? text : "";
}

TocsinRelayChannel *
tocsin_relay_store_pg_create_channel (TocsinRelayStorePg            *pg,
                                      const TocsinRelayChannelSpec  *spec,
                                      const char                    *kind,
                                      char                         **owner_key,
                                      GError                       **error)
{
  g_autofree char *trigger = NULL, *subscribe = NULL, *owner = NULL, *email = NULL;
  g_autofree char *trigger_hash = NULL, *subscribe_hash = NULL, *owner_hash = NULL;
  g_autofree char *email_hash = NULL, *name = NULL, *created_at = NULL;
  g_autoptr(PGresult) result = NULL;
  const char *params[21];
  TocsinRelayChannel *channel;

  g_return_val_if_fail (pg != NULL, NULL);
  g_return_val_if_fail (spec != NULL && spec->name != NULL, NULL);

  if (!(trigger = tocsin_token_new (error)) ||
      !(subscribe = tocsin_token_new (error)) ||
      !(owner = tocsin_token_new (error)) ||
      !(email = tocsin_token_new_mail (error)))
    return NULL;
  trigger_hash = tocsin_token_hash (trigger);
  subscribe_hash = tocsin_token_hash (subscribe);
  owner_hash = tocsin_token_hash (owner);
  email_hash = tocsin_token_hash (email);
  name = g_strstrip (g_strdup (spec->name));
  created_at = g_strdup_printf ("%" G_GINT64_FORMAT, g_get_real_time () / G_USEC_PER_SEC);

  params[0] = name;
  params[1] = empty_if_null (spec->description);
  params[2] = empty_if_null (spec->title);
  params[3] = empty_if_null (spec->body);
  params[4] = empty_if_null (spec->link);
  params[5] = empty_if_null (spec->condition);
  params[6] = trigger;
  params[7] = trigger_hash;
  params[8] = subscribe;
  params[9] = subscribe_hash;
  params[10] = owner_hash;
  params[11] = created_at;
  params[12] = empty_if_null (kind);
  params[13] = empty_if_null (spec->signature);
  params[14] = empty_if_null (spec->signature_secret);
  params[15] = empty_if_null (spec->signature_header);
  params[16] = spec->set_paused && spec->paused ? "t" : "f";
  params[17] = email;
  params[18] = email_hash;
  params[19] = spec->actions != NULL ? spec->actions : "[]";
  params[20] = spec->forwards != NULL ? spec->forwards : "[]";
  result = exec_params (pg,
                        "INSERT INTO channels (name, description, title, body, link, condition,"
                        " trigger_token, trigger_hash, subscribe_token, subscribe_hash,"
                        " owner_hash, created_at, kind, signature_scheme, signature_secret,"
                        " signature_header, paused, email_token, email_hash, actions, forwards)"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
                        " $15, $16, $17, $18, $19, $20, $21) RETURNING " CHANNEL_COLUMNS,
                        PGRES_TUPLES_OK, _("creating a channel"), error,
                        G_N_ELEMENTS (params), params);
  if (result == NULL)
    return NULL;
  channel = channel_from_row (result, 0);
  if (owner_key)
    *owner_key = g_steal_pointer (&owner);
  return channel;
}

static TocsinRelayChannel *
find_by_token (TocsinRelayStorePg  *pg,
               const char          *column,
               const char          *token,
               GError             **error)
{
  g_autofree char *hash = NULL, *sql = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(GError) local_error = NULL;
  gboolean equal;

  g_return_val_if_fail (pg != NULL, NULL);

  if (token == NULL)
    token = "";
  hash = tocsin_token_hash (token);
  sql = g_strdup_printf ("SELECT " CHANNEL_COLUMNS " FROM channels WHERE %s_hash = $1", column);
  channel = select_channel (pg, sql, hash, &local_error);
  if (local_error)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  /* The hash found the row; the token itself is compared in constant time, and an unknown token
   * costs the same comparison. */
  equal = tocsin_token_equal (channel == NULL ? dummy_token
                              : column[0] == 't' ? channel->trigger_token
                              : channel->subscribe_token, token);
  return equal ? g_steal_pointer (&channel) : NULL;
}

TocsinRelayChannel *
tocsin_relay_store_pg_find_by_trigger (TocsinRelayStorePg  *pg,
                                       const char          *token,
                                       GError             **error)
{
  return find_by_token (pg, "trigger", token, error);
}

TocsinRelayChannel *
tocsin_relay_store_pg_find_by_subscribe (TocsinRelayStorePg  *pg,
                                         const char          *token,
                                         GError             **error)
{
  return find_by_token (pg, "subscribe", token, error);
}

TocsinRelayChannel *
tocsin_relay_store_pg_find_by_id (TocsinRelayStorePg  *pg,
                                  gint64               id,
                                  GError             **error)
{
  g_autofree char *text = g_strdup_printf ("%" G_GINT64_FORMAT, id);

  g_return_val_if_fail (pg != NULL, NULL);
  return select_channel (pg, "SELECT " CHANNEL_COLUMNS " FROM channels WHERE id = $1", text,
                         error);
}

static TocsinRelayChannel *
rotate (TocsinRelayStorePg  *pg,
        gint64               id,
        const char          *column,
        GError             **error)
{
  g_autofree char *token = NULL, *hash = NULL, *sql = NULL, *text = NULL;
  g_autoptr(PGresult) result = NULL;
  const char *params[3];

  g_return_val_if_fail (pg != NULL, NULL);

  if (!(token = tocsin_token_new (error)))
    return NULL;
  hash = tocsin_token_hash (token);
  text = g_strdup_printf ("%" G_GINT64_FORMAT, id);
  params[0] = text;
  params[1] = token;
  params[2] = hash;
  /* One statement: the row and the notice to other nodes (sent on its commit) go together. */
  sql = g_strdup_printf ("WITH u AS (UPDATE channels SET version = version + 1, %s_token = $2,"
                         " %s_hash = $3 WHERE id = $1 RETURNING " CHANNEL_COLUMNS ")"
                         " SELECT u.*, pg_notify ('tocsin_channels', u.id || ' rotated') FROM u",
                         column, column);
  result = exec_params (pg, sql, PGRES_TUPLES_OK, _("rotating a token"), error, 3, params);
  if (result == NULL)
    return NULL;
  if (PQntuples (result) == 0)
    {
      not_found (id, error);
      return NULL;
    }
  return channel_from_row (result, 0);
}

TocsinRelayChannel *
tocsin_relay_store_pg_rotate_trigger (TocsinRelayStorePg  *pg,
                                      gint64               id,
                                      GError             **error)
{
  return rotate (pg, id, "trigger", error);
}

TocsinRelayChannel *
tocsin_relay_store_pg_rotate_subscribe (TocsinRelayStorePg  *pg,
                                        gint64               id,
                                        GError             **error)
{
  return rotate (pg, id, "subscribe", error);
}

gboolean
tocsin_relay_store_pg_delete_channel (TocsinRelayStorePg  *pg,
                                      gint64               id,
                                      GError             **error)
{
  g_autofree char *text = g_strdup_printf ("%" G_GINT64_FORMAT, id);
  const char *params[] = { text };
  g_autoptr(PGresult) result = NULL;

  g_return_val_if_fail (pg != NULL, FALSE);

  /* Its messages and dedup keys go with it (ON DELETE CASCADE), and other nodes hear of it on
   * commit, all in one statement. */
  result = exec_params (pg, "WITH d AS (DELETE FROM channels WHERE id = $1 RETURNING id)"
                        " SELECT pg_notify ('tocsin_channels', d.id || ' deleted') FROM d",
                        PGRES_TUPLES_OK, _("deleting a channel"), error, 1, params);
  if (result == NULL)
    return FALSE;
  if (PQntuples (result) == 0)
    return not_found (id, error);
  return TRUE;
}

/* One message inside the batch's transaction, its channel locked. NULL with @error when a
 * statement failed (the transaction is then aborted). */
static TocsinRelayCommit *
write_message (TocsinRelayStorePg             *pg,
               const TocsinRelayStorePgWrite  *write,
               GError                        **error)
{
  g_autoptr(TocsinRelayCommit) commit = g_new0 (TocsinRelayCommit, 1);
  g_autoptr(PGresult) result = NULL;
  g_autofree char *channel_id = g_strdup_printf ("%" G_GINT64_FORMAT, write->channel_id);
  g_autofree char *time_ms = g_strdup_printf ("%" G_GINT64_FORMAT, write->message->time_ms);
  g_autofree char *id_text = NULL;
  g_autofree char *data = NULL;
  gsize length;

  if (write->key_hash != NULL)
    {
      g_autofree char *since = g_strdup_printf ("%" G_GINT64_FORMAT, write->message->time_ms
                                                - TOCSIN_RELAY_DEDUP_WINDOW_SECONDS * 1000);
      const char *params[] = { channel_id, write->key_hash, since };

      result = exec_params (pg, "SELECT message_id, content_hash FROM dedup"
                            " WHERE channel_id = $1 AND key_hash = $2 AND time_ms >= $3",
                            PGRES_TUPLES_OK, _("looking up a dedup key"), error, 3, params);
      if (result == NULL)
        return NULL;
      if (PQntuples (result) > 0)
        {
          gint64 previous = value_int64 (result, 0, 0);

          if (g_strcmp0 (PQgetvalue (result, 0, 1), empty_if_null (write->content_hash)) == 0)
            {
              commit->id = previous;
              commit->duplicate = TRUE;
              return g_steal_pointer (&commit);
            }
          commit->replaces = previous;
        }
      g_clear_pointer (&result, PQclear);
    }

  {
    const char *params[] = { channel_id };

    result = exec_params (pg, "UPDATE channels SET last_id = last_id + 1 WHERE id = $1"
                          " RETURNING last_id", PGRES_TUPLES_OK, _("numbering a message"),
                          error, 1, params);
    if (result == NULL)
      return NULL;
    g_assert (PQntuples (result) == 1);  /* locked by the batch: it exists */
    commit->id = value_int64 (result, 0, 0);
    g_clear_pointer (&result, PQclear);
  }

  write->message->id = commit->id;
  write->message->channel = write->channel_id;
  write->message->replaces = commit->replaces;
  data = tocsin_message_to_data (write->message, &length);
  commit->message = g_bytes_new (data, length);
  id_text = g_strdup_printf ("%" G_GINT64_FORMAT, commit->id);

  /* Live only: the id still counts up, but nothing is kept. */
  if (write->retention > 0)
    {
      const char *values[] = { channel_id, id_text, time_ms, data };
      const int lengths[] = { 0, 0, 0, (int) length };
      const int formats[] = { 0, 0, 0, 1 };

      result = PQexecParams (pg->conn, "INSERT INTO messages (channel_id, id, time_ms, data)"
                             " VALUES ($1, $2, $3, $4)", 4, NULL, values, lengths, formats, 0);
      if (PQresultStatus (result) != PGRES_COMMAND_OK)
        {
          set_pg_error (pg, result, _("storing a message"), error);
          return NULL;
        }
      g_clear_pointer (&result, PQclear);
    }

  if (write->key_hash != NULL)
    {
      const char *params[] = { channel_id, write->key_hash, empty_if_null (write->content_hash),
                               id_text, time_ms };

      result = exec_params (pg, "INSERT INTO dedup (channel_id, key_hash, content_hash,"
                            " message_id, time_ms) VALUES ($1, $2, $3, $4, $5)"
                            " ON CONFLICT (channel_id, key_hash) DO UPDATE SET"
                            " content_hash = EXCLUDED.content_hash,"
                            " message_id = EXCLUDED.message_id, time_ms = EXCLUDED.time_ms",
                            PGRES_COMMAND_OK, _("remembering a dedup key"), error, 5, params);
      if (result == NULL)
        return NULL;
    }
  return g_steal_pointer (&commit);
}

static int
compare_int64 (gconstpointer a,
               gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

gboolean
tocsin_relay_store_pg_commit (TocsinRelayStorePg             *pg,
                              const TocsinRelayStorePgWrite  *writes,
                              guint                           n_writes,
                              TocsinRelayCommit             **commits,
                              GError                        **errors,
                              GError                        **error)
{
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GHashTable) existing = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                                          NULL);
  g_autoptr(GHashTable) newest = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                                        NULL);
  g_autoptr(GString) array = g_string_new ("{");
  g_autoptr(PGresult) result = NULL;
  const char *params[1];

  g_return_val_if_fail (pg != NULL, FALSE);

  for (guint i = 0; i < n_writes; i++)
    {
      commits[i] = NULL;
      errors[i] = NULL;
      g_array_append_val (ids, writes[i].channel_id);
    }
  g_array_sort (ids, compare_int64);
  for (guint i = 0; i < ids->len; i++)
    g_string_append_printf (array, "%s%" G_GINT64_FORMAT, i ? "," : "",
                            g_array_index (ids, gint64, i));
  g_string_append_c (array, '}');
  params[0] = array->str;

  if (!exec_command (pg, "BEGIN", _("starting a transaction"), error))
    return FALSE;
  /* The channels' rows, locked in id order until COMMIT: see the top of the file. */
  result = exec_params (pg, "SELECT id FROM channels WHERE id = ANY ($1::bigint[])"
                        " ORDER BY id FOR UPDATE", PGRES_TUPLES_OK, _("locking channels"),
                        error, 1, params);
  if (result == NULL)
    goto fail;
  for (int row = 0; row < PQntuples (result); row++)
    {
      gint64 id = value_int64 (result, row, 0);

      g_hash_table_add (existing, g_memdup2 (&id, sizeof id));
    }

  for (guint i = 0; i < n_writes; i++)
    {
      if (!g_hash_table_contains (existing, &writes[i].channel_id))
        {
          g_set_error (&errors[i], TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND,
                       _("The channel was deleted"));
          continue;
        }
      commits[i] = write_message (pg, &writes[i], error);
      if (commits[i] == NULL)
        goto fail;
      if (!commits[i]->duplicate)
        g_hash_table_insert (newest, g_memdup2 (&writes[i].channel_id, sizeof (gint64)),
                             GINT_TO_POINTER (1));
    }
  if (g_hash_table_size (newest) > 0)
    {
      g_autoptr(GString) notices = g_string_new ("{");
      GHashTableIter iter;
      gpointer key;

      /* Each channel's newest id, read back under the lock; NOTIFY is sent only on COMMIT. */
      g_hash_table_iter_init (&iter, newest);
      while (g_hash_table_iter_next (&iter, &key, NULL))
        g_string_append_printf (notices, "%s%" G_GINT64_FORMAT, notices->len > 1 ? "," : "",
                                *(gint64 *) key);
      g_string_append_c (notices, '}');
      params[0] = notices->str;
      g_clear_pointer (&result, PQclear);
      result = exec_params (pg, "SELECT pg_notify ('tocsin_messages', id || ' ' || last_id)"
                            " FROM channels WHERE id = ANY ($1::bigint[])", PGRES_TUPLES_OK,
                            _("notifying other nodes"), error, 1, params);
      if (result == NULL)
        goto fail;
    }
  if (!exec_command (pg, "COMMIT", _("committing messages"), error))
    goto fail;
  return TRUE;

fail:
  rollback (pg);
  for (guint i = 0; i < n_writes; i++)
    {
      g_clear_pointer (&commits[i], tocsin_relay_commit_free);
      g_clear_error (&errors[i]);
    }
  return FALSE;
}

TocsinRelayReplayPage *
tocsin_relay_store_pg_replay_page (TocsinRelayStorePg  *pg,
                                   gint64               channel_id,
                                   gint64               after_id,
                                   guint                limit,
                                   gint64               retention,
                                   GError             **error)
{
  g_autoptr(TocsinRelayReplayPage) page = g_new0 (TocsinRelayReplayPage, 1);
  g_autoptr(PGresult) result = NULL;
  g_autofree char *channel = g_strdup_printf ("%" G_GINT64_FORMAT, channel_id);
  g_autofree char *after = g_strdup_printf ("%" G_GINT64_FORMAT, MAX (after_id, 0));
  g_autofree char *cutoff = g_strdup_printf ("%" G_GINT64_FORMAT,
                                             retention > 0
                                             ? g_get_real_time () / 1000 - retention * 1000
                                             : G_MAXINT64);
  g_autofree char *limit_text = limit > 0 ? g_strdup_printf ("%u", limit) : NULL;
  gint64 last_id, first_retained = 0;

  g_return_val_if_fail (pg != NULL, NULL);

  page->ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  page->messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);

  /* One snapshot, so that last_id and the rows agree. */
  if (!exec_command (pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                     _("starting a transaction"), error))
    return NULL;
  {
    const char *params[] = { channel };

    result = exec_params (pg, "SELECT last_id FROM channels WHERE id = $1", PGRES_TUPLES_OK,
                          _("replaying messages"), error, 1, params);
    if (result == NULL)
      goto fail;
    if (PQntuples (result) == 0)
      {
        not_found (channel_id, error);
        goto fail;
      }
    last_id = value_int64 (result, 0, 0);
    g_clear_pointer (&result, PQclear);
  }
  {
    const char *params[] = { channel, after, cutoff, limit_text };

    /* Binary results: data is BYTEA. A NULL LIMIT is no limit. */
    result = PQexecParams (pg->conn, "SELECT id, data FROM messages WHERE channel_id = $1"
                           " AND id > $2 AND time_ms >= $3 ORDER BY id LIMIT $4::bigint",
                           4, NULL, params, NULL, NULL, 1);
    if (PQresultStatus (result) != PGRES_TUPLES_OK)
      {
        set_pg_error (pg, result, _("replaying messages"), error);
        goto fail;
      }
    for (int row = 0; row < PQntuples (result); row++)
      {
        gint64 id;

        g_assert (PQgetlength (result, row, 0) == 8);
        memcpy (&id, PQgetvalue (result, row, 0), 8);
        id = GINT64_FROM_BE (id);
        if (first_retained == 0)
          first_retained = id;
        g_array_append_val (page->ids, id);
        g_ptr_array_add (page->messages, g_bytes_new (PQgetvalue (result, row, 1),
                                                      PQgetlength (result, row, 1)));
      }
  }
  exec_command (pg, "COMMIT", _("ending a transaction"), NULL);

  /* A cursor (not "everything") older than what is kept: name what can't be replayed. */
  if (after_id >= 0)
    {
      gint64 to = first_retained ? first_retained - 1 : last_id;

      if (to > after_id)
        {
          page->gap_from = after_id + 1;
          page->gap_to = to;
        }
    }
  return g_steal_pointer (&page);

fail:
  rollback (pg);
  return NULL;
}

gboolean
tocsin_relay_store_pg_prune (TocsinRelayStorePg  *pg,
                             gint64               retention,
                             gint64               now_ms,
                             GError             **error)
{
  g_autofree char *messages = g_strdup_printf ("%" G_GINT64_FORMAT,
                                               retention > 0 ? now_ms - retention * 1000
                                               : G_MAXINT64);
  g_autofree char *keys = g_strdup_printf ("%" G_GINT64_FORMAT,
                                           now_ms - TOCSIN_RELAY_DEDUP_WINDOW_SECONDS * 1000);
  const char *message_params[] = { messages };
  const char *key_params[] = { keys };
  PGresult *result;

  g_return_val_if_fail (pg != NULL, FALSE);

  /* Two autocommit statements: each is safe alone, and several nodes may run them at once. */
  result = exec_params (pg, "DELETE FROM messages WHERE time_ms < $1", PGRES_COMMAND_OK,
                        _("pruning messages"), error, 1, message_params);
  if (result == NULL)
    return FALSE;
  PQclear (result);
  result = exec_params (pg, "DELETE FROM dedup WHERE time_ms < $1", PGRES_COMMAND_OK,
                        _("pruning dedup keys"), error, 1, key_params);
  if (result == NULL)
    return FALSE;
  PQclear (result);
  return TRUE;
}

gboolean
tocsin_relay_store_pg_listen (TocsinRelayStorePg  *pg,
                              GError             **error)
{
  g_return_val_if_fail (pg != NULL, FALSE);

  return exec_command (pg, "LISTEN tocsin_messages", _("listening for other nodes"), error)
         && exec_command (pg, "LISTEN tocsin_channels", _("listening for other nodes"), error);
}

int
tocsin_relay_store_pg_socket (TocsinRelayStorePg *pg)
{
  g_return_val_if_fail (pg != NULL, -1);

  return PQsocket (pg->conn);
}

gboolean
tocsin_relay_store_pg_take_notifications (TocsinRelayStorePg            *pg,
                                          TocsinRelayStorePgNotifyFunc   func,
                                          gpointer                       user_data,
                                          GError                       **error)
{
  PGnotify *notify;

  g_return_val_if_fail (pg != NULL, FALSE);

  if (!PQconsumeInput (pg->conn))
    return set_pg_error (pg, NULL, _("listening for other nodes"), error);
  while ((notify = PQnotifies (pg->conn)) != NULL)
    {
      g_auto(GStrv) fields = g_strsplit (notify->extra, " ", 2);
      gint64 channel_id = fields[0] ? g_ascii_strtoll (fields[0], NULL, 10) : 0;

      /* Only this file sends on these channels; anything else is ignored. */
      if (channel_id > 0 && fields[1] != NULL)
        {
          if (g_str_equal (notify->relname, "tocsin_messages"))
            func (TOCSIN_RELAY_STORE_PG_EVENT_MESSAGES, channel_id,
                  g_ascii_strtoll (fields[1], NULL, 10), user_data);
          else if (g_str_equal (fields[1], "deleted"))
            func (TOCSIN_RELAY_STORE_PG_EVENT_DELETED, channel_id, 0, user_data);
          else if (g_str_equal (fields[1], "rotated"))
            func (TOCSIN_RELAY_STORE_PG_EVENT_ROTATED, channel_id, 0, user_data);
        }
      PQfreemem (notify);
    }
  return TRUE;
}

#endif /* HAVE_LIBPQ */
