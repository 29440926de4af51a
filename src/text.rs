//! How outside things are shown in logs and operator messages, one home each: an error with its
//! causes, text cut to a length, a URL without its credentials, a MIME type without parameters.

use std::error::Error;

/// The error and every cause under it, skipping a cause whose text is already shown:
/// "error sending request: tcp connect error: Connection refused". reqwest's own `Display`
/// stops at the first level, which says nothing useful.
pub(crate) fn error_chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The innermost cause's message, which is the informative one ("Connection refused").
pub(crate) fn root_cause(err: &dyn Error) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// `text` cut to `max` characters, with `…` when cut.
pub(crate) fn cut_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The URL without user info, query or fragment: where credentials hide. Safe to print.
pub(crate) fn display_url(url: &str) -> String {
    let base = url.split(['?', '#']).next().unwrap_or_default();
    match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => base.to_string(),
    }
}

/// The message a server put in a JSON error body: OpenAI writes `{"error": {"message"}}`,
/// Ollama and whisper.cpp `{"error": "..."}`, other servers `{"message"}` or `{"detail"}`.
/// `None` when the body is not JSON or holds none of these.
pub(crate) fn json_error_message(body: &str) -> Option<String> {
    let json = serde_json::from_str::<serde_json::Value>(body).ok()?;
    let candidates = [
        json.pointer("/error/message"),
        json.get("error"),
        json.get("message"),
        json.get("detail"),
    ];
    let message = candidates
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().map(str::to_owned));
    message
}

/// `audio/ogg; codecs=opus` → `audio/ogg`: the type without its parameters, as written.
pub(crate) fn mime_essence(mime: &str) -> &str {
    mime.split(';').next().unwrap_or_default().trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn Error + 'static))
        }
    }

    #[test]
    fn an_error_shows_each_cause_once_and_its_root_cause_alone() {
        let err = Layer(
            "error sending request",
            Some(Box::new(Layer(
                "error sending request",
                Some(Box::new(Layer("Connection refused", None))),
            ))),
        );
        assert_eq!(
            error_chain(&err),
            "error sending request: Connection refused"
        );
        assert_eq!(root_cause(&err), "Connection refused");
    }

    #[test]
    fn text_is_cut_on_characters_with_an_ellipsis() {
        assert_eq!(cut_chars("héllo", 2), "hé…");
        assert_eq!(cut_chars("hé", 2), "hé");
    }

    #[test]
    fn a_mime_type_loses_its_parameters_and_keeps_its_case() {
        assert_eq!(mime_essence("audio/ogg; codecs=opus"), "audio/ogg");
        assert_eq!(mime_essence(" Image/JPEG "), "Image/JPEG");
    }
}
