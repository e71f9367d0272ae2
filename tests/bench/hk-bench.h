/*
 * hk-bench: what hanko's benchmarks share: the clock, the HANKO_BENCH_* knobs, children
 * that die with the benchmark, and latency statistics.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* CLOCK_MONOTONIC in nanoseconds. */
gint64 hk_bench_now_ns(void);
/* A positive integer from the environment, or fallback when unset. */
guint hk_bench_env_uint(const char *name, guint fallback);

typedef struct {
	double seconds;
	double rate; /* operations per second */
	double p50_ms;
	double p99_ms;
} HkBenchStats;

/* Over `connections` arrays of `count` latencies (ns) measured in `seconds`. */
void hk_bench_stats(HkBenchStats *stats, gint64 *const *latencies, guint connections, guint count,
                    double seconds);

G_END_DECLS
