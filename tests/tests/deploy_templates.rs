//! The configuration templates of `deploy/config/` parsed with the programs'
//! real configuration types, so that a template cannot go stale.
//!
//! ```text
//!  deploy/config/dmz.toml      ─▶ flumon_dmz::Config::load ─▶ WebSettings, Mailer
//!  deploy/config/send.toml     ─▶ SendFile::load ─▶ key paths → real keys in a temp dir ─▶ into_config
//!  deploy/config/recv.toml     ─▶ RecvFile::load ─▶ key paths → real keys in a temp dir ─▶ into_config
//!  deploy/config/intranet.toml ─▶ flumon_intranet::config::Config::load
//!  deploy/config/agent.toml    ─▶ flumon_agent::config::AgentConfig::load
//!  deploy/config/mapping.toml  ─▶ flumon_agent::source::Mapping::parse
//!  every template: its keys == the keys the parsed config serialises to (no setting left out),
//!                  and a misspelt key is refused (deny_unknown_fields really applies)
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use flumon_shared::crypto::{MacKey, Sm2PrivateKey, SymKey};

fn template(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/config").join(name)
}

/// Every dotted key path of a TOML value (arrays of tables contribute their tables' keys).
fn keys(prefix: &str, v: &toml::Value, out: &mut BTreeSet<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                out.insert(p.clone());
                keys(&p, v, out);
            }
        }
        toml::Value::Array(a) => {
            for v in a.iter().filter(|v| v.is_table()) {
                keys(prefix, v, out);
            }
        }
        _ => {}
    }
}

fn key_set_of_text(text: &str) -> BTreeSet<String> {
    let v: toml::Value = toml::from_str(text).unwrap();
    let mut s = BTreeSet::new();
    keys("", &v, &mut s);
    s
}

fn key_set_of<T: serde::Serialize>(cfg: &T) -> BTreeSet<String> {
    key_set_of_text(&toml::to_string(cfg).unwrap())
}

/// The template's keys are exactly the settings of the config type.
fn assert_complete<T: serde::Serialize>(name: &str, cfg: &T) {
    let text = std::fs::read_to_string(template(name)).unwrap();
    let in_template = key_set_of_text(&text);
    let in_type = key_set_of(cfg);
    let missing: Vec<_> = in_type.difference(&in_template).collect();
    assert!(missing.is_empty(), "{name}: settings missing from the template: {missing:?}");
}

/// A copy of the template with one misspelt key added to `table` must be refused by `load`.
fn assert_unknown_refused<E: std::fmt::Display, T>(name: &str, table: &str, load: impl Fn(&Path) -> Result<T, E>) {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(template(name)).unwrap();
    let bad = if table.is_empty() {
        format!("bogus_setting = 1\n{text}")
    } else {
        text.replacen(&format!("[{table}]\n"), &format!("[{table}]\nbogus_setting = 1\n"), 1)
    };
    assert_ne!(bad, text, "{name}: no [{table}] to put a bad key into");
    let p = dir.path().join(name);
    std::fs::write(&p, bad).unwrap();
    match load(&p) {
        Ok(_) => panic!("{name}: a misspelt key in [{table}] was accepted"),
        Err(e) => assert!(e.to_string().contains("bogus_setting"), "{name}: {e}"),
    }
}

#[test]
fn dmz_template_parses_and_is_complete() {
    let cfg = flumon_dmz::Config::load(&template("dmz.toml")).unwrap();
    assert_eq!(cfg.node_id, "dmz-1");
    assert_eq!(cfg.paths.data_dir, Path::new("/var/lib/flumon/dmz/data"));
    assert!(cfg.paths.sign_key.ends_with("keys/dmz-sign.pem") && cfg.paths.sign_key.is_absolute());
    assert!(cfg.mail.smtp_relay.is_some());
    // [web] is parsed by the web module itself, and mail_tls by the mailer
    let web = flumon_dmz::web::WebSettings::from_config(&cfg).unwrap();
    assert_eq!(web.session_idle_secs, 1800);
    assert!(web.review_key.ends_with("keys/review.key"));
    flumon_dmz::mail::Mailer::from_config(&cfg).unwrap();
    assert_complete("dmz.toml", &cfg);
    for t in ["", "listen", "paths", "limits", "batch", "desens", "mail", "web"] {
        assert_unknown_refused("dmz.toml", t, |p| {
            let c = flumon_dmz::Config::load(p)?;
            flumon_dmz::web::WebSettings::from_config(&c)
        });
    }
}

/// Writes real keys and points the transfer's key paths at them.
struct TransferKeys {
    _dir: tempfile::TempDir,
    journal: PathBuf,
    dmz_pub: PathBuf,
    mac: PathBuf,
    link: PathBuf,
}

fn transfer_keys() -> TransferKeys {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    Sm2PrivateKey::generate().unwrap().save(&p("journal.pem")).unwrap();
    Sm2PrivateKey::generate().unwrap().public_key().save(&p("dmz.pub.pem")).unwrap();
    MacKey::generate(1).unwrap().save(&p("mac.key")).unwrap();
    SymKey::generate().unwrap().save(&p("link.key")).unwrap();
    TransferKeys {
        journal: p("journal.pem"),
        dmz_pub: p("dmz.pub.pem"),
        mac: p("mac.key"),
        link: p("link.key"),
        _dir: dir,
    }
}

#[test]
fn transfer_templates_parse_check_and_agree() {
    use flumon_transfer::config::{Mode, RecvFile, SendFile};
    let send = SendFile::load(&template("send.toml")).unwrap();
    let recv = RecvFile::load(&template("recv.toml")).unwrap();
    assert_complete("send.toml", &send);
    assert_complete("recv.toml", &recv);
    assert_eq!(send.mode, Mode::Diode);
    assert!(send.journal_key.is_absolute() && send.journal_key.ends_with("keys/send-journal.pem"));
    // both sides must share [link] exactly (PROTOCOL.md §1)
    assert_eq!(send.link.settings().unwrap(), recv.link.settings().unwrap());
    let (sd, rd) = (send.diode.clone().unwrap(), recv.diode.clone().unwrap());
    assert_eq!(sd.target, rd.listen, "the sender's target is the receiver's listen address");

    // every value check of into_config, with real keys at the key paths
    let k = transfer_keys();
    let mut s = send;
    s.journal_key = k.journal.clone();
    s.dmz_public_key = k.dmz_pub.clone();
    s.mac_key = k.mac.clone();
    let sc = s.into_config().unwrap();
    assert_eq!(sc.diode.passes, 2);
    assert_eq!(sc.diode.rate_bytes, 800 * 125_000);
    let mut r = recv;
    r.journal_key = k.journal.clone();
    r.dmz_public_key = k.dmz_pub.clone();
    r.link_key = k.link.clone();
    r.mac_keys = vec![k.mac.clone()];
    let rc = r.into_config().unwrap();
    assert_eq!(rc.first_seq, 1);
    assert_eq!(rc.mac_keys.len(), 1);

    for t in ["", "link", "diode", "ferry"] {
        assert_unknown_refused("send.toml", t, SendFile::load);
        assert_unknown_refused("recv.toml", t, RecvFile::load);
    }
}

#[test]
fn intranet_template_parses_and_is_complete() {
    use flumon_intranet::config::Config;
    let cfg = Config::load(&template("intranet.toml")).unwrap();
    assert_eq!(cfg.database_url, "sqlite:///var/lib/flumon/intranet/intranet.db");
    assert_eq!(cfg.paths.spool, Path::new("/var/lib/flumon/spool"));
    assert_eq!(cfg.journals.len(), 2, "receiver and sender journals");
    assert!(cfg.paths.link_key.is_absolute());
    assert_complete("intranet.toml", &cfg);
    for t in ["", "paths", "ingest", "[journals]"] {
        assert_unknown_refused("intranet.toml", t, Config::load);
    }
}

#[test]
fn agent_template_and_mapping_parse_and_are_complete() {
    use flumon_agent::config::AgentConfig;
    use flumon_agent::source::Mapping;
    use flumon_shared::model::RecordType;
    let cfg = AgentConfig::load(&template("agent.toml")).unwrap();
    assert_eq!(cfg.source.sql.len(), 1);
    assert_eq!(cfg.source.days, Some(7));
    assert_eq!(cfg.schedule.daily_at, "02:00");
    assert!(cfg.dmz.key.is_absolute() && cfg.dmz.key.ends_with("agent.key"));
    assert_complete("agent.toml", &cfg);
    for t in ["", "hospital", "dmz", "source", "[source.sql]", "scans", "upload", "schedule", "state"] {
        assert_unknown_refused("agent.toml", t, AgentConfig::load);
    }

    // the mapping file the template names
    let text = std::fs::read_to_string(template("mapping.toml")).unwrap();
    let m = Mapping::parse(&text).unwrap();
    assert_eq!(m.map(RecordType::Outpatient, "门诊流水号"), "JZLSH");
    assert_eq!(m.map(RecordType::Lab, "就诊号"), "JZLSH");
    assert_eq!(m.map(RecordType::Lab, "记录号"), "JLID");
    assert_eq!(m.map(RecordType::Lab, "门诊流水号"), "门诊流水号", "a type's table applies to that type only");
    assert!(Mapping::parse(&format!("JZRC = \"记录号\"\n{text}")).is_err(), "a column mapped twice is refused");
}
