//! The call profile behind `som --profile-calls FILE`: how often each method and block
//! was invoked, most-called first.
//!
//! The counts are the per-method invocation counters that the send path keeps for the
//! tier-1 trigger (`Code::invocations`, bumped on every activation in every mode), so
//! profiling costs nothing extra while the program runs. Primitives and sends that the
//! compiler inlined (`ifTrue:`, `whileTrue:`, `to:do:` ...) have no activation and are
//! not counted. `som-bench synthesize` reads this file (the paper's Appendix A ranks
//! methods by invocation count).
//!
//! Format: one line per invoked method, `count<TAB>label`, sorted by descending count
//! (then by label, so equal runs give equal files). Labels are as in backtraces
//! (`Class>>#selector`, `block in Class>>#selector`), with the block's first source
//! line appended to tell a method's blocks apart.

use crate::universe::Vm;

impl Vm {
    /// Every invoked method's count and label, most-called first.
    pub fn call_profile(&self) -> Vec<(u64, String)> {
        let mut rows: Vec<(u64, String)> = Vec::new();
        for &m in &self.all_methods {
            // SAFETY: methods are immortal.
            let method = unsafe { &*m };
            let Some(code) = method.code() else { continue };
            let count = code.invocations.get();
            if count == 0 {
                continue;
            }
            let mut label = self.method_label(method);
            if !method.enclosing.is_null() {
                let line = code.positions.first().map_or(0, |p| p.line);
                label.push_str(&format!(" (line {line})"));
            }
            rows.push((count, label));
        }
        rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        rows
    }

    /// [`Vm::call_profile`] in the file format above.
    pub fn call_profile_text(&self) -> String {
        self.call_profile()
            .iter()
            .map(|(count, label)| format!("{count}\t{label}\n"))
            .collect()
    }
}
