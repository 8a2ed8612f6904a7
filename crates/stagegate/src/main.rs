/// mimalloc rather than the system's malloc: see the workspace's Cargo.toml for why, and
/// `.cargo/config.toml` for how it is built.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    stagegate::main()
}
