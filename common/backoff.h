/*
 * backoff: exponential restart delays with jitter (DESIGN section 8).
 */
#ifndef PGFERRY_BACKOFF_H
#define PGFERRY_BACKOFF_H

#include <stdint.h>

/* Delay before restart number `attempt` (1-based): initial_ms doubling per attempt, capped at
 * max_ms, scaled by a jitter factor in [0.75, 1.25) from rand01 in [0, 1), never above max_ms. */
uint64_t backoff_delay_ms(uint32_t attempt, uint64_t initial_ms, uint64_t max_ms, double rand01);

/* A uniformly distributed double in [0, 1) from a per-process generator seeded at first use. */
double backoff_rand01(void);

#endif
