//! The numerical gradient (`common/gradient.py`): central differences,
//! `(f(x + h) - f(x - h)) / 2h` with `h = 1e-4`, for every parameter.
//!
//! A central difference is only the derivative where the loss is smooth over
//! `[x - h, x + h]`. Relu has a kink at 0: when nudging a parameter by `h`
//! flips some unit's sign, the difference quotient mixes two slopes and is
//! simply not the gradient (cs231n's "kinks in the objective"). `f` returns,
//! beside the loss, a signature of the Relu masks; elements whose nudges
//! change it are reported as `kinked` rather than compared.
//!
//! The central difference's own error is `h²·f'''/6` plus rounding. Where the
//! loss curves sharply (Batch Normalization divides by a batch's standard
//! deviation, so its third derivatives grow like 1/std³) no fixed bound
//! holds, so each element also gets the difference at `2h`: since
//! `D(2h) - D(h) ≈ 3·(D(h) - f')`, `|D(2h) - D(h)|` bounds the truncation
//! error of `D(h)` with a factor 3 to spare.

use crate::core::model::{Params, Tensor};

/// The gradient, its truncation error estimate, and the arena indices where
/// a nudge crossed a Relu kink.
pub struct NumericalGradient {
    pub grads: Params,
    /// `|D(2h) - D(h)|` per element: about three times the truncation error.
    pub truncation: Params,
    pub kinked: Vec<usize>,
}

impl NumericalGradient {
    /// The kinked elements of one tensor, as indices within it, ascending.
    pub fn kinked_in(&self, t: &Tensor) -> Vec<usize> {
        self.kinked
            .iter()
            .filter(|&&e| t.range().contains(&e))
            .map(|e| e - t.offset)
            .collect()
    }
}

/// The book's step.
pub const H: f64 = 1e-4;

/// Central-difference gradient of `f` at `params` for the elements `which`
/// picks in each tensor (all of them by default). Work is split over the
/// available cores; each element's value depends only on `f`, so the result
/// does not depend on the split.
pub fn numerical_gradient<F>(
    f: F,
    params: &Params,
    tensors: &[(Tensor, Vec<usize>)],
) -> NumericalGradient
where
    F: Fn(&Params) -> (f64, u64) + Sync,
{
    let (_, base_signature) = f(params);
    let elements: Vec<usize> = tensors
        .iter()
        .flat_map(|(t, idx)| idx.iter().map(move |&i| t.offset + i))
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(elements.len().max(1));
    let chunk = elements.len().div_ceil(threads).max(1);
    let mut grads = Params::zeros(&params.arch);
    let mut truncation = Params::zeros(&params.arch);
    let parts: Vec<Vec<(usize, f64, f64, bool)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = elements
            .chunks(chunk)
            .map(|part| {
                let f = &f;
                scope.spawn(move || {
                    let mut p = params.clone();
                    part.iter()
                        .map(|&e| {
                            let tmp = p.values[e];
                            let mut at = |x: f64| {
                                p.values[e] = x;
                                f(&p)
                            };
                            let (fxh1, s1) = at(tmp + H);
                            let (fxh2, s2) = at(tmp - H);
                            let (fx2h1, s3) = at(tmp + 2.0 * H);
                            let (fx2h2, s4) = at(tmp - 2.0 * H);
                            p.values[e] = tmp;
                            let kinked = [s1, s2, s3, s4].iter().any(|&s| s != base_signature);
                            let d = (fxh1 - fxh2) / (2.0 * H);
                            let d2 = (fx2h1 - fx2h2) / (4.0 * H);
                            (e, d, (d2 - d).abs(), kinked)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("numerical gradient thread"))
            .collect()
    });
    let mut kinked = Vec::new();
    for (e, g, t, k) in parts.into_iter().flatten() {
        grads.values[e] = g;
        truncation.values[e] = t;
        if k {
            kinked.push(e);
        }
    }
    NumericalGradient {
        grads,
        truncation,
        kinked,
    }
}

/// Every element of every tensor.
pub fn all_elements(tensors: &[Tensor]) -> Vec<(Tensor, Vec<usize>)> {
    tensors
        .iter()
        .map(|t| (t.clone(), (0..t.len()).collect()))
        .collect()
}
