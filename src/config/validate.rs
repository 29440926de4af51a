//! Checks that need the parsed config: values serde accepts but wagate cannot run with
//! (a zero rate limit, a relative URL), and references between files (`default_agent`).
//! The agent file's own checks are in `validate_agent.rs`.

use super::channels::{
    WhatsAppChannel, CONSOLE_KEYS, HANDOFF_KEYS, HOURS_KEYS, MEDIA_LIMIT_KEYS, OPT_OUT_KEYS,
    RATE_LIMIT_KEYS, TEMPLATE_KEYS, WHATSAPP_KEYS, WINDOW_KEYS,
};
use super::error::Problem;
use super::parse::SourceFile;
use super::path::FieldPath;
use serde_yaml::Value;
use std::collections::BTreeSet;

/// Problems (the config is invalid) and warnings (it loads, but look here).
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub(crate) problems: Vec<Problem>,
    pub(crate) warnings: Vec<Problem>,
}

/// The semantic checks of `channels.whatsapp` alone.
pub(crate) fn check_channel(ch: &WhatsAppChannel, src: &SourceFile, out: &mut Findings) {
    let base = FieldPath::keys(&["channels", "whatsapp"]);
    let rate = base.key("rate_limit");
    at_least_one(
        src,
        &rate.key("window_seconds"),
        ch.rate_limit.window_seconds,
        out,
    );
    at_least_one(
        src,
        &rate.key("max_messages"),
        ch.rate_limit.max_messages.into(),
        out,
    );
    at_least_one(
        src,
        &base.key("max_body_bytes"),
        ch.max_body_bytes as u64,
        out,
    );
    at_least_one(
        src,
        &base.key("max_concurrent_turns"),
        ch.max_concurrent_turns as u64,
        out,
    );
    check_url(src, &base.key("graph_api_base"), &ch.graph_api_base, out);
    if !is_graph_version(&ch.graph_api_version) {
        out.problems.push(src.problem(
            &base.key("graph_api_version"),
            format!(
                "`{}` is not a Graph API version; write it like `v25.0`",
                ch.graph_api_version
            ),
        ));
    }
    check_handoff(ch, src, &base, out);
    check_window(ch, src, &base, out);
    check_opt_out(ch, src, &base, out);
}

/// `window.reopen_template`: a template Meta can find needs its language too.
fn check_window(ch: &WhatsAppChannel, src: &SourceFile, base: &FieldPath, out: &mut Findings) {
    let template = &ch.window.reopen_template;
    let path = base.key("window").key("reopen_template");
    if template.is_set() && template.language.trim().is_empty() {
        out.problems.push(src.problem(
            &path.key("language"),
            "a template is sent with its language code as approved in WhatsApp Manager \
             (like `en_US`); add `language`",
        ));
    } else if !template.is_set() && !template.language.trim().is_empty() {
        out.problems.push(src.problem(
            &path.key("name"),
            "the template's `name` is missing (its language alone names no template)",
        ));
    }
}

/// `opt_out`: keywords with text, and no word that both stops and resumes.
fn check_opt_out(ch: &WhatsAppChannel, src: &SourceFile, base: &FieldPath, out: &mut Findings) {
    let opt_out = base.key("opt_out");
    let lists = [
        ("keywords", &ch.opt_out.keywords),
        ("resume_keywords", &ch.opt_out.resume_keywords),
    ];
    for (key, list) in lists {
        for (i, keyword) in list.iter().enumerate() {
            if keyword.trim().is_empty() {
                out.problems.push(src.problem(
                    &opt_out.key(key).index(i),
                    "is empty; a keyword must have text (remove the entry)".to_string(),
                ));
            }
        }
    }
    let normal = |k: &String| k.trim().to_lowercase();
    for (i, keyword) in ch.opt_out.resume_keywords.iter().enumerate() {
        if ch
            .opt_out
            .keywords
            .iter()
            .any(|k| normal(k) == normal(keyword))
        {
            out.problems.push(src.problem(
                &opt_out.key("resume_keywords").index(i),
                format!("`{keyword}` is also in opt_out.keywords; a word cannot both stop and resume (remove it from one list)"),
            ));
        }
    }
}

/// `console` and `handoff`: hours that parse in a real time zone, URLs that are URLs.
fn check_handoff(ch: &WhatsAppChannel, src: &SourceFile, base: &FieldPath, out: &mut Findings) {
    let handoff = base.key("handoff");
    if let Err(e) = crate::handoff::hours::Schedule::parse(&ch.handoff.hours) {
        let field = e
            .field
            .iter()
            .fold(handoff.key("hours"), |path, k| path.key(k));
        out.problems.push(src.problem(&field, e.message));
    }
    if !ch.handoff.notify_url.is_empty() {
        check_url(src, &handoff.key("notify_url"), &ch.handoff.notify_url, out);
    }
    if !ch.console.public_url.is_empty() {
        check_url(
            src,
            &base.key("console").key("public_url"),
            &ch.console.public_url,
            out,
        );
    }
    at_least_one(
        src,
        &handoff.key("release_after_seconds"),
        ch.handoff.release_after_seconds,
        out,
    );
    for (i, keyword) in ch.handoff.keywords.iter().enumerate() {
        if keyword.trim().is_empty() {
            out.problems.push(src.problem(
                &handoff.key("keywords").index(i),
                "is empty; a keyword must have text (remove the entry)".to_string(),
            ));
        }
    }
}

/// Only one of `access_token` and `phone_number_id` set: meant to be live, yet a dry run.
/// Said loudly, naming the empty one and the variable it came from.
pub(crate) fn check_half_live(ch: &WhatsAppChannel, src: &SourceFile, out: &mut Findings) {
    let base = FieldPath::keys(&["channels", "whatsapp"]);
    let (missing, set) = match (ch.access_token.is_empty(), ch.phone_number_id.is_empty()) {
        (true, false) => ("access_token", "phone_number_id"),
        (false, true) => ("phone_number_id", "access_token"),
        _ => return,
    };
    let field = base.key(missing);
    out.warnings.push(src.problem(
        &field,
        format!(
            "{}; `{set}` is set, so replies were meant to be sent, but without `{missing}` \
             wagate runs in dry run: replies are logged, not sent",
            empty(src, &field)
        ),
    ));
}

/// `default_agent` and every agent in `numbers` must name a loaded agent.
pub(crate) fn check_routing(
    ch: &WhatsAppChannel,
    src: &SourceFile,
    agents: &BTreeSet<String>,
    agents_dir: &std::path::Path,
    out: &mut Findings,
) {
    let base = FieldPath::keys(&["channels", "whatsapp"]);
    let available = if agents.is_empty() {
        format!(
            "no agents were loaded: add a NAME.agent.yaml file to {}",
            agents_dir.display()
        )
    } else {
        let names: Vec<&str> = agents.iter().map(String::as_str).collect();
        format!("available agents: {}", names.join(", "))
    };
    let default = base.key("default_agent");
    if ch.default_agent.is_empty() {
        out.problems
            .push(src.problem(&default, format!("{}; {available}", empty(src, &default))));
    } else if !agents.contains(&ch.default_agent) {
        out.problems.push(src.problem(
            &default,
            format!("agent `{}` not found; {available}", ch.default_agent),
        ));
    }
    for (number, agent) in &ch.numbers {
        if !agents.contains(agent) {
            out.problems.push(src.problem(
                &base.key("numbers").key(number),
                format!("agent `{agent}` not found; {available}"),
            ));
        }
    }
}

/// Warnings for keys of `channels.whatsapp` wagate does not know: most likely typos, which
/// would otherwise silently leave the default in place.
pub(crate) fn unknown_channel_keys(src: &SourceFile, out: &mut Findings) {
    let base = FieldPath::keys(&["channels", "whatsapp"]);
    let sections: [(FieldPath, &[&str]); 9] = [
        (base.clone(), WHATSAPP_KEYS),
        (base.key("rate_limit"), RATE_LIMIT_KEYS),
        (base.key("media_max_bytes"), MEDIA_LIMIT_KEYS),
        (base.key("console"), CONSOLE_KEYS),
        (base.key("handoff"), HANDOFF_KEYS),
        (base.key("handoff").key("hours"), HOURS_KEYS),
        (base.key("window"), WINDOW_KEYS),
        (base.key("window").key("reopen_template"), TEMPLATE_KEYS),
        (base.key("opt_out"), OPT_OUT_KEYS),
    ];
    for (path, known) in sections {
        let Some(Value::Mapping(map)) = lookup(&src.value, &path) else {
            continue;
        };
        for key in map.keys() {
            let key = super::expand::key_text(key);
            if known.contains(&key.as_str()) {
                continue;
            }
            let hint = match closest(&key, known) {
                Some(k) => format!("; did you mean `{k}`?"),
                None => format!("; known keys: {}", known.join(", ")),
            };
            out.warnings
                .push(src.problem(&path.key(&key), format!("unknown key, ignored{hint}")));
        }
    }
}

fn lookup<'a>(root: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    path.0.iter().try_fold(root, |node, seg| match seg {
        super::path::Seg::Key(k) => node.get(k.as_str()),
        super::path::Seg::Index(i) => node.get(*i),
    })
}

/// The known key within edit distance 2 of `key`, if any.
pub(crate) fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
        .or_else(|| {
            known
                .iter()
                .copied()
                .find(|k| key.starts_with(k) || k.starts_with(key))
        })
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = if ca == *cb { prev } else { prev + 1 };
            prev = row[j + 1];
            row[j + 1] = cost.min(row[j] + 1).min(prev + 1);
        }
    }
    row[b.len()]
}

fn is_graph_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    matches!(rest.split_once('.'), Some((major, minor)) if digits(major) && digits(minor))
}

/// "is empty", naming the environment variables it came from when it came from some.
pub(crate) fn empty(src: &SourceFile, field: &FieldPath) -> String {
    match src.empty_vars(field) {
        Some(vars) => {
            let names: Vec<String> = vars.iter().map(|v| format!("${{{v}}}")).collect();
            format!(
                "is empty because {} is unset or empty: set it, or give a default as `${{{}:-...}}`",
                names.join(" and "),
                vars[0]
            )
        }
        None => "is empty".into(),
    }
}

pub(crate) fn at_least_one(src: &SourceFile, field: &FieldPath, value: u64, out: &mut Findings) {
    if value < 1 {
        out.problems
            .push(src.problem(field, format!("must be at least 1, found {value}")));
    }
}

/// A non-empty absolute http(s) URL.
pub(crate) fn check_url(src: &SourceFile, field: &FieldPath, url: &str, out: &mut Findings) {
    if url.is_empty() {
        out.problems.push(src.problem(field, empty(src, field)));
        return;
    }
    if let Err(why) = absolute_http_url(url) {
        out.problems.push(src.problem(field, why));
    }
}

pub(crate) use crate::text::display_url;

pub(crate) fn absolute_http_url(url: &str) -> Result<(), String> {
    let shown = display_url(url);
    let shown = shown.as_str();
    if !url.contains("://") {
        return Err(if url.starts_with('/') {
            format!("`{shown}` is a path, not an absolute URL; write it like `https://host{shown}`")
        } else {
            format!("`{shown}` lacks its scheme; write it like `http://{shown}`")
        });
    }
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        Ok(u) => Err(format!(
            "`{shown}` is not an http(s) URL (scheme `{}`); write it like `https://host/path`",
            u.scheme()
        )),
        Err(e) => Err(format!(
            "`{shown}` is not an absolute URL ({e}); write it like `https://host/path`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_api_versions_look_like_v_major_dot_minor() {
        assert!(is_graph_version("v25.0"));
        assert!(is_graph_version("v19.10"));
        assert!(!is_graph_version("25.0"));
        assert!(!is_graph_version("v25"));
        assert!(!is_graph_version("v25.x"));
    }

    #[test]
    fn a_typo_suggests_the_nearest_known_key() {
        let known = WHATSAPP_KEYS;
        assert_eq!(closest("debounce_msec", known), Some("debounce_ms"));
        assert_eq!(closest("default_agnet", known), Some("default_agent"));
        assert_eq!(closest("completely_else", known), None);
    }

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        assert_eq!(
            display_url("https://user:pw@api.example.com/v1/x?key=abc#f"),
            "https://api.example.com/v1/x"
        );
        assert_eq!(
            display_url("http://localhost:11434"),
            "http://localhost:11434"
        );
    }

    #[test]
    fn a_url_problem_never_repeats_credentials_from_the_url() {
        let why = absolute_http_url("ftp://user:s3cret@host/x?key=s3cret").unwrap_err();
        assert!(why.contains("ftp://host/x"), "{why}");
        assert!(!why.contains("s3cret"), "{why}");
    }

    #[test]
    fn only_absolute_http_urls_are_accepted() {
        assert!(absolute_http_url("http://localhost:11434").is_ok());
        assert!(absolute_http_url("https://api.openai.com/v1").is_ok());
        assert!(absolute_http_url("localhost:11434").is_err());
        assert!(absolute_http_url("/v1").is_err());
        assert!(absolute_http_url("ftp://host/x").is_err());
    }
}
