//! Host-agnostic core shared by every plugin of the suite.
