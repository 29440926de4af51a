//! Context budgets: a request never exceeds the model's context window.
//!
//! There is no tokenizer here (none can be downloaded, and each model has its own), so tokens
//! are *estimated*, erring high:
//! - a run of ASCII letters counts one token per 3 letters (real tokenizers average about 4);
//! - every digit, punctuation mark and symbol counts one (tokenizers split numbers and
//!   punctuation finely; a phone number is many tokens);
//! - a single space is free (it is glued to the next word), other whitespace counts one per
//!   2 characters;
//! - every non-ASCII character counts one token per UTF-8 byte, which no byte-level tokenizer
//!   can exceed (accented letters, CJK, emoji);
//! - each message adds 8 tokens for the chat template's role markers, each image 2,048 tokens
//!   (more than LLaVA, Gemma 3 or Qwen-VL use for a WhatsApp-sized photo), and the tool
//!   definitions count as their JSON text.
//!
//! The budget for the prompt is the window minus the reply's room (`max_tokens` or
//! `num_predict` from `parameters`, else a quarter of the window up to 1,024) minus a 5 % margin.
//! The system prompt and the turn's own messages (the customer's new message, and this turn's
//! tool calls and results) are always sent; remembered history is left out from the oldest
//! until the rest fits; when even that is too long, the longest of the turn's own messages is
//! cut (with a note saying so).

use super::types::{ChatMessage, ChatRequest, Role, ToolArguments, ToolDefinition};
use crate::config::ModelEndpoint;
use std::borrow::Cow;

/// The window assumed when neither the agent file nor the server says.
pub const DEFAULT_CONTEXT_WINDOW: u32 = 8192;
/// Every model server in use runs a context of at least this many tokens, so a request that
/// fits in it (reply included) is sent without asking the server its window.
pub const SAFE_WITHOUT_ASKING: u32 = 2048;
/// What one image counts.
pub const IMAGE_TOKENS: usize = 2048;
/// Role markers and separators a chat template adds around each message.
const MESSAGE_OVERHEAD: usize = 8;
/// The room kept for the reply when `parameters` sets no `max_tokens`.
const DEFAULT_REPLY_ROOM: usize = 1024;
/// Appended to a message that had to be cut, so the model knows it is not seeing all of it.
const CUT_NOTE: &str = " […cut: too long for the model's context]";

/// Estimated tokens of `text`; never less than a real tokenizer's count by design (see the
/// module documentation for the rules).
pub fn estimate_text(text: &str) -> usize {
    let mut tokens = 0;
    let mut letters: usize = 0;
    // The current whitespace run: its length, and whether it is one plain space.
    let mut spaces: usize = 0;
    let mut plain_space = false;
    let space_tokens = |spaces: usize, plain: bool| {
        if spaces == 1 && plain {
            0
        } else {
            spaces.div_ceil(2)
        }
    };
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            tokens += space_tokens(spaces, plain_space);
            spaces = 0;
            letters += 1;
            continue;
        }
        tokens += letters.div_ceil(3);
        letters = 0;
        if c.is_ascii_whitespace() {
            plain_space = spaces == 0 && c == ' ';
            spaces += 1;
            continue;
        }
        tokens += space_tokens(spaces, plain_space);
        spaces = 0;
        tokens += if c.is_ascii() { 1 } else { c.len_utf8() };
    }
    tokens + letters.div_ceil(3) + space_tokens(spaces, plain_space)
}

/// Estimated tokens of one message as the chat template renders it.
pub fn estimate_message(message: &ChatMessage) -> usize {
    let mut tokens = MESSAGE_OVERHEAD + estimate_text(&message.content);
    tokens += message.images.len() * IMAGE_TOKENS;
    for call in &message.tool_calls {
        tokens += MESSAGE_OVERHEAD + estimate_text(&call.name);
        tokens += match &call.arguments {
            ToolArguments::Valid(value) => estimate_text(&value.to_string()),
            ToolArguments::Invalid { raw, .. } => estimate_text(raw),
        };
    }
    tokens
}

/// Estimated tokens of the tool definitions (templates render them as JSON in the prompt).
pub fn estimate_tools(tools: &[ToolDefinition]) -> usize {
    tools
        .iter()
        .map(|t| {
            MESSAGE_OVERHEAD
                + estimate_text(&t.name)
                + estimate_text(&t.description)
                + estimate_text(&t.parameters.to_string())
        })
        .sum()
}

/// Estimated tokens of the whole request.
pub fn estimate_request(req: &ChatRequest) -> usize {
    req.messages.iter().map(estimate_message).sum::<usize>() + estimate_tools(&req.tools)
}

/// The room kept for the reply: `max_tokens` (or Ollama's `num_predict`) from `parameters`, at
/// most half the window; else a quarter of the window, at most 1,024.
pub fn reply_room(endpoint: &ModelEndpoint, window: u32) -> usize {
    let window = window as usize;
    let configured = ["max_tokens", "num_predict", "max_completion_tokens"]
        .iter()
        .find_map(|key| endpoint.parameters.get(*key).and_then(|v| v.as_u64()));
    match configured {
        Some(n) => (n as usize).min(window / 2),
        None => (window / 4).min(DEFAULT_REPLY_ROOM),
    }
}

/// The prompt's budget in a window: the window minus the reply's room and a 5 % margin.
pub fn prompt_budget(endpoint: &ModelEndpoint, window: u32) -> usize {
    let room = reply_room(endpoint, window);
    (window as usize)
        .saturating_sub(room)
        .saturating_sub(window as usize / 20)
}

/// A request made to fit a budget.
#[derive(Debug)]
pub struct Fitted<'a> {
    pub request: Cow<'a, ChatRequest>,
    /// Remembered messages sent (of `req.history`).
    pub history_kept: usize,
    /// Remembered messages left out.
    pub history_left_out: usize,
    /// A message of the turn itself had to be cut.
    pub cut: bool,
}

/// Makes `req` fit `budget` tokens, keeping at most `max_history` remembered messages (`None`:
/// as many as fit). See the module documentation for what is kept and what is left out.
pub fn fit(req: &ChatRequest, budget: usize, max_history: Option<usize>) -> Fitted<'_> {
    let history =
        req.history.start.min(req.messages.len())..req.history.end.min(req.messages.len());
    let sizes: Vec<usize> = req.messages.iter().map(estimate_message).collect();
    let fixed: usize = sizes
        .iter()
        .enumerate()
        .filter(|(i, _)| !history.contains(i))
        .map(|(_, s)| s)
        .sum::<usize>()
        + estimate_tools(&req.tools);
    let history_len = history.len();
    let allowed = max_history.unwrap_or(history_len).min(history_len);

    // Newest remembered messages first, while they fit.
    let mut kept = 0;
    let mut total = fixed;
    for i in history.clone().rev().take(allowed) {
        if total + sizes[i] > budget {
            break;
        }
        total += sizes[i];
        kept += 1;
    }
    // Start the kept history on a user message: some chat templates insist that roles
    // alternate starting with the user.
    let mut first_kept = history.end - kept;
    while first_kept < history.end && req.messages[first_kept].role != Role::User {
        total -= sizes[first_kept];
        first_kept += 1;
        kept -= 1;
    }
    let left_out = history_len - kept;
    if left_out == 0 && total <= budget {
        return Fitted {
            request: Cow::Borrowed(req),
            history_kept: kept,
            history_left_out: 0,
            cut: false,
        };
    }
    let mut messages: Vec<ChatMessage> = Vec::with_capacity(req.messages.len() - left_out);
    let mut own: Vec<usize> = Vec::new();
    for (i, message) in req.messages.iter().enumerate() {
        if history.contains(&i) && i < first_kept {
            continue;
        }
        if !history.contains(&i) && message.role != Role::System {
            own.push(messages.len());
        }
        messages.push(message.clone());
    }
    let mut cut = false;
    // Still too long: cut the longest of the turn's own messages, a few times at most.
    for _ in 0..4 {
        if total <= budget {
            break;
        }
        let Some(&longest) = own
            .iter()
            .max_by_key(|&&i| estimate_text(&messages[i].content))
        else {
            break;
        };
        let excess = total - budget;
        let message = &mut messages[longest];
        let before = estimate_message(message);
        let own_tokens = estimate_text(&message.content);
        if own_tokens == 0 {
            break;
        }
        let target = own_tokens.saturating_sub(excess + estimate_text(CUT_NOTE));
        // Trailing whitespace would join the note's leading space and count again.
        message.content = cut_to_tokens(&message.content, target)
            .trim_end()
            .to_owned();
        message.content.push_str(CUT_NOTE);
        cut = true;
        total = total - before + estimate_message(message);
    }
    let new_history = if kept == 0 {
        0..0
    } else {
        history.start..history.start + kept
    };
    Fitted {
        request: Cow::Owned(ChatRequest {
            messages,
            tools: req.tools.clone(),
            history: new_history,
            context_window: req.context_window,
        }),
        history_kept: kept,
        history_left_out: left_out,
        cut,
    }
}

/// The longest prefix of `text` estimated at no more than `tokens`, cut at a character edge.
fn cut_to_tokens(text: &str, tokens: usize) -> String {
    // Estimates are monotonic in the prefix length, so a binary search over char boundaries works.
    let edges: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    let (mut lo, mut hi) = (0, edges.len() - 1);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if estimate_text(&text[..edges[mid]]) <= tokens {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    text[..edges[lo]].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoint(parameters: serde_json::Value) -> ModelEndpoint {
        let mut e: ModelEndpoint =
            serde_yaml::from_str("{provider: ollama, model: m, endpoint: 'http://x'}").unwrap();
        e.parameters = parameters.as_object().cloned().unwrap_or_default();
        e
    }

    #[test]
    fn estimates_err_high_for_english_numbers_and_other_scripts() {
        // "Hello, how are you today?" is 7 tokens for Llama 3 and SmolLM2.
        assert!(estimate_text("Hello, how are you today?") >= 7);
        // Digits: one each (SmolLM2 splits every digit).
        assert_eq!(estimate_text("5511999999999"), 13);
        // Non-ASCII: one per UTF-8 byte, the most any byte-level tokenizer can use.
        assert_eq!(estimate_text("日本"), 6);
        assert_eq!(estimate_text("👍"), 4);
        assert_eq!(estimate_text(""), 0);
    }

    #[test]
    fn the_reply_room_follows_max_tokens_and_is_bounded_by_the_window() {
        assert_eq!(reply_room(&endpoint(json!({})), 8192), 1024);
        assert_eq!(reply_room(&endpoint(json!({})), 2048), 512);
        assert_eq!(reply_room(&endpoint(json!({"max_tokens": 300})), 8192), 300);
        assert_eq!(
            reply_room(&endpoint(json!({"max_tokens": 9000})), 4096),
            2048
        );
    }

    fn conversation(history: usize, words: usize) -> ChatRequest {
        let mut messages = vec![ChatMessage::system("You are a shop assistant.")];
        for i in 0..history {
            let text = format!("message {i} {}", "word ".repeat(words));
            messages.push(if i % 2 == 0 {
                ChatMessage::user(text)
            } else {
                ChatMessage::assistant(text)
            });
        }
        messages.push(ChatMessage::user("and the newest question?"));
        ChatRequest {
            history: 1..1 + history,
            messages,
            ..ChatRequest::default()
        }
    }

    #[test]
    fn the_oldest_history_is_left_out_first_and_the_system_prompt_and_new_message_stay() {
        let req = conversation(20, 100);
        let fitted = fit(&req, 1000, None);
        let messages = &fitted.request.messages;
        assert_eq!(messages[0].role, Role::System);
        assert_eq!(messages.last().unwrap().content, "and the newest question?");
        assert!(fitted.history_left_out > 0 && fitted.history_kept > 0);
        assert!(estimate_request(&fitted.request) <= 1000);
        // The newest remembered message is kept, and kept history starts with the user.
        assert!(messages[messages.len() - 2]
            .content
            .starts_with("message 19"));
        assert_eq!(messages[1].role, Role::User);
    }

    #[test]
    fn a_request_that_fits_is_sent_unchanged() {
        let req = conversation(4, 3);
        let fitted = fit(&req, 10_000, None);
        assert!(matches!(fitted.request, Cow::Borrowed(_)));
        assert_eq!(fitted.history_left_out, 0);
    }

    #[test]
    fn a_single_message_too_long_for_the_window_is_cut_with_a_note() {
        let mut req = conversation(2, 3);
        req.messages.last_mut().unwrap().content = "lorem ipsum ".repeat(2000);
        let fitted = fit(&req, 500, None);
        assert!(fitted.cut);
        assert_eq!(fitted.history_kept, 0);
        let last = fitted.request.messages.last().unwrap();
        assert!(last.content.ends_with(CUT_NOTE), "{}", last.content);
        assert!(estimate_request(&fitted.request) <= 500);
        assert_eq!(fitted.request.messages[0].role, Role::System);
    }

    #[test]
    fn a_cap_on_history_halves_what_is_sent() {
        let req = conversation(10, 3);
        let fitted = fit(&req, 100_000, Some(5));
        assert!(fitted.history_kept <= 5);
        assert!(fitted.history_left_out >= 5);
    }
}
