//! Message sends: method lookup through the send site's inline cache, activation of
//! bytecode methods (frames in place on the value stack), primitive calls, block
//! invocation, `doesNotUnderstand:arguments:`, and the catching of non-local returns by
//! their home activation. Also the entry points for sends from Rust (`send_values`).

use crate::bytecode::{Code, SendSite, Tier1State};
use crate::interpreter::dispatch::execute;
use crate::interpreter::frame::Frame;
use crate::object::{as_ref, Block, Class, Context, Method, MethodBody};
use crate::universe::Vm;
use crate::unwind::{Unwind, VmResult};
use crate::value::Value;
use metajit::shallow::{status, CompiledFn};

/// Sends through `site`: receiver and arguments are on top of `f`'s stack; they are
/// replaced by the result.
#[inline]
pub fn send(vm: &mut Vm, f: &mut Frame, site: &SendSite) -> VmResult<()> {
    vm.sends += 1;
    let argc = site.argc as usize;
    let rcvr = f.args(argc)[0];
    let class = if site.is_super {
        // Lexical super: the superclass of the class holding the method.
        // SAFETY: frames always run an immortal method with an immortal holder.
        let holder = unsafe { (*f.method).holder.get() };
        vm.class_ptr(unsafe { (*holder).superclass })
    } else {
        vm.class_of(rcvr)
    };
    let method = if site.cache_class.get() == class && !class.is_null() {
        site.cache_method.get()
    } else {
        match vm.lookup(class, site.selector) {
            Some(m) => {
                site.cache_class.set(class);
                site.cache_method.set(m);
                site.misses.set(site.misses.get().wrapping_add(1));
                site.record_class(class);
                m
            }
            None => {
                let v = does_not_understand(vm, f, site.selector, argc)?;
                f.pop_n(argc + 1);
                f.push(v);
                return Ok(());
            }
        }
    };
    send_to(vm, f, method, argc)
}

/// Invokes `method` on the receiver and `argc` arguments on top of `f`'s stack and
/// replaces them by the result.
#[inline]
pub fn send_to(vm: &mut Vm, f: &mut Frame, method: *mut Method, argc: usize) -> VmResult<()> {
    let v = invoke(vm, f, method, argc)?;
    f.pop_n(argc + 1);
    f.push(v);
    Ok(())
}

/// Sends `selector` to `rcvr` with `args` from Rust (primitives, the runtime).
/// The values are pushed above `f`'s operand stack for the duration of the call.
pub fn send_values(
    vm: &mut Vm,
    f: &mut Frame,
    rcvr: Value,
    selector: Value,
    args: &[Value],
) -> VmResult<Value> {
    let class = vm.class_of(rcvr);
    send_values_in(vm, f, rcvr, class, selector, args)
}

/// As [`send_values`], with the lookup starting in `class`.
pub fn send_values_in(
    vm: &mut Vm,
    f: &mut Frame,
    rcvr: Value,
    class: *mut Class,
    selector: Value,
    args: &[Value],
) -> VmResult<Value> {
    ensure_stack(vm, f, args.len() + 1)?;
    let saved_sp = f.sp;
    f.push(rcvr);
    for &a in args {
        f.push(a);
    }
    let r = match vm.lookup(class, selector) {
        Some(m) => invoke(vm, f, m, args.len()),
        None => does_not_understand(vm, f, selector, args.len()),
    };
    f.sp = saved_sp;
    r
}

/// Checks that `n` more values fit on the value stack above `f`.
fn ensure_stack(vm: &Vm, f: &Frame, n: usize) -> VmResult<()> {
    let end = vm.stack.as_ptr_range().end as usize;
    if f.top() as usize + n * 8 > end {
        return Err(stack_overflow(vm));
    }
    Ok(())
}

fn stack_overflow(vm: &Vm) -> Box<Unwind> {
    vm.error(format!(
        "Stack overflow: more than {} nested activations",
        vm.depth
    ))
}

/// Sends `doesNotUnderstand:arguments:` for a failed lookup; the receiver and `argc`
/// arguments are on top of `f`'s stack (and stay there).
pub fn does_not_understand(
    vm: &mut Vm,
    f: &mut Frame,
    selector: Value,
    argc: usize,
) -> VmResult<Value> {
    let vals = f.args(argc).to_vec();
    let arr = vm.alloc_array_from(&vals[1..]);
    let dnu = vm.sym.does_not_understand;
    let class = vm.class_of(vals[0]);
    match vm.lookup(class, dnu) {
        Some(m) => {
            ensure_stack(vm, f, 3)?;
            let saved = f.sp;
            f.push(vals[0]);
            f.push(selector);
            f.push(arr);
            let r = invoke(vm, f, m, 2);
            f.sp = saved;
            r
        }
        None => vm.err(format!(
            "Method {} not found in class {} (and no doesNotUnderstand:arguments:)",
            vm.str_of(selector),
            vm.class_name(class)
        )),
    }
}

/// Invokes `method` with the receiver and `argc` arguments on top of `caller`'s stack
/// (they stay there; the caller pops them).
#[inline]
pub fn invoke(
    vm: &mut Vm,
    caller: &mut Frame,
    method: *mut Method,
    argc: usize,
) -> VmResult<Value> {
    // SAFETY: methods are immortal.
    let m = unsafe { &*method };
    if m.num_args != argc {
        return vm.err(format!(
            "{} expects {} arguments but was called with {argc}",
            vm.str_of(m.signature),
            m.num_args
        ));
    }
    match &m.body {
        MethodBody::Code(_) => activate(vm, caller, method, argc, Value::EMPTY, Value::EMPTY),
        MethodBody::Primitive(p) => p(vm, caller, argc),
        MethodBody::MissingPrimitive => {
            let holder = m.holder.get();
            vm.err(format!(
                "primitive {}>>#{} is not implemented by this VM",
                vm.class_name(holder),
                vm.str_of(m.signature)
            ))
        }
    }
}

/// Runs the block on top of `caller`'s stack (below its `argc` arguments).
pub fn invoke_block(vm: &mut Vm, caller: &mut Frame, argc: usize) -> VmResult<Value> {
    let block = caller.args(argc)[0];
    // SAFETY: the primitives of the Block classes only run on blocks.
    let b = unsafe { as_ref::<Block>(block) };
    let (method, context, receiver) = (b.method, b.context, b.receiver);
    // SAFETY: block methods are immortal.
    let want = unsafe { (*method).num_args };
    if want != argc {
        return vm.err(format!(
            "a block with {want} arguments was called with {argc}"
        ));
    }
    // The block's frame starts at the block itself: slot 0 becomes the home self.
    caller.args(argc)[0] = receiver;
    let r = activate(vm, caller, method, argc, context, block);
    // Keep the stack as the caller left it.
    caller.args(argc)[0] = block;
    r
}

/// Creates the frame of a bytecode method or block over the receiver and arguments on
/// top of `caller`'s stack, runs it, and handles non-local returns aimed at it.
fn activate(
    vm: &mut Vm,
    caller: &mut Frame,
    method: *mut Method,
    argc: usize,
    outer: Value,
    closure: Value,
) -> VmResult<Value> {
    // SAFETY: methods are immortal; `activate` is only called for bytecode methods.
    let code = unsafe { (*method).code().unwrap_unchecked() };
    code.invocations
        .set(code.invocations.get().saturating_add(1));
    if vm.depth >= vm.options.max_stack_depth || native_stack_exhausted(vm) {
        return Err(stack_overflow(vm));
    }
    let base = unsafe { caller.top().sub(argc + 1) };
    let end = vm.stack.as_ptr_range().end as usize;
    if base as usize + code.frame_size() * 8 > end {
        return Err(stack_overflow(vm));
    }
    let mut f = Frame {
        base,
        sp: 1 + argc + code.num_locals,
        pc: 0,
        method,
        ctx: Value::EMPTY,
        outer,
        closure,
        parent: caller,
    };
    let nil = vm.nil;
    for i in 1 + argc..f.sp {
        // SAFETY: the frame fits in the value stack (checked above).
        unsafe { *base.add(i) = nil };
    }
    if let Some(shape) = &code.context {
        let ctx = vm.alloc_context(outer, shape.size);
        // SAFETY: fresh context of `shape.size` slots.
        let slots = unsafe { as_ref::<Context>(ctx).slots() };
        for &(slot, idx) in &shape.captured_args {
            slots[idx as usize] = unsafe { *base.add(slot as usize) };
        }
        f.ctx = ctx;
    }
    vm.depth += 1;
    vm.current_frame = &f;
    let r = match tier1_code(vm, code) {
        Some(native) => run_native(vm, native, &mut f),
        None => execute(vm, code, &mut f),
    };
    vm.depth -= 1;
    vm.current_frame = caller;
    if code.context.is_some() && code.block_depth == 0 {
        // SAFETY: f.ctx is this method's context.
        unsafe { as_ref::<Context>(f.ctx).alive = 0 };
        if let Err(u) = &r {
            if let Unwind::NonLocalReturn { target, value } = **u {
                if target == f.ctx {
                    return Ok(value);
                }
            }
        }
    }
    r
}

/// The tier-1 code to run for `code`, compiling it when it has become hot.
#[inline(always)]
fn tier1_code(vm: &mut Vm, code: &Code) -> Option<CompiledFn> {
    match code.tier1.get() {
        Tier1State::Compiled(f) => Some(f),
        Tier1State::Failed => None,
        Tier1State::NotCompiled => {
            if code.invocations.get() < vm.tier1.as_ref()?.options.threshold as u64 {
                return None;
            }
            // The compiler reads the VM (classes, lookups) while it is borrowed from it.
            let mut tier1 = vm.tier1.take()?;
            let compiled = tier1.compile(vm, code);
            vm.tier1 = Some(tier1);
            compiled
        }
    }
}

/// Runs an activation in tier-1 code.
fn run_native(vm: &mut Vm, native: CompiledFn, f: &mut Frame) -> VmResult<Value> {
    // SAFETY: `native` was compiled from this frame's code; it receives the VM and the
    // frame as the concrete entries expect them, and nothing else touches them (the
    // references of this function are not used) until it returns.
    let st = unsafe { native(vm as *mut Vm as *mut u8, f as *mut Frame as *mut u8) };
    match st {
        status::RETURN => Ok(vm.tier1_result),
        status::UNWIND => Err(vm
            .pending_unwind
            .take()
            .unwrap_or_else(|| vm.error("internal error: tier-1 code unwound without a reason"))),
        other => vm.err(format!(
            "internal error: tier-1 code answered status {other}"
        )),
    }
}

/// True when the native stack is nearly used up (deep recursion through primitives
/// and sends); the VM then raises a SOM-level stack overflow instead of crashing.
#[inline(always)]
fn native_stack_exhausted(vm: &Vm) -> bool {
    let marker = 0u8;
    let here = &marker as *const u8 as usize;
    here < vm.native_stack_limit
}
