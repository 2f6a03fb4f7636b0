//! Splitting a TCP syslog stream into messages (RFC 6587), detected per message:
//! octet counting (`LEN SP MSG`, the only framing of RFC 5425 over TLS) when a
//! message starts with a digit, else non-transparent framing ending at LF. A frame
//! longer than [`MAX_FRAME`] is cut there (marked truncated) and its rest skipped,
//! so one huge or endless message cannot grow the buffer without bound.

use bytes::{Buf, Bytes, BytesMut};

/// Longest message kept: the core's longest text plus room for the header.
pub const MAX_FRAME: usize = logbook_core::record::MAX_TEXT_BYTES + 2048;

#[derive(Debug, PartialEq)]
pub(crate) struct Frame {
    pub bytes: Bytes,
    pub truncated: bool,
}

#[derive(Default)]
pub(crate) struct Framer {
    pub buf: BytesMut,
    /// Octets of a cut octet-counted frame still to drop.
    skipping: usize,
    /// Dropping the rest of a cut newline-framed line.
    discarding_line: bool,
}

impl Framer {
    /// The next complete frame in the buffer, if there is one.
    pub(crate) fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if self.skipping > 0 {
                let n = self.skipping.min(self.buf.len());
                self.buf.advance(n);
                self.skipping -= n;
                if self.skipping > 0 {
                    return None;
                }
            }
            if self.discarding_line {
                match memchr::memchr(b'\n', &self.buf) {
                    Some(end) => {
                        self.buf.advance(end + 1);
                        self.discarding_line = false;
                    }
                    None => {
                        self.buf.clear();
                        return None;
                    }
                }
            }
            // Separators some senders put between frames.
            let blank = self
                .buf
                .iter()
                .take_while(|b| matches!(b, b'\n' | b'\r' | b'\0'))
                .count();
            self.buf.advance(blank);
            let first = *self.buf.first()?;
            if first.is_ascii_digit() && first != b'0' {
                match self.octet_counted() {
                    Counted::Frame(frame) => return Some(frame),
                    Counted::NeedMore => return None,
                    Counted::Newline => {}
                    Counted::Skipped => continue,
                }
            }
            return self.line();
        }
    }

    fn octet_counted(&mut self) -> Counted {
        let digits = self.buf.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 10 {
            return Counted::Newline;
        }
        match self.buf.get(digits) {
            None => return Counted::NeedMore,
            Some(b' ') => {}
            Some(_) => return Counted::Newline,
        }
        let length: usize = match std::str::from_utf8(&self.buf[..digits])
            .ok()
            .and_then(|d| d.parse().ok())
        {
            Some(n) => n,
            None => return Counted::Newline,
        };
        let start = digits + 1;
        let kept = length.min(MAX_FRAME);
        if self.buf.len() < start + kept {
            return Counted::NeedMore;
        }
        self.buf.advance(start);
        let bytes = self.buf.split_to(kept).freeze();
        self.skipping = length - kept;
        if bytes.is_empty() {
            return Counted::Skipped;
        }
        Counted::Frame(Frame {
            bytes,
            truncated: length > kept,
        })
    }

    fn line(&mut self) -> Option<Frame> {
        let window = self.buf.len().min(MAX_FRAME + 1);
        match memchr::memchr(b'\n', &self.buf[..window]) {
            Some(end) => {
                let bytes = self.buf.split_to(end + 1).freeze();
                Some(Frame {
                    bytes,
                    truncated: false,
                })
            }
            None if self.buf.len() > MAX_FRAME => {
                let bytes = self.buf.split_to(MAX_FRAME).freeze();
                self.discarding_line = true;
                Some(Frame {
                    bytes,
                    truncated: true,
                })
            }
            None => None,
        }
    }

    /// What is left when the sender closes: a last line without its LF.
    pub(crate) fn finish(&mut self) -> Option<Frame> {
        if let Some(frame) = self.next_frame() {
            return Some(frame);
        }
        if self.skipping > 0 || self.discarding_line || self.buf.is_empty() {
            return None;
        }
        let bytes = std::mem::take(&mut self.buf).freeze();
        Some(Frame {
            bytes,
            truncated: false,
        })
    }
}

enum Counted {
    Frame(Frame),
    NeedMore,
    Newline,
    Skipped,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut framer = Framer::default();
        let mut out = Vec::new();
        for chunk in chunks {
            framer.buf.extend_from_slice(chunk);
            while let Some(frame) = framer.next_frame() {
                out.push(frame);
            }
        }
        out.extend(framer.finish());
        out.into_iter()
            .map(|f| (String::from_utf8_lossy(&f.bytes).into_owned(), f.truncated))
            .collect()
    }

    #[test]
    fn both_framings_are_detected_per_message_across_reads() {
        let got = frames(&[
            b"12 <13>1 - - x\n<14>line one\n",
            b"<15>line ",
            b"two\n1",
            b"1 <13>counted",
            b"\n8 <13>last",
        ]);
        let texts: Vec<_> = got.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            texts,
            [
                "<13>1 - - x\n",
                "<14>line one\n",
                "<15>line two\n",
                "<13>counted",
                "<13>last"
            ]
        );
        // A line that merely starts with a digit is newline-framed.
        assert_eq!(frames(&[b"2024 was a year\n"])[0].0, "2024 was a year\n");
    }

    #[test]
    fn oversize_frames_are_cut_and_their_rest_skipped() {
        let mut big = format!("{} ", MAX_FRAME + 10).into_bytes();
        big.extend(std::iter::repeat_n(b'a', MAX_FRAME + 10));
        big.extend(b"5 <13>x");
        let got = frames(&[&big]);
        assert_eq!(got.len(), 2);
        assert!(got[0].1 && got[0].0.len() == MAX_FRAME);
        assert_eq!(got[1], ("<13>x".to_string(), false));

        let mut line = vec![b'b'; MAX_FRAME * 2];
        line.extend(b"\n<13>after\n");
        let got = frames(&[&line[..100], &line[100..]]);
        assert_eq!(got.len(), 2);
        assert!(got[0].1);
        assert_eq!(got[1].0, "<13>after\n");
    }
}
