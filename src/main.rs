//! The `kvmdbg` binary: logging setup and the command line (see `cli`).

mod cli;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    // Before any thread starts: the signal mask is inherited.
    if let Err(e) = kvmdbg::signals::install() {
        eprintln!("kvmdbg: warning: cannot handle SIGTERM/SIGINT/SIGHUP: {e}");
    }
    std::process::exit(cli::main_with_args(std::env::args_os()));
}
