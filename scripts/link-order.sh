#!/bin/bash
# Regenerates crates/som/link-order.txt, the symbol order the linker lays out the
# `som` binary's code in (crates/som/build.rs passes it to LLD).
#
# Why: the interpreter runs about 600 KB of the binary's 5.6 MB of code, but
# spread over the whole text section, and the kernel maps 64 KB around every page
# touched; packing the functions a run executes together took peak RSS down by
# about 1.5 MB on every program (docs/GC.md). This script runs the benchmarks under
# callgrind, once interpreted and once in threaded mode, and lists every function
# executed: interpreter-mode functions first, hottest first, then those only tier 1
# runs. Functions not listed keep the compiler's order after these.
#
# Symbol names embed hashes that change with the toolchain and dependency versions:
# rerun after `cargo update` or a toolchain change (stale names are ignored, the
# layout just gets worse). Needs valgrind. Takes about 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p som
SOM=$(cargo metadata --format-version 1 --no-deps | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')/x86_64-unknown-linux-gnu/release/som
[ -x "$SOM" ] || SOM=target/release/som
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
D=benchmarks
profile() { # mode out args...
  local mode=$1 out=$2; shift 2
  timeout 600 valgrind --tool=callgrind --demangle=no --callgrind-out-file="$out" \
    "$SOM" --mode "$mode" "$@" > /dev/null 2>&1 || true
}
profile interp "$TMP/hello.interp" examples/Hello.som
# The benchmarks at the small sizes of their correctness test.
grep -o '("[A-Za-z]*", "[0-9]*")' crates/som/tests/benchmarks.rs | tr -d '(",)' |
while read -r b inner; do
  echo "profiling $b" >&2
  profile interp "$TMP/$b.interp" -cp $D $D/BenchmarkHarness.som "$b" 1 "$inner"
  profile threaded "$TMP/$b.threaded" --jit tier1_threshold=2 -cp $D $D/BenchmarkHarness.som "$b" 2 "$inner"
done
# Self cost per function, summed over one mode's runs, hottest first.
rank() {
  for f in "$TMP"/*."$1"; do
    callgrind_annotate --threshold=100 --inclusive=no "$f" 2>/dev/null
  done | sed -n 's/^ *\([0-9,]*\) ([^)]*) *[^:]*:\([^ ]*\).*/\1 \2/p' | tr -d ',' |
    sed "s/'[0-9]*\$//" | awk '{c[$2]+=$1} END {for (f in c) print c[f], f}' | sort -rn | cut -d' ' -f2
}
rank interp > "$TMP/interp.txt"
rank threaded | grep -vxF -f "$TMP/interp.txt" > "$TMP/threaded.txt" || true
cat "$TMP/interp.txt" "$TMP/threaded.txt" > crates/som/link-order.txt
echo "$(wc -l < "$TMP/interp.txt") interpreter and $(wc -l < "$TMP/threaded.txt") tier-1 functions in crates/som/link-order.txt" >&2
