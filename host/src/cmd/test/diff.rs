//! A line diff of the expected and actual outcome documents; the JSON
//! paths of their differences come from [`compare::differences`].

use std::fmt::Write as _;

pub use crate::contract::compare::differences;

/// Lines of context kept around each changed line.
const CONTEXT: usize = 3;
/// Documents longer than this (in lines) are not line-diffed: the LCS table
/// would grow with the product of the lengths.
const MAX_DIFF_LINES: usize = 2000;

/// A line diff of two texts: `-` lines only in `expected`, `+` lines only in
/// `actual`, [`CONTEXT`] unchanged lines around each change and `...` where
/// unchanged lines are left out. `None` if either text is too long to diff.
pub fn line_diff(expected: &str, actual: &str) -> Option<String> {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    if e.len() > MAX_DIFF_LINES || a.len() > MAX_DIFF_LINES {
        return None;
    }
    // lcs[i][j]: length of the longest common subsequence of e[i..] and a[j..].
    let width = a.len() + 1;
    let mut lcs = vec![0u32; (e.len() + 1) * width];
    for i in (0..e.len()).rev() {
        for j in (0..a.len()).rev() {
            lcs[i * width + j] = if e[i] == a[j] {
                lcs[(i + 1) * width + j + 1] + 1
            } else {
                lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
            };
        }
    }
    let mut lines: Vec<(char, &str)> = Vec::with_capacity(e.len() + a.len());
    let (mut i, mut j) = (0, 0);
    while i < e.len() || j < a.len() {
        if i < e.len() && j < a.len() && e[i] == a[j] {
            lines.push((' ', e[i]));
            i += 1;
            j += 1;
        } else if i < e.len()
            && (j == a.len() || lcs[(i + 1) * width + j] >= lcs[i * width + j + 1])
        {
            lines.push(('-', e[i]));
            i += 1;
        } else {
            lines.push(('+', a[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = (0..lines.len()).filter(|&k| lines[k].0 != ' ').collect();
    let keep = |k: usize| changed.iter().any(|&c| c.abs_diff(k) <= CONTEXT);
    let mut out = String::new();
    let mut skipped = false;
    for (k, (mark, line)) in lines.iter().enumerate() {
        if keep(k) {
            if skipped {
                out.push_str("  ...\n");
                skipped = false;
            }
            let _ = writeln!(out, "{mark} {line}");
        } else {
            skipped = true;
        }
    }
    if skipped && !out.is_empty() {
        out.push_str("  ...\n");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_diff_marks_changes_with_context() {
        let expected = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
        let actual = "a\nb\nc\nd\nE\nf\ng\nh\ni\nj\n";
        assert_eq!(
            line_diff(expected, actual).unwrap(),
            "  b\n  c\n  d\n- e\n+ E\n  f\n  g\n  h\n  i\n+ j\n"
                .lines()
                .fold(String::from("  ...\n"), |acc, l| acc + l + "\n")
        );
        assert_eq!(line_diff("same\n", "same\n").unwrap(), "");
        assert!(line_diff(&"x\n".repeat(MAX_DIFF_LINES + 1), "x\n").is_none());
    }
}
