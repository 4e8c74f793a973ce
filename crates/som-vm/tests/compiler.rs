//! Unit tests of the bytecode compiler: what it inlines, where variables live, and the
//! errors it reports. They compile single methods and read the disassembly.

use som_vm::bytecode::Op;
use som_vm::compiler::Compiler;
use som_vm::object::Method;
use som_vm::{Options, Vm};

fn compile_in(vm: &mut Vm, method_source: &str) -> Result<*mut Method, String> {
    let class = som_syntax::parse_class(&format!("T = ( |field| {method_source} )"), "T.som")
        .map_err(|e| e.to_string())?;
    let object = vm.classes.object;
    // Compile against a holder that has the field `field`.
    let sym = vm.symbol("field");
    // SAFETY: classes are immortal, and no reference to Object is live.
    unsafe { (*object).instance_fields.push(sym) };
    let r = Compiler::new(vm, object, "T.som").compile_method(&class.instance_methods[0]);
    // SAFETY: as above; the compiler is done with the class.
    unsafe { (*object).instance_fields.pop() };
    r.map_err(|e| e.to_string())
}

fn ops(method_source: &str) -> Vec<Op> {
    let mut vm = Vm::new(Options::default()).unwrap();
    let m = compile_in(&mut vm, method_source).unwrap();
    // SAFETY: methods are immortal and not changed once compiled.
    unsafe { (*m).code().unwrap().ops.clone() }
}

fn listing(method_source: &str) -> String {
    let mut vm = Vm::new(Options::default()).unwrap();
    let m = compile_in(&mut vm, method_source).unwrap();
    // SAFETY: methods are immortal and not changed once compiled.
    let code = unsafe { (*m).code().unwrap() };
    code.disassemble(&|v| vm.get_str(v).unwrap_or("?").to_string())
}

fn sends(ops: &[Op]) -> usize {
    ops.iter().filter(|o| matches!(o, Op::Send(_))).count()
}

#[test]
fn literal_block_conditionals_are_inlined() {
    let o = ops("m: x = ( ^ x ifTrue: [ 1 ] ifFalse: [ 2 ] )");
    assert_eq!(sends(&o), 0, "{o:?}");
    assert!(o.iter().any(|op| matches!(op, Op::JumpIf { .. })));
}

#[test]
fn non_literal_arguments_are_real_sends() {
    let o = ops("m: x with: b = ( ^ x ifTrue: b )");
    assert_eq!(sends(&o), 1, "{o:?}");
}

#[test]
fn loops_end_in_a_back_edge() {
    let o = ops("m = ( |i| i := 0. [ i < 10 ] whileTrue: [ i := i + 1 ] )");
    assert_eq!(sends(&o), 0, "{o:?}");
    assert!(o.iter().any(|op| matches!(op, Op::BackJump { .. })));
    let o = ops("m = ( 1 to: 10 do: [ :i | i ] )");
    assert!(o.iter().any(|op| matches!(op, Op::ForTest { .. })));
    assert!(o.iter().any(|op| matches!(op, Op::BackJump { .. })));
    assert_eq!(sends(&o), 0, "{o:?}");
}

#[test]
fn captured_variables_live_in_the_context() {
    let l = listing("m = ( |a b| a := 1. b := 2. ^ [ a ] )");
    assert!(l.contains("context=Some"), "{l}");
    assert!(l.contains("StoreCtx"), "{l}");
    // b is not captured: it stays in a frame slot.
    assert!(l.contains("StoreSlot"), "{l}");
}

#[test]
fn uncaptured_methods_need_no_context() {
    let l = listing("m: x = ( |a| a := x + 1. ^ a )");
    assert!(l.contains("context=None"), "{l}");
}

#[test]
fn non_local_return_targets_the_home_context() {
    let mut vm = Vm::new(Options::default()).unwrap();
    let m = compile_in(&mut vm, "m = ( #(1 2) do: [ :e | ^ e ]. ^ nil )").unwrap();
    // SAFETY: methods are immortal and not changed once compiled.
    let code = unsafe { (*m).code().unwrap() };
    assert!(code.context.is_some(), "home method needs a context");
    let Op::PushBlock(lit) = code
        .ops
        .iter()
        .find(|o| matches!(o, Op::PushBlock(_)))
        .unwrap()
    else {
        unreachable!()
    };
    let block: *mut Method = code.literals[*lit as usize].as_ptr();
    // SAFETY: a PushBlock literal is a block method, immortal like every method.
    let bcode = unsafe { (*block).code().unwrap() };
    assert!(
        bcode.ops.contains(&Op::ReturnNonLocal(1)),
        "{:?}",
        bcode.ops
    );
}

#[test]
fn arithmetic_uses_the_fast_path_bytecodes() {
    let o = ops("m: a = ( ^ (a + 1) * (a - 2) < 3 )");
    assert!(o.iter().any(|op| matches!(op, Op::Add(_))));
    assert!(o.iter().any(|op| matches!(op, Op::Mul(_))));
    assert!(o.iter().any(|op| matches!(op, Op::Lt(_))));
}

#[test]
fn inlined_block_locals_are_reset_each_entry() {
    let l = listing("m = ( 1 to: 3 do: [ :i | |t| t := i ] )");
    assert!(l.contains("PushNil"), "{l}");
}

#[test]
fn fields_are_addressed_by_index() {
    let o = ops("m = ( field := 3. ^ field )");
    assert!(o.contains(&Op::StoreField(0)), "{o:?}");
    assert!(o.contains(&Op::PushField(0)), "{o:?}");
}

#[test]
fn compile_errors_name_the_position() {
    let mut vm = Vm::new(Options::default()).unwrap();
    let e = compile_in(&mut vm, "m = (\n  undeclared := 3 )").unwrap_err();
    assert!(e.starts_with("T.som:2:"), "{e}");
    assert!(e.contains("undeclared"), "{e}");
}

#[test]
fn loops_whose_variables_closures_capture_are_real_sends() {
    // Each iteration of a real to:do: has its own `i`; inlined, they would share one.
    let o = ops("m: blocks = ( 1 to: 3 do: [ :i | blocks at: i put: [ i ] ] )");
    assert_eq!(sends(&o), 1, "{o:?}");
    // Capturing variables from outside the loop is fine.
    let o = ops("m: blocks = ( |n| 1 to: 3 do: [ :i | blocks at: i put: [ n ] ] )");
    assert!(o.iter().any(|op| matches!(op, Op::ForTest { .. })), "{o:?}");
    // A closure's own parameter of the same name is not a capture.
    let o = ops("m: b = ( 1 to: 3 do: [ :i | b value: [ :i | i ] ] )");
    assert!(o.iter().any(|op| matches!(op, Op::ForTest { .. })), "{o:?}");
    // Locals of blocks inlined into the loop body count too.
    let o = ops("m: b = ( [ b isNil ] whileFalse: [ true ifTrue: [ |t| b := [ t ] ] ] )");
    assert!(
        !o.iter().any(|op| matches!(op, Op::BackJump { .. })),
        "{o:?}"
    );
}
