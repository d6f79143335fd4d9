//! The allocator hooks: Python domains ([`pymem`] over [`arena`]) and native code ([`native`]).
//!
//! A hook is a few lines: forward to the real allocator, update the exact totals, and on a
//! sample (or always, in exact mode) call the recorder. The recorder runs inside [`guarded`]:
//! a panic there turns recording off and the allocation still completes, because a panic must
//! never unwind into C.

pub(crate) mod arena;
pub(crate) mod ballast;
pub(crate) mod exit;
pub(crate) mod native;
pub(crate) mod native_marks;
pub(crate) mod old_pools;
pub(crate) mod plain;
pub(crate) mod pymem;
pub(crate) mod sampled;
pub(crate) mod used_pools;

use std::sync::atomic::Ordering::Relaxed;

use memlens_format::Domain;

use crate::counters::{self, GIL, SHARED};
use crate::recorder::{self, Recorder};

/// Maps `len` bytes of zeroed, lazily backed memory; null on failure.
pub(crate) fn map_zeroed(len: usize) -> *mut std::ffi::c_void {
    // SAFETY: a fresh anonymous private mapping; touches no existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p
    }
}

/// Runs `f` (the recorder's slow path), catching any panic: tracking then stops and the
/// program goes on. The recorder keeps its own per-thread guard (one thread-local access per
/// event, merged with its buffers), so allocations it makes itself are counted but not
/// recorded again.
#[inline(always)]
pub(crate) fn guarded(f: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        crate::disable_after_panic();
    }
}

/// Starts or stops counting (and recording) in every hook. Python-domain hooks test no flag:
/// their range and table lookups are turned off instead, and their limit set so low that every
/// allocation takes the slow path, which does test it.
pub(crate) fn set_counting(on: bool) {
    use std::sync::atomic::Ordering::SeqCst;
    GIL.active.store(on, SeqCst);
    arena::set_counting(on);
    old_pools::set_counting(on);
    set_python_limit();
}

/// Records an allocation the hooks chose (a sample, or any in exact mode), remembering a
/// sampled block so that its free is recorded too.
#[inline]
pub(crate) fn record_alloc(rec: &'static Recorder, p: usize, size: u64, domain: Domain) {
    guarded(|| {
        if rec.on_alloc(p, size, domain) && !rec.exact {
            sampled::insert(p, sampled::entry(size, true, false));
        }
    });
}

/// Records the free of `p` if its allocation was recorded; the caller has seen
/// [`sampled::maybe`] say so.
#[cold]
#[inline(never)]
pub(crate) fn record_free(p: usize) {
    if let Some(rec) = recorder::current()
        && (rec.exact || sampled::remove(p).is_some_and(sampled::entry_recorded))
    {
        guarded(|| rec.on_free(p));
    }
}

/// Sets the Python hooks' `limit` from the next sample point (GIL held).
pub(crate) fn set_python_limit() {
    let limit = if GIL.active.load(Relaxed) {
        GIL.sample_at.load(Relaxed) - 1
    } else {
        i64::MIN
    };
    GIL.limit.store(limit, Relaxed);
}

/// The peak check of the Python hooks, made before a free is counted. Between two frees
/// Python live bytes only rise, so their highest points come just before frees: checking
/// there (and wherever the totals are read: native hooks, stop) finds every peak, and keeps
/// the check off the allocation path, which then compares once, against the sample point.
#[inline(always)]
pub(crate) fn before_python_free() {
    let live = counters::python_live();
    if live > SHARED.python_room.load(Relaxed) {
        python_peak(live);
    }
}

/// Slow path of [`before_python_free`] when Python live bytes (`live`) passed
/// `python_room`: a new peak, or a room left low by native frees (raised again here). Runs
/// with the GIL held.
#[cold]
#[inline(never)]
pub(crate) fn python_peak(live: i64) {
    let total = live + SHARED.native_live.load(Relaxed);
    if total > SHARED.peak.load(Relaxed) {
        // The room stays below `live`: the next check comes back here, as it must while the
        // total keeps rising.
        new_peak(total);
        return;
    }
    // Raise the room to `peak - native_live`. A native allocation lowers it after raising
    // `native_live`, so a failed exchange means a newer `native_live` to read again.
    let mut room = SHARED.python_room.load(Relaxed);
    loop {
        let fresh = SHARED.peak.load(Relaxed) - SHARED.native_live.load(Relaxed);
        match SHARED
            .python_room
            .compare_exchange_weak(room, fresh, Relaxed, Relaxed)
        {
            Ok(_) => return,
            Err(now) => room = now,
        }
    }
}

/// Lowers the room of Python live bytes after a native allocation raised native live bytes
/// to `native_live` (see `SharedCounters::python_room`).
#[inline(always)]
pub(crate) fn lower_python_room(native_live: i64) {
    let room = SHARED.peak.load(Relaxed) - native_live;
    if room < SHARED.python_room.load(Relaxed) {
        SHARED.python_room.fetch_min(room, Relaxed);
    }
}

/// Makes the peak include Python live bytes allocated since the last free (at stop: the
/// peak checks run before frees). GIL held.
pub(crate) fn settle_peak() {
    python_peak(counters::python_live());
}

/// Slow path for a new high-water mark: raise the peak and, past the next mark, record where
/// the peak is in the event stream.
#[cold]
pub(crate) fn new_peak(total: i64) {
    SHARED.peak.fetch_max(total, Relaxed);
    if total >= SHARED.next_peak_mark.load(Relaxed)
        && let Some(rec) = recorder::current()
    {
        // Marks are recorded at most every 1/256 of the peak (and at least 64 KiB apart in
        // sampling mode), so the peak set is at most 0.4% short of the true high-water mark.
        let step = if rec.exact {
            (total / 256).max(4096)
        } else {
            (total / 256).max(64 << 10)
        };
        SHARED.next_peak_mark.store(total + step, Relaxed);
        guarded(|| rec.on_peak());
    }
}
