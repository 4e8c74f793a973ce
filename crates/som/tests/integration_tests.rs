//! Runs the public SOM repository's `IntegrationTests` (yksom's `lang_tests`, 200
//! programs) through the `som` binary, as a user of a SOM VM would: from a folder
//! holding the repository as `core-lib/`, `som -cp CLASSPATH core-lib/IntegrationTests/Tests/x.som`.
//!
//! Each test file opens with a `VM:` comment giving the expected exit status
//! (`success`, `error` or a number), expected stdout and stderr lines, maybe a custom
//! classpath and case sensitivity. The matching follows the public runner: expected
//! lines must appear in order as a subsequence of the actual lines (case-folded unless
//! `case_sensitive: true`), a line `...` is skipped, a line containing `...` matches
//! an actual line containing all its pieces, and `a***b` matches `a` followed by any
//! prefix of `b`. The exit status is checked too.
//!
//! The tests we fail on purpose are listed, with their reasons, in
//! `integration_expectations.txt` beside this file (and `docs/INTEGRATION-TESTS.md`);
//! a listed test that passes fails the run, so the list stays true.
//!
//! The repository is not part of ours, so these tests are ignored unless asked for:
//! `SOM_REFERENCE=/path/to/SOM cargo test -p som --test integration_tests -- --ignored`.
//! `SOM_INTEGRATION_MODES` (a `;`-separated list of argument strings, default
//! `--mode interp;--mode threaded --jit tier1_threshold=1;--mode tracing --jit threshold=1`)
//! chooses the execution modes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A test's expectation, from its `VM:` header.
#[derive(Debug, Default)]
struct Expectation {
    status: ExpectedStatus,
    stdout: Vec<String>,
    stderr: Vec<String>,
    custom_classpath: Option<String>,
    case_sensitive: bool,
}

#[derive(Debug, Default, PartialEq)]
enum ExpectedStatus {
    #[default]
    Success,
    Error,
    Code(i32),
}

/// Parses the `VM:` header: the text of the file's first comment, a line `VM:`, then
/// properties at one indentation, multi-line values at twice that indentation.
fn parse_header(source: &str) -> Result<Expectation, String> {
    let comment = source
        .split('"')
        .nth(1)
        .ok_or("no header comment".to_string())?;
    let mut lines: Vec<&str> = comment.lines().collect();
    while lines.first().is_some_and(|l| l.trim().is_empty()) {
        lines.remove(0);
    }
    if lines.first().map(|l| l.trim()) != Some("VM:") {
        return Err("the header does not start with `VM:`".into());
    }
    lines.remove(0);
    let indent = lines
        .iter()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .unwrap_or(0);
    let mut expectation = Expectation::default();
    let mut current: Option<String> = None;
    for line in lines {
        let this_indent = line.len() - line.trim_start().len();
        let is_property = !line.trim().is_empty() && this_indent == indent && line.contains(':');
        if is_property {
            let (name, value) = line.trim().split_once(':').unwrap();
            let value = value.trim();
            if value.is_empty() {
                current = Some(name.to_string());
            } else {
                current = None;
                record(&mut expectation, name, value)?;
            }
        } else if let Some(name) = &current {
            let value = line.get(indent * 2..).unwrap_or("").trim_end();
            record(&mut expectation, name, value)?;
        } else if !line.trim().is_empty() {
            return Err(format!("a line outside any property: {line:?}"));
        }
    }
    for lines in [&mut expectation.stdout, &mut expectation.stderr] {
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
    }
    Ok(expectation)
}

fn record(expectation: &mut Expectation, name: &str, value: &str) -> Result<(), String> {
    match name {
        "status" => {
            expectation.status = match value {
                "success" => ExpectedStatus::Success,
                "error" => ExpectedStatus::Error,
                n => ExpectedStatus::Code(n.parse().map_err(|_| format!("status {n:?}"))?),
            }
        }
        "stdout" => expectation.stdout.push(value.to_string()),
        "stderr" => expectation.stderr.push(value.to_string()),
        "custom_classpath" => expectation.custom_classpath = Some(value.to_string()),
        "case_sensitive" => expectation.case_sensitive = value.eq_ignore_ascii_case("true"),
        other => return Err(format!("unknown property {other:?}")),
    }
    Ok(())
}

/// Does `actual` match the expected line `pattern` of the form `needed***optional`:
/// `needed` somewhere, followed by a prefix of `optional` up to the line's end?
fn matches_partial(actual: &str, pattern: &str) -> bool {
    let (needed, optional) = pattern.split_once("***").unwrap();
    let Some(at) = actual.find(needed) else {
        return false;
    };
    let rest = &actual[at + needed.len()..];
    optional.starts_with(rest)
}

/// Do the expected lines appear, in order, as a subsequence of the actual lines?
fn output_matches(actual: &[String], expected: &[String]) -> bool {
    let mut next = 0;
    for line in actual {
        let Some(want) = expected.get(next) else {
            return true;
        };
        if want == "..." {
            next += 1;
            continue;
        }
        let matched = if want.contains("***") {
            matches_partial(line, want)
        } else if line.trim() == want.trim() {
            true
        } else {
            want.contains("...") && want.split("...").all(|piece| line.contains(piece))
        };
        if matched {
            next += 1;
        }
    }
    // Trailing `...` lines need no actual line.
    expected[next.min(expected.len())..]
        .iter()
        .all(|l| l == "...")
}

/// Every test, sorted: the `.som` files under `Tests/` whose first comment starts with
/// `VM:` (the others are the helper classes of tests in subfolders).
fn test_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            test_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "som") {
            let source = std::fs::read_to_string(&path).unwrap();
            if source
                .split('"')
                .nth(1)
                .is_some_and(|c| c.trim_start().starts_with("VM:"))
            {
                out.push(path);
            }
        }
    }
}

/// The tests we fail on purpose: `Tests/name.som` followed by the reason.
fn expected_failures() -> BTreeMap<String, String> {
    let text = include_str!("integration_expectations.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (name.to_string(), reason.trim().to_string())
        })
        .collect()
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `som` with `args` in `cwd`, killing it after `limit`.
fn run_som(cwd: &Path, args: &[String], limit: Duration) -> Outcome {
    let out_dir = cwd.join(".out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let stdout_path = out_dir.join("stdout");
    let stderr_path = out_dir.join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_som"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("cannot run som");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    Outcome {
        code: status.and_then(|s| s.code()),
        stdout: read(&stdout_path),
        stderr: read(&stderr_path),
    }
}

/// Checks one test in one mode; `Err` says what differs.
fn check(root: &Path, test: &Path, classpath: &str, mode: &[String]) -> Result<(), String> {
    let source = std::fs::read_to_string(root.join(test)).unwrap();
    let expectation = parse_header(&source)?;
    let classpath = expectation
        .custom_classpath
        .clone()
        .unwrap_or_else(|| classpath.to_string());
    let mut args: Vec<String> = mode.to_vec();
    args.extend(["-cp".to_string(), classpath, test.display().to_string()]);
    let outcome = run_som(root, &args, Duration::from_secs(60));
    let status_ok = match (&expectation.status, outcome.code) {
        (_, None) => false,
        (ExpectedStatus::Success, Some(c)) => c == 0,
        (ExpectedStatus::Error, Some(c)) => c != 0,
        (ExpectedStatus::Code(n), Some(c)) => c == *n,
    };
    let fold = |s: &str| {
        if expectation.case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    };
    let lines = |s: &str| s.split('\n').map(fold).collect::<Vec<_>>();
    let expected = |l: &[String]| l.iter().map(|s| fold(s)).collect::<Vec<_>>();
    let stdout_ok = output_matches(&lines(&outcome.stdout), &expected(&expectation.stdout));
    let stderr_ok = output_matches(&lines(&outcome.stderr), &expected(&expectation.stderr));
    if status_ok && stdout_ok && stderr_ok {
        return Ok(());
    }
    Err(format!(
        "som {}\n  exit {:?}, expected {:?}{}{}\n  --- stdout\n{}  --- stderr\n{}",
        args.join(" "),
        outcome.code,
        expectation.status,
        if stdout_ok {
            ""
        } else {
            "\n  stdout does not match"
        },
        if stderr_ok {
            ""
        } else {
            "\n  stderr does not match"
        },
        indent(&outcome.stdout),
        indent(&outcome.stderr),
    ))
}

fn indent(text: &str) -> String {
    text.lines()
        .take(20)
        .map(|l| format!("    {l}\n"))
        .collect()
}

/// Runs every test in every mode with `classpath` and compares with the list of
/// expected failures; `tag` names this run's scratch folder (the tests run in
/// parallel).
fn run_all(classpath: &str, tag: &str) {
    let reference = std::env::var("SOM_REFERENCE").expect(
        "SOM_REFERENCE must name a checkout of https://github.com/SOM-st/SOM for this test",
    );
    let reference = std::fs::canonicalize(&reference)
        .unwrap_or_else(|e| panic!("SOM_REFERENCE={reference}: {e}"));
    // A folder where the repository is `core-lib/`, as in a VM's checkout.
    let root = std::env::temp_dir().join(format!("som-integration-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let link = root.join("core-lib");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&reference, &link).unwrap();

    let tests_dir = Path::new("core-lib/IntegrationTests/Tests");
    let mut tests = Vec::new();
    test_files(&root.join(tests_dir), &mut tests);
    let tests: Vec<PathBuf> = tests
        .iter()
        .map(|t| t.strip_prefix(&root).unwrap().to_path_buf())
        .collect();
    assert!(tests.len() >= 200, "found only {} tests", tests.len());

    let modes: Vec<Vec<String>> = std::env::var("SOM_INTEGRATION_MODES")
        .unwrap_or_else(|_| {
            "--mode interp;--mode threaded --jit tier1_threshold=1;--mode tracing --jit threshold=1"
                .to_string()
        })
        .split(';')
        .map(|m| m.split_whitespace().map(String::from).collect())
        .collect();
    let known = expected_failures();
    let mut unexpected = Vec::new();
    let mut passed = 0;
    for test in &tests {
        let name = test.strip_prefix("core-lib/IntegrationTests/").unwrap();
        let name = name.display().to_string();
        let mut failures = Vec::new();
        for mode in &modes {
            if let Err(e) = check(&root, test, classpath, mode) {
                failures.push(e);
            }
        }
        match (known.get(&name), failures.is_empty()) {
            (None, true) => passed += 1,
            (None, false) => unexpected.push(format!("FAIL {name}\n{}", failures.join("\n"))),
            (Some(_), true) => unexpected.push(format!(
                "PASS {name}, listed as an expected failure: take it off the list"
            )),
            (Some(_), false) if failures.len() < modes.len() => unexpected.push(format!(
                "{name} fails in some modes only (the tiers disagree)\n{}",
                failures.join("\n")
            )),
            (Some(_), false) => {}
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    eprintln!(
        "IntegrationTests with -cp {classpath}: {passed} of {} pass, {} expected failures",
        tests.len(),
        known.len()
    );
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n\n"));
}

#[test]
#[ignore = "needs the public SOM repository: SOM_REFERENCE=/path/to/SOM cargo test -p som --test integration_tests -- --ignored"]
fn integration_tests_with_our_core_library() {
    run_all(".", "ours");
}

#[test]
#[ignore = "needs the public SOM repository: SOM_REFERENCE=/path/to/SOM cargo test -p som --test integration_tests -- --ignored"]
fn integration_tests_with_the_public_core_library() {
    run_all("core-lib/Smalltalk", "public");
}

#[test]
fn header_parsing_and_matching_follow_the_public_runner() {
    let source = "\"\nVM:\n  status: error\n  stdout:\n    a\n    ...\n    b...c\n  stderr: x***yz\n\"\nfoo = ()";
    let e = parse_header(source).unwrap();
    assert_eq!(e.status, ExpectedStatus::Error);
    assert_eq!(e.stdout, ["a", "...", "b...c"]);
    assert_eq!(e.stderr, ["x***yz"]);
    let lines = |s: &[&str]| s.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    assert!(output_matches(&lines(&["q", "a", "r", "b1c"]), &e.stdout));
    assert!(!output_matches(&lines(&["b1c", "a"]), &e.stdout));
    assert!(output_matches(&lines(&["x"]), &e.stderr));
    assert!(output_matches(&lines(&["..xy"]), &e.stderr));
    assert!(!output_matches(&lines(&["xyq"]), &e.stderr));
    assert!(parse_header("\"\nfoo:\n\"").is_err());
}
