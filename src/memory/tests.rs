use super::*;
use tempfile::TempDir;

const NOW: i64 = 1_700_000_000;
const DAY: u64 = 86_400;

fn open_temp() -> (TempDir, Memory) {
    let dir = tempfile::tempdir().expect("tempdir");
    let memory = Memory::open(&dir.path().join("wagate.db")).expect("open memory");
    (dir, memory)
}

fn contents(entries: &[MemoryEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.content.as_str()).collect()
}

/// Appends `n` turns of one user message and one reply, a minute apart, ending at `NOW`.
async fn chat_turns(memory: &Memory, key: &str, n: i64) {
    for turn in 0..n {
        let at = NOW - (n - 1 - turn) * 60;
        let entries = [
            MemoryEntry::user(format!("question {turn}"), at),
            MemoryEntry::assistant(format!("answer {turn}"), at),
        ];
        memory.append(key, turn, &entries).await.expect("append");
    }
}

#[tokio::test]
async fn a_turn_sees_the_newest_messages_in_the_order_they_were_said() {
    let (_dir, memory) = open_temp();
    let key = key_for_whatsapp("5511999999999");
    chat_turns(&memory, &key, 5).await;

    let window = memory.load_at(&key, 3, DAY, NOW).await.expect("load");

    assert_eq!(contents(&window), ["answer 3", "question 4", "answer 4"]);
    assert_eq!(window[0].role, MemoryRole::Assistant);
    assert_eq!(window[1].role, MemoryRole::User);
}

#[tokio::test]
async fn messages_said_in_the_same_second_keep_their_order() {
    let (_dir, memory) = open_temp();
    let entries: Vec<_> = (0..6)
        .map(|i| MemoryEntry::user(format!("m{i}"), NOW))
        .collect();
    memory.append("wa_1", 1, &entries).await.expect("append");

    let window = memory.load_at("wa_1", 4, DAY, NOW).await.expect("load");

    assert_eq!(contents(&window), ["m2", "m3", "m4", "m5"]);
}

#[tokio::test]
async fn messages_older_than_the_ttl_are_not_used() {
    let (_dir, memory) = open_temp();
    let old = [MemoryEntry::user("from yesterday", NOW - 3_601)];
    let edge = [MemoryEntry::user("exactly an hour ago", NOW - 3_600)];
    let fresh = [MemoryEntry::user("just now", NOW - 5)];
    memory.append("wa_1", 1, &old).await.expect("append");
    memory.append("wa_1", 2, &edge).await.expect("append");
    memory.append("wa_1", 3, &fresh).await.expect("append");

    let window = memory.load_at("wa_1", 20, 3_600, NOW).await.expect("load");

    assert_eq!(contents(&window), ["exactly an hour ago", "just now"]);
}

#[tokio::test]
async fn a_zero_ttl_keeps_every_message() {
    let (_dir, memory) = open_temp();
    let ancient = [MemoryEntry::user("long ago", NOW - 10 * DAY as i64)];
    memory.append("wa_1", 1, &ancient).await.expect("append");

    let window = memory.load_at("wa_1", 20, 0, NOW).await.expect("load");
    let purged = memory.purge_expired_at(0, NOW).await.expect("purge");

    assert_eq!(contents(&window), ["long ago"]);
    assert_eq!(purged, 0);
}

#[tokio::test]
async fn a_zero_window_loads_nothing() {
    let (_dir, memory) = open_temp();
    chat_turns(&memory, "wa_1", 2).await;

    let window = memory.load_at("wa_1", 0, DAY, NOW).await.expect("load");

    assert!(window.is_empty());
}

#[tokio::test]
async fn one_users_conversation_is_never_shown_to_another() {
    let (_dir, memory) = open_temp();
    let alice = key_for_whatsapp("111");
    let bob = key_for_whatsapp("222");
    memory
        .append(&alice, 1, &[MemoryEntry::user("alice's secret", NOW)])
        .await
        .expect("append");
    memory
        .append(&bob, 1, &[MemoryEntry::user("bob's question", NOW)])
        .await
        .expect("append");

    let bobs = memory.load_at(&bob, 20, DAY, NOW).await.expect("load");
    let chat = memory
        .load_at(&key_for_chat("111"), 20, DAY, NOW)
        .await
        .expect("load");

    assert_eq!(contents(&bobs), ["bob's question"]);
    assert!(chat.is_empty(), "a chat_ key must not see a wa_ key's rows");
}

#[tokio::test]
async fn a_resumed_turn_does_not_remember_its_messages_twice() {
    let (_dir, memory) = open_temp();
    let entries = [
        MemoryEntry::user("hello", NOW),
        MemoryEntry::assistant("hi there", NOW),
    ];
    memory.append("wa_1", 42, &entries).await.expect("append");
    // After a crash the same turn runs again, a little later, with the same messages.
    let again = [
        MemoryEntry::user("hello", NOW + 30),
        MemoryEntry::assistant("hi there", NOW + 30),
    ];
    memory
        .append("wa_1", 42, &again)
        .await
        .expect("append again");

    let window = memory
        .load_at("wa_1", 20, DAY, NOW + 30)
        .await
        .expect("load");

    assert_eq!(contents(&window), ["hello", "hi there"]);
    assert_eq!(memory.count("wa_1").await, 2);
}

#[tokio::test]
async fn the_same_turn_id_for_two_users_stores_both() {
    let (_dir, memory) = open_temp();
    let entries = [MemoryEntry::user("hello", NOW)];
    memory.append("wa_1", 7, &entries).await.expect("append");
    memory.append("wa_2", 7, &entries).await.expect("append");

    assert_eq!(memory.count("wa_1").await, 1);
    assert_eq!(memory.count("wa_2").await, 1);
}

#[tokio::test]
async fn purging_deletes_expired_messages_and_keeps_fresh_ones() {
    let (_dir, memory) = open_temp();
    let old: Vec<_> = (0..2_500)
        .map(|i| MemoryEntry::user(format!("old {i}"), NOW - 2 * DAY as i64))
        .collect();
    memory.append("wa_1", 1, &old).await.expect("append");
    memory
        .append("wa_1", 2, &[MemoryEntry::user("fresh", NOW)])
        .await
        .expect("append");

    let purged = memory.purge_expired_at(DAY, NOW).await.expect("purge");

    assert_eq!(purged, 2_500);
    let everything = memory.history("wa_1", 10_000).await.expect("history");
    assert_eq!(contents(&everything), ["fresh"]);
}

#[tokio::test]
async fn the_background_purger_deletes_expired_messages() {
    let (_dir, memory) = open_temp();
    let ancient = [MemoryEntry::user("ancient", unix_now() - 2 * DAY as i64)];
    memory.append("wa_1", 1, &ancient).await.expect("append");

    let purger = memory.clone().spawn_purger(Duration::from_secs(3_600), DAY);
    let mut remaining = usize::MAX;
    for _ in 0..100 {
        remaining = memory.count("wa_1").await;
        if remaining == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    purger.abort();

    assert_eq!(remaining, 0);
}

#[tokio::test]
async fn history_shows_expired_messages_until_they_are_purged() {
    let (_dir, memory) = open_temp();
    let old = [MemoryEntry::user("last week", NOW - 7 * DAY as i64)];
    memory.append("wa_1", 1, &old).await.expect("append");

    let history = memory.history("wa_1", 10).await.expect("history");

    assert_eq!(contents(&history), ["last week"]);
}

#[tokio::test]
async fn memory_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("wagate.db");
    {
        let memory = Memory::open(&path).expect("open");
        chat_turns(&memory, "wa_1", 2).await;
    }

    let reopened = Memory::open(&path).expect("reopen");
    let window = reopened.load_at("wa_1", 20, DAY, NOW).await.expect("load");

    assert_eq!(
        contents(&window),
        ["question 0", "answer 0", "question 1", "answer 1"]
    );
}

#[tokio::test]
async fn an_image_placeholder_is_remembered_exactly_as_given() {
    let (_dir, memory) = open_temp();
    let entries = [MemoryEntry::user("[Image] what is this plant?", NOW)];
    memory.append("wa_1", 1, &entries).await.expect("append");

    let window = memory.load_at("wa_1", 20, DAY, NOW).await.expect("load");

    assert_eq!(window, entries);
}

#[tokio::test]
async fn memory_waits_for_another_writer_on_the_same_file() {
    let (dir, memory) = open_temp();
    // The inbox's connection holds the write lock for a moment.
    let inbox = rusqlite::Connection::open(dir.path().join("wagate.db")).expect("inbox connection");
    inbox.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        inbox.execute_batch("COMMIT").expect("unlock");
    });

    let result = memory
        .append("wa_1", 1, &[MemoryEntry::user("hello", NOW)])
        .await;
    release.join().expect("release thread");

    assert!(result.is_ok(), "append failed: {result:?}");
    assert_eq!(memory.count("wa_1").await, 1);
}

#[test]
fn the_purger_keeps_messages_as_long_as_the_most_patient_agent() {
    assert_eq!(purge_ttl([3_600, 86_400, 600]), 86_400);
    assert_eq!(purge_ttl([3_600, 0]), 0, "an agent that never forgets");
    assert_eq!(purge_ttl([]), 0);
}

#[test]
fn remembered_messages_become_chat_history_with_their_role() {
    let user = MemoryEntry::user("hi", NOW).to_chat_message();
    let reply = MemoryEntry::assistant("hello!", NOW).to_chat_message();

    assert_eq!(user, ChatMessage::user("hi"));
    assert_eq!(reply, ChatMessage::assistant("hello!"));
}
