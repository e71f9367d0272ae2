/*
 * test-fax-directive: the fax directive parser (milter-smime/fax/fax-directive.c), table by
 * table: folding, numbers and dial strings, the Subject and its 60-character window, the
 * body's password and destination lines, and list expansion with its 100-destination cap,
 * all with the examples of seed 003.
 *
 * Talks to: fax-directive.c only; lists come from in-memory tables.
 * Must never: pass the parser a buffer that ends in a NUL it could lean on (bodies are
 * copied into blocks of exactly their size, so ASan sees a read past the end).
 */
#include "fax-directive.h"

#include <string.h>

#define FW_SOLIDUS "\xef\xbc\x8f" /* U+FF0F */
#define FW_EQUALS  "\xef\xbc\x9d" /* U+FF1D */
#define HIRA_A     "\xe3\x81\x82" /* U+3042, one character, three bytes */
#define SQ_HEISEI  "\xe3\x8d\xbb" /* U+337B, NFKC: two characters */
#define FW_SEED    FW_SOLIDUS "\xef\xbd\x86\xef\xbd\x81\xef\xbd\x98" FW_EQUALS

static char *
exact_copy(const char *data, gsize len)
{
	return len > 0 ? g_memdup2(data, len) : g_malloc(1);
}

/* ---- folding ---- */

typedef struct {
	const char *in;
	gssize len;
	const char *out;
} FoldCase;

static const FoldCase fold_cases[] = {
        {FW_SEED "\xef\xbc\x90\xef\xbc\x93\xef\xbc\x8d\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91"
                 "\xef\xbc\x91\xef\xbc\x8d\xef\xbc\x92\xef\xbc\x92\xef\xbc\x92\xef\xbc\x92",
         -1, "/fax=03-1111-2222"},
        {"\xef\xbc\x81\xef\xbc\x8a\xef\xbd\x8c\xef\xbd\x89\xef\xbd\x93\xef\xbd\x94", -1, "!*list"},
        {"a\xe3\x80\x80"
         "b",
         -1, "a b"}, /* U+3000 ideographic space */
        {SQ_HEISEI, -1, "\xe5\xb9\xb3\xe6\x88\x90"},
        {"caf\xc3\xa9", -1, "caf\xc3\xa9"},
        {"a\xff"
         "b",
         -1,
         "a\xef\xbf\xbd"
         "b"},
        {"a\0b", 3,
         "a\xef\xbf\xbd"
         "b"},
        {"abc", 2, "ab"},
        {"", -1, ""},
};

static void
test_fold(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(fold_cases); i++) {
		const FoldCase *c = &fold_cases[i];
		g_autofree char *out = fax_fold(c->in, c->len);

		g_assert_cmpstr(out, ==, c->out);
	}
	{
		g_autofree char *out = fax_fold(NULL, 0);

		g_assert_cmpstr(out, ==, "");
	}
}

/* ---- numbers ---- */

typedef struct {
	const char *written;
	const char *canonical; /* NULL: an error */
	const char *message;
} NumberCase;

static const NumberCase number_cases[] = {
        {"03-1111-2222", "0311112222", NULL},
        {"(03) 1111.2222", "0311112222", NULL},
        {"  03 1111 2222\t", "0311112222", NULL},
        {"\xef\xbc\x90\xef\xbc\x93\xef\xbc\x8d\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93", "03123", NULL},
        {"+81 3 1111 2222", "0081311112222", NULL},
        {"+81-3-1111-2222", "0081311112222", NULL},
        {"0081-3-1111-2222", "0081311112222", NULL},
        {"0044-20-7946-0000", "00442079460000", NULL},
        {"+44 (0)20 7946 0000", "00442079460000", NULL},
        {"0044 (0)20 7946 0000", "00442079460000", NULL},
        {"(0)3-1111-2222", "0311112222", NULL}, /* not international: the 0 stays */
        {"123", "123", NULL},
        {"12345678901234567890", "12345678901234567890", NULL},
        {"03-ABC", NULL, "bad fax number \"03-ABC\""},
        {"03-1111-2222x", NULL, "bad fax number \"03-1111-2222x\""},
        {"0311112222@fax.example.jp", NULL, "bad fax number \"0311112222@fax.example.jp\""},
        {"03+1111", NULL, "bad fax number \"03+1111\""},
        {"++81", NULL, "bad fax number \"++81\""},
        {"+", NULL, "bad fax number \"+\""},
        {"+ -", NULL, "bad fax number \"+ -\""},
        {"03;04", NULL, "bad fax number \"03;04\""},
        {"list=members", NULL, "bad fax number \"list=members\""},
        {"03\x01"
         "1111",
         NULL, "bad fax number \"03?1111\""},
        {"\xe9\x9b\xbb\xe8\xa9\xb1", NULL, "bad fax number \"??\""},
        {"1234567890abcdefghij1234567890abcdefghijXYZ", NULL,
         "bad fax number \"1234567890abcdefghij1234567890abcdefghij...\""},
        {"12", NULL, "bad fax number \"12\" (2 digits, at least 3)"},
        {"1-2", NULL, "bad fax number \"1-2\" (2 digits, at least 3)"},
        {"", NULL, "bad fax number \"\" (0 digits, at least 3)"},
        {" - ", NULL, "bad fax number \"-\" (0 digits, at least 3)"},
        {"123456789012345678901", NULL,
         "bad fax number \"123456789012345678901\" (21 digits, at most 20)"},
        {"+8112345678901234567", NULL,
         "bad fax number \"+8112345678901234567\" (21 digits, at most 20)"},
};

static void
test_number_canonical(void)
{
	FaxDialRules rules;

	fax_dial_rules_init(&rules);
	for (gsize i = 0; i < G_N_ELEMENTS(number_cases); i++) {
		const NumberCase *c = &number_cases[i];
		g_autoptr(GError) error = NULL;
		g_autofree char *canonical = fax_number_canonical(c->written, &rules, &error);

		g_test_message("case %" G_GSIZE_FORMAT ": %s", i, c->written);
		if (c->canonical != NULL) {
			g_assert_no_error(error);
			g_assert_cmpstr(canonical, ==, c->canonical);
		} else {
			g_assert_null(canonical);
			g_assert_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_BAD_NUMBER);
			g_assert_cmpstr(error->message, ==, c->message);
		}
	}
}

static void
test_number_defaults(void)
{
	FaxDialRules rules;

	memset(&rules, 0xa5, sizeof rules);
	fax_dial_rules_init(&rules);
	g_assert_cmpstr(rules.international_prefix, ==, "00");
	g_assert_cmpstr(rules.dial_international, ==, "00");
	g_assert_cmpstr(rules.local_prefix, ==, "");
	g_assert_false(rules.strip_local_prefix);
	g_assert_cmpstr(rules.dial_prefix, ==, "");
	g_assert_cmpuint(rules.min_digits, ==, 3);
	g_assert_cmpuint(rules.max_digits, ==, 20);
}

static void
test_number_digits(void)
{
	FaxDialRules rules;
	g_autoptr(GError) error = NULL;
	g_autofree char *ten = NULL, *eleven = NULL, *nine = NULL, *twelve = NULL;

	fax_dial_rules_init(&rules);
	rules.min_digits = 10;
	rules.max_digits = 11;
	ten = fax_number_canonical("03-1111-2222", &rules, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(ten, ==, "0311112222");
	eleven = fax_number_canonical("090-1111-2222", &rules, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(eleven, ==, "09011112222");

	nine = fax_number_canonical("031-111-222", &rules, &error);
	g_assert_null(nine);
	g_assert_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_BAD_NUMBER);
	g_assert_cmpstr(error->message, ==,
	                "bad fax number \"031-111-222\" (9 digits, at least 10)");
	g_clear_error(&error);

	/* "+" counts as the two digits of "00" it becomes */
	twelve = fax_number_canonical("+81-3-1111-222", &rules, &error);
	g_assert_null(twelve);
	g_assert_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_BAD_NUMBER);
	g_assert_cmpstr(error->message, ==,
	                "bad fax number \"+81-3-1111-222\" (12 digits, at most 11)");
}

static void
test_number_plus_prefix(void)
{
	FaxDialRules rules;
	g_autoptr(GError) error = NULL;
	g_autofree char *plus = NULL, *none = NULL, *written = NULL;

	fax_dial_rules_init(&rules);
	rules.international_prefix = "010";
	plus = fax_number_canonical("+1 212 555 0100", &rules, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(plus, ==, "01012125550100");
	/* "(0)" is dropped after this gateway's own international prefix only */
	written = fax_number_canonical("010 44 (0)20 7946 0000", &rules, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(written, ==, "010442079460000");

	rules.international_prefix = "";
	none = fax_number_canonical("+81 3 1111 2222", &rules, &error);
	g_assert_null(none);
	g_assert_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_BAD_NUMBER);
	g_assert_cmpstr(error->message, ==, "bad fax number \"+81 3 1111 2222\"");
}

typedef struct {
	const char *canonical;
	const char *dial;
} DialCase;

static void
check_dial(const FaxDialRules *rules, const DialCase *cases, gsize n)
{
	for (gsize i = 0; i < n; i++) {
		g_autofree char *dial = fax_number_dial(cases[i].canonical, rules);

		g_assert_cmpstr(dial, ==, cases[i].dial);
	}
}

static void
test_number_dial(void)
{
	static const DialCase as_written[] = {
	        {"0311112222", "0311112222"},
	        {"0081311112222", "0081311112222"},
	        {"123", "123"},
	};
	/* a Tokyo gateway behind a PBX: "0" for an outside line, "010" abroad */
	static const DialCase tokyo[] = {
	        {"0311112222", "011112222"},
	        {"0612345678", "00612345678"},
	        {"00442079460000", "0010442079460000"},
	        {"0081311112222", "001081311112222"},
	        {"03", "0"},
	};
	static const DialCase tokyo_keep_area[] = {
	        {"0311112222", "00311112222"},
	        {"00442079460000", "0010442079460000"},
	};
	static const DialCase international_only[] = {
	        {"0311112222", "0311112222"},
	        {"00442079460000", "010442079460000"},
	};
	FaxDialRules rules;

	fax_dial_rules_init(&rules);
	check_dial(&rules, as_written, G_N_ELEMENTS(as_written));

	rules.dial_international = "010";
	check_dial(&rules, international_only, G_N_ELEMENTS(international_only));

	rules.dial_prefix = "0";
	rules.local_prefix = "03";
	rules.strip_local_prefix = TRUE;
	check_dial(&rules, tokyo, G_N_ELEMENTS(tokyo));

	rules.strip_local_prefix = FALSE;
	check_dial(&rules, tokyo_keep_area, G_N_ELEMENTS(tokyo_keep_area));
}

/* NULL fields are read as "": a hand-built rule set need not fill every string. */
static void
test_number_dial_null_fields(void)
{
	FaxDialRules rules = {.international_prefix = "00", .min_digits = 3, .max_digits = 20};
	g_autofree char *national = fax_number_dial("0311112222", &rules);
	g_autofree char *international = fax_number_dial("0044207", &rules);

	g_assert_cmpstr(national, ==, "0311112222");
	g_assert_cmpstr(international, ==, "44207");
}

/* ---- the Subject ---- */

typedef struct {
	const char *subject;
	FaxSubjectKind kind;
	const char *destinations[5]; /* for FAX_SUBJECT_NUMBERS, NULL-terminated */
} SubjectCase;

static const SubjectCase subject_cases[] = {
        {"/fax=03-1111-2222", FAX_SUBJECT_NUMBERS, {"03-1111-2222"}},
        {"/fax=03-1111-2222;06-1234-5678;0044-20-7946-0000",
         FAX_SUBJECT_NUMBERS,
         {"03-1111-2222", "06-1234-5678", "0044-20-7946-0000"}},
        {"Invoice /fax=03-1111-2222 please", FAX_SUBJECT_NUMBERS, {"03-1111-2222"}},
        {"/fax= 03-1111-2222 ; 06-1234-5678;; and more",
         FAX_SUBJECT_NUMBERS,
         {"03-1111-2222", "06-1234-5678", "and"}},
        {"/fax=03-1111-2222;", FAX_SUBJECT_NUMBERS, {"03-1111-2222"}},
        {"/FAX=+81-3-1111-2222", FAX_SUBJECT_NUMBERS, {"+81-3-1111-2222"}},
        {"/fax=03 1111 2222", FAX_SUBJECT_NUMBERS, {"03"}},
        {"/fax=03-1111-2222\xe3\x80\x80"
         "06-1234-5678",
         FAX_SUBJECT_NUMBERS,
         {"03-1111-2222"}},
        {"/fax=list=members", FAX_SUBJECT_NUMBERS, {"list=members"}},
        {"/fax=body;03-1111-2222", FAX_SUBJECT_NUMBERS, {"body", "03-1111-2222"}},
        {"/fax=", FAX_SUBJECT_NUMBERS, {NULL}},
        {"/fax=  ", FAX_SUBJECT_NUMBERS, {NULL}},
        {"/fax=1;/fax=2", FAX_SUBJECT_NUMBERS, {"1", "/fax=2"}},
        {FW_SEED "\xef\xbc\x90\xef\xbc\x93\xef\xbc\x8d\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91"
                 "\xef\xbc\x91\xef\xbc\x8d\xef\xbc\x92\xef\xbc\x92\xef\xbc\x92\xef\xbc\x92",
         FAX_SUBJECT_NUMBERS,
         {"03-1111-2222"}},
        {"/fax=body", FAX_SUBJECT_BODY, {NULL}},
        {"/FAX=BODY", FAX_SUBJECT_BODY, {NULL}},
        {"Re: /fax=Body  the quote", FAX_SUBJECT_BODY, {NULL}},
        {"/fax=body;", FAX_SUBJECT_BODY, {NULL}},
        {FW_SEED "\xef\xbd\x82\xef\xbd\x8f\xef\xbd\x84\xef\xbd\x99", FAX_SUBJECT_BODY, {NULL}},
        {"", FAX_SUBJECT_NONE, {NULL}},
        {"Quarterly report", FAX_SUBJECT_NONE, {NULL}},
        {"fax=03-1111-2222", FAX_SUBJECT_NONE, {NULL}},
        {"/fax 03-1111-2222", FAX_SUBJECT_NONE, {NULL}},
        {"/fax:03-1111-2222", FAX_SUBJECT_NONE, {NULL}},
};

static void
check_subject(const char *subject, FaxSubjectKind kind, const char *const *expected)
{
	g_auto(GStrv) destinations = (GStrv)(gpointer)0x1;
	FaxSubjectKind got = fax_subject_parse(subject, &destinations);

	g_assert_cmpint(got, ==, kind);
	if (kind != FAX_SUBJECT_NUMBERS) {
		g_assert_null(destinations);
		return;
	}
	g_assert_nonnull(destinations);
	g_assert_cmpstrv(destinations, expected);
}

static void
test_subject_table(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(subject_cases); i++) {
		const SubjectCase *c = &subject_cases[i];

		g_test_message("case %" G_GSIZE_FORMAT ": %s", i, c->subject);
		check_subject(c->subject, c->kind, c->destinations);
	}
}

static void
test_subject_null(void)
{
	GStrv destinations = (GStrv)(gpointer)0x1;

	g_assert_cmpint(fax_subject_parse(NULL, &destinations), ==, FAX_SUBJECT_NONE);
	g_assert_null(destinations);
	/* destinations may be NULL when only the kind is wanted */
	g_assert_cmpint(fax_subject_parse("/fax=03-1111-2222", NULL), ==, FAX_SUBJECT_NUMBERS);
	g_assert_cmpint(fax_subject_parse("/fax=body", NULL), ==, FAX_SUBJECT_BODY);
}

/* A Subject of n copies of filler, then tail. */
static char *
subject_after(const char *filler, guint n, const char *tail)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < n; i++)
		g_string_append(s, filler);
	g_string_append(s, tail);
	return g_string_free(s, FALSE);
}

typedef struct {
	const char *filler;
	guint n;       /* copies of filler before "/fax=" */
	gboolean seen; /* whether the directive is found */
} WindowCase;

/*
 * The window is 60 characters of the folded Subject, and "/fax=" must lie wholly in it:
 * after 55 characters it fills characters 56..60 and counts; one later, its '=' is the
 * 61st. The value may run on past the window.
 */
static const WindowCase window_cases[] = {
        {"x", 0, TRUE},
        {"x", 54, TRUE},
        {"x", 55, TRUE},
        {"x", 56, FALSE},
        {"x", 60, FALSE},
        {"x", 200, FALSE},
        {HIRA_A, 55, TRUE}, /* three bytes, one character */
        {HIRA_A, 56, FALSE},
        {"\xef\xbd\x98", 55, TRUE}, /* full-width x, folded to one x */
        {"\xef\xbd\x98", 56, FALSE},
        {"\xff", 55, TRUE}, /* an invalid byte: one U+FFFD */
        {"\xff", 56, FALSE},
        {SQ_HEISEI, 27, TRUE},  /* folds to 54 characters */
        {SQ_HEISEI, 28, FALSE}, /* 28 as written, 56 folded: the folded text counts */
};

static void
test_subject_window(void)
{
	static const char *const both[] = {"03-1111-2222", "0044-20-7946-0000", NULL};

	for (gsize i = 0; i < G_N_ELEMENTS(window_cases); i++) {
		const WindowCase *c = &window_cases[i];
		g_autofree char *numbers =
		        subject_after(c->filler, c->n, "/fax=03-1111-2222;0044-20-7946-0000 end");
		g_autofree char *body = subject_after(c->filler, c->n, "/fax=body");
		g_autofree char *wide = subject_after(c->filler, c->n, FW_SEED "body");

		g_test_message("case %" G_GSIZE_FORMAT, i);
		check_subject(numbers, c->seen ? FAX_SUBJECT_NUMBERS : FAX_SUBJECT_NONE, both);
		check_subject(body, c->seen ? FAX_SUBJECT_BODY : FAX_SUBJECT_NONE, NULL);
		check_subject(wide, c->seen ? FAX_SUBJECT_BODY : FAX_SUBJECT_NONE, NULL);
	}
	{
		/* the first "/fax=" wins; the second is read as a word after the value */
		g_autofree char *two =
		        subject_after("x", 30, "/fax=03-1111-2222 /fax=06-1234-5678");
		static const char *const first[] = {"03-1111-2222", NULL};

		check_subject(two, FAX_SUBJECT_NUMBERS, first);
	}
}

/* ---- the body ---- */

typedef struct {
	const char *text;
	gsize len; /* 0: strlen */
	const char *password;
	const char *destinations[4];
	const char *rest; /* what follows the consumed lines */
} BodyCase;

static const BodyCase body_cases[] = {
        /* seed 003, 3-1 and 3-2 */
        {"!*03-1111-2222*!\r\nPlease find the order.\r\n",
         0,
         NULL,
         {"03-1111-2222"},
         "Please find the order.\r\n"},
        {"!#password123\r\n!*03-1111-2222*!\r\nPlease find the order.\r\n",
         0,
         "password123",
         {"03-1111-2222"},
         "Please find the order.\r\n"},
        {"!*list=members*!\nHello\n", 0, NULL, {"list=members"}, "Hello\n"},
        {"!#password123\n!*list=members*!\n", 0, "password123", {"list=members"}, ""},
        {"!*list=members1*!;!*list=members2*!;!*03-1111-2222*!\r\n\r\nDear all\r\n",
         0,
         NULL,
         {"list=members1", "list=members2", "03-1111-2222"},
         "\r\nDear all\r\n"},
        /* layout */
        {"\r\n\r\n \t\r\n!*03-1111-2222*!\r\nx", 0, NULL, {"03-1111-2222"}, "x"},
        {"\n\n!#pw\n\n!*03-1111-2222*!\nx", 0, "pw", {"03-1111-2222"}, "x"},
        {"!*03-1111-2222*!", 0, NULL, {"03-1111-2222"}, ""},
        {"!*03-1111-2222*!\n", 0, NULL, {"03-1111-2222"}, ""},
        {"!*03*!\n!*04*!\n", 0, NULL, {"03"}, "!*04*!\n"},
        {"  !* 03 1111 2222 *! ; !*06-1234-5678*!;  \r\nx",
         0,
         NULL,
         {"03 1111 2222", "06-1234-5678"},
         "x"},
        {"!*LIST=Members*!\r\n", 0, NULL, {"LIST=Members"}, ""},
        {"\xef\xbb\xbf!*03-1111-2222*!\r\nx", 0, NULL, {"03-1111-2222"}, "x"},
        {"!*03-1111-2222*!\r\n\xe6\x9c\xac\xe6\x96\x87",
         0,
         NULL,
         {"03-1111-2222"},
         "\xe6\x9c\xac\xe6\x96\x87"},
        /* full-width markers and digits fold; the password is kept byte for byte */
        {"\xef\xbc\x81\xef\xbc\x8a\xef\xbc\x90\xef\xbc\x93\xef\xbc\x8d\xef\xbc\x91\xef\xbc\x92"
         "\xef\xbc\x8a\xef\xbc\x81\n",
         0,
         NULL,
         {"03-12"},
         ""},
        {"\xef\xbc\x81\xef\xbc\x83\xef\xbd\x90\xef\xbd\x97\r\n!*03-1111-2222*!\r\n",
         0,
         "\xef\xbd\x90\xef\xbd\x97",
         {"03-1111-2222"},
         ""},
        {"!#pass word  \t\r\n!*03-1111-2222*!\r\n", 0, "pass word", {"03-1111-2222"}, ""},
        /* the NUL is in the text after the destination line, which is not read */
        {"!*03-1111-2222*!\nA\0B", 20, NULL, {"03-1111-2222"}, "A\0B"},
};

static void
test_body_table(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(body_cases); i++) {
		const BodyCase *c = &body_cases[i];
		gsize len = c->len != 0 ? c->len : strlen(c->text);
		g_autofree char *text = exact_copy(c->text, len);
		g_autoptr(GError) error = NULL;
		g_autofree char *password = NULL;
		g_auto(GStrv) destinations = NULL;
		gsize consumed = G_MAXSIZE;
		gsize rest_len = c->len != 0 ? 3 : strlen(c->rest);
		gboolean ok;

		g_test_message("case %" G_GSIZE_FORMAT, i);
		ok = fax_body_parse(text, len, &password, &destinations, &consumed, &error);
		g_assert_no_error(error);
		g_assert_true(ok);
		g_assert_cmpstr(password, ==, c->password);
		g_assert_cmpstrv(destinations, c->destinations);
		g_assert_cmpuint(consumed, ==, len - rest_len);
		g_assert_cmpmem(text + consumed, len - consumed, c->rest, rest_len);
	}
}

typedef struct {
	const char *text;
	gsize len; /* 0: strlen */
	FaxDirectiveError code;
	const char *message;
} BodyErrorCase;

#define EXPECTED "destination line: expected !*NUMBER*! or !*list=NAME*!"

static const BodyErrorCase body_error_cases[] = {
        {"", 0, FAX_DIRECTIVE_ERROR_NONE_FOUND, "No recipients found"},
        {"\r\n \r\n\n", 0, FAX_DIRECTIVE_ERROR_NONE_FOUND, "No recipients found"},
        {"!#password123\r\n", 0, FAX_DIRECTIVE_ERROR_NONE_FOUND, "No recipients found"},
        {"!#password123\r\n\r\n", 0, FAX_DIRECTIVE_ERROR_NONE_FOUND, "No recipients found"},
        {"Hello\r\n!*03-1111-2222*!\r\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         EXPECTED ", found \"Hello\""},
        {"03-1111-2222\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX, EXPECTED ", found \"03-1111-2222\""},
        {"*!03-1111-2222!*\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         EXPECTED ", found \"*!03-1111-2222!*\""},
        {"Dear Sir or Madam, please fax the attached order to us\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         EXPECTED ", found \"Dear Sir or Madam, please fax the attach...\""},
        {"Hi\x01there\tyou\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX, EXPECTED ", found \"Hi?there?you\""},
        {"\xe6\x9c\xac\xff\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX, EXPECTED ", found \"??\""},
        {"!*03-1111-2222\r\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         "destination line: no closing *! after \"!*03-1111-2222\""},
        {"!*03-1111-2222*!;!*06-1234-5678\r\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         "destination line: no closing *! after \"!*06-1234-5678\""},
        {"!*03-1111-2222*\r\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         "destination line: no closing *! after \"!*03-1111-2222*\""},
        {"!**!\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX, "destination line: empty destination !**!"},
        {"!*  *!\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX, "destination line: empty destination !**!"},
        {"!*03*!!*04*!\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         "destination line: expected ; between destinations, found \"!*04*!\""},
        {"!*03*!,!*04*!\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         "destination line: expected ; between destinations, found \",!*04*!\""},
        {"!*03*! thanks\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         "destination line: expected ; between destinations, found \"thanks\""},
        {"!*03*!; 04\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX, EXPECTED " after ;, found \"04\""},
        {"!*list=bad name*!\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         "destination line: bad list name \"bad name\""},
        {"!*list=*!\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX, "destination line: bad list name \"\""},
        {"!*list=a/b*!\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         "destination line: bad list name \"a/b\""},
        {"!*list=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx*!\n", 0,
         FAX_DIRECTIVE_ERROR_SYNTAX,
         "destination line: bad list name \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\""},
        /* never a password in a message */
        {"!#\r\n!*03-1111-2222*!\r\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         "password line: the password is empty"},
        {"!#  \r\n!*03-1111-2222*!\r\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         "password line: the password is empty"},
        {"!#pass\0word\n!*03-1111-2222*!\n", 29, FAX_DIRECTIVE_ERROR_SYNTAX,
         "password line: the password contains a NUL byte"},
        {"!#password123\r\n!#password123\r\n!*03*!\r\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         EXPECTED ", found a second password line"},
        {"#!password123\r\n!*03*!\r\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         EXPECTED " (a password goes first, as !#PASSWORD)"},
        {"!password123\r\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         EXPECTED " (a password goes first, as !#PASSWORD)"},
        {"!#password123\r\nDear password123 holder\r\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         EXPECTED " (not quoted: it holds the password)"},
        {"!#password123\r\n!*password123\r\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX,
         EXPECTED " (not quoted: it holds the password)"},
        {"!#password123\r\nHello\r\n", 0, FAX_DIRECTIVE_ERROR_SYNTAX, EXPECTED ", found \"Hello\""},
};

static void
test_body_errors(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(body_error_cases); i++) {
		const BodyErrorCase *c = &body_error_cases[i];
		gsize len = c->len != 0 ? c->len : strlen(c->text);
		g_autofree char *text = exact_copy(c->text, len);
		g_autoptr(GError) error = NULL;
		char *password = (char *)0x1;
		GStrv destinations = (GStrv)(gpointer)0x1;
		gsize consumed = 99;

		g_test_message("case %" G_GSIZE_FORMAT, i);
		g_assert_false(
		        fax_body_parse(text, len, &password, &destinations, &consumed, &error));
		g_assert_error(error, FAX_DIRECTIVE_ERROR, (gint)c->code);
		g_assert_cmpstr(error->message, ==, c->message);
		g_assert_null(strstr(error->message, "password123"));
		g_assert_null(password);
		g_assert_null(destinations);
		g_assert_cmpuint(consumed, ==, 0);
	}
}

static void
test_body_null_empty(void)
{
	g_autoptr(GError) error = NULL;
	char *password = NULL;
	GStrv destinations = NULL;
	gsize consumed = 5;

	g_assert_false(fax_body_parse(NULL, 0, &password, &destinations, &consumed, &error));
	g_assert_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_NONE_FOUND);
	g_assert_cmpuint(consumed, ==, 0);
}

/* The same message in LF and CRLF: the same destinations, the rest starts at the same text. */
static void
test_body_line_ends(void)
{
	static const char *const lf = "\n!#password123\n!*03-1111-2222*!;!*list=members*!\nBody\n";
	static const char *const want[] = {"03-1111-2222", "list=members", NULL};
	g_autofree char *crlf_text = NULL;
	const char *texts[2];

	{
		g_auto(GStrv) lines = g_strsplit(lf, "\n", -1);

		crlf_text = g_strjoinv("\r\n", lines);
	}
	texts[0] = lf;
	texts[1] = crlf_text;
	for (guint i = 0; i < 2; i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *password = NULL;
		g_auto(GStrv) destinations = NULL;
		gsize consumed = 0;

		g_assert_true(fax_body_parse(texts[i], strlen(texts[i]), &password, &destinations,
		                             &consumed, &error));
		g_assert_no_error(error);
		g_assert_cmpstr(password, ==, "password123");
		g_assert_cmpstrv(destinations, want);
		g_assert_cmpuint(consumed, ==, i == 0 ? 49 : 52);
		g_assert_true(g_str_has_prefix(texts[i] + consumed, "Body"));
	}
}

/* ---- resolving ---- */

typedef struct {
	GHashTable *lists; /* name -> GStrv */
	guint calls;
} Lists;

static GStrv
lists_lookup(const char *name, gpointer user_data)
{
	Lists *lists = user_data;
	const char *const *members = g_hash_table_lookup(lists->lists, name);

	lists->calls++;
	return members != NULL ? g_strdupv((GStrv)members) : NULL;
}

/* n numbers "03-0000-NNNN" from first on */
static GStrv
numbers_from(guint first, guint n)
{
	GStrv out = g_new0(char *, n + 1);

	for (guint i = 0; i < n; i++)
		out[i] = g_strdup_printf("03-0000-%04u", first + i);
	return out;
}

static void
lists_add(Lists *lists, const char *name, GStrv members)
{
	g_hash_table_insert(lists->lists, g_strdup(name), members);
}

static void
lists_init(Lists *lists)
{
	static const char *const members[] = {"03-1111-2222", "06-1234-5678", NULL};
	static const char *const members1[] = {"0311112222", "+81-3-9999-0000", NULL};
	static const char *const members2[] = {"0081 3 9999 0000", "045-111-2222", NULL};
	static const char *const bad[] = {"03-1111-2222", "03-ABC", NULL};
	static const char *const empty[] = {NULL};
	static const char *const wide[] = {"\xef\xbc\x90\xef\xbc\x93\xef\xbc\x91\xef\xbc\x92",
	                                   NULL};

	lists->calls = 0;
	lists->lists =
	        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_strfreev);
	lists_add(lists, "members", g_strdupv((GStrv)members));
	lists_add(lists, "members1", g_strdupv((GStrv)members1));
	lists_add(lists, "members2", g_strdupv((GStrv)members2));
	lists_add(lists, "bad", g_strdupv((GStrv)bad));
	lists_add(lists, "empty", g_strdupv((GStrv)empty));
	lists_add(lists, "wide", g_strdupv((GStrv)wide));
	lists_add(lists, "hundred", numbers_from(0, 100));
	lists_add(lists, "low60", numbers_from(0, 60));
	lists_add(lists, "high40", numbers_from(60, 40));
	lists_add(lists, "mid60", numbers_from(40, 60));
	lists_add(lists, "mid61", numbers_from(40, 61));
	lists_add(lists, "many", numbers_from(0, 150));
}

typedef struct {
	const char *written[6];
	guint max;
	const char *canonical[6]; /* NULL at [0]: an error */
	FaxDirectiveError code;
	const char *message;
} ResolveCase;

static const ResolveCase resolve_cases[] = {
        {{"03-1111-2222"}, 100, {"0311112222"}},
        {{"list=members"}, 100, {"0311112222", "0612345678"}},
        /* seed 003: two lists and a number; +81 and 0081 are one destination */
        {{"list=members1", "list=members2", "03-1111-2222"},
         100,
         {"0311112222", "0081399990000", "0451112222"}},
        {{"06-1234-5678", "03-1111-2222", "(06) 1234.5678", "+81 6 1234 5678"},
         100,
         {"0612345678", "0311112222", "0081612345678"}},
        {{"LIST=members", " list= members ", "list=members"}, 100, {"0311112222", "0612345678"}},
        {{"\xef\xbd\x8c\xef\xbd\x89\xef\xbd\x93\xef\xbd\x94\xef\xbc\x9dmembers"},
         100,
         {"0311112222", "0612345678"}},
        {{"list=wide"}, 100, {"0312"}},
        {{"", "  ", "03-1111-2222"}, 100, {"0311112222"}},
        {{"list=empty", "03-1111-2222"}, 100, {"0311112222"}},
        {{"03-1111-2222", "06-1234-5678"}, 2, {"0311112222", "0612345678"}},
        {{"03-1111-2222", "06-1234-5678"},
         1,
         {NULL},
         FAX_DIRECTIVE_ERROR_TOO_MANY,
         "2 destinations, at most 1"},
        {{"03-1111-2222", "0311112222", "03 1111 2222"}, 1, {"0311112222"}},
        {{NULL}, 100, {NULL}, FAX_DIRECTIVE_ERROR_NONE_FOUND, "No recipients found"},
        {{"", " "}, 100, {NULL}, FAX_DIRECTIVE_ERROR_NONE_FOUND, "No recipients found"},
        {{"list=empty"}, 100, {NULL}, FAX_DIRECTIVE_ERROR_NONE_FOUND, "No recipients found"},
        {{"03-ABC"}, 100, {NULL}, FAX_DIRECTIVE_ERROR_BAD_NUMBER, "bad fax number \"03-ABC\""},
        {{"03-1111-2222", "body"},
         100,
         {NULL},
         FAX_DIRECTIVE_ERROR_BAD_NUMBER,
         "bad fax number \"body\""},
        {{"list=bad"},
         100,
         {NULL},
         FAX_DIRECTIVE_ERROR_BAD_NUMBER,
         "list bad: bad fax number \"03-ABC\""},
        {{"list=members1", "list=members2x", "03-1111-2222"},
         100,
         {NULL},
         FAX_DIRECTIVE_ERROR_UNKNOWN_LIST,
         "unknown list members2x"},
        {{"list=Members"}, 100, {NULL}, FAX_DIRECTIVE_ERROR_UNKNOWN_LIST, "unknown list Members"},
        {{"list=bad name"}, 100, {NULL}, FAX_DIRECTIVE_ERROR_SYNTAX, "bad list name \"bad name\""},
        {{"list="}, 100, {NULL}, FAX_DIRECTIVE_ERROR_SYNTAX, "bad list name \"\""},
        {{"list=a\r\nb"}, 100, {NULL}, FAX_DIRECTIVE_ERROR_SYNTAX, "bad list name \"a??b\""},
};

static void
test_resolve_table(void)
{
	Lists lists;
	FaxDialRules rules;

	lists_init(&lists);
	fax_dial_rules_init(&rules);
	for (gsize i = 0; i < G_N_ELEMENTS(resolve_cases); i++) {
		const ResolveCase *c = &resolve_cases[i];
		g_autoptr(GError) error = NULL;
		g_auto(GStrv) canonical = fax_destinations_resolve(c->written, &rules, lists_lookup,
		                                                   &lists, c->max, &error);

		g_test_message("case %" G_GSIZE_FORMAT, i);
		if (c->canonical[0] != NULL) {
			g_assert_no_error(error);
			g_assert_cmpstrv(canonical, c->canonical);
		} else {
			g_assert_null(canonical);
			g_assert_error(error, FAX_DIRECTIVE_ERROR, (gint)c->code);
			g_assert_cmpstr(error->message, ==, c->message);
		}
	}
	g_hash_table_unref(lists.lists);
}

static void
test_resolve_written_null(void)
{
	FaxDialRules rules;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) none = NULL;

	fax_dial_rules_init(&rules);
	none = fax_destinations_resolve(NULL, &rules, NULL, NULL, 100, &error);
	g_assert_null(none);
	g_assert_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_NONE_FOUND);
	g_assert_cmpstr(error->message, ==, "No recipients found");
}

static void
test_resolve_no_lookup(void)
{
	static const char *const written[] = {"03-1111-2222", "list=members", NULL};
	FaxDialRules rules;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) none = NULL;

	fax_dial_rules_init(&rules);
	none = fax_destinations_resolve(written, &rules, NULL, NULL, 100, &error);
	g_assert_null(none);
	g_assert_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_UNKNOWN_LIST);
	g_assert_cmpstr(error->message, ==, "unknown list members");
}

/* A list named twice is looked up once; its members are counted once either way. */
static void
test_resolve_list_once(void)
{
	static const char *const written[] = {"list=members", "list=members1", "list=members",
	                                      NULL};
	static const char *const want[] = {"0311112222", "0612345678", "0081399990000", NULL};
	Lists lists;
	FaxDialRules rules;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) canonical = NULL;

	lists_init(&lists);
	fax_dial_rules_init(&rules);
	canonical = fax_destinations_resolve(written, &rules, lists_lookup, &lists, 100, &error);
	g_assert_no_error(error);
	g_assert_cmpstrv(canonical, want);
	g_assert_cmpuint(lists.calls, ==, 2);
	g_hash_table_unref(lists.lists);
}

/* written numbers from..from+n, as a NULL-terminated vector, with extra appended */
static GStrv
written_numbers(guint from, guint n, const char *extra)
{
	GStrv numbers = numbers_from(from, n);
	GStrv out = g_new0(char *, n + 2);

	for (guint i = 0; i < n; i++)
		out[i] = numbers[i];
	out[n] = g_strdup(extra);
	g_free(numbers);
	return out;
}

typedef struct {
	guint from, n;     /* direct numbers 03-0000-FROM.. */
	const char *extra; /* one more written destination, or NULL */
	guint total;       /* distinct destinations; > 100: the error gives it */
} CapCase;

static const CapCase cap_cases[] = {
        {0, 100, NULL, 100},
        {0, 101, NULL, 101},
        {0, 100, "03-0000-0000", 100},   /* a duplicate in another spelling... */
        {0, 100, "(03) 0000 0099", 100}, /* ...of the first and the last */
        {0, 100, "03-0000-0100", 101},
        {0, 99, "list=members", 101},
        {0, 98, "list=members", 100},
        {0, 0, "list=hundred", 100},
        {0, 1, "list=hundred", 100},
        {1000, 1, "list=hundred", 101},
        {0, 0, "list=many", 150},
        {0, 500, NULL, 500},
};

static void
test_resolve_cap(void)
{
	Lists lists;
	FaxDialRules rules;

	lists_init(&lists);
	fax_dial_rules_init(&rules);
	for (gsize i = 0; i < G_N_ELEMENTS(cap_cases); i++) {
		const CapCase *c = &cap_cases[i];
		g_auto(GStrv) written = written_numbers(c->from, c->n, c->extra);
		g_autoptr(GError) error = NULL;
		g_auto(GStrv) canonical = fax_destinations_resolve(
		        (const char *const *)written, &rules, lists_lookup, &lists, 100, &error);

		g_test_message("case %" G_GSIZE_FORMAT, i);
		if (c->total <= 100) {
			g_assert_no_error(error);
			g_assert_cmpuint(g_strv_length(canonical), ==, c->total);
		} else {
			g_autofree char *want =
			        g_strdup_printf("%u destinations, at most 100", c->total);

			g_assert_null(canonical);
			g_assert_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_TOO_MANY);
			g_assert_cmpstr(error->message, ==, want);
		}
	}
	g_hash_table_unref(lists.lists);
}

/* Overlapping lists: 60 + 40 apart, 60 + 60 sharing 20, 60 + 61 sharing 20. */
static void
test_resolve_cap_lists(void)
{
	static const char *const apart[] = {"list=low60", "list=high40", NULL};
	static const char *const sharing[] = {"list=low60", "list=mid60", NULL};
	static const char *const one_over[] = {"list=low60", "list=mid61", "03-0000-0000", NULL};
	Lists lists;
	FaxDialRules rules;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) a = NULL, b = NULL, c = NULL;

	lists_init(&lists);
	fax_dial_rules_init(&rules);
	a = fax_destinations_resolve(apart, &rules, lists_lookup, &lists, 100, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_strv_length(a), ==, 100);
	g_assert_cmpstr(a[0], ==, "0300000000");
	g_assert_cmpstr(a[99], ==, "0300000099");

	b = fax_destinations_resolve(sharing, &rules, lists_lookup, &lists, 100, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_strv_length(b), ==, 100);
	g_assert_cmpstr(b[60], ==, "0300000060");

	c = fax_destinations_resolve(one_over, &rules, lists_lookup, &lists, 100, &error);
	g_assert_null(c);
	g_assert_error(error, FAX_DIRECTIVE_ERROR, FAX_DIRECTIVE_ERROR_TOO_MANY);
	g_assert_cmpstr(error->message, ==, "101 destinations, at most 100");
	g_hash_table_unref(lists.lists);
}

/* ---- end to end ---- */

/* Subject to dial strings, as the gateway does it, for a Tokyo line behind a PBX. */
static void
test_subject_to_dial(void)
{
	static const char *const want[] = {"011112222", "00612345678", "0010442079460000",
	                                   "001081399990000", NULL};
	g_auto(GStrv) written = NULL;
	g_auto(GStrv) canonical = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) dial = g_ptr_array_new_with_free_func(g_free);
	FaxDialRules rules;

	fax_dial_rules_init(&rules);
	rules.dial_international = "010";
	rules.dial_prefix = "0";
	rules.local_prefix = "03";
	rules.strip_local_prefix = TRUE;
	g_assert_cmpint(fax_subject_parse("Order /fax=03-1111-2222;06-1234-5678;0044-20-7946-0000;"
	                                  "+81-3-9999-0000;03-1111-2222",
	                                  &written),
	                ==, FAX_SUBJECT_NUMBERS);
	canonical = fax_destinations_resolve((const char *const *)written, &rules, NULL, NULL, 100,
	                                     &error);
	g_assert_no_error(error);
	for (char **n = canonical; *n != NULL; n++)
		g_ptr_array_add(dial, fax_number_dial(*n, &rules));
	g_ptr_array_add(dial, NULL);
	g_assert_cmpstrv((GStrv)dial->pdata, want);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	g_test_add_func("/fax/directive/fold", test_fold);
	g_test_add_func("/fax/directive/number/canonical", test_number_canonical);
	g_test_add_func("/fax/directive/number/defaults", test_number_defaults);
	g_test_add_func("/fax/directive/number/digits", test_number_digits);
	g_test_add_func("/fax/directive/number/plus-prefix", test_number_plus_prefix);
	g_test_add_func("/fax/directive/number/dial", test_number_dial);
	g_test_add_func("/fax/directive/number/dial-null-fields", test_number_dial_null_fields);
	g_test_add_func("/fax/directive/subject/table", test_subject_table);
	g_test_add_func("/fax/directive/subject/null", test_subject_null);
	g_test_add_func("/fax/directive/subject/window", test_subject_window);
	g_test_add_func("/fax/directive/body/table", test_body_table);
	g_test_add_func("/fax/directive/body/errors", test_body_errors);
	g_test_add_func("/fax/directive/body/null-empty", test_body_null_empty);
	g_test_add_func("/fax/directive/body/line-ends", test_body_line_ends);
	g_test_add_func("/fax/directive/resolve/table", test_resolve_table);
	g_test_add_func("/fax/directive/resolve/written-null", test_resolve_written_null);
	g_test_add_func("/fax/directive/resolve/no-lookup", test_resolve_no_lookup);
	g_test_add_func("/fax/directive/resolve/list-once", test_resolve_list_once);
	g_test_add_func("/fax/directive/resolve/cap", test_resolve_cap);
	g_test_add_func("/fax/directive/resolve/cap-lists", test_resolve_cap_lists);
	g_test_add_func("/fax/directive/subject-to-dial", test_subject_to_dial);

	return g_test_run();
}
