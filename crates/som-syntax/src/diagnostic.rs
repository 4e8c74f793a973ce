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

impl SyntaxError {
    /// The error as the VM reports it, given the text of the file it is in: the
    /// one-line form (`file:line:column: error: message`), then the line of source
    /// with a caret under the column, framed as the public SOM IntegrationTests
    /// expect (`File 'file', line L, column C:`, the line, the message).
    pub fn report(&self, source: &str) -> String {
        let Span { line, col } = self.span;
        let mut out = format!("{self}\n");
        if let Some(text) = source.lines().nth(line.saturating_sub(1) as usize) {
            let caret: String = text
                .chars()
                .take(col.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!(
                "  File '{}', line {line}, column {col}:\n    {text}\n    {caret}^\n  {}\n",
                self.file, self.message
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_shows_the_line_and_a_caret_under_the_column() {
        let e = SyntaxError {
            file: "t.som".into(),
            span: Span { line: 2, col: 5 },
            message: "oops".into(),
        };
        assert_eq!(
            e.report("T = (\n\tx: y\n)"),
            "t.som:2:5: error: oops\n  File 't.som', line 2, column 5:\n    \tx: y\n    \t   ^\n  oops\n"
        );
        // Without the source line, only the one-line form.
        assert_eq!(e.report(""), "t.som:2:5: error: oops\n");
    }
}
