//! Tracing subscriber and metrics registry (in progress).
