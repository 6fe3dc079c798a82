//! Streaming one log entry: its payload as the writer produces it, then its header, with
//! non-temporal stores (see [`LogWrites`](crate::persist::LogWrites); the stored way is the
//! writer's own).
//!
//! The entry is written in whole words. Its first [`HEAD`] bytes (header and start of the
//! payload) wait in a buffer until the checksum is known; later lines go out as they fill,
//! straight from the caller's bytes where they are line-aligned. The checksum is hashed from
//! the caller's bytes, never read back from the log (a line just streamed is not in the
//! cache). Only the entry's own words are written, never the padding to the next entry,
//! exactly as with stores: a `RETIRED` entry written over the first entry of a log recovery may
//! still need must change its header words and nothing else, or a torn write could leave that
//! entry's header in place over a damaged payload.

use std::mem::MaybeUninit;

use xxhash_rust::xxh3::{xxh3_64_with_seed, Xxh3};

use crate::layout::log::ENTRY_HEADER;
use crate::media::Media;
use crate::persist::CACHE_LINE;

/// Bytes of a streamed entry buffered until its header is written: entries up to this size
/// (undo entries of ranges up to 480 bytes, commit records of up to 29 ops and ranges) hash in
/// one call and allocate nothing. At 256 bytes, W2's 256-byte undo entry took the long way
/// and cost 8% (AMD EPYC Zen 4).
const HEAD: usize = 8 * CACHE_LINE;
const HEADER: usize = ENTRY_HEADER as usize;

/// The payload of one entry being streamed, by the
/// [`LogWriter`](super::writer::LogWriter).
pub(crate) struct Payload<'m> {
    media: &'m Media,
    /// Pool offset of the entry's header.
    entry: u64,
    /// Payload bytes written so far.
    written: u64,
    /// The checksum's seed.
    seed: u64,
    streamed: Option<Box<Streamed>>,
}

/// What a streamed entry keeps while it is written. Boxed only for entries larger than
/// [`HEAD`]; smaller ones live in `head`.
struct Streamed {
    /// The checksum of the payload so far, once it outgrew `head`.
    hasher: Xxh3,
    /// A partly filled line beyond `head`, and how many of its bytes are filled.
    tail: [u8; CACHE_LINE],
    tail_fill: usize,
    /// Pool offset of the line `tail` goes to.
    tail_at: u64,
}

/// A buffered head of a streamed entry, on the stack of the entry function. Only the bytes
/// written are initialized: zeroing the whole buffer for every entry cost 3% of an atomic
/// allocation's instructions.
pub(crate) struct Head {
    bytes: [MaybeUninit<u8>; HEAD],
    /// Bytes `..len` are initialized.
    len: usize,
}

impl Head {
    pub(crate) fn new() -> Head {
        let mut bytes = [MaybeUninit::uninit(); HEAD];
        // The header is written last, over these zeros, so that the initialized bytes stay a
        // prefix.
        bytes[..HEADER].copy_from_slice(&[MaybeUninit::new(0); HEADER]);
        Head { bytes, len: HEADER }
    }

    /// Appends as much of `bytes` as fits; returns how much that was.
    #[inline]
    fn push(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(HEAD - self.len);
        // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and every `u8` is a valid one; the
        // slice is `bytes`' first `n <= bytes.len()` bytes.
        let src =
            unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<MaybeUninit<u8>>(), n) };
        self.bytes[self.len..self.len + n].copy_from_slice(src);
        self.len += n;
        n
    }

    /// Appends one word, which the caller has checked fits: a fixed-size copy.
    #[inline]
    fn push_u64(&mut self, value: u64) {
        self.bytes[self.len..self.len + 8]
            .copy_from_slice(&value.to_le_bytes().map(MaybeUninit::new));
        self.len += 8;
    }

    /// Pads the bytes written to whole words with zeros (`HEAD` is whole words, so they fit),
    /// in one fixed-size store.
    #[inline]
    fn pad_to_word(&mut self) {
        if self.len % 8 != 0 {
            let start = self.len - self.len % 8;
            let mut word = [0u8; 8];
            word[..self.len - start].copy_from_slice(&self.filled()[start..]);
            self.len = start;
            self.push_u64(u64::from_le_bytes(word));
        }
    }

    /// The bytes written so far, header included.
    #[inline]
    fn filled(&self) -> &[u8] {
        // SAFETY: bytes `..len` are initialized (`new`, `push` and `push_u64` keep it so), and
        // `MaybeUninit<u8>` has the layout of `u8`.
        unsafe { std::slice::from_raw_parts(self.bytes.as_ptr().cast::<u8>(), self.len) }
    }

    /// Writes the header's first three words.
    fn set_header(&mut self, words: [u64; 3]) {
        for (i, word) in words.into_iter().enumerate() {
            self.bytes[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes().map(MaybeUninit::new));
        }
    }
}

impl<'m> Payload<'m> {
    pub(crate) fn new(media: &'m Media, entry: u64, seed: u64) -> Payload<'m> {
        Payload {
            media,
            entry,
            written: 0,
            seed,
            streamed: None,
        }
    }

    /// Appends `bytes` to the payload.
    #[inline]
    pub(crate) fn put(&mut self, head: &mut Head, bytes: &[u8]) {
        let n = head.push(bytes);
        self.written += n as u64;
        let rest = &bytes[n..];
        if !rest.is_empty() {
            self.put_beyond_head(head, rest);
        }
    }

    /// Appends a little-endian word: a fixed-size copy while it fits the head.
    #[inline]
    pub(crate) fn put_u64(&mut self, head: &mut Head, value: u64) {
        if head.len + 8 <= HEAD {
            head.push_u64(value);
            self.written += 8;
        } else {
            self.put(head, &value.to_le_bytes());
        }
    }

    /// Streams bytes past the buffered head: whole lines straight from `bytes` where the
    /// partial line is empty, the rest through it.
    #[cold]
    #[inline(never)]
    fn put_beyond_head(&mut self, head: &Head, mut bytes: &[u8]) {
        let domain = &self.media.domain;
        let s = self.streamed.get_or_insert_with(|| {
            let mut hasher = Xxh3::with_seed(self.seed);
            hasher.update(&head.filled()[HEADER..]);
            Box::new(Streamed {
                hasher,
                tail: [0; CACHE_LINE],
                tail_fill: 0,
                tail_at: self.entry + HEAD as u64,
            })
        });
        s.hasher.update(bytes);
        self.written += bytes.len() as u64;
        while !bytes.is_empty() {
            if s.tail_fill == 0 && bytes.len() >= CACHE_LINE {
                let whole = bytes.len() / CACHE_LINE * CACHE_LINE;
                domain.stream_log(s.tail_at, &bytes[..whole]);
                s.tail_at += whole as u64;
                bytes = &bytes[whole..];
                continue;
            }
            let n = bytes.len().min(CACHE_LINE - s.tail_fill);
            s.tail[s.tail_fill..s.tail_fill + n].copy_from_slice(&bytes[..n]);
            s.tail_fill += n;
            bytes = &bytes[n..];
            if s.tail_fill == CACHE_LINE {
                domain.stream_log(s.tail_at, &s.tail);
                s.tail_at += CACHE_LINE as u64;
                s.tail_fill = 0;
            }
        }
    }

    /// Payload bytes written.
    pub(crate) fn len(&self) -> u64 {
        self.written
    }

    /// Writes the header, whose first two words the caller gives (`kind | len`, generation),
    /// with the checksum of everything put: the entry goes out whole here.
    #[inline]
    pub(crate) fn finish(self, head: &mut Head, word0: u64, word1: u64) {
        let media = self.media;
        let checksum = match &self.streamed {
            Some(s) => s.hasher.digest(),
            None => xxh3_64_with_seed(&head.filled()[HEADER..], self.seed),
        };
        head.set_header([word0, word1, checksum]);
        // Whole words: a payload that ends inside one is followed by zeros.
        head.pad_to_word();
        media.domain.stream_log(self.entry, head.filled());
        if let Some(mut s) = self.streamed {
            if s.tail_fill > 0 {
                let words = s.tail_fill.next_multiple_of(8);
                s.tail[s.tail_fill..words].fill(0);
                media.domain.stream_log(s.tail_at, &s.tail[..words]);
            }
        }
    }
}
