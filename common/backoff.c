/* backoff: pure arithmetic plus a small PRNG; no clocks, no sleeping. */
#include "backoff.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

uint64_t
backoff_delay_ms(uint32_t attempt, uint64_t initial_ms, uint64_t max_ms, double rand01)
{
    if (attempt == 0)
        attempt = 1;
    uint64_t base = initial_ms;
    for (uint32_t i = 1; i < attempt && base < max_ms; i++)
        base *= 2;
    if (base > max_ms)
        base = max_ms;
    if (rand01 < 0)
        rand01 = 0;
    if (rand01 >= 1)
        rand01 = 0.999999;
    uint64_t d = (uint64_t)((double)base * (0.75 + 0.5 * rand01));
    return d > max_ms ? max_ms : d;
}

double
backoff_rand01(void)
{
    static unsigned short state[3];
    static int seeded;
    if (!seeded) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        state[0] = (unsigned short)ts.tv_nsec;
        state[1] = (unsigned short)getpid();
        state[2] = (unsigned short)(ts.tv_sec ^ (ts.tv_nsec >> 16));
        seeded = 1;
    }
    return erand48(state);
}
