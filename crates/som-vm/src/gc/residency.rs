//! Keeps the heap's resident memory within the heap limit by giving empty Immix
//! blocks back to the operating system after a collection.
//!
//! Why this is needed: MMTk takes address space for the Immix space a 4 MiB chunk at a
//! time and hands out a new chunk's untouched blocks *before* the blocks that
//! collections have freed (its block pool pops the chunk's array first). So every
//! program that allocates more than 4 MiB in total touches the whole first chunk,
//! however small its heap limit (with `--heap-min 1M`, Json, about 1 MiB live, still had
//! all 4 MiB resident), and memory freed when the live data shrinks stays resident.
//! MMTk never returns block memory on 64-bit hosts.
//!
//! Data flow. [`Heap::allocate`](super::Heap::allocate) reports each chunk the first
//! time one of its objects lands there ([`note_chunk`]). At the end of every
//! collection the trigger computes the next heap limit and calls [`trim`], which asks
//! the kernel which pages of each known chunk are resident (`mincore`), finds the
//! resident blocks that hold no object (their valid-object bits, which the sweep has
//! just updated, are all clear), and releases such blocks with
//! `madvise(MADV_DONTNEED)` until the resident total is back within the limit.
//! Released memory reads as zeros when MMTk reuses it, which Immix does not mind: it
//! keeps all of its block and line state in side metadata, and objects are
//! initialised by their allocator.
//!
//! Trimming only once the resident memory is more than twice the limit ([`SLACK`])
//! keeps the cost low: a steady heap settles below that and releases nothing, so no
//! page is faulted in twice per cycle; a heap whose live data has shrunk gives the
//! difference back.

use mmtk::memory_manager;
use mmtk::util::metadata::vo_bit::VO_BIT_SIDE_METADATA_ADDR;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// MMTk's chunk: the unit in which spaces take address space (`LOG_BYTES_IN_CHUNK`
/// is 22 in MMTk's private `vm_layout`; a chunk too small here would only make
/// `trim` probe unmapped neighbours, which `is_mapped_address` filters out).
pub const CHUNK_BYTES: usize = 1 << 22;
/// Immix's block (2^15 bytes in MMTk 0.32 without `immix_smaller_block`). Objects
/// never straddle blocks, so a block without a valid-object bit holds no object.
/// Any aligned power of two up to the real block size would be equally correct,
/// only coarser or finer; a unit test checks the chunk is a multiple of it.
pub const BLOCK_BYTES: usize = 1 << 15;
const PAGE_BYTES: usize = 4096;
/// One valid-object bit per 8-byte granule: a block's bits span `BLOCK_BYTES / 64`
/// bytes of side metadata.
const VO_BYTES_PER_BLOCK: usize = BLOCK_BYTES / 64;

/// Start addresses of the Immix chunks objects have been allocated in, sorted.
static CHUNKS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// Blocks released so far.
static RELEASED_BLOCKS: AtomicU64 = AtomicU64::new(0);

/// The chunk `address` lies in.
#[inline(always)]
pub fn chunk_of(address: usize) -> usize {
    address & !(CHUNK_BYTES - 1)
}

/// Records that objects live in the chunk starting at `chunk` (idempotent).
pub fn note_chunk(chunk: usize) {
    let mut chunks = CHUNKS.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(at) = chunks.binary_search(&chunk) {
        chunks.insert(at, chunk);
    }
}

/// Blocks given back to the OS since the process started.
pub fn released_blocks() -> u64 {
    RELEASED_BLOCKS.load(Ordering::Relaxed)
}

/// Whether the valid-object bits of the block at `block` are all clear.
///
/// # Safety
/// `block` is block-aligned and inside a chunk MMTk has mapped (its side metadata
/// is mapped with it), and no mutator is allocating (collection end).
unsafe fn block_is_empty(block: usize) -> bool {
    let meta = (VO_BIT_SIDE_METADATA_ADDR.as_usize() + (block >> 6)) as *const u64;
    // SAFETY: the caller guarantees the block's side metadata is mapped; its VO bits
    // are the `VO_BYTES_PER_BLOCK` bytes from `meta` (8-aligned, as `block` is
    // block-aligned), and `i` stays below their word count.
    (0..VO_BYTES_PER_BLOCK / 8).all(|i| unsafe { meta.add(i).read_volatile() } == 0)
}

/// Calls `visit(block, resident_bytes)` for every block of the known chunks that has
/// at least one page resident.
fn for_each_resident_block(mut visit: impl FnMut(usize, usize)) {
    let chunks = CHUNKS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut pages = vec![0u8; CHUNK_BYTES / PAGE_BYTES];
    for &chunk in &chunks {
        if !memory_manager::is_mapped_address(super::address(chunk)) {
            continue;
        }
        // SAFETY: `pages` has one byte per page of the chunk, which MMTk mapped.
        let ok = unsafe {
            libc::mincore(
                chunk as *mut libc::c_void,
                CHUNK_BYTES,
                pages.as_mut_ptr() as *mut libc::c_uchar,
            )
        };
        if ok != 0 {
            continue;
        }
        for (i, block_pages) in pages.chunks(BLOCK_BYTES / PAGE_BYTES).enumerate() {
            let resident = block_pages.iter().filter(|&&p| p & 1 != 0).count() * PAGE_BYTES;
            if resident != 0 {
                visit(chunk + i * BLOCK_BYTES, resident);
            }
        }
    }
}

/// Resident bytes of the small-object (Immix) space now.
pub fn resident_bytes() -> usize {
    let mut total = 0;
    for_each_resident_block(|_, resident| total += resident);
    total
}

/// Resident memory may reach this multiple of the heap limit before [`trim`]
/// releases anything. MMTk reuses free blocks without regard to which are resident,
/// so trimming exactly to the limit made GCBench (a steady 20 MB limit) give back
/// and fault in 3-9 MB every collection, 10% of its run time; with the slack a
/// steady heap settles and only a heap that has really shrunk is trimmed (as
/// HotSpot shrinks a heap only beyond its `MaxHeapFreeRatio`).
const SLACK: usize = 2;

/// After a collection, with mutators stopped: if the resident memory of the known
/// chunks exceeds [`SLACK`] times `limit_bytes`, releases empty resident blocks until
/// it is at most `limit_bytes`. Answers the number of blocks released.
pub fn trim(limit_bytes: usize) -> usize {
    let mut resident_bytes = 0;
    // Empty resident blocks and their resident bytes, in address order.
    let mut empty: Vec<(usize, usize)> = Vec::new();
    for_each_resident_block(|block, resident| {
        resident_bytes += resident;
        // SAFETY: the block is aligned, in a mapped chunk, and the world is stopped.
        if unsafe { block_is_empty(block) } {
            empty.push((block, resident));
        }
    });
    let mut released = 0;
    if resident_bytes <= limit_bytes.saturating_mul(SLACK) {
        return 0;
    }
    // Release from the top of the address range down (any order is correct).
    while resident_bytes > limit_bytes {
        let Some((block, resident)) = empty.pop() else {
            break;
        };
        // SAFETY: the block holds no object and MMTk keeps nothing in it; zero-filled
        // pages are valid free memory for Immix.
        let ok =
            unsafe { libc::madvise(block as *mut libc::c_void, BLOCK_BYTES, libc::MADV_DONTNEED) };
        if ok == 0 {
            resident_bytes -= resident;
            released += 1;
        }
    }
    RELEASED_BLOCKS.fetch_add(released as u64, Ordering::Relaxed);
    released
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_tile_chunks_and_chunks_are_found_by_address() {
        assert_eq!(CHUNK_BYTES % BLOCK_BYTES, 0);
        assert_eq!(BLOCK_BYTES % PAGE_BYTES, 0);
        assert_eq!(chunk_of(CHUNK_BYTES * 3 + 12345), CHUNK_BYTES * 3);
    }
}
