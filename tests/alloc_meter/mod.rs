//! A global allocator that counts, per thread, the bytes live and their
//! peak, so a test can measure what one call allocates while the other
//! tests of its binary run beside it on their own threads; and the same
//! over all threads, for code that spawns its own (valid only in a binary
//! whose tests run one at a time).
//!
//! Only a test binary that declares `mod alloc_meter;` gets it.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

struct Meter;

thread_local! {
    // `const` initialisers: no allocation on first use, which the
    // allocator itself could not survive.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

static ALL_LIVE: AtomicIsize = AtomicIsize::new(0);
static ALL_PEAK: AtomicIsize = AtomicIsize::new(0);

fn add(delta: isize) {
    let now = ALL_LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
    ALL_PEAK.fetch_max(now, Ordering::Relaxed);
    // `try_with`: during thread teardown the slots may be gone.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as the moment both exist, as a copying realloc has them.
            add(new_size as isize);
            add(-(layout.size() as isize));
        }
        p
    }
}

#[global_allocator]
static METER: Meter = Meter;

/// Runs `f` on this thread and returns its result and the most bytes it had
/// allocated at once beyond what was live when it started.
pub fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, (peak - base).max(0) as usize)
}

/// [`peak_of`] over every thread's allocations, those `f` spawns included.
pub fn global_peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = ALL_LIVE.load(Ordering::Relaxed);
    ALL_PEAK.store(base, Ordering::Relaxed);
    let out = f();
    let peak = ALL_PEAK.load(Ordering::Relaxed);
    (out, (peak - base).max(0) as usize)
}
