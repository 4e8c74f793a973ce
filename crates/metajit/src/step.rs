//! [`Step`]: the control flow a handler returns instead of performing.
//!
//! Green facts (jump targets) are plain numbers; decisions already taken on runtime values
//! arrive as `bool`s that the machine produced (and, when recording, guarded). What a step
//! means is up to the engine: the interpreter follows it, the tier-1 compiler turns it into
//! native branches and calls, the recorder closes or continues the trace.

/// What happens after a handler ran. `W` is the machine's word, `X` the client language's
/// description of everything that leaves the handler's activation (sends, returns across
/// activations, errors), which only the language runtime can carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<W, X> {
    /// Continue with the next instruction.
    Next,
    /// Continue at a forward jump target.
    Jump(u32),
    /// A conditional jump whose condition the machine decided: go to `target` if
    /// `taken`, else fall through.
    CondJump { taken: bool, target: u32 },
    /// The back-edge of a loop: continue at the loop header `target`. Counters tick here;
    /// tier-1 code checks its switch threshold here; traces start and close here.
    BackEdge(u32),
    /// Leave the activation with this value.
    Return(W),
    /// Hand control to the language runtime (a send, a non-local return, an error...).
    Exit(X),
}
