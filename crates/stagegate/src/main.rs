fn main() -> std::process::ExitCode {
    stagegate::main()
}
