//! The HTTP backends against a real loopback HTTP server (see `support`): one test binary.

mod anthropic;
mod failures;
mod openai;
mod support;
