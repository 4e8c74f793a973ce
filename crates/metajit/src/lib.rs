//! `metajit`: the language-independent half of the two-tier JIT.
//!
//! An interpreter is written once, as bytecode handlers generic over [`Machine`]: the
//! vocabulary through which a handler touches runtime values. A handler reads and writes
//! its frame, tests and combines machine words, and *returns* its control flow as a
//! [`Step`] instead of performing it. Each engine gives that definition its own meaning:
//!
//! * [`Concrete`] executes it (the interpreter, and the handler bodies tier-1 code calls);
//! * the shallow compiler ([`shallow`], [`backend`]; tier 1) turns it into threaded
//!   native code: calls of the handlers' concrete entries and native branches;
//! * [`record::Recorder`] (tier 2) executes it while recording a trace ([`ir`]), which
//!   [`lower`] compiles through Cranelift; failing guards leave through snapshots
//!   ([`snapshot`], [`deopt`]); [`driver`] decides when to record and counts.
//!
//! Handler annotations ([`Annotation`], [`interpreter_definition!`]) play the role of
//! RPython's hints. Nothing in this crate knows about SOM.

pub mod annotations;
pub mod backend;
pub mod concrete;
pub mod deopt;
pub mod driver;
pub mod emit;
pub mod ir;
pub mod lower;
pub mod machine;
pub mod opt;
pub mod record;
pub mod shallow;
pub mod snapshot;
pub mod step;

pub use annotations::{Annotation, HandlerInfo};
pub use concrete::Concrete;
pub use machine::{BinOp, Cmp, FBinOp, Machine, StackFrame};
pub use step::Step;
