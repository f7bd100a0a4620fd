//! Structured output over real HTTP in both formats: the schema from a Rust type is sent, the
//! answer comes back as the type, and invalid JSON gets a bounded number of repair rounds.

#[path = "support/model.rs"]
mod support;

use serde::Deserialize;
use serde_json::json;
use support::Wire;
use warden_agents::model::{ChatRequest, Message, ModelError};
use warden_fake_provider::{FakeProvider, Fault, RecordedRequest, Reply};

/// A city, as the model must describe it.
#[derive(Debug, PartialEq, Deserialize, schemars::JsonSchema)]
struct City {
    /// Its name.
    name: String,
    /// How many people live there.
    population: u64,
    /// Its landmarks.
    landmarks: Vec<String>,
}

fn ask() -> ChatRequest {
    ChatRequest::new(vec![
        Message::system("Answer in JSON."),
        Message::user("Describe Lyon."),
    ])
}

fn lyon() -> serde_json::Value {
    json!({"name": "Lyon", "population": 522_000, "landmarks": ["Fourvière"]})
}

/// The schema the request carried: OpenAI's `response_format`, or the text of Anthropic's
/// system prompt (which has no such field).
fn schema_sent(wire: Wire, request: &RecordedRequest) -> String {
    match wire {
        Wire::OpenAi => {
            let format = &request.body["response_format"];
            assert_eq!(format["type"], "json_schema");
            assert_eq!(format["json_schema"]["name"], "City");
            format["json_schema"]["schema"].to_string()
        }
        Wire::Anthropic => {
            assert!(request.body.get("response_format").is_none());
            request.body["system"].as_str().unwrap().to_owned()
        }
    }
}

#[tokio::test]
async fn the_answer_comes_back_as_the_type() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Reply::json(lyon()));
        let city = wire.model(&fake).chat_structured::<City>(&ask()).await.unwrap();
        assert_eq!(city.value.name, "Lyon");
        assert_eq!(city.value.population, 522_000);
        assert_eq!(city.value.landmarks, ["Fourvière"]);
        assert_eq!(city.repairs, 0);
        let requests = fake.requests();
        assert_eq!(requests.len(), 1);
        let schema = schema_sent(wire, &requests[0]);
        for field in ["population", "landmarks", "How many people live there."] {
            assert!(schema.contains(field), "{wire:?}: {field} missing from {schema}");
        }
    }
}

#[tokio::test]
async fn a_fenced_answer_is_accepted() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Reply::text(format!("```json\n{}\n```", lyon())));
        let city = wire.model(&fake).chat_structured::<City>(&ask()).await.unwrap();
        assert_eq!(city.value.name, "Lyon");
        assert_eq!(city.repairs, 0);
    }
}

#[tokio::test]
async fn invalid_json_gets_a_repair_round() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Reply::text(r#"{"name": "Lyon", "population": "#));
        fake.push(Reply::json(lyon()));
        let city = wire.model(&fake).chat_structured::<City>(&ask()).await.unwrap();
        assert_eq!(city.value.name, "Lyon");
        assert_eq!(city.repairs, 1);

        let requests = fake.requests();
        assert_eq!(requests.len(), 2);
        // The repair request shows the model its answer and what was wrong with it, and still
        // carries the schema.
        let history = support::history_text(&requests[1]);
        assert!(
            history.contains(r#"{\"name\": \"Lyon\", \"population\": "#),
            "{history}"
        );
        assert!(history.contains("not valid"), "{history}");
        assert!(schema_sent(wire, &requests[1]).contains("landmarks"));
        assert_eq!(requests[1].messages().len(), requests[0].messages().len() + 2);
    }
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_repaired_too() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Reply::json(json!({"name": "Lyon", "population": "many"})));
        fake.push(Reply::json(lyon()));
        let city = wire.model(&fake).chat_structured::<City>(&ask()).await.unwrap();
        assert_eq!(city.repairs, 1);
        let history = support::history_text(&fake.requests()[1]);
        assert!(history.contains("invalid type"), "the parse error is shown: {history}");
    }
}

#[tokio::test]
async fn repairs_are_bounded() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.set_default_reply(Reply::text("Lyon is a city in France."));
        let model = wire.model(&fake).with_repair_rounds(2);
        let e = model.chat_structured::<City>(&ask()).await.unwrap_err();
        assert!(
            matches!(e, ModelError::StructuredOutputInvalid { attempts: 3, .. }),
            "{wire:?}: {e:?}"
        );
        assert!(!e.is_transient());
        assert_eq!(fake.request_count(), 3, "one answer and two repair rounds");

        let fake = FakeProvider::start().await;
        fake.set_default_reply(Reply::text("no"));
        let e = wire
            .model(&fake)
            .with_repair_rounds(0)
            .chat_structured::<City>(&ask())
            .await
            .unwrap_err();
        assert!(
            matches!(e, ModelError::StructuredOutputInvalid { attempts: 1, .. }),
            "{e:?}"
        );
        assert_eq!(fake.request_count(), 1);
    }
}

#[tokio::test]
async fn a_failed_call_is_not_a_repair_round() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::Status(503));
        fake.push(Reply::text("not json"));
        fake.push(Fault::Status(500));
        fake.push(Reply::json(lyon()));
        let city = wire.model(&fake).chat_structured::<City>(&ask()).await.unwrap();
        assert_eq!(city.repairs, 1, "the 5xx were retried, not counted as repairs");
        assert_eq!(fake.request_count(), 4);

        let fake = FakeProvider::start().await;
        fake.push(Fault::QuotaExceeded);
        let e = wire.model(&fake).chat_structured::<City>(&ask()).await.unwrap_err();
        assert!(matches!(e, ModelError::QuotaExceeded), "{e:?}");
    }
}

#[tokio::test]
async fn a_malformed_provider_response_is_not_structured_output_invalid() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::MalformedJson);
        let e = wire.model(&fake).chat_structured::<City>(&ask()).await.unwrap_err();
        assert!(matches!(e, ModelError::MalformedResponse { .. }), "{wire:?}: {e:?}");
        assert_eq!(fake.request_count(), 1);
    }
}
