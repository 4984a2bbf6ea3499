/* chexpr: the expression check (see chexpr.h). */
#include "chexpr.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* words that begin a clause of CREATE TABLE or a query: outside brackets they would end the
 * expression and start something else */
static const char *const clause_words[] = {
    "SETTINGS", "ORDER",  "PRIMARY", "SAMPLE", "TTL",       "ENGINE", "PARTITION", "FORMAT",
    "UNION",    "SELECT", "FROM",    "WHERE",  "GROUP",     "HAVING", "LIMIT",     "INTO",
    "PREWHERE", "WITH",   "COMMENT", "EXCEPT", "INTERSECT", "INSERT", "DROP",      "ALTER",
    "CREATE",   "ATTACH", "DETACH",  "RENAME", "TRUNCATE",  "KILL",   "OPTIMIZE",  "SYSTEM",
    "GRANT",    "AS",     "BY",      "JOIN",   "FINAL",     "OFFSET"};

static bool
is_clause_word(const char *w, size_t n)
{
    for (size_t i = 0; i < sizeof(clause_words) / sizeof(clause_words[0]); i++) {
        if (strlen(clause_words[i]) == n && strncasecmp(w, clause_words[i], n) == 0)
            return true;
    }
    return false;
}

static bool
word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

bool
chexpr_check(const char *expr, const char *what, char *err, size_t errlen)
{
    size_t len = strlen(expr);
    if (len > CHEXPR_MAX_LEN) {
        snprintf(err, errlen, "%s: expression longer than %d bytes", what, CHEXPR_MAX_LEN);
        return false;
    }
    char stack[CHEXPR_MAX_LEN + 1]; /* open brackets */
    size_t depth = 0;
    bool content = false;
    for (size_t i = 0; i < len; i++) {
        char c = expr[i];
        if ((unsigned char)c < 0x20 || c == 0x7f) {
            snprintf(err, errlen, "%s: the expression has a control character", what);
            return false;
        }
        if (c == '\'' || c == '"' || c == '`') {
            /* a string literal or a quoted identifier: a doubled quote or a backslash escapes */
            size_t j = i + 1;
            for (;; j++) {
                if (j >= len) {
                    snprintf(err, errlen, "%s: the expression has an unclosed %c", what, c);
                    return false;
                }
                if ((unsigned char)expr[j] < 0x20 || expr[j] == 0x7f) {
                    snprintf(err, errlen, "%s: the expression has a control character", what);
                    return false;
                }
                if (expr[j] == '\\' && j + 1 < len) {
                    j++;
                    continue;
                }
                if (expr[j] == c) {
                    if (j + 1 < len && expr[j + 1] == c) {
                        j++;
                        continue;
                    }
                    break;
                }
            }
            i = j;
            content = true;
            continue;
        }
        if ((c == '-' && expr[i + 1] == '-') || (c == '/' && expr[i + 1] == '*') ||
            (c == '*' && expr[i + 1] == '/') || c == '#') {
            snprintf(err, errlen, "%s: the expression may not hold a comment (--, #, /* */)", what);
            return false;
        }
        if (c == ';') {
            snprintf(err, errlen, "%s: the expression may not hold ';'", what);
            return false;
        }
        if (c == '{' || c == '}') {
            snprintf(err, errlen, "%s: the expression may not hold '{' or '}'", what);
            return false;
        }
        if (c == '(' || c == '[') {
            stack[depth++] = c;
            content = true;
            continue;
        }
        if (c == ')' || c == ']') {
            char open = c == ')' ? '(' : '[';
            if (depth == 0 || stack[depth - 1] != open) {
                snprintf(err, errlen, "%s: the expression has an unmatched '%c'", what, c);
                return false;
            }
            depth--;
            continue;
        }
        if (word_char(c)) {
            size_t j = i;
            while (j < len && word_char(expr[j]))
                j++;
            /* a word that starts with a digit is a number (1e5, 0x1F); one after '.' is a
             * member (t.order); neither is a keyword */
            bool member = false;
            for (size_t k = i; k > 0; k--) {
                if (expr[k - 1] == ' ')
                    continue;
                member = expr[k - 1] == '.';
                break;
            }
            if (depth == 0 && !isdigit((unsigned char)c) && !member &&
                is_clause_word(expr + i, j - i)) {
                snprintf(err, errlen,
                         "%s: the expression may not use %.*s outside parentheses (one "
                         "expression only, no further clauses; quote a column of that name "
                         "with backticks)",
                         what, (int)(j - i), expr + i);
                return false;
            }
            i = j - 1;
            content = true;
            continue;
        }
        if (c != ' ')
            content = true;
    }
    if (depth > 0) {
        snprintf(err, errlen, "%s: the expression has an unclosed '%c'", what, stack[depth - 1]);
        return false;
    }
    if (len > 0 && !content) {
        snprintf(err, errlen, "%s: the expression is empty", what);
        return false;
    }
    return true;
}
