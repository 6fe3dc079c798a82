//! Parsing and printing sizes, offsets, times, and bytes.

use std::io::{self, Write};

/// Parses a size: decimal digits with an optional binary suffix `K`, `M`, `G` or `T` (any case,
/// optionally followed by `B` or `iB`): `4096`, `64M`, `1GiB`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits);
    if number.is_empty() {
        return Err(format!(
            "{text:?} is not a size: expected digits with an optional suffix K, M, G or T (e.g. 64M)"
        ));
    }
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "{text:?}: unknown size suffix {suffix:?} (use K, M, G or T, powers of 1024)"
            ))
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Parses a pool offset: decimal, or hexadecimal with a `0x` prefix.
pub(crate) fn parse_offset(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse::<u64>(),
    };
    parsed.map_err(|_| format!("{text:?} is not an offset: expected decimal or 0x-prefixed hex"))
}

/// A byte count for people: `512 B`, `16.0 KiB`, `63.9 MiB`.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `n bytes (human)`, or just `0 bytes`.
pub(crate) fn bytes_and_human(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else {
        format!("{bytes} bytes ({})", human(bytes))
    }
}

/// A percentage of `whole`, one decimal.
pub(crate) fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

/// Seconds since the Unix epoch as `YYYY-MM-DD hh:mm:ss UTC`.
pub(crate) fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Writes `bytes`, which start at pool offset `base`, in the classic 16-bytes-per-line layout
/// of `hexdump -C`: offset, two groups of eight bytes, the printable ASCII between bars. Runs
/// of lines identical to the one before are shown as a single `*`.
pub(crate) fn hexdump(out: &mut impl Write, base: u64, bytes: &[u8]) -> io::Result<()> {
    let mut previous: Option<&[u8]> = None;
    let mut starred = false;
    for (i, line) in bytes.chunks(16).enumerate() {
        if line.len() == 16 && previous == Some(line) {
            if !starred {
                writeln!(out, "*")?;
                starred = true;
            }
            continue;
        }
        starred = false;
        previous = Some(line);
        let mut text = format!("{:08x} ", base + 16 * i as u64);
        for j in 0..16 {
            if j == 8 {
                text.push(' ');
            }
            match line.get(j) {
                Some(b) => text.push_str(&format!(" {b:02x}")),
                None => text.push_str("   "),
            }
        }
        text.push_str("  |");
        text.extend(line.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        text.push('|');
        writeln!(out, "{text}")?;
    }
    writeln!(out, "{:08x}", base + bytes.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("2KiB"), Ok(2048));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("0x1f000"), Ok(0x1f000));
        assert_eq!(parse_offset("4096"), Ok(4096));
        assert!(parse_offset("0xg").is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn hexdump_collapses_repeats() {
        let mut bytes = vec![0u8; 64];
        bytes[0] = b'A';
        bytes.extend_from_slice(b"xyz");
        let mut out = Vec::new();
        hexdump(&mut out, 0x100, &bytes).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "00000100  41 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |A...............|"
        );
        assert_eq!(
            lines[1],
            "00000110  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|"
        );
        assert_eq!(lines[2], "*");
        assert_eq!(
            lines[3],
            "00000140  78 79 7a                                          |xyz|"
        );
        assert_eq!(lines[4], "00000143");
    }
}
