//! Dead-code elimination: instructions whose only effect is their value go when
//! nothing reads that value, where readers include the snapshots of the guards that
//! stay (a value a guard's exit saves is live). Stores, guards, non-elidable calls,
//! polls and the trace's end always stay. A loop's phi whose value only feeds its own
//! next value is dead, and so is its `jump` argument (found by iterating: phis start
//! dead and come alive when something else reads them).

use crate::ir::{Effects, Op, Trace};
use crate::opt::Rewriter;

fn has_effect(op: &Op) -> bool {
    match op {
        Op::Bin(..)
        | Op::Flag(..)
        | Op::FBin(..)
        | Op::SLoad(_)
        | Op::AuxLoad(_)
        | Op::SlotAddr(_)
        | Op::Param(_)
        | Op::Load { .. }
        | Op::Alloc { .. }
        | Op::Phi(_) => false,
        Op::Call { effects, .. } => !effects.contains(Effects::ELIDABLE),
        _ => true,
    }
}

pub fn run(t: &Trace) -> Trace {
    let n = t.ops.len();
    let phis: Vec<usize> = (0..n).filter(|&i| matches!(t.ops[i], Op::Phi(_))).collect();
    let mut live = vec![false; n];
    let mut phi_live = vec![false; phis.len()];
    loop {
        live.iter_mut().for_each(|l| *l = false);
        for (k, &p) in phis.iter().enumerate() {
            live[p] = phi_live[k];
        }
        for i in (0..n).rev() {
            let op = &t.ops[i];
            if let Op::Jump(args) = op {
                live[i] = true;
                for (k, a) in args.iter().enumerate() {
                    if phi_live[k] && !a.is_const() {
                        live[a.index()] = true;
                    }
                }
                continue;
            }
            if has_effect(op) {
                live[i] = true;
            }
            if !live[i] {
                continue;
            }
            for r in op.operands() {
                if !r.is_const() {
                    live[r.index()] = true;
                }
            }
            if let Some(s) = op.snap() {
                for r in t.snaps[s as usize].live() {
                    live[r.index()] = true;
                }
            }
        }
        let now: Vec<bool> = phis.iter().map(|&p| live[p]).collect();
        if now == phi_live {
            break;
        }
        phi_live = now;
    }
    let mut rw = Rewriter::new(t);
    for (at, op) in t.ops.iter().enumerate() {
        if !live[at] {
            rw.drop_op(at);
            continue;
        }
        let op = match op {
            Op::Jump(args) => Op::Jump(
                args.iter()
                    .zip(&phi_live)
                    .filter(|(_, &l)| l)
                    .map(|(&a, _)| a)
                    .collect(),
            ),
            op => op.clone(),
        };
        let op = rw.translate(&op);
        rw.emit(at, op);
    }
    rw.finish()
}

#[cfg(test)]
mod tests {
    use crate::opt::test_util::check;

    #[test]
    fn unread_values_go_but_effects_and_what_snapshots_save_stay() {
        check(
            super::run,
            "
            %o = sload 1
            %a = load %o, 8, mut
            %b = add %a, #1
            %c = add %o, #8
            %d = call 0x5000(%o) elidable
            %e = call 0x6000(%o) writes
            guard.eq %o, #0, false @0
            store %o, 8, #3
            toloop
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=2:%b
            ",
            "
            %o = sload 1
            %a = load %o, 8, mut
            %b = add %a, #1
            %e = call 0x6000(%o) writes
            guard.eq %o, #0, false @0
            store %o, 8, #3
            toloop
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=2:%b
            ",
        );
    }

    #[test]
    fn a_phi_that_only_feeds_itself_is_dead() {
        check(
            super::run,
            "
            %i0 = sload 1
            %s0 = sload 2
            loop
            %i = phi %i0
            %s = phi %s0
            %j = add %i, #2
            %t = add %s, %j
            sstore 2, %j
            jump %j, %t
            ",
            "
            %i0 = sload 1
            loop
            %i = phi %i0
            %j = add %i, #2
            sstore 2, %j
            jump %j
            ",
        );
    }
}
