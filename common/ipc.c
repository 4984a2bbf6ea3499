/* ipc: owns zmq errno handling for message framing; never interprets the payload. */
#include "ipc.h"
#include "log.h"

#include <errno.h>
#include <stdint.h>
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

/* malloc's header and rounding, a pointer in the repeated field's array, and protobuf-c's
 * ScannedMember (32 bytes) kept for each field occurrence while a message is parsed */
#define PB_OCCURRENCE_COST 64
#define PB_MAX_DEPTH 32

static bool
pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

static size_t
sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t
pb_cost(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, int depth)
{
    if (depth > PB_MAX_DEPTH)
        return SIZE_MAX;
    size_t total = d->sizeof_message + PB_OCCURRENCE_COST;
    const uint8_t *p = buf, *end = buf + len;
    while (p < end && total != SIZE_MAX) {
        uint64_t key, v;
        if (!pb_varint(&p, end, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
            return SIZE_MAX;
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3));
        switch (key & 7) {
        case 0:
            if (!pb_varint(&p, end, &v))
                return SIZE_MAX;
            total = sat_add(total, PB_OCCURRENCE_COST + 8);
            break;
        case 1:
        case 5: {
            size_t w = (key & 7) == 1 ? 8 : 4;
            if ((size_t)(end - p) < w)
                return SIZE_MAX;
            p += w;
            total = sat_add(total, PB_OCCURRENCE_COST + 8);
            break;
        }
        case 2: {
            if (!pb_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return SIZE_MAX;
            size_t l = (size_t)v, c;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE)
                c = pb_cost(f->descriptor, p, l, depth + 1);
            else if (f && f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_BYTES)
                c = l > SIZE_MAX / 8 ? SIZE_MAX : l * 8; /* packed scalars: 8 bytes a byte */
            else
                c = l + 1; /* a string or bytes copy, or an unknown field kept as bytes */
            total = sat_add(total, sat_add(c, PB_OCCURRENCE_COST));
            p += l;
            break;
        }
        default: /* groups (3, 4) and invalid wire types: protobuf-c refuses them too */
            return SIZE_MAX;
        }
    }
    return total;
}

size_t
ipc_unpack_cost(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len)
{
    return pb_cost(d, buf, len, 0);
}
