//! Bootstrap and class loading.
//!
//! Class files are found along the classpath (`<dir>/<Name>.som`, first hit wins) and
//! then in the embedded core library (`corelib`), so a `Smalltalk` directory on the
//! classpath overrides the built-in classes. A class file is parsed (`som-syntax`), its
//! methods compiled (`compiler`), and the class and its metaclass become immortal
//! objects bound to a global.
//!
//! Bootstrap follows the other SOM VMs: create the core classes as empty shells (so
//! they can refer to each other), create nil, true, false and the system object, then
//! fill the shells from their class files in superclass-first order.

use crate::compiler::Compiler;
use crate::corelib;
use crate::interpreter::frame::Frame;
use crate::interpreter::send::send_values;
use crate::object::{as_ref, as_shared, header, BuildPtrHasher, Class, Header, Kind, Slots, Str};
use crate::universe::{KnownSymbols, Vm};
use crate::unwind::{Unwind, VmResult};
use crate::value::Value;
use som_syntax::{ClassDef, Span, SuperclassSpec, SyntaxError};
use std::cell::Cell;
use std::collections::HashMap;

/// Core classes in the order their files are loaded (superclasses first).
const CORE_ORDER: &[&str] = &[
    "Object",
    "Class",
    "Metaclass",
    "Nil",
    "Array",
    "Method",
    "Primitive",
    "String",
    "Symbol",
    "Integer",
    "Double",
    "Block",
    "Block1",
    "Block2",
    "Block3",
    "Boolean",
    "True",
    "False",
    "System",
];

/// A class file's text and the name to report it under.
#[derive(Clone)]
pub struct ClassSource {
    pub text: String,
    pub file: String,
}

impl Vm {
    pub(crate) fn bootstrap(&mut self) -> Result<(), String> {
        // 1. Shells. Metaclass must exist before metaclasses can have a class.
        let mut shells = HashMap::new();
        for &name in CORE_ORDER {
            shells.insert(name, self.new_class_pair(Value::EMPTY));
        }
        let c = |n: &str| shells[n];
        self.classes.object = c("Object");
        self.classes.class = c("Class");
        self.classes.metaclass = c("Metaclass");
        self.classes.nil = c("Nil");
        self.classes.array = c("Array");
        self.classes.method = c("Method");
        self.classes.primitive = c("Primitive");
        self.classes.string = c("String");
        self.classes.symbol = c("Symbol");
        self.classes.integer = c("Integer");
        self.classes.double = c("Double");
        self.classes.block = c("Block");
        self.classes.blocks = [c("Block1"), c("Block2"), c("Block3")];
        self.classes.boolean = c("Boolean");
        self.classes.true_class = c("True");
        self.classes.false_class = c("False");
        self.classes.system = c("System");
        for &class in shells.values() {
            // SAFETY: classes are immortal; `new_class_pair` gave every shell a
            // metaclass, also immortal. The header's class is a `Cell`, so no
            // reference to the metaclass needs to be unique.
            let meta = unsafe { (*class).header.class.get() };
            // SAFETY: as above.
            unsafe { (*meta).header.class.set(self.classes.metaclass) };
        }
        // Layouts of the built-in kinds.
        // SAFETY: the shells were just created (immortal, non-null), and nothing else
        // holds a reference to them yet.
        unsafe {
            (*self.classes.array).instance_kind = Kind::Array;
            (*self.classes.string).instance_kind = Kind::String;
            (*self.classes.symbol).instance_kind = Kind::Symbol;
        }

        // 2. The special objects.
        self.nil = self.alloc_slots(Kind::Instance, self.classes.nil, 0);
        self.true_ = self.alloc_slots(Kind::Instance, self.classes.true_class, 0);
        self.false_ = self.alloc_slots(Kind::Instance, self.classes.false_class, 0);
        self.system = self.alloc_slots(Kind::Instance, self.classes.system, 0);
        for &class in shells.values() {
            // SAFETY: as for the layouts above; a class and its metaclass are two
            // objects, so the two writes touch different classes.
            unsafe {
                (*class).superclass = self.nil;
                (*(*class).header.class.get()).superclass = self.nil;
            }
        }
        for &name in CORE_ORDER {
            let sym = self.symbol(name);
            let class = shells[name];
            self.set_class_name(class, sym);
            self.set_global(sym, Value::from_ptr(class));
        }
        for (name, v) in [
            ("nil", self.nil),
            ("true", self.true_),
            ("false", self.false_),
            ("system", self.system),
        ] {
            let sym = self.symbol(name);
            self.set_global(sym, v);
        }
        self.sym = KnownSymbols {
            does_not_understand: self.symbol("doesNotUnderstand:arguments:"),
            unknown_global: self.symbol("unknownGlobal:"),
            escaped_block: self.symbol("escapedBlock:"),
            initialize: self.symbol("initialize:"),
            run: self.symbol("run"),
        };

        // 3. Fill the shells.
        for &name in CORE_ORDER {
            let source = self
                .find_class_source(name)
                .ok_or_else(|| format!("core class {name} not found"))?;
            let def =
                som_syntax::parse_class(&source.text, &source.file).map_err(|e| e.to_string())?;
            self.register_source(&source);
            self.define_class(shells[name], &def, &source.file)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// A new class and its metaclass (superclasses unset, no name yet).
    fn new_class_pair(&mut self, name: Value) -> *mut Class {
        let meta = self.new_class_object(self.classes.metaclass, name, true);
        self.new_class_object(meta, name, false)
    }

    fn new_class_object(&mut self, class: *mut Class, name: Value, is_meta: bool) -> *mut Class {
        let hash = self.heap.next_identity_hash();
        let c = Box::leak(Box::new(Class {
            header: Header {
                class: Cell::new(class),
                kind: Kind::Class,
                flags: 0,
                hash,
            },
            name,
            superclass: self.nil,
            instance_fields: Vec::new(),
            methods: Vec::new(),
            methods_array: Value::EMPTY,
            dict: HashMap::with_hasher(BuildPtrHasher),
            class_slots: Vec::new(),
            is_metaclass: is_meta,
            instance_kind: if is_meta { Kind::Class } else { Kind::Instance },
        }));
        self.all_classes.push(c);
        c
    }

    fn set_class_name(&mut self, class: *mut Class, name: Value) {
        let meta_name = format!("{} class", self.str_of(name));
        let meta_sym = self.symbol(&meta_name);
        // SAFETY: classes are immortal.
        unsafe {
            (*class).name = name;
            (*(*class).header.class.get()).name = meta_sym;
        }
    }

    /// The text of `<name>.som`: from the classpath, else the embedded library.
    pub fn find_class_source(&self, name: &str) -> Option<ClassSource> {
        for dir in &self.options.classpath {
            let path = dir.join(format!("{name}.som"));
            if let Ok(text) = std::fs::read_to_string(&path) {
                return Some(ClassSource {
                    text,
                    file: path.display().to_string(),
                });
            }
        }
        corelib::source(name).map(|text| ClassSource {
            text: text.to_string(),
            file: format!("<core-lib>/{name}.som"),
        })
    }

    /// Keeps a class file's text, so backtraces can show its lines.
    fn register_source(&mut self, source: &ClassSource) {
        self.sources.push(source.clone());
    }

    /// The index in `sources` of the file named `file`, or `NO_SOURCE`.
    pub fn source_index(&self, file: &str) -> u32 {
        self.sources
            .iter()
            .rposition(|s| s.file == file)
            .map_or(crate::bytecode::NO_SOURCE, |i| i as u32)
    }

    /// Loads the class `name` if it is not loaded yet; answers it, or `None` if no class
    /// file exists. Syntax errors in the file are errors.
    pub fn load_class(&mut self, name: Value) -> VmResult<Option<Value>> {
        if let Some(v) = self.global(name) {
            if self.is_kind(v, Kind::Class) {
                return Ok(Some(v));
            }
        }
        let text = self.str_of(name).to_string();
        let Some(source) = self.find_class_source(&text) else {
            return Ok(None);
        };
        if self.classes_being_loaded.contains(&name) {
            return self.err(format!(
                "class {text} inherits from itself (circular superclass chain)"
            ));
        }
        self.classes_being_loaded.push(name);
        let result = self.load_class_from(name, &text, source, false);
        self.classes_being_loaded.retain(|&n| n != name);
        result
    }

    /// Loads the program's main class from the file for `name`: the class that file
    /// defines, even under another name (as yksom does; a class found by name on the
    /// classpath must have that name). Answers the class, or `None` if no file exists.
    pub fn load_program_class(&mut self, name: &str) -> VmResult<Option<Value>> {
        let sym = self.symbol(name);
        if let Some(v) = self.global(sym).filter(|&v| self.is_kind(v, Kind::Class)) {
            return Ok(Some(v));
        }
        let Some(source) = self.find_class_source(name) else {
            return Ok(None);
        };
        self.classes_being_loaded.push(sym);
        let result = self.load_class_from(sym, name, source, true);
        self.classes_being_loaded.retain(|&n| n != sym);
        result
    }

    fn load_class_from(
        &mut self,
        mut name: Value,
        text: &str,
        source: ClassSource,
        any_name: bool,
    ) -> VmResult<Option<Value>> {
        let def = som_syntax::parse_class(&source.text, &source.file)
            .map_err(|e| syntax_unwind(e, &source.text))?;
        if def.name != text {
            if !any_name {
                return self.err(format!(
                    "{}: the file defines class {} instead of {}",
                    source.file, def.name, text
                ));
            }
            name = self.symbol(&def.name);
            if self
                .global(name)
                .is_some_and(|v| self.is_kind(v, Kind::Class))
            {
                return self.err(format!(
                    "{}: the file defines class {}, which is already loaded",
                    source.file, def.name
                ));
            }
        }
        let class = self.new_class_pair(Value::EMPTY);
        self.set_class_name(class, name);
        self.register_source(&source);
        self.define_class(class, &def, &source.file)
            .map_err(|e| syntax_unwind(e, &source.text))?;
        let v = Value::from_ptr(class);
        self.set_global(name, v);
        Ok(Some(v))
    }

    /// Fills `class` (and its metaclass) from a parsed class definition.
    fn define_class(
        &mut self,
        class: *mut Class,
        def: &ClassDef,
        file: &str,
    ) -> Result<(), SyntaxError> {
        let err = |message: String| SyntaxError {
            file: file.to_string(),
            span: def.span,
            message,
        };
        let superclass = match &def.superclass {
            SuperclassSpec::Nil => None,
            SuperclassSpec::Default => Some(self.classes.object),
            SuperclassSpec::Named(n) => {
                let sym = self.symbol(n);
                let v = match self.global(sym) {
                    Some(v) if self.is_kind(v, Kind::Class) => Some(v),
                    _ => self.load_class(sym).map_err(|u| match *u {
                        Unwind::Error { message, .. } => err(message),
                        _ => err(format!("cannot load superclass {n}")),
                    })?,
                };
                match v {
                    Some(v) => Some(v.as_ptr::<Class>()),
                    None => return Err(err(format!("superclass {n} not found"))),
                }
            }
        };
        // SAFETY: classes are immortal, and `new_class_pair` gave this one its
        // metaclass.
        let meta = unsafe { (*class).header.class.get() };
        // What the superclass passes on, read before `class` is borrowed mutably (a
        // core class file on the classpath may name its own class as superclass).
        let (superclasses, super_kind, super_fields, super_meta_fields) = match superclass {
            // SAFETY: classes and their metaclasses are immortal, and no reference to
            // `s` or its metaclass is live.
            Some(s) => unsafe {
                let sm = (*s).header.class.get();
                (
                    (Value::from_ptr(s), Value::from_ptr(sm)),
                    Some((*s).instance_kind),
                    (*s).instance_fields.clone(),
                    (*sm).instance_fields.clone(),
                )
            },
            None => {
                // SAFETY: Class is a core class shell (immortal), not borrowed here.
                let class_fields = unsafe { (*self.classes.class).instance_fields.clone() };
                // `Object class superclass` is `Class`.
                let superclasses = (self.nil, Value::from_ptr(self.classes.class));
                (superclasses, None, Vec::new(), class_fields)
            }
        };
        let field_err = |(message, span)| SyntaxError {
            file: file.to_string(),
            span,
            message,
        };
        let instance_fields = self
            .field_list(
                super_fields,
                &def.instance_fields,
                &def.instance_field_spans,
            )
            .map_err(field_err)?;
        let class_fields = self
            .field_list(super_meta_fields, &def.class_fields, &def.class_field_spans)
            .map_err(field_err)?;
        // SAFETY: classes are immortal; a class and its metaclass are two objects, and
        // no other reference to either is live while these are (nothing below
        // allocates, so no collection reads them meanwhile).
        let (c, c_meta) = unsafe { (&mut *class, &mut *meta) };
        (c.superclass, c_meta.superclass) = superclasses;
        if let Some(kind) = super_kind {
            if c.instance_kind == Kind::Instance {
                c.instance_kind = kind;
            }
        }
        c.class_slots = vec![self.nil; class_fields.len()];
        c.instance_fields = instance_fields;
        c_meta.instance_fields = class_fields;

        for (target, methods) in [(class, &def.instance_methods), (meta, &def.class_methods)] {
            let mut compiler = Compiler::new(self, target, file);
            let mut compiled = Vec::new();
            for m in methods {
                compiled.push(compiler.compile_method(m)?);
            }
            // SAFETY: classes are immortal, and the compiler, which read `target`'s
            // fields through its pointer, is done: no other reference to it is live.
            let t = unsafe { &mut *target };
            t.methods.clear();
            t.methods_array = Value::EMPTY;
            t.dict.clear();
            for m in compiled {
                // SAFETY: methods are immortal.
                let sel = unsafe { (*m).signature };
                if t.dict.insert(sel, m).is_some() {
                    // SAFETY: methods are immortal.
                    t.methods.retain(|&old| unsafe { (*old).signature } != sel);
                }
                t.methods.push(m);
            }
        }
        Ok(())
    }

    /// The fields of a class: its superclass's, then its own (declared at `spans`),
    /// none of which may repeat an inherited one.
    fn field_list(
        &mut self,
        mut inherited: Vec<Value>,
        own: &[String],
        spans: &[Span],
    ) -> Result<Vec<Value>, (String, Span)> {
        for (f, &span) in own.iter().zip(spans) {
            let sym = self.symbol(f);
            if inherited.contains(&sym) {
                return Err((
                    format!("Field '{f}' is already defined in a superclass."),
                    span,
                ));
            }
            inherited.push(sym);
        }
        Ok(inherited)
    }

    // ---- fields of any receiver ----------------------------------------------------------

    /// Field `n` (0-based) of an instance or a class object (class-side fields).
    pub fn read_field(&self, obj: Value, n: usize) -> Value {
        match self.kind_of(obj) {
            // SAFETY: checked kinds; the reference ends with the read (indexing checks
            // `n`).
            Some(Kind::Instance) => unsafe { as_ref::<Slots>(obj).items()[n] },
            // SAFETY: checked kind; classes are immortal, and this only reads.
            Some(Kind::Class) => unsafe {
                as_shared::<Class>(obj)
                    .class_slots
                    .get(n)
                    .copied()
                    .unwrap_or(self.nil)
            },
            _ => self.nil,
        }
    }

    pub fn write_field(&mut self, obj: Value, n: usize, v: Value) {
        match self.kind_of(obj) {
            // SAFETY: checked kinds; the reference ends with the write (indexing checks
            // `n`).
            Some(Kind::Instance) => unsafe { as_ref::<Slots>(obj).items()[n] = v },
            // SAFETY: checked kind; classes are immortal, and no other reference to
            // this one is live while the slot is written.
            Some(Kind::Class) => unsafe {
                if let Some(slot) = as_ref::<Class>(obj).class_slots.get_mut(n) {
                    *slot = v;
                }
            },
            _ => {}
        }
    }

    /// The layout of `v`, if it is a heap object.
    pub fn kind_of(&self, v: Value) -> Option<Kind> {
        // SAFETY: pointers point to objects with headers.
        v.is_ptr().then(|| unsafe { header(v).kind })
    }

    /// The string of a String or Symbol value, if it is one. The text borrows the VM,
    /// as [`Vm::str_of`]'s does.
    pub fn get_str(&self, v: Value) -> Option<&str> {
        match self.kind_of(v) {
            Some(Kind::String) | Some(Kind::Symbol) => {
                // SAFETY: checked kind. Strings never change, and the string cannot be
                // freed while `self` is borrowed (collections need the VM mutably), so
                // a shared reference for that long is valid.
                Some(unsafe { as_shared::<Str>(v).as_str() })
            }
            _ => None,
        }
    }

    // ---- running a program ---------------------------------------------------------------

    /// Sends `initialize:` with `args` (main class name first) to the system object, as
    /// the other SOM VMs do. Answers the process exit status.
    pub fn run_main(&mut self, args: &[String]) -> i32 {
        self.set_native_stack_limit();
        // The array first, so each new string is reachable before the next allocation.
        let arr = self.alloc_array(args.len());
        for (i, a) in args.iter().enumerate() {
            let s = self.alloc_string(a);
            // SAFETY: `arr` is an Array of `args.len()` elements.
            unsafe { as_ref::<Slots>(arr).items()[i] = s };
        }
        let sel = self.sym.initialize;
        let system = self.system;
        let result = self.with_bottom_frame(|vm, f| send_values(vm, f, system, sel, &[arr]));
        self.finish(result)
    }

    /// Runs `body` with a frame at the bottom of the value stack to push onto.
    pub fn with_bottom_frame<T>(&mut self, body: impl FnOnce(&mut Vm, &mut Frame) -> T) -> T {
        let base = self.stack.as_mut_ptr();
        // SAFETY: the value stack is at least one slot long.
        unsafe { *base = self.nil };
        let mut f = Frame {
            base,
            sp: 1,
            ..Frame::detached()
        };
        self.current_frame = std::ptr::null();
        body(self, &mut f)
    }

    /// Reports how a top-level send ended and answers the exit status.
    pub fn finish(&mut self, result: VmResult<Value>) -> i32 {
        self.flush();
        match result {
            Ok(_) => 0,
            Err(u) => {
                if let Unwind::Exit(code) = *u {
                    return code;
                }
                self.report(&u);
                1
            }
        }
    }

    /// Prints an unwind that ended a program (or one REPL input): errors as
    /// [`Unwind`] describes them.
    pub fn report(&mut self, unwind: &Unwind) {
        use std::io::Write;
        self.flush();
        let traceback = |backtrace: &str| {
            if !backtrace.is_empty() {
                eprint!("{}\n{backtrace}", crate::universe::TRACEBACK_HEADER);
            }
        };
        match unwind {
            Unwind::Error { message, backtrace } => {
                traceback(backtrace);
                eprintln!("{message}");
            }
            Unwind::ProgramError { message, backtrace } => {
                let _ = writeln!(self.out, "\nERROR: {message}");
                self.flush();
                traceback(backtrace);
            }
            Unwind::Exit(_) => {}
            Unwind::NonLocalReturn { .. } => {
                eprintln!("A non-local return's home method has already returned.")
            }
            Unwind::Restart => eprintln!("A restart left the program."),
        }
    }

    /// Sets the address below which the native stack counts as exhausted: 256 KiB above
    /// the end of the stack of the current thread, as `Options` describes it.
    pub fn set_native_stack_limit(&mut self) {
        let marker = 0u8;
        let here = &marker as *const u8 as usize;
        let usable = self.options.native_stack_bytes.saturating_sub(512 << 10);
        self.native_stack_limit = here.saturating_sub(usable);
    }
}

/// A syntax error in the class file whose text is `source`, as an error unwind.
fn syntax_unwind(e: SyntaxError, source: &str) -> Box<Unwind> {
    Box::new(Unwind::Error {
        message: e.report(source).trim_end().to_string(),
        backtrace: String::new(),
    })
}
