/*
 * certd: hanko-certd's shared state and the helpers its parts use.
 *
 * certd alone holds the CA key and writes its state directory and database. Parts:
 *   certd-server.c   life cycle, ping, events.watch         certd-config.c  [certd] keys
 *   certd-db.c       schema migrations                      certd-store.c   atomic files
 *   certd-audit.c    audit table, audit.list                certd-work.c    worker threads
 *   certd-keys.c     key specs, generation, serials, checks
 *   certd-ca.c       ca.* ops and the CA engine             certd-crl.c     the CRL
 *   certd-client.c   cert.issue/list/show/p12/revoke/lookup
 *   certd-servercert.c csr.create, cert.import/export/assign
 *   certd-chain.c    PEM, keys, chain order and checks      certd-reload.c  reload commands
 *   certd-users.c    user.*, auth.verify, fax.verify        certd-smime.c   smime.*
 */
#pragma once

#include "hk-config.h"
#include "hk-daemon.h"
#include "hk-db.h"
#include "hk-ipc.h"
#include "hk-ossl.h"

G_BEGIN_DECLS

#define CERTD_SECTION "certd"

/* [certd] keys */
#define CERTD_CONF_SOCKET              "socket"
#define CERTD_CONF_SOCKET_MODE         "socket_mode"
#define CERTD_CONF_SOCKET_GROUP        "socket_group"
#define CERTD_CONF_ADMIN_GROUP         "admin_group"
#define CERTD_CONF_SERVICE_GROUP       "service_group"
#define CERTD_CONF_MAX_CONN_PER_UID    "max_connections_per_uid"
#define CERTD_CONF_STATE_DIR           "state_dir"
#define CERTD_CONF_DEFAULT_KEY         "default_key"
#define CERTD_CONF_DEFAULT_DAYS        "default_days"
#define CERTD_CONF_DEFAULT_PROFILE     "default_profile"
#define CERTD_CONF_P12_FORMAT          "p12_format"
#define CERTD_CONF_KEEP_P12_PASSWORD   "keep_p12_password"
#define CERTD_CONF_CRL_URL             "crl_url"
#define CERTD_CONF_CRL_VALIDITY        "crl_validity"
#define CERTD_CONF_SERVICE_DIR         "service_dir"
#define CERTD_CONF_RELOAD_SMTPD        "reload_smtpd"
#define CERTD_CONF_RELOAD_SMTP         "reload_smtp"
#define CERTD_CONF_RELOAD_SUBMISSION   "reload_submission"
#define CERTD_CONF_RELOAD_GATEWAY      "reload_gateway"
#define CERTD_CONF_RELOAD_TIMEOUT      "reload_timeout"
#define CERTD_CONF_IDENTITY_USERS      "identity_users"
#define CERTD_CONF_EXPIRY_WARNING_DAYS "expiry_warning_days"

/* The sections hanko-certd reads (terminated by {NULL}). */
extern const HkConfSection certd_config_sections[];

typedef struct {
	HkDaemon *daemon;
	HkConfig *config; /* the running configuration (owned by the daemon) */
	HkDb *db;
	char *state_dir;
	HkIpcServer *ipc;
	HkIpcGroupRoles groups;
	gint64 started; /* monotonic, us */
	/* the CA; NULL until ca.init or ca.import */
	X509 *ca_cert;
	EVP_PKEY *ca_key;
	GThreadPool *workers;
	guint work_in_flight;
	guint crl_timer;
	guint expiry_timer;
} CertdState;

extern const HkDaemonSpec certd_daemon_spec;

/* Op tables, one per part; certd-server.c registers them all. */
extern const HkIpcOp certd_core_ops[];
extern const HkIpcOp certd_audit_ops[];
extern const HkIpcOp certd_ca_ops[];
extern const HkIpcOp certd_client_ops[];
extern const HkIpcOp certd_servercert_ops[];
extern const HkIpcOp certd_user_ops[];
extern const HkIpcOp certd_smime_ops[];

/* Roles as op tables use them. */
#define CERTD_ADMIN   HK_IPC_ROLE_ADMIN
#define CERTD_SERVICE (HK_IPC_ROLE_SERVICE | HK_IPC_ROLE_ADMIN)
#define CERTD_PUBLIC  HK_IPC_ROLE_PUBLIC

/* ----- certd-server.c ----- */

/* Sends an event to every events.watch stream. data: transfer full, may be NULL. */
void certd_emit(CertdState *state, const char *event, json_object *data);
/* Opens the database and loads the CA from state_dir; used by start() and by tests. */
CertdState *certd_state_open(HkConfig *config, GError **error);
void certd_state_free(CertdState *state);

/* ----- certd-db.c ----- */

extern const char *const certd_db_migrations[];

/* ----- certd-store.c: files under state_dir ----- */

/*
 * Writes data to dir/name through a temporary file: written, fsynced, renamed, and the
 * directory fsynced, so a crash leaves the old file or the new one, never a torn one.
 */
gboolean certd_store_write(const char *dir, const char *name, const void *data, gsize len,
                           guint mode, GError **error);
/* One file of a new directory written by certd_store_write_dir(). */
typedef struct {
	const char *name;
	const void *data;
	gsize len;
	guint mode;
} CertdStoreFile;

/*
 * Creates dir (0700; it must not exist) with n files in it, durably: each file written and
 * fsynced, then dir and its parent fsynced once. On failure the directory is removed. A
 * crash midway leaves a directory no database row names, which certd removes at start.
 */
gboolean
certd_store_write_dir(const char *dir, const CertdStoreFile *files, guint n, GError **error);
/* fsyncs a directory, so renames and creations inside it are durable. */
gboolean certd_store_sync_dir(const char *dir, GError **error);
/* Creates dir (and parents) with mode; an existing directory is fine. */
gboolean certd_store_mkdir(const char *dir, guint mode, GError **error);
/* Removes a directory tree that certd created (regular files and directories only). */
gboolean certd_store_remove_tree(const char *dir, GError **error);
/* Reads a file certd wrote. */
gboolean certd_store_read(const char *path, char **data, gsize *len, GError **error);

/* ----- certd-work.c: crypto off the main loop ----- */

/* Runs in a worker thread: no database, no IPC, no CertdState fields but the CA. */
typedef gboolean (*CertdWorkFunc)(CertdState *state, gpointer data, GError **error);
/* Runs back in the main loop with the work's outcome (error NULL on success). It ends the
 * request. */
typedef void (*CertdDoneFunc)(CertdState *state, HkIpcRequest *request, gpointer data,
                              const GError *error);

void certd_work_start(CertdState *state, HkIpcRequest *request, CertdWorkFunc work,
                      CertdDoneFunc done, gpointer data, GDestroyNotify free_data);
/* Waits for all work in flight (shutdown, tests). */
void certd_work_drain(CertdState *state);

/* ----- certd-audit.c ----- */

void certd_audit_finish(HkIpcRequest *request, json_object *params, const char *code,
                        const char *message, gpointer state);

/* ----- certd-keys.c ----- */

/* "rsa:2048" ... "ec:p384", within the allowed list (NULL-terminated). */
gboolean certd_key_spec_check(const char *spec, const char *const *allowed, GError **error);
EVP_PKEY *certd_key_generate(const char *spec, GError **error);
/* "rsa:2048", "ec:p256" for a key. */
char *certd_key_describe(EVP_PKEY *key);
/* A random positive serial of 127 bits (RFC 5280 allows 20 octets). */
ASN1_INTEGER *certd_serial_random(GError **error);
/* Upper-case hex without colons. */
char *certd_serial_to_hex(const ASN1_INTEGER *serial);
/* Checks e-mail syntax (local@domain, printable ASCII, one @, a dot-free local part is ok). */
gboolean certd_check_email(const char *email, GError **error);
/* Checks a common name: 1..64 characters of valid UTF-8, no control characters. */
gboolean certd_check_cn(const char *cn, GError **error);
/* A password of n characters from an alphabet without look-alikes (0/O, 1/l/I ...). */
char *certd_password_generate(guint n);
/* Sets notBefore = now - 5 minutes (clock skew) and notAfter = now + days. */
gboolean certd_cert_set_validity(X509 *cert, guint days, GError **error);
/* Adds an extension given in openssl.cnf syntax (name "keyUsage", value "critical,..."),
 * with issuer and subject in ctx for AKI/SKI. */
gboolean certd_cert_add_ext(X509 *cert, X509 *issuer, int nid, const char *value, GError **error);
/* Times and PEM for replies. */
char *certd_time_iso(gint64 unix_seconds);
gint64 certd_asn1_time_to_unix(const ASN1_TIME *time);
char *certd_cert_to_pem(X509 *cert);
json_object *certd_json_base64(const void *data, gsize len);
/* Adds key: value to obj; a NULL value becomes JSON null. */
void certd_json_add_string(json_object *obj, const char *key, const char *value);
/* Adds key: unix_seconds as certd_time_iso() text to obj. */
void certd_json_add_time(json_object *obj, const char *key, gint64 unix_seconds);
/* A new object {key: value}, for events and replies that name one thing. */
json_object *certd_json_object_with(const char *key, const char *value);
/* The wall clock in seconds since the epoch, as the database stores times. */
gint64 certd_now_unix(void);
/* Whether each dot-separated label of name is 1..63 letters, digits or inner hyphens. */
gboolean certd_dns_labels_ok(const char *name);

/* Sets an HK_IPC_ERROR of code with a printf-style message; returns FALSE. */
gboolean
certd_set_error(GError **error, HkIpcError code, const char *format, ...) G_GNUC_PRINTF(3, 4);
/* Sets invalid_argument with a printf-style message; returns FALSE. */
gboolean certd_set_invalid(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);
/* Sets invalid_argument "<message>: <OpenSSL's reasons>" for input OpenSSL refused. */
gboolean certd_set_ossl_invalid(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* The error replies most handlers need. */
#define certd_return_invalid(req, ...)                                                             \
	hk_ipc_request_return_error((req), HK_IPC_ERR_INVALID_ARGUMENT, __VA_ARGS__)
#define certd_return_not_found(req, ...)                                                           \
	hk_ipc_request_return_error((req), HK_IPC_ERR_NOT_FOUND, __VA_ARGS__)

/* ----- certd-ca.c / certd-crl.c ----- */

/* Loads state_dir/ca/{ca.crt,ca.key} when present. */
gboolean certd_ca_load(CertdState *state, GError **error);
/* Fails with "no CA yet: run hankoctl ca init" when there is none. */
gboolean certd_ca_require(CertdState *state, GError **error);
/* Signs cert with the CA key (SHA-256). Thread-safe. */
gboolean certd_ca_sign(CertdState *state, X509 *cert, GError **error);
/* Regenerates, signs and writes the CRL (ca/crl.pem, ca/crl.der) from the database. */
gboolean certd_crl_update(CertdState *state, GError **error);
/* Schedules the CRL's refresh before nextUpdate lapses. */
void certd_crl_schedule(CertdState *state);
/* RFC 5280 reason code for "keyCompromise" etc. (case-insensitive), -1 if unknown. */
int certd_crl_reason_code(const char *name);
/* The reason names, for error messages. */
const char *certd_crl_reason_list(void);
/* ----- certd-chain.c: PEM, keys and chains of server certificates ----- */

/* Copies what a memory BIO holds (NUL-terminated) and wipes the BIO's copy. */
char *certd_bio_take(BIO *bio, gsize *len);
/* "C = JP, O = Example, CN = mail.example.jp" in UTF-8 ("" when it cannot be printed). */
char *certd_name_text(const X509_NAME *name);
/* The first CN of a name in UTF-8; NULL when there is none. */
char *certd_name_cn(const X509_NAME *name);
/* The key as PEM (PKCS#8, or traditional), AES-256-CBC encrypted with a password. A secret. */
char *certd_key_to_pem(EVP_PKEY *key, gboolean traditional, const char *password, gsize *len,
                       GError **error);
/* Reads the first private key of pem (key_pem), with passphrase when it is encrypted. */
EVP_PKEY *certd_key_from_pem(const char *pem, const char *passphrase, GError **error);
/* Reads a key certd wrote itself (unencrypted PEM); never prompts. */
EVP_PKEY *certd_key_from_file(const char *path, GError **error);
/* RSA of 2048 bits or more, EC, Ed25519 or Ed448; invalid_argument otherwise. */
gboolean certd_key_check_type(EVP_PKEY *key, GError **error);
/* Every PEM block of pem (cert_pem), each a certificate; at least one. */
HkX509Stack *certd_certs_from_pem(const char *pem, GError **error);
/* The leaf, then the chain, as concatenated PEM. */
char *certd_certs_to_pem(X509 *leaf, HkX509Stack *chain);
/* Takes out of certs the first certificate for key; NULL when none matches. */
X509 *certd_chain_take_leaf(HkX509Stack *certs, EVP_PKEY *key);
/* The leaf's issuers up to a root, taken from rest; what does not fit becomes a warning. */
HkX509Stack *certd_chain_order(X509 *leaf, HkX509Stack *rest, GPtrArray *warnings);
/* The leaf must be valid now; intermediates out of date add warnings. */
gboolean
certd_chain_check_dates(X509 *leaf, HkX509Stack *chain, GPtrArray *warnings, GError **error);
/* Warns when the leaf's key usage does not allow a TLS server. */
void certd_chain_check_purpose(X509 *leaf, GPtrArray *warnings);

/* ----- certd-reload.c ----- */

/* Runs [certd] <reload_key> for service and ends req with result plus the command's
 * outcome ("reload"; null when none is configured). */
void certd_reload_start(CertdState *state, HkIpcRequest *req, const char *service,
                        const char *reload_key, json_object *result);

/* ----- certd-servercert.c ----- */

/* Warns about in-use certificates close to expiry, now and every 24 hours. */
void certd_servercert_schedule(CertdState *state);

/* The ca.crl op (service): {crl_pem, der_base64, crl_number, this_update, next_update}. */
void certd_op_ca_crl(HkIpcRequest *req, json_object *params, gpointer data);

G_END_DECLS
