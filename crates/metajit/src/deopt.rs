//! Leaving compiled code: turns a failed guard's snapshot and the exit buffer the
//! trace filled ([`crate::lower`]) into concrete interpreter state.
//!
//! [`exit_state`] resolves every value of the snapshot (constants from the trace, the
//! others from the buffer). A snapshot's virtual objects (allocations the optimiser
//! removed) are allocated first, by [`ExitMap::materialise`], into the buffer words
//! after the saved ones, where the values that name them read them. [`ExitState::write_slots`] writes the slots into the frame
//! window; rebuilding the activations (the root frame's pc, sp and auxiliary words, a
//! frame for every inlined callee, resuming them innermost first) is the client's, as
//! only it knows what a frame is.

use crate::ir::{Ref, ResidualFn, SnapId, Trace, MAX_CALL_ARGS};

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
    /// The objects to allocate on exit (into buffer words `live..`), in order.
    pub virtuals: Vec<VirtualMap>,
}

/// One virtual object of an [`ExitMap`]: the allocation call, then its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualMap {
    pub func: u64,
    pub args: Vec<Source>,
    pub fields: Vec<(i32, Source)>,
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
            if r.is_virtual() {
                return Source::Buffer((live.len() + r.virtual_index()) as u32);
            }
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
            virtuals: s
                .virtuals
                .iter()
                .map(|v| VirtualMap {
                    func: v.func,
                    args: v.args.iter().map(|&r| source(r)).collect(),
                    fields: v.fields.iter().map(|&(o, r)| (o, source(r))).collect(),
                })
                .collect(),
        }
    }

    /// The exit buffer words the exit uses: the saved values, then the materialised
    /// objects.
    pub fn words(&self) -> usize {
        self.live + self.virtuals.len()
    }

    /// Allocates the snapshot's virtual objects into buffer words `live..words()`,
    /// each by its call, then stores their fields (which may name each other). Run
    /// before anything reads the state. While it runs, the client must treat buffer
    /// words `0..words()` as roots of its collector (an allocation may collect while
    /// the objects made before it are only there).
    ///
    /// # Safety
    /// `buffer` must hold at least [`ExitMap::words`] words, the first `live` filled
    /// by the exit of this map's snapshot; `ctx` is the context the trace's residual
    /// calls receive, with which each virtual object's function is safe to call; its
    /// result is an object address whose fields at the recorded offsets are
    /// writable words.
    pub unsafe fn materialise(&self, ctx: *mut u8, buffer: *mut u64) {
        let read = |s: Source| match s {
            Source::Const(k) => k,
            Source::Buffer(i) => *buffer.add(i as usize),
        };
        for (k, v) in self.virtuals.iter().enumerate() {
            let mut a = [0u64; MAX_CALL_ARGS];
            for (slot, &s) in a.iter_mut().zip(&v.args) {
                *slot = read(s);
            }
            let func: ResidualFn = std::mem::transmute(v.func as usize);
            *buffer.add(self.live + k) = func(ctx, a[0], a[1], a[2], a[3]);
        }
        for (k, v) in self.virtuals.iter().enumerate() {
            let object = *buffer.add(self.live + k);
            for &(offset, s) in &v.fields {
                *(object.wrapping_add(offset as i64 as u64) as *mut u64) = read(s);
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse::parse;

    /// A residual allocation for the test: four-word objects from a static arena,
    /// the first word the argument.
    unsafe extern "C" fn arena_alloc(ctx: *mut u8, a: u64, _: u64, _: u64, _: u64) -> u64 {
        let arena = &mut *(ctx as *mut Vec<[u64; 4]>);
        arena.push([a, 0, 0, 0]);
        arena.last_mut().unwrap().as_mut_ptr() as u64
    }

    #[test]
    fn an_exit_allocates_its_virtual_objects_in_order_then_stores_their_fields() {
        let f = arena_alloc as *const () as usize;
        let t = parse(&format!(
            "
            %a = sload 1
            guard.bits %a, 0x1, 0x1, true @0
            finish %a
            snapshot @0: [code=0x1 entry=0 pc=0 base=0 sp=3 aux=0:$1] slots=1:%a,2:$0 \
             virtuals={f:#x}(#5){{8:%a,16:$1}};{f:#x}($0){{8:$0}}
            "
        ))
        .unwrap();
        crate::ir::verify::verify(&t).unwrap();
        let map = ExitMap::new(&t, 0);
        assert_eq!((map.live, map.words()), (1, 3));
        let mut arena: Vec<[u64; 4]> = Vec::with_capacity(2);
        let mut buffer = [77u64, 0, 0];
        // SAFETY: the buffer has `words()` words; the function allocates four-word
        // objects in the arena (which has room, so they do not move).
        unsafe { map.materialise(&mut arena as *mut _ as *mut u8, buffer.as_mut_ptr()) };
        let (first, second) = (arena[0].as_ptr() as u64, arena[1].as_ptr() as u64);
        assert_eq!(buffer, [77, first, second]);
        // The first was made from the constant, the second from the first; the fields
        // refer to the saved value and to each other.
        assert_eq!(arena[0], [5, 77, second, 0]);
        assert_eq!(arena[1], [first, first, 0, 0]);
        let state = map.state(&buffer);
        assert_eq!(state.slots, [(1, 77), (2, first)]);
        assert_eq!(state.frames[0].aux, [(0, second)]);
    }
}
