//! Command-line flags and their environment fallbacks.
//!
//! Every flag can also be set through an environment variable so that the TFB
//! container (which passes no arguments) and the presets in `config/` can pick
//! a flavour without a different command line.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// How worker threads, runtimes and listeners are laid out.
///
/// Both flavours run the same connection loop (`connection.rs`); they differ
/// only in how threads, runtimes and listeners are set up (`server.rs`).
///
/// The aliases are every other spelling accepted, in any case; the error for
/// an unknown one lists them, and so does the README's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Flavour {
    /// One pinned OS thread per core, each with its own `current_thread`
    /// runtime and its own `SO_REUSEPORT` listener: cores share nothing.
    #[value(
        name = "per-core",
        alias = "per_core",
        alias = "percore",
        alias = "current_thread",
        alias = "current-thread"
    )]
    PerCore,
    /// One tokio work-stealing runtime whose worker threads are pinned.
    #[value(
        name = "multithread",
        alias = "multi_thread",
        alias = "multi-thread",
        alias = "work-stealing"
    )]
    Multithread,
}

impl Flavour {
    pub fn name(self) -> &'static str {
        match self {
            Flavour::PerCore => "per-core",
            Flavour::Multithread => "multithread",
        }
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the multithread flavour accepts connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Listeners {
    /// One `SO_REUSEPORT` listener and one accept task per worker thread.
    #[value(name = "per-worker", alias = "per_worker")]
    PerWorker,
    /// A single listener and a single accept task for the whole runtime.
    #[value(name = "shared", alias = "single")]
    Shared,
}

impl fmt::Display for Listeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Listeners::PerWorker => "per-worker",
            Listeners::Shared => "shared",
        })
    }
}

/// Looks `s` up among `E`'s names and aliases, in any case and ignoring
/// surrounding whitespace (a value from an environment file may carry some).
/// clap's own parser for a `ValueEnum` would do the lookup too, but its error
/// names only the primary spellings over several lines; this one keeps the
/// one-line message that says what was expected.
fn parse_choice<E: ValueEnum>(s: &str, expected: impl FnOnce() -> String) -> Result<E, String> {
    const IGNORE_CASE: bool = true;
    E::from_str(s.trim(), IGNORE_CASE).map_err(|_| expected())
}

/// Each of `E`'s values as `name (or alias, alias)`, in declaration order.
fn spellings<E: ValueEnum>() -> Vec<String> {
    E::value_variants()
        .iter()
        .filter_map(E::to_possible_value)
        .map(|value| {
            let aliases: Vec<&str> = value.get_name_and_aliases().skip(1).collect();
            if aliases.is_empty() {
                value.get_name().to_owned()
            } else {
                format!("{} (or {})", value.get_name(), aliases.join(", "))
            }
        })
        .collect()
}

fn parse_flavour(s: &str) -> Result<Flavour, String> {
    parse_choice(s, || {
        format!(
            "unknown runtime '{s}'; expected {}",
            spellings::<Flavour>().join(", ")
        )
    })
}

fn parse_listeners(s: &str) -> Result<Listeners, String> {
    parse_choice(s, || {
        let names: Vec<String> = Listeners::value_variants()
            .iter()
            .filter_map(Listeners::to_possible_value)
            .map(|value| value.get_name().to_owned())
            .collect();
        format!(
            "unknown listener layout '{s}'; expected {}",
            names.join(" or ")
        )
    })
}

/// A pipelined HTTP/1.1 server for the TechEmpower /plaintext and /json tests.
#[derive(Clone, Debug, Parser)]
#[command(name = "chopin", version, about, long_about = None)]
pub struct Config {
    /// TCP port to listen on; 0 picks an ephemeral port, shared by every listener.
    #[arg(
        long,
        env = "PORT",
        default_value_t = 8080,
        allow_negative_numbers = true
    )]
    pub port: u16,

    /// Address to bind.
    #[arg(long, env = "CHOPIN_BIND", default_value = "0.0.0.0")]
    pub bind: IpAddr,

    /// Runtime flavour: per-core (one pinned current_thread runtime per core)
    /// or multithread (one work-stealing runtime).
    #[arg(long, env = "CHOPIN_RUNTIME", default_value = "per-core", value_parser = parse_flavour)]
    pub runtime: Flavour,

    /// Worker threads [default: the cores this process may run on].
    #[arg(long, env = "CHOPIN_WORKERS", allow_negative_numbers = true,
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub workers: Option<u16>,

    /// Pin each worker thread to its own core (fails soft with one warning).
    #[arg(long, env = "CHOPIN_PIN", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub pin: bool,

    /// Listen backlog per listener (the kernel clamps it to net.core.somaxconn).
    #[arg(long, env = "CHOPIN_BACKLOG", default_value_t = 65535, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub backlog: i32,

    /// Value of the `Server` response header.
    #[arg(long, env = "CHOPIN_SERVER_NAME", default_value = "chopin", value_parser = parse_server_name)]
    pub server_name: String,

    /// Multithread flavour only: one SO_REUSEPORT listener per worker thread,
    /// or one shared listener.
    #[arg(long, env = "CHOPIN_LISTENERS", default_value = "per-worker", value_parser = parse_listeners)]
    pub listeners: Listeners,

    /// Seconds a client may take to send a complete request header before the
    /// connection is closed.
    #[arg(long, env = "CHOPIN_HEADER_TIMEOUT", allow_negative_numbers = true,
          default_value = "10", value_parser = parse_seconds)]
    pub header_timeout: Duration,

    /// Seconds a request body may go without progress (between two reads
    /// that each take some of it) before the connection is closed.
    #[arg(long, env = "CHOPIN_BODY_TIMEOUT", allow_negative_numbers = true,
          default_value = "60", value_parser = parse_seconds)]
    pub body_timeout: Duration,

    /// Tasks a worker polls between two looks at its I/O driver for new
    /// readiness events while it has tasks to run (tokio's
    /// `event_interval`; it waits for events only once it has none).
    #[arg(long, env = "CHOPIN_EVENT_INTERVAL", allow_negative_numbers = true,
          default_value_t = 61, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub event_interval: u32,

    /// Count per worker thread what it accepted, answered, read and how
    /// often it woke, and print the table, with each thread's CPU time, on
    /// stderr at exit and on SIGUSR1.
    #[arg(long, env = "CHOPIN_STATS", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub stats: bool,

    /// Seconds an idle keep-alive connection is kept open [default: forever,
    /// as TFB expects].
    #[arg(long, env = "CHOPIN_IDLE_TIMEOUT", allow_negative_numbers = true,
          value_parser = parse_seconds)]
    pub idle_timeout: Option<Duration>,

    /// Largest request body read for a handler (POST /echo, /baseline11),
    /// in bytes, or with a suffix k, m (KiB, MiB); a larger one gets 413
    /// and the connection closes.
    #[arg(long, env = "CHOPIN_MAX_BODY", default_value = "1m", value_parser = parse_bytes)]
    pub max_body: usize,

    /// The items GET /json/{count} serves (HttpArena's dataset.json), read
    /// once at start; without the file that route answers 404.
    #[arg(long, env = "CHOPIN_DATASET", default_value = "/data/dataset.json")]
    pub dataset: std::path::PathBuf,

    /// A second port that serves the same HTTP/1.1 over TLS 1.3 (HttpArena:
    /// 8081); none unless given. 0 takes a free port, named at start.
    #[arg(long, env = "CHOPIN_TLS_PORT")]
    pub tls_port: Option<u16>,

    /// The PEM certificate chain for --tls-port, leaf first.
    #[arg(long, env = "CHOPIN_TLS_CERT", default_value = "/certs/server.crt")]
    pub tls_cert: std::path::PathBuf,

    /// The PEM private key for --tls-port: RSA or ECDSA, PKCS#8, PKCS#1 or
    /// SEC1.
    #[arg(long, env = "CHOPIN_TLS_KEY", default_value = "/certs/server.key")]
    pub tls_key: std::path::PathBuf,
}

/// Environment variables that start with `CHOPIN_` but are no flag's: read
/// by `scripts/docker-entrypoint`, not by the binary.
const OTHER_CHOPIN_VARIABLES: &[&str] = &["CHOPIN_PRESET"];

impl Config {
    /// Settings that parse but do not do what they may look like they do,
    /// one line each for stderr at start: a flag for the other flavour, and
    /// `CHOPIN_*` variables that are no flag's (a misspelling would
    /// otherwise be silently ignored). `env_names` are the names of the
    /// process's environment variables.
    pub fn warnings(&self, env_names: impl Iterator<Item = String>) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.runtime == Flavour::PerCore && self.listeners == Listeners::Shared {
            warnings.push(
                "--listeners shared applies to the multithread runtime only; \
                 per-core keeps one listener per worker"
                    .to_owned(),
            );
        }
        let known: Vec<String> = Config::variables()
            .into_iter()
            .map(|(_, env)| env)
            .collect();
        let mut unknown: Vec<String> = env_names
            .filter(|name| name.starts_with("CHOPIN_"))
            .filter(|name| {
                !known.contains(name) && !OTHER_CHOPIN_VARIABLES.contains(&name.as_str())
            })
            .collect();
        unknown.sort();
        for name in unknown {
            let hint = if name == "CHOPIN_PORT" {
                "the port's variable is PORT".to_owned()
            } else {
                format!("the variables read are {}", known.join(", "))
            };
            warnings.push(format!(
                "{name} is not a chopin setting and is ignored ({hint})"
            ));
        }
        warnings
    }

    /// The environment variable `flag` (`--workers`) falls back to.
    pub fn env_of(flag: &str) -> Option<String> {
        let long = flag.strip_prefix("--")?;
        Config::variables()
            .into_iter()
            .find(|(name, _)| name == long)
            .map(|(_, env)| env)
    }

    /// Each flag's long name and its environment variable, in `--help`'s
    /// order, as clap knows them: the one list both lookups above read.
    fn variables() -> Vec<(String, String)> {
        <Config as clap::CommandFactory>::command()
            .get_arguments()
            .filter_map(|arg| {
                let env = arg.get_env()?.to_string_lossy().into_owned();
                Some((arg.get_long()?.to_owned(), env))
            })
            .collect()
    }

    /// A server reachable only from this machine, on 127.0.0.1 and an
    /// ephemeral port (read back with
    /// [`Server::local_addr`](crate::Server::local_addr)), with the given
    /// runtime and worker count. Every other setting is what the command
    /// line leaves it at without flags: its environment variable, else its
    /// default. What an embedding program or a test wants when it starts a
    /// server of its own next to others.
    pub fn local(runtime: Flavour, workers: u16) -> Config {
        let mut config = Config::parse_from(["chopin", "--port", "0", "--bind", "127.0.0.1"]);
        config.runtime = runtime;
        config.workers = Some(workers);
        config
    }
}

/// Seconds as a positive decimal number (`10`, `0.5`).
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    // Under a millisecond a timeout would fire before a client could answer
    // (and 1e-10 would round to zero): refused, not rounded.
    if !(0.001..=86_400.0 * 365.0).contains(&secs) {
        return Err(format!(
            "'{s}' is out of range; expected at least 0.001 seconds and at most a year"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Largest `--max-body`: bodies are kept in memory whole.
const MAX_MAX_BODY: usize = 1024 * 1024 * 1024;

/// A size in bytes: a decimal number, optionally followed by `k` or `m`
/// (KiB, MiB; any case, `kib`/`mib` too), at most 1 GiB.
fn parse_bytes(s: &str) -> Result<usize, String> {
    let text = s.trim().to_ascii_lowercase();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text.as_str(), ""),
    };
    let unit = match unit {
        "" | "b" => 1,
        "k" | "kib" => 1024,
        "m" | "mib" => 1024 * 1024,
        _ => {
            return Err(format!(
                "'{s}' is not a size; expected bytes, or a number with k or m (KiB, MiB)"
            ))
        }
    };
    let bytes = digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| {
            format!("'{s}' is not a size; expected bytes, or a number with k or m (KiB, MiB)")
        })?;
    if bytes > MAX_MAX_BODY {
        return Err(format!(
            "'{s}' is out of range; expected at most 1 GiB (1024m)"
        ));
    }
    Ok(bytes)
}

/// The `Server` header value is copied verbatim into every response, so it
/// must be a valid field value: visible ASCII and inner spaces only.
fn parse_server_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 256
        && s.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        && !s.starts_with(' ')
        && !s.ends_with(' ');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "'{s}' is not a valid Server header value; use 1 to 256 visible ASCII characters"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavour_spellings() {
        for s in ["per-core", "PER-CORE", "current_thread", "current-thread"] {
            assert_eq!(parse_flavour(s), Ok(Flavour::PerCore), "{s}");
        }
        for s in [
            "multithread",
            "multi_thread",
            "Multi-Thread",
            "work-stealing",
        ] {
            assert_eq!(parse_flavour(s), Ok(Flavour::Multithread), "{s}");
        }
        let err = parse_flavour("fast").unwrap_err();
        assert!(err.contains("'fast'") && err.contains("per-core") && err.contains("multithread"));
        assert_eq!(
            err,
            "unknown runtime 'fast'; expected per-core (or per_core, percore, current_thread, \
             current-thread), multithread (or multi_thread, multi-thread, work-stealing)"
        );
        // Every spelling the message lists is accepted, in any case.
        for value in Flavour::value_variants() {
            let value = value.to_possible_value().unwrap();
            for spelling in value.get_name_and_aliases() {
                let upper = spelling.to_ascii_uppercase();
                assert!(parse_flavour(spelling).is_ok(), "{spelling}");
                assert!(parse_flavour(&format!(" {upper} ")).is_ok(), "{upper}");
            }
        }
    }

    #[test]
    fn listener_spellings() {
        for s in ["per-worker", "PER_WORKER", " per_worker "] {
            assert_eq!(parse_listeners(s), Ok(Listeners::PerWorker), "{s}");
        }
        for s in ["shared", "Single"] {
            assert_eq!(parse_listeners(s), Ok(Listeners::Shared), "{s}");
        }
        assert_eq!(
            parse_listeners("many").unwrap_err(),
            "unknown listener layout 'many'; expected per-worker or shared"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("1m"), Ok(1 << 20));
        assert_eq!(parse_bytes(" 64KiB "), Ok(64 << 10));
        assert_eq!(parse_bytes("1024M"), Ok(1 << 30));
        for bad in ["", "-1", "1.5m", "1g", "m", "1025m", "99999999999999999999"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn seconds_and_server_name() {
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("ten").is_err());
        assert!(parse_server_name("chopin/0.1").is_ok());
        assert!(parse_server_name("bad\r\nX: y").is_err());
        assert!(parse_server_name("").is_err());
    }
}
