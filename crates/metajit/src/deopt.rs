//! Leaving compiled code: turns a failed guard's snapshot and the exit buffer the
//! trace filled ([`crate::lower`]) into concrete interpreter state.
//!
//! [`exit_state`] resolves every value of the snapshot (constants from the trace, the
//! others from the buffer). [`ExitState::write_slots`] writes the slots into the frame
//! window; rebuilding the activations (the root frame's pc, sp and auxiliary words, a
//! frame for every inlined callee, resuming them innermost first) is the client's, as
//! only it knows what a frame is.

use crate::ir::{Ref, SnapId, Trace};

/// One activation to rebuild (outermost first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameState {
    pub code: u64,
    pub entry: u64,
    /// Resume at this instruction (for callers: the send in progress).
    pub pc: u32,
    /// Slot 0, counted from the root frame's slot 0.
    pub base: i32,
    pub sp: u32,
    /// Auxiliary words to set: (index, value).
    pub aux: Vec<(u16, u64)>,
}

/// The interpreter state at a failed guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitState {
    pub frames: Vec<FrameState>,
    /// (slot from the root frame's slot 0, value).
    pub slots: Vec<(i32, u64)>,
}

/// The state at snapshot `snap` of `trace`, given the exit buffer its exit filled.
pub fn exit_state(trace: &Trace, snap: SnapId, buffer: &[u64]) -> ExitState {
    let s = &trace.snaps[snap as usize];
    let live = s.live();
    let value = |r: Ref| -> u64 {
        match trace.const_value(r) {
            Some(k) => k,
            None => {
                let i = live
                    .iter()
                    .position(|&l| l == r)
                    .expect("snapshot values are live");
                buffer[i]
            }
        }
    };
    ExitState {
        frames: s
            .frames
            .iter()
            .map(|f| FrameState {
                code: f.code,
                entry: f.entry,
                pc: f.pc,
                base: f.base,
                sp: f.sp,
                aux: f.aux.iter().map(|&(i, r)| (i, value(r))).collect(),
            })
            .collect(),
        slots: s.slots.iter().map(|&(n, r)| (n, value(r))).collect(),
    }
}

impl ExitState {
    /// Writes the slots into the frame window whose slot 0 is `root_base`.
    ///
    /// # Safety
    /// `root_base` must be the root frame's slot 0 of the activation the trace ran
    /// in, with every slot the snapshot names inside the window (the client checks
    /// that the window has room for the deepest frame).
    pub unsafe fn write_slots(&self, root_base: *mut u64) {
        for &(n, v) in &self.slots {
            *root_base.offset(n as isize) = v;
        }
    }

    /// The highest slot (from the root's slot 0) any rebuilt frame uses.
    pub fn top(&self) -> i32 {
        self.frames
            .iter()
            .map(|f| f.base + f.sp as i32)
            .max()
            .unwrap_or(0)
    }
}
