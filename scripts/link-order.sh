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
# Rust names are stored without their hash where that is unambiguous (the hash
# changes with nearly every build), and build.rs matches them as section-name
# prefixes; generic instances that share a name keep the hash and go stale sooner. Rerun after large code changes or
# dependency updates (names that no longer exist are ignored; the layout just gets
# worse). Needs valgrind. Takes about 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build-static   # the measurement build (.cargo/config.toml)
SOM=target/x86_64-unknown-linux-gnu/release/som
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
# Rust functions, then C library functions (plain names), each once; callgrind's
# pseudo-entries (addresses, "(below main)") dropped.
# A Rust name is kept without its hash when no other function in the binary has the
# same unhashed name (generic instances often do: those keep the hash).
nm "$SOM" | awk '{print $NF}' | grep '^_ZN' | sed -E 's/17h[0-9a-f]{16}E$//' | sort | uniq -d > "$TMP/shared.txt"
cat "$TMP/interp.txt" "$TMP/threaded.txt" | grep '^_ZN' |
  awk -v shared="$TMP/shared.txt" 'BEGIN {while ((getline n < shared) > 0) s[n] = 1}
    {k = $0; sub(/17h[0-9a-f]+E$/, "", k); out = (k in s) ? $0 : k; if (!seen[out]++) print out}' \
  > crates/som/link-order.txt
cat "$TMP/interp.txt" "$TMP/threaded.txt" | grep -v '^_ZN' | grep -E '^[A-Za-z_][A-Za-z0-9_.]*$' |
  awk '!seen[$0]++' >> crates/som/link-order.txt
echo "$(wc -l < "$TMP/interp.txt") interpreter and $(wc -l < "$TMP/threaded.txt") tier-1 functions in crates/som/link-order.txt" >&2
