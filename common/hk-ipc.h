/*
 * hk-ipc: newline-delimited JSON over UNIX stream sockets, the wire between hanko's
 * daemons and hankoctl (see docs/ipc.md).
 *
 *   request:  {"id": 7, "op": "cert.lookup", "params": {...}}
 *   reply:    {"id": 7, "ok": true, "result": {...}}
 *   error:    {"id": 7, "ok": false, "error": {"code": "not_found", "message": "..."}}
 *   event:    {"event": "cert.revoked", "data": {...}}
 *
 * The server runs in the GLib main loop. Requests on one connection may be pipelined;
 * replies go out in request order whatever order handlers finish in. A line is at most
 * HK_IPC_MAX_LINE bytes: a longer one gets a line_too_long error and the connection is
 * closed. Malformed JSON gets bad_request and the connection stays usable. Ops come from a
 * static table naming each op's parameters and the roles that may call it; the server
 * checks both before the handler runs, so handlers see only valid, permitted requests.
 * Roles come from the peer's credentials (SO_PEERCRED), read once at accept.
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>
#include <sys/types.h>

#include "hk-json.h"

G_BEGIN_DECLS

#define HK_IPC_MAX_LINE (1024 * 1024) /* bytes, without the newline */

/* Error codes on the wire. */
#define HK_IPC_ERR_BAD_REQUEST          "bad_request"
#define HK_IPC_ERR_UNKNOWN_OP           "unknown_op"
#define HK_IPC_ERR_INVALID_ARGUMENT     "invalid_argument"
#define HK_IPC_ERR_PERMISSION_DENIED    "permission_denied"
#define HK_IPC_ERR_NOT_FOUND            "not_found"
#define HK_IPC_ERR_CONFLICT             "conflict"
#define HK_IPC_ERR_LINE_TOO_LONG        "line_too_long"
#define HK_IPC_ERR_TOO_MANY_CONNECTIONS "too_many_connections"
#define HK_IPC_ERR_UNAVAILABLE          "unavailable"
#define HK_IPC_ERR_INTERNAL             "internal"

#define HK_IPC_ERROR (hk_ipc_error_quark())
GQuark hk_ipc_error_quark(void);

typedef enum {
	/* codes a server sends */
	HK_IPC_ERROR_FAILED, /* a code this client does not know */
	HK_IPC_ERROR_BAD_REQUEST,
	HK_IPC_ERROR_UNKNOWN_OP,
	HK_IPC_ERROR_INVALID_ARGUMENT,
	HK_IPC_ERROR_PERMISSION_DENIED,
	HK_IPC_ERROR_NOT_FOUND,
	HK_IPC_ERROR_CONFLICT,
	HK_IPC_ERROR_LINE_TOO_LONG,
	HK_IPC_ERROR_TOO_MANY_CONNECTIONS,
	HK_IPC_ERROR_UNAVAILABLE,
	HK_IPC_ERROR_INTERNAL,
	/* transport, seen by clients only */
	HK_IPC_ERROR_CONNECT,  /* cannot connect to the socket */
	HK_IPC_ERROR_CLOSED,   /* peer closed the connection */
	HK_IPC_ERROR_TIMEOUT,  /* no reply in time */
	HK_IPC_ERROR_PROTOCOL, /* the peer sent something that is not a valid reply */
} HkIpcError;

const char *hk_ipc_error_code_to_string(HkIpcError code);
HkIpcError hk_ipc_error_code_from_string(const char *code);

/* Roles, as a bit mask. Every connection that gets past the socket's mode is PUBLIC. */
typedef enum {
	HK_IPC_ROLE_PUBLIC = 1 << 0,  /* ping, version */
	HK_IPC_ROLE_SERVICE = 1 << 1, /* hanko's own daemons: lookups, verify, watch */
	HK_IPC_ROLE_ADMIN = 1 << 2,   /* root or the admin group: everything */
} HkIpcRole;

typedef struct {
	pid_t pid;
	uid_t uid;
	gid_t gid;
} HkIpcPeer;

/* Maps a peer to its roles. */
typedef guint (*HkIpcRoleFunc)(const HkIpcPeer *peer, gpointer user_data);

/*
 * The usual mapping: root has every role; members (primary or supplementary) of
 * admin_group are ADMIN, of service_group SERVICE; everyone is PUBLIC.
 * A group of (gid_t)-1 matches nobody.
 */
typedef struct {
	gid_t admin_gid;
	gid_t service_gid;
} HkIpcGroupRoles;
guint hk_ipc_roles_from_groups(const HkIpcPeer *peer, gpointer group_roles);

/* ----- parsing, shared by server, clients and the fuzz target ----- */

/* Splits a byte stream into lines of at most max_line bytes. */
typedef struct {
	GByteArray *buf;
	gsize start;    /* where the next line begins in buf (consumed lines are compacted
	                 * away on the next feed, not one by one) */
	gsize scanned;  /* bytes of buf already known to hold no newline */
	gsize line_end; /* length of the line next() handed out, newline included; 0: none */
	gsize max_line;
} HkLineReader;

typedef enum {
	HK_LINE_NEED_MORE,
	HK_LINE_READY,
	HK_LINE_TOO_LONG,
} HkLineStatus;

void hk_line_reader_init(HkLineReader *reader, gsize max_line);
void hk_line_reader_clear(HkLineReader *reader);
void hk_line_reader_feed(HkLineReader *reader, const void *data, gsize len);
/* On READY, *line and *len describe the next line (no newline, NUL-terminated) valid until
 * hk_line_reader_consume(). */
HkLineStatus hk_line_reader_next(HkLineReader *reader, const char **line, gsize *len);
void hk_line_reader_consume(HkLineReader *reader);

/* One JSON object per line; anything else (or trailing bytes) is an error. */
json_object *hk_ipc_parse_line(const char *line, gsize len, GError **error);

typedef struct {
	json_object *id;     /* borrowed from the parsed object; NULL if absent */
	const char *op;      /* borrowed */
	json_object *params; /* borrowed; NULL if absent */
} HkIpcRequestFields;

/* Checks the envelope of a request (id, op, params; no other keys) -> bad_request. */
gboolean hk_ipc_decode_request(json_object *obj, HkIpcRequestFields *out, GError **error);

/*
 * Reads a reply: on "ok": true sets *result (borrowed) and returns TRUE; on an error
 * reply sets *error with the server's code and message and returns FALSE; anything else
 * is HK_IPC_ERROR_PROTOCOL. *id (borrowed, may be NULL) is set either way.
 */
gboolean
hk_ipc_decode_reply(json_object *msg, json_object **id, json_object **result, GError **error);

/* ----- op tables ----- */

typedef struct {
	const char *name;
	json_type type; /* json_type_string, _int, _boolean, _object, _array; _null: any */
	gboolean required;
} HkIpcParam;

typedef struct _HkIpcRequest HkIpcRequest;

/* Called with validated params (never NULL: an empty object when absent). The handler
 * must end the request with hk_ipc_request_return*(), now or later from the main loop. */
typedef void (*HkIpcHandler)(HkIpcRequest *request, json_object *params, gpointer user_data);

typedef struct {
	const char *name;
	guint roles;              /* any of these roles may call it */
	const HkIpcParam *params; /* terminated by {NULL}; NULL: takes none */
	HkIpcHandler handler;
	guint flags; /* HkIpcOpFlags */
} HkIpcOp;

typedef enum {
	HK_IPC_OP_AUDIT = 1 << 0, /* a mutating op: the server's finish_func hears its outcome */
} HkIpcOpFlags;

/*
 * Called as a request of an HK_IPC_OP_AUDIT op ends, before its reply is sent, with the
 * validated params and the error code (NULL on success) and message it ended with.
 */
typedef void (*HkIpcFinishFunc)(HkIpcRequest *request, json_object *params, const char *code,
                                const char *message, gpointer user_data);

/* Checks params against the op's table -> invalid_argument naming the parameter. */
gboolean hk_ipc_check_params(const HkIpcOp *op, json_object *params, GError **error);

/* ----- server ----- */

typedef struct _HkIpcServer HkIpcServer;

typedef struct {
	guint max_connections_per_uid; /* 0: no cap */
	guint max_in_flight;           /* requests read ahead per connection; 0: 64 */
	HkIpcRoleFunc role_func;       /* NULL: every peer is PUBLIC only */
	gpointer role_data;
	HkIpcFinishFunc finish_func; /* NULL: none */
	gpointer finish_data;
} HkIpcServerOptions;

HkIpcServer *
hk_ipc_server_new(const HkIpcOp *ops, gpointer user_data, const HkIpcServerOptions *options);
void hk_ipc_server_free(HkIpcServer *server);
/* Adds another op table (a daemon may keep one per area); names must not repeat. */
void hk_ipc_server_add_ops(HkIpcServer *server, const HkIpcOp *ops);

/*
 * Creates, binds and listens on path with the given mode (and group, unless -1),
 * with the umask tightened around bind so the socket is never wider for an instant.
 * A stale socket (nobody answers) is replaced; a live one is an error.
 */
gboolean hk_ipc_server_listen_path(HkIpcServer *server, const char *path, guint mode, gid_t group,
                                   GError **error);
/* Serves an already listening socket (systemd socket activation). Takes the fd. */
gboolean hk_ipc_server_listen_fd(HkIpcServer *server, int fd, GError **error);
guint hk_ipc_server_get_n_connections(HkIpcServer *server);
/* Sends {"event": name, "data": data} to every connection that subscribed. */
void hk_ipc_server_emit(HkIpcServer *server, const char *event, json_object *data);

/* ----- requests, inside a handler ----- */

const char *hk_ipc_request_get_op(HkIpcRequest *request);
const HkIpcPeer *hk_ipc_request_get_peer(HkIpcRequest *request);
guint hk_ipc_request_get_roles(HkIpcRequest *request);
/* FALSE once the client has gone: a slow handler may stop early. */
gboolean hk_ipc_request_is_connected(HkIpcRequest *request);
/* Puts the connection on the event list (for watch ops). */
void hk_ipc_request_subscribe(HkIpcRequest *request);

/* Each ends the request; exactly one of them must be called once. result: transfer full. */
void hk_ipc_request_return(HkIpcRequest *request, json_object *result);
void hk_ipc_request_return_error(HkIpcRequest *request, const char *code, const char *format, ...)
        G_GNUC_PRINTF(3, 4);
/* HK_IPC_ERROR codes keep their code; any other domain becomes "internal". */
void hk_ipc_request_return_gerror(HkIpcRequest *request, const GError *error);

/* ----- synchronous client (hankoctl, tests) ----- */

typedef struct _HkIpcClient HkIpcClient;

HkIpcClient *hk_ipc_client_connect(const char *path, guint timeout_ms, GError **error);
void hk_ipc_client_free(HkIpcClient *client);
/* Sends one request and waits for its reply. params: transfer none, may be NULL.
 * Returns the result (transfer full) or NULL with the server's error mapped to HkIpcError. */
json_object *
hk_ipc_client_call(HkIpcClient *client, const char *op, json_object *params, GError **error);
/* Raw access for tests and `hankoctl --json`: one line out, one line in. */
gboolean hk_ipc_client_send_line(HkIpcClient *client, const char *line, gsize len, GError **error);
char *hk_ipc_client_read_line(HkIpcClient *client, GError **error);
int hk_ipc_client_get_fd(HkIpcClient *client);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HkIpcClient, hk_ipc_client_free)

/* ----- asynchronous client (daemons talking to certd) ----- */

typedef struct _HkIpcAsync HkIpcAsync;

/* result: transfer none, valid during the call; exactly one of result/error is set. */
typedef void (*HkIpcReplyFunc)(json_object *result, const GError *error, gpointer user_data);
typedef void (*HkIpcEventFunc)(const char *event, json_object *data, gpointer user_data);

/* Connects lazily on the first call and again after the connection is lost. */
HkIpcAsync *hk_ipc_async_new(const char *path);
void hk_ipc_async_free(HkIpcAsync *client);
void hk_ipc_async_set_event_func(HkIpcAsync *client, HkIpcEventFunc func, gpointer user_data);
/* Pipelined; every call gets its callback exactly once, from the main loop, never from
 * inside hk_ipc_async_call(). timeout_ms 0: wait forever. */
void hk_ipc_async_call(HkIpcAsync *client, const char *op, json_object *params, guint timeout_ms,
                       HkIpcReplyFunc func, gpointer user_data);
gboolean hk_ipc_async_is_connected(HkIpcAsync *client);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HkIpcAsync, hk_ipc_async_free)

G_END_DECLS
