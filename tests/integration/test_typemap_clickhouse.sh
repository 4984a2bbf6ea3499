# typemap's RowBinary encodings against the real ClickHouse: every kind of column, edge values
# (NaN, infinities, denormals, integer limits, 38-digit decimals, a 1000-digit numeric, UUID
# byte order, every-byte bytea, control characters) and NULLs come back exactly.
source "$(dirname "$0")/../lib/common.sh"
"$TOOLS/pgferry-test-typemap-roundtrip" "$PGFERRY_CH_URL" || fail "RowBinary round trip"
log "ok"
