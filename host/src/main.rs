//! The `kubewasm` binary: parse flags, set up logging, run one command.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use kubewasm::cmd::check::{self as offline, OfflineError};
use kubewasm::cmd::cli::{Cli, Command, LogFormat};
use kubewasm::cmd::cli::{RecordArgs, ReleaseArgs, ReplayArgs, RunArgs};
use kubewasm::error_chain;
use kubewasm::ops::metrics::Metrics;
use kubewasm::runtime::Runtime;

fn tokio_runtime() -> Result<tokio::runtime::Runtime, OfflineError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(OfflineError::AsyncRuntime)
}

/// `kubewasm run`: exit 2 for bad flags, 1 if the host cannot start.
fn run(args: &RunArgs) -> ExitCode {
    if let Err(message) = args.validate() {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let started = tokio_runtime().and_then(|rt| {
        // The host's one set of metrics, shared by every part that records.
        let metrics = Arc::new(Metrics::new());
        let runtime = Runtime::with_metrics(args.runtime.runtime_config(), metrics.clone())?;
        let host = kubewasm::cmd::run::run(args.run_options(), runtime, metrics);
        rt.block_on(host)
            .map_err(|e| OfflineError::Run(Box::new(e)))
    });
    match started {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

/// `kubewasm release-finalizers`: exit 2 for bad flags or kinds, 1 if
/// anything that carried the finalizer was not released.
fn release(args: &ReleaseArgs) -> ExitCode {
    let options = match args.options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let report = match tokio_runtime() {
        Ok(rt) => rt.block_on(kubewasm::cmd::release::release(&options)),
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            return ExitCode::from(e.exit_code());
        }
    };
    match report {
        Ok(report) => {
            print!("{}", report.render());
            match report.is_complete() {
                true => ExitCode::SUCCESS,
                false => ExitCode::from(1),
            }
        }
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

/// `kubewasm record`: exit 2 for bad flags or kinds, 1 if the recording
/// could not be made; notes and the summary go to stderr.
fn record(args: &RecordArgs) -> ExitCode {
    if let Err(message) = args.validate() {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let rt = match tokio_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            return ExitCode::from(e.exit_code());
        }
    };
    match rt.block_on(kubewasm::cmd::record::command(args, &mut |note| {
        eprintln!("{note}")
    })) {
        Ok(summary) => {
            eprintln!("{}", summary.render(&args.output));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

/// `kubewasm replay`: the exit code of [`kubewasm::cmd::replay::command`],
/// or the error's.
fn replay(args: &ReplayArgs) -> ExitCode {
    let result = kubewasm::cmd::replay::command(
        args,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

/// Installs the log subscriber; a filter that does not parse is refused,
/// naming it, rather than silently dropped.
fn init_logging(cli: &Cli) -> Result<(), String> {
    // Cranelift and wasmtime log at debug while compiling; keep them quiet
    // unless the filter names them.
    let mut filter = cli.log.clone();
    for noisy in ["cranelift", "wasmtime"] {
        if !filter.contains(noisy) {
            filter.push_str(&format!(",{noisy}=warn"));
        }
    }
    // The platform verifier logs every refused certificate at error; the
    // command's own error already says so, naming the reference.
    if !filter.contains("rustls_platform_verifier") {
        filter.push_str(",rustls_platform_verifier=off");
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .map_err(|e| format!("invalid --log filter {:?}: {e}", cli.log))?;
    // Colours only for a terminal: a log file or collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// `kubewasm shadow`: exit 2 for a bad name, 1 if the host cannot be
/// asked or the files cannot be renamed.
fn shadow(args: &kubewasm::cmd::cli::ShadowArgs) -> ExitCode {
    use kubewasm::cmd::cli::ShadowAction;
    let done = match &args.action {
        None => kubewasm::cmd::shadow::report(&args.admin, args.output),
        Some(ShadowAction::Promote { name, plugins }) => {
            kubewasm::cmd::shadow::promote(name, plugins)
        }
    };
    match done {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(message) = init_logging(&cli) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let result = match &cli.command {
        Command::Check(args) => offline::check(args),
        Command::Eval(args) => offline::eval(args),
        Command::Run(args) => return run(args),
        Command::Shadow(args) => return shadow(args),
        Command::ReleaseFinalizers(args) => return release(args),
        Command::Record(args) => return record(args),
        Command::Replay(args) => return replay(args),
        Command::Rbac(args) => offline::rbac(args),
        Command::New(args) => kubewasm::cmd::new::new(args),
        Command::Wit(args) => kubewasm::cmd::componentize::wit(args),
        Command::Componentize(args) => kubewasm::cmd::componentize::run(args),
        Command::Crds => Ok(kubewasm::resources::crds_yaml()),
        Command::Push(args) => kubewasm::cmd::oci::push(args),
        Command::Pull(args) => kubewasm::cmd::oci::pull(args),
        Command::Test(args) => {
            kubewasm::cmd::test::test(args, &mut std::io::stdout().lock()).map(|()| String::new())
        }
        Command::Discover(args) => args
            .rate_limit()
            .map_or(Ok(()), |limit| limit.validate())
            .map_err(OfflineError::Usage)
            .and_then(|()| tokio_runtime())
            .and_then(|rt| {
                rt.block_on(kubewasm::cmd::discover::table(args.rate_limit()))
                    .map_err(|e| OfflineError::Discover(Box::new(e)))
            }),
    };
    match result {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}
