/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-forwards.c: sends a channel's outgoing requests ("forwards", issue 15,
 * docs/actions.md).
 *
 * Events. A message event's deliveries are queued by the store in the message's own
 * transaction (ingest evaluates each forward's condition with the templates' scope and passes
 * the indices that passed, tocsin_relay_store_commit_with_forwards_async()); an acknowledgement
 * (the hub, tocsin_relay_acks_add() returning TRUE) reads the message back and queues the
 * channel's acknowledge forwards through the writer thread. Either way, once the store says the
 * deliveries are durable, this sender is kicked.
 *
 * Sending. One TocsinOutbound (tocsin-outbound.h: the retry/none policies, pacing, breaker) and
 * one timer for the soonest due delivery. A scan takes the due ones (next_at <= now), renders
 * each from the copy of its message kept in the delivery (tocsin_request_render() over the
 * message's variables and tocsin_request_context_vars(); bounded by the template budget, so it
 * runs on the main loop), and sends at most TOCSIN_RELAY_FORWARDS_MAX_IN_FLIGHT at once, at
 * most TOCSIN_RELAY_FORWARDS_MAX_PER_HOST to one host. A host the outbound holds back (pacing,
 * breaker) is not sent to: its deliveries become "held" until the host's ready time, when they
 * are due again (the breaker then lets one probe through).
 *
 * Durability: "sends none twice without saying so". Before a request leaves, the store records
 * that its attempt started (attempts + 1, next_at NULL). After a kill -9, such a delivery is due
 * again at the next start (tocsin_relay_store_recover_deliveries()) and is sent as the next
 * attempt with the same webhook-id, so a receiver can tell a resend by the id it already saw
 * (Standard Webhooks' idempotency); with policy "none" (one attempt) it ends "failed" instead.
 * Nothing that was queued is lost: a delivery leaves the queue only as delivered or failed.
 *
 * Store writes: on the store's writer thread, never on this main loop (the relay's only one:
 * an fsync here, 0.3 ms typically and up to 70 ms on this machine, would stall every
 * subscriber, webhook and stream). A scan collects its attempts' starts, the deliveries it holds
 * back and the unsendable ones into one Write (TocsinRelayDeliveryOp's), queued with
 * tocsin_relay_store_write_deliveries_async(): one transaction, group-committed with whatever
 * else the writer has queued. The order "started before sent" holds because a request is sent
 * only from write_done(), the callback that says its start is durable (an op whose delivery
 * was no longer waiting, attempt 0, is not sent). After the answer, the attempt's record and
 * the delivery's new state are queued the same way (queue_finish()); their callback scans
 * again. Until a write is done its deliveries are in in_flight (starts) or writing (the rest),
 * and a scan leaves them alone. The scan's reads (the due deliveries, their channels, the next
 * due time) run on the store's reader thread (scan_read(), issue 16: the main loop never waits
 * on the database), one scan at a time: a scan asked for meanwhile runs after it. What it read
 * is used back on the main loop, where in_flight and writing are current: a delivery read as
 * due whose start has been queued since is skipped as before.
 * tests/test-relay-forwards-thread.c checks the main thread dirties no file meanwhile. Left on
 * the main loop: the recovery at start (before serving). The owner's "retry now"
 * (tocsin_relay_forwards_retry_async()) reads on the reader thread, checks in_flight here and
 * writes on the writer thread.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <inttypes.h>
#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-message.h"
#include "tocsin-outbound.h"
#include "tocsin-relay-forwards.h"

/* Due deliveries read per scan. */
#define SCAN_LIMIT 64

struct _TocsinRelayForwards
{
  /* borrowed */
  TocsinRelay    *relay;

  /* owned */
  TocsinOutbound *outbound;
  GCancellable   *cancellable;
  GHashTable     *in_flight;   /* gint64* delivery id → Send* */
  GHashTable     *per_host;    /* host key → GUINT count in flight */
  GHashTable     *forced;      /* gint64* delivery ids to send now, held back or not */
  GHashTable     *writing;     /* gint64* delivery ids with a store write queued (not sends) */
  guint           timer_id;
  guint           idle_id;
  gboolean        scanning;    /* a scan's read is out (scan_read) */
  gboolean        rescan;      /* and another was asked for meanwhile */
};

typedef struct
{
  TocsinRelayForwards *self;   /* NULL once the sender is gone */
  gint64               id;
  gint64               channel_id;
  char                *host;
  guint                attempt;
  char                *url;    /* for the log */
  /* until the attempt's start is durable */
  TocsinRenderedRequest *request;
  char                *webhook_id;
} Send;

static void
send_free (Send *send)
{
  g_free (send->host);
  g_free (send->url);
  g_clear_pointer (&send->request, tocsin_rendered_request_free);
  g_free (send->webhook_id);
  g_free (send);
}

/* One queued store write (tocsin_relay_store_write_deliveries_async()): the writer thread makes
 * it, in one transaction with whatever else is queued. */
typedef struct
{
  TocsinRelayForwards *self;
  GCancellable        *cancellable;  /* the sender's: set when it goes (then self is gone) */
  GArray              *ops;          /* TocsinRelayDeliveryOp */
  GPtrArray           *sends;        /* Send*, one per START op, in order; in in_flight */
  GArray              *writing;      /* gint64: ids this write holds in self->writing */
} Write;

static Write *
write_new (TocsinRelayForwards *self)
{
  Write *write = g_new0 (Write, 1);

  write->self = self;
  write->cancellable = g_object_ref (self->cancellable);
  write->ops = tocsin_relay_delivery_ops_new ();
  write->sends = g_ptr_array_new ();
  write->writing = g_array_new (FALSE, FALSE, sizeof (gint64));
  return write;
}

static void
write_free (Write *write)
{
  g_clear_object (&write->cancellable);
  g_array_unref (write->ops);
  g_ptr_array_unref (write->sends);
  g_array_unref (write->writing);
  g_free (write);
}

/* Marks @id as having a write queued: scans leave it alone until the write is done. */
static void
write_hold_id (Write  *write,
               gint64  id)
{
  g_array_append_val (write->writing, id);
  g_hash_table_add (write->self->writing, g_memdup2 (&id, sizeof id));
}

static void schedule (TocsinRelayForwards *self);
static gboolean on_timer (gpointer user_data);
static void queue_finish (TocsinRelayForwards            *self,
                          gint64                          id,
                          const TocsinRelayAttemptRecord *record,
                          TocsinRelayDeliveryState        state,
                          gint64                          next_at_ms);

/* ---- selecting forwards ---- */

GArray *
tocsin_relay_forwards_select (const TocsinRelayChannel *channel,
                              TocsinRequestEvent        event,
                              TocsinTemplateScope      *scope)
{
  GArray *indices = NULL;

  g_return_val_if_fail (channel != NULL, NULL);

  if (channel->forwards == NULL)
    return NULL;
  for (guint i = 0; i < channel->forwards->len; i++)
    {
      TocsinRequest *forward = channel->forwards->pdata[i];

      if (tocsin_request_get_kind (forward) != TOCSIN_REQUEST_KIND_HTTP ||
          tocsin_request_get_event (forward) != event ||
          !tocsin_request_applies (forward, scope))
        continue;
      if (indices == NULL)
        indices = g_array_new (FALSE, FALSE, sizeof (guint));
      g_array_append_val (indices, i);
    }
  return indices;
}

/* ---- rendering ---- */

static char *
host_key (const char *url)
{
  g_autoptr(GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);

  if (uri == NULL)
    return g_strdup ("");
  return g_strdup_printf ("%s://%s:%d", g_uri_get_scheme (uri), g_uri_get_host (uri),
                          g_uri_get_port (uri));
}

/* The forward @delivery was queued for: at its index if the name still matches, else by name
 * (the owner reordered them); NULL when it was removed. */
static TocsinRequest *
find_forward (TocsinRelayChannel        *channel,
              const TocsinRelayDelivery *delivery)
{
  GPtrArray *forwards = channel->forwards;

  if (forwards == NULL)
    return NULL;
  if (delivery->forward_index < forwards->len &&
      g_strcmp0 (tocsin_request_get_name (forwards->pdata[delivery->forward_index]),
                 delivery->forward) == 0)
    return forwards->pdata[delivery->forward_index];
  for (guint i = 0; i < forwards->len; i++)
    if (g_strcmp0 (tocsin_request_get_name (forwards->pdata[i]), delivery->forward) == 0)
      return forwards->pdata[i];
  return NULL;
}

static TocsinRenderedRequest *
render (TocsinRelayChannel        *channel,
        const TocsinRelayDelivery *delivery,
        GError                   **error)
{
  g_autoptr(TocsinMessage) message = NULL;
  g_autoptr(JsonObject) empty = json_object_new ();
  g_autoptr(JsonObject) vars = NULL;
  g_autoptr(TocsinTemplateScope) scope = NULL;
  TocsinRequestContext context = { 0 };
  TocsinRequest *forward;

  forward = find_forward (channel, delivery);
  if (forward == NULL)
    {
      g_set_error (error, TOCSIN_REQUEST_ERROR, TOCSIN_REQUEST_ERROR_RENDER,
                   _("The channel no longer has a forward named “%s”"), delivery->forward);
      return NULL;
    }
  if (delivery->message != NULL)
    {
      gsize length;
      const char *data = g_bytes_get_data (delivery->message, &length);

      message = tocsin_message_new_from_data (data, length, NULL);
    }
  context.record_id = delivery->message_id;
  context.channel_id = channel->id;
  context.channel_name = channel->name;
  context.user = delivery->user;
  if (message != NULL)
    {
      context.record_time_ms = message->time_ms;
      context.record_title = message->title;
      context.record_body = message->body;
      context.record_link = message->external_link;
    }
  vars = tocsin_request_context_vars (message ? message->vars : empty, &context,
                                      tocsin_request_get_name (forward));
  scope = tocsin_template_scope_new (vars, NULL);
  return tocsin_request_render (forward, scope, error);
}

/* ---- sending ---- */

static const char *
outcome_name (TocsinAttemptOutcome outcome)
{
  switch (outcome)
    {
    case TOCSIN_ATTEMPT_SUCCESS: return "success";
    case TOCSIN_ATTEMPT_RETRY: return "retry";
    case TOCSIN_ATTEMPT_FINAL_ERROR: default: return "error";
    }
}

static void
note_store_error (const char   *what,
                  const GError *error)
{
  g_message ("Forwards: could not %s: %s", what, error->message);
}

static void
send_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Send *send = user_data;
  TocsinRelayForwards *self = send->self;
  g_autoptr(TocsinAttempt) attempt = NULL;
  TocsinRelayAttemptRecord record = { 0 };
  TocsinRelayDeliveryState state;
  gint64 next_at = 0;
  guint count;

  if (self == NULL)
    {
      /* The sender went away (shutdown): the attempt stays "started"; the next start sends it
       * again as the next attempt, as after a crash. */
      send_free (send);
      return;
    }
  attempt = tocsin_outbound_send_finish (self->outbound, result);

  record.at_ms = attempt->started_ms;
  record.duration_ms = attempt->duration_ms;
  record.attempt = send->attempt;
  record.url = attempt->url ? attempt->url : send->url;
  record.status = attempt->status;
  record.error = attempt->error;
  record.answer_start = attempt->answer_start;
  record.outcome = outcome_name (attempt->outcome);
  switch (attempt->outcome)
    {
    case TOCSIN_ATTEMPT_SUCCESS:
      state = TOCSIN_RELAY_DELIVERY_DELIVERED;
      break;
    case TOCSIN_ATTEMPT_RETRY:
      state = TOCSIN_RELAY_DELIVERY_PENDING;
      next_at = MAX (attempt->retry_at_ms, 1);
      record.next_retry_at_ms = next_at;
      break;
    case TOCSIN_ATTEMPT_FINAL_ERROR:
    default:
      state = TOCSIN_RELAY_DELIVERY_FAILED;
      break;
    }
  queue_finish (self, send->id, &record, state, next_at);

  count = GPOINTER_TO_UINT (g_hash_table_lookup (self->per_host, send->host));
  if (count <= 1)
    g_hash_table_remove (self->per_host, send->host);
  else
    g_hash_table_insert (self->per_host, g_strdup (send->host), GUINT_TO_POINTER (count - 1));
  g_hash_table_remove (self->in_flight, &send->id);   /* frees send */
  /* Scanned again once the attempt's record is durable (write_done). */
}

/* An attempt that could not even be made (the forward is gone, it renders to nothing
 * sendable): logged as an attempt, and final. */
static void
fail_unsendable (Write                     *write,
                 const TocsinRelayDelivery *delivery,
                 const char                *sentence)
{
  TocsinRelayDeliveryOp *op;

  op = tocsin_relay_delivery_ops_add (write->ops, TOCSIN_RELAY_DELIVERY_OP_UNSENDABLE,
                                      delivery->id);
  op->at_ms = g_get_real_time () / 1000;
  op->url = g_strdup ("");
  op->error = g_strdup (sentence);
  op->outcome = g_strdup ("error");
  write_hold_id (write, delivery->id);
}

/* Sends @delivery if it may go now. Returns FALSE when nothing more can be sent this scan. */
static gboolean
try_send (TocsinRelayForwards *self,
          Write               *write,
          TocsinRelayDelivery *delivery,
          TocsinRelayChannel  *channel,
          gint64               now_ms)
{
  g_autoptr(TocsinRenderedRequest) request = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *host = NULL;
  gboolean forced;
  gint64 ready_at;
  guint count;
  Send *send;

  if (g_hash_table_size (self->in_flight) >= TOCSIN_RELAY_FORWARDS_MAX_IN_FLIGHT)
    return FALSE;
  if (g_hash_table_contains (self->in_flight, &delivery->id) ||
      g_hash_table_contains (self->writing, &delivery->id))
    return TRUE;

  if (channel == NULL)
    {
      fail_unsendable (write, delivery, _("The channel was deleted"));
      return TRUE;
    }
  request = render (channel, delivery, &error);
  if (request == NULL)
    {
      fail_unsendable (write, delivery, error->message);
      return TRUE;
    }

  host = host_key (request->url);
  count = GPOINTER_TO_UINT (g_hash_table_lookup (self->per_host, host));
  if (count >= TOCSIN_RELAY_FORWARDS_MAX_PER_HOST)
    return TRUE;   /* scanned again when one of them ends */

  forced = g_hash_table_remove (self->forced, &delivery->id);
  /* Against the clock read after the outbound's: it answers "now" (its own, later than the
   * scan's @now_ms once rendering took a millisecond) for a host it does not hold back, which
   * compared with @now_ms held every delivery of a slow scan back, scan after scan (seen under
   * valgrind). */
  ready_at = tocsin_outbound_host_ready_at (self->outbound, request->url);
  if (!forced && ready_at > g_get_real_time () / 1000)
    {
      TocsinRelayDeliveryOp *op;

      op = tocsin_relay_delivery_ops_add (write->ops, TOCSIN_RELAY_DELIVERY_OP_STATE,
                                          delivery->id);
      op->state = TOCSIN_RELAY_DELIVERY_HELD;
      op->next_at_ms = ready_at;
      write_hold_id (write, delivery->id);
      return TRUE;
    }

  send = g_new0 (Send, 1);
  send->self = self;
  send->id = delivery->id;
  send->channel_id = delivery->channel_id;
  send->host = g_steal_pointer (&host);
  send->url = tocsin_request_url_for_log (request->url);
  send->request = g_steal_pointer (&request);
  send->webhook_id = g_strdup (delivery->webhook_id);
  /* Sent from write_done, once the attempt's start is durable. */
  tocsin_relay_delivery_ops_add (write->ops, TOCSIN_RELAY_DELIVERY_OP_START, delivery->id);
  g_ptr_array_add (write->sends, send);
  g_hash_table_insert (self->in_flight, &send->id, send);
  g_hash_table_insert (self->per_host, g_strdup (send->host), GUINT_TO_POINTER (count + 1));
  return TRUE;
}

static void
release_host (TocsinRelayForwards *self,
              const char          *host)
{
  guint count = GPOINTER_TO_UINT (g_hash_table_lookup (self->per_host, host));

  if (count <= 1)
    g_hash_table_remove (self->per_host, host);
  else
    g_hash_table_insert (self->per_host, g_strdup (host), GUINT_TO_POINTER (count - 1));
}

static void
write_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Write *write = user_data;
  TocsinRelayForwards *self = write->self;
  g_autoptr(GError) error = NULL;
  gboolean ok;
  guint n_start = 0;

  ok = tocsin_relay_store_write_deliveries_finish ((TocsinRelayStore *) source, result, &error);
  if (g_cancellable_is_cancelled (write->cancellable))
    {
      /* The sender went away (shutdown) and stole these from in_flight: nobody sends them; a
       * started attempt is sent again at the next start, as after a crash. */
      for (guint i = 0; i < write->sends->len; i++)
        send_free (write->sends->pdata[i]);
      write_free (write);
      return;
    }
  if (!ok)
    note_store_error ("update the deliveries queue", error);

  for (guint i = 0; i < write->writing->len; i++)
    g_hash_table_remove (self->writing, &g_array_index (write->writing, gint64, i));

  for (guint i = 0; i < write->ops->len; i++)
    {
      TocsinRelayDeliveryOp *op = &g_array_index (write->ops, TocsinRelayDeliveryOp, i);
      Send *send;

      if (op->kind != TOCSIN_RELAY_DELIVERY_OP_START)
        continue;
      send = write->sends->pdata[n_start++];
      g_assert (send->id == op->delivery_id);
      /* Not durable, or taken meanwhile (another server process on the data dir): not sent,
       * since sending without the record would break "none twice without saying so". */
      if (!ok || op->attempt == 0)
        {
          release_host (self, send->host);
          g_hash_table_remove (self->in_flight, &send->id);   /* frees send */
          continue;
        }
      send->attempt = op->attempt;
      tocsin_outbound_send_async (self->outbound, send->request, send->webhook_id,
                                  send->attempt, self->cancellable, send_done, send);
      g_clear_pointer (&send->request, tocsin_rendered_request_free);
    }
  write_free (write);

  if (ok)
    schedule (self);
  else if (self->timer_id == 0 && self->idle_id == 0)
    self->timer_id = g_timeout_add_seconds (1, on_timer, self);   /* the store is failing */
}

static void
queue_write (TocsinRelayForwards *self,
             Write               *write)
{
  if (write->ops->len == 0)
    {
      write_free (write);
      return;
    }
  tocsin_relay_store_write_deliveries_async (self->relay->store, write->ops, write_done, write);
}

/* An attempt's record and the delivery's new state, after the answer. */
static void
queue_finish (TocsinRelayForwards            *self,
              gint64                          id,
              const TocsinRelayAttemptRecord *record,
              TocsinRelayDeliveryState        state,
              gint64                          next_at_ms)
{
  Write *write = write_new (self);
  TocsinRelayDeliveryOp *op;

  op = tocsin_relay_delivery_ops_add (write->ops, TOCSIN_RELAY_DELIVERY_OP_FINISH, id);
  op->state = state;
  op->next_at_ms = next_at_ms;
  op->at_ms = record->at_ms;
  op->duration_ms = record->duration_ms;
  op->attempt = record->attempt;
  op->status = record->status;
  op->url = g_strdup (record->url);
  op->error = g_strdup (record->error);
  op->answer_start = g_strdup (record->answer_start);
  op->outcome = g_strdup (record->outcome);
  op->next_retry_at_ms = record->next_retry_at_ms;
  write_hold_id (write, id);
  queue_write (self, write);
}

static gboolean
on_timer (gpointer user_data)
{
  TocsinRelayForwards *self = user_data;

  self->timer_id = 0;
  schedule (self);
  return G_SOURCE_REMOVE;
}

/* What a scan reads, on the store's reader thread. */
typedef struct
{
  TocsinRelayForwards *self;         /* only once the callback has checked cancellable */
  GCancellable        *cancellable;  /* the sender's: set when it goes */
  gint64               now_ms;
  GPtrArray           *due;          /* TocsinRelayDelivery, or NULL with error */
  GHashTable          *channels;     /* gint64* channel id → TocsinRelayChannel (absent: gone) */
  gint64               next_at;
  GError              *error;
} ScanRead;

static void
scan_read_free (ScanRead *read)
{
  g_clear_object (&read->cancellable);
  g_clear_pointer (&read->due, g_ptr_array_unref);
  g_clear_pointer (&read->channels, g_hash_table_unref);
  g_clear_error (&read->error);
  g_free (read);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ScanRead, scan_read_free)

static gboolean
scan_read (TocsinRelayStore  *store,
           gpointer           data,
           GError           **error)
{
  ScanRead *read = data;

  read->channels = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                          (GDestroyNotify) tocsin_relay_channel_unref);
  read->due = tocsin_relay_store_due_deliveries (store, read->now_ms, SCAN_LIMIT, &read->error);
  for (guint i = 0; read->due != NULL && i < read->due->len; i++)
    {
      TocsinRelayDelivery *delivery = read->due->pdata[i];
      TocsinRelayChannel *channel;

      if (g_hash_table_contains (read->channels, &delivery->channel_id))
        continue;
      channel = tocsin_relay_store_find_by_id (store, delivery->channel_id);
      if (channel != NULL)
        g_hash_table_insert (read->channels, g_memdup2 (&delivery->channel_id, sizeof (gint64)),
                             channel);
    }
  read->next_at = tocsin_relay_store_next_delivery_at (store);
  return TRUE;
}

static void
scan_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(ScanRead) read = user_data;
  TocsinRelayForwards *self = read->self;
  gint64 now_ms = read->now_ms;
  gint64 next_at = read->next_at;
  Write *write;

  if (g_cancellable_is_cancelled (read->cancellable))
    return;
  self->scanning = FALSE;
  if (self->rescan)
    {
      /* Asked for while this one read: what it read may be older than what was asked for. */
      self->rescan = FALSE;
      g_clear_handle_id (&self->timer_id, g_source_remove);
      schedule (self);
    }

  if (read->due == NULL)
    note_store_error ("read the deliveries queue", read->error);
  write = write_new (self);
  for (guint i = 0; read->due != NULL && i < read->due->len; i++)
    {
      TocsinRelayDelivery *delivery = read->due->pdata[i];

      if (!try_send (self, write, delivery,
                     g_hash_table_lookup (read->channels, &delivery->channel_id), now_ms))
        break;
    }
  /* The attempts started, held back and unsendable in this scan: one job, one transaction. */
  queue_write (self, g_steal_pointer (&write));

  if (self->idle_id != 0)
    return;   /* the next scan sets the timer */
  /* Due ones left behind (the in-flight bound) are scanned again when a send ends. */
  if (next_at > 0)
    {
      gint64 delay = next_at - g_get_real_time () / 1000;

      if (delay <= 0 &&
          (g_hash_table_size (self->in_flight) > 0 || g_hash_table_size (self->writing) > 0))
        return;   /* waiting for a send or a store write to end */
      /* At least 10 ms, so that a due delivery that could not go (host busy) does not spin. */
      self->timer_id = g_timeout_add ((guint) CLAMP (delay, 10, 60 * 1000), on_timer, self);
    }
}

static gboolean
scan (gpointer user_data)
{
  TocsinRelayForwards *self = user_data;
  ScanRead *read;

  self->idle_id = 0;
  g_clear_handle_id (&self->timer_id, g_source_remove);
  if (self->scanning)
    {
      self->rescan = TRUE;
      return G_SOURCE_REMOVE;
    }

  self->scanning = TRUE;
  read = g_new0 (ScanRead, 1);
  read->self = self;
  read->cancellable = g_object_ref (self->cancellable);
  read->now_ms = g_get_real_time () / 1000;
  tocsin_relay_store_call_async (self->relay->store, FALSE, scan_read, read, scan_done, read);
  return G_SOURCE_REMOVE;
}

static void
schedule (TocsinRelayForwards *self)
{
  if (self->idle_id == 0)
    self->idle_id = g_idle_add (scan, self);
}

/* ---- public ---- */

TocsinRelayForwards *
tocsin_relay_forwards_new (TocsinRelay *relay)
{
  TocsinRelayForwards *self;
  TocsinOutboundConfig config;
  g_autoptr(GError) error = NULL;
  guint recovered;

  g_return_val_if_fail (relay != NULL && relay->store != NULL, NULL);

  tocsin_outbound_config_init (&config);
  config.timeout_s = relay->config.forward_timeout_s;
  config.max_attempts = relay->config.forward_max_attempts;
  config.backoff_base_ms = relay->config.forward_backoff_base_ms;
  config.backoff_max_ms = relay->config.forward_backoff_max_ms;
  config.cooldown_ms = relay->config.forward_cooldown_ms;
  config.ca_file = relay->config.forward_ca_file;
  config.deny_private = relay->config.forward_deny_private;

  self = g_new0 (TocsinRelayForwards, 1);
  self->relay = relay;
  self->outbound = tocsin_outbound_new (&config);
  self->cancellable = g_cancellable_new ();
  self->in_flight = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL,
                                           (GDestroyNotify) send_free);
  self->per_host = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->forced = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  self->writing = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);

  recovered = tocsin_relay_store_recover_deliveries (relay->store, g_get_real_time () / 1000,
                                                     &error);
  if (error != NULL)
    note_store_error ("recover the deliveries queue", error);
  else if (recovered > 0)
    g_message ("Forwards: %u deliveries were in flight when the relay stopped; they are sent "
               "again with their webhook-id", recovered);
  schedule (self);
  return self;
}

void
tocsin_relay_forwards_free (TocsinRelayForwards *self)
{
  GHashTableIter iter;
  gpointer value;

  if (self == NULL)
    return;
  g_cancellable_cancel (self->cancellable);
  /* The in-flight sends end later, without us; their attempts stay "started". */
  g_hash_table_iter_init (&iter, self->in_flight);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      ((Send *) value)->self = NULL;
      g_hash_table_iter_steal (&iter);
    }
  g_clear_handle_id (&self->timer_id, g_source_remove);
  g_clear_handle_id (&self->idle_id, g_source_remove);
  g_clear_pointer (&self->outbound, tocsin_outbound_free);
  g_clear_object (&self->cancellable);
  g_hash_table_unref (self->in_flight);
  g_hash_table_unref (self->per_host);
  g_hash_table_unref (self->forced);
  g_hash_table_unref (self->writing);
  g_free (self);
}

void
tocsin_relay_forwards_kick (TocsinRelayForwards *self)
{
  g_return_if_fail (self != NULL);
  schedule (self);
}

typedef struct
{
  TocsinRelayForwards *self;
  GCancellable        *cancellable;   /* the sender's: set when it goes */
  gint64               channel_id;
  gint64               message_id;
  char                *user;
  TocsinRelayChannel  *channel;       /* read on the store's reader thread */
} Acknowledge;

static void
acknowledge_free (Acknowledge *ack)
{
  g_clear_object (&ack->cancellable);
  g_free (ack->user);
  g_clear_pointer (&ack->channel, tocsin_relay_channel_unref);
  g_free (ack);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Acknowledge, acknowledge_free)

static void
enqueue_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(Acknowledge) ack = user_data;
  g_autoptr(GError) error = NULL;

  tocsin_relay_store_enqueue_finish ((TocsinRelayStore *) source, result, &error);
  if (error != NULL)
    note_store_error ("queue the acknowledge forwards", error);
  else if (!g_cancellable_is_cancelled (ack->cancellable))
    schedule (ack->self);
}

static void
acknowledge_read (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(Acknowledge) ack = user_data;
  g_autoptr(TocsinRelayReplayPage) page = NULL;
  g_autoptr(TocsinRelayChannel) channel = NULL;
  g_autoptr(TocsinMessage) message = NULL;
  g_autoptr(JsonObject) empty = json_object_new ();
  g_autoptr(JsonObject) vars = NULL;
  g_autoptr(TocsinTemplateScope) scope = NULL;
  g_autoptr(GArray) indices = NULL;
  g_autoptr(GError) error = NULL;
  TocsinRelayForwards *self = ack->self;
  TocsinRequestContext context = { 0 };
  GBytes *data = NULL;
  g_autofree char *user = NULL;
  gint64 channel_id, message_id;

  page = tocsin_relay_store_replay_page_finish ((TocsinRelayStore *) source, result, &error);
  if (g_cancellable_is_cancelled (ack->cancellable))
    return;
  if (page == NULL)
    note_store_error ("read the acknowledged message", error);
  channel = g_steal_pointer (&ack->channel);
  /* A message no longer retained (or never: retention 0) still fires, with the record's id and
   * the user as its variables. */
  if (page != NULL && page->ids->len > 0 &&
      g_array_index (page->ids, gint64, 0) == ack->message_id)
    {
      gsize length;
      const char *bytes;

      data = page->messages->pdata[0];
      bytes = g_bytes_get_data (data, &length);
      message = tocsin_message_new_from_data (bytes, length, NULL);
    }
  context.record_id = ack->message_id;
  context.channel_id = channel->id;
  context.channel_name = channel->name;
  context.user = ack->user;
  if (message != NULL)
    {
      context.record_time_ms = message->time_ms;
      context.record_title = message->title;
      context.record_body = message->body;
      context.record_link = message->external_link;
    }
  vars = tocsin_request_context_vars (message ? message->vars : empty, &context, "");
  scope = tocsin_template_scope_new (vars, NULL);
  indices = tocsin_relay_forwards_select (channel, TOCSIN_REQUEST_EVENT_ACKNOWLEDGE, scope);
  if (indices == NULL)
    return;
  /* Not ack's members in the call that steals ack: the order arguments are read in is not
   * defined. */
  channel_id = ack->channel_id;
  message_id = ack->message_id;
  user = g_strdup (ack->user);
  tocsin_relay_store_enqueue_async (self->relay->store, channel_id, message_id,
                                    message != NULL ? data : NULL, "acknowledge", user,
                                    channel->forwards, indices, enqueue_done,
                                    g_steal_pointer (&ack));
}

static gboolean
acknowledge_lookup (TocsinRelayStore  *store,
                    gpointer           data,
                    GError           **error)
{
  Acknowledge *ack = data;

  ack->channel = tocsin_relay_store_find_by_id (store, ack->channel_id);
  return TRUE;
}

static void
acknowledge_found (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(Acknowledge) ack = user_data;
  TocsinRelayChannel *channel = ack->channel;
  TocsinRelayStore *store;
  GCancellable *cancellable;
  gint64 channel_id, message_id;
  gboolean any = FALSE;

  if (g_cancellable_is_cancelled (ack->cancellable) || channel == NULL ||
      channel->forwards == NULL)
    return;
  for (guint i = 0; i < channel->forwards->len && !any; i++)
    any = tocsin_request_get_event (channel->forwards->pdata[i]) ==
          TOCSIN_REQUEST_EVENT_ACKNOWLEDGE;
  if (!any)
    return;
  /* Not ack's members in the call that steals ack (see acknowledge_read). */
  store = ack->self->relay->store;
  channel_id = ack->channel_id;
  message_id = ack->message_id;
  cancellable = ack->cancellable;
  tocsin_relay_store_replay_page_async (store, channel_id, message_id - 1, 1, cancellable,
                                        acknowledge_read, g_steal_pointer (&ack));
}

void
tocsin_relay_forwards_acknowledge (TocsinRelayForwards *self,
                                   gint64               channel_id,
                                   gint64               message_id,
                                   const char          *user)
{
  Acknowledge *ack;

  g_return_if_fail (self != NULL);

  /* The channel is read on the store's reader thread, then the message (acknowledge_read). */
  ack = g_new0 (Acknowledge, 1);
  ack->self = self;
  ack->cancellable = g_object_ref (self->cancellable);
  ack->channel_id = channel_id;
  ack->message_id = message_id;
  ack->user = g_strdup (user ? user : "");
  tocsin_relay_store_call_async (self->relay->store, FALSE, acknowledge_lookup, ack,
                                 acknowledge_found, ack);
}

/* ---- "retry now" off the main loop ---- */

typedef struct
{
  TocsinRelayForwards *self;          /* only once the callback has checked cancellable */
  GCancellable        *cancellable;   /* the sender's: set when it goes */
  gint64               channel_id;
  gint64               delivery_id;
  TocsinRelayDelivery *delivery;      /* read, then read again once pending */
  GError              *error;
} Retry;

static void
retry_free (Retry *retry)
{
  g_clear_object (&retry->cancellable);
  g_clear_pointer (&retry->delivery, tocsin_relay_delivery_free);
  g_clear_error (&retry->error);
  g_free (retry);
}

static gboolean
retry_read (TocsinRelayStore  *store,
            gpointer           data,
            GError           **error)
{
  Retry *retry = data;

  retry->delivery = tocsin_relay_store_get_delivery (store, retry->delivery_id, &retry->error);
  if (retry->delivery != NULL && retry->delivery->channel_id != retry->channel_id)
    {
      g_clear_pointer (&retry->delivery, tocsin_relay_delivery_free);
      g_set_error (&retry->error, TOCSIN_RELAY_STORE_ERROR, TOCSIN_RELAY_STORE_ERROR_NOT_FOUND,
                   _("There is no delivery %" PRId64 " in this channel"),
                   (int64_t) retry->delivery_id);
    }
  return TRUE;
}

static gboolean
retry_write (TocsinRelayStore  *store,
             gpointer           data,
             GError           **error)
{
  Retry *retry = data;

  g_clear_pointer (&retry->delivery, tocsin_relay_delivery_free);
  if (tocsin_relay_store_set_delivery_state (store, retry->delivery_id,
                                             TOCSIN_RELAY_DELIVERY_PENDING,
                                             g_get_real_time () / 1000, &retry->error))
    retry->delivery = tocsin_relay_store_get_delivery (store, retry->delivery_id, &retry->error);
  return TRUE;
}

static void
retry_written (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Retry *retry = g_task_get_task_data (task);
  TocsinRelayForwards *self = retry->self;

  if (retry->delivery == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&retry->error));
      return;
    }
  if (!g_cancellable_is_cancelled (retry->cancellable))
    {
      g_hash_table_add (self->forced, g_memdup2 (&retry->delivery_id, sizeof (gint64)));
      schedule (self);
    }
  g_task_return_pointer (task, g_steal_pointer (&retry->delivery),
                         (GDestroyNotify) tocsin_relay_delivery_free);
}

static void
retry_read_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Retry *retry = g_task_get_task_data (task);

  if (retry->delivery == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&retry->error));
      return;
    }
  if (g_cancellable_is_cancelled (retry->cancellable))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("The relay is stopping"));
      return;
    }
  if (g_hash_table_contains (retry->self->in_flight, &retry->delivery_id))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_BUSY,
                               _("An attempt of this delivery is under way; wait for its "
                                 "answer"));
      return;
    }
  /* An attempt that starts meanwhile is still skipped by the scan (in_flight), and its end
   * sets the state after this. */
  tocsin_relay_store_call_async (retry->self->relay->store, TRUE, retry_write, retry,
                                 retry_written, g_steal_pointer (&task));
}

void
tocsin_relay_forwards_retry_async (TocsinRelayForwards *self,
                                   gint64               channel_id,
                                   gint64               delivery_id,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  Retry *retry;
  GTask *task;

  g_return_if_fail (self != NULL);

  retry = g_new0 (Retry, 1);
  retry->self = self;
  retry->cancellable = g_object_ref (self->cancellable);
  retry->channel_id = channel_id;
  retry->delivery_id = delivery_id;
  task = g_task_new (NULL, NULL, callback, user_data);
  g_task_set_source_tag (task, tocsin_relay_forwards_retry_async);
  g_task_set_task_data (task, retry, (GDestroyNotify) retry_free);
  tocsin_relay_store_call_async (self->relay->store, FALSE, retry_read, retry, retry_read_done,
                                 task);
}

TocsinRelayDelivery *
tocsin_relay_forwards_retry_finish (GAsyncResult  *result,
                                    GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
