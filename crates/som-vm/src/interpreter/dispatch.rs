//! The interpreter loop: runs the handlers (through the op table, `ops`) with the
//! `Concrete` machine and carries out the steps they return. Sends recurse into `send`, which activates the
//! callee and comes back here with a fresh frame.

use crate::bytecode::Code;
use crate::interpreter::frame::Frame;
use crate::interpreter::handlers::Exit;
use crate::interpreter::{ops, send};
use crate::object::{as_ref, Context};
use crate::universe::Vm;
use crate::unwind::{Unwind, VmResult};
use crate::value::Value;
use metajit::record::AbortReason;
use metajit::{Machine, Step};

/// Runs the activation `f` of `code` to completion and answers its result, on any
/// machine: the interpreter runs it with `Concrete`; tier 2 runs the activations it
/// inlines with its `Recorder`.
// Inlined into its callers (`send::activate` above all), as the interpreter was before
// it became generic: an activation then costs no call of its own (6% of Richards'
// instructions when it did not).
#[inline(always)]
pub fn execute<M: Machine>(m: &mut M, vm: &mut Vm, code: &Code, f: &mut Frame) -> VmResult<M::W> {
    loop {
        let pc = f.pc;
        let op = code.ops[pc as usize];
        // The compiler's stack depths are what tier 1 compiles against: check them.
        debug_assert_eq!(f.sp, code.sp_before(pc as usize), "stack depth at pc {pc}");
        m.instruction(f, pc);
        f.pc += 1;
        match ops::step(m, vm, code, f, op) {
            Step::Next => {}
            Step::Jump(t) => f.pc = t,
            Step::BackEdge(t) => {
                f.pc = t;
                if M::RECORDS {
                    // A loop inside an inlined activation has a trace of its own.
                    m.cannot_trace(AbortReason::InnerLoop);
                } else if vm.tier2.is_some() {
                    if let ExitOutcome::Returned(v) = crate::tier2::on_back_edge(vm, code, f, op)? {
                        return Ok(m.konst(v.bits()));
                    }
                }
            }
            Step::CondJump { taken, target } => {
                if taken {
                    f.pc = target
                }
            }
            Step::Return(v) => return Ok(v),
            Step::Exit(exit) => {
                if let ExitOutcome::Returned(v) = perform_exit(m, vm, code, f, exit)? {
                    return Ok(m.konst(v.bits()));
                }
            }
        }
    }
}

/// How an activation goes on after an [`Exit`].
pub enum ExitOutcome {
    /// With the next instruction.
    Continue,
    /// From its first instruction (`restart`); the frame has been reset.
    Restarted,
    /// It is finished, with this value.
    Returned(Value),
}

/// Carries out an [`Exit`]: the work handlers leave to the runtime. Shared by the
/// interpreter loop and the concrete entries that tier-1 code calls.
#[inline]
pub fn perform_exit<M: Machine>(
    m: &mut M,
    vm: &mut Vm,
    code: &Code,
    f: &mut Frame,
    exit: Exit,
) -> VmResult<ExitOutcome> {
    match exit {
        Exit::Send(site) => {
            let r = send::send(m, vm, f, &code.sites[site as usize]);
            after_send(vm, code, f, r)
        }
        other => {
            m.cannot_trace(AbortReason::Unsupported);
            run_exit(vm, f, other)
        }
    }
}

/// How the sending activation goes on after a send: `restart` restarts it.
#[inline]
pub fn after_send(
    vm: &mut Vm,
    code: &Code,
    f: &mut Frame,
    r: VmResult<()>,
) -> VmResult<ExitOutcome> {
    match r {
        Ok(()) => Ok(ExitOutcome::Continue),
        Err(u) if matches!(*u, Unwind::Restart) => {
            restart(vm, code, f);
            Ok(ExitOutcome::Restarted)
        }
        Err(e) => Err(e),
    }
}

/// The exits other than sends.
#[cold]
fn run_exit(vm: &mut Vm, f: &mut Frame, exit: Exit) -> VmResult<ExitOutcome> {
    match exit {
        Exit::Send(_) => unreachable!("sends are handled in `perform_exit`"),
        Exit::UnknownGlobal(cell) => {
            let name = vm.globals[cell as usize].0;
            let rcvr = f.receiver();
            let sel = vm.sym.unknown_global;
            let v = send::send_values(vm, f, rcvr, sel, &[name])?;
            f.push(v);
            Ok(ExitOutcome::Continue)
        }
        Exit::NonLocalReturn(level) => {
            f.sp -= 1;
            // SAFETY: the returned value was on the operand stack.
            let value = unsafe { *f.base.add(f.sp) };
            // Walk out to the home method's context.
            let mut home = f.outer;
            for _ in 1..level {
                // SAFETY: the compiler gave every enclosing activation a context.
                home = unsafe { as_ref::<Context>(home).outer };
            }
            // SAFETY: `home` is a method context.
            if unsafe { as_ref::<Context>(home).alive } != 0 {
                return Err(Box::new(Unwind::NonLocalReturn {
                    target: home,
                    value,
                }));
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
            Ok(ExitOutcome::Returned(v))
        }
        Exit::NotBoolean => {
            // SAFETY: the tested value is on the operand stack.
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
pub(crate) fn restart(vm: &mut Vm, code: &Code, f: &mut Frame) {
    f.pc = 0;
    f.sp = 1 + code.num_args + code.num_locals;
    let nil = vm.nil;
    for i in 1 + code.num_args..f.sp {
        // SAFETY: locals are inside the frame.
        unsafe { *f.base.add(i) = nil };
    }
}
