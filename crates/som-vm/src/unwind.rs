//! [`Unwind`]: everything that leaves activations other than a normal return. It travels
//! up the Rust stack as the `Err` of [`VmResult`] until an activation handles it: a home
//! method catches its non-local return, the caller of `restart` restarts, the top level
//! reports errors and exits.

use crate::value::Value;

#[derive(Debug, Clone)]
pub enum Unwind {
    /// `^value` from a block, travelling to the activation whose context is `target`.
    NonLocalReturn { target: Value, value: Value },
    /// `Block>>restart`: the activation that sent it starts over.
    Restart,
    /// `System>>exit:`.
    Exit(i32),
    /// A VM-level error (bad primitive argument, stack overflow, a class that does not
    /// parse...), with the SOM backtrace taken where it happened (empty for errors
    /// outside any activation). Reported on stderr: the backtrace, then the message.
    Error { message: String, backtrace: String },
    /// `Object>>error:` of our core library: the program's own error. Reported as
    /// every SOM library's `error:` reports it, `ERROR: message` on stdout, with the
    /// backtrace on stderr.
    ProgramError { message: String, backtrace: String },
}

/// Results of everything that can unwind. The unwind is boxed so that a
/// `VmResult<Value>` is two words, returned in registers: every send returns one, and
/// unwinding is rare (an allocation then costs little).
pub type VmResult<T> = Result<T, Box<Unwind>>;
