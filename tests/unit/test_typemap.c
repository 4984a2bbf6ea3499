/* typemap: type choice for typmods and categories; encodings and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "typemap.h"

#define NUMERIC_TYPMOD(p, s) ((((p) << 16) | ((s)&0x7ff)) + 4)
#define V18 18016001L
#define PG_OID_TEXT_FOR_TESTS 25

static void
test_choice(void **state)
{
    (void)state;
    typemap_col_t c;
    typemap_for_pg(PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(12, 2), true, V18, 0, &c);
    assert_string_equal(c.ch_type, "Decimal(12, 2)");
    assert_int_equal(c.kind, TM_DECIMAL);
    typemap_for_pg(PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(38, 38), false, V18, 0, &c);
    assert_string_equal(c.ch_type, "Nullable(Decimal(38, 38))");
    /* wider than Decimal, unconstrained, negative scale, scale above precision: exact text */
    typemap_for_pg(PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(39, 2), true, V18, 0, &c);
    assert_string_equal(c.ch_type, "String");
    typemap_for_pg(PG_OID_NUMERIC, 'N', -1, true, V18, 0, &c);
    assert_string_equal(c.ch_type, "String");
    typemap_for_pg(PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(5, -2), true, V18, 0, &c);
    assert_string_equal(c.ch_type, "String");
    typemap_for_pg(PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(2, 5), true, V18, 0, &c);
    assert_string_equal(c.ch_type, "String");
    /* arrays of anything, and types pgferry does not know, keep PostgreSQL's text */
    typemap_for_pg(PG_OID_INT4, 'A', -1, true, V18, 0, &c);
    assert_int_equal(c.kind, TM_STRING);
    typemap_for_pg(99999, 'U', -1, false, V18, 0, &c);
    assert_string_equal(c.ch_type, "Nullable(String)");
    typemap_for_pg(PG_OID_BOOL, 'B', -1, true, V18, 0, &c);
    assert_string_equal(c.ch_type, "UInt8");
}

static void
enc_ok(const typemap_col_t *c, const char *v, const unsigned char *want, size_t wl)
{
    buf_t b;
    char err[200];
    buf_init(&b);
    assert_true(typemap_encode(c, v, v ? strlen(v) : 0, &b, err, sizeof(err)));
    assert_int_equal(b.len, wl);
    assert_memory_equal(b.data, want, wl);
    buf_free(&b);
}

static void
enc_bad(const typemap_col_t *c, const char *v, const char *why)
{
    buf_t b;
    char err[200] = "";
    buf_init(&b);
    assert_false(typemap_encode(c, v, v ? strlen(v) : 0, &b, err, sizeof(err)));
    assert_non_null(strstr(err, why));
    buf_free(&b);
}

static void
test_encode(void **state)
{
    (void)state;
    typemap_col_t c;
    typemap_for_pg(PG_OID_INT2, 'N', -1, false, V18, 0, &c);
    enc_ok(&c, "-2", (const unsigned char *)"\x00\xfe\xff", 3);
    enc_ok(&c, NULL, (const unsigned char *)"\x01", 1);
    enc_bad(&c, "32768", "out of range");
    enc_bad(&c, "12a", "out of range");
    enc_bad(&c, "", "not an integer");

    typemap_for_pg(PG_OID_INT4, 'N', -1, true, V18, 0, &c);
    enc_bad(&c, NULL, "NULL in a NOT NULL column");

    typemap_for_pg(PG_OID_BOOL, 'B', -1, true, V18, 0, &c);
    enc_ok(&c, "t", (const unsigned char *)"\x01", 1);
    enc_ok(&c, "f", (const unsigned char *)"\x00", 1);
    enc_bad(&c, "true", "not a boolean");

    typemap_for_pg(PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(9, 2), true, V18, 0, &c);
    enc_ok(&c, "-1.5", (const unsigned char *)"\x6a\xff\xff\xff", 4); /* -150 */
    enc_ok(&c, "0", (const unsigned char *)"\x00\x00\x00\x00", 4);
    enc_bad(&c, "NaN", "NaN cannot be stored in a Decimal column");
    enc_bad(&c, "1.234", "scale");
    enc_bad(&c, "12345678.00", "precision");
    enc_bad(&c, "1e5", "not a number");
    /* the refusal names the way to keep NaN */
    enc_bad(&c, "NaN", "--numeric text");

    /* a pipe created with --numeric text: numeric(p,s) is exact text, NaN kept byte for byte */
    typemap_for_pg(PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(9, 2), false, V18, TYPEMAP_NUMERIC_TEXT, &c);
    assert_string_equal(c.ch_type, "Nullable(String)");
    assert_int_equal(c.kind, TM_STRING);
    enc_ok(&c, "NaN", (const unsigned char *)"\x00\x03NaN", 5);
    enc_ok(&c, "-1.50", (const unsigned char *)"\x00\x05-1.50", 7);
    /* the flag changes numeric only */
    typemap_for_pg(PG_OID_INT4, 'N', -1, true, V18, TYPEMAP_NUMERIC_TEXT, &c);
    assert_string_equal(c.ch_type, "Int32");
    /* workers find the flag again from the recorded destination type */
    assert_int_equal(typemap_flags_recorded(PG_OID_NUMERIC, "Nullable(String)"),
                     TYPEMAP_NUMERIC_TEXT);
    assert_int_equal(typemap_flags_recorded(PG_OID_NUMERIC, "Decimal(9, 2)"), 0);
    assert_int_equal(typemap_flags_recorded(PG_OID_INT4, "String"), 0);

    typemap_for_pg(PG_OID_FLOAT8, 'N', -1, true, V18, 0, &c);
    enc_ok(&c, "Infinity", (const unsigned char *)"\x00\x00\x00\x00\x00\x00\xf0\x7f", 8);
    enc_ok(&c, "5e-324", (const unsigned char *)"\x01\x00\x00\x00\x00\x00\x00\x00", 8);
    enc_bad(&c, "1e999", "not a float8");
    enc_bad(&c, "1.0x", "not a float8");

    typemap_for_pg(PG_OID_UUID, 'U', -1, true, V18, 0, &c);
    enc_bad(&c, "61f0c404-5cb3-11e7-907b-a6006ad3db", "not a UUID");
    enc_bad(&c, "zzf0c404-5cb3-11e7-907b-a6006ad3dba0", "not a UUID");

    typemap_for_pg(PG_OID_BYTEA, 'U', -1, true, V18, 0, &c);
    enc_ok(&c, "\\x00ff", (const unsigned char *)"\x02\x00\xff", 3);
    enc_bad(&c, "\\x0", "hex output format");
    enc_bad(&c, "\\xgg", "bad hex digit");
    enc_bad(&c, "abc", "hex output format");

    typemap_for_pg(25, 'S', -1, true, V18, 0, &c);
    enc_ok(&c, "h\tb", (const unsigned char *)"\x03h\tb", 4);
    char big[300];
    memset(big, 'x', 299);
    big[299] = '\0';
    buf_t b;
    char err[100];
    buf_init(&b);
    assert_true(typemap_encode(&c, big, 299, &b, err, sizeof(err)));
    assert_int_equal(b.len, 2 + 299); /* varint 299 = 0xab 0x02 */
    assert_int_equal(b.data[0], 0xab);
    assert_int_equal(b.data[1], 0x02);
    buf_free(&b);
}

static void
lit_is(const typemap_col_t *c, const char *val, const char *want)
{
    buf_t b;
    char err[200];
    buf_init(&b);
    assert_true(typemap_literal(c, val, strlen(val), &b, err, sizeof(err)));
    buf_byte(&b, '\0');
    assert_string_equal((char *)b.data, want);
    buf_free(&b);
}

static void
test_literal(void **state)
{
    (void)state;
    typemap_col_t c;
    buf_t b;
    char err[200];
    typemap_for_pg(25, 'S', -1, true, V18, 0, &c);
    lit_is(&c, "it's a \\ \n", "'it\\'s a \\\\ \\x0A'");
    lit_is(&c, "tab\there", "'tab\\x09here'");
    typemap_for_pg(PG_OID_INT8, 'N', -1, true, V18, 0, &c);
    lit_is(&c, "-42", "toInt64('-42')");
    buf_init(&b);
    assert_false(typemap_literal(&c, "1; DROP", 7, &b, err, sizeof(err))); /* validated */
    buf_free(&b);
    typemap_for_pg(PG_OID_BOOL, 'B', -1, true, V18, 0, &c);
    lit_is(&c, "t", "1");
    typemap_for_pg(PG_OID_BYTEA, 'U', -1, true, V18, 0, &c);
    lit_is(&c, "\\x41ff27", "'A\\xFF\\''");
    typemap_for_pg(PG_OID_FLOAT8, 'N', -1, true, V18, 0, &c);
    lit_is(&c, "1", "reinterpretAsFloat64('\\x00\\x00\\x00\\x00\\x00\\x00\\xF0?')");
    typemap_for_pg(PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(12, 2), true, V18, 0, &c);
    lit_is(&c, "-1.50", "CAST('-1.50' AS Decimal(12, 2))");
    typemap_for_pg(PG_OID_UUID, 'U', -1, true, V18, 0, &c);
    lit_is(&c, "61f0c404-5cb3-11e7-907b-a6006ad3dba0",
           "toUUID('61f0c404-5cb3-11e7-907b-a6006ad3dba0')");
}

static void
test_absent_and_size(void **state)
{
    (void)state;
    typemap_col_t c;
    buf_t b;
    buf_init(&b);
    typemap_for_pg(PG_OID_INT4, 'N', -1, false, V18, 0, &c); /* nullable: NULL */
    typemap_encode_absent(&c, &b);
    assert_int_equal(b.len, 1);
    assert_int_equal(b.data[0], 1);
    assert_int_equal(typemap_value_size(&c, b.data, b.len), 1);
    buf_reset(&b);
    typemap_for_pg(PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(20, 2), true, V18, 0, &c); /* Decimal128 */
    typemap_encode_absent(&c, &b);
    assert_int_equal(b.len, 16);
    assert_int_equal(typemap_value_size(&c, b.data, b.len), 16);
    assert_int_equal(typemap_value_size(&c, b.data, 15), 0); /* incomplete */
    buf_reset(&b);
    typemap_for_pg(25, 'S', -1, false, V18, 0, &c);
    char err[100];
    assert_true(typemap_encode(&c, "hello", 5, &b, err, sizeof(err)));
    buf_append(&b, "trailing", 8);
    assert_int_equal(typemap_value_size(&c, b.data, b.len), 1 + 1 + 5);
    assert_int_equal(typemap_value_size(&c, b.data, 4), 0);
    buf_reset(&b);
    typemap_for_pg(25, 'S', -1, true, V18, 0, &c);
    typemap_encode_absent(&c, &b); /* NOT NULL text: empty string */
    assert_int_equal(b.len, 1);
    assert_int_equal(b.data[0], 0);
    buf_free(&b);
}

/* text -> RowBinary -> text gives PostgreSQL's own spelling back (keys of source lookups) */
static void
roundtrip(uint32_t oid, int32_t typmod, bool not_null, const char *text)
{
    typemap_col_t c;
    typemap_for_pg(oid, 'N', typmod, not_null, V18, 0, &c);
    buf_t enc, back;
    buf_init(&enc);
    buf_init(&back);
    char err[256];
    assert_true(typemap_encode(&c, text, strlen(text), &enc, err, sizeof(err)));
    bool isnull = true;
    assert_int_equal(typemap_text(&c, enc.data, enc.len, &back, &isnull), enc.len);
    assert_false(isnull);
    buf_byte(&back, '\0');
    assert_string_equal((char *)back.data, text);
    /* and the text encodes to the same bytes */
    buf_t again;
    buf_init(&again);
    assert_true(typemap_encode(&c, (char *)back.data, back.len - 1, &again, err, sizeof(err)));
    assert_int_equal(again.len, enc.len);
    assert_memory_equal(again.data, enc.data, enc.len);
    buf_free(&enc);
    buf_free(&back);
    buf_free(&again);
}

static void
test_text(void **state)
{
    (void)state;
    roundtrip(PG_OID_INT4, -1, true, "-2147483648");
    roundtrip(PG_OID_INT2, -1, false, "32767");
    roundtrip(PG_OID_INT8, -1, true, "-9223372036854775808");
    roundtrip(PG_OID_OID, -1, true, "4294967295");
    roundtrip(PG_OID_BOOL, -1, true, "t");
    roundtrip(PG_OID_BOOL, -1, true, "f");
    roundtrip(PG_OID_TEXT_FOR_TESTS, -1, true, "it's a \\ \"key\"");
    roundtrip(PG_OID_BYTEA, -1, true, "\\x00ff10");
    roundtrip(PG_OID_UUID, -1, true, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    roundtrip(PG_OID_NUMERIC, NUMERIC_TYPMOD(12, 2), true, "-1234567890.12");
    roundtrip(PG_OID_NUMERIC, NUMERIC_TYPMOD(12, 2), true, "0.05");
    roundtrip(PG_OID_NUMERIC, NUMERIC_TYPMOD(5, 0), true, "-7");
    roundtrip(PG_OID_NUMERIC, NUMERIC_TYPMOD(38, 10), true,
              "-1234567890123456789012345678.0123456789");
    /* floats: the spelling may differ, the bits may not (checked above by encoding again) */
    typemap_col_t c;
    typemap_for_pg(PG_OID_FLOAT8, 'N', -1, true, V18, 0, &c);
    const char *floats[] = {"5e-324", "1.23456789e-295", "-0", "NaN", "-Infinity", "0.1"};
    for (size_t i = 0; i < sizeof(floats) / sizeof(floats[0]); i++) {
        buf_t enc, back, again;
        buf_init(&enc);
        buf_init(&back);
        buf_init(&again);
        char err[256];
        bool isnull;
        assert_true(typemap_encode(&c, floats[i], strlen(floats[i]), &enc, err, sizeof(err)));
        assert_int_equal(typemap_text(&c, enc.data, enc.len, &back, &isnull), enc.len);
        assert_true(typemap_encode(&c, (char *)back.data, back.len, &again, err, sizeof(err)));
        assert_memory_equal(again.data, enc.data, enc.len);
        buf_free(&enc);
        buf_free(&back);
        buf_free(&again);
    }
    /* NULL of a nullable column; an incomplete value */
    typemap_for_pg(PG_OID_INT4, 'N', -1, false, V18, 0, &c);
    unsigned char null1[] = {1};
    buf_t out;
    buf_init(&out);
    bool isnull = false;
    assert_int_equal(typemap_text(&c, null1, 1, &out, &isnull), 1);
    assert_true(isnull);
    unsigned char short_[] = {0, 1, 2};
    assert_int_equal(typemap_text(&c, short_, sizeof(short_), &out, &isnull), 0);
    buf_free(&out);
}

/* numeric's binary send form from its fields */
static size_t
numeric_bin(unsigned char *out, int ndigits, int weight, unsigned sign, int dscale,
            const int *digits)
{
    size_t n = 0;
    int v[4] = {ndigits, weight, (int)sign, dscale};
    for (int i = 0; i < 4; i++) {
        out[n++] = (unsigned char)((unsigned)v[i] >> 8);
        out[n++] = (unsigned char)v[i];
    }
    for (int i = 0; i < ndigits; i++) {
        out[n++] = (unsigned char)(digits[i] >> 8);
        out[n++] = (unsigned char)digits[i];
    }
    return n;
}

/* the binary value decodes to the same RowBinary bytes as the text value */
static void
bin_same(const typemap_col_t *c, const unsigned char *bin, size_t bl, const char *text)
{
    buf_t a, b;
    char err[200] = "";
    buf_init(&a);
    buf_init(&b);
    typemap_col_t nn = *c;
    nn.nullable = false;
    if (!typemap_encode_binary(&nn, bin, bl, &a, err, sizeof(err)))
        fail_msg("binary form of %s refused: %s", text, err);
    assert_true(typemap_encode(&nn, text, strlen(text), &b, err, sizeof(err)));
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
        fail_msg("binary form of %s differs from its text form", text);
    buf_free(&a);
    buf_free(&b);
}

static void
bin_bad(const typemap_col_t *c, const unsigned char *bin, size_t bl, const char *why)
{
    buf_t a;
    char err[300] = "";
    buf_init(&a);
    assert_false(typemap_encode_binary(c, bin, bl, &a, err, sizeof(err)));
    if (!strstr(err, why))
        fail_msg("error '%s' does not say '%s'", err, why);
    buf_free(&a);
}

static void
test_encode_binary(void **state)
{
    (void)state;
    typemap_col_t c;
    unsigned char v[128];
    /* integers, big-endian in PostgreSQL, little-endian in ClickHouse */
    typemap_for_pg(PG_OID_INT2, 'N', -1, true, V18, 0, &c);
    bin_same(&c, (const unsigned char *)"\x80\x00", 2, "-32768");
    typemap_for_pg(PG_OID_INT4, 'N', -1, true, V18, 0, &c);
    bin_same(&c, (const unsigned char *)"\xff\xff\xff\xfe", 4, "-2");
    bin_bad(&c, (const unsigned char *)"\x00\x00\x00\x00\x00\x00\x00\x01", 8, "expected 4");
    typemap_for_pg(PG_OID_INT8, 'N', -1, true, V18, 0, &c);
    bin_same(&c, (const unsigned char *)"\x7f\xff\xff\xff\xff\xff\xff\xff", 8,
             "9223372036854775807");
    typemap_for_pg(PG_OID_OID, 'N', -1, true, V18, 0, &c);
    bin_same(&c, (const unsigned char *)"\xff\xff\xff\xff", 4, "4294967295");
    typemap_for_pg(PG_OID_BOOL, 'B', -1, true, V18, 0, &c);
    bin_same(&c, (const unsigned char *)"\x01", 1, "t");
    bin_same(&c, (const unsigned char *)"\x00", 1, "f");
    /* floats: the IEEE bits as they are (text rounds; bits do not) */
    typemap_for_pg(PG_OID_FLOAT8, 'N', -1, true, V18, 0, &c);
    bin_same(&c, (const unsigned char *)"\x3f\xf8\x00\x00\x00\x00\x00\x00", 8, "1.5");
    bin_same(&c, (const unsigned char *)"\x00\x00\x00\x00\x00\x00\x00\x01", 8,
             "4.9406564584124654e-324");
    bin_same(&c, (const unsigned char *)"\xff\xf0\x00\x00\x00\x00\x00\x00", 8, "-Infinity");
    typemap_for_pg(PG_OID_FLOAT4, 'N', -1, true, V18, 0, &c);
    bin_same(&c, (const unsigned char *)"\xc0\x20\x00\x00", 4, "-2.5");
    typemap_for_pg(PG_OID_UUID, 'U', -1, true, V18, 0, &c);
    bin_same(&c,
             (const unsigned char *)"\x01\x23\x45\x67\x89\xab\xcd\xef\x00\x11\x22\x33\x44\x55\x66"
                                    "\x77",
             16, "01234567-89ab-cdef-0011-223344556677");
    typemap_for_pg(PG_OID_BYTEA, 'U', -1, true, V18, 0, &c);
    bin_same(&c, (const unsigned char *)"\x00\xff\x0a", 3, "\\x00ff0a");
    typemap_for_pg(PG_OID_TEXT_FOR_TESTS, 'S', -1, true, V18, 0, &c);
    bin_same(&c, (const unsigned char *)"a\tb\\c\n", 6, "a\tb\\c\n");

    /* numeric -> Decimal of every width */
    typemap_for_pg(PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(12, 2), true, V18, 0, &c);
    int d1[] = {1234, 5678, 9000}; /* 12345678.90 */
    bin_same(&c, v, numeric_bin(v, 3, 1, 0, 2, d1), "12345678.90");
    bin_same(&c, v, numeric_bin(v, 3, 1, 0x4000, 2, d1), "-12345678.90");
    int d2[] = {100}; /* 0.01: weight -1, digit 0100 */
    bin_same(&c, v, numeric_bin(v, 1, -1, 0, 2, d2), "0.01");
    bin_same(&c, v, numeric_bin(v, 0, 0, 0, 2, NULL), "0.00");
    int d3[] = {5}; /* 5 with trailing zero groups stripped: 50000 = 5 * 10000^1 */
    bin_same(&c, v, numeric_bin(v, 1, 1, 0, 0, d3), "50000");
    int d4[] = {1, 2345}; /* 0.00012345: too many fractional digits for scale 2 */
    int d11[] = {1234, 5678, 9012, 3456, 7890, 1234, 5678, 9012, 3456, 78}; /* 40 places */
    bin_bad(&c, v, numeric_bin(v, 2, -1, 0, 8, d4), "scale");
    int d5[] = {99, 9999, 9999, 9999}; /* 99999999999999.99 > 12 digits */
    bin_bad(&c, v, numeric_bin(v, 4, 3, 0, 2, d5), "precision");
    bin_bad(&c, v, numeric_bin(v, 0, 0, 0xC000, 0, NULL), "NaN cannot be stored");
    bin_bad(&c, v, numeric_bin(v, 0, 0, 0xD000, 0, NULL), "Infinity");
    bin_bad(&c, v, 5, "not a binary numeric");
    typemap_for_pg(PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(4, 0), true, V18, 0, &c);
    int d6[] = {9999};
    bin_same(&c, v, numeric_bin(v, 1, 0, 0x4000, 0, d6), "-9999");
    typemap_for_pg(PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(38, 0), true, V18, 0, &c);
    int d7[] = {99, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999}; /* 38 nines */
    bin_same(&c, v, numeric_bin(v, 10, 9, 0, 0, d7), "99999999999999999999999999999999999999");
    bin_same(&c, v, numeric_bin(v, 10, 9, 0x4000, 0, d7),
             "-99999999999999999999999999999999999999");
    int d8[] = {1}; /* 10^40 */
    bin_bad(&c, v, numeric_bin(v, 1, 10, 0, 0, d8), "38 digits");
    typemap_for_pg(PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(38, 38), true, V18, 0, &c);
    int d9[] = {1234, 5678, 9012, 3456, 7890, 1234, 5678, 9012, 3456, 7800};
    bin_same(&c, v, numeric_bin(v, 10, -1, 0, 38, d9), "0.12345678901234567890123456789012345678");
    bin_bad(&c, v, numeric_bin(v, 10, -1, 0, 40, d11), "scale");
    typemap_for_pg(PG_OID_NUMERIC, 'N', NUMERIC_TYPMOD(18, 6), true, V18, 0, &c);
    int d10[] = {1234, 5678, 9012, 3456}; /* 123456789012.345600 */
    bin_same(&c, v, numeric_bin(v, 4, 2, 0, 6, d10), "123456789012.345600");
    int d12[] = {12, 3456, 7890, 1234, 5600}; /* 12345678901234.56: 20 digits at scale 6 */
    bin_bad(&c, v, numeric_bin(v, 5, 3, 0, 6, d12), "precision");

    /* a NULL's zero value: as the non-Nullable column's default */
    buf_t z;
    buf_init(&z);
    typemap_for_pg(PG_OID_UUID, 'U', -1, false, V18, 0, &c);
    typemap_encode_zero(&c, &z);
    assert_int_equal(z.len, 16);
    typemap_for_pg(PG_OID_TEXT_FOR_TESTS, 'S', -1, false, V18, 0, &c);
    buf_reset(&z);
    typemap_encode_zero(&c, &z);
    assert_int_equal(z.len, 1);
    assert_int_equal(z.data[0], 0);
    buf_free(&z);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choice),  cmocka_unit_test(test_encode),
        cmocka_unit_test(test_literal), cmocka_unit_test(test_absent_and_size),
        cmocka_unit_test(test_text),    cmocka_unit_test(test_encode_binary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
