/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * bench-app.c: the app's core at scale, measured through the code that ships (TocsinHistory,
 * TocsinRecordList, TocsinClient, TocsinNotifier) against a real relay and a real notification
 * server (python3-dbusmock).
 *
 *   bench-app history --out=FILE   1,000,000 records: open + first page, FTS search, RSS
 *   bench-app burst --out=FILE     10,000 messages at once: records stored/s, longest stall
 *   bench-app e2e --out=FILE       webhook → Notify on the session bus at 100 msg/s
 *
 * Each writes a JSON object to FILE; bench-report.py makes the table. Nothing here asserts a
 * time: a benchmark reports, the table compares with the targets.
 */
#define G_LOG_DOMAIN "bench-app"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "tocsin-client.h"
#include "tocsin-history.h"
#include "tocsin-notifier.h"
#include "tocsin-record-list.h"
#include "../tocsin-test-relay.h"

#define HISTORY_RECORDS   1000000
#define HISTORY_PAGE      50
#define BURST_MESSAGES    10000
#define E2E_RATE          100
#define E2E_SECONDS       10
/* The notifier folds more than 3 popups of one channel within 5 s into a summary; spreading
 * 100 msg/s over 400 channels keeps every message its own popup (one per channel per 4 s). */
#define E2E_CHANNELS      400

static char *out_path;

/* ---- helpers ------------------------------------------------------------------------------ */

static double
ms_since (gint64 start_us)
{
  return (g_get_monotonic_time () - start_us) / 1000.0;
}

/* VmRSS and VmHWM of this process, in bytes. */
static void
read_rss (gint64 *rss, gint64 *hwm)
{
  g_autofree char *status = NULL;
  const char *p;

  *rss = *hwm = -1;
  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return;
  if ((p = strstr (status, "VmRSS:")))
    *rss = g_ascii_strtoll (p + 6, NULL, 10) * 1024;
  if ((p = strstr (status, "VmHWM:")))
    *hwm = g_ascii_strtoll (p + 6, NULL, 10) * 1024;
}

static double
cpu_seconds (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec
         + ru.ru_stime.tv_usec / 1e6;
}

static int
compare_double (gconstpointer a,
                gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

static double
percentile (GArray *sorted, double p)
{
  guint i;

  if (sorted->len == 0)
    return -1;
  i = (guint) MIN (sorted->len - 1, MAX (0.0, ceil (p / 100.0 * sorted->len) - 1));
  return g_array_index (sorted, double, i);
}

static void
write_result (JsonBuilder *builder)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (builder);
  g_autoptr(GError) error = NULL;

  json_generator_set_pretty (gen, TRUE);
  json_generator_set_root (gen, root);
  {
    g_autofree char *dir = g_path_get_dirname (out_path);
    g_mkdir_with_parents (dir, 0755);
  }
  if (!json_generator_to_file (gen, out_path, &error))
    g_error ("Could not write %s: %s", out_path, error->message);
  {
    g_autofree char *text = json_generator_to_data (gen, NULL);
    g_print ("%s\n", text);
  }
}

static void
on_ready (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;

  if (!tocsin_history_wait_ready_finish (TOCSIN_HISTORY (source), result, &error))
    g_error ("history: %s", error->message);
  *(gboolean *) user_data = TRUE;
}

static void
on_query (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  GPtrArray *records = tocsin_history_query_finish (TOCSIN_HISTORY (source), result, &error);

  if (records == NULL)
    g_error ("query: %s", error->message);
  *(GPtrArray **) user_data = records;
}

/* ---- history ------------------------------------------------------------------------------ */

static const char *words[] = {
  "cpu", "disk", "memory", "latency", "backup", "deploy", "build", "failed", "succeeded",
  "warning", "critical", "restored", "timeout", "certificate", "expires", "payment", "order",
  "shipped", "sensor", "temperature", "humidity", "door", "opened", "closed", "cron", "job",
  "queue", "replica", "lag", "database", "nginx", "upstream", "error", "rate", "spike",
  "serveur", "utilisation", "atteint", "Produktion", "Speicher", "сервер", "память",
};

/* Fills @path with @n records the way TocsinHistory stores them (its own schema, created by
 * opening it first; the full-text index filled in the same transaction, as insert_record() does
 * one record at a time). Raw SQL in one transaction: going through store_message_async would
 * take minutes and measure nothing we report here. */
static void
history_generate (const char *path, guint n)
{
  sqlite3 *db;
  sqlite3_stmt *stmt;
  GRand *rand = g_rand_new_with_seed (42);
  gint64 now_ms = g_get_real_time () / 1000;

  {
    g_autoptr(TocsinHistory) history = tocsin_history_new (path);
    gboolean ready = FALSE;

    tocsin_history_wait_ready_async (history, NULL, on_ready, &ready);
    while (!ready)
      g_main_context_iteration (NULL, TRUE);
    tocsin_history_flush_sync (history);
  }

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  sqlite3_exec (db, "PRAGMA journal_mode=WAL; BEGIN", NULL, NULL, NULL);
  g_assert_cmpint (sqlite3_prepare_v2 (db,
    "INSERT INTO records (kind, relay_url, channel_id, channel_name, message_id, latest_id,"
    " title, body, link, time, received, read, vars)"
    " VALUES (0, ?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10)", -1, &stmt, NULL),
    ==, SQLITE_OK);
  for (guint i = 1; i <= n; i++)
    {
      guint channel = 1 + g_rand_int_range (rand, 0, 20);
      g_autofree char *relay = g_strdup_printf ("https://relay%u.example.com", channel % 3);
      g_autofree char *name = g_strdup_printf ("Channel %u", channel);
      g_autofree char *title = g_strdup_printf ("Alerte serveur host-%u %s",
                                                g_rand_int_range (rand, 0, 5000),
                                                words[g_rand_int_range (rand, 0, G_N_ELEMENTS (words))]);
      GString *body = g_string_new (NULL);
      g_autofree char *link = g_strdup_printf ("https://dashboard.example.com/alerts/%u", i);
      g_autofree char *vars = g_strdup_printf ("{\"seq\":%u,\"cpu_usage\":%u}", i,
                                               g_rand_int_range (rand, 0, 100));

      for (int w = 0; w < 12; w++)
        g_string_append_printf (body, "%s ",
                                words[g_rand_int_range (rand, 0, G_N_ELEMENTS (words))]);
      /* One record in 10,000 has a rare word, for the selective search. */
      if (i % 10000 == 0)
        g_string_append (body, "zanzibar");
      sqlite3_bind_text (stmt, 1, relay, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64 (stmt, 2, channel);
      sqlite3_bind_text (stmt, 3, name, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64 (stmt, 4, i);
      sqlite3_bind_text (stmt, 5, title, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text (stmt, 6, body->str, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text (stmt, 7, link, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64 (stmt, 8, now_ms - (gint64) (n - i) * 1000);
      sqlite3_bind_int (stmt, 9, i < n - 500);
      sqlite3_bind_text (stmt, 10, vars, -1, SQLITE_TRANSIENT);
      if (sqlite3_step (stmt) != SQLITE_DONE)
        g_error ("insert: %s", sqlite3_errmsg (db));
      sqlite3_reset (stmt);
      g_string_free (body, TRUE);
    }
  sqlite3_finalize (stmt);
  if (sqlite3_exec (db, "INSERT INTO records_fts (rowid, title, body)"
                        " SELECT id, title, body FROM records", NULL, NULL, NULL) != SQLITE_OK)
    g_error ("index: %s", sqlite3_errmsg (db));
  sqlite3_exec (db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
  sqlite3_close (db);
  g_rand_free (rand);
}

/* Waits until @list has items and its first one is loaded (what the first frame shows). */
static double
wait_first_page (TocsinRecordList *list, gint64 start)
{
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  for (;;)
    {
      if (g_list_model_get_n_items (G_LIST_MODEL (list)) > 0)
        {
          g_autoptr(TocsinRecord) first = g_list_model_get_item (G_LIST_MODEL (list), 0);

          if (tocsin_record_get_loaded (first))
            return ms_since (start);
        }
      if (g_get_monotonic_time () > deadline)
        g_error ("the record list did not load within 60 s");
      g_main_context_iteration (NULL, TRUE);
    }
}

/* Runs in a fresh process (the parent execs us with "history-open"), so that "cold start"
 * means a process that has not touched the database yet. */
static int
history_open (const char *path, const char *search)
{
  gint64 start = g_get_monotonic_time ();
  g_autoptr(TocsinHistory) history = tocsin_history_new (path);
  g_autoptr(TocsinRecordList) list = tocsin_record_list_new (history);
  double first_page, search_ms, rare_ms, query_ms, rare_query_ms;
  gint64 rss, hwm;
  GPtrArray *records = NULL;
  g_autoptr(TocsinRecordQuery) query = tocsin_record_query_new ();
  gint64 t;

  first_page = wait_first_page (list, start);

  /* Search as the window does it (the list reloads: count, then the first page)... */
  t = g_get_monotonic_time ();
  tocsin_record_list_set_search (list, search);
  while (tocsin_record_list_get_loading (list))
    g_main_context_iteration (NULL, TRUE);
  search_ms = wait_first_page (list, t);

  t = g_get_monotonic_time ();
  tocsin_record_list_set_search (list, "zanzibar");
  while (tocsin_record_list_get_loading (list))
    g_main_context_iteration (NULL, TRUE);
  rare_ms = wait_first_page (list, t);

  /* ...and the history's query alone (one page, no count). */
  query->search = g_strdup (search);
  t = g_get_monotonic_time ();
  tocsin_history_query_async (history, query, 0, HISTORY_PAGE, NULL, on_query, &records);
  while (records == NULL)
    g_main_context_iteration (NULL, TRUE);
  query_ms = ms_since (t);
  g_clear_pointer (&records, g_ptr_array_unref);

  g_free (query->search);
  query->search = g_strdup ("zanzibar");
  t = g_get_monotonic_time ();
  tocsin_history_query_async (history, query, 0, HISTORY_PAGE, NULL, on_query, &records);
  while (records == NULL)
    g_main_context_iteration (NULL, TRUE);
  rare_query_ms = ms_since (t);
  g_clear_pointer (&records, g_ptr_array_unref);

  read_rss (&rss, &hwm);
  g_print ("{\"first_page_ms\": %.3f, \"search_list_ms\": %.3f, \"search_rare_list_ms\": %.3f,"
           " \"search_query_ms\": %.3f, \"search_rare_query_ms\": %.3f,"
           " \"rss_bytes\": %" G_GINT64_FORMAT ", \"rss_peak_bytes\": %" G_GINT64_FORMAT "}\n",
           first_page, search_ms, rare_ms, query_ms, rare_query_ms, rss, hwm);
  tocsin_history_flush_sync (history);
  return 0;
}

static int
user_version (const char *path)
{
  sqlite3 *db;
  sqlite3_stmt *stmt;
  int version = -1;

  if (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    {
      sqlite3_close (db);
      return -1;
    }
  if (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL) == SQLITE_OK
      && sqlite3_step (stmt) == SQLITE_ROW)
    version = sqlite3_column_int (stmt, 0);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return version;
}

/* The cached database is reused only if the history's schema version is still the one it was
 * made with: a fresh, empty history tells which version the code writes. */
static gboolean
cache_is_current (const char *db)
{
  g_autofree char *dir = NULL;
  g_autofree char *fresh = NULL;
  gboolean current;

  if (!g_file_test (db, G_FILE_TEST_EXISTS))
    return FALSE;
  dir = tocsin_test_make_tmpdir ("bench-schema-");
  fresh = g_build_filename (dir, "history.db", NULL);
  {
    g_autoptr(TocsinHistory) history = tocsin_history_new (fresh);
    gboolean ready = FALSE;

    tocsin_history_wait_ready_async (history, NULL, on_ready, &ready);
    while (!ready)
      g_main_context_iteration (NULL, TRUE);
    tocsin_history_flush_sync (history);
  }
  current = user_version (fresh) == user_version (db);
  tocsin_test_rmdir_recursive (dir);
  return current;
}

/* Makes the next open of @path a cold one: the kernel drops the file's cached pages
 * (posix_fadvise needs no privilege, unlike /proc/sys/vm/drop_caches). */
static gboolean
evict_from_page_cache (const char *path)
{
  int fd = g_open (path, O_RDONLY, 0);
  gboolean ok;

  if (fd < 0)
    return FALSE;
  ok = fdatasync (fd) == 0 && posix_fadvise (fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
  close (fd);
  return ok;
}

static int
bench_history (const char *self_path, const char *cache)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *db = g_strdup (cache);
  double generate_s = 0;
  gboolean generated = FALSE;
  double best_first = G_MAXDOUBLE;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(JsonNode) runs = json_node_new (JSON_NODE_ARRAY);
  JsonArray *array = json_array_new ();
  gboolean dropped = FALSE;

  json_node_take_array (runs, array);
  if (!cache_is_current (db))
    {
      gint64 t = g_get_monotonic_time ();
      g_autofree char *tmp = g_strconcat (db, ".tmp", NULL);

      g_remove (tmp);
      /* A stale cache and its WAL files go before the new one takes the name. */
      for (guint i = 0; i < 3; i++)
        {
          g_autofree char *file = g_strconcat (db, (const char *[]) { "", "-wal", "-shm" }[i],
                                               NULL);
          g_remove (file);
        }
      history_generate (tmp, HISTORY_RECORDS);
      if (g_rename (tmp, db) != 0)
        g_error ("rename %s: %s", db, g_strerror (errno));
      generate_s = ms_since (t) / 1000;
      generated = TRUE;
    }

  /* Three fresh processes: the first with the database out of the page cache (cold), the
   * others warm. */
  for (int run = 0; run < 3; run++)
    {
      const char *argv[] = { self_path, "history-open", db, "disk", NULL };
      g_autofree char *out = NULL;
      g_autoptr(GError) error = NULL;
      int status;
      JsonObject *o;

      if (run == 0)
        dropped = evict_from_page_cache (db);
      if (!g_spawn_sync (NULL, (char **) argv, NULL, 0, NULL, NULL, &out, NULL, &status, &error)
          || !g_spawn_check_wait_status (status, &error))
        g_error ("history-open: %s", error ? error->message : "failed");
      if (!json_parser_load_from_data (parser, out, -1, &error))
        g_error ("history-open said %s: %s", out, error->message);
      o = json_node_get_object (json_parser_get_root (parser));
      json_object_set_boolean_member (o, "page_cache_dropped", run == 0 && dropped);
      best_first = MIN (best_first, json_object_get_double_member (o, "first_page_ms"));
      json_array_add_element (array, json_node_copy (json_parser_get_root (parser)));
    }

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "records");
  json_builder_add_int_value (b, HISTORY_RECORDS);
  json_builder_set_member_name (b, "generated_this_run");
  json_builder_add_boolean_value (b, generated);
  json_builder_set_member_name (b, "generate_seconds");
  json_builder_add_double_value (b, generate_s);
  {
    GStatBuf st;
    json_builder_set_member_name (b, "db_bytes");
    json_builder_add_int_value (b, g_stat (db, &st) == 0 ? st.st_size : -1);
  }
  json_builder_set_member_name (b, "runs");
  json_builder_add_value (b, json_node_copy (runs));
  json_builder_end_object (b);
  write_result (b);
  return 0;
}

/* ---- burst / e2e common ------------------------------------------------------------------- */

/* The longest gap between two runs of a 1 ms timeout: how long the main loop was busy. On a
 * shared machine that includes time the thread waited for a CPU, so the meter also keeps the
 * most CPU time the main thread used between two runs, which other load hardly moves. */
typedef struct
{
  gint64 last;
  gint64 last_cpu;
  gint64 max_gap;
  gint64 max_gap_end;   /* when the longest gap ended (monotonic µs) */
  gint64 max_cpu_gap;
  gint64 max_cpu_gap_end;
  gint64 max_cpu_gap_start;
  guint  ticks;
} StallMeter;

static gint64
thread_cpu_us (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (gint64) ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

static gboolean
stall_tick (gpointer user_data)
{
  StallMeter *m = user_data;
  gint64 now = g_get_monotonic_time ();
  gint64 cpu = thread_cpu_us ();

  if (m->last && now - m->last > m->max_gap)
    {
      m->max_gap = now - m->last;
      m->max_gap_end = now;
    }
  if (m->last_cpu && cpu - m->last_cpu > m->max_cpu_gap)
    {
      m->max_cpu_gap = cpu - m->last_cpu;
      m->max_cpu_gap_start = m->last;
      m->max_cpu_gap_end = now;
    }
  m->last = now;
  m->last_cpu = cpu;
  m->ticks++;
  return G_SOURCE_CONTINUE;
}

static JsonObject *
create_channel (TocsinTestRelay *relay, const char *name, const char *title)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) req = NULL;
  g_autofree char *body = NULL;
  g_autoptr(JsonNode) node = NULL;
  guint status = 0;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, name);
  json_builder_set_member_name (b, "title");
  json_builder_add_string_value (b, title);
  json_builder_set_member_name (b, "body");
  json_builder_add_string_value (b, "L'utilisation du CPU a atteint {{cpu_usage}}%");
  json_builder_end_object (b);
  req = json_builder_get_root (b);
  json_generator_set_root (gen, req);
  body = json_generator_to_data (gen, NULL);
  node = tocsin_test_http_json (relay, "POST", "/v1/channels", "application/json", body, NULL,
                                &status);
  if (status != 201 && status != 200)
    g_error ("channel create: %u", status);
  return json_object_ref (json_node_get_object (node));
}

typedef struct
{
  guint       received;
  gint64      first_us;
  gint64      last_us;
} ClientCounter;

static void
on_record_received (TocsinClient *client, TocsinRecord *record, int result, gpointer user_data)
{
  ClientCounter *c = user_data;
  gint64 now = g_get_monotonic_time ();

  if (c->received++ == 0)
    c->first_us = now;
  c->last_us = now;
}

static void
on_subscribed_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinSubscription) sub =
    tocsin_client_subscribe_finish (TOCSIN_CLIENT (source), result, &error);

  if (sub == NULL)
    g_error ("subscribe: %s", error->message);
  (*(guint *) user_data)++;
}

/* ---- burst -------------------------------------------------------------------------------- */

static int
bench_burst (void)
{
  const char *relay_args[] = { "--rate=1000000", "--burst=1000000", NULL };
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, relay_args);
  g_autoptr(JsonObject) channel = create_channel (relay, "burst", "Burst {{seq}}");
  g_autofree char *trigger = g_strdup_printf ("/t/%s",
                                              json_object_get_string_member (channel, "trigger_token"));
  g_autofree char *dir = tocsin_test_make_tmpdir ("bench-burst-");
  g_autofree char *db = g_build_filename (dir, "history.db", NULL);
  g_autoptr(TocsinHistory) history = NULL;
  g_autoptr(TocsinNotifier) notifier = NULL;
  g_autoptr(TocsinClient) client = NULL;
  g_autoptr(TocsinSubscription) sub = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  ClientCounter counter = { 0 };
  StallMeter meter = { 0 };
  guint subscribed = 0, stall_id;
  gint64 start, deadline, rss, hwm;
  double cpu0, cpu1;
  gboolean with_notifier = g_getenv ("DBUS_SESSION_BUS_ADDRESS") != NULL;

  /* The 10,000 messages wait on the relay (retention on); subscribing from cursor 0 makes them
   * arrive at once, as after a laptop wakes up. */
  for (guint i = 1; i <= BURST_MESSAGES; i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"seq\":%u,\"cpu_usage\":%u}", i, i % 100);
      guint status = tocsin_test_http (relay, "POST", trigger, "application/json", body, -1,
                                       NULL, NULL, NULL);
      if (status != 200)
        g_error ("webhook %u: status %u", i, status);
    }

  history = tocsin_history_new (db);
  if (with_notifier)
    notifier = tocsin_notifier_new (NULL);
  client = tocsin_client_new (history, notifier, NULL);
  g_signal_connect (client, "record-received", G_CALLBACK (on_record_received), &counter);
  tocsin_client_start (client);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_started (client));

  sub = tocsin_subscription_new (relay->base_url,
                                 json_object_get_string_member (channel, "subscribe_token"));
  tocsin_subscription_set_cursor (sub, 0);

  /* BENCH_ATTACH=1: say so and wait a moment, so that a profiler attached now (perf -p)
   * sees the burst and not the 10,000 webhooks that prepared it. */
  if (g_getenv ("BENCH_ATTACH"))
    {
      g_printerr ("burst: pid %d subscribing in 2 s\n", (int) getpid ());
      g_usleep (2 * G_USEC_PER_SEC);
    }
  stall_id = g_timeout_add (1, stall_tick, &meter);
  cpu0 = cpu_seconds ();
  start = g_get_monotonic_time ();
  tocsin_client_subscribe_async (client, sub, NULL, on_subscribed_cb, &subscribed);
  deadline = start + 120 * G_USEC_PER_SEC;
  while (counter.received < BURST_MESSAGES && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  cpu1 = cpu_seconds ();
  g_source_remove (stall_id);
  read_rss (&rss, &hwm);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "messages");
  json_builder_add_int_value (b, BURST_MESSAGES);
  json_builder_set_member_name (b, "stored");
  json_builder_add_int_value (b, counter.received);
  json_builder_set_member_name (b, "with_notifier");
  json_builder_add_boolean_value (b, with_notifier);
  json_builder_set_member_name (b, "subscribe_to_last_ms");
  json_builder_add_double_value (b, (counter.last_us - start) / 1000.0);
  json_builder_set_member_name (b, "first_to_last_ms");
  json_builder_add_double_value (b, (counter.last_us - counter.first_us) / 1000.0);
  json_builder_set_member_name (b, "stored_per_s");
  json_builder_add_double_value (b, counter.received * 1e6 / MAX (1, counter.last_us - start));
  json_builder_set_member_name (b, "stored_per_s_first_to_last");
  json_builder_add_double_value (b, counter.received * 1e6
                                    / MAX (1, counter.last_us - counter.first_us));
  json_builder_set_member_name (b, "longest_stall_ms");
  json_builder_add_double_value (b, meter.max_gap / 1000.0);
  /* Where in the burst it ended (ms after subscribing), and in monotonic µs, to find it in a
   * profile recorded with `perf record -k CLOCK_MONOTONIC`. */
  json_builder_set_member_name (b, "longest_stall_end_ms");
  json_builder_add_double_value (b, (meter.max_gap_end - start) / 1000.0);
  json_builder_set_member_name (b, "longest_stall_end_us");
  json_builder_add_int_value (b, meter.max_gap_end);
  json_builder_set_member_name (b, "longest_stall_cpu_ms");
  json_builder_add_double_value (b, meter.max_cpu_gap / 1000.0);
  json_builder_set_member_name (b, "longest_stall_cpu_start_us");
  json_builder_add_int_value (b, meter.max_cpu_gap_start);
  json_builder_set_member_name (b, "longest_stall_cpu_end_us");
  json_builder_add_int_value (b, meter.max_cpu_gap_end);
  json_builder_set_member_name (b, "timer_ticks");
  json_builder_add_int_value (b, meter.ticks);
  json_builder_set_member_name (b, "app_cpu_s");
  json_builder_add_double_value (b, cpu1 - cpu0);
  json_builder_set_member_name (b, "rss_bytes");
  json_builder_add_int_value (b, rss);
  json_builder_end_object (b);
  write_result (b);

  tocsin_client_stop (client);
  tocsin_history_flush_sync (history);
  tocsin_test_rmdir_recursive (dir);
  return counter.received == BURST_MESSAGES ? 0 : 1;
}

/* ---- end to end --------------------------------------------------------------------------- */

typedef struct
{
  GMutex      lock;
  GHashTable *sent;       /* seq → gint64* send time (monotonic µs) */
  GArray     *latencies;  /* double ms */
  guint       notifies;
  guint       unmatched;
} E2E;

/* Runs on its own thread and context, so a busy client main loop cannot delay the stamp. */
static void
on_method_called (GDBusConnection *connection, const char *sender, const char *path,
                  const char *iface, const char *signal, GVariant *params, gpointer user_data)
{
  E2E *e = user_data;
  gint64 now = g_get_monotonic_time ();
  const char *method;
  g_autoptr(GVariant) args = NULL;
  g_autoptr(GVariant) summary_v = NULL;
  g_autoptr(GVariant) summary = NULL;
  const char *text;
  guint64 seq;

  g_variant_get (params, "(&s@av)", &method, &args);
  if (g_strcmp0 (method, "Notify") != 0 || g_variant_n_children (args) < 4)
    return;
  summary_v = g_variant_get_child_value (args, 3);
  summary = g_variant_get_variant (summary_v);
  if (!g_variant_is_of_type (summary, G_VARIANT_TYPE_STRING))
    return;
  text = g_variant_get_string (summary, NULL);
  g_mutex_lock (&e->lock);
  e->notifies++;
  if (g_str_has_prefix (text, "E2E ") && (seq = g_ascii_strtoull (text + 4, NULL, 10)) > 0)
    {
      gint64 *t = g_hash_table_lookup (e->sent, GUINT_TO_POINTER ((guint) seq));
      if (t)
        {
          double ms = (now - *t) / 1000.0;
          g_array_append_val (e->latencies, ms);
          g_hash_table_remove (e->sent, GUINT_TO_POINTER ((guint) seq));
        }
    }
  else
    e->unmatched++;
  g_mutex_unlock (&e->lock);
}

typedef struct
{
  E2E             *e;
  GMainContext    *context;
  GMainLoop       *loop;
  gboolean         ready;
} Watcher;

static gpointer
watcher_thread (gpointer user_data)
{
  Watcher *w = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) bus = NULL;
  guint id;

  g_main_context_push_thread_default (w->context);
  /* Its own connection: signals on the shared one would be dispatched in order with the
   * client's traffic. */
  bus = g_dbus_connection_new_for_address_sync (g_getenv ("DBUS_SESSION_BUS_ADDRESS"),
                                                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
                                                | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                NULL, NULL, &error);
  if (bus == NULL)
    g_error ("session bus: %s", error->message);
  id = g_dbus_connection_signal_subscribe (bus, "org.freedesktop.Notifications",
                                           "org.freedesktop.DBus.Mock", "MethodCalled",
                                           "/org/freedesktop/Notifications", NULL,
                                           G_DBUS_SIGNAL_FLAGS_NONE, on_method_called, w->e,
                                           NULL);
  /* Match rules are in place once the bus answered a round trip. */
  g_dbus_connection_call_sync (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "GetId", NULL, NULL,
                               G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
  g_atomic_int_set (&w->ready, TRUE);
  g_main_loop_run (w->loop);
  g_dbus_connection_signal_unsubscribe (bus, id);
  g_main_context_pop_thread_default (w->context);
  return NULL;
}

typedef struct
{
  E2E             *e;
  TocsinTestRelay *relay;
  GPtrArray       *triggers;
  guint            sent;
  guint            errors;
  double           cpu_s;
} Sender;

/* Open loop at E2E_RATE a second, on its own thread and SoupSession. */
static gpointer
sender_thread (gpointer user_data)
{
  Sender *s = user_data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(SoupSession) session = NULL;
  guint total = E2E_RATE * E2E_SECONDS;
  gint64 start;

  g_main_context_push_thread_default (context);
  session = soup_session_new_with_options ("max-conns", 64, "max-conns-per-host", 64, NULL);
  start = g_get_monotonic_time ();
  for (guint i = 1; i <= total; i++)
    {
      gint64 due = start + (gint64) (i - 1) * G_USEC_PER_SEC / E2E_RATE;
      g_autofree char *url = NULL;
      g_autofree char *body = g_strdup_printf ("{\"seq\":%u,\"cpu_usage\":%u}", i, i % 100);
      g_autoptr(SoupMessage) msg = NULL;
      g_autoptr(GBytes) reply = NULL;
      gint64 *t = g_new (gint64, 1);
      gint64 now = g_get_monotonic_time ();

      if (due > now)
        g_usleep (due - now);
      url = g_strconcat (s->relay->base_url, g_ptr_array_index (s->triggers, i % s->triggers->len),
                         NULL);
      msg = soup_message_new ("POST", url);
      {
        gsize len = strlen (body);
        g_autoptr(GBytes) bytes = g_bytes_new_take (g_steal_pointer (&body), len);
        soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
      }
      *t = g_get_monotonic_time ();
      g_mutex_lock (&s->e->lock);
      g_hash_table_insert (s->e->sent, GUINT_TO_POINTER (i), t);
      g_mutex_unlock (&s->e->lock);
      reply = soup_session_send_and_read (session, msg, NULL, NULL);
      if (soup_message_get_status (msg) != SOUP_STATUS_OK)
        s->errors++;
      s->sent++;
    }
  g_main_context_pop_thread_default (context);
  return NULL;
}

static int
bench_e2e (void)
{
  const char *relay_args[] = { "--rate=1000000", "--burst=1000000", NULL };
  g_autoptr(TocsinTestRelay) relay = tocsin_test_relay_start (NULL, relay_args);
  g_autofree char *dir = tocsin_test_make_tmpdir ("bench-e2e-");
  g_autofree char *db = g_build_filename (dir, "history.db", NULL);
  g_autoptr(TocsinHistory) history = NULL;
  g_autoptr(TocsinNotifier) notifier = NULL;
  g_autoptr(TocsinClient) client = NULL;
  g_autoptr(GPtrArray) triggers = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  ClientCounter counter = { 0 };
  StallMeter meter = { 0 };
  E2E e = { 0 };
  Watcher w = { 0 };
  Sender s = { 0 };
  GThread *watcher, *sender;
  guint subscribed = 0, stall_id;
  gint64 deadline;
  double cpu0, cpu1;

  if (g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL)
    g_error ("e2e needs a session bus with a notification server (build-aux/with-dbusmock.sh)");

  g_mutex_init (&e.lock);
  e.sent = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  e.latencies = g_array_new (FALSE, FALSE, sizeof (double));

  history = tocsin_history_new (db);
  notifier = tocsin_notifier_new (NULL);
  client = tocsin_client_new (history, notifier, NULL);
  g_signal_connect (client, "record-received", G_CALLBACK (on_record_received), &counter);
  tocsin_client_start (client);
  TOCSIN_WAIT_UNTIL (tocsin_client_get_started (client));

  for (guint i = 0; i < E2E_CHANNELS; i++)
    {
      g_autofree char *name = g_strdup_printf ("e2e %u", i);
      g_autoptr(JsonObject) ch = create_channel (relay, name, "E2E {{seq}}");
      g_autoptr(TocsinSubscription) sub =
        tocsin_subscription_new (relay->base_url,
                                 json_object_get_string_member (ch, "subscribe_token"));

      g_ptr_array_add (triggers, g_strdup_printf ("/t/%s",
                                                  json_object_get_string_member (ch, "trigger_token")));
      tocsin_client_subscribe_async (client, sub, NULL, on_subscribed_cb, &subscribed);
    }
  TOCSIN_WAIT_UNTIL (subscribed == E2E_CHANNELS);
  /* Subscribed in the app's list is not yet "subscribed" on the relay: let the frames land. */
  {
    gint64 until = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;
    while (g_get_monotonic_time () < until)
      g_main_context_iteration (NULL, FALSE), g_usleep (1000);
  }

  w.e = &e;
  w.context = g_main_context_new ();
  w.loop = g_main_loop_new (w.context, FALSE);
  watcher = g_thread_new ("watcher", watcher_thread, &w);
  while (!g_atomic_int_get (&w.ready))
    g_usleep (1000);

  s.e = &e;
  s.relay = relay;
  s.triggers = triggers;
  stall_id = g_timeout_add (1, stall_tick, &meter);
  cpu0 = cpu_seconds ();
  sender = g_thread_new ("sender", sender_thread, &s);
  deadline = g_get_monotonic_time () + (E2E_SECONDS + 30) * G_USEC_PER_SEC;
  while (g_get_monotonic_time () < deadline)
    {
      guint got;

      g_main_context_iteration (NULL, TRUE);
      g_mutex_lock (&e.lock);
      got = e.latencies->len;
      g_mutex_unlock (&e.lock);
      if (got >= (guint) E2E_RATE * E2E_SECONDS)
        break;
    }
  g_thread_join (sender);
  /* Stragglers for one more second. */
  {
    gint64 until = g_get_monotonic_time () + G_USEC_PER_SEC;
    while (g_get_monotonic_time () < until)
      g_main_context_iteration (NULL, FALSE), g_usleep (500);
  }
  cpu1 = cpu_seconds ();
  g_source_remove (stall_id);
  g_main_loop_quit (w.loop);
  g_thread_join (watcher);

  g_array_sort (e.latencies, compare_double);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "rate");
  json_builder_add_int_value (b, E2E_RATE);
  json_builder_set_member_name (b, "channels");
  json_builder_add_int_value (b, E2E_CHANNELS);
  json_builder_set_member_name (b, "sent");
  json_builder_add_int_value (b, s.sent);
  json_builder_set_member_name (b, "send_errors");
  json_builder_add_int_value (b, s.errors);
  json_builder_set_member_name (b, "stored");
  json_builder_add_int_value (b, counter.received);
  json_builder_set_member_name (b, "notified");
  json_builder_add_int_value (b, e.latencies->len);
  json_builder_set_member_name (b, "other_notify_calls");
  json_builder_add_int_value (b, e.unmatched);
  json_builder_set_member_name (b, "p50_ms");
  json_builder_add_double_value (b, percentile (e.latencies, 50));
  json_builder_set_member_name (b, "p99_ms");
  json_builder_add_double_value (b, percentile (e.latencies, 99));
  json_builder_set_member_name (b, "max_ms");
  json_builder_add_double_value (b, percentile (e.latencies, 100));
  json_builder_set_member_name (b, "longest_stall_ms");
  json_builder_add_double_value (b, meter.max_gap / 1000.0);
  json_builder_set_member_name (b, "process_cpu_pct");
  json_builder_add_double_value (b, 100 * (cpu1 - cpu0) / E2E_SECONDS);
  json_builder_end_object (b);
  write_result (b);

  tocsin_client_stop (client);
  tocsin_history_flush_sync (history);
  tocsin_test_rmdir_recursive (dir);
  g_main_loop_unref (w.loop);
  g_main_context_unref (w.context);
  g_hash_table_unref (e.sent);
  g_array_unref (e.latencies);
  return 0;
}

int
main (int argc, char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "";

  if (g_strcmp0 (mode, "history-open") == 0 && argc == 4)
    return history_open (argv[2], argv[3]);

  for (int i = 2; i < argc; i++)
    if (g_str_has_prefix (argv[i], "--out="))
      out_path = g_strdup (argv[i] + 6);
  if (out_path == NULL)
    {
      g_printerr ("usage: bench-app history|burst|e2e --out=FILE [--cache=DB]\n");
      return 2;
    }
  if (g_strcmp0 (mode, "history") == 0)
    {
      const char *cache = NULL;
      for (int i = 2; i < argc; i++)
        if (g_str_has_prefix (argv[i], "--cache="))
          cache = argv[i] + 8;
      if (cache == NULL)
        {
          g_printerr ("history needs --cache=DB (kept between runs)\n");
          return 2;
        }
      return bench_history (argv[0], cache);
    }
  if (g_strcmp0 (mode, "burst") == 0)
    return bench_burst ();
  if (g_strcmp0 (mode, "e2e") == 0)
    return bench_e2e ();
  g_printerr ("unknown mode %s\n", mode);
  return 2;
}
