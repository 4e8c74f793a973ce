//! The bytecode compiler: AST method -> [`Method`] with [`Code`].
//!
//! It inlines the control structures of DESIGN section 5 when their arguments are literal
//! blocks (`ifTrue:` family, `and:`/`or:`, `whileTrue:`/`whileFalse:`, `to:do:`,
//! `downTo:do:`, the `ifNil:` family), keeping the answers of the real sends. Inlined
//! blocks' variables become fresh locals of the enclosing activation, re-initialised to
//! nil on every entry.
//!
//! Variables that a non-inlined block reads or writes are *captured*: they live in a
//! context object instead of the frame. Which ones are captured is only known once the
//! whole method has been seen, so a method is compiled twice: the first pass records
//! captured variables and the scopes that need a context, the second emits the code.

mod inlining;

use crate::bytecode::{Code, ContextShape, JumpMode, Op, SendSite};
use crate::object::{Class, Header, Kind, Method, MethodBody};
use crate::universe::Vm;
use crate::value::Value;
use inlining::Inlined;
use som_syntax::{BlockDef, Body, Expr, Literal, MethodDef, Span, SyntaxError};
use std::cell::Cell;
use std::collections::HashSet;

/// Where a variable lives.
#[derive(Clone, Copy, Debug)]
enum Storage {
    Slot(u16),
    Ctx(u16),
}

struct Var {
    name: String,
    id: u32,
    storage: Storage,
}

/// One activation's code under construction (a method or a non-inlined block).
struct Scope {
    id: u32,
    ops: Vec<Op>,
    positions: Vec<Span>,
    depths: Vec<u16>,
    literals: Vec<Value>,
    sites: Vec<SendSite>,
    /// Visible variables; inlined blocks push and later truncate.
    vars: Vec<Var>,
    num_args: usize,
    num_locals: usize,
    ctx_size: u16,
    captured_args: Vec<(u16, u16)>,
    depth: usize,
    max_depth: usize,
    backedges: u16,
}

impl Scope {
    fn new(id: u32, num_args: usize) -> Scope {
        Scope {
            id,
            ops: Vec::new(),
            positions: Vec::new(),
            depths: Vec::new(),
            literals: Vec::new(),
            sites: Vec::new(),
            vars: Vec::new(),
            num_args,
            num_locals: 0,
            ctx_size: 0,
            captured_args: Vec::new(),
            depth: 0,
            max_depth: 0,
            backedges: 0,
        }
    }
}

/// Where the text of `e` starts: its leftmost receiver's position.
fn expression_start(e: &Expr) -> Span {
    match e {
        Expr::Send { receiver, .. } => expression_start(receiver),
        other => other.span(),
    }
}

/// Compiles the methods of one class.
pub struct Compiler<'a> {
    vm: &'a mut Vm,
    /// The class the method belongs to (a metaclass for class-side methods).
    holder: *mut Class,
    file: String,
    /// The index of `file` in `Vm::sources` (or `NO_SOURCE`).
    source: u32,
    /// Pass-one findings, used by pass two.
    captured: HashSet<u32>,
    needs_ctx: HashSet<u32>,
    next_var: u32,
    next_scope: u32,
    scopes: Vec<Scope>,
    /// Where the code being emitted comes from (see `Code::positions`).
    pos: Span,
    /// The method being compiled (for blocks' back-pointer), set in pass two.
    enclosing: Vec<*mut Method>,
    /// REPL input ([`Compiler::with_session_variables`]): an assignment to an
    /// undeclared name stores a global instead of being an error.
    session_variables: bool,
    /// The names such assignments store, and where (recorded in pass one).
    session_assignments: Vec<(String, Span)>,
}

type CResult<T> = Result<T, SyntaxError>;

/// Selectors with a fast-path bytecode, and the bytecode for a given send site.
type SpecialSend = (&'static str, fn(u16) -> Op);

const SPECIAL_BINARY: &[SpecialSend] = &[
    ("+", Op::Add),
    ("-", Op::Sub),
    ("*", Op::Mul),
    ("<", Op::Lt),
    (">", Op::Gt),
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("=", Op::Eq),
    ("at:", Op::At),
];

impl<'a> Compiler<'a> {
    pub fn new(vm: &'a mut Vm, holder: *mut Class, file: &str) -> Compiler<'a> {
        let source = vm.source_index(file);
        Compiler {
            vm,
            holder,
            file: file.to_string(),
            source,
            captured: HashSet::new(),
            needs_ctx: HashSet::new(),
            next_var: 0,
            next_scope: 0,
            scopes: Vec::new(),
            pos: Span { line: 0, col: 0 },
            enclosing: Vec::new(),
            session_variables: false,
            session_assignments: Vec::new(),
        }
    }

    /// Compiles REPL input: an assignment to a name that is neither a variable in
    /// scope nor a field becomes `system global: #name put: value` (sent to the system
    /// object itself), so the name is a global the next input reads as any global
    /// (`unknownGlobal:` while it is unbound). Normal compilation is unaffected.
    pub fn with_session_variables(mut self) -> Compiler<'a> {
        self.session_variables = true;
        self
    }

    /// The undeclared names the last compilation assigned (see
    /// [`Compiler::with_session_variables`]), with where, in source order.
    pub fn session_assignments(&self) -> &[(String, Span)] {
        &self.session_assignments
    }

    /// Compiles a method definition into an immortal [`Method`].
    pub fn compile_method(&mut self, def: &MethodDef) -> CResult<*mut Method> {
        let mark = self.vm.compile_roots.len();
        let method = self.compile_method_def(def);
        // The finished method (a GC root) holds its literals now.
        self.vm.compile_roots.truncate(mark);
        method
    }

    fn compile_method_def(&mut self, def: &MethodDef) -> CResult<*mut Method> {
        let signature = self.vm.symbol(&def.selector);
        let body = match &def.body {
            som_syntax::MethodBody::Primitive => {
                crate::primitives::body(self.vm, self.holder, &def.selector)
            }
            som_syntax::MethodBody::Code(body) => {
                // Pass one: find captured variables.
                self.reset_pass();
                self.method_scope(def, body)?;
                // Pass two: emit.
                self.next_var = 0;
                self.next_scope = 0;
                let method = self.new_method(signature, def.params.len(), None);
                self.enclosing.push(method);
                let code = self.method_scope(def, body);
                self.enclosing.pop();
                // SAFETY: `method` was just created and is immortal.
                unsafe { (*method).body = MethodBody::Code(Box::new(code?)) };
                return Ok(method);
            }
        };
        Ok(self.new_method(signature, def.params.len(), Some(body)))
    }

    /// Compiles REPL input as the body of a unary method `selector` (not installed)
    /// that answers the value of its last statement.
    pub fn compile_body(&mut self, selector: &str, body: &Body) -> CResult<*mut Method> {
        let mut body = body.clone();
        if let Some(last) = body.statements.pop() {
            let span = last.span();
            body.statements.push(match last {
                r @ Expr::Return(..) => r,
                e => Expr::Return(Box::new(e), span),
            });
        }
        let def = MethodDef {
            selector: selector.to_string(),
            params: Vec::new(),
            body: som_syntax::MethodBody::Code(body),
            span: Span { line: 1, col: 1 },
        };
        self.compile_method(&def)
    }

    fn reset_pass(&mut self) {
        self.captured.clear();
        self.needs_ctx.clear();
        self.next_var = 0;
        self.next_scope = 0;
        self.session_assignments.clear();
    }

    fn pass_two(&self) -> bool {
        !self.enclosing.is_empty()
    }

    fn new_method(
        &mut self,
        signature: Value,
        num_args: usize,
        body: Option<MethodBody>,
    ) -> *mut Method {
        let is_prim = matches!(
            body,
            Some(MethodBody::Primitive(_))
                | Some(MethodBody::BlockValue)
                | Some(MethodBody::MissingPrimitive)
        );
        let class = if is_prim {
            self.vm.classes.primitive
        } else {
            self.vm.classes.method
        };
        let hash = self.vm.heap.next_identity_hash();
        let m = Box::leak(Box::new(Method {
            header: Header {
                class: Cell::new(class),
                kind: Kind::Method,
                flags: 0,
                hash,
            },
            signature,
            holder: Cell::new(self.holder),
            num_args,
            body: body.unwrap_or(MethodBody::MissingPrimitive),
            enclosing: self
                .enclosing
                .last()
                .copied()
                .unwrap_or(std::ptr::null_mut()),
        }));
        self.vm.all_methods.push(m);
        m
    }

    fn error<T>(&self, span: Span, message: impl Into<String>) -> CResult<T> {
        Err(SyntaxError {
            file: self.file.clone(),
            span,
            message: message.into(),
        })
    }

    // ---- scopes -------------------------------------------------------------------------

    fn method_scope(&mut self, def: &MethodDef, body: &Body) -> CResult<Code> {
        self.pos = def.span;
        self.open_scope(&def.params, def.span)?;
        self.declare_locals(&body.locals, def.span)?;
        let stmts = &body.statements;
        for (i, s) in stmts.iter().enumerate() {
            if let Expr::Return(e, span) = s {
                self.expr(e)?;
                self.pos = *span;
                self.emit(Op::ReturnLocal);
                break;
            }
            self.statement(s)?;
            if i + 1 == stmts.len() {
                self.emit(Op::ReturnSelf);
            }
        }
        if stmts.is_empty() {
            self.emit(Op::ReturnSelf);
        }
        Ok(self.close_scope(0))
    }

    fn open_scope(&mut self, params: &[String], span: Span) -> CResult<()> {
        let id = self.next_scope;
        self.next_scope += 1;
        self.scopes.push(Scope::new(id, params.len()));
        for (i, p) in params.iter().enumerate() {
            let var_id = self.fresh_var_id();
            let storage = if self.captured.contains(&var_id) {
                let scope = self.scopes.last_mut().unwrap();
                let idx = scope.ctx_size;
                scope.ctx_size += 1;
                scope.captured_args.push((1 + i as u16, idx));
                Storage::Ctx(idx)
            } else {
                Storage::Slot(1 + i as u16)
            };
            if self.scope().vars.iter().any(|v| &v.name == p) {
                return self.error(
                    span,
                    format!("Variable '{p}' shadows another of the same name"),
                );
            }
            self.scope_mut().vars.push(Var {
                name: p.clone(),
                id: var_id,
                storage,
            });
        }
        Ok(())
    }

    fn close_scope(&mut self, block_depth: u8) -> Code {
        let s = self.scopes.pop().expect("scope");
        let context = (self.needs_ctx.contains(&s.id) || s.ctx_size > 0).then_some(ContextShape {
            size: s.ctx_size as usize,
            captured_args: s.captured_args,
        });
        Code {
            ops: s.ops,
            literals: s.literals,
            sites: s.sites,
            num_args: s.num_args,
            num_locals: s.num_locals,
            max_stack: s.max_depth + 1,
            context,
            block_depth,
            invocations: Cell::new(0),
            backedges: (0..s.backedges).map(|_| Cell::new(0)).collect(),
            loops: (0..s.backedges).map(|_| Default::default()).collect(),
            entry: Default::default(),
            positions: s.positions,
            source: self.source,
            depths: s.depths,
            tier1: Cell::new(crate::bytecode::Tier1State::NotCompiled),
        }
    }

    fn scope(&self) -> &Scope {
        self.scopes.last().expect("scope")
    }
    fn scope_mut(&mut self) -> &mut Scope {
        self.scopes.last_mut().expect("scope")
    }

    fn fresh_var_id(&mut self) -> u32 {
        let id = self.next_var;
        self.next_var += 1;
        id
    }

    /// Declares variables in the current activation (a fresh slot or context slot each).
    fn declare_locals(&mut self, names: &[String], span: Span) -> CResult<Vec<Storage>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for n in names {
            if !seen.insert(n) {
                return self.error(
                    span,
                    format!("Variable '{n}' shadows another of the same name"),
                );
            }
            let id = self.fresh_var_id();
            let storage = if self.captured.contains(&id) {
                let s = self.scope_mut();
                s.ctx_size += 1;
                Storage::Ctx(s.ctx_size - 1)
            } else {
                let s = self.scope_mut();
                s.num_locals += 1;
                Storage::Slot((s.num_args + s.num_locals) as u16)
            };
            self.scope_mut().vars.push(Var {
                name: n.clone(),
                id,
                storage,
            });
            out.push(storage);
        }
        Ok(out)
    }

    /// A hidden frame slot (loop counters and limits).
    fn hidden_slot(&mut self) -> u16 {
        let s = self.scope_mut();
        s.num_locals += 1;
        (s.num_args + s.num_locals) as u16
    }

    // ---- emission ---------------------------------------------------------------------

    fn emit(&mut self, op: Op) -> usize {
        let effect: isize = match op {
            Op::Dup
            | Op::PushSlot(_)
            | Op::PushCtx { .. }
            | Op::PushField(_)
            | Op::PushLiteral(_)
            | Op::PushInt(_)
            | Op::PushNil
            | Op::PushTrue
            | Op::PushFalse
            | Op::PushGlobal(_)
            | Op::PushBlock(_) => 1,
            Op::Pop | Op::StoreSlot(_) | Op::StoreCtx { .. } | Op::StoreField(_) => -1,
            Op::Send(s) | Op::SuperSend(s) => -(self.scope().sites[s as usize].argc as isize),
            Op::Add(_)
            | Op::Sub(_)
            | Op::Mul(_)
            | Op::Lt(_)
            | Op::Gt(_)
            | Op::Le(_)
            | Op::Ge(_)
            | Op::Eq(_)
            | Op::At(_) => -1,
            Op::AtPut(_) => -2,
            Op::ReturnLocal | Op::ReturnNonLocal(_) => -1,
            Op::JumpIf { mode, .. } => {
                if mode == JumpMode::Pop {
                    -1
                } else {
                    // Taken: stays; not taken: popped. The fall-through path is what
                    // the emitter continues with.
                    -1
                }
            }
            Op::ReturnSelf
            | Op::Jump(_)
            | Op::BackJump { .. }
            | Op::ForTest { .. }
            | Op::ForStep { .. }
            | Op::JumpIfNil { .. } => 0,
        };
        let pos = self.pos;
        let s = self.scope_mut();
        s.ops.push(op);
        s.positions.push(pos);
        s.depths.push(s.depth as u16);
        s.depth = (s.depth as isize + effect).max(0) as usize;
        s.max_depth = s.max_depth.max(s.depth);
        s.ops.len() - 1
    }

    fn pc(&self) -> u32 {
        self.scope().ops.len() as u32
    }

    fn set_depth(&mut self, d: usize) {
        let s = self.scope_mut();
        s.depth = d;
        s.max_depth = s.max_depth.max(d);
    }
    fn depth(&self) -> usize {
        self.scope().depth
    }

    /// Points the jump at `at` to the current pc.
    fn patch(&mut self, at: usize) {
        let here = self.pc();
        match &mut self.scope_mut().ops[at] {
            Op::Jump(t)
            | Op::JumpIf { target: t, .. }
            | Op::JumpIfNil { target: t, .. }
            | Op::ForTest { exit: t, .. } => *t = here,
            other => unreachable!("patching {other:?}"),
        }
    }

    fn literal(&mut self, v: Value) -> u16 {
        let s = self.scope_mut();
        if let Some(i) = s.literals.iter().position(|&l| l == v) {
            return i as u16;
        }
        s.literals.push(v);
        (s.literals.len() - 1) as u16
    }

    fn site(&mut self, selector: &str, argc: usize, is_super: bool) -> u16 {
        let selector = self.vm.symbol(selector);
        let s = self.scope_mut();
        s.sites.push(SendSite {
            selector,
            argc: argc as u8,
            is_super,
            cache_class: Cell::new(std::ptr::null_mut()),
            cache_method: Cell::new(std::ptr::null_mut()),
            misses: Cell::new(0),
            seen: Default::default(),
        });
        (s.sites.len() - 1) as u16
    }

    // ---- statements and expressions ------------------------------------------------------

    /// Compiles a statement whose value is dropped.
    fn statement(&mut self, e: &Expr) -> CResult<()> {
        if let Expr::Assign(name, value, span) = e {
            if self.is_session_variable(name) {
                return self.session_store(name, value, *span, false);
            }
            self.expr(value)?;
            self.pos = *span;
            return self.store(name, *span);
        }
        self.expr(e)?;
        self.emit(Op::Pop);
        Ok(())
    }

    /// Compiles `e`, leaving its value on the stack.
    fn expr(&mut self, e: &Expr) -> CResult<()> {
        self.pos = e.span();
        match e {
            Expr::Var(name, span) => self.read(name, *span),
            Expr::Assign(name, value, span) if self.is_session_variable(name) => {
                self.session_store(name, value, *span, true)
            }
            Expr::Assign(name, value, span) => {
                self.expr(value)?;
                self.emit(Op::Dup);
                self.store(name, *span)
            }
            Expr::Literal(lit, _) => {
                match lit {
                    Literal::Integer(i) => {
                        if let Some(small) = num_traits::ToPrimitive::to_i32(i) {
                            self.emit(Op::PushInt(small));
                            return Ok(());
                        }
                    }
                    Literal::Symbol(_) | Literal::String(_) | Literal::Double(_) => {}
                    Literal::Array(_) => {}
                }
                let v = self.literal_value(lit);
                let idx = self.literal(v);
                self.emit(Op::PushLiteral(idx));
                Ok(())
            }
            Expr::Block(b) => self.block(b),
            Expr::Return(_, span) => self.error(*span, "'^' may only start the last statement"),
            Expr::Send {
                receiver,
                selector,
                args,
                ..
            } => self.send(receiver, selector, args),
        }
    }

    /// The value of a literal, kept alive (`Vm::compile_roots`) until the method that
    /// will hold it is finished.
    fn literal_value(&mut self, lit: &Literal) -> Value {
        let v = match lit {
            Literal::Integer(i) => self.vm.integer(i.clone()),
            Literal::Double(d) => self.vm.double(*d),
            Literal::String(s) => self.vm.alloc_string(s),
            Literal::Symbol(s) => self.vm.symbol(s),
            Literal::Array(items) => {
                let vals: Vec<Value> = items.iter().map(|l| self.literal_value(l)).collect();
                self.vm.alloc_array_from(&vals)
            }
        };
        self.vm.compile_roots.push(v);
        v
    }

    /// Finds a variable: (index of the declaring scope, its storage, its id).
    fn resolve(&self, name: &str) -> Option<(usize, Storage, u32)> {
        for (si, scope) in self.scopes.iter().enumerate().rev() {
            if let Some(v) = scope.vars.iter().rev().find(|v| v.name == name) {
                return Some((si, v.storage, v.id));
            }
        }
        None
    }

    /// Records, in pass one, that the current scope reaches `levels` scopes out.
    fn note_outer_access(&mut self, declaring: usize, var_id: Option<u32>) {
        let cur = self.scopes.len() - 1;
        if declaring == cur {
            return;
        }
        if let Some(id) = var_id {
            self.captured.insert(id);
        }
        for si in declaring..cur {
            let id = self.scopes[si].id;
            self.needs_ctx.insert(id);
        }
    }

    fn field_index(&self, name: &str) -> Option<u16> {
        // SAFETY: classes are immortal.
        let fields = unsafe { &(*self.holder).instance_fields };
        fields
            .iter()
            .rposition(|&f| self.vm.str_of(f) == name)
            .map(|i| i as u16)
    }

    /// The instruction that reads (or, with `store`, pops into) a local, argument,
    /// captured variable or field named `name`; `None` for globals.
    fn variable_op(&mut self, name: &str, store: bool) -> Option<Op> {
        if let Some((si, storage, id)) = self.resolve(name) {
            self.note_outer_access(si, Some(id));
            let level = (self.scopes.len() - 1 - si) as u8;
            return Some(match (storage, store) {
                (Storage::Slot(n), false) if level == 0 => Op::PushSlot(n),
                (Storage::Slot(n), true) if level == 0 => Op::StoreSlot(n),
                // An outer variable still in a slot: pass one, before it is known to
                // be captured. Pass two puts it in the context.
                (Storage::Slot(_), false) => Op::PushCtx { level, idx: 0 },
                (Storage::Slot(_), true) => Op::StoreCtx { level, idx: 0 },
                (Storage::Ctx(idx), false) => Op::PushCtx { level, idx },
                (Storage::Ctx(idx), true) => Op::StoreCtx { level, idx },
            });
        }
        let i = self.field_index(name)?;
        Some(if store {
            Op::StoreField(i)
        } else {
            Op::PushField(i)
        })
    }

    fn read(&mut self, name: &str, _span: Span) -> CResult<()> {
        match name {
            "self" | "super" => {
                self.emit(Op::PushSlot(0));
                return Ok(());
            }
            "nil" => {
                self.emit(Op::PushNil);
                return Ok(());
            }
            "true" => {
                self.emit(Op::PushTrue);
                return Ok(());
            }
            "false" => {
                self.emit(Op::PushFalse);
                return Ok(());
            }
            _ => {}
        }
        if let Some(op) = self.variable_op(name, false) {
            self.emit(op);
            return Ok(());
        }
        let sym = self.vm.symbol(name);
        let cell = self.vm.global_cell(sym);
        self.emit(Op::PushGlobal(cell));
        Ok(())
    }

    /// Pops the top of the stack into the variable `name`.
    fn store(&mut self, name: &str, span: Span) -> CResult<()> {
        if matches!(name, "self" | "super" | "nil" | "true" | "false") {
            return self.error(span, format!("cannot assign to '{name}'"));
        }
        if let Some(op) = self.variable_op(name, true) {
            self.emit(op);
            return Ok(());
        }
        self.error(span, format!("No such field '{name}' in class"))
    }

    /// Whether assigning `name` stores a session variable (REPL input only).
    fn is_session_variable(&self, name: &str) -> bool {
        self.session_variables
            && !matches!(name, "self" | "super" | "nil" | "true" | "false")
            && self.resolve(name).is_none()
            && self.field_index(name).is_none()
    }

    /// `name := value` for a session variable: `system global: #name put: value`,
    /// then, when the value is used (`keep`), `system global: #name`.
    fn session_store(&mut self, name: &str, value: &Expr, span: Span, keep: bool) -> CResult<()> {
        if !self.pass_two() {
            self.session_assignments.push((name.to_string(), span));
        }
        let system = self.literal(self.vm.system);
        let symbol = self.literal_value(&Literal::Symbol(name.to_string()));
        let symbol = self.literal(symbol);
        self.emit(Op::PushLiteral(system));
        self.emit(Op::PushLiteral(symbol));
        self.expr(value)?;
        self.pos = span;
        let put = self.site("global:put:", 2, false);
        self.emit(Op::Send(put));
        if keep {
            self.emit(Op::PushLiteral(symbol));
            let get = self.site("global:", 1, false);
            self.emit(Op::Send(get));
        } else {
            self.emit(Op::Pop);
        }
        Ok(())
    }

    fn block(&mut self, b: &BlockDef) -> CResult<()> {
        let depth = self.scopes.len() as u8;
        let outer_pos = self.pos;
        self.open_scope(&b.params, b.span)?;
        self.declare_locals(&b.body.locals, b.span)?;
        self.pos = b.span;
        let stmts = &b.body.statements;
        if stmts.is_empty() {
            self.emit(Op::PushNil);
            self.emit(Op::ReturnLocal);
        }
        for (i, s) in stmts.iter().enumerate() {
            if let Expr::Return(e, span) = s {
                self.expr(e)?;
                self.pos = *span;
                // Every enclosing activation up to the method must keep a context.
                self.note_outer_access(0, None);
                self.emit(Op::ReturnNonLocal(depth));
                break;
            }
            if i + 1 == stmts.len() {
                self.expr(s)?;
                self.emit(Op::ReturnLocal);
            } else {
                self.statement(s)?;
            }
        }
        let code = self.close_scope(depth);
        self.pos = outer_pos;
        if !self.pass_two() {
            // Pass one only needs the shape of the code: no method object.
            let idx = self.literal(self.vm.nil);
            self.emit(Op::PushBlock(idx));
            return Ok(());
        }
        let selector = match b.params.len() {
            0 => "value",
            1 => "value:",
            _ => "value:with:",
        };
        let sig = self.vm.symbol(selector);
        let method = self.new_method(sig, b.params.len(), None);
        // SAFETY: freshly created, immortal.
        unsafe { (*method).body = MethodBody::Code(Box::new(code)) };
        let idx = self.literal(Value::from_ptr(method));
        self.emit(Op::PushBlock(idx));
        Ok(())
    }

    // ---- sends and inlining ---------------------------------------------------------------

    fn send(&mut self, receiver: &Expr, selector: &str, args: &[Expr]) -> CResult<()> {
        if self.try_inline(receiver, selector, args)? {
            return Ok(());
        }
        let is_super = matches!(receiver, Expr::Var(n, _) if n == "super");
        self.expr(receiver)?;
        for a in args {
            self.expr(a)?;
        }
        // A send's position is where its expression starts (backtraces show it).
        self.pos = expression_start(receiver);
        let site = self.site(selector, args.len(), is_super);
        if is_super {
            self.emit(Op::SuperSend(site));
            return Ok(());
        }
        if selector == "at:put:" {
            self.emit(Op::AtPut(site));
            return Ok(());
        }
        if let Some((_, op)) = SPECIAL_BINARY.iter().find(|(s, _)| *s == selector) {
            self.emit(op(site));
        } else {
            self.emit(Op::Send(site));
        }
        Ok(())
    }

    /// Emits an inlined control structure if the send is one (see `inlining`).
    fn try_inline(&mut self, receiver: &Expr, selector: &str, args: &[Expr]) -> CResult<bool> {
        let Some(inlined) = inlining::classify(receiver, selector, args) else {
            return Ok(false);
        };
        match inlined {
            Inlined::If { when, body } => {
                self.expr(receiver)?;
                let d = self.depth();
                let j = self.emit(Op::JumpIf {
                    target: 0,
                    when: !when,
                    mode: JumpMode::NilIfTaken,
                });
                self.inline_body(body, &[])?;
                self.patch(j);
                self.set_depth(d);
            }
            Inlined::IfElse {
                first_when,
                first,
                second,
            } => {
                self.expr(receiver)?;
                let d = self.depth();
                let j = self.emit(Op::JumpIf {
                    target: 0,
                    when: !first_when,
                    mode: JumpMode::Pop,
                });
                self.inline_body(first, &[])?;
                let end = self.emit(Op::Jump(0));
                self.patch(j);
                self.set_depth(d - 1);
                self.inline_body(second, &[])?;
                self.patch(end);
                self.set_depth(d);
            }
            Inlined::AndOr { or, body } => {
                self.expr(receiver)?;
                let d = self.depth();
                let j = self.emit(Op::JumpIf {
                    target: 0,
                    when: or,
                    mode: JumpMode::KeepIfTaken,
                });
                self.inline_body(body, &[])?;
                self.patch(j);
                self.set_depth(d);
            }
            Inlined::While { when, cond, body } => {
                let d = self.depth();
                let head = self.pc();
                self.inline_body(cond, &[])?;
                let exit = self.emit(Op::JumpIf {
                    target: 0,
                    when: !when,
                    mode: JumpMode::Pop,
                });
                self.inline_body(body, &[])?;
                self.emit(Op::Pop);
                self.back_jump(head);
                self.patch(exit);
                self.set_depth(d);
                self.emit(Op::PushNil);
            }
            Inlined::ToDo { down, limit, body } => {
                self.expr(receiver)?;
                let counter = self.hidden_slot();
                let limit_slot = self.hidden_slot();
                self.emit(Op::Dup);
                self.emit(Op::StoreSlot(counter));
                self.expr(limit)?;
                self.emit(Op::StoreSlot(limit_slot));
                let d = self.depth();
                let head = self.pc();
                let test = self.emit(Op::ForTest {
                    counter,
                    limit: limit_slot,
                    exit: 0,
                    down,
                });
                self.inline_body(body, &[counter])?;
                self.emit(Op::Pop);
                self.emit(Op::ForStep { counter, down });
                self.back_jump(head);
                self.patch(test);
                self.set_depth(d);
            }
            Inlined::IfNil { not_nil, body } => {
                self.expr(receiver)?;
                let d = self.depth();
                // The receiver stays as the answer when the block is skipped.
                let j = self.emit(Op::JumpIfNil {
                    target: 0,
                    when: not_nil,
                });
                self.bind_or_pop(body)?;
                self.patch(j);
                self.set_depth(d);
            }
            Inlined::IfNilElse {
                nil_body,
                value_body,
            } => {
                self.expr(receiver)?;
                let d = self.depth();
                let j = self.emit(Op::JumpIfNil {
                    target: 0,
                    when: false,
                });
                self.emit(Op::Pop);
                self.inline_body(nil_body, &[])?;
                let end = self.emit(Op::Jump(0));
                self.patch(j);
                self.set_depth(d);
                self.bind_or_pop(value_body)?;
                self.patch(end);
                self.set_depth(d);
            }
        }
        Ok(true)
    }

    /// With the tested value on the stack: binds it to the block's parameter (if any)
    /// and runs the block body inline.
    fn bind_or_pop(&mut self, body: &BlockDef) -> CResult<()> {
        if body.params.is_empty() {
            self.emit(Op::Pop);
            return self.inline_body(body, &[]);
        }
        let tmp = self.hidden_slot();
        self.emit(Op::StoreSlot(tmp));
        self.inline_body(body, &[tmp])
    }

    fn back_jump(&mut self, head: u32) {
        let counter = self.scope().backedges;
        self.scope_mut().backedges += 1;
        self.emit(Op::BackJump {
            target: head,
            counter,
        });
    }

    /// Compiles a literal block's body in place, leaving its value on the stack. Its
    /// parameters are bound from the frame slots `args`; its locals start as nil.
    fn inline_body(&mut self, b: &BlockDef, args: &[u16]) -> CResult<()> {
        let mark = self.scope().vars.len();
        let mut seen = HashSet::new();
        for p in &b.params {
            if !seen.insert(p) {
                return self.error(
                    b.span,
                    format!("Variable '{p}' shadows another of the same name"),
                );
            }
        }
        let params = self.declare_locals(&b.params, b.span)?;
        for (storage, &src) in params.iter().zip(args) {
            self.emit(Op::PushSlot(src));
            self.store_to(*storage);
        }
        let locals = self.declare_locals(&b.body.locals, b.span)?;
        for storage in locals {
            self.emit(Op::PushNil);
            self.store_to(storage);
        }
        let stmts = &b.body.statements;
        if stmts.is_empty() {
            self.emit(Op::PushNil);
        }
        for (i, s) in stmts.iter().enumerate() {
            if let Expr::Return(e, span) = s {
                self.expr(e)?;
                self.pos = *span;
                let depth = (self.scopes.len() - 1) as u8;
                if depth == 0 {
                    self.emit(Op::ReturnLocal);
                } else {
                    self.note_outer_access(0, None);
                    self.emit(Op::ReturnNonLocal(depth));
                }
                // Unreachable, but keeps the stack shape of "a value was produced".
                self.emit(Op::PushNil);
                break;
            }
            if i + 1 == stmts.len() {
                self.expr(s)?;
            } else {
                self.statement(s)?;
            }
        }
        self.scope_mut().vars.truncate(mark);
        Ok(())
    }

    fn store_to(&mut self, storage: Storage) {
        match storage {
            Storage::Slot(n) => self.emit(Op::StoreSlot(n)),
            Storage::Ctx(idx) => self.emit(Op::StoreCtx { level: 0, idx }),
        };
    }
}
