//! What a candidate model can do: from the YAML `capabilities` list when present (it is then the
//! whole list), else guessed from the model's name.

use crate::config::{Capability, ModelEndpoint};

/// The abilities routing cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Accepts images.
    pub vision: bool,
    /// Accepts a `tools` list and answers with tool calls.
    pub tools: bool,
}

/// Name fragments (lower case) of model families that accept images.
const VISION_MARKERS: &[&str] = &[
    "llava",  // llava, bakllava, llava-llama3, llava-phi3
    "vision", // llama3.2-vision, granite3.2-vision
    "-vl",    // qwen2.5-vl, qwen3-vl
    "vl:",    // qwen2.5vl:7b
    "gemma3",
    "qwen2.5vl",
    "minicpm-v",
    "moondream",
    "pixtral",
    "gpt-4o",
    "gpt-4.1",
    "gpt-5",
    "claude",
    "gemini",
    "llama4",
];

/// Members of a vision family that are text-only nonetheless.
const TEXT_ONLY_MARKERS: &[&str] = &["gemma3:1b", "gemma3:270m"];

/// The endpoint's capabilities: the configured list, else inferred from its model name.
pub fn capabilities_of(endpoint: &ModelEndpoint) -> Capabilities {
    match &endpoint.capabilities {
        Some(list) => Capabilities {
            vision: list.contains(&Capability::Vision),
            tools: list.contains(&Capability::Tools),
        },
        None => inferred_from_name(&endpoint.model),
    }
}

/// Vision from the name; tools assumed, since most current models take them and a model that
/// does not will fail the call and hand it to the next candidate.
fn inferred_from_name(model: &str) -> Capabilities {
    let name = model.to_lowercase();
    let vision = VISION_MARKERS.iter().any(|m| name.contains(m))
        && !TEXT_ONLY_MARKERS.iter().any(|m| name.contains(m));
    Capabilities {
        vision,
        tools: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vision(model: &str) -> bool {
        inferred_from_name(model).vision
    }

    #[test]
    fn vision_models_are_recognised_by_name() {
        for model in [
            "llava:7b",
            "bakllava",
            "llama3.2-vision:11b",
            "qwen2.5vl:7b",
            "Qwen/Qwen2.5-VL-7B-Instruct",
            "gemma3:4b",
            "minicpm-v:8b",
            "moondream",
            "pixtral-12b",
            "gpt-4o-mini",
            "gpt-4.1",
            "gpt-5-mini",
            "claude-3-5-sonnet",
            "gemini-2.0-flash",
            "llama4:scout",
        ] {
            assert!(vision(model), "{model} should have vision");
        }
    }

    #[test]
    fn text_models_are_not_mistaken_for_vision_models() {
        for model in [
            "llama3.1:8b",
            "qwen2.5:7b",
            "mistral",
            "gpt-3.5-turbo",
            "gemma3:1b",
            "deepseek-r1:8b",
        ] {
            assert!(!vision(model), "{model} should not have vision");
        }
    }

    #[test]
    fn a_configured_list_overrides_the_name() {
        let mut endpoint: ModelEndpoint = serde_yaml::from_str(
            "{provider: ollama, model: 'my-custom-model', endpoint: 'http://x'}",
        )
        .expect("endpoint yaml");
        assert!(!capabilities_of(&endpoint).vision);
        assert!(capabilities_of(&endpoint).tools);
        endpoint.capabilities = Some(vec![Capability::Vision]);
        assert_eq!(
            capabilities_of(&endpoint),
            Capabilities {
                vision: true,
                tools: false
            }
        );
    }
}
