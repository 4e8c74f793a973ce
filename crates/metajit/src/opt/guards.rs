//! Guard elimination from facts (PyPy's `optimizeopt/intbounds` and the class and
//! constant knowledge of `optimizeopt/rewrite`): every guard that passed proves
//! something about its operands, and later guards it implies are dropped.
//!
//! Facts per value: its constant value (from `guard.eq x, #c` holding: later uses of
//! `x` read the constant, so the class of a receiver becomes a constant and the
//! guards and loads that depend on it fold), its known bits (from `guard.bits`, and
//! carried through `and`, `or`, additions of constants, shifts), and a signed range
//! (from comparisons with constants, and through additions, `and` and shifts). An
//! overflow-checked operation whose operand ranges prove it cannot overflow becomes
//! the plain operation.
//!
//! Phis: a value carried round a peeled loop keeps the known bits its entry value has
//! if the `jump` passes a value with the same known bits (checked by running the pass
//! again with weaker assumptions until they hold: induction over the iterations). So a
//! loop counter's tag test runs once, in the preamble.

use super::fold::checked;
use super::Rewriter;
use crate::ir::{Op, OvfOp, Ref, Trace};
use crate::machine::{BinOp, Cmp};
use std::collections::HashMap;

/// What is known of a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fact {
    /// Bits known to be 1, and bits known to be 0.
    ones: u64,
    zeros: u64,
    /// Signed range, inclusive.
    lo: i64,
    hi: i64,
}

const UNKNOWN: Fact = Fact {
    ones: 0,
    zeros: 0,
    lo: i64::MIN,
    hi: i64::MAX,
};

impl Fact {
    fn konst(v: u64) -> Fact {
        Fact {
            ones: v,
            zeros: !v,
            lo: v as i64,
            hi: v as i64,
        }
    }
    fn known(&self) -> u64 {
        self.ones | self.zeros
    }
    /// Only the known bits (what a phi may assume).
    fn bits_only(self) -> Fact {
        Fact {
            ones: self.ones,
            zeros: self.zeros,
            ..UNKNOWN
        }
    }
    /// What both facts say (the bits known alike in both).
    fn meet(self, o: Fact) -> Fact {
        let same = !(self.ones ^ o.ones) & self.known() & o.known();
        Fact {
            ones: self.ones & same,
            zeros: self.zeros & same,
            lo: self.lo.min(o.lo),
            hi: self.hi.max(o.hi),
        }
    }
    /// Does `self` say at least what `o` says (as far as bits go)?
    fn implies_bits(&self, o: &Fact) -> bool {
        self.known() & o.known() == o.known() && (self.ones & o.known()) == o.ones
    }
}

pub fn run(t: &Trace) -> Trace {
    // Assume every phi keeps its entry value's bits; weaken until the jump agrees.
    let mut assumed: Option<Vec<Fact>> = None;
    for _ in 0..8 {
        let (out, phis, next) = pass(t, assumed.as_deref());
        let Some(phis) = phis else { return out };
        let weaker: Vec<Fact> = phis
            .iter()
            .zip(&next)
            .map(|(p, n)| p.meet(*n).bits_only())
            .collect();
        if phis.iter().zip(&next).all(|(p, n)| n.implies_bits(p)) {
            return out;
        }
        assumed = Some(weaker);
    }
    // No agreement (cannot happen: facts only weaken): assume nothing of phis.
    let nothing = vec![UNKNOWN; t.ops.iter().filter(|o| matches!(o, Op::Phi(_))).count()];
    pass(t, Some(&nothing)).0
}

struct Facts {
    of: HashMap<Ref, Fact>,
}

impl Facts {
    fn get(&self, rw: &Rewriter, r: Ref) -> Fact {
        match rw.konst(r) {
            Some(v) => Fact::konst(v),
            None => self.of.get(&r).copied().unwrap_or(UNKNOWN),
        }
    }
    fn refine(&mut self, r: Ref, f: impl FnOnce(&mut Fact)) {
        if r.is_const() {
            return;
        }
        let e = self.of.entry(r).or_insert(UNKNOWN);
        f(e);
    }
}

/// One run: the optimised trace, and for a peeled loop the phis' assumed facts and
/// the facts of the values the jump passes them.
#[allow(clippy::type_complexity)]
fn pass(t: &Trace, assumed: Option<&[Fact]>) -> (Trace, Option<Vec<Fact>>, Vec<Fact>) {
    let mut rw = Rewriter::new(t);
    let mut facts = Facts { of: HashMap::new() };
    let mut phi_facts: Vec<Fact> = Vec::new();
    let mut next = Vec::new();
    for (at, op) in t.ops.iter().enumerate() {
        let op = rw.translate(op);
        match op {
            Op::Phi(init) => {
                let f = match assumed {
                    Some(a) => a[phi_facts.len()],
                    None => facts.get(&rw, init).bits_only(),
                };
                phi_facts.push(f);
                let r = rw.emit(at, op);
                facts.of.insert(r, f);
            }
            Op::Jump(ref args) => {
                next = args.iter().map(|&a| facts.get(&rw, a)).collect();
                rw.emit(at, op);
            }
            Op::GuardBits {
                w,
                mask,
                expect,
                holds,
                ..
            } => {
                let f = facts.get(&rw, w);
                if mask & f.known() == mask && ((f.ones & mask == expect) == holds) {
                    rw.drop_op(at);
                    continue;
                }
                rw.emit(at, op);
                if holds {
                    facts.refine(w, |f| {
                        f.ones |= expect & mask;
                        f.zeros |= mask & !expect;
                    });
                } else if mask.count_ones() == 1 {
                    facts.refine(w, |f| {
                        f.ones |= mask & !expect;
                        f.zeros |= mask & expect;
                    });
                }
            }
            Op::GuardCmp {
                cc,
                float: false,
                a,
                b,
                holds,
                ..
            } => {
                let cc = if holds { cc } else { negate(cc) };
                let (fa, fb) = (facts.get(&rw, a), facts.get(&rw, b));
                if decided(cc, &fa, &fb) == Some(true) {
                    rw.drop_op(at);
                    continue;
                }
                rw.emit(at, op);
                // What holds from here on.
                if let Some(k) = rw.konst(b) {
                    constrain(&mut facts, &mut rw, a, cc, k as i64);
                } else if let Some(k) = rw.konst(a) {
                    constrain(&mut facts, &mut rw, b, swap(cc), k as i64);
                } else {
                    constrain_pair(&mut facts, &rw, a, b, cc);
                }
            }
            Op::Ovf(o, a, b, _) => {
                let (fa, fb) = (facts.get(&rw, a), facts.get(&rw, b));
                let range = ovf_range(o, &fa, &fb);
                let r = match range {
                    // Cannot overflow: the plain operation.
                    Some(_) if o != OvfOp::Mul => {
                        let bo = if o == OvfOp::Add {
                            BinOp::Add
                        } else {
                            BinOp::Sub
                        };
                        rw.emit(at, Op::Bin(bo, a, b))
                    }
                    _ => rw.emit(at, op),
                };
                let mut f = match o {
                    OvfOp::Add => add_bits(&fa, &fb),
                    _ => UNKNOWN,
                };
                if let Some((lo, hi)) = range {
                    (f.lo, f.hi) = (lo, hi);
                }
                facts.of.insert(r, f);
            }
            Op::Bin(o, a, b) => {
                let f = bin_fact(o, &facts.get(&rw, a), &facts.get(&rw, b), rw.konst(b));
                let r = rw.emit(at, op);
                facts.of.insert(r, f);
            }
            op => {
                rw.emit(at, op);
            }
        }
    }
    let phis = (!phi_facts.is_empty()).then_some(phi_facts);
    (rw.finish(), phis, next)
}

fn negate(cc: Cmp) -> Cmp {
    match cc {
        Cmp::Eq => Cmp::Ne,
        Cmp::Ne => Cmp::Eq,
        Cmp::Lt => Cmp::Ge,
        Cmp::Le => Cmp::Gt,
        Cmp::Gt => Cmp::Le,
        Cmp::Ge => Cmp::Lt,
    }
}

/// `a cc b` as `b (swap cc) a`.
fn swap(cc: Cmp) -> Cmp {
    match cc {
        Cmp::Lt => Cmp::Gt,
        Cmp::Le => Cmp::Ge,
        Cmp::Gt => Cmp::Lt,
        Cmp::Ge => Cmp::Le,
        c => c,
    }
}

/// Whether `a cc b` is decided by the ranges.
fn decided(cc: Cmp, a: &Fact, b: &Fact) -> Option<bool> {
    let always = match cc {
        Cmp::Lt => a.hi < b.lo,
        Cmp::Le => a.hi <= b.lo,
        Cmp::Gt => a.lo > b.hi,
        Cmp::Ge => a.lo >= b.hi,
        Cmp::Eq => a.lo == a.hi && b.lo == b.hi && a.lo == b.lo,
        Cmp::Ne => a.hi < b.lo || a.lo > b.hi,
    };
    if always {
        return Some(true);
    }
    let never = match cc {
        Cmp::Lt => a.lo >= b.hi,
        Cmp::Le => a.lo > b.hi,
        Cmp::Gt => a.hi <= b.lo,
        Cmp::Ge => a.hi < b.lo,
        Cmp::Eq => a.hi < b.lo || a.lo > b.hi,
        Cmp::Ne => a.lo == a.hi && b.lo == b.hi && a.lo == b.lo,
    };
    never.then_some(false).or_else(|| {
        // Known bits that differ decide equality.
        let differ = (a.ones & b.zeros) | (a.zeros & b.ones);
        match (cc, differ != 0) {
            (Cmp::Eq, true) => Some(false),
            (Cmp::Ne, true) => Some(true),
            _ => None,
        }
    })
}

/// `x cc k` holds from here on.
fn constrain(facts: &mut Facts, rw: &mut Rewriter, x: Ref, cc: Cmp, k: i64) {
    if cc == Cmp::Eq {
        // The value is the constant: later uses read it.
        let kr = rw.new.konst(k as u64);
        rw.substitute(x, kr);
    }
    facts.refine(x, |f| match cc {
        Cmp::Eq => *f = Fact::konst(k as u64),
        Cmp::Lt => f.hi = f.hi.min(k.saturating_sub(1)),
        Cmp::Le => f.hi = f.hi.min(k),
        Cmp::Gt => f.lo = f.lo.max(k.saturating_add(1)),
        Cmp::Ge => f.lo = f.lo.max(k),
        Cmp::Ne => {}
    });
}

/// `a cc b` holds (neither constant): each bounds the other.
fn constrain_pair(facts: &mut Facts, rw: &Rewriter, a: Ref, b: Ref, cc: Cmp) {
    let (fa, fb) = (facts.get(rw, a), facts.get(rw, b));
    match cc {
        Cmp::Lt | Cmp::Le => {
            let d = (cc == Cmp::Lt) as i64;
            facts.refine(a, |f| f.hi = f.hi.min(fb.hi.saturating_sub(d)));
            facts.refine(b, |f| f.lo = f.lo.max(fa.lo.saturating_add(d)));
        }
        Cmp::Gt | Cmp::Ge => {
            let d = (cc == Cmp::Gt) as i64;
            facts.refine(a, |f| f.lo = f.lo.max(fb.lo.saturating_add(d)));
            facts.refine(b, |f| f.hi = f.hi.min(fa.hi.saturating_sub(d)));
        }
        _ => {}
    }
}

/// The result range of a checked operation, if it cannot overflow.
fn ovf_range(o: OvfOp, a: &Fact, b: &Fact) -> Option<(i64, i64)> {
    let corners = [
        checked(o, a.lo as u64, b.lo as u64)?,
        checked(o, a.lo as u64, b.hi as u64)?,
        checked(o, a.hi as u64, b.lo as u64)?,
        checked(o, a.hi as u64, b.hi as u64)?,
    ]
    .map(|v| v as i64);
    // Addition and subtraction are monotone in each operand, multiplication is
    // bilinear: either way the corners bound the result.
    Some((*corners.iter().min()?, *corners.iter().max()?))
}

/// Known bits of `a + b`: the low bits below the lowest unknown bit of either add
/// exactly.
fn add_bits(a: &Fact, b: &Fact) -> Fact {
    let both = a.known() & b.known();
    let low = (!both).trailing_zeros();
    if low == 0 {
        return UNKNOWN;
    }
    let mask = if low >= 64 {
        u64::MAX
    } else {
        (1u64 << low) - 1
    };
    let sum = a.ones.wrapping_add(b.ones) & mask;
    Fact {
        ones: sum,
        zeros: !sum & mask,
        ..UNKNOWN
    }
}

fn bin_fact(o: BinOp, a: &Fact, b: &Fact, kb: Option<u64>) -> Fact {
    match o {
        BinOp::Add => {
            let mut f = add_bits(a, b);
            if let (Some(lo), Some(hi)) = (a.lo.checked_add(b.lo), a.hi.checked_add(b.hi)) {
                (f.lo, f.hi) = (lo, hi);
            }
            f
        }
        BinOp::Sub => match kb {
            Some(k) => bin_fact(BinOp::Add, a, &Fact::konst(k.wrapping_neg()), None),
            None => UNKNOWN,
        },
        BinOp::And => {
            let mut f = Fact {
                ones: a.ones & b.ones,
                zeros: a.zeros | b.zeros,
                ..UNKNOWN
            };
            // A non-negative mask bounds the result.
            if b.lo >= 0 {
                (f.lo, f.hi) = (0, b.hi);
            }
            f
        }
        BinOp::Or => Fact {
            ones: a.ones | b.ones,
            zeros: a.zeros & b.zeros,
            ..UNKNOWN
        },
        BinOp::Xor => Fact {
            ones: (a.ones & b.zeros) | (a.zeros & b.ones),
            zeros: (a.ones & b.ones) | (a.zeros & b.zeros),
            ..UNKNOWN
        },
        BinOp::Shl | BinOp::Sar | BinOp::Shr => {
            let Some(s) = kb.map(|k| (k & 63) as u32) else {
                return UNKNOWN;
            };
            match o {
                BinOp::Shl => {
                    let mut f = Fact {
                        ones: a.ones << s,
                        zeros: (a.zeros << s) | ((1u64 << s) - 1),
                        ..UNKNOWN
                    };
                    if let (Some(lo), Some(hi)) =
                        (a.lo.checked_mul(1 << s), a.hi.checked_mul(1 << s))
                    {
                        if s < 63 {
                            (f.lo, f.hi) = (lo, hi);
                        }
                    }
                    f
                }
                BinOp::Sar => Fact {
                    ones: ((a.ones as i64) >> s) as u64,
                    zeros: ((a.zeros as i64) >> s) as u64,
                    lo: a.lo >> s,
                    hi: a.hi >> s,
                },
                _ => Fact {
                    ones: a.ones >> s,
                    zeros: (a.zeros >> s) | !(u64::MAX >> s),
                    ..UNKNOWN
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::opt::test_util::check;

    #[test]
    fn a_tag_test_proves_later_ones() {
        check(
            super::run,
            "
            %a = sload 1
            guard.bits %a, 0x1, 0x1, true @0
            guard.bits %a, 0x1, 0x1, true @1
            guard.bits %a, 0x3, 0x1, true @1
            guard.bits %a, 0x1, 0x0, false @1
            sstore 2, %a
            toloop
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            snapshot @1: [code=0x10 entry=0 pc=4 base=0 sp=4 aux=] slots=
            ",
            "
            %a = sload 1
            guard.bits %a, 0x1, 0x1, true @0
            guard.bits %a, 0x3, 0x1, true @1
            sstore 2, %a
            toloop
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            snapshot @1: [code=0x10 entry=0 pc=4 base=0 sp=4 aux=] slots=
            ",
        );
    }

    #[test]
    fn an_equality_guard_makes_the_value_a_constant() {
        check(
            super::run,
            "
            %o = sload 1
            %c = load %o, 0, imm
            guard.eq %c, #0x1000, true @0
            %m = load %c, 16, imm
            sstore 2, %m
            sstore 3, %c
            toloop
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            ",
            "
            %o = sload 1
            %c = load %o, 0, imm
            guard.eq %c, #0x1000, true @0
            %m = load #0x1000, 16, imm
            sstore 2, %m
            sstore 3, #0x1000
            toloop
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            ",
        );
    }

    #[test]
    fn ranges_decide_comparisons_and_remove_overflow_checks() {
        check(
            super::run,
            "
            %i = sload 1
            guard.lt %i, #100, true @0
            guard.ge %i, #0, true @0
            guard.lt %i, #200, true @0
            guard.gt %i, #-1, true @0
            %j = addovf %i, #2 @0
            %k = addovf %j, %i @0
            guard.lt %j, #102, true @0
            %n = sload 2
            %m = addovf %n, #1 @0
            sstore 1, %k
            sstore 2, %m
            toloop
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            ",
            "
            %i = sload 1
            guard.lt %i, #100, true @0
            guard.ge %i, #0, true @0
            %j = add %i, #2
            %k = add %j, %i
            %n = sload 2
            %m = addovf %n, #1 @0
            sstore 1, %k
            sstore 2, %m
            toloop
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            ",
        );
    }

    #[test]
    fn a_loop_counter_keeps_its_tag_round_the_loop() {
        // A tagged integer (low bit 1) plus 2 stays tagged: the loop's tag test goes.
        check(
            super::run,
            "
            %i0 = sload 1
            guard.bits %i0, 0x1, 0x1, true @0
            %j0 = addovf %i0, #2 @0
            sstore 1, %j0
            loop
            %i = phi %j0
            guard.bits %i, 0x1, 0x1, true @1
            %j = addovf %i, #2 @1
            sstore 1, %j
            jump %j
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            snapshot @1: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            ",
            "
            %i0 = sload 1
            guard.bits %i0, 0x1, 0x1, true @0
            %j0 = addovf %i0, #2 @0
            sstore 1, %j0
            loop
            %i = phi %j0
            %j = addovf %i, #2 @1
            sstore 1, %j
            jump %j
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            snapshot @1: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            ",
        );
        // A value that loses its tag in the loop keeps its test.
        let untagged = "
            %i0 = sload 1
            guard.bits %i0, 0x1, 0x1, true @0
            sstore 1, %i0
            loop
            %i = phi %i0
            guard.bits %i, 0x1, 0x1, true @0
            %j = add %i, %i
            sstore 1, %j
            jump %j
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            ";
        check(super::run, untagged, untagged);
    }
}
