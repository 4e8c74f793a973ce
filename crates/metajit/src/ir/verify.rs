//! The trace verifier: checks what every later stage assumes. Each operand is a
//! constant or the result of an earlier value-producing instruction (SSA); every
//! guard names an existing snapshot whose values are defined before the guard; a loop
//! trace has one `loop` header and ends with `jump`, a bridge has none, may read
//! `param`s and ends with `toloop`; and residual calls take at most
//! [`super::MAX_CALL_ARGS`] arguments. The recorder runs it on every trace in debug
//! builds; the backend refuses traces it rejects.

use super::{Op, Ref, Trace, MAX_CALL_ARGS};

/// Checks `t`; the error names the first offending instruction.
pub fn verify(t: &Trace) -> Result<(), String> {
    let defined = |r: Ref, at: usize| -> Result<(), String> {
        if r.is_const() {
            if r.index() >= t.consts.len() {
                return Err(format!("%{at}: unknown constant {}", r.index()));
            }
            return Ok(());
        }
        let i = r.index();
        if i >= at {
            return Err(format!("%{at}: uses %{i}, which is not defined before it"));
        }
        if !t.ops[i].has_value() {
            return Err(format!("%{at}: uses %{i}, which has no value"));
        }
        Ok(())
    };
    let mut loops = 0;
    // The phis after the loop header, and whether the next instruction may be one.
    let (mut phis, mut phi_allowed) = (0, false);
    for (at, op) in t.ops.iter().enumerate() {
        match op {
            Op::Phi(_) if !phi_allowed => {
                return Err(format!("%{at}: a phi not directly after the loop header"))
            }
            Op::Phi(_) => phis += 1,
            _ => phi_allowed = false,
        }
        for r in op.operands() {
            if r.is_virtual() {
                return Err(format!("%{at}: a virtual object outside a snapshot"));
            }
            defined(r, at)?;
        }
        if let Some(s) = op.snap() {
            let snap = t
                .snaps
                .get(s as usize)
                .ok_or_else(|| format!("%{at}: unknown snapshot @{s}"))?;
            if snap.frames.is_empty() {
                return Err(format!("%{at}: snapshot @{s} has no frame"));
            }
            for r in snap.live() {
                defined(r, at).map_err(|e| format!("{e} (in snapshot @{s})"))?;
            }
            for (k, v) in snap.virtuals.iter().enumerate() {
                if v.args.len() > MAX_CALL_ARGS {
                    return Err(format!(
                        "%{at}: snapshot @{s}: virtual ${k} has too many arguments"
                    ));
                }
                if v.args
                    .iter()
                    .any(|a| a.is_virtual() && a.virtual_index() >= k)
                {
                    return Err(format!(
                        "%{at}: snapshot @{s}: virtual ${k} is allocated from a later one"
                    ));
                }
            }
            if let Some(r) = snap
                .refs()
                .find(|r| r.is_virtual() && r.virtual_index() >= snap.virtuals.len())
            {
                return Err(format!(
                    "%{at}: snapshot @{s} names virtual ${}, which it does not have",
                    r.virtual_index()
                ));
            }
        }
        match op {
            Op::Loop => {
                phi_allowed = true;
                loops += 1;
                if loops > 1 {
                    return Err(format!("%{at}: a second loop header"));
                }
            }
            Op::Jump(_) | Op::ToLoop | Op::Finish(_) | Op::Link(_) | Op::Exit(_)
                if at + 1 != t.ops.len() =>
            {
                return Err(format!("%{at}: the trace goes on after its end"))
            }
            Op::Jump(_) if loops == 0 => return Err(format!("%{at}: jump without a loop header")),
            Op::Jump(args) if args.len() != phis => {
                return Err(format!(
                    "%{at}: jump with {} values for {phis} phis",
                    args.len()
                ))
            }
            Op::ToLoop if loops > 0 => return Err(format!("%{at}: a loop trace ends as a bridge")),
            Op::Finish(_) if loops > 0 => return Err(format!("%{at}: a loop trace returns")),
            Op::Param(_) if loops > 0 => return Err(format!("%{at}: a loop trace with a param")),
            Op::Call { args, .. } | Op::Alloc { args, .. } if args.len() > MAX_CALL_ARGS => {
                return Err(format!(
                    "%{at}: a call with {} arguments (at most {MAX_CALL_ARGS})",
                    args.len()
                ))
            }
            _ => {}
        }
    }
    if !matches!(
        t.ops.last(),
        Some(Op::Jump(_) | Op::ToLoop | Op::Finish(_) | Op::Link(_) | Op::Exit(_))
    ) {
        return Err("the trace does not end with jump, toloop, finish, link or exit".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    const FRAME: &str = "snapshot @0: [code=0x1 entry=0 pc=0 base=0 sp=1 aux=] slots=";

    #[test]
    fn a_well_formed_trace_passes() {
        let t = parse(&format!(
            "loop\n%a = sload 0\nguard.bits %a, 1, 1, true @0\njump\n{FRAME}\n"
        ))
        .unwrap();
        verify(&t).unwrap();
    }

    #[test]
    fn malformed_traces_are_rejected_with_the_reason() {
        let check = |text: &str, want: &str| {
            let t = parse(text).unwrap();
            let e = verify(&t).unwrap_err();
            assert!(e.contains(want), "{e} does not mention {want}");
        };
        check(
            "loop\n%a = sload 0\nguard.bits %a, 1, 1, true @3\njump\n",
            "unknown snapshot",
        );
        check("loop\n%a = sload 0\n", "does not end with jump");
        verify(&parse("%p = param 0\nsstore 1, %p\ntoloop\n").unwrap()).unwrap();
        verify(&parse("%a = sload 1\nfinish %a\n").unwrap()).unwrap();
        check("loop\n%a = sload 1\nfinish %a\n", "a loop trace returns");
        check("%a = sload 0\njump\n", "without a loop header");
        check("loop\njump\nloop\njump\n", "goes on after its end");
        check("loop\n%p = param 0\njump\n", "a loop trace with a param");
        check("loop\ntoloop\n", "ends as a bridge");
        check(
            "loop\n%a = sload 0\nguard.bits %a, 1, 1, true @0\n%b = sload 1\njump\n\
             snapshot @0: [code=0x1 entry=0 pc=0 base=0 sp=1 aux=] slots=1:%b\n",
            "not defined before it",
        );
        // A use of a value-less instruction, built directly (the parser cannot name one).
        let mut t = parse("loop\n%a = sload 0\nsstore 0, %a\njump\n").unwrap();
        t.ops.insert(3, Op::SStore(1, Ref(2)));
        assert!(verify(&t).unwrap_err().contains("has no value"));
    }
}
