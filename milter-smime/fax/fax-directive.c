/*
 * fax-directive: finds where a fax request says its destinations (the Subject's "/fax=..."
 * or the body's "!*...*!" line, seed 003) and turns the numbers people write into canonical
 * numbers and dial strings.
 *
 * Talks to: nothing; lists are expanded through the caller's lookup.
 * Must never: put the body's password into an error message, read outside the text it was
 * given, or let an error message carry control characters or non-ASCII into an SMTP reply.
 */
#include "fax-directive.h"

#include <string.h>

#include "hk-ossl.h"

#define SUBJECT_KEYWORD "/fax="
#define BODY_KEYWORD    "body"
#define LIST_KEYWORD    "list="
#define LIST_NAME_MAX   64
#define EXCERPT_CHARS   40 /* characters of user text quoted in an error message */
#define NONE_FOUND      "No recipients found"
#define DEST_LINE       "destination line: "
#define DEST_EXPECTED   "expected !*NUMBER*! or !*list=NAME*!"

/* written out: clang-format would put spaces into G_DEFINE_QUARK's stringified name */
GQuark
fax_directive_error_quark(void)
{
	return g_quark_from_static_string("fax-directive-error-quark");
}

static const char *
or_empty(const char *s)
{
	return s != NULL ? s : "";
}

static gboolean
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static const char *
skip_blanks(const char *p)
{
	while (is_blank(*p))
		p++;
	return p;
}

static const char *
skip_space(const char *p)
{
	while (g_ascii_isspace(*p))
		p++;
	return p;
}

/*
 * User text as an error message may quote it: at most EXCERPT_CHARS characters, and
 * anything but printable ASCII shown as '?' (the message may become an SMTP reply).
 */
static char *
excerpt(const char *text, gssize len)
{
	g_autofree char *valid = g_utf8_make_valid(text, len);
	GString *out = g_string_new(NULL);
	guint n = 0;

	for (const char *p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
		if (n++ == EXCERPT_CHARS) {
			g_string_append(out, "...");
			break;
		}
		g_string_append_c(out, g_ascii_isprint(*p) ? *p : '?');
	}
	return g_string_free(out, FALSE);
}

char *
fax_fold(const char *text, gssize len)
{
	g_autofree char *valid = NULL;
	char *folded;

	g_return_val_if_fail(text != NULL || len == 0, NULL);
	if (text == NULL)
		return g_strdup("");
	/* with a length, a NUL byte is invalid and becomes U+FFFD rather than an early end */
	valid = g_utf8_make_valid(text, len);
	folded = g_utf8_normalize(valid, -1, G_NORMALIZE_NFKC);
	return folded != NULL ? folded : g_steal_pointer(&valid);
}

/* ---- numbers ---- */

void
fax_dial_rules_init(FaxDialRules *rules)
{
	g_return_if_fail(rules != NULL);
	*rules = (FaxDialRules){
	        .international_prefix = "00",
	        .dial_international = "00",
	        .local_prefix = "",
	        .strip_local_prefix = FALSE,
	        .dial_prefix = "",
	        .min_digits = 3,
	        .max_digits = 20,
	};
}

static gboolean
is_separator(char c)
{
	return is_blank(c) || c == '-' || c == '(' || c == ')' || c == '.';
}

static void
set_bad_number(GError **error, const char *written, const char *why)
{
	g_autofree char *shown = excerpt(written, -1);

	g_set_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_BAD_NUMBER,
	            "bad fax number \"%s\"%s", shown, why);
}

/* TRUE once digits hold the international prefix and at least one digit after it. */
static gboolean
is_international(const GString *digits, const char *intl)
{
	return *intl != '\0' && g_str_has_prefix(digits->str, intl) && digits->len > strlen(intl);
}

/* The digits of folded with the separators dropped; FALSE on anything else. */
static gboolean
collect_digits(const char *folded, const char *intl, GString *digits)
{
	const char *p = folded;

	if (*p == '+') {
		if (*intl == '\0')
			return FALSE;
		g_string_append(digits, intl);
		p++;
		if (strpbrk(p, "0123456789") == NULL)
			return FALSE;
	}
	for (; *p != '\0'; p++) {
		/* "+44 (0)20 ...": the trunk 0 is not dialled from abroad (seed 003: omit it) */
		if (strncmp(p, "(0)", 3) == 0 && is_international(digits, intl))
			p += 2;
		else if (g_ascii_isdigit(*p))
			g_string_append_c(digits, *p);
		else if (!is_separator(*p))
			return FALSE;
	}
	return TRUE;
}

char *
fax_number_canonical(const char *written, const FaxDialRules *rules, GError **error)
{
	g_autofree char *folded = NULL;
	g_autoptr(GString) digits = g_string_new(NULL);
	g_autofree char *why = NULL;

	g_return_val_if_fail(written != NULL && rules != NULL, NULL);
	folded = fax_fold(written, -1);
	g_strstrip(folded);
	if (!collect_digits(folded, or_empty(rules->international_prefix), digits)) {
		set_bad_number(error, folded, "");
		return NULL;
	}
	if (digits->len == 0 || digits->len < rules->min_digits)
		why = g_strdup_printf(" (%u digits, at least %u)", (guint)digits->len,
		                      MAX(rules->min_digits, 1));
	else if (digits->len > rules->max_digits)
		why = g_strdup_printf(" (%u digits, at most %u)", (guint)digits->len,
		                      rules->max_digits);
	if (why != NULL) {
		set_bad_number(error, folded, why);
		return NULL;
	}
	return g_string_free(g_steal_pointer(&digits), FALSE);
}

char *
fax_number_dial(const char *canonical, const FaxDialRules *rules)
{
	const char *intl, *local, *middle = "", *rest = canonical;

	g_return_val_if_fail(canonical != NULL && rules != NULL, NULL);
	intl = or_empty(rules->international_prefix);
	local = or_empty(rules->local_prefix);
	if (*intl != '\0' && g_str_has_prefix(canonical, intl)) {
		middle = or_empty(rules->dial_international);
		rest = canonical + strlen(intl);
	} else if (rules->strip_local_prefix && *local != '\0' &&
	           g_str_has_prefix(canonical, local)) {
		rest = canonical + strlen(local);
	}
	return g_strconcat(or_empty(rules->dial_prefix), middle, rest, NULL);
}

/* ---- the Subject ---- */

/* The byte just past the first n characters of s, or its end. */
static const char *
window_end(const char *s, guint n)
{
	while (n > 0 && *s != '\0') {
		s = g_utf8_next_char(s);
		n--;
	}
	return s;
}

/*
 * The value after the first "/fax=" (any case) that lies wholly within the window: the
 * window is what the user sees counted, and a keyword cut by its end is not written in it.
 */
static const char *
subject_value(const char *folded)
{
	const char *end = window_end(folded, FAX_SUBJECT_WINDOW);
	gsize klen = strlen(SUBJECT_KEYWORD);

	for (const char *p = folded; (gsize)(end - p) >= klen; p++) {
		if (g_ascii_strncasecmp(p, SUBJECT_KEYWORD, klen) == 0)
			return p + klen;
	}
	return NULL;
}

/*
 * "N;N ; N trailing words": white space is allowed around ';' only, so the value ends at
 * the first white space after a destination that no ';' follows.
 */
static GPtrArray *
subject_split(const char *p)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

	for (;;) {
		const char *start = p = skip_space(p);

		while (*p != '\0' && *p != ';' && !g_ascii_isspace(*p))
			p++;
		if (p > start)
			g_ptr_array_add(out, g_strndup(start, (gsize)(p - start)));
		p = skip_space(p);
		if (*p != ';')
			return out;
		p++;
	}
}

FaxSubjectKind
fax_subject_parse(const char *subject, GStrv *destinations)
{
	g_autofree char *folded = NULL;
	g_autoptr(GPtrArray) values = NULL;
	const char *value;

	if (destinations != NULL)
		*destinations = NULL;
	if (subject == NULL)
		return FAX_SUBJECT_NONE;
	folded = fax_fold(subject, -1);
	value = subject_value(folded);
	if (value == NULL)
		return FAX_SUBJECT_NONE;
	values = subject_split(value);
	if (values->len == 1 && g_ascii_strcasecmp(g_ptr_array_index(values, 0), BODY_KEYWORD) == 0)
		return FAX_SUBJECT_BODY;
	g_ptr_array_add(values, NULL);
	if (destinations != NULL)
		*destinations = (GStrv)g_ptr_array_free(g_steal_pointer(&values), FALSE);
	return FAX_SUBJECT_NUMBERS;
}

/* ---- the body ---- */

/* A line of the body: its bytes without the line end, and the offset just past it. */
typedef struct {
	const char *data;
	gsize len;
	gsize next;
} Line;

static gboolean
line_at(const char *text, gsize len, gsize offset, Line *line)
{
	const char *nl;

	if (offset >= len)
		return FALSE;
	line->data = text + offset;
	nl = memchr(line->data, '\n', len - offset);
	line->len = nl != NULL ? (gsize)(nl - line->data) : len - offset;
	line->next = nl != NULL ? (gsize)(nl - text) + 1 : len;
	if (line->len > 0 && line->data[line->len - 1] == '\r')
		line->len--;
	return TRUE;
}

static gboolean
line_is_blank(const Line *line)
{
	for (gsize i = 0; i < line->len; i++) {
		if (!is_blank(line->data[i]) && line->data[i] != '\r')
			return FALSE;
	}
	return TRUE;
}

/* The first line at or after *offset that is not blank; *offset moves past the blank ones. */
static gboolean
content_line(const char *text, gsize len, gsize *offset, Line *line)
{
	while (line_at(text, len, *offset, line)) {
		if (!line_is_blank(line))
			return TRUE;
		*offset = line->next;
	}
	return FALSE;
}

/* Bytes of p taken by the ASCII c or its full-width form (U+FF01..U+FF5E), 0 for neither. */
static gsize
match_wide(const char *p, gsize len, char c)
{
	char wide[6];
	gsize n;

	if (len >= 1 && *p == c)
		return 1;
	n = (gsize)g_unichar_to_utf8((gunichar)c + 0xFEE0, wide);
	return len >= n && memcmp(p, wide, n) == 0 ? n : 0;
}

/*
 * Length of the "!#" that opens a password line, 0 if the line is not one. The password is
 * taken from the raw bytes, never folded: a secret is compared byte for byte.
 */
static gsize
password_marker(const Line *line)
{
	gsize skip = 0, bang, hash;

	while (skip < line->len && is_blank(line->data[skip]))
		skip++;
	bang = match_wide(line->data + skip, line->len - skip, '!');
	if (bang == 0)
		return 0;
	hash = match_wide(line->data + skip + bang, line->len - skip - bang, '#');
	return hash == 0 ? 0 : skip + bang + hash;
}

static gboolean
password_take(const Line *line, gsize marker, char **password, GError **error)
{
	const char *p = line->data + marker;
	gsize n = line->len - marker;

	while (n > 0 && is_blank(p[n - 1]))
		n--;
	/* the message never shows the line: it holds the secret */
	if (n == 0) {
		g_set_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_SYNTAX,
		            "password line: the password is empty");
		return FALSE;
	}
	if (memchr(p, '\0', n) != NULL) {
		g_set_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_SYNTAX,
		            "password line: the password contains a NUL byte");
		return FALSE;
	}
	*password = g_strndup(p, n);
	return TRUE;
}

static gboolean
syntax_error(GError **error, const char *what, const char *quoted)
{
	g_autofree char *shown = quoted != NULL ? excerpt(quoted, -1) : NULL;

	if (shown != NULL)
		g_set_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_SYNTAX,
		            DEST_LINE "%s \"%s\"", what, shown);
	else
		g_set_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_SYNTAX, DEST_LINE "%s",
		            what);
	return FALSE;
}

static gboolean
list_name_valid(const char *name)
{
	gsize n = strlen(name);

	if (n == 0 || n > LIST_NAME_MAX)
		return FALSE;
	for (const char *p = name; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && *p != '_' && *p != '.' && *p != '-')
			return FALSE;
	}
	return TRUE;
}

/* The name of a "list=NAME" destination (trimmed, any case of "list="), or NULL. */
static const char *
list_name(const char *destination)
{
	gsize klen = strlen(LIST_KEYWORD);

	if (g_ascii_strncasecmp(destination, LIST_KEYWORD, klen) != 0)
		return NULL;
	return skip_blanks(destination + klen);
}

/* One "!*X*!" at *p; *p moves past it. */
static gboolean
destination_item(const char **p, GPtrArray *out, GError **error)
{
	const char *open = *p + 2, *close = strstr(open, "*!");
	g_autofree char *item = NULL;
	const char *name;

	if (close == NULL)
		return syntax_error(error, "no closing *! after", *p);
	item = g_strstrip(g_strndup(open, (gsize)(close - open)));
	if (*item == '\0')
		return syntax_error(error, "empty destination !**!", NULL);
	name = list_name(item);
	if (name != NULL && !list_name_valid(name))
		return syntax_error(error, "bad list name", name);
	g_ptr_array_add(out, g_steal_pointer(&item));
	*p = close + 2;
	return TRUE;
}

/* What a line that should open with "!*" says instead, without quoting a likely secret. */
static gboolean
destination_expected(const char *p, GError **error)
{
	if (*p == '!' || *p == '#')
		return syntax_error(error, DEST_EXPECTED " (a password goes first, as !#PASSWORD)",
		                    NULL);
	return syntax_error(error, DEST_EXPECTED ", found", p);
}

/* "!*X*!;!*Y*!...", folded; a trailing ';' and blanks around ';' are let pass. */
static gboolean
destination_line_parse(const char *line, GPtrArray *out, GError **error)
{
	const char *p = skip_blanks(line);

	if (!g_str_has_prefix(p, "!*"))
		return destination_expected(p, error);
	for (;;) {
		if (!destination_item(&p, out, error))
			return FALSE;
		p = skip_blanks(p);
		if (*p == '\0')
			return TRUE;
		if (*p != ';')
			return syntax_error(error, "expected ; between destinations, found", p);
		p = skip_blanks(p + 1);
		if (*p == '\0')
			return TRUE;
		if (!g_str_has_prefix(p, "!*"))
			return syntax_error(error, DEST_EXPECTED " after ;, found", p);
	}
}

/* A destination line that repeats the password is not quoted, whatever went wrong in it. */
static void
redact(GError **error, const Line *line, const char *folded, const char *secret)
{
	if (error == NULL || *error == NULL || secret == NULL)
		return;
	if (memmem(line->data, line->len, secret, strlen(secret)) == NULL &&
	    strstr(folded, secret) == NULL)
		return;
	g_free((*error)->message);
	(*error)->message =
	        g_strdup(DEST_LINE DEST_EXPECTED " (not quoted: it holds the password)");
}

static gboolean
none_found(GError **error)
{
	g_set_error_literal(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_NONE_FOUND, NONE_FOUND);
	return FALSE;
}

gboolean
fax_body_parse(const char *text, gsize len, char **password, GStrv *destinations, gsize *consumed,
               GError **error)
{
	g_autoptr(HkSecret) secret = NULL;
	g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *folded = NULL;
	gsize offset = 0, marker;
	Line line;

	g_return_val_if_fail(text != NULL || len == 0, FALSE);
	g_return_val_if_fail(password != NULL && destinations != NULL && consumed != NULL, FALSE);
	*password = NULL;
	*destinations = NULL;
	*consumed = 0;
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		offset = 3; /* a byte order mark some clients put in front */
	if (!content_line(text, len, &offset, &line))
		return none_found(error);
	marker = password_marker(&line);
	if (marker > 0) {
		if (!password_take(&line, marker, &secret, error))
			return FALSE;
		offset = line.next;
		if (!content_line(text, len, &offset, &line))
			return none_found(error);
		if (password_marker(&line) > 0)
			return syntax_error(error, DEST_EXPECTED ", found a second password line",
			                    NULL);
	}
	folded = fax_fold(line.data, (gssize)line.len);
	if (!destination_line_parse(folded, out, error)) {
		redact(error, &line, folded, secret);
		return FALSE;
	}
	g_ptr_array_add(out, NULL);
	*password = g_steal_pointer(&secret);
	*destinations = (GStrv)g_ptr_array_free(g_steal_pointer(&out), FALSE);
	*consumed = line.next;
	return TRUE;
}

/* ---- resolving ---- */

typedef struct {
	const FaxDialRules *rules;
	FaxListLookup lookup;
	gpointer lookup_data;
	GPtrArray *numbers; /* canonical, in order, owned */
	GHashTable *seen;   /* the same strings, borrowed */
	GHashTable *lists;  /* names expanded so far, owned */
} Resolver;

static gboolean
resolver_add_number(Resolver *r, const char *written, GError **error)
{
	g_autofree char *canonical = NULL;

	if (*skip_space(written) == '\0')
		return TRUE;
	canonical = fax_number_canonical(written, r->rules, error);
	if (canonical == NULL)
		return FALSE;
	if (g_hash_table_contains(r->seen, canonical))
		return TRUE;
	g_hash_table_add(r->seen, canonical);
	g_ptr_array_add(r->numbers, g_steal_pointer(&canonical));
	return TRUE;
}

static gboolean
resolver_add_list(Resolver *r, const char *name, GError **error)
{
	g_auto(GStrv) members = NULL;
	g_autofree char *shown = NULL;

	if (!list_name_valid(name)) {
		shown = excerpt(name, -1);
		g_set_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_SYNTAX,
		            "bad list name \"%s\"", shown);
		return FALSE;
	}
	if (g_hash_table_contains(r->lists, name))
		return TRUE;
	members = r->lookup != NULL ? r->lookup(name, r->lookup_data) : NULL;
	if (members == NULL) {
		g_set_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_UNKNOWN_LIST,
		            "unknown list %s", name);
		return FALSE;
	}
	g_hash_table_add(r->lists, g_strdup(name));
	/* members are numbers only: a list naming a list would be a bad number, not a loop */
	for (char **m = members; *m != NULL; m++) {
		if (!resolver_add_number(r, *m, error)) {
			g_prefix_error(error, "list %s: ", name);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
resolver_add(Resolver *r, const char *written, GError **error)
{
	g_autofree char *folded = fax_fold(written, -1);
	const char *name = list_name(g_strstrip(folded));

	if (name != NULL)
		return resolver_add_list(r, name, error);
	return resolver_add_number(r, folded, error);
}

GStrv
fax_destinations_resolve(const char *const *written, const FaxDialRules *rules,
                         FaxListLookup lookup, gpointer lookup_data, guint max, GError **error)
{
	g_autoptr(GPtrArray) numbers = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GHashTable) lists = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	Resolver r = {rules, lookup, lookup_data, numbers, seen, lists};

	g_return_val_if_fail(rules != NULL, NULL);
	/* all are counted, so that the message gives the real total and not max + 1 */
	for (gsize i = 0; written != NULL && written[i] != NULL; i++) {
		if (!resolver_add(&r, written[i], error))
			return NULL;
	}
	if (numbers->len == 0) {
		none_found(error);
		return NULL;
	}
	if (numbers->len > max) {
		g_set_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_TOO_MANY,
		            "%u destinations, at most %u", numbers->len, max);
		return NULL;
	}
	g_ptr_array_add(numbers, NULL);
	return (GStrv)g_ptr_array_free(g_steal_pointer(&numbers), FALSE);
}
