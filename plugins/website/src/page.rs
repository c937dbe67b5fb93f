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
    /// Content to add from a ConfigMap in the Website's namespace.
    #[serde(default)]
    pub config_map_ref: Option<ConfigMapRef>,
}

/// `spec.configMapRef`: a key of a ConfigMap whose text is added to the
/// page after `spec.content`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ConfigMapRef {
    /// The ConfigMap's name (same namespace as the Website).
    pub name: String,
    /// The key in its `data` (default `content`).
    #[serde(default = "default_key")]
    pub key: String,
}

fn default_key() -> String {
    "content".to_string()
}

/// The dot-separated path of the referenced ConfigMap's name, which the
/// host's mapped watch matches against a changed ConfigMap's name.
pub const CONFIG_MAP_REF_PATH: &str = "spec.configMapRef.name";

impl WebsiteSpec {
    /// Checks what the CRD schema cannot: a title that is not only blanks,
    /// and a referenced ConfigMap that is not the Website's own child.
    pub fn validate(&self, website_name: &str) -> Result<(), String> {
        if self.title.trim().is_empty() {
            return Err("spec.title is blank".to_string());
        }
        if self
            .config_map_ref
            .as_ref()
            .is_some_and(|r| r.name == website_name)
        {
            return Err(format!(
                "spec.configMapRef.name: {website_name} is the ConfigMap the page is written to"
            ));
        }
        Ok(())
    }

    /// The page with `spec.content` only.
    #[cfg(test)]
    pub fn render(&self) -> String {
        self.render_with(None)
    }

    /// The page: a small standalone HTML document, text escaped; the
    /// paragraphs of `spec.content`, then those of `referenced` (the text
    /// from `spec.configMapRef`).
    pub fn render_with(&self, referenced: Option<&str>) -> String {
        let title = escape(self.title.trim());
        let mut html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n"
        );
        let text = [Some(self.content.as_str()), referenced];
        for paragraph in text.into_iter().flatten().flat_map(paragraphs) {
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
            config_map_ref: None,
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
            spec("  ", "").validate("blog"),
            Err("spec.title is blank".to_string())
        );
        assert_eq!(spec("x", "").validate("blog"), Ok(()));
    }

    #[test]
    fn referenced_text_follows_the_content() {
        let html = spec("T", "own").render_with(Some("first\n\nsecond"));
        assert!(
            html.contains("<p>own</p>\n<p>first</p>\n<p>second</p>\n"),
            "{html}"
        );
    }

    #[test]
    fn the_child_cannot_be_the_reference() {
        let mut s = spec("T", "");
        s.config_map_ref = Some(ConfigMapRef {
            name: "blog".into(),
            key: default_key(),
        });
        assert_eq!(
            s.validate("blog"),
            Err("spec.configMapRef.name: blog is the ConfigMap the page is written to".into())
        );
        assert_eq!(s.validate("docs"), Ok(()));
    }
}
