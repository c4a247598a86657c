//! The HTTPS admission server (in progress).
