//! String and Symbol primitives. Strings are immutable UTF-8; lengths and indices count
//! characters (code points), and hashes depend only on the content.

use super::{args, expect_text, expect_text_detached, PrimEntry};
use crate::interpreter::Frame;
use crate::object::Kind;
use crate::universe::Vm;
use crate::unwind::VmResult;
use crate::value::Value;

/// `=`: equal content with a String or Symbol; anything else is unequal.
fn string_eq(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let eq = match (vm.get_str(a), vm.get_str(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    };
    Ok(vm.boolean(eq))
}

fn as_symbol(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    // SAFETY: `a` is the receiver, on the caller's stack until this returns.
    let s = unsafe { expect_text_detached(vm, a)? };
    Ok(vm.symbol(s))
}

fn concatenate(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let s = format!("{}{}", expect_text(vm, a)?, expect_text(vm, b)?);
    Ok(vm.alloc_string(&s))
}

/// A content hash (FNV-1a), non-negative and small.
pub fn content_hash(s: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    (h & 0x3fff_ffff) as i64
}

fn string_hash(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    Ok(Value::int(content_hash(expect_text(vm, a)?)))
}

fn all_chars(vm: &mut Vm, f: &mut Frame, argc: usize, pred: fn(char) -> bool) -> VmResult<Value> {
    let [a] = args(f, argc);
    let s = expect_text(vm, a)?;
    Ok(vm.boolean(!s.is_empty() && s.chars().all(pred)))
}

fn is_digits(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    all_chars(vm, f, argc, |c| c.is_ascii_digit())
}
fn is_letters(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    all_chars(vm, f, argc, char::is_alphabetic)
}
fn is_white_space(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    all_chars(vm, f, argc, char::is_whitespace)
}

fn length(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    if !(vm.is_kind(a, Kind::String) || vm.is_kind(a, Kind::Symbol)) {
        return vm.err("length: expected a String");
    }
    // SAFETY: checked kind.
    let n = unsafe { crate::object::as_ref::<crate::object::Str>(a).char_len };
    Ok(Value::int(n as i64))
}

/// `primSubstringFrom:to:`: characters start..end (1-based, inclusive); an empty string
/// when the range is empty or outside the string.
fn substring(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, from, to] = args(f, argc);
    // SAFETY: `a` is the receiver, on the caller's stack until this returns: `s` (and
    // `sub` below) stay valid across the allocation, which may collect.
    let s = unsafe { expect_text_detached(vm, a)? };
    let (Some(from), Some(to)) = (from.get_int(), to.get_int()) else {
        return vm.err("primSubstringFrom:to: expects Integer bounds");
    };
    let start = from.max(1) as usize - 1;
    let end = to.max(0) as usize;
    if end <= start {
        return Ok(vm.alloc_string(""));
    }
    // SAFETY: `expect_text_detached` checked that `a` is a String or Symbol; `s` reads
    // it too, so the reference is shared.
    let char_len = unsafe { crate::object::as_shared::<crate::object::Str>(a).char_len };
    if char_len == s.len() {
        // One byte per character: index bytes directly (parsers call this once per
        // token, so walking the characters from the start made them quadratic).
        let sub = &s[start.min(s.len())..end.min(s.len())];
        // `sub` borrows the heap string, and allocation may collect; objects never
        // move, and `a` is on the frame, so it stays alive and in place (see above).
        return Ok(vm.alloc_string(sub));
    }
    let sub: String = s.chars().skip(start).take(end - start).collect();
    Ok(vm.alloc_string(&sub))
}

fn symbol_as_string(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    // SAFETY: `a` is the receiver, on the caller's stack until this returns, so the
    // text stays valid across the allocation.
    let s = unsafe { expect_text_detached(vm, a)? };
    Ok(vm.alloc_string(s))
}

pub const PRIMITIVES: &[PrimEntry] = &[
    ("String", false, "=", string_eq),
    ("String", false, "asSymbol", as_symbol),
    ("String", false, "concatenate:", concatenate),
    ("String", false, "hashcode", string_hash),
    ("String", false, "isDigits", is_digits),
    ("String", false, "isLetters", is_letters),
    ("String", false, "isWhiteSpace", is_white_space),
    ("String", false, "length", length),
    ("String", false, "primSubstringFrom:to:", substring),
    ("Symbol", false, "asString", symbol_as_string),
];
