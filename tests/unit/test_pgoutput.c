/*
 * pgoutput decoder: real messages captured from PostgreSQL 15 (tests/fixtures/pgoutput_v1.txt,
 * made by tests/tools/capture_pgoutput.sh), Message and Origin built from the protocol
 * documentation, and every truncation, padding and a sweep of corruptions (run under ASan in
 * CI, so an out-of-bounds read fails the test).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgoutput.h"

#define MAXMSG 64

typedef struct {
    char kind;
    uint8_t *bytes;
    size_t len;
} fx_t;

static fx_t fx[MAXMSG];
static size_t nfx;

static int
load(void **state)
{
    (void)state;
    FILE *f = fopen(PGFERRY_FIXTURES "/pgoutput_v1.txt", "r");
    if (!f)
        return -1;
    char line[65536];
    while (nfx < MAXMSG && fgets(line, sizeof(line), f)) {
        size_t hl = strcspn(line + 2, "\n");
        fx[nfx].kind = line[0];
        fx[nfx].len = hl / 2;
        fx[nfx].bytes = malloc(fx[nfx].len + 1);
        for (size_t i = 0; i < fx[nfx].len; i++) {
            unsigned v;
            sscanf(line + 2 + 2 * i, "%2x", &v);
            fx[nfx].bytes[i] = (uint8_t)v;
        }
        nfx++;
    }
    fclose(f);
    return nfx == 30 ? 0 : -1;
}

static int
unload(void **state)
{
    (void)state;
    for (size_t i = 0; i < nfx; i++)
        free(fx[i].bytes);
    return 0;
}

static pgoutput_decoder_t *dec;

static void
decode_ok(size_t i, pgo_msg_t *m)
{
    char err[200];
    if (!pgoutput_decode(dec, fx[i].bytes, fx[i].len, m, err, sizeof(err)))
        fail_msg("fixture %zu (%c): %s", i, fx[i].kind, err);
    assert_int_equal(m->kind, fx[i].kind);
}

static void
assert_text(const pgo_value_t *v, const char *want)
{
    assert_int_equal(v->kind, 't');
    assert_int_equal(v->len, strlen(want));
    assert_memory_equal(v->data, want, v->len);
}

static void
test_captured_stream(void **state)
{
    (void)state;
    pgo_msg_t m;
    dec = pgoutput_decoder_new();
    for (size_t i = 0; i < nfx; i++)
        decode_ok(i, &m);

    /* Begin's final LSN is its Commit's LSN; the commit ends after it */
    decode_ok(0, &m);
    uint64_t final_lsn = m.u.begin.final_lsn;
    uint32_t xid = m.u.begin.xid;
    assert_true(xid > 0);
    decode_ok(4, &m);
    assert_int_equal(m.u.commit.commit_lsn, final_lsn);
    assert_true(m.u.commit.end_lsn > m.u.commit.commit_lsn);
    assert_int_equal(m.u.commit.flags, 0);

    /* Type (the enum), then Relation */
    decode_ok(1, &m);
    uint32_t mood = m.u.type.oid;
    assert_string_equal(m.u.type.nspname, "cap");
    assert_string_equal(m.u.type.name, "mood");
    decode_ok(2, &m);
    uint32_t relid = m.u.relation.relid;
    assert_string_equal(m.u.relation.nspname, "cap");
    assert_string_equal(m.u.relation.relname, "t");
    assert_int_equal(m.u.relation.replident, 'd');
    assert_int_equal(m.u.relation.ncols, 5);
    assert_string_equal(m.u.relation.cols[0].name, "id");
    assert_int_equal(m.u.relation.cols[0].flags, 1);
    assert_int_equal(m.u.relation.cols[0].type_oid, 23);
    assert_int_equal(m.u.relation.cols[1].flags, 0);
    assert_int_equal(m.u.relation.cols[2].typmod, ((12 << 16) | 2) + 4);
    assert_int_equal(m.u.relation.cols[3].type_oid, mood);

    /* Insert */
    decode_ok(3, &m);
    assert_int_equal(m.u.change.relid, relid);
    assert_int_equal(m.u.change.old_kind, 0);
    assert_int_equal(m.u.change.new_tuple.ncols, 5);
    assert_text(&m.u.change.new_tuple.values[0], "1");
    assert_text(&m.u.change.new_tuple.values[2], "1.50");
    assert_text(&m.u.change.new_tuple.values[3], "ok");
    assert_int_equal(m.u.change.new_tuple.values[4].kind, 'n');

    /* Update of a non-key column: no old tuple; then a key change: the old key ('K') */
    decode_ok(6, &m);
    assert_int_equal(m.u.change.old_kind, 0);
    assert_text(&m.u.change.new_tuple.values[1], "b");
    decode_ok(7, &m);
    assert_int_equal(m.u.change.old_kind, 'K');
    assert_text(&m.u.change.old_tuple.values[0], "1");
    assert_int_equal(m.u.change.old_tuple.values[1].kind, 'n');
    assert_text(&m.u.change.new_tuple.values[0], "2");

    /* text values are raw (not COPY-escaped); an unchanged TOAST value is 'u' */
    decode_ok(10, &m);
    assert_text(&m.u.change.new_tuple.values[1], "tab\there");
    assert_int_equal(m.u.change.new_tuple.values[4].len, 12800);
    decode_ok(13, &m);
    assert_text(&m.u.change.new_tuple.values[1], "toast kept");
    assert_int_equal(m.u.change.new_tuple.values[4].kind, 'u');

    /* Delete by key */
    decode_ok(16, &m);
    assert_int_equal(m.u.change.old_kind, 'K');
    assert_text(&m.u.change.old_tuple.values[0], "2");
    assert_int_equal(m.u.change.new_tuple.ncols, 0);

    /* REPLICA IDENTITY FULL: every column is key, old rows are whole ('O') */
    decode_ok(19, &m);
    assert_int_equal(m.u.relation.replident, 'f');
    assert_int_equal(m.u.relation.cols[1].flags, 1);
    uint32_t frel = m.u.relation.relid;
    decode_ok(21, &m);
    assert_int_equal(m.u.change.old_kind, 'O');
    assert_text(&m.u.change.old_tuple.values[1], "x");
    assert_text(&m.u.change.new_tuple.values[1], "y");
    decode_ok(22, &m);
    assert_int_equal(m.u.change.old_kind, 'O');
    assert_text(&m.u.change.old_tuple.values[1], "y");

    /* Truncate of both tables with RESTART IDENTITY */
    decode_ok(28, &m);
    assert_int_equal(m.u.truncate.nrels, 2);
    assert_int_equal(m.u.truncate.options, 2);
    assert_int_equal(m.u.truncate.relids[0], relid);
    assert_int_equal(m.u.truncate.relids[1], frel);
    pgoutput_decoder_destroy(&dec);
    assert_null(dec);
}

static void
test_message_and_origin(void **state)
{
    (void)state;
    /* built from the protocol documentation: 'M' flags lsn prefix\0 len content */
    static const uint8_t msg[] = {'M', 1, 0, 0, 0, 0, 0,   0,   0x10, 0x20, 'p', 'f',
                                  'x', 0, 0, 0, 0, 5, 'h', 'e', 'l',  'l',  'o'};
    static const uint8_t org[] = {'O', 0, 0, 0, 1, 0, 0, 0, 2, 'o', 'r', 'g', 0};
    pgo_msg_t m;
    char err[200];
    dec = pgoutput_decoder_new();
    assert_true(pgoutput_decode(dec, msg, sizeof(msg), &m, err, sizeof(err)));
    assert_int_equal(m.u.message.flags, 1);
    assert_int_equal(m.u.message.lsn, 0x1020);
    assert_string_equal(m.u.message.prefix, "pfx");
    assert_int_equal(m.u.message.len, 5);
    assert_memory_equal(m.u.message.content, "hello", 5);
    assert_true(pgoutput_decode(dec, org, sizeof(org), &m, err, sizeof(err)));
    assert_int_equal(m.u.origin.lsn, 0x100000002ULL);
    assert_string_equal(m.u.origin.name, "org");
    pgoutput_decoder_destroy(&dec);
}

static void
test_truncated_padded_corrupt(void **state)
{
    (void)state;
    pgo_msg_t m;
    char err[200];
    dec = pgoutput_decoder_new();
    uint8_t *copy = malloc(20000);
    for (size_t i = 0; i < nfx; i++) {
        /* every strict prefix fails, cleanly (a heap copy of exactly that length, so ASan
         * catches any read past it) */
        for (size_t l = 0; l < fx[i].len; l++) {
            uint8_t *p = malloc(l ? l : 1);
            memcpy(p, fx[i].bytes, l);
            if (pgoutput_decode(dec, p, l, &m, err, sizeof(err)))
                fail_msg("fixture %zu truncated to %zu bytes decoded", i, l);
            free(p);
        }
        /* a trailing byte fails */
        memcpy(copy, fx[i].bytes, fx[i].len);
        copy[fx[i].len] = 0;
        assert_false(pgoutput_decode(dec, copy, fx[i].len + 1, &m, err, sizeof(err)));
        assert_non_null(strstr(err, "malformed"));
        /* flipping any byte never crashes (it may still decode) */
        for (size_t b = 0; b < fx[i].len && b < 64; b++) {
            uint8_t *p = malloc(fx[i].len);
            memcpy(p, fx[i].bytes, fx[i].len);
            p[b] ^= 0xff;
            (void)pgoutput_decode(dec, p, fx[i].len, &m, err, sizeof(err));
            free(p);
        }
    }
    free(copy);
    static const uint8_t unknown[] = {'Z', 0};
    assert_false(pgoutput_decode(dec, unknown, sizeof(unknown), &m, err, sizeof(err)));
    assert_non_null(strstr(err, "unknown pgoutput message type 0x5a"));
    /* a column count above PostgreSQL's limit is refused before allocating */
    static const uint8_t wide[] = {'I', 0, 0, 0, 1, 'N', 0xff, 0xff};
    assert_false(pgoutput_decode(dec, wide, sizeof(wide), &m, err, sizeof(err)));
    assert_non_null(strstr(err, "more columns"));
    /* a value length past the end */
    static const uint8_t longval[] = {'I', 0, 0, 0, 1, 'N', 0, 1, 't', 0x7f, 0xff, 0xff, 0xff, 'x'};
    assert_false(pgoutput_decode(dec, longval, sizeof(longval), &m, err, sizeof(err)));
    /* truncate claiming more relations than bytes */
    static const uint8_t trunc[] = {'T', 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1};
    assert_false(pgoutput_decode(dec, trunc, sizeof(trunc), &m, err, sizeof(err)));
    assert_false(pgoutput_decode(dec, trunc, 0, &m, err, sizeof(err)));
    pgoutput_decoder_destroy(&dec);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_captured_stream),
        cmocka_unit_test(test_message_and_origin),
        cmocka_unit_test(test_truncated_padded_corrupt),
    };
    return cmocka_run_group_tests(tests, load, unload);
}
