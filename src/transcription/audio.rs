//! Facts about an audio file that decide how it is uploaded: the file name a provider expects
//! for its MIME type, and how long it plays.
//!
//! WhatsApp's webhook does not say how long a voice note is, so the duration comes from the
//! file. Ogg/Opus (every voice note) and WAV carry it exactly: the granule position of the last
//! Ogg page counts 48 kHz samples; a WAV `fmt ` chunk gives the byte rate. Other formats are
//! estimated from their size at a HIGH typical bitrate, so the estimate errs short: an audio
//! within `max_seconds` is never refused because of the estimate, while one far over it is.

/// `audio/ogg; codecs=opus` → `audio/ogg`, lowercased.
pub(super) fn essence(mime_type: &str) -> String {
    crate::text::mime_essence(mime_type).to_ascii_lowercase()
}

/// The upload's file name. OpenAI-compatible servers pick the decoder from the extension, so it
/// must match the MIME type (`audio/ogg` → `voice.ogg`).
pub(super) fn file_name(essence: &str) -> &'static str {
    match essence {
        "audio/ogg" | "audio/opus" | "application/ogg" => "voice.ogg",
        "audio/mpeg" | "audio/mp3" | "audio/mpga" => "voice.mp3",
        "audio/mp4" | "audio/m4a" | "audio/x-m4a" => "voice.m4a",
        "audio/aac" | "audio/x-aac" => "voice.aac",
        "audio/amr" | "audio/amr-nb" => "voice.amr",
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "voice.wav",
        "audio/webm" => "voice.webm",
        "audio/flac" | "audio/x-flac" => "voice.flac",
        _ => "voice.bin",
    }
}

/// How long the audio plays, in seconds: read from the file when the format says it,
/// else estimated from the size (see the module comment).
pub(super) fn duration_seconds(audio: &[u8], essence: &str) -> f64 {
    if let Some(seconds) = ogg_opus_seconds(audio).or_else(|| wav_seconds(audio)) {
        return seconds;
    }
    audio.len() as f64 / assumed_bytes_per_second(essence)
}

/// Bytes per second at a high typical bitrate for the format.
fn assumed_bytes_per_second(essence: &str) -> f64 {
    match essence {
        // WhatsApp records voice notes as Opus at about 16 kbit/s; browsers' webm is Opus too.
        "audio/ogg" | "audio/opus" | "application/ogg" | "audio/webm" => 2_000.0,
        // AMR-NB at its highest mode, 12.2 kbit/s: 32-byte frames every 20 ms.
        "audio/amr" | "audio/amr-nb" => 1_600.0,
        // 16 kHz 16-bit mono, what speech recorders write; a header would have told us better.
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => 32_000.0,
        // MP3, AAC, M4A and anything else: 128 kbit/s.
        _ => 16_000.0,
    }
}

const OGG_CAPTURE: &[u8] = b"OggS";
/// Capture pattern, version, header type, then the 8-byte granule position.
const OGG_GRANULE: std::ops::Range<usize> = 6..14;
/// Opus timestamps count samples at 48 kHz, whatever the input rate was.
const OPUS_RATE: f64 = 48_000.0;
/// Opus never goes below 6 kbit/s; a granule implying under 1 kbit/s is an `OggS` that happened
/// to appear inside a packet, not a page header.
const MIN_OPUS_BYTES_PER_SECOND: f64 = 125.0;

/// Exact duration of an Ogg/Opus file: the last page's granule position minus the pre-skip.
fn ogg_opus_seconds(audio: &[u8]) -> Option<f64> {
    if !audio.starts_with(OGG_CAPTURE) {
        return None;
    }
    // The first page holds `OpusHead`; its pre-skip (u16 at offset 10) is decoder warm-up.
    let head = find(audio, b"OpusHead", 0)?;
    let pre_skip = u16::from_le_bytes(audio.get(head + 10..head + 12)?.try_into().ok()?);
    // The last audio page with a plausible granule position.
    let mut end = audio.len();
    while let Some(page) = rfind(&audio[..end], OGG_CAPTURE) {
        if let Some(raw) = audio.get(page + OGG_GRANULE.start..page + OGG_GRANULE.end) {
            let granule = i64::from_le_bytes(raw.try_into().ok()?);
            // Header pages carry granule 0; a page where no packet ends, -1.
            if granule > 0 && audio.get(page + 4) == Some(&0) {
                let samples = (granule - i64::from(pre_skip)).max(0);
                let seconds = samples as f64 / OPUS_RATE;
                if seconds <= audio.len() as f64 / MIN_OPUS_BYTES_PER_SECOND {
                    return Some(seconds);
                }
            }
        }
        end = page;
    }
    None
}

/// Exact duration of a RIFF/WAVE file: its size over the byte rate of the `fmt ` chunk.
fn wav_seconds(audio: &[u8]) -> Option<f64> {
    if audio.get(0..4)? != b"RIFF" || audio.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut at = 12;
    while let Some(header) = audio.get(at..at + 8) {
        let size = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
        if &header[0..4] == b"fmt " {
            let byte_rate = u32::from_le_bytes(audio.get(at + 16..at + 20)?.try_into().ok()?);
            return (byte_rate > 0).then(|| audio.len() as f64 / f64::from(byte_rate));
        }
        // Chunks are padded to an even size.
        at = at.checked_add(8)?.checked_add(size + (size & 1))?;
    }
    None
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal Ogg/Opus stream: an `OpusHead` page, then a last page at `granule`.
    fn ogg_opus(pre_skip: u16, granule: i64, filler: usize) -> Vec<u8> {
        let page = |granule: i64, payload: &[u8]| {
            let mut p = b"OggS".to_vec();
            p.push(0); // version
            p.push(0); // header type
            p.extend_from_slice(&granule.to_le_bytes());
            p.extend_from_slice(&[0; 13]); // serial, sequence, crc, segment count
            p.extend_from_slice(payload);
            p
        };
        let mut head = b"OpusHead".to_vec();
        head.push(1); // version
        head.push(1); // channels
        head.extend_from_slice(&pre_skip.to_le_bytes());
        head.extend_from_slice(&16_000u32.to_le_bytes());
        let mut file = page(0, &head);
        file.extend(page(-1, &vec![7u8; filler]));
        file.extend(page(granule, &[1, 2, 3]));
        file
    }

    fn wav(byte_rate: u32, data_bytes: usize) -> Vec<u8> {
        let mut file = b"RIFF".to_vec();
        file.extend_from_slice(&((36 + data_bytes) as u32).to_le_bytes());
        file.extend_from_slice(b"WAVEfmt ");
        file.extend_from_slice(&16u32.to_le_bytes());
        file.extend_from_slice(&[1, 0, 1, 0]); // PCM, mono
        file.extend_from_slice(&(byte_rate / 2).to_le_bytes()); // sample rate
        file.extend_from_slice(&byte_rate.to_le_bytes());
        file.extend_from_slice(&[2, 0, 16, 0]); // block align, bits
        file.extend_from_slice(b"data");
        file.extend_from_slice(&(data_bytes as u32).to_le_bytes());
        file.extend(std::iter::repeat_n(0u8, data_bytes));
        file
    }

    #[test]
    fn a_voice_note_is_measured_from_its_last_ogg_page() {
        // 10 minutes at 8 kbit/s: the size alone would suggest 5 minutes.
        let file = ogg_opus(312, 600 * 48_000 + 312, 600_000);
        let seconds = duration_seconds(&file, "audio/ogg");
        assert!((seconds - 600.0).abs() < 0.01, "{seconds}");
    }

    #[test]
    fn an_implausible_granule_is_not_believed() {
        // An hour in 3 KB cannot be Opus: the size estimate is used instead.
        let file = ogg_opus(0, 3_600 * 48_000, 3_000);
        let seconds = duration_seconds(&file, "audio/ogg");
        assert_eq!(seconds, file.len() as f64 / 2_000.0);
    }

    #[test]
    fn a_wav_file_is_measured_from_its_byte_rate() {
        let file = wav(32_000, 96_000);
        let seconds = duration_seconds(&file, "audio/wav");
        assert!((seconds - 3.0).abs() < 0.01, "{seconds}");
    }

    #[test]
    fn other_audio_is_estimated_from_its_size() {
        assert_eq!(duration_seconds(&vec![0u8; 20_000], "audio/ogg"), 10.0);
        assert_eq!(duration_seconds(&vec![0u8; 160_000], "audio/mpeg"), 10.0);
        assert_eq!(duration_seconds(&vec![0u8; 16_000], "audio/amr"), 10.0);
    }

    #[test]
    fn a_truncated_ogg_file_falls_back_to_the_estimate() {
        let mut file = ogg_opus(0, 48_000, 0);
        file.truncate(30); // the OpusHead is cut
        assert_eq!(duration_seconds(&file, "audio/ogg"), 30.0 / 2_000.0);
    }

    #[test]
    fn the_file_name_matches_the_mime_type() {
        for (mime, name) in [
            ("audio/ogg; codecs=opus", "voice.ogg"),
            ("audio/mpeg", "voice.mp3"),
            ("audio/mp4", "voice.m4a"),
            ("audio/aac", "voice.aac"),
            ("audio/amr", "voice.amr"),
            ("audio/x-wav", "voice.wav"),
            ("Audio/WAV", "voice.wav"),
            ("audio/webm", "voice.webm"),
        ] {
            assert_eq!(file_name(&essence(mime)), name, "{mime}");
        }
    }
}
