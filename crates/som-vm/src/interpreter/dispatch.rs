//! The interpreter loop: runs the handlers of `handlers` with the `Concrete` machine and
//! carries out the steps they return. Sends recurse into `send`, which activates the
//! callee and comes back here with a fresh frame.

use crate::bytecode::{Code, Op};
use crate::interpreter::frame::Frame;
use crate::interpreter::handlers::{self as h, Exit};
use crate::interpreter::send;
use crate::object::{as_ref, Context};
use crate::universe::Vm;
use crate::unwind::{Unwind, VmResult};
use crate::value::Value;
use metajit::{Concrete, Step};

/// Runs the activation `f` of `code` to completion and answers its result.
pub fn execute(vm: &mut Vm, code: &Code, f: &mut Frame) -> VmResult<Value> {
    let m = &mut Concrete;
    loop {
        let op = code.ops[f.pc as usize];
        f.pc += 1;
        let step = match op {
            Op::Dup => h::dup(m, f),
            Op::Pop => h::pop(m, f),
            Op::PushSlot(n) => h::push_slot(m, f, n),
            Op::StoreSlot(n) => h::store_slot(m, f, n),
            Op::PushCtx { level, idx } => h::push_ctx(m, f, level, idx),
            Op::StoreCtx { level, idx } => h::store_ctx(m, f, level, idx),
            Op::PushField(n) => h::push_field(m, vm, f, n),
            Op::StoreField(n) => h::store_field(m, vm, f, n),
            Op::PushLiteral(n) => h::push_literal(m, code, f, n),
            Op::PushInt(i) => h::push_const(m, f, Value::int(i as i64)),
            Op::PushNil => h::push_const(m, f, vm.nil),
            Op::PushTrue => h::push_const(m, f, vm.true_),
            Op::PushFalse => h::push_const(m, f, vm.false_),
            Op::PushGlobal(cell) => h::push_global(m, vm, f, cell),
            Op::PushBlock(n) => h::push_block(m, vm, code, f, n),
            Op::Send(site) | Op::SuperSend(site) => Step::Exit(Exit::Send(site)),
            Op::Add(site) => h::add(m, vm, f, site),
            Op::Sub(site) => h::sub(m, vm, f, site),
            Op::Mul(site) => h::mul(m, vm, f, site),
            Op::Lt(site) => h::lt(m, vm, f, site),
            Op::Gt(site) => h::gt(m, vm, f, site),
            Op::Le(site) => h::le(m, vm, f, site),
            Op::Ge(site) => h::ge(m, vm, f, site),
            Op::Eq(site) => h::eq(m, vm, f, site),
            Op::At(site) => h::at(m, vm, f, site),
            Op::AtPut(site) => h::at_put(m, vm, f, site),
            Op::ReturnLocal => h::return_local(m, f),
            Op::ReturnSelf => h::return_self(m, f),
            Op::ReturnNonLocal(level) => Step::Exit(Exit::NonLocalReturn(level)),
            Op::Jump(t) => h::jump(m, t),
            Op::JumpIf { target, when, mode } => h::jump_if(m, vm, f, target, when, mode),
            Op::JumpIfNil { target, when } => h::jump_if_nil(m, vm, f, target, when),
            Op::BackJump { target, counter } => h::back_jump(m, code, target, counter),
            Op::ForTest {
                counter,
                limit,
                exit,
                down,
            } => h::for_test(m, vm, f, counter, limit, exit, down),
            Op::ForStep { counter, down } => h::for_step(m, vm, f, counter, down),
        };
        match step {
            Step::Next => {}
            Step::Jump(t) | Step::BackEdge(t) => f.pc = t,
            Step::CondJump { taken, target } => {
                if taken {
                    f.pc = target
                }
            }
            Step::Return(v) => return Ok(Value::from_bits(v)),
            // Sends are the common exit: keep them on the hot path.
            Step::Exit(Exit::Send(site)) => match send::send(vm, f, &code.sites[site as usize]) {
                Ok(()) => {}
                Err(Unwind::Restart) => restart(vm, code, f),
                Err(e) => return Err(e),
            },
            Step::Exit(exit) => {
                if let Some(v) = run_exit(vm, f, exit)? {
                    return Ok(v);
                }
            }
        }
    }
}

/// Carries out an [`Exit`]. Answers `Some(value)` if the activation is finished.
#[cold]
fn run_exit(vm: &mut Vm, f: &mut Frame, exit: Exit) -> VmResult<Option<Value>> {
    match exit {
        Exit::Send(_) => unreachable!("sends are handled in `execute`"),
        Exit::UnknownGlobal(cell) => {
            let name = vm.globals[cell as usize].0;
            let rcvr = f.receiver();
            let sel = vm.sym.unknown_global;
            let v = send::send_values(vm, f, rcvr, sel, &[name])?;
            f.push(v);
            Ok(None)
        }
        Exit::NonLocalReturn(level) => {
            f.sp -= 1;
            let value = unsafe { *f.base.add(f.sp) };
            // Walk out to the home method's context.
            let mut home = f.outer;
            for _ in 1..level {
                // SAFETY: the compiler gave every enclosing activation a context.
                home = unsafe { as_ref::<Context>(home).outer };
            }
            // SAFETY: `home` is a method context.
            if unsafe { as_ref::<Context>(home).alive } != 0 {
                return Err(Unwind::NonLocalReturn {
                    target: home,
                    value,
                });
            }
            // The home method has returned: the sender of `value` gets `escapedBlock:`,
            // and its answer is the block's value.
            let sender = if f.parent.is_null() {
                f.receiver()
            } else {
                // SAFETY: parent frames are live while their callees run.
                unsafe { (*f.parent).receiver() }
            };
            let sel = vm.sym.escaped_block;
            let v = send::send_values(vm, f, sender, sel, &[f.closure])?;
            Ok(Some(v))
        }
        Exit::NotBoolean => {
            let v = unsafe { *f.base.add(f.sp - 1) };
            let cls = vm.class_of(v);
            vm.err(format!(
                "an inlined conditional expected a Boolean but got an instance of {}",
                vm.class_name(cls)
            ))
        }
        Exit::NotNumber => vm.err("to:do: expects numbers for its receiver and limit"),
    }
}

/// `restart`: the activation starts over at its first instruction, operand stack empty.
fn restart(vm: &mut Vm, code: &Code, f: &mut Frame) {
    f.pc = 0;
    f.sp = 1 + code.num_args + code.num_locals;
    let nil = vm.nil;
    for i in 1 + code.num_args..f.sp {
        // SAFETY: locals are inside the frame.
        unsafe { *f.base.add(i) = nil };
    }
}
