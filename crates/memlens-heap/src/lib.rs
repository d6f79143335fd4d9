//! memlens-heap (work in progress).
