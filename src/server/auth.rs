//! Users, SCRAM-SHA-256 authentication and roles.
//!
//! ```text
//!  users.toml                         sluice serve --users users.toml
//!   [[user]]                            startup: SCRAM-SHA-256 (pgwire) against the verifier
//!   name = "ann"                        each statement: the user's role allows it, or 42501
//!   role = "admin"        # reader | writer | admin
//!   verifier = "SCRAM-SHA-256$4096:<salt>$<salted password>"   (written by `sluice user add`)
//!   # password = "..."    # accepted, but `sluice user add` never writes one
//! ```
//!
//! The verifier holds the PBKDF2-salted password SCRAM needs on the server
//! side, never the password itself. Roles: `reader` runs queries,
//! `writer` also changes rows (INSERT, UPDATE, DELETE, MERGE, COPY FROM),
//! `admin` also changes the catalog and maintains tables.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use pgwire::api::auth::sasl::scram::gen_salted_password;
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};

pub use crate::engine::access::Role;
use crate::error::{Error, ErrorKind, Result};

/// PBKDF2 rounds of every verifier (pgwire's SCRAM uses one count).
pub const ITERATIONS: usize = 4096;
const PREFIX: &str = "SCRAM-SHA-256$";

#[derive(Clone)]
pub struct User {
    pub role: Role,
    /// May read server files and URLs (`server_files = true`).
    pub server_files: bool,
    salt: Vec<u8>,
    salted: Vec<u8>,
}

impl Debug for User {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User").field("role", &self.role).finish()
    }
}

/// A verifier for `password`: a fresh salt and the salted password.
pub fn verifier(password: &str) -> String {
    let salt = uuid::Uuid::new_v4().as_bytes().to_vec();
    let salted = gen_salted_password(password, &salt, ITERATIONS);
    format!(
        "{PREFIX}{ITERATIONS}:{}${}",
        B64.encode(&salt),
        B64.encode(&salted)
    )
}

fn parse_verifier(v: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let rest = v.strip_prefix(PREFIX)?;
    let (iter_salt, salted) = rest.split_once('$')?;
    let (iter, salt) = iter_salt.split_once(':')?;
    if iter.parse::<usize>().ok()? != ITERATIONS {
        return None;
    }
    Some((B64.decode(salt).ok()?, B64.decode(salted).ok()?))
}

/// The users of a server, from its users file.
#[derive(Debug, Clone, Default)]
pub struct Users {
    users: BTreeMap<String, (User, String)>,
}

fn bad_file(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidParameter,
        format!("users file {}: {what}", path.display()),
    )
}

impl Users {
    pub fn load(path: &Path) -> Result<Users> {
        let text = std::fs::read_to_string(path).map_err(|e| bad_file(path, e))?;
        let doc = crate::config::parse_toml(&text).map_err(|e| bad_file(path, e))?;
        let mut users = Users::default();
        let Some(list) = doc.get("user") else {
            return Ok(users);
        };
        let list = list
            .as_array_of_tables()
            .ok_or_else(|| bad_file(path, "`user` must be [[user]] tables"))?;
        for t in list.iter() {
            let get = |k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let name = get("name").ok_or_else(|| bad_file(path, "a [[user]] without a name"))?;
            let role = Role::parse(&get("role").unwrap_or_else(|| "reader".into()))
                .map_err(|e| bad_file(path, e))?;
            let server_files = match t.get("server_files") {
                None => false,
                Some(v) => v.as_bool().ok_or_else(|| {
                    bad_file(
                        path,
                        format!("user \"{name}\": server_files must be true or false"),
                    )
                })?,
            };
            let stored = match (get("verifier"), get("password")) {
                (Some(v), _) => v,
                (None, Some(p)) => verifier(&p),
                (None, None) => {
                    return Err(bad_file(path, format!("user \"{name}\" has no verifier")));
                }
            };
            let (salt, salted) = parse_verifier(&stored).ok_or_else(|| {
                bad_file(
                    path,
                    format!("user \"{name}\": verifier is not {PREFIX}{ITERATIONS}:<salt>$<key>"),
                )
            })?;
            let user = User {
                role,
                server_files,
                salt,
                salted,
            };
            users.users.insert(name, (user, stored));
        }
        Ok(users)
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.get(name).map(|(u, _)| u)
    }

    /// Add or replace `name` and write the file (owner-only permissions).
    pub fn add(
        path: &Path,
        name: &str,
        role: Role,
        server_files: bool,
        password: &str,
    ) -> Result<()> {
        let mut users = if path.exists() {
            Users::load(path)?
        } else {
            Users::default()
        };
        let v = verifier(password);
        let (salt, salted) = parse_verifier(&v).expect("own verifier parses");
        let user = User {
            role,
            server_files,
            salt,
            salted,
        };
        users.users.insert(name.to_string(), (user, v));
        let mut text = String::from(
            "# Sluice users: written by `sluice user add`. Verifiers, never passwords.\n",
        );
        for (n, (u, v)) in &users.users {
            text.push_str(&format!(
                "\n[[user]]\nname = {}\nrole = \"{}\"\n",
                toml_string(n),
                u.role.name()
            ));
            if u.server_files {
                text.push_str("server_files = true\n");
            }
            text.push_str(&format!("verifier = \"{v}\"\n"));
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| bad_file(path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600));
        }
        std::fs::rename(&tmp, path).map_err(|e| bad_file(path, e))?;
        Ok(())
    }
}

/// Failed logins per client address, for the delay before the next
/// answer: 200 ms after the first, doubling to 6.4 s, forgotten after ten
/// quiet minutes or a successful login. A guesser pays for every wrong
/// password, and the map stays small (entries past 10,000 are dropped).
static FAILED_LOGINS: std::sync::Mutex<
    Option<std::collections::HashMap<std::net::IpAddr, (u32, std::time::Instant)>>,
> = std::sync::Mutex::new(None);

const FORGET_FAILURES: std::time::Duration = std::time::Duration::from_secs(600);

/// Count a failed login from `peer`; how long to wait before saying so.
pub fn failed_login(peer: Option<std::net::IpAddr>) -> std::time::Duration {
    let base = std::time::Duration::from_millis(200);
    let Some(ip) = peer else {
        return base;
    };
    let now = std::time::Instant::now();
    let mut guard = FAILED_LOGINS.lock().expect("failed logins");
    let map = guard.get_or_insert_with(Default::default);
    if map.len() > 10_000 {
        map.retain(|_, (_, at)| now.duration_since(*at) < FORGET_FAILURES);
        if map.len() > 10_000 {
            map.clear();
        }
    }
    let entry = map.entry(ip).or_insert((0, now));
    if now.duration_since(entry.1) >= FORGET_FAILURES {
        entry.0 = 0;
    }
    entry.0 += 1;
    entry.1 = now;
    let wait = base * 2u32.pow(entry.0.saturating_sub(1).min(5));
    tracing::warn!(
        "failed login from {ip} ({} in a row); answering in {} ms",
        entry.0,
        wait.as_millis()
    );
    wait
}

/// A login from `peer` succeeded: its count starts again.
pub fn login_succeeded(peer: Option<std::net::IpAddr>) {
    if let Some(ip) = peer
        && let Some(map) = FAILED_LOGINS.lock().expect("failed logins").as_mut()
    {
        map.remove(&ip);
    }
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message,
    )))
}

/// pgwire's source of SCRAM secrets.
#[derive(Debug)]
pub struct UserAuthSource {
    pub users: Arc<Users>,
}

#[async_trait]
impl AuthSource for UserAuthSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let name = login.user().unwrap_or_default();
        if let Some(db) = login.database()
            && db != crate::catalog::DATABASE
            && db != "postgres"
        {
            return Err(fatal("3D000", format!("database \"{db}\" does not exist")));
        }
        match self.users.get(name) {
            Some(u) => Ok(Password::new(Some(u.salt.clone()), u.salted.clone())),
            // As PostgreSQL: an unknown user fails like a wrong password.
            None => Err(fatal(
                "28P01",
                format!("password authentication failed for user \"{name}\""),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_file_round_trips_without_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        Users::add(&path, "ann", Role::Admin, false, "s3cret pw").unwrap();
        Users::add(&path, "bob \"b\"", Role::Reader, true, "other").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        let users = Users::load(&path).unwrap();
        assert_eq!(users.get("ann").unwrap().role, Role::Admin);
        assert_eq!(users.get("bob \"b\"").unwrap().role, Role::Reader);
        assert!(users.get("bob \"b\"").unwrap().server_files);
        assert!(!users.get("ann").unwrap().server_files);
        let u = users.get("ann").unwrap();
        assert_eq!(
            u.salted,
            gen_salted_password("s3cret pw", &u.salt, ITERATIONS)
        );
        assert!(!format!("{u:?}").contains(&B64.encode(&u.salted)));
    }

    #[test]
    fn plain_passwords_and_bad_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.toml");
        std::fs::write(
            &path,
            "[[user]]\nname = \"w\"\nrole = \"writer\"\npassword = \"pw\"\n",
        )
        .unwrap();
        assert_eq!(
            Users::load(&path).unwrap().get("w").unwrap().role,
            Role::Writer
        );
        std::fs::write(
            &path,
            "[[user]]\nname = \"w\"\nrole = \"boss\"\npassword = \"pw\"\n",
        )
        .unwrap();
        assert!(Users::load(&path).is_err());
        std::fs::write(&path, "[[user]]\nname = \"w\"\nverifier = \"plain\"\n").unwrap();
        assert!(Users::load(&path).is_err());
        // A broken line is located, never quoted: it may hold a password.
        std::fs::write(&path, "[[user]]\nname = \"w\"\npassword = hunter2\n").unwrap();
        let e = Users::load(&path).unwrap_err();
        assert!(
            e.message.ends_with("not valid TOML at line 3"),
            "{}",
            e.message
        );
    }

    /// Mangled users files: an error, never a panic.
    #[test]
    fn mangled_users_files_never_panic() {
        const NOISE: &[u8] = b"[]\"=.$:\n #0aZ";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        Users::add(&path, "ann", Role::Admin, true, "pw one").unwrap();
        Users::add(&path, "bob", Role::Writer, false, "pw two").unwrap();
        let base = std::fs::read(&path).unwrap();
        let seed = fastrand::u64(..);
        let mut rng = fastrand::Rng::with_seed(seed);
        let mangled = dir.path().join("mangled.toml");
        for _ in 0..500 {
            let bytes = crate::config::tests::mangle_toml(&mut rng, &base, NOISE);
            std::fs::write(&mangled, &bytes).unwrap();
            let _ = Users::load(&mangled);
        }
    }
}
