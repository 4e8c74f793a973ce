//! The heap: the one allocation API of the VM.
//!
//! Everything the interpreter and the primitives allocate goes through
//! [`Heap::allocate`] (or the typed helpers built on it in `universe`). Objects come
//! back zeroed, with their header filled in; they never move. Today the memory is
//! bump-allocated from large chunks and never freed: the collector (the GC issue) slots
//! in behind this API, and its statistics ([`HeapStats`]) are what `System>>gcStats`
//! reports.

use crate::object::{Class, Header, Kind};
use std::alloc::{alloc_zeroed, Layout};

const CHUNK_BYTES: usize = 1 << 20;

#[derive(Debug, Default, Clone, Copy)]
pub struct HeapStats {
    pub collections: u64,
    pub collection_time_ms: u64,
    pub bytes_allocated: u64,
    pub objects_allocated: u64,
}

pub struct Heap {
    cursor: usize,
    limit: usize,
    next_hash: u32,
    pub stats: HeapStats,
}

impl Default for Heap {
    fn default() -> Self {
        Self::new()
    }
}

impl Heap {
    pub fn new() -> Heap {
        Heap {
            cursor: 0,
            limit: 0,
            next_hash: 0x2545_f491,
            stats: HeapStats::default(),
        }
    }

    fn fresh_chunk(bytes: usize) -> usize {
        let layout = Layout::from_size_align(bytes, 16).expect("chunk layout");
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc_zeroed(layout) };
        if p.is_null() {
            eprintln!("som: out of memory");
            std::process::exit(1);
        }
        p as usize
    }

    /// Allocates `bytes` (header included, rounded up to 8), zeroed, with the header set.
    pub fn allocate(&mut self, bytes: usize, kind: Kind, class: *mut Class) -> *mut Header {
        let bytes = (bytes + 7) & !7;
        let addr = if bytes > CHUNK_BYTES / 4 {
            Self::fresh_chunk(bytes)
        } else {
            if self.cursor + bytes > self.limit {
                self.cursor = Self::fresh_chunk(CHUNK_BYTES);
                self.limit = self.cursor + CHUNK_BYTES;
            }
            let a = self.cursor;
            self.cursor += bytes;
            a
        };
        self.stats.bytes_allocated += bytes as u64;
        self.stats.objects_allocated += 1;
        let hdr = addr as *mut Header;
        // SAFETY: `addr` is a fresh, zeroed, 8-aligned block of at least a header's size.
        unsafe {
            (*hdr).class.set(class);
            (*hdr).kind = kind;
            (*hdr).hash = self.next_identity_hash();
        }
        hdr
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
