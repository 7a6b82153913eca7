//! Reading a metric against the baseline its text states.
//!
//! Incident write-ups and alert annotations compare a value with a reference in many shapes: "7,900, up from 2,400",
//! "from 3,100 to 9,800", "3,100 → 9,800", "9,800 (3,100 at the same time last Friday)", "1,900 (baseline 1,050)",
//! "410k vs 190k an hour ago", "+250%", "40% lower", "doubled", "3.3x". What they share is structure, not words: one
//! number is the value now, another is tied to a reference (a marker before it, "from", "baseline", "vs",
//! "normally"; or a reference period after it, "before", "yesterday", "last week", "an hour ago", "at the same
//! time"). The reader finds numbers that are measurements (not clock times, dates, versions or durations), marks
//! the one tied to a reference as the baseline, and takes the first other one as the value now. Sameness ("same as
//! last week", "unchanged", "as every weekday") wins over any ratio: a daily cycle compared with itself is its normal
//! level, whatever multiple of the morning it is.

use super::facts::contains_any;

/// How a metric compares with its own baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trend {
    /// Now this many times the baseline (≥ 1.5).
    Rising(f64),
    /// Within ±1/3 of the baseline, or said to be unchanged.
    Flat,
    /// Now this fraction of the baseline (≤ 2/3).
    Falling(f64),
}

/// Words that say a value is at its usual level.
const FLAT_WORDS: &[&str] = &[
    "unchanged",
    "flat",
    "as every",
    "as usual",
    "no change",
    "not changed",
    "steady",
    "stable",
    "in line with",
    "within normal",
    "within the usual",
    "no increase",
    "no higher than",
    "not higher",
    "did not rise",
    "didn't rise",
];
/// "same" compares a level with a reference ("same as", "the same peak as"); "same time", "same hour" and "same day"
/// name the reference period instead ("3,100 at the same time last Friday").
const SAME_PERIOD: &[&str] = &["time", "hour", "day", "period", "point", "minute", "weekday", "window", "moment"];

/// Markers that put the baseline in the number after them.
const BASELINE_AFTER_MARKER: &[&str] = &[
    "up from",
    "down from",
    "rose from",
    "grew from",
    "increased from",
    "jumped from",
    "climbed from",
    "went from",
    "fell from",
    "dropped from",
    "decreased from",
    "baseline",
    "was ",
    "were ",
    "compared to",
    "compared with",
    "vs",
    "versus",
    "against",
    "normally",
    "usually",
    "typically",
    "typical",
    "usual ",
    "normal ",
    "average",
    "avg",
    "median",
    "previously",
    "prior",
    "before:",
    "earlier",
    "expected",
];
/// Reference periods that make the number before them the baseline.
const BASELINE_BEFORE_MARKER: &[&str] = &[
    "before",
    "earlier",
    "yesterday",
    "last week",
    "last month",
    "last year",
    "last night",
    "last time",
    "last quarter",
    "last monday",
    "last tuesday",
    "last wednesday",
    "last thursday",
    "last friday",
    "last saturday",
    "last sunday",
    "last weekend",
    "previous",
    " ago",
    "same time",
    "same hour",
    "same day",
    "at this hour",
    "at this time",
    // "140/s until 09:02, 0/s since": the level before a moment is the baseline.
    "until",
    "till ",
    "normally",
    "usually",
    "typically",
    "on a normal",
    "on a typical",
    "on an ordinary",
    "on a regular",
    "on an average",
    "baseline",
    "→",
    "->",
    "=>",
];
/// A unit that makes the number a duration, not a measurement ("for 2 weeks", "7-day baseline").
const DURATION_UNITS: &[&str] = &[
    "day", "days", "hour", "hours", "hr", "hrs", "h", "minute", "minutes", "min", "mins", "week", "weeks", "month",
    "months", "year", "years", "weekday", "weekdays", "second", "seconds", "sec", "secs",
];
/// A word that makes the next number an identifier, not a measurement.
const IDENTIFIER_WORDS: &[&str] =
    &["revision", "release", "rev", "version", "build", "#", "pr", "v", "node", "pod", "replica", "shard", "step"];

/// A measurement in the text: where it starts and ends, its value, whether it is a multiple (`3.3x`), and the unit
/// it was written in when that unit has a known size.
#[derive(Debug, Clone, Copy)]
struct Num {
    start: usize,
    end: usize,
    value: f64,
    multiple: bool,
    unit: Option<Unit>,
}

/// What a unit measures: two numbers compare by their units' sizes only when they measure the same thing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dimension {
    Time,
    Bytes,
}

/// A unit with a known size in its dimension's base (seconds, bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Unit {
    dimension: Dimension,
    scale: f64,
}

/// Units whose size is known. A write-up compares latency and memory across units ("2.4 s, up from 300 ms",
/// "1.2 GiB, was 800 MiB"): read without them, the larger value would look like the smaller one.
const UNITS: &[(&str, Dimension, f64)] = &[
    ("ns", Dimension::Time, 1e-9),
    ("µs", Dimension::Time, 1e-6),
    ("us", Dimension::Time, 1e-6),
    ("ms", Dimension::Time, 1e-3),
    ("s", Dimension::Time, 1.0),
    ("sec", Dimension::Time, 1.0),
    ("secs", Dimension::Time, 1.0),
    ("second", Dimension::Time, 1.0),
    ("seconds", Dimension::Time, 1.0),
    ("bytes", Dimension::Bytes, 1.0),
    ("kb", Dimension::Bytes, 1e3),
    ("mb", Dimension::Bytes, 1e6),
    ("gb", Dimension::Bytes, 1e9),
    ("tb", Dimension::Bytes, 1e12),
    ("kib", Dimension::Bytes, 1024.0),
    ("mib", Dimension::Bytes, 1_048_576.0),
    ("gib", Dimension::Bytes, 1_073_741_824.0),
    ("tib", Dimension::Bytes, 1_099_511_627_776.0),
    ("ki", Dimension::Bytes, 1024.0),
    ("mi", Dimension::Bytes, 1_048_576.0),
    ("gi", Dimension::Bytes, 1_073_741_824.0),
    ("ti", Dimension::Bytes, 1_099_511_627_776.0),
];

/// The unit written right after a number ("300ms", "2.4 s", "1.2GiB"), when its size is known.
fn unit_after(rest: &str) -> Option<Unit> {
    let rest = rest.strip_prefix([' ', '\u{a0}']).unwrap_or(rest);
    let word: &str = &rest[..rest.find(|c: char| !c.is_alphabetic()).unwrap_or(rest.len())];
    UNITS.iter().find(|(name, ..)| *name == word).map(|&(_, dimension, scale)| Unit { dimension, scale })
}

/// Spelled-out seconds are a duration ("for 30 seconds") unless the text also measures time below a second
/// ("2.4 seconds, up from 300 ms"): then they are a latency compared with it.
fn measures_subsecond_time(lower: &str) -> bool {
    let b = lower.as_bytes();
    lower.char_indices().any(|(at, _)| {
        at > 0
            && b[at - 1].is_ascii_digit()
            && unit_after(&lower[at..]).is_some_and(|u| u.dimension == Dimension::Time && u.scale < 1.0)
    })
}

/// Words after "N times" that make it a multiple of a baseline ("30 times higher", "4 times the usual").
const TIMES_UP: &[&str] = &[
    "higher", "more", "larger", "greater", "bigger", "as much", "as many", "as high", "the ", "over", "above", "normal",
];
/// Words after "N times" that make it a fraction of a baseline ("3 times lower").
const TIMES_DOWN: &[&str] = &["lower", "less", "fewer", "smaller"];

/// The measurements in a text: `2,050`, `410k` (×1000), `1.6ms` (its unit kept), `3.3x` (a multiple). Clock times
/// (`18:30`), dates (`2026-11-28`), versions (`4.2.0`, `v88`) and durations ("2 weeks", "7-day") are left out.
fn numbers(lower: &str) -> Vec<Num> {
    let b = lower.as_bytes();
    let mut out = Vec::new();
    let subsecond = measures_subsecond_time(lower);
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit() && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'));
        if !starts {
            i += 1;
            continue;
        }
        let start = i;
        let mut dots = 0;
        while i < b.len()
            && (b[i].is_ascii_digit()
                || ((b[i] == b',' || b[i] == b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit)))
        {
            dots += usize::from(b[i] == b'.');
            i += 1;
        }
        let end = i;
        let prev = start.checked_sub(1).map(|p| b[p]);
        let next = b.get(end).copied();
        let digit_at = |at: Option<usize>| at.and_then(|at| b.get(at)).is_some_and(u8::is_ascii_digit);
        let clock_or_date = (matches!(next, Some(b':' | b'/')) && digit_at(Some(end + 1)))
            || (matches!(prev, Some(b':' | b'/')) && digit_at(start.checked_sub(2)))
            || (next == Some(b'-') && b.get(end + 1).is_some_and(u8::is_ascii_digit) && {
                // "2026-11-28" is a date; "2,000-2,150" and "1000-1200" are ranges of measurements.
                lower[start..end].len() == 4 && (lower[start..].starts_with("19") || lower[start..].starts_with("20"))
            })
            || (prev == Some(b'-') && start >= 2 && b[start - 2].is_ascii_digit() && lower[start..end].len() == 2);
        let version = dots >= 2;
        let before = lower[..start].trim_end();
        let identifier = IDENTIFIER_WORDS.iter().any(|w| {
            before.ends_with(w)
                && before.len().checked_sub(w.len() + 1).is_none_or(|p| !before.as_bytes()[p].is_ascii_alphanumeric())
        });
        let rest = lower[end..].trim_start_matches(['-', ' ']);
        let unit = unit_after(&lower[end..]);
        let latency = subsecond && unit.is_some_and(|u| u.dimension == Dimension::Time);
        let duration = !latency
            && DURATION_UNITS.iter().any(|u| {
                rest.strip_prefix(u).is_some_and(|after| !after.starts_with(|c: char| c.is_ascii_alphabetic()))
            });
        if clock_or_date || version || identifier || duration {
            continue;
        }
        let Ok(mut value) = lower[start..end].replace(',', "").parse::<f64>() else { continue };
        let word_end = |c: Option<u8>| c.is_none_or(|c| !c.is_ascii_alphabetic());
        let mut multiple = false;
        match (next, b.get(end + 1).copied()) {
            (Some(b'k'), after) if word_end(after) => value *= 1e3,
            (Some(b'x'), after) if word_end(after) => multiple = true,
            _ => {}
        }
        if lower[end..].starts_with("×") {
            multiple = true;
        }
        // "30 times higher", "4 times the usual": a multiple said in words. Only before a comparison, so a count
        // ("restarted 5 times") stays a count; "3 times lower" is a third.
        if let Some(after) = rest.strip_prefix("times ") {
            let after = after.trim_start();
            if TIMES_UP.iter().any(|w| after.starts_with(w)) {
                multiple = true;
            } else if TIMES_DOWN.iter().any(|w| after.starts_with(w)) && value > 0.0 {
                (value, multiple) = (1.0 / value, true);
            }
        }
        out.push(Num { start, end, value, multiple, unit: unit.filter(|_| !multiple) });
    }
    out
}

/// True when `word` occurs in `lower` without "no", "not" or "without" just before it.
fn unnegated(lower: &str, word: &str) -> bool {
    lower.match_indices(word).any(|(at, _)| {
        let before = lower[..at].trim_end();
        !(before.ends_with(" no") || before == "no" || before.ends_with("not") || before.ends_with("without"))
    })
}

fn says_same(lower: &str) -> bool {
    lower.match_indices("same").any(|(at, w)| {
        let rest = lower[at + w.len()..].trim_start_matches(['-', ' ']);
        !SAME_PERIOD.iter().any(|p| rest.starts_with(p))
    })
}

/// "doubled", "tripled", "halved", "twice", "tenfold", "3-fold".
fn word_multiple(lower: &str) -> Option<f64> {
    const WORDS: &[(&str, f64)] = &[
        ("doubled", 2.0),
        ("doubling", 2.0),
        ("twice", 2.0),
        ("tripled", 3.0),
        ("trebled", 3.0),
        ("three times", 3.0),
        ("quadrupled", 4.0),
        ("four times", 4.0),
        ("fivefold", 5.0),
        ("five times", 5.0),
        ("tenfold", 10.0),
        ("ten times", 10.0),
        ("halved", 0.5),
    ];
    if let Some(&(_, m)) = WORDS.iter().find(|(w, _)| unnegated(lower, w)) {
        return Some(m);
    }
    let at = lower.find("-fold").or_else(|| lower.find(" fold"))?;
    let digits: String = lower[..at]
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().ok()
}

/// A change stated in percent: "up 40%", "+250%", "increased by 40%", "40% higher", "down 30%", "-30%",
/// "30% lower". A bare percentage ("cpu 95%") is a level, not a change.
fn percent_change(lower: &str) -> Option<f64> {
    const UP_BEFORE: &[&str] = &["up", "+", "rose", "grew", "increased", "increase of", "jumped", "climbed", "higher"];
    const DOWN_BEFORE: &[&str] = &["down", "-", "−", "fell", "dropped", "decreased", "decrease of", "lower"];
    const UP_AFTER: &[&str] = &["higher", "more", "increase", "rise", "jump", "growth", "above normal", "above usual"];
    const DOWN_AFTER: &[&str] = &["lower", "less", "fewer", "decrease", "drop", "fall", "below normal", "below usual"];
    // `w` ends `before` as a word (a sign needs no boundary, but a digit before it makes a range: "5-10%").
    let ends_with_word = |before: &str, w: &str| {
        before.strip_suffix(w).is_some_and(|head| {
            let prev = head.chars().next_back();
            if w.chars().all(char::is_alphabetic) {
                prev.is_none_or(|c| !c.is_alphanumeric())
            } else {
                prev.is_none_or(|c| !c.is_ascii_digit())
            }
        })
    };
    for (pct_at, _) in lower.match_indices('%') {
        let Some(digits_start) = lower[..pct_at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_digit() || *c == '.' || *c == ',')
            .last()
            .map(|(i, _)| i)
        else {
            continue;
        };
        let Ok(p) = lower[digits_start..pct_at].replace(',', "").parse::<f64>() else { continue };
        let before = lower[..digits_start].trim_end();
        let before = before.strip_suffix(" by").unwrap_or(before).trim_end();
        let after = lower[pct_at + 1..].trim_start();
        if UP_BEFORE.iter().any(|w| ends_with_word(before, w)) || UP_AFTER.iter().any(|w| after.starts_with(w)) {
            return Some(1.0 + p / 100.0);
        }
        if DOWN_BEFORE.iter().any(|w| ends_with_word(before, w)) || DOWN_AFTER.iter().any(|w| after.starts_with(w)) {
            return Some((1.0 - p / 100.0).max(0.0));
        }
    }
    None
}

/// The value now over the baseline, from a pair of measurements where one is tied to a reference.
fn against_baseline(lower: &str, nums: &[Num]) -> Option<f64> {
    let plain: Vec<Num> = nums.iter().copied().filter(|n| !n.multiple).collect();
    let is_baseline = |i: usize| {
        let n = plain[i];
        let from = if i == 0 { 0 } else { plain[i - 1].end };
        let before_ctx = &lower[from..n.start];
        let before_ctx = before_ctx.rfind([',', ';', '(']).map_or(before_ctx, |at| &before_ctx[at + 1..]);
        let to = plain.get(i + 1).map_or(lower.len(), |m| m.start);
        // The reference period follows within the same clause: stop at the first separator.
        let after_ctx = &lower[n.end..to];
        let clause_end = after_ctx.find([',', ';', ')', '(']).unwrap_or(after_ctx.len());
        let after_ctx = &after_ctx[..clause_end];
        // "from 3,100/s to 9,800/s": the "to" may follow a unit.
        let from_to = before_ctx.trim_end().ends_with("from")
            && after_ctx.split_whitespace().take(2).any(|w| w == "to" || w.starts_with("to\u{a0}"));
        from_to
            || BASELINE_AFTER_MARKER.iter().any(|m| before_ctx.contains(m))
            || BASELINE_BEFORE_MARKER.iter().any(|m| after_ctx.contains(m))
    };
    let baseline = (0..plain.len()).find(|&i| is_baseline(i))?;
    let current = (0..plain.len()).find(|&i| i != baseline && !is_baseline(i))?;
    let (c, b) = (plain[current], plain[baseline]);
    // Both in units of one dimension: compare sizes ("2.4 s" against "300 ms"). Otherwise a unit written once
    // ("from 300 to 2,400 ms") is shared, and the numbers compare as written.
    let (c, b) = match (c.unit, b.unit) {
        (Some(cu), Some(bu)) if cu.dimension == bu.dimension => (c.value * cu.scale, b.value * bu.scale),
        _ => (c.value, b.value),
    };
    (b > 0.0).then(|| c / b)
}

/// Reads a metric's value against its baseline when the text states one. `None` when the text gives no comparison.
pub fn trend(text: &str) -> Option<Trend> {
    let lower = text.to_lowercase();
    if contains_any(&lower, FLAT_WORDS) || says_same(&lower) {
        return Some(Trend::Flat);
    }
    let nums = numbers(&lower);
    let ratio = nums
        .iter()
        .find(|n| n.multiple)
        .map(|n| n.value)
        .or_else(|| word_multiple(&lower))
        .or_else(|| percent_change(&lower))
        .or_else(|| against_baseline(&lower, &nums));
    const ABOVE: &[&str] = &[
        "above normal",
        "above usual",
        "above baseline",
        "above the baseline",
        "higher than usual",
        "higher than normal",
        "more than usual",
        "surge",
        "spike",
        "spiking",
        "record high",
        "all-time high",
    ];
    const BELOW: &[&str] = &[
        "below normal",
        "below usual",
        "below baseline",
        "below the baseline",
        "lower than usual",
        "lower than normal",
    ];
    match ratio {
        Some(r) if r >= 1.5 => Some(Trend::Rising(r)),
        Some(r) if r <= 2.0 / 3.0 => Some(Trend::Falling(r)),
        Some(_) => Some(Trend::Flat),
        // A rise said in words has no measured size: the least that counts as one.
        None if ABOVE.iter().any(|w| unnegated(&lower, w)) => Some(Trend::Rising(1.5)),
        None if BELOW.iter().any(|w| unnegated(&lower, w)) => Some(Trend::Falling(2.0 / 3.0)),
        None if contains_any(&lower, &["normal", "usual", "typical", "expected"]) => Some(Trend::Flat),
        None => None,
    }
}
