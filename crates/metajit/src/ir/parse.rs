//! Reads the text form of [`super::print`] back into a [`Trace`], so tests can state
//! an input trace and an expected one as text. Result names (`%x`) may be any word;
//! they are renumbered by position. Errors name the line.

use super::print::{bin_name, cmp_name, fbin_name, ovf_name};
use super::{Effects, LoopKey, MemKind, Op, OvfOp, Ref, SnapFrame, Snapshot, Trace, Virtual};
use crate::machine::{BinOp, Cmp, FBinOp};
use std::collections::HashMap;

const BINS: [BinOp; 8] = [
    BinOp::Add,
    BinOp::Sub,
    BinOp::And,
    BinOp::Or,
    BinOp::Xor,
    BinOp::Shl,
    BinOp::Sar,
    BinOp::Shr,
];
const FBINS: [FBinOp; 4] = [FBinOp::Add, FBinOp::Sub, FBinOp::Mul, FBinOp::Div];
const CMPS: [Cmp; 6] = [Cmp::Eq, Cmp::Ne, Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge];
const OVFS: [OvfOp; 3] = [OvfOp::Add, OvfOp::Sub, OvfOp::Mul];

struct Parser {
    trace: Trace,
    names: HashMap<String, Ref>,
    line: usize,
}

/// Parses a trace from its text form.
pub fn parse(text: &str) -> Result<Trace, String> {
    let mut p = Parser {
        trace: Trace::new(LoopKey::default()),
        names: HashMap::new(),
        line: 0,
    };
    for (n, raw) in text.lines().enumerate() {
        p.line = n + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        p.line_of(line)
            .map_err(|e| format!("line {}: {e}: {line}", n + 1))?;
    }
    Ok(p.trace)
}

fn number(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let v = match digits.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).map(|v| v as i64),
        None => digits.parse::<i64>(),
    }
    .map_err(|_| format!("not a number: {s}"))?;
    Ok(if neg { v.wrapping_neg() } else { v })
}

impl Parser {
    fn line_of(&mut self, line: &str) -> Result<(), String> {
        if let Some(rest) = line.strip_prefix("trace") {
            return self.header(rest);
        }
        if let Some(rest) = line.strip_prefix("snapshot") {
            return self.snapshot(rest);
        }
        let (name, body) = match line.split_once('=') {
            Some((lhs, rhs)) if lhs.trim().starts_with('%') => (Some(lhs.trim()), rhs.trim()),
            _ => (None, line),
        };
        let op = self.op(body)?;
        if op.has_value() != name.is_some() {
            return Err(
                "a result name is required exactly for value-producing instructions".into(),
            );
        }
        let r = self.trace.push(op);
        if let Some(name) = name {
            self.names.insert(name.to_string(), r);
        }
        Ok(())
    }

    fn header(&mut self, rest: &str) -> Result<(), String> {
        for field in rest.split_whitespace() {
            let (k, v) = field.split_once('=').ok_or("expected key=value")?;
            let v = number(v)?;
            match k {
                "code" => self.trace.key.code = v as u64,
                "pc" => self.trace.key.pc = v as u32,
                "extra" => self.trace.key.extra = v as u64,
                _ => return Err(format!("unknown trace field {k}")),
            }
        }
        Ok(())
    }

    fn operand(&mut self, s: &str) -> Result<Ref, String> {
        let s = s.trim();
        if let Some(c) = s.strip_prefix('#') {
            return Ok(self.trace.konst(number(c)? as u64));
        }
        if let Some(k) = s.strip_prefix('$') {
            return Ok(Ref::virtual_object(number(k)? as usize));
        }
        self.names
            .get(s)
            .copied()
            .ok_or_else(|| format!("undefined value {s}"))
    }

    fn snap_id(s: &str) -> Result<u32, String> {
        let s = s.trim();
        let n = s.strip_prefix('@').ok_or("expected @snapshot")?;
        Ok(number(n)? as u32)
    }

    /// Splits `args @s` into the comma-separated arguments and the snapshot.
    fn with_snap(s: &str) -> Result<(Vec<&str>, u32), String> {
        let (args, snap) = s.rsplit_once('@').ok_or("a guard needs @snapshot")?;
        Ok((
            args.split(',').map(str::trim).collect(),
            Self::snap_id(&format!("@{snap}"))?,
        ))
    }

    fn two(&mut self, args: &[&str]) -> Result<(Ref, Ref), String> {
        if args.len() != 2 {
            return Err("expected two operands".into());
        }
        Ok((self.operand(args[0])?, self.operand(args[1])?))
    }

    fn op(&mut self, body: &str) -> Result<Op, String> {
        let (mnemonic, rest) = body.split_once(' ').unwrap_or((body, ""));
        let args: Vec<&str> = rest.split(',').map(str::trim).collect();
        match mnemonic {
            "loop" => return Ok(Op::Loop),
            "poll" => return Ok(Op::Poll),
            "jump" if rest.trim().is_empty() => return Ok(Op::Jump(Vec::new())),
            "jump" => {
                let args = args
                    .iter()
                    .map(|a| self.operand(a))
                    .collect::<Result<_, _>>()?;
                return Ok(Op::Jump(args));
            }
            "phi" => return Ok(Op::Phi(self.operand(rest)?)),
            "sload" => return Ok(Op::SLoad(number(rest)? as i32)),
            "auxload" => return Ok(Op::AuxLoad(number(rest)? as u16)),
            "slotaddr" => return Ok(Op::SlotAddr(number(rest)? as i32)),
            "param" => return Ok(Op::Param(number(rest)? as u32)),
            "toloop" => return Ok(Op::ToLoop),
            "link" => return Ok(Op::Link(number(rest)? as u32)),
            "exit" => return Ok(Op::Exit(Self::snap_id(rest)?)),
            "finish" => return Ok(Op::Finish(self.operand(rest)?)),
            "callcheck" => {
                let (a, snap) = Self::with_snap(rest)?;
                if a.len() != 1 {
                    return Err("expected one operand".into());
                }
                return Ok(Op::CallCheck(self.operand(a[0])?, snap));
            }
            "sstore" | "auxstore" => {
                if args.len() != 2 {
                    return Err("expected slot, value".into());
                }
                let n = number(args[0])?;
                let v = self.operand(args[1])?;
                return Ok(if mnemonic == "sstore" {
                    Op::SStore(n as i32, v)
                } else {
                    Op::AuxStore(n as u16, v)
                });
            }
            "load" => {
                if args.len() != 3 {
                    return Err("expected base, offset, mut|imm".into());
                }
                let kind = match args[2] {
                    "mut" => MemKind::Mutable,
                    "imm" => MemKind::Immutable,
                    k => return Err(format!("unknown load kind {k}")),
                };
                return Ok(Op::Load {
                    base: self.operand(args[0])?,
                    offset: number(args[1])? as i32,
                    kind,
                });
            }
            "store" => {
                if args.len() != 3 {
                    return Err("expected base, offset, value".into());
                }
                return Ok(Op::Store {
                    base: self.operand(args[0])?,
                    offset: number(args[1])? as i32,
                    value: self.operand(args[2])?,
                });
            }
            "call" => return self.call(rest),
            "alloc" => {
                let Virtual { func, args, fields } = self.allocation(rest)?;
                return Ok(Op::Alloc { func, args, fields });
            }
            "guard.bits" => {
                let (a, snap) = Self::with_snap(rest)?;
                if a.len() != 4 {
                    return Err("expected w, mask, expect, holds".into());
                }
                return Ok(Op::GuardBits {
                    w: self.operand(a[0])?,
                    mask: number(a[1])? as u64,
                    expect: number(a[2])? as u64,
                    holds: Self::boolean(a[3])?,
                    snap,
                });
            }
            _ => {}
        }
        if let Some(b) = BINS.iter().find(|&&b| bin_name(b) == mnemonic) {
            let (x, y) = self.two(&args)?;
            return Ok(Op::Bin(*b, x, y));
        }
        if let Some(b) = FBINS.iter().find(|&&b| fbin_name(b) == mnemonic) {
            let (x, y) = self.two(&args)?;
            return Ok(Op::FBin(*b, x, y));
        }
        if let Some(o) = OVFS.iter().find(|&&o| ovf_name(o) == mnemonic) {
            let (a, snap) = Self::with_snap(rest)?;
            let (x, y) = self.two(&a)?;
            return Ok(Op::Ovf(*o, x, y, snap));
        }
        if let Some(c) = mnemonic.strip_prefix("flag.") {
            let cc = Self::cmp(c)?;
            let (x, y) = self.two(&args)?;
            return Ok(Op::Flag(cc, x, y));
        }
        if let Some(c) = mnemonic.strip_prefix("guard.") {
            let (float, c) = match c.strip_prefix('f') {
                Some(c) if Self::cmp(c).is_ok() => (true, c),
                _ => (false, c),
            };
            let cc = Self::cmp(c)?;
            let (a, snap) = Self::with_snap(rest)?;
            if a.len() != 3 {
                return Err("expected a, b, holds".into());
            }
            return Ok(Op::GuardCmp {
                cc,
                float,
                a: self.operand(a[0])?,
                b: self.operand(a[1])?,
                holds: Self::boolean(a[2])?,
                snap,
            });
        }
        Err(format!("unknown instruction {mnemonic}"))
    }

    fn cmp(s: &str) -> Result<Cmp, String> {
        CMPS.iter()
            .copied()
            .find(|&c| cmp_name(c) == s)
            .ok_or_else(|| format!("unknown comparison {s}"))
    }

    fn boolean(s: &str) -> Result<bool, String> {
        match s {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("expected true or false, got {s}")),
        }
    }

    /// A comma-separated list of operands (possibly empty).
    fn operands(&mut self, list: &str) -> Result<Vec<Ref>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| self.operand(a))
            .collect()
    }

    fn call(&mut self, rest: &str) -> Result<Op, String> {
        let (func, tail) = rest.split_once('(').ok_or("expected func(args)")?;
        let (args, effects) = tail.split_once(')').ok_or("expected )")?;
        let args = self.operands(args)?;
        let mut e = Effects::NONE;
        for name in effects.trim().split('|') {
            match Effects::NAMES.iter().find(|(n, _)| *n == name) {
                Some(&(_, f)) => e = e.union(f),
                None if name == "none" => {}
                None => return Err(format!("unknown effect {name}")),
            }
        }
        Ok(Op::Call {
            func: number(func)? as u64,
            args,
            effects: e,
        })
    }

    /// `func(args){offset:value,...}`.
    fn allocation(&mut self, text: &str) -> Result<Virtual, String> {
        let (func, tail) = text.split_once('(').ok_or("expected func(args){fields}")?;
        let (args, tail) = tail.split_once(')').ok_or("expected )")?;
        let fields = tail
            .trim()
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .ok_or("expected {fields}")?;
        let args = self.operands(args)?;
        let fields = fields
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|f| {
                let (o, v) = f.split_once(':').ok_or("expected offset:value")?;
                Ok((number(o)? as i32, self.operand(v)?))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Virtual {
            func: number(func)? as u64,
            args,
            fields,
        })
    }

    fn snapshot(&mut self, rest: &str) -> Result<(), String> {
        let (id, body) = rest.split_once(':').ok_or("expected snapshot @n: ...")?;
        let id = Self::snap_id(id)? as usize;
        if id != self.trace.snaps.len() {
            return Err(format!(
                "snapshots must be numbered in order (expected @{})",
                self.trace.snaps.len()
            ));
        }
        let mut snap = Snapshot::default();
        let mut rest = body.trim();
        while let Some(r) = rest.strip_prefix('[') {
            let (frame, tail) = r.split_once(']').ok_or("expected ]")?;
            snap.frames.push(self.frame(frame)?);
            rest = tail.trim();
        }
        let slots = rest.strip_prefix("slots=").ok_or("expected slots=")?;
        let (slots, virtuals) = match slots.split_once(" virtuals=") {
            Some((s, v)) => (s, v),
            None => (slots, ""),
        };
        for v in virtuals.split(';').map(str::trim).filter(|v| !v.is_empty()) {
            let v = self.allocation(v)?;
            snap.virtuals.push(v);
        }
        for entry in slots.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (n, v) = entry.split_once(':').ok_or("expected slot:value")?;
            snap.slots.push((number(n)? as i32, self.operand(v)?));
        }
        self.trace.snaps.push(snap);
        Ok(())
    }

    fn frame(&mut self, text: &str) -> Result<SnapFrame, String> {
        let mut f = SnapFrame {
            code: 0,
            entry: 0,
            pc: 0,
            base: 0,
            sp: 0,
            aux: vec![],
        };
        for field in text.split_whitespace() {
            let (k, v) = field.split_once('=').ok_or("expected key=value")?;
            match k {
                "code" => f.code = number(v)? as u64,
                "entry" => f.entry = number(v)? as u64,
                "pc" => f.pc = number(v)? as u32,
                "base" => f.base = number(v)? as i32,
                "sp" => f.sp = number(v)? as u32,
                "aux" => {
                    for e in v.split(',').filter(|e| !e.is_empty()) {
                        let (i, r) = e.split_once(':').ok_or("expected index:value")?;
                        f.aux.push((number(i)? as u16, self.operand(r)?));
                    }
                }
                _ => return Err(format!("unknown frame field {k}")),
            }
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
trace code=0x10 pc=3 extra=0x0
  loop
  poll
  %2 = sload 1
  %3 = auxload 0
  %4 = add %2, #-2
  %5 = flag.lt %2, %4
  %6 = fmul %2, %4
  %7 = addovf %2, %4 @0
  guard.bits %2, 0x1, 0x1, true @0
  guard.lt %7, #100, true @1
  guard.fge %6, %2, false @1
  %11 = load %3, 24, imm
  store %3, 24, %11
  %13 = call 0x1234(%2, #0x123456789) reads|allocates
  callcheck %13 @1
  %15 = slotaddr 4
  %16 = alloc 0x99(%2,#3){8:%2,16:#0}
  sstore 1, %7
  auxstore 0, %15
  jump
snapshot @0: [code=0x10 entry=0 pc=3 base=0 sp=4 aux=] slots=
snapshot @1: [code=0x10 entry=0 pc=5 base=0 sp=4 aux=0:%3] [code=0x20 entry=1 pc=0 base=3 sp=2 aux=0:#7,1:%2] slots=1:%7,4:#-2,5:$1 virtuals=0x98(){8:%2};0x99($0,#1){8:$0,16:$1}
";

    #[test]
    fn text_round_trips() {
        let t = parse(SAMPLE).unwrap();
        assert_eq!(t.ops.len(), 20);
        assert_eq!(t.snaps.len(), 2);
        assert_eq!(t.to_text(), SAMPLE);
        assert_eq!(parse(&t.to_text()).unwrap(), t);
    }

    #[test]
    fn names_are_renumbered_and_errors_name_the_line() {
        let t = parse("loop\n%a = sload 0\n%b = add %a, %a\njump\n").unwrap();
        assert_eq!(t.ops[2], Op::Bin(BinOp::Add, Ref(1), Ref(1)));
        let e = parse("loop\n%b = add %a, #1\n").unwrap_err();
        assert!(e.starts_with("line 2: undefined value %a"), "{e}");
        let e = parse("frob %x\n").unwrap_err();
        assert!(e.contains("unknown instruction frob"), "{e}");
    }
}
