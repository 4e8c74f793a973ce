//! The SOM virtual machine.
//!
//! Data flow: class files (found by `classloader` on the classpath or in the embedded
//! `corelib`) are parsed by `som-syntax` and compiled by `compiler` into `bytecode`;
//! the `interpreter` runs it, calling `primitives`; all objects are allocated through
//! `gc` (MMTk) via the helpers in `universe`, and look as `object` and `value` describe.

// Classes and methods are immortal (`object`'s module invariant): a `*mut Class` or
// `*mut Method` handed around the VM always points to a live object, so functions that
// take one are not `unsafe` to call.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod bytecode;
pub mod call_profile;
pub mod classloader;
pub mod compiler;
pub mod corelib;
pub mod gc;
pub mod interpreter;
pub mod object;
pub mod primitives;
pub mod tier1;
pub mod tier2;
pub mod universe;
pub mod unwind;
pub mod value;

pub use universe::{Mode, Options, Vm};
pub use unwind::{Unwind, VmResult};
pub use value::Value;
