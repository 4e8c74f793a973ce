//! Message sends: method lookup through the send site's inline cache, activation of
//! bytecode methods (frames in place on the value stack), primitive calls, block
//! invocation, `doesNotUnderstand:arguments:`, and the catching of non-local returns by
//! their home activation. Also the entry points for sends from Rust (`send_values`).

use crate::bytecode::{Code, SendSite, Tier1State};
use crate::interpreter::dispatch::{execute, ExitOutcome};
use crate::interpreter::frame::{Frame, AUX_CLOSURE, AUX_CTX, AUX_OUTER, FRAME_AUX};
use crate::interpreter::handlers::{
    is_int, CLASS_OFFSET, CONTEXT_OUTER_OFFSET, CONTEXT_SLOTS_OFFSET,
};
use crate::object::{Block, Class, Context, Method, MethodBody};
use crate::universe::Vm;
use crate::unwind::{Unwind, VmResult};
use crate::value::Value;
use metajit::ir::Effects;
use metajit::record::AbortReason;
use metajit::shallow::{status, CompiledFn};
use metajit::{Concrete, Machine};

const BLOCK_METHOD_OFFSET: i32 = std::mem::offset_of!(Block, method) as i32;
const BLOCK_CONTEXT_OFFSET: i32 = std::mem::offset_of!(Block, context) as i32;
const BLOCK_RECEIVER_OFFSET: i32 = std::mem::offset_of!(Block, receiver) as i32;
const CONTEXT_ALIVE_OFFSET: i32 = std::mem::offset_of!(Context, alive) as i32;
const CONTEXT_LEN_OFFSET: i32 = std::mem::offset_of!(Context, len) as i32;

/// Sends through `site`: receiver and arguments are on top of `f`'s stack; they are
/// replaced by the result. Written once for every engine: the receiver's class is
/// computed through the machine and promoted, so a trace guards it and the lookup is
/// green (the inline cache or the method dictionaries, plain Rust).
#[inline]
pub fn send<M: Machine>(m: &mut M, vm: &mut Vm, f: &mut Frame, site: &SendSite) -> VmResult<()> {
    vm.sends += 1;
    let argc = site.argc as usize;
    let class = if site.is_super {
        // Lexical super: the superclass of the class holding the method.
        // SAFETY: frames always run an immortal method with an immortal holder.
        let holder = unsafe { (*f.method).holder.get() };
        // SAFETY: as above: a compiled method's holder is the class it was compiled
        // for (`Compiler::new` takes it), never null, and classes are immortal.
        vm.class_ptr(unsafe { (*holder).superclass })
    } else {
        let rcvr = m.peek(f, argc);
        class_of(m, vm, rcvr)
    };
    let method = if site.cache_class.get() == class && !class.is_null() {
        site.cache_method.get()
    } else {
        match cache_miss(vm, site, class) {
            Some(method) => method,
            None => {
                m.cannot_trace(AbortReason::Unsupported);
                let v = does_not_understand(vm, f, site.selector, argc)?;
                f.pop_n(argc + 1);
                f.push(v);
                return Ok(());
            }
        }
    };
    send_to(m, vm, f, method, argc)
}

/// Looks `site`'s selector up in `class` (its inline cache missed) and caches the
/// method found. Out of line and cold: the send's hit path saves fewer registers.
#[cold]
#[inline(never)]
fn cache_miss(vm: &Vm, site: &SendSite, class: *mut Class) -> Option<*mut Method> {
    let method = vm.lookup(class, site.selector)?;
    site.cache_class.set(class);
    site.cache_method.set(method);
    site.misses.set(site.misses.get().wrapping_add(1));
    site.record_class(class);
    Some(method)
}

/// The class of `w`, decided through the machine (tag tests, then the header's class,
/// promoted): what a send's lookup depends on.
#[inline(always)]
pub fn class_of<M: Machine>(m: &mut M, vm: &Vm, w: M::W) -> *mut Class {
    if is_int(m, w) {
        return vm.classes.integer;
    }
    if m.test_bits(w, 3, 2) {
        return vm.classes.double;
    }
    // SAFETY: every other SOM value points to an object whose header starts with its
    // class, which never changes.
    let class = unsafe { m.load_immutable(w, CLASS_OFFSET) };
    m.promote(class) as *mut Class
}

/// Invokes `method` on the receiver and `argc` arguments on top of `f`'s stack and
/// replaces them by the result.
#[inline]
pub fn send_to<M: Machine>(
    m: &mut M,
    vm: &mut Vm,
    f: &mut Frame,
    method: *mut Method,
    argc: usize,
) -> VmResult<()> {
    let v = invoke(m, vm, f, method, argc)?;
    m.drop_n(f, argc + 1);
    m.push(f, v);
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
        Some(m) => invoke_method(vm, f, m, args.len()),
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

#[cold]
#[inline(never)]
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
            let r = invoke_method(vm, f, m, 2);
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
pub fn invoke<M: Machine>(
    m: &mut M,
    vm: &mut Vm,
    caller: &mut Frame,
    method: *mut Method,
    argc: usize,
) -> VmResult<M::W> {
    // SAFETY: methods are immortal.
    let me = unsafe { &*method };
    if me.num_args != argc {
        m.cannot_trace(AbortReason::Unsupported);
        return Err(wrong_argument_count(vm, me, argc));
    }
    match &me.body {
        MethodBody::Code(code) => {
            if !inlines(m, code) {
                return residual_invoke(m, vm, caller, method, argc);
            }
            let none = m.konst(Value::EMPTY.bits());
            activate(m, vm, caller, method, argc, none, none)
        }
        MethodBody::BlockValue => invoke_block(m, vm, caller, method, argc),
        &MethodBody::Primitive(p) => {
            if M::RECORDS {
                residual_invoke(m, vm, caller, method, argc)
            } else {
                let v = p(vm, caller, argc)?;
                Ok(m.konst(v.bits()))
            }
        }
        MethodBody::MissingPrimitive => {
            m.cannot_trace(AbortReason::Unsupported);
            Err(missing_primitive(vm, me))
        }
    }
}

// The error paths of a send are out of line and cold: the hot path then saves fewer
// registers and carries no formatting code.

/// The error of invoking `method` with `argc` arguments it does not take.
#[cold]
#[inline(never)]
fn wrong_argument_count(vm: &Vm, method: &Method, argc: usize) -> Box<Unwind> {
    vm.error(format!(
        "Tried passing {argc} arguments to a function that requires {}.",
        method.num_args
    ))
}

/// The error of invoking a primitive this VM does not implement.
#[cold]
#[inline(never)]
fn missing_primitive(vm: &Vm, method: &Method) -> Box<Unwind> {
    vm.error(format!(
        "primitive {}>>#{} is not implemented by this VM",
        vm.class_name(method.holder.get()),
        vm.str_of(method.signature)
    ))
}

/// The error of calling a block with `argc` arguments when it takes `want`.
#[cold]
#[inline(never)]
fn wrong_block_arity(vm: &Vm, want: usize, argc: usize) -> Box<Unwind> {
    vm.error(format!(
        "a block with {want} arguments was called with {argc}"
    ))
}

/// [`invoke`] in the interpreter, for callers outside the interpreter definition
/// (primitives, the REPL).
pub fn invoke_method(
    vm: &mut Vm,
    caller: &mut Frame,
    method: *mut Method,
    argc: usize,
) -> VmResult<Value> {
    invoke(&mut Concrete, vm, caller, method, argc).map(Value::from_bits)
}

/// Does a trace inline an activation of `code`? Not one that loops (its loops get
/// traces of their own, which it enters when called), nor recursion or past the depth
/// limit (the machine decides): those are called as residual work. The interpreter
/// always "inlines".
#[inline(always)]
fn inlines<M: Machine>(m: &mut M, code: &Code) -> bool {
    !M::RECORDS || (code.loops.is_empty() && m.may_inline(code as *const Code as u64))
}

/// A send as a trace calls it, without inlining: the receiver and arguments are
/// written to the frame in memory, and `invoke_entry` invokes `method` (a primitive, a
/// method, or a block's `value`) over them, as the interpreter would.
fn residual_invoke<M: Machine>(
    m: &mut M,
    vm: &mut Vm,
    caller: &mut Frame,
    method: *mut Method,
    argc: usize,
) -> VmResult<M::W> {
    let from = caller.sp - argc - 1;
    m.materialise(caller, from, caller.sp);
    let args = m.slot_address(caller, from);
    let method_w = m.konst(method as u64);
    let n = m.konst(argc as u64);
    // The activations inlined here, for backtraces taken inside the call.
    let (inlined, root) = vm.number_inlined_activations(caller, m.inlined_frames());
    let inlined = m.konst(inlined as u64);
    let args = [method_w, args, n, inlined];
    // While recording, the inlined activations have frames of their own: the call
    // runs above the root frame, as it will from the compiled trace, so backtraces
    // taken inside show them once.
    let saved = vm.current_frame;
    vm.current_frame = root;
    // Taken after the last use of `vm` before the call, so no access through `vm`
    // comes between deriving the pointer and the callee's use of it.
    let ctx = vm as *mut Vm as *mut u8;
    // SAFETY: `invoke_entry` gets the VM, a method, the address of its receiver and
    // arguments, which `materialise` put in memory, and a number of inlined
    // activations.
    let r = unsafe { m.call_checked(invoke_entry, ctx, &args, Effects::ALL) };
    vm.current_frame = saved;
    match r {
        Some(v) => Ok(v),
        None => Err(vm.pending_unwind.take().unwrap_or_else(|| {
            vm.error("internal error: a residual call failed without a reason")
        })),
    }
}

/// Invokes `method` on the receiver and `argc` arguments at `args` (in the value
/// stack); answers its result, or 0 with the unwind left in `vm.pending_unwind`.
/// `inlined` numbers the activations the trace had inlined at the call.
///
/// # Safety
/// `vm` is the running VM, `method` a method, `args` the address of `argc + 1` values
/// in its value stack with free room above them, `inlined` a number that
/// `Vm::number_inlined_activations` gave.
unsafe extern "C" fn invoke_entry(
    vm: *mut u8,
    method: u64,
    args: u64,
    argc: u64,
    inlined: u64,
) -> u64 {
    let vm = &mut *(vm as *mut Vm);
    // A frame over the arguments; it runs no method. Backtraces show the activations
    // the trace inlined in its place.
    let mut f = Frame {
        base: args as *mut Value,
        sp: argc as usize + 1,
        pc: crate::universe::INLINED_FRAMES + inlined as u32,
        method: std::ptr::null_mut(),
        ctx: Value::EMPTY,
        outer: Value::EMPTY,
        closure: Value::EMPTY,
        parent: vm.current_frame,
    };
    let saved = vm.current_frame;
    vm.current_frame = &f;
    let r = invoke_method(vm, &mut f, method as *mut Method, argc as usize);
    vm.current_frame = saved;
    match r {
        Ok(v) => v.bits(),
        Err(u) => {
            vm.pending_unwind = Some(u);
            0
        }
    }
}

/// Runs the block on top of `caller`'s stack (below its `argc` arguments): the block's
/// method is promoted, so a trace inlines it.
#[inline]
pub fn invoke_block<M: Machine>(
    m: &mut M,
    vm: &mut Vm,
    caller: &mut Frame,
    value: *mut Method,
    argc: usize,
) -> VmResult<M::W> {
    let block = m.peek(caller, argc);
    // SAFETY: the `value` primitives of the Block classes only run on blocks, whose
    // method, context and receiver never change.
    let (method, context, receiver) = unsafe {
        let method = m.load_immutable(block, BLOCK_METHOD_OFFSET);
        let context = m.load_immutable(block, BLOCK_CONTEXT_OFFSET);
        let receiver = m.load_immutable(block, BLOCK_RECEIVER_OFFSET);
        (m.promote(method) as *mut Method, context, receiver)
    };
    // SAFETY: block methods are immortal bytecode methods.
    let (want, code) = unsafe { ((*method).num_args, (*method).code().unwrap_unchecked()) };
    if want != argc {
        m.cannot_trace(AbortReason::Unsupported);
        return Err(wrong_block_arity(vm, want, argc));
    }
    if !inlines(m, code) {
        // `value` (the primitive method this send found) evaluates it residually.
        return residual_invoke(m, vm, caller, value, argc);
    }
    // The block's frame starts at the block itself: slot 0 becomes the home self.
    let at = caller.sp - argc - 1;
    m.set_slot(caller, at, receiver);
    let r = activate(m, vm, caller, method, argc, context, block);
    // Keep the stack as the caller left it.
    m.set_slot(caller, at, block);
    r
}

/// Creates the frame of a bytecode method or block over the receiver and arguments on
/// top of `caller`'s stack, runs it, and handles non-local returns aimed at it. The
/// machine sees the frame begin and end, and its set-up (locals, context).
fn activate<M: Machine>(
    m: &mut M,
    vm: &mut Vm,
    caller: &mut Frame,
    method: *mut Method,
    argc: usize,
    outer: M::W,
    closure: M::W,
) -> VmResult<M::W> {
    // SAFETY: methods are immortal; `activate` is only called for bytecode methods.
    let code = unsafe { (*method).code().unwrap_unchecked() };
    code.invocations
        .set(code.invocations.get().saturating_add(1));
    if vm.depth >= vm.options.max_stack_depth || native_stack_exhausted(vm) {
        m.cannot_trace(AbortReason::Unsupported);
        return Err(stack_overflow(vm));
    }
    // SAFETY: the receiver and `argc` arguments are on top of `caller`'s operand
    // stack, so `argc + 1` slots below its top are still inside its window.
    let base = unsafe { caller.top().sub(argc + 1) };
    let end = vm.stack.as_ptr_range().end as usize;
    if base as usize + code.frame_size() * 8 > end {
        m.cannot_trace(AbortReason::Unsupported);
        return Err(stack_overflow(vm));
    }
    let mut f = Frame {
        base,
        sp: 1 + argc,
        pc: 0,
        method,
        ctx: Value::EMPTY,
        outer: Value::EMPTY,
        closure: Value::EMPTY,
        parent: caller,
    };
    m.enter_frame(&mut f, code as *const Code as u64, method as u64, FRAME_AUX);
    m.set_aux(&mut f, AUX_OUTER, outer);
    m.set_aux(&mut f, AUX_CLOSURE, closure);
    let nil = m.konst(vm.nil.bits());
    for _ in 0..code.num_locals {
        m.push(&mut f, nil);
    }
    let ctx = match &code.context {
        Some(shape) => {
            let size = m.konst(shape.size as u64);
            let vm_ptr = vm as *mut Vm as *mut u8;
            let (class, nil) = (vm.classes.object as u64, vm.nil.bits());
            let fields = |m: &mut M| {
                let mut fields = vec![
                    (CLASS_OFFSET, m.konst(class)),
                    (CONTEXT_OUTER_OFFSET, outer),
                    (CONTEXT_ALIVE_OFFSET, m.konst(1)),
                    (CONTEXT_LEN_OFFSET, size),
                ];
                let nil = m.konst(nil);
                for i in 0..shape.size as i32 {
                    fields.push((CONTEXT_SLOTS_OFFSET + 8 * i, nil));
                }
                fields
            };
            // SAFETY: `context_entry` gets the VM and a context's outer and size, and
            // writes these words (`Vm::alloc_context`).
            let ctx = unsafe { m.allocate(context_entry, vm_ptr, &[outer, size], fields) };
            for &(slot, idx) in &shape.captured_args {
                let v = m.slot(&mut f, slot as usize);
                // SAFETY: a fresh context of `shape.size` slots.
                unsafe { m.store(ctx, CONTEXT_SLOTS_OFFSET + 8 * idx as i32, v) };
            }
            ctx
        }
        None => m.konst(Value::EMPTY.bits()),
    };
    m.set_aux(&mut f, AUX_CTX, ctx);
    vm.depth += 1;
    vm.current_frame = &f;
    let r = if M::RECORDS {
        execute(m, vm, code, &mut f)
    } else if vm.tier2.is_some() {
        // Tracing mode: every method and block gets an entry trace
        // (`function_threshold`), which a method with loops links to their traces.
        match crate::tier2::on_entry(vm, code, &mut f) {
            Ok(ExitOutcome::Returned(v)) => Ok(m.konst(v.bits())),
            Ok(_) => execute(m, vm, code, &mut f),
            Err(e) => Err(e),
        }
    } else {
        match tier1_code(vm, code) {
            Some(native) => run_native(vm, native, &mut f).map(|v| m.konst(v.bits())),
            None => execute(m, vm, code, &mut f),
        }
    };
    vm.depth -= 1;
    vm.current_frame = caller;
    m.leave_frame();
    if code.context.is_some() && code.block_depth == 0 {
        let dead = m.konst(0);
        // SAFETY: `ctx` is this method's context.
        unsafe { m.store(ctx, CONTEXT_ALIVE_OFFSET, dead) };
        if let Err(u) = &r {
            if let Unwind::NonLocalReturn { target, value } = **u {
                if target.bits() == m.bits(ctx) {
                    return Ok(m.konst(value.bits()));
                }
            }
        }
    }
    r
}

/// What happens when an activation that a trace had inlined ends after
/// deoptimisation (the same as `activate` after its callee ran), on machine `m`.
pub(crate) fn leave_rebuilt<M: Machine>(
    m: &mut M,
    code: &Code,
    f: &mut Frame,
    r: VmResult<M::W>,
) -> VmResult<M::W> {
    if code.context.is_some() && code.block_depth == 0 {
        let ctx = m.aux(f, AUX_CTX);
        let dead = m.konst(0);
        // SAFETY: the frame's context is this method's.
        unsafe { m.store(ctx, CONTEXT_ALIVE_OFFSET, dead) };
        if let Err(u) = &r {
            if let Unwind::NonLocalReturn { target, value } = **u {
                if target == f.ctx {
                    return Ok(m.konst(value.bits()));
                }
            }
        }
    }
    r
}

/// Allocates a context (residual work of activations that have one).
///
/// # Safety
/// `vm` is the running VM.
unsafe extern "C" fn context_entry(vm: *mut u8, outer: u64, size: u64, _: u64, _: u64) -> u64 {
    let vm = &mut *(vm as *mut Vm);
    vm.alloc_context(Value::from_bits(outer), size as usize)
        .bits()
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
