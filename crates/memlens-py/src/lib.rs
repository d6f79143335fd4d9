//! memlens._native (work in progress).
