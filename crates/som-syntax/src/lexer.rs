//! The lexer: source text -> [`Tok`]ens, each with the [`Span`] (1-based line and
//! column, columns counted in characters) of its first character.
//!
//! Data flow: [`Lexer::new`] decodes the source into characters once; every call to
//! [`Lexer::next_token`] skips white space and comments and returns one token, or a
//! [`SyntaxError`] at the offending character (unterminated string or comment, unknown
//! escape, a character that starts no token). [`tokenize`] collects a whole input. The
//! parser lexes its whole input up front but only reports a lexical error once parsing
//! reaches it, so the error it reports is always the first one in the text.
//!
//! Decisions taken here rather than in the parser:
//! - A run of operator characters is one [`Tok::Operator`], except that four or more
//!   `-` are the class-side [`Tok::Separator`] (tested before operators are lexed). A
//!   lone `|` is an ordinary operator token; the parser decides whether it is a binary
//!   selector or the bar around variable declarations and after block parameters.
//! - `primitive` is lexed as an [`Tok::Ident`], so it is accepted wherever an
//!   identifier is; the parser recognises it after the `=` of a method pattern.
//! - `name:` is a [`Tok::Keyword`] unless the colon starts `:=`.
//! - `#at:put:` is one [`Tok::Symbol`]: after `#`, an identifier followed by `:` takes
//!   every further `identifier:` written directly after it.
//! - A `-` before a number is a separate token; the parser makes negative literals.

use crate::ast::Span;
use crate::diagnostic::SyntaxError;

/// One token. Spans travel beside tokens, not inside them.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// An identifier, including `primitive` and the pseudo-variables.
    Ident(String),
    /// `foo:` (one keyword part, colon included).
    Keyword(String),
    /// A run of operator characters (`+`, `<=`, `-->`), also a lone `|`.
    Operator(String),
    /// The digits of an integer literal (any size; the parser makes the number).
    Integer(String),
    Double(f64),
    /// A string literal with its escapes resolved.
    Str(String),
    /// `#foo`, `#at:put:`, `#+`, `#'text'` (the text after `#`, escapes resolved).
    Symbol(String),
    /// `#(`
    ArrayStart,
    /// `:=`
    Assign,
    Caret,
    Period,
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// `:` that does not end a keyword (block parameters).
    Colon,
    /// `----` (four or more dashes).
    Separator,
    Eof,
}

impl Tok {
    /// How the token is named in "expected X but found Y" messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("identifier '{s}'"),
            Tok::Keyword(s) => format!("keyword '{s}'"),
            Tok::Operator(s) => format!("'{s}'"),
            Tok::Integer(s) => format!("integer {s}"),
            Tok::Double(d) => format!("double {d}"),
            Tok::Str(_) => "a string".into(),
            Tok::Symbol(s) => format!("symbol #{s}"),
            Tok::ArrayStart => "'#('".into(),
            Tok::Assign => "':='".into(),
            Tok::Caret => "'^'".into(),
            Tok::Period => "'.'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Colon => "':'".into(),
            Tok::Separator => "'----'".into(),
            Tok::Eof => "end of input".into(),
        }
    }

    /// Whether this is the operator token `op`.
    pub fn is_operator(&self, op: &str) -> bool {
        matches!(self, Tok::Operator(s) if s == op)
    }
}

/// The characters that make up binary selectors.
pub fn is_operator_char(c: char) -> bool {
    matches!(
        c,
        '~' | '&' | '|' | '*' | '/' | '\\' | '+' | '=' | '>' | '<' | ',' | '@' | '%' | '-'
    )
}

/// The first character of an identifier: any Unicode letter.
fn is_ident_start(c: char) -> bool {
    c.is_alphabetic()
}

/// Later characters of an identifier: letters, ASCII digits and `_`.
fn is_ident_part(c: char) -> bool {
    c.is_alphabetic() || c.is_ascii_digit() || c == '_'
}

/// Lexes a whole input: every token up to and including [`Tok::Eof`], or the first
/// lexical error.
pub fn tokenize(source: &str, file: &str) -> Result<Vec<(Tok, Span)>, SyntaxError> {
    let mut lexer = Lexer::new(source, file);
    let mut out = Vec::new();
    loop {
        let (tok, span) = lexer.next_token()?;
        let done = tok == Tok::Eof;
        out.push((tok, span));
        if done {
            return Ok(out);
        }
    }
}

/// A cursor over the characters of one source text.
pub struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    line: u32,
    col: u32,
    file: &'a str,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `source`; `file` names it in errors. A leading byte
    /// order mark is skipped without counting as a column.
    pub fn new(source: &str, file: &'a str) -> Lexer<'a> {
        let source = source.strip_prefix('\u{feff}').unwrap_or(source);
        Lexer {
            chars: source.chars().collect(),
            pos: 0,
            line: 1,
            col: 1,
            file,
        }
    }

    fn peek(&self) -> Option<char> {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    fn here(&self) -> Span {
        Span {
            line: self.line,
            col: self.col,
        }
    }

    fn error<T>(&self, span: Span, message: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError {
            file: self.file.to_string(),
            span,
            message: message.into(),
        })
    }

    /// Skips white space and `"comments"` (which may span lines and do not nest).
    fn skip_trivia(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('"') => {
                    let start = self.here();
                    self.bump();
                    loop {
                        match self.bump() {
                            Some('"') => break,
                            Some(_) => {}
                            None => return self.error(start, "unterminated comment"),
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Consumes an identifier (the cursor is on a letter).
    fn identifier(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|&c| is_ident_part(c)) {
            s.push(c);
            self.bump();
        }
        s
    }

    /// If the text `offset` characters ahead is `identifier:` (and that colon does not
    /// start `:=`), the length of that text.
    fn keyword_length_at(&self, offset: usize) -> Option<usize> {
        if !self.peek_at(offset).is_some_and(is_ident_start) {
            return None;
        }
        let mut n = 1;
        while self.peek_at(offset + n).is_some_and(is_ident_part) {
            n += 1;
        }
        let colon_ok =
            self.peek_at(offset + n) == Some(':') && self.peek_at(offset + n + 1) != Some('=');
        colon_ok.then_some(n + 1)
    }

    fn take(&mut self, n: usize) -> String {
        (0..n).filter_map(|_| self.bump()).collect()
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|&c| keep(c)) {
            s.push(c);
            self.bump();
        }
        s
    }

    /// `123` or `1.5`: a dot is part of the number only when a digit follows it.
    fn number(&mut self) -> Tok {
        let mut text = self.take_while(|c| c.is_ascii_digit());
        if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            text.push('.');
            text.push_str(&self.take_while(|c| c.is_ascii_digit()));
            // Digits, a dot and digits always parse; NaN is unreachable.
            Tok::Double(text.parse().unwrap_or(f64::NAN))
        } else {
            Tok::Integer(text)
        }
    }

    /// The body of a quoted string, after its opening quote; `start` is where the
    /// literal began (for the "unterminated" error).
    fn quoted(&mut self, start: Span) -> Result<String, SyntaxError> {
        let mut s = String::new();
        loop {
            let here = self.here();
            match self.bump() {
                None => return self.error(start, "unterminated string"),
                Some('\'') => return Ok(s),
                Some('\\') => {
                    let c = match self.bump() {
                        Some('t') => '\t',
                        Some('b') => '\u{8}',
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('f') => '\u{c}',
                        Some('0') => '\0',
                        Some('\'') => '\'',
                        Some('\\') => '\\',
                        Some(other) => {
                            return self.error(
                                here,
                                format!("Unknown escape sequence '\\{}'", other.escape_debug()),
                            )
                        }
                        None => return self.error(start, "unterminated string"),
                    };
                    s.push(c);
                }
                Some(c) => s.push(c),
            }
        }
    }

    /// What follows a `#` (the cursor is just after it).
    fn after_pound(&mut self, start: Span) -> Result<Tok, SyntaxError> {
        match self.peek() {
            Some('(') => {
                self.bump();
                Ok(Tok::ArrayStart)
            }
            Some('\'') => {
                self.bump();
                Ok(Tok::Symbol(self.quoted(start)?))
            }
            Some(c) if is_ident_start(c) => {
                if self.keyword_length_at(0).is_none() {
                    return Ok(Tok::Symbol(self.identifier()));
                }
                let mut s = String::new();
                while let Some(n) = self.keyword_length_at(0) {
                    s.push_str(&self.take(n));
                }
                Ok(Tok::Symbol(s))
            }
            Some(c) if is_operator_char(c) => Ok(Tok::Symbol(self.take_while(is_operator_char))),
            _ => self.error(
                start,
                "expected a selector, a quoted string or '(' directly after '#'",
            ),
        }
    }

    /// The next token and where it starts. After [`Tok::Eof`] it keeps returning
    /// [`Tok::Eof`].
    pub fn next_token(&mut self) -> Result<(Tok, Span), SyntaxError> {
        self.skip_trivia()?;
        let span = self.here();
        let Some(c) = self.peek() else {
            return Ok((Tok::Eof, span));
        };
        let tok = if is_ident_start(c) {
            match self.keyword_length_at(0) {
                Some(n) => Tok::Keyword(self.take(n)),
                None => Tok::Ident(self.identifier()),
            }
        } else if c.is_ascii_digit() {
            self.number()
        } else if c == '\'' {
            self.bump();
            Tok::Str(self.quoted(span)?)
        } else if c == '#' {
            self.bump();
            self.after_pound(span)?
        } else if (0..4).all(|i| self.peek_at(i) == Some('-')) {
            self.take_while(|c| c == '-');
            Tok::Separator
        } else if is_operator_char(c) {
            Tok::Operator(self.take_while(is_operator_char))
        } else {
            self.bump();
            match c {
                ':' if self.peek() == Some('=') => {
                    self.bump();
                    Tok::Assign
                }
                ':' => Tok::Colon,
                '^' => Tok::Caret,
                '.' => Tok::Period,
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                '[' => Tok::LBracket,
                ']' => Tok::RBracket,
                ';' => return self.error(span, "SOM has no cascades: unexpected ';'"),
                '$' => return self.error(span, "SOM has no character literals: unexpected '$'"),
                '{' | '}' => {
                    return self.error(span, format!("SOM has no brace arrays: unexpected '{c}'"))
                }
                _ => {
                    return self.error(span, format!("unexpected character '{}'", c.escape_debug()))
                }
            }
        };
        Ok((tok, span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        let mut v: Vec<Tok> = tokenize(s, "t").unwrap().into_iter().map(|t| t.0).collect();
        assert_eq!(v.pop(), Some(Tok::Eof));
        v
    }

    fn spans(s: &str) -> Vec<(u32, u32)> {
        tokenize(s, "t")
            .unwrap()
            .into_iter()
            .map(|(_, s)| (s.line, s.col))
            .collect()
    }

    fn err(s: &str) -> String {
        tokenize(s, "f.som").unwrap_err().to_string()
    }

    fn id(s: &str) -> Tok {
        Tok::Ident(s.into())
    }
    fn kw(s: &str) -> Tok {
        Tok::Keyword(s.into())
    }
    fn op(s: &str) -> Tok {
        Tok::Operator(s.into())
    }
    fn int(s: &str) -> Tok {
        Tok::Integer(s.into())
    }
    fn sym(s: &str) -> Tok {
        Tok::Symbol(s.into())
    }
    fn st(s: &str) -> Tok {
        Tok::Str(s.into())
    }

    #[test]
    fn empty_and_blank_inputs() {
        assert_eq!(toks(""), vec![]);
        assert_eq!(toks(" \t\r\n "), vec![]);
        assert_eq!(toks("\"only a comment\""), vec![]);
        // Eof repeats.
        let mut l = Lexer::new("", "t");
        assert_eq!(l.next_token().unwrap().0, Tok::Eof);
        assert_eq!(l.next_token().unwrap().0, Tok::Eof);
    }

    #[test]
    fn comments_span_lines_and_do_not_nest() {
        assert_eq!(toks("a \"x\ny\" b"), vec![id("a"), id("b")]);
        // The second quote ends the comment; `inner` is code.
        assert_eq!(toks("\"a \"inner\" b\""), vec![id("inner")]);
        assert_eq!(spans("\"x\n\ny\" z"), vec![(3, 4), (3, 5)]);
    }

    #[test]
    fn identifiers_are_unicode_letters_then_letters_digits_underscores() {
        assert_eq!(
            toks("foo Bar_1 x2y int1 array_at_idx0_err élan Ωmega ünïcode"),
            vec![
                id("foo"),
                id("Bar_1"),
                id("x2y"),
                id("int1"),
                id("array_at_idx0_err"),
                id("élan"),
                id("Ωmega"),
                id("ünïcode"),
            ]
        );
        // An identifier cannot start with `_` or a digit.
        assert!(tokenize("_x", "t").is_err());
        assert_eq!(toks("2x"), vec![int("2"), id("x")]);
        // Columns count characters, not bytes.
        assert_eq!(spans("élan ü x"), vec![(1, 1), (1, 6), (1, 8), (1, 9)]);
    }

    #[test]
    fn primitive_is_an_identifier_token() {
        assert_eq!(
            toks("primitive #primitive primitive:"),
            vec![id("primitive"), sym("primitive"), kw("primitive:")]
        );
    }

    #[test]
    fn keywords_and_assignment() {
        assert_eq!(
            toks("at: 1 put:x"),
            vec![kw("at:"), int("1"), kw("put:"), id("x")]
        );
        assert_eq!(toks("x:=1"), vec![id("x"), Tok::Assign, int("1")]);
        assert_eq!(toks("x := 1"), vec![id("x"), Tok::Assign, int("1")]);
        assert_eq!(
            toks("[:a :b|"),
            vec![
                Tok::LBracket,
                Tok::Colon,
                id("a"),
                Tok::Colon,
                id("b"),
                op("|")
            ]
        );
        // Outside symbols, keyword parts are separate tokens.
        assert_eq!(toks("at:put:"), vec![kw("at:"), kw("put:")]);
    }

    #[test]
    fn operators_and_the_separator() {
        assert_eq!(toks("a -- b"), vec![id("a"), op("--"), id("b")]);
        assert_eq!(toks("-->"), vec![op("-->")]);
        assert_eq!(toks("---"), vec![op("---")]);
        assert_eq!(toks("----"), vec![Tok::Separator]);
        assert_eq!(toks("---------"), vec![Tok::Separator]);
        assert_eq!(toks("---- -"), vec![Tok::Separator, op("-")]);
        assert_eq!(
            toks("<= ~= >>> == , @ % \\ & ~ | || ++++ */"),
            vec![
                op("<="),
                op("~="),
                op(">>>"),
                op("=="),
                op(","),
                op("@"),
                op("%"),
                op("\\"),
                op("&"),
                op("~"),
                op("|"),
                op("||"),
                op("++++"),
                op("*/"),
            ]
        );
        assert_eq!(toks("a|b"), vec![id("a"), op("|"), id("b")]);
        assert_eq!(toks("3-4"), vec![int("3"), op("-"), int("4")]);
        assert_eq!(toks("-5"), vec![op("-"), int("5")]);
    }

    #[test]
    fn numbers() {
        assert_eq!(
            toks("0 42 123456789012345678901234567890"),
            vec![int("0"), int("42"), int("123456789012345678901234567890")]
        );
        assert_eq!(
            toks("2.5 0.125 1.0"),
            vec![Tok::Double(2.5), Tok::Double(0.125), Tok::Double(1.0)]
        );
        // A digit must follow the dot.
        assert_eq!(toks("1."), vec![int("1"), Tok::Period]);
        assert_eq!(toks("1.x"), vec![int("1"), Tok::Period, id("x")]);
        assert_eq!(toks("1.5.2"), vec![Tok::Double(1.5), Tok::Period, int("2")]);
        // No exponents or radix.
        assert_eq!(toks("1e10"), vec![int("1"), id("e10")]);
        assert_eq!(toks("16r1F"), vec![int("16"), id("r1F")]);
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(toks("'abc'"), vec![st("abc")]);
        assert_eq!(toks("'a\nb'"), vec![st("a\nb")]);
        assert_eq!(
            toks(r"'\t\b\n\r\f\0\'\\'"),
            vec![st("\t\u{8}\n\r\u{c}\0'\\")]
        );
        // `''` is no escape: two empty strings.
        assert_eq!(toks("''"), vec![st("")]);
        assert_eq!(toks("''''"), vec![st(""), st("")]);
        assert_eq!(toks("'a''b'"), vec![st("a"), st("b")]);
        assert_eq!(toks("'say \"hi\"'"), vec![st("say \"hi\"")]);
        // The next token's column counts characters after a multi-line string.
        assert_eq!(spans("'a\nbc' x"), vec![(1, 1), (2, 5), (2, 6)]);
    }

    #[test]
    fn symbols() {
        assert_eq!(
            toks("#foo #Foo_1 #foo: #at:put: #+ #-> #'a b' #'it\\'s' #''"),
            vec![
                sym("foo"),
                sym("Foo_1"),
                sym("foo:"),
                sym("at:put:"),
                sym("+"),
                sym("->"),
                sym("a b"),
                sym("it's"),
                sym(""),
            ]
        );
        // Keyword parts must be written together, each ending in a colon.
        assert_eq!(toks("#at: put:"), vec![sym("at:"), kw("put:")]);
        assert_eq!(toks("#at:put"), vec![sym("at:"), id("put")]);
        assert_eq!(toks("#x:=1"), vec![sym("x"), Tok::Assign, int("1")]);
        assert_eq!(
            toks("#(1 #a)"),
            vec![Tok::ArrayStart, int("1"), sym("a"), Tok::RParen]
        );
    }

    #[test]
    fn punctuation() {
        assert_eq!(
            toks("^ . ( ) [ ] : :="),
            vec![
                Tok::Caret,
                Tok::Period,
                Tok::LParen,
                Tok::RParen,
                Tok::LBracket,
                Tok::RBracket,
                Tok::Colon,
                Tok::Assign,
            ]
        );
    }

    #[test]
    fn spans_are_one_based_lines_and_columns() {
        assert_eq!(
            spans("Foo = (\n  bar: x\n)"),
            vec![(1, 1), (1, 5), (1, 7), (2, 3), (2, 8), (3, 1), (3, 2)]
        );
        // A byte order mark is not a column.
        assert_eq!(spans("\u{feff}x"), vec![(1, 1), (1, 2)]);
    }

    #[test]
    fn errors_have_positions() {
        assert_eq!(
            err("\n  'a\\q'"),
            "f.som:2:5: error: Unknown escape sequence '\\q'"
        );
        assert_eq!(
            err("x '\\\n'"),
            "f.som:1:4: error: Unknown escape sequence '\\\\n'"
        );
        assert_eq!(err("x 'abc"), "f.som:1:3: error: unterminated string");
        assert_eq!(err("x 'abc\\"), "f.som:1:3: error: unterminated string");
        assert_eq!(err("x #'abc"), "f.som:1:3: error: unterminated string");
        assert_eq!(err("x\n \"open"), "f.som:2:2: error: unterminated comment");
        assert!(err("a ; b").starts_with("f.som:1:3: error: SOM has no cascades"));
        assert!(err("$a").starts_with("f.som:1:1: error: SOM has no character"));
        assert!(err("{1}").starts_with("f.som:1:1: error: SOM has no brace"));
        assert_eq!(err("a ?"), "f.som:1:3: error: unexpected character '?'");
        assert_eq!(err("\u{0}"), "f.som:1:1: error: unexpected character '\\0'");
        assert!(err("# foo").starts_with("f.som:1:1: error: expected a selector"));
        assert!(err("#").starts_with("f.som:1:1: error: expected a selector"));
        assert!(err("x 😀").starts_with("f.som:1:3: error: unexpected character"));
    }
}
