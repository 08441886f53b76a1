//! The chunked transfer coding (RFC 9112 §7.1), decoded incrementally and
//! strictly: chunk sizes of 1 to 16 hex digits, every line ended by CRLF
//! (a bare LF or CR is refused), chunk extensions and trailers bounded in
//! size and discarded (they are never passed on).
//!
//! The decoder is fed whatever bytes have arrived and reports how many it
//! consumed and where, in what it was given, the next run of body data is,
//! so that data can be passed on without a copy.

use std::ops::Range;

/// Longest chunk extension accepted on one size line.
pub const MAX_EXTENSION: usize = 1024;
/// Most trailer bytes accepted after the last chunk.
pub const MAX_TRAILERS: usize = 8 * 1024;

/// Why a chunked body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("invalid chunk size")]
    Size,
    #[error("chunk size of more than 16 hex digits")]
    SizeTooLong,
    #[error("invalid chunk extension")]
    Extension,
    #[error("chunk extension longer than allowed")]
    ExtensionTooLong,
    #[error("a chunk line not ended by CRLF")]
    LineEnd,
    #[error("invalid trailer section")]
    Trailer,
    #[error("trailer section larger than allowed")]
    TrailersTooLong,
}

/// What one call to [`Decoder::feed`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the input used (data included).
    pub consumed: usize,
    /// Body data within the input, if any was reached.
    pub data: Option<Range<usize>>,
    /// The body (trailers included) has ended.
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    Size {
        digits: u8,
        value: u64,
    },
    /// Whitespace after the size, before `;` or CR.
    SizeWs,
    /// After `;`: extension text, until CR.
    Extension {
        len: usize,
    },
    /// A CR was read; LF must follow. `then` is what comes after.
    Lf {
        then: After,
    },
    /// Inside a chunk's data.
    Data {
        left: u64,
    },
    /// After a chunk's data: CR must come.
    DataCr,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// A trailer field's name, up to its colon.
    TrailerName,
    /// A trailer field's value.
    Trailer,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Data(u64),
    Size,
    TrailerStart,
    Done,
}

/// A chunked body being decoded.
#[derive(Debug, Clone)]
pub struct Decoder {
    state: State,
    /// The size of the chunk whose line is being read.
    pending: u64,
    trailers: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            state: State::Size { digits: 0, value: 0 },
            pending: 0,
            trailers: 0,
        }
    }
}

impl Decoder {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes framing bytes of `input` up to the next run of data (which
    /// it reports and consumes) or to the end of the body.
    pub fn feed(&mut self, input: &[u8]) -> Result<Progress, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            self.state = match self.state {
                State::Done => break,
                State::Data { left } => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(input.len() - i);
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { left }
                    };
                    return Ok(Progress {
                        consumed: i + take,
                        data: Some(i..i + take),
                        done: false,
                    });
                }
                State::Size { digits, value } => match hex(b) {
                    Some(_) if digits >= 16 => return Err(ChunkError::SizeTooLong),
                    Some(d) => State::Size {
                        digits: digits + 1,
                        value: (value << 4) | u64::from(d),
                    },
                    None if digits == 0 => return Err(ChunkError::Size),
                    None => self.size_done(value, b)?,
                },
                State::SizeWs => match b {
                    b' ' | b'\t' => State::SizeWs,
                    b';' => State::Extension { len: 1 },
                    b'\r' => State::Lf {
                        then: self.pending_size(),
                    },
                    _ => return Err(ChunkError::Size),
                },
                State::Extension { len } => match b {
                    b'\r' => State::Lf {
                        then: self.pending_size(),
                    },
                    _ if len >= MAX_EXTENSION => return Err(ChunkError::ExtensionTooLong),
                    b'\t' | b' '..=b'~' | 0x80..=0xff => State::Extension { len: len + 1 },
                    _ => return Err(ChunkError::Extension),
                },
                State::Lf { then } => {
                    if b != b'\n' {
                        return Err(ChunkError::LineEnd);
                    }
                    match then {
                        After::Data(left) => State::Data { left },
                        After::Size => State::Size { digits: 0, value: 0 },
                        After::TrailerStart => State::TrailerStart,
                        After::Done => {
                            self.state = State::Done;
                            return Ok(Progress {
                                consumed: i + 1,
                                data: None,
                                done: true,
                            });
                        }
                    }
                }
                State::DataCr => match b {
                    b'\r' => State::Lf { then: After::Size },
                    _ => return Err(ChunkError::LineEnd),
                },
                State::TrailerStart => match b {
                    b'\r' => State::Lf { then: After::Done },
                    b'\n' => return Err(ChunkError::LineEnd),
                    _ if super::is_tchar(b) => self.trailer_byte(State::TrailerName)?,
                    _ => return Err(ChunkError::Trailer),
                },
                State::TrailerName => match b {
                    b':' => self.trailer_byte(State::Trailer)?,
                    _ if super::is_tchar(b) => self.trailer_byte(State::TrailerName)?,
                    _ => return Err(ChunkError::Trailer),
                },
                State::Trailer => match b {
                    b'\r' => State::Lf {
                        then: After::TrailerStart,
                    },
                    b'\n' => return Err(ChunkError::LineEnd),
                    b'\t' | b' '..=b'~' | 0x80..=0xff => self.trailer_byte(State::Trailer)?,
                    _ => return Err(ChunkError::Trailer),
                },
            };
            i += 1;
        }
        Ok(Progress {
            consumed: i,
            data: None,
            done: self.state == State::Done,
        })
    }

    /// The byte after a size's digits: the line goes on (extension) or ends.
    fn size_done(&mut self, value: u64, b: u8) -> Result<State, ChunkError> {
        self.pending = value;
        match b {
            b'\r' => Ok(State::Lf {
                then: self.pending_size(),
            }),
            b';' => Ok(State::Extension { len: 1 }),
            b' ' | b'\t' => Ok(State::SizeWs),
            _ => Err(ChunkError::Size),
        }
    }

    /// What follows the size line just read: data, or trailers.
    fn pending_size(&self) -> After {
        if self.pending == 0 {
            After::TrailerStart
        } else {
            After::Data(self.pending)
        }
    }

    /// Counts one trailer byte against the bound; `next` is the state after it.
    fn trailer_byte(&mut self, next: State) -> Result<State, ChunkError> {
        self.trailers += 1;
        if self.trailers > MAX_TRAILERS {
            return Err(ChunkError::TrailersTooLong);
        }
        Ok(next)
    }
}

/// The value of a hex digit.
fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests;
