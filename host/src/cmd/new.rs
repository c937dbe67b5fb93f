//! `kubewasm new NAME --lang LANG`: a plugin project that builds with one
//! command (`./build.sh`, into `dist/NAME.wasm`), has a fixture case and a
//! README, and passes `kubewasm test` and `kubewasm check` as generated.
//!
//! The templates are the repository's `templates/<lang>/` directories,
//! compiled into the binary. In file contents and names, `{{name}}` becomes
//! the plugin's name, `{{name_snake}}` the name with `_` for `-`, `{{sdk}}`
//! the absolute path of the kubewasm checkout whose SDKs the project builds
//! against, and `{{contract}}` the contract version. A file named
//! `_gitignore` becomes `.gitignore` (a packaged `.gitignore` would hide the
//! template's own files).

use std::path::{Path, PathBuf};

use include_dir::{Dir, DirEntry, include_dir};

use crate::cmd::check::OfflineError;
use crate::cmd::cli::{Lang, NewArgs};

static TEMPLATES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../templates");

/// The contract version new projects target.
const CONTRACT: &str = "0.2.0";

/// The template directory of `lang`.
pub fn template_dir(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "rust",
        Lang::Go => "go",
        Lang::Python => "python",
        Lang::Ts => "ts",
        Lang::Js => "js",
        Lang::C => "c",
    }
}

/// One file of a generated project: its path in the project and contents.
#[derive(Debug, PartialEq, Eq)]
pub struct ProjectFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub executable: bool,
}

/// The files of project `name` in `lang`, against the checkout `sdk`; `None`
/// if this binary was built without that language's template.
pub fn render(lang: Lang, name: &str, sdk: &str) -> Option<Vec<ProjectFile>> {
    let root = TEMPLATES.get_dir(template_dir(lang))?;
    let substitute = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{name_snake}}", &name.replace('-', "_"))
            .replace("{{sdk}}", sdk)
            .replace("{{contract}}", CONTRACT)
    };
    let mut files = Vec::new();
    let mut pending = vec![root];
    while let Some(dir) = pending.pop() {
        for entry in dir.entries() {
            match entry {
                DirEntry::Dir(sub) => pending.push(sub),
                DirEntry::File(file) => {
                    let relative = file
                        .path()
                        .strip_prefix(root.path())
                        .expect("a template file is under its template");
                    let mut path = PathBuf::new();
                    for part in relative.iter() {
                        let part = substitute(&part.to_string_lossy());
                        path.push(if part == "_gitignore" {
                            ".gitignore".to_string()
                        } else {
                            part
                        });
                    }
                    let contents = match std::str::from_utf8(file.contents()) {
                        Ok(text) => substitute(text).into_bytes(),
                        Err(_) => file.contents().to_vec(),
                    };
                    let executable = path.extension().is_some_and(|e| e == "sh");
                    files.push(ProjectFile {
                        path,
                        contents,
                        executable,
                    });
                }
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Some(files)
}

/// The kubewasm checkout: `--sdk`, else the one this binary was built from.
fn checkout(arg: Option<&Path>) -> Result<PathBuf, OfflineError> {
    let (path, from_flag) = match arg {
        Some(path) => (path.to_path_buf(), true),
        None => (Path::new(env!("CARGO_MANIFEST_DIR")).join(".."), false),
    };
    let is_checkout = path.join("wit/plugin.wit").is_file() && path.join("guest-sdk").is_dir();
    if !is_checkout {
        return Err(OfflineError::Usage(match from_flag {
            true => format!(
                "--sdk {}: not a kubewasm checkout (no wit/plugin.wit and guest-sdk/)",
                path.display()
            ),
            false => format!(
                "the kubewasm checkout this binary was built from ({}) is gone: \
                 pass --sdk PATH (or set KUBEWASM_SDK) to a kubewasm checkout",
                path.display()
            ),
        }));
    }
    std::fs::canonicalize(&path).map_err(|source| OfflineError::Read {
        what: "kubewasm checkout",
        path,
        source,
    })
}

/// `kubewasm new`.
pub fn new(args: &NewArgs) -> Result<String, OfflineError> {
    if crate::contract::names::validate_namespace(&args.name).is_err() {
        return Err(OfflineError::Usage(format!(
            "plugin name {:?}: must be a DNS label (lowercase letters, digits and '-', \
             starting with a letter or digit, at most 63 characters)",
            args.name
        )));
    }
    let sdk = checkout(args.sdk.as_deref())?;
    // The path lands in build files (go.mod, Cargo.toml, package.json,
    // Makefiles): refuse what would need quoting in any of them.
    let sdk = sdk
        .to_str()
        .filter(|s| {
            !s.chars()
                .any(|c| c.is_control() || "\"'\\$`{} ".contains(c))
        })
        .ok_or_else(|| {
            OfflineError::Usage(format!(
                "--sdk {}: the path has characters build files would need quoted \
                 (space, quote, backslash, '$', braces); use a checkout at a plain path",
                sdk.display()
            ))
        })?
        .to_string();
    let project = args.dir.join(&args.name);
    let occupied = std::fs::read_dir(&project)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if occupied {
        return Err(OfflineError::Usage(format!(
            "{} exists and is not empty: choose another name or --dir",
            project.display()
        )));
    }
    let files = render(args.lang, &args.name, &sdk).ok_or_else(|| {
        OfflineError::Usage(format!(
            "this kubewasm binary has no {} template",
            template_dir(args.lang)
        ))
    })?;
    for file in &files {
        let path = project.join(&file.path);
        let write_error = |source| OfflineError::Write {
            what: "project file",
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_error)?;
        }
        std::fs::write(&path, &file.contents).map_err(write_error)?;
        #[cfg(unix)]
        if file.executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(write_error)?;
        }
    }
    Ok(format!(
        "created {dir} ({count} files), a {lang} plugin for kubewasm:plugin@{CONTRACT}\n\
         next:\n  cd {dir}\n  ./build.sh                  # builds dist/{name}.wasm\n  \
         kubewasm test               # runs fixtures/\n  \
         kubewasm check dist/{name}.wasm\n",
        dir = project.display(),
        count = files.len(),
        lang = template_dir(args.lang),
        name = args.name,
    ))
}
