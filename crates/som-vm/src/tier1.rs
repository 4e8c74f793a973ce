//! Tier 1: threaded code (DESIGN section 6).
//!
//! When a method's invocation counter reaches the threshold (`--jit tier1_threshold=N`),
//! its bytecode is handed to the shallow compiler of `metajit`: every instruction is
//! lowered as the op table says (`interpreter::ops::lowering`) — calls of the handlers'
//! concrete entries, native branches, inline back-edge counters — and Cranelift emits
//! the code. The activation's state stays in its frame, so the interpreter and compiled
//! code run the same frames; `interpreter::send::activate` decides which runs.

use crate::bytecode::{Code, Tier1State};
use crate::interpreter::frame::Frame;
use crate::interpreter::ops;
use metajit::backend::Tier1Backend;
use metajit::shallow::{CompiledFn, Lowering, MethodShape};

/// Tier-1 settings (`--jit key=value`).
#[derive(Debug, Clone, Copy)]
pub struct Tier1Options {
    /// Invocations of a method before it is compiled.
    pub threshold: u32,
}

impl Default for Tier1Options {
    fn default() -> Self {
        Tier1Options { threshold: 1000 }
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
    pub fn compile(&mut self, code: &Code) -> Option<CompiledFn> {
        match code.tier1.get() {
            Tier1State::Compiled(f) => return Some(f),
            Tier1State::Failed => return None,
            Tier1State::NotCompiled => {}
        }
        let instrs: Vec<Lowering> = (0..code.ops.len())
            .map(|pc| ops::lowering(code, pc))
            .collect();
        let shape = MethodShape {
            code: code as *const Code as *const u8,
            instrs: &instrs,
            pc_offset: std::mem::offset_of!(Frame, pc) as i32,
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

impl crate::universe::Vm {
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
                invocations += code.invocations.get() as u64;
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
        out.push_str(&format!(
            "jit: {methods} bytecode methods, {invocations} invocations, {backedges} back-edges taken\n"
        ));
        out.push_str(&format!(
            "jit: sends {}, inline-cache misses {misses} at {sites} send sites\n",
            self.sends
        ));
        out
    }
}
