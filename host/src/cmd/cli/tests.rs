//! Flag parsing and validation of the `kubewasm` command line.

use super::*;

#[test]
fn cli_is_well_formed() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}

#[test]
fn bad_limits_are_refused_by_name() {
    let err =
        Cli::try_parse_from(["kubewasm", "check", "x.wasm", "--call-timeout-ms", "0"]).unwrap_err();
    assert!(err.to_string().contains("--call-timeout-ms"));
}

#[test]
fn run_flags_are_validated_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().to_str().unwrap();
    let parse = |extra: &[&str]| {
        let mut args = vec!["kubewasm", "run", "--plugins", plugins];
        args.extend_from_slice(extra);
        Cli::try_parse_from(args)
    };
    let Command::Run(args) = parse(&["--namespace", "Bad_NS"]).unwrap().command else {
        panic!("parsed as another command")
    };
    assert_eq!(
        args.validate().unwrap_err(),
        "--namespace \"Bad_NS\": not a valid namespace name"
    );
    assert!(
        parse(&["--concurrency", "0"])
            .unwrap_err()
            .to_string()
            .contains("--concurrency")
    );
    let Command::Run(args) = Cli::try_parse_from(["kubewasm", "run", "--plugins", "/nonexistent"])
        .unwrap()
        .command
    else {
        panic!("parsed as another command")
    };
    assert_eq!(
        args.validate().unwrap_err(),
        "--plugins /nonexistent: not a directory"
    );
    for (flag, value) in [
        ("--kube-qps", "0"),
        ("--kube-qps", "inf"),
        ("--kube-burst", "0"),
    ] {
        let with_qps = ["--kube-qps", "5", flag, value];
        let flags = if flag == "--kube-burst" {
            &with_qps[..]
        } else {
            &with_qps[2..]
        };
        let Command::Run(args) = parse(flags).unwrap().command else {
            panic!("parsed as another command")
        };
        let error = args.validate().unwrap_err();
        assert!(error.starts_with(&format!("{flag} {value}")), "{error}");
    }
    assert!(
        parse(&["--kube-qps", "5", "--kube-burst", "many"])
            .unwrap_err()
            .to_string()
            .contains("--kube-burst")
    );
    // A burst is a size of the bucket --kube-qps fills: alone it means nothing.
    assert!(
        parse(&["--kube-burst", "10"])
            .unwrap_err()
            .to_string()
            .contains("--kube-qps")
    );
}

#[test]
fn timeouts_and_the_renew_deadline_are_validated_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["kubewasm", "run", "--plugins", plugins];
        args.extend_from_slice(extra);
        match Cli::try_parse_from(args).map(|cli| cli.command) {
            Ok(Command::Run(args)) => Ok(args),
            Ok(_) => panic!("parsed as another command"),
            Err(e) => Err(e.to_string()),
        }
    };
    let args = run(&[]).unwrap();
    assert_eq!(args.kube.kube_connect_timeout, Duration::from_secs(5));
    assert_eq!(args.kube.kube_request_timeout, Duration::from_secs(30));
    let args = run(&["--kube-request-timeout", "1500ms"]).unwrap();
    assert_eq!(
        args.run_options().client.request_timeout,
        Duration::from_millis(1500)
    );
    let error = run(&["--kube-connect-timeout", "5"]).unwrap_err();
    assert!(
        error.contains("--kube-connect-timeout") && error.contains("no unit"),
        "{error}"
    );
    let error = run(&["--kube-request-timeout", "0s"])
        .unwrap()
        .validate()
        .unwrap_err();
    assert!(error.starts_with("--kube-request-timeout 0ns"), "{error}");

    let leader = ["--leader-elect", "--leader-elect-lease-seconds", "15"];
    let with = |extra: &[&str]| {
        let mut args = leader.to_vec();
        args.extend_from_slice(extra);
        run(&args).unwrap()
    };
    let options = with(&[]).run_options().election.unwrap();
    assert_eq!(options.renew_deadline, Duration::from_millis(12_500));
    let args = with(&["--leader-elect-renew-deadline-seconds", "10"]);
    let error = args.validate().unwrap_err();
    assert!(
        error.starts_with("--leader-elect-renew-deadline-seconds 10"),
        "{error}"
    );
    let args = with(&["--leader-elect-renew-deadline-seconds", "12"]);
    assert!(args.validate().is_ok());
    assert_eq!(
        args.run_options().election.unwrap().renew_deadline,
        Duration::from_secs(12)
    );
}

#[test]
fn limits_become_runtime_config() {
    let cli = Cli::try_parse_from([
        "kubewasm",
        "check",
        "x.wasm",
        "--max-memory-mib",
        "16",
        "--no-compile-cache",
    ])
    .unwrap();
    let Command::Check(args) = cli.command else {
        panic!("parsed as another command")
    };
    let config = args.runtime.runtime_config();
    assert_eq!(config.max_memory_bytes, 16 << 20);
    assert_eq!(config.cache_dir, None);
}

#[test]
fn large_plugins_compile_baseline_first_unless_told_never() {
    let run = |extra: &[&str]| {
        let mut args = vec!["kubewasm", "run", "--plugins", "."];
        args.extend_from_slice(extra);
        let Command::Run(args) = Cli::try_parse_from(args).unwrap().command else {
            panic!("parsed as another command")
        };
        args.runtime.runtime_config().baseline_min_bytes
    };
    let auto = cfg!(target_arch = "x86_64").then_some(super::BASELINE_MIN_BYTES);
    assert_eq!(run(&[]), auto);
    assert_eq!(run(&["--baseline-compile", "never"]), None);
    assert!(
        Cli::try_parse_from([
            "kubewasm",
            "run",
            "--plugins",
            ".",
            "--baseline-compile",
            "x"
        ])
        .is_err()
    );
}

#[test]
fn no_client_rate_limit_unless_asked_for() {
    let parse = |extra: &[&str]| {
        let mut args = vec!["kubewasm", "run", "--plugins", "."];
        args.extend_from_slice(extra);
        Cli::try_parse_from(args)
    };
    let Command::Run(args) = parse(&[]).unwrap().command else {
        panic!("parsed as another command")
    };
    assert_eq!(args.kube.rate_limit(), None);
    let Command::Run(args) = parse(&["--kube-qps", "50"]).unwrap().command else {
        panic!("parsed as another command")
    };
    let limit = args.kube.rate_limit().unwrap();
    assert_eq!((limit.qps, limit.burst), (50.0, 75));
}
