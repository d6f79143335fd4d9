//! memlens-lint (work in progress).
