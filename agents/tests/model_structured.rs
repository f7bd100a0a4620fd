//! Structured output over real HTTP in both formats: the schema from a Rust type is sent, the
//! answer comes back as the type, and invalid JSON gets a bounded number of repair rounds.

#[path = "support/model.rs"]
mod support;

use serde::Deserialize;
use serde_json::json;
use support::Wire;
use warden_agents::model::{ChatRequest, Message, ModelError};
use warden_fake_provider::{Answer, FakeProvider, Fault, RecordedRequest};

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
        fake.push(Answer::json(lyon()));
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
        fake.push(Answer::text(format!("```json\n{}\n```", lyon())));
        let city = wire.model(&fake).chat_structured::<City>(&ask()).await.unwrap();
        assert_eq!(city.value.name, "Lyon");
        assert_eq!(city.repairs, 0);
    }
}

#[tokio::test]
async fn invalid_json_gets_a_repair_round() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Answer::text(r#"{"name": "Lyon", "population": "#));
        fake.push(Answer::json(lyon()));
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
        fake.push(Answer::json(json!({"name": "Lyon", "population": "many"})));
        fake.push(Answer::json(lyon()));
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
        fake.set_default_reply(Answer::text("Lyon is a city in France."));
        let model = wire.model(&fake).with_repair_rounds(2);
        let e = model.chat_structured::<City>(&ask()).await.unwrap_err();
        assert!(
            matches!(e, ModelError::StructuredOutputInvalid { attempts: 3, .. }),
            "{wire:?}: {e:?}"
        );
        assert!(!e.is_transient());
        assert_eq!(fake.request_count(), 3, "one answer and two repair rounds");

        let fake = FakeProvider::start().await;
        fake.set_default_reply(Answer::text("no"));
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
        fake.push(Answer::text("not json"));
        fake.push(Fault::Status(500));
        fake.push(Answer::json(lyon()));
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

/// llama-cpp-python's answer to a `json_schema` response format.
fn refuses_json_schema() -> Fault {
    Fault::Http {
        status: 500,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({"error": {"message": "response_format.type must be 'text' or 'json_object', not 'json_schema'", "type": "server_error"}}).to_string(),
    }
}

#[tokio::test]
async fn auto_falls_back_from_json_schema_to_json_object_once_and_remembers() {
    use warden_agents::model::{RetryPolicy, StructuredMode};

    let fake = FakeProvider::start().await;
    let model = Wire::OpenAi.model(&fake).with_retry(RetryPolicy::none());
    let clone = model.clone();
    assert_eq!(model.structured_mode(), StructuredMode::JsonSchema);
    fake.push(refuses_json_schema());
    fake.push(Answer::json(lyon()));

    let city = model.chat_structured::<City>(&ask()).await.unwrap();
    assert_eq!(city.value.name, "Lyon");
    let sent = fake.requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].body["response_format"]["type"], "json_schema");
    assert_eq!(sent[1].body["response_format"]["type"], "json_object");
    assert_eq!(
        sent[1].body["response_format"]["schema"]["required"],
        json!(["name", "population", "landmarks"])
    );
    // The schema moved into the system prompt, after the caller's own.
    let system = sent[1].body["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.starts_with("Answer in JSON.") && system.contains("\"population\""),
        "{system}"
    );

    // Remembered, by every clone: the next call asks for json_object at once.
    assert_eq!(clone.structured_mode(), StructuredMode::JsonObject);
    fake.push(Answer::json(lyon()));
    clone.chat_structured::<City>(&ask()).await.unwrap();
    assert_eq!(fake.requests()[2].body["response_format"]["type"], "json_object");
}

#[tokio::test]
async fn a_fixed_mode_is_kept_and_a_refusal_is_an_error_that_says_why() {
    use warden_agents::model::{RetryPolicy, StructuredMode, StructuredOutput};

    let fake = FakeProvider::start().await;
    let prompt_only = Wire::OpenAi
        .model(&fake)
        .with_retry(RetryPolicy::none())
        .with_structured_output(StructuredOutput::Fixed(StructuredMode::Prompt));
    fake.push(Answer::json(lyon()));
    prompt_only.chat_structured::<City>(&ask()).await.unwrap();
    let sent = &fake.requests()[0];
    assert!(sent.body.get("response_format").is_none(), "{}", sent.body);
    assert!(
        sent.body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("JSON Schema")
    );

    let strict = Wire::OpenAi
        .model(&fake)
        .with_retry(RetryPolicy::none())
        .with_structured_output(StructuredOutput::Fixed(StructuredMode::JsonSchema));
    fake.push(refuses_json_schema());
    let e = strict.chat_structured::<City>(&ask()).await.unwrap_err();
    assert!(e.to_string().contains("json_schema"), "{e}");
    assert_eq!(fake.requests().len(), 2, "a fixed mode is not changed");
}

#[test]
fn the_mode_is_a_setting_of_the_model_config() {
    use warden_agents::model::{ModelConfig, StructuredMode, StructuredOutput};

    let config = ModelConfig::from_toml_str(
        "provider = \"openai-compatible\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:8080/v1\"\nstructured_output = \"json_object\"\n",
    )
    .unwrap();
    assert_eq!(
        config.structured_output,
        StructuredOutput::Fixed(StructuredMode::JsonObject)
    );
    let model = config.build_with_env(|_| None).unwrap();
    assert_eq!(model.structured_mode(), StructuredMode::JsonObject);

    let wrong = ModelConfig::from_toml_str("provider = \"openai\"\nmodel = \"m\"\nstructured_output = \"xml\"\n");
    let error = wrong.unwrap_err();
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(e) = source {
        chain.push_str(&format!(": {e}"));
        source = e.source();
    }
    assert!(chain.contains("unknown structured output mode `xml`"), "{chain}");
}

#[tokio::test]
async fn tool_call_mode_forces_a_tool_whose_arguments_are_the_answer_in_both_formats() {
    use warden_agents::model::{RetryPolicy, StructuredMode, StructuredOutput};

    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        let model = wire
            .model(&fake)
            .with_retry(RetryPolicy::none())
            .with_structured_output(StructuredOutput::Fixed(StructuredMode::ToolCall));
        fake.push(Answer::tool_call("City", lyon()));
        let city = model.chat_structured::<City>(&ask()).await.unwrap();
        assert_eq!(city.value.name, "Lyon", "{wire:?}");
        assert_eq!(
            city.response.tool_uses().count(),
            0,
            "the answer tool's call is the reply, not a call to answer"
        );
        let sent = &fake.requests()[0];
        assert!(sent.body.get("response_format").is_none(), "{wire:?}: {}", sent.body);
        let tools = sent.body["tools"].as_array().unwrap();
        assert_eq!(tools.len(), 1);
        let (name, parameters) = match wire {
            Wire::OpenAi => (&tools[0]["function"]["name"], &tools[0]["function"]["parameters"]),
            Wire::Anthropic => (&tools[0]["name"], &tools[0]["input_schema"]),
        };
        assert_eq!(name, "City");
        assert_eq!(parameters["required"], json!(["name", "population", "landmarks"]));
        let forced = match wire {
            Wire::OpenAi => sent.body["tool_choice"]["function"]["name"].clone(),
            Wire::Anthropic => sent.body["tool_choice"]["name"].clone(),
        };
        assert_eq!(forced, "City", "{wire:?}: {}", sent.body["tool_choice"]);
    }
}

#[tokio::test]
async fn auto_tries_a_forced_tool_call_when_json_object_is_refused_too() {
    use warden_agents::model::{RetryPolicy, StructuredMode};

    let fake = FakeProvider::start().await;
    let model = Wire::OpenAi.model(&fake).with_retry(RetryPolicy::none());
    fake.push(refuses_json_schema());
    fake.push(Fault::Http {
        status: 400,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({"error": {"message": "response_format json_object is not supported", "type": "invalid_request_error"}}).to_string(),
    });
    fake.push(Answer::tool_call("City", lyon()));
    let city = model.chat_structured::<City>(&ask()).await.unwrap();
    assert_eq!(city.value.population, 522_000);
    assert_eq!(model.structured_mode(), StructuredMode::ToolCall);
    assert_eq!(fake.requests()[2].body["tools"][0]["function"]["name"], "City");
}
