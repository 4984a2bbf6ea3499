/*
 * ctl: pgferryctl's client side of the control channel: one REQ socket, one request, one
 * reply, bounded by a timeout. It never touches LMDB or the databases.
 */
#ifndef PGFERRY_CTL_H
#define PGFERRY_CTL_H

#include <stddef.h>
#include "control.pb-c.h"

typedef struct ctl ctl_t;

/* The endpoint to use: PGFERRY_CONTROL, else ipc://$PGFERRY_STATE_DIR/control.sock, else
 * ipc:///var/lib/pgferry/control.sock. Writes into out. */
void ctl_default_endpoint(const char *state_dir, char *out, size_t outlen);

/* server_pub/client_pub/client_sec: Z85 CURVE keys for a tcp:// endpoint, else all NULL. */
ctl_t *ctl_connect(const char *endpoint, int timeout_ms, const char *server_pub,
                   const char *client_pub, const char *client_sec, char *err, size_t errlen);
void ctl_destroy(ctl_t **c);

/* Sends req (its version is set here) and returns the reply (caller frees with
 * pgferry__control__reply__free_unpacked), or NULL with err set when nothing answered. */
Pgferry__Control__Reply *ctl_call(ctl_t *c, Pgferry__Control__Request *req, char *err,
                                  size_t errlen);

#endif
