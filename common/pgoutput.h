/*
 * pgoutput: decodes the messages of PostgreSQL's pgoutput logical decoding plugin, protocol
 * version 1 (Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate, Message).
 * Zero-copy: strings and values point into the caller's buffer, arrays into the decoder's
 * scratch space; both stay valid until the next pgoutput_decode or until the buffer changes.
 * Every read is bounds-checked; a message must be consumed exactly, so truncated or padded
 * input is an error, never a crash.
 */
#ifndef PGFERRY_PGOUTPUT_H
#define PGFERRY_PGOUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PGO_MAX_COLUMNS 1664 /* PostgreSQL's MaxTupleAttributeNumber */

typedef enum {
    PGO_BEGIN = 'B',
    PGO_COMMIT = 'C',
    PGO_ORIGIN = 'O',
    PGO_RELATION = 'R',
    PGO_TYPE = 'Y',
    PGO_INSERT = 'I',
    PGO_UPDATE = 'U',
    PGO_DELETE = 'D',
    PGO_TRUNCATE = 'T',
    PGO_MESSAGE = 'M',
} pgo_kind_t;

typedef struct {
    char kind;        /* 'n' NULL, 'u' unchanged TOAST value (not sent), 't' text, 'b' binary */
    const char *data; /* 't'/'b': len bytes, not NUL-terminated */
    uint32_t len;
} pgo_value_t;

typedef struct {
    uint16_t ncols;
    const pgo_value_t *values;
} pgo_tuple_t;

typedef struct {
    uint8_t flags; /* 1: part of the replica identity key */
    const char *name;
    uint32_t type_oid;
    int32_t typmod;
} pgo_column_t;

typedef struct {
    pgo_kind_t kind;
    union {
        struct {
            uint64_t final_lsn;
            int64_t commit_time; /* microseconds since 2000-01-01 */
            uint32_t xid;
        } begin;
        struct {
            uint8_t flags;
            uint64_t commit_lsn, end_lsn;
            int64_t commit_time;
        } commit;
        struct {
            uint64_t lsn;
            const char *name;
        } origin;
        struct {
            uint32_t relid;
            const char *nspname, *relname;
            char replident; /* 'd' default, 'n' nothing, 'f' full, 'i' index */
            uint16_t ncols;
            const pgo_column_t *cols;
        } relation;
        struct {
            uint32_t oid;
            const char *nspname, *name;
        } type;
        struct { /* Insert, Update, Delete */
            uint32_t relid;
            char old_kind; /* 0 none, 'K' key columns only, 'O' the whole old row */
            pgo_tuple_t old_tuple;
            pgo_tuple_t new_tuple; /* empty for Delete */
        } change;
        struct {
            uint32_t nrels;
            uint8_t options; /* 1 CASCADE, 2 RESTART IDENTITY */
            const uint32_t *relids;
        } truncate;
        struct {
            uint8_t flags; /* 1 transactional */
            uint64_t lsn;
            const char *prefix;
            const char *content;
            uint32_t len;
        } message;
    } u;
} pgo_msg_t;

typedef struct pgoutput_decoder pgoutput_decoder_t;

pgoutput_decoder_t *pgoutput_decoder_new(void);
void pgoutput_decoder_destroy(pgoutput_decoder_t **d);

/* Decodes one message of len bytes. False with err set on unknown, truncated, oversized or
 * malformed input (nothing in *msg is then valid). */
bool pgoutput_decode(pgoutput_decoder_t *d, const uint8_t *buf, size_t len, pgo_msg_t *msg,
                     char *err, size_t errlen);

#endif
