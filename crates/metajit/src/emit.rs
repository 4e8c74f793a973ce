//! [`Emit`]: the machine that turns a handler into native code instead of running it.
//!
//! Tier 1 runs a handler's body with this machine at compile time: every word operation
//! becomes the Cranelift instruction that performs it, so the handler is compiled into
//! the method rather than called. This is partial evaluation of the one interpreter
//! definition: the bytecode's operands and the VM's constants are known, the frame's
//! values are not.
//!
//! **Decisions.** A handler decides on runtime values through the machine (`test_bits`,
//! `cmp`, `add_ovf`...) and gets a Rust `bool` back, so one run of the handler follows
//! one path. [`explore`] runs the handler once per path: at a decision it has not seen,
//! the machine emits a conditional branch, answers `true` (or "no overflow") and queues
//! the other answer; a later run *replays* the recorded prefix (same answers, the same
//! SSA values, nothing emitted again), takes the other answer in the other branch's
//! block, and goes on emitting from there. Handlers are deterministic given their
//! answers, so the replay retraces the prefix exactly.
//!
//! **Slow paths.** A path that needs a value's concrete bits (to call into the runtime)
//! or that ends in an exit (a send, an error) is not compiled: it ends
//! [`PathEnd::Slow`], and the client calls the handler's concrete entry there, which
//! does the whole instruction again with real values. That is only correct if the path
//! has not yet changed anything (the stack pointer moves only at compile time until a
//! path continues), so [`explore`] reports such a path as an error if it stored to
//! memory first.
//!
//! How a path needing concrete bits stops: [`Machine::bits`] cannot answer, so it
//! unwinds (`resume_unwind`, which skips the panic hook) to [`explore`], which catches
//! exactly that payload. Handlers are plain Rust functions with nothing to drop on the
//! way, and the function builder is only used again after the unwind to end the block.

use crate::machine::{BinOp, Cmp, FBinOp, Machine, StackFrame};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, Block, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;

/// Where the frame keeps what compiled code needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLayout {
    /// Offset of the pointer to slot 0.
    pub base_offset: i32,
    /// Offset of the stack pointer (a 64-bit slot index).
    pub sp_offset: i32,
    /// Offset of the first auxiliary word.
    pub aux_offset: i32,
}

/// How one path of a handler ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PathEnd {
    /// Continue with the next instruction.
    Next,
    /// A conditional branch whose direction this path decided.
    Branch { taken: bool },
    /// Return this value from the activation.
    Return(Value),
    /// Do the instruction in the handler's concrete entry instead.
    Slow,
}

/// The most paths one handler may have (each decision doubles them at most).
const MAX_PATHS: usize = 64;

/// The unwind payload of a path that needs a concrete value.
struct NeedsConcrete;

/// One machine call's answer, recorded so that later paths can replay it.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Word(Value),
    Decision(bool),
    Checked(Option<Value>),
    Effect,
}

/// A path still to explore: the answers leading to it (the last one is the untried
/// alternative) and the block where the alternative starts.
struct Pending {
    script: Vec<Answer>,
    block: Block,
}

/// Emits the code of a handler into the function being built (one path per run; see
/// the module documentation).
///
/// The stack pointer is known at compile time (`sp`), so pushes and pops become loads
/// and stores at constant offsets from slot 0 (`base`, loaded once per method). The
/// frame's stack pointer is not touched inside a handler: a path that continues stores
/// its final value once (the `end` callback of [`explore`] gets it), and a slow path
/// finds the frame exactly as the instruction began.
pub struct Emit<'e, 'f> {
    pub b: &'e mut FunctionBuilder<'f>,
    /// The frame pointer of the compiled method.
    pub frame: Value,
    /// The frame's slot 0 pointer.
    pub base: Value,
    /// The operand-stack pointer (slot index) at this point of the handler.
    pub sp: usize,
    pub layout: FrameLayout,
    /// Answers to replay before emitting; then the block to continue in.
    script: Vec<Answer>,
    resume: Option<Block>,
    /// This path's answers so far (replayed and new).
    answers: Vec<Answer>,
    /// Alternatives found on this path.
    forks: Vec<Pending>,
    /// This path stored to memory (other than the stack pointer).
    dirty: bool,
}

/// Runs `handler` once per path through it, starting in the builder's current block.
/// After each path, `end` is called with the builder positioned where the path ended
/// and the path's final stack pointer (it must store that into the frame if the path
/// continues, and terminate the block); `Err` if a path stored before a slow exit, or
/// if the handler has too many paths.
pub fn explore(
    b: &mut FunctionBuilder,
    frame: Value,
    base: Value,
    sp: usize,
    layout: FrameLayout,
    handler: &mut dyn FnMut(&mut Emit) -> PathEnd,
    end: &mut dyn FnMut(&mut FunctionBuilder, PathEnd, usize) -> Result<(), String>,
) -> Result<(), String> {
    let mut queue = vec![(Vec::new(), None)];
    let mut paths = 0;
    while let Some((script, resume)) = queue.pop() {
        paths += 1;
        if paths > MAX_PATHS {
            return Err(format!("a handler has more than {MAX_PATHS} paths"));
        }
        let mut m = Emit {
            b: &mut *b,
            frame,
            base,
            sp,
            layout,
            script,
            resume,
            answers: Vec::new(),
            forks: Vec::new(),
            dirty: false,
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&mut m)));
        let path_end = match outcome {
            Ok(e) => e,
            Err(payload) if payload.is::<NeedsConcrete>() => PathEnd::Slow,
            Err(payload) => std::panic::resume_unwind(payload),
        };
        if m.answers.len() < m.script.len() {
            return Err("a handler took a different path when replayed".into());
        }
        if path_end == PathEnd::Slow && m.dirty {
            return Err("a handler stored to memory before leaving for its slow path".into());
        }
        let (forks, final_sp) = (std::mem::take(&mut m.forks), m.sp);
        drop(m);
        end(b, path_end, final_sp)?;
        queue.extend(forks.into_iter().map(|p| (p.script, Some(p.block))));
    }
    Ok(())
}

impl Emit<'_, '_> {
    fn flags() -> MemFlagsData {
        MemFlagsData::trusted()
    }

    /// The recorded answer of the next call while replaying, else `None` (emit).
    fn replayed(&mut self) -> Option<Answer> {
        let i = self.answers.len();
        let a = *self.script.get(i)?;
        self.answers.push(a);
        if i + 1 == self.script.len() {
            // The last scripted answer is the alternative: its code goes in its block.
            if let Some(block) = self.resume.take() {
                self.b.switch_to_block(block);
            }
        }
        Some(a)
    }

    /// A word-producing operation: replayed, or emitted by `make`.
    fn word(&mut self, make: impl FnOnce(&mut Self) -> Value) -> Value {
        match self.replayed() {
            Some(Answer::Word(v)) => v,
            Some(_) => self.diverged(),
            None => {
                let v = make(self);
                self.answers.push(Answer::Word(v));
                v
            }
        }
    }

    /// An operation with effects only: skipped when replayed (its code is already in a
    /// dominating block), else emitted by `make`.
    fn effect(&mut self, make: impl FnOnce(&mut Self)) {
        match self.replayed() {
            Some(Answer::Effect) => {}
            Some(_) => self.diverged(),
            None => {
                make(self);
                self.answers.push(Answer::Effect);
            }
        }
    }

    /// A decision on the Cranelift boolean `cond` (built by `make`).
    fn decide(&mut self, make: impl FnOnce(&mut Self) -> Value) -> bool {
        match self.replayed() {
            Some(Answer::Decision(d)) => d,
            Some(_) => self.diverged(),
            None => {
                let cond = make(self);
                let (yes, no) = (self.b.create_block(), self.b.create_block());
                self.b.ins().brif(cond, yes, &[], no, &[]);
                self.b.switch_to_block(yes);
                let mut script = self.answers.clone();
                script.push(Answer::Decision(false));
                self.forks.push(Pending { script, block: no });
                self.answers.push(Answer::Decision(true));
                true
            }
        }
    }

    /// An overflow-checked operation: `make` answers the result and the overflow flag.
    fn checked(&mut self, make: impl FnOnce(&mut Self) -> (Value, Value)) -> Option<Value> {
        match self.replayed() {
            Some(Answer::Checked(r)) => r,
            Some(_) => self.diverged(),
            None => {
                let (r, overflow) = make(self);
                let (ok, ovf) = (self.b.create_block(), self.b.create_block());
                self.b.ins().brif(overflow, ovf, &[], ok, &[]);
                self.b.switch_to_block(ok);
                let mut script = self.answers.clone();
                script.push(Answer::Checked(None));
                self.forks.push(Pending { script, block: ovf });
                self.answers.push(Answer::Checked(Some(r)));
                Some(r)
            }
        }
    }

    fn diverged(&self) -> ! {
        panic!(
            "a handler made different machine calls when replayed (handlers must be deterministic)"
        )
    }

    fn load_slot(&mut self, i: usize) -> Value {
        let base = self.base;
        self.word(|m| {
            m.b.ins()
                .load(types::I64, Self::flags(), base, (8 * i) as i32)
        })
    }
    fn store_slot(&mut self, i: usize, w: Value) {
        self.dirty = true;
        let base = self.base;
        self.effect(|m| {
            m.b.ins().store(Self::flags(), w, base, (8 * i) as i32);
        })
    }
    /// Moves the compile-time stack pointer. The frame's is written once, where the
    /// path continues (see [`explore`]).
    fn move_sp(&mut self, sp: usize) {
        self.sp = sp;
    }
    fn needs_concrete(&self) -> ! {
        std::panic::resume_unwind(Box::new(NeedsConcrete))
    }
}

/// The Cranelift condition of a signed integer comparison.
pub(crate) fn int_cc(c: Cmp) -> IntCC {
    match c {
        Cmp::Eq => IntCC::Equal,
        Cmp::Ne => IntCC::NotEqual,
        Cmp::Lt => IntCC::SignedLessThan,
        Cmp::Le => IntCC::SignedLessThanOrEqual,
        Cmp::Gt => IntCC::SignedGreaterThan,
        Cmp::Ge => IntCC::SignedGreaterThanOrEqual,
    }
}

/// The Cranelift condition of an IEEE float comparison.
pub(crate) fn float_cc(c: Cmp) -> FloatCC {
    match c {
        Cmp::Eq => FloatCC::Equal,
        Cmp::Ne => FloatCC::NotEqual,
        Cmp::Lt => FloatCC::LessThan,
        Cmp::Le => FloatCC::LessThanOrEqual,
        Cmp::Gt => FloatCC::GreaterThan,
        Cmp::Ge => FloatCC::GreaterThanOrEqual,
    }
}

impl Machine for Emit<'_, '_> {
    type W = Value;

    fn konst(&mut self, bits: u64) -> Value {
        self.word(|m| m.b.ins().iconst(types::I64, bits as i64))
    }
    fn bits(&mut self, _w: Value) -> u64 {
        self.needs_concrete()
    }
    fn slot_address<F: StackFrame>(&mut self, _f: &mut F, i: usize) -> Value {
        let base = self.base;
        self.word(|m| m.b.ins().iadd_imm_s(base, 8 * i as i64))
    }
    unsafe fn call(
        &mut self,
        _func: crate::ir::ResidualFn,
        _ctx: *mut u8,
        _args: &[Value],
        _effects: crate::ir::Effects,
    ) -> Value {
        // Tier 1 leaves residual work to the handler's concrete entry.
        self.needs_concrete()
    }
    fn promote(&mut self, _w: Value) -> u64 {
        self.needs_concrete()
    }

    fn slot<F: StackFrame>(&mut self, _f: &mut F, i: usize) -> Value {
        self.load_slot(i)
    }
    fn set_slot<F: StackFrame>(&mut self, _f: &mut F, i: usize, w: Value) {
        self.store_slot(i, w)
    }
    fn push<F: StackFrame>(&mut self, _f: &mut F, w: Value) {
        self.store_slot(self.sp, w);
        self.move_sp(self.sp + 1);
    }
    fn pop<F: StackFrame>(&mut self, _f: &mut F) -> Value {
        let v = self.load_slot(self.sp - 1);
        self.move_sp(self.sp - 1);
        v
    }
    fn peek<F: StackFrame>(&mut self, _f: &mut F, depth: usize) -> Value {
        self.load_slot(self.sp - 1 - depth)
    }
    fn drop_n<F: StackFrame>(&mut self, _f: &mut F, n: usize) {
        self.move_sp(self.sp - n);
    }
    fn aux<F: StackFrame>(&mut self, _f: &mut F, i: usize) -> Value {
        let (frame, off) = (self.frame, self.layout.aux_offset + 8 * i as i32);
        self.word(|m| m.b.ins().load(types::I64, Self::flags(), frame, off))
    }
    fn set_aux<F: StackFrame>(&mut self, _f: &mut F, i: usize, w: Value) {
        self.dirty = true;
        let (frame, off) = (self.frame, self.layout.aux_offset + 8 * i as i32);
        self.effect(|m| {
            m.b.ins().store(Self::flags(), w, frame, off);
        })
    }

    unsafe fn load(&mut self, base: Value, offset: i32) -> Value {
        self.word(|m| m.b.ins().load(types::I64, Self::flags(), base, offset))
    }
    unsafe fn store(&mut self, base: Value, offset: i32, w: Value) {
        self.dirty = true;
        self.effect(|m| {
            m.b.ins().store(Self::flags(), w, base, offset);
        })
    }

    fn bin(&mut self, op: BinOp, a: Value, b: Value) -> Value {
        self.word(|m| {
            let i = m.b.ins();
            match op {
                BinOp::Add => i.iadd(a, b),
                BinOp::Sub => i.isub(a, b),
                BinOp::And => i.band(a, b),
                BinOp::Or => i.bor(a, b),
                BinOp::Xor => i.bxor(a, b),
                BinOp::Shl => i.ishl(a, b),
                BinOp::Sar => i.sshr(a, b),
                BinOp::Shr => i.ushr(a, b),
            }
        })
    }
    fn add_ovf(&mut self, a: Value, b: Value) -> Option<Value> {
        self.checked(|m| m.b.ins().sadd_overflow(a, b))
    }
    fn sub_ovf(&mut self, a: Value, b: Value) -> Option<Value> {
        self.checked(|m| m.b.ins().ssub_overflow(a, b))
    }
    fn mul_ovf(&mut self, a: Value, b: Value) -> Option<Value> {
        self.checked(|m| m.b.ins().smul_overflow(a, b))
    }
    fn fbin(&mut self, op: FBinOp, a: Value, b: Value) -> Value {
        self.word(|m| {
            let flags = MemFlagsData::new();
            let x = m.b.ins().bitcast(types::F64, flags, a);
            let y = m.b.ins().bitcast(types::F64, flags, b);
            let r = match op {
                FBinOp::Add => m.b.ins().fadd(x, y),
                FBinOp::Sub => m.b.ins().fsub(x, y),
                FBinOp::Mul => m.b.ins().fmul(x, y),
                FBinOp::Div => m.b.ins().fdiv(x, y),
            };
            m.b.ins().bitcast(types::I64, flags, r)
        })
    }

    fn test_bits(&mut self, w: Value, mask: u64, expect: u64) -> bool {
        self.decide(|m| {
            let t = m.b.ins().band_imm_u(w, mask as i64);
            m.b.ins().icmp_imm_u(IntCC::Equal, t, expect as i64)
        })
    }
    fn cmp(&mut self, c: Cmp, a: Value, b: Value) -> bool {
        let cc = int_cc(c);
        self.decide(|m| m.b.ins().icmp(cc, a, b))
    }
    fn flag(&mut self, c: Cmp, a: Value, b: Value) -> Value {
        let cc = int_cc(c);
        self.word(|m| {
            let f = m.b.ins().icmp(cc, a, b);
            m.b.ins().uextend(types::I64, f)
        })
    }
    fn fcmp(&mut self, c: Cmp, a: Value, b: Value) -> bool {
        let cc = float_cc(c);
        self.decide(|m| {
            let flags = MemFlagsData::new();
            let x = m.b.ins().bitcast(types::F64, flags, a);
            let y = m.b.ins().bitcast(types::F64, flags, b);
            m.b.ins().fcmp(cc, x, y)
        })
    }
}
