//! TLS seen from outside flumon, with the OpenSSL command line (issue 8): the DMZ's public and
//! admin listeners and the intranet offer TLS 1.3 only (a TLS 1.2 or older client gets no
//! session), and the agent API needs a client certificate issued by the DMZ's CA on top of the
//! bearer token.
//!
//! ```text
//!  flumon-dmz serve (public P1, admin P2)   flumon-intranet serve (P3)       real processes
//!        ▲ openssl s_client -tls1_3 ✓ / -tls1_2 ✗ / -no_tls1_3 ✗             for each listener
//!        ▲ GET /api/v1/ping: token + DMZ cert ✓, token only ✗, token + foreign cert ✗, cert only ✗
//! ```
//! Skips with a note when `openssl` is missing; `.ci/run` installs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use flumon_tests::harness::{Proc, binaries, free_port, wait_port};

fn set_listen(file: &Path, keys: &[(&[&str], String)]) {
    let mut v: toml::Value = toml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    for (path, val) in keys {
        let mut t = &mut v;
        for k in &path[..path.len() - 1] {
            t = t.get_mut(*k).unwrap();
        }
        t.as_table_mut().unwrap().insert(path[path.len() - 1].to_owned(), toml::Value::String(val.clone()));
    }
    std::fs::write(file, toml::to_string(&v).unwrap()).unwrap();
}

/// `openssl s_client` against 127.0.0.1:port with `args`, `input` on stdin; (exit ok, all output).
fn s_client(port: u16, args: &[&str], input: &str) -> (bool, String) {
    let mut child = Command::new("timeout")
        .args(["20", "openssl", "s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", "localhost"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Checks one listener's protocol versions.
fn only_tls13(name: &str, port: u16, ca: &Path) {
    let ca = ca.to_str().unwrap();
    let (ok, out) = s_client(port, &["-tls1_3", "-CAfile", ca, "-verify_return_error", "-brief"], "");
    assert!(ok && out.contains("TLSv1.3"), "{name}: TLS 1.3 session expected:\n{out}");
    assert!(out.contains("Verification: OK"), "{name}: the certificate verifies against its CA:\n{out}");
    for refused in [&["-tls1_2"][..], &["-no_tls1_3"][..]] {
        let (ok, out) = s_client(port, &[refused, &["-CAfile", ca, "-brief"]].concat(), "");
        assert!(!ok, "{name}: {refused:?} must not get a session:\n{out}");
        assert!(!out.contains("Protocol version: TLSv1.2"), "{name}: {refused:?} negotiated TLS 1.2:\n{out}");
        assert!(out.to_lowercase().contains("alert"), "{name}: {refused:?} refused with an alert:\n{out}");
    }
}

/// The HTTP status of `GET /api/v1/ping` through `openssl s_client`, or `None` without an answer.
fn ping(port: u16, ca: &Path, token: Option<&str>, cert: Option<(&Path, &Path)>) -> Option<u16> {
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let req = format!("GET /api/v1/ping HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    let mut args = vec!["-tls1_3", "-quiet", "-CAfile", ca.to_str().unwrap()];
    if let Some((c, k)) = cert {
        args.extend(["-cert", c.to_str().unwrap(), "-key", k.to_str().unwrap()]);
    }
    let (_, out) = s_client(port, &args, &req);
    let line = out.lines().find(|l| l.starts_with("HTTP/1.1 "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn only_tls13_and_agent_api_needs_the_dmz_client_certificate() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("跳过 (SKIPPED): 需要 openssl 命令行 (needs the openssl command line; .ci/run installs it)");
        return;
    }
    let bin = binaries().unwrap();
    let w = tempfile::tempdir().unwrap();
    let (dmz, intranet) = (w.path().join("dmz"), w.path().join("intranet"));
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let dmz_bin = bin.join("flumon-dmz");
    let intranet_bin = bin.join("flumon-intranet");
    run(&[dmz_bin.as_os_str(), "init".as_ref(), dmz.as_os_str()]);
    run(&[intranet_bin.as_os_str(), "init".as_ref(), intranet.as_os_str(), "--dmz-dir".as_ref(), dmz.as_os_str()]);
    let (p_pub, p_adm, p_in) = (free_port().unwrap(), free_port().unwrap(), free_port().unwrap());
    let dmz_toml = dmz.join("dmz.toml");
    set_listen(
        &dmz_toml,
        &[(&["listen", "public"], format!("127.0.0.1:{p_pub}")), (&["listen", "admin"], format!("127.0.0.1:{p_adm}"))],
    );
    let in_toml = intranet.join("intranet.toml");
    set_listen(&in_toml, &[(&["listen"], format!("127.0.0.1:{p_in}"))]);

    let _d = Proc::spawn(
        Command::new(&dmz_bin).arg("serve").arg("--config").arg(&dmz_toml).stdout(Stdio::null()).stderr(Stdio::null()),
    )
    .unwrap();
    let _i = Proc::spawn(
        Command::new(&intranet_bin)
            .arg("serve")
            .arg("--config")
            .arg(&in_toml)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    for p in [p_pub, p_adm, p_in] {
        assert!(wait_port(p, Duration::from_secs(60)), "port {p} not listening");
    }

    let dmz_ca = dmz.join("ca/ca.pem");
    only_tls13("DMZ public", p_pub, &dmz_ca);
    only_tls13("DMZ admin", p_adm, &dmz_ca);
    only_tls13("intranet", p_in, &intranet.join("tls/server.pem"));

    // an approved hospital with its token and agent certificate (through the running DMZ's admin listener)
    let uscc = {
        let body = "91110105MA01TLM00";
        let c = flumon_shared::validate::ids::uscc_check_char(body).unwrap();
        format!("{body}{c}")
    };
    let out = run(&[
        dmz_bin.as_os_str(),
        "admin".as_ref(),
        "create-hospital".as_ref(),
        "--config".as_ref(),
        dmz_toml.as_os_str(),
        "--uscc".as_ref(),
        uscc.as_ref(),
        "--name".as_ref(),
        "TLS 测试医院".as_ref(),
        "--region".as_ref(),
        "110105".as_ref(),
        "--level".as_ref(),
        "3".as_ref(),
    ]);
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let token = j["token"].as_str().unwrap();
    let (cert, key) =
        (std::path::PathBuf::from(j["cert"].as_str().unwrap()), std::path::PathBuf::from(j["key"].as_str().unwrap()));

    // a certificate from another CA, with the same subject as the real one
    let (fc, fk) = (w.path().join("foreign.pem"), w.path().join("foreign.key"));
    let st = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN={uscc}"), "-keyout", fk.to_str().unwrap(), "-out", fc.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(st.status.success(), "openssl req: {}", String::from_utf8_lossy(&st.stderr));

    assert_eq!(ping(p_pub, &dmz_ca, Some(token), Some((&cert, &key))), Some(200), "token + DMZ certificate");
    let bare = ping(p_pub, &dmz_ca, Some(token), None);
    assert!(matches!(bare, Some(401 | 403)), "token without a client certificate: {bare:?}");
    let foreign = ping(p_pub, &dmz_ca, Some(token), Some((&fc, &fk)));
    assert!(matches!(foreign, None | Some(401 | 403)), "token + foreign certificate: {foreign:?}");
    let no_token = ping(p_pub, &dmz_ca, None, Some((&cert, &key)));
    assert!(matches!(no_token, Some(401 | 403)), "certificate without a token: {no_token:?}");
}
