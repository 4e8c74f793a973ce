//! Primitives of Object (identity, class, reflection on fields, `perform:` family),
//! Class (name, superclass, fields, methods, `new`) and Method/Primitive (signature,
//! holder, `invokeOn:with:`).

use super::{args, class_name_of, expect_kind, expect_symbol, numbers, PrimEntry};
use crate::interpreter::send::{invoke_method, send_values, send_values_in};
use crate::interpreter::Frame;
use crate::object::{as_ref, header, heap_size, Class, Kind, Method, Slots};
use crate::universe::Vm;
use crate::unwind::{Unwind, VmResult};
use crate::value::Value;
use std::cmp::Ordering;

/// `==`: identity; numbers compare by value (they have no identity of their own, so
/// `1 == 1.0` and two equal big integers are identical).
fn identical(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let same = a == b || numbers::compare(vm, a, b) == Some(Ordering::Equal);
    Ok(vm.boolean(same))
}

fn class(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    Ok(Value::from_ptr(vm.class_of(a)))
}

fn halt(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    vm.flush();
    eprintln!("halt: {}\n{}", describe(vm, a), vm.backtrace());
    Ok(a)
}

fn inspect(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    use std::io::Write;
    let text = describe(vm, a);
    let _ = writeln!(vm.out, "{text}");
    Ok(a)
}

/// A one-line description: class and fields.
fn describe(vm: &Vm, v: Value) -> String {
    let mut s = format!("an instance of {}", class_name_of(vm, v));
    if vm.is_kind(v, Kind::Instance) {
        // SAFETY: checked kind; classes are immortal.
        let fields = unsafe { &(*vm.class_of(v)).instance_fields };
        for (i, name) in fields.iter().enumerate() {
            let fv = vm.read_field(v, i);
            s.push_str(&format!(" {}: {}", vm.str_of(*name), class_name_of(vm, fv)));
        }
    }
    s
}

/// `hashcode`: the identity hash, stable for the object's lifetime.
pub fn identity_hash(vm: &Vm, v: Value) -> i64 {
    if v.is_int() {
        v.as_int()
    } else if let Some(d) = vm.get_double(v) {
        (d.to_bits() ^ (d.to_bits() >> 32)) as i64 & 0x7fff_ffff
    } else {
        // SAFETY: every other value points to an object with a header.
        unsafe { header(v).hash as i64 }
    }
}

fn hashcode(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    Ok(Value::int(identity_hash(vm, a)))
}

/// `objectSize`: the object's size in bytes.
fn object_size(_vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    let size = if a.is_ptr() {
        // SAFETY: pointer values point to initialised objects.
        unsafe { heap_size(header(a)) }
    } else {
        8
    };
    Ok(Value::int(size as i64))
}

/// A field index argument (1-based) checked against the receiver's fields.
fn field_index(vm: &Vm, obj: Value, idx: Value) -> VmResult<usize> {
    // SAFETY: classes are immortal.
    let n = unsafe { (*vm.class_of(obj)).instance_fields.len() };
    match idx.get_int() {
        Some(i) if i >= 1 && (i as usize) <= n => Ok(i as usize - 1),
        Some(i) => super::bad_index(vm, i, n),
        None => super::wrong_type(vm, "Int", idx),
    }
}

fn inst_var_at(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, i] = args(f, argc);
    let i = field_index(vm, a, i)?;
    Ok(vm.read_field(a, i))
}

fn inst_var_at_put(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, i, v] = args(f, argc);
    let i = field_index(vm, a, i)?;
    vm.write_field(a, i, v);
    Ok(a)
}

fn inst_var_named(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, name] = args(f, argc);
    // SAFETY: classes are immortal.
    let fields = unsafe { &(*vm.class_of(a)).instance_fields };
    match fields.iter().position(|&n| n == name) {
        Some(i) => Ok(vm.read_field(a, i)),
        None => vm.err(format!(
            "instVarNamed: {} has no field {}",
            class_name_of(vm, a),
            vm.get_str(name).unwrap_or("?")
        )),
    }
}

/// The elements of an Array argument.
fn expect_array(vm: &Vm, v: Value) -> VmResult<Vec<Value>> {
    let v = expect_kind(vm, v, Kind::Array)?;
    // SAFETY: checked kind.
    Ok(unsafe { as_ref::<Slots>(v).items().to_vec() })
}

fn expect_class(vm: &Vm, v: Value) -> VmResult<*mut Class> {
    Ok(expect_kind(vm, v, Kind::Class)?.as_ptr())
}

/// `error:`: the program's own error, reported as `ERROR: message` (see
/// [`Unwind::ProgramError`]).
fn error(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [_, message] = args(f, argc);
    let message = super::expect_text(vm, message)?.to_string();
    Err(Box::new(Unwind::ProgramError {
        message,
        backtrace: vm.backtrace(),
    }))
}

fn perform(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [r, sel] = args(f, argc);
    let sel = expect_symbol(vm, sel)?;
    send_values(vm, f, r, sel, &[])
}

fn perform_with_arguments(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [r, sel, arr] = args(f, argc);
    let sel = expect_symbol(vm, sel)?;
    let items = expect_array(vm, arr)?;
    send_values(vm, f, r, sel, &items)
}

fn perform_in_superclass(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [r, sel, cls] = args(f, argc);
    let sel = expect_symbol(vm, sel)?;
    let cls = expect_class(vm, cls)?;
    send_values_in(vm, f, r, cls, sel, &[])
}

fn perform_with_arguments_in_superclass(
    vm: &mut Vm,
    f: &mut Frame,
    argc: usize,
) -> VmResult<Value> {
    let [r, sel, arr, cls] = args(f, argc);
    let sel = expect_symbol(vm, sel)?;
    let items = expect_array(vm, arr)?;
    let cls = expect_class(vm, cls)?;
    send_values_in(vm, f, r, cls, sel, &items)
}

// ---- Class --------------------------------------------------------------------------

/// The receiver, a class. A pointer rather than a reference: classes are immortal but
/// change (`methods` below, class-side fields), and the collector reads them at every
/// allocation, so each use below reads or writes through it only briefly.
fn receiver_class(vm: &Vm, f: &mut Frame, argc: usize) -> VmResult<*mut Class> {
    let [c] = args(f, argc);
    expect_class(vm, c)
}

fn class_name(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let c = receiver_class(vm, f, argc)?;
    // SAFETY: classes are immortal.
    Ok(unsafe { (*c).name })
}

fn class_new(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let c = receiver_class(vm, f, argc)?;
    Ok(vm.alloc_instance(c))
}

fn class_superclass(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let c = receiver_class(vm, f, argc)?;
    // SAFETY: classes are immortal.
    Ok(unsafe { (*c).superclass })
}

fn class_fields(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let c = receiver_class(vm, f, argc)?;
    // SAFETY: classes are immortal; the copy is made before allocating.
    let fields = unsafe { (*c).instance_fields.clone() };
    Ok(vm.alloc_array_from(&fields))
}

/// `methods`: the class's own methods in source order, always the same Array.
fn class_methods(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let class = receiver_class(vm, f, argc)?;
    // SAFETY: classes are immortal; no reference to this one is held across the
    // allocation (which may collect, and the collector reads every class).
    unsafe {
        if (*class).methods_array.is_empty() {
            let methods: Vec<Value> = (*class)
                .methods
                .iter()
                .map(|&m| Value::from_ptr(m))
                .collect();
            let array = vm.alloc_array_from(&methods);
            (*class).methods_array = array;
        }
        Ok((*class).methods_array)
    }
}

// ---- Method and Primitive ----------------------------------------------------------------

/// The receiver, a method. `'static` is its real lifetime: methods are immortal (never
/// freed), and once compiled change only through their `Cell`s.
fn receiver_method(vm: &Vm, f: &mut Frame, argc: usize) -> VmResult<&'static Method> {
    let v = f.args(argc)[0];
    if vm.is_kind(v, Kind::Method) {
        // SAFETY: checked kind; methods are immortal and, once compiled (a Method
        // value reaches SOM code only then), never written but through `Cell`s.
        Ok(unsafe { &*v.as_ptr::<Method>() })
    } else {
        vm.err("expected a Method")
    }
}

fn method_signature(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    Ok(receiver_method(vm, f, argc)?.signature)
}

fn method_holder(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    Ok(Value::from_ptr(receiver_method(vm, f, argc)?.holder.get()))
}

/// `invokeOn:with:`: runs the method on a receiver with an Array of arguments.
fn method_invoke_on_with(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let method = receiver_method(vm, f, argc)? as *const Method as *mut Method;
    let [_, rcvr, arr] = args(f, argc);
    let items = expect_array(vm, arr)?;
    let saved = f.sp;
    if f.top() as usize + (items.len() + 1) * 8 > vm.stack.as_ptr_range().end as usize {
        return vm.err("Stack overflow");
    }
    f.push(rcvr);
    for v in &items {
        f.push(*v);
    }
    let r = invoke_method(vm, f, method, items.len());
    f.sp = saved;
    r
}

pub const PRIMITIVES: &[PrimEntry] = &[
    ("Object", false, "==", identical),
    ("Object", false, "class", class),
    ("Object", false, "error:", error),
    ("Object", false, "halt", halt),
    ("Object", false, "hashcode", hashcode),
    ("Object", false, "inspect", inspect),
    ("Object", false, "instVarAt:", inst_var_at),
    ("Object", false, "instVarAt:put:", inst_var_at_put),
    ("Object", false, "instVarNamed:", inst_var_named),
    ("Object", false, "objectSize", object_size),
    ("Object", false, "perform:", perform),
    (
        "Object",
        false,
        "perform:inSuperclass:",
        perform_in_superclass,
    ),
    (
        "Object",
        false,
        "perform:withArguments:",
        perform_with_arguments,
    ),
    (
        "Object",
        false,
        "perform:withArguments:inSuperclass:",
        perform_with_arguments_in_superclass,
    ),
    ("Class", false, "fields", class_fields),
    ("Class", false, "methods", class_methods),
    ("Class", false, "name", class_name),
    ("Class", false, "new", class_new),
    ("Class", false, "superclass", class_superclass),
    ("Method", false, "holder", method_holder),
    ("Method", false, "invokeOn:with:", method_invoke_on_with),
    ("Method", false, "signature", method_signature),
    ("Primitive", false, "holder", method_holder),
    ("Primitive", false, "invokeOn:with:", method_invoke_on_with),
    ("Primitive", false, "signature", method_signature),
];
