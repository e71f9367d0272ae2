/*
 * policyd-server: hanko-policyd's running state, shared by its listeners, and the one
 * path every policy question takes: engine + cache + one log line.
 */
#pragma once

#include "policyd.h"
#include "policyd-auth.h"
#include "policyd-cache.h"
#include "policyd-engine.h"

G_BEGIN_DECLS

typedef struct _PolicydPolicy PolicydPolicy;

typedef struct {
	HkDaemon *daemon;
	HkConfig *config;          /* the running configuration (owned by the daemon) */
	PolicydSettings *settings; /* from config; replaced on reload */
	HkIpcAsync *certd;         /* one client, shared by the cache and the auth module */
	PolicydCache *cache;
	PolicydPolicy *policy;
	HkIpcServer *admin;
	HkIpcGroupRoles admin_roles;
	PolicydAuth *auth;
	GString *log_line; /* the decision's log line, built here request after request */
} PolicydState;

extern const HkDaemonSpec policyd_daemon_spec;

/* decision: transfer none, valid during the call. */
typedef void (*PolicydCheckFunc)(const PolicydDecision *decision, gpointer user_data);

/*
 * Decides request and logs the decision (origin, e.g. "policy" or "check", is part of
 * the log line). func runs before this returns when no certd call is needed (other
 * protocol_state, no certificate, a cache hit), else later from the main loop; request
 * must stay valid until then.
 */
void policyd_check(PolicydState *state, const PolicydRequest *request, const char *origin,
                   PolicydCheckFunc func, gpointer user_data);
/* The same when it can be decided without certd, and then TRUE: func has run. FALSE when
 * it needs certd; nothing has happened then (call policyd_check()). */
gboolean policyd_check_now(PolicydState *state, const PolicydRequest *request, const char *origin,
                           PolicydCheckFunc func, gpointer user_data);

/* ----- policyd-policy.c: the Postfix policy listener ----- */

/* NULL with error if the kernel refuses an epoll set. */
PolicydPolicy *policyd_policy_new(PolicydState *state, GError **error);
void policyd_policy_free(PolicydPolicy *policy);
gboolean policyd_policy_listen(PolicydPolicy *policy, const char *spec, guint mode, gid_t group,
                               GError **error);
/* Takes the fd. */
gboolean policyd_policy_listen_fd(PolicydPolicy *policy, int fd, GError **error);
void policyd_policy_set_max_connections(PolicydPolicy *policy, guint max);
guint policyd_policy_get_n_connections(PolicydPolicy *policy);

/* ----- policyd-admin.c: the JSON-line admin socket ----- */

HkIpcServer *policyd_admin_new(PolicydState *state);

G_END_DECLS
