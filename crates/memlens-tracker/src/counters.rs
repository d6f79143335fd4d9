//! Exact running totals of all tracked memory, kept on every allocation in both modes.
//!
//! Python-domain hooks run with the GIL held, so their fields are only ever written by one
//! thread at a time: they use relaxed loads and stores (plain `mov`s, no lock prefix). Native
//! hooks run on any thread and use atomic read-modify-writes. Readers (the writer thread,
//! `memlens.current()`) see values at most a few instructions stale.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

/// Cache-line aligned so the hot fields share one line and nothing else does.
#[repr(align(64))]
pub(crate) struct GilCounters {
    /// Bytes allocated in pymalloc blocks while tracking (GIL-protected). Python live bytes
    /// are `allocated - freed`: the allocation hook adds to one total and the free hook to
    /// the other, and neither reads what the other writes.
    pub allocated: AtomicI64,
    /// Bytes of counted pymalloc blocks freed (GIL-protected).
    pub freed: AtomicI64,
    /// An allocation that takes `allocated` above this takes the hooks' slow path: the next
    /// sample point less one, or `i64::MIN` while the hooks do not count (GIL-protected). In
    /// exact mode the sample point stays at 0, so every allocation is recorded. Peaks are
    /// not checked here but on frees (see `hooks::before_python_free`).
    pub limit: AtomicI64,
    /// `allocated` at the next sample point: the allocation that takes `allocated` to it or
    /// past it is sampled (GIL-protected).
    pub sample_at: AtomicI64,
    /// Allocations in the Python domain (GIL-protected).
    pub allocations: AtomicU64,
    /// Hooks count and sample only while this is set.
    pub active: AtomicBool,
}

#[repr(align(64))]
pub(crate) struct SharedCounters {
    /// Live bytes in native blocks and maps (any thread).
    pub native_live: AtomicI64,
    /// Bytes allocated natively.
    pub native_allocated: AtomicU64,
    /// Native allocations.
    pub native_allocations: AtomicU64,
    /// Highest total live bytes seen.
    pub peak: AtomicI64,
    /// How high Python live bytes may go before the total could pass `peak`: at most
    /// `peak - native_live`, so the Python hooks check one value. Native allocations lower
    /// it; frees leave it low and the Python hooks' slow path raises it again (see
    /// `hooks::python_peak`).
    pub python_room: AtomicI64,
    /// The next total at which a peak marker is recorded.
    pub next_peak_mark: AtomicI64,
}

pub(crate) static GIL: GilCounters = GilCounters {
    allocated: AtomicI64::new(0),
    freed: AtomicI64::new(0),
    limit: AtomicI64::new(i64::MIN),
    sample_at: AtomicI64::new(0),
    allocations: AtomicU64::new(0),
    active: AtomicBool::new(false),
};

pub(crate) static SHARED: SharedCounters = SharedCounters {
    native_live: AtomicI64::new(0),
    native_allocated: AtomicU64::new(0),
    native_allocations: AtomicU64::new(0),
    peak: AtomicI64::new(0),
    python_room: AtomicI64::new(0),
    next_peak_mark: AtomicI64::new(i64::MAX),
};

/// Python live bytes now (exact with the GIL held; a few blocks stale on other threads).
#[inline(always)]
pub(crate) fn python_live() -> i64 {
    GIL.allocated.load(Relaxed) - GIL.freed.load(Relaxed)
}

/// A consistent-enough view of the totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Bytes live now.
    pub live: u64,
    /// Highest live bytes since tracking started.
    pub peak: u64,
    /// Bytes allocated since tracking started.
    pub allocated: u64,
    /// Allocations since tracking started.
    pub allocations: u64,
}

pub(crate) fn totals() -> Totals {
    let live = python_live() + SHARED.native_live.load(Relaxed);
    let peak = SHARED.peak.load(Relaxed).max(live);
    Totals {
        live: live.max(0) as u64,
        peak: peak.max(0) as u64,
        allocated: GIL.allocated.load(Relaxed).max(0) as u64
            + SHARED.native_allocated.load(Relaxed),
        allocations: GIL.allocations.load(Relaxed) + SHARED.native_allocations.load(Relaxed),
    }
}

pub(crate) fn reset() {
    GIL.allocated.store(0, Relaxed);
    GIL.freed.store(0, Relaxed);
    GIL.limit.store(i64::MIN, Relaxed);
    GIL.sample_at.store(0, Relaxed);
    GIL.allocations.store(0, Relaxed);
    SHARED.native_live.store(0, Relaxed);
    SHARED.native_allocated.store(0, Relaxed);
    SHARED.native_allocations.store(0, Relaxed);
    SHARED.peak.store(0, Relaxed);
    SHARED.python_room.store(0, Relaxed);
    SHARED.next_peak_mark.store(0, Relaxed);
}
