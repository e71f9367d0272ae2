/*
 * certd: hanko-certd's parts, shared by its main.c, hankoctl and the tests.
 */
#pragma once

#include "hk-config.h"
#include "hk-daemon.h"
#include "hk-ipc.h"

G_BEGIN_DECLS

#define CERTD_SECTION "certd"

/* [certd] keys */
#define CERTD_CONF_SOCKET           "socket"
#define CERTD_CONF_SOCKET_MODE      "socket_mode"
#define CERTD_CONF_SOCKET_GROUP     "socket_group"
#define CERTD_CONF_ADMIN_GROUP      "admin_group"
#define CERTD_CONF_SERVICE_GROUP    "service_group"
#define CERTD_CONF_MAX_CONN_PER_UID "max_connections_per_uid"

/* The sections hanko-certd reads (NULL-terminated). */
extern const HkConfSection certd_config_sections[];

/* The op table of certd's socket. */
extern const HkIpcOp certd_ops[];

/* The daemon's state, built by certd_start() from the configuration. */
typedef struct _CertdServer CertdServer;

extern const HkDaemonSpec certd_daemon_spec;

G_END_DECLS
