//! memlens-analysis (work in progress).
