//! Allocation removal: escape analysis with virtual objects (PyPy's `virtualize`,
//! LuaJIT's allocation sinking in its simplest form).
//!
//! An `alloc` ([`Op::Alloc`]) is not emitted; its object becomes *virtual*: the
//! pass keeps the values of the fields the allocation declared, answers loads of
//! them with those values, and turns stores to them into updates. Guards whose
//! snapshot names a virtual object get a snapshot that describes it
//! ([`crate::ir::Virtual`], referred to as `$k`), so the exit allocates it
//! ([`crate::deopt::ExitMap::materialise`]). The object is *materialised* (the
//! allocation emitted, then a store of every field that differs from what the
//! allocation itself wrote) where it escapes: passed to a call or another
//! allocation's arguments materialised, stored into memory that is not virtual, written to a
//! frame slot, compared, combined arithmetically, loaded at an offset it did not
//! declare, or still needed after the loop header (a value of the preamble the
//! loop reads; the loop itself starts from memory). Objects nothing materialises
//! are never allocated.
//!
//! Allocations answer 8-byte-aligned addresses, so tag tests of a virtual object
//! (`guard.bits` and `and` with a mask within the low three bits) are decided here.
//! Input: any trace (best after `heap` and `cse`, so loads are already merged);
//! output: a trace whose snapshots may hold virtual objects.

use super::Rewriter;
use crate::ir::{Op, Ref, SnapId, Snapshot, Trace, Virtual};
use crate::machine::BinOp;
use std::collections::HashMap;

/// What an old reference stands for in the new trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    Real(Ref),
    /// A virtual object (by its number).
    Virt(usize),
}

struct Object {
    func: u64,
    args: Vec<Val>,
    /// What the allocation writes itself.
    init: Vec<(i32, Val)>,
    /// The fields' current values.
    fields: Vec<(i32, Val)>,
    /// The emitted allocation, once materialised.
    real: Option<Ref>,
}

struct Virtualiser<'a> {
    rw: Rewriter<'a>,
    objects: Vec<Object>,
    /// Old instructions whose result is a virtual object (its allocation, or a
    /// load of a field holding one).
    virt: HashMap<usize, usize>,
    /// Changes whenever a virtual object's state does (snapshot copies taken under
    /// one version can be shared by the guards of that version).
    version: u64,
    snaps: HashMap<(SnapId, u64), SnapId>,
    /// The last instruction that reads each old instruction's result (operand or
    /// snapshot).
    last_use: Vec<usize>,
}

pub fn run(t: &Trace) -> Trace {
    let mut v = Virtualiser {
        rw: Rewriter::new(t),
        objects: Vec::new(),
        virt: HashMap::new(),
        version: 0,
        snaps: HashMap::new(),
        last_use: last_uses(t),
    };
    for (at, op) in t.ops.iter().enumerate() {
        v.instruction(at, op);
    }
    v.rw.finish()
}

fn last_uses(t: &Trace) -> Vec<usize> {
    let mut last = vec![0; t.ops.len()];
    for (at, op) in t.ops.iter().enumerate() {
        let snap_refs = op
            .snap()
            .into_iter()
            .flat_map(|s| t.snaps[s as usize].refs().collect::<Vec<_>>());
        for r in op.operands().into_iter().chain(snap_refs) {
            if r.is_instruction() {
                last[r.index()] = at;
            }
        }
    }
    last
}

impl Virtualiser<'_> {
    fn val(&mut self, old: Ref) -> Val {
        if old.is_instruction() {
            if let Some(&id) = self.virt.get(&old.index()) {
                return match self.objects[id].real {
                    Some(r) => Val::Real(r),
                    None => Val::Virt(id),
                };
            }
        }
        Val::Real(self.rw.get(old))
    }

    /// The new reference of `v`, materialising it if virtual.
    fn real(&mut self, v: Val) -> Ref {
        match v {
            Val::Real(r) => r,
            Val::Virt(id) => self.materialise(id),
        }
    }

    fn real_of(&mut self, old: Ref) -> Ref {
        let v = self.val(old);
        self.real(v)
    }

    /// Emits virtual object `id`'s allocation and the stores of the fields it
    /// changed since.
    fn materialise(&mut self, id: usize) -> Ref {
        if let Some(r) = self.objects[id].real {
            return r;
        }
        let args: Vec<Val> = self.objects[id].args.clone();
        let args: Vec<Ref> = args.into_iter().map(|a| self.real(a)).collect();
        let init: Vec<(i32, Val)> = self.objects[id].init.clone();
        let init_new: Vec<(i32, Ref)> = init
            .iter()
            .map(|&(o, v)| match v {
                Val::Real(r) => (o, r),
                // Fields the function writes from its arguments: materialised with
                // them above (an initial value is an argument or a constant).
                Val::Virt(j) => (o, self.materialise(j)),
            })
            .collect();
        // Making the arguments may have made this object (a cycle through them).
        if let Some(r) = self.objects[id].real {
            return r;
        }
        let func = self.objects[id].func;
        let r = self.rw.new.push(Op::Alloc {
            func,
            args,
            fields: init_new,
        });
        // Marked before the fields, which may refer back to the object.
        self.objects[id].real = Some(r);
        self.version += 1;
        let fields = self.objects[id].fields.clone();
        for (offset, v) in fields {
            if init.contains(&(offset, v)) {
                continue;
            }
            let value = self.real(v);
            self.rw.new.push(Op::Store {
                base: r,
                offset,
                value,
            });
        }
        r
    }

    fn field(&self, id: usize, offset: i32) -> Option<Val> {
        self.objects[id]
            .fields
            .iter()
            .find(|&&(o, _)| o == offset)
            .map(|&(_, v)| v)
    }

    fn instruction(&mut self, at: usize, op: &Op) {
        match op {
            Op::Alloc { func, args, fields } => {
                let args: Vec<Val> = args.iter().map(|&a| self.val(a)).collect();
                let fields: Vec<(i32, Val)> =
                    fields.iter().map(|&(o, v)| (o, self.val(v))).collect();
                self.objects.push(Object {
                    func: *func,
                    args,
                    init: fields.clone(),
                    fields,
                    real: None,
                });
                self.virt.insert(at, self.objects.len() - 1);
                self.version += 1;
                self.rw.drop_op(at);
                return;
            }
            &Op::Load { base, offset, .. } => {
                if let Val::Virt(id) = self.val(base) {
                    match self.field(id, offset) {
                        Some(Val::Real(r)) => self.rw.replace(at, r),
                        Some(Val::Virt(j)) => {
                            self.virt.insert(at, j);
                            self.rw.drop_op(at);
                        }
                        None => {
                            self.materialise(id);
                            self.emit(at, op);
                        }
                    }
                    return;
                }
            }
            &Op::Store {
                base,
                offset,
                value,
            } => {
                if let Val::Virt(id) = self.val(base) {
                    if self.field(id, offset).is_some() {
                        let v = self.val(value);
                        for field in &mut self.objects[id].fields {
                            if field.0 == offset {
                                field.1 = v;
                            }
                        }
                        self.version += 1;
                        return;
                    }
                }
            }
            &Op::GuardBits {
                w,
                mask,
                expect,
                holds,
                ..
            } if mask & !7 == 0 => {
                if let Val::Virt(_) = self.val(w) {
                    // An aligned address has zero low bits.
                    if (expect == 0) == holds {
                        self.rw.drop_op(at);
                        return;
                    }
                }
            }
            &Op::Bin(BinOp::And, a, b) => {
                let (va, vb) = (self.val(a), self.val(b));
                let mask = |v: Val, rw: &Rewriter| match v {
                    Val::Real(r) => rw.konst(r).filter(|k| k & !7 == 0),
                    Val::Virt(_) => None,
                };
                let tag_of_virtual = matches!(va, Val::Virt(_)) && mask(vb, &self.rw).is_some()
                    || matches!(vb, Val::Virt(_)) && mask(va, &self.rw).is_some();
                if tag_of_virtual {
                    let zero = self.rw.new.konst(0);
                    self.rw.replace(at, zero);
                    return;
                }
            }
            Op::Loop => {
                // The loop starts afresh: what the preamble left virtual and the
                // loop (or its phis) still reads is allocated before the header.
                let needed: Vec<usize> = self
                    .virt
                    .iter()
                    .filter(|&(&old, _)| self.last_use[old] > at)
                    .map(|(_, &id)| id)
                    .collect();
                let mut needed = needed;
                needed.sort_unstable();
                needed.dedup();
                for id in needed {
                    self.materialise(id);
                }
            }
            _ => {}
        }
        self.emit(at, op);
    }

    /// Emits old instruction `at` with every virtual operand materialised and its
    /// snapshot describing the virtual objects it names.
    fn emit(&mut self, at: usize, op: &Op) {
        let op = op.map_operands(|r| self.real_of(r));
        let op = match op.snap() {
            Some(s) => {
                let n = self.snapshot(s);
                op.map_snap(|_| n)
            }
            None => op,
        };
        self.rw.emit_new(at, op);
    }

    /// The new snapshot for old snapshot `s` in the current state.
    fn snapshot(&mut self, s: SnapId) -> SnapId {
        if let Some(&n) = self.snaps.get(&(s, self.version)) {
            return n;
        }
        let old = &self.rw.old.snaps[s as usize];
        // Virtual objects the snapshot names, directly or through other ones.
        let mut reached: Vec<usize> = Vec::new();
        let mut work: Vec<Val> = old
            .refs()
            .filter(|r| r.is_instruction())
            .map(|r| self.val(r))
            .collect();
        // Objects the old snapshot already had (if the pass runs twice) are
        // allocated from earlier values only: theirs come first.
        let base = old.virtuals.len();
        let mut old_virtual_args: Vec<Ref> = old
            .virtuals
            .iter()
            .flat_map(|v| v.args.iter().copied())
            .filter(|r| r.is_instruction())
            .collect();
        old_virtual_args.dedup();
        for r in old_virtual_args {
            if let Val::Virt(id) = self.val(r) {
                self.materialise(id);
            }
        }
        while let Some(v) = work.pop() {
            let Val::Virt(id) = v else { continue };
            if reached.contains(&id) {
                continue;
            }
            reached.push(id);
            let o = &self.objects[id];
            work.extend(o.args.iter().copied());
            work.extend(o.fields.iter().map(|&(_, v)| v));
        }
        // Allocation order: an object's arguments were made before it.
        reached.sort_unstable();
        let position = |id: usize| base + reached.iter().position(|&x| x == id).expect("reached");
        let to_ref = |v: Val| match v {
            Val::Real(r) => r,
            Val::Virt(id) => Ref::virtual_object(position(id)),
        };
        let vals: HashMap<Ref, Val> = old
            .refs()
            .filter(|r| r.is_instruction())
            .map(|r| (r, self.val(r)))
            .collect();
        let old = &self.rw.old.snaps[s as usize];
        let mut snap: Snapshot = old.map_refs(|r| to_ref(vals[&r]));
        for &id in &reached {
            let o = &self.objects[id];
            snap.virtuals.push(Virtual {
                func: o.func,
                args: o.args.iter().map(|&v| to_ref(v)).collect(),
                fields: o.fields.iter().map(|&(off, v)| (off, to_ref(v))).collect(),
            });
        }
        let n = self.rw.new.add_snapshot(snap);
        self.snaps.insert((s, self.version), n);
        n
    }
}

#[cfg(test)]
mod tests {
    use crate::opt::test_util::check;

    const SNAP: &str = "[code=0x1 entry=0 pc=0 base=0 sp=2 aux=]";

    #[test]
    fn an_object_that_does_not_escape_is_never_allocated() {
        check(
            super::run,
            &format!(
                "
                %a = sload 1
                %o = alloc 0x50(%a){{0:#7,16:%a}}
                %c = load %o, 0, imm
                guard.eq %c, #7, true @0
                %f = load %o, 16, mut
                %g = addovf %f, #2 @0
                store %o, 16, %g
                %h = load %o, 16, mut
                guard.lt %h, #100, true @1
                finish %h
                snapshot @0: {SNAP} slots=1:%o
                snapshot @1: {SNAP} slots=0:%o,1:%h
                "
            ),
            &format!(
                "
                %a = sload 1
                guard.eq #7, #7, true @0
                %g = addovf %a, #2 @0
                guard.lt %g, #100, true @1
                finish %g
                snapshot @0: {SNAP} slots=1:$0 virtuals=0x50(%a){{0:#7,16:%a}}
                snapshot @1: {SNAP} slots=0:$0,1:%g virtuals=0x50(%a){{0:#7,16:%g}}
                "
            ),
        );
    }

    #[test]
    fn an_escaping_object_is_allocated_where_it_escapes_with_its_changed_fields() {
        check(
            super::run,
            "
            %a = sload 1
            %o = alloc 0x50(%a){16:%a,24:#0}
            store %o, 24, #5
            %x = call 0x60(%o) reads|writes
            %y = load %o, 24, mut
            finish %y
            ",
            "
            %a = sload 1
            %o = alloc 0x50(%a){16:%a,24:#0}
            store %o, 24, #5
            %x = call 0x60(%o) reads|writes
            %y = load %o, 24, mut
            finish %y
            ",
        );
    }

    #[test]
    fn objects_referring_to_each_other_are_described_in_allocation_order() {
        // A context, and a block over it whose field the trace overwrites with the
        // block itself (a cycle).
        check(
            super::run,
            &format!(
                "
                %a = sload 1
                %ctx = alloc 0x50(){{16:#0}}
                store %ctx, 16, %a
                %blk = alloc 0x60(%ctx){{24:%ctx}}
                store %ctx, 16, %blk
                guard.bits %blk, 0x7, 0x0, true @0
                guard.bits %a, 0x1, 0x1, true @0
                %t = load %blk, 0, imm
                %x = call 0x70(%blk) reads
                finish %x
                snapshot @0: {SNAP} slots=1:%blk
                "
            ),
            &format!(
                "
                %a = sload 1
                guard.bits %a, 0x1, 0x1, true @0
                %ctx = alloc 0x50(){{16:#0}}
                %blk = alloc 0x60(%ctx){{24:%ctx}}
                store %ctx, 16, %blk
                %t = load %blk, 0, imm
                %x = call 0x70(%blk) reads
                finish %x
                snapshot @0: {SNAP} slots=1:$1 virtuals=0x50(){{16:$1}};0x60($0){{24:$0}}
                "
            ),
        );
    }

    #[test]
    fn a_loop_body_allocation_stays_virtual_and_preamble_objects_the_loop_reads_are_made() {
        check(
            super::run,
            &format!(
                "
                %a = sload 1
                %p = alloc 0x50(){{16:#0}}
                %q = alloc 0x50(){{16:#1}}
                loop
                %i = phi %a
                %o = alloc 0x50(){{16:%i}}
                %f = load %o, 16, mut
                %pf = load %p, 16, mut
                %g = addovf %f, %pf @0
                jump %g
                snapshot @0: {SNAP} slots=1:%o
                "
            ),
            &format!(
                "
                %a = sload 1
                %p = alloc 0x50(){{16:#0}}
                loop
                %i = phi %a
                %pf = load %p, 16, mut
                %g = addovf %i, %pf @0
                jump %g
                snapshot @0: {SNAP} slots=1:$0 virtuals=0x50(){{16:%i}}
                "
            ),
        );
    }

    #[test]
    fn a_load_the_allocation_did_not_declare_makes_the_object_escape() {
        check(
            super::run,
            "
            %o = alloc 0x50(){16:#0}
            %k = load %o, 8, imm
            %t = and %o, #7
            finish %k
            ",
            "
            %o = alloc 0x50(){16:#0}
            %k = load %o, 8, imm
            %t = and %o, #7
            finish %k
            ",
        );
        check(
            super::run,
            "
            %o = alloc 0x50(){16:#0}
            %t = and %o, #7
            finish %t
            ",
            "
            finish #0
            ",
        );
    }
}
