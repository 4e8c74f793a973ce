//! Layouts of heap objects. Every object starts with a [`Header`] (its class, its kind,
//! its identity hash); the kind tells the collector and the primitives what follows.
//!
//! Objects that hold Rust data structures (classes with their method dictionaries,
//! methods with their bytecode) are *immortal*: allocated once with `Box::leak` and kept
//! in the universe's registries, which the collector scans as roots. Everything else
//! (instances, arrays, strings, big integers, boxed doubles, blocks, contexts) lives in
//! the collected heap (`heap`) and contains only words and bytes.
//!
//! # Safety invariant
//! The VM runs on one thread. Every pointer [`Value`] the VM holds points to a live
//! object. Heap objects never move and are never freed while reachable; collections
//! happen only at allocations and safepoints, which take the `Vm` (or its heap) by
//! `&mut`, so a reference tied to a shared borrow of the `Vm` (`Vm::str_of`) cannot
//! see one. Strings and symbols never change after allocation. The accessors that
//! turn a [`Value`] into a reference with a lifetime the caller chooses (`unsafe fn`
//! [`as_ref`], [`as_shared`], [`header`]) require that the value really points to an
//! object of that layout (checked through the header kind by the callers), that the
//! reference does not outlive the object, and that a mutable one is not used while
//! another reference to the same object is.

use crate::bytecode::Code;
use crate::primitives::PrimFn;
use crate::value::Value;
use std::cell::Cell;
use std::collections::HashMap;

/// What kind of object follows a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// An instance of a user class: `Slots` with its fields.
    Instance,
    /// An `Array`: `Slots` with its elements.
    Array,
    String,
    Symbol,
    BigInt,
    Double,
    Block,
    Context,
    /// Immortal: a `Method` (class `Method` or `Primitive`).
    Method,
    /// Immortal: a `Class` (class or metaclass).
    Class,
}

#[repr(C)]
pub struct Header {
    pub class: Cell<*mut Class>,
    pub kind: Kind,
    pub flags: u8,
    pub hash: u32,
}

/// Returns a mutable reference to the object `v` points to, for a lifetime the caller
/// chooses.
///
/// # Safety
/// * `v` must point to a live object whose layout is `T` (callers check the header's
///   kind, or know it: a fresh allocation, an immortal class or method).
/// * The reference must be unique while it is used: no other reference to the object
///   (from `as_ref`, [`as_shared`], [`header`], or accessors such as `Vm::str_of`)
///   may be used, or be live and used later, meanwhile.
/// * It must not be used after the object may have been freed, nor while the
///   collector reads the object: in practice, not across an allocation (any allocation
///   may collect) or a safepoint. Immortal objects (classes, methods, symbols) are
///   never freed, but the collector still reads their fields.
#[inline(always)]
pub unsafe fn as_ref<'a, T>(v: Value) -> &'a mut T {
    &mut *v.as_ptr::<T>()
}

/// Returns a shared reference to the object `v` points to, for a lifetime the caller
/// chooses: [`as_ref`] for code that only reads.
///
/// # Safety
/// As for [`as_ref`], except that other shared references to the object may be used
/// meanwhile (but no mutable one, and nothing may write the object's non-`Cell`
/// fields); the collector only reads, so the reference may be used across an
/// allocation if the object stays reachable (objects never move).
#[inline(always)]
pub unsafe fn as_shared<'a, T>(v: Value) -> &'a T {
    &*v.as_ptr::<T>()
}

/// The header of the object `v` points to, for a lifetime the caller chooses.
///
/// # Safety
/// `v` must point to a live object (`v.is_ptr()`, and the module invariant), and the
/// reference must not be used after the object may have been freed (across an
/// allocation, unless the object stays reachable) nor while a mutable reference to the
/// object from [`as_ref`] is used. Headers change only through their `Cell`.
#[inline(always)]
pub unsafe fn header<'a>(v: Value) -> &'a Header {
    &*v.as_ptr::<Header>()
}

/// Bytes the heap object at `obj` occupies (header included, rounded up to words).
///
/// # Safety
/// `obj` points to a live, initialised object (its kind and length fields are read),
/// and no mutable reference to it is in use.
pub unsafe fn heap_size(obj: *const Header) -> usize {
    use std::mem::size_of;
    let bytes = match (*obj).kind {
        Kind::Instance | Kind::Array => size_of::<Slots>() + 8 * (*(obj as *const Slots)).len,
        Kind::String | Kind::Symbol => size_of::<Str>() + (*(obj as *const Str)).byte_len,
        Kind::BigInt => size_of::<BigIntObj>() + 8 * (*(obj as *const BigIntObj)).ndigits,
        Kind::Double => size_of::<BoxedDouble>(),
        Kind::Block => size_of::<Block>(),
        Kind::Context => size_of::<Context>() + 8 * (*(obj as *const Context)).len,
        Kind::Method => size_of::<Method>(),
        Kind::Class => size_of::<Class>(),
    };
    (bytes + 7) & !7
}

/// Instances and arrays: a length and that many values.
#[repr(C)]
pub struct Slots {
    pub header: Header,
    pub len: usize,
}

impl Slots {
    #[inline(always)]
    pub fn items(&mut self) -> &mut [Value] {
        // SAFETY: the allocator reserved `len` words right after this struct.
        unsafe {
            let p = (self as *mut Slots).add(1) as *mut Value;
            std::slice::from_raw_parts_mut(p, self.len)
        }
    }
}

/// Strings and symbols: immutable UTF-8 bytes.
#[repr(C)]
pub struct Str {
    pub header: Header,
    pub byte_len: usize,
    /// Number of characters (code points): what `length` answers.
    pub char_len: usize,
}

impl Str {
    pub fn as_str(&self) -> &str {
        // SAFETY: the allocator copied `byte_len` bytes of a valid `&str` after the struct.
        unsafe {
            let p = (self as *const Str).add(1) as *const u8;
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(p, self.byte_len))
        }
    }
}

/// A large integer, stored as sign and magnitude in base 2^64, least significant first.
#[repr(C)]
pub struct BigIntObj {
    pub header: Header,
    pub negative: u64,
    pub ndigits: usize,
}

impl BigIntObj {
    pub fn digits(&self) -> &[u64] {
        // SAFETY: the allocator reserved `ndigits` words after the struct.
        unsafe {
            let p = (self as *const BigIntObj).add(1) as *const u64;
            std::slice::from_raw_parts(p, self.ndigits)
        }
    }
}

/// A double without an immediate encoding.
#[repr(C)]
pub struct BoxedDouble {
    pub header: Header,
    pub value: f64,
}

/// A closure: its code, the context it was created in, and the self of its home method.
#[repr(C)]
pub struct Block {
    pub header: Header,
    pub method: *mut Method,
    /// The creating activation's context, or `Value::EMPTY` if the block needs none.
    pub context: Value,
    pub receiver: Value,
}

/// Variables captured by blocks, split off the frame (PySOM's "inner").
#[repr(C)]
pub struct Context {
    pub header: Header,
    /// The lexically enclosing context, or `Value::EMPTY`.
    pub outer: Value,
    /// For a method's context: 1 while the method's activation is running, 0 after it
    /// returned (a non-local return to it must then send `escapedBlock:`).
    pub alive: u64,
    pub len: usize,
}

impl Context {
    #[inline(always)]
    pub fn slots(&mut self) -> &mut [Value] {
        // SAFETY: the allocator reserved `len` words right after this struct.
        unsafe {
            let p = (self as *mut Context).add(1) as *mut Value;
            std::slice::from_raw_parts_mut(p, self.len)
        }
    }
}

/// What runs when a method is invoked.
pub enum MethodBody {
    Code(Box<Code>),
    Primitive(PrimFn),
    /// The `value` primitives of the Block classes: evaluate the receiver block
    /// (`interpreter::send::invoke_block`, which traces inline).
    BlockValue,
    /// Declared `primitive` but the VM has no implementation for it.
    MissingPrimitive,
}

/// A method or a block body (immortal).
#[repr(C)]
pub struct Method {
    pub header: Header,
    pub signature: Value,
    pub holder: Cell<*mut Class>,
    pub num_args: usize,
    pub body: MethodBody,
    /// For blocks: the method the block is lexically inside (for backtraces).
    pub enclosing: *mut Method,
}

impl Method {
    pub fn code(&self) -> Option<&Code> {
        match &self.body {
            MethodBody::Code(c) => Some(c),
            _ => None,
        }
    }
    pub fn is_primitive(&self) -> bool {
        !matches!(self.body, MethodBody::Code(_))
    }
}

/// A class or a metaclass (immortal). Its class is its metaclass; a metaclass's class
/// is `Metaclass`.
#[repr(C)]
pub struct Class {
    pub header: Header,
    pub name: Value,
    /// The superclass, or nil.
    pub superclass: Value,
    /// All instance field names (Symbols), inherited ones first.
    pub instance_fields: Vec<Value>,
    /// Own methods in source order.
    pub methods: Vec<*mut Method>,
    /// The Array that `methods` answers (created on first use), or `Value::EMPTY`.
    pub methods_array: Value,
    /// Own methods by selector.
    pub dict: HashMap<Value, *mut Method, BuildPtrHasher>,
    /// The values of the class-side fields (declared by the metaclass).
    pub class_slots: Vec<Value>,
    pub is_metaclass: bool,
    /// The layout of this class's instances.
    pub instance_kind: Kind,
}

/// Hashes pointer-sized keys (symbols, classes) cheaply: they are already unique.
#[derive(Default, Clone, Copy)]
pub struct BuildPtrHasher;

impl std::hash::BuildHasher for BuildPtrHasher {
    type Hasher = PtrHasher;
    fn build_hasher(&self) -> PtrHasher {
        PtrHasher(0)
    }
}

pub struct PtrHasher(u64);

impl std::hash::Hasher for PtrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (i >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}
