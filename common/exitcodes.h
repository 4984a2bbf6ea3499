/* exitcodes: process exit codes of the three programs, in one place. */
#ifndef PGFERRY_EXITCODES_H
#define PGFERRY_EXITCODES_H

#define EXIT_OK 0
#define EXIT_FAILURE_GENERIC 1 /* pgferryctl: the daemon answered with an error */
#define EXIT_USAGE 2           /* bad command line or configuration */
#define EXIT_TRANSIENT 3       /* worker: retryable failure */
#define EXIT_FATAL 4           /* worker: irrecoverable failure */
#define EXIT_UNREACHABLE 5     /* pgferryctl: no answer from the daemon */
#define EXIT_STOPPED 6         /* worker: stopped on request before finishing */
#define EXIT_VERIFY_MISMATCH 7 /* pgferryctl verify: source and destination differ */
#define EXIT_STORE_DAMAGED 8   /* pgferryd: state.mdb truncated or damaged (not restarted) */

#endif
