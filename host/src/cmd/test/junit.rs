//! The JUnit XML report of a `kubewasm test` run, in the form CI systems
//! (GitLab, Jenkins, GitHub test reporters) read: one `<testsuite>` per
//! plugin, one `<testcase>` per fixture case, a `<failure>` with the
//! readable diff for each failed case.

use std::fmt::Write as _;

use super::{SuiteReport, Verdict};

/// The report as an XML document.
pub fn render(report: &SuiteReport) -> String {
    let total = report.cases.len();
    let failed = report.failed();
    let seconds = report.duration.as_secs_f64();
    let suite = escape(&report.plugin);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"kubewasm test\" tests=\"{total}\" failures=\"{failed}\" errors=\"0\" time=\"{seconds:.3}\">"
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{suite}\" tests=\"{total}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\" time=\"{seconds:.3}\">"
    );
    let _ = writeln!(xml, "    <properties>");
    for (name, value) in [
        ("component", report.component.display().to_string()),
        ("fixtures", report.fixtures.display().to_string()),
    ] {
        let _ = writeln!(
            xml,
            "      <property name=\"{name}\" value=\"{}\"/>",
            escape(&value)
        );
    }
    let _ = writeln!(xml, "    </properties>");
    for case in &report.cases {
        let name = escape(&case.name);
        let time = case.duration.as_secs_f64();
        match &case.verdict {
            Verdict::Passed | Verdict::Blessed => {
                let _ = writeln!(
                    xml,
                    "    <testcase name=\"{name}\" classname=\"{suite}\" time=\"{time:.3}\"/>"
                );
            }
            Verdict::Failed(failure) => {
                let _ = writeln!(
                    xml,
                    "    <testcase name=\"{name}\" classname=\"{suite}\" time=\"{time:.3}\">"
                );
                let _ = writeln!(
                    xml,
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                    escape(&failure.summary()),
                    failure.kind(),
                    escape(&failure.details()).replace("&#10;", "\n")
                );
                let _ = writeln!(xml, "    </testcase>");
            }
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// Text as an XML attribute value (line breaks kept as `&#10;`), or as
/// character data after turning those back into line breaks. Characters XML 1.0
/// cannot carry at all (most C0 controls) become U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{CaseResult, Failure};
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;
    use std::time::Duration;

    #[test]
    fn a_report_names_every_case_and_carries_the_diff_of_failures() {
        let report = SuiteReport {
            plugin: "demo".into(),
            component: PathBuf::from("dist/demo.wasm"),
            fixtures: PathBuf::from("fixtures"),
            duration: Duration::from_millis(1500),
            cases: vec![
                CaseResult {
                    name: "passes".into(),
                    verdict: Verdict::Passed,
                    duration: Duration::from_millis(12),
                },
                CaseResult {
                    name: "a<b>&\"c\"".into(),
                    verdict: Verdict::Failed(Failure::Mismatch {
                        expected_file: PathBuf::from("fixtures/x/expected.json"),
                        expected: json!({"intents": [], "requeueAfterMs": 1}),
                        actual: json!({"intents": [], "requeueAfterMs": 2}),
                    }),
                    duration: Duration::from_millis(3),
                },
            ],
        };
        let xml = render(&report);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"kubewasm test\" tests=\"2\" failures=\"1\" errors=\"0\" time=\"1.500\">\n"), "{xml}");
        assert!(
            xml.contains("<testsuite name=\"demo\" tests=\"2\" failures=\"1\""),
            "{xml}"
        );
        assert!(
            xml.contains("<property name=\"component\" value=\"dist/demo.wasm\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<testcase name=\"passes\" classname=\"demo\" time=\"0.012\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<testcase name=\"a&lt;b&gt;&amp;&quot;c&quot;\" classname=\"demo\" time=\"0.003\">"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<failure message=\"outcome differs from fixtures/x/expected.json at $.requeueAfterMs: expected 1, actual 2\" type=\"mismatch\">"),
            "{xml}"
        );
        assert!(
            xml.contains("-   &quot;requeueAfterMs&quot;: 1\n+   &quot;requeueAfterMs&quot;: 2"),
            "{xml}"
        );
        assert!(xml.ends_with("  </testsuite>\n</testsuites>\n"));
    }

    #[test]
    fn text_xml_cannot_carry_is_replaced() {
        assert_eq!(escape("a\u{1}b\tc'"), "a\u{FFFD}b&#9;c&apos;");
    }
}
