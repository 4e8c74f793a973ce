//! Resident heap memory follows the heap limit, not MMTk's 4 MiB chunks: after
//! churning through many times the limit in garbage, empty blocks have been given
//! back to the OS and what stays resident is about the limit.
//!
//! One test in its own file (its own process), because the collector's options are
//! the first VM's and this one needs a small minimum heap.

use som_vm::gc::{self, GcOptions};
use som_vm::{Options, Vm};
use std::hint::black_box;

#[test]
fn churn_leaves_about_the_heap_limit_resident() {
    let options = Options {
        gc: GcOptions {
            min_heap_bytes: 1 << 20,
            stress_every: 0,
            ..GcOptions::default()
        },
        ..Options::default()
    };
    let mut vm = Vm::new(options).expect("bootstrap");
    // 64 MB of short-lived arrays and strings, with a little live data.
    let keep = vm.alloc_array(100);
    for i in 0..400_000 {
        black_box(vm.alloc_array(14));
        black_box(vm.alloc_string("some garbage for the collector"));
        if i % 4000 == 0 {
            black_box(vm.alloc_array(10));
        }
    }
    black_box(keep);
    assert!(vm.heap.collect(), "a collection runs");
    assert!(
        gc::released_blocks() > 0,
        "the first chunk's freed blocks were given back"
    );
    let resident = gc::resident_bytes();
    // The limit is the 1 MiB minimum (the live data is tiny); without trimming the
    // whole 4 MiB chunk is resident.
    assert!(
        resident <= 3 << 19,
        "resident small-object space {resident} bytes, expected at most 1.5 MiB"
    );
}
