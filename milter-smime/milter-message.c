/*
 * milter-message: collects a message and judges it. See milter-message.h.
 */
#include "milter-message.h"
#include "hk-certd-proto.h"
#include "hk-ipc.h"
#include "hk-json.h"
#include "hk-ossl.h"
#include "milter-smime.h"

#include <errno.h>
#include <gio/gio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEMORY_BODY_MAX  (256 * 1024)  /* more goes to an unlinked file */
#define HEADER_BYTES_MAX (1024 * 1024) /* beyond: the message is too big to judge */

struct _MilterMessage {
	MilterRuntime *rt;
	char *queue_id;
	char *sender;
	GPtrArray *rcpts;
	gboolean for_gateway;
	MilterFaxKind fax_kind;
	GArray *headers;    /* MilterMimeHeader */
	GArray *indices;    /* guint: each field's index among those of its name */
	GHashTable *counts; /* lower-case name -> fields of that name so far */
	gsize header_bytes;
	GByteArray *memory;
	int fd;
	guint64 body_len;
	gboolean oversize;
	gboolean failed;
};

/* "<a@b>" and "a@b" alike; "<>" is the null sender. */
static char *
bare_address(const char *addr)
{
	gsize len;

	if (addr == NULL)
		return g_strdup("");
	while (*addr == ' ')
		addr++;
	len = strlen(addr);
	if (len >= 2 && addr[0] == '<' && addr[len - 1] == '>')
		return g_strndup(addr + 1, len - 2);
	return g_strdup(addr);
}

MilterMessage *
milter_message_new(MilterRuntime *rt)
{
	MilterMessage *msg = g_new0(MilterMessage, 1);

	msg->rt = milter_runtime_ref(rt);
	msg->queue_id = g_strdup("NOQUEUE");
	msg->rcpts = g_ptr_array_new_with_free_func(g_free);
	msg->headers = g_array_new(FALSE, FALSE, sizeof(MilterMimeHeader));
	msg->indices = g_array_new(FALSE, FALSE, sizeof(guint));
	msg->counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	msg->memory = g_byte_array_new();
	msg->fd = -1;
	return msg;
}

void
milter_message_free(MilterMessage *msg)
{
	if (msg == NULL)
		return;
	for (guint i = 0; i < msg->headers->len; i++) {
		g_free(g_array_index(msg->headers, MilterMimeHeader, i).name);
		g_free(g_array_index(msg->headers, MilterMimeHeader, i).value);
	}
	g_array_unref(msg->headers);
	g_array_unref(msg->indices);
	g_hash_table_unref(msg->counts);
	g_byte_array_unref(msg->memory);
	if (msg->fd >= 0)
		close(msg->fd);
	g_ptr_array_unref(msg->rcpts);
	g_free(msg->queue_id);
	g_free(msg->sender);
	milter_runtime_unref(msg->rt);
	g_free(msg);
}

void
milter_message_set_queue_id(MilterMessage *msg, const char *queue_id)
{
	if (queue_id == NULL || *queue_id == '\0')
		return;
	g_free(msg->queue_id);
	msg->queue_id = g_strdup(queue_id);
}

void
milter_message_set_sender(MilterMessage *msg, const char *sender)
{
	g_free(msg->sender);
	msg->sender = bare_address(sender);
}

gboolean
milter_message_add_rcpt(MilterMessage *msg, const char *rcpt, char **why)
{
	MilterRuntime *rt = msg->rt;
	g_autofree char *addr = bare_address(rcpt);
	gboolean gateway = rt->gateway != NULL && g_ascii_strcasecmp(addr, rt->gateway) == 0;
	MilterFaxKind kind = MILTER_FAX_NONE;

	if (rt->fax != NULL)
		kind = milter_fax_classify(rt->fax, rt->config, addr);
	gateway = gateway || kind != MILTER_FAX_NONE;
	if (msg->rcpts->len > 0 && (gateway != msg->for_gateway || kind != msg->fax_kind)) {
		*why = g_strdup_printf("Mail for %s must be sent in a transaction of its own",
		                       gateway ? addr : "the gateway");
		return FALSE;
	}
	msg->for_gateway = gateway;
	msg->fax_kind = kind;
	g_ptr_array_add(msg->rcpts, g_ascii_strdown(addr, -1));
	return TRUE;
}

/* Unfolds: the line breaks of a folded field go, the blanks after them stay. */
static char *
unfold(const char *value)
{
	GString *out = g_string_sized_new(strlen(value));

	for (const char *p = value; *p; p++) {
		if (*p != '\r' && *p != '\n')
			g_string_append_c(out, *p);
	}
	return g_strstrip(g_string_free(out, FALSE));
}

void
milter_message_add_header(MilterMessage *msg, const char *name, const char *value)
{
	MilterMimeHeader field = {g_strdup(name), unfold(value ? value : "")};
	char *key;
	guint index;

	msg->header_bytes += strlen(field.name) + strlen(field.value) + 4;
	if (msg->header_bytes > HEADER_BYTES_MAX) {
		msg->oversize = TRUE;
		g_free(field.name);
		g_free(field.value);
		return;
	}
	/* a table, not a scan of the fields so far: thousands of fields stay linear */
	key = g_ascii_strdown(name, -1);
	index = GPOINTER_TO_UINT(g_hash_table_lookup(msg->counts, key)) + 1;
	g_hash_table_replace(msg->counts, key, GUINT_TO_POINTER(index));
	g_array_append_val(msg->headers, field);
	g_array_append_val(msg->indices, index);
}

static gboolean
spill(MilterMessage *msg, GError **error)
{
	int fd = open(msg->rt->tmp_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, msg->memory->data, msg->memory->len) != (ssize_t)msg->memory->len) {
		int err = errno;

		if (fd >= 0)
			close(fd);
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
		            "cannot spool the body in %s: %s", msg->rt->tmp_dir, g_strerror(err));
		return FALSE;
	}
	msg->fd = fd;
	g_byte_array_set_size(msg->memory, 0);
	return TRUE;
}

gboolean
milter_message_add_body(MilterMessage *msg, const guint8 *data, gsize len, GError **error)
{
	msg->body_len += len;
	if (msg->oversize || msg->body_len > msg->rt->max_size) {
		msg->oversize = TRUE;
		return TRUE;
	}
	if (msg->fd < 0) {
		g_byte_array_append(msg->memory, data, (guint)len);
		return msg->memory->len <= MEMORY_BODY_MAX || spill(msg, error);
	}
	for (gsize done = 0; done < len;) {
		ssize_t n = write(msg->fd, data + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
			            "cannot spool the body in %s: %s", msg->rt->tmp_dir,
			            g_strerror(errno));
			return FALSE;
		}
		done += (gsize)n;
	}
	return TRUE;
}

void
milter_message_mark_failed(MilterMessage *msg)
{
	msg->failed = TRUE;
}

/* ----- the verdict ----- */

void
milter_verdict_free(MilterVerdict *v)
{
	if (v == NULL)
		return;
	g_free(v->rcode);
	g_free(v->xcode);
	g_free(v->text);
	g_free(v->auth_results);
	if (v->remove != NULL) {
		for (guint i = 0; i < v->remove->len; i++)
			g_free(g_array_index(v->remove, MilterHeaderRef, i).name);
		g_array_unref(v->remove);
	}
	g_clear_pointer(&v->new_body, g_bytes_unref);
	g_clear_pointer(&v->add, g_ptr_array_unref);
	g_free(v->log);
	g_free(v->fax_log);
	g_free(v);
}

static void verdict_reply(MilterVerdict *v, MilterAction action, const char *rcode,
                          const char *xcode, const char *format, ...) G_GNUC_PRINTF(5, 6);

static void
verdict_reply(MilterVerdict *v, MilterAction action, const char *rcode, const char *xcode,
              const char *format, ...)
{
	va_list ap;

	v->action = action;
	g_free(v->rcode);
	g_free(v->xcode);
	g_free(v->text);
	v->rcode = g_strdup(rcode);
	v->xcode = g_strdup(xcode);
	va_start(ap, format);
	v->text = g_strdup_vprintf(format, ap);
	va_end(ap);
}

/* accept or tempfail by a configured choice; tempfail texts say it is ours, not theirs */
static void
verdict_on(MilterVerdict *v, MilterOn on, const char *xcode, const char *text)
{
	if (on == MILTER_ON_ACCEPT)
		v->action = MILTER_VERDICT_ACCEPT;
	else if (on == MILTER_ON_REJECT)
		verdict_reply(v, MILTER_VERDICT_REJECT, "550", xcode, "%s", text);
	else
		verdict_reply(v, MILTER_VERDICT_TEMPFAIL, "451", xcode, "%s", text);
}

static const char *
header_value(MilterMessage *msg, const char *name)
{
	for (guint i = 0; i < msg->headers->len; i++) {
		MilterMimeHeader *h = &g_array_index(msg->headers, MilterMimeHeader, i);

		if (g_ascii_strcasecmp(h->name, name) == 0)
			return h->value;
	}
	return NULL;
}

static gboolean
address_listed(const char *addr, const char *const *list)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;

	for (const char *const *l = list; addr && l && *l; l++) {
		const char *entry = *l;

		if (g_ascii_strcasecmp(entry, addr) == 0)
			return TRUE;
		if (at != NULL && strchr(entry, '@') == NULL &&
		    g_ascii_strcasecmp(entry, at + 1) == 0)
			return TRUE;
		if (at != NULL && entry[0] == '@' && g_ascii_strcasecmp(entry + 1, at + 1) == 0)
			return TRUE;
	}
	return FALSE;
}

typedef enum { NOT_REQUIRED, REQUIRED, UNKNOWN } Requirement;

/* certd's per-user attribute; UNKNOWN when certd cannot say. */
static Requirement
user_requires(MilterMessage *msg, const char *from)
{
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) user = NULL;
	g_autoptr(GError) error = NULL;
	gboolean unavailable;

	json_object_object_add(params, HK_CERTD_KEY_EMAIL, json_object_new_string(from));
	user = milter_certd_call(msg->rt->certd, HK_CERTD_OP_USER_LOOKUP, params, &unavailable,
	                         &error);
	if (user != NULL)
		return hk_json_get_bool(user, HK_CERTD_KEY_REQUIRE_SIG, FALSE) ? REQUIRED
		                                                               : NOT_REQUIRED;
	if (unavailable)
		return UNKNOWN;
	if (!g_error_matches(error, HK_IPC_ERROR, HK_IPC_ERROR_NOT_FOUND))
		g_warning("%s: user.lookup %s: %s", msg->queue_id, from, error->message);
	return NOT_REQUIRED;
}

static Requirement
requirement(MilterMessage *msg, const char *from, const char **who)
{
	MilterRuntime *rt = msg->rt;

	if (msg->fax_kind == MILTER_FAX_REGISTER)
		return NOT_REQUIRED; /* signed registers, unsigned unregisters */
	if (msg->for_gateway && rt->gateway_require) {
		*who = "gateway";
		return REQUIRED;
	}
	for (guint i = 0; i < msg->rcpts->len; i++) {
		if (address_listed(msg->rcpts->pdata[i], rt->require_rcpts)) {
			*who = "recipient";
			return REQUIRED;
		}
	}
	if (address_listed(msg->sender, rt->require_senders) ||
	    address_listed(from, rt->require_senders)) {
		*who = "sender";
		return REQUIRED;
	}
	*who = "user";
	return rt->require_users && from != NULL ? user_requires(msg, from) : NOT_REQUIRED;
}

/* certd's word on a certificate hanko issued. */
static MilterSignerStatus
signer_check(X509 *signer, gpointer data)
{
	MilterMessage *msg = data;
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) cert = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *fp = hk_ossl_fingerprint_cert(signer, NULL);
	gboolean unavailable;

	if (fp == NULL)
		return MILTER_SIGNER_UNKNOWN;
	json_object_object_add(params, HK_CERTD_KEY_FINGERPRINT, json_object_new_string(fp));
	cert = milter_certd_call(msg->rt->certd, HK_CERTD_OP_CERT_LOOKUP, params, &unavailable,
	                         &error);
	if (cert != NULL)
		return g_strcmp0(hk_json_get_string(cert, HK_CERTD_KEY_STATUS),
		                 HK_CERTD_STATUS_REVOKED) == 0
		               ? MILTER_SIGNER_REVOKED
		               : MILTER_SIGNER_GOOD;
	return unavailable ? MILTER_SIGNER_UNAVAILABLE : MILTER_SIGNER_UNKNOWN;
}

/* The body as one piece: the memory buffer, or the spool file mapped. */
static const char *
body_map(MilterMessage *msg, gsize *len)
{
	void *map;

	*len = (gsize)msg->body_len;
	if (msg->fd < 0)
		return (const char *)msg->memory->data;
	if (*len == 0)
		return "";
	map = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, msg->fd, 0);
	return map == MAP_FAILED ? NULL : map;
}

static void
body_unmap(MilterMessage *msg, const char *data, gsize len)
{
	if (msg->fd >= 0 && data != NULL && len > 0)
		munmap((void *)data, len);
}

/* The signer must be who the message says it is from. */
static void
check_signer_address(MilterMessage *msg, MilterSmimeReport *r, const char *from)
{
	if (r->result != MILTER_SMIME_PASS || msg->rt->match == MILTER_MATCH_NONE)
		return;
	if (from == NULL || !milter_smime_signer_has(r, from)) {
		r->result = MILTER_SMIME_FAIL;
		r->reason =
		        g_strdup_printf("the signer's certificate is not for the From address %s",
		                        from ? from : "(none)");
	} else if (msg->rt->match == MILTER_MATCH_FROM_AND_SENDER &&
	           !milter_smime_signer_has(r, msg->sender)) {
		r->result = MILTER_SMIME_FAIL;
		r->reason = g_strdup_printf(
		        "the signer's certificate is not for the envelope sender %s", msg->sender);
	}
}

/* RFC 8601 value: a token as is, anything else quoted. */
static void
append_value(GString *out, const char *value)
{
	gboolean token = *value != '\0';

	for (const char *p = value; *p && token; p++)
		token = g_ascii_isalnum(*p) || strchr("!#$%&'*+-.^_`{|}~@", *p) != NULL;
	if (token) {
		g_string_append(out, value);
		return;
	}
	g_string_append_c(out, '"');
	for (const char *p = value; *p; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_c(out, '\\');
		g_string_append_c(out, *p);
	}
	g_string_append_c(out, '"');
}

static char *
auth_results(MilterMessage *msg, const MilterSmimeReport *r)
{
	GString *out = g_string_new(msg->rt->authserv_id);

	g_string_append_printf(out, "; smime=%s", milter_smime_result_name(r->result));
	if (r->reason != NULL && r->result != MILTER_SMIME_PASS) {
		g_string_append(out, " reason=");
		append_value(out, r->reason);
	}
	if (r->signer_serial != NULL) {
		if (r->signer_emails != NULL && r->signer_emails[0] != NULL) {
			g_string_append(out, "\n\tbody.smime-identifier=");
			append_value(out, r->signer_emails[0]);
		}
		g_string_append(out, "\n\tbody.smime-serial=");
		append_value(out, r->signer_serial);
		g_string_append(out, "\n\tbody.smime-issuer=");
		append_value(out, r->signer_issuer);
	}
	return g_string_free(out, FALSE);
}

/* Our own Authentication-Results fields must be ours: those claiming our id go. */
static void
remove_forged_results(MilterMessage *msg, MilterVerdict *v)
{
	for (guint i = msg->headers->len; i-- > 0;) {
		MilterMimeHeader *h = &g_array_index(msg->headers, MilterMimeHeader, i);
		gsize n;

		if (g_ascii_strcasecmp(h->name, "Authentication-Results") != 0)
			continue;
		n = strcspn(h->value, " \t;(");
		if (n == strlen(msg->rt->authserv_id) &&
		    g_ascii_strncasecmp(h->value, msg->rt->authserv_id, n) == 0) {
			MilterHeaderRef ref = {g_strdup(h->name),
			                       g_array_index(msg->indices, guint, i)};

			g_array_append_val(v->remove, ref);
		}
	}
}

/* The decrypted entity replaces the body and the Content-* fields. */
static void
replace_content(MilterMessage *msg, MilterVerdict *v, GBytes *plain)
{
	gsize len;
	const char *data = g_bytes_get_data(plain, &len);
	g_autoptr(MilterMimeEntity) entity = milter_mime_entity_parse(data ? data : "", len, NULL);

	if (entity == NULL)
		return; /* the report already says the decrypted content is broken */
	for (guint i = msg->headers->len; i-- > 0;) {
		MilterMimeHeader *h = &g_array_index(msg->headers, MilterMimeHeader, i);

		if (g_ascii_strncasecmp(h->name, "Content-", 8) == 0) {
			MilterHeaderRef ref = {g_strdup(h->name),
			                       g_array_index(msg->indices, guint, i)};

			g_array_append_val(v->remove, ref);
		}
	}
	v->add = g_ptr_array_new_with_free_func(g_free);
	for (guint i = 0; i < entity->headers->len; i++) {
		MilterMimeHeader *h = entity->headers->pdata[i];

		if (g_ascii_strncasecmp(h->name, "Content-", 8) == 0) {
			MilterMimeHeader *copy =
			        g_malloc(sizeof(*copy) + strlen(h->name) + strlen(h->value) + 2);

			copy->name = (char *)(copy + 1);
			copy->value = stpcpy(copy->name, h->name) + 1;
			strcpy(copy->value, h->value);
			g_ptr_array_add(v->add, copy);
		}
	}
	v->new_body = g_bytes_new(entity->body.data, entity->body.len);
}

static void
judge_decryption(MilterMessage *msg, MilterVerdict *v, const MilterSmimeReport *r)
{
	switch (r->decrypt) {
	case MILTER_DECRYPT_NONE:
	case MILTER_DECRYPT_OK:
		break;
	case MILTER_DECRYPT_NO_IDENTITY:
		verdict_reply(v, MILTER_VERDICT_TEMPFAIL, "451", "4.7.5",
		              "The gateway cannot decrypt now: %s", r->decrypt_reason);
		break;
	case MILTER_DECRYPT_UNSUPPORTED:
		verdict_reply(v, MILTER_VERDICT_REJECT, "550", "5.7.6",
		              "S/MIME decryption failed: %s", r->decrypt_reason);
		break;
	case MILTER_DECRYPT_WRONG_KEY:
	case MILTER_DECRYPT_CORRUPT:
		verdict_reply(v, MILTER_VERDICT_REJECT, "550", "5.7.5",
		              "S/MIME decryption failed: %s", r->decrypt_reason);
		break;
	}
}

static void
judge_signature(MilterMessage *msg, MilterVerdict *v, const MilterSmimeReport *r,
                Requirement required)
{
	if (r->result == MILTER_SMIME_TEMPERROR) {
		verdict_on(v, msg->rt->on_certd_down, "4.7.0",
		           "Signature check unavailable, try again later");
		return;
	}
	if (required == UNKNOWN && r->result != MILTER_SMIME_PASS) {
		verdict_on(v, msg->rt->on_certd_down, "4.7.0",
		           "Signature requirement unknown, try again later");
		return;
	}
	if (required != REQUIRED)
		return;
	if (r->result == MILTER_SMIME_NONE)
		verdict_reply(v, MILTER_VERDICT_REJECT, "550", "5.7.1",
		              "Cannot authenticate - signature not found");
	else if (r->result != MILTER_SMIME_PASS && r->result != MILTER_SMIME_NEUTRAL)
		verdict_reply(v, MILTER_VERDICT_REJECT, "550", "5.7.1",
		              "S/MIME signature invalid: %s",
		              r->reason ? r->reason : milter_smime_result_name(r->result));
}

static const char *const action_names[] = {"accept", "reject", "tempfail", "discard"};
static const char *const decrypt_names[] = {"none",      "ok",      "no-identity",
                                            "wrong-key", "corrupt", "unsupported"};

static char *
log_line(MilterMessage *msg, const MilterVerdict *v, const MilterSmimeReport *r, const char *from,
         const char *required_by)
{
	return g_strdup_printf(
	        "%s: from=<%s> sender=<%s> required=%s signer=<%s> smime=%s%s%s decrypt=%s "
	        "action=%s%s%s%s",
	        msg->queue_id, from ? from : "", msg->sender ? msg->sender : "",
	        required_by ? required_by : "no",
	        r->signer_emails && r->signer_emails[0] ? r->signer_emails[0] : "",
	        milter_smime_result_name(r->result), r->reason ? " reason=" : "",
	        r->reason ? r->reason : "", decrypt_names[r->decrypt], action_names[v->action],
	        v->text ? " reply=\"" : "", v->text ? v->text : "", v->text ? "\"" : "");
}

static void
judge_oversize(MilterMessage *msg, MilterVerdict *v, Requirement required)
{
	MilterRuntime *rt = msg->rt;

	if (required == REQUIRED || msg->for_gateway || rt->on_oversize == MILTER_ON_REJECT)
		verdict_reply(v, MILTER_VERDICT_REJECT, "552", "5.3.4",
		              "Message too big for S/MIME processing (at most %" G_GUINT64_FORMAT
		              " bytes)",
		              rt->max_size);
	else if (rt->on_oversize == MILTER_ON_TEMPFAIL)
		verdict_reply(v, MILTER_VERDICT_TEMPFAIL, "452", "4.3.4",
		              "Message too big for S/MIME processing now");
	v->log = g_strdup_printf("%s: sender=<%s> size=%" G_GUINT64_FORMAT
	                         " over max_smime_size: not checked, action=%s",
	                         msg->queue_id, msg->sender ? msg->sender : "", msg->body_len,
	                         action_names[v->action]);
}

/* The message as received, for mail that carries no S/MIME layer. */
static GBytes *
raw_message(MilterMessage *msg)
{
	GByteArray *out = g_byte_array_new();
	gsize len;
	const char *body;

	for (guint i = 0; i < msg->headers->len; i++) {
		MilterMimeHeader *h = &g_array_index(msg->headers, MilterMimeHeader, i);

		g_byte_array_append(out, (const guint8 *)h->name, (guint)strlen(h->name));
		g_byte_array_append(out, (const guint8 *)": ", 2);
		g_byte_array_append(out, (const guint8 *)h->value, (guint)strlen(h->value));
		g_byte_array_append(out, (const guint8 *)"\r\n", 2);
	}
	g_byte_array_append(out, (const guint8 *)"\r\n", 2);
	body = body_map(msg, &len);
	if (body != NULL)
		g_byte_array_append(out, (const guint8 *)body, (guint)len);
	body_unmap(msg, body, len);
	return g_byte_array_free_to_bytes(out);
}

static char *
body_digest(MilterMessage *msg)
{
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	gsize len;
	const char *body = body_map(msg, &len);

	if (body != NULL)
		g_checksum_update(sum, (const guchar *)body, len);
	body_unmap(msg, body, len);
	return g_strdup(g_checksum_get_string(sum));
}

/* Mail for the fax gateway: it takes it (discarded here) or says why not. */
static void
take_for_fax(MilterMessage *msg, MilterVerdict *v, const MilterSmimeReport *r, const char *from)
{
	g_autoptr(GBytes) raw = r->inner ? NULL : raw_message(msg);
	g_autofree char *digest = body_digest(msg);
	g_auto(MilterFaxOutcome) out = {0};
	MilterFaxRequest request = {
	        .kind = msg->fax_kind,
	        .queue_id = msg->queue_id,
	        .sender = msg->sender,
	        .from = from,
	        .subject = header_value(msg, "Subject"),
	        .message_id = header_value(msg, "Message-ID"),
	        .rcpts = (const char *const *)msg->rcpts->pdata,
	        .content = r->inner ? r->inner : raw,
	        .digest = digest,
	        .signer = r->signer,
	        .signature_ok = r->result == MILTER_SMIME_PASS,
	};

	g_ptr_array_add(msg->rcpts, NULL); /* for .rcpts */
	milter_fax_take(msg->rt->fax, msg->rt->config, &request, &out);
	g_ptr_array_remove_index(msg->rcpts, msg->rcpts->len - 1);
	if (out.taken)
		v->action = MILTER_VERDICT_DISCARD;
	else
		verdict_reply(v, out.temporary ? MILTER_VERDICT_TEMPFAIL : MILTER_VERDICT_REJECT,
		              out.rcode, out.xcode, "%s", out.text);
	g_clear_pointer(&v->auth_results, g_free);
	v->fax_log = g_steal_pointer(&out.log);
}

static gboolean
check(MilterMessage *msg, MilterSmimeReport *report, GError **error)
{
	MilterRuntime *rt = msg->rt;
	MilterSmimeContext ctx = {
	        .store = rt->store,
	        .hanko_ca = rt->view.hanko_ca,
	        .check = signer_check,
	        .check_data = msg,
	        .key = rt->view.key,
	        .cert = rt->view.cert,
	        .decrypt = msg->for_gateway,
	        .keep_inner = msg->fax_kind != MILTER_FAX_NONE,
	        .allow_sha1 = rt->allow_sha1,
	        .max_depth = rt->max_depth,
	};
	g_autoptr(MilterMimeEntity) entity = NULL;
	gsize len;
	const char *body = body_map(msg, &len);
	gboolean ok;

	if (body == NULL) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
		            "cannot map the spooled body: %s", g_strerror(errno));
		return FALSE;
	}
	entity = milter_mime_entity_new((MilterMimeHeader *)msg->headers->data, msg->headers->len,
	                                body, len);
	ok = milter_smime_check(&ctx, entity, report, error);
	body_unmap(msg, body, len);
	if (ok && !rt->view.ca_known && rt->trust_hanko_ca && report->result == MILTER_SMIME_FAIL &&
	    g_str_has_prefix(report->reason, "certificate not trusted")) {
		report->result = MILTER_SMIME_TEMPERROR;
		g_free(report->reason);
		report->reason = g_strdup("hanko's CA is not known yet (hanko-certd unavailable)");
	}
	return ok;
}

MilterVerdict *
milter_message_finish(MilterMessage *msg)
{
	MilterVerdict *v = g_new0(MilterVerdict, 1);
	g_auto(MilterSmimeReport) report = {0};
	g_autoptr(GError) error = NULL;
	g_autofree char *from = milter_mime_address(header_value(msg, "From"));
	const char *who = NULL;
	Requirement required = requirement(msg, from, &who);

	v->remove = g_array_new(FALSE, FALSE, sizeof(MilterHeaderRef));
	if (msg->oversize) {
		judge_oversize(msg, v, required);
		return v;
	}
	if (msg->failed)
		g_set_error(&error, G_IO_ERROR, G_IO_ERROR_FAILED, "the body could not be spooled");
	if (error != NULL || !check(msg, &report, &error)) {
		g_warning("%s: S/MIME check failed: %s", msg->queue_id, error->message);
		verdict_on(v, msg->rt->on_internal, "4.3.0", "S/MIME check failed temporarily");
		v->log = g_strdup_printf("%s: internal error, action=%s", msg->queue_id,
		                         action_names[v->action]);
		return v;
	}
	check_signer_address(msg, &report, from);
	judge_decryption(msg, v, &report);
	if (v->action == MILTER_VERDICT_ACCEPT && msg->for_gateway &&
	    report.result == MILTER_SMIME_PERMERROR)
		verdict_reply(v, MILTER_VERDICT_REJECT, "550", "5.6.0", "Malformed S/MIME: %s",
		              report.reason);
	if (v->action == MILTER_VERDICT_ACCEPT)
		judge_signature(msg, v, &report, required);
	if (v->action == MILTER_VERDICT_ACCEPT) {
		remove_forged_results(msg, v);
		v->auth_results = auth_results(msg, &report);
		if (report.decrypt == MILTER_DECRYPT_OK && report.plain != NULL)
			replace_content(msg, v, report.plain);
	}
	if (v->action == MILTER_VERDICT_ACCEPT && msg->fax_kind != MILTER_FAX_NONE &&
	    msg->rt->fax != NULL)
		take_for_fax(msg, v, &report, from);
	v->log = log_line(msg, v, &report, from,
	                  required == REQUIRED  ? who
	                  : required == UNKNOWN ? "unknown"
	                                        : NULL);
	if (v->fax_log != NULL) {
		char *line = g_strconcat(v->log, " ", v->fax_log, NULL);

		g_free(v->log);
		v->log = line;
	}
	return v;
}
