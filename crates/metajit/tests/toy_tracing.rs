//! Tier 2 on a second, tiny client language: a stack language with calls, written
//! once as handlers generic over `Machine`, interpreted with `Concrete`, traced with
//! the `Recorder` (calls inlined), compiled by the trace backend, and resumed in the
//! interpreter when a guard fails, with every inlined frame rebuilt from the snapshot.
//! Nothing here is SOM: this is the proof that tier 2 lives in `metajit`.

use metajit::deopt::exit_state;
use metajit::driver::{Action, Driver, LoopCell, TraceOptions};
use metajit::ir::{LoopKey, Trace};
use metajit::lower::{Compiled, LowerOptions, TraceBackend};
use metajit::record::{AbortReason, RecordLimits, Recorder};
use metajit::{interpreter_definition, BinOp, Cmp, Concrete, Machine, Step};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    /// Push local `n`.
    Load(usize),
    /// Pop into local `n`.
    Store(usize),
    Const(i64),
    /// Pop two, push the sum; saturates at i64::MAX on overflow.
    Add,
    /// Pop two, push 1 if the first is less than the second, else 0.
    Less,
    /// Pop; jump to the target if it was zero.
    JumpIfZero(u32),
    /// Loop back-edge to the target; the operand numbers the loop.
    Back(u32, usize),
    /// Call function `f` with the top `argc` words as its first locals.
    Call(usize, usize),
    /// Return the top of the stack.
    Ret,
}

struct Function {
    code: Vec<Op>,
    /// Locals beyond the arguments.
    locals: usize,
    args: usize,
}

mod toy_frame;
use toy_frame::Frame;

type ToyStep<M> = Step<<M as Machine>::W, (usize, usize)>;

interpreter_definition! {
    #[threaded]
    fn load<M: Machine>(m: &mut M, f: &mut Frame, n: usize) -> ToyStep<M> {
        let v = m.slot(f, n);
        m.push(f, v);
        Step::Next
    }
    #[threaded]
    fn store<M: Machine>(m: &mut M, f: &mut Frame, n: usize) -> ToyStep<M> {
        let v = m.pop(f);
        m.set_slot(f, n, v);
        Step::Next
    }
    #[threaded]
    fn constant<M: Machine>(m: &mut M, f: &mut Frame, c: i64) -> ToyStep<M> {
        let v = m.konst(c as u64);
        m.push(f, v);
        Step::Next
    }
    #[threaded]
    fn add<M: Machine>(m: &mut M, f: &mut Frame) -> ToyStep<M> {
        let b = m.peek(f, 0);
        let a = m.peek(f, 1);
        let r = match m.add_ovf(a, b) {
            Some(r) => r,
            None => m.konst(i64::MAX as u64),
        };
        m.drop_n(f, 2);
        m.push(f, r);
        Step::Next
    }
    #[threaded]
    fn less<M: Machine>(m: &mut M, f: &mut Frame) -> ToyStep<M> {
        let b = m.pop(f);
        let a = m.pop(f);
        let r = m.flag(Cmp::Lt, a, b);
        m.push(f, r);
        Step::Next
    }
    #[control]
    fn jump_if_zero<M: Machine>(m: &mut M, f: &mut Frame, target: u32) -> ToyStep<M> {
        let v = m.peek(f, 0);
        let zero = m.konst(0);
        let taken = m.cmp(Cmp::Eq, v, zero);
        m.drop_n(f, 1);
        Step::CondJump { taken, target }
    }
    #[control]
    fn ret<M: Machine>(m: &mut M, f: &mut Frame) -> ToyStep<M> {
        let v = m.pop(f);
        Step::Return(v)
    }
}

/// The toy VM: its program, the tier-2 driver and backend, compiled traces.
struct Vm {
    funcs: Vec<Function>,
    driver: Driver,
    backend: TraceBackend,
    traces: Vec<(Trace, Compiled)>,
    /// One state word per loop (`Op::Back`'s operand).
    cells: Vec<LoopCell>,
    /// `Some(key)` while recording the loop `key`, at activation depth `depth`.
    recording: Option<(LoopKey, usize)>,
    depth: usize,
    exits: Vec<u64>,
    /// Stops by snapshot: how the trace was left.
    deopts: u64,
    /// Frames rebuilt by deoptimisation (inlined frames only).
    rebuilt_frames: u64,
}

/// Why `execute` stopped early.
#[derive(Debug)]
enum Stop {
    /// The recording reached its loop header again.
    Closed,
}

fn key(func: usize, pc: u32) -> LoopKey {
    LoopKey {
        code: func as u64 + 1,
        pc,
        extra: 0,
    }
}

impl Vm {
    fn new(funcs: Vec<Function>, options: TraceOptions, deopt_every: Option<*mut u64>) -> Vm {
        let lower = LowerOptions {
            safepoint: None,
            deopt_every: deopt_every.map(|c| (c, options.deopt_every as u64)),
        };
        Vm {
            funcs,
            driver: Driver::new(options),
            backend: TraceBackend::new(lower).unwrap(),
            traces: Vec::new(),
            cells: (0..8).map(|_| LoopCell::default()).collect(),
            recording: None,
            depth: 0,
            exits: vec![0; 256],
            deopts: 0,
            rebuilt_frames: 0,
        }
    }

    /// Runs `func` on `f` from its pc to its return.
    fn execute<M: Machine>(&mut self, m: &mut M, func: usize, f: &mut Frame) -> Result<M::W, Stop> {
        loop {
            let pc = f.pc;
            m.instruction(f, pc);
            let op = self.funcs[func].code[pc as usize];
            f.pc += 1;
            let step = match op {
                Op::Load(n) => load(m, f, n),
                Op::Store(n) => store(m, f, n),
                Op::Const(c) => constant(m, f, c),
                Op::Add => add(m, f),
                Op::Less => less(m, f),
                Op::JumpIfZero(t) => jump_if_zero(m, f, t),
                Op::Back(t, _) => Step::BackEdge(t),
                Op::Call(g, argc) => Step::Exit((g, argc)),
                Op::Ret => ret(m, f),
            };
            match step {
                Step::Next => {}
                Step::Jump(t) => f.pc = t,
                Step::CondJump { taken, target } => {
                    if taken {
                        f.pc = target
                    }
                }
                Step::BackEdge(t) => {
                    f.pc = t;
                    if let Some((k, depth)) = self.recording {
                        if k == key(func, t) && depth == self.depth {
                            return Err(Stop::Closed);
                        }
                        continue;
                    }
                    let Op::Back(_, cell) = op else {
                        unreachable!()
                    };
                    match self.driver.on_back_edge(&self.cells[cell]) {
                        Action::Interpret => {}
                        Action::Record => self.record(func, f, t, cell),
                        Action::Enter(n) => self.run_trace(n as usize, f),
                    }
                }
                Step::Return(v) => return Ok(v),
                Step::Exit((g, argc)) => {
                    let v = self.call(m, g, argc, f)?;
                    m.drop_n(f, argc);
                    m.push(f, v);
                }
            }
        }
    }

    /// Calls `g` with the top `argc` words of `caller` as its arguments.
    fn call<M: Machine>(
        &mut self,
        m: &mut M,
        g: usize,
        argc: usize,
        caller: &mut Frame,
    ) -> Result<M::W, Stop> {
        let mut callee = Frame {
            // SAFETY: the stack has room for every frame the tests create.
            base: unsafe { caller.base.add(caller.sp - argc) },
            sp: argc,
            pc: 0,
            aux: [0],
        };
        m.enter_frame(&mut callee, g as u64 + 1, 0, 1);
        let id = m.konst(g as u64);
        m.set_aux(&mut callee, 0, id);
        let zero = m.konst(0);
        for _ in 0..self.funcs[g].locals {
            m.push(&mut callee, zero);
        }
        self.depth += 1;
        let r = self.execute(m, g, &mut callee);
        self.depth -= 1;
        m.leave_frame();
        r
    }

    /// Records the loop at `header` of `func`, starting in its activation `f`.
    fn record(&mut self, func: usize, f: &mut Frame, header: u32, cell: usize) {
        let k = key(func, header);
        let limits = RecordLimits {
            trace_limit: self.driver.options.trace_limit as usize,
            max_depth: self.driver.options.inline_depth as usize,
            strict: true,
        };
        let mut rec = Recorder::start(k, f, 0, 1, limits);
        self.recording = Some((k, self.depth));
        let r = self.execute(&mut rec, func, f);
        self.recording = None;
        assert!(matches!(r, Err(Stop::Closed)), "the tests' loops close");
        match rec.close_loop() {
            Ok(trace) => {
                let compiled = self.backend.compile(&trace).unwrap();
                let (ops, guards) = (trace.ops.len(), trace.guards());
                self.traces.push((trace, compiled));
                let n = self.traces.len() as u32 - 1;
                self.driver.compiled(&self.cells[cell], n, ops, guards);
            }
            Err(why) => self.driver.aborted(&self.cells[cell], why),
        }
    }

    /// Runs compiled trace `n` in the activation `f` (at the loop header) until a guard
    /// fails, then rebuilds the interpreter state from the guard's snapshot.
    fn run_trace(&mut self, n: usize, f: &mut Frame) {
        let (trace, compiled) = &self.traces[n];
        // SAFETY: the trace was recorded from this loop, whose frame `f` is; it reads and
        // writes the slots and auxiliary words the recorder saw, and the exit buffer
        // holds the largest snapshot.
        let snap = unsafe {
            (compiled.func)(
                std::ptr::null_mut(),
                f.base,
                f.aux.as_mut_ptr(),
                self.exits.as_mut_ptr(),
            )
        };
        self.deopts += 1;
        let state = exit_state(trace, snap as u32, &self.exits);
        // SAFETY: the snapshot's slots lie in this activation's window of the stack.
        unsafe { state.write_slots(f.base) };
        let root = &state.frames[0];
        f.pc = root.pc;
        f.sp = root.sp as usize;
        for &(i, v) in &root.aux {
            f.aux[i as usize] = v;
        }
        if state.frames.len() > 1 {
            self.resume(&state.frames, 1, f);
        }
    }

    /// Rebuilds inlined frame `k` of a snapshot over its caller `caller` and runs it to
    /// its return (innermost first: frame `k` first resumes `k + 1`), then finishes the
    /// caller's call instruction with the result.
    fn resume(&mut self, frames: &[metajit::deopt::FrameState], k: usize, caller: &mut Frame) {
        let fs = &frames[k];
        let mut f = Frame {
            // SAFETY: snapshot bases are slots of the root frame's window.
            base: unsafe { caller.base.offset((fs.base - frames[k - 1].base) as isize) },
            sp: fs.sp as usize,
            pc: fs.pc,
            aux: [0],
        };
        for &(i, v) in &fs.aux {
            f.aux[i as usize] = v;
        }
        self.rebuilt_frames += 1;
        let func = f.aux[0] as usize;
        if k + 1 < frames.len() {
            self.resume(frames, k + 1, &mut f);
        }
        self.depth += 1;
        let v = self.execute(&mut Concrete, func, &mut f).unwrap();
        self.depth -= 1;
        // The caller's call instruction completes.
        let Op::Call(_, argc) = self.funcs[caller.aux[0] as usize].code[caller.pc as usize] else {
            panic!("an inlined frame's caller is at its call");
        };
        caller.sp -= argc;
        Concrete.push(caller, v);
        caller.pc += 1;
    }

    /// Runs `main` (function 0) with `args` and answers its result.
    fn run(&mut self, args: &[u64]) -> u64 {
        let mut stack = vec![0u64; 1024];
        stack[..args.len()].copy_from_slice(args);
        let mut f = Frame {
            base: stack.as_mut_ptr(),
            sp: args.len() + self.funcs[0].locals,
            pc: 0,
            aux: [0],
        };
        self.execute(&mut Concrete, 0, &mut f).unwrap()
    }
}

/// main(n): s := 0. i := 0. [i < n] whileTrue: [s := add3(s, i, 1). i := i + 1]. ^ s
/// where add3(a, b, c) = plus(a, b) + c and plus(a, b) = a + b: two levels of calls.
fn program() -> Vec<Function> {
    let main = Function {
        args: 1,
        locals: 2, // 1: s, 2: i
        code: vec![
            Op::Load(2),        // 0: header
            Op::Load(0),        // 1
            Op::Less,           // 2
            Op::JumpIfZero(14), // 3
            Op::Load(1),        // 4
            Op::Load(2),        // 5
            Op::Const(1),       // 6
            Op::Call(1, 3),     // 7
            Op::Store(1),       // 8
            Op::Load(2),        // 9
            Op::Const(1),       // 10
            Op::Add,            // 11
            Op::Store(2),       // 12
            Op::Back(0, 0),     // 13
            Op::Load(1),        // 14
            Op::Ret,            // 15
        ],
    };
    let add3 = Function {
        args: 3,
        locals: 0,
        code: vec![
            Op::Load(0),
            Op::Load(1),
            Op::Call(2, 2),
            Op::Load(2),
            Op::Add,
            Op::Ret,
        ],
    };
    let plus = Function {
        args: 2,
        locals: 0,
        code: vec![Op::Load(0), Op::Load(1), Op::Add, Op::Ret],
    };
    vec![main, add3, plus]
}

fn expected(n: i64) -> u64 {
    (n * (n - 1) / 2 + n) as u64
}

fn options(threshold: u32) -> TraceOptions {
    TraceOptions {
        threshold,
        ..TraceOptions::default()
    }
}

#[test]
fn the_interpreter_computes_the_reference_result() {
    let mut vm = Vm::new(program(), options(u32::MAX), None);
    assert_eq!(vm.run(&[100]), expected(100));
    assert!(vm.traces.is_empty());
    assert_eq!(HANDLERS.len(), 7);
}

#[test]
fn a_hot_loop_is_traced_through_two_calls_compiled_and_left_at_its_exit() {
    let mut vm = Vm::new(program(), options(10), None);
    assert_eq!(vm.run(&[1000]), expected(1000));
    assert_eq!(vm.traces.len(), 1, "one trace for the one loop");
    let (trace, compiled) = &vm.traces[0];
    let text = trace.to_text();
    // The calls are inlined: no call instructions, and snapshots inside add3 and plus
    // carry three frames.
    assert!(!text.contains("call "), "{text}");
    assert!(trace.snaps.iter().any(|s| s.frames.len() == 3), "{text}");
    assert!(compiled.code_bytes > 0);
    // The loop ran in compiled code and left it once, through the loop-exit guard.
    assert_eq!(vm.driver.stats.trace_entries, 1);
    assert_eq!(vm.deopts, 1);
    assert_eq!(vm.rebuilt_frames, 0, "the loop exit is in main");
}

#[test]
fn the_recorded_trace_has_the_expected_shape() {
    let mut vm = Vm::new(program(), options(3), None);
    vm.run(&[10]);
    let text = vm.traces[0].0.to_text();
    let body: Vec<&str> = text.lines().filter(|l| l.starts_with("  ")).collect();
    let expected = [
        "  loop",
        "  poll",
        "  %2 = sload 2",
        "  %3 = sload 0",
        "  %4 = flag.lt %2, %3",
        "  guard.eq %4, #0, false @0",
        "  %6 = sload 1",
        "  %7 = addovf %6, %2 @1",
        "  %8 = addovf %7, #1 @2",
        "  %9 = addovf %2, #1 @3",
        "  sstore 1, %8",
        "  sstore 2, %9",
        "  jump",
    ];
    assert_eq!(body, expected, "{text}");
    // The guard in `plus` resumes there, with main at its call of add3 and add3 at
    // its call of plus, each with its arguments on the stack.
    let snap1 = text.lines().find(|l| l.starts_with("snapshot @1")).unwrap();
    assert_eq!(
        snap1,
        "snapshot @1: [code=0x1 entry=0 pc=7 base=0 sp=6 aux=] \
         [code=0x2 entry=0 pc=2 base=3 sp=5 aux=0:#1] \
         [code=0x3 entry=0 pc=2 base=6 sp=4 aux=0:#2] slots=3:%6,4:%2,5:#1,6:%6,7:%2,8:%6,9:%2"
    );
}

#[test]
fn a_guard_failing_in_an_inlined_callee_rebuilds_every_frame() {
    // The sum saturates: the overflow guard in `plus` fails with three frames live.
    let mut vm = Vm::new(program(), options(5), None);
    let big = i64::MAX as u64 - 200;
    // main2(n, s0): main with the sum starting at `s0` (its second argument).
    let mut funcs = program();
    funcs[0].args = 2;
    funcs[0].locals = 1;
    vm.funcs = funcs;
    let r = vm.run(&[1000, big]);
    assert_eq!(r, i64::MAX as u64, "the sum saturates");
    assert!(
        vm.rebuilt_frames >= 2,
        "plus and add3 were rebuilt: {}",
        vm.rebuilt_frames
    );
}

#[test]
fn every_program_agrees_under_deopt_every() {
    for every in [1u32, 2, 3, 7] {
        let mut counter = 0u64;
        let mut vm = Vm::new(
            program(),
            TraceOptions {
                threshold: 2,
                deopt_every: every,
                ..TraceOptions::default()
            },
            Some(&mut counter),
        );
        assert_eq!(vm.run(&[300]), expected(300), "deopt_every={every}");
        assert!(vm.deopts > 10, "deopt_every={every}: {} exits", vm.deopts);
    }
}

#[test]
fn a_trace_limit_aborts_and_backs_off() {
    let mut vm = Vm::new(
        program(),
        TraceOptions {
            threshold: 2,
            trace_limit: 5,
            ..TraceOptions::default()
        },
        None,
    );
    assert_eq!(vm.run(&[5000]), expected(5000));
    assert!(vm.traces.is_empty());
    let aborts = vm.driver.stats.aborts[&AbortReason::TooLong];
    assert_eq!(
        aborts,
        metajit::driver::MAX_ABORTS as u64,
        "backs off, then blacklists"
    );
    assert_eq!(vm.driver.stats.blacklisted, 1);
}

#[test]
fn inlining_deeper_than_the_limit_aborts() {
    let mut vm = Vm::new(
        program(),
        TraceOptions {
            threshold: 2,
            inline_depth: 2,
            ..TraceOptions::default()
        },
        None,
    );
    assert_eq!(vm.run(&[100]), expected(100));
    assert!(vm.driver.stats.aborts[&AbortReason::TooDeep] >= 1);
}

#[test]
fn reading_the_bits_of_a_traced_value_is_a_loud_error_in_strict_mode() {
    let mut stack = [5u64, 0, 0, 0];
    let mut f = Frame {
        base: stack.as_mut_ptr(),
        sp: 1,
        pc: 0,
        aux: [0],
    };
    let limits = RecordLimits {
        trace_limit: 100,
        max_depth: 4,
        strict: false,
    };
    let mut rec = Recorder::start(key(0, 0), &mut f, 0, 1, limits);
    rec.instruction(&mut f, 0);
    let v = rec.slot(&mut f, 0);
    assert_eq!(rec.bits(v), 5, "answers the concrete value");
    let k = rec.konst(7);
    assert_eq!(rec.bits(k), 7, "constants are green");
    assert_eq!(rec.aborted(), Some(AbortReason::ConcreteLeak));
    let strict = std::panic::catch_unwind(|| {
        let mut stack = [5u64, 0];
        let mut f = Frame {
            base: stack.as_mut_ptr(),
            sp: 1,
            pc: 0,
            aux: [0],
        };
        let mut rec = Recorder::start(
            key(0, 0),
            &mut f,
            0,
            1,
            RecordLimits {
                strict: true,
                ..limits
            },
        );
        let v = rec.slot(&mut f, 0);
        rec.bits(v)
    });
    assert!(strict.is_err(), "strict mode fails loudly");
    let _ = BinOp::Add;
}
