/*
 * hk-bench: shared helpers of tests/bench/. See hk-bench.h.
 */
#include "hk-bench.h"

#include <stdlib.h>
#include <time.h>

gint64
hk_bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (gint64)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

guint
hk_bench_env_uint(const char *name, guint fallback)
{
	const char *env = g_getenv(name);

	return env ? (guint)MAX(1, atoi(env)) : fallback;
}

static int
cmp_gint64(const void *a, const void *b)
{
	gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;

	return (x > y) - (x < y);
}

void
hk_bench_stats(HkBenchStats *stats, gint64 *const *latencies, guint connections, guint count,
               double seconds)
{
	guint total = connections * count, k = 0;
	g_autofree gint64 *all = g_new(gint64, MAX(total, 1));

	for (guint i = 0; i < connections; i++)
		for (guint j = 0; j < count; j++)
			all[k++] = latencies[i][j];
	qsort(all, total, sizeof(*all), cmp_gint64);
	stats->seconds = seconds;
	stats->rate = total / seconds;
	stats->p50_ms = total ? all[total / 2] / 1e6 : 0;
	stats->p99_ms = total ? all[MIN(total - 1, (guint)((guint64)total * 99 / 100))] / 1e6 : 0;
}
