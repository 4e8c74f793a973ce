//! What keeps objects alive: the fields of heap objects (precise, by kind), and for each
//! VM its root tables (precise) plus its native stack and value stack (conservative).
//!
//! Conservative scanning treats every aligned word that could be the address of (or
//! into) a heap object as a reference and keeps that object alive. It needs no stack
//! maps, so Rust frames and tier-1 frames are covered alike; objects never move, so a
//! word that merely looks like a pointer only costs some retained memory.

use super::binding::{heap_object, Som, ValueSlot};
use super::threads::{record_of, MutatorRecord};
use super::{address, in_heap_range};
use crate::object::{Block, Context, Header, Kind, MethodBody, Slots};
use crate::universe::Vm;
use crate::unwind::Unwind;
use crate::value::Value;
use mmtk::memory_manager;
use mmtk::util::{ObjectReference, VMWorkerThread};
use mmtk::vm::{RootsWorkFactory, Scanning, SlotVisitor};
use mmtk::Mutator;

/// How far below a native-stack word an object may start for the word to count as a
/// pointer into it (Rust code may hold only a pointer to an object's fields).
const MAX_INTERIOR_OFFSET: usize = 1024;

/// Slots above the innermost frame's top that are scanned as well (values a primitive
/// pushed for a call it is setting up).
const VALUE_STACK_SLACK: usize = 256;

impl Scanning<Som> for Som {
    fn scan_object<SV: SlotVisitor<ValueSlot>>(
        _tls: VMWorkerThread,
        object: ObjectReference,
        visitor: &mut SV,
    ) {
        let hdr = object.to_raw_address().to_mut_ptr::<Header>();
        let mut visit = |p: *const Value| {
            // SAFETY: `p` is a field of a live object.
            if heap_object(unsafe { *p }).is_some() {
                visitor.visit_slot(ValueSlot::of(p));
            }
        };
        // SAFETY: MMTk scans only objects it allocated, initialised before the next
        // allocation; the kind says which layout follows the header.
        unsafe {
            match (*hdr).kind {
                Kind::Instance | Kind::Array => {
                    for v in (*(hdr as *mut Slots)).items() {
                        visit(v);
                    }
                }
                Kind::Block => {
                    let b = hdr as *mut Block;
                    visit(&(*b).context);
                    visit(&(*b).receiver);
                }
                Kind::Context => {
                    let c = hdr as *mut Context;
                    visit(&(*c).outer);
                    for v in (*c).slots() {
                        visit(v);
                    }
                }
                Kind::String
                | Kind::Symbol
                | Kind::BigInt
                | Kind::Double
                | Kind::Method
                | Kind::Class => {}
            }
        }
    }

    fn notify_initial_thread_scan_complete(_partial_scan: bool, _tls: VMWorkerThread) {}

    fn scan_roots_in_mutator_thread(
        _tls: VMWorkerThread,
        mutator: &'static mut Mutator<Som>,
        mut factory: impl RootsWorkFactory<ValueSlot>,
    ) {
        let record: *mut MutatorRecord = record_of(mutator.mutator_tls);
        // SAFETY: the mutator is parked (see `threads`): its record, VM and stacks hold
        // still until it is resumed.
        let (vm, (stack_lo, stack_hi)) = unsafe { ((*record).vm, (*record).stack) };
        let mut slots = Vec::new();
        let mut nodes = Vec::new();
        if !vm.is_null() {
            // SAFETY: as above. The parked thread holds the VM by `&mut` somewhere up
            // its stack (it allocates through it), but does not use it until resumed,
            // and the registry's lock orders its last writes before these reads.
            let vm = unsafe { &*vm };
            precise_roots(vm, &mut |p| {
                // SAFETY: root slots hold Values.
                if heap_object(unsafe { *p }).is_some() {
                    slots.push(ValueSlot::of(p));
                }
            });
            let (lo, hi) = value_stack_extent(vm);
            // SAFETY: the extent lies within the value stack.
            unsafe { scan_value_words(lo, hi, &mut nodes) };
            if let Some(t2) = &vm.tier2 {
                // Compiled traces embed their constants: those that are objects stay
                // alive (checked like stack words, as constants include plain numbers).
                let consts: Vec<Value> = t2.constants().map(|&k| Value::from_bits(k)).collect();
                let range = consts.as_ptr_range();
                // SAFETY: the range is the vector's.
                unsafe { scan_value_words(range.start, range.end, &mut nodes) };
                // An exit allocating its virtual objects keeps what it saved and
                // made so far in the exit buffer.
                let exits = t2.exit_roots().as_ptr_range();
                // SAFETY: the range is the buffer's.
                unsafe {
                    scan_value_words(
                        exits.start as *const Value,
                        exits.end as *const Value,
                        &mut nodes,
                    )
                };
            }
        }
        // SAFETY: the parked thread published this part of its own stack.
        unsafe { scan_native_words(stack_lo, stack_hi, &mut nodes) };
        factory.create_process_roots_work(slots);
        factory.create_process_pinning_roots_work(nodes);
    }

    fn scan_vm_specific_roots(_tls: VMWorkerThread, _factory: impl RootsWorkFactory<ValueSlot>) {
        // Every root belongs to some VM, and each VM is a mutator: see above.
    }

    fn supports_return_barrier() -> bool {
        false
    }

    fn prepare_for_roots_re_scanning() {}
}

/// Calls `visit` with every root slot of `vm` outside its stacks.
fn precise_roots(vm: &Vm, visit: &mut dyn FnMut(*const Value)) {
    for v in [&vm.nil, &vm.true_, &vm.false_, &vm.system, &vm.tier1_result] {
        visit(v);
    }
    for v in vm.symbol_table() {
        visit(v);
    }
    for (name, value) in &vm.globals {
        visit(name);
        visit(value);
    }
    for v in vm.classes_being_loaded.iter().chain(&vm.compile_roots) {
        visit(v);
    }
    if let Some(Unwind::NonLocalReturn { target, value }) = vm.pending_unwind.as_deref() {
        visit(target);
        visit(value);
    }
    for &class in &vm.all_classes {
        // SAFETY: classes are immortal.
        let c = unsafe { &*class };
        visit(&c.name);
        visit(&c.methods_array);
        for v in c.instance_fields.iter().chain(&c.class_slots) {
            visit(v);
        }
    }
    for &method in &vm.all_methods {
        // SAFETY: methods are immortal.
        let m = unsafe { &*method };
        visit(&m.signature);
        if let MethodBody::Code(code) = &m.body {
            for v in &code.literals {
                visit(v);
            }
        }
    }
}

/// The part of the value stack that may hold live values: up to the innermost frame's
/// extent (its operand stack may be beyond `sp` in tier-1 code) plus some slack.
fn value_stack_extent(vm: &Vm) -> (*const Value, *const Value) {
    let range = vm.stack.as_ptr_range();
    let mut top = range.start as usize;
    let frame = vm.current_frame;
    if !frame.is_null() {
        // SAFETY: `current_frame` is the innermost live frame; its method, if it has
        // one (frames over a primitive's arguments have none), is immortal.
        unsafe {
            let method = (*frame).method;
            let size = if method.is_null() {
                0
            } else {
                (*method).code().map_or(0, |c| c.frame_size())
            };
            top = (*frame).base as usize + 8 * size.max((*frame).sp);
        }
    }
    let top = (top + 8 * VALUE_STACK_SLACK).min(range.end as usize);
    (range.start, top as *const Value)
}

/// Adds the objects the values in `[lo, hi)` point to (stale values included: a word
/// counts only if an object starts exactly there).
///
/// # Safety
/// `[lo, hi)` is readable memory.
unsafe fn scan_value_words(lo: *const Value, hi: *const Value, out: &mut Vec<ObjectReference>) {
    let mut p = lo;
    while p < hi {
        let word = (*p).bits() as usize;
        if word != 0 && in_heap_range(word) {
            if let Some(obj) = memory_manager::is_mmtk_object(address(word)) {
                out.push(obj);
            }
        }
        p = p.add(1);
    }
}

/// Adds the objects that the words in `[lo, hi)` point to or into.
///
/// # Safety
/// `[lo, hi)` is readable memory.
unsafe fn scan_native_words(lo: usize, hi: usize, out: &mut Vec<ObjectReference>) {
    let mut p = (lo + 7) & !7;
    while p + 8 <= hi {
        // Pointers into strings need not be word-aligned.
        let word = *(p as *const usize) & !7;
        if word != 0 && in_heap_range(word) {
            if let Some(obj) = memory_manager::find_object_from_internal_pointer(
                address(word),
                MAX_INTERIOR_OFFSET,
            ) {
                out.push(obj);
            }
        }
        p += 8;
    }
}
