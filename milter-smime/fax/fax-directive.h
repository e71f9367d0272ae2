/*
 * fax-directive: where a fax request says its destinations (seed 003).
 *
 *   Subject   "/fax=03-1111-2222;0044-20-7946-0000"   within its first 60 characters
 *   Subject   "/fax=body", then the body's first line "!*03-1111-2222*!;!*list=members*!",
 *             or a password line "!#password123" first and the destinations second
 *   Recipient "0311112222@fax.example.jp"             one number, no directive needed
 *
 * Text is folded first (NFKC: full-width digits, letters and symbols become half-width).
 * Numbers are checked and normalised into dial strings by FaxDialRules; lists are expanded
 * by the caller's lookup, duplicates dropped, and the total capped.
 *
 * Pure functions: no I/O, no globals. Errors are FAX_DIRECTIVE_ERROR with a message fit for
 * an SMTP reply ("No recipients found", "unknown list members2", "101 destinations, at
 * most 100").
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define FAX_DIRECTIVE_ERROR (fax_directive_error_quark())
GQuark fax_directive_error_quark(void);

typedef enum {
	FAX_DIRECTIVE_ERROR_NONE_FOUND,   /* no directive, or no destination in it */
	FAX_DIRECTIVE_ERROR_BAD_NUMBER,   /* a destination is not a fax number */
	FAX_DIRECTIVE_ERROR_SYNTAX,       /* a body line is not !*...*!;!*...*! */
	FAX_DIRECTIVE_ERROR_UNKNOWN_LIST, /* list=NAME names no list */
	FAX_DIRECTIVE_ERROR_TOO_MANY,     /* more than max destinations */
} FaxDirectiveError;

#define FAX_SUBJECT_WINDOW 60 /* characters of the decoded, folded Subject searched */

/*
 * How a written number becomes a dial string. After the separators (space, '-', '(', ')',
 * '.') are dropped and a leading '+' is turned into international_prefix:
 *   - a number starting with international_prefix is international: it becomes
 *     dial_international + the rest;
 *   - otherwise, if it starts with local_prefix (e.g. "03" with local_prefix "03"
 *     when the gateway stands in Tokyo) and strip_local_prefix is set, that prefix is cut;
 *   - dial_prefix (e.g. "0" for an outside line) goes in front of every number.
 * Numbers must have between min_digits and max_digits digits once normalised.
 */
typedef struct {
	const char *international_prefix; /* as written by users: "00" (seed 003) */
	const char *dial_international;   /* what the line needs instead: "010" in Japan */
	const char *local_prefix;         /* "" : none */
	gboolean strip_local_prefix;
	const char *dial_prefix; /* "" : none */
	guint min_digits;        /* 3 */
	guint max_digits;        /* 20 */
} FaxDialRules;

/* Rules that leave a number as written, but for separators and '+' -> "00". */
void fax_dial_rules_init(FaxDialRules *rules);

/*
 * The canonical form of a number as written ("03-1111-2222" -> "0311112222", "+44 20 ..."
 * -> "004420..."): what duplicates are compared by and what notifications show. NULL and
 * FAX_DIRECTIVE_ERROR_BAD_NUMBER naming the number when it is not one.
 */
char *fax_number_canonical(const char *written, const FaxDialRules *rules, GError **error);
/* The dial string of a canonical number. */
char *fax_number_dial(const char *canonical, const FaxDialRules *rules);

/* NFKC-folds text (full-width to half-width); invalid UTF-8 is replaced, never refused. */
char *fax_fold(const char *text, gssize len);

typedef enum {
	FAX_SUBJECT_NONE,    /* no "/fax=" within the window */
	FAX_SUBJECT_NUMBERS, /* "/fax=N;N..." */
	FAX_SUBJECT_BODY,    /* "/fax=body" (any case) */
} FaxSubjectKind;

/*
 * Looks for "/fax=" in the first FAX_SUBJECT_WINDOW characters of subject (already RFC
 * 2047-decoded, UTF-8; folded here). For FAX_SUBJECT_NUMBERS, *destinations gets the
 * written destinations (split at ';', trimmed, empties dropped; the value ends at the
 * first white space after a destination or at the end of the Subject; it may run past the
 * window once it started inside it).
 */
FaxSubjectKind fax_subject_parse(const char *subject, GStrv *destinations);

/*
 * Parses the body's directive lines of "/fax=body" from text (UTF-8, the first text part).
 * Optional "!#PASSWORD" line first, then the destination line "!*X*!;!*Y*!..." where each
 * X is a number or "list=NAME". Leading blank lines are skipped; CRLF or LF. On success
 * *password (NULL if none), *destinations (written forms, "list=NAME" kept as is) and
 * *consumed (bytes of text taken by those lines, to be cut from the faxed text).
 */
gboolean fax_body_parse(const char *text, gsize len, char **password, GStrv *destinations,
                        gsize *consumed, GError **error);

/* Returns the numbers of a list (canonical or written forms), or NULL: no such list. */
typedef GStrv (*FaxListLookup)(const char *name, gpointer user_data);

/*
 * Expands lists, checks and canonicalises every number, drops duplicates (first one kept,
 * order kept) and fails with FAX_DIRECTIVE_ERROR_TOO_MANY beyond max. Returns the canonical
 * numbers, NULL-terminated, at least one.
 */
GStrv
fax_destinations_resolve(const char *const *written, const FaxDialRules *rules,
                         FaxListLookup lookup, gpointer lookup_data, guint max, GError **error);

G_END_DECLS
