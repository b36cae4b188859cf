/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * fuzz-common.h: what every libFuzzer target here starts with. Include it once, in the target's
 * one source file: it defines LLVMFuzzerInitialize(), and the target defines
 * LLVMFuzzerTestOneInput().
 *
 * A g_return_if_fail or g_warning that input can reach is a bug: it is made a crash. GLib's
 * own fatal path raises SIGTRAP, which libFuzzer does not catch (no crash file would be
 * written), so the log writer calls abort() instead.
 */
#pragma once

#include <stdint.h>
#include <stdlib.h>
#include <glib.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static GLogWriterOutput
tocsin_fuzz_abort_on_warning (GLogLevelFlags   level,
                              const GLogField *fields,
                              gsize            n_fields,
                              gpointer         user_data)
{
  GLogWriterOutput output = g_log_writer_default (level, fields, n_fields, user_data);

  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    abort ();
  return output;
}

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  g_log_set_writer_func (tocsin_fuzz_abort_on_warning, NULL, NULL);
  return 0;
}
