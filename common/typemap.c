/* typemap: type choice and RowBinary encoding; no allocation beyond the output buffer. */
#include "typemap.h"
#include "hexdigit.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
set_type(typemap_col_t *o, typemap_kind_t kind, const char *inner)
{
    o->kind = kind;
    if (o->nullable)
        snprintf(o->ch_type, sizeof(o->ch_type), "Nullable(%s)", inner);
    else
        snprintf(o->ch_type, sizeof(o->ch_type), "%s", inner);
}

void
typemap_for_pg(uint32_t base_oid, char typcategory, int32_t typmod, bool not_null, long ch_version,
               unsigned flags, typemap_col_t *out)
{
    (void)ch_version; /* every choice below exists in 18.16; newer types are not needed yet */
    memset(out, 0, sizeof(*out));
    out->nullable = !not_null;
    if (typcategory == 'A') { /* arrays keep PostgreSQL's literal: any dims and bounds */
        set_type(out, TM_STRING, "String");
        return;
    }
    switch (base_oid) {
    case PG_OID_BOOL:
        set_type(out, TM_BOOL, "UInt8");
        return;
    case PG_OID_INT2:
        set_type(out, TM_INT16, "Int16");
        return;
    case PG_OID_INT4:
        set_type(out, TM_INT32, "Int32");
        return;
    case PG_OID_INT8:
        set_type(out, TM_INT64, "Int64");
        return;
    case PG_OID_OID:
        set_type(out, TM_UINT32, "UInt32");
        return;
    case PG_OID_FLOAT4:
        set_type(out, TM_FLOAT32, "Float32");
        return;
    case PG_OID_FLOAT8:
        set_type(out, TM_FLOAT64, "Float64");
        return;
    case PG_OID_UUID:
        set_type(out, TM_UUID, "UUID");
        return;
    case PG_OID_BYTEA:
        set_type(out, TM_BYTEA, "String");
        return;
    case PG_OID_NUMERIC:
        if (typmod >= 4) {
            int p = ((typmod - 4) >> 16) & 0xffff;
            int s = (typmod - 4) & 0x7ff;
            if (s & 0x400) /* PostgreSQL 15 allows a negative scale */
                s -= 0x800;
            if (p >= 1 && p <= 38 && s >= 0 && s <= p && !(flags & TYPEMAP_NUMERIC_TEXT)) {
                char t[32];
                out->precision = p;
                out->scale = s;
                snprintf(t, sizeof(t), "Decimal(%d, %d)", p, s);
                set_type(out, TM_DECIMAL, t);
                return;
            }
        }
        /* unconstrained, wider than 38 digits, a scale Decimal cannot express, or asked for as
         * text (which keeps NaN) */
        set_type(out, TM_STRING, "String");
        return;
    default:
        set_type(out, TM_STRING, "String");
        return;
    }
}

unsigned
typemap_flags_recorded(uint32_t base_oid, const char *recorded_ch_type)
{
    if (base_oid == PG_OID_NUMERIC && recorded_ch_type && strstr(recorded_ch_type, "String"))
        return TYPEMAP_NUMERIC_TEXT;
    return 0;
}

static bool
bad(char *err, size_t errlen, const char *what, const char *val, size_t len)
{
    snprintf(err, errlen, "%s: '%.*s'", what, (int)(len > 60 ? 60 : len), val);
    return false;
}

/* strtoll & co. need a terminated string; values here are short */
static bool
copy_small(const char *val, size_t len, char *tmp, size_t cap)
{
    if (len == 0 || len >= cap)
        return false;
    memcpy(tmp, val, len);
    tmp[len] = '\0';
    return true;
}

static bool
enc_int(const char *val, size_t len, long long lo, long long hi, int bytes, buf_t *out, char *err,
        size_t errlen)
{
    char tmp[32], *end;
    if (!copy_small(val, len, tmp, sizeof(tmp)))
        return bad(err, errlen, "not an integer", val, len);
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return bad(err, errlen, "not an integer or out of range", val, len);
    buf_le(out, (uint64_t)v, bytes);
    return true;
}

static bool
enc_decimal(const typemap_col_t *c, const char *val, size_t len, buf_t *out, char *err,
            size_t errlen)
{
    size_t i = 0;
    bool neg = false;
    if (len == 3 && memcmp(val, "NaN", 3) == 0)
        return bad(err, errlen,
                   "NaN cannot be stored in a Decimal column (a pipe created with --numeric text "
                   "keeps numeric(p,s) as exact text, NaN included)",
                   val, len);
    if (i < len && (val[i] == '-' || val[i] == '+'))
        neg = val[i++] == '-';
    __int128 v = 0;
    int digits = 0, frac = 0;
    bool dot = false, any = false;
    for (; i < len; i++) {
        char ch = val[i];
        if (ch == '.' && !dot) {
            dot = true;
            continue;
        }
        if (ch < '0' || ch > '9')
            return bad(err, errlen, "not a number", val, len);
        any = true;
        if (dot)
            frac++;
        if (v != 0 || ch != '0')
            digits++;
        v = v * 10 + (ch - '0');
        if (digits > 38)
            return bad(err, errlen, "more than 38 digits", val, len);
    }
    if (!any || frac > c->scale)
        return bad(err, errlen, "does not fit the column's scale", val, len);
    for (; frac < c->scale; frac++, digits += v != 0)
        v *= 10;
    if (digits > c->precision)
        return bad(err, errlen, "does not fit the column's precision", val, len);
    if (neg)
        v = -v;
    int bytes = c->precision <= 9 ? 4 : c->precision <= 18 ? 8 : 16;
    if (bytes == 16) {
        unsigned __int128 u = (unsigned __int128)v;
        buf_le(out, (uint64_t)u, 8);
        buf_le(out, (uint64_t)(u >> 64), 8);
    } else {
        buf_le(out, (uint64_t)(int64_t)v, bytes);
    }
    return true;
}

static bool
enc_uuid(const char *val, size_t len, buf_t *out, char *err, size_t errlen)
{
    uint64_t hi = 0, lo = 0;
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        if (val[i] == '-')
            continue;
        int h = hexdigit_value(val[i]);
        if (h < 0 || n >= 32)
            return bad(err, errlen, "not a UUID", val, len);
        if (n < 16)
            hi = hi << 4 | (uint64_t)h;
        else
            lo = lo << 4 | (uint64_t)h;
        n++;
    }
    if (n != 32)
        return bad(err, errlen, "not a UUID", val, len);
    /* ClickHouse keeps a UUID as a UInt128: the high half first, each half little-endian */
    buf_le(out, hi, 8);
    buf_le(out, lo, 8);
    return true;
}

static bool
enc_bytea(const char *val, size_t len, buf_t *out, char *err, size_t errlen)
{
    if (len < 2 || val[0] != '\\' || val[1] != 'x' || (len - 2) % 2 != 0)
        return bad(err, errlen, "bytea not in hex output format", val, len);
    size_t n = (len - 2) / 2;
    buf_varint(out, n);
    if (!buf_reserve(out, n))
        return true; /* oom is sticky; the caller checks it */
    for (size_t i = 0; i < n; i++) {
        int a = hexdigit_value(val[2 + 2 * i]), b = hexdigit_value(val[3 + 2 * i]);
        if (a < 0 || b < 0)
            return bad(err, errlen, "bad hex digit in bytea", val, len);
        out->data[out->len++] = (unsigned char)(a << 4 | b);
    }
    return true;
}

bool
typemap_encode(const typemap_col_t *c, const char *val, size_t len, buf_t *out, char *err,
               size_t errlen)
{
    if (!val) {
        if (!c->nullable) {
            snprintf(err, errlen, "NULL in a NOT NULL column");
            return false;
        }
        buf_byte(out, 1);
        return true;
    }
    if (c->nullable)
        buf_byte(out, 0);
    char tmp[64], *end;
    switch (c->kind) {
    case TM_STRING:
        buf_varint(out, len);
        buf_append(out, val, len);
        return true;
    case TM_BOOL:
        if (len == 1 && (val[0] == 't' || val[0] == 'f')) {
            buf_byte(out, val[0] == 't');
            return true;
        }
        return bad(err, errlen, "not a boolean", val, len);
    case TM_INT16:
        return enc_int(val, len, INT16_MIN, INT16_MAX, 2, out, err, errlen);
    case TM_INT32:
        return enc_int(val, len, INT32_MIN, INT32_MAX, 4, out, err, errlen);
    case TM_INT64:
        return enc_int(val, len, INT64_MIN, INT64_MAX, 8, out, err, errlen);
    case TM_UINT32:
        return enc_int(val, len, 0, UINT32_MAX, 4, out, err, errlen);
    case TM_FLOAT32:
    case TM_FLOAT64: {
        /* strtod/strtof round correctly and accept NaN, Infinity, -Infinity */
        if (!copy_small(val, len, tmp, sizeof(tmp)))
            return bad(err, errlen, "not a float", val, len);
        errno = 0;
        if (c->kind == TM_FLOAT32) {
            float f = strtof(tmp, &end);
            uint32_t bits;
            if (*end || (errno == ERANGE && isinf(f) && strncmp(tmp + (tmp[0] == '-'), "Inf", 3)))
                return bad(err, errlen, "not a float4", val, len);
            memcpy(&bits, &f, 4);
            buf_le(out, bits, 4);
        } else {
            double d = strtod(tmp, &end);
            uint64_t bits;
            if (*end || (errno == ERANGE && isinf(d) && strncmp(tmp + (tmp[0] == '-'), "Inf", 3)))
                return bad(err, errlen, "not a float8", val, len);
            memcpy(&bits, &d, 8);
            buf_le(out, bits, 8);
        }
        return true;
    }
    case TM_DECIMAL:
        return enc_decimal(c, val, len, out, err, errlen);
    case TM_UUID:
        return enc_uuid(val, len, out, err, errlen);
    case TM_BYTEA:
        return enc_bytea(val, len, out, err, errlen);
    }
    snprintf(err, errlen, "unknown column kind %d", (int)c->kind);
    return false;
}

/* RowBinary width of the fixed-size kinds; 0 for the length-prefixed ones */
static size_t
fixed_width(const typemap_col_t *c)
{
    switch (c->kind) {
    case TM_BOOL:
        return 1;
    case TM_INT16:
        return 2;
    case TM_INT32:
    case TM_UINT32:
    case TM_FLOAT32:
        return 4;
    case TM_INT64:
    case TM_FLOAT64:
        return 8;
    case TM_DECIMAL:
        return c->precision <= 9 ? 4 : c->precision <= 18 ? 8 : 16;
    case TM_UUID:
        return 16;
    case TM_STRING:
    case TM_BYTEA:
        return 0;
    }
    return 0;
}

void
typemap_encode_zero(const typemap_col_t *c, buf_t *out)
{
    size_t w = fixed_width(c);
    if (w == 0) {
        buf_byte(out, 0); /* empty string */
        return;
    }
    if (!buf_reserve(out, w))
        return;
    memset(out->data + out->len, 0, w);
    out->len += w;
}

static uint64_t
get_be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static bool
bin_size(const char *what, size_t want, size_t len, char *err, size_t errlen)
{
    if (len == want)
        return true;
    snprintf(err, errlen,
             "%s: a binary value of %zu bytes, expected %zu (the column's type changed?)", what,
             len, want);
    return false;
}

static const uint64_t pow10_u64[20] = {1ull,
                                       10ull,
                                       100ull,
                                       1000ull,
                                       10000ull,
                                       100000ull,
                                       1000000ull,
                                       10000000ull,
                                       100000000ull,
                                       1000000000ull,
                                       10000000000ull,
                                       100000000000ull,
                                       1000000000000ull,
                                       10000000000000ull,
                                       100000000000000ull,
                                       1000000000000000ull,
                                       10000000000000000ull,
                                       100000000000000000ull,
                                       1000000000000000000ull,
                                       10000000000000000000ull};

/* 10^e for e <= 38 */
static unsigned __int128
pow10_u128(int e)
{
    if (e <= 19)
        return pow10_u64[e];
    return (unsigned __int128)pow10_u64[19] * pow10_u64[e - 19];
}

/* numeric's binary form: int16 ndigits, int16 weight, uint16 sign, uint16 dscale, then ndigits
 * base-10000 digits; the value is the sum of digit[i] * 10000^(weight - i) */
static bool
bin_decimal(const typemap_col_t *c, const unsigned char *val, size_t len, buf_t *out, char *err,
            size_t errlen)
{
    if (len < 8) {
        snprintf(err, errlen, "not a binary numeric (%zu bytes)", len);
        return false;
    }
    int ndigits = (int16_t)get_be(val, 2), weight = (int16_t)get_be(val + 2, 2);
    unsigned sign = (unsigned)get_be(val + 4, 2);
    if (ndigits < 0 || len != 8 + 2 * (size_t)ndigits) {
        snprintf(err, errlen, "not a binary numeric (%zu bytes)", len);
        return false;
    }
    if (sign == 0xC000) {
        snprintf(err, errlen,
                 "NaN cannot be stored in a Decimal column (a pipe created with --numeric text "
                 "keeps numeric(p,s) as exact text, NaN included): 'NaN'");
        return false;
    }
    if (sign != 0 && sign != 0x4000) {
        snprintf(err, errlen, "%s cannot be stored in a Decimal column",
                 sign == 0xD000   ? "Infinity"
                 : sign == 0xF000 ? "-Infinity"
                                  : "a numeric of unknown sign");
        return false;
    }
    /* the value times 10^scale, exactly, below 10^38 (no 128-bit division on this path: it
     * runs for every numeric value a snapshot loads) */
    unsigned __int128 v = 0;
    for (int i = 0; i < ndigits; i++) {
        unsigned d = (unsigned)get_be(val + 8 + 2 * (size_t)i, 2);
        if (d > 9999) {
            snprintf(err, errlen, "not a binary numeric (digit %u)", d);
            return false;
        }
        if (d == 0)
            continue;
        int e = 4 * (weight - i) + c->scale;
        if (e < 0) {
            if (e <= -4 || d % (unsigned)pow10_u64[-e] != 0) {
                snprintf(err, errlen, "does not fit the column's scale %d", c->scale);
                return false;
            }
            v += d / (unsigned)pow10_u64[-e];
            continue;
        }
        /* d < 10^4: d * 10^e < 10^38 when e <= 34; above, only small enough digits */
        if (e > 38 || (e > 34 && d >= pow10_u64[38 - e])) {
            snprintf(err, errlen, "more than 38 digits");
            return false;
        }
        v += e <= 15 ? (unsigned __int128)(d * pow10_u64[e]) : (unsigned __int128)d * pow10_u128(e);
        if (v >= pow10_u128(38)) {
            snprintf(err, errlen, "more than 38 digits");
            return false;
        }
    }
    if (v >= pow10_u128(c->precision)) {
        snprintf(err, errlen, "does not fit the column's precision %d", c->precision);
        return false;
    }
    if (sign == 0x4000)
        v = -v; /* two's complement, as ClickHouse keeps it */
    int bytes = c->precision <= 9 ? 4 : c->precision <= 18 ? 8 : 16;
    buf_le(out, (uint64_t)v, bytes < 8 ? bytes : 8);
    if (bytes == 16)
        buf_le(out, (uint64_t)(v >> 64), 8);
    return true;
}

bool
typemap_encode_binary(const typemap_col_t *c, const unsigned char *val, size_t len, buf_t *out,
                      char *err, size_t errlen)
{
    switch (c->kind) {
    case TM_STRING:
    case TM_BYTEA: /* bytea's binary form is its bytes */
        buf_varint(out, len);
        buf_append(out, val, len);
        return true;
    case TM_BOOL:
        if (!bin_size("bool", 1, len, err, errlen))
            return false;
        buf_byte(out, val[0] != 0);
        return true;
    case TM_INT16:
        if (!bin_size("int2", 2, len, err, errlen))
            return false;
        buf_le(out, get_be(val, 2), 2);
        return true;
    case TM_INT32:
    case TM_UINT32:
    case TM_FLOAT32: /* IEEE bits, big-endian: exact */
        if (!bin_size(c->kind == TM_INT32    ? "int4"
                      : c->kind == TM_UINT32 ? "oid"
                                             : "float4",
                      4, len, err, errlen))
            return false;
        buf_le(out, get_be(val, 4), 4);
        return true;
    case TM_INT64:
    case TM_FLOAT64:
        if (!bin_size(c->kind == TM_INT64 ? "int8" : "float8", 8, len, err, errlen))
            return false;
        buf_le(out, get_be(val, 8), 8);
        return true;
    case TM_UUID:
        if (!bin_size("uuid", 16, len, err, errlen))
            return false;
        /* as enc_uuid: the high half first, each half little-endian */
        buf_le(out, get_be(val, 8), 8);
        buf_le(out, get_be(val + 8, 8), 8);
        return true;
    case TM_DECIMAL:
        return bin_decimal(c, val, len, out, err, errlen);
    }
    snprintf(err, errlen, "unknown column kind %d", (int)c->kind);
    return false;
}

void
typemap_encode_absent(const typemap_col_t *c, buf_t *out)
{
    if (c->nullable) {
        buf_byte(out, 1);
        return;
    }
    size_t w = fixed_width(c);
    if (w == 0) {
        buf_byte(out, 0); /* empty string */
        return;
    }
    for (size_t i = 0; i < w; i++)
        buf_byte(out, 0);
}

size_t
typemap_value_size(const typemap_col_t *c, const unsigned char *data, size_t len)
{
    size_t pos = 0;
    if (c->nullable) {
        if (len < 1)
            return 0;
        if (data[0] == 1)
            return 1;
        pos = 1;
    }
    size_t w = fixed_width(c);
    if (w)
        return len - pos >= w ? pos + w : 0;
    uint64_t n = 0;
    for (int shift = 0; pos < len && shift < 64; shift += 7) {
        unsigned char b = data[pos++];
        n |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return len - pos >= n ? pos + (size_t)n : 0;
    }
    return 0;
}

static void
literal_bytes(const unsigned char *p, size_t n, buf_t *out)
{
    static const char hx[] = "0123456789ABCDEF";
    buf_byte(out, '\'');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = p[i];
        if (ch == '\'' || ch == '\\') {
            buf_byte(out, '\\');
            buf_byte(out, ch);
        } else if (ch < 0x20 || ch >= 0x7f) {
            /* every other byte as \xHH: exact whatever the encoding */
            buf_append(out, "\\x", 2);
            buf_byte(out, (unsigned char)hx[ch >> 4]);
            buf_byte(out, (unsigned char)hx[ch & 15]);
        } else {
            buf_byte(out, ch);
        }
    }
    buf_byte(out, '\'');
}

bool
typemap_literal(const typemap_col_t *c, const char *val, size_t len, buf_t *out, char *err,
                size_t errlen)
{
    /* the exact bytes of the value come from the RowBinary encoder, so every kind shares its
     * validation; the literal then rebuilds the same value on the server */
    typemap_col_t plain = *c;
    plain.nullable = false;
    buf_t enc;
    buf_init(&enc);
    if (!typemap_encode(&plain, val, len, &enc, err, errlen)) {
        buf_free(&enc);
        return false;
    }
    char tmp[96];
    switch (c->kind) {
    case TM_STRING:
        literal_bytes((const unsigned char *)val, len, out);
        break;
    case TM_BYTEA: {
        size_t hdr = typemap_value_size(&plain, enc.data, enc.len) - (len - 2) / 2;
        literal_bytes(enc.data + hdr, enc.len - hdr, out);
        break;
    }
    case TM_BOOL:
        buf_byte(out, enc.data[0] ? '1' : '0');
        break;
    case TM_INT16:
    case TM_INT32:
    case TM_INT64:
    case TM_UINT32:
        snprintf(tmp, sizeof(tmp), "to%s('%.*s')",
                 c->kind == TM_INT16   ? "Int16"
                 : c->kind == TM_INT32 ? "Int32"
                 : c->kind == TM_INT64 ? "Int64"
                                       : "UInt32",
                 (int)len, val);
        buf_append(out, tmp, strlen(tmp));
        break;
    case TM_FLOAT32:
    case TM_FLOAT64:
        /* bit-exact: reinterpret the encoded bytes (ClickHouse parses text floats inexactly) */
        buf_append(out, c->kind == TM_FLOAT32 ? "reinterpretAsFloat32(" : "reinterpretAsFloat64(",
                   21);
        literal_bytes(enc.data, enc.len, out);
        buf_byte(out, ')');
        break;
    case TM_DECIMAL:
        snprintf(tmp, sizeof(tmp), "CAST('%.*s' AS Decimal(%d, %d))", (int)(len > 60 ? 60 : len),
                 val, c->precision, c->scale);
        buf_append(out, tmp, strlen(tmp));
        break;
    case TM_UUID:
        snprintf(tmp, sizeof(tmp), "toUUID('%.*s')", (int)(len > 40 ? 40 : len), val);
        buf_append(out, tmp, strlen(tmp));
        break;
    }
    buf_free(&enc);
    return true;
}

static void
put_hex(buf_t *out, const unsigned char *p, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    if (!buf_reserve(out, 2 * n))
        return;
    for (size_t i = 0; i < n; i++) {
        out->data[out->len++] = (unsigned char)hx[p[i] >> 4];
        out->data[out->len++] = (unsigned char)hx[p[i] & 15];
    }
}

static uint64_t
get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

size_t
typemap_text(const typemap_col_t *c, const unsigned char *data, size_t len, buf_t *out,
             bool *is_null)
{
    *is_null = false;
    size_t pos = 0;
    if (c->nullable) {
        if (len < 1)
            return 0;
        if (data[0] == 1) {
            *is_null = true;
            return 1;
        }
        pos = 1;
    }
    typemap_col_t plain = *c;
    plain.nullable = false;
    size_t n = typemap_value_size(&plain, data + pos, len - pos);
    if (n == 0)
        return 0;
    const unsigned char *p = data + pos;
    char tmp[80];
    int tl = 0;
    switch (c->kind) {
    case TM_STRING:
    case TM_BYTEA: {
        size_t hdr = 0;
        while (p[hdr] & 0x80)
            hdr++;
        hdr++;
        if (c->kind == TM_STRING) {
            buf_append(out, p + hdr, n - hdr);
        } else {
            buf_append(out, "\\x", 2);
            put_hex(out, p + hdr, n - hdr);
        }
        return pos + n;
    }
    case TM_BOOL:
        buf_byte(out, p[0] ? 't' : 'f');
        return pos + n;
    case TM_INT16:
        tl = snprintf(tmp, sizeof(tmp), "%d", (int)(int16_t)get_le(p, 2));
        break;
    case TM_INT32:
        tl = snprintf(tmp, sizeof(tmp), "%ld", (long)(int32_t)get_le(p, 4));
        break;
    case TM_INT64:
        tl = snprintf(tmp, sizeof(tmp), "%lld", (long long)(int64_t)get_le(p, 8));
        break;
    case TM_UINT32:
        tl = snprintf(tmp, sizeof(tmp), "%lu", (unsigned long)get_le(p, 4));
        break;
    case TM_FLOAT32:
    case TM_FLOAT64: {
        double d;
        if (c->kind == TM_FLOAT32) {
            uint32_t bits = (uint32_t)get_le(p, 4);
            float f;
            memcpy(&f, &bits, 4);
            d = f;
        } else {
            uint64_t bits = get_le(p, 8);
            memcpy(&d, &bits, 8);
        }
        if (isnan(d))
            tl = snprintf(tmp, sizeof(tmp), "NaN");
        else if (isinf(d))
            tl = snprintf(tmp, sizeof(tmp), "%sInfinity", d < 0 ? "-" : "");
        else /* enough digits to read back the same bits */
            tl = snprintf(tmp, sizeof(tmp), c->kind == TM_FLOAT32 ? "%.9g" : "%.17g", d);
        break;
    }
    case TM_DECIMAL: {
        __int128 v;
        if (n == 16) {
            unsigned __int128 u = (unsigned __int128)get_le(p + 8, 8) << 64 | get_le(p, 8);
            v = (__int128)u;
        } else if (n == 8) {
            v = (int64_t)get_le(p, 8);
        } else {
            v = (int32_t)get_le(p, 4);
        }
        bool neg = v < 0;
        unsigned __int128 u = neg ? (unsigned __int128)(-(v + 1)) + 1 : (unsigned __int128)v;
        char digits[48];
        int nd = 0;
        do {
            digits[nd++] = (char)('0' + (int)(u % 10));
            u /= 10;
        } while (u);
        while (nd <= c->scale)
            digits[nd++] = '0';
        if (neg)
            tmp[tl++] = '-';
        for (int i = nd - 1; i >= 0; i--) {
            tmp[tl++] = digits[i];
            if (i == c->scale && i > 0)
                tmp[tl++] = '.';
        }
        break;
    }
    case TM_UUID: {
        /* high 64 bits then low, each little-endian */
        unsigned char be[16];
        uint64_t hi = get_le(p, 8), lo = get_le(p + 8, 8);
        for (int i = 0; i < 8; i++) {
            be[i] = (unsigned char)(hi >> (56 - 8 * i));
            be[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
        }
        static const int groups[] = {4, 2, 2, 2, 6};
        buf_t h = {(unsigned char *)tmp, 0, sizeof(tmp), false};
        int at = 0;
        for (int g = 0; g < 5; g++) {
            if (g)
                buf_byte(&h, '-');
            put_hex(&h, be + at, (size_t)groups[g]);
            at += groups[g];
        }
        tl = (int)h.len;
        break;
    }
    }
    buf_append(out, tmp, (size_t)tl);
    return pos + n;
}
