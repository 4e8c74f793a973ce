//! Loop peeling (LuaJIT's `lj_opt_loop`): a loop trace's body is emitted twice, once
//! before the loop header (the preamble, the first iteration) and once after it (the
//! loop proper). In the second copy a slot read (`sload`, `auxload`) becomes the
//! value the previous iteration left there: a `phi` of the header, whose entry value
//! is the preamble's and whose next value the `jump` passes, when the body writes the
//! slot; the preamble's own read when it does not (the slot is invariant). Everything
//! the loop then computes again from invariant values is the preamble's work repeated,
//! which [`super::cse`], [`super::guards`] and [`super::heap`] remove: invariant
//! guards and loads run once, and carried values stay in registers.
//!
//! The write-backs at the end of each copy stay (every guard's snapshot assumes that
//! memory holds the slots as they were at the header); the poll runs in the loop only.
//! Traces without a loop, and loops that end in a `link`, are copied unchanged.

use super::Rewriter;
use crate::ir::{Op, Ref, Trace};
use std::collections::BTreeMap;

/// A slot the body reads: the root frame's `n`, or auxiliary word `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Frame(i32),
    Aux(u16),
}

pub fn run(t: &Trace) -> Trace {
    let header = t.ops.iter().position(|o| matches!(o, Op::Loop));
    let (Some(header), Some(Op::Jump(args))) = (header, t.ops.last()) else {
        return t.clone();
    };
    if !args.is_empty() {
        return t.clone(); // already peeled
    }
    let end = t.ops.len() - 1;
    let body = header + 1..end;

    // The last value the body writes to each slot it also reads.
    let mut read = Vec::new();
    let mut written: BTreeMap<Slot, Ref> = BTreeMap::new();
    for op in &t.ops[body.clone()] {
        match *op {
            Op::SLoad(n) => read.push(Slot::Frame(n)),
            Op::AuxLoad(n) => read.push(Slot::Aux(n)),
            Op::SStore(n, v) => {
                written.insert(Slot::Frame(n), v);
            }
            Op::AuxStore(n, v) => {
                written.insert(Slot::Aux(n), v);
            }
            _ => {}
        }
    }
    let carried: Vec<(Slot, Ref)> = written
        .into_iter()
        .filter(|(s, _)| read.contains(s))
        .collect();

    let mut rw = Rewriter::new(t);
    for (at, op) in t.ops[..header].iter().enumerate() {
        let op = rw.translate(op);
        rw.emit(at, op);
    }
    // The preamble: the first iteration, without the poll.
    let mut first_read: BTreeMap<Slot, Ref> = BTreeMap::new();
    for at in body.clone() {
        let op = &t.ops[at];
        if matches!(op, Op::Poll) {
            continue;
        }
        let new = rw.translate(op);
        let r = rw.emit(at, new);
        match *op {
            Op::SLoad(n) => {
                first_read.insert(Slot::Frame(n), r);
            }
            Op::AuxLoad(n) => {
                first_read.insert(Slot::Aux(n), r);
            }
            _ => {}
        }
    }
    // The header and its phis.
    rw.emit(header, Op::Loop);
    let mut phis: BTreeMap<Slot, Ref> = BTreeMap::new();
    for &(slot, last) in &carried {
        let init = rw.get(last);
        phis.insert(slot, rw.new.push(Op::Phi(init)));
    }
    // The loop: reads of carried slots are the phis, of other slots the preamble's.
    rw.forget_snapshots();
    for at in body {
        let op = &t.ops[at];
        let slot = match *op {
            Op::SLoad(n) => Some(Slot::Frame(n)),
            Op::AuxLoad(n) => Some(Slot::Aux(n)),
            _ => None,
        };
        match slot {
            Some(s) => {
                let r = phis.get(&s).or_else(|| first_read.get(&s)).copied();
                rw.replace(at, r.expect("every slot read was read in the preamble"));
            }
            None => {
                let new = rw.translate(op);
                rw.emit(at, new);
            }
        }
    }
    let next: Vec<Ref> = carried.iter().map(|&(_, last)| rw.get(last)).collect();
    rw.emit(end, Op::Jump(next));
    rw.finish()
}

#[cfg(test)]
mod tests {
    use crate::opt::test_util::check;

    #[test]
    fn carried_slots_become_phis_and_invariant_slots_are_read_once() {
        check(
            super::run,
            "
            loop
            poll
            %i = sload 1
            %n = sload 2
            guard.bits %i, 0x1, 0x1, true @0
            guard.lt %i, %n, true @0
            %j = addovf %i, #2 @1
            sstore 1, %j
            jump
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            snapshot @1: [code=0x10 entry=0 pc=5 base=0 sp=4 aux=] slots=3:%i
            ",
            "
            %i0 = sload 1
            %n = sload 2
            guard.bits %i0, 0x1, 0x1, true @0
            guard.lt %i0, %n, true @0
            %j0 = addovf %i0, #2 @1
            sstore 1, %j0
            loop
            %i = phi %j0
            poll
            guard.bits %i, 0x1, 0x1, true @2
            guard.lt %i, %n, true @2
            %j = addovf %i, #2 @3
            sstore 1, %j
            jump %j
            snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            snapshot @1: [code=0x10 entry=0 pc=5 base=0 sp=4 aux=] slots=3:%i0
            snapshot @2: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
            snapshot @3: [code=0x10 entry=0 pc=5 base=0 sp=4 aux=] slots=3:%i
            ",
        );
    }

    #[test]
    fn auxiliary_words_are_carried_like_slots() {
        check(
            super::run,
            "
            loop
            %a = auxload 1
            %b = add %a, #8
            auxstore 1, %b
            jump
            ",
            "
            %a0 = auxload 1
            %b0 = add %a0, #8
            auxstore 1, %b0
            loop
            %a = phi %b0
            %b = add %a, #8
            auxstore 1, %b
            jump %b
            ",
        );
    }

    #[test]
    fn traces_without_a_jump_are_not_peeled() {
        let linked = "
            loop
            %a = sload 1
            sstore 2, %a
            link 3
            ";
        check(super::run, linked, linked);
        let bridge = "
            %p = param 0
            sstore 1, %p
            toloop
            ";
        check(super::run, bridge, bridge);
    }
}
