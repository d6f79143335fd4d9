//! memlens-format (work in progress).
