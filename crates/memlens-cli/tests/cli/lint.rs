//! End-to-end tests of `memlens lint`.
