//! Lays out the `som` binary's code in the order listed in `link-order.txt`: the
//! functions programs actually execute first, packed together, so that running a
//! program maps a few hundred kilobytes of code instead of pages all over the 5.6 MB
//! text section (the kernel maps 64 KB around every code page touched). Measured:
//! about 1.5 MB less peak RSS on every program (docs/GC.md).
//!
//! The list holds mangled Rust names without their hash, which changes with almost
//! every build; each becomes a section-name pattern (every Rust function has its own
//! `.text.<symbol>` section) in a linker script that only rewrites the order of
//! `.text` (LLD's `OVERWRITE_SECTIONS`), so names that no longer exist match nothing.
//! `scripts/link-order.sh` regenerates the list.
//!
//! Only for x86_64 Linux with rustc 1.90 or later, where rustc links with LLD by
//! default. `SOM_NO_LINK_ORDER=1` turns it off.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=SOM_NO_LINK_ORDER");
    let order = Path::new(env!("CARGO_MANIFEST_DIR")).join("link-order.txt");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target != "x86_64-unknown-linux-gnu"
        || std::env::var_os("SOM_NO_LINK_ORDER").is_some()
        || !order.exists()
        || !rustc_links_with_lld()
    {
        return;
    }
    let names = std::fs::read_to_string(&order).expect("link-order.txt is readable");
    let mut script = String::from("OVERWRITE_SECTIONS {\n  .text : {\n");
    for name in names.lines().map(str::trim).filter(|n| is_pattern(n)) {
        script.push_str(&format!("    *(.text.{name}*)\n"));
    }
    // Then everything else, in the default order.
    script.push_str("    *(.text.unlikely .text.*_unlikely .text.unlikely.*)\n");
    script.push_str("    *(.text.exit .text.exit.*)\n");
    script.push_str("    *(.text.startup .text.startup.*)\n");
    script.push_str("    *(.text.hot .text.hot.*)\n");
    script.push_str("    *(.text .text.*)\n  }\n}\n");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let script_path = Path::new(&out_dir).join("link-order.ld");
    std::fs::write(&script_path, script).expect("OUT_DIR is writable");
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script_path.display());
    // Exact names: C library functions (static glibc: stable names, but sections
    // shared per object file) and generic Rust instances whose unhashed name is
    // shared by several instances (only the hash tells them apart, so the list keeps
    // it; it goes stale with code changes). LLD's symbol ordering moves their
    // sections to the front of the catch-all pattern above.
    let c_names: String = names
        .lines()
        .map(str::trim)
        .filter(|n| !n.is_empty() && !is_pattern(n))
        .map(|n| format!("{n}\n"))
        .collect();
    let symbols_path = Path::new(&out_dir).join("link-order.symbols");
    std::fs::write(&symbols_path, c_names).expect("OUT_DIR is writable");
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        symbols_path.display()
    );
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}

/// Whether this rustc is 1.90 or later (LLD became its default linker on x86_64
/// Linux then) and no other linker is configured for the target.
fn rustc_links_with_lld() -> bool {
    if std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some() {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    let version = String::from_utf8_lossy(&out.stdout);
    let minor = version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 90)
}

/// Whether a listed name is a Rust name without its hash (matched as a prefix); the
/// others are exact symbol names.
fn is_pattern(name: &str) -> bool {
    let hashed = name.len() > 20 && {
        let tail = &name[name.len() - 20..];
        tail.starts_with("17h")
            && tail.ends_with('E')
            && tail[3..19].bytes().all(|b| b.is_ascii_hexdigit())
    };
    name.starts_with("_ZN") && !hashed
}
