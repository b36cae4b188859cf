/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include "tocsin-relay-counting-stream.h"

struct _TocsinCountingOutputStream
{
  GFilterOutputStream parent_instance;

  guint64             written;
  TocsinCountingFunc  func;
  gpointer            func_data;
};

static void tocsin_counting_output_stream_pollable_init (GPollableOutputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (TocsinCountingOutputStream, tocsin_counting_output_stream,
                               G_TYPE_FILTER_OUTPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                      tocsin_counting_output_stream_pollable_init))

static GOutputStream *
get_base (gpointer self)
{
  return g_filter_output_stream_get_base_stream (G_FILTER_OUTPUT_STREAM (self));
}

static void
note_written (TocsinCountingOutputStream *self,
              gssize                      count)
{
  if (count <= 0)
    return;
  self->written += (guint64) count;
  if (self->func)
    self->func (self->written, self->func_data);
}

static gssize
tocsin_counting_output_stream_write (GOutputStream  *stream,
                                     const void     *buffer,
                                     gsize           count,
                                     GCancellable   *cancellable,
                                     GError        **error)
{
  TocsinCountingOutputStream *self = TOCSIN_COUNTING_OUTPUT_STREAM (stream);
  gssize n = g_output_stream_write (get_base (self), buffer, count, cancellable, error);

  note_written (self, n);
  return n;
}

static gboolean
tocsin_counting_output_stream_can_poll (GPollableOutputStream *stream)
{
  GOutputStream *base = get_base (stream);

  return G_IS_POLLABLE_OUTPUT_STREAM (base) &&
         g_pollable_output_stream_can_poll (G_POLLABLE_OUTPUT_STREAM (base));
}

static gboolean
tocsin_counting_output_stream_is_writable (GPollableOutputStream *stream)
{
  return g_pollable_output_stream_is_writable (G_POLLABLE_OUTPUT_STREAM (get_base (stream)));
}

static gssize
tocsin_counting_output_stream_write_nonblocking (GPollableOutputStream  *stream,
                                                 const void             *buffer,
                                                 gsize                   count,
                                                 GError                **error)
{
  TocsinCountingOutputStream *self = TOCSIN_COUNTING_OUTPUT_STREAM (stream);
  gssize n;

  n = g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (get_base (self)),
                                                  buffer, count, NULL, error);
  note_written (self, n);
  return n;
}

static GSource *
tocsin_counting_output_stream_create_source (GPollableOutputStream *stream,
                                             GCancellable          *cancellable)
{
  g_autoptr(GSource) base_source = NULL;

  /* The source reports this stream, not the base, as GConverterOutputStream does. */
  base_source = g_pollable_output_stream_create_source (G_POLLABLE_OUTPUT_STREAM (get_base (stream)),
                                                        NULL);
  return g_pollable_source_new_full (stream, base_source, cancellable);
}

static void
tocsin_counting_output_stream_pollable_init (GPollableOutputStreamInterface *iface)
{
  iface->can_poll = tocsin_counting_output_stream_can_poll;
  iface->is_writable = tocsin_counting_output_stream_is_writable;
  iface->write_nonblocking = tocsin_counting_output_stream_write_nonblocking;
  iface->create_source = tocsin_counting_output_stream_create_source;
}

static void
tocsin_counting_output_stream_class_init (TocsinCountingOutputStreamClass *klass)
{
  GOutputStreamClass *stream_class = G_OUTPUT_STREAM_CLASS (klass);

  stream_class->write_fn = tocsin_counting_output_stream_write;
}

static void
tocsin_counting_output_stream_init (TocsinCountingOutputStream *self)
{
}

GOutputStream *
tocsin_counting_output_stream_new (GOutputStream *base)
{
  g_return_val_if_fail (G_IS_POLLABLE_OUTPUT_STREAM (base), NULL);

  return g_object_new (TOCSIN_TYPE_COUNTING_OUTPUT_STREAM,
                       "base-stream", base,
                       "close-base-stream", FALSE,
                       NULL);
}

guint64
tocsin_counting_output_stream_get_written (TocsinCountingOutputStream *self)
{
  g_return_val_if_fail (TOCSIN_IS_COUNTING_OUTPUT_STREAM (self), 0);

  return self->written;
}

void
tocsin_counting_output_stream_set_func (TocsinCountingOutputStream *self,
                                        TocsinCountingFunc          func,
                                        gpointer                    user_data)
{
  g_return_if_fail (TOCSIN_IS_COUNTING_OUTPUT_STREAM (self));

  self->func = func;
  self->func_data = user_data;
}
