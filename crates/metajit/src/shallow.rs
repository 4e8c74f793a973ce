//! The shallow compiler: tier 1 (DESIGN section 6).
//!
//! It walks every reachable instruction of one method once, without executing anything,
//! and emits native code (through [`crate::backend`]) that is a sequence of calls to the
//! interpreter's own handlers, with native control flow between them. What to emit for an
//! instruction comes from the client language as a [`Lowering`], which it derives from
//! the handler's annotation: a `threaded` handler becomes a call of its concrete entry,
//! a `control` handler becomes a call that decides plus a native branch (or, for
//! unconditional jumps and back-edges, no call at all), a return leaves the function.
//!
//! The activation's state (operand stack, locals, pc) stays in the interpreter's frame in
//! memory, exactly as the handlers expect it, so compiled code and interpreter can hand
//! an activation to each other at any instruction boundary.
//!
//! Calling convention: every entry is `extern "C" fn(ctx, frame, code, instr) -> status`
//! and the compiled method is `extern "C" fn(ctx, frame) -> status`, where `ctx` and
//! `frame` are the language's runtime and activation and `status` one of [`status`].

use std::collections::VecDeque;

/// What an entry or a compiled method answers.
pub mod status {
    /// Continue with the next instruction (or: the branch is not taken).
    pub const NEXT: u64 = 0;
    /// The conditional branch is taken.
    pub const TAKEN: u64 = 1;
    /// The activation returned; the language stored the result.
    pub const RETURN: u64 = 2;
    /// An error or unwind is pending in the language runtime.
    pub const UNWIND: u64 = 3;
    /// Start the activation over at its first instruction (the entry has reset the frame).
    pub const RESTART: u64 = 4;
}

/// The concrete entry of a handler, as tier-1 code calls it.
pub type EntryFn =
    unsafe extern "C" fn(ctx: *mut u8, frame: *mut u8, code: *const u8, instr: *const u8) -> u64;

/// A compiled method.
pub type CompiledFn = unsafe extern "C" fn(ctx: *mut u8, frame: *mut u8) -> u64;

/// How one instruction becomes native code.
#[derive(Debug, Clone, Copy)]
pub enum Lowering {
    /// Call the entry. With `may_exit`, any status but [`status::NEXT`] leaves the
    /// straight line (return, unwind, restart); without, the status is ignored.
    Call {
        entry: EntryFn,
        instr: *const u8,
        may_exit: bool,
    },
    /// Call the entry: [`status::NEXT`] falls through, [`status::TAKEN`] jumps to
    /// `target`, anything else leaves as for `Call`.
    Branch {
        entry: EntryFn,
        instr: *const u8,
        target: u32,
    },
    /// Jump to `target`; nothing to call.
    Jump { target: u32 },
    /// A loop back-edge: increment the 32-bit counter at `counter` (the embedded
    /// profiler), then jump to the loop header `target`.
    BackEdge { target: u32, counter: *mut u32 },
    /// Call the entry and leave the compiled method with its status.
    Return { entry: EntryFn, instr: *const u8 },
}

/// A method as the shallow compiler sees it.
pub struct MethodShape<'a> {
    /// Passed as `code` to every entry.
    pub code: *const u8,
    /// One lowering per instruction; control starts at index 0.
    pub instrs: &'a [Lowering],
    /// Byte offset of the frame's 32-bit pc field: before every call that can leave the
    /// straight line, compiled code stores the index of the next instruction there, as
    /// the interpreter would have (backtraces and restarts read it).
    pub pc_offset: i32,
}

impl MethodShape<'_> {
    /// The instructions reachable from the entry, in the order the walk finds them.
    pub fn reachable(&self) -> Vec<usize> {
        let n = self.instrs.len();
        let mut seen = vec![false; n];
        let mut order = Vec::new();
        let mut work = VecDeque::from([0usize]);
        while let Some(pc) = work.pop_front() {
            if pc >= n || seen[pc] {
                continue;
            }
            seen[pc] = true;
            order.push(pc);
            match self.instrs[pc] {
                Lowering::Call { .. } => work.push_back(pc + 1),
                Lowering::Branch { target, .. } => {
                    work.push_back(pc + 1);
                    work.push_back(target as usize);
                }
                Lowering::Jump { target } | Lowering::BackEdge { target, .. } => {
                    work.push_back(target as usize)
                }
                Lowering::Return { .. } => {}
            }
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn nop(_: *mut u8, _: *mut u8, _: *const u8, _: *const u8) -> u64 {
        status::NEXT
    }

    #[test]
    fn the_walk_visits_every_reachable_instruction_once() {
        let call = Lowering::Call {
            entry: nop,
            instr: std::ptr::null(),
            may_exit: false,
        };
        let ret = Lowering::Return {
            entry: nop,
            instr: std::ptr::null(),
        };
        // 0: call; 1: branch to 4; 2: back-edge to 0; 3: unreachable; 4: return
        let instrs = [
            call,
            Lowering::Branch {
                entry: nop,
                instr: std::ptr::null(),
                target: 4,
            },
            Lowering::BackEdge {
                target: 0,
                counter: std::ptr::null_mut(),
            },
            call,
            ret,
        ];
        let shape = MethodShape {
            code: std::ptr::null(),
            instrs: &instrs,
            pc_offset: 0,
        };
        assert_eq!(shape.reachable(), vec![0, 1, 2, 4]);
    }
}
