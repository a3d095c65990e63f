//! Where statements may read outside the lake: the `[files] roots`
//! allow-list of the config file. A root is a local directory or a URL
//! prefix (`s3://bucket/in/`, `https://api.example.com/v1/`); the lake is
//! always one. Without the list, every location may be read (by those
//! allowed to read server files at all, see `engine::access`).
//!
//! Local paths are compared after symlinks are resolved, so neither `..`
//! nor a link inside a root reaches a file outside it: the folder a path
//! or glob starts from is checked before listing, and every file the
//! listing finds is checked again before it is read.

use std::path::{Path, PathBuf};

use url::Url;

use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone)]
enum Root {
    /// A local directory, canonical.
    Dir(PathBuf),
    /// A URL prefix.
    Url(Url),
}

/// The allow-list; `None` inside means no restriction.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    roots: Option<Vec<Root>>,
}

fn refused(shown: &str) -> Error {
    Error::new(
        ErrorKind::InsufficientPrivilege,
        format!("refusing to read \"{shown}\": it is outside the roots the server allows"),
    )
    .with_hint(
        "the [files] roots of the server's config file list the folders and URLs it may read",
    )
}

/// The real path of `path`: symlinks resolved in the part that exists,
/// the rest (a glob, a file not there yet) appended as written.
fn real_path(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

impl Roots {
    /// No restriction.
    pub fn unrestricted() -> Roots {
        Roots::default()
    }

    /// The configured roots plus the lake's root. A local root that does
    /// not exist is refused here, when the server starts.
    pub fn new(configured: Option<&[String]>, lake_root: &Url) -> Result<Roots> {
        let Some(configured) = configured else {
            return Ok(Roots::unrestricted());
        };
        let mut roots = vec![Roots::root(lake_root.as_str(), true)?];
        for r in configured {
            roots.push(Roots::root(r, false)?);
        }
        Ok(Roots { roots: Some(roots) })
    }

    fn root(spec: &str, lake: bool) -> Result<Root> {
        let bad = |why: String| {
            Error::new(
                ErrorKind::InvalidParameter,
                format!("config file: [files] root \"{spec}\" {why}"),
            )
        };
        let url = if spec.starts_with('/') {
            Url::from_file_path(spec).map_err(|_| bad("is not a valid path".into()))?
        } else {
            Url::parse(spec).map_err(|e| bad(format!("is not a valid URL: {e}")))?
        };
        if url.scheme() != "file" {
            return Ok(Root::Url(url));
        }
        let path = url
            .to_file_path()
            .map_err(|_| bad("is not a valid path".into()))?;
        match path.canonicalize() {
            Ok(p) => Ok(Root::Dir(p)),
            // The lake folder of a new lake may not exist yet.
            Err(_) if lake => Ok(Root::Dir(real_path(&path))),
            Err(e) => Err(bad(format!("cannot be read: {e}"))),
        }
    }

    pub fn restricted(&self) -> bool {
        self.roots.is_some()
    }

    /// May a statement read at `url` (a file, a glob's folder, an object
    /// prefix, an HTTP URL)? `shown` names it in the error.
    pub fn check(&self, url: &Url, shown: &str) -> Result<()> {
        let Some(roots) = &self.roots else {
            return Ok(());
        };
        let allowed = if url.scheme() == "file" {
            match url.to_file_path() {
                Ok(path) => under_dirs(roots, &real_path(&path)),
                Err(_) => false,
            }
        } else {
            roots.iter().any(|r| match r {
                Root::Url(base) => crate::config::url_under(base, url),
                Root::Dir(_) => false,
            })
        };
        if allowed { Ok(()) } else { Err(refused(shown)) }
    }

    /// May a file a listing found be read: its real path (a symlink
    /// followed) under a root?
    pub fn check_file(&self, path: &Path) -> Result<()> {
        let Some(roots) = &self.roots else {
            return Ok(());
        };
        match path.canonicalize() {
            Ok(real) if under_dirs(roots, &real) => Ok(()),
            _ => Err(refused(&path.display().to_string())),
        }
    }
}

fn under_dirs(roots: &[Root], real: &Path) -> bool {
    roots.iter().any(|r| match r {
        Root::Dir(dir) => real.starts_with(dir),
        Root::Url(_) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_their_roots() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let landing = base.join("landing");
        let lake = base.join("lake");
        std::fs::create_dir_all(&landing).unwrap();
        std::fs::write(landing.join("a.csv"), "x\n").unwrap();
        std::fs::write(base.join("secret.txt"), "s\n").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(base.join("secret.txt"), landing.join("link.csv")).unwrap();
        let roots = Roots::new(
            Some(&[
                landing.display().to_string(),
                "https://api.example.com/v1/".to_string(),
            ]),
            &Url::from_directory_path(&lake).unwrap(),
        )
        .unwrap();
        let file = |p: &Path| Url::from_file_path(p).unwrap();
        assert!(roots.check(&file(&landing.join("a.csv")), "a").is_ok());
        assert!(roots.check(&file(&landing.join("*.csv")), "g").is_ok());
        assert!(roots.check(&file(&lake.join("raw/in/x.csv")), "l").is_ok());
        let e = roots
            .check(&file(&base.join("secret.txt")), "s")
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InsufficientPrivilege);
        // `..` is resolved before the comparison.
        let up = Url::parse(&format!("file://{}/../secret.txt", landing.display())).unwrap();
        assert!(roots.check(&up, "up").is_err());
        #[cfg(unix)]
        {
            assert!(roots.check_file(&landing.join("a.csv")).is_ok());
            assert!(roots.check_file(&landing.join("link.csv")).is_err());
            // A folder that is a link out of the root.
            std::os::unix::fs::symlink(&base, landing.join("out")).unwrap();
            assert!(
                roots
                    .check(&file(&landing.join("out/secret.txt")), "o")
                    .is_err()
            );
        }
        let api = |s: &str| Url::parse(s).unwrap();
        assert!(
            roots
                .check(&api("https://api.example.com/v1/orders"), "a")
                .is_ok()
        );
        assert!(
            roots
                .check(&api("https://api.example.com/v10"), "a")
                .is_err()
        );
        assert!(roots.check(&api("http://169.254.169.254/"), "m").is_err());
        assert!(roots.check(&api("s3://bucket/x"), "s").is_err());
        assert!(
            Roots::unrestricted()
                .check(&api("s3://bucket/x"), "s")
                .is_ok()
        );
        let e = Roots::new(Some(&["/no/such/root".to_string()]), &file(&lake)).unwrap_err();
        assert!(e.message.contains("/no/such/root"), "{e:?}");
    }
}
