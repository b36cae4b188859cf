/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-direct-key-group.h: Preferences' "Direct Key" group: create, show, copy and rotate the
 * user's Direct key (docs/api.md, "Direct keys").
 */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define TOCSIN_TYPE_DIRECT_KEY_GROUP (tocsin_direct_key_group_get_type ())
G_DECLARE_FINAL_TYPE (TocsinDirectKeyGroup, tocsin_direct_key_group, TOCSIN, DIRECT_KEY_GROUP,
                      AdwPreferencesGroup)

G_END_DECLS
