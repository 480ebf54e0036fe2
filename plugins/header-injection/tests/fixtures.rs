//! Keeps the scenario files and invalid-config fixtures honest against the real config code:
//! every scenario config compiles, every invalid fixture is refused naming its `.expect` field.

#![allow(clippy::unwrap_used)] // test helpers: a broken fixture tree should fail loudly

use header_injection::config::Settings;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

#[test]
fn every_scenario_config_compiles() {
    let scenarios = files(&root().join("tests/scenarios/header-injection"), "json");
    assert!(scenarios.len() >= 7, "{scenarios:?}");
    for path in scenarios {
        let text = std::fs::read_to_string(&path).unwrap();
        let scenario: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(scenario["plugin"], "header-injection", "{}", path.display());
        let config = scenario["config"].to_string();
        if let Err(err) = Settings::from_json(config.as_bytes()) {
            panic!("{}: config refused: {err}", path.display());
        }
    }
}

#[test]
fn every_invalid_fixture_is_refused_naming_its_field() {
    let dir = root().join("tests/fixtures/header-injection/invalid");
    let configs = files(&dir, "json");
    assert!(configs.len() >= 10);
    for path in configs {
        let expected = std::fs::read_to_string(path.with_extension("expect")).unwrap();
        let expected = expected.trim();
        let bytes = std::fs::read(&path).unwrap();
        match Settings::from_json(&bytes) {
            Ok(_) => panic!("{}: accepted", path.display()),
            Err(err) => {
                assert_eq!(err.field, expected, "{}: {err}", path.display());
                let line = err.to_string();
                assert!(line.starts_with(expected), "{line}");
                assert!(!line.contains(" at line "), "{line}");
            }
        }
    }
}
