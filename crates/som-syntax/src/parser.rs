//! The parser: tokens (from [`crate::lexer`]) -> AST ([`crate::ast`]), by recursive
//! descent.
//!
//! Data flow: [`parse_class`] and [`parse_repl_input`] lex the whole input into a token
//! vector first (if lexing fails, the vector ends at the bad token and the error is held
//! back until the parser reaches that point, so the first error in the text is the one
//! reported). The parser then walks the vector with a cursor; it usually decides on the
//! current token alone and looks two tokens ahead in only two places: `name :=` starts
//! an assignment, and `| name =` / `|| name =` at the top of a class body is the binary
//! method `|` or `||`, not a field list. It stops at the first error, which points at
//! the offending token.
//!
//! Besides the grammar, the parser rejects what the AST cannot represent or the VM
//! should not have to check: assignments to pseudo-variables, a name declared twice in
//! one argument list or `| ... |` declaration, pseudo-variables used as declared names.
//! It also bounds recursion (nesting of parentheses, blocks, literal arrays and
//! assignment chains) and the height of every expression tree it builds, so that no
//! input can overflow the native stack here or in the compiler that walks the AST.

use crate::ast::*;
use crate::diagnostic::SyntaxError;
use crate::lexer::{Lexer, Tok};
use num_bigint::BigInt;

type PResult<T> = Result<T, SyntaxError>;

/// Parses a class file: `Name = [Super] ( |fields| methods ---- |fields| methods )`.
pub fn parse_class(source: &str, file: &str) -> PResult<ClassDef> {
    let mut p = Parser::new(source, file)?;
    let class = p.class()?;
    p.expect_eof()?;
    Ok(class)
}

/// Parses REPL input: optional `| locals |`, then statements separated by periods, the
/// last of which may be a `^` return.
pub fn parse_repl_input(source: &str, file: &str) -> PResult<Body> {
    let mut p = Parser::new(source, file)?;
    let body = p.body(&Tok::Eof)?;
    p.expect_eof()?;
    Ok(body)
}

/// The deepest nesting of parentheses, blocks, literal arrays and chained assignments
/// the parser recurses into. At this depth the parser needs about 1 MB of native stack
/// in the workspace's dev profile, half of a default Rust thread's.
const MAX_DEPTH: usize = 500;

/// The greatest height of an expression tree the parser builds (a chain of n sends is
/// a tree n high), which bounds the recursion of whatever walks the AST.
const MAX_HEIGHT: usize = 1000;

/// Names that can be neither assigned nor declared.
const PSEUDO_VARIABLES: &[&str] = &["self", "super", "nil", "true", "false"];

/// An expression and the height of its tree (a variable is 1 high).
type Node = (Expr, usize);

struct Parser<'a> {
    /// All tokens; the last is always [`Tok::Eof`], a stand-in for the bad token when
    /// `lex_error` is set.
    tokens: Vec<(Tok, Span)>,
    /// Index of the current token.
    pos: usize,
    /// The lexical error that ended the token vector, reported when the cursor
    /// reaches the last token.
    lex_error: Option<SyntaxError>,
    file: &'a str,
    /// Current recursion depth (see [`MAX_DEPTH`]).
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(source: &str, file: &'a str) -> PResult<Parser<'a>> {
        let mut lexer = Lexer::new(source, file);
        let mut tokens = Vec::new();
        let mut lex_error = None;
        loop {
            match lexer.next_token() {
                Ok((Tok::Eof, span)) => {
                    tokens.push((Tok::Eof, span));
                    break;
                }
                Ok(token) => tokens.push(token),
                Err(e) => {
                    tokens.push((Tok::Eof, e.span));
                    lex_error = Some(e);
                    break;
                }
            }
        }
        let p = Parser {
            tokens,
            pos: 0,
            lex_error,
            file,
            depth: 0,
        };
        p.check_lex_error()?;
        Ok(p)
    }

    // ---- the token cursor -------------------------------------------------------------

    fn tok(&self) -> &Tok {
        &self.tokens[self.pos].0
    }

    fn span(&self) -> Span {
        self.tokens[self.pos].1
    }

    /// The token `n` places after the current one ([`Tok::Eof`] past the end).
    fn peek(&self, n: usize) -> &Tok {
        let i = (self.pos + n).min(self.tokens.len() - 1);
        &self.tokens[i].0
    }

    /// Moves to the next token and returns the current one. Fails when the next
    /// token is where lexing failed.
    fn advance(&mut self) -> PResult<(Tok, Span)> {
        let span = self.span();
        let tok = std::mem::replace(&mut self.tokens[self.pos].0, Tok::Eof);
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        self.check_lex_error()?;
        Ok((tok, span))
    }

    fn check_lex_error(&self) -> PResult<()> {
        match &self.lex_error {
            Some(e) if self.pos + 1 == self.tokens.len() => Err(e.clone()),
            _ => Ok(()),
        }
    }

    fn error<T>(&self, span: Span, message: impl Into<String>) -> PResult<T> {
        Err(SyntaxError {
            file: self.file.to_string(),
            span,
            message: message.into(),
        })
    }

    /// "expected `what` but found <the current token>", at the current token.
    fn unexpected<T>(&self, what: &str) -> PResult<T> {
        self.error(
            self.span(),
            format!("expected {what} but found {}", self.tok().describe()),
        )
    }

    /// Consumes `tok` or fails with "expected `what`".
    fn expect(&mut self, tok: &Tok, what: &str) -> PResult<Span> {
        if self.tok() == tok {
            Ok(self.advance()?.1)
        } else {
            self.unexpected(what)
        }
    }

    fn expect_operator(&mut self, op: &str, what: &str) -> PResult<Span> {
        if self.tok().is_operator(op) {
            Ok(self.advance()?.1)
        } else {
            self.unexpected(what)
        }
    }

    fn expect_eof(&self) -> PResult<()> {
        if *self.tok() == Tok::Eof {
            Ok(())
        } else {
            self.unexpected("end of input")
        }
    }

    fn at_bar(&self) -> bool {
        self.tok().is_operator("|")
    }

    /// Consumes an identifier (`primitive` included) or fails with "expected `what`".
    fn identifier(&mut self, what: &str) -> PResult<(String, Span)> {
        if !matches!(self.tok(), Tok::Ident(_)) {
            return self.unexpected(what);
        }
        match self.advance()? {
            (Tok::Ident(name), span) => Ok((name, span)),
            _ => unreachable!("checked above"),
        }
    }

    // ---- bounds on nesting ------------------------------------------------------------

    /// Enters one level of recursion at `span`; pair with [`Parser::leave`].
    fn enter(&mut self, span: Span, what: &str) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.error(span, format!("{what} nested too deeply"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// `height`, unless that is more than the compiler should have to recurse.
    fn check_height(&self, height: usize, span: Span) -> PResult<usize> {
        if height > MAX_HEIGHT {
            return self.error(span, "expression nested too deeply");
        }
        Ok(height)
    }

    // ---- classes and methods ----------------------------------------------------------

    fn class(&mut self) -> PResult<ClassDef> {
        let (name, span) = self.identifier("a class name")?;
        self.expect_operator("=", "'=' after the class name")?;
        let superclass = match self.tok() {
            Tok::Ident(s) if s == "nil" => {
                self.advance()?;
                SuperclassSpec::Nil
            }
            Tok::Ident(_) => SuperclassSpec::Named(self.identifier("a superclass name")?.0),
            Tok::LParen => SuperclassSpec::Default,
            _ => return self.unexpected("a superclass name or '('"),
        };
        self.expect(&Tok::LParen, "'(' to open the class body")?;

        let (instance_fields, instance_field_spans) = self.fields()?;
        let mut instance_methods = Vec::new();
        while !matches!(self.tok(), Tok::Separator | Tok::RParen) {
            instance_methods.push(self.method("a method, '----' or ')'")?);
        }
        let (mut class_fields, mut class_field_spans) = (Vec::new(), Vec::new());
        let mut class_methods = Vec::new();
        if *self.tok() == Tok::Separator {
            self.advance()?;
            (class_fields, class_field_spans) = self.fields()?;
            while *self.tok() != Tok::RParen {
                class_methods.push(self.method("a method or ')'")?);
            }
        }
        self.expect(&Tok::RParen, "')' to close the class body")?;
        Ok(ClassDef {
            name,
            superclass,
            instance_fields,
            instance_field_spans,
            instance_methods,
            class_fields,
            class_field_spans,
            class_methods,
            span,
        })
    }

    /// The field list at the top of either side of a class body. `| name =` and
    /// `|| name =` there start the binary methods `|` and `||`, not a field list.
    /// Answers the names and where each is declared.
    fn fields(&mut self) -> PResult<(Vec<String>, Vec<Span>)> {
        let bar = self.at_bar() || self.tok().is_operator("||");
        if bar && matches!(self.peek(1), Tok::Ident(_)) && self.peek(2).is_operator("=") {
            return Ok((Vec::new(), Vec::new()));
        }
        self.declarations_with_spans("field")
    }

    /// `| a b c |` if present (`||` is an empty list), an empty list otherwise.
    fn declarations(&mut self) -> PResult<Vec<String>> {
        Ok(self.declarations_with_spans("variable")?.0)
    }

    /// `| names |` (or `||`, or nothing) declaring `kind`s: the names and their spans.
    fn declarations_with_spans(&mut self, kind: &str) -> PResult<(Vec<String>, Vec<Span>)> {
        if self.tok().is_operator("||") {
            self.advance()?;
            return Ok((Vec::new(), Vec::new()));
        }
        if !self.at_bar() {
            return Ok((Vec::new(), Vec::new()));
        }
        self.advance()?;
        self.names_until_bar(kind)
    }

    /// The names of a declaration after its opening bar, and the closing bar.
    fn names_until_bar(&mut self, kind: &str) -> PResult<(Vec<String>, Vec<Span>)> {
        let mut names = Vec::new();
        let mut spans = Vec::new();
        while !self.at_bar() {
            let (name, span) = self.identifier("a variable name or '|'")?;
            self.declare(&mut names, name, span, kind)?;
            spans.push(span);
        }
        self.advance()?;
        Ok((names, spans))
    }

    /// Adds `name` to a declaration list, rejecting duplicates and pseudo-variables.
    fn declare(
        &self,
        names: &mut Vec<String>,
        name: String,
        span: Span,
        kind: &str,
    ) -> PResult<()> {
        if PSEUDO_VARIABLES.contains(&name.as_str()) {
            let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            return self.error(
                span,
                format!("'{name}' cannot be used as {article} {kind} name"),
            );
        }
        if names.contains(&name) {
            return self.error(
                span,
                if kind == "field" {
                    format!("Field '{name}' has already been defined in this class.")
                } else {
                    format!("Variable '{name}' shadows another of the same name")
                },
            );
        }
        names.push(name);
        Ok(())
    }

    /// `pattern = primitive` or `pattern = ( |locals| statements )`. `what` describes
    /// what may stand here, for the error when no pattern does.
    fn method(&mut self, what: &str) -> PResult<MethodDef> {
        let span = self.span();
        let (selector, params) = self.pattern(what)?;
        self.expect_operator("=", "'=' after the method pattern")?;
        let body = match self.tok() {
            Tok::Ident(s) if s == "primitive" => {
                self.advance()?;
                MethodBody::Primitive
            }
            Tok::LParen => {
                self.advance()?;
                let body = self.body(&Tok::RParen)?;
                self.expect(&Tok::RParen, "')' to close the method")?;
                MethodBody::Code(body)
            }
            _ => return self.unexpected("'(' or 'primitive' after '='"),
        };
        Ok(MethodDef {
            selector,
            params,
            body,
            span,
        })
    }

    /// A unary (`foo`), binary (`+ x`) or keyword (`at: i put: v`) pattern.
    fn pattern(&mut self, what: &str) -> PResult<(String, Vec<String>)> {
        let mut params = Vec::new();
        match self.tok() {
            Tok::Ident(_) => Ok((self.identifier(what)?.0, params)),
            Tok::Operator(_) => {
                let (Tok::Operator(selector), _) = self.advance()? else {
                    unreachable!("checked above")
                };
                let (name, span) = self.identifier("an argument name")?;
                self.declare(&mut params, name, span, "argument")?;
                Ok((selector, params))
            }
            Tok::Keyword(_) => {
                let mut selector = String::new();
                while let Tok::Keyword(part) = self.tok() {
                    selector.push_str(part);
                    self.advance()?;
                    let (name, span) = self.identifier("an argument name")?;
                    self.declare(&mut params, name, span, "argument")?;
                }
                Ok((selector, params))
            }
            _ => self.unexpected(what),
        }
    }

    // ---- bodies and statements ----------------------------------------------------------

    /// Locals and statements up to (not including) `end`.
    fn body(&mut self, end: &Tok) -> PResult<Body> {
        let locals = self.declarations()?;
        let (statements, _) = self.statements(end)?;
        Ok(Body { locals, statements })
    }

    /// Statements up to (not including) `end`, and the height of the tallest.
    fn statements(&mut self, end: &Tok) -> PResult<(Vec<Expr>, usize)> {
        let mut statements = Vec::new();
        let mut height = 0;
        while self.tok() != end {
            if *self.tok() == Tok::Caret {
                let (_, span) = self.advance()?;
                let (value, h) = self.expression()?;
                height = height.max(self.check_height(h + 1, span)?);
                statements.push(Expr::Return(Box::new(value), span));
                if *self.tok() == Tok::Period {
                    self.advance()?;
                }
                if self.tok() != end {
                    let what = format!("{} after the return statement", end.describe());
                    return self.unexpected(&what);
                }
                break;
            }
            if *self.tok() == Tok::Period {
                return self.unexpected("a statement");
            }
            let (e, h) = self.expression()?;
            statements.push(e);
            height = height.max(h);
            if *self.tok() == Tok::Period {
                self.advance()?;
            } else if self.tok() != end {
                return self.unexpected(&format!("'.' or {}", end.describe()));
            }
        }
        Ok((statements, height))
    }

    // ---- expressions ------------------------------------------------------------------

    /// An assignment (`a := b := expr`) or a primary followed by messages.
    fn expression(&mut self) -> PResult<Node> {
        if matches!(self.tok(), Tok::Ident(_)) && *self.peek(1) == Tok::Assign {
            let (name, span) = self.identifier("a variable name")?;
            if PSEUDO_VARIABLES.contains(&name.as_str()) {
                return self.error(span, format!("cannot assign to '{name}'"));
            }
            self.advance()?;
            self.enter(span, "assignment chain")?;
            let value = self.expression();
            self.leave();
            let (value, h) = value?;
            let h = self.check_height(h + 1, span)?;
            return Ok((Expr::Assign(name, Box::new(value), span), h));
        }
        let primary = self.primary()?;
        let receiver = self.binary_sends(primary)?;
        self.keyword_send(receiver)
    }

    fn send(&self, receiver: Node, selector: String, args: Vec<Node>, span: Span) -> PResult<Node> {
        let tallest = args.iter().map(|a| a.1).fold(receiver.1, usize::max);
        let height = self.check_height(tallest + 1, span)?;
        let send = Expr::Send {
            receiver: Box::new(receiver.0),
            selector,
            args: args.into_iter().map(|a| a.0).collect(),
            span,
        };
        Ok((send, height))
    }

    /// `receiver key1: arg1 key2: arg2` (if a keyword follows), where each argument
    /// is a binary expression.
    fn keyword_send(&mut self, receiver: Node) -> PResult<Node> {
        if !matches!(self.tok(), Tok::Keyword(_)) {
            return Ok(receiver);
        }
        let span = self.span();
        let mut selector = String::new();
        let mut args = Vec::new();
        while let Tok::Keyword(part) = self.tok() {
            selector.push_str(part);
            self.advance()?;
            let operand = self.primary()?;
            args.push(self.binary_sends(operand)?);
        }
        self.send(receiver, selector, args, span)
    }

    /// Unary sends, then binary sends whose arguments are primaries with unary sends.
    fn binary_sends(&mut self, receiver: Node) -> PResult<Node> {
        let mut receiver = self.unary_sends(receiver)?;
        while let Tok::Operator(_) = self.tok() {
            let (Tok::Operator(selector), span) = self.advance()? else {
                unreachable!("checked above")
            };
            let operand = self.primary()?;
            let arg = self.unary_sends(operand)?;
            receiver = self.send(receiver, selector, vec![arg], span)?;
        }
        Ok(receiver)
    }

    fn unary_sends(&mut self, mut receiver: Node) -> PResult<Node> {
        while let Tok::Ident(_) = self.tok() {
            let (selector, span) = self.identifier("a unary selector")?;
            receiver = self.send(receiver, selector, Vec::new(), span)?;
        }
        Ok(receiver)
    }

    /// A variable, literal, block or parenthesised expression.
    fn primary(&mut self) -> PResult<Node> {
        self.enter(self.span(), "expression")?;
        let node = self.primary_inner();
        self.leave();
        node
    }

    fn primary_inner(&mut self) -> PResult<Node> {
        let span = self.span();
        match self.tok() {
            Tok::Ident(_) => {
                let (name, span) = self.identifier("a variable")?;
                Ok((Expr::Var(name, span), 1))
            }
            Tok::LParen => {
                self.advance()?;
                let inner = self.expression()?;
                self.expect(&Tok::RParen, "')'")?;
                Ok(inner)
            }
            Tok::LBracket => self.block(),
            Tok::Operator(op) if op == "-" => {
                self.advance()?;
                Ok((Expr::Literal(self.number(true)?, span), 1))
            }
            Tok::Integer(_) | Tok::Double(_) => Ok((Expr::Literal(self.number(false)?, span), 1)),
            Tok::Str(_) | Tok::Symbol(_) => match self.advance()?.0 {
                Tok::Str(s) => Ok((Expr::Literal(Literal::String(s), span), 1)),
                Tok::Symbol(s) => Ok((Expr::Literal(Literal::Symbol(s), span), 1)),
                _ => unreachable!("checked above"),
            },
            Tok::ArrayStart => {
                let (array, h) = self.literal_array()?;
                let h = self.check_height(h + 1, span)?;
                Ok((Expr::Literal(array, span), h))
            }
            _ => self.unexpected("an expression"),
        }
    }

    /// `[ :a :b | |locals| statements ]`
    fn block(&mut self) -> PResult<Node> {
        let span = self.expect(&Tok::LBracket, "'['")?;
        let mut params = Vec::new();
        while *self.tok() == Tok::Colon {
            self.advance()?;
            let (name, name_span) = self.identifier("a block parameter name")?;
            self.declare(&mut params, name, name_span, "argument")?;
        }
        let locals = if params.is_empty() {
            self.declarations()?
        } else if self.tok().is_operator("||") {
            // `[:a || t | ...]`: the bar after the parameters, then a declaration.
            self.advance()?;
            self.names_until_bar("variable")?.0
        } else {
            self.expect_operator("|", "'|' after the block parameters")?;
            self.declarations()?
        };
        let (statements, h) = self.statements(&Tok::RBracket)?;
        self.expect(&Tok::RBracket, "']' to close the block")?;
        let h = self.check_height(h + 1, span)?;
        let body = Body { locals, statements };
        Ok((Expr::Block(BlockDef { params, body, span }), h))
    }

    // ---- literals ---------------------------------------------------------------------

    /// An integer or double (negated when a `-` came before it).
    fn number(&mut self, negative: bool) -> PResult<Literal> {
        match self.tok() {
            Tok::Integer(_) | Tok::Double(_) => {}
            _ => return self.unexpected("a number after '-'"),
        }
        match self.advance()?.0 {
            Tok::Integer(digits) => {
                // The lexer only makes digit strings, which always parse.
                let i: BigInt = digits.parse().unwrap_or_default();
                Ok(Literal::Integer(if negative { -i } else { i }))
            }
            Tok::Double(d) => Ok(Literal::Double(if negative { -d } else { d })),
            _ => unreachable!("checked above"),
        }
    }

    /// `#( ... )` (or a bare nested `( ... )`), with the cursor on the opening token,
    /// and its height (an array of scalars is 1 high).
    fn literal_array(&mut self) -> PResult<(Literal, usize)> {
        let (_, span) = self.advance()?;
        self.enter(span, "literal array")?;
        let mut items = Vec::new();
        let mut height = 0;
        loop {
            let item = match self.tok() {
                Tok::RParen => {
                    self.advance()?;
                    break;
                }
                Tok::Integer(_) | Tok::Double(_) => self.number(false)?,
                Tok::Operator(op) if op == "-" => {
                    self.advance()?;
                    if matches!(self.tok(), Tok::Integer(_) | Tok::Double(_)) {
                        self.number(true)?
                    } else {
                        Literal::Symbol("-".into())
                    }
                }
                Tok::ArrayStart | Tok::LParen => {
                    let (array, h) = self.literal_array()?;
                    height = height.max(h);
                    array
                }
                Tok::Keyword(_) => Literal::Symbol(self.keyword_sequence()?),
                Tok::Ident(_) | Tok::Operator(_) | Tok::Str(_) | Tok::Symbol(_) => {
                    match self.advance()?.0 {
                        Tok::Str(s) => Literal::String(s),
                        Tok::Ident(s) | Tok::Operator(s) | Tok::Symbol(s) => Literal::Symbol(s),
                        _ => unreachable!("checked above"),
                    }
                }
                Tok::Eof => return self.unexpected("')' to close the literal array"),
                _ => return self.unexpected("a literal or ')'"),
            };
            items.push(item);
        }
        self.leave();
        Ok((Literal::Array(items), height + 1))
    }

    /// Keyword tokens written without space between them (`at:put:` inside a literal
    /// array), joined into one selector.
    fn keyword_sequence(&mut self) -> PResult<String> {
        let mut selector = String::new();
        let mut next_col = None;
        while let Tok::Keyword(part) = self.tok() {
            let span = self.span();
            if next_col.is_some_and(|c| c != (span.line, span.col)) {
                break;
            }
            let width = part.chars().count() as u32;
            next_col = Some((span.line, span.col.saturating_add(width)));
            selector.push_str(part);
            self.advance()?;
        }
        Ok(selector)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(src: &str) -> ClassDef {
        parse_class(src, "t.som").unwrap_or_else(|e| panic!("{e}"))
    }

    fn method(src: &str) -> MethodDef {
        class(&format!("T = ( {src} )")).instance_methods.remove(0)
    }

    fn body(src: &str) -> Body {
        match method(&format!("m = ( {src} )")).body {
            MethodBody::Code(b) => b,
            MethodBody::Primitive => unreachable!(),
        }
    }

    fn statements(src: &str) -> Vec<Expr> {
        body(src).statements
    }

    fn one(src: &str) -> Expr {
        let mut s = statements(src);
        assert_eq!(s.len(), 1, "{s:?}");
        s.remove(0)
    }

    /// Expressions in a compact Lisp-like form, for precedence tests.
    fn show(e: &Expr) -> String {
        match e {
            Expr::Var(n, _) => n.clone(),
            Expr::Assign(n, v, _) => format!("({n} := {})", show(v)),
            Expr::Return(v, _) => format!("(^ {})", show(v)),
            Expr::Literal(l, _) => show_literal(l),
            Expr::Send {
                receiver,
                selector,
                args,
                ..
            } => {
                let mut s = format!("({} {selector}", show(receiver));
                for a in args {
                    s.push(' ');
                    s.push_str(&show(a));
                }
                s + ")"
            }
            Expr::Block(b) => {
                let stmts: Vec<String> = b.body.statements.iter().map(show).collect();
                format!("[{:?} {:?} {}]", b.params, b.body.locals, stmts.join(". "))
            }
        }
    }

    fn show_literal(l: &Literal) -> String {
        match l {
            Literal::Integer(i) => i.to_string(),
            Literal::Double(d) => format!("{d:?}"),
            Literal::String(s) => format!("'{s}'"),
            Literal::Symbol(s) => format!("#{s}"),
            Literal::Array(items) => {
                let items: Vec<String> = items.iter().map(show_literal).collect();
                format!("#({})", items.join(" "))
            }
        }
    }

    fn shown(src: &str) -> String {
        show(&one(src))
    }

    fn repl(src: &str) -> Body {
        parse_repl_input(src, "repl").unwrap_or_else(|e| panic!("{e}"))
    }

    /// The error for a class source, as `line:col: message`.
    fn error(src: &str) -> String {
        let e = parse_class(src, "t.som").expect_err(src);
        format!("{}:{}: {}", e.span.line, e.span.col, e.message)
    }

    fn error_at(src: &str) -> (u32, u32) {
        let e = parse_class(src, "t.som").expect_err(src);
        (e.span.line, e.span.col)
    }

    fn sp(line: u32, col: u32) -> Span {
        Span { line, col }
    }

    // ---- classes and methods --------------------------------------------------------

    #[test]
    fn class_structure() {
        let c =
            class("Foo = Bar ( |a b| x = ( ^ a ) + y = primitive ---- |c| new = ( ^ super new ) )");
        assert_eq!(c.name, "Foo");
        assert_eq!(c.superclass, SuperclassSpec::Named("Bar".into()));
        assert_eq!(c.instance_fields, vec!["a", "b"]);
        assert_eq!(c.instance_methods.len(), 2);
        assert_eq!(c.instance_methods[0].selector, "x");
        assert_eq!(c.instance_methods[1].selector, "+");
        assert_eq!(c.instance_methods[1].params, vec!["y"]);
        assert_eq!(c.instance_methods[1].body, MethodBody::Primitive);
        assert_eq!(c.class_fields, vec!["c"]);
        assert_eq!(c.class_methods[0].selector, "new");
        assert_eq!(class("Object = nil ( )").superclass, SuperclassSpec::Nil);
        let c = class("X = ( )");
        assert_eq!(c.superclass, SuperclassSpec::Default);
        assert!(c.instance_fields.is_empty() && c.instance_methods.is_empty());
        assert!(c.class_fields.is_empty() && c.class_methods.is_empty());
        // An empty class side, and lower-case class names with digits and `_`.
        let c = class("int_1 = ( ---- )");
        assert_eq!(c.name, "int_1");
        let c = class("X = ( ---- || )");
        assert!(c.class_fields.is_empty());
    }

    #[test]
    fn method_patterns() {
        let m = method("at: i put: v = ( )");
        assert_eq!(m.selector, "at:put:");
        assert_eq!(m.params, vec!["i", "v"]);
        for op in [
            "+", "-", "=", "==", "~=", "<=", ",", "@", "%", "\\", "&", "|", "->", "--",
        ] {
            let m = method(&format!("{op} other = ( ^ other )"));
            assert_eq!(m.selector, op);
            assert_eq!(m.params, vec!["other"]);
        }
        assert_eq!(method("run = primitive").body, MethodBody::Primitive);
        // `primitive` is an identifier everywhere else.
        let m = method("primitive: primitive = ( |x| ^ primitive )");
        assert_eq!(m.selector, "primitive:");
        assert_eq!(m.params, vec!["primitive"]);
        let m = method("primitive = ( ^ #primitive )");
        assert_eq!(m.selector, "primitive");
        let MethodBody::Code(b) = m.body else {
            unreachable!()
        };
        assert_eq!(show(&b.statements[0]), "(^ #primitive)");
    }

    #[test]
    fn bar_methods_first_in_a_class_body_are_not_field_lists() {
        let c = class("B = ( | other = ( ^ other ) & other = ( ^ other ) )");
        assert!(c.instance_fields.is_empty());
        assert_eq!(c.instance_methods[0].selector, "|");
        assert_eq!(c.instance_methods[1].selector, "&");
        let c = class("B = ( || other = ( ) ---- | x = ( ) )");
        assert!(c.instance_fields.is_empty());
        assert_eq!(c.instance_methods[0].selector, "||");
        assert_eq!(c.class_methods[0].selector, "|");
        let c = class("B = ( | a | | other = ( ) )");
        assert_eq!(c.instance_fields, vec!["a"]);
        assert_eq!(c.instance_methods[0].selector, "|");
        let c = class("B = ( || foo = ( ) )");
        assert_eq!(c.instance_methods[0].selector, "||");
        assert_eq!(c.instance_methods[0].params, vec!["foo"]);
        let c = class("B = ( || foo: x = ( ) )");
        assert_eq!(c.instance_methods[0].selector, "foo:");
    }

    #[test]
    fn separator_versus_dash_operators() {
        let c = class("T = ( -- a = ( ^ 1 ) --> b = ( ^ 2 ) --- c = ( ) ---- - d = ( ) )");
        let sels: Vec<&str> = c
            .instance_methods
            .iter()
            .map(|m| m.selector.as_str())
            .collect();
        assert_eq!(sels, vec!["--", "-->", "---"]);
        assert_eq!(c.class_methods[0].selector, "-");
        let c = class("T = ( a = ( ^ 1 -- 2 ) ------- b = ( ^ 1 --> 2 ) )");
        let MethodBody::Code(b) = &c.class_methods[0].body else {
            unreachable!()
        };
        assert_eq!(show(&b.statements[0]), "(^ (1 --> 2))");
    }

    // ---- statements and expressions -------------------------------------------------

    #[test]
    fn statements_periods_and_returns() {
        assert_eq!(statements("").len(), 0);
        assert_eq!(statements("a").len(), 1);
        assert_eq!(statements("a.").len(), 1);
        assert_eq!(statements("a. b").len(), 2);
        assert_eq!(statements("a. b.").len(), 2);
        assert_eq!(statements("^ a").len(), 1);
        assert_eq!(statements("a. ^ b.").len(), 2);
        assert!(matches!(one("^ a"), Expr::Return(..)));
        let b = body("| a b | a := 1. ^ a");
        assert_eq!(b.locals, vec!["a", "b"]);
        assert!(body("|| ^ 1").locals.is_empty());
        assert!(body("| | ^ 1").locals.is_empty());
    }

    #[test]
    fn precedence_unary_binary_keyword() {
        assert_eq!(shown("a foo bar"), "((a foo) bar)");
        assert_eq!(shown("1 + 2 * 3"), "((1 + 2) * 3)");
        assert_eq!(shown("1 + 2 abs"), "(1 + (2 abs))");
        assert_eq!(shown("a foo + b bar"), "((a foo) + (b bar))");
        assert_eq!(
            shown("a foo: b bar + c baz qux: d - e"),
            "(a foo:qux: ((b bar) + (c baz)) (d - e))"
        );
        assert_eq!(shown("a b: (c d: e)"), "(a b: (c d: e))");
        assert_eq!(shown("(a b: c) d: e"), "((a b: c) d: e)");
        assert_eq!(shown("(1 + 2) * 3"), "((1 + 2) * 3)");
        assert_eq!(shown("1 + (2 * 3)"), "(1 + (2 * 3))");
        assert_eq!(shown("((a))"), "a");
        assert_eq!(shown("a | b & c"), "((a | b) & c)");
        assert_eq!(shown("a == b ~= c"), "((a == b) ~= c)");
        assert_eq!(shown("super foo: 1"), "(super foo: 1)");
        assert_eq!(shown("x primitive"), "(x primitive)");
    }

    #[test]
    fn assignments_chain() {
        assert_eq!(shown("a := b := 3 + 4"), "(a := (b := (3 + 4)))");
        assert_eq!(shown("a := b foo: c"), "(a := (b foo: c))");
        assert_eq!(shown("^ a := 1"), "(^ (a := 1))");
        assert_eq!(shown("a := (b := 1) + 2"), "(a := ((b := 1) + 2))");
        assert_eq!(shown("primitive := 1"), "(primitive := 1)");
        // Assigning to an argument is legal.
        let m = method("m: x = ( x := 1 )");
        assert_eq!(m.params, vec!["x"]);
    }

    #[test]
    fn negative_numbers_where_a_literal_is_expected() {
        assert_eq!(shown("x := -5"), "(x := -5)");
        assert_eq!(shown("-2.5 abs"), "(-2.5 abs)");
        assert_eq!(shown("3 + -2"), "(3 + -2)");
        assert_eq!(shown("3 - -2"), "(3 - -2)");
        assert_eq!(shown("3-2"), "(3 - 2)");
        assert_eq!(shown("3 -2"), "(3 - 2)");
        assert_eq!(shown("a at: -1"), "(a at: -1)");
        assert_eq!(
            shown("-123456789012345678901234567890"),
            "-123456789012345678901234567890"
        );
        assert!(error("T = ( m = ( ^ - a ) )").contains("expected a number after '-'"));
    }

    #[test]
    fn literals() {
        assert_eq!(shown("42"), "42");
        assert_eq!(
            shown("123456789012345678901234567890"),
            "123456789012345678901234567890"
        );
        assert_eq!(shown("2.5"), "2.5");
        assert_eq!(shown("'it\\'s'"), "'it's'");
        assert_eq!(shown("#foo"), "#foo");
        assert_eq!(shown("#at:put:"), "#at:put:");
        assert_eq!(shown("#+"), "#+");
        assert_eq!(shown("#'hello world'"), "#hello world");
        assert_eq!(shown("#foo:"), "#foo:");
        assert_eq!(shown("#foo: size"), "(#foo: size)");
        // A period after an integer ends the statement.
        assert_eq!(statements("1. 2").len(), 2);
        let Expr::Literal(Literal::Double(d), _) = one("0.1") else {
            unreachable!()
        };
        assert_eq!(d, 0.1);
    }

    #[test]
    fn literal_arrays() {
        assert_eq!(shown("#()"), "#()");
        assert_eq!(
            shown("#(1 -2 3.5 -4.25 'x' #y z #+ #at:put:)"),
            "#(1 -2 3.5 -4.25 'x' #y #z #+ #at:put:)"
        );
        assert_eq!(shown("#(#(1) (2 (3)) #())"), "#(#(1) #(2 #(3)) #())");
        assert_eq!(
            shown("#(foo: at:put: at: put: true nil + - - 1)"),
            "#(#foo: #at:put: #at: #put: #true #nil #+ #- -1)"
        );
        assert_eq!(shown("#(-)"), "#(#-)");
        assert_eq!(shown("#(1-2)"), "#(1 -2)");
        assert_eq!(shown("#(1 - 2)"), "#(1 -2)");
        assert_eq!(shown("#(1) size"), "(#(1) size)");
        assert_eq!(shown("#(1 2) , #(3)"), "(#(1 2) , #(3))");
        let Expr::Literal(Literal::Array(items), _) = one("#(-1 -200.0)") else {
            unreachable!()
        };
        assert_eq!(
            items,
            vec![Literal::Integer((-1).into()), Literal::Double(-200.0)]
        );
        assert!(error("T = ( m = ( #(1 [2]) ) )").contains("expected a literal or ')'"));
        assert_eq!(error_at("T = ( m = ( #(1 #(2"), (1, 20));
    }

    #[test]
    fn blocks() {
        assert_eq!(shown("[]"), "[[] [] ]");
        assert_eq!(shown("[ ]"), "[[] [] ]");
        assert_eq!(shown("[:a | ]"), "[[\"a\"] [] ]");
        assert_eq!(shown("[:a|a]"), "[[\"a\"] [] a]");
        assert_eq!(
            shown("[:a :b | |t u| t := a. b]"),
            "[[\"a\", \"b\"] [\"t\", \"u\"] (t := a). b]"
        );
        assert_eq!(shown("[ |t| t ]"), "[[] [\"t\"] t]");
        assert_eq!(shown("[:a || t | t ]"), "[[\"a\"] [\"t\"] t]");
        assert_eq!(shown("[:a | || a ]"), "[[\"a\"] [] a]");
        assert_eq!(shown("[:x | x | y ]"), "[[\"x\"] [] (x | y)]");
        assert_eq!(shown("[ ^ 1 ]"), "[[] [] (^ 1)]");
        assert_eq!(shown("[ 1. ^ 2. ]"), "[[] [] 1. (^ 2)]");
        assert_eq!(
            shown("[[:a | [a]]] value"),
            "([[] [] [[\"a\"] [] [[] [] a]]] value)"
        );
        assert_eq!(
            shown("a ifTrue: [ 1 ] ifFalse: [ 2 ]"),
            "(a ifTrue:ifFalse: [[] [] 1] [[] [] 2])"
        );
        assert_eq!(
            shown("[:primitive | primitive]"),
            "[[\"primitive\"] [] primitive]"
        );
    }

    #[test]
    fn spans_of_every_node() {
        let c =
            class("Foo = (\n  at: i put: v = (\n    ^ i foo: v + 1 bar\n  )\n  - x = primitive\n)");
        assert_eq!(c.span, sp(1, 1));
        assert_eq!(c.instance_methods[0].span, sp(2, 3));
        assert_eq!(c.instance_methods[1].span, sp(5, 3));
        let MethodBody::Code(b) = &c.instance_methods[0].body else {
            unreachable!()
        };
        let Expr::Return(kw, ret) = &b.statements[0] else {
            unreachable!()
        };
        assert_eq!(*ret, sp(3, 5));
        let Expr::Send {
            receiver,
            args,
            span,
            ..
        } = &**kw
        else {
            unreachable!()
        };
        assert_eq!(*span, sp(3, 9), "keyword send: its first keyword");
        assert_eq!(receiver.span(), sp(3, 7));
        assert_eq!(args[0].span(), sp(3, 16), "binary send: its operator");
        let Expr::Send { args, .. } = &args[0] else {
            unreachable!()
        };
        assert_eq!(args[0].span(), sp(3, 20), "unary send: its selector");

        let s = statements("x := -5.\n[:a | a]. #(1). 'x'. #y. ^ x");
        assert_eq!(s[0].span(), sp(1, 13));
        let Expr::Assign(_, v, _) = &s[0] else {
            unreachable!()
        };
        assert_eq!(v.span(), sp(1, 18), "a negative literal starts at its '-'");
        assert_eq!(s[1].span(), sp(2, 1));
        assert_eq!(s[2].span(), sp(2, 11));
        assert_eq!(s[3].span(), sp(2, 17));
        assert_eq!(s[4].span(), sp(2, 22));
        assert_eq!(s[5].span(), sp(2, 26));
        // A parenthesised expression keeps the span of what is inside.
        assert_eq!(one("(  a)").span(), sp(1, 16));
    }

    // ---- REPL input -----------------------------------------------------------------

    #[test]
    fn repl_input() {
        let b = repl("| a | a := 3. a + 4");
        assert_eq!(b.locals, vec!["a"]);
        assert_eq!(b.statements.len(), 2);
        assert_eq!(repl("").statements.len(), 0);
        assert_eq!(repl("3 println.").statements.len(), 1);
        assert_eq!(repl("^ 3").statements.len(), 1);
        assert_eq!(repl("[:x | x] value: 1").statements.len(), 1);
        let e = parse_repl_input("1 2", "<repl>").unwrap_err();
        assert_eq!(
            e.to_string(),
            "<repl>:1:3: error: expected '.' or end of input but found integer 2"
        );
        let e = parse_repl_input("^ 1. 2", "<repl>").unwrap_err();
        assert_eq!(e.span, sp(1, 6));
        assert!(parse_repl_input("x := ", "<repl>").is_err());
        assert!(parse_repl_input(")", "<repl>").is_err());
    }

    // ---- errors ---------------------------------------------------------------------

    #[test]
    fn errors_name_the_offending_token() {
        let cases: &[(&str, &str)] = &[
            ("", "1:1: expected a class name but found end of input"),
            (
                "Foo",
                "1:4: expected '=' after the class name but found end of input",
            ),
            (
                "Foo Bar ( )",
                "1:5: expected '=' after the class name but found identifier 'Bar'",
            ),
            (
                "Foo := ( )",
                "1:5: expected '=' after the class name but found ':='",
            ),
            (
                "Foo = 3 ( )",
                "1:7: expected a superclass name or '(' but found integer 3",
            ),
            (
                "Foo = Bar )",
                "1:11: expected '(' to open the class body but found ')'",
            ),
            (
                "T = (",
                "1:6: expected a method, '----' or ')' but found end of input",
            ),
            (
                "T = ( ) x",
                "1:9: expected end of input but found identifier 'x'",
            ),
            (
                "T = ( m ( ) )",
                "1:9: expected '=' after the method pattern but found '('",
            ),
            (
                "T = ( m = 3 )",
                "1:11: expected '(' or 'primitive' after '=' but found integer 3",
            ),
            (
                "T = ( + = ( ) )",
                "1:9: expected an argument name but found '='",
            ),
            (
                "T = ( 3 = ( ) )",
                "1:7: expected a method, '----' or ')' but found integer 3",
            ),
            (
                "T = ( ---- 3 = ( ) )",
                "1:12: expected a method or ')' but found integer 3",
            ),
            (
                "T = ( ---- ---- )",
                "1:12: expected a method or ')' but found '----'",
            ),
            (
                "T = (\n  m = ( ^ 1 + )\n)",
                "2:15: expected an expression but found ')'",
            ),
            (
                "T = ( m = ( ^ 1. 2 ) )",
                "1:18: expected ')' after the return statement but found integer 2",
            ),
            (
                "T = ( m = ( ^ 1 ^ 2 ) )",
                "1:17: expected ')' after the return statement but found '^'",
            ),
            (
                "T = ( m = ( 1 2 ) )",
                "1:15: expected '.' or ')' but found integer 2",
            ),
            (
                "T = ( m = ( a. . b ) )",
                "1:16: expected a statement but found '.'",
            ),
            (
                "T = ( m = ( . ) )",
                "1:13: expected a statement but found '.'",
            ),
            (
                "T = ( m = ( ^ ) )",
                "1:15: expected an expression but found ')'",
            ),
            (
                "T = ( m = ( ^ ^ 1 ) )",
                "1:15: expected an expression but found '^'",
            ),
            (
                "T = ( m = ( a foo: ) )",
                "1:20: expected an expression but found ')'",
            ),
            (
                "T = ( m = ( a foo: bar: 1 ) )",
                "1:20: expected an expression but found keyword 'bar:'",
            ),
            (
                "T = ( m = ( (a foo ) )",
                "1:23: expected a method, '----' or ')' but found end of input",
            ),
            (
                "T = ( m = ( (a foo ] ) )",
                "1:20: expected ')' but found ']'",
            ),
            (
                "T = ( m = ( [:a a] ) )",
                "1:17: expected '|' after the block parameters but found identifier 'a'",
            ),
            (
                "T = ( m = ( [:a] ) )",
                "1:16: expected '|' after the block parameters but found ']'",
            ),
            (
                "T = ( m = ( [: | ] ) )",
                "1:16: expected a block parameter name but found '|'",
            ),
            (
                "T = ( m = ( [ 1 ) )",
                "1:17: expected '.' or ']' but found ')'",
            ),
            (
                "T = ( m = ( | a 1 | ) )",
                "1:17: expected a variable name or '|' but found integer 1",
            ),
            (
                "T = ( | a ) )",
                "1:11: expected a variable name or '|' but found ')'",
            ),
            (
                "T = ( m = ( #(1 2",
                "1:18: expected ')' to close the literal array but found end of input",
            ),
            (
                "T = ( m = ( #(1 . 2) ) )",
                "1:17: expected a literal or ')' but found '.'",
            ),
            (
                "T = ( m = ( a foo: 1 ; bar ) )",
                "1:22: SOM has no cascades: unexpected ';'",
            ),
            ("T = ( m = ( 'abc ) )", "1:13: unterminated string"),
            ("T = ( m = ( \"abc ) )", "1:13: unterminated comment"),
            (
                "T = ( m = ( '\\x' ) )",
                "1:14: Unknown escape sequence '\\x'",
            ),
            (
                "T = ( m = ( $a ) )",
                "1:13: SOM has no character literals: unexpected '$'",
            ),
            (
                "T = ( m = ( {1} ) )",
                "1:13: SOM has no brace arrays: unexpected '{'",
            ),
            (
                "T = ( m = ( # ) )",
                "1:13: expected a selector, a quoted string or '(' directly after '#'",
            ),
            (
                "T = ( m = ( a foo: ) '\\q' )",
                "1:20: expected an expression but found ')'",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(&error(src), want, "for {src:?}");
        }
    }

    #[test]
    fn compile_errors_the_parser_reports() {
        let cases: &[(&str, &str)] = &[
            ("T = ( m = ( self := 1 ) )", "1:13: cannot assign to 'self'"),
            (
                "T = ( m = ( x := super := 1 ) )",
                "1:18: cannot assign to 'super'",
            ),
            (
                "T = ( m = ( [ nil := 1 ] ) )",
                "1:15: cannot assign to 'nil'",
            ),
            (
                "T = ( m = (\n true := 1 ) )",
                "2:2: cannot assign to 'true'",
            ),
            (
                "T = ( m = ( false := 1 ) )",
                "1:13: cannot assign to 'false'",
            ),
            (
                "T = ( m: a m: a = ( ) )",
                "1:15: Variable 'a' shadows another of the same name",
            ),
            (
                "T = ( m: a n: b o: a = ( ) )",
                "1:20: Variable 'a' shadows another of the same name",
            ),
            (
                "T = ( m = ( [:a :b :a | ] ) )",
                "1:21: Variable 'a' shadows another of the same name",
            ),
            (
                "T = ( m = ( | a b a | ) )",
                "1:19: Variable 'a' shadows another of the same name",
            ),
            (
                "T = ( m = ( [ | t t | ] ) )",
                "1:19: Variable 't' shadows another of the same name",
            ),
            (
                "T = ( m = ( [:a || t t | ] ) )",
                "1:22: Variable 't' shadows another of the same name",
            ),
            (
                "T = ( | a a | )",
                "1:11: Field 'a' has already been defined in this class.",
            ),
            (
                "T = ( ---- | a a | )",
                "1:16: Field 'a' has already been defined in this class.",
            ),
            (
                "T = ( m: self = ( ) )",
                "1:10: 'self' cannot be used as an argument name",
            ),
            (
                "T = ( + nil = ( ) )",
                "1:9: 'nil' cannot be used as an argument name",
            ),
            (
                "T = ( m = ( [:super | ] ) )",
                "1:15: 'super' cannot be used as an argument name",
            ),
            (
                "T = ( m = ( | true | ) )",
                "1:15: 'true' cannot be used as a variable name",
            ),
            (
                "T = ( | self | )",
                "1:9: 'self' cannot be used as a field name",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(&error(src), want, "for {src:?}");
        }
        // Shadowing across declarations is for the compiler to judge.
        assert!(parse_class("T = ( |a| m: a = ( |a| [:a | |a| a] ) )", "t").is_ok());
    }

    #[test]
    fn errors_display_with_the_file_name() {
        let e = parse_class("T = ( m = ( ^ 1 + ) )", "dir/T.som").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dir/T.som:1:19: error: expected an expression but found ')'"
        );
    }

    // ---- robustness -----------------------------------------------------------------

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        // On a thread with the default 2 MB stack of spawned Rust threads.
        let run = || {
            let deep = |open: &str, close: &str, n: usize| {
                format!("T = ( m = ( ^ {}1{} ) )", open.repeat(n), close.repeat(n))
            };
            let nests = [
                ("(", ")"),
                ("[", "]"),
                ("#(", ")"),
                ("[:a | ", "]"),
                ("a := ", ""),
            ];
            for (open, close) in nests {
                assert!(parse_class(&deep(open, close, MAX_DEPTH - 1), "t").is_ok());
                for n in [MAX_DEPTH + 1, 200_000] {
                    let e = parse_class(&deep(open, close, n), "t")
                        .map(|_| ())
                        .unwrap_err();
                    assert!(e.message.contains("nested too deeply"), "{open}: {e}");
                }
            }
            let chain = |piece: &str, n: usize| format!("T = ( m = ( 1{} ) )", piece.repeat(n));
            for piece in [" + 1", " foo", " - -1", " , #(#(1))"] {
                assert!(parse_class(&chain(piece, MAX_HEIGHT - 10), "t").is_ok());
                let e = parse_class(&chain(piece, 100_000), "t")
                    .map(|_| ())
                    .unwrap_err();
                assert!(e.message.contains("nested too deeply"), "{piece}: {e}");
            }
            // Parentheses add no height, but what is inside them does: three levels
            // of 400-send chains make a tree 1200 high, although no chain is long.
            let src = format!(
                "T = ( m = ( ^ {}1{} ) )",
                "(".repeat(3),
                format!("{})", " foo".repeat(400)).repeat(3)
            );
            let e = parse_class(&src, "t").map(|_| ()).unwrap_err();
            assert!(e.message.contains("nested too deeply"), "{e}");
            // Long flat inputs are fine.
            let many = format!("T = ( m = ( {} ) )", "a foo. ".repeat(50_000));
            assert!(parse_class(&many, "t").is_ok());
            let keywords = format!("T = ( m = ( a {} ) )", "k: 1 ".repeat(10_000));
            assert!(parse_class(&keywords, "t").is_ok());
        };
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(run)
            .unwrap()
            .join()
            .unwrap();
    }

    /// A small deterministic generator, so the test needs no dependencies.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) as usize
        }
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let pieces = [
            "T",
            " = ",
            "(",
            ")",
            "[",
            "]",
            ":",
            ":=",
            "^",
            ".",
            "|",
            "||",
            "#",
            "#(",
            "'s'",
            "'",
            "\"",
            "\\",
            "-",
            "----",
            "--",
            "1",
            "2.5",
            "x",
            "foo:",
            "#at:put:",
            " ",
            "\n",
            "primitive",
            "self",
            "é",
            "😀",
            "\u{0}",
            ";",
            "$",
            "{",
            "+",
            "=",
            "nil",
        ];
        let mut rng = Rng(42);
        for _ in 0..20_000 {
            let n = rng.next() % 40;
            let src: String = (0..n).map(|_| pieces[rng.next() % pieces.len()]).collect();
            let _ = parse_class(&src, "t");
            let _ = parse_repl_input(&src, "t");
            let _ = crate::lexer::tokenize(&src, "t");
        }
        // Every prefix of a realistic class.
        let text = "Foo = Bar (\n  | a b |\n  at: i put: v = ( | t | t := #(1 -2 #x (y)) .\n    ^ [:k || z | k + -1.5 * 'q\\n' , #'w' ] value: a )\n  | x = primitive\n  ----\n  new = ( ^ super new )\n)\n";
        for (i, _) in text.char_indices() {
            let _ = parse_class(&text[..i], "t");
            let _ = parse_repl_input(&text[..i], "t");
        }
        assert!(parse_class(text, "t").is_ok());
    }
}
