/*
 * store: the only module that calls LMDB. MDB return codes become bool + one log line here.
 * Layout: DBI "pipes" name -> PipeRecord; "history" name\0 + be64(seq) -> HistoryEvent;
 * "checkpoints" name\0 + key -> bytes. A write that finds the map full doubles the map and
 * runs again (the file is sparse: the map size is address space, not disk); each pipe keeps
 * its last history_max events.
 */
#include "store.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define STORE_MAP_SIZE ((size_t)1 << 30)
#define STORE_MAP_MAX ((size_t)1 << 40)
#define STORE_MAX_NAME 256

/* decoded records handed out by store_peek_pipe, dropped when the pipe is written */
typedef struct {
    char *name;
    Pgferry__State__PipeRecord *rec;
} peek_t;

struct store {
    peek_t *peek;
    size_t npeek, cappeek;
    MDB_env *env;
    MDB_dbi pipes, history, checkpoints;
    char state_id[33]; /* this store's random id (see store_state_id) */
    int stale_cleared;
    size_t map_size;
    uint32_t history_max; /* events kept per pipe; 0 = all */
    unsigned grown;
    char dir[4096];     /* the state directory, for the free space a failed write reports */
    char last_err[600]; /* the last failed write, for the requester */
};

static bool
fail(const char *what, int rc)
{
    log_error("state store: %s: %s", what, mdb_strerror(rc));
    return false;
}

/* A failed write: LMDB reports a full disk as ENOSPC, or as EIO when a write() came back short,
 * so either is checked against the free space of the state directory and called what it is. */
static bool
write_failed(store_t *s, const char *what, int rc)
{
    struct statvfs vfs;
    if ((rc == EIO || rc == ENOSPC || rc == EDQUOT) && statvfs(s->dir, &vfs) == 0) {
        uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        if (rc != EIO || avail < 4 * 1024 * 1024)
            snprintf(
                s->last_err, sizeof(s->last_err),
                "state store: %s: the state disk is full (%" PRIu64
                " KB free on %.300s; LMDB said: %s); free space there, the change was not made",
                what, avail >> 10, s->dir, mdb_strerror(rc));
        else
            snprintf(s->last_err, sizeof(s->last_err),
                     "state store: %s: %s (%" PRIu64 " MB free on %.300s)", what, mdb_strerror(rc),
                     avail >> 20, s->dir);
    } else {
        snprintf(s->last_err, sizeof(s->last_err), "state store: %s: %s", what, mdb_strerror(rc));
    }
    log_error("%s", s->last_err);
    return false;
}

const char *
store_last_error(const store_t *s)
{
    return s->last_err[0] ? s->last_err : "state store error";
}

const char *
store_state_id(const store_t *s)
{
    return s->state_id;
}

store_t *
store_open(const char *dir, char *err, size_t errlen)
{
    return store_open_sized(dir, STORE_MAP_SIZE, err, errlen);
}

/* ---- a damaged store refuses to open (it used to end in SIGBUS inside mdb_dbi_open) ----
 * LMDB's two meta pages (page 0 and 1, of liblmdb 0.9's MDB_meta after the 16-byte page
 * header) say the page size and the last page in use; the newer one (by txnid) counts. A file
 * shorter than its last page is truncated: mapping it would fault on the missing pages. */
#define META_MAGIC 0xBEEFC0DEu
#define META_OFF_MAGIC 16
#define META_OFF_VERSION 20
#define META_OFF_PSIZE 40 /* mm_dbs[FREE_DBI].md_pad holds the page size */
#define META_OFF_LAST_PG 136
#define META_OFF_TXNID 144
#define META_LEN 152

static const char RESTORE_HINT[] =
    "; pgferryd will not start on it. Restore a backup (see README, \"Backup and restore of the "
    "state store\"): stop pgferryd, move the damaged file aside, copy the backup made with "
    "`mdb_copy -n -c` (package lmdb-utils) to that path, mode 0600";

static bool g_damaged; /* the last store_open refused a damaged or truncated file */

bool
store_open_found_damage(void)
{
    return g_damaged;
}

static uint64_t
le_u(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* True when path does not exist or is empty (a new store) or looks whole; else err says so */
static bool
check_file(const char *path, char *err, size_t errlen)
{
    g_damaged = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return true;
        snprintf(err, errlen, "cannot read state store %s: %s", path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size == 0) {
        close(fd);
        return true;
    }
    uint64_t size = (uint64_t)st.st_size, best_txn = 0, last_pg = 0, psize = 0;
    bool found = false;
    unsigned char m[META_LEN];
    for (int page = 0; page < 2; page++) {
        /* page 1 sits one page size in: take it from page 0, or try the usual sizes */
        uint64_t off = page == 0 ? 0 : (psize ? psize : 4096);
        if (pread(fd, m, sizeof(m), (off_t)off) != (ssize_t)sizeof(m))
            continue;
        uint64_t ps = le_u(m + META_OFF_PSIZE, 4);
        if (le_u(m + META_OFF_MAGIC, 4) != META_MAGIC || le_u(m + META_OFF_VERSION, 4) != 1 ||
            ps < 512 || ps > 65536 || (ps & (ps - 1)) != 0 || (page == 1 && ps != off))
            continue;
        uint64_t txn = le_u(m + META_OFF_TXNID, 8);
        if (!found || txn > best_txn) {
            best_txn = txn;
            last_pg = le_u(m + META_OFF_LAST_PG, 8);
        }
        psize = ps;
        found = true;
    }
    close(fd);
    g_damaged = true;
    if (!found) {
        snprintf(err, errlen,
                 "state store %s is damaged: %" PRIu64 " bytes and no valid LMDB header%s", path,
                 size, RESTORE_HINT);
        return false;
    }
    uint64_t need = (last_pg + 1) * psize;
    if (size < need || size < 2 * psize) {
        snprintf(err, errlen,
                 "state store %s is truncated: %" PRIu64 " bytes, its last page needs %" PRIu64
                 " (%" PRIu64 " pages of %" PRIu64 " bytes)%s",
                 path, size, need, last_pg + 1, psize, RESTORE_HINT);
        return false;
    }
    g_damaged = false; /* the file is whole: a later failure is not the store's */
    return true;
}

/* A fault while LMDB opens and reads the map (a page damaged in a way the header check cannot
 * see) becomes an error here instead of a signal: the map is abandoned and pgferryd exits. */
static sigjmp_buf g_fault_jmp;
static volatile sig_atomic_t g_fault_sig;

static void
on_fault(int sig)
{
    g_fault_sig = sig;
    siglongjmp(g_fault_jmp, 1);
}

/* The store's id: 128 random bits in hex, made on the first open and kept in the "meta" table
 * (the owner of destination tables in ClickHouse's registry, with the pipe's name). Runs inside
 * the fault guard of store_open_guarded; 0 or an LMDB/errno code (err says it). An id record of
 * another shape is damage, never replaced: a new id would disown every table the pipes own. */
static int
open_state_id(store_t *s, const char *path, char *err, size_t errlen)
{
    MDB_txn *txn = NULL;
    MDB_dbi meta;
    MDB_val k = {.mv_size = 8, .mv_data = "state_id"}, v;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &meta);
    if (rc == 0) {
        rc = mdb_get(txn, meta, &k, &v);
        if (rc == 0 && v.mv_size == 32 &&
            strspn((const char *)v.mv_data, "0123456789abcdef") >= 32) {
            memcpy(s->state_id, v.mv_data, 32);
        } else if (rc == 0) {
            mdb_txn_abort(txn);
            g_damaged = true;
            snprintf(err, errlen,
                     "state store %s is damaged: its id record is not 32 hex digits (%zu bytes)%s",
                     path, v.mv_size, RESTORE_HINT);
            return MDB_CORRUPTED;
        } else if (rc == MDB_NOTFOUND) {
            unsigned char r[16];
            if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
                int e = errno;
                mdb_txn_abort(txn);
                snprintf(err, errlen, "cannot make the store's id: %s", strerror(e));
                return e ? e : EIO;
            }
            for (int i = 0; i < 16; i++)
                snprintf(s->state_id + 2 * i, 3, "%02x", r[i]);
            v.mv_size = 32;
            v.mv_data = s->state_id;
            rc = mdb_put(txn, meta, &k, &v, 0);
        }
    }
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else if (txn)
        mdb_txn_abort(txn);
    if (rc != 0) {
        if (rc == ENOSPC || rc == EIO || rc == EDQUOT) {
            write_failed(s, "writing the store's id", rc);
            snprintf(err, errlen, "%s", s->last_err);
        } else {
            snprintf(err, errlen, "cannot read or write the store's id in %s: %s", path,
                     mdb_strerror(rc));
        }
        return rc;
    }
    s->state_id[32] = '\0';
    log_info("state store id %s (the owner of its pipes' destination tables)", s->state_id);
    return 0;
}

/* Reads every record of every table once (a byte of each page of each value). */
static int
walk_all(store_t *s)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return rc;
    MDB_dbi dbis[3] = {s->pipes, s->history, s->checkpoints};
    volatile unsigned char sink = 0;
    for (int d = 0; d < 3 && rc == 0; d++) {
        MDB_cursor *cur;
        if ((rc = mdb_cursor_open(txn, dbis[d], &cur)) != 0)
            break;
        MDB_val k, v;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            for (size_t i = 0; i < v.mv_size; i += 4096)
                sink ^= ((const unsigned char *)v.mv_data)[i];
        }
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    (void)sink;
    mdb_txn_abort(txn);
    return rc;
}

static int
store_open_guarded(store_t *s, const char *path, char *err, size_t errlen)
{
    MDB_txn *txn = NULL;
    int rc;
    if ((rc = mdb_env_open(s->env, path, MDB_NOSUBDIR, 0600)) != 0) {
        snprintf(err, errlen, "cannot open state store %s: %s", path, mdb_strerror(rc));
        return rc;
    }
    /* a store grown by an earlier run keeps its size (LMDB takes the larger one) */
    MDB_envinfo info;
    if (mdb_env_info(s->env, &info) == 0)
        s->map_size = info.me_mapsize;
    s->history_max = 1000;
    int dead = 0;
    if ((rc = mdb_reader_check(s->env, &dead)) != 0) {
        snprintf(err, errlen, "lmdb reader check: %s", mdb_strerror(rc));
        return rc;
    }
    s->stale_cleared = dead;
    if (dead > 0)
        log_warn("state store: cleared %d stale reader slot(s) of dead processes", dead);
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, "pipes", MDB_CREATE, &s->pipes)) != 0 ||
        (rc = mdb_dbi_open(txn, "history", MDB_CREATE, &s->history)) != 0 ||
        (rc = mdb_dbi_open(txn, "checkpoints", MDB_CREATE, &s->checkpoints)) != 0 ||
        (rc = mdb_txn_commit(txn)) != 0) {
        if (txn && rc != 0)
            mdb_txn_abort(txn);
        snprintf(err, errlen, "cannot open state tables: %s", mdb_strerror(rc));
        return rc;
    }
    if ((rc = walk_all(s)) != 0) {
        g_damaged = true;
        snprintf(err, errlen, "state store %s is damaged: %s%s", path, mdb_strerror(rc),
                 RESTORE_HINT);
        return rc;
    }
    return open_state_id(s, path, err, errlen);
}

#define FAULTED (-1000000)

/* store_open_guarded with SIGBUS and SIGSEGV turned into FAULTED (err says it) */
static int
open_faults_guarded(store_t *s, const char *path, char *err, size_t errlen)
{
    static struct sigaction fault, old_bus, old_segv;
    static sigset_t faults, old_mask;
    memset(&fault, 0, sizeof(fault));
    fault.sa_handler = on_fault;
    sigemptyset(&fault.sa_mask);
    sigemptyset(&faults);
    sigaddset(&faults, SIGBUS);
    sigaddset(&faults, SIGSEGV);
    g_fault_sig = 0;
    if (sigsetjmp(g_fault_jmp, 1) != 0) {
        sigaction(SIGBUS, &old_bus, NULL);
        sigaction(SIGSEGV, &old_segv, NULL);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        snprintf(err, errlen, "state store %s is damaged: reading it raised %s%s", path,
                 g_fault_sig == SIGBUS ? "SIGBUS (pages missing)" : "SIGSEGV", RESTORE_HINT);
        g_damaged = true;
        return FAULTED;
    }
    sigaction(SIGBUS, &fault, &old_bus);
    sigaction(SIGSEGV, &fault, &old_segv);
    sigprocmask(SIG_UNBLOCK, &faults, &old_mask);
    int rc = store_open_guarded(s, path, err, errlen);
    sigaction(SIGBUS, &old_bus, NULL);
    sigaction(SIGSEGV, &old_segv, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    return rc;
}

store_t *
store_open_sized(const char *dir, size_t map_size, char *err, size_t errlen)
{
    store_t *s = calloc(1, sizeof(*s));
    int rc;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create state directory %s: %s", dir, strerror(errno));
        free(s);
        return NULL;
    }
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    if ((rc = mdb_env_create(&s->env)) != 0 || (rc = mdb_env_set_maxdbs(s->env, 8)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, map_size)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, 126)) != 0) {
        snprintf(err, errlen, "lmdb: %s", mdb_strerror(rc));
        goto fail;
    }
    /* MDB_NOSUBDIR: DIR/state.mdb and DIR/state.mdb-lock */
    char path[4096];
    snprintf(path, sizeof(path), "%s/state.mdb", dir);
    if (!check_file(path, err, errlen))
        goto fail;
    rc = open_faults_guarded(s, path, err, errlen);
    if (rc == FAULTED) {
        free(s); /* the environment is abandoned: LMDB was interrupted inside */
        return NULL;
    }
    if (rc != 0)
        goto fail;
    return s;
fail:
    if (s->env)
        mdb_env_close(s->env);
    free(s);
    return NULL;
}

static void
peek_forget(store_t *s, const char *name)
{
    for (size_t i = 0; i < s->npeek; i++) {
        if (strcmp(s->peek[i].name, name) != 0)
            continue;
        free(s->peek[i].name);
        pgferry__state__pipe_record__free_unpacked(s->peek[i].rec, NULL);
        s->peek[i] = s->peek[--s->npeek];
        return;
    }
}

const Pgferry__State__PipeRecord *
store_peek_pipe(store_t *s, const char *name)
{
    for (size_t i = 0; i < s->npeek; i++) {
        if (strcmp(s->peek[i].name, name) == 0)
            return s->peek[i].rec;
    }
    Pgferry__State__PipeRecord *rec = NULL;
    if (!store_get_pipe(s, name, &rec) || !rec)
        return NULL;
    if (s->npeek == s->cappeek) {
        size_t cap = s->cappeek ? s->cappeek * 2 : 16;
        peek_t *a = realloc(s->peek, cap * sizeof(*a));
        if (!a) {
            pgferry__state__pipe_record__free_unpacked(rec, NULL);
            return NULL;
        }
        s->peek = a;
        s->cappeek = cap;
    }
    char *n = strdup(name);
    if (!n) {
        pgferry__state__pipe_record__free_unpacked(rec, NULL);
        return NULL;
    }
    s->peek[s->npeek].name = n;
    s->peek[s->npeek].rec = rec;
    s->npeek++;
    return rec;
}

void
store_set_history_max(store_t *s, uint32_t max_events)
{
    s->history_max = max_events;
}

size_t
store_map_size(const store_t *s)
{
    return s->map_size;
}

unsigned
store_times_grown(const store_t *s)
{
    return s->grown;
}

typedef int (*write_fn)(store_t *s, MDB_txn *txn, void *ctx);

/* One write transaction running fn; a full map is doubled and the transaction run again. */
static int
write_txn(store_t *s, write_fn fn, void *ctx)
{
    for (;;) {
        MDB_txn *txn;
        int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
        if (rc != 0)
            return rc;
        rc = fn(s, txn, ctx);
        if (rc == 0)
            rc = mdb_txn_commit(txn); /* (a failed commit frees the transaction) */
        else
            mdb_txn_abort(txn);
        if (rc != MDB_MAP_FULL)
            return rc;
        size_t next = s->map_size * 2;
        if (next > STORE_MAP_MAX || (rc = mdb_env_set_mapsize(s->env, next)) != 0) {
            log_error("state store: full at %zu MB and cannot grow: %s", s->map_size >> 20,
                      rc ? mdb_strerror(rc) : "at its largest size");
            return MDB_MAP_FULL;
        }
        log_info("state store: map full at %zu MB, grown to %zu MB", s->map_size >> 20, next >> 20);
        s->map_size = next;
        s->grown++;
    }
}

void
store_destroy(store_t **sp)
{
    store_t *s = *sp;
    if (!s)
        return;
    while (s->npeek > 0)
        peek_forget(s, s->peek[0].name);
    free(s->peek);
    mdb_env_close(s->env);
    free(s);
    *sp = NULL;
}

int
store_stale_readers_cleared(const store_t *s)
{
    return s->stale_cleared;
}

/* name\0 + suffix into buf; returns its length or 0 when it does not fit */
static size_t
prefixed_key(char *buf, size_t cap, const char *name, const void *suffix, size_t slen)
{
    size_t nl = strlen(name);
    if (nl == 0 || nl + 1 + slen > cap || nl + 1 + slen > 511)
        return 0;
    memcpy(buf, name, nl);
    buf[nl] = '\0';
    if (slen)
        memcpy(buf + nl + 1, suffix, slen);
    return nl + 1 + slen;
}

static void
be64(uint64_t v, unsigned char out[8])
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

bool
store_get_pipe(store_t *s, const char *name, Pgferry__State__PipeRecord **out)
{
    MDB_txn *txn;
    int rc;
    *out = NULL;
    if (strlen(name) == 0 || strlen(name) >= STORE_MAX_NAME)
        return true;
    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
        return fail("begin read", rc);
    MDB_val k = {strlen(name), (void *)name}, v;
    rc = mdb_get(txn, s->pipes, &k, &v);
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return true;
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return fail("read pipe", rc);
    }
    /* unpack copies everything out of the map before the transaction ends */
    *out = pgferry__state__pipe_record__unpack(NULL, v.mv_size, v.mv_data);
    mdb_txn_abort(txn);
    if (!*out) {
        log_error("state store: record of pipe %s does not decode", name);
        return false;
    }
    return true;
}

typedef struct {
    const char *name;
    const uint8_t *rb;
    size_t rl;
    const Pgferry__State__HistoryEvent *ev;
    const uint8_t *eb;
    size_t el;
} put_ctx_t;

/* The pipe's history events with seq <= upto go (the oldest first, by key order). */
static int
trim_history(store_t *s, MDB_txn *txn, const char *name, uint64_t upto)
{
    char kb[STORE_MAX_NAME + 9];
    size_t pl = prefixed_key(kb, sizeof(kb), name, NULL, 0);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->history, &cur);
    if (rc != 0)
        return rc;
    MDB_val k = {pl, kb}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == pl + 8 && memcmp(k.mv_data, kb, pl) == 0) {
        const unsigned char *q = (const unsigned char *)k.mv_data + pl;
        uint64_t seq = 0;
        for (int i = 0; i < 8; i++)
            seq = seq << 8 | q[i];
        if (seq > upto)
            break;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (rc == EINVAL)
            rc = MDB_NOTFOUND;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
put_pipe_txn(store_t *s, MDB_txn *txn, void *ctx)
{
    put_ctx_t *c = ctx;
    MDB_val k = {strlen(c->name), (void *)c->name}, v = {c->rl, (void *)c->rb};
    int rc = mdb_put(txn, s->pipes, &k, &v, 0);
    if (rc == 0 && c->ev) {
        char kb[STORE_MAX_NAME + 9];
        unsigned char seq[8];
        be64(c->ev->seq, seq);
        MDB_val hk = {prefixed_key(kb, sizeof(kb), c->name, seq, 8), kb},
                hv = {c->el, (void *)c->eb};
        rc = mdb_put(txn, s->history, &hk, &hv, 0);
        if (rc == 0 && s->history_max && c->ev->seq > s->history_max)
            rc = trim_history(s, txn, c->name, c->ev->seq - s->history_max);
    }
    return rc;
}

bool
store_put_pipe(store_t *s, const Pgferry__State__PipeRecord *rec,
               const Pgferry__State__HistoryEvent *ev)
{
    const char *name = rec->spec ? rec->spec->name : NULL;
    if (!name || !*name || strlen(name) >= STORE_MAX_NAME) {
        log_error("state store: refusing a pipe record without a valid name");
        return false;
    }
    size_t rl = pgferry__state__pipe_record__get_packed_size(rec);
    uint8_t *rb = malloc(rl ? rl : 1);
    size_t el = ev ? pgferry__state__history_event__get_packed_size(ev) : 0;
    uint8_t *eb = ev ? malloc(el ? el : 1) : NULL;
    if (!rb || (ev && !eb)) {
        free(rb);
        free(eb);
        log_error("state store: out of memory");
        return false;
    }
    pgferry__state__pipe_record__pack(rec, rb);
    if (ev)
        pgferry__state__history_event__pack(ev, eb);

    peek_forget(s, name);
    put_ctx_t c = {name, rb, rl, ev, eb, el};
    int rc = write_txn(s, put_pipe_txn, &c);
    free(rb);
    free(eb);
    if (rc != 0)
        return write_failed(s, "write pipe", rc);
    return true;
}

void
store_free_names(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

bool
store_list_names(store_t *s, char ***names, size_t *count)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc;
    size_t n = 0, cap = 16;
    char **arr = malloc(cap * sizeof(char *));
    *names = NULL;
    *count = 0;
    if (!arr)
        return false;
    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0) {
        free(arr);
        return fail("begin read", rc);
    }
    if ((rc = mdb_cursor_open(txn, s->pipes, &cur)) != 0) {
        mdb_txn_abort(txn);
        free(arr);
        return fail("cursor", rc);
    }
    MDB_val k, v;
    bool ok = true;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (n == cap) {
            char **a = realloc(arr, cap * 2 * sizeof(char *));
            if (!a) {
                ok = false;
                break;
            }
            arr = a;
            cap *= 2;
        }
        arr[n] = strndup(k.mv_data, k.mv_size);
        if (!arr[n]) {
            ok = false;
            break;
        }
        n++;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (!ok || (rc != 0 && rc != MDB_NOTFOUND)) {
        store_free_names(arr, n);
        return ok ? fail("list pipes", rc) : false;
    }
    *names = arr;
    *count = n;
    return true;
}

void
store_free_history(Pgferry__State__HistoryEvent **evs, size_t count)
{
    for (size_t i = 0; i < count; i++)
        pgferry__state__history_event__free_unpacked(evs[i], NULL);
    free(evs);
}

bool
store_get_history(store_t *s, const char *name, size_t limit, Pgferry__State__HistoryEvent ***evs,
                  size_t *count)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc;
    char kb[STORE_MAX_NAME + 9];
    size_t pl = prefixed_key(kb, sizeof(kb), name, NULL, 0);
    *evs = NULL;
    *count = 0;
    if (pl == 0)
        return true;
    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
        return fail("begin read", rc);
    if ((rc = mdb_cursor_open(txn, s->history, &cur)) != 0) {
        mdb_txn_abort(txn);
        return fail("cursor", rc);
    }
    /* walk backwards from the end of this pipe's key range so `limit` costs what it reads */
    unsigned char maxseq[8];
    memset(maxseq, 0xff, sizeof(maxseq));
    char kend[STORE_MAX_NAME + 9];
    size_t kel = prefixed_key(kend, sizeof(kend), name, maxseq, 8);
    MDB_val k = {kel, kend}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    size_t n = 0, cap = 16;
    Pgferry__State__HistoryEvent **arr = malloc(cap * sizeof(*arr));
    bool ok = arr != NULL;
    while (ok && rc == 0 && k.mv_size == pl + 8 && memcmp(k.mv_data, kb, pl) == 0 &&
           (limit == 0 || n < limit)) {
        if (n == cap) {
            Pgferry__State__HistoryEvent **a = realloc(arr, cap * 2 * sizeof(*arr));
            if (!a) {
                ok = false;
                break;
            }
            arr = a;
            cap *= 2;
        }
        arr[n] = pgferry__state__history_event__unpack(NULL, v.mv_size, v.mv_data);
        if (!arr[n]) {
            log_error("state store: a history event of pipe %s does not decode", name);
            ok = false;
            break;
        }
        n++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (!ok) {
        if (arr)
            store_free_history(arr, n);
        return false;
    }
    /* collected newest first; hand out oldest first */
    for (size_t i = 0; i < n / 2; i++) {
        Pgferry__State__HistoryEvent *t = arr[i];
        arr[i] = arr[n - 1 - i];
        arr[n - 1 - i] = t;
    }
    *evs = arr;
    *count = n;
    return true;
}

static int
delete_prefix(MDB_txn *txn, MDB_dbi dbi, const char *prefix, size_t pl)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        return rc;
    MDB_val k = {pl, (void *)prefix}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size >= pl && memcmp(k.mv_data, prefix, pl) == 0) {
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0)
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (rc == EINVAL) /* cursor past the end after deleting the last key */
            rc = MDB_NOTFOUND;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

typedef struct {
    const char *name, *prefix;
    size_t pl;
} del_ctx_t;

static int
delete_pipe_txn(store_t *s, MDB_txn *txn, void *ctx)
{
    del_ctx_t *c = ctx;
    MDB_val k = {strlen(c->name), (void *)c->name};
    int rc = mdb_del(txn, s->pipes, &k, NULL);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    if (rc == 0)
        rc = delete_prefix(txn, s->history, c->prefix, c->pl);
    if (rc == 0)
        rc = delete_prefix(txn, s->checkpoints, c->prefix, c->pl);
    return rc;
}

bool
store_delete_pipe(store_t *s, const char *name)
{
    char kb[STORE_MAX_NAME + 9];
    size_t pl = prefixed_key(kb, sizeof(kb), name, NULL, 0);
    if (pl == 0)
        return false;
    peek_forget(s, name);
    del_ctx_t c = {name, kb, pl};
    int rc = write_txn(s, delete_pipe_txn, &c);
    return rc == 0 ? true : write_failed(s, "delete pipe", rc);
}

typedef struct {
    const char *key;
    size_t kl;
    const void *val;
    size_t len;
} ckpt_ctx_t;

static int
put_checkpoint_txn(store_t *s, MDB_txn *txn, void *ctx)
{
    ckpt_ctx_t *c = ctx;
    MDB_val k = {c->kl, (void *)c->key}, v = {c->len, (void *)c->val};
    return mdb_put(txn, s->checkpoints, &k, &v, 0);
}

bool
store_put_checkpoint(store_t *s, const char *pipe, const char *key, const void *val, size_t len)
{
    char kb[512];
    size_t kl = prefixed_key(kb, sizeof(kb), pipe, key, strlen(key));
    if (kl == 0) {
        log_error("state store: checkpoint key too long for pipe %s", pipe);
        return false;
    }
    ckpt_ctx_t c = {kb, kl, val, len};
    int rc = write_txn(s, put_checkpoint_txn, &c);
    return rc == 0 ? true : write_failed(s, "write checkpoint", rc);
}

bool
store_get_checkpoint(store_t *s, const char *pipe, const char *key, void **val, size_t *len)
{
    char kb[512];
    size_t kl = prefixed_key(kb, sizeof(kb), pipe, key, strlen(key));
    *val = NULL;
    *len = 0;
    if (kl == 0)
        return false;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return fail("begin read", rc);
    MDB_val k = {kl, kb}, v;
    rc = mdb_get(txn, s->checkpoints, &k, &v);
    if (rc == 0) {
        *val = malloc(v.mv_size ? v.mv_size : 1);
        if (*val) {
            memcpy(*val, v.mv_data, v.mv_size);
            *len = v.mv_size;
        }
    }
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return true;
    if (rc != 0)
        return fail("read checkpoint", rc);
    return *val != NULL;
}
