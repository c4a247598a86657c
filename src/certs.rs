//! Certificates for the webhook: generate a CA and serving (or client) certificates signed by
//! it with rcgen, write them as PEM files, read a certificate's expiry, and keep a reusable
//! self-signed development set for `portcullis serve` without flags.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;

/// The names the development serving certificate is valid for: local access and the in-cluster
/// Service `portcullis` in namespace `portcullis-system`.
pub const DEV_SERVING_NAMES: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "portcullis.portcullis-system.svc",
    "portcullis.portcullis-system.svc.cluster.local",
];

/// How long a generated CA is valid.
pub const CA_VALIDITY: Duration = Duration::from_secs(5 * 365 * 24 * 3600);
/// How long a generated serving certificate is valid.
pub const SERVING_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Development certificates expiring sooner than this are regenerated instead of reused.
pub const REUSE_MARGIN: Duration = Duration::from_secs(7 * 24 * 3600);

/// File names inside a development certificate directory.
pub const CA_CERT_FILE: &str = "ca.crt";
/// The CA's private key.
pub const CA_KEY_FILE: &str = "ca.key";
/// The serving certificate (leaf first).
pub const TLS_CERT_FILE: &str = "tls.crt";
/// The serving certificate's private key.
pub const TLS_KEY_FILE: &str = "tls.key";

/// Why a certificate could not be generated, read or written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused the parameters or a key.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM file holds no usable certificate.
    #[error("{what}: no PEM certificate found")]
    NoCertificate {
        /// Which input.
        what: String,
    },
    /// A certificate could not be parsed as X.509.
    #[error("{what}: not a valid X.509 certificate: {reason}")]
    Parse {
        /// Which input.
        what: String,
        /// The parser's complaint.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct CertifiedPem {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for CertifiedPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print private keys.
        f.debug_struct("CertifiedPem")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// A certificate authority able to sign serving and client certificates.
pub struct CertificateAuthority {
    pem: CertifiedPem,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_pem", &self.pem.cert_pem)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Generates a new self-signed CA (ECDSA P-256) named `common_name`, valid for `validity`.
    pub fn generate(
        common_name: &str,
        validity: Duration,
    ) -> Result<CertificateAuthority, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, validity);
        let cert = params.self_signed(&key)?;
        let pem = CertifiedPem {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        Ok(CertificateAuthority {
            pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads an existing CA from its certificate and private key (PEM).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<CertificateAuthority, CertError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(CertificateAuthority {
            pem: CertifiedPem {
                cert_pem: cert_pem.to_owned(),
                key_pem: key_pem.to_owned(),
            },
            issuer,
        })
    }

    /// The CA certificate and key, PEM.
    pub fn pem(&self) -> &CertifiedPem {
        &self.pem
    }

    /// The CA certificate base64-encoded, ready for a webhook configuration's
    /// `clientConfig.caBundle`.
    pub fn ca_bundle_base64(&self) -> String {
        ca_bundle_base64(&self.pem.cert_pem)
    }

    /// Issues a TLS serving certificate for `names` (DNS names or IP addresses; the first is
    /// also the common name), valid for `validity`.
    pub fn issue_serving_cert(
        &self,
        names: &[String],
        validity: Duration,
    ) -> Result<CertifiedPem, CertError> {
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name =
            distinguished_name(names.first().map(String::as_str).unwrap_or("portcullis"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, validity)
    }

    /// Issues a TLS client certificate named `common_name` (for `--client-ca` authentication).
    pub fn issue_client_cert(
        &self,
        common_name: &str,
        validity: Duration,
    ) -> Result<CertifiedPem, CertError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, validity)
    }

    fn issue(
        &self,
        mut params: CertificateParams,
        validity: Duration,
    ) -> Result<CertifiedPem, CertError> {
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, validity);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertifiedPem {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Portcullis");
    dn
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = OffsetDateTime::now_utc();
    // A little back-dating tolerates clock skew between machines.
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + validity;
}

/// A PEM certificate bundle base64-encoded, as `caBundle` fields expect it.
pub fn ca_bundle_base64(cert_pem: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(cert_pem.as_bytes())
}

/// The first certificate of a PEM bundle, as DER.
fn first_cert(pem: &str, what: &str) -> Result<CertificateDer<'static>, CertError> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| CertError::NoCertificate {
            what: what.to_owned(),
        })
}

/// What a certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// `notAfter`, unix seconds.
    pub not_after_unix: i64,
    /// The subject, RFC 4514 style.
    pub subject: String,
    /// The issuer, RFC 4514 style.
    pub issuer: String,
    /// DNS names and IP addresses of the subjectAltName extension.
    pub names: Vec<String>,
}

/// Reads the first certificate of a PEM bundle. `what` names the input in errors.
pub fn cert_info(cert_pem: &str, what: &str) -> Result<CertInfo, CertError> {
    let der = first_cert(cert_pem, what)?;
    let (_, x509) =
        x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| CertError::Parse {
            what: what.to_owned(),
            reason: e.to_string(),
        })?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = x509.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push((*d).to_owned()),
                x509_parser::extensions::GeneralName::IPAddress(ip) => {
                    let ip = match ip.len() {
                        4 => <[u8; 4]>::try_from(*ip).map(std::net::IpAddr::from).ok(),
                        16 => <[u8; 16]>::try_from(*ip).map(std::net::IpAddr::from).ok(),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        not_after_unix: x509.validity().not_after.timestamp(),
        subject: x509.subject().to_string(),
        issuer: x509.issuer().to_string(),
        names,
    })
}

/// The expiry (`notAfter`, unix seconds) of the first certificate of a PEM bundle.
pub fn expiry_unix_seconds(cert_pem: &str) -> Result<i64, CertError> {
    cert_info(cert_pem, "certificate").map(|i| i.not_after_unix)
}

/// Writes a PEM file. Private keys (`private = true`) are created readable by the owner only.
pub fn write_pem(path: &Path, contents: &str, private: bool) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(io)?;
    // `mode` applies only when the file is created: tighten a file that already existed too.
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

fn read(path: &Path) -> Result<String, CertError> {
    std::fs::read_to_string(path).map_err(|source| CertError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A development certificate set on disk: CA plus serving certificate.
#[derive(Debug, Clone)]
pub struct DevCerts {
    /// The directory holding the files.
    pub dir: PathBuf,
    /// The CA certificate (`ca.crt`): what clients trust.
    pub ca_cert: PathBuf,
    /// The serving certificate (`tls.crt`).
    pub tls_cert: PathBuf,
    /// The serving key (`tls.key`).
    pub tls_key: PathBuf,
    /// The CA bundle for webhook configurations (base64 of `ca.crt`).
    pub ca_bundle_base64: String,
    /// Whether existing files were reused (false: freshly generated).
    pub reused: bool,
}

/// Makes sure `dir` holds a development CA and a serving certificate for
/// [`DEV_SERVING_NAMES`], reusing existing files while they are valid for at least
/// [`REUSE_MARGIN`], cover those names and were issued by that CA; otherwise generates new ones.
pub fn ensure_dev_certs(dir: &Path) -> Result<DevCerts, CertError> {
    let certs = DevCerts {
        dir: dir.to_path_buf(),
        ca_cert: dir.join(CA_CERT_FILE),
        tls_cert: dir.join(TLS_CERT_FILE),
        tls_key: dir.join(TLS_KEY_FILE),
        ca_bundle_base64: String::new(),
        reused: false,
    };
    let ca_key = dir.join(CA_KEY_FILE);
    if let Some(bundle) = reusable_dev_certs(&certs, &ca_key) {
        return Ok(DevCerts {
            ca_bundle_base64: bundle,
            reused: true,
            ..certs
        });
    }
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca = CertificateAuthority::generate("Portcullis development CA", CA_VALIDITY)?;
    let names: Vec<String> = DEV_SERVING_NAMES.iter().map(|s| (*s).to_owned()).collect();
    let serving = ca.issue_serving_cert(&names, SERVING_VALIDITY)?;
    write_pem(&ca_key, &ca.pem().key_pem, true)?;
    write_pem(&certs.ca_cert, &ca.pem().cert_pem, false)?;
    write_pem(&certs.tls_key, &serving.key_pem, true)?;
    write_pem(&certs.tls_cert, &serving.cert_pem, false)?;
    Ok(DevCerts {
        ca_bundle_base64: ca.ca_bundle_base64(),
        ..certs
    })
}

/// The CA bundle when the files in `certs` can be reused as they are.
fn reusable_dev_certs(certs: &DevCerts, ca_key: &Path) -> Option<String> {
    let ca_pem = read(&certs.ca_cert).ok()?;
    let tls_pem = read(&certs.tls_cert).ok()?;
    // The keys must exist and parse; whether the serving key matches its certificate is checked
    // again by the TLS loader at start-up.
    KeyPair::from_pem(&read(ca_key).ok()?).ok()?;
    KeyPair::from_pem(&read(&certs.tls_key).ok()?).ok()?;
    let ca = cert_info(&ca_pem, "ca.crt").ok()?;
    let tls = cert_info(&tls_pem, "tls.crt").ok()?;
    let horizon = OffsetDateTime::now_utc() + REUSE_MARGIN;
    let horizon = horizon.unix_timestamp();
    let covers = DEV_SERVING_NAMES
        .iter()
        .all(|n| tls.names.iter().any(|have| have == n));
    (ca.not_after_unix > horizon
        && tls.not_after_unix > horizon
        && tls.issuer == ca.subject
        && covers)
        .then(|| ca_bundle_base64(&ca_pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_cert_names_and_expiry() {
        let ca = CertificateAuthority::generate("test CA", CA_VALIDITY).expect("ca");
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let leaf = ca
            .issue_serving_cert(&names, Duration::from_secs(3600))
            .expect("leaf");
        let info = cert_info(&leaf.cert_pem, "leaf").expect("info");
        assert_eq!(info.names, names);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        assert!((info.not_after_unix - now - 3600).abs() < 60, "{info:?}");
        let ca_info = cert_info(&ca.pem().cert_pem, "ca").expect("ca info");
        assert_eq!(info.issuer, ca_info.subject);
        // A CA loaded back from PEM keeps signing under the same name.
        let again = CertificateAuthority::from_pem(&ca.pem().cert_pem, &ca.pem().key_pem)
            .expect("reload ca");
        let leaf2 = again
            .issue_client_cert("client", Duration::from_secs(60))
            .expect("client");
        assert_eq!(
            cert_info(&leaf2.cert_pem, "client").expect("info").issuer,
            ca_info.subject
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            expiry_unix_seconds("not a pem"),
            Err(CertError::NoCertificate { .. })
        ));
        let bogus = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(expiry_unix_seconds(bogus).is_err());
    }

    #[test]
    fn dev_certs_are_reused_then_regenerated_when_broken() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ensure_dev_certs(dir.path()).expect("generate");
        assert!(!first.reused);
        let ca_before = std::fs::read_to_string(&first.ca_cert).expect("ca");
        let second = ensure_dev_certs(dir.path()).expect("reuse");
        assert!(second.reused);
        assert_eq!(second.ca_bundle_base64, first.ca_bundle_base64);
        std::fs::write(&first.tls_cert, "garbage").expect("break");
        let third = ensure_dev_certs(dir.path()).expect("regenerate");
        assert!(!third.reused);
        assert_ne!(
            std::fs::read_to_string(&third.ca_cert).expect("ca"),
            ca_before
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&third.tls_key)
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "private key readable by others");
        }
    }
}
