//! The VM's primitives: native implementations of the methods the core library
//! declares `primitive` (the 92 of the standard library, plus those our core library makes primitives: `System>>gcStats`, `Object>>error:`, and `>`, `<=`, `>=` of Integer and Double). A primitive finds its receiver
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

/// The name of a value's representation in the error messages of primitives that
/// expect a kind of value. These are the names the public SOM IntegrationTests
/// expect (they come from yksom): `Int` for integers of any size, `Double`,
/// `String_`, `Symbol`, `Array`, `Block`, `Class`, `Method`, and `Inst` for
/// instances of other classes (nil, booleans, user classes).
pub fn type_name(v: Value) -> &'static str {
    if v.is_int() {
        return "Int";
    }
    if v.is_imm_double() {
        return "Double";
    }
    if !v.is_ptr() {
        return "Inst";
    }
    // SAFETY: pointers always point to objects with a header.
    match unsafe { crate::object::header(v).kind } {
        Kind::BigInt => "Int",
        Kind::Double => "Double",
        Kind::String => "String_",
        Kind::Symbol => "Symbol",
        Kind::Array => "Array",
        Kind::Block => "Block",
        Kind::Class => "Class",
        Kind::Method => "Method",
        Kind::Instance | Kind::Context => "Inst",
    }
}

/// The error of a primitive that needs a value of representation `expected`.
pub fn wrong_type<T>(vm: &Vm, expected: &str, v: Value) -> VmResult<T> {
    vm.err(format!(
        "Expected object of type '{expected}' but got type '{}'.",
        type_name(v)
    ))
}

/// The error of a primitive that needs an instance of class `expected`.
pub fn wrong_class<T>(vm: &Vm, expected: &str, v: Value) -> VmResult<T> {
    vm.err(format!(
        "Expected instance of '{expected}' but got instance of '{}'.",
        class_name_of(vm, v)
    ))
}

/// The error of an index outside `1..=len` (Arrays, Strings, fields).
pub fn bad_index<T>(vm: &Vm, index: i64, len: usize) -> VmResult<T> {
    if index < 0 {
        vm.err("Can't represent as unsigned machine integer.")
    } else {
        vm.err(format!(
            "Index {index} not valid for array of length {len}."
        ))
    }
}

/// `v` if it is an object of layout `kind`, else the error of [`wrong_type`].
pub fn expect_kind(vm: &Vm, v: Value, kind: Kind) -> VmResult<Value> {
    if vm.is_kind(v, kind) {
        Ok(v)
    } else if kind == Kind::Symbol {
        wrong_class(vm, "Symbol", v)
    } else {
        let expected = match kind {
            Kind::String => "String_",
            Kind::Array => "Array",
            Kind::Block => "Block",
            Kind::Class => "Class",
            Kind::Method => "Method",
            _ => "Inst",
        };
        wrong_type(vm, expected, v)
    }
}

/// `v` if it is a Symbol, else the error of [`wrong_class`].
pub fn expect_symbol(vm: &Vm, v: Value) -> VmResult<Value> {
    expect_kind(vm, v, Kind::Symbol)
}

/// The text of a String or Symbol argument, else the error of [`wrong_type`]. The
/// text borrows the VM, as [`Vm::str_of`]'s does.
pub fn expect_text(vm: &Vm, v: Value) -> VmResult<&str> {
    match vm.get_str(v) {
        Some(text) => Ok(text),
        None => wrong_type(vm, "String_", v),
    }
}

/// As [`expect_text`], with a lifetime the caller chooses, for a primitive that needs
/// the VM mutably (to allocate, to write output) while it uses the text.
///
/// # Safety
/// `v` must stay reachable for as long as the text is used, so that no collection
/// frees it: a primitive's receiver and arguments do, as they stay on the caller's
/// operand stack until the primitive returns. Objects never move and strings never
/// change, so the text is then valid however the VM is used meanwhile.
pub unsafe fn expect_text_detached<'a>(vm: &Vm, v: Value) -> VmResult<&'a str> {
    let text: *const str = expect_text(vm, v)?;
    // SAFETY: `text` is the bytes of the string `v`, which the caller keeps alive.
    Ok(unsafe { &*text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_the_92_standard_primitives_plus_our_eight_and_no_duplicates() {
        let all: Vec<&PrimEntry> = all().collect();
        assert_eq!(all.len(), 100);
        let mut keys: Vec<_> = all.iter().map(|e| (e.0, e.1, e.2)).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 100);
        assert_eq!(all.iter().filter(|e| e.1).count(), 4);
    }
}
