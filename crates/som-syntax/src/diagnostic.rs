//! Syntax errors with the file, line and column where they were found.

use crate::ast::Span;
use std::fmt;

/// A syntax error. Displays as `file:line:column: error: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub file: String,
    pub span: Span,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.span.line, self.span.col, self.message
        )
    }
}

impl std::error::Error for SyntaxError {}
