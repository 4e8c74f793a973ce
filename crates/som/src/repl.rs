//! The read-eval-print loop, a workspace in the manner of irb or the Pharo and Squeak
//! workspaces (rustyline for line editing).
//!
//! **Inputs.** Each input is a sequence of statements, compiled as the body of a
//! method of `Object` run with nil as self; the value of the last statement is printed
//! with `asString`, as `println` prints it (a String prints as its text, a Symbol
//! without its `#`). An input may span lines: while it leaves a parenthesis (or a
//! literal array's `#(`) or a block's bracket open, or a string, quoted symbol or
//! comment unterminated, the REPL reads more lines (prompt `...> `) and evaluates
//! once all are closed. Brackets inside strings and comments do not count (SOM has no
//! character literals, so `$(` is not one); a closing bracket that matches none ends
//! the input (the parser reports it). A line ending in an operator or keyword does
//! not continue. Empty lines between inputs are skipped; Ctrl-D (end of input) quits,
//! after evaluating (and so reporting) an input left open; Ctrl-C drops the input
//! being typed.
//!
//! **Session variables.** A name assigned in an input without being declared there
//! (`x := 5`) is a *session variable*: the compiler
//! ([`Compiler::with_session_variables`]) turns the assignment into
//! `system global: #x put: 5`, so the variable is a global of the VM and later inputs
//! (and blocks made earlier) read it as they read any global. Programs are unaffected:
//! only REPL input is compiled this way, and reads are ordinary global reads.
//! Consequences: reading a name never assigned behaves as an unknown global does
//! (`unknownGlobal:`, which tries to load a class of that name and otherwise fails
//! with "Tried loading 'x' as a class, but failed."); a session variable set to nil
//! reads as nil; classes loaded later see session variables as globals. An input may
//! not assign a global the session did not create (`Integer := 3` is an error
//! pointing at the assignment, and the input is not run), so a typo cannot replace a
//! class or `system`; `system global: #Name put: value` still can. Variables
//! declared with `| a b |` are locals of that input only. Assigning a global changes
//! the epoch that compiled traces check, so under `--mode tracing` a hot loop that
//! assigns a session variable keeps leaving its trace; a declared local avoids that.
//!
//! **Errors.** A syntax error prints `<repl>:line:column: error: message` and the
//! input line with a caret under the column (on stderr). A runtime error is reported
//! as the top level reports it ([`Vm::report`]: `ERROR: message` on stdout for
//! `error:`, the backtrace on stderr; the text of every input is kept so that
//! backtraces show its lines), and the loop goes on. `system exit: n` ends
//! the REPL with status n; end of input ends it with 0.
//!
//! **Terminal and pipes.** When standard input is a terminal, a banner is printed and
//! the history of inputs is kept across sessions in `$XDG_DATA_HOME/som/history`
//! (`~/.local/share/som/history` without it), one input a line (newlines and
//! backslashes escaped), each appended as it is entered; the file is trimmed to its
//! last 1000 entries when a session starts. Failing to read or write it is not an
//! error. When standard input is not a terminal (`som < script`), there is no banner,
//! no prompt and no history: the output is the values and errors only.

use rustyline::error::ReadlineError;
use rustyline::history::MemHistory;
use rustyline::{Config, Editor};
use som_syntax::SyntaxError;
use som_vm::classloader::ClassSource;
use som_vm::compiler::Compiler;
use som_vm::interpreter::send::{invoke_method, send_values};
use som_vm::{Unwind, Vm};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file name syntax errors and backtraces give REPL input.
const FILE: &str = "<repl>";

/// The most inputs the history keeps.
const HISTORY_SIZE: usize = 1000;

type LineEditor = Editor<(), MemHistory>;

pub fn run(vm: &mut Vm) -> i32 {
    // SAFETY: isatty has no preconditions.
    let interactive = unsafe { libc::isatty(0) } == 1;
    let config = Config::builder()
        .max_history_size(HISTORY_SIZE)
        .map_or_else(|_| Config::default(), |b| b.build());
    let history = MemHistory::with_config(config);
    let mut editor = match LineEditor::with_history(config, history) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("som: cannot start the REPL: {e}");
            return 1;
        }
    };
    let history_file = if interactive { history_file() } else { None };
    if let Some(path) = &history_file {
        load_history(&mut editor, path);
    }
    if interactive {
        println!(
            "SOM REPL. Open brackets and parentheses continue the input on the next \
             line; Ctrl-D quits."
        );
    }
    vm.set_native_stack_limit();
    let mut session = Session::default();
    let mut input = String::new();
    loop {
        let prompt = if input.is_empty() { "som> " } else { "...> " };
        let end = match editor.readline(prompt) {
            Ok(line) if input.is_empty() && line.trim().is_empty() => continue,
            Ok(line) => {
                if !input.is_empty() {
                    input.push('\n');
                }
                input.push_str(&line);
                false
            }
            Err(ReadlineError::Interrupted) => {
                input.clear();
                continue;
            }
            // End of input (or an unreadable terminal) ends the REPL, after evaluating
            // what is pending: that reports what it leaves open.
            Err(_) if input.is_empty() => break 0,
            Err(_) => true,
        };
        if !end && incomplete(&input) {
            continue;
        }
        let text = std::mem::take(&mut input);
        if let Ok(true) = editor.add_history_entry(text.as_str()) {
            if let Some(path) = &history_file {
                append_history(path, &text);
            }
        }
        if let Some(code) = session.eval(vm, &text) {
            break code;
        }
        if end {
            break 0;
        }
    }
}

/// What the REPL remembers between inputs.
#[derive(Default)]
struct Session {
    /// The session variables assigned so far (see the module documentation).
    variables: HashSet<String>,
}

impl Session {
    /// Evaluates one input; answers an exit status if the program asked to exit.
    fn eval(&mut self, vm: &mut Vm, source: &str) -> Option<i32> {
        let body = match som_syntax::parse_repl_input(source, FILE) {
            Ok(b) => b,
            Err(e) => return syntax_error(vm, &e, source),
        };
        // Kept, so that backtraces through this input (now or from a block it made)
        // show its lines.
        vm.sources.push(ClassSource {
            text: source.to_string(),
            file: FILE.to_string(),
        });
        let object = vm.classes.object;
        let mut compiler = Compiler::new(vm, object, FILE).with_session_variables();
        let compiled = compiler.compile_body("doIt", &body);
        let assigned = compiler.session_assignments().to_vec();
        let method = match compiled {
            Ok(m) => m,
            Err(e) => return syntax_error(vm, &e, source),
        };
        for (name, span) in &assigned {
            let symbol = vm.symbol(name);
            if !self.variables.contains(name) && vm.global(symbol).is_some() {
                let e = SyntaxError {
                    file: FILE.to_string(),
                    span: *span,
                    message: format!(
                        "cannot assign to the global '{name}': it is not a session variable"
                    ),
                };
                return syntax_error(vm, &e, source);
            }
        }
        self.variables
            .extend(assigned.into_iter().map(|(name, _)| name));
        let nil = vm.nil;
        let result = vm.with_bottom_frame(|vm, f| {
            f.push(nil);
            let v = invoke_method(vm, f, method, 0)?;
            let sel = vm.symbol("asString");
            send_values(vm, f, v, sel, &[])
        });
        vm.flush();
        match result {
            Ok(s) => {
                let text = vm.get_str(s).unwrap_or("?").to_string();
                let _ = writeln!(vm.out, "{text}");
                vm.flush();
                None
            }
            Err(u) => match *u {
                Unwind::Exit(code) => Some(code),
                other => {
                    vm.report(&other);
                    None
                }
            },
        }
    }
}

/// Reports a syntax error in the input `source`; the REPL goes on.
fn syntax_error(vm: &mut Vm, e: &SyntaxError, source: &str) -> Option<i32> {
    vm.flush();
    eprint!("{}", e.report(source));
    None
}

/// Whether `source` leaves a parenthesis or bracket open, or a string, quoted symbol
/// or comment unterminated. A closing bracket that matches nothing makes the input
/// complete (the parser reports it).
fn incomplete(source: &str) -> bool {
    let mut open = Vec::new();
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        match c {
            // A string or `#'quoted symbol'`; `\` escapes the next character.
            '\'' => loop {
                match chars.next() {
                    None => return true,
                    Some('\\') => {
                        if chars.next().is_none() {
                            return true;
                        }
                    }
                    Some('\'') => break,
                    Some(_) => {}
                }
            },
            // A comment (the guard consumes it).
            '"' if !chars.any(|c| c == '"') => return true,
            '(' | '[' => open.push(c),
            ')' | ']' => {
                let opener = if c == ')' { '(' } else { '[' };
                if open.pop() != Some(opener) {
                    return false;
                }
            }
            _ => {}
        }
    }
    !open.is_empty()
}

/// `$XDG_DATA_HOME/som/history`, or `$HOME/.local/share/som/history` (the XDG base
/// directory rules: a relative `XDG_DATA_HOME` is ignored).
fn history_file() -> Option<PathBuf> {
    let data = match std::env::var_os("XDG_DATA_HOME").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        _ => {
            let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
            PathBuf::from(home).join(".local").join("share")
        }
    };
    Some(data.join("som").join("history"))
}

/// One history entry as a line of the file: `\` and newlines escaped.
fn escape(entry: &str) -> String {
    entry.replace('\\', "\\\\").replace('\n', "\\n")
}

fn unescape(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Loads the history file, first trimming it to its last `HISTORY_SIZE` entries.
fn load_history(editor: &mut LineEditor, path: &Path) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let entries: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let kept = &entries[entries.len().saturating_sub(HISTORY_SIZE)..];
    if kept.len() < entries.len() {
        let mut trimmed = kept.join("\n");
        trimmed.push('\n');
        let temp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&temp, trimmed).is_err() || std::fs::rename(&temp, path).is_err() {
            let _ = std::fs::remove_file(&temp);
        }
    }
    for line in kept {
        let _ = editor.add_history_entry(unescape(line));
    }
}

/// Appends one entry as it is entered (sessions running at the same time each add
/// theirs, and a session that does not end normally keeps its history).
fn append_history(path: &Path, entry: &str) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(mut file) = file {
        let _ = writeln!(file, "{}", escape(entry));
    }
}
