//! Tier 1: threaded code (DESIGN section 6).
//!
//! When a method's invocation counter reaches the threshold (`--jit tier1_threshold=N`),
//! its bytecode is handed to the shallow compiler of `metajit`: every instruction is
//! lowered as the op table says (`interpreter::ops::lowering`) — handler bodies
//! specialised into the method with their slow paths calling the concrete entries,
//! inline-cached sends, native branches, inline back-edge counters — and Cranelift
//! emits the code. The activation's state stays in its frame, so the interpreter and compiled
//! code run the same frames; `interpreter::send::activate` decides which runs.

use crate::bytecode::{Code, Op, SendSite, Tier1State};
use crate::interpreter::dispatch::after_send;
use crate::interpreter::frame::Frame;
use crate::interpreter::ops::{self, exit_status};
use crate::interpreter::send::send_to;
use crate::object::Method;
use crate::universe::Vm;
use metajit::backend::Tier1Backend;
use metajit::emit::FrameLayout;
use metajit::shallow::{CacheCase, CompiledFn, Lowering, MethodShape, ReceiverKey};

/// Tier-1 settings (`--jit key=value`).
#[derive(Debug, Clone, Copy)]
pub struct Tier1Options {
    /// Invocations of a method before it is compiled.
    pub threshold: u32,
    /// Inline-cached direct calls at send sites (off: every send is generic).
    pub inline_caches: bool,
    /// Call handlers through stubs that test a dummy flag (the paper's Q3 ablation);
    /// implies calling every handler (no specialisation).
    pub stub_handlers: bool,
    /// Compile handlers into the method by partial evaluation, their fast paths native
    /// and their slow paths calls (off: call every handler that decides).
    pub specialise: bool,
}

impl Default for Tier1Options {
    fn default() -> Self {
        Tier1Options {
            threshold: 1000,
            inline_caches: true,
            stub_handlers: false,
            specialise: true,
        }
    }
}

/// The tier-1 compiler of a VM.
pub struct Tier1 {
    backend: Tier1Backend,
    pub options: Tier1Options,
    pub failures: u64,
}

impl Tier1 {
    pub fn new(options: Tier1Options) -> Result<Tier1, String> {
        Ok(Tier1 {
            backend: Tier1Backend::new()?,
            options,
            failures: 0,
        })
    }

    /// Compiles `code` (once); answers its compiled form unless compilation failed.
    pub fn compile(&mut self, vm: &mut Vm, code: &Code) -> Option<CompiledFn> {
        match code.tier1.get() {
            Tier1State::Compiled(f) => return Some(f),
            Tier1State::Failed => return None,
            Tier1State::NotCompiled => {}
        }
        let specialise = self.options.specialise && !self.options.stub_handlers;
        let instrs: Vec<Lowering> = (0..code.ops.len())
            .map(|pc| match code.ops[pc] {
                Op::Send(site) if self.options.inline_caches => {
                    cached_send(vm, code, pc, &code.sites[site as usize])
                        .unwrap_or_else(|| ops::lowering(code, pc, specialise))
                }
                _ => ops::lowering(code, pc, specialise),
            })
            .collect();
        let shape = MethodShape {
            ctx: vm as *mut Vm as *mut u8,
            layout: FrameLayout {
                base_offset: std::mem::offset_of!(Frame, base) as i32,
                sp_offset: std::mem::offset_of!(Frame, sp) as i32,
                aux_offset: std::mem::offset_of!(Frame, ctx) as i32,
            },
            code: code as *const Code as *const u8,
            instrs: &instrs,
            stub_handlers: self.options.stub_handlers,
            pc_offset: std::mem::offset_of!(Frame, pc) as i32,
            result_offset: std::mem::offset_of!(Vm, tier1_result) as i32,
        };
        match self.backend.compile(&shape) {
            Ok(f) => {
                code.tier1.set(Tier1State::Compiled(f));
                Some(f)
            }
            Err(e) => {
                if std::env::var_os("SOM_JIT_DEBUG").is_some() {
                    eprintln!("tier 1: compilation failed: {e}");
                }
                self.failures += 1;
                code.tier1.set(Tier1State::Failed);
                None
            }
        }
    }

    pub fn stats(&self) -> metajit::backend::BackendStats {
        self.backend.stats
    }
}

/// An inline-cached send for `site`: one guarded direct call per receiver class the
/// interpreter has seen there; `None` if it has seen none.
fn cached_send(vm: &Vm, code: &Code, pc: usize, site: &SendSite) -> Option<Lowering> {
    let cases: Vec<CacheCase> = site
        .seen
        .iter()
        .map(|c| c.get())
        .filter(|c| !c.is_null())
        .filter_map(|class| {
            let method = vm.lookup(class, site.selector)?;
            Some(CacheCase {
                key: class as u64,
                direct: send_direct,
                target: method as *const u8,
            })
        })
        .collect();
    if cases.is_empty() {
        return None;
    }
    let Lowering::Call { entry, instr, .. } = ops::lowering(code, pc, false) else {
        unreachable!("sends are calls")
    };
    Some(Lowering::CachedSend {
        entry,
        instr,
        receiver: ReceiverKey {
            base_offset: std::mem::offset_of!(Frame, base) as i32,
            sp_offset: std::mem::offset_of!(Frame, sp) as i32,
            depth: site.argc as u32,
            immediate_tags: vec![
                (1, 1, vm.classes.integer as u64),
                (3, 2, vm.classes.double as u64),
            ],
            header_offset: 0,
        },
        cases,
    })
}

/// The direct entry of an inline-cache hit: invoke the method the guard selected.
///
/// # Safety
/// As the concrete entries' (see `interpreter::ops`); `target` is a `Method`.
unsafe extern "C" fn send_direct(
    vm: *mut u8,
    f: *mut u8,
    code: *const u8,
    instr: *const u8,
    target: *const u8,
) -> u64 {
    let (vm, f, code) = (
        &mut *(vm as *mut Vm),
        &mut *(f as *mut Frame),
        &*(code as *const Code),
    );
    let Op::Send(site) = *(instr as *const Op) else {
        unreachable!("a cached send at a non-send")
    };
    vm.sends += 1;
    vm.tier1_direct_calls += 1;
    let argc = code.sites[site as usize].argc as usize;
    let r = send_to(&mut metajit::Concrete, vm, f, target as *mut Method, argc);
    let r = after_send(vm, code, f, r);
    exit_status(vm, r)
}

impl Vm {
    /// The `--jit-stats` report: what tier 1 compiled and what the profiler counted.
    pub fn jit_stats(&self) -> String {
        let mut methods = 0u64;
        let mut sites = 0u64;
        let mut misses = 0u64;
        let mut backedges = 0u64;
        let mut invocations = 0u64;
        for &m in &self.all_methods {
            // SAFETY: methods are immortal.
            if let Some(code) = unsafe { (*m).code() } {
                methods += 1;
                invocations += code.invocations.get();
                sites += code.sites.len() as u64;
                misses += code
                    .sites
                    .iter()
                    .map(|s| s.misses.get() as u64)
                    .sum::<u64>();
                backedges += code.backedges.iter().map(|c| c.get() as u64).sum::<u64>();
            }
        }
        let mut out = String::new();
        out.push_str(&format!("jit: mode {:?}\n", self.options.mode));
        if let Some(t) = &self.tier1 {
            let s = t.stats();
            let us = s.compile_time.as_secs_f64() * 1e6;
            out.push_str(&format!(
                "jit: tier 1: {} methods compiled ({} failed), {} bytecodes, {} bytes of code\n",
                s.methods, t.failures, s.instructions, s.code_bytes
            ));
            out.push_str(&format!(
                "jit: tier 1: compile time {:.0} us total, {:.2} us per bytecode\n",
                us,
                if s.instructions > 0 {
                    us / s.instructions as f64
                } else {
                    0.0
                }
            ));
        }
        if let Some(t) = &self.tier2 {
            out.push_str(&t.stats());
        }
        out.push_str(&format!(
            "jit: {methods} bytecode methods, {invocations} invocations, {backedges} back-edges taken\n"
        ));
        out.push_str(&format!(
            "jit: sends {}, interpreter inline-cache misses {misses} at {sites} send sites, \
             tier-1 direct calls {}\n",
            self.sends, self.tier1_direct_calls
        ));
        out
    }
}
