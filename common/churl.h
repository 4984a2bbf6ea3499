/*
 * churl: checks a ClickHouse destination URL (http[s]://[user[:password]@]host[:port][/...])
 * without libcurl, so pgferryd can refuse a bad one at create; the workers' client
 * (chclient.c) applies the same check before it connects. Pure.
 */
#ifndef PGFERRY_CHURL_H
#define PGFERRY_CHURL_H

#include <stdbool.h>
#include <stddef.h>

/* True for a usable URL; otherwise false with the reason in err (the URL is not echoed: it may
 * hold a password). */
bool ch_url_check(const char *url, char *err, size_t errlen);

/* Several endpoints of one destination, separated by ',' (at most CH_URL_MAX_ENDPOINTS), each
 * checked as by ch_url_check. A ',' inside a password must be percent-encoded (%2C). */
#define CH_URL_MAX_ENDPOINTS 16
bool ch_url_list_check(const char *list, char *err, size_t errlen);

#endif
