//! Test-only: the crate's own source files, read at test time, for the tests that hold code to
//! a catalogue (`codes`, `telemetry`): a file added or moved by a change is checked without
//! being listed anywhere.

/// A file under `src/` (its path from there, with `/`) and its text without its
/// `#[cfg(test)]` part. Files named `tests.rs` are test-only and left out.
pub(crate) type Source = (String, String);

/// Every non-test source file under `src/`, in path order.
pub(crate) fn sources() -> Vec<Source> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("src/ is readable")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .filter_map(|p| {
            let name = p
                .strip_prefix(&root)
                .expect("under src/")
                .to_string_lossy()
                .replace('\\', "/");
            if name.ends_with("tests.rs") {
                return None;
            }
            let text = std::fs::read_to_string(&p).expect("a readable source file");
            let text = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
            Some((name, text))
        })
        .collect()
}
