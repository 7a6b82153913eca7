//! Kubernetes memory quantities (`96Mi`, `1.5Gi`, `500M`, `134217728`), parsed to bytes and printed back in the
//! canonical binary-suffix form the agent writes.

use std::fmt;

/// A memory quantity in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub u64);

/// A quantity string that is not a memory quantity this agent understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid memory quantity {0:?}")]
pub struct InvalidQuantity(pub String);

const SUFFIXES: &[(&str, u64)] = &[
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("Pi", 1 << 50),
    ("Ei", 1 << 60),
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("E", 1_000_000_000_000_000_000),
];

impl Bytes {
    pub const MI: u64 = 1 << 20;

    /// Parses a Kubernetes quantity as bytes. Fractions are allowed (`1.5Gi`) and rounded up; `m` (milli) and
    /// exponents are rejected as meaningless for memory.
    pub fn parse(s: &str) -> Result<Self, InvalidQuantity> {
        let bad = || InvalidQuantity(s.to_owned());
        let t = s.trim();
        let (num, mult) = SUFFIXES.iter().find_map(|(suf, m)| t.strip_suffix(suf).map(|n| (n, *m))).unwrap_or((t, 1));
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(bad());
        }
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if int.is_empty() && frac.is_empty() || frac.contains('.') {
            return Err(bad());
        }
        let int: u128 = if int.is_empty() { 0 } else { int.parse().map_err(|_| bad())? };
        let mut total = int.checked_mul(mult as u128).ok_or_else(bad)?;
        if !frac.is_empty() {
            let digits = frac.len().min(18) as u32;
            let frac_val: u128 = frac[..digits as usize].parse().map_err(|_| bad())?;
            let scale = 10u128.pow(digits);
            total += (frac_val * mult as u128).div_ceil(scale);
        }
        u64::try_from(total).map(Bytes).map_err(|_| bad())
    }

    /// Mebibytes, rounded up.
    pub fn mebibytes_ceil(self) -> u64 {
        self.0.div_ceil(Self::MI)
    }

    /// The canonical string the agent writes: whole `Gi` when exact, else `Mi` rounded up.
    pub fn to_quantity(self) -> String {
        if self.0 >= 1 << 30 && self.0.is_multiple_of(1 << 30) {
            format!("{}Gi", self.0 >> 30)
        } else {
            format!("{}Mi", self.mebibytes_ceil())
        }
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_quantity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_decimal_and_fractions() {
        let cases = [
            ("96Mi", 96 * (1 << 20)),
            ("1Gi", 1 << 30),
            ("1.5Gi", 3 * (1 << 29)),
            ("500M", 500_000_000),
            ("128974848", 128_974_848),
            ("64k", 64_000),
            (" 2Ki ", 2048),
        ];
        for (s, want) in cases {
            assert_eq!(Bytes::parse(s).unwrap().0, want, "{s}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "Mi", "12Xi", "1.2.3Mi", "-5Mi", "100m", "1e3", "99999999999999999999Ei"] {
            assert!(Bytes::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn prints_canonically() {
        assert_eq!(Bytes(192 * (1 << 20)).to_quantity(), "192Mi");
        assert_eq!(Bytes(2 << 30).to_quantity(), "2Gi");
        assert_eq!(Bytes(1_000_000).to_quantity(), "1Mi");
        assert_eq!(Bytes::parse("1536Mi").unwrap().to_quantity(), "1536Mi");
    }
}
