//! memlens-tracker (work in progress).
