#!/usr/bin/env bash
# The whole test suite, stage by stage (make test): the release build's
# tests, the same under ASan and UBSan, bounded fuzz runs, and the VM stage.
# Every stage runs even when an earlier one failed, so one run shows every
# failure; the wall time of each stage is printed at the end, and the last
# line counts the tests of every stage ("tests: N passed, N failed": ctest's
# tests, and the VM stage's kernel-by-tier cells). PF_SETUP_SECONDS, when
# set (by .ci/run), adds the set-up and build time to the table.
#
#   tests/run-stages.sh BUILD BUILD_SAN BUILD_FUZZ
set -uo pipefail
build=$1 san=$2 fuzz=$3
here=$(cd "$(dirname "$0")" && pwd)
names=() times=() verdicts=()
pass=0 fail=0 tpass=0 tfail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

stage() {
	local name=$1 t0 rc
	shift
	echo "== $name"
	t0=$(date +%s)
	"$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	# ctest: "NN% tests passed, F tests failed out of T"; other stages (the VM
	# stage's cells): "P passed, F failed".
	p= f= t=
	read -r f t < <(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1 \2/p' "$out" | tail -n 1)
	if [ -n "$t" ]; then
		p=$((t - f))
	else
		read -r p f < <(sed -n 's/.* \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*/\1 \2/p' "$out" | tail -n 1)
	fi
	tpass=$((tpass + ${p:-0})) tfail=$((tfail + ${f:-0}))
	names+=("$name")
	times+=($(($(date +%s) - t0)))
	if [ $rc -eq 0 ]; then
		verdicts+=(PASS)
		pass=$((pass + 1))
	else
		verdicts+=("FAIL (exit $rc)")
		fail=$((fail + 1))
	fi
}

stage "tests (release build)" ctest --test-dir "$build" --output-on-failure
stage "tests (ASan + UBSan build)" ctest --test-dir "$san" --output-on-failure
# Two harnesses at a time: each is one process with a fixed time budget.
stage "fuzz harnesses (bounded runs)" ctest --test-dir "$fuzz" --output-on-failure -L fuzz -j 2
stage "VM stage (Debian cloud kernels under qemu, every hook tier)" "$here/vm/run.sh" "$build"

echo
echo "Stages"
[ -n "${PF_SETUP_SECONDS:-}" ] && printf '  %-62s %5d s\n' "set-up and build" "$PF_SETUP_SECONDS"
for i in "${!names[@]}"; do
	printf '  %-62s %5d s  %s\n' "${names[$i]}" "${times[$i]}" "${verdicts[$i]}"
done
echo "stages: $pass of $((pass + fail)) passed"
echo "tests: $tpass passed, $tfail failed"
[ $fail -eq 0 ]
