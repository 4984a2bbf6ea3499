/*
 * store: the supervisor's LMDB state (pipes, their history, checkpoints). Only pgferryd opens
 * it, once per process, and it must never be used across fork(). Each write is one short
 * transaction; values are protobuf records of state.proto.
 */
#ifndef PGFERRY_STORE_H
#define PGFERRY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "state.pb-c.h"

typedef struct store store_t;

/* Opens (creating) DIR/state.mdb with owner-only permissions and clears stale readers.
 * Returns NULL with err set on failure. */
store_t *store_open(const char *dir, char *err, size_t errlen);
/* True when the last store_open failed because the file is truncated or damaged (pgferryd
 * then exits EXIT_STORE_DAMAGED, which the systemd unit does not restart). */
bool store_open_found_damage(void);
/* As store_open with the map's initial size (it doubles whenever a write finds it full). */
store_t *store_open_sized(const char *dir, size_t map_size, char *err, size_t errlen);
/* Each pipe keeps its last max_events history events (default 1000; 0 = all). */
void store_set_history_max(store_t *s, uint32_t max_events);
size_t store_map_size(const store_t *s);
unsigned store_times_grown(const store_t *s);
void store_destroy(store_t **s);
/* This store's id (32 hex digits, made on its first open): with a pipe's name it owns the
 * destination tables the pipe creates (the registry in ClickHouse, worker/owners.h). */
const char *store_state_id(const store_t *s);

/* What the last failed write said (a full state disk is called so), for a requester; a
 * generic text when none failed. */
const char *store_last_error(const store_t *s);

/* Reader slots of dead processes found and cleared by store_open. */
int store_stale_readers_cleared(const store_t *s);

/* *out is the record (caller frees with pgferry__state__pipe_record__free_unpacked) or NULL
 * when there is no such pipe. False on a storage error (logged). */
bool store_get_pipe(store_t *s, const char *name, Pgferry__State__PipeRecord **out);
/* The record for reading only (NULL when absent or on error): decoded once and kept until the
 * pipe is next written or deleted through this store, so the caller must not keep it across a
 * write. Spares a pipe of thousands of tables a decode per event. */
const Pgferry__State__PipeRecord *store_peek_pipe(store_t *s, const char *name);

/* Writes rec and, when ev is not NULL, appends ev to the pipe's history under ev->seq, in one
 * transaction. */
bool store_put_pipe(store_t *s, const Pgferry__State__PipeRecord *rec,
                    const Pgferry__State__HistoryEvent *ev);

/* Names of all pipes in name order: *names is a malloc'd array of malloc'd strings; free with
 * store_free_names. */
bool store_list_names(store_t *s, char ***names, size_t *count);
void store_free_names(char **names, size_t count);

/* The last `limit` history events of a pipe (all when limit is 0), oldest first. *evs is a
 * malloc'd array of unpacked events; free with store_free_history. */
bool store_get_history(store_t *s, const char *name, size_t limit,
                       Pgferry__State__HistoryEvent ***evs, size_t *count);
void store_free_history(Pgferry__State__HistoryEvent **evs, size_t count);

/* Deletes the pipe, its history and its checkpoints in one transaction. */
bool store_delete_pipe(store_t *s, const char *name);

bool store_put_checkpoint(store_t *s, const char *pipe, const char *key, const void *val,
                          size_t len);
/* *val is a malloc'd copy (caller frees) or NULL when absent. */
bool store_get_checkpoint(store_t *s, const char *pipe, const char *key, void **val, size_t *len);

#endif
