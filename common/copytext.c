/* copytext: one pass over the row; unescaping never makes a field longer, so it is in place. */
#include "copytext.h"

#include <string.h>
#include "hexdigit.h"

#include <stdio.h>

bool
copytext_split(char *row, size_t len, copytext_field_t *fields, size_t nfields, char *err,
               size_t errlen)
{
    if (len > 0 && row[len - 1] == '\n')
        len--;
    size_t i = 0, f = 0;
    for (;;) {
        if (f == nfields) {
            snprintf(err, errlen, "COPY row has more than %zu fields", nfields);
            return false;
        }
        size_t start = i;
        if (i + 2 <= len && row[i] == '\\' && row[i + 1] == 'N' &&
            (i + 2 == len || row[i + 2] == '\t')) {
            fields[f].ptr = NULL;
            fields[f].len = 0;
            i += 2;
        } else {
            /* fast path: up to the first backslash the field is its own text (most fields
             * have none), so find the tab and the backslash with memchr, without copying */
            const char *tab = memchr(row + i, '\t', len - i);
            size_t end = tab ? (size_t)(tab - row) : len;
            const char *bs = memchr(row + i, '\\', end - i);
            if (!bs)
                i = end;
            else
                i = (size_t)(bs - row);
            size_t w = i; /* write position, trails the read position */
            while (i < len && row[i] != '\t') {
                char c = row[i++];
                if (c != '\\') {
                    row[w++] = c;
                    continue;
                }
                if (i >= len) {
                    snprintf(err, errlen, "COPY row ends in a backslash");
                    return false;
                }
                c = row[i++];
                switch (c) {
                case 'b':
                    row[w++] = '\b';
                    break;
                case 'f':
                    row[w++] = '\f';
                    break;
                case 'n':
                    row[w++] = '\n';
                    break;
                case 'r':
                    row[w++] = '\r';
                    break;
                case 't':
                    row[w++] = '\t';
                    break;
                case 'v':
                    row[w++] = '\v';
                    break;
                case 'x': {
                    int v = 0, n = 0, h;
                    while (n < 2 && i < len && (h = hexdigit_value(row[i])) >= 0) {
                        v = v * 16 + h;
                        i++;
                        n++;
                    }
                    if (n == 0) {
                        row[w++] = 'x';
                        break;
                    }
                    row[w++] = (char)v;
                    break;
                }
                default:
                    if (c >= '0' && c <= '7') {
                        int v = c - '0', n = 1;
                        while (n < 3 && i < len && row[i] >= '0' && row[i] <= '7') {
                            v = v * 8 + (row[i++] - '0');
                            n++;
                        }
                        row[w++] = (char)v;
                    } else {
                        row[w++] = c; /* \\ and any other escaped character */
                    }
                }
            }
            fields[f].ptr = row + start;
            fields[f].len = w - start;
        }
        f++;
        if (i == len)
            break;
        i++; /* the tab */
    }
    if (f != nfields) {
        snprintf(err, errlen, "COPY row has %zu fields, expected %zu", f, nfields);
        return false;
    }
    return true;
}
