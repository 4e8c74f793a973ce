//! Array primitives: bounds-checked, 1-based element access and creation.

use super::{args, bad_index, wrong_type, PrimEntry};
use crate::interpreter::Frame;
use crate::object::{as_ref, Class, Kind, Slots};
use crate::universe::Vm;
use crate::unwind::VmResult;
use crate::value::Value;

/// Longest Array `new:` creates (2 GiB of slots): longer requests are SOM-level errors
/// rather than allocations the machine cannot back.
const MAX_ARRAY_LENGTH: i64 = 1 << 28;

/// The address of the element of Array `arr` at a 1-based index (checked against its
/// length), or a SOM-level error. It stays valid while `arr` is alive (objects never
/// move).
fn slot(vm: &Vm, arr: Value, idx: Value) -> VmResult<*mut Value> {
    if !vm.is_kind(arr, Kind::Array) {
        return wrong_type(vm, "Array", arr);
    }
    // SAFETY: checked kind; no other reference to the array is live here.
    let items = unsafe { as_ref::<Slots>(arr).items() };
    let len = items.len();
    match idx.get_int() {
        Some(i) if i >= 1 && i as usize <= len => Ok(&mut items[i as usize - 1] as *mut Value),
        Some(i) => bad_index(vm, i, len),
        None => wrong_type(vm, "Int", idx),
    }
}

fn at(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, i] = args(f, argc);
    let p = slot(vm, a, i)?;
    // SAFETY: `slot` checked the kind and the index; `a`, the receiver, is alive.
    Ok(unsafe { *p })
}

/// `at:put:` answers the receiver.
fn at_put(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, i, v] = args(f, argc);
    let p = slot(vm, a, i)?;
    // SAFETY: as in `at`.
    unsafe { *p = v };
    Ok(a)
}

fn length(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    if !vm.is_kind(a, Kind::Array) {
        return wrong_type(vm, "Array", a);
    }
    // SAFETY: checked kind.
    Ok(Value::int(unsafe { as_ref::<Slots>(a).len } as i64))
}

/// `Array class>>new:`: an Array (or instance of an Array subclass) of nils.
fn new_with_length(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [c, n] = args(f, argc);
    let Some(n) = n.get_int().filter(|n| (0..=MAX_ARRAY_LENGTH).contains(n)) else {
        return vm.err(format!(
            "new: expects an Integer length between 0 and {MAX_ARRAY_LENGTH}"
        ));
    };
    let class: *mut Class = if vm.is_kind(c, Kind::Class) {
        c.as_ptr()
    } else {
        vm.classes.array
    };
    Ok(vm.alloc_slots(Kind::Array, class, n as usize))
}

pub const PRIMITIVES: &[PrimEntry] = &[
    ("Array", false, "at:", at),
    ("Array", false, "at:put:", at_put),
    ("Array", false, "length", length),
    ("Array", true, "new:", new_with_length),
];
