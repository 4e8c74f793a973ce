//! When to collect: a heap limit that follows the live data.
//!
//! After every collection the limit becomes the memory still in use (the blocks that
//! hold live data, since Immix sweeps eagerly) plus any allocation waiting for that
//! collection, times [`GROWTH`], kept between the configured minimum and maximum heap
//! sizes; a collection is due once the heap reaches the limit. `residency::trim` then
//! keeps the resident memory within the same limit.
//! This is the rule of Lua's collector and of many Smalltalk VMs: the work of each
//! collection is proportional to the live data, and the allocation between two
//! collections is at least as large, so collection costs stay a bounded fraction of
//! allocation while memory stays a bounded multiple of the live data.
//!
//! MMTk's own MemBalancer trigger was measured first: with a small minimum heap it
//! kept GCBench's heap so tight that it collected 206 times (3.3 s of collection in a
//! 6.8 s run); this rule collects a few dozen times there with a smaller peak RSS.

use super::binding::Som;
use mmtk::plan::Plan;
use mmtk::util::constants::BYTES_IN_PAGE;
use mmtk::util::heap::{GCTriggerPolicy, SpaceStats};
use mmtk::MMTK;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The heap limit after a collection, as a multiple of the live data.
pub const GROWTH: usize = 2;

pub struct LiveRatioTrigger {
    min_pages: usize,
    max_pages: usize,
    limit_pages: AtomicUsize,
    /// Pages of allocations waiting for the collection in progress (one large array
    /// may be bigger than the whole limit: the next limit must make room for it, or
    /// the allocation would collect forever).
    pending_pages: AtomicUsize,
}

impl LiveRatioTrigger {
    pub fn new(min_bytes: usize, max_bytes: usize) -> LiveRatioTrigger {
        let max_pages = max_bytes / BYTES_IN_PAGE;
        let min_pages = (min_bytes / BYTES_IN_PAGE).min(max_pages);
        LiveRatioTrigger {
            min_pages,
            max_pages,
            limit_pages: AtomicUsize::new(min_pages),
            pending_pages: AtomicUsize::new(0),
        }
    }

    /// The limit for a heap whose live data fills `live_pages` while allocations of
    /// `pending_pages` wait: room for those, then [`GROWTH`] times the sum.
    fn limit_for(&self, live_pages: usize, pending_pages: usize) -> usize {
        live_pages
            .saturating_add(pending_pages)
            .saturating_mul(GROWTH)
            .clamp(self.min_pages, self.max_pages)
    }
}

impl GCTriggerPolicy<Som> for LiveRatioTrigger {
    fn on_pending_allocation(&self, pages: usize) {
        self.pending_pages.fetch_add(pages, Ordering::Relaxed);
    }

    fn on_gc_end(&self, mmtk: &'static MMTK<Som>) {
        let live = mmtk.get_plan().get_reserved_pages();
        let pending = self.pending_pages.swap(0, Ordering::Relaxed);
        let limit = self.limit_for(live, pending);
        self.limit_pages.store(limit, Ordering::Relaxed);
        super::residency::trim(limit * BYTES_IN_PAGE);
    }

    fn is_gc_required(
        &self,
        space_full: bool,
        space: Option<SpaceStats<Som>>,
        plan: &dyn Plan<VM = Som>,
    ) -> bool {
        // The plan asks `is_heap_full` and adds its own reasons (a full space).
        plan.collection_required(space_full, space)
    }

    fn is_heap_full(&self, plan: &dyn Plan<VM = Som>) -> bool {
        plan.get_reserved_pages() > self.limit_pages.load(Ordering::Relaxed)
    }

    fn get_current_heap_size_in_pages(&self) -> usize {
        self.limit_pages.load(Ordering::Relaxed)
    }

    fn get_max_heap_size_in_pages(&self) -> usize {
        self.max_pages
    }

    fn can_heap_size_grow(&self) -> bool {
        self.limit_pages.load(Ordering::Relaxed) < self.max_pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_twice_the_live_data_within_the_bounds() {
        let t = LiveRatioTrigger::new(4 << 20, 64 << 20);
        let pages = |mb: usize| (mb << 20) / BYTES_IN_PAGE;
        assert_eq!(t.limit_for(pages(1), 0), pages(4));
        assert_eq!(t.limit_for(pages(10), 0), pages(20));
        assert_eq!(t.limit_for(pages(50), 0), pages(64));
        // A waiting allocation larger than the limit gets room.
        assert_eq!(t.limit_for(pages(1), pages(5)), pages(12));
    }
}
