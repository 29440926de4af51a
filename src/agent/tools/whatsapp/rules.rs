//! Each sending tool's arguments, checked against what Meta would refuse and turned into the
//! message to send; an `Err` is what the model reads to fix its call.

use crate::whatsapp::graph::{Choice, OutgoingMessage};
use serde_json::{Map, Value as Json};

pub(super) const BUTTONS_MAX: usize = 3;
const BUTTON_TITLE_MAX: usize = 20;
const BUTTON_ID_MAX: usize = 256;
const BUTTONS_BODY_MAX: usize = 1024;
const LIST_BODY_MAX: usize = 4096;
const LIST_BUTTON_MAX: usize = 20;
pub(super) const ROWS_MAX: usize = 10;
const ROW_TITLE_MAX: usize = 24;
const ROW_DESCRIPTION_MAX: usize = 72;
const ROW_ID_MAX: usize = 200;
const CAPTION_MAX: usize = 1024;
const FILENAME_MAX: usize = 240;
const LOCATION_TEXT_MAX: usize = 1000;

pub(super) fn quoted<'a>(items: impl Iterator<Item = &'a str>) -> String {
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

pub(super) fn buttons(args: &Map<String, Json>) -> Result<OutgoingMessage, String> {
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

pub(super) fn list(args: &Map<String, Json>) -> Result<OutgoingMessage, String> {
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
pub(super) fn reaction(args: &Map<String, Json>) -> Result<OutgoingMessage, String> {
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

pub(super) fn image(args: &Map<String, Json>) -> Result<OutgoingMessage, String> {
    Ok(OutgoingMessage::Image {
        link: https_link(args)?,
        caption: caption(args)?,
    })
}

pub(super) fn document(args: &Map<String, Json>) -> Result<OutgoingMessage, String> {
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

pub(super) fn location(args: &Map<String, Json>) -> Result<OutgoingMessage, String> {
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
