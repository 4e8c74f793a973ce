//! The collector seen from Rust: roots in VM tables and in Rust locals keep objects
//! alive, garbage is reclaimed, thousands of collections in a row complete (the
//! mutator/collector handshake loses no wake-up), and several VMs (mutators) in one
//! process collect concurrently.
//!
//! Freed lines are reused by later allocations, so an object the collector wrongly
//! freed shows up here as changed contents.

use som_vm::gc;
use som_vm::object::{as_ref, header, Slots};
use som_vm::value::Value;
use som_vm::{Options, Vm};
use std::hint::black_box;

fn vm() -> Box<Vm> {
    Vm::new(Options::default()).expect("bootstrap")
}

/// A list of `n` two-element arrays `(i, next)`, reachable only from the answer.
fn build_list(vm: &mut Vm, n: i64) -> Value {
    let mut head = vm.nil;
    for i in 0..n {
        let cell = vm.alloc_array(2);
        // SAFETY: a fresh Array of two elements.
        unsafe {
            let items = as_ref::<Slots>(cell).items();
            items[0] = Value::int(i);
            items[1] = head;
        }
        head = cell;
    }
    head
}

/// The sum of the list's numbers and its length.
fn walk_list(vm: &Vm, mut cell: Value) -> (i64, i64) {
    let (mut sum, mut len) = (0, 0);
    while cell != vm.nil {
        // SAFETY: the cells are two-element Arrays built by `build_list`.
        let items = unsafe { as_ref::<Slots>(cell).items() };
        assert!(items[0].is_int());
        sum += items[0].as_int();
        len += 1;
        cell = items[1];
    }
    (sum, len)
}

fn churn(vm: &mut Vm, objects: usize) {
    for _ in 0..objects {
        black_box(vm.alloc_array(2));
        black_box(vm.alloc_string("garbage!"));
    }
}

#[test]
fn thousands_of_collections_in_a_row_keep_global_roots() {
    let mut vm = vm();
    let list = build_list(&mut vm, 1000);
    let name = vm.symbol("GcTestList");
    vm.set_global(name, list);
    let before = gc::stats().collections;
    for _ in 0..3000 {
        assert!(vm.heap.collect());
        churn(&mut vm, 10);
    }
    assert!(gc::stats().collections >= before + 3000);
    let list = vm.global(name).unwrap();
    assert_eq!(walk_list(&vm, list), (999 * 1000 / 2, 1000));
}

#[test]
fn values_held_only_in_rust_locals_survive() {
    let mut vm = vm();
    let s = vm.alloc_string("precious");
    let list = build_list(&mut vm, 200);
    for _ in 0..200 {
        vm.heap.collect();
        churn(&mut vm, 50);
    }
    assert_eq!(vm.str_of(black_box(s)), "precious");
    assert_eq!(walk_list(&vm, black_box(list)), (199 * 200 / 2, 200));
}

#[test]
fn garbage_is_reclaimed() {
    let mut vm = vm();
    vm.heap.collect();
    let baseline = vm.heap.used_bytes();
    // About 400 MB in total, none of it kept.
    for _ in 0..100 {
        for _ in 0..1000 {
            black_box(vm.alloc_array(500));
        }
    }
    vm.heap.collect();
    let after = vm.heap.used_bytes();
    assert!(
        after < baseline + (64 << 20),
        "in use after collecting garbage: {after} bytes, before: {baseline}"
    );
    assert!(vm.heap.stats.bytes_allocated > 400_000_000);
}

/// Several VMs collecting back to back: each collection is requested by another VM
/// while the previous one's mutators are still waking up (a mutator that still counted
/// as parked from the previous collection ran during the next one, and MMTk panicked
/// with "request a GC pause in invalid status: InPause").
#[test]
fn several_vms_collect_concurrently() {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut vm = vm();
                let list = build_list(&mut vm, 300 + t);
                for _ in 0..500 {
                    vm.heap.collect();
                    churn(&mut vm, 2);
                }
                walk_list(&vm, black_box(list))
            })
        })
        .collect();
    for (t, h) in threads.into_iter().enumerate() {
        let n = 300 + t as i64;
        assert_eq!(h.join().unwrap(), (n * (n - 1) / 2, n));
    }
}

#[test]
fn identity_hashes_are_stable_and_spread() {
    let mut vm = vm();
    let root = vm.alloc_array(64);
    for i in 0..64 {
        let o = vm.alloc_array(1);
        // SAFETY: `root` is an Array of 64 elements.
        unsafe { as_ref::<Slots>(root).items()[i] = o };
    }
    let hashes_of = |root: Value| -> Vec<u32> {
        // SAFETY: `root` is an Array of objects.
        let items = unsafe { as_ref::<Slots>(root).items() };
        // SAFETY: each element is one of the arrays allocated above, kept alive by
        // `root`; nothing allocates while the headers are read.
        items.iter().map(|&o| unsafe { header(o) }.hash).collect()
    };
    let hashes = hashes_of(root);
    for _ in 0..20 {
        vm.heap.collect();
        churn(&mut vm, 100);
    }
    let again = hashes_of(black_box(root));
    assert_eq!(hashes, again);
    let mut distinct = hashes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), hashes.len());
}
