//! The interpreter: tier 0.
//!
//! * `frame` — activations and their slots.
//! * `handlers` — the interpreter definition: one handler per bytecode, generic over
//!   `metajit::Machine`, returning a `metajit::Step`.
//! * `ops` — the op table: which handler runs each bytecode, and how tier 1 lowers it.
//! * `dispatch` — the loop that runs handlers with the `Concrete` machine and carries
//!   out their steps.
//! * `send` — message sends: lookup, inline caches, activation, DNU, non-local return.

pub mod dispatch;
pub mod frame;
pub mod handlers;
pub mod ops;
pub mod send;

pub use frame::Frame;
