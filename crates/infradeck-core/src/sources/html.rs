//! Confluence storage-format HTML to plain text for search: tags dropped (block tags become line
//! breaks), entities decoded, CDATA (code macros) kept, whitespace collapsed.

#![allow(
    clippy::string_slice,
    reason = "every offset here comes from `find` of an ASCII delimiter (`<`, `>`, `&`, `;`) or `strip_prefix` of ASCII, so it is a character boundary"
)]

/// The readable text of an HTML fragment.
pub(crate) fn to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        push_text(&mut out, &rest[..start]);
        let after = &rest[start..];
        if let Some(body) = after.strip_prefix("<![CDATA[") {
            let end = body.find("]]>").unwrap_or(body.len());
            out.push_str(&body[..end]);
            out.push('\n');
            rest = body.get(end + 3..).unwrap_or("");
            continue;
        }
        let Some(end) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = after[1..end]
            .trim_start_matches('/')
            .split([' ', '/', '\t', '\n'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if matches!(
            tag.as_str(),
            "p" | "br"
                | "li"
                | "tr"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "div"
                | "pre"
                | "table"
                | "ul"
                | "ol"
        ) {
            out.push('\n');
        } else if matches!(tag.as_str(), "td" | "th") {
            out.push(' ');
        }
        rest = &after[end + 1..];
    }
    push_text(&mut out, rest);
    // Collapse runs of spaces within lines and blank lines between them.
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn push_text(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let Some(semi) = after.find(';').filter(|&i| i <= 10) else {
            out.push('&');
            rest = &after[1..];
            continue;
        };
        let entity = &after[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" | "#39" => Some('\''),
            "nbsp" => Some(' '),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    #[test]
    fn strips_tags_decodes_entities_keeps_code() {
        let html = "<h2>Steps</h2><p>Restart <strong>web-0001</strong> &amp; check&nbsp;10.0.0.1</p><ac:structured-macro><ac:plain-text-body><![CDATA[systemctl restart <nginx>]]></ac:plain-text-body></ac:structured-macro>";
        assert_eq!(
            super::to_text(html),
            "Steps\nRestart web-0001 & check 10.0.0.1\nsystemctl restart <nginx>"
        );
    }
}
