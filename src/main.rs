//! The `chopin` binary: parse flags, start the server, stop on SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;
use tokio::signal::unix::{signal, Signal, SignalKind};

use chopin::stats::Table;
use chopin::{Config, Server};

fn main() -> ExitCode {
    let config = match Config::try_parse() {
        Ok(config) => config,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            eprintln!("chopin: {}{}", one_line(&e.to_string()), source_of(&e));
            return ExitCode::from(2);
        }
    };
    // `vars_os`: `vars` would panic on a variable that is not UTF-8.
    let env_names = std::env::vars_os().map(|(name, _)| name.to_string_lossy().into_owned());
    for warning in config.warnings(env_names) {
        eprintln!("chopin: warning: {warning}");
    }
    // Signal handlers go in before the listeners open, so a stop that comes
    // right after start-up still exits cleanly.
    let signals = match StopSignals::install(config.stats) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("chopin: cannot listen for signals: {e}");
            return ExitCode::from(1);
        }
    };
    let server = match Server::start(&config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("chopin: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!("{}", server.startup_line());
    let stats = server.stats();
    signals.wait(server.stopping(), &stats);
    // The server says why, on stderr, when it stops itself.
    let failed = server.failure().is_some();
    server.shutdown();
    if config.stats {
        eprint!("{}", stats.render());
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Clap's message without its usage hint, on one line: its own line breaks
/// (before `[possible values: ...]`, before a tip such as a similar flag's
/// name) are joined, and a value holding a line break is shown escaped
/// instead of cutting the message short.
fn one_line(rendered: &str) -> String {
    let message = rendered.trim_start_matches("error: ");
    let end = ["\n\nUsage:", "\n\nFor more information"]
        .iter()
        .filter_map(|hint| message.find(hint))
        .min()
        .unwrap_or(message.len());
    message[..end]
        .trim_end()
        .replace("\n\n  tip: ", "; tip: ")
        .replace("\n  [", " [")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

/// For a bad value that came from the environment, not the command line,
/// which variable held it: clap names only the flag.
fn source_of(error: &clap::Error) -> String {
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return String::new();
    };
    let flag = arg.split_whitespace().next().unwrap_or_default();
    // `args_os`: an argument that is not UTF-8 is one of clap's errors.
    let on_command_line = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    match Config::env_of(flag) {
        Some(name) if !on_command_line && std::env::var_os(&name).is_some() => {
            format!(" (from the environment variable {name})")
        }
        _ => String::new(),
    }
}

/// SIGINT and SIGTERM, and with `--stats` SIGUSR1, watched on a small
/// runtime of its own so that no worker runtime carries the signal driver.
struct StopSignals {
    runtime: tokio::runtime::Runtime,
    terminate: Signal,
    interrupt: Signal,
    /// Prints the stats table; without `--stats` SIGUSR1 keeps its default
    /// action.
    print_stats: Option<Signal>,
}

impl StopSignals {
    fn install(stats: bool) -> std::io::Result<StopSignals> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let _guard = runtime.enter();
        let terminate = signal(SignalKind::terminate())?;
        let interrupt = signal(SignalKind::interrupt())?;
        let print_stats = if stats {
            Some(signal(SignalKind::user_defined1())?)
        } else {
            None
        };
        drop(_guard);
        Ok(StopSignals {
            runtime,
            terminate,
            interrupt,
            print_stats,
        })
    }

    /// Blocks until either stop signal arrives, or `stopping` resolves (the
    /// server stopped itself); prints `stats` on each SIGUSR1 meanwhile.
    fn wait(mut self, stopping: impl std::future::Future<Output = ()>, stats: &Table) {
        self.runtime.block_on(async {
            tokio::pin!(stopping);
            loop {
                let print_stats = async {
                    match &mut self.print_stats {
                        Some(signal) => signal.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = self.terminate.recv() => return,
                    _ = self.interrupt.recv() => return,
                    _ = &mut stopping => return,
                    Some(()) = print_stats => eprint!("{}", stats.render()),
                }
            }
        });
    }
}
