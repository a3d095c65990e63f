//! Where `postgres_query` connects, and TLS with libpq's `sslmode`
//! meanings:
//!
//! | sslmode             | encrypted             | certificate checked            |
//! |---------------------|-----------------------|--------------------------------|
//! | `disable`           | no                    | -                              |
//! | `allow`, `prefer`   | if the server offers  | no                             |
//! | `require`           | yes, or no connection | no                             |
//! | `verify-ca`         | yes, or no connection | chain to a trusted root        |
//! | `verify-full`       | yes, or no connection | chain and host name            |
//!
//! `prefer` is the default, as in libpq. The trusted roots are the PEM
//! file named by `sslrootcert`, or the system's roots when it is absent or
//! `system` (which, as in libpq 16, also makes `verify-full` the default).
//! Connection strings are either URLs (`postgresql://u@h/db?sslmode=...`)
//! or libpq's `key=value` form; no message ever quotes one.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use pgwire::tokio::tokio_rustls::{TlsConnector, client, rustls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::Socket;
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!(
                        "invalid sslmode \"{value}\" (expected disable, allow, prefer, \
                         require, verify-ca or verify-full)"
                    ),
                ));
            }
        })
    }
}

/// A parsed connection string: what tokio-postgres understands, plus the
/// TLS settings it does not.
#[derive(Clone)]
pub struct Target {
    pub config: tokio_postgres::Config,
    mode: SslMode,
    root_cert: Option<PathBuf>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("to", &describe(&self.config))
            .field("mode", &self.mode)
            .finish()
    }
}

/// Host, port and database, for messages (no user, no password).
pub fn describe(c: &tokio_postgres::Config) -> String {
    let host = c
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = c.get_ports().first().copied().unwrap_or(5432);
    let db = c.get_dbname().unwrap_or("(default)");
    format!("{host}:{port}/{db}")
}

fn invalid(what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidParameter,
        format!("invalid connection string: {what}"),
    )
}

impl Target {
    pub fn parse(conn: &str) -> Result<Target> {
        let (rest, mode, root) =
            if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
                split_url(conn)
            } else {
                split_key_values(conn)?
            };
        let mut config: tokio_postgres::Config = rest.parse().map_err(invalid)?;
        let root_cert = match root.as_deref() {
            None | Some("system") => None,
            Some(path) => Some(PathBuf::from(path)),
        };
        let mode = match mode {
            Some(m) => SslMode::parse(&m)?,
            None if root.as_deref() == Some("system") => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        config.ssl_mode(match mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            _ => PgSslMode::Require,
        });
        Ok(Target {
            config,
            mode,
            root_cert,
        })
    }

    pub fn shown(&self) -> String {
        describe(&self.config)
    }

    /// The TLS connector for this target's sslmode.
    pub fn tls(&self) -> Result<MakeRustls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::internal(format!("TLS setup: {e}")))?;
        let chain = match self.mode {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => None,
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let roots = match &self.root_cert {
                    Some(path) => Arc::new(roots_from_file(path)?),
                    None => system_roots()?,
                };
                let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    roots,
                    provider.clone(),
                )
                .build()
                .map_err(|e| invalid(format!("trusted roots: {e}")))?;
                Some(webpki)
            }
        };
        let verifier = Arc::new(Verifier {
            provider,
            chain,
            name: self.mode == SslMode::VerifyFull,
        });
        let mut config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(MakeRustls(Arc::new(config)))
    }
}

/// Split a URL's query into what tokio-postgres takes and the TLS
/// options it does not (`sslmode` values beyond its three, `sslrootcert`).
fn split_url(conn: &str) -> (String, Option<String>, Option<String>) {
    let Some((base, query)) = conn.split_once('?') else {
        return (conn.to_string(), None, None);
    };
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    for part in query.split('&') {
        let decoded = url::form_urlencoded::parse(part.as_bytes()).next();
        match decoded {
            Some((k, v)) if k == "sslmode" => mode = Some(v.into_owned()),
            Some((k, v)) if k == "sslrootcert" => root = Some(v.into_owned()),
            _ => kept.push(part),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, mode, root)
}

/// libpq's `key = value` form: values unquoted (backslash escapes) or in
/// single quotes (`\'` and `\\` escapes).
fn split_key_values(conn: &str) -> Result<(String, Option<String>, Option<String>)> {
    let mut chars = conn.chars().peekable();
    let (mut mode, mut root, mut rest) = (None, None, String::new());
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(invalid("expected key=value pairs separated by spaces"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => return Err(invalid(format!("unterminated quote in \"{key}\""))),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        match key.as_str() {
            "sslmode" => mode = Some(value),
            "sslrootcert" => root = Some(value),
            _ => {
                let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
                rest.push_str(&format!("{key}='{quoted}' "));
            }
        }
    }
    Ok((rest, mode, root))
}

fn roots_from_file(path: &std::path::Path) -> Result<RootCertStore> {
    use rustls::pki_types::pem::PemObject;
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::InvalidParameter,
            format!("could not read sslrootcert file {}: {e}", path.display()),
        )
    };
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
        let cert = cert.map_err(|e| unreadable(&e))?;
        store.add(cert).map_err(|e| unreadable(&e))?;
    }
    if store.is_empty() {
        return Err(unreadable(&"no certificate in it"));
    }
    Ok(store)
}

/// The system's trusted roots, read once.
fn system_roots() -> Result<Arc<RootCertStore>> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        let mut store = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        store.add_parsable_certificates(found.certs);
        Arc::new(store)
    });
    if roots.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            "no trusted root certificates on this system: name a PEM file with sslrootcert",
        ));
    }
    Ok(roots.clone())
}

/// What is checked of the server's certificate: nothing (`prefer`,
/// `require`, as libpq), the chain (`verify-ca`), or the chain and the
/// host name (`verify-full`). Handshake signatures are always verified.
#[derive(Debug)]
struct Verifier {
    provider: Arc<rustls::crypto::CryptoProvider>,
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// tokio-postgres' TLS hook over rustls.
#[derive(Clone)]
pub struct MakeRustls(Arc<rustls::ClientConfig>);

pub struct Connect {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = Stream;
    type TlsConnect = Connect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> std::result::Result<Connect, Self::Error> {
        Ok(Connect {
            config: self.0.clone(),
            name: ServerName::try_from(domain.to_string())?,
        })
    }
}

impl TlsConnect<Socket> for Connect {
    type Stream = Stream;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Stream>> + Send>>;

    fn connect(self, socket: Socket) -> Self::Future {
        Box::pin(async move {
            let stream = TlsConnector::from(self.config)
                .connect(self.name, socket)
                .await?;
            Ok(Stream(stream))
        })
    }
}

pub struct Stream(client::TlsStream<Socket>);

impl TlsStream for Stream {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_root_are_taken_out_of_both_forms() {
        let t = Target::parse(
            "postgresql://alice:s3cret@db.internal:6432/sales?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert_eq!(
            t.root_cert.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert_eq!(t.config.get_application_name(), Some("x"));
        assert_eq!(t.config.get_ssl_mode(), PgSslMode::Require);
        assert_eq!(t.shown(), "db.internal:6432/sales");

        let t = Target::parse(
            "host=db user=bob password='it''s \\'q\\' x' sslmode = verify-ca dbname=ops",
        );
        // libpq does not double quotes: '' ends and starts a value.
        assert!(t.is_err());
        let t = Target::parse(
            "host=db user=bob password='it\\'s a \\\\ pw' sslmode = verify-ca dbname=ops",
        )
        .unwrap();
        assert_eq!(t.mode, SslMode::VerifyCa);
        assert_eq!(t.config.get_password(), Some(&b"it's a \\ pw"[..]));
        assert_eq!(t.config.get_dbname(), Some("ops"));
        assert_eq!(t.shown(), "db:5432/ops");

        let t = Target::parse("host=db sslrootcert=system").unwrap();
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert!(t.root_cert.is_none());
        let t = Target::parse("host=db").unwrap();
        assert_eq!(t.mode, SslMode::Prefer);
        let t = Target::parse("postgresql://db/x?sslmode=disable").unwrap();
        assert_eq!(t.config.get_ssl_mode(), PgSslMode::Disable);
    }

    #[test]
    fn bad_strings_never_echo_a_secret() {
        for bad in [
            "host=db password=hunter22 sslmode=sometimes",
            "host=db password='hunter22",
            "host=db password hunter22",
            "postgresql://u:hunter22@db/x?sslmode=maybe",
            "postgresql://u:hunter22@db:notaport/x",
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(!e.message.contains("hunter22"), "{bad}: {}", e.message);
            assert_eq!(e.kind, ErrorKind::InvalidParameter, "{bad}");
        }
    }
}
