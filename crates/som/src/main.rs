//! The `som` command: `som [options] [-cp dir:dir] MainClass|path/File.som [args...]`.
//!
//! It parses the command line (`cli`), builds a VM with the embedded core library and the
//! classpath, and either runs the program (sending `initialize:` to the system object, as
//! every SOM VM does) or, without a program, starts the REPL (`repl`). The VM runs on a
//! thread with a large native stack so deep SOM recursion ends in a SOM-level error.

mod cli;
mod repl;

use som_vm::{Mode, Options, Vm};
use std::process::ExitCode;

/// Native stack of the VM thread. Reserved, not committed: pages are touched only as
/// deep as the program recurses.
const VM_THREAD_STACK: usize = 1 << 30;

fn main() -> ExitCode {
    // A closed pipe (`som prog | head`) ends the program quietly, as it does any Unix
    // tool, instead of failing the next write (which Rust's print macros turn into a
    // panic). SAFETY: setting a signal disposition to the default has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = cli::parse();
    let runner = std::thread::Builder::new()
        .name("som".into())
        .stack_size(VM_THREAD_STACK)
        .spawn(move || run(cli));
    match runner.map(|h| h.join()) {
        Ok(Ok(code)) => ExitCode::from(code as u8),
        _ => {
            eprintln!("som: internal error");
            ExitCode::from(70)
        }
    }
}

fn run(cli: cli::Cli) -> i32 {
    let mut classpath = cli.classpath_dirs();
    let program = cli.program.first().cloned();
    let mut args = cli.program.clone();
    if let Some(main) = &program {
        // `dir/Foo.som` names class Foo; its directory goes to the end of the classpath.
        let path = std::path::Path::new(main);
        if main.ends_with(".som") || main.contains('/') {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            classpath.push(dir.map_or_else(|| ".".into(), |d| d.to_path_buf()));
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            args[0] = stem.unwrap_or_default();
        } else {
            classpath.push(".".into());
        }
    }
    let options = Options {
        mode: match cli.mode {
            cli::Mode::Interp => Mode::Interp,
            cli::Mode::Threaded => Mode::Threaded,
            cli::Mode::Tracing => Mode::Tracing,
        },
        tier1: cli.tier1_options(),
        tier2: cli.tier2_options(),
        tier2_passes: cli.jit_passes.0.clone(),
        jit_log: cli.jit_log.clone(),
        classpath,
        max_stack_depth: cli.max_stack_depth,
        native_stack_bytes: VM_THREAD_STACK,
        gc: cli.gc_options(),
        ..Options::default()
    };
    let mut vm = match Vm::new(options) {
        Ok(vm) => vm,
        Err(e) => {
            eprintln!("som: cannot start the VM: {e}");
            return 1;
        }
    };
    if program.is_none() {
        return repl::run(&mut vm);
    }
    // Load the main class first so its syntax errors are reported as such.
    match vm.load_program_class(&args[0]) {
        // The class the file defines names the program (it may differ from the file's).
        Ok(Some(class)) => args[0] = vm.class_name(class.as_ptr()),
        Ok(None) => {}
        Err(u) => {
            vm.report(&u);
            return 1;
        }
    }
    let status = vm.run_main(&args);
    if cli.jit_stats {
        vm.flush();
        eprint!("{}", vm.jit_stats());
    }
    if let Some(path) = &cli.profile_calls {
        if let Err(e) = std::fs::write(path, vm.call_profile_text()) {
            eprintln!(
                "som: cannot write the call profile to {}: {e}",
                path.display()
            );
            return 1;
        }
    }
    status
}
