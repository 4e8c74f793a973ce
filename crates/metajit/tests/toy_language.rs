//! A second, tiny client of the framework: a stack language with five instructions,
//! written once as handlers generic over `Machine`, run by an interpreter loop with the
//! `Concrete` machine and compiled by the shallow compiler. Both must agree; this is the
//! proof that nothing in `metajit` is specific to SOM.

use metajit::backend::Tier1Backend;
use metajit::emit::{Emit, FrameLayout, PathEnd};
use metajit::shallow::{status, EntryFn, Flow, Lowering, MethodShape};
use metajit::{interpreter_definition, BinOp, Cmp, Concrete, Machine, Step};

#[derive(Debug, Clone, Copy)]
enum Op {
    /// Push local `n`.
    Load(usize),
    /// Pop into local `n`.
    Store(usize),
    /// Push a constant.
    Const(u64),
    /// Pop two, push their sum.
    Add,
    /// Pop; jump to the target if it was zero.
    JumpIfZero(u32),
    /// Loop back-edge to the target.
    Back(u32, usize),
    /// Return local 0.
    Ret,
}

mod toy_frame;
use toy_frame::Frame;

type ToyStep<M> = Step<<M as Machine>::W, ()>;

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
    fn constant<M: Machine>(m: &mut M, f: &mut Frame, c: u64) -> ToyStep<M> {
        let v = m.konst(c);
        m.push(f, v);
        Step::Next
    }
    #[threaded]
    fn add<M: Machine>(m: &mut M, f: &mut Frame) -> ToyStep<M> {
        let b = m.pop(f);
        let a = m.pop(f);
        let r = m.bin(BinOp::Add, a, b);
        m.push(f, r);
        Step::Next
    }
    #[control]
    fn jump_if_zero<M: Machine>(m: &mut M, f: &mut Frame, target: u32) -> ToyStep<M> {
        let v = m.pop(f);
        let zero = m.konst(0);
        let taken = m.cmp(Cmp::Eq, v, zero);
        Step::CondJump { taken, target }
    }
    #[control]
    fn ret<M: Machine>(m: &mut M, f: &mut Frame) -> ToyStep<M> {
        let v = m.slot(f, 0);
        Step::Return(v)
    }
}

fn step<M: Machine>(m: &mut M, f: &mut Frame, op: Op) -> ToyStep<M> {
    match op {
        Op::Load(n) => load(m, f, n),
        Op::Store(n) => store(m, f, n),
        Op::Const(c) => constant(m, f, c),
        Op::Add => add(m, f),
        Op::JumpIfZero(t) => jump_if_zero(m, f, t),
        Op::Back(t, _) => Step::BackEdge(t),
        Op::Ret => ret(m, f),
    }
}

fn interpret(code: &[Op], f: &mut Frame) -> u64 {
    loop {
        let op = code[f.pc as usize];
        f.pc += 1;
        match step(&mut Concrete, f, op) {
            Step::Next => {}
            Step::Jump(t) | Step::BackEdge(t) => f.pc = t,
            Step::CondJump { taken, target } => {
                if taken {
                    f.pc = target
                }
            }
            Step::Return(v) => return v,
            Step::Exit(()) => unreachable!(),
        }
    }
}

/// The one concrete entry of the toy language: runs the instruction and answers a status
/// (the result of a return goes to the context word).
///
/// # Safety
/// `ctx` points to a writable `u64`, `frame` to a `Frame` over live slots, and `instr`
/// to an instruction of the toy program.
unsafe extern "C" fn entry(
    ctx: *mut u8,
    frame: *mut u8,
    _code: *const u8,
    instr: *const u8,
) -> u64 {
    let f = &mut *(frame as *mut Frame);
    match step(&mut Concrete, f, *(instr as *const Op)) {
        Step::Next => status::NEXT,
        Step::CondJump { taken, .. } => taken as u64,
        Step::Return(v) => {
            *(ctx as *mut u64) = v;
            status::RETURN
        }
        _ => status::UNWIND,
    }
}

fn lower(
    code: &[Op],
    counters: &mut [u32],
    switch_at: Option<u32>,
    specialise: bool,
) -> Vec<Lowering> {
    code.iter()
        .enumerate()
        .map(|(pc, op)| {
            let instr = op as *const Op as *const u8;
            let specialised = |flow| Lowering::Specialised {
                emit: specialise_handler,
                entry: entry as EntryFn,
                instr,
                sp: STACK_BEFORE[pc],
                flow,
            };
            match *op {
                Op::Back(target, c) => Lowering::BackEdge {
                    target,
                    counter: &mut counters[c],
                    switch_at,
                },
                Op::JumpIfZero(target) if specialise => specialised(Flow::Branch(target)),
                Op::Ret if specialise => specialised(Flow::Return),
                _ if specialise => specialised(Flow::Next),
                Op::JumpIfZero(target) => Lowering::Branch {
                    entry: entry as EntryFn,
                    instr,
                    target,
                },
                Op::Ret => Lowering::Return {
                    entry: entry as EntryFn,
                    instr,
                },
                _ => Lowering::Call {
                    entry: entry as EntryFn,
                    instr,
                    may_exit: false,
                },
            }
        })
        .collect()
}

/// The stack pointer before each instruction of `sum_program` (two locals).
const STACK_BEFORE: [usize; 12] = [2, 3, 2, 3, 4, 3, 2, 3, 4, 3, 2, 2];

/// sum := 0. [n = 0] whileFalse: [sum := sum + n. n := n - 1]. ^ sum
fn sum_program() -> Vec<Op> {
    vec![
        Op::Load(1),         // 0
        Op::JumpIfZero(11),  // 1
        Op::Load(0),         // 2
        Op::Load(1),         // 3
        Op::Add,             // 4
        Op::Store(0),        // 5
        Op::Load(1),         // 6
        Op::Const(u64::MAX), // 7: -1
        Op::Add,             // 8
        Op::Store(1),        // 9
        Op::Back(0, 0),      // 10
        Op::Ret,             // 11
    ]
}

/// A frame over fresh slots (leaked: tests are short) with local 1 = n.
fn frame(n: u64) -> Frame {
    let slots: &'static mut [u64; 16] = Box::leak(Box::new([0; 16]));
    slots[1] = n;
    Frame {
        base: slots.as_mut_ptr(),
        sp: 2,
        pc: 0,
        aux: [0],
    }
}

/// The toy method `instrs` as the shallow compiler sees it.
fn shape(instrs: &[Lowering], stub_handlers: bool) -> MethodShape<'_> {
    MethodShape {
        ctx: std::ptr::null_mut(),
        layout: LAYOUT,
        code: std::ptr::null(),
        instrs,
        stub_handlers,
        pc_offset: std::mem::offset_of!(Frame, pc) as i32,
        // The context is the word that receives the result.
        result_offset: 0,
    }
}

const LAYOUT: FrameLayout = FrameLayout {
    base_offset: std::mem::offset_of!(Frame, base) as i32,
    sp_offset: std::mem::offset_of!(Frame, sp) as i32,
    aux_offset: std::mem::offset_of!(Frame, aux) as i32,
};

/// Emits one path of an instruction (the handlers run with `Emit`).
fn specialise_handler(m: &mut Emit, _ctx: *mut u8, _code: *const u8, instr: *const u8) -> PathEnd {
    // A frame for the signature only: `Emit` keeps the frame in the generated code.
    let mut dummy = Frame {
        base: std::ptr::null_mut(),
        sp: 0,
        pc: 0,
        aux: [0],
    };
    // SAFETY: the lowering passes instructions of the toy program.
    match step(m, &mut dummy, unsafe { *(instr as *const Op) }) {
        Step::Next => PathEnd::Next,
        Step::CondJump { taken, .. } => PathEnd::Branch { taken },
        Step::Return(v) => PathEnd::Return(v),
        _ => PathEnd::Slow,
    }
}

#[test]
fn interpreter_and_threaded_code_agree() {
    let code = sum_program();
    assert_eq!(HANDLERS.len(), 6);

    let interpreted = interpret(&code, &mut frame(100));
    assert_eq!(interpreted, 5050);

    let mut counters = [0u32; 1];
    let instrs = lower(&code, &mut counters, None, false);
    let mut backend = Tier1Backend::new().unwrap();
    let shape = shape(&instrs, false);
    let compiled = backend.compile(&shape).unwrap();
    let mut result = 0u64;
    let mut f = frame(100);
    // SAFETY: the compiled code calls `entry` with these pointers.
    let st = unsafe {
        compiled(
            &mut result as *mut u64 as *mut u8,
            &mut f as *mut Frame as *mut u8,
        )
    };
    assert_eq!(st, status::RETURN);
    assert_eq!(result, 5050);
    assert_eq!(counters[0], 100, "the back-edge counter counts iterations");
    assert_eq!(backend.stats.methods, 1);

    // The same code through stub handlers.
    let shape = self::shape(&instrs, true);
    let compiled = backend.compile(&shape).unwrap();
    let mut f = frame(10);
    // SAFETY: as above; the stub handlers call the same `entry` with the same pointers.
    let st = unsafe {
        compiled(
            &mut result as *mut u64 as *mut u8,
            &mut f as *mut Frame as *mut u8,
        )
    };
    assert_eq!((st, result), (status::RETURN, 55));
}

#[test]
fn a_hot_back_edge_leaves_the_activation_at_the_loop_header() {
    let code = sum_program();
    let mut counters = [0u32; 1];
    let instrs = lower(&code, &mut counters, Some(30), false);
    let mut backend = Tier1Backend::new().unwrap();
    let shape = shape(&instrs, false);
    let compiled = backend.compile(&shape).unwrap();
    let mut result = 0u64;
    let mut f = frame(100);
    // SAFETY: the compiled code calls `entry` with these pointers, and the
    // instructions and back-edge counter it was compiled against (`code`, `counters`)
    // are still alive.
    let st = unsafe {
        compiled(
            &mut result as *mut u64 as *mut u8,
            &mut f as *mut Frame as *mut u8,
        )
    };
    assert_eq!(st, status::SWITCH);
    assert_eq!(f.pc, 0, "resumes at the loop header");
    assert_eq!(counters[0], 30);
    // Another engine (here the interpreter) finishes the same activation.
    assert_eq!(interpret(&code, &mut f), 5050);
}

#[test]
fn handlers_are_compiled_into_the_method_by_running_them_with_emit() {
    let code = sum_program();
    let mut counters = [0u32; 1];
    let instrs = lower(&code, &mut counters, None, true);
    assert!(matches!(instrs[0], Lowering::Specialised { .. }));
    assert!(matches!(
        instrs[1],
        Lowering::Specialised {
            flow: Flow::Branch(11),
            ..
        }
    ));
    let mut backend = Tier1Backend::new().unwrap();
    let shape = shape(&instrs, false);
    let compiled = backend.compile(&shape).unwrap();
    let mut result = 0u64;
    let mut f = frame(1000);
    // SAFETY: the compiled code reads the frame and writes `result`.
    let st = unsafe {
        compiled(
            &mut result as *mut u64 as *mut u8,
            &mut f as *mut Frame as *mut u8,
        )
    };
    assert_eq!((st, result), (status::RETURN, 500500));
    assert_eq!(counters[0], 1000);
}
