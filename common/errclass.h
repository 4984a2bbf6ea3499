/* errclass: how bad a failure is; values match pgferry.state.ErrorClass. */
#ifndef PGFERRY_ERRCLASS_H
#define PGFERRY_ERRCLASS_H

typedef enum {
    ERRCLASS_NONE = 0,
    ERRCLASS_TRANSIENT = 1, /* network, server restart, timeout: retry with backoff */
    ERRCLASS_FATAL = 2,     /* irrecoverable without an operator: do not retry */
} errclass_t;

#endif
