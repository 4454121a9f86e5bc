#include "au_gcra.h"

void
au_gcra_init(au_gcra_t *g, int64_t limit, int64_t window_ms, int64_t burst)
{
    if (limit < 1)
        limit = 1;
    if (window_ms < 1)
        window_ms = 1;
    if (burst <= 0 || burst > limit)
        burst = limit;
    g->limit = limit;
    g->window_ms = window_ms;
    g->burst = burst;
    g->interval_us = window_ms * 1000 / limit;
    if (g->interval_us < 1)
        g->interval_us = 1;
    g->tolerance_us = burst * g->interval_us;
}

int64_t
au_gcra_take(const au_gcra_t *g, int64_t *tat_us, int64_t now_us, int64_t n)
{
    int64_t base = *tat_us > now_us ? *tat_us : now_us;
    int64_t fit = (now_us + g->tolerance_us - base) / g->interval_us;
    if (fit <= 0)
        return 0;
    int64_t granted = fit < n ? fit : n;
    *tat_us = base + granted * g->interval_us;
    return granted;
}

int64_t
au_gcra_remaining(const au_gcra_t *g, int64_t debt_us)
{
    if (debt_us < 0)
        debt_us = 0;
    int64_t r = (g->tolerance_us - debt_us) / g->interval_us;
    if (r < 0)
        return 0;
    return r > g->burst ? g->burst : r;
}

int64_t
au_gcra_retry_after_us(const au_gcra_t *g, int64_t debt_us)
{
    int64_t wait = debt_us + g->interval_us - g->tolerance_us;
    return wait > 0 ? wait : 0;
}

int64_t
au_gcra_reset_us(const au_gcra_t *g, int64_t debt_us)
{
    (void) g;
    return debt_us > 0 ? debt_us : 0;
}

int64_t
au_gcra_lease_max(const au_gcra_t *g)
{
    int64_t n = g->limit / 50;
    if (n < 1)
        n = 1;
    return n > g->burst ? g->burst : n;
}

int64_t
au_gcra_ceil_s(int64_t us)
{
    if (us <= 0)
        return 0;
    return (us + 999999) / 1000000;
}
