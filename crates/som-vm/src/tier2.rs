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
use crate::interpreter::dispatch::{perform_exit, ExitOutcome};
use crate::interpreter::frame::Frame;
use crate::interpreter::ops;
use crate::universe::{Options, Vm};
use crate::unwind::VmResult;
use crate::value::Value;
use metajit::deopt::exit_state;
pub use metajit::driver::TraceOptions;
use metajit::driver::{Action, Driver};
use metajit::ir::{LoopKey, Trace};
use metajit::lower::{Compiled, LowerOptions, Safepoint, TraceBackend};
use metajit::record::{RecordLimits, Recorder};
use metajit::{Machine, Step};
use std::io::Write;

/// Auxiliary words of a SOM frame (context, outer context, closure).
const FRAME_AUX: usize = 3;

/// A compiled loop.
struct LoopTrace {
    trace: Trace,
    compiled: Compiled,
}

/// The tracing JIT of a VM.
pub struct Tier2 {
    pub driver: Driver,
    backend: TraceBackend,
    traces: Vec<LoopTrace>,
    /// Where exits save their live values.
    exits: Vec<u64>,
    /// The guard-check counter of `deopt_every` (boxed: compiled code holds its
    /// address).
    deopt_counter: Box<u64>,
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
            exits: Vec::new(),
            deopt_counter,
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
    let Some(t2) = vm.tier2.as_mut() else {
        return Ok(ExitOutcome::Continue);
    };
    let cell = &code.loops[counter as usize];
    match t2.driver.on_back_edge(cell) {
        Action::Interpret => Ok(ExitOutcome::Continue),
        Action::Record => record(vm, code, f, header, counter),
        Action::Enter(n) => {
            run_trace(vm, n as usize, f);
            Ok(ExitOutcome::Continue)
        }
    }
}

/// Records the loop at `header` of `code`, running in the activation `f` (at the
/// header). The recording executes the program as the interpreter would, so however
/// it ends the activation is at an instruction boundary and goes on normally.
fn record(
    vm: &mut Vm,
    code: &Code,
    f: &mut Frame,
    header: u32,
    counter: u16,
) -> VmResult<ExitOutcome> {
    let options = vm.options.tier2;
    let key = LoopKey {
        code: code as *const Code as u64,
        pc: header,
        extra: 0,
    };
    let limits = RecordLimits {
        trace_limit: options.trace_limit as usize,
        max_depth: options.inline_depth as usize,
        strict: false,
    };
    let mut rec = Recorder::start(key, f, 0, FRAME_AUX, limits);
    let cell = &code.loops[counter as usize];
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
                rec.abort(metajit::record::AbortReason::InnerLoop);
            }
            Step::Return(v) => {
                rec.abort(metajit::record::AbortReason::LeftRootFrame);
                abort(vm, cell, &rec);
                return Ok(ExitOutcome::Returned(Value::from_bits(v.bits)));
            }
            Step::Exit(exit) => {
                rec.abort(metajit::record::AbortReason::Unsupported);
                abort(vm, cell, &rec);
                return perform_exit(vm, code, f, exit);
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
                let t = LoopTrace { trace, compiled };
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
                t2.driver
                    .aborted(cell, metajit::record::AbortReason::Unsupported);
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

fn abort(vm: &mut Vm, cell: &metajit::driver::LoopCell, rec: &Recorder) {
    let why = rec
        .aborted()
        .unwrap_or(metajit::record::AbortReason::Unsupported);
    if let Some(t2) = vm.tier2.as_mut() {
        t2.driver.aborted(cell, why);
    }
}

/// Runs compiled trace `n` in the activation `f` (at its loop header) until a guard
/// fails, then puts the guard's snapshot back into the frame.
fn run_trace(vm: &mut Vm, n: usize, f: &mut Frame) {
    let vm_ptr = vm as *mut Vm as *mut u8;
    let t2 = vm.tier2.as_mut().expect("tracing mode");
    let func = t2.traces[n].compiled.func;
    let exits = t2.exits.as_mut_ptr();
    let aux = &mut f.ctx as *mut Value as *mut u64;
    // SAFETY: the trace was recorded from this loop of this activation's code; it reads
    // and writes the frame's slots and auxiliary words the recorder saw, calls back
    // into the VM only through the safepoint, and its exits write at most `exits.len()`
    // words. No reference into the VM is used while it runs.
    let snap = unsafe { func(vm_ptr, f.base as *mut u64, aux, exits) };
    let t2 = vm.tier2.as_mut().expect("tracing mode");
    t2.driver.stats.deopts += 1;
    let state = exit_state(&t2.traces[n].trace, snap as u32, &t2.exits);
    // SAFETY: the snapshot's slots are slots of this activation.
    unsafe { state.write_slots(f.base as *mut u64) };
    let root = &state.frames[0];
    f.pc = root.pc;
    f.sp = root.sp as usize;
    let aux = [&mut f.ctx, &mut f.outer, &mut f.closure];
    for &(i, v) in &root.aux {
        *aux[i as usize] = Value::from_bits(v);
    }
    let _ = &t2.deopt_counter;
}
