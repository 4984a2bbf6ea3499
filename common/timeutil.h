/* timeutil: wall-clock and monotonic time in the units the rest of the code uses. */
#ifndef PGFERRY_TIMEUTIL_H
#define PGFERRY_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

int64_t time_now_us(void);  /* wall clock, microseconds since the epoch */
int64_t time_mono_ms(void); /* monotonic clock, milliseconds */
/* "2026-11-21 22:45:01Z" (UTC) into out */
void time_format_us(int64_t us, char *out, size_t outlen);
/* "3s", "4m12s", "2h03m", "5d02h" */
void time_format_duration(int64_t us, char *out, size_t outlen);

#endif
