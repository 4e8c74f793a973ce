//! The read-eval-print loop (rustyline for line editing and history). Each input is a
//! sequence of statements, compiled as the body of a method run with nil as self; the
//! value of the last statement is printed. Errors are reported and the loop goes on.

use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;
use som_vm::compiler::Compiler;
use som_vm::interpreter::send::{invoke_method, send_values};
use som_vm::{Unwind, Vm};
use std::io::Write;

pub fn run(vm: &mut Vm) -> i32 {
    let mut editor = match DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("som: cannot start the REPL: {e}");
            return 1;
        }
    };
    println!("SOM REPL. Enter statements; an empty line or Ctrl-D quits.");
    vm.set_native_stack_limit();
    loop {
        match editor.readline("som> ") {
            Ok(line) if line.trim().is_empty() => return 0,
            Ok(line) => {
                let _ = editor.add_history_entry(line.as_str());
                if let Some(code) = eval(vm, &line) {
                    return code;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(_) => return 0,
        }
    }
}

/// Evaluates one input; answers an exit status if the program asked to exit.
fn eval(vm: &mut Vm, line: &str) -> Option<i32> {
    let body = match som_syntax::parse_repl_input(line, "<repl>") {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return None;
        }
    };
    let object = vm.classes.object;
    let method = match Compiler::new(vm, object, "<repl>").compile_body("doIt", &body) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return None;
        }
    };
    let nil = vm.nil;
    let result = vm.with_bottom_frame(|vm, f| {
        f.push(nil);
        let v = invoke_method(vm, f, method, 0)?;
        let sel = vm.symbol("asString");
        send_values(vm, f, v, sel, &[])
    });
    vm.flush();
    match result.map_err(|u| *u) {
        Ok(s) => {
            let text = vm.get_str(s).unwrap_or("?").to_string();
            let _ = writeln!(vm.out, "{text}");
            vm.flush();
            None
        }
        Err(Unwind::Exit(code)) => Some(code),
        Err(Unwind::Error { message, backtrace }) => {
            eprintln!("ERROR: {message}\n{backtrace}");
            None
        }
        Err(_) => {
            eprintln!("ERROR: a non-local return left the input");
            None
        }
    }
}
