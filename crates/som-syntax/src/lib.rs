//! The SOM language front end: source text -> tokens (`lexer`) -> AST (`parser`, `ast`),
//! with errors that name file:line:column (`diagnostic`). It knows nothing of the VM;
//! the bytecode compiler in `som-vm` consumes the AST.

pub mod ast;
pub mod diagnostic;
pub mod lexer;
pub mod parser;

pub use ast::*;
pub use diagnostic::SyntaxError;
pub use parser::{parse_class, parse_repl_input};
