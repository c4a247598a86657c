//! `portcullis certs`: generate (or reuse) a CA and issue a serving certificate for the
//! webhook's Service, and write them as PEM files, as a ready `kubernetes.io/tls` Secret and
//! as a kustomize component that puts the Secret and the `caBundle` into `deploy/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use time::OffsetDateTime;

use crate::certs::{
    self, CA_CERT_FILE, CA_KEY_FILE, CertificateAuthority, TLS_CERT_FILE, TLS_KEY_FILE,
};

/// The webhook configurations in `deploy/base` and the webhook in each (the caBundle patch
/// names them; a rendering test checks they match the base).
pub const WEBHOOKS: [(&str, &str, &str); 2] = [
    (
        "MutatingWebhookConfiguration",
        "portcullis",
        "mutate.portcullis.dev",
    ),
    (
        "ValidatingWebhookConfiguration",
        "portcullis",
        "validate.portcullis.dev",
    ),
];

/// The previous CA after a `--force` rotation: still trusted (in the caBundle) until it is
/// deleted, so Pods serving the old certificate keep working while the new one rolls out.
pub const PREVIOUS_CA_FILE: &str = "ca-previous.crt";
/// The `kubernetes.io/tls` Secret manifest.
pub const SECRET_FILE: &str = "secret.yaml";
/// The caBundle patch for both webhook configurations.
pub const CA_BUNDLE_PATCH_FILE: &str = "webhook-ca-bundle.yaml";
/// The kustomize component tying them together (`components: [../certs]` in deploy/).
pub const KUSTOMIZATION_FILE: &str = "kustomization.yaml";

const DAY: u64 = 24 * 3600;

/// Arguments of `portcullis certs`.
#[derive(Debug, Clone, clap::Args)]
pub struct CertsArgs {
    /// Directory for the CA, the serving certificate, the Secret manifest and the kustomize
    /// component (`deploy/` includes `../certs`).
    #[arg(long, default_value = "certs")]
    pub out_dir: PathBuf,
    /// Name of the webhook's Service.
    #[arg(long, default_value = "portcullis")]
    pub service: String,
    /// Namespace of the Service and the Secret.
    #[arg(long, default_value = "portcullis-system")]
    pub namespace: String,
    /// Name of the TLS Secret the Deployment mounts.
    #[arg(long, default_value = "portcullis-tls")]
    pub secret_name: String,
    /// An extra DNS name for the serving certificate, beside the Service's names (repeatable),
    /// for a webhook the apiserver reaches by `url:` (e.g. `--dns webhook.example.com`).
    #[arg(long = "dns", value_name = "NAME")]
    pub dns: Vec<String>,
    /// An IP address for the serving certificate (repeatable), for a webhook the apiserver
    /// reaches by `url: https://ADDRESS:PORT/...` (e.g. `--ip 127.0.0.1`).
    #[arg(long = "ip", value_name = "ADDRESS")]
    pub ip: Vec<std::net::IpAddr>,
    /// Days the serving certificate is valid.
    #[arg(long, default_value = "365", value_name = "DAYS", value_parser = clap::value_parser!(u64).range(1..=3650))]
    pub validity_days: u64,
    /// Days a newly generated CA is valid.
    #[arg(long, default_value = "1825", value_name = "DAYS", value_parser = clap::value_parser!(u64).range(1..=7300))]
    pub ca_validity_days: u64,
    /// Generate a new CA even if the directory holds a usable one. The old CA is kept as
    /// `ca-previous.crt` and stays in the caBundle until you delete that file and run
    /// `portcullis certs` again.
    #[arg(long)]
    pub force: bool,
}

impl CertsArgs {
    /// The DNS names a Service is reached by, most specific (the one the apiserver uses) first.
    pub fn dns_names(&self) -> Vec<String> {
        let (svc, ns) = (&self.service, &self.namespace);
        vec![
            format!("{svc}.{ns}.svc"),
            format!("{svc}.{ns}.svc.cluster.local"),
            format!("{svc}.{ns}"),
            svc.clone(),
        ]
    }

    /// Every name of the serving certificate: the Service's, then `--dns`, then `--ip`, each
    /// once.
    pub fn names(&self) -> Vec<String> {
        let mut names = self.dns_names();
        let extra = self
            .dns
            .iter()
            .cloned()
            .chain(self.ip.iter().map(ToString::to_string));
        for name in extra {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }
}

/// Checks a `--dns` name: a DNS-1123 subdomain, optionally a wildcard (`*.example.com`).
fn check_dns_name(name: &str) -> Result<(), String> {
    use crate::policy::names::check_dns1123_subdomain;
    check_dns1123_subdomain(name.strip_prefix("*.").unwrap_or(name))
}

/// What `portcullis certs` did.
#[derive(Debug)]
pub struct Generated {
    /// Whether the CA was newly generated (false: reused from the directory).
    pub new_ca: bool,
    /// Whether the previous CA is still in the bundle.
    pub previous_ca_trusted: bool,
    /// `notAfter` of the serving certificate.
    pub serving_not_after: OffsetDateTime,
    /// `notAfter` of the CA.
    pub ca_not_after: OffsetDateTime,
    /// The DNS names and IP addresses of the serving certificate.
    pub names: Vec<String>,
    /// Names the previous serving certificate had and this one has not.
    pub dropped: Vec<String>,
}

/// Runs `portcullis certs`.
pub fn run(args: CertsArgs) -> anyhow::Result<ExitCode> {
    let done = generate(&args)?;
    let dir = args.out_dir.display();
    println!(
        "{} CA {dir}/{CA_CERT_FILE} (expires {}){}",
        if done.new_ca { "generated" } else { "reused" },
        date(done.ca_not_after),
        if done.previous_ca_trusted {
            format!(", previous CA {dir}/{PREVIOUS_CA_FILE} still trusted")
        } else {
            String::new()
        }
    );
    println!(
        "issued serving certificate {dir}/{TLS_CERT_FILE} for {} (expires {})",
        done.names.join(", "),
        date(done.serving_not_after)
    );
    if !done.dropped.is_empty() {
        eprintln!(
            "warning: the previous certificate in {dir} also covered {}: pass the same \
             --dns/--ip flags as before to keep them",
            done.dropped.join(", ")
        );
    }
    println!(
        "wrote {dir}/{SECRET_FILE} (Secret {}/{}), {dir}/{CA_BUNDLE_PATCH_FILE} and \
         {dir}/{KUSTOMIZATION_FILE}",
        args.namespace, args.secret_name
    );
    if args.out_dir == Path::new("certs") {
        println!("next: kubectl apply -k deploy/   (re-run both before the certificate expires)");
    } else {
        println!(
            "deploy/ includes certs/: to use {dir}, list it under `components:` of your own \
             kustomization (see deploy/kustomization.yaml)"
        );
    }
    if done.previous_ca_trusted {
        println!(
            "finish the CA rotation once every Pod serves the new certificate: \
             rm {dir}/{PREVIOUS_CA_FILE} && portcullis certs --out-dir {dir} && kubectl apply -k deploy/"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn date(t: OffsetDateTime) -> String {
    format!("{} UTC", t.date())
}

/// Generates or reuses the CA, issues a serving certificate and writes every file.
pub fn generate(args: &CertsArgs) -> anyhow::Result<Generated> {
    use crate::policy::names::{check_dns1123_label, check_dns1123_subdomain};
    for (flag, value, check) in [
        (
            "--service",
            &args.service,
            check_dns1123_label as fn(&str) -> Result<(), String>,
        ),
        ("--namespace", &args.namespace, check_dns1123_label),
        ("--secret-name", &args.secret_name, check_dns1123_subdomain),
    ] {
        check(value).map_err(|e| anyhow::anyhow!("{flag} {value:?}: {e}"))?;
    }
    for name in &args.dns {
        check_dns_name(name).map_err(|e| anyhow::anyhow!("--dns {name:?}: {e}"))?;
    }
    let dir = &args.out_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let serving_validity = Duration::from_secs(args.validity_days * DAY);
    let now = OffsetDateTime::now_utc();

    // With --force a broken CA is simply replaced; without, it is an error.
    let existing = match existing_ca(dir) {
        Err(_) if args.force => None,
        other => other?,
    };
    let (ca, new_ca) = match existing {
        Some(ca) if !args.force => (ca, false),
        other => {
            if let Some(old) = other {
                // Rotation: keep trusting the old CA until the operator drops it.
                certs::write_pem(&dir.join(PREVIOUS_CA_FILE), &old.pem().cert_pem, false)?;
            }
            let ca = CertificateAuthority::generate(
                "Portcullis webhook CA",
                Duration::from_secs(args.ca_validity_days * DAY),
            )?;
            certs::write_pem(&dir.join(CA_KEY_FILE), &ca.pem().key_pem, true)?;
            certs::write_pem(&dir.join(CA_CERT_FILE), &ca.pem().cert_pem, false)?;
            (ca, true)
        }
    };
    let ca_info = certs::cert_info(&ca.pem().cert_pem, CA_CERT_FILE)?;
    let ca_not_after = unix(ca_info.not_after_unix)?;
    let serving_not_after = now + serving_validity;
    if ca_not_after < serving_not_after {
        anyhow::bail!(
            "the CA in {} expires {}, before a certificate valid for {} days would: \
             rotate the CA with `portcullis certs --force` (see certs/README.md), or pass a \
             shorter --validity-days",
            dir.join(CA_CERT_FILE).display(),
            date(ca_not_after),
            args.validity_days
        );
    }

    let names = args.names();
    let dropped = dropped_names(dir, &names);
    let serving = ca.issue_serving_cert(&names, serving_validity)?;
    certs::write_pem(&dir.join(TLS_KEY_FILE), &serving.key_pem, true)?;
    certs::write_pem(&dir.join(TLS_CERT_FILE), &serving.cert_pem, false)?;

    let previous = previous_ca(dir, now)?;
    let bundle = format!("{}{}", ca.pem().cert_pem, previous.as_deref().unwrap_or(""));
    let ca_bundle = certs::ca_bundle_base64(&bundle);
    // The Secret holds the private key: as private as the key file.
    certs::write_pem(
        &dir.join(SECRET_FILE),
        &secret_manifest(args, &serving.cert_pem, &serving.key_pem, &bundle),
        true,
    )?;
    certs::write_pem(
        &dir.join(CA_BUNDLE_PATCH_FILE),
        &ca_bundle_patch(&ca_bundle),
        false,
    )?;
    certs::write_pem(&dir.join(KUSTOMIZATION_FILE), KUSTOMIZATION, false)?;
    Ok(Generated {
        new_ca,
        previous_ca_trusted: previous.is_some(),
        serving_not_after,
        ca_not_after,
        names,
        dropped,
    })
}

/// Names the serving certificate in `dir` covers that `names` does not: a renewal run without
/// the `--dns`/`--ip` flags of the first run would drop them.
fn dropped_names(dir: &Path, names: &[String]) -> Vec<String> {
    let Ok(pem) = std::fs::read_to_string(dir.join(TLS_CERT_FILE)) else {
        return Vec::new();
    };
    let Ok(old) = certs::cert_info(&pem, TLS_CERT_FILE) else {
        return Vec::new();
    };
    old.names
        .into_iter()
        .filter(|n| !names.contains(n))
        .collect()
}

fn unix(seconds: i64) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(seconds)
        .with_context(|| format!("certificate expiry {seconds} is out of range"))
}

/// The CA in `dir`, if both files exist. Half a CA, or one that does not load, is an error:
/// silently replacing it would change the caBundle under a running webhook.
fn existing_ca(dir: &Path) -> anyhow::Result<Option<CertificateAuthority>> {
    let (cert, key) = (dir.join(CA_CERT_FILE), dir.join(CA_KEY_FILE));
    match (cert.exists(), key.exists()) {
        (false, false) => return Ok(None),
        (true, true) => {}
        _ => anyhow::bail!(
            "{} holds only one of {CA_CERT_FILE} and {CA_KEY_FILE}: restore the other, or \
             generate a new CA with --force (the caBundle changes)",
            dir.display()
        ),
    }
    let read = |p: &Path| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let (cert_pem, key_pem) = (read(&cert)?, read(&key)?);
    let ca = CertificateAuthority::from_pem(&cert_pem, &key_pem).with_context(|| {
        format!(
            "cannot use the CA in {}: fix or delete it, or generate a new one with --force",
            dir.display()
        )
    })?;
    Ok(Some(ca))
}

/// The previous CA (after a rotation) while it is still valid.
fn previous_ca(dir: &Path, now: OffsetDateTime) -> anyhow::Result<Option<String>> {
    let path = dir.join(PREVIOUS_CA_FILE);
    let Ok(pem) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let info = certs::cert_info(&pem, PREVIOUS_CA_FILE)
        .with_context(|| format!("{}: delete it to stop trusting it", path.display()))?;
    Ok((info.not_after_unix > now.unix_timestamp()).then_some(pem))
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

fn secret_manifest(args: &CertsArgs, cert_pem: &str, key_pem: &str, ca_pem: &str) -> String {
    format!(
        "# Generated by `portcullis certs`: the webhook's serving certificate and key. Contains a\n\
         # private key: never commit it. Re-run `portcullis certs` to renew (see certs/README.md).\n\
         apiVersion: v1\n\
         kind: Secret\n\
         metadata:\n  name: {name}\n  namespace: {namespace}\n  labels:\n    \
         app.kubernetes.io/name: portcullis\n    app.kubernetes.io/component: webhook\n\
         type: kubernetes.io/tls\n\
         data:\n  tls.crt: {crt}\n  tls.key: {key}\n  ca.crt: {ca}\n",
        name = args.secret_name,
        namespace = args.namespace,
        crt = b64(cert_pem),
        key = b64(key_pem),
        ca = b64(ca_pem),
    )
}

fn ca_bundle_patch(ca_bundle: &str) -> String {
    let mut out = String::from(
        "# Generated by `portcullis certs`: the CA bundle the apiserver verifies the webhook with.\n",
    );
    for (i, (kind, name, webhook)) in WEBHOOKS.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&format!(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: {kind}\nmetadata:\n  name: {name}\n\
             webhooks:\n  - name: {webhook}\n    clientConfig:\n      caBundle: {ca_bundle}\n"
        ));
    }
    out
}

const KUSTOMIZATION: &str = "\
# Generated by `portcullis certs`: deploy/kustomization.yaml includes this component, which adds
# the TLS Secret and puts the caBundle into both webhook configurations.
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources:
  - secret.yaml
patches:
  - path: webhook-ca-bundle.yaml
";

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(dir: &Path, extra: &[&str]) -> CertsArgs {
        let out = dir.to_str().expect("utf-8 temp path");
        let argv = [&["portcullis", "certs", "--out-dir", out], extra].concat();
        match Cli::try_parse_from(argv).expect("parse").command {
            Command::Certs(a) => a,
            other => panic!("not certs: {other:?}"),
        }
    }

    fn read(dir: &Path, file: &str) -> String {
        std::fs::read_to_string(dir.join(file)).expect(file)
    }

    #[test]
    fn service_names_cover_every_way_the_service_is_addressed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = args(dir.path(), &[]);
        assert_eq!(
            a.dns_names(),
            [
                "portcullis.portcullis-system.svc",
                "portcullis.portcullis-system.svc.cluster.local",
                "portcullis.portcullis-system",
                "portcullis",
            ]
        );
        let done = generate(&a).expect("generate");
        let info = certs::cert_info(&read(dir.path(), TLS_CERT_FILE), "tls.crt").expect("info");
        assert_eq!(info.names, done.names);
        let ca = certs::cert_info(&read(dir.path(), CA_CERT_FILE), "ca.crt").expect("ca");
        assert_eq!(info.issuer, ca.subject);
    }

    #[test]
    fn extra_dns_names_and_ip_addresses_for_a_webhook_reached_by_url() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = args(
            dir.path(),
            &[
                "--ip",
                "127.0.0.1",
                "--ip",
                "fd00::5",
                "--dns",
                "webhook.example.com",
                "--dns",
                "*.hooks.example.com",
                "--ip",
                "127.0.0.1",
            ],
        );
        let done = generate(&a).expect("generate");
        let info = certs::cert_info(&read(dir.path(), TLS_CERT_FILE), "tls.crt").expect("info");
        assert_eq!(info.names, done.names);
        assert_eq!(
            &info.names[4..],
            [
                "webhook.example.com",
                "*.hooks.example.com",
                "127.0.0.1",
                "fd00::5"
            ],
            "the Service's names first, then each extra name once"
        );
        assert!(done.dropped.is_empty());
        // A renewal without the flags says what it drops; the CA stays.
        let again = generate(&args(dir.path(), &["--ip", "127.0.0.1"])).expect("renew");
        assert!(!again.new_ca);
        assert_eq!(
            again.dropped,
            ["webhook.example.com", "*.hooks.example.com", "fd00::5"]
        );
    }

    #[test]
    fn bad_extra_names_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        for bad in ["Webhook.Example.com", "a..b", "x-.example.com", "*"] {
            let err = generate(&args(dir.path(), &["--dns", bad])).expect_err(bad);
            assert!(format!("{err:#}").contains("--dns"), "{err:#}");
        }
        let argv = ["portcullis", "certs", "--ip", "127.0.0.300"];
        assert!(Cli::try_parse_from(argv).is_err());
        assert!(!dir.path().join(CA_KEY_FILE).exists(), "nothing written");
    }

    #[test]
    fn reruns_keep_the_ca_and_renew_the_serving_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = args(dir.path(), &["--validity-days", "30"]);
        assert!(generate(&a).expect("first").new_ca);
        let (ca1, tls1) = (
            read(dir.path(), CA_CERT_FILE),
            read(dir.path(), TLS_CERT_FILE),
        );
        let patch1 = read(dir.path(), CA_BUNDLE_PATCH_FILE);
        let again = generate(&a).expect("second");
        assert!(!again.new_ca);
        assert_eq!(read(dir.path(), CA_CERT_FILE), ca1, "CA reused");
        assert_ne!(
            read(dir.path(), TLS_CERT_FILE),
            tls1,
            "serving cert renewed"
        );
        assert_eq!(
            read(dir.path(), CA_BUNDLE_PATCH_FILE),
            patch1,
            "the caBundle does not change on renewal"
        );
        let now = OffsetDateTime::now_utc();
        let days = (again.serving_not_after - now).whole_days();
        assert!((29..=30).contains(&days), "{days}");
    }

    #[test]
    fn force_rotates_the_ca_and_trusts_both_until_the_old_one_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        generate(&args(dir.path(), &[])).expect("first");
        let old_ca = read(dir.path(), CA_CERT_FILE);
        let rotated = generate(&args(dir.path(), &["--force"])).expect("rotate");
        assert!(rotated.new_ca && rotated.previous_ca_trusted);
        let new_ca = read(dir.path(), CA_CERT_FILE);
        assert_ne!(new_ca, old_ca);
        let bundle = format!("{new_ca}{old_ca}");
        assert!(read(dir.path(), CA_BUNDLE_PATCH_FILE).contains(&certs::ca_bundle_base64(&bundle)));
        std::fs::remove_file(dir.path().join(PREVIOUS_CA_FILE)).expect("drop old CA");
        let done = generate(&args(dir.path(), &[])).expect("finish");
        assert!(!done.new_ca && !done.previous_ca_trusted);
        assert!(read(dir.path(), CA_BUNDLE_PATCH_FILE).contains(&certs::ca_bundle_base64(&new_ca)));
    }

    #[test]
    fn broken_or_short_lived_cas_are_errors_not_replaced_silently() {
        let dir = tempfile::tempdir().expect("tempdir");
        generate(&args(
            dir.path(),
            &["--ca-validity-days", "10", "--validity-days", "5"],
        ))
        .expect("short CA");
        let err = generate(&args(dir.path(), &["--validity-days", "30"])).expect_err("outlives CA");
        assert!(format!("{err:#}").contains("--force"), "{err:#}");
        std::fs::write(dir.path().join(CA_KEY_FILE), "garbage").expect("break");
        let err = generate(&args(dir.path(), &[])).expect_err("broken CA");
        assert!(format!("{err:#}").contains("--force"), "{err:#}");
        std::fs::remove_file(dir.path().join(CA_KEY_FILE)).expect("remove");
        let err = generate(&args(dir.path(), &[])).expect_err("half a CA");
        assert!(format!("{err:#}").contains("only one of"), "{err:#}");
        generate(&args(dir.path(), &["--force"])).expect("force recovers");
    }

    #[test]
    fn private_files_are_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        generate(&args(dir.path(), &[])).expect("generate");
        #[cfg(unix)]
        for file in [CA_KEY_FILE, TLS_KEY_FILE, SECRET_FILE] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(file))
                .expect(file)
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{file} readable by others: {mode:o}");
        }
    }

    #[test]
    fn names_must_be_valid_kubernetes_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (flag, bad) in [
            ("--service", "Portcullis"),
            ("--namespace", "team a"),
            ("--secret-name", "tls_secret"),
        ] {
            let err = generate(&args(dir.path(), &[flag, bad])).expect_err(bad);
            assert!(format!("{err:#}").contains(flag), "{err:#}");
        }
        assert!(!dir.path().join(CA_KEY_FILE).exists(), "nothing written");
    }

    #[test]
    fn validity_flags_are_bounded() {
        for bad in [["--validity-days", "0"], ["--validity-days", "soon"]] {
            let argv = [&["portcullis", "certs"][..], &bad[..]].concat();
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?}");
        }
    }
}
