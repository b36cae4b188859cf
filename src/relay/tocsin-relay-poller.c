/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-poller.c: one epoll set in one GSource for every idle connection.
 *
 * GLib's main loop polls every GSource's descriptors on every turn, and prepares and checks
 * every source: poll() over all of them, O(connections) per turn whatever is ready. With a source
 * per subscriber (GIO's pollable sources, a GSocket timeout, a keepalive timer) 10,000 idle
 * subscribers made each webhook on another channel 21 times slower (docs/performance.md). Here
 * the connections live in one epoll set, whose one descriptor is all GLib polls; a dispatch asks
 * epoll what is ready (at most MAX_EVENTS descriptors, so one turn stays short and the rest of
 * the loop gets its turn) and calls only those. Deadlines (idle timeouts, keepalives, the close
 * handshake's 5 s) are a binary heap in the same source: GLib sees one timeout, the nearest.
 *
 * Level-triggered, not edge-triggered: callers read a bounded amount per dispatch (one client
 * must not hold the loop), and level-triggering hands the rest over in the next dispatch without
 * any bookkeeping; edge-triggering would need every reader to drain to EAGAIN or to remember
 * that it stopped early. An idle connection costs nothing either way (it is not in epoll's ready
 * list), and writability is asked for only while something waits to be written, so a
 * level-triggered EPOLLOUT does not spin. What edge-triggering would save (an epoll_ctl when a
 * socket fills or drains) is not where the time goes: with 10,000 idle subscribers the relay's
 * ingest is as fast as with none (docs/performance.md), so the simpler, safer mode.
 *
 * Bytes a stream holds in a buffer of its own (libsoup's, read with a handshake; a TLS record
 * decrypted but not yet read) are invisible to epoll: tocsin_relay_poller_watch_wake() makes the
 * next dispatch call the watch as if the descriptor were readable.
 *
 * A watch freed inside a dispatch is only marked dead and freed at the end of it, so that an
 * event already fetched for it is dropped instead of reaching freed memory. A descriptor closed
 * behind a watch's back leaves epoll by itself; the poller remembers which watch holds each
 * descriptor, so that a stale watch never removes a newer one's registration of the same number.
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "tocsin-relay-poller.h"

#define MAX_EVENTS      64
#define MAX_EXPIRED     256
#define NOT_IN_HEAP     G_MAXUINT

typedef struct _Poller Poller;

struct _TocsinRelayPollerWatch
{
  Poller               *poller;       /* borrowed: pollers live as long as the process */
  int                   fd;           /* -1: a deadline alone */
  guint32               registered;   /* epoll events in the set; 0: not in it */
  TocsinRelayPollerFunc func;
  gpointer              user_data;
  gint64                deadline;     /* monotonic µs; -1: none */
  guint                 heap_index;
  gboolean              woken;
  gboolean              dead;
};

struct _Poller
{
  GSource     source;
  int         epfd;
  gpointer    tag;
  gint        priority;
  GPtrArray  *heap;      /* TocsinRelayPollerWatch*, a min-heap on deadline */
  GPtrArray  *woken;     /* TocsinRelayPollerWatch*, to call with G_IO_IN */
  GPtrArray  *dead;      /* freed at the end of the dispatch */
  GPtrArray  *by_fd;     /* fd → the watch registered for it */
  gboolean    dispatching;
  guint       count;
};

static GSList *pollers;  /* Poller*, one per priority */

/* ---- Deadlines ---- */

static void
heap_set (Poller                 *poller,
          guint                   i,
          TocsinRelayPollerWatch *watch)
{
  poller->heap->pdata[i] = watch;
  watch->heap_index = i;
}

static void
heap_sift_up (Poller *poller,
              guint   i)
{
  TocsinRelayPollerWatch *watch = poller->heap->pdata[i];

  while (i > 0)
    {
      guint parent = (i - 1) / 2;
      TocsinRelayPollerWatch *p = poller->heap->pdata[parent];

      if (p->deadline <= watch->deadline)
        break;
      heap_set (poller, i, p);
      i = parent;
    }
  heap_set (poller, i, watch);
}

static void
heap_sift_down (Poller *poller,
                guint   i)
{
  TocsinRelayPollerWatch *watch = poller->heap->pdata[i];
  guint n = poller->heap->len;

  for (;;)
    {
      guint child = 2 * i + 1;
      TocsinRelayPollerWatch *c;

      if (child >= n)
        break;
      if (child + 1 < n &&
          ((TocsinRelayPollerWatch *) poller->heap->pdata[child + 1])->deadline <
          ((TocsinRelayPollerWatch *) poller->heap->pdata[child])->deadline)
        child++;
      c = poller->heap->pdata[child];
      if (watch->deadline <= c->deadline)
        break;
      heap_set (poller, i, c);
      i = child;
    }
  heap_set (poller, i, watch);
}

static void
heap_remove (Poller                 *poller,
             TocsinRelayPollerWatch *watch)
{
  guint i = watch->heap_index;
  TocsinRelayPollerWatch *last;

  g_assert (i < poller->heap->len && poller->heap->pdata[i] == watch);
  watch->heap_index = NOT_IN_HEAP;
  last = g_ptr_array_steal_index_fast (poller->heap, poller->heap->len - 1);
  if (last == watch)
    return;
  heap_set (poller, i, last);
  heap_sift_up (poller, i);
  heap_sift_down (poller, last->heap_index);
}

static gint64
next_deadline (Poller *poller)
{
  if (poller->heap->len == 0)
    return -1;
  return ((TocsinRelayPollerWatch *) poller->heap->pdata[0])->deadline;
}

/* ---- The source ---- */

static gboolean
poller_prepare (GSource *source,
                gint    *timeout)
{
  Poller *poller = (Poller *) source;
  gint64 deadline = next_deadline (poller);
  gint64 now;

  *timeout = -1;
  if (poller->woken->len > 0)
    {
      *timeout = 0;
      return TRUE;
    }
  if (deadline < 0)
    return FALSE;
  now = g_source_get_time (source);
  if (deadline <= now)
    {
      *timeout = 0;
      return TRUE;
    }
  /* Rounded up: waking a millisecond early would only come back here. */
  *timeout = (gint) MIN ((deadline - now + 999) / 1000, G_MAXINT);
  return FALSE;
}

static gboolean
poller_check (GSource *source)
{
  Poller *poller = (Poller *) source;
  gint64 deadline = next_deadline (poller);

  if (g_source_query_unix_fd (source, poller->tag) & G_IO_IN)
    return TRUE;
  return poller->woken->len > 0 || (deadline >= 0 && deadline <= g_source_get_time (source));
}

static GIOCondition
condition_from_epoll (guint32 events)
{
  GIOCondition condition = 0;

  if (events & EPOLLIN)
    condition |= G_IO_IN;
  if (events & EPOLLOUT)
    condition |= G_IO_OUT;
  if (events & EPOLLPRI)
    condition |= G_IO_PRI;
  if (events & (EPOLLHUP | EPOLLRDHUP))
    condition |= G_IO_HUP;
  if (events & EPOLLERR)
    condition |= G_IO_ERR;
  return condition;
}

static gboolean
poller_dispatch (GSource     *source,
                 GSourceFunc  callback,
                 gpointer     user_data)
{
  Poller *poller = (Poller *) source;
  struct epoll_event events[MAX_EVENTS];
  g_autoptr(GPtrArray) woken = NULL;
  gint64 now;
  int n;

  poller->dispatching = TRUE;

  /* Woken first: their bytes were there before anything epoll can report now. */
  if (poller->woken->len > 0)
    {
      woken = g_steal_pointer (&poller->woken);
      poller->woken = g_ptr_array_new ();
      for (guint i = 0; i < woken->len; i++)
        {
          TocsinRelayPollerWatch *watch = woken->pdata[i];

          if (watch->dead || !watch->woken)
            continue;
          watch->woken = FALSE;
          watch->func (watch->fd, G_IO_IN, watch->user_data);
        }
    }

  do
    n = epoll_wait (poller->epfd, events, MAX_EVENTS, 0);
  while (n < 0 && errno == EINTR);
  for (int i = 0; i < n; i++)
    {
      TocsinRelayPollerWatch *watch = events[i].data.ptr;

      if (watch->dead || watch->registered == 0)
        continue;
      watch->func (watch->fd, condition_from_epoll (events[i].events), watch->user_data);
    }

  now = g_get_monotonic_time ();
  for (guint i = 0; i < MAX_EXPIRED && poller->heap->len > 0; i++)
    {
      TocsinRelayPollerWatch *watch = poller->heap->pdata[0];

      if (watch->deadline > now)
        break;
      heap_remove (poller, watch);
      watch->deadline = -1;
      watch->func (watch->fd, 0, watch->user_data);
    }

  poller->dispatching = FALSE;
  g_ptr_array_set_size (poller->dead, 0);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs poller_funcs = {
  poller_prepare, poller_check, poller_dispatch, NULL, NULL, NULL,
};

static Poller *
poller_get (gint priority)
{
  Poller *poller;
  int epfd;

  for (GSList *l = pollers; l; l = l->next)
    if (((Poller *) l->data)->priority == priority)
      return l->data;

  epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (epfd < 0)
    g_error ("epoll_create1: %s", g_strerror (errno));
  poller = (Poller *) g_source_new (&poller_funcs, sizeof (Poller));
  poller->epfd = epfd;
  poller->priority = priority;
  poller->heap = g_ptr_array_new ();
  poller->woken = g_ptr_array_new ();
  poller->dead = g_ptr_array_new_with_free_func (g_free);
  poller->by_fd = g_ptr_array_new ();
  poller->tag = g_source_add_unix_fd ((GSource *) poller, epfd, G_IO_IN);
  g_source_set_priority ((GSource *) poller, priority);
  g_source_set_static_name ((GSource *) poller, "[tocsin-relay] poller");
  g_source_attach ((GSource *) poller, NULL);
  pollers = g_slist_prepend (pollers, poller);
  return poller;
}

/* ---- Watches ---- */

static guint32
epoll_from_condition (GIOCondition condition)
{
  guint32 events = 0;

  if (condition & G_IO_IN)
    events |= EPOLLIN;
  if (condition & G_IO_OUT)
    events |= EPOLLOUT;
  if (condition & G_IO_PRI)
    events |= EPOLLPRI;
  if (condition & G_IO_HUP)
    events |= EPOLLRDHUP;
  return events;
}

static TocsinRelayPollerWatch *
by_fd_get (Poller *poller,
           int     fd)
{
  return (guint) fd < poller->by_fd->len ? poller->by_fd->pdata[fd] : NULL;
}

static void
by_fd_set (Poller                 *poller,
           int                     fd,
           TocsinRelayPollerWatch *watch)
{
  if ((guint) fd >= poller->by_fd->len)
    g_ptr_array_set_size (poller->by_fd, MAX ((guint) fd + 1, poller->by_fd->len * 2));
  poller->by_fd->pdata[fd] = watch;
}

static void
watch_register (TocsinRelayPollerWatch *watch,
                guint32                 events)
{
  Poller *poller = watch->poller;
  struct epoll_event ev = { 0, };
  TocsinRelayPollerWatch *holder;

  if (watch->fd < 0 || events == watch->registered)
    return;
  ev.events = events;
  ev.data.ptr = watch;
  if (events == 0)
    {
      /* Only while the descriptor is still this watch's: the number may be another's now. */
      if (by_fd_get (poller, watch->fd) == watch)
        {
          epoll_ctl (poller->epfd, EPOLL_CTL_DEL, watch->fd, NULL);
          by_fd_set (poller, watch->fd, NULL);
        }
      watch->registered = 0;
      return;
    }
  if (watch->registered != 0 && by_fd_get (poller, watch->fd) == watch &&
      epoll_ctl (poller->epfd, EPOLL_CTL_MOD, watch->fd, &ev) == 0)
    {
      watch->registered = events;
      return;
    }
  holder = by_fd_get (poller, watch->fd);
  if (holder != NULL && holder != watch)
    {
      /* Its descriptor was closed without it (which took it out of epoll) and the number was
       * given out again: that watch is stale. */
      holder->registered = 0;
    }
  if (epoll_ctl (poller->epfd, EPOLL_CTL_ADD, watch->fd, &ev) != 0 &&
      (errno != EEXIST || epoll_ctl (poller->epfd, EPOLL_CTL_MOD, watch->fd, &ev) != 0))
    {
      g_warning ("epoll_ctl on descriptor %d: %s", watch->fd, g_strerror (errno));
      watch->registered = 0;
      return;
    }
  by_fd_set (poller, watch->fd, watch);
  watch->registered = events;
}

TocsinRelayPollerWatch *
tocsin_relay_poller_watch_new (int                   fd,
                               GIOCondition          events,
                               gint                  priority,
                               TocsinRelayPollerFunc func,
                               gpointer              user_data)
{
  TocsinRelayPollerWatch *watch;

  g_return_val_if_fail (func != NULL, NULL);

  watch = g_new0 (TocsinRelayPollerWatch, 1);
  watch->poller = poller_get (priority);
  watch->fd = fd;
  watch->func = func;
  watch->user_data = user_data;
  watch->deadline = -1;
  watch->heap_index = NOT_IN_HEAP;
  watch->poller->count++;
  watch_register (watch, epoll_from_condition (events));
  return watch;
}

void
tocsin_relay_poller_watch_set_events (TocsinRelayPollerWatch *watch,
                                      GIOCondition            events)
{
  g_return_if_fail (watch != NULL && !watch->dead);

  watch_register (watch, epoll_from_condition (events));
}

void
tocsin_relay_poller_watch_set_deadline (TocsinRelayPollerWatch *watch,
                                        gint64                  ready_time)
{
  Poller *poller;
  gint64 old;

  g_return_if_fail (watch != NULL && !watch->dead);

  poller = watch->poller;
  old = watch->deadline;
  watch->deadline = ready_time;
  if (ready_time < 0)
    {
      if (watch->heap_index != NOT_IN_HEAP)
        heap_remove (poller, watch);
      return;
    }
  if (watch->heap_index == NOT_IN_HEAP)
    {
      g_ptr_array_add (poller->heap, watch);
      watch->heap_index = poller->heap->len - 1;
      heap_sift_up (poller, watch->heap_index);
    }
  else if (ready_time < old)
    heap_sift_up (poller, watch->heap_index);
  else if (ready_time > old)
    heap_sift_down (poller, watch->heap_index);
}

void
tocsin_relay_poller_watch_wake (TocsinRelayPollerWatch *watch)
{
  g_return_if_fail (watch != NULL && !watch->dead);

  if (watch->woken)
    return;
  watch->woken = TRUE;
  g_ptr_array_add (watch->poller->woken, watch);
}

void
tocsin_relay_poller_watch_free (TocsinRelayPollerWatch *watch)
{
  Poller *poller;

  if (watch == NULL)
    return;
  g_return_if_fail (!watch->dead);

  poller = watch->poller;
  watch_register (watch, 0);
  if (watch->heap_index != NOT_IN_HEAP)
    heap_remove (poller, watch);
  if (watch->woken)
    g_ptr_array_remove_fast (poller->woken, watch);
  watch->woken = FALSE;
  watch->dead = TRUE;
  poller->count--;
  if (poller->dispatching)
    g_ptr_array_add (poller->dead, watch);
  else
    g_free (watch);
}

guint
tocsin_relay_poller_count_watches (void)
{
  guint count = 0;

  for (GSList *l = pollers; l; l = l->next)
    count += ((Poller *) l->data)->count;
  return count;
}
