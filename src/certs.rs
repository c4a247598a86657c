//! Certificates: dev CA and serving certificates with rcgen (in progress).
