//! The trace IR of tier 2: a linear SSA list of operations on 64-bit words, recorded by
//! [`crate::record::Recorder`] from the interpreter definition, checked by [`verify`],
//! lowered by [`crate::lower`], and read back from text by [`parse`] (for tests).
//!
//! Shape of a loop trace (before any optimisation):
//!
//! ```text
//! loop                   the loop header: the back-edge jumps here
//! poll                   safepoint poll
//! %0 = sload 1           a slot of the root frame, read from memory
//! ...                    the body: arithmetic, loads, stores, guards, calls
//! sstore 1, %5           write-back of the slots the iteration changed
//! jump                   back to the header
//! ```
//!
//! Bridges end with `toloop` (back to their loop's header), `finish` (the root
//! activation returns) or `link n` (on in compiled trace `n`, another loop of the root
//! activation); a loop trace may end with `link n` too (its path reached an inner
//! loop that has a trace).
//!
//! Values are words; references below [`Ref::CONST`] name instructions, references with
//! that bit set name interned constants. Every guard names a [`Snapshot`]: the
//! interpreter state to rebuild when the guard fails (`crate::snapshot`).

pub mod parse;
pub mod print;
pub mod verify;

use crate::machine::{BinOp, Cmp, FBinOp};
pub use crate::snapshot::{SnapFrame, Snapshot, Virtual};
use std::collections::HashMap;

/// A reference to an instruction's result or to a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ref(pub u32);

impl Ref {
    /// The bit that marks constant references.
    pub const CONST: u32 = 1 << 31;
    /// The bit that marks, inside a snapshot only, a reference to one of the
    /// snapshot's virtual objects ([`Snapshot::virtuals`], by position).
    pub const VIRTUAL: u32 = 1 << 30;

    pub fn is_const(self) -> bool {
        self.0 & Ref::CONST != 0
    }
    pub fn is_virtual(self) -> bool {
        self.0 & (Ref::CONST | Ref::VIRTUAL) == Ref::VIRTUAL
    }
    /// The reference to virtual object `k` of a snapshot.
    pub fn virtual_object(k: usize) -> Ref {
        Ref(Ref::VIRTUAL | k as u32)
    }
    /// The position of a virtual object reference in its snapshot's list.
    pub fn virtual_index(self) -> usize {
        (self.0 & !Ref::VIRTUAL) as usize
    }
    /// A reference to an instruction's result (neither constant nor virtual).
    pub fn is_instruction(self) -> bool {
        self.0 & (Ref::CONST | Ref::VIRTUAL) == 0
    }
    /// Index into the instructions or, for a constant, into the constant table.
    pub fn index(self) -> usize {
        (self.0 & !Ref::CONST) as usize
    }
}

/// The index of a snapshot in [`Trace::snaps`].
pub type SnapId = u32;

/// Overflow-checked operations (signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OvfOp {
    Add,
    Sub,
    Mul,
}

/// Whether memory a load reads can change while the trace runs (an optimiser may CSE
/// and hoist immutable loads: an object's class, an array's length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemKind {
    Mutable,
    Immutable,
}

/// What a residual call may do (DESIGN 7.1); the optimiser reads these, the backend
/// ignores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Effects(pub u8);

impl Effects {
    /// Pure given its arguments: may be folded or CSE'd.
    pub const ELIDABLE: Effects = Effects(1);
    pub const READS_HEAP: Effects = Effects(2);
    pub const WRITES_HEAP: Effects = Effects(4);
    /// May allocate, and so collect.
    pub const ALLOCATES: Effects = Effects(8);
    pub const NONE: Effects = Effects(0);
    /// Every effect a call may have (reads, writes, allocates); not elidable, which
    /// is a promise about the call, not an effect.
    pub const ALL: Effects = Effects(14);

    pub const fn union(self, o: Effects) -> Effects {
        Effects(self.0 | o.0)
    }
    pub fn contains(self, o: Effects) -> bool {
        self.0 & o.0 == o.0
    }
    pub(crate) const NAMES: [(&'static str, Effects); 4] = [
        ("elidable", Effects::ELIDABLE),
        ("reads", Effects::READS_HEAP),
        ("writes", Effects::WRITES_HEAP),
        ("allocates", Effects::ALLOCATES),
    ];
}

/// A residual function as traces call it: the runtime context and up to
/// [`MAX_CALL_ARGS`] words, answering one word.
pub type ResidualFn = unsafe extern "C" fn(ctx: *mut u8, a: u64, b: u64, c: u64, d: u64) -> u64;

/// The most arguments a residual call takes.
pub const MAX_CALL_ARGS: usize = 4;

/// One trace instruction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    /// Slot `n` of the frame window, counted from the root frame's slot 0, read from
    /// memory.
    SLoad(i32),
    /// Auxiliary word `n` of the root frame, read from memory.
    AuxLoad(u16),
    /// The address of slot `n` of the frame window.
    SlotAddr(i32),
    /// Word `n` of the buffer a bridge starts from: the live values its parent
    /// guard's exit saved.
    Param(u32),
    Bin(BinOp, Ref, Ref),
    /// 1 if the signed comparison holds, else 0.
    Flag(Cmp, Ref, Ref),
    FBin(FBinOp, Ref, Ref),
    /// Overflow-checked arithmetic; a guard: leaves through the snapshot on overflow.
    Ovf(OvfOp, Ref, Ref, SnapId),
    /// Guard that `(w & mask == expect) == holds`.
    GuardBits {
        w: Ref,
        mask: u64,
        expect: u64,
        holds: bool,
        snap: SnapId,
    },
    /// Guard that the comparison (signed, or IEEE with `float`) answers `holds`.
    GuardCmp {
        cc: Cmp,
        float: bool,
        a: Ref,
        b: Ref,
        holds: bool,
        snap: SnapId,
    },
    /// The word at `base + offset`.
    Load {
        base: Ref,
        offset: i32,
        kind: MemKind,
    },
    Store {
        base: Ref,
        offset: i32,
        value: Ref,
    },
    /// Writes slot `n` of the frame window.
    SStore(i32, Ref),
    /// Writes auxiliary word `n` of the root frame.
    AuxStore(u16, Ref),
    /// Guard that the residual call whose result is the operand did not fail (answer
    /// 0). Leaving here resumes the interpreter with the failure pending; unlike other
    /// guards it is never failed on purpose (`deopt_every`): the call must not be made
    /// twice.
    CallCheck(Ref, SnapId),
    /// A call of a residual function.
    Call {
        func: u64,
        args: Vec<Ref>,
        effects: Effects,
    },
    /// A call of a residual function that answers a new object (and may collect, but
    /// has no other effect): at each `(byte offset, value)` of `fields` it has
    /// written that value. Nothing else refers to the object until the trace passes
    /// it on, so the optimiser may keep it virtual (`opt::virtualise`): its fields in
    /// registers, the allocation made only where it escapes, or by the exit that
    /// needs it. A load at an offset `fields` does not name makes it escape.
    Alloc {
        func: u64,
        args: Vec<Ref>,
        fields: Vec<(i32, Ref)>,
    },
    /// The loop header.
    Loop,
    /// A value carried round the loop (only directly after `loop`): the operand on
    /// entry, then the `jump`'s argument of the same position (loop peeling).
    Phi(Ref),
    /// Safepoint poll (a collection requested elsewhere may run here).
    Poll,
    /// Back to the loop header, with the next values of the header's `phi`s.
    Jump(Vec<Ref>),
    /// A bridge's end: continue in its loop's trace, from the header.
    ToLoop,
    /// The end of an entry trace (or of its bridge): the root activation returns the
    /// operand.
    Finish(Ref),
    /// The end of a trace or bridge that reached the header of another loop of the
    /// root activation: continue in compiled trace `n` (the client's number) from
    /// that header, every slot in memory.
    Link(u32),
    /// The end of a bridge that reached an instruction it does not go on from (the
    /// header of a loop without a trace): leaves through snapshot `s`, as a failing
    /// guard would, so the interpreter goes on there (and a bridge may grow from it).
    Exit(SnapId),
}

impl Op {
    /// Does the instruction produce a value?
    pub fn has_value(&self) -> bool {
        matches!(
            self,
            Op::SLoad(_)
                | Op::AuxLoad(_)
                | Op::SlotAddr(_)
                | Op::Param(_)
                | Op::Bin(..)
                | Op::Flag(..)
                | Op::FBin(..)
                | Op::Ovf(..)
                | Op::Load { .. }
                | Op::Call { .. }
                | Op::Alloc { .. }
                | Op::Phi(_)
        )
    }

    /// The snapshot of a guard.
    pub fn snap(&self) -> Option<SnapId> {
        match *self {
            Op::Ovf(.., s) => Some(s),
            Op::GuardBits { snap, .. } | Op::GuardCmp { snap, .. } => Some(snap),
            Op::CallCheck(_, s) | Op::Exit(s) => Some(s),
            _ => None,
        }
    }

    /// The value operands, in order.
    pub fn operands(&self) -> Vec<Ref> {
        let mut out = Vec::new();
        self.map_operands(|r| {
            out.push(r);
            r
        });
        out
    }

    /// The instruction with every value operand replaced by `f` of it.
    pub fn map_operands(&self, mut f: impl FnMut(Ref) -> Ref) -> Op {
        let mut op = self.clone();
        match &mut op {
            Op::SLoad(_)
            | Op::AuxLoad(_)
            | Op::SlotAddr(_)
            | Op::Param(_)
            | Op::Loop
            | Op::Poll
            | Op::ToLoop
            | Op::Link(_)
            | Op::Exit(_) => {}
            Op::CallCheck(w, _) | Op::Finish(w) | Op::Phi(w) => *w = f(*w),
            Op::Bin(_, a, b) | Op::Flag(_, a, b) | Op::FBin(_, a, b) | Op::Ovf(_, a, b, _) => {
                *a = f(*a);
                *b = f(*b);
            }
            Op::GuardBits { w, .. } => *w = f(*w),
            Op::GuardCmp { a, b, .. } => {
                *a = f(*a);
                *b = f(*b);
            }
            Op::Load { base, .. } => *base = f(*base),
            Op::Store { base, value, .. } => {
                *base = f(*base);
                *value = f(*value);
            }
            Op::SStore(_, v) | Op::AuxStore(_, v) => *v = f(*v),
            Op::Call { args, .. } | Op::Jump(args) => {
                for a in args {
                    *a = f(*a);
                }
            }
            Op::Alloc { args, fields, .. } => {
                for a in args {
                    *a = f(*a);
                }
                for (_, v) in fields {
                    *v = f(*v);
                }
            }
        }
        op
    }

    /// The instruction with its snapshot (if a guard) replaced by `f` of it.
    pub fn map_snap(&self, f: impl FnOnce(SnapId) -> SnapId) -> Op {
        let mut op = self.clone();
        match &mut op {
            Op::Ovf(.., s) | Op::CallCheck(_, s) | Op::Exit(s) => *s = f(*s),
            Op::GuardBits { snap, .. } | Op::GuardCmp { snap, .. } => *snap = f(*snap),
            _ => {}
        }
        op
    }
}

/// Where a trace starts: the client's green key of a loop header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LoopKey {
    /// The client's code object (for SOM, the method's `Code`).
    pub code: u64,
    pub pc: u32,
    /// A further green word (for SOM, the promoted block method of a library loop).
    pub extra: u64,
}

/// A recorded trace: instructions, constants and snapshots. A loop trace runs its
/// loop until a guard fails; an entry trace runs an activation from its first
/// instruction to its return (`finish`); a bridge starts where a guard of another
/// trace failed (from that guard's saved values, `param`) and ends where its parent
/// does (at the loop header, `toloop`, or with the return, `finish`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    pub key: LoopKey,
    /// The root frame's stack pointer at the loop header.
    pub root_sp: u32,
    pub ops: Vec<Op>,
    pub consts: Vec<u64>,
    pub snaps: Vec<Snapshot>,
    const_index: HashMap<u64, Ref>,
}

impl Trace {
    pub fn new(key: LoopKey) -> Trace {
        Trace {
            key,
            ..Trace::default()
        }
    }

    /// The reference of constant `bits` (interned).
    pub fn konst(&mut self, bits: u64) -> Ref {
        if let Some(&r) = self.const_index.get(&bits) {
            return r;
        }
        let r = Ref(Ref::CONST | self.consts.len() as u32);
        self.consts.push(bits);
        self.const_index.insert(bits, r);
        r
    }

    /// The value of a constant reference.
    pub fn const_value(&self, r: Ref) -> Option<u64> {
        r.is_const().then(|| self.consts[r.index()])
    }

    /// Appends an instruction; answers the reference of its result.
    pub fn push(&mut self, op: Op) -> Ref {
        self.ops.push(op);
        Ref(self.ops.len() as u32 - 1)
    }

    pub fn add_snapshot(&mut self, s: Snapshot) -> SnapId {
        self.snaps.push(s);
        self.snaps.len() as SnapId - 1
    }

    /// The number of allocations (`alloc`).
    pub fn allocations(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| matches!(o, Op::Alloc { .. }))
            .count()
    }

    /// The number of guards (instructions with a snapshot).
    pub fn guards(&self) -> usize {
        self.ops.iter().filter(|o| o.snap().is_some()).count()
    }
}
