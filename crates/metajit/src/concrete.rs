//! [`Concrete`]: the machine that simply executes. Every method is `#[inline(always)]`,
//! so a handler monomorphised with it costs what a hand-written interpreter costs.

use crate::machine::{BinOp, Cmp, FBinOp, Machine, StackFrame};

/// The executing machine. Stateless: words are the raw 64-bit values.
#[derive(Debug, Default, Clone, Copy)]
pub struct Concrete;

impl Machine for Concrete {
    type W = u64;

    #[inline(always)]
    fn konst(&mut self, bits: u64) -> u64 {
        bits
    }
    #[inline(always)]
    fn bits(&mut self, w: u64) -> u64 {
        w
    }
    #[inline(always)]
    fn promote(&mut self, w: u64) -> u64 {
        w
    }

    #[inline(always)]
    fn slot<F: StackFrame>(&mut self, f: &mut F, i: usize) -> u64 {
        // SAFETY: the interpreter definition only names slots inside its frame, whose
        // size the compiler computed (StackFrame's contract).
        unsafe { *f.slot_base().add(i) }
    }
    #[inline(always)]
    fn set_slot<F: StackFrame>(&mut self, f: &mut F, i: usize, w: u64) {
        // SAFETY: as in `slot`.
        unsafe { *f.slot_base().add(i) = w }
    }
    #[inline(always)]
    fn push<F: StackFrame>(&mut self, f: &mut F, w: u64) {
        let sp = f.sp();
        // SAFETY: the compiler sized the frame for the method's maximum stack depth.
        unsafe { *f.slot_base().add(sp) = w }
        f.set_sp(sp + 1);
    }
    #[inline(always)]
    fn pop<F: StackFrame>(&mut self, f: &mut F) -> u64 {
        let sp = f.sp() - 1;
        f.set_sp(sp);
        // SAFETY: the bytecode is stack-balanced, so the slot below sp is in the frame.
        unsafe { *f.slot_base().add(sp) }
    }
    #[inline(always)]
    fn peek<F: StackFrame>(&mut self, f: &mut F, depth: usize) -> u64 {
        let sp = f.sp();
        // SAFETY: as in `pop`.
        unsafe { *f.slot_base().add(sp - 1 - depth) }
    }
    #[inline(always)]
    fn drop_n<F: StackFrame>(&mut self, f: &mut F, n: usize) {
        let sp = f.sp();
        f.set_sp(sp - n);
    }

    #[inline(always)]
    fn aux<F: StackFrame>(&mut self, f: &mut F, i: usize) -> u64 {
        // SAFETY: interpreter definitions name only the aux words their frames have.
        unsafe { *f.aux_base().add(i) }
    }
    #[inline(always)]
    fn set_aux<F: StackFrame>(&mut self, f: &mut F, i: usize, w: u64) {
        // SAFETY: as in `aux`.
        unsafe { *f.aux_base().add(i) = w }
    }

    #[inline(always)]
    fn slot_address<F: StackFrame>(&mut self, f: &mut F, i: usize) -> u64 {
        f.slot_base().wrapping_add(i) as u64
    }

    #[inline(always)]
    unsafe fn load(&mut self, base: u64, offset: i32) -> u64 {
        *((base as i64 + offset as i64) as *const u64)
    }
    #[inline(always)]
    unsafe fn store(&mut self, base: u64, offset: i32, w: u64) {
        *((base as i64 + offset as i64) as *mut u64) = w
    }

    #[inline(always)]
    unsafe fn call(
        &mut self,
        func: crate::ir::ResidualFn,
        ctx: *mut u8,
        args: &[u64],
        _effects: crate::ir::Effects,
    ) -> u64 {
        let a = |i: usize| args.get(i).copied().unwrap_or(0);
        func(ctx, a(0), a(1), a(2), a(3))
    }

    #[inline(always)]
    fn bin(&mut self, op: BinOp, a: u64, b: u64) -> u64 {
        op.eval(a, b)
    }
    #[inline(always)]
    fn add_ovf(&mut self, a: u64, b: u64) -> Option<u64> {
        (a as i64).checked_add(b as i64).map(|r| r as u64)
    }
    #[inline(always)]
    fn sub_ovf(&mut self, a: u64, b: u64) -> Option<u64> {
        (a as i64).checked_sub(b as i64).map(|r| r as u64)
    }
    #[inline(always)]
    fn mul_ovf(&mut self, a: u64, b: u64) -> Option<u64> {
        (a as i64).checked_mul(b as i64).map(|r| r as u64)
    }
    #[inline(always)]
    fn fbin(&mut self, op: FBinOp, a: u64, b: u64) -> u64 {
        op.eval(a, b)
    }

    #[inline(always)]
    fn test_bits(&mut self, w: u64, mask: u64, expect: u64) -> bool {
        w & mask == expect
    }
    #[inline(always)]
    fn flag(&mut self, c: Cmp, a: u64, b: u64) -> u64 {
        c.eval(a as i64, b as i64) as u64
    }
    #[inline(always)]
    fn cmp(&mut self, c: Cmp, a: u64, b: u64) -> bool {
        c.eval(a as i64, b as i64)
    }
    #[inline(always)]
    fn fcmp(&mut self, c: Cmp, a: u64, b: u64) -> bool {
        c.eval(f64::from_bits(a), f64::from_bits(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct F {
        slots: [u64; 4],
        sp: usize,
        aux: [u64; 1],
    }
    impl StackFrame for F {
        fn slot_base(&mut self) -> *mut u64 {
            self.slots.as_mut_ptr()
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

    #[test]
    fn stack_operations() {
        let mut m = Concrete;
        let mut f = F {
            slots: [9, 0, 0, 0],
            sp: 1,
            aux: [3],
        };
        assert_eq!(m.aux(&mut f, 0), 3);
        m.push(&mut f, 5);
        m.push(&mut f, 6);
        assert_eq!(m.peek(&mut f, 0), 6);
        assert_eq!(m.peek(&mut f, 1), 5);
        assert_eq!(m.pop(&mut f), 6);
        m.drop_n(&mut f, 1);
        assert_eq!(f.sp, 1);
        m.set_slot(&mut f, 3, 4);
        assert_eq!(m.slot(&mut f, 3), 4);
        assert_eq!(m.slot(&mut f, 0), 9);
    }

    #[test]
    fn arithmetic_and_decisions() {
        let mut m = Concrete;
        assert_eq!(m.add_ovf(i64::MAX as u64, 1), None);
        assert_eq!(m.add_ovf(2, 3), Some(5));
        assert_eq!(m.sub_ovf(i64::MIN as u64, 1), None);
        assert_eq!(m.mul_ovf(1 << 40, 1 << 40), None);
        assert_eq!(m.bin(BinOp::Sar, (-8i64) as u64, 1), (-4i64) as u64);
        assert_eq!(m.bin(BinOp::Shr, u64::MAX, 63), 1);
        assert!(m.test_bits(0b101, 0b11, 0b01));
        assert!(m.cmp(Cmp::Lt, (-1i64) as u64, 0));
        let (a, b) = (1.5f64.to_bits(), 2.0f64.to_bits());
        assert_eq!(f64::from_bits(m.fbin(FBinOp::Mul, a, b)), 3.0);
        assert!(m.fcmp(Cmp::Lt, a, b));
        assert!(!m.fcmp(Cmp::Eq, f64::NAN.to_bits(), f64::NAN.to_bits()));
    }
}
