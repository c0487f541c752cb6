//! A small XML element tree over quick-xml, for SOAP messages (the vCenter connector and its
//! simulator): local names (namespace prefixes dropped, which SOAP readers may do as vim25 has
//! one namespace), attributes, text and children.
//! Malformed input is an error with the byte offset where reading stopped.

use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Element {
    pub name: String,
    pub(crate) attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct XmlError {
    pub offset: u64,
    pub(crate) message: String,
}

impl Element {
    /// The first child of that name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child of that name.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// An attribute by local name (`xsi:type` is `type`).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Follows child names: `path(&["config", "network"])`.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names.iter().try_fold(self, |at, name| at.child(name))
    }
}

fn local(name: &str) -> String {
    match name.rsplit_once(':') {
        Some((_, local)) => local.to_string(),
        None => name.to_string(),
    }
}

fn element_of(
    start: &quick_xml::events::BytesStart<'_>,
    reader: &Reader<&[u8]>,
) -> Result<Element, XmlError> {
    let mut element = Element {
        name: local(start.name().as_ref()),
        ..Element::default()
    };
    for attr in start.attributes() {
        let attr = attr.map_err(|e| XmlError {
            offset: reader.buffer_position(),
            message: e.to_string(),
        })?;
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| XmlError {
                offset: reader.buffer_position(),
                message: e.to_string(),
            })?
            .into_owned();
        element.attrs.push((local(attr.key.as_ref()), value));
    }
    Ok(element)
}

/// Parses a whole document; its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let mut reader = Reader::from_reader(bytes);
    let error = |reader: &Reader<&[u8]>, message: String| XmlError {
        offset: reader.buffer_position(),
        message,
    };
    // The open elements, innermost last; the document root collects the top level.
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        match reader.read_event() {
            Err(e) => return Err(error(&reader, e.to_string())),
            Ok(Event::Start(start)) => stack.push(element_of(&start, &reader)?),
            Ok(Event::Empty(start)) => {
                let element = element_of(&start, &reader)?;
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(element);
                }
            }
            Ok(Event::End(_)) => {
                if stack.len() < 2 {
                    return Err(error(&reader, "closing tag without an open one".into()));
                }
                // Invariant: at least two elements are on the stack (checked just above).
                let done = stack.pop().expect("stack has an open element");
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(done);
                }
            }
            Ok(Event::Text(text)) => {
                let text = text.xml_content(XmlVersion::Implicit1_0);
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&text);
                }
            }
            Ok(Event::GeneralRef(entity)) => {
                let char_ref = entity.resolve_char_ref();
                let name = entity.into_inner();
                let resolved = match name.as_ref() {
                    "amp" => "&".to_string(),
                    "lt" => "<".to_string(),
                    "gt" => ">".to_string(),
                    "quot" => "\"".to_string(),
                    "apos" => "'".to_string(),
                    other => match char_ref {
                        Ok(Some(c)) => c.to_string(),
                        _ => return Err(error(&reader, format!("unknown entity &{other};"))),
                    },
                };
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&resolved);
                }
            }
            Ok(Event::CData(data)) => {
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&data.into_inner());
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {} // declaration, comments, processing instructions, doctype
        }
    }
    if stack.len() != 1 {
        return Err(error(&reader, "the document ends inside an element".into()));
    }
    let mut document = stack.pop().unwrap_or_default();
    match document.children.len() {
        1 => Ok(document.children.remove(0)),
        0 => Err(error(&reader, "no root element".into())),
        _ => Err(error(&reader, "more than one root element".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_attributes_text_and_entities() {
        let doc = parse(
            br#"<?xml version="1.0"?><s:Envelope xmlns:s="x"><s:Body><a xsi:type="T">x &amp; y&#33;</a><b/></s:Body></s:Envelope>"#,
        )
        .unwrap();
        assert_eq!(doc.name, "Envelope");
        let body = doc.child("Body").unwrap();
        assert_eq!(body.children.len(), 2);
        assert_eq!(body.text_of("a"), Some("x & y!"));
        assert_eq!(body.child("a").unwrap().attr("type"), Some("T"));
    }

    #[test]
    fn malformed_xml_names_the_offset() {
        let err = parse(b"<a><b></a>").unwrap_err();
        assert!(err.offset > 0, "{err:?}");
        let err = parse(b"<a><b>").unwrap_err();
        assert!(err.message.contains("inside an element"), "{err:?}");
    }
}
