//! HttpArena: `scripts/httparena-validate` (HttpArena's baseline, pipelined,
//! limited-conn, async, fragmentation, json-tls and 8gbit checks, and
//! chopin's answers to bad input) passes against an in-process server of
//! each flavour serving TLS and the dataset, and `scripts/httparena-export`
//! writes both entries in HttpArena's layout. docs/httparena.md has the
//! contract. Skipped when python3 is missing.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VALIDATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/httparena-validate");
const EXPORT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/httparena-export");

/// The entries and the runtime each one's image selects.
const ENTRIES: [(&str, &str); 2] = [
    ("chopin", "per-core"),
    ("chopin-multithread", "multithread"),
];

fn python3() -> bool {
    python3_or_skip("scripts/httparena-validate's and -export's tests")
}

/// Runs `python3 script args`, killing it if it runs past `limit`.
fn run(script: &str, args: &[&str], limit: Duration) -> Output {
    run_python(script, args, limit)
}

fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The certificate and key the validator's TLS groups run against, and the
/// dataset its json-tls items are compared with: HttpArena's own file.
const CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/certs/rsa.crt");
const KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/certs/rsa-pkcs8.key");
const DATASET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dataset.json");

/// Every group, TLS ones included, against each flavour serving TLS with
/// the test certificate and HttpArena's dataset. The fragmentation sweep is
/// the full one (1,047 connections, about 2 s).
#[test]
fn httparena_validate_passes() {
    if !python3() {
        return;
    }
    for flavour in FLAVOURS {
        let mut config = chopin::Config::local(flavour, 2);
        config.tls_port = Some(0);
        config.tls_cert = CERT.into();
        config.tls_key = KEY.into();
        config.dataset = DATASET.into();
        let server = start_with(config);
        let url = format!("http://{}", server.local_addr());
        let tls_port = server
            .tls_addr()
            .expect("a TLS listener")
            .port()
            .to_string();
        // Fewer concurrent connections than the script's default (512): the
        // test server has two workers and shares the machine with other tests.
        let out = run(
            VALIDATE,
            &[
                "--url",
                &url,
                "--connections",
                "128",
                "--tls-port",
                &tls_port,
                "--cert",
                CERT,
                "--dataset",
                DATASET,
            ],
            Duration::from_secs(180),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{flavour}: scripts/httparena-validate failed\n{}",
            printed(&out)
        );
        assert_all_passed(&stdout);
        // Every group ran: none was skipped, each said something.
        assert!(!stdout.contains("SKIP"), "{stdout}");
        for says in [
            "GET /delay/0",
            "frag: POST, chunked in two chunks",
            "json-tls negotiates TLS 1.3",
            "json-tls TLS quality: openssl s_client -tls1_2 -cipher '3DES",
            "8gbit serves the certificate given by --cert",
            "8gbit: POST /echo 102400 random bytes, chunked",
        ] {
            assert!(stdout.contains(says), "no {says:?} in\n{stdout}");
        }
        server.shutdown();
    }
}

/// A certificate other than the served one fails the posture probe.
#[test]
fn httparena_validate_fails_on_another_certificate() {
    if !python3() {
        return;
    }
    let mut config = chopin::Config::local(chopin::Flavour::PerCore, 2);
    config.tls_port = Some(0);
    config.tls_cert = CERT.into();
    config.tls_key = KEY.into();
    let server = start_with(config);
    let url = format!("http://{}", server.local_addr());
    let tls_port = server.tls_addr().unwrap().port().to_string();
    let other = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/certs/ec.crt");
    let out = run(
        VALIDATE,
        &[
            "--url",
            &url,
            "--only",
            "8gbit",
            "--tls-port",
            &tls_port,
            "--cert",
            other,
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL 8gbit serves the certificate given by --cert"),
        "{stdout}"
    );
    server.shutdown();
}

/// The harness can fail: nothing listening is exit status 2.
#[test]
fn httparena_validate_fails_without_a_server() {
    if !python3() {
        return;
    }
    let port = unused_port();
    let out = run(
        VALIDATE,
        &[
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--timeout",
            "2",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(2), "{}", printed(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unreachable"),
        "{}",
        printed(&out)
    );
}

/// A usage error (an unknown group, a URL with a path) is exit status 2 and
/// says what is accepted.
#[test]
fn httparena_validate_rejects_bad_usage() {
    if !python3() {
        return;
    }
    for (args, says) in [
        (&["--only", "baseline,nope"][..], "the groups are"),
        (
            &["--url", "http://127.0.0.1:1/prefix"][..],
            "expected http://HOST[:PORT]",
        ),
        (&["--only", "json-tls"][..], "needs --tls-port"),
        (&["--tls-port", "8081"][..], "--tls-port needs --cert"),
    ] {
        let out = run(VALIDATE, args, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", printed(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}: {}",
            printed(&out)
        );
    }
}

/// A directory of its own under the system's temporary directory, removed
/// when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("chopin-{what}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The `rust:` and `debian:` images a Dockerfile starts stages `FROM`,
/// sorted and without repeats (chopin's own Dockerfile also starts one stage
/// from another stage).
fn base_images(dockerfile: &str) -> Vec<String> {
    let mut images: Vec<String> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("FROM "))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|image| image.starts_with("rust:") || image.starts_with("debian:"))
        .map(str::to_owned)
        .collect();
    images.sort();
    images.dedup();
    images
}

/// The file names directly under `dir`, sorted.
/// Every file below `dir`, as a path relative to it, sorted: src/ has
/// folders of its own.
fn files_below(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in fs::read_dir(&at).unwrap_or_else(|e| panic!("list {}: {e}", at.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap();
                found.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn httparena_export_writes_the_entries() {
    if !python3() {
        return;
    }
    let tmp = TempDir::new("httparena-export");
    let dest = tmp.0.to_str().unwrap();
    let out = run(
        EXPORT,
        &[
            dest,
            "--repo",
            "https://example.org/chopin",
            "--maintainer",
            "someone",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));

    let root = Path::new(ROOT);
    let repo_images = base_images(&read(&root.join("Dockerfile")));
    let repo_manifest = read(&root.join("Cargo.toml"));
    let repo_sources = files_below(&root.join("src"));

    for (entry, runtime) in ENTRIES {
        let dir = tmp.0.join("frameworks").join(entry);
        let mut want = vec![
            ".dockerignore",
            "Cargo.lock",
            "Cargo.toml",
            "Dockerfile",
            "meta.json",
            "src",
        ];
        want.sort();
        assert_eq!(names(&dir), want, "{entry}: only what the image needs");

        // meta.json: HttpArena's fields (site/content/docs/add-framework/meta-json.md).
        let meta: serde_json::Value = serde_json::from_str(&read(&dir.join("meta.json")))
            .unwrap_or_else(|e| panic!("{entry}/meta.json is not JSON: {e}"));
        assert_eq!(meta["display_name"], entry, "{meta}");
        assert_eq!(meta["language"], "Rust", "{meta}");
        assert_eq!(meta["type"], "engine", "{meta}");
        assert!(
            meta["engine"].as_str().is_some_and(|s| !s.is_empty()),
            "{meta}"
        );
        assert!(
            meta["description"].as_str().is_some_and(|s| !s.is_empty()),
            "{meta}"
        );
        assert_eq!(meta["repo"], "https://example.org/chopin", "{meta}");
        assert_eq!(meta["enabled"], true, "{meta}");
        // The seven H1 profiles HttpArena scores for engines, in its order.
        assert_eq!(
            meta["tests"],
            serde_json::json!([
                "baseline",
                "limited-conn",
                "async",
                "latency-1m",
                "latency-10k",
                "json-tls",
                "8gbit"
            ]),
            "{meta}"
        );
        assert_eq!(
            meta["maintainers"],
            serde_json::json!(["someone"]),
            "{meta}"
        );

        // Dockerfile: chopin's own base images, ports 8080 and 8081, the
        // flavour set, no arguments needed: its CMD starts the TLS listener
        // with the pair HttpArena mounts, and nothing of /certs or /data is
        // copied into the image.
        let dockerfile = read(&dir.join("Dockerfile"));
        assert_eq!(base_images(&dockerfile), repo_images, "{dockerfile}");
        assert!(dockerfile.contains("\nEXPOSE 8080 8081\n"), "{dockerfile}");
        assert!(
            dockerfile.contains(
                r#"CMD ["--tls-port", "8081", "--tls-cert", "/certs/server.crt", "--tls-key", "/certs/server.key"]"#
            ),
            "{dockerfile}"
        );
        for line in dockerfile
            .lines()
            .filter(|l| l.starts_with("COPY ") || l.starts_with("ADD "))
        {
            assert!(
                !line.contains("certs") && !line.contains("data") && !line.contains(".json"),
                "nothing mounted is baked in: {line}"
            );
        }
        assert!(
            dockerfile.contains(&format!("CHOPIN_RUNTIME={runtime}\n")),
            "{dockerfile}"
        );
        assert!(dockerfile.contains("PORT=8080"), "{dockerfile}");
        assert!(
            dockerfile.contains("cargo build --release --locked --bin chopin"),
            "{dockerfile}"
        );
        assert!(
            dockerfile.contains(r#"ENTRYPOINT ["/usr/local/bin/chopin"]"#),
            "{dockerfile}"
        );

        // Cargo.toml: chopin's own; it declares no example, so it builds
        // without examples/.
        assert_eq!(read(&dir.join("Cargo.toml")), repo_manifest);
        assert_eq!(
            read(&dir.join("Cargo.lock")),
            read(&root.join("Cargo.lock"))
        );

        // src/: the same files, byte for byte.
        assert_eq!(files_below(&dir.join("src")), repo_sources, "{entry}/src");
        for name in &repo_sources {
            assert_eq!(
                fs::read(dir.join("src").join(name)).unwrap(),
                fs::read(root.join("src").join(name)).unwrap(),
                "{entry}/src/{name}"
            );
        }
    }

    // An existing entry is replaced only with --force.
    let again = run(EXPORT, &[dest], Duration::from_secs(60));
    assert_eq!(again.status.code(), Some(2), "{}", printed(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force"),
        "{}",
        printed(&again)
    );
    let forced = run(EXPORT, &[dest, "--force"], Duration::from_secs(60));
    assert_eq!(forced.status.code(), Some(0), "{}", printed(&forced));
    let meta: serde_json::Value =
        serde_json::from_str(&read(&tmp.0.join("frameworks/chopin/meta.json"))).unwrap();
    assert!(meta.get("repo").is_none(), "no --repo, no repo: {meta}");
    assert_eq!(meta["maintainers"], serde_json::json!([]), "{meta}");
}
