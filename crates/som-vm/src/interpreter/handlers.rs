//! The interpreter definition: one handler per bytecode, written once, generic over
//! [`Machine`]. Every decision on a runtime value goes through the machine (tag tests,
//! comparisons, overflow checks), so the tracing machine can guard it; decisions on the
//! bytecode, literals and the method are plain Rust (they are green). Control flow is
//! returned as a [`Step`]; anything that needs the language runtime (sends, non-local
//! returns, errors) leaves as [`Exit`].
//!
//! Annotations (see `metajit::annotations`): `threaded` handlers are called from tier-1
//! code and traced into; `control` handlers become native branches; `residual` ones do
//! their work in the runtime (allocation, global lookup) and are called, never traced.

use crate::bytecode::{Code, JumpMode};
use crate::interpreter::frame::{Frame, AUX_CTX, AUX_OUTER};
use crate::object::{Block, Kind};
use crate::primitives::numbers;
use crate::universe::Vm;
use crate::value::{Value, DOUBLE_BIAS, DOUBLE_ROTATION};
use metajit::ir::Effects;
use metajit::{interpreter_definition, BinOp, Cmp, FBinOp, Machine, Step};

/// What a handler hands to the language runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// A send through send site `n` (receiver and arguments on the stack).
    Send(u16),
    /// The global cell `n` is unbound: send `unknownGlobal:` to self.
    UnknownGlobal(u32),
    /// `^` in a block `level` activations deep; the value is on the stack.
    NonLocalReturn(u8),
    /// An inlined conditional found a non-Boolean on the stack.
    NotBoolean,
    /// A `to:do:` counter or limit is not a number.
    NotNumber,
}

pub type SomStep<M> = Step<<M as Machine>::W, Exit>;

// Byte offsets into heap objects, for handlers that read objects through the machine.
pub(crate) const CLASS_OFFSET: i32 = 0;
const KIND_OFFSET: i32 = 8;
const SLOTS_LEN_OFFSET: i32 = 16;
const SLOTS_ITEMS_OFFSET: i32 = 24;
pub(crate) const CONTEXT_OUTER_OFFSET: i32 =
    std::mem::offset_of!(crate::object::Context, outer) as i32;
pub(crate) const CONTEXT_SLOTS_OFFSET: i32 = std::mem::size_of::<crate::object::Context>() as i32;

/// Is `w` a small integer?
#[inline(always)]
pub fn is_int<M: Machine>(m: &mut M, w: M::W) -> bool {
    m.test_bits(w, 1, 1)
}

/// Is `w` a heap pointer whose object has layout `kind`?
#[inline(always)]
fn has_kind<M: Machine>(m: &mut M, w: M::W, kind: Kind) -> bool {
    if !m.test_bits(w, 7, 0) {
        return false;
    }
    // SAFETY: values with the pointer tag point to objects with a header.
    let word = unsafe { m.load_immutable(w, KIND_OFFSET) };
    m.test_bits(word, 0xff, kind as u64)
}

/// The IEEE bits of an immediate double, or `None` if `w` is not one: the decoding of
/// `Value::as_imm_double` in machine operations (rotate right, remove the bias; the
/// codes of ±0.0 keep only their sign), branch-free, so tier 1 compiles it inline.
#[inline(always)]
fn unbox_double<M: Machine>(m: &mut M, w: M::W) -> Option<M::W> {
    if !m.test_bits(w, 3, 2) {
        return None;
    }
    let high = bin_k(m, BinOp::Shr, w, DOUBLE_ROTATION as u64);
    let low = bin_k(m, BinOp::Shl, w, 64 - DOUBLE_ROTATION as u64);
    let rotated = m.bin(BinOp::Or, high, low);
    let bits = bin_k(m, BinOp::Sub, rotated, DOUBLE_BIAS);
    // ±0.0 (nothing above the sign): keep the sign bit only.
    let zero = m.konst(0);
    let nonzero = m.flag(Cmp::Ne, high, zero);
    let mask = m.bin(BinOp::Sub, zero, nonzero);
    let keep = bin_k(m, BinOp::Or, mask, 1 << 63);
    Some(m.bin(BinOp::And, bits, keep))
}

/// The value of the double with IEEE bits `bits`: immediate when `Value::try_imm_double`
/// packs it (encoded here in machine operations: add the bias, rotate, check the tag),
/// else ±0.0's code, else boxed by the runtime.
#[inline(always)]
fn box_double<M: Machine>(m: &mut M, vm: &mut Vm, bits: M::W) -> M::W {
    let biased = bin_k(m, BinOp::Add, bits, DOUBLE_BIAS);
    let high = bin_k(m, BinOp::Shl, biased, DOUBLE_ROTATION as u64);
    let low = bin_k(m, BinOp::Shr, biased, 64 - DOUBLE_ROTATION as u64);
    let v = m.bin(BinOp::Or, high, low);
    let zero = m.konst(0);
    if m.test_bits(v, 3, 2) {
        // The code of ±2^-255 is ±0.0's: that one is boxed.
        let payload = bin_k(m, BinOp::Shr, v, 3);
        if m.cmp(Cmp::Ne, payload, zero) {
            return v;
        }
    }
    let magnitude = bin_k(m, BinOp::Shl, bits, 1);
    if m.cmp(Cmp::Eq, magnitude, zero) {
        // ±0.0: the tag with the sign in bit 2.
        let sign = bin_k(m, BinOp::Shr, bits, 61);
        return bin_k(m, BinOp::Or, sign, 2);
    }
    let v = vm.double(f64::from_bits(m.bits(bits)));
    m.konst(v.bits())
}

/// `op` applied to `a` and the constant `k`.
#[inline(always)]
fn bin_k<M: Machine>(m: &mut M, op: BinOp, a: M::W, k: u64) -> M::W {
    let k = m.konst(k);
    m.bin(op, a, k)
}

#[inline(always)]
fn push_bool<M: Machine>(m: &mut M, vm: &Vm, f: &mut Frame, b: bool) {
    let v = m.konst(vm.boolean(b).bits());
    m.push(f, v);
}

/// The context `level` activations out (0: this activation's own).
#[inline(always)]
fn context<M: Machine>(m: &mut M, f: &mut Frame, level: u8) -> M::W {
    if level == 0 {
        return m.aux(f, AUX_CTX);
    }
    let mut c = m.aux(f, AUX_OUTER);
    for _ in 1..level {
        // SAFETY: the compiler only emits levels whose contexts exist.
        c = unsafe { m.load_immutable(c, CONTEXT_OUTER_OFFSET) };
    }
    c
}

/// Shared shape of the binary arithmetic handlers: small integers and immediate
/// doubles inline, everything else a real send.
macro_rules! arith {
    ($m:ident, $vm:ident, $f:ident, $site:ident, $int:expr, $fop:expr) => {{
        let b = $m.peek($f, 0);
        let a = $m.peek($f, 1);
        if is_int($m, a) && is_int($m, b) {
            if let Some(r) = $int($m, a, b) {
                $m.drop_n($f, 2);
                $m.push($f, r);
                return Step::Next;
            }
        } else if let (Some(x), Some(y)) = (unbox_double($m, a), unbox_double($m, b)) {
            let r = $m.fbin($fop, x, y);
            let r = box_double($m, $vm, r);
            $m.drop_n($f, 2);
            $m.push($f, r);
            return Step::Next;
        }
        Step::Exit(Exit::Send($site))
    }};
}

/// Shared shape of the comparison handlers.
macro_rules! compare {
    ($m:ident, $vm:ident, $f:ident, $site:ident, $cmp:expr) => {{
        let b = $m.peek($f, 0);
        let a = $m.peek($f, 1);
        let r = if is_int($m, a) && is_int($m, b) {
            // Tagged small integers compare like their values.
            $m.cmp($cmp, a, b)
        } else if let (Some(x), Some(y)) = (unbox_double($m, a), unbox_double($m, b)) {
            $m.fcmp($cmp, x, y)
        } else {
            return Step::Exit(Exit::Send($site));
        };
        $m.drop_n($f, 2);
        push_bool($m, $vm, $f, r);
        Step::Next
    }};
}

interpreter_definition! {
    #[threaded]
    /// Duplicates the top of the stack.
    pub fn dup<M: Machine>(m: &mut M, f: &mut Frame) -> SomStep<M> {
        let v = m.peek(f, 0);
        m.push(f, v);
        Step::Next
    }

    #[threaded]
    /// Drops the top of the stack.
    pub fn pop<M: Machine>(m: &mut M, f: &mut Frame) -> SomStep<M> {
        m.drop_n(f, 1);
        Step::Next
    }

    #[threaded]
    /// Pushes frame slot `n` (self, an argument or a local).
    pub fn push_slot<M: Machine>(m: &mut M, f: &mut Frame, n: u16) -> SomStep<M> {
        let v = m.slot(f, n as usize);
        m.push(f, v);
        Step::Next
    }

    #[threaded]
    /// Pops into frame slot `n`.
    pub fn store_slot<M: Machine>(m: &mut M, f: &mut Frame, n: u16) -> SomStep<M> {
        let v = m.pop(f);
        m.set_slot(f, n as usize, v);
        Step::Next
    }

    #[threaded]
    /// Pushes a captured variable.
    pub fn push_ctx<M: Machine>(m: &mut M, f: &mut Frame, level: u8, idx: u16) -> SomStep<M> {
        let c = context(m, f, level);
        // SAFETY: the compiler sized the context for `idx`.
        let v = unsafe { m.load(c, CONTEXT_SLOTS_OFFSET + 8 * idx as i32) };
        m.push(f, v);
        Step::Next
    }

    #[threaded]
    /// Pops into a captured variable.
    pub fn store_ctx<M: Machine>(m: &mut M, f: &mut Frame, level: u8, idx: u16) -> SomStep<M> {
        let v = m.pop(f);
        let c = context(m, f, level);
        // SAFETY: as in push_ctx.
        unsafe { m.store(c, CONTEXT_SLOTS_OFFSET + 8 * idx as i32, v) };
        Step::Next
    }

    #[threaded]
    /// Pushes field `n` of self.
    pub fn push_field<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, n: u16) -> SomStep<M> {
        let rcvr = m.slot(f, 0);
        let v = if has_kind(m, rcvr, Kind::Instance) {
            // SAFETY: the compiler checked `n` against the class's fields.
            unsafe { m.load(rcvr, SLOTS_ITEMS_OFFSET + 8 * n as i32) }
        } else {
            // A class's class-side fields (or a field of an object of another kind):
            // read by the runtime.
            let n = m.konst(n as u64);
            let vm_ptr = vm as *mut Vm as *mut u8;
            // SAFETY: `read_field_entry` gets the VM, a value and a field index.
            unsafe { m.call(read_field_entry, vm_ptr, &[rcvr, n], Effects::READS_HEAP) }
        };
        m.push(f, v);
        Step::Next
    }

    #[threaded]
    /// Pops into field `n` of self.
    pub fn store_field<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, n: u16) -> SomStep<M> {
        let v = m.pop(f);
        let rcvr = m.slot(f, 0);
        if has_kind(m, rcvr, Kind::Instance) {
            // SAFETY: as in push_field.
            unsafe { m.store(rcvr, SLOTS_ITEMS_OFFSET + 8 * n as i32, v) };
        } else {
            let n = m.konst(n as u64);
            let vm_ptr = vm as *mut Vm as *mut u8;
            // SAFETY: `write_field_entry` gets the VM, a value, a field index and a
            // value.
            unsafe { m.call(write_field_entry, vm_ptr, &[rcvr, n, v], Effects::WRITES_HEAP) };
        }
        Step::Next
    }

    #[threaded]
    /// Pushes a literal of the method (a constant).
    pub fn push_literal<M: Machine>(m: &mut M, code: &Code, f: &mut Frame, n: u16) -> SomStep<M> {
        let v = m.konst(code.literals[n as usize].bits());
        m.push(f, v);
        Step::Next
    }

    #[threaded]
    /// Pushes a constant.
    pub fn push_const<M: Machine>(m: &mut M, f: &mut Frame, v: Value) -> SomStep<M> {
        let v = m.konst(v.bits());
        m.push(f, v);
        Step::Next
    }

    #[residual]
    /// Pushes the value of a global, or asks self's `unknownGlobal:` if it is unbound.
    /// Globals are quasi-immutable: the value is a constant of the trace, which
    /// guards the globals' version (`Vm::globals_epoch`, changed by every assignment).
    pub fn push_global<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, cell: u32) -> SomStep<M> {
        let epoch = m.konst(&vm.globals_epoch as *const u64 as u64);
        // SAFETY: the epoch lives in the VM, which outlives its traces.
        let now = unsafe { m.load(epoch, 0) };
        m.promote(now);
        let v = vm.globals[cell as usize].1;
        if v.is_empty() {
            return Step::Exit(Exit::UnknownGlobal(cell));
        }
        let v = m.konst(v.bits());
        m.push(f, v);
        Step::Next
    }

    #[residual]
    /// Pushes a new block over the current context and self.
    pub fn push_block<M: Machine>(m: &mut M, vm: &mut Vm, code: &Code, f: &mut Frame, n: u16) -> SomStep<M> {
        let literal = code.literals[n as usize];
        let method = m.konst(literal.bits());
        let ctx = m.aux(f, AUX_CTX);
        let rcvr = m.slot(f, 0);
        // SAFETY: block literals are immortal block methods.
        let argc = unsafe { (*(literal.bits() as *const crate::object::Method)).num_args };
        let class = vm.classes.blocks[argc.min(2)] as u64;
        let vm_ptr = vm as *mut Vm as *mut u8;
        let fields = |m: &mut M| {
            let class = m.konst(class);
            vec![
                (CLASS_OFFSET, class),
                (std::mem::offset_of!(Block, method) as i32, method),
                (std::mem::offset_of!(Block, context) as i32, ctx),
                (std::mem::offset_of!(Block, receiver) as i32, rcvr),
            ]
        };
        // SAFETY: `block_entry` gets the VM, a block method and two values, and
        // writes the block's class and these three fields (`Vm::alloc_block`).
        let b = unsafe { m.allocate(block_entry, vm_ptr, &[method, ctx, rcvr], fields) };
        m.push(f, b);
        Step::Next
    }

    #[threaded]
    /// `+`
    pub fn add<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, site: u16) -> SomStep<M> {
        arith!(m, vm, f, site, |m: &mut M, a, b| {
            // (2x+1) + (2y+1) - 1 = 2(x+y)+1; the machine add overflows exactly when
            // the 63-bit sum does.
            let b1 = bin_k(m, BinOp::Sub, b, 1);
            m.add_ovf(a, b1)
        }, FBinOp::Add)
    }

    #[threaded]
    /// `-`
    pub fn sub<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, site: u16) -> SomStep<M> {
        arith!(m, vm, f, site, |m: &mut M, a, b| {
            let b1 = bin_k(m, BinOp::Sub, b, 1);
            m.sub_ovf(a, b1)
        }, FBinOp::Sub)
    }

    #[threaded]
    /// `*`
    pub fn mul<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, site: u16) -> SomStep<M> {
        arith!(m, vm, f, site, |m: &mut M, a, b| {
            // (2x) * y then retag: untag one side, keep the other doubled.
            let one = m.konst(1);
            let a2 = m.bin(BinOp::Sub, a, one);
            let y = m.bin(BinOp::Sar, b, one);
            let r = m.mul_ovf(a2, y)?;
            Some(m.bin(BinOp::Or, r, one))
        }, FBinOp::Mul)
    }

    #[threaded]
    /// `<`
    pub fn lt<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, site: u16) -> SomStep<M> {
        compare!(m, vm, f, site, Cmp::Lt)
    }

    #[threaded]
    /// `>`
    pub fn gt<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, site: u16) -> SomStep<M> {
        compare!(m, vm, f, site, Cmp::Gt)
    }

    #[threaded]
    /// `<=`
    pub fn le<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, site: u16) -> SomStep<M> {
        compare!(m, vm, f, site, Cmp::Le)
    }

    #[threaded]
    /// `>=`
    pub fn ge<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, site: u16) -> SomStep<M> {
        compare!(m, vm, f, site, Cmp::Ge)
    }

    #[threaded]
    /// `=`
    pub fn eq<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, site: u16) -> SomStep<M> {
        compare!(m, vm, f, site, Cmp::Eq)
    }

    #[threaded]
    /// `at:` on an Array with a small-integer index in range; else a real send.
    pub fn at<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, site: u16) -> SomStep<M> {
        let idx = m.peek(f, 0);
        let rcvr = m.peek(f, 1);
        if let Some(addr) = array_element(m, vm, rcvr, idx) {
            // SAFETY: `array_element` checked the bounds.
            let v = unsafe { m.load(addr, 0) };
            m.drop_n(f, 2);
            m.push(f, v);
            return Step::Next;
        }
        Step::Exit(Exit::Send(site))
    }

    #[threaded]
    /// `at:put:` on an Array with a small-integer index in range; answers the receiver.
    pub fn at_put<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, site: u16) -> SomStep<M> {
        let v = m.peek(f, 0);
        let idx = m.peek(f, 1);
        let rcvr = m.peek(f, 2);
        if let Some(addr) = array_element(m, vm, rcvr, idx) {
            // SAFETY: `array_element` checked the bounds.
            unsafe { m.store(addr, 0, v) };
            m.drop_n(f, 3);
            m.push(f, rcvr);
            return Step::Next;
        }
        Step::Exit(Exit::Send(site))
    }

    #[control]
    /// Returns the top of the stack from this activation.
    pub fn return_local<M: Machine>(m: &mut M, f: &mut Frame) -> SomStep<M> {
        let v = m.pop(f);
        Step::Return(v)
    }

    #[control]
    /// Returns self.
    pub fn return_self<M: Machine>(m: &mut M, f: &mut Frame) -> SomStep<M> {
        let v = m.slot(f, 0);
        Step::Return(v)
    }

    #[control]
    /// Unconditional forward jump.
    pub fn jump<M: Machine>(_m: &mut M, target: u32) -> SomStep<M> {
        Step::Jump(target)
    }

    #[control]
    /// Conditional jump on a Boolean (inlined `ifTrue:`, `and:`, `whileTrue:`...).
    pub fn jump_if<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, target: u32, when: bool, mode: JumpMode) -> SomStep<M> {
        let v = m.peek(f, 0);
        let t = m.konst(vm.true_.bits());
        let is_true = m.cmp(Cmp::Eq, v, t);
        if !is_true {
            let fl = m.konst(vm.false_.bits());
            if !m.cmp(Cmp::Eq, v, fl) {
                return Step::Exit(Exit::NotBoolean);
            }
        }
        let taken = is_true == when;
        match mode {
            JumpMode::Pop => m.drop_n(f, 1),
            JumpMode::KeepIfTaken => {
                if !taken {
                    m.drop_n(f, 1)
                }
            }
            JumpMode::NilIfTaken => {
                m.drop_n(f, 1);
                if taken {
                    let nil = m.konst(vm.nil.bits());
                    m.push(f, nil);
                }
            }
        }
        Step::CondJump { taken, target }
    }

    #[control]
    /// Conditional jump on nil-ness (inlined `ifNil:` family); the value stays.
    pub fn jump_if_nil<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, target: u32, when: bool) -> SomStep<M> {
        let v = m.peek(f, 0);
        let nil = m.konst(vm.nil.bits());
        let is_nil = m.cmp(Cmp::Eq, v, nil);
        Step::CondJump { taken: is_nil == when, target }
    }

    #[control]
    /// A loop back-edge: ticks its counter and jumps to the loop header.
    pub fn back_jump<M: Machine>(_m: &mut M, code: &Code, target: u32, counter: u16) -> SomStep<M> {
        let c = &code.backedges[counter as usize];
        c.set(c.get().wrapping_add(1));
        Step::BackEdge(target)
    }

    #[control]
    /// The `to:do:` loop test: exits when the counter passed the limit.
    pub fn for_test<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, counter: u16, limit: u16, exit: u32, down: bool) -> SomStep<M> {
        let c = m.slot(f, counter as usize);
        let l = m.slot(f, limit as usize);
        let done = if is_int(m, c) && is_int(m, l) {
            m.cmp(if down { Cmp::Lt } else { Cmp::Gt }, c, l)
        } else {
            let (cv, lv) = (Value::from_bits(m.bits(c)), Value::from_bits(m.bits(l)));
            let ord = if down { numbers::compare(vm, lv, cv) } else { numbers::compare(vm, cv, lv) };
            match ord {
                Some(o) => o == std::cmp::Ordering::Greater,
                None => return Step::Exit(Exit::NotNumber),
            }
        };
        Step::CondJump { taken: done, target: exit }
    }

    #[threaded]
    /// Steps the `to:do:` counter by one.
    pub fn for_step<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, counter: u16, down: bool) -> SomStep<M> {
        let c = m.slot(f, counter as usize);
        if is_int(m, c) {
            let two = m.konst(2);
            let r = if down { m.sub_ovf(c, two) } else { m.add_ovf(c, two) };
            if let Some(r) = r {
                m.set_slot(f, counter as usize, r);
                return Step::Next;
            }
        }
        let cv = Value::from_bits(m.bits(c));
        let r = numbers::add_int(vm, cv, if down { -1 } else { 1 });
        let r = m.konst(r.bits());
        m.set_slot(f, counter as usize, r);
        Step::Next
    }
}

/// Reads field `n` of `rcvr`, which is not an instance (the residual work of
/// `push_field`).
///
/// # Safety
/// `vm` is the running VM.
unsafe extern "C" fn read_field_entry(vm: *mut u8, rcvr: u64, n: u64, _: u64, _: u64) -> u64 {
    let vm = &*(vm as *const Vm);
    vm.read_field(Value::from_bits(rcvr), n as usize).bits()
}

/// Writes `v` into field `n` of `rcvr`, which is not an instance (the residual work
/// of `store_field`); answers 0.
///
/// # Safety
/// `vm` is the running VM.
unsafe extern "C" fn write_field_entry(vm: *mut u8, rcvr: u64, n: u64, v: u64, _: u64) -> u64 {
    let vm = &mut *(vm as *mut Vm);
    vm.write_field(Value::from_bits(rcvr), n as usize, Value::from_bits(v));
    0
}

/// Allocates a block (the residual work of `push_block`).
///
/// # Safety
/// `vm` is the running VM and `method` a block method.
unsafe extern "C" fn block_entry(vm: *mut u8, method: u64, ctx: u64, rcvr: u64, _: u64) -> u64 {
    let vm = &mut *(vm as *mut Vm);
    vm.alloc_block(
        method as *mut crate::object::Method,
        Value::from_bits(ctx),
        Value::from_bits(rcvr),
    )
    .bits()
}

/// The address of element `idx` of the Array `rcvr`, if `rcvr` is exactly an Array and
/// `idx` a small integer within bounds.
#[inline(always)]
fn array_element<M: Machine>(m: &mut M, vm: &Vm, rcvr: M::W, idx: M::W) -> Option<M::W> {
    if !is_int(m, idx) || !m.test_bits(rcvr, 7, 0) {
        return None;
    }
    // SAFETY: rcvr has the pointer tag and every object starts with its class.
    let class = unsafe { m.load_immutable(rcvr, CLASS_OFFSET) };
    let array = m.konst(vm.classes.array as u64);
    if !m.cmp(Cmp::Eq, class, array) {
        return None;
    }
    // SAFETY: instances of Array have the Slots layout.
    let len = unsafe { m.load_immutable(rcvr, SLOTS_LEN_OFFSET) };
    let one = m.konst(1);
    let i = m.bin(BinOp::Sar, idx, one);
    if m.cmp(Cmp::Lt, i, one) || m.cmp(Cmp::Gt, i, len) {
        return None;
    }
    // element i (1-based) is at items + 8*(i-1) = rcvr + 16 + 8*i.
    let off = bin_k(m, BinOp::Shl, i, 3);
    let addr = m.bin(BinOp::Add, rcvr, off);
    Some(bin_k(m, BinOp::Add, addr, SLOTS_ITEMS_OFFSET as u64 - 8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use metajit::Concrete;

    /// Doubles around every edge of the immediate encoding.
    fn samples() -> Vec<f64> {
        let mut v = vec![
            0.0,
            -0.0,
            1.0,
            -1.5,
            0.1,
            3.25e10,
            f64::MIN_POSITIVE,
            f64::MIN_POSITIVE / 4.0, // subnormal
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        // Both sides of the packable exponent range (biased 768..=1279), the wrap of
        // the bias into the sign (1792) and the top of the range.
        for biased in [
            0u64, 1, 766, 767, 768, 769, 1277, 1278, 1279, 1280, 1281, 1791, 1792, 2046,
        ] {
            for mant in [0u64, 1, (1 << 52) - 1] {
                for sign in [0u64, 1] {
                    v.push(f64::from_bits(sign << 63 | biased << 52 | mant));
                }
            }
        }
        v
    }

    #[test]
    fn machine_level_double_packing_agrees_with_the_value_encoding() {
        let mut packed = 0;
        for d in samples() {
            if let Some(v) = Value::try_imm_double(d) {
                assert_eq!(
                    unbox_double(&mut Concrete, v.bits()),
                    Some(d.to_bits()),
                    "{d:e}"
                );
                packed += 1;
            }
        }
        assert!(packed > 20, "the samples exercise the encoding");
        assert_eq!(unbox_double(&mut Concrete, Value::int(3).bits()), None);
    }

    #[test]
    fn machine_level_boxing_packs_what_fits_and_boxes_the_rest() {
        let mut vm = Vm::new(crate::universe::Options::default()).unwrap();
        for d in samples() {
            let v = Value::from_bits(box_double(&mut Concrete, &mut vm, d.to_bits()));
            match Value::try_imm_double(d) {
                Some(imm) => assert_eq!(v, imm, "{d:e}"),
                None => assert!(!v.is_imm_double(), "{d:e} must be boxed"),
            }
        }
    }
}
