/*
 * fuzz-fax-directive: libFuzzer target for the fax directive parser
 * (milter-smime/fax/fax-directive.c), which reads what senders write.
 *
 * The input is taken as a Subject, as a /fax=body text, and as a written number. Traps
 * when a parse claims more bytes than it was given, a destination comes back empty,
 * resolving returns more than the cap or a repeated number, or a canonical number is not
 * its own canonical form.
 */
#include "fax-directive.h"

#include <stdint.h>
#include <string.h>

#define MAX_DESTINATIONS 100

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(gboolean ok)
{
	if (!ok)
		__builtin_trap();
}

/* Any list name resolves to two numbers, one of them shared by every list. */
static GStrv
lookup(const char *name, gpointer data)
{
	char **numbers = g_new0(char *, 3);

	if (g_str_has_prefix(name, "unknown")) {
		g_free(numbers);
		return NULL;
	}
	numbers[0] = g_strdup("0311112222");
	numbers[1] = g_strdup_printf("03%08u", g_str_hash(name) % 100000000u);
	return numbers;
}

static void
resolve(GStrv written, const FaxDialRules *rules)
{
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) numbers = fax_destinations_resolve((const char *const *)written, rules,
	                                                 lookup, NULL, MAX_DESTINATIONS, &error);
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

	check((numbers == NULL) == (error != NULL));
	if (numbers == NULL)
		return;
	check(numbers[0] != NULL && g_strv_length(numbers) <= MAX_DESTINATIONS);
	for (guint i = 0; numbers[i] != NULL; i++) {
		g_autofree char *again = fax_number_canonical(numbers[i], rules, NULL);
		g_autofree char *dial = fax_number_dial(numbers[i], rules);

		check(g_hash_table_add(seen, numbers[i]));
		check(again != NULL && strcmp(again, numbers[i]) == 0);
		check(dial != NULL && *dial != '\0');
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *text = g_strndup((const char *)data, size);
	g_auto(GStrv) subject_dests = NULL;
	g_auto(GStrv) body_dests = NULL;
	g_autofree char *password = NULL;
	g_autofree char *folded = fax_fold((const char *)data, (gssize)size);
	g_autofree char *number = NULL;
	g_autoptr(GError) error = NULL;
	FaxDialRules rules;
	gsize consumed = 0;

	fax_dial_rules_init(&rules);
	check(g_utf8_validate(folded, -1, NULL));
	if (fax_subject_parse(text, &subject_dests) == FAX_SUBJECT_NUMBERS) {
		for (guint i = 0; subject_dests[i] != NULL; i++)
			check(*subject_dests[i] != '\0');
		resolve(subject_dests, &rules);
	}
	if (fax_body_parse((const char *)data, size, &password, &body_dests, &consumed, &error)) {
		check(consumed <= size && body_dests != NULL);
		resolve(body_dests, &rules);
	} else {
		check(error != NULL && error->message != NULL);
	}
	number = fax_number_canonical(text, &rules, NULL);
	if (number != NULL) {
		for (const char *p = number; *p; p++)
			check(g_ascii_isdigit(*p));
	}
	return 0;
}
