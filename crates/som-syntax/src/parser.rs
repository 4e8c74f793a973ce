//! The parser: tokens (from `lexer`) -> AST (`ast`), by recursive descent with one token
//! of lookahead. It reports the first error with the position of the offending token.

use crate::ast::*;
use crate::diagnostic::SyntaxError;
use crate::lexer::{Lexer, Tok};
use num_bigint::BigInt;

type PResult<T> = Result<T, SyntaxError>;

/// Parses a class file: `Name = Super ( ... )`.
pub fn parse_class(source: &str, file: &str) -> PResult<ClassDef> {
    let mut p = Parser::new(source, file)?;
    let class = p.class()?;
    p.expect_eof()?;
    Ok(class)
}

/// Parses REPL input: optional `| locals |` and statements.
pub fn parse_repl_input(source: &str, file: &str) -> PResult<Body> {
    let mut p = Parser::new(source, file)?;
    let body = p.body(&Tok::Eof)?;
    p.expect_eof()?;
    Ok(body)
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    tok: Tok,
    span: Span,
    file: &'a str,
    /// Current nesting of expressions and blocks (bounded, so that no input can
    /// exhaust the native stack of this recursive-descent parser).
    depth: usize,
}

/// Deepest nesting of parentheses, blocks and literal arrays accepted, and the longest
/// chain of unary or binary sends (each send nests the AST one level deeper).
const MAX_NESTING: usize = 1000;

const PSEUDO_VARIABLES: &[&str] = &["self", "super", "nil", "true", "false"];

impl<'a> Parser<'a> {
    fn new(source: &str, file: &'a str) -> PResult<Parser<'a>> {
        let mut lexer = Lexer::new(source, file);
        let (tok, span) = lexer.next_token()?;
        Ok(Parser {
            lexer,
            tok,
            span,
            file,
            depth: 0,
        })
    }

    fn advance(&mut self) -> PResult<(Tok, Span)> {
        let (tok, span) = self.lexer.next_token()?;
        let old_tok = std::mem::replace(&mut self.tok, tok);
        let old_span = std::mem::replace(&mut self.span, span);
        Ok((old_tok, old_span))
    }

    fn error<T>(&self, span: Span, message: impl Into<String>) -> PResult<T> {
        Err(SyntaxError {
            file: self.file.to_string(),
            span,
            message: message.into(),
        })
    }

    fn unexpected<T>(&self, what: &str) -> PResult<T> {
        self.error(
            self.span,
            format!("expected {what} but found {}", self.tok.describe()),
        )
    }

    fn expect(&mut self, tok: Tok, what: &str) -> PResult<Span> {
        if self.tok == tok {
            Ok(self.advance()?.1)
        } else {
            self.unexpected(what)
        }
    }

    fn expect_eof(&mut self) -> PResult<()> {
        if self.tok == Tok::Eof {
            Ok(())
        } else {
            self.unexpected("end of input")
        }
    }

    fn is_bar(&self) -> bool {
        self.tok == Tok::Operator("|".into())
    }

    /// An identifier (`primitive` is one too).
    fn identifier(&mut self, what: &str) -> PResult<(String, Span)> {
        match &self.tok {
            Tok::Ident(_) => {
                let (Tok::Ident(s), span) = self.advance()? else {
                    unreachable!()
                };
                Ok((s, span))
            }
            _ => self.unexpected(what),
        }
    }

    // ---- classes and methods ----------------------------------------------------------------

    fn class(&mut self) -> PResult<ClassDef> {
        let (name, span) = self.identifier("a class name")?;
        self.expect(Tok::Operator("=".into()), "'=' after the class name")?;
        let superclass = match &self.tok {
            Tok::Ident(s) if s == "nil" => {
                self.advance()?;
                SuperclassSpec::Nil
            }
            Tok::Ident(_) => SuperclassSpec::Named(self.identifier("a superclass")?.0),
            _ => SuperclassSpec::Default,
        };
        self.expect(Tok::LParen, "'(' to open the class body")?;
        let instance_fields = self.variable_list()?;
        let mut instance_methods = Vec::new();
        while !matches!(self.tok, Tok::Separator | Tok::RParen) {
            instance_methods.push(self.method()?);
        }
        let mut class_fields = Vec::new();
        let mut class_methods = Vec::new();
        if self.tok == Tok::Separator {
            self.advance()?;
            class_fields = self.variable_list()?;
            while self.tok != Tok::RParen {
                class_methods.push(self.method()?);
            }
        }
        self.expect(Tok::RParen, "')' to close the class body")?;
        Ok(ClassDef {
            name,
            superclass,
            instance_fields,
            instance_methods,
            class_fields,
            class_methods,
            span,
        })
    }

    /// `| a b c |` if present (an empty list otherwise). Rejects duplicates.
    fn variable_list(&mut self) -> PResult<Vec<String>> {
        let mut names: Vec<String> = Vec::new();
        if self.tok == Tok::Operator("||".into()) {
            self.advance()?;
            return Ok(names);
        }
        if !self.is_bar() {
            return Ok(names);
        }
        self.advance()?;
        while !self.is_bar() {
            let (n, span) = self.identifier("a variable name or '|'")?;
            if names.contains(&n) {
                return self.error(span, format!("'{n}' is declared twice"));
            }
            names.push(n);
        }
        self.advance()?;
        Ok(names)
    }

    fn method(&mut self) -> PResult<MethodDef> {
        let span = self.span;
        let (selector, params) = self.pattern()?;
        self.expect(Tok::Operator("=".into()), "'=' after the method pattern")?;
        let body = if matches!(&self.tok, Tok::Ident(s) if s == "primitive") {
            self.advance()?;
            MethodBody::Primitive
        } else {
            self.expect(Tok::LParen, "'(' or 'primitive' for the method body")?;
            let body = self.body(&Tok::RParen)?;
            self.expect(Tok::RParen, "')' to close the method")?;
            MethodBody::Code(body)
        };
        Ok(MethodDef {
            selector,
            params,
            body,
            span,
        })
    }

    fn pattern(&mut self) -> PResult<(String, Vec<String>)> {
        let mut params: Vec<String> = Vec::new();
        let push = |p: &mut Self, params: &mut Vec<String>| -> PResult<()> {
            let (n, span) = p.identifier("an argument name")?;
            if params.contains(&n) {
                return p.error(span, format!("argument '{n}' is declared twice"));
            }
            if PSEUDO_VARIABLES.contains(&n.as_str()) {
                return p.error(span, format!("'{n}' cannot be an argument name"));
            }
            params.push(n);
            Ok(())
        };
        match self.tok.clone() {
            Tok::Ident(s) => {
                self.advance()?;
                Ok((s, params))
            }
            Tok::Operator(op) => {
                self.advance()?;
                push(self, &mut params)?;
                Ok((op, params))
            }
            Tok::Keyword(_) => {
                let mut sel = String::new();
                while let Tok::Keyword(k) = self.tok.clone() {
                    self.advance()?;
                    sel.push_str(&k);
                    push(self, &mut params)?;
                }
                Ok((sel, params))
            }
            _ => self.unexpected("a method pattern"),
        }
    }

    // ---- bodies and statements ----------------------------------------------------------------

    /// Locals and statements up to (not including) `end`.
    fn body(&mut self, end: &Tok) -> PResult<Body> {
        let locals = self.variable_list()?;
        let mut statements = Vec::new();
        loop {
            while self.tok == Tok::Period && !statements.is_empty() {
                self.advance()?;
            }
            if &self.tok == end {
                break;
            }
            if self.tok == Tok::Caret {
                let (_, span) = self.advance()?;
                let e = self.expression()?;
                statements.push(Expr::Return(Box::new(e), span));
                if self.tok == Tok::Period {
                    self.advance()?;
                }
                if &self.tok != end {
                    return self
                        .unexpected(&format!("{} after a return statement", end.describe()));
                }
                break;
            }
            statements.push(self.expression()?);
            if self.tok == Tok::Period {
                self.advance()?;
            } else if &self.tok != end {
                return self.unexpected(&format!("'.' or {}", end.describe()));
            }
        }
        Ok(Body { locals, statements })
    }

    fn expression(&mut self) -> PResult<Expr> {
        // Assignment: identifier followed by `:=`.
        if let Tok::Ident(name) = self.tok.clone() {
            let span = self.span;
            // Consume the identifier; the next token decides between assignment and read.
            self.advance()?;
            if self.tok == Tok::Assign {
                self.advance()?;
                if PSEUDO_VARIABLES.contains(&name.as_str()) {
                    return self.error(span, format!("cannot assign to '{name}'"));
                }
                let value = self.expression()?;
                return Ok(Expr::Assign(name, Box::new(value), span));
            }
            let primary = Expr::Var(name, span);
            return self.continue_sends(primary);
        }
        let primary = self.primary()?;
        self.continue_sends(primary)
    }

    /// Unary, binary and keyword sends after a primary.
    fn continue_sends(&mut self, primary: Expr) -> PResult<Expr> {
        let r = self.binary_tail(primary)?;
        self.keyword_tail(r)
    }

    fn keyword_tail(&mut self, receiver: Expr) -> PResult<Expr> {
        if !matches!(self.tok, Tok::Keyword(_)) {
            return Ok(receiver);
        }
        let span = self.span;
        let mut selector = String::new();
        let mut args = Vec::new();
        while let Tok::Keyword(k) = self.tok.clone() {
            self.advance()?;
            selector.push_str(&k);
            let p = self.primary()?;
            args.push(self.binary_tail(p)?);
        }
        Ok(Expr::Send {
            receiver: Box::new(receiver),
            selector,
            args,
            span,
        })
    }

    fn unary_tail(&mut self, mut receiver: Expr) -> PResult<Expr> {
        let mut length = 0;
        while let Tok::Ident(sel) = self.tok.clone() {
            length += 1;
            if length > MAX_NESTING {
                return self.error(self.span, "cascade of unary sends nested too deeply");
            }
            let (_, span) = self.advance()?;
            receiver = Expr::Send {
                receiver: Box::new(receiver),
                selector: sel,
                args: Vec::new(),
                span,
            };
        }
        Ok(receiver)
    }

    fn binary_tail(&mut self, receiver: Expr) -> PResult<Expr> {
        let mut receiver = self.unary_tail(receiver)?;
        let mut length = 0;
        while let Tok::Operator(op) = self.tok.clone() {
            length += 1;
            if length > MAX_NESTING {
                return self.error(self.span, "chain of binary sends nested too deeply");
            }
            let (_, span) = self.advance()?;
            let arg = self.primary()?;
            let arg = self.unary_tail(arg)?;
            receiver = Expr::Send {
                receiver: Box::new(receiver),
                selector: op,
                args: vec![arg],
                span,
            };
        }
        Ok(receiver)
    }

    fn primary(&mut self) -> PResult<Expr> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return self.error(self.span, "expression nested too deeply");
        }
        let r = self.primary_inner();
        self.depth -= 1;
        r
    }

    fn primary_inner(&mut self) -> PResult<Expr> {
        let span = self.span;
        match self.tok.clone() {
            Tok::Ident(name) => {
                self.advance()?;
                Ok(Expr::Var(name, span))
            }
            Tok::LParen => {
                self.advance()?;
                let e = self.expression()?;
                self.expect(Tok::RParen, "')'")?;
                Ok(e)
            }
            Tok::LBracket => self.block(),
            Tok::Operator(op) if op == "-" => {
                self.advance()?;
                let lit = self.number(true)?;
                Ok(Expr::Literal(lit, span))
            }
            Tok::Integer(_) | Tok::Double(_) | Tok::Str(_) | Tok::Symbol(_) | Tok::ArrayStart => {
                let lit = self.literal()?;
                Ok(Expr::Literal(lit, span))
            }
            _ => self.unexpected("an expression"),
        }
    }

    fn number(&mut self, negative: bool) -> PResult<Literal> {
        match self.tok.clone() {
            Tok::Integer(digits) => {
                self.advance()?;
                let mut i: BigInt = digits.parse().unwrap_or_default();
                if negative {
                    i = -i;
                }
                Ok(Literal::Integer(i))
            }
            Tok::Double(d) => {
                self.advance()?;
                Ok(Literal::Double(if negative { -d } else { d }))
            }
            _ => self.unexpected("a number after '-'"),
        }
    }

    fn literal(&mut self) -> PResult<Literal> {
        match self.tok.clone() {
            Tok::Integer(_) | Tok::Double(_) => self.number(false),
            Tok::Operator(op) if op == "-" => {
                self.advance()?;
                self.number(true)
            }
            Tok::Str(s) => {
                self.advance()?;
                Ok(Literal::String(s))
            }
            Tok::Symbol(s) => {
                self.advance()?;
                Ok(Literal::Symbol(s))
            }
            Tok::ArrayStart | Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return self.error(self.span, "literal array nested too deeply");
                }
                self.advance()?;
                let mut items = Vec::new();
                while self.tok != Tok::RParen {
                    items.push(match self.tok.clone() {
                        Tok::Ident(s) | Tok::Keyword(s) => {
                            self.advance()?;
                            Literal::Symbol(s)
                        }
                        Tok::Operator(op) if op != "-" => {
                            self.advance()?;
                            Literal::Symbol(op)
                        }
                        Tok::Eof => return self.unexpected("')' to close the literal array"),
                        _ => self.literal()?,
                    });
                }
                self.advance()?;
                self.depth -= 1;
                Ok(Literal::Array(items))
            }
            _ => self.unexpected("a literal"),
        }
    }

    fn block(&mut self) -> PResult<Expr> {
        let span = self.expect(Tok::LBracket, "'['")?;
        let mut params: Vec<String> = Vec::new();
        while self.tok == Tok::Colon {
            self.advance()?;
            let (n, s) = self.identifier("a block parameter name")?;
            if params.contains(&n) {
                return self.error(s, format!("argument '{n}' is declared twice"));
            }
            if PSEUDO_VARIABLES.contains(&n.as_str()) {
                return self.error(s, format!("'{n}' cannot be a parameter name"));
            }
            params.push(n);
        }
        if !params.is_empty() {
            if self.tok == Tok::Operator("||".into()) {
                // `[:a || t | ...]` is `[:a | | t | ...]`: re-lex as bar + bar.
                return self.unexpected("'|' after the block parameters");
            }
            if !self.is_bar() {
                if self.tok == Tok::RBracket {
                    // `[:a ]` is allowed by some SOMs; accept it.
                } else {
                    return self.unexpected("'|' after the block parameters");
                }
            } else {
                self.advance()?;
            }
        }
        let body = self.body(&Tok::RBracket)?;
        self.expect(Tok::RBracket, "']' to close the block")?;
        Ok(Expr::Block(BlockDef { params, body, span }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_method(src: &str) -> MethodDef {
        let c = parse_class(&format!("T = ( {src} )"), "t.som").unwrap();
        c.instance_methods.into_iter().next().unwrap()
    }

    fn statements(src: &str) -> Vec<Expr> {
        match parse_method(&format!("m = ( {src} )")).body {
            MethodBody::Code(b) => b.statements,
            MethodBody::Primitive => unreachable!(),
        }
    }

    fn selector(e: &Expr) -> &str {
        match e {
            Expr::Send { selector, .. } => selector,
            _ => panic!("not a send: {e:?}"),
        }
    }

    #[test]
    fn class_structure() {
        let c = parse_class(
            "Foo = Bar ( |a b| x = ( ^ a ) + y = primitive ---- |c| new = ( ^ super new ) )",
            "f",
        )
        .unwrap();
        assert_eq!(c.name, "Foo");
        assert_eq!(c.superclass, SuperclassSpec::Named("Bar".into()));
        assert_eq!(c.instance_fields, vec!["a", "b"]);
        assert_eq!(c.instance_methods.len(), 2);
        assert_eq!(c.instance_methods[1].selector, "+");
        assert_eq!(c.instance_methods[1].body, MethodBody::Primitive);
        assert_eq!(c.class_fields, vec!["c"]);
        assert_eq!(c.class_methods[0].selector, "new");
        let c = parse_class("Object = nil ( )", "f").unwrap();
        assert_eq!(c.superclass, SuperclassSpec::Nil);
        let c = parse_class("X = ( )", "f").unwrap();
        assert_eq!(c.superclass, SuperclassSpec::Default);
    }

    #[test]
    fn precedence_unary_binary_keyword() {
        let s = statements("a foo: b bar + c baz");
        assert_eq!(selector(&s[0]), "foo:");
        let Expr::Send { args, .. } = &s[0] else {
            unreachable!()
        };
        assert_eq!(selector(&args[0]), "+");
        let s = statements("1 + 2 * 3");
        let Expr::Send { receiver, .. } = &s[0] else {
            unreachable!()
        };
        assert_eq!(selector(&s[0]), "*");
        assert_eq!(selector(receiver), "+");
    }

    #[test]
    fn keyword_pattern_and_blocks() {
        let m = parse_method("at: i put: v = ( ^ [:a :b | |t| t := a. b] )");
        assert_eq!(m.selector, "at:put:");
        assert_eq!(m.params, vec!["i", "v"]);
        let MethodBody::Code(b) = m.body else {
            unreachable!()
        };
        let Expr::Return(e, _) = &b.statements[0] else {
            unreachable!()
        };
        let Expr::Block(blk) = &**e else {
            unreachable!()
        };
        assert_eq!(blk.params, vec!["a", "b"]);
        assert_eq!(blk.body.locals, vec!["t"]);
        assert_eq!(blk.body.statements.len(), 2);
    }

    #[test]
    fn literals_including_negative_numbers_and_arrays() {
        let s = statements("#(1 -2 3.5 'x' #y z: ( 4 ) #(5)) . -7 . x := -2.5");
        let Expr::Literal(Literal::Array(items), _) = &s[0] else {
            unreachable!()
        };
        assert_eq!(items.len(), 8);
        assert_eq!(items[1], Literal::Integer((-2).into()));
        assert_eq!(items[2], Literal::Double(3.5));
        assert_eq!(items[5], Literal::Symbol("z:".into()));
        assert_eq!(items[6], Literal::Array(vec![Literal::Integer(4.into())]));
        assert!(matches!(&s[1], Expr::Literal(Literal::Integer(i), _) if *i == (-7).into()));
        let Expr::Assign(_, v, _) = &s[2] else {
            unreachable!()
        };
        assert!(matches!(&**v, Expr::Literal(Literal::Double(d), _) if *d == -2.5));
    }

    #[test]
    fn separator_versus_operators() {
        let c = parse_class("T = ( -- a = ( ^ 1 ) --> b = ( ^ 2 ) ---- )", "t").unwrap();
        assert_eq!(c.instance_methods[0].selector, "--");
        assert_eq!(c.instance_methods[1].selector, "-->");
    }

    #[test]
    fn errors_point_at_the_token() {
        let e = parse_class("T = (\n  m = ( ^ 1 + )\n)", "t.som").unwrap_err();
        assert_eq!((e.span.line, e.span.col), (2, 15));
        let e = parse_class("T = ( m = ( self := 1 ) )", "t.som").unwrap_err();
        assert!(e.message.contains("self"));
        let e = parse_class("T = ( m: a m: a = ( ) )", "t.som").unwrap_err();
        assert!(e.message.contains("twice"));
        let e = parse_class("T = ( m = ( ^ 1. 2 ) )", "t.som").unwrap_err();
        assert!(e.message.contains("return"));
        assert!(parse_class("T = ( m = ( a ; b ) )", "t").is_err());
        assert!(parse_class("", "t").is_err());
        assert!(parse_class("T = ( ", "t").is_err());
    }

    #[test]
    fn repl_input() {
        let b = parse_repl_input("| a | a := 3. a + 4", "repl").unwrap();
        assert_eq!(b.locals, vec!["a"]);
        assert_eq!(b.statements.len(), 2);
    }
}
