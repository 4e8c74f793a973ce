//! Block primitives: evaluation (`value`, `value:`, `value:with:`) and `restart`.

use super::PrimEntry;
use crate::interpreter::send::invoke_block;
use crate::interpreter::Frame;
use crate::universe::Vm;
use crate::unwind::{Unwind, VmResult};
use crate::value::Value;

/// The `value` primitives. Methods bound to them get `MethodBody::BlockValue`, which
/// sends evaluate through `invoke_block` directly (and traces inline); this entry
/// serves the table and callers that hold the function.
fn value(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    // The interpreter inlines every block, so the `value` method is not needed.
    invoke_block(&mut metajit::Concrete, vm, f, std::ptr::null_mut(), argc).map(Value::from_bits)
}

/// Is the primitive `class>>selector` one of the block `value` primitives?
pub fn evaluates_block(class: &str, selector: &str) -> bool {
    PRIMITIVES
        .iter()
        .any(|&(c, _, s, _)| c == class && s == selector && s.starts_with("value"))
}

/// `restart`: the activation that sent it starts over (see `dispatch`).
fn restart(_vm: &mut Vm, _f: &mut Frame, _argc: usize) -> VmResult<Value> {
    Err(Box::new(Unwind::Restart))
}

pub const PRIMITIVES: &[PrimEntry] = &[
    ("Block", false, "value", value),
    ("Block", false, "restart", restart),
    ("Block1", false, "value", value),
    ("Block2", false, "value:", value),
    ("Block3", false, "value:with:", value),
];
