//! Mutators and the stop-the-world handshake.
//!
//! Every [`crate::Vm`] is one MMTk mutator, described by a [`MutatorRecord`] in a
//! process-wide registry. The record's address is the mutator's `tls`, so MMTk's
//! callbacks find the VM whose roots to scan.
//!
//! The handshake is explicit, in one mutex-protected [`Registry`] with one condition
//! variable, so no wake-up can be lost (som-rs's binding loses one: its collector can
//! run and resume before the mutator has parked):
//! * a mutator that must wait for a collection (`block_for_gc`) spills its registers,
//!   publishes its stack extent, marks itself `parked` and waits until the registry's
//!   `epoch` moves on;
//! * `stop_all_mutators` marks a collection in progress and waits until no registered
//!   mutator is running, then hands them all to MMTk;
//! * `resume_mutators` ends the collection, clears every `parked` flag and advances the
//!   epoch, waking the parked. (Clearing the flags there, not in each waking mutator,
//!   matters: a mutator still waiting for the lock after one collection would otherwise
//!   count as parked for the next and run during it.)
//!
//! Mutators register and leave only while no collection is in progress, and a
//! collection does not start while one is registering or leaving.

use super::binding::Som;
use super::{mmtk, COLLECTIONS, PAUSE_NANOS};
use crate::universe::Vm;
use mmtk::util::alloc::AllocationError;
use mmtk::util::opaque_pointer::OpaquePointer;
use mmtk::util::{Address, VMMutatorThread, VMThread, VMWorkerThread};
use mmtk::vm::{ActivePlan, Collection, GCThreadContext};
use mmtk::{memory_manager, Mutator};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// One VM as a mutator.
pub struct MutatorRecord {
    pub mutator: *mut Mutator<Som>,
    /// Whose roots this mutator has (null once the VM is being dropped).
    pub vm: *const Vm,
    /// While parked: the part of the native stack in use, `[lo, hi)`.
    pub stack: (usize, usize),
    /// Stopped for the collection in progress (or leaving, see `leaving`). Set by the
    /// mutator when it parks; cleared by `resume_mutators` for every mutator at once, so
    /// a mutator still waking up from one collection never counts as parked for the next.
    parked: bool,
    /// The VM is being dropped: it stays parked, with no roots, until it is removed.
    leaving: bool,
}

struct Registry {
    records: Vec<*mut MutatorRecord>,
    collecting: bool,
    /// Mutators being registered or removed (a collection waits for them).
    changing: usize,
    epoch: u64,
    pause_started: Option<Instant>,
}

// SAFETY: the records are only touched by their own thread while it runs, and by
// collector threads while it is parked (the registry's lock orders the two).
unsafe impl Send for Registry {}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    records: Vec::new(),
    collecting: false,
    changing: 0,
    epoch: 0,
    pause_started: None,
});
static CHANGED: Condvar = Condvar::new();

fn registry() -> MutexGuard<'static, Registry> {
    // A panic while holding the lock cannot leave the registry inconsistent (every
    // update is a single assignment), so a poisoned lock is still usable.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn wait(guard: MutexGuard<'static, Registry>) -> MutexGuard<'static, Registry> {
    CHANGED.wait(guard).unwrap_or_else(|e| e.into_inner())
}

fn tls_of(record: *mut MutatorRecord) -> VMMutatorThread {
    VMMutatorThread(VMThread(OpaquePointer::from_address(
        Address::from_mut_ptr(record),
    )))
}

pub fn record_of(tls: VMMutatorThread) -> *mut MutatorRecord {
    tls.0 .0.to_address().to_mut_ptr()
}

/// Registers a new mutator for `vm` (waiting out a collection in progress).
pub fn register(vm: *const Vm) -> *mut MutatorRecord {
    let record = Box::into_raw(Box::new(MutatorRecord {
        mutator: std::ptr::null_mut(),
        vm,
        stack: (0, 0),
        parked: false,
        leaving: false,
    }));
    begin_membership_change();
    let mutator = memory_manager::bind_mutator(mmtk(), tls_of(record));
    // SAFETY: `record` is a fresh allocation owned by the registry from now on.
    unsafe { (*record).mutator = Box::into_raw(mutator) };
    end_membership_change(|records| records.push(record));
    record
}

/// Removes a mutator whose VM is going away.
///
/// # Safety
/// `record` came from [`register`] and is not used afterwards.
pub unsafe fn unregister(record: *mut MutatorRecord) {
    {
        // While it waits for a collection to end, the leaving VM counts as parked, with
        // no roots: nothing will use its objects again.
        let _reg = registry();
        (*record).vm = std::ptr::null();
        (*record).stack = (0, 0);
        (*record).parked = true;
        (*record).leaving = true;
        CHANGED.notify_all();
    }
    begin_membership_change();
    let mut mutator = Box::from_raw((*record).mutator);
    memory_manager::destroy_mutator(&mut mutator);
    end_membership_change(|records| records.retain(|&r| r != record));
    drop(Box::from_raw(record));
}

/// Waits until no collection runs, then keeps the next one from starting (MMTk does
/// not expect mutators to come or go during a pause).
fn begin_membership_change() {
    let mut reg = registry();
    while reg.collecting {
        reg = wait(reg);
    }
    reg.changing += 1;
}

fn end_membership_change(update: impl FnOnce(&mut Vec<*mut MutatorRecord>)) {
    let mut reg = registry();
    update(&mut reg.records);
    reg.changing -= 1;
    CHANGED.notify_all();
}

/// Set while a collection waits for mutators to stop: a running mutator checks it at
/// every allocation and parks (its safepoint), so a VM that allocates without running
/// out of memory itself still lets another VM's collection proceed.
static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

/// The address of the flag [`safepoint`] tests, for compiled code that polls it.
pub fn stop_requested_flag() -> *const u8 {
    STOP_REQUESTED.as_ptr() as *const u8
}

/// The allocation safepoint: parks the calling mutator if a collection is waiting.
#[inline(always)]
pub fn safepoint(record: *mut MutatorRecord) {
    if STOP_REQUESTED.load(Ordering::Relaxed) {
        park(record, false);
    }
}

/// Parks the calling mutator until the collection it waits for has finished: the one
/// MMTk is about to run (`for_requested_gc`, from `block_for_gc`; it cannot finish
/// without this mutator), or the one in progress (a safepoint; if it has already
/// finished there is nothing to wait for).
fn park(record: *mut MutatorRecord, for_requested_gc: bool) {
    with_registers_on_stack(&mut |stack_lo| {
        let stack_hi = thread_stack_top(stack_lo);
        let mut reg = registry();
        if !for_requested_gc && !reg.collecting {
            return;
        }
        let epoch = reg.epoch;
        // SAFETY: the record belongs to this thread; collectors read it only once
        // `parked` is set, under the lock.
        unsafe {
            (*record).stack = (stack_lo, stack_hi);
            (*record).parked = true;
        }
        CHANGED.notify_all();
        while reg.epoch == epoch {
            reg = wait(reg);
        }
        // `resume_mutators` has cleared `parked`.
    });
}

/// Calls `body` with an address below a copy of every callee-saved register, so that
/// a conservative scan from there to the stack's top sees every value this thread
/// holds, whether its frames keep it in memory or in registers.
#[inline(never)]
fn with_registers_on_stack(body: &mut dyn FnMut(usize)) {
    let mut saved = [0usize; 12];
    // SAFETY: the assembly only stores registers into `saved`.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::asm!(
            "mov [{0}], rbx", "mov [{0} + 8], rbp", "mov [{0} + 16], r12",
            "mov [{0} + 24], r13", "mov [{0} + 32], r14", "mov [{0} + 40], r15",
            in(reg) saved.as_mut_ptr(), options(nostack, preserves_flags)
        );
    }
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        std::arch::asm!(
            "stp x19, x20, [{0}]", "stp x21, x22, [{0}, #16]", "stp x23, x24, [{0}, #32]",
            "stp x25, x26, [{0}, #48]", "stp x27, x28, [{0}, #64]", "stp x29, x30, [{0}, #80]",
            in(reg) saved.as_mut_ptr(), options(nostack, preserves_flags)
        );
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    compile_error!("spilling callee-saved registers is written for x86_64 and aarch64 only");
    let saved = std::hint::black_box(&mut saved);
    body(saved.as_ptr() as usize);
    std::hint::black_box(saved);
}

/// The highest address of the calling thread's stack.
fn thread_stack_top(fallback: usize) -> usize {
    // SAFETY: plain libc queries about the calling thread; `attr` is initialised by
    // `pthread_getattr_np` before use and destroyed after.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return fallback;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        if ok {
            addr as usize + size
        } else {
            fallback
        }
    }
}

// The mutator references MMTk's traits hand out (`&'static mut Mutator<Som>` from
// `stop_all_mutators`, `mutator` and `mutators`) are neither `'static` nor unique by
// Rust's rules; MMTk's API says so and relies on the binding's protocol instead, which
// here is:
// * a `Mutator` lives in its record from `register` until `unregister`, and records are
//   added and removed only while no collection runs (`begin_membership_change`), so
//   every reference MMTk gets during a collection outlives its use;
// * a mutator is used by its own thread while that thread runs (inside
//   `Heap::allocate`) and by collector threads only while it is parked; the registry's
//   lock orders the two. A parked thread is suspended inside `memory_manager::alloc`,
//   still holding the `&mut` it passed in, and uses it again only once resumed;
// * during a pause MMTk may hold several references to one mutator in different work
//   packets (preparing, scanning, releasing it); it uses them one after the other.
impl Collection<Som> for Som {
    fn stop_all_mutators<F>(_tls: VMWorkerThread, mut mutator_visitor: F)
    where
        F: FnMut(&'static mut Mutator<Som>),
    {
        let mut reg = registry();
        reg.collecting = true;
        STOP_REQUESTED.store(true, Ordering::Relaxed);
        reg.pause_started = Some(Instant::now());
        // SAFETY: records stay valid while registered.
        while reg.changing > 0 || reg.records.iter().any(|&r| unsafe { !(*r).parked }) {
            reg = wait(reg);
        }
        let mutators: Vec<*mut Mutator<Som>> = reg
            .records
            .iter()
            // SAFETY: records stay valid while registered, and the lock is held.
            .map(|&r| unsafe { (*r).mutator })
            .collect();
        drop(reg);
        for m in mutators {
            // SAFETY: the mutator is parked; MMTk has it to itself until resumed (see
            // the protocol above this impl), and its record outlives the pause.
            mutator_visitor(unsafe { &mut *m });
        }
    }

    fn resume_mutators(_tls: VMWorkerThread) {
        let mut reg = registry();
        if let Some(start) = reg.pause_started.take() {
            PAUSE_NANOS.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        COLLECTIONS.fetch_add(1, Ordering::Relaxed);
        reg.collecting = false;
        STOP_REQUESTED.store(false, Ordering::Relaxed);
        for &r in &reg.records {
            // SAFETY: records stay valid while registered; the lock is held.
            unsafe { (*r).parked = (*r).leaving };
        }
        reg.epoch += 1;
        CHANGED.notify_all();
    }

    fn block_for_gc(tls: VMMutatorThread) {
        park(record_of(tls), true);
    }

    fn spawn_gc_thread(_tls: VMThread, ctx: GCThreadContext<Som>) {
        let GCThreadContext::Worker(worker) = ctx;
        let spawned = std::thread::Builder::new()
            .name("som-gc".into())
            .spawn(move || {
                // MMTk wants a non-null tls per worker; ours only identifies it (the
                // worker's own address).
                let tls = VMWorkerThread(VMThread(OpaquePointer::from_address(Address::from_ref(
                    &*worker,
                ))));
                // A panic in the collector is a VM bug; end the process loudly rather
                // than leave the mutators parked forever.
                let run = std::panic::AssertUnwindSafe(|| {
                    memory_manager::start_worker(mmtk(), tls, worker)
                });
                if std::panic::catch_unwind(run).is_err() {
                    eprintln!("som: internal error in the garbage collector");
                    std::process::abort();
                }
            });
        if spawned.is_err() {
            eprintln!("som: cannot start a collector thread");
            std::process::exit(1);
        }
    }

    fn create_gc_trigger() -> Box<dyn mmtk::util::heap::GCTriggerPolicy<Som>> {
        Box::new(super::new_trigger())
    }

    fn out_of_memory(_tls: VMThread, _err_kind: AllocationError) {
        // Returning makes the allocation answer null; `Heap::allocate` answers `None`
        // and the VM reports a SOM-level error.
    }
}

impl ActivePlan<Som> for Som {
    fn is_mutator(tls: VMThread) -> bool {
        let record = record_of(VMMutatorThread(tls));
        !record.is_null() && registry().records.contains(&record)
    }

    /// MMTk's signature; the reference is valid until the mutator is unregistered,
    /// and unique only by the protocol described above `impl Collection<Som>`.
    fn mutator(tls: VMMutatorThread) -> &'static mut Mutator<Som> {
        // SAFETY: MMTk passes the tls of a registered mutator (the trait's contract),
        // whose record holds a live mutator; MMTk asks from the mutator's own thread
        // or while it is parked, so nothing else uses it meanwhile.
        unsafe { &mut *(*record_of(tls)).mutator }
    }

    /// As [`ActivePlan::mutator`], for every registered mutator (MMTk asks during a
    /// pause, when none runs and none can come or go).
    fn mutators<'a>() -> Box<dyn Iterator<Item = &'a mut Mutator<Som>> + 'a> {
        let mutators: Vec<&'a mut Mutator<Som>> = registry()
            .records
            .iter()
            // SAFETY: MMTk asks only during a pause, when no mutator runs.
            .map(|&r| unsafe { &mut *(*r).mutator })
            .collect();
        Box::new(mutators.into_iter())
    }

    fn number_of_mutators() -> usize {
        registry().records.len()
    }
}
