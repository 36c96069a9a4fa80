//! Docker's value units: Go durations (`1h2m3.5s`), byte sizes (`50M`, base 1024, as go-units
//! `RAMInBytes` reads them), CPU counts (`"0.5"`, exact to the nanocpu) and octal file modes.

use std::fmt;
use std::time::Duration;

/// Parses a Go duration (`time.ParseDuration`): `300ms`, `1.5h`, `2h45m`, `10us`, `10µs`, `0`.
/// Negative durations have no meaning in a stack file and are rejected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let bad = || format!("'{text}' is not a duration; write it like 10s, 1m30s, 500ms or 1h");
    let s = match s.strip_prefix('+') {
        Some(rest) => rest,
        None if s.starts_with('-') => {
            return Err(format!(
                "'{text}' is negative; a duration must be 0 or more"
            ));
        }
        None => s,
    };
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_part, tail) = rest.split_at(int_len);
        let (frac_part, tail) = match tail.strip_prefix('.') {
            Some(t) => {
                let n = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
                t.split_at(n)
            }
            None => ("", tail),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => {
                return Err(format!(
                    "'{text}' has a number without a unit; add one of h, m, s, ms, us, ns"
                ));
            }
            _ => {
                return Err(format!(
                    "'{text}' has the unknown unit '{unit}'; use h, m, s, ms, us or ns"
                ));
            }
        };
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        let mut frac: u128 = 0;
        let mut frac_scale: u128 = 1;
        for d in frac_part.bytes().take(18) {
            frac = frac * 10 + u128::from(d - b'0');
            frac_scale *= 10;
        }
        total = int
            .checked_mul(scale)
            .and_then(|v| v.checked_add(frac * scale / frac_scale))
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("'{text}' is too long a duration"))?;
        rest = tail;
    }
    // Go durations are int64 nanoseconds.
    if total > i64::MAX as u128 {
        return Err(format!("'{text}' is too long a duration"));
    }
    let secs = (total / 1_000_000_000) as u64;
    let nanos = (total % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

/// Formats a duration the way Go's `time.Duration.String` does: `1m0s`, `1h2m3.5s`, `500ms`,
/// `1.5µs`, `0s`. This is how `docker stack config` prints every duration.
pub fn format_duration(d: Duration) -> String {
    let total = d.as_nanos();
    if total == 0 {
        return "0s".to_string();
    }
    if total < 1_000_000_000 {
        return if total < 1_000 {
            format!("{total}ns")
        } else if total < 1_000_000 {
            format!("{}\u{b5}s", frac(total, 3))
        } else {
            format!("{}ms", frac(total, 6))
        };
    }
    let mut out = format!("{}s", frac_mod(total, 9, 60));
    let minutes = total / 60_000_000_000;
    if minutes > 0 {
        out = format!("{}m{out}", minutes % 60);
        let hours = minutes / 60;
        if hours > 0 {
            out = format!("{hours}h{out}");
        }
    }
    out
}

/// `v / 10^prec` with the fraction's trailing zeros removed (Go's `fmtFrac` + `fmtInt`).
fn frac(v: u128, prec: u32) -> String {
    let p = 10u128.pow(prec);
    with_fraction(v / p, v % p, prec)
}

/// Like [`frac`], but the integer part is taken modulo `modulo` (seconds within a minute).
fn frac_mod(v: u128, prec: u32, modulo: u128) -> String {
    let p = 10u128.pow(prec);
    with_fraction((v / p) % modulo, v % p, prec)
}

fn with_fraction(int: u128, fraction: u128, prec: u32) -> String {
    if fraction == 0 {
        return int.to_string();
    }
    let digits = format!("{fraction:0width$}", width = prec as usize);
    format!("{int}.{}", digits.trim_end_matches('0'))
}

/// Parses a byte size the way docker's `RAMInBytes` (go-units) does: a decimal number, an optional
/// space, then an optional unit `b`, `k`, `m`, `g`, `t`, `p`, optionally followed by `i` and/or `b`,
/// case-insensitive, base 1024. `50M` → 52428800, `1.5g` → 1610612736, `100` → 100.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "'{text}' is not a byte size; write a number with an optional unit b, k, m, g (base 1024), e.g. 512m"
        )
    };
    let sep = text
        .rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')
        .ok_or_else(bad)?;
    let (num, suffix) = if text.as_bytes()[sep] == b' ' {
        (&text[..sep], &text[sep + 1..])
    } else {
        (&text[..=sep], &text[sep + 1..])
    };
    let size: f64 = num.trim().parse().map_err(|_| bad())?;
    if !size.is_finite() || size < 0.0 {
        return Err(bad());
    }
    let suffix = suffix.to_ascii_lowercase();
    let mul: f64 = match suffix.as_bytes() {
        [] | [b'b'] => 1.0,
        [unit] | [unit, b'i'] | [unit, b'b'] | [unit, b'i', b'b'] => match unit {
            b'k' => 1024.0,
            b'm' => 1024f64.powi(2),
            b'g' => 1024f64.powi(3),
            b't' => 1024f64.powi(4),
            b'p' => 1024f64.powi(5),
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    let bytes = size * mul;
    if bytes >= 9.223_372_036_854_776e18 {
        return Err(format!("'{text}' is too large a byte size"));
    }
    // go-units truncates towards zero (int64 conversion).
    Ok(bytes as u64)
}

/// A CPU count as written in `deploy.resources.*.cpus` (`"0.5"`, `"2"`), exact to the nanocpu as
/// Swarm stores it (docker rejects more than 9 decimals with "value is too precise").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpus {
    /// The text as written, which `docker stack config` prints unchanged.
    pub text: String,
    /// The value in units of 10⁻⁹ CPUs.
    pub nanos: u64,
}

impl Cpus {
    /// Parses a decimal CPU count.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!("'{text}' is not a CPU count; write a decimal number such as \"0.5\" or \"2\"")
        };
        let t = text.trim();
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let frac_trim = frac.trim_end_matches('0');
        if frac_trim.len() > 9 {
            return Err(format!(
                "'{text}' is too precise; Swarm accepts at most 9 decimals of a CPU"
            ));
        }
        let int_v: u64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let frac_v: u64 = if frac_trim.is_empty() {
            0
        } else {
            format!("{frac_trim:0<9}").parse().map_err(|_| bad())?
        };
        let nanos = int_v
            .checked_mul(1_000_000_000)
            .and_then(|v| v.checked_add(frac_v))
            .ok_or_else(bad)?;
        Ok(Self {
            text: text.to_string(),
            nanos,
        })
    }

    /// Millicores rounded up (Kubernetes cannot express less than 1m; rounding up keeps a limit
    /// from becoming 0, which would mean "no limit").
    pub fn millis(&self) -> u64 {
        self.nanos.div_ceil(1_000_000)
    }

    /// Whether the value is a whole number of millicores (otherwise [`Cpus::millis`] rounds).
    pub fn is_exact_millis(&self) -> bool {
        self.nanos.is_multiple_of(1_000_000)
    }
}

impl fmt::Display for Cpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parses a file mode written as text (`"0440"`, `"0o440"`, `"440"`: octal). Numbers are already
/// decoded by the YAML reader (`0440` → 288) and do not come here.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("'{text}' is not an octal file mode; write it like 0440"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        let ms = |v: u64| Duration::from_millis(v);
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("1h2m3.5s"), Ok(ms(3_723_500)));
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("1.5h"), Ok(ms(5_400_000)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("10µs"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("10μs"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration(".5s"), Ok(ms(500)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn durations_format_like_go() {
        let f = |s: &str| parse_duration(s).map(format_duration);
        assert_eq!(f("60s"), Ok("1m0s".into()));
        assert_eq!(f("120s"), Ok("2m0s".into()));
        assert_eq!(f("90s"), Ok("1m30s".into()));
        assert_eq!(f("1h"), Ok("1h0m0s".into()));
        assert_eq!(f("1h2m3.5s"), Ok("1h2m3.5s".into()));
        assert_eq!(f("1500ms"), Ok("1.5s".into()));
        assert_eq!(f("500ms"), Ok("500ms".into()));
        assert_eq!(f("1.5us"), Ok("1.5µs".into()));
        assert_eq!(f("12ns"), Ok("12ns".into()));
        assert_eq!(f("0s"), Ok("0s".into()));
        assert_eq!(f("26h"), Ok("26h0m0s".into()));
    }

    #[test]
    fn byte_sizes_follow_go_units() {
        assert_eq!(parse_bytes("50M"), Ok(52_428_800));
        assert_eq!(parse_bytes("20M"), Ok(20_971_520));
        assert_eq!(parse_bytes("1.5g"), Ok(1_610_612_736));
        assert_eq!(parse_bytes("512mb"), Ok(536_870_912));
        assert_eq!(parse_bytes("1KiB"), Ok(1024));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert_eq!(parse_bytes("100b"), Ok(100));
        assert_eq!(parse_bytes("1 GB"), Ok(1_073_741_824));
        assert_eq!(parse_bytes("1G"), Ok(1_073_741_824));
        assert!(parse_bytes("M").is_err());
        assert!(parse_bytes("12x").is_err());
        assert!(parse_bytes("1bb").is_err());
        assert!(parse_bytes("-1m").is_err());
    }

    #[test]
    fn cpus_are_exact() {
        let c = Cpus::parse("0.5").expect("cpus");
        assert_eq!(
            (c.nanos, c.millis(), c.is_exact_millis()),
            (500_000_000, 500, true)
        );
        let c = Cpus::parse("0.0001").expect("cpus");
        assert_eq!((c.millis(), c.is_exact_millis()), (1, false));
        assert_eq!(Cpus::parse("2").map(|c| c.millis()), Ok(2000));
        assert_eq!(Cpus::parse(".25").map(|c| c.millis()), Ok(250));
        assert!(Cpus::parse("0.0000000001").is_err());
        assert!(Cpus::parse("half").is_err());
        assert!(Cpus::parse("-1").is_err());
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("0440"), Ok(0o440));
        assert_eq!(parse_mode("0o755"), Ok(0o755));
        assert_eq!(parse_mode("644"), Ok(0o644));
        assert!(parse_mode("0999").is_err());
    }
}
