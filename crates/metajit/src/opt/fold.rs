//! Constant folding and algebraic simplification (LuaJIT's `lj_opt_fold`, the
//! arithmetic part): operations on constants become constants, identities (`x + 0`,
//! `x & -1`, `x ^ x`...) become their operand, `x - c` becomes `x + (-c)` and chains
//! of constant additions one addition, a constant added to a load's or store's base
//! moves into its offset, and guards whose operands are constants are dropped when
//! they hold (one that fails on every run stays: it is the trace's way out).

use super::Rewriter;
use crate::ir::{Op, OvfOp, Ref, Trace};
use crate::machine::BinOp;

pub fn run(t: &Trace) -> Trace {
    let mut rw = Rewriter::new(t);
    for (at, op) in t.ops.iter().enumerate() {
        let op = rw.translate(op);
        match simplify(&mut rw, op) {
            Folded::Value(r) => rw.replace(at, r),
            Folded::Dropped => rw.drop_op(at),
            Folded::Op(op) => {
                rw.emit(at, op);
            }
        }
    }
    rw.finish()
}

enum Folded {
    /// The instruction's result is this (no instruction).
    Value(Ref),
    /// A guard that always holds.
    Dropped,
    /// This instruction (maybe simpler than the input).
    Op(Op),
}

/// The checked result of `o` on two words, `None` on overflow.
pub fn checked(o: OvfOp, a: u64, b: u64) -> Option<u64> {
    let (a, b) = (a as i64, b as i64);
    match o {
        OvfOp::Add => a.checked_add(b),
        OvfOp::Sub => a.checked_sub(b),
        OvfOp::Mul => a.checked_mul(b),
    }
    .map(|v| v as u64)
}

fn simplify(rw: &mut Rewriter, op: Op) -> Folded {
    match op {
        Op::Bin(o, a, b) => fold_bin(rw, o, a, b),
        Op::Flag(cc, a, b) => match (rw.konst(a), rw.konst(b)) {
            (Some(x), Some(y)) => Folded::Value(rw.new.konst(cc.eval(x as i64, y as i64) as u64)),
            _ if a == b => Folded::Value(rw.new.konst(cc.eval(0, 0) as u64)),
            _ => Folded::Op(op),
        },
        Op::FBin(o, a, b) => match (rw.konst(a), rw.konst(b)) {
            (Some(x), Some(y)) => Folded::Value(rw.new.konst(o.eval(x, y))),
            _ => Folded::Op(op),
        },
        Op::Ovf(o, a, b, _) => {
            match (rw.konst(a), rw.konst(b)) {
                (Some(x), Some(y)) => {
                    if let Some(v) = checked(o, x, y) {
                        return Folded::Value(rw.new.konst(v));
                    }
                }
                (_, Some(0)) if o != OvfOp::Mul => return Folded::Value(a),
                (Some(0), _) if o == OvfOp::Add => return Folded::Value(b),
                (_, Some(1)) if o == OvfOp::Mul => return Folded::Value(a),
                (Some(1), _) if o == OvfOp::Mul => return Folded::Value(b),
                _ => {}
            }
            Folded::Op(op)
        }
        Op::GuardBits {
            w,
            mask,
            expect,
            holds,
            ..
        } => match rw.konst(w) {
            Some(v) if ((v & mask) == expect) == holds => Folded::Dropped,
            _ => Folded::Op(op),
        },
        Op::GuardCmp {
            cc,
            float,
            a,
            b,
            holds,
            ..
        } => {
            let decided = match (rw.konst(a), rw.konst(b)) {
                (Some(x), Some(y)) if float => Some(cc.eval(f64::from_bits(x), f64::from_bits(y))),
                (Some(x), Some(y)) => Some(cc.eval(x as i64, y as i64)),
                _ if a == b && !float => Some(cc.eval(0, 0)),
                _ => None,
            };
            match decided {
                Some(d) if d == holds => Folded::Dropped,
                _ => Folded::Op(op),
            }
        }
        Op::CallCheck(w, _) => match rw.konst(w) {
            Some(v) if v != 0 => Folded::Dropped,
            _ => Folded::Op(op),
        },
        Op::Load { base, offset, kind } => {
            let (base, offset) = fold_address(rw, base, offset);
            Folded::Op(Op::Load { base, offset, kind })
        }
        Op::Store {
            base,
            offset,
            value,
        } => {
            let (base, offset) = fold_address(rw, base, offset);
            Folded::Op(Op::Store {
                base,
                offset,
                value,
            })
        }
        op => Folded::Op(op),
    }
}

/// `x + c` as (x, c), when `r` is one (new terms).
fn plus_const(rw: &Rewriter, r: Ref) -> Option<(Ref, u64)> {
    match rw.new_op(r)? {
        &Op::Bin(BinOp::Add, x, y) => Some((x, rw.konst(y)?)),
        _ => None,
    }
}

/// A base that is `x + c` becomes `x` with `c` more offset, when that fits.
fn fold_address(rw: &Rewriter, base: Ref, offset: i32) -> (Ref, i32) {
    if let Some((x, c)) = plus_const(rw, base) {
        if let Some(o) = i32::try_from(c as i64)
            .ok()
            .and_then(|c| c.checked_add(offset))
        {
            return (x, o);
        }
    }
    (base, offset)
}

fn fold_bin(rw: &mut Rewriter, o: BinOp, a: Ref, b: Ref) -> Folded {
    let (ka, kb) = (rw.konst(a), rw.konst(b));
    if let (Some(x), Some(y)) = (ka, kb) {
        return Folded::Value(rw.new.konst(o.eval(x, y)));
    }
    // Constants to the right of commutative operations.
    let commutative = matches!(o, BinOp::Add | BinOp::And | BinOp::Or | BinOp::Xor);
    let (a, b, kb) = if commutative && ka.is_some() {
        (b, a, ka)
    } else {
        (a, b, kb)
    };
    match (o, kb) {
        (BinOp::Add | BinOp::Sub | BinOp::Or | BinOp::Xor, Some(0))
        | (BinOp::Shl | BinOp::Sar | BinOp::Shr, Some(0))
        | (BinOp::And, Some(u64::MAX)) => return Folded::Value(a),
        (BinOp::And, Some(0)) => return Folded::Value(b),
        (BinOp::Sub | BinOp::Xor, None) if a == b => return Folded::Value(rw.new.konst(0)),
        (BinOp::And | BinOp::Or, None) if a == b => return Folded::Value(a),
        (BinOp::Sub, Some(c)) => {
            let k = rw.new.konst(c.wrapping_neg());
            return fold_bin(rw, BinOp::Add, a, k);
        }
        (BinOp::Add, Some(c)) => {
            // (x + c1) + c2 = x + (c1 + c2)
            if let Some((x, c1)) = plus_const(rw, a) {
                let k = rw.new.konst(c1.wrapping_add(c));
                return fold_bin(rw, BinOp::Add, x, k);
            }
        }
        _ => {}
    }
    Folded::Op(Op::Bin(o, a, b))
}

#[cfg(test)]
mod tests {
    use crate::opt::test_util::check;

    #[test]
    fn arithmetic_on_constants_folds() {
        check(
            super::run,
            "
            %a = sload 1
            %b = sub #3, #1
            %c = addovf %a, %b @0
            %d = sar #-8, #1
            %e = flag.lt %d, #0
            %f = fadd #0x3ff0000000000000, #0x3ff0000000000000
            sstore 2, %c
            sstore 3, %e
            sstore 4, %f
            toloop
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=5:%b
            ",
            "
            %a = sload 1
            %c = addovf %a, #2 @0
            sstore 2, %c
            sstore 3, #1
            sstore 4, #0x4000000000000000
            toloop
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=5:#2
            ",
        );
    }

    #[test]
    fn identities_and_constant_chains_simplify() {
        check(
            super::run,
            "
            %a = sload 1
            %b = add #0, %a
            %c = and %b, #-1
            %d = xor %c, %c
            %e = sub %a, #8
            %f = add %e, #24
            %g = add %f, #-16
            sstore 2, %d
            sstore 3, %f
            sstore 4, %g
            toloop
            ",
            "
            %a = sload 1
            %e = add %a, #-8
            %f = add %a, #16
            sstore 2, #0
            sstore 3, %f
            sstore 4, %a
            toloop
            ",
        );
    }

    #[test]
    fn constant_offsets_move_into_loads_and_stores() {
        check(
            super::run,
            "
            %a = sload 1
            %p = add %a, #16
            %v = load %p, 8, mut
            store %p, 0, %v
            toloop
            ",
            "
            %a = sload 1
            %p = add %a, #16
            %v = load %a, 24, mut
            store %a, 16, %v
            toloop
            ",
        );
    }

    #[test]
    fn guards_on_constants_are_dropped_when_they_hold_and_kept_when_they_fail() {
        check(
            super::run,
            "
            %a = sload 1
            guard.bits #7, 0x1, 0x1, true @0
            guard.lt #1, #2, true @0
            guard.le %a, %a, true @0
            guard.eq #5, #6, true @0
            guard.flt #0x3ff0000000000000, #0x4000000000000000, true @0
            %c = mulovf #0x4000000000000000, #4 @0
            callcheck #1 @0
            sstore 2, %c
            toloop
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            ",
            "
            %a = sload 1
            guard.eq #5, #6, true @0
            %c = mulovf #0x4000000000000000, #4 @0
            sstore 2, %c
            toloop
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            ",
        );
    }
}
