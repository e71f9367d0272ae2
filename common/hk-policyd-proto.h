/*
 * hk-policyd-proto: the ops and keys of hanko-policyd's admin socket (JSON lines, as
 * docs/ipc.md describes), shared by policyd-admin.c and hankoctl-policy.c.
 *
 *   ping          public  -> {pong, daemon, version, certd, cache_entries, policy_connections}
 *   policy.check  admin   {fingerprint | pubkey_fingerprint, sender, tls_protocol,
 *                          protocol_state, client_address} -> {outcome, action, user,
 *                          fingerprint}
 *
 * policy.check answers exactly as the Postfix policy listener would, through the same
 * engine and cache (a cache miss asks certd), and logs the decision with origin "check".
 * Absent params: no certificate, the null sender, tls_protocol TLSv1.3, protocol_state as
 * configured (so the request is judged), client_address empty.
 */
#pragma once

#define HK_POLICYD_OP_PING         "ping"
#define HK_POLICYD_OP_POLICY_CHECK "policy.check"

/* ping */
#define HK_POLICYD_KEY_PONG        "pong"
#define HK_POLICYD_KEY_DAEMON      "daemon"
#define HK_POLICYD_KEY_VERSION     "version"
#define HK_POLICYD_KEY_CERTD       "certd" /* "up" | "down" */
#define HK_POLICYD_KEY_CACHE_SIZE  "cache_entries"
#define HK_POLICYD_KEY_POLICY_CONN "policy_connections"

/* policy.check params */
#define HK_POLICYD_KEY_FINGERPRINT    "fingerprint"        /* ccert_fingerprint */
#define HK_POLICYD_KEY_PUBKEY_FP      "pubkey_fingerprint" /* ccert_pubkey_fingerprint */
#define HK_POLICYD_KEY_SENDER         "sender"
#define HK_POLICYD_KEY_TLS_PROTOCOL   "tls_protocol" /* encryption_protocol: "TLSv1.2"; "" none */
#define HK_POLICYD_KEY_STATE          "protocol_state"
#define HK_POLICYD_KEY_CLIENT_ADDRESS "client_address"

/* policy.check result (and fingerprint, canonical, when there was one) */
#define HK_POLICYD_KEY_OUTCOME                                                                     \
	"outcome" /* valid unknown_cert no_cert revoked expired                                    \
	           * sender_mismatch old_tls unavailable not_judged */
#define HK_POLICYD_KEY_ACTION "action"
#define HK_POLICYD_KEY_USER   "user"
