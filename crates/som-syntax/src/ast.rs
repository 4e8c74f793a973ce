//! The abstract syntax tree of a SOM class file, as the parser produces it and the
//! bytecode compiler (in `som-vm`) consumes it. Every node that can be the subject of a
//! diagnostic carries the [`Span`] where it starts.

use num_bigint::BigInt;

/// A 1-based source position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub line: u32,
    pub col: u32,
}

/// `Name = Super ( |fields| methods ---- |classFields| classMethods )`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassDef {
    pub name: String,
    /// How the superclass was written.
    pub superclass: SuperclassSpec,
    pub instance_fields: Vec<String>,
    /// Where each of `instance_fields` is declared.
    pub instance_field_spans: Vec<Span>,
    pub instance_methods: Vec<MethodDef>,
    pub class_fields: Vec<String>,
    /// Where each of `class_fields` is declared.
    pub class_field_spans: Vec<Span>,
    pub class_methods: Vec<MethodDef>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuperclassSpec {
    /// Nothing written: the superclass is `Object`.
    Default,
    /// `nil`: the class has no superclass (only `Object` does this).
    Nil,
    /// A named superclass.
    Named(String),
}

/// A method: `pattern = ( |locals| body )` or `pattern = primitive`.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodDef {
    /// The full selector: `foo`, `+`, `at:put:`.
    pub selector: String,
    pub params: Vec<String>,
    pub body: MethodBody,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MethodBody {
    Primitive,
    Code(Body),
}

/// Local declarations and statements: the inside of a method or block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Body {
    pub locals: Vec<String>,
    /// Statements in order; only the last may be an [`Expr::Return`].
    pub statements: Vec<Expr>,
}

/// `[ :a :b | |t| statements ]`
#[derive(Debug, Clone, PartialEq)]
pub struct BlockDef {
    pub params: Vec<String>,
    pub body: Body,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A variable read: a local, argument, field or global, or one of the pseudo
    /// variables `self`, `super`, `nil`, `true`, `false`.
    Var(String, Span),
    /// `name := value`. Chained assignments nest.
    Assign(String, Box<Expr>, Span),
    /// A unary, binary or keyword send. A receiver of `Var("super")` is a super send.
    Send {
        receiver: Box<Expr>,
        selector: String,
        args: Vec<Expr>,
        span: Span,
    },
    /// `^ expr`
    Return(Box<Expr>, Span),
    Literal(Literal, Span),
    Block(BlockDef),
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::Var(_, s) | Expr::Assign(_, _, s) | Expr::Return(_, s) | Expr::Literal(_, s) => {
                *s
            }
            Expr::Send { span, .. } => *span,
            Expr::Block(b) => b.span,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Integer(BigInt),
    Double(f64),
    String(String),
    Symbol(String),
    Array(Vec<Literal>),
}
