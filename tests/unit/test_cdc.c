/* cdc: LSN text form both ways, and refusal of malformed positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

#include "cdc.h"
#include "lsn.h"

static void
test_lsn(void **state)
{
    (void)state;
    uint64_t v = 0;
    char s[32];
    assert_true(lsn_parse("16/B374D848", &v));
    assert_true(v == ((uint64_t)0x16 << 32 | 0xB374D848u));
    lsn_format(v, s, sizeof(s));
    assert_string_equal(s, "16/B374D848");
    assert_true(lsn_parse("0/0", &v));
    assert_true(v == 0);
    lsn_format(UINT64_MAX, s, sizeof(s));
    assert_string_equal(s, "FFFFFFFF/FFFFFFFF");
    assert_false(lsn_parse("", &v));
    assert_false(lsn_parse("16", &v));
    assert_false(lsn_parse("16/B374D848x", &v));
    assert_false(lsn_parse(NULL, &v));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lsn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
