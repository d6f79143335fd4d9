//! End-to-end tests of `memlens monitor`.
