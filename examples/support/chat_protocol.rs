//! The chat protocol (examples/chat) for the fan-out benchmark's peer servers: the room and
//! name from `/ws?room=R&name=N`, and the JSON each side sends. Plain string handling, as
//! the peers' own users would write it; names and rooms in the benchmark are URL-safe.

use std::time::{SystemTime, UNIX_EPOCH};

/// Room and name from a `/ws?room=R&name=N` target (defaults `lobby` and `guest`).
pub fn room_and_name(target: &str) -> (String, String) {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let field = |key: &str| {
        query.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')).map(str::to_owned)
    };
    (
        field("room").unwrap_or_else(|| "lobby".into()),
        field("name").unwrap_or_else(|| "guest".into()),
    )
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `{"type":"message",...}` for `text` said by `name` in `room`.
pub fn message(room: &str, name: &str, text: &str) -> String {
    serde_json::json!({"type": "message", "room": room, "name": name, "text": text, "time": now_ms()})
        .to_string()
}

/// `{"type":"join",...}` or `{"type":"leave",...}`.
pub fn presence(kind: &str, room: &str, name: &str) -> String {
    serde_json::json!({"type": kind, "room": room, "name": name, "time": now_ms()}).to_string()
}

/// The error answer to anything but `{"type":"message","text":T}`.
pub fn error(text: &str) -> String {
    serde_json::json!({"type": "error", "text": text}).to_string()
}

/// The text of a client's `{"type":"message","text":T}`.
pub fn said(json: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    match (value.get("type").and_then(|t| t.as_str()), value.get("text").and_then(|t| t.as_str())) {
        (Some("message"), Some(text)) => Ok(text.to_owned()),
        _ => Err("expected {\"type\":\"message\",\"text\":...}".into()),
    }
}
