//! Manifest reading and audit reports (in progress).
