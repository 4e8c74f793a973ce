//! [`Emit`]: the machine that turns a handler into native code instead of running it.
//!
//! Tier 1 runs the bodies of handlers that make no decision on runtime values (stack,
//! slot and context moves, constants) with this machine at compile time: every word
//! operation becomes the Cranelift instruction that performs it, so the handler is
//! inlined into the compiled method rather than called. This is partial evaluation of
//! the one interpreter definition, restricted to straight-line handlers.
//!
//! A handler that reaches a decision (a tag test, a comparison, an overflow check) or
//! reads a concrete value cannot be compiled this way; the machine panics, and the
//! client's op table must lower such handlers to calls. The client's tests compile
//! every instruction kind, so a wrong table entry fails there, not in production.

use crate::machine::{BinOp, Cmp, FBinOp, Machine, StackFrame};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};
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

/// Emits the code of a handler into the function being built.
///
/// The stack pointer is known at compile time (`sp`), so pushes and pops become loads
/// and stores at constant offsets from slot 0 (`base`, loaded once per method); the
/// frame's stack pointer is still written after each change, so the frame stays exact
/// for the calls that follow.
pub struct Emit<'e, 'f> {
    pub b: &'e mut FunctionBuilder<'f>,
    /// The frame pointer of the compiled method.
    pub frame: Value,
    /// The frame's slot 0 pointer.
    pub base: Value,
    /// The operand-stack pointer (slot index) at this point of the handler.
    pub sp: usize,
    pub layout: FrameLayout,
}

impl Emit<'_, '_> {
    fn flags() -> MemFlagsData {
        MemFlagsData::trusted()
    }
    fn load_slot(&mut self, i: usize) -> Value {
        self.b
            .ins()
            .load(types::I64, Self::flags(), self.base, (8 * i) as i32)
    }
    fn store_slot(&mut self, i: usize, w: Value) {
        self.b
            .ins()
            .store(Self::flags(), w, self.base, (8 * i) as i32);
    }
    /// Moves the stack pointer and records it in the frame.
    fn move_sp(&mut self, sp: usize) {
        self.sp = sp;
        let v = self.b.ins().iconst(types::I64, sp as i64);
        self.b
            .ins()
            .store(Self::flags(), v, self.frame, self.layout.sp_offset);
    }
    fn decision(&self) -> ! {
        panic!(
            "tier 1 tried to inline a handler that decides on a runtime value; lower it to a call"
        )
    }
}

impl Machine for Emit<'_, '_> {
    type W = Value;

    fn konst(&mut self, bits: u64) -> Value {
        self.b.ins().iconst(types::I64, bits as i64)
    }
    fn bits(&self, _w: Value) -> u64 {
        self.decision()
    }
    fn promote(&mut self, _w: Value) -> u64 {
        self.decision()
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
        let off = self.layout.aux_offset + 8 * i as i32;
        self.b
            .ins()
            .load(types::I64, Self::flags(), self.frame, off)
    }
    fn set_aux<F: StackFrame>(&mut self, _f: &mut F, i: usize, w: Value) {
        let off = self.layout.aux_offset + 8 * i as i32;
        self.b.ins().store(Self::flags(), w, self.frame, off);
    }

    unsafe fn load(&mut self, base: Value, offset: i32) -> Value {
        self.b.ins().load(types::I64, Self::flags(), base, offset)
    }
    unsafe fn store(&mut self, base: Value, offset: i32, w: Value) {
        self.b.ins().store(Self::flags(), w, base, offset);
    }

    fn bin(&mut self, op: BinOp, a: Value, b: Value) -> Value {
        let i = self.b.ins();
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
    }
    fn add_ovf(&mut self, _a: Value, _b: Value) -> Option<Value> {
        self.decision()
    }
    fn sub_ovf(&mut self, _a: Value, _b: Value) -> Option<Value> {
        self.decision()
    }
    fn mul_ovf(&mut self, _a: Value, _b: Value) -> Option<Value> {
        self.decision()
    }
    fn fbin(&mut self, op: FBinOp, a: Value, b: Value) -> Value {
        let flags = cranelift_codegen::ir::MemFlagsData::new();
        let x = self.b.ins().bitcast(types::F64, flags, a);
        let y = self.b.ins().bitcast(types::F64, flags, b);
        let r = match op {
            FBinOp::Add => self.b.ins().fadd(x, y),
            FBinOp::Sub => self.b.ins().fsub(x, y),
            FBinOp::Mul => self.b.ins().fmul(x, y),
            FBinOp::Div => self.b.ins().fdiv(x, y),
        };
        self.b.ins().bitcast(types::I64, flags, r)
    }

    fn test_bits(&mut self, _w: Value, _mask: u64, _expect: u64) -> bool {
        self.decision()
    }
    fn cmp(&mut self, _c: Cmp, _a: Value, _b: Value) -> bool {
        self.decision()
    }
    fn fcmp(&mut self, _c: Cmp, _a: Value, _b: Value) -> bool {
        self.decision()
    }
}
