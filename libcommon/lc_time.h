/*
 * lc_time: clocks and identifiers.
 */
#ifndef LC_TIME_H
#define LC_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds (CLOCK_MONOTONIC); for deadlines and durations. */
int64_t lc_time_mono_ms(void);
/* Wall-clock milliseconds since the Unix epoch; for timestamps that leave the process. */
int64_t lc_time_wall_ms(void);
/* Formats epoch ms as 2026-11-22T03:30:00.123Z; out needs 25 bytes. */
void lc_time_format_rfc3339(int64_t epoch_ms, char *out, size_t out_size);

/* Fills `out` with `n` bytes from the kernel CSPRNG (getrandom); aborts if it cannot. */
void lc_random_bytes(void *out, size_t n);
/* A new random id: `prefix` + 20 lowercase hex chars (80 bits), NUL-terminated.
 * out_size must be at least strlen(prefix) + 21. */
void lc_id_new(const char *prefix, char *out, size_t out_size);

#endif
