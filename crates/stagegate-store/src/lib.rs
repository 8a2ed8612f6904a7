//! stagegate's durable state.
