# Shared by the shell tests (sourced first): the runfiles tree, the commands under test, a scratch
# directory, and "ok - NAME" / "not ok - NAME: why" lines with their count.
#
#   source "$(dirname "$0")/testlib.sh"
#   TRAIN=$(kiln_tool train) || exit 1   # tools/train from Bazel's runfiles, or $KILN_TRAIN outside Bazel
#   enter_scratch train_cli              # cd into an empty $TEST_TMPDIR/train_cli (a new temp dir outside)
#   ok NAME; not_ok NAME WHY; indent FILE
#   finish                               # "# N passed, N failed"; status 1 if any failed
runfiles="${TEST_SRCDIR:-${RUNFILES_DIR:-$0.runfiles}}"
PASSED=0
FAILED=0
ok() { echo "ok - $1"; PASSED=$((PASSED + 1)); }
not_ok() { echo "not ok - $1: $2"; FAILED=$((FAILED + 1)); }
indent() { sed 's/^/    | /' "$1"; }

# kiln_tool NAME: the absolute path of the command tools/NAME ($KILN_NAME overrides it).
kiln_tool() {
  local var p
  var="KILN_$(tr '[:lower:]' '[:upper:]' <<<"$1")"
  p="${!var:-$runfiles/kiln/tools/$1}"
  if [[ ! -x "$p" ]]; then
    echo "not ok - setup: no $1 binary at $p" >&2
    return 1
  fi
  echo "$(cd "$(dirname "$p")" && pwd)/$(basename "$p")"
}

enter_scratch() {
  W="${TEST_TMPDIR:-$(mktemp -d)}/$1"
  rm -rf "$W" && mkdir -p "$W" && cd "$W" || exit 1
}

# Prefix for mpirun: under --config=asan (ASAN_OPTIONS set), LeakSanitizer in the ranks skips Open MPI's own
# allocations (tests/lsan_mpi.supp). Their stacks pass through libraries built without frame pointers, so
# the ranks record allocation stacks with the slow unwinder, which sees the MPI frames the suppressions name.
# `env` execs mpirun, so a backgrounded "${MPIRUN_ENV[@]}" mpirun ... & still has mpirun's pid in $!.
MPIRUN_ENV=()
if [[ -n "${ASAN_OPTIONS:-}" ]]; then
  MPIRUN_ENV=(env "ASAN_OPTIONS=$ASAN_OPTIONS:fast_unwind_on_malloc=0"
    "LSAN_OPTIONS=${LSAN_OPTIONS:-}:suppressions=$runfiles/kiln/tests/lsan_mpi.supp")
fi

finish() {
  echo "# $PASSED passed, $FAILED failed"
  ((FAILED == 0))
}
