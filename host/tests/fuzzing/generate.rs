//! Input generators: hostile names, JSON text and byte strings, drawn from
//! a seeded RNG so every case can be replayed from its seed.

use serde_json::{Map, Value, json};

/// Pieces names are built from: valid DNS characters, every character that
/// moves a request elsewhere (`/`, `%`, `?`, `#`, `\`, dot segments), and
/// Unicode that looks harmless but is whitespace, a control, a format
/// character, or changes length when lower-cased.
const NAME_PIECES: &[&str] = &[
    "a",
    "b",
    "z",
    "0",
    "9",
    "-",
    "-",
    ".",
    ".",
    "..",
    "web",
    "team-a",
    "kube-system",
    "/",
    "%",
    "%2F",
    "%2e%2e",
    "?",
    "?x=",
    "#",
    "\\",
    ":",
    "@",
    "&",
    "=",
    "+",
    ";",
    "*",
    "~",
    "_",
    " ",
    "\t",
    "\n",
    "\r",
    "\0",
    "\u{7f}",
    "\u{85}",
    "\u{a0}",
    "\u{1680}",
    "\u{2028}",
    "\u{3000}",
    "\u{200b}",
    "\u{202e}",
    "\u{feff}",
    "A",
    "Z",
    "é",
    "ß",
    "İ",
    "ǅ",
    "ｓ",
    "😀",
    "\u{0301}",
    "\u{10ffff}",
    "secrets",
    "victim",
    "system:",
];

/// Names that are valid for most kinds.
const GOOD_NAMES: &[&str] = &[
    "a",
    "web",
    "team-a",
    "app.config-1",
    "x-1.y-2",
    "0",
    "default",
];

pub const API_VERSIONS: &[&str] = &[
    "v1",
    "apps/v1",
    "rbac.authorization.k8s.io/v1",
    "example.com/v1alpha1",
    "events.k8s.io/v1",
    "",
    "v1/",
    "/v1",
    "a/b/c",
    "V1",
    "v1?x=",
    "apps/v1#",
    "../v1",
    "apps%2Fv1",
    "v 1",
];

pub const KINDS: &[&str] = &[
    "ConfigMap",
    "Namespace",
    "Service",
    "Secret",
    "ClusterRole",
    "Role",
    "Deployment",
    "Gadget",
    "",
    "Config Map",
    "ConfigMap/x",
    "Ärger",
    "1Kind",
    "configmaps",
];

/// JSON punctuation and tokens that byte-level mutations insert.
const JSON_TOKENS: &[&str] = &[
    "{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "\\ud800", "0", "-", "1e400", "e", "null",
    "true", " ", "\n", "\u{0}", "/*",
];

/// A seeded source of hostile inputs.
pub struct Gen {
    rng: fastrand::Rng,
    /// In a tame case most fields are valid, so that the one hostile field
    /// decides the verdict (near misses find more than noise does).
    tame: bool,
}

impl Gen {
    /// Makes this case tame (see [`Gen::tame`]) or not.
    pub fn set_tame(&mut self, tame: bool) {
        self.tame = tame;
    }

    /// Whether this case is tame: the generators then keep most fields valid.
    pub fn tame(&self) -> bool {
        self.tame
    }

    /// True rarely in a tame case, otherwise with probability
    /// `numerator`/`denominator`: for choosing a hostile variant.
    pub fn hostile(&mut self, numerator: u32, denominator: u32) -> bool {
        if self.tame {
            self.chance(1, 12)
        } else {
            self.chance(numerator, denominator)
        }
    }

    pub fn new(seed: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
            tame: false,
        }
    }

    /// True with probability `numerator`/`denominator`.
    pub fn chance(&mut self, numerator: u32, denominator: u32) -> bool {
        self.rng.u32(0..denominator) < numerator
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.rng.usize(0..n.max(1))
    }

    pub fn bool(&mut self) -> bool {
        self.rng.bool()
    }

    pub fn u8(&mut self) -> u8 {
        self.rng.u8(..)
    }

    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }

    /// Any Unicode scalar, weighted towards ASCII.
    pub fn any_char(&mut self) -> char {
        match self.below(4) {
            0 => self.rng.char(..),
            1 => self.rng.char('\u{0}'..='\u{7f}'),
            2 => self.rng.char('\u{80}'..='\u{3000}'),
            _ => self.rng.alphanumeric(),
        }
    }

    /// Uniformly random text of up to `max` characters.
    pub fn random_text(&mut self, max: usize) -> String {
        let len = self.below(max + 1);
        (0..len).map(|_| self.any_char()).collect()
    }

    /// A DNS-1123 label of `len` characters (clamped to at least 1).
    pub fn label(&mut self, len: usize) -> String {
        let len = len.max(1);
        let mut s: String = (0..len)
            .map(|_| match self.below(8) {
                0 => '-',
                1 => self.rng.digit(10),
                _ => self.rng.lowercase(),
            })
            .collect();
        if s.starts_with('-') {
            s.replace_range(0..1, "a");
        }
        if s.ends_with('-') {
            s.pop();
            s.push('z');
        }
        s
    }

    /// A string meant as an object name or namespace: valid ones, valid ones
    /// with one hostile edit, dictionary concatenations, random Unicode, and
    /// strings around every length limit (in bytes and in characters).
    pub fn name(&mut self) -> String {
        match self.below(10) {
            0 | 1 => self.pick(GOOD_NAMES).to_string(),
            2 => {
                let len = self.below(20) + 1;
                self.label(len)
            }
            3 | 4 => {
                let mut s = self.pick(GOOD_NAMES).to_string();
                let piece = self.pick(NAME_PIECES);
                let at = self.char_boundary(&s);
                s.insert_str(at, piece);
                s
            }
            5 | 6 => {
                let n = self.below(6) + 1;
                (0..n).map(|_| self.pick(NAME_PIECES)).collect()
            }
            7 => self.random_text(24),
            8 => {
                // Around the limits: 63 (label), 253 (subdomain), multi-byte.
                let target = *self.pick(&[&62usize, &63, &64, &252, &253, &254, &255]);
                let unit = self.pick(&["a", "a", "a.", "é", "-"]);
                let mut s = unit.repeat(target / unit.len() + 1);
                while s.len() > target {
                    s.pop();
                }
                if self.bool() && !s.is_empty() {
                    let first = s.chars().next().map_or(0, char::len_utf8);
                    s.replace_range(..first, "b");
                }
                s
            }
            _ => match self.below(8) {
                0 => "x".repeat(self.below(100_000)),
                1 => String::new(),
                2 => ".".into(),
                3 => "..".into(),
                _ => {
                    let label = self.label(10);
                    format!("{label}.{label}")
                }
            },
        }
    }

    /// Half the time a valid name, otherwise [`Gen::name`].
    pub fn name_often_valid(&mut self) -> String {
        if !self.hostile(1, 2) {
            self.pick(GOOD_NAMES).to_string()
        } else {
            self.name()
        }
    }

    /// A byte offset in `s` that is a character boundary.
    pub fn char_boundary(&mut self, s: &str) -> usize {
        let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
        bounds[self.below(bounds.len())]
    }

    /// A JSON value where a string is expected: usually a string, sometimes
    /// every other type.
    pub fn loosely_typed(&mut self, string: impl FnOnce(&mut Self) -> String) -> Value {
        if !self.hostile(6, 20) {
            return Value::String(string(self));
        }
        match self.below(6) {
            0 => Value::Null,
            1 => json!(self.rng.i64(..)),
            2 => json!(self.rng.f64()),
            3 => json!(self.bool()),
            4 => json!([self.pick(GOOD_NAMES)]),
            5 => json!({"name": self.pick(GOOD_NAMES)}),
            _ => Value::String(string(self)),
        }
    }

    /// A random JSON value of at most `depth` levels.
    pub fn value(&mut self, depth: usize) -> Value {
        let kinds = if depth == 0 { 5 } else { 7 };
        match self.below(kinds) {
            0 => Value::Null,
            1 => json!(self.bool()),
            2 => match self.below(4) {
                0 => json!(self.rng.i64(..)),
                1 => json!(self.rng.u64(..)),
                2 => json!(self.rng.f64() * 1e300),
                _ => json!(self.rng.i32(-3..3)),
            },
            3 => Value::String(self.name()),
            4 => Value::String(self.random_text(8)),
            5 => {
                let n = self.below(4);
                Value::Array((0..n).map(|_| self.value(depth - 1)).collect())
            }
            _ => {
                let n = self.below(4);
                let mut map = Map::new();
                for _ in 0..n {
                    let key = match self.below(3) {
                        0 => self.random_text(6),
                        _ => self
                            .pick(&[
                                "apiVersion",
                                "kind",
                                "metadata",
                                "name",
                                "namespace",
                                "generateName",
                                "labels",
                                "spec",
                                "op",
                                "path",
                                "value",
                                "from",
                            ])
                            .to_string(),
                    };
                    map.insert(key, self.value(depth - 1));
                }
                Value::Object(map)
            }
        }
    }

    /// Wraps `inner` (JSON text) in `depth` levels of arrays or objects.
    pub fn nest(&mut self, inner: &str, depth: usize) -> String {
        let (open, close) = if self.bool() {
            ("[", "]")
        } else {
            ("{\"a\":", "}")
        };
        let mut s = String::with_capacity(inner.len() + depth * 6);
        for _ in 0..depth {
            s.push_str(open);
        }
        s.push_str(inner);
        for _ in 0..depth {
            s.push_str(close);
        }
        s
    }

    /// A nesting depth around serde_json's recursion limit (128), or far
    /// beyond it.
    pub fn depth(&mut self) -> usize {
        match self.below(8) {
            0..=2 => self.below(140),
            3..=5 => 120 + self.below(16),
            6 => 200 + self.below(1000),
            _ => 5_000 + self.below(20_000),
        }
    }

    /// `value` as JSON text, sometimes damaged: truncated, with tokens
    /// inserted or characters removed, with every string character
    /// `\u`-escaped, or nested around the recursion limit.
    pub fn json_text(&mut self, value: &Value) -> String {
        let text = value.to_string();
        if !self.hostile(6, 10) {
            return text;
        }
        match self.below(6) {
            0 => {
                let at = self.char_boundary(&text);
                text[..at].to_string()
            }
            1 | 2 => {
                let mut s = text;
                for _ in 0..self.below(3) + 1 {
                    let at = self.char_boundary(&s);
                    let token = self.pick(JSON_TOKENS);
                    s.insert_str(at, token);
                }
                s
            }
            3 => {
                let mut s = text;
                let at = self.char_boundary(&s);
                if at < s.len() {
                    s.remove(at);
                }
                s
            }
            4 => escape_all(&text),
            5 => {
                let depth = self.depth();
                self.nest(&text, depth)
            }
            _ => text,
        }
    }

    /// A byte string: empty, random, or random after a given header.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        let mut bytes = vec![0u8; len];
        self.rng.fill(&mut bytes);
        bytes
    }
}

/// Rewrites every character inside JSON string literals of `text` (valid
/// JSON) as a `\uXXXX` escape, surrogate pairs included: the parser must
/// decode them to the same string the checks then see.
fn escape_all(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 6);
    let mut in_string = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (in_string, c) {
            (false, '"') => {
                in_string = true;
                out.push('"');
            }
            (false, c) => out.push(c),
            (true, '"') => {
                in_string = false;
                out.push('"');
            }
            (true, '\\') => {
                // Keep existing escapes as they are.
                out.push('\\');
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            (true, c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out
}
