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
    /// Live bytes in pymalloc blocks allocated while tracking (GIL-protected).
    pub live: AtomicI64,
    /// Bytes until the next sample point: an allocation that takes it to zero or below is
    /// recorded (GIL-protected). In exact mode it starts at 0 and is never refilled, so every
    /// allocation is recorded.
    pub countdown: AtomicI64,
    /// Sum of the sampling distances added to `countdown` (GIL-protected). The bytes
    /// allocated in the Python domain are `drawn - countdown`: the hot path keeps one running
    /// total for both the sampler and the totals.
    pub drawn: AtomicI64,
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
    /// How high Python live bytes (`GilCounters::live`) may go before the total could pass
    /// `peak`: at most `peak - native_live`, so the Python hooks check one value. Native
    /// allocations lower it; frees leave it low and the Python hooks' slow path raises it
    /// again (see `hooks::python_peak`).
    pub python_room: AtomicI64,
    /// The next total at which a peak marker is recorded.
    pub next_peak_mark: AtomicI64,
}

pub(crate) static GIL: GilCounters = GilCounters {
    live: AtomicI64::new(0),
    countdown: AtomicI64::new(0),
    drawn: AtomicI64::new(0),
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
    let live = GIL.live.load(Relaxed) + SHARED.native_live.load(Relaxed);
    let peak = SHARED.peak.load(Relaxed).max(live);
    Totals {
        live: live.max(0) as u64,
        peak: peak.max(0) as u64,
        allocated: (GIL.drawn.load(Relaxed) - GIL.countdown.load(Relaxed)).max(0) as u64
            + SHARED.native_allocated.load(Relaxed),
        allocations: GIL.allocations.load(Relaxed) + SHARED.native_allocations.load(Relaxed),
    }
}

pub(crate) fn reset() {
    GIL.live.store(0, Relaxed);
    GIL.countdown.store(0, Relaxed);
    GIL.drawn.store(0, Relaxed);
    GIL.allocations.store(0, Relaxed);
    SHARED.native_live.store(0, Relaxed);
    SHARED.native_allocated.store(0, Relaxed);
    SHARED.native_allocations.store(0, Relaxed);
    SHARED.peak.store(0, Relaxed);
    SHARED.python_room.store(0, Relaxed);
    SHARED.next_peak_mark.store(0, Relaxed);
}
