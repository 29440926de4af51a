//! Fenced code block delimiters (```` ``` ```` or `~~~`), shared by formatting and splitting so
//! both agree on where code starts and ends.

/// An opening code fence: three or more backticks or tildes, then an optional info string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::whatsapp) struct Fence {
    pub marker: char,
    pub len: usize,
    /// Spaces before the fence (a fence inside a list item is indented).
    pub indent: usize,
}

impl Fence {
    /// The fence `line` opens, if it is an opening fence.
    pub fn open(line: &str) -> Option<Fence> {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
        let len = trimmed.chars().take_while(|c| *c == marker).count();
        let info = &trimmed[len..];
        // "```code```" on one line is inline monospace, not an opening fence.
        let opens = len >= 3 && !(marker == '`' && info.contains('`'));
        opens.then_some(Fence {
            marker,
            len,
            indent: line.len() - trimmed.len(),
        })
    }

    /// Whether `line` closes this fence: the same marker, at least as many, nothing else.
    pub fn closes(&self, line: &str) -> bool {
        let trimmed = line.trim();
        trimmed.len() >= self.len && trimmed.chars().all(|c| c == self.marker)
    }

    /// The shortest line that closes this fence.
    pub fn closer(&self) -> String {
        std::iter::repeat_n(self.marker, self.len).collect()
    }
}
