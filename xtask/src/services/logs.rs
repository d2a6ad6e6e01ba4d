//! `cargo xtask logs FUNCTION` and `logs --all`: the functions' JSON log lines (and with
//! `--all` the API's access log), with `--since`, `--filter` and `--follow`. Locally they are
//! the local API server's files: each function's `build/<env>/functions/<fn>/output.log` (the
//! process's stdout and stderr: the same JSON lines CloudWatch holds on AWS) and its own
//! stdout, `build/<env>/logs/local-api.log` (one access-log line per request). On AWS they are
//! the log groups `/aws/lambda/<function>` and `/aws/apigateway/<prefix>api`, read with
//! FilterLogEvents and merged by time.
//!
//! `--since` uses each line's `timestamp` field (RFC 3339, as the functions' JSON logs write
//! it) or the access log's `requestTimeEpoch` (epoch ms); a line without one (a panic
//! message, the runtime's own text) belongs with the line before it. `--filter` supports the
//! unstructured subset of CloudWatch's filter pattern syntax locally, see [`Filter`]; JSON
//! (`{ $.level = ... }`) and space-delimited (`[...]`) patterns are refused with a clear error
//! rather than matched differently.

use std::collections::HashSet;
use std::io::{IsTerminal as _, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::base::env::{self, Env};
use crate::base::process;
use crate::services::invoke::local_log_file;
use crate::services::local::api_log_file;
use crate::services::target;

/// How often `--follow` looks for new lines locally.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// The name the access log's lines are prefixed with: the API's own AWS name suffix
/// (`<prefix>api`, as infra names it).
pub const ACCESS_LOG: &str = "api";

/// One log to read: who wrote it (a function, or [`ACCESS_LOG`]) and where it is locally.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub path: PathBuf,
}

/// The local log of one function.
pub fn function_source(env: &Env, function: &str) -> Source {
    Source {
        name: function.to_owned(),
        path: local_log_file(env, function),
    }
}

/// Every function's local log and the local API server's (its access log).
pub fn all_sources(env: &Env) -> Vec<Source> {
    let mut sources: Vec<Source> = env::functions()
        .iter()
        .map(|f| function_source(env, f))
        .collect();
    sources.push(Source {
        name: ACCESS_LOG.to_owned(),
        path: api_log_file(env),
    });
    sources
}

/// The CloudWatch log groups of the same logs on AWS: `(name, log group)`.
pub fn log_groups(env: &Env, sources: &[Source]) -> Vec<(String, String)> {
    sources
        .iter()
        .map(|source| {
            let group = if source.name == ACCESS_LOG {
                // infra's `api` construct: `/aws/apigateway/<prefix>api`.
                format!("/aws/apigateway/{}", env.function_name(ACCESS_LOG))
            } else {
                format!("/aws/lambda/{}", env.function_name(&source.name))
            };
            (source.name.clone(), group)
        })
        .collect()
}

/// Prints the local log lines of `sources` of the last `since` that match `filter`
/// (CloudWatch's term syntax, see [`Filter`]), merged by time; with `follow`, keeps printing
/// new ones until interrupted. With several sources each line is prefixed with its source.
pub fn local(
    env: &Env,
    sources: &[Source],
    filter: Option<&str>,
    since: Duration,
    follow: bool,
) -> Result<()> {
    let filter = Filter::parse(filter.unwrap_or(""))?;
    let start_ms = now_ms() - since.as_millis() as i64;
    let printer = Printer::new(env, sources.iter().map(|s| s.name.as_str()).collect());
    let mut readers: Vec<Reader> = sources.iter().map(|_| Reader::default()).collect();
    loop {
        let mut batch = Vec::new();
        for (index, (source, reader)) in sources.iter().zip(&mut readers).enumerate() {
            for (ts, line) in reader.read_new(&source.path)? {
                if ts >= start_ms && filter.matches(&line) {
                    batch.push((ts, index, line));
                }
            }
        }
        // Stable: lines of one source with the same time keep their order.
        batch.sort_by_key(|(ts, _, _)| *ts);
        for (ts, index, line) in batch {
            printer.print(&sources[index].name, ts, &line);
        }
        if !follow {
            if sources.iter().all(|s| !s.path.exists()) {
                let names: Vec<String> = sources
                    .iter()
                    .map(|s| process::display_path(&env.root, &s.path))
                    .collect();
                eprintln!(
                    "no log yet at {}: nothing has run on the local API server",
                    names.join(", ")
                );
            }
            return Ok(());
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// Prints the CloudWatch events of `groups` (`(name, log group)`) of the last `since` that
/// match `filter` (CloudWatch's own filter pattern syntax), merged by time; with `follow`,
/// polls for new ones every 2 s until interrupted. A group that does not exist yet (a function
/// never invoked) is skipped with a note, not an error.
pub fn cloudwatch(
    env: &Env,
    groups: &[(String, String)],
    filter: Option<&str>,
    since: Duration,
    follow: bool,
) -> Result<()> {
    let (target, _moto) = target::target(env)?;
    let printer = Printer::new(env, groups.iter().map(|(name, _)| name.as_str()).collect());
    let mut start = now_ms() - since.as_millis() as i64;
    process::block_on(async {
        let config = target.sdk_config().await;
        let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
        let mut seen: HashSet<String> = HashSet::new();
        let mut missing: HashSet<String> = HashSet::new();
        loop {
            let batch =
                merged_events(&logs, groups, start, filter, &mut seen, &mut missing).await?;
            let newest = batch.iter().map(|(ts, _, _)| *ts).max().unwrap_or(start);
            for (ts, name, message) in batch {
                printer.print(&name, ts, message.trim_end());
            }
            if !follow {
                return Ok(());
            }
            // Events can arrive late with older timestamps; overlap a little and rely on
            // `seen` to print each once.
            start = newest.saturating_sub(5_000).max(start);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    })
}

/// The events of every group from `start_ms` matching `filter` that are not in `seen`, merged
/// by time, each with its group's name. A group that does not exist is noted once (in
/// `missing`) and skipped.
async fn merged_events(
    logs: &aws_sdk_cloudwatchlogs::Client,
    groups: &[(String, String)],
    start_ms: i64,
    filter: Option<&str>,
    seen: &mut HashSet<String>,
    missing: &mut HashSet<String>,
) -> Result<Vec<(i64, String, String)>> {
    let mut batch = Vec::new();
    for (name, group) in groups {
        let events = match filter_events(logs, group, start_ms, filter).await {
            Ok(events) => events,
            Err(FilterError::NoGroup) => {
                if missing.insert(group.clone()) {
                    eprintln!("no log group {group} yet: {name} has not run");
                }
                continue;
            }
            Err(FilterError::Other(error)) => return Err(error),
        };
        for (id, ts, message) in events {
            if seen.insert(id) {
                batch.push((ts, name.clone(), message));
            }
        }
    }
    batch.sort_by_key(|(ts, _, _)| *ts);
    Ok(batch)
}

enum FilterError {
    NoGroup,
    Other(anyhow::Error),
}

/// Every event of `group` from `start_ms` matching `pattern`, all pages: `(id, ms, message)`.
async fn filter_events(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    start_ms: i64,
    pattern: Option<&str>,
) -> Result<Vec<(String, i64, String)>, FilterError> {
    let mut events = Vec::new();
    let mut token = None;
    loop {
        let mut request = logs
            .filter_log_events()
            .log_group_name(group)
            .start_time(start_ms);
        if let Some(pattern) = pattern {
            request = request.filter_pattern(pattern);
        }
        if let Some(t) = token.take() {
            request = request.next_token(t);
        }
        let page = match request.send().await {
            Ok(page) => page,
            Err(err) => {
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception())
                {
                    return Err(FilterError::NoGroup);
                }
                return Err(FilterError::Other(anyhow::anyhow!(
                    "reading log group {group} (FilterLogEvents): {}",
                    aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&err)
                )));
            }
        };
        for event in page.events() {
            events.push((
                event.event_id().unwrap_or_default().to_owned(),
                event.timestamp().unwrap_or_default(),
                event.message().unwrap_or_default().to_owned(),
            ));
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(events);
        }
    }
}

/// How lines are printed: `--json` objects, else `TIME line`, prefixed with the source's
/// name (padded, coloured on a terminal) when there are several.
pub struct Printer {
    json: bool,
    names: Vec<String>,
    width: usize,
    colour: bool,
}

/// ANSI colours the sources take in turn.
const COLOURS: [u8; 6] = [36, 33, 35, 32, 34, 31];

impl Printer {
    pub fn new(env: &Env, names: Vec<&str>) -> Printer {
        Printer {
            json: env.json,
            width: names.iter().map(|n| n.len()).max().unwrap_or(0),
            names: names.into_iter().map(str::to_owned).collect(),
            colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    pub fn print(&self, name: &str, ts: i64, line: &str) {
        println!("{}", self.render(name, ts, line));
    }

    fn render(&self, name: &str, ts: i64, line: &str) -> String {
        if self.json {
            return serde_json::json!({ "timestamp": ts, "source": name, "message": line })
                .to_string();
        }
        if self.names.len() <= 1 {
            return format!("{} {line}", format_ts(ts));
        }
        let padded = format!("{name:<width$}", width = self.width);
        let prefix = match self.names.iter().position(|n| n == name) {
            Some(index) if self.colour => {
                format!("\x1b[{}m{padded}\x1b[0m", COLOURS[index % COLOURS.len()])
            }
            _ => padded,
        };
        format!("{prefix} | {} {line}", format_ts(ts))
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Every line of a local log file now, each with its timestamp (epoch ms); none if the file
/// does not exist.
pub fn read_file(path: &Path) -> Result<Vec<(i64, String)>> {
    Reader::default().read_new(path)
}

/// Reads a growing log file line by line, remembering where it stopped.
#[derive(Default)]
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

/// The `timestamp` field of a JSON log line, or the access log's `requestTimeEpoch`, in epoch
/// milliseconds.
fn timestamp_ms(line: &str) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if let Some(ms) = value
        .get("requestTimeEpoch")
        .and_then(serde_json::Value::as_i64)
    {
        return Some(ms);
    }
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

    /// FilterLogEvents on moto: two functions' groups and a group never created, merged by
    /// time with their names, the missing one skipped, each event once across polls.
    #[test]
    fn cloudwatch_groups_are_merged_by_time_on_the_emulator() {
        let moto = emulator::Emulator::for_tests().unwrap();
        let env = Env::load("local", false).unwrap();
        let target = crate::base::aws::Target::emulator(&env, moto.endpoint());
        let unique = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let groups: Vec<(String, String)> = ["users", "sessions", "health"]
            .iter()
            .map(|f| (f.to_string(), format!("/aws/lambda/t{unique}-{f}")))
            .collect();
        let now = now_ms();
        process::block_on(async {
            let logs = aws_sdk_cloudwatchlogs::Client::new(&target.sdk_config().await);
            for (group, events) in [
                (&groups[0].1, vec![(now - 3000, "u1"), (now - 1000, "u2")]),
                (&groups[1].1, vec![(now - 2000, "s1")]),
            ] {
                logs.create_log_group()
                    .log_group_name(group)
                    .send()
                    .await
                    .unwrap();
                logs.create_log_stream()
                    .log_group_name(group)
                    .log_stream_name("2026/12/06/[1]abc")
                    .send()
                    .await
                    .unwrap();
                let mut request = logs
                    .put_log_events()
                    .log_group_name(group)
                    .log_stream_name("2026/12/06/[1]abc");
                for (ts, message) in events {
                    request = request.log_events(
                        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                            .timestamp(ts)
                            .message(message)
                            .build()
                            .unwrap(),
                    );
                }
                request.send().await.unwrap();
            }
            let mut seen = HashSet::new();
            let mut missing = HashSet::new();
            let batch = merged_events(&logs, &groups, now - 60_000, None, &mut seen, &mut missing)
                .await
                .unwrap();
            let order: Vec<(&str, &str)> = batch
                .iter()
                .map(|(_, name, message)| (name.as_str(), message.as_str()))
                .collect();
            assert_eq!(
                order,
                [("users", "u1"), ("sessions", "s1"), ("users", "u2")]
            );
            assert_eq!(
                missing.len(),
                1,
                "the health group does not exist: {missing:?}"
            );
            let again = merged_events(&logs, &groups, now - 60_000, None, &mut seen, &mut missing)
                .await
                .unwrap();
            assert!(again.is_empty(), "each event once: {again:?}");
        });
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
        let mut reader = Reader::default();
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
