//! Snapshots: what a guard needs to give the interpreter its state back.
//!
//! The recorder ([`crate::record`]) takes one per instruction that guards, lazily, from
//! its slot map as it was when the instruction began: the chain of activations the
//! trace is inside (the root frame first, then each inlined callee), and every slot
//! whose current value the trace holds but memory does not (slots the trace wrote since
//! the loop header). The backend's exit code stores the snapshot's [`Snapshot::live`]
//! values into the exit buffer; [`crate::deopt`] turns buffer and snapshot back into
//! concrete frames for the client to rebuild.

use crate::ir::Ref;

/// One activation in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapFrame {
    /// The client's code object of the activation (green).
    pub code: u64,
    /// How the activation was entered (green, the client's meaning; for SOM a method
    /// send or a block evaluation).
    pub entry: u64,
    /// The instruction to resume at (for callers: the send that is in progress).
    pub pc: u32,
    /// Slot 0 of this activation, counted from the root frame's slot 0.
    pub base: i32,
    /// The stack pointer when the instruction began (slot index from `base`).
    pub sp: u32,
    /// Auxiliary words to restore: (index, value). For inlined frames every word the
    /// client declared; for the root frame those the trace changed.
    pub aux: Vec<(u16, Ref)>,
}

/// The interpreter state at a guard.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Outermost (the trace's root frame) first.
    pub frames: Vec<SnapFrame>,
    /// Slots whose value is not in memory: (slot from the root's slot 0, value), in
    /// increasing slot order.
    pub slots: Vec<(i32, Ref)>,
}

impl Snapshot {
    /// The instruction results the exit must save, in exit-buffer order (each once,
    /// constants excluded).
    pub fn live(&self) -> Vec<Ref> {
        let mut out: Vec<Ref> = Vec::new();
        let refs = self
            .frames
            .iter()
            .flat_map(|f| f.aux.iter().map(|&(_, r)| r))
            .chain(self.slots.iter().map(|&(_, r)| r));
        for r in refs {
            if !r.is_const() && !out.contains(&r) {
                out.push(r);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_values_are_listed_once_without_constants() {
        let k = Ref(Ref::CONST | 3);
        let s = Snapshot {
            frames: vec![SnapFrame {
                code: 1,
                entry: 0,
                pc: 4,
                base: 0,
                sp: 3,
                aux: vec![(0, Ref(2)), (1, k)],
            }],
            slots: vec![(1, Ref(5)), (2, Ref(2)), (3, k)],
        };
        assert_eq!(s.live(), vec![Ref(2), Ref(5)]);
    }
}
