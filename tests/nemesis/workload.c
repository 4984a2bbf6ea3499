/*
 * pgferry-test-workload: the randomized workload of the differential test (tests/nemesis/run).
 * Creates a schema of several tables (single and composite keys, a DEFERRABLE key, TOASTed text
 * and jsonb, arrays, numeric, floats, nullable columns, a partitioned table) and runs SESSIONS
 * concurrent sessions of random transactions against it for SECONDS: inserts, updates (with and
 * without the TOASTed columns), key changes, deletes, a key deleted and inserted again by
 * different sessions, multi-row statements, savepoints and rollbacks, transactions over several
 * tables, large transactions, TRUNCATE of a table or of one partition, and (session 0 only)
 * ADD, DROP and RENAME COLUMN. Every choice comes from the seed; errors the database raises
 * (unique violations, deadlocks, a server restarting) roll back and go on.
 *
 *   pgferry-test-workload setup  URI SCHEMA SEED
 *   pgferry-test-workload run    URI SCHEMA SEED SESSIONS SECONDS JOURNAL
 *
 * The journal gets one line per schema change that committed ("add T C", "drop T C",
 * "rename T OLD NEW") so the comparison knows each column's ClickHouse name. The last line of
 * output counts what committed.
 */
#include <libpq-fe.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KEYS 300 /* a small key space: sessions meet on the same keys */

static uint64_t rng;

static uint64_t
next(void)
{
    /* splitmix64 */
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int
pick(int n)
{
    return (int)(next() % (uint64_t)n);
}

static bool
chance(int percent)
{
    return pick(100) < percent;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    char *d;
    size_t len, cap;
} sb_t;

static void
sb_add(sb_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->d ? b->d + b->len : NULL, b->d ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->d && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 1024;
        while (cap <= b->len + (size_t)n)
            cap *= 2;
        char *d = realloc(b->d, cap);
        if (!d)
            abort();
        b->d = d;
        b->cap = cap;
    }
}

static const char *S; /* schema */

/* ---- values -----------------------------------------------------------------------------------
 */

/* A text literal: short, or a large incompressible value (stored out of line), or NULL. */
static void
text_value(sb_t *b, bool allow_null)
{
    int r = pick(100);
    if (allow_null && r < 10) {
        sb_add(b, "NULL");
    } else if (r < 30) {
        /* a few kB of md5 text (incompressible enough to be stored out of line) */
        sb_add(b, "(SELECT string_agg(md5(g::text || '%llu'), '') FROM generate_series(1, %d) g)",
               (unsigned long long)next(), 60 + pick(200));
    } else {
        static const char *words[] = {"alpha",     "beta", "it's",      "back\\slash", "ünïcödé",
                                      "tab\there", "",     "new\nline", "\"quoted\"",  "%"};
        sb_add(b, "E'");
        const char *w = words[pick(10)];
        for (const char *p = w; *p; p++) {
            if (*p == '\'')
                sb_add(b, "''");
            else if (*p == '\\')
                sb_add(b, "\\\\");
            else if (*p == '\n')
                sb_add(b, "\\n");
            else if (*p == '\t')
                sb_add(b, "\\t");
            else
                sb_add(b, "%c", *p);
        }
        sb_add(b, " %d'", pick(100000));
    }
}

static void
json_value(sb_t *b)
{
    if (chance(10)) {
        sb_add(b, "NULL");
    } else if (chance(20)) {
        sb_add(b, "(SELECT jsonb_agg(md5(g::text || '%llu')) FROM generate_series(1, %d) g)",
               (unsigned long long)next(), 100 + pick(200));
    } else {
        sb_add(b, "'{\"a\": %d, \"b\": [1, 2, null], \"c\": {\"d\": \"e%d\"}}'", pick(1000),
               pick(10));
    }
}

static void
array_value(sb_t *b)
{
    int n = pick(5);
    if (n == 0 && chance(50)) {
        sb_add(b, "NULL");
        return;
    }
    sb_add(b, "ARRAY[");
    for (int i = 0; i < n; i++) {
        if (chance(20))
            sb_add(b, "%sNULL", i ? "," : "");
        else
            sb_add(b, "%s%d", i ? "," : "", pick(2000) - 1000);
    }
    sb_add(b, "]::int[]");
}

static void
numeric_value(sb_t *b)
{
    if (chance(10))
        sb_add(b, "NULL");
    else
        sb_add(b, "%s%d.%03d", chance(30) ? "-" : "", pick(1000000), pick(1000));
}

static void
float_value(sb_t *b)
{
    static const char *special[] = {"'NaN'",  "'Infinity'", "'-Infinity'", "'-0'",
                                    "1e-300", "0.1",        "NULL"};
    if (chance(15))
        sb_add(b, "%s::float8", special[pick(7)]);
    else
        sb_add(b, "%d.%d", pick(100000) - 50000, pick(1000000));
}

/* ---- statements -------------------------------------------------------------------------------
 */

typedef enum { T_A, T_B, T_C, T_P, T_D, NTABLES } table_t;
static const char *tname[] = {"a", "b", "c", "p", "d"};

static void
where_key(sb_t *b, table_t t, int k)
{
    switch (t) {
    case T_B:
        sb_add(b, "k1 = %d AND k2 = 'k%d'", k % 30, k);
        break;
    case T_P:
        sb_add(b, "id = %d AND region = %d", k, k % 4);
        break;
    default:
        sb_add(b, "id = %d", k);
    }
}

static void
insert_row(sb_t *b, table_t t, int k)
{
    switch (t) {
    case T_A:
        sb_add(b, "INSERT INTO %s.a (id, n, t, big, j, arr, num, f, flag) VALUES (%d, %d, ", S, k,
               pick(1000));
        text_value(b, true);
        sb_add(b, ", ");
        text_value(b, true);
        sb_add(b, ", ");
        json_value(b);
        sb_add(b, ", ");
        array_value(b);
        sb_add(b, ", ");
        numeric_value(b);
        sb_add(b, ", ");
        float_value(b);
        sb_add(b, ", %s)", chance(10) ? "NULL" : chance(50) ? "true" : "false");
        break;
    case T_B:
        sb_add(b, "INSERT INTO %s.b (k1, k2, v, big) VALUES (%d, 'k%d', ", S, k % 30, k);
        text_value(b, true);
        sb_add(b, ", ");
        text_value(b, true);
        sb_add(b, ")");
        break;
    case T_C:
        sb_add(b, "INSERT INTO %s.c (id, v, big) VALUES (%d, ", S, k);
        text_value(b, true);
        sb_add(b, ", ");
        text_value(b, true);
        sb_add(b, ")");
        break;
    case T_P:
        sb_add(b, "INSERT INTO %s.p (id, region, v, big) VALUES (%d, %d, ", S, k, k % 4);
        text_value(b, true);
        sb_add(b, ", ");
        text_value(b, true);
        sb_add(b, ")");
        break;
    case T_D:
        sb_add(b, "INSERT INTO %s.d (id, v) VALUES (%d, ", S, k);
        text_value(b, true);
        sb_add(b, ")");
        break;
    default:
        break;
    }
}

static void
update_row(sb_t *b, table_t t, int k)
{
    sb_add(b, "UPDATE %s.%s SET ", S, tname[t]);
    switch (t) {
    case T_A:
        switch (pick(5)) {
        case 0:
            sb_add(b, "n = n + 1"); /* the TOASTed columns unchanged */
            break;
        case 1:
            sb_add(b, "big = ");
            text_value(b, true);
            break;
        case 2:
            sb_add(b, "j = ");
            json_value(b);
            sb_add(b, ", num = ");
            numeric_value(b);
            break;
        case 3:
            sb_add(b, "arr = ");
            array_value(b);
            sb_add(b, ", f = ");
            float_value(b);
            break;
        default:
            sb_add(b, "id = %d", pick(KEYS)); /* a key change */
        }
        break;
    case T_B:
        if (chance(25))
            sb_add(b, "k2 = 'k%d'", pick(KEYS)); /* part of the key changes */
        else if (chance(50))
            sb_add(b, "v = v || 'x'");
        else {
            sb_add(b, "big = ");
            text_value(b, true);
        }
        break;
    case T_C:
        if (chance(20))
            sb_add(b, "id = %d", pick(KEYS));
        else
            sb_add(b, "v = coalesce(v, '') || 'y'");
        break;
    case T_P:
        if (chance(20))
            sb_add(b, "region = (region + 1) %% 4"); /* moves the row to another partition */
        else
            sb_add(b, "v = coalesce(v, '') || 'z'");
        break;
    case T_D:
        sb_add(b, "v = coalesce(v, '') || 'd'");
        break;
    default:
        break;
    }
    sb_add(b, " WHERE ");
    if (chance(10) && t != T_B && t != T_P)
        sb_add(b, "id BETWEEN %d AND %d", k, k + pick(20));
    else
        where_key(b, t, k);
}

static void
delete_row(sb_t *b, table_t t, int k)
{
    sb_add(b, "DELETE FROM %s.%s WHERE ", S, tname[t]);
    if (chance(10) && t != T_B && t != T_P)
        sb_add(b, "id BETWEEN %d AND %d", k, k + pick(10));
    else
        where_key(b, t, k);
}

/* ---- sessions ---------------------------------------------------------------------------------
 */

typedef struct {
    PGconn *pg;
    const char *uri;
    FILE *journal;
    int id;
    unsigned long committed, rolled_back, failed, statements, ddl;
    int ddl_seq;
} session_t;

static bool
connect_session(session_t *s)
{
    for (int attempt = 0; attempt < 600; attempt++) {
        if (s->pg)
            PQfinish(s->pg);
        s->pg = PQconnectdb(s->uri);
        if (PQstatus(s->pg) == CONNECTION_OK)
            return true;
        usleep(100 * 1000); /* the server may be restarting (a fault of the test) */
    }
    return false;
}

/* Runs sql; false on an error (the transaction is then aborted). */
static bool
exec(session_t *s, const char *sql)
{
    PGresult *r = PQexec(s->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    PQclear(r);
    if (!ok && PQstatus(s->pg) != CONNECTION_OK)
        connect_session(s);
    return ok;
}

static void
ddl(session_t *s)
{
    /* session 0 only: columns of table d come and go */
    sb_t b = {0};
    char line[200];
    int what = pick(3);
    s->ddl_seq++;
    char q[300];
    snprintf(q, sizeof(q),
             "SELECT attname FROM pg_attribute WHERE attrelid = '%s.d'::regclass AND attnum > 2 "
             "AND NOT attisdropped ORDER BY attnum",
             S);
    PGresult *r = PQexec(s->pg, q);
    int ncols = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : 0;
    char victim[64] = "";
    if (ncols > 0)
        snprintf(victim, sizeof(victim), "%s", PQgetvalue(r, pick(ncols), 0));
    PQclear(r);
    if (what == 0 || !victim[0]) {
        char col[64];
        snprintf(col, sizeof(col), "c%d_%d", s->id, s->ddl_seq);
        sb_add(&b, "ALTER TABLE %s.d ADD COLUMN %s %s", S, col, chance(50) ? "int" : "text");
        snprintf(line, sizeof(line), "add d %s", col);
    } else if (what == 1) {
        sb_add(&b, "ALTER TABLE %s.d DROP COLUMN %s", S, victim);
        snprintf(line, sizeof(line), "drop d %s", victim);
    } else {
        char col[64];
        snprintf(col, sizeof(col), "r%d_%d", s->id, s->ddl_seq);
        sb_add(&b, "ALTER TABLE %s.d RENAME COLUMN %s TO %s", S, victim, col);
        snprintf(line, sizeof(line), "rename d %s %s", victim, col);
    }
    if (exec(s, b.d)) {
        fprintf(s->journal, "%s\n", line);
        fflush(s->journal);
        s->ddl++;
        /* new rows use the new column */
        if (what != 1) {
            sb_t u = {0};
            sb_add(&u, "UPDATE %s.d SET v = v WHERE id < 10", S);
            exec(s, u.d);
            free(u.d);
        }
    }
    free(b.d);
}

static void
transaction(session_t *s)
{
    if (s->id == 0 && chance(3)) {
        ddl(s); /* on its own (autocommit): the journal then holds only what committed */
        return;
    }
    sb_t b = {0};
    bool ok = exec(s, "BEGIN");
    int n = 1 + pick(6);
    bool large = chance(2);
    if (large) {
        /* a large transaction: many rows with large values in pieces */
        table_t t = chance(50) ? T_A : T_P;
        int base = 1000 + pick(100000);
        if (t == T_A)
            sb_add(&b,
                   "INSERT INTO %s.a (id, n, t, big, j, arr, num, f, flag) SELECT g, g %% 1000, "
                   "md5(g::text), repeat(md5(g::text), 40 + g %% 50), '{\"big\": 1}', ARRAY[g], "
                   "g / 7.0, g * 1.5, g %% 2 = 0 FROM generate_series(%d, %d) g "
                   "ON CONFLICT DO NOTHING",
                   S, base, base + 500 + pick(2000));
        else
            sb_add(&b,
                   "INSERT INTO %s.p (id, region, v, big) SELECT g, g %% 4, md5(g::text), "
                   "repeat(md5(g::text), 40 + g %% 50) FROM generate_series(%d, %d) g "
                   "ON CONFLICT DO NOTHING",
                   S, base, base + 500 + pick(2000));
        ok = ok && exec(s, b.d);
        b.len = 0;
        sb_add(&b, "UPDATE %s.%s SET %s WHERE id BETWEEN %d AND %d", S, tname[t],
               t == T_A ? "n = n + 1" : "v = v || '!'", base, base + 300);
        ok = ok && exec(s, b.d);
        b.len = 0;
        sb_add(&b, "DELETE FROM %s.%s WHERE id BETWEEN %d AND %d AND id %% 3 = 0", S, tname[t],
               base, base + 2500);
        ok = ok && exec(s, b.d);
    }
    for (int i = 0; ok && i < n; i++) {
        table_t t = (table_t)pick(NTABLES);
        int k = pick(KEYS);
        bool sp = chance(20);
        b.len = 0;
        if (sp)
            exec(s, "SAVEPOINT s");
        int op = pick(100);
        if (op < 30) {
            insert_row(&b, t, k);
        } else if (op < 65) {
            update_row(&b, t, k);
        } else if (op < 85) {
            delete_row(&b, t, k);
        } else if (op < 95) {
            /* delete and insert the same key again */
            delete_row(&b, t, k);
            sb_add(&b, "; ");
            insert_row(&b, t, k);
        } else if (op < 98) {
            if (t == T_P && chance(70))
                sb_add(&b, "TRUNCATE %s.p_%d", S, pick(4)); /* one partition */
            else
                sb_add(&b, "TRUNCATE %s.%s", S, tname[t]);
        } else {
            update_row(&b, t, k);
        }
        s->statements++;
        bool done = exec(s, b.d);
        if (sp) {
            if (!done || chance(30))
                done = exec(s, "ROLLBACK TO SAVEPOINT s"); /* the savepoint's work goes */
            else
                exec(s, "RELEASE SAVEPOINT s");
        }
        ok = done;
    }
    if (ok && chance(10)) {
        exec(s, "ROLLBACK");
        s->rolled_back++;
    } else if (ok && exec(s, "COMMIT")) {
        s->committed++;
    } else {
        exec(s, "ROLLBACK");
        s->failed++;
    }
    free(b.d);
}

static int
run_session(session_t *s, double deadline)
{
    if (!connect_session(s))
        return 1;
    exec(s, "SET lock_timeout = '2s'");
    exec(s, "SET statement_timeout = '60s'");
    while (now_s() < deadline) {
        transaction(s);
        if (PQstatus(s->pg) != CONNECTION_OK && !connect_session(s))
            return 1;
        if (chance(5))
            usleep((useconds_t)(pick(50) * 1000));
    }
    printf("session %d: %lu committed, %lu rolled back, %lu failed, %lu statements, %lu ddl\n",
           s->id, s->committed, s->rolled_back, s->failed, s->statements, s->ddl);
    PQfinish(s->pg);
    return 0;
}

static int
setup(const char *uri)
{
    PGconn *pg = PQconnectdb(uri);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "workload: %s", PQerrorMessage(pg));
        return 1;
    }
    sb_t b = {0};
    sb_add(&b,
           "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s;"
           "CREATE TABLE %s.a (id int PRIMARY KEY, n int, t text, big text, j jsonb, arr int[],"
           "  num numeric(12,3), f float8, flag boolean);"
           "ALTER TABLE %s.a ALTER COLUMN big SET STORAGE EXTERNAL;"
           "CREATE TABLE %s.b (k1 int, k2 text, v text, big text, PRIMARY KEY (k1, k2));"
           "ALTER TABLE %s.b ALTER COLUMN big SET STORAGE EXTERNAL;"
           /* a deferrable key cannot be the replica identity: FULL */
           "CREATE TABLE %s.c (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED, v text, big text);"
           "ALTER TABLE %s.c REPLICA IDENTITY FULL;"
           "CREATE TABLE %s.p (id int, region int, v text, big text, PRIMARY KEY (id, region))"
           "  PARTITION BY LIST (region);"
           "CREATE TABLE %s.p_0 PARTITION OF %s.p FOR VALUES IN (0);"
           "CREATE TABLE %s.p_1 PARTITION OF %s.p FOR VALUES IN (1);"
           "CREATE TABLE %s.p_2 PARTITION OF %s.p FOR VALUES IN (2);"
           "CREATE TABLE %s.p_3 PARTITION OF %s.p FOR VALUES IN (3);"
           "CREATE TABLE %s.d (id int PRIMARY KEY, v text);",
           S, S, S, S, S, S, S, S, S, S, S, S, S, S, S, S, S, S);
    PGresult *r = PQexec(pg, b.d);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "workload: setup: %s", PQerrorMessage(pg));
        return 1;
    }
    PQclear(r);
    free(b.d);
    /* some rows for the initial load */
    session_t s = {.pg = pg, .uri = uri, .id = 99};
    for (int i = 0; i < 400; i++) {
        sb_t ins = {0};
        insert_row(&ins, (table_t)(i % NTABLES), pick(KEYS));
        exec(&s, ins.d);
        free(ins.d);
    }
    PQfinish(pg);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: pgferry-test-workload setup URI SCHEMA SEED\n"
                        "       pgferry-test-workload run URI SCHEMA SEED SESSIONS SECONDS "
                        "JOURNAL\n");
        return 2;
    }
    S = argv[3];
    uint64_t seed = strtoull(argv[4], NULL, 10);
    if (strcmp(argv[1], "setup") == 0) {
        rng = seed * 7919;
        return setup(argv[2]);
    }
    if (strcmp(argv[1], "run") != 0 || argc < 8)
        return 2;
    int sessions = atoi(argv[5]);
    double deadline = now_s() + atof(argv[6]);
    FILE *journal = fopen(argv[7], "a");
    if (!journal) {
        fprintf(stderr, "workload: %s: %s\n", argv[7], strerror(errno));
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    pid_t *pids = calloc((size_t)sessions, sizeof(*pids));
    for (int i = 0; i < sessions; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            rng = seed * 1000003 + (uint64_t)i;
            session_t s = {.uri = argv[2], .journal = journal, .id = i};
            _exit(run_session(&s, deadline));
        }
    }
    int rc = 0;
    for (int i = 0; i < sessions; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            rc = 1;
    }
    free(pids);
    fclose(journal);
    return rc;
}
