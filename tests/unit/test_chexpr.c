/* chexpr: --partition-by expressions pgferry accepts, and hostile ones it refuses (a clause
 * smuggled in after a closing parenthesis, comments, unbalanced brackets or quotes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "chexpr.h"

static void
test_good(void **state)
{
    (void)state;
    const char *good[] = {
        "toYYYYMM(created_at)",
        "id % 16",
        "(region, toYYYYMM(d))",
        "intDiv(id, 1000000)",
        "order_date",
        "`order`",
        "\"select\"",
        "t.order",
        "toStartOfWeek(d, 1)",
        "if(x = 'a -- b; SETTINGS', 1, 2)",
        "concat('it''s', 'a\\'b', `we``ird`)",
        "arrayElement([1, 2, 3], 1)",
        "x - -1",
        "id / 2",
        "1e5",
        "toDate(ts) - toIntervalDay(1)",
        "(SELECT)", /* inside brackets: ClickHouse judges it */
    };
    char err[400];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!chexpr_check(good[i], "--partition-by", err, sizeof(err)))
            fail_msg("refused %s: %s", good[i], err);
    }
}

static void
test_hostile(void **state)
{
    (void)state;
    static const struct {
        const char *expr, *reason;
    } bad[] = {
        {"id) ORDER BY (tuple()) SETTINGS index_granularity = 1 --", "unmatched ')'"},
        {"id) ORDER BY (tuple()) SETTINGS ... --", "unmatched ')'"},
        {"id ORDER BY tuple()", "ORDER outside parentheses"},
        {"id SETTINGS index_granularity=1", "SETTINGS outside"},
        {"id settings index_granularity=1", "settings outside"},
        {"x TTL d + INTERVAL 1 DAY", "TTL outside"},
        {"x ENGINE = Memory", "ENGINE outside"},
        {"x PRIMARY KEY y", "PRIMARY outside"},
        {"x SAMPLE BY y", "SAMPLE outside"},
        {"x PARTITION BY y", "PARTITION outside"},
        {"x FORMAT TSV", "FORMAT outside"},
        {"x UNION ALL SELECT 1", "UNION outside"},
        {"id -- the rest", "comment"},
        {"id /* x */", "comment"},
        {"id */", "comment"},
        {"id # x", "comment"},
        {"id; DROP TABLE t", "';'"},
        {"(id", "unclosed '('"},
        {"id)", "unmatched ')'"},
        {"[id)", "unmatched ')'"},
        {"(id]", "unmatched ']'"},
        {"'abc", "unclosed '"},
        {"`abc", "unclosed `"},
        {"\"abc", "unclosed \""},
        {"'a\\'", "unclosed '"},
        {"id\n) ORDER BY x", "control character"},
        {"'a\tb'", "control character"},
        {"{x:UInt8}", "'{'"},
        {"   ", "empty"},
    };
    char err[400];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (chexpr_check(bad[i].expr, "--partition-by for public.t", err, sizeof(err)))
            fail_msg("accepted %s", bad[i].expr);
        if (!strstr(err, bad[i].reason))
            fail_msg("%s: reason '%s' lacks '%s'", bad[i].expr, err, bad[i].reason);
        if (!strstr(err, "--partition-by for public.t"))
            fail_msg("%s: reason '%s' does not name the option", bad[i].expr, err);
    }
}

static void
test_length(void **state)
{
    (void)state;
    char e[CHEXPR_MAX_LEN + 2], err[400];
    memset(e, 'x', sizeof(e) - 1);
    e[sizeof(e) - 1] = '\0';
    assert_false(chexpr_check(e, "--partition-by", err, sizeof(err)));
    assert_non_null(strstr(err, "longer than 1000"));
    e[CHEXPR_MAX_LEN] = '\0';
    assert_true(chexpr_check(e, "--partition-by", err, sizeof(err)));
    /* deep nesting within the cap */
    for (size_t i = 0; i < CHEXPR_MAX_LEN / 2; i++) {
        e[i] = '(';
        e[CHEXPR_MAX_LEN - 1 - i] = ')';
    }
    assert_true(chexpr_check(e, "--partition-by", err, sizeof(err)));
    assert_true(chexpr_check("", "--partition-by", err, sizeof(err))); /* not given */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
