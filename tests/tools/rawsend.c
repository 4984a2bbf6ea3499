/*
 * pgferry-test-rawsend ENDPOINT KIND [COUNT]: sends one malformed (or valid) message (COUNT
 * times, each after the previous reply) to pgferryd's control socket as a DEALER and prints
 * the (last) reply: "code=N message=..." or "no reply".
 * KIND: garbage | truncated | unknown-type | bad-version | oversized | empty-frames |
 *       many-frames | pause-unknown | valid-list | create | hostile-empty[:MB] | big-create
 * create: a CreatePipe as pgferryctl would never send it (its checks refuse the values), from
 * the environment: RAWSEND_PIPE, RAWSEND_TABLE (schema.name), RAWSEND_TARGET,
 * RAWSEND_PARTITION_BY, RAWSEND_DB, PGFERRY_PG_URI, PGFERRY_CH_URL.
 * hostile-empty: a create whose spec holds MB (default 62) of empty 2-byte table entries;
 * big-create: the largest legitimate create (10,000 tables with long names, exclusions and
 * options; its size goes to stderr) under a pipe name the daemon refuses after decoding.
 */
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "state.pb-c.h"

#include "control.pb-c.h"
#include "ipc.h"

static size_t
put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* version 1, create { spec { tables {} x n } } straight in the wire format */
static size_t
hostile_empty(size_t mb, uint8_t **out)
{
    size_t n = mb * 1000 * 1000 / 2, inner = n * 2;
    uint8_t *b = malloc(inner + 32), *p = b;
    uint8_t hdr[32];
    size_t h = 0, specl = inner;
    hdr[h++] = 0x08;
    hdr[h++] = 0x01;
    hdr[h++] = 0x52; /* field 10, length-delimited: create */
    uint8_t tmp[12];
    size_t tl = put_varint(tmp, specl);
    h += put_varint(hdr + h, 1 + tl + specl);
    hdr[h++] = 0x0a; /* field 1: spec */
    h += put_varint(hdr + h, specl);
    memcpy(p, hdr, h);
    p += h;
    for (size_t i = 0; i < n; i++) {
        *p++ = 0x3a; /* field 7: tables, empty */
        *p++ = 0x00;
    }
    *out = b;
    return (size_t)(p - b);
}

static size_t
pack_request(Pgferry__Control__Request *r, uint8_t **out)
{
    size_t n = pgferry__control__request__get_packed_size(r);
    *out = malloc(n + 1);
    pgferry__control__request__pack(r, *out);
    return n;
}

int
main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s ENDPOINT KIND [COUNT]\n", argv[0]);
        return 2;
    }
    int count = argc == 4 ? atoi(argv[3]) : 1;
    const char *kind = argv[2];
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, to = getenv("RAWSEND_TIMEOUT_MS") ? atoi(getenv("RAWSEND_TIMEOUT_MS")) : 3000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &to, sizeof(to));
    if (zmq_connect(s, argv[1]) != 0) {
        fprintf(stderr, "connect: %s\n", zmq_strerror(zmq_errno()));
        return 2;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    Pgferry__Control__Request req = PGFERRY__CONTROL__REQUEST__INIT;
    Pgferry__Control__GetPipe get = PGFERRY__CONTROL__GET_PIPE__INIT;
    Pgferry__Control__ListPipes list = PGFERRY__CONTROL__LIST_PIPES__INIT;
    Pgferry__Control__PausePipe pause = PGFERRY__CONTROL__PAUSE_PIPE__INIT;
    req.version = IPC_VERSION;
    if (strcmp(kind, "garbage") == 0) {
        len = 64;
        buf = malloc(len);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)(0xff - i * 7);
    } else if (strcmp(kind, "truncated") == 0) {
        char name[200];
        memset(name, 'x', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        get.name = name;
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_GET;
        req.get = &get;
        len = pack_request(&req, &buf) / 2;
    } else if (strcmp(kind, "unknown-type") == 0) {
        /* version = 1, then field 99 (length-delimited), which no pgferryd knows */
        static const uint8_t m[] = {0x08, 0x01, 0x9a, 0x06, 0x01, 'x'};
        len = sizeof(m);
        buf = malloc(len);
        memcpy(buf, m, len);
    } else if (strcmp(kind, "bad-version") == 0) {
        req.version = 99;
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_LIST;
        req.list = &list;
        len = pack_request(&req, &buf);
    } else if (strcmp(kind, "pause-unknown") == 0) {
        pause.name = "x";
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_PAUSE;
        req.pause = &pause;
        len = pack_request(&req, &buf);
    } else if (strcmp(kind, "valid-list") == 0) {
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_LIST;
        req.list = &list;
        len = pack_request(&req, &buf);
    } else if (strcmp(kind, "create") == 0) {
        static Pgferry__Control__CreatePipe cr = PGFERRY__CONTROL__CREATE_PIPE__INIT;
        static Pgferry__State__PipeSpec spec = PGFERRY__STATE__PIPE_SPEC__INIT;
        static Pgferry__State__TableSpec ts = PGFERRY__STATE__TABLE_SPEC__INIT;
        static Pgferry__State__TableSpec *tsp[1] = {&ts};
        static char table[200];
        const char *e;
        snprintf(table, sizeof(table), "%s", (e = getenv("RAWSEND_TABLE")) ? e : "public.t");
        char *dot = strchr(table, '.');
        if (dot) {
            *dot = '\0';
            ts.schema = table;
            ts.name = dot + 1;
        } else {
            ts.name = table;
        }
        ts.target = (e = getenv("RAWSEND_TARGET")) ? (char *)e : "";
        ts.partition_by = (e = getenv("RAWSEND_PARTITION_BY")) ? (char *)e : "";
        spec.name = (e = getenv("RAWSEND_PIPE")) ? (char *)e : "rawsend";
        spec.source = (e = getenv("PGFERRY_PG_URI")) ? (char *)e : "";
        spec.dest_url = (e = getenv("PGFERRY_CH_URL")) ? (char *)e : "";
        spec.dest_database = (e = getenv("RAWSEND_DB")) ? (char *)e : "";
        spec.tables = tsp;
        spec.n_tables = 1;
        cr.spec = &spec;
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_CREATE;
        req.create = &cr;
        len = pack_request(&req, &buf);
    } else if (strncmp(kind, "hostile-empty", 13) == 0) {
        len = hostile_empty(kind[13] == ':' ? strtoul(kind + 14, NULL, 10) : 62, &buf);
    } else if (strcmp(kind, "big-create") == 0) {
        static Pgferry__State__PipeSpec spec = PGFERRY__STATE__PIPE_SPEC__INIT;
        static Pgferry__Control__CreatePipe cr = PGFERRY__CONTROL__CREATE_PIPE__INIT;
        enum { NT = 10000, NEX = 16, NORD = 4 };
        static char id[64], part[257];
        memset(id, 'c', 63);
        memset(part, 'p', 256);
        static char *ex[NEX], *ord[NORD];
        for (int i = 0; i < NEX; i++)
            ex[i] = id;
        for (int i = 0; i < NORD; i++)
            ord[i] = id;
        Pgferry__State__TableSpec *ts = calloc(NT, sizeof(*ts));
        Pgferry__State__TableSpec **tp = calloc(NT, sizeof(*tp));
        for (int i = 0; i < NT; i++) {
            pgferry__state__table_spec__init(&ts[i]);
            ts[i].schema = ts[i].name = ts[i].target = id;
            ts[i].n_excluded_columns = NEX;
            ts[i].excluded_columns = ex;
            ts[i].n_order_by = NORD;
            ts[i].order_by = ord;
            ts[i].partition_by = part;
            tp[i] = &ts[i];
        }
        spec.name = "bad name";
        spec.source = "host=127.0.0.1 dbname=x";
        spec.dest_url = "http://127.0.0.1:1";
        spec.n_tables = NT;
        spec.tables = tp;
        cr.spec = &spec;
        req.body_case = PGFERRY__CONTROL__REQUEST__BODY_CREATE;
        req.create = &cr;
        len = pack_request(&req, &buf);
        fprintf(stderr, "big-create: %zu bytes, decode cost %zu bytes\n", len,
                ipc_unpack_cost(&pgferry__control__request__descriptor, buf, len));
    } else if (strcmp(kind, "oversized") == 0) {
        len = IPC_MAX_MSG + 1024;
        buf = calloc(1, len);
    } else if (strcmp(kind, "empty-frames") == 0) {
        zmq_send(s, "", 0, ZMQ_SNDMORE);
        len = 0;
        buf = malloc(1);
    } else if (strcmp(kind, "many-frames") == 0) {
        for (int i = 0; i < 10; i++)
            zmq_send(s, "abc", 3, ZMQ_SNDMORE);
        len = 3;
        buf = malloc(3);
        memcpy(buf, "abc", 3);
    } else {
        fprintf(stderr, "unknown kind %s\n", kind);
        return 2;
    }
    zmq_msg_t m;
    zmq_msg_init(&m);
    int got = -1;
    for (int i = 0; i < (count > 0 ? count : 1); i++) {
        if (zmq_send(s, buf, len, 0) < 0) {
            fprintf(stderr, "send: %s\n", zmq_strerror(zmq_errno()));
            return 2;
        }
        /* the reply body is the last frame (a REQ-style delimiter may come first) */
        zmq_msg_close(&m);
        zmq_msg_init(&m);
        got = zmq_msg_recv(&m, s, 0);
        while (got >= 0 && zmq_msg_more(&m)) {
            zmq_msg_close(&m);
            zmq_msg_init(&m);
            got = zmq_msg_recv(&m, s, 0);
        }
        if (got < 0)
            break;
    }
    free(buf);
    if (got < 0) {
        printf("no reply\n");
    } else {
        Pgferry__Control__Reply *r =
            pgferry__control__reply__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        if (!r)
            printf("undecodable reply\n");
        else {
            printf("code=%d message=%s\n", (int)r->code, r->message);
            pgferry__control__reply__free_unpacked(r, NULL);
        }
    }
    zmq_msg_close(&m);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}
