//! End-to-end tests of `memlens heap`.
