//! The op table: for every bytecode, which handler runs it and how tier 1 lowers it.
//! Each handler call is written once, here; the `ops!` macro turns the table into
//!
//! * [`step`], generic over the machine, which the interpreter loop calls;
//! * one `extern "C"` concrete entry per bytecode (what tier-1 slow paths and calls
//!   run), which runs the handler with the `Concrete` machine and carries out its step;
//! * [`lowering`], which tells the shallow compiler what to emit for an instruction.
//!
//! The lowering column says how each handler continues: `inline` (decision-free,
//! always compiled into the method), `pure` (only continues), `exits` (may send or
//! fail), `branch`, `ret`, and `jump`/`backedge` (native, no handler). Tier 1 compiles
//! `pure`, `exits`, `branch` and `ret` handlers into the method too (running them with
//! the code-emitting machine, slow paths calling the entry), unless specialisation is
//! off; then it calls their entries.

use crate::bytecode::{Code, Op};
use crate::interpreter::dispatch::{perform_exit, ExitOutcome};
use crate::interpreter::frame::Frame;
use crate::interpreter::handlers::{self as h, Exit, SomStep};
use crate::universe::Vm;
use crate::unwind::VmResult;
use crate::value::Value;
use metajit::emit::{Emit, PathEnd};
use metajit::shallow::{status, EntryFn, Flow, Lowering};
use metajit::{Concrete, Machine, Step};

/// Carries out a step taken by a concrete entry and answers tier 1's status (inlined
/// into each entry, so an entry whose handler only continues pays nothing for it).
#[inline(always)]
fn finish(vm: &mut Vm, code: &Code, f: &mut Frame, step: SomStep<Concrete>) -> u64 {
    match step {
        Step::Next => status::NEXT,
        Step::CondJump { taken, .. } => taken as u64,
        // Lowered to native jumps; their entries are never called.
        Step::Jump(_) | Step::BackEdge(_) => status::TAKEN,
        Step::Return(v) => {
            vm.tier1_result = Value::from_bits(v);
            status::RETURN
        }
        Step::Exit(exit) => {
            let r = perform_exit(&mut Concrete, vm, code, f, exit);
            exit_status(vm, r)
        }
    }
}

/// Tier 1's status for the outcome of an exit.
pub fn exit_status(vm: &mut Vm, r: VmResult<ExitOutcome>) -> u64 {
    match r {
        Ok(ExitOutcome::Continue) => status::NEXT,
        Ok(ExitOutcome::Restarted) => status::RESTART,
        Ok(ExitOutcome::Returned(v)) => {
            vm.tier1_result = v;
            status::RETURN
        }
        Err(u) => {
            vm.pending_unwind = Some(u);
            status::UNWIND
        }
    }
}

macro_rules! lower {
    (inline, $entry:ident, $code:ident, $instr:ident, $op:ident, $pc:ident, $spec:ident) => {
        handler_lowering($entry, $code, $instr, $pc, true, Flow::Next, false)
    };
    (pure, $entry:ident, $code:ident, $instr:ident, $op:ident, $pc:ident, $spec:ident) => {
        handler_lowering($entry, $code, $instr, $pc, $spec, Flow::Next, false)
    };
    (exits, $entry:ident, $code:ident, $instr:ident, $op:ident, $pc:ident, $spec:ident) => {
        handler_lowering($entry, $code, $instr, $pc, $spec, Flow::Next, true)
    };
    (ret, $entry:ident, $code:ident, $instr:ident, $op:ident, $pc:ident, $spec:ident) => {
        handler_lowering($entry, $code, $instr, $pc, $spec, Flow::Return, true)
    };
    (branch, $entry:ident, $code:ident, $instr:ident, $op:ident, $pc:ident, $spec:ident) => {
        handler_lowering(
            $entry,
            $code,
            $instr,
            $pc,
            $spec,
            Flow::Branch(branch_target($op)),
            true,
        )
    };
    (jump, $entry:ident, $code:ident, $instr:ident, $op:ident, $pc:ident, $spec:ident) => {
        Lowering::Jump {
            target: branch_target($op),
        }
    };
    (backedge, $entry:ident, $code:ident, $instr:ident, $op:ident, $pc:ident, $spec:ident) => {{
        let Op::BackJump { target, counter } = *$op else {
            unreachable!()
        };
        // Threaded mode only counts; the two-level mode will set the switch threshold.
        Lowering::BackEdge {
            target,
            counter: $code.backedges[counter as usize].as_ptr(),
            switch_at: None,
        }
    }};
}

macro_rules! ops {
    ($m:ident, $vm:ident, $code:ident, $f:ident;
     $( $entry:ident [$kind:ident] $pat:pat => $call:expr ; )*) => {
        /// Runs the handler of `op` on machine `m`.
        #[inline(always)]
        pub fn step<M: Machine>(
            $m: &mut M,
            $vm: &mut Vm,
            $code: &Code,
            $f: &mut Frame,
            op: Op,
        ) -> SomStep<M> {
            match op {
                $( $pat => $call, )*
            }
        }

        $(
            /// Concrete entry for tier-1 code.
            ///
            /// # Safety
            /// `vm`, `f`, `code` are the running VM, the activation and its code;
            /// `instr` points to an instruction of `code` of this entry's kind.
            // Entries of `jump` and `backedge` rows exist for uniformity; tier 1 emits
            // native jumps for them instead of calls.
            #[allow(unused_variables, dead_code)]
            unsafe extern "C" fn $entry(
                vm: *mut u8,
                f: *mut u8,
                code: *const u8,
                instr: *const u8,
            ) -> u64 {
                let ($vm, $f, $code) =
                    (&mut *(vm as *mut Vm), &mut *(f as *mut Frame), &*(code as *const Code));
                let $m = &mut Concrete;
                let step = match *(instr as *const Op) {
                    $pat => $call,
                    _ => unreachable!("instruction lowered to the wrong entry"),
                };
                finish($vm, $code, $f, step)
            }
        )*

        /// What the shallow compiler emits for instruction `pc` of `code`; with
        /// `specialise` off, handlers that decide are called instead of compiled in.
        #[allow(unused_variables)]
        pub fn lowering(code: &Code, pc: usize, specialise: bool) -> Lowering {
            let op = &code.ops[pc];
            let instr = op as *const Op as *const u8;
            match op {
                $( $pat => lower!($kind, $entry, code, instr, op, pc, specialise), )*
            }
        }
    };
}

/// How a handler's instruction is lowered: compiled into the method (see
/// `metajit::emit`) when `specialise`, else a call of its entry that continues as `flow`
/// says (`may_exit`: a status other than "next" can leave the straight line).
fn handler_lowering(
    entry: EntryFn,
    code: &Code,
    instr: *const u8,
    pc: usize,
    specialise: bool,
    flow: Flow,
    may_exit: bool,
) -> Lowering {
    if specialise {
        return Lowering::Specialised {
            emit: specialise_handler,
            entry,
            instr,
            sp: code.sp_before(pc),
            flow,
        };
    }
    match flow {
        Flow::Next => Lowering::Call {
            entry,
            instr,
            may_exit,
        },
        Flow::Branch(target) => Lowering::Branch {
            entry,
            instr,
            target,
        },
        Flow::Return => Lowering::Return { entry, instr },
    }
}

/// Emits one path of an instruction's handler: runs it with the code-emitting machine
/// (`metajit::emit::Emit`) at compile time and says how the path ends.
fn specialise_handler(m: &mut Emit, ctx: *mut u8, code: *const u8, instr: *const u8) -> PathEnd {
    // SAFETY: tier 1 passes the VM, the code being compiled and one of its instructions.
    let (vm, code, op) = unsafe {
        (
            &mut *(ctx as *mut Vm),
            &*(code as *const Code),
            *(instr as *const Op),
        )
    };
    // The handler's frame parameter is only passed through to the machine, which keeps
    // the real frame in the generated code.
    let mut unused = Frame::detached();
    match step(m, vm, code, &mut unused, op) {
        Step::Next => PathEnd::Next,
        Step::CondJump { taken, .. } => PathEnd::Branch { taken },
        Step::Return(v) => PathEnd::Return(v),
        // Sends, errors and non-local returns happen in the concrete entry.
        Step::Exit(_) | Step::Jump(_) | Step::BackEdge(_) => PathEnd::Slow,
    }
}

/// The target of a jump-like instruction.
fn branch_target(op: &Op) -> u32 {
    match *op {
        Op::Jump(t) | Op::BackJump { target: t, .. } => t,
        Op::JumpIf { target, .. } | Op::JumpIfNil { target, .. } => target,
        Op::ForTest { exit, .. } => exit,
        _ => unreachable!("not a jump: {op:?}"),
    }
}

ops! { m, vm, code, f;
    e_dup [inline] Op::Dup => h::dup(m, f);
    e_pop [inline] Op::Pop => h::pop(m, f);
    e_push_slot [inline] Op::PushSlot(n) => h::push_slot(m, f, n);
    e_store_slot [inline] Op::StoreSlot(n) => h::store_slot(m, f, n);
    e_push_ctx [inline] Op::PushCtx { level, idx } => h::push_ctx(m, f, level, idx);
    e_store_ctx [inline] Op::StoreCtx { level, idx } => h::store_ctx(m, f, level, idx);
    e_push_field [pure] Op::PushField(n) => h::push_field(m, vm, f, n);
    e_store_field [pure] Op::StoreField(n) => h::store_field(m, vm, f, n);
    e_push_literal [inline] Op::PushLiteral(n) => h::push_literal(m, code, f, n);
    e_push_int [inline] Op::PushInt(i) => h::push_const(m, f, Value::int(i as i64));
    e_push_nil [inline] Op::PushNil => h::push_const(m, f, vm.nil);
    e_push_true [inline] Op::PushTrue => h::push_const(m, f, vm.true_);
    e_push_false [inline] Op::PushFalse => h::push_const(m, f, vm.false_);
    e_push_global [exits] Op::PushGlobal(cell) => h::push_global(m, vm, f, cell);
    e_push_block [pure] Op::PushBlock(n) => h::push_block(m, vm, code, f, n);
    e_send [exits] Op::Send(site) | Op::SuperSend(site) => Step::Exit(Exit::Send(site));
    e_add [exits] Op::Add(site) => h::add(m, vm, f, site);
    e_sub [exits] Op::Sub(site) => h::sub(m, vm, f, site);
    e_mul [exits] Op::Mul(site) => h::mul(m, vm, f, site);
    e_lt [exits] Op::Lt(site) => h::lt(m, vm, f, site);
    e_gt [exits] Op::Gt(site) => h::gt(m, vm, f, site);
    e_le [exits] Op::Le(site) => h::le(m, vm, f, site);
    e_ge [exits] Op::Ge(site) => h::ge(m, vm, f, site);
    e_eq [exits] Op::Eq(site) => h::eq(m, vm, f, site);
    e_at [exits] Op::At(site) => h::at(m, vm, f, site);
    e_at_put [exits] Op::AtPut(site) => h::at_put(m, vm, f, site);
    e_return_local [ret] Op::ReturnLocal => h::return_local(m, f);
    e_return_self [ret] Op::ReturnSelf => h::return_self(m, f);
    e_return_non_local [ret] Op::ReturnNonLocal(level) => Step::Exit(Exit::NonLocalReturn(level));
    e_jump [jump] Op::Jump(t) => h::jump(m, t);
    e_jump_if [branch] Op::JumpIf { target, when, mode } => h::jump_if(m, vm, f, target, when, mode);
    e_jump_if_nil [branch] Op::JumpIfNil { target, when } => h::jump_if_nil(m, vm, f, target, when);
    e_back_jump [backedge] Op::BackJump { target, counter } => h::back_jump(m, code, target, counter);
    e_for_test [branch] Op::ForTest { counter, limit, exit, down } =>
        h::for_test(m, vm, f, counter, limit, exit, down);
    e_for_step [pure] Op::ForStep { counter, down } => h::for_step(m, vm, f, counter, down);
}
