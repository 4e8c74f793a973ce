//! Block primitives: evaluation (`value`, `value:`, `value:with:`) and `restart`.

use super::PrimEntry;
use crate::interpreter::send::invoke_block;
use crate::interpreter::Frame;
use crate::universe::Vm;
use crate::unwind::{Unwind, VmResult};
use crate::value::Value;

fn value(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    invoke_block(vm, f, argc)
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
