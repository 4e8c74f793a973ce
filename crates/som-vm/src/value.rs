//! [`Value`]: every SOM value in one 64-bit word.
//!
//! Encoding (low bits):
//! * `...xx1` — a small integer: the upper 63 bits, two's complement.
//! * `...x10` — an immediate double (see below).
//! * `...000` — a pointer to a heap object (8-byte aligned; 0 is "no value", used only
//!   inside the VM for unbound globals and never visible to SOM code).
//!
//! Immediate doubles keep arithmetic on floats allocation-free (the DESIGN asks for
//! that). A double fits when it is ±0.0 or its binary exponent lies in [-255, 256]
//! (about 1e-77 to 1e77), but for ±2^-255 itself, whose code ±0.0 takes. The
//! encoding is a rotation, so packing and unpacking are a few machine operations: add
//! [`DOUBLE_BIAS`] to the IEEE bits (the exponents that fit become 1024..1536, whose
//! top two bits are `10`) and rotate left by three (sign, then those two bits, land
//! in the low three bits: the tag `10` with the sign above it). ±0.0 are the codes
//! `0b010` and `0b110`. Others (infinities, NaN, very large or tiny numbers) are boxed
//! on the heap (`object::BoxedDouble`) but still have class `Double`.
//!
//! Integers that do not fit 63 bits live on the heap as `object::BigInt`; the VM demotes
//! results that fit back to small integers, so a number has exactly one representation.

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Value(pub u64);

pub const INT_MIN: i64 = -(1 << 62);
pub const INT_MAX: i64 = (1 << 62) - 1;

/// Added to a double's IEEE bits before they are rotated into an immediate double.
pub const DOUBLE_BIAS: u64 = 256 << 52;
/// How far the biased bits are rotated left.
pub const DOUBLE_ROTATION: u32 = 3;

impl Value {
    /// "No value" (an unbound global). Not a valid SOM value.
    pub const EMPTY: Value = Value(0);

    #[inline(always)]
    pub fn from_bits(bits: u64) -> Value {
        Value(bits)
    }
    #[inline(always)]
    pub fn bits(self) -> u64 {
        self.0
    }

    // ---- small integers ------------------------------------------------------------
    #[inline(always)]
    pub fn is_int(self) -> bool {
        self.0 & 1 == 1
    }
    /// A small integer. The caller guarantees `INT_MIN <= i <= INT_MAX`.
    #[inline(always)]
    pub fn int(i: i64) -> Value {
        debug_assert!((INT_MIN..=INT_MAX).contains(&i));
        Value(((i << 1) | 1) as u64)
    }
    #[inline(always)]
    pub fn try_int(i: i64) -> Option<Value> {
        if (INT_MIN..=INT_MAX).contains(&i) {
            Some(Value::int(i))
        } else {
            None
        }
    }
    #[inline(always)]
    pub fn as_int(self) -> i64 {
        (self.0 as i64) >> 1
    }
    #[inline(always)]
    pub fn get_int(self) -> Option<i64> {
        if self.is_int() {
            Some(self.as_int())
        } else {
            None
        }
    }

    // ---- immediate doubles ------------------------------------------------------------
    #[inline(always)]
    pub fn is_imm_double(self) -> bool {
        self.0 & 3 == 2
    }
    /// Packs `d` if it has an immediate form.
    #[inline(always)]
    pub fn try_imm_double(d: f64) -> Option<Value> {
        let bits = d.to_bits();
        let v = bits.wrapping_add(DOUBLE_BIAS).rotate_left(DOUBLE_ROTATION);
        if v & 3 == 2 && v >> 3 != 0 {
            Some(Value(v))
        } else if bits << 1 == 0 {
            // ±0.0: the sign in bit 2.
            Some(Value((bits >> 61) | 2))
        } else {
            None
        }
    }
    #[inline(always)]
    pub fn as_imm_double(self) -> f64 {
        if self.0 >> 3 == 0 {
            f64::from_bits((self.0 >> 2) << 63)
        } else {
            f64::from_bits(
                self.0
                    .rotate_right(DOUBLE_ROTATION)
                    .wrapping_sub(DOUBLE_BIAS),
            )
        }
    }

    // ---- pointers -------------------------------------------------------------------
    #[inline(always)]
    pub fn is_ptr(self) -> bool {
        self.0 & 7 == 0 && self.0 != 0
    }
    #[inline(always)]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    #[inline(always)]
    pub fn from_ptr<T>(p: *const T) -> Value {
        debug_assert!(p as u64 & 7 == 0);
        Value(p as u64)
    }
    #[inline(always)]
    pub fn as_ptr<T>(self) -> *mut T {
        self.0 as *mut T
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_int() {
            write!(f, "Int({})", self.as_int())
        } else if self.is_imm_double() {
            write!(f, "Double({:?})", self.as_imm_double())
        } else if self.is_empty() {
            write!(f, "Empty")
        } else {
            write!(f, "Ptr({:#x})", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_integers_round_trip() {
        for i in [0, 1, -1, 42, INT_MAX, INT_MIN, 1 << 40, -(1 << 40)] {
            let v = Value::int(i);
            assert!(v.is_int() && !v.is_ptr() && !v.is_imm_double());
            assert_eq!(v.as_int(), i);
        }
        assert!(Value::try_int(INT_MAX + 1).is_none());
        assert!(Value::try_int(INT_MIN - 1).is_none());
    }

    #[test]
    fn immediate_doubles_round_trip_bit_exactly() {
        for d in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            3.25,
            1e-70,
            1e70,
            0.1,
            1e16,
            -123.456,
            2.0f64.powi(255),
            2.0f64.powi(256),
            -2.0f64.powi(-255) * 1.5,
            2.0f64.powi(-254),
        ] {
            let v = Value::try_imm_double(d).expect("fits");
            assert!(v.is_imm_double() && !v.is_int() && !v.is_ptr());
            assert_eq!(v.as_imm_double().to_bits(), d.to_bits(), "{d}");
        }
    }

    #[test]
    fn extreme_doubles_are_boxed() {
        for d in [
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1e300,
            1e-300,
            f64::MIN_POSITIVE,
            2.0f64.powi(257),
            -2.0f64.powi(257),
            2.0f64.powi(-256),
            // Its code is +0.0's.
            2.0f64.powi(-255),
            -2.0f64.powi(-255),
        ] {
            assert!(Value::try_imm_double(d).is_none(), "{d}");
        }
    }
}
