//! End-to-end behaviour of the `som` command: errors and exit statuses for bad input,
//! deep recursion, the classpath rules, and the standard harness entry protocol.

use std::path::PathBuf;
use std::process::{Command, Output};

fn som(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_som"))
        .args(args)
        .output()
        .expect("run som")
}

/// A fresh directory holding the given class files.
fn classes(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("som-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

/// Writes class `class` (its source) into a fresh directory and runs it with `flags`.
fn run_class(class: &str, source: &str, flags: &[&str]) -> Output {
    let file = format!("{class}.som");
    let dir = classes(class, &[(&file, source)]);
    let path = dir.join(&file);
    let mut args = flags.to_vec();
    args.push(path.to_str().unwrap());
    som(&args)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn syntax_errors_name_file_line_and_column_and_exit_1() {
    let dir = classes("syntax", &[("Bad.som", "Bad = (\n  run = ( ^ 1 + )\n)\n")]);
    let file = dir.join("Bad.som");
    let out = som(&[file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("Bad.som:2:"), "{err}");
    assert!(err.contains("error"), "{err}");
}

#[test]
fn an_unknown_mode_exits_2_and_names_the_modes() {
    let out = som(&["--mode", "warp", "Foo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("interp"));
}

#[test]
fn unbounded_recursion_is_a_som_error_not_a_crash() {
    let dir = classes(
        "recursion",
        &[(
            "Deep.som",
            "Deep = (\n  down: n = ( ^ (self down: n + 1) + 1 )\n  run = ( (self down: 0) println )\n)\n",
        )],
    );
    let out = som(&[dir.join("Deep.som").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Stack overflow"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("Deep>>#down:"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn recursion_to_a_hundred_million_frames_ends_cleanly() {
    let dir = classes(
        "recursion8",
        &[(
            "Deep8.som",
            "Deep8 = (\n  down: n = ( n = 100000000 ifTrue: [ ^ n ]. ^ self down: n + 1 )\n  run = ( (self down: 0) println )\n)\n",
        )],
    );
    let out = som(&[dir.join("Deep8.som").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Stack overflow"));
}

#[test]
fn a_missing_class_is_reported() {
    let out = som(&["NoSuchClassAnywhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("NoSuchClassAnywhere"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn the_classpath_finds_classes_and_program_arguments_arrive() {
    let dir = classes(
        "classpath",
        &[
            (
                "Main.som",
                "Main = (\n  run: args = ( Helper greet. (args at: 2) println. args length println )\n)\n",
            ),
            ("Helper.som", "Helper = (\n  ----\n  greet = ( 'hello from Helper' println )\n)\n"),
        ],
    );
    let out = som(&["-cp", dir.to_str().unwrap(), "Main", "extra"]);
    assert_eq!(text(&out.stdout), "hello from Helper\nextra\n2\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_classpath_smalltalk_directory_overrides_the_core_library() {
    let dir = classes(
        "override",
        &[
            ("Main.som", "Main = (\n  run = ( 3 answer println )\n)\n"),
            (
                "Integer.som",
                &std::fs::read_to_string(
                    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../core-lib/Integer.som"),
                )
                .unwrap()
                .replacen("Integer = (", "Integer = (\n    answer = ( ^ 42 )", 1),
            ),
        ],
    );
    let out = som(&["-cp", dir.to_str().unwrap(), "Main"]);
    assert_eq!(text(&out.stdout), "42\n", "{}", text(&out.stderr));
}

#[test]
fn garbage_input_never_panics() {
    let inputs = [
        "",
        "Foo",
        "Foo = (",
        "Foo = ( run = ( 'unterminated ) )",
        "Foo = ( run = ( \"comment ) )",
        "Foo = ( run = ( #( 1 2 ) )",
        "Foo = ( run = ( ^ ^ ) )",
        "Foo = ( run = ( [:a :a | a] ) )",
        "Foo = ( run = ( self := 3 ) )",
        "Foo = ( run = ( 'a\\q' ) )",
        "Foo = Bar ( )",
        "\u{0}\u{1}\u{2}",
    ];
    for (i, src) in inputs.iter().enumerate() {
        let dir = classes(&format!("garbage{i}"), &[("Foo.som", src)]);
        let out = som(&[dir.join("Foo.som").to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "input {src:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).contains("panicked"), "input {src:?}");
    }
}

/// Runs the REPL (no program) with `input` piped to its standard input. Its data
/// directory (for the history) is `data`.
fn repl_in(data: &std::path::Path, input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_som"))
        .env("XDG_DATA_HOME", data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs the REPL with `input` piped in and a fresh data directory named after `name`.
fn repl(name: &str, input: &str) -> Output {
    repl_in(&classes(&format!("repl-{name}"), &[]), input)
}

#[test]
fn without_a_program_the_repl_evaluates_lines() {
    let out = repl(
        "lines",
        "3 + 4\n| a | a := 6. a * 7\n1 +\n\n'still here'\n\n",
    );
    // Piped input: no banner, no prompts, and empty lines do not end the session.
    assert_eq!(text(&out.stdout), "7\n42\nstill here\n");
    assert!(
        text(&out.stderr).contains("<repl>:1:4: error:"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn the_repl_keeps_variables_from_line_to_line() {
    let out = repl(
        "variables",
        "x := 5\nx * x\ny := x + 1. y\nadd := [:a | a + x]. nil\nadd value: 10\n\
         x := 10\nadd value: 10\nw := v := 2\nw + v\n\
         1 to: 3 do: [:i | last := i]. last\nnothing := nil. nothing\n",
    );
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        text(&out.stdout),
        "5\n25\n6\nnil\n15\n10\n20\n2\n4\n3\nnil\n"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn repl_locals_last_one_input_and_globals_are_not_replaced() {
    let out = repl(
        "locals",
        "| a | a := 6\na\nneverAssigned\nInteger := 3\nInteger\n",
    );
    // A declared variable is local to its input; reading a name never assigned is
    // an unknown global (`unknownGlobal:`); an existing global is not replaced.
    assert_eq!(
        text(&out.stdout),
        "6\n\nERROR: Tried loading 'a' as a class, but failed.\n\
         \nERROR: Tried loading 'neverAssigned' as a class, but failed.\nInteger\n"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "<repl>:1:1: error: cannot assign to the global 'Integer': it is not a session variable\n\
             \x20 File '<repl>', line 1, column 1:\n    Integer := 3\n    ^\n"
        ),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn the_repl_reports_runtime_errors_and_goes_on() {
    let out = repl(
        "errors",
        "1/0\n'after division'\nnil foo\n'after dnu'\nself error: 'mine'\n'after error:'\n\
         b := [:n | n / 0]. nil\nb value: 7\n'end'\n",
    );
    assert_eq!(
        text(&out.stdout),
        "after division\n\nERROR: Method foo not found in class Nil\nafter dnu\n\
         \nERROR: mine\nafter error:\nnil\nend\n"
    );
    let err = text(&out.stderr);
    assert!(err.contains("Division by zero"), "{err}");
    // Backtraces show the REPL input, also that of an earlier line (the block's).
    assert!(err.contains("Object>>#doIt at <repl>, line 1"), "{err}");
    assert!(err.contains("      1/0\n"), "{err}");
    assert!(err.contains("      b value: 7\n"), "{err}");
    assert!(
        err.contains("block in Object>>#doIt at <repl>, line 1"),
        "{err}"
    );
    assert!(err.contains("      b := [:n | n / 0]. nil\n"), "{err}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn repl_syntax_errors_point_at_the_column_and_the_repl_goes_on() {
    let out = repl("syntax", "1 +\n'next'\n(1 +\n 2 +)\n'last'\n'open");
    assert_eq!(text(&out.stdout), "next\nlast\n");
    let err = text(&out.stderr);
    assert!(err.contains("<repl>:1:4: error: "), "{err}");
    assert!(err.contains("    1 +\n       ^\n"), "{err}");
    // An error in the second line of a multi-line input points into that line.
    assert!(err.contains("<repl>:2:5: error: "), "{err}");
    assert!(err.contains("     2 +)\n        ^\n"), "{err}");
    // Input left open at the end is evaluated, and so reported.
    assert!(
        err.contains("<repl>:1:1: error: unterminated string"),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn repl_input_continues_while_brackets_are_open() {
    let out = repl(
        "multiline",
        "square := [:n |\n  n * n ]. nil\n((square value: 3) +\n  (square\n    value: 4))\n\
         'a ( in a string' + ' and \"(\" too'\n\"a comment ( opens nothing\" 7\n\
         \"a comment\n  across lines\" 8\n'two\nlines'\n#(1 (2\n  3)) length\n\
         #'a ( symbol'\n[:k | k\n\n] value: 9\n'it\\'s ( here'\n([ 1 ] value ]\n'after'\n",
    );
    assert_eq!(
        text(&out.stdout),
        "nil\n25\na ( in a string and \"(\" too\n7\n8\ntwo\nlines\n2\na ( symbol\n9\n\
         it's ( here\nafter\n"
    );
    // A closing bracket that matches no opening one ends the input (an error).
    let err = text(&out.stderr);
    assert!(err.contains("<repl>:1:14: error: "), "{err}");
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn system_exit_ends_the_repl_with_its_status() {
    let out = repl("exit", "'before'\nsystem exit: 3\n'not reached'\n");
    assert_eq!(text(&out.stdout), "before\n");
    assert_eq!(out.status.code(), Some(3));
}

/// Runs the REPL on a pseudo-terminal (TERM=dumb, so rustyline reads lines without
/// editing them), with echo off; answers what it wrote and its exit status.
fn repl_on_a_terminal(data: &std::path::Path, input: &str) -> (String, Option<i32>) {
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: plain libc calls on a descriptor this function owns.
    let (mut master, slave) = unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(fd >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(fd), 0);
        assert_eq!(libc::unlockpt(fd), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
        let name = std::ffi::CStr::from_ptr(name.as_ptr()).to_str().unwrap();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(name)
            .unwrap();
        let mut tio: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(slave.as_raw_fd(), &mut tio), 0);
        tio.c_lflag &= !(libc::ECHO | libc::ECHOCTL);
        tio.c_oflag &= !libc::OPOST;
        assert_eq!(libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &tio), 0);
        (std::fs::File::from_raw_fd(fd), slave)
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_som"))
        .env("TERM", "dumb")
        .env("XDG_DATA_HOME", data)
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    // Lines, then Ctrl-D at the start of a line: end of input.
    master.write_all(input.as_bytes()).unwrap();
    master.write_all(b"\x04").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the REPL did not end");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // SAFETY: fcntl on a descriptor `master` owns.
    unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    (text(&out), status.code())
}

#[test]
fn on_a_terminal_the_repl_prompts_and_keeps_history_across_sessions() {
    let data = classes("repl-history", &[]);
    let file = data.join("som").join("history");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    // An earlier session's history, longer than the 1000 entries kept.
    let old: String = (0..1005).map(|i| format!("e{i}\n")).collect();
    std::fs::write(&file, old).unwrap();
    // `e1004` repeats the last entry loaded: not recorded again.
    let (out, status) = repl_on_a_terminal(&data, "e1004\nx := 5\n(x\n* x)\n");
    assert_eq!(status, Some(0), "{out}");
    assert!(out.starts_with("SOM REPL."), "{out}");
    assert!(out.ends_with("som> 5\nsom> ...> 25\nsom> "), "{out}");
    let expected: String = (5..1005)
        .map(|i| format!("e{i}\n"))
        .chain(["x := 5\n".into(), "(x\\n* x)\n".into()])
        .collect();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), expected);
    // The next session reads the multi-line entry back (typing it again repeats it,
    // so it is not recorded again), and trims the file to its last 1000 entries.
    let (out, _) = repl_on_a_terminal(&data, "(x\n* x)\n");
    assert!(out.contains("...> "), "{out}");
    let expected = expected.split_once("e7\n").unwrap().1;
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("e7\n{expected}")
    );
    // Piped input keeps no history.
    let piped = classes("repl-piped-history", &[]);
    let out = repl_in(&piped, "3 + 4\n");
    assert_eq!(text(&out.stdout), "7\n");
    assert!(!piped.join("som").exists());
}

#[test]
fn deeply_nested_source_is_a_syntax_error_not_a_crash() {
    let nested = format!("{}1{}", "(".repeat(200_000), ")".repeat(200_000));
    let dir = classes(
        "nested",
        &[("Nest.som", &format!("Nest = ( run = ( ^ {nested} ) )"))],
    );
    let out = som(&[dir.join("Nest.som").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nested too deeply"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn huge_arrays_are_refused_with_a_som_error() {
    let dir = classes(
        "hugearray",
        &[(
            "Huge.som",
            "Huge = ( run = ( (Array new: 1 << 40) println ) )",
        )],
    );
    let out = som(&[dir.join("Huge.som").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("Traceback"), "{stderr}");
    assert!(stderr.contains("Huge>>#run at "), "{stderr}");
}

#[test]
fn a_circular_superclass_chain_is_an_error_not_a_crash() {
    let dir = classes(
        "cycle",
        &[
            ("CycA.som", "CycA = CycB ( run = ( 1 println ) )"),
            ("CycB.som", "CycB = CycA ( )"),
            ("Selfish.som", "Selfish = Selfish ( run = ( 1 println ) )"),
        ],
    );
    for main in ["CycA.som", "Selfish.som"] {
        let out = som(&[dir.join(main).to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("circular"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn very_long_send_chains_are_a_syntax_error_not_a_crash() {
    let chain = "1".to_string() + &" + 1".repeat(100_000);
    let dir = classes(
        "chain",
        &[("Chain.som", &format!("Chain = ( run = ( ^ {chain} ) )"))],
    );
    let out = som(&[dir.join("Chain.som").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("too deeply"),
        "{}",
        text(&out.stderr)
    );
}

/// The number after `label` in a `--jit-stats` report.
fn stat(report: &str, label: &str) -> u64 {
    let at = report
        .find(label)
        .unwrap_or_else(|| panic!("no '{label}' in {report}"))
        + label.len();
    report[at..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after '{label}' in {report}"))
}

#[test]
fn tier1_compiles_hot_methods_and_makes_direct_calls() {
    let dir = classes(
        "tier1",
        &[(
            "Hot.som",
            "Hot = (\n  inc: x = ( ^ x + 1 )\n  loop: s = ( | t | t := s. 1 to: 500 do: [ :i | t := self inc: t ]. ^ t )\n  run = ( | s | s := 0. 10 timesRepeat: [ s := self loop: s ]. s println )\n)\n",
        )],
    );
    let prog = dir.join("Hot.som");
    let prog = prog.to_str().unwrap();
    let out = som(&[
        "--mode",
        "threaded",
        "--jit",
        "tier1_threshold=2",
        "--jit-stats",
        prog,
    ]);
    assert_eq!(text(&out.stdout), "5000\n");
    let report = text(&out.stderr);
    assert!(stat(&report, "tier 1:") >= 1, "{report}");
    // `loop:` is compiled after two calls; its 500 sends of `inc:` per call then go
    // straight to the cached method.
    assert!(stat(&report, "tier-1 direct calls") >= 4000, "{report}");
    let out = som(&[
        "--mode",
        "threaded",
        "--jit",
        "tier1_threshold=2,tier1_ic=off",
        "--jit-stats",
        prog,
    ]);
    assert_eq!(text(&out.stdout), "5000\n");
    assert_eq!(stat(&text(&out.stderr), "tier-1 direct calls"), 0);
    let out = som(&["--mode", "interp", "--jit-stats", prog]);
    assert!(!text(&out.stderr).contains("tier 1:"));
}

#[test]
fn running_out_of_heap_is_a_som_error_with_exit_1() {
    // `--gc-stress 0`: this tests the heap limit, not roots, so SOM_GC_STRESS does not apply.
    let out = run_class(
        "Hog",
        "Hog = (\n  run = ( | list | 1 to: 100000000 do: [:i | | a | a := Array new: 100. a at: 1 put: list. list := a ] )\n)\n",
        &["--gc-stress", "0", "--heap-size", "32M"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("out of memory"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("Hog>>#run"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn heap_sizes_are_checked() {
    for bad in ["12Q", "lots", "0", "100K"] {
        let out = som(&["--heap-size", bad, "Foo"]);
        assert_eq!(out.status.code(), Some(2), "--heap-size {bad}");
        assert!(text(&out.stderr).contains("heap"), "{}", text(&out.stderr));
    }
}

/// A loop making about 300 MB of garbage with a few KB live; prints its collections.
const CHURN: &str = "Churn = (\n  run = ( | n | n := 0. 1 to: 3000000 do: [:i | | a | a := Array new: 10. a at: 1 put: a. n := n + a length ]. n println. (system gcStats at: 1) println )\n)\n";

fn churn_collections(flags: &[&str]) -> u64 {
    // `--gc-stress 0`: this tests the heap trigger, so SOM_GC_STRESS does not apply.
    let mut args = vec!["--gc-stress", "0"];
    args.extend_from_slice(flags);
    let out = run_class("Churn", CHURN, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("30000000"));
    lines.next().unwrap().parse().unwrap()
}

#[test]
fn a_small_live_set_runs_in_a_small_heap() {
    assert!(churn_collections(&["--heap-size", "16M"]) > 0);
}

#[test]
fn a_larger_starting_heap_collects_less_often() {
    let small = churn_collections(&["--heap-min", "4M"]);
    let large = churn_collections(&["--heap-min", "64M"]);
    assert!(
        large * 4 < small,
        "{large} collections with 64M, {small} with 4M"
    );
}

#[test]
fn a_closed_output_pipe_ends_the_program_without_a_panic() {
    let dir = classes(
        "pipe",
        &[(
            "Chatty.som",
            "Chatty = (\n  run = ( 1 to: 200000 do: [:i | i println ]. self error: 'late' )\n)\n",
        )],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_som"))
        .arg(dir.join("Chatty.som"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run som");
    // Read a little, then close both pipes while the program is still writing.
    let mut first = [0u8; 16];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    // Ended by SIGPIPE (no exit code) or with the error's 1, never a panic's 101.
    assert_ne!(status.code(), Some(101), "{status:?}");
}

#[test]
fn an_array_larger_than_the_current_heap_is_allocated() {
    // 600000 slots (4.8 MB) do not fit the 4 MB starting heap: the heap must grow for
    // the waiting allocation instead of collecting forever.
    let out = run_class(
        "BigArray",
        "BigArray = (\n  run = ( (Array new: 600000) length println. (Array new: 6000000) length println )\n)\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "600000\n6000000\n");
}

#[test]
fn profile_calls_counts_every_method_and_block_in_every_mode() {
    let source = "Prof = (
        twice: x = ( ^ x * 2 )
        run = ( | sum | sum := 0.
            1 to: 5000 do: [ :i | sum := sum + (self twice: i) ].
            #(1 2 3) do: [ :e | sum := sum + e ].
            sum println ) )";
    for mode in ["interp", "threaded"] {
        let file = std::env::temp_dir().join(format!("som-profile-{}-{mode}", std::process::id()));
        let f = file.to_str().unwrap();
        let out = run_class(
            "Prof",
            source,
            &[
                "--mode",
                mode,
                "--jit",
                "tier1_threshold=10",
                "--profile-calls",
                f,
            ],
        );
        assert_eq!(
            text(&out.stdout),
            "25005006\n",
            "{mode}: {}",
            text(&out.stderr)
        );
        let profile = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = profile.lines().collect();
        // The most-called method comes first, with its exact count.
        assert_eq!(lines[0], "5000\tProf>>#twice:", "{mode}: {profile}");
        assert!(lines.contains(&"1\tProf>>#run"), "{mode}: {profile}");
        // The block passed to do: is a real block, counted per element.
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("3\tblock in Prof>>#run (line")),
            "{mode}: {profile}"
        );
        let counts: Vec<u64> = lines
            .iter()
            .map(|l| l.split('\t').next().unwrap().parse().unwrap())
            .collect();
        assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{mode}: sorted");
        let _ = std::fs::remove_file(&file);
    }
}

#[test]
fn an_unwritable_call_profile_is_an_error_not_a_panic() {
    let out = run_class(
        "ProfNowhere",
        "ProfNowhere = ( run = ( 1 println ) )",
        &["--profile-calls", "/nonexistent-dir/profile.tsv"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("cannot write the call profile"), "{err}");
}

#[test]
fn tier2_traces_hot_loops_and_logs_them() {
    let source = "Loops = (\n  run = ( | s a |\n    s := 0. 1 to: 100000 do: [ :i | s := s + i ]. s println.\n    a := Array new: 10 withAll: 3. s := 0.\n    1 to: 50000 do: [ :i | s := s + (a at: 5) ]. s println )\n)\n";
    let dir = classes("tier2", &[("Loops.som", source)]);
    let prog = dir.join("Loops.som");
    let log = dir.join("jit.log");
    let out = som(&[
        "--mode",
        "tracing",
        "--jit",
        "threshold=50",
        "--jit-stats",
        "--jit-log",
        log.to_str().unwrap(),
        prog.to_str().unwrap(),
    ]);
    assert_eq!(text(&out.stdout), "5000050000\n150000\n");
    let report = text(&out.stderr);
    assert!(stat(&report, "tier 2:") >= 1, "{report}");
    // Both loops ran in compiled code: entered, and left through a guard.
    assert!(stat(&report, "trace entries,") >= 2, "{report}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("[tier2] trace 0 (loop) of Loops>>#run"),
        "{log}"
    );
    assert!(log.contains("  loop\n  poll\n"), "{log}");
    assert!(log.contains("snapshot @0: [code="), "{log}");
    // The JIT settings are checked.
    let out = som(&[
        "--mode",
        "tracing",
        "--jit",
        "treshold=5",
        prog.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown JIT setting 'treshold'"));
}

#[test]
fn tier2_loop_exits_get_bridges_that_finish_the_activation() {
    let source = "Exits = (\n  sumTo: n = ( | s | s := 0. 1 to: n do: [ :i | s := s + i ]. ^ s )\n  run = ( | t |\n    t := 0. 1 to: 3000 do: [ :k | t := t + (self sumTo: k % 7) ]. t println )\n)\n";
    let dir = classes("tier2-exits", &[("Exits.som", source)]);
    let prog = dir.join("Exits.som");
    let log = dir.join("jit.log");
    let out = som(&[
        "--mode",
        "tracing",
        "--jit",
        "threshold=50,bridge_threshold=10",
        "--jit-stats",
        "--jit-log",
        log.to_str().unwrap(),
        prog.to_str().unwrap(),
    ]);
    assert_eq!(text(&out.stdout), "23988\n");
    let report = text(&out.stderr);
    // The loop of `sumTo:` leaves through its exit guard, whose bridge returns from
    // the activation instead of stopping the recording.
    assert!(!report.contains("left the root frame"), "{report}");
    let log = std::fs::read_to_string(&log).unwrap();
    let bridge = log
        .split("[tier2] ")
        .find(|t| {
            t.starts_with("trace") && t.contains("(bridge from") && t.contains("Exits>>#sumTo:")
        })
        .unwrap_or_else(|| panic!("no bridge of sumTo:'s loop in\n{log}"));
    assert!(bridge.contains("  finish %"), "{bridge}");
}

#[test]
fn threshold_scale_multiplies_the_tier2_thresholds() {
    // A loop of 120 back-edges: traced at threshold 50, not at 50 x 3.
    let source =
        "Scaled = (\n  run = ( | s | s := 0. 1 to: 120 do: [ :i | s := s + i ]. s println )\n)\n";
    let dir = classes("tier2-scale", &[("Scaled.som", source)]);
    let prog = dir.join("Scaled.som");
    let traces = |jit: &str| {
        let out = som(&[
            "--mode",
            "tracing",
            "--jit",
            jit,
            "--jit-stats",
            prog.to_str().unwrap(),
        ]);
        assert_eq!(text(&out.stdout), "7260\n");
        stat(&text(&out.stderr), "tier 2:")
    };
    assert_eq!(traces("threshold=50"), 1);
    assert_eq!(traces("threshold=50,threshold_scale=3"), 0);
    assert_eq!(traces("threshold_scale=3,threshold=30"), 1);
    // A scale of 0 counts as 1.
    assert_eq!(traces("threshold=50,threshold_scale=0"), 1);
}

#[test]
fn tier2_inner_and_outer_loops_link_to_each_others_traces() {
    // The sieve's shape: the inner loop runs on some iterations of the outer one.
    let source = "Sieve = (\n  run = ( | composite primes |\n    composite := Array new: 20000 withAll: false. primes := 0.\n    2 to: 20000 do: [ :c | (composite at: c) ifFalse: [ | m |\n      primes := primes + 1. m := c + c.\n      [ m <= 20000 ] whileTrue: [ composite at: m put: true. m := m + c ] ] ].\n    primes println )\n)\n";
    let dir = classes("tier2-link", &[("Sieve.som", source)]);
    let prog = dir.join("Sieve.som");
    let log = dir.join("jit.log");
    let out = som(&[
        "--mode",
        "tracing",
        "--jit",
        "threshold=50,bridge_threshold=10",
        "--jit-stats",
        "--jit-log",
        log.to_str().unwrap(),
        prog.to_str().unwrap(),
    ]);
    assert_eq!(text(&out.stdout), "2262\n");
    let report = text(&out.stderr);
    // Without links every end of the inner loop left compiled code (2262 times).
    let deopts = stat(&report, "trace entries,");
    assert!(deopts < 100, "{report}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("\n  link "), "{log}");
}

#[test]
fn tier2_bridges_leave_at_loops_without_traces_and_grow_from_there() {
    // The inner loop is hot long before the outer one: its exit bridge reaches the
    // outer loop's back-edge, which has no trace, and leaves to the interpreter
    // there (`exit`); that exit then gets a bridge of its own. Without it, every end
    // of the inner loop left compiled code through a guard.
    let source = "Grid = (\n  grid: n = ( | s | s := 0. 1 to: 3 do: [ :i | 1 to: n do: [ :j | s := s + j ] ]. ^ s )\n  run = ( | t | t := 0. 1 to: 3000 do: [ :k | t := t + (self grid: 4) ]. t println )\n)\n";
    let dir = classes("tier2-exit", &[("Grid.som", source)]);
    let prog = dir.join("Grid.som");
    let log = dir.join("jit.log");
    let out = som(&[
        "--mode",
        "tracing",
        "--jit",
        "threshold=50,bridge_threshold=10",
        "--jit-stats",
        "--jit-log",
        log.to_str().unwrap(),
        prog.to_str().unwrap(),
    ]);
    assert_eq!(text(&out.stdout), "90000\n");
    let report = text(&out.stderr);
    let deopts = stat(&report, "trace entries,");
    assert!(deopts < 200, "{report}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("\n  exit @"), "{log}");
}

#[test]
fn tier2_methods_with_loops_run_compiled_from_their_first_instruction() {
    // Storage's shape: a recursive method with a loop. Its entry trace links to the
    // loop's trace, so activations no longer interpret up to the loop's first
    // back-edge (6820 of them took one before entry traces covered such methods).
    let source = "Tree = (\n  | nodes |\n  run = ( nodes := 0. 1 to: 20 do: [ :k | self tree: 6 ]. nodes println )\n  tree: depth = (\n    nodes := nodes + 1.\n    depth = 1 ifTrue: [ ^ self ].\n    1 to: 4 do: [ :i | self tree: depth - 1 ] )\n)\n";
    let dir = classes("tier2-entry-loops", &[("Tree.som", source)]);
    let prog = dir.join("Tree.som");
    let log = dir.join("jit.log");
    let out = som(&[
        "--mode",
        "tracing",
        "--jit-stats",
        "--jit-log",
        log.to_str().unwrap(),
        prog.to_str().unwrap(),
    ]);
    assert_eq!(text(&out.stdout), "27300\n");
    let report = text(&out.stderr);
    let back_edges = stat(&report, "invocations,");
    assert!(back_edges < 2000, "{report}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("pc=0 extra=0x0") && log.contains("\n  link "),
        "{log}"
    );
}
