//! Rule targets: `COLLECTION[:selector]` joined by `|`, each optionally `!` (exclude) or `&`
//! (count).

/// One target of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// Upper-cased collection or variable name (`ARGS`, `REQUEST_HEADERS`, `TX`).
    pub collection: String,
    pub selector: Option<Selector>,
    /// `!ARGS:foo`: remove matching members from the rule's targets.
    pub negated: bool,
    /// `&ARGS`: the number of members, not their values.
    pub count: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `:name`, compared case-insensitively.
    Name(String),
    /// `:/regex/`, matched case-insensitively against member names.
    Regex(String),
    /// `XML:/xpath`; treated as the document's text.
    XPath(String),
}

/// Parses `ARGS|!ARGS:foo|&TX:x|REQUEST_HEADERS:/^x-/`.
pub fn parse_variables(text: &str) -> Result<Vec<Variable>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let mut negated = false;
        let mut count = false;
        loop {
            match bytes.get(i) {
                Some(b'!') => negated = true,
                Some(b'&') => count = true,
                Some(b' ' | b'\t') => {}
                _ => break,
            }
            i += 1;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b':' && bytes[i] != b'|' {
            i += 1;
        }
        let collection = text[start..i].trim().to_ascii_uppercase();
        if collection.is_empty() {
            return Err(format!("empty variable name in {text:?}"));
        }
        if !collection
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(format!("invalid variable name {collection:?}"));
        }
        let mut selector = None;
        if bytes.get(i) == Some(&b':') {
            i += 1;
            let (sel, next) = selector_at(text, i, &collection)?;
            selector = Some(sel);
            i = next;
        }
        if i < bytes.len() {
            if bytes[i] != b'|' {
                return Err(format!(
                    "unexpected {:?} in variables {text:?}",
                    bytes[i] as char
                ));
            }
            i += 1;
        }
        out.push(Variable {
            collection,
            selector,
            negated,
            count,
        });
    }
    if out.is_empty() {
        return Err("no variables".into());
    }
    Ok(out)
}

fn selector_at(text: &str, start: usize, collection: &str) -> Result<(Selector, usize), String> {
    let bytes = text.as_bytes();
    match bytes.get(start) {
        Some(b'\'') => {
            let mut i = start + 1;
            let mut value = String::new();
            loop {
                match bytes.get(i) {
                    None => return Err(format!("unterminated quoted selector in {text:?}")),
                    Some(b'\'') => break,
                    Some(_) => {
                        let ch_len = utf8_len(bytes[i]);
                        value.push_str(&text[i..(i + ch_len).min(text.len())]);
                        i += ch_len;
                    }
                }
            }
            let sel = classify(&value, collection);
            Ok((sel, i + 1))
        }
        Some(b'/') if collection != "XML" => {
            // A regex runs to the last unescaped `/` that is followed by `|` or the end.
            let mut i = start + 1;
            let mut end = None;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 1,
                    b'/' if matches!(bytes.get(i + 1), None | Some(b'|')) => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
            match end {
                Some(e) => Ok((Selector::Regex(text[start + 1..e].to_string()), e + 1)),
                None => Err(format!("unterminated regex selector in {text:?}")),
            }
        }
        _ => {
            let mut i = start;
            while i < bytes.len() && bytes[i] != b'|' {
                i += 1;
            }
            let value = &text[start..i];
            if value.is_empty() {
                return Err(format!("empty selector in {text:?}"));
            }
            Ok((classify(value, collection), i))
        }
    }
}

fn classify(value: &str, collection: &str) -> Selector {
    if collection == "XML" {
        return Selector::XPath(value.to_string());
    }
    if value.len() >= 2 && value.starts_with('/') && value.ends_with('/') {
        return Selector::Regex(value[1..value.len() - 1].to_string());
    }
    Selector::Name(value.to_string())
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}
