//! The shallow compiler: tier 1 (DESIGN section 6).
//!
//! It walks every reachable instruction of one method once, without executing anything,
//! and emits native code (through [`crate::backend`]) that is a sequence of calls to the
//! interpreter's own handlers, with native control flow between them. What to emit for an
//! instruction comes from the client language as a [`Lowering`], which it derives from
//! the handler's annotation: a handler is compiled into the method by partial
//! evaluation (its fast paths become native code, its slow paths calls of its concrete
//! entry; see [`crate::emit`]) or, where that is switched off, called; a `control`
//! handler's decision becomes a native branch (unconditional jumps and back-edges need
//! no handler at all), a return leaves the function.
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
    /// A back-edge counter passed its switch threshold: the compiled code left the
    /// activation with the frame's pc at the loop header, for another tier to resume.
    pub const SWITCH: u64 = 5;
}

/// The concrete entry of a handler, as tier-1 code calls it.
pub type EntryFn =
    unsafe extern "C" fn(ctx: *mut u8, frame: *mut u8, code: *const u8, instr: *const u8) -> u64;

/// A compiled method.
pub type CompiledFn = unsafe extern "C" fn(ctx: *mut u8, frame: *mut u8) -> u64;

/// A direct call from an inline-cached send site: like an entry, plus the target the
/// guard selected (for SOM, the method to invoke).
pub type DirectFn = unsafe extern "C" fn(
    ctx: *mut u8,
    frame: *mut u8,
    code: *const u8,
    instr: *const u8,
    target: *const u8,
) -> u64;

/// How compiled code finds the receiver of a send and computes its guard key (for
/// SOM, its class) without calling out: the receiver is the word `depth` below the top
/// of the frame's operand stack; a word matching one of the immediate tags has that
/// tag's key, any other word is a pointer whose key is the word at `header_offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverKey {
    /// Offset in the frame of the pointer to slot 0.
    pub base_offset: i32,
    /// Offset in the frame of the stack pointer (a slot index, 64-bit).
    pub sp_offset: i32,
    pub depth: u32,
    /// `(mask, value, key)`: a word `w` with `w & mask == value` has key `key`.
    pub immediate_tags: Vec<(u64, u64, u64)>,
    pub header_offset: i32,
}

/// Runs a handler with the [`crate::emit::Emit`] machine, emitting one path of its code
/// per call (`(machine, ctx, code, instr)`, the same context as an entry gets), and
/// answers how that path ends.
pub type SpecialiseFn = for<'e, 'f> fn(
    &mut crate::emit::Emit<'e, 'f>,
    ctx: *mut u8,
    code: *const u8,
    instr: *const u8,
) -> crate::emit::PathEnd;

/// How a specialised instruction continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// With the next instruction.
    Next,
    /// With the next instruction or, if taken, at this one.
    Branch(u32),
    /// By leaving the activation.
    Return,
}

/// One case of an inline cache: receivers with guard key `key` go to `direct` with
/// `target`.
#[derive(Debug, Clone, Copy)]
pub struct CacheCase {
    pub key: u64,
    pub direct: DirectFn,
    pub target: *const u8,
}

/// How one instruction becomes native code.
#[derive(Debug, Clone)]
pub enum Lowering {
    /// Compile the handler's body into the method by partial evaluation (see
    /// [`crate::emit`]): its decisions become native branches, and paths that need the
    /// runtime call `entry` instead (the slow path; statuses as for `Call` with
    /// `may_exit`, or as for `Branch`/`Return` by `flow`). `sp` is the operand-stack
    /// pointer before the instruction (slot index), the same on every path to it.
    Specialised {
        emit: SpecialiseFn,
        entry: EntryFn,
        instr: *const u8,
        sp: usize,
        flow: Flow,
    },
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
    /// profiler), then jump to the loop header `target` — unless the count has reached
    /// `switch_at`: then leave with [`status::SWITCH`] and the pc at the header.
    BackEdge {
        target: u32,
        counter: *mut u32,
        switch_at: Option<u32>,
    },
    /// Call the entry and leave the compiled method with its status.
    Return { entry: EntryFn, instr: *const u8 },
    /// A send with an inline cache: compute the receiver's key inline, compare it with
    /// each case's (a guard chain), call the matching case's direct entry, or else the
    /// generic `entry`. Statuses as for `Call` with `may_exit`.
    CachedSend {
        entry: EntryFn,
        instr: *const u8,
        receiver: ReceiverKey,
        cases: Vec<CacheCase>,
    },
}

/// A method as the shallow compiler sees it.
pub struct MethodShape<'a> {
    /// The runtime context inline handlers get at compile time (for SOM, the VM).
    pub ctx: *mut u8,
    /// How inline handlers reach the frame's stack and auxiliary words.
    pub layout: crate::emit::FrameLayout,
    /// Passed as `code` to every entry.
    pub code: *const u8,
    /// One lowering per instruction; control starts at index 0.
    pub instrs: &'a [Lowering],
    /// Route every handler call through a stub that tests a dummy flag first, as the
    /// unoptimised original did (the paper's Q3 ablation).
    pub stub_handlers: bool,
    /// Byte offset of the frame's 32-bit pc field: before every call that can leave the
    /// straight line, compiled code stores the index of the next instruction there, as
    /// the interpreter would have (backtraces and restarts read it).
    pub pc_offset: i32,
    /// Byte offset in `ctx` of the word where a returning activation leaves its result
    /// (what entries do before answering [`status::RETURN`]).
    pub result_offset: i32,
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
                Lowering::Call { .. }
                | Lowering::CachedSend { .. }
                | Lowering::Specialised {
                    flow: Flow::Next, ..
                } => work.push_back(pc + 1),
                Lowering::Specialised {
                    flow: Flow::Return, ..
                } => {}
                Lowering::Branch { target, .. }
                | Lowering::Specialised {
                    flow: Flow::Branch(target),
                    ..
                } => {
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
impl<'a> MethodShape<'a> {
    /// A shape over `instrs` for the crate's tests: no context or code; frames hold
    /// slot 0's address, the stack pointer, two auxiliary words and the 32-bit pc (at
    /// 32); a returning activation leaves its result in the context's first word.
    pub(crate) fn for_test(instrs: &'a [Lowering]) -> MethodShape<'a> {
        MethodShape {
            ctx: std::ptr::null_mut(),
            layout: crate::emit::FrameLayout {
                base_offset: 0,
                sp_offset: 8,
                aux_offset: 16,
            },
            code: std::ptr::null(),
            instrs,
            stub_handlers: false,
            pc_offset: 32,
            result_offset: 0,
        }
    }
}

/// The dummy flag of the stub handlers; never set while code runs (it stands for the
/// "are we tracing?" flag the original's stubs test).
pub static STUB_DUMMY_FLAG: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The stub through which calls go when `stub_handlers` is on: it tests the dummy flag
/// and then calls the real entry.
///
/// # Safety
/// As the entry's own contract.
pub unsafe extern "C" fn stub_call(
    ctx: *mut u8,
    frame: *mut u8,
    code: *const u8,
    instr: *const u8,
    entry: *const u8,
) -> u64 {
    if STUB_DUMMY_FLAG.load(std::sync::atomic::Ordering::Relaxed) {
        return status::NEXT;
    }
    // SAFETY: `entry` is an `EntryFn` (the backend passes only those).
    let entry: EntryFn = std::mem::transmute::<*const u8, EntryFn>(entry);
    entry(ctx, frame, code, instr)
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn nop(_: *mut u8, _: *mut u8, _: *const u8, _: *const u8) -> u64 {
        status::NEXT
    }

    #[test]
    fn the_walk_visits_every_reachable_instruction_once() {
        let call = || Lowering::Call {
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
            call(),
            Lowering::Branch {
                entry: nop,
                instr: std::ptr::null(),
                target: 4,
            },
            Lowering::BackEdge {
                target: 0,
                counter: std::ptr::null_mut(),
                switch_at: None,
            },
            call(),
            ret,
        ];
        let shape = MethodShape::for_test(&instrs);
        assert_eq!(shape.reachable(), vec![0, 1, 2, 4]);
    }
}
