//! System primitives: globals, class loading, output, time, exit, stack traces.

use super::{args, expect_symbol, expect_text, expect_text_detached, PrimEntry};
use crate::interpreter::Frame;
use crate::object::Kind;
use crate::universe::Vm;
use crate::unwind::{Unwind, VmResult};
use crate::value::Value;
use std::io::Write;

fn global(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [_, name] = args(f, argc);
    let name = expect_symbol(vm, name)?;
    Ok(vm.global(name).unwrap_or(vm.nil))
}

/// `global:put:` answers the receiver.
fn global_put(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [s, name, v] = args(f, argc);
    let name = expect_symbol(vm, name)?;
    vm.set_global(name, v);
    Ok(s)
}

fn has_global(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [_, name] = args(f, argc);
    let name = expect_symbol(vm, name)?;
    Ok(vm.boolean(vm.global(name).is_some()))
}

fn load(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [_, name] = args(f, argc);
    let name = expect_symbol(vm, name)?;
    Ok(vm.load_class(name)?.unwrap_or(vm.nil))
}

fn load_file(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [_, name] = args(f, argc);
    let Some(path) = vm.get_str(name) else {
        return vm.err("loadFile: expects a String");
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(vm.alloc_string(&text)),
        Err(_) => Ok(vm.nil),
    }
}

fn exit(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [_, code] = args(f, argc);
    match code.get_int().map(i32::try_from) {
        Some(Ok(c)) => Err(Box::new(Unwind::Exit(c))),
        Some(Err(_)) => vm.err("Domain error."),
        None if vm.is_kind(code, Kind::BigInt) => vm.err("Domain error."),
        None => super::wrong_type(vm, "Int", code),
    }
}

fn print_string(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [s, v] = args(f, argc);
    // SAFETY: `v` is an argument, on the caller's stack until this returns (and
    // writing to the output buffer does not allocate in the heap anyway).
    let t = unsafe { expect_text_detached(vm, v)? };
    let _ = vm.out.write_all(t.as_bytes());
    Ok(s)
}

fn print_newline(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [s] = args(f, argc);
    let _ = vm.out.write_all(b"\n");
    Ok(s)
}

fn error_print(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [s, v] = args(f, argc);
    vm.flush();
    let t = expect_text(vm, v)?;
    eprint!("{t}");
    Ok(s)
}

fn error_println(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [s, v] = args(f, argc);
    vm.flush();
    let t = expect_text(vm, v)?;
    eprintln!("{t}");
    Ok(s)
}

fn print_stack_trace(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [s] = args(f, argc);
    vm.flush();
    eprint!("{}\n{}", crate::universe::TRACEBACK_HEADER, vm.backtrace());
    Ok(s)
}

/// `ticks`: microseconds since the VM started (always positive).
fn ticks(vm: &mut Vm, _f: &mut Frame, _argc: usize) -> VmResult<Value> {
    Ok(Value::int(vm.start_time.elapsed().as_micros() as i64 + 1))
}

/// `time`: milliseconds since the VM started.
fn time(vm: &mut Vm, _f: &mut Frame, _argc: usize) -> VmResult<Value> {
    Ok(Value::int(vm.start_time.elapsed().as_millis() as i64))
}

/// `fullGC`: collects now; answers whether a collection ran.
fn full_gc(vm: &mut Vm, _f: &mut Frame, _argc: usize) -> VmResult<Value> {
    let collected = vm.heap.collect();
    Ok(vm.boolean(collected))
}

/// `gcStats`: an Array of the collections so far, the milliseconds spent in them, and
/// the bytes this VM has allocated.
fn gc_stats(vm: &mut Vm, _f: &mut Frame, _argc: usize) -> VmResult<Value> {
    let stats = crate::gc::stats();
    let bytes = vm.heap.stats.bytes_allocated;
    let items = [
        vm.int_from_i64(stats.collections as i64),
        vm.int_from_i64((stats.pause_nanos / 1_000_000) as i64),
        vm.int_from_i64(bytes as i64),
    ];
    Ok(vm.alloc_array_from(&items))
}

pub const PRIMITIVES: &[PrimEntry] = &[
    ("System", false, "global:", global),
    ("System", false, "global:put:", global_put),
    ("System", false, "hasGlobal:", has_global),
    ("System", false, "load:", load),
    ("System", false, "loadFile:", load_file),
    ("System", false, "exit:", exit),
    ("System", false, "printString:", print_string),
    ("System", false, "printNewline", print_newline),
    ("System", false, "errorPrint:", error_print),
    ("System", false, "errorPrintln:", error_println),
    ("System", false, "printStackTrace", print_stack_trace),
    ("System", false, "ticks", ticks),
    ("System", false, "time", time),
    ("System", false, "fullGC", full_gc),
    ("System", false, "gcStats", gc_stats),
];
