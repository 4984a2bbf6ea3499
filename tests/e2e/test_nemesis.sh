# The randomized differential test with faults, on a short budget (tests/nemesis/run): two seeds
# of 40 s each, new seeds every run (printed; a failing one replays with --seed). Every
# difference it finds is a bug.
set -euo pipefail
exec bash "$(dirname "$0")/../nemesis/run" --seeds "${PGFERRY_NEMESIS_SEEDS:-2}" \
    --seconds "${PGFERRY_NEMESIS_SECONDS:-40}"
