//! [`Recorder`]: the tier-2 machine. It runs the interpreter definition *concretely*,
//! exactly as [`crate::Concrete`] would, and appends trace IR ([`crate::ir`]) for every
//! operation on runtime values; every decision a handler makes on a runtime value
//! becomes a guard on the answer it got, with a snapshot of the interpreter state.
//!
//! **Slots.** The recorder keeps a slot map (LuaJIT's `J->slot`): the IR value of each
//! slot of the frame window, counted from the root frame's slot 0, so inlined callees,
//! whose frames start where their caller pushed the receiver, share their arguments
//! with the caller. The first read of a root-frame slot emits `sload`; writes only
//! change the map and mark the slot dirty. Dirty slots go into snapshots and are
//! written back (`sstore`) before the `jump` to the loop header, so every iteration
//! starts from memory (the optimiser will keep them in registers across the loop).
//!
//! **Instructions.** The client calls [`Machine::instruction`] before each handler.
//! A guard resumes the interpreter at the start of its instruction, so its snapshot
//! is the state of that moment: slot and auxiliary writes earlier in the same
//! instruction are undone in the snapshot; a heap store before a guard aborts the
//! trace (the instruction could not be run again).
//!
//! **Frames.** [`Machine::enter_frame`] and [`Machine::leave_frame`] bracket inlined
//! activations; a frame's auxiliary words must be set through the machine.
//!
//! **Leaks.** [`Machine::bits`] of a traced value would freeze a runtime value into the
//! trace when handed back through `konst`: in strict mode (debug builds) it panics,
//! naming the trace; otherwise it aborts the recording. Residual work uses
//! [`Machine::call`]. After an abort the recorder goes on executing concretely
//! without recording, so the interpreter finishes whatever it was doing.

use crate::concrete::Concrete;
use crate::ir::{
    verify::verify, Effects, LoopKey, MemKind, Op, OvfOp, Ref, ResidualFn, SnapFrame, SnapId,
    Snapshot, Trace, MAX_CALL_ARGS,
};
use crate::machine::{BinOp, Cmp, FBinOp, Machine, StackFrame};
use std::collections::BTreeMap;

/// A word while recording: its concrete value and its IR reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traced {
    pub bits: u64,
    pub r: Ref,
}

/// Why a recording stopped without a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AbortReason {
    /// More than `trace_limit` instructions.
    TooLong,
    /// Inlined activations deeper than the limit.
    TooDeep,
    /// A handler read the concrete bits of a traced value.
    ConcreteLeak,
    /// A handler stored to the heap before a decision of the same instruction.
    StoreBeforeGuard,
    /// A read of a slot or auxiliary word the trace never wrote, outside the root frame.
    UnrecordedRead,
    /// The root activation returned, or was left by an unwind.
    LeftRootFrame,
    /// An overflow on the recorded path (handled by the runtime).
    Overflow,
    /// A guard after a callee returned, before the caller's next instruction.
    GuardAfterReturn,
    /// The trace met the header of another loop (an inner loop, which gets its own
    /// trace; unrolling it would copy its body into this one).
    InnerLoop,
    /// Something the client does not trace (a non-local return, an error...).
    Unsupported,
}

impl AbortReason {
    pub const ALL: [AbortReason; 10] = [
        AbortReason::TooLong,
        AbortReason::TooDeep,
        AbortReason::ConcreteLeak,
        AbortReason::StoreBeforeGuard,
        AbortReason::UnrecordedRead,
        AbortReason::LeftRootFrame,
        AbortReason::Overflow,
        AbortReason::GuardAfterReturn,
        AbortReason::InnerLoop,
        AbortReason::Unsupported,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AbortReason::TooLong => "trace too long",
            AbortReason::TooDeep => "inlining too deep",
            AbortReason::ConcreteLeak => "concrete leak",
            AbortReason::StoreBeforeGuard => "store before guard",
            AbortReason::UnrecordedRead => "unrecorded read",
            AbortReason::LeftRootFrame => "left the root frame",
            AbortReason::Overflow => "overflow",
            AbortReason::GuardAfterReturn => "guard after return",
            AbortReason::InnerLoop => "inner loop",
            AbortReason::Unsupported => "unsupported",
        }
    }
}

/// Limits of one recording.
#[derive(Debug, Clone, Copy)]
pub struct RecordLimits {
    /// Most IR instructions.
    pub trace_limit: usize,
    /// Most activations (the root frame counts).
    pub max_depth: usize,
    /// Panic on a concrete leak instead of aborting.
    pub strict: bool,
}

/// An activation the trace is in.
#[derive(Debug, Clone)]
struct RecFrame {
    code: u64,
    entry: u64,
    pc: u32,
    sp: u32,
    base: i32,
    aux_ptr: *mut u64,
    /// The IR value of each auxiliary word the trace knows, and whether it wrote it.
    aux: Vec<Option<(Ref, bool)>>,
}

/// What a write during the current instruction replaced (to undo it in the
/// instruction's snapshot).
#[derive(Debug, Clone, Copy)]
enum Undo {
    Slot(i32, Option<(Ref, bool)>),
    Aux(usize, usize, Option<(Ref, bool)>),
}

/// The recording machine (see the module documentation).
pub struct Recorder {
    pub trace: Trace,
    limits: RecordLimits,
    root_base: *mut u64,
    /// Slots at and above this (in the root frame) were not live at the loop header.
    root_top: i32,
    /// Slots below this may be read from memory (the root frame's at the header; for
    /// a bridge also the inlined frames' slots the parent trace wrote there).
    loadable: i32,
    /// Slot -> (IR value, written by the trace).
    slots: BTreeMap<i32, (Ref, bool)>,
    frames: Vec<RecFrame>,
    /// The current instruction's snapshot, once a guard needed it.
    snap: Option<SnapId>,
    undo: Vec<Undo>,
    stored: bool,
    returned: bool,
    aborted: Option<AbortReason>,
}

impl Recorder {
    /// Starts recording the loop `key` at its header, in the activation `f` (the root
    /// frame) of code `code`, entered as `entry`, with `naux` auxiliary words.
    pub fn start<F: StackFrame>(
        key: LoopKey,
        f: &mut F,
        entry: u64,
        naux: usize,
        limits: RecordLimits,
    ) -> Recorder {
        let mut trace = Trace::new(key);
        trace.push(Op::Loop);
        trace.push(Op::Poll);
        let sp = f.sp();
        trace.root_sp = sp as u32;
        Recorder {
            trace,
            limits,
            root_base: f.slot_base(),
            root_top: sp as i32,
            loadable: sp as i32,
            slots: BTreeMap::new(),
            frames: vec![RecFrame {
                code: key.code,
                entry,
                pc: key.pc,
                sp: sp as u32,
                base: 0,
                aux_ptr: f.aux_base(),
                aux: vec![None; naux],
            }],
            snap: None,
            undo: Vec::new(),
            stored: false,
            returned: false,
            aborted: None,
        }
    }

    /// Starts recording an entry trace of the activation `f` of code `key.code`,
    /// which is about to run its first instruction (`key.pc`); it closes when `f`
    /// returns ([`Recorder::close_function`]).
    pub fn start_function<F: StackFrame>(
        key: LoopKey,
        f: &mut F,
        entry: u64,
        naux: usize,
        limits: RecordLimits,
    ) -> Recorder {
        let mut r = Recorder::start(key, f, entry, naux, limits);
        r.trace.ops.clear();
        r
    }

    /// Closes an entry trace (or a bridge of one) where its root activation returns
    /// `result`.
    pub fn close_function(mut self, result: Traced) -> Result<Trace, AbortReason> {
        if let Some(why) = self.aborted {
            return Err(why);
        }
        self.trace.push(Op::Finish(result.r));
        self.check();
        Ok(self.trace)
    }

    fn check(&self) {
        if cfg!(debug_assertions) {
            if let Err(e) = verify(&self.trace) {
                panic!(
                    "the recorder produced an invalid trace: {e}\n{}",
                    self.trace.to_text()
                );
            }
        }
    }

    /// Starts recording a bridge from snapshot `snap` of `parent`: the activations and
    /// slot values its guard's exit saved, which the bridge reads as `param`s. The
    /// client rebuilds the activations concretely, root frame `root` first, and
    /// attaches each inlined one ([`Machine::attach_frame`]) before it runs; the bridge
    /// closes ([`Recorder::close_bridge`]) at the loop header in the root frame.
    pub fn start_bridge<F: StackFrame>(
        parent: &Trace,
        snap: SnapId,
        root: &mut F,
        naux: usize,
        limits: RecordLimits,
    ) -> Recorder {
        let s = &parent.snaps[snap as usize];
        let mut trace = Trace::new(parent.key);
        trace.root_sp = parent.root_sp;
        let live = s.live();
        // The exit saved the live values, then the objects it allocated for the
        // snapshot's virtual ones (`deopt::ExitMap::materialise`).
        let params: Vec<Ref> = (0..(live.len() + s.virtuals.len()) as u32)
            .map(|i| trace.push(Op::Param(i)))
            .collect();
        let mut value = |r: Ref| -> Ref {
            if r.is_virtual() {
                return params[live.len() + r.virtual_index()];
            }
            match parent.const_value(r) {
                Some(k) => trace.konst(k),
                None => params[live.iter().position(|&l| l == r).expect("live")],
            }
        };
        let slots = s
            .slots
            .iter()
            .map(|&(n, r)| (n, (value(r), true)))
            .collect();
        let frames = s
            .frames
            .iter()
            .enumerate()
            .map(|(k, f)| {
                let mut aux = vec![None; naux];
                for &(i, r) in &f.aux {
                    aux[i as usize] = Some((value(r), true));
                }
                RecFrame {
                    code: f.code,
                    entry: f.entry,
                    pc: f.pc,
                    sp: f.sp,
                    base: f.base,
                    aux_ptr: if k == 0 {
                        root.aux_base()
                    } else {
                        std::ptr::null_mut()
                    },
                    aux,
                }
            })
            .collect();
        Recorder {
            trace,
            limits,
            root_base: root.slot_base(),
            root_top: parent.root_sp as i32,
            loadable: s
                .frames
                .iter()
                .map(|f| f.base + f.sp as i32)
                .max()
                .unwrap_or(0)
                .max(parent.root_sp as i32),
            slots,
            frames,
            snap: None,
            undo: Vec::new(),
            stored: false,
            returned: false,
            aborted: None,
        }
    }

    /// Closes a bridge at the loop header: writes back what the root frame's slots
    /// and auxiliary words hold and continues in the loop's trace.
    pub fn close_bridge(self) -> Result<Trace, AbortReason> {
        self.finish(Op::ToLoop)
    }

    /// Closes a loop trace or bridge at the header of another loop of the root
    /// activation, whose compiled trace is the client's number `n`: writes back what
    /// the recording changed and continues there.
    pub fn close_link(self, n: u32) -> Result<Trace, AbortReason> {
        self.finish(Op::Link(n))
    }

    /// Closes a bridge at an instruction boundary of the root activation, `pc` in
    /// `root` (the header of a loop that has no trace): the bridge leaves through a
    /// snapshot of the state there, and the interpreter goes on from it.
    pub fn close_exit<F: StackFrame>(
        mut self,
        root: &mut F,
        pc: u32,
    ) -> Result<Trace, AbortReason> {
        if let Some(why) = self.aborted {
            return Err(why);
        }
        if self.frames.len() != 1 {
            return Err(AbortReason::Unsupported);
        }
        self.instruction(root, pc);
        let s = self.snapshot();
        self.trace.push(Op::Exit(s));
        if let Some(why) = self.aborted {
            return Err(why);
        }
        self.check();
        Ok(self.trace)
    }

    /// Why recording stopped, if it did.
    pub fn aborted(&self) -> Option<AbortReason> {
        self.aborted
    }

    /// Stops recording (the client met something it does not trace).
    pub fn abort(&mut self, why: AbortReason) {
        if self.aborted.is_none() {
            self.aborted = Some(why);
        }
    }

    /// The number of activations the trace is in (1: the root frame).
    pub fn depth(&self) -> usize {
        self.frames.len()
    }

    /// Closes the loop at the back-edge to the header: writes back the slots and
    /// auxiliary words the iteration changed and jumps to the header. Answers the
    /// trace, or why there is none.
    pub fn close_loop(self) -> Result<Trace, AbortReason> {
        self.finish(Op::Jump(Vec::new()))
    }

    fn finish(mut self, end: Op) -> Result<Trace, AbortReason> {
        if let Some(why) = self.aborted {
            return Err(why);
        }
        if self.frames.len() != 1 {
            return Err(AbortReason::Unsupported);
        }
        let writes: Vec<(i32, Ref)> = self
            .slots
            .iter()
            .filter(|(&n, &(_, dirty))| dirty && n < self.root_top)
            .map(|(&n, &(r, _))| (n, r))
            .collect();
        for (n, r) in writes {
            self.trace.push(Op::SStore(n, r));
        }
        let aux: Vec<(usize, Ref)> = self.frames[0]
            .aux
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                Some((r, true)) => Some((i, *r)),
                _ => None,
            })
            .collect();
        for (i, r) in aux {
            self.trace.push(Op::AuxStore(i as u16, r));
        }
        self.trace.push(end);
        self.check();
        Ok(self.trace)
    }

    fn recording(&self) -> bool {
        self.aborted.is_none()
    }

    /// Appends `op` (unless recording stopped); answers its reference.
    fn emit(&mut self, op: Op) -> Ref {
        if !self.recording() {
            return Ref(0);
        }
        self.trace.push(op)
    }

    fn konst_ref(&mut self, bits: u64) -> Ref {
        if !self.recording() {
            return Ref(0);
        }
        self.trace.konst(bits)
    }

    fn value(&mut self, bits: u64, op: Op) -> Traced {
        let r = self.emit(op);
        Traced { bits, r }
    }

    /// The absolute slot number of slot `i` of frame `f`.
    fn abs_slot<F: StackFrame>(&self, f: &mut F, i: usize) -> i32 {
        let delta = (f.slot_base() as isize - self.root_base as isize) / 8;
        delta as i32 + i as i32
    }

    fn write_slot(&mut self, n: i32, r: Ref) {
        if !self.recording() {
            return;
        }
        let old = self.slots.insert(n, (r, true));
        self.undo.push(Undo::Slot(n, old));
    }

    fn read_slot(&mut self, n: i32, bits: u64) -> Traced {
        if !self.recording() {
            return Traced { bits, r: Ref(0) };
        }
        if let Some(&(r, _)) = self.slots.get(&n) {
            return Traced { bits, r };
        }
        if n < 0 || n >= self.loadable {
            self.abort(AbortReason::UnrecordedRead);
            return Traced { bits, r: Ref(0) };
        }
        let r = self.trace.push(Op::SLoad(n));
        self.slots.insert(n, (r, false));
        Traced { bits, r }
    }

    fn frame_of_aux(&mut self, ptr: *mut u64) -> Option<usize> {
        let found = self.frames.iter().rposition(|fr| fr.aux_ptr == ptr);
        if found.is_none() {
            self.abort(AbortReason::UnrecordedRead);
        }
        found
    }

    /// The snapshot of the current instruction (made on its first guard).
    fn snapshot(&mut self) -> SnapId {
        if let Some(s) = self.snap {
            return s;
        }
        if self.stored {
            self.abort(AbortReason::StoreBeforeGuard);
        }
        if self.returned {
            self.abort(AbortReason::GuardAfterReturn);
        }
        // The maps as they were when the instruction began.
        let mut slots = self.slots.clone();
        let mut aux: Vec<Vec<Option<(Ref, bool)>>> =
            self.frames.iter().map(|f| f.aux.clone()).collect();
        for u in self.undo.iter().rev() {
            match *u {
                Undo::Slot(n, old) => match old {
                    Some(v) => {
                        slots.insert(n, v);
                    }
                    None => {
                        slots.remove(&n);
                    }
                },
                Undo::Aux(fr, i, old) => aux[fr][i] = old,
            }
        }
        let top = self.frames.last().map_or(0, |f| f.base + f.sp as i32);
        let frames = self
            .frames
            .iter()
            .zip(aux)
            .map(|(f, aux)| SnapFrame {
                code: f.code,
                entry: f.entry,
                pc: f.pc,
                base: f.base,
                sp: f.sp,
                aux: aux
                    .iter()
                    .enumerate()
                    .filter_map(|(i, a)| match a {
                        Some((r, true)) => Some((i as u16, *r)),
                        _ => None,
                    })
                    .collect(),
            })
            .collect();
        let slots = slots
            .iter()
            .filter(|(&n, &(_, dirty))| dirty && n < top)
            .map(|(&n, &(r, _))| (n, r))
            .collect();
        let id = self.trace.add_snapshot(Snapshot {
            frames,
            slots,
            virtuals: Vec::new(),
        });
        self.snap = Some(id);
        id
    }

    /// Records a decision with outcome `holds` (no guard when its inputs are constants).
    fn guard(&mut self, holds: bool, inputs: &[Traced], make: impl FnOnce(SnapId) -> Op) -> bool {
        if self.recording() && inputs.iter().any(|w| !w.r.is_const()) {
            let s = self.snapshot();
            self.emit(make(s));
        }
        holds
    }

    /// Records a comparison (signed, or IEEE with `float`) that answered `holds`.
    fn guard_cmp(&mut self, cc: Cmp, float: bool, a: Traced, b: Traced, holds: bool) -> bool {
        self.guard(holds, &[a, b], |snap| Op::GuardCmp {
            cc,
            float,
            a: a.r,
            b: b.r,
            holds,
            snap,
        })
    }

    fn checked(&mut self, op: OvfOp, a: Traced, b: Traced, r: Option<u64>) -> Option<Traced> {
        match r {
            None => {
                if !(a.r.is_const() && b.r.is_const()) {
                    self.abort(AbortReason::Overflow);
                }
                None
            }
            Some(bits) if self.recording() => {
                let s = self.snapshot();
                Some(self.value(bits, Op::Ovf(op, a.r, b.r, s)))
            }
            Some(bits) => Some(Traced { bits, r: Ref(0) }),
        }
    }
}

impl Machine for Recorder {
    type W = Traced;
    const RECORDS: bool = true;

    fn cannot_trace(&mut self, why: AbortReason) {
        self.abort(why);
    }

    fn inlined_frames(&self) -> usize {
        self.frames.len().saturating_sub(1)
    }

    fn may_inline(&mut self, code: u64) -> bool {
        self.frames.len() < self.limits.max_depth && !self.frames.iter().any(|f| f.code == code)
    }

    fn attach_frame<F: StackFrame>(&mut self, f: &mut F, depth: usize) {
        if let Some(fr) = self.frames.get_mut(depth) {
            fr.aux_ptr = f.aux_base();
        }
    }

    fn slot_address<F: StackFrame>(&mut self, f: &mut F, i: usize) -> Traced {
        let bits = Concrete.slot_address(f, i);
        let n = self.abs_slot(f, i);
        self.value(bits, Op::SlotAddr(n))
    }

    fn materialise<F: StackFrame>(&mut self, f: &mut F, from: usize, to: usize) {
        if !self.recording() {
            return;
        }
        for i in from..to {
            let n = self.abs_slot(f, i);
            if let Some(&(r, true)) = self.slots.get(&n) {
                self.trace.push(Op::SStore(n, r));
                self.slots.insert(n, (r, false));
            }
        }
    }

    unsafe fn call_checked(
        &mut self,
        func: ResidualFn,
        ctx: *mut u8,
        args: &[Traced],
        effects: Effects,
    ) -> Option<Traced> {
        // The exit resumes at the start of this instruction, with the failure pending.
        let snap = self.recording().then(|| self.snapshot());
        let r = self.call(func, ctx, args, effects);
        if r.bits == 0 {
            // A failure while recording: the runtime handles it, the trace stops here.
            self.abort(AbortReason::Unsupported);
            return None;
        }
        if let Some(s) = snap {
            self.emit(Op::CallCheck(r.r, s));
        }
        Some(r)
    }

    fn instruction<F: StackFrame>(&mut self, f: &mut F, pc: u32) {
        self.snap = None;
        self.undo.clear();
        self.stored = false;
        self.returned = false;
        if let Some(top) = self.frames.last_mut() {
            top.pc = pc;
            top.sp = f.sp() as u32;
        }
        if self.trace.ops.len() > self.limits.trace_limit {
            self.abort(AbortReason::TooLong);
        }
    }

    fn enter_frame<F: StackFrame>(&mut self, f: &mut F, code: u64, entry: u64, naux: usize) {
        if self.frames.len() >= self.limits.max_depth {
            self.abort(AbortReason::TooDeep);
        }
        let base = self.abs_slot(f, 0);
        self.frames.push(RecFrame {
            code,
            entry,
            pc: 0,
            sp: f.sp() as u32,
            base,
            aux_ptr: f.aux_base(),
            aux: vec![None; naux],
        });
        // The caller's partial instruction is part of the state the callee sees.
        self.undo.clear();
        self.snap = None;
    }

    fn leave_frame(&mut self) {
        if self.frames.len() <= 1 {
            self.abort(AbortReason::LeftRootFrame);
            return;
        }
        if let Some(callee) = self.frames.pop() {
            // The callee's slots above its receiver are dead now.
            let dead: Vec<i32> = self
                .slots
                .range(callee.base + 1..)
                .map(|(&n, _)| n)
                .collect();
            for n in dead {
                self.slots.remove(&n);
            }
        }
        self.undo.clear();
        self.snap = None;
        self.returned = true;
    }

    fn konst(&mut self, bits: u64) -> Traced {
        let r = self.konst_ref(bits);
        Traced { bits, r }
    }

    fn bits(&mut self, w: Traced) -> u64 {
        if self.recording() && !w.r.is_const() {
            if self.limits.strict {
                panic!(
                    "concrete leak: a handler read the bits of traced value %{} while \
                     recording (use Machine::call for residual work)\n{}",
                    w.r.index(),
                    self.trace.to_text()
                );
            }
            self.abort(AbortReason::ConcreteLeak);
        }
        w.bits
    }

    fn promote(&mut self, w: Traced) -> u64 {
        let k = self.konst(w.bits);
        self.guard(true, &[w], |snap| Op::GuardCmp {
            cc: Cmp::Eq,
            float: false,
            a: w.r,
            b: k.r,
            holds: true,
            snap,
        });
        w.bits
    }

    fn slot<F: StackFrame>(&mut self, f: &mut F, i: usize) -> Traced {
        let bits = Concrete.slot(f, i);
        let n = self.abs_slot(f, i);
        self.read_slot(n, bits)
    }
    fn set_slot<F: StackFrame>(&mut self, f: &mut F, i: usize, w: Traced) {
        Concrete.set_slot(f, i, w.bits);
        let n = self.abs_slot(f, i);
        self.write_slot(n, w.r);
    }
    fn push<F: StackFrame>(&mut self, f: &mut F, w: Traced) {
        let n = self.abs_slot(f, f.sp());
        Concrete.push(f, w.bits);
        self.write_slot(n, w.r);
    }
    fn pop<F: StackFrame>(&mut self, f: &mut F) -> Traced {
        let v = self.peek(f, 0);
        Concrete.drop_n(f, 1);
        v
    }
    fn peek<F: StackFrame>(&mut self, f: &mut F, depth: usize) -> Traced {
        let i = f.sp() - 1 - depth;
        self.slot(f, i)
    }
    fn drop_n<F: StackFrame>(&mut self, f: &mut F, n: usize) {
        Concrete.drop_n(f, n);
    }
    fn aux<F: StackFrame>(&mut self, f: &mut F, i: usize) -> Traced {
        let bits = Concrete.aux(f, i);
        if !self.recording() {
            return Traced { bits, r: Ref(0) };
        }
        let Some(fr) = self.frame_of_aux(f.aux_base()) else {
            return Traced { bits, r: Ref(0) };
        };
        if let Some((r, _)) = self.frames[fr].aux[i] {
            return Traced { bits, r };
        }
        if fr != 0 {
            self.abort(AbortReason::UnrecordedRead);
            return Traced { bits, r: Ref(0) };
        }
        let r = self.trace.push(Op::AuxLoad(i as u16));
        self.frames[0].aux[i] = Some((r, false));
        Traced { bits, r }
    }
    fn set_aux<F: StackFrame>(&mut self, f: &mut F, i: usize, w: Traced) {
        Concrete.set_aux(f, i, w.bits);
        if !self.recording() {
            return;
        }
        if let Some(fr) = self.frame_of_aux(f.aux_base()) {
            let old = self.frames[fr].aux[i].replace((w.r, true));
            self.undo.push(Undo::Aux(fr, i, old));
        }
    }

    unsafe fn load(&mut self, base: Traced, offset: i32) -> Traced {
        let bits = Concrete.load(base.bits, offset);
        self.value(
            bits,
            Op::Load {
                base: base.r,
                offset,
                kind: MemKind::Mutable,
            },
        )
    }
    unsafe fn load_immutable(&mut self, base: Traced, offset: i32) -> Traced {
        let bits = Concrete.load(base.bits, offset);
        self.value(
            bits,
            Op::Load {
                base: base.r,
                offset,
                kind: MemKind::Immutable,
            },
        )
    }
    unsafe fn store(&mut self, base: Traced, offset: i32, w: Traced) {
        Concrete.store(base.bits, offset, w.bits);
        self.stored = true;
        self.emit(Op::Store {
            base: base.r,
            offset,
            value: w.r,
        });
    }

    unsafe fn call(
        &mut self,
        func: ResidualFn,
        ctx: *mut u8,
        args: &[Traced],
        effects: Effects,
    ) -> Traced {
        let bits = call_with(func, ctx, args);
        self.stored |= effects.contains(Effects::WRITES_HEAP);
        self.value(
            bits,
            Op::Call {
                func: func as usize as u64,
                args: args.iter().map(|w| w.r).collect(),
                effects,
            },
        )
    }

    unsafe fn allocate(
        &mut self,
        func: ResidualFn,
        ctx: *mut u8,
        args: &[Traced],
        fields: impl FnOnce(&mut Self) -> Vec<(i32, Traced)>,
    ) -> Traced {
        let fields = fields(self);
        let bits = call_with(func, ctx, args);
        self.value(
            bits,
            Op::Alloc {
                func: func as usize as u64,
                args: args.iter().map(|w| w.r).collect(),
                fields: fields.iter().map(|&(o, w)| (o, w.r)).collect(),
            },
        )
    }

    fn bin(&mut self, op: BinOp, a: Traced, b: Traced) -> Traced {
        let bits = Concrete.bin(op, a.bits, b.bits);
        self.value(bits, Op::Bin(op, a.r, b.r))
    }
    fn add_ovf(&mut self, a: Traced, b: Traced) -> Option<Traced> {
        let r = Concrete.add_ovf(a.bits, b.bits);
        self.checked(OvfOp::Add, a, b, r)
    }
    fn sub_ovf(&mut self, a: Traced, b: Traced) -> Option<Traced> {
        let r = Concrete.sub_ovf(a.bits, b.bits);
        self.checked(OvfOp::Sub, a, b, r)
    }
    fn mul_ovf(&mut self, a: Traced, b: Traced) -> Option<Traced> {
        let r = Concrete.mul_ovf(a.bits, b.bits);
        self.checked(OvfOp::Mul, a, b, r)
    }
    fn fbin(&mut self, op: FBinOp, a: Traced, b: Traced) -> Traced {
        let bits = Concrete.fbin(op, a.bits, b.bits);
        self.value(bits, Op::FBin(op, a.r, b.r))
    }
    fn flag(&mut self, c: Cmp, a: Traced, b: Traced) -> Traced {
        let bits = Concrete.flag(c, a.bits, b.bits);
        self.value(bits, Op::Flag(c, a.r, b.r))
    }

    fn test_bits(&mut self, w: Traced, mask: u64, expect: u64) -> bool {
        let holds = Concrete.test_bits(w.bits, mask, expect);
        self.guard(holds, &[w], |snap| Op::GuardBits {
            w: w.r,
            mask,
            expect,
            holds,
            snap,
        })
    }
    fn cmp(&mut self, c: Cmp, a: Traced, b: Traced) -> bool {
        let holds = Concrete.cmp(c, a.bits, b.bits);
        self.guard_cmp(c, false, a, b, holds)
    }
    fn fcmp(&mut self, c: Cmp, a: Traced, b: Traced) -> bool {
        let holds = Concrete.fcmp(c, a.bits, b.bits);
        self.guard_cmp(c, true, a, b, holds)
    }
}

/// Calls residual function `func` with `ctx` and the concrete bits of `args` (the
/// rest 0), as a recorded call runs while recording.
///
/// # Safety
/// As [`Machine::call`].
unsafe fn call_with(func: ResidualFn, ctx: *mut u8, args: &[Traced]) -> u64 {
    assert!(args.len() <= MAX_CALL_ARGS, "too many residual arguments");
    let mut a = [0u64; MAX_CALL_ARGS];
    for (slot, w) in a.iter_mut().zip(args) {
        *slot = w.bits;
    }
    func(ctx, a[0], a[1], a[2], a[3])
}
