//! kubewasm host.
