//! Which sends the compiler inlines (DESIGN section 5): control structures whose block
//! arguments are literal blocks of the right arity. [`classify`] is the one place that
//! decides; the code generator emits what it answers, and the capture analysis below
//! uses it to know which nested blocks will be real closures.
//!
//! Loops are the one subtle case. A real `to:do:` or `whileTrue:` activates its body
//! block afresh on every iteration, so a closure created in the body captures that
//! iteration's variables. Inlined, the body's variables are slots reused by every
//! iteration. So a loop is inlined only if no closure inside its body captures a
//! variable declared by the body (or by blocks inlined into it).

use som_syntax::{BlockDef, Expr};

/// An inlinable send, with the parts the code generator needs.
pub enum Inlined<'a> {
    /// `ifTrue:` (`when` = true) or `ifFalse:`.
    If { when: bool, body: &'a BlockDef },
    /// `ifTrue:ifFalse:` (`first_when` = true) or `ifFalse:ifTrue:`.
    IfElse {
        first_when: bool,
        first: &'a BlockDef,
        second: &'a BlockDef,
    },
    /// `and:` (`or` = false) or `or:`.
    AndOr { or: bool, body: &'a BlockDef },
    /// `whileTrue:` (`when` = true) or `whileFalse:`.
    While {
        when: bool,
        cond: &'a BlockDef,
        body: &'a BlockDef,
    },
    /// `to:do:` or `downTo:do:` (`down` = true).
    ToDo {
        down: bool,
        limit: &'a Expr,
        body: &'a BlockDef,
    },
    /// `ifNil:` (`not_nil` = false) or `ifNotNil:` (body with 0 or 1 parameter).
    IfNil { not_nil: bool, body: &'a BlockDef },
    /// `ifNil:ifNotNil:` or `ifNotNil:ifNil:`.
    IfNilElse {
        nil_body: &'a BlockDef,
        value_body: &'a BlockDef,
    },
}

impl<'a> Inlined<'a> {
    /// The literal blocks compiled inline.
    pub fn blocks(&self) -> Vec<&'a BlockDef> {
        match *self {
            Inlined::If { body, .. }
            | Inlined::AndOr { body, .. }
            | Inlined::ToDo { body, .. }
            | Inlined::IfNil { body, .. } => vec![body],
            Inlined::IfElse { first, second, .. } => vec![first, second],
            Inlined::While { cond, body, .. } => vec![cond, body],
            Inlined::IfNilElse {
                nil_body,
                value_body,
            } => vec![nil_body, value_body],
        }
    }
}

fn literal_block(e: &Expr, params: usize) -> Option<&BlockDef> {
    match e {
        Expr::Block(b) if b.params.len() == params => Some(b),
        _ => None,
    }
}

/// How `receiver selector args` is inlined, or `None` if it is a real send.
pub fn classify<'a>(receiver: &'a Expr, selector: &str, args: &'a [Expr]) -> Option<Inlined<'a>> {
    let arg = |i: usize, params: usize| args.get(i).and_then(|a| literal_block(a, params));
    let inlined = match selector {
        "ifTrue:" | "ifFalse:" => Inlined::If {
            when: selector == "ifTrue:",
            body: arg(0, 0)?,
        },
        "ifTrue:ifFalse:" | "ifFalse:ifTrue:" => Inlined::IfElse {
            first_when: selector == "ifTrue:ifFalse:",
            first: arg(0, 0)?,
            second: arg(1, 0)?,
        },
        "and:" | "or:" => Inlined::AndOr {
            or: selector == "or:",
            body: arg(0, 0)?,
        },
        "whileTrue:" | "whileFalse:" => Inlined::While {
            when: selector == "whileTrue:",
            cond: literal_block(receiver, 0)?,
            body: arg(0, 0)?,
        },
        "to:do:" | "downTo:do:" => Inlined::ToDo {
            down: selector == "downTo:do:",
            limit: args.first()?,
            body: arg(1, 1)?,
        },
        "ifNil:" => Inlined::IfNil {
            not_nil: false,
            body: arg(0, 0)?,
        },
        "ifNotNil:" => Inlined::IfNil {
            not_nil: true,
            body: arg(0, 1).or_else(|| arg(0, 0))?,
        },
        "ifNil:ifNotNil:" => Inlined::IfNilElse {
            nil_body: arg(0, 0)?,
            value_body: arg(1, 1).or_else(|| arg(1, 0))?,
        },
        "ifNotNil:ifNil:" => Inlined::IfNilElse {
            nil_body: arg(1, 0)?,
            value_body: arg(0, 1).or_else(|| arg(0, 0))?,
        },
        _ => return None,
    };
    let is_loop = matches!(inlined, Inlined::While { .. } | Inlined::ToDo { .. });
    if is_loop && captures_loop_variables(&inlined.blocks()) {
        return None;
    }
    Some(inlined)
}

/// One lexical scope seen by the capture analysis.
struct Scope {
    names: Vec<String>,
    /// Declared by the loop body or a block inlined into it.
    in_loop: bool,
    /// A real closure (a block that is not inlined).
    closure: bool,
}

/// Does a closure inside `blocks` capture a variable that `blocks` (or blocks inlined
/// into them) declare?
fn captures_loop_variables(blocks: &[&BlockDef]) -> bool {
    let mut scopes = Vec::new();
    blocks
        .iter()
        .any(|b| block_captures(&mut scopes, b, true, false))
}

fn block_captures(scopes: &mut Vec<Scope>, b: &BlockDef, in_loop: bool, closure: bool) -> bool {
    let names = b.params.iter().chain(&b.body.locals).cloned().collect();
    scopes.push(Scope {
        names,
        in_loop,
        closure,
    });
    let found = b.body.statements.iter().any(|s| expr_captures(scopes, s));
    scopes.pop();
    found
}

fn expr_captures(scopes: &mut Vec<Scope>, e: &Expr) -> bool {
    match e {
        Expr::Var(name, _) => is_captured(scopes, name),
        Expr::Assign(name, value, _) => is_captured(scopes, name) || expr_captures(scopes, value),
        Expr::Return(value, _) => expr_captures(scopes, value),
        Expr::Literal(..) => false,
        Expr::Block(b) => block_captures(scopes, b, false, true),
        Expr::Send {
            receiver,
            selector,
            args,
            ..
        } => {
            let in_loop = scopes.last().is_some_and(|s| s.in_loop);
            match classify(receiver, selector, args) {
                Some(inlined) => {
                    let blocks = inlined.blocks();
                    let is_inlined = |e: &Expr| {
                        blocks
                            .iter()
                            .any(|b| matches!(e, Expr::Block(x) if std::ptr::eq(x, *b)))
                    };
                    std::iter::once(&**receiver)
                        .chain(args)
                        .any(|part| match part {
                            Expr::Block(b) if is_inlined(part) => {
                                block_captures(scopes, b, in_loop, false)
                            }
                            other => expr_captures(scopes, other),
                        })
                }
                None => {
                    expr_captures(scopes, receiver) || args.iter().any(|a| expr_captures(scopes, a))
                }
            }
        }
    }
}

/// Is `name`, read or written here, a loop variable seen from inside a closure?
fn is_captured(scopes: &[Scope], name: &str) -> bool {
    let mut crossed_closure = false;
    for s in scopes.iter().rev() {
        if s.names.iter().any(|n| n == name) {
            return s.in_loop && crossed_closure;
        }
        crossed_closure |= s.closure;
    }
    false
}
