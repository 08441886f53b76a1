//! Request bodies read into the WAF's variables, as ModSecurity's body
//! processors do: URL-encoded forms (`ARGS_POST`), multipart forms (their
//! fields, file names and sizes, and each part's headers; file contents
//! are counted, not kept), JSON (flattened into `ARGS_POST`, keys joined
//! with `.`) and XML (`XML:/*`, the document's text; `XML://@*`, its
//! attribute values). A body that does not parse sets `REQBODY_ERROR`.

use super::engine::parse_pairs;
use super::model::BodyProcessor;

/// Deepest JSON or XML nesting read before the body counts as an error.
const MAX_DEPTH: usize = 256;
/// Most arguments a body may add (more is an error, as too many
/// arguments would otherwise cost every rule that reads `ARGS`).
const MAX_ARGS: usize = 1024;

/// What a body processor found.
#[derive(Debug, Default)]
pub struct BodyVars {
    pub args: Vec<(String, Vec<u8>)>,
    /// Multipart file parts: (field name, file name, size in bytes).
    pub files: Vec<(String, String, usize)>,
    /// Multipart part headers: (part name, `Name: value` line).
    pub part_headers: Vec<(String, Vec<u8>)>,
    /// XML: every text node, joined (the string value of `/*`).
    pub xml_text: Option<Vec<u8>>,
    /// XML: every attribute value.
    pub xml_attrs: Vec<Vec<u8>>,
    pub error: Option<String>,
    pub multipart_strict_error: bool,
    pub multipart_unmatched_boundary: bool,
}

/// The processor a request's `Content-Type` asks for, if any.
pub fn processor_for(content_type: &[u8]) -> Option<BodyProcessor> {
    let ct = content_type.to_ascii_lowercase();
    let mime = ct.split(|&b| b == b';').next().unwrap_or(&[]);
    let mime = mime.trim_ascii();
    if mime == b"application/x-www-form-urlencoded" {
        Some(BodyProcessor::UrlEncoded)
    } else if mime == b"multipart/form-data" {
        Some(BodyProcessor::Multipart)
    } else if mime == b"application/json" || mime.ends_with(b"+json") {
        Some(BodyProcessor::Json)
    } else if mime == b"text/xml" || mime == b"application/xml" || mime.ends_with(b"+xml") {
        Some(BodyProcessor::Xml)
    } else {
        None
    }
}

/// Reads `body` with processor `p` (`content_type` gives a multipart
/// body's boundary).
pub fn process(p: BodyProcessor, body: &[u8], content_type: &[u8]) -> BodyVars {
    let mut out = BodyVars::default();
    let result = match p {
        BodyProcessor::UrlEncoded => {
            out.args = parse_pairs(body, b'&');
            Ok(())
        }
        BodyProcessor::Json => json(body, &mut out),
        BodyProcessor::Xml => xml(body, &mut out),
        BodyProcessor::Multipart => multipart(body, content_type, &mut out),
    };
    if out.args.len() > MAX_ARGS {
        out.args.truncate(MAX_ARGS);
        out.error
            .get_or_insert_with(|| format!("more than {MAX_ARGS} arguments"));
    }
    if let Err(e) = result {
        out.error = Some(e);
    }
    out
}

fn json(body: &[u8], out: &mut BodyVars) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("JSON parsing error: {e}"))?;
    flatten(&value, "", 0, out)
}

/// JSON values as arguments: an object's keys joined with `.`, an
/// array's items under the array's own name.
fn flatten(v: &serde_json::Value, name: &str, depth: usize, out: &mut BodyVars) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("JSON nested more than {MAX_DEPTH} deep"));
    }
    match v {
        serde_json::Value::Object(map) => {
            for (k, item) in map {
                let n = if name.is_empty() {
                    k.clone()
                } else {
                    format!("{name}.{k}")
                };
                flatten(item, &n, depth + 1, out)?;
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                flatten(item, name, depth + 1, out)?;
            }
        }
        serde_json::Value::String(s) => out.args.push((name.to_string(), s.clone().into_bytes())),
        serde_json::Value::Number(n) => out.args.push((name.to_string(), n.to_string().into_bytes())),
        serde_json::Value::Bool(b) => out.args.push((
            name.to_string(),
            if *b { b"true".to_vec() } else { b"false".to_vec() },
        )),
        serde_json::Value::Null => out.args.push((name.to_string(), Vec::new())),
    }
    Ok(())
}

fn xml(body: &[u8], out: &mut BodyVars) -> Result<(), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut text = Vec::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("XML parser error at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                seen_root = true;
                for a in e.attributes() {
                    let a = a.map_err(|e| format!("XML attribute error: {e}"))?;
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map(|c| c.into_owned().into_bytes())
                        .unwrap_or_else(|_| a.value.as_bytes().to_vec());
                    out.xml_attrs.push(v);
                }
                // An empty element has no end tag.
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(format!("XML nested more than {MAX_DEPTH} deep"));
                    }
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) => text.extend_from_slice(t.as_bytes()),
            Event::CData(c) => text.extend_from_slice(c.as_bytes()),
            Event::GeneralRef(r) => {
                // Entities: the predefined ones as their characters,
                // character references decoded, others kept as written.
                let name = r.to_string();
                match r.resolve_char_ref() {
                    Ok(Some(c)) => text.extend_from_slice(c.to_string().as_bytes()),
                    _ => match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(s) => text.extend_from_slice(s.as_bytes()),
                        None => {
                            text.push(b'&');
                            text.extend_from_slice(name.as_bytes());
                            text.push(b';');
                        }
                    },
                }
            }
            Event::Eof if depth > 0 => return Err("XML: an element is not closed".into()),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err("XML: no root element".into());
    }
    out.xml_text = Some(text);
    Ok(())
}

/// The boundary of a `multipart/form-data` content type.
fn boundary(content_type: &[u8]) -> Option<Vec<u8>> {
    let ct = String::from_utf8_lossy(content_type);
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').as_bytes().to_vec())
    })
}

fn multipart(body: &[u8], content_type: &[u8], out: &mut BodyVars) -> Result<(), String> {
    let Some(b) = boundary(content_type).filter(|b| !b.is_empty() && b.len() <= 70) else {
        out.multipart_strict_error = true;
        return Err("multipart: no boundary in the content type".into());
    };
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(&b);
    let finder = memchr::memmem::Finder::new(&delim);
    let mut positions = finder.find_iter(body).peekable();
    let Some(first) = positions.next() else {
        out.multipart_unmatched_boundary = true;
        out.multipart_strict_error = true;
        return Err("multipart: the boundary never appears".into());
    };
    if first != 0 {
        // A preamble: allowed by RFC 2046, flagged as ModSecurity does.
        out.multipart_strict_error = true;
    }
    let mut start = first + delim.len();
    let mut closed = false;
    for next in positions {
        let part = &body[start..next];
        if part.starts_with(b"--") {
            closed = true;
            break;
        }
        // The part sits between the CRLF after the delimiter and the CRLF
        // before the next one.
        let part = part.strip_prefix(b"\r\n").or_else(|| part.strip_prefix(b"\n"));
        let Some(part) = part else {
            out.multipart_strict_error = true;
            start = next + delim.len();
            continue;
        };
        let part = part
            .strip_suffix(b"\r\n")
            .or_else(|| part.strip_suffix(b"\n"))
            .unwrap_or(part);
        one_part(part, out);
        start = next + delim.len();
    }
    if !closed {
        if body[start..].starts_with(b"--") {
            closed = true;
        } else {
            out.multipart_unmatched_boundary = true;
            out.multipart_strict_error = true;
        }
    }
    if !closed {
        return Err("multipart: the final boundary is missing".into());
    }
    Ok(())
}

fn one_part(part: &[u8], out: &mut BodyVars) {
    let split = memchr::memmem::find(part, b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| memchr::memmem::find(part, b"\n\n").map(|i| (i, 2)));
    let Some((at, sep)) = split else {
        out.multipart_strict_error = true;
        return;
    };
    let (head, content) = (&part[..at], &part[at + sep..]);
    let mut name = None;
    let mut filename = None;
    let mut lines = Vec::new();
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        lines.push(line.to_vec());
        let text = String::from_utf8_lossy(line);
        let Some((h, v)) = text.split_once(':') else {
            out.multipart_strict_error = true;
            continue;
        };
        if h.trim().eq_ignore_ascii_case("content-disposition") {
            for p in v.split(';').skip(1) {
                let Some((k, val)) = p.split_once('=') else {
                    continue;
                };
                let val = val.trim().trim_matches('"').to_string();
                match k.trim().to_ascii_lowercase().as_str() {
                    "name" => name = Some(val),
                    "filename" => filename = Some(val),
                    _ => {}
                }
            }
        }
    }
    let name = name.unwrap_or_default();
    for l in lines {
        out.part_headers.push((name.clone(), l));
    }
    match filename {
        Some(f) => out.files.push((name, f, content.len())),
        None => out.args.push((name, content.to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_json_xml_and_multipart_become_variables() {
        let v = process(BodyProcessor::UrlEncoded, b"a=1&b=%27x+y", b"");
        assert_eq!(
            v.args,
            vec![("a".into(), b"1".to_vec()), ("b".into(), b"'x y".to_vec())]
        );

        let v = process(
            BodyProcessor::Json,
            br#"{"user":{"name":"bob","tags":["a",2]},"ok":true}"#,
            b"",
        );
        let names: Vec<&str> = v.args.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["ok", "user.name", "user.tags", "user.tags"]);
        assert!(process(BodyProcessor::Json, b"{bad", b"").error.is_some());

        let v = process(
            BodyProcessor::Xml,
            br#"<a x="1"><b>hi</b> &amp; <c y='2'/></a>"#,
            b"",
        );
        assert_eq!(v.xml_text.as_deref(), Some(&b"hi & "[..]));
        assert_eq!(v.xml_attrs, vec![b"1".to_vec(), b"2".to_vec()]);
        assert!(process(BodyProcessor::Xml, b"<a><b></a>", b"").error.is_some());

        let body = b"--XX\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nhello\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.php\"\r\nContent-Type: text/plain\r\n\r\n<?php ?>\r\n--XX--\r\n";
        let v = process(
            BodyProcessor::Multipart,
            body,
            b"multipart/form-data; boundary=XX",
        );
        assert_eq!(v.error, None);
        assert_eq!(v.args, vec![("t".into(), b"hello".to_vec())]);
        assert_eq!(v.files, vec![("f".into(), "a.php".into(), 8)]);
        assert_eq!(v.part_headers.len(), 3);
        assert!(!v.multipart_strict_error);
        let cut = process(
            BodyProcessor::Multipart,
            &body[..60],
            b"multipart/form-data; boundary=XX",
        );
        assert!(cut.error.is_some() && cut.multipart_unmatched_boundary);
    }
}
