//! Integer and Double primitives, and the numeric tower they share: small integers,
//! big integers (`num-bigint`) and doubles, with exact promotion on overflow and
//! demotion when a result fits again (`Vm::integer`).

use super::{args, type_name, wrong_type, PrimEntry};
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
    /// The number as a Double; a big integer beyond the Double range is an error.
    fn as_double(&self, vm: &Vm) -> VmResult<f64> {
        let d = self.to_f64();
        if d.is_finite() || matches!(self, Num::Dbl(_)) {
            Ok(d)
        } else {
            vm.err("Can't represent as double.")
        }
    }
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

fn expect_num(vm: &Vm, v: Value) -> VmResult<Num> {
    match num(vm, v) {
        Some(n) => Ok(n),
        None => vm.err(format!(
            "Expected a numeric type but got type '{}'.",
            type_name(v)
        )),
    }
}

fn expect_int(vm: &Vm, v: Value) -> VmResult<BigInt> {
    match vm.get_bigint(v) {
        Some(i) => Ok(i),
        None => wrong_type(vm, "Int", v),
    }
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
    let x = expect_num(vm, a)?;
    let y = expect_num(vm, b)?;
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
            let (i, j) = (x.as_double(vm)?, y.as_double(vm)?);
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
    vm.err("Division by zero.")
}

/// Integer `/`: truncating integer division; with a Double, the truncated quotient.
fn int_div(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let x = expect_num(vm, a)?;
    match expect_num(vm, b)? {
        Num::Dbl(d) => {
            if d == 0.0 {
                return div_by_zero(vm);
            }
            let x = x.as_double(vm)?;
            Ok(double_to_integer(vm, (x / d).trunc()))
        }
        // Small integers divide in i128 (no overflow, even for the most negative).
        Num::Int(j) if j != 0 => match x {
            Num::Int(i) => Ok(int_result(vm, i as i128 / j as i128)),
            x => Ok(vm.integer(x.to_big().unwrap() / BigInt::from(j))),
        },
        y => {
            let (i, j) = (x.to_big().unwrap(), y.to_big().unwrap());
            if j.is_zero() {
                return div_by_zero(vm);
            }
            Ok(vm.integer(i / j))
        }
    }
}

/// `//`: always a Double; a zero divisor is an error.
fn float_div(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let x = expect_num(vm, a)?.as_double(vm)?;
    let y = expect_num(vm, b)?.as_double(vm)?;
    if y == 0.0 {
        return div_by_zero(vm);
    }
    Ok(vm.double(x / y))
}

/// Integer `%`: floored modulo (sign of the divisor); with a Double, fmod.
fn int_modulo(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let x = expect_num(vm, a)?;
    match expect_num(vm, b)? {
        Num::Dbl(d) => Ok(vm.double(x.as_double(vm)? % d)),
        Num::Int(j) if j != 0 => match x {
            Num::Int(i) => Ok(int_result(vm, (i as i128).mod_floor(&(j as i128)))),
            x => Ok(vm.integer(x.to_big().unwrap().mod_floor(&BigInt::from(j)))),
        },
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
    let x = expect_num(vm, a)?;
    match expect_num(vm, b)? {
        Num::Dbl(d) => Ok(vm.double(x.as_double(vm)? % d)),
        Num::Int(j) if j != 0 => match x {
            Num::Int(i) => Ok(int_result(vm, i as i128 % j as i128)),
            x => Ok(vm.integer(x.to_big().unwrap() % BigInt::from(j))),
        },
        y => {
            let (i, j) = (x.to_big().unwrap(), y.to_big().unwrap());
            if j.is_zero() {
                return vm.err("Division by zero or overflow.");
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
    let (i, j) = (expect_int(vm, a)?, expect_int(vm, b)?);
    Ok(vm.integer(i & j))
}

fn bit_xor(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    if a.is_int() && b.is_int() {
        return Ok(Value::int(a.as_int() ^ b.as_int()));
    }
    let (i, j) = (expect_int(vm, a)?, expect_int(vm, b)?);
    Ok(vm.integer(i ^ j))
}

/// The shift count of `<<` and `>>>`: a non-negative integer below 2^24 (a larger
/// left shift of anything but zero would not fit in memory).
fn shift_count(vm: &Vm, v: Value) -> VmResult<u32> {
    let n = match expect_num(vm, v)? {
        Num::Int(i) => BigInt::from(i),
        Num::Big(b) => b,
        Num::Dbl(_) => return wrong_type(vm, "Int", v),
    };
    if n.is_negative() {
        return vm.err("Negative shift.");
    }
    match n.to_u32().filter(|&n| n < 1 << 24) {
        Some(n) => Ok(n),
        None => vm.err("Shift too big."),
    }
}

/// `<<`: exact left shift.
fn shift_left(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let i = expect_int(vm, a)?;
    let n = shift_count(vm, b)?;
    Ok(vm.integer(i << n))
}

/// `>>>`: logical right shift of the 64-bit two's-complement pattern.
fn shift_right_logical(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let i = expect_int(vm, a)?;
    let n = shift_count(vm, b)?;
    if let Some(small) = i.to_i64() {
        // The shifted 64-bit pattern, read as a signed integer again.
        let r = if n >= 64 {
            0
        } else {
            ((small as u64) >> n) as i64
        };
        return Ok(vm.int_from_i64(r));
    }
    Ok(vm.integer(i >> n))
}

/// Integer `sqrt`: an Integer for a perfect square, else a Double; for a big integer
/// (beyond 62 bits) the integer square root, rounded down, since a Double would lose
/// its digits. A negative receiver is an error.
fn int_sqrt(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    let i = expect_int(vm, a)?;
    if i.is_negative() {
        return vm.err("Domain error.");
    }
    let r = i.sqrt();
    if a.is_int() && &r * &r != i {
        return Ok(vm.double((a.as_int() as f64).sqrt()));
    }
    Ok(vm.integer(r))
}

/// `atRandom`: a pseudo-random integer in [0, receiver).
fn at_random(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    let n = expect_int(vm, a)?;
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

/// `<`, `>`, `<=`, `>=`: an argument that is not a number is an error; a NaN
/// compares false.
fn num_compare(
    vm: &mut Vm,
    f: &mut Frame,
    argc: usize,
    holds: fn(Ordering) -> bool,
) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    expect_num(vm, b)?;
    let result = compare(vm, a, b).is_some_and(holds);
    Ok(vm.boolean(result))
}

fn num_lt(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    num_compare(vm, f, argc, Ordering::is_lt)
}
fn num_gt(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    num_compare(vm, f, argc, Ordering::is_gt)
}
fn num_le(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    num_compare(vm, f, argc, Ordering::is_le)
}
fn num_ge(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    num_compare(vm, f, argc, Ordering::is_ge)
}

fn int_as_string(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    let s = expect_int(vm, a)?.to_string();
    Ok(vm.alloc_string(&s))
}

fn low_32_bits(vm: &Vm, v: Value) -> VmResult<u32> {
    let i = expect_int(vm, v)?;
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
    let d = expect_num(vm, a)?.as_double(vm)?;
    Ok(vm.double(d))
}

/// `Integer class>>fromString:`: optional `-` then digits, of any size; anything
/// else is an error.
fn int_from_string(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [_, s] = args(f, argc);
    let text = super::expect_text(vm, s)?;
    let t = text.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    match t.parse::<BigInt>() {
        Ok(i) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(vm.integer(i))
        }
        _ => vm.err(format!("'{text}' cannot be converted to an Integer.")),
    }
}

// ---- Double ---------------------------------------------------------------------------

fn expect_double(vm: &Vm, v: Value) -> VmResult<f64> {
    expect_num(vm, v)?.as_double(vm)
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

/// Double `%`: fmod (the sign of the receiver).
fn double_mod(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a, b] = args(f, argc);
    let (x, y) = (expect_double(vm, a)?, expect_double(vm, b)?);
    Ok(vm.double(x % y))
}

fn double_unary(vm: &mut Vm, f: &mut Frame, argc: usize, op: fn(f64) -> f64) -> VmResult<Value> {
    let [a] = args(f, argc);
    let x = expect_double(vm, a)?;
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
    let x = expect_double(vm, a)?;
    Ok(double_to_integer(vm, x.round()))
}

/// `asInteger`: truncates.
fn double_as_integer(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    let x = expect_double(vm, a)?;
    Ok(double_to_integer(vm, x.trunc()))
}

/// Double printing: Rust's shortest round-trip form (`1.0`, `0.1`, `1e16`, `inf`, `NaN`).
pub fn format_double(d: f64) -> String {
    format!("{d:?}")
}

fn double_as_string(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [a] = args(f, argc);
    let x = expect_double(vm, a)?;
    Ok(vm.alloc_string(&format_double(x)))
}

fn positive_infinity(vm: &mut Vm, _f: &mut Frame, _argc: usize) -> VmResult<Value> {
    Ok(vm.double(f64::INFINITY))
}

fn double_from_string(vm: &mut Vm, f: &mut Frame, argc: usize) -> VmResult<Value> {
    let [_, s] = args(f, argc);
    let text = super::expect_text(vm, s)?;
    match text.trim().parse::<f64>() {
        Ok(d) => Ok(vm.double(d)),
        Err(_) => vm.err(format!("'{text}' cannot be converted to a Double.")),
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
    ("Integer", false, ">", num_gt),
    ("Integer", false, "<=", num_le),
    ("Integer", false, ">=", num_ge),
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
    ("Double", false, ">", num_gt),
    ("Double", false, "<=", num_le),
    ("Double", false, ">=", num_ge),
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
