//! The VM's primitives: native implementations of the methods the core library
//! declares `primitive` (the 92 of the standard library, plus `System>>gcStats`, which our core library makes a primitive). A primitive finds its receiver
//! and arguments on top of the caller's operand stack (`Frame::args`) and answers a
//! value or an unwind (error, exit, restart). `lookup` binds a declared primitive to its
//! implementation when a class is loaded; declared primitives without one stay unbound
//! and fail with a SOM-level error when called.
//!
//! The hot cases of arithmetic, comparison and `at:`/`at:put:` are also inlined into the
//! bytecode handlers (`interpreter::handlers`); the code here is their general path.

pub mod array;
pub mod block;
pub mod numbers;
pub mod object;
pub mod string;
pub mod system;

use crate::interpreter::Frame;
use crate::object::{Class, Kind};
use crate::universe::Vm;
use crate::unwind::VmResult;
use crate::value::Value;

/// A primitive: `(vm, caller frame, argument count) -> answer`.
pub type PrimFn = fn(&mut Vm, &mut Frame, usize) -> VmResult<Value>;

/// One row of the primitive table: class name, class side?, selector, function.
pub type PrimEntry = (&'static str, bool, &'static str, PrimFn);

/// Every primitive the VM implements.
fn all() -> impl Iterator<Item = &'static PrimEntry> {
    [
        object::PRIMITIVES,
        numbers::PRIMITIVES,
        string::PRIMITIVES,
        array::PRIMITIVES,
        block::PRIMITIVES,
        system::PRIMITIVES,
    ]
    .into_iter()
    .flatten()
}

/// The implementation of `holder>>selector`, if the VM has one.
pub fn lookup(vm: &Vm, holder: *mut Class, selector: &str) -> Option<PrimFn> {
    // SAFETY: classes are immortal.
    let (name, meta) = unsafe {
        let c = &*holder;
        let name = vm.str_of(c.name);
        (name.strip_suffix(" class").unwrap_or(name), c.is_metaclass)
    };
    all()
        .find(|(c, side, s, _)| *c == name && *side == meta && *s == selector)
        .map(|e| e.3)
}

/// The body of a method declared `primitive` as `holder>>selector`: the block
/// `value` primitives evaluate their block inline (`MethodBody::BlockValue`), the
/// others call their function, and those the VM lacks fail when called.
pub fn body(vm: &Vm, holder: *mut Class, selector: &str) -> crate::object::MethodBody {
    use crate::object::MethodBody;
    match lookup(vm, holder, selector) {
        Some(f) => {
            // SAFETY: classes are immortal.
            let name = vm.str_of(unsafe { (*holder).name });
            if block::evaluates_block(name, selector) {
                MethodBody::BlockValue
            } else {
                MethodBody::Primitive(f)
            }
        }
        None => MethodBody::MissingPrimitive,
    }
}

/// The receiver and `N - 1` arguments of a primitive, copied off the stack.
#[inline(always)]
pub fn args<const N: usize>(f: &mut Frame, argc: usize) -> [Value; N] {
    debug_assert_eq!(argc + 1, N);
    let mut out = [Value::EMPTY; N];
    out.copy_from_slice(f.args(N - 1));
    out
}

/// A short description of a value's class for error messages.
pub fn class_name_of(vm: &Vm, v: Value) -> String {
    vm.class_name(vm.class_of(v))
}

/// `v` if it is an object of layout `kind`, else a SOM-level error naming `op`.
pub fn expect_kind(vm: &Vm, v: Value, kind: Kind, op: &str) -> VmResult<Value> {
    if vm.is_kind(v, kind) {
        Ok(v)
    } else {
        vm.err(format!(
            "{op}: expected a {kind:?} but got an instance of {}",
            class_name_of(vm, v)
        ))
    }
}

/// The text of a String or Symbol argument, else a SOM-level error naming `op`.
pub fn expect_text<'a>(vm: &Vm, v: Value, op: &str) -> VmResult<&'a str> {
    vm.get_str(v).ok_or_else(|| {
        vm.error(format!(
            "{op}: expected a String but got an instance of {}",
            class_name_of(vm, v)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_the_92_standard_primitives_plus_gc_stats_and_no_duplicates() {
        let all: Vec<&PrimEntry> = all().collect();
        assert_eq!(all.len(), 93);
        let mut keys: Vec<_> = all.iter().map(|e| (e.0, e.1, e.2)).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 93);
        assert_eq!(all.iter().filter(|e| e.1).count(), 4);
    }
}
