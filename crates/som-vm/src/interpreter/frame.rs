//! [`Frame`]: one activation of a method or block. The frame header lives on the Rust
//! stack; its slots (self, arguments, locals, operand stack) are a window of the VM's
//! value stack, starting where the caller pushed the receiver, so arguments are passed
//! in place. Frames link to their caller for backtraces.

use crate::object::Method;
use crate::value::Value;
use metajit::StackFrame;

#[repr(C)]
pub struct Frame {
    /// Slot 0 (self) in the value stack.
    pub base: *mut Value,
    /// Index (from `base`) of the first free operand-stack slot.
    pub sp: usize,
    /// Index of the next instruction.
    pub pc: u32,
    pub method: *mut Method,
    /// This activation's context for captured variables, or `Value::EMPTY`.
    pub ctx: Value,
    /// The context of the lexically enclosing activation (blocks), or `Value::EMPTY`.
    pub outer: Value,
    /// The block being run (blocks), or `Value::EMPTY`.
    pub closure: Value,
    /// The calling activation, or null at the bottom.
    pub parent: *const Frame,
}

impl Frame {
    /// A frame that belongs to no activation (only for passing to code that ignores it).
    pub fn detached() -> Frame {
        Frame {
            base: std::ptr::null_mut(),
            sp: 0,
            pc: 0,
            method: std::ptr::null_mut(),
            ctx: Value::EMPTY,
            outer: Value::EMPTY,
            closure: Value::EMPTY,
            parent: std::ptr::null(),
        }
    }

    /// The receiver and the `argc` arguments on top of the operand stack.
    #[inline(always)]
    pub fn args(&mut self, argc: usize) -> &mut [Value] {
        // SAFETY: the caller guarantees `argc + 1` values are on the operand stack.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(self.sp - argc - 1), argc + 1) }
    }

    #[inline(always)]
    pub fn receiver(&self) -> Value {
        // SAFETY: slot 0 always holds self.
        unsafe { *self.base }
    }

    /// Address just past the top of the operand stack (where callees start).
    #[inline(always)]
    pub fn top(&self) -> *mut Value {
        // SAFETY: sp is within the frame's window of the value stack.
        unsafe { self.base.add(self.sp) }
    }

    #[inline(always)]
    pub fn push(&mut self, v: Value) {
        // SAFETY: the frame was sized for its maximum stack depth (and primitives that
        // push more check the value stack's capacity first).
        unsafe { *self.base.add(self.sp) = v };
        self.sp += 1;
    }

    #[inline(always)]
    pub fn pop_n(&mut self, n: usize) {
        self.sp -= n;
    }
}

impl StackFrame for Frame {
    #[inline(always)]
    fn slot_base(&mut self) -> *mut u64 {
        self.base as *mut u64
    }
    #[inline(always)]
    fn sp(&self) -> usize {
        self.sp
    }
    #[inline(always)]
    fn set_sp(&mut self, sp: usize) {
        self.sp = sp
    }
    #[inline(always)]
    fn aux_base(&mut self) -> *mut u64 {
        &mut self.ctx as *mut Value as *mut u64
    }
}

/// Auxiliary word: the activation's own context.
pub const AUX_CTX: usize = 0;
/// Auxiliary word: the enclosing context.
pub const AUX_OUTER: usize = 1;
/// Auxiliary word: the running block.
pub const AUX_CLOSURE: usize = 2;
/// How many auxiliary words a frame has.
pub const FRAME_AUX: usize = 3;
