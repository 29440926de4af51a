//! The builtin tools that send WhatsApp messages: `reply_buttons`, `reply_list`, `react`,
//! `send_image`, `send_document`, `send_location`.
//!
//! A call sends nothing by itself: it checks its arguments against what Meta would refuse
//! (lengths and counts of Meta's Messages API, https links, coordinates) and, when they pass,
//! hands the message to the turn ([`super::ToolOutput::send`]), which sends it in the turn's
//! order, before the reply text, through the same exactly-once path as text. When they do not
//! pass, the model is told precisely what to fix, and nothing goes out.
//!
//! Limits (Meta's documentation of interactive, media and location messages): reply buttons
//! 1–3, title at most 20 characters and unique, id at most 256, body at most 1024; list body
//! at most 4096, button label at most 20, 1–10 rows, row title at most 24 and unique,
//! description at most 72, id at most 200; media caption at most 1024; links must be https.

use crate::whatsapp::graph::{Choice, OutgoingMessage};
use serde_json::{json, Map, Value as Json};

const BUTTONS_MAX: usize = 3;
const BUTTON_TITLE_MAX: usize = 20;
const BUTTON_ID_MAX: usize = 256;
const BUTTONS_BODY_MAX: usize = 1024;
const LIST_BODY_MAX: usize = 4096;
const LIST_BUTTON_MAX: usize = 20;
const ROWS_MAX: usize = 10;
const ROW_TITLE_MAX: usize = 24;
const ROW_DESCRIPTION_MAX: usize = 72;
const ROW_ID_MAX: usize = 200;
const CAPTION_MAX: usize = 1024;
const FILENAME_MAX: usize = 240;
const LOCATION_TEXT_MAX: usize = 1000;

/// Which sending tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendTool {
    ReplyButtons,
    ReplyList,
    React,
    SendImage,
    SendDocument,
    SendLocation,
}

impl SendTool {
    pub(crate) fn name(self) -> &'static str {
        match self {
            SendTool::ReplyButtons => "reply_buttons",
            SendTool::ReplyList => "reply_list",
            SendTool::React => "react",
            SendTool::SendImage => "send_image",
            SendTool::SendDocument => "send_document",
            SendTool::SendLocation => "send_location",
        }
    }

    pub(crate) fn named(name: &str) -> Option<SendTool> {
        [
            SendTool::ReplyButtons,
            SendTool::ReplyList,
            SendTool::React,
            SendTool::SendImage,
            SendTool::SendDocument,
            SendTool::SendLocation,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }

    /// The default description the model reads (the agent file's `description` replaces it).
    pub(crate) fn description(self) -> &'static str {
        match self {
            SendTool::ReplyButtons => {
                "Ask the customer a question they answer with one tap: sends `body` with 1 to 3 \
                 buttons (each at most 20 characters). Their tap comes back to you as the \
                 button's text. Use it for short choices like yes/no or a few options."
            }
            SendTool::ReplyList => {
                "Offer the customer up to 10 options in a list: sends `body` with a `button` \
                 (at most 20 characters) that opens the list of `rows` (title at most 24 \
                 characters, optional description at most 72). Their choice comes back to you \
                 as the row's title."
            }
            SendTool::React => {
                "React to the customer's last message with one emoji (for example 👍 or ❤️)."
            }
            SendTool::SendImage => {
                "Send the customer a picture from a public https URL, with an optional caption."
            }
            SendTool::SendDocument => {
                "Send the customer a document (a PDF, say) from a public https URL, with an \
                 optional caption and file name."
            }
            SendTool::SendLocation => {
                "Send the customer a location pin: latitude and longitude, optional place name \
                 and address."
            }
        }
    }

    /// The JSON Schema of the arguments.
    pub(crate) fn parameters(self) -> Json {
        let text = |description: &str| json!({"type": "string", "description": description});
        match self {
            SendTool::ReplyButtons => json!({
                "type": "object",
                "properties": {
                    "body": text("The question or message above the buttons."),
                    "buttons": {
                        "type": "array",
                        "description": "1 to 3 button labels, each at most 20 characters.",
                        "items": {"type": "string"},
                        "minItems": 1,
                        "maxItems": BUTTONS_MAX,
                    }
                },
                "required": ["body", "buttons"]
            }),
            SendTool::ReplyList => json!({
                "type": "object",
                "properties": {
                    "body": text("The message above the list."),
                    "button": text("The label of the button that opens the list, at most 20 characters."),
                    "rows": {
                        "type": "array",
                        "description": "1 to 10 options.",
                        "minItems": 1,
                        "maxItems": ROWS_MAX,
                        "items": {
                            "type": "object",
                            "properties": {
                                "title": text("At most 24 characters."),
                                "description": text("Optional, at most 72 characters."),
                                "id": text("Optional identifier of the option, kept for you in the conversation.")
                            },
                            "required": ["title"]
                        }
                    }
                },
                "required": ["body", "button", "rows"]
            }),
            SendTool::React => json!({
                "type": "object",
                "properties": {"emoji": text("One emoji.")},
                "required": ["emoji"]
            }),
            SendTool::SendImage => json!({
                "type": "object",
                "properties": {
                    "url": text("A public https URL of a JPEG or PNG image."),
                    "caption": text("Optional text under the image.")
                },
                "required": ["url"]
            }),
            SendTool::SendDocument => json!({
                "type": "object",
                "properties": {
                    "url": text("A public https URL of the document."),
                    "caption": text("Optional text under the document."),
                    "filename": text("Optional file name the customer sees, like menu.pdf.")
                },
                "required": ["url"]
            }),
            SendTool::SendLocation => json!({
                "type": "object",
                "properties": {
                    "latitude": {"type": "number", "description": "-90 to 90."},
                    "longitude": {"type": "number", "description": "-180 to 180."},
                    "name": text("Optional place name."),
                    "address": text("Optional address.")
                },
                "required": ["latitude", "longitude"]
            }),
        }
    }

    /// The message to send, or what the model must fix (then nothing is sent).
    pub(crate) fn build(self, args: &Map<String, Json>) -> Result<OutgoingMessage, String> {
        let built = match self {
            SendTool::ReplyButtons => buttons(args),
            SendTool::ReplyList => list(args),
            SendTool::React => reaction(args),
            SendTool::SendImage => image(args),
            SendTool::SendDocument => document(args),
            SendTool::SendLocation => location(args),
        };
        built.map_err(|problem| {
            format!(
                "Not sent: {problem} Fix it and call `{}` again, or answer in text.",
                self.name()
            )
        })
    }

    /// What the model reads after a message passed: it is on its way.
    pub(crate) fn confirmation(self, message: &OutgoingMessage) -> String {
        match message {
            OutgoingMessage::Buttons { buttons, .. } => format!(
                "Sent: the customer sees your message with the buttons {}. Their tap comes back \
                 to you as a new message. Do not repeat the question or the options.",
                quoted(buttons.iter().map(|b| b.title.as_str()))
            ),
            OutgoingMessage::List { rows, .. } => format!(
                "Sent: the customer sees your message with a list of {} options. Their choice \
                 comes back to you as a new message. Do not repeat the options.",
                rows.len()
            ),
            OutgoingMessage::Reaction { emoji, .. } => {
                format!("Sent: you reacted with {emoji} to the customer's message.")
            }
            _ => format!("Sent to the customer ({}).", self.name().replace('_', " ")),
        }
    }
}

fn quoted<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A required text argument, trimmed.
fn required_text(args: &Map<String, Json>, key: &str, what: &str) -> Result<String, String> {
    match args.get(key) {
        Some(Json::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Some(Json::Number(n)) => Ok(n.to_string()),
        Some(Json::String(_)) | None | Some(Json::Null) => {
            Err(format!("`{key}` ({what}) is missing or empty."))
        }
        Some(other) => Err(format!("`{key}` ({what}) must be text, got {other}.")),
    }
}

/// An optional text argument, trimmed; empty counts as absent.
fn optional_text(args: &Map<String, Json>, key: &str) -> Result<Option<String>, String> {
    match args.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(Json::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("`{key}` must be text, got {other}.")),
    }
}

fn length(text: &str) -> usize {
    text.chars().count()
}

/// `Err` when `text` is longer than `max` characters, with a shortened version to try.
fn at_most(text: &str, max: usize, what: &str) -> Result<(), String> {
    let n = length(text);
    if n <= max {
        return Ok(());
    }
    let short: String = text.chars().take(max).collect();
    Err(format!(
        "{what} \"{text}\" has {n} characters; WhatsApp allows at most {max}. Shorten it \
         (for example to \"{}\").",
        short.trim_end()
    ))
}

/// The list argument as items: a JSON array, or (from small models) a JSON array written as
/// a string, or labels separated by `|`, newlines or commas.
fn items(args: &Map<String, Json>, key: &str) -> Result<Vec<Json>, String> {
    match args.get(key) {
        Some(Json::Array(items)) => Ok(items.clone()),
        Some(Json::String(s)) => {
            if let Ok(Json::Array(items)) = serde_json::from_str::<Json>(s) {
                return Ok(items);
            }
            let separator = ['|', '\n']
                .into_iter()
                .find(|c| s.contains(*c))
                .unwrap_or(',');
            Ok(s.split(separator)
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| Json::String(t.to_owned()))
                .collect())
        }
        None | Some(Json::Null) => Err(format!("`{key}` is missing.")),
        Some(other) => Err(format!("`{key}` must be a list, got {other}.")),
    }
}

/// One choice from an item: a bare title, or `{title, id?, description?}`.
fn choice(item: &Json, position: usize, what: &str) -> Result<Choice, String> {
    let (title, id, description) = match item {
        Json::String(title) => (title.trim().to_owned(), None, None),
        Json::Object(map) => (
            required_text(map, "title", &format!("the text of {what} {position}"))?,
            optional_text(map, "id")?,
            optional_text(map, "description")?,
        ),
        other => {
            return Err(format!(
                "{what} {position} must be text or an object with a `title`, got {other}."
            ))
        }
    };
    if title.is_empty() {
        return Err(format!("{what} {position} has an empty title."));
    }
    Ok(Choice {
        id: id.unwrap_or_default(),
        title,
        description,
    })
}

/// Ids for the choices without one, from their titles (`Extra large` → `extra_large`), unique
/// in the message; every id at most `max` characters.
fn assign_ids(choices: &mut [Choice], max: usize, what: &str) -> Result<(), String> {
    let mut taken: Vec<String> = Vec::with_capacity(choices.len());
    for (i, choice) in choices.iter_mut().enumerate() {
        if choice.id.is_empty() {
            let mut base = Choice::id_from_title(&choice.title);
            if base.is_empty() {
                base = format!("option_{}", i + 1);
            }
            let mut id = base.clone();
            let mut n = 2;
            while taken.contains(&id) {
                id = format!("{base}_{n}");
                n += 1;
            }
            choice.id = id;
        } else if taken.contains(&choice.id) {
            return Err(format!(
                "{what} {} has the id \"{}\" of an earlier one; ids must differ.",
                i + 1,
                choice.id
            ));
        }
        if length(&choice.id) > max {
            return Err(format!(
                "the id of {what} {} is longer than {max} characters.",
                i + 1
            ));
        }
        taken.push(choice.id.clone());
    }
    Ok(())
}

fn unique_titles(choices: &[Choice], what: &str) -> Result<(), String> {
    for (i, choice) in choices.iter().enumerate() {
        if choices[..i]
            .iter()
            .any(|c| c.title.to_lowercase() == choice.title.to_lowercase())
        {
            return Err(format!(
                "two {what}s are called \"{}\"; every {what} needs its own text.",
                choice.title
            ));
        }
    }
    Ok(())
}

fn buttons(args: &Map<String, Json>) -> Result<OutgoingMessage, String> {
    let body = required_text(args, "body", "the question above the buttons")?;
    at_most(&body, BUTTONS_BODY_MAX, "`body`")?;
    let items = items(args, "buttons")?;
    if items.is_empty() {
        return Err("`buttons` is empty; give 1 to 3 button labels.".into());
    }
    if items.len() > BUTTONS_MAX {
        return Err(format!(
            "{} buttons given; WhatsApp allows at most {BUTTONS_MAX}. Keep the 3 most useful, \
             or use `reply_list` for up to {ROWS_MAX} options.",
            items.len()
        ));
    }
    let mut buttons = items
        .iter()
        .enumerate()
        .map(|(i, item)| choice(item, i + 1, "button"))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, b) in buttons.iter().enumerate() {
        at_most(&b.title, BUTTON_TITLE_MAX, &format!("button {}", i + 1))?;
    }
    unique_titles(&buttons, "button")?;
    assign_ids(&mut buttons, BUTTON_ID_MAX, "button")?;
    // Reply buttons have no description.
    for b in &mut buttons {
        b.description = None;
    }
    Ok(OutgoingMessage::Buttons { body, buttons })
}

fn list(args: &Map<String, Json>) -> Result<OutgoingMessage, String> {
    let body = required_text(args, "body", "the message above the list")?;
    at_most(&body, LIST_BODY_MAX, "`body`")?;
    let button = required_text(
        args,
        "button",
        "the label of the button that opens the list",
    )?;
    at_most(&button, LIST_BUTTON_MAX, "`button`")?;
    let items = items(args, "rows")?;
    if items.is_empty() {
        return Err("`rows` is empty; give 1 to 10 rows.".into());
    }
    if items.len() > ROWS_MAX {
        return Err(format!(
            "{} rows given; WhatsApp allows at most {ROWS_MAX}. Keep the {ROWS_MAX} most useful.",
            items.len()
        ));
    }
    let mut rows = items
        .iter()
        .enumerate()
        .map(|(i, item)| choice(item, i + 1, "row"))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, row) in rows.iter().enumerate() {
        at_most(
            &row.title,
            ROW_TITLE_MAX,
            &format!("the title of row {}", i + 1),
        )?;
        if let Some(description) = &row.description {
            at_most(
                description,
                ROW_DESCRIPTION_MAX,
                &format!("the description of row {}", i + 1),
            )?;
        }
    }
    unique_titles(&rows, "row")?;
    assign_ids(&mut rows, ROW_ID_MAX, "row")?;
    Ok(OutgoingMessage::List { body, button, rows })
}

/// The message id is left empty: the responder fills in the customer's last message.
fn reaction(args: &Map<String, Json>) -> Result<OutgoingMessage, String> {
    let emoji = required_text(args, "emoji", "the emoji")?;
    let is_emoji = length(&emoji) <= 10
        && !emoji
            .chars()
            .any(|c| c.is_ascii_alphanumeric() || c.is_whitespace() || c.is_ascii_punctuation());
    if !is_emoji {
        return Err(format!(
            "`emoji` must be one emoji like 👍, not \"{emoji}\"."
        ));
    }
    Ok(OutgoingMessage::Reaction {
        message_id: String::new(),
        emoji,
    })
}

/// An https URL Meta can fetch: absolute, with a host, no spaces.
fn https_link(args: &Map<String, Json>) -> Result<String, String> {
    let link = required_text(args, "url", "the https address of the file")?;
    let parsed = reqwest::Url::parse(&link)
        .map_err(|e| format!("`url` \"{link}\" is not a valid address ({e})."))?;
    if parsed.scheme() != "https" {
        return Err(format!(
            "`url` \"{link}\" must start with https:// (WhatsApp fetches media only over https)."
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("`url` \"{link}\" has no host."));
    }
    Ok(parsed.to_string())
}

fn caption(args: &Map<String, Json>) -> Result<Option<String>, String> {
    let caption = optional_text(args, "caption")?;
    if let Some(text) = &caption {
        at_most(text, CAPTION_MAX, "`caption`")?;
    }
    Ok(caption)
}

fn image(args: &Map<String, Json>) -> Result<OutgoingMessage, String> {
    Ok(OutgoingMessage::Image {
        link: https_link(args)?,
        caption: caption(args)?,
    })
}

fn document(args: &Map<String, Json>) -> Result<OutgoingMessage, String> {
    let link = https_link(args)?;
    let caption = caption(args)?;
    let filename = optional_text(args, "filename")?;
    if let Some(name) = &filename {
        at_most(name, FILENAME_MAX, "`filename`")?;
        if name.contains('/') || name.contains('\\') {
            return Err(format!(
                "`filename` \"{name}\" must be a bare file name like menu.pdf, without folders."
            ));
        }
    }
    Ok(OutgoingMessage::Document {
        link,
        caption,
        filename,
    })
}

/// A coordinate given as a number or as numeric text, within ±`limit`.
fn coordinate(args: &Map<String, Json>, key: &str, limit: f64) -> Result<f64, String> {
    let value = match args.get(key) {
        Some(Json::Number(n)) => n.as_f64(),
        Some(Json::String(s)) => s.trim().parse::<f64>().ok(),
        None | Some(Json::Null) => return Err(format!("`{key}` is missing.")),
        _ => None,
    };
    match value {
        Some(v) if v.is_finite() && v.abs() <= limit => Ok(v),
        Some(v) => Err(format!(
            "`{key}` {v} is out of range; it must be between -{limit} and {limit}."
        )),
        None => Err(format!("`{key}` must be a number like 40.4168.")),
    }
}

fn location(args: &Map<String, Json>) -> Result<OutgoingMessage, String> {
    let latitude = coordinate(args, "latitude", 90.0)?;
    let longitude = coordinate(args, "longitude", 180.0)?;
    let name = optional_text(args, "name")?;
    let address = optional_text(args, "address")?;
    for (text, what) in [(&name, "`name`"), (&address, "`address`")] {
        if let Some(text) = text {
            at_most(text, LOCATION_TEXT_MAX, what)?;
        }
    }
    Ok(OutgoingMessage::Location {
        latitude,
        longitude,
        name,
        address,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(tool: SendTool, args: Json) -> Result<OutgoingMessage, String> {
        tool.build(args.as_object().expect("an object"))
    }

    #[test]
    fn buttons_get_ids_from_their_titles_and_too_long_titles_are_refused_with_a_shorter_one() {
        let sent = build(
            SendTool::ReplyButtons,
            json!({"body": "Size?", "buttons": ["Small", "Extra large", "Small!"]}),
        );
        let Ok(OutgoingMessage::Buttons { buttons, .. }) = sent else {
            panic!("{sent:?}")
        };
        let ids: Vec<&str> = buttons.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["small", "extra_large", "small_2"]);
        let long = build(
            SendTool::ReplyButtons,
            json!({"body": "Size?", "buttons": ["Extra large size please"]}),
        )
        .unwrap_err();
        assert!(long.contains("23 characters"), "{long}");
        assert!(long.contains("at most 20"), "{long}");
        assert!(long.contains("\"Extra large size ple\""), "{long}");
        assert!(long.contains("call `reply_buttons` again"), "{long}");
    }

    #[test]
    fn more_than_three_buttons_or_ten_rows_are_refused() {
        let four = build(
            SendTool::ReplyButtons,
            json!({"body": "?", "buttons": ["a", "b", "c", "d"]}),
        )
        .unwrap_err();
        assert!(
            four.contains("4 buttons") && four.contains("at most 3"),
            "{four}"
        );
        let rows: Vec<String> = (1..=11).map(|i| format!("row {i}")).collect();
        let eleven = build(
            SendTool::ReplyList,
            json!({"body": "?", "button": "Open", "rows": rows}),
        )
        .unwrap_err();
        assert!(
            eleven.contains("11 rows") && eleven.contains("at most 10"),
            "{eleven}"
        );
    }

    #[test]
    fn small_model_shapes_of_a_button_list_are_understood() {
        for buttons in [
            json!("Yes, No"),
            json!("Yes | No"),
            json!("[\"Yes\",\"No\"]"),
        ] {
            let sent = build(
                SendTool::ReplyButtons,
                json!({"body": "Ok?", "buttons": buttons}),
            );
            let Ok(OutgoingMessage::Buttons { buttons, .. }) = sent else {
                panic!("{sent:?}")
            };
            assert_eq!(buttons.len(), 2);
            assert_eq!(buttons[1].title, "No");
        }
    }

    #[test]
    fn links_must_be_https_and_coordinates_in_range() {
        let http = build(SendTool::SendImage, json!({"url": "http://x.test/a.png"})).unwrap_err();
        assert!(http.contains("https://"), "{http}");
        let lat = build(
            SendTool::SendLocation,
            json!({"latitude": 91, "longitude": 0}),
        )
        .unwrap_err();
        assert!(lat.contains("between -90 and 90"), "{lat}");
        assert!(build(SendTool::React, json!({"emoji": "ok"})).is_err());
        assert!(build(SendTool::React, json!({"emoji": "👍"})).is_ok());
    }
}
