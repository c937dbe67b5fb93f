//! The Website's spec and the HTML page rendered from it.

use serde::Deserialize;

/// `spec` of a Website (see `deploy/crd.yaml`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebsiteSpec {
    /// The page title, shown in the tab and as the heading.
    pub title: String,
    /// Plain text; blank lines separate paragraphs.
    #[serde(default)]
    pub content: String,
}

impl WebsiteSpec {
    /// Checks what the CRD schema cannot: a title that is not only blanks.
    pub fn validate(&self) -> Result<(), String> {
        if self.title.trim().is_empty() {
            return Err("spec.title is blank".to_string());
        }
        Ok(())
    }

    /// The page: a small standalone HTML document, text escaped.
    pub fn render(&self) -> String {
        let title = escape(self.title.trim());
        let mut html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n"
        );
        for paragraph in paragraphs(&self.content) {
            html.push_str(&format!("<p>{}</p>\n", escape(&paragraph)));
        }
        html.push_str("</body>\n</html>\n");
        html
    }
}

/// Splits text into paragraphs at blank lines, joining the lines of each
/// paragraph with single spaces.
fn paragraphs(text: &str) -> Vec<String> {
    let mut paragraphs = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join(" "));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current.join(" "));
    }
    paragraphs
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(title: &str, content: &str) -> WebsiteSpec {
        WebsiteSpec {
            title: title.into(),
            content: content.into(),
        }
    }

    #[test]
    fn renders_title_and_paragraphs() {
        let html = spec("Hello", "first line\nsame paragraph\n\n\nsecond").render();
        assert_eq!(
            html,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Hello</title>\n</head>\n\
             <body>\n<h1>Hello</h1>\n<p>first line same paragraph</p>\n<p>second</p>\n</body>\n</html>\n"
        );
    }

    #[test]
    fn escapes_markup() {
        let html = spec("<script>", "a & b's \"c\"").render();
        assert!(html.contains("<h1>&lt;script&gt;</h1>"));
        assert!(html.contains("<p>a &amp; b&#39;s &quot;c&quot;</p>"));
    }

    #[test]
    fn blank_title_is_invalid() {
        assert_eq!(
            spec("  ", "").validate(),
            Err("spec.title is blank".to_string())
        );
        assert_eq!(spec("x", "").validate(), Ok(()));
    }
}
