//! Integer and Double primitives, and the numeric tower they share: small integers,
//! big integers (`num-bigint`) and doubles, with exact promotion on overflow and
//! demotion when a result fits again (`Vm::integer`).

use super::{args, class_name_of, PrimEntry};
use crate::interpreter::Frame;
use crate::universe::Vm;
use crate::unwind::VmResult;
use crate::value::Value;
use num_bigint::BigInt;
use num_integer::Integer;
use num_traits::{FromPrimitive, Signed, ToPrimitive, Zero};
use std::cmp::Ordering;

/// A number taken apart.
#[derive(Debug, Clone)]
pub enum Num {
    Int(i64),
    Big(BigInt),
    Dbl(f64),
}

impl Num {
    fn to_f64(&self) -> f64 {
        match self {
            Num::Int(i) => *i as f64,
            Num::Big(b) => b.to_f64().unwrap_or(f64::NAN),
            Num::Dbl(d) => *d,
        }
    }
    fn to_big(&self) -> Option<BigInt> {
        match self {
            Num::Int(i) => Some(BigInt::from(*i)),
            Num::Big(b) => Some(b.clone()),
            Num::Dbl(_) => None,
        }
    }
}

pub fn num(vm: &Vm, v: Value) -> Option<Num> {
    if v.is_int() {
        Some(Num::Int(v.as_int()))
    } else if let Some(d) = vm.get_double(v) {
        Some(Num::Dbl(d))
    } else {
        vm.get_bigint(v).map(Num::Big)
    }
}

fn expect_num(vm: &Vm, v: Value, op: &str) -> VmResult<Num> {
    num(vm, v).ok_or_else(|| {
        vm.error(format!(
            "{op}: expected a number as argument but got an instance of {}",
            class_name_of(vm, v)
        ))
    })
}

fn expect_int(vm: &Vm, v: Value, op: &str) -> VmResult<BigInt> {
    vm.get_bigint(v).ok_or_else(|| {
        vm.error(format!(
            "{op}: expected an Integer as argument but got an instance of {}",
            class_name_of(vm, v)
        ))
    })
}

/// Compares two numbers; `None` if either is not a number or a NaN is involved.
pub fn compare(vm: &Vm, a: Value, b: Value) -> Option<Ordering> {
    if a.is_int() && b.is_int() {
        return Some(a.as_int().cmp(&b.as_int()));
    }
    match (num(vm, a)?, num(vm, b)?) {
        (x @ Num::Dbl(_), y) | (x, y @ Num::Dbl(_)) => x.to_f64().partial_cmp(&y.to_f64()),
        (x, y) => Some(x.to_big()?.cmp(&y.to_big()?)),
    }
}

/// `v + delta` for any number (loop counters).
pub fn add_int(vm: &mut Vm, v: Value, delta: i64) -> Value {
    match num(vm, v) {
        Some(Num::Int(i)) => vm.integer(BigInt::from(i) + delta),
        Some(Num::Big(b)) => vm.integer(b + delta),
        Some(Num::Dbl(d)) => vm.double(d + delta as f64),
        None => v,
    }
}

fn int_result(vm: &mut Vm, i: i128) -> Value {
    match i64::try_from(i).ok().and_then(Value::try_int) {
        Some(v) => v,
        None => vm.integer(BigInt::from(i)),
    }
}

/// `+ - *` for Integer and Double receivers.
fn arith(vm: &mut Vm, f: &mut Frame, argc: usize, op: char) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let name = op.to_string();
    let x = expect_num(vm, a, &name)?;
    let y = expect_num(vm, b, &name)?;
    Ok(match (x, y) {
        (Num::Int(i), Num::Int(j)) => {
            let (i, j) = (i as i128, j as i128);
            int_result(
                vm,
                match op {
                    '+' => i + j,
                    '-' => i - j,
                    _ => i * j,
                },
            )
        }
        (x @ Num::Dbl(_), y) | (x, y @ Num::Dbl(_)) => {
            let (i, j) = (x.to_f64(), y.to_f64());
            vm.double(match op {
                '+' => i + j,
                '-' => i - j,
                _ => i * j,
            })
        }
        (x, y) => {
            let (i, j) = (x.to_big().unwrap(), y.to_big().unwrap());
            vm.integer(match op {
                '+' => i + j,
                '-' => i - j,
                _ => i * j,
            })
        }
    })
}

fn plus(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    arith(vm, f, argc, '+')
}
fn minus(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    arith(vm, f, argc, '-')
}
fn times(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    arith(vm, f, argc, '*')
}

fn div_by_zero<T>(vm: &Vm) -> VmResult<T> {
    vm.err("Division by zero")
}

/// Integer `/`: truncating integer division; with a Double, the truncated quotient.
fn int_div(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let x = expect_num(vm, a, "/")?;
    match expect_num(vm, b, "/")? {
        Num::Dbl(d) => {
            let q = (x.to_f64() / d).trunc();
            if !q.is_finite() {
                return div_by_zero(vm);
            }
            Ok(double_to_integer(vm, q))
        }
        y => {
            let (i, j) = (x.to_big().unwrap(), y.to_big().unwrap());
            if j.is_zero() {
                return div_by_zero(vm);
            }
            Ok(vm.integer(i / j))
        }
    }
}

/// `//`: always a Double.
fn float_div(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let x = expect_num(vm, a, "//")?.to_f64();
    let y = expect_num(vm, b, "//")?.to_f64();
    Ok(vm.double(x / y))
}

/// Integer `%`: floored modulo (sign of the divisor); with a Double, fmod.
fn int_modulo(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let x = expect_num(vm, a, "%")?;
    match expect_num(vm, b, "%")? {
        Num::Dbl(d) => Ok(vm.double(x.to_f64() % d)),
        y => {
            let (i, j) = (x.to_big().unwrap(), y.to_big().unwrap());
            if j.is_zero() {
                return div_by_zero(vm);
            }
            Ok(vm.integer(i.mod_floor(&j)))
        }
    }
}

/// `rem:`: truncated remainder (sign of the dividend).
fn int_rem(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let x = expect_num(vm, a, "rem:")?;
    match expect_num(vm, b, "rem:")? {
        Num::Dbl(d) => Ok(vm.double(x.to_f64() % d)),
        y => {
            let (i, j) = (x.to_big().unwrap(), y.to_big().unwrap());
            if j.is_zero() {
                return div_by_zero(vm);
            }
            Ok(vm.integer(i % j))
        }
    }
}

fn bit_and(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    if a.is_int() && b.is_int() {
        return Ok(Value::int(a.as_int() & b.as_int()));
    }
    let (i, j) = (expect_int(vm, a, "&")?, expect_int(vm, b, "&")?);
    Ok(vm.integer(i & j))
}

fn bit_xor(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    if a.is_int() && b.is_int() {
        return Ok(Value::int(a.as_int() ^ b.as_int()));
    }
    let (i, j) = (expect_int(vm, a, "bitXor:")?, expect_int(vm, b, "bitXor:")?);
    Ok(vm.integer(i ^ j))
}

/// `<<`: exact left shift (a negative count shifts right).
fn shift_left(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let i = expect_int(vm, a, "<<")?;
    let n = expect_int(vm, b, "<<")?
        .to_i64()
        .filter(|n| n.abs() < 1 << 24)
        .ok_or_else(|| vm.error("<<: shift count out of range"))?;
    Ok(vm.integer(if n >= 0 { i << n } else { i >> (-n) }))
}

/// `>>>`: logical right shift of the 64-bit two's-complement pattern.
fn shift_right_logical(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let i = expect_int(vm, a, ">>>")?;
    let n = expect_int(vm, b, ">>>")?
        .to_i64()
        .ok_or_else(|| vm.error(">>>: shift count out of range"))?;
    if let Some(small) = i.to_i64() {
        // The shifted 64-bit pattern, read as a signed integer again.
        let r = if !(0..64).contains(&n) {
            0
        } else {
            ((small as u64) >> n) as i64
        };
        return Ok(vm.int_from_i64(r));
    }
    if n < 0 {
        return vm.err(">>>: negative shift count");
    }
    Ok(vm.integer(i >> n))
}

fn int_sqrt(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    let i = expect_int(vm, a, "sqrt")?;
    if i.is_negative() {
        return Ok(vm.double(f64::NAN));
    }
    let r = i.sqrt();
    if &r * &r == i {
        return Ok(vm.integer(r));
    }
    Ok(vm.double(i.to_f64().unwrap_or(f64::INFINITY).sqrt()))
}

/// `atRandom`: a pseudo-random integer in [0, receiver).
fn at_random(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    let n = expect_int(vm, a, "atRandom")?;
    if !n.is_positive() {
        return Ok(Value::int(0));
    }
    let r = BigInt::from(vm.next_random()) % n;
    Ok(vm.integer(r))
}

/// `=` for numbers: numeric equality across the tower; any non-number is unequal.
fn num_eq(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let eq = compare(vm, a, b) == Some(Ordering::Equal);
    Ok(vm.boolean(eq))
}

fn num_lt(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    expect_num(vm, b, "<")?;
    let lt = compare(vm, a, b) == Some(Ordering::Less);
    Ok(vm.boolean(lt))
}

fn int_as_string(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    let s = expect_int(vm, a, "asString")?.to_string();
    Ok(vm.alloc_string(&s))
}

fn low_32_bits(vm: &Vm, v: Value) -> VmResult<u32> {
    let i = expect_int(vm, v, "as32BitValue")?;
    let mask = BigInt::from(u32::MAX);
    Ok((i & mask).to_u32().unwrap_or(0))
}

fn as_32_signed(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    Ok(Value::int(low_32_bits(vm, a)? as i32 as i64))
}

fn as_32_unsigned(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    Ok(Value::int(low_32_bits(vm, a)? as i64))
}

fn as_double(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    let d = expect_num(vm, a, "asDouble")?.to_f64();
    Ok(vm.double(d))
}

/// `Integer class>>fromString:`: optional `-` then digits, of any size; else nil.
fn int_from_string(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [_, s] = args(f, argc);
    let Some(text) = vm.get_str(s) else {
        return vm.err("fromString: expects a String");
    };
    let t = text.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(vm.nil);
    }
    match t.parse::<BigInt>() {
        Ok(i) => Ok(vm.integer(i)),
        Err(_) => Ok(vm.nil),
    }
}

// ---- Double ---------------------------------------------------------------------------

fn expect_double(vm: &Vm, v: Value, op: &str) -> VmResult<f64> {
    Ok(expect_num(vm, v, op)?.to_f64())
}

/// An Integer for an integral double (big if needed).
fn double_to_integer(vm: &mut Vm, d: f64) -> Value {
    if d.is_finite() && d.abs() < 4e18 {
        return vm.int_from_i64(d as i64);
    }
    match BigInt::from_f64(d) {
        Some(b) => vm.integer(b),
        None => Value::int(0),
    }
}

fn double_div(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    float_div(vm, f, argc)
}

fn double_mod(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let (x, y) = (expect_double(vm, a, "%")?, expect_double(vm, b, "%")?);
    Ok(vm.double(x % y))
}

fn double_unary(vm: &mut Vm, f: &mut Frame, argc: usize, op: fn(f64) -> f64) -> VmResult<Value> {
    let [a] = args(f, argc);
    let x = expect_double(vm, a, "Double")?;
    Ok(vm.double(op(x)))
}

fn double_sqrt(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    double_unary(vm, f, argc, f64::sqrt)
}
fn double_sin(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    double_unary(vm, f, argc, f64::sin)
}
fn double_cos(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    double_unary(vm, f, argc, f64::cos)
}

/// `round`: half away from zero, as an Integer.
fn double_round(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    let x = expect_double(vm, a, "round")?;
    Ok(double_to_integer(vm, x.round()))
}

/// `asInteger`: truncates.
fn double_as_integer(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    let x = expect_double(vm, a, "asInteger")?;
    Ok(double_to_integer(vm, x.trunc()))
}

/// Double printing: Rust's shortest round-trip form (`1.0`, `0.1`, `1e16`, `inf`, `NaN`).
pub fn format_double(d: f64) -> String {
    format!("{d:?}")
}

fn double_as_string(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    let x = expect_double(vm, a, "asString")?;
    Ok(vm.alloc_string(&format_double(x)))
}

fn positive_infinity(vm: &mut Vm, _f: &mut Frame, _argc: usize) -> VmResult<Value> {
    Ok(vm.double(f64::INFINITY))
}

fn double_from_string(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [_, s] = args(f, argc);
    let Some(text) = vm.get_str(s) else {
        return vm.err("fromString: expects a String");
    };
    match text.trim().parse::<f64>() {
        Ok(d) => Ok(vm.double(d)),
        Err(_) => Ok(vm.nil),
    }
}

pub const PRIMITIVES: &[PrimEntry] = &[
    ("Integer", false, "+", plus),
    ("Integer", false, "-", minus),
    ("Integer", false, "*", times),
    ("Integer", false, "/", int_div),
    ("Integer", false, "//", float_div),
    ("Integer", false, "%", int_modulo),
    ("Integer", false, "rem:", int_rem),
    ("Integer", false, "&", bit_and),
    ("Integer", false, "bitXor:", bit_xor),
    ("Integer", false, "<<", shift_left),
    ("Integer", false, ">>>", shift_right_logical),
    ("Integer", false, "sqrt", int_sqrt),
    ("Integer", false, "atRandom", at_random),
    ("Integer", false, "=", num_eq),
    ("Integer", false, "<", num_lt),
    ("Integer", false, "asString", int_as_string),
    ("Integer", false, "as32BitSignedValue", as_32_signed),
    ("Integer", false, "as32BitUnsignedValue", as_32_unsigned),
    ("Integer", false, "asDouble", as_double),
    ("Integer", true, "fromString:", int_from_string),
    ("Double", false, "+", plus),
    ("Double", false, "-", minus),
    ("Double", false, "*", times),
    ("Double", false, "//", double_div),
    ("Double", false, "%", double_mod),
    ("Double", false, "sqrt", double_sqrt),
    ("Double", false, "round", double_round),
    ("Double", false, "asInteger", double_as_integer),
    ("Double", false, "cos", double_cos),
    ("Double", false, "sin", double_sin),
    ("Double", false, "=", num_eq),
    ("Double", false, "<", num_lt),
    ("Double", false, "asString", double_as_string),
    ("Double", true, "PositiveInfinity", positive_infinity),
    ("Double", true, "fromString:", double_from_string),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_formatting_matches_the_chosen_style() {
        assert_eq!(format_double(1.0), "1.0");
        assert_eq!(format_double(0.5), "0.5");
        assert_eq!(format_double(1e16), "1e16");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NAN), "NaN");
    }
}
