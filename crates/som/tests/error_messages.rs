//! The wording and placement of errors, in every tier: each case is a one-line
//! program that must fail with exit status 1 and end its stderr with the message the
//! public SOM IntegrationTests expect (yksom's words), after a backtrace. Syntax
//! errors show the file, line and column, the source line, and the message.

use std::path::PathBuf;
use std::process::Command;

/// Execution modes each case runs in.
const MODES: &[&[&str]] = &[
    &["--mode", "interp"],
    &["--mode", "threaded", "--jit", "tier1_threshold=1"],
    &[
        "--mode",
        "tracing",
        "--jit",
        "threshold=1,function_threshold=1",
    ],
];

/// (the body of `run`, the last line of stderr).
const RUNTIME_ERRORS: &[(&str, &str)] = &[
    ("1 + 'a'", "Expected a numeric type but got type 'String_'."),
    (
        "1.5 * 'a'",
        "Expected a numeric type but got type 'String_'.",
    ),
    (
        "(1 << 200) % 'a'",
        "Expected a numeric type but got type 'String_'.",
    ),
    ("1 > 'a'", "Expected a numeric type but got type 'String_'."),
    (
        "1 <= 'a'",
        "Expected a numeric type but got type 'String_'.",
    ),
    ("1.0 >= nil", "Expected a numeric type but got type 'Inst'."),
    (
        "1 >>> 'a'",
        "Expected a numeric type but got type 'String_'.",
    ),
    (
        "1 bitXor: 1.5",
        "Expected object of type 'Int' but got type 'Double'.",
    ),
    (
        "1 & 'a'",
        "Expected object of type 'Int' but got type 'String_'.",
    ),
    (
        "system printString: system",
        "Expected object of type 'String_' but got type 'Inst'.",
    ),
    (
        "system exit: 1.5",
        "Expected object of type 'Int' but got type 'Double'.",
    ),
    ("system exit: 1 << 63", "Domain error."),
    ("1 / 0", "Division by zero."),
    ("1 // 0", "Division by zero."),
    ("1.5 // 0.0", "Division by zero."),
    ("(1 << 200) // 0", "Division by zero."),
    ("(1 << 2000) / 0.0", "Division by zero."),
    ("1 % 0", "Division by zero."),
    ("10 rem: 0", "Division by zero or overflow."),
    ("0.1 + (1 << 1024)", "Can't represent as double."),
    ("(1 << 2000) / 1.1", "Can't represent as double."),
    ("1 << -1", "Negative shift."),
    ("1 << (1 << 200)", "Shift too big."),
    ("1 >>> (1 << 100)", "Shift too big."),
    ("-1 sqrt", "Domain error."),
    ("(-1 << 200) sqrt", "Domain error."),
    (
        "Integer fromString: '123b'",
        "'123b' cannot be converted to an Integer.",
    ),
    (
        "Double fromString: '123.b'",
        "'123.b' cannot be converted to a Double.",
    ),
    (
        "Array new at: 0",
        "Index 0 not valid for array of length 0.",
    ),
    (
        "(Array new: 1) at: 2 put: 3",
        "Index 2 not valid for array of length 1.",
    ),
    (
        "Array new at: -1",
        "Can't represent as unsigned machine integer.",
    ),
    (
        "Object new instVarAt: 1",
        "Index 1 not valid for array of length 0.",
    ),
    (
        "self perform: 'run'",
        "Expected instance of 'Symbol' but got instance of 'String'.",
    ),
    (
        "system global: 'T'",
        "Expected instance of 'Symbol' but got instance of 'String'.",
    ),
    (
        "system global: 'T' put: 1",
        "Expected instance of 'Symbol' but got instance of 'String'.",
    ),
    (
        "system load: 'T'",
        "Expected instance of 'Symbol' but got instance of 'String'.",
    ),
    (
        "Array new perform: #at:put: withArguments: (Array with: 1)",
        "Tried passing 1 arguments to a function that requires 2.",
    ),
];

/// (the class's source, the last line of stderr).
const SYNTAX_ERRORS: &[(&str, &str)] = &[
    (
        "T = ( m: a m: a = ( ) )",
        "Variable 'a' shadows another of the same name",
    ),
    (
        "T = ( | a a | )",
        "Field 'a' has already been defined in this class.",
    ),
    (
        "T = S ( | b a | )",
        "Field 'a' is already defined in a superclass.",
    ),
    ("T = ( run = ( x := 1 ) )", "No such field 'x' in class"),
    ("T = ( run = ( '\\a' ) )", "Unknown escape sequence '\\a'"),
];

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("som-errors-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `T.som` holding `source` in every mode, beside `S.som` (a class with a field
/// `a`); answers the mode, exit status and stderr of each run.
fn run(source: &str, name: &str) -> Vec<(String, Option<i32>, String)> {
    let dir = scratch(name);
    let file = dir.join("T.som");
    std::fs::write(&file, source).unwrap();
    std::fs::write(dir.join("S.som"), "S = ( | a | )").unwrap();
    let results = MODES
        .iter()
        .map(|mode| {
            let out = Command::new(env!("CARGO_BIN_EXE_som"))
                .args(*mode)
                .arg(&file)
                .output()
                .unwrap();
            (
                mode.join(" "),
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    results
}

#[test]
fn runtime_errors_end_stderr_with_the_message_after_a_backtrace() {
    let mut wrong = Vec::new();
    for (i, (body, message)) in RUNTIME_ERRORS.iter().enumerate() {
        // Twice in a loop, so that tier 1 and tier 2 compile the failing code first.
        let source = format!("T = ( run = ( 1 to: 2 do: [:i | i = 2 ifTrue: [ {body} ] ] ) )");
        for (mode, status, stderr) in run(&source, &format!("rt{i}")) {
            let ok = status == Some(1)
                && stderr.starts_with("Traceback (most recent call at bottom):\n")
                && stderr.contains("T>>#run at ")
                && stderr.lines().last() == Some(message);
            if !ok {
                wrong.push(format!("{body} ({mode}): exit {status:?}\n{stderr}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn syntax_errors_show_the_position_the_line_and_the_message() {
    let mut wrong = Vec::new();
    for (i, (source, message)) in SYNTAX_ERRORS.iter().enumerate() {
        for (mode, status, stderr) in run(source, &format!("syn{i}")) {
            let lines: Vec<&str> = stderr.lines().collect();
            let ok = status == Some(1)
                && lines
                    .first()
                    .is_some_and(|l| l.contains("T.som:1:") && l.ends_with(message))
                && lines.iter().any(|l| l.contains("T.som', line 1, column "))
                && lines.iter().any(|l| l.trim() == source.trim())
                && lines.last().map(|l| l.trim()) == Some(message);
            if !ok {
                wrong.push(format!("{source} ({mode}): exit {status:?}\n{stderr}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_program_file_may_define_a_class_of_another_name() {
    let dir = scratch("name");
    let file = dir.join("program_file.som");
    std::fs::write(&file, "Other = ( run = ( 'ran' println ) )").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_som"))
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    assert_eq!(out.status.code(), Some(0));
}
