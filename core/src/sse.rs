//! Server-Sent Events: the one splitter of a raw `text/event-stream` body into `(event, data)` pairs,
//! used by [`crate::call::CallStream::push_bytes`] for bindings that only see the bytes, and by the test
//! runners for recorded transcripts.

/// Splits a Server-Sent Events byte stream into `(event, data)` pairs (the WHATWG rules: lines end in
/// LF, CR or CRLF; a blank line dispatches; `data:` lines join with LF; one space after the colon is
/// dropped; comments and other fields are ignored). Bytes are buffered, so chunks may split anything.
#[derive(Debug, Default)]
pub struct SseSplitter {
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF at the start of the next one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
}

impl SseSplitter {
    /// Feeds the next bytes; `emit` gets every event they complete.
    pub fn feed(&mut self, bytes: &[u8], mut emit: impl FnMut(Option<&str>, &str)) {
        let mut rest = bytes;
        if self.after_cr && rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
        self.after_cr = false;
        while let Some(i) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&rest[..i]);
            let crlf = rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n');
            if rest[i] == b'\r' && i + 1 == rest.len() {
                self.after_cr = true;
            }
            rest = &rest[i + if crlf { 2 } else { 1 }..];
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut emit);
        }
        self.line.extend_from_slice(rest);
    }

    fn line_done(&mut self, line: &[u8], emit: &mut impl FnMut(Option<&str>, &str)) {
        if line.is_empty() {
            self.dispatch(emit);
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*text, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
    }

    fn dispatch(&mut self, emit: &mut impl FnMut(Option<&str>, &str)) {
        let event = self.event.take();
        if let Some(data) = self.data.take() {
            emit(event.as_deref(), &data);
        }
    }

    /// The end of the body: a last line and event without their terminators are still delivered.
    pub fn end(mut self, mut emit: impl FnMut(Option<&str>, &str)) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut emit);
        }
        self.dispatch(&mut emit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_without_its_blank_line_is_delivered_at_the_end() {
        let mut seen = Vec::new();
        let mut sse = SseSplitter::default();
        sse.feed(b"event: message_stop\ndata: {\"a\":\n", |e, d| seen.push((e.map(str::to_string), d.to_string())));
        sse.feed(b"data: 1}", |e, d| seen.push((e.map(str::to_string), d.to_string())));
        assert!(seen.is_empty());
        sse.end(|e, d| seen.push((e.map(str::to_string), d.to_string())));
        assert_eq!(seen, [(Some("message_stop".to_string()), "{\"a\":\n1}".to_string())]);
    }

    #[test]
    fn crlf_split_across_chunks_and_comments() {
        let mut seen = Vec::new();
        let mut sse = SseSplitter::default();
        for chunk in [&b"data: a\r"[..], b"\n\r", b"\n: comment\n\nevent:x\ndata:b\n\n"] {
            sse.feed(chunk, |e, d| seen.push((e.map(str::to_string), d.to_string())));
        }
        assert_eq!(seen, [(None, "a".to_string()), (Some("x".to_string()), "b".to_string())]);
    }
}
