//! Element-wise agreement of two tensors, judged as llm.c judges its
//! kernels: `|got - want| <= atol + rtol·|want|` for every element.

use serde::Serialize;

/// f32's machine epsilon, as f64.
pub const EPS_F32: f64 = f32::EPSILON as f64;

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Tolerance {
    pub atol: f64,
    pub rtol: f64,
}

impl Tolerance {
    pub fn allows(&self, got: f64, want: f64) -> bool {
        // Written so that NaN never passes.
        (got - want).abs() <= self.atol + self.rtol * want.abs()
    }
}

/// How two tensors differ.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diff {
    pub len: usize,
    pub mean_abs: f64,
    pub max_abs: f64,
    /// Largest `|got - want| / max(|want|, rel_floor)`.
    pub max_rel: f64,
    /// Elements outside the tolerance.
    pub failures: usize,
    /// The element furthest outside (or nearest to) the tolerance:
    /// (index, got, want).
    pub worst: Option<(usize, f64, f64)>,
    /// The first few failing elements: (index, got, want).
    pub first_failures: Vec<(usize, f64, f64)>,
}

impl Diff {
    pub fn ok(&self) -> bool {
        self.failures == 0
    }
}

/// Compares `got` with the reference `want`. `rel_floor` keeps relative
/// errors of near-zero elements finite.
pub fn diff(got: &[f64], want: &[f64], tol: Tolerance, rel_floor: f64) -> Diff {
    diff_where(got, want, tol, rel_floor, |_| true)
}

/// [`diff`] over the elements `keep` accepts (`len` counts those).
pub fn diff_where(
    got: &[f64],
    want: &[f64],
    tol: Tolerance,
    rel_floor: f64,
    keep: impl Fn(usize) -> bool,
) -> Diff {
    diff_each(got, want, |_| tol, rel_floor, keep)
}

/// [`diff_where`] with a tolerance per element.
pub fn diff_each(
    got: &[f64],
    want: &[f64],
    tol_of: impl Fn(usize) -> Tolerance,
    rel_floor: f64,
    keep: impl Fn(usize) -> bool,
) -> Diff {
    assert_eq!(got.len(), want.len(), "compared tensors differ in length");
    let mut len = 0;
    let (mut sum, mut max_abs, mut max_rel, mut failures) = (0.0, 0.0f64, 0.0f64, 0);
    let (mut worst, mut worst_ratio) = (None, f64::NEG_INFINITY);
    let mut first_failures = Vec::new();
    for (i, (&g, &w)) in got.iter().zip(want).enumerate().filter(|(i, _)| keep(*i)) {
        len += 1;
        let tol = tol_of(i);
        let abs = (g - w).abs();
        let abs_or_inf = if abs.is_nan() { f64::INFINITY } else { abs };
        sum += abs_or_inf;
        max_abs = max_abs.max(abs_or_inf);
        max_rel = max_rel.max(abs_or_inf / w.abs().max(rel_floor));
        let ratio = abs_or_inf / (tol.atol + tol.rtol * w.abs()).max(f64::MIN_POSITIVE);
        if ratio > worst_ratio {
            (worst, worst_ratio) = (Some((i, g, w)), ratio);
        }
        if !tol.allows(g, w) {
            failures += 1;
            if first_failures.len() < 5 {
                first_failures.push((i, g, w));
            }
        }
    }
    Diff {
        len,
        mean_abs: sum / len.max(1) as f64,
        max_abs,
        max_rel,
        failures,
        worst,
        first_failures,
    }
}

/// f32 slice to f64, for comparing GPU output with the reference.
pub fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}
