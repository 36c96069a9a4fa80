//! JSON ↔ protobuf wire bytes directly, driven by the descriptor: no `DynamicMessage` per call.
//! Both directions cover plain messages (scalars, enums, strings, bytes, nested and repeated
//! fields) and answer `None` for anything else, where the caller uses the `json` module's
//! `DynamicMessage` path, the reference both are tested against.

use std::io::Write as _;

use base64::Engine as _;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use super::json::ResponseOptions;

/// One field record on the wire.
#[derive(Debug, Clone, Copy)]
enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Len(&'a [u8]),
}

fn varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        if shift == 63 && byte > 1 {
            return None;
        }
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if b.len() < n {
        return None;
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Some(head)
}

/// Splits a message into `(field number, record)` pairs in wire order; `None` when malformed
/// or when it holds groups (wire types 3 and 4).
fn records(mut b: &[u8]) -> Option<Vec<(u32, Raw<'_>)>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let number = u32::try_from(key >> 3).ok().filter(|n| *n > 0)?;
        let raw = match key & 7 {
            0 => Raw::Varint(varint(&mut b)?),
            1 => Raw::Fixed64(u64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?)),
            2 => {
                let n = usize::try_from(varint(&mut b)?).ok()?;
                Raw::Len(take(&mut b, n)?)
            }
            5 => Raw::Fixed32(u32::from_le_bytes(take(&mut b, 4)?.try_into().ok()?)),
            _ => return None,
        };
        out.push((number, raw));
    }
    Some(out)
}

/// A scalar value read from the wire, for a field kind.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scalar<'a> {
    I32(i32),
    I64(i64),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Str(&'a str),
    Bytes(&'a [u8]),
    Enum(i32),
}

impl Scalar<'_> {
    /// The proto3 default (what an unset field holds); `-0.0 == 0.0` as for `Value`'s `==`.
    fn is_default(&self) -> bool {
        match *self {
            Self::I32(v) | Self::Enum(v) => v == 0,
            Self::I64(v) => v == 0,
            Self::U32(v) => v == 0,
            Self::U64(v) => v == 0,
            Self::F32(v) => v == 0.0,
            Self::F64(v) => v == 0.0,
            Self::Bool(v) => !v,
            Self::Str(v) => v.is_empty(),
            Self::Bytes(v) => v.is_empty(),
        }
    }
}

/// Whether a kind may be packed (every scalar but strings and bytes).
fn packable(kind: &Kind) -> bool {
    !matches!(kind, Kind::String | Kind::Bytes | Kind::Message(_))
}

fn scalar<'a>(kind: &Kind, raw: Raw<'a>) -> Option<Scalar<'a>> {
    // Varint fields keep the low bits, as prost's decoders do (`as i32`, `as u32`).
    Some(match (kind, raw) {
        (Kind::Int32, Raw::Varint(v)) => Scalar::I32(v as i32),
        (Kind::Int64, Raw::Varint(v)) => Scalar::I64(v as i64),
        (Kind::Uint32, Raw::Varint(v)) => Scalar::U32(v as u32),
        (Kind::Uint64, Raw::Varint(v)) => Scalar::U64(v),
        (Kind::Sint32, Raw::Varint(v)) => {
            let v = v as u32;
            Scalar::I32(((v >> 1) as i32) ^ -((v & 1) as i32))
        }
        (Kind::Sint64, Raw::Varint(v)) => Scalar::I64(((v >> 1) as i64) ^ -((v & 1) as i64)),
        (Kind::Bool, Raw::Varint(v)) => Scalar::Bool(v != 0),
        (Kind::Enum(_), Raw::Varint(v)) => Scalar::Enum(v as i32),
        (Kind::Fixed32, Raw::Fixed32(v)) => Scalar::U32(v),
        (Kind::Sfixed32, Raw::Fixed32(v)) => Scalar::I32(v as i32),
        (Kind::Float, Raw::Fixed32(v)) => Scalar::F32(f32::from_bits(v)),
        (Kind::Fixed64, Raw::Fixed64(v)) => Scalar::U64(v),
        (Kind::Sfixed64, Raw::Fixed64(v)) => Scalar::I64(v as i64),
        (Kind::Double, Raw::Fixed64(v)) => Scalar::F64(f64::from_bits(v)),
        (Kind::String, Raw::Len(b)) => Scalar::Str(std::str::from_utf8(b).ok()?),
        (Kind::Bytes, Raw::Len(b)) => Scalar::Bytes(b),
        _ => return None,
    })
}

/// The elements of one packed record.
fn unpack<'a>(kind: &Kind, mut b: &'a [u8], out: &mut Vec<Scalar<'a>>) -> Option<()> {
    while !b.is_empty() {
        let raw = match kind {
            Kind::Fixed32 | Kind::Sfixed32 | Kind::Float => {
                Raw::Fixed32(u32::from_le_bytes(take(&mut b, 4)?.try_into().ok()?))
            }
            Kind::Fixed64 | Kind::Sfixed64 | Kind::Double => {
                Raw::Fixed64(u64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?))
            }
            _ => Raw::Varint(varint(&mut b)?),
        };
        out.push(scalar(kind, raw)?);
    }
    Some(())
}

/// Whether a string can go out between quotes as it is (no control character, `"` or `\`);
/// serde_json escapes exactly those. Eight bytes per word (SWAR), four words per test: a
/// byte-wise loop cost as much as serde_json's own escaping, a branch per word half as much.
fn plain_text(s: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // The high bit of a byte is set in the result when that byte is below 0x20, `"` or `\`
    // (which become zero bytes after the XORs), or when a lower byte borrowed; so the result is
    // non-zero exactly when some byte needs escaping. Bytes >= 0x80 are masked off by `!x`
    // (the XORed constants are below 0x80, so `!(x ^ c)` has the same high bits).
    let flag = |x: u64| {
        (x.wrapping_sub(LO * 0x20)
            | (x ^ (LO * 0x22)).wrapping_sub(LO)
            | (x ^ (LO * 0x5c)).wrapping_sub(LO))
            & !x
            & HI
    };
    let word = |c: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        u64::from_le_bytes(w)
    };
    let mut blocks = s.chunks_exact(32);
    for b in &mut blocks {
        let any = flag(word(&b[..8]))
            | flag(word(&b[8..16]))
            | flag(word(&b[16..24]))
            | flag(word(&b[24..]));
        if any != 0 {
            return false;
        }
    }
    let mut chunks = blocks.remainder().chunks_exact(8);
    for c in &mut chunks {
        if flag(word(c)) != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
}

fn write_str(s: &str, out: &mut Vec<u8>) -> Option<()> {
    if plain_text(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Some(())
    } else {
        serde_json::to_writer(&mut *out, s).ok()
    }
}

fn write_scalar(v: Scalar<'_>, kind: &Kind, o: &ResponseOptions, out: &mut Vec<u8>) -> Option<()> {
    let special = |f: f64| {
        if f.is_nan() {
            "\"NaN\""
        } else if f > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        }
    };
    match v {
        Scalar::I32(n) => write!(out, "{n}").ok(),
        Scalar::U32(n) => write!(out, "{n}").ok(),
        // proto3 JSON writes 64-bit integers as strings.
        Scalar::I64(n) => write!(out, "\"{n}\"").ok(),
        Scalar::U64(n) => write!(out, "\"{n}\"").ok(),
        Scalar::Bool(b) => {
            out.extend_from_slice(if b { b"true" } else { b"false" });
            Some(())
        }
        Scalar::F32(f) if f.is_finite() => serde_json::to_writer(&mut *out, &f).ok(),
        Scalar::F64(f) if f.is_finite() => serde_json::to_writer(&mut *out, &f).ok(),
        Scalar::F32(f) => {
            out.extend_from_slice(special(f64::from(f)).as_bytes());
            Some(())
        }
        Scalar::F64(f) => {
            out.extend_from_slice(special(f).as_bytes());
            Some(())
        }
        Scalar::Str(s) => write_str(s, out),
        Scalar::Bytes(b) => {
            out.push(b'"');
            let start = out.len();
            out.resize(start + b.len().div_ceil(3) * 4, 0);
            let n = base64::engine::general_purpose::STANDARD
                .encode_slice(b, &mut out[start..])
                .ok()?;
            out.truncate(start + n);
            out.push(b'"');
            Some(())
        }
        Scalar::Enum(n) => {
            let Kind::Enum(e) = kind else { return None };
            match e.get_value(n).filter(|_| !o.enums_as_ints) {
                Some(value) => write_str(value.name(), out),
                None => write!(out, "{n}").ok(),
            }
        }
    }
}

/// Fields this writer does not cover: maps, groups, oneof members, proto2/`optional` scalars
/// (explicit presence) and well-known types with their own JSON forms.
fn covered(fd: &FieldDescriptor) -> bool {
    if fd.is_map() || fd.is_group() || fd.containing_oneof().is_some() {
        return false;
    }
    match fd.kind() {
        Kind::Message(m) => !m.full_name().starts_with("google.protobuf."),
        _ => !fd.supports_presence(),
    }
}

/// Writes the message `bytes` of type `desc` as canonical proto3 JSON (as
/// `DynamicMessage::serialize_with_options` with `o` would) and returns `Some`, or returns `None`
/// having written nothing useful when the message is not one this writer covers (see
/// [`covered`]), is malformed, or `o` asks for default values.
pub fn write_json(
    desc: &MessageDescriptor,
    bytes: &[u8],
    o: &ResponseOptions,
    out: &mut Vec<u8>,
) -> Option<()> {
    if o.emit_defaults {
        return None;
    }
    let recs = records(bytes)?;
    // Fields print in field-number order, whatever the wire order.
    let mut numbers: Vec<u32> = recs.iter().map(|(n, _)| *n).collect();
    numbers.sort_unstable();
    numbers.dedup();
    out.push(b'{');
    let mut first = true;
    let mut items: Vec<Scalar<'_>> = Vec::new();
    for number in numbers {
        // Unknown fields are kept by a DynamicMessage but never printed.
        let Some(fd) = desc.get_field(number) else {
            continue;
        };
        if !covered(&fd) {
            return None;
        }
        let kind = fd.kind();
        let mut occurrences = recs.iter().filter(|(n, _)| *n == number).map(|(_, r)| *r);
        let mark = out.len();
        if !first {
            out.push(b',');
        }
        let name = if o.proto_field_names {
            fd.name()
        } else {
            fd.json_name()
        };
        write_str(name, out)?;
        out.push(b':');
        if fd.is_list() {
            out.push(b'[');
            let mut any = false;
            for raw in occurrences {
                match (&kind, raw) {
                    (Kind::Message(m), Raw::Len(b)) => {
                        if any {
                            out.push(b',');
                        }
                        write_json(m, b, o, out)?;
                        any = true;
                    }
                    (k, Raw::Len(b)) if packable(k) => {
                        items.clear();
                        unpack(k, b, &mut items)?;
                        for v in items.drain(..) {
                            if any {
                                out.push(b',');
                            }
                            write_scalar(v, k, o, out)?;
                            any = true;
                        }
                    }
                    (k, raw) => {
                        if any {
                            out.push(b',');
                        }
                        write_scalar(scalar(k, raw)?, k, o, out)?;
                        any = true;
                    }
                }
            }
            if !any {
                // Only empty packed records: an empty list is not printed.
                out.truncate(mark);
                continue;
            }
            out.push(b']');
        } else {
            // A field sent twice is last-one-wins (messages merge): left to the reference.
            let (Some(raw), None) = (occurrences.next(), occurrences.next()) else {
                return None;
            };
            match (&kind, raw) {
                (Kind::Message(m), Raw::Len(b)) => write_json(m, b, o, out)?,
                (k, raw) => {
                    let v = scalar(k, raw)?;
                    if v.is_default() {
                        out.truncate(mark);
                        continue;
                    }
                    write_scalar(v, k, o, out)?;
                }
            }
        }
        first = false;
    }
    out.push(b'}');
    Some(())
}

// ---- JSON → protobuf ----------------------------------------------------------------------

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn wire_type(kind: &Kind) -> u64 {
    match kind {
        Kind::Fixed64 | Kind::Sfixed64 | Kind::Double => 1,
        Kind::String | Kind::Bytes | Kind::Message(_) => 2,
        Kind::Fixed32 | Kind::Sfixed32 | Kind::Float => 5,
        _ => 0,
    }
}

fn put_tag(number: u32, wire: u64, out: &mut Vec<u8>) {
    put_varint((u64::from(number) << 3) | wire, out);
}

/// Any reason to hand the body back to the reference; the reference then accepts it or reports
/// the precise error.
fn bail<E: de::Error>() -> E {
    E::custom("not covered by the direct encoder")
}

/// A decimal integer as the reference surely reads it: `-?(0|[1-9][0-9]*)`.
fn strict_int<T: std::str::FromStr>(s: &str) -> Option<T> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    ok.then(|| s.parse().ok()).flatten()
}

/// Writes one scalar value (no tag) and tells whether it is the proto3 default.
struct ScalarSeed<'k, 'o> {
    kind: &'k Kind,
    out: &'o mut Vec<u8>,
}

impl ScalarSeed<'_, '_> {
    fn int(self, v: i128) -> Option<bool> {
        let out = self.out;
        match self.kind {
            Kind::Int32 | Kind::Enum(_) => put_varint(i32::try_from(v).ok()? as i64 as u64, out),
            Kind::Sint32 => {
                let n = i32::try_from(v).ok()?;
                put_varint(u64::from(((n << 1) ^ (n >> 31)) as u32), out);
            }
            Kind::Sfixed32 => out.extend_from_slice(&i32::try_from(v).ok()?.to_le_bytes()),
            Kind::Int64 => put_varint(i64::try_from(v).ok()? as u64, out),
            Kind::Sint64 => {
                let n = i64::try_from(v).ok()?;
                put_varint(((n << 1) ^ (n >> 63)) as u64, out);
            }
            Kind::Sfixed64 => out.extend_from_slice(&i64::try_from(v).ok()?.to_le_bytes()),
            Kind::Uint32 => put_varint(u64::from(u32::try_from(v).ok()?), out),
            Kind::Fixed32 => out.extend_from_slice(&u32::try_from(v).ok()?.to_le_bytes()),
            Kind::Uint64 => put_varint(u64::try_from(v).ok()?, out),
            Kind::Fixed64 => out.extend_from_slice(&u64::try_from(v).ok()?.to_le_bytes()),
            // A number for a float field: exact integers only, anything else is the reference's.
            Kind::Double => {
                let f = i64::try_from(v)
                    .ok()
                    .filter(|n| n.unsigned_abs() < 1 << 53)? as f64;
                out.extend_from_slice(&f.to_le_bytes());
            }
            Kind::Float => {
                let f = i64::try_from(v)
                    .ok()
                    .filter(|n| n.unsigned_abs() < 1 << 24)? as f32;
                out.extend_from_slice(&f.to_le_bytes());
            }
            _ => return None,
        }
        Some(v == 0)
    }

    fn float(self, f: f64) -> Option<bool> {
        match self.kind {
            Kind::Double => self.out.extend_from_slice(&f.to_le_bytes()),
            Kind::Float => {
                let g = f as f32;
                // Out of range or rounding to zero: left to the reference.
                if !f.is_nan() && (g.is_infinite() != f.is_infinite() || (g == 0.0) != (f == 0.0)) {
                    return None;
                }
                self.out.extend_from_slice(&g.to_le_bytes());
            }
            _ => return None,
        }
        Some(f == 0.0)
    }

    fn text(self, s: &str) -> Option<bool> {
        match self.kind {
            Kind::String => {
                put_varint(s.len() as u64, self.out);
                self.out.extend_from_slice(s.as_bytes());
                Some(s.is_empty())
            }
            Kind::Bytes => {
                // Standard padded base64 only; the other spellings are the reference's.
                let b = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
                put_varint(b.len() as u64, self.out);
                self.out.extend_from_slice(&b);
                Some(b.is_empty())
            }
            Kind::Enum(e) => {
                let n = e.get_value_by_name(s)?.number();
                put_varint(n as i64 as u64, self.out);
                Some(n == 0)
            }
            Kind::Double | Kind::Float => {
                let f = match s {
                    "NaN" => f64::NAN,
                    "Infinity" => f64::INFINITY,
                    "-Infinity" => f64::NEG_INFINITY,
                    _ => return None,
                };
                self.float(f)
            }
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Int64 | Kind::Sint64 => {
                self.int(strict_int::<i64>(s)?.into())
            }
            Kind::Sfixed64 => self.int(strict_int::<i64>(s)?.into()),
            Kind::Uint32 | Kind::Fixed32 | Kind::Uint64 | Kind::Fixed64 => {
                self.int(strict_int::<u64>(s)?.into())
            }
            _ => None,
        }
    }
}

impl<'de> DeserializeSeed<'de> for ScalarSeed<'_, '_> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed<'_, '_> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a scalar value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        if !matches!(self.kind, Kind::Bool) {
            return Err(bail());
        }
        self.out.push(u8::from(v));
        Ok(!v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.int(v.into()).ok_or_else(bail)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.int(v.into()).ok_or_else(bail)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        self.float(v).ok_or_else(bail)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        self.text(v).ok_or_else(bail)
    }
}

/// One element of a field (no tag): a scalar, or a nested message with its length.
struct ElemSeed<'k, 'o> {
    kind: &'k Kind,
    unknown: super::json::Unknown,
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for ElemSeed<'_, '_> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        match self.kind {
            Kind::Message(m) => {
                let body = d.deserialize_any(MessageSeed {
                    desc: m,
                    unknown: self.unknown,
                })?;
                put_varint(body.len() as u64, self.out);
                self.out.extend_from_slice(&body);
                // A message field is present even when empty.
                Ok(false)
            }
            kind => ScalarSeed {
                kind,
                out: self.out,
            }
            .deserialize(d),
        }
    }
}

/// A repeated field's JSON array: packed, or one record per element.
struct ListSeed<'f, 'o> {
    fd: &'f FieldDescriptor,
    kind: Kind,
    unknown: super::json::Unknown,
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let number = self.fd.number();
        if self.fd.is_packed() && packable(&self.kind) {
            let mut packed = Vec::new();
            while seq
                .next_element_seed(ElemSeed {
                    kind: &self.kind,
                    unknown: self.unknown,
                    out: &mut packed,
                })?
                .is_some()
            {}
            if !packed.is_empty() {
                put_tag(number, 2, self.out);
                put_varint(packed.len() as u64, self.out);
                self.out.extend_from_slice(&packed);
            }
            return Ok(());
        }
        loop {
            let mark = self.out.len();
            put_tag(number, wire_type(&self.kind), self.out);
            let more = seq.next_element_seed(ElemSeed {
                kind: &self.kind,
                unknown: self.unknown,
                out: self.out,
            })?;
            if more.is_none() {
                self.out.truncate(mark);
                return Ok(());
            }
        }
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A JSON object → the message's encoding, fields in number order as `DynamicMessage` writes
/// them.
struct MessageSeed<'d> {
    desc: &'d MessageDescriptor,
    unknown: super::json::Unknown,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = Vec<u8>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_> {
    type Value = Vec<u8>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::new();
        // (field number, start, end) of each field's records in `out`.
        let mut spans: Vec<(u32, usize, usize)> = Vec::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            // `[pkg.ext]` names an extension: the reference's business.
            if key.starts_with('[') {
                return Err(bail());
            }
            let found = self
                .desc
                .get_field_by_json_name(&key)
                .or_else(|| self.desc.get_field_by_name(&key));
            let Some(fd) = found else {
                if self.unknown == super::json::Unknown::Ignore {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                return Err(bail());
            };
            if !covered(&fd) || spans.iter().any(|(n, _, _)| *n == fd.number()) {
                return Err(bail());
            }
            let start = out.len();
            let kind = fd.kind();
            if fd.is_list() {
                map.next_value_seed(ListSeed {
                    fd: &fd,
                    kind,
                    unknown: self.unknown,
                    out: &mut out,
                })?;
            } else {
                put_tag(fd.number(), wire_type(&kind), &mut out);
                let default = map.next_value_seed(ElemSeed {
                    kind: &kind,
                    unknown: self.unknown,
                    out: &mut out,
                })?;
                if default {
                    // proto3 fields without presence do not encode their default.
                    out.truncate(start);
                }
            }
            spans.push((fd.number(), start, out.len()));
        }
        if spans.windows(2).all(|w| w[0].0 < w[1].0) {
            return Ok(out);
        }
        spans.sort_by_key(|s| s.0);
        let mut sorted = Vec::with_capacity(out.len());
        for (_, a, b) in spans {
            sorted.extend_from_slice(&out[a..b]);
        }
        Ok(sorted)
    }
}

/// Encodes a JSON object body as the protobuf bytes of `desc`, byte for byte what
/// `json::from_json_value(…).encode_to_vec()` gives, or `None` when the body is not one this
/// encoder covers (a `null`, a field it does not cover, a value spelled in a way it leaves to the
/// reference, an unknown field that `unknown` rejects, malformed JSON…): the caller then builds
/// the message through the reference, which also words any error.
pub fn encode_json(
    desc: &MessageDescriptor,
    body: &[u8],
    unknown: super::json::Unknown,
) -> Option<Vec<u8>> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let out = de::Deserializer::deserialize_map(&mut de, MessageSeed { desc, unknown }).ok()?;
    de.end().ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    //! The writer against the reference (`DynamicMessage` + `json::to_json`) over fixtures that
    //! cover the proto3 JSON corner cases, and the cases it must hand back.

    use super::*;
    use crate::transcode::json;
    use prost::Message as _;
    use prost_reflect::{DescriptorPool, DynamicMessage};

    const PROTO: &str = r#"
syntax = "proto3";
package wiretest;
import "google/protobuf/timestamp.proto";
enum Colour { COLOUR_UNSPECIFIED = 0; RED = 1; GREEN = 2; }
message Inner { string name = 1; repeated int32 ids = 2; Inner child = 3; }
message All {
  int32 i32 = 1; int64 i64 = 2; uint32 u32 = 3; uint64 u64 = 4;
  sint32 s32 = 5; sint64 s64 = 6; fixed32 f32 = 7; fixed64 f64 = 8;
  sfixed32 sf32 = 9; sfixed64 sf64 = 10; float fl = 11; double db = 12;
  bool flag = 13; string text = 14; bytes data = 15; Colour colour = 16;
  Inner inner = 17; repeated Inner inners = 18; repeated string tags = 19;
  repeated double values = 20; repeated Colour colours = 21; repeated bytes blobs = 22;
  repeated sint64 zz = 23; repeated fixed32 fx = 24; repeated bool flags = 25;
  repeated int32 unpacked = 26 [packed = false];
  string snake_case_name = 27;
}
message Special {
  map<string, int32> counts = 1;
  google.protobuf.Timestamp at = 2;
  optional int32 maybe = 3;
  oneof choice { string a = 4; int32 b = 5; }
}
"#;

    fn pool() -> DescriptorPool {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("wiretest.proto"), PROTO).expect("write proto");
        rpc::compile("wiretest.proto", &[dir.path()]).expect("compiles")
    }

    fn reference(desc: &MessageDescriptor, bytes: &[u8], o: &ResponseOptions) -> Vec<u8> {
        let msg = DynamicMessage::decode(desc.clone(), bytes).expect("decodes");
        json::to_json(&msg, None, o).expect("renders")
    }

    fn direct(desc: &MessageDescriptor, bytes: &[u8], o: &ResponseOptions) -> Option<String> {
        let mut out = Vec::new();
        write_json(desc, bytes, o, &mut out)?;
        Some(String::from_utf8(out).expect("utf-8"))
    }

    fn from_json(desc: &MessageDescriptor, json: &str) -> Vec<u8> {
        let v: serde_json::Value = serde_json::from_str(json).expect("fixture JSON");
        json::from_json_value(desc, v, json::Unknown::Reject)
            .expect("fixture fits")
            .encode_to_vec()
    }

    /// Both writers agree, and the direct one did take the message.
    fn same(desc: &MessageDescriptor, bytes: &[u8], o: &ResponseOptions) -> String {
        let want = String::from_utf8(reference(desc, bytes, o)).expect("utf-8");
        let got = direct(desc, bytes, o).unwrap_or_else(|| panic!("handed back: {want}"));
        assert_eq!(got, want);
        got
    }

    #[test]
    fn plain_text_finds_every_byte_to_escape() {
        for len in [0usize, 1, 7, 8, 9, 16, 23, 31, 32, 33, 40, 63, 64, 71] {
            assert!(plain_text(&vec![b'x'; len]));
            for pos in 0..len {
                for bad in (0u8..0x20).chain([b'"', b'\\']) {
                    let mut s = vec![b'x'; len];
                    s[pos] = bad;
                    assert!(!plain_text(&s), "{bad:#x} at {pos} of {len}");
                }
                let mut s = vec![b'x'; len];
                for ok in [0x20u8, b'!', b'#', b'[', b']', 0x7f, 0x80, 0xc3, 0xff] {
                    s[pos] = ok;
                    assert!(plain_text(&s), "{ok:#x} at {pos} of {len}");
                }
            }
        }
    }

    #[test]
    fn matches_the_reference() {
        let pool = pool();
        let all = pool.get_message_by_name("wiretest.All").expect("All");
        let options = [
            ResponseOptions::default(),
            ResponseOptions {
                enums_as_ints: true,
                proto_field_names: true,
                ..Default::default()
            },
        ];
        let fixtures = [
            "{}",
            // Defaults are not printed.
            r#"{"i32": 0, "text": "", "flag": false, "colour": "COLOUR_UNSPECIFIED", "db": 0}"#,
            // Every scalar kind at its extremes; 64-bit integers come out as strings.
            r#"{"i32": -2147483648, "i64": "-9223372036854775808", "u32": 4294967295,
                "u64": "18446744073709551615", "s32": -5, "s64": "-6", "f32": 7, "f64": "8",
                "sf32": -9, "sf64": "-10", "fl": 0.1, "db": 1e300, "flag": true}"#,
            r#"{"i32": 1, "i64": 2, "db": 1.0, "fl": -0.0, "sf64": 3}"#,
            r#"{"fl": "NaN", "db": "-Infinity", "values": ["Infinity", 2.5, -0.0, 1e-300]}"#,
            // Strings that need escaping, and non-ASCII that does not.
            r#"{"text": "quote \" backslash \\ tab \t nl \n ctl \u0001 é 😀 </script> \u007f"}"#,
            r#"{"text": "plain", "tags": ["a", "", "b\"c"], "snake_case_name": "x"}"#,
            // Bytes in standard padded base64, whatever padding they had.
            r#"{"data": "AQID", "blobs": ["", "AA==", "/+8="]}"#,
            // Enums by name and number; an unknown number stays a number.
            r#"{"colour": "GREEN", "colours": ["RED", 0, 7, "GREEN"]}"#,
            r#"{"colour": 9}"#,
            // Nested, repeated and empty messages.
            r#"{"inner": {}, "inners": [{}, {"name": "n", "ids": [1, -1, 0]},
                {"child": {"child": {"name": "deep"}}}]}"#,
            r#"{"zz": ["-1", "1", "0"], "fx": [0, 4294967295], "flags": [true, false],
                "unpacked": [1, 0, -3]}"#,
        ];
        for o in &options {
            for f in fixtures {
                same(&all, &from_json(&all, f), o);
            }
        }
        let got = same(
            &all,
            &from_json(&all, r#"{"i64": 5, "colour": "RED"}"#),
            &options[0],
        );
        assert_eq!(got, r#"{"i64":"5","colour":"RED"}"#);
    }

    #[test]
    fn wire_shapes_the_encoder_never_writes() {
        let pool = pool();
        let all = pool.get_message_by_name("wiretest.All").expect("All");
        let o = ResponseOptions::default();
        // Fields out of number order, an unknown field (99) and a packed field sent unpacked
        // (20: two doubles as separate records) and in two packed records (1 is not repeated:
        // ids of Inner are).
        let mut b = Vec::new();
        b.extend_from_slice(&[0x72, 0x02, b'h', b'i']); // 14: "hi"
        b.extend_from_slice(&[0x98, 0x06, 0x07]); // 99: varint 7
        b.extend_from_slice(&[0x08, 0x05]); // 1: 5
        b.extend_from_slice(&[0xa1, 0x01]); // 20: fixed64
        b.extend_from_slice(&1.5f64.to_le_bytes());
        b.extend_from_slice(&[0xa1, 0x01]);
        b.extend_from_slice(&2.5f64.to_le_bytes());
        b.extend_from_slice(&[0xd0, 0x01, 0x01, 0xd2, 0x01, 0x02, 0x02, 0x03]); // 26 both ways
        b.extend_from_slice(&[0xaa, 0x01, 0x00]); // 21: empty packed colours
        assert_eq!(
            same(&all, &b, &o),
            r#"{"i32":5,"text":"hi","values":[1.5,2.5],"unpacked":[1,2,3]}"#
        );
        // An int32 varint wider than 32 bits keeps its low bits, as prost reads it.
        let wide = [0x08, 0xff, 0xff, 0xff, 0xff, 0x1f];
        same(&all, &wide, &o);

        // Handed back: a singular field twice, malformed bytes, invalid UTF-8, options that
        // print defaults; the reference decides (and reports) those.
        for bytes in [
            &[0x08, 0x01, 0x08, 0x02][..],
            &[0x72, 0x05, b'h'][..],
            &[0x72, 0x01, 0xff][..],
            &[0x0b][..],
        ] {
            assert_eq!(direct(&all, bytes, &o), None, "{bytes:?}");
        }
        let defaults = ResponseOptions {
            emit_defaults: true,
            ..Default::default()
        };
        assert_eq!(direct(&all, &[], &defaults), None);
    }

    /// The direct encoder against the reference (`from_json_value` + `encode_to_vec`).
    fn encoded_same(desc: &MessageDescriptor, body: &str, unknown: json::Unknown) -> Vec<u8> {
        let v: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("fixture {body}: {e}"));
        let want = json::from_json_value(desc, v, unknown)
            .expect("the reference accepts it")
            .encode_to_vec();
        let got = encode_json(desc, body.as_bytes(), unknown)
            .unwrap_or_else(|| panic!("handed back: {body}"));
        assert_eq!(got, want, "{body}");
        got
    }

    #[test]
    fn encoder_matches_the_reference() {
        let pool = pool();
        let all = pool.get_message_by_name("wiretest.All").expect("All");
        let reject = json::Unknown::Reject;
        for body in [
            "{}",
            // Defaults are not encoded (no presence in proto3).
            r#"{"i32": 0, "text": "", "flag": false, "colour": "COLOUR_UNSPECIFIED", "db": 0,
                "fl": -0.0, "data": ""}"#,
            // Every scalar kind at its extremes; 64-bit integers as strings or numbers.
            r#"{"i32": -2147483648, "i64": "-9223372036854775808", "u32": 4294967295,
                "u64": "18446744073709551615", "s32": -5, "s64": "-6", "f32": 7, "f64": "8",
                "sf32": -9, "sf64": "-10", "fl": 0.1, "db": 1e300, "flag": true}"#,
            r#"{"i64": 9007199254740993, "u64": 18446744073709551615, "sf64": -3, "s64": 0}"#,
            // int32 given as a string; floats as numbers, integers and the special strings.
            r#"{"i32": "-5", "u32": "7", "db": 3, "fl": -2}"#,
            r#"{"fl": "NaN", "db": "-Infinity", "values": ["Infinity", 2.5, -0.0, 1e-300, 0]}"#,
            // Strings, escaped or not, and non-ASCII; proto and JSON field names.
            r#"{"text": "quote \" tab \t é 😀 \u0001", "snake_case_name": "a"}"#,
            r#"{"snakeCaseName": "b", "tags": ["a", "", "b\"c"]}"#,
            // Bytes in standard padded base64.
            r#"{"data": "AQID", "blobs": ["", "AA==", "/+8="]}"#,
            // Enums by name and by number (unknown numbers kept: proto3 enums are open).
            r#"{"colour": "GREEN", "colours": ["RED", 0, 7, "GREEN"]}"#,
            r#"{"colour": 9}"#,
            // Nested, repeated and empty messages; keys out of field-number order.
            r#"{"inners": [{}, {"ids": [1, -1, 0], "name": "n"}, {"child": {"child": {}}}],
                "inner": {}, "i32": 3}"#,
            r#"{"zz": ["-1", "1", "0"], "fx": [0, 4294967295], "flags": [true, false],
                "unpacked": [1, 0, -3], "values": []}"#,
        ] {
            encoded_same(&all, body, reject);
        }
        // Unknown fields: dropped when configured so, as the reference drops them.
        let ignore = json::Unknown::Ignore;
        let got = encoded_same(
            &all,
            r#"{"nope": {"deep": [1, {"x": null}]}, "i32": 1, "other": null}"#,
            ignore,
        );
        assert_eq!(got, [0x08, 0x01]);
    }

    #[test]
    fn encoder_hands_back_what_it_does_not_cover() {
        let pool = pool();
        let all = pool.get_message_by_name("wiretest.All").expect("All");
        let special = pool
            .get_message_by_name("wiretest.Special")
            .expect("Special");
        let reject = json::Unknown::Reject;
        for (desc, body) in [
            // Errors: the reference words them (unknown field, wrong type, bad enum, syntax).
            (&all, r#"{"nope": 1}"#),
            (&all, r#"{"i32": "x"}"#),
            (&all, r#"{"i32": true}"#),
            (&all, r#"{"colour": "BLUE"}"#),
            (&all, r#"{"i32": 1"#),
            (&all, r#"{"i32": 1} x"#),
            (&all, r#"[1]"#),
            (&all, r#"{"i32": 2147483648}"#),
            (&all, r#"{"fl": 1e300}"#),
            // Spellings the reference decides: null, floats for integers, other integer or
            // base64 forms, a field given twice, extension keys.
            (&all, r#"{"i32": null}"#),
            (&all, r#"{"inner": null}"#),
            (&all, r#"{"i32": 1.0}"#),
            (&all, r#"{"i64": "+5"}"#),
            (&all, r#"{"i64": "05"}"#),
            (&all, r#"{"i64": "1e2"}"#),
            (&all, r#"{"data": "AQI"}"#),
            (&all, r#"{"data": "-_8="}"#),
            (&all, r#"{"db": "1.5"}"#),
            (&all, r#"{"fl": 1e-50}"#),
            (&all, r#"{"snakeCaseName": "a", "snake_case_name": "b"}"#),
            (&all, r#"{"[wiretest.ext]": 1}"#),
            // Fields it does not cover: maps, well-known types, optional and oneof members.
            (&special, r#"{"counts": {"a": 1}}"#),
            (&special, r#"{"at": "2024-01-02T03:04:05Z"}"#),
            (&special, r#"{"maybe": 0}"#),
            (&special, r#"{"a": "x"}"#),
        ] {
            assert_eq!(encode_json(desc, body.as_bytes(), reject), None, "{body}");
        }
        // Absent special fields do not matter.
        assert_eq!(encode_json(&special, b"{}", reject), Some(Vec::new()));
    }

    #[test]
    fn special_fields_go_to_the_reference() {
        let pool = pool();
        let special = pool
            .get_message_by_name("wiretest.Special")
            .expect("Special");
        let o = ResponseOptions::default();
        for f in [
            r#"{"counts": {"a": 1}}"#,
            r#"{"at": "2024-01-02T03:04:05Z"}"#,
            r#"{"maybe": 0}"#,
            r#"{"a": "x"}"#,
        ] {
            assert_eq!(direct(&special, &from_json(&special, f), &o), None, "{f}");
        }
        // Absent special fields do not matter.
        assert_eq!(direct(&special, &[], &o).as_deref(), Some("{}"));
        assert_eq!(reference(&special, &[], &o), b"{}");
    }
}
