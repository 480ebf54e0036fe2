//! header-injection: wiring only.
