/*
 * hk-certd-proto: every op and key of hanko-certd's socket, in one place.
 *
 * Senders (hankoctl, policyd, milter) and the receiver (certd) use these names and
 * nothing else, so a misspelt key is a compile error, not a silent mismatch.
 * docs/ipc.md describes each op: params, result, errors and required role.
 */
#pragma once

/* ping (public): liveness and who you are to the daemon */
#define HK_CERTD_OP_PING     "ping"
#define HK_CERTD_KEY_PONG    "pong"    /* bool, always true */
#define HK_CERTD_KEY_DAEMON  "daemon"  /* "hanko-certd" */
#define HK_CERTD_KEY_VERSION "version" /* "0.1.0" */
#define HK_CERTD_KEY_UPTIME  "uptime"  /* seconds since start */
#define HK_CERTD_KEY_ROLES   "roles"   /* ["public", "service", "admin"] of the caller */
