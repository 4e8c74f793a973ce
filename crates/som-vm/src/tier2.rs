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

use crate::bytecode::{Code, Op};
use crate::interpreter::dispatch::{after_send, execute, perform_exit, ExitOutcome};
use crate::interpreter::frame::{Frame, AUX_CLOSURE, AUX_CTX, AUX_OUTER, FRAME_AUX};
use crate::interpreter::ops;
use crate::interpreter::send::leave_rebuilt;
use crate::object::{as_ref, Block, Kind, Method};
use crate::universe::{Options, Vm};
use crate::unwind::VmResult;
use crate::value::Value;
use metajit::deopt::{ExitMap, FrameState};
pub use metajit::driver::TraceOptions;

/// The environment variable that sets `deopt_every` for every VM in tracing mode
/// that does not set it itself: `SOM_DEOPT_EVERY=3 cargo test --workspace` runs the
/// whole suite's tracing runs with every third guard check failing.
pub const DEOPT_EVERY_ENV: &str = "SOM_DEOPT_EVERY";

/// Tier 2's default options (PyPy's), with `deopt_every` from [`DEOPT_EVERY_ENV`].
pub fn trace_options() -> TraceOptions {
    let mut o = TraceOptions::default();
    if let Some(n) = std::env::var(DEOPT_EVERY_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        o.deopt_every = n;
    }
    o
}
use metajit::driver::{Action, Driver, LoopCell, LoopState};
use metajit::ir::{LoopKey, Trace};
use metajit::lower::{Compiled, LowerOptions, Safepoint, TraceBackend, FINISHED, LINKED, TO_LOOP};
pub use metajit::opt::{passes_named, Pass};
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
    /// Each snapshot, resolved for its exit.
    exits: Vec<ExitMap>,
    /// Per snapshot: how often its guards failed, and the bridge it leads to.
    failures: Vec<u32>,
    bridges: Vec<Option<usize>>,
    /// The loop trace this one belongs to (itself, for a loop).
    root: usize,
    /// Bridges grown from this loop (for a loop trace).
    bridge_count: u32,
    /// An entry trace (or its bridge): it ends with the activation's return.
    function: bool,
}

/// The tracing JIT of a VM.
pub struct Tier2 {
    pub driver: Driver,
    backend: TraceBackend,
    traces: Vec<LoopTrace>,
    /// State words of loops keyed by the block methods they run (see
    /// [`library_loop_key`]): (code, back-edge counter, key).
    library_loops: HashMap<(usize, u16, u64), Rc<LoopCell>>,
    /// Where exits save their live values (and the objects they materialise).
    exits: Vec<u64>,
    /// How many words of `exits` are roots of the collector (while an exit
    /// allocates its virtual objects; 0 otherwise).
    exit_roots: usize,
    /// The guard-check counter of `deopt_every`: compiled code holds its address, so
    /// it is boxed and lives as long as the traces.
    _deopt_counter: Box<u64>,
    log: Option<std::io::BufWriter<std::fs::File>>,
    /// The optimiser's passes (`--jit-passes`).
    passes: Vec<Pass>,
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
            // Fixed for the VM's life: compiled code holds its address while residual
            // calls may compile more traces. A snapshot names at most one value per
            // instruction of its trace.
            exits: vec![0; options.tier2.trace_limit as usize + EXIT_SLACK],
            exit_roots: 0,
            _deopt_counter: deopt_counter,
            log,
            passes: options.tier2_passes.clone(),
        })
    }

    /// The words of the exit buffer the collector must treat as roots: an exit that
    /// allocates its virtual objects holds the saved values and the objects made so
    /// far there.
    pub fn exit_roots(&self) -> &[u64] {
        &self.exits[..self.exit_roots]
    }

    /// The constants of every compiled trace (GC roots: traces embed them).
    pub fn constants(&self) -> impl Iterator<Item = &u64> {
        self.traces.iter().flat_map(|t| t.trace.consts.iter())
    }

    /// The tier-2 lines of `--jit-stats`.
    pub fn stats(&self) -> String {
        let mut out = self.driver.stats.report();
        // The exits that sent the most activations back to the interpreter.
        let mut exits: Vec<(u32, usize, usize)> = self
            .traces
            .iter()
            .enumerate()
            .flat_map(|(n, t)| {
                t.failures
                    .iter()
                    .enumerate()
                    .filter(|&(_, &f)| f > 0)
                    .map(move |(s, &f)| (f, n, s))
            })
            .collect();
        exits.sort_by(|a, b| b.cmp(a));
        for &(count, n, s) in exits.iter().take(5) {
            let t = &self.traces[n];
            let at = t.trace.snaps[s].frames.last().map_or(0, |f| f.pc);
            out.push_str(&format!(
                "jit: tier 2: {count} deoptimisations at trace {n} @{s} (pc {at} of its innermost activation; --jit-log names them)\n"
            ));
        }
        out
    }

    /// Runs the optimiser's passes over a recorded trace; the JIT log gets the trace
    /// as recorded and after each pass.
    fn optimise(&mut self, vm_label: &str, trace: Trace) -> Trace {
        let start = std::time::Instant::now();
        let stats = &mut self.driver.stats;
        stats.ir_ops += trace.ops.len() as u64;
        stats.guards += trace.guards() as u64;
        stats.allocations += trace.allocations() as u64;
        let mut log = self.log.as_mut();
        if let Some(log) = &mut log {
            let _ = write!(
                log,
                "[tier2] recorded {vm_label} at pc {}: {} ops, {} guards\n{}",
                trace.key.pc,
                trace.ops.len(),
                trace.guards(),
                trace.to_text()
            );
        }
        let out = metajit::opt::optimise(trace, &self.passes, |pass, t| {
            if let Some(log) = &mut log {
                let _ = write!(
                    log,
                    "[tier2] after {pass}: {} ops, {} guards\n{}",
                    t.ops.len(),
                    t.guards(),
                    t.to_text()
                );
            }
        });
        let stats = &mut self.driver.stats;
        stats.ir_ops_optimised += out.ops.len() as u64;
        stats.guards_optimised += out.guards() as u64;
        stats.allocations_optimised += out.allocations() as u64;
        let took = start.elapsed();
        stats.optimise_time += took;
        stats.compile_time += took;
        out
    }

    fn log_trace(&mut self, vm_label: &str, t: &LoopTrace, bridge_of: Option<(usize, u32)>) {
        let Some(log) = &mut self.log else { return };
        let what = match bridge_of {
            Some((parent, snap)) => format!("bridge from trace {parent} @{snap}"),
            None => "loop".into(),
        };
        let _ = writeln!(
            log,
            "[tier2] trace {} ({what}) of {vm_label} at pc {}: {} ops, {} guards, {} bytes, compiled in {} us",
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
///
/// # Safety
/// `vm` is the running VM (the context a trace gets), and no reference into it is in
/// use while the trace runs.
unsafe extern "C" fn safepoint(vm: *mut u8) {
    // SAFETY: as the contract says; the collection this may wait for needs the VM
    // borrowed mutably, as allocation does.
    let vm = &mut *(vm as *mut Vm);
    vm.heap.safepoint();
}

/// The interpreter took the back-edge `op` of `code` to `f.pc` (tracing mode):
/// counts it, and records or runs the loop's trace. Out of line and cold, so the
/// interpreter's loop carries nothing of it.
#[cold]
#[inline(never)]
pub fn on_back_edge(vm: &mut Vm, code: &Code, f: &mut Frame, op: Op) -> VmResult<ExitOutcome> {
    let Op::BackJump { counter, .. } = op else {
        unreachable!("back-edges come from back-jumps")
    };
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

/// The recording limits of this VM's options.
fn limits(vm: &Vm) -> RecordLimits {
    let options = vm.options.tier2;
    RecordLimits {
        trace_limit: options.trace_limit as usize,
        max_depth: options.inline_depth as usize,
        // SOM_JIT_STRICT: a handler that reads a traced value's bits panics, naming
        // the trace (for finding the handlers that still do).
        strict: std::env::var_os("SOM_JIT_STRICT").is_some(),
    }
}

/// How recording the root frame ended.
enum RootEnd {
    /// The back-edge to the header: the trace can close.
    Closed,
    /// The root activation of an entry trace returned this.
    Returned(metajit::record::Traced),
    /// The back-edge to the header of another loop of the root activation, which has
    /// compiled trace `n`: the trace links to it.
    Linked(u32),
    /// A bridge reached the back-edge of another loop of the root activation, which
    /// has no trace: the bridge leaves to the interpreter at that loop's header.
    AtLoop(u32),
    /// Recording stopped; the activation goes on as this says.
    Stopped(VmResult<ExitOutcome>),
}

/// Runs the root activation `f` with the recorder from its pc to the back-edge to
/// `header` (a loop), or to its return when `may_finish` (an entry trace, or a bridge,
/// which may end the activation instead of going round the loop again: a loop's
/// exit; a bridge also ends at the back-edge of another loop, linked to its trace or
/// leaving to the interpreter there). The recording executes the program as the
/// interpreter would, so however it ends the activation is at an instruction boundary
/// and goes on normally.
fn record_root(
    rec: &mut Recorder,
    vm: &mut Vm,
    code: &Code,
    f: &mut Frame,
    header: Option<u32>,
    may_finish: bool,
) -> RootEnd {
    loop {
        let pc = f.pc;
        rec.instruction(f, pc);
        let op = code.ops[pc as usize];
        f.pc += 1;
        match ops::step(rec, vm, code, f, op) {
            Step::Next => {}
            Step::Jump(t) => f.pc = t,
            Step::CondJump { taken, target } => {
                if taken {
                    f.pc = target
                }
            }
            Step::BackEdge(t) => {
                f.pc = t;
                if Some(t) == header {
                    return RootEnd::Closed;
                }
                match compiled_loop(vm, code, f, op) {
                    Some(n) => return RootEnd::Linked(n),
                    // Bridges (which may finish) leave there; a loop's own
                    // recording waits until the inner loop has a trace.
                    None if may_finish => return RootEnd::AtLoop(t),
                    None => rec.abort(AbortReason::InnerLoop),
                }
            }
            Step::Return(v) if may_finish => return RootEnd::Returned(v),
            Step::Return(v) => {
                rec.abort(AbortReason::LeftRootFrame);
                return RootEnd::Stopped(Ok(ExitOutcome::Returned(Value::from_bits(v.bits))));
            }
            Step::Exit(exit) => {
                // Sends are followed into the callee (inlined); anything else stops
                // the recording there and runs as in the interpreter.
                match perform_exit(rec, vm, code, f, exit) {
                    Ok(ExitOutcome::Continue) => {}
                    other => {
                        rec.abort(AbortReason::LeftRootFrame);
                        return RootEnd::Stopped(other);
                    }
                }
            }
        }
        if rec.aborted().is_some() {
            return RootEnd::Stopped(Ok(ExitOutcome::Continue));
        }
    }
}

/// The compiled trace of the loop whose back-edge `op` activation `f` of `code` just
/// took, if it has one.
fn compiled_loop(vm: &Vm, code: &Code, f: &Frame, op: Op) -> Option<u32> {
    let Op::BackJump { counter, .. } = op else {
        return None;
    };
    let extra = library_loop_key(vm, code, f);
    let state = if extra == 0 {
        code.loops[counter as usize].get()
    } else {
        let key = (code as *const Code as usize, counter, extra);
        vm.tier2.as_ref()?.library_loops.get(&key)?.get()
    };
    match state {
        LoopState::Compiled(n) => Some(n),
        _ => None,
    }
}

/// Records the loop at `header` of `code`, running in the activation `f` (at the
/// header), and compiles it.
fn record(
    vm: &mut Vm,
    code: &Code,
    f: &mut Frame,
    header: u32,
    extra: u64,
    cell: &LoopCell,
) -> VmResult<ExitOutcome> {
    let key = LoopKey {
        code: code as *const Code as u64,
        pc: header,
        extra,
    };
    let mut rec = Recorder::start(key, f, f.method as u64, FRAME_AUX, limits(vm));
    let end = record_root(&mut rec, vm, code, f, Some(header), false);
    let t2 = vm.tier2.as_mut().expect("tracing mode");
    let closed = match end {
        RootEnd::Closed => rec.close_loop(),
        RootEnd::Linked(n) => rec.close_link(n),
        RootEnd::AtLoop(_) => unreachable!("loop recordings do not leave at other loops"),
        RootEnd::Stopped(outcome) => {
            let why = rec.aborted().unwrap_or(AbortReason::Unsupported);
            t2.driver.aborted(cell, why);
            return outcome;
        }
        RootEnd::Returned(_) => unreachable!("loops close at their header"),
    };
    match closed {
        Ok(trace) => compiled_root(vm, code, trace, cell, Origin::Loop),
        Err(why) => t2.driver.aborted(cell, why),
    }
    Ok(ExitOutcome::Continue)
}

/// Compiles and installs a loop or entry trace recorded for `cell`.
fn compiled_root(vm: &mut Vm, code: &Code, trace: Trace, cell: &LoopCell, origin: Origin) {
    let installed = install(vm, code, trace, origin);
    let driver = &mut vm.tier2.as_mut().expect("tracing mode").driver;
    match installed {
        // `install` counted the IR.
        Some(n) => driver.compiled(cell, n, 0, 0),
        None => driver.aborted(cell, AbortReason::Unsupported),
    }
}

/// An activation of `code` begins in `f` (tracing mode): counts it, and
/// records or runs its entry trace. `Returned` when the activation is over; otherwise
/// the interpreter runs it from `f.pc` (which a trace's exit may have moved).
#[cold]
#[inline(never)]
pub fn on_entry(vm: &mut Vm, code: &Code, f: &mut Frame) -> VmResult<ExitOutcome> {
    let Some(t2) = vm.tier2.as_mut() else {
        return Ok(ExitOutcome::Continue);
    };
    match t2.driver.on_entry(&code.entry) {
        Action::Interpret => Ok(ExitOutcome::Continue),
        Action::Record => record_function(vm, code, f),
        Action::Enter(n) => run_trace(vm, code, n as usize, f),
    }
}

/// Records the entry trace of `code`, whose activation `f` is about to begin. It
/// ends where the activation returns, or at the back-edge of its first loop: linked
/// to the loop's trace, or, if the loop has none yet, leaving to the interpreter at
/// its header (that exit grows a bridge, linked once the loop has its trace).
fn record_function(vm: &mut Vm, code: &Code, f: &mut Frame) -> VmResult<ExitOutcome> {
    let key = LoopKey {
        code: code as *const Code as u64,
        pc: 0,
        extra: 0,
    };
    let mut rec = Recorder::start_function(key, f, f.method as u64, FRAME_AUX, limits(vm));
    let end = record_root(&mut rec, vm, code, f, None, true);
    let cell = &code.entry;
    let (closed, outcome) = match end {
        RootEnd::Returned(v) => (
            rec.close_function(v),
            Ok(ExitOutcome::Returned(Value::from_bits(v.bits))),
        ),
        RootEnd::Linked(n) => (rec.close_link(n), Ok(ExitOutcome::Continue)),
        RootEnd::AtLoop(pc) => (rec.close_exit(f, pc), Ok(ExitOutcome::Continue)),
        RootEnd::Stopped(outcome) => {
            let why = rec.aborted().unwrap_or(AbortReason::Unsupported);
            vm.tier2
                .as_mut()
                .expect("tracing mode")
                .driver
                .aborted(cell, why);
            return outcome;
        }
        RootEnd::Closed => unreachable!("entry traces have no header to close at"),
    };
    match closed {
        Ok(trace) => compiled_root(vm, code, trace, cell, Origin::Entry),
        Err(why) => vm
            .tier2
            .as_mut()
            .expect("tracing mode")
            .driver
            .aborted(cell, why),
    }
    outcome
}

/// What a trace given to [`install`] was recorded from.
#[derive(Clone, Copy)]
enum Origin {
    /// A loop, from its header.
    Loop,
    /// An activation, from its first instruction (an entry trace).
    Entry,
    /// The exit of (trace, snapshot): a bridge.
    Bridge(usize, u32),
}

/// Optimises and compiles `trace` and adds it to the compiled traces; answers its
/// number.
fn install(vm: &mut Vm, code: &Code, trace: Trace, origin: Origin) -> Option<u32> {
    let bridge_of = match origin {
        Origin::Bridge(parent, snap) => Some((parent, snap)),
        Origin::Loop | Origin::Entry => None,
    };
    let label = code_label(vm, code);
    let t2 = vm.tier2.as_mut().expect("tracing mode");
    let trace = t2.optimise(&label, trace);
    let compiled = match t2.backend.compile(&trace) {
        Ok(c) => c,
        Err(e) => {
            if std::env::var_os("SOM_JIT_DEBUG").is_some() {
                eprintln!("tier 2: compilation failed: {e}");
            }
            return None;
        }
    };
    t2.driver.stats.code_bytes += compiled.code_bytes as u64;
    t2.driver.stats.compile_time += compiled.compile_time;
    let exits = ExitMap::all(&trace);
    let need = exits.iter().map(|e| e.words()).max().unwrap_or(0);
    if need > t2.exits.len() {
        return None;
    }
    let n = t2.traces.len();
    let snaps = trace.snaps.len();
    let function = match origin {
        Origin::Bridge(parent, _) => t2.traces[parent].function,
        Origin::Entry => true,
        Origin::Loop => false,
    };
    let t = LoopTrace {
        function,
        bridge_count: 0,
        reach: trace_reach(&trace),
        root: bridge_of.map_or(n, |(parent, _)| t2.traces[parent].root),
        trace,
        compiled,
        exits,
        failures: vec![0; snaps],
        bridges: vec![None; snaps],
    };
    t2.log_trace(&label, &t, bridge_of);
    t2.traces.push(t);
    if let Some((parent, snap)) = bridge_of {
        t2.traces[parent].bridges[snap as usize] = Some(n);
        let root = t2.traces[n].root;
        t2.traces[root].bridge_count += 1;
        t2.driver.stats.bridges += 1;
    }
    Some(n as u32)
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

/// Room in the exit buffer beyond `trace_limit` (traces may end a little past it).
const EXIT_SLACK: usize = 1024;

/// Slots a residual call may use above the frames of a trace (one activation of the
/// largest methods; deeper sends check the stack as always).
const RESIDUAL_ROOM: usize = 1024;

/// Bridges one loop trace may grow (LuaJIT's `maxside`), and recordings one guard
/// may try (`tryside`).
const MAX_BRIDGES: u32 = 100;
const BRIDGE_TRIES: u32 = 4;

/// Runs compiled trace `n` in the activation `f` (at its loop header, or at its
/// first instruction for an entry trace): the trace, and the bridges its guards lead
/// to, until a guard without a bridge fails (or the entry trace returns).
/// Then the guard's snapshot goes back into the interpreter (see [`deoptimise`]);
/// a guard that failed `bridge_threshold` times first gets a bridge recorded from
/// there.
fn run_trace(vm: &mut Vm, code: &Code, n: usize, f: &mut Frame) -> VmResult<ExitOutcome> {
    let end = vm.stack.as_ptr_range().end as usize;
    let bridge_threshold = vm.options.tier2.bridge_threshold;
    let t2 = vm.tier2.as_mut().expect("tracing mode");
    // The traces and their deoptimisation write up to `reach` slots above the frame
    // (bridges reach no further than the snapshots they start from, plus their own).
    if f.base as usize + 8 * t2.traces[n].reach > end {
        return Ok(ExitOutcome::Continue);
    }
    let exits = t2.exits.as_mut_ptr();
    let aux = &mut f.ctx as *mut Value as *mut u64;
    let mut current = n;
    let (trace, snap) = loop {
        let t2 = vm.tier2.as_mut().expect("tracing mode");
        let func = t2.traces[current].compiled.func;
        // Derived after the last use of `vm` before the call (`t2` borrows it), so
        // the trace's calls back into the VM use a pointer no access has invalidated.
        let vm_ptr = vm as *mut Vm as *mut u8;
        // SAFETY: the trace was recorded from this loop of this activation's code (or
        // is a bridge of it, entered with the exit buffer its guard filled); it reads
        // and writes the frame window and auxiliary words the recorder saw (the
        // window has room, checked above), calls back into the VM through its
        // residual entries and the safepoint, and its exits write at most
        // `exits.len()` words. No reference into the VM is used while it runs.
        let snap = unsafe { func(vm_ptr, f.base as *mut u64, aux, exits) };
        let t2 = vm.tier2.as_mut().expect("tracing mode");
        if snap == TO_LOOP {
            current = t2.traces[current].root;
            continue;
        }
        if snap == LINKED {
            // The activation is at the header of another loop, every slot in memory.
            let next = t2.exits[0] as usize;
            f.pc = t2.traces[next].trace.key.pc;
            f.sp = t2.traces[next].trace.root_sp as usize;
            if f.base as usize + 8 * t2.traces[next].reach > end {
                return Ok(ExitOutcome::Continue);
            }
            current = next;
            continue;
        }
        if snap == FINISHED {
            return Ok(ExitOutcome::Returned(Value::from_bits(t2.exits[0])));
        }
        let snap = snap as usize;
        if let Some(b) = t2.traces[current].bridges[snap] {
            // The bridge reads the exit's virtual objects as params after its
            // saved values.
            materialise(vm, current, snap);
            current = b;
            continue;
        }
        break (current, snap);
    };
    let t2 = vm.tier2.as_mut().expect("tracing mode");
    t2.driver.stats.deopts += 1;
    let t = &mut t2.traces[trace];
    t.failures[snap] += 1;
    let root_bridges = t2.traces[t2.traces[trace].root].bridge_count;
    let t = &mut t2.traces[trace];
    let hot = bridge_threshold > 0
        && t.failures[snap] >= bridge_threshold
        && t.failures[snap] < bridge_threshold.saturating_mul(BRIDGE_TRIES + 1)
        && t.failures[snap].is_multiple_of(bridge_threshold)
        && root_bridges < MAX_BRIDGES
        && vm.pending_unwind.is_none();
    if hot {
        return record_bridge(vm, code, f, trace, snap as u32);
    }
    deoptimise(&mut Concrete, vm, code, f, trace, snap)
}

/// Puts the state of snapshot `snap` of compiled trace `trace` back into the
/// interpreter: the root frame's slots, pc, stack pointer and auxiliary words, then a
/// frame for every activation the trace had inlined, which run to their return
/// innermost first (with machine `m`: the interpreter's, or the recorder of a bridge).
/// A failed residual call leaves its unwind pending; it goes on from the activation
/// that made the call.
fn deoptimise<M: Machine>(
    m: &mut M,
    vm: &mut Vm,
    code: &Code,
    f: &mut Frame,
    trace: usize,
    snap: usize,
) -> VmResult<ExitOutcome> {
    materialise(vm, trace, snap);
    let t2 = vm.tier2.as_mut().expect("tracing mode");
    let map = &t2.traces[trace].exits[snap];
    // SAFETY: the snapshot's slots lie in the window (checked when the trace was
    // entered).
    unsafe { map.write_slots(&t2.exits, f.base as *mut u64) };
    let root = &map.frames[0];
    f.pc = root.pc;
    f.sp = root.sp as usize;
    for &(i, s) in &root.aux {
        set_aux(f, i, s.value(&t2.exits));
    }
    if map.frames.len() == 1 {
        return match vm.pending_unwind.take() {
            // The failed call was made by the root frame itself.
            Some(u) => {
                f.pc += 1;
                complete_send(m, vm, code, f, Err(u))
            }
            None => Ok(ExitOutcome::Continue),
        };
    }
    let state = map.state(&t2.exits);
    // While its callee runs, a frame's pc is past its send, as in the interpreter
    // (backtraces taken in the callee show the send).
    f.pc += 1;
    let inner = resume(m, vm, &state.frames, 1, f);
    complete_send(m, vm, code, f, inner)
}

/// Allocates the virtual objects of snapshot `snap` of compiled trace `trace`, whose
/// exit just filled the exit buffer, into the buffer words after the saved values
/// (which are roots of the collector meanwhile).
fn materialise(vm: &mut Vm, trace: usize, snap: usize) {
    let t2 = vm.tier2.as_mut().expect("tracing mode");
    let map: *const ExitMap = &t2.traces[trace].exits[snap];
    // SAFETY: `map` points into the trace's exit maps, which nothing changes while
    // the objects are allocated (allocation compiles no traces).
    let map = unsafe { &*map };
    if map.virtuals.is_empty() {
        return;
    }
    t2.exit_roots = map.words();
    let buffer = t2.exits.as_mut_ptr();
    let vm_ptr = vm as *mut Vm as *mut u8;
    // SAFETY: the buffer holds `words()` words (checked at install), the first
    // `live` saved by this snapshot's exit; the virtual objects' functions are the
    // residual allocation entries the trace would have called with the VM; no
    // reference into the VM is used until they return.
    unsafe { map.materialise(vm_ptr, buffer) };
    vm.tier2.as_mut().expect("tracing mode").exit_roots = 0;
}

/// Records a bridge from snapshot `snap` of compiled trace `parent`, which the loop
/// in activation `f` just left: deoptimises with the recorder, which sees the
/// inlined activations finish and the root frame go on to the loop header.
fn record_bridge(
    vm: &mut Vm,
    code: &Code,
    f: &mut Frame,
    parent: usize,
    snap: u32,
) -> VmResult<ExitOutcome> {
    let lim = limits(vm);
    let t2 = vm.tier2.as_mut().expect("tracing mode");
    t2.driver.stats.recordings += 1;
    let header = (!t2.traces[parent].function).then_some(t2.traces[parent].trace.key.pc);
    let mut rec = Recorder::start_bridge(&t2.traces[parent].trace, snap, f, FRAME_AUX, lim);
    match deoptimise(&mut rec, vm, code, f, parent, snap as usize) {
        Ok(ExitOutcome::Continue) => {}
        other => return other,
    }
    if rec.aborted().is_some() {
        return Ok(ExitOutcome::Continue);
    }
    let (closed, outcome) = match record_root(&mut rec, vm, code, f, header, true) {
        RootEnd::Stopped(outcome) => {
            count_abort(vm, &rec);
            return outcome;
        }
        // The activation is at the loop header; the interpreter goes on (and enters
        // the loop's trace at the next back-edge).
        RootEnd::Closed => (rec.close_bridge(), ExitOutcome::Continue),
        // At the header of another loop, which has a trace: the bridge goes on there.
        RootEnd::Linked(n) => (rec.close_link(n), ExitOutcome::Continue),
        // At the header of a loop without a trace: the interpreter goes on there.
        RootEnd::AtLoop(pc) => (rec.close_exit(f, pc), ExitOutcome::Continue),
        // The root activation returned (an entry trace's, or a loop's after its exit).
        RootEnd::Returned(v) => (
            rec.close_function(v),
            ExitOutcome::Returned(Value::from_bits(v.bits)),
        ),
    };
    match closed {
        Ok(bridge) => {
            install(vm, code, bridge, Origin::Bridge(parent, snap));
        }
        Err(why) => {
            let stats = &mut vm.tier2.as_mut().expect("tracing mode").driver.stats;
            *stats.aborts.entry(why).or_default() += 1;
        }
    }
    Ok(outcome)
}

/// Counts why a bridge recording stopped.
fn count_abort(vm: &mut Vm, rec: &Recorder) {
    let why = rec.aborted().unwrap_or(AbortReason::Unsupported);
    let stats = &mut vm.tier2.as_mut().expect("tracing mode").driver.stats;
    *stats.aborts.entry(why).or_default() += 1;
}

/// Rebuilds inlined frame `k` of a snapshot above its caller and runs it to its
/// return (first rebuilding and finishing frame `k + 1`, if any).
fn resume<M: Machine>(
    m: &mut M,
    vm: &mut Vm,
    frames: &[FrameState],
    k: usize,
    caller: &mut Frame,
) -> VmResult<M::W> {
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
    for &(i, v) in &fs.aux {
        set_aux(&mut f, i, v);
    }
    m.attach_frame(&mut f, k);
    vm.depth += 1;
    vm.current_frame = &f;
    let outcome = if k + 1 < frames.len() {
        f.pc += 1;
        let inner = resume(m, vm, frames, k + 1, &mut f);
        complete_send(m, vm, code, &mut f, inner)
    } else {
        // The innermost frame resumes at the guard's instruction, or, if a residual
        // call failed there, goes on with its unwind.
        match vm.pending_unwind.take() {
            Some(u) => {
                f.pc += 1;
                complete_send(m, vm, code, &mut f, Err(u))
            }
            None => Ok(ExitOutcome::Continue),
        }
    };
    let r = match outcome {
        Ok(ExitOutcome::Returned(v)) => Ok(m.konst(v.bits())),
        Ok(_) => execute(m, vm, code, &mut f),
        Err(e) => Err(e),
    };
    vm.depth -= 1;
    vm.current_frame = caller;
    m.leave_frame();
    leave_rebuilt(m, code, &mut f, r)
}

/// Finishes the send that frame `f` (of `code`, its pc just past the send) was making
/// when a trace left, with the callee's outcome `r`: the receiver and arguments make
/// way for the result and the frame continues after the send (or restarts, or
/// unwinds).
fn complete_send<M: Machine>(
    m: &mut M,
    vm: &mut Vm,
    code: &Code,
    f: &mut Frame,
    r: VmResult<M::W>,
) -> VmResult<ExitOutcome> {
    match r {
        Ok(v) => {
            let argc = send_argc(code, f.pc - 1);
            m.drop_n(f, argc + 1);
            m.push(f, v);
            Ok(ExitOutcome::Continue)
        }
        Err(u) => {
            m.cannot_trace(AbortReason::Unsupported);
            after_send(vm, code, f, Err(u))
        }
    }
}

/// The argument count of the send at `pc` (a send or an operation with a send site).
fn send_argc(code: &Code, pc: u32) -> usize {
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

/// Sets auxiliary word `i` of a frame.
fn set_aux(f: &mut Frame, i: u16, v: u64) {
    let v = Value::from_bits(v);
    match i as usize {
        AUX_CTX => f.ctx = v,
        AUX_OUTER => f.outer = v,
        AUX_CLOSURE => f.closure = v,
        _ => unreachable!("SOM frames have three auxiliary words"),
    }
}
