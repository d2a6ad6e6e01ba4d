//! The API request id as an X-Ray annotation, so a trace can be found from the `x-request-id`
//! a client saw (`annotation.request_id = "..."` in the X-Ray console or `GetTraceSummaries`).
//!
//! Lambda records the function's own segment; code in the function cannot annotate that one,
//! so each request sends one subsegment of it (`request`, with the `request_id` and `route`
//! annotations) to the X-Ray daemon Lambda runs beside the function, over UDP as the X-Ray SDKs
//! do: the daemon header line, then the segment document. Nothing is sent when the invocation
//! is not sampled or no daemon is configured (`AWS_XRAY_DAEMON_ADDRESS` unset: locally).

use std::net::UdpSocket;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// The daemon protocol's header line.
const HEADER: &str = "{\"format\": \"json\", \"version\": 1}\n";

/// The parts of a Lambda trace header (`Root=1-...;Parent=...;Sampled=1`) a subsegment needs,
/// when the invocation is sampled.
pub fn sampled_parent(header: &str) -> Option<(&str, &str)> {
    let mut root = None;
    let mut parent = None;
    let mut sampled = false;
    for part in header.split(';') {
        match part.trim().split_once('=') {
            Some(("Root", value)) => root = Some(value),
            Some(("Parent", value)) => parent = Some(value),
            Some(("Sampled", value)) => sampled = value == "1",
            _ => {}
        }
    }
    if sampled {
        Some((root?, parent?))
    } else {
        None
    }
}

/// The subsegment document of one request.
pub fn subsegment(
    root: &str,
    parent: &str,
    request_id: &str,
    route: &str,
    start: SystemTime,
    end: SystemTime,
) -> Value {
    let seconds = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let id: String = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    json!({
        "name": "request",
        "id": id,
        "trace_id": root,
        "parent_id": parent,
        "type": "subsegment",
        "start_time": seconds(start),
        "end_time": seconds(end),
        "annotations": { "request_id": request_id, "route": route },
    })
}

/// The daemon's UDP address from `AWS_XRAY_DAEMON_ADDRESS` (`host:port`, or the
/// `tcp:host:port udp:host:port` form).
fn daemon_address(value: &str) -> Option<&str> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    match value
        .split_whitespace()
        .find_map(|part| part.strip_prefix("udp:"))
    {
        Some(udp) => Some(udp),
        None if !value.contains(' ') => Some(value),
        None => None,
    }
}

/// Sends the request's annotated subsegment when the invocation is sampled and a daemon is
/// configured. Best effort: tracing must never fail a request.
pub fn annotate(
    trace_header: Option<&str>,
    request_id: &str,
    route: &str,
    start: SystemTime,
    end: SystemTime,
) {
    let Ok(daemon) = std::env::var("AWS_XRAY_DAEMON_ADDRESS") else {
        return;
    };
    let (Some(address), Some((root, parent))) = (
        daemon_address(&daemon),
        trace_header.and_then(sampled_parent),
    ) else {
        return;
    };
    let document = subsegment(root, parent, request_id, route, start, end);
    let packet = format!("{HEADER}{document}");
    if let Ok(socket) = UdpSocket::bind("0.0.0.0:0") {
        let _ = socket.send_to(packet.as_bytes(), address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_sampled_invocations_are_annotated() {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        assert_eq!(
            sampled_parent(header),
            Some(("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8"))
        );
        assert_eq!(
            sampled_parent(&header.replace("Sampled=1", "Sampled=0")),
            None
        );
        assert_eq!(sampled_parent("Root=1-a-b;Sampled=1"), None);
        assert_eq!(
            daemon_address("169.254.79.129:2000"),
            Some("169.254.79.129:2000")
        );
        assert_eq!(
            daemon_address("tcp:127.0.0.1:2000 udp:127.0.0.2:2000"),
            Some("127.0.0.2:2000")
        );
        assert_eq!(daemon_address(""), None);
    }

    #[test]
    fn the_subsegment_carries_the_request_id_as_an_annotation() {
        let start = UNIX_EPOCH + Duration::from_millis(1_478_293_361_271);
        let doc = subsegment(
            "1-581cf771-a006649127e371903a2de979",
            "70de5b6f19ff9a0a",
            "r-1",
            "POST /users",
            start,
            start + Duration::from_millis(178),
        );
        assert_eq!(doc["type"], "subsegment");
        assert_eq!(doc["trace_id"], "1-581cf771-a006649127e371903a2de979");
        assert_eq!(doc["parent_id"], "70de5b6f19ff9a0a");
        assert_eq!(doc["id"].as_str().unwrap().len(), 16);
        assert_eq!(doc["annotations"]["request_id"], "r-1");
        assert!((doc["end_time"].as_f64().unwrap() - 1_478_293_361.449).abs() < 1e-6);
    }

    /// A daemon on loopback receives the header line and the document.
    #[test]
    fn annotate_sends_the_header_and_the_document_to_the_daemon() {
        let daemon = UdpSocket::bind("127.0.0.1:0").unwrap();
        daemon
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // SAFETY: this test is the only code of this crate's unit tests reading the variable.
        unsafe {
            std::env::set_var(
                "AWS_XRAY_DAEMON_ADDRESS",
                daemon.local_addr().unwrap().to_string(),
            );
        }
        let now = SystemTime::now();
        annotate(
            Some("Root=1-a-b;Parent=c;Sampled=1"),
            "r-2",
            "GET /health",
            now,
            now,
        );
        let mut buffer = [0u8; 4096];
        let (n, _) = daemon.recv_from(&mut buffer).unwrap();
        let text = std::str::from_utf8(&buffer[..n]).unwrap();
        let (header, document) = text.split_once('\n').unwrap();
        assert_eq!(format!("{header}\n"), HEADER);
        let document: Value = serde_json::from_str(document).unwrap();
        assert_eq!(document["annotations"]["request_id"], "r-2");
    }
}
