/*
 * ipc: ZeroMQ framing shared by the three programs. A message is zero or more routing frames
 * followed by one protobuf frame. Receiving is bounded: at most IPC_MAX_FRAMES frames (extra
 * frames are drained and the message is marked bad); sockets get ZMQ_MAXMSGSIZE so a peer
 * cannot make us allocate more than IPC_MAX_MSG for one frame.
 */
#ifndef PGFERRY_IPC_H
#define PGFERRY_IPC_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

#define IPC_VERSION 1
/* a status, an assignment or a definitions report carries every table of a pipe: 10,000
 * tables of 50 columns are about 30 MB */
#define IPC_MAX_MSG (64 * 1024 * 1024)
#define IPC_MAX_FRAMES 4

typedef struct {
    zmq_msg_t parts[IPC_MAX_FRAMES];
    int n;         /* frames stored in parts */
    bool overflow; /* the message had more than IPC_MAX_FRAMES frames */
} ipc_frames_t;

/* Receives every frame of one message. False on a zmq error (errno set, e.g. EAGAIN);
 * on true the caller must call ipc_frames_close. */
bool ipc_recv_frames(void *sock, ipc_frames_t *f, int flags);
void ipc_frames_close(ipc_frames_t *f);

/* Sends nprefix routing frames and then m packed. False on error (logged). */
bool ipc_send_msg(void *sock, const zmq_msg_t *const *prefix, int nprefix,
                  const ProtobufCMessage *m);

/* Sets the options every pgferry socket gets (max message size, linger). */
bool ipc_socket_defaults(void *sock, int linger_ms);

/* For "ipc:///path" endpoints, the filesystem path (pointer into endpoint); else NULL. */
const char *ipc_endpoint_path(const char *endpoint);

#endif
