/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-presets.h: ready channel templates for senders people already run (Alertmanager,
 * Grafana, GitHub, ...), each with a sample of the payload its sender posts. One table, used by
 * the app's channel editor and by `tocsin-relay channel create --preset=ID`; the samples are
 * the files under data/presets/, compiled in as a GResource. docs/templates.md lists them.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  const char *id;         /* what --preset= takes: "alertmanager" */
  const char *name;       /* untranslated: use tocsin_preset_get_name() */
  const char *setup;      /* untranslated: use tocsin_preset_get_setup() */
  /* Templates in the language of docs/templates.md. They are stored on the relay and shown to
   * every subscriber, so their text is not translated. */
  const char *title;
  const char *body;
  const char *link;
  const char *condition;
} TocsinPreset;

/* Every preset, in the order a person should see them; *n_presets gets the count. */
const TocsinPreset *tocsin_presets_get_all      (guint              *n_presets);
/* The preset called @id, or NULL. */
const TocsinPreset *tocsin_preset_lookup        (const char         *id);
/* The display name, translated ("Prometheus Alertmanager"). */
const char         *tocsin_preset_get_name      (const TocsinPreset *preset);
/* One sentence, translated, on how to point the sender at the channel's webhook URL. */
const char         *tocsin_preset_get_setup     (const TocsinPreset *preset);
/* The sample payload, as its sender posts it (JSON text, an object). */
GBytes             *tocsin_preset_get_sample    (const TocsinPreset *preset);
/* The ids, comma-separated ("alertmanager, grafana, ..."), for error messages. */
char               *tocsin_presets_dup_ids      (void);

G_END_DECLS
