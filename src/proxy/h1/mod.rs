//! rampart's own HTTP/1.1 engine, built piece by piece (issue 10): so far
//! the request head parser and its framing rules ([`head`]). The proxy
//! still serves HTTP/1.1 with hyper until the engine is complete.

pub mod head;
