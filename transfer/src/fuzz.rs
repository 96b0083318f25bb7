//! The bodies of the `transfer_datagram` and `config_toml` fuzz targets,
//! callable from unit tests so CI runs them on stable.
//!
//! ```text
//!  data = (mode u8 ‖ len u8 ‖ bytes)*  through ONE receiver link state (T = 64, Kmax = 16):
//!    mode even ─▶ the bytes as a raw datagram (hostile: lengths, magic, MAC)
//!    mode odd  ─▶ the bytes sealed with the fuzz key (authenticated garbage: bodies, RaptorQ)
//!  last: a batch made from the input, encoded, with datagrams dropped by the input's bits,
//!        must come out byte-identical or not at all
//! ```
//! Fixed, public test key: nothing here is secret.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flumon_shared::crypto::MacKey;

use crate::fec::{BlockEncoder, PlanCache, esi_of};
use crate::recv::{DoneSet, Event, Limits, LinkParams, LinkState, NetStats};
use crate::settings::LinkSettings;
use crate::wire::{DataHead, Header, KeyRing, Kind, MAC_LEN, MacSigner, seal};

fn settings() -> LinkSettings {
    LinkSettings {
        node_id: "fuzz".into(),
        mtu: 1500,
        symbol_size: 64,
        block_symbols: 16,
        repair_ppm: 250_000,
        repair_extra: 2,
    }
}

fn key() -> Option<MacKey> {
    MacKey::from_slice(1, &[0x5a; 32]).ok()
}

fn state() -> Option<LinkState> {
    let p = LinkParams {
        settings: settings(),
        keys: KeyRing::new(&[key()?]),
        limits: Limits { max_batch: 1 << 16, max_open: 4, max_bytes: 1 << 20, timeout: Duration::from_secs(60) },
    };
    Some(LinkState::new(p, Arc::new(Mutex::new(DoneSet::default())), Arc::new(NetStats::default())))
}

/// Runs one fuzz input. Never panics; `Err` only when an invariant broke.
pub fn fuzz_datagram(data: &[u8]) -> Result<(), String> {
    let (Some(mut st), Some(k)) = (state(), key()) else { return Ok(()) };
    let Some(signer) = MacSigner::new(&k) else { return Ok(()) };
    let now = Instant::now();
    let mut bad: Option<String> = None;
    let mut check = |e: Event| {
        if let Event::Assembled(a) = e
            && a.bytes.is_empty()
        {
            bad = Some("an empty batch was assembled".into());
        }
    };
    let mut rest = data;
    while let [mode, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (chunk, next) = tail.split_at(n);
        rest = next;
        if mode % 2 == 0 {
            st.handle(chunk, now, &mut check);
        } else {
            let mut d = chunk.to_vec();
            seal(&mut d, 0, &signer);
            st.handle(&d, now, &mut check);
        }
    }
    if let Some(b) = bad {
        return Err(b);
    }
    round_trip(data, &signer)
}

/// The `config_toml` target: hostile text through the parsers and value
/// checks of send.toml, recv.toml and `[link]` (no key file is read). Errors
/// are fine, a panic is the finding; `Err` only when a parse error does not
/// name the file it came from.
pub fn fuzz_config(data: &[u8]) -> Result<(), String> {
    use crate::config::{LinkFile, RecvFile, SendFile};
    use std::path::Path;
    // the loaders read text (read_to_string refuses other bytes): invalid UTF-8 becomes U+FFFD
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let named = |e: crate::Error, file: &str| {
        let msg = e.to_string();
        if msg.contains(file) { Ok(()) } else { Err(format!("an error of {file} does not name it: {msg}")) }
    };
    match SendFile::parse(text, Path::new("fuzz-send.toml")) {
        Ok(f) => {
            let _ = f.check();
        }
        Err(e) => named(e, "fuzz-send.toml")?,
    }
    match RecvFile::parse(text, Path::new("fuzz-recv.toml")) {
        Ok(f) => {
            let _ = f.check();
        }
        Err(e) => named(e, "fuzz-recv.toml")?,
    }
    if let Ok(l) = toml::from_str::<LinkFile>(text) {
        let _ = l.settings();
    }
    Ok(())
}

/// Encodes a batch made from `data` and feeds its datagrams, some dropped,
/// to a fresh receiver: the result is the batch or nothing.
fn round_trip(data: &[u8], signer: &MacSigner) -> Result<(), String> {
    let Some(mut st) = state() else { return Ok(()) };
    let s = settings();
    let batch: Vec<u8> = if data.is_empty() { vec![0] } else { data.iter().take(4000).copied().collect() };
    let digest = flumon_shared::crypto::sm3(&batch);
    let content_id = digest.first_chunk::<8>().copied().unwrap_or_default();
    let mut plans = PlanCache::default();
    let mut got: Option<Vec<u8>> = None;
    let mut number = 0u64;
    let drop_bits: Vec<bool> = data.iter().flat_map(|b| (0..8).map(move |i| b >> i & 1 == 1 && b % 3 == 0)).collect();
    let mut di = 0usize;
    for attempt in 1..=2u32 {
        for bi in 0..s.block_count(batch.len()) {
            let Some(g) = s.block(batch.len(), bi) else { return Err("geometry".into()) };
            let enc = BlockEncoder::new(&batch, g, s.symbol_size, &mut plans, true).map_err(|e| e.to_string())?;
            for j in 0..g.k + g.r {
                let esi = esi_of(&g, attempt, j);
                number += 1;
                let dropped = drop_bits.get(di).copied().unwrap_or(false);
                di += 1;
                if dropped {
                    continue;
                }
                let mut sym = Vec::new();
                enc.symbol(esi, &mut sym).map_err(|e| e.to_string())?;
                let hdr = Header { kind: Kind::Data, key_id: signer.id(), session: 7, number };
                let dh = DataHead {
                    seq: 1,
                    content_id,
                    batch_len: batch.len() as u32,
                    block: bi as u16,
                    attempt: attempt as u8,
                    esi,
                };
                let mut d = Vec::with_capacity(sym.len() + 68 + MAC_LEN);
                dh.write(&hdr, &sym, signer, &mut d);
                st.handle(&d, Instant::now(), &mut |e| {
                    if let Event::Assembled(a) = e {
                        got = Some(a.bytes);
                    }
                });
            }
        }
    }
    match got {
        Some(b) if b != batch || flumon_shared::crypto::sm3(&b).first_chunk::<8>() != Some(&content_id) => {
            Err("round trip changed the batch".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::TestRng;

    #[test]
    fn config_fuzz_body_on_mutated_templates() {
        // the seeds of the config_toml target, mutated: no panic, parse errors name the file
        let seeds = [
            include_str!("../../deploy/config/send.toml"),
            include_str!("../../deploy/config/recv.toml"),
            "node_id = \"dmz-1\"\nmtu = 1500\n",
        ];
        const FLIPS: &[u8] = b"=[]\"\n#.,{}0-9e";
        let mut rng = TestRng::new(0xc0f1);
        let (mut ok_send, mut ok_recv) = (0, 0);
        for seed in seeds {
            let b = seed.as_bytes();
            fuzz_config(b).unwrap();
            for _ in 0..150 {
                let mut m = b.to_vec();
                for _ in 0..1 + rng.next_u64() % 3 {
                    let at = (rng.next_u64() as usize) % (m.len() + 1);
                    match rng.next_u64() % 4 {
                        0 => m.truncate(at),
                        1 if at < m.len() => m[at] = FLIPS[(rng.next_u64() % FLIPS.len() as u64) as usize],
                        2 => m.splice(at..at, b"\nx = 99999999999999999999\n".iter().copied()).for_each(drop),
                        _ => m.splice(at..at, b"\n[diode]\npasses = 0\n".iter().copied()).for_each(drop),
                    }
                }
                fuzz_config(&m).unwrap();
                let text = String::from_utf8_lossy(&m);
                ok_send += usize::from(crate::config::SendFile::parse(&text, std::path::Path::new("s")).is_ok());
                ok_recv += usize::from(crate::config::RecvFile::parse(&text, std::path::Path::new("r")).is_ok());
            }
        }
        // mutation kept some files valid and broke others: the loop tested both paths
        assert!(ok_send > 0 && ok_send < 450 && ok_recv > 0 && ok_recv < 450, "{ok_send} {ok_recv}");
    }

    #[test]
    fn config_fuzz_body_holds_on_the_committed_seeds() {
        // every seed and crash input of the config_toml target stays a regression test
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/config_toml");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            fuzz_config(&bytes).unwrap();
            n += 1;
        }
        assert!(n >= 3, "{n} seeds in {}", dir.display());
    }

    #[test]
    fn fuzz_body_on_random_input() {
        let mut rng = TestRng::new(0x5eed);
        for _ in 0..300 {
            let n = (rng.next_u64() % 600) as usize;
            let data: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            fuzz_datagram(&data).unwrap();
        }
    }

    #[test]
    fn fuzz_body_on_authenticated_headers() {
        // odd modes with a valid-looking header: exercises the body parsers and RaptorQ
        let mut rng = TestRng::new(7);
        for _ in 0..200 {
            let mut data = Vec::new();
            for _ in 0..20 {
                let mut d = vec![b'F', b'T', 1, 1 + (rng.next_u64() % 3) as u8, 0, 0, 0, 1];
                d.extend_from_slice(&1u64.to_be_bytes());
                d.extend_from_slice(&(rng.next_u64() % 1000 + 1).to_be_bytes());
                let body = if rng.next_u64().is_multiple_of(2) { 92 } else { (rng.next_u64() % 120) as usize };
                d.extend((0..body).map(|_| rng.next_u64() as u8));
                if rng.next_u64().is_multiple_of(2) && d.len() >= 52 {
                    // plausible data fields
                    d[24..32].copy_from_slice(&1u64.to_be_bytes());
                    d[40..44].copy_from_slice(&500u32.to_be_bytes());
                    d[44] = 0;
                    d[45] = 0;
                    d[46] = 1;
                    d[47] = 0;
                }
                data.push(1);
                data.push(d.len().min(255) as u8);
                data.extend_from_slice(&d[..d.len().min(255)]);
            }
            fuzz_datagram(&data).unwrap();
        }
    }
}
