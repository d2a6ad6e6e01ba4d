//! `cargo xtask logs FUNCTION` on an emulated environment: the local API server's log file of
//! the function (`build/<env>/functions/<fn>/output.log`, the process's stdout and stderr:
//! the same JSON lines CloudWatch holds on AWS), with `--since`, `--filter` and `--follow`
//! behaving as they do against CloudWatch.
//!
//! `--since` uses each line's `timestamp` field (RFC 3339, as the functions' JSON logs write
//! it); a line without one (a panic message, the runtime's own text) belongs with the line
//! before it. `--filter` supports the unstructured subset of CloudWatch's filter pattern
//! syntax, see [`Filter`]; JSON (`{ $.level = ... }`) and space-delimited (`[...]`) patterns
//! are refused with a clear error rather than matched differently.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::base::env::Env;
use crate::base::process;
use crate::services::invoke::local_log_file;

/// How often `--follow` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// Prints `function`'s local log lines of the last `since` that match `filter` (CloudWatch's
/// term syntax, see [`Filter`]); with `follow`, keeps printing new ones until interrupted.
pub fn local(
    env: &Env,
    function: &str,
    filter: Option<&str>,
    since: Duration,
    follow: bool,
) -> Result<()> {
    let filter = Filter::parse(filter.unwrap_or(""))?;
    let path = local_log_file(env, function);
    let start_ms = now_ms() - since.as_millis() as i64;
    let mut reader = Reader {
        offset: 0,
        partial: String::new(),
        last_ms: 0,
    };
    loop {
        for (ts, line) in reader.read_new(&path)? {
            if ts >= start_ms && filter.matches(&line) {
                print_line(env, ts, &line);
            }
        }
        if !follow {
            if !path.exists() {
                eprintln!(
                    "no log yet at {}: the function has not run on the local API server",
                    process::display_path(&env.root, &path)
                );
            }
            return Ok(());
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

fn print_line(env: &Env, ts: i64, line: &str) {
    if env.json {
        println!(
            "{}",
            serde_json::json!({ "timestamp": ts, "stream": "local", "message": line })
        );
    } else {
        println!("{} {line}", format_ts(ts));
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Reads a growing log file line by line, remembering where it stopped.
struct Reader {
    offset: u64,
    /// The start of a line whose end is not written yet.
    partial: String,
    /// The timestamp of the last line that had one.
    last_ms: i64,
}

impl Reader {
    /// The complete lines written since the last call, each with its timestamp (epoch ms). A
    /// file that shrank was replaced: it is read from its start.
    fn read_new(&mut self, path: &Path) -> Result<Vec<(i64, String)>> {
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            self.offset = 0;
            self.partial.clear();
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", path.display()))?;
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let Some(end) = self.partial.rfind('\n') else {
            return Ok(Vec::new());
        };
        let complete: String = self.partial.drain(..=end).collect();
        Ok(complete
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                if let Some(ms) = timestamp_ms(line) {
                    self.last_ms = ms;
                }
                (self.last_ms, line.to_owned())
            })
            .collect())
    }
}

/// The `timestamp` field of a JSON log line, in epoch milliseconds.
fn timestamp_ms(line: &str) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let time = humantime::parse_rfc3339_weak(value.get("timestamp")?.as_str()?).ok()?;
    Some(time.duration_since(UNIX_EPOCH).ok()?.as_millis() as i64)
}

/// The unstructured part of CloudWatch Logs' filter pattern syntax, case-sensitive as there:
/// `ERROR` (the term appears), `ERROR timeout` (both appear), `"disk full"` (the phrase
/// appears), `?ERROR ?WARN` (at least one of them appears), `ERROR -retry` (ERROR appears,
/// retry does not). An empty pattern (or `""`) matches every line.
#[derive(Debug, Default, PartialEq)]
pub struct Filter {
    all: Vec<String>,
    any: Vec<String>,
    none: Vec<String>,
}

impl Filter {
    pub fn parse(pattern: &str) -> Result<Filter> {
        let trimmed = pattern.trim();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            bail!(
                "`--filter {pattern}`: JSON (`{{ ... }}`) and space-delimited (`[ ... ]`) \
                 patterns are only supported against CloudWatch; locally use terms, \"quoted \
                 phrases\", ?alternatives and -exclusions"
            );
        }
        let mut filter = Filter::default();
        let mut rest = trimmed;
        while !rest.is_empty() {
            let (prefix, after) = match rest.as_bytes()[0] {
                b'?' => (Some('?'), &rest[1..]),
                b'-' => (Some('-'), &rest[1..]),
                _ => (None, rest),
            };
            let (term, next) = if let Some(quoted) = after.strip_prefix('"') {
                let Some(end) = quoted.find('"') else {
                    bail!("`--filter {pattern}`: a quote is not closed");
                };
                (&quoted[..end], &quoted[end + 1..])
            } else {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (&after[..end], &after[end..])
            };
            if !term.is_empty() {
                let list = match prefix {
                    Some('?') => &mut filter.any,
                    Some(_) => &mut filter.none,
                    None => &mut filter.all,
                };
                list.push(term.to_owned());
            }
            rest = next.trim_start();
        }
        Ok(filter)
    }

    pub fn matches(&self, line: &str) -> bool {
        self.all.iter().all(|t| line.contains(t.as_str()))
            && !self.none.iter().any(|t| line.contains(t.as_str()))
            && (self.any.is_empty() || self.any.iter().any(|t| line.contains(t.as_str())))
    }
}

/// Milliseconds since the epoch as `HH:MM:SS.mmm` UTC (the date is rarely
/// what one is looking for in a tail).
pub fn format_ts(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let day = secs.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day / 3600,
        day % 3600 / 60,
        day % 60,
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_patterns_match_like_cloudwatch_terms() {
        let line = r#"{"level":"ERROR","message":"disk full on /tmp"}"#;
        let matches = |p: &str| Filter::parse(p).unwrap().matches(line);
        assert!(matches(""));
        assert!(matches("\"\""));
        assert!(matches("ERROR"));
        assert!(!matches("error"), "case-sensitive");
        assert!(matches("ERROR disk"));
        assert!(!matches("ERROR timeout"));
        assert!(matches("\"disk full\""));
        assert!(!matches("\"full disk\""));
        assert!(matches("?WARN ?ERROR"));
        assert!(!matches("?WARN ?INFO"));
        assert!(matches("ERROR -timeout"));
        assert!(!matches("ERROR -disk"));
        assert!(Filter::parse("{ $.level = \"ERROR\" }").is_err());
        assert!(Filter::parse("\"open").is_err());
    }

    #[test]
    fn lines_take_their_timestamp_or_the_one_before() {
        let dir = std::env::temp_dir().join(format!("xtask-local-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("output.log");
        std::fs::write(
            &path,
            "{\"timestamp\":\"2026-01-01T00:00:01.5Z\",\"message\":\"a\"}\nthread panicked\n{\"msg\":",
        )
        .unwrap();
        let mut reader = Reader {
            offset: 0,
            partial: String::new(),
            last_ms: 0,
        };
        let lines = reader.read_new(&path).unwrap();
        let base = 1_767_225_601_500;
        assert_eq!(lines.len(), 2, "the unfinished line waits: {lines:?}");
        assert_eq!(lines[0].0, base);
        assert_eq!(lines[1], (base, "thread panicked".to_owned()));
        std::fs::write(&path, "short\n").unwrap();
        let lines = reader.read_new(&path).unwrap();
        assert_eq!(
            lines,
            vec![(base, "short".to_owned())],
            "a replaced file is read anew"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
