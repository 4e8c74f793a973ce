//! [`Heap`]: a VM's allocation API, the only way objects come into existence.
//!
//! Each heap is one MMTk mutator. [`Heap::allocate`] takes memory from it, sets the
//! object's valid-object bit (so conservative scans recognise it) and writes the
//! header; the caller (the typed helpers in `universe`) initialises the body before
//! its next allocation, which is the only point where a collection can happen.

use super::threads::{self, MutatorRecord};
use super::{instance, mmtk, residency, start_collector, GcOptions};
use crate::object::{Class, Header, Kind};
use crate::universe::Vm;
use mmtk::util::ObjectReference;
use mmtk::{memory_manager, AllocationSemantics};

/// What this VM allocated.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllocationStats {
    pub bytes_allocated: u64,
}

pub struct Heap {
    record: *mut MutatorRecord,
    /// Objects larger than this go to MMTk's large-object space.
    max_small_bytes: usize,
    stress_every: u64,
    until_stress: u64,
    next_hash: u32,
    /// The Immix chunk of the last small allocation (see `residency`).
    last_chunk: usize,
    pub stats: AllocationStats,
}

impl Heap {
    /// A heap for a VM; [`Heap::attach`] tells it where that VM is before its first
    /// allocation.
    pub fn new(options: &GcOptions) -> Heap {
        let mmtk = instance(options);
        start_collector(mmtk);
        Heap {
            record: threads::register(std::ptr::null()),
            max_small_bytes: mmtk
                .get_plan()
                .constraints()
                .max_non_los_default_alloc_bytes,
            stress_every: options.stress_every,
            until_stress: options.stress_every,
            next_hash: 0x2545_f491,
            last_chunk: 0,
            stats: AllocationStats::default(),
        }
    }

    /// Makes the roots of `vm` (the VM that owns this heap, at its final address)
    /// known to the collector.
    pub fn attach(&mut self, vm: *const Vm) {
        // SAFETY: the record is this heap's; collectors read it only while this thread
        // is parked, and it is running now.
        unsafe { (*self.record).vm = vm };
    }

    /// Parks this mutator if another collection is waiting for it (what compiled
    /// loops call at their header). Takes `&mut self`, as allocation does: objects
    /// may be freed here, so no reference into the heap that borrows the VM may be
    /// live across it.
    pub fn safepoint(&mut self) {
        threads::safepoint(self.record);
    }

    /// Allocates `bytes` (header included, rounded up to 8) with the header set, or
    /// answers `None` when the heap is exhausted. The body is uninitialised: the
    /// caller fills every field before it allocates again.
    #[inline]
    pub fn allocate(&mut self, bytes: usize, kind: Kind, class: *mut Class) -> Option<*mut Header> {
        let bytes = (bytes + 7) & !7;
        if self.stress_every != 0 {
            self.until_stress -= 1;
            if self.until_stress == 0 {
                self.until_stress = self.stress_every;
                self.collect();
            }
        }
        threads::safepoint(self.record);
        let semantics = if bytes > self.max_small_bytes {
            AllocationSemantics::Los
        } else {
            AllocationSemantics::Default
        };
        // SAFETY: the mutator belongs to this heap and lives until it is dropped, and
        // this thread, which is running, is the only user of a running mutator. If
        // `alloc` parks for a collection, collector threads use the mutator through
        // references of their own while this one is suspended and unused (MMTk's
        // protocol, see `threads`).
        let mutator = unsafe { &mut *(*self.record).mutator };
        let addr = memory_manager::alloc(mutator, bytes, 8, 0, semantics);
        let object = ObjectReference::from_raw_address(addr)?;
        if semantics == AllocationSemantics::Default {
            let chunk = residency::chunk_of(addr.as_usize());
            if chunk != self.last_chunk {
                self.last_chunk = chunk;
                residency::note_chunk(chunk);
            }
        }
        memory_manager::post_alloc(mutator, object, bytes, semantics);
        self.stats.bytes_allocated += bytes as u64;
        let hdr = addr.to_mut_ptr::<Header>();
        let hash = self.next_identity_hash();
        // SAFETY: `addr` is fresh memory of at least a header's size.
        unsafe {
            hdr.write(Header {
                class: std::cell::Cell::new(class),
                kind,
                flags: 0,
                hash,
            })
        };
        Some(hdr)
    }

    /// Runs a full collection now; answers whether one ran.
    pub fn collect(&mut self) -> bool {
        // SAFETY: as in `allocate`.
        let tls = unsafe { (*(*self.record).mutator).mutator_tls };
        memory_manager::handle_user_collection_request(mmtk(), tls)
    }

    /// Bytes the collector currently has in use (pages, live and not yet reused).
    pub fn used_bytes(&self) -> usize {
        memory_manager::used_bytes(mmtk())
    }

    /// A well-spread 31-bit identity hash (xorshift), fixed for the object's lifetime.
    pub fn next_identity_hash(&mut self) -> u32 {
        let mut x = self.next_hash;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.next_hash = x;
        x & 0x7fff_ffff
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        // SAFETY: the record came from `register` and nothing uses it after this.
        unsafe { threads::unregister(self.record) };
    }
}
