/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

#include "tocsin-record.h"

G_BEGIN_DECLS

#define TOCSIN_TYPE_RECORD_DETAILS (tocsin_record_details_get_type ())
G_DECLARE_FINAL_TYPE (TocsinRecordDetails, tocsin_record_details, TOCSIN, RECORD_DETAILS, AdwWindow)

/* A window with what a record received: its fields and its variables (Echobell's "Source"). */
GtkWidget *tocsin_record_details_new (GtkWindow    *parent,
                                      TocsinRecord *record);

G_END_DECLS
