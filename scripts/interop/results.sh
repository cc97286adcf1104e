# Sourced by the interop suites: PASS/FAIL/SKIP lines and the closing tally
# ("N passed, M failed, K skipped") that scripts/interop-berth adds up.
# shellcheck shell=bash
PASSED=0 FAILED=0 SKIPPED=0
pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1: $2"; FAILED=$((FAILED + 1)); }
skip() { echo "SKIP $1: $2"; SKIPPED=$((SKIPPED + 1)); }
finish() { echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"; [ "$FAILED" = 0 ]; exit $?; }
# require SUITE TOOL...: ends the suite as skipped, naming what is missing, unless every TOOL is installed.
require() {
    local suite=$1 tool
    shift
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "SKIP $suite: $tool is not installed"
            SKIPPED=1
            finish
        fi
    done
}
