//! dreamops
