//! One integration test binary (faster to build than one per file); a module per feature.

mod batch;
mod common;
mod contain;
mod fetch;
mod gnu_signals;
mod gnu_timeout;
mod man;
mod monitoring;
mod nginx;
mod peer_timeout_suites;
mod proxy;
mod proxy_servers;
mod recipes;
mod report;
mod scripts_server;
mod server;
mod supervise;
