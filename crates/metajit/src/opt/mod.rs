//! The tier-2 optimiser: passes over a recorded [`Trace`], each in a module of its
//! own, run in the order of [`PASSES`] between the recorder and the backend.
//!
//! Every pass reads a trace and writes a new one through a [`Rewriter`], which maps
//! the old instructions' results to the new trace's references, re-interns constants
//! and copies each snapshot the new guards use with its values mapped (snapshots no
//! guard uses any more are dropped, the rest renumbered in order; the constant table
//! keeps every constant of the recorded trace). A trace that leaves
//! the optimiser passes the verifier; the client keeps the optimised trace, so its
//! snapshot numbers are the ones its exits answer.
//!
//! - [`peel`]: loop peeling. The body is emitted twice, a preamble and the loop, and
//!   slots carried round the loop become `phi`s; what the loop computes again from
//!   values of the preamble is then found by the later passes and runs once.
//! - [`fold`]: constant folding, algebraic identities and strength reduction, guards
//!   decided by constants.
//! - [`guards`]: guard elimination from what earlier guards proved (known values,
//!   known bits, integer ranges), and what phis keep from one iteration to the next.
//! - [`cse`]: common-subexpression elimination of pure operations, immutable loads,
//!   elidable calls and repeated guards.
//! - [`heap`]: load and store forwarding with simple alias rules, invalidated by
//!   stores and residual calls according to their effects.
//! - [`virtualise`]: allocation removal; objects that do not escape stay virtual,
//!   described in the snapshots that need them, allocated by the exit.
//! - [`dce`]: dead-code elimination of values nothing uses, snapshots included.

pub mod cse;
pub mod dce;
pub mod fold;
pub mod guards;
pub mod heap;
pub mod peel;
pub mod virtualise;

use crate::ir::{Op, Ref, SnapId, Trace};
use std::collections::HashMap;

/// One optimisation pass.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    pub name: &'static str,
    pub run: fn(&Trace) -> Trace,
}

/// Every pass, in pipeline order. Folding and CSE run again after the passes that
/// give them new chances (peeling duplicates the body; guard elimination and heap
/// forwarding replace values by constants and earlier values).
pub const PASSES: &[Pass] = &[
    Pass {
        name: "peel",
        run: peel::run,
    },
    Pass {
        name: "fold",
        run: fold::run,
    },
    Pass {
        name: "guards",
        run: guards::run,
    },
    Pass {
        name: "cse",
        run: cse::run,
    },
    Pass {
        name: "heap",
        run: heap::run,
    },
    Pass {
        name: "virtualise",
        run: virtualise::run,
    },
    Pass {
        name: "fold",
        run: fold::run,
    },
    Pass {
        name: "cse",
        run: cse::run,
    },
    Pass {
        name: "dce",
        run: dce::run,
    },
];

/// The passes whose names `list` gives (comma-separated, each may repeat), in
/// `PASSES` order; `all` is every pass, `none` or an empty list none.
pub fn passes_named(list: &str) -> Result<Vec<Pass>, String> {
    let list = list.trim();
    if list == "all" {
        return Ok(PASSES.to_vec());
    }
    if list.is_empty() || list == "none" {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = list.split(['+', ':']).map(str::trim).collect();
    for n in &names {
        if !PASSES.iter().any(|p| p.name == *n) {
            let known: Vec<&str> = PASSES.iter().map(|p| p.name).collect();
            return Err(format!(
                "unknown optimisation pass '{n}' (known: {})",
                known.join(", ")
            ));
        }
    }
    Ok(PASSES
        .iter()
        .filter(|p| names.contains(&p.name))
        .copied()
        .collect())
}

/// Runs `passes` over `trace`; `log` sees the trace after each pass.
pub fn optimise(mut trace: Trace, passes: &[Pass], mut log: impl FnMut(&str, &Trace)) -> Trace {
    for p in passes {
        trace = (p.run)(&trace);
        if cfg!(debug_assertions) {
            if let Err(e) = crate::ir::verify::verify(&trace) {
                panic!(
                    "pass {} produced an invalid trace: {e}\n{}",
                    p.name,
                    trace.to_text()
                );
            }
        }
        log(p.name, &trace);
    }
    trace
}

/// Builds the trace a pass produces from the one it reads (see the module
/// documentation).
pub struct Rewriter<'a> {
    pub old: &'a Trace,
    pub new: Trace,
    /// The new reference of each old instruction's result (`None`: not emitted).
    map: Vec<Option<Ref>>,
    /// New references known to equal others (a guard proved it): read as those.
    alias: HashMap<Ref, Ref>,
    snaps: HashMap<SnapId, SnapId>,
}

impl<'a> Rewriter<'a> {
    pub fn new(old: &'a Trace) -> Rewriter<'a> {
        let mut new = Trace::new(old.key);
        new.root_sp = old.root_sp;
        // Every recorded constant stays in the table, used or not: the client roots
        // the objects traces refer to through it, and a folded constant (an address
        // inside an object) does not keep its object alive.
        for &k in &old.consts {
            new.konst(k);
        }
        Rewriter {
            old,
            new,
            map: vec![None; old.ops.len()],
            alias: HashMap::new(),
            snaps: HashMap::new(),
        }
    }

    /// The new reference of old reference `r`.
    pub fn get(&mut self, r: Ref) -> Ref {
        let r = match self.old.const_value(r) {
            Some(k) => return self.new.konst(k),
            None => self.map[r.index()].expect("an operand emitted before its use"),
        };
        self.alias.get(&r).copied().unwrap_or(r)
    }

    /// From here on, reads of new reference `from` read `to` (which must equal it
    /// wherever `from` is read later, as after a guard that proved it).
    pub fn substitute(&mut self, from: Ref, to: Ref) {
        if from != to && !from.is_const() {
            self.alias.insert(from, to);
        }
    }

    /// The constant the new reference `r` stands for, if it is one.
    pub fn konst(&self, r: Ref) -> Option<u64> {
        self.new.const_value(r)
    }

    /// Old instruction `op` with its operands in the new trace's terms (its snapshot,
    /// if a guard, stays the old one's until [`Rewriter::emit`]).
    pub fn translate(&mut self, op: &Op) -> Op {
        op.map_operands(|r| self.get(r))
    }

    /// The new number of old snapshot `s`, copying it on first use.
    pub fn snapshot(&mut self, s: SnapId) -> SnapId {
        if let Some(&n) = self.snaps.get(&s) {
            return n;
        }
        let old = &self.old.snaps[s as usize];
        let snap = old.map_refs(|r| self.get(r));
        let n = self.new.add_snapshot(snap);
        self.snaps.insert(s, n);
        n
    }

    /// Copies of the old snapshots are made afresh from here on (loop peeling emits
    /// the body a second time, with other values).
    pub fn forget_snapshots(&mut self) {
        self.snaps.clear();
    }

    /// Appends `op` (operands in new terms, snapshot the old trace's) as the
    /// translation of old instruction `at`; the snapshot is copied on first use.
    pub fn emit(&mut self, at: usize, op: Op) -> Ref {
        let op = match op.snap() {
            Some(s) => {
                let n = self.snapshot(s);
                op.map_snap(|_| n)
            }
            None => op,
        };
        let r = self.new.push(op);
        self.map[at] = Some(r);
        r
    }

    /// Appends `op`, whose operands and snapshot are already the new trace's, as the
    /// translation of old instruction `at`.
    pub fn emit_new(&mut self, at: usize, op: Op) -> Ref {
        let r = self.new.push(op);
        self.map[at] = Some(r);
        r
    }

    /// Old instruction `at` is not emitted: its result is `r` (a new reference).
    pub fn replace(&mut self, at: usize, r: Ref) {
        self.map[at] = Some(r);
    }

    /// Old instruction `at` is dropped (it has no result anyone reads).
    pub fn drop_op(&mut self, at: usize) {
        self.map[at] = None;
    }

    /// The instruction behind new reference `r`, unless a constant.
    pub fn new_op(&self, r: Ref) -> Option<&Op> {
        (!r.is_const()).then(|| &self.new.ops[r.index()])
    }

    pub fn finish(self) -> Trace {
        self.new
    }
}

/// Copies `t` unchanged through a rewriter, calling `each` for every instruction
/// (in old terms); `each` answers whether it took care of the instruction (by
/// `emit`, `replace` or `drop_op`), else it is translated and emitted.
pub fn rewrite(t: &Trace, mut each: impl FnMut(&mut Rewriter, usize, &Op) -> bool) -> Trace {
    let mut rw = Rewriter::new(t);
    for (at, op) in t.ops.iter().enumerate() {
        if !each(&mut rw, at, op) {
            let op = rw.translate(op);
            rw.emit(at, op);
        }
    }
    rw.finish()
}

#[cfg(test)]
pub(crate) mod test_util {
    use crate::ir::parse::parse;
    use crate::ir::Trace;

    /// Parses `input`, runs `pass`, and compares the result's text with `expected`
    /// (both parsed and printed, so names and spacing do not matter).
    pub fn check(pass: fn(&Trace) -> Trace, input: &str, expected: &str) {
        let input = parse(input).unwrap_or_else(|e| panic!("input: {e}"));
        crate::ir::verify::verify(&input).unwrap_or_else(|e| panic!("input: {e}"));
        let out = pass(&input);
        crate::ir::verify::verify(&out)
            .unwrap_or_else(|e| panic!("output: {e}\n{}", out.to_text()));
        let expected = parse(expected).unwrap_or_else(|e| panic!("expected: {e}"));
        assert_eq!(
            out.to_text(),
            expected.to_text(),
            "\n--- got\n{}\n--- expected\n{}",
            out.to_text(),
            expected.to_text()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_are_chosen_by_name() {
        assert_eq!(passes_named("all").unwrap().len(), PASSES.len());
        assert!(passes_named("none").unwrap().is_empty());
        let some = passes_named("cse+peel").unwrap();
        let names: Vec<&str> = some.iter().map(|p| p.name).collect();
        assert_eq!(names, ["peel", "cse", "cse"]);
        assert!(passes_named("peel+unroll")
            .unwrap_err()
            .contains("unknown optimisation pass 'unroll'"));
    }
}
