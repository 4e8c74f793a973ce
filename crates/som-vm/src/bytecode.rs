//! The bytecode: [`Op`] instructions (one per `pc`, jump targets are indices) and the
//! [`Code`] of a method or block, which the compiler produces and the interpreter, and
//! later the JIT tiers, consume.
//!
//! Frame layout, shared by every engine: slot 0 is `self`, slots `1..=num_args` the
//! arguments, then `num_locals` locals (including the locals of inlined blocks and hidden
//! loop variables), then the operand stack (at most `max_stack` deep). Variables that a
//! non-inlined block captures live in the activation's context object instead.

use crate::object::{Class, Method};
use crate::value::Value;
use std::cell::Cell;
use std::fmt::Write;

/// What a conditional jump does with the tested value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JumpMode {
    /// Pop it in both cases.
    Pop,
    /// If the jump is taken, leave it on the stack; otherwise pop it (`and:`/`or:`).
    KeepIfTaken,
    /// If the jump is taken, replace it by nil; otherwise pop it (`ifTrue:` answering
    /// nil when the condition is false).
    NilIfTaken,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Dup,
    Pop,
    /// Push frame slot `n` (0 is self).
    PushSlot(u16),
    /// Pop into frame slot `n`.
    StoreSlot(u16),
    /// Push a captured variable: `level` 0 is the activation's own context, 1 the
    /// enclosing one, and so on.
    PushCtx {
        level: u8,
        idx: u16,
    },
    StoreCtx {
        level: u8,
        idx: u16,
    },
    PushField(u16),
    StoreField(u16),
    PushLiteral(u16),
    PushInt(i32),
    PushNil,
    PushTrue,
    PushFalse,
    /// Push the value of the global cell `n`; sends `unknownGlobal:` if unbound.
    PushGlobal(u32),
    /// Push a new block whose method is literal `n`.
    PushBlock(u16),
    /// Send through send site `n` (selector, argument count, inline cache).
    Send(u16),
    SuperSend(u16),
    // Sends with an inline fast path for numbers/arrays; the operand is their send site.
    Add(u16),
    Sub(u16),
    Mul(u16),
    Lt(u16),
    Gt(u16),
    Le(u16),
    Ge(u16),
    Eq(u16),
    At(u16),
    AtPut(u16),
    ReturnLocal,
    ReturnSelf,
    /// `^` inside a block: return from the home method, `level` contexts out.
    ReturnNonLocal(u8),
    Jump(u32),
    JumpIf {
        target: u32,
        when: bool,
        mode: JumpMode,
    },
    /// Jump if the top is nil (`when` = true) or is not nil; the value stays on the
    /// stack either way (`ifNil:` family).
    JumpIfNil {
        target: u32,
        when: bool,
    },
    /// Loop back-edge to the header `target`; `counter` indexes the back-edge counters.
    BackJump {
        target: u32,
        counter: u16,
    },
    /// `to:do:` / `downTo:do:` test: jump to `exit` when the counter in slot `counter`
    /// has passed the limit in slot `limit`.
    ForTest {
        counter: u16,
        limit: u16,
        exit: u32,
        down: bool,
    },
    /// Step the `to:do:` counter in slot `counter` by one (down: minus one).
    ForStep {
        counter: u16,
        down: bool,
    },
}

/// A send site: selector, argument count and the inline cache the interpreter fills.
pub struct SendSite {
    pub selector: Value,
    pub argc: u8,
    pub is_super: bool,
    /// Monomorphic cache: receiver class -> method. Null class means empty.
    pub cache_class: Cell<*mut Class>,
    pub cache_method: Cell<*mut Method>,
    /// How often the cache missed (profiling).
    pub misses: Cell<u32>,
    /// The first receiver classes seen here (null: unused), for tier 1's polymorphic
    /// inline caches (the paper's `record_type`, extended to several classes).
    pub seen: [Cell<*mut Class>; SEEN_CLASSES],
}

/// How many receiver classes a send site remembers.
pub const SEEN_CLASSES: usize = 4;

impl SendSite {
    /// Remembers `class` among the classes seen (if there is room).
    pub fn record_class(&self, class: *mut Class) {
        for slot in &self.seen {
            let c = slot.get();
            if c == class {
                return;
            }
            if c.is_null() {
                slot.set(class);
                return;
            }
        }
    }
}

/// Where the captured variables of an activation live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextShape {
    pub size: usize,
    /// Arguments that blocks capture: (frame slot, context slot), copied at entry.
    pub captured_args: Vec<(u16, u16)>,
}

/// The compiled body of a method or block.
pub struct Code {
    pub ops: Vec<Op>,
    pub literals: Vec<Value>,
    pub sites: Vec<SendSite>,
    pub num_args: usize,
    pub num_locals: usize,
    pub max_stack: usize,
    /// `Some` if the activation allocates a context for captured variables.
    pub context: Option<ContextShape>,
    /// 0 for a method, n for a block nested n levels deep.
    pub block_depth: u8,
    /// Profiling: how often the method was invoked, and each back-edge taken.
    pub invocations: Cell<u64>,
    pub backedges: Vec<Cell<u32>>,
    /// Tier 2's state word of each loop (indexed like `backedges`).
    pub loops: Vec<metajit::driver::LoopCell>,
    /// Tier 2's state word of the code's entry trace (loop-less code only).
    pub entry: metajit::driver::LoopCell,
    /// Source position of each op (for backtraces): a send's is where its
    /// expression starts.
    pub positions: Vec<som_syntax::Span>,
    /// The source file the code comes from: an index into `Vm::sources`, or
    /// `NO_SOURCE` (code typed into the REPL).
    pub source: u32,
    /// Operand-stack depth before each op (the same on every path to it).
    pub depths: Vec<u16>,
    /// Tier-1 state: the compiled method once compiled (see `tier1`).
    pub tier1: Cell<Tier1State>,
}

/// `Code::source` of code that comes from no file.
pub const NO_SOURCE: u32 = u32::MAX;

/// Whether a method has tier-1 code.
#[derive(Debug, Clone, Copy)]
pub enum Tier1State {
    NotCompiled,
    Compiled(metajit::shallow::CompiledFn),
    /// Compilation failed; the method stays interpreted.
    Failed,
}

impl Code {
    /// Slots a frame of this code needs: self, arguments, locals and operand stack.
    pub fn frame_size(&self) -> usize {
        1 + self.num_args + self.num_locals + self.max_stack
    }

    /// The frame's stack pointer (slot index) before instruction `pc`.
    pub fn sp_before(&self, pc: usize) -> usize {
        1 + self.num_args + self.num_locals + self.depths[pc] as usize
    }

    /// A human-readable listing (for `--disassemble` and tests).
    pub fn disassemble(&self, name_of: &dyn Fn(Value) -> String) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "args={} locals={} stack={} context={:?}",
            self.num_args, self.num_locals, self.max_stack, self.context
        );
        for (pc, op) in self.ops.iter().enumerate() {
            let detail = match op {
                Op::Send(s) | Op::SuperSend(s) => {
                    let site = &self.sites[*s as usize];
                    format!("  ; #{} argc={}", name_of(site.selector), site.argc)
                }
                Op::PushLiteral(l) => format!("  ; {}", name_of(self.literals[*l as usize])),
                _ => String::new(),
            };
            let _ = writeln!(out, "{pc:4} {op:?}{detail}");
        }
        out
    }
}
