//! The `connscope` binary: everything lives in the library; see `connscope::cli`.

fn main() -> std::process::ExitCode {
    connscope::cli::main()
}
