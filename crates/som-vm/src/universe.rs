//! The [`Vm`]: the universe of a running program — heap, symbol table, globals, the
//! core classes, the value stack — and the typed allocation helpers built on the heap's
//! one allocation API.
//!
//! Data flow: `Vm::new` bootstraps the core classes (see `classloader`), the `som` binary
//! then calls [`Vm::run_main`], which sends `initialize:` to the system object; from
//! there the interpreter (`interpreter`) runs bytecode and calls primitives
//! (`primitives`), both of which allocate through the helpers here.

use crate::gc::{GcOptions, Heap};
use crate::interpreter::frame::Frame;
use crate::object::{
    as_ref, header, BigIntObj, Block, BoxedDouble, BuildPtrHasher, Class, Context, Kind, Method,
    Slots, Str,
};
use crate::tier1::{Tier1, Tier1Options};
use crate::unwind::{Unwind, VmResult};
use crate::value::Value;
use num_bigint::{BigInt, Sign};
use num_traits::ToPrimitive;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// The execution modes (DESIGN section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Tier 0 only: the interpreter.
    #[default]
    Interp,
    /// Tier 0, then tier 1 (threaded code) for methods invoked often enough.
    Threaded,
    /// Tier 0, then tier 2: hot loops are traced and compiled.
    Tracing,
}

/// Settings the embedder chooses.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub tier1: Tier1Options,
    pub tier2: metajit::driver::TraceOptions,
    /// The tier-2 optimiser's passes, in order (`--jit-passes`; default all).
    pub tier2_passes: Vec<metajit::opt::Pass>,
    /// Write every compiled trace here (`--jit-log`).
    pub jit_log: Option<PathBuf>,
    /// Directories searched for `<Class>.som`, in order, before the embedded library.
    pub classpath: Vec<PathBuf>,
    /// Deepest allowed nesting of activations before a SOM-level stack overflow error.
    pub max_stack_depth: usize,
    /// Slots of the value stack (all frames' variables and operand stacks).
    pub value_stack_slots: usize,
    /// Size of the native stack of the thread that runs the VM; the VM reports a stack
    /// overflow before using it up.
    pub native_stack_bytes: usize,
    /// Heap limit, GC-stress mode, collector threads.
    pub gc: GcOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Interp,
            tier1: Tier1Options::default(),
            tier2: crate::tier2::trace_options(),
            tier2_passes: metajit::opt::PASSES.to_vec(),
            jit_log: None,
            classpath: Vec::new(),
            max_stack_depth: 100_000,
            value_stack_slots: 8 << 20,
            native_stack_bytes: 8 << 20,
            gc: GcOptions::default(),
        }
    }
}

/// The classes the VM itself needs to know.
pub struct CoreClasses {
    pub object: *mut Class,
    pub class: *mut Class,
    pub metaclass: *mut Class,
    pub nil: *mut Class,
    pub array: *mut Class,
    pub method: *mut Class,
    pub primitive: *mut Class,
    pub string: *mut Class,
    pub symbol: *mut Class,
    pub integer: *mut Class,
    pub double: *mut Class,
    pub block: *mut Class,
    pub blocks: [*mut Class; 3],
    pub boolean: *mut Class,
    pub true_class: *mut Class,
    pub false_class: *mut Class,
    pub system: *mut Class,
}

/// Symbols the VM sends or compares against.
pub struct KnownSymbols {
    pub does_not_understand: Value,
    pub unknown_global: Value,
    pub escaped_block: Value,
    pub initialize: Value,
    pub run: Value,
}

pub struct Vm {
    pub heap: Heap,
    pub options: Options,
    symbols: HashMap<String, Value>,
    global_index: HashMap<Value, u32, BuildPtrHasher>,
    /// Global cells: (name, value); `Value::EMPTY` when unbound. Assign through
    /// [`Vm::set_global`], which advances `globals_epoch`.
    pub globals: Vec<(Value, Value)>,
    /// Changes whenever a global is assigned (traces guard it).
    pub globals_epoch: u64,
    pub nil: Value,
    pub true_: Value,
    pub false_: Value,
    pub system: Value,
    pub classes: CoreClasses,
    pub sym: KnownSymbols,
    /// Every class and method ever created (the collector's immortal roots).
    pub all_classes: Vec<*mut Class>,
    pub all_methods: Vec<*mut Method>,
    /// Classes whose files are being loaded (to reject circular superclass chains).
    pub classes_being_loaded: Vec<Value>,
    /// Literals the compiler made for a method it has not finished (GC roots until the
    /// method holds them).
    pub compile_roots: Vec<Value>,
    /// The value stack that frames live in.
    pub stack: Vec<Value>,
    /// The innermost activation, for backtraces (null outside the interpreter).
    pub current_frame: *const Frame,
    pub depth: usize,
    /// Native stack addresses below this mean "stack overflow" (see `send`).
    pub native_stack_limit: usize,
    pub start_time: Instant,
    /// Sends performed (profiling; `--jit-stats`).
    pub sends: u64,
    /// Sends tier-1 code made as inline-cached direct calls (`--jit-stats`).
    pub tier1_direct_calls: u64,
    /// The tier-1 compiler (`Mode::Threaded` only).
    pub tier1: Option<Box<Tier1>>,
    /// The tracing JIT (`Mode::Tracing` only).
    pub tier2: Option<Box<crate::tier2::Tier2>>,
    /// The result of a tier-1 activation that returned (see `interpreter::ops`).
    pub tier1_result: Value,
    /// An unwind raised inside tier-1 code, until the activation hands it on.
    pub pending_unwind: Option<Box<Unwind>>,
    /// The activations compiled traces inlined at their residual calls (entry 0:
    /// none), numbered by `number_inlined_activations`.
    pub inlined_activations: Vec<Box<[(*mut Method, u32)]>>,
    /// Their numbers, to give the same activations the same number.
    inlined_numbers: HashMap<Box<[(*mut Method, u32)]>, u32>,
    /// The text of every class file loaded, for backtraces (`Code::source`).
    pub sources: Vec<crate::classloader::ClassSource>,
    /// State of the `atRandom` generator (xorshift64*).
    rng: u64,
    pub out: std::io::BufWriter<std::io::Stdout>,
}

impl Vm {
    /// A universe with the core classes loaded, ready to run a program.
    pub fn new(options: Options) -> Result<Box<Vm>, String> {
        let stack = zeroed_value_stack(options.value_stack_slots);
        let null = std::ptr::null_mut();
        let mut vm = Box::new(Vm {
            heap: Heap::new(&options.gc),
            options,
            symbols: HashMap::new(),
            global_index: HashMap::default(),
            globals: Vec::new(),
            globals_epoch: 0,
            nil: Value::EMPTY,
            true_: Value::EMPTY,
            false_: Value::EMPTY,
            system: Value::EMPTY,
            classes: CoreClasses {
                object: null,
                class: null,
                metaclass: null,
                nil: null,
                array: null,
                method: null,
                primitive: null,
                string: null,
                symbol: null,
                integer: null,
                double: null,
                block: null,
                blocks: [null; 3],
                boolean: null,
                true_class: null,
                false_class: null,
                system: null,
            },
            sym: KnownSymbols {
                does_not_understand: Value::EMPTY,
                unknown_global: Value::EMPTY,
                escaped_block: Value::EMPTY,
                initialize: Value::EMPTY,
                run: Value::EMPTY,
            },
            all_classes: Vec::new(),
            all_methods: Vec::new(),
            classes_being_loaded: Vec::new(),
            compile_roots: Vec::new(),
            stack,
            current_frame: std::ptr::null(),
            depth: 0,
            native_stack_limit: 0,
            start_time: Instant::now(),
            sends: 0,
            tier1_direct_calls: 0,
            tier1: None,
            tier2: None,
            tier1_result: Value::EMPTY,
            pending_unwind: None,
            inlined_activations: vec![Box::new([])],
            inlined_numbers: HashMap::new(),
            sources: Vec::new(),
            rng: 0x9e37_79b9_7f4a_7c15,
            out: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()),
        });
        let at: *const Vm = &*vm;
        vm.heap.attach(at);
        vm.bootstrap()?;
        if vm.options.mode == Mode::Threaded {
            vm.tier1 = Some(Box::new(Tier1::new(vm.options.tier1)?));
        }
        if vm.options.mode == Mode::Tracing {
            let t2 = crate::tier2::Tier2::new(&vm.options)?;
            vm.tier2 = Some(Box::new(t2));
        }
        Ok(vm)
    }

    // ---- symbols ---------------------------------------------------------------------

    /// The interned symbol for `s`. Symbols are immortal.
    pub fn symbol(&mut self, s: &str) -> Value {
        if let Some(&v) = self.symbols.get(s) {
            return v;
        }
        let v = self.alloc_str(s, Kind::Symbol, self.classes.symbol);
        self.symbols.insert(s.to_string(), v);
        v
    }

    /// The interned symbols (GC roots).
    pub(crate) fn symbol_table(&self) -> impl Iterator<Item = &Value> {
        self.symbols.values()
    }

    /// The text of a String or Symbol; panics for any other value.
    ///
    /// The text borrows the VM: collections need it mutably (see `object`), so the
    /// string cannot be freed while the text is in use.
    pub fn str_of(&self, v: Value) -> &str {
        match self.get_str(v) {
            Some(text) => text,
            None => panic!("str_of: {v:?} is not a String or Symbol"),
        }
    }

    // ---- globals ---------------------------------------------------------------------

    /// The cell index of the global `name` (created unbound if new).
    pub fn global_cell(&mut self, name: Value) -> u32 {
        if let Some(&i) = self.global_index.get(&name) {
            return i;
        }
        let i = self.globals.len() as u32;
        self.globals.push((name, Value::EMPTY));
        self.global_index.insert(name, i);
        i
    }

    pub fn global(&self, name: Value) -> Option<Value> {
        let i = *self.global_index.get(&name)?;
        let v = self.globals[i as usize].1;
        (!v.is_empty()).then_some(v)
    }

    pub fn set_global(&mut self, name: Value, value: Value) {
        let i = self.global_cell(name);
        self.globals[i as usize].1 = value;
        // Compiled traces hold globals' values as constants and check this.
        self.globals_epoch += 1;
    }

    // ---- classification ----------------------------------------------------------------

    #[inline(always)]
    pub fn class_of(&self, v: Value) -> *mut Class {
        if v.is_int() {
            self.classes.integer
        } else if v.is_imm_double() {
            self.classes.double
        } else {
            // SAFETY: every other SOM value is a pointer to an object with a header.
            unsafe { header(v).class.get() }
        }
    }

    /// Does `v` point to an object of layout `kind`?
    #[inline(always)]
    pub fn is_kind(&self, v: Value, kind: Kind) -> bool {
        // SAFETY: pointers always point to objects with a header.
        v.is_ptr() && unsafe { header(v).kind } == kind
    }

    pub fn boolean(&self, b: bool) -> Value {
        if b {
            self.true_
        } else {
            self.false_
        }
    }

    // ---- allocation -----------------------------------------------------------------

    /// Allocates an object of `bytes` (header included); the caller initialises its
    /// body before allocating again. Running out of heap ends the program with a
    /// SOM-level error.
    #[inline]
    fn allocate<T>(&mut self, bytes: usize, kind: Kind, class: *mut Class) -> *mut T {
        match self.heap.allocate(bytes, kind, class) {
            Some(p) => p as *mut T,
            None => self.out_of_memory(bytes),
        }
    }

    #[cold]
    fn out_of_memory(&mut self, bytes: usize) -> ! {
        let message = format!(
            "out of memory: cannot allocate {bytes} bytes within the heap limit of {} MB (see --heap-size)",
            self.options.gc.max_heap_bytes >> 20
        );
        let backtrace = self.backtrace();
        std::process::exit(self.finish(Err(Box::new(Unwind::Error { message, backtrace }))));
    }

    pub fn alloc_slots(&mut self, kind: Kind, class: *mut Class, len: usize) -> Value {
        let bytes = std::mem::size_of::<Slots>() + len * 8;
        let p: *mut Slots = self.allocate(bytes, kind, class);
        // SAFETY: freshly allocated with room for `len` values.
        unsafe {
            (*p).len = len;
            for item in (*p).items() {
                *item = self.nil;
            }
        }
        Value::from_ptr(p)
    }

    pub fn alloc_array(&mut self, len: usize) -> Value {
        self.alloc_slots(Kind::Array, self.classes.array, len)
    }

    pub fn alloc_array_from(&mut self, items: &[Value]) -> Value {
        let a = self.alloc_array(items.len());
        // SAFETY: `a` is a fresh array of that length.
        unsafe { as_ref::<Slots>(a).items().copy_from_slice(items) };
        a
    }

    /// A new instance of `class`, fields nil (arrays of subclasses start empty).
    pub fn alloc_instance(&mut self, class: *mut Class) -> Value {
        // SAFETY: classes are immortal.
        let (n, kind) = unsafe { ((*class).instance_fields.len(), (*class).instance_kind) };
        match kind {
            Kind::Array => self.alloc_slots(Kind::Array, class, 0),
            Kind::String => self.alloc_str("", Kind::String, class),
            _ => self.alloc_slots(Kind::Instance, class, n),
        }
    }

    fn alloc_str(&mut self, s: &str, kind: Kind, class: *mut Class) -> Value {
        let bytes = std::mem::size_of::<Str>() + s.len();
        let p: *mut Str = self.allocate(bytes, kind, class);
        // SAFETY: freshly allocated with room for the bytes after the struct.
        unsafe {
            (*p).byte_len = s.len();
            (*p).char_len = s.chars().count();
            std::ptr::copy_nonoverlapping(s.as_ptr(), (p.add(1)) as *mut u8, s.len());
        }
        Value::from_ptr(p)
    }

    pub fn alloc_string(&mut self, s: &str) -> Value {
        self.alloc_str(s, Kind::String, self.classes.string)
    }

    /// A double, immediate when possible.
    #[inline]
    pub fn double(&mut self, d: f64) -> Value {
        if let Some(v) = Value::try_imm_double(d) {
            return v;
        }
        let p: *mut BoxedDouble = self.allocate(
            std::mem::size_of::<BoxedDouble>(),
            Kind::Double,
            self.classes.double,
        );
        // SAFETY: freshly allocated BoxedDouble.
        unsafe { (*p).value = d };
        Value::from_ptr(p)
    }

    /// The f64 of a double value (immediate or boxed), if it is one.
    #[inline]
    pub fn get_double(&self, v: Value) -> Option<f64> {
        if v.is_imm_double() {
            Some(v.as_imm_double())
        } else if self.is_kind(v, Kind::Double) {
            // SAFETY: checked kind.
            Some(unsafe { as_ref::<BoxedDouble>(v).value })
        } else {
            None
        }
    }

    /// An integer of any size, small when it fits.
    pub fn integer(&mut self, i: BigInt) -> Value {
        if let Some(small) = i.to_i64().and_then(Value::try_int) {
            return small;
        }
        let (sign, digits) = i.to_u64_digits();
        let bytes = std::mem::size_of::<BigIntObj>() + digits.len() * 8;
        let p: *mut BigIntObj = self.allocate(bytes, Kind::BigInt, self.classes.integer);
        // SAFETY: freshly allocated with room for the digits.
        unsafe {
            (*p).negative = (sign == Sign::Minus) as u64;
            (*p).ndigits = digits.len();
            std::ptr::copy_nonoverlapping(digits.as_ptr(), p.add(1) as *mut u64, digits.len());
        }
        Value::from_ptr(p)
    }

    pub fn int_from_i64(&mut self, i: i64) -> Value {
        Value::try_int(i).unwrap_or_else(|| self.integer(BigInt::from(i)))
    }

    /// The integer value of `v` (small or big), if it is an integer.
    pub fn get_bigint(&self, v: Value) -> Option<BigInt> {
        if v.is_int() {
            Some(BigInt::from(v.as_int()))
        } else if self.is_kind(v, Kind::BigInt) {
            // SAFETY: checked kind.
            let b = unsafe { as_ref::<BigIntObj>(v) };
            let sign = if b.negative != 0 {
                Sign::Minus
            } else {
                Sign::Plus
            };
            Some(BigInt::from_slice(
                sign,
                &b.digits()
                    .iter()
                    .flat_map(|d| [*d as u32, (*d >> 32) as u32])
                    .collect::<Vec<u32>>(),
            ))
        } else {
            None
        }
    }

    pub fn alloc_block(&mut self, method: *mut Method, context: Value, receiver: Value) -> Value {
        // SAFETY: methods are immortal.
        let argc = unsafe { (*method).num_args };
        let class = self.classes.blocks[argc.min(2)];
        let p: *mut Block = self.allocate(std::mem::size_of::<Block>(), Kind::Block, class);
        // SAFETY: freshly allocated Block.
        unsafe {
            (*p).method = method;
            (*p).context = context;
            (*p).receiver = receiver;
        }
        Value::from_ptr(p)
    }

    pub fn alloc_context(&mut self, outer: Value, len: usize) -> Value {
        let bytes = std::mem::size_of::<Context>() + len * 8;
        let p: *mut Context = self.allocate(bytes, Kind::Context, self.classes.object);
        // SAFETY: freshly allocated with room for `len` slots.
        unsafe {
            (*p).outer = outer;
            (*p).alive = 1;
            (*p).len = len;
            for s in (*p).slots() {
                *s = self.nil;
            }
        }
        Value::from_ptr(p)
    }

    // ---- classes ----------------------------------------------------------------------

    /// The method `selector` answers to in `class` or its superclasses.
    #[inline]
    pub fn lookup(&self, mut class: *mut Class, selector: Value) -> Option<*mut Method> {
        while !class.is_null() {
            // SAFETY: classes are immortal.
            let c = unsafe { &*class };
            if let Some(&m) = c.dict.get(&selector) {
                return Some(m);
            }
            class = self.class_ptr(c.superclass);
        }
        None
    }

    /// The class a superclass field points to, or null for nil.
    pub fn class_ptr(&self, v: Value) -> *mut Class {
        if v == self.nil || v.is_empty() {
            std::ptr::null_mut()
        } else {
            v.as_ptr()
        }
    }

    pub fn class_name(&self, class: *mut Class) -> String {
        // SAFETY: classes are immortal; names are symbols.
        self.str_of(unsafe { (*class).name }).to_string()
    }

    // ---- errors and output -------------------------------------------------------------

    /// An error unwind carrying the current backtrace.
    pub fn error(&self, message: impl Into<String>) -> Box<Unwind> {
        Box::new(Unwind::Error {
            message: message.into(),
            backtrace: self.backtrace(),
        })
    }

    pub fn err<T>(&self, message: impl Into<String>) -> VmResult<T> {
        Err(self.error(message))
    }

    /// The active SOM activations as backtraces show them, after a line
    /// [`TRACEBACK_HEADER`]: outermost first (the most recent call at the bottom), each
    /// as `Class>>#selector at file, line L, column C:` and the line of source there.
    /// Columns count from 0 (as yksom's do, which the public IntegrationTests check);
    /// syntax errors count them from 1, as editors do. Long stacks keep both ends.
    pub fn backtrace(&self) -> String {
        const KEEP: usize = 20;
        // (method, pc) of every activation, innermost first.
        let mut frames: Vec<(*mut Method, u32)> = Vec::new();
        let mut f = self.current_frame;
        let mut skip_root = false;
        while !f.is_null() {
            // SAFETY: frames form a chain of live activations on the Rust stack.
            let frame = unsafe { &*f };
            if !frame.method.is_null() {
                if !skip_root {
                    frames.push((frame.method, frame.pc));
                }
                skip_root = false;
            } else if frame.pc >= INLINED_FRAMES {
                // A compiled trace's residual call: the activations it had inlined,
                // then its root activation as it was at the call (which stands for
                // the root frame next in the chain).
                let site = (frame.pc - INLINED_FRAMES) as usize;
                if let Some(inlined) = self.inlined_activations.get(site) {
                    frames.extend_from_slice(inlined);
                    skip_root = !inlined.is_empty();
                }
            }
            f = frame.parent;
        }
        frames.reverse();
        let total = frames.len();
        let mut out = String::new();
        for (i, &(method, pc)) in frames.iter().enumerate() {
            if total > 2 * KEEP && i == KEEP {
                out.push_str(&format!("  ... {} more ...\n", total - 2 * KEEP));
            }
            if total <= 2 * KEEP || i < KEEP || i >= total - KEEP {
                // SAFETY: frames always hold an immortal method.
                out.push_str(&self.describe_activation(unsafe { &*method }, pc.saturating_sub(1)));
            }
        }
        out
    }

    /// Numbers the activations `caller` and the `n - 1` above it (innermost first),
    /// and the trace's root activation above them, as they are now, for a residual
    /// call a trace makes from `caller` after inlining them: backtraces taken inside
    /// that call show them (see [`INLINED_FRAMES`]), and the root activation at the
    /// call's instruction (its frame in memory holds the pc where the trace was
    /// entered). Also answers the root frame.
    pub fn number_inlined_activations(&mut self, caller: &Frame, n: usize) -> (u32, *const Frame) {
        let mut inlined = Vec::with_capacity(n + 1);
        let mut f: *const Frame = caller;
        for _ in 0..n {
            // SAFETY: the recorder inlined `n` activations, each with its frame on
            // the Rust stack, chained through `parent`.
            let frame = unsafe { &*f };
            inlined.push((frame.method, frame.pc));
            f = frame.parent;
        }
        // SAFETY: the root frame is live on the Rust stack too (the trace runs in it).
        if let Some(root) = unsafe { f.as_ref() }.filter(|r| !r.method.is_null()) {
            inlined.push((root.method, root.pc));
        }
        if inlined.is_empty() {
            return (0, f);
        }
        let inlined = inlined.into_boxed_slice();
        if let Some(&i) = self.inlined_numbers.get(&inlined) {
            return (i, f);
        }
        let i = self.inlined_activations.len() as u32;
        self.inlined_activations.push(inlined.clone());
        self.inlined_numbers.insert(inlined, i);
        (i, f)
    }

    /// The backtrace lines of an activation of `method` running instruction `pc`.
    pub fn describe_activation(&self, method: &Method, pc: u32) -> String {
        let label = self.method_label(method);
        let Some(code) = method.code() else {
            return format!("  {label}\n");
        };
        let pos = code.positions.get(pc as usize).copied().unwrap_or_default();
        let Some(source) = self.sources.get(code.source as usize) else {
            return format!(
                "  {label} at line {}, column {}:\n",
                pos.line,
                pos.col.saturating_sub(1)
            );
        };
        let text = source
            .text
            .lines()
            .nth(pos.line.saturating_sub(1) as usize)
            .unwrap_or("")
            .trim();
        format!(
            "  {label} at {}, line {}, column {}:\n      {text}\n",
            source.file,
            pos.line,
            pos.col.saturating_sub(1)
        )
    }

    /// A method's name as backtraces show it: `Class>>#selector`, or
    /// `block in Class>>#selector` for a block (once per nesting level).
    pub fn method_label(&self, method: &Method) -> String {
        let mut home = method;
        let mut prefix = String::new();
        while !home.enclosing.is_null() {
            prefix.push_str("block in ");
            // SAFETY: enclosing methods are immortal.
            home = unsafe { &*home.enclosing };
        }
        let holder = home.holder.get();
        let holder_name = if holder.is_null() {
            "?".to_string()
        } else {
            self.class_name(holder)
        };
        format!("{prefix}{holder_name}>>#{}", self.str_of(home.signature))
    }

    /// The next pseudo-random number (non-negative, 62 bits).
    pub fn next_random(&mut self) -> i64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 2) as i64
    }

    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

/// The pcs from here up mark the frame over the receiver and arguments of a residual
/// call made by a compiled trace (it runs no method): `pc - INLINED_FRAMES` numbers
/// the activations the trace had inlined there (`Vm::inlined_activations`), which
/// backtraces taken inside show in its place.
pub const INLINED_FRAMES: u32 = 0x8000_0000;

/// The line before a backtrace ([`Vm::backtrace`]) on stderr.
pub const TRACEBACK_HEADER: &str = "Traceback (most recent call at bottom):";

/// A value stack of `n` empty slots. Zeroed memory comes straight from the OS, so the
/// pages are only touched (and count towards memory use) as deep as programs recurse.
fn zeroed_value_stack(n: usize) -> Vec<Value> {
    let words = std::mem::ManuallyDrop::new(vec![0u64; n]);
    // SAFETY: `Value` is a `repr(transparent)` u64 and `Value::EMPTY` is 0, so the
    // allocation is a valid `Vec<Value>` with the same length, capacity and layout.
    unsafe { Vec::from_raw_parts(words.as_ptr() as *mut Value, words.len(), words.capacity()) }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.flush();
    }
}
