/* chclient: URL handling, version numbers, and a refused connection classed TRANSIENT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chclient.h"

static void
test_urls(void **state)
{
    (void)state;
    char err[256];
    ch_client_t *c = ch_client_new("http://u:p@127.0.0.1:8123", NULL, NULL, err, sizeof(err));
    assert_non_null(c);
    ch_client_destroy(&c);
    assert_null(c);
    assert_null(ch_client_new("ftp://h:1", NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "ftp"));
    assert_null(ch_client_new("not a url", NULL, NULL, err, sizeof(err)));
    assert_null(ch_client_new("http://h:1", NULL, "/nonexistent/pw", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/pw"));
}

static void
test_refused_is_transient(void **state)
{
    (void)state;
    char err[256];
    /* port 1 on loopback: nothing listens there, the kernel refuses at once */
    ch_client_t *c =
        ch_client_new("http://default:secret@127.0.0.1:1", NULL, NULL, err, sizeof(err));
    assert_non_null(c);
    errclass_t cls;
    char *v = ch_client_version(c, &cls, err, sizeof(err));
    assert_null(v);
    assert_int_equal(cls, ERRCLASS_TRANSIENT);
    assert_null(strstr(err, "secret"));
    ch_client_destroy(&c);
}

/* several endpoints: a failed one hands over to the next, the request is sent there at once,
 * and the switches are counted (here every endpoint refuses: each is tried once) */
static void
test_endpoint_failover(void **state)
{
    (void)state;
    char err[256];
    ch_client_t *c =
        ch_client_new("http://u:secret@127.0.0.1:1,http://127.0.0.1:2,http://127.0.0.1:3", NULL,
                      NULL, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(ch_client_endpoints(c), 3);
    assert_string_equal(ch_client_endpoint(c), "http://127.0.0.1:1/");
    assert_int_equal(ch_client_switches(c), 0);
    assert_int_equal(ch_client_query(c, "SELECT 1", NULL, err, sizeof(err)), ERRCLASS_TRANSIENT);
    assert_int_equal(ch_client_switches(c), 3);
    /* back at the first after one round; the message names the last endpoint tried */
    assert_string_equal(ch_client_endpoint(c), "http://127.0.0.1:1/");
    assert_non_null(strstr(err, "127.0.0.1:3"));
    assert_null(strstr(err, "secret"));
    /* an insert whose body is in memory goes to each endpoint too */
    assert_int_equal(ch_client_insert(c, "INSERT INTO t FORMAT TSV", "1\n", 2, err, sizeof(err)),
                     ERRCLASS_TRANSIENT);
    assert_int_equal(ch_client_switches(c), 6);
    assert_true(ch_client_set_settings(c, "insert_quorum=2"));
    ch_client_destroy(&c);
    /* one endpoint: nothing to switch to */
    c = ch_client_new("http://127.0.0.1:1", NULL, NULL, err, sizeof(err));
    assert_int_equal(ch_client_query(c, "SELECT 1", NULL, err, sizeof(err)), ERRCLASS_TRANSIENT);
    assert_int_equal(ch_client_switches(c), 0);
    ch_client_destroy(&c);
    assert_null(
        ch_client_new("http://127.0.0.1:1,,http://127.0.0.1:2", NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "empty entry"));
    assert_null(ch_client_new("http://127.0.0.1:1,ftp://h:2", NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "endpoint 2"));
}

/* A server on loopback that answers every request with HTTP 400 and an empty body (as
 * ClickHouse 18.16 answers a URL over 16 KB, or a proxy may); its port in *port. */
static pid_t
empty_400_server(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    assert_true(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(s, 8) == 0 &&
                getsockname(s, (struct sockaddr *)&a, &al) == 0);
    *port = ntohs(a.sin_port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid > 0) {
        close(s);
        return pid;
    }
    alarm(10);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        char buf[65536];
        size_t got = 0;
        while (got < sizeof(buf) - 1) { /* the request's head */
            ssize_t n = read(c, buf + got, sizeof(buf) - 1 - got);
            if (n <= 0)
                break;
            got += (size_t)n;
            buf[got] = '\0';
            if (strstr(buf, "\r\n\r\n"))
                break;
        }
        const char *r =
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        if (write(c, r, strlen(r)) < 0)
            _exit(1);
        shutdown(c, SHUT_WR);
        struct pollfd p = {c, POLLIN, 0};
        while (poll(&p, 1, 200) > 0 && read(c, buf, sizeof(buf)) > 0)
            ; /* the rest of the body, so that closing does not reset the reply */
        close(c);
    }
}

static long
produce_once(void *ud, char *buf, size_t cap)
{
    int *calls = ud;
    if ((*calls)++ || cap < 2)
        return 0;
    memcpy(buf, "1\n", 2);
    return 2;
}

/* An HTTP error with an empty reply says what was sent and the status, never "HTTP 400: " with
 * nothing after it; the statement's head stops before its first literal. */
static void
test_empty_error(void **state)
{
    (void)state;
    int port;
    pid_t srv = empty_400_server(&port);
    char url[64], err[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    ch_client_t *c = ch_client_new(url, NULL, NULL, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(
        ch_client_query(c, "SELECT count() FROM db.t WHERE k = 'secret'", NULL, err, sizeof(err)),
        ERRCLASS_TRANSIENT);
    assert_non_null(strstr(err, "ClickHouse HTTP 400"));
    assert_non_null(strstr(err, "empty reply"));
    assert_non_null(strstr(err, "SELECT count() FROM db.t WHERE k = "));
    assert_null(strstr(err, "secret"));
    assert_non_null(strstr(err, "a body of 43 bytes"));
    assert_int_equal(
        ch_client_insert(c, "INSERT INTO db.t (a, b) FORMAT TSV", "1\t2\n", 4, err, sizeof(err)),
        ERRCLASS_TRANSIENT);
    assert_non_null(strstr(err, "INSERT INTO db.t (a, b) FORMAT TSV"));
    int calls = 0;
    assert_int_equal(ch_client_insert_stream(c, "INSERT INTO db.t (a) FORMAT TSV", produce_once,
                                             &calls, err, sizeof(err)),
                     ERRCLASS_TRANSIENT);
    assert_non_null(strstr(err, "INSERT INTO db.t (a) FORMAT TSV"));
    assert_non_null(strstr(err, "streamed body"));
    ch_client_destroy(&c);
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
}

static void
test_version_number(void **state)
{
    (void)state;
    assert_int_equal(ch_version_number("18.16.1"), 18016001);
    assert_int_equal(ch_version_number("23.8.2.7"), 23008002);
    assert_true(ch_version_number("20.1.1") > ch_version_number("19.17.9"));
    assert_int_equal(ch_version_number("garbage"), 0);
}

static void
test_classify(void **state)
{
    (void)state;
    static const struct {
        long status;
        const char *body;
        errclass_t want;
    } cases[] = {
        /* 18.16 spelling and the newer one; a missing table is not final (a server shutting
         * down answers so for every table) */
        {404, "Code: 60, e.displayText() = DB::Exception: Table db.t doesn't exist., e.what()",
         ERRCLASS_TRANSIENT},
        {404, "Code: 60. DB::Exception: Table db.t does not exist. (UNKNOWN_TABLE)",
         ERRCLASS_TRANSIENT},
        {500, "Code: 81. DB::Exception: Database x does not exist", ERRCLASS_TRANSIENT},
        {516, "Code: 516. DB::Exception: default: Authentication failed", ERRCLASS_FATAL},
        {500, "Code: 192, e.displayText() = DB::Exception: Unknown user x", ERRCLASS_FATAL},
        {500, "Code: 53, e.displayText() = DB::Exception: Type mismatch", ERRCLASS_FATAL},
        {400, "Code: 62, e.displayText() = DB::Exception: Syntax error", ERRCLASS_FATAL},
        {403, "", ERRCLASS_FATAL},
        {401, "anything", ERRCLASS_FATAL},
        /* temporary: retried, Degraded while they last */
        {500, "Code: 252, e.displayText() = DB::Exception: Too many parts (309)",
         ERRCLASS_TRANSIENT},
        {500, "Code: 241. DB::Exception: Memory limit (for query) exceeded", ERRCLASS_TRANSIENT},
        {500, "Code: 242. DB::Exception: Table is in readonly mode", ERRCLASS_TRANSIENT},
        {500, "Code: 999. Coordination::Exception: Session expired", ERRCLASS_TRANSIENT},
        {500, "Code: 225. DB::Exception: ZooKeeper session has been expired", ERRCLASS_TRANSIENT},
        {500, "Code: 159. DB::Exception: Timeout exceeded", ERRCLASS_TRANSIENT},
        {500, "Code: 164, e.displayText() = DB::Exception: Cannot insert in readonly mode",
         ERRCLASS_TRANSIENT},
        {500, "Code: 319. DB::Exception: Unknown status of insert", ERRCLASS_TRANSIENT},
        {500, "Code: 1000, e.displayText() = DB::Exception: Poco exception", ERRCLASS_TRANSIENT},
        {501,
         "Code: 48, e.displayText() = DB::Exception: There was an error on [127.0.0.1:9000]: "
         "Cannot enqueue replicated DDL query for a replicated shard",
         ERRCLASS_TRANSIENT},
        {501, "Code: 48, e.displayText() = DB::Exception: Not implemented", ERRCLASS_FATAL},
        {502, "<html>Bad Gateway</html>", ERRCLASS_TRANSIENT},
        {500, "", ERRCLASS_TRANSIENT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        errclass_t got = ch_classify(cases[i].status, cases[i].body);
        if (got != cases[i].want)
            fail_msg("case %zu (%ld %s): got %d, want %d", i, cases[i].status, cases[i].body,
                     (int)got, (int)cases[i].want);
    }
    assert_int_equal(ch_error_code("Code: 60, e.displayText()"), 60);
    assert_int_equal(ch_error_code("xx Code: 252. DB::Exception"), 252);
    assert_int_equal(ch_error_code("no code"), 0);
    assert_int_equal(ch_error_code(NULL), 0);
}

/* the password leaves no trace in an error text, in any of the forms a server may quote it */
static void
test_scrub(void **state)
{
    (void)state;
    const char *pw = "pa'ss\\w\"d x";
    struct {
        const char *in, *want;
    } cases[] = {
        {"as is: pa'ss\\w\"d x.", "as is: ***."},
        {"Syntax error ('pa\\'ss\\\\w\"d x')", "Syntax error ('***')"},
        {"doubled pa'ss\\\\w\"d x", "doubled ***"},
        {"dq \"pa'ss\\\\w\\\"d x\"", "dq \"***\""},
        {"twice 'pa\\\\\\'ss\\\\\\\\w\"d x'", "twice '***'"},
        {"url pa%27ss%5Cw%22d%20x&", "url ***&"},
        {"url pa%27ss%5cw%22d%20x", "url ***"},
        {"two: pa'ss\\w\"d x and pa%27ss%5Cw%22d%20x", "two: *** and ***"},
        {"nothing here: pa'ss", "nothing here: pa'ss"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char t[256];
        snprintf(t, sizeof(t), "%s", cases[i].in);
        ch_scrub_secret(t, sizeof(t), pw);
        if (strcmp(t, cases[i].want) != 0)
            fail_msg("case %zu: got [%s], want [%s]", i, t, cases[i].want);
    }
    /* a short password grows the text: cut at cap, still NUL-terminated */
    char t[8] = "aaaaaaa";
    ch_scrub_secret(t, sizeof(t), "a");
    assert_string_equal(t, "*******");
    /* no password: unchanged */
    snprintf(t, sizeof(t), "abc");
    ch_scrub_secret(t, sizeof(t), "");
    assert_string_equal(t, "abc");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_refused_is_transient),
        cmocka_unit_test(test_endpoint_failover),
        cmocka_unit_test(test_empty_error),
        cmocka_unit_test(test_version_number),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_scrub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
