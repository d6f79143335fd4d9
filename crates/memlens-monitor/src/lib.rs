//! memlens-monitor (work in progress).
