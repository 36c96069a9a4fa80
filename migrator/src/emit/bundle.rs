//! The in-memory bundle of generated files and the only code that writes it to disk: into a
//! temporary folder next to the destination, renamed into place at the end, so a failure never
//! leaves a half-written chart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::Error;

/// File mode of ordinary chart files.
pub const MODE_FILE: u32 = 0o644;
/// File mode of files that hold secret material (readable by the owner only).
pub const MODE_SECRET: u32 = 0o600;

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// The content.
    pub bytes: Vec<u8>,
    /// The Unix mode it is written with.
    pub mode: u32,
}

impl File {
    /// Whether the file holds secret material (and so must never be printed).
    pub fn is_secret(&self) -> bool {
        self.mode == MODE_SECRET
    }
}

/// Generated files by path relative to the output folder, in path order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bundle {
    /// The files.
    pub files: BTreeMap<PathBuf, File>,
}

/// How a secret value is shown anywhere a person can read it: `<redacted sha256:0123abcd>`, the
/// first 8 hex digits of its SHA-256, so two values can be told apart without being revealed.
pub fn redact(value: &[u8]) -> String {
    let digest = Sha256::digest(value);
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("<redacted sha256:{hex}>")
}

impl Bundle {
    /// Adds a file (replacing one at the same path).
    pub fn add(&mut self, path: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>, mode: u32) {
        self.files.insert(
            path.into(),
            File {
                bytes: bytes.into(),
                mode,
            },
        );
    }

    /// Adds files in order, as [`Bundle::add`] would one by one (a later file replaces an
    /// earlier one at the same path), in one pass: thousands of inserts that each compare
    /// `Path`s component by component cost more than generating the templates' text.
    pub fn add_all(&mut self, files: impl IntoIterator<Item = (String, Vec<u8>, u32)>) {
        let mut all: Vec<(PathBuf, File)> = std::mem::take(&mut self.files).into_iter().collect();
        let mut added: Vec<(String, File)> = files
            .into_iter()
            .map(|(path, bytes, mode)| (path, File { bytes, mode }))
            .collect();
        // In path order by their text (the same order as `Path`'s for the clean relative paths
        // a chart has; `BTreeMap::from_iter` sorts again by `Path`, which is one comparison per
        // file when already sorted). The sorts are stable: of equal paths the last one is kept.
        added.sort_by_cached_key(|(path, _)| path_key(path));
        all.extend(added.into_iter().map(|(p, f)| (PathBuf::from(p), f)));
        self.files = all.into_iter().collect();
    }

    /// One line per file: path, size in bytes and, for secret material, its redacted digest.
    pub fn listing(&self) -> String {
        let width = self
            .files
            .keys()
            .map(|p| p.display().to_string().chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (path, file) in &self.files {
            let line = format!(
                "{:width$}  {:>7} bytes  {:04o}{}",
                path.display().to_string(),
                file.bytes.len(),
                file.mode,
                if file.is_secret() {
                    format!("  secret {}", redact(&file.bytes))
                } else {
                    String::new()
                }
            );
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// The files as JSON: `[{path, bytes, mode, secret}]`, without content.
    pub fn to_json(&self) -> serde_json::Value {
        self.to_json_staged(&Staged::default())
    }

    /// The file listing ([`Bundle::to_json_staged`]) as something to serialise without building
    /// the JSON tree first (a large chart lists thousands of files).
    pub fn listing_staged<'a>(&'a self, staged: &'a Staged) -> Listing<'a> {
        Listing {
            bundle: self,
            staged,
        }
    }

    /// [`Bundle::to_json`] for a bundle whose `staged` files were written to a staging folder
    /// and not kept: their size and digest come from `staged`.
    pub fn to_json_staged(&self, staged: &Staged) -> serde_json::Value {
        // Strings, numbers and maps with string keys: serialising the listing cannot fail.
        serde_json::to_value(self.listing_staged(staged)).unwrap_or_default()
    }

    /// Whether [`Bundle::write`] may write to `out`: refuses a file, or a non-empty folder
    /// without `force`. Returns whether `out` exists (`Some(non_empty)`). Callers that print
    /// results while the bundle is written check this first, so a refusal prints nothing.
    pub fn check_target(out: &Path, force: bool) -> Result<Option<bool>, Error> {
        let existing = match std::fs::read_dir(out) {
            Ok(mut entries) => Some(entries.next().is_some()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Error::Write {
                    path: out.to_path_buf(),
                    source: e,
                });
            }
        };
        if (existing == Some(true) && !force) || (out.exists() && !out.is_dir()) {
            return Err(Error::OutputExists {
                path: out.to_path_buf(),
            });
        }
        Ok(existing)
    }

    /// Writes the bundle to `out`. An existing `out` that is not empty is refused unless `force`;
    /// the files go to a temporary folder next to `out` first and are renamed into place at the
    /// end, so `out` holds either the old content or the complete new one.
    pub fn write(&self, out: &Path, force: bool) -> Result<(), Error> {
        self.write_staged(Staging::create(out, force)?, &Staged::default())
    }

    /// [`Bundle::write`] into a [`Staging`] folder that already holds the files listed in
    /// `staged` (written while the chart was generated): writes the others, then renames the
    /// folder into place. A file the bundle holds under a staged path is taken as written.
    pub fn write_staged(&self, mut staging: Staging, staged: &Staged) -> Result<(), Error> {
        let _span = tracing::info_span!("write", out = %staging.out.display()).entered();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Write { path, source }
        };
        if let Some((path, kind, message)) = &staged.error {
            return Err(Error::Write {
                path: staging.dir.join(path),
                source: std::io::Error::new(*kind, message.clone()),
            });
        }
        // The destination may have changed since the folder was made.
        let existing = Self::check_target(&staging.out, staging.force)?;
        self.write_into(&staging.dir, &staged.files)?;
        let (out, tmp, parent, name) = (&staging.out, &staging.dir, &staging.parent, &staging.name);
        if existing.is_some() {
            // Move the old folder aside first: a rename cannot replace a non-empty directory.
            let old = parent.join(format!(".{name}.old-{}", std::process::id()));
            std::fs::rename(out, &old).map_err(io(out))?;
            if let Err(e) = std::fs::rename(tmp, out) {
                let _ = std::fs::rename(&old, out);
                return Err(io(out)(e));
            }
            staging.done = true;
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        } else {
            std::fs::rename(tmp, out).map_err(io(out))?;
            staging.done = true;
        }
        tracing::info!(files = self.files.len(), "chart written");
        Ok(())
    }

    fn write_into(&self, dir: &Path, staged: &BTreeMap<String, StagedFile>) -> Result<(), Error> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Write { path, source }
        };
        let files: Vec<(&PathBuf, &File)> = self
            .files
            .iter()
            .filter(|(rel, _)| rel.to_str().is_none_or(|r| !staged.contains_key(r)))
            .collect();
        // Each folder once (a chart has thousands of files in a handful of folders).
        let mut folders: Vec<&Path> = Vec::new();
        for (rel, _) in &files {
            if let Some(f) = rel.parent()
                && !folders.contains(&f)
            {
                folders.push(f);
                let f = dir.join(f);
                std::fs::create_dir_all(&f).map_err(io(&f))?;
            }
        }
        // Creating thousands of files is file-system bound, but half of each create (the inode,
        // the data, the close) runs in parallel on another core: two writers, each taking
        // alternate files, take ~35% less time than one for a 1000-service chart.
        let writers = if files.len() >= PARALLEL_FROM { 2 } else { 1 };
        let results: Vec<Result<(), (usize, Error)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..writers)
                .map(|w| {
                    let files = &files;
                    scope.spawn(move || {
                        let mut exact = ExactModes::default();
                        for (i, (rel, file)) in files.iter().enumerate().skip(w).step_by(writers) {
                            let path = dir.join(rel);
                            write_file(&path, &file.bytes, file.mode, &mut exact)
                                .map_err(|source| (i, Error::Write { path, source }))?;
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err((
                            0,
                            Error::Write {
                                path: dir.to_path_buf(),
                                source: std::io::Error::other("a chart writer thread panicked"),
                            },
                        ))
                    })
                })
                .collect()
        });
        // Report the failure of the first file in path order, as a single writer would.
        match results
            .into_iter()
            .filter_map(Result::err)
            .min_by_key(|(i, _)| *i)
        {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}

/// A key that orders text paths as `Path`s compare component by component: `/` sorts before
/// every other byte (a shorter component comes first) and the end of the text before `/`. That
/// is byte order once `/` is 0 (a path holds no NUL).
fn path_key(path: &str) -> Vec<u8> {
    path.bytes()
        .map(|c| if c == b'/' { 0 } else { c })
        .collect()
}

/// Bundles with at least this many files are written by two threads.
const PARALLEL_FROM: usize = 64;

/// The temporary folder a chart is written to, next to its destination (`.NAME.tmp-PID`), made
/// before the chart is generated so templates can be written as soon as they are ready (see
/// [`StageWriter`]). [`Bundle::write_staged`] renames it into place; dropped before that (an
/// error, a panic), it removes the folder, so a failed run leaves nothing behind.
#[derive(Debug)]
pub struct Staging {
    out: PathBuf,
    force: bool,
    parent: PathBuf,
    name: String,
    dir: PathBuf,
    done: bool,
}

impl Staging {
    /// Checks `out` as [`Bundle::check_target`] does and makes the temporary folder.
    pub fn create(out: &Path, force: bool) -> Result<Self, Error> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Write { path, source }
        };
        Bundle::check_target(out, force)?;
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(io(&parent))?;
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "chart".into());
        let dir = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(Self {
            out: out.to_path_buf(),
            force,
            parent,
            name,
            dir,
            done: false,
        })
    }

    /// The temporary folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The files already written to a [`Staging`] folder while the chart was generated, and the
/// first error doing so (path, kind, message; reported by [`Bundle::write_staged`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Staged {
    /// By path relative to the folder (strings: path comparisons are slow for thousands). The
    /// bundle does not keep their text (see [`crate::emit::Options::stage`]).
    pub files: BTreeMap<String, StagedFile>,
    /// The first failure; nothing is written after it.
    pub error: Option<(PathBuf, std::io::ErrorKind, String)>,
}

/// What is known of a file written to a [`Staging`] folder once its text is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFile {
    /// Its size in bytes.
    pub len: usize,
    /// For secret material, its [`redact`]ed digest.
    pub redacted: Option<String>,
}

/// A bundle's file listing for serde, one entry per file in path order: `path`, `bytes` (the
/// staged size for a file written to the staging folder), `mode` in octal, and `secret` (the
/// redacted digest) for secret material.
pub struct Listing<'a> {
    bundle: &'a Bundle,
    staged: &'a Staged,
}

impl serde::Serialize for Listing<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        let mut seq = serializer.serialize_seq(Some(self.bundle.files.len()))?;
        for (path, file) in &self.bundle.files {
            let kept = path.to_str().and_then(|p| self.staged.files.get(p));
            seq.serialize_element(&ListedFile { path, file, kept })?;
        }
        return seq.end();

        struct ListedFile<'a> {
            path: &'a Path,
            file: &'a File,
            kept: Option<&'a StagedFile>,
        }
        impl serde::Serialize for ListedFile<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let secret = self.file.is_secret();
                let mut map = serializer.serialize_map(Some(3 + usize::from(secret)))?;
                match self.path.to_str() {
                    Some(p) => map.serialize_entry("path", p)?,
                    None => map.serialize_entry("path", &self.path.display().to_string())?,
                }
                map.serialize_entry("bytes", &self.kept.map_or(self.file.bytes.len(), |k| k.len))?;
                let mode = format!("{:04o}", self.file.mode);
                map.serialize_entry("mode", &mode)?;
                if secret {
                    let digest = match self.kept {
                        Some(k) => k.redacted.clone().unwrap_or_else(|| redact(b"")),
                        None => redact(&self.file.bytes),
                    };
                    map.serialize_entry("secret", &digest)?;
                }
                map.end()
            }
        }
    }
}

/// Writes files into a [`Staging`] folder one at a time, as they are generated.
pub(crate) struct StageWriter {
    dir: PathBuf,
    folders: Vec<PathBuf>,
    exact: ExactModes,
    staged: Staged,
}

impl StageWriter {
    /// A writer into `dir` (a [`Staging::dir`]).
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            folders: Vec::new(),
            exact: ExactModes::default(),
            staged: Staged::default(),
        }
    }

    /// Writes `rel` (a path relative to the folder); after a failure, writes nothing more.
    /// Returns whether the file was written.
    pub fn write(&mut self, rel: &str, bytes: &[u8], mode: u32) -> bool {
        if self.staged.error.is_some() {
            return false;
        }
        let path = self.dir.join(rel);
        let result = (|| {
            if let Some(folder) = path.parent()
                && !self.folders.iter().any(|f| f == folder)
            {
                std::fs::create_dir_all(folder)?;
                self.folders.push(folder.to_path_buf());
            }
            match write_file(&path, bytes, mode, &mut self.exact) {
                // Generated twice: the last one wins, as in the bundle.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::fs::remove_file(&path)?;
                    write_file(&path, bytes, mode, &mut self.exact)
                }
                other => other,
            }
        })();
        match result {
            Ok(()) => {
                let redacted = (mode == MODE_SECRET).then(|| redact(bytes));
                let file = StagedFile {
                    len: bytes.len(),
                    redacted,
                };
                self.staged.files.insert(rel.to_string(), file);
                true
            }
            Err(e) => {
                self.staged.error = Some((PathBuf::from(rel), e.kind(), e.to_string()));
                false
            }
        }
    }

    /// What was written.
    pub fn finish(self) -> Staged {
        self.staged
    }
}

/// Per folder and mode, whether files created with that mode already have it exactly (the umask
/// or a default ACL removed no bits), learnt from the first such file; then the others need no
/// `fchmod`.
#[derive(Default)]
struct ExactModes(Vec<(PathBuf, u32, bool)>);

impl ExactModes {
    fn get(&self, folder: &Path, mode: u32) -> Option<bool> {
        self.0
            .iter()
            .find(|(f, m, _)| *m == mode && f == folder)
            .map(|(_, _, exact)| *exact)
    }
}

#[cfg(unix)]
fn write_file(path: &Path, bytes: &[u8], mode: u32, exact: &mut ExactModes) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::fs::PermissionsExt;
    // Created with the final mode so secret material is never readable by others, not even
    // for a moment.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(bytes)?;
    // The umask may have removed bits from a non-secret mode; set it exactly. No fsync per file:
    // the rename at the end is what makes the output all-or-nothing, and thousands of fsyncs
    // would dominate the run time.
    let folder = path.parent().unwrap_or(Path::new(""));
    match exact.get(folder, mode) {
        Some(true) => Ok(()),
        Some(false) => f.set_permissions(std::fs::Permissions::from_mode(mode)),
        None => {
            let is_exact = f.metadata()?.permissions().mode() & 0o7777 == mode;
            exact.0.push((folder.to_path_buf(), mode, is_exact));
            if is_exact {
                Ok(())
            } else {
                f.set_permissions(std::fs::Permissions::from_mode(mode))
            }
        }
    }
}

#[cfg(not(unix))]
fn write_file(
    path: &Path,
    bytes: &[u8],
    _mode: u32,
    _exact: &mut ExactModes,
) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> Bundle {
        let mut b = Bundle::default();
        b.add("Chart.yaml", "name: x\n", MODE_FILE);
        b.add("templates/s.yaml", "data: c2VjcmV0\n", MODE_SECRET);
        b
    }

    #[test]
    fn the_listing_gives_staged_sizes_modes_and_redacted_secrets() {
        let mut b = bundle();
        b.add("templates/a.yaml", "", MODE_FILE);
        b.add("templates/k.yaml", "", MODE_SECRET);
        b.add("values.yaml", "a: 1\n", 0o640);
        let mut staged = Staged::default();
        staged.files.insert(
            "templates/a.yaml".into(),
            StagedFile {
                len: 123,
                redacted: None,
            },
        );
        staged.files.insert(
            "templates/k.yaml".into(),
            StagedFile {
                len: 45,
                redacted: Some(redact(b"key")),
            },
        );
        let want = serde_json::json!([
            {"path": "Chart.yaml", "bytes": 8, "mode": "0644"},
            {"path": "templates/a.yaml", "bytes": 123, "mode": "0644"},
            {"path": "templates/k.yaml", "bytes": 45, "mode": "0600", "secret": redact(b"key")},
            {"path": "templates/s.yaml", "bytes": 15, "mode": "0600", "secret": redact(b"data: c2VjcmV0\n")},
            {"path": "values.yaml", "bytes": 5, "mode": "0640"},
        ]);
        assert_eq!(b.to_json_staged(&staged), want);
        let pretty = serde_json::to_string_pretty(&b.listing_staged(&staged)).expect("serialises");
        assert_eq!(
            pretty,
            serde_json::to_string_pretty(&want).expect("serialises")
        );
        // Without staging, sizes and digests come from the kept bytes.
        assert_eq!(
            b.to_json()[1],
            serde_json::json!({"path": "templates/a.yaml", "bytes": 0, "mode": "0644"})
        );
    }

    #[test]
    fn path_key_orders_as_paths_do() {
        let paths = [
            "a",
            "a/b",
            "a-b",
            "a.b",
            "a/b/c",
            "a/b-c",
            "ab",
            "a0",
            "templates/x.yaml",
            "templates/x-y.yaml",
            "templates/x/y.yaml",
            "templates",
            "templatesx",
            "b",
            "",
            "Chart.yaml",
            "values.yaml",
            "files/a/b",
            "files/a-b",
        ];
        for a in paths {
            for b in paths {
                assert_eq!(
                    path_key(a).cmp(&path_key(b)),
                    Path::new(a).cmp(Path::new(b)),
                    "{a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn add_all_keeps_the_last_of_equal_paths_like_add() {
        let files = [
            ("t/b", "1"),
            ("t/a", "2"),
            ("t-a", "3"),
            ("t/b", "4"),
            ("Chart.yaml", "5"),
        ];
        let mut one = Bundle::default();
        one.add("t/a", "0", MODE_FILE);
        let mut all = one.clone();
        for (p, t) in files {
            one.add(p, t, MODE_FILE);
        }
        all.add_all(files.map(|(p, t)| (p.to_string(), t.as_bytes().to_vec(), MODE_FILE)));
        assert_eq!(one, all);
    }

    #[test]
    fn staged_files_are_kept_and_the_rest_written_at_the_end() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("chart");
        std::fs::create_dir(&out).expect("old chart");
        std::fs::write(out.join("old.yaml"), "old").expect("old file");
        let staging = Staging::create(&out, true).expect("staging");
        let mut w = StageWriter::new(staging.dir().to_path_buf());
        assert!(w.write("templates/a.yaml", b"first", MODE_FILE));
        // Generated twice: the last text wins, as in the bundle.
        assert!(w.write("templates/a.yaml", b"a", MODE_FILE));
        assert!(w.write("templates/s.yaml", b"secret", MODE_SECRET));
        let staged = w.finish();
        assert_eq!(staged.error, None);
        let mut b = Bundle::default();
        b.add("templates/a.yaml", "a", MODE_FILE);
        b.add("templates/s.yaml", "secret", MODE_SECRET);
        b.add("Chart.yaml", "name: x\n", MODE_FILE);
        let tmp = staging.dir().to_path_buf();
        b.write_staged(staging, &staged).expect("write");
        assert!(!tmp.exists(), "the temporary folder is renamed into place");
        assert!(!out.join("old.yaml").exists(), "the old chart is replaced");
        for (rel, file) in &b.files {
            assert_eq!(
                std::fs::read(out.join(rel)).expect("read"),
                file.bytes,
                "{rel:?}"
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(out.join("templates/s.yaml")).expect("meta");
            assert_eq!(mode.permissions().mode() & 0o777, MODE_SECRET);
        }
    }

    #[test]
    fn a_staging_folder_dropped_before_the_write_is_removed() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("chart");
        let staging = Staging::create(&out, false).expect("staging");
        let tmp = staging.dir().to_path_buf();
        let mut w = StageWriter::new(tmp.clone());
        assert!(w.write("templates/a.yaml", b"a", MODE_FILE));
        assert!(tmp.join("templates/a.yaml").exists());
        drop(staging);
        assert!(!tmp.exists() && !out.exists(), "nothing is left behind");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    #[test]
    fn a_failed_staged_write_is_reported_and_nothing_is_renamed() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("chart");
        let staging = Staging::create(&out, false).expect("staging");
        let mut w = StageWriter::new(staging.dir().to_path_buf());
        // A folder where the file's parent folder should be.
        std::fs::write(staging.dir().join("templates"), "not a folder").expect("blocker");
        assert!(!w.write("templates/a.yaml", b"a", MODE_FILE));
        assert!(!w.write("templates/b.yaml", b"b", MODE_FILE));
        let staged = w.finish();
        let (path, _, _) = staged.error.clone().expect("an error");
        assert_eq!(path, PathBuf::from("templates/a.yaml"), "the first failure");
        assert!(staged.files.is_empty(), "nothing after it");
        let mut b = Bundle::default();
        b.add("templates/a.yaml", "a", MODE_FILE);
        let err = b.write_staged(staging, &staged).expect_err("fails");
        assert!(err.to_string().contains("a.yaml"), "{err}");
        assert!(!out.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("ls").count(),
            0,
            "no partial output"
        );
    }

    #[test]
    fn redaction_is_a_short_digest() {
        let r = redact(b"secret");
        assert!(
            r.starts_with("<redacted sha256:") && r.ends_with('>'),
            "{r}"
        );
        assert_eq!(r.len(), "<redacted sha256:>".len() + 8);
        assert!(!bundle().listing().contains("c2VjcmV0"));
    }

    #[test]
    fn writes_modes_and_refuses_a_non_empty_folder() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("chart");
        bundle().write(&out, false).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &str| {
                std::fs::metadata(out.join(p))
                    .expect("meta")
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(mode("Chart.yaml"), 0o644);
            assert_eq!(mode("templates/s.yaml"), 0o600);
        }
        let err = bundle().write(&out, false).expect_err("refused");
        assert!(matches!(err, Error::OutputExists { .. }), "{err}");
        std::fs::write(out.join("stale.txt"), "x").expect("stale");
        bundle().write(&out, true).expect("forced");
        assert!(!out.join("stale.txt").exists(), "replaced, not merged");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("e").file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temp folders left: {leftovers:?}");
    }

    #[test]
    fn an_empty_folder_is_filled() {
        let dir = tempfile::tempdir().expect("tmp");
        bundle()
            .write(dir.path(), false)
            .expect("empty folder accepted");
        assert!(dir.path().join("Chart.yaml").exists());
    }

    #[test]
    fn large_bundles_are_written_in_parallel_with_exact_modes() {
        let mut b = Bundle::default();
        for i in 0..200 {
            let mode = if i % 7 == 0 { MODE_SECRET } else { MODE_FILE };
            b.add(format!("templates/f{i:03}.yaml"), format!("n: {i}\n"), mode);
        }
        b.add("Chart.yaml", "name: x\n", MODE_FILE);
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("chart");
        b.write(&out, false).expect("write");
        for (rel, file) in &b.files {
            let path = out.join(rel);
            assert_eq!(std::fs::read(&path).expect("read"), file.bytes, "{rel:?}");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
                assert_eq!(mode, file.mode, "{rel:?}");
            }
        }
    }
}
