//! `scripts/tfb-export`: the TFB framework folder holds exactly what the
//! image build and the two tests need, its `benchmark_config.json` passes
//! the rules of TechEmpower's toolset (`toolset/utils/metadata.py`,
//! `validate_test` and `validate_urls`), the Dockerfile copies only what the
//! folder holds, and cargo accepts its manifest without `examples/`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;

use common::{python3_or_skip, run_python};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tfb-export");

fn python3() -> bool {
    python3_or_skip("scripts/tfb-export's tests")
}

fn export_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chopin-tfb-export-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn run(args: &[&str]) -> std::process::Output {
    run_python(SCRIPT, args, Duration::from_secs(60))
}

/// Every file under `dir`, as paths relative to it.
fn files(dir: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                found.insert(rel);
            }
        }
    }
    found
}

/// TFB's schema for one test's keys: each value, lowercased, must be one of
/// the allowed ones; `language` must be set; `orm` and `database_os` must be
/// set when `database` is not "None"; every `*_url` starts with `/`.
fn check_test(name: &str, test: &serde_json::Map<String, serde_json::Value>) {
    let value = |key: &str| {
        test.get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("none")
            .to_lowercase()
    };
    let allowed: &[(&str, &[&str])] = &[
        ("classification", &["fullstack", "micro", "platform"]),
        ("database", &["mysql", "postgres", "mongodb", "none"]),
        ("approach", &["realistic", "stripped"]),
        ("orm", &["full", "micro", "raw"]),
        ("os", &["linux", "windows"]),
        ("database_os", &["linux", "windows"]),
    ];
    assert_ne!(value("language"), "none", "{name}: language is required");
    for (key, values) in allowed {
        let v = value(key);
        if v != "none" {
            assert!(values.contains(&v.as_str()), "{name}: {key} = {v:?}");
        }
    }
    if value("database") != "none" {
        assert_ne!(
            value("orm"),
            "none",
            "{name}: orm is required with a database"
        );
        assert_ne!(
            value("database_os"),
            "none",
            "{name}: database_os is required"
        );
    }
    for (key, v) in test {
        if key.ends_with("_url") {
            assert!(
                v.as_str().is_some_and(|url| url.starts_with('/')),
                "{name}: {key} = {v}"
            );
        }
    }
    // What chopin claims: realistic, no database, port 8080.
    assert_eq!(value("approach"), "realistic", "{name}");
    assert_eq!(test["port"], 8080, "{name}");
}

#[test]
fn exported_folder_is_what_tfb_needs() {
    if !python3() {
        return;
    }
    let dir = export_dir("folder");
    let out = run(&[
        dir.to_str().unwrap(),
        "--homepage",
        "https://example.org/chopin",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut expected: BTreeSet<String> = [
        "benchmark_config.json",
        "Dockerfile",
        "Cargo.toml",
        "Cargo.lock",
        "README.md",
        "config/chopin.env",
        "config/chopin-multithread.env",
        "scripts/docker-entrypoint",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for src in files(&root.join("src")) {
        expected.insert(format!("src/{src}"));
    }
    assert_eq!(files(&dir), expected);
    for same in [
        "Dockerfile",
        "Cargo.toml",
        "Cargo.lock",
        "benchmark_config.json",
    ] {
        assert_eq!(
            fs::read(dir.join(same)).unwrap(),
            fs::read(root.join(same)).unwrap(),
            "{same} is chopin's own"
        );
    }

    // benchmark_config.json, by TFB's rules; a default test; every test's
    // preset is in the folder.
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("benchmark_config.json")).unwrap()).unwrap();
    let framework = config["framework"].as_str().unwrap();
    let mut names = Vec::new();
    for group in config["tests"].as_array().unwrap() {
        for (key, test) in group.as_object().unwrap() {
            check_test(key, test.as_object().unwrap());
            let name = if key == "default" {
                framework.to_owned()
            } else {
                format!("{framework}-{key}")
            };
            assert!(dir.join(format!("config/{name}.env")).is_file(), "{name}");
            names.push(name);
        }
    }
    assert_eq!(names, ["chopin", "chopin-multithread"]);

    // Every COPY source of the Dockerfile exists in the folder.
    let dockerfile = fs::read_to_string(dir.join("Dockerfile")).unwrap();
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words[1].starts_with("--from") {
            continue;
        }
        for source in &words[1..words.len() - 1] {
            let source = source.trim_end_matches("/*.env");
            assert!(
                source == "." || dir.join(source).exists(),
                "the Dockerfile copies {source}, which the folder lacks"
            );
        }
    }

    // The README is TFB's framework README: a description, the test URLs,
    // and the homepage link.
    let readme = fs::read_to_string(dir.join("README.md")).unwrap();
    for part in [
        "## Description",
        "## Test URLs",
        "http://localhost:8080/json",
        "http://localhost:8080/plaintext",
        "https://example.org/chopin",
    ] {
        assert!(readme.contains(part), "README.md lacks {part:?}");
    }

    // cargo reads the manifest with no examples/ or tests/ beside it.
    let metadata = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--offline",
            "--no-deps",
            "--format-version",
            "1",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        metadata.status.success(),
        "cargo metadata in the exported folder: {}",
        String::from_utf8_lossy(&metadata.stderr)
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn refuses_a_folder_in_use_without_force() {
    if !python3() {
        return;
    }
    let dir = export_dir("force");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("keep"), "x").unwrap();
    let out = run(&[dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert!(dir.join("keep").exists());
    let out = run(&[dir.to_str().unwrap(), "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("keep").exists());
    // Without a homepage the README says so, and a warning names the flag.
    assert!(String::from_utf8_lossy(&out.stderr).contains("--homepage"));
    let _ = fs::remove_dir_all(&dir);
}
