//! The text form of a trace (what `--jit-log` writes and IR tests compare). One
//! instruction per line; `%n` names instruction `n`'s result, `#v` a constant, `@s`
//! a snapshot; snapshots follow the instructions. [`super::parse`] reads it back.

use super::{Effects, MemKind, Op, OvfOp, Ref, SnapFrame, Trace};
use crate::machine::{BinOp, Cmp, FBinOp};
use std::fmt::Write;

pub(crate) fn bin_name(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "add",
        BinOp::Sub => "sub",
        BinOp::And => "and",
        BinOp::Or => "or",
        BinOp::Xor => "xor",
        BinOp::Shl => "shl",
        BinOp::Sar => "sar",
        BinOp::Shr => "shr",
    }
}

pub(crate) fn fbin_name(op: FBinOp) -> &'static str {
    match op {
        FBinOp::Add => "fadd",
        FBinOp::Sub => "fsub",
        FBinOp::Mul => "fmul",
        FBinOp::Div => "fdiv",
    }
}

pub(crate) fn cmp_name(c: Cmp) -> &'static str {
    match c {
        Cmp::Eq => "eq",
        Cmp::Ne => "ne",
        Cmp::Lt => "lt",
        Cmp::Le => "le",
        Cmp::Gt => "gt",
        Cmp::Ge => "ge",
    }
}

pub(crate) fn ovf_name(op: OvfOp) -> &'static str {
    match op {
        OvfOp::Add => "addovf",
        OvfOp::Sub => "subovf",
        OvfOp::Mul => "mulovf",
    }
}

impl Trace {
    /// The text of a reference (`$k`: virtual object `k` of a snapshot).
    pub fn ref_text(&self, r: Ref) -> String {
        if r.is_virtual() {
            return format!("${}", r.virtual_index());
        }
        match self.const_value(r) {
            Some(v) => const_text(v),
            None => format!("%{}", r.index()),
        }
    }

    /// The text of one instruction (without its result name).
    pub fn op_text(&self, op: &Op) -> String {
        let r = |x: Ref| self.ref_text(x);
        match op {
            Op::SLoad(n) => format!("sload {n}"),
            Op::AuxLoad(n) => format!("auxload {n}"),
            Op::SlotAddr(n) => format!("slotaddr {n}"),
            Op::Param(n) => format!("param {n}"),
            Op::ToLoop => "toloop".into(),
            Op::Link(n) => format!("link {n}"),
            Op::Exit(s) => format!("exit @{s}"),
            &Op::Finish(v) => format!("finish {}", r(v)),
            &Op::CallCheck(w, s) => format!("callcheck {} @{s}", r(w)),
            &Op::Bin(o, a, b) => format!("{} {}, {}", bin_name(o), r(a), r(b)),
            &Op::Flag(c, a, b) => format!("flag.{} {}, {}", cmp_name(c), r(a), r(b)),
            &Op::FBin(o, a, b) => format!("{} {}, {}", fbin_name(o), r(a), r(b)),
            &Op::Ovf(o, a, b, s) => format!("{} {}, {} @{s}", ovf_name(o), r(a), r(b)),
            &Op::GuardBits {
                w,
                mask,
                expect,
                holds,
                snap,
            } => format!(
                "guard.bits {}, {mask:#x}, {expect:#x}, {holds} @{snap}",
                r(w)
            ),
            &Op::GuardCmp {
                cc,
                float,
                a,
                b,
                holds,
                snap,
            } => format!(
                "guard.{}{} {}, {}, {holds} @{snap}",
                if float { "f" } else { "" },
                cmp_name(cc),
                r(a),
                r(b)
            ),
            &Op::Load { base, offset, kind } => format!(
                "load {}, {offset}, {}",
                r(base),
                match kind {
                    MemKind::Mutable => "mut",
                    MemKind::Immutable => "imm",
                }
            ),
            &Op::Store {
                base,
                offset,
                value,
            } => format!("store {}, {offset}, {}", r(base), r(value)),
            &Op::SStore(n, v) => format!("sstore {n}, {}", r(v)),
            &Op::AuxStore(n, v) => format!("auxstore {n}, {}", r(v)),
            Op::Call {
                func,
                args,
                effects,
            } => {
                let args: Vec<String> = args.iter().map(|&a| r(a)).collect();
                format!(
                    "call {func:#x}({}) {}",
                    args.join(", "),
                    effects_text(*effects)
                )
            }
            Op::Alloc { func, args, fields } => {
                format!("alloc {}", self.allocation_text(*func, args, fields))
            }
            Op::Loop => "loop".into(),
            Op::Poll => "poll".into(),
            Op::Jump(args) if args.is_empty() => "jump".into(),
            Op::Jump(args) => {
                let args: Vec<String> = args.iter().map(|&a| r(a)).collect();
                format!("jump {}", args.join(", "))
            }
            &Op::Phi(v) => format!("phi {}", r(v)),
        }
    }

    /// `func(args){offset:value,...}`, an allocation's or a virtual object's.
    fn allocation_text(&self, func: u64, args: &[Ref], fields: &[(i32, Ref)]) -> String {
        let args: Vec<String> = args.iter().map(|&a| self.ref_text(a)).collect();
        let fields: Vec<String> = fields
            .iter()
            .map(|&(o, v)| format!("{o}:{}", self.ref_text(v)))
            .collect();
        format!("{func:#x}({}){{{}}}", args.join(","), fields.join(","))
    }

    fn frame_text(&self, f: &SnapFrame) -> String {
        let aux: Vec<String> = f
            .aux
            .iter()
            .map(|&(i, v)| format!("{i}:{}", self.ref_text(v)))
            .collect();
        format!(
            "[code={:#x} entry={} pc={} base={} sp={} aux={}]",
            f.code,
            f.entry,
            f.pc,
            f.base,
            f.sp,
            aux.join(",")
        )
    }

    /// The whole trace as text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let k = &self.key;
        let _ = writeln!(
            out,
            "trace code={:#x} pc={} extra={:#x}",
            k.code, k.pc, k.extra
        );
        for (i, op) in self.ops.iter().enumerate() {
            if op.has_value() {
                let _ = writeln!(out, "  %{i} = {}", self.op_text(op));
            } else {
                let _ = writeln!(out, "  {}", self.op_text(op));
            }
        }
        for (i, s) in self.snaps.iter().enumerate() {
            let frames: Vec<String> = s.frames.iter().map(|f| self.frame_text(f)).collect();
            let slots: Vec<String> = s
                .slots
                .iter()
                .map(|&(n, v)| format!("{n}:{}", self.ref_text(v)))
                .collect();
            let _ = write!(
                out,
                "snapshot @{i}: {} slots={}",
                frames.join(" "),
                slots.join(",")
            );
            if !s.virtuals.is_empty() {
                let virtuals: Vec<String> = s
                    .virtuals
                    .iter()
                    .map(|v| self.allocation_text(v.func, &v.args, &v.fields))
                    .collect();
                let _ = write!(out, " virtuals={}", virtuals.join(";"));
            }
            out.push('\n');
        }
        out
    }
}

/// A constant as text: small numbers in decimal, others in hex.
fn const_text(v: u64) -> String {
    let s = v as i64;
    if (-(1 << 20)..(1 << 20)).contains(&s) {
        format!("#{s}")
    } else {
        format!("#{v:#x}")
    }
}

fn effects_text(e: Effects) -> String {
    let names: Vec<&str> = Effects::NAMES
        .iter()
        .filter(|(_, f)| e.contains(*f))
        .map(|(n, _)| *n)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join("|")
    }
}
