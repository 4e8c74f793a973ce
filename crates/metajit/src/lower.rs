//! The tier-2 backend: lowers a verified [`Trace`] to native code through Cranelift.
//!
//! A compiled loop is `extern "C" fn(ctx, base, aux, exits) -> snapshot`: `ctx` is the
//! client's runtime (passed to residual calls and the safepoint), `base` the root
//! frame's slot 0, `aux` its first auxiliary word, `exits` the exit buffer. The code
//! loops until a guard fails; the guard's exit block stores the snapshot's live values
//! ([`crate::snapshot::Snapshot::live`], in that order) into `exits` and returns the
//! snapshot's number, for [`crate::deopt`] to turn into interpreter frames. Trace code
//! always returns; it never unwinds.
//!
//! With `deopt_every` set, every guard first counts in a shared counter and fails
//! every Nth time as if its condition did not hold (testing the exits, as V8's
//! `--deopt-every-n-times`).

use crate::emit::{float_cc, int_cc};
use crate::ir::{verify::verify, MemKind, Op, OvfOp, Ref, SnapId, Trace};
use crate::machine::{BinOp, FBinOp};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, AbiParam, Block, InstBuilder, MemFlagsData, Signature, UserFuncName, Value,
};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITModule;
use cranelift_module::Module;
use std::time::{Duration, Instant};

/// What a bridge answers when it reaches the loop header (`toloop`): run the loop's
/// trace next. Any other answer is the number of the snapshot it left through.
pub const TO_LOOP: u64 = u64::MAX;

/// What an entry trace (or its bridge) answers when the activation returns; the
/// result is in word 0 of the exit buffer.
pub const FINISHED: u64 = u64::MAX - 1;

/// What a trace ending in `link n` answers: continue in trace `n`, whose number is in
/// word 0 of the exit buffer.
pub const LINKED: u64 = u64::MAX - 2;

/// A compiled loop or bridge (see the module documentation). A bridge reads its
/// inputs (`param`) from `exits` before it writes any exit there.
pub type TraceFn =
    unsafe extern "C" fn(ctx: *mut u8, base: *mut u64, aux: *mut u64, exits: *mut u64) -> u64;

/// Where compiled loops poll for a safepoint: they call `func(ctx)` at the loop header
/// whenever the byte at `flag` is not zero.
#[derive(Debug, Clone, Copy)]
pub struct Safepoint {
    pub flag: *const u8,
    pub func: unsafe extern "C" fn(ctx: *mut u8),
}

/// How traces are compiled.
#[derive(Debug, Clone, Copy, Default)]
pub struct LowerOptions {
    pub safepoint: Option<Safepoint>,
    /// `(counter, n)`: fail every `n`th guard check; `counter` is shared by all traces.
    pub deopt_every: Option<(*mut u64, u64)>,
}

/// What the backend produced for one trace.
#[derive(Debug, Clone, Copy)]
pub struct Compiled {
    pub func: TraceFn,
    pub code_bytes: usize,
    pub compile_time: Duration,
}

/// Owns the executable memory of all compiled traces.
pub struct TraceBackend {
    module: JITModule,
    ctx: Context,
    builder_ctx: FunctionBuilderContext,
    pub options: LowerOptions,
}

impl TraceBackend {
    pub fn new(options: LowerOptions) -> Result<TraceBackend, String> {
        // Traces are hot by construction: let Cranelift optimise them.
        let module = crate::backend::jit_module("speed")?;
        let ctx = module.make_context();
        Ok(TraceBackend {
            module,
            ctx,
            builder_ctx: FunctionBuilderContext::new(),
            options,
        })
    }

    /// Compiles `trace`; the code lives as long as the backend.
    pub fn compile(&mut self, trace: &Trace) -> Result<Compiled, String> {
        let r = self.build(trace);
        if r.is_err() {
            self.module.clear_context(&mut self.ctx);
            self.builder_ctx = FunctionBuilderContext::new();
        }
        r
    }

    fn signature(&self, params: usize) -> Signature {
        let mut sig = self.module.make_signature();
        for _ in 0..params {
            sig.params.push(AbiParam::new(types::I64));
        }
        sig.returns.push(AbiParam::new(types::I64));
        sig
    }

    fn build(&mut self, trace: &Trace) -> Result<Compiled, String> {
        let start = Instant::now();
        verify(trace)?;
        let sig = self.signature(4);
        let id = self
            .module
            .declare_anonymous_function(&sig)
            .map_err(|e| e.to_string())?;
        self.ctx.func.signature = sig;
        self.ctx.func.name = UserFuncName::user(1, id.as_u32());
        let call_sig = self.signature(5);
        let mut poll_sig = self.module.make_signature();
        poll_sig.params.push(AbiParam::new(types::I64));

        let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.builder_ctx);
        let call_sig = b.import_signature(call_sig);
        let poll_sig = b.import_signature(poll_sig);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let params = b.block_params(entry).to_vec();
        let (ctx, base, aux, exits) = (params[0], params[1], params[2], params[3]);

        // One exit block per snapshot: its parameters are the snapshot's live values.
        let live: Vec<Vec<Ref>> = trace.snaps.iter().map(|s| s.live()).collect();
        let exit_blocks: Vec<Block> = live
            .iter()
            .map(|l| {
                let blk = b.create_block();
                for _ in l {
                    b.append_block_param(blk, types::I64);
                }
                b.set_cold_block(blk);
                blk
            })
            .collect();

        let flags = MemFlagsData::trusted();
        let mut values: Vec<Option<Value>> = vec![None; trace.ops.len()];
        let mut header: Option<Block> = None;
        let opts = self.options;
        let lw = Lowerer {
            trace,
            values: &mut values,
            live: &live,
            exit_blocks: &exit_blocks,
            deopt_every: opts.deopt_every,
        };
        for (i, op) in trace.ops.iter().enumerate() {
            let v = match op {
                Op::SLoad(n) => Some(b.ins().load(types::I64, flags, base, 8 * n)),
                Op::AuxLoad(n) => Some(b.ins().load(types::I64, flags, aux, 8 * *n as i32)),
                Op::SlotAddr(n) => Some(b.ins().iadd_imm_s(base, 8 * *n as i64)),
                Op::Param(n) => Some(b.ins().load(types::I64, flags, exits, 8 * *n as i32)),
                &Op::Finish(v) => {
                    let v = lw.val(&mut b, v);
                    b.ins().store(flags, v, exits, 0);
                    let st = b.ins().iconst(types::I64, FINISHED as i64);
                    b.ins().return_(&[st]);
                    None
                }
                Op::ToLoop => {
                    let st = b.ins().iconst(types::I64, TO_LOOP as i64);
                    b.ins().return_(&[st]);
                    None
                }
                &Op::Exit(snap) => {
                    let args: Vec<_> = lw
                        .exit_args(&mut b, snap)
                        .into_iter()
                        .map(Into::into)
                        .collect();
                    b.ins().jump(lw.exit_blocks[snap as usize], &args);
                    None
                }
                &Op::Link(n) => {
                    let n = b.ins().iconst(types::I64, n as i64);
                    b.ins().store(flags, n, exits, 0);
                    let st = b.ins().iconst(types::I64, LINKED as i64);
                    b.ins().return_(&[st]);
                    None
                }
                &Op::CallCheck(w, snap) => {
                    let w = lw.val(&mut b, w);
                    let failed = b.ins().icmp_imm_u(IntCC::Equal, w, 0);
                    lw.exit_if(&mut b, failed, true, snap);
                    None
                }
                &Op::Bin(o, x, y) => {
                    let (x, y) = (lw.val(&mut b, x), lw.val(&mut b, y));
                    let ins = b.ins();
                    Some(match o {
                        BinOp::Add => ins.iadd(x, y),
                        BinOp::Sub => ins.isub(x, y),
                        BinOp::And => ins.band(x, y),
                        BinOp::Or => ins.bor(x, y),
                        BinOp::Xor => ins.bxor(x, y),
                        BinOp::Shl => ins.ishl(x, y),
                        BinOp::Sar => ins.sshr(x, y),
                        BinOp::Shr => ins.ushr(x, y),
                    })
                }
                &Op::Flag(c, x, y) => {
                    let (x, y) = (lw.val(&mut b, x), lw.val(&mut b, y));
                    let f = b.ins().icmp(int_cc(c), x, y);
                    Some(b.ins().uextend(types::I64, f))
                }
                &Op::FBin(o, x, y) => {
                    let (x, y) = (lw.val(&mut b, x), lw.val(&mut b, y));
                    let nf = MemFlagsData::new();
                    let x = b.ins().bitcast(types::F64, nf, x);
                    let y = b.ins().bitcast(types::F64, nf, y);
                    let r = match o {
                        FBinOp::Add => b.ins().fadd(x, y),
                        FBinOp::Sub => b.ins().fsub(x, y),
                        FBinOp::Mul => b.ins().fmul(x, y),
                        FBinOp::Div => b.ins().fdiv(x, y),
                    };
                    Some(b.ins().bitcast(types::I64, nf, r))
                }
                &Op::Ovf(o, x, y, snap) => {
                    let (x, y) = (lw.val(&mut b, x), lw.val(&mut b, y));
                    lw.forced_exit(&mut b, snap);
                    let (r, of) = match o {
                        OvfOp::Add => b.ins().sadd_overflow(x, y),
                        OvfOp::Sub => b.ins().ssub_overflow(x, y),
                        OvfOp::Mul => b.ins().smul_overflow(x, y),
                    };
                    lw.exit_if(&mut b, of, true, snap);
                    Some(r)
                }
                &Op::GuardBits {
                    w,
                    mask,
                    expect,
                    holds,
                    snap,
                } => {
                    let w = lw.val(&mut b, w);
                    lw.forced_exit(&mut b, snap);
                    let t = b.ins().band_imm_u(w, mask as i64);
                    let c = b.ins().icmp_imm_u(IntCC::Equal, t, expect as i64);
                    lw.exit_if(&mut b, c, !holds, snap);
                    None
                }
                &Op::GuardCmp {
                    cc,
                    float,
                    a,
                    b: y,
                    holds,
                    snap,
                } => {
                    let (x, y) = (lw.val(&mut b, a), lw.val(&mut b, y));
                    lw.forced_exit(&mut b, snap);
                    let c = if float {
                        let nf = MemFlagsData::new();
                        let x = b.ins().bitcast(types::F64, nf, x);
                        let y = b.ins().bitcast(types::F64, nf, y);
                        b.ins().fcmp(float_cc(cc), x, y)
                    } else {
                        b.ins().icmp(int_cc(cc), x, y)
                    };
                    lw.exit_if(&mut b, c, !holds, snap);
                    None
                }
                &Op::Load {
                    base: p,
                    offset,
                    kind,
                } => {
                    let p = lw.val(&mut b, p);
                    let mut f = MemFlagsData::trusted();
                    if kind == MemKind::Immutable {
                        f.set_readonly();
                    }
                    Some(b.ins().load(types::I64, f, p, offset))
                }
                &Op::Store {
                    base: p,
                    offset,
                    value,
                } => {
                    let (p, v) = (lw.val(&mut b, p), lw.val(&mut b, value));
                    b.ins().store(flags, v, p, offset);
                    None
                }
                &Op::SStore(n, v) => {
                    let v = lw.val(&mut b, v);
                    b.ins().store(flags, v, base, 8 * n);
                    None
                }
                &Op::AuxStore(n, v) => {
                    let v = lw.val(&mut b, v);
                    b.ins().store(flags, v, aux, 8 * n as i32);
                    None
                }
                // An allocation is a call; the fields are what the function writes.
                Op::Call { func, args, .. } | Op::Alloc { func, args, .. } => {
                    let mut a = vec![ctx];
                    for &r in args {
                        a.push(lw.val(&mut b, r));
                    }
                    while a.len() < 5 {
                        a.push(b.ins().iconst(types::I64, 0));
                    }
                    let f = b.ins().iconst(types::I64, *func as i64);
                    let call = b.ins().call_indirect(call_sig, f, &a);
                    Some(b.inst_results(call)[0])
                }
                Op::Loop => {
                    // The header's parameters are the phis that follow it.
                    let h = b.create_block();
                    let mut inits = Vec::new();
                    for op in &trace.ops[i + 1..] {
                        let &Op::Phi(init) = op else { break };
                        b.append_block_param(h, types::I64);
                        inits.push(lw.val(&mut b, init).into());
                    }
                    b.ins().jump(h, &inits);
                    b.switch_to_block(h);
                    header = Some(h);
                    None
                }
                Op::Poll => {
                    if let Some(sp) = opts.safepoint {
                        let addr = b.ins().iconst(types::I64, sp.flag as i64);
                        let flag = b.ins().load(types::I8, flags, addr, 0);
                        let (slow, cont) = (b.create_block(), b.create_block());
                        b.set_cold_block(slow);
                        b.ins().brif(flag, slow, &[], cont, &[]);
                        b.switch_to_block(slow);
                        let f = b.ins().iconst(types::I64, sp.func as usize as i64);
                        b.ins().call_indirect(poll_sig, f, &[ctx]);
                        b.ins().jump(cont, &[]);
                        b.switch_to_block(cont);
                    }
                    None
                }
                Op::Jump(args) => {
                    let h = header.ok_or("jump without a loop header")?;
                    let args: Vec<_> = args.iter().map(|&a| lw.val(&mut b, a).into()).collect();
                    b.ins().jump(h, &args);
                    None
                }
                &Op::Phi(_) => {
                    let h = header.ok_or("phi without a loop header")?;
                    let first = trace.ops[..i]
                        .iter()
                        .rposition(|o| matches!(o, Op::Loop))
                        .ok_or("phi without a loop header")?;
                    Some(b.block_params(h)[i - first - 1])
                }
            };
            lw.values[i] = v;
        }
        // The exits: save the live values, answer the snapshot.
        for (s, blk) in exit_blocks.iter().enumerate() {
            b.switch_to_block(*blk);
            let vals = b.block_params(*blk).to_vec();
            for (k, v) in vals.into_iter().enumerate() {
                b.ins().store(flags, v, exits, 8 * k as i32);
            }
            let st = b.ins().iconst(types::I64, s as i64);
            b.ins().return_(&[st]);
        }
        b.seal_all_blocks();
        b.finalize(self.module.target_config());
        let (ptr, code_bytes) = crate::backend::define(&mut self.module, &mut self.ctx, id)?;
        Ok(Compiled {
            // SAFETY: the function was compiled with the `TraceFn` signature.
            func: unsafe { std::mem::transmute::<*const u8, TraceFn>(ptr) },
            code_bytes,
            compile_time: start.elapsed(),
        })
    }
}

/// The state of one lowering.
struct Lowerer<'a> {
    trace: &'a Trace,
    values: &'a mut Vec<Option<Value>>,
    live: &'a [Vec<Ref>],
    exit_blocks: &'a [Block],
    deopt_every: Option<(*mut u64, u64)>,
}

impl Lowerer<'_> {
    fn val(&self, b: &mut FunctionBuilder, r: Ref) -> Value {
        match self.trace.const_value(r) {
            Some(k) => b.ins().iconst(types::I64, k as i64),
            // The verifier checked that every operand is defined before its use.
            None => self.values[r.index()].expect("operand defined before use"),
        }
    }

    fn exit_args(&self, b: &mut FunctionBuilder, snap: SnapId) -> Vec<Value> {
        self.live[snap as usize]
            .iter()
            .map(|&r| self.val(b, r))
            .collect()
    }

    /// Leaves through snapshot `snap` when `cond` equals `when`.
    fn exit_if(&self, b: &mut FunctionBuilder, cond: Value, when: bool, snap: SnapId) {
        let args: Vec<_> = self
            .exit_args(b, snap)
            .into_iter()
            .map(Into::into)
            .collect();
        let cont = b.create_block();
        let exit = self.exit_blocks[snap as usize];
        if when {
            b.ins().brif(cond, exit, &args, cont, &[]);
        } else {
            b.ins().brif(cond, cont, &[], exit, &args);
        }
        b.switch_to_block(cont);
    }

    /// With `deopt_every`, counts the guard check and fails every Nth.
    fn forced_exit(&self, b: &mut FunctionBuilder, snap: SnapId) {
        let Some((counter, n)) = self.deopt_every else {
            return;
        };
        let flags = MemFlagsData::trusted();
        let addr = b.ins().iconst(types::I64, counter as i64);
        let c = b.ins().load(types::I64, flags, addr, 0);
        let c1 = b.ins().iadd_imm_s(c, 1);
        let hit = b
            .ins()
            .icmp_imm_u(IntCC::UnsignedGreaterThanOrEqual, c1, n as i64);
        let zero = b.ins().iconst(types::I64, 0);
        let next = b.ins().select(hit, zero, c1);
        b.ins().store(flags, next, addr, 0);
        self.exit_if(b, hit, true, snap);
    }
}
