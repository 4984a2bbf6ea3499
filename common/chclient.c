/*
 * chclient: the only module that talks libcurl. CURLcode and HTTP status become errclass_t
 * here and nowhere else.
 */
#include "chclient.h"
#include "churl.h"
#include "chsql.h"
#include "log.h"

#include <curl/curl.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ch_client {
    CURL *curl;
    char **bases; /* scheme://host:port/ of each endpoint, without credentials */
    size_t n_bases;
    size_t cur;        /* the endpoint in use */
    unsigned switches; /* endpoint changes so far */
    char *settings;    /* "k=v&k=v" added to every request, or NULL */
    bool no_failover;  /* stay on the endpoint in use (checks of one endpoint) */
    char *user;
    char *password;
    long timeout_ms; /* whole request; 0 = the default 300 s */
};

typedef struct {
    char *data;
    size_t len, cap;
    size_t limit;
    CURL *curl;
    ch_recv_fn fn; /* a streamed reply: 200 bodies go here, error bodies to data */
    void *fnud;
    bool stopped;
} body_t;

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    body_t *b = ud;
    size_t n = size * nmemb;
    if (b->fn) {
        long status = 0;
        curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200) {
            if (!b->fn(b->fnud, ptr, n)) {
                b->stopped = true;
                return 0;
            }
            return n;
        }
    }
    if (b->len + n + 1 > b->limit)
        return 0; /* abort the transfer: a reply we did not ask for */
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static char *
read_password_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read ClickHouse password file %s", path);
        return NULL;
    }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return strdup(buf);
}

/* Parses one endpoint URL: its base into *base, its user and password (if any) into *uuser,
 * *upass (curl_free them). */
static bool
parse_endpoint(const char *url, char **base, char **uuser, char **upass, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    bool ok = false;
    *base = NULL;
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(err, errlen, "destination is not a valid URL (expected http://host:8123)");
        goto out;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        snprintf(err, errlen, "destination URL scheme must be http or https, not %s", scheme);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        snprintf(err, errlen, "destination URL has no usable port");
        goto out;
    }
    curl_url_get(u, CURLUPART_USER, uuser, CURLU_URLDECODE);
    curl_url_get(u, CURLUPART_PASSWORD, upass, CURLU_URLDECODE);
    size_t bl = strlen(scheme) + strlen(host) + strlen(port) + 8;
    *base = malloc(bl);
    if (!*base) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    snprintf(*base, bl, "%s://%s:%s/", scheme, host, port);
    ok = true;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}

ch_client_t *
ch_client_new(const char *url, const char *user, const char *password_file, char *err,
              size_t errlen)
{
    static int global_init;
    if (!global_init) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        global_init = 1;
    }
    if (!ch_url_list_check(url, err, errlen))
        return NULL;
    ch_client_t *c = calloc(1, sizeof(*c));
    char *list = strdup(url), *uuser = NULL, *upass = NULL;
    size_t n = 1;
    for (const char *p = url; *p; p++)
        n += *p == ',';
    if (!c || !list || !(c->bases = calloc(n, sizeof(char *)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* the first endpoint with credentials gives them to all */
    char *save = NULL;
    for (char *one = strtok_r(list, ",", &save); one; one = strtok_r(NULL, ",", &save)) {
        char *uu = NULL, *up = NULL;
        if (!parse_endpoint(one, &c->bases[c->n_bases], &uu, &up, err, errlen)) {
            curl_free(uu);
            curl_free(up);
            goto fail;
        }
        c->n_bases++;
        if (!uuser && uu && *uu) {
            uuser = uu;
            upass = up;
        } else {
            curl_free(uu);
            curl_free(up);
        }
    }
    c->user = strdup(user && *user ? user : (uuser && *uuser ? uuser : "default"));
    if (password_file && *password_file) {
        c->password = read_password_file(password_file, err, errlen);
        if (!c->password)
            goto fail;
    } else {
        c->password = strdup(upass ? upass : "");
    }
    c->curl = curl_easy_init();
    if (!c->user || !c->password || !c->curl) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    free(list);
    curl_free(uuser);
    curl_free(upass);
    return c;
fail:
    free(list);
    curl_free(uuser);
    curl_free(upass);
    ch_client_destroy(&c);
    return NULL;
}

ch_client_t *
ch_client_new_env(const char *url, const char *user, const char *password_file,
                  const char *password_env, char *err, size_t errlen)
{
    const char *pw = NULL;
    if (password_env && *password_env && !(password_file && *password_file)) {
        pw = getenv(password_env);
        if (!pw) {
            snprintf(err, errlen,
                     "the ClickHouse password variable %s is not set in pgferryd's environment",
                     password_env);
            return NULL;
        }
    }
    ch_client_t *c = ch_client_new(url, user, password_file, err, errlen);
    if (c && pw) {
        char *copy = strdup(pw);
        if (!copy) {
            ch_client_destroy(&c);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        memset(c->password, 0, strlen(c->password));
        free(c->password);
        c->password = copy;
    }
    return c;
}

void
ch_client_set_timeout(ch_client_t *c, long timeout_ms)
{
    c->timeout_ms = timeout_ms;
}

bool
ch_client_set_settings(ch_client_t *c, const char *settings)
{
    char *copy = settings && *settings ? strdup(settings) : NULL;
    if (settings && *settings && !copy)
        return false;
    free(c->settings);
    c->settings = copy;
    return true;
}

const char *
ch_client_endpoint(const ch_client_t *c)
{
    return c->bases[c->cur];
}

size_t
ch_client_endpoints(const ch_client_t *c)
{
    return c->n_bases;
}

size_t
ch_client_current(const ch_client_t *c)
{
    return c->cur;
}

unsigned
ch_client_switches(const ch_client_t *c)
{
    return c->switches;
}

void
ch_client_use(ch_client_t *c, size_t i, bool failover)
{
    if (i < c->n_bases)
        c->cur = i;
    c->no_failover = !failover;
}

/* secret with a backslash before each of the characters in esc and before each backslash */
static void
escaped(const char *secret, const char *esc, char *out)
{
    for (const char *p = secret; *p; p++) {
        if (*p == '\\' || strchr(esc, *p))
            *out++ = '\\';
        *out++ = *p;
    }
    *out = '\0';
}

static void
url_encoded(const char *secret, const char *hex, char *out)
{
    for (const unsigned char *p = (const unsigned char *)secret; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p)) {
            *out++ = (char)*p;
        } else {
            *out++ = '%';
            *out++ = hex[*p >> 4];
            *out++ = hex[*p & 15];
        }
    }
    *out = '\0';
}

void
ch_scrub_secret(char *text, size_t cap, const char *secret)
{
    if (!text || !cap || !secret || !*secret)
        return;
    size_t sl = strlen(secret), tl = strlen(text);
    enum { NFORMS = 7 };
    char *f[NFORMS];
    char *buf = malloc(NFORMS * (4 * sl + 1) + 3 * tl + 4);
    if (!buf) {
        text[0] = '\0'; /* nothing is better than the secret */
        return;
    }
    for (int i = 0; i < NFORMS; i++)
        f[i] = buf + (size_t)i * (4 * sl + 1);
    snprintf(f[0], 4 * sl + 1, "%s", secret);
    escaped(secret, "'", f[1]);  /* a quoted SQL string: pa\'ss, ba\\ck */
    escaped(secret, "", f[2]);   /* backslashes doubled */
    escaped(secret, "\"", f[3]); /* a double-quoted one */
    escaped(f[1], "'", f[4]);    /* a quoted string quoted again */
    url_encoded(secret, "0123456789ABCDEF", f[5]);
    url_encoded(secret, "0123456789abcdef", f[6]);
    char *o = buf + NFORMS * (4 * sl + 1), *w = o;
    for (const char *p = text; *p;) {
        size_t best = 0; /* the longest form that starts here */
        for (int i = 0; i < NFORMS; i++) {
            size_t l = strlen(f[i]);
            if (l > best && strncmp(p, f[i], l) == 0)
                best = l;
        }
        if (best) {
            memcpy(w, "***", 3);
            w += 3;
            p += best;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    snprintf(text, cap, "%s", o);
    memset(buf, 0, NFORMS * (4 * sl + 1));
    free(buf);
}

errclass_t
ch_client_probe_remote(ch_client_t *c, const char *host, unsigned port, char *err, size_t errlen)
{
    /* the client's user without its password: no credentials in the SQL text, which the
     * server's query_log keeps. A node that answers refusing the login (the user has a
     * password there, or is unknown) is up and speaks its native protocol. */
    char qa[600], qu[600], addr[400];
    snprintf(addr, sizeof(addr), "%s:%u", host, port);
    chsql_string(addr, qa, sizeof(qa));
    chsql_string(c->user, qu, sizeof(qu));
    char sql[2000];
    snprintf(sql, sizeof(sql),
             "SELECT count() FROM remote(%s, system.one, %s) SETTINGS connect_timeout = 5", qa, qu);
    errclass_t cls = ch_client_query(c, sql, NULL, err, errlen);
    int code = cls == ERRCLASS_NONE ? 0 : ch_error_code(err);
    if ((code == 192 || code == 193 || code == 194 || code == 195 || code == 516) &&
        strstr(err, "Received from"))
        cls = ERRCLASS_NONE; /* UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, ... */
    return cls;
}

/* The next endpoint becomes the one in use. */
static void
next_endpoint(ch_client_t *c, const char *why)
{
    size_t from = c->cur;
    c->cur = (c->cur + 1) % c->n_bases;
    c->switches++;
    log_warn("ClickHouse endpoint %s failed (%s); using %s", c->bases[from], why, c->bases[c->cur]);
}

void
ch_client_destroy(ch_client_t **cp)
{
    ch_client_t *c = *cp;
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    for (size_t i = 0; c->bases && i < c->n_bases; i++)
        free(c->bases[i]);
    free(c->bases);
    free(c->settings);
    free(c->user);
    if (c->password) {
        memset(c->password, 0, strlen(c->password));
        free(c->password);
    }
    free(c);
    *cp = NULL;
}

/* ClickHouse exception codes that no retry will fix: credentials and permissions, a missing
 * database or table (callers that may have dropped one themselves ask again before failing), and
 * what the data or the statement is (types, parsing, syntax). Everything else - too many parts,
 * memory limits, timeouts, ZooKeeper/Keeper sessions, a replica's read-only table, a restarting
 * server - is temporary: retried with backoff, Degraded while it lasts. */
/* Errors no retry can fix. Not among them: UNKNOWN_TABLE (60) and UNKNOWN_DATABASE (81). A
 * ClickHouse 18.16 that is shutting down keeps answering open keep-alive connections, and near
 * the end it has detached its databases, system tables included ("Table system.merges doesn't
 * exist", found by tests/nemesis): a missing table is a fact only when a later check on a
 * server that stayed up confirms it (applyio's insert does that). */
static bool
fatal_code(int code)
{
    switch (code) {
    case 6:   /* CANNOT_PARSE_TEXT */
    case 16:  /* NO_SUCH_COLUMN_IN_TABLE */
    case 26:  /* CANNOT_PARSE_QUOTED_STRING */
    case 27:  /* CANNOT_PARSE_INPUT_ASSERTION_FAILED */
    case 33:  /* CANNOT_READ_ALL_DATA */
    case 36:  /* BAD_ARGUMENTS */
    case 38:  /* CANNOT_PARSE_DATE */
    case 41:  /* CANNOT_PARSE_DATETIME */
    case 43:  /* ILLEGAL_TYPE_OF_ARGUMENT */
    case 44:  /* ILLEGAL_COLUMN */
    case 46:  /* UNKNOWN_FUNCTION */
    case 47:  /* UNKNOWN_IDENTIFIER */
    case 48:  /* NOT_IMPLEMENTED */
    case 53:  /* TYPE_MISMATCH */
    case 62:  /* SYNTAX_ERROR */
    case 70:  /* CANNOT_CONVERT_TYPE */
    case 72:  /* CANNOT_PARSE_NUMBER */
    case 117: /* INCORRECT_DATA */
    case 192: /* UNKNOWN_USER */
    case 193: /* WRONG_PASSWORD */
    case 194: /* REQUIRED_PASSWORD */
    case 195: /* IP_ADDRESS_NOT_ALLOWED */
    case 497: /* ACCESS_DENIED */
    case 516: /* AUTHENTICATION_FAILED */
        return true;
    default:
        return false;
    }
}

int
ch_error_code(const char *text)
{
    const char *p = text ? strstr(text, "Code: ") : NULL;
    return p ? atoi(p + 6) : 0; /* "Code: 60, e.displayText()" (18.16) or "Code: 60. DB::" */
}

errclass_t
ch_classify(long http_status, const char *body)
{
    if (http_status == 401 || http_status == 403)
        return ERRCLASS_FATAL;
    int code = ch_error_code(body);
    /* NOT_IMPLEMENTED from the DDL worker of a replica that did not get its shard's lock in
     * time while another replica ran the ALTER (18.16: MODIFY COLUMN ON CLUSTER of a replicated
     * table): asked again, the change is found made */
    if (code == 48 && strstr(body, "Cannot enqueue replicated DDL query"))
        return ERRCLASS_TRANSIENT;
    if (code)
        return fatal_code(code) ? ERRCLASS_FATAL : ERRCLASS_TRANSIENT;
    /* no exception code: a proxy or a server on its way up or down */
    return ERRCLASS_TRANSIENT;
}

/* A streamed body: head (an INSERT's text and a newline) first, then what fn produces. */
typedef struct {
    ch_stream_fn fn;
    void *ud;
    bool aborted;
    const char *head;
    size_t head_len, head_pos;
    size_t sent; /* bytes of the body so far */
} stream_t;

static size_t
on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    stream_t *st = ud;
    size_t cap = size * nitems;
    if (st->head_pos < st->head_len) {
        size_t n = st->head_len - st->head_pos < cap ? st->head_len - st->head_pos : cap;
        memcpy(buf, st->head + st->head_pos, n);
        st->head_pos += n;
        st->sent += n;
        return n;
    }
    long n = st->fn(st->ud, buf, cap);
    if (n > 0)
        st->sent += (size_t)n;
    if (n < 0) {
        st->aborted = true;
        return CURL_READFUNC_ABORT;
    }
    return (size_t)n;
}

/* Errors after which another endpoint may do better: the node is unreachable or on its way
 * down, or it lost its coordinator session (its replicated tables are read-only). */
static bool
endpoint_failed(CURLcode rc, long status, const char *body)
{
    if (rc != CURLE_OK)
        return true;
    if (status == 200)
        return false;
    switch (ch_error_code(body)) {
    case 0: /* no exception code: a proxy, or a server going up or down */
        return status >= 500;
    case 225: /* NO_ZOOKEEPER */
    case 242: /* TABLE_IS_READ_ONLY */
    case 999: /* KEEPER_EXCEPTION */
        return true;
    default:
        return false;
    }
}

/* What a request sends, for its errors: the statement (the SQL of a query, the INSERT of an
 * insert) and how much of it goes at the head of the body (0: it is in the URL). */
typedef struct {
    const char *stmt;
    size_t body_stmt_len;
} sent_t;

/* ClickHouse's default max_query_size: the most of a body it reads for the statement. */
#define CH_DEFAULT_MAX_QUERY_SIZE 262144

/* The error of an HTTP error with an empty reply (a request ClickHouse refused before reading
 * it, such as a URL over 18.16's 16 KB, or a proxy's): the status and what was sent. The
 * statement's head stops at its first quote (no literal, such as a password, is shown). */
static void
empty_reply(char *err, size_t errlen, long status, const char *base, bool show_base,
            const sent_t *sent, size_t url_len, size_t body_len, bool streamed, bool multipart)
{
    char head[100];
    size_t n = 0;
    for (const char *p = sent && sent->stmt ? sent->stmt : ""; *p && *p != '\'' && n < 80; p++)
        head[n++] = (unsigned char)*p < 0x20 ? ' ' : *p;
    head[n] = '\0';
    bool cut = sent && sent->stmt && strlen(sent->stmt) > n;
    char body[64];
    if (multipart)
        snprintf(body, sizeof(body), "a multipart body");
    else if (streamed)
        snprintf(body, sizeof(body), "a streamed body of %zu bytes", body_len);
    else
        snprintf(body, sizeof(body), "a body of %zu bytes", body_len);
    snprintf(err, errlen,
             "ClickHouse HTTP %ld%s%s with an empty reply to \"%s%s\" (a URL of %zu bytes, %s)%s",
             status, show_base ? " at " : "", show_base ? base : "", head, cut ? "..." : "",
             url_len, body,
             status == 400 && url_len > 16000 ? ": ClickHouse 18.16 refuses URLs over 16 KB" : "");
}

/* One POST of data (or a streamed body, or a multipart form) to the endpoint in use, url_query
 * (a query string such as "?query=..." or "") and the client's settings; the reply body goes
 * to *out when out is not NULL, or to recv->fn as it arrives when recv is given. *failed is set
 * when the endpoint itself failed (see endpoint_failed). */
static errclass_t
perform_once(ch_client_t *c, const sent_t *sent, const char *url_query, const void *data,
             size_t len, stream_t *stream, curl_mime *mime, body_t *recv, char **out,
             size_t *outlen, bool *failed, char *err, size_t errlen)
{
    struct curl_slist *hdrs = NULL;
    body_t local = {0};
    body_t *body = recv ? recv : &local;
    const char *base = c->bases[c->cur];
    *failed = false;
    body->limit = 64 * 1024 * 1024;
    body->curl = c->curl;
    /* a statement at the head of the body longer than ClickHouse reads by default (a verify
     * query of a wide table): the limit goes up for this request */
    char mqs[64] = "";
    if (sent->body_stmt_len >= CH_DEFAULT_MAX_QUERY_SIZE)
        snprintf(mqs, sizeof(mqs), "max_query_size=%zu", sent->body_stmt_len + 65536);
    size_t ul = strlen(base) + strlen(url_query) + (c->settings ? strlen(c->settings) : 0) +
                strlen(mqs) + 3;
    char *url = malloc(ul);
    if (!url) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    snprintf(url, ul, "%s%s%s%s", base, url_query, c->settings ? (url_query[0] ? "&" : "?") : "",
             c->settings ? c->settings : "");
    if (mqs[0]) {
        size_t l = strlen(url);
        snprintf(url + l, ul - l, "%s%s", strchr(url, '?') ? "&" : "?", mqs);
    }
    size_t url_len = strlen(url);
    if (stream) {
        stream->head_pos = 0;
        stream->sent = 0;
    }
    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
    if (mime) {
        curl_easy_setopt(c->curl, CURLOPT_MIMEPOST, mime);
    } else if (stream) {
        hdrs = curl_slist_append(NULL, "Transfer-Encoding: chunked");
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c->curl, CURLOPT_READDATA, stream);
    } else {
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, data);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(c->curl, CURLOPT_USERNAME, c->user);
    curl_easy_setopt(c->curl, CURLOPT_PASSWORD, c->password);
    curl_easy_setopt(c->curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms > 0 ? c->timeout_ms : 300000L);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c->curl);
    free(url);
    curl_slist_free_all(hdrs);
    if (stream && stream->aborted) {
        snprintf(err, errlen, "aborted by the producer");
        free(body->data);
        body->data = NULL;
        return ERRCLASS_FATAL;
    }
    if (body->stopped) {
        free(body->data);
        body->data = NULL;
        return ERRCLASS_NONE; /* the receiver had what it wanted */
    }
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    *failed = endpoint_failed(rc, status, body->data);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "ClickHouse at %s unreachable: %s", base, curl_easy_strerror(rc));
        free(body->data);
        body->data = NULL;
        return ERRCLASS_TRANSIENT;
    }
    if (status != 200 && !(body->data && body->data[0])) {
        empty_reply(err, errlen, status, base, c->n_bases > 1, sent, url_len,
                    stream ? stream->sent : len, stream != NULL, mime != NULL);
        free(body->data);
        body->data = NULL;
        return ch_classify(status, "");
    }
    if (status != 200) {
        const char *msg = body->data ? body->data : "";
        /* first line only, without the "e.what()" tail of older servers */
        char line[1024];
        snprintf(line, sizeof(line), "%s", msg);
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *tail = strstr(line, ", e.what()");
        if (tail)
            *tail = '\0';
        /* errors of the coordinator: say so */
        int code = ch_error_code(msg);
        const char *hint = code == 242 ? " (a replicated table is read-only while its server has "
                                         "no ZooKeeper session)"
                           : code == 225 || code == 999 ? " (the server's ZooKeeper)"
                                                        : "";
        if (c->n_bases > 1)
            snprintf(err, errlen, "ClickHouse HTTP %ld at %s: %s%s", status, base, line, hint);
        else
            snprintf(err, errlen, "ClickHouse HTTP %ld: %s%s", status, line, hint);
        ch_scrub_secret(err, errlen, c->password);
        errclass_t cls = ch_classify(status, msg);
        free(body->data);
        body->data = NULL;
        return cls;
    }
    if (outlen)
        *outlen = body->len;
    if (out)
        *out = body->data ? body->data : strdup("");
    else
        free(body->data);
    body->data = NULL;
    return ERRCLASS_NONE;
}

/* perform_once on the endpoint in use; when that endpoint failed, the next one becomes the one
 * in use, and a request that can be sent again (a body in memory, the reply not streamed to a
 * receiver) is sent to it at once, each endpoint tried once. A streamed request fails with the
 * endpoint switched, and its caller's retry goes to the new one. */
static errclass_t
perform(ch_client_t *c, const sent_t *sent, const char *url_query, const void *data, size_t len,
        stream_t *stream, curl_mime *mime, body_t *recv, char **out, size_t *outlen, char *err,
        size_t errlen)
{
    bool resend = !stream && !recv;
    for (size_t attempt = 0;; attempt++) {
        bool failed;
        errclass_t cls = perform_once(c, sent, url_query, data, len, stream, mime, recv, out,
                                      outlen, &failed, err, errlen);
        if (cls == ERRCLASS_NONE || !failed || c->n_bases < 2 || c->no_failover)
            return cls;
        next_endpoint(c, err);
        if (!resend || attempt + 1 >= c->n_bases)
            return cls;
    }
}

errclass_t
ch_client_query(ch_client_t *c, const char *sql, char **out, char *err, size_t errlen)
{
    sent_t sent = {sql, strlen(sql)};
    return perform(c, &sent, "", sql, strlen(sql), NULL, NULL, NULL, out, NULL, err, errlen);
}

errclass_t
ch_client_query_len(ch_client_t *c, const char *sql, char **out, size_t *outlen, char *err,
                    size_t errlen)
{
    sent_t sent = {sql, strlen(sql)};
    return perform(c, &sent, "", sql, strlen(sql), NULL, NULL, NULL, out, outlen, err, errlen);
}

/* An insert sends its statement at the head of the body, a newline, then the data (ClickHouse
 * reads a statement from the body when the URL has none, and the data starts after the first
 * newline that follows it): a column list of any length fits, where a URL stops at 16 KB in
 * ClickHouse 18.16. A body in memory is copied behind the statement; a streamed one gets the
 * statement first and streams on. */
static errclass_t
insert(ch_client_t *c, const char *query, const void *body, size_t len, stream_t *stream, char *err,
       size_t errlen)
{
    size_t ql = strlen(query);
    sent_t sent = {query, ql + 1};
    if (stream) {
        char *head = malloc(ql + 2);
        if (!head) {
            snprintf(err, errlen, "out of memory");
            return ERRCLASS_TRANSIENT;
        }
        memcpy(head, query, ql);
        head[ql] = '\n';
        stream->head = head;
        stream->head_len = ql + 1;
        errclass_t cls =
            perform(c, &sent, "", NULL, 0, stream, NULL, NULL, NULL, NULL, err, errlen);
        free(head);
        return cls;
    }
    char *all = malloc(ql + 1 + len + 1);
    if (!all) {
        snprintf(err, errlen, "out of memory");
        return ERRCLASS_TRANSIENT;
    }
    memcpy(all, query, ql);
    all[ql] = '\n';
    if (len)
        memcpy(all + ql + 1, body, len);
    errclass_t cls =
        perform(c, &sent, "", all, ql + 1 + len, NULL, NULL, NULL, NULL, NULL, err, errlen);
    free(all);
    return cls;
}

errclass_t
ch_client_insert(ch_client_t *c, const char *query, const void *body, size_t len, char *err,
                 size_t errlen)
{
    return insert(c, query, body, len, NULL, err, errlen);
}

errclass_t
ch_client_insert_stream(ch_client_t *c, const char *query, ch_stream_fn fn, void *ud, char *err,
                        size_t errlen)
{
    stream_t st = {fn, ud, false, NULL, 0, 0, 0};
    return insert(c, query, NULL, 0, &st, err, errlen);
}

typedef struct {
    const unsigned char *data;
    size_t len, pos;
} mime_src_t;

static size_t
mime_read(char *buf, size_t size, size_t nitems, void *ud)
{
    mime_src_t *m = ud;
    size_t n = size * nitems;
    if (n > m->len - m->pos)
        n = m->len - m->pos;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return n;
}

static int
mime_seek(void *ud, curl_off_t offset, int origin)
{
    mime_src_t *m = ud;
    if (origin != SEEK_SET || offset < 0 || (size_t)offset > m->len)
        return CURL_SEEKFUNC_FAIL;
    m->pos = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

errclass_t
ch_client_query_ext(ch_client_t *c, const char *sql, const char *ext_name,
                    const char *ext_structure, const void *ext_data, size_t ext_len, ch_recv_fn fn,
                    void *ud, bool *stopped, char *err, size_t errlen)
{
    *stopped = false;
    char *q = curl_easy_escape(c->curl, sql, 0), *st = curl_easy_escape(c->curl, ext_structure, 0);
    size_t ul = (q ? strlen(q) : 0) + (st ? strlen(st) : 0) + 3 * strlen(ext_name) + 96;
    char *uq = malloc(ul);
    curl_mime *mime = curl_mime_init(c->curl);
    curl_mimepart *part = mime ? curl_mime_addpart(mime) : NULL;
    errclass_t cls = ERRCLASS_TRANSIENT;
    if (!q || !st || !uq || !part) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    snprintf(uq, ul, "?query=%s&%s_structure=%s&%s_format=RowBinary&wait_end_of_query=1", q,
             ext_name, st, ext_name);
    /* the keys are read from the caller's buffer, not copied */
    mime_src_t src = {ext_data, ext_len, 0};
    curl_mime_name(part, ext_name);
    curl_mime_filename(part, ext_name);
    curl_mime_data_cb(part, (curl_off_t)ext_len, mime_read, mime_seek, NULL, &src);
    body_t recv = {0};
    recv.fn = fn;
    recv.fnud = ud;
    sent_t sent = {sql, 0};
    cls = perform(c, &sent, uq, NULL, 0, NULL, mime, &recv, NULL, NULL, err, errlen);
    *stopped = recv.stopped;
out:
    curl_free(q);
    curl_free(st);
    free(uq);
    curl_mime_free(mime);
    return cls;
}

char *
ch_client_version(ch_client_t *c, errclass_t *cls, char *err, size_t errlen)
{
    char *out = NULL;
    *cls = ch_client_query(c, "SELECT version()", &out, err, errlen);
    if (*cls != ERRCLASS_NONE)
        return NULL;
    size_t n = strlen(out);
    while (n > 0 && isspace((unsigned char)out[n - 1]))
        out[--n] = '\0';
    return out;
}

long
ch_version_number(const char *v)
{
    long major = 0, minor = 0, patch = 0;
    if (sscanf(v, "%ld.%ld.%ld", &major, &minor, &patch) < 2)
        return 0;
    return major * 1000000 + minor * 1000 + patch;
}
