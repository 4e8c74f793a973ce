//! The garbage collector: MMTk's Immix plan, built non-moving, behind the VM's one
//! allocation API.
//!
//! Data flow. Every heap object is allocated by [`Heap::allocate`] (one `Heap` per
//! [`crate::Vm`], each an MMTk *mutator*). When MMTk decides to collect, the allocating
//! thread parks in `threads` (spilling its registers onto its stack and publishing the
//! stack's extent), the collector threads stop every registered mutator, and `roots`
//! reports what each VM keeps alive: its tables precisely (globals, symbols, classes,
//! method literals, ...) and its native stack and value stack *conservatively*, so Rust
//! frames and tier-1 frames need no stack maps. MMTk then traces the heap through
//! `binding`'s object model (which knows each object kind's layout) and sweeps.
//!
//! Objects never move (MMTk's `immix_non_moving` feature: Immix's line-granular
//! bump allocation and sweeping without defragmentation), so raw pointers held
//! anywhere stay valid, and
//! identity hashes (stored in headers) are stable. Classes and methods are not in this
//! heap (they are immortal Rust allocations); their fields are roots.
//!
//! `trigger` decides when to collect; `residency` then gives empty blocks beyond
//! the heap limit back to the OS. One MMTk instance serves the process: the first
//! VM's [`GcOptions`] configure it.

mod binding;
mod heap;
mod residency;
mod roots;
mod threads;
mod trigger;

pub use heap::Heap;
pub use residency::{released_blocks, resident_bytes};
pub use threads::stop_requested_flag;

use binding::Som;
use mmtk::util::options::{GCTriggerSelector, PlanSelector};
use mmtk::util::{Address, VMThread};
use mmtk::{memory_manager, MMTKBuilder, MMTK};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// How the collector is set up (from `--heap-size`, `--heap-min`, `--gc-stress`,
/// `--gc-threads`).
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// The heap may grow to this many bytes; beyond it, allocation is a SOM-level
    /// out-of-memory error.
    pub max_heap_bytes: usize,
    /// The heap starts at this size and never shrinks below it: no collection runs
    /// before this much is in use.
    pub min_heap_bytes: usize,
    /// GC-stress mode: collect every this many allocations (0: off).
    pub stress_every: u64,
    /// Collector threads.
    pub threads: usize,
}

/// The environment variable that turns GC-stress mode on for every VM that does not
/// set it itself: `SOM_GC_STRESS=N cargo test --workspace` runs the whole test suite
/// with a collection every N allocations.
pub const STRESS_ENV: &str = "SOM_GC_STRESS";

impl Default for GcOptions {
    fn default() -> Self {
        let stress_every = std::env::var(STRESS_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        GcOptions {
            max_heap_bytes: 1 << 30,
            min_heap_bytes: DEFAULT_MIN_HEAP_BYTES,
            stress_every,
            threads: 2,
        }
    }
}

/// The default starting heap; it grows with the live data (see `trigger`).
pub const DEFAULT_MIN_HEAP_BYTES: usize = 4 << 20;

/// Collection statistics of the process (all VMs share one collector).
#[derive(Debug, Clone, Copy, Default)]
pub struct GcStats {
    pub collections: u64,
    pub pause_nanos: u64,
}

static COLLECTIONS: AtomicU64 = AtomicU64::new(0);
static PAUSE_NANOS: AtomicU64 = AtomicU64::new(0);

pub fn stats() -> GcStats {
    GcStats {
        collections: COLLECTIONS.load(Ordering::Relaxed),
        pause_nanos: PAUSE_NANOS.load(Ordering::Relaxed),
    }
}

/// The minimum and maximum heap sizes, for `trigger` (MMTk creates it without
/// arguments).
static HEAP_BOUNDS: OnceLock<(usize, usize)> = OnceLock::new();

fn new_trigger() -> trigger::LiveRatioTrigger {
    let (min, max) = *HEAP_BOUNDS.get().expect("set before the collector starts");
    trigger::LiveRatioTrigger::new(min, max)
}

static INSTANCE: OnceLock<&'static MMTK<Som>> = OnceLock::new();
/// The address range MMTk allocates in, for cheap "is this a heap pointer" tests
/// (set once, before the first allocation; plain atomics so the test is two loads).
static HEAP_LO: AtomicUsize = AtomicUsize::new(0);
static HEAP_HI: AtomicUsize = AtomicUsize::new(0);

/// The collector, created with `options` on first use.
fn instance(options: &GcOptions) -> &'static MMTK<Som> {
    INSTANCE.get_or_init(|| {
        let mut builder = MMTKBuilder::new_no_env_vars();
        builder.options.plan.set(PlanSelector::Immix);
        HEAP_BOUNDS.get_or_init(|| (options.min_heap_bytes, options.max_heap_bytes));
        builder.options.gc_trigger.set(GCTriggerSelector::Delegated);
        builder.options.threads.set(options.threads.max(1));
        let mmtk: &'static MMTK<Som> = Box::leak(memory_manager::mmtk_init(&builder));
        HEAP_LO.store(
            memory_manager::starting_heap_address().as_usize(),
            Ordering::Relaxed,
        );
        HEAP_HI.store(
            memory_manager::last_heap_address().as_usize(),
            Ordering::Relaxed,
        );
        mmtk
    })
}

/// Starts the collector threads once `INSTANCE` is set (they look it up).
fn start_collector(mmtk: &'static MMTK<Som>) {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| memory_manager::initialize_collection(mmtk, VMThread::UNINITIALIZED));
}

fn mmtk() -> &'static MMTK<Som> {
    INSTANCE
        .get()
        .expect("the collector is created before any allocation")
}

/// True if `word` may be the address of an object in the collected heap: aligned, and
/// inside MMTk's address range (classes and methods, allocated by Rust, never are).
#[inline(always)]
fn in_heap_range(word: usize) -> bool {
    word & 7 == 0
        && word >= HEAP_LO.load(Ordering::Relaxed)
        && word < HEAP_HI.load(Ordering::Relaxed)
}

fn address(word: usize) -> Address {
    // SAFETY: an `Address` is a plain integer; creating one has no preconditions.
    unsafe { Address::from_usize(word) }
}
