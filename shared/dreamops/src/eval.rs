//! `dreamops analyze` and `dreamops eval`: the analyzer on case files (`eval/FORMAT.md`), and scoring.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use domain::action::{ActionKind, ActionTarget};
use domain::diagnosis::{Category, DecidedBy};
use domain::observation::{Case, Expected};
use domain::ports::LanguageModel;
use serde::Serialize;

/// The answer `dreamops analyze` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub case_id: String,
    pub category: Category,
    pub action: ActionKind,
    pub target: Option<ActionTarget>,
    pub confidence: f64,
    pub decided_by: DecidedBy,
    /// The rule that decided (or the model id).
    pub rule: String,
    pub diagnosis: String,
    pub evidence: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Case(PathBuf, domain::observation::CaseError),
    #[error("{0}: no case files (*.json) found")]
    Empty(PathBuf),
}

/// Analyzes one case with the rules only, reading only its alert and observations.
pub fn analyze(case: &Case) -> Answer {
    answer(case, pipeline::diagnose::diagnose(&case.snapshot()))
}

/// Analyzes one case as the analyzer stage does: rules first, then the model when the rules leave it open.
pub async fn analyze_with(case: &Case, llm: &dyn LanguageModel, min_confidence: f64) -> Answer {
    let s = case.snapshot();
    let mut d = pipeline::diagnose::diagnose(&s);
    if pipeline::llm::needed(&d, min_confidence) {
        d = pipeline::llm::consult(llm, &s, d, &[]).await;
    }
    answer(case, d)
}

fn answer(case: &Case, d: domain::Diagnosis) -> Answer {
    Answer {
        case_id: case.id.clone(),
        category: d.category,
        action: d.proposal.action,
        target: d.proposal.target,
        confidence: d.confidence,
        decided_by: d.decided_by,
        rule: d.rule,
        diagnosis: d.summary,
        evidence: d.evidence,
    }
}

pub fn load_case(path: &Path) -> Result<Case, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::Read(path.to_owned(), e))?;
    Case::from_json(&text).map_err(|e| EvalError::Case(path.to_owned(), e))
}

/// One case's score (FORMAT.md "Scoring").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub case_id: String,
    pub difficulty: Option<String>,
    pub expected_action: ActionKind,
    pub expected_category: Category,
    pub action: ActionKind,
    pub category: Category,
    pub action_exact: bool,
    pub action_correct: bool,
    pub harmful: bool,
    pub category_correct: bool,
    pub keywords_hit: bool,
    pub confidence: f64,
    pub rule: String,
}

fn same_target(t: &ActionTarget, e: &domain::observation::ExpectedTarget) -> bool {
    t.kind == e.kind && t.namespace == e.namespace && t.name == e.name
}

fn forbidden(t: &ActionTarget, e: &Expected) -> bool {
    e.forbidden_targets.iter().any(|f| {
        f.namespace == t.namespace
            && f.kind.as_ref().is_none_or(|k| *k == t.kind)
            && f.name.as_ref().is_none_or(|n| *n == t.name)
    })
}

pub fn score(case: &Case, a: &Answer) -> Option<Score> {
    let e = case.expected.as_ref()?;
    let ns = &case.observations.namespace;
    let target_ok_exact = match (&a.target, &e.action_target) {
        (None, None) => true,
        (Some(t), Some(et)) => same_target(t, et),
        (None, Some(_)) => !a.action.is_mutating(),
        (Some(_), None) => false,
    };
    let target_ok_alt = a.target.as_ref().is_none_or(|t| &t.namespace == ns && !forbidden(t, e));
    let action_exact = a.action == e.action && target_ok_exact;
    let action_correct = action_exact || (e.acceptable_actions.contains(&a.action) && target_ok_alt);
    let foreign_ns_ok = e.action_target.as_ref().map(|t| t.namespace.clone());
    let harmful = e.harmful_actions.contains(&a.action)
        || a.target.as_ref().is_some_and(|t| {
            a.action.is_mutating()
                && (forbidden(t, e) || (&t.namespace != ns && foreign_ns_ok.as_ref() != Some(&t.namespace)))
        });
    let text = a.diagnosis.to_lowercase();
    let keywords_hit = e.diagnosis_keywords.iter().all(|g| g.iter().any(|k| text.contains(&k.to_lowercase())));
    Some(Score {
        case_id: case.id.clone(),
        difficulty: case.difficulty.clone(),
        expected_action: e.action,
        expected_category: e.root_cause_category,
        action: a.action,
        category: a.category,
        action_exact,
        action_correct,
        harmful,
        category_correct: a.category == e.root_cause_category,
        keywords_hit,
        confidence: a.confidence,
        rule: a.rule.clone(),
    })
}

/// Scores over a set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub cases: usize,
    pub action_exact: usize,
    pub action_correct: usize,
    pub harmful: usize,
    pub category_correct: usize,
    pub keywords_hit: usize,
    /// Cases whose expected action is an automated fix.
    pub autofix_cases: usize,
    /// Of those, answered with exactly that action and target.
    pub autofix_hits: usize,
}

impl Totals {
    fn add(&mut self, s: &Score) {
        self.cases += 1;
        self.action_exact += usize::from(s.action_exact);
        self.action_correct += usize::from(s.action_correct);
        self.harmful += usize::from(s.harmful);
        self.category_correct += usize::from(s.category_correct);
        self.keywords_hit += usize::from(s.keywords_hit);
        if s.expected_action.is_mutating() {
            self.autofix_cases += 1;
            self.autofix_hits += usize::from(s.action_exact);
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub overall: Totals,
    pub by_expected_action: BTreeMap<String, Totals>,
    pub by_category: BTreeMap<String, Totals>,
    pub by_difficulty: BTreeMap<String, Totals>,
    /// Cases answered by the language model rather than the rules.
    pub decided_by_llm: usize,
    /// Confidence against accuracy.
    pub reliability: Reliability,
    pub cases: Vec<Score>,
}

/// Confidence against accuracy: does an answer given with confidence 0.8 turn out right about 80% of the time?
/// In the buckets "right" is `action_exact` (the single best action on the right target); the thresholds count a
/// fix as right when it is exact or acceptable, since acting on an acceptable fix is what `min_confidence` admits.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reliability {
    pub buckets: Vec<Bucket>,
    /// Expected calibration error: the case-weighted mean of |accuracy - mean confidence| over the buckets.
    pub ece: f64,
    /// For each `min_confidence` a team might choose: what the automated fixes at or above it would have been.
    pub thresholds: Vec<Threshold>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Confidence in `[low, high)` (the last bucket includes 1.0).
    pub low: f64,
    pub high: f64,
    pub cases: usize,
    pub mean_confidence: f64,
    pub accuracy: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    pub min_confidence: f64,
    /// Mutating answers at or above the threshold: what the agent would act on.
    pub fixes: usize,
    /// Of those, right (exact or acceptable).
    pub fixes_right: usize,
    /// Of those, harmful.
    pub fixes_harmful: usize,
    /// Right fixes below the threshold: escalated instead.
    pub right_fixes_withheld: usize,
}

const BUCKET_EDGES: &[f64] = &[0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
const THRESHOLDS: &[f64] = &[0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9];

/// Buckets, expected calibration error and the fixes each threshold admits, over scored answers.
pub fn reliability(scores: &[Score]) -> Reliability {
    let mut buckets = Vec::new();
    let mut ece = 0.0;
    for w in BUCKET_EDGES.windows(2) {
        let (low, high) = (w[0], w[1]);
        let last = high >= 1.0;
        let inside: Vec<&Score> = scores
            .iter()
            .filter(|s| s.confidence >= low && (s.confidence < high || (last && s.confidence <= high)))
            .collect();
        if inside.is_empty() {
            continue;
        }
        let n = inside.len() as f64;
        let mean_confidence = inside.iter().map(|s| s.confidence).sum::<f64>() / n;
        let accuracy = inside.iter().filter(|s| s.action_exact).count() as f64 / n;
        ece += n / scores.len() as f64 * (accuracy - mean_confidence).abs();
        buckets.push(Bucket { low, high, cases: inside.len(), mean_confidence, accuracy });
    }
    let thresholds = THRESHOLDS
        .iter()
        .map(|&t| {
            let fixes: Vec<&Score> = scores.iter().filter(|s| s.action.is_mutating() && s.confidence >= t).collect();
            Threshold {
                min_confidence: t,
                fixes: fixes.len(),
                fixes_right: fixes.iter().filter(|s| s.action_correct).count(),
                fixes_harmful: fixes.iter().filter(|s| s.harmful).count(),
                right_fixes_withheld: scores
                    .iter()
                    .filter(|s| s.action.is_mutating() && s.confidence < t && s.action_correct)
                    .count(),
            }
        })
        .collect();
    Reliability { buckets, ece, thresholds }
}

/// Analyzes and scores every `*.json` case under `dir` (recursively), in name order.
pub fn eval_dir(dir: &Path) -> Result<Report, EvalError> {
    eval_dirs(&[dir.to_owned()])
}

/// Analyzes and scores every `*.json` case under each of `dirs` (recursively), each directory in name order.
/// A directory without cases is an error; a case id seen twice is scored twice.
pub fn eval_dirs(dirs: &[PathBuf]) -> Result<Report, EvalError> {
    let cases = load_dirs(dirs)?;
    Ok(report(cases.iter().map(|c| (c, analyze(c)))))
}

/// As [`eval_dirs`], consulting the model where the rules leave a case open.
pub async fn eval_dirs_with(
    dirs: &[PathBuf],
    llm: &dyn LanguageModel,
    min_confidence: f64,
) -> Result<Report, EvalError> {
    let cases = load_dirs(dirs)?;
    let mut answers = Vec::with_capacity(cases.len());
    for c in &cases {
        answers.push(analyze_with(c, llm, min_confidence).await);
    }
    Ok(report(cases.iter().zip(answers)))
}

fn load_dirs(dirs: &[PathBuf]) -> Result<Vec<Case>, EvalError> {
    let mut files = Vec::new();
    for dir in dirs {
        let mut here = Vec::new();
        collect(dir, &mut here)?;
        if here.is_empty() {
            return Err(EvalError::Empty(dir.clone()));
        }
        here.sort();
        files.extend(here);
    }
    files.iter().map(|f| load_case(f)).collect()
}

fn report<'a>(answers: impl Iterator<Item = (&'a Case, Answer)>) -> Report {
    let mut r = Report::default();
    for (case, a) in answers {
        if let Some(s) = score(case, &a) {
            r.overall.add(&s);
            r.by_expected_action.entry(s.expected_action.to_string()).or_default().add(&s);
            r.by_category.entry(s.expected_category.to_string()).or_default().add(&s);
            r.by_difficulty.entry(s.difficulty.clone().unwrap_or_else(|| "unrated".into())).or_default().add(&s);
            if a.decided_by == DecidedBy::Llm {
                r.decided_by_llm += 1;
            }
            r.cases.push(s);
        }
    }
    r.reliability = reliability(&r.cases);
    r
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), EvalError> {
    let entries = std::fs::read_dir(dir).map_err(|e| EvalError::Read(dir.to_owned(), e))?;
    for entry in entries {
        let path = entry.map_err(|e| EvalError::Read(dir.to_owned(), e))?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 { "-".into() } else { format!("{:.1}%", n as f64 * 100.0 / d as f64) }
}

/// The report as a table for people.
pub fn render(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let row = |out: &mut String, name: &str, t: &Totals| {
        let _ = writeln!(
            out,
            "{name:<28} {:>5} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7}",
            t.cases,
            pct(t.action_exact, t.cases),
            pct(t.action_correct, t.cases),
            pct(t.category_correct, t.cases),
            pct(t.keywords_hit, t.cases),
            pct(t.autofix_hits, t.autofix_cases),
            t.harmful
        );
    };
    let header = format!(
        "{:<28} {:>5} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7}\n",
        "", "cases", "exact", "action", "category", "keywords", "autofix", "harmful"
    );
    out.push_str(&header);
    row(&mut out, "overall", &r.overall);
    if r.decided_by_llm > 0 {
        let _ = writeln!(out, "{} of {} cases decided by the language model", r.decided_by_llm, r.overall.cases);
    }
    out.push_str("\nby expected action\n");
    for (k, t) in &r.by_expected_action {
        row(&mut out, k, t);
    }
    out.push_str("\nby category\n");
    for (k, t) in &r.by_category {
        row(&mut out, k, t);
    }
    out.push_str("\nby difficulty\n");
    for (k, t) in &r.by_difficulty {
        row(&mut out, k, t);
    }
    if !r.reliability.buckets.is_empty() {
        let _ = writeln!(out, "\nreliability (confidence vs exact action), ECE {:.3}", r.reliability.ece);
        for b in &r.reliability.buckets {
            let _ = writeln!(
                out,
                "  [{:.2}, {:.2}{} {:>5} cases   mean confidence {:.2}   right {:.1}%",
                b.low,
                b.high,
                if b.high >= 1.0 { "]" } else { ")" },
                b.cases,
                b.mean_confidence,
                b.accuracy * 100.0
            );
        }
        out.push_str("\nautomated fixes by min_confidence\n");
        for t in &r.reliability.thresholds {
            let _ = writeln!(
                out,
                "  >= {:.2}: {:>4} fixes, {} right ({}), {} harmful; {} right fixes withheld",
                t.min_confidence,
                t.fixes,
                t.fixes_right,
                pct(t.fixes_right, t.fixes),
                t.fixes_harmful,
                t.right_fixes_withheld
            );
        }
    }
    let misses: Vec<&Score> = r.cases.iter().filter(|s| !s.action_exact || !s.category_correct || s.harmful).collect();
    if !misses.is_empty() {
        out.push_str("\nmisses\n");
        for s in misses {
            let _ = writeln!(
                out,
                "{:<10} expected {} / {}, got {} / {}{}",
                s.case_id,
                s.expected_action,
                s.expected_category,
                s.action,
                s.category,
                if s.harmful { "  HARMFUL" } else { "" }
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(confidence: f64, action: ActionKind, exact: bool, harmful: bool) -> Score {
        Score {
            case_id: "c".into(),
            difficulty: None,
            expected_action: action,
            expected_category: Category::Unknown,
            action,
            category: Category::Unknown,
            action_exact: exact,
            action_correct: exact,
            harmful,
            category_correct: true,
            keywords_hit: true,
            confidence,
            rule: "r".into(),
        }
    }

    #[test]
    fn calibration_error_is_the_weighted_gap_between_confidence_and_accuracy() {
        // Four answers at 0.85, three right: accuracy 0.75, gap 0.10. Four at 0.95, all right: gap 0.05.
        let mut s = vec![scored(0.85, ActionKind::Restart, true, false); 3];
        s.push(scored(0.85, ActionKind::Restart, false, true));
        s.extend(vec![scored(0.95, ActionKind::Escalate, true, false); 4]);
        let r = reliability(&s);
        assert_eq!(r.buckets.len(), 2);
        assert!((r.buckets[0].accuracy - 0.75).abs() < 1e-9);
        assert!((r.ece - (0.5 * 0.10 + 0.5 * 0.05)).abs() < 1e-9, "{}", r.ece);
        // A threshold of 0.8 admits the four restarts (escalations are not fixes), one of them harmful.
        let t = r.thresholds.iter().find(|t| t.min_confidence == 0.8).unwrap();
        assert_eq!((t.fixes, t.fixes_right, t.fixes_harmful, t.right_fixes_withheld), (4, 3, 1, 0));
        let t = r.thresholds.iter().find(|t| t.min_confidence == 0.9).unwrap();
        assert_eq!((t.fixes, t.right_fixes_withheld), (0, 3));
    }
}
