/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tocsin-relay-health.h: GET /v1/health, whether this relay can serve: 200 only when its store
 * answers (for a balancer's or Kubernetes' readiness check; docs/deployment.md). */
#pragma once

#include "tocsin-relay.h"

G_BEGIN_DECLS

#define TOCSIN_RELAY_HEALTH_PATH "/v1/health"

void tocsin_relay_health_handle (TocsinRelay       *relay,
                                 SoupServerMessage *msg);

G_END_DECLS
