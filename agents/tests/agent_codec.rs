//! AgentMessage round trips through the binary codec and JSON, and bad bytes are errors.

use serde_json::json;
use warden_agents::codec::{self, CodecError, FORMAT_VERSION};
use warden_agents::message::{Address, AgentMessage, MessageId};
use warden_agents::model::{ContentBlock, Role};
use warden_supervisor::ChildPath;

fn full_message() -> AgentMessage {
    let task = AgentMessage::user("task").from(Address::Path(ChildPath::root("root").join("planner")));
    let mut m = task.reply_with(
        Address::name("researcher"),
        vec![
            ContentBlock::text("Let me look."),
            ContentBlock::ToolUse {
                id: "call_1".into(),
                name: "search".into(),
                input: json!({"q": "otp", "limit": 3, "nested": {"a": [1, 2.5, null, true]}}),
            },
            ContentBlock::tool_result("call_1", "found"),
            ContentBlock::tool_error("call_2", "boom"),
            ContentBlock::Image {
                url: "data:image/png;base64,AAAA".into(),
            },
            // Arguments that were not valid JSON travel as a JSON string.
            ContentBlock::ToolUse {
                id: "call_3".into(),
                name: "search".into(),
                input: json!("{not json"),
            },
        ],
    );
    m.metadata.insert("trace".into(), json!("abc"));
    m.metadata.insert("cost".into(), json!({"usd": 0.25, "tokens": [1, 2]}));
    m
}

#[test]
fn binary_round_trip_keeps_every_field() {
    let addresses = [
        Address::Unspecified,
        Address::name("a"),
        Address::Path(ChildPath::root("root").join("x")),
        Address::team("t"),
        Address::external("user-1"),
    ];
    for (i, address) in addresses.into_iter().enumerate() {
        let mut m = full_message().to(address);
        m.role = [Role::System, Role::User, Role::Assistant][i % 3];
        let bytes = codec::to_bytes(&m).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(codec::from_bytes(&bytes).unwrap(), m);
    }
    let plain = AgentMessage::user("");
    assert_eq!(codec::from_bytes(&codec::to_bytes(&plain).unwrap()).unwrap(), plain);
}

#[test]
fn json_round_trip_and_shape() {
    let m = full_message();
    let text = codec::to_json(&m).unwrap();
    assert_eq!(codec::from_json(&text).unwrap(), m);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["id"], json!(m.id.to_string()));
    assert_eq!(value["in_reply_to"].as_str().map(str::len), Some(32));
    assert_eq!(value["sender"], json!({"name": "researcher"}));
    assert_eq!(value["recipient"], json!({"path": "root/planner"}));
    assert_eq!(value["role"], json!("assistant"));
    assert_eq!(value["content"][1]["type"], json!("tool_use"));
    assert_eq!(value["metadata"]["trace"], json!("abc"));
    // Optional fields may be left out.
    let minimal = json!({
        "id": "1f", "sender": "unspecified", "recipient": {"team": "t"}, "role": "user",
        "content": [{"type": "text", "text": "hi"}],
        "timestamp": {"secs_since_epoch": 1, "nanos_since_epoch": 0}
    });
    let m = codec::from_json(&minimal.to_string()).unwrap();
    assert_eq!(m.id, MessageId::from_u128(0x1f));
    assert!(m.metadata.is_empty() && m.in_reply_to.is_none());
}

#[test]
fn bad_bytes_are_errors_not_panics() {
    let bytes = codec::to_bytes(&full_message()).unwrap();
    assert!(matches!(codec::from_bytes(&[]), Err(CodecError::Decode { .. })));
    assert!(matches!(
        codec::from_bytes(&[9, 1, 2]),
        Err(CodecError::UnknownVersion(9))
    ));
    for cut in 1..bytes.len() {
        assert!(codec::from_bytes(&bytes[..cut]).is_err(), "truncated at {cut}");
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(codec::from_bytes(&trailing), Err(CodecError::Decode { .. })));
    // A length prefix claiming gigabytes is refused without allocating them.
    let huge = [FORMAT_VERSION, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F];
    assert!(codec::from_bytes(&huge).is_err());
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..2000 {
        let mut noise = bytes.clone();
        for _ in 0..rng.usize(1..4) {
            let at = rng.usize(..noise.len());
            noise[at] = rng.u8(..);
        }
        let _ = codec::from_bytes(&noise);
    }
    assert!(matches!(codec::from_json("{}"), Err(CodecError::Json(_))));
    assert!(codec::from_json(r#"{"id": "xyz"}"#).is_err());
}
