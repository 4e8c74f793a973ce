//! The embedded core library: the sources in the repository's `core-lib/`, compiled
//! into the binary so that no classpath is needed. A class file of the same name on the
//! classpath takes precedence (see `classloader`).

macro_rules! core_classes {
    ($($name:literal),* $(,)?) => {
        /// (class name, source) of every embedded class.
        pub const CLASSES: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../../../core-lib/", $name, ".som")))),*
        ];
    };
}

core_classes!(
    "Array",
    "Block",
    "Block1",
    "Block2",
    "Block3",
    "Boolean",
    "Class",
    "Dictionary",
    "Double",
    "False",
    "HashEntry",
    "Hashtable",
    "Integer",
    "Metaclass",
    "Method",
    "Nil",
    "Object",
    "Pair",
    "Primitive",
    "Set",
    "String",
    "Symbol",
    "System",
    "True",
    "Vector",
);

/// The embedded source of class `name`.
pub fn source(name: &str) -> Option<&'static str> {
    CLASSES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}
