//! The `qmpcheck` binary: all logic lives in the library; see [`qmpcheck::cli`].

fn main() -> std::process::ExitCode {
    qmpcheck::cli::main()
}
