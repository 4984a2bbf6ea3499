/* ipc: owns zmq errno handling for message framing; never interprets the payload. */
#include "ipc.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool
ipc_recv_frames(void *sock, ipc_frames_t *f, int flags)
{
    f->n = 0;
    f->overflow = false;
    for (;;) {
        zmq_msg_t *m;
        zmq_msg_t scratch;
        m = f->n < IPC_MAX_FRAMES ? &f->parts[f->n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, f->n == 0 ? flags : 0) < 0) {
            int e = errno;
            zmq_msg_close(m);
            ipc_frames_close(f);
            errno = e;
            return false;
        }
        int more = zmq_msg_more(m);
        if (m == &scratch) {
            zmq_msg_close(m);
            f->overflow = true;
        } else {
            f->n++;
        }
        if (!more)
            return true;
    }
}

void
ipc_frames_close(ipc_frames_t *f)
{
    for (int i = 0; i < f->n; i++)
        zmq_msg_close(&f->parts[i]);
    f->n = 0;
}

bool
ipc_send_msg(void *sock, const zmq_msg_t *const *prefix, int nprefix, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        log_error("out of memory packing a %zu-byte message", len);
        return false;
    }
    protobuf_c_message_pack(m, buf);
    for (int i = 0; i < nprefix; i++) {
        if (zmq_send(sock, zmq_msg_data((zmq_msg_t *)prefix[i]),
                     zmq_msg_size((zmq_msg_t *)prefix[i]), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            log_warn("zmq_send (routing frame): %s", zmq_strerror(errno));
            free(buf);
            return false;
        }
    }
    int rc = zmq_send(sock, buf, len, ZMQ_DONTWAIT);
    free(buf);
    if (rc < 0) {
        log_warn("zmq_send: %s", zmq_strerror(errno));
        return false;
    }
    return true;
}

bool
ipc_socket_defaults(void *sock, int linger_ms)
{
    int64_t maxsz = IPC_MAX_MSG;
    if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxsz, sizeof(maxsz)) != 0 ||
        zmq_setsockopt(sock, ZMQ_LINGER, &linger_ms, sizeof(linger_ms)) != 0) {
        log_error("zmq_setsockopt: %s", zmq_strerror(errno));
        return false;
    }
    return true;
}

const char *
ipc_endpoint_path(const char *endpoint)
{
    if (strncmp(endpoint, "ipc://", 6) == 0)
        return endpoint + 6;
    return NULL;
}
