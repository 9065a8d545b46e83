//! The values the program gives each WGSL override constant, by name, and
//! every combination of them a shader can be compiled with. Keyed by name,
//! not by shader, so a shader that gains an override the table does not
//! know fails the test instead of going untranslated.

use gpu_net::gpu::kernels::{dropout, gather, optimizer, window};
use gpu_net::gpu::plan::{REDUCE_WG, SOFTMAX_WG, VEC4_WG_YS};

/// `(name, values)`, as src/gpu/kernels/*.rs pass them as pipeline constants.
pub type Table = [(&'static str, &'static [f64])];

const BOOL: &[f64] = &[0.0, 1.0];

/// Every vec4 workgroup height the planner gives (plan::VEC4_WG_YS).
const WG_YS: [f64; VEC4_WG_YS.len()] = {
    let mut v = [0.0; VEC4_WG_YS.len()];
    let mut i = 0;
    while i < v.len() {
        v[i] = VEC4_WG_YS[i] as f64;
        i += 1;
    }
    v
};

/// The program's overrides.
pub fn program() -> Vec<(&'static str, &'static [f64])> {
    // optimizer.rs: RULE is OptimizerKind's index, Sgd 0 .. Adam 5.
    const RULES: [f64; gpu_net::core::optim::OptimizerKind::ALL.len()] = {
        let mut v = [0.0; gpu_net::core::optim::OptimizerKind::ALL.len()];
        let mut i = 0;
        while i < v.len() {
            v[i] = i as f64;
            i += 1;
        }
        v
    };
    vec![
        // matmul.rs: op(A), op(B) transposed.
        ("TRANS_A", BOOL),
        ("TRANS_B", BOOL),
        // matmul/pipelines.rs: the tiled kernel's vec4 reads of A and B.
        ("WIDE_A", BOOL),
        ("WIDE_B", BOOL),
        // matmul/pipelines.rs: the tiled kernel reading A as im2col's columns.
        ("A_COLUMNS", BOOL),
        // matmul.rs: Epilogue Store 0, Relu 1, ReluMask 2, Sgd 3, Grad 4, and
        // 5, split-K's partial sums.
        ("EPILOGUE", &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
        // plan.rs, Vec4Shape::for_product: lanes along M or N, invocations
        // along y (VEC4_WG_YS), rows per invocation (8 or 12).
        ("X_ALONG_M", BOOL),
        ("WG_Y", &WG_YS),
        ("TM", &[8.0, 12.0]),
        // softmax_loss.rs: the pass with the last Affine (the head).
        ("AFFINE", BOOL),
        // softmax_loss.rs: the head with its input gradient.
        ("INPUT_GRAD", BOOL),
        // batchnorm.rs, dropout.rs: training or evaluation form.
        ("TRAIN", BOOL),
        ("RULE", &RULES),
        // Workgroup sizes and per-invocation chunks, as the kernels give them.
        (
            "WG",
            distinct(&[
                dropout::WG,
                gather::WG,
                optimizer::WG,
                window::WG,
                SOFTMAX_WG,
            ]),
        ),
        ("REDUCE_WG", distinct(&[REDUCE_WG])),
        ("CHUNK", distinct(&[gather::CHUNK])),
        ("PER", distinct(&[optimizer::PER])),
    ]
}

/// `values` once each, as f64, for the life of the test.
fn distinct(values: &[u32]) -> &'static [f64] {
    let mut v: Vec<f64> = values.iter().map(|&x| f64::from(x)).collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    Box::leak(v.into_boxed_slice())
}

/// Every assignment of values to the overrides `module` declares (one empty
/// assignment when it declares none). An override without a name, or one
/// the table does not list, is an error naming it.
pub fn combinations(
    module: &naga::Module,
    table: &Table,
) -> Result<Vec<Vec<(String, f64)>>, String> {
    let mut all = vec![vec![]];
    for (_, o) in module.overrides.iter() {
        let name = o
            .name
            .clone()
            .ok_or_else(|| format!("an override without a name (id {:?})", o.id))?;
        let values = table
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                format!(
                    "override {name} is not in the table of tests/translate/overrides.rs: add the values the program gives it"
                )
            })?;
        let mut next = Vec::with_capacity(all.len() * values.len());
        for combo in &all {
            for &v in values {
                let mut c = combo.clone();
                c.push((name.clone(), v));
                next.push(c);
            }
        }
        all = next;
    }
    Ok(all)
}

/// "TRANS_A=1,EPILOGUE=3" (or "defaults"), for messages and file names.
pub fn label(combo: &[(String, f64)]) -> String {
    if combo.is_empty() {
        return "defaults".into();
    }
    combo
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}
