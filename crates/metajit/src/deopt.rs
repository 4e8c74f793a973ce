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

/// Where a snapshot value comes from when its exit is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Const(u64),
    /// Word `n` of the exit buffer.
    Buffer(u32),
}

impl Source {
    pub fn value(self, buffer: &[u64]) -> u64 {
        match self {
            Source::Const(k) => k,
            Source::Buffer(i) => buffer[i as usize],
        }
    }
}

/// A snapshot resolved once, when its trace is compiled, so that taking the exit
/// only copies words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitMap {
    /// (code, entry, pc, base, sp, aux sources) per frame, outermost first.
    pub frames: Vec<FrameMap>,
    pub slots: Vec<(i32, Source)>,
    /// How many words the exit saves.
    pub live: usize,
}

/// One frame of an [`ExitMap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameMap {
    pub code: u64,
    pub entry: u64,
    pub pc: u32,
    pub base: i32,
    pub sp: u32,
    pub aux: Vec<(u16, Source)>,
}

impl ExitMap {
    /// The map of snapshot `snap` of `trace`.
    pub fn new(trace: &Trace, snap: SnapId) -> ExitMap {
        let s = &trace.snaps[snap as usize];
        let live = s.live();
        let source = |r: Ref| -> Source {
            match trace.const_value(r) {
                Some(k) => Source::Const(k),
                None => Source::Buffer(
                    live.iter()
                        .position(|&l| l == r)
                        .expect("snapshot values are live") as u32,
                ),
            }
        };
        ExitMap {
            frames: s
                .frames
                .iter()
                .map(|f| FrameMap {
                    code: f.code,
                    entry: f.entry,
                    pc: f.pc,
                    base: f.base,
                    sp: f.sp,
                    aux: f.aux.iter().map(|&(i, r)| (i, source(r))).collect(),
                })
                .collect(),
            slots: s.slots.iter().map(|&(n, r)| (n, source(r))).collect(),
            live: live.len(),
        }
    }

    /// The maps of every snapshot of `trace`.
    pub fn all(trace: &Trace) -> Vec<ExitMap> {
        (0..trace.snaps.len() as SnapId)
            .map(|s| ExitMap::new(trace, s))
            .collect()
    }

    /// The concrete state, given the exit buffer.
    pub fn state(&self, buffer: &[u64]) -> ExitState {
        ExitState {
            frames: self
                .frames
                .iter()
                .map(|f| FrameState {
                    code: f.code,
                    entry: f.entry,
                    pc: f.pc,
                    base: f.base,
                    sp: f.sp,
                    aux: f.aux.iter().map(|&(i, s)| (i, s.value(buffer))).collect(),
                })
                .collect(),
            slots: self
                .slots
                .iter()
                .map(|&(n, s)| (n, s.value(buffer)))
                .collect(),
        }
    }

    /// Writes the slots into the frame window whose slot 0 is `root_base`.
    ///
    /// # Safety
    /// As [`ExitState::write_slots`].
    pub unsafe fn write_slots(&self, buffer: &[u64], root_base: *mut u64) {
        for &(n, s) in &self.slots {
            *root_base.offset(n as isize) = s.value(buffer);
        }
    }
}

/// The state at snapshot `snap` of `trace`, given the exit buffer its exit filled.
pub fn exit_state(trace: &Trace, snap: SnapId, buffer: &[u64]) -> ExitState {
    ExitMap::new(trace, snap).state(buffer)
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
