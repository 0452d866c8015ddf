#!/usr/bin/env bash
# The whole test suite, stage by stage (make test): the release build's
# tests, the same under ASan and UBSan, bounded fuzz runs, and the VM stage.
# Every stage runs even when an earlier one failed, so one run shows every
# failure; the wall time of each stage is printed at the end, and the last
# line counts the stages ("N passed, N failed").
#
#   tests/run-stages.sh BUILD BUILD_SAN BUILD_FUZZ
set -uo pipefail
build=$1 san=$2 fuzz=$3
here=$(cd "$(dirname "$0")" && pwd)
names=() times=() verdicts=()
pass=0 fail=0

stage() {
	local name=$1 t0 rc
	shift
	echo "== $name"
	t0=$(date +%s)
	"$@"
	rc=$?
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
stage "fuzz harnesses (bounded runs)" ctest --test-dir "$fuzz" --output-on-failure -L fuzz
stage "VM stage (Debian cloud kernels under qemu, every hook tier)" "$here/vm/run.sh" "$build"

echo
echo "Stages"
for i in "${!names[@]}"; do
	printf '  %-62s %5d s  %s\n' "${names[$i]}" "${times[$i]}" "${verdicts[$i]}"
done
echo "stages: $pass passed, $fail failed"
[ $fail -eq 0 ]
