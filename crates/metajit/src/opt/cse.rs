//! Common-subexpression elimination (LuaJIT's CSE half of `lj_opt_fold`): an
//! instruction that computes what an earlier one computed, from the same operands,
//! is replaced by the earlier result. That covers pure arithmetic and comparisons,
//! slot addresses, immutable loads (an object's class, an array's length), residual
//! calls declared elidable, overflow-checked operations (the earlier one's check
//! passed), and guards: a guard identical to an earlier one, whatever its snapshot,
//! always holds. The trace is linear, so every earlier instruction dominates the
//! later ones; after loop peeling the preamble's instructions dominate the loop, so
//! the loop's repetitions of invariant work go.

use super::rewrite;
use crate::ir::{Effects, MemKind, Op, Trace};
use std::collections::{HashMap, HashSet};

pub fn run(t: &Trace) -> Trace {
    let mut values: HashMap<Op, crate::ir::Ref> = HashMap::new();
    let mut guards: HashSet<Op> = HashSet::new();
    rewrite(t, |rw, at, op| {
        let op = rw.translate(op);
        // Snapshots do not take part in what an instruction computes.
        let key = op.map_snap(|_| 0);
        let pure = match &op {
            Op::Bin(..) | Op::Flag(..) | Op::FBin(..) | Op::SlotAddr(_) | Op::Ovf(..) => true,
            Op::Load { kind, .. } => *kind == MemKind::Immutable,
            Op::Call { effects, .. } => effects.contains(Effects::ELIDABLE),
            _ => false,
        };
        if pure {
            if let Some(&r) = values.get(&key) {
                rw.replace(at, r);
            } else {
                let r = rw.emit(at, op);
                values.insert(key, r);
            }
            return true;
        }
        if matches!(op, Op::GuardBits { .. } | Op::GuardCmp { .. }) && !guards.insert(key) {
            rw.drop_op(at);
            return true;
        }
        rw.emit(at, op);
        true
    })
}

#[cfg(test)]
mod tests {
    use crate::opt::test_util::check;

    #[test]
    fn repeated_pure_work_and_guards_are_done_once() {
        check(
            super::run,
            "
            %o = sload 1
            %c1 = load %o, 0, imm
            guard.eq %c1, #0x1000, true @0
            %f1 = load %o, 8, mut
            %c2 = load %o, 0, imm
            guard.eq %c2, #0x1000, true @1
            %f2 = load %o, 8, mut
            %a = add %f1, %f2
            %b = add %f1, %f2
            %x = addovf %a, #1 @0
            %y = addovf %b, #1 @1
            %e1 = call 0x5000(%o) elidable
            %e2 = call 0x5000(%o) elidable
            %w1 = call 0x6000(%o) writes
            %w2 = call 0x6000(%o) writes
            %n1 = call 0x7000(%o) reads|writes|allocates
            %n2 = call 0x7000(%o) reads|writes|allocates
            sstore 6, %n1
            sstore 7, %n2
            sstore 2, %x
            sstore 3, %y
            sstore 4, %e2
            sstore 5, %w2
            toloop
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            snapshot @1: [code=0x10 entry=0 pc=5 base=0 sp=4 aux=] slots=3:%c2
            ",
            "
            %o = sload 1
            %c1 = load %o, 0, imm
            guard.eq %c1, #0x1000, true @0
            %f1 = load %o, 8, mut
            %f2 = load %o, 8, mut
            %a = add %f1, %f2
            %x = addovf %a, #1 @0
            %e1 = call 0x5000(%o) elidable
            %w1 = call 0x6000(%o) writes
            %w2 = call 0x6000(%o) writes
            %n1 = call 0x7000(%o) reads|writes|allocates
            %n2 = call 0x7000(%o) reads|writes|allocates
            sstore 6, %n1
            sstore 7, %n2
            sstore 2, %x
            sstore 3, %x
            sstore 4, %e1
            sstore 5, %w2
            toloop
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            ",
        );
    }
}
