//! The Cranelift backend of tier 1: turns a [`MethodShape`] into native code.
//!
//! One block per reachable instruction; calls to handler entries are indirect calls
//! through constant addresses (the entries are ordinary Rust functions); statuses other
//! than "next" go to a shared exit block that either restarts the method or returns the
//! status. Cranelift runs with `opt_level = none` and no IR verifier outside debug
//! builds: tier 1 must compile cheaply.

use crate::emit::{explore, PathEnd};
use crate::shallow::{
    status, stub_call, CacheCase, CompiledFn, EntryFn, Flow, Lowering, MethodShape, ReceiverKey,
};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::SigRef;
use cranelift_codegen::ir::{
    types, AbiParam, Block, InstBuilder, MemFlagsData, Signature, UserFuncName, Value,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Module};
use std::time::{Duration, Instant};

/// Counters describing what the backend compiled.
#[derive(Debug, Default, Clone, Copy)]
pub struct BackendStats {
    pub methods: u64,
    pub instructions: u64,
    pub code_bytes: u64,
    pub compile_time: Duration,
}

/// Owns the JIT module (and so the executable memory) of all compiled methods.
pub struct Tier1Backend {
    module: JITModule,
    ctx: Context,
    builder_ctx: FunctionBuilderContext,
    pub stats: BackendStats,
}

/// A JIT module for the host at Cranelift's `opt_level` (shared by both tiers'
/// backends), with the IR verifier only where the tests run (debug builds).
pub(crate) fn jit_module(opt_level: &str) -> Result<JITModule, String> {
    let mut flags = settings::builder();
    let mut set = |k: &str, v: &str| {
        flags
            .set(k, v)
            .map_err(|e| format!("cranelift flag {k}: {e}"))
    };
    set("use_colocated_libcalls", "false")?;
    set("is_pic", "false")?;
    set("opt_level", opt_level)?;
    // The register allocator stays the default (backtracking): measured on Richards,
    // the single-pass one compiles tier 1 30% faster (17 against 24 µs per bytecode)
    // but its code runs 16% slower, and steady state dominates even short runs.
    set("regalloc_algorithm", "backtracking")?;
    set(
        "enable_verifier",
        if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        },
    )?;
    let isa = cranelift_native::builder()
        .map_err(|e| format!("unsupported host: {e}"))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| format!("cranelift: {e}"))?;
    Ok(JITModule::new(JITBuilder::with_isa(
        isa,
        default_libcall_names(),
    )))
}

/// Compiles the function built in `ctx` as `id`, makes it executable, and answers
/// its address and code size (shared by both tiers' backends).
pub(crate) fn define(
    module: &mut JITModule,
    ctx: &mut Context,
    id: cranelift_module::FuncId,
) -> Result<(*const u8, usize), String> {
    module
        .define_function(id, ctx)
        .map_err(|e| format!("{e:?}"))?;
    let size = ctx
        .compiled_code()
        .map_or(0, |c| c.code_info().total_size as usize);
    module.clear_context(ctx);
    module.finalize_definitions().map_err(|e| e.to_string())?;
    Ok((module.get_finalized_function(id), size))
}

impl Tier1Backend {
    pub fn new() -> Result<Tier1Backend, String> {
        // Tier 1 must compile cheaply.
        let module = jit_module("none")?;
        let ctx = module.make_context();
        Ok(Tier1Backend {
            module,
            ctx,
            builder_ctx: FunctionBuilderContext::new(),
            stats: BackendStats::default(),
        })
    }

    /// `n` pointer-sized arguments, one status result.
    fn entry_signature(&self, n: usize) -> Signature {
        let mut sig = self.module.make_signature();
        for _ in 0..n {
            sig.params.push(AbiParam::new(types::I64));
        }
        sig.returns.push(AbiParam::new(types::I64));
        sig
    }

    /// Compiles one method. The code lives as long as the backend.
    pub fn compile(&mut self, shape: &MethodShape) -> Result<CompiledFn, String> {
        let result = self.build(shape);
        if result.is_err() {
            // A compilation that failed half-way leaves its function and its builder's
            // state behind; the next one must start clean.
            self.module.clear_context(&mut self.ctx);
            self.builder_ctx = FunctionBuilderContext::new();
        }
        result
    }

    fn build(&mut self, shape: &MethodShape) -> Result<CompiledFn, String> {
        let start = Instant::now();
        let order = shape.reachable();
        let mut sig = self.module.make_signature();
        sig.params.push(AbiParam::new(types::I64));
        sig.params.push(AbiParam::new(types::I64));
        sig.returns.push(AbiParam::new(types::I64));
        let id = self
            .module
            .declare_anonymous_function(&sig)
            .map_err(|e| e.to_string())?;
        self.ctx.func.signature = sig;
        self.ctx.func.name = UserFuncName::user(0, id.as_u32());
        let entry_sig = self.entry_signature(4);
        let sig5 = self.entry_signature(5);

        let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.builder_ctx);
        let entry_sig = b.import_signature(entry_sig);
        let sig5 = b.import_signature(sig5);
        let start_block = b.create_block();
        b.append_block_params_for_function_params(start_block);
        let blocks: Vec<Block> = (0..shape.instrs.len()).map(|_| b.create_block()).collect();
        let exit_block = b.create_block();
        b.append_block_param(exit_block, types::I64);

        b.switch_to_block(start_block);
        let ctx_ptr = b.block_params(start_block)[0];
        let frame = b.block_params(start_block)[1];
        // Slot 0's address never changes during an activation: load it once.
        let base = b.ins().load(
            types::I64,
            MemFlagsData::trusted(),
            frame,
            shape.layout.base_offset,
        );
        b.ins().jump(blocks[0], &[]);

        let emitter = Emitter {
            ctx: ctx_ptr,
            frame,
            code: shape.code,
            pc_offset: shape.pc_offset,
            entry_sig,
            sig5,
            stub_handlers: shape.stub_handlers,
        };
        for &pc in &order {
            b.switch_to_block(blocks[pc]);
            let next = blocks.get(pc + 1).copied();
            match &shape.instrs[pc] {
                &Lowering::Call {
                    entry,
                    instr,
                    may_exit,
                } => {
                    let st = emitter.call(&mut b, pc, entry, instr, may_exit);
                    let next = next.ok_or("falls off the end of the method")?;
                    if may_exit {
                        b.ins().brif(st, exit_block, &[st.into()], next, &[]);
                    } else {
                        b.ins().jump(next, &[]);
                    }
                }
                &Lowering::Branch {
                    entry,
                    instr,
                    target,
                } => {
                    let st = emitter.call(&mut b, pc, entry, instr, true);
                    let next = next.ok_or("falls off the end of the method")?;
                    emitter.dispatch_branch(&mut b, st, next, blocks[target as usize], exit_block);
                }
                &Lowering::Specialised {
                    emit,
                    entry,
                    instr,
                    sp,
                    flow,
                } => {
                    let mut slow: Option<Block> = None;
                    let (ctx_raw, code_raw) = (shape.ctx, shape.code);
                    let mut handler = |m: &mut crate::emit::Emit| emit(m, ctx_raw, code_raw, instr);
                    let sp_offset = shape.layout.sp_offset;
                    let mut end = |b: &mut FunctionBuilder,
                                   path: PathEnd,
                                   final_sp: usize|
                     -> Result<(), String> {
                        let next = next.ok_or("falls off the end of the method");
                        if final_sp != sp && matches!(path, PathEnd::Next | PathEnd::Branch { .. })
                        {
                            let v = b.ins().iconst(types::I64, final_sp as i64);
                            b.ins().store(MemFlagsData::trusted(), v, frame, sp_offset);
                        }
                        match path {
                            PathEnd::Next => {
                                b.ins().jump(next?, &[]);
                            }
                            PathEnd::Branch { taken } => {
                                let Flow::Branch(target) = flow else {
                                    return Err("a non-branch handler branched".into());
                                };
                                let to = if taken {
                                    blocks[target as usize]
                                } else {
                                    next?
                                };
                                b.ins().jump(to, &[]);
                            }
                            PathEnd::Return(v) => {
                                b.ins().store(
                                    MemFlagsData::trusted(),
                                    v,
                                    ctx_ptr,
                                    shape.result_offset,
                                );
                                let st = b.ins().iconst(types::I64, status::RETURN as i64);
                                b.ins().return_(&[st]);
                            }
                            PathEnd::Slow => {
                                let block = *slow.get_or_insert_with(|| b.create_block());
                                b.ins().jump(block, &[]);
                            }
                        }
                        Ok(())
                    };
                    explore(
                        &mut b,
                        frame,
                        base,
                        sp,
                        shape.layout,
                        &mut handler,
                        &mut end,
                    )?;
                    if let Some(block) = slow {
                        // The slow path: the frame is as the instruction began; the
                        // concrete entry does the whole instruction.
                        b.switch_to_block(block);
                        let st = emitter.call(&mut b, pc, entry, instr, true);
                        match flow {
                            Flow::Next => {
                                let next = next.ok_or("falls off the end of the method")?;
                                b.ins().brif(st, exit_block, &[st.into()], next, &[]);
                            }
                            Flow::Branch(target) => {
                                let next = next.ok_or("falls off the end of the method")?;
                                emitter.dispatch_branch(
                                    &mut b,
                                    st,
                                    next,
                                    blocks[target as usize],
                                    exit_block,
                                );
                            }
                            Flow::Return => {
                                b.ins().return_(&[st]);
                            }
                        }
                    }
                }
                &Lowering::Jump { target } => {
                    b.ins().jump(blocks[target as usize], &[]);
                }
                &Lowering::BackEdge {
                    target,
                    counter,
                    switch_at,
                } => {
                    let addr = b.ins().iconst(types::I64, counter as i64);
                    let n = b.ins().load(types::I32, MemFlagsData::trusted(), addr, 0);
                    let one = b.ins().iconst(types::I32, 1);
                    let n1 = b.ins().iadd(n, one);
                    b.ins().store(MemFlagsData::trusted(), n1, addr, 0);
                    match switch_at {
                        None => {
                            b.ins().jump(blocks[target as usize], &[]);
                        }
                        Some(limit) => {
                            let limit = b.ins().iconst(types::I32, limit as i64);
                            let hot = b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, n1, limit);
                            let leave = b.create_block();
                            b.ins().brif(hot, leave, &[], blocks[target as usize], &[]);
                            b.switch_to_block(leave);
                            // The activation resumes at the loop header.
                            let pc = b.ins().iconst(types::I32, target as i64);
                            b.ins()
                                .store(MemFlagsData::trusted(), pc, frame, shape.pc_offset);
                            let st = b.ins().iconst(types::I64, status::SWITCH as i64);
                            b.ins().return_(&[st]);
                        }
                    }
                }
                &Lowering::Return { entry, instr } => {
                    let st = emitter.call(&mut b, pc, entry, instr, true);
                    b.ins().return_(&[st]);
                }
                Lowering::CachedSend {
                    entry,
                    instr,
                    receiver,
                    cases,
                } => {
                    let next = next.ok_or("falls off the end of the method")?;
                    let done = b.create_block();
                    b.append_block_param(done, types::I64);
                    let key = emitter.receiver_key(&mut b, receiver);
                    for case in cases {
                        let hit = b.create_block();
                        let miss = b.create_block();
                        let k = b.ins().iconst(types::I64, case.key as i64);
                        let eq = b.ins().icmp(IntCC::Equal, key, k);
                        b.ins().brif(eq, hit, &[], miss, &[]);
                        b.switch_to_block(hit);
                        let st = emitter.direct(&mut b, pc, case, *instr);
                        b.ins().jump(done, &[st.into()]);
                        b.switch_to_block(miss);
                    }
                    let st = emitter.call(&mut b, pc, *entry, *instr, true);
                    b.ins().jump(done, &[st.into()]);
                    b.switch_to_block(done);
                    let st = b.block_params(done)[0];
                    b.ins().brif(st, exit_block, &[st.into()], next, &[]);
                }
            }
        }
        b.switch_to_block(exit_block);
        let st = b.block_params(exit_block)[0];
        let restart = is_status(&mut b, st, status::RESTART);
        let leave = b.create_block();
        b.ins().brif(restart, blocks[0], &[], leave, &[]);
        b.switch_to_block(leave);
        b.ins().return_(&[st]);
        b.seal_all_blocks();
        b.finalize(self.module.target_config());

        let (ptr, size) = define(&mut self.module, &mut self.ctx, id)?;
        let size = size as u64;
        self.stats.methods += 1;
        self.stats.instructions += order.len() as u64;
        self.stats.code_bytes += size;
        self.stats.compile_time += start.elapsed();
        // SAFETY: the function was compiled with the `CompiledFn` signature.
        Ok(unsafe { std::mem::transmute::<*const u8, CompiledFn>(ptr) })
    }
}

/// What every emitted call needs to know.
struct Emitter {
    ctx: Value,
    frame: Value,
    code: *const u8,
    pc_offset: i32,
    entry_sig: SigRef,
    sig5: SigRef,
    stub_handlers: bool,
}

impl Emitter {
    /// Records the next pc in the frame, as the interpreter would have.
    fn store_pc(&self, b: &mut FunctionBuilder, pc: usize) {
        let pc_val = b.ins().iconst(types::I32, pc as i64 + 1);
        b.ins()
            .store(MemFlagsData::trusted(), pc_val, self.frame, self.pc_offset);
    }

    /// Calls a handler entry (through the stub if `stub_handlers`); answers its status.
    fn call(
        &self,
        b: &mut FunctionBuilder,
        pc: usize,
        entry: EntryFn,
        instr: *const u8,
        store_pc: bool,
    ) -> Value {
        if store_pc {
            self.store_pc(b, pc);
        }
        let code = b.ins().iconst(types::I64, self.code as i64);
        let instr = b.ins().iconst(types::I64, instr as i64);
        let entry = b.ins().iconst(types::I64, entry as usize as i64);
        let inst = if self.stub_handlers {
            let stub = b.ins().iconst(types::I64, stub_call as *const () as i64);
            b.ins()
                .call_indirect(self.sig5, stub, &[self.ctx, self.frame, code, instr, entry])
        } else {
            b.ins()
                .call_indirect(self.entry_sig, entry, &[self.ctx, self.frame, code, instr])
        };
        b.inst_results(inst)[0]
    }

    /// After a branch entry: [`status::NEXT`] to `next`, [`status::TAKEN`] to `taken`,
    /// anything else to `exit` with the status.
    fn dispatch_branch(
        &self,
        b: &mut FunctionBuilder,
        st: Value,
        next: Block,
        taken: Block,
        exit: Block,
    ) {
        let not_next = b.create_block();
        b.ins().brif(st, not_next, &[], next, &[]);
        b.switch_to_block(not_next);
        let is_taken = is_status(b, st, status::TAKEN);
        b.ins().brif(is_taken, taken, &[], exit, &[st.into()]);
    }

    /// Calls the direct entry of an inline-cache case.
    fn direct(
        &self,
        b: &mut FunctionBuilder,
        pc: usize,
        case: &CacheCase,
        instr: *const u8,
    ) -> Value {
        self.store_pc(b, pc);
        let code = b.ins().iconst(types::I64, self.code as i64);
        let instr = b.ins().iconst(types::I64, instr as i64);
        let target = b.ins().iconst(types::I64, case.target as i64);
        let direct = b.ins().iconst(types::I64, case.direct as usize as i64);
        let inst = b.ins().call_indirect(
            self.sig5,
            direct,
            &[self.ctx, self.frame, code, instr, target],
        );
        b.inst_results(inst)[0]
    }

    /// The guard key of the receiver on the operand stack, computed inline.
    fn receiver_key(&self, b: &mut FunctionBuilder, r: &ReceiverKey) -> Value {
        let flags = MemFlagsData::trusted();
        let base = b.ins().load(types::I64, flags, self.frame, r.base_offset);
        let sp = b.ins().load(types::I64, flags, self.frame, r.sp_offset);
        let eight = b.ins().iconst(types::I64, 8);
        let byte_sp = b.ins().imul(sp, eight);
        let top = b.ins().iadd(base, byte_sp);
        let word = b
            .ins()
            .load(types::I64, flags, top, -8 * (r.depth as i32 + 1));
        let done = b.create_block();
        b.append_block_param(done, types::I64);
        for &(mask, value, key) in &r.immediate_tags {
            let next = b.create_block();
            let m = b.ins().iconst(types::I64, mask as i64);
            let t = b.ins().band(word, m);
            let v = b.ins().iconst(types::I64, value as i64);
            let is = b.ins().icmp(IntCC::Equal, t, v);
            let k = b.ins().iconst(types::I64, key as i64);
            b.ins().brif(is, done, &[k.into()], next, &[]);
            b.switch_to_block(next);
        }
        let k = b.ins().load(types::I64, flags, word, r.header_offset);
        b.ins().jump(done, &[k.into()]);
        b.switch_to_block(done);
        b.block_params(done)[0]
    }
}

/// `st == status` as a Cranelift boolean.
fn is_status(b: &mut FunctionBuilder, st: Value, status: u64) -> Value {
    let k = b.ins().iconst(types::I64, status as i64);
    b.ins().icmp(IntCC::Equal, st, k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::Emit;
    use crate::machine::{Machine, StackFrame};
    use crate::shallow::Flow;

    /// The frame of the test "language": slot 0's address, the stack pointer, two
    /// auxiliary words and the pc.
    #[repr(C)]
    struct ToyFrame {
        base: *mut u64,
        sp: u64,
        aux: [u64; 2],
        pc: u32,
    }

    /// Runs compiled code on a toy frame over `stack` with `sp` words in use; answers
    /// its status and the word it returned.
    fn call(f: CompiledFn, stack: &mut [u64], sp: u64) -> (u64, u64) {
        let mut frame = ToyFrame {
            base: stack.as_mut_ptr(),
            sp,
            aux: [0; 2],
            pc: 0,
        };
        let mut out = 0u64;
        // SAFETY: the test methods read and write only the frame's first `sp + 1`
        // slots, which `stack` holds, and write `out`.
        let st = unsafe {
            f(
                &mut out as *mut u64 as *mut u8,
                &mut frame as *mut ToyFrame as *mut u8,
            )
        };
        (st, out)
    }

    /// Handlers see the frame only through the machine; `Emit` never touches this one.
    struct NoFrame;
    impl StackFrame for NoFrame {
        fn slot_base(&mut self) -> *mut u64 {
            unreachable!()
        }
        fn sp(&self) -> usize {
            unreachable!()
        }
        fn set_sp(&mut self, _: usize) {
            unreachable!()
        }
        fn aux_base(&mut self) -> *mut u64 {
            unreachable!()
        }
    }

    /// "Add the two top words if both are odd and the sum does not overflow", with
    /// three decisions: two tag tests and an overflow check.
    fn add_if_odd(m: &mut Emit, _: *mut u8, _: *const u8, _: *const u8) -> PathEnd {
        let f = &mut NoFrame;
        let b = m.peek(f, 0);
        let a = m.peek(f, 1);
        if m.test_bits(a, 1, 1) && m.test_bits(b, 1, 1) {
            if let Some(r) = m.add_ovf(a, b) {
                m.drop_n(f, 2);
                m.push(f, r);
                return PathEnd::Next;
            }
        }
        PathEnd::Slow
    }

    /// The slow path: replaces the two top words by 99.
    unsafe extern "C" fn slow(_: *mut u8, frame: *mut u8, _: *const u8, _: *const u8) -> u64 {
        let f = &mut *(frame as *mut ToyFrame);
        assert_eq!(f.sp, 2, "the slow path starts from the instruction's stack");
        *f.base = 99;
        f.sp = 1;
        status::NEXT
    }

    /// Returns the top word through the context.
    unsafe extern "C" fn ret(ctx: *mut u8, frame: *mut u8, _: *const u8, _: *const u8) -> u64 {
        let f = &mut *(frame as *mut ToyFrame);
        *(ctx as *mut u64) = *f.base.add(f.sp as usize - 1);
        status::RETURN
    }

    #[test]
    fn specialised_handlers_compile_every_path_and_leave_for_the_slow_one() {
        let instrs = [
            Lowering::Specialised {
                emit: add_if_odd,
                entry: slow,
                instr: std::ptr::null(),
                sp: 2,
                flow: Flow::Next,
            },
            Lowering::Return {
                entry: ret,
                instr: std::ptr::null(),
            },
        ];
        let shape = MethodShape::for_test(&instrs);
        let mut backend = Tier1Backend::new().unwrap();
        let f = backend.compile(&shape).unwrap();
        let run = |a: u64, b: u64| {
            let (st, out) = call(f, &mut [a, b, 0], 2);
            assert_eq!(st, status::RETURN);
            out
        };
        assert_eq!(run(3, 5), 8, "fast path");
        assert_eq!(run(2, 5), 99, "first tag test fails");
        assert_eq!(run(3, 4), 99, "second tag test fails");
        assert_eq!(run(i64::MAX as u64, 1), 99, "overflow");
    }

    /// Stores the top word into slot 0, then leaves for the slow path: wrong, since the
    /// entry would then redo the instruction on a changed frame.
    fn store_then_slow(m: &mut Emit, _: *mut u8, _: *const u8, _: *const u8) -> PathEnd {
        let f = &mut NoFrame;
        let v = m.peek(f, 0);
        m.set_slot(f, 0, v);
        if m.test_bits(v, 1, 1) {
            return PathEnd::Next;
        }
        PathEnd::Slow
    }

    #[test]
    fn a_handler_that_stores_before_its_slow_path_does_not_compile() {
        let instrs = [
            Lowering::Specialised {
                emit: store_then_slow,
                entry: slow,
                instr: std::ptr::null(),
                sp: 2,
                flow: Flow::Next,
            },
            Lowering::Return {
                entry: ret,
                instr: std::ptr::null(),
            },
        ];
        let mut backend = Tier1Backend::new().unwrap();
        let err = backend
            .compile(&MethodShape::for_test(&instrs))
            .unwrap_err();
        assert!(err.contains("stored to memory before"), "{err}");
        // The backend compiles the next method from a clean slate.
        let good = [Lowering::Return {
            entry: ret,
            instr: std::ptr::null(),
        }];
        let f = backend.compile(&MethodShape::for_test(&good)).unwrap();
        assert_eq!(call(f, &mut [7, 0], 1), (status::RETURN, 7));
    }
}
