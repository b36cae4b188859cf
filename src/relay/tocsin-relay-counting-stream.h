/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-counting-stream.h: a pollable output stream that counts the bytes that really
 * reached the socket. libsoup 3.2's WebSocket send queue is unbounded and has no
 * "bufferedAmount", so the hub puts this under each subscriber's SoupWebsocketConnection and
 * compares what it queued with what was written.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define TOCSIN_TYPE_COUNTING_OUTPUT_STREAM (tocsin_counting_output_stream_get_type ())

G_DECLARE_FINAL_TYPE (TocsinCountingOutputStream, tocsin_counting_output_stream,
                      TOCSIN, COUNTING_OUTPUT_STREAM, GFilterOutputStream)

typedef void (*TocsinCountingFunc) (guint64 total_written, gpointer user_data);

/* @base must be a pollable output stream. */
GOutputStream *tocsin_counting_output_stream_new         (GOutputStream *base);
guint64        tocsin_counting_output_stream_get_written (TocsinCountingOutputStream *self);
/* @func runs after every successful write (on the thread that wrote: the main loop). */
void           tocsin_counting_output_stream_set_func    (TocsinCountingOutputStream *self,
                                                          TocsinCountingFunc          func,
                                                          gpointer                    user_data);

G_END_DECLS
