//! The lexer: source text -> [`Token`]s with their [`Span`]s. The parser pulls tokens
//! one at a time (`Lexer::next_token`), so the lexer never needs to look at more than a
//! few characters ahead.

use crate::ast::Span;
use crate::diagnostic::SyntaxError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    /// `foo:` (one keyword part).
    Keyword(String),
    /// A run of operator characters (`+`, `<=`, `-->`), also a lone `|`.
    Operator(String),
    Integer(String),
    Double(f64),
    Str(String),
    /// `#foo`, `#at:put:`, `#+`, `#'text'`.
    Symbol(String),
    /// `#(`
    ArrayStart,
    Assign,
    Caret,
    Period,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Colon,
    /// `----` (four or more dashes).
    Separator,
    Eof,
}

impl Tok {
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
}

pub fn is_operator_char(c: char) -> bool {
    matches!(
        c,
        '~' | '&' | '|' | '*' | '/' | '\\' | '+' | '=' | '>' | '<' | ',' | '@' | '%' | '-'
    )
}

pub struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    line: u32,
    col: u32,
    file: &'a str,
}

impl<'a> Lexer<'a> {
    pub fn new(source: &str, file: &'a str) -> Lexer<'a> {
        Lexer {
            chars: source.chars().collect(),
            pos: 0,
            line: 1,
            col: 1,
            file,
        }
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn span(&self) -> Span {
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

    /// Skips whitespace and comments.
    fn skip_trivia(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.peek_at(0) {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('"') => {
                    let start = self.span();
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

    fn ident_body(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek_at(0) {
            if c.is_alphanumeric() || c == '_' {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
        s
    }

    /// Reads a quoted string body after the opening quote.
    fn string_body(&mut self, start: Span) -> Result<String, SyntaxError> {
        let mut s = String::new();
        loop {
            let here = self.span();
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
                            return self.error(here, format!("unknown escape sequence '\\{other}'"))
                        }
                        None => return self.error(start, "unterminated string"),
                    };
                    s.push(c);
                }
                Some(c) => s.push(c),
            }
        }
    }

    /// The next token and where it starts.
    pub fn next_token(&mut self) -> Result<(Tok, Span), SyntaxError> {
        self.skip_trivia()?;
        let span = self.span();
        let Some(c) = self.peek_at(0) else {
            return Ok((Tok::Eof, span));
        };
        let tok = if c.is_alphabetic() {
            let name = self.ident_body();
            if self.peek_at(0) == Some(':') && self.peek_at(1) != Some('=') {
                self.bump();
                Tok::Keyword(format!("{name}:"))
            } else {
                Tok::Ident(name)
            }
        } else if c.is_ascii_digit() {
            let mut digits = String::new();
            while let Some(d) = self.peek_at(0).filter(|d| d.is_ascii_digit()) {
                digits.push(d);
                self.bump();
            }
            if self.peek_at(0) == Some('.') && self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) {
                self.bump();
                digits.push('.');
                while let Some(d) = self.peek_at(0).filter(|d| d.is_ascii_digit()) {
                    digits.push(d);
                    self.bump();
                }
                Tok::Double(digits.parse().unwrap_or(f64::NAN))
            } else {
                Tok::Integer(digits)
            }
        } else if c == '\'' {
            self.bump();
            Tok::Str(self.string_body(span)?)
        } else if c == '#' {
            self.bump();
            match self.peek_at(0) {
                Some('(') => {
                    self.bump();
                    Tok::ArrayStart
                }
                Some('\'') => {
                    self.bump();
                    Tok::Symbol(self.string_body(span)?)
                }
                Some(c) if c.is_alphabetic() => {
                    let mut s = self.ident_body();
                    // Keyword symbols: #at:put:
                    while self.peek_at(0) == Some(':') {
                        self.bump();
                        s.push(':');
                        if self.peek_at(0).is_some_and(|c| c.is_alphabetic()) {
                            s.push_str(&self.ident_body());
                        } else {
                            break;
                        }
                    }
                    Tok::Symbol(s)
                }
                Some(c) if is_operator_char(c) => {
                    let mut s = String::new();
                    while let Some(c) = self.peek_at(0).filter(|c| is_operator_char(*c)) {
                        s.push(c);
                        self.bump();
                    }
                    Tok::Symbol(s)
                }
                _ => return self.error(span, "expected a symbol after '#'"),
            }
        } else if c == '-' && (0..4).all(|i| self.peek_at(i) == Some('-')) {
            while self.peek_at(0) == Some('-') {
                self.bump();
            }
            Tok::Separator
        } else if is_operator_char(c) {
            let mut s = String::new();
            while let Some(c) = self.peek_at(0).filter(|c| is_operator_char(*c)) {
                s.push(c);
                self.bump();
            }
            Tok::Operator(s)
        } else {
            self.bump();
            match c {
                ':' if self.peek_at(0) == Some('=') => {
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
                _ => return self.error(span, format!("unexpected character '{c}'")),
            }
        };
        Ok((tok, span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        let mut l = Lexer::new(s, "t");
        let mut out = Vec::new();
        loop {
            let (t, _) = l.next_token().unwrap();
            if t == Tok::Eof {
                return out;
            }
            out.push(t);
        }
    }

    fn op(s: &str) -> Tok {
        Tok::Operator(s.into())
    }

    #[test]
    fn operators_and_the_separator() {
        assert_eq!(
            toks("a -- b"),
            vec![Tok::Ident("a".into()), op("--"), Tok::Ident("b".into())]
        );
        assert_eq!(toks("-->"), vec![op("-->")]);
        assert_eq!(toks("----"), vec![Tok::Separator]);
        assert_eq!(toks("---------"), vec![Tok::Separator]);
        assert_eq!(toks("<= ~= >>>"), vec![op("<="), op("~="), op(">>>")]);
    }

    #[test]
    fn keywords_assignment_and_numbers() {
        assert_eq!(
            toks("at: 1 put:x := 2.5 1."),
            vec![
                Tok::Keyword("at:".into()),
                Tok::Integer("1".into()),
                Tok::Keyword("put:".into()),
                Tok::Ident("x".into()),
                Tok::Assign,
                Tok::Double(2.5),
                Tok::Integer("1".into()),
                Tok::Period,
            ]
        );
    }

    #[test]
    fn symbols_strings_and_comments() {
        assert_eq!(
            toks("#at:put: #+ #'a b' #( \"c\" 'x\\n'"),
            vec![
                Tok::Symbol("at:put:".into()),
                Tok::Symbol("+".into()),
                Tok::Symbol("a b".into()),
                Tok::ArrayStart,
                Tok::Str("x\n".into()),
            ]
        );
        assert_eq!(toks("''''"), vec![Tok::Str("".into()), Tok::Str("".into())]);
    }

    #[test]
    fn errors_have_positions() {
        let mut l = Lexer::new("\n  'a\\q'", "f.som");
        let e = l.next_token().unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.som:2:5: error: unknown escape sequence '\\q'"
        );
        let mut l = Lexer::new("\"open", "f.som");
        assert!(l.next_token().is_err());
    }
}
