//! Tier 2 for SOM: hot loops are recorded from the interpreter definition with
//! `metajit`'s `Recorder`, compiled by its trace backend, and run until a guard fails;
//! the interpreter then resumes from the guard's snapshot (DESIGN section 7).
//!
//! Data flow: the interpreter loop (`interpreter::dispatch`) reports each back-edge to
//! [`on_back_edge`]; the loop's state word (`Code::loops`) and the `metajit` driver
//! decide whether to keep interpreting, to record (a recording loop over the same
//! handlers as the interpreter's, `ops::step` with the `Recorder`), or to enter the
//! compiled trace. A trace's exit comes back as a snapshot, which `metajit::deopt`
//! turns into the root frame's slots, stack pointer, pc and auxiliary words.
//!
//! What is traced so far: everything the handlers do inside one activation
//! (arithmetic, comparisons, array access, fields, captured variables, inlined control
//! structures, `to:do:`). Anything that leaves the activation (a send, a block
//! evaluation, a non-local return) or needs the runtime inside a handler ends the
//! recording, counted by reason; those loops stay interpreted.

use crate::bytecode::Code;
use crate::interpreter::dispatch::{after_send, execute, perform_exit, ExitOutcome};
use crate::interpreter::frame::{Frame, AUX_CLOSURE, AUX_CTX, AUX_OUTER, FRAME_AUX};
use crate::interpreter::ops;
use crate::interpreter::send::leave_rebuilt;
use crate::object::{as_ref, Block, Kind, Method};
use crate::universe::{Options, Vm, INLINED_FRAMES_LINE};
use crate::unwind::Unwind;
use crate::unwind::VmResult;
use crate::value::Value;
use metajit::deopt::{exit_state, FrameState};
pub use metajit::driver::TraceOptions;
use metajit::driver::{Action, Driver, LoopCell};
use metajit::ir::{LoopKey, Trace};
use metajit::lower::{Compiled, LowerOptions, Safepoint, TraceBackend};
use metajit::record::{AbortReason, RecordLimits, Recorder};
use metajit::{Concrete, Machine, Step};
use std::collections::HashMap;
use std::io::Write;
use std::rc::Rc;

/// A compiled loop.
struct LoopTrace {
    trace: Trace,
    compiled: Compiled,
    /// Slots above the root frame's slot 0 that running and leaving the trace may
    /// write (its deepest frame, plus room for residual calls' sends).
    reach: usize,
}

/// The tracing JIT of a VM.
pub struct Tier2 {
    pub driver: Driver,
    backend: TraceBackend,
    traces: Vec<LoopTrace>,
    /// State words of loops keyed by the block methods they run (see
    /// [`library_loop_key`]): (code, back-edge counter, key).
    library_loops: HashMap<(usize, u16, u64), Rc<LoopCell>>,
    /// Where exits save their live values.
    exits: Vec<u64>,
    /// The guard-check counter of `deopt_every`: compiled code holds its address, so
    /// it is boxed and lives as long as the traces.
    _deopt_counter: Box<u64>,
    log: Option<std::io::BufWriter<std::fs::File>>,
}

impl Tier2 {
    pub fn new(options: &Options) -> Result<Tier2, String> {
        let mut deopt_counter = Box::new(0u64);
        let every = options.tier2.deopt_every;
        let lower = LowerOptions {
            safepoint: Some(Safepoint {
                flag: crate::gc::stop_requested_flag(),
                func: safepoint,
            }),
            deopt_every: (every > 0).then_some((&mut *deopt_counter as *mut u64, every as u64)),
        };
        let log = match &options.jit_log {
            Some(path) => Some(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .map_err(|e| format!("cannot write the JIT log {}: {e}", path.display()))?,
            )),
            None => None,
        };
        Ok(Tier2 {
            driver: Driver::new(options.tier2),
            backend: TraceBackend::new(lower)?,
            traces: Vec::new(),
            library_loops: HashMap::new(),
            exits: Vec::new(),
            _deopt_counter: deopt_counter,
            log,
        })
    }

    /// The constants of every compiled trace (GC roots: traces embed them).
    pub fn constants(&self) -> impl Iterator<Item = &u64> {
        self.traces.iter().flat_map(|t| t.trace.consts.iter())
    }

    /// The tier-2 lines of `--jit-stats`.
    pub fn stats(&self) -> String {
        self.driver.stats.report()
    }

    fn log_trace(&mut self, vm_label: &str, t: &LoopTrace) {
        let Some(log) = &mut self.log else { return };
        let _ = writeln!(
            log,
            "[tier2] trace {} of {vm_label} at pc {}: {} ops, {} guards, {} bytes, compiled in {} us",
            self.traces.len(),
            t.trace.key.pc,
            t.trace.ops.len(),
            t.trace.guards(),
            t.compiled.code_bytes,
            t.compiled.compile_time.as_micros()
        );
        let _ = write!(log, "{}", t.trace.to_text());
        let _ = log.flush();
    }
}

/// The safepoint compiled loops call at their header when a collection is waiting.
unsafe extern "C" fn safepoint(vm: *mut u8) {
    // SAFETY: traces get the running VM as their context.
    let vm = &*(vm as *const Vm);
    vm.heap.safepoint();
}

/// The interpreter took the back-edge just before `f.pc` of `code` (tracing mode):
/// counts it, and records or runs the loop's trace.
#[inline(never)]
pub fn on_back_edge(
    vm: &mut Vm,
    code: &Code,
    f: &mut Frame,
    counter: u16,
) -> VmResult<ExitOutcome> {
    let header = f.pc;
    let extra = library_loop_key(vm, code, f);
    let Some(t2) = vm.tier2.as_mut() else {
        return Ok(ExitOutcome::Continue);
    };
    let cell = if extra == 0 {
        LoopRef::Own(&code.loops[counter as usize])
    } else {
        let key = (code as *const Code as usize, counter, extra);
        LoopRef::Library(t2.library_loops.entry(key).or_default().clone())
    };
    match t2.driver.on_back_edge(&cell) {
        Action::Interpret => Ok(ExitOutcome::Continue),
        Action::Record => record(vm, code, f, header, extra, &cell),
        Action::Enter(n) => run_trace(vm, code, n as usize, f),
    }
}

/// The state word of a loop: the code's own, or, for a loop that runs blocks it was
/// given, one per combination of their methods.
enum LoopRef<'c> {
    Own(&'c LoopCell),
    Library(Rc<LoopCell>),
}

impl std::ops::Deref for LoopRef<'_> {
    type Target = LoopCell;
    fn deref(&self) -> &LoopCell {
        match self {
            LoopRef::Own(c) => c,
            LoopRef::Library(c) => c,
        }
    }
}

/// The green part of a loop's key beyond its code and pc: loops in methods whose
/// receiver or first argument is a block (`Block>>whileTrue:`, `Integer>>to:do:`,
/// `Array>>do:` and the like) are shared by every caller, so each combination of
/// block methods gets its own trace, as in PySOM. 0 for other loops.
fn library_loop_key(vm: &Vm, code: &Code, f: &Frame) -> u64 {
    let block_method = |slot: usize| -> u64 {
        // SAFETY: slots 0..=num_args hold the receiver and the arguments.
        let v = unsafe { *f.base.add(slot) };
        if vm.is_kind(v, Kind::Block) {
            // SAFETY: checked kind.
            unsafe { as_ref::<Block>(v).method as u64 }
        } else {
            0
        }
    };
    let receiver = block_method(0);
    let argument = if code.num_args >= 1 {
        block_method(1)
    } else {
        0
    };
    receiver ^ argument.rotate_left(32)
}

/// Records the loop at `header` of `code`, running in the activation `f` (at the
/// header). The recording executes the program as the interpreter would, so however
/// it ends the activation is at an instruction boundary and goes on normally.
fn record(
    vm: &mut Vm,
    code: &Code,
    f: &mut Frame,
    header: u32,
    extra: u64,
    cell: &LoopCell,
) -> VmResult<ExitOutcome> {
    let options = vm.options.tier2;
    let key = LoopKey {
        code: code as *const Code as u64,
        pc: header,
        extra,
    };
    let limits = RecordLimits {
        trace_limit: options.trace_limit as usize,
        max_depth: options.inline_depth as usize,
        // SOM_JIT_STRICT: a handler that reads a traced value's bits panics, naming
        // the trace (for finding the handlers that still do).
        strict: std::env::var_os("SOM_JIT_STRICT").is_some(),
    };
    let mut rec = Recorder::start(key, f, f.method as u64, FRAME_AUX, limits);
    loop {
        let pc = f.pc;
        rec.instruction(f, pc);
        let op = code.ops[pc as usize];
        f.pc += 1;
        match ops::step(&mut rec, vm, code, f, op) {
            Step::Next => {}
            Step::Jump(t) => f.pc = t,
            Step::CondJump { taken, target } => {
                if taken {
                    f.pc = target
                }
            }
            Step::BackEdge(t) => {
                f.pc = t;
                if t == header {
                    break;
                }
                rec.abort(AbortReason::InnerLoop);
            }
            Step::Return(v) => {
                rec.abort(AbortReason::LeftRootFrame);
                abort(vm, cell, &rec);
                return Ok(ExitOutcome::Returned(Value::from_bits(v.bits)));
            }
            Step::Exit(exit) => {
                // Sends are followed into the callee (inlined); anything else stops
                // the recording there and runs as in the interpreter.
                match perform_exit(&mut rec, vm, code, f, exit) {
                    Ok(ExitOutcome::Continue) => {}
                    Ok(ExitOutcome::Restarted) => {
                        rec.abort(AbortReason::Unsupported);
                        abort(vm, cell, &rec);
                        return Ok(ExitOutcome::Restarted);
                    }
                    other => {
                        rec.abort(AbortReason::LeftRootFrame);
                        abort(vm, cell, &rec);
                        return other;
                    }
                }
            }
        }
        if rec.aborted().is_some() {
            abort(vm, cell, &rec);
            return Ok(ExitOutcome::Continue);
        }
    }
    let t2 = vm.tier2.as_mut().expect("tracing mode");
    match rec.close_loop() {
        Ok(trace) => match t2.backend.compile(&trace) {
            Ok(compiled) => {
                let (ops, guards) = (trace.ops.len(), trace.guards());
                t2.driver.stats.code_bytes += compiled.code_bytes as u64;
                t2.driver.stats.compile_time += compiled.compile_time;
                let need = trace
                    .snaps
                    .iter()
                    .map(|s| s.live().len())
                    .max()
                    .unwrap_or(0);
                if t2.exits.len() < need {
                    t2.exits.resize(need, 0);
                }
                let reach = trace_reach(&trace);
                let t = LoopTrace {
                    trace,
                    compiled,
                    reach,
                };
                let label = code_label(vm, code);
                let t2 = vm.tier2.as_mut().expect("tracing mode");
                t2.log_trace(&label, &t);
                t2.traces.push(t);
                let n = t2.traces.len() as u32 - 1;
                t2.driver.compiled(cell, n, ops, guards);
            }
            Err(e) => {
                if std::env::var_os("SOM_JIT_DEBUG").is_some() {
                    eprintln!("tier 2: compilation failed: {e}");
                }
                t2.driver.aborted(cell, AbortReason::Unsupported);
            }
        },
        Err(why) => t2.driver.aborted(cell, why),
    }
    Ok(ExitOutcome::Continue)
}

/// `Class>>#selector` of the method or block whose code is `code`.
fn code_label(vm: &Vm, code: &Code) -> String {
    vm.all_methods
        .iter()
        // SAFETY: methods are immortal.
        .map(|&m| unsafe { &*m })
        .find(|m| m.code().is_some_and(|c| std::ptr::eq(c, code)))
        .map_or_else(|| "?".into(), |m| vm.method_label(m))
}

/// How far above the root frame's slot 0 a trace's frames reach, plus the room a
/// residual call needs to send from there.
fn trace_reach(t: &Trace) -> usize {
    let deepest = t
        .snaps
        .iter()
        .flat_map(|s| s.frames.iter().map(|f| f.base + f.sp as i32))
        .max()
        .unwrap_or(0);
    deepest.max(0) as usize + RESIDUAL_ROOM
}

/// Slots a residual call may use above the frames of a trace (one activation of the
/// largest methods; deeper sends check the stack as always).
const RESIDUAL_ROOM: usize = 1024;

fn abort(vm: &mut Vm, cell: &LoopCell, rec: &Recorder) {
    let why = rec.aborted().unwrap_or(AbortReason::Unsupported);
    if let Some(t2) = vm.tier2.as_mut() {
        t2.driver.aborted(cell, why);
    }
}

/// Runs compiled trace `n` in the activation `f` (at its loop header) until a guard
/// fails, then puts the guard's snapshot back: the root frame's slots, pc, stack
/// pointer and auxiliary words, and a frame for every activation the trace had
/// inlined, which run to their return innermost first. A failed residual call leaves
/// its unwind pending; it continues from the activation that made the call.
fn run_trace(vm: &mut Vm, code: &Code, n: usize, f: &mut Frame) -> VmResult<ExitOutcome> {
    let vm_ptr = vm as *mut Vm as *mut u8;
    let end = vm.stack.as_ptr_range().end as usize;
    let t2 = vm.tier2.as_mut().expect("tracing mode");
    let t = &t2.traces[n];
    // The trace and its deoptimisation write up to `reach` slots above the frame.
    if f.base as usize + 8 * t.reach > end {
        return Ok(ExitOutcome::Continue);
    }
    let func = t.compiled.func;
    let exits = t2.exits.as_mut_ptr();
    let aux = &mut f.ctx as *mut Value as *mut u64;
    // SAFETY: the trace was recorded from this loop of this activation's code; it reads
    // and writes the frame window and auxiliary words the recorder saw (the window has
    // room, checked above), calls back into the VM through its residual entries and the
    // safepoint, and its exits write at most `exits.len()` words. No reference into the
    // VM is used while it runs.
    let snap = unsafe { func(vm_ptr, f.base as *mut u64, aux, exits) };
    let t2 = vm.tier2.as_mut().expect("tracing mode");
    t2.driver.stats.deopts += 1;
    let state = exit_state(&t2.traces[n].trace, snap as u32, &t2.exits);
    // SAFETY: the snapshot's slots lie in the window (checked above).
    unsafe { state.write_slots(f.base as *mut u64) };
    let root = &state.frames[0];
    f.pc = root.pc;
    f.sp = root.sp as usize;
    set_aux(f, &root.aux);
    if vm.pending_unwind.is_some() {
        // SAFETY: snapshot frames name immortal methods.
        let labels: Vec<String> = state.frames[1..]
            .iter()
            .map(|fs| vm.describe_activation(unsafe { &*(fs.entry as *const Method) }, fs.pc))
            .collect();
        if let Some(u) = vm.pending_unwind.as_deref_mut() {
            fill_in_inlined_frames(&labels, u);
        }
    }
    if state.frames.len() > 1 {
        let inner = resume(vm, &state.frames, 1, f);
        return complete_send(vm, code, f, inner);
    }
    match vm.pending_unwind.take() {
        // The failed call was made by the root frame itself.
        Some(u) => complete_send(vm, code, f, Err(u)),
        None => Ok(ExitOutcome::Continue),
    }
}

/// A residual call made inside inlined activations failed: its error's backtrace
/// has a placeholder where they belong; put them there, innermost first.
fn fill_in_inlined_frames(labels: &[String], u: &mut Unwind) {
    let Unwind::Error { backtrace, .. } = u else {
        return;
    };
    let Some(at) = backtrace.find(INLINED_FRAMES_LINE) else {
        return;
    };
    let lines: String = labels.iter().rev().map(|l| format!("    {l}\n")).collect();
    backtrace.replace_range(at..at + INLINED_FRAMES_LINE.len(), &lines);
}

/// Rebuilds inlined frame `k` of a snapshot above its caller and runs it to its
/// return (first rebuilding and finishing frame `k + 1`, if any).
fn resume(vm: &mut Vm, frames: &[FrameState], k: usize, caller: &mut Frame) -> VmResult<Value> {
    let fs = &frames[k];
    let method = fs.entry as *mut Method;
    // SAFETY: inlined frames run immortal bytecode methods (their code is `fs.code`).
    let code = unsafe { &*(fs.code as *const Code) };
    let mut f = Frame {
        // SAFETY: snapshot bases are slots of the root frame's window.
        base: unsafe { caller.base.offset((fs.base - frames[k - 1].base) as isize) },
        sp: fs.sp as usize,
        pc: fs.pc,
        method,
        ctx: Value::EMPTY,
        outer: Value::EMPTY,
        closure: Value::EMPTY,
        parent: caller,
    };
    set_aux(&mut f, &fs.aux);
    vm.depth += 1;
    vm.current_frame = &f;
    let outcome = if k + 1 < frames.len() {
        let inner = resume(vm, frames, k + 1, &mut f);
        complete_send(vm, code, &mut f, inner)
    } else {
        // The innermost frame resumes at the guard's instruction, or, if a residual
        // call failed there, goes on with its unwind.
        match vm.pending_unwind.take() {
            Some(u) => complete_send(vm, code, &mut f, Err(u)),
            None => Ok(ExitOutcome::Continue),
        }
    };
    let r = match outcome {
        Ok(ExitOutcome::Returned(v)) => Ok(v),
        Ok(_) => execute(&mut Concrete, vm, code, &mut f).map(Value::from_bits),
        Err(e) => Err(e),
    };
    vm.depth -= 1;
    vm.current_frame = caller;
    leave_rebuilt(vm, code, &f, r)
}

/// Finishes the send that frame `f` (of `code`) was making when a trace left, with
/// the callee's outcome `r`: the receiver and arguments make way for the result and
/// the frame continues after the send (or restarts, or unwinds).
fn complete_send(
    vm: &mut Vm,
    code: &Code,
    f: &mut Frame,
    r: VmResult<Value>,
) -> VmResult<ExitOutcome> {
    match r {
        Ok(v) => {
            let argc = send_argc(code, f.pc);
            f.sp -= argc + 1;
            f.push(v);
            f.pc += 1;
            Ok(ExitOutcome::Continue)
        }
        Err(u) => {
            // The send failed: the frame's pc names the send (backtraces), as the
            // interpreter has it while the send runs.
            f.pc += 1;
            after_send(vm, code, f, Err(u))
        }
    }
}

/// The argument count of the send at `pc` (a send or an operation with a send site).
fn send_argc(code: &Code, pc: u32) -> usize {
    use crate::bytecode::Op;
    match code.ops[pc as usize] {
        Op::Send(s)
        | Op::SuperSend(s)
        | Op::Add(s)
        | Op::Sub(s)
        | Op::Mul(s)
        | Op::Lt(s)
        | Op::Gt(s)
        | Op::Le(s)
        | Op::Ge(s)
        | Op::Eq(s)
        | Op::At(s)
        | Op::AtPut(s) => code.sites[s as usize].argc as usize,
        op => unreachable!("an inlined frame's caller is at a send, not {op:?}"),
    }
}

/// Sets a frame's auxiliary words from a snapshot.
fn set_aux(f: &mut Frame, aux: &[(u16, u64)]) {
    for &(i, v) in aux {
        let v = Value::from_bits(v);
        match i as usize {
            AUX_CTX => f.ctx = v,
            AUX_OUTER => f.outer = v,
            AUX_CLOSURE => f.closure = v,
            _ => unreachable!("SOM frames have three auxiliary words"),
        }
    }
}
