/*
 * milter-runtime: what every message is checked with, built from the configuration and
 * from what certd said (its CA, the gateway's identity), immutable once built and
 * reference counted. A reload or a certd event builds a new one and swaps it in;
 * messages in flight keep the one they started with.
 */
#pragma once

#include "milter-certd.h"
#include "milter-fax.h"
#include "milter.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

G_BEGIN_DECLS

typedef enum {
	MILTER_ON_ACCEPT,
	MILTER_ON_TEMPFAIL,
	MILTER_ON_REJECT,
} MilterOn;

typedef enum {
	MILTER_MATCH_FROM,
	MILTER_MATCH_FROM_AND_SENDER,
	MILTER_MATCH_NONE,
} MilterMatch;

/* What certd has said; each field may be missing. */
typedef struct {
	X509 *hanko_ca;    /* NULL: none known */
	gboolean ca_known; /* certd answered (with a CA, or that there is none) */
	EVP_PKEY *key;     /* the gateway identity */
	X509 *cert;
	char *identity_error; /* why there is no identity */
} MilterCertdView;

typedef struct {
	gatomicrefcount ref;
	HkConfig *config;
	MilterCertd *certd; /* borrowed: outlives every runtime */
	MilterFax *fax;     /* borrowed, likewise; NULL: no fax gateway */
	MilterCertdView view;
	X509_STORE *store;
	char *authserv_id;
	char *gateway; /* lower case; NULL: none */
	gboolean gateway_require;
	const char *const *require_rcpts;
	const char *const *require_senders;
	gboolean require_users;
	guint64 max_size;
	MilterOn on_oversize;
	MilterOn on_internal;
	MilterOn on_certd_down;
	MilterMatch match;
	gboolean allow_sha1;
	gboolean trust_hanko_ca;
	guint max_depth;
	const char *tmp_dir;
} MilterRuntime;

/* Takes the view's contents (they are moved in, the view is left empty). */
MilterRuntime *
milter_runtime_new(HkConfig *config, MilterCertd *certd, MilterCertdView *view, GError **error);
MilterRuntime *milter_runtime_ref(MilterRuntime *rt);
void milter_runtime_unref(MilterRuntime *rt);
void milter_certd_view_clear(MilterCertdView *view);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MilterRuntime, milter_runtime_unref)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(MilterCertdView, milter_certd_view_clear)

G_END_DECLS
