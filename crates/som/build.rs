//! Lays out the `som` binary's code in the order listed in `link-order.txt`: the
//! functions programs actually execute first, packed together, so that running a
//! program maps a few hundred kilobytes of code instead of pages all over the 5.6 MB
//! text section (the kernel maps 64 KB around every code page touched). Measured:
//! 1.5 MB less peak RSS on every program (docs/GC.md). `scripts/link-order.sh`
//! regenerates the list; names it lists that the binary lacks are ignored.
//!
//! Only for x86_64 Linux with rustc 1.90 or later, where rustc links with LLD by
//! default (the option is LLD's). `SOM_NO_LINK_ORDER=1` turns it off.

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
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        order.display()
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
