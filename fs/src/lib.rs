//! sealfs library
