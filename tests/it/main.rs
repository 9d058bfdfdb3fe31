//! The integration tests, in one binary (each file in `tests/` would link the
//! whole crate again).

mod alert_trust;
mod alertmanager;
mod bad_input;
mod builds;
mod check_cmd;
mod check_places;
mod concurrency;
mod config_names;
mod console_flow;
mod crash;
mod deadlines;
mod deploys;
mod discord;
mod discord_fixtures;
mod disk_full;
mod fake_discord;
mod fake_jenkins;
mod gates;
mod harness;
mod health;
mod hostile_text;
mod http_errors;
mod http_intake;
mod jenkins;
mod jenkins_runs;
mod job_env;
mod kit;
mod props;
mod props_input;
mod restart;
mod robustness;
mod store_safety;
mod support;
mod ticket_api;
