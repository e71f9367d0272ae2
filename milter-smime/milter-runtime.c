/*
 * milter-runtime: builds the trust store and the parsed settings a message needs.
 */
#include "milter-runtime.h"
#include "hk-ossl.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

static MilterOn
on_value(HkConfig *config, const char *key)
{
	const char *value = hk_config_get_string(config, MILTER_SECTION, key);

	if (g_strcmp0(value, "tempfail") == 0)
		return MILTER_ON_TEMPFAIL;
	if (g_strcmp0(value, "reject") == 0)
		return MILTER_ON_REJECT;
	return MILTER_ON_ACCEPT;
}

static MilterMatch
match_value(HkConfig *config)
{
	const char *value = hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_SIGNER_MATCH);

	if (g_strcmp0(value, "from_and_sender") == 0)
		return MILTER_MATCH_FROM_AND_SENDER;
	if (g_strcmp0(value, "none") == 0)
		return MILTER_MATCH_NONE;
	return MILTER_MATCH_FROM;
}

/* hanko's CA (when trusted and known), ca_file, ca_path, crl_file. */
static X509_STORE *
store_new(HkConfig *config, X509 *hanko_ca, GError **error)
{
	const char *ca_file = hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_CA_FILE);
	const char *ca_path = hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_CA_PATH);
	const char *crl_file = hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_CRL_FILE);
	g_autoptr(X509_STORE) store = X509_STORE_new();
	gboolean trust_hanko =
	        hk_config_get_bool(config, MILTER_SECTION, MILTER_CONF_TRUST_HANKO_CA);
	gboolean crls = (ca_path && *ca_path) || (crl_file && *crl_file);

	if (store == NULL)
		return hk_ossl_set_error(error, "cannot create a certificate store"), NULL;
	if (hanko_ca != NULL && trust_hanko && !X509_STORE_add_cert(store, hanko_ca))
		return hk_ossl_set_error(error, "cannot trust hanko's CA"), NULL;
	if (ca_file && *ca_file && !X509_STORE_load_file(store, ca_file))
		return hk_ossl_set_error(error, "[milter] ca_file %s", ca_file), NULL;
	if (ca_path && *ca_path && !X509_STORE_load_path(store, ca_path))
		return hk_ossl_set_error(error, "[milter] ca_path %s", ca_path), NULL;
	if (crl_file && *crl_file) {
		X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());

		if (lookup == NULL || X509_load_crl_file(lookup, crl_file, X509_FILETYPE_PEM) <= 0)
			return hk_ossl_set_error(error, "[milter] crl_file %s", crl_file), NULL;
	}
	/* an issuer with a CRL is checked against it; a missing one is forgiven (see
	 * milter-smime.c's chain callback) */
	if (crls)
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	return g_steal_pointer(&store);
}

static char *
authserv_id(HkConfig *config)
{
	const char *id = hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_AUTHSERV_ID);

	return g_strdup(id && *id ? id : g_get_host_name());
}

MilterRuntime *
milter_runtime_new(HkConfig *config, MilterCertd *certd, MilterCertdView *view, GError **error)
{
	const char *gateway =
	        hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_GATEWAY_ADDRESS);
	X509_STORE *store = store_new(config, view->hanko_ca, error);
	MilterRuntime *rt;

	if (store == NULL)
		return NULL;
	rt = g_new0(MilterRuntime, 1);
	g_atomic_ref_count_init(&rt->ref);
	rt->config = hk_config_ref(config);
	rt->certd = certd;
	rt->view = *view;
	memset(view, 0, sizeof(*view));
	rt->store = store;
	rt->authserv_id = authserv_id(config);
	rt->gateway = gateway && *gateway ? g_ascii_strdown(gateway, -1) : NULL;
	rt->gateway_require =
	        hk_config_get_bool(config, MILTER_SECTION, MILTER_CONF_GATEWAY_REQUIRE_SIGNATURE);
	rt->require_rcpts =
	        hk_config_get_list(config, MILTER_SECTION, MILTER_CONF_REQUIRE_RECIPIENTS);
	rt->require_senders =
	        hk_config_get_list(config, MILTER_SECTION, MILTER_CONF_REQUIRE_SENDERS);
	rt->require_users = hk_config_get_bool(config, MILTER_SECTION, MILTER_CONF_REQUIRE_USERS);
	rt->max_size = hk_config_get_size(config, MILTER_SECTION, MILTER_CONF_MAX_SIZE);
	rt->on_oversize = on_value(config, MILTER_CONF_ON_OVERSIZE);
	rt->on_internal = on_value(config, MILTER_CONF_ON_INTERNAL_ERROR);
	rt->on_certd_down = on_value(config, MILTER_CONF_ON_CERTD_DOWN);
	rt->match = match_value(config);
	rt->allow_sha1 = hk_config_get_bool(config, MILTER_SECTION, MILTER_CONF_ALLOW_SHA1);
	rt->trust_hanko_ca = hk_config_get_bool(config, MILTER_SECTION, MILTER_CONF_TRUST_HANKO_CA);
	rt->max_depth = (guint)hk_config_get_int(config, MILTER_SECTION, MILTER_CONF_MAX_DEPTH);
	rt->tmp_dir = hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_TMP_DIR);
	return rt;
}

MilterRuntime *
milter_runtime_ref(MilterRuntime *rt)
{
	g_atomic_ref_count_inc(&rt->ref);
	return rt;
}

void
milter_certd_view_clear(MilterCertdView *view)
{
	g_clear_pointer(&view->hanko_ca, X509_free);
	g_clear_pointer(&view->key, EVP_PKEY_free);
	g_clear_pointer(&view->cert, X509_free);
	g_clear_pointer(&view->identity_error, g_free);
	view->ca_known = FALSE;
}

void
milter_runtime_unref(MilterRuntime *rt)
{
	if (rt == NULL || !g_atomic_ref_count_dec(&rt->ref))
		return;
	milter_certd_view_clear(&rt->view);
	X509_STORE_free(rt->store);
	g_free(rt->authserv_id);
	g_free(rt->gateway);
	hk_config_unref(rt->config);
	g_free(rt);
}
