//! rampart's own HTTP/1.1 engine, built piece by piece (issue 10): so far
//! the request and response head parsers with their framing rules
//! ([`head`]) and the chunked body decoder ([`chunked`]). The proxy still serves HTTP/1.1
//! with hyper until the engine is complete.

pub mod chunked;
pub mod head;
