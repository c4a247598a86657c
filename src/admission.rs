//! AdmissionReview <-> engine, through kube-core admission types (in progress).
