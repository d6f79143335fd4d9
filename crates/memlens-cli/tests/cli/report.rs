//! End-to-end tests of `memlens report`.
