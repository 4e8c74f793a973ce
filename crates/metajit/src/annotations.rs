//! Handler annotations: the analogue of RPython's hints (`enable_threaded_code`,
//! `dont_look_inside`, `elidable`) for handlers written against [`crate::Machine`].
//!
//! An interpreter definition lists its handlers with [`crate::interpreter_definition!`],
//! giving each an annotation. The macro generates, from the one generic body:
//! * the handler itself (generic over the machine),
//! * a table of [`HandlerInfo`] that the engines consult (which handlers tier-1 code calls,
//!   which a trace may look inside, which fold on constants).

/// How the JIT engines may treat a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Annotation {
    /// Tier-1 code keeps a call to the handler's concrete instance (the paper's
    /// `enable_threaded_code`); the recorder traces through its body.
    Threaded,
    /// Changes control flow: tier 1 compiles its [`crate::Step`] into native branches; the
    /// recorder turns its decision into a guard.
    Control,
    /// Never traced into; traces and tier-1 code call it (`dont_look_inside`).
    Residual,
    /// Pure given constant arguments: folded when its inputs are constants in a trace.
    Elidable,
}

/// One entry of an interpreter definition's handler table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerInfo {
    pub name: &'static str,
    pub annotation: Annotation,
}

/// Declares the handlers of an interpreter definition, each with its annotation
/// (written first, before the handler's doc comment).
///
/// ```
/// use metajit::{interpreter_definition, Machine, Step, StackFrame};
/// struct F { slots: Vec<u64>, sp: usize }
/// impl StackFrame for F {
///     fn slot_base(&mut self) -> *mut u64 { self.slots.as_mut_ptr() }
///     fn sp(&self) -> usize { self.sp }
///     fn set_sp(&mut self, sp: usize) { self.sp = sp }
///     fn aux_base(&mut self) -> *mut u64 { std::ptr::null_mut() }
/// }
/// interpreter_definition! {
///     #[threaded]
///     /// Duplicates the top of the stack.
///     pub fn dup<M: Machine>(m: &mut M, f: &mut F) -> Step<M::W, ()> {
///         let v = m.peek(f, 0);
///         m.push(f, v);
///         Step::Next
///     }
/// }
/// let mut f = F { slots: vec![7, 0], sp: 1 };
/// assert_eq!(dup(&mut metajit::Concrete, &mut f), Step::Next);
/// assert_eq!(f.slots, vec![7, 7]);
/// assert_eq!(HANDLERS[0].name, "dup");
/// assert_eq!(HANDLERS[0].annotation, metajit::Annotation::Threaded);
/// ```
#[macro_export]
macro_rules! interpreter_definition {
    ($(
        #[$ann:ident]
        $(#[doc = $doc:literal])*
        $vis:vis fn $name:ident $(<$gm:ident : $gb:path>)? ($($args:tt)*) -> $ret:ty $body:block
    )*) => {
        $(
            $(#[doc = $doc])*
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            $vis fn $name $(<$gm: $gb>)? ($($args)*) -> $ret $body
        )*

        /// The handler table of this interpreter definition, in declaration order.
        pub const HANDLERS: &[$crate::HandlerInfo] = &[
            $($crate::HandlerInfo {
                name: stringify!($name),
                annotation: $crate::interpreter_definition!(@ann $ann),
            }),*
        ];
    };
    (@ann threaded) => { $crate::Annotation::Threaded };
    (@ann control) => { $crate::Annotation::Control };
    (@ann residual) => { $crate::Annotation::Residual };
    (@ann elidable) => { $crate::Annotation::Elidable };
}
