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

/// An object the optimised trace did not allocate (`opt::virtualise`), which the
/// exit must: a call of `func` with `args`, then a store of every field. Its values
/// may name other virtual objects of the snapshot (`Ref::VIRTUAL`); `args` only
/// earlier ones, since an allocation's arguments exist before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Virtual {
    pub func: u64,
    pub args: Vec<Ref>,
    /// (byte offset, value) to store once every virtual object exists.
    pub fields: Vec<(i32, Ref)>,
}

/// The interpreter state at a guard.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Outermost (the trace's root frame) first.
    pub frames: Vec<SnapFrame>,
    /// Slots whose value is not in memory: (slot from the root's slot 0, value), in
    /// increasing slot order.
    pub slots: Vec<(i32, Ref)>,
    /// The objects to allocate on exit, in allocation order.
    pub virtuals: Vec<Virtual>,
}

impl Snapshot {
    /// The instruction results the exit must save, in exit-buffer order (each once,
    /// constants and virtual objects excluded).
    pub fn live(&self) -> Vec<Ref> {
        let mut out: Vec<Ref> = Vec::new();
        for r in self.refs() {
            if r.is_instruction() && !out.contains(&r) {
                out.push(r);
            }
        }
        out
    }

    /// Every value the snapshot names, its virtual objects' included.
    pub fn refs(&self) -> impl Iterator<Item = Ref> + '_ {
        self.frames
            .iter()
            .flat_map(|f| f.aux.iter().map(|&(_, r)| r))
            .chain(self.slots.iter().map(|&(_, r)| r))
            .chain(self.virtuals.iter().flat_map(|v| {
                v.args
                    .iter()
                    .copied()
                    .chain(v.fields.iter().map(|&(_, r)| r))
            }))
    }

    /// The snapshot with every instruction reference replaced by `f` of it
    /// (constants and virtual object references stay).
    pub fn map_refs(&self, mut f: impl FnMut(Ref) -> Ref) -> Snapshot {
        let mut g = |r: Ref| if r.is_instruction() { f(r) } else { r };
        let mut s = self.clone();
        for fr in &mut s.frames {
            for a in &mut fr.aux {
                a.1 = g(a.1);
            }
        }
        for sl in &mut s.slots {
            sl.1 = g(sl.1);
        }
        for v in &mut s.virtuals {
            for a in &mut v.args {
                *a = g(*a);
            }
            for fl in &mut v.fields {
                fl.1 = g(fl.1);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_values_are_listed_once_without_constants_or_virtual_objects() {
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
            slots: vec![
                (1, Ref(5)),
                (2, Ref(2)),
                (3, k),
                (4, Ref::virtual_object(0)),
            ],
            virtuals: vec![Virtual {
                func: 9,
                args: vec![Ref(7), k],
                fields: vec![(16, Ref(5)), (24, Ref(8))],
            }],
        };
        assert_eq!(s.live(), vec![Ref(2), Ref(5), Ref(7), Ref(8)]);
        let m = s.map_refs(|r| Ref(r.0 + 100));
        assert_eq!(m.slots[2..], [(3, k), (4, Ref::virtual_object(0))]);
        assert_eq!(m.virtuals[0].args, [Ref(107), k]);
    }
}
