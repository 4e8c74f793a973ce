#!/bin/bash
# Side-by-side time and peak RSS: ours (interp, threaded), SOM++, som-rs.
cd "$(dirname "$0")/../.."; TMP=$(mktemp -d)
SOM=${SOM_REPO:?path to a SOM-st/SOM checkout}; E=$SOM/Examples/Benchmarks; D=$PWD/benchmarks
R=${SOMRS:?path to som-interpreter-bc}; P=${SOMPP:?path to the SOM++ binary}
run() { # name vm cmd...
  local name=$1 vm=$2; shift 2
  for i in 1 2 3; do
    /usr/bin/time -f "%e %M" -o "$TMP/t" timeout 300 "$@" > "$TMP/o" 2>&1; rc=$?
    echo "$name $vm $rc $(cat "$TMP/t" | tail -1)"
  done
}
for b in "Storage 20" "Json 1" "DeltaBlue 1000" "Richards 1" "CD 100"; do
  set -- $b
  run $1 som2-interp target/x86_64-unknown-linux-gnu/release/som --mode interp -cp $D $D/BenchmarkHarness.som $1 3 $2
  run $1 som2-threaded target/x86_64-unknown-linux-gnu/release/som --mode threaded -cp $D $D/BenchmarkHarness.som $1 3 $2
  run $1 SOM++ $P -cp $SOM/Smalltalk:$D $D/BenchmarkHarness.som $1 3 $2
  run $1 som-rs $R -c $SOM/Smalltalk $D -- BenchmarkHarness $1 3 $2
done
run GCBench som2-interp target/x86_64-unknown-linux-gnu/release/som --mode interp -cp $E/GCBenchmark $E/GCBenchmark/GCBench.som
run GCBench som2-threaded target/x86_64-unknown-linux-gnu/release/som --mode threaded -cp $E/GCBenchmark $E/GCBenchmark/GCBench.som
run GCBench SOM++ $P -cp $SOM/Smalltalk:$E/GCBenchmark $E/GCBenchmark/GCBench.som
run GCBench som-rs $R -c $SOM/Smalltalk $E/GCBenchmark -- GCBench
run Churn20GB som2-interp target/x86_64-unknown-linux-gnu/release/som examples/AllocationChurn.som 200
