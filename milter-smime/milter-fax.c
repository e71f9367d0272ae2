/*
 * milter-fax: the fax gateway inside hanko-milter. See milter-fax.h.
 */
#include "milter-fax.h"
#include "fax-directive.h"
#include "fax-mail.h"
#include "fax-plugin.h"
#include "fax-queue.h"
#include "fax-render.h"
#include "hk-certd-proto.h"
#include "hk-ipc.h"
#include "hk-json.h"
#include "hk-ossl.h"

#include <gmime/gmime.h>
#include <openssl/pem.h>
#include <signal.h>
#include <string.h>

#define MAX_PARTS 64 /* leaf parts of one request looked at */

/* GMime 3.2 declares none */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeStream, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeParser, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeObject, g_object_unref)

struct _MilterFax {
	MilterCertd *certd; /* borrowed */
	HkConfig *config;   /* what the queue and the notifications run with (start-up) */
	FaxSpool *spool;
	const FaxPlugin *plugin;
	gpointer plugin_self;
	FaxPluginHost host;
	FaxQueue *queue;
	GMutex lock; /* the identity */
	EVP_PKEY *key;
	X509 *cert;
	X509 *ca;
};

void
milter_fax_outcome_clear(MilterFaxOutcome *outcome)
{
	g_free(outcome->rcode);
	g_free(outcome->xcode);
	g_free(outcome->text);
	g_free(outcome->log);
	memset(outcome, 0, sizeof(*outcome));
}

static void refuse(MilterFaxOutcome *out, const char *rcode, const char *xcode, const char *format,
                   ...) G_GNUC_PRINTF(4, 5);

static void
refuse(MilterFaxOutcome *out, const char *rcode, const char *xcode, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	out->taken = FALSE;
	out->temporary = rcode[0] == '4';
	out->rcode = g_strdup(rcode);
	out->xcode = g_strdup(xcode);
	out->text = g_strdup_vprintf(format, ap);
	va_end(ap);
	out->log = g_strdup_printf("fax=refused reason=\"%s\"", out->text);
}

/* ----- configuration ----- */

static const char *
conf(HkConfig *config, const char *key)
{
	return hk_config_get_string(config, MILTER_SECTION, key);
}

static void
dial_rules(HkConfig *config, FaxDialRules *rules)
{
	fax_dial_rules_init(rules);
	rules->international_prefix = conf(config, MILTER_CONF_FAX_INTL_PREFIX);
	if (*conf(config, MILTER_CONF_FAX_DIAL_INTL) != '\0')
		rules->dial_international = conf(config, MILTER_CONF_FAX_DIAL_INTL);
	else
		rules->dial_international = rules->international_prefix;
	rules->local_prefix = conf(config, MILTER_CONF_FAX_LOCAL_PREFIX);
	rules->strip_local_prefix =
	        hk_config_get_bool(config, MILTER_SECTION, MILTER_CONF_FAX_STRIP_LOCAL_PREFIX);
	rules->dial_prefix = conf(config, MILTER_CONF_FAX_DIAL_PREFIX);
}

static const char *
host_string(const FaxPluginHost *host, const char *key)
{
	return hk_config_get_string(host->host_data, host->section, key);
}

static gint64
host_int(const FaxPluginHost *host, const char *key)
{
	return hk_config_get_int(host->host_data, host->section, key);
}

static gboolean
host_bool(const FaxPluginHost *host, const char *key)
{
	return hk_config_get_bool(host->host_data, host->section, key);
}

static gint64
host_duration(const FaxPluginHost *host, const char *key)
{
	return hk_config_get_duration_ms(host->host_data, host->section, key);
}

/* ----- certd ----- */

typedef struct {
	gboolean found;
	gboolean unavailable;
	char *name;
	gboolean fax_allowed;
	gboolean has_fax_password;
} FaxUser;

static void
fax_user_lookup(MilterFax *fax, const char *email, FaxUser *user)
{
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;

	memset(user, 0, sizeof(*user));
	json_object_object_add(params, HK_CERTD_KEY_EMAIL, json_object_new_string(email));
	result = milter_certd_call(fax->certd, HK_CERTD_OP_USER_LOOKUP, params, &user->unavailable,
	                           &error);
	if (result == NULL)
		return;
	user->found = TRUE;
	user->name = g_strdup(hk_json_get_string(result, HK_CERTD_KEY_NAME));
	user->fax_allowed = hk_json_get_bool(result, HK_CERTD_KEY_FAX_ALLOWED, FALSE);
	user->has_fax_password = hk_json_get_bool(result, HK_CERTD_KEY_HAS_FAX_PASSWORD, FALSE);
}

/* 1: the password matches, 0: it does not (*why), -1: certd cannot say. */
static int
fax_password_verify(MilterFax *fax, const char *user, const char *password, char **why)
{
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gboolean unavailable;

	json_object_object_add(params, HK_CERTD_KEY_USER, json_object_new_string(user));
	json_object_object_add(params, HK_CERTD_KEY_PASSWORD, json_object_new_string(password));
	result =
	        milter_certd_call(fax->certd, HK_CERTD_OP_FAX_VERIFY, params, &unavailable, &error);
	if (result == NULL)
		return -1;
	if (hk_json_get_bool(result, HK_CERTD_KEY_OK, FALSE))
		return 1;
	*why = g_strdup(hk_json_get_string(result, HK_CERTD_KEY_REASON));
	return 0;
}

/* The certificate to encrypt mail to address with; NULL: none (or *unavailable). */
static X509 *
smime_lookup(MilterFax *fax, const char *address, gboolean *unavailable)
{
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	const char *pem;

	json_object_object_add(params, HK_CERTD_KEY_EMAIL, json_object_new_string(address));
	result = milter_certd_call(fax->certd, HK_CERTD_OP_SMIME_LOOKUP, params, unavailable,
	                           &error);
	pem = result ? hk_json_get_string(result, HK_CERTD_KEY_CERT_PEM) : NULL;
	if (pem != NULL) {
		g_autoptr(BIO) bio = BIO_new_mem_buf(pem, -1);

		return PEM_read_bio_X509(bio, NULL, NULL, NULL);
	}
	return NULL;
}

/* ----- the gateway's own mail ----- */

typedef struct {
	FaxMailer mailer;
	GStrv argv;
	EVP_PKEY *key;
	X509 *cert;
	STACK_OF(X509) * chain;
} Mailer;

static void
mailer_clear(Mailer *m)
{
	g_strfreev(m->argv);
	EVP_PKEY_free(m->key);
	X509_free(m->cert);
	if (m->chain != NULL)
		sk_X509_pop_free(m->chain, X509_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Mailer, mailer_clear)

static gboolean
mailer_init(MilterFax *fax, HkConfig *config, Mailer *m, GError **error)
{
	memset(m, 0, sizeof(*m));
	if (!g_shell_parse_argv(conf(config, MILTER_CONF_FAX_SENDMAIL), NULL, &m->argv, error)) {
		g_prefix_error(error, "[milter] fax_sendmail: ");
		return FALSE;
	}
	g_mutex_lock(&fax->lock);
	if (fax->key != NULL && fax->cert != NULL) {
		m->key = fax->key;
		m->cert = fax->cert;
		EVP_PKEY_up_ref(m->key);
		X509_up_ref(m->cert);
		if (fax->ca != NULL) {
			m->chain = sk_X509_new_null();
			X509_up_ref(fax->ca);
			sk_X509_push(m->chain, fax->ca);
		}
	}
	g_mutex_unlock(&fax->lock);
	m->mailer.from = conf(config, MILTER_CONF_GATEWAY_ADDRESS);
	m->mailer.from_name = conf(config, MILTER_CONF_FAX_FROM_NAME);
	m->mailer.key = m->key;
	m->mailer.cert = m->cert;
	m->mailer.chain = m->chain;
	m->mailer.cipher = conf(config, MILTER_CONF_FAX_NOTIFY_CIPHER);
	m->mailer.sendmail = (const char *const *)m->argv;
	return TRUE;
}

/* Sends text to address, encrypted when certd knows a certificate for it. */
static gboolean
mail_to(MilterFax *fax, HkConfig *config, const char *to, const char *subject, const char *text,
        const FaxMailAttachment *attachments, guint n_attachments, X509 *encrypt_to, GError **error)
{
	g_auto(Mailer) m = {0};
	g_autoptr(X509) found = NULL;
	gboolean unavailable = FALSE;

	if (!mailer_init(fax, config, &m, error))
		return FALSE;
	if (m.key == NULL)
		g_warning("mail to %s goes out unsigned: the gateway has no identity", to);
	if (encrypt_to == NULL) {
		found = smime_lookup(fax, to, &unavailable);
		if (unavailable) {
			g_set_error(
			        error, G_IO_ERROR, G_IO_ERROR_FAILED,
			        "hanko-certd is unavailable: cannot tell whether mail to %s must "
			        "be encrypted",
			        to);
			return FALSE;
		}
		encrypt_to = found;
	}
	return fax_mail_send(&m.mailer, to, subject, text, attachments, n_attachments, encrypt_to,
	                     error);
}

static gboolean
notify_job(const FaxJob *job, gpointer data)
{
	MilterFax *fax = data;
	g_autofree char *subject = NULL;
	g_autofree char *text = NULL;
	g_autoptr(GError) error = NULL;

	if (!hk_config_get_bool(fax->config, MILTER_SECTION, MILTER_CONF_FAX_NOTIFY) ||
	    job->notify == NULL || *job->notify == '\0')
		return TRUE;
	fax_mail_job_result(job, &subject, &text);
	if (!mail_to(fax, fax->config, job->notify, subject, text, NULL, 0, NULL, &error)) {
		g_warning("job %" G_GINT64_FORMAT ": result mail to %s not sent yet: %s", job->id,
		          job->notify, error->message);
		return FALSE;
	}
	g_message("job %" G_GINT64_FORMAT ": result mail sent to %s", job->id, job->notify);
	return TRUE;
}

/* ----- set-up ----- */

MilterFax *
milter_fax_new(HkConfig *config, MilterCertd *certd, GError **error)
{
	g_autoptr(MilterFax) fax = g_new0(MilterFax, 1);
	const char *backend = conf(config, MILTER_CONF_FAX_BACKEND);
	g_autofree char *section = g_strdup_printf("fax.%s", backend);
	FaxQueueOptions options = {
	        .max_tries =
	                (guint)hk_config_get_int(config, MILTER_SECTION, MILTER_CONF_FAX_MAX_TRIES),
	        .retry_delay_ms = hk_config_get_duration_ms(config, MILTER_SECTION,
	                                                    MILTER_CONF_FAX_RETRY_DELAY),
	        .station_id = conf(config, MILTER_CONF_FAX_STATION_ID),
	};

	g_mime_init();
	g_mutex_init(&fax->lock);
	fax->certd = certd;
	fax->config = hk_config_ref(config);
	fax->spool = fax_spool_open(conf(config, MILTER_CONF_FAX_SPOOL_DIR), error);
	if (fax->spool == NULL)
		return NULL;
	fax->plugin = fax_plugin_load(backend, conf(config, MILTER_CONF_FAX_PLUGIN_DIR), error);
	if (fax->plugin == NULL)
		return NULL;
	fax->host = (FaxPluginHost){
	        .section = g_intern_string(section),
	        .get_string = host_string,
	        .get_int = host_int,
	        .get_bool = host_bool,
	        .get_duration_ms = host_duration,
	        .host_data = fax->config,
	};
	fax->plugin_self = fax->plugin->open(&fax->host, error);
	if (fax->plugin_self == NULL) {
		g_prefix_error(error, "fax backend %s: ", backend);
		return NULL;
	}
	fax->queue = fax_queue_start(fax->spool, fax->plugin, fax->plugin_self, &options,
	                             notify_job, fax, error);
	if (fax->queue == NULL)
		return NULL;
	g_message("fax gateway: backend %s, spool %s", backend,
	          conf(config, MILTER_CONF_FAX_SPOOL_DIR));
	return g_steal_pointer(&fax);
}

void
milter_fax_free(MilterFax *fax)
{
	if (fax == NULL)
		return;
	if (fax->queue != NULL)
		fax_queue_stop(fax->queue);
	if (fax->plugin_self != NULL)
		fax->plugin->close(fax->plugin_self);
	g_clear_pointer(&fax->spool, fax_spool_close);
	EVP_PKEY_free(fax->key);
	X509_free(fax->cert);
	X509_free(fax->ca);
	g_mutex_clear(&fax->lock);
	hk_config_unref(fax->config);
	g_free(fax);
}

void
milter_fax_set_identity(MilterFax *fax, EVP_PKEY *key, X509 *cert, X509 *ca)
{
	g_mutex_lock(&fax->lock);
	g_clear_pointer(&fax->key, EVP_PKEY_free);
	g_clear_pointer(&fax->cert, X509_free);
	g_clear_pointer(&fax->ca, X509_free);
	if (key != NULL && cert != NULL) {
		EVP_PKEY_up_ref(key);
		X509_up_ref(cert);
		fax->key = key;
		fax->cert = cert;
	}
	if (ca != NULL) {
		X509_up_ref(ca);
		fax->ca = ca;
	}
	g_mutex_unlock(&fax->lock);
	fax_queue_kick(fax->queue); /* result mails that waited for it */
}

FaxSpool *
milter_fax_get_spool(MilterFax *fax)
{
	return fax->spool;
}

gboolean
milter_fax_cancel(MilterFax *fax, gint64 job, GError **error)
{
	return fax_queue_cancel(fax->queue, job, error);
}

gboolean
milter_fax_resend(MilterFax *fax, gint64 job, guint *n, GError **error)
{
	if (!fax_spool_resend(fax->spool, job, n, error))
		return FALSE;
	fax_queue_kick(fax->queue);
	return TRUE;
}

GStrv
milter_fax_canonical_numbers(HkConfig *config, const char *const *written, GError **error)
{
	g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
	FaxDialRules rules;

	dial_rules(config, &rules);
	for (guint i = 0; written != NULL && written[i] != NULL; i++) {
		g_autofree char *folded = fax_fold(written[i], -1);
		char *number = fax_number_canonical(folded, &rules, error);

		if (number == NULL)
			return NULL;
		g_ptr_array_add(out, number);
	}
	g_ptr_array_add(out, NULL);
	return (GStrv)g_ptr_array_free(g_steal_pointer(&out), FALSE);
}

gboolean
milter_fax_send_cert(MilterFax *fax, HkConfig *config, const char *const *to, GError **error)
{
	g_autoptr(X509) cert = NULL;
	g_autofree guint8 *der = NULL;
	g_autofree char *text = NULL;
	guint8 *p;
	int len;

	g_mutex_lock(&fax->lock);
	if (fax->cert != NULL) {
		cert = fax->cert;
		X509_up_ref(cert);
	}
	g_mutex_unlock(&fax->lock);
	if (cert == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
		            "the gateway has no identity: assign a certificate to the gateway "
		            "service (hankoctl cert assign NAME gateway)");
		return FALSE;
	}
	len = i2d_X509(cert, NULL);
	der = g_malloc(len);
	p = der;
	i2d_X509(cert, &p);
	text = g_strdup_printf(
	        "This mail carries the certificate of the fax gateway %s.\n\n"
	        "Your mail program keeps it when it checks this signed mail (or open the\n"
	        "attached gateway.cer and install it). Then you can send fax requests to\n"
	        "%s encrypted with S/MIME.\n",
	        conf(config, MILTER_CONF_GATEWAY_ADDRESS),
	        conf(config, MILTER_CONF_GATEWAY_ADDRESS));
	for (guint i = 0; to[i] != NULL; i++) {
		FaxMailAttachment att = {"gateway.cer", "application/pkix-cert", der, (gsize)len};

		if (!mail_to(fax, config, to[i], "The fax gateway's certificate", text, &att, 1,
		             NULL, error)) {
			g_prefix_error(error, "%s: ", to[i]);
			return FALSE;
		}
		g_message("gateway certificate sent to %s", to[i]);
	}
	return TRUE;
}

/* ----- who the mail is for ----- */

static const char *
local_part_number(const char *rcpt, const char *domain, gsize *len)
{
	const char *at = strrchr(rcpt, '@');

	if (at == NULL || *domain == '\0' || g_ascii_strcasecmp(at + 1, domain) != 0)
		return NULL;
	*len = (gsize)(at - rcpt);
	return rcpt;
}

MilterFaxKind
milter_fax_classify(MilterFax *fax, HkConfig *config, const char *rcpt)
{
	gsize len;

	if (g_ascii_strcasecmp(rcpt, conf(config, MILTER_CONF_GATEWAY_ADDRESS)) == 0)
		return MILTER_FAX_GATEWAY;
	if (*conf(config, MILTER_CONF_REGISTRATION_ADDRESS) != '\0' &&
	    g_ascii_strcasecmp(rcpt, conf(config, MILTER_CONF_REGISTRATION_ADDRESS)) == 0)
		return MILTER_FAX_REGISTER;
	if (local_part_number(rcpt, conf(config, MILTER_CONF_FAX_DOMAIN), &len) != NULL)
		return MILTER_FAX_DIRECT;
	return MILTER_FAX_NONE;
}

/* ----- the request's content ----- */

typedef struct {
	char *content_type; /* lower case, no parameters */
	char *name;         /* file name or content type, for messages */
	GBytes *data;       /* decoded; text as UTF-8 */
} Document;

static void
document_free(Document *d)
{
	g_free(d->content_type);
	g_free(d->name);
	g_bytes_unref(d->data);
	g_free(d);
}

typedef struct {
	char *text;         /* the first text/plain part that is not an attachment */
	GPtrArray *docs;    /* Document */
	GPtrArray *skipped; /* "name (type)" */
	char *unsupported;  /* the first part that cannot be faxed */
	guint parts;
} Content;

static void
content_clear(Content *c)
{
	g_free(c->text);
	g_ptr_array_unref(c->docs);
	g_ptr_array_unref(c->skipped);
	g_free(c->unsupported);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Content, content_clear)

static GBytes *
part_bytes(GMimePart *part)
{
	GMimeDataWrapper *wrapper = g_mime_part_get_content(part);
	g_autoptr(GMimeStream) stream = g_mime_stream_mem_new();
	GByteArray *array;

	if (wrapper == NULL)
		return g_bytes_new(NULL, 0);
	g_mime_data_wrapper_write_to_stream(wrapper, stream);
	array = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream));
	return g_bytes_new(array->data, array->len);
}

/* Attachments labelled application/octet-stream are known by their file name. */
static char *
type_of(GMimeObject *object, const char *filename)
{
	GMimeContentType *ct = g_mime_object_get_content_type(object);
	g_autofree char *given = g_mime_content_type_get_mime_type(ct); /* allocated */
	g_autofree char *type = g_ascii_strdown(given, -1);
	static const struct {
		const char *suffix;
		const char *type;
	} by_suffix[] = {{".pdf", "application/pdf"}, {".png", "image/png"},
	                 {".jpg", "image/jpeg"},      {".jpeg", "image/jpeg"},
	                 {".tif", "image/tiff"},      {".tiff", "image/tiff"},
	                 {".txt", "text/plain"}};

	if (g_strcmp0(type, "application/octet-stream") == 0 && filename != NULL) {
		g_autofree char *lower = g_ascii_strdown(filename, -1);

		for (gsize i = 0; i < G_N_ELEMENTS(by_suffix); i++) {
			if (g_str_has_suffix(lower, by_suffix[i].suffix))
				return g_strdup(by_suffix[i].type);
		}
	}
	if (g_strcmp0(type, "image/jpg") == 0 || g_strcmp0(type, "image/pjpeg") == 0)
		return g_strdup("image/jpeg");
	return g_steal_pointer(&type);
}

static void
collect(GMimeObject *object, Content *c, guint depth)
{
	if (depth > 8 || ++c->parts > MAX_PARTS)
		return;
	if (GMIME_IS_MULTIPART_SIGNED(object)) {
		collect(g_mime_multipart_get_part(GMIME_MULTIPART(object),
		                                  GMIME_MULTIPART_SIGNED_CONTENT),
		        c, depth + 1);
	} else if (GMIME_IS_MULTIPART(object)) {
		GMimeMultipart *mp = GMIME_MULTIPART(object);
		GMimeContentType *ct = g_mime_object_get_content_type(object);
		int n = g_mime_multipart_get_count(mp);

		if (g_ascii_strcasecmp(g_mime_content_type_get_media_subtype(ct), "alternative") ==
		    0) {
			/* the plain text version; failing that, the first */
			for (int i = 0; i < n; i++) {
				GMimeObject *alt = g_mime_multipart_get_part(mp, i);

				if (GMIME_IS_TEXT_PART(alt) &&
				    g_mime_content_type_is_type(g_mime_object_get_content_type(alt),
				                                "text", "plain")) {
					collect(alt, c, depth + 1);
					return;
				}
			}
			if (n > 0)
				collect(g_mime_multipart_get_part(mp, 0), c, depth + 1);
			return;
		}
		for (int i = 0; i < n; i++)
			collect(g_mime_multipart_get_part(mp, i), c, depth + 1);
	} else if (GMIME_IS_PART(object)) {
		GMimePart *part = GMIME_PART(object);
		const char *filename = g_mime_part_get_filename(part);
		g_autofree char *type = type_of(object, filename);
		const char *disposition = g_mime_object_get_disposition(object);
		gboolean attachment =
		        disposition != NULL && g_ascii_strcasecmp(disposition, "attachment") == 0;
		Document *doc;

		if (g_str_has_prefix(type, "application/pkcs7-signature") ||
		    g_str_has_prefix(type, "application/x-pkcs7-signature"))
			return;
		if (g_strcmp0(type, "text/plain") == 0 && GMIME_IS_TEXT_PART(object) &&
		    c->text == NULL && !attachment) {
			c->text = g_mime_text_part_get_text(GMIME_TEXT_PART(object));
			if (c->text == NULL)
				c->text = g_strdup("");
			return;
		}
		if (!fax_render_supports(type)) {
			g_autofree char *what =
			        g_strdup_printf("%s (%s)", filename ? filename : "part", type);

			if (c->unsupported == NULL)
				c->unsupported = g_strdup(what);
			g_ptr_array_add(c->skipped, g_steal_pointer(&what));
			return;
		}
		doc = g_new0(Document, 1);
		doc->content_type = g_steal_pointer(&type);
		doc->name = g_strdup(filename ? filename : doc->content_type);
		if (g_strcmp0(doc->content_type, "text/plain") == 0 && GMIME_IS_TEXT_PART(object)) {
			char *utf8 = g_mime_text_part_get_text(GMIME_TEXT_PART(object));

			doc->data = g_bytes_new_take(utf8, utf8 ? strlen(utf8) : 0);
		} else {
			doc->data = part_bytes(part);
		}
		g_ptr_array_add(c->docs, doc);
	} else if (GMIME_IS_MESSAGE_PART(object)) {
		if (c->unsupported == NULL)
			c->unsupported = g_strdup("an attached message (message/rfc822)");
		g_ptr_array_add(c->skipped, g_strdup("attached message (message/rfc822)"));
	}
}

static gboolean
content_parse(GBytes *bytes, Content *c, GError **error)
{
	gsize len;
	const guint8 *data = g_bytes_get_data(bytes, &len);
	g_autoptr(GMimeStream) stream = g_mime_stream_mem_new_with_buffer((const char *)data, len);
	g_autoptr(GMimeParser) parser = g_mime_parser_new_with_stream(stream);
	g_autoptr(GMimeObject) object = g_mime_parser_construct_part(parser, NULL);

	c->docs = g_ptr_array_new_with_free_func((GDestroyNotify)document_free);
	c->skipped = g_ptr_array_new_with_free_func(g_free);
	if (object == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
		            "the message is not a MIME entity");
		return FALSE;
	}
	collect(object, c, 0);
	return TRUE;
}

/* Cuts a first "!#PASSWORD" line (the Subject gave the destinations). */
static char *
take_password_line(char **text)
{
	char *p = *text;
	char *end;
	char *password;

	while (*p == '\r' || *p == '\n')
		p++;
	if (p[0] != '!' || p[1] != '#')
		return NULL;
	end = p + strcspn(p, "\r\n");
	password = g_strndup(p + 2, (gsize)(end - p - 2));
	if (*end == '\r')
		end++;
	if (*end == '\n')
		end++;
	memmove(*text, end, strlen(end) + 1);
	return password;
}

static gboolean
blank(const char *text)
{
	for (; text != NULL && *text != '\0'; text++) {
		if (!g_ascii_isspace(*text))
			return FALSE;
	}
	return TRUE;
}

/* ----- registration ----- */

static void
take_registration(MilterFax *fax, HkConfig *config, const MilterFaxRequest *req,
                  MilterFaxOutcome *out)
{
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) mail_error = NULL;
	g_autofree char *text = NULL;
	gboolean unavailable = FALSE;
	gboolean registering = req->signer != NULL;
	FaxUser user;

	fax_user_lookup(fax, req->from, &user);
	g_free(user.name);
	if (user.unavailable) {
		refuse(out, "451", "4.7.0", "Registration unavailable, try again later");
		return;
	}
	if (!user.found) {
		refuse(out, "550", "5.7.1", "%s is not a user of this fax gateway", req->from);
		return;
	}
	if (registering && !req->signature_ok) {
		refuse(out, "550", "5.7.1",
		       "The signature is not valid: no certificate was registered");
		return;
	}
	json_object_object_add(params, HK_CERTD_KEY_EMAIL, json_object_new_string(req->from));
	if (registering) {
		g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
		char *pem;
		long len;

		PEM_write_bio_X509(bio, req->signer);
		len = BIO_get_mem_data(bio, &pem);
		json_object_object_add(params, HK_CERTD_KEY_CERT_PEM,
		                       json_object_new_string_len(pem, (int)len));
	}
	result = milter_certd_call(
	        fax->certd, registering ? HK_CERTD_OP_SMIME_REGISTER : HK_CERTD_OP_SMIME_UNREGISTER,
	        params, &unavailable, &error);
	if (result == NULL && unavailable) {
		refuse(out, "451", "4.7.0", "Registration unavailable, try again later");
		return;
	}
	if (result == NULL && registering) {
		refuse(out, "550", "5.7.1", "Certificate not registered: %s", error->message);
		return;
	}
	/* unregistering what was not registered is no error */
	if (registering)
		text = g_strdup_printf(
		        "The certificate you signed your mail with is now registered for %s\n"
		        "(fingerprint %s, valid until %s).\n\n"
		        "From now on, the fax gateway's result mails to this address are "
		        "encrypted\n"
		        "for it. To end that, send an unsigned mail to %s.\n",
		        req->from, hk_json_get_string(result, HK_CERTD_KEY_FINGERPRINT),
		        hk_json_get_string(result, HK_CERTD_KEY_NOT_AFTER),
		        conf(config, MILTER_CONF_REGISTRATION_ADDRESS));
	else
		text = g_strdup_printf(
		        "No certificate is registered for %s any more: the fax gateway's result\n"
		        "mails to this address are no longer encrypted (unless hanko issued you "
		        "an\n"
		        "S/MIME certificate). To register one, send a signed mail to %s.\n",
		        req->from, conf(config, MILTER_CONF_REGISTRATION_ADDRESS));
	if (!mail_to(fax, config, req->from,
	             registering ? "Certificate registered" : "Certificate unregistered", text,
	             NULL, 0, registering ? req->signer : NULL, &mail_error))
		g_warning("%s: confirmation to %s not sent: %s", req->queue_id, req->from,
		          mail_error->message);
	out->taken = TRUE;
	out->log = g_strdup_printf("fax=%s email=<%s>", registering ? "registered" : "unregistered",
	                           req->from);
}

/* ----- fax requests ----- */

static GStrv
list_lookup(const char *name, gpointer data)
{
	return fax_spool_list_get(data, name);
}

static void
refuse_directive(MilterFaxOutcome *out, const GError *error)
{
	const char *xcode = "5.1.3";

	if (g_error_matches(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_UNKNOWN_LIST))
		xcode = "5.1.1";
	else if (g_error_matches(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_TOO_MANY))
		xcode = "5.5.3";
	refuse(out, "550", xcode, "%s", error->message);
}

/* The destinations as written: from the recipients, the Subject, or the body. */
static gboolean
destinations(HkConfig *config, const MilterFaxRequest *req, Content *c, GStrv *written,
             char **password, MilterFaxOutcome *out)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *subject = NULL;

	if (req->kind == MILTER_FAX_DIRECT) {
		g_autoptr(GPtrArray) numbers = g_ptr_array_new_with_free_func(g_free);
		const char *domain = conf(config, MILTER_CONF_FAX_DOMAIN);

		for (guint i = 0; req->rcpts[i] != NULL; i++) {
			gsize len;
			const char *number = local_part_number(req->rcpts[i], domain, &len);

			if (number != NULL)
				g_ptr_array_add(numbers, g_strndup(number, len));
		}
		g_ptr_array_add(numbers, NULL);
		*written = (GStrv)g_ptr_array_free(g_steal_pointer(&numbers), FALSE);
		*password = c->text ? take_password_line(&c->text) : NULL;
		return TRUE;
	}
	subject = req->subject ? g_mime_utils_header_decode_text(NULL, req->subject) : NULL;
	switch (fax_subject_parse(subject ? subject : "", written)) {
	case FAX_SUBJECT_NUMBERS:
		*password = c->text ? take_password_line(&c->text) : NULL;
		return TRUE;
	case FAX_SUBJECT_BODY: {
		gsize consumed = 0;

		if (c->text == NULL || !fax_body_parse(c->text, strlen(c->text), password, written,
		                                       &consumed, &error)) {
			if (error == NULL)
				g_set_error(&error, FAX_DIRECTIVE_ERROR,
				            FAX_DIRECTIVE_ERROR_NONE_FOUND,
				            "No recipients found: /fax=body needs a text body");
			refuse_directive(out, error);
			return FALSE;
		}
		memmove(c->text, c->text + consumed, strlen(c->text + consumed) + 1);
		return TRUE;
	}
	case FAX_SUBJECT_NONE:
	default:
		break;
	}
	refuse(out, "550", "5.1.3",
	       "No recipients found: put /fax=NUMBER or /fax=body within the first %u characters "
	       "of the Subject",
	       FAX_SUBJECT_WINDOW);
	return FALSE;
}

static void
render_options(HkConfig *config, const char *from, FaxRenderOptions *o)
{
	memset(o, 0, sizeof(*o));
	o->resolution = g_strcmp0(conf(config, MILTER_CONF_FAX_RESOLUTION), "normal") == 0
	                        ? FAX_RES_NORMAL
	                        : FAX_RES_FINE;
	o->coding = g_strcmp0(conf(config, MILTER_CONF_FAX_CODING), "mmr") == 0  ? FAX_CODING_MMR
	            : g_strcmp0(conf(config, MILTER_CONF_FAX_CODING), "mr") == 0 ? FAX_CODING_MR
	                                                                         : FAX_CODING_MH;
	o->font = conf(config, MILTER_CONF_FAX_FONT);
	o->header_from =
	        hk_config_get_bool(config, MILTER_SECTION, MILTER_CONF_FAX_HEADER) ? from : NULL;
	o->cover = hk_config_get_bool(config, MILTER_SECTION, MILTER_CONF_FAX_COVER_PAGE);
	o->max_pages = (guint)hk_config_get_int(config, MILTER_SECTION, MILTER_CONF_FAX_MAX_PAGES);
}

/* Renders the text and the documents into staging/fax.tif. */
static gboolean
render(HkConfig *config, const MilterFaxRequest *req, Content *c, const char *subject,
       char **numbers, const char *staging, guint *pages, MilterFaxOutcome *out)
{
	g_autofree char *to = g_strjoinv(", ", numbers);
	FaxRenderOptions options;
	g_autoptr(FaxRender) r = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *path = g_build_filename(staging, "fax.tif", NULL);

	render_options(config, req->from, &options);
	options.cover_subject = subject;
	options.cover_to = to;
	r = fax_render_new(&options);
	if (!blank(c->text) && !fax_render_add_document(r, "text/plain", (const guint8 *)c->text,
	                                                strlen(c->text), &error)) {
		refuse(out, "550", "5.6.0", "The text cannot be faxed: %s", error->message);
		return FALSE;
	}
	for (guint i = 0; i < c->docs->len; i++) {
		Document *d = c->docs->pdata[i];
		gsize len;
		const guint8 *data = g_bytes_get_data(d->data, &len);

		if (!fax_render_add_document(r, d->content_type, data, len, &error)) {
			if (g_error_matches(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_TOO_MANY))
				refuse(out, "552", "5.3.4", "%s", error->message);
			else
				refuse(out, "550", "5.6.0", "Attachment %s cannot be faxed: %s",
				       d->name, error->message);
			return FALSE;
		}
	}
	*pages = fax_render_get_n_pages(r);
	if (*pages == 0) {
		refuse(out, "550", "5.6.0", "Nothing to fax: no text and no attachment");
		return FALSE;
	}
	if (!fax_render_write_tiff(r, path, &error)) {
		g_warning("%s: fax pages not written: %s", req->queue_id, error->message);
		refuse(out, "451", "4.3.0", "The fax gateway cannot spool now, try again later");
		return FALSE;
	}
	return TRUE;
}

static char *
dedupe_key(const MilterFaxRequest *req)
{
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);

	g_checksum_update(sum, (const guchar *)(req->sender ? req->sender : ""), -1);
	g_checksum_update(sum, (const guchar *)"", 1);
	g_checksum_update(sum, (const guchar *)(req->message_id ? req->message_id : ""), -1);
	g_checksum_update(sum, (const guchar *)"", 1);
	g_checksum_update(sum, (const guchar *)req->digest, -1);
	return g_strdup(g_checksum_get_string(sum));
}

/* For the crash test only: die where a crash hurts most, after the commit, before 250. */
static void
crash_point(void)
{
#ifdef HANKO_TEST_HOOKS
	if (g_getenv("HANKO_TEST_CRASH_AFTER_SPOOL") != NULL)
		raise(SIGKILL);
#endif
}

static void
take_request(MilterFax *fax, HkConfig *config, const MilterFaxRequest *req, FaxUser *user,
             MilterFaxOutcome *out)
{
	g_auto(Content) c = {0};
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) written = NULL;
	g_auto(GStrv) numbers = NULL;
	g_autoptr(GPtrArray) dials = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(HkSecret) password = NULL;
	g_autofree char *why = NULL;
	g_autofree char *subject = NULL;
	g_autofree char *staging = NULL;
	g_autofree char *notes = NULL;
	g_autofree char *key = NULL;
	FaxDialRules rules;
	FaxJobSpec spec = {0};
	guint pages = 0;
	gint64 id = 0;
	gboolean duplicate = FALSE;

	if (!content_parse(req->content, &c, &error)) {
		refuse(out, "550", "5.6.0", "Malformed request: %s", error->message);
		return;
	}
	if (!destinations(config, req, &c, &written, &password, out))
		return;
	dial_rules(config, &rules);
	numbers = fax_destinations_resolve(
	        (const char *const *)written, &rules, list_lookup, fax->spool,
	        (guint)hk_config_get_int(config, MILTER_SECTION, MILTER_CONF_FAX_MAX_DESTINATIONS),
	        &error);
	if (numbers == NULL) {
		refuse_directive(out, error);
		return;
	}
	if (user->has_fax_password) {
		int ok;

		if (password == NULL) {
			refuse(out, "550", "5.7.1",
			       "A fax password is required: put !#PASSWORD on the first body line");
			return;
		}
		ok = fax_password_verify(fax, user->name, password, &why);
		if (ok < 0) {
			refuse(out, "451", "4.7.0",
			       "Fax password check unavailable, try again later");
			return;
		}
		if (ok == 0) {
			refuse(out, "550", "5.7.1", "Wrong fax password");
			return;
		}
	}
	if (c.unsupported != NULL &&
	    g_strcmp0(conf(config, MILTER_CONF_FAX_UNSUPPORTED), "skip") != 0) {
		refuse(out, "550", "5.6.1", "%s cannot be faxed: send text, PDF, PNG, JPEG or TIFF",
		       c.unsupported);
		return;
	}
	subject = req->subject ? g_mime_utils_header_decode_text(NULL, req->subject) : NULL;
	staging = fax_spool_stage(fax->spool, &error);
	if (staging == NULL) {
		g_warning("%s: %s", req->queue_id, error->message);
		refuse(out, "451", "4.3.0", "The fax gateway cannot spool now, try again later");
		return;
	}
	if (!render(config, req, &c, subject, numbers, staging, &pages, out)) {
		fax_spool_discard(fax->spool, staging);
		return;
	}
	for (guint i = 0; numbers[i] != NULL; i++)
		g_ptr_array_add(dials, fax_number_dial(numbers[i], &rules));
	g_ptr_array_add(dials, NULL);
	if (c.skipped->len > 0) {
		g_autofree char *list = NULL;

		g_ptr_array_add(c.skipped, NULL);
		list = g_strjoinv(", ", (char **)c.skipped->pdata);
		notes = g_strdup_printf("not faxed: %s", list);
	}
	key = dedupe_key(req);
	spec = (FaxJobSpec){
	        .user = user->name,
	        .sender = req->from,
	        .notify = *conf(config, MILTER_CONF_FAX_NOTIFY_ADDRESS) != '\0'
	                          ? conf(config, MILTER_CONF_FAX_NOTIFY_ADDRESS)
	                          : req->from,
	        .subject = subject ? subject : "",
	        .queue_id = req->queue_id,
	        .dedupe_key = key,
	        .notes = notes ? notes : "",
	        .pages = pages,
	        .numbers = (const char *const *)numbers,
	        .dials = (const char *const *)dials->pdata,
	};
	if (!fax_spool_commit(fax->spool, staging, &spec, &id, &duplicate, &error)) {
		g_warning("%s: fax job not spooled: %s", req->queue_id, error->message);
		fax_spool_discard(fax->spool, staging);
		refuse(out, "451", "4.3.0", "The fax gateway cannot spool now, try again later");
		return;
	}
	crash_point();
	if (!duplicate)
		fax_queue_kick(fax->queue);
	out->taken = TRUE;
	out->log = g_strdup_printf("fax=%s job=%" G_GINT64_FORMAT " user=%s destinations=%u "
	                           "pages=%u%s%s",
	                           duplicate ? "duplicate" : "queued", id, user->name,
	                           g_strv_length(numbers), pages, notes ? " " : "",
	                           notes ? notes : "");
}

void
milter_fax_take(MilterFax *fax, HkConfig *config, const MilterFaxRequest *req,
                MilterFaxOutcome *out)
{
	FaxUser user;

	memset(out, 0, sizeof(*out));
	if (req->from == NULL) {
		refuse(out, "550", "5.7.1", "The request has no From address");
		return;
	}
	if (req->kind == MILTER_FAX_REGISTER) {
		take_registration(fax, config, req, out);
		return;
	}
	fax_user_lookup(fax, req->from, &user);
	if (user.unavailable)
		refuse(out, "451", "4.7.0", "Fax gateway unavailable, try again later");
	else if (!user.found)
		refuse(out, "550", "5.7.1", "%s is not a user of this fax gateway", req->from);
	else if (!user.fax_allowed)
		refuse(out, "550", "5.7.1", "%s may not send faxes", req->from);
	else
		take_request(fax, config, req, &user, out);
	g_free(user.name);
}
