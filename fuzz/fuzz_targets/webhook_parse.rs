//! The webhook body parser on arbitrary bytes: it may refuse a body, never panic, and what it
//! reads must survive the re-parse the inbox does from the stored raw message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wagate::whatsapp::payload::{self, Message, StatusKind};

fuzz_target!(|body: &[u8]| {
    let Ok(webhook) = payload::parse(body) else {
        return;
    };
    for change in &webhook.changes {
        let _ = change.phone_number_id();
        for message in &change.messages {
            let _ = change.contact_name_for(message);
            let _ = message.sender();
            // The inbox stores `raw` and reads it back on resume: same id, same content.
            let again = Message::from_value(&message.raw);
            assert_eq!(again.id, message.id);
            assert_eq!(again.kind, message.kind);
        }
        for status in &change.statuses {
            let _ = status.status.rank();
            assert_eq!(StatusKind::parse(status.status.as_str()), status.status);
        }
    }
    let counted: usize = webhook.changes.iter().map(|c| c.messages.len()).sum();
    assert_eq!(webhook.messages().count(), counted);
});
