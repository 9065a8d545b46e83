//! The limits' arithmetic: sizes as the variables take them, counts as the
//! flags take them, and how many steps a submission records.

use gpu_net::core::limits::{
    MAX_INDICES_PER_SUBMIT, count, parse_size, steps_per_call, submit_slots,
};

#[test]
fn sizes_take_bytes_and_binary_suffixes() {
    for (text, bytes) in [
        ("4096", 4096),
        ("512K", 512 << 10),
        ("64m", 64 << 20),
        ("4G", 4 << 30),
        ("4GiB", 4 << 30),
        ("2gb", 2 << 30),
        ("1T", 1 << 40),
        (" 7 ", 7),
    ] {
        assert_eq!(parse_size(text), Some(bytes), "{text}");
    }
    for bad in ["", "G", "lots", "-1", "1.5G", "4X", "99999999999T"] {
        assert_eq!(parse_size(bad), None, "{bad:?} parsed");
    }
}

#[test]
fn counts_name_the_bound_they_break() {
    assert_eq!(count("7", 1, 10), Ok(7));
    assert_eq!(count("10", 1, 10), Ok(10));
    assert_eq!(count("1", 1, 10), Ok(1));
    assert!(count("11", 1, 10).unwrap_err().contains("limit of 10"));
    assert!(count("0", 1, 10).unwrap_err().contains("least value, 1"));
    // Past u64: still a count over the limit, not a parse failure.
    assert!(
        count("100000000000000000000000", 1, 10)
            .unwrap_err()
            .contains("limit of 10")
    );
    assert!(count("ten", 1, 10).unwrap_err().contains("\"ten\""));
    assert!(count("-3", 1, 10).is_err());
}

#[test]
fn a_submission_records_no_more_steps_than_the_run_takes_or_indices_allow() {
    // As asked, when the run is long and the batch small.
    assert_eq!(submit_slots(100, 8, 10_000), 8);
    // Never more than the iterations left.
    assert_eq!(submit_slots(100, 1024, 1), 1);
    assert_eq!(submit_slots(100, 1024, 37), 37);
    // Never more than MAX_INDICES_PER_SUBMIT indices, never fewer than one step.
    assert_eq!(
        submit_slots(1 << 16, 1024, 10_000),
        MAX_INDICES_PER_SUBMIT >> 16
    );
    assert_eq!(submit_slots(1 << 20, 1024, 10_000), 4);
    assert_eq!(submit_slots(MAX_INDICES_PER_SUBMIT * 2, 8, 10), 1);
    // The host draws a few submissions at a time, within the same bound.
    assert_eq!(steps_per_call(100, 8), 32);
    assert_eq!(steps_per_call(1 << 20, 4), 4);
    assert_eq!(steps_per_call(MAX_INDICES_PER_SUBMIT * 2, 1), 1);
    for batch in [1, 100, 4097, 1 << 20] {
        for k in [1, 8, 1024] {
            let slots = submit_slots(batch, k, usize::MAX);
            let call = steps_per_call(batch, slots);
            assert!(slots <= k && call >= slots, "{batch} {k}");
            assert!(slots == 1 || slots * batch <= MAX_INDICES_PER_SUBMIT);
            assert!(call == 1 || call * batch <= MAX_INDICES_PER_SUBMIT);
        }
    }
}
