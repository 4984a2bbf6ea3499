/* json: nesting, commas, escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "json.h"

static void
test_nesting(void **state)
{
    (void)state;
    json_t j;
    json_init(&j);
    json_obj_begin(&j);
    json_kv_str(&j, "a", "x");
    json_kv_int(&j, "b", -3);
    json_key(&j, "c");
    json_arr_begin(&j);
    json_uint(&j, 1);
    json_obj_begin(&j);
    json_kv_bool(&j, "d", true);
    json_obj_end(&j);
    json_null(&j);
    json_double(&j, NAN);
    json_arr_end(&j);
    json_kv_str(&j, "e", NULL);
    json_obj_end(&j);
    assert_string_equal(j.data,
                        "{\"a\":\"x\",\"b\":-3,\"c\":[1,{\"d\":true},null,null],\"e\":null}");
    json_free(&j);
}

static void
test_escape(void **state)
{
    (void)state;
    char out[64];
    json_escape("a\"b\\c\nd\x01", out, sizeof(out));
    assert_string_equal(out, "a\\\"b\\\\c\\nd\\u0001");
    json_escape("abcdef", out, 4);
    assert_string_equal(out, "abc");
    json_t j;
    json_init(&j);
    char big[1000];
    memset(big, '"', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    json_str(&j, big);
    assert_int_equal(j.len, 2 + 2 * 999);
    json_free(&j);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
