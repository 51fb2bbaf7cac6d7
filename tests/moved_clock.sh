#!/usr/bin/env bash
# Runs pytest with the wall clock moved to another instant (libfaketime, Debian's `faketime`), so
# that a test mixing a fixed date with "now" fails today rather than on some later day (issue #24).
#
#   tests/moved_clock.sh INSTANT [pytest arguments...]
#
# INSTANT is anything GNU date reads, with its zone: '2028-01-01 00:05 +07:00'. The clock is moved
# by an offset (FAKETIME=+Ns), not set to an absolute start: every process the tests start (the
# mock portal, PostgreSQL, `sys.executable` children) inherits the same offset, so they agree on the
# time as they would on a machine whose clock really reads INSTANT. The monotonic clock moves too:
# libfaketime 0.9.10 makes Python's sleeps fail with EINVAL when only the wall clock is faked
# (libfaketime issue 426). The price (its issue 390): a thread waiting with a timeout
# (threading.Event.wait(t), Lock.acquire(timeout=t); asyncio's own waits are fine) never wakes by
# the timeout, so tests of such code (the claim keeper's lease renewals) do not belong in a run
# here; the caller should cap each test's time (pytest --timeout) so that a new one fails, not hangs.
# Files keep their real times (NO_FAKE_STAT), so bytecode caches stay valid.
#
# Without faketime this says so and does nothing, except where the run must prove it (CI=true or
# DVCSYNC_REQUIRE_FAKETIME=1): there it fails.
set -euo pipefail

if (($# < 1)); then
  echo "usage: $0 INSTANT [pytest arguments...]" >&2
  exit 2
fi
instant=$1
shift
if ! command -v faketime >/dev/null; then
  if [[ ${CI:-} == true || ${DVCSYNC_REQUIRE_FAKETIME:-} == 1 ]]; then
    echo "moved-clock tests: faketime is missing (apt-get install faketime); they may not skip here" >&2
    exit 1
  fi
  echo "moved-clock tests SKIPPED: faketime is not installed (apt-get install faketime)" >&2
  exit 0
fi
target=$(date -d "$instant" +%s)
offset=$((target - $(date +%s)))
echo "== pytest with the clock moved to $(date -u -d "@$target" '+%Y-%m-%d %H:%M UTC')" \
  "= $(TZ=Asia/Ho_Chi_Minh date -d "@$target" '+%Y-%m-%d %H:%M') in the province (offset ${offset}s)"
# The check below fails if faketime is installed but does not reach Python (a wrong build, a
# static interpreter): a run on the real clock would prove nothing.
NO_FAKE_STAT=1 faketime -f "+${offset}s" "${PYTEST_PYTHON:-.venv/bin/python}" -c "
import sys, time
sys.exit(0 if abs(time.time() - $target) < 600 else 'libfaketime did not move the clock')
"
exec env NO_FAKE_STAT=1 faketime -f "+${offset}s" "${PYTEST_PYTHON:-.venv/bin/python}" -m pytest "$@"
