/*
 * render: how pgferryctl shows pipes: aligned text for people, JSON for scripts. Input is
 * already masked by the daemon; nothing here sees a secret.
 */
#ifndef PGFERRY_RENDER_H
#define PGFERRY_RENDER_H

#include <stdint.h>
#include <stdio.h>
#include "control.pb-c.h"
#include "json.h"

void render_status_text(FILE *out, const Pgferry__Control__PipeStatus *st, int64_t now_us);
void render_status_json(json_t *j, const Pgferry__Control__PipeStatus *st);
/* A progress bar "[#####.....]  52.0%" of width cells for done out of total (total 0: empty). */
void render_progress_bar(char *out, size_t outlen, double done, double total, int width);
/* What `watch` shows: a progress bar during Snapshot, then the status. */
void render_watch_frame(FILE *out, const Pgferry__Control__PipeStatus *st, int64_t now_us);
void render_list_text(FILE *out, const Pgferry__Control__PipeList *l, int64_t now_us);
void render_list_json(json_t *j, const Pgferry__Control__PipeList *l);

#endif
