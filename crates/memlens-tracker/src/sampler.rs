//! Poisson sampling by bytes: the distance between sample points is exponential with mean
//! `rate`, so an allocation of `s` bytes is sampled with probability `1 - e^(-s/rate)` and the
//! reader weighs it by the inverse. Each stream (the GIL-held Python domain, each native
//! thread) keeps its own countdown and generator.

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// xorshift64* step: fast, and good enough for sample spacing.
fn next_random(state: u64) -> (u64, u64) {
    let mut x = state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    (x, x.wrapping_mul(0x2545_F491_4F6C_DD1D))
}

/// An exponential draw with mean `rate` bytes, from the generator in `state`.
pub(crate) fn draw(state: &mut u64, rate: u64) -> i64 {
    if *state == 0 {
        *state = seed();
    }
    let (s, r) = next_random(*state);
    *state = s;
    // Uniform in (0, 1]: never zero, so ln is finite.
    let u = ((r >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let d = -u.ln() * rate as f64;
    d.clamp(1.0, 1e15) as i64
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x1234_5678);
    let local = 0u8;
    (t ^ (&local as *const u8 as u64).rotate_left(32)) | 1
}

/// Generator state of the GIL-held stream.
pub(crate) static GIL_RNG: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Bytes until the next native sample on this thread; below zero means "draw first".
    pub(crate) static NATIVE_COUNTDOWN: Cell<i64> = const { Cell::new(i64::MIN) };
    pub(crate) static NATIVE_RNG: Cell<u64> = const { Cell::new(0) };
}

/// Moves the GIL stream's next sample point (`sample_at`, in bytes allocated) past
/// `allocated`, after the allocation that took the total to `allocated` reached it (a sample
/// point fell inside that allocation). Only called with the GIL held.
#[cold]
pub(crate) fn gil_advance(sample_at: &AtomicI64, allocated: i64, rate: u64) {
    let mut state = GIL_RNG.load(Relaxed);
    let mut at = sample_at.load(Relaxed);
    while at <= allocated {
        at += draw(&mut state, rate);
    }
    GIL_RNG.store(state, Relaxed);
    sample_at.store(at, Relaxed);
}

/// Counts `size` more bytes in `allocated` as the hooks do; true when a sample point fell
/// inside them.
#[cfg(test)]
pub(crate) fn gil_should_sample(
    sample_at: &AtomicI64,
    allocated: &AtomicI64,
    size: u64,
    rate: u64,
) -> bool {
    let total = allocated.load(Relaxed) + size as i64;
    allocated.store(total, Relaxed);
    if total < sample_at.load(Relaxed) {
        return false;
    }
    gil_advance(sample_at, total, rate);
    true
}

/// Counts `size` bytes against this thread's native stream.
#[inline]
pub(crate) fn native_should_sample(size: u64, rate: u64) -> bool {
    NATIVE_COUNTDOWN
        .try_with(|c| {
            let cur = c.get();
            if cur == i64::MIN {
                // First allocation on this thread: start the stream at a random point.
                let mut st = NATIVE_RNG.with(Cell::get);
                let first = draw(&mut st, rate);
                NATIVE_RNG.with(|r| r.set(st));
                c.set(first);
                return native_should_sample(size, rate);
            }
            let mut left = cur - size as i64;
            if left > 0 {
                c.set(left);
                return false;
            }
            let mut st = NATIVE_RNG.with(Cell::get);
            while left <= 0 {
                left += draw(&mut st, rate);
            }
            NATIVE_RNG.with(|r| r.set(st));
            c.set(left);
            true
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_have_the_requested_mean() {
        let mut state = 42;
        let n = 200_000;
        let total: f64 = (0..n).map(|_| draw(&mut state, 1000) as f64).sum();
        let mean = total / n as f64;
        assert!((mean - 1000.0).abs() < 15.0, "mean {mean}");
    }

    #[test]
    fn sampled_weight_estimates_are_unbiased() {
        // 1M allocations of 100 bytes at rate 10_000: the weighted estimate is within 2%.
        GIL_RNG.store(7, Relaxed);
        let (size, rate) = (100u64, 10_000u64);
        let (sample_at, allocated) = (AtomicI64::new(0), AtomicI64::new(0));
        gil_advance(&sample_at, 0, rate);
        let p = 1.0 - (-(size as f64) / rate as f64).exp();
        let n = 1_000_000u64;
        let sampled = (0..n)
            .filter(|_| gil_should_sample(&sample_at, &allocated, size, rate))
            .count();
        assert_eq!(allocated.load(Relaxed) as u64, n * size);
        let estimate = sampled as f64 * size as f64 / p;
        let truth = 100e6;
        assert!(
            (estimate - truth).abs() / truth < 0.02,
            "estimate {estimate}"
        );
    }
}
