//! The link's two ends as types that can only do one thing each
//! (ARCHITECTURE invariant 3): [`LinkTx`] can only send, [`LinkRx`] can only
//! receive. The UDP ends never `connect`; the sender never reads its socket,
//! the receiver never writes to its own.
//!
//! ```text
//!  send ─▶ LinkTx ─ UdpTx (send_to only) ══ diode ══▶ UdpRx (recv only) ─ LinkRx ─▶ recv
//!          └ Impaired<LinkTx>: drops, duplicates, reorders (tests, bench)
//!  UdpRx::recv_many: up to RecvBatch::SLOTS datagrams per system call (recvmmsg)
//! ```

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::error::{Error, Result};

/// The sending end: nothing but `send`.
pub trait LinkTx: Send {
    /// Sends one datagram.
    fn send(&mut self, datagram: &[u8]) -> io::Result<()>;
}

/// The receiving end: nothing but `recv`.
pub trait LinkRx: Send {
    /// Receives one datagram into `buf`; `Ok(None)` after a short timeout
    /// (so the caller can do its periodic work).
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>>;

    /// Receives one or more datagrams into `batch` (waits as [`LinkRx::recv`]
    /// for the first, takes only what is already queued after it); returns
    /// how many, 0 after the timeout.
    fn recv_many(&mut self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.lens.clear();
        let Some(slot) = batch.buf.get_mut(..batch.slot) else { return Ok(0) };
        if let Some(n) = self.recv(slot)? {
            batch.lens.push(n);
        }
        Ok(batch.lens.len())
    }
}

/// Room for several received datagrams: `SLOTS` slots of `slot` bytes.
#[derive(Debug)]
pub struct RecvBatch {
    buf: Vec<u8>,
    slot: usize,
    lens: Vec<usize>,
}

impl RecvBatch {
    /// Datagrams taken per call.
    pub const SLOTS: usize = 32;

    /// Slots of `slot` bytes each: the longest datagram accepted plus one, so
    /// that a longer one, cut to the slot, is still seen as too long.
    pub fn new(slot: usize) -> Self {
        let slot = slot.max(1);
        RecvBatch { buf: vec![0; slot * Self::SLOTS], slot, lens: Vec::with_capacity(Self::SLOTS) }
    }

    /// The datagrams received by the last call.
    pub fn datagrams(&self) -> impl Iterator<Item = &[u8]> {
        self.buf.chunks(self.slot).zip(&self.lens).map(|(s, &n)| s.get(..n).unwrap_or_default())
    }
}

impl<T: LinkTx + ?Sized> LinkTx for Box<T> {
    fn send(&mut self, datagram: &[u8]) -> io::Result<()> {
        (**self).send(datagram)
    }
}

impl<T: LinkRx + ?Sized> LinkRx for Box<T> {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        (**self).recv(buf)
    }
    fn recv_many(&mut self, batch: &mut RecvBatch) -> io::Result<usize> {
        (**self).recv_many(batch)
    }
}

fn socket_for(addr: &SocketAddr) -> Result<Socket> {
    Ok(Socket::new(Domain::for_address(*addr), Type::DGRAM, Some(Protocol::UDP))?)
}

/// A UDP socket that only sends to one target.
#[derive(Debug)]
pub struct UdpTx {
    sock: UdpSocket,
    target: SocketAddr,
}

impl UdpTx {
    /// Binds `local`, asks for `send_buffer` bytes of socket buffer; returns
    /// the end and the buffer size the kernel granted.
    pub fn bind(local: SocketAddr, target: SocketAddr, send_buffer: usize) -> Result<(UdpTx, usize)> {
        let s = socket_for(&local)?;
        if send_buffer > 0 {
            s.set_send_buffer_size(send_buffer)?;
        }
        s.bind(&local.into())?;
        let granted = s.send_buffer_size()?;
        Ok((UdpTx { sock: s.into(), target }, granted))
    }

    /// The bound address (tests use it to check nothing comes back).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.sock.local_addr()?)
    }
}

impl LinkTx for UdpTx {
    fn send(&mut self, datagram: &[u8]) -> io::Result<()> {
        let mut tries = 0u32;
        loop {
            match self.sock.send_to(datagram, self.target) {
                Ok(_) => return Ok(()),
                // a full device queue: wait a moment and try again, a bounded number of times
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock) || e.raw_os_error() == Some(105) => {
                    tries += 1;
                    if tries > 1000 {
                        return Err(e);
                    }
                    std::thread::sleep(Duration::from_micros(50));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A UDP socket that only receives.
#[derive(Debug)]
pub struct UdpRx {
    sock: UdpSocket,
}

impl UdpRx {
    /// Binds `listen` with `recv_buffer` bytes of socket buffer (the kernel
    /// may grant less: `net.core.rmem_max`); returns the end and the size granted.
    pub fn bind(listen: SocketAddr, recv_buffer: usize) -> Result<(UdpRx, usize)> {
        let s = socket_for(&listen)?;
        if recv_buffer > 0 {
            s.set_recv_buffer_size(recv_buffer)?;
        }
        s.bind(&listen.into())?;
        let granted = s.recv_buffer_size()?;
        let sock: UdpSocket = s.into();
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok((UdpRx { sock }, granted))
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.sock.local_addr()?)
    }
}

impl LinkRx for UdpRx {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.sock.recv_from(buf) {
            Ok((n, _from)) => Ok(Some(n)),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One recvmmsg: blocks (up to the read timeout) for the first datagram,
    /// then takes what is queued behind it (MSG_WAITFORONE).
    fn recv_many(&mut self, batch: &mut RecvBatch) -> io::Result<usize> {
        use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
        use std::os::fd::AsRawFd;
        batch.lens.clear();
        let fd = self.sock.as_raw_fd();
        let mut slices: Vec<[io::IoSliceMut<'_>; 1]> =
            batch.buf.chunks_mut(batch.slot).map(|s| [io::IoSliceMut::new(s)]).collect();
        // (nix's headers hold raw pointers and are not Send: made per call, a few hundred bytes)
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(slices.len(), None);
        match recvmmsg(fd, &mut headers, slices.iter_mut(), MsgFlags::MSG_WAITFORONE, None) {
            // a datagram longer than a slot arrives cut to the slot, which is one byte
            // longer than the longest accepted: the length check drops it
            Ok(results) => batch.lens.extend(results.map(|r| r.bytes)),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
        Ok(batch.lens.len())
    }
}

/// SplitMix64: a small deterministic generator for impairments (not for keys).
#[derive(Clone, Debug)]
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> Self {
        TestRng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// True with probability `p` (0..=1).
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
}

/// Impairments of a test link, as probabilities per datagram.
#[derive(Clone, Copy, Debug, Default)]
pub struct Impairments {
    pub loss: f64,
    pub duplicate: f64,
    pub reorder: f64,
}

/// A sending end that loses, duplicates and reorders datagrams before they
/// reach the real one (tests and the bench).
#[derive(Debug)]
pub struct Impaired<T: LinkTx> {
    inner: T,
    imp: Impairments,
    rng: TestRng,
    held: Option<Vec<u8>>,
    /// Datagrams dropped on purpose.
    pub dropped: u64,
}

impl<T: LinkTx> Impaired<T> {
    pub fn new(inner: T, imp: Impairments, seed: u64) -> Self {
        Impaired { inner, imp, rng: TestRng::new(seed), held: None, dropped: 0 }
    }
}

impl<T: LinkTx> LinkTx for Impaired<T> {
    fn send(&mut self, datagram: &[u8]) -> io::Result<()> {
        if self.rng.chance(self.imp.loss) {
            self.dropped += 1;
            return Ok(());
        }
        if self.held.is_none() && self.rng.chance(self.imp.reorder) {
            self.held = Some(datagram.to_vec());
            return Ok(());
        }
        self.inner.send(datagram)?;
        if self.rng.chance(self.imp.duplicate) {
            self.inner.send(datagram)?;
        }
        if let Some(h) = self.held.take() {
            self.inner.send(&h)?;
        }
        Ok(())
    }
}

/// Turns a socket error into the crate's error with context.
pub fn link_err(what: &str, e: io::Error) -> Error {
    Error::Io(io::Error::new(e.kind(), format!("{what}: {e}")))
}
