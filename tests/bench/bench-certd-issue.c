/*
 * bench-certd-issue: certificate issuance through hanko-certd against the anchor the CA
 * issue names, in one run on one machine:
 *
 *   EC P-256: N certificates (key, certificate, PKCS#12, database commit) issued by certd
 *   through its socket, against the same N made by the shell pipeline admin tools use:
 *   openssl req | openssl x509 -req | openssl pkcs12 -export. Target: certd >= 50x faster.
 *
 *   RSA 2048: N certificates issued by certd, against N bare RSA 2048 key generations in
 *   this process (OpenSSL's EVP_PKEY_Q_keygen). Target: certd's time within 10% of it.
 *
 * Prints each measurement and the ratios. HANKO_BENCH_N scales the counts; CTest runs it
 * with small counts as a smoke check (label bench), not as a timed test.
 */
#include "hk-ipc.h"
#include "hk-test-certd.h"

#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
	const char *name;
	int n;
	double seconds;
} Measure;

static double
now_s(void)
{
	return (double)g_get_monotonic_time() / G_USEC_PER_SEC;
}

static guint
bench_n(guint fallback)
{
	const char *env = g_getenv("HANKO_BENCH_N");

	return env ? (guint)MAX(1, atoi(env)) : fallback;
}

/* Issues n certificates, keeping `depth` requests in flight on one connection. */
static double
certd_issue(HkTestCertd *certd, const char *key, guint n, guint depth, const char *tag)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HkIpcClient) client = hk_ipc_client_connect(certd->socket, 600000, &error);
	guint sent = 0, done = 0;
	double start = now_s();

	g_assert_no_error(error);
	while (done < n) {
		while (sent < n && sent - done < depth) {
			g_autofree char *line = g_strdup_printf(
			        "{\"id\":%u,\"op\":\"cert.issue\",\"params\":{\"cn\":\"Bench %s "
			        "%u\","
			        "\"email\":\"bench-%s-%u@example.jp\",\"key\":\"%s\"}}\n",
			        sent, tag, sent, tag, sent, key);

			g_assert_true(hk_ipc_client_send_line(client, line, strlen(line), &error));
			sent++;
		}
		{
			g_autofree char *reply = hk_ipc_client_read_line(client, &error);

			g_assert_no_error(error);
			if (strstr(reply, "\"ok\":true") == NULL)
				g_error("cert.issue failed: %s", reply);
			done++;
		}
	}
	return now_s() - start;
}

static double
pipeline_issue(HkTestCertd *certd, guint n)
{
	g_autofree char *ca_crt = g_build_filename(certd->state, "ca", "ca.crt", NULL);
	g_autofree char *ca_key = g_build_filename(certd->state, "ca", "ca.key", NULL);
	g_autofree char *work = g_build_filename(certd->dir, "pipeline", NULL);
	double start;

	g_mkdir_with_parents(work, 0700);
	start = now_s();
	for (guint i = 0; i < n; i++) {
		g_autofree char *script = g_strdup_printf(
		        "set -e; cd '%s'; "
		        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		        "-keyout k%u.pem -out r%u.pem -subj '/CN=Bench %u' 2>/dev/null; "
		        "openssl x509 -req -in r%u.pem -CA '%s' -CAkey '%s' -CAcreateserial -days "
		        "365 "
		        "-out c%u.pem 2>/dev/null; "
		        "openssl pkcs12 -export -inkey k%u.pem -in c%u.pem -certfile '%s' "
		        "-name 'Bench %u' -passout pass:benchpass -out p%u.p12",
		        work, i, i, i, i, ca_crt, ca_key, i, i, i, ca_crt, i, i);

		if (hk_test_run(NULL, NULL, NULL, "sh", "-c", script, NULL) != 0)
			g_error("the openssl pipeline failed");
	}
	return now_s() - start;
}

static double
bare_rsa_keygen(guint n)
{
	double start = now_s();

	for (guint i = 0; i < n; i++) {
		EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);

		g_assert_nonnull(key);
		EVP_PKEY_free(key);
	}
	return now_s() - start;
}

/* What a PKCS#12 file costs by itself: certd's compat format (3DES bags, SHA-1 MAC, 2048
 * iterations each), with the same key and certificate every time. No issuance can be
 * faster than this, so it bounds the ratio any implementation can reach. */
static double
bare_p12(guint n)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *cert = X509_new();
	double start;

	X509_set_pubkey(cert, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
	                           (const guchar *)"bench", -1, -1, 0);
	X509_set_issuer_name(cert, X509_get_subject_name(cert));
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
	X509_sign(cert, key, EVP_sha256());
	start = now_s();
	for (guint i = 0; i < n; i++) {
		PKCS12 *p12 = PKCS12_create("bench-password", "bench", key, cert, NULL,
		                            NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
		                            NID_pbe_WithSHA1And3_Key_TripleDES_CBC, 2048, 2048, 0);

		g_assert_nonnull(p12);
		PKCS12_free(p12);
	}
	start = now_s() - start;
	X509_free(cert);
	EVP_PKEY_free(key);
	return start;
}

static void
report(const char *what, guint n, double seconds)
{
	printf("%-44s n=%-5u %9.3f s  %9.3f ms each\n", what, n, seconds, seconds * 1000.0 / n);
}

int
main(int argc, char **argv)
{
	guint n_ec = bench_n(200), n_pipe = MAX(5, bench_n(200) / 10),
	      n_rsa = MAX(5, bench_n(200) / 10);
	HkTestCertd *certd;
	double t_ec, t_ec1, t_pipe, t_rsa, t_keygen, t_p12, ec_ratio, rsa_ratio;

	g_test_init(&argc, &argv, NULL);
	certd = hk_test_certd_start(NULL);
	hk_test_certd_ca_init(certd);
	t_ec1 = certd_issue(certd, "ec:p256", n_ec, 1, "ec1");
	t_ec = certd_issue(certd, "ec:p256", n_ec, 16, "ec16");
	t_pipe = pipeline_issue(certd, n_pipe);
	t_keygen = bare_rsa_keygen(n_rsa);
	t_p12 = bare_p12(n_pipe);
	t_rsa = certd_issue(certd, "rsa:2048", n_rsa, 1, "rsa");
	hk_test_certd_stop(certd);

	report("certd EC P-256, one request at a time", n_ec, t_ec1);
	report("certd EC P-256, 16 requests in flight", n_ec, t_ec);
	report("openssl req|x509|pkcs12 pipeline, EC P-256", n_pipe, t_pipe);
	report("bare PKCS#12 (compat) creation, in process", n_pipe, t_p12);
	report("bare RSA 2048 key generation", n_rsa, t_keygen);
	report("certd RSA 2048, one request at a time", n_rsa, t_rsa);
	ec_ratio = (t_pipe / n_pipe) / (t_ec1 / n_ec);
	rsa_ratio = (t_rsa / n_rsa) / (t_keygen / n_rsa);
	printf("EC P-256: certd (one at a time) is %.1fx faster than the pipeline (target >= "
	       "50x)\n",
	       ec_ratio);
	printf("EC P-256: certd (16 in flight) is %.1fx faster than the pipeline\n",
	       (t_pipe / n_pipe) / (t_ec / n_ec));
	printf("EC P-256: the PKCS#12 alone allows at most %.1fx on this machine\n",
	       (t_pipe / n_pipe) / (t_p12 / n_pipe));
	printf("RSA 2048: certd takes %.2fx the time of bare key generation (target <= 1.10x)\n",
	       rsa_ratio);
	return 0;
}
