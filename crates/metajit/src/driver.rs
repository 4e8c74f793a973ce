//! The tier-2 driver: when to record, and what happens after.
//!
//! Each loop header the client knows has a [`LoopCell`], a small state word the client
//! owns (beside its bytecode, so tier-1 code can read it later) and the driver updates:
//! counting, compiled, or blacklisted. [`Driver::on_back_edge`] ticks it and says what
//! to do; the outcome of a recording comes back through [`Driver::compiled`] or
//! [`Driver::aborted`]. Aborts back off exponentially (the loop must get hot again,
//! `threshold << aborts` iterations); after [`MAX_ABORTS`] the loop is blacklisted.
//! Options use PyPy's names and defaults ([`TraceOptions`]); counts per event go into
//! [`TraceStats`] for `--jit-stats`.

use crate::record::AbortReason;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::Duration;

/// Aborts after which a loop is no longer traced.
pub const MAX_ABORTS: u8 = 6;

/// Tier-2 settings (`--jit key=value`, PyPy's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceOptions {
    /// Back-edges of a loop before it is traced.
    pub threshold: u32,
    /// Invocations of a loop-less method before it is traced.
    pub function_threshold: u32,
    /// Most IR instructions in one trace.
    pub trace_limit: u32,
    /// Failures of one guard before a bridge is recorded from it.
    pub bridge_threshold: u32,
    /// Most activations one trace inlines (the root frame counts).
    pub inline_depth: u32,
    /// Testing: every Nth guard check fails (0: off).
    pub deopt_every: u32,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            threshold: 1039,
            function_threshold: 1619,
            trace_limit: 6000,
            bridge_threshold: 200,
            inline_depth: 16,
            deopt_every: 0,
        }
    }
}

/// The state of one loop header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopState {
    /// Counting back-edges; `aborts` recordings failed so far.
    Counting { count: u32, aborts: u8 },
    /// Has compiled trace `n` (the client's index).
    Compiled(u32),
    /// Not traced any more.
    Blacklisted,
}

/// A loop header's state word.
#[derive(Debug)]
pub struct LoopCell(Cell<LoopState>);

impl Default for LoopCell {
    fn default() -> Self {
        LoopCell(Cell::new(LoopState::Counting {
            count: 0,
            aborts: 0,
        }))
    }
}

impl LoopCell {
    pub fn get(&self) -> LoopState {
        self.0.get()
    }
    pub fn set(&self, s: LoopState) {
        self.0.set(s)
    }
}

/// What to do at a back-edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Keep interpreting.
    Interpret,
    /// Record a trace from the loop header.
    Record,
    /// Run compiled trace `n`.
    Enter(u32),
}

/// Counters for `--jit-stats`.
#[derive(Debug, Clone, Default)]
pub struct TraceStats {
    pub recordings: u64,
    pub traces: u64,
    pub bridges: u64,
    pub aborts: BTreeMap<AbortReason, u64>,
    pub blacklisted: u64,
    /// IR instructions and guards as recorded.
    pub ir_ops: u64,
    pub guards: u64,
    /// The same after the optimiser ([`crate::opt`]).
    pub ir_ops_optimised: u64,
    pub guards_optimised: u64,
    /// Allocations (`alloc`) as recorded, and those the optimised traces still make
    /// (the others are virtual: made only by the exits that need them).
    pub allocations: u64,
    pub allocations_optimised: u64,
    pub code_bytes: u64,
    /// Backend time, and optimiser time within it.
    pub compile_time: Duration,
    pub optimise_time: Duration,
    pub trace_entries: u64,
    /// Guard failures that left compiled code for the interpreter.
    pub deopts: u64,
}

impl TraceStats {
    /// The tier-2 lines of `--jit-stats`.
    pub fn report(&self) -> String {
        let us = self.compile_time.as_secs_f64() * 1e6;
        let aborts: Vec<String> = self
            .aborts
            .iter()
            .map(|(r, n)| format!("{} {n}", r.name()))
            .collect();
        let total_aborts: u64 = self.aborts.values().sum();
        format!(
            "jit: tier 2: {} traces and {} bridges compiled from {} recordings, {} bytes of code\n\
             jit: tier 2: {} IR ops and {} guards recorded, {} IR ops and {} guards after optimisation\n\
             jit: tier 2: {} allocations recorded, {} after optimisation\n\
             jit: tier 2: compile time {:.0} us total, {:.2} us per recorded IR op, optimiser {:.0} us\n\
             jit: tier 2: {} aborts ({}), {} loops blacklisted\n\
             jit: tier 2: {} trace entries, {} guard failures (deoptimisations)\n",
            self.traces,
            self.bridges,
            self.recordings,
            self.code_bytes,
            self.ir_ops,
            self.guards,
            self.ir_ops_optimised,
            self.guards_optimised,
            self.allocations,
            self.allocations_optimised,
            us,
            if self.ir_ops > 0 { us / self.ir_ops as f64 } else { 0.0 },
            self.optimise_time.as_secs_f64() * 1e6,
            total_aborts,
            if aborts.is_empty() { "none".to_string() } else { aborts.join(", ") },
            self.blacklisted,
            self.trace_entries,
            self.deopts,
        )
    }
}

/// The tier-2 policy (see the module documentation).
#[derive(Debug, Default)]
pub struct Driver {
    pub options: TraceOptions,
    pub stats: TraceStats,
}

impl Driver {
    pub fn new(options: TraceOptions) -> Driver {
        Driver {
            options,
            stats: TraceStats::default(),
        }
    }

    /// A back-edge to the header of `cell` was taken.
    #[inline]
    pub fn on_back_edge(&mut self, cell: &LoopCell) -> Action {
        self.tick(cell, self.options.threshold)
    }

    #[inline]
    fn tick(&mut self, cell: &LoopCell, threshold: u32) -> Action {
        match cell.get() {
            LoopState::Compiled(n) => {
                self.stats.trace_entries += 1;
                Action::Enter(n)
            }
            LoopState::Blacklisted => Action::Interpret,
            LoopState::Counting { count, aborts } => {
                let count = count + 1;
                let needed = (threshold.max(1) as u64) << aborts;
                if count as u64 >= needed {
                    cell.set(LoopState::Counting { count: 0, aborts });
                    self.stats.recordings += 1;
                    Action::Record
                } else {
                    cell.set(LoopState::Counting { count, aborts });
                    Action::Interpret
                }
            }
        }
    }

    /// An activation of a loop-less method whose state word is `cell` begins
    /// (counted against `function_threshold`).
    #[inline]
    pub fn on_entry(&mut self, cell: &LoopCell) -> Action {
        self.tick(cell, self.options.function_threshold)
    }

    /// The recording of `cell`'s loop became compiled trace `n`.
    pub fn compiled(&mut self, cell: &LoopCell, n: u32, ir_ops: usize, guards: usize) {
        cell.set(LoopState::Compiled(n));
        self.stats.traces += 1;
        self.stats.ir_ops += ir_ops as u64;
        self.stats.guards += guards as u64;
    }

    /// The recording of `cell`'s loop failed.
    pub fn aborted(&mut self, cell: &LoopCell, why: AbortReason) {
        *self.stats.aborts.entry(why).or_default() += 1;
        let aborts = match cell.get() {
            LoopState::Counting { aborts, .. } => aborts + 1,
            _ => 1,
        };
        if aborts >= MAX_ABORTS {
            self.stats.blacklisted += 1;
            cell.set(LoopState::Blacklisted);
        } else {
            cell.set(LoopState::Counting { count: 0, aborts });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_is_recorded_at_the_threshold_and_entered_once_compiled() {
        let mut d = Driver::new(TraceOptions {
            threshold: 3,
            ..TraceOptions::default()
        });
        let c = LoopCell::default();
        assert_eq!(d.on_back_edge(&c), Action::Interpret);
        assert_eq!(d.on_back_edge(&c), Action::Interpret);
        assert_eq!(d.on_back_edge(&c), Action::Record);
        d.compiled(&c, 7, 10, 2);
        assert_eq!(d.on_back_edge(&c), Action::Enter(7));
        assert_eq!(d.stats.traces, 1);
        assert_eq!(d.stats.trace_entries, 1);
    }

    #[test]
    fn aborts_back_off_exponentially_then_blacklist() {
        let mut d = Driver::new(TraceOptions {
            threshold: 2,
            ..TraceOptions::default()
        });
        let c = LoopCell::default();
        let mut ticks_per_recording = Vec::new();
        for _ in 0..MAX_ABORTS {
            let mut n = 0;
            loop {
                n += 1;
                if d.on_back_edge(&c) == Action::Record {
                    break;
                }
            }
            ticks_per_recording.push(n);
            d.aborted(&c, AbortReason::TooLong);
        }
        assert_eq!(ticks_per_recording, vec![2, 4, 8, 16, 32, 64]);
        assert_eq!(c.get(), LoopState::Blacklisted);
        assert_eq!(d.on_back_edge(&c), Action::Interpret);
        assert_eq!(d.stats.aborts[&AbortReason::TooLong], MAX_ABORTS as u64);
        assert!(d
            .stats
            .report()
            .contains("6 aborts (trace too long 6), 1 loops blacklisted"));
    }
}
