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
/* A control request is small but for create and add-tables, which carry their tables: the
 * largest legitimate one, 10,000 tables each with 63-byte schema, name and target, 16 excluded
 * columns, 4 ORDER BY columns and a 256-byte PARTITION BY, packs to 17.6 MB
 * (`pgferry-test-rawsend ENDPOINT big-create` builds it; add-tables of the same tables, with
 * their names as typed besides, about 19 MB). Larger requests are
 * refused before decoding, naming the limit. */
#define IPC_MAX_REQUEST (24 * 1024 * 1024)
/* What decoding one control request may allocate (ipc_unpack_cost); the largest legitimate
 * request above needs about 45 MB. */
#define IPC_MAX_DECODE (128 * 1024 * 1024)

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

/* An upper bound of the bytes protobuf-c allocates to unpack len bytes of buf as a message of
 * descriptor d, from one walk of the wire format without allocating (every field occurrence
 * costs its struct or its bytes plus a fixed overhead: malloc's, the array slot, protobuf-c's
 * record of the scanned field). SIZE_MAX when the bytes are not well-formed protobuf. A
 * request of 2-byte empty entries costs about 80 times its size. */
size_t ipc_unpack_cost(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len);

/* For "ipc:///path" endpoints, the filesystem path (pointer into endpoint); else NULL. */
const char *ipc_endpoint_path(const char *endpoint);

#endif
