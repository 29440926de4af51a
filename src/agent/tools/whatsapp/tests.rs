//! The sending tools' checks: what passes, what the model is told to fix.

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
