//! Heap forwarding (LuaJIT's `lj_opt_mem`, PyPy's `optimizeopt/heap`): a load of a
//! word the trace has just loaded or stored reads that value instead of memory.
//!
//! The cache maps (base, offset) to the word known to be there. Alias rules, with no
//! types in the IR: two accesses with the same base and different offsets never
//! alias; with different bases they may. So a store replaces what is known at its own
//! address and forgets every other base's word at any offset. A residual call that
//! may write the heap forgets everything; the loop header forgets everything too
//! (the loop body's stores reach the next iteration through it). Immutable loads are
//! left to [`super::cse`]; slot reads and writes are the recorder's business (it keeps
//! slots in its slot map) and never alias heap words.

use super::rewrite;
use crate::ir::{Effects, MemKind, Op, Ref, Trace};
use std::collections::HashMap;

pub fn run(t: &Trace) -> Trace {
    let mut known: HashMap<(Ref, i32), Ref> = HashMap::new();
    rewrite(t, |rw, at, op| {
        let op = rw.translate(op);
        match op {
            Op::Load {
                base,
                offset,
                kind: MemKind::Mutable,
            } => {
                if let Some(&v) = known.get(&(base, offset)) {
                    rw.replace(at, v);
                } else {
                    let r = rw.emit(at, op);
                    known.insert((base, offset), r);
                }
            }
            Op::Store {
                base,
                offset,
                value,
            } => {
                known.retain(|&(b, o), _| b == base && o != offset);
                known.insert((base, offset), value);
                rw.emit(at, op);
            }
            Op::Call { effects, .. } => {
                if effects.contains(Effects::WRITES_HEAP) {
                    known.clear();
                }
                rw.emit(at, op);
            }
            Op::Loop => {
                known.clear();
                rw.emit(at, op);
            }
            op => {
                rw.emit(at, op);
            }
        }
        true
    })
}

#[cfg(test)]
mod tests {
    use crate::opt::test_util::check;

    #[test]
    fn loads_read_what_was_loaded_or_stored_until_something_may_write_there() {
        check(
            super::run,
            "
            %o = sload 1
            %p = sload 2
            %a = load %o, 8, mut
            %b = load %o, 8, mut
            store %o, 16, %a
            %c = load %o, 16, mut
            %d = load %o, 8, mut
            store %p, 8, %c
            %e = load %o, 16, mut
            %f = load %p, 8, mut
            %g = call 0x5000(%o) reads
            %h = load %p, 8, mut
            %i = call 0x6000(%o) writes
            %j = load %p, 8, mut
            sstore 3, %b
            sstore 4, %c
            sstore 5, %d
            sstore 6, %e
            sstore 7, %f
            sstore 8, %h
            sstore 9, %j
            toloop
            ",
            "
            %o = sload 1
            %p = sload 2
            %a = load %o, 8, mut
            store %o, 16, %a
            store %p, 8, %a
            %e = load %o, 16, mut
            %g = call 0x5000(%o) reads
            %i = call 0x6000(%o) writes
            %j = load %p, 8, mut
            sstore 3, %a
            sstore 4, %a
            sstore 5, %a
            sstore 6, %e
            sstore 7, %a
            sstore 8, %a
            sstore 9, %j
            toloop
            ",
        );
    }

    #[test]
    fn the_loop_header_forgets_the_heap() {
        check(
            super::run,
            "
            %o = sload 1
            %a = load %o, 8, mut
            sstore 2, %a
            loop
            %b = load %o, 8, mut
            store %o, 8, #3
            sstore 2, %b
            jump
            ",
            "
            %o = sload 1
            %a = load %o, 8, mut
            sstore 2, %a
            loop
            %b = load %o, 8, mut
            store %o, 8, #3
            sstore 2, %b
            jump
            ",
        );
    }
}
