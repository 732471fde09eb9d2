//! DCASE TSV readers for evaluation, with errors that name the file and the line (1-based, the
//! header is line 1).
//!
//! - Strong labels (reference or predictions): a header naming the columns `filename`, `onset`,
//!   `offset`, `event_label` (any order, other columns ignored), then one event per line. A line
//!   whose onset, offset and label are all empty names a file without events (DESED writes those).
//! - Durations: header with `filename` and `duration`.
//! - Score tables (sed_scores_eval's `write_sed_scores`): one `<file id>.tsv` per file, header
//!   `onset offset <class> <class> …`, one row per frame; each frame's onset equals the previous
//!   frame's offset.
//!
//! Files are matched by id: the file name without its last extension (`a.wav` and `a` are the
//! same file; `a.b.wav` is `a.b`), as sed_scores_eval does. Blank lines are skipped; `\r\n` line
//! ends are accepted; fields are trimmed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{Ev, GroundTruth, ScoreTable};
use crate::sed::{Result, SedError};

/// The file id of a file name: without its last extension.
pub fn file_id(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((stem, _)) => stem,
        None => name,
    }
}

/// One line of a strong-label TSV.
#[derive(Debug, Clone, PartialEq)]
pub struct TsvEvent {
    /// File id (extension removed).
    pub file: String,
    pub onset: f64,
    pub offset: f64,
    pub label: String,
    /// 1-based line number in its file.
    pub line: usize,
}

/// A strong-label TSV: the events, and the ids of files listed without events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StrongTsv {
    pub path: PathBuf,
    pub events: Vec<TsvEvent>,
    pub empty_files: Vec<String>,
}

fn bad(path: &Path, line: usize, msg: impl std::fmt::Display) -> SedError {
    SedError::Invalid(format!("{}:{line}: {msg}", path.display()))
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| SedError::Invalid(format!("{}: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|e| SedError::Invalid(format!("{}: not UTF-8 text ({e})", path.display())))
}

/// Non-blank lines with their 1-based numbers, fields split on tabs and trimmed.
fn rows(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| (i + 1, l.split('\t').map(str::trim).collect()))
}

/// Header columns → index of each wanted column.
fn columns(path: &Path, header: Option<(usize, Vec<&str>)>, want: &[&str]) -> Result<Vec<usize>> {
    let (line, cols) = header.ok_or_else(|| SedError::Invalid(format!("{}: empty file (a header line is required)", path.display())))?;
    want.iter()
        .map(|w| {
            cols.iter()
                .position(|c| c == w)
                .ok_or_else(|| bad(path, line, format!("the header has no '{w}' column (columns: {}; expected {})", cols.join(", "), want.join(", "))))
        })
        .collect()
}

fn number(path: &Path, line: usize, what: &str, s: &str) -> Result<f64> {
    let v: f64 = s.parse().map_err(|_| bad(path, line, format!("{what} '{s}' is not a number")))?;
    if !v.is_finite() {
        return Err(bad(path, line, format!("{what} is {s}")));
    }
    Ok(v)
}

/// Reads a strong-label TSV (reference or predictions). Errors: missing columns, a short line, a
/// time that is not a finite number, a negative onset, offset < onset.
pub fn read_strong(path: &Path) -> Result<StrongTsv> {
    parse_strong(path, &read_text(path)?)
}

/// [`read_strong`] of the text of `path` (named in errors).
pub fn parse_strong(path: &Path, text: &str) -> Result<StrongTsv> {
    let mut it = rows(text);
    let idx = columns(path, it.next(), &["filename", "onset", "offset", "event_label"])?;
    let mut out = StrongTsv { path: path.to_path_buf(), ..Default::default() };
    for (line, f) in it {
        let get = |k: usize| f.get(idx[k]).copied().unwrap_or("");
        let (name, on, off, label) = (get(0), get(1), get(2), get(3));
        if name.is_empty() {
            return Err(bad(path, line, "empty filename"));
        }
        let file = file_id(name).to_string();
        if on.is_empty() && off.is_empty() && label.is_empty() {
            out.empty_files.push(file);
            continue;
        }
        if label.is_empty() {
            return Err(bad(path, line, format!("event of '{name}' without an event_label")));
        }
        let onset = number(path, line, "onset", on)?;
        let offset = number(path, line, "offset", off)?;
        if onset < 0.0 {
            return Err(bad(path, line, format!("negative onset {onset}")));
        }
        if offset < onset {
            return Err(bad(path, line, format!("offset {offset} is before onset {onset}")));
        }
        out.events.push(TsvEvent { file, onset, offset, label: label.to_string(), line });
    }
    Ok(out)
}

/// Reads a durations TSV: (file id, seconds) in file order. Errors: missing columns, a duration that
/// is not a positive finite number, a file listed twice.
pub fn read_durations(path: &Path) -> Result<Vec<(String, f64)>> {
    parse_durations(path, &read_text(path)?)
}

/// [`read_durations`] of the text of `path` (named in errors).
pub fn parse_durations(path: &Path, text: &str) -> Result<Vec<(String, f64)>> {
    let mut it = rows(text);
    let idx = columns(path, it.next(), &["filename", "duration"])?;
    let mut out: Vec<(String, f64)> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, f) in it {
        let name = f.get(idx[0]).copied().unwrap_or("");
        if name.is_empty() {
            return Err(bad(path, line, "empty filename"));
        }
        let d = number(path, line, "duration", f.get(idx[1]).copied().unwrap_or(""))?;
        if d <= 0.0 {
            return Err(bad(path, line, format!("duration {d} of '{name}' is not positive")));
        }
        let id = file_id(name).to_string();
        if let Some(prev) = seen.insert(id.clone(), line) {
            return Err(bad(path, line, format!("'{id}' is listed twice (also on line {prev})")));
        }
        out.push((id, d));
    }
    if out.is_empty() {
        return Err(SedError::Invalid(format!("{}: no files listed", path.display())));
    }
    Ok(out)
}

/// The evaluation set from a reference TSV and a durations TSV. Classes: `classes` when given
/// (every reference label must be one of them), else the union of the reference labels and
/// `extra_labels` (the predicted ones), sorted by name. Every reference file must be in the
/// durations; a reference event may end after its file's duration (sed_eval and sed_scores_eval
/// accept it), a warning is returned for each such event.
pub fn ground_truth(
    reference: &StrongTsv,
    durations: &[(String, f64)],
    durations_path: &Path,
    classes: Option<&[String]>,
    extra_labels: &[&str],
) -> Result<(GroundTruth, Vec<String>)> {
    let classes: Vec<String> = match classes {
        Some(c) => c.to_vec(),
        None => {
            let mut c: Vec<String> = reference.events.iter().map(|e| e.label.clone()).chain(extra_labels.iter().map(|s| s.to_string())).collect();
            c.sort();
            c.dedup();
            c
        }
    };
    let files: Vec<String> = durations.iter().map(|(f, _)| f.clone()).collect();
    let secs: Vec<f64> = durations.iter().map(|(_, d)| *d).collect();
    let (events, warnings) = place(reference, &files, &secs, &classes, Some(durations_path))?;
    Ok((GroundTruth { files, durations: secs, classes, events }, warnings))
}

/// Predicted events per file of `gt` (in TSV order). A file that is not in the durations or a
/// label that is not a class is an error naming the line.
pub fn per_file(gt: &GroundTruth, pred: &StrongTsv) -> Result<Vec<Vec<Ev>>> {
    Ok(place(pred, &gt.files, &gt.durations, &gt.classes, None)?.0)
}

/// The events of `tsv` per file of `files` (in TSV order), classes as indices into `classes`. A
/// file (listed with or without events) that is not one of `files`, or a label that is not a
/// class, is an error naming the line (and `durations_path` when given); an event ending after
/// its file's duration is a warning.
fn place(tsv: &StrongTsv, files: &[String], durations: &[f64], classes: &[String], durations_path: Option<&Path>) -> Result<(Vec<Vec<Ev>>, Vec<String>)> {
    let class_of: HashMap<&str, usize> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    let file_of: HashMap<&str, usize> = files.iter().enumerate().map(|(i, f)| (f.as_str(), i)).collect();
    let where_ = durations_path.map_or(String::new(), |p| format!(" {}", p.display()));
    for f in &tsv.empty_files {
        if !file_of.contains_key(f.as_str()) {
            return Err(SedError::Invalid(format!("{}: file '{f}' is not in the durations file{where_}", tsv.path.display())));
        }
    }
    let mut events = vec![Vec::new(); files.len()];
    let mut warnings = Vec::new();
    for e in &tsv.events {
        let i = *file_of.get(e.file.as_str()).ok_or_else(|| bad(&tsv.path, e.line, format!("file '{}' is not in the durations file{where_}", e.file)))?;
        let c = *class_of
            .get(e.label.as_str())
            .ok_or_else(|| bad(&tsv.path, e.line, format!("label '{}' is not in the class list ({})", e.label, classes.join(", "))))?;
        if e.offset > durations[i] + 1e-9 {
            warnings.push(format!("{}:{}: event ends at {} s, after the file's duration {} s", tsv.path.display(), e.line, e.offset, durations[i]));
        }
        events[i].push(Ev { onset: e.onset, offset: e.offset, class: c });
    }
    Ok((events, warnings))
}

/// Plain decimals (`[-]digits[.digits]`, at most 15 significant digits) parsed exactly as
/// `str::parse::<f64>` (and Python's `float`) round them: the digits form an integer m < 2⁵³, exactly a
/// f64, and m / 10^k with k ≤ 22 is one correctly rounded division of two exact values (Clinger's
/// fast path). Anything else (exponents, more digits, `nan`, `inf`) → None, for the general parser.
/// Score tables hold ~2 million such numbers per 1000 clips; this is ~3× faster than the general path.
pub fn parse_short_decimal(s: &str) -> Option<f64> {
    parse_short_decimal_bytes(s.as_bytes())
}

fn parse_short_decimal_bytes(b: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    let (neg, b) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    if b.is_empty() {
        return None;
    }
    let (mut m, mut digits, mut frac, mut seen_dot, mut any) = (0u64, 0usize, 0usize, false, false);
    for &c in b {
        match c {
            b'0'..=b'9' => {
                any = true;
                if m == 0 && c == b'0' {
                    // Leading zeros add no significant digit.
                } else {
                    digits += 1;
                }
                m = m * 10 + (c - b'0') as u64;
                if seen_dot {
                    frac += 1;
                }
                if digits > 15 || frac > 15 {
                    return None;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => return None,
        }
    }
    if !any {
        return None;
    }
    let v = m as f64 / POW10[frac];
    Some(if neg { -v } else { v })
}

/// One score table file: its timestamps, class names (header order) and scores (frames × classes).
pub fn read_score_table(path: &Path) -> Result<(Vec<String>, ScoreTable)> {
    parse_score_table(path, &read_text(path)?)
}

/// [`read_score_table`] of the text of `path` (named in errors).
pub fn parse_score_table(path: &Path, text: &str) -> Result<(Vec<String>, ScoreTable)> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (hline, header) = lines.next().ok_or_else(|| SedError::Invalid(format!("{}: empty score table (a header line is required)", path.display())))?;
    let header: Vec<&str> = header.split('\t').map(str::trim).collect();
    if header.len() < 3 || header[0] != "onset" || header[1] != "offset" {
        return Err(bad(path, hline + 1, format!("the header must be 'onset offset <class>…', got '{}'", header.join(" "))));
    }
    let classes: Vec<String> = header[2..].iter().map(|s| s.to_string()).collect();
    let k = classes.len();
    let mut ts: Vec<f64> = Vec::new();
    let mut scores: Vec<f64> = Vec::with_capacity(text.len() / 8);
    let mut last_off = f64::NAN;
    let mut row: Vec<f64> = Vec::with_capacity(k + 2);
    for (i, l) in lines {
        let line = i + 1;
        // Fast path: fields split on tabs as bytes and parsed in place; messages only on an error.
        row.clear();
        for (j, f) in l.as_bytes().split(|&c| c == b'\t').enumerate() {
            let v = match parse_short_decimal_bytes(f) {
                Some(v) => v,
                None => {
                    let f = std::str::from_utf8(f).unwrap_or("").trim();
                    let what = || match j {
                        0 => "onset".to_string(),
                        1 => "offset".to_string(),
                        _ => format!("score of '{}'", classes.get(j - 2).map_or("?", |c| c.as_str())),
                    };
                    let v: f64 = f.parse().map_err(|_| bad(path, line, format!("{} '{f}' is not a number", what())))?;
                    if !v.is_finite() {
                        return Err(bad(path, line, format!("{} is {f}", what())));
                    }
                    v
                }
            };
            row.push(v);
        }
        if row.len() != k + 2 {
            return Err(bad(path, line, format!("{} fields, the header has {}", row.len(), k + 2)));
        }
        let (on, off) = (row[0], row[1]);
        scores.extend_from_slice(&row[2..]);
        if !(off > on) {
            return Err(bad(path, line, format!("frame offset {off} is not after its onset {on}")));
        }
        if !ts.is_empty() && on != last_off {
            return Err(bad(path, line, format!("frame onset {on} is not the previous frame's offset {last_off}")));
        }
        if ts.is_empty() {
            ts.push(on);
        }
        ts.push(off);
        last_off = off;
    }
    if ts.is_empty() {
        return Err(SedError::Invalid(format!("{}: a score table without frames", path.display())));
    }
    Ok((classes, ScoreTable::new(ts, k, scores).map_err(|e| SedError::Invalid(format!("{}: {e}", path.display())))?))
}

/// The score tables of every file of a set from `dir/<file id>.tsv`. The class list is the first
/// table's header unless `classes` is given; every table must have the same classes (in any
/// order: columns are reordered to the class list). Errors: a file of the durations without a
/// table, a table for a file not in the durations, a table with other classes.
pub fn read_score_dir(dir: &Path, files: &[String], classes: Option<&[String]>) -> Result<(Vec<String>, Vec<ScoreTable>)> {
    let mut on_disk: Vec<String> = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| SedError::Invalid(format!("{}: {e}", dir.display())))?;
    for entry in rd {
        let entry = entry.map_err(|e| SedError::Invalid(format!("{}: {e}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".tsv") {
            on_disk.push(id.to_string());
        }
    }
    let wanted: std::collections::HashSet<&str> = files.iter().map(String::as_str).collect();
    on_disk.sort();
    if let Some(extra) = on_disk.iter().find(|id| !wanted.contains(id.as_str())) {
        return Err(SedError::Invalid(format!("{}: score table '{extra}.tsv' is for a file that is not in the durations file", dir.display())));
    }
    let have: std::collections::HashSet<&str> = on_disk.iter().map(String::as_str).collect();
    if let Some(missing) = files.iter().find(|f| !have.contains(f.as_str())) {
        return Err(SedError::Invalid(format!("{}: no score table '{missing}.tsv' for a file of the durations file", dir.display())));
    }
    use rayon::prelude::*;
    let tables: Vec<(Vec<String>, ScoreTable)> = files.par_iter().map(|f| read_score_table(&dir.join(format!("{f}.tsv")))).collect::<Result<_>>()?;
    let classes: Vec<String> = match classes {
        Some(c) => c.to_vec(),
        None => tables.first().map(|t| t.0.clone()).unwrap_or_default(),
    };
    let out = tables
        .into_iter()
        .zip(files)
        .map(|((names, t), f)| {
            let path = dir.join(format!("{f}.tsv"));
            let mut sorted_names = names.clone();
            sorted_names.sort();
            let mut sorted_classes = classes.clone();
            sorted_classes.sort();
            if sorted_names != sorted_classes {
                return Err(SedError::Invalid(format!("{}: classes {} differ from the class list {}", path.display(), names.join(","), classes.join(","))));
            }
            if names == classes {
                return Ok(t);
            }
            let perm: Vec<usize> = classes.iter().map(|c| names.iter().position(|n| n == c).expect("same set")).collect();
            let k = classes.len();
            let scores = (0..t.frames()).flat_map(|fr| perm.iter().map(move |&p| (fr, p))).map(|(fr, p)| t.scores[fr * k + p]).collect();
            ScoreTable::new(t.timestamps, k, scores)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((classes, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file `name` holding `text` in a fresh temporary directory, which is removed when this drops
    /// (also when the test fails). Derefs to the file's path.
    struct TmpFile {
        path: PathBuf,
        _dir: tempfile::TempDir,
    }

    impl std::ops::Deref for TmpFile {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.path
        }
    }

    impl AsRef<Path> for TmpFile {
        fn as_ref(&self) -> &Path {
            &self.path
        }
    }

    fn tmp(name: &str, text: &str) -> TmpFile {
        let dir = tempfile::Builder::new().prefix("aural-metrics-io-").tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        TmpFile { path: p, _dir: dir }
    }

    #[test]
    fn short_decimals_parse_as_the_general_parser() {
        // Odd forms: equal to the general parser where taken, None (general parser) otherwise.
        for c in [
            "0",
            "0.0",
            "1",
            "-0.5",
            "0.1",
            "0.30000000000000004",
            "1234567890123456",
            "0.064103",
            ".5",
            "5.",
            "1e-3",
            "nan",
            "inf",
            "",
            "-",
            ".",
            "1.2.3",
            "00012.5000",
        ] {
            if let Some(v) = parse_short_decimal(c) {
                assert_eq!(v.to_bits(), c.parse::<f64>().unwrap().to_bits(), "{c}");
            }
        }
        // Random plain decimals of 1–15 digits: always the fast path, bit-equal.
        let mut x = 0x2545F4914F6CDD1Du64;
        for _ in 0..20000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = (x % 15) as usize + 1;
            let dot = (x >> 8) as usize % (digits + 1);
            let mut c: String = (0..digits).map(|i| char::from(b'0' + ((x >> (i * 4 % 60)) % 10) as u8)).collect();
            c.insert(dot, '.');
            let v = parse_short_decimal(&c).unwrap_or_else(|| panic!("{c} should take the fast path"));
            assert_eq!(v.to_bits(), c.parse::<f64>().unwrap().to_bits(), "{c}");
        }
        assert_eq!(parse_short_decimal("0.0640"), Some(0.064));
        assert_eq!(parse_short_decimal("1e3"), None);
    }

    #[test]
    fn file_ids() {
        assert_eq!(file_id("a.wav"), "a");
        assert_eq!(file_id("a"), "a");
        assert_eq!(file_id("Y-abc_1.000_11.000.wav"), "Y-abc_1.000_11.000");
    }

    #[test]
    fn strong_tsv_lines_and_errors() {
        let p = tmp("ref.tsv", "filename\tonset\toffset\tevent_label\r\na.wav\t0.5\t1.0\tDog\r\n\r\nb.wav\t\t\t\nc\t1\t2\tCat\n");
        let s = read_strong(&p).unwrap();
        assert_eq!(s.events.len(), 2);
        assert_eq!((s.events[0].file.as_str(), s.events[0].onset, s.events[0].offset, s.events[0].line), ("a", 0.5, 1.0, 2));
        assert_eq!(s.events[1].line, 5);
        assert_eq!(s.empty_files, vec!["b".to_string()]);
        for (text, want) in [
            ("filename\tonset\toffset\n", "no 'event_label' column"),
            ("filename\tonset\toffset\tevent_label\na.wav\t2\t1\tDog\n", ":2: offset 1 is before onset 2"),
            ("filename\tonset\toffset\tevent_label\na.wav\t0\tx\tDog\n", ":2: offset 'x' is not a number"),
            ("filename\tonset\toffset\tevent_label\na.wav\t0\t1\n", ":2: event of 'a.wav' without an event_label"),
            ("filename\tonset\toffset\tevent_label\na.wav\tnan\t1\tDog\n", ":2: onset is nan"),
            ("", "empty file"),
        ] {
            let e = read_strong(&tmp("bad.tsv", text)).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("bad.tsv"), "{e}");
        }
    }

    #[test]
    fn durations_and_ground_truth() {
        let dp = tmp("dur.tsv", "filename\tduration\na.wav\t10\nb.wav\t5.5\n");
        let d = read_durations(&dp).unwrap();
        assert_eq!(d, vec![("a".to_string(), 10.0), ("b".to_string(), 5.5)]);
        assert!(read_durations(&tmp("d2.tsv", "filename\tduration\na.wav\t10\na.wav\t3\n"))
            .unwrap_err()
            .to_string()
            .contains(":3: 'a' is listed twice (also on line 2)"));
        assert!(read_durations(&tmp("d3.tsv", "filename\tduration\na.wav\t0\n")).unwrap_err().to_string().contains("not positive"));
        let r = read_strong(&tmp("r.tsv", "filename\tonset\toffset\tevent_label\nb.wav\t1\t2\tDog\na.wav\t0\t11\tCat\n")).unwrap();
        let (gt, warn) = ground_truth(&r, &d, &dp, None, &["Bird"]).unwrap();
        assert_eq!(gt.classes, vec!["Bird", "Cat", "Dog"]);
        assert_eq!(gt.events[0], vec![Ev { onset: 0.0, offset: 11.0, class: 1 }]);
        assert_eq!(gt.events[1], vec![Ev { onset: 1.0, offset: 2.0, class: 2 }]);
        assert_eq!(warn.len(), 1);
        let cls = vec!["Dog".to_string()];
        assert!(ground_truth(&r, &d, &dp, Some(&cls), &[]).unwrap_err().to_string().contains(":3: label 'Cat' is not in the class list (Dog)"));
        let r2 = read_strong(&tmp("r2.tsv", "filename\tonset\toffset\tevent_label\nz.wav\t1\t2\tDog\n")).unwrap();
        assert!(ground_truth(&r2, &d, &dp, None, &[]).unwrap_err().to_string().contains("r2.tsv:2: file 'z' is not in the durations file"));
        let p = read_strong(&tmp("p.tsv", "filename\tonset\toffset\tevent_label\nq.wav\t1\t2\tDog\n")).unwrap();
        assert!(per_file(&gt, &p).unwrap_err().to_string().contains("p.tsv:2: file 'q' is not in the durations file"));
    }

    #[test]
    fn score_tables() {
        let tmp = tempfile::Builder::new().prefix("aural-metrics-scores-").tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("a.tsv"), "onset\toffset\tDog\tCat\n0.0\t0.5\t0.1\t0.9\n0.5\t1.0\t0.2\t0.8\n").unwrap();
        std::fs::write(d.join("b.tsv"), "onset\toffset\tCat\tDog\n0.0\t1.0\t0.3\t0.4\n").unwrap();
        let files = vec!["a".to_string(), "b".to_string()];
        let (cls, t) = read_score_dir(&d, &files, None).unwrap();
        assert_eq!(cls, vec!["Dog", "Cat"]);
        assert_eq!(t[0].timestamps, vec![0.0, 0.5, 1.0]);
        assert_eq!(t[1].scores, vec![0.4, 0.3], "columns reordered to the class list");
        assert!(read_score_dir(&d, &files[..1], None).unwrap_err().to_string().contains("'b.tsv' is for a file that is not in the durations"));
        let three = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert!(read_score_dir(&d, &three, None).unwrap_err().to_string().contains("no score table 'c.tsv'"));
        std::fs::write(d.join("b.tsv"), "onset\toffset\tCat\tDog\n0.0\t1.0\t0.3\n").unwrap();
        assert!(read_score_dir(&d, &files, None).unwrap_err().to_string().contains("b.tsv:2: 3 fields, the header has 4"));
        std::fs::write(d.join("b.tsv"), "onset\toffset\tCat\tDog\n0.0\t1.0\t0.3\t0.1\n1.5\t2.0\t0.3\t0.1\n").unwrap();
        assert!(read_score_dir(&d, &files, None).unwrap_err().to_string().contains("b.tsv:3: frame onset 1.5 is not the previous frame's offset 1"));
    }
}
