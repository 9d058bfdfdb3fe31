//! The integration tests, in one binary (each file in `tests/` would link the
//! whole crate again).

mod alertmanager;
mod bad_input;
mod builds;
mod check_cmd;
mod concurrency;
mod console_flow;
mod crash;
mod deadlines;
mod deploys;
mod discord;
mod discord_fixtures;
mod fake_discord;
mod fake_jenkins;
mod harness;
mod http_intake;
mod jenkins;
mod jenkins_runs;
mod props;
mod props_input;
mod restart;
mod robustness;
mod store_safety;
mod support;
