//! [`Machine`]: the vocabulary an interpreter definition uses to touch runtime values.
//!
//! Handlers read their frame (slots and operand stack), combine 64-bit words, and make
//! every decision on a runtime value through a method here that answers `bool`. The
//! concrete machine answers by computing; the recorder will also append a guard to the
//! trace; so nothing a handler decides about runtime data escapes the JIT's view.
//! Decisions on green data (the bytecode, literals, the method) are plain Rust.

/// A frame as the framework sees it: an array of 64-bit slots whose upper part is an
/// operand stack with a stack pointer (an index into the slots).
pub trait StackFrame {
    /// Address of slot 0.
    fn slot_base(&mut self) -> *mut u64;
    /// Index of the first free operand-stack slot.
    fn sp(&self) -> usize;
    fn set_sp(&mut self, sp: usize);
    /// Address of the frame's auxiliary words: per-activation state that is not a slot
    /// (for SOM: the activation's context, the enclosing context, the running block).
    fn aux_base(&mut self) -> *mut u64;
}

/// Word-level binary operations (wrapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    And,
    Or,
    Xor,
    /// Shift left by the second operand (taken modulo 64).
    Shl,
    /// Arithmetic shift right.
    Sar,
    /// Logical shift right.
    Shr,
}

/// Float operations on words holding IEEE-754 bit patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FBinOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// Comparisons: signed for integers, IEEE (false on NaN) for floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinOp {
    /// Applies the operation to two words (shift counts modulo 64, as machines
    /// compute them).
    #[inline(always)]
    pub fn eval(self, a: u64, b: u64) -> u64 {
        match self {
            BinOp::Add => a.wrapping_add(b),
            BinOp::Sub => a.wrapping_sub(b),
            BinOp::And => a & b,
            BinOp::Or => a | b,
            BinOp::Xor => a ^ b,
            BinOp::Shl => a.wrapping_shl(b as u32),
            BinOp::Sar => ((a as i64).wrapping_shr(b as u32)) as u64,
            BinOp::Shr => a.wrapping_shr(b as u32),
        }
    }
}

impl FBinOp {
    /// Applies the operation to two IEEE doubles given by their bits.
    #[inline(always)]
    pub fn eval(self, a: u64, b: u64) -> u64 {
        let (x, y) = (f64::from_bits(a), f64::from_bits(b));
        let r = match self {
            FBinOp::Add => x + y,
            FBinOp::Sub => x - y,
            FBinOp::Mul => x * y,
            FBinOp::Div => x / y,
        };
        r.to_bits()
    }
}

impl Cmp {
    /// Applies the comparison (IEEE semantics for floats: false on NaN except `Ne`).
    #[inline(always)]
    pub fn eval<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
}

/// The operations an interpreter definition may perform on runtime values.
///
/// `W` is a runtime word. Methods that answer `bool` are *decisions*: a tracing machine
/// guards on the answer. Methods that answer `Option` decide whether an operation
/// succeeded (no overflow) and guard likewise.
pub trait Machine {
    type W: Copy;
    /// True for engines that record traces (the interpreter definition may run
    /// residual work differently for them, never differently in meaning).
    const RECORDS: bool = false;

    /// A green constant as a word.
    fn konst(&mut self, bits: u64) -> Self::W;
    /// The concrete bits of a word. Engines that run handlers know them; using them
    /// for a decision bypasses the JIT, so handlers use it only to call into the runtime
    /// (residual work), never to branch.
    fn bits(&mut self, w: Self::W) -> u64;
    /// Specialise on the current value (`promote`): guard that `w` equals what it is
    /// now and answer that value as a green constant.
    fn promote(&mut self, w: Self::W) -> u64;
    /// How many activations the machine has inlined into the one it started in
    /// (0 for the interpreter, which inlines none): the frames a residual call made
    /// now has above the compiled code's own.
    fn inlined_frames(&self) -> usize {
        0
    }

    // ---- events ------------------------------------------------------------------
    /// The interpreter is about to run the instruction at `pc` of the activation `f`
    /// (guards resume there). Nothing to do for engines that do not record.
    #[inline(always)]
    fn instruction<F: StackFrame>(&mut self, _f: &mut F, _pc: u32) {}
    /// An activation `f` of code `code` begins, entered as `entry` (the client's
    /// meaning), with `naux` auxiliary words, which the client sets through the machine.
    #[inline(always)]
    fn enter_frame<F: StackFrame>(&mut self, _f: &mut F, _code: u64, _entry: u64, _naux: usize) {}
    /// The innermost activation ends (returns, or is left by an unwind).
    #[inline(always)]
    fn leave_frame(&mut self) {}
    /// `f` is the rebuilt activation number `depth` (0: the root) of the snapshot a
    /// bridge is being recorded from.
    #[inline(always)]
    fn attach_frame<F: StackFrame>(&mut self, _f: &mut F, _depth: usize) {}
    /// May a trace inline an activation of code `code` here? A recording engine
    /// says no for recursion and at its depth limit; the interpreter then calls it
    /// as residual work.
    #[inline(always)]
    fn may_inline(&mut self, _code: u64) -> bool {
        true
    }
    /// The interpreter is about to do something a trace cannot follow (a recording
    /// engine stops recording, and goes on executing).
    #[inline(always)]
    fn cannot_trace(&mut self, _why: crate::record::AbortReason) {}

    // ---- frame -------------------------------------------------------------------
    fn slot<F: StackFrame>(&mut self, f: &mut F, i: usize) -> Self::W;
    fn set_slot<F: StackFrame>(&mut self, f: &mut F, i: usize, w: Self::W);
    fn push<F: StackFrame>(&mut self, f: &mut F, w: Self::W);
    fn pop<F: StackFrame>(&mut self, f: &mut F) -> Self::W;
    /// The word `depth` below the top (0 is the top).
    fn peek<F: StackFrame>(&mut self, f: &mut F, depth: usize) -> Self::W;
    /// Drops `n` words from the operand stack.
    fn drop_n<F: StackFrame>(&mut self, f: &mut F, n: usize);
    /// Auxiliary word `i` of the frame.
    fn aux<F: StackFrame>(&mut self, f: &mut F, i: usize) -> Self::W;
    fn set_aux<F: StackFrame>(&mut self, f: &mut F, i: usize, w: Self::W);

    // ---- memory ------------------------------------------------------------------
    /// The word at byte offset `offset` from the address `base`.
    ///
    /// # Safety
    /// `base + offset` must be a valid, aligned address of a live word.
    unsafe fn load(&mut self, base: Self::W, offset: i32) -> Self::W;
    /// # Safety
    /// As [`Machine::load`], and the word must be writable.
    unsafe fn store(&mut self, base: Self::W, offset: i32, w: Self::W);
    /// As [`Machine::load`], of a word that never changes once the object exists (an
    /// object's class, an array's length), so a trace may reuse it.
    ///
    /// # Safety
    /// As [`Machine::load`].
    #[inline(always)]
    unsafe fn load_immutable(&mut self, base: Self::W, offset: i32) -> Self::W {
        self.load(base, offset)
    }

    /// The address of slot `i` of `f`, for residual work that reads the frame in
    /// memory (see [`Machine::materialise`]).
    fn slot_address<F: StackFrame>(&mut self, f: &mut F, i: usize) -> Self::W;
    /// Slots `from..to` of `f` must hold their values in memory (a residual call
    /// reads them there). Nothing to do for engines whose slots always are.
    #[inline(always)]
    fn materialise<F: StackFrame>(&mut self, _f: &mut F, _from: usize, _to: usize) {}

    // ---- residual work -------------------------------------------------------------
    /// Calls `func(ctx, args...)` (unused arguments are 0) and answers its result: work
    /// a trace does not look inside (`dont_look_inside`), with what it may do declared
    /// in `effects`.
    ///
    /// # Safety
    /// `func` must be safe to call with `ctx` and these arguments.
    unsafe fn call(
        &mut self,
        func: crate::ir::ResidualFn,
        ctx: *mut u8,
        args: &[Self::W],
        effects: crate::ir::Effects,
    ) -> Self::W;
    /// As [`Machine::call`], for a function that answers 0 when it fails (having left
    /// the reason in the runtime): `None` then. A trace leaves when such a call fails,
    /// resuming the interpreter at the instruction that made it, with the failure
    /// pending in the runtime; the call is not made again.
    ///
    /// # Safety
    /// As [`Machine::call`].
    #[inline(always)]
    unsafe fn call_checked(
        &mut self,
        func: crate::ir::ResidualFn,
        ctx: *mut u8,
        args: &[Self::W],
        effects: crate::ir::Effects,
    ) -> Option<Self::W> {
        let r = self.call(func, ctx, args, effects);
        let zero = self.konst(0);
        if self.cmp(Cmp::Eq, r, zero) {
            None
        } else {
            Some(r)
        }
    }

    /// As [`Machine::call`], for a function that only allocates a new object and
    /// answers its (8-byte-aligned) address: at each `(byte offset, value)` that
    /// `fields` lists it writes that value (the client lists the words a trace may
    /// read; others it never reads without passing the object on). A tracing
    /// machine records an allocation the optimiser may remove (`ir::Op::Alloc`);
    /// other machines call `func` and never build the list.
    ///
    /// # Safety
    /// As [`Machine::call`]; `fields` must answer what `func` writes.
    #[inline(always)]
    unsafe fn allocate(
        &mut self,
        func: crate::ir::ResidualFn,
        ctx: *mut u8,
        args: &[Self::W],
        _fields: impl FnOnce(&mut Self) -> Vec<(i32, Self::W)>,
    ) -> Self::W
    where
        Self: Sized,
    {
        self.call(func, ctx, args, crate::ir::Effects::ALLOCATES)
    }

    // ---- arithmetic --------------------------------------------------------------
    fn bin(&mut self, op: BinOp, a: Self::W, b: Self::W) -> Self::W;
    /// Signed addition; `None` on overflow (a decision).
    fn add_ovf(&mut self, a: Self::W, b: Self::W) -> Option<Self::W>;
    /// Signed subtraction; `None` on overflow (a decision).
    fn sub_ovf(&mut self, a: Self::W, b: Self::W) -> Option<Self::W>;
    /// Signed multiplication; `None` on overflow (a decision).
    fn mul_ovf(&mut self, a: Self::W, b: Self::W) -> Option<Self::W>;
    fn fbin(&mut self, op: FBinOp, a: Self::W, b: Self::W) -> Self::W;
    /// 1 if the signed comparison holds, else 0: a value, not a decision (for
    /// branch-free bit manipulation, such as decoding a packed float).
    fn flag(&mut self, c: Cmp, a: Self::W, b: Self::W) -> Self::W;

    // ---- decisions ---------------------------------------------------------------
    /// Is `w & mask == expect`? (tag tests)
    fn test_bits(&mut self, w: Self::W, mask: u64, expect: u64) -> bool;
    /// Signed integer comparison.
    fn cmp(&mut self, c: Cmp, a: Self::W, b: Self::W) -> bool;
    /// Float comparison of IEEE bit patterns.
    fn fcmp(&mut self, c: Cmp, a: Self::W, b: Self::W) -> bool;
}
