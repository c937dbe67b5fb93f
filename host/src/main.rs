//! The `kubewasm` binary: parse flags, set up logging, run one command.

use std::process::ExitCode;

use clap::Parser;
use kubewasm::cli::{Cli, Command, LogFormat};
use kubewasm::offline;

fn init_logging(cli: &Cli) {
    // Cranelift and wasmtime log at debug while compiling; keep them quiet
    // unless the filter names them.
    let mut filter = cli.log.clone();
    for noisy in ["cranelift", "wasmtime"] {
        if !filter.contains(noisy) {
            filter.push_str(&format!(",{noisy}=warn"));
        }
    }
    let filter = tracing_subscriber::EnvFilter::new(filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let result = match &cli.command {
        Command::Check(args) => offline::check(args),
        Command::Eval(args) => offline::eval(args),
    };
    match result {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
