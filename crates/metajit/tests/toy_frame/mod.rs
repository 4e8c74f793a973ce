//! The activation of the toy languages in this folder's tests: a window of slots
//! (`base`, with an operand stack up to `sp`), a pc and one auxiliary word.

use metajit::StackFrame;

#[repr(C)]
pub struct Frame {
    /// Slot 0 of this activation's slots.
    pub base: *mut u64,
    pub sp: usize,
    pub pc: u32,
    /// The auxiliary word (the tracing test keeps the running function there).
    pub aux: [u64; 1],
}

impl StackFrame for Frame {
    fn slot_base(&mut self) -> *mut u64 {
        self.base
    }
    fn sp(&self) -> usize {
        self.sp
    }
    fn set_sp(&mut self, sp: usize) {
        self.sp = sp
    }
    fn aux_base(&mut self) -> *mut u64 {
        self.aux.as_mut_ptr()
    }
}
