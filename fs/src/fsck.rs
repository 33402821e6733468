//! fsck (placeholder)
