//! The `wagate` binary: everything lives in the library; see `wagate::cli`.

fn main() -> anyhow::Result<std::process::ExitCode> {
    wagate::cli::main()
}
