//! The dispatch planner (`src/gpu/plan.rs`) as pure functions, on the
//! profile of a 132-unit GPU (an NVIDIA H200) and of a 2-core CPU adapter
//! (lavapipe on the development machine). No GPU needed.

use gpu_net::core::model::Arch;
use gpu_net::gpu::DeviceProfile;
use gpu_net::gpu::MatmulAlgo;
use gpu_net::gpu::cost::{H200, Tile};
use gpu_net::gpu::layout::step_products;
use gpu_net::gpu::layout::{Regions, step_regions};
use gpu_net::gpu::plan::{
    MatmulPlan, MatmulShape, SOFTMAX_MAX_GROUPS, SplitK, plan_product, plan_softmax, plan_tiled,
};

fn h200() -> DeviceProfile {
    DeviceProfile::discrete(132)
}

fn book() -> Arch {
    Arch::mlp(784, &[50], 10).unwrap()
}

fn groups(p: &MatmulPlan) -> u32 {
    p.groups.iter().product()
}

/// The plan the tiled kernel had before it knew the device: the 64×64
/// tile, K whole.
fn unsplit(s: &MatmulShape) -> MatmulPlan {
    plan_tiled(&h200(), Tile::T64, s, SplitK::Slices(1))
}

#[test]
fn every_product_of_the_book_step_on_a_large_gpu_is_planned_no_slower() {
    for p in step_products(&book(), 100, true) {
        let plan = plan_product(&h200(), MatmulAlgo::Tiled, &p.shape, SplitK::Auto);
        let old = unsplit(&p.shape);
        let (t_new, t_old) = (
            plan.predicted(&H200, &h200(), &p.shape),
            old.predicted(&H200, &h200(), &p.shape),
        );
        assert!(t_new <= t_old, "{}: {plan:?} {t_new} > {t_old}", p.name);
    }
}

#[test]
fn the_book_products_with_long_k_fill_a_large_gpu() {
    // X·W1 (100 × 52 over K = 788) ran on 2 workgroups for 111 µs of a
    // 198 µs step; the weight gradient at batch 8192 (51 × 12 over K = 8192)
    // on 1 for 1.03 ms.
    let x_w1 = &step_products(&book(), 100, true)[0];
    assert_eq!(x_w1.name, "affine1 forward");
    let dw2 = step_products(&book(), 8192, true)
        .into_iter()
        .find(|p| p.name == "affine2 backward dW,db")
        .unwrap();
    for s in [x_w1.shape, dw2.shape] {
        let plan = plan_product(&h200(), MatmulAlgo::Tiled, &s, SplitK::Auto);
        assert!(plan.split_k > 1 && groups(&plan) >= 32, "{s:?}: {plan:?}");
        let (new, old) = (
            plan.predicted(&H200, &h200(), &s),
            unsplit(&s).predicted(&H200, &h200(), &s),
        );
        assert!(new < old / 3.0, "{s:?}: {new} vs {old}");
    }
}

#[test]
fn a_large_square_product_takes_the_large_tile_whole() {
    let s = MatmulShape::plain(4096, 4096, 4096, 4096, 4096, 4096);
    let plan = plan_product(&h200(), MatmulAlgo::Tiled, &s, SplitK::Auto);
    assert_eq!(
        (plan.tile, plan.split_k, plan.groups),
        (Tile::T128, 1, [32, 32, 1])
    );
}

#[test]
fn on_a_two_core_cpu_the_vec4_kernel_keeps_its_rules() {
    let cpu = DeviceProfile::cpu(2);
    // The book step at batch 100 is never split; the weight gradient at
    // batch 8192 is cut into slices of 1024 along K.
    for p in step_products(&book(), 100, true) {
        let plan = plan_product(&cpu, MatmulAlgo::Vec4, &p.shape, SplitK::Auto);
        assert_eq!(plan.split_k, 1, "{}: {plan:?}", p.name);
        assert!(plan.k_slice as usize >= p.shape.k);
    }
    let dw1 = step_products(&book(), 8192, true)
        .into_iter()
        .find(|p| p.name == "affine1 backward dW,db")
        .unwrap();
    let plan = plan_product(&cpu, MatmulAlgo::Vec4, &dw1.shape, SplitK::Auto);
    assert_eq!((plan.split_k, plan.k_slice), (8, 1024), "{plan:?}");
}

#[test]
fn a_tiled_plan_on_two_cores_splits_less_than_on_132_units() {
    let cpu = DeviceProfile::cpu(2);
    let x_w1 = step_products(&book(), 100, true)[0].shape;
    let small = plan_product(&cpu, MatmulAlgo::Tiled, &x_w1, SplitK::Auto);
    let large = plan_product(&h200(), MatmulAlgo::Tiled, &x_w1, SplitK::Auto);
    assert!(small.split_k < large.split_k, "{small:?} vs {large:?}");
}

#[test]
fn splits_cover_k_with_no_empty_slice_and_fit_one_binding() {
    let mut tight = h200();
    tight.binding_limit = 1 << 20;
    for profile in [h200(), tight, DeviceProfile::cpu(2)] {
        for rows in [1, 3, 17, 100, 1000, 8192, 65536] {
            for p in step_products(&Arch::mlp(784, &[1024], 10).unwrap(), rows, true) {
                let s = p.shape;
                let plan = plan_product(&profile, MatmulAlgo::Tiled, &s, SplitK::Auto);
                let (n, slice) = (plan.split_k as usize, plan.k_slice as usize);
                assert!(
                    n == 1 || (n - 1) * slice < s.k && n * slice >= s.k,
                    "{s:?} {plan:?}"
                );
                assert!(
                    n == 1 || plan.partial_bytes(&s) <= profile.binding_limit,
                    "{plan:?}"
                );
                assert_eq!(plan.groups[2] as usize, n);
            }
        }
    }
}

#[test]
fn the_same_shape_on_the_same_profile_gets_the_same_plan() {
    for p in step_products(&book(), 1000, true) {
        let once = plan_product(&h200(), MatmulAlgo::Tiled, &p.shape, SplitK::Auto);
        let again = plan_product(&h200(), MatmulAlgo::Tiled, &p.shape, SplitK::Auto);
        assert_eq!(once, again);
    }
}

#[test]
fn a_submissions_batches_are_gathered_at_once_on_a_gpu_where_they_fit() {
    let regions = |count, rows| Regions { count, rows };
    // 16 batches of 100 rows (each region 128 rows: 256-byte aligned).
    assert_eq!(step_regions(&h200(), &book(), 100, 16), regions(16, 128));
    assert_eq!(step_regions(&h200(), &book(), 1000, 16), regions(16, 1024));
    assert_eq!(step_regions(&h200(), &book(), 100, 1), Regions::one(100));
    // 16 × 2048 rows of 789 floats are over 64 MiB.
    assert_eq!(step_regions(&h200(), &book(), 2048, 16), Regions::one(2048));
    // A CPU adapter's caches still hold a step's batch when it is read.
    let cpu = DeviceProfile::cpu(2);
    assert_eq!(step_regions(&cpu, &book(), 100, 16), Regions::one(100));
    let list = Arch::from_network(book().network()).unwrap();
    assert_eq!(step_regions(&h200(), &list, 100, 16), Regions::one(100));
    let off = DeviceProfile {
        gather_ahead: false,
        ..h200()
    };
    assert_eq!(
        step_regions(&off, &book(), 100, 16),
        Regions::one(100),
        "GPU_NET_GATHER_AHEAD=0"
    );
}

#[test]
fn the_softmax_spreads_many_rows_on_a_gpu_only() {
    let cpu = DeviceProfile::cpu(2);
    for rows in [1, 100, 8192, 65536, 1 << 20] {
        assert_eq!(plan_softmax(&cpu, rows), 1, "{rows} rows on a CPU");
    }
    assert_eq!(plan_softmax(&h200(), 100), 1);
    assert_eq!(plan_softmax(&h200(), 8192), 32);
    assert_eq!(plan_softmax(&h200(), 65536), 256);
    assert_eq!(plan_softmax(&h200(), 1 << 24), SOFTMAX_MAX_GROUPS);
}

#[test]
fn a_measured_slow_large_tile_is_never_chosen() {
    let mut slow = h200();
    slow.t128_speedup = 0.8;
    let square = MatmulShape::plain(4096, 4096, 4096, 4096, 4096, 4096);
    let big = Arch::mlp(784, &[4096], 10).unwrap();
    let shapes = step_products(&big, 65536, true)
        .into_iter()
        .map(|p| p.shape);
    for s in shapes.chain([square]) {
        let plan = plan_product(&slow, MatmulAlgo::Tiled, &s, SplitK::Auto);
        assert_eq!(plan.tile, Tile::T64, "{s:?}");
    }
    // Measured faster than the estimate, it is taken for the square product.
    let mut fast = h200();
    fast.t128_speedup = 2.0;
    assert_eq!(
        plan_product(&fast, MatmulAlgo::Tiled, &square, SplitK::Auto).tile,
        Tile::T128
    );
}

/// The vec4 kernel's workgroup (CPU adapters): lanes along M, as tall as
/// N needs among the heights it may have, wherever that computes fewer
/// columns than lanes along N (8 × 16 a workgroup) would, or N is under
/// 128; never more invocations than WebGPU's default limit.
/// DeepConvNet's first input gradients (148 columns) take 192, not 256.
#[test]
fn the_vec4_workgroup_covers_n_with_the_fewest_columns() {
    use gpu_net::gpu::plan::{VEC4_TN, VEC4_WG_X, VEC4_WG_YS, Vec4Shape};
    let along_n = |n: u32| n.next_multiple_of(VEC4_WG_X * VEC4_TN);
    for n in 1..=1100u32 {
        for m in [n, 78400] {
            let s = Vec4Shape::for_product(m as usize, n as usize);
            let what = format!("{m} × {n}: {s:?}");
            assert!(
                VEC4_WG_YS.contains(&s.wg_y) && VEC4_WG_X * s.wg_y <= 256,
                "{what}"
            );
            let columns = if s.x_along_m {
                s.wg_y * VEC4_TN
            } else {
                along_n(n)
            };
            let by_m = VEC4_WG_YS.iter().map(|y| y * VEC4_TN).find(|&c| c >= n);
            let best = by_m.map_or(along_n(n), |c| c.min(along_n(n)));
            assert_eq!(columns, best, "{what} covers {columns} columns");
        }
    }
    let shape = |m, n| {
        let s = Vec4Shape::for_product(m, n);
        (s.x_along_m, s.wg_y)
    };
    assert_eq!(shape(78400, 148), (true, 12));
    assert_eq!(shape(19600, 292), (true, 20));
    assert_eq!(
        shape(1000, 500),
        (false, 8),
        "lanes along N cover 500 in 512 too"
    );
    assert_eq!(shape(1000, 128), (false, 8));
    assert_eq!(shape(1000, 1028), (false, 8));
    assert_eq!(shape(100, 52), (true, 4), "the book's first product");
    assert_eq!(shape(100, 100), (true, 8));
    assert_eq!(shape(10, 100), (false, 8), "M shorter than N");
}
